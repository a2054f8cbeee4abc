// Helpers shared by the operator definitions: axis normalisation, multidirectional
// (NumPy-style) broadcasting, strides, and reading a small known tensor as integers.

import type { OnnxOpContext } from '../infer.js';
import { allocValues, castValue, numelOf, type OnnxDType, type Tensor, type TensorValues } from '../tensor.js';

/** An axis in [-rank, rank) as a non-negative index; fails on the node otherwise. */
export function normAxis(ctx: OnnxOpContext, axis: number, rank: number, what = 'axis'): number {
  if (!Number.isInteger(axis) || axis < -rank || axis >= rank) ctx.fail(`${what} ${axis} is out of range for rank ${rank}`);
  return axis < 0 ? axis + rank : axis;
}

/** Row-major strides of a shape. */
export function stridesOf(dims: readonly number[]): number[] {
  const s = new Array<number>(dims.length);
  let acc = 1;
  for (let i = dims.length - 1; i >= 0; i--) {
    s[i] = acc;
    acc *= dims[i]!;
  }
  return s;
}

/** The broadcast shape of several shapes (ONNX multidirectional broadcasting); fails when they do not broadcast. */
export function broadcastDims(ctx: OnnxOpContext, shapes: readonly (readonly number[])[]): number[] {
  const rank = Math.max(0, ...shapes.map((s) => s.length));
  const out = new Array<number>(rank).fill(1);
  for (const s of shapes) {
    for (let i = 0; i < s.length; i++) {
      const o = rank - s.length + i;
      const d = s[i]!;
      if (d === out[o] || d === 1) continue;
      if (out[o] === 1) out[o] = d;
      else ctx.fail(`shapes ${shapes.map((x) => `[${x.join(', ')}]`).join(' and ')} do not broadcast`);
    }
  }
  return out;
}

/**
 * For each element of `outDims` (row-major), the flat index of the element of a tensor of
 * shape `dims` that broadcasting reads.
 */
export function broadcastIndex(dims: readonly number[], outDims: readonly number[]): Int32Array | undefined {
  const n = numelOf(outDims);
  if (dims.length === outDims.length && dims.every((d, i) => d === outDims[i])) return undefined;
  const rank = outDims.length;
  const src = stridesOf(dims);
  // Stride of each output axis in the source; 0 where the source broadcasts.
  const st = new Array<number>(rank).fill(0);
  for (let i = 0; i < dims.length; i++) {
    const o = rank - dims.length + i;
    st[o] = dims[i] === 1 ? 0 : src[i]!;
  }
  const idx = new Int32Array(n);
  const pos = new Array<number>(rank).fill(0);
  let flat = 0;
  for (let k = 0; k < n; k++) {
    idx[k] = flat;
    for (let a = rank - 1; a >= 0; a--) {
      pos[a]!++;
      flat += st[a]!;
      if (pos[a]! < outDims[a]!) break;
      flat -= st[a]! * pos[a]!;
      pos[a] = 0;
    }
  }
  return idx;
}

/** Applies f elementwise over broadcast inputs, rounding each result to `dtype`. */
export function mapBroadcast(
  ctx: OnnxOpContext,
  inputs: readonly Tensor[],
  dtype: OnnxDType,
  f: (...xs: number[]) => number,
): Tensor {
  const dims = broadcastDims(ctx, inputs.map((t) => t.dims));
  const n = numelOf(dims);
  const maps = inputs.map((t) => broadcastIndex(t.dims, dims));
  const out = allocValues(dtype, n);
  const args = new Array<number>(inputs.length);
  for (let k = 0; k < n; k++) {
    for (let j = 0; j < inputs.length; j++) args[j] = inputs[j]!.data[maps[j] ? maps[j]![k]! : k]!;
    out[k] = castValue(f(...args), dtype);
  }
  return { dtype, dims, data: out };
}

/** The values of a small known tensor as plain integers (shape, axes, indices inputs). */
export function intsOf(t: Tensor): number[] {
  return Array.from(t.data, (v) => Math.trunc(v));
}

/** A tensor with fresh storage of a type and shape. */
export function emptyTensor(dtype: OnnxDType, dims: readonly number[]): { dtype: OnnxDType; dims: number[]; data: TensorValues } {
  return { dtype, dims: [...dims], data: allocValues(dtype, numelOf(dims)) };
}
