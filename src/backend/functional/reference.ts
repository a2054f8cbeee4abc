// The reference interpreter of the IR: a single-device evaluation of a Module, op by op in
// `m.ops()` order, through the kernels of kernels.ts. It is what the functional backend's
// distributed execution is compared against, so it favours clarity: whole tensors, every
// value kept (unless asked otherwise), float64 throughout.
//
// It runs a forward module, or a training module after the `train` pass (forward, backward
// and update ops), before any tiling: a module holding collectives (inserted after tile2d)
// is rejected. Inputs, params and states come from the caller's feed (feeds.ts makes
// deterministic ones), consts from the module. Float dtypes are all computed in float64;
// integer and bool results are rounded to their dtype (truncated and wrapped; bool 0/1), so
// an integer `div` truncates toward zero and a `cast` to an integer type truncates.

import { assert, assertNever, errorAt, GygesError, InternalError } from '../../diagnostics/diagnostic.js';
import type { AttrValue } from '../../ir/attrs.js';
import type { Module, Op, Value } from '../../ir/module.js';
import { opDef } from '../../ir/ops.js';
import { isFloat, numel, formatType, type TensorType } from '../../ir/types.js';
import * as K from './kernels.js';

/** Numbers of an input, param or state, row-major, numel(type) of them. Not modified by the interpreter. */
export type Feed = (v: Value) => Float64Array;

export interface InterpretOptions {
  /**
   * `all` (the default) keeps every value; `outputs` keeps only the declarations and the
   * module's outputs, dropping each intermediate after its last use.
   */
  readonly keep?: 'all' | 'outputs';
}

/**
 * Evaluates every op of `m` in order. Returns the numbers of every value kept (declarations,
 * op results), keyed by the Module's Value objects.
 */
export function interpretModule(m: Module, feed: Feed, opts: InterpretOptions = {}): Map<Value, Float64Array> {
  const ops = m.ops();
  for (const op of ops) {
    if (opDef(op.kind).category === 'collective') {
      throw errorAt(op.loc, 'GY3004', `${op.kind} is a collective: the reference interpreter runs a module before tiling (forward, or after the train pass); interpret the module before tile2d`);
    }
  }
  const values = new Map<Value, Float64Array>();
  for (const v of m.declarations()) values.set(v, declared(v, feed));

  const keepAll = (opts.keep ?? 'all') === 'all';
  const lastUse = new Map<Value, number>();
  if (!keepAll) ops.forEach((op, i) => op.operands.forEach((v) => lastUse.set(v, i)));
  const outputs = new Set(m.outputs);

  ops.forEach((op, i) => {
    const args = op.operands.map((v) => {
      const a = values.get(v);
      assert(a !== undefined, `interpret: %${v.name} is used before it is computed`);
      return a;
    });
    const results = evaluateOp(op, args);
    op.results.forEach((r, n) => values.set(r, results[n]!));
    if (keepAll) return;
    for (const v of op.operands) {
      if (v.kind === 'result' && lastUse.get(v) === i && !outputs.has(v)) values.delete(v);
    }
    for (const r of op.results) if (!lastUse.has(r) && !outputs.has(r)) values.delete(r);
  });
  return values;
}

/** The values of an interpretation keyed by value name. */
export function valuesByName(values: ReadonlyMap<Value, Float64Array>): Map<string, Float64Array> {
  return new Map([...values].map(([v, a]) => [v.name, a]));
}

/** The numbers of a declaration: fed (checked), or a const's own. */
function declared(v: Value, feed: Feed): Float64Array {
  if (v.kind === 'const') {
    assert(v.data !== undefined && v.data.length === numel(v.type), `const %${v.name} holds the wrong number of values`);
    return Float64Array.from(v.data);
  }
  const a = feed(v);
  if (!(a instanceof Float64Array)) throw errorAt(v.loc, 'GY9001', `the feed for ${v.kind} '${v.name}' is not a Float64Array`);
  if (a.length !== numel(v.type)) {
    throw errorAt(v.loc, 'GY9001', `the feed for ${v.kind} '${v.name}' of type ${formatType(v.type)} holds ${a.length} numbers, expected ${numel(v.type)}`);
  }
  if (!isFloat(v.type.dtype)) {
    const bad = a.findIndex((x) => !Number.isInteger(x) || (v.type.dtype === 'bool' && x !== 0 && x !== 1));
    if (bad >= 0) throw errorAt(v.loc, 'GY9001', `the feed for ${v.kind} '${v.name}' (${v.type.dtype}) holds ${a[bad]} at ${bad}`);
  }
  return a;
}

/**
 * Evaluates one op on its operands' numbers (one array per operand, row-major, of the
 * operand's type); returns fresh arrays, one per result, integer results rounded to their
 * dtype. Data errors (an id out of range) are GygesErrors at the op's location.
 */
export function evaluateOp(op: Op, args: readonly Float64Array[]): Float64Array[] {
  assert(args.length === op.operands.length, `${op.kind}: ${args.length} arrays for ${op.operands.length} operands`);
  const results = op.results.map((r) => new Float64Array(numel(r.type)));
  try {
    compute(op, args, results);
  } catch (e) {
    if (e instanceof GygesError && e.site.kind === 'none') throw errorAt(op.loc, e.code, `${op.kind} defining '${op.results[0]?.name ?? '?'}': ${e.detail}`);
    throw e;
  }
  op.results.forEach((r, n) => {
    if (isFloat(r.type.dtype)) return;
    const out = results[n]!;
    K.roundToDType(r.type.dtype, out);
    const bad = out.findIndex((x) => !Number.isFinite(x));
    if (bad >= 0) throw errorAt(op.loc, 'GY9001', `${op.kind} defining '${r.name}' yields ${out[bad]} at ${bad}, which ${r.type.dtype} cannot hold (an integer division by zero?)`);
  });
  return results;
}

// ---------------------------------------------------------------------------------------
// Attributes (validated and completed by the op table when the op was built).

function attr(op: Op, name: string): AttrValue {
  const v = op.attrs[name];
  assert(v !== undefined, `${op.kind}: no attribute '${name}'`);
  return v;
}

function num(op: Op, name: string): number {
  const v = attr(op, name);
  assert(typeof v === 'number', `${op.kind}: attribute '${name}' is not a number`);
  return v;
}

function optNumber(op: Op, name: string): number | undefined {
  const v = op.attrs[name];
  assert(v === undefined || typeof v === 'number', `${op.kind}: attribute '${name}' is not a number`);
  return v;
}

function bool(op: Op, name: string): boolean {
  const v = attr(op, name);
  assert(typeof v === 'boolean', `${op.kind}: attribute '${name}' is not a bool`);
  return v;
}

function str<T extends string>(op: Op, name: string): T {
  const v = attr(op, name);
  assert(typeof v === 'string', `${op.kind}: attribute '${name}' is not a string`);
  return v as T;
}

function ints(op: Op, name: string): readonly number[] {
  const v = attr(op, name);
  assert(Array.isArray(v), `${op.kind}: attribute '${name}' is not a list`);
  return v as readonly number[];
}

function optInts(op: Op, name: string): readonly number[] | undefined {
  return op.attrs[name] === undefined ? undefined : ints(op, name);
}

const shapeOf = (v: Value): readonly number[] => v.type.shape;
const last = (t: TensorType): number => t.shape[t.shape.length - 1] ?? 1;

// ---------------------------------------------------------------------------------------
// Op dispatch.

/** The gradient results of a `*_grad` op by forward operand index (its `wrt`, in order). */
function gradOuts(op: Op, results: readonly Float64Array[]): (i: number) => Float64Array | undefined {
  const wrt = ints(op, 'wrt');
  assert(wrt.length === results.length, `${op.kind}: ${results.length} results for wrt [${wrt.join(', ')}]`);
  return (i) => {
    const n = wrt.indexOf(i);
    return n < 0 ? undefined : results[n];
  };
}

function attentionDims(op: Op): K.AttentionDims {
  const [q, k] = op.operands as [Value, Value];
  const [batch, seq, width] = q.type.shape as [number, number, number];
  const heads = num(op, 'heads');
  const kvHeads = optNumber(op, 'kv_heads') ?? heads;
  const headSize = width / heads;
  return {
    batch, seq, kvSeq: k.type.shape[1]!, heads, kvHeads, headSize,
    causal: bool(op, 'causal'), scale: optNumber(op, 'scale') ?? 1 / Math.sqrt(headSize),
  };
}

/** The mask operand's shape, which must broadcast to exactly [b, heads, s, t]. */
function maskShape(op: Op, mask: Value | undefined, d: K.AttentionDims): readonly number[] | undefined {
  if (!mask) return undefined;
  const want = [d.batch, d.heads, d.seq, d.kvSeq];
  const s = mask.type.shape;
  const extra = want.length - s.length;
  if (extra < 0 || s.some((x, i) => x !== 1 && x !== want[i + extra])) {
    throw errorAt(op.loc, 'GY2008', `${op.kind}: mask [${s.join(', ')}] does not broadcast to the scores [${want.join(', ')}]`);
  }
  return s;
}

function ropeDims(op: Op, x: Value): K.RopeDims {
  const [batch, seq, width] = x.type.shape as [number, number, number];
  const heads = num(op, 'heads');
  return { rows: batch * seq, seq, heads, headSize: width / heads, theta: num(op, 'theta') };
}

function compute(op: Op, a: readonly Float64Array[], out: Float64Array[]): void {
  const ov = op.operands;
  const r0 = out[0]!;
  const rs = (i = 0): readonly number[] => op.results[i]!.type.shape;
  switch (op.kind) {
    case 'linear': {
      const [k, n] = shapeOf(ov[1]!) as [number, number];
      return K.linear(a[0]!, a[1]!, a[2], r0, numel(ov[0]!.type) / k, k, n);
    }
    case 'matmul':
      return K.matmul(a[0]!, shapeOf(ov[0]!), a[1]!, shapeOf(ov[1]!), r0, rs());
    case 'attention': {
      const d = attentionDims(op);
      return K.attention(a[0]!, a[1]!, a[2]!, a[3], maskShape(op, ov[3], d), r0, d);
    }
    case 'layernorm': {
      const h = last(ov[0]!.type);
      return K.layernorm(a[0]!, a[1]!, a[2], r0, numel(ov[0]!.type) / h, h, num(op, 'eps'));
    }
    case 'rmsnorm': {
      const h = last(ov[0]!.type);
      return K.rmsnorm(a[0]!, a[1]!, r0, numel(ov[0]!.type) / h, h, num(op, 'eps'));
    }
    case 'gelu':
      return K.gelu(a[0]!, r0, str(op, 'approximate'));
    case 'silu':
      return K.silu(a[0]!, r0);
    case 'softmax':
      return K.softmax(a[0]!, r0, ...K.aroundAxis(shapeOf(ov[0]!), num(op, 'axis')));
    case 'add':
      return K.add(a[0]!, shapeOf(ov[0]!), a[1]!, shapeOf(ov[1]!), r0, rs());
    case 'mul':
      return K.mul(a[0]!, shapeOf(ov[0]!), a[1]!, shapeOf(ov[1]!), r0, rs());
    case 'embedding': {
      const [rows, width] = shapeOf(ov[1]!) as [number, number];
      return K.embedding(a[0]!, a[1]!, r0, rows, width);
    }
    case 'rope':
      return K.rope(a[0]!, r0, ropeDims(op, ov[0]!));
    case 'unary':
      return K.unary(str(op, 'fn'), a[0]!, r0);
    case 'binary':
      return K.binary(str(op, 'fn'), a[0]!, shapeOf(ov[0]!), a[1]!, shapeOf(ov[1]!), r0, rs());
    case 'where':
      return K.where(a[0]!, shapeOf(ov[0]!), a[1]!, shapeOf(ov[1]!), a[2]!, shapeOf(ov[2]!), r0, rs());
    case 'reduce':
      return K.reduce(str(op, 'fn'), a[0]!, shapeOf(ov[0]!), ints(op, 'axes'), r0);
    case 'cast':
    case 'reshape':
      r0.set(a[0]!);
      return;
    case 'transpose':
      return K.transpose(a[0]!, shapeOf(ov[0]!), ints(op, 'perm'), r0);
    case 'concat':
      return K.concat(a, ov.map(shapeOf), num(op, 'axis'), r0);
    case 'split':
      return K.split(a[0]!, shapeOf(ov[0]!), num(op, 'axis'), ints(op, 'sizes'), out);
    case 'slice':
      return K.slice(a[0]!, shapeOf(ov[0]!), sliceWindowOf(op, ov[0]!), r0);
    case 'gather': {
      const [pre, dim, post] = K.aroundAxis(shapeOf(ov[0]!), num(op, 'axis'));
      return K.gather(a[0]!, a[1]!, r0, pre, dim, post);
    }
    case 'expand':
      return K.expand(a[0]!, shapeOf(ov[0]!), r0, rs());

    // -- gradients: operands are the forward op's, then dy; results follow `wrt`.
    case 'linear_grad': {
      const g = gradOuts(op, out);
      const [k, n] = shapeOf(ov[1]!) as [number, number];
      return K.linearGrad(a[0]!, a[1]!, a[a.length - 1]!, numel(ov[0]!.type) / k, k, n, g(0), g(1), g(2));
    }
    case 'attention_grad': {
      const g = gradOuts(op, out);
      const d = attentionDims(op);
      const hasMask = ov.length === 5;
      return K.attentionGrad(a[0]!, a[1]!, a[2]!, hasMask ? a[3] : undefined, maskShape(op, hasMask ? ov[3] : undefined, d), a[a.length - 1]!, d, g(0), g(1), g(2));
    }
    case 'layernorm_grad': {
      const g = gradOuts(op, out);
      const h = last(ov[0]!.type);
      return K.layernormGrad(a[0]!, a[1]!, a[a.length - 1]!, numel(ov[0]!.type) / h, h, num(op, 'eps'), g(0), g(1), g(2));
    }
    case 'rmsnorm_grad': {
      const g = gradOuts(op, out);
      const h = last(ov[0]!.type);
      return K.rmsnormGrad(a[0]!, a[1]!, a[2]!, numel(ov[0]!.type) / h, h, num(op, 'eps'), g(0), g(1));
    }
    case 'gelu_grad':
      return K.geluGrad(a[0]!, a[1]!, r0, str(op, 'approximate'));
    case 'silu_grad':
      return K.siluGrad(a[0]!, a[1]!, r0);
    case 'softmax_grad':
      return K.softmaxGrad(a[0]!, a[1]!, r0, ...K.aroundAxis(shapeOf(ov[0]!), num(op, 'axis')));
    case 'rope_grad':
      return K.ropeGrad(a[1]!, r0, ropeDims(op, ov[0]!));
    case 'unary_grad':
      return K.unaryGrad(str(op, 'fn'), a[0]!, a[1]!, r0);
    case 'binary_grad': {
      const g = gradOuts(op, out);
      return K.binaryGrad(str(op, 'fn'), a[0]!, shapeOf(ov[0]!), a[1]!, shapeOf(ov[1]!), a[2]!, shapeOf(ov[2]!), g(0), g(1));
    }
    case 'embedding_grad': {
      const [rows, width] = shapeOf(ov[1]!) as [number, number];
      return K.embeddingGrad(a[0]!, a[2]!, r0, rows, width);
    }
    case 'gather_grad': {
      const [pre, dim, post] = K.aroundAxis(shapeOf(ov[0]!), num(op, 'axis'));
      return K.gatherGrad(a[1]!, a[2]!, r0, pre, dim, post);
    }
    case 'slice_grad':
      return K.sliceGrad(a[1]!, shapeOf(ov[0]!), sliceWindowOf(op, ov[0]!), r0);
    case 'reduce_grad':
      return K.reduceGrad(str(op, 'fn'), a[0]!, shapeOf(ov[0]!), ints(op, 'axes'), a[1]!, r0);

    // -- optimizer updates
    case 'sgd':
      return K.sgd(a[0]!, a[1]!, r0, num(op, 'lr'));
    case 'adam':
      return K.adam(a[0]!, a[1]!, a[2]!, a[3]!, r0, out[1]!, out[2]!, {
        lr: num(op, 'lr'), beta1: num(op, 'beta1'), beta2: num(op, 'beta2'), eps: num(op, 'eps'),
      });

    case 'all_gather':
    case 'reduce_scatter':
    case 'all_reduce':
    case 'broadcast':
      throw new InternalError(`${op.kind}: collectives are rejected before evaluation`);
    default:
      return assertNever(op.kind);
  }
}

function sliceWindowOf(op: Op, x: Value): K.SliceAxis[] {
  return K.sliceWindow(shapeOf(x), ints(op, 'axes'), ints(op, 'starts'), ints(op, 'ends'), optInts(op, 'steps'));
}
