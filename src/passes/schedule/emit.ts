// schedule/emit: what emission shares. `Builder` owns the skeleton being built (its top-level
// instructions, buffers and DRAM writers) and makes its nodes, loops, buffers and DRAM
// transfers; `Place` says where an instruction goes. The stage emitter is built up in layers:
// emit-values.ts (operands, results, DRAM traffic) < emit-attention.ts < emit-ops.ts (one op's
// instructions) < emit-stage.ts (a whole stage in order).

import type { Op, Value } from '../../ir/module.js';
import { opDef } from '../../ir/ops.js';
import { assert } from '../../diagnostics/diagnostic.js';
import type { Target } from '../../target/target.js';
import type { Strategy } from '../pass.js';
import { blockIndex, blockRange, formatSharding, nestedRange, REPLICATED, span, specSplits, tileOf, type Die, type Grid, type Sharding } from '../sharding.js';
import type { BufferKind, BufferView, DramLayout, LoopOver, Phase, Range } from '../../backend/program.js';
import type { TensorType } from '../../ir/types.js';
import { findParts, type Parts } from './parts.js';
import { isDramSide, rootOf, type Analysis, type SpecCache } from './analysis.js';
import { dieTileElems, elemBytes, even, len, minibatchType } from './geometry.js';
import { addCarried, touch, type Buf, type DramFields, type Origin, type SNode, type Static } from './skeleton.js';

/** Where instructions go: a stage's top level (prologue/epilogue), its loop body, or a chunk loop. */
export interface Place {
  readonly list: SNode[];
  readonly loop: SNode | null;
  /** size / batch inside the mini-batch loop (batched counts are per mini-batch), else 1. */
  readonly rowScale: number;
  /** Column chunks the place splits its work into (1 outside chunk loops). */
  readonly chunks: number;
  readonly inBatchLoop: boolean;
  /** Dedupes DRAM reads: one read per tensor, layout and place. */
  readonly key: string;
  /** Buffers holding one chunk, owned by this chunk loop. */
  readonly owned: Set<Buf>;
}

/** A streamed Linear with what runs chunk by chunk beside it. */
export interface ChunkPlan {
  readonly lead: Op;
  readonly chunks: number;
  readonly ops: readonly Op[];
  /** Results made inside the loop whose buffers hold one chunk. */
  readonly streamed: ReadonlySet<Value>;
  /** Operands read from DRAM chunk by chunk (the source of a streamed dy). */
  readonly streamedReads: ReadonlySet<Value>;
  /** The group's weights do not fit the weight buffer: the lead's weights stream too. */
  readonly streamWeights: boolean;
}

/** One half of a Linear's backward: dx (and db), or dw. */
export type Part = 'dx' | 'dw';

/** An op's operand buffers by operand index, read when first asked for (shape-only operands: none). */
export type Operands = (k: number) => Buf[];

export const LOOP_ORIGIN = (phase: Phase): Origin => ({ phase, layer: null, block: null, loc: null });

export class Builder {
  readonly top: SNode[] = [];
  readonly buffers: Buf[] = [];
  readonly dramWriters = new Map<Value, SNode>();
  private readonly names = new Set<string>();
  /** Per buffer name, a suffix below which every `name#i` is taken. */
  private readonly nextSuffix = new Map<string, number>();
  private readonly forwardChunks = new Map<Value, number>();
  /**
   * DRAM tiles by everything they depend on but the die (identical layers repeat the same
   * tiles), then by die: a package's programs evaluate each once.
   */
  private readonly dramTiles = new Map<string, (DramFields | undefined)[]>();
  /** Values whose last axis is made of parts (parts.ts). */
  readonly parts: ReadonlyMap<Value, Parts>;
  /** DRAM tensors stored part by part, by name. */
  readonly layouts = new Map<string, DramLayout>();

  constructor(readonly a: Analysis, readonly target: Target, readonly strategy: Strategy) {
    this.parts = findParts(a.m, a.specs);
    for (const op of a.m.ops()) {
      const c = op.notes?.['fuse.chunks'];
      if (op.kind === 'linear' && typeof c === 'number') this.forwardChunks.set(op.operands[1]!, c);
    }
  }

  /** Column chunks of a Linear or its gradient (a streamed gradient follows its forward's weight chunks). */
  chunksOf(op: Op, streamWeights: boolean): number {
    if (op.kind !== 'linear' && op.kind !== 'linear_grad') return 1;
    const own = (op.notes?.['fuse.chunks'] as number | undefined) ?? 1;
    return streamWeights && op.kind === 'linear_grad' ? Math.max(own, this.forwardChunks.get(op.operands[1]!) ?? 1) : own;
  }

  node(place: Place, origin: Origin, fixed: Static, reads: readonly Buf[], writes: readonly Buf[], uniform: boolean, accumulate = false): SNode {
    const n: SNode = { id: -1, end: -1, parent: place.loop, body: [], origin, fixed, reads: unique(reads), writes: unique(writes), deps: [], carried: [], uniform };
    place.list.push(n);
    touch(n, accumulate);
    return n;
  }

  loop(place: Place, origin: Origin, over: LoopOver, count: number, size: number, lastSize: number): SNode {
    const fixed: Static = { kind: 'loop', over, count, size, lastSize };
    const n: SNode = { id: -1, end: -1, parent: place.loop, body: [], origin, fixed, reads: [], writes: [], deps: [], carried: [], uniform: true };
    place.list.push(n);
    // A nested loop's instances follow each other across the outer loop's iterations.
    if (place.loop) addCarried(n, n, place.loop);
    return n;
  }

  buffer(name: string, kind: BufferKind, size: number, tensor: string, resident: boolean, view: BufferView | null): Buf {
    let free = name;
    if (this.names.has(free)) {
      // Names are never released: every suffix below the hint is taken.
      let i = this.nextSuffix.get(name) ?? 2;
      for (free = `${name}#${i}`; this.names.has(free); ) free = `${name}#${++i}`;
      this.nextSuffix.set(name, i + 1);
    }
    this.names.add(free);
    const b: Buf = { name: free, kind, bytes: Math.ceil(size), tensor, view, resident, accessors: [], writers: [], readersSince: [], live: [0, 0], offset: 0 };
    this.buffers.push(b);
    return b;
  }

  /** What a buffer holding `v` (of type `type`: its mini-batch type in a loop) under `spec` holds. */
  view(v: Value, type: TensorType, spec: Sharding | undefined, chunks: number): BufferView {
    const parts = this.parts.get(v) ?? this.parts.get(rootOf(v)) ?? null;
    return { shape: type.shape, spec: formatSharding(spec ?? REPLICATED), chunks, parts };
  }

  /** DRAM writes a read of `v` must wait for: the write of its tensor, or of a DRAM-side op's inputs. */
  dramSources(v: Value): SNode[] {
    const root = rootOf(v);
    if (!root.def) return [];
    if (isDramSide(root.def)) return root.def.operands.flatMap((x) => this.dramSources(x));
    const w = this.dramWriters.get(root);
    assert(w, `schedule: '${root.name}' is read from DRAM but its producer never writes it`);
    return [w];
  }

  dramNode(place: Place, origin: Origin, kind: 'dram.read' | 'dram.write', tensor: Value, spec: Sharding | undefined, scale: number, bufs: Buf[]): SNode {
    const { grid, size } = this.a;
    const type = tensor.type;
    const batched = this.a.batched.has(tensor);
    const rowsType = batched ? minibatchType(type, size) : type;
    const s = spec ?? REPLICATED;
    const parts = this.parts.get(tensor);
    if (parts && span(s.cols, grid) > 1 && !this.layouts.has(tensor.name)) this.layouts.set(tensor.name, { tensor: tensor.name, parts: parts.map((p) => p.size), splits: specSplits(s, 'cols', grid) });
    // The dies holding replicas of what is written share the write: each writes its block of
    // the tile's rows (k replicas, block q of k), so no die carries the whole DRAM traffic of a
    // tensor every die holds (1-D TP's replicated activations).
    const replicated = kind === 'dram.write' ? (['r', 'c'] as const).filter((x) => !s.rows.includes(x) && !s.cols.includes(x) && !s.partial.includes(x)) : [];
    const replicas = span(replicated, grid);
    const eb = elemBytes(type);
    const layout = this.layouts.get(tensor.name);
    const compute = (die: Die): DramFields => {
      const t = storedTile(tileOf(rowsType, s, grid, die), s, grid, die, layout);
      const whole = dieTileElems(type, s, grid, die) * eb * scale;
      if (replicas === 1) return { rows: t.rows, cols: t.cols, bytes: whole };
      // Blocks of rows, or of columns when only those divide evenly (a bias is one row), or
      // a grid of both (rows × columns blocks = replicas), so that every replica writes the
      // same bytes wherever the tile allows it.
      const q = blockIndex(replicated, grid, die);
      const [nr, nc] = [len(t.rows), len(t.cols)];
      const rowBlocks = replicaRowBlocks(nr, nc, replicas);
      const colBlocks = replicas / rowBlocks;
      const [a, b] = blockRange(nr, rowBlocks, Math.floor(q / colBlocks));
      const [c0, c1] = blockRange(nc, colBlocks, q % colBlocks);
      const share = nr === 0 || nc === 0 ? 0 : ((b - a) / nr) * ((c1 - c0) / nc);
      return { rows: [t.rows[0] + a, t.rows[0] + b], cols: [t.cols[0] + c0, t.cols[0] + c1], bytes: whole * share };
    };
    const key = `${kind} ${type.dtype} ${type.shape.join('x')} ${size} ${batched} ${formatSharding(s)} ${scale} ${layout ? `${layout.parts.join('+')}/${layout.splits.join('x')}` : ''}`;
    let known = this.dramTiles.get(key);
    if (known === undefined) this.dramTiles.set(key, (known = []));
    const cache = known;
    const tile = (die: Die): DramFields => (cache[die.i * grid.cols + die.j] ??= compute(die));
    // Replicas splitting an even tile evenly write equal bytes (only their rows differ): what
    // the simulators count is the same on every die.
    const evenTile = even(type, s, grid) && even(rowsType, s, grid) && !layout;
    const t0 = evenTile && replicas > 1 ? tileOf(rowsType, s, grid, { i: 0, j: 0 }) : undefined;
    const splitsEvenly = !t0 || evenReplicaSplit(len(t0.rows), len(t0.cols), replicas);
    const uniform = evenTile && splitsEvenly;
    return this.node(place, origin, { kind, tensor: tensor.name, tile }, kind === 'dram.read' ? [] : bufs, kind === 'dram.read' ? bufs : [], uniform);
  }
}

/**
 * How many blocks of rows `replicas` dies writing one nr × nc tile cut it into (the columns
 * into replicas / that many): all rows when they divide evenly, else all columns when those
 * do, else the most row blocks that leave an even grid of both; all rows when nothing is even.
 */
function replicaRowBlocks(nr: number, nc: number, replicas: number): number {
  if (nr % replicas === 0) return replicas;
  if (nc % replicas === 0) return 1;
  for (let a = replicas - 1; a > 1; a--) if (replicas % a === 0 && nr % a === 0 && nc % (replicas / a) === 0) return a;
  return replicas;
}

function evenReplicaSplit(nr: number, nc: number, replicas: number): boolean {
  const a = replicaRowBlocks(nr, nc, replicas);
  return nr % a === 0 && nc % (replicas / a) === 0;
}

/**
 * A tile's columns as DRAM stores a tensor whose last axis is made of parts (parts.ts): the
 * die's column block is every part's block, and the blocks before it are as wide as their
 * parts' blocks make them (uneven when a part does not split evenly).
 */
function storedTile(t: { rows: Range; cols: Range }, s: Sharding, grid: Grid, die: Die, layout: DramLayout | undefined): { rows: Range; cols: Range } {
  if (!layout || s.cols.length === 0) return t;
  const index = blockIndex(s.cols, grid, die);
  const starts = blockStarts(layout, index);
  return { rows: t.rows, cols: [starts[index]!, starts[index + 1]!] };
}

/**
 * Where each column block of a part-wise layout starts, up to block `index` + 1 (block b's
 * width is every part's block b): summed once per layout rather than per die, which on a
 * 64×64 grid was a sum over thousands of blocks for each of thousands of dies.
 */
function blockStarts(layout: DramLayout, index: number): number[] {
  let starts = STARTS.get(layout);
  if (starts === undefined) STARTS.set(layout, (starts = [0]));
  while (starts.length < index + 2) {
    const b = starts.length - 1;
    starts.push(starts[b]! + layout.parts.reduce((sum, p) => sum + len(nestedRange(p, layout.splits, b)), 0));
  }
  return starts;
}

const STARTS = new WeakMap<DramLayout, number[]>();

export function unique<T>(xs: readonly T[]): T[] {
  const out: T[] = [];
  for (let k = 0; k < xs.length; k++) if (!out.includes(xs[k]!)) out.push(xs[k]!);
  return out;
}

export function isShapeOnly(op: Op, k: number): boolean {
  const specs = opDef(op.kind).operands;
  return specs[Math.min(k, specs.length - 1)]?.shapeOnly === true;
}

/** Ops that only re-view their operand's tiles (a last-axis split or concat that keeps the layout, a reshape). */
export function isView(op: Op, specs: SpecCache): boolean {
  if (op.kind !== 'split' && op.kind !== 'concat' && op.kind !== 'reshape') return false;
  const all = [...specs.in(op), ...specs.out(op)];
  const first = all[0];
  if (!first || !all.every((s) => s !== undefined && formatSharding(s) === formatSharding(first))) return false;
  if (op.kind === 'reshape') return op.operands[0]!.type.shape.at(-1) === op.results[0]!.type.shape.at(-1);
  return first.cols.length > 0 || (first.rows.length === 0 && first.partial.length === 0);
}
