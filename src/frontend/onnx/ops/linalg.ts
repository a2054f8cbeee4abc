// Linear algebra and normalisation: MatMul, Gemm, Einsum, Softmax, LogSoftmax and
// LayerNormalization. Products and sums accumulate in float64 and are rounded to the output
// type once, so results match the ONNX reference outputs (computed in the tensor's own type)
// well within the conformance tolerance, and integer products stay exact below 2^53.

import type { OnnxOpContext, OnnxOpDef, ValueFacts } from '../infer.js';
import { allocValues, castValue, isFloatType, numelOf, onnxDType, type OnnxDType, type Tensor, type TensorValues } from '../tensor.js';
import { broadcastDims, broadcastIndex, normAxis, stridesOf } from './util.js';

// ---------------------------------------------------------------------------------------------
// Checks shared by the operators

function dimsText(dims: readonly number[]): string {
  return `[${dims.join(', ')}]`;
}

/** Input i, which the operator needs. */
function required(ctx: OnnxOpContext, i: number, what: string): ValueFacts {
  const f = ctx.inputs[i];
  if (!f) return ctx.fail(`input ${i} (${what}) is required but ${i < ctx.node.inputs.length ? 'omitted' : 'missing'}`);
  return f;
}

/** Fails unless the node has between min and max inputs (a trailing '' counts as given). */
function arity(ctx: OnnxOpContext, min: number, max: number): void {
  const n = ctx.node.inputs.length;
  if (n < min || n > max) {
    const want = min === max ? `${min}` : max === Infinity ? `at least ${min}` : `${min} to ${max}`;
    ctx.fail(`takes ${want} input${want === '1' ? '' : 's'}, but the node has ${n}`);
  }
}

function numeric(ctx: OnnxOpContext, f: ValueFacts, what: string): void {
  if (f.dtype === 'bool') ctx.fail(`${what} must be numeric, not bool`);
}

function floating(ctx: OnnxOpContext, f: ValueFacts, what: string): void {
  if (!isFloatType(f.dtype)) ctx.fail(`${what} must be a floating-point tensor, not ${f.dtype}`);
}

function sameType(ctx: OnnxOpContext, a: ValueFacts, b: ValueFacts, what: string): void {
  if (a.dtype !== b.dtype) ctx.fail(`${what} has type ${b.dtype}, but input 0 has ${a.dtype}; they must match`);
}

/** Whether `dims` broadcasts to `target` in one direction (a bias onto a result). */
function broadcastsTo(dims: readonly number[], target: readonly number[]): boolean {
  if (dims.length > target.length) return false;
  const off = target.length - dims.length;
  return dims.every((d, i) => d === 1 || d === target[off + i]);
}

function product(dims: readonly number[], from: number, to = dims.length): number {
  let n = 1;
  for (let i = from; i < to; i++) n *= dims[i]!;
  return n;
}

// ---------------------------------------------------------------------------------------------
// MatMul

/**
 * acc[i·N + j] += Σ_k a(i, k)·b(k, j) for an M×K by K×N product whose operands are read with
 * arbitrary strides (a transposed Gemm operand is a stride swap). Loops i, k, j keep the
 * innermost reads of b and writes of acc contiguous in the common untransposed case.
 */
function gemmInto(
  acc: Float64Array, accOff: number,
  a: TensorValues, aOff: number, aRow: number, aCol: number,
  b: TensorValues, bOff: number, bRow: number, bCol: number,
  M: number, K: number, N: number,
): void {
  for (let i = 0; i < M; i++) {
    const row = accOff + i * N;
    for (let k = 0; k < K; k++) {
      const av = a[aOff + i * aRow + k * aCol]!;
      const bk = bOff + k * bRow;
      if (bCol === 1) {
        for (let j = 0; j < N; j++) acc[row + j]! += av * b[bk + j]!;
      } else {
        for (let j = 0; j < N; j++) acc[row + j]! += av * b[bk + j * bCol]!;
      }
    }
  }
}

/** Shapes of a MatMul: the operands promoted to matrices, the batch and the result. */
interface MatMulShape {
  readonly M: number;
  readonly K: number;
  readonly N: number;
  readonly aBatch: readonly number[];
  readonly bBatch: readonly number[];
  readonly batch: readonly number[];
  readonly out: readonly number[];
}

/** numpy.matmul's rules: a 1-D A gains a leading 1 and a 1-D B a trailing 1, removed again in the result. */
function matmulShape(ctx: OnnxOpContext, a: readonly number[], b: readonly number[]): MatMulShape {
  if (a.length === 0 || b.length === 0) ctx.fail(`operands must have rank >= 1, not ${dimsText(a)} and ${dimsText(b)}`);
  const am = a.length === 1 ? [1, a[0]!] : a;
  const bm = b.length === 1 ? [b[0]!, 1] : b;
  const M = am[am.length - 2]!;
  const K = am[am.length - 1]!;
  const N = bm[bm.length - 1]!;
  if (bm[bm.length - 2] !== K) {
    ctx.fail(`cannot multiply ${dimsText(a)} by ${dimsText(b)}: the inner dimensions ${K} and ${bm[bm.length - 2]} differ`);
  }
  const aBatch = am.slice(0, -2);
  const bBatch = bm.slice(0, -2);
  const batch = broadcastDims(ctx, [aBatch, bBatch]);
  const out = [...batch, ...(a.length > 1 ? [M] : []), ...(b.length > 1 ? [N] : [])];
  return { M, K, N, aBatch, bBatch, batch, out };
}

const MatMul: OnnxOpDef = {
  infer(ctx) {
    arity(ctx, 2, 2);
    const a = required(ctx, 0, 'A');
    const b = required(ctx, 1, 'B');
    numeric(ctx, a, 'A');
    sameType(ctx, a, b, 'B');
    return [{ dtype: a.dtype, dims: matmulShape(ctx, a.dims, b.dims).out }];
  },
  evaluate(ctx, [a, b]) {
    const s = matmulShape(ctx, a!.dims, b!.dims);
    const { M, K, N } = s;
    const count = numelOf(s.batch);
    const acc = new Float64Array(count * M * N);
    const aMap = broadcastIndex(s.aBatch, s.batch);
    const bMap = broadcastIndex(s.bBatch, s.batch);
    for (let t = 0; t < count; t++) {
      const ai = aMap ? aMap[t]! : t;
      const bi = bMap ? bMap[t]! : t;
      gemmInto(acc, t * M * N, a!.data, ai * M * K, K, 1, b!.data, bi * K * N, N, 1, M, K, N);
    }
    return [rounded(a!.dtype, s.out, acc)];
  },
};

/** Float64 results rounded into a tensor of the output type. */
function rounded(dtype: OnnxDType, dims: readonly number[], acc: Float64Array): Tensor {
  const data = allocValues(dtype, acc.length);
  for (let i = 0; i < acc.length; i++) data[i] = castValue(acc[i]!, dtype);
  return { dtype, dims: [...dims], data };
}

// ---------------------------------------------------------------------------------------------
// Gemm: Y = alpha·A'·B' + beta·C, A' and B' optionally transposed, C broadcast onto [M, N]

interface GemmShape {
  readonly M: number;
  readonly K: number;
  readonly N: number;
  readonly transA: boolean;
  readonly transB: boolean;
}

function gemmShape(ctx: OnnxOpContext, a: readonly number[], b: readonly number[], c: readonly number[] | undefined): GemmShape {
  if (a.length !== 2 || b.length !== 2) ctx.fail(`A and B must be matrices, not ${dimsText(a)} and ${dimsText(b)}`);
  const transA = ctx.attrInt('transA', 0) !== 0;
  const transB = ctx.attrInt('transB', 0) !== 0;
  const [M, K] = transA ? [a[1]!, a[0]!] : [a[0]!, a[1]!];
  const [KB, N] = transB ? [b[1]!, b[0]!] : [b[0]!, b[1]!];
  if (K !== KB) {
    ctx.fail(`cannot multiply A ${dimsText(a)}${transA ? ' (transposed)' : ''} by B ${dimsText(b)}${transB ? ' (transposed)' : ''}: the inner dimensions ${K} and ${KB} differ`);
  }
  if (c) {
    // Before opset 7, C broadcasts only when the `broadcast` attribute says so.
    const strict = ctx.opset < 7 && ctx.attrInt('broadcast', 0) === 0;
    const ok = strict ? c.length === 2 && c[0] === M && c[1] === N : broadcastsTo(c, [M, N]);
    if (!ok) ctx.fail(`C ${dimsText(c)} does not broadcast to the result [${M}, ${N}]`);
  }
  return { M, K, N, transA, transB };
}

const Gemm: OnnxOpDef = {
  infer(ctx) {
    arity(ctx, ctx.opset < 11 ? 3 : 2, 3);
    const a = required(ctx, 0, 'A');
    const b = required(ctx, 1, 'B');
    const c = ctx.inputs[2];
    if (!c && ctx.opset < 11) ctx.fail(`input C is optional only from opset 11; this model uses opset ${ctx.opset}`);
    numeric(ctx, a, 'A');
    sameType(ctx, a, b, 'B');
    if (c) sameType(ctx, a, c, 'C');
    const s = gemmShape(ctx, a.dims, b.dims, c?.dims);
    return [{ dtype: a.dtype, dims: [s.M, s.N] }];
  },
  evaluate(ctx, [a, b, c]) {
    const { M, K, N, transA, transB } = gemmShape(ctx, a!.dims, b!.dims, c?.dims);
    const alpha = ctx.attrFloat('alpha', 1);
    const beta = ctx.attrFloat('beta', 1);
    const acc = new Float64Array(M * N);
    const [aRow, aCol] = transA ? [1, M] : [K, 1];
    const [bRow, bCol] = transB ? [1, K] : [N, 1];
    gemmInto(acc, 0, a!.data, 0, aRow, aCol, b!.data, 0, bRow, bCol, M, K, N);
    const cMap = c && broadcastIndex(c.dims, [M, N]);
    for (let i = 0; i < acc.length; i++) {
      acc[i] = alpha * acc[i]! + (c ? beta * c.data[cMap ? cMap[i]! : i]! : 0);
    }
    return [rounded(a!.dtype, [M, N], acc)];
  },
};

// ---------------------------------------------------------------------------------------------
// Einsum

/** Label ids: letters are 0..51 (A-Z, a-z: the sort order numpy uses); ellipsis axes follow. */
const ELLIPSIS_BASE = 52;

function labelId(ch: string): number {
  const c = ch.charCodeAt(0);
  if (c >= 65 && c <= 90) return c - 65;
  if (c >= 97 && c <= 122) return c - 97 + 26;
  return -1;
}

interface Term {
  readonly before: number[];
  readonly ellipsis: boolean;
  readonly after: number[];
}

function parseTerm(ctx: OnnxOpContext, text: string, where: string): Term {
  const term: Term = { before: [], ellipsis: false, after: [] };
  let seenEllipsis = false;
  for (let i = 0; i < text.length; i++) {
    if (text.startsWith('...', i)) {
      if (seenEllipsis) ctx.fail(`equation: ${where} '${text}' has more than one '...'`);
      seenEllipsis = true;
      i += 2;
      continue;
    }
    const id = labelId(text[i]!);
    if (id < 0) ctx.fail(`equation: ${where} '${text}' has '${text[i]}'; subscripts are letters and '...'`);
    (seenEllipsis ? term.after : term.before).push(id);
  }
  return { ...term, ellipsis: seenEllipsis };
}

/** An einsum resolved against its operands' shapes. */
interface EinsumPlan {
  /** Label id of each axis of each operand. */
  readonly operands: readonly (readonly number[])[];
  /** Label ids of the output axes, in order. */
  readonly out: readonly number[];
  /** Size of each label id that occurs. */
  readonly sizes: ReadonlyMap<number, number>;
}

function planEinsum(ctx: OnnxOpContext, shapes: readonly (readonly number[])[]): EinsumPlan {
  const equation = ctx.attrString('equation').replace(/\s+/g, '');
  const arrow = equation.indexOf('->');
  const lhs = arrow < 0 ? equation : equation.slice(0, arrow);
  const rhs = arrow < 0 ? undefined : equation.slice(arrow + 2);
  if (rhs?.includes('->')) ctx.fail(`equation '${equation}' has more than one '->'`);
  const texts = lhs.split(',');
  if (texts.length !== shapes.length) ctx.fail(`equation '${equation}' has ${texts.length} input term${texts.length === 1 ? '' : 's'}, but the node has ${shapes.length} input${shapes.length === 1 ? '' : 's'}`);
  const terms = texts.map((t, i) => parseTerm(ctx, t, `term ${i}`));

  // The ellipsis axes of all operands broadcast together, aligned on the right.
  const ellipsisDims: number[][] = terms.map((t, i) => {
    const dims = shapes[i]!;
    const letters = t.before.length + t.after.length;
    if (t.ellipsis ? dims.length < letters : dims.length !== letters) {
      ctx.fail(`equation term '${texts[i]}' names ${letters} ax${letters === 1 ? 'is' : 'es'}${t.ellipsis ? ' besides ...' : ''}, but input ${i} has shape ${dimsText(dims)}`);
    }
    return t.ellipsis ? dims.slice(t.before.length, dims.length - t.after.length) : [];
  });
  const anyEllipsis = terms.some((t) => t.ellipsis);
  const broadcast = broadcastDims(ctx, ellipsisDims);
  const E = broadcast.length;

  const sizes = new Map<number, number>();
  broadcast.forEach((d, j) => sizes.set(ELLIPSIS_BASE + j, d));
  const operands = terms.map((t, i) => {
    const dims = shapes[i]!;
    const e = ellipsisDims[i]!.length;
    const ids = [...t.before, ...Array.from({ length: e }, (_, j) => ELLIPSIS_BASE + E - e + j), ...t.after];
    const own = new Map<number, number>();
    ids.forEach((id, k) => {
      const d = dims[k]!;
      if (id >= ELLIPSIS_BASE) return;
      // A label repeated within one operand takes a diagonal: its axes must agree exactly.
      const mine = own.get(id);
      if (mine !== undefined && mine !== d) ctx.fail(`equation term '${texts[i]}' repeats '${labelText(id)}' over axes of sizes ${mine} and ${d} (input ${i} ${dimsText(dims)})`);
      own.set(id, d);
      // Across operands a label's axes must agree, except that 1 broadcasts.
      const seen = sizes.get(id);
      if (seen === undefined || seen === 1) sizes.set(id, d);
      else if (d !== seen && d !== 1) ctx.fail(`equation label '${labelText(id)}' has size ${seen} in one operand and ${d} in input ${i} ${dimsText(dims)}`);
    });
    return ids;
  });

  let out: number[];
  if (rhs !== undefined) {
    const t = parseTerm(ctx, rhs, 'output');
    const ellipsisIds = t.ellipsis ? Array.from({ length: E }, (_, j) => ELLIPSIS_BASE + j) : [];
    out = [...t.before, ...ellipsisIds, ...t.after];
    const seen = new Set<number>();
    for (const id of [...t.before, ...t.after]) {
      if (seen.has(id)) ctx.fail(`equation output '${rhs}' repeats '${labelText(id)}'`);
      if (!sizes.has(id)) ctx.fail(`equation output '${rhs}' has '${labelText(id)}', which no input term has`);
      seen.add(id);
    }
  } else {
    // Implicit output: the broadcast ellipsis axes, then the labels used exactly once, sorted.
    const count = new Map<number, number>();
    for (const t of terms) for (const id of [...t.before, ...t.after]) count.set(id, (count.get(id) ?? 0) + 1);
    const once = [...count].filter(([, n]) => n === 1).map(([id]) => id).sort((x, y) => x - y);
    out = [...(anyEllipsis ? Array.from({ length: E }, (_, j) => ELLIPSIS_BASE + j) : []), ...once];
  }
  return { operands, out, sizes };
}

function labelText(id: number): string {
  return id < 26 ? String.fromCharCode(65 + id) : String.fromCharCode(97 + id - 26);
}

/**
 * out[o] = Σ over the labels not in the output of Π_t operand_t[...]. One odometer walks all
 * labels; each operand's offset (and the output's) moves by the summed strides of its axes
 * carrying the label (a repeated label walks the diagonal; a size-1 axis under a larger label
 * stays put). Any walking order gives the same sums, so labels with the largest strides go
 * outermost and the innermost label, run as a plain loop, reads and writes nearly contiguously
 * (for a matrix product that is the i-k-j order).
 */
function evaluateEinsum(plan: EinsumPlan, inputs: readonly Tensor[], dtype: OnnxDType): Tensor {
  const outDims = plan.out.map((id) => plan.sizes.get(id)!);
  const acc = new Float64Array(numelOf(outDims));
  const ids = [...plan.sizes.keys()];
  if (ids.some((id) => plan.sizes.get(id) === 0)) return rounded(dtype, outDims, acc);

  // strides[t]: how far tensor t's offset moves when a label steps; the output is the last tensor.
  const outStrides = stridesOf(outDims);
  const strideOf = (id: number): number[] => {
    const s = inputs.map((x, t) => {
      const xs = stridesOf(x.dims);
      let sum = 0;
      plan.operands[t]!.forEach((l, k) => {
        if (l === id && x.dims[k] !== 1) sum += xs[k]!;
      });
      return sum;
    });
    const at = plan.out.indexOf(id);
    s.push(at < 0 ? 0 : outStrides[at]!);
    return s;
  };
  const byLabel = ids.map((id) => ({ size: plan.sizes.get(id)!, stride: strideOf(id) }));
  // Size-1 labels go outermost: innermost, they would leave a loop of one step.
  const weight = (l: { size: number; stride: number[] }) => (l.size === 1 ? Infinity : l.stride.reduce((p, v) => p + v, 0));
  byLabel.sort((x, y) => (weight(x) === weight(y) ? 0 : weight(y) > weight(x) ? 1 : -1));
  const dims = byLabel.map((l) => l.size);
  const rank = dims.length;
  const stride = inputs.map((_, t) => byLabel.map((l) => l.stride[t]!));
  stride.push(byLabel.map((l) => l.stride[inputs.length]!));
  const total = numelOf(dims);

  const n = inputs.length;
  const data = inputs.map((x) => x.data);
  const inner = rank > 0 ? dims[rank - 1]! : 1;
  const step = stride.map((s) => (rank > 0 ? s[rank - 1]! : 0));
  const off = new Array<number>(n + 1).fill(0);
  const pos = new Array<number>(rank).fill(0);
  const so = step[n]!;
  for (let done = 0; done < total; done += inner) {
    const o = off[n]!;
    if (n === 1) {
      const x = data[0]!;
      const a = off[0]!;
      const sa = step[0]!;
      for (let j = 0; j < inner; j++) acc[o + j * so]! += x[a + j * sa]!;
    } else if (n === 2) {
      const x = data[0]!;
      const y = data[1]!;
      const a = off[0]!;
      const b = off[1]!;
      const sa = step[0]!;
      const sb = step[1]!;
      if (so === 0) {
        // A summed label innermost (a dot product): keep the sum in a register.
        let sum = 0;
        for (let j = 0; j < inner; j++) sum += x[a + j * sa]! * y[b + j * sb]!;
        acc[o]! += sum;
      } else {
        for (let j = 0; j < inner; j++) acc[o + j * so]! += x[a + j * sa]! * y[b + j * sb]!;
      }
    } else {
      for (let j = 0; j < inner; j++) {
        let p = 1;
        for (let t = 0; t < n; t++) p *= data[t]![off[t]! + j * step[t]!]!;
        acc[o + j * so]! += p;
      }
    }
    // Advance the outer labels, innermost first.
    for (let a = rank - 2; a >= 0; a--) {
      pos[a]!++;
      if (pos[a]! < dims[a]!) {
        for (let t = 0; t <= n; t++) off[t]! += stride[t]![a]!;
        break;
      }
      for (let t = 0; t <= n; t++) off[t]! -= stride[t]![a]! * (dims[a]! - 1);
      pos[a] = 0;
    }
  }
  return rounded(dtype, outDims, acc);
}

const Einsum: OnnxOpDef = {
  infer(ctx) {
    if (ctx.opset < 12) ctx.fail(`is defined from opset 12; this model uses opset ${ctx.opset}`);
    arity(ctx, 1, Infinity);
    const xs = ctx.node.inputs.map((_, i) => required(ctx, i, `operand ${i}`));
    numeric(ctx, xs[0]!, 'input 0');
    xs.slice(1).forEach((x, i) => sameType(ctx, xs[0]!, x, `input ${i + 1}`));
    const plan = planEinsum(ctx, xs.map((x) => x.dims));
    return [{ dtype: xs[0]!.dtype, dims: plan.out.map((id) => plan.sizes.get(id)!) }];
  },
  evaluate(ctx, inputs) {
    const xs = inputs.map((x) => x!);
    return [evaluateEinsum(planEinsum(ctx, xs.map((x) => x.dims)), xs, xs[0]!.dtype)];
  },
};

// ---------------------------------------------------------------------------------------------
// Softmax and LogSoftmax

/**
 * The softmax's layout as (outer, n, inner): normalise over n values spaced `inner` apart.
 * Before opset 13 the input is coerced to 2-D [prod(dims[:axis]), prod(dims[axis:])] and each
 * row normalised; from 13 the normalisation runs along `axis` alone.
 */
function softmaxLayout(ctx: OnnxOpContext, dims: readonly number[]): { outer: number; n: number; inner: number } {
  const legacy = ctx.opset < 13;
  const axis = normAxis(ctx, ctx.attrInt('axis', legacy ? 1 : -1), dims.length);
  if (legacy) return { outer: product(dims, 0, axis), n: product(dims, axis), inner: 1 };
  return { outer: product(dims, 0, axis), n: dims[axis]!, inner: product(dims, axis + 1) };
}

function softmaxOp(log: boolean): OnnxOpDef {
  return {
    infer(ctx) {
      arity(ctx, 1, 1);
      const x = required(ctx, 0, 'input');
      floating(ctx, x, 'the input');
      if (x.dims.length === 0) ctx.fail('the input must have rank >= 1, not a scalar');
      softmaxLayout(ctx, x.dims);
      return [{ dtype: x.dtype, dims: [...x.dims] }];
    },
    evaluate(ctx, [input]) {
      const x = input!;
      const { outer, n, inner } = softmaxLayout(ctx, x.dims);
      const src = x.data;
      const out = allocValues(x.dtype, src.length);
      for (let o = 0; o < outer; o++) {
        for (let i = 0; i < inner; i++) {
          const base = o * n * inner + i;
          // Subtracting the maximum keeps exp() finite for large inputs.
          let max = -Infinity;
          for (let k = 0; k < n; k++) max = Math.max(max, src[base + k * inner]!);
          let sum = 0;
          for (let k = 0; k < n; k++) sum += Math.exp(src[base + k * inner]! - max);
          const logSum = Math.log(sum);
          for (let k = 0; k < n; k++) {
            const d = src[base + k * inner]! - max;
            out[base + k * inner] = castValue(log ? d - logSum : Math.exp(d) / sum, x.dtype);
          }
        }
      }
      return [{ dtype: x.dtype, dims: [...x.dims], data: out }];
    },
  };
}

// ---------------------------------------------------------------------------------------------
// LayerNormalization (opset 17): normalise over dims[axis:], then scale and shift

interface LayerNormShape {
  readonly axis: number;
  /** Type of the Mean and InvStdDev outputs (stash_type). */
  readonly stash: OnnxDType;
  /** Shape of Mean and InvStdDev: dims[:axis] followed by ones. */
  readonly statDims: readonly number[];
}

function layerNormShape(ctx: OnnxOpContext, x: readonly number[], scale: readonly number[], bias: readonly number[] | undefined): LayerNormShape {
  if (x.length === 0) ctx.fail('X must have rank >= 1, not a scalar');
  const axis = normAxis(ctx, ctx.attrInt('axis', -1), x.length);
  const code = ctx.attrInt('stash_type', 1);
  const stash = onnxDType(code)?.dtype;
  if (!stash || !isFloatType(stash)) ctx.fail(`stash_type ${code} is not a floating-point type`);
  if (!broadcastsTo(scale, x)) ctx.fail(`Scale ${dimsText(scale)} does not broadcast to X ${dimsText(x)}`);
  if (bias && !broadcastsTo(bias, x)) ctx.fail(`B ${dimsText(bias)} does not broadcast to X ${dimsText(x)}`);
  return { axis, stash, statDims: x.map((d, i) => (i < axis ? d : 1)) };
}

const LayerNormalization: OnnxOpDef = {
  infer(ctx) {
    if (ctx.opset < 17) ctx.fail(`is defined from opset 17; this model uses opset ${ctx.opset}`);
    arity(ctx, 2, 3);
    const x = required(ctx, 0, 'X');
    const scale = required(ctx, 1, 'Scale');
    const bias = ctx.inputs[2];
    floating(ctx, x, 'X');
    sameType(ctx, x, scale, 'Scale');
    if (bias) sameType(ctx, x, bias, 'B');
    if (ctx.node.outputs.length > 3) ctx.fail(`has ${ctx.node.outputs.length} outputs; it makes at most 3 (Y, Mean, InvStdDev)`);
    const s = layerNormShape(ctx, x.dims, scale.dims, bias?.dims);
    const stat = { dtype: s.stash, dims: [...s.statDims] };
    return [{ dtype: x.dtype, dims: [...x.dims] }, stat, stat];
  },
  evaluate(ctx, [x, scale, bias]) {
    const dims = x!.dims;
    const s = layerNormShape(ctx, dims, scale!.dims, bias?.dims);
    const eps = ctx.attrFloat('epsilon', 1e-5);
    const rows = product(dims, 0, s.axis);
    const n = product(dims, s.axis);
    const src = x!.data;
    const y = allocValues(x!.dtype, src.length);
    const mean = allocValues(s.stash, rows);
    const invStd = allocValues(s.stash, rows);
    const sMap = broadcastIndex(scale!.dims, dims);
    const bMap = bias && broadcastIndex(bias.dims, dims);
    for (let r = 0; r < rows; r++) {
      const base = r * n;
      let sum = 0;
      for (let k = 0; k < n; k++) sum += src[base + k]!;
      const mu = sum / n;
      let sq = 0;
      for (let k = 0; k < n; k++) {
        const d = src[base + k]! - mu;
        sq += d * d;
      }
      const inv = 1 / Math.sqrt(sq / n + eps);
      mean[r] = castValue(mu, s.stash);
      invStd[r] = castValue(inv, s.stash);
      for (let k = 0; k < n; k++) {
        const i = base + k;
        const g = scale!.data[sMap ? sMap[i]! : i]!;
        const b = bias ? bias.data[bMap ? bMap[i]! : i]! : 0;
        y[i] = castValue((src[i]! - mu) * inv * g + b, x!.dtype);
      }
    }
    return [
      { dtype: x!.dtype, dims: [...dims], data: y },
      { dtype: s.stash, dims: [...s.statDims], data: mean },
      { dtype: s.stash, dims: [...s.statDims], data: invStd },
    ];
  },
};

export const LINALG_OPS: Readonly<Record<string, OnnxOpDef>> = {
  MatMul,
  Gemm,
  Einsum,
  Softmax: softmaxOp(false),
  LogSoftmax: softmaxOp(true),
  LayerNormalization,
};
