// schedule/parts: tensors whose last axis is made of parts. When a Linear's output is split
// along its last axis into pieces (Q, K and V of a fused projection) and its columns are split
// over dies, tile2d treats the split as a view: each die's column block holds its block of
// *every* piece, as Megatron-LM arranges the fused projection (by permuting the weight's
// columns). The same arrangement then holds for everything that shares that last axis: the
// projection's weight and bias, their gradients and optimizer states, the gradient that joins
// the pieces again (a concat view), and every layout the collectives make of them.
//
// This module finds those tensors, so buffers can say which columns their tiles hold (a die's
// tile of a tensor with parts is, per part, the die's block of that part) and DRAM can say in
// which order it stores such a tensor (block by block, every part's block in turn).

import type { Module, Op, Value } from '../../ir/module.js';
import { opDef } from '../../ir/ops.js';
import { nestedRange, type Split } from '../sharding.js';
import type { Part } from '../../backend/program.js';
import { isView } from './emit.js';
import type { SpecCache } from './analysis.js';

/** The parts of a last axis (sizes in order), when a view splits or joins it. */
export type Parts = readonly Part[];

/** Ops that are elementwise over the last axis (every operand and result shares it). */
function sharesLastAxis(op: Op): boolean {
  const cat = opDef(op.kind).category;
  if (cat !== 'vector') return false;
  if (['layernorm', 'rmsnorm', 'softmax', 'rope', 'reduce', 'layernorm_grad', 'rmsnorm_grad', 'softmax_grad', 'rope_grad', 'reduce_grad', 'embedding', 'embedding_grad', 'gather', 'gather_grad'].includes(op.kind)) return false;
  const last = op.results[0]?.type.shape.at(-1);
  return last !== undefined && [...op.operands, ...op.results].every((v) => v.type.shape.at(-1) === last);
}

/**
 * Values (by identity) whose last axis has parts. Values linked by an op that keeps the last
 * axis (a collective, an elementwise op, a Linear's output and its weight's columns and bias,
 * the gradients of those, an optimizer's weight and states) share their parts.
 */
export function findParts(m: Module, specs: SpecCache): Map<Value, Parts> {
  const parent = new Map<Value, Value>();
  const find = (v: Value): Value => {
    let r = v;
    for (let p = parent.get(r); p !== undefined; p = parent.get(r)) r = p;
    // Point the path at its root: the residual stream links every layer into one class.
    for (let x = v; x !== r; ) {
      const next = parent.get(x)!;
      parent.set(x, r);
      x = next;
    }
    return r;
  };
  const join = (a: Value | undefined, b: Value | undefined) => {
    if (!a || !b) return;
    const [x, y] = [find(a), find(b)];
    if (x !== y) parent.set(x, y);
  };
  const seeds: [Value, Parts][] = [];
  for (const op of m.ops()) {
    const ov = op.operands;
    if ((op.kind === 'split' || op.kind === 'concat') && isView(op, specs)) {
      const pieces = op.kind === 'split' ? op.results : ov;
      const whole = op.kind === 'split' ? ov[0]! : op.results[0]!;
      if (whole.type.shape.length > 0 && pieces.every((p) => p.type.shape.length === whole.type.shape.length)) {
        seeds.push([whole, pieces.map((p) => ({ value: p.name, size: p.type.shape.at(-1)! }))]);
      }
      continue;
    }
    switch (op.kind) {
      case 'all_gather':
      case 'reduce_scatter':
      case 'all_reduce':
      case 'broadcast':
        join(ov[0], op.results[0]);
        break;
      case 'linear':
        join(op.results[0], ov[1]);
        join(op.results[0], ov[2]);
        break;
      case 'linear_grad': {
        const dy = ov[ov.length - 1];
        join(dy, ov[1]);
        if (ov.length === 4) join(dy, ov[2]);
        (op.attrs.wrt as readonly number[]).forEach((w, i) => {
          if (w === 1 || w === 2) join(dy, op.results[i]);
        });
        break;
      }
      case 'sgd':
      case 'adam':
        for (const v of [...ov, ...op.results]) join(ov[0], v);
        break;
      default:
        if (sharesLastAxis(op)) for (const v of [...ov, ...op.results]) join(op.results[0], v);
    }
  }
  const byRoot = new Map<Value, Parts>();
  for (const [v, parts] of seeds) if (!byRoot.has(find(v))) byRoot.set(find(v), parts);
  const own = new Map(seeds);
  const out = new Map<Value, Parts>();
  if (byRoot.size === 0) return out;
  const all = [...m.declarations(), ...m.ops().flatMap((op) => op.results)];
  for (const v of all) {
    // A value shares its class's part sizes; the piece names are its own split's when it has one.
    const p = own.get(v) ?? byRoot.get(find(v));
    if (p && p.reduce((s, x) => s + x.size, 0) === v.type.shape.at(-1)) out.set(v, p);
  }
  return out;
}

/**
 * The columns (of the logical last axis) held by column block `index` of the nested `splits`
 * (sharding.ts nestedRange) under a part-wise layout, in the order they are stored: each
 * part's block in turn.
 */
export function partColumns(parts: readonly { readonly size: number }[], splits: readonly Split[], index: number): number[] {
  const cols: number[] = [];
  let offset = 0;
  for (const p of parts) {
    const [a, b] = nestedRange(p.size, splits, index);
    for (let c = a; c < b; c++) cols.push(offset + c);
    offset += p.size;
  }
  return cols;
}
