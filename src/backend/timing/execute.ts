// The timing backend's executor: runs every die's program (program.ts) as discrete events and
// reports when each die finishes, where its time went (per engine and per Transformer block),
// and — optionally — a trace of every instruction.
//
// Shape. Every die of a compile runs the same instruction structure; only byte, work and group
// numbers differ (schedule/programs.ts). The executor reads die 0's program into a flat shape
// (instructions in program order with their loops, deps and carried deps), checks that every
// other die's program has the same structure (GY7003 otherwise), and keeps per die only its
// numbers: the seconds of each compute instruction, the bytes of each DRAM transfer and each
// collective's group, position and steps. Programs are read one die at a time.
//
// Lazy unrolling. A loop's iterations are materialised as they are reached, at most two of a
// loop in flight at once (double buffering: mini-batch n+1's DRAM reads may overlap mini-batch
// n's work; n+2 waits until n has finished), so memory grows with the dies and the body
// sizes, not with the trip counts. A dep names the current instance of an instruction in the
// same body or an enclosing scope; a loop named as a dep stands for all its iterations;
// `carried` ids name the previous iteration's instance; every instance of a body also waits
// for its loop to start. A last iteration's work (seconds, bytes) is last_size / size of a
// full one.
//
// Engines. Each die has a compute engine (GEMM and vector instructions, timed by the die's
// cost model, die-model.ts), a DMA engine (one DRAM transfer at a time, on the die's share of
// the DRAM channels, engines.ts) and a NoP engine (one collective at a time). Compute and DMA
// serve the ready instance earliest in program order, so a DRAM read of the next mini-batch
// overlaps this one's compute. The NoP engine serves its collectives strictly in program
// order: every die runs the same order, so no two dies can wait on each other.
//
// Collectives. The dies of a group meet by (group, loop iteration path). A collective of S
// steps moves `link_bytes / S` per step from each die to its successor in the group's ring
// order (ring algorithms exactly; the others as a ring of the same steps, link bytes and total
// latency, engines.ts). Once every member has started, the ring is solved exactly: die p's
// step-s send waits for its step-(s−1) message from p−1 and for its own previous send to leave
// the link (first come, first served), so with τ = step bytes / β and a = step latency
//   send(p, s) = s·τ + max_{0≤k≤s} (start(p−k) + k·a)
// and p is done when its last message has arrived and it has received p−1's last one. Links
// of a group carry only that group's traffic (a die's NoP engine runs one collective at a
// time), so this equals simulating every message; links of different groups sharing a
// physical wire are not modelled.
//
// Accounting. Per die, an online sweep splits time into compute (compute engine busy), nop
// (NoP busy, compute idle), dram (only DMA busy: DRAM time not hidden by on-package work, the
// paper's Fig. 8 "DRAM access ... segment exceeds the on-package execution") and idle (waiting
// for other dies), attributed to the Transformer block of the instruction running. Each
// collective's time is also split into its link latency (steps × a, fixed) and transmission
// (the rest of its duration: bytes on the link, plus any wait for late peers).

import { GygesError, InternalError, assert, assertNever, error } from '../../diagnostics/diagnostic.js';
import type { Target } from '../../target/target.js';
import type { CollectiveInstr, Instruction, Program, Range } from '../program.js';
import { targetDieModel, type DieCostModel } from './die-model.js';
import { DramChannels, collectiveLatency, engineOf, type EngineClass } from './engines.js';
import { EventQueue } from './events.js';

// ---------------------------------------------------------------------------------------------
// Inputs and results

/** The programs to run: die d's program on demand (dies row-major). */
export interface ProgramSource {
  readonly dies: readonly Range[];
  program(d: number): Program;
}

/** Receives one span per served instruction (and per collective's link activity). */
export interface TraceSink {
  span(die: number, track: TraceTrack, name: string, startS: number, endS: number, args: Record<string, string | number>): void;
}
export type TraceTrack = 'compute' | 'dma' | 'nop' | `link ${string}`;

export interface ExecuteOptions {
  /** Engine classes whose time is set aside (counted as zero): Table III's NoP-only view. */
  readonly ignore?: readonly ('compute' | 'dram')[];
  readonly trace?: TraceSink;
  /** The die's cost model; by default the target's die description. */
  readonly model?: DieCostModel;
}

export type TimeSplit = { compute: number; nop: number; dram: number; idle: number };

export interface BlockTiming {
  readonly layer: number | null;
  /** fwd or bwd (a weight update counts with bwd, Algorithm 1 step 8). */
  readonly phase: 'fwd' | 'bwd';
  /** attention, ffn, or `other` outside the blocks (embedding, head, loss). */
  readonly block: string;
  /** Busy time of each engine on the die for this block's instructions. */
  readonly compute_s: number;
  readonly dram_s: number;
  readonly nop_s: number;
  /** nop_s split: link latency (steps × step latency) and transmission (the rest). */
  readonly nop_latency_s: number;
  readonly nop_transmission_s: number;
  /** Of the die's wall time, what this block's instructions left exposed. */
  readonly exposed: TimeSplit;
}

export interface DieTiming {
  readonly die: Range;
  readonly finish_s: number;
  readonly busy_s: { compute: number; dram: number; nop: number };
}

export interface ExecutionResult {
  readonly latency_s: number;
  /** On the critical die: compute, nop, dram (exposed) and idle time; they sum to latency_s. */
  readonly breakdown_s: TimeSplit;
  /** Per engine class, the largest busy time of any die. */
  readonly busy_s: { compute: number; dram: number; nop: number };
  readonly critical_die: Range;
  readonly dies: readonly DieTiming[];
  /** Per Transformer block and phase, on the critical die, in program order. */
  readonly blocks: readonly BlockTiming[];
  /** Instruction instances executed (each loop iteration counted), and events processed. */
  readonly instances: number;
  readonly events: number;
}

export function executePrograms(source: ProgramSource, target: Target, options: ExecuteOptions = {}): ExecutionResult {
  const model = options.model ?? targetDieModel(target.die);
  const first = source.program(0);
  const shape = new Shape(first);
  const dies = source.dies.map((_, d) => shape.numbersOf(d === 0 ? first : source.program(d), d, model, target, new Set(options.ignore ?? [])));
  const run = new Executor(shape, dies, source.dies, target, options.trace ?? null);
  run.run();
  return run.result();
}

// ---------------------------------------------------------------------------------------------
// Shape: the structure every die shares

const NOT_LOOP = -1;

interface Node {
  readonly index: number;
  readonly id: number;
  readonly kind: Instruction['kind'];
  readonly engine: EngineClass | null;
  /** Enclosing loop node, or -1 at top level; position in that body. */
  readonly parent: number;
  readonly pos: number;
  readonly deps: readonly number[];
  readonly carried: readonly number[];
  readonly loop: { readonly count: number; readonly share: number; readonly body: readonly number[] } | null;
  /** Index into Shape.blocks. */
  readonly block: number;
  readonly label: string;
  /** Index among the collective nodes, or -1. */
  readonly coll: number;
}

interface BlockKey {
  readonly layer: number | null;
  readonly phase: 'fwd' | 'bwd';
  readonly block: string;
}

/** A collective's numbers on one die. */
interface CollectiveNumbers {
  readonly group: string;
  readonly position: number;
  readonly size: number;
  readonly steps: number;
  readonly stepBytes: number;
  readonly latency: number;
  readonly axis: string;
}

/** One die's numbers: seconds (compute), bytes (DRAM) per node; collectives apart. */
interface DieNumbers {
  readonly work: Float64Array;
  readonly colls: CollectiveNumbers[];
}

class Shape {
  readonly nodes: Node[] = [];
  readonly top: number[] = [];
  readonly blocks: BlockKey[] = [];
  private readonly blockIndex = new Map<string, number>();
  private collectives = 0;

  constructor(p: Program) {
    const byId = new Map<number, number>();
    this.flatten(p.instructions, NOT_LOOP, this.top, byId, new Map());
  }

  private flatten(list: readonly Instruction[], parent: number, out: number[], byId: Map<number, number>, scope: Map<number, number>): void {
    const here = new Map(scope);
    const body = new Map<number, number>();
    list.forEach((ins, pos) => {
      const index = this.nodes.length;
      const deps = ins.deps.map((id) => {
        const n = here.get(id);
        if (n === undefined) throw programError(`instruction ${ins.id} depends on ${id}, which is not an earlier instruction of its body or an enclosing one`);
        return n;
      });
      const node: Node = {
        index,
        id: ins.id,
        kind: ins.kind,
        engine: ins.kind === 'loop' ? null : engineOf(ins),
        parent,
        pos,
        deps,
        carried: [],
        loop: null,
        block: this.blockOf(ins),
        label: ins.kind === 'gemm' || ins.kind === 'vector' ? ins.op : ins.kind === 'collective' ? `${ins.op} ${ins.axis}` : ins.kind === 'loop' ? `loop ${ins.over}` : `${ins.kind} ${ins.tensor}`,
        coll: ins.kind === 'collective' ? this.collectives++ : -1,
      };
      this.nodes.push(node);
      out.push(index);
      byId.set(ins.id, index);
      if (ins.kind === 'loop') {
        if (ins.count < 1 || ins.size <= 0) throw programError(`loop ${ins.id} has count ${ins.count} and size ${ins.size}`);
        const inner: number[] = [];
        this.flatten(ins.body, index, inner, byId, here);
        this.nodes[index] = { ...this.nodes[index]!, loop: { count: ins.count, share: ins.lastSize / ins.size, body: inner } };
      }
      here.set(ins.id, index);
      body.set(ins.id, index);
    });
    // Carried deps name instructions of the same body, earlier or later (previous iteration).
    list.forEach((ins, pos) => {
      if (ins.carried.length === 0) return;
      const index = out[pos]!;
      const carried = ins.carried.map((id) => {
        const n = body.get(id);
        if (n === undefined) throw programError(`instruction ${ins.id} carries a dependency on ${id}, which is not in its own loop body`);
        return n;
      });
      this.nodes[index] = { ...this.nodes[index]!, carried };
    });
  }

  private blockOf(ins: Instruction): number {
    const key: BlockKey = { layer: ins.layer, phase: ins.phase === 'fwd' ? 'fwd' : 'bwd', block: ins.block ?? 'other' };
    const k = `${key.layer}|${key.phase}|${key.block}`;
    let i = this.blockIndex.get(k);
    if (i === undefined) {
      i = this.blocks.length;
      this.blocks.push(key);
      this.blockIndex.set(k, i);
    }
    return i;
  }

  /** Die d's numbers, checking its structure equals the shape's. */
  numbersOf(p: Program, d: number, model: DieCostModel, target: Target, ignore: ReadonlySet<string>): DieNumbers {
    const work = new Float64Array(this.nodes.length);
    const colls: CollectiveNumbers[] = [];
    let next = 0;
    const walk = (list: readonly Instruction[], parent: number): void => {
      for (const ins of list) {
        const node = this.nodes[next];
        if (node === undefined || node.id !== ins.id || node.kind !== ins.kind || node.parent !== parent) {
          throw programError(`the program of die ${d} differs in structure from die 0's at instruction ${ins.id}; every die must run the same instruction structure`);
        }
        next++;
        switch (ins.kind) {
          case 'gemm':
            work[node.index] = ignore.has('compute') ? 0 : model.gemmSeconds(ins);
            break;
          case 'vector':
            work[node.index] = ignore.has('compute') ? 0 : model.vectorSeconds(vectorWork(ins));
            break;
          case 'dram.read':
          case 'dram.write':
            work[node.index] = ignore.has('dram') ? 0 : ins.bytes;
            break;
          case 'collective':
            colls.push(collectiveNumbers(ins, target));
            break;
          case 'loop':
            if (node.loop === null || node.loop.count !== ins.count || Math.abs(node.loop.share - ins.lastSize / ins.size) > 1e-12) {
              throw programError(`loop ${ins.id} of die ${d} iterates differently from die 0's`);
            }
            walk(ins.body, node.index);
            break;
          default:
            assertNever(ins);
        }
      }
    };
    walk(p.instructions, NOT_LOOP);
    if (next !== this.nodes.length) throw programError(`the program of die ${d} has ${next} instructions, die 0's ${this.nodes.length}`);
    return { work, colls };
  }
}

export function vectorWork(ins: Extract<Instruction, { kind: 'vector' }>) {
  return { op: ins.op, elements: ins.elements, flops: ins.flops, inputs: ins.reads.length, outputs: ins.writes.length, accumulate: ins.accumulate };
}

function collectiveNumbers(ins: CollectiveInstr, target: Target): CollectiveNumbers {
  const size = ins.group.length;
  const steps = size > 1 ? ins.steps : 0;
  return {
    // Groups of one cid are disjoint, so the ring's first die names the group.
    group: `${ins.cid}|${ins.group[0]![0]},${ins.group[0]![1]}|${size}`,
    position: ins.position,
    size,
    steps,
    stepBytes: steps > 0 ? ins.linkBytes / steps : 0,
    latency: steps > 0 ? collectiveLatency(ins, target) / steps : 0,
    axis: ins.axis,
  };
}

function programError(message: string): GygesError {
  return error('GY7003', message);
}

// ---------------------------------------------------------------------------------------------
// Running

/** One instance of a node on a die. */
class Inst {
  pending = 0;
  done = false;
  ready = false;
  dependents: Inst[] | null = null;
  /** For a loop instance: its iterations. */
  loop: LoopRun | null = null;
  constructor(
    readonly node: Node,
    readonly frame: Frame,
    /** Program order: enclosing (loop id, iteration) pairs, then the node's id. */
    readonly key: readonly number[],
  ) {}
}

/** One iteration of a loop body on a die (or a die's top level). */
interface Frame {
  readonly die: number;
  /** The loop node, or -1 for the top level. */
  readonly loopNode: number;
  readonly parent: Frame | null;
  readonly insts: Inst[];
  remaining: number;
  readonly scale: number;
  /** Loop iteration indices down to here, to match collectives across dies. */
  readonly path: string;
  readonly owner: LoopRun | null;
}

interface LoopRun {
  readonly inst: Inst;
  opened: number;
  completed: number;
  last: Frame | null;
}

/** At most this many iterations of one loop are materialised and unfinished at once. */
const WINDOW = 2;

interface Meeting {
  readonly starts: Float64Array;
  readonly insts: (Inst | null)[];
  count: number;
}

interface DieState {
  readonly numbers: DieNumbers;
  readonly computeReady: Inst[];
  readonly dramReady: Inst[];
  computeBusy: Inst | null;
  dramBusy: Inst | null;
  nopBusy: Inst | null;
  readonly nopCursor: NopCursor;
  /** Created collective instances not yet served, by `${node}@${path}`. */
  readonly nopWaiting: Map<string, Inst>;
  readonly busy: { compute: number; dram: number; nop: number };
  readonly split: TimeSplit;
  /** Per block: compute, dram, nop busy; nop latency; exposed compute, nop, dram, idle. */
  readonly perBlock: Float64Array;
  last: number;
  finish: number;
  started: number;
}

const BLOCK_FIELDS = 8;

class Executor {
  private readonly queue = new EventQueue();
  private readonly dram: DramChannels;
  private readonly state: DieState[];
  private readonly meetings = new Map<string, Meeting>();
  private instances = 0;
  private readonly tops: Frame[] = [];

  constructor(
    private readonly shape: Shape,
    numbers: DieNumbers[],
    private readonly where: readonly Range[],
    private readonly target: Target,
    private readonly trace: TraceSink | null,
  ) {
    this.dram = new DramChannels(target, this.queue);
    const collectiveNodes = shape.nodes.filter((n) => n.kind === 'collective').map((n) => n.index);
    this.state = numbers.map((nums) => ({
      numbers: nums,
      computeReady: [],
      dramReady: [],
      computeBusy: null,
      dramBusy: null,
      nopBusy: null,
      nopCursor: new NopCursor(shape, collectiveNodes),
      nopWaiting: new Map(),
      busy: { compute: 0, dram: 0, nop: 0 },
      split: { compute: 0, nop: 0, dram: 0, idle: 0 },
      perBlock: new Float64Array(shape.blocks.length * BLOCK_FIELDS),
      last: 0,
      finish: 0,
      started: 0,
    }));
  }

  run(): void {
    this.queue.schedule(0, () => {
      this.state.forEach((_, d) => {
        const top: Frame = { die: d, loopNode: NOT_LOOP, parent: null, insts: [], remaining: 0, scale: 1, path: '', owner: null };
        this.tops.push(top);
        this.open(top, this.shape.top, []);
      });
    });
    this.queue.run();
    this.state.forEach((s, d) => {
      const left = s.nopCursor.peek();
      assert(left === null && this.tops[d]!.remaining === 0, `program execution deadlocked: die ${d} stopped with ${this.tops[d]!.remaining} top-level instructions unfinished (next collective ${left})`);
    });
  }

  // -- materialising ---------------------------------------------------------------------------

  /** Create the instances of a body in `frame`; those already free become ready. */
  private open(frame: Frame, body: readonly number[], prefix: readonly number[]): void {
    const fresh: Inst[] = [];
    for (const n of body) {
      const node = this.shape.nodes[n]!;
      const inst = new Inst(node, frame, [...prefix, node.id]);
      frame.insts.push(inst);
      frame.remaining++;
      this.instances++;
      for (const dep of node.deps) this.waitOn(inst, this.lookup(frame, dep));
      if (node.carried.length > 0 && frame.owner !== null && frame.owner.last !== null && frame.owner.last !== frame) {
        const previous = frame.owner.last;
        for (const dep of node.carried) this.waitOn(inst, previous.insts[this.shape.nodes[dep]!.pos]!);
      }
      if (node.kind === 'collective') this.state[frame.die]!.nopWaiting.set(`${n}@${frame.path}`, inst);
      fresh.push(inst);
    }
    for (const inst of fresh) if (inst.pending === 0) this.becomeReady(inst);
  }

  private waitOn(inst: Inst, dep: Inst): void {
    if (dep.done) return;
    inst.pending++;
    (dep.dependents ??= []).push(inst);
  }

  private lookup(frame: Frame, node: number): Inst {
    const target = this.shape.nodes[node]!;
    for (let f: Frame | null = frame; f !== null; f = f.parent) {
      if (f.loopNode === target.parent) {
        const inst = f.insts[target.pos];
        if (inst === undefined) break;
        return inst;
      }
    }
    throw new InternalError(`instance of node ${node} not found in scope`);
  }

  /** Open iterations of a loop while fewer than WINDOW are unfinished. */
  private openIterations(run: LoopRun): void {
    const node = run.inst.node;
    const loop = node.loop!;
    const frame = run.inst.frame;
    while (run.opened < loop.count && run.opened - run.completed < WINDOW) {
      const it = run.opened++;
      const scale = frame.scale * (it === loop.count - 1 ? loop.share : 1);
      const body: Frame = { die: frame.die, loopNode: node.index, parent: frame, insts: [], remaining: 0, scale, path: `${frame.path}/${node.id}.${it}`, owner: run };
      const prefix = [...run.inst.key, it];
      // Carried deps look at the previous iteration: `last` is it until this one is open.
      this.open(body, loop.body, prefix);
      run.last = body;
      if (body.remaining === 0) this.iterationDone(body);
    }
  }

  // -- readiness and completion ----------------------------------------------------------------

  private becomeReady(inst: Inst): void {
    inst.ready = true;
    const s = this.state[inst.frame.die]!;
    switch (inst.node.engine) {
      case null: {
        const run: LoopRun = { inst, opened: 0, completed: 0, last: null };
        inst.loop = run;
        this.openIterations(run);
        return;
      }
      case 'compute':
        heapPush(s.computeReady, inst);
        return this.dispatchCompute(inst.frame.die);
      case 'dram':
        heapPush(s.dramReady, inst);
        return this.dispatchDram(inst.frame.die);
      case 'nop':
        return this.dispatchNop(inst.frame.die);
      default:
        return assertNever(inst.node.engine);
    }
  }

  private complete(inst: Inst): void {
    inst.done = true;
    const die = inst.frame.die;
    const s = this.state[die]!;
    s.finish = Math.max(s.finish, this.queue.now);
    const deps = inst.dependents;
    inst.dependents = null;
    if (deps !== null) {
      for (const d of deps) if (--d.pending === 0) this.becomeReady(d);
    }
    const frame = inst.frame;
    if (--frame.remaining === 0 && frame.owner !== null) this.iterationDone(frame);
  }

  private iterationDone(frame: Frame): void {
    const run = frame.owner!;
    run.completed++;
    if (run.completed === run.inst.node.loop!.count) this.complete(run.inst);
    else this.openIterations(run);
  }

  // -- engines ---------------------------------------------------------------------------------

  private dispatchCompute(die: number): void {
    const s = this.state[die]!;
    if (s.computeBusy !== null || s.computeReady.length === 0) return;
    const inst = heapPop(s.computeReady);
    const seconds = s.numbers.work[inst.node.index]! * inst.frame.scale;
    const start = this.queue.now;
    this.sweep(die);
    s.computeBusy = inst;
    this.queue.schedule(start + seconds, () => {
      this.sweep(die);
      s.computeBusy = null;
      s.busy.compute += seconds;
      s.perBlock[inst.node.block * BLOCK_FIELDS + 0]! += seconds;
      this.span(die, 'compute', inst, start);
      this.complete(inst);
      this.dispatchCompute(die);
    });
  }

  private dispatchDram(die: number): void {
    const s = this.state[die]!;
    if (s.dramBusy !== null || s.dramReady.length === 0) return;
    const inst = heapPop(s.dramReady);
    const bytes = s.numbers.work[inst.node.index]! * inst.frame.scale;
    const start = this.queue.now;
    this.sweep(die);
    s.dramBusy = inst;
    this.dram.transfer(die, bytes, () => {
      this.sweep(die);
      const seconds = this.queue.now - start;
      s.dramBusy = null;
      s.busy.dram += seconds;
      s.perBlock[inst.node.block * BLOCK_FIELDS + 1]! += seconds;
      this.span(die, 'dma', inst, start, { bytes });
      this.complete(inst);
      this.dispatchDram(die);
    });
  }

  private dispatchNop(die: number): void {
    const s = this.state[die]!;
    if (s.nopBusy !== null) return;
    const next = s.nopCursor.peek();
    if (next === null) return;
    const inst = s.nopWaiting.get(next);
    if (inst === undefined || !inst.ready) return;
    s.nopWaiting.delete(next);
    s.nopCursor.advance();
    this.sweep(die);
    s.nopBusy = inst;
    const c = s.numbers.colls[inst.node.coll]!;
    if (c.steps === 0) {
      this.queue.schedule(this.queue.now, () => this.nopDone(die, inst, this.queue.now, c, 0));
      return;
    }
    const key = `${c.group}@${inst.frame.path}`;
    let m = this.meetings.get(key);
    if (m === undefined) {
      m = { starts: new Float64Array(c.size), insts: new Array<Inst | null>(c.size).fill(null), count: 0 };
      this.meetings.set(key, m);
    }
    assert(m.insts[c.position] === null, `collective ${key} started twice at position ${c.position}`);
    m.insts[c.position] = inst;
    m.starts[c.position] = this.queue.now;
    if (++m.count === c.size) {
      this.meetings.delete(key);
      this.solveRing(m, c, inst.frame.scale);
    }
  }

  /** Every member has started: solve the ring (see the header) and schedule each one's end. */
  private solveRing(m: Meeting, c: CollectiveNumbers, scale: number): void {
    const n = c.size;
    const S = c.steps;
    const tau = (c.stepBytes * scale) / this.target.package.link.bandwidthBytesPerS;
    const a = c.latency;
    // W(p) = time die p starts its last send = (S−1)τ + p·a + max_{j ∈ [p−S+1, p]} (start(j mod n) − j·a),
    // j a virtual index (not reduced mod n); a monotonic deque gives every window's maximum.
    const value = (j: number): number => m.starts[((j % n) + n) % n]! - j * a;
    const lastSend = new Float64Array(n + 1); // index p + 1 for p ∈ [−1, n−1]
    const deque: number[] = [];
    let head = 0;
    for (let j = -S; j <= n - 1; j++) {
      const v = value(j);
      while (deque.length > head && value(deque[deque.length - 1]!) <= v) deque.pop();
      deque.push(j);
      if (j >= -1) {
        while (deque[head]! < j - S + 1) head++;
        lastSend[j + 1] = (S - 1) * tau + j * a + value(deque[head]!);
      }
    }
    for (let p = 0; p < n; p++) {
      const end = Math.max(lastSend[p]!, lastSend[p + 1]!) + tau + a;
      const inst = m.insts[p]!;
      const die = inst.frame.die;
      const start = m.starts[p]!;
      const cp = this.state[die]!.numbers.colls[inst.node.coll]!;
      this.queue.schedule(end, () => this.nopDone(die, inst, start, cp, S * a));
      if (this.trace !== null) this.trace.span(die, `link ${linkName(c.axis)}`, inst.node.label, start, lastSend[p + 1]! + tau, { bytes: S * c.stepBytes * scale });
    }
  }

  private nopDone(die: number, inst: Inst, start: number, c: CollectiveNumbers, latency: number): void {
    const s = this.state[die]!;
    this.sweep(die);
    const seconds = this.queue.now - start;
    s.nopBusy = null;
    s.busy.nop += seconds;
    const b = inst.node.block * BLOCK_FIELDS;
    s.perBlock[b + 2]! += seconds;
    s.perBlock[b + 3]! += latency;
    this.span(die, 'nop', inst, start, { steps: c.steps, group: c.size });
    this.complete(inst);
    this.dispatchNop(die);
  }

  /** Account die `die`'s time since its last change of engine state (see the header). */
  private sweep(die: number): void {
    const s = this.state[die]!;
    const now = this.queue.now;
    const dt = now - s.last;
    if (dt <= 0) return;
    s.last = now;
    let field: keyof TimeSplit;
    let inst: Inst | null;
    if (s.computeBusy !== null) [field, inst] = ['compute', s.computeBusy];
    else if (s.nopBusy !== null) [field, inst] = ['nop', s.nopBusy];
    else if (s.dramBusy !== null) [field, inst] = ['dram', s.dramBusy];
    else [field, inst] = ['idle', null];
    s.split[field] += dt;
    if (inst !== null) s.perBlock[inst.node.block * BLOCK_FIELDS + 4 + SPLIT_FIELDS.indexOf(field)]! += dt;
  }

  private span(die: number, track: TraceTrack, inst: Inst, start: number, args: Record<string, string | number> = {}): void {
    if (this.trace === null) return;
    const key = this.shape.blocks[inst.node.block]!;
    this.trace.span(die, track, inst.node.label, start, this.queue.now, { id: inst.node.id, layer: key.layer ?? '-', phase: key.phase, block: key.block, ...args });
  }

  // -- result ----------------------------------------------------------------------------------

  result(): ExecutionResult {
    const finish = this.state.map((s) => s.finish);
    const latency = finish.reduce((m, x) => Math.max(m, x), 0);
    const critical = Math.max(0, finish.indexOf(latency));
    const s = this.state[critical]!;
    // Time after the die's last instruction, until the package is done, is idle.
    const split = { ...s.split, idle: s.split.idle + (latency - s.last) };
    const busy = { compute: 0, dram: 0, nop: 0 };
    for (const t of this.state) for (const k of ['compute', 'dram', 'nop'] as const) busy[k] = Math.max(busy[k], t.busy[k]);
    const blocks = this.shape.blocks.map((key, i): BlockTiming => {
      const f = (k: number): number => s.perBlock[i * BLOCK_FIELDS + k]!;
      return {
        layer: key.layer,
        phase: key.phase,
        block: key.block,
        compute_s: f(0),
        dram_s: f(1),
        nop_s: f(2),
        nop_latency_s: f(3),
        nop_transmission_s: f(2) - f(3),
        exposed: { compute: f(4), nop: f(5), dram: f(6), idle: f(7) },
      };
    });
    return {
      latency_s: latency,
      breakdown_s: split,
      busy_s: busy,
      critical_die: this.where[critical]!,
      dies: this.state.map((t, d) => ({ die: this.where[d]!, finish_s: t.finish, busy_s: { ...t.busy } })),
      blocks,
      instances: this.instances,
      events: this.queue.eventsRun,
    };
  }
}

const SPLIT_FIELDS: readonly (keyof TimeSplit)[] = ['compute', 'nop', 'dram', 'idle'];

/** The link direction a collective on these grid axes drives (rings run east and south). */
function linkName(axis: string): string {
  return axis === 'c' ? 'east (row ring)' : axis === 'r' ? 'south (column ring)' : 'ring over all dies';
}

/**
 * Walks a die's collectives in program order (the same on every die), naming the next one as
 * `${node}@${path}`, the key under which its instance registers when materialised.
 */
class NopCursor {
  /** Stack of (body, index in body, loop node, iteration, path). */
  private readonly stack: { body: readonly number[]; i: number; path: string }[];
  private current: string | null = null;

  constructor(
    private readonly shape: Shape,
    collectiveNodes: readonly number[],
  ) {
    this.stack = collectiveNodes.length > 0 ? [{ body: shape.top, i: 0, path: '' }] : [];
    this.find();
  }

  peek(): string | null {
    return this.current;
  }

  advance(): void {
    this.stack[this.stack.length - 1]!.i++;
    this.find();
  }

  /** Move to the next collective at or after the current position. */
  private find(): void {
    for (;;) {
      const top = this.stack[this.stack.length - 1];
      if (top === undefined) {
        this.current = null;
        return;
      }
      if (top.i >= top.body.length) {
        this.stack.pop();
        const parent = this.stack[this.stack.length - 1];
        if (parent === undefined) continue;
        // Finished one iteration of the loop at parent.body[parent.i]: next iteration or move on.
        const loopNode = this.shape.nodes[parent.body[parent.i]!]!;
        const it = Number(top.path.slice(top.path.lastIndexOf('.') + 1)) + 1;
        if (it < loopNode.loop!.count) this.stack.push({ body: loopNode.loop!.body, i: 0, path: `${parent.path}/${loopNode.id}.${it}` });
        else parent.i++;
        continue;
      }
      const node = this.shape.nodes[top.body[top.i]!]!;
      if (node.kind === 'collective') {
        this.current = `${node.index}@${top.path}`;
        return;
      }
      if (node.loop !== null && this.containsCollective(node)) {
        this.stack.push({ body: node.loop.body, i: 0, path: `${top.path}/${node.id}.0` });
        continue;
      }
      top.i++;
    }
  }

  private readonly hasColl = new Map<number, boolean>();

  private containsCollective(node: Node): boolean {
    const known = this.hasColl.get(node.index);
    if (known !== undefined) return known;
    const yes = node.loop!.body.some((n) => {
      const x = this.shape.nodes[n]!;
      return x.kind === 'collective' || (x.loop !== null && this.containsCollective(x));
    });
    this.hasColl.set(node.index, yes);
    return yes;
  }
}

// -- a binary heap of instances by program order -------------------------------------------------

function earlier(a: Inst, b: Inst): boolean {
  const n = Math.min(a.key.length, b.key.length);
  for (let i = 0; i < n; i++) if (a.key[i] !== b.key[i]) return a.key[i]! < b.key[i]!;
  return a.key.length < b.key.length;
}

function heapPush(h: Inst[], x: Inst): void {
  let i = h.length;
  h.push(x);
  while (i > 0) {
    const parent = (i - 1) >> 1;
    if (!earlier(x, h[parent]!)) break;
    h[i] = h[parent]!;
    i = parent;
  }
  h[i] = x;
}

function heapPop(h: Inst[]): Inst {
  const top = h[0]!;
  const last = h.pop()!;
  if (h.length === 0) return top;
  let i = 0;
  for (;;) {
    const l = 2 * i + 1;
    if (l >= h.length) break;
    const c = l + 1 < h.length && earlier(h[l + 1]!, h[l]!) ? l + 1 : l;
    if (!earlier(h[c]!, last)) break;
    h[i] = h[c]!;
    i = c;
  }
  h[i] = last;
  return top;
}
