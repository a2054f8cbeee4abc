// Two timing results that must agree: the same latency, breakdown, per-die finish times and
// per-block timings, up to the last bits of sums taken in another order.

import { expect } from 'vitest';
import type { ExecutionResult } from '../../src/backend/timing/execute.js';

export const rel = (a: number, b: number): number => Math.abs(a - b) / Math.max(Math.abs(b), 1e-30);

export function expectSameTiming(a: ExecutionResult, b: ExecutionResult, tolerance = 1e-9): void {
  expect(rel(a.latency_s, b.latency_s)).toBeLessThan(tolerance);
  for (const k of ['compute', 'nop', 'dram', 'idle'] as const) expect(Math.abs(a.breakdown_s[k] - b.breakdown_s[k])).toBeLessThan(tolerance * b.latency_s);
  for (const k of ['compute', 'nop', 'dram'] as const) expect(Math.abs(a.busy_s[k] - b.busy_s[k])).toBeLessThan(tolerance * b.latency_s);
  expect(a.critical_die).toEqual(b.critical_die);
  expect(a.dies.length).toBe(b.dies.length);
  a.dies.forEach((d, i) => {
    expect(d.die).toEqual(b.dies[i]!.die);
    expect(rel(d.finish_s, b.dies[i]!.finish_s)).toBeLessThan(tolerance);
  });
  expect(a.blocks.length).toBe(b.blocks.length);
  a.blocks.forEach((x, i) => {
    const y = b.blocks[i]!;
    expect([x.layer, x.phase, x.block]).toEqual([y.layer, y.phase, y.block]);
    for (const k of ['compute_s', 'dram_s', 'nop_s', 'nop_latency_s', 'nop_transmission_s', 'nop_internal_s'] as const) expect(Math.abs(x[k] - y[k])).toBeLessThan(tolerance * b.latency_s);
    for (const k of ['compute', 'nop', 'dram', 'idle'] as const) expect(Math.abs(x.exposed[k] - y.exposed[k])).toBeLessThan(tolerance * b.latency_s);
  });
}
