// The attention core: MatMul(q, kᵀ), a scale (Mul or Div by a number, on the scores or on
// q and k), masks (Where with a fill value, or an additive mask: a causal pattern folded from
// Trilu, a stored lower-triangular buffer or a Range comparison becomes `causal`; any other
// mask, e.g. padding from an input, becomes the mask operand), Softmax over the last axis,
// and MatMul(p, v). The head split and merge around it are lazy views (layout.ts): the
// matcher reads q, k and v through them to find which atoms are the batch, the positions,
// the heads and the head size, and grouped-query attention's repeated key/value heads
// (Unsqueeze, Expand, Reshape) appear as broadcast atoms, giving `kv_heads`.

import type { OnnxNode } from '../../model.js';
import { intAttr, normAxis } from '../attrs.js';
import type { Emitter } from '../emit.js';
import { lowerGeneric } from '../generic.js';
import { near, type GraphView } from '../graph.js';
import { realize, withIr, type Lazy } from '../layout.js';
import { matchOf, type Matcher } from '../match.js';
import { planLayout } from './heads.js';
import { MASKED, maskTerms, planMasks, type MaskSpec } from './masks.js';

interface Core {
  readonly av: OnnxNode;
  readonly q: string;
  readonly kt: string;
  readonly v: string;
  /** Product of the scale factors applied to the scores. */
  readonly scale: number;
  readonly masks: readonly MaskSpec[];
  /** Product of the scale nodes on the q and k chains that only those chains read (deferred: the walk passes them through). */
  readonly chainScale: number;
  /** The core's nodes, for lowering them one by one when the layout does not fit. */
  readonly nodes: readonly OnnxNode[];
  readonly scores: OnnxNode;
}

const VIEWS = new Set(['Reshape', 'Transpose', 'Unsqueeze', 'Squeeze', 'Flatten', 'Expand', 'Identity', 'Dropout', 'Cast']);

export const attention: Matcher = (g, av) => {
  if (av.opType !== 'MatMul') return undefined;
  const [p, v] = av.inputs as [string, string];
  const nodes: OnnxNode[] = [];
  const sm = g.def(p, nodes, true);
  if (sm?.opType !== 'Softmax' || g.fromWeight(v)) return undefined;
  const rank = g.facts(sm.inputs[0]!).dims.length;
  if (normAxis(intAttr(sm, 'axis') ?? (g.g.model.opset < 13 ? 1 : -1), rank) !== rank - 1) return undefined;
  nodes.push(sm);
  const walk = scoresOf(g, sm.inputs[0]!, nodes);
  if (!walk) return undefined;
  const [q, kt] = walk.scores.inputs as [string, string];
  if (g.fromWeight(q) || g.fromWeight(kt)) return undefined;
  nodes.push(walk.scores);
  const chains = [chainScales(g, q), chainScales(g, kt)];
  const deferred = new Map(chains.flatMap((c) => c.nodes));
  const chainScale = chains.reduce((p, c) => p * c.factor, 1);
  const core: Core = { av, q, kt, v, scale: walk.scale, masks: walk.masks, chainScale, nodes, scores: walk.scores };
  const maskInputs = walk.masks.flatMap((m) => (m.kind === 'where' ? [m.cond] : maskTerms(g, m.mask, 0)));
  const m = matchOf(g, 'attention', av, nodes, [q, kt, v, ...maskInputs], (e) => emitAttention(e, core) ?? fallback(e, core));
  return m && { ...m, deferred };
};

/** Walks from the softmax input back to the scores MatMul through scales and masks. */
function scoresOf(g: GraphView, from: string, nodes: OnnxNode[]): { scores: OnnxNode; scale: number; masks: MaskSpec[] } | undefined {
  let cur = from;
  let scale = 1;
  const masks: MaskSpec[] = [];
  for (let step = 0; step < 8; step++) {
    const d = g.def(cur, nodes, true);
    if (!d) return undefined;
    if (d.opType === 'MatMul') return { scores: d, scale, masks };
    nodes.push(d);
    const [a, b, c] = d.inputs;
    const sa = a === undefined ? undefined : g.scalar(a);
    const sb = b === undefined ? undefined : g.scalar(b);
    if (d.opType === 'Mul' && sb !== undefined) [scale, cur] = [scale * sb, a!];
    else if (d.opType === 'Mul' && sa !== undefined) [scale, cur] = [scale * sa, b!];
    else if (d.opType === 'Div' && sb !== undefined && sb !== 0) [scale, cur] = [scale / sb, a!];
    else if (d.opType === 'Where') {
      const fb = g.scalar(b!);
      const fc = g.scalar(c!);
      const out = d.outputs[0]!;
      if (fb !== undefined && fb <= MASKED) masks.push({ kind: 'where', cond: a!, keepWhenTrue: false, fill: fb, out });
      else if (fc !== undefined && fc <= MASKED) masks.push({ kind: 'where', cond: a!, keepWhenTrue: true, fill: fc, out });
      else return undefined;
      cur = fb !== undefined && fb <= MASKED ? c! : b!;
    } else if (d.opType === 'Add' && a !== undefined && b !== undefined) {
      const la = leadsToScores(g, a, 0);
      const lb = leadsToScores(g, b, 0);
      if (la === lb) return undefined;
      masks.push({ kind: 'add', mask: la ? b : a });
      cur = la ? a : b;
    } else return undefined;
  }
  return undefined;
}

/** Whether `name` is computed from a product of two activations through scales and masks (the scores side of an Add). */
function leadsToScores(g: GraphView, name: string, depth: number): boolean {
  if (depth > 6) return false;
  const d = g.def(name, undefined, true);
  if (!d) return false;
  if (d.opType === 'MatMul') return d.inputs.every((i) => !g.fromWeight(i) && g.known(i) === undefined);
  if (!['Mul', 'Div', 'Where', 'Add'].includes(d.opType)) return false;
  return d.inputs.some((i) => i !== '' && g.known(i) === undefined && leadsToScores(g, i, depth + 1));
}

/**
 * Scale nodes (Mul or Div by a number) on the view chain feeding one side of the scores
 * MatMul, as long as every value on the way is read only by the next node of the chain,
 * and the product of their factors.
 */
function chainScales(g: GraphView, from: string): { nodes: [OnnxNode, string][]; factor: number } {
  const nodes: [OnnxNode, string][] = [];
  let factor = 1;
  let cur = from;
  for (let step = 0; step < 16; step++) {
    if (g.users(cur).length !== 1 || g.isOutput(cur)) break;
    const d = g.producer(cur);
    if (!d) break;
    const [a, b] = d.inputs;
    const sb = b === undefined ? undefined : g.scalar(b);
    const sa = a === undefined ? undefined : g.scalar(a);
    if (d.opType === 'Mul' && sb !== undefined) [factor, cur] = [factor * sb, a!];
    else if (d.opType === 'Div' && sb) [factor, cur] = [factor / sb, a!];
    else if (d.opType === 'Mul' && sa !== undefined) [factor, cur] = [factor * sa, b!];
    else if (VIEWS.has(d.opType)) {
      cur = d.inputs[0]!;
      continue;
    } else break;
    nodes.push([d, cur]);
  }
  return { nodes, factor };
}

/** The core lowered node by node (the layout did not fit): the deferred chain scales multiply the scores. */
function fallback(e: Emitter, c: Core): Lazy {
  for (const n of [...c.nodes].sort((a, b) => a.index - b.index)) {
    lowerGeneric(e, n);
    if (n === c.scores && c.chainScale !== 1) {
      const s = e.value(n.outputs[0]!);
      e.set(n.outputs[0]!, withIr(s, e.op('mul', [s.ir, e.scalar(c.chainScale, s.ir.type.dtype)])));
    }
  }
  return e.value(c.av.outputs[0]!);
}

// -- emission ---------------------------------------------------------------------------

function emitAttention(e: Emitter, c: Core): Lazy | undefined {
  e.at(c.av);
  const plan = planLayout(e.value(c.q), e.value(c.kt), e.value(c.v));
  if (!plan) return undefined;
  const masks = planMasks(e, c.masks, plan);
  if (!masks) return undefined;
  const scale = c.scale * c.chainScale;
  const q3 = realize(e, plan.q.lazy, plan.q.groups);
  const k3 = realize(e, plan.k.lazy, plan.k.groups);
  const v3 = realize(e, plan.v.lazy, plan.v.groups);
  const mask = masks.operand?.();
  const attrs: Record<string, number | boolean> = { heads: plan.heads, causal: masks.causal };
  if (plan.k.heads !== plan.heads) attrs.kv_heads = plan.k.heads;
  if (!near(scale, 1 / Math.sqrt(plan.headSize), 1e-6)) attrs.scale = scale;
  const out = e.op('attention', mask ? [q3, k3, v3, mask] : [q3, k3, v3], attrs, c.av.outputs[0]);
  const irGroups = [plan.batch, plan.s, [...plan.headAtoms, ...plan.dv]];
  return { ir: out, irGroups, view: [...plan.qBatchGroups, plan.s, plan.dv] };
}

