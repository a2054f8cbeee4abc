// A normalization whose rows span dies all-reduces a few numbers per row. Its link latency,
// not its bytes, decides its time, so the collectives pass takes the faster of the strategy's
// ring all-reduce, run both ways round the ring as every collective Table III does not count,
// and the exchange (every die's partial sent both ways round the same ring). The choice is
// checked here against the times written out by hand from the ring formulas, α and β.

import { describe, expect, it } from 'vitest';
import { compile } from '../../src/compile.js';
import { programsOf } from '../../src/passes/schedule/index.js';
import { forEachInstr, type CollectiveInstr } from '../../src/backend/program.js';
import { collectiveCost, fasterAllReduce, ringShape } from '../../src/passes/collective-cost.js';
import { loadTarget } from '../../src/target/load.js';
import { withAlpha } from '../../src/experiments/measure.js';
import type { Target } from '../../src/target/target.js';

/**
 * Bytes per die at which the exchange and the two-way ring all-reduce take equally long on a
 * row of g dies folded through bypass links, where the two directions share every link.
 */
function crossover(t: Target, g: number): number {
  const step = t.package.link.alphaS * t.package.link.bypassLatencyFactor;
  const beta = t.package.link.bandwidthBytesPerS;
  const half = Math.ceil((g - 1) / 2);
  // Both ways: 2·half steps, the one-way ring's 2(g−1)/g·tile bytes; exchange: half steps,
  // 2·half·tile bytes.
  return (half * step * beta) / (2 * half - (2 * (g - 1)) / g);
}

describe('fasterAllReduce', () => {
  const t = loadTarget('hecaton-32x32-standard');
  const grid = { rows: 32, cols: 32 };
  it('takes the exchange below the crossover and the two-way ring above it', () => {
    const x = crossover(t, 32);
    // 2α = 20 ns, β = 64 GB/s: 16 steps saved against 30.06 tiles more, about 681 B.
    expect(x).toBeGreaterThan(670);
    expect(x).toBeLessThan(690);
    expect(fasterAllReduce('hecaton', ['c'], x * 0.99, grid, t)).toBe('exchange');
    expect(fasterAllReduce('hecaton', ['c'], x * 1.01, grid, t)).toBe('bidirectional');
    expect(fasterAllReduce('hecaton', ['r'], 64, grid, t)).toBe('exchange');
  });
  it('moves the crossover with α', () => {
    const slow = withAlpha(t, 100e-9);
    expect(crossover(slow, 32)).toBeCloseTo(10 * crossover(t, 32), 6);
    expect(fasterAllReduce('hecaton', ['c'], crossover(t, 32) * 2, grid, slow)).toBe('exchange');
  });
  it('keeps the two-way ring when links have no latency (it moves fewer bytes)', () => {
    expect(fasterAllReduce('hecaton', ['c'], 64, grid, withAlpha(t, 0))).toBe('bidirectional');
    // Two dies: one step of the whole tile against two half-tiles: a tie, which keeps the strategy's.
    expect(fasterAllReduce('hecaton', ['c'], 64, { rows: 2, cols: 2 }, withAlpha(loadTarget('hecaton-2x2-standard'), 0))).toBe('bidirectional');
  });
  it('costs the exchange as ⌈(g−1)/2⌉ steps of a whole tile each way, two per link on a folded ring', () => {
    expect(collectiveCost('all_reduce', 'exchange', 100, 32, grid, 'plain')).toEqual({ sentBytes: 3100, linkBytes: 1600, steps: 16 });
    expect(collectiveCost('all_reduce', 'exchange', 100, 32, grid, 'folded')).toEqual({ sentBytes: 3100, linkBytes: 3200, steps: 16 });
    expect(collectiveCost('all_reduce', 'exchange', 100, 5, grid, 'plain')).toEqual({ sentBytes: 400, linkBytes: 200, steps: 2 });
    expect(() => collectiveCost('all_gather', 'exchange', 100, 5, grid, 'plain')).toThrow(/exchange/);
    expect(() => collectiveCost('all_reduce', 'exchange', 100, 5, grid)).toThrow(/exchange/);
  });
  it('folds rows and columns of more than two dies through the bypass links, and nothing else', () => {
    expect(ringShape(['c'], 32, t)).toBe('folded');
    expect(ringShape(['c'], 4, t)).toBe('folded');
    expect(ringShape(['r', 'c'], 1024, t)).toBe('plain');
    expect(ringShape(['c'], 2, loadTarget('hecaton-2x2-standard'))).toBe('plain');
    const noBypass: Target = { ...t, die: { ...t.die, router: { ...t.die.router, bypass: false } } };
    expect(ringShape(['c'], 32, noBypass)).toBe('plain');
  });
});

describe('row statistics in compiled programs', () => {
  function normCollectives(hw: string | Target): CollectiveInstr[] {
    const c = compile('models/tiny-llama.gy', { hw, strategy: 'hecaton' });
    const out: CollectiveInstr[] = [];
    forEachInstr(programsOf(c.module)!.programFor({ i: 0, j: 0 }).instructions, (ins) => {
      if (ins.kind === 'collective' && (ins.partOf === 'rmsnorm' || ins.partOf === 'rmsnorm_grad')) out.push(ins);
    });
    return out;
  }
  it('exchanges the few bytes per row of an RMSNorm on 8×8 dies', () => {
    const norms = normCollectives('hecaton-8x8-standard');
    expect(norms.length).toBeGreaterThan(0);
    for (const ins of norms) {
      expect(ins.algo).toBe('exchange');
      expect(ins.steps).toBe(4);
      expect(ins.group).toHaveLength(8);
      // One tile sent each way per step, both crossing the folded row's links: 8 tiles on the
      // busiest link direction, 7 sent in all.
      expect(ins.sentBytes * 8).toBeCloseTo(ins.linkBytes * 7, 6);
    }
  });
  it('keeps the two-way ring where links have no latency', () => {
    const norms = normCollectives(withAlpha(loadTarget('hecaton-8x8-standard'), 0));
    expect(norms.length).toBeGreaterThan(0);
    for (const ins of norms) expect([ins.algo, ins.steps]).toEqual(['bidirectional', 8]);
  });
});
