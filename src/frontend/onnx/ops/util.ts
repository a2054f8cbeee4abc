// Helpers shared by the operator definitions: axis normalisation, multidirectional
// (NumPy-style) broadcasting, strides, and reading a small known tensor as integers.

import type { OnnxOpContext } from '../infer.js';
import { broadcastStrides, walkOffsets } from '../../../util/strides.js';
import { allocValues, castValue, numelOf, type OnnxDType, type Tensor, type TensorValues } from '../tensor.js';

/** An axis in [-rank, rank) as a non-negative index; fails on the node otherwise. */
export function normAxis(ctx: OnnxOpContext, axis: number, rank: number, what = 'axis'): number {
  if (!Number.isInteger(axis) || axis < -rank || axis >= rank) ctx.fail(`${what} ${axis} is out of range for rank ${rank}`);
  return axis < 0 ? axis + rank : axis;
}

export { stridesOf } from '../../../util/strides.js';

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
  if (dims.length === outDims.length && dims.every((d, i) => d === outDims[i])) return undefined;
  const strides = broadcastStrides(dims, outDims);
  if (!strides) throw new Error(`broadcastIndex: [${dims.join(', ')}] does not broadcast to [${outDims.join(', ')}]`);
  return walkOffsets(outDims, strides);
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
