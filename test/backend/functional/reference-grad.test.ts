// The reference interpreter's backward and update against calculus. A training module (the
// train pass) gets a random gradient `grad.<output>` for each output o, which is the gradient
// of L = Σ_o sum(o · grad.o); every param's summed gradient (the `dw` its update op reads)
// must match the central difference (L(θ+ε) − L(θ−ε)) / 2ε of the forward module, evaluated
// by the same interpreter in float64, on a sample of coordinates. Inputs never receive
// gradients (the train pass differentiates params only), so every float operand of an op
// under test is a param. Then the sgd and Adam updates against numbers worked out by hand.

import { describe, expect, it } from 'vitest';
import { GygesError } from '../../../src/diagnostics/diagnostic.js';
import { feedByName, randomFeed, randomValues } from '../../../src/backend/functional/feeds.js';
import { interpretModule, valuesByName, type Feed } from '../../../src/backend/functional/reference.js';
import { erf } from '../../../src/backend/functional/kernels.js';
import { loadModel } from '../../../src/frontend/load.js';
import { DIFFERENTIABLE_BINARY_FNS, DIFFERENTIABLE_UNARY_FNS } from '../../../src/ir/grads.js';
import { Module, type Value } from '../../../src/ir/module.js';
import { tensor, type DType } from '../../../src/ir/types.js';
import { verifyModule } from '../../../src/ir/verify.js';
import { deriveTraining } from '../../../src/passes/train.js';

const EPS = 1e-6;
const REL = 1e-5;

interface Check {
  /** Builds the forward module (called twice: the forward copy and the one trained). */
  readonly build: () => Module;
  /** Numbers for some declarations by name; the others come from randomFeed. */
  readonly given?: (m: Module) => Map<string, Float64Array>;
  readonly samples?: number;
  readonly seed?: number;
}

interface CheckResult {
  /** Coordinates compared. */
  readonly compared: number;
  /** Kinds of the gradient ops the training module ran. */
  readonly kinds: ReadonlySet<string>;
  /** Largest |gradient| seen (the check is not vacuous when this is well above 0). */
  readonly largest: number;
}

/** Up to `count` distinct coordinates of [0, n), spread deterministically. */
function sample(n: number, count: number, seed: number): number[] {
  if (n <= count) return Array.from({ length: n }, (_, i) => i);
  const picked = new Set<number>();
  let s = (seed * 2654435761) >>> 0;
  while (picked.size < count) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    picked.add(s % n);
  }
  return [...picked].sort((a, b) => a - b);
}

function checkGradients(c: Check): CheckResult {
  const fwd = c.build();
  verifyModule(fwd);
  const train = deriveTraining(c.build(), { mode: 'train', optimizer: 'sgd' });
  verifyModule(train, 'train');
  const seed = c.seed ?? 7;
  const given = c.given?.(train) ?? new Map<string, Float64Array>();
  const base = new Map<string, Float64Array>();
  for (const v of train.declarations()) {
    if (v.kind !== 'const') base.set(v.name, given.get(v.name) ?? randomValues(train, v, { seed }));
  }
  const feed: Feed = feedByName(base);
  const values = interpretModule(train, feed);

  // The loss of the forward module at the current numbers in `base`.
  const gradOf = new Map(fwd.outputs.map((o) => [o.name, base.get(`grad.${o.name}`)]));
  const loss = (): number => {
    const out = interpretModule(fwd, feed, { keep: 'outputs' });
    let l = 0;
    for (const o of fwd.outputs) {
      const g = gradOf.get(o.name);
      if (!g) continue;
      const y = out.get(o)!;
      for (let i = 0; i < y.length; i++) l += y[i]! * g[i]!;
    }
    return l;
  };
  const l0 = Math.abs(loss());

  let compared = 0;
  let largest = 0;
  const updates = train.ops().filter((op) => op.kind === 'sgd');
  expect(updates.map((op) => op.operands[0]!.name)).toEqual(fwd.params.map((p) => p.name));
  for (const up of updates) {
    const p = up.operands[0]!;
    const grad = values.get(up.operands[1]!)!;
    const theta = base.get(p.name)!;
    for (const i of sample(theta.length, c.samples ?? 20, seed + p.id)) {
      const keep = theta[i]!;
      theta[i] = keep + EPS;
      const plus = loss();
      theta[i] = keep - EPS;
      const minus = loss();
      theta[i] = keep;
      const fd = (plus - minus) / (2 * EPS);
      const g = grad[i]!;
      const tol = REL * Math.max(Math.abs(g), Math.abs(fd)) + 1e-9 * Math.max(1, l0);
      if (!(Math.abs(g - fd) <= tol)) expect.fail(`d/d ${p.name}[${i}]: reference ${g}, finite difference ${fd}`);
      largest = Math.max(largest, Math.abs(g));
      compared++;
    }
  }
  return { compared, kinds: new Set(train.ops().map((op) => op.kind)), largest };
}

// ---------------------------------------------------------------------------------------
// Hand-built modules: every float operand is a param; each returns the forward module.

type Shape = readonly number[];
const f = (shape: Shape, dtype: DType = 'f32') => tensor(dtype, shape);

function one(m: Module, kind: Parameters<Module['addOp']>[0], operands: readonly Value[], attrs: Parameters<Module['addOp']>[2] = {}): Value {
  return m.addOp(kind, operands, attrs).results[0]!;
}

/** Numbers of magnitude in [0.3, 0.8], random sign unless `positive`: away from kinks, zeros and poles. */
function awayFromZero(m: Module, name: string, positive = false): Float64Array {
  const v = m.declarations().find((d) => d.name === name)!;
  const u = randomValues(m, v, { seed: 3 });
  return u.map((x) => (positive ? 0.3 + Math.abs(x) : Math.sign(x || 1) * (0.3 + Math.abs(x))));
}

function attentionModule(o: { b: number; s: number; t: number; heads: number; kvHeads?: number; d: number; causal: boolean; scale?: number; mask?: Shape }): () => Module {
  return () => {
    const m = new Module('attention');
    const kv = (o.kvHeads ?? o.heads) * o.d;
    const q = m.addParam('q', f([o.b, o.s, o.heads * o.d]));
    const k = m.addParam('k', f([o.b, o.t, kv]));
    const v = m.addParam('v', f([o.b, o.t, kv]));
    const mask = o.mask ? [m.addInput('mask', f(o.mask))] : [];
    const attrs: Record<string, number | boolean> = { heads: o.heads, causal: o.causal };
    if (o.kvHeads !== undefined) attrs.kv_heads = o.kvHeads;
    if (o.scale !== undefined) attrs.scale = o.scale;
    m.setOutputs([one(m, 'attention', [q, k, v, ...mask], attrs)]);
    return m;
  };
}

function singleOp(kind: Parameters<Module['addOp']>[0], shapes: readonly Shape[], attrs: Parameters<Module['addOp']>[2] = {}): () => Module {
  return () => {
    const m = new Module(kind);
    const xs = shapes.map((s, i) => m.addParam(`p${i}`, f(s)));
    m.setOutputs(m.addOp(kind, xs, attrs).results);
    return m;
  };
}

describe('reference gradients match finite differences', () => {
  const cases: [string, Check, string[]][] = [
    ['attention, non-causal, s ≠ t', { build: attentionModule({ b: 2, s: 3, t: 5, heads: 2, d: 4, causal: false }) }, ['attention_grad']],
    ['attention, causal, explicit scale', { build: attentionModule({ b: 2, s: 4, t: 4, heads: 2, d: 3, causal: true, scale: 0.7 }) }, ['attention_grad']],
    ['attention, grouped-query, causal, with a mask operand', { build: attentionModule({ b: 2, s: 4, t: 4, heads: 4, kvHeads: 2, d: 2, causal: true, mask: [2, 1, 4, 4] }) }, ['attention_grad']],
    ['attention, grouped-query 6/2, 2-D mask', { build: attentionModule({ b: 1, s: 3, t: 4, heads: 6, kvHeads: 2, d: 2, causal: false, mask: [3, 4] }) }, ['attention_grad']],
    ['layernorm with beta', { build: singleOp('layernorm', [[2, 3, 6], [6], [6]], { eps: 1e-3 }) }, ['layernorm_grad']],
    ['layernorm without beta', { build: singleOp('layernorm', [[4, 5], [5]]) }, ['layernorm_grad']],
    ['rmsnorm', { build: singleOp('rmsnorm', [[2, 3, 6], [6]], { eps: 1e-4 }) }, ['rmsnorm_grad']],
    ['gelu (erf)', { build: singleOp('gelu', [[3, 7]]), given: (m) => new Map([['p0', scaled(m, 'p0', 4)]]) }, ['gelu_grad']],
    ['gelu (tanh)', { build: singleOp('gelu', [[3, 7]], { approximate: 'tanh' }), given: (m) => new Map([['p0', scaled(m, 'p0', 4)]]) }, ['gelu_grad']],
    ['silu', { build: singleOp('silu', [[3, 7]]), given: (m) => new Map([['p0', scaled(m, 'p0', 4)]]) }, ['silu_grad']],
    ['softmax, last axis', { build: singleOp('softmax', [[3, 5]]) }, ['softmax_grad']],
    ['softmax, middle axis', { build: singleOp('softmax', [[2, 4, 3]], { axis: 1 }) }, ['softmax_grad']],
    ['rope', { build: singleOp('rope', [[2, 5, 12]], { heads: 3, theta: 100 }) }, ['rope_grad']],
    ['slice, strided', { build: singleOp('slice', [[4, 7]], { axes: [1, 0], starts: [1, -3], ends: [100, 4], steps: [2, 1] }) }, ['slice_grad']],
    ['slice, negative step', { build: singleOp('slice', [[6, 3]], { axes: [0], starts: [-1], ends: [-100], steps: [-2] }) }, ['slice_grad']],
    ['linear with bias', { build: singleOp('linear', [[2, 3, 4], [4, 5], [5]]) }, ['linear_grad']],
    ['linear without bias', { build: singleOp('linear', [[3, 4], [4, 2]]) }, ['linear_grad']],
    ['matmul, broadcast batch', { build: singleOp('matmul', [[2, 3, 4], [4, 5]]) }, ['matmul', 'transpose']],
    ['matmul, batch of 1 against 2', { build: singleOp('matmul', [[1, 3, 4], [2, 4, 2]]) }, ['matmul', 'reduce']],
    ['add and mul with broadcasting', {
      build: () => {
        const m = new Module('addmul');
        const [a, b, c] = [m.addParam('a', f([2, 3, 4])), m.addParam('b', f([3, 1])), m.addParam('c', f([4]))];
        m.setOutputs([one(m, 'mul', [one(m, 'add', [a, b]), c]), one(m, 'mul', [a, a])]);
        return m;
      },
    }, ['add', 'mul', 'reduce']],
    ['where, cast, reshape, transpose, expand, concat, split', {
      build: () => {
        const m = new Module('movement');
        const cond = m.addInput('cond', f([2, 3], 'bool'));
        const [a, b, c] = [m.addParam('a', f([2, 3])), m.addParam('b', f([3])), m.addParam('c', f([1, 3]))];
        const w = one(m, 'where', [cond, a, b]);
        const t = one(m, 'transpose', [one(m, 'reshape', [one(m, 'cast', [w], { to: 'f64' })], { shape: [3, 2] })], { perm: [1, 0] });
        const e = one(m, 'expand', [one(m, 'cast', [c], { to: 'f64' })], { shape: [2, 2, 3] });
        const cat = one(m, 'concat', [one(m, 'reshape', [t], { shape: [1, 2, 3] }), e], { axis: 0 });
        const [p0, , p2] = m.addOp('split', [cat], { axis: 2, sizes: [1, 1, 1] }).results;
        m.setOutputs([p0!, p2!]);
        return m;
      },
    }, ['where', 'split', 'concat', 'transpose', 'expand']],
    ['embedding and gather (repeated indices accumulate)', {
      build: () => {
        const m = new Module('lookups');
        const ids = m.addInput('ids', f([2, 6], 'i64'));
        const idx = m.addInput('idx', f([3, 2], 'i32'));
        const table = m.addParam('table', f([5, 4]));
        const x = m.addParam('x', f([3, 4, 2]));
        m.setOutputs([one(m, 'embedding', [ids, table]), one(m, 'gather', [x, idx], { axis: 1 })]);
        return m;
      },
    }, ['embedding_grad', 'gather_grad']],
    ['reduce sum and mean', {
      build: () => {
        const m = new Module('reduce');
        const x = m.addParam('x', f([2, 3, 4]));
        m.setOutputs([
          one(m, 'reduce', [x], { fn: 'sum', axes: [0, 2], keepdims: false }),
          one(m, 'reduce', [x], { fn: 'mean', axes: [-1] }),
          one(m, 'reduce', [x], { fn: 'mean', axes: [1], keepdims: false }),
        ]);
        return m;
      },
    }, ['reduce', 'expand']],
    ...(['max', 'min', 'prod'] as const).map((fn): [string, Check, string[]] => [`reduce ${fn}`, {
      build: () => {
        const m = new Module(`reduce-${fn}`);
        const x = m.addParam('x', f([2, 3, 4]));
        m.setOutputs([one(m, 'reduce', [x], { fn, axes: [1] }), one(m, 'reduce', [x], { fn, axes: [0, 2], keepdims: false })]);
        return m;
      },
    }, ['reduce_grad']]),
    ['unary functions', {
      build: () => {
        const m = new Module('unary');
        const outs = DIFFERENTIABLE_UNARY_FNS.map((fn) => one(m, 'unary', [m.addParam(`x_${fn}`, f([2, 3]))], { fn }));
        m.setOutputs(outs);
        return m;
      },
      given: (m) => new Map(DIFFERENTIABLE_UNARY_FNS.map((fn) => [`x_${fn}`, awayFromZero(m, `x_${fn}`, ['log', 'sqrt', 'rsqrt'].includes(fn))])),
    }, ['unary_grad']],
    ['binary functions with broadcasting', {
      build: () => {
        const m = new Module('binary');
        const outs = DIFFERENTIABLE_BINARY_FNS.map((fn) => one(m, 'binary', [m.addParam(`a_${fn}`, f([2, 3])), m.addParam(`b_${fn}`, f(fn === 'pow' ? [3] : [2, 1]))], { fn }));
        m.setOutputs(outs);
        return m;
      },
      given: (m) => new Map(DIFFERENTIABLE_BINARY_FNS.flatMap((fn) => [
        [`a_${fn}`, awayFromZero(m, `a_${fn}`, fn === 'pow')],
        [`b_${fn}`, fn === 'mod' ? awayFromZero(m, `b_${fn}`).map((x) => x * 3) : awayFromZero(m, `b_${fn}`)],
      ] as [string, Float64Array][])),
    }, ['binary_grad', 'unary']],
  ];

  for (const [name, check, kinds] of cases) {
    it(name, () => {
      const r = checkGradients(check);
      expect(r.compared).toBeGreaterThan(0);
      expect(r.largest).toBeGreaterThan(1e-3);
      for (const k of kinds) expect(r.kinds, `the training module runs ${k}`).toContain(k);
    });
  }
});

function scaled(m: Module, name: string, by: number): Float64Array {
  const v = m.declarations().find((d) => d.name === name)!;
  return randomValues(m, v, { seed: 11 }).map((x) => x * by);
}

describe('bundled models, shrunk', () => {
  it('tiny-gpt: every param gradient', () => {
    const build = () => loadModel('models/tiny-gpt.gy', { batch: 2, seq: 5, set: { h: 8, heads: 2, vocab: 11, context: 6, ffn: 12 } });
    const r = checkGradients({ build });
    expect(r.compared).toBeGreaterThan(300);
    for (const k of ['linear_grad', 'attention_grad', 'layernorm_grad', 'gelu_grad', 'embedding_grad', 'slice_grad']) expect(r.kinds).toContain(k);
  });

  it('tiny-llama: every param gradient', () => {
    const build = () => loadModel('models/tiny-llama.gy', { batch: 2, seq: 5, set: { h: 16, heads: 4, kv_heads: 2, vocab: 11, ffn: 12 } });
    const r = checkGradients({ build });
    expect(r.compared).toBeGreaterThan(300);
    for (const k of ['linear_grad', 'attention_grad', 'rmsnorm_grad', 'silu_grad', 'rope_grad', 'embedding_grad']) expect(r.kinds).toContain(k);
  });
});

// ---------------------------------------------------------------------------------------
// Updates, by hand: y = w ∘ x, so dw = x ∘ grad.y.

function updateModule(optimizer: 'sgd' | 'adam'): Module {
  const m = new Module('update');
  const x = m.addInput('x', f([3]));
  const w = m.addParam('w', f([3]));
  m.setOutputs([one(m, 'mul', [w, x])]);
  return deriveTraining(m, { mode: 'train', optimizer });
}

const given = (entries: Record<string, number[]>): Feed => feedByName(new Map(Object.entries(entries).map(([k, v]) => [k, Float64Array.from(v)])));

describe('optimizer updates', () => {
  it('sgd: w − lr·dw with the default lr 1e-3', () => {
    const m = updateModule('sgd');
    const out = valuesByName(interpretModule(m, given({ x: [1, -2, 0.5], w: [0.5, 1, -1], 'grad.mul': [2, 3, -4] })));
    // dw = x·dy = [2, −6, −2]
    expect([...out.get('grad.w')!]).toEqual([2, -6, -2]);
    const wNew = out.get('w.new')!;
    [0.5 - 1e-3 * 2, 1 + 1e-3 * 6, -1 + 1e-3 * 2].forEach((want, i) => expect(wNew[i]).toBeCloseTo(want, 15));
  });

  it('adam: moments and step as Kingma & Ba, bias correction left to the host', () => {
    const m = updateModule('adam');
    const out = valuesByName(interpretModule(m, given({
      x: [1, -2, 0.5], w: [0.5, 1, -1], 'grad.mul': [2, 3, -4], 'w.adam_m': [0.1, 0, -0.2], 'w.adam_v': [0.01, 0, 0.04],
    })));
    // dw = [2, −6, −2]; m' = 0.9·m + 0.1·dw; v' = 0.999·v + 0.001·dw²; w' = w − 1e-3·m'/(√v' + 1e-8)
    const mNew = [0.09 + 0.2, -0.6, -0.18 - 0.2];
    const vNew = [0.00999 + 0.004, 0.036, 0.03996 + 0.004];
    const wNew = [0.5, 1, -1].map((w, i) => w - (1e-3 * mNew[i]!) / (Math.sqrt(vNew[i]!) + 1e-8));
    mNew.forEach((want, i) => expect(out.get('w.adam_m.new')![i]).toBeCloseTo(want, 14));
    vNew.forEach((want, i) => expect(out.get('w.adam_v.new')![i]).toBeCloseTo(want, 14));
    wNew.forEach((want, i) => expect(out.get('w.new')![i]).toBeCloseTo(want, 14));
    // The step is ±lr where v' is dominated by this gradient (element 1: m' = −0.6, v' = 0.036).
    expect(out.get('w.new')![1]! - 1).toBeCloseTo((1e-3 * 0.6) / Math.sqrt(0.036), 9);
  });
});

// ---------------------------------------------------------------------------------------
// Points the finite differences cannot see.

describe('kernel details', () => {
  it('reduce max splits the gradient evenly between ties; prod handles zeros', () => {
    const build = (fn: 'max' | 'prod') => {
      const m = new Module('ties');
      m.setOutputs([one(m, 'reduce', [m.addParam('x', f([2, 3]))], { fn, axes: [1] })]);
      return deriveTraining(m, { mode: 'train', optimizer: 'sgd' });
    };
    const max = valuesByName(interpretModule(build('max'), given({ x: [1, 3, 3, 2, 0, -1], 'grad.reduce': [6, 4] })));
    expect([...max.get('grad.x')!]).toEqual([0, 3, 3, 4, 0, 0]);
    const prod = valuesByName(interpretModule(build('prod'), given({ x: [2, 0, 3, 0, 5, 0], 'grad.reduce': [1, 1] })));
    expect([...prod.get('reduce')!]).toEqual([0, 0]);
    expect([...prod.get('grad.x')!]).toEqual([0, 6, 0, 0, 0, 0]);
  });

  it('binary max splits the gradient at a tie', () => {
    const m = new Module('tie');
    m.setOutputs([one(m, 'binary', [m.addParam('a', f([2])), m.addParam('b', f([2]))], { fn: 'max' })]);
    deriveTraining(m, { mode: 'train', optimizer: 'sgd' });
    const out = valuesByName(interpretModule(m, given({ a: [1, 2], b: [1, 3], 'grad.binary': [4, 4] })));
    expect([...out.get('grad.a')!]).toEqual([2, 0]);
    expect([...out.get('grad.b')!]).toEqual([2, 4]);
  });

  it('comparisons, logic, rounding, floor-mod and integer arithmetic', () => {
    const m = new Module('ints');
    const a = m.addInput('a', f([4]));
    const b = m.addInput('b', f([4]));
    const i = m.addInput('i', f([4], 'i32'));
    const j = m.addInput('j', f([4], 'i32'));
    const bin = (fn: string, x: Value, y: Value) => one(m, 'binary', [x, y], { fn });
    const un = (fn: string, x: Value) => one(m, 'unary', [x], { fn });
    const less = bin('less', a, b);
    const outs = [
      less, bin('greater', a, b), bin('equal', a, b), bin('and', less, un('not', bin('equal', a, b))), bin('or', less, bin('equal', a, b)),
      un('floor', a), un('ceil', a), bin('mod', a, b), bin('mod', i, j), bin('div', i, j),
      one(m, 'cast', [a], { to: 'i32' }), one(m, 'cast', [a], { to: 'bool' }), one(m, 'cast', [one(m, 'cast', [a], { to: 'f64' })], { to: 'u8' }),
      one(m, 'reduce', [i], { fn: 'mean', axes: [0] }),
    ];
    m.setOutputs(outs);
    const run = interpretModule(m, given({ a: [-2.5, 1, 3.5, -0.5], b: [2, 1, -2, 4], i: [-7, 7, 9, 300], j: [2, -2, 4, 7] }), { keep: 'outputs' });
    const got = outs.map((o) => [...run.get(o)!]);
    expect(got).toEqual([
      [1, 0, 0, 1], [0, 0, 1, 0], [0, 1, 0, 0], [1, 0, 0, 1], [1, 1, 0, 1],
      [-3, 1, 3, -1], [-2, 1, 4, -0], [1.5, 0, -0.5, 3.5], [1, -1, 1, 6], [-3, -3, 2, 42],
      [-2, 1, 3, 0], [1, 1, 1, 1], [254, 1, 3, 0],
      [77],
    ]);
    // keep: 'outputs' drops what no output needs.
    expect(run.size).toBe(m.declarations().length + outs.length);
  });

  it('erf agrees with tabulated values to 1e-15', () => {
    // Abramowitz & Stegun, Table 7.1, and erf(3) = 0.99997790950300141456.
    const table: [number, number][] = [[0.1, 0.1124629160182849], [0.5, 0.5204998778130465], [1, 0.8427007929497149], [2, 0.9953222650189527], [3, 0.9999779095030014]];
    for (const [x, want] of table) {
      expect(Math.abs(erf(x) - want)).toBeLessThan(1e-15);
      expect(erf(-x)).toBe(-erf(x));
    }
  });

  it('rope rotates the halves of each head by p·θ^(−2i/d)', () => {
    const m = new Module('rope');
    const x = m.addInput('x', f([1, 2, 4]));
    m.setOutputs([one(m, 'rope', [x], { heads: 1, theta: 100 })]);
    const out = interpretModule(m, given({ x: [1, 2, 3, 4, 1, 2, 3, 4] })).get(m.outputs[0]!)!;
    // Position 0 is unrotated; at position 1 pair (0, 2) turns by 1 rad, pair (1, 3) by 100^(−1/2).
    expect([...out.slice(0, 4)]).toEqual([1, 2, 3, 4]);
    const a = [1, 0.1];
    const want = [1 * Math.cos(a[0]!) - 3 * Math.sin(a[0]!), 2 * Math.cos(a[1]!) - 4 * Math.sin(a[1]!), 3 * Math.cos(a[0]!) + 1 * Math.sin(a[0]!), 4 * Math.cos(a[1]!) + 2 * Math.sin(a[1]!)];
    want.forEach((w, i) => expect(out[4 + i]).toBeCloseTo(w, 14));
  });

  it('rejects collectives, bad feeds and out-of-range ids with GygesErrors', () => {
    const m = new Module('bad');
    const ids = m.addInput('ids', f([2], 'i64'));
    const table = m.addParam('table', f([3, 2]));
    const e = one(m, 'embedding', [ids, table]);
    m.setOutputs([e]);
    const run = (feed: Feed) => {
      try {
        interpretModule(m, feed);
      } catch (err) {
        return err;
      }
      return undefined;
    };
    const ok = given({ ids: [0, 2], table: [1, 2, 3, 4, 5, 6] });
    expect([...interpretModule(m, ok).get(e)!]).toEqual([1, 2, 5, 6]);
    for (const feed of [given({ ids: [0, 3], table: [1, 2, 3, 4, 5, 6] }), given({ ids: [0, 1.5], table: [1, 2, 3, 4, 5, 6] }), given({ ids: [0], table: [1, 2, 3, 4, 5, 6] })]) {
      const err = run(feed);
      expect(err).toBeInstanceOf(GygesError);
      expect((err as GygesError).code).toBe('GY9001');
    }
    const tiled = new Module('tiled');
    const x = tiled.addParam('x', f([2, 2]));
    tiled.setOutputs([one(tiled, 'all_reduce', [x], { axis: 'r' })]);
    const err = (() => {
      try {
        interpretModule(tiled, randomFeed(tiled));
      } catch (e) {
        return e;
      }
      return undefined;
    })();
    expect(err).toBeInstanceOf(GygesError);
    expect((err as GygesError).code).toBe('GY3004');
  });

  it('random feeds are deterministic and keep ids within the table', () => {
    const m = loadModel('models/tiny-gpt.gy', { batch: 2, seq: 5, set: { h: 8, heads: 2, vocab: 11, context: 6, ffn: 12 } });
    const ids = m.inputs[0]!;
    const a = randomFeed(m)(ids);
    expect([...a]).toEqual([...randomFeed(m)(ids)]);
    expect(a.every((v) => Number.isInteger(v) && v >= 0 && v < 11)).toBe(true);
    expect(new Set(a).size).toBeGreaterThan(3);
    expect([...randomFeed(m, { seed: 2 })(ids)]).not.toEqual([...a]);
  });
});
