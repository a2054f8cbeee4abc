// Property tests over random small models, grids and buffer sizes (STYLE 16): fusion never
// overflows the weight buffer, tiles partition every matmul exactly, and mini-batching
// conserves the batch.

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { compile } from '../../src/compile.js';
import { groupUnits, unitWeightBytesPerDie } from '../../src/passes/fuse.js';
import { findUnits } from '../../src/passes/units.js';
import { planMinibatch } from '../../src/passes/minibatch.js';
import { STRATEGIES, type Strategy } from '../../src/passes/pass.js';
import { weightSpec, type Orientation } from '../../src/passes/tile2d.js';
import { sharding, tileOf, type Die, type Grid } from '../../src/passes/sharding.js';
import { loadTarget } from '../../src/target/load.js';
import { withDie, type Target } from '../../src/target/target.js';
import { tensor } from '../../src/ir/types.js';
import { loadModel } from '../../src/frontend/load.js';
import { deriveTraining } from '../../src/passes/train.js';

function withBuffers(t: Target, weight: number, activation: number): Target {
  return withDie(t, { ...t.die, weightBufferBytes: weight, activationBufferBytes: activation });
}

const modelArb = fc.record({
  h: fc.constantFrom(32, 64, 96),
  heads: fc.constantFrom(2, 4),
  layers: fc.integer({ min: 1, max: 3 }),
  batch: fc.integer({ min: 1, max: 9 }),
  seq: fc.constantFrom(8, 16),
});
const gridArb = fc.record({ rows: fc.integer({ min: 1, max: 4 }), cols: fc.integer({ min: 1, max: 4 }) });

describe('fuse', () => {
  it('never puts more weights in a group than the buffers hold (oversize layers stream in chunks)', () => {
    fc.assert(
      fc.property(modelArb, gridArb, fc.integer({ min: 12, max: 22 }), fc.constantFrom(...STRATEGIES), fc.boolean(), (mdl, g, log2buf, strategy, training) => {
        const { h, heads, layers, batch, seq } = mdl;
        const m = loadModel('models/tiny-gpt.gy', { batch, seq, set: { h, heads, layers } });
        deriveTraining(m, { mode: training ? 'train' : 'inference', optimizer: 'sgd' });
        const t = withBuffers(loadTarget(`hecaton-${g.rows}x${g.cols}-standard`), 2 ** log2buf, 2 ** 22);
        let groups;
        try {
          groups = groupUnits(findUnits(m), t, training, strategy as Strategy);
        } catch (e) {
          expect((e as Error).message).toMatch(/GY3001/);
          return;
        }
        for (const grp of groups) expect(grp.bytesPerDie / grp.chunks).toBeLessThanOrEqual(t.die.weightBufferBytes);
        expect(groups.flatMap((x) => x.units)).toEqual(findUnits(m));
      }),
      { numRuns: 60 },
    );
  });
});

describe('fuse with no cut costs', () => {
  it('groups as greedy filling does: each group as large as the buffers allow, in order', () => {
    fc.assert(
      fc.property(modelArb, gridArb, fc.integer({ min: 12, max: 22 }), fc.constantFrom(...STRATEGIES), (mdl, g, log2buf, strategy) => {
        const { h, heads, layers, batch, seq } = mdl;
        const m = loadModel('models/tiny-gpt.gy', { batch, seq, set: { h, heads, layers } });
        deriveTraining(m, { mode: 'train', optimizer: 'sgd' });
        const t = withBuffers(loadTarget(`hecaton-${g.rows}x${g.cols}-standard`), 2 ** log2buf, 2 ** 22);
        const units = findUnits(m);
        let groups;
        try {
          groups = groupUnits(units, t, true, strategy as Strategy);
        } catch {
          return;
        }
        // The reference: close a group when the next unit would overflow it; an oversize unit alone.
        const capacity = t.die.weightBufferBytes;
        const need = (u: (typeof units)[number]) => unitWeightBytesPerDie(u, t.package.dies, true, strategy as Strategy);
        const greedy: number[] = [];
        let used = 0;
        let count = 0;
        for (const u of units) {
          if (need(u) > capacity || (count > 0 && used + need(u) > capacity)) {
            if (count) greedy.push(count);
            [used, count] = [0, 0];
          }
          if (need(u) > capacity) {
            greedy.push(1);
            continue;
          }
          used += need(u);
          count++;
        }
        if (count) greedy.push(count);
        expect(groups.map((x) => x.units.length)).toEqual(greedy);
      }),
      { numRuns: 60 },
    );
  });
});

describe('tile2d', () => {
  it('tiles partition every matmul exactly: contraction blocks align and weight tiles cover W once', () => {
    fc.assert(
      fc.property(
        gridArb,
        fc.constantFrom(...STRATEGIES),
        fc.constantFrom<Orientation>('N', 'T'),
        fc.integer({ min: 1, max: 40 }),
        fc.integer({ min: 1, max: 40 }),
        fc.integer({ min: 1, max: 40 }),
        (g: Grid, strategy, orient, M, K, N) => {
          const w = weightSpec(strategy as Strategy, orient);
          const x = strategy === 'optimus' ? w : sharding([], w.rows);
          const dies: Die[] = [];
          for (let i = 0; i < g.rows; i++) for (let j = 0; j < g.cols; j++) dies.push({ i, j });
          const cover = new Map<string, number>();
          for (const d of dies) {
            const wt = tileOf(tensor('f32', [K, N]), w, g, d);
            const xt = tileOf(tensor('f32', [M, K]), x, g, d);
            if (strategy !== 'optimus') expect(xt.cols).toEqual(wt.rows); // the die multiplies matching blocks
            cover.set(`${wt.rows}|${wt.cols}`, (wt.rows[1] - wt.rows[0]) * (wt.cols[1] - wt.cols[0]));
          }
          // Distinct weight tiles are disjoint and cover K×N exactly.
          const area = [...cover.values()].reduce((a, b) => a + b, 0);
          expect(area).toBe(K * N);
        },
      ),
      { numRuns: 300 },
    );
  });
});

describe('minibatch', () => {
  it('conserves the batch: count × size covers it and the last mini-batch is not empty', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 300 }), fc.integer({ min: 14, max: 24 }), fc.constantFrom(...STRATEGIES), (batch, log2act, strategy) => {
        const m = loadModel('models/tiny-gpt.gy', { batch, seq: 8 });
        deriveTraining(m, { mode: 'train', optimizer: 'sgd' });
        const t = withBuffers(loadTarget('hecaton-2x2-standard'), 2 ** 22, 2 ** log2act);
        const p = planMinibatch(m, t, strategy as Strategy);
        expect(p.batch).toBe(batch);
        expect(p.size * p.count).toBeGreaterThanOrEqual(batch);
        expect(p.size * (p.count - 1)).toBeLessThan(batch);
        if (p.fits) expect(p.perSampleBytes * p.size).toBeLessThanOrEqual(t.die.activationBufferBytes);
      }),
      { numRuns: 40 },
    );
  });
});

describe('minibatch streams a Linear in chunks only where that makes one sample fit', () => {
  // tiny-gpt with a vocabulary of 8192: its projection's logits dominate the footprint.
  const plan = (log2act: number, strategy: Strategy) => {
    const m = loadModel('models/tiny-gpt.gy', { batch: 4, seq: 8, set: { vocab: 8192 } });
    deriveTraining(m, { mode: 'train', optimizer: 'sgd' });
    const p = planMinibatch(m, withBuffers(loadTarget('hecaton-2x2-standard'), 2 ** 22, 2 ** log2act), strategy);
    return { p, chunked: m.ops().filter((op) => op.notes?.['fuse.chunks'] !== undefined).map((op) => op.kind) };
  };
  it('chunks the projection and its gradient when that fits 8 KiB, and nothing in 4 KiB, which overflows anyway', () => {
    const fits = plan(13, 'hecaton');
    expect([fits.p.fits, fits.chunked.sort()]).toEqual([true, ['linear', 'linear_grad']]);
    const over = plan(12, 'hecaton');
    expect([over.p.fits, over.chunked]).toEqual([false, []]);
    // In 4 KiB more than the projection would have streamed: the report counts them.
    expect(over.p.unstreamed).toBeGreaterThanOrEqual(2);
    expect(fits.p.unstreamed).toBe(0);
    // The overflow is reported at the unstreamed peak: the logits themselves.
    expect(over.p.perSampleBytes).toBeGreaterThan(fits.p.perSampleBytes * 10);
  });
  it('never chunks a plan that overflows', () => {
    fc.assert(
      fc.property(fc.integer({ min: 8, max: 20 }), fc.constantFrom(...STRATEGIES), (log2act, strategy) => {
        const { p, chunked } = plan(log2act, strategy as Strategy);
        if (!p.fits) expect(chunked).toEqual([]);
      }),
      { numRuns: 30 },
    );
  });
});

describe('every strategy compiles the paper workloads', () => {
  const cases: [string, string][] = [
    ['bert-large', 'hecaton-4x4-standard'],
    ['bloom-1.7b', 'hecaton-8x8-standard'],
    ['gpt3-6.7b', 'hecaton-16x16-standard'],
    ['llama2-70b', 'hecaton-32x32-standard'],
  ];
  for (const [model, hw] of cases) {
    // Llama2-70B at full depth takes a while to compile; three layers have every kind of group.
    it(`${model} on ${hw}: hecaton's allocated buffers fit 4 MB + 4 MB`, () => {
      const c = compile(`models/${model}.gy`, { hw, ...(model === 'llama2-70b' ? { set: { layers: 3 } } : {}) });
      const n = c.module.notes;
      expect(n['schedule.sram_ok'], `${model}: activation ${String(n['schedule.activation_peak_bytes'])}, weight ${String(n['schedule.weight_peak_bytes'])}`).toBe(true);
      expect(n['schedule.activation_peak_bytes']).toBeLessThanOrEqual(4 * 2 ** 20);
      expect(n['schedule.weight_peak_bytes']).toBeLessThanOrEqual(4 * 2 ** 20);
    });
    it(`${model} on ${hw}: every baseline compiles and reports whether it fits`, () => {
      for (const strategy of STRATEGIES.filter((s) => s !== 'hecaton')) {
        const c = compile(`models/${model}.gy`, { hw, strategy, set: { layers: 2 } });
        expect(typeof c.module.notes['schedule.sram_ok']).toBe('boolean');
        expect(c.module.notes['schedule.activation_peak_bytes']).toBeGreaterThan(0);
      }
    });
  }
});

describe('tile2d orientation on non-square grids (Fig. 11)', () => {
  // An R×C package and its C×R transpose are the same machine turned by 90°: hecaton picks the
  // opposite orientations on them and moves exactly the same bytes.
  for (const [rows, cols] of [[2, 8], [2, 4], [3, 6]] as const) {
    it(`${rows}x${cols} and ${cols}x${rows} move the same bytes with opposite orientations`, () => {
      const run = (r: number, c: number) => {
        const m = compile('models/tiny-gpt.gy', { hw: `hecaton-${r}x${c}-standard`, set: { h: 96 * 2, heads: 24, layers: 1 }, pipeline: 'train,fuse,minibatch,tile2d,collectives' }).module;
        const link = m.ops().reduce((sum, op) => sum + ((op.notes?.['collective.link_bytes'] as number | undefined) ?? 0), 0);
        const first = m.ops().find((op) => op.kind === 'linear')!.notes?.['tile2d.orient'];
        return { link, first };
      };
      const a = run(rows, cols);
      const b = run(cols, rows);
      expect(a.link).toBe(b.link);
      expect(a.first).not.toBe(b.first);
    });
  }
});
