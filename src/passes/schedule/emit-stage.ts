// schedule/emit-stage: emits one stage — its prologue, its mini-batch loop and its epilogue.
// It orders the loop body (a Linear's backward in Algorithm 1's order, all-gathers sunk to
// their first reader, streamed Linears as chunk loops) and decides whether the stage's weights
// stream; emit-ops.ts makes each op's instructions.

import type { Module, Op, Value } from '../../ir/module.js';
import { formatSharding, type Sharding } from '../sharding.js';
import { isCollective, rootOf, type StagePlan } from './analysis.js';
import { elemBytes, tileElems } from './geometry.js';
import { addCarried, addDep, originOf, type SNode } from './skeleton.js';
import { isShapeOnly, LOOP_ORIGIN, type Builder, type ChunkPlan, type Part, type Place } from './emit.js';
import { OpEmitter } from './emit-ops.js';
import { bufferCapacity } from '../../target/target.js';

/**
 * An entry of a loop body: an op (or half of a Linear's backward), or a chunk loop. A gather
 * placed early on purpose (`early`) stays where it is.
 */
type Item = { readonly op: Op; readonly part?: Part; readonly early?: boolean } | ChunkPlan;

/**
 * Move each all-gather (and broadcast) down to just before the first item that reads it: its
 * result is larger than its input, so it should live as briefly as possible. The IR's order
 * (ready ops by creation) often leaves them early, as collectives are created last.
 */
function sinkGathers(items: readonly Item[]): Item[] {
  const out = [...items];
  for (let i = out.length - 1; i >= 0; i--) {
    const it = out[i]!;
    if ('lead' in it || it.part || it.early || (it.op.kind !== 'all_gather' && it.op.kind !== 'broadcast')) continue;
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
export class StageEmitter extends OpEmitter {
  /** The Linear backwards this stage gathers early, with the bytes of x, dx and dy each holds then. */
  readonly early: { readonly op: Op; readonly bytes: number }[] = [];
  /** How many Linear backwards it keeps in Algorithm 1's order. */
  ordered = 0;
  private readonly streamWeights: boolean;
  private readonly here: ReadonlySet<Op>;
  private chunkSeq = 0;

  constructor(
    b: Builder,
    private readonly plan: StagePlan,
    /** Whether a Linear backward keeps Algorithm 1's order; the others gather x early (groupBody). */
    private readonly keepsOrder: (op: Op) => boolean = () => true,
  ) {
    super(b);
    this.here = new Set([...plan.prologue, ...plan.body, ...plan.epilogue]);
    this.streamWeights = this.weightDemand() > bufferCapacity(b.target).weight;
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
   * resident together. A Linear that need not keep that order gathers x before reducing dx
   * instead: the gather runs on the NoP while dx is computed, and dx's reduce-scatter while dw
   * is, at the price of x, dy and dx resident together (buildPrograms keeps Algorithm 1's order
   * where that overflows). A streamed Linear runs as a chunk loop with what streams beside it.
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
      else if (chains && !this.keepsOrder(op)) {
        const { x, dx, dy } = this.backwardBytes(op);
        this.early.push({ op, bytes: x + dx + dy });
        // In program order after dx's GEMM, which the NoP engine does not wait for: the gather
        // follows dy's (on the critical path) and runs while dx is computed.
        out.push({ op, part: 'dx' }, ...chains[1]!.map((o) => ({ op: o, early: true })), ...chains[0]!.map((o) => ({ op: o })), { op, part: 'dw' });
      }
      else if (chains) {
        this.ordered++;
        out.push({ op, part: 'dx' }, ...chains.flat().map((o) => ({ op: o })), { op, part: 'dw' });
      }
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
    const { x, dx, dy } = this.backwardBytes(op);
    return x + dx + dy / chunks < dy + Math.max(x, dx);
  }

  /** A Linear backward's tiles of x, dx (when it makes one) and dy on a die. */
  private backwardBytes(op: Op): { x: number; dx: number; dy: number } {
    const { specs, grid } = this.b.a;
    const size = (v: Value, s: Sharding | undefined) => tileElems(v.type, s, grid) * elemBytes(v.type);
    const last = op.operands.length - 1;
    return {
      x: size(op.operands[0]!, specs.in(op)[0]),
      dx: (op.attrs.wrt as readonly number[])[0] === 0 ? size(op.results[0]!, specs.out(op)[0]) : 0,
      dy: size(op.operands[last]!, specs.in(op)[last]),
    };
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
}

/**
 * The schedule without §III-B a's overlap: in `list` (a loop body, or the top level with
 * `loop` null) the instructions form alternating runs of DRAM transfers and on-package work
 * (compute, collectives, nested loops), and each run waits for the whole run before it; in a
 * loop, the first run of an iteration waits for all of the previous iteration. So no DRAM
 * transfer overlaps computation or communication anywhere, and a mini-batch's reads start
 * only once the previous mini-batch is done.
 */
export function serializeDram(list: readonly SNode[], loop: SNode | null): void {
  const isDram = (n: SNode) => n.fixed.kind === 'dram.read' || n.fixed.kind === 'dram.write';
  let before: SNode[] = [];
  let run: SNode[] = [];
  let first: SNode[] | null = null;
  for (const n of list) {
    if (n.fixed.kind === 'loop') serializeDram(n.body, n);
    if (run.length && isDram(n) !== isDram(run[0]!)) {
      first ??= run;
      before = run;
      run = [];
    }
    for (const p of before) addDep(n, p);
    run.push(n);
  }
  if (!loop) return;
  for (const x of first ?? run) for (const y of list) addCarried(x, y, loop);
}
