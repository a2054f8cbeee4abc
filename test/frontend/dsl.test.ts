// The model DSL frontend (docs/dsl.md): a small GPT-like model lowers to the expected ops,
// names, shapes and layers; constants, overrides and `repeat` scoping follow the spec; every
// malformed file in dsl-errors/ fails with the one-line error its first line states; random
// damage to a valid file never escapes as anything but a GygesError; and a 126-layer model
// lowers well under a second.

import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { GygesError } from '../../src/diagnostics/diagnostic.js';
import { parseDsl } from '../../src/frontend/dsl/index.js';
import type { Module, Value } from '../../src/ir/module.js';

const GPT = `# A two-layer GPT-like decoder
model "mini-gpt"

let batch = 2
let seq = 8
let h = 16
let heads = 2
let vocab = 32
let ffn = 4 * h

input ids: i64[batch, seq]
param tok_emb: f32[vocab, h]
param pos_emb: f32[seq, h]

x = add(embedding(ids, tok_emb), pos_emb)

repeat 2 {
  param ln1_g: f32[h]
  param w_qkv: f32[h, 3 * h]
  param w_o: f32[h, h]
  param ln2_g: f32[h]
  param w_up: f32[h, ffn]
  param w_down: f32[ffn, h]
  q, k, v = split(linear(layernorm(x, ln1_g), w_qkv), axis = -1, sizes = [h, h, h])
  x = add(x, linear(attention(q, k, v, heads = heads, causal = true), w_o))
  u = gelu(linear(layernorm(x, ln2_g), w_up),
           approximate = "tanh")   # calls may span lines
  x = add(x, linear(u, w_down))
}

param lnf_g: f32[h]
logits = linear(layernorm(x, lnf_g), transpose(tok_emb, perm = [1, 0]))
output logits
`;

function value(m: Module, name: string): Value {
  const v = m.values().find((x) => x.name === name);
  if (!v) throw new Error(`no value named ${name}; have ${m.values().map((x) => x.name).join(' ')}`);
  return v;
}

/** The GygesError that `fn` throws. */
function failure(fn: () => unknown): GygesError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(GygesError);
    return e as GygesError;
  }
  throw new Error('expected a GygesError, but nothing was thrown');
}

describe('a two-layer GPT-like model', () => {
  const m = parseDsl(GPT, 'models/mini.gy');

  it('has the module name, inputs and params', () => {
    expect(m.name).toBe('mini-gpt');
    expect(m.inputs.map((v) => [v.name, v.type.dtype, v.type.shape])).toEqual([['ids', 'i64', [2, 8]]]);
    const layerParams = ['ln1_g', 'w_qkv', 'w_o', 'ln2_g', 'w_up', 'w_down'];
    expect(m.params.map((v) => v.name)).toEqual([
      'tok_emb',
      'pos_emb',
      ...layerParams.map((p) => `layer.0.${p}`),
      ...layerParams.map((p) => `layer.1.${p}`),
      'lnf_g',
    ]);
    expect(value(m, 'layer.1.w_qkv').type.shape).toEqual([16, 48]);
    expect(value(m, 'layer.0.w_up').type.shape).toEqual([16, 64]);
  });

  it('has the right ops, each with its layer', () => {
    // 2 at the top, 11 per layer, 3 for the head.
    expect(m.opCount()).toBe(27);
    const ops = m.ops();
    expect(ops.filter((o) => o.layer === 0)).toHaveLength(11);
    expect(ops.filter((o) => o.layer === 1)).toHaveLength(11);
    expect(ops.filter((o) => o.layer === undefined).map((o) => o.kind).sort()).toEqual(['add', 'embedding', 'layernorm', 'linear', 'transpose']);
    expect(ops.filter((o) => o.kind === 'attention').map((o) => o.attrs)).toEqual([
      { heads: 2, causal: true },
      { heads: 2, causal: true },
    ]);
  });

  it('names values after the DSL, prefixed with the layer inside repeat', () => {
    for (const i of [0, 1]) {
      for (const n of ['q', 'k', 'v']) expect(value(m, `layer.${i}.${n}`).type.shape).toEqual([2, 8, 16]);
      expect(value(m, `layer.${i}.u`).type.shape).toEqual([2, 8, 64]);
      // x is bound twice per layer; anonymous calls are named after their op.
      expect(value(m, `layer.${i}.x`).def?.kind).toBe('add');
      expect(value(m, `layer.${i}.x.1`).def?.kind).toBe('add');
      expect(value(m, `layer.${i}.attention`).type.shape).toEqual([2, 8, 16]);
      expect(value(m, `layer.${i}.linear.3`).type.shape).toEqual([2, 8, 16]);
    }
    expect(value(m, 'x').def?.kind).toBe('add');
    expect(value(m, 'embedding').type.shape).toEqual([2, 8, 16]);
    expect(value(m, 'logits').type).toEqual({ dtype: 'f32', shape: [2, 8, 32] });
    expect(m.outputs).toEqual([value(m, 'logits')]);
  });

  it('carries x from layer to layer and out of the loop', () => {
    const norms = m.ops().filter((o) => o.kind === 'layernorm');
    expect(norms.map((o) => o.operands[0]!.name)).toEqual(['x', 'layer.0.x', 'layer.0.x.1', 'layer.1.x', 'layer.1.x.1']);
    expect(norms.map((o) => o.layer)).toEqual([0, 0, 1, 1, undefined]);
  });

  it('locates every op at its call', () => {
    const split = m.ops().find((o) => o.kind === 'split')!;
    expect(split.loc).toEqual({ file: 'models/mini.gy', line: 24, col: 13 });
    expect(m.ops().every((o) => o.loc !== undefined)).toBe(true);
  });

  it('takes batch and seq overrides, and later constants see them', () => {
    const o = parseDsl(GPT, 'm.gy', { batch: 4, seq: 16 });
    expect(o.inputs[0]!.type.shape).toEqual([4, 16]);
    expect(value(o, 'pos_emb').type.shape).toEqual([16, 16]);
    expect(value(o, 'logits').type.shape).toEqual([4, 16, 32]);
    const wide = parseDsl(GPT, 'm.gy', { h: 32 });
    expect(value(wide, 'layer.0.w_up').type.shape).toEqual([32, 128]); // ffn = 4 * h
  });

  it('rejects an override of a constant the model does not declare', () => {
    const e = failure(() => parseDsl(GPT, 'm.gy', { depth: 3 }));
    expect(e.message).toBe("error GY2018: --set depth: the model declares no constant 'depth'");
  });
});

describe('constants', () => {
  const lower = (lets: string, dims: string) => parseDsl(`${lets}\ninput t: f32[${dims}]\noutput t`, 'c.gy').inputs[0]!.type.shape;

  it('evaluates + - * / // % ** min max with Python precedence', () => {
    expect(lower('let a = 7', 'a // 2, a % 3, -a // 2 + 5, -a % 3, 2 ** 3 ** 2, -2 ** 2 + 5, min(3, 4) * max(1, 2), 10 / 4 * 2')).toEqual([
      3, 1, 1, 2, 512, 1, 6, 5,
    ]);
    expect(lower('let a = 2\nlet b = (a + 1) * (a - 3) * -1', 'b, 2 ** -1 * 8, 1e1, 1.5e+1 - 5, 12.5 * 2 ** 1')).toEqual([3, 4, 10, 10, 25]);
  });

  it('converts attributes by their kind in the op table', () => {
    const m = parseDsl(
      'let h = 8\ninput x: f32[1, 4, h]\nparam g: f32[h]\ny = rope(layernorm(x, g, eps = 1e-5), heads = h / 4, theta = 10 / 4)\nz = reduce(y, fn = "sum", axes = [2 - 1, -1], keepdims = false)\nc = cast(z, to = "bf16")\noutput c',
      'c.gy',
    );
    const [norm, rope, reduce, cast] = m.ops();
    expect(norm!.attrs.eps).toBe(1e-5);
    expect(rope!.attrs).toEqual({ heads: 2, theta: 2.5 });
    expect(reduce!.attrs).toEqual({ fn: 'sum', axes: [1, -1], keepdims: false });
    expect(cast!.attrs).toEqual({ to: 'bf16' });
    expect(value(m, 'c').type).toEqual({ dtype: 'bf16', shape: [1] });
  });

  it('names the module after the file without a model statement', () => {
    expect(parseDsl('input x: f32[]\noutput x', 'some/dir/foo.gy').name).toBe('foo');
  });
});

describe('repeat', () => {
  it('counts layers across repeats, nested repeats keeping the outer index', () => {
    const m = parseDsl('input x: f32[4]\nrepeat 2 {\n  repeat 2 {\n    x = gelu(x)\n  }\n}\nrepeat 1 { x = silu(x) }\noutput x', 'r.gy');
    expect(m.ops().map((o) => [o.results[0]!.name, o.layer])).toEqual([
      ['layer.0.x', 0],
      ['layer.0.x.1', 0],
      ['layer.1.x', 1],
      ['layer.1.x.1', 1],
      ['layer.2.x', 2],
    ]);
    expect(m.outputs[0]!.name).toBe('layer.2.x');
  });

  it('keeps names first bound in a body, and its constants, local to one iteration', () => {
    const ok = parseDsl('input x: f32[4]\nrepeat 3 {\n  let two = 2\n  y = gelu(x)\n  x = add(x, y)\n}\noutput x', 'r.gy');
    expect(ok.ops().filter((o) => o.kind === 'add').map((o) => o.operands.map((v) => v.name))).toEqual([
      ['x', 'layer.0.y'],
      ['layer.0.x', 'layer.1.y'],
      ['layer.1.x', 'layer.2.y'],
    ]);
    const local = failure(() => parseDsl('input x: f32[4]\nrepeat 2 {\n  y = gelu(x)\n}\noutput y', 'r.gy'));
    expect(local.message).toBe("r.gy:5:8: error GY2001: undefined name 'y'");
    const constant = failure(() => parseDsl('input x: f32[4]\nrepeat 2 {\n  let c = 2\n}\nparam w: f32[c]\noutput x', 'r.gy'));
    expect(constant.message).toBe("r.gy:5:14: error GY2001: undefined name 'c'");
  });

  it('gives each iteration its own params, even when they shadow an outer name', () => {
    const m = parseDsl('input x: f32[4]\nparam w: f32[4]\nrepeat 2 {\n  param w: f32[4]\n  x = mul(x, w)\n}\ny = mul(x, w)\noutput y', 'r.gy');
    expect(m.ops().map((o) => o.operands[1]!.name)).toEqual(['layer.0.w', 'layer.1.w', 'w']);
  });
});

describe('names at the top level', () => {
  it('numbers rebindings and anonymous calls, and lets a name alias a tensor', () => {
    const m = parseDsl('input x: f32[4]\nx = gelu(gelu(x))\nx = gelu(gelu(x))\ny = x\noutput y', 'n.gy');
    expect(m.ops().map((o) => o.results[0]!.name)).toEqual(['gelu', 'x.1', 'gelu.1', 'x.2']);
    expect(m.outputs[0]!.name).toBe('x.2');
  });
});

describe('lexing', () => {
  it('skips a byte-order mark and counts CRLF line ends once', () => {
    expect(parseDsl('\uFEFFinput x: f32[2]\r\noutput x\r\n', 'l.gy').inputs[0]!.type.shape).toEqual([2]);
    const e = failure(() => parseDsl('input x: f32[2] # a comment\r\ny = gelu(z)\r\noutput y', 'l.gy'));
    expect(e.message).toBe("l.gy:2:10: error GY2001: undefined name 'z'");
  });
});

describe('malformed files', () => {
  const dir = join('test', 'frontend', 'dsl-errors');
  const files = readdirSync(dir).filter((f) => f.endsWith('.gy')).sort();

  it('are there', () => expect(files.length).toBeGreaterThanOrEqual(14));

  for (const f of files) {
    it(`${f} fails with the error of its first line`, () => {
      const text = readFileSync(join(dir, f), 'utf8');
      const expected = /^# expect: (.+)$/m.exec(text.split('\n')[0]!)?.[1];
      expect(expected, `${f} must start with '# expect: '`).toBeDefined();
      const e = failure(() => parseDsl(text, 'case.gy'));
      expect(e.message).toBe(`case.gy:${expected}`);
      expect(e.message).not.toContain('\n');
    });
  }
});

describe('robustness', () => {
  it('damaged files fail only with one-line GygesErrors', () => {
    const pieces = ['(', ')', '[', ']', '{', '}', ',', '=', ':', '"', '#', '\n', '-', '/', '//', '**', '0', '1.5', 'x', 'h', 'let', 'repeat', 'output', 'split(', '@', ' '];
    const damage = fc.record({ at: fc.nat(GPT.length), cut: fc.nat(6), insert: fc.constantFrom(...pieces) });
    fc.assert(
      fc.property(fc.array(damage, { minLength: 1, maxLength: 4 }), (edits) => {
        let text = GPT;
        for (const d of edits) text = text.slice(0, d.at) + d.insert + text.slice(d.at + d.cut);
        try {
          parseDsl(text, 'fuzz.gy');
        } catch (e) {
          if (!(e instanceof GygesError)) throw e;
          expect(e.message).not.toContain('\n');
          expect(e.message).toMatch(/^fuzz\.gy:\d+:\d+: error GY\d{4}: /);
        }
      }),
      { numRuns: 400 },
    );
  });
});

describe('scale', () => {
  // Llama-3-405B's shape: 126 layers, h 16384, GQA with 8 kv heads, SwiGLU; 20 ops a layer.
  const LLAMA = `model "llama-like"
let batch = 256
let seq = 512
let h = 16384
let heads = 128
let kv = 8 * (h / heads)
let ffn = 53248
let vocab = 128256
input ids: i64[batch, seq]
param tok_emb: f32[vocab, h]
x = embedding(ids, tok_emb)
repeat 126 {
  param attn_norm: f32[h]
  param wq: f32[h, h]
  param wk: f32[h, kv]
  param wv: f32[h, kv]
  param wo: f32[h, h]
  param ffn_norm: f32[h]
  param w_gate: f32[h, ffn]
  param w_up: f32[h, ffn]
  param w_down: f32[ffn, h]
  n = rmsnorm(x, attn_norm, eps = 1e-5)
  q = rope(linear(n, wq), heads = heads, theta = 500000)
  k = rope(linear(n, wk), heads = 8, theta = 500000)
  v = linear(n, wv)
  a = attention(q, k, v, heads = heads, kv_heads = 8, causal = true)
  x = add(x, linear(a, wo))
  n = rmsnorm(x, ffn_norm, eps = 1e-5)
  g = mul(silu(linear(n, w_gate)), linear(n, w_up))
  g = cast(cast(g, to = "bf16"), to = "f32")
  x = add(x, reshape(linear(g, w_down), shape = [batch, seq, h]))
  x = unary(x, fn = "identity")
}
param w_out: f32[h, vocab]
logits = linear(x, w_out)
output logits
`;

  // How fast it lowers is the benchmark's business (npm run bench), never a timed test's.
  it('lowers a 126-layer Llama-3-405B-like model', () => {
    const m = parseDsl(LLAMA, 'llama.gy');
    expect(m.opCount()).toBe(1 + 126 * 20 + 1);
    expect(new Set(m.ops().map((o) => o.layer)).size).toBe(126 + 1);
    expect(value(m, 'logits').type.shape).toEqual([256, 512, 128256]);
  });
});
