// Where dies outnumber the heads, hecaton's attention core either slices each head over
// several dies (all-reducing partial scores) or keeps whole heads on one axis and splits the
// queries over the other (gathering keys and values): query-split.ts weighs the two. These
// tests pin the arithmetic of that choice, the layouts it gives the core and its rotary
// embeddings, which collectives count as the core's own (not Table III's), and that the
// programs compute the model either way (verify).

import { describe, expect, it } from 'vitest';
import { compile } from '../../src/compile.js';
import { verify } from '../../src/backend/functional/verify.js';
import type { Op } from '../../src/ir/module.js';
import { parseSharding } from '../../src/passes/sharding.js';
import { opFootprint } from '../../src/passes/minibatch.js';
import { activationValues } from '../../src/passes/activations.js';

type Set = Record<string, number>;

function core(model: string, hw: string, set: Set, seq?: number, strategy: 'hecaton' | 'megatron' = 'hecaton') {
  const c = compile(model, { hw, strategy, set, ...(seq ? { seq } : {}) });
  const op = (kind: string) => c.module.ops().find((o) => o.kind === kind)!;
  return { c, attention: op('attention'), grad: op('attention_grad') };
}

/**
 * Per sample on a die's busiest link, worked out here from the ring formulas (eq. (1)-(2)),
 * run both ways as the core's own steps are (collective-cost.ts, bidirectional): the score
 * all-reduce among the dies sharing a head, a group over both axes of dies, has each
 * direction to itself and moves ⌈(g−1)/2⌉ of the ring's g−1 pieces a phase; the key/value
 * gathers along one axis of dies run on its folded ring, whose two directions share the
 * links: the ring's bytes.
 */
function expected(seq: number, width: number, headsPerDie: number, perHead: number, queryDies: number) {
  const scores = seq * seq * 4;
  const slices = 3 * ((2 * Math.ceil((perHead - 1) / 2)) / perHead) * scores;
  const kv = seq * width * headsPerDie * 4;
  // k and v: gathered forward and backward, dk and dv reduce-scattered.
  const query = 2 * 3 * ((queryDies - 1) / queryDies) * kv;
  return { slices, query };
}

describe('QuerySplits: slices of heads or split queries, by the bytes each moves', () => {
  it('splits the queries when the scores outweigh the keys and values (4 heads of 16, sequence 32, 4x4)', () => {
    const { attention, grad } = core('models/tiny-gpt.gy', 'hecaton-4x4-standard', {});
    const e = expected(32, 16, 1, 4, 4);
    expect(e).toEqual({ slices: 12288, query: 9216 });
    expect(attention.notes?.['tile2d.queries']).toBe('split: 9.00 KiB per sample on the busiest link, against 12.00 KiB for heads sliced over 4 dies');
    // Whole heads over the rows of dies, the queries over the columns; k and v whole per head.
    expect(attention.notes?.['tile2d.in']).toBe('[c, r]; [-, r]; [-, r]');
    expect(grad.notes?.['tile2d.in']).toBe('[c, r]; [-, r]; [-, r]; [c, r]');
    expect(grad.notes?.['tile2d.out']).toBe('[c, r]; [-, r]~c; [-, r]~c');
  });

  it('slices the heads when the keys and values outweigh the scores (4 heads of 64, sequence 8)', () => {
    const { attention } = core('models/tiny-gpt.gy', 'hecaton-4x4-standard', { h: 256 }, 8);
    const e = expected(8, 64, 1, 4, 4);
    expect(e.slices).toBeLessThan(e.query);
    expect(attention.notes?.['tile2d.queries']).toBeUndefined();
    expect(attention.notes?.['tile2d.in']).toBe('[-, rc]; [-, rc]; [-, rc]');
  });

  it('counts what sliced heads cost rotary embeddings and grouped-query keys and values', () => {
    // tiny-llama, 4 query heads of 16 sharing 2 key/value heads, sequence 32, on 4x4. Sliced
    // heads need q, k and v whole per head first: an all-reduce of each projection over the
    // columns of dies rather than a reduce-scatter, a gather more, forward and backward.
    const { attention } = core('models/tiny-llama.gy', 'hecaton-4x4-standard', {}, 32);
    const gather = (cols: number) => (3 / 4) * 32 * cols * 4;
    const slices = expected(32, 16, 1, 4, 4).slices + 2 * (gather(64 / 4) + gather(32 / 4) + gather(32 / 4));
    expect(slices).toBe(18432);
    expect(attention.notes?.['tile2d.queries']).toBe('split: 9.00 KiB per sample on the busiest link, against 18.00 KiB for heads sliced over 4 dies');
  });

  it('leaves the baselines their Table III layouts', () => {
    const { attention } = core('models/tiny-gpt.gy', 'hecaton-4x4-standard', {}, undefined, 'megatron');
    expect(attention.notes?.['tile2d.queries']).toBeUndefined();
    expect(String(attention.notes?.['tile2d.in']).split('; ')[0]).not.toMatch(/^\[[rc]/);
  });

  it('is made once per shape: a core and its gradient agree on every layer', () => {
    const { c } = core('models/tiny-gpt.gy', 'hecaton-4x4-standard', { layers: 3 });
    const cores = c.module.ops().filter((o) => o.kind === 'attention' || o.kind === 'attention_grad');
    expect(cores).toHaveLength(6);
    expect(new Set(cores.map((o) => String(o.notes?.['tile2d.in']).split('; ')[0]))).toEqual(new Set(['[c, r]']));
  });
});

describe('the mini-batch estimate of split queries', () => {
  it("counts a die's score rows only: its heads × its query rows × the keys", () => {
    const { c, attention } = core('models/tiny-gpt.gy', 'hecaton-4x4-standard', {});
    const spec = (i: number) => parseSharding(String(attention.notes?.['tile2d.in']).split('; ')[i]!);
    const t = { in: [0, 1, 2].map(spec), out: [parseSharding(String(attention.notes?.['tile2d.out']))] };
    const f = opFootprint(attention, t, { rows: 4, cols: 4 }, activationValues(c.module));
    // q and the output: 2·32/4 rows × 16 columns; k and v: 2·32 rows × 16; scores 1 head × 16 rows × 32 keys.
    const tiles = 2 * (16 * 16 * 4) + 2 * (64 * 16 * 4);
    expect(f.fixed).toBe(tiles + 16 * 32 * 4);
  });
});

describe('collectives of split queries', () => {
  const kinds = (ops: Op[]) => ops.map((o) => `${o.kind} ${o.attrs.axis as string} ${(o.notes?.['collective.part_of'] as string | undefined) ?? 'layout'}`);

  it("count the gathers of k and v and the sums of dk and dv as the core's own, the rest as layout", () => {
    const { c } = core('models/tiny-gpt.gy', 'hecaton-4x4-standard', { layers: 1 });
    const ops = c.module.ops();
    const of = (name: string) => ops.filter((o) => o.results[0]!.name.startsWith(`${name}@`));
    // The fused projection's output is reduce-scattered onto the rows once (Table III's step);
    // k's and v's tiles are gathered whole along the query axis by the core, forward and backward.
    expect(kinds(of('layer.0.k'))).toEqual(['all_gather c attention', 'all_gather c attention_grad']);
    expect(kinds(of('layer.0.v'))).toEqual(['all_gather c attention', 'all_gather c attention_grad']);
    // dk and dv, partial over the query blocks, are summed onto the rows by the core; joined
    // with dq there, all three are gathered once as the projection's gradient reads them (the
    // gather Table III counts for the sliced heads').
    expect(kinds(of('grad.layer.0.k'))).toEqual(['reduce_scatter c attention_grad']);
    expect(kinds(of('grad.layer.0.v'))).toEqual(['reduce_scatter c attention_grad']);
    expect(kinds(of('grad.layer.0.linear'))).toEqual(['all_gather c layout']);
  });

  it('give grouped-query keys with rotary embeddings the queries’ rows, summed onto them backward', () => {
    const c = compile('models/tiny-llama.gy', { hw: 'hecaton-4x4-standard', seq: 32, set: { layers: 1 } });
    const ops = c.module.ops();
    const named = (name: string) => ops.find((o) => o.results[0]!.name === name)!;
    expect(named('layer.0.a').notes?.['tile2d.in']).toBe('[c, r]; [-, r:kv4/2]; [-, r:kv4/2]');
    expect(named('layer.0.q').notes?.['tile2d.out']).toBe('[c, r]');
    expect(named('layer.0.k').notes?.['tile2d.out']).toBe('[c, r:kv4/2]');
    const dk = ops.filter((o) => o.results[0]!.name.startsWith('grad.layer.0.k@'));
    expect(kinds(dk)).toEqual(['all_reduce r attention_grad', 'reduce_scatter c attention_grad']);
    expect(dk.at(-1)!.notes?.['tile2d.out']).toBe('[c, r:kv4/2]');
  });
});

describe('programs of split queries compute the model (verify)', () => {
  const cases: [string, string, Set, number][] = [
    ['models/tiny-gpt.gy', 'hecaton-4x4-standard', {}, 32],
    // Heads over the columns, queries over the rows.
    ['models/tiny-gpt.gy', 'hecaton-2x4-standard', {}, 32],
    ['models/tiny-gpt.gy', 'hecaton-4x8-standard', { heads: 8 }, 32],
    ['models/tiny-llama.gy', 'hecaton-4x4-standard', {}, 32],
    ['models/tiny-llama.gy', 'hecaton-4x4-standard', { kv_heads: 1 }, 32],
  ];
  for (const [model, hw, set, seq] of cases) {
    it(`${model.slice(7)} ${JSON.stringify(set)} sequence ${seq} on ${hw}`, async () => {
      const { attention } = core(model, hw, set, seq);
      expect(attention.notes?.['tile2d.queries']).toMatch(/^split/);
      const r = await verify(model, { hw, batch: 2, seq, set });
      expect(r.ok, r.fault ?? JSON.stringify(r.failures.slice(0, 3))).toBe(true);
      expect(r.compared.grad).toBeGreaterThan(0);
    });
  }
});
