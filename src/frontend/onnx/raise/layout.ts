// Deferred layouts. Exporters split and merge attention heads, move the sequence axis first
// and repeat key/value heads with chains of Reshape, Transpose, Unsqueeze and Expand. Emitting
// each as an IR op would bury the transformer structure, so a raised value is a `Lazy`: an IR
// value plus a description of how the ONNX tensor views it. Both sides are written in
// *atoms* — contiguous sub-axes of the IR value (a [2, 32, 64] value is atoms b·s·(h·d) once
// a Reshape splits 64 into 4×16). An ONNX dimension is a group of atoms in any order; atoms
// marked `bcast` exist only in the view (an Expand) and are read with stride 0.
// Ops that act on the last axis or elementwise run on the IR value directly and keep the
// view; anything else asks for the exact ONNX layout, which `materialize` builds from at most
// one reshape, one transpose, one expand and one reshape.

import type { Value } from '../../../ir/module.js';
import type { Attrs } from '../../../ir/attrs.js';
import type { OpKind } from '../../../ir/ops.js';
import { assert } from '../../../diagnostics/diagnostic.js';

export interface Atom {
  readonly id: number;
  readonly size: number;
  /** Present in the view only (broadcast by an Expand), not in the IR value. */
  readonly bcast: boolean;
}

export type Group = readonly Atom[];

export interface Lazy {
  readonly ir: Value;
  /** One group per IR dimension (real atoms only; a size-1 dimension has none). */
  readonly irGroups: readonly Group[];
  /** One group per ONNX dimension. */
  readonly view: readonly Group[];
}

/** What the layout code needs to emit IR ops at the current node. */
export interface IrBuilder {
  op(kind: OpKind, operands: readonly Value[], attrs?: Attrs): Value;
}

let nextAtom = 0;

export function atom(size: number, bcast = false): Atom {
  return { id: nextAtom++, size, bcast };
}

export function groupSize(g: Group): number {
  return g.reduce((p, a) => p * a.size, 1);
}

const flat = (gs: readonly Group[]): Atom[] => gs.flat();

function sameList<T>(a: readonly T[], b: readonly T[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

/** A value seen exactly as it is. */
export function identity(v: Value): Lazy {
  const groups = v.type.shape.map((d) => (d === 1 ? [] : [atom(d)]));
  return { ir: v, irGroups: groups, view: groups };
}

/** A value seen with `extra` size-1 axes in front (what numpy broadcasting adds implicitly). */
export function withLeadingOnes(v: Value, extra: number): Lazy {
  const l = identity(v);
  return { ...l, view: [...Array.from({ length: extra }, (): Group => []), ...l.view] };
}

/**
 * The IR value in the ONNX layout up to leading size-1 axes, which broadcasting ops may
 * leave out (a [1, s, h] position table added to [b, s, h] activations is read as [s, h]).
 */
export function materializeTrimmed(b: IrBuilder, l: Lazy): Value {
  let k = 0;
  while (k < l.view.length - l.irGroups.length && l.view[k]!.length === 0) k++;
  const trimmed = { ...l, view: l.view.slice(k) };
  return isIdentity(trimmed) ? l.ir : materialize(b, l);
}

/** The ONNX shape a lazy value stands for. */
export function viewShape(l: Lazy): number[] {
  return l.view.map(groupSize);
}

export function isIdentity(l: Lazy): boolean {
  return l.irGroups.length === l.view.length && l.irGroups.every((g, i) => sameList(g, l.view[i]!));
}

/**
 * Whether the last ONNX axis is exactly the IR value's last axis, so an op over the last
 * axis (Linear, LayerNorm, Softmax) can run on the IR value and keep the view.
 */
export function lastAxisIntact(l: Lazy): boolean {
  const v = l.view[l.view.length - 1];
  const g = l.irGroups[l.irGroups.length - 1];
  return v !== undefined && g !== undefined && v.length > 0 && sameList(v, g);
}

/** The lazy value with its last axis replaced by a fresh one of `size` (after a Linear). */
export function withLastAxis(l: Lazy, ir: Value, size: number): Lazy {
  const a = size === 1 ? [] : [atom(size)];
  return { ir, irGroups: [...l.irGroups.slice(0, -1), a], view: [...l.view.slice(0, -1), a] };
}

/** The same layout over another IR value of the same shape (the result of an elementwise op). */
export function withIr(l: Lazy, ir: Value): Lazy {
  return { ...l, ir };
}

/**
 * The IR value laid out as `target` (one IR dimension per group; broadcast atoms allowed),
 * emitting only the reshapes, transpose and expand that are needed.
 */
export function realize(b: IrBuilder, l: Lazy, target: readonly Group[]): Value {
  const have = flat(l.irGroups);
  const want = flat(target);
  const real = want.filter((a) => !a.bcast);
  assert(real.length === have.length && real.every((a) => have.includes(a)), 'realize: target atoms differ from the value');
  const shapeOf = (gs: readonly Group[]) => gs.map(groupSize);
  const reshape = (v: Value, shape: readonly number[]) => (sameList(v.type.shape, shape) ? v : b.op('reshape', [v], { shape: [...shape] }));
  let cur = l.ir;
  const perm = real.map((a) => have.indexOf(a));
  if (perm.some((p, i) => p !== i)) {
    cur = b.op('transpose', [reshape(cur, have.map((a) => a.size))], { perm });
  }
  if (want.some((a) => a.bcast)) {
    cur = reshape(cur, want.map((a) => (a.bcast ? 1 : a.size)));
    cur = b.op('expand', [cur], { shape: want.map((a) => a.size) });
  }
  return reshape(cur, shapeOf(target));
}

/** The IR value in exactly the ONNX layout. */
export function materialize(b: IrBuilder, l: Lazy): Value {
  return isIdentity(l) ? l.ir : realize(b, l, l.view);
}

/** Replaces atom `a` by two atoms [outer, inner] (outer major) in both layouts. */
export function splitAtomOf(l: Lazy, a: Atom, outer: number): { lazy: Lazy; outer: Atom; inner: Atom } {
  const o = atom(outer, a.bcast);
  const i = atom(a.size / outer, a.bcast);
  const swap = (gs: readonly Group[]) => gs.map((g) => g.flatMap((x) => (x === a ? [o, i] : [x])));
  return { lazy: { ir: l.ir, irGroups: swap(l.irGroups), view: swap(l.view) }, outer: o, inner: i };
}

/**
 * Regroups the view's atoms (in view order) into `dims`, splitting an atom where a new
 * dimension boundary falls inside it. Undefined when the sizes do not line up (a reshape
 * that mixes parts of two atoms); the caller then materializes.
 */
export function reshapeView(l: Lazy, dims: readonly number[]): Lazy | undefined {
  let cur = l;
  const queue = flat(l.view);
  const view: Atom[][] = [];
  for (const d of dims) {
    const group: Atom[] = [];
    let need = d;
    while (need > 1) {
      const a = queue[0];
      if (!a) return undefined;
      if (need % a.size === 0) {
        group.push(a);
        queue.shift();
        need /= a.size;
      } else if (a.size % need === 0) {
        const s = splitAtomOf(cur, a, need);
        cur = s.lazy;
        group.push(s.outer);
        queue[0] = s.inner;
        need = 1;
      } else return undefined;
    }
    view.push(group);
  }
  if (queue.length > 0) return undefined;
  // Atoms split on the way were recorded in `cur`; map the view's old atoms to them.
  return { ir: cur.ir, irGroups: cur.irGroups, view };
}

export function transposeView(l: Lazy, perm: readonly number[]): Lazy {
  return { ...l, view: perm.map((p) => l.view[p]!) };
}

/** Numpy broadcasting of the view to `shape`: new size-1 axes in front, size-1 axes widened by broadcast atoms. */
export function expandView(l: Lazy, shape: readonly number[]): Lazy | undefined {
  const rank = Math.max(l.view.length, shape.length);
  const view: Group[] = [...Array.from({ length: rank - l.view.length }, (): Group => []), ...l.view];
  const target = [...Array.from({ length: rank - shape.length }, () => 1), ...shape];
  const out: Group[] = [];
  for (let i = 0; i < rank; i++) {
    const g = view[i]!;
    const have = groupSize(g);
    const t = target[i]!;
    if (t === have || t === 1) out.push(g);
    else if (have === 1) out.push([atom(t, true)]);
    else return undefined;
  }
  return { ...l, view: out };
}

/**
 * Lays the IR value out so that atom `a` is an IR dimension of its own, splitting its IR
 * group around it; returns the new lazy value and that dimension's index.
 */
export function isolate(b: IrBuilder, l: Lazy, a: Atom): { lazy: Lazy; dim: number } {
  const groups: Group[] = [];
  let dim = -1;
  for (const g of l.irGroups) {
    const at = g.indexOf(a);
    if (at < 0) {
      groups.push(g);
      continue;
    }
    if (at > 0) groups.push(g.slice(0, at));
    dim = groups.length;
    groups.push([a]);
    if (at < g.length - 1) groups.push(g.slice(at + 1));
  }
  assert(dim >= 0, 'isolate: the atom is not in the value');
  if (groups.length === l.irGroups.length) return { lazy: l, dim };
  return { lazy: { ir: realize(b, l, groups), irGroups: groups, view: l.view }, dim };
}

/** Replaces atom `a` by `by` (which may be empty) everywhere, over a new IR value. */
export function replaceAtom(l: Lazy, ir: Value, a: Atom, by: readonly Atom[]): Lazy {
  const swap = (gs: readonly Group[]) => gs.map((g) => g.flatMap((x) => (x === a ? by : [x])));
  return { ir, irGroups: swap(l.irGroups), view: swap(l.view) };
}

/**
 * A description of the layout independent of atom identities: two lazy values with equal
 * signatures line up element by element, so an elementwise op may combine their IR values.
 */
export function signature(l: Lazy): string {
  const have = flat(l.irGroups);
  const ir = l.irGroups.map((g) => g.map((a) => a.size).join('.')).join(',');
  const view = l.view.map((g) => g.map((a) => (a.bcast ? `b${a.size}` : `@${have.indexOf(a)}`)).join('.')).join(',');
  return `${l.ir.type.shape.join('x')}|${ir}|${view}`;
}
