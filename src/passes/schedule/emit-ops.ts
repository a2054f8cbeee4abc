// schedule/emit-ops: one op's instructions, by kind — views alias their operand's buffers;
// collectives, GEMMs (a Linear's backward split as Algorithm 1 orders it), vector and
// data-movement ops each become instructions over this die's tiles. Attention is in
// emit-attention.ts; the order of a stage is in emit-stage.ts.

import type { Op, Value } from '../../ir/module.js';
import { opDef } from '../../ir/ops.js';
import { numel, type TensorType } from '../../ir/types.js';
import { assertNever } from '../../diagnostics/diagnostic.js';
import { groupOf, span, specEvenSplit, specMaxBlock, specRange, tileOf, type Axis, type Die, type Grid, type Sharding } from '../sharding.js';
import type { CollectiveOp, Range } from '../../backend/program.js';
import { dieTileElems, elemBytes, even, len, runMembers, tileElems } from './geometry.js';
import { originOf, type Buf, type CollectiveSize, type GemmFields, type GroupFields, type Origin, type Static, type VectorFields } from './skeleton.js';
import { isShapeOnly, isView, unique, type ChunkPlan, type Operands, type Part, type Place } from './emit.js';
import { AttentionEmitter } from './emit-attention.js';
import { algorithmFor, collectiveCost, ringShape, type CollectiveKind } from '../collective-cost.js';
import type { CollectiveAlgo } from '../../ir/collective-ops.js';

/** Emits one op's instructions (see ValueEmitter for the stage's state). */
export class OpEmitter extends AttentionEmitter {
  /** Emit `op` (or one half of a Linear's backward); operands are fetched when first needed. */
  protected emitOp(op: Op, place: Place, chunk?: ChunkPlan, readsHere = false, part?: Part): void {
    const memo = new Map<number, Buf[]>();
    this.fetched = memo;
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

  private emitCollective(op: Op, input: Buf[], place: Place, chunk?: ChunkPlan): void {
    const { a } = this.b;
    const r = op.results[0]!;
    const out = this.result(op, 0, place, chunk);
    const scale = (a.batched.has(r) ? place.rowScale : 1) / place.chunks;
    const notes = op.notes ?? {};
    const axes = [...(op.attrs.axis as string)] as Axis[];
    // Grouped-query steps run among runs of consecutive dies (collectives' runLength).
    const run = op.attrs.block as number | undefined;
    // Heads dealt unevenly: a collective along the other axis moves its own group's share
    // (the group's dies hold as many heads; its largest tile, as the notes take the grid's);
    // along the dealt axis, the grid's largest (notes).
    const from = a.specs.in(op)[0];
    const g = from?.granules;
    const own = g !== undefined && !axes.includes(g.axis) && !from!.kv;
    const members = (die: Die) => (run ? runMembers(`${r.name} run`, axes, run, a.grid, die) : ringMembers(r.name, axes, a.grid, die));
    // Member lists are shared by the dies of a group (ringOf, runMembers): one size per list.
    const sizes = new Map<readonly Range[], CollectiveSize>();
    const sized = (die: Die): CollectiveSize => {
      const group = members(die).group;
      let z = sizes.get(group);
      if (z === undefined) {
        const tile = Math.max(...group.map(([i, j]) => dieTileElems(op.operands[0]!.type, from, a.grid, { i, j }))) * elemBytes(op.operands[0]!.type);
        const g = run ?? span(axes, a.grid);
        const c = collectiveCost(op.kind as CollectiveKind, op.attrs.algo as CollectiveAlgo, tile, g, a.grid, ringShape(axes, g, this.b.target));
        z = { sentBytes: c.sentBytes * scale, linkBytes: c.linkBytes * scale, steps: c.steps };
        sizes.set(group, z);
      }
      return z;
    };
    const fixed: Static = {
      kind: 'collective',
      op: op.kind as CollectiveOp,
      algo: op.attrs.algo as string,
      axis: op.attrs.axis as string,
      sentBytes: ((notes['collective.sent_bytes'] as number | undefined) ?? 0) * scale,
      linkBytes: ((notes['collective.link_bytes'] as number | undefined) ?? 0) * scale,
      steps: (notes['collective.steps'] as number | undefined) ?? 0,
      // A step of an attention core (collectives' attentionSteps) is reported as part of it.
      partOf: (notes['collective.part_of'] as string | undefined) ?? null,
      ring: `axes ${axes.join('')}${run ? ` run ${run}` : ''}`,
      members,
      ...(own ? { sized } : {}),
    };
    this.b.node(place, originOf(op), fixed, input, [out], !own, this.isAccumulator(r, place));
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
      return { batch: 1, m: len(t.rows) * rs, n: len(t.cols) / place.chunks, k: len(specRange(contract, ys, 'partial', a.grid, die)) };
    };
    const uniform = even(y.type, ys, a.grid) && specEvenSplit(contract, ys, 'partial', a.grid);
    const acc = this.isAccumulator(y, place);
    this.b.node(place, originOf(op), { kind: 'gemm', op: op.kind, accumulate: acc, dims, ir: this.irOf(op) }, reads, [out], uniform, acc);
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
      const fixed: Static = { kind: 'gemm', op: `linear_grad:${which}`, accumulate: acc, dims: (die) => dims(tileOf(type, spec, a.grid, die), die), ir: this.irOf(op) };
      this.b.node(place, origin, fixed, reads, [out], even(type, spec, a.grid) && specEvenSplit(contract, spec, 'partial', a.grid), acc);
    };
    (op.attrs.wrt as readonly number[]).forEach((which, i) => {
      if (part && (part === 'dw') !== (which === 1)) return;
      const r = op.results[i]!;
      const s = a.specs.out(op)[i]!;
      if (which === 0) {
        const pre = this.local.get(r)?.[0];
        const out = pre ?? this.result(op, i, place, chunk);
        grad('dx', pre !== undefined, [...ins(dyAt), ...ins(1)], out, s, r.type, nOut, (t, die) => ({
          batch: 1, m: len(t.rows) * rs, n: len(t.cols), k: len(specRange(nOut, s, 'partial', a.grid, die)) / c,
        }));
      } else if (which === 1) {
        const streamed = chunk?.streamWeights === true && c > 1;
        const out = streamed ? this.streamedGradient(r, s, place, origin) : this.result(op, i, place, chunk);
        grad('dw', true, [...ins(0), ...ins(dyAt)], out, s, r.type, rows, (t, die) => ({
          batch: 1, m: len(t.rows), n: len(t.cols) / c, k: len(specRange(rows, s, 'partial', a.grid, die)) * rs,
        }));
        if (streamed) this.b.dramWriters.set(r, this.b.dramNode(place, origin, 'dram.write', r, s, 1 / c, [out]));
      } else {
        const out = this.result(op, i, place, chunk);
        const dys = a.specs.in(op)[dyAt];
        const work = (die: Die): VectorFields => {
          const e = (dieTileElems(dy.type, dys, a.grid, die) * rs) / c;
          return { elements: e, flops: e };
        };
        this.b.node(place, origin, { kind: 'vector', op: 'linear_grad:db', accumulate: true, work, ir: this.irOf(op) }, ins(dyAt), [out], even(dy.type, dys, a.grid), true);
      }
    });
  }

  /**
   * A normalization whose rows span dies (collectives' `norm.*` notes): each die sums its part
   * of every row into a small buffer, the row's dies all-reduce it, and the op then reads the
   * whole-row statistics from there. Returns that buffer.
   */
  private rowStatistics(op: Op, reads: Buf[], place: Place): Buf | undefined {
    const notes = op.notes ?? {};
    const sums = notes['norm.sums'];
    if (typeof sums !== 'number') return undefined;
    const { a } = this.b;
    const x = op.operands[0]!;
    const xs = a.specs.in(op)[0]!;
    const rs = a.batched.has(x) ? place.rowScale : 1;
    const rowsOf = (die: Die) => len(tileOf(x.type, xs, a.grid, die).rows) * rs;
    const most = specMaxBlock(numel(x.type) / x.type.shape.at(-1)!, xs, 'rows', a.grid) * rs;
    const name = `${op.results[0]!.name}.stats`;
    const stats = this.b.buffer(name, 'activation', most * sums * elemBytes(x.type), name, false, null);
    const origin = originOf(op);
    const work = (die: Die): VectorFields => ({ elements: rowsOf(die) * sums, flops: 0 });
    this.b.node(place, origin, { kind: 'vector', op: `${op.kind}:stats`, accumulate: false, work, ir: this.irOf(op) }, reads, [stats], even(x.type, xs, a.grid));
    const axes = xs.cols;
    const fixed: Static = {
      kind: 'collective',
      op: 'all_reduce',
      algo: (notes['norm.algo'] as string | undefined) ?? algorithmFor(this.b.strategy, 'all_reduce', axes),
      axis: axes.join(''),
      sentBytes: (notes['norm.sent_bytes'] as number) * rs,
      linkBytes: (notes['norm.link_bytes'] as number) * rs,
      steps: notes['norm.steps'] as number,
      partOf: op.kind,
      ring: `axes ${axes.join('')}`,
      members: (die) => ringMembers(name, axes, a.grid, die),
    };
    this.b.node(place, origin, fixed, [stats], [stats], true);
    return stats;
  }

  /** One chunk of a streamed weight gradient: read from DRAM (it starts at zero there) before accumulating. */
  private streamedGradient(r: Value, s: Sharding, place: Place, origin: Origin): Buf {
    const { a } = this.b;
    const buf = this.b.buffer(r.name, 'weight', (tileElems(r.type, s, a.grid) * elemBytes(r.type)) / place.chunks, r.name, false, this.b.view(r, r.type, s, place.chunks));
    place.owned.add(buf);
    this.b.dramNode(place, origin, 'dram.read', r, s, 1 / place.chunks, [buf]);
    return buf;
  }

  /**
   * Vector and data-movement ops over this die's tiles. A weight update writes its weight (and
   * optimizer state) in place; a copy (data movement that is not a view) costs no FLOPs. A
   * gradient op with several results gets one instruction per result, each with its share of
   * the op's work, so an accumulated gradient (a norm's gamma) is its own instruction.
   */
  private emitVector(op: Op, ins: Operands, operandBufs: Buf[], place: Place, chunk?: ChunkPlan): void {
    let reads = operandBufs;
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
      this.b.node(place, originOf(op), { kind: 'vector', op: name, accumulate: acc, work, ir: this.irOf(op) }, reads, outs, even(ref.v.type, ref.s, a.grid), acc);
    };
    const stats = this.rowStatistics(op, reads, place);
    if (stats) reads = [...reads, stats];
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
}

/** A row, column or all-die ring: the group `groupOf` gives, named the same on each of its dies. */
function ringMembers(name: string, axes: readonly Axis[], grid: Grid, die: Die): GroupFields {
  const key = axes.length === 2 ? 'all' : axes[0] === 'r' ? `col ${die.j}` : axes[0] === 'c' ? `row ${die.i}` : 'self';
  const { group, position } = ringOf(axes, grid, die);
  return { cid: `${name} ${key}`, group, position };
}

/**
 * A die's ring over `axes` and its position in it. Every collective over the same axes has
 * the same rings, so each is made once per grid and shared by the instructions (a ring over
 * all dies of a 32×32 grid is a thousand pairs).
 */
const RINGS = new Map<string, { group: Range[]; position: number }[]>();

function ringOf(axes: readonly Axis[], grid: Grid, die: Die): { group: Range[]; position: number } {
  const key = `${grid.rows}x${grid.cols} ${axes.join('')}`;
  let byDie = RINGS.get(key);
  if (byDie === undefined) RINGS.set(key, (byDie = []));
  const d = die.i * grid.cols + die.j;
  let ring = byDie[d];
  if (ring === undefined) {
    // Made for the first die asked about, then given to every member at its own position.
    const dies = groupOf(axes, grid, die);
    const group = dies.map((g) => [g.i, g.j] as const);
    dies.forEach((g, position) => {
      const m = g.i * grid.cols + g.j;
      byDie![m] ??= { group, position };
    });
    ring = byDie[d] ?? { group, position: -1 };
    byDie[d] = ring;
  }
  return ring;
}
