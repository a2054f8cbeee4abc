// Numeric kernels of the functional backend: one plain function per IR op kind (forward,
// gradient and optimizer ops), over flat row-major Float64Arrays with explicit dimensions.
// They allocate per call at most (offset tables, one row of scratch), never per element, and
// know nothing of the Module: the reference interpreter (reference.ts) runs them on whole
// tensors, and a distributed executor can run the same functions on a die's tile.
//
// Semantics are those of the op table (src/ir/ops.ts) and of the gradient definitions and
// their formulas (src/ir/grads.ts). Every number is a double: float dtypes are all computed
// in float64, and integer and bool results are rounded to their dtype by `roundToDType`
// (the caller's job, since a kernel does not know dtypes). Conventions where the op table
// leaves a choice open are stated at the kernel (rope pairing, causal alignment, negative
// gather indices).
//
// Kernels check the data they index with (ids, indices) and raise a `GygesError` (GY9001,
// no site: the caller adds the op's location); shape agreement is the caller's contract and
// is only asserted.

import { broadcastStrides, stridesOf, walkOffsets } from '../../util/strides.js';
import { assert, assertNever, GygesError, InternalError } from '../../diagnostics/diagnostic.js';
import type { BINARY_FNS, UNARY_FNS } from '../../ir/ops.js';
import type { DType } from '../../ir/types.js';

export type UnaryFn = (typeof UNARY_FNS)[number];
export type BinaryFn = (typeof BINARY_FNS)[number];
export type ReduceFn = 'sum' | 'mean' | 'max' | 'min' | 'prod';
export type Shape = readonly number[];
type F64 = Float64Array;

// ---------------------------------------------------------------------------------------
// Shapes and offset tables.

export function numelOf(shape: Shape): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

/**
 * For every element of `outShape`, the offset of the element of `inShape` it reads under
 * numpy broadcasting (shapes right-aligned; size-1 axes repeat).
 */
export function broadcastOffsets(inShape: Shape, outShape: Shape): Int32Array {
  const strides = broadcastStrides(inShape, outShape);
  assert(strides !== undefined, `broadcast: [${inShape.join(', ')}] does not broadcast to [${outShape.join(', ')}]`);
  return walkOffsets(outShape, strides);
}

function sameShape(a: Shape, b: Shape): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

/** `full` (of `fullShape`) summed over the axes along which `target` was broadcast to it. */
export function sumTo(full: F64, fullShape: Shape, target: F64, targetShape: Shape): void {
  if (sameShape(fullShape, targetShape)) {
    target.set(full);
    return;
  }
  const at = broadcastOffsets(targetShape, fullShape);
  target.fill(0);
  for (let i = 0; i < at.length; i++) target[at[i]!] += full[i]!;
}

/** [outer, size, inner] of a tensor around one axis. */
export function aroundAxis(shape: Shape, axis: number): [number, number, number] {
  const a = axis < 0 ? axis + shape.length : axis;
  assert(a >= 0 && a < shape.length, `axis ${axis} out of range for rank ${shape.length}`);
  return [numelOf(shape.slice(0, a)), shape[a]!, numelOf(shape.slice(a + 1))];
}

/** Rounds values to an integer or bool dtype in place (truncating and wrapping); floats stay doubles. */
export function roundToDType(dtype: DType, data: F64): void {
  const f = integerRounding(dtype);
  if (!f) return;
  for (let i = 0; i < data.length; i++) data[i] = f(data[i]!);
}

function integerRounding(dtype: DType): ((v: number) => number) | undefined {
  switch (dtype) {
    case 'f64':
    case 'f32':
    case 'f16':
    case 'bf16':
      return undefined;
    case 'bool':
      return (v) => (v !== 0 ? 1 : 0);
    case 'i64':
      return (v) => (Number.isFinite(v) ? Math.trunc(v) + 0 : v);
    case 'i32':
      return (v) => Math.trunc(v) | 0;
    case 'i16':
      return (v) => (Math.trunc(v) << 16) >> 16;
    case 'i8':
      return (v) => (Math.trunc(v) << 24) >> 24;
    case 'u8':
      return (v) => Math.trunc(v) & 0xff;
    default:
      return assertNever(dtype);
  }
}

function dataError(detail: string): GygesError {
  return new GygesError('GY9001', detail);
}

/** An index into an axis of size `dim`; negatives count from the end (as ONNX's Gather). */
function checkedIndex(v: number, dim: number, what: string): number {
  if (!Number.isInteger(v) || v < -dim || v >= dim) throw dataError(`${what} ${v} is out of range for an axis of size ${dim}`);
  return v < 0 ? v + dim : v;
}

// ---------------------------------------------------------------------------------------
// Special functions.

const TWO_OVER_SQRT_PI = 2 / Math.sqrt(Math.PI);
const SQRT_2_OVER_PI = Math.sqrt(2 / Math.PI);
const INV_SQRT_2 = Math.SQRT1_2;
const INV_SQRT_2PI = 1 / Math.sqrt(2 * Math.PI);
const GELU_C = 0.044715;

/**
 * erf to about 1e-15. Small |x|: the Maclaurin series e^(−x²)·Σ 2ⁿx^(2n+1)/(2n+1)!! (all terms
 * positive); large |x|: 1 − erfc, erfc from its Laplace continued fraction, evaluated bottom up.
 */
export function erf(x: number): number {
  if (Number.isNaN(x)) return x;
  const a = Math.abs(x);
  let r: number;
  if (a < 2.2) {
    const a2 = a * a;
    let term = a;
    let sum = a;
    for (let n = 1; n < 200 && term > sum * 1e-17; n++) {
      term *= (2 * a2) / (2 * n + 1);
      sum += term;
    }
    r = TWO_OVER_SQRT_PI * Math.exp(-a2) * sum;
  } else if (a < 6) {
    // erfc(a) = e^(−a²)/√π · 1/(a + ½/(a + 1/(a + 3/2/(a + ...))))
    let f = a;
    for (let k = 60; k >= 1; k--) f = a + k / 2 / f;
    r = 1 - Math.exp(-a * a) / Math.sqrt(Math.PI) / f;
  } else {
    r = 1;
  }
  return x < 0 ? -r : r;
}

function sigmoid(x: number): number {
  return x >= 0 ? 1 / (1 + Math.exp(-x)) : Math.exp(x) / (1 + Math.exp(x));
}

// ---------------------------------------------------------------------------------------
// Elementwise forward ops.

export function unaryFunction(fn: UnaryFn): (x: number) => number {
  switch (fn) {
    case 'identity': return (x) => x;
    case 'neg': return (x) => -x;
    case 'abs': return Math.abs;
    case 'exp': return Math.exp;
    case 'log': return Math.log;
    case 'sqrt': return Math.sqrt;
    case 'rsqrt': return (x) => 1 / Math.sqrt(x);
    case 'reciprocal': return (x) => 1 / x;
    case 'tanh': return Math.tanh;
    case 'sigmoid': return sigmoid;
    case 'relu': return (x) => (x > 0 ? x : 0);
    case 'erf': return erf;
    case 'sin': return Math.sin;
    case 'cos': return Math.cos;
    case 'floor': return Math.floor;
    case 'ceil': return Math.ceil;
    case 'not': return (x) => (x === 0 ? 1 : 0);
    default: return assertNever(fn);
  }
}

/** out = fn(x) elementwise. */
export function unary(fn: UnaryFn, x: F64, out: F64): void {
  const f = unaryFunction(fn);
  for (let i = 0; i < x.length; i++) out[i] = f(x[i]!);
}

/**
 * The binary functions. `mod` is a − b·⌊a/b⌋ (the sign of the divisor); comparisons and
 * logic give 0 or 1. Integer `div` truncates once the caller rounds the result to its dtype.
 */
export function binaryFunction(fn: BinaryFn): (a: number, b: number) => number {
  switch (fn) {
    case 'sub': return (a, b) => a - b;
    case 'div': return (a, b) => a / b;
    case 'pow': return Math.pow;
    case 'max': return (a, b) => (Number.isNaN(a) || Number.isNaN(b) ? NaN : a >= b ? a : b);
    case 'min': return (a, b) => (Number.isNaN(a) || Number.isNaN(b) ? NaN : a <= b ? a : b);
    case 'mod': return (a, b) => a - b * Math.floor(a / b);
    case 'equal': return (a, b) => (a === b ? 1 : 0);
    case 'less': return (a, b) => (a < b ? 1 : 0);
    case 'greater': return (a, b) => (a > b ? 1 : 0);
    case 'and': return (a, b) => (a !== 0 && b !== 0 ? 1 : 0);
    case 'or': return (a, b) => (a !== 0 || b !== 0 ? 1 : 0);
    default: return assertNever(fn);
  }
}

/** out = f(a, b) with numpy broadcasting of a and b to `outShape`. */
export function broadcast2(a: F64, aShape: Shape, b: F64, bShape: Shape, out: F64, outShape: Shape, f: (a: number, b: number) => number): void {
  const n = out.length;
  if (sameShape(aShape, outShape) && sameShape(bShape, outShape)) {
    for (let i = 0; i < n; i++) out[i] = f(a[i]!, b[i]!);
    return;
  }
  const ia = broadcastOffsets(aShape, outShape);
  const ib = broadcastOffsets(bShape, outShape);
  for (let i = 0; i < n; i++) out[i] = f(a[ia[i]!]!, b[ib[i]!]!);
}

export function add(a: F64, aShape: Shape, b: F64, bShape: Shape, out: F64, outShape: Shape): void {
  broadcast2(a, aShape, b, bShape, out, outShape, (x, y) => x + y);
}

export function mul(a: F64, aShape: Shape, b: F64, bShape: Shape, out: F64, outShape: Shape): void {
  broadcast2(a, aShape, b, bShape, out, outShape, (x, y) => x * y);
}

export function binary(fn: BinaryFn, a: F64, aShape: Shape, b: F64, bShape: Shape, out: F64, outShape: Shape): void {
  broadcast2(a, aShape, b, bShape, out, outShape, binaryFunction(fn));
}

/** out = cond ? a : b, all three broadcast to `outShape`; cond is 0 (false) or not. */
export function where(cond: F64, condShape: Shape, a: F64, aShape: Shape, b: F64, bShape: Shape, out: F64, outShape: Shape): void {
  const ic = broadcastOffsets(condShape, outShape);
  const ia = broadcastOffsets(aShape, outShape);
  const ib = broadcastOffsets(bShape, outShape);
  for (let i = 0; i < out.length; i++) out[i] = cond[ic[i]!]! !== 0 ? a[ia[i]!]! : b[ib[i]!]!;
}

/** gelu: x·Φ(x) ("none"), or ½x(1 + tanh(√(2/π)(x + 0.044715x³))) ("tanh"). */
export function gelu(x: F64, out: F64, approximate: 'none' | 'tanh'): void {
  if (approximate === 'tanh') {
    for (let i = 0; i < x.length; i++) {
      const v = x[i]!;
      out[i] = 0.5 * v * (1 + Math.tanh(SQRT_2_OVER_PI * (v + GELU_C * v * v * v)));
    }
  } else {
    for (let i = 0; i < x.length; i++) {
      const v = x[i]!;
      out[i] = 0.5 * v * (1 + erf(v * INV_SQRT_2));
    }
  }
}

export function silu(x: F64, out: F64): void {
  for (let i = 0; i < x.length; i++) out[i] = x[i]! * sigmoid(x[i]!);
}

// ---------------------------------------------------------------------------------------
// Products.

/** y[m, n] = x[m, k]·w[k, n] (+ b[n]). */
export function linear(x: F64, w: F64, b: F64 | undefined, out: F64, m: number, k: number, n: number): void {
  for (let i = 0; i < m; i++) {
    const o = i * n;
    if (b) for (let j = 0; j < n; j++) out[o + j] = b[j]!;
    else out.fill(0, o, o + n);
    for (let p = 0; p < k; p++) {
      const xv = x[i * k + p]!;
      if (xv === 0) continue;
      const wr = p * n;
      for (let j = 0; j < n; j++) out[o + j] += xv * w[wr + j]!;
    }
  }
}

/** dx = dy·wᵀ, dw = xᵀ·dy, db = Σ_rows dy; each computed when its array is given. */
export function linearGrad(x: F64, w: F64, dy: F64, m: number, k: number, n: number, dx?: F64, dw?: F64, db?: F64): void {
  if (dx) {
    for (let i = 0; i < m; i++) {
      for (let p = 0; p < k; p++) {
        let s = 0;
        for (let j = 0; j < n; j++) s += dy[i * n + j]! * w[p * n + j]!;
        dx[i * k + p] = s;
      }
    }
  }
  if (dw) {
    dw.fill(0);
    for (let i = 0; i < m; i++) {
      for (let p = 0; p < k; p++) {
        const xv = x[i * k + p]!;
        if (xv === 0) continue;
        for (let j = 0; j < n; j++) dw[p * n + j] += xv * dy[i * n + j]!;
      }
    }
  }
  if (db) {
    db.fill(0);
    for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) db[j] += dy[i * n + j]!;
  }
}

/** Batched a[..., m, k]·b[..., k, n] with the batch axes broadcast to those of `outShape`. */
export function matmul(a: F64, aShape: Shape, b: F64, bShape: Shape, out: F64, outShape: Shape): void {
  const r = outShape.length;
  const [m, n] = [outShape[r - 2]!, outShape[r - 1]!];
  const k = aShape[aShape.length - 1]!;
  const batch = outShape.slice(0, -2);
  const ia = broadcastOffsets(aShape.slice(0, -2), batch);
  const ib = broadcastOffsets(bShape.slice(0, -2), batch);
  for (let t = 0; t < ia.length; t++) {
    const ao = ia[t]! * m * k;
    const bo = ib[t]! * k * n;
    const oo = t * m * n;
    out.fill(0, oo, oo + m * n);
    for (let i = 0; i < m; i++) {
      for (let p = 0; p < k; p++) {
        const av = a[ao + i * k + p]!;
        if (av === 0) continue;
        for (let j = 0; j < n; j++) out[oo + i * n + j] += av * b[bo + p * n + j]!;
      }
    }
  }
}

// ---------------------------------------------------------------------------------------
// Attention.

export interface AttentionDims {
  readonly batch: number;
  /** Query positions s. */
  readonly seq: number;
  /** Key/value positions t. */
  readonly kvSeq: number;
  readonly heads: number;
  readonly kvHeads: number;
  readonly headSize: number;
  /** Position j is masked for query i when j > i (top-left aligned, "above the diagonal"). */
  readonly causal: boolean;
  readonly scale: number;
}

/** The additive mask's offsets, one per score [b, heads, s, t], or undefined without a mask. */
function maskOffsets(mask: F64 | undefined, maskShape: Shape | undefined, d: AttentionDims): Int32Array | undefined {
  if (!mask) return undefined;
  assert(maskShape !== undefined, 'attention: a mask needs its shape');
  return broadcastOffsets(maskShape, [d.batch, d.heads, d.seq, d.kvSeq]);
}

/**
 * Softmax probabilities of one query row into `p` (length t): scale·q·kᵀ + mask, causal
 * positions excluded (probability 0). Returns the number of live positions.
 */
function scoreRow(q: F64, k: F64, mask: F64 | undefined, mo: Int32Array | undefined, d: AttentionDims, b: number, h: number, i: number, p: F64): number {
  const D = d.headSize;
  const g = Math.floor(h / (d.heads / d.kvHeads));
  const qo = (b * d.seq + i) * d.heads * D + h * D;
  const kw = d.kvHeads * D;
  const live = d.causal ? Math.min(i + 1, d.kvSeq) : d.kvSeq;
  const mrow = ((b * d.heads + h) * d.seq + i) * d.kvSeq;
  let max = -Infinity;
  for (let j = 0; j < live; j++) {
    const ko = (b * d.kvSeq + j) * kw + g * D;
    let s = 0;
    for (let c = 0; c < D; c++) s += q[qo + c]! * k[ko + c]!;
    s *= d.scale;
    if (mask && mo) s += mask[mo[mrow + j]!]!;
    p[j] = s;
    if (s > max) max = s;
  }
  let sum = 0;
  for (let j = 0; j < live; j++) {
    const e = Math.exp(p[j]! - max);
    p[j] = e;
    sum += e;
  }
  for (let j = 0; j < live; j++) p[j]! /= sum;
  for (let j = live; j < d.kvSeq; j++) p[j] = 0;
  return live;
}

/**
 * Per query head h (kv head g = ⌊h / (heads/kv_heads)⌋): O = softmax(scale·Q_h·K_gᵀ + mask)·V_g,
 * q and out [b, s, heads·D], k and v [b, t, kv_heads·D], the mask broadcast to [b, heads, s, t].
 */
export function attention(q: F64, k: F64, v: F64, mask: F64 | undefined, maskShape: Shape | undefined, out: F64, d: AttentionDims): void {
  const D = d.headSize;
  const mo = maskOffsets(mask, maskShape, d);
  const p = new Float64Array(d.kvSeq);
  const kw = d.kvHeads * D;
  for (let b = 0; b < d.batch; b++) {
    for (let h = 0; h < d.heads; h++) {
      const g = Math.floor(h / (d.heads / d.kvHeads));
      for (let i = 0; i < d.seq; i++) {
        const live = scoreRow(q, k, mask, mo, d, b, h, i, p);
        const oo = (b * d.seq + i) * d.heads * D + h * D;
        out.fill(0, oo, oo + D);
        for (let j = 0; j < live; j++) {
          const pj = p[j]!;
          const vo = (b * d.kvSeq + j) * kw + g * D;
          for (let c = 0; c < D; c++) out[oo + c] += pj * v[vo + c]!;
        }
      }
    }
  }
}

/**
 * Gradients of attention (grads.ts): dP = dO·Vᵀ, dS = P∘(dP − rowsum(dP∘P)), dQ = scale·dS·K,
 * dK += scale·dSᵀ·Q, dV += Pᵀ·dO, dK and dV summed over the query heads sharing a kv head.
 */
export function attentionGrad(q: F64, k: F64, v: F64, mask: F64 | undefined, maskShape: Shape | undefined, dy: F64, d: AttentionDims, dq?: F64, dk?: F64, dv?: F64): void {
  const D = d.headSize;
  const mo = maskOffsets(mask, maskShape, d);
  const p = new Float64Array(d.kvSeq);
  const ds = new Float64Array(d.kvSeq);
  const kw = d.kvHeads * D;
  dk?.fill(0);
  dv?.fill(0);
  for (let b = 0; b < d.batch; b++) {
    for (let h = 0; h < d.heads; h++) {
      const g = Math.floor(h / (d.heads / d.kvHeads));
      for (let i = 0; i < d.seq; i++) {
        const live = scoreRow(q, k, mask, mo, d, b, h, i, p);
        const qo = (b * d.seq + i) * d.heads * D + h * D;
        if (dv) {
          for (let j = 0; j < live; j++) {
            const vo = (b * d.kvSeq + j) * kw + g * D;
            for (let c = 0; c < D; c++) dv[vo + c] += p[j]! * dy[qo + c]!;
          }
        }
        if (!dq && !dk) continue;
        let rowdot = 0;
        for (let j = 0; j < live; j++) {
          const vo = (b * d.kvSeq + j) * kw + g * D;
          let s = 0;
          for (let c = 0; c < D; c++) s += dy[qo + c]! * v[vo + c]!;
          ds[j] = s;
          rowdot += s * p[j]!;
        }
        for (let j = 0; j < live; j++) ds[j] = p[j]! * (ds[j]! - rowdot);
        if (dq) {
          dq.fill(0, qo, qo + D);
          for (let j = 0; j < live; j++) {
            const ko = (b * d.kvSeq + j) * kw + g * D;
            const sj = d.scale * ds[j]!;
            for (let c = 0; c < D; c++) dq[qo + c] += sj * k[ko + c]!;
          }
        }
        if (dk) {
          for (let j = 0; j < live; j++) {
            const ko = (b * d.kvSeq + j) * kw + g * D;
            const sj = d.scale * ds[j]!;
            for (let c = 0; c < D; c++) dk[ko + c] += sj * q[qo + c]!;
          }
        }
      }
    }
  }
}

// ---------------------------------------------------------------------------------------
// Normalisations and softmax.

/** The mean of x[o … o+h) and 1/√(population variance + eps). */
function rowMoments(x: F64, o: number, h: number, eps: number): { mean: number; inv: number } {
  let mean = 0;
  for (let c = 0; c < h; c++) mean += x[o + c]!;
  mean /= h;
  let vr = 0;
  for (let c = 0; c < h; c++) vr += (x[o + c]! - mean) ** 2;
  return { mean, inv: 1 / Math.sqrt(vr / h + eps) };
}

/** layernorm over rows of h: (x − μ)/√(σ² + eps)·γ (+ β), σ² the population variance. */
export function layernorm(x: F64, gamma: F64, beta: F64 | undefined, out: F64, rows: number, h: number, eps: number): void {
  for (let r = 0; r < rows; r++) {
    const o = r * h;
    const { mean, inv } = rowMoments(x, o, h, eps);
    for (let c = 0; c < h; c++) out[o + c] = (x[o + c]! - mean) * inv * gamma[c]! + (beta ? beta[c]! : 0);
  }
}

/** dx = r·(g − mean(g) − x̂·mean(g·x̂)) with g = dy·γ; dγ = Σ_rows dy·x̂; dβ = Σ_rows dy. */
export function layernormGrad(x: F64, gamma: F64, dy: F64, rows: number, h: number, eps: number, dx?: F64, dgamma?: F64, dbeta?: F64): void {
  dgamma?.fill(0);
  dbeta?.fill(0);
  for (let r = 0; r < rows; r++) {
    const o = r * h;
    const { mean, inv } = rowMoments(x, o, h, eps);
    let mg = 0;
    let mgx = 0;
    for (let c = 0; c < h; c++) {
      const xh = (x[o + c]! - mean) * inv;
      const gv = dy[o + c]! * gamma[c]!;
      mg += gv;
      mgx += gv * xh;
      if (dgamma) dgamma[c] += dy[o + c]! * xh;
      if (dbeta) dbeta[c] += dy[o + c]!;
    }
    mg /= h;
    mgx /= h;
    if (dx) {
      for (let c = 0; c < h; c++) {
        const xh = (x[o + c]! - mean) * inv;
        dx[o + c] = inv * (dy[o + c]! * gamma[c]! - mg - xh * mgx);
      }
    }
  }
}

/** rmsnorm over rows of h: x/√(mean(x²) + eps)·γ. */
export function rmsnorm(x: F64, gamma: F64, out: F64, rows: number, h: number, eps: number): void {
  for (let r = 0; r < rows; r++) {
    const o = r * h;
    let ms = 0;
    for (let c = 0; c < h; c++) ms += x[o + c]! * x[o + c]!;
    const inv = 1 / Math.sqrt(ms / h + eps);
    for (let c = 0; c < h; c++) out[o + c] = x[o + c]! * inv * gamma[c]!;
  }
}

/** dx = r·(g − x̂·mean(g·x̂)) with g = dy·γ; dγ = Σ_rows dy·x̂. */
export function rmsnormGrad(x: F64, gamma: F64, dy: F64, rows: number, h: number, eps: number, dx?: F64, dgamma?: F64): void {
  dgamma?.fill(0);
  for (let r = 0; r < rows; r++) {
    const o = r * h;
    let ms = 0;
    for (let c = 0; c < h; c++) ms += x[o + c]! * x[o + c]!;
    const inv = 1 / Math.sqrt(ms / h + eps);
    let mgx = 0;
    for (let c = 0; c < h; c++) {
      const xh = x[o + c]! * inv;
      mgx += dy[o + c]! * gamma[c]! * xh;
      if (dgamma) dgamma[c] += dy[o + c]! * xh;
    }
    mgx /= h;
    if (dx) for (let c = 0; c < h; c++) dx[o + c] = inv * (dy[o + c]! * gamma[c]! - x[o + c]! * inv * mgx);
  }
}

/** Softmax along the middle axis of [outer, dim, inner]. */
export function softmax(x: F64, out: F64, outer: number, dim: number, inner: number): void {
  for (let a = 0; a < outer; a++) {
    for (let c = 0; c < inner; c++) {
      const base = a * dim * inner + c;
      let max = -Infinity;
      for (let j = 0; j < dim; j++) max = Math.max(max, x[base + j * inner]!);
      let sum = 0;
      for (let j = 0; j < dim; j++) {
        const e = Math.exp(x[base + j * inner]! - max);
        out[base + j * inner] = e;
        sum += e;
      }
      for (let j = 0; j < dim; j++) out[base + j * inner]! /= sum;
    }
  }
}

/** dx = y∘(dy − Σ_axis dy∘y), y = softmax(x) recomputed. */
export function softmaxGrad(x: F64, dy: F64, dx: F64, outer: number, dim: number, inner: number): void {
  softmax(x, dx, outer, dim, inner);
  for (let a = 0; a < outer; a++) {
    for (let c = 0; c < inner; c++) {
      const base = a * dim * inner + c;
      let dot = 0;
      for (let j = 0; j < dim; j++) dot += dy[base + j * inner]! * dx[base + j * inner]!;
      for (let j = 0; j < dim; j++) {
        const at = base + j * inner;
        dx[at] = dx[at]! * (dy[at]! - dot);
      }
    }
  }
}

// ---------------------------------------------------------------------------------------
// Rotary embeddings.

export interface RopeDims {
  /** Rows of x: batch·seq for a whole tensor, fewer for a tile of rows. */
  readonly rows: number;
  /** Sequence length: the position of global row r is r mod seq. */
  readonly seq: number;
  readonly heads: number;
  readonly headSize: number;
  readonly theta: number;
  /** Global row index of x's first row (a tile's offset); default 0. */
  readonly firstRow?: number;
}

/**
 * rope on rows of heads·D (x [b, s, heads·D] viewed as [b·s, heads·D]) in the rotate-half
 * pairing (GPT-NeoX, Llama; the form the ONNX frontend raises): coordinates c and c + D/2 of
 * each head at position p (axis 1, from 0) rotate by p·θ^(−2c/D):
 * y_c = x_c·cos − x_{c+D/2}·sin, y_{c+D/2} = x_{c+D/2}·cos + x_c·sin.
 * `direction` −1 rotates by the opposite angle (rope_grad).
 */
export function rope(x: F64, out: F64, d: RopeDims, direction: 1 | -1 = 1): void {
  const D = d.headSize;
  const half = D / 2;
  const width = d.heads * D;
  const freq = new Float64Array(half);
  for (let c = 0; c < half; c++) freq[c] = Math.pow(d.theta, (-2 * c) / D);
  for (let r = 0; r < d.rows; r++) {
    const p = ((d.firstRow ?? 0) + r) % d.seq;
    for (let c = 0; c < half; c++) {
      const angle = p * freq[c]!;
      const cos = Math.cos(angle);
      const sin = direction * Math.sin(angle);
      for (let h = 0; h < d.heads; h++) {
        const o = r * width + h * D;
        const x1 = x[o + c]!;
        const x2 = x[o + c + half]!;
        out[o + c] = x1 * cos - x2 * sin;
        out[o + c + half] = x2 * cos + x1 * sin;
      }
    }
  }
}

/** dx: dy rotated back by the same angles. */
export function ropeGrad(dy: F64, dx: F64, d: RopeDims): void {
  rope(dy, dx, d, -1);
}

// ---------------------------------------------------------------------------------------
// Lookups.

/** out[p, :] = table[ids[p], :]. */
export function embedding(ids: F64, table: F64, out: F64, rows: number, width: number): void {
  for (let p = 0; p < ids.length; p++) {
    const r = ids[p]!;
    if (!Number.isInteger(r) || r < 0 || r >= rows) throw dataError(`embedding id ${r} is out of range for a table of ${rows} rows`);
    out.set(table.subarray(r * width, (r + 1) * width), p * width);
  }
}

/** dtable = 0; dtable[ids[p], :] += dy[p, :]. */
export function embeddingGrad(ids: F64, dy: F64, dtable: F64, rows: number, width: number): void {
  dtable.fill(0);
  for (let p = 0; p < ids.length; p++) {
    const r = ids[p]!;
    if (!Number.isInteger(r) || r < 0 || r >= rows) throw dataError(`embedding id ${r} is out of range for a table of ${rows} rows`);
    for (let c = 0; c < width; c++) dtable[r * width + c] += dy[p * width + c]!;
  }
}

/**
 * x viewed as [pre, dim, post], indices flattened to n: out [pre, n, post] takes
 * x[pre, indices[j], post]. Indices in [−dim, dim); negatives count from the end.
 */
export function gather(x: F64, indices: F64, out: F64, pre: number, dim: number, post: number): void {
  const n = indices.length;
  for (let j = 0; j < n; j++) {
    const i = checkedIndex(indices[j]!, dim, 'gather index');
    for (let a = 0; a < pre; a++) out.set(x.subarray((a * dim + i) * post, (a * dim + i + 1) * post), (a * n + j) * post);
  }
}

/** dx = 0; dx[pre, indices[j], post] += dy[pre, j, post]. */
export function gatherGrad(indices: F64, dy: F64, dx: F64, pre: number, dim: number, post: number): void {
  const n = indices.length;
  dx.fill(0);
  for (let j = 0; j < n; j++) {
    const i = checkedIndex(indices[j]!, dim, 'gather index');
    for (let a = 0; a < pre; a++) {
      const to = (a * dim + i) * post;
      const from = (a * n + j) * post;
      for (let c = 0; c < post; c++) dx[to + c] += dy[from + c]!;
    }
  }
}

// ---------------------------------------------------------------------------------------
// Data movement.

/** out = x with its axes permuted: result axis i is input axis perm[i]. */
export function transpose(x: F64, xShape: Shape, perm: readonly number[], out: F64): void {
  const s = stridesOf(xShape);
  const at = walkOffsets(perm.map((p) => xShape[p]!), perm.map((p) => s[p]!));
  for (let i = 0; i < at.length; i++) out[i] = x[at[i]!]!;
}

/** out = x broadcast to `outShape`. */
export function expand(x: F64, xShape: Shape, out: F64, outShape: Shape): void {
  const at = broadcastOffsets(xShape, outShape);
  for (let i = 0; i < at.length; i++) out[i] = x[at[i]!]!;
}

/** Pieces joined along `axis` (all of rank r, equal off the axis). */
export function concat(xs: readonly F64[], shapes: readonly Shape[], axis: number, out: F64): void {
  const [outer] = aroundAxis(shapes[0]!, axis);
  if (outer === 0) return;
  const rows = shapes.map((s) => numelOf(s) / outer);
  const total = rows.reduce((a, b) => a + b, 0);
  for (let a = 0; a < outer; a++) {
    let off = a * total;
    xs.forEach((x, i) => {
      const r = rows[i]!;
      out.set(x.subarray(a * r, (a + 1) * r), off);
      off += r;
    });
  }
}

/** x cut along `axis` into pieces of `sizes`. */
export function split(x: F64, xShape: Shape, axis: number, sizes: readonly number[], outs: readonly F64[]): void {
  const [outer, dim, inner] = aroundAxis(xShape, axis);
  for (let a = 0; a < outer; a++) {
    let start = 0;
    sizes.forEach((s, i) => {
      const from = (a * dim + start) * inner;
      outs[i]!.set(x.subarray(from, from + s * inner), a * s * inner);
      start += s;
    });
  }
}

/** One axis of a slice window, resolved against the input shape. */
export interface SliceAxis {
  readonly start: number;
  readonly step: number;
  readonly size: number;
}

/**
 * The window of `slice {axes, starts, ends, steps}` on `shape`, one entry per axis (the
 * whole axis where not sliced), resolved as the op table's inference resolves it: negative
 * bounds count from the end; for step > 0 both clamp to [0, dim], for step < 0 to [−1, dim−1].
 */
export function sliceWindow(shape: Shape, axes: readonly number[], starts: readonly number[], ends: readonly number[], steps?: readonly number[]): SliceAxis[] {
  const win: SliceAxis[] = shape.map((d) => ({ start: 0, step: 1, size: d }));
  axes.forEach((a0, i) => {
    const a = a0 < 0 ? a0 + shape.length : a0;
    const dim = shape[a]!;
    const step = steps?.[i] ?? 1;
    assert(step !== 0, 'slice: step 0');
    const clamp = (v: number, lo: number, hi: number) => Math.min(Math.max(v < 0 ? v + dim : v, lo), hi);
    const s = step > 0 ? clamp(starts[i]!, 0, dim) : clamp(starts[i]!, -1, dim - 1);
    const e = step > 0 ? clamp(ends[i]!, 0, dim) : clamp(ends[i]!, -1, dim - 1);
    win[a] = { start: s, step, size: Math.max(0, Math.ceil((e - s) / step)) };
  });
  return win;
}

function windowOffsets(xShape: Shape, win: readonly SliceAxis[]): Int32Array {
  const s = stridesOf(xShape);
  const base = win.reduce((acc, w, i) => acc + w.start * s[i]!, 0);
  return walkOffsets(win.map((w) => w.size), win.map((w, i) => w.step * s[i]!), base);
}

export function slice(x: F64, xShape: Shape, win: readonly SliceAxis[], out: F64): void {
  const at = windowOffsets(xShape, win);
  for (let i = 0; i < at.length; i++) out[i] = x[at[i]!]!;
}

/** dx = zeros with the window set to dy. */
export function sliceGrad(dy: F64, xShape: Shape, win: readonly SliceAxis[], dx: F64): void {
  const at = windowOffsets(xShape, win);
  dx.fill(0);
  for (let i = 0; i < at.length; i++) dx[at[i]!] = dy[i]!;
}

// ---------------------------------------------------------------------------------------
// Reductions.

/** x's shape with the reduced axes kept as size 1 (the layout of the result either way). */
export function keptShape(xShape: Shape, axes: readonly number[]): number[] {
  const set = new Set(axes.map((a) => (a < 0 ? a + xShape.length : a)));
  return xShape.map((d, i) => (set.has(i) ? 1 : d));
}

/** Reduce x over `axes`; `out` has numel of the kept shape (keepdims or not: the same order). */
export function reduce(fn: ReduceFn, x: F64, xShape: Shape, axes: readonly number[], out: F64): void {
  const kept = keptShape(xShape, axes);
  const at = broadcastOffsets(kept, xShape);
  const group = numelOf(xShape) / Math.max(1, numelOf(kept));
  switch (fn) {
    case 'sum':
    case 'mean':
      out.fill(0);
      for (let i = 0; i < at.length; i++) out[at[i]!] += x[i]!;
      if (fn === 'mean') for (let i = 0; i < out.length; i++) out[i]! /= group;
      return;
    case 'max':
      out.fill(-Infinity);
      for (let i = 0; i < at.length; i++) {
        const [v, o] = [x[i]!, out[at[i]!]!];
        if (v > o || (Number.isNaN(v) && !Number.isNaN(o))) out[at[i]!] = v; // NaN sticks
      }
      return;
    case 'min':
      out.fill(Infinity);
      for (let i = 0; i < at.length; i++) {
        const [v, o] = [x[i]!, out[at[i]!]!];
        if (v < o || (Number.isNaN(v) && !Number.isNaN(o))) out[at[i]!] = v;
      }
      return;
    case 'prod':
      out.fill(1);
      for (let i = 0; i < at.length; i++) out[at[i]!]! *= x[i]!;
      return;
    default:
      return assertNever(fn);
  }
}

/**
 * Gradient of a max, min or prod reduction: dy broadcast back over the reduced axes; max/min
 * send it to the group's extremum, split evenly between ties; prod multiplies it by the
 * product of the group's other elements (computed without dividing, so zeros are exact).
 */
export function reduceGrad(fn: 'max' | 'min' | 'prod', x: F64, xShape: Shape, axes: readonly number[], dy: F64, dx: F64): void {
  const kept = keptShape(xShape, axes);
  const at = broadcastOffsets(kept, xShape);
  const groups = numelOf(kept);
  if (fn === 'prod') {
    const nonzero = new Float64Array(groups).fill(1);
    const zeros = new Int32Array(groups);
    for (let i = 0; i < at.length; i++) {
      if (x[i] === 0) zeros[at[i]!]!++;
      else nonzero[at[i]!]! *= x[i]!;
    }
    for (let i = 0; i < at.length; i++) {
      const g = at[i]!;
      const z = zeros[g]!;
      const others = z === 0 ? nonzero[g]! / x[i]! : z === 1 && x[i] === 0 ? nonzero[g]! : 0;
      dx[i] = dy[g]! * others;
    }
    return;
  }
  const ext = new Float64Array(groups);
  reduce(fn, x, xShape, axes, ext);
  const ties = new Int32Array(groups);
  for (let i = 0; i < at.length; i++) if (x[i] === ext[at[i]!]) ties[at[i]!]!++;
  for (let i = 0; i < at.length; i++) {
    const g = at[i]!;
    dx[i] = x[i] === ext[g] ? dy[g]! / ties[g]! : 0;
  }
}

// ---------------------------------------------------------------------------------------
// Elementwise gradients.

/** dx = dy·f′(x) for the differentiable unary functions (grads.ts). */
export function unaryGrad(fn: UnaryFn, x: F64, dy: F64, dx: F64): void {
  const d = unaryDerivative(fn);
  for (let i = 0; i < x.length; i++) dx[i] = dy[i]! * d(x[i]!);
}

function unaryDerivative(fn: UnaryFn): (x: number) => number {
  switch (fn) {
    case 'identity': return () => 1;
    case 'neg': return () => -1;
    case 'abs': return (x) => (x > 0 ? 1 : x < 0 ? -1 : 0);
    case 'exp': return Math.exp;
    case 'log': return (x) => 1 / x;
    case 'sqrt': return (x) => 1 / (2 * Math.sqrt(x));
    case 'rsqrt': return (x) => -0.5 * Math.pow(x, -1.5);
    case 'reciprocal': return (x) => -1 / (x * x);
    case 'tanh': return (x) => 1 - Math.tanh(x) ** 2;
    case 'sigmoid': return (x) => sigmoid(x) * (1 - sigmoid(x));
    case 'relu': return (x) => (x > 0 ? 1 : 0);
    case 'erf': return (x) => TWO_OVER_SQRT_PI * Math.exp(-x * x);
    case 'sin': return Math.cos;
    case 'cos': return (x) => -Math.sin(x);
    case 'floor':
    case 'ceil':
    case 'not':
      throw new InternalError(`unary_grad: ${fn} has no gradient`);
    default: return assertNever(fn);
  }
}

/** The partial derivatives of a differentiable binary function: [∂/∂a, ∂/∂b]. */
function binaryPartials(fn: BinaryFn): [(a: number, b: number) => number, (a: number, b: number) => number] {
  switch (fn) {
    case 'sub': return [() => 1, () => -1];
    case 'div': return [(_a, b) => 1 / b, (a, b) => -a / (b * b)];
    case 'pow': return [(a, b) => b * Math.pow(a, b - 1), (a, b) => (a > 0 ? Math.pow(a, b) * Math.log(a) : 0)];
    case 'max': return [(a, b) => (a > b ? 1 : a === b ? 0.5 : 0), (a, b) => (b > a ? 1 : a === b ? 0.5 : 0)];
    case 'min': return [(a, b) => (a < b ? 1 : a === b ? 0.5 : 0), (a, b) => (b < a ? 1 : a === b ? 0.5 : 0)];
    case 'mod': return [() => 1, (a, b) => -Math.floor(a / b)];
    case 'equal':
    case 'less':
    case 'greater':
    case 'and':
    case 'or':
      throw new InternalError(`binary_grad: ${fn} has no gradient`);
    default: return assertNever(fn);
  }
}

/**
 * da = dy·∂f/∂a and db = dy·∂f/∂b at the broadcast shape, each summed over the axes along which
 * its operand was broadcast (grads.ts); each computed when its array is given.
 */
export function binaryGrad(fn: BinaryFn, a: F64, aShape: Shape, b: F64, bShape: Shape, dy: F64, outShape: Shape, da?: F64, db?: F64): void {
  const [pa, pb] = binaryPartials(fn);
  const full = new Float64Array(dy.length);
  for (const [grad, shape, part] of [[da, aShape, pa], [db, bShape, pb]] as const) {
    if (!grad) continue;
    broadcast2(a, aShape, b, bShape, full, outShape, part);
    for (let i = 0; i < full.length; i++) full[i]! *= dy[i]!;
    sumTo(full, outShape, grad, shape);
  }
}

export function geluGrad(x: F64, dy: F64, dx: F64, approximate: 'none' | 'tanh'): void {
  if (approximate === 'tanh') {
    for (let i = 0; i < x.length; i++) {
      const v = x[i]!;
      const t = Math.tanh(SQRT_2_OVER_PI * (v + GELU_C * v * v * v));
      dx[i] = dy[i]! * (0.5 * (1 + t) + 0.5 * v * (1 - t * t) * SQRT_2_OVER_PI * (1 + 3 * GELU_C * v * v));
    }
  } else {
    for (let i = 0; i < x.length; i++) {
      const v = x[i]!;
      const cdf = 0.5 * (1 + erf(v * INV_SQRT_2));
      dx[i] = dy[i]! * (cdf + v * INV_SQRT_2PI * Math.exp(-0.5 * v * v));
    }
  }
}

export function siluGrad(x: F64, dy: F64, dx: F64): void {
  for (let i = 0; i < x.length; i++) {
    const s = sigmoid(x[i]!);
    dx[i] = dy[i]! * s * (1 + x[i]! * (1 - s));
  }
}

// ---------------------------------------------------------------------------------------
// Optimizers.

/** w_new = w − lr·dw. */
export function sgd(w: F64, dw: F64, wNew: F64, lr: number): void {
  for (let i = 0; i < w.length; i++) wNew[i] = w[i]! - lr * dw[i]!;
}

export interface AdamHyper {
  readonly lr: number;
  readonly beta1: number;
  readonly beta2: number;
  readonly eps: number;
}

/** m_new = β1·m + (1−β1)·dw; v_new = β2·v + (1−β2)·dw²; w_new = w − lr·m_new/(√v_new + eps). */
export function adam(w: F64, dw: F64, m: F64, v: F64, wNew: F64, mNew: F64, vNew: F64, hp: AdamHyper): void {
  for (let i = 0; i < w.length; i++) {
    const g = dw[i]!;
    const m1 = hp.beta1 * m[i]! + (1 - hp.beta1) * g;
    const v1 = hp.beta2 * v[i]! + (1 - hp.beta2) * g * g;
    mNew[i] = m1;
    vNew[i] = v1;
    wNew[i] = w[i]! - (hp.lr * m1) / (Math.sqrt(v1) + hp.eps);
  }
}
