// schedule/emit-values: the base layer of a stage's emitter — its state (places, buffers of the
// values available in the stage, work deferred to the end of a loop) and how an op's operands and
// results get their buffers: DRAM reads where and when they are needed, results in new buffers
// (zeroed first when they accumulate), DRAM writes of what later stages read.

import type { Op, Value } from '../../ir/module.js';
import { opDef } from '../../ir/ops.js';
import { assert } from '../../diagnostics/diagnostic.js';
import type { TensorType } from '../../ir/types.js';
import { formatSharding, REPLICATED, type Die, type Sharding } from '../sharding.js';
import { rootOf } from './analysis.js';
import { dieTileElems, elemBytes, even, minibatchType, tileElems } from './geometry.js';

/** A batched type as a place sees it: its mini-batch inside the loop (rowScale = size / batch). */
function scaledRows(t: TensorType, rowScale: number): TensorType {
  return rowScale === 1 ? t : minibatchType(t, Math.round(t.shape[0]! * rowScale));
}
import { addDep, originOf, type Buf, type IrNode, type Origin, type SNode, type VectorFields } from './skeleton.js';
import { isShapeOnly, type Builder, type ChunkPlan, type Part, type Place } from './emit.js';

/** A stage's emission state, and the buffers of an op's operands and results. */
export class ValueEmitter {
  /** Buffers holding each value available in this stage (made here; views alias their operand). */
  protected readonly local = new Map<Value, Buf[]>();
  private readonly reads = new Map<string, Buf>();
  protected readonly prologue: Place;
  protected readonly epilogue: Place;
  protected body: Place | undefined;
  protected readonly afterLoop: (() => void)[] = [];
  protected afterChunk: (() => void)[] = [];
  /** The chunk loop being filled: per-mini-batch reads its members need go before it. */
  protected openChunk: SNode | undefined;
  /** The operand buffers fetched so far for the op being emitted, by operand index. */
  protected fetched: ReadonlyMap<number, Buf[]> = new Map();
  /** Weights this stage streams chunk by chunk, with their chunk count (their updates stream too). */
  protected readonly streamedParams = new Map<Value, number>();

  constructor(protected readonly b: Builder) {
    const top = (): Place => ({ list: [], loop: null, rowScale: 1, chunks: 1, inBatchLoop: false, key: 'top', owned: new Set() });
    this.prologue = top();
    this.epilogue = top();
  }

  protected operand(op: Op, k: number, place: Place, chunk: ChunkPlan | undefined, readsHere: boolean): Buf[] | undefined {
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
    const view = this.b.view(root, batched ? scaledRows(root.type, where.rowScale) : root.type, spec, where.chunks);
    const buf = this.b.buffer(root.name, batched ? 'activation' : 'weight', tileElems(root.type, spec, a.grid) * elemBytes(root.type) * scale, root.name, where.loop !== null, view);
    if (where.chunks > 1) where.owned.add(buf);
    const node = this.b.dramNode(where, origin, 'dram.read', root, spec, scale, [buf]);
    if (where === this.body && this.openChunk) where.list.splice(where.list.indexOf(this.openChunk), 0, where.list.pop()!);
    for (const w of this.b.dramSources(v)) addDep(node, w);
    this.reads.set(key, buf);
    return buf;
  }

  /** A new buffer for result `i`; a whole-batch result made in the loop is an accumulator, zeroed first. */
  protected result(op: Op, i: number, place: Place, chunk?: ChunkPlan): Buf {
    const { a } = this.b;
    const r = op.results[i]!;
    const spec = a.specs.out(op)[i]!;
    const batched = a.batched.has(r);
    const streamed = chunk?.streamed.has(r) === true;
    const scale = (batched ? place.rowScale : 1) / (streamed ? place.chunks : 1);
    const view = this.b.view(r, batched ? scaledRows(r.type, place.rowScale) : r.type, spec, streamed ? place.chunks : 1);
    const buf = this.b.buffer(r.name, batched ? 'activation' : 'weight', tileElems(r.type, spec, a.grid) * elemBytes(r.type) * scale, rootOf(r).name, false, view);
    if (streamed) place.owned.add(buf);
    this.local.set(r, [buf]);
    if (!batched && place.inBatchLoop) this.fill(buf, r.type, spec, originOf(op), this.prologue, 1);
    return buf;
  }

  protected isAccumulator(r: Value, place: Place): boolean {
    return place.inBatchLoop && !this.b.a.batched.has(r);
  }

  /** Zero an accumulator (Algorithm 1: "initialize dW[i, j] held by B_W[i, j]"). */
  protected fill(buf: Buf, type: TensorType, spec: Sharding, origin: Origin, place: Place, scale: number): void {
    const grid = this.b.a.grid;
    const work = (die: Die): VectorFields => ({ elements: dieTileElems(type, spec, grid, die) * scale, flops: 0 });
    this.b.node(place, origin, { kind: 'vector', op: 'fill', accumulate: false, work, ir: null }, [], [buf], even(type, spec, grid));
  }

  /** DRAM writes of what later stages read: after the value is complete in its place. */
  protected afterProduce(op: Op, place: Place, part?: Part): void {
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

  /** The IR op an instruction carries out, with the buffers of the operands fetched so far. */
  protected irOf(op: Op): IrNode {
    const specs = this.b.a.specs.in(op);
    return {
      op,
      args: op.operands.map((_, k) => (isShapeOnly(op, k) ? null : (this.fetched.get(k) ?? null))),
      specs: op.operands.map((_, k) => (isShapeOnly(op, k) ? null : formatSharding(specs[k] ?? REPLICATED))),
    };
  }

  /** The op table's FLOPs for the op, or for the gradients `wrt` of a gradient op (whose `fwd` is backward work). */
  protected opFlops(op: Op, wrt?: readonly number[]): number {
    const attrs = wrt ? { ...op.attrs, wrt: [...wrt] } : op.attrs;
    const sig = { operands: op.operands.map((v) => v.type), results: op.results.map((v) => v.type), attrs };
    return opDef(op.kind).flops(sig).fwd;
  }
}
