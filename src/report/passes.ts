// What each pass decided, as data: taken right after the pass ran (the pass manager's
// afterPass hook), from what passes leave in the module — its notes keyed `PASS.field` and the
// notes it put on ops (fusion groups, tile orientations, collective bytes). The text lines a
// pass reports (`gyges compile`) are for people; these records are what the report shows
// and embeds. A pass this file does not know still gets its module notes.

import type { Module, Op } from '../ir/module.js';
import type { AttrValue } from '../ir/attrs.js';
import { byteSize } from '../ir/types.js';
import { PASSES } from '../passes/index.js';
import type { PassRecord } from '../passes/manager.js';

export interface FusionGroupRow {
  readonly group: number;
  /** attention and/or ffn, in program order. */
  readonly blocks: readonly string[];
  /** The forward Linears of the group, by weight name. */
  readonly linears: readonly string[];
  /** Their weights and biases, whole tensors. */
  readonly param_bytes: number;
  /** Column chunks its weights stream through the buffers in (1: resident). */
  readonly chunks: number;
}

export interface CollectiveRow {
  readonly op: string;
  readonly axis: string;
  readonly algo: string;
  /** The compute op a collective is a step of (Optimus's key/value gathers), null for layout changes. */
  readonly part_of: string | null;
  readonly count: number;
  /** Per die and iteration: on the busiest link, and sent in all. */
  readonly link_bytes: number;
  readonly sent_bytes: number;
}

export type PassDetail =
  | { readonly kind: 'train'; readonly ops: Readonly<Record<string, number>> }
  | { readonly kind: 'fuse'; readonly groups: readonly FusionGroupRow[] }
  | { readonly kind: 'tile2d'; readonly orientation: Readonly<Record<string, number>>; readonly beside_dram: number }
  | {
      readonly kind: 'collectives';
      readonly collectives: readonly CollectiveRow[];
      /** Ops that reduce inside themselves (not in Table III): norm row statistics, attention score all-reduces. */
      readonly norm_row_sums: { readonly ops: number; readonly link_bytes: number };
      readonly split_heads: { readonly ops: number; readonly link_bytes: number };
    };

export interface PassDecision {
  readonly pass: string;
  readonly index: number;
  readonly summary: string;
  /** The module notes the pass set (`PASS.field`), as they stood right after it. */
  readonly notes: Readonly<Record<string, AttrValue>>;
  readonly detail: PassDetail | null;
}

/** What `record`'s pass decided, read from `m` right after it ran. */
export function passDecision(m: Module, record: PassRecord): PassDecision {
  const summary = PASSES.find((p) => p.name === record.pass)?.summary ?? '';
  const notes: Record<string, AttrValue> = {};
  for (const [k, v] of Object.entries(m.notes)) if (k.startsWith(`${record.pass}.`)) notes[k] = v;
  return { pass: record.pass, index: record.index, summary, notes, detail: detailOf(record.pass, m.ops()) };
}

function detailOf(pass: string, ops: readonly Op[]): PassDetail | null {
  switch (pass) {
    case 'train':
      return { kind: 'train', ops: countBy(ops, (op) => op.notes?.['train.phase']) };
    case 'fuse':
      return { kind: 'fuse', groups: fusionGroups(ops) };
    case 'tile2d':
      return { kind: 'tile2d', orientation: countBy(ops, (op) => op.notes?.['tile2d.orient']), beside_dram: ops.filter((op) => op.notes?.['tile2d.dram'] === true).length };
    case 'collectives':
      return collectiveDetail(ops);
    default:
      return null;
  }
}

function countBy(ops: readonly Op[], key: (op: Op) => AttrValue | undefined): Record<string, number> {
  const out: Record<string, number> = {};
  for (const op of ops) {
    const k = key(op);
    if (typeof k === 'string') out[k] = (out[k] ?? 0) + 1;
  }
  return out;
}

function fusionGroups(ops: readonly Op[]): FusionGroupRow[] {
  const groups = new Map<number, { blocks: string[]; linears: string[]; param_bytes: number; chunks: number }>();
  for (const op of ops) {
    const g = op.notes?.['fuse.group'];
    if (typeof g !== 'number') continue;
    let row = groups.get(g);
    if (row === undefined) groups.set(g, (row = { blocks: [], linears: [], param_bytes: 0, chunks: 1 }));
    const block = op.notes?.['fuse.block'];
    if (typeof block === 'string' && !row.blocks.includes(block)) row.blocks.push(block);
    if (op.kind !== 'linear' || op.notes?.['train.phase'] === 'bwd') continue;
    row.linears.push(op.operands[1]!.name);
    row.param_bytes += op.operands.slice(1).reduce((s, w) => s + byteSize(w.type), 0);
    const chunks = op.notes?.['fuse.chunks'];
    if (typeof chunks === 'number') row.chunks = Math.max(row.chunks, chunks);
  }
  return [...groups].sort((a, b) => a[0] - b[0]).map(([group, r]) => ({ group, ...r }));
}

function collectiveDetail(ops: readonly Op[]): PassDetail {
  const rows = new Map<string, { op: string; axis: string; algo: string; part_of: string | null; count: number; link_bytes: number; sent_bytes: number }>();
  const norms = { ops: 0, link_bytes: 0 };
  const heads = { ops: 0, link_bytes: 0 };
  const num = (op: Op, k: string) => (typeof op.notes?.[k] === 'number' ? (op.notes[k] as number) : 0);
  for (const op of ops) {
    if (op.notes?.['collective.link_bytes'] !== undefined) {
      const axis = String(op.attrs.axis ?? '');
      const algo = String(op.attrs.algo ?? '');
      const inside = op.notes['collective.part_of'];
      const part_of = typeof inside === 'string' ? inside : null;
      const key = `${op.kind}|${axis}|${algo}|${part_of}`;
      let row = rows.get(key);
      if (row === undefined) rows.set(key, (row = { op: op.kind, axis, algo, part_of, count: 0, link_bytes: 0, sent_bytes: 0 }));
      row.count++;
      row.link_bytes += num(op, 'collective.link_bytes');
      row.sent_bytes += num(op, 'collective.sent_bytes');
    }
    if (op.notes?.['norm.link_bytes'] !== undefined) {
      norms.ops++;
      norms.link_bytes += num(op, 'norm.link_bytes');
    }
    if (op.notes?.['attention.link_bytes'] !== undefined) {
      heads.ops++;
      heads.link_bytes += num(op, 'attention.link_bytes');
    }
  }
  const order = (r: CollectiveRow) => [r.part_of ?? '', r.op, r.axis, r.algo];
  const collectives = [...rows.values()].sort((a, b) => {
    const [x, y] = [order(a), order(b)];
    const k = x.findIndex((v, i) => v !== y[i]);
    return k < 0 ? 0 : x[k]! < y[k]! ? -1 : 1;
  });
  return { kind: 'collectives', collectives, norm_row_sums: norms, split_heads: heads };
}
