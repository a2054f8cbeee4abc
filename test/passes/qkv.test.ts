// The qkv pass: an attention core's projections from one input become one Linear over the
// concatenation of their weights, split into the core's q, k and v; the model computes the
// same numbers (verify), and the projections' collectives are paid once instead of per piece.

import { describe, expect, it } from 'vitest';
import { compile } from '../../src/compile.js';
import { loadModel } from '../../src/frontend/load.js';
import { parseDsl } from '../../src/frontend/dsl/index.js';
import { fuseProjections } from '../../src/passes/qkv.js';
import { verify } from '../../src/backend/functional/verify.js';
import type { Module } from '../../src/ir/module.js';
import { programsOf } from '../../src/passes/schedule/index.js';
import { forEachInstr } from '../../src/backend/program.js';

function block(lines: readonly string[]): Module {
  return parseDsl(['model "m"', 'let batch = 2', 'let seq = 8', 'let h = 32', 'input x: f32[batch, seq, h]', 'input y: f32[batch, seq, h]', ...lines].join('\n'), 'm.gy', {});
}

const kinds = (m: Module) => m.ops().map((op) => op.kind);

describe('qkv', () => {
  it("fuses tiny-llama's wq, wk and wv into one Linear per layer, through the rotary embeddings", () => {
    const before = loadModel('models/tiny-llama.gy', {});
    const projected = (w: string) => before.ops().find((op) => op.kind === 'linear' && op.operands[1]!.name === w)!.results[0]!.name;
    const c = compile('models/tiny-llama.gy', { hw: 'hecaton-2x2-standard', pipeline: 'qkv' });
    const layers = c.module.ops().filter((op) => op.kind === 'attention').length;
    expect(c.module.notes['qkv.fused']).toBe(layers);
    expect(c.passes[0]!.reports.join('\n')).toMatch(new RegExp(`^${layers} attention cores: .*\\(${2 * layers} Linears fewer\\)`));
    for (const core of c.module.ops().filter((op) => op.kind === 'attention')) {
      // q and k through rope, v directly, all pieces of one split of one Linear.
      const [q, k, v] = core.operands;
      const split = v!.def!;
      expect(split.kind).toBe('split');
      expect(q!.def!.kind).toBe('rope');
      expect(q!.def!.operands[0]!.def).toBe(split);
      expect(k!.def!.operands[0]!.def).toBe(split);
      const linear = split.operands[0]!.def!;
      expect(linear.kind).toBe('linear');
      const w = linear.operands[1]!;
      expect(w.def!.kind).toBe('concat');
      expect(w.name).toMatch(/^layer\.\d+\.wq_wk_wv$/);
      expect(w.def!.operands.map((p) => p.kind)).toEqual(['param', 'param', 'param']);
      expect(split.attrs.sizes).toEqual(w.def!.operands.map((p) => p.type.shape[1]));
      // The pieces keep the names the projections' results had.
      expect(split.results.map((r) => r.name)).toEqual(w.def!.operands.map((p) => projected(p.name)));
    }
    // SwiGLU's gate and up read one input too, but feed no core: left separate.
    expect(c.module.params.filter((p) => /w_gate|w_up/.test(p.name)).every((p) => c.module.users(p).every((u) => u.kind === 'linear'))).toBe(true);
  });

  it('concatenates biases when every projection has one, and leaves a projection of another input alone', () => {
    const m = block([
      'param wq: f32[h, h]',
      'param bq: f32[h]',
      'param wk: f32[h, h]',
      'param bk: f32[h]',
      'param wv: f32[h, h]',
      'param bv: f32[h]',
      // Cross-attention: queries from x, keys and values from y.
      'a = attention(linear(x, wq, bq), linear(y, wk, bk), linear(y, wv, bv), heads = 4)',
      'output a',
    ]);
    const done = fuseProjections(m);
    expect(done).toEqual({ cores: 1, removed: 1 });
    const concats = m.ops().filter((op) => op.kind === 'concat');
    expect(concats.map((op) => op.results[0]!.name)).toEqual(['wk_wv', 'bk_bv']);
    expect(m.ops().filter((op) => op.kind === 'linear').map((op) => op.operands[0]!.name)).toEqual(['x', 'y']);
  });

  it('leaves projections whose results are used elsewhere, or that differ in biases', () => {
    const reused = block(['param wq: f32[h, h]', 'param wk: f32[h, h]', 'param wv: f32[h, h]', 'q = linear(x, wq)', 'a = attention(q, linear(x, wk), linear(x, wv), heads = 4)', 'z = add(a, q)', 'output z']);
    const before = kinds(reused);
    // q is read by the add too, so only k and v fuse.
    expect(fuseProjections(reused)).toEqual({ cores: 1, removed: 1 });
    expect(kinds(reused).filter((k) => k === 'linear')).toHaveLength(before.filter((k) => k === 'linear').length - 1);
    // A biased q does not join unbiased k and v; with k alone biased, nothing fuses.
    const biased = block(['param wq: f32[h, h]', 'param bq: f32[h]', 'param wk: f32[h, h]', 'param wv: f32[h, h]', 'a = attention(linear(x, wq, bq), linear(x, wk), linear(x, wv), heads = 4)', 'output a']);
    expect(fuseProjections(biased)).toEqual({ cores: 1, removed: 1 });
    expect(biased.ops().filter((op) => op.kind === 'linear').map((op) => op.operands[1]!.name)).toEqual(['wq', 'wk_wv']);
    const lone = block(['param wq: f32[h, h]', 'param wk: f32[h, h]', 'param bk: f32[h]', 'a = attention(linear(x, wq), linear(x, wk, bk), y, heads = 4)', 'output a']);
    expect(fuseProjections(lone)).toEqual({ cores: 0, removed: 0 });
  });

  it('leaves a training graph as it is', () => {
    const c = compile('models/tiny-llama.gy', { hw: 'hecaton-2x2-standard', pipeline: 'train,qkv' });
    expect(c.passes[1]!.reports).toEqual(['the module is already a training graph: projections left as they are']);
    expect(c.module.ops().some((op) => op.kind === 'concat' && op.results[0]!.name.endsWith('wq_wk_wv'))).toBe(false);
  });

  it('computes the same model (verify, tiny-llama, every strategy)', async () => {
    for (const strategy of ['hecaton', 'megatron', 'torus', 'optimus'] as const) {
      const r = await verify('models/tiny-llama.gy', { hw: 'hecaton-2x2-standard', strategy, batch: 2, seq: 8 });
      expect(r.ok, `${strategy}: ${r.fault ?? JSON.stringify(r.failures.slice(0, 3))}`).toBe(true);
    }
  }, 60_000);

  it("reduces hecaton's projection outputs once per core instead of once per projection", () => {
    const reductions = (pipeline: string) => {
      const c = compile('models/tiny-llama.gy', { hw: 'hecaton-4x4-standard', set: { layers: 1 }, pipeline });
      let n = 0;
      forEachInstr(programsOf(c.module)!.programFor({ i: 0, j: 0 }).instructions, (ins) => {
        if (ins.kind === 'collective' && ins.phase === 'fwd' && ins.block === 'attention' && ins.op === 'reduce_scatter') n++;
      });
      return n;
    };
    const rest = 'train,fuse,minibatch,tile2d,collectives,schedule';
    // wq, wk, wv and wo each reduce-scatter their output; fused, q, k and v share one.
    expect(reductions(rest)).toBe(4);
    expect(reductions(`qkv,${rest}`)).toBe(2);
  });

  it("sums grouped-query dv into the key/value tiles holding the fused gradient's, never whole columns", () => {
    // Backward, the split's gradient concatenates dq, dk and dv in the fused output's layout.
    // dv leaves the core partial in key/value tiles; it is summed into those tiles (which hold
    // the plain ones the concat reads), not all-reduced into whole columns first.
    const m = compile('models/tiny-llama.gy', { hw: 'hecaton-4x4-standard', set: { layers: 1 } }).module;
    const core = m.ops().find((op) => op.kind === 'attention_grad')!;
    const path: string[] = [];
    let v = core.results[2]!;
    for (;;) {
      const user = m.users(v)[0]!;
      if (user.kind === 'concat') break;
      path.push(`${user.kind} ${user.results[0]!.name.slice(user.results[0]!.name.indexOf('@'))}`);
      v = user.results[0]!;
    }
    expect(path).toEqual(['all_reduce @[-, r:kv4/2]~c', 'reduce_scatter @[c, r:kv4/2]']);
  });
});
