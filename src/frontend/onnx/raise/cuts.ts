// Slice, Split and Gather. A cut along an ONNX axis that is one atom of the lazy view
// (layout.ts) cuts the IR dimension holding that atom, so the view survives; Slices that
// together cut one axis into consecutive pieces (a fused QKV projection, nn.MultiheadAttention's
// in_proj) become one IR split, as the DSL writes it. Anything else is materialized first.

import type { OnnxNode } from '../model.js';
import { constInts, intAttr, intsAttr, normAxis } from './attrs.js';
import type { Emitter } from './emit.js';
import { atom, groupSize, identity, isolate, materialize, replaceAtom, viewShape, type Lazy } from './layout.js';

interface AxisSlice {
  axis: number;
  start: number;
  end: number;
  step: number;
}

/** ONNX Slice bounds resolved against the input shape (clamped as ONNX clamps). */
function sliceBounds(e: Emitter, n: OnnxNode, shape: readonly number[]): AxisSlice[] {
  const opset = e.g.g.model.opset;
  const get = (i: number, attr: string) => (opset < 10 ? intsAttr(n, attr) : n.inputs[i] ? constInts(e, n.inputs[i]!, attr) : undefined);
  const starts = get(1, 'starts') ?? [];
  const ends = get(2, 'ends') ?? [];
  const axes = get(3, 'axes') ?? starts.map((_, i) => i);
  const steps = (opset < 10 ? undefined : n.inputs[4] ? constInts(e, n.inputs[4], 'steps') : undefined) ?? starts.map(() => 1);
  return axes.map((a0, i) => {
    const axis = normAxis(a0, shape.length);
    const dim = shape[axis]!;
    const step = steps[i]!;
    if (step <= 0) e.fail('slices with a step below 1, which the IR slice does not take');
    const clamp = (v: number) => Math.min(Math.max(v < 0 ? v + dim : v, 0), dim);
    return { axis, start: clamp(starts[i]!), end: Math.max(clamp(starts[i]!), clamp(ends[i]!)), step };
  });
}

export function sliceNode(e: Emitter, n: OnnxNode): void {
  const out = n.outputs[0]!;
  if (e.has(out)) return; // made with its siblings as one split
  const x = e.value(n.inputs[0]!);
  const shape = viewShape(x);
  const cuts = effectiveCuts(e, n, shape);
  if (cuts.length === 0) return e.set(out, x);
  if (cuts.length === 1 && splitSiblings(e, n, x, cuts[0]!.axis)) return;
  if (cuts.length === 1) {
    const l = cutAtom(e, x, cuts[0]!, out);
    if (l) return e.set(out, l);
  }
  const v = e.op('slice', [materialize(e, x)], {
    axes: cuts.map((c) => c.axis), starts: cuts.map((c) => c.start), ends: cuts.map((c) => c.end), steps: cuts.map((c) => c.step),
  }, out);
  e.set(out, identity(v));
}

function effectiveCuts(e: Emitter, n: OnnxNode, shape: readonly number[]): AxisSlice[] {
  return sliceBounds(e, n, shape).filter((c) => !(c.start === 0 && c.end === shape[c.axis] && c.step === 1));
}

/**
 * Slices of one value that cut the same axis into consecutive pieces covering it (the Q, K
 * and V of a fused projection, `in_proj` style) become one IR split, as the DSL writes it.
 */
function splitSiblings(e: Emitter, n: OnnxNode, x: Lazy, axis: number): boolean {
  const shape = viewShape(x);
  const input = n.inputs[0]!;
  const pieces: { node: OnnxNode; start: number; end: number }[] = [];
  for (const u of e.g.users(input)) {
    if (u.opType !== 'Slice' || u.inputs[0] !== input || e.claimed(u) || e.g.g.folded.has(u.name)) continue;
    const cuts = effectiveCuts(e, u, shape);
    if (cuts.length === 1 && cuts[0]!.axis === axis && cuts[0]!.step === 1) pieces.push({ node: u, start: cuts[0]!.start, end: cuts[0]!.end });
  }
  pieces.sort((a, b) => a.start - b.start);
  const covers = pieces.length >= 2 && pieces[0]!.start === 0 && pieces[pieces.length - 1]!.end === shape[axis] && pieces.every((p, i) => i === 0 || p.start === pieces[i - 1]!.end);
  if (!covers) return false;
  const sizes = pieces.map((p) => p.end - p.start);
  const outs = pieces.map((p) => p.node.outputs[0]!);
  const g = x.view[axis]!;
  if (g.length === 1 && !g[0]!.bcast) {
    const a = g[0]!;
    const { lazy, dim } = isolate(e, x, a);
    const vs = e.ops('split', [lazy.ir], { axis: dim, sizes }, outs);
    outs.forEach((o, i) => e.set(o, replaceAtom(lazy, vs[i]!, a, sizes[i] === 1 ? [] : [atom(sizes[i]!)])));
  } else {
    const vs = e.ops('split', [materialize(e, x)], { axis, sizes }, outs);
    outs.forEach((o, i) => e.set(o, identity(vs[i]!)));
  }
  return true;
}

/** Slices one ONNX axis that is a single atom by slicing the IR dimension holding it. */
function cutAtom(e: Emitter, x: Lazy, c: AxisSlice, out: string): Lazy | undefined {
  const g = x.view[c.axis]!;
  if (g.length !== 1) return undefined;
  const a = g[0]!;
  const size = Math.ceil((c.end - c.start) / c.step);
  const by = size === 1 ? [] : [atom(size, a.bcast)];
  if (a.bcast) return replaceAtom(x, x.ir, a, by);
  const { lazy, dim } = isolate(e, x, a);
  const v = e.op('slice', [lazy.ir], { axes: [dim], starts: [c.start], ends: [c.end], steps: [c.step] }, out);
  return replaceAtom(lazy, v, a, by);
}

export function splitNode(e: Emitter, n: OnnxNode): void {
  const x = e.value(n.inputs[0]!);
  const rank = x.view.length;
  const axis = normAxis(intAttr(n, 'axis') ?? 0, rank);
  const outs = n.outputs.filter((o) => o !== '');
  const sizes = n.outputs.map((o) => e.g.facts(o).dims[axis]!);
  const g = x.view[axis]!;
  if (g.length === 1 && !g[0]!.bcast && sizes.every((s) => s > 0)) {
    const a = g[0]!;
    const { lazy, dim } = isolate(e, x, a);
    const vs = e.ops('split', [lazy.ir], { axis: dim, sizes }, n.outputs.map((o, i) => o || `${outs[0]}.${i}`));
    n.outputs.forEach((o, i) => e.set(o, replaceAtom(lazy, vs[i]!, a, sizes[i] === 1 ? [] : [atom(sizes[i]!)])));
    return;
  }
  const vs = e.ops('split', [materialize(e, x)], { axis, sizes }, n.outputs.map((o, i) => o || `${outs[0]}.${i}`));
  n.outputs.forEach((o, i) => e.set(o, identity(vs[i]!)));
}

export function gatherNode(e: Emitter, n: OnnxNode): void {
  const out = n.outputs[0]!;
  const x = e.value(n.inputs[0]!);
  const rank = x.view.length;
  const axis = normAxis(intAttr(n, 'axis') ?? 0, rank);
  const idx = e.g.known(n.inputs[1]!);
  const dim = groupSize(x.view[axis]!);
  // One constant index along an axis that is a single atom: a slice, then the axis drops.
  if (idx && idx.dims.length === 0) {
    const i = idx.data[0]! < 0 ? idx.data[0]! + dim : idx.data[0]!;
    const cut = x.view[axis]!.length === 1 ? cutAtom(e, x, { axis, start: i, end: i + 1, step: 1 }, out) : undefined;
    if (cut) return e.set(out, { ...cut, view: cut.view.filter((_, j) => j !== axis) });
  }
  const indices = idx
    ? e.constant({ ...idx, data: idx.data.map((v) => (v < 0 ? v + dim : v)) }, `${out}.indices`)
    : e.tensor(n.inputs[1]!);
  e.set(out, identity(e.op('gather', [materialize(e, x), indices], { axis }, out)));
}
