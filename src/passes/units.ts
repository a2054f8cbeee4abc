// Fusion units: the smallest sets of forward Linear ops that are always scheduled together.
// Linears that read the same input run side by side (Q/K/V projections, SwiGLU's gate and
// up), and an attention block — the projections feeding an attention core plus the output
// projection reading it — is one unit, since its 4h² weights are fused even when buffers are
// tight (paper §III-B). Units are listed in forward order; `fuse` groups consecutive units.

import type { Module, Op, Value } from '../ir/module.js';
import { opDef } from '../ir/ops.js';

export type UnitKind = 'attention' | 'linear';

export interface Unit {
  readonly kind: UnitKind;
  /** The unit's Linear ops in forward order. */
  readonly linears: readonly Op[];
  readonly layer: number | undefined;
}

/** Forward ops: all ops of an inference module, or those the train pass marked `fwd`. */
export function isForward(op: Op): boolean {
  const phase = op.notes?.['train.phase'];
  return phase === undefined || phase === 'fwd';
}

export function findUnits(m: Module): Unit[] {
  const ops = m.ops();
  const order = new Map(ops.map((op, i) => [op, i]));
  const linears = ops.filter((op) => op.kind === 'linear' && isForward(op));
  const parent = new Map<Op, Op>(linears.map((l) => [l, l]));
  const find = (op: Op): Op => {
    let r = op;
    while (parent.get(r) !== r) r = parent.get(r)!;
    return r;
  };
  const union = (a: Op, b: Op) => {
    const [ra, rb] = [find(a), find(b)];
    if (ra !== rb) parent.set(order.get(ra)! < order.get(rb)! ? rb : ra, order.get(ra)! < order.get(rb)! ? ra : rb);
  };
  // Linears reading the same input run side by side.
  const byInput = new Map<Value, Op>();
  for (const l of linears) {
    const first = byInput.get(l.operands[0]!);
    if (first) union(first, l);
    else byInput.set(l.operands[0]!, l);
  }
  const attentionOf = new Map<Op, Op>();
  for (const att of ops.filter((op) => op.kind === 'attention' && isForward(op))) {
    const members = [...att.operands.slice(0, 3).flatMap((v) => linearsBehind(v)), ...linearsAhead(m, att.results[0]!)];
    for (const l of members.slice(1)) union(members[0]!, l);
    for (const l of members) attentionOf.set(l, att);
  }
  const groups = new Map<Op, Op[]>();
  for (const l of linears) groups.set(find(l), [...(groups.get(find(l)) ?? []), l]);
  return [...groups.values()]
    .sort((a, b) => order.get(a[0]!)! - order.get(b[0]!)!)
    .map((ls) => ({ kind: ls.some((l) => attentionOf.has(l)) ? 'attention' : 'linear', linears: ls, layer: ls[0]!.layer }));
}

/** Walk back from an attention operand through ops that are not GEMMs to the Linears that make it. */
function linearsBehind(v: Value): Op[] {
  const op = v.def;
  if (!op) return [];
  if (op.kind === 'linear') return [op];
  if (opDef(op.kind).category === 'gemm' || op.kind === 'attention') return [];
  return op.operands.flatMap((x) => linearsBehind(x));
}

/** Walk forward from the attention output through data movement to the Linear that reads it. */
function linearsAhead(m: Module, v: Value): Op[] {
  return m.users(v).flatMap((op) => {
    if (op.kind === 'linear' && op.operands[0] === v) return [op];
    if (opDef(op.kind).category === 'movement') return op.results.flatMap((r) => linearsAhead(m, r));
    return [];
  });
}

/** How reports name a Linear: by its weight when that is a declared param, else by its result. */
export function linearName(l: Op): string {
  const w = l.operands[1];
  return w && !w.def ? w.name : l.results[0]!.name;
}

/**
 * Where an op runs in time: its fusion group and training phase. Values made in the same
 * placement stay on the package; between placements they go through DRAM.
 */
export function placementKey(op: Op): string {
  return `${String(op.notes?.['fuse.group'])}/${String(op.notes?.['train.phase'] ?? 'fwd')}`;
}
