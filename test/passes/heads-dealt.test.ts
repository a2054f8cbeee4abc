// Heads that split over the grid neither whole nor in equal slices (6 heads on 4x4, 96 on
// 64x64) are dealt out whole over one grid axis, as evenly as whole heads allow, and split
// evenly along the other; or, when the rows split them evenly (20 heads on 4x4), dealt over
// the dies of each row (tile2d's HeadWeights and dealtHeads, sharding's granules). These tests pin the
// layout arithmetic, the conversions between such layouts, the compile report, and that
// the dies' programs still compute the model (verify) and time alike with and without classes.

import { describe, expect, it } from 'vitest';
import { compile } from '../../src/compile.js';
import { conversionSteps } from '../../src/passes/collectives.js';
import { formatSharding, granuleUnits, parseSharding, reshard, sharding, tileBytes, tileOf, transposeMapping, withGranules, type Grid } from '../../src/passes/sharding.js';
import { tensor } from '../../src/ir/types.js';
import { verify } from '../../src/backend/functional/verify.js';
import { programsOf } from '../../src/passes/schedule/index.js';
import { executePrograms } from '../../src/backend/timing/execute.js';
import { sourceOfSet } from '../../src/backend/timing/source.js';
import { expectSameTiming } from '../support/expect-timing.js';
import { forEachInstr } from '../../src/backend/program.js';

const GRID: Grid = { rows: 4, cols: 4 };
const DEALT = { h: 96, heads: 6 };

describe('granules: whole heads dealt over an axis', () => {
  it('deals as evenly as whole ones allow', () => {
    expect(granuleUnits(6, 4)).toEqual([1, 2, 1, 2]);
    expect(granuleUnits(96, 64).filter((u) => u === 2)).toHaveLength(32);
    expect(granuleUnits(8, 4)).toEqual([2, 2, 2, 2]);
  });

  it('reads and writes the text form, and keeps granules only where their axis is used', () => {
    const q = parseSharding('[-, r6c]');
    expect(q.granules).toEqual({ axis: 'r', count: 6 });
    expect(formatSharding(q)).toBe('[-, r6c]');
    expect(formatSharding(parseSharding('[-, c]~r6'))).toBe('[-, c]~r6');
    expect(formatSharding(transposeMapping(q))).toBe('[-, c6r]');
    expect(formatSharding(reshard(q, [], ['c']))).toBe('[-, c]');
    expect(withGranules(sharding([], ['c']), { axis: 'r', count: 6 }).granules).toBeUndefined();
  });

  it('gives each die whole heads of its row, split evenly along the row', () => {
    // 6 heads of 16 columns (h 96) over 4 rows: 1, 2, 1, 2 heads; 4 dies per row.
    const q = parseSharding('[-, r6c]');
    const t = tensor('f32', [2, 8, 96]);
    expect(tileOf(t, q, GRID, { i: 0, j: 0 }).cols).toEqual([0, 4]);
    expect(tileOf(t, q, GRID, { i: 0, j: 3 }).cols).toEqual([12, 16]);
    expect(tileOf(t, q, GRID, { i: 1, j: 0 }).cols).toEqual([16, 24]);
    expect(tileOf(t, q, GRID, { i: 1, j: 3 }).cols).toEqual([40, 48]);
    expect(tileOf(t, q, GRID, { i: 3, j: 3 }).cols).toEqual([88, 96]);
    // The largest tile sizes the buffers: 8 of 96 columns, 16 rows.
    expect(tileBytes(t, q, GRID)).toBe(16 * 8 * 4);
    // A weight whose rows are heads (the output projection) splits its rows alike.
    const w = parseSharding('[r6, c]');
    expect(tileOf(tensor('f32', [96, 96]), w, GRID, { i: 1, j: 2 })).toEqual({ rows: [16, 48], cols: [48, 72] });
  });

  it('converts between dealt layouts like even ones, and sums over dealt heads into plain tiles', () => {
    const g = { t: tensor('f32', [2, 8, 96]), grid: GRID };
    const text = (from: string, to: string) => conversionSteps(parseSharding(from), parseSharding(to), 'hecaton', g).map((s) => `${s.kind} ${s.axes.join('')} -> ${formatSharding(s.to)}`);
    // The query projection's partial sum into the attention core's heads (§IV-C step 10).
    expect(text('[-, r6]~c', '[-, r6c]')).toEqual(['reduce_scatter c -> [-, r6c]']);
    // The core's output to the output projection's input (step 12).
    expect(text('[-, r6c]', '[-, r6]')).toEqual(['all_gather c -> [-, r6]']);
    // The output projection's sum over heads, onto the rows of the next layer's tiles.
    expect(text('[-, c]~r6', '[r, c]')).toEqual(['reduce_scatter r -> [r, c]']);
    // An even split of the same axis is another tiling: reached through the whole dimension.
    expect(text('[-, r6c]', '[-, rc]')).toEqual(['all_gather c -> [-, r6]', 'all_gather r -> [-, -]']);
  });
});

function attentionLines(hw: string, strategy: 'hecaton' | 'megatron' = 'hecaton', set = DEALT): string[] {
  const c = compile('models/tiny-gpt.gy', { hw, strategy, set });
  return c.passes.find((p) => p.pass === 'tile2d')!.reports.filter((l) => l.includes('attention cores'));
}

describe('tile2d deals heads that split over no axis evenly', () => {
  it('says so in the compile report, instead of replicating the core', () => {
    for (const strategy of ['hecaton', 'megatron'] as const) {
      expect(attentionLines('hecaton-4x4-standard', strategy)).toEqual([
        "2 attention cores (6 heads, as 'layer.0.a') deal whole heads over the 4 rows of dies, 1 or 2 per row, each split evenly along its row: the busiest dies do 1.33x an even share of attention and of its projections",
      ]);
    }
  });

  it('deals within each row when the rows split the heads evenly but their dies do not', () => {
    // 20 heads on 4x4: 5 per row, dealt 1, 1, 1 and 2 over its 4 dies (granules on c).
    expect(attentionLines('hecaton-4x4-standard', 'hecaton', { h: 80, heads: 20 })).toEqual([
      "2 attention cores (20 heads, as 'layer.0.a') deal whole heads within each row of dies, 5 per row, 1 or 2 per die: the busiest dies do 1.60x an even share of attention",
    ]);
    const c = compile('models/tiny-gpt.gy', { hw: 'hecaton-4x4-standard', set: { h: 80, heads: 20 } });
    const core = c.module.ops().find((o) => o.kind === 'attention')!;
    expect(core.notes?.['tile2d.in']).toBe('[-, rc5]; [-, rc5]; [-, rc5]');
    // Whole heads on every die: no score all-reduces.
    expect(core.notes?.['attention.head_dies']).toBeUndefined();
  });

  it('keeps the even split where there is one, and replication where dealing cannot split a row evenly', () => {
    // (4 heads on 4x4 split evenly as quarter heads; the core splits its queries instead, query-split.test.ts.)
    expect(attentionLines('hecaton-4x4-standard', 'megatron', { h: 64, heads: 4 })).toEqual([]);
    // 4 heads of 16 columns on 3 rows: a row of one head cannot split 16 columns over 3 dies.
    expect(attentionLines('hecaton-3x3-standard', 'hecaton', { h: 64, heads: 4 })[0]).toContain('computed alike on 9 dies');
  });

  it('gives the projections, the core and the gradients the dealt layout', () => {
    const c = compile('models/tiny-gpt.gy', { hw: 'hecaton-4x4-standard', set: DEALT });
    const op = (kind: string, result: string) => c.module.ops().find((o) => o.kind === kind && o.results.some((r) => r.name === result))!;
    expect(op('attention', 'layer.0.a').notes?.['tile2d.in']).toBe('[-, r6c]; [-, r6c]; [-, r6c]');
    expect(op('linear', 'layer.0.linear').notes?.['tile2d.in']).toBe('[-, c]; [c, r6]; [-, r6]');
    expect(op('linear', 'layer.0.linear.1').notes?.['tile2d.in']).toBe('[-, r6]; [r6, c]; [-, c]');
    expect(op('linear', 'layer.0.linear.1').notes?.['tile2d.out']).toBe('[-, c]~r6');
  });
});

describe('heads over fewer axes than the grid has: queries split over the rest', () => {
  // 12 heads on 4x4 split over the 4 rows (3 each) but not over a row's 4 dies, and dealing
  // would leave a die without a head: each die takes its row's 3 heads for a quarter of the
  // queries (sequence 8 splits over 4 columns) instead of computing them alike on 4 dies.
  const set = { h: 96, heads: 12 };
  it('says so, and lays the core out so', () => {
    const c = compile('models/tiny-gpt.gy', { hw: 'hecaton-4x4-standard', set, seq: 8 });
    const lines = c.passes.find((p) => p.pass === 'tile2d')!.reports.filter((l) => l.includes('attention cores'));
    expect(lines).toEqual([
      "2 attention cores (12 heads, as 'layer.0.a') split their heads over rows of dies and their queries over columns of dies: the heads do not split evenly over every die, so each die reads its heads' keys and values whole",
    ]);
    const core = c.module.ops().find((o) => o.kind === 'attention')!;
    expect(core.notes?.['tile2d.in']).toBe('[c, r]; [-, r]; [-, r]');
  });

  // Three verifies: more than vitest's 5 s default on a loaded 2-core machine.
  it('computes the model (verify), hecaton, megatron and torus', { timeout: 30_000 }, async () => {
    for (const strategy of ['hecaton', 'megatron', 'torus'] as const) {
      const r = await verify('models/tiny-gpt.gy', { hw: 'hecaton-4x4-standard', strategy, batch: 2, seq: 8, set });
      expect(r.ok, `${strategy}: ${r.fault ?? JSON.stringify(r.failures.slice(0, 3))}`).toBe(true);
    }
  });

  it('computes grouped-query attention so too (verify): dk and dv summed over the query blocks', async () => {
    // 12 query heads sharing 4 key/value heads, on 2x4: heads over the 2 rows, queries over the 4 columns.
    for (const strategy of ['hecaton', 'megatron'] as const) {
      const r = await verify('models/tiny-llama.gy', { hw: 'hecaton-2x4-standard', strategy, batch: 2, seq: 8, set: { h: 96, heads: 12, kv_heads: 4 } });
      expect(r.ok, `${strategy}: ${r.fault ?? JSON.stringify(r.failures.slice(0, 3))}`).toBe(true);
    }
  });

  it('keeps replication where the sequence does not split over the spare axis', () => {
    const c = compile('models/tiny-gpt.gy', { hw: 'hecaton-3x3-standard', set: { h: 64, heads: 4 }, seq: 8 });
    expect(c.passes.find((p) => p.pass === 'tile2d')!.reports.some((l) => l.includes('computed alike on 9 dies'))).toBe(true);
  });
});

describe('programs with dealt heads', () => {
  for (const strategy of ['hecaton', 'megatron', 'torus'] as const) {
    it(`compute the model (verify), ${strategy} on 4x4`, async () => {
      const r = await verify('models/tiny-gpt.gy', { hw: 'hecaton-4x4-standard', strategy, batch: 2, seq: 8, set: DEALT });
      expect(r.ok, r.fault ?? JSON.stringify(r.failures.slice(0, 3))).toBe(true);
      expect(r.compared.grad).toBeGreaterThan(0);
    });
  }

  // Rotary embeddings need whole heads per die: they run on the dealt rows (or dies) too.
  for (const [hw, set] of [
    ['hecaton-4x4-standard', { h: 96, heads: 6, kv_heads: 6 }],
    ['hecaton-2x4-standard', { h: 160, heads: 20, kv_heads: 20 }],
  ] as const) {
    it(`compute a model with rotary embeddings (verify), ${set.heads} heads on ${hw}`, async () => {
      for (const strategy of ['hecaton', 'megatron'] as const) {
        const c = compile('models/tiny-llama.gy', { hw, strategy, set });
        expect(c.passes.find((p) => p.pass === 'tile2d')!.reports.some((l) => l.includes('deal whole heads'))).toBe(true);
        const r = await verify('models/tiny-llama.gy', { hw, strategy, batch: 2, seq: 8, set });
        expect(r.ok, r.fault ?? JSON.stringify(r.failures.slice(0, 3))).toBe(true);
      }
    });
  }

  it('compute the model when heads are dealt within rows (verify), every strategy but optimus', async () => {
    for (const strategy of ['hecaton', 'megatron', 'torus'] as const) {
      const r = await verify('models/tiny-gpt.gy', { hw: 'hecaton-4x4-standard', strategy, batch: 2, seq: 8, set: { h: 80, heads: 20 } });
      expect(r.ok, `${strategy}: ${r.fault ?? JSON.stringify(r.failures.slice(0, 3))}`).toBe(true);
    }
  });

  it('compute the model under optimus, heads dealt over its columns (verify)', async () => {
    for (const [hw, set] of [
      ['hecaton-4x4-standard', DEALT],
      ['hecaton-3x3-standard', { h: 64, heads: 8 }],
    ] as const) {
      const lines = compile('models/tiny-gpt.gy', { hw, strategy: 'optimus', set }).passes.find((p) => p.pass === 'tile2d')!.reports;
      expect(lines.some((l) => l.includes('deal whole heads over the'))).toBe(true);
      const r = await verify('models/tiny-gpt.gy', { hw, strategy: 'optimus', batch: 2, seq: 8, set });
      expect(r.ok, `${hw}: ${r.fault ?? JSON.stringify(r.failures.slice(0, 3))}`).toBe(true);
    }
    // Rotary embeddings keep optimus's dealt blocks (whole heads per die).
    const set = { h: 80, heads: 10, kv_heads: 10 };
    const lines = compile('models/tiny-llama.gy', { hw: 'hecaton-3x3-standard', strategy: 'optimus', set }).passes.find((p) => p.pass === 'tile2d')!.reports;
    expect(lines.some((l) => l.includes('deal whole heads over the 3 columns of dies, 3 or 4 per column'))).toBe(true);
    const r = await verify('models/tiny-llama.gy', { hw: 'hecaton-3x3-standard', strategy: 'optimus', batch: 2, seq: 8, set });
    expect(r.ok, r.fault ?? JSON.stringify(r.failures.slice(0, 3))).toBe(true);
  });

  it("move each row's own heads along the row", () => {
    const c = compile('models/tiny-gpt.gy', { hw: 'hecaton-4x4-standard', set: DEALT });
    const set = programsOf(c.module)!;
    // The query projection's partial sums, reduce-scattered along each row into its heads:
    // a row of one head sends half what a row of two does.
    const sent = (i: number) => {
      const found: number[] = [];
      forEachInstr(set.programFor({ i, j: 0 }).instructions, (ins) => {
        if (ins.kind === 'collective' && ins.op === 'reduce_scatter' && ins.axis === 'c' && ins.phase === 'fwd' && ins.block === 'attention' && ins.layer === 0) found.push(ins.sentBytes);
      });
      return found;
    };
    expect(sent(0).length).toBeGreaterThan(0);
    expect(sent(1)).toEqual(sent(0).map((x) => 2 * x));
    expect(sent(2)).toEqual(sent(0));
  });

  it('time alike with one die per class as with every die', () => {
    const c = compile('models/tiny-gpt.gy', { hw: 'hecaton-4x4-standard', set: DEALT });
    const set = programsOf(c.module)!;
    // Score all-reduces run on runs of 4 dies in rows of one head, 2 in rows of two.
    const fromShared = executePrograms(sourceOfSet(set), c.target, { symmetry: true });
    const fromPrograms = executePrograms({ ...sourceOfSet(set), shared: undefined }, c.target, { symmetry: true });
    const plain = executePrograms(sourceOfSet(set), c.target, { symmetry: false });
    expect(fromShared).toEqual(fromPrograms);
    expectSameTiming(fromShared, plain);
  });
});

describe('grouped-query gradients whose key/value heads straddle a row of dies', () => {
  // 6 query heads, one per die of 2x3, share 3 key/value heads in pairs: dies [0, 2] and
  // [1, 0] share one. Summed over the row and then the column, [0, 2] never met [1, 0]'s
  // contribution (dv off by 100% under megatron and torus); now they are summed over both axes at once.
  for (const strategy of ['megatron', 'torus', 'hecaton'] as const) {
    it(`computes the model (verify), ${strategy}`, async () => {
      const r = await verify('models/tiny-llama.gy', { hw: 'hecaton-2x3-standard', strategy, batch: 2, seq: 8, set: { h: 48, heads: 6, kv_heads: 3 } });
      expect(r.ok, r.fault ?? JSON.stringify(r.failures.slice(0, 3))).toBe(true);
    });
  }
});
