// Data movement, shape arithmetic and type conversion: the operators that carry exporters'
// shape computations (Shape -> Gather -> Unsqueeze -> Concat -> Reshape), the views of a tensor
// (Reshape, Transpose, Slice, Expand ...) and Cast. Integer values live in Float64Arrays, which
// hold every int64 the exports use exactly, so folded shapes are exact.
//
// `evaluate` reads shape-like inputs (shape, axes, starts, repeats ...) from the tensors it is
// given rather than through ctx.constant, so it also works when an interpreter feeds computed
// values; `infer` needs them known and fails clearly when they are not.

import type { InferredOutput, OnnxOpContext, OnnxOpDef } from '../infer.js';
import type { OnnxAttr } from '../model.js';
import { allocValues, castValue, isFloatType, numelOf, onnxDType, onnxTypeName, type OnnxDType, type Tensor } from '../tensor.js';
import { broadcastDims, emptyTensor, intsOf, normAxis, stridesOf } from './util.js';

// ---------------------------------------------------------------------------------------------
// Reading inputs

/**
 * What a shape rule reads of the node's inputs. Inference reads known numbers through
 * ctx.constant; evaluation reads the tensors it was given, so one rule serves both.
 */
interface Args {
  /** Whether optional input i is present. */
  has(i: number): boolean;
  dims(i: number): readonly number[];
  dtype(i: number): OnnxDType;
  value(i: number, what: string): Tensor;
}

function inferArgs(ctx: OnnxOpContext): Args {
  return {
    has: (i) => ctx.inputs[i] !== undefined,
    dims: (i) => required(ctx, i).dims,
    dtype: (i) => required(ctx, i).dtype,
    value: (i, what) => ctx.constant(i, what),
  };
}

function evalArgs(ctx: OnnxOpContext, inputs: readonly (Tensor | undefined)[]): Args {
  // Shape-only operators see undefined for inputs whose numbers are unknown: fall back to facts.
  const facts = (i: number) => inputs[i] ?? required(ctx, i);
  return {
    has: (i) => inputs[i] !== undefined || ctx.inputs[i] !== undefined,
    dims: (i) => facts(i).dims,
    dtype: (i) => facts(i).dtype,
    value: (i, what) => inputs[i] ?? ctx.constant(i, what),
  };
}

/** Input i, which the operator needs. */
function required(ctx: OnnxOpContext, i: number): { dtype: OnnxDType; dims: readonly number[] } {
  const f = ctx.inputs[i];
  if (!f) return ctx.fail(`input ${i} is required but ${i < ctx.node.inputs.length ? 'omitted' : 'missing'}`);
  return f;
}

/** Fails unless the node has between min and max inputs (trailing omitted ones count). */
function arity(ctx: OnnxOpContext, min: number, max = min): void {
  const n = ctx.node.inputs.length;
  if (n < min || n > max) {
    const want = min === max ? `${min}` : max === Infinity ? `at least ${min}` : `${min} to ${max}`;
    ctx.fail(`takes ${want} input${want === '1' ? '' : 's'}, but the node has ${n}`);
  }
  for (let i = 0; i < min; i++) required(ctx, i);
}

function isIntType(dtype: OnnxDType): boolean {
  return !isFloatType(dtype) && dtype !== 'bool';
}

/** A known 1-D (or 0-d) integer tensor as numbers: shapes, axes, starts, repeats, pads. */
function intList(ctx: OnnxOpContext, a: Args, i: number, what: string): number[] {
  const t = a.value(i, what);
  if (!isIntType(t.dtype)) ctx.fail(`${what} (input ${i}) must be an integer tensor, not ${t.dtype}`);
  if (t.dims.length > 1) ctx.fail(`${what} (input ${i}) must be 1-D, not of shape [${t.dims.join(', ')}]`);
  return intsOf(t);
}

/** A known single integer (a 0-d or one-element tensor). */
function intScalar(ctx: OnnxOpContext, a: Args, i: number, what: string): number {
  const t = a.value(i, what);
  if (!isIntType(t.dtype)) ctx.fail(`${what} (input ${i}) must be an integer, not ${t.dtype}`);
  if (t.data.length !== 1) ctx.fail(`${what} (input ${i}) must hold one value, not ${t.data.length}`);
  return Math.trunc(t.data[0]!);
}

function shapeText(dims: readonly number[]): string {
  return `[${dims.join(', ')}]`;
}

/** Distinct axes normalised to [0, rank); fails on repeats. */
function axesOf(ctx: OnnxOpContext, axes: readonly number[], rank: number): number[] {
  const out = axes.map((x) => normAxis(ctx, x, rank));
  if (new Set(out).size !== out.length) ctx.fail(`axes ${shapeText(axes)} repeat an axis`);
  return out;
}

function same(dtype: OnnxDType, dims: readonly number[]): InferredOutput {
  return { dtype, dims: [...dims] };
}

/** The same numbers under a new shape (views share storage; tensors are never written after creation). */
function view(t: Tensor, dims: readonly number[]): Tensor {
  return { dtype: t.dtype, dims: [...dims], data: t.data };
}

// ---------------------------------------------------------------------------------------------
// Copying kernels

/**
 * A new tensor of shape `outDims` whose element at coordinates (c0, c1, ...) is the source
 * element at flat offset offs[0][c0] + offs[1][c1] + ...; an entry of -1 marks padding, read
 * as `fill`. Serves Transpose, Slice, Expand, Tile and Pad with one odometer over the outer axes.
 * Offsets fit in int32: no tensor the frontend holds has 2^31 elements (MAX_TENSOR_BYTES).
 */
function remap(src: Tensor, outDims: readonly number[], offs: readonly Int32Array[], fill = 0): Tensor {
  const out = emptyTensor(src.dtype, outDims);
  const n = out.data.length;
  if (n === 0) return out;
  const rank = outDims.length;
  const data = src.data;
  const od = out.data;
  if (rank === 0) {
    od[0] = data[0]!;
    return out;
  }
  const last = offs[rank - 1]!;
  const inner = outDims[rank - 1]!;
  const pos = new Array<number>(rank).fill(0);
  // Offset of the current outer coordinates, and how many of them are padding.
  let base = 0;
  let padded = 0;
  for (let a = 0; a < rank - 1; a++) {
    const v = offs[a]![0]!;
    if (v < 0) padded++;
    else base += v;
  }
  for (let k = 0; k < n; k += inner) {
    if (padded > 0) {
      for (let j = 0; j < inner; j++) od[k + j] = fill;
    } else {
      for (let j = 0; j < inner; j++) {
        const o = last[j]!;
        od[k + j] = o < 0 ? fill : data[base + o]!;
      }
    }
    for (let a = rank - 2; a >= 0; a--) {
      const oa = offs[a]!;
      const prev = oa[pos[a]!]!;
      if (prev < 0) padded--;
      else base -= prev;
      pos[a]!++;
      if (pos[a]! === outDims[a]!) pos[a] = 0;
      const next = oa[pos[a]!]!;
      if (next < 0) padded++;
      else base += next;
      if (pos[a]! !== 0) break;
    }
  }
  return out;
}

/** Offsets of an axis read with a step from a start: (start + i·step)·stride. */
function stepOffsets(count: number, start: number, step: number, stride: number): Int32Array {
  const o = new Int32Array(count);
  for (let i = 0; i < count; i++) o[i] = (start + i * step) * stride;
  return o;
}

// ---------------------------------------------------------------------------------------------
// Pass-through and constants

const Identity: OnnxOpDef = {
  infer(ctx) {
    arity(ctx, 1);
    const x = required(ctx, 0);
    return [same(x.dtype, x.dims)];
  },
  evaluate: (_ctx, [x]) => [x!],
};

/** The tensor a Constant node holds, from whichever value attribute it carries. */
function constantValue(ctx: OnnxOpContext): { dtype: OnnxDType; dims: readonly number[]; values: () => Tensor['data'] } {
  const present = [...ctx.node.attrs.keys()].filter((k) => k.startsWith('value') || k === 'sparse_value');
  if (present.length !== 1) {
    ctx.fail(present.length ? `has ${present.length} value attributes (${present.join(', ')}); it needs exactly one` : 'has no value attribute');
  }
  const name = present[0]!;
  const a = ctx.attr(name)!;
  const wrong = (kind: OnnxAttr['kind']) => ctx.fail(`attribute '${name}' should be ${kind}, not ${a.kind}`);
  switch (name) {
    case 'value': {
      if (a.kind !== 'tensor') return wrong('tensor');
      const t = a.value;
      return { dtype: t.dtype, dims: t.dims, values: () => t.values() };
    }
    case 'value_float':
      if (a.kind !== 'float') return wrong('float');
      return { dtype: 'f32', dims: [], values: () => Float32Array.of(a.value) };
    case 'value_floats':
      if (a.kind !== 'floats') return wrong('floats');
      return { dtype: 'f32', dims: [a.value.length], values: () => Float32Array.from(a.value) };
    case 'value_int':
      if (a.kind !== 'int') return wrong('int');
      return { dtype: 'i64', dims: [], values: () => Float64Array.of(a.value) };
    case 'value_ints':
      if (a.kind !== 'ints') return wrong('ints');
      return { dtype: 'i64', dims: [a.value.length], values: () => Float64Array.from(a.value) };
    default:
      return ctx.fail(`attribute '${name}' is not supported (the frontend has no string or sparse tensors)`);
  }
}

const Constant: OnnxOpDef = {
  infer(ctx) {
    arity(ctx, 0);
    const c = constantValue(ctx);
    return [same(c.dtype, c.dims)];
  },
  evaluate(ctx) {
    const c = constantValue(ctx);
    return [{ dtype: c.dtype, dims: [...c.dims], data: c.values() }];
  },
};

const ConstantOfShape: OnnxOpDef = {
  infer(ctx) {
    arity(ctx, 1);
    const a = inferArgs(ctx);
    return [same(fillOf(ctx).dtype, shapeInput(ctx, a))];
  },
  evaluate(ctx, inputs) {
    const dims = shapeInput(ctx, evalArgs(ctx, inputs));
    const { dtype, value } = fillOf(ctx);
    const out = emptyTensor(dtype, dims);
    if (value !== 0) out.data.fill(value);
    return [out];
  },
};

function shapeInput(ctx: OnnxOpContext, a: Args): number[] {
  const dims = intList(ctx, a, 0, 'shape');
  if (dims.some((d) => d < 0)) ctx.fail(`shape ${shapeText(dims)} has a negative dimension`);
  return dims;
}

/** ConstantOfShape's fill: a one-element tensor attribute, float32 0 by default. */
function fillOf(ctx: OnnxOpContext): { dtype: OnnxDType; value: number } {
  const a = ctx.attr('value');
  if (!a) return { dtype: 'f32', value: 0 };
  if (a.kind !== 'tensor') return ctx.fail(`attribute 'value' should be tensor, not ${a.kind}`);
  if (numelOf(a.value.dims) !== 1) ctx.fail(`attribute 'value' must hold one element, not ${numelOf(a.value.dims)}`);
  return { dtype: a.value.dtype, value: a.value.values()[0]! };
}

// ---------------------------------------------------------------------------------------------
// Shape queries (outputs depend only on shapes: they fold on activations)

/** Shape's [start, end) range of axes (attributes from opset 15), clamped to [0, rank]. */
function shapeRange(ctx: OnnxOpContext, rank: number): [number, number] {
  if (ctx.opset < 15) return [0, rank];
  const clamp = (v: number) => Math.min(Math.max(v < 0 ? v + rank : v, 0), rank);
  const start = clamp(ctx.attrInt('start', 0));
  const end = clamp(ctx.attrInt('end', rank));
  return [start, Math.max(start, end)];
}

const Shape: OnnxOpDef = {
  fromShapes: true,
  infer(ctx) {
    arity(ctx, 1);
    const [s, e] = shapeRange(ctx, required(ctx, 0).dims.length);
    return [{ dtype: 'i64', dims: [e - s] }];
  },
  evaluate(ctx, inputs) {
    const dims = evalArgs(ctx, inputs).dims(0);
    const [s, e] = shapeRange(ctx, dims.length);
    return [{ dtype: 'i64', dims: [e - s], data: Float64Array.from(dims.slice(s, e)) }];
  },
};

const Size: OnnxOpDef = {
  fromShapes: true,
  infer(ctx) {
    arity(ctx, 1);
    return [{ dtype: 'i64', dims: [] }];
  },
  evaluate(ctx, inputs) {
    return [{ dtype: 'i64', dims: [], data: Float64Array.of(numelOf(evalArgs(ctx, inputs).dims(0))) }];
  },
};

// ---------------------------------------------------------------------------------------------
// Reshaping views: the numbers stay, the shape changes

/** Reshape's output shape: 0 copies the input's dimension (unless allowzero), one -1 is inferred. */
function reshapeDims(ctx: OnnxOpContext, a: Args): number[] {
  const x = a.dims(0);
  const shape = ctx.opset < 5 ? [...ctx.attrInts('shape')] : intList(ctx, a, 1, 'shape');
  const allowzero = ctx.opset >= 14 ? ctx.attrInt('allowzero', 0) : 0;
  const text = shapeText(shape);
  if (shape.filter((d) => d === -1).length > 1) ctx.fail(`shape ${text} has more than one -1`);
  if (shape.some((d) => d < -1)) ctx.fail(`shape ${text} has a dimension below -1`);
  if (allowzero && shape.includes(0) && shape.includes(-1)) ctx.fail(`shape ${text} has both 0 and -1, which allowzero = 1 forbids`);
  const out = shape.map((d, i) => {
    if (d !== 0 || allowzero) return d;
    if (i >= x.length) ctx.fail(`shape ${text} copies dimension ${i} (0), but the input ${shapeText(x)} has rank ${x.length}`);
    return x[i]!;
  });
  const n = numelOf(x);
  const hole = out.indexOf(-1);
  if (hole >= 0) {
    const rest = numelOf(out.filter((_, i) => i !== hole));
    if (rest === 0 || n % rest !== 0) ctx.fail(`cannot reshape ${shapeText(x)} (${n} elements) to ${text}`);
    out[hole] = n / rest;
  }
  if (numelOf(out) !== n) ctx.fail(`cannot reshape ${shapeText(x)} (${n} elements) to ${text} (${numelOf(out)} elements)`);
  return out;
}

const Reshape: OnnxOpDef = {
  infer(ctx) {
    arity(ctx, ctx.opset < 5 ? 1 : 2);
    const a = inferArgs(ctx);
    return [same(a.dtype(0), reshapeDims(ctx, a))];
  },
  evaluate: (ctx, inputs) => [view(inputs[0]!, reshapeDims(ctx, evalArgs(ctx, inputs)))],
};

function flattenDims(ctx: OnnxOpContext, x: readonly number[]): number[] {
  const r = x.length;
  let axis = ctx.attrInt('axis', 1);
  if (axis < -r || axis > r) ctx.fail(`axis ${axis} is out of range for rank ${r} (Flatten accepts [-${r}, ${r}])`);
  if (axis < 0) axis += r;
  return [numelOf(x.slice(0, axis)), numelOf(x.slice(axis))];
}

const Flatten: OnnxOpDef = {
  infer(ctx) {
    arity(ctx, 1);
    const x = required(ctx, 0);
    return [same(x.dtype, flattenDims(ctx, x.dims))];
  },
  evaluate: (ctx, [x]) => [view(x!, flattenDims(ctx, x!.dims))],
};

/** Squeeze's axes: an attribute before opset 13, an optional input from 13; all size-1 axes by default. */
function squeezeDims(ctx: OnnxOpContext, a: Args): number[] {
  const x = a.dims(0);
  let axes: number[] | undefined;
  if (ctx.opset < 13) axes = ctx.attr('axes') ? [...ctx.attrInts('axes')] : undefined;
  else if (a.has(1)) axes = intList(ctx, a, 1, 'axes');
  if (!axes) return x.filter((d) => d !== 1);
  const drop = axesOf(ctx, axes, x.length);
  for (const ax of drop) if (x[ax] !== 1) ctx.fail(`cannot squeeze axis ${ax} of shape ${shapeText(x)}: its size is ${x[ax]}, not 1`);
  return x.filter((_, i) => !drop.includes(i));
}

const Squeeze: OnnxOpDef = {
  infer(ctx) {
    arity(ctx, 1, ctx.opset < 13 ? 1 : 2);
    const a = inferArgs(ctx);
    return [same(a.dtype(0), squeezeDims(ctx, a))];
  },
  evaluate: (ctx, inputs) => [view(inputs[0]!, squeezeDims(ctx, evalArgs(ctx, inputs)))],
};

/** Unsqueeze's axes index the output (rank + number of axes); attribute before 13, input from 13. */
function unsqueezeDims(ctx: OnnxOpContext, a: Args): number[] {
  const x = a.dims(0);
  const axes = ctx.opset < 13 ? [...ctx.attrInts('axes')] : intList(ctx, a, 1, 'axes');
  const rank = x.length + axes.length;
  const add = new Set(axesOf(ctx, axes, rank));
  const out: number[] = [];
  let k = 0;
  for (let i = 0; i < rank; i++) out.push(add.has(i) ? 1 : x[k++]!);
  return out;
}

const Unsqueeze: OnnxOpDef = {
  infer(ctx) {
    arity(ctx, ctx.opset < 13 ? 1 : 2);
    const a = inferArgs(ctx);
    return [same(a.dtype(0), unsqueezeDims(ctx, a))];
  },
  evaluate: (ctx, inputs) => [view(inputs[0]!, unsqueezeDims(ctx, evalArgs(ctx, inputs)))],
};

// ---------------------------------------------------------------------------------------------
// Joining and cutting

/** Concat's axis: attribute default 1 at opset 1, required from 4. */
function concatAxis(ctx: OnnxOpContext, rank: number): number {
  return normAxis(ctx, ctx.opset < 4 ? ctx.attrInt('axis', 1) : ctx.attrInt('axis'), rank);
}

const Concat: OnnxOpDef = {
  infer(ctx) {
    arity(ctx, 1, Infinity);
    const xs = ctx.node.inputs.map((_, i) => required(ctx, i));
    const first = xs[0]!;
    const axis = concatAxis(ctx, first.dims.length);
    let total = 0;
    for (const [i, x] of xs.entries()) {
      if (x.dtype !== first.dtype) ctx.fail(`input ${i} is ${x.dtype} but input 0 is ${first.dtype}`);
      const fits = x.dims.length === first.dims.length && x.dims.every((d, k) => k === axis || d === first.dims[k]);
      if (!fits) ctx.fail(`input ${i} of shape ${shapeText(x.dims)} does not fit input 0 of shape ${shapeText(first.dims)} outside axis ${axis}`);
      total += x.dims[axis]!;
    }
    const dims = [...first.dims];
    dims[axis] = total;
    return [same(first.dtype, dims)];
  },
  evaluate(ctx, inputs) {
    const xs = inputs as readonly Tensor[];
    const first = xs[0]!;
    const axis = concatAxis(ctx, first.dims.length);
    const outer = numelOf(first.dims.slice(0, axis));
    const inner = numelOf(first.dims.slice(axis + 1));
    const dims = [...first.dims];
    dims[axis] = xs.reduce((s, x) => s + x.dims[axis]!, 0);
    const out = emptyTensor(first.dtype, dims);
    const row = dims[axis]! * inner;
    let at = 0;
    for (const x of xs) {
      const chunk = x.dims[axis]! * inner;
      for (let o = 0; o < outer; o++) {
        const src = o * chunk;
        const dst = o * row + at;
        for (let j = 0; j < chunk; j++) out.data[dst + j] = x.data[src + j]!;
      }
      at += chunk;
    }
    return [out];
  },
};

/**
 * Split's axis and part sizes. Sizes come from the `split` attribute (< 13) or input (>= 13);
 * otherwise the axis is cut into as many equal parts as there are outputs (`num_outputs`
 * from 18), which before opset 18 must divide evenly and from 18 leaves the last part smaller.
 */
function splitSizes(ctx: OnnxOpContext, a: Args): { axis: number; sizes: number[] } {
  const x = a.dims(0);
  const axis = normAxis(ctx, ctx.attrInt('axis', 0), x.length);
  const d = x[axis]!;
  const outputs = ctx.node.outputs.length;
  let sizes: number[] | undefined;
  if (ctx.opset < 13) {
    if (ctx.attr('split')) sizes = [...ctx.attrInts('split')];
  } else if (a.has(1)) {
    sizes = intList(ctx, a, 1, 'split');
  }
  const numOutputs = ctx.opset >= 18 && ctx.attr('num_outputs') ? ctx.attrInt('num_outputs') : undefined;
  if (sizes && numOutputs !== undefined) ctx.fail(`gives both split sizes and num_outputs; ONNX allows only one`);
  if (sizes) {
    if (sizes.length !== outputs) ctx.fail(`split ${shapeText(sizes)} has ${sizes.length} parts, but the node has ${outputs} outputs`);
    if (sizes.some((s) => s < 0)) ctx.fail(`split ${shapeText(sizes)} has a negative size`);
    const sum = sizes.reduce((s, v) => s + v, 0);
    if (sum !== d) ctx.fail(`split sizes ${shapeText(sizes)} sum to ${sum}, but axis ${axis} of ${shapeText(x)} has size ${d}`);
    return { axis, sizes };
  }
  const n = numOutputs ?? outputs;
  if (numOutputs !== undefined && numOutputs !== outputs) ctx.fail(`num_outputs is ${numOutputs}, but the node has ${outputs} outputs`);
  if (n < 1) ctx.fail('has no outputs');
  if (d % n === 0) return { axis, sizes: new Array<number>(n).fill(d / n) };
  if (ctx.opset < 18) ctx.fail(`cannot split axis ${axis} of size ${d} into ${n} equal parts (opset ${ctx.opset} needs split sizes)`);
  // Opset 18: parts of ceil(d/n), the last ones taking what is left (possibly nothing).
  const part = Math.ceil(d / n);
  return { axis, sizes: Array.from({ length: n }, (_, i) => Math.max(0, Math.min(part, d - i * part))) };
}

const Split: OnnxOpDef = {
  infer(ctx) {
    arity(ctx, 1, ctx.opset < 13 ? 1 : 2);
    const a = inferArgs(ctx);
    const x = a.dims(0);
    const { axis, sizes } = splitSizes(ctx, a);
    return sizes.map((s) => {
      const dims = [...x];
      dims[axis] = s;
      return same(a.dtype(0), dims);
    });
  },
  evaluate(ctx, inputs) {
    const x = inputs[0]!;
    const { axis, sizes } = splitSizes(ctx, evalArgs(ctx, inputs));
    const outer = numelOf(x.dims.slice(0, axis));
    const inner = numelOf(x.dims.slice(axis + 1));
    const row = x.dims[axis]! * inner;
    let at = 0;
    return sizes.map((s) => {
      const dims = [...x.dims];
      dims[axis] = s;
      const out = emptyTensor(x.dtype, dims);
      const chunk = s * inner;
      for (let o = 0; o < outer; o++) {
        const src = o * row + at;
        const dst = o * chunk;
        for (let j = 0; j < chunk; j++) out.data[dst + j] = x.data[src + j]!;
      }
      at += chunk;
      return out;
    });
  },
};

/** Per axis of the input: the first index read, the step, and how many are read. */
interface SliceAxis {
  start: number;
  step: number;
  count: number;
}

/**
 * Slice's reads. Before opset 10 starts/ends/axes are attributes and steps are 1; from 10 they
 * are inputs (axes and steps optional). Bounds follow ONNX: negatives count from the end, then
 * clamp to [0, d] (step > 0) or start to [0, d-1] and end to [-1, d-1] (step < 0), so INT64_MAX
 * and INT64_MIN mean "to the end" either way.
 */
function sliceAxes(ctx: OnnxOpContext, a: Args): SliceAxis[] {
  const x = a.dims(0);
  const r = x.length;
  let starts: number[];
  let ends: number[];
  let axes: number[] | undefined;
  let steps: number[] | undefined;
  if (ctx.opset < 10) {
    starts = [...ctx.attrInts('starts')];
    ends = [...ctx.attrInts('ends')];
    if (ctx.attr('axes')) axes = [...ctx.attrInts('axes')];
  } else {
    starts = intList(ctx, a, 1, 'starts');
    ends = intList(ctx, a, 2, 'ends');
    if (a.has(3)) axes = intList(ctx, a, 3, 'axes');
    if (a.has(4)) steps = intList(ctx, a, 4, 'steps');
  }
  const k = starts.length;
  if (ends.length !== k) ctx.fail(`starts ${shapeText(starts)} and ends ${shapeText(ends)} differ in length`);
  if (axes && axes.length !== k) ctx.fail(`axes ${shapeText(axes)} and starts ${shapeText(starts)} differ in length`);
  if (steps && steps.length !== k) ctx.fail(`steps ${shapeText(steps)} and starts ${shapeText(starts)} differ in length`);
  if (!axes && k > r) ctx.fail(`slices ${k} axes of a rank-${r} input`);
  const which = axesOf(ctx, axes ?? starts.map((_, i) => i), r);
  const out: SliceAxis[] = x.map((d) => ({ start: 0, step: 1, count: d }));
  which.forEach((ax, i) => {
    const d = x[ax]!;
    const step = steps ? steps[i]! : 1;
    if (step === 0) ctx.fail(`step of axis ${ax} is 0`);
    let s = starts[i]!;
    let e = ends[i]!;
    if (s < 0) s += d;
    if (e < 0) e += d;
    if (step > 0) {
      s = Math.min(Math.max(s, 0), d);
      e = Math.min(Math.max(e, 0), d);
    } else {
      s = Math.min(Math.max(s, 0), d - 1);
      e = Math.min(Math.max(e, -1), d - 1);
    }
    out[ax] = { start: s, step, count: Math.max(0, Math.ceil((e - s) / step)) };
  });
  return out;
}

const Slice: OnnxOpDef = {
  infer(ctx) {
    arity(ctx, ctx.opset < 10 ? 1 : 3, ctx.opset < 10 ? 1 : 5);
    const a = inferArgs(ctx);
    return [same(a.dtype(0), sliceAxes(ctx, a).map((s) => s.count))];
  },
  evaluate(ctx, inputs) {
    const x = inputs[0]!;
    const axes = sliceAxes(ctx, evalArgs(ctx, inputs));
    const st = stridesOf(x.dims);
    return [remap(x, axes.map((s) => s.count), axes.map((s, i) => stepOffsets(s.count, s.start, s.step, st[i]!)))];
  },
};

function gatherCheck(ctx: OnnxOpContext, a: Args): { axis: number; dims: number[] } {
  const x = a.dims(0);
  const idx = a.dims(1);
  if (x.length === 0) ctx.fail('cannot gather from a scalar');
  if (!isIntType(a.dtype(1))) ctx.fail(`indices must be int32 or int64, not ${a.dtype(1)}`);
  const axis = normAxis(ctx, ctx.attrInt('axis', 0), x.length);
  return { axis, dims: [...x.slice(0, axis), ...idx, ...x.slice(axis + 1)] };
}

/** An index along an axis of size d, negatives counting from the end; fails when outside. */
function indexIn(ctx: OnnxOpContext, v: number, d: number, axis: number): number {
  if (!(v >= -d && v < d)) ctx.fail(`index ${v} is out of range for axis ${axis} of size ${d}`);
  return v < 0 ? v + d : v;
}

const Gather: OnnxOpDef = {
  infer(ctx) {
    arity(ctx, 2);
    const a = inferArgs(ctx);
    return [same(a.dtype(0), gatherCheck(ctx, a).dims)];
  },
  evaluate(ctx, inputs) {
    const x = inputs[0]!;
    const ind = inputs[1]!;
    const { axis, dims } = gatherCheck(ctx, evalArgs(ctx, inputs));
    const d = x.dims[axis]!;
    const outer = numelOf(x.dims.slice(0, axis));
    const inner = numelOf(x.dims.slice(axis + 1));
    const m = ind.data.length;
    const idx = new Int32Array(m);
    for (let t = 0; t < m; t++) idx[t] = indexIn(ctx, ind.data[t]!, d, axis);
    const out = emptyTensor(x.dtype, dims);
    const od = out.data;
    let dst = 0;
    for (let o = 0; o < outer; o++) {
      for (let t = 0; t < m; t++) {
        const src = (o * d + idx[t]!) * inner;
        for (let j = 0; j < inner; j++) od[dst++] = x.data[src + j]!;
      }
    }
    return [out];
  },
};

function gatherElementsAxis(ctx: OnnxOpContext, a: Args): number {
  const x = a.dims(0);
  const idx = a.dims(1);
  if (!isIntType(a.dtype(1))) ctx.fail(`indices must be int32 or int64, not ${a.dtype(1)}`);
  if (x.length === 0 || idx.length !== x.length) ctx.fail(`indices of shape ${shapeText(idx)} must have the rank of data ${shapeText(x)} (at least 1)`);
  const axis = normAxis(ctx, ctx.attrInt('axis', 0), x.length);
  idx.forEach((n, i) => {
    if (i !== axis && n > x[i]!) ctx.fail(`indices of shape ${shapeText(idx)} exceed data ${shapeText(x)} on axis ${i}`);
  });
  return axis;
}

const GatherElements: OnnxOpDef = {
  infer(ctx) {
    arity(ctx, 2);
    const a = inferArgs(ctx);
    gatherElementsAxis(ctx, a);
    return [same(a.dtype(0), a.dims(1))];
  },
  evaluate(ctx, inputs) {
    const x = inputs[0]!;
    const ind = inputs[1]!;
    const axis = gatherElementsAxis(ctx, evalArgs(ctx, inputs));
    const out = emptyTensor(x.dtype, ind.dims);
    const n = out.data.length;
    const rank = ind.dims.length;
    const st = stridesOf(x.dims);
    const d = x.dims[axis]!;
    const pos = new Array<number>(rank).fill(0);
    // Offset of the current coordinates in data, without the gathered axis.
    let base = 0;
    for (let k = 0; k < n; k++) {
      out.data[k] = x.data[base + indexIn(ctx, ind.data[k]!, d, axis) * st[axis]!]!;
      for (let q = rank - 1; q >= 0; q--) {
        pos[q]!++;
        if (q !== axis) base += st[q]!;
        if (pos[q]! < ind.dims[q]!) break;
        if (q !== axis) base -= st[q]! * pos[q]!;
        pos[q] = 0;
      }
    }
    return [out];
  },
};

// ---------------------------------------------------------------------------------------------
// Reordering and replicating

/** Transpose's permutation; the default reverses the axes. */
function permOf(ctx: OnnxOpContext, rank: number): number[] {
  const perm = ctx.attr('perm') ? [...ctx.attrInts('perm')] : Array.from({ length: rank }, (_, i) => rank - 1 - i);
  const valid = perm.length === rank && perm.every((p) => Number.isInteger(p) && p >= 0 && p < rank) && new Set(perm).size === rank;
  if (!valid) ctx.fail(`perm ${shapeText(perm)} is not a permutation of the ${rank} axes of the input`);
  return perm;
}

const Transpose: OnnxOpDef = {
  infer(ctx) {
    arity(ctx, 1);
    const x = required(ctx, 0);
    return [same(x.dtype, permOf(ctx, x.dims.length).map((p) => x.dims[p]!))];
  },
  evaluate(ctx, [x]) {
    const perm = permOf(ctx, x!.dims.length);
    const st = stridesOf(x!.dims);
    const dims = perm.map((p) => x!.dims[p]!);
    return [remap(x!, dims, perm.map((p, i) => stepOffsets(dims[i]!, 0, 1, st[p]!)))];
  },
};

/** Offsets that read `src` broadcast to `outDims` (aligned at the last axis). */
function broadcastOffsets(src: readonly number[], outDims: readonly number[]): Int32Array[] {
  const st = stridesOf(src);
  const lead = outDims.length - src.length;
  return outDims.map((n, a) => {
    const i = a - lead;
    return stepOffsets(n, 0, i < 0 || src[i] === 1 ? 0 : 1, i < 0 ? 0 : st[i]!);
  });
}

const Expand: OnnxOpDef = {
  infer(ctx) {
    arity(ctx, 2);
    const a = inferArgs(ctx);
    return [same(a.dtype(0), broadcastDims(ctx, [a.dims(0), shapeInput1(ctx, a)]))];
  },
  evaluate(ctx, inputs) {
    const x = inputs[0]!;
    const dims = broadcastDims(ctx, [x.dims, shapeInput1(ctx, evalArgs(ctx, inputs))]);
    return [remap(x, dims, broadcastOffsets(x.dims, dims))];
  },
};

function shapeInput1(ctx: OnnxOpContext, a: Args): number[] {
  const dims = intList(ctx, a, 1, 'shape');
  if (dims.some((d) => d < 0)) ctx.fail(`shape ${shapeText(dims)} has a negative dimension`);
  return dims;
}

function tileRepeats(ctx: OnnxOpContext, a: Args): number[] {
  const x = a.dims(0);
  const reps = intList(ctx, a, 1, 'repeats');
  if (reps.length !== x.length) ctx.fail(`repeats ${shapeText(reps)} must have one entry per axis of the input ${shapeText(x)}`);
  if (reps.some((r) => r < 0)) ctx.fail(`repeats ${shapeText(reps)} has a negative entry`);
  return reps;
}

const Tile: OnnxOpDef = {
  infer(ctx) {
    arity(ctx, 2);
    const a = inferArgs(ctx);
    const x = a.dims(0);
    return [same(a.dtype(0), tileRepeats(ctx, a).map((r, i) => r * x[i]!))];
  },
  evaluate(ctx, inputs) {
    const x = inputs[0]!;
    const reps = tileRepeats(ctx, evalArgs(ctx, inputs));
    const st = stridesOf(x.dims);
    const dims = reps.map((r, i) => r * x.dims[i]!);
    const offs = dims.map((n, a) => {
      const o = new Int32Array(n);
      const d = x.dims[a]!;
      for (let i = 0; i < n; i++) o[i] = (i % d) * st[a]!;
      return o;
    });
    return [remap(x, dims, offs)];
  },
};

type PadMode = 'constant' | 'reflect' | 'edge' | 'wrap';

interface PadPlan {
  mode: PadMode;
  /** Pads per axis of the input (begin, end); negative crops. */
  begin: number[];
  end: number[];
}

/**
 * Pad's amounts and mode: attributes `pads` (`paddings` at opset 1), `value` and `mode`
 * before opset 11; inputs pads and constant_value from 11, and axes from 18.
 */
function padPlan(ctx: OnnxOpContext, a: Args): PadPlan {
  const x = a.dims(0);
  const r = x.length;
  const mode = ctx.attrString('mode', 'constant');
  if (mode !== 'constant' && mode !== 'reflect' && mode !== 'edge' && !(mode === 'wrap' && ctx.opset >= 19)) {
    ctx.fail(`mode '${mode}' is not a Pad mode${ctx.opset < 19 ? ` at opset ${ctx.opset}` : ''}`);
  }
  const pads = ctx.opset < 11 ? [...ctx.attrInts(ctx.opset < 2 ? 'paddings' : 'pads')] : intList(ctx, a, 1, 'pads');
  const axes = ctx.opset >= 18 && a.has(3) ? axesOf(ctx, intList(ctx, a, 3, 'axes'), r) : Array.from({ length: r }, (_, i) => i);
  if (pads.length !== 2 * axes.length) ctx.fail(`pads ${shapeText(pads)} must have ${2 * axes.length} entries (begin and end for ${axes.length} axes)`);
  const begin = new Array<number>(r).fill(0);
  const end = new Array<number>(r).fill(0);
  axes.forEach((ax, i) => {
    begin[ax] = pads[i]!;
    end[ax] = pads[i + axes.length]!;
    const kept = x[ax]! - Math.max(0, -begin[ax]!) - Math.max(0, -end[ax]!);
    if (kept < 0) ctx.fail(`pads ${shapeText(pads)} crop more than axis ${ax} of size ${x[ax]} holds`);
    if (kept === 0 && mode !== 'constant' && (begin[ax]! > 0 || end[ax]! > 0)) ctx.fail(`cannot pad an empty axis ${ax} in ${mode} mode`);
  });
  return { mode, begin, end };
}

/** The fill of constant-mode Pad: the `value` attribute before 11, the constant_value input from 11. */
function padValue(ctx: OnnxOpContext, a: Args): number {
  if (ctx.opset < 11) return ctx.attrFloat('value', 0);
  if (!a.has(2)) return 0;
  const t = a.value(2, 'constant_value');
  if (t.data.length !== 1) ctx.fail(`constant_value must hold one value, not ${t.data.length}`);
  return t.data[0]!;
}

const Pad: OnnxOpDef = {
  infer(ctx) {
    arity(ctx, 1, ctx.opset < 11 ? 1 : ctx.opset < 18 ? 3 : 4);
    const a = inferArgs(ctx);
    const x = a.dims(0);
    const { begin, end } = padPlan(ctx, a);
    return [same(a.dtype(0), x.map((d, i) => d + begin[i]! + end[i]!))];
  },
  evaluate(ctx, inputs) {
    const a = evalArgs(ctx, inputs);
    const x = inputs[0]!;
    const { mode, begin, end } = padPlan(ctx, a);
    const fill = castValue(mode === 'constant' ? padValue(ctx, a) : 0, x.dtype);
    const st = stridesOf(x.dims);
    const dims = x.dims.map((d, i) => d + begin[i]! + end[i]!);
    const offs = dims.map((n, ax) => {
      // Negative pads crop first; the other modes then pad the cropped range [lo, lo + len).
      const lo = Math.max(0, -begin[ax]!);
      const len = x.dims[ax]! - lo - Math.max(0, -end[ax]!);
      const before = Math.max(0, begin[ax]!);
      const o = new Int32Array(n);
      for (let i = 0; i < n; i++) {
        let t = i - before;
        if (t < 0 || t >= len) {
          if (mode === 'constant') {
            o[i] = -1;
            continue;
          }
          if (mode === 'edge') t = t < 0 ? 0 : len - 1;
          else if (mode === 'wrap') t = ((t % len) + len) % len;
          else if (len === 1) t = 0;
          else {
            const period = 2 * (len - 1);
            t = ((t % period) + period) % period;
            if (t >= len) t = period - t;
          }
        }
        o[i] = (lo + t) * st[ax]!;
      }
      return o;
    });
    return [remap(x, dims, offs, fill)];
  },
};

// ---------------------------------------------------------------------------------------------
// Generated values

function rangeCount(ctx: OnnxOpContext, a: Args): { dtype: OnnxDType; start: number; delta: number; n: number } {
  const dtype = a.dtype(0);
  const names = ['start', 'limit', 'delta'];
  const vals = names.map((what, i) => {
    if (a.dtype(i) !== dtype) ctx.fail(`${what} is ${a.dtype(i)} but start is ${dtype}; Range needs one type`);
    const t = a.value(i, what);
    if (t.data.length !== 1) ctx.fail(`${what} must be a scalar, not of shape ${shapeText(t.dims)}`);
    return t.data[0]!;
  });
  const [start, limit, delta] = vals as [number, number, number];
  if (dtype === 'bool') ctx.fail('cannot make a range of bool');
  if (delta === 0) ctx.fail('delta is 0');
  if (!Number.isFinite(start) || !Number.isFinite(limit) || !Number.isFinite(delta)) ctx.fail(`start, limit and delta must be finite, not ${start}, ${limit}, ${delta}`);
  return { dtype, start, delta, n: Math.max(Math.ceil((limit - start) / delta), 0) };
}

const Range: OnnxOpDef = {
  infer(ctx) {
    arity(ctx, 3);
    const { dtype, n } = rangeCount(ctx, inferArgs(ctx));
    return [{ dtype, dims: [n] }];
  },
  evaluate(ctx, inputs) {
    const { dtype, start, delta, n } = rangeCount(ctx, evalArgs(ctx, inputs));
    const data = allocValues(dtype, n);
    for (let i = 0; i < n; i++) data[i] = castValue(start + i * delta, dtype);
    return [{ dtype, dims: [n], data }];
  },
};

// ---------------------------------------------------------------------------------------------
// Type conversion

/** Cast-1's `to` names (a string attribute before opset 6) and their DataType codes. */
const CAST_NAMES: Readonly<Record<string, number>> = {
  FLOAT: 1, UINT8: 2, INT8: 3, UINT16: 4, INT16: 5, INT32: 6, INT64: 7, STRING: 8, BOOL: 9,
  FLOAT16: 10, DOUBLE: 11, UINT32: 12, UINT64: 13, BFLOAT16: 16,
};

/** Cast's target type from the `to` attribute (a TensorProto.DataType code, or its name before opset 6). */
function castTarget(ctx: OnnxOpContext): OnnxDType {
  const named = ctx.attr('to');
  let to: number;
  if (named?.kind === 'string') {
    const code = CAST_NAMES[named.value.toUpperCase()];
    if (code === undefined) return ctx.fail(`cannot cast to '${named.value}': not an ONNX type name`);
    to = code;
  } else {
    to = ctx.attrInt('to');
  }
  const t = onnxDType(to);
  if (!t) ctx.fail(`cannot cast to ${onnxTypeName(to)}: the frontend does not support that type`);
  return t.dtype;
}

/** Converts every value to `dtype`: integers truncate toward zero and wrap, bool is v != 0. */
function castTensor(x: Tensor, dtype: OnnxDType): Tensor {
  if (x.dtype === dtype) return x;
  const n = x.data.length;
  const out = allocValues(dtype, n);
  const src = x.data;
  for (let i = 0; i < n; i++) out[i] = castValue(src[i]!, dtype);
  return { dtype, dims: [...x.dims], data: out };
}

const Cast: OnnxOpDef = {
  infer(ctx) {
    arity(ctx, 1);
    // `saturate` (opset 19) concerns float8 targets only, which the frontend does not have.
    return [same(castTarget(ctx), required(ctx, 0).dims)];
  },
  evaluate: (ctx, [x]) => [castTensor(x!, castTarget(ctx))],
};

const CastLike: OnnxOpDef = {
  infer(ctx) {
    arity(ctx, 2);
    return [same(required(ctx, 1).dtype, required(ctx, 0).dims)];
  },
  evaluate: (ctx, inputs) => [castTensor(inputs[0]!, evalArgs(ctx, inputs).dtype(1))],
};

// ---------------------------------------------------------------------------------------------
// Selection

const Trilu: OnnxOpDef = {
  infer(ctx) {
    arity(ctx, 1, 2);
    const a = inferArgs(ctx);
    const x = a.dims(0);
    if (x.length < 2) ctx.fail(`input of shape ${shapeText(x)} must have rank 2 or more`);
    return [same(a.dtype(0), x)];
  },
  evaluate(ctx, inputs) {
    const a = evalArgs(ctx, inputs);
    const x = inputs[0]!;
    const k = a.has(1) ? intScalar(ctx, a, 1, 'k') : 0;
    const upper = ctx.attrInt('upper', 1) !== 0;
    const rows = x.dims[x.dims.length - 2]!;
    const cols = x.dims[x.dims.length - 1]!;
    const out = emptyTensor(x.dtype, x.dims);
    const mats = rows * cols === 0 ? 0 : x.data.length / (rows * cols);
    for (let m = 0, at = 0; m < mats; m++) {
      for (let i = 0; i < rows; i++) {
        for (let j = 0; j < cols; j++, at++) {
          // The upper triangle keeps j - i >= k, the lower one j - i <= k.
          if (upper ? j - i >= k : j - i <= k) out.data[at] = x.data[at]!;
        }
      }
    }
    return [out];
  },
};

const Where: OnnxOpDef = {
  infer(ctx) {
    arity(ctx, 3);
    const [c, x, y] = [0, 1, 2].map((i) => required(ctx, i));
    if (c!.dtype !== 'bool') ctx.fail(`condition must be bool, not ${c!.dtype}`);
    if (x!.dtype !== y!.dtype) ctx.fail(`X is ${x!.dtype} but Y is ${y!.dtype}`);
    return [same(x!.dtype, broadcastDims(ctx, [c!.dims, x!.dims, y!.dims]))];
  },
  evaluate(ctx, inputs) {
    const [c, x, y] = inputs as [Tensor, Tensor, Tensor];
    const dims = broadcastDims(ctx, [c.dims, x.dims, y.dims]);
    const out = emptyTensor(x.dtype, dims);
    const n = out.data.length;
    const od = out.data;
    const rank = dims.length;
    if (n === 0) return [out];
    if (rank === 0) {
      od[0] = c.data[0] ? x.data[0]! : y.data[0]!;
      return [out];
    }
    // One odometer over the outer axes moves the three broadcast reads together.
    const [oc, ox, oy] = [c, x, y].map((t) => broadcastOffsets(t.dims, dims)) as [Int32Array[], Int32Array[], Int32Array[]];
    const [lc, lx, ly] = [oc[rank - 1]!, ox[rank - 1]!, oy[rank - 1]!];
    const inner = dims[rank - 1]!;
    const pos = new Array<number>(rank).fill(0);
    let bc = 0;
    let bx = 0;
    let by = 0;
    for (let k = 0; k < n; k += inner) {
      for (let j = 0; j < inner; j++) od[k + j] = c.data[bc + lc[j]!] ? x.data[bx + lx[j]!]! : y.data[by + ly[j]!]!;
      for (let a = rank - 2; a >= 0; a--) {
        const p = pos[a]!;
        bc -= oc[a]![p]!;
        bx -= ox[a]![p]!;
        by -= oy[a]![p]!;
        const q = p + 1 === dims[a]! ? 0 : p + 1;
        pos[a] = q;
        bc += oc[a]![q]!;
        bx += ox[a]![q]!;
        by += oy[a]![q]!;
        if (q !== 0) break;
      }
    }
    return [out];
  },
};

/**
 * Dropout at inference: the output is the input and the mask is all true (bool from opset 10,
 * the input's type before). A training_mode input (opset 12) known to be true is refused: the
 * result would be random.
 */
const Dropout: OnnxOpDef = {
  infer(ctx) {
    arity(ctx, 1, ctx.opset < 12 ? 1 : 3);
    const a = inferArgs(ctx);
    if (ctx.opset >= 12 && a.has(2)) {
      const t = a.value(2, 'training_mode');
      if (t.data.length !== 1) ctx.fail(`training_mode must be a scalar, not of shape ${shapeText(t.dims)}`);
      if (t.data[0] !== 0) ctx.fail('training_mode is true; only inference-mode Dropout is supported (export the model in eval mode)');
    }
    const x = a.dims(0);
    return [same(a.dtype(0), x), same(ctx.opset < 10 ? a.dtype(0) : 'bool', x)];
  },
  evaluate(ctx, inputs) {
    const x = inputs[0]!;
    const mask = emptyTensor(ctx.opset < 10 ? x.dtype : 'bool', x.dims);
    mask.data.fill(1);
    return [x, mask];
  },
};

export const SHAPE_OPS: Readonly<Record<string, OnnxOpDef>> = {
  Identity,
  Constant,
  ConstantOfShape,
  Shape,
  Size,
  Reshape,
  Flatten,
  Squeeze,
  Unsqueeze,
  Concat,
  Split,
  Slice,
  Gather,
  GatherElements,
  Transpose,
  Expand,
  Tile,
  Pad,
  Range,
  Cast,
  CastLike,
  Trilu,
  Where,
  Dropout,
};
