// The raise matchers on small hand-built graphs: each case writes the exporter's form of one
// construct (in several spellings where exporters differ) and checks the IR ops it becomes,
// their attributes, and that no generic op of the pattern is left behind. The shipped
// exports check the layer indices, source locations and the IR text round trip.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GygesError } from '../../../src/diagnostics/diagnostic.js';
import { loadModel } from '../../../src/frontend/load.js';
import type { Module, Op } from '../../../src/ir/module.js';
import { parseModule } from '../../../src/ir/parse.js';
import { printModule } from '../../../src/ir/print.js';
import { attr, bool, f32, OnnxGraphBuilder, scalarF32, seededRandom, vecI64 } from '../../support/onnx-build.js';

const SHARED = fileURLToPath(new URL('../../data/onnx/', import.meta.url));

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'gyges-raise-'));
});
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

let serial = 0;
/** Builds a graph (opset 17 unless given), writes it and raises it. */
function raise(build: (b: OnnxGraphBuilder, w: (dims: number[]) => string) => void, opset = 17): Module {
  const b = new OnnxGraphBuilder({ name: 'g', opset });
  const rand = seededRandom(++serial);
  let n = 0;
  const w = (dims: number[]) => b.initializer(`w${n++}`, f32(dims, Array.from({ length: dims.reduce((p, d) => p * d, 1) }, () => rand() - 0.5)));
  build(b, w);
  return loadModel(b.write(dir, `case${serial}.onnx`).path);
}

function kinds(m: Module): Record<string, number> {
  const out: Record<string, number> = {};
  for (const op of m.ops()) out[op.kind] = (out[op.kind] ?? 0) + 1;
  return out;
}

function only(m: Module, kind: string): Op {
  const ops = m.ops().filter((o) => o.kind === kind);
  expect(ops.length, kind).toBe(1);
  return ops[0]!;
}

const c = (b: OnnxGraphBuilder, v: number) => b.constant(scalarF32(v));

describe('Linear', () => {
  it('MatMul with a bias Add in either order, Gemm(transB), and a weight through Transpose', () => {
    const m = raise((b, w) => {
      const x = b.input('x', 'float32', [2, 8, 16]);
      const y1 = b.op('Add', [w([32]), b.op('MatMul', [x, w([16, 32])])]);
      const y2 = b.op('Add', [b.op('MatMul', [y1, b.op('Transpose', [w([16, 32])], { perm: attr.ints([1, 0]) })]), w([16])]);
      const flat = b.op('Reshape', [y2, b.constant(vecI64([-1, 16]))]);
      b.op('Gemm', [flat, w([4, 16]), w([4])], { transB: attr.int(1) }, 'y');
      b.output('y', 'float32', [16, 4]);
    });
    expect(kinds(m)).toEqual({ linear: 3, transpose: 2, reshape: 1 });
    const shapes = m.ops().filter((o) => o.kind === 'linear').map((o) => o.operands.map((v) => v.type.shape));
    expect(shapes).toEqual([
      [[2, 8, 16], [16, 32], [32]],
      [[2, 8, 32], [32, 16], [16]],
      [[2, 8, 16], [16, 4], [4]],
    ]);
  });
});

/** The decomposed LayerNorm the exporter writes below opset 17, with the variations model code introduces. */
function layerNorm(b: OnnxGraphBuilder, x: string, g: string, beta: string, form: 'div' | 'reciprocal', square: 'pow' | 'mul'): string {
  const mean = b.op('ReduceMean', [x], { axes: attr.ints([-1]) });
  const d = b.op('Sub', [x, mean]);
  const sq = square === 'pow' ? b.op('Pow', [d, c(b, 2)]) : b.op('Mul', [d, d]);
  const std = b.op('Sqrt', [b.op('Add', [c(b, 1e-6), b.op('ReduceMean', [sq], { axes: attr.ints([2]) })])]);
  const n = form === 'div' ? b.op('Div', [d, std]) : b.op('Mul', [b.op('Reciprocal', [std]), d]);
  return b.op('Add', [beta, b.op('Mul', [g, n])]);
}

describe('norms', () => {
  it('LayerNorm written out, with Div or Reciprocal·Mul and Pow or Mul squares', () => {
    const m = raise((b, w) => {
      const x = b.input('x', 'float32', [2, 4, 8]);
      const y = layerNorm(b, layerNorm(b, x, w([8]), w([8]), 'div', 'pow'), w([8]), w([8]), 'reciprocal', 'mul');
      b.op('Identity', [y], {}, 'y');
      b.output('y', 'float32', [2, 4, 8]);
    }, 14);
    expect(kinds(m)).toEqual({ layernorm: 2 });
    for (const op of m.ops()) expect(op.attrs.eps).toBeCloseTo(1e-6, 12);
  });

  it('RMSNorm: Cast, Pow, ReduceMean (axes input at opset 18), Add eps, Sqrt, Div(1, ·), Mul, Mul γ', () => {
    const m = raise((b, w) => {
      const x = b.input('x', 'float32', [2, 4, 8]);
      const x32 = b.op('Cast', [x], { to: attr.int(1) });
      const ms = b.op('ReduceMean', [b.op('Pow', [x32, c(b, 2)]), b.constant(vecI64([-1]))], { keepdims: attr.int(1) });
      const r = b.op('Div', [c(b, 1), b.op('Sqrt', [b.op('Add', [ms, c(b, 1e-5)])])]);
      b.op('Mul', [w([8]), b.op('Mul', [x32, r])], {}, 'y');
      b.output('y', 'float32', [2, 4, 8]);
    }, 18);
    expect(kinds(m)).toEqual({ rmsnorm: 1 });
    expect(only(m, 'rmsnorm').attrs.eps).toBeCloseTo(1e-5, 10);
  });
});

describe('activations', () => {
  it('GeLU: the erf form and two tanh spellings, in different groupings', () => {
    const m = raise((b) => {
      const x = b.input('x', 'float32', [2, 8]);
      // x · 0.5 · (1 + erf(x / √2))
      const e = b.op('Mul', [b.op('Mul', [x, b.op('Add', [b.op('Erf', [b.op('Div', [x, c(b, Math.SQRT2)])]), c(b, 1)])]), c(b, 0.5)]);
      // 0.5·x · (1 + tanh(√(2/π)·(x + 0.044715·x³))) with Pow
      const inner = b.op('Add', [e, b.op('Mul', [b.op('Pow', [e, c(b, 3)]), c(b, 0.044715)])]);
      const t = b.op('Mul', [b.op('Mul', [e, c(b, 0.5)]), b.op('Add', [b.op('Tanh', [b.op('Mul', [inner, c(b, Math.sqrt(2 / Math.PI))])]), c(b, 1)])]);
      // the exporter's symbolic: x·(x·x), κ·(x + 0.044715·x³)
      const cube = b.op('Mul', [t, b.op('Mul', [t, t])]);
      const k = b.op('Mul', [c(b, Math.sqrt(2 / Math.PI)), b.op('Add', [t, b.op('Mul', [c(b, 0.044715), cube])])]);
      b.op('Mul', [c(b, 0.5), b.op('Mul', [t, b.op('Add', [c(b, 1), b.op('Tanh', [k])])])], {}, 'y');
      b.output('y', 'float32', [2, 8]);
    });
    expect(kinds(m)).toEqual({ gelu: 3 });
    expect(m.ops().map((o) => o.attrs.approximate)).toEqual(['none', 'tanh', 'tanh']);
  });

  it('SiLU as x·Sigmoid(x), and SwiGLU as silu(gate)·up', () => {
    const m = raise((b, w) => {
      const x = b.input('x', 'float32', [2, 4, 8]);
      const gate = b.op('MatMul', [x, w([8, 16])]);
      const up = b.op('MatMul', [x, w([8, 16])]);
      const act = b.op('Mul', [b.op('Sigmoid', [gate]), gate]);
      b.op('MatMul', [b.op('Mul', [act, up]), w([16, 8])], {}, 'y');
      b.output('y', 'float32', [2, 4, 8]);
    });
    expect(kinds(m)).toEqual({ linear: 3, silu: 1, mul: 1 });
  });

  it('a near miss stays generic: 0.4·x·(1 + erf(x/√2)) is not a GeLU', () => {
    const m = raise((b) => {
      const x = b.input('x', 'float32', [2, 8]);
      b.op('Mul', [b.op('Mul', [x, b.op('Add', [b.op('Erf', [b.op('Div', [x, c(b, Math.SQRT2)])]), c(b, 1)])]), c(b, 0.4)], {}, 'y');
      b.output('y', 'float32', [2, 8]);
    });
    expect(kinds(m).gelu).toBeUndefined();
    expect(kinds(m).unary).toBe(1);
  });
});

interface AttnOptions {
  readonly heads: number;
  readonly kvHeads?: number;
  /** Where the 1/√d goes: on the scores (Mul or Div), or d^-¼ on both q and k. */
  readonly scale: 'mul' | 'div' | 'qk';
  readonly mask: 'trilu' | 'padding' | 'none';
  readonly rope?: boolean;
}

/**
 * One attention block in the exporter's layout: projections, Reshape + Transpose head split,
 * scores, mask, softmax, weighted sum, Transpose + Reshape merge, output projection.
 */
function attentionBlock(b: OnnxGraphBuilder, w: (dims: number[]) => string, o: AttnOptions): void {
  const [B, S, H] = [2, 8, 32];
  const d = H / o.heads;
  const kv = o.kvHeads ?? o.heads;
  const x = b.input('x', 'float32', [B, S, H]);
  const mask = o.mask === 'padding' ? b.input('mask', 'float32', [B, S]) : undefined;
  const split = (t: string, n: number) => b.op('Transpose', [b.op('Reshape', [t, b.constant(vecI64([B, S, n, d]))])], { perm: attr.ints([0, 2, 1, 3]) });
  let q = split(b.op('MatMul', [x, w([H, H])]), o.heads);
  let k = split(b.op('MatMul', [x, w([H, kv * d])]), kv);
  let v = split(b.op('MatMul', [x, w([H, kv * d])]), kv);
  if (o.rope) [q, k] = [rope(b, q, S, d), rope(b, k, S, d)];
  if (kv !== o.heads) {
    const rep = (t: string) => b.op('Reshape', [b.op('Expand', [b.op('Unsqueeze', [t, b.constant(vecI64([2]))]), b.constant(vecI64([B, kv, o.heads / kv, S, d]))]), b.constant(vecI64([B, o.heads, S, d]))]);
    [k, v] = [rep(k), rep(v)];
  }
  if (o.scale === 'qk') [q, k] = [b.op('Mul', [q, c(b, d ** -0.25)]), b.op('Mul', [c(b, d ** -0.25), k])];
  let s = b.op('MatMul', [q, b.op('Transpose', [k], { perm: attr.ints([0, 1, 3, 2]) })]);
  if (o.scale === 'mul') s = b.op('Mul', [s, c(b, 1 / Math.sqrt(d))]);
  if (o.scale === 'div') s = b.op('Div', [s, c(b, Math.sqrt(d))]);
  if (o.mask === 'trilu') {
    const ones = b.constant(bool([S, S], new Array<number>(S * S).fill(1)));
    const cond = b.op('Not', [b.op('Trilu', [ones], { upper: attr.int(0) })]);
    s = b.op('Where', [cond, c(b, -Infinity), s]);
  }
  if (mask) {
    const m4 = b.op('Unsqueeze', [mask, b.constant(vecI64([1, 2]))]);
    s = b.op('Add', [s, b.op('Mul', [b.op('Sub', [c(b, 1), m4]), c(b, -10000)])]);
  }
  const y = b.op('MatMul', [b.op('Softmax', [s], { axis: attr.int(-1) }), v]);
  const merged = b.op('Reshape', [b.op('Transpose', [y], { perm: attr.ints([0, 2, 1, 3]) }), b.constant(vecI64([B, S, H]))]);
  b.op('MatMul', [merged, w([H, H])], {}, 'y');
  b.output('y', 'float32', [B, S, H]);
}

/** rotate-half RoPE with cos/sin tables for θ = 10000 as constants [S, d]. */
function rope(b: OnnxGraphBuilder, x: string, S: number, d: number): string {
  const table = (fn: (a: number) => number) => f32([S, d], Array.from({ length: S * d }, (_, i) => fn(Math.floor(i / d) * 10000 ** (-(2 * (i % (d / 2))) / d))));
  const x1 = b.op('Slice', [x, b.constant(vecI64([0])), b.constant(vecI64([d / 2])), b.constant(vecI64([-1]))]);
  const x2 = b.op('Slice', [x, b.constant(vecI64([d / 2])), b.constant(vecI64([d])), b.constant(vecI64([-1]))]);
  const rot = b.op('Concat', [b.op('Neg', [x2]), x1], { axis: attr.int(-1) });
  return b.op('Add', [b.op('Mul', [x, b.constant(table(Math.cos))]), b.op('Mul', [rot, b.constant(table(Math.sin))])]);
}

describe('attention', () => {
  for (const scale of ['mul', 'div', 'qk'] as const) {
    it(`raises the core with a causal Trilu mask, scale by ${scale}, and no layout ops left`, () => {
      const m = raise((b, w) => attentionBlock(b, w, { heads: 4, scale, mask: 'trilu' }));
      expect(kinds(m)).toEqual({ linear: 4, attention: 1 });
      const a = only(m, 'attention');
      expect(a.attrs).toEqual({ heads: 4, causal: true });
      expect(a.operands.map((v) => v.type.shape)).toEqual([[2, 8, 32], [2, 8, 32], [2, 8, 32]]);
    });
  }

  it('an additive padding mask from an input becomes the mask operand', () => {
    const m = raise((b, w) => attentionBlock(b, w, { heads: 2, scale: 'div', mask: 'padding' }));
    const a = only(m, 'attention');
    expect(a.attrs.causal).toBe(false);
    expect(a.operands[3]!.type.shape).toEqual([2, 1, 1, 8]);
  });

  it('grouped-query attention: repeated key/value heads give kv_heads', () => {
    const m = raise((b, w) => attentionBlock(b, w, { heads: 4, kvHeads: 2, scale: 'div', mask: 'trilu' }));
    expect(kinds(m)).toEqual({ linear: 4, attention: 1 });
    const a = only(m, 'attention');
    expect(a.attrs).toEqual({ heads: 4, kv_heads: 2, causal: true });
    expect(a.operands[1]!.type.shape).toEqual([2, 8, 16]);
  });

  it('rotary embeddings on q and k (before the key heads repeat) become rope ops', () => {
    const m = raise((b, w) => attentionBlock(b, w, { heads: 4, kvHeads: 2, scale: 'div', mask: 'trilu', rope: true }));
    expect(kinds(m)).toEqual({ linear: 4, rope: 2, attention: 1 });
    expect(m.ops().filter((o) => o.kind === 'rope').map((o) => o.attrs)).toEqual([{ heads: 4, theta: 10000 }, { heads: 2, theta: 10000 }]);
  });

  it('a scale on q that another node also reads stays a generic mul; the core takes only the one on k', () => {
    const m = raise((b, w) => {
      attentionBlock(b, w, { heads: 4, scale: 'qk', mask: 'none' });
      const q = b.nodes.find((n) => n.opType === 'Mul')!.outputs[0]!;
      b.op('Identity', [q], {}, 'q_out');
      b.output('q_out', 'float32', [2, 4, 8, 8]);
    });
    expect(only(m, 'attention').attrs.scale).toBeCloseTo(8 ** -0.25, 6);
    expect(kinds(m).mul).toBe(1);
  });
});

describe('the shipped exports', () => {
  const tiny = join(SHARED, 'gpt2_tiny_l2_h64.onnx');

  it('gives each Transformer block its layer, and none to embeddings, final norm and head', () => {
    const m = loadModel(tiny);
    const byLayer = new Map<string, string[]>();
    for (const op of m.ops()) byLayer.set(String(op.layer), [...(byLayer.get(String(op.layer)) ?? []), op.kind]);
    expect([...byLayer.keys()]).toEqual(['undefined', '0', '1']);
    expect(byLayer.get('0')).toEqual(byLayer.get('1'));
    expect(byLayer.get('0')!.filter((k) => k === 'linear')).toHaveLength(4);
    expect(byLayer.get('undefined')!.sort()).toEqual(['add', 'embedding', 'layernorm', 'linear', 'slice']);
  });

  it('points every op at its ONNX node, and the IR text round-trips', () => {
    const m = loadModel(tiny);
    for (const op of m.ops()) expect(op.loc?.node, op.kind).toMatch(/./);
    expect(only(m, 'embedding').loc?.node).toBe('/wte/Gather');
    const text = printModule(m);
    expect(text).toContain(`loc(${JSON.stringify(tiny)} node "/blocks.0/MatMul_1")`);
    expect(printModule(parseModule(text, 'tiny.gyir'))).toBe(text);
  });

  it('reads the encoder’s sequence-first layout and merged heads without a layout op', () => {
    const m = loadModel(join(SHARED, 'encoder_torch_l2_h64.onnx'));
    const n = kinds(m);
    expect(n.reshape).toBeUndefined();
    expect(n.split).toBe(2);
    expect(m.ops().filter((o) => o.kind === 'attention').map((o) => o.operands[0]!.type.shape)).toEqual([[2, 16, 64], [2, 16, 64]]);
  });
});

describe('errors', () => {
  it('a construct with no IR form fails with GY5008 naming the node', () => {
    let err: unknown;
    try {
      raise((b, w) => {
        const x = b.input('x', 'float32', [2, 4, 8]);
        b.node('LayerNormalization', [x, w([4, 8]), w([4, 8])], { outputNames: ['y'], attrs: { axis: attr.int(1) } });
        b.output('y', 'float32', [2, 4, 8]);
      });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(GygesError);
    expect((err as GygesError).code).toBe('GY5008');
    expect((err as GygesError).message).toMatch(/node '\/LayerNormalization'/);
  });

  it('Mod with fmod=1 (truncated remainder) is refused rather than lowered to the floored IR mod', () => {
    const mod = (fmod: number) => () =>
      raise((b) => {
        const x = b.input('x', 'float32', [2, 4]);
        const y = b.input('y', 'float32', [2, 4]);
        b.node('Mod', [x, y], { outputNames: ['z'], attrs: { fmod: attr.int(fmod) } });
        b.output('z', 'float32', [2, 4]);
      });
    expect(mod(1)).toThrow(/GY5008.*fmod=1/);
    expect(mod(0)).not.toThrow();
  });
});
