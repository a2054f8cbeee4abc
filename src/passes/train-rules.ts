// Differentiation rules of the training pass, one per op kind: each emits the gradients of
// the operands listed in `wrt` through a Backward builder, either as the op's dedicated
// gradient op (grads.ts) or as a composition of forward ops. The table is exhaustive over
// op kinds, so a new op cannot be added without deciding how it differentiates.

import type { AttrValue, Attrs } from '../ir/attrs.js';
import { DIFFERENTIABLE_BINARY_FNS, DIFFERENTIABLE_UNARY_FNS } from '../ir/grads.js';
import type { Module, Op, Value } from '../ir/module.js';
import type { OpKind } from '../ir/ops.js';
import { isFloat, numel, sameShape, sameType, type DType, type TensorType } from '../ir/types.js';
import { assert, errorAt, type SourceLoc } from '../diagnostics/diagnostic.js';

export type Phase = 'fwd' | 'bwd' | 'update';

export function setPhase(op: Op, phase: Phase): void {
  op.notes = { ...op.notes, 'train.phase': phase };
}

export function gradName(v: Value): string {
  return `grad.${v.name}`;
}

// ---------------------------------------------------------------------------------------
// Which values get gradients.

/** Float params, and every float result with an operand that needs a gradient and passes one. */
export function gradientFlow(m: Module, forward: readonly Op[]): Set<Value> {
  const needs = new Set<Value>(m.params.filter((p) => isFloat(p.type.dtype)));
  for (const op of forward) {
    if (wrtOf(op, needs).length === 0) continue;
    for (const r of op.results) if (isFloat(r.type.dtype)) needs.add(r);
  }
  return needs;
}

/** Operand indices of `op` that receive a gradient: differentiable and needing one. */
function wrtOf(op: Op, needs: ReadonlySet<Value>): number[] {
  return passesGradient(op).filter((i) => needs.has(op.operands[i]!));
}

/** Operand positions a gradient can flow to; integer and bool operands never get one. */
function passesGradient(op: Op): number[] {
  const all = op.operands.map((_, i) => i);
  switch (op.kind) {
    case 'embedding':
      return [1];
    case 'gather':
      return [0];
    case 'attention':
      return [0, 1, 2]; // not the mask
    case 'where':
      return [1, 2];
    case 'unary':
      return isOneOf(DIFFERENTIABLE_UNARY_FNS, op.attrs.fn) ? all : [];
    case 'binary':
      return isOneOf(DIFFERENTIABLE_BINARY_FNS, op.attrs.fn) ? all : [];
    default:
      return all;
  }
}

function isOneOf(list: readonly string[], v: AttrValue | undefined): boolean {
  return typeof v === 'string' && list.includes(v);
}

// ---------------------------------------------------------------------------------------
// Accumulating gradients and emitting backward ops.

/** Where a backward op comes from: the forward op (or parameter) it differentiates. */
export interface Site {
  readonly loc: SourceLoc | undefined;
  readonly layer: number | undefined;
}

export function siteOf(op: Op): Site {
  return { loc: op.loc, layer: op.layer };
}

/** The state of one derivation: partial gradients per value, their sums, the zero constants. */
export class Backward {
  private readonly partials = new Map<Value, Value[]>();
  private readonly totals = new Map<Value, Value>();
  private readonly zeros = new Map<DType, Value>();

  constructor(
    readonly m: Module,
    readonly needs: ReadonlySet<Value>,
  ) {}

  /** Record one partial gradient of `v`. */
  contribute(v: Value, g: Value): void {
    assert(this.needs.has(v), `train: gradient for %${v.name}, which needs none`);
    assert(sameType(v.type, g.type), `train: gradient %${g.name} does not match the type of %${v.name}`);
    assert(!this.totals.has(v), `train: gradient of %${v.name} arrives after it was summed`);
    this.partials.set(v, [...(this.partials.get(v) ?? []), g]);
  }

  /** The summed gradient of `v` (emitting the adds once), or undefined when none flowed to it. */
  total(v: Value, site: Site): Value | undefined {
    const done = this.totals.get(v);
    if (done) return done;
    const parts = this.partials.get(v);
    if (!parts) return undefined;
    const sum = parts.slice(1).reduce((acc, p) => this.one('add', [acc, p], {}, gradName(v), site), parts[0]!);
    this.totals.set(v, sum);
    return sum;
  }

  /** Add an op at `site`, marked with its training phase; returns its results. */
  emit(kind: OpKind, operands: readonly Value[], attrs: Attrs, names: readonly string[], site: Site, phase: Phase = 'bwd'): Value[] {
    const op = this.m.addOp(kind, operands, attrs, { names, loc: site.loc, layer: site.layer });
    setPhase(op, phase);
    return op.results;
  }

  one(kind: OpKind, operands: readonly Value[], attrs: Attrs, name: string, site: Site): Value {
    return this.emit(kind, operands, attrs, [name], site)[0]!;
  }

  /** A scalar constant; where, expand and mul broadcast it. */
  scalar(name: string, dtype: DType, x: number): Value {
    return this.m.addConst(name, { dtype, shape: [] }, [x]);
  }

  /** The shared scalar 0 of a dtype. */
  zero(dtype: DType): Value {
    const z = this.zeros.get(dtype) ?? this.scalar(`grad.zero.${dtype}`, dtype, 0);
    this.zeros.set(dtype, z);
    return z;
  }

  zerosLike(t: TensorType, name: string, site: Site): Value {
    return this.one('expand', [this.zero(t.dtype)], { shape: [...t.shape] }, name, site);
  }
}

/** Visit one forward op: sum its results' gradients and pass them on to its operands. */
export function differentiate(b: Backward, op: Op): void {
  const site = siteOf(op);
  const dys = op.results.map((r) => b.total(r, site));
  if (dys.every((g) => g === undefined)) return;
  const wrt = wrtOf(op, b.needs);
  assert(wrt.length > 0, `train: ${op.kind} %${op.results[0]!.name} has a gradient but passes none on`);
  RULES[op.kind](b, op, dys, wrt);
}

// ---------------------------------------------------------------------------------------
// The rules: one per op kind, emitting the gradients of the operands in `wrt`.

type Grads = readonly (Value | undefined)[];
type Rule = (b: Backward, op: Op, dys: Grads, wrt: readonly number[]) => void;

/** The gradient of a one-result op's result. */
function only(dys: Grads): Value {
  assert(dys.length === 1 && dys[0] !== undefined, 'train: expected one result gradient');
  return dys[0];
}

/** A dedicated gradient op: `<kind>(operands..., dy) {attrs..., wrt}`, one result per wrt. */
function dedicated(kind: OpKind): Rule {
  return (b, op, dys, wrt) => {
    const names = wrt.map((i) => gradName(op.operands[i]!));
    const grads = b.emit(kind, [...op.operands, only(dys)], { ...op.attrs, wrt: [...wrt] }, names, siteOf(op));
    wrt.forEach((i, n) => b.contribute(op.operands[i]!, grads[n]!));
  };
}

/**
 * The gradient of `target` from a broadcast-shaped one (`full` of shape `fullShape`): summed
 * over the broadcast axes and viewed as the target's shape. `make` builds `full` given a name.
 */
function unbroadcast(b: Backward, site: Site, target: Value, fullShape: readonly number[], make: (name: string) => Value): Value {
  const name = gradName(target);
  const to = target.type.shape;
  if (sameShape(fullShape, to)) return make(name);
  const full = make(`${name}.full`);
  const extra = fullShape.length - to.length;
  assert(extra >= 0, `train: cannot reduce ${full.name} to the rank of %${target.name}`);
  const axes = fullShape.flatMap((d, i) => (i < extra || (to[i - extra] === 1 && d !== 1) ? [i] : []));
  const leadingOnly = axes.every((a) => a < extra);
  const reshapeAfter = !leadingOnly && extra > 0;
  const sum = b.one('reduce', [full], { fn: 'sum', axes, keepdims: !leadingOnly }, reshapeAfter ? `${name}.sum` : name, site);
  return reshapeAfter ? b.one('reshape', [sum], { shape: [...to] }, name, site) : sum;
}

/** add: dy passes through to each operand (summed over its broadcast axes). */
const addGrad: Rule = (b, op, dys, wrt) => {
  const dy = only(dys);
  for (const i of wrt) {
    const x = op.operands[i]!;
    b.contribute(x, unbroadcast(b, siteOf(op), x, dy.type.shape, () => dy));
  }
};

/** mul: da = dy·b, db = dy·a (each summed over its broadcast axes). */
const mulGrad: Rule = (b, op, dys, wrt) => {
  const dy = only(dys);
  const site = siteOf(op);
  for (const i of wrt) {
    const [x, other] = [op.operands[i]!, op.operands[1 - i]!];
    b.contribute(x, unbroadcast(b, site, x, dy.type.shape, (name) => b.one('mul', [dy, other], {}, name, site)));
  }
};

/** matmul: da = dy·bᵀ, db = aᵀ·dy on the last two axes (summed over broadcast batch axes). */
const matmulGrad: Rule = (b, op, dys, wrt) => {
  const dy = only(dys);
  const site = siteOf(op);
  const [a, c] = op.operands as [Value, Value];
  const batch = dy.type.shape.slice(0, -2);
  const [m, k] = a.type.shape.slice(-2) as [number, number];
  const n = c.type.shape[c.type.shape.length - 1]!;
  const swapped = (v: Value): Value => {
    const perm = v.type.shape.map((_, i, s) => (i < s.length - 2 ? i : 2 * s.length - 3 - i));
    return b.one('transpose', [v], { perm }, `${v.name}.T`, site);
  };
  if (wrt.includes(0)) {
    b.contribute(a, unbroadcast(b, site, a, [...batch, m, k], (name) => b.one('matmul', [dy, swapped(c)], {}, name, site)));
  }
  if (wrt.includes(1)) {
    b.contribute(c, unbroadcast(b, site, c, [...batch, k, n], (name) => b.one('matmul', [swapped(a), dy], {}, name, site)));
  }
};

/** where: dy goes to a where cond holds and to b elsewhere, zeros in the other places. */
const whereGrad: Rule = (b, op, dys, wrt) => {
  const dy = only(dys);
  const site = siteOf(op);
  const zero = b.zero(dy.type.dtype);
  for (const i of wrt) {
    const x = op.operands[i]!;
    const operands = i === 1 ? [op.operands[0]!, dy, zero] : [op.operands[0]!, zero, dy];
    b.contribute(x, unbroadcast(b, site, x, dy.type.shape, (name) => b.one('where', operands, {}, name, site)));
  }
};

/** A one-operand op whose gradient is one forward op on dy with `attrs`. */
function viaForward(kind: OpKind, attrs: (op: Op) => Attrs): Rule {
  return (b, op, dys) => {
    const x = op.operands[0]!;
    b.contribute(x, b.one(kind, [only(dys)], attrs(op), gradName(x), siteOf(op)));
  };
}

const castGrad = viaForward('cast', (op) => ({ to: op.operands[0]!.type.dtype }));
const reshapeGrad = viaForward('reshape', (op) => ({ shape: [...op.operands[0]!.type.shape] }));
const expandGrad: Rule = (b, op, dys) => {
  const x = op.operands[0]!;
  b.contribute(x, unbroadcast(b, siteOf(op), x, only(dys).type.shape, () => only(dys)));
};

/** transpose: transpose back with the inverse permutation. */
const transposeGrad = viaForward('transpose', (op) => {
  const perm = op.attrs.perm as readonly number[];
  const inverse = perm.map(() => 0);
  perm.forEach((p, i) => (inverse[p] = i));
  return { perm: inverse };
});

/** concat: split dy back into the pieces' sizes. */
const concatGrad: Rule = (b, op, dys, wrt) => {
  const axis = op.attrs.axis as number;
  const rank = op.operands[0]!.type.shape.length;
  const sizes = op.operands.map((x) => x.type.shape[axis < 0 ? axis + rank : axis]!);
  const names = op.operands.map(gradName);
  const pieces = b.emit('split', [only(dys)], { axis, sizes }, names, siteOf(op));
  for (const i of wrt) b.contribute(op.operands[i]!, pieces[i]!);
};

/** split: concatenate the pieces' gradients, zeros for pieces that got none. */
const splitGrad: Rule = (b, op, dys) => {
  const site = siteOf(op);
  const x = op.operands[0]!;
  const pieces = op.results.map((r, i) => dys[i] ?? b.zerosLike(r.type, gradName(r), site));
  b.contribute(x, b.one('concat', pieces, { axis: op.attrs.axis as number }, gradName(x), site));
};

/** unary: identity passes dy, neg negates it, the other functions use unary_grad. */
const unaryGrad: Rule = (b, op, dys, wrt) => {
  const x = op.operands[0]!;
  switch (op.attrs.fn) {
    case 'identity':
      return b.contribute(x, only(dys));
    case 'neg':
      return b.contribute(x, b.one('unary', [only(dys)], { fn: 'neg' }, gradName(x), siteOf(op)));
    default:
      return dedicated('unary_grad')(b, op, dys, wrt);
  }
};

/** binary: sub passes dy and −dy (summed over broadcast axes); the others use binary_grad. */
const binaryGrad: Rule = (b, op, dys, wrt) => {
  if (op.attrs.fn !== 'sub') return dedicated('binary_grad')(b, op, dys, wrt);
  const dy = only(dys);
  const site = siteOf(op);
  for (const i of wrt) {
    const x = op.operands[i]!;
    const make = (name: string): Value => (i === 0 ? dy : b.one('unary', [dy], { fn: 'neg' }, name, site));
    b.contribute(x, unbroadcast(b, site, x, dy.type.shape, make));
  }
};

/** reduce: sum and mean broadcast dy back (mean also scales it); max, min, prod use reduce_grad. */
const reduceGrad: Rule = (b, op, dys, wrt) => {
  const fn = op.attrs.fn as string;
  if (fn !== 'sum' && fn !== 'mean') return dedicated('reduce_grad')(b, op, dys, wrt);
  const site = siteOf(op);
  const x = op.operands[0]!;
  const rank = x.type.shape.length;
  const axes = new Set((op.attrs.axes as readonly number[]).map((a) => (a < 0 ? a + rank : a)));
  const kept = x.type.shape.map((d, i) => (axes.has(i) ? 1 : d));
  const name = gradName(x);
  const dy = op.attrs.keepdims ? only(dys) : b.one('reshape', [only(dys)], { shape: kept }, `${name}.kept`, site);
  const full = b.one('expand', [dy], { shape: [...x.type.shape] }, fn === 'sum' ? name : `${name}.full`, site);
  if (fn === 'sum') return b.contribute(x, full);
  const scale = b.scalar(`${name}.scale`, x.type.dtype, numel(kept) / numel(x.type));
  b.contribute(x, b.one('mul', [full, scale], {}, name, site));
};

/** Gradient and update ops are never differentiated (no second derivatives). */
const secondOrder: Rule = (_b, op) => {
  throw errorAt(op.loc, 'GY3004', `${op.kind} is a gradient or update op: the module is already a training graph; compile it with --mode inference or from its forward model`);
};

/** Collectives exist only after tiling, which runs after training. */
const distributed: Rule = (_b, op) => {
  throw errorAt(op.loc, 'GY3004', `${op.kind} is a collective: the module is already distributed; compile its forward model instead`);
};

const RULES: Readonly<Record<OpKind, Rule>> = {
  linear: dedicated('linear_grad'),
  matmul: matmulGrad,
  attention: dedicated('attention_grad'),
  layernorm: dedicated('layernorm_grad'),
  rmsnorm: dedicated('rmsnorm_grad'),
  gelu: dedicated('gelu_grad'),
  silu: dedicated('silu_grad'),
  softmax: dedicated('softmax_grad'),
  add: addGrad,
  mul: mulGrad,
  embedding: dedicated('embedding_grad'),
  rope: dedicated('rope_grad'),
  unary: unaryGrad,
  binary: binaryGrad,
  where: whereGrad,
  reduce: reduceGrad,
  cast: castGrad,
  reshape: reshapeGrad,
  transpose: transposeGrad,
  concat: concatGrad,
  split: splitGrad,
  slice: dedicated('slice_grad'),
  gather: dedicated('gather_grad'),
  expand: expandGrad,
  linear_grad: secondOrder,
  attention_grad: secondOrder,
  layernorm_grad: secondOrder,
  rmsnorm_grad: secondOrder,
  gelu_grad: secondOrder,
  silu_grad: secondOrder,
  softmax_grad: secondOrder,
  rope_grad: secondOrder,
  unary_grad: secondOrder,
  binary_grad: secondOrder,
  embedding_grad: secondOrder,
  gather_grad: secondOrder,
  slice_grad: secondOrder,
  reduce_grad: secondOrder,
  sgd: secondOrder,
  adam: secondOrder,
  all_gather: distributed,
  reduce_scatter: distributed,
  all_reduce: distributed,
  broadcast: distributed,
};
