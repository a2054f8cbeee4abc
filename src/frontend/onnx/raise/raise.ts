// Raising an inferred ONNX graph to the IR. Matchers run first, in priority order, each over
// the nodes from last to first (so the largest form of a pattern — a Linear with its bias, a
// LayerNorm with its shift — claims its nodes before a smaller one could); claims never
// overlap. Then one walk in graph order emits IR: a claimed root emits its raised op, other
// claimed nodes emit nothing, folded nodes (known numbers) emit nothing either (their values
// become IR consts where something uses them), and every other node is lowered to generic IR
// ops (generic.ts). Dead ops left by layout bookkeeping are removed, and the ops of each
// Transformer block get its layer index (layers.ts).

import { basename, extname } from 'node:path';
import { Module, type Op } from '../../../ir/module.js';
import type { InferredGraph } from '../infer.js';
import type { OnnxNode } from '../model.js';
import { Emitter } from './emit.js';
import { lowerGeneric } from './generic.js';
import { GraphView } from './graph.js';
import { assignLayers } from './layers.js';
import type { Match, Matcher } from './match.js';
import { gelu, silu } from './patterns/activation.js';
import { attention } from './patterns/attention.js';
import { embedding } from './patterns/embedding.js';
import { linear } from './patterns/linear.js';
import { norm } from './patterns/norm.js';
import { rope } from './patterns/rope.js';

/** Matchers by priority: a pattern listed earlier wins nodes another could also claim. */
export const MATCHERS: readonly (readonly [string, Matcher])[] = [
  ['attention', attention],
  ['norm', norm],
  ['gelu', gelu],
  ['rope', rope],
  ['silu', silu],
  ['linear', linear],
  ['embedding', embedding],
];

export interface RaiseResult {
  readonly module: Module;
  /** Patterns recognised, by kind (before any fell back to generic ops). */
  readonly matches: readonly Match[];
}

export function raiseGraph(ig: InferredGraph, name = basename(ig.model.file, extname(ig.model.file))): RaiseResult {
  const g = new GraphView(ig);
  const m = new Module(name);
  const e = new Emitter(m, g);
  for (const input of ig.model.graph.inputs) e.value(input.name);
  const matches = findMatches(g);
  const roots = new Map(matches.map((x) => [x.root, x]));
  const claimed = new Set(matches.flatMap((x) => [...x.nodes]));
  const deferred = new Map(matches.flatMap((x) => [...(x.deferred ?? [])]));
  e.setClaimed(claimed);
  // Only what the outputs need is lowered, in graph order; anything else a raised op or a
  // fallback reads later (a folded Transpose of a small weight, say) is lowered on demand, so
  // a stored table a pattern absorbed never becomes a param.
  const needed = neededNodes(g, roots, deferred);
  const lower = (node: OnnxNode) => {
    const match = roots.get(node);
    if (match) emitMatch(e, match);
    else if (deferred.has(node)) e.set(node.outputs[0]!, e.value(deferred.get(node)!));
    else lowerGeneric(e, node);
  };
  e.setLowerer(lower);
  for (const node of ig.nodes) {
    if (!needed.has(node) || e.has(node.outputs[0]!)) continue;
    if (roots.has(node) || deferred.has(node) || (!claimed.has(node) && !ig.folded.has(node.name))) lower(node);
  }
  m.setOutputs(ig.model.graph.outputs.map((o) => {
    const p = g.producer(o.name);
    if (p) e.at(p);
    return e.tensor(o.name);
  }));
  removeDeadOps(m);
  assignLayers(m);
  return { module: m, matches };
}

/**
 * Nodes the graph outputs depend on, reading a raised pattern's inputs only (not the nodes
 * it absorbed) and treating folded values as constants.
 */
function neededNodes(g: GraphView, roots: ReadonlyMap<OnnxNode, Match>, deferred: ReadonlyMap<OnnxNode, string>): Set<OnnxNode> {
  const need = new Set<OnnxNode>();
  const seen = new Set<string>();
  const stack = g.g.model.graph.outputs.map((o) => o.name);
  while (stack.length) {
    const v = stack.pop()!;
    if (seen.has(v)) continue;
    seen.add(v);
    const p = g.producer(v);
    if (!p || (g.g.folded.has(p.name) && !g.fromWeight(v))) continue;
    need.add(p);
    const reads = roots.get(p)?.inputs ?? (deferred.has(p) ? [deferred.get(p)!] : p.inputs);
    for (const i of reads) if (i !== '') stack.push(i);
  }
  return need;
}

function findMatches(g: GraphView): Match[] {
  const claimed = new Set<OnnxNode>();
  const out: Match[] = [];
  const nodes = [...g.g.nodes].reverse();
  for (const [, matcher] of MATCHERS) {
    for (const node of nodes) {
      if (claimed.has(node) || isFolded(g, node)) continue;
      const m = matcher(g, node);
      const all = [...(m?.nodes ?? []), ...(m?.deferred?.keys() ?? [])];
      if (!m || all.some((n) => claimed.has(n))) continue;
      for (const n of all) claimed.add(n);
      out.push(m);
    }
  }
  return out;
}

/** A node whose results are all known numbers, none of them a weight moved or viewed. */
function isFolded(g: GraphView, node: OnnxNode): boolean {
  return g.g.folded.has(node.name) && node.outputs.every((o) => o === '' || !g.fromWeight(o));
}

/** Emits a match at its root; if its layout does not fit after all, lowers its nodes one by one. */
function emitMatch(e: Emitter, match: Match): void {
  e.at(match.root);
  const out = match.emit(e);
  if (out) {
    e.set(match.root.outputs[0]!, out);
    return;
  }
  const nodes = [...match.nodes].sort((a, b) => a.index - b.index);
  for (const n of nodes) if (!e.g.g.folded.has(n.name)) lowerGeneric(e, n);
}

/** Removes ops none of whose results is used (layouts materialized and then not needed, peeled scales). */
function removeDeadOps(m: Module): void {
  const ops = [...m.ops()].reverse();
  for (const op of ops) if (isDead(m, op)) m.removeOp(op);
}

function isDead(m: Module, op: Op): boolean {
  return op.results.every((r) => m.users(r).length === 0 && !m.outputs.includes(r));
}
