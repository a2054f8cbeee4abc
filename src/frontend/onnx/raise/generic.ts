// Lowering of ONNX nodes that no pattern raised: each becomes the generic IR op that computes
// the same thing (unary/binary/reduce/where/cast and data movement), which later passes cost
// on the vector unit. Reshape, Transpose, Unsqueeze, Squeeze, Flatten and Expand only change
// the lazy view (layout.ts); Slice, Split and Gather are in cuts.ts. A construct the IR
// cannot express fails with GY5008 naming the node.

import type { Value } from '../../../ir/module.js';
import { numel } from '../../../ir/types.js';
import type { OnnxNode } from '../model.js';
import type { Emitter } from './emit.js';
import { constInts, floatAttr, intAttr, intsAttr, normAxis } from './attrs.js';
import { gatherNode, sliceNode, splitNode } from './cuts.js';
import {
  expandView, identity, isIdentity, lastAxisIntact, materialize, materializeTrimmed, reshapeView, signature, transposeView, viewShape, withIr, withLeadingOnes, type Lazy,
} from './layout.js';

const UNARY: Readonly<Record<string, string>> = {
  Neg: 'neg', Abs: 'abs', Exp: 'exp', Log: 'log', Sqrt: 'sqrt', Reciprocal: 'reciprocal', Tanh: 'tanh',
  Sigmoid: 'sigmoid', Relu: 'relu', Erf: 'erf', Sin: 'sin', Cos: 'cos', Floor: 'floor', Ceil: 'ceil', Not: 'not',
};

const BINARY: Readonly<Record<string, string>> = {
  Sub: 'sub', Div: 'div', Pow: 'pow', Max: 'max', Min: 'min', Mod: 'mod', Equal: 'equal', Less: 'less',
  Greater: 'greater', And: 'and', Or: 'or',
};

const REDUCE: Readonly<Record<string, string>> = {
  ReduceMean: 'mean', ReduceSum: 'sum', ReduceMax: 'max', ReduceMin: 'min', ReduceProd: 'prod',
};

const VIEW_OPS = new Set(['Reshape', 'Unsqueeze', 'Squeeze', 'Flatten']);

/** Lowers one node; its outputs' lazy values are registered with the emitter. */
export function lowerGeneric(e: Emitter, node: OnnxNode): void {
  e.at(node);
  const out = node.outputs[0]!;
  const t = node.opType;
  if (t === 'Identity' || (t === 'Dropout' && node.outputs.slice(1).every((o) => o === '' || e.g.users(o).length === 0))) {
    e.set(out, e.value(node.inputs[0]!));
    return;
  }
  if (UNARY[t]) return e.set(out, elementwise(e, node, (x) => e.op('unary', [x], { fn: UNARY[t]! }, out)));
  if (REDUCE[t]) return e.set(out, identity(reduce(e, node, REDUCE[t]!)));
  if (BINARY[t] || t === 'Add' || t === 'Mul') return e.set(out, binaryNode(e, node));
  if (VIEW_OPS.has(t)) return e.set(out, reshaped(e, node.inputs[0]!, e.g.facts(out).dims));
  const f = LOWER[t];
  if (!f) return e.fail(unsupportedWhy(e, node));
  f(e, node);
}

function unsupportedWhy(e: Emitter, node: OnnxNode): string {
  const folds = ['Shape', 'Size', 'Range', 'ConstantOfShape', 'Constant', 'Trilu', 'NonZero', 'CumSum'];
  if (folds.includes(node.opType)) {
    const inputs = node.inputs.filter((i) => i !== '' && e.g.known(i) === undefined);
    return `its result depends on values computed from the model's inputs or weights (${inputs.map((i) => `'${i}'`).join(', ')}), and the IR has no ${node.opType}; only constant ${node.opType} can be compiled`;
  }
  return `the IR has no form for ${node.opType}`;
}

type Lower = (e: Emitter, node: OnnxNode) => void;

const LOWER: Readonly<Record<string, Lower>> = {
  Cast: (e, n) => {
    const to = e.dtype(e.g.facts(n.outputs[0]!).dtype, n.outputs[0]!);
    e.set(n.outputs[0]!, elementwise(e, n, (x) => (x.type.dtype === to ? x : e.op('cast', [x], { to }, n.outputs[0]))));
  },
  Dropout: (e) => e.fail('its mask output is used; the IR has no dropout mask'),
  Gelu: (e, n) => {
    const approximate = n.attrs.get('approximate');
    const a = approximate?.kind === 'string' ? approximate.value : 'none';
    e.set(n.outputs[0]!, elementwise(e, n, (x) => e.op('gelu', [x], { approximate: a }, n.outputs[0])));
  },
  Where: (e, n) => {
    const [c, a, b] = n.inputs.map((i) => e.tensor(i));
    e.set(n.outputs[0]!, identity(e.op('where', [c!, a!, b!], {}, n.outputs[0])));
  },
  LessOrEqual: (e, n) => e.set(n.outputs[0]!, identity(e.op('unary', [e.op('binary', n.inputs.map((i) => e.tensor(i)), { fn: 'greater' })], { fn: 'not' }, n.outputs[0]))),
  GreaterOrEqual: (e, n) => e.set(n.outputs[0]!, identity(e.op('unary', [e.op('binary', n.inputs.map((i) => e.tensor(i)), { fn: 'less' })], { fn: 'not' }, n.outputs[0]))),
  Softmax: (e, n) => e.set(n.outputs[0]!, softmax(e, n)),
  LogSoftmax: (e, n) => {
    const s = softmax(e, n);
    e.set(n.outputs[0]!, withIr(s, e.op('unary', [s.ir], { fn: 'log' }, n.outputs[0])));
  },
  LayerNormalization: (e, n) => e.set(n.outputs[0]!, layerNormalization(e, n)),
  MatMul: (e, n) => e.set(n.outputs[0]!, identity(matmul(e, n))),
  Gemm: (e, n) => e.set(n.outputs[0]!, identity(gemm(e, n))),
  Transpose: (e, n) => {
    const x = e.value(n.inputs[0]!);
    const perm = intsAttr(n, 'perm') ?? x.view.map((_, i) => x.view.length - 1 - i);
    e.set(n.outputs[0]!, transposeView(x, perm));
  },
  Expand: (e, n) => {
    const x = e.value(n.inputs[0]!);
    const shape = e.g.facts(n.outputs[0]!).dims;
    e.set(n.outputs[0]!, expandView(x, shape) ?? identity(e.op('expand', [materialize(e, x)], { shape: [...shape] }, n.outputs[0])));
  },
  Concat: (e, n) => {
    const rank = e.g.facts(n.outputs[0]!).dims.length;
    const axis = normAxis(intAttr(n, 'axis') ?? 0, rank);
    const xs = n.inputs.filter((i) => i !== '' && numel(e.g.facts(i).dims) > 0).map((i) => e.tensor(i));
    e.set(n.outputs[0]!, identity(xs.length === 1 ? xs[0]! : e.op('concat', xs, { axis }, n.outputs[0])));
  },
  Slice: (e, n) => sliceNode(e, n),
  Split: (e, n) => splitNode(e, n),
  Gather: (e, n) => gatherNode(e, n),
};

// -- elementwise ------------------------------------------------------------------------

/** A one-input elementwise op: runs on the IR value and keeps the view. */
function elementwise(e: Emitter, n: OnnxNode, f: (x: Value) => Value): Lazy {
  const x = e.value(n.inputs[0]!);
  return withIr(x, f(x.ir));
}

function binaryNode(e: Emitter, n: OnnxNode): Lazy {
  if (n.inputs.length !== 2) return e.fail(`takes ${n.inputs.length} inputs; the IR form takes two`);
  // The IR's mod is the floored remainder (the sign of the divisor); fmod=1 asks for C's
  // truncated one (the sign of the dividend), which differs whenever the signs do.
  if (n.opType === 'Mod' && intAttr(n, 'fmod')) return e.fail('fmod=1 (the remainder with the sign of the dividend) has no IR form; the IR mod is floored');
  const out = n.outputs[0]!;
  const fn = BINARY[n.opType];
  const kind = n.opType === 'Add' ? 'add' : n.opType === 'Mul' ? 'mul' : 'binary';
  const attrs: Record<string, string> = fn ? { fn } : {};
  const [a, b] = n.inputs as [string, string];
  // Pow's exponent may have another element type; the IR's binary ops take one.
  const build = (x: Value, y: Value) => {
    if (n.opType === 'Pow' && y.type.dtype !== x.type.dtype) y = e.op('cast', [y], { to: x.type.dtype });
    return e.op(kind, [x, y], attrs, out);
  };
  return binaryLazy(e, a, b, e.g.facts(out).dims, build);
}

/**
 * An elementwise op of two ONNX values. When both are laid out alike, or one is a scalar or
 * a vector along an intact last axis, it runs on the IR values and keeps the view; otherwise
 * both are materialized and the IR broadcasts them as ONNX does.
 */
export function binaryLazy(e: Emitter, aName: string, bName: string, outShape: readonly number[], build: (a: Value, b: Value) => Value): Lazy {
  const a = e.value(aName);
  const b = e.value(bName);
  if (signature(a) === signature(b)) return withIr(a, build(a.ir, b.ir));
  const sides: [Lazy, Lazy, boolean][] = [[a, b, true], [b, a, false]];
  for (const [main, other, first] of sides) {
    if (isIdentity(main) || !sameShape(viewShape(main), outShape)) continue;
    const os = viewShape(other);
    const n = numel(os);
    const last = os[os.length - 1] ?? 1;
    let small: Value | undefined;
    if (n === 1) small = flatTo(e, other, []);
    else if (n === last && lastAxisIntact(main) && last === outShape[outShape.length - 1]) small = flatTo(e, other, [last]);
    if (small) return withIr(main, first ? build(main.ir, small) : build(small, main.ir));
  }
  return broadcastResult(build(materializeTrimmed(e, a), materializeTrimmed(e, b)), outShape.length);
}

/** An IR result that may lack leading size-1 axes of the ONNX result (see materializeTrimmed). */
function broadcastResult(v: Value, rank: number): Lazy {
  return withLeadingOnes(v, rank - v.type.shape.length);
}

function flatTo(e: Emitter, l: Lazy, shape: number[]): Value {
  const v = materialize(e, l);
  return sameShape(v.type.shape, shape) ? v : e.op('reshape', [v], { shape });
}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

// -- last-axis ops ----------------------------------------------------------------------

/** An op over the last axis that keeps the shape (LayerNorm, Softmax): on the IR value when the axis is intact. */
export function lastAxisOp(e: Emitter, x: Lazy, f: (v: Value) => Value): Lazy {
  if (lastAxisIntact(x)) return withIr(x, f(x.ir));
  return identity(f(materialize(e, x)));
}

function softmax(e: Emitter, n: OnnxNode): Lazy {
  const x = e.value(n.inputs[0]!);
  const rank = x.view.length;
  const axis = normAxis(intAttr(n, 'axis') ?? (e.g.g.model.opset < 13 ? 1 : -1), rank);
  // Before opset 13 Softmax flattened the axes from `axis` on; that equals a last-axis softmax only for the last axis.
  if (e.g.g.model.opset < 13 && axis !== rank - 1) return e.fail(`opset ${e.g.g.model.opset} Softmax over axes ${axis}.. has no IR form`);
  if (axis === rank - 1) return lastAxisOp(e, x, (v) => e.op('softmax', [v], { axis: -1 }, n.outputs[0]));
  return identity(e.op('softmax', [materialize(e, x)], { axis }, n.outputs[0]));
}

function layerNormalization(e: Emitter, n: OnnxNode): Lazy {
  if (n.outputs.slice(1).some((o) => o !== '' && (e.g.users(o).length > 0 || e.g.isOutput(o)))) {
    return e.fail('its mean and inverse-deviation outputs are used; the IR layernorm has one result');
  }
  const x = e.value(n.inputs[0]!);
  const rank = x.view.length;
  if (normAxis(intAttr(n, 'axis') ?? -1, rank) !== rank - 1) return e.fail('normalises over more than the last axis; the IR layernorm takes the last axis only');
  const eps = floatAttr(n, 'epsilon') ?? 1e-5;
  const params = n.inputs.slice(1).filter((i) => i !== '').map((i) => vector(e, i));
  return lastAxisOp(e, x, (v) => e.op('layernorm', [v, ...params], { eps }, n.outputs[0]));
}

/** A 1-D IR value of an ONNX value whose only non-1 axis is the last (a norm's gamma or beta). */
export function vector(e: Emitter, name: string): Value {
  const v = e.tensor(name);
  const shape = v.type.shape;
  if (shape.length === 1) return v;
  const last = shape[shape.length - 1] ?? 1;
  if (numel(shape) !== last) return e.fail(`'${name}' of shape [${shape.join(', ')}] should be a vector over the last axis`);
  return e.op('reshape', [v], { shape: [last] });
}

// -- products ---------------------------------------------------------------------------

function matmul(e: Emitter, n: OnnxNode): Value {
  const [a, b] = n.inputs.map((i) => e.tensor(i));
  if (a!.type.shape.length < 2 || b!.type.shape.length < 2) return e.fail('multiplies a 1-D tensor; the IR matmul takes matrices');
  return e.op('matmul', [a!, b!], {}, n.outputs[0]);
}

function gemm(e: Emitter, n: OnnxNode): Value {
  const out = n.outputs[0]!;
  let a = e.tensor(n.inputs[0]!);
  let b = e.tensor(n.inputs[1]!);
  if (intAttr(n, 'transA')) a = e.op('transpose', [a], { perm: [1, 0] });
  if (intAttr(n, 'transB')) b = e.op('transpose', [b], { perm: [1, 0] });
  const alpha = floatAttr(n, 'alpha') ?? 1;
  const c = n.inputs[2] || undefined;
  // The last op made carries the node's output name.
  let y = e.op('matmul', [a, b], {}, alpha === 1 && !c ? out : undefined);
  if (alpha !== 1) y = e.op('mul', [y, e.scalar(alpha, y.type.dtype)], {}, c ? undefined : out);
  if (c) {
    const beta = floatAttr(n, 'beta') ?? 1;
    let cv = e.tensor(c);
    if (beta !== 1) cv = e.op('mul', [cv, e.scalar(beta, cv.type.dtype)]);
    y = e.op('add', [y, cv], {}, out);
  }
  return y;
}

// -- reductions and views ---------------------------------------------------------------

function reduce(e: Emitter, n: OnnxNode, fn: string): Value {
  const x = e.tensor(n.inputs[0]!);
  const rank = x.type.shape.length;
  const fromInput = n.inputs[1] !== undefined && n.inputs[1] !== '';
  let axes: readonly number[] | undefined = fromInput ? constInts(e, n.inputs[1]!, 'axes') : intsAttr(n, 'axes');
  const keepdims = (intAttr(n, 'keepdims') ?? 1) !== 0;
  if (!axes || axes.length === 0) {
    if ((intAttr(n, 'noop_with_empty_axes') ?? 0) !== 0) {
      e.set(n.outputs[0]!, identity(x));
      return x;
    }
    axes = x.type.shape.map((_, i) => i);
  }
  return e.op('reduce', [x], { fn, axes: axes.map((a) => normAxis(a, rank)), keepdims }, n.outputs[0]);
}

function reshaped(e: Emitter, input: string, dims: readonly number[]): Lazy {
  const x = e.value(input);
  return reshapeView(x, dims) ?? identity(e.op('reshape', [materialize(e, x)], { shape: [...dims] }));
}
