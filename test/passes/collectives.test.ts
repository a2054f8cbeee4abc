// The collectives pass reduces a partial sum that is split along its last axis once, before
// the split, when every piece would be reduced the same way right after it: the fused QKV
// projection's [b·s, 3h] output takes one reduce-scatter (paper eq. (4), T_RS_QKV), not one
// per q, k and v. Same bytes, one link latency: Table III's Hecaton latency (eq. (3), 2 L_AG +
// 2 L_RS per forward block, 4 L_AG + 2 L_RS per backward block) counts each step once.

import { describe, expect, it } from 'vitest';
import { compile } from '../../src/compile.js';
import { parseDsl } from '../../src/frontend/dsl/index.js';
import { programsOf } from '../../src/passes/schedule/index.js';
import { forEachInstr } from '../../src/backend/program.js';
import type { Module, Op } from '../../src/ir/module.js';
import type { Strategy } from '../../src/passes/pass.js';
import { conversionSteps } from '../../src/passes/collectives.js';
import { formatSharding, kvSharding, runLength, sharding } from '../../src/passes/sharding.js';

const COLLECTIVES = new Set(['reduce_scatter', 'all_reduce', 'all_gather', 'broadcast']);

function splitsOf(m: Module): Op[] {
  return m.ops().filter((op) => op.kind === 'split');
}

/** The collectives reading `op`'s results (directly). */
function collectivesAfter(m: Module, op: Op): Op[] {
  return op.results.flatMap((r) => m.users(r)).filter((u) => COLLECTIVES.has(u.kind));
}

describe('collectives: one reduction before a split', () => {
  it('reduce-scatters the fused QKV projection once, before the split (hecaton)', () => {
    const m = compile('models/tiny-gpt.gy', { hw: 'hecaton-2x2-standard', strategy: 'hecaton' }).module;
    const fwd = splitsOf(m).filter((op) => op.notes?.['train.phase'] === 'fwd');
    expect(fwd).toHaveLength(2);
    for (const split of fwd) {
      const rs = split.operands[0]!.def!;
      expect(rs.kind).toBe('reduce_scatter');
      expect([rs.attrs.axis, rs.attrs.dim, rs.notes?.['tile2d.in'], rs.notes?.['tile2d.out']]).toEqual(['c', 'cols', '[-, r]~c', '[-, rc]']);
      // The whole [b·s, 3h] output: three times a piece's bytes, in one collective.
      expect(rs.operands[0]!.def!.kind).toBe('linear');
      expect(rs.operands[0]!.type.shape.at(-1)).toBe(3 * split.results[0]!.type.shape.at(-1)!);
      expect(split.notes?.['collectives.hoisted']).toBe('reduce_scatter c');
      expect(split.notes?.['tile2d.out']).toBe('[-, rc]; [-, rc]; [-, rc]');
      // q, k and v reach attention as they leave the split.
      expect(collectivesAfter(m, split)).toEqual([]);
      for (const piece of split.results) expect(m.users(piece).some((u) => u.kind === 'attention')).toBe(true);
    }
  });

  for (const strategy of ['megatron', 'torus', 'optimus'] as Strategy[]) {
    it(`leaves ${strategy} alone: its QKV output is not a partial sum`, () => {
      const m = compile('models/tiny-gpt.gy', { hw: 'hecaton-2x2-standard', strategy }).module;
      for (const split of splitsOf(m)) expect(split.notes?.['collectives.hoisted']).toBeUndefined();
    });
  }

  const model = (tail: string) =>
    parseDsl(['model "m"', 'let batch = 2', 'let seq = 32', 'let h = 64', 'input x: f32[batch, seq, h]', 'param w: f32[h, 2 * h]', tail].join('\n'), 'm.gy', {});

  it('hoists whatever reduction every piece shares (two row-wise consumers: onto the rows)', () => {
    const m = compile(model('q, r = split(linear(x, w), axis = -1, sizes = [h, h])\ny = add(gelu(q), gelu(r))\noutput y'), { hw: 'hecaton-2x2-standard', strategy: 'hecaton', mode: 'inference' }).module;
    const [split] = splitsOf(m);
    expect(split!.notes?.['collectives.hoisted']).toBe('reduce_scatter c');
    expect(split!.operands[0]!.def!.notes?.['tile2d.out']).toBe('[c, r]');
    expect(collectivesAfter(m, split!)).toEqual([]);
  });

  it('keeps one reduction per piece when the pieces are reduced differently', () => {
    // q goes to attention (reduced onto the columns, heads over all dies), r to a row-wise op (onto the rows).
    const m = compile(model('q, r = split(linear(x, w), axis = -1, sizes = [h, h])\na = attention(q, q, q, heads = 4)\ny = gelu(r)\noutput a, y'), { hw: 'hecaton-2x2-standard', strategy: 'hecaton', mode: 'inference' }).module;
    const [split] = splitsOf(m);
    expect(split!.notes?.['collectives.hoisted']).toBeUndefined();
    expect(split!.notes?.['tile2d.in']).toBe('[-, r]~c');
    expect(collectivesAfter(m, split!).map((op) => op.notes?.['tile2d.out']).sort()).toEqual(['[-, rc]', '[c, r]']);
  });
});

describe("Table III's Hecaton link latency: each block's collectives, counted once", () => {
  // Per block, 2 all-gathers and 2 reduce-scatters forward, 4 and 2 backward, each over a row
  // or column ring of √N dies: (√N−1) steps of 2α apiece, so 8(√N−1)α and 12(√N−1)α.
  for (const [model, side] of [
    ['bert-large', 4],
    ['bloom-1.7b', 8],
  ] as const) {
    it(`${model} on ${side * side} dies`, () => {
      const c = compile(`models/${model}.gy`, { hw: `hecaton-${side}x${side}-standard`, strategy: 'hecaton', set: { layers: 3 } });
      const p = programsOf(c.module)!.programFor({ i: 1, j: 1 });
      const got = new Map<string, { ops: string[]; steps: number }>();
      forEachInstr(p.instructions, (ins) => {
        // Layout collectives of the middle layer; attention cores' own steps and the update's
        // bias and norm-parameter all-reduces are outside Table III.
        if (ins.kind !== 'collective' || ins.layer !== 1 || ins.partOf !== null || ins.phase === 'update') return;
        const key = `${ins.phase}/${ins.block}`;
        const g = got.get(key) ?? { ops: [], steps: 0 };
        g.ops.push(ins.op);
        g.steps += ins.steps;
        got.set(key, g);
      });
      const count = (ops: string[]) => ({ all_gather: ops.filter((o) => o === 'all_gather').length, reduce_scatter: ops.filter((o) => o === 'reduce_scatter').length, other: ops.filter((o) => o !== 'all_gather' && o !== 'reduce_scatter').length });
      for (const block of ['fwd/attention', 'fwd/ffn', 'bwd/attention', 'bwd/ffn']) {
        const g = got.get(block)!;
        const fwd = block.startsWith('fwd');
        expect(count(g.ops), block).toEqual({ all_gather: fwd ? 2 : 4, reduce_scatter: 2, other: 0 });
        expect(g.steps, block).toBe((fwd ? 4 : 6) * (side - 1));
      }
    });
  }
});

describe('the 1-D baselines read an activation once and gather it on the package', () => {
  for (const strategy of ['megatron', 'torus'] as Strategy[]) {
    it(`${strategy}: each die reads its 1/N share; the gathers are part of the read, outside Table III`, () => {
      const c = compile('models/bert-large.gy', { hw: 'hecaton-4x4-standard', strategy, set: { layers: 3 } });
      const spread = c.module.ops().filter((op) => op.notes?.['collective.part_of'] === 'dram.read');
      expect(spread.length).toBeGreaterThan(0);
      const read = new Set<string>();
      for (const op of spread) {
        // From one block of rows per die to the whole tensor on every die: one gather over all 16.
        expect([op.kind, op.attrs.axis, op.notes?.['tile2d.in'], op.notes?.['tile2d.out']]).toEqual(['all_gather', 'rc', '[rc, -]', '[-, -]']);
        read.add(op.operands[0]!.name);
      }
      // On die [1, 1], every read of those activations is a sixteenth of the tensor.
      const p = programsOf(c.module)!.programFor({ i: 1, j: 1 });
      let reads = 0;
      forEachInstr(p.instructions, (ins) => {
        if (ins.kind !== 'dram.read' || !read.has(ins.tensor)) return;
        const v = [...c.module.inputs, ...c.module.ops().flatMap((op) => op.results)].find((r) => r.name === ins.tensor)!;
        reads++;
        // Per mini-batch: rows of one mini-batch, whole columns.
        expect((ins.rows[1] - ins.rows[0]) * 16 * (ins.cols[1] - ins.cols[0])).toBeLessThanOrEqual(v.type.shape.slice(1).reduce((a, b) => a * b, c.module.notes['minibatch.size'] as number));
      });
      expect(reads).toBeGreaterThan(0);
      // Hecaton's scattered reads are its method (Algorithm 1 steps 2-3), layout traffic as before.
      const h = compile('models/bert-large.gy', { hw: 'hecaton-4x4-standard', strategy: 'hecaton', set: { layers: 3 } });
      expect(h.module.ops().some((op) => op.notes?.['collective.part_of'] === 'dram.read')).toBe(false);
    });
  }
});

describe('grouped-query keys and values move only among the dies that share them', () => {
  const grid = { rows: 32, cols: 32 };
  // Llama2-70B's K: [b, s, 1024] (8 key/value heads of 128) for queries split [-, cr] (64 heads).
  const k = { dtype: 'f32', shape: [1, 512, 1024] } as const;
  const kv = kvSharding(sharding([], ['c', 'r']), 64, 8);
  const wholeHead = kvSharding(sharding([], ['c']), 32, 8);

  it('runLength: 4 dies along a row hold a key/value head, whose slices the queries of 128 dies read', () => {
    // A die's 8 columns lie in the 4 column blocks of its head: gathered among those 4 dies.
    expect(runLength(k, sharding([], ['c']), kv, ['c'], false, grid)).toBe(4);
    expect(runLength(k, sharding([], ['c']), wholeHead, ['c'], false, grid)).toBe(4);
    // Contributions to a head come from every die of a column (each holds one slice) ...
    expect(runLength(k, kvSharding(sharding([], ['c', 'r']), 64, 8, ['c', 'r']), kvSharding(sharding([], ['c']), 32, 8, ['c']), ['r'], true, grid)).toBe(32);
    // ... and from the 4 dies of the head's run along a row.
    expect(runLength(k, kvSharding(sharding([], ['c']), 32, 8, ['c']), wholeHead, ['c'], true, grid)).toBe(4);
    // Plain layouts use the whole ring.
    expect(runLength(k, sharding([], ['c'], ['r']), sharding([], ['c']), ['r'], true, grid)).toBe(32);
  });

  it('conversionSteps: the projection reduced, then gathered among the run; a gradient summed into whole heads', () => {
    const geo = { t: k, grid };
    const fwd = conversionSteps(sharding([], ['c'], ['r']), wholeHead, 'hecaton', geo);
    expect(fwd.map((s) => `${s.kind} ${s.axes.join('')} ${formatSharding(s.to)}`)).toEqual(['all_reduce r [-, c]', 'all_gather c [-, c:kv32/8]']);
    // Whole heads hold every die's slice: reading them is local.
    expect(conversionSteps(wholeHead, kv, 'hecaton', geo)).toEqual([]);
    const bwd = conversionSteps(kvSharding(sharding([], ['c', 'r']), 64, 8, ['c', 'r']), wholeHead, 'hecaton', geo);
    expect(bwd.map((s) => `${s.kind} ${s.axes.join('')} ${formatSharding(s.to)}`)).toEqual(['all_reduce r [-, c:kv32/8]~c', 'all_reduce c [-, c:kv32/8]']);
  });

  it('tiny-llama on 8x8: no key, value or gradient of them is gathered whole', () => {
    const m = compile('models/tiny-llama.gy', { hw: 'hecaton-8x8-standard', strategy: 'hecaton', set: { layers: 3 } }).module;
    const kvSteps = m.ops().filter((op) => COLLECTIVES.has(op.kind) && /:kv/.test(`${String(op.notes?.['tile2d.in'])} ${String(op.notes?.['tile2d.out'])}`));
    expect(kvSteps.length).toBeGreaterThan(0);
    expect(kvSteps.filter((op) => op.attrs.block !== undefined).length).toBeGreaterThan(0);
    for (const op of kvSteps) expect(op.notes?.['tile2d.out']).not.toBe('[-, -]');
  });
});

describe('gradients through separate projections are summed before one reduction', () => {
  // Llama's x feeds wq, wk and wv (and w_gate and w_up): dx is the sum of one partial product
  // per projection. Adding the partials and reducing once moves a third (a half) of the bytes.
  // (Without the qkv pass, which would make wq, wk and wv one projection.)
  for (const strategy of ['hecaton', 'megatron', 'torus', 'optimus'] as const) {
    it(`tiny-llama, ${strategy}`, () => {
      const m = compile('models/tiny-llama.gy', { hw: 'hecaton-4x4-standard', strategy, pipeline: 'train,fuse,minibatch,tile2d,collectives' }).module;
      const sums = m.ops().filter((op) => op.kind === 'add' && op.operands.every((v) => v.def?.kind === 'linear_grad' || v.def?.kind === 'add'));
      // Per layer: one add for the FFN's two projections, two for attention's three.
      expect(sums.length).toBeGreaterThanOrEqual(6);
      for (const add of sums) {
        const out = String(add.notes?.['tile2d.out']);
        expect(out, add.results[0]!.name).toMatch(/~/);
        expect(add.notes?.['tile2d.in']).toBe(`${out}; ${out}`);
        // No operand is reduced on its way in: the reductions wait for the sum.
        for (const v of add.operands) expect(COLLECTIVES.has(v.def!.kind), v.name).toBe(false);
      }
      // The sum that is not added into another is what gets reduced, once.
      for (const add of sums.filter((op) => m.users(op.results[0]!).every((u) => u.kind !== 'add'))) {
        const reductions = m.users(add.results[0]!).filter((u) => u.kind === 'reduce_scatter' || u.kind === 'all_reduce');
        expect(reductions, add.results[0]!.name).toHaveLength(1);
      }
    });
  }
});
