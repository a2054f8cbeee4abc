// Whole-model statistics read off the IR: parameter count, Transformer layers, raised op
// counts and the floating-point work of one training iteration. Everything is computed from
// the op table (each op's `flops`), so a new op is counted the moment it is defined.

import type { Module } from './module.js';
import { opDef, type OpKind } from './ops.js';
import { byteSize, numel } from './types.js';

export interface ModelStats {
  readonly model: string;
  /** Trainable parameters (elements of all `param` values). */
  readonly params: number;
  readonly param_bytes: number;
  /** Transformer layers: distinct layer indices carried by the ops. */
  readonly layers: number;
  /** Raised Linear ops (including a language-model head). */
  readonly linear: number;
  /** Attention cores. */
  readonly attention: number;
  readonly ops: number;
  readonly op_counts: Readonly<Partial<Record<OpKind, number>>>;
  readonly inputs: readonly { name: string; dtype: string; shape: readonly number[] }[];
  readonly flops_forward: number;
  readonly flops_backward: number;
  /** Work of the SGD update, w -= lr·dw: two operations per parameter. */
  readonly flops_update: number;
  /** Forward + backward + update of one iteration over the whole batch. */
  readonly flops_per_iteration: number;
}

export function modelStats(m: Module): ModelStats {
  const counts: Partial<Record<OpKind, number>> = {};
  const layers = new Set<number>();
  let fwd = 0;
  let bwd = 0;
  for (const op of m.ops()) {
    counts[op.kind] = (counts[op.kind] ?? 0) + 1;
    if (op.layer !== undefined) layers.add(op.layer);
    const f = opDef(op.kind).flops({
      operands: op.operands.map((v) => v.type),
      results: op.results.map((v) => v.type),
      attrs: op.attrs,
    });
    fwd += f.fwd;
    bwd += f.bwd;
  }
  const params = m.params.reduce((n, p) => n + numel(p.type), 0);
  const update = 2 * params;
  return {
    model: m.name,
    params,
    param_bytes: m.params.reduce((n, p) => n + byteSize(p.type), 0),
    layers: layers.size,
    linear: counts.linear ?? 0,
    attention: counts.attention ?? 0,
    ops: m.ops().length,
    op_counts: Object.fromEntries(Object.entries(counts).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))),
    inputs: m.inputs.map((v) => ({ name: v.name, dtype: v.type.dtype, shape: v.type.shape })),
    flops_forward: fwd,
    flops_backward: bwd,
    flops_update: update,
    flops_per_iteration: fwd + bwd + update,
  };
}
