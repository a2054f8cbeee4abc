// schedule/skeleton: the instruction tree shared by every die. A node holds the fields every die
// shares and functions for those that differ (tile ranges, counts, collective groups), its
// buffer accesses, and the dependencies they imply, so one walk serves every die.

import type { Op } from '../../ir/module.js';
import { assert, formatLoc } from '../../diagnostics/diagnostic.js';
import type { Die } from '../sharding.js';
import type { BufferKind, BufferView, CollectiveOp, LoopOver, Phase, Range } from '../../backend/program.js';

export interface Origin {
  readonly phase: Phase;
  readonly layer: number | null;
  readonly block: string | null;
  readonly loc: string | null;
}

export function originOf(op: Op): Origin {
  return {
    phase: (op.notes?.['train.phase'] as Phase | undefined) ?? 'fwd',
    layer: op.layer ?? null,
    block: (op.notes?.['fuse.block'] as string | undefined) ?? null,
    loc: op.loc ? formatLoc(op.loc) : null,
  };
}

export interface DramFields {
  readonly rows: Range;
  readonly cols: Range;
  readonly bytes: number;
}

export interface GemmFields {
  readonly batch: number;
  readonly m: number;
  readonly n: number;
  readonly k: number;
}

export interface VectorFields {
  readonly elements: number;
  readonly flops: number;
}

export interface CollectiveSize {
  readonly sentBytes: number;
  readonly linkBytes: number;
  readonly steps: number;
}

export interface GroupFields {
  readonly cid: string;
  readonly group: Range[];
  readonly position: number;
}

/** The IR op a compute instruction carries out, and the buffers of the operands it reads. */
export interface IrNode {
  readonly op: Op;
  readonly args: readonly (readonly Buf[] | null)[];
  /** The sharding each operand is read in (null: shape only). */
  readonly specs: readonly (string | null)[];
}

/** What an instruction is: fields shared by every die, and a function for those that differ. */
export type Static =
  | { readonly kind: 'dram.read' | 'dram.write'; readonly tensor: string; readonly tile: (die: Die) => DramFields }
  | { readonly kind: 'gemm'; readonly op: string; readonly accumulate: boolean; readonly dims: (die: Die) => GemmFields; readonly ir: IrNode }
  | { readonly kind: 'vector'; readonly op: string; readonly accumulate: boolean; readonly work: (die: Die) => VectorFields; readonly ir: IrNode | null }
  | {
      readonly kind: 'collective';
      readonly op: CollectiveOp;
      readonly algo: string;
      readonly axis: string;
      readonly sentBytes: number;
      readonly linkBytes: number;
      readonly steps: number;
      readonly partOf: string | null;
      /** Names how `members` groups the dies: collectives with the same ring group them alike. */
      readonly ring: string;
      readonly members: (die: Die) => GroupFields;
      /** Per-die sizes where groups differ in size (heads dealt unevenly): replace the three above. */
      readonly sized?: (die: Die) => CollectiveSize;
    }
  | { readonly kind: 'loop'; readonly over: LoopOver; readonly count: number; readonly size: number; readonly lastSize: number };

export interface SNode {
  id: number;
  /** Last id of the subtree (a loop's body); the node's own id otherwise. */
  end: number;
  readonly parent: SNode | null;
  readonly body: SNode[];
  readonly origin: Origin;
  readonly fixed: Static;
  readonly reads: Buf[];
  readonly writes: Buf[];
  /** Instructions this one waits for, and (in a loop) those of the previous iteration; each once. */
  readonly deps: SNode[];
  readonly carried: SNode[];
  /** The per-die counts are the same on every die (even tiles, no replica-only writes). */
  readonly uniform: boolean;
}

export interface Buf {
  readonly name: string;
  readonly kind: BufferKind;
  readonly bytes: number;
  readonly tensor: string;
  readonly view: BufferView | null;
  /** Reserved for the whole loop body: a DRAM read's target (the next read overlaps), or a value written back (allocate.ts). */
  resident: boolean;
  readonly accessors: SNode[];
  writers: SNode[];
  readersSince: SNode[];
  live: [number, number];
  offset: number;
}

function depth(n: SNode | null): number {
  let d = 0;
  for (let x = n; x; x = x.parent) d++;
  return d;
}

/** The innermost loop containing both scopes (null: top level). */
export function commonScope(a: SNode | null, b: SNode | null): SNode | null {
  let x = a;
  let y = b;
  let dx = depth(x);
  let dy = depth(y);
  for (; dx > dy; dx--) x = x!.parent;
  for (; dy > dx; dy--) y = y!.parent;
  while (x !== y) {
    x = x!.parent;
    y = y!.parent;
  }
  return x;
}

/** The ancestor-or-self of `n` directly in `scope`'s body. */
export function lift(n: SNode, scope: SNode | null): SNode {
  let x = n;
  while (x.parent !== scope) {
    assert(x.parent, 'lift: node is not inside the scope');
    x = x.parent;
  }
  return x;
}

function contains(outer: SNode, n: SNode): boolean {
  for (let x: SNode | null = n; x; x = x.parent) if (x === outer) return true;
  return false;
}

/** `from` waits for `to` (same iteration of every loop holding both, or `to`'s loop whole). */
export function addDep(from: SNode, to: SNode): void {
  if (from === to) return;
  const t = lift(to, commonScope(from.parent, to.parent));
  if (!contains(t, from) && !from.deps.includes(t)) from.deps.push(t);
}

/** In `loop`, iteration n+1 of `x` waits for iteration n of `y`. */
export function addCarried(x: SNode, y: SNode, loop: SNode): void {
  const from = lift(x, loop);
  const to = lift(y, loop);
  if (!from.carried.includes(to)) from.carried.push(to);
}

/** Record an instruction's buffer accesses and the data dependencies they imply. */
export function touch(n: SNode, accumulate: boolean): void {
  // (Indexed loops: this runs once per instruction, mostly before the JIT has warmed up.)
  for (let k = 0; k < n.reads.length; k++) {
    const b = n.reads[k]!;
    for (let i = 0; i < b.writers.length; i++) addDep(n, b.writers[i]!);
    b.readersSince.push(n);
    b.accessors.push(n);
  }
  for (let k = 0; k < n.writes.length; k++) {
    const b = n.writes[k]!;
    for (let i = 0; i < b.writers.length; i++) addDep(n, b.writers[i]!);
    if (!accumulate) for (let i = 0; i < b.readersSince.length; i++) addDep(n, b.readersSince[i]!);
    if (accumulate) b.writers.push(n);
    else b.writers = [n];
    if (!accumulate) b.readersSince = [];
    if (!b.accessors.includes(n)) b.accessors.push(n);
  }
  // An accumulation into a buffer that outlives the loop orders its own iterations.
  if (accumulate && n.parent) addCarried(n, n, n.parent);
}
