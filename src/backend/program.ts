// The per-die program: the contract between the compiler and the simulators (STYLE 10). One
// program per die [i, j]: a header, buffer declarations (every instruction operand names one,
// so SRAM capacity is checked, not assumed) and instructions with data dependencies, loops
// over mini-batches and over column chunks, and the IR location each came from (STYLE 13).
// This file holds the types, a deterministic text printer, the JSON form (fixed key order,
// snake_case) and its parser, and the sums (per-block traffic, per-die totals) readers need.
//
// How a simulator reads a program:
// - Instructions are listed in a valid sequential order; ids grow in that order (a loop's id
//   comes before its body's). An instruction may start once every instruction in `deps` has
//   completed. A dep names an instruction of the same loop body (same iteration) or of an
//   enclosing scope (its current instance); a loop named as a dep stands for all its iterations.
// - `loop`: `count` iterations of `body`. Body counts (bytes, MACs, elements) are for one full
//   iteration; the last iteration does `last_size / size` of them (a partial mini-batch).
//   Chunk loops split one streamed Linear (or a streamed weight's update) into `count` equal
//   column chunks (size = last_size = 1). In a minibatch loop, tiles of batched tensors are
//   row ranges of the mini-batch's own 2-D view (iteration n starts n·size samples further);
//   in a chunk loop iteration k covers the k-th of `count` equal column slices of the tile.
// - `carried`: loop-carried dependencies. Instance n+1 of an instruction waits for instance n
//   of each instruction named (same body). They come from buffer reuse only: a DRAM read of
//   mini-batch n+1 depends on nothing of its own iteration and carries only on the last users
//   of its buffer in mini-batch n, so it overlaps mini-batch n's compute (§III-B a). Every
//   hazard of buffers sharing SRAM (the allocator's offsets) is in deps or carried.
// - `accumulate`: the instruction adds into its output (weight gradients across mini-batches,
//   Algorithm 1 step 8; dx across the chunks of a streamed dy); `vector fill` zeroes the
//   accumulator first. A streamed weight gradient accumulates in DRAM (zero there at the start).
// - `op` names the IR op kind, with the step after a colon when one op is several
//   instructions (`linear_grad:dx`, `linear_grad:dw`, `attention:qk`, `layernorm_grad:dgamma`).
// - DRAM traffic is by logical tensor: `tensor` with the row and column ranges of its 2-D
//   view. The dies holding replicas of what is written share the write: each writes its block
//   of the tile's rows (rows and bytes say which; a die whose block is empty writes 0 B). A tensor the IR leaves as a partial sum is written by every die
//   holding a part, each to a copy of its own; a die reading it back reads its own part, and a
//   collective after the read reduces the parts. A streamed weight gradient is zero in DRAM
//   before its first chunk is written.
// - Buffers say which numbers they hold (`view`); compute instructions name their IR op and
//   the buffers of its operands (`ir`). Normalizations whose rows span dies and attention cores
//   whose heads span dies run in steps (`layernorm:stats`, `attention:qk`, ...) with an
//   all-reduce of scratch buffers between them.
// - A collective instruction with the same `cid` runs on every die of `group` (ring order),
//   moving the same bytes; within a loop, instances match by iteration index. `part_of` marks
//   a step inside a compute op (the score all-reduce of a head split over dies, Optimus's
//   key/value gathers and the reductions of their gradients).

import { z } from 'zod';
import { GygesError, assertNever } from '../diagnostics/diagnostic.js';

export const PROGRAM_FORMAT = 'gyges-program/2';

export type Range = readonly [number, number];
export type Phase = 'fwd' | 'bwd' | 'update';
export type BufferKind = 'activation' | 'weight';
export type CollectiveOp = 'all_gather' | 'reduce_scatter' | 'all_reduce' | 'broadcast';
export type LoopOver = 'minibatch' | 'chunk';

/** One piece of a last axis made of parts (Q, K and V of a fused projection). */
export interface Part {
  readonly value: string;
  readonly size: number;
}

/**
 * Which numbers a buffer holds: die [i, j]'s tile of a tensor of `shape` (a batched tensor's
 * mini-batch shape in a loop: iteration n's samples) under sharding `spec` (sharding.ts: rows
 * are the leading dimensions flattened, blocks of ceil(n/parts), axis lists row-major). With
 * `parts`, the last axis is made of parts and the die's column block holds its block of every
 * part, part after part. With `chunks` > 1 the buffer holds one of that many equal column
 * slices of the tile: the current chunk loop iteration's.
 */
export interface BufferView {
  readonly shape: readonly number[];
  readonly spec: string;
  readonly chunks: number;
  readonly parts: readonly Part[] | null;
}

/**
 * A tensor DRAM stores with its last axis made of parts, in column blocks of nested splits
 * (outermost first; blocks row-major over them, as sharding.ts cuts them): block 0 of every
 * part, then block 1 of every part, and so on. DRAM instructions on it name columns in that
 * stored order, so a die's block is one contiguous range.
 */
export interface DramLayout {
  readonly tensor: string;
  readonly parts: readonly number[];
  /** Per grid axis: that many equal blocks, or blocks of these units (GridUnits). */
  readonly splits: readonly (number | readonly number[])[];
}

/**
 * A heterogeneous package's load balance: a dimension split over grid axis r (c) is cut into
 * Σ units equal blocks, and die row (column) k takes `rows[k]` (`cols[k]`) consecutive ones,
 * in order. null: the axis splits evenly, one block per row (column). Absent from the header
 * when both axes split evenly.
 */
export interface GridUnits {
  readonly rows: readonly number[] | null;
  readonly cols: readonly number[] | null;
}

/**
 * The IR op a compute instruction carries out (a step of it when `op` has a colon): the name
 * of its first result, for each operand the buffers holding it (several when a view joins
 * pieces; null when the instruction does not read it), and the sharding it reads each operand
 * in (null for a shape-only operand): a buffer may hold more than that tile, and the die then
 * uses its slice.
 */
export interface IrRef {
  readonly op: string;
  readonly args: readonly (readonly string[] | null)[];
  readonly specs: readonly (string | null)[];
}

export interface ProgramHeader {
  readonly model: string;
  readonly target: string;
  readonly strategy: string;
  readonly grid: Range;
  /** Present when the tiler gave dies unequal shares (a heterogeneous package). */
  readonly units?: GridUnits;
  readonly die: Range;
  readonly minibatch: { readonly batch: number; readonly size: number; readonly count: number; readonly lastSize: number };
  /** Peaks the allocator computed for this die, and the target's buffer capacities. */
  readonly sram: { readonly activationPeak: number; readonly weightPeak: number; readonly activationCapacity: number; readonly weightCapacity: number };
  readonly layouts: readonly DramLayout[];
}

export interface BufferDecl {
  readonly name: string;
  readonly kind: BufferKind;
  readonly bytes: number;
  /** Offset in the die's buffer of this kind, from the allocator. */
  readonly offset: number;
  /** First and last instruction id during which the space is reserved (inclusive). */
  readonly live: Range;
  /** The logical tensor it holds. */
  readonly tensor: string;
  /** Which of its numbers; null for scratch space (an attention core's scores). */
  readonly view: BufferView | null;
}

/** Fields every instruction carries. */
export interface InstrCommon {
  readonly id: number;
  readonly reads: readonly string[];
  readonly writes: readonly string[];
  readonly deps: readonly number[];
  readonly carried: readonly number[];
  readonly phase: Phase;
  /** The Transformer layer of the IR op, null outside layers. */
  readonly layer: number | null;
  /** `attention` or `ffn` (fuse.block), null when unknown. */
  readonly block: string | null;
  /** file:line:col of the IR op it came from. */
  readonly loc: string | null;
}

export interface DramInstr extends InstrCommon {
  readonly kind: 'dram.read' | 'dram.write';
  readonly tensor: string;
  readonly rows: Range;
  readonly cols: Range;
  readonly bytes: number;
}

export interface GemmInstr extends InstrCommon {
  readonly kind: 'gemm';
  /** The IR op kind (linear, linear_grad, attention, ...). */
  readonly op: string;
  /** Independent products (attention heads × samples); 1 for a Linear. */
  readonly batch: number;
  readonly m: number;
  readonly n: number;
  readonly k: number;
  readonly macs: number;
  readonly accumulate: boolean;
  readonly ir: IrRef | null;
}

export interface VectorInstr extends InstrCommon {
  readonly kind: 'vector';
  /** The IR op kind, or `fill` (zero an accumulator), `softmax` inside attention. */
  readonly op: string;
  readonly elements: number;
  /** Operations of the op table's FLOP count for this die's share. */
  readonly flops: number;
  readonly accumulate: boolean;
  /** null for `fill`. */
  readonly ir: IrRef | null;
}

export interface CollectiveInstr extends InstrCommon {
  readonly kind: 'collective';
  readonly op: CollectiveOp;
  readonly algo: string;
  /** Grid axes of the group: r (a column of dies), c (a row), rc (all). */
  readonly axis: string;
  /** The same on every die of the group. */
  readonly cid: string;
  /** The group's dies in ring order. */
  readonly group: readonly Range[];
  readonly position: number;
  readonly sentBytes: number;
  readonly linkBytes: number;
  readonly steps: number;
  /**
   * null for layout changes (Table III's traffic); the compute op's kind for a step inside
   * one (the all-reduce of partial scores when a head spans dies, Optimus's key/value gathers).
   */
  readonly partOf: string | null;
}

export interface LoopInstr extends InstrCommon {
  readonly kind: 'loop';
  readonly over: LoopOver;
  readonly count: number;
  readonly size: number;
  readonly lastSize: number;
  readonly body: readonly Instruction[];
}

export type Instruction = DramInstr | GemmInstr | VectorInstr | CollectiveInstr | LoopInstr;

export interface Program {
  readonly header: ProgramHeader;
  readonly buffers: readonly BufferDecl[];
  readonly instructions: readonly Instruction[];
}

/**
 * The collectives' rings over a whole package. Collectives group the dies in a few ways (the
 * grid's rows, its columns, all dies, heads' die groups); grouping g = `grouping[k]` is that
 * of collective node k (in program order, loop bodies in place). For die d (row-major),
 * `listOf[d·G + g]` indexes the member list of d's group in grouping g (dies row-major, in
 * ring order) and `position[d·G + g]` is d's place in it.
 */
export interface CollectiveRings {
  readonly lists: readonly Int32Array[];
  readonly grouping: Int32Array;
  readonly listOf: Int32Array;
  readonly position: Int32Array;
  /** Collective nodes per die (K = grouping.length). */
  readonly collectives: number;
  /** Distinct groupings (G). */
  readonly groupings: number;
}

/** Numbers distinct member lists (dies in ring order) 0, 1, 2, … in the order first seen. */
export class MemberLists {
  readonly lists: Int32Array[] = [];
  private readonly index = new Map<string, number>();

  id(members: Int32Array): number {
    const key = members.join(',');
    let l = this.index.get(key);
    if (l === undefined) {
      l = this.lists.length;
      this.index.set(key, l);
      this.lists.push(members);
    }
    return l;
  }
}

/**
 * What the dies of one compilation share, for consumers that need every die's numbers but
 * not every die's program: all dies run die 0's structure, and only the instructions
 * `varying` lists can differ in their numbers. A collective's members are in `rings`; its
 * numbers are the same on every die unless `varying` lists it (groups of different sizes, as
 * when heads are dealt unevenly over the dies).
 */
export interface SharedPrograms {
  /** Die d's instructions (row-major index) whose numbers may differ between dies, with how many times each runs per iteration; the same instructions, in the same order, for every die. */
  varying(d: number): readonly { readonly ins: Instruction; readonly times: number }[];
  /**
   * The dies by the numbers of their varying instructions: dies of one class have the same
   * numbers in every one (die type included; collective members and tile positions apart), so
   * consumers that need only numbers read one die of each class.
   */
  varyingClasses(): VaryingClasses;
  rings(): CollectiveRings;
}

export interface VaryingClasses {
  /** Each die's class (row-major dies), numbered in order of their first die. */
  readonly classOf: Int32Array;
  /** Each class's first die. */
  readonly reps: Int32Array;
  /** Each class's number of dies. */
  readonly counts: Int32Array;
}

// -- walking ---------------------------------------------------------------------------------

/** Iterations a loop's body runs, counting a partial last one by its share. */
export function loopWeight(l: Pick<LoopInstr, 'count' | 'size' | 'lastSize'>): number {
  return l.count - 1 + l.lastSize / l.size;
}

/** Visit every instruction with the number of times it runs per training iteration. */
export function forEachInstr(list: readonly Instruction[], visit: (ins: Instruction, times: number) => void, times = 1): void {
  for (const ins of list) {
    visit(ins, times);
    if (ins.kind === 'loop') forEachInstr(ins.body, visit, times * loopWeight(ins));
  }
}

export interface BlockTraffic {
  /** Busiest-link bytes of the layout collectives (Table III's traffic). */
  linkBytes: number;
  sentBytes: number;
  /** Busiest-link bytes of score all-reduces inside attention cores whose heads span dies. */
  headLinkBytes: number;
}

/**
 * Collective bytes of one die per Transformer block, summed over loops (body × iterations),
 * so the totals are per training iteration over the whole batch. Key `${layer}|${phase}/${block}`
 * with layer `-` outside layers and phase fwd or bwd (the update counts with bwd, Algorithm 1
 * step 8): the key of the collectives pass's `trafficByBlock`.
 */
export function blockTraffic(p: Program): Map<string, BlockTraffic> {
  const out = new Map<string, BlockTraffic>();
  forEachInstr(p.instructions, (ins, times) => {
    if (ins.kind !== 'collective') return;
    const key = `${ins.layer ?? '-'}|${ins.phase === 'fwd' ? 'fwd' : 'bwd'}/${ins.block ?? 'null'}`;
    const t = out.get(key) ?? { linkBytes: 0, sentBytes: 0, headLinkBytes: 0 };
    if (ins.partOf === null) {
      t.linkBytes += ins.linkBytes * times;
      t.sentBytes += ins.sentBytes * times;
    } else t.headLinkBytes += ins.linkBytes * times;
    out.set(key, t);
  });
  return out;
}

export interface ProgramTotals {
  sentBytes: number;
  linkBytes: number;
  dramReadBytes: number;
  dramWriteBytes: number;
  macs: number;
  vectorFlops: number;
  /** Instructions in the program text (loop bodies once). */
  instructions: number;
}

export function emptyTotals(): ProgramTotals {
  return { sentBytes: 0, linkBytes: 0, dramReadBytes: 0, dramWriteBytes: 0, macs: 0, vectorFlops: 0, instructions: 0 };
}

/** Add what one instruction does, `times` over, to `t`. */
export function addInstr(t: ProgramTotals, ins: Instruction, times: number): void {
  t.instructions++;
  switch (ins.kind) {
    case 'dram.read':
      t.dramReadBytes += ins.bytes * times;
      break;
    case 'dram.write':
      t.dramWriteBytes += ins.bytes * times;
      break;
    case 'gemm':
      t.macs += ins.macs * times;
      break;
    case 'vector':
      t.vectorFlops += ins.flops * times;
      break;
    case 'collective':
      t.sentBytes += ins.sentBytes * times;
      t.linkBytes += ins.linkBytes * times;
      break;
    case 'loop':
      break;
    default:
      assertNever(ins);
  }
}

/** Per-iteration totals of one die's program. */
export function programTotals(p: Program): ProgramTotals {
  const t = emptyTotals();
  forEachInstr(p.instructions, (ins, times) => addInstr(t, ins, times));
  return t;
}

// -- text form -------------------------------------------------------------------------------

function unitsText(u: readonly number[] | null): string {
  return u ? `[${u.join(' ')}]` : 'even';
}

/** The text form: one line per buffer and per instruction, loops indented. Deterministic. */
export function printProgram(p: Program): string {
  const h = p.header;
  const lines = [
    `program ${q(h.model)} die [${h.die.join(', ')}]`,
    `  target ${q(h.target)}, strategy ${h.strategy}, grid ${h.grid.join('x')}${h.units ? `, units rows ${unitsText(h.units.rows)} cols ${unitsText(h.units.cols)}` : ''}`,
    `  minibatch batch ${h.minibatch.batch}, size ${h.minibatch.size}, count ${h.minibatch.count}, last ${h.minibatch.lastSize}`,
    `  sram activation ${h.sram.activationPeak} of ${h.sram.activationCapacity} B, weight ${h.sram.weightPeak} of ${h.sram.weightCapacity} B`,
    '',
    'buffers',
    ...p.buffers.map((b) => `  ${b.kind.padEnd(10)} ${q(b.name)} ${b.bytes} B at ${b.offset}, live ${b.live[0]}..${b.live[1]}${b.tensor === b.name ? '' : `, holds ${q(b.tensor)}`}${viewText(b.view)}`),
    ...(h.layouts.length ? ['', 'dram layouts', ...h.layouts.map((l) => `  ${q(l.tensor)} parts ${l.parts.join(' ')} in blocks ${l.splits.map((x) => (typeof x === 'number' ? String(x) : `[${x.join(' ')}]`)).join('x')}`)] : []),
    '',
    'instructions',
  ];
  printList(p.instructions, 1, lines);
  return `${lines.join('\n')}\n`;
}

function printList(list: readonly Instruction[], depth: number, lines: string[]): void {
  const pad = '  '.repeat(depth);
  for (const ins of list) {
    const io = ins.reads.length + ins.writes.length ? `  ${ins.reads.map(q).join(' ')} -> ${ins.writes.map(q).join(' ')}` : '';
    const deps = `${ins.deps.length ? `  deps ${ins.deps.join(' ')}` : ''}${ins.carried.length ? `  carried ${ins.carried.join(' ')}` : ''}`;
    const origin = `  ; ${ins.phase}${ins.layer === null ? '' : ` L${ins.layer}`}${ins.block ? ` ${ins.block}` : ''}${ins.loc ? ` ${ins.loc}` : ''}`;
    lines.push(`${pad}${String(ins.id).padStart(4)}  ${details(ins)}${io}${deps}${origin}${ins.kind === 'loop' ? ' {' : ''}`);
    if (ins.kind === 'loop') {
      printList(ins.body, depth + 1, lines);
      lines.push(`${pad}      }`);
    }
  }
}

/** One instruction's own fields as text (no reads/writes, deps or origin): what it does. */
export function details(ins: Instruction): string {
  switch (ins.kind) {
    case 'dram.read':
    case 'dram.write':
      return `${ins.kind} ${q(ins.tensor)} rows ${ins.rows[0]}..${ins.rows[1]} cols ${ins.cols[0]}..${ins.cols[1]} ${num(ins.bytes)} B`;
    case 'gemm':
      return `gemm ${ins.op}${ins.batch === 1 ? '' : ` ${num(ins.batch)}x`} m ${num(ins.m)} n ${num(ins.n)} k ${num(ins.k)} = ${num(ins.macs)} MAC${ins.accumulate ? ' +=' : ''}${irText(ins.ir)}`;
    case 'vector':
      return `vector ${ins.op} ${num(ins.elements)} elements ${num(ins.flops)} flops${ins.accumulate ? ' +=' : ''}${irText(ins.ir)}`;
    case 'collective':
      return (
        `collective ${ins.op} ${ins.algo} ${ins.axis} ${q(ins.cid)} group ${ins.group.map((d) => `[${d[0]},${d[1]}]`).join('')} pos ${ins.position}` +
        ` sent ${num(ins.sentBytes)} B link ${num(ins.linkBytes)} B steps ${ins.steps}${ins.partOf ? ` in ${ins.partOf}` : ''}`
      );
    case 'loop':
      return `loop ${ins.over} count ${ins.count} size ${num(ins.size)} last ${num(ins.lastSize)}`;
    default:
      return assertNever(ins);
  }
}

function viewText(v: BufferView | null): string {
  if (!v) return ', scratch';
  const parts = v.parts ? ` parts ${v.parts.map((p) => `${q(p.value)}:${p.size}`).join(' ')}` : '';
  return `, tile of [${v.shape.join(', ')}] ${v.spec}${v.chunks > 1 ? ` chunk of ${v.chunks}` : ''}${parts}`;
}

function irText(ir: IrRef | null): string {
  if (!ir) return '';
  return `  ir ${q(ir.op)}(${ir.args.map((a, k) => (a ? `${a.map(q).join('+')} ${ir.specs[k]}` : '_')).join(', ')})`;
}

function q(s: string): string {
  return JSON.stringify(s);
}

/** Shortest exact text of a number (fractional counts print in full). */
function num(x: number): string {
  return String(x);
}

// -- JSON form -------------------------------------------------------------------------------

/** A plain object with a fixed key order; JSON.stringify of it is byte-identical across runs. */
export function programToJSON(p: Program): Record<string, unknown> {
  const h = p.header;
  return {
    format: PROGRAM_FORMAT,
    model: h.model,
    target: h.target,
    strategy: h.strategy,
    grid: [...h.grid],
    ...(h.units ? { units: { rows: h.units.rows ? [...h.units.rows] : null, cols: h.units.cols ? [...h.units.cols] : null } } : {}),
    die: [...h.die],
    minibatch: { batch: h.minibatch.batch, size: h.minibatch.size, count: h.minibatch.count, last_size: h.minibatch.lastSize },
    sram: {
      activation_peak_bytes: h.sram.activationPeak,
      weight_peak_bytes: h.sram.weightPeak,
      activation_capacity_bytes: h.sram.activationCapacity,
      weight_capacity_bytes: h.sram.weightCapacity,
    },
    layouts: h.layouts.map((l) => ({ tensor: l.tensor, parts: [...l.parts], splits: l.splits.map((x) => (typeof x === 'number' ? x : [...x])) })),
    buffers: p.buffers.map((b) => ({ name: b.name, kind: b.kind, bytes: b.bytes, offset: b.offset, live: [...b.live], tensor: b.tensor, view: viewToJSON(b.view) })),
    instructions: p.instructions.map(instrToJSON),
  };
}

function viewToJSON(v: BufferView | null): Record<string, unknown> | null {
  if (!v) return null;
  return { shape: [...v.shape], spec: v.spec, chunks: v.chunks, parts: v.parts ? v.parts.map((p) => ({ value: p.value, size: p.size })) : null };
}

function irToJSON(ir: IrRef | null): Record<string, unknown> | null {
  return ir ? { op: ir.op, args: ir.args.map((a) => (a ? [...a] : null)), specs: [...ir.specs] } : null;
}

function instrToJSON(ins: Instruction): Record<string, unknown> {
  return { id: ins.id, kind: ins.kind, ...specificToJSON(ins), ...commonToJSON(ins) };
}

function specificToJSON(ins: Instruction): Record<string, unknown> {
  switch (ins.kind) {
    case 'dram.read':
    case 'dram.write':
      return { tensor: ins.tensor, rows: [...ins.rows], cols: [...ins.cols], bytes: ins.bytes };
    case 'gemm':
      return { op: ins.op, batch: ins.batch, m: ins.m, n: ins.n, k: ins.k, macs: ins.macs, accumulate: ins.accumulate, ir: irToJSON(ins.ir) };
    case 'vector':
      return { op: ins.op, elements: ins.elements, flops: ins.flops, accumulate: ins.accumulate, ir: irToJSON(ins.ir) };
    case 'collective':
      return {
        op: ins.op,
        algo: ins.algo,
        axis: ins.axis,
        cid: ins.cid,
        group: ins.group.map((d) => [...d]),
        position: ins.position,
        sent_bytes: ins.sentBytes,
        link_bytes: ins.linkBytes,
        steps: ins.steps,
        part_of: ins.partOf,
      };
    case 'loop':
      return { over: ins.over, count: ins.count, size: ins.size, last_size: ins.lastSize, body: ins.body.map(instrToJSON) };
    default:
      return assertNever(ins);
  }
}

function commonToJSON(ins: InstrCommon): Record<string, unknown> {
  return {
    reads: [...ins.reads],
    writes: [...ins.writes],
    deps: [...ins.deps],
    carried: [...ins.carried],
    phase: ins.phase,
    layer: ins.layer,
    block: ins.block,
    loc: ins.loc,
  };
}

// -- parsing the JSON form ---------------------------------------------------------------------

const count = z.number().finite().nonnegative();
const whole = z.number().int().nonnegative();
const range = z.tuple([count, count]);
const die = z.tuple([whole, whole]);

const headerSchema = z.object({
  format: z.literal(PROGRAM_FORMAT),
  model: z.string(),
  target: z.string(),
  strategy: z.string(),
  grid: z.tuple([whole.min(1), whole.min(1)]),
  units: z.strictObject({ rows: z.array(whole.min(1)).min(1).nullable(), cols: z.array(whole.min(1)).min(1).nullable() }).optional(),
  die,
  minibatch: z.strictObject({ batch: whole.min(1), size: whole.min(1), count: whole.min(1), last_size: whole.min(1) }),
  sram: z.strictObject({ activation_peak_bytes: count, weight_peak_bytes: count, activation_capacity_bytes: count, weight_capacity_bytes: count }),
  layouts: z.array(z.strictObject({ tensor: z.string(), parts: z.array(whole.min(1)).min(1), splits: z.array(z.union([whole.min(1), z.array(whole.min(1)).min(1)])).min(1) })),
  buffers: z.array(
    z.strictObject({
      name: z.string(),
      kind: z.enum(['activation', 'weight']),
      bytes: count,
      offset: count,
      live: z.tuple([whole, whole]),
      tensor: z.string(),
      view: z.strictObject({ shape: z.array(whole), spec: z.string(), chunks: whole.min(1), parts: z.array(z.strictObject({ value: z.string(), size: whole.min(1) })).nullable() }).nullable(),
    }),
  ),
  instructions: z.array(z.unknown()),
});

const common = {
  id: whole,
  reads: z.array(z.string()),
  writes: z.array(z.string()),
  deps: z.array(whole),
  carried: z.array(whole),
  phase: z.enum(['fwd', 'bwd', 'update']),
  layer: whole.nullable(),
  block: z.string().nullable(),
  loc: z.string().nullable(),
};

const irRef = z.strictObject({ op: z.string(), args: z.array(z.array(z.string()).nullable()), specs: z.array(z.string().nullable()) }).nullable();

const SCHEMAS = {
  dram: z.strictObject({ ...common, kind: z.enum(['dram.read', 'dram.write']), tensor: z.string(), rows: range, cols: range, bytes: count }),
  gemm: z.strictObject({ ...common, kind: z.literal('gemm'), op: z.string(), batch: count, m: count, n: count, k: count, macs: count, accumulate: z.boolean(), ir: irRef }),
  vector: z.strictObject({ ...common, kind: z.literal('vector'), op: z.string(), elements: count, flops: count, accumulate: z.boolean(), ir: irRef }),
  collective: z.strictObject({
    ...common,
    kind: z.literal('collective'),
    op: z.enum(['all_gather', 'reduce_scatter', 'all_reduce', 'broadcast']),
    algo: z.string(),
    axis: z.string(),
    cid: z.string(),
    group: z.array(die).min(1),
    position: whole,
    sent_bytes: count,
    link_bytes: count,
    steps: whole,
    part_of: z.string().nullable(),
  }),
  loop: z.strictObject({ ...common, kind: z.literal('loop'), over: z.enum(['minibatch', 'chunk']), count: whole.min(1), size: count, last_size: count, body: z.array(z.unknown()) }),
};

/** Read a program's JSON text; a malformed file is a user error GY7001 naming the field. */
export function parseProgram(text: string, file: string): Program {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw malformed(file, `not JSON: ${(e as Error).message}`);
  }
  const h = check(headerSchema, raw, file, '');
  return {
    header: {
      model: h.model,
      target: h.target,
      strategy: h.strategy,
      grid: h.grid,
      ...(h.units ? { units: h.units } : {}),
      die: h.die,
      minibatch: { batch: h.minibatch.batch, size: h.minibatch.size, count: h.minibatch.count, lastSize: h.minibatch.last_size },
      sram: {
        activationPeak: h.sram.activation_peak_bytes,
        weightPeak: h.sram.weight_peak_bytes,
        activationCapacity: h.sram.activation_capacity_bytes,
        weightCapacity: h.sram.weight_capacity_bytes,
      },
      layouts: h.layouts,
    },
    buffers: h.buffers,
    instructions: h.instructions.map((x, i) => parseInstr(x, file, `instructions.${i}`)),
  };
}

function parseInstr(raw: unknown, file: string, path: string): Instruction {
  const kind = check(z.object({ kind: z.enum(['dram.read', 'dram.write', 'gemm', 'vector', 'collective', 'loop']) }), raw, file, path).kind;
  switch (kind) {
    case 'dram.read':
    case 'dram.write':
      return check(SCHEMAS.dram, raw, file, path);
    case 'gemm':
      return check(SCHEMAS.gemm, raw, file, path);
    case 'vector':
      return check(SCHEMAS.vector, raw, file, path);
    case 'collective': {
      const { sent_bytes, link_bytes, part_of, ...rest } = check(SCHEMAS.collective, raw, file, path);
      return { ...rest, sentBytes: sent_bytes, linkBytes: link_bytes, partOf: part_of };
    }
    case 'loop': {
      const { last_size, body, ...rest } = check(SCHEMAS.loop, raw, file, path);
      return { ...rest, lastSize: last_size, body: body.map((x, i) => parseInstr(x, file, `${path}.body.${i}`)) };
    }
    default:
      return assertNever(kind);
  }
}

function check<T>(schema: z.ZodType<T>, raw: unknown, file: string, path: string): T {
  const r = schema.safeParse(raw);
  if (r.success) return r.data;
  const issue = r.error.issues[0]!;
  const at = [path, ...issue.path.map(String)].filter(Boolean).join('.');
  throw malformed(file, `${at || 'top level'}: ${issue.message}`);
}

function malformed(file: string, detail: string): GygesError {
  return new GygesError('GY7001', `${file}: malformed program: ${detail}`);
}
