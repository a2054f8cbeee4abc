// Rotary position embeddings in the rotate-half form (GPT-NeoX, Llama):
//   x·cos + rotate_half(x)·sin,   rotate_half(x) = concat(−x[..., d/2:], x[..., :d/2])
// with the halves cut by two Slices or a Split, the sum and products in any operand order.
// cos and sin must be known numbers (folded from the position ids, or stored tables) equal
// to cos/sin(p · θ^(−2i/d)) for positions p = 0, 1, ...: the IR rope op computes them itself
// from θ, which is read off the tables. Tables that depend on the model's inputs (position
// ids fed by the caller) are not raised; the ops then stay generic.

import type { OnnxNode } from '../../model.js';
import type { Tensor } from '../../tensor.js';
import { normAxis } from '../attrs.js';
import type { GraphView } from '../graph.js';
import { realize } from '../layout.js';
import { matchOf, split2, type Matcher } from '../match.js';
import { headsOf } from './heads.js';
import { castTo } from './norm.js';

export const rope: Matcher = (g, root) => {
  if (root.opType !== 'Add' || root.inputs.length !== 2) return undefined;
  for (const [a, b] of [[root.inputs[0]!, root.inputs[1]!], [root.inputs[1]!, root.inputs[0]!]]) {
    const nodes: OnnxNode[] = [];
    const cosMul = g.def(a, nodes, true);
    const sinMul = g.def(b, nodes, true);
    if (cosMul?.opType !== 'Mul' || sinMul?.opType !== 'Mul') continue;
    const rot = split2(sinMul, (i) => g.def(i, undefined, true)?.opType === 'Concat');
    if (!rot) continue;
    const half = rotateHalf(g, rot[0], nodes);
    if (!half) continue;
    const cs = split2(cosMul, (i) => g.same(i, half.x));
    if (!cs) continue;
    const theta = thetaOf(g.numbers(cs[1]), g.numbers(rot[1]), g.facts(half.x).dims);
    if (theta === undefined) continue;
    nodes.push(cosMul, sinMul);
    return matchOf(g, 'rope', root, nodes, [half.x], (e) => {
      e.at(root);
      const x = e.value(half.x);
      const r = x.view.length;
      if (r < 2 || x.view.flat().some((t) => t.bcast)) return undefined;
      const [s, d] = [x.view[r - 2]!, x.view[r - 1]!];
      const batchGroups = x.view.slice(0, -2);
      const heads = headsOf(x, batchGroups, d);
      const batch = batchGroups.flat().filter((t) => !heads.includes(t));
      const groups = [batch, s, [...heads, ...d]];
      const v = realize(e, x, groups);
      const y = e.op('rope', [v], { heads: heads.reduce((p, t) => p * t.size, 1), theta }, root.outputs[0]);
      return castTo(e, { ir: y, irGroups: groups, view: x.view }, root.outputs[0]!);
    });
  }
  return undefined;
};

/** concat(−x2, x1) over the last axis, x1 and x2 the halves of x: returns x. */
function rotateHalf(g: GraphView, name: string, nodes: OnnxNode[]): { x: string } | undefined {
  const cat = g.def(name, nodes, true)!;
  const rank = g.facts(cat.outputs[0]!).dims.length;
  const axis = cat.attrs.get('axis');
  if (cat.inputs.length !== 2 || axis?.kind !== 'int' || normAxis(axis.value, rank) !== rank - 1) return undefined;
  const neg = g.def(cat.inputs[0]!, nodes, true);
  if (neg?.opType !== 'Neg') return undefined;
  const second = halfOf(g, neg.inputs[0]!, nodes);
  const first = halfOf(g, cat.inputs[1]!, nodes);
  if (!second || !first || second.which !== 1 || first.which !== 0 || !g.same(first.x, second.x)) return undefined;
  nodes.push(cat, neg);
  return { x: first.x };
}

/** A half of x along its last axis: Slice [0, d/2) or [d/2, d), or output 0 or 1 of an even Split. */
function halfOf(g: GraphView, name: string, nodes: OnnxNode[]): { x: string; which: 0 | 1 } | undefined {
  const n = g.def(name, nodes, true);
  if (!n) return undefined;
  const x = n.inputs[0]!;
  const dims = g.facts(x).dims;
  const d = dims[dims.length - 1]!;
  const rank = dims.length;
  if (n.opType === 'Split') {
    const axis = n.attrs.get('axis');
    const sizes = n.outputs.map((o) => g.facts(o).dims[rank - 1]);
    if (axis?.kind !== 'int' || normAxis(axis.value, rank) !== rank - 1 || sizes.length !== 2 || sizes[0] !== d / 2) return undefined;
    nodes.push(n);
    return { x, which: n.outputs.indexOf(g.source(name, undefined, true)) === 0 ? 0 : 1 };
  }
  if (n.opType !== 'Slice' || g.g.model.opset < 10) return undefined;
  const num = (i: number) => (n.inputs[i] ? g.known(n.inputs[i]!)?.data : undefined);
  const [starts, ends, axes, steps] = [num(1), num(2), num(3), num(4)];
  if (!starts || !ends || starts.length !== 1) return undefined;
  if ((axes && normAxis(axes[0]!, rank) !== rank - 1) || (!axes && rank !== 1) || (steps && steps[0] !== 1)) return undefined;
  const clamp = (v: number) => Math.min(Math.max(v < 0 ? v + d : v, 0), d);
  const [s, e] = [clamp(starts[0]!), clamp(ends[0]!)];
  nodes.push(n);
  if (s === 0 && e === d / 2) return { x, which: 0 };
  if (s === d / 2 && e === d) return { x, which: 1 };
  return undefined;
}

/**
 * θ such that cos and sin are cos/sin(p · θ^(−2i/d)) at position p and frequency i (each
 * frequency twice, the halves repeated), the same for every leading index; else undefined.
 */
export function thetaOf(cos: Tensor | undefined, sin: Tensor | undefined, xDims: readonly number[]): number | undefined {
  if (!cos || !sin || cos.dims.length < 2 || sin.dims.length !== cos.dims.length) return undefined;
  const r = cos.dims.length;
  const [S, D] = [cos.dims[r - 2]!, cos.dims[r - 1]!];
  const xs = xDims[xDims.length - 2];
  if (D !== xDims[xDims.length - 1] || S !== xs || D % 2 !== 0 || sin.dims.some((v, i) => v !== cos.dims[i])) return undefined;
  const half = D / 2;
  // θ^(−2/d) is the angle of frequency 1 at position 1.
  const theta = S >= 2 && half >= 2 ? Math.atan2(sin.data[D + 1]!, cos.data[D + 1]!) ** (-D / 2) : 10000;
  if (!Number.isFinite(theta) || theta <= 1) return undefined;
  for (let base = 0; base < cos.data.length; base += S * D) {
    for (let p = 0; p < S; p++) {
      for (let i = 0; i < D; i++) {
        const angle = p * theta ** (-(2 * (i % half)) / D);
        const at = base + p * D + i;
        if (Math.abs(cos.data[at]! - Math.cos(angle)) > 2e-3 || Math.abs(sin.data[at]! - Math.sin(angle)) > 2e-3) return undefined;
      }
    }
  }
  // The angle is read from float32 numbers: keep the digits it determines.
  return Number(theta.toPrecision(6));
}

