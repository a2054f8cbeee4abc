// Normalisations written out by exporters below opset 17 (or by model code):
//   LayerNorm: (x − mean(x)) / sqrt(mean((x − mean(x))²) + eps) · γ (+ β)
//   RMSNorm:   x / sqrt(mean(x²) + eps) · γ        (T5, Llama)
// with the square as Pow(·, 2) or Mul(·, ·), the division as Div or as Mul by Reciprocal(·)
// or by Div(1, ·), means as ReduceMean over the last axis (axes an attribute or, from opset
// 18, an input), either operand order of Mul and Add, and Casts around (mixed precision).

import type { OnnxNode } from '../../model.js';
import type { Emitter } from '../emit.js';
import { intAttr, intsAttr, normAxis } from '../attrs.js';
import { lastAxisOp, vector } from '../generic.js';
import { near, type GraphView } from '../graph.js';
import { withIr, type Lazy } from '../layout.js';
import { matchOf, split2, type Matcher } from '../match.js';

/** A norm's scale or shift: a weight vector over the last axis. */
function isNormParam(g: GraphView, name: string): boolean {
  const dims = g.facts(name).dims;
  return g.fromWeight(name) && dims.length >= 1 && dims.slice(0, -1).every((d) => d === 1);
}

interface Normalized {
  readonly kind: 'layernorm' | 'rmsnorm';
  readonly x: string;
  readonly eps: number;
}

export const norm: Matcher = (g, root) => {
  const nodes: OnnxNode[] = [];
  let beta: string | undefined;
  let scaled = root;
  if (root.opType === 'Add') {
    const s = split2(root, (n) => isNormParam(g, n) && g.def(other(root, n), undefined, true)?.opType === 'Mul');
    if (!s) return undefined;
    beta = s[0];
    const m = g.def(s[1], nodes, true);
    if (!m) return undefined;
    nodes.push(m);
    scaled = m;
  }
  if (scaled.opType !== 'Mul') return undefined;
  const s = split2(scaled, (n) => isNormParam(g, n));
  if (!s) return undefined;
  const [gamma, normed] = s;
  const n = normalized(g, normed, nodes);
  if (!n || (n.kind === 'rmsnorm' && beta !== undefined)) return undefined;
  return matchOf(g, n.kind, root, nodes, [n.x, gamma, beta], (e) => emitNorm(e, n, gamma, beta, root));
};

function other(node: OnnxNode, name: string): string {
  return node.inputs[0] === name ? node.inputs[1]! : node.inputs[0]!;
}

function emitNorm(e: Emitter, n: Normalized, gamma: string, beta: string | undefined, root: OnnxNode): Lazy {
  e.at(root);
  const params = [vector(e, gamma), ...(beta ? [vector(e, beta)] : [])];
  const out = root.outputs[0]!;
  const y = lastAxisOp(e, e.value(n.x), (v) => e.op(n.kind, [v, ...params], { eps: n.eps }, out));
  return castTo(e, y, out);
}

/** Casts a raised result to the element type the ONNX graph gives the root (Casts were looked through). */
export function castTo(e: Emitter, y: Lazy, out: string): Lazy {
  const want = e.dtype(e.g.facts(out).dtype, out);
  return y.ir.type.dtype === want ? y : withIr(y, e.op('cast', [y.ir], { to: want }));
}

/** Matches x / sqrt(mean(x²) + eps) or its centred form; visited nodes go to `nodes`. */
function normalized(g: GraphView, name: string, nodes: OnnxNode[]): Normalized | undefined {
  const d = g.def(name, nodes, true);
  if (!d) return undefined;
  nodes.push(d);
  let num: string;
  let std: string | undefined;
  if (d.opType === 'Div') [num, std] = [d.inputs[0]!, d.inputs[1]!];
  else if (d.opType === 'Mul') {
    const s = split2(d, (i) => reciprocalOf(g, i, []) !== undefined);
    if (!s) return undefined;
    std = reciprocalOf(g, s[0], nodes);
    num = s[1];
  } else return undefined;
  const st = std === undefined ? undefined : rootMeanSquare(g, std, nodes);
  if (!st) return undefined;
  // Centred: the numerator is x − mean(x) and the square was taken of it.
  const centred = g.def(num, nodes, true);
  if (centred?.opType === 'Sub') {
    const x = centred.inputs[0]!;
    const mean = g.def(centred.inputs[1]!, nodes, true);
    if (mean && isLastMean(g, mean) && g.same(mean.inputs[0]!, x) && g.same(st.squared, num)) {
      nodes.push(centred, mean);
      return { kind: 'layernorm', x, eps: st.eps };
    }
  }
  if (!g.same(st.squared, num)) return undefined;
  return { kind: 'rmsnorm', x: num, eps: st.eps };
}

/** For 1/y written as Reciprocal(y) or Div(1, y): y. */
function reciprocalOf(g: GraphView, name: string, nodes: OnnxNode[]): string | undefined {
  const d = g.def(name, nodes, true);
  if (d?.opType === 'Reciprocal') {
    nodes.push(d);
    return d.inputs[0];
  }
  if (d?.opType === 'Div' && near(g.scalar(d.inputs[0]!), 1, 1e-6)) {
    nodes.push(d);
    return d.inputs[1];
  }
  return undefined;
}

/** sqrt(mean(v²) + eps): returns v (the value squared) and eps. */
function rootMeanSquare(g: GraphView, name: string, nodes: OnnxNode[]): { squared: string; eps: number } | undefined {
  const sq = g.def(name, nodes, true);
  if (sq?.opType !== 'Sqrt') return undefined;
  const add = g.def(sq.inputs[0]!, nodes, true);
  if (add?.opType !== 'Add') return undefined;
  const s = split2(add, (i) => g.scalar(i) !== undefined);
  if (!s) return undefined;
  const eps = g.scalar(s[0])!;
  const mean = g.def(s[1], nodes, true);
  if (!mean || !isLastMean(g, mean)) return undefined;
  const p = g.def(mean.inputs[0]!, nodes, true);
  let squared: string | undefined;
  if (p?.opType === 'Pow' && near(g.scalar(p.inputs[1]!), 2, 1e-9)) squared = p.inputs[0];
  else if (p?.opType === 'Mul' && g.same(p.inputs[0]!, p.inputs[1]!)) squared = p.inputs[0];
  if (squared === undefined || eps < 0) return undefined;
  nodes.push(sq, add, mean, p!);
  return { squared, eps };
}

/** ReduceMean over the last axis only, keeping it. */
function isLastMean(g: GraphView, n: OnnxNode): boolean {
  if (n.opType !== 'ReduceMean' || (intAttr(n, 'keepdims') ?? 1) === 0) return false;
  const rank = g.facts(n.inputs[0]!).dims.length;
  const axesInput = n.inputs[1];
  let axes: readonly number[] | undefined;
  if (axesInput) {
    const t = g.known(axesInput);
    axes = t ? Array.from(t.data) : undefined;
  } else axes = intsAttr(n, 'axes');
  return axes !== undefined && axes.length === 1 && normAxis(axes[0]!, rank) === rank - 1;
}
