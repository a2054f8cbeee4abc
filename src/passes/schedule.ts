// schedule: the last pass — order the work of every die, allocate its buffers, and emit the
// per-die programs (src/backend/program.ts). One walk over the IR builds a shared skeleton
// (instructions, buffers, dependencies, allocation); a die's program differs from another's
// only in tile ranges, byte and work counts, and collective groups, evaluated on demand
// (`programFor(die)`), so 1024 dies cost one walk.
//
// Order (paper §III-B, Fig. 5): forward through the fusion groups in order, then — training —
// backward through them in reverse, each group's weight update right after its backward loop
// (Algorithm 1 step 8). Each stage (group × phase) is
//   prologue  DRAM reads of the group's weights (once, §III-B: reused by every mini-batch),
//             what needs only them (a weight's own collectives), and zeroing of its gradient
//             accumulators (Algorithm 1: "initialize dW held by B_W");
//   loop      over mini-batches: DRAM reads of the mini-batch's inputs, compute, collectives,
//             DRAM writes of what later stages need. A Linear's backward runs in Algorithm 1's
//             order (dx and its reduce-scatter before x is gathered for dw); a Linear marked
//             `fuse.chunks` runs as a nested loop over column chunks of its streamed output
//             (or dy, backward), and its weights stream too when the group's do not fit;
//   epilogue  what needs the whole batch: weight updates, DRAM writes of gradients.
// Ops marked `tile2d.dram` run beside DRAM: no die instructions; their results are read from
// DRAM. A value made in one stage and used in another (or by DRAM-side ops, or an output) is
// written to DRAM once, in its whole (reduced) layout when its stage made one.
// Buffers are allocated with lifetimes (largest first, lowest free offset); every hazard of
// the resulting reuse becomes a dependency, and a DRAM read in a loop depends only on its
// buffer being free (`carried`), which is how the program lets DRAM traffic overlap
// computation (§III-B a).
//
// Sections, in order: analysis (where each op runs, what goes to DRAM), geometry (per-die
// tiles), the skeleton (instructions and dependencies), emission (one stage at a time),
// allocation, the program set, and the pass.

import type { Module, Op, Value } from '../ir/module.js';
import { opDef } from '../ir/ops.js';
import { DTYPES, numel, type TensorType } from '../ir/types.js';
import { assert, assertNever, formatLoc } from '../diagnostics/diagnostic.js';
import type { Target } from '../target/target.js';
import { bytes } from '../util/format.js';
import type { Pass, Strategy } from './pass.js';
import {
  blockIndex,
  blockRange,
  evenTiles,
  formatSharding,
  groupOf,
  matrixView,
  parseSharding,
  REPLICATED,
  span,
  tileOf,
  type Axis,
  type Die,
  type Grid,
  type Sharding,
} from './sharding.js';
import {
  emptyTotals,
  type BufferDecl,
  type BufferKind,
  type CollectiveOp,
  type InstrCommon,
  type Instruction,
  type LoopOver,
  type Phase,
  type Program,
  type ProgramTotals,
  type Range,
} from '../backend/program.js';

// =============================================================================================
// Analysis: which values scale with the batch, where every die op runs, what goes to DRAM.

/** Where in a stage an op runs: before its mini-batch loop, in it, or after it. */
const PARTS = ['prologue', 'body', 'epilogue'] as const;
type StagePart = (typeof PARTS)[number];

/** A place in the program order: a stage and a part of it. */
interface Slot {
  readonly stage: number;
  readonly part: StagePart;
}

interface StagePlan {
  readonly index: number;
  readonly phase: 'fwd' | 'bwd';
  readonly prologue: readonly Op[];
  readonly body: readonly Op[];
  readonly epilogue: readonly Op[];
}

interface Analysis {
  readonly m: Module;
  readonly grid: Grid;
  readonly batch: number;
  readonly size: number;
  readonly count: number;
  readonly lastSize: number;
  readonly batched: ReadonlySet<Value>;
  readonly slots: ReadonlyMap<Op, Slot>;
  readonly stages: readonly StagePlan[];
  /** Values written to DRAM, each mapped to the logical tensor (root) it is a layout of. */
  readonly writes: ReadonlyMap<Value, Value>;
  readonly specs: SpecCache;
}

function isDramSide(op: Op): boolean {
  return op.notes?.['tile2d.dram'] === true;
}

function isCollective(op: Op): boolean {
  return opDef(op.kind).category === 'collective';
}

/** The value a chain of collectives started from: collectives change layouts, not tensors. */
function rootOf(v: Value): Value {
  let r = v;
  while (r.def && isCollective(r.def)) r = r.def.operands[0]!;
  return r;
}

class SpecCache {
  private readonly cache = new Map<Op, { in: (Sharding | undefined)[]; out: Sharding[] }>();

  /** One spec per operand (undefined: read from DRAM as it lies), from tile2d's notes. */
  in(op: Op): (Sharding | undefined)[] {
    return this.get(op).in;
  }

  out(op: Op): Sharding[] {
    return this.get(op).out;
  }

  private get(op: Op): { in: (Sharding | undefined)[]; out: Sharding[] } {
    let s = this.cache.get(op);
    if (!s) {
      const text = (key: string) => {
        const t = op.notes?.[key];
        assert(typeof t === 'string', `${op.kind} '${op.results[0]?.name}' has no ${key} note: run tile2d first`);
        return t.split('; ');
      };
      s = {
        in: op.operands.length ? text('tile2d.in').map((t) => (t === 'dram' ? undefined : parseSharding(t))) : [],
        out: text('tile2d.out').map(parseSharding),
      };
      this.cache.set(op, s);
    }
    return s;
  }
}

/**
 * Values that scale with the batch: inputs with the batch as leading dimension, and results
 * that keep it (a reduction over the batch, like a bias or position-table gradient, does not).
 */
export function batchedValues(m: Module, batch: number): Set<Value> {
  const out = new Set<Value>(m.inputs.filter((v) => v.type.shape[0] === batch));
  for (const op of m.ops()) {
    if (op.kind === 'sgd' || op.kind === 'adam' || !keepsBatch(op)) continue;
    const wrt = op.attrs.wrt as readonly number[] | undefined;
    op.results.forEach((r, i) => {
      const from = wrt ? [op.operands[wrt[i]!]!] : op.operands;
      if (r.type.shape[0] === batch && from.some((v) => out.has(v))) out.add(r);
    });
  }
  return out;
}

function keepsBatch(op: Op): boolean {
  if (op.kind === 'reduce') {
    const rank = op.operands[0]!.type.shape.length;
    return !(op.attrs.axes as readonly number[]).some((a) => (a < 0 ? a + rank : a) === 0);
  }
  if (op.kind === 'transpose') return (op.attrs.perm as readonly number[])[0] === 0;
  return true;
}

function isBatchedOp(op: Op, batched: ReadonlySet<Value>): boolean {
  return op.operands.some((v) => batched.has(v)) || op.results.some((v) => batched.has(v));
}

function laterSlot(a: Slot, b: Slot): Slot {
  if (a.stage !== b.stage) return a.stage > b.stage ? a : b;
  return PARTS.indexOf(a.part) >= PARTS.indexOf(b.part) ? a : b;
}

/**
 * Stage of each die op: forward group g is stage g; backward group g is stage 2G−1−g (Fig. 5:
 * backward runs the groups in reverse); updates join their group's backward stage. Batched work
 * runs in the stage's loop; the rest before it (a weight's collectives: once, reused by every
 * mini-batch) or, when it needs the loop's accumulated results or is an update, after it. An op
 * never runs before what it reads: it moves to its producers' place when the notes say earlier.
 */
function assignSlots(m: Module, batched: ReadonlySet<Value>): Map<Op, Slot> {
  const groups = (m.notes['fuse.groups'] as number | undefined) ?? 1;
  const slots = new Map<Op, Slot>();
  const beside = new Map<Op, Slot>();
  for (const op of m.ops()) {
    let s: Slot | undefined;
    for (const v of op.operands) {
      const p = v.def && (slots.get(v.def) ?? beside.get(v.def));
      if (p) s = s ? laterSlot(s, p) : p;
    }
    if (isDramSide(op)) {
      // DRAM-side work runs once its die-made inputs are complete: after their loop.
      if (s) beside.set(op, { stage: s.stage, part: 'epilogue' });
      continue;
    }
    const group = (op.notes?.['fuse.group'] as number | undefined) ?? 0;
    const phase = op.notes?.['train.phase'] ?? 'fwd';
    const perBatch = isBatchedOp(op, batched);
    const noted: Slot = { stage: phase === 'fwd' ? group : 2 * groups - 1 - group, part: phase === 'update' ? 'epilogue' : perBatch ? 'body' : 'prologue' };
    s = s ? laterSlot(s, noted) : noted;
    if (perBatch && s.part === 'epilogue') s = { stage: s.stage + 1, part: 'body' };
    if (!perBatch && s.part === 'body') s = { stage: s.stage, part: 'epilogue' };
    slots.set(op, s);
  }
  return slots;
}

function planStages(m: Module, slots: ReadonlyMap<Op, Slot>): StagePlan[] {
  const groups = (m.notes['fuse.groups'] as number | undefined) ?? 1;
  const byStage = new Map<number, Record<StagePart, Op[]>>();
  for (const op of m.ops()) {
    const s = slots.get(op);
    if (!s) continue;
    const st = byStage.get(s.stage) ?? { prologue: [], body: [], epilogue: [] };
    st[s.part].push(op);
    byStage.set(s.stage, st);
  }
  return [...byStage.entries()]
    .sort((a, b) => a[0] - b[0])
    .map(([index, st]) => ({ index, phase: index < groups ? 'fwd' : 'bwd', ...st }));
}

/** A value and every layout of it the collectives made (breadth-first from the value). */
function family(m: Module, v: Value): Value[] {
  const out = [v];
  for (let i = 0; i < out.length; i++) {
    for (const u of m.users(out[i]!)) if (isCollective(u)) out.push(u.results[0]!);
  }
  return out;
}

/**
 * Which die-made values go to DRAM: those read by a later stage, by DRAM-side ops or as
 * outputs. Of all the layouts its own stage made, the whole one (no partial sum) with the
 * smallest tiles is written, so DRAM holds the tensor once.
 */
function chooseWrites(m: Module, slots: ReadonlyMap<Op, Slot>, specs: SpecCache, grid: Grid): Map<Value, Value> {
  const writes = new Map<Value, Value>();
  const outputs = new Set(m.outputs);
  const stageOf = (v: Value) => slots.get(v.def!)?.stage;
  for (const op of slots.keys()) {
    if (isCollective(op)) continue;
    for (const root of op.results) {
      const fam = family(m, root);
      const leaves = (f: Value) => outputs.has(f) || m.users(f).some((u) => isDramSide(u) || slots.get(u)!.stage !== stageOf(f));
      if (!fam.some(leaves)) continue;
      const home = fam.filter((f) => stageOf(f) === stageOf(root));
      const cost = (f: Value) => {
        const s = specs.out(f.def!)[f.def!.results.indexOf(f)]!;
        return (s.partial.length ? 1e30 : 0) + tileElems(f.type, s, grid);
      };
      const best = home.reduce((a, b) => (cost(b) < cost(a) ? b : a));
      writes.set(best, root);
    }
  }
  return writes;
}

function analyse(m: Module, target: Target): Analysis {
  const grid = { rows: target.package.rows, cols: target.package.cols };
  const batch = (m.notes['minibatch.batch'] as number | undefined) ?? m.inputs[0]?.type.shape[0] ?? 1;
  const size = Math.min(batch, (m.notes['minibatch.size'] as number | undefined) ?? batch);
  const count = Math.ceil(batch / size);
  const batched = batchedValues(m, batch);
  const slots = assignSlots(m, batched);
  const specs = new SpecCache();
  return {
    m,
    grid,
    batch,
    size,
    count,
    lastSize: batch - (count - 1) * size,
    batched,
    slots,
    stages: planStages(m, slots),
    writes: chooseWrites(m, slots, specs, grid),
    specs,
  };
}

// =============================================================================================
// Geometry helpers: per-die tiles, evaluated on demand.

function len(r: Range): number {
  return r[1] - r[0];
}

/** Elements of the largest tile (for buffer sizes, identical on every die). */
function tileElems(t: TensorType, s: Sharding | undefined, grid: Grid): number {
  const { rows, cols } = matrixView(t);
  const sp = s ?? REPLICATED;
  return Math.ceil(rows / span(sp.rows, grid)) * Math.ceil(cols / span(sp.cols, grid));
}

function dieTileElems(t: TensorType, s: Sharding | undefined, grid: Grid, die: Die): number {
  const tile = tileOf(t, s ?? REPLICATED, grid, die);
  return len(tile.rows) * len(tile.cols);
}

function even(t: TensorType, s: Sharding | undefined, grid: Grid): boolean {
  return s === undefined || evenTiles(t, s, grid);
}

/** This die's block of a contraction of length `n` split over `axes` (a partial sum's axes). */
function contraction(n: number, axes: readonly Axis[], grid: Grid, die: Die): number {
  return len(blockRange(n, span(axes, grid), blockIndex(axes, grid, die)));
}

function elemBytes(t: TensorType): number {
  return DTYPES[t.dtype].bytes;
}

/** The type of one mini-batch of a batched tensor. */
function minibatchType(t: TensorType, size: number): TensorType {
  return { dtype: t.dtype, shape: [size, ...t.shape.slice(1)] };
}

/** The die at block `index` along `axes`, keeping `die`'s coordinates on the other axes. */
function dieAtBlock(axes: readonly Axis[], grid: Grid, index: number, die: Die): Die {
  let rest = index;
  let i = die.i;
  let j = die.j;
  for (let k = axes.length - 1; k >= 0; k--) {
    const n = axes[k] === 'r' ? grid.rows : grid.cols;
    if (axes[k] === 'r') i = rest % n;
    else j = rest % n;
    rest = Math.floor(rest / n);
  }
  return { i, j };
}

// =============================================================================================
// The skeleton: instructions shared by every die, with per-die fields computed on demand.

interface Origin {
  readonly phase: Phase;
  readonly layer: number | null;
  readonly block: string | null;
  readonly loc: string | null;
}

function originOf(op: Op): Origin {
  return {
    phase: (op.notes?.['train.phase'] as Phase | undefined) ?? 'fwd',
    layer: op.layer ?? null,
    block: (op.notes?.['fuse.block'] as string | undefined) ?? null,
    loc: op.loc ? formatLoc(op.loc) : null,
  };
}

interface DramFields {
  readonly rows: Range;
  readonly cols: Range;
  readonly bytes: number;
}

interface GemmFields {
  readonly batch: number;
  readonly m: number;
  readonly n: number;
  readonly k: number;
}

interface VectorFields {
  readonly elements: number;
  readonly flops: number;
}

interface GroupFields {
  readonly cid: string;
  readonly group: Range[];
  readonly position: number;
}

/** What an instruction is: fields shared by every die, and a function for those that differ. */
type Static =
  | { readonly kind: 'dram.read' | 'dram.write'; readonly tensor: string; readonly tile: (die: Die) => DramFields }
  | { readonly kind: 'gemm'; readonly op: string; readonly accumulate: boolean; readonly dims: (die: Die) => GemmFields }
  | { readonly kind: 'vector'; readonly op: string; readonly accumulate: boolean; readonly work: (die: Die) => VectorFields }
  | {
      readonly kind: 'collective';
      readonly op: CollectiveOp;
      readonly algo: string;
      readonly axis: string;
      readonly sentBytes: number;
      readonly linkBytes: number;
      readonly steps: number;
      readonly partOf: string | null;
      readonly members: (die: Die) => GroupFields;
    }
  | { readonly kind: 'loop'; readonly over: LoopOver; readonly count: number; readonly size: number; readonly lastSize: number };

interface SNode {
  id: number;
  /** Last id of the subtree (a loop's body); the node's own id otherwise. */
  end: number;
  readonly parent: SNode | null;
  readonly body: SNode[];
  readonly origin: Origin;
  readonly fixed: Static;
  readonly reads: Buf[];
  readonly writes: Buf[];
  readonly deps: Set<SNode>;
  readonly carried: Set<SNode>;
  /** The per-die counts are the same on every die (even tiles, no replica-only writes). */
  readonly uniform: boolean;
}

interface Buf {
  readonly name: string;
  readonly kind: BufferKind;
  readonly bytes: number;
  readonly tensor: string;
  /** A DRAM read's target inside a loop: reserved for the whole body, so the next read overlaps. */
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
function commonScope(a: SNode | null, b: SNode | null): SNode | null {
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
function lift(n: SNode, scope: SNode | null): SNode {
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
function addDep(from: SNode, to: SNode): void {
  if (from === to) return;
  const t = lift(to, commonScope(from.parent, to.parent));
  if (!contains(t, from)) from.deps.add(t);
}

/** In `loop`, iteration n+1 of `x` waits for iteration n of `y`. */
function addCarried(x: SNode, y: SNode, loop: SNode): void {
  lift(x, loop).carried.add(lift(y, loop));
}

/** Record an instruction's buffer accesses and the data dependencies they imply. */
function touch(n: SNode, accumulate: boolean): void {
  for (const b of n.reads) {
    for (const w of b.writers) addDep(n, w);
    b.readersSince.push(n);
    b.accessors.push(n);
  }
  for (const b of n.writes) {
    for (const w of b.writers) addDep(n, w);
    if (!accumulate) for (const r of b.readersSince) addDep(n, r);
    b.writers = accumulate ? [...b.writers, n] : [n];
    if (!accumulate) b.readersSince = [];
    if (!b.accessors.includes(n)) b.accessors.push(n);
  }
  // An accumulation into a buffer that outlives the loop orders its own iterations.
  if (accumulate && n.parent) addCarried(n, n, n.parent);
}

// =============================================================================================
// Emission: one stage at a time, each op into the place its slot says.

/** Where instructions go: a stage's top level (prologue/epilogue), its loop body, or a chunk loop. */
interface Place {
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
interface ChunkPlan {
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

/** This die's part of an attention core: query rows, q columns, heads (or one head's slice) and their width. */
interface HeadTile {
  readonly rows: number;
  readonly qc: number;
  readonly hd: number;
  readonly kd: number;
}

interface AttentionCore {
  readonly geo: (die: Die) => HeadTile;
  readonly scores: Buf;
  /** Key length. */
  readonly t: number;
  readonly qs: Sharding;
  readonly origin: Origin;
  readonly uniform: boolean;
  /** Backward needs dP and the softmax gradient (dq or dk requested). */
  readonly needsDs: boolean;
  readonly vectorFlops: number;
  /** This die's share of the op's work. */
  readonly share: (g: HeadTile) => number;
}

/** One half of a Linear's backward: dx (and db), or dw. */
type Part = 'dx' | 'dw';

/** An entry of a loop body: an op (or half of a Linear's backward), or a chunk loop. */
type Item = { readonly op: Op; readonly part?: Part } | ChunkPlan;

/** An op's operand buffers by operand index, read when first asked for (shape-only operands: none). */
type Operands = (k: number) => Buf[];

const LOOP_ORIGIN = (phase: Phase): Origin => ({ phase, layer: null, block: null, loc: null });

class Builder {
  readonly top: SNode[] = [];
  readonly buffers: Buf[] = [];
  readonly dramWriters = new Map<Value, SNode>();
  private readonly names = new Set<string>();
  private readonly forwardChunks = new Map<Value, number>();

  constructor(readonly a: Analysis, readonly target: Target) {
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
    const n: SNode = { id: -1, end: -1, parent: place.loop, body: [], origin, fixed, reads: unique(reads), writes: unique(writes), deps: new Set(), carried: new Set(), uniform };
    place.list.push(n);
    touch(n, accumulate);
    return n;
  }

  loop(place: Place, origin: Origin, over: LoopOver, count: number, size: number, lastSize: number): SNode {
    const fixed: Static = { kind: 'loop', over, count, size, lastSize };
    const n: SNode = { id: -1, end: -1, parent: place.loop, body: [], origin, fixed, reads: [], writes: [], deps: new Set(), carried: new Set(), uniform: true };
    place.list.push(n);
    // A nested loop's instances follow each other across the outer loop's iterations.
    if (place.loop) addCarried(n, n, place.loop);
    return n;
  }

  buffer(name: string, kind: BufferKind, size: number, tensor: string, resident: boolean): Buf {
    let free = name;
    for (let i = 2; this.names.has(free); i++) free = `${name}#${i}`;
    this.names.add(free);
    const b: Buf = { name: free, kind, bytes: Math.ceil(size), tensor, resident, accessors: [], writers: [], readersSince: [], live: [0, 0], offset: 0 };
    this.buffers.push(b);
    return b;
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
    // A die holding a replica of what is written stays silent; die 0 along those axes writes.
    const replicated = kind === 'dram.write' ? (['r', 'c'] as const).filter((x) => ![...s.rows, ...s.cols, ...s.partial].includes(x)) : [];
    const eb = elemBytes(type);
    const tile = (die: Die): DramFields => {
      const t = tileOf(rowsType, s, grid, die);
      const owner = replicated.every((x) => (x === 'r' ? die.i : die.j) === 0);
      return { rows: t.rows, cols: t.cols, bytes: owner ? dieTileElems(type, s, grid, die) * eb * scale : 0 };
    };
    const uniform = replicated.length === 0 && even(type, s, grid) && even(rowsType, s, grid);
    return this.node(place, origin, { kind, tensor: tensor.name, tile }, kind === 'dram.read' ? [] : bufs, kind === 'dram.read' ? bufs : [], uniform);
  }
}

function unique<T>(xs: readonly T[]): T[] {
  return [...new Set(xs)];
}

function isShapeOnly(op: Op, k: number): boolean {
  const specs = opDef(op.kind).operands;
  return specs[Math.min(k, specs.length - 1)]?.shapeOnly === true;
}

/** Ops that only re-view their operand's tiles (a last-axis split or concat that keeps the layout, a reshape). */
function isView(op: Op, specs: SpecCache): boolean {
  if (op.kind !== 'split' && op.kind !== 'concat' && op.kind !== 'reshape') return false;
  const all = [...specs.in(op), ...specs.out(op)];
  const first = all[0];
  if (!first || !all.every((s) => s !== undefined && formatSharding(s) === formatSharding(first))) return false;
  if (op.kind === 'reshape') return op.operands[0]!.type.shape.at(-1) === op.results[0]!.type.shape.at(-1);
  return first.cols.length > 0 || (first.rows.length === 0 && first.partial.length === 0);
}

/**
 * Move each all-gather (and broadcast) down to just before the first item that reads it: its
 * result is larger than its input, so it should live as briefly as possible. The IR's order
 * (ready ops by creation) often leaves them early, as collectives are created last.
 */
function sinkGathers(items: readonly Item[]): Item[] {
  const out = [...items];
  for (let i = out.length - 1; i >= 0; i--) {
    const it = out[i]!;
    if ('lead' in it || it.part || (it.op.kind !== 'all_gather' && it.op.kind !== 'broadcast')) continue;
    const r = it.op.results[0]!;
    let j = i + 1;
    while (j < out.length && !reads(out[j]!, r)) j++;
    if (j === out.length || j === i + 1) continue;
    out.splice(i, 1);
    out.splice(j - 1, 0, it);
  }
  return out;
}

/** Whether a body item reads `v` (a Linear's backward halves read dy, and x only for dw). */
function reads(it: Item, v: Value): boolean {
  if ('lead' in it) return it.ops.some((o) => o.operands.includes(v));
  const last = it.op.operands.length - 1;
  return it.op.operands.some((x, k) => x === v && (it.part === undefined || k === last || (it.part === 'dw') === (k === 0)));
}

/** Collectives of the same body fed (transitively) by `v`, in dataflow order. */
function collectiveConsumers(m: Module, v: Value, free: (u: Op) => boolean): Op[] {
  const out: Op[] = [];
  const queue = [v];
  for (let x = queue.shift(); x; x = queue.shift()) {
    for (const u of m.users(x)) {
      if (!free(u) || out.includes(u)) continue;
      out.push(u);
      queue.push(u.results[0]!);
    }
  }
  return out;
}

/** The chain of collectives of the same body making `v` for `user` alone (nothing else reads its links), first first. */
function collectiveProducers(m: Module, v: Value, user: Op, free: (u: Op) => boolean): Op[] {
  const chain: Op[] = [];
  const readers = new Set<Op>([user]);
  let x = v;
  while (x.def && free(x.def) && m.users(x).every((u) => readers.has(u))) {
    chain.unshift(x.def);
    readers.add(x.def);
    x = x.def.operands[0]!;
  }
  return chain;
}

/** Emits one stage: its prologue, its mini-batch loop and its epilogue. */
class StageEmitter {
  /** Buffers holding each value available in this stage (made here; views alias their operand). */
  private readonly local = new Map<Value, Buf[]>();
  private readonly reads = new Map<string, Buf>();
  private readonly prologue: Place;
  private readonly epilogue: Place;
  private body: Place | undefined;
  private readonly afterLoop: (() => void)[] = [];
  private afterChunk: (() => void)[] = [];
  /** The chunk loop being filled: per-mini-batch reads its members need go before it. */
  private openChunk: SNode | undefined;
  private readonly streamWeights: boolean;
  /** Weights this stage streams chunk by chunk, with their chunk count (their updates stream too). */
  private readonly streamedParams = new Map<Value, number>();
  private readonly here: ReadonlySet<Op>;
  private chunkSeq = 0;

  constructor(
    private readonly b: Builder,
    private readonly plan: StagePlan,
  ) {
    const top = (): Place => ({ list: [], loop: null, rowScale: 1, chunks: 1, inBatchLoop: false, key: 'top', owned: new Set() });
    this.prologue = top();
    this.epilogue = top();
    this.here = new Set([...plan.prologue, ...plan.body, ...plan.epilogue]);
    this.streamWeights = this.weightDemand() > b.target.die.weightBufferBytes;
  }

  run(): SNode[] {
    const { a } = this.b;
    const mid: SNode[] = [];
    for (const op of this.plan.prologue) this.emitOp(op, this.prologue);
    if (this.plan.body.length) {
      const holder: Place = { ...this.prologue, list: mid };
      const loop = this.b.loop(holder, LOOP_ORIGIN(this.plan.phase), 'minibatch', a.count, a.size, a.lastSize);
      this.body = { list: loop.body, loop, rowScale: a.size / a.batch, chunks: 1, inBatchLoop: true, key: 'body', owned: new Set() };
      for (const item of this.groupBody()) {
        if ('lead' in item) this.emitChunk(item);
        else this.emitOp(item.op, this.body, undefined, false, item.part);
      }
    }
    for (const f of this.afterLoop) f();
    for (const op of this.plan.epilogue) this.emitEpilogueOp(op);
    return [...this.prologue.list, ...mid, ...this.epilogue.list];
  }

  /** Weight-buffer bytes the stage would hold: the weights it reads and its gradient accumulators. */
  private weightDemand(): number {
    const { a } = this.b;
    const body = new Set(this.plan.body);
    const seen = new Set<string>();
    let total = 0;
    for (const op of this.here) {
      op.operands.forEach((v, k) => {
        if (a.batched.has(v) || isShapeOnly(op, k) || (v.def && this.here.has(v.def))) return;
        const s = a.specs.in(op)[k];
        const key = `${rootOf(v).id}|${s ? formatSharding(s) : 'dram'}`;
        if (!seen.has(key)) total += tileElems(v.type, s, a.grid) * elemBytes(v.type);
        seen.add(key);
      });
      if (!body.has(op)) continue;
      op.results.forEach((r, i) => {
        if (!a.batched.has(r)) total += tileElems(r.type, a.specs.out(op)[i], a.grid) * elemBytes(r.type);
      });
    }
    return total;
  }

  // -- the order of a loop body ----------------------------------------------------------------

  /**
   * The body in order. A Linear's backward follows Algorithm 1: dx = dy·wᵀ and its
   * reduce-scatter (steps 2-5) before x is gathered for dw (steps 6-7), so x and dx are never
   * resident together. A streamed Linear runs as a chunk loop with what streams beside it.
   */
  private groupBody(): Item[] {
    const ops = this.plan.body;
    const inBody = new Set(ops);
    const taken = new Set<Op>();
    const plans = new Map<Op, [ChunkPlan, Op[]]>();
    const splits = new Map<Op, Op[][]>();
    for (const op of ops) {
      if (taken.has(op)) continue;
      const free = (u: Op) => isCollective(u) && inBody.has(u) && !taken.has(u);
      const c = this.b.chunksOf(op, this.streamWeights);
      if (op.kind === 'linear_grad' && !(c > 1 && this.singlePass(op, c))) {
        const wrt = op.attrs.wrt as readonly number[];
        if (!wrt.includes(0) || !wrt.some((w) => w > 0)) continue;
        const chains = [collectiveConsumers(this.b.a.m, op.results[0]!, free), collectiveProducers(this.b.a.m, op.operands[0]!, op, free)];
        splits.set(op, chains);
        for (const o of chains.flat()) taken.add(o);
      } else if (c > 1) {
        const p = this.chunkPlan(op, c, free);
        for (const o of p.ops) taken.add(o);
        // A streamed backward's dx is whole after the loop: reduce it at once.
        const after = op.kind === 'linear_grad' && (op.attrs.wrt as readonly number[])[0] === 0 ? collectiveConsumers(this.b.a.m, op.results[0]!, free) : [];
        for (const o of after) taken.add(o);
        plans.set(op, [p, after]);
      }
    }
    const out: Item[] = [];
    for (const op of ops) {
      const p = plans.get(op);
      const chains = splits.get(op);
      if (p) out.push(p[0], ...p[1].map((o) => ({ op: o })));
      else if (chains) out.push({ op, part: 'dx' }, ...chains.flat().map((o) => ({ op: o })), { op, part: 'dw' });
      else if (!taken.has(op)) out.push({ op });
    }
    return sinkGathers(out);
  }

  /**
   * Whether a streamed backward runs in one pass over dy's chunks (x and dx resident together)
   * rather than in Algorithm 1's order with dy whole: whichever holds fewer bytes.
   */
  private singlePass(op: Op, chunks: number): boolean {
    if (this.streamWeights) return true;
    const { specs, grid } = this.b.a;
    const size = (v: Value, s: Sharding | undefined) => tileElems(v.type, s, grid) * elemBytes(v.type);
    const x = size(op.operands[0]!, specs.in(op)[0]);
    const dx = (op.attrs.wrt as readonly number[])[0] === 0 ? size(op.results[0]!, specs.out(op)[0]) : 0;
    const last = op.operands.length - 1;
    const dy = size(op.operands[last]!, specs.in(op)[last]);
    return x + dx + dy / chunks < dy + Math.max(x, dx);
  }

  /**
   * Forward, the collectives reducing the Linear's output run on each chunk as it is made;
   * backward, the collectives gathering dy (and its DRAM read) produce it chunk by chunk.
   */
  private chunkPlan(lead: Op, chunks: number, free: (u: Op) => boolean): ChunkPlan {
    const { m, batched } = this.b.a;
    const streamedReads = new Set<Value>();
    let ops: Op[];
    if (lead.kind === 'linear') ops = [lead, ...collectiveConsumers(m, lead.results[0]!, free)];
    else {
      const dy = lead.operands[lead.operands.length - 1]!;
      const pre = collectiveProducers(m, dy, lead, free);
      ops = [...pre, lead];
      const source = pre.length ? pre[0]!.operands[0]! : dy;
      const chain = new Set(ops);
      const fromDram = !(source.def && this.here.has(source.def));
      if (fromDram && batched.has(source) && m.users(source).every((u) => chain.has(u) || !this.here.has(u))) streamedReads.add(source);
    }
    return { lead, chunks, ops, streamed: this.streamedIn(ops, lead), streamedReads, streamWeights: this.streamWeights };
  }

  /** Batched results used in this stage only inside the chunk loop hold one chunk at a time. */
  private streamedIn(ops: readonly Op[], lead: Op): Set<Value> {
    const members = new Set(ops);
    const out = new Set<Value>();
    for (const op of ops) {
      // dx accumulates over the chunks of dy: it stays whole.
      if (op === lead && lead.kind === 'linear_grad') continue;
      for (const r of op.results) {
        const users = this.b.a.m.users(r).filter((u) => this.here.has(u));
        if (this.b.a.batched.has(r) && users.every((u) => members.has(u))) out.add(r);
      }
    }
    return out;
  }

  private emitChunk(plan: ChunkPlan): void {
    const body = this.body!;
    const lead = plan.lead;
    const origin = originOf(lead);
    if (lead.kind === 'linear_grad' && (lead.attrs.wrt as readonly number[])[0] === 0) {
      const dx = this.result(lead, 0, body);
      this.fill(dx, lead.results[0]!.type, this.b.a.specs.out(lead)[0]!, origin, body, body.rowScale);
    }
    const loop = this.b.loop(body, origin, 'chunk', plan.chunks, 1, 1);
    const place: Place = { list: loop.body, loop, rowScale: body.rowScale, chunks: plan.chunks, inBatchLoop: true, key: `chunk${this.chunkSeq++}`, owned: new Set() };
    this.afterChunk = [];
    this.openChunk = loop;
    for (const op of plan.ops) this.emitOp(op, place, plan);
    this.openChunk = undefined;
    for (const f of this.afterChunk) f();
  }

  /** Updates of streamed weights run chunk by chunk, reading and writing DRAM. */
  private emitEpilogueOp(op: Op): void {
    const chunks = op.kind === 'sgd' || op.kind === 'adam' ? this.streamedParams.get(op.operands[0]!) : undefined;
    if (!chunks) return this.emitOp(op, this.epilogue);
    const loop = this.b.loop(this.epilogue, originOf(op), 'chunk', chunks, 1, 1);
    const place: Place = { list: loop.body, loop, rowScale: 1, chunks, inBatchLoop: false, key: `chunk${this.chunkSeq++}`, owned: new Set() };
    this.emitOp(op, place, undefined, true);
  }

  // -- operands and results ---------------------------------------------------------------------

  /** Emit `op` (or one half of a Linear's backward); operands are fetched when first needed. */
  private emitOp(op: Op, place: Place, chunk?: ChunkPlan, readsHere = false, part?: Part): void {
    const memo = new Map<number, Buf[]>();
    const ins: Operands = (k) => {
      if (!memo.has(k)) memo.set(k, this.operand(op, k, place, chunk, readsHere) ?? []);
      return memo.get(k)!;
    };
    const all = () => op.operands.flatMap((_, k) => ins(k));
    if (isView(op, this.b.a.specs)) {
      const bufs = unique(all());
      for (const r of op.results) this.local.set(r, bufs);
    } else {
      const category = opDef(op.kind).category;
      switch (category) {
        case 'collective':
          this.emitCollective(op, ins(0), place, chunk);
          break;
        case 'gemm':
          if (op.kind === 'linear_grad') this.emitLinearGrad(op, ins, place, chunk, part);
          else this.emitGemm(op, all(), place, chunk);
          break;
        case 'attention':
          this.emitAttention(op, ins, place, chunk);
          break;
        case 'vector':
        case 'movement':
          this.emitVector(op, ins, all(), place, chunk);
          break;
        default:
          assertNever(category);
      }
    }
    this.afterProduce(op, place, part);
  }

  private operand(op: Op, k: number, place: Place, chunk: ChunkPlan | undefined, readsHere: boolean): Buf[] | undefined {
    if (isShapeOnly(op, k)) return undefined;
    const v = op.operands[k]!;
    const have = this.local.get(v);
    if (have) return have;
    return [this.read(v, this.b.a.specs.in(op)[k], this.readPlace(op, v, place, chunk, readsHere), originOf(op))];
  }

  /** Batched data is read per mini-batch; weights once, before the loop (or per chunk when streamed). */
  private readPlace(op: Op, v: Value, place: Place, chunk: ChunkPlan | undefined, readsHere: boolean): Place {
    if (readsHere || chunk?.streamedReads.has(v)) return place;
    const batched = this.b.a.batched.has(v);
    if (chunk?.streamWeights && !batched && op === chunk.lead) {
      this.streamedParams.set(v, chunk.chunks);
      return place;
    }
    if (batched) {
      assert(this.body, `schedule: batched '${v.name}' read outside a mini-batch loop`);
      return this.body;
    }
    return place.inBatchLoop ? this.prologue : place;
  }

  private read(v: Value, spec: Sharding | undefined, where: Place, origin: Origin): Buf {
    const { a } = this.b;
    const root = rootOf(v);
    const key = `${root.id}|${spec ? formatSharding(spec) : 'dram'}|${where.key}`;
    const have = this.reads.get(key);
    if (have) return have;
    const batched = a.batched.has(root);
    const scale = (batched ? where.rowScale : 1) / where.chunks;
    const buf = this.b.buffer(root.name, batched ? 'activation' : 'weight', tileElems(root.type, spec, a.grid) * elemBytes(root.type) * scale, root.name, where.loop !== null);
    if (where.chunks > 1) where.owned.add(buf);
    const node = this.b.dramNode(where, origin, 'dram.read', root, spec, scale, [buf]);
    if (where === this.body && this.openChunk) where.list.splice(where.list.indexOf(this.openChunk), 0, where.list.pop()!);
    for (const w of this.b.dramSources(v)) addDep(node, w);
    this.reads.set(key, buf);
    return buf;
  }

  /** A new buffer for result `i`; a whole-batch result made in the loop is an accumulator, zeroed first. */
  private result(op: Op, i: number, place: Place, chunk?: ChunkPlan): Buf {
    const { a } = this.b;
    const r = op.results[i]!;
    const spec = a.specs.out(op)[i]!;
    const batched = a.batched.has(r);
    const streamed = chunk?.streamed.has(r) === true;
    const scale = (batched ? place.rowScale : 1) / (streamed ? place.chunks : 1);
    const buf = this.b.buffer(r.name, batched ? 'activation' : 'weight', tileElems(r.type, spec, a.grid) * elemBytes(r.type) * scale, rootOf(r).name, false);
    if (streamed) place.owned.add(buf);
    this.local.set(r, [buf]);
    if (!batched && place.inBatchLoop) this.fill(buf, r.type, spec, originOf(op), this.prologue, 1);
    return buf;
  }

  private isAccumulator(r: Value, place: Place): boolean {
    return place.inBatchLoop && !this.b.a.batched.has(r);
  }

  /** Zero an accumulator (Algorithm 1: "initialize dW[i, j] held by B_W[i, j]"). */
  private fill(buf: Buf, type: TensorType, spec: Sharding, origin: Origin, place: Place, scale: number): void {
    const grid = this.b.a.grid;
    const work = (die: Die): VectorFields => ({ elements: dieTileElems(type, spec, grid, die) * scale, flops: 0 });
    this.b.node(place, origin, { kind: 'vector', op: 'fill', accumulate: false, work }, [], [buf], even(type, spec, grid));
  }

  /** DRAM writes of what later stages read: after the value is complete in its place. */
  private afterProduce(op: Op, place: Place, part?: Part): void {
    const { a } = this.b;
    op.results.forEach((r, i) => {
      if (part && (part === 'dw') !== ((op.attrs.wrt as readonly number[])[i] === 1)) return;
      const root = a.writes.get(r);
      const bufs = this.local.get(r);
      if (!root || !bufs) return;
      const write = (where: Place) => () => this.write(root, a.specs.out(op)[i]!, bufs, where, originOf(op));
      if (this.isAccumulator(r, place)) this.afterLoop.push(write(this.epilogue));
      else if (place.chunks > 1 && !bufs.every((x) => place.owned.has(x))) this.afterChunk.push(write(this.body!));
      else write(place)();
    });
  }

  private write(root: Value, spec: Sharding, bufs: Buf[], where: Place, origin: Origin): void {
    const scale = (this.b.a.batched.has(root) ? where.rowScale : 1) / where.chunks;
    this.b.dramWriters.set(root, this.b.dramNode(where, origin, 'dram.write', root, spec, scale, bufs));
  }

  // -- instructions per op kind -----------------------------------------------------------------

  private emitCollective(op: Op, input: Buf[], place: Place, chunk?: ChunkPlan): void {
    const { a } = this.b;
    const r = op.results[0]!;
    const out = this.result(op, 0, place, chunk);
    const scale = (a.batched.has(r) ? place.rowScale : 1) / place.chunks;
    const notes = op.notes ?? {};
    const axes = [...(op.attrs.axis as string)] as Axis[];
    const fixed: Static = {
      kind: 'collective',
      op: op.kind as CollectiveOp,
      algo: op.attrs.algo as string,
      axis: op.attrs.axis as string,
      sentBytes: ((notes['collective.sent_bytes'] as number | undefined) ?? 0) * scale,
      linkBytes: ((notes['collective.link_bytes'] as number | undefined) ?? 0) * scale,
      steps: (notes['collective.steps'] as number | undefined) ?? 0,
      partOf: null,
      members: (die) => ringMembers(r.name, axes, a.grid, die),
    };
    this.b.node(place, originOf(op), fixed, input, [out], true, this.isAccumulator(r, place));
  }

  /** y = x·w (+ b), or a batched matmul: per die, the output tile times this die's block of the contraction. */
  private emitGemm(op: Op, reads: Buf[], place: Place, chunk?: ChunkPlan): void {
    const { a } = this.b;
    const y = op.results[0]!;
    const ys = a.specs.out(op)[0]!;
    const contract = op.operands[0]!.type.shape.at(-1)!;
    const out = this.result(op, 0, place, chunk);
    const rs = a.batched.has(y) ? place.rowScale : 1;
    const dims = (die: Die): GemmFields => {
      const t = tileOf(y.type, ys, a.grid, die);
      return { batch: 1, m: len(t.rows) * rs, n: len(t.cols) / place.chunks, k: contraction(contract, ys.partial, a.grid, die) };
    };
    const uniform = even(y.type, ys, a.grid) && contract % span(ys.partial, a.grid) === 0;
    const acc = this.isAccumulator(y, place);
    this.b.node(place, originOf(op), { kind: 'gemm', op: op.kind, accumulate: acc, dims }, reads, [out], uniform, acc);
  }

  /**
   * dx = dy·wᵀ, dw = xᵀ·dy, db = Σ dy (Algorithm 1: dx is reduce-scattered before x is used
   * for dw, so they are separate instructions). A streamed dy's chunks are dy's columns: they
   * split dx's contraction (accumulated) and dw's columns. When the group's weights stream,
   * dw's chunk is read, accumulated and written back per mini-batch.
   */
  private emitLinearGrad(op: Op, ins: Operands, place: Place, chunk?: ChunkPlan, part?: Part): void {
    const { a } = this.b;
    const [x, w] = op.operands as [Value, Value];
    const dyAt = op.operands.length - 1;
    const dy = op.operands[dyAt]!;
    const [kIn, nOut] = w.type.shape as [number, number];
    const rows = numel(x.type) / kIn;
    const rs = a.batched.has(dy) ? place.rowScale : 1;
    const c = place.chunks;
    const origin = originOf(op);
    const grad = (which: string, acc: boolean, reads: Buf[], out: Buf, spec: Sharding, type: TensorType, contract: number, dims: (t: { rows: Range; cols: Range }, die: Die) => GemmFields) => {
      const fixed: Static = { kind: 'gemm', op: `linear_grad:${which}`, accumulate: acc, dims: (die) => dims(tileOf(type, spec, a.grid, die), die) };
      this.b.node(place, origin, fixed, reads, [out], even(type, spec, a.grid) && contract % span(spec.partial, a.grid) === 0, acc);
    };
    (op.attrs.wrt as readonly number[]).forEach((which, i) => {
      if (part && (part === 'dw') !== (which === 1)) return;
      const r = op.results[i]!;
      const s = a.specs.out(op)[i]!;
      if (which === 0) {
        const pre = this.local.get(r)?.[0];
        const out = pre ?? this.result(op, i, place, chunk);
        grad('dx', pre !== undefined, [...ins(dyAt), ...ins(1)], out, s, r.type, nOut, (t, die) => ({
          batch: 1, m: len(t.rows) * rs, n: len(t.cols), k: contraction(nOut, s.partial, a.grid, die) / c,
        }));
      } else if (which === 1) {
        const streamed = chunk?.streamWeights === true && c > 1;
        const out = streamed ? this.streamedGradient(r, s, place, origin) : this.result(op, i, place, chunk);
        grad('dw', true, [...ins(0), ...ins(dyAt)], out, s, r.type, rows, (t, die) => ({
          batch: 1, m: len(t.rows), n: len(t.cols) / c, k: contraction(rows, s.partial, a.grid, die) * rs,
        }));
        if (streamed) this.b.dramWriters.set(r, this.b.dramNode(place, origin, 'dram.write', r, s, 1 / c, [out]));
      } else {
        const out = this.result(op, i, place, chunk);
        const dys = a.specs.in(op)[dyAt];
        const work = (die: Die): VectorFields => {
          const e = (dieTileElems(dy.type, dys, a.grid, die) * rs) / c;
          return { elements: e, flops: e };
        };
        this.b.node(place, origin, { kind: 'vector', op: 'linear_grad:db', accumulate: true, work }, ins(dyAt), [out], even(dy.type, dys, a.grid), true);
      }
    });
  }

  /** One chunk of a streamed weight gradient: read from DRAM (it starts at zero there) before accumulating. */
  private streamedGradient(r: Value, s: Sharding, place: Place, origin: Origin): Buf {
    const { a } = this.b;
    const buf = this.b.buffer(r.name, 'weight', (tileElems(r.type, s, a.grid) * elemBytes(r.type)) / place.chunks, r.name, false);
    place.owned.add(buf);
    this.b.dramNode(place, origin, 'dram.read', r, s, 1 / place.chunks, [buf]);
    return buf;
  }

  /**
   * The attention core on this die's heads (whole heads, or a slice of one when dies outnumber
   * heads): q·kᵀ into a score buffer, softmax there, then p·v. Backward follows the op
   * table's work: dP, the softmax gradient, and one GEMM per requested gradient. A head split
   * over several dies all-reduces its partial scores (forward) or dP (backward).
   */
  private emitAttention(op: Op, ins: Operands, place: Place, chunk?: ChunkPlan): void {
    const core = this.attentionCore(op, place);
    const { geo, scores, t } = core;
    const gemm = (name: string, reads: Buf[], out: Buf, dims: (g: HeadTile) => GemmFields) =>
      this.b.node(place, core.origin, { kind: 'gemm', op: `${op.kind}:${name}`, accumulate: false, dims: (die) => dims(geo(die)) }, reads, [out], core.uniform);
    const [qb, kb, vb] = [ins(0), ins(1), ins(2)];
    const mask = op.operands.length === (op.kind === 'attention' ? 4 : 5) ? ins(3) : [];
    if (op.kind === 'attention') {
      gemm('qk', [...qb, ...kb], scores, (g) => ({ batch: g.hd, m: g.rows, n: t, k: g.kd }));
      this.softmax(op, core, place, mask);
      gemm('pv', [scores, ...vb], this.result(op, 0, place, chunk), (g) => ({ batch: g.hd, m: g.rows, n: g.kd, k: t }));
      return;
    }
    const dy = ins(op.operands.length - 1);
    if (core.needsDs) {
      gemm('dp', [...dy, ...vb], scores, (g) => ({ batch: g.hd, m: g.rows, n: t, k: g.kd }));
      this.softmax(op, core, place, mask);
    }
    (op.attrs.wrt as readonly number[]).forEach((which, i) => {
      const out = this.result(op, i, place, chunk);
      if (which === 0) gemm('dq', [scores, ...kb], out, (g) => ({ batch: g.hd, m: g.rows, n: g.kd, k: t }));
      else if (which === 1) gemm('dk', [scores, ...qb], out, (g) => ({ batch: g.hd, m: t, n: g.kd, k: g.rows }));
      else gemm('dv', [scores, ...dy], out, (g) => ({ batch: g.hd, m: t, n: g.kd, k: g.rows }));
    });
  }

  /** What an attention core does on each die, and its score buffer (sized for the largest tile). */
  private attentionCore(op: Op, place: Place): AttentionCore {
    const { a } = this.b;
    const q = op.operands[0]!;
    const qs = a.specs.in(op)[0]!;
    const [b, s, hq] = q.type.shape as [number, number, number];
    const t = op.operands[1]!.type.shape[1]!;
    const d = hq / (op.attrs.heads as number);
    const rs = a.batched.has(q) ? place.rowScale : 1;
    const geo = (die: Die): HeadTile => {
      const tile = tileOf(q.type, qs, a.grid, die);
      const qc = len(tile.cols);
      return { rows: len(tile.rows) * rs, qc, hd: qc >= d ? qc / d : 1, kd: Math.min(qc, d) };
    };
    const most = { rows: Math.ceil((b * s) / span(qs.rows, a.grid)) * rs, qc: Math.ceil(hq / span(qs.cols, a.grid)) };
    const name = `${op.results[0]!.name}.scores`;
    const scores = this.b.buffer(name, 'activation', Math.max(1, most.qc / d) * most.rows * t * elemBytes(q.type), name, false);
    const wrt = (op.attrs.wrt as readonly number[] | undefined) ?? [];
    const needsDs = wrt.includes(0) || wrt.includes(1);
    const gemms = op.kind === 'attention' ? 2 : wrt.length + (needsDs ? 1 : 0);
    // The op table's work less its GEMMs (2 FLOPs a MAC) is the softmax (or its gradient).
    const vectorFlops = Math.max(0, this.opFlops(op) - 2 * gemms * b * s * t * hq);
    return { geo, scores, t, qs, origin: originOf(op), uniform: even(q.type, qs, a.grid), needsDs, vectorFlops, share: (g) => (g.rows * g.qc) / (b * s * hq) };
  }

  private softmax(op: Op, core: AttentionCore, place: Place, mask: Buf[]): void {
    this.headReduce(op, core.scores, place, core.qs);
    const work = (die: Die): VectorFields => {
      const g = core.geo(die);
      return { elements: g.hd * g.rows * core.t, flops: core.vectorFlops * core.share(g) };
    };
    this.b.node(place, core.origin, { kind: 'vector', op: `${op.kind}:softmax`, accumulate: false, work }, [core.scores, ...mask], [core.scores], core.uniform);
  }

  /** The all-reduce of partial scores among the dies sharing one head (collectives' `attention.*` notes). */
  private headReduce(op: Op, scores: Buf, place: Place, qs: Sharding): void {
    const notes = op.notes ?? {};
    const perHead = notes['attention.head_dies'];
    if (typeof perHead !== 'number' || perHead <= 1) return;
    const { a } = this.b;
    const scale = (a.batched.has(op.operands[0]!) ? place.rowScale : 1) / place.chunks;
    const fixed: Static = {
      kind: 'collective',
      op: 'all_reduce',
      algo: 'ring',
      axis: qs.cols.join(''),
      sentBytes: (notes['attention.sent_bytes'] as number) * scale,
      linkBytes: (notes['attention.link_bytes'] as number) * scale,
      steps: notes['attention.steps'] as number,
      partOf: op.kind,
      members: (die) => headMembers(`${op.results[0]!.name}.scores`, qs.cols, perHead, a.grid, die),
    };
    this.b.node(place, originOf(op), fixed, [scores], [scores], true);
  }

  /**
   * Vector and data-movement ops over this die's tiles. A weight update writes its weight (and
   * optimizer state) in place; a copy (data movement that is not a view) costs no FLOPs. A
   * gradient op with several results gets one instruction per result, each with its share of
   * the op's work, so an accumulated gradient (a norm's gamma) is its own instruction.
   */
  private emitVector(op: Op, ins: Operands, reads: Buf[], place: Place, chunk?: ChunkPlan): void {
    const { a } = this.b;
    const specs = a.specs;
    const tensors = [
      ...op.operands.map((v, k) => ({ v, s: specs.in(op)[k] })).filter((_, k) => !isShapeOnly(op, k)),
      ...op.results.map((v, i) => ({ v, s: specs.out(op)[i] as Sharding | undefined })),
    ];
    const ref = tensors.reduce((x, y) => (numel(y.v.type) > numel(x.v.type) ? y : x));
    const total = Math.max(1, numel(ref.v.type));
    const scale = (a.batched.has(ref.v) ? place.rowScale : 1) / place.chunks;
    const emit = (name: string, flops: number, outs: Buf[], acc: boolean) => {
      const work = (die: Die): VectorFields => {
        const e = dieTileElems(ref.v.type, ref.s, a.grid, die) * scale;
        return { elements: e, flops: (flops * e) / total };
      };
      this.b.node(place, originOf(op), { kind: 'vector', op: name, accumulate: acc, work }, reads, outs, even(ref.v.type, ref.s, a.grid), acc);
    };
    const wrt = op.attrs.wrt as readonly number[] | undefined;
    if (op.kind === 'sgd' || op.kind === 'adam') {
      const outs = op.results.flatMap((r, i) => {
        const bufs = ins([0, 2, 3][i]!);
        this.local.set(r, bufs);
        return bufs;
      });
      emit(op.kind, this.opFlops(op), outs, false);
    } else if (wrt && op.results.length > 1) {
      wrt.forEach((w, i) => {
        const out = this.result(op, i, place, chunk);
        emit(`${op.kind}:d${opDef(op.kind).operands[w]!.name}`, this.opFlops(op, [w]), [out], this.isAccumulator(op.results[i]!, place));
      });
    } else {
      const outs = op.results.map((_, i) => this.result(op, i, place, chunk));
      emit(op.kind, this.opFlops(op), outs, op.results.some((r) => this.isAccumulator(r, place)));
    }
  }

  /** The op table's FLOPs for the op, or for the gradients `wrt` of a gradient op (whose `fwd` is backward work). */
  private opFlops(op: Op, wrt?: readonly number[]): number {
    const attrs = wrt ? { ...op.attrs, wrt: [...wrt] } : op.attrs;
    const sig = { operands: op.operands.map((v) => v.type), results: op.results.map((v) => v.type), attrs };
    return opDef(op.kind).flops(sig).fwd;
  }
}

/** A row, column or all-die ring: the group `groupOf` gives, named the same on each of its dies. */
function ringMembers(name: string, axes: readonly Axis[], grid: Grid, die: Die): GroupFields {
  const group = groupOf(axes, grid, die);
  const key = axes.length === 2 ? 'all' : axes[0] === 'r' ? `col ${die.j}` : axes[0] === 'c' ? `row ${die.i}` : 'self';
  return { cid: `${name} ${key}`, group: group.map((g) => [g.i, g.j] as const), position: group.findIndex((g) => g.i === die.i && g.j === die.j) };
}

/** The dies holding slices of the same head: consecutive blocks of the head axes. */
function headMembers(name: string, axes: readonly Axis[], perHead: number, grid: Grid, die: Die): GroupFields {
  const idx = blockIndex(axes, grid, die);
  const first = Math.floor(idx / perHead) * perHead;
  const last = Math.min(span(axes, grid), first + perHead);
  const group: Range[] = [];
  for (let k = first; k < last; k++) {
    const d = dieAtBlock(axes, grid, k, die);
    group.push([d.i, d.j]);
  }
  const other = axes.length === 2 ? '' : axes[0] === 'r' ? ` col ${die.j}` : ` row ${die.i}`;
  return { cid: `${name} heads ${first / perHead}${other}`, group, position: idx - first };
}

// =============================================================================================
// Numbering, buffer allocation, and the dependencies buffer reuse implies.

function numberNodes(list: readonly SNode[], first: number): number {
  let next = first;
  for (const n of list) {
    n.id = next++;
    next = numberNodes(n.body, next);
    n.end = next - 1;
  }
  return next;
}

/** The innermost scope holding every access of a buffer. */
function scopeOf(buf: Buf): SNode | null {
  return buf.accessors.map((a) => a.parent).reduce((x, y) => commonScope(x, y));
}

/**
 * The instruction ids during which a buffer is reserved: from its first to its last access,
 * each access widened to the whole loop it sits in below the buffer's scope (a weight read
 * before a loop lives through all its iterations). A DRAM read's target in a loop is reserved
 * for the whole body, so the read of the next iteration can run ahead.
 */
function lifetime(buf: Buf): [number, number] {
  const scope = scopeOf(buf);
  if (buf.resident && scope) return [scope.id + 1, scope.end];
  const lifted = buf.accessors.map((x) => lift(x, scope));
  return [Math.min(...lifted.map((x) => x.id)), Math.max(...lifted.map((x) => x.end))];
}

/**
 * Offsets for buffers of one kind: largest first, each at the lowest offset free during its
 * lifetime (greedy by size, which fragments far less than first-come first-fit). Returns the peak.
 */
function allocate(bufs: readonly Buf[]): number {
  const BUCKET = 64;
  const byTime = new Map<number, Buf[]>();
  let peak = 0;
  for (const buf of [...bufs].sort((x, y) => y.bytes - x.bytes || x.live[0] - y.live[0])) {
    const [lo, hi] = [Math.floor(buf.live[0] / BUCKET), Math.floor(buf.live[1] / BUCKET)];
    const clash = new Set<Buf>();
    for (let k = lo; k <= hi; k++) {
      for (const x of byTime.get(k) ?? []) if (x.live[0] <= buf.live[1] && x.live[1] >= buf.live[0]) clash.add(x);
    }
    let offset = 0;
    for (const x of [...clash].sort((p, q) => p.offset - q.offset)) {
      if (x.offset >= offset + buf.bytes) break;
      offset = Math.max(offset, x.offset + x.bytes);
    }
    buf.offset = offset;
    peak = Math.max(peak, offset + buf.bytes);
    for (let k = lo; k <= hi; k++) byTime.set(k, [...(byTime.get(k) ?? []), buf]);
  }
  return peak;
}

interface Segment<T> {
  lo: number;
  hi: number;
  v: T;
}

/** Disjoint address segments, each with a value; `take` returns what [lo, hi) overlapped. */
function take<T>(segs: Segment<T>[], lo: number, hi: number, v: T): { segs: Segment<T>[]; hit: Segment<T>[] } {
  const next: Segment<T>[] = [];
  const hit: Segment<T>[] = [];
  for (const s of segs) {
    if (s.hi <= lo || s.lo >= hi) {
      next.push(s);
      continue;
    }
    hit.push({ lo: Math.max(s.lo, lo), hi: Math.min(s.hi, hi), v: s.v });
    if (s.lo < lo) next.push({ lo: s.lo, hi: lo, v: s.v });
    if (s.hi > hi) next.push({ lo: hi, hi: s.hi, v: s.v });
  }
  next.push({ lo, hi, v });
  return { segs: next, hit };
}

/**
 * A buffer placed where an earlier one was waits for every access of that one (in the same
 * iteration, or for the loop it sat in). Only the last earlier occupant of each address
 * matters: it waited for the one before.
 */
function reuseDeps(bufs: readonly Buf[]): void {
  let segs: Segment<Buf>[] = [];
  for (const buf of bufs) {
    if (buf.bytes === 0) continue;
    const r = take(segs, buf.offset, buf.offset + buf.bytes, buf);
    segs = r.segs;
    for (const prev of unique(r.hit.map((h) => h.v))) for (const x of lastUses(prev)) addDep(buf.accessors[0]!, x);
  }
}

/**
 * Across iterations of a loop, a buffer's first writer waits for the accesses (in the previous
 * iteration) of the last buffer of the body that shares its addresses — itself, when nothing
 * later in the body reuses them.
 */
function carriedDeps(loop: SNode, bufs: readonly Buf[]): void {
  const inLoop = bufs.filter((b) => b.bytes > 0 && b.live[0] > loop.id && b.live[1] <= loop.end);
  for (const [i, buf] of inLoop.entries()) {
    let open: Range[] = [[buf.offset, buf.offset + buf.bytes]];
    for (let k = inLoop.length - 1; k > i && open.length; k--) {
      const later = inLoop[k]!;
      const lo = later.offset;
      const hi = later.offset + later.bytes;
      if (!open.some(([a, b]) => a < hi && b > lo)) continue;
      for (const x of lastUses(later)) addCarried(buf.accessors[0]!, x, loop);
      open = open.flatMap(([a, b]): Range[] => (a >= hi || b <= lo ? [[a, b]] : ([[a, Math.min(b, lo)], [Math.max(a, hi), b]] as Range[]).filter(([p, q]) => q > p)));
    }
    if (open.length) for (const x of lastUses(buf)) addCarried(buf.accessors[0]!, x, loop);
  }
}

/** The accesses that finish last: the readers after the last write, else the last writers (each waited for the rest). */
function lastUses(buf: Buf): SNode[] {
  return buf.readersSince.length ? buf.readersSince : buf.writers;
}

function loops(list: readonly SNode[], out: SNode[] = []): SNode[] {
  for (const n of list) {
    if (n.fixed.kind !== 'loop') continue;
    out.push(n);
    loops(n.body, out);
  }
  return out;
}

/** The mini-batch loop (top-level loop) a node sits in, if any. */
function outerLoop(n: SNode | null): SNode | null {
  let x = n;
  while (x?.parent) x = x.parent;
  return x;
}

/**
 * Activations live inside mini-batch loops, so each loop is allocated alone. Its DRAM reads
 * stay reserved for the whole body (the next mini-batch's read can start as soon as this
 * one's last reader is done) unless that overflows the activation buffer; then each read
 * holds its buffer only from the read to the last use.
 */
function allocateActivations(bufs: readonly Buf[], capacity: number): number {
  const byLoop = new Map<SNode | null, Buf[]>();
  for (const b of bufs) {
    const l = outerLoop(scopeOf(b));
    byLoop.set(l, [...(byLoop.get(l) ?? []), b]);
  }
  let peak = 0;
  for (const group of byLoop.values()) {
    for (const b of group) b.live = lifetime(b);
    let p = allocate(group);
    if (p > capacity && group.some((b) => b.resident)) {
      for (const b of group) {
        b.resident = false;
        b.live = lifetime(b);
      }
      p = allocate(group);
    }
    peak = Math.max(peak, p);
  }
  return peak;
}

/** Number the skeleton, allocate both buffer kinds, add reuse dependencies; returns the peaks. */
function finish(top: readonly SNode[], buffers: readonly Buf[], target: Target): { activation: number; weight: number } {
  numberNodes(top, 0);
  const weights = buffers.filter((b) => b.kind === 'weight');
  for (const b of weights) b.live = lifetime(b);
  const peaks = {
    activation: allocateActivations(
      buffers.filter((b) => b.kind === 'activation'),
      target.die.activationBufferBytes,
    ),
    weight: allocate(weights),
  };
  const all = loops(top);
  for (const kind of ['activation', 'weight'] as const) {
    const mine = buffers.filter((b) => b.kind === kind).sort((x, y) => x.live[0] - y.live[0]);
    reuseDeps(mine);
    for (const l of all) carriedDeps(l, mine);
  }
  return peaks;
}

// =============================================================================================
// The program set: the shared skeleton, materialised per die on demand.

export interface ProgramSet {
  readonly model: string;
  readonly target: Target;
  readonly strategy: Strategy;
  readonly grid: Grid;
  readonly minibatch: { readonly batch: number; readonly size: number; readonly count: number; readonly lastSize: number };
  /** Peak bytes per die; the same on every die (buffers are sized for the largest tile). */
  readonly peak: { readonly activation: number; readonly weight: number };
  readonly buffers: readonly BufferDecl[];
  /** Instructions in each die's program (loop bodies counted once). */
  readonly instructionsPerDie: number;
  /** Every die, row by row. */
  dies(): Die[];
  programFor(die: Die): Program;
  /** What one die does per training iteration (loop bodies times their iterations). */
  totalsFor(die: Die): ProgramTotals;
}

class Programs implements ProgramSet {
  readonly buffers: readonly BufferDecl[];
  readonly instructionsPerDie: number;
  readonly grid: Grid;
  readonly minibatch: ProgramSet['minibatch'];
  private readonly common = new Map<SNode, InstrCommon>();
  private readonly uniformTotals: ProgramTotals;
  private readonly varying: { node: SNode; times: number }[] = [];

  constructor(
    readonly model: string,
    readonly target: Target,
    readonly strategy: Strategy,
    a: Analysis,
    private readonly top: readonly SNode[],
    buffers: readonly Buf[],
    readonly peak: { readonly activation: number; readonly weight: number },
  ) {
    this.grid = a.grid;
    this.minibatch = { batch: a.batch, size: a.size, count: a.count, lastSize: a.lastSize };
    this.buffers = buffers.map((b) => ({ name: b.name, kind: b.kind, bytes: b.bytes, offset: b.offset, live: b.live, tensor: b.tensor }));
    this.uniformTotals = emptyTotals();
    this.walk(top, 1);
    this.instructionsPerDie = this.common.size;
  }

  /** Freeze what every die shares, and total what is the same on every die. */
  private walk(list: readonly SNode[], times: number): void {
    const ids = (s: ReadonlySet<SNode>) => [...s].map((x) => x.id).sort((x, y) => x - y);
    for (const n of list) {
      assert([...n.deps].every((d) => d.id < n.id), `schedule: instruction ${n.id} depends on a later one`);
      this.common.set(n, { id: n.id, reads: n.reads.map((b) => b.name), writes: n.writes.map((b) => b.name), deps: ids(n.deps), carried: ids(n.carried), ...n.origin });
      if (n.uniform) addCost(this.uniformTotals, n, { i: 0, j: 0 }, times);
      else this.varying.push({ node: n, times });
      if (n.fixed.kind === 'loop') this.walk(n.body, times * (n.fixed.count - 1 + n.fixed.lastSize / n.fixed.size));
    }
  }

  dies(): Die[] {
    const out: Die[] = [];
    for (let i = 0; i < this.grid.rows; i++) for (let j = 0; j < this.grid.cols; j++) out.push({ i, j });
    return out;
  }

  programFor(die: Die): Program {
    assert(die.i >= 0 && die.i < this.grid.rows && die.j >= 0 && die.j < this.grid.cols, `no die [${die.i}, ${die.j}] in a ${this.grid.rows}x${this.grid.cols} grid`);
    const d = this.target.die;
    return {
      header: {
        model: this.model,
        target: this.target.name,
        strategy: this.strategy,
        grid: [this.grid.rows, this.grid.cols],
        die: [die.i, die.j],
        minibatch: this.minibatch,
        sram: { activationPeak: this.peak.activation, weightPeak: this.peak.weight, activationCapacity: d.activationBufferBytes, weightCapacity: d.weightBufferBytes },
      },
      buffers: this.buffers,
      instructions: this.top.map((n) => this.instr(n, die)),
    };
  }

  totalsFor(die: Die): ProgramTotals {
    const t = { ...this.uniformTotals };
    for (const { node, times } of this.varying) addCost(t, node, die, times);
    return t;
  }

  private instr(n: SNode, die: Die): Instruction {
    const c = this.common.get(n)!;
    const f = n.fixed;
    switch (f.kind) {
      case 'dram.read':
      case 'dram.write':
        return { ...c, kind: f.kind, tensor: f.tensor, ...f.tile(die) };
      case 'gemm': {
        const d = f.dims(die);
        return { ...c, kind: 'gemm', op: f.op, ...d, macs: d.batch * d.m * d.n * d.k, accumulate: f.accumulate };
      }
      case 'vector':
        return { ...c, kind: 'vector', op: f.op, ...f.work(die), accumulate: f.accumulate };
      case 'collective': {
        const g = f.members(die);
        return { ...c, kind: 'collective', op: f.op, algo: f.algo, axis: f.axis, ...g, sentBytes: f.sentBytes, linkBytes: f.linkBytes, steps: f.steps, partOf: f.partOf };
      }
      case 'loop':
        return { ...c, kind: 'loop', over: f.over, count: f.count, size: f.size, lastSize: f.lastSize, body: n.body.map((x) => this.instr(x, die)) };
      default:
        return assertNever(f);
    }
  }
}

/** Add one instruction's work on `die`, `times` over (the counterpart of program.ts's addInstr). */
function addCost(t: ProgramTotals, n: SNode, die: Die, times: number): void {
  const f = n.fixed;
  t.instructions++;
  switch (f.kind) {
    case 'dram.read':
      t.dramReadBytes += f.tile(die).bytes * times;
      break;
    case 'dram.write':
      t.dramWriteBytes += f.tile(die).bytes * times;
      break;
    case 'gemm': {
      const d = f.dims(die);
      t.macs += d.batch * d.m * d.n * d.k * times;
      break;
    }
    case 'vector':
      t.vectorFlops += f.work(die).flops * times;
      break;
    case 'collective':
      t.sentBytes += f.sentBytes * times;
      t.linkBytes += f.linkBytes * times;
      break;
    case 'loop':
      break;
    default:
      assertNever(f);
  }
}

// =============================================================================================
// The pass.

const PROGRAMS = new WeakMap<Module, ProgramSet>();

/** The programs the schedule pass made for `m` (the pass context has no output slot). */
export function programsOf(m: Module): ProgramSet | undefined {
  return PROGRAMS.get(m);
}

export function buildPrograms(m: Module, target: Target, strategy: Strategy): ProgramSet {
  const a = analyse(m, target);
  const b = new Builder(a, target);
  for (const stage of a.stages) b.top.push(...new StageEmitter(b, stage).run());
  const peak = finish(b.top, b.buffers, target);
  return new Programs(m.name, target, strategy, a, b.top, b.buffers, peak);
}

export const schedule: Pass = {
  name: 'schedule',
  summary: 'order each die’s work into loops over mini-batches, allocate its buffers and emit its program',
  options: {},
  requires: ['collectives.count'],
  establishes: ['schedule.programs'],
  run(m, ctx) {
    const set = buildPrograms(m, ctx.target, ctx.strategy);
    PROGRAMS.set(m, set);
    const die = ctx.target.die;
    const { activation, weight } = set.peak;
    const ok = activation <= die.activationBufferBytes && weight <= die.weightBufferBytes;
    Object.assign(m.notes, {
      'schedule.programs': set.grid.rows * set.grid.cols,
      'schedule.instructions_per_die': set.instructionsPerDie,
      'schedule.activation_peak_bytes': activation,
      'schedule.weight_peak_bytes': weight,
      'schedule.sram_ok': ok,
    });
    ctx.report(
      'schedule',
      `${set.grid.rows * set.grid.cols} programs of ${set.instructionsPerDie} instructions; peak SRAM per die: activation ${bytes(activation)} of ${bytes(die.activationBufferBytes)}, ` +
        `weight ${bytes(weight)} of ${bytes(die.weightBufferBytes)}${ok ? '' : ' (overflows)'}`,
    );
    const t = set.totalsFor({ i: 0, j: 0 });
    ctx.report('schedule', `die [0, 0] per iteration: DRAM ${bytes(t.dramReadBytes)} read and ${bytes(t.dramWriteBytes)} written, ${bytes(t.sentBytes)} sent, ${t.macs.toExponential(3)} MACs`);
  },
};
