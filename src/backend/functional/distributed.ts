// The distributed functional executor: runs every die's program on real numbers. DRAM holds
// whole tensors (in their logical layout; DRAM instructions on a tensor stored part by part
// name stored columns, which the header's layouts map back); each die holds, per buffer, the
// numbers of its tile as the buffer's view says (program.ts); DRAM reads and writes copy the
// rows and columns the instruction names; compute instructions evaluate their IR op on the
// die's tiles; collectives move and reduce tiles between the dies of their group. Numbers are
// stored as fp32 (every buffer and DRAM write is rounded), computed in float64.
//
// All dies run in lock step over the shared instruction order (every die's program has the
// same structure, program.ts): instruction n runs on every die before instruction n+1, so a
// collective finds its group's inputs ready and a DRAM read finds every earlier write.
//
// How a die evaluates an op on tiles: each operand's tile is placed in an array of the
// operand's (mini-batch) shape; numbers the die does not hold are NaN, so an op that needed
// them poisons exactly the results that depended on them. Where the result is a partial sum
// (its buffer's sharding has `~` axes) or accumulates, the missing numbers are 0 instead: the
// die's contribution is its product over what it holds, and a bias joins the sum once, on the
// die at block 0 of the reduction (tile2d). Then the result's tile is cut out of the op's
// result. The attention core runs step by step (scores, their all-reduce when a head spans
// dies, softmax, products) on the die's heads.

import { assert, GygesError } from '../../diagnostics/diagnostic.js';
import type { Module, Op, Value } from '../../ir/module.js';
import { isFloat, numel, type TensorType } from '../../ir/types.js';
import { opDef } from '../../ir/ops.js';
import { blockIndex, blockRange, gridOfHeader, parseSharding, specSplits, splitParts, tileOf, type Die, type Grid } from '../../passes/sharding.js';
import { partColumns } from '../../passes/schedule/parts.js';
import type { BufferDecl, BufferView, CollectiveInstr, DramInstr, DramLayout, GemmInstr, Instruction, Program, VectorInstr } from '../program.js';
import { evaluateOp, type Feed } from './reference.js';

/** The rows and (logical) columns of a tensor's 2-D view that a tile holds, columns in storage order. */
interface Region {
  readonly r0: number;
  readonly r1: number;
  readonly cols: readonly number[];
}

interface Tile {
  readonly region: Region;
  /** (r1 − r0) × cols.length numbers, row-major. */
  readonly data: Float64Array;
}

interface Iteration {
  /** The mini-batch loop's iteration, or -1 outside it. */
  readonly batch: number;
  /** The chunk loop's iteration and count (0 of 1 outside one). */
  readonly chunk: number;
  readonly chunks: number;
}

export interface DistributedResult {
  /** DRAM at the end: every tensor written or read, by name, logical layout. */
  readonly dram: ReadonlyMap<string, Float64Array>;
  /** Each gradient an update consumed, assembled from the dies' tiles, by value name. */
  readonly gradients: ReadonlyMap<string, Float64Array>;
  /** Largest difference between two dies' copies of the same gradient number (replicas must agree). */
  readonly replicaSpread: number;
}

/** A fault of the programs found while executing them: the schedule does not compute the model. */
export class ScheduleFault extends GygesError {
  constructor(detail: string) {
    super('GY7004', detail);
  }
}

const f32 = Math.fround;

function rows2d(shape: readonly number[]): number {
  const cols = shape[shape.length - 1] ?? 1;
  return cols === 0 ? 0 : numel({ dtype: 'f32', shape }) / cols;
}

function cols2d(shape: readonly number[]): number {
  return shape[shape.length - 1] ?? 1;
}

export function executeDistributed(m: Module, programs: readonly Program[], feed: Feed): DistributedResult {
  return new Executor(m, programs, feed).run();
}

class Executor {
  private readonly grid: Grid;
  private readonly dies: Die[];
  private readonly dram = new Map<string, Float64Array>();
  private readonly values = new Map<string, Value>();
  private readonly producer = new Map<string, Op>();
  private readonly layouts = new Map<string, DramLayout>();
  private readonly buffers: Map<string, BufferDecl>;
  private readonly state: Map<string, Tile>[];
  private readonly gradients = new Map<string, Float64Array>();
  private readonly gradSeen = new Map<string, Uint8Array>();
  private replicaSpread = 0;
  /** Tensors DRAM holds as partial sums: one copy per writing die. */
  private readonly partials = new Map<string, Map<number, Float64Array>>();
  /** Weight gradients streamed chunk by chunk through DRAM. */
  private readonly streamed = new Set<string>();

  constructor(private readonly m: Module, private readonly programs: readonly Program[], private readonly feed: Feed) {
    const h = programs[0]!.header;
    this.grid = gridOfHeader(h);
    assert(programs.length === this.grid.rows * this.grid.cols, `distributed: ${programs.length} programs for a ${h.grid.join('x')} grid`);
    this.dies = programs.map((p) => ({ i: p.header.die[0], j: p.header.die[1] }));
    for (const v of [...m.declarations(), ...m.ops().flatMap((op) => op.results)]) this.values.set(v.name, v);
    for (const op of m.ops()) for (const r of op.results) this.producer.set(r.name, op);
    for (const l of h.layouts) this.layouts.set(l.tensor, l);
    this.buffers = new Map(programs[0]!.buffers.map((b) => [b.name, b]));
    for (const b of programs[0]!.buffers) {
      if (b.kind === 'weight' && b.view && b.view.chunks > 1 && this.producer.get(b.tensor)?.kind === 'linear_grad') this.streamed.add(b.tensor);
    }
    this.state = programs.map(() => new Map());
    if (h.minibatch.lastSize !== h.minibatch.size) {
      throw new ScheduleFault(`the functional executor runs equal mini-batches only; this batch of ${h.minibatch.batch} ends with ${h.minibatch.lastSize} of ${h.minibatch.size}`);
    }
  }

  run(): DistributedResult {
    this.walk(this.programs.map((p) => p.instructions), { batch: -1, chunk: 0, chunks: 1 });
    for (const o of this.m.outputs) if (!this.dram.has(o.name)) this.dram.set(o.name, this.tensor(o.name));
    return { dram: this.dram, gradients: this.gradients, replicaSpread: this.replicaSpread };
  }

  // -- walking in lock step ---------------------------------------------------------------

  private walk(lists: readonly (readonly Instruction[])[], it: Iteration): void {
    const n = lists[0]!.length;
    for (let k = 0; k < n; k++) {
      const row = lists.map((l) => l[k]!);
      const first = row[0]!;
      if (!row.every((x) => x.kind === first.kind && x.id === first.id)) throw new ScheduleFault(`instruction ${first.id}: the dies' programs differ in structure`);
      switch (first.kind) {
        case 'loop': {
          const bodies = row.map((x) => (x as typeof first).body);
          for (let n2 = 0; n2 < first.count; n2++) {
            this.walk(bodies, first.over === 'minibatch' ? { batch: n2, chunk: 0, chunks: 1 } : { batch: it.batch, chunk: n2, chunks: first.count });
          }
          break;
        }
        case 'collective':
          this.collective(row as CollectiveInstr[], it);
          break;
        case 'dram.read':
          row.forEach((x, d) => this.dramRead(d, x as DramInstr, it));
          break;
        case 'dram.write':
          row.forEach((x, d) => this.dramWrite(d, x as DramInstr, it));
          break;
        case 'gemm':
        case 'vector':
          row.forEach((x, d) => this.compute(d, x as GemmInstr | VectorInstr, it));
          break;
      }
    }
  }

  // -- regions ------------------------------------------------------------------------------

  private view(name: string): BufferView | null {
    const b = this.buffers.get(name);
    assert(b, `distributed: no buffer '${name}'`);
    return b.view;
  }

  private regionOf(view: BufferView, d: number, it: Iteration): Region {
    const spec = parseSharding(view.spec);
    const die = this.dies[d]!;
    const t = tileOf({ dtype: 'f32', shape: view.shape }, spec, this.grid, die);
    let cols: number[];
    if (view.parts) cols = partColumns(view.parts, specSplits(spec, 'cols', this.grid), blockIndex(spec.cols, this.grid, die));
    else cols = range(t.cols[0], t.cols[1]);
    if (view.chunks > 1) {
      const [a, b] = blockRange(cols.length, view.chunks, it.chunks === view.chunks ? it.chunk : 0);
      cols = cols.slice(a, b);
    }
    return { r0: t.rows[0], r1: t.rows[1], cols };
  }

  private tileOfBuffer(d: number, name: string): Tile {
    const t = this.state[d]!.get(name);
    if (!t) throw new ScheduleFault(`die ${this.dieName(d)} reads buffer '${name}' before anything was written to it`);
    return t;
  }

  private dieName(d: number): string {
    return `[${this.dies[d]!.i}, ${this.dies[d]!.j}]`;
  }

  // -- DRAM ---------------------------------------------------------------------------------

  /** A DRAM tensor: fed, written by dies, or computed beside DRAM from other tensors. */
  private tensor(name: string): Float64Array {
    const have = this.dram.get(name);
    if (have) return have;
    const copies = this.partials.get(name);
    if (copies) {
      // Read whole (beside DRAM, or as a result): the sum of the parts.
      const sum = new Float64Array([...copies.values()][0]!.length);
      // A number no die wrote stays NaN (missing); the others sum the parts that were written.
      sum.fill(Number.NaN);
      for (const c of copies.values()) c.forEach((x, i) => Number.isNaN(x) || (sum[i] = (Number.isNaN(sum[i]!) ? 0 : sum[i]!) + x));
      return sum;
    }
    const v = this.values.get(name);
    if (!v) throw new ScheduleFault(`DRAM has no tensor '${name}'`);
    let data: Float64Array;
    if (v.kind === 'const') data = Float64Array.from(v.data ?? []);
    else if (v.kind !== 'result') data = this.feed(v).slice();
    else {
      const op = this.producer.get(name)!;
      // A streamed weight gradient accumulates in DRAM, which holds zeros before its first chunk.
      if (this.streamed.has(name)) data = new Float64Array(numel(v.type));
      else if (op.notes?.['tile2d.dram'] !== true) throw new ScheduleFault(`'${name}' is read from DRAM but no die wrote it`);
      else {
        const results = evaluateOp(op, op.operands.map((x) => this.tensor(x.name)));
        op.results.forEach((r, i) => this.dram.set(r.name, round(results[i]!, r.type)));
        return this.dram.get(name)!;
      }
    }
    round(data, v.type);
    this.dram.set(name, data);
    return data;
  }

  /** The logical columns a DRAM instruction names (stored columns map back through the layout). */
  private dramColumns(ins: DramInstr): number[] {
    const l = this.layouts.get(ins.tensor);
    if (!l) return range(ins.cols[0], ins.cols[1]);
    const stored: number[] = [];
    const blocks = l.splits.reduce<number>((a, b) => a * splitParts(b), 1);
    for (let b = 0; b < blocks; b++) stored.push(...partColumns(l.parts.map((size) => ({ size })), l.splits, b));
    return stored.slice(ins.cols[0], ins.cols[1]);
  }

  /** The instruction's rows in the whole tensor, and its columns, for this iteration. */
  private dramRegion(ins: DramInstr, view: BufferView, it: Iteration): Region {
    const v = this.values.get(ins.tensor);
    assert(v, `distributed: DRAM tensor '${ins.tensor}' is not a value of the module`);
    const whole = rows2d(v.type.shape);
    const here = rows2d(view.shape);
    const offset = here !== whole && it.batch >= 0 ? it.batch * here : 0;
    let cols = this.dramColumns(ins);
    if (view.chunks > 1) {
      const [a, b] = blockRange(cols.length, view.chunks, it.chunk);
      cols = cols.slice(a, b);
    }
    return { r0: ins.rows[0] + offset, r1: ins.rows[1] + offset, cols };
  }

  private dramRead(d: number, ins: DramInstr, it: Iteration): void {
    const name = ins.writes[0]!;
    const view = this.view(name);
    assert(view, `distributed: DRAM read into scratch buffer '${name}'`);
    const want = this.regionOf(view, d, it);
    const from = this.dramRegion(ins, view, it);
    const src = this.partials.get(ins.tensor)?.get(d) ?? this.tensor(ins.tensor);
    const width = cols2d(this.values.get(ins.tensor)!.type.shape);
    const n = (from.r1 - from.r0) * from.cols.length;
    if (n !== (want.r1 - want.r0) * want.cols.length) {
      throw new ScheduleFault(`die ${this.dieName(d)} instruction ${ins.id}: reads ${n} numbers of '${ins.tensor}' into buffer '${name}', whose tile holds ${(want.r1 - want.r0) * want.cols.length}`);
    }
    const data = new Float64Array(n);
    let o = 0;
    for (let r = from.r0; r < from.r1; r++) for (const c of from.cols) data[o++] = src[r * width + c]!;
    this.state[d]!.set(name, { region: want, data });
  }

  private dramWrite(d: number, ins: DramInstr, it: Iteration): void {
    const tile = this.valueTile(d, ins.reads, ins.tensor);
    const first = this.view(ins.reads[0]!)!;
    const to = this.dramRegion(ins, first, it);
    const v = this.values.get(ins.tensor)!;
    // A partial sum is written by every die holding a part, each to its own copy; a die
    // reading it back reads its own part, and a collective reduces them (the collectives pass).
    const partial = parseSharding(first.spec).partial.length > 0;
    let dst: Float64Array | undefined;
    if (partial) {
      const copies = this.partials.get(ins.tensor) ?? new Map<number, Float64Array>();
      this.partials.set(ins.tensor, copies);
      dst = copies.get(d) ?? new Float64Array(numel(v.type)).fill(Number.NaN);
      copies.set(d, dst);
    } else {
      dst = this.dram.get(ins.tensor);
      if (!dst) {
        dst = new Float64Array(numel(v.type)).fill(Number.NaN);
        this.dram.set(ins.tensor, dst);
      }
    }
    const width = cols2d(v.type.shape);
    const at = indexer(tile.region);
    // Rows in the tile's own coordinates: a batched tile's rows are its mini-batch's.
    const shift = to.r0 - ins.rows[0];
    for (let r = to.r0; r < to.r1; r++) {
      for (const c of to.cols) {
        const k = at(r - shift, c);
        if (k < 0) throw new ScheduleFault(`die ${this.dieName(d)} instruction ${ins.id}: writes row ${r} column ${c} of '${ins.tensor}', which its tile does not hold`);
        const x = tile.data[k]!;
        dst[r * width + c] = f32(x);
      }
    }
  }

  // -- values in buffers --------------------------------------------------------------------

  /**
   * The tile of value `name` held by `bufs`: a buffer holding it (or a layout of it), a part of
   * a buffer whose last axis is made of parts (a split view), or the pieces of a concat view.
   */
  private valueTile(d: number, bufs: readonly string[], name: string): Tile {
    if (bufs.length === 1) {
      const b = this.buffers.get(bufs[0]!)!;
      const tile = this.tileOfBuffer(d, b.name);
      // A piece of a split view sits in its whole's buffer at the split's result index.
      const split = this.producer.get(name);
      const holdsWhole = b.tensor !== name && split?.kind === 'split' && b.view?.parts?.length === split.results.length;
      const part = holdsWhole ? split.results.findIndex((r) => r.name === name) : -1;
      if (part < 0 || b.view!.parts!.length === 1) return tile;
      const parts = b.view!.parts!;
      const lo = parts.slice(0, part).reduce((s, p) => s + p.size, 0);
      const hi = lo + parts[part]!.size;
      const keep = tile.region.cols.map((c, i) => [c, i] as const).filter(([c]) => c >= lo && c < hi);
      const nr = tile.region.r1 - tile.region.r0;
      const w = tile.region.cols.length;
      const data = new Float64Array(nr * keep.length);
      for (let r = 0; r < nr; r++) keep.forEach(([, i], k) => (data[r * keep.length + k] = tile.data[r * w + i]!));
      return { region: { r0: tile.region.r0, r1: tile.region.r1, cols: keep.map(([c]) => c - lo) }, data };
    }
    // Pieces joined by a concat view, in operand order.
    const op = this.producer.get(name);
    assert(op && op.kind === 'concat', `distributed: '${name}' held by ${bufs.length} buffers is not a concat`);
    // A piece may arrive in a layout holding more rows than the concat reads (a local slice
    // needs no collective, so no op narrows it): the rows every piece holds are the view's.
    const held = bufs.map((b) => this.tileOfBuffer(d, b));
    const rows = { r0: Math.max(...held.map((t) => t.region.r0)), r1: Math.min(...held.map((t) => t.region.r1)) };
    const tiles = held.map((t) => (t.region.r0 === rows.r0 && t.region.r1 === rows.r1 ? t : restrict(t, { ...rows, cols: t.region.cols })));
    let offset = 0;
    const cols: number[] = [];
    const sources: [number, number][] = [];
    op.operands.forEach((piece, p) => {
      const t = tiles[p]!;
      t.region.cols.forEach((c, i) => {
        cols.push(offset + c);
        sources.push([p, i]);
      });
      offset += piece.type.shape.at(-1)!;
    });
    // Storage order: the concatenation of per-part blocks is increasing column order per block.
    const order = cols.map((c, i) => [c, i] as const).sort((a, b) => a[0] - b[0]);
    const r0 = tiles[0]!.region.r0;
    const r1 = tiles[0]!.region.r1;
    assert(tiles.every((t) => t.region.r0 === r0 && t.region.r1 === r1), `distributed: pieces of '${name}' hold different rows`);
    const data = new Float64Array((r1 - r0) * cols.length);
    for (let r = 0; r < r1 - r0; r++) {
      order.forEach(([, i], k) => {
        const [p, j] = sources[i]!;
        const t = tiles[p]!;
        data[r * cols.length + k] = t.data[r * t.region.cols.length + j]!;
      });
    }
    return { region: { r0, r1, cols: order.map(([c]) => c) }, data };
  }

  // -- compute ------------------------------------------------------------------------------

  private compute(d: number, ins: GemmInstr | VectorInstr, it: Iteration): void {
    if (ins.kind === 'vector' && ins.op === 'fill') {
      for (const w of ins.writes) {
        const region = this.regionOf(this.view(w)!, d, it);
        this.state[d]!.set(w, { region, data: new Float64Array((region.r1 - region.r0) * region.cols.length) });
      }
      return;
    }
    assert(ins.ir, `distributed: instruction ${ins.id} (${ins.op}) names no IR op`);
    const op = this.producer.get(ins.ir.op);
    assert(op, `distributed: no IR op makes '${ins.ir.op}'`);
    if (op.kind === 'attention' || op.kind === 'attention_grad') return this.attentionStep(d, ins, op, it);
    if (ins.op.endsWith(':stats')) return this.normStatistics(d, ins, op);
    const stats = ins.reads.find((r) => this.view(r) === null);
    if (stats !== undefined) return this.normalize(d, ins, op, it, stats);
    const outs = this.resultsOf(ins, op);
    const outViews = ins.writes.map((w) => this.view(w)!);
    const partial = outViews.some((v) => parseSharding(v.spec).partial.length > 0);
    const zero = partial || ins.accumulate;
    // The op at this die's shapes: batched operands and results at their mini-batch's.
    const held = op.operands.map((v, k) => {
      const bufs = ins.ir!.args[k];
      return bufs ? this.heldShape(bufs, v) : undefined;
    });
    // An operand this step does not read keeps its shape, at the mini-batch's size when batched.
    const batch = this.programs[0]!.header.minibatch;
    const inLoop = held.some((sh, k) => sh && sh[0] !== op.operands[k]!.type.shape[0] && op.operands[k]!.type.shape[0] === batch.batch);
    const operandTypes = op.operands.map((v, k) => {
      const sh = held[k] ?? (inLoop && v.type.shape[0] === batch.batch ? [batch.size, ...v.type.shape.slice(1)] : [...v.type.shape]);
      return { dtype: v.type.dtype, shape: sh };
    });
    const resultTypes = op.results.map((r, i) => {
      const w = outs.indexOf(i);
      return w < 0 ? r.type : { dtype: r.type.dtype, shape: [...outViews[w]!.shape] };
    });
    const args = op.operands.map((v, k) => {
      const bufs = ins.ir!.args[k];
      const type = operandTypes[k]!;
      const full = new Float64Array(numel(type)).fill(zero || !isFloat(type.dtype) ? 0 : Number.NaN);
      if (!bufs) return full;
      let tile = this.valueTile(d, bufs, v.name);
      // In chunk k of a streamed Linear, what runs beside it covers the k-th column slice of a
      // whole tile (a Linear's x, the contraction, is never sliced).
      if (it.chunks > 1 && this.view(bufs[0]!)?.chunks === 1 && !(k === 0 && (op.kind === 'linear' || op.kind === 'linear_grad'))) tile = chunkOf(tile, it);
      place(tile, full, cols2d(type.shape));
      return full;
    });
    // A bias joins a partial sum once: on the die at block 0 of the reduction.
    if (op.kind === 'linear' && op.operands[2] && partial) {
      const s = parseSharding(outViews[0]!.spec);
      if (blockIndex(s.partial, this.grid, this.dies[d]!) !== 0) args[2]!.fill(0);
    }
    const shim = shimOp(op, operandTypes, resultTypes);
    const results = evaluateOp(shim, args);
    ins.writes.forEach((w, n) => {
      const ri = outs[n]!;
      const type = resultTypes[ri]!;
      const region = this.regionOf(outViews[n]!, d, it);
      // dx of a streamed dy sums over the chunks; every other result of a chunk is its slice.
      const dx = op.kind === 'linear_grad' && (op.attrs.wrt as readonly number[])[ri] === 0;
      if (it.chunks > 1 && outViews[n]!.chunks === 1 && !dx) {
        const part = chunkOf({ region, data: cut(results[ri]!, cols2d(type.shape), region) }, it);
        this.storeColumns(d, w, region, part, ins.accumulate);
        return;
      }
      const data = cut(results[ri]!, cols2d(type.shape), region);
      this.store(d, w, region, data, ins.accumulate);
    });
    if (op.kind === 'sgd' || op.kind === 'adam') this.captureGradient(d, ins, op);
  }

  /** Which result of the op each written buffer receives. */
  private resultsOf(ins: GemmInstr | VectorInstr, op: Op): number[] {
    const wrt = op.attrs.wrt as readonly number[] | undefined;
    const step = ins.op.includes(':') ? ins.op.slice(ins.op.indexOf(':') + 1) : null;
    if (step && wrt) {
      if (op.kind === 'linear_grad') {
        const which = step === 'dx' ? 0 : step === 'dw' ? 1 : 2;
        return [wrt.indexOf(which)];
      }
      const names = op.operands.map((_, k) => k);
      const def = opOperandNames(op);
      const k = names.find((i) => `d${def[i]}` === step);
      assert(k !== undefined, `distributed: ${ins.op} names no operand of ${op.kind}`);
      return [wrt.indexOf(k)];
    }
    return ins.writes.map((_, n) => n);
  }

  /** The shape of a value as the buffers holding it see it (its mini-batch's in a loop). */
  private heldShape(bufs: readonly string[], v: Value): number[] {
    const views = bufs.map((b) => this.view(b));
    const first = views[0];
    if (!first) return [...v.type.shape];
    const shape = [...first.shape];
    shape[shape.length - 1] = v.type.shape.at(-1)!;
    return shape;
  }

  private store(d: number, name: string, region: Region, data: Float64Array, accumulate: boolean): void {
    for (let i = 0; i < data.length; i++) data[i] = f32(data[i]!);
    if (!accumulate) {
      this.state[d]!.set(name, { region, data });
      return;
    }
    const have = this.state[d]!.get(name);
    if (!have) throw new ScheduleFault(`die ${this.dieName(d)} accumulates into buffer '${name}' before it was zeroed`);
    if (have.data.length !== data.length) throw new ScheduleFault(`die ${this.dieName(d)} accumulates ${data.length} numbers into buffer '${name}' of ${have.data.length}`);
    for (let i = 0; i < data.length; i++) have.data[i] = f32(have.data[i]! + data[i]!);
  }

  /** Set (or add) some columns of a buffer's tile, keeping the others. */
  private storeColumns(d: number, name: string, region: Region, part: Tile, accumulate: boolean): void {
    let have = this.state[d]!.get(name);
    if (!have) {
      if (accumulate) throw new ScheduleFault(`die ${this.dieName(d)} accumulates into buffer '${name}' before it was zeroed`);
      have = { region, data: new Float64Array((region.r1 - region.r0) * region.cols.length).fill(Number.NaN) };
      this.state[d]!.set(name, have);
    }
    const at = indexer(have.region);
    const w = part.region.cols.length;
    for (let r = part.region.r0; r < part.region.r1; r++) {
      part.region.cols.forEach((c, i) => {
        const k = at(r, c);
        const x = part.data[(r - part.region.r0) * w + i]!;
        have.data[k] = f32(accumulate ? have.data[k]! + x : x);
      });
    }
  }

  /** Record the gradient tile an update consumed (replicas must agree). */
  private captureGradient(d: number, ins: GemmInstr | VectorInstr, op: Op): void {
    let dw = op.operands[1]!;
    const bufs = ins.ir!.args[1];
    // Under the name of the gradient itself, not of a layout the collectives made of it.
    while (dw.def && opDef(dw.def.kind).category === 'collective') dw = dw.def.operands[0]!;
    if (!bufs) return;
    const tile = this.valueTile(d, bufs, op.operands[1]!.name);
    const width = cols2d(dw.type.shape);
    let g = this.gradients.get(dw.name);
    let seen = this.gradSeen.get(dw.name);
    if (!g || !seen) {
      g = new Float64Array(numel(dw.type));
      seen = new Uint8Array(g.length);
      this.gradients.set(dw.name, g);
      this.gradSeen.set(dw.name, seen);
    }
    const at = indexer(tile.region);
    for (let r = tile.region.r0; r < tile.region.r1; r++) {
      for (const c of tile.region.cols) {
        const x = tile.data[at(r, c)]!;
        const k = r * width + c;
        if (seen[k]) this.replicaSpread = Math.max(this.replicaSpread, Math.abs(g[k]! - x));
        g[k] = x;
        seen[k] = 1;
      }
    }
  }

  // -- normalizations over rows split across dies -----------------------------------------

  /** The tiles a normalization step reads: x, γ, and for a gradient dy (the last operand). */
  private normTiles(d: number, ins: GemmInstr | VectorInstr, op: Op) {
    const tile = (k: number) => {
      const bufs = ins.ir!.args[k];
      return bufs ? this.valueTile(d, bufs, op.operands[k]!.name) : undefined;
    };
    const x = tile(0)!;
    const gamma = tile(1)!;
    const grad = op.kind.endsWith('_grad');
    const beta = !grad && op.kind === 'layernorm' ? tile(2) : undefined;
    const dy = grad ? tile(op.operands.length - 1) : undefined;
    const at = (t: Tile | undefined) => (t ? indexer(t.region) : undefined);
    return { x, gamma, beta, dy, ax: at(x)!, ag: at(gamma)!, ab: at(beta), ady: at(dy) };
  }

  /** Each row's partial sums over this die's columns: Σx, Σx² (LayerNorm) or Σx² (RMSNorm), then Σg, Σg·x for a gradient (g = dy·γ). */
  private normStatistics(d: number, ins: GemmInstr | VectorInstr, op: Op): void {
    const { x, gamma, dy, ax, ag, ady } = this.normTiles(d, ins, op);
    const layer = op.kind.startsWith('layernorm');
    const sums = (layer ? 2 : 1) + (dy ? 2 : 0);
    const rows = x.region.r1 - x.region.r0;
    const out = new Float64Array(rows * sums);
    for (let r = x.region.r0; r < x.region.r1; r++) {
      const o = (r - x.region.r0) * sums;
      for (const c of x.region.cols) {
        const xv = x.data[ax(r, c)]!;
        let k = 0;
        if (layer) out[o + k++] += xv;
        out[o + k++] += xv * xv;
        if (dy && ady) {
          const gi = ag(0, c);
          const di = ady(r, c);
          const g = (di < 0 ? Number.NaN : dy.data[di]!) * (gi < 0 ? Number.NaN : gamma.data[gi]!);
          out[o + k++] += g;
          out[o + k++] += g * xv;
        }
      }
    }
    this.store(d, ins.writes[0]!, { r0: 0, r1: 1, cols: range(0, out.length) }, out, false);
  }

  /** LayerNorm or RMSNorm (or a gradient of one) on this die's tile, from whole-row statistics. */
  private normalize(d: number, ins: GemmInstr | VectorInstr, op: Op, it: Iteration, statsName: string): void {
    const { x, gamma, beta, dy, ax, ag, ab, ady } = this.normTiles(d, ins, op);
    const st = this.tileOfBuffer(d, statsName).data;
    const layer = op.kind.startsWith('layernorm');
    const sums = (layer ? 2 : 1) + (dy ? 2 : 0);
    const H = op.operands[0]!.type.shape.at(-1)!;
    const eps = op.attrs.eps as number;
    const wrt = (op.attrs.wrt as readonly number[] | undefined) ?? [0];
    const get = (t: Tile | undefined, i: number | undefined) => (t && i !== undefined && i >= 0 ? t.data[i]! : Number.NaN);
    /** Per row: mean, 1/σ, mean(g), mean(g·x̂). */
    const row = (r: number) => {
      const o = (r - x.region.r0) * sums;
      if (r < x.region.r0 || r >= x.region.r1) return [Number.NaN, Number.NaN, Number.NaN, Number.NaN] as const;
      const mean = layer ? st[o]! / H : 0;
      const meanSq = st[o + (layer ? 1 : 0)]! / H;
      const rstd = 1 / Math.sqrt((layer ? meanSq - mean * mean : meanSq) + eps);
      if (!dy) return [mean, rstd, 0, 0] as const;
      const sg = st[o + sums - 2]!;
      const sgx = st[o + sums - 1]!;
      return [mean, rstd, sg / H, ((sgx - mean * sg) * rstd) / H] as const;
    };
    const outs = this.resultsOf(ins, op);
    ins.writes.forEach((w, n) => {
      const which = op.kind.endsWith('_grad') ? wrt[outs[n]!]! : 0;
      const view = this.view(w)!;
      const region = this.regionOf(view, d, it);
      const out = new Float64Array((region.r1 - region.r0) * region.cols.length);
      let o = 0;
      if (which === 0) {
        for (let r = region.r0; r < region.r1; r++) {
          const [mean, rstd, mg, mgx] = row(r);
          for (const c of region.cols) {
            const xh = (get(x, ax(r, c)) - mean) * rstd;
            const gm = get(gamma, ag(0, c));
            if (!dy) out[o++] = xh * gm + (beta ? get(beta, ab!(0, c)) : 0);
            else out[o++] = rstd * (get(dy, ady!(r, c)) * gm - (layer ? mg : 0) - xh * mgx);
          }
        }
      } else {
        // dγ = Σ_rows dy·x̂, dβ = Σ_rows dy over this die's rows: a partial sum over the row split.
        for (const c of region.cols) {
          let sum = 0;
          for (let r = x.region.r0; r < x.region.r1; r++) {
            const [mean, rstd] = row(r);
            const g = get(dy, ady!(r, c));
            sum += which === 1 ? g * (get(x, ax(r, c)) - mean) * rstd : g;
          }
          out[o++] = sum;
        }
      }
      this.store(d, w, region, out, ins.accumulate);
    });
  }

  // -- collectives --------------------------------------------------------------------------

  private collective(row: readonly CollectiveInstr[], it: Iteration): void {
    const groups = new Map<string, number[]>();
    row.forEach((ins, d) => {
      const g = groups.get(ins.cid) ?? [];
      g.push(d);
      groups.set(ins.cid, g);
    });
    const writes: [number, string, Tile][] = [];
    for (const [cid, members] of groups) {
      const ins0 = row[members[0]!]!;
      const listed = ins0.group.map(([i, j]) => i * this.grid.cols + j).sort((a, b) => a - b);
      if (listed.join(',') !== [...members].sort((a, b) => a - b).join(',')) {
        throw new ScheduleFault(`collective '${cid}' (instruction ${ins0.id}) lists dies ${ins0.group.map((x) => `[${x.join(', ')}]`).join('')} but runs on ${members.map((d) => this.dieName(d)).join('')}`);
      }
      // Grouped-query gradient contributions cover only each die's own key/value columns
      // (zero elsewhere): their sum takes what the members hold.
      const made = this.view(ins0.reads[0]!) === null ? undefined : this.producer.get(ins0.writes[0]!.replace(/#\d+$/, ''));
      const spec = made?.notes?.['tile2d.in'];
      const from = typeof spec === 'string' ? parseSharding(spec) : undefined;
      const sparse = from?.kv !== undefined && from.partial.length > 0;
      const inputs = members.map((d) => {
        const ins = row[d]!;
        // Scratch (score and row-statistics reductions) as it is; a tensor's layout by value:
        // the collective's operand may be a piece of its buffer, or joined from several.
        if (this.view(ins.reads[0]!) === null) return this.tileOfBuffer(d, ins.reads[0]!);
        const op = this.producer.get(ins.writes[0]!.replace(/#\d+$/, ''));
        assert(op, `distributed: collective '${cid}' writes '${ins.writes[0]}', which no IR op makes`);
        return this.valueTile(d, ins.reads, op.operands[0]!.name);
      });
      for (const d of members) {
        const out = row[d]!.writes[0]!;
        const view = this.view(out);
        const region = view ? this.regionOf(view, d, it) : inputs[members.indexOf(d)]!.region;
        writes.push([d, out, { region, data: this.combine(ins0, inputs, region, sparse) }]);
      }
    }
    for (const [d, name, tile] of writes) {
      // Inside a chunk loop a collective fills its chunk's columns of a whole tile; the
      // numbers its inputs do not cover keep what the buffer held.
      const have = it.chunks > 1 ? this.state[d]!.get(name) : undefined;
      if (have && have.data.length === tile.data.length) tile.data.forEach((x, i) => Number.isNaN(x) && (tile.data[i] = have.data[i]!));
      this.store(d, name, tile.region, tile.data, false);
    }
  }

  /**
   * A gather copies each number from a member holding it; a reduction sums every member's
   * (`sparse`: the members holding it, zero if none).
   */
  private combine(ins: CollectiveInstr, inputs: readonly Tile[], region: Region, sparse = false): Float64Array {
    const n = (region.r1 - region.r0) * region.cols.length;
    const out = new Float64Array(n).fill(ins.op === 'all_gather' || ins.op === 'broadcast' ? Number.NaN : 0);
    const finders = inputs.map((t) => indexer(t.region));
    let o = 0;
    for (let r = region.r0; r < region.r1; r++) {
      for (const c of region.cols) {
        if (ins.op === 'all_gather' || ins.op === 'broadcast') {
          for (let m = 0; m < inputs.length; m++) {
            const k = finders[m]!(r, c);
            if (k >= 0) {
              out[o] = inputs[m]!.data[k]!;
              break;
            }
          }
        } else {
          let s = 0;
          for (let m = 0; m < inputs.length; m++) {
            const k = finders[m]!(r, c);
            s += k >= 0 ? inputs[m]!.data[k]! : sparse ? 0 : Number.NaN;
          }
          out[o] = s;
        }
        o++;
      }
    }
    return out;
  }

  // -- attention ----------------------------------------------------------------------------

  private attentionStep(d: number, ins: GemmInstr | VectorInstr, op: Op, it: Iteration): void {
    const step = ins.op.slice(ins.op.indexOf(':') + 1);
    const args = ins.ir!.args;
    // Each operand's tile as the core reads it (the buffer may hold more: the die's slice).
    const tileOfArg = (k: number) => {
      const bufs = args[k];
      assert(bufs, `distributed: ${ins.op} on die ${this.dieName(d)} needs operand ${k}`);
      const v = op.operands[k]!;
      const shape = this.heldShape(bufs, v);
      const spec = ins.ir!.specs[k];
      const tile = this.valueTile(d, bufs, v.name);
      return { tile: spec ? restrict(tile, this.regionOf({ shape, spec, chunks: 1, parts: null }, d, it)) : tile, shape, v };
    };
    const get = (k: number) => {
      const { tile, shape, v } = tileOfArg(k);
      const full = new Float64Array(numel({ dtype: v.type.dtype, shape })).fill(Number.NaN);
      place(tile, full, shape.at(-1)!);
      return { data: full, shape };
    };
    const q = get(0);
    const [b, s, hq] = q.shape as [number, number, number];
    const heads = op.attrs.heads as number;
    const kvHeads = (op.attrs.kv_heads as number | undefined) ?? heads;
    const hd = hq / heads;
    const t = op.operands[1]!.type.shape[1]!;
    const scale = (op.attrs.scale as number | undefined) ?? 1 / Math.sqrt(hd);
    const causal = op.attrs.causal as boolean;
    // This die's heads and, per head, its dimensions: from q's tile.
    const qRegion = tileOfArg(0).tile.region;
    const mine = new Map<number, number[]>();
    for (const c of qRegion.cols) {
      const h = Math.floor(c / hd);
      const l = mine.get(h) ?? [];
      l.push(c - h * hd);
      mine.set(h, l);
    }
    const hs = [...mine.keys()];
    const rows = range(qRegion.r0, qRegion.r1);
    const kvw = kvHeads * hd;
    const group = heads / kvHeads;
    const scoreLen = hs.length * rows.length * t;
    const si = (hh: number, ri: number, j: number) => (hh * rows.length + ri) * t + j;
    const scores = (name: string) => this.tileOfBuffer(d, name).data;
    const scratch = (data: Float64Array): Tile => ({ region: { r0: 0, r1: 1, cols: range(0, data.length) }, data });
    const outName = ins.writes[0]!;
    const dyAt = op.operands.length - 1;
    switch (step) {
      case 'qk':
      case 'dp': {
        // scores[h, row, j] = Σ over this die's dimensions of head h: a[row, ·] · b[batch, j, ·]
        // with (a, b) = (q, k), or (dy, v) for dP; partial when the die holds a slice of h.
        const a = step === 'qk' ? q : get(dyAt);
        const bk = get(step === 'qk' ? 1 : 2);
        const out = new Float64Array(scoreLen);
        hs.forEach((h, hh) => {
          const g = Math.floor(h / group);
          rows.forEach((row, ri) => {
            const bi = Math.floor(row / s);
            for (let j = 0; j < t; j++) {
              let sum = 0;
              for (const dim of mine.get(h)!) sum += a.data[row * hq + h * hd + dim]! * bk.data[(bi * t + j) * kvw + g * hd + dim]!;
              out[si(hh, ri, j)] = sum;
            }
          });
        });
        this.store(d, outName, scratch(out).region, out, false);
        return;
      }
      case 'softmax': {
        const sc = scores(ins.reads[0]!);
        const maskAt = op.operands.length === (op.kind === 'attention' ? 4 : 5) ? 3 : -1;
        const mask = maskAt >= 0 ? get(maskAt) : undefined;
        const out = new Float64Array(scoreLen);
        hs.forEach((h, hh) => {
          rows.forEach((row, ri) => {
            const bi = Math.floor(row / s);
            const i = row % s;
            const live = causal ? Math.min(i + 1, t) : t;
            let max = -Infinity;
            for (let j = 0; j < live; j++) {
              let x = sc[si(hh, ri, j)]! * scale;
              if (mask) x += mask.data[maskIndex(mask.shape, b, heads, s, t, bi, h, i, j)]!;
              out[si(hh, ri, j)] = x;
              if (x > max) max = x;
            }
            let sum = 0;
            for (let j = 0; j < live; j++) {
              const e = Math.exp(out[si(hh, ri, j)]! - max);
              out[si(hh, ri, j)] = e;
              sum += e;
            }
            for (let j = 0; j < t; j++) out[si(hh, ri, j)] = j < live ? out[si(hh, ri, j)]! / sum : 0;
          });
        });
        this.store(d, outName, scratch(out).region, out, false);
        return;
      }
      case 'softmax_grad': {
        const p = scores(ins.reads[0]!);
        const dp = scores(ins.reads[1]!);
        const out = new Float64Array(scoreLen);
        for (let hh = 0; hh < hs.length; hh++) {
          for (let ri = 0; ri < rows.length; ri++) {
            let dot = 0;
            for (let j = 0; j < t; j++) dot += p[si(hh, ri, j)]! * dp[si(hh, ri, j)]!;
            for (let j = 0; j < t; j++) out[si(hh, ri, j)] = scale * p[si(hh, ri, j)]! * (dp[si(hh, ri, j)]! - dot);
          }
        }
        this.store(d, outName, scratch(out).region, out, false);
        return;
      }
      case 'pv':
      case 'dq': {
        // out[row, h·hd + dim] = Σ_j w[h, row, j] · x[b, j, g·hd + dim] with (w, x) = (p, v) or (dS, k).
        const w = scores(ins.reads[0]!);
        const x = get(step === 'pv' ? 2 : 1);
        const full = new Float64Array(numel({ dtype: 'f32', shape: q.shape })).fill(Number.NaN);
        hs.forEach((h, hh) => {
          const g = Math.floor(h / group);
          rows.forEach((row, ri) => {
            const bi = Math.floor(row / s);
            for (const dim of mine.get(h)!) {
              let sum = 0;
              for (let j = 0; j < t; j++) sum += w[si(hh, ri, j)]! * x.data[(bi * t + j) * kvw + g * hd + dim]!;
              full[row * hq + h * hd + dim] = sum;
            }
          });
        });
        const region = this.regionOf(this.view(outName)!, d, it);
        this.store(d, outName, region, cut(full, hq, region), false);
        return;
      }
      case 'dk':
      case 'dv': {
        // out[b, j, g·hd + dim] = Σ_{h of g} Σ_i w[h, row, j] · y[row, h·hd + dim] with (w, y) = (dS, q) or (p, dy).
        const w = scores(ins.reads[0]!);
        const y = step === 'dk' ? q : get(dyAt);
        const outView = this.view(outName)!;
        const full = new Float64Array(numel({ dtype: 'f32', shape: outView.shape }));
        hs.forEach((h, hh) => {
          const g = Math.floor(h / group);
          rows.forEach((row, ri) => {
            const bi = Math.floor(row / s);
            for (const dim of mine.get(h)!) {
              const yv = y.data[row * hq + h * hd + dim]!;
              for (let j = 0; j < t; j++) full[(bi * t + j) * kvw + g * hd + dim] += w[si(hh, ri, j)]! * yv;
            }
          });
        });
        const region = this.regionOf(outView, d, it);
        this.store(d, outName, region, cut(full, kvw, region), false);
        return;
      }
      default:
        throw new ScheduleFault(`instruction ${ins.id}: unknown attention step '${ins.op}'`);
    }
  }
}

// -- helpers ----------------------------------------------------------------------------------

function range(a: number, b: number): number[] {
  return Array.from({ length: Math.max(0, b - a) }, (_, i) => a + i);
}

function round(data: Float64Array, type: TensorType): Float64Array {
  if (isFloat(type.dtype)) for (let i = 0; i < data.length; i++) data[i] = f32(data[i]!);
  return data;
}

/** Index of (row, column) in a tile's data, or −1 when the tile does not hold it. */
function indexer(region: Region): (r: number, c: number) => number {
  const pos = new Map<number, number>();
  region.cols.forEach((c, i) => pos.set(c, i));
  const w = region.cols.length;
  return (r, c) => {
    if (r < region.r0 || r >= region.r1) return -1;
    const i = pos.get(c);
    return i === undefined ? -1 : (r - region.r0) * w + i;
  };
}

/** The chunk loop iteration's column slice of a tile (k-th of n equal slices, as blockRange cuts). */
function chunkOf(tile: Tile, it: Iteration): Tile {
  const [a, b] = blockRange(tile.region.cols.length, it.chunks, it.chunk);
  const w = tile.region.cols.length;
  const rows = tile.region.r1 - tile.region.r0;
  const data = new Float64Array(rows * (b - a));
  for (let r = 0; r < rows; r++) data.set(tile.data.subarray(r * w + a, r * w + b), r * (b - a));
  return { region: { r0: tile.region.r0, r1: tile.region.r1, cols: tile.region.cols.slice(a, b) }, data };
}

/** The part of a tile inside a region (rows and columns both held). */
function restrict(tile: Tile, region: Region): Tile {
  const keep = new Set(region.cols);
  const cols = tile.region.cols.map((c, i) => [c, i] as const).filter(([c]) => keep.has(c));
  const r0 = Math.max(tile.region.r0, region.r0);
  const r1 = Math.min(tile.region.r1, region.r1);
  const w = tile.region.cols.length;
  const data = new Float64Array(Math.max(0, r1 - r0) * cols.length);
  for (let r = r0; r < r1; r++) cols.forEach(([, i], k) => (data[(r - r0) * cols.length + k] = tile.data[(r - tile.region.r0) * w + i]!));
  return { region: { r0, r1: Math.max(r0, r1), cols: cols.map(([c]) => c) }, data };
}

/** Write a tile into a whole array of row width `width`. */
function place(tile: Tile, full: Float64Array, width: number): void {
  const w = tile.region.cols.length;
  for (let r = tile.region.r0; r < tile.region.r1; r++) {
    tile.region.cols.forEach((c, i) => (full[r * width + c] = tile.data[(r - tile.region.r0) * w + i]!));
  }
}

/** The region's numbers out of a whole array of row width `width`. */
function cut(full: Float64Array, width: number, region: Region): Float64Array {
  const w = region.cols.length;
  const out = new Float64Array((region.r1 - region.r0) * w);
  for (let r = region.r0; r < region.r1; r++) region.cols.forEach((c, i) => (out[(r - region.r0) * w + i] = full[r * width + c]!));
  return out;
}

/** The element of a mask of shape `shape` (broadcast to [b, heads, s, t]) at (bi, h, i, j). */
function maskIndex(shape: readonly number[], b: number, heads: number, s: number, t: number, bi: number, h: number, i: number, j: number): number {
  const want = [b, heads, s, t];
  const at = [bi, h, i, j];
  const extra = want.length - shape.length;
  let idx = 0;
  for (let k = 0; k < shape.length; k++) idx = idx * shape[k]! + (shape[k] === 1 ? 0 : at[k + extra]!);
  return idx;
}

/** Operand names of an op (a gradient op's are its forward op's, then dy: grads.ts). */
function opOperandNames(op: Op): string[] {
  return opDef(op.kind).operands.map((o) => o.name);
}

/** The op as this die sees it: operand and result types at its (mini-batch) shapes. */
function shimOp(op: Op, operands: readonly TensorType[], results: readonly TensorType[]): Op {
  return {
    ...op,
    operands: op.operands.map((v, k) => ({ ...v, type: operands[k]! })),
    results: op.results.map((r, i) => ({ ...r, type: results[i]! })),
  } as Op;
}
