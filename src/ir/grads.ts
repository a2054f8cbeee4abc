// Gradient and optimizer ops of the op table. The training pass (src/passes/train.ts) builds
// the backward graph from these where the hardware cares (dX and dW of a Linear in one op,
// as the paper's Algorithm 1 reuses the all-gathered dY for both; the attention core; the
// norms) or where no composition of forward ops is natural; every other gradient is a
// composition of forward ops and has no op here.
//
// Convention: `<op>_grad(forward operands..., dy) {forward attrs..., wrt}` returns, for each
// ascending forward-operand index in `wrt`, the gradient with respect to that operand, typed
// as the operand. Every gradient recomputes what it needs from the forward operands (no saved
// activations are passed). Each definition states its formula: the functional backend
// implements them from these comments. FLOPs: a gradient op's `fwd` is backward work, and the
// gradients of all differentiable operands together cost the forward op's `bwd`, so training
// statistics agree with `modelStats`. Second derivatives are never taken, so `bwd` is 0.
//
// This file imports only types from ops.ts: ops.ts passes the forward definitions in.

import { fail, type AttrSpec, type Attrs } from './attrs.js';
import type { OpDef, OpSignature, UNARY_FNS, BINARY_FNS } from './ops.js';
import { formatType, isFloat, numel, sameType, type TensorType } from './types.js';

type UnaryFn = (typeof UNARY_FNS)[number];
type BinaryFn = (typeof BINARY_FNS)[number];

/** Unary functions with a gradient; floor and ceil have zero gradient, `not` is logic. */
export const DIFFERENTIABLE_UNARY_FNS = [
  'identity', 'neg', 'abs', 'exp', 'log', 'sqrt', 'rsqrt', 'reciprocal', 'tanh', 'sigmoid',
  'relu', 'erf', 'sin', 'cos',
] as const satisfies readonly UnaryFn[];

/** Binary functions with a gradient; comparisons and logic have none. */
export const DIFFERENTIABLE_BINARY_FNS = ['sub', 'div', 'pow', 'max', 'min', 'mod'] as const satisfies readonly BinaryFn[];

/** Reductions differentiated by a `reduce_grad` op; sum and mean are expand (and mul). */
export const GRAD_REDUCE_FNS = ['max', 'min', 'prod'] as const;

const WRT: AttrSpec = {
  kind: 'ints',
  doc: 'ascending indices of the forward operands whose gradients are returned, one result each',
};

interface GradSpec {
  readonly name: string;
  readonly summary: string;
  /** Indices of the forward operands that may appear in `wrt`. */
  readonly differentiable: readonly number[];
  /** Attribute specs that replace the forward op's (same position), e.g. a narrower `fn`. */
  readonly attrs?: Readonly<Record<string, AttrSpec>>;
  /** Forward operands whose type alone the gradient needs (slice_grad's x: only its shape). */
  readonly shapeOnly?: readonly number[];
  /** Backward FLOPs of the gradients in `wrt`, from the forward op's signature. */
  work(fwd: OpSignature, wrt: readonly number[]): number;
}

/** The forward attributes of a gradient op: its attributes without `wrt`. */
function forwardAttrs(attrs: Attrs): Attrs {
  const { wrt: _wrt, ...rest } = attrs;
  return rest;
}

/** The forward op's signature inside a gradient op's: operands minus dy, dy as the result. */
function forwardSignature(sig: OpSignature): OpSignature {
  return {
    operands: sig.operands.slice(0, -1),
    results: [sig.operands[sig.operands.length - 1]!],
    attrs: forwardAttrs(sig.attrs),
  };
}

function checkWrt(name: string, wrt: readonly number[], operands: readonly TensorType[], allowed: readonly number[]): void {
  if (wrt.length === 0) fail('GY2019', `${name}: wrt must name at least one operand`);
  wrt.forEach((i, n) => {
    if (n > 0 && i <= wrt[n - 1]!) fail('GY2019', `${name}: wrt [${wrt.join(', ')}] must be strictly ascending`);
    if (i < 0 || i >= operands.length || !allowed.includes(i)) {
      fail('GY2019', `${name}: operand ${i} has no gradient (wrt may name ${allowed.filter((a) => a < operands.length).join(', ')})`);
    }
    if (!isFloat(operands[i]!.dtype)) fail('GY2013', `${name}: operand ${i} is ${operands[i]!.dtype}, only floating-point operands have gradients`);
  });
}

/** A gradient op from its forward op: operands, attributes, inference and FLOPs follow the convention. */
function gradOf(fwd: OpDef, spec: GradSpec): OpDef {
  return {
    name: spec.name,
    summary: spec.summary,
    category: fwd.category,
    operands: [...fwd.operands.map((o, i) => (spec.shapeOnly?.includes(i) ? { ...o, shapeOnly: true } : o)), { name: 'dy' }],
    attrs: { ...fwd.attrs, ...spec.attrs, wrt: WRT },
    infer(operands, attrs) {
      const xs = operands.slice(0, -1);
      const dy = operands[operands.length - 1]!;
      const [y] = fwd.infer(xs, forwardAttrs(attrs));
      if (!sameType(dy, y!)) fail('GY2008', `${spec.name}: dy is ${formatType(dy)}, but ${fwd.name} yields ${formatType(y!)}`);
      const wrt = attrs.wrt as readonly number[];
      checkWrt(spec.name, wrt, xs, spec.differentiable);
      return wrt.map((i) => ({ dtype: xs[i]!.dtype, shape: [...xs[i]!.shape] }));
    },
    flops(sig) {
      return { fwd: spec.work(forwardSignature(sig), sig.attrs.wrt as readonly number[]), bwd: 0 };
    },
  };
}

/** The whole backward of a one-operand op (wrt can only be [0]): the forward op's `bwd`. */
function wholeBackward(fwd: OpDef) {
  return (sig: OpSignature): number => fwd.flops(sig).bwd;
}

/** Elementwise ops: each requested operand costs `perOperand` per result element. */
function perOperand(perElement: number) {
  return (sig: OpSignature, wrt: readonly number[]): number => perElement * numel(sig.results[0]!) * wrt.length;
}

/** Scatter-adds: one addition per element of dy. */
function scatterWork(sig: OpSignature): number {
  return numel(sig.results[0]!);
}

/** The forward definitions the gradient ops derive from (ops.ts passes them in). */
export interface ForwardDefs {
  readonly linear: OpDef;
  readonly attention: OpDef;
  readonly layernorm: OpDef;
  readonly rmsnorm: OpDef;
  readonly gelu: OpDef;
  readonly silu: OpDef;
  readonly softmax: OpDef;
  readonly rope: OpDef;
  readonly unary: OpDef;
  readonly binary: OpDef;
  readonly embedding: OpDef;
  readonly gather: OpDef;
  readonly slice: OpDef;
  readonly reduce: OpDef;
}

// y = x·w + b with x [..., K] viewed as X [M, K], w [K, N], dY [M, N]:
//   dx = dY·wᵀ (viewed back as x's shape)   dw = Xᵀ·dY   db = Σ_rows dY
// Each of dx and dw is one GEMM of 2·M·K·N FLOPs; db is M·N additions.
function linearGrad(f: ForwardDefs): OpDef {
  return gradOf(f.linear, {
    name: 'linear_grad',
    summary: 'gradients of linear: dx = dy·wᵀ, dw = xᵀ·dy, db = Σ dy (Algorithm 1 shares dy)',
    differentiable: [0, 1, 2],
    work({ operands: [x, w] }, wrt) {
      const m = numel(x!) / x!.shape[x!.shape.length - 1]!;
      const [k, n] = w!.shape as [number, number];
      return wrt.reduce((sum, i) => sum + (i === 2 ? m * n : 2 * m * k * n), 0);
    },
  });
}

// Per query head i (kv head g = ⌊i / (heads/kv_heads)⌋), recomputing the forward:
//   S = scale·Q_i·K_gᵀ + mask (−∞ above the diagonal if causal), P = softmax_rows(S), O = P·V_g
//   dP = dO_i·V_gᵀ          dS = P ∘ (dP − rowsum(dP ∘ P))
//   dQ_i = scale·dS·K_g     dK_g += scale·dSᵀ·Q_i     dV_g += Pᵀ·dO_i
// (dK and dV sum over the query heads sharing a kv head). The mask has no gradient.
// Work: one b·heads·s·t·d GEMM (2 FLOPs a multiply-add) for dV, one for dP when q or k is
// requested plus the softmax gradient (twice the forward softmax's 5 per score), one each
// for dQ and dK: all three together are the attention op's `bwd`.
function attentionGrad(f: ForwardDefs): OpDef {
  return gradOf(f.attention, {
    name: 'attention_grad',
    summary: 'gradients of the attention core for q, k and v, recomputing the scores',
    differentiable: [0, 1, 2],
    work({ operands: [q, k], attrs }, wrt) {
      const [b, s, hq] = q!.shape as [number, number, number];
      const heads = attrs.heads as number;
      const scores = b * heads * s * k!.shape[1]!;
      const gemm = 2 * scores * (hq / heads);
      const needsDs = wrt.includes(0) || wrt.includes(1);
      // q·kᵀ and the softmax recomputed (every gradient needs the probabilities), one GEMM
      // per gradient, and for dq or dk the GEMM dP = dy·vᵀ and the softmax gradient.
      return gemm + 5 * scores + wrt.length * gemm + (needsDs ? gemm + 5 * scores : 0);
    },
  });
}

// Over the last axis of H elements: μ = mean(x), σ² = mean((x−μ)²), r = 1/√(σ²+eps),
// x̂ = (x−μ)·r, y = γ·x̂ + β. With g = dy·γ:
//   dx = r·(g − mean(g) − x̂·mean(g·x̂))   dγ = Σ_rows dy·x̂   dβ = Σ_rows dy
// Work per element: dγ 2, dβ 1, dx the rest of the forward's `bwd` (16).
function layernormGrad(f: ForwardDefs): OpDef {
  return gradOf(f.layernorm, {
    name: 'layernorm_grad',
    summary: 'gradients of layernorm for x, gamma and beta',
    differentiable: [0, 1, 2],
    work(sig, wrt) {
      const n = numel(sig.results[0]!);
      const cost = [f.layernorm.flops(sig).bwd - 3 * n, 2 * n, n];
      return wrt.reduce((sum, i) => sum + cost[i]!, 0);
    },
  });
}

// Over the last axis: r = 1/√(mean(x²)+eps), x̂ = x·r, y = γ·x̂. With g = dy·γ:
//   dx = r·(g − x̂·mean(g·x̂))   dγ = Σ_rows dy·x̂
// Work per element: dγ 2, dx the rest of the forward's `bwd` (10).
function rmsnormGrad(f: ForwardDefs): OpDef {
  return gradOf(f.rmsnorm, {
    name: 'rmsnorm_grad',
    summary: 'gradients of rmsnorm for x and gamma',
    differentiable: [0, 1],
    work(sig, wrt) {
      const n = numel(sig.results[0]!);
      const cost = [f.rmsnorm.flops(sig).bwd - 2 * n, 2 * n];
      return wrt.reduce((sum, i) => sum + cost[i]!, 0);
    },
  });
}

/** The gradient op of a one-input elementwise op: its whole backward work, for x only. */
function singleInputGrad(fwd: OpDef, name: string, summary: string): OpDef {
  return gradOf(fwd, { name, summary, differentiable: [0], work: wholeBackward(fwd) });
}

// approximate "none": y = x·Φ(x); dx = dy·(Φ(x) + x·φ(x)), φ(x) = exp(−x²/2)/√(2π).
// approximate "tanh": u = √(2/π)·(x + 0.044715·x³), t = tanh(u), y = ½x(1 + t);
//   dx = dy·(½(1 + t) + ½x·(1 − t²)·√(2/π)·(1 + 3·0.044715·x²)).
const geluGrad = (f: ForwardDefs): OpDef => singleInputGrad(f.gelu, 'gelu_grad', 'gradient of gelu (exact or tanh form, as the forward)');

// s = sigmoid(x), y = x·s; dx = dy·s·(1 + x·(1 − s)).
const siluGrad = (f: ForwardDefs): OpDef => singleInputGrad(f.silu, 'silu_grad', 'gradient of silu');

// y = softmax(x) along `axis` (recomputed); dx = y ∘ (dy − Σ_axis(dy ∘ y)).
const softmaxGrad = (f: ForwardDefs): OpDef => singleInputGrad(f.softmax, 'softmax_grad', 'gradient of softmax along its axis');

// rope rotates each coordinate pair of each head at position p by the angle
// p·theta^(−2j/head_size) (pair j, paired as the forward pairs them): an orthogonal map, so
// dx is dy rotated by the opposite angle, −p·theta^(−2j/head_size).
// x is read for its shape only: the rotation's gradient does not depend on it.
const ropeGrad = (f: ForwardDefs): OpDef =>
  gradOf(f.rope, { name: 'rope_grad', summary: 'gradient of rope: dy rotated back by the same angles', differentiable: [0], shapeOnly: [0], work: wholeBackward(f.rope) });

// dx = dy·f′(x): identity 1; neg −1; abs sign(x); exp exp(x); log 1/x; sqrt 1/(2√x);
// rsqrt −½·x^(−3/2); reciprocal −1/x²; tanh 1 − tanh²(x); sigmoid s(1 − s) with s = sigmoid(x);
// relu 1 where x > 0 else 0; erf (2/√π)·exp(−x²); sin cos(x); cos −sin(x).
function unaryGrad(f: ForwardDefs): OpDef {
  return gradOf(f.unary, {
    name: 'unary_grad',
    summary: 'gradient of a differentiable generic unary function',
    differentiable: [0],
    attrs: { fn: { kind: 'string', oneOf: DIFFERENTIABLE_UNARY_FNS, doc: 'the forward function' } },
    work: wholeBackward(f.unary),
  });
}

// Elementwise partials, then each is summed over the axes along which its operand was
// broadcast and viewed as the operand's shape:
//   sub  da = dy, db = −dy              div  da = dy/b, db = −dy·a/b²
//   pow  da = dy·b·a^(b−1), db = dy·a^b·ln(a) (0 where a ≤ 0)
//   max  da = dy where a > b, db = dy where b > a, each dy/2 where a = b; min likewise (<)
//   mod  (a − b·⌊a/b⌋) da = dy, db = −dy·⌊a/b⌋
// Work: one FLOP per result element for each requested operand (the forward's `bwd` for both).
function binaryGrad(f: ForwardDefs): OpDef {
  return gradOf(f.binary, {
    name: 'binary_grad',
    summary: 'gradients of a differentiable generic binary function, summed over broadcast axes',
    differentiable: [0, 1],
    attrs: { fn: { kind: 'string', oneOf: DIFFERENTIABLE_BINARY_FNS, doc: 'the forward function' } },
    work: perOperand(1),
  });
}

// dtable = zeros(table); for every position p of ids: dtable[ids[p], :] += dy[p, :].
function embeddingGrad(f: ForwardDefs): OpDef {
  return gradOf(f.embedding, {
    name: 'embedding_grad',
    summary: 'gradient of embedding for the table: rows of dy scatter-added at ids',
    differentiable: [1],
    work: scatterWork,
  });
}

// dx = zeros(x); for every index (pre, j, post) of dy: dx[pre, indices[j], post] += dy[pre, j, post]
// (indices flattened in row-major order; repeated indices accumulate).
function gatherGrad(f: ForwardDefs): OpDef {
  return gradOf(f.gather, {
    name: 'gather_grad',
    summary: 'gradient of gather for x: dy scatter-added at the indices',
    differentiable: [0],
    shapeOnly: [0],
    work: scatterWork,
  });
}

// dx = zeros(x) with the slice's window (same axes, starts, ends, steps) set to dy.
function sliceGrad(f: ForwardDefs): OpDef {
  return gradOf(f.slice, {
    name: 'slice_grad',
    summary: 'gradient of slice: dy padded with zeros back to the input shape',
    differentiable: [0],
    shapeOnly: [0],
    work: () => 0,
  });
}

// y = reduce(x) over `axes`; dy broadcasts back over the reduced axes:
//   max/min  dx = dy at the positions equal to the group's extremum, split evenly between
//            ties, 0 elsewhere;   prod  dx = dy·(product of the group's other elements).
function reduceGrad(f: ForwardDefs): OpDef {
  return gradOf(f.reduce, {
    name: 'reduce_grad',
    summary: 'gradient of a max, min or prod reduction (sum and mean differentiate by expand)',
    differentiable: [0],
    attrs: { fn: { kind: 'string', oneOf: GRAD_REDUCE_FNS, doc: 'the forward reduction' } },
    work: wholeBackward(f.reduce),
  });
}

/** The gradient ops, keyed by name; ops.ts spreads them into the op table. */
export function gradientOps(f: ForwardDefs) {
  return {
    linear_grad: linearGrad(f),
    attention_grad: attentionGrad(f),
    layernorm_grad: layernormGrad(f),
    rmsnorm_grad: rmsnormGrad(f),
    gelu_grad: geluGrad(f),
    silu_grad: siluGrad(f),
    softmax_grad: softmaxGrad(f),
    rope_grad: ropeGrad(f),
    unary_grad: unaryGrad(f),
    binary_grad: binaryGrad(f),
    embedding_grad: embeddingGrad(f),
    gather_grad: gatherGrad(f),
    slice_grad: sliceGrad(f),
    reduce_grad: reduceGrad(f),
  };
}

// ---------------------------------------------------------------------------------------
// Optimizer updates: one op per parameter, fed its summed gradient.

function sameTypes(name: string, names: readonly string[], ts: readonly TensorType[]): TensorType {
  const w = ts[0]!;
  if (!isFloat(w.dtype)) fail('GY2013', `${name}: ${names[0]} must be a floating-point tensor, got ${w.dtype}`);
  ts.forEach((t, i) => {
    if (!sameType(t, w)) fail('GY2008', `${name}: ${names[i]} is ${formatType(t)}, ${names[0]} is ${formatType(w)}`);
  });
  return w;
}

// w_new = w − lr·dw: a multiply and a subtract per element.
export const sgd: OpDef = {
  name: 'sgd',
  summary: 'stochastic gradient descent step: w_new = w − lr·dw',
  category: 'vector',
  operands: [{ name: 'w', weight: true }, { name: 'dw' }],
  attrs: { lr: { kind: 'float', default: 1e-3, doc: 'learning rate' } },
  infer(operands) {
    const w = sameTypes('sgd', ['w', 'dw'], operands);
    return [{ ...w }];
  },
  flops: ({ operands: [w] }) => ({ fwd: 2 * numel(w!), bwd: 0 }),
};

// Adam (Kingma & Ba, "Adam: A Method for Stochastic Optimization", ICLR 2015, Algorithm 1;
// the defaults are the paper's: α = 0.001, β1 = 0.9, β2 = 0.999, ε = 1e-8):
//   m_new = β1·m + (1−β1)·dw          (3 FLOPs per element)
//   v_new = β2·v + (1−β2)·dw²         (4)
//   w_new = w − lr·m_new/(√v_new + eps)   (5: sqrt, add, divide, multiply, subtract)
// The bias corrections 1/(1−β^t) depend on the step t, which the host keeps: it folds them
// into lr each step (lr_t = lr·√(1−β2^t)/(1−β1^t), the paper's §2 form), so the op has no step.
export const adam: OpDef = {
  name: 'adam',
  summary: 'Adam step (Kingma & Ba 2015): returns w_new, m_new, v_new',
  category: 'vector',
  operands: [{ name: 'w', weight: true }, { name: 'dw' }, { name: 'm' }, { name: 'v' }],
  attrs: {
    lr: { kind: 'float', default: 1e-3, doc: 'learning rate α (bias correction folded in by the host)' },
    beta1: { kind: 'float', default: 0.9, doc: 'decay of the first-moment estimate' },
    beta2: { kind: 'float', default: 0.999, doc: 'decay of the second-moment estimate' },
    eps: { kind: 'float', default: 1e-8, doc: 'added to √v for stability' },
  },
  infer(operands) {
    const w = sameTypes('adam', ['w', 'dw', 'm', 'v'], operands);
    return [{ ...w }, { ...w }, { ...w }];
  },
  flops: ({ operands: [w] }) => ({ fwd: 12 * numel(w!), bwd: 0 }),
};
