// What a pattern matcher returns: the ONNX nodes it claims (its root — the node whose output
// is the pattern's result — and the interior nodes, whose outputs nothing else reads) and a
// function that emits the raised IR in their place when the walk reaches the root.

import type { OnnxNode } from '../model.js';
import type { Emitter } from './emit.js';
import type { GraphView } from './graph.js';
import type { Lazy } from './layout.js';

export interface Match {
  /** What was recognised (for statistics and tests): linear, attention, layernorm, ... */
  readonly kind: string;
  readonly root: OnnxNode;
  /** Every claimed node, the root included. */
  readonly nodes: ReadonlySet<OnnxNode>;
  /**
   * Nodes outside the pattern whose effect the raised op takes over (a scale on q that
   * becomes the attention's `scale`): the walk passes the named input through unchanged.
   */
  readonly deferred?: ReadonlyMap<OnnxNode, string>;
  /** The ONNX values `emit` reads: what must be computed for the raised op (not, say, an absorbed cos table). */
  readonly inputs: readonly string[];
  /**
   * Emits the raised ops and returns the lazy value of the root's first output, or undefined
   * when the layout turns out not to fit (the walk then lowers the claimed nodes one by one).
   */
  emit(e: Emitter): Lazy | undefined;
}

/** Tries to match a pattern whose root is `node`. */
export type Matcher = (g: GraphView, node: OnnxNode) => Match | undefined;

/** A match over `nodes` (root included) reading `inputs`, if the nodes are closed: no interior output escapes. */
export function matchOf(g: GraphView, kind: string, root: OnnxNode, nodes: Iterable<OnnxNode>, inputs: readonly (string | undefined)[], emit: Match['emit']): Match | undefined {
  const set = new Set(nodes);
  set.add(root);
  if (!g.closed(set, root)) return undefined;
  return { kind, root, nodes: set, inputs: inputs.filter((i): i is string => i !== undefined && i !== ''), emit };
}

/** The inputs of a two-input node as [the one matching `pred`, the other], trying both orders. */
export function split2(node: OnnxNode, pred: (name: string) => boolean): [string, string] | undefined {
  const [a, b] = node.inputs;
  if (a === undefined || b === undefined || node.inputs.length !== 2) return undefined;
  if (pred(a)) return [a, b];
  if (pred(b)) return [b, a];
  return undefined;
}
