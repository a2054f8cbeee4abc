// Simulating one representative per class of interchangeable dies must give what simulating
// every die gives: the same latency, breakdown, per-die finish times and per-block timings
// (up to the last bits of the ring solutions), on every strategy, with and without the compute
// and DRAM terms, on packages whose DRAM pools make several classes.

import { describe, expect, it } from 'vitest';
import { compile, type CompileOptions } from '../../../src/compile.js';
import { programsOf } from '../../../src/passes/schedule/index.js';
import { STRATEGIES } from '../../../src/passes/pass.js';
import { executePrograms, type ExecuteOptions, type ExecutionResult } from '../../../src/backend/timing/execute.js';
import { sourceOfSet } from '../../../src/backend/timing/source.js';
import { simulateSet } from '../../../src/backend/timing/simulate.js';
import type { Target } from '../../../src/target/target.js';
import { expectSameTiming as expectSame, rel } from '../../support/expect-timing.js';

/**
 * Every die simulated; classes found from every die's program; classes found from what the
 * program set says the dies share (the fast path, which builds die 0's program only and
 * derives the representatives' numbers from it). The last two must agree exactly, in every
 * number, and with the first.
 */
function run(model: string, opts: CompileOptions, exec: ExecuteOptions, tweak?: (t: Target) => Target): { plain: ExecutionResult; classes: ExecutionResult } {
  const c = compile(model, opts);
  const set = programsOf(c.module)!;
  const target = tweak ? tweak(c.target) : c.target;
  const fromPrograms = executePrograms({ ...sourceOfSet(set), shared: undefined }, target, { ...exec, symmetry: true });
  const fromShared = executePrograms(sourceOfSet(set), target, { ...exec, symmetry: true });
  expect(fromShared.classes).toBe(fromPrograms.classes);
  expect(fromShared.latency_s).toBe(fromPrograms.latency_s);
  expect(fromShared).toEqual(fromPrograms);
  return {
    plain: executePrograms(sourceOfSet(set), target, { ...exec, symmetry: false }),
    classes: fromShared,
  };
}

describe('die classes: simulating one die per class equals simulating every die', () => {
  for (const strategy of STRATEGIES) {
    it(`tiny-gpt on 4x4, ${strategy}`, () => {
      const r = run('models/tiny-gpt.gy', { hw: 'hecaton-4x4-standard', strategy }, {});
      // Uneven shares of replicated DRAM writes can make every die its own class here.
      expect(r.plain.classes).toBe(16);
      expect(r.classes.classes).toBeLessThanOrEqual(16);
      expectSame(r.classes, r.plain);
    });
  }

  it('grouped-query keys and values too narrow for the grid stay one class (tiny-llama on 8x8)', () => {
    // K and V (32 columns, 16 rows a sample) are replicated on 64 dies: their DRAM write is
    // shared as a grid of row and column blocks, and their backward re-read scattered over
    // rows and columns, so no die is left an empty block (once 64 classes).
    const r = run('models/tiny-llama.gy', { hw: 'hecaton-8x8-standard' }, {});
    expect(r.classes.classes).toBe(1);
    expectSame(r.classes, r.plain);
  });

  it('bert-large (2 layers) on 8x8, hecaton, NoP only (Table III view)', () => {
    const r = run('models/bert-large.gy', { hw: 'hecaton-8x8-standard', set: { layers: 2 } }, { ignore: ['compute', 'dram'] });
    expect(r.classes.classes).toBeLessThan(64);
    expectSame(r.classes, r.plain);
  });

  it('energy and traffic from the shared programs equal the sum over every die', () => {
    const c = compile('models/tiny-gpt.gy', { hw: 'hecaton-4x4-standard', strategy: 'optimus' });
    const set = programsOf(c.module)!;
    const plain = simulateSet(set, c.target, null, { symmetry: false });
    const fast = simulateSet(set, c.target, null, {});
    expect(rel(fast.energy_j, plain.energy_j)).toBeLessThan(1e-12);
    for (const k of ['compute', 'sram', 'd2d', 'dram', 'static'] as const) expect(Math.abs(fast.energy_breakdown_j[k] - plain.energy_breakdown_j[k])).toBeLessThanOrEqual(1e-12 * plain.energy_j);
    expect(rel(fast.dram_bytes, plain.dram_bytes)).toBeLessThan(1e-12);
    expect(rel(fast.nop_bytes, plain.nop_bytes)).toBeLessThan(1e-12);
    expect(fast.sram_peak_bytes).toEqual(plain.sram_peak_bytes);
  });

  it('a flat ring of 128 dies, each its own class (megatron, vocabulary 1001): still exact', () => {
    // Every member of every all-die collective is a class of its own: the meetings count the
    // starts their member lists await (execute.ts) across 128 distinct representatives.
    const r = run('models/tiny-gpt.gy', { hw: 'hecaton-8x16-standard', strategy: 'megatron', set: { vocab: 1001, h: 128 } }, {});
    expect(r.classes.classes).toBe(128);
    expectSame(r.classes, r.plain);
  });

  it('tiny-llama on 2x4 with uneven DRAM pools: several classes, still exact', () => {
    // Three channels for eight dies: pools of 3, 3 and 2 dies (engines.ts), so dies differ by
    // the company they keep on their channel, and the partition must split them.
    const r = run('models/tiny-llama.gy', { hw: 'hecaton-2x4-standard' }, {}, (t) => ({ ...t, memory: { ...t.memory, channels: 3 } }));
    expect(r.classes.classes).toBeGreaterThan(1);
    expectSame(r.classes, r.plain);
  });
});
