// Linear layers: MatMul(x, W) with W a weight (an initializer, or one transposed, cast or
// de-duplicated through Identity), optionally followed by Add(·, b) with a bias vector in
// either operand order; and Gemm(x, W, b) with transB (nn.Linear on 2-D inputs) or without
// (Hugging Face's Conv1D). The IR weight is [in, out], so a [out, in] weight is read through
// an IR transpose, as the model DSL writes a tied head.

import type { Value } from '../../../../ir/module.js';
import { numel } from '../../../../ir/types.js';
import type { OnnxNode } from '../../model.js';
import type { Emitter } from '../emit.js';
import { floatAttr, intAttr } from '../attrs.js';
import { vector } from '../generic.js';
import type { GraphView } from '../graph.js';
import { identity, lastAxisIntact, materialize, withLastAxis, type Lazy } from '../layout.js';
import { matchOf, type Match, type Matcher } from '../match.js';

/** Whether `name` can be a Linear's weight: a 2-D value tied to a weight initializer. */
function isWeight(g: GraphView, name: string): boolean {
  return g.fromWeight(name) && g.facts(name).dims.length === 2;
}

/** Whether `name` is a bias for `out` features: a weight with only its last axis above 1. */
function isBias(g: GraphView, name: string, out: number): boolean {
  const dims = g.facts(name).dims;
  return g.fromWeight(name) && numel(dims) === out && dims[dims.length - 1] === out;
}

export const linear: Matcher = (g, node) => {
  if (node.opType === 'Gemm') return gemm(g, node);
  if (node.opType === 'MatMul') return matmul(g, node, undefined, []);
  if (node.opType !== 'Add') return undefined;
  // Add(b, MatMul(x, W)) in either order.
  for (const [mmOut, bias] of [[node.inputs[0], node.inputs[1]], [node.inputs[1], node.inputs[0]]] as const) {
    if (mmOut === undefined || bias === undefined) continue;
    const trail: OnnxNode[] = [];
    const mm = g.def(mmOut, trail);
    if (mm?.opType !== 'MatMul') continue;
    const out = g.facts(mm.outputs[0]!).dims.at(-1) ?? 0;
    if (!isBias(g, bias, out) || g.fromWeight(mmOut)) continue;
    const m = matmul(g, mm, { root: node, bias }, trail);
    if (m) return m;
  }
  return undefined;
};

function matmul(g: GraphView, mm: OnnxNode, add: { root: OnnxNode; bias: string } | undefined, trail: OnnxNode[]): Match | undefined {
  const [x, w] = mm.inputs as [string, string];
  if (!isWeight(g, w) || g.fromWeight(x) || g.facts(x).dims.length < 1) return undefined;
  const out = g.facts(w).dims[1]!;
  const root = add?.root ?? mm;
  return matchOf(g, 'linear', root, [mm, ...trail], [x, w, add?.bias], (e) => {
    e.at(mm);
    const b = add ? vector(e, add.bias) : undefined;
    return emitLinear(e, e.value(x), e.tensor(w), b, out, root.outputs[0]!);
  });
}

function gemm(g: GraphView, node: OnnxNode): Match | undefined {
  const [a, w, c] = node.inputs as [string, string, string | undefined];
  const transB = (intAttr(node, 'transB') ?? 0) !== 0;
  if (intAttr(node, 'transA') || (floatAttr(node, 'alpha') ?? 1) !== 1 || !isWeight(g, w) || g.fromWeight(a)) return undefined;
  const out = g.facts(w).dims[transB ? 0 : 1]!;
  const bias = c !== undefined && c !== '' ? c : undefined;
  if (bias && ((floatAttr(node, 'beta') ?? 1) !== 1 || !isBias(g, bias, out))) return undefined;
  return matchOf(g, 'linear', node, [], [a, w, bias], (e) => {
    e.at(node);
    const w0 = e.tensor(w);
    const wt = transB ? e.op('transpose', [w0], { perm: [1, 0] }, `${w}.T`) : w0;
    return emitLinear(e, e.value(a), wt, bias ? vector(e, bias) : undefined, out, node.outputs[0]!);
  });
}

/** The IR linear on the lazy input: kept in its view when the feature axis is intact. */
export function emitLinear(e: Emitter, x: Lazy, w: Value, b: Value | undefined, out: number, name: string): Lazy {
  const operands = (v: Value) => (b ? [v, w, b] : [v, w]);
  if (lastAxisIntact(x)) return withLastAxis(x, e.op('linear', operands(x.ir), {}, name), out);
  return identity(e.op('linear', operands(materialize(e, x)), {}, name));
}
