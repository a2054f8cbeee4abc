// The executor's program order and collective matching on a hand-built program: two dies run
// a mini-batch loop holding a chunk loop with carried deps and a collective per chunk; compute
// instructions whose ids do not follow their body order are served by id (program order keys
// are loop ids, iterations and instruction ids); every die serves its collectives in program
// order and meets its partner on the same iteration.

import { describe, expect, it } from 'vitest';
import { compile } from '../../../src/compile.js';
import { executePrograms, type TraceSink } from '../../../src/backend/timing/execute.js';
import type { Instruction, Program } from '../../../src/backend/program.js';

const target = compile('models/tiny-gpt.gy', { hw: 'hecaton-1x2-standard' }).target;

const common = { reads: [], writes: [], carried: [], phase: 'fwd', layer: 0, block: 'attention', loc: null } as const;
const gemm = (id: number, deps: number[], carried: number[] = []): Instruction => ({ ...common, id, deps, carried, kind: 'gemm', op: `g${id}`, batch: 1, m: 64, n: 64, k: 64, macs: 64 ** 3, accumulate: false }) as unknown as Instruction;
const big = (id: number): Instruction => ({ ...gemm(id, [], [id]), m: 1024, n: 1024, k: 1024, macs: 1024 ** 3 }) as unknown as Instruction;
const read = (id: number, deps: number[], bytes: number): Instruction => ({ ...common, id, deps, kind: 'dram.read', tensor: `t${id}`, rows: [0, 1], cols: [0, 1], bytes }) as unknown as Instruction;
const coll = (id: number, deps: number[], position: number): Instruction =>
  ({ ...common, id, deps, kind: 'collective', op: 'all_reduce', algo: 'ring', axis: 'c', cid: `c${id}`, group: [[0, 0], [0, 1]], position, sentBytes: 4096, linkBytes: 4096, steps: 2, partOf: null }) as unknown as Instruction;
const loop = (id: number, count: number, body: Instruction[], over: 'minibatch' | 'chunk', carried: number[] = []): Instruction =>
  ({ ...common, id, deps: [], carried, kind: 'loop', over, count, size: 4, lastSize: 2, body }) as unknown as Instruction;

function program(position: number): Program {
  const chunk = loop(10, 3, [read(11, [], 1 << 16), gemm(12, [11], [12]), coll(13, [12], position)], 'chunk');
  // Ids 30 and 20 are independent gemms listed in that order: program order serves 20 first.
  const mb = loop(1, 4, [big(5), read(2, [], 1 << 16), chunk, gemm(30, [2]), gemm(20, [2]), coll(40, [30, 20], position)], 'minibatch');
  return { header: {}, buffers: [], instructions: [mb] } as unknown as Program;
}

describe('executePrograms on a hand-built program', () => {
  for (const symmetry of [false, true]) {
    it(`serves compute by program order and meets collectives iteration by iteration${symmetry ? ' (the two dies one class)' : ''}`, () => {
      const spans: { die: number; track: string; name: string; start: number; end: number }[] = [];
      const trace: TraceSink = { span: (die, track, name, start, end) => void spans.push({ die, track, name, start, end }) };
      const r = executePrograms({ dies: [[0, 0], [0, 1]], program: (d) => program(d) }, target, { trace, symmetry });
      // 4 mini-batches × (6 instructions + 3 chunks × 3) + the loop, per die simulated.
      expect(r.classes).toBe(symmetry ? 1 : 2);
      expect(r.instances).toBe(r.classes * (1 + 4 * (6 + 3 * 3)));
      for (const die of [0, 1]) {
        const nop = spans.filter((s) => s.die === die && s.track === 'nop').map((s) => s.name);
        expect(nop).toEqual(Array.from({ length: 4 }, () => ['all_reduce c', 'all_reduce c', 'all_reduce c', 'all_reduce c']).flat());
        const compute = spans.filter((s) => s.die === die && s.track === 'compute');
        // g20 and g30 wait together behind g5 and are served by id, not body order; the next
        // mini-batch's g5 runs while a chunk waits for its collective. (The same order as the
        // first executor, which compared per-instance key arrays.)
        const order = 'g5 g12 g12 g20 g30 g5 g12 g12 g12 g20 g30 g5 g12 g12 g12 g20 g30 g5 g12 g12 g12 g20 g30 g12';
        expect(compute.map((s) => s.name).join(' ')).toBe(order);
        for (let i = 1; i < compute.length; i++) expect(compute[i]!.start).toBeGreaterThanOrEqual(compute[i - 1]!.end);
      }
      // Both dies are symmetric: the same finish time (up to the ring solution's rounding).
      expect(Math.abs(r.dies[0]!.finish_s / r.dies[1]!.finish_s - 1)).toBeLessThan(1e-12);
      expect(r.breakdown_s.compute + r.breakdown_s.nop + r.breakdown_s.dram + r.breakdown_s.idle).toBeCloseTo(r.latency_s, 15);
    });
  }

  it('reports a collective met out of order as an error', () => {
    // Die 1 lists the chunk collective's partner position wrongly for its own group: both dies
    // claim position 0 of the same group (found when they meet, or by the classes up front).
    for (const symmetry of [false, true]) {
      expect(() => executePrograms({ dies: [[0, 0], [0, 1]], program: () => program(0) }, target, { symmetry })).toThrow(/collective/);
    }
  });
});
