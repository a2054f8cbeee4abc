// The op table: the one definition of every IR op. Shape inference, the verifier, the
// printer, the parser, the DSL and the statistics all read it; later the autodiff and cost
// models do too. An op is transformer-level where the hardware cares (Linear, attention,
// norms) and generic where it does not (elementwise, reductions, data movement), so anything
// a frontend cannot raise still has a faithful, costable form. The gradient and optimizer ops
// the training pass emits are defined in grads.ts and join the same table here.

import { fail, type AttrSpec, type Attrs } from './attrs.js';
import { adam, gradientOps, sgd } from './grads.js';
import { all_gather, all_reduce, broadcast, reduce_scatter } from './collective-ops.js';
import { isFloat, isInteger, numel, formatShape, type DType, type TensorType } from './types.js';

/**
 * How the hardware runs an op: on the GEMM array, on the vector unit, as data movement, or
 * as a collective between dies (inserted by the collectives pass).
 */
export type OpCategory = 'gemm' | 'attention' | 'vector' | 'movement' | 'collective';

export interface OperandSpec {
  readonly name: string;
  readonly optional?: boolean;
  /** Takes all remaining operands (at least one). Only the last operand may be variadic. */
  readonly variadic?: boolean;
  /** Normally a trainable weight (a `param`); used by statistics and the training pass. */
  readonly weight?: boolean;
  /** Only the operand's type is used, never its data (it need not be resident). */
  readonly shapeOnly?: boolean;
}

export interface OpSignature {
  readonly operands: readonly TensorType[];
  readonly results: readonly TensorType[];
  readonly attrs: Attrs;
}

export interface FlopCount {
  /** Floating-point operations of the forward op (a multiply-add counts 2). */
  readonly fwd: number;
  /** Of its backward: gradients of every float operand. */
  readonly bwd: number;
}

export interface OpDef {
  readonly name: string;
  readonly summary: string;
  readonly category: OpCategory;
  readonly operands: readonly OperandSpec[];
  /** Attribute specs, in the order the printer writes them. */
  readonly attrs: Readonly<Record<string, AttrSpec>>;
  /** Result types from operand types and resolved attributes; raises OpError on bad input. */
  infer(operands: readonly TensorType[], attrs: Attrs): TensorType[];
  flops(sig: OpSignature): FlopCount;
}

// ---------------------------------------------------------------------------------------
// Shape helpers shared by the definitions below.

/** Numpy-style broadcast of two shapes. */
export function broadcastShapes(a: readonly number[], b: readonly number[], what: string): number[] {
  const n = Math.max(a.length, b.length);
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const x = a[a.length - n + i] ?? 1;
    const y = b[b.length - n + i] ?? 1;
    if (x !== y && x !== 1 && y !== 1) {
      fail('GY2008', `${what}: shapes ${formatShape(a)} and ${formatShape(b)} do not broadcast`);
    }
    out.push(x === 1 ? y : x);
  }
  return out;
}

function normAxis(axis: number, rank: number, what: string): number {
  const a = axis < 0 ? axis + rank : axis;
  if (a < 0 || a >= rank) fail('GY2019', `${what}: axis ${axis} is out of range for rank ${rank}`);
  return a;
}

function last(shape: readonly number[]): number {
  return shape[shape.length - 1] ?? 1;
}

function requireFloat(t: TensorType, what: string): void {
  if (!isFloat(t.dtype)) fail('GY2013', `${what} must be a floating-point tensor, got ${t.dtype}`);
}

function sameDType(a: TensorType, b: TensorType, what: string): void {
  if (a.dtype !== b.dtype) fail('GY2013', `${what}: operands have dtypes ${a.dtype} and ${b.dtype}`);
}

function requireRank(t: TensorType, min: number, what: string): void {
  if (t.shape.length < min) fail('GY2008', `${what} needs rank ${min} or more, got ${formatShape(t.shape)}`);
}

/** Elementwise ops: cost `perElement` flops forward, twice that backward. */
function elementwiseFlops(perElement: number) {
  return (sig: OpSignature): FlopCount => {
    const n = numel(sig.results[0]!);
    return { fwd: perElement * n, bwd: 2 * perElement * n };
  };
}

const noFlops = (): FlopCount => ({ fwd: 0, bwd: 0 });

// Functions of the generic `unary` and `binary` ops. Comparison and logic results are bool.
export const UNARY_FNS = [
  'identity', 'neg', 'abs', 'exp', 'log', 'sqrt', 'rsqrt', 'reciprocal', 'tanh', 'sigmoid',
  'relu', 'erf', 'sin', 'cos', 'floor', 'ceil', 'not',
] as const;
export const BINARY_FNS = [
  'sub', 'div', 'pow', 'max', 'min', 'mod', 'equal', 'less', 'greater', 'and', 'or',
] as const;
const BOOL_RESULT = new Set<string>(['equal', 'less', 'greater', 'and', 'or', 'not']);

// ---------------------------------------------------------------------------------------
// The table.

const linear: OpDef = {
  name: 'linear',
  summary: 'y = x·w (+ b): a trainable fully connected layer, w of shape [in, out]',
  category: 'gemm',
  operands: [{ name: 'x' }, { name: 'w', weight: true }, { name: 'b', optional: true, weight: true }],
  attrs: {},
  infer([x, w, b]) {
    requireRank(x!, 1, 'linear input');
    if (w!.shape.length !== 2) fail('GY2008', `linear weight must be 2-D [in, out], got ${formatShape(w!.shape)}`);
    requireFloat(x!, 'linear input');
    sameDType(x!, w!, 'linear');
    const [k, n] = w!.shape as [number, number];
    if (last(x!.shape) !== k) {
      fail('GY2008', `linear: input ${formatShape(x!.shape)} has ${last(x!.shape)} features, weight ${formatShape(w!.shape)} expects ${k}`);
    }
    if (b && (b.shape.length !== 1 || b.shape[0] !== n)) {
      fail('GY2008', `linear: bias ${formatShape(b.shape)} does not match ${n} output features`);
    }
    return [{ dtype: x!.dtype, shape: [...x!.shape.slice(0, -1), n] }];
  },
  flops({ operands: [x, w, b] }) {
    const m = numel(x!) / last(x!.shape);
    const [k, n] = w!.shape as [number, number];
    const mm = 2 * m * k * n;
    const bias = b ? m * n : 0;
    // Backward: dX = dY·wᵀ and dW = xᵀ·dY, one GEMM each; db sums dY over rows.
    return { fwd: mm + bias, bwd: 2 * mm + bias };
  },
};

const matmul: OpDef = {
  name: 'matmul',
  summary: 'batched matrix product of two activations, batch dimensions broadcast',
  category: 'gemm',
  operands: [{ name: 'a' }, { name: 'b' }],
  attrs: {},
  infer([a, b]) {
    requireRank(a!, 2, 'matmul left operand');
    requireRank(b!, 2, 'matmul right operand');
    sameDType(a!, b!, 'matmul');
    const [m, k] = a!.shape.slice(-2) as [number, number];
    const [k2, n] = b!.shape.slice(-2) as [number, number];
    if (k !== k2) fail('GY2008', `matmul: ${formatShape(a!.shape)} × ${formatShape(b!.shape)}: inner dimensions ${k} and ${k2} differ`);
    const batch = broadcastShapes(a!.shape.slice(0, -2), b!.shape.slice(0, -2), 'matmul batch dimensions');
    return [{ dtype: a!.dtype, shape: [...batch, m, n] }];
  },
  flops({ operands: [a], results: [y] }) {
    const k = last(a!.shape);
    const mm = 2 * numel(y!) * k;
    return { fwd: mm, bwd: 2 * mm };
  },
};

const attention: OpDef = {
  name: 'attention',
  summary: 'multi-head attention core: softmax(q·kᵀ·scale + mask)·v, heads split and merged',
  category: 'attention',
  operands: [{ name: 'q' }, { name: 'k' }, { name: 'v' }, { name: 'mask', optional: true }],
  attrs: {
    heads: { kind: 'int', doc: 'number of query heads' },
    kv_heads: { kind: 'int', optional: true, doc: 'key/value heads for grouped-query attention (default: heads)' },
    causal: { kind: 'bool', default: false, doc: 'mask out future positions' },
    scale: { kind: 'float', optional: true, doc: 'score scale (default: 1/sqrt(head size))' },
  },
  infer([q, k, v, mask], attrs) {
    for (const [t, n] of [[q, 'q'], [k, 'k'], [v, 'v']] as const) {
      if (t!.shape.length !== 3) fail('GY2008', `attention ${n} must be [batch, seq, heads·head_size], got ${formatShape(t!.shape)}`);
      requireFloat(t!, `attention ${n}`);
    }
    sameDType(q!, k!, 'attention q and k');
    sameDType(q!, v!, 'attention q and v');
    const heads = attrs.heads as number;
    const kvHeads = (attrs.kv_heads as number | undefined) ?? heads;
    if (heads <= 0 || kvHeads <= 0) fail('GY2019', `attention: heads and kv_heads must be positive`);
    if (heads % kvHeads !== 0) fail('GY2019', `attention: ${heads} heads are not a multiple of ${kvHeads} kv_heads`);
    const [b, s, hq] = q!.shape as [number, number, number];
    const [bk, t, hk] = k!.shape as [number, number, number];
    if (hq % heads !== 0) fail('GY2008', `attention: q width ${hq} is not divisible by ${heads} heads`);
    const d = hq / heads;
    if (hk !== kvHeads * d) fail('GY2008', `attention: k width ${hk} should be kv_heads × head_size = ${kvHeads} × ${d}`);
    if (bk !== b) fail('GY2008', `attention: q batch ${b} and k batch ${bk} differ`);
    if (v!.shape[0] !== b || v!.shape[1] !== t || v!.shape[2] !== hk) {
      fail('GY2008', `attention: v ${formatShape(v!.shape)} should be ${formatShape([b, t, hk])}`);
    }
    if (mask) {
      // The mask is added to the scores, so it must broadcast *to* them: no extra axes, and
      // no axis longer than the scores' (a batch-2 mask on batch-1 scores would grow them).
      const scores = [b, heads, s, t];
      const joined = broadcastShapes(mask.shape, scores, 'attention mask');
      if (joined.length !== 4 || joined.some((x, i) => x !== scores[i])) fail('GY2008', `attention mask ${formatShape(mask.shape)} does not broadcast to the scores ${formatShape(scores)}`);
    }
    return [{ dtype: q!.dtype, shape: [b, s, hq] }];
  },
  flops({ operands: [q, k], attrs }) {
    const [b, s, hq] = q!.shape as [number, number, number];
    const t = k!.shape[1]!;
    const heads = attrs.heads as number;
    const d = hq / heads;
    const scores = b * heads * s * t;
    const mm = 2 * 2 * scores * d; // q·kᵀ and p·v
    const softmax = 5 * scores; // scale, max, exp, sum, divide
    // Backward: the scores and softmax again (they are not kept), then four GEMMs (dV, dP,
    // dQ, dK) and the softmax gradient.
    return { fwd: mm + softmax, bwd: mm / 2 + 2 * mm + 2 * softmax };
  },
};

const layernorm: OpDef = {
  name: 'layernorm',
  summary: 'layer normalisation over the last axis with scale gamma and optional shift beta',
  category: 'vector',
  operands: [{ name: 'x' }, { name: 'gamma', weight: true }, { name: 'beta', optional: true, weight: true }],
  attrs: { eps: { kind: 'float', default: 1e-5, doc: 'added to the variance' } },
  infer([x, g, b]) {
    requireRank(x!, 1, 'layernorm input');
    requireFloat(x!, 'layernorm input');
    const h = last(x!.shape);
    for (const [t, n] of [[g, 'gamma'], [b, 'beta']] as const) {
      if (t && (t.shape.length !== 1 || t.shape[0] !== h)) fail('GY2008', `layernorm ${n} ${formatShape(t.shape)} should be [${h}]`);
    }
    return [{ ...x! }];
  },
  flops: elementwiseFlops(8),
};

const rmsnorm: OpDef = {
  name: 'rmsnorm',
  summary: 'root-mean-square normalisation over the last axis with scale gamma',
  category: 'vector',
  operands: [{ name: 'x' }, { name: 'gamma', weight: true }],
  attrs: { eps: { kind: 'float', default: 1e-6, doc: 'added to the mean square' } },
  infer([x, g]) {
    requireRank(x!, 1, 'rmsnorm input');
    requireFloat(x!, 'rmsnorm input');
    const h = last(x!.shape);
    if (g!.shape.length !== 1 || g!.shape[0] !== h) fail('GY2008', `rmsnorm gamma ${formatShape(g!.shape)} should be [${h}]`);
    return [{ ...x! }];
  },
  flops: elementwiseFlops(5),
};

function activation(name: string, summary: string, perElement: number, attrs: Record<string, AttrSpec> = {}): OpDef {
  return {
    name,
    summary,
    category: 'vector',
    operands: [{ name: 'x' }],
    attrs,
    infer([x]) {
      requireFloat(x!, `${name} input`);
      return [{ ...x! }];
    },
    flops: elementwiseFlops(perElement),
  };
}

const gelu = activation('gelu', 'Gaussian error linear unit', 8, {
  approximate: { kind: 'string', default: 'none', oneOf: ['none', 'tanh'], doc: 'exact erf form, or the tanh approximation' },
});
const silu = activation('silu', 'x·sigmoid(x)', 4);

const softmax: OpDef = {
  name: 'softmax',
  summary: 'softmax along one axis',
  category: 'vector',
  operands: [{ name: 'x' }],
  attrs: { axis: { kind: 'int', default: -1, doc: 'axis to normalise' } },
  infer([x], attrs) {
    requireFloat(x!, 'softmax input');
    normAxis(attrs.axis as number, x!.shape.length, 'softmax');
    return [{ ...x! }];
  },
  flops: elementwiseFlops(5),
};

function broadcasting(name: string, summary: string): OpDef {
  return {
    name,
    summary,
    category: 'vector',
    operands: [{ name: 'a' }, { name: 'b' }],
    attrs: {},
    infer([a, b]) {
      sameDType(a!, b!, name);
      return [{ dtype: a!.dtype, shape: broadcastShapes(a!.shape, b!.shape, name) }];
    },
    flops: elementwiseFlops(1),
  };
}

const add = broadcasting('add', 'elementwise sum with broadcasting (residual connections, biases)');
const mul = broadcasting('mul', 'elementwise product with broadcasting (gating, scaling)');

const embedding: OpDef = {
  name: 'embedding',
  summary: 'rows of a table looked up by integer ids',
  category: 'movement',
  operands: [{ name: 'ids' }, { name: 'table', weight: true }],
  attrs: {},
  infer([ids, table]) {
    if (!isInteger(ids!.dtype)) fail('GY2013', `embedding ids must be integers, got ${ids!.dtype}`);
    if (table!.shape.length !== 2) fail('GY2008', `embedding table must be 2-D [rows, width], got ${formatShape(table!.shape)}`);
    return [{ dtype: table!.dtype, shape: [...ids!.shape, table!.shape[1]!] }];
  },
  flops: noFlops,
};

const rope: OpDef = {
  name: 'rope',
  summary: 'rotary position embedding applied per head to [batch, seq, heads·head_size]',
  category: 'vector',
  operands: [{ name: 'x' }],
  attrs: {
    heads: { kind: 'int', doc: 'number of heads in the last axis' },
    theta: { kind: 'float', default: 10000, doc: 'base of the rotation frequencies' },
  },
  infer([x], attrs) {
    requireFloat(x!, 'rope input');
    if (x!.shape.length !== 3) fail('GY2008', `rope input must be [batch, seq, heads·head_size], got ${formatShape(x!.shape)}`);
    const heads = attrs.heads as number;
    const w = x!.shape[2]!;
    if (heads <= 0 || w % heads !== 0 || (w / heads) % 2 !== 0) {
      fail('GY2008', `rope: width ${w} must split into ${heads} heads of even size`);
    }
    return [{ ...x! }];
  },
  flops: elementwiseFlops(3),
};

const unary: OpDef = {
  name: 'unary',
  summary: 'a generic elementwise function of one tensor',
  category: 'vector',
  operands: [{ name: 'x' }],
  attrs: { fn: { kind: 'string', oneOf: UNARY_FNS, doc: 'the function' } },
  infer([x], attrs) {
    return [{ dtype: BOOL_RESULT.has(attrs.fn as string) ? 'bool' : x!.dtype, shape: [...x!.shape] }];
  },
  flops: elementwiseFlops(1),
};

const binary: OpDef = {
  name: 'binary',
  summary: 'a generic elementwise function of two tensors, with broadcasting',
  category: 'vector',
  operands: [{ name: 'a' }, { name: 'b' }],
  attrs: { fn: { kind: 'string', oneOf: BINARY_FNS, doc: 'the function' } },
  infer([a, b], attrs) {
    sameDType(a!, b!, `binary ${attrs.fn as string}`);
    const shape = broadcastShapes(a!.shape, b!.shape, `binary ${attrs.fn as string}`);
    return [{ dtype: BOOL_RESULT.has(attrs.fn as string) ? 'bool' : a!.dtype, shape }];
  },
  flops: elementwiseFlops(1),
};

const where: OpDef = {
  name: 'where',
  summary: 'elementwise choice: cond ? a : b, with broadcasting',
  category: 'vector',
  operands: [{ name: 'cond' }, { name: 'a' }, { name: 'b' }],
  attrs: {},
  infer([c, a, b]) {
    if (c!.dtype !== 'bool') fail('GY2013', `where condition must be bool, got ${c!.dtype}`);
    sameDType(a!, b!, 'where');
    const ab = broadcastShapes(a!.shape, b!.shape, 'where');
    return [{ dtype: a!.dtype, shape: broadcastShapes(c!.shape, ab, 'where') }];
  },
  flops: elementwiseFlops(1),
};

const reduce: OpDef = {
  name: 'reduce',
  summary: 'reduction over some axes',
  category: 'vector',
  operands: [{ name: 'x' }],
  attrs: {
    fn: { kind: 'string', oneOf: ['sum', 'mean', 'max', 'min', 'prod'], doc: 'the reduction' },
    axes: { kind: 'ints', doc: 'axes to reduce' },
    keepdims: { kind: 'bool', default: true, doc: 'keep reduced axes with size 1' },
  },
  infer([x], attrs) {
    const rank = x!.shape.length;
    const axes = new Set((attrs.axes as number[]).map((a) => normAxis(a, rank, 'reduce')));
    const shape: number[] = [];
    x!.shape.forEach((d, i) => {
      if (!axes.has(i)) shape.push(d);
      else if (attrs.keepdims) shape.push(1);
    });
    return [{ dtype: x!.dtype, shape }];
  },
  flops: (sig) => ({ fwd: numel(sig.operands[0]!), bwd: numel(sig.operands[0]!) }),
};

const cast: OpDef = {
  name: 'cast',
  summary: 'convert to another element type',
  category: 'vector',
  operands: [{ name: 'x' }],
  attrs: { to: { kind: 'dtype', doc: 'the element type' } },
  infer([x], attrs) {
    return [{ dtype: attrs.to as DType, shape: [...x!.shape] }];
  },
  flops: noFlops,
};

const reshape: OpDef = {
  name: 'reshape',
  summary: 'the same elements in a new shape (one dimension may be -1)',
  category: 'movement',
  operands: [{ name: 'x' }],
  attrs: { shape: { kind: 'ints', doc: 'the new shape' } },
  infer([x], attrs) {
    const want = attrs.shape as number[];
    const n = numel(x!);
    const free = want.filter((d) => d === -1).length;
    if (free > 1 || want.some((d) => d < -1 || d === 0)) {
      fail('GY2019', `reshape: shape ${formatShape(want)} may hold positive sizes and at most one -1`);
    }
    const known = want.filter((d) => d !== -1).reduce((p, d) => p * d, 1);
    const shape = want.map((d) => (d === -1 ? n / known : d));
    if (numel(shape) !== n || !shape.every(Number.isInteger)) {
      fail('GY2008', `reshape: cannot view ${formatShape(x!.shape)} (${n} elements) as ${formatShape(want)}`);
    }
    return [{ dtype: x!.dtype, shape }];
  },
  flops: noFlops,
};

const transpose: OpDef = {
  name: 'transpose',
  summary: 'permute axes',
  category: 'movement',
  operands: [{ name: 'x' }],
  attrs: { perm: { kind: 'ints', doc: 'result axis i is input axis perm[i]' } },
  infer([x], attrs) {
    const perm = attrs.perm as number[];
    const rank = x!.shape.length;
    const sorted = [...perm].sort((a, b) => a - b);
    if (perm.length !== rank || !sorted.every((p, i) => p === i)) {
      fail('GY2019', `transpose: perm ${formatShape(perm)} is not a permutation of ${rank} axes`);
    }
    return [{ dtype: x!.dtype, shape: perm.map((p) => x!.shape[p]!) }];
  },
  flops: noFlops,
};

const concat: OpDef = {
  name: 'concat',
  summary: 'join tensors along one axis',
  category: 'movement',
  operands: [{ name: 'xs', variadic: true }],
  attrs: { axis: { kind: 'int', doc: 'axis to join along' } },
  infer(xs, attrs) {
    const first = xs[0]!;
    const axis = normAxis(attrs.axis as number, first.shape.length, 'concat');
    let total = 0;
    for (const [i, x] of xs.entries()) {
      sameDType(first, x, 'concat');
      const ok = x.shape.length === first.shape.length && x.shape.every((d, j) => j === axis || d === first.shape[j]);
      if (!ok) fail('GY2008', `concat: operand ${i} ${formatShape(x.shape)} does not match ${formatShape(first.shape)} off axis ${axis}`);
      total += x.shape[axis]!;
    }
    const shape = [...first.shape];
    shape[axis] = total;
    return [{ dtype: first.dtype, shape }];
  },
  flops: noFlops,
};

const split: OpDef = {
  name: 'split',
  summary: 'cut a tensor into pieces along one axis (one result per size)',
  category: 'movement',
  operands: [{ name: 'x' }],
  attrs: {
    axis: { kind: 'int', doc: 'axis to cut' },
    sizes: { kind: 'ints', doc: 'size of each piece' },
  },
  infer([x], attrs) {
    const axis = normAxis(attrs.axis as number, x!.shape.length, 'split');
    const sizes = attrs.sizes as number[];
    const sum = sizes.reduce((a, b) => a + b, 0);
    if (sizes.length === 0 || sizes.some((s) => s <= 0)) fail('GY2019', `split: sizes must be positive`);
    if (sum !== x!.shape[axis]) fail('GY2008', `split: sizes ${formatShape(sizes)} add up to ${sum}, axis ${axis} of ${formatShape(x!.shape)} has ${x!.shape[axis]}`);
    return sizes.map((s) => {
      const shape = [...x!.shape];
      shape[axis] = s;
      return { dtype: x!.dtype, shape };
    });
  },
  flops: noFlops,
};

const slice: OpDef = {
  name: 'slice',
  summary: 'a strided window along some axes',
  category: 'movement',
  operands: [{ name: 'x' }],
  attrs: {
    axes: { kind: 'ints', doc: 'axes sliced' },
    starts: { kind: 'ints', doc: 'first index per axis (negative counts from the end)' },
    ends: { kind: 'ints', doc: 'end index per axis, exclusive (clamped)' },
    steps: { kind: 'ints', optional: true, doc: 'stride per axis (default 1)' },
  },
  infer([x], attrs) {
    const axes = attrs.axes as number[];
    const starts = attrs.starts as number[];
    const ends = attrs.ends as number[];
    const steps = (attrs.steps as number[] | undefined) ?? axes.map(() => 1);
    if (starts.length !== axes.length || ends.length !== axes.length || steps.length !== axes.length) {
      fail('GY2019', 'slice: axes, starts, ends and steps must have the same length');
    }
    const shape = [...x!.shape];
    axes.forEach((a0, i) => {
      const a = normAxis(a0, shape.length, 'slice');
      const dim = x!.shape[a]!;
      const step = steps[i]!;
      if (step === 0) fail('GY2019', 'slice: step 0');
      const clamp = (v: number, lo: number, hi: number) => Math.min(Math.max(v < 0 ? v + dim : v, lo), hi);
      const s = step > 0 ? clamp(starts[i]!, 0, dim) : clamp(starts[i]!, -1, dim - 1);
      const e = step > 0 ? clamp(ends[i]!, 0, dim) : clamp(ends[i]!, -1, dim - 1);
      shape[a] = Math.max(0, Math.ceil((e - s) / step));
    });
    return [{ dtype: x!.dtype, shape }];
  },
  flops: noFlops,
};

const gather: OpDef = {
  name: 'gather',
  summary: 'index one axis of a tensor with integer indices',
  category: 'movement',
  operands: [{ name: 'x' }, { name: 'indices' }],
  attrs: { axis: { kind: 'int', default: 0, doc: 'axis indexed' } },
  infer([x, idx], attrs) {
    if (!isInteger(idx!.dtype)) fail('GY2013', `gather indices must be integers, got ${idx!.dtype}`);
    const axis = normAxis(attrs.axis as number, x!.shape.length, 'gather');
    return [{ dtype: x!.dtype, shape: [...x!.shape.slice(0, axis), ...idx!.shape, ...x!.shape.slice(axis + 1)] }];
  },
  flops: noFlops,
};

const expand: OpDef = {
  name: 'expand',
  summary: 'broadcast a tensor to a larger shape',
  category: 'movement',
  operands: [{ name: 'x' }],
  attrs: { shape: { kind: 'ints', doc: 'the target shape' } },
  infer([x], attrs) {
    return [{ dtype: x!.dtype, shape: broadcastShapes(x!.shape, attrs.shape as number[], 'expand') }];
  },
  flops: noFlops,
};

/** Every op of the IR, keyed by its name (the name the DSL and the text form use). */
export const OPS = {
  linear,
  matmul,
  attention,
  layernorm,
  rmsnorm,
  gelu,
  silu,
  softmax,
  add,
  mul,
  embedding,
  rope,
  unary,
  binary,
  where,
  reduce,
  cast,
  reshape,
  transpose,
  concat,
  split,
  slice,
  gather,
  expand,
  ...gradientOps({ linear, attention, layernorm, rmsnorm, gelu, silu, softmax, rope, unary, binary, embedding, gather, slice, reduce }),
  sgd,
  adam,
  all_gather,
  reduce_scatter,
  all_reduce,
  broadcast,
} as const satisfies Record<string, OpDef>;

export type OpKind = keyof typeof OPS;

export function isOpKind(name: string): name is OpKind {
  return Object.prototype.hasOwnProperty.call(OPS, name);
}

export function opDef(kind: OpKind): OpDef {
  return OPS[kind];
}

/** Check operand count against the signature; the message names what the op takes. */
export function checkArity(def: OpDef, count: number): void {
  const required = def.operands.filter((o) => !o.optional && !o.variadic).length;
  const variadic = def.operands.some((o) => o.variadic);
  const max = variadic ? Infinity : def.operands.length;
  const min = variadic ? Math.max(required, 1) : required;
  if (count < min || count > max) {
    const takes = def.operands.map((o) => (o.variadic ? `${o.name}...` : o.optional ? `${o.name}?` : o.name)).join(', ');
    fail('GY2004', `${def.name} takes (${takes}), got ${count} operand${count === 1 ? '' : 's'}`);
  }
}
