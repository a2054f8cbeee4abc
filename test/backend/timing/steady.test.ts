// Steady-state extrapolation (steady.ts) must give what simulating every iteration gives: the
// same latency, breakdown, per-die finish times and per-block timings, up to the rounding of
// times, while simulating fewer events. Each case checks that a jump really happened, so the
// comparison cannot pass by never extrapolating.

import { describe, expect, it } from 'vitest';
import { compile, type CompileOptions } from '../../../src/compile.js';
import { programsOf } from '../../../src/passes/schedule/index.js';
import { STRATEGIES } from '../../../src/passes/pass.js';
import { executePrograms, type ExecuteOptions, type ExecutionResult } from '../../../src/backend/timing/execute.js';
import { sourceOfSet } from '../../../src/backend/timing/source.js';
import type { Target } from '../../../src/target/target.js';
import type { Instruction, LoopInstr } from '../../../src/backend/program.js';
import { expectSameTiming } from '../../support/expect-timing.js';

function both(model: string, opts: CompileOptions, exec: ExecuteOptions = {}, tweak?: (t: Target) => Target): { plain: ExecutionResult; steady: ExecutionResult } {
  const c = compile(model, opts);
  const source = sourceOfSet(programsOf(c.module)!);
  const target = tweak ? tweak(c.target) : c.target;
  return {
    plain: executePrograms(source, target, { ...exec, steady: false }),
    steady: executePrograms(source, target, exec),
  };
}

function expectExtrapolated(r: { plain: ExecutionResult; steady: ExecutionResult }): void {
  expect(r.plain.iterations_extrapolated).toBe(0);
  expect(r.steady.iterations_extrapolated).toBeGreaterThan(0);
  expect(r.steady.events).toBeLessThan(r.plain.events);
  expectSameTiming(r.steady, r.plain);
}

describe('steady state: extrapolating repeating loop iterations equals simulating them', () => {
  for (const strategy of STRATEGIES) {
    it(`tiny-gpt on 2x2, 25 mini-batches, ${strategy}`, () => {
      const r = both('models/tiny-gpt.gy', { hw: 'hecaton-2x2-standard', strategy, batch: 4096 });
      expectExtrapolated(r);
    });
  }

  // Mini-batches of 120 (35 of them): the DMA engine's choice between a write of this
  // mini-batch and the read of the next depends on two events at the same time, 2.4 + 2.4 µs
  // and 1.2 + 3.6 µs after one another; the event clock's ticks make them coincide in every
  // iteration (events.ts), so the run repeats and extrapolates exactly.
  for (const strategy of ['megatron', 'torus'] as const) {
    it(`tiny-gpt on 2x2, 35 mini-batches of 120 whose events tie, ${strategy}`, () => {
      const r = both('models/tiny-gpt.gy', { hw: 'hecaton-2x2-standard', strategy, batch: 4096, pipeline: 'train,fuse,minibatch{size=120},tile2d,collectives,schedule' });
      expectExtrapolated(r);
      expect(r.steady.latency_s).toBe(r.plain.latency_s);
    });
  }

  it('bert-large (2 layers) on 4x4, 16 mini-batches of one sample, every die simulated', () => {
    expectExtrapolated(both('models/bert-large.gy', { hw: 'hecaton-4x4-standard', set: { layers: 2 } }, { symmetry: false }));
  });

  it('tiny-llama on 2x4 with uneven DRAM pools (several die classes)', () => {
    const r = both('models/tiny-llama.gy', { hw: 'hecaton-2x4-standard', batch: 16384 }, {}, (t) => ({ ...t, memory: { ...t.memory, channels: 3 } }));
    expect(r.steady.classes).toBeGreaterThan(1);
    expectExtrapolated(r);
  });

  // A vocabulary of 1001 entries on 8x8 dies splits the LM head unevenly: 64 classes, whose
  // DRAM pools' simultaneous events are queued in an order that rotates between mini-batches.
  it('tiny-gpt on 8x8 with an uneven vocabulary (64 classes) extrapolates most of its run', () => {
    const r = both('models/tiny-gpt.gy', { hw: 'hecaton-8x8-standard', batch: 4096, set: { vocab: 1001 } });
    expect(r.steady.classes).toBe(64);
    expectExtrapolated(r);
    expect(r.steady.events).toBeLessThan(r.plain.events / 2);
  });

  it('the NoP-only view of Table III', () => {
    expectExtrapolated(both('models/tiny-gpt.gy', { hw: 'hecaton-4x4-standard', batch: 4096 }, { ignore: ['compute', 'dram'] }));
  });

  it('traces one loop whole while the others jump', () => {
    const c = compile('models/tiny-gpt.gy', { hw: 'hecaton-2x2-standard', batch: 4096 });
    const source = sourceOfSet(programsOf(c.module)!);
    const loops = programsOf(c.module)!.programFor({ i: 0, j: 0 }).instructions.filter((x): x is LoopInstr => x.kind === 'loop');
    const loop = loops[Math.floor(loops.length / 2)]!;
    const inside = new Set<number>();
    const walk = (xs: readonly Instruction[]): void => xs.forEach((x) => (inside.add(x.id), x.kind === 'loop' && walk(x.body)));
    walk(loop.body);
    const traced = (whole?: number[]) => {
      const spans: { die: number; track: string; id: number; start: number; end: number }[] = [];
      const r = executePrograms(source, c.target, { whole, trace: { span: (die, track, _n, start, end, args) => void (typeof args.id === 'number' && inside.has(args.id) && spans.push({ die, track, id: args.id, start, end })) } });
      return { r, spans };
    };
    const all = traced();
    const one = traced([loop.id]);
    expect(all.r.iterations_extrapolated).toBe(0);
    expect(one.r.iterations_extrapolated).toBeGreaterThan(0);
    expect(one.r.events).toBeLessThan(all.r.events);
    expect(one.spans.length).toBe(all.spans.length);
    expect(one.spans.length).toBeGreaterThan(loop.count);
    one.spans.forEach((s, k) => {
      const t = all.spans[k]!;
      expect([s.die, s.track, s.id]).toEqual([t.die, t.track, t.id]);
      expect(s.start).toBeCloseTo(t.start, 12);
      expect(s.end).toBeCloseTo(t.end, 12);
    });
    expect(one.r.latency_s).toBeCloseTo(all.r.latency_s, 12);
  });

  it('a sink that wants a few dies gets exactly their spans', () => {
    const c = compile('models/tiny-gpt.gy', { hw: 'hecaton-4x4-standard', batch: 512 });
    const source = sourceOfSet(programsOf(c.module)!);
    const spans = (onlyDies?: number[]) => {
      const out: string[] = [];
      executePrograms(source, c.target, { trace: { onlyDies, span: (die, track, name, start, end) => void out.push(`${die} ${track} ${name} ${start} ${end}`) } });
      return out;
    };
    const all = spans();
    const few = spans([0, 5, 15]);
    expect(few.length).toBeGreaterThan(0);
    expect(few).toEqual(all.filter((x) => ['0', '5', '15'].includes(x.split(' ')[0]!)));
  });

  it('does not extrapolate short loops, nor while tracing', () => {
    const short = both('models/tiny-gpt.gy', { hw: 'hecaton-2x2-standard', batch: 512 });
    expect(short.steady.iterations_extrapolated).toBe(0);
    expect(short.steady.events).toBe(short.plain.events);
    const spans: number[] = [];
    const traced = executePrograms(sourceOfSet(programsOf(compile('models/tiny-gpt.gy', { hw: 'hecaton-2x2-standard', batch: 4096 }).module)!), compile('models/tiny-gpt.gy', { hw: 'hecaton-2x2-standard', batch: 4096 }).target, { trace: { span: (_d, _t, _n, start) => void spans.push(start) } });
    expect(traced.iterations_extrapolated).toBe(0);
    expect(spans.length).toBeGreaterThan(0);
  });
});
