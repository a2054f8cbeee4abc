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
// Engines. Each die has a compute engine (GEMM and vector instructions, timed by its die
// type's cost model, src/target/accelerators.ts), a DMA engine (one DRAM transfer at a time,
// on the die's share of the DRAM channels, engines.ts) and a NoP engine (one collective at a time). Compute and DMA
// serve the ready instance earliest in program order, so a DRAM read of the next mini-batch
// overlaps this one's compute. The NoP engine serves its collectives strictly in program
// order: every die runs the same order, so no two dies can wait on each other.
//
// Collectives. The dies of a group meet at their collective: every die serves its collectives
// in the same program order, so a die's k-th collective is the same one (node and loop
// iteration path) on every die. A collective of S
// steps moves `link_bytes / S` per step from each die to its successor in the group's ring
// order (ring algorithms exactly; the others as a ring of the same steps, link bytes and total
// latency, src/target/link-latency.ts). Once every member has started, the ring is solved exactly: die p's
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
// (the rest of its duration: bytes on the link, plus any wait for late peers); collectives
// that are steps inside a compute op (`part_of`) are summed apart, since Table III leaves them
// out. No member of a collective finishes before its last member has started.
//
// Steady state (on by default; steady.ts): once the whole state repeats between iterations of
// a loop, the executor jumps over whole periods of it, exactly up to the rounding of times.
//
// Classes (on by default; `symmetry: false` simulates every die). Most dies are
// interchangeable: they run the same numbers, in rings of interchangeable dies, on DRAM pools
// of the same make-up. dieClasses (classes.ts) finds the coarsest equitable partition of the
// dies; every die of a class then sees the same events at the same times, so only each class's
// representative (its lowest die) is simulated, exactly. A representative's collective k is
// solved once the representatives of every class present in its group have started their
// k-th collective, with each member's start taken from its class's representative; only the
// representative's own end is scheduled (the other members are simulated through their own
// representatives). A representative's DRAM transfer stands for the same transfer by every
// die of its class (weighted processor sharing, engines.ts). When the source knows what the
// dies share (a compile's program set: the instructions whose numbers vary between dies, and
// every collective's rings), dies are first coloured by those instructions alone, and only
// die 0's program is ever built: a representative's numbers are die 0's with its colour's
// numbers of the varying instructions written in (numbersFromColour), and its position in a
// collective's ring is the shared rings'. So a package of a thousand dies costs one die's
// program however many classes it has. Each die reports its
// representative's finish and busy times; the trace repeats a representative's spans on every
// die of its class; instances and events count what was simulated.

import { GygesError, InternalError, assert, assertNever, error } from '../../diagnostics/diagnostic.js';
import type { Target } from '../../target/target.js';
import type { CollectiveInstr, DramInstr, GemmInstr, Instruction, Phase, Program, Range, SharedPrograms, VectorInstr } from '../program.js';
import { dieCostModel, type DieCostModel } from '../../target/accelerators.js';
import { dieClasses, refineClasses, type DieClasses } from './classes.js';
import { DramChannels, collectiveLatency, engineOf, type EngineClass } from './engines.js';
import { EventQueue } from './events.js';
import { SteadyState } from './steady.js';

// ---------------------------------------------------------------------------------------------
// Inputs and results

/** The programs to run: die d's program on demand (dies row-major). */
export interface ProgramSource {
  readonly dies: readonly Range[];
  program(d: number): Program;
  /**
   * What the dies share, when the source knows it (a compile's program set): with it, class
   * mode reads the programs of die 0 and of the classes' representatives only.
   */
  readonly shared?: SharedPrograms | undefined;
}

/** Receives one span per served instruction (and per collective's link activity). */
export interface TraceSink {
  span(die: number, track: TraceTrack, name: string, startS: number, endS: number, args: Record<string, string | number>): void;
  /** Only these dies' spans are wanted (absent: every die's). */
  readonly onlyDies?: readonly number[];
}
export type TraceTrack = 'compute' | 'dma' | 'nop' | `link ${string}`;

export interface ExecuteOptions {
  /** Engine classes whose time is set aside (counted as zero): Table III's NoP-only view. */
  readonly ignore?: readonly ('compute' | 'dram')[];
  readonly trace?: TraceSink;
  /**
   * Simulate one representative per class of interchangeable dies (exact; the default), or
   * with false every die.
   */
  readonly symmetry?: boolean;
  /**
   * Jump over the iterations of a loop once its state repeats (steady.ts; exact up to the
   * rounding of times; the default unless tracing), or with false simulate every iteration.
   */
  readonly steady?: boolean;
  /**
   * Top-level loops (instruction ids) simulated whole. Given with a trace, jumps stay on for
   * every other loop, whose skipped iterations leave no spans (a timeline of one loop).
   */
  readonly whole?: readonly number[];
  /** Told, before the run, how many dies will be simulated (one per class) of how many. */
  readonly onClasses?: (simulated: number, dies: number) => void;
}

export type TimeSplit = { compute: number; nop: number; dram: number; idle: number };

export interface BlockTiming {
  readonly layer: number | null;
  /**
   * fwd, bwd, or update: the weight update (Algorithm 1 step 8) with the all-reduces of
   * replicated parameters' gradients (biases, norm scales), which Table III does not count.
   */
  readonly phase: Phase;
  /** attention, ffn, or `other` outside the blocks (embedding, head, loss). */
  readonly block: string;
  /** Busy time of each engine on the die for this block's instructions (nop_s: layout collectives). */
  readonly compute_s: number;
  readonly dram_s: number;
  readonly nop_s: number;
  /** nop_s split: link latency (steps × step latency) and transmission (the rest). */
  readonly nop_latency_s: number;
  readonly nop_transmission_s: number;
  /**
   * NoP time of collectives inside compute ops (`part_of`: score all-reduces of heads split
   * over dies, Optimus's key/value gathers), not in nop_s: Table III does not count them.
   */
  readonly nop_internal_s: number;
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
  /** Dies simulated: the classes of interchangeable dies (every die without symmetry). */
  readonly classes: number;
  /** Loop iterations not simulated but extrapolated from a repeating state (steady.ts). */
  readonly iterations_extrapolated: number;
}

export function executePrograms(source: ProgramSource, target: Target, options: ExecuteOptions = {}): ExecutionResult {
  const modelOf = dieModels(target);
  const first = source.program(0);
  const shape = new Shape(first);
  const ignore = new Set(options.ignore ?? []);
  const numbersOf = (d: number) => shape.numbersOf(d === 0 ? first : source.program(d), d, modelOf(d), target, ignore);
  let dies: DieNumbers[];
  let classes: DieClasses | null = null;
  if (options.symmetry !== false && source.shared) {
    // Only the varying instructions tell the dies apart before their rings do: colour each
    // die by their numbers, and read the programs of the representatives alone.
    const varying = shape.varyingColours(source.shared, source.dies.length, modelOf, target, ignore);
    classes = refineClasses(varying.colour, source.shared.rings(), target);
    // Only die 0's program is built: the representatives' numbers follow from it, costed on
    // each representative's own die type, and from their colours (numbersFromColour).
    // Representatives of one colour share their numbers (the executor only reads them).
    const baseOfType: DieNumbers[] = [];
    const baseOf = (d: number) => (baseOfType[target.layout[d]!] ??= shape.numbersOf(first, 0, modelOf(d), target, ignore));
    const byColour: DieNumbers[] = [];
    dies = [];
    for (const d of classes.reps) {
      const c = varying.colour[d]!;
      dies[d] = byColour[c] ??= numbersFromColour(baseOf(d), varying, c, shape.nodes);
    }
  } else {
    dies = source.dies.map((_, d) => numbersOf(d));
    if (options.symmetry !== false) classes = dieClasses(dies, target);
  }
  options.onClasses?.(classes === null ? source.dies.length : classes.reps.length, source.dies.length);
  const steady = options.steady !== false && (options.trace === undefined || options.whole !== undefined);
  const run = new Executor(shape, dies, classes, source.dies, target, options.trace ?? null, steady ? new Set(options.whole ?? []) : null);
  run.run();
  return run.result();
}

/** Each die's cost model (one per die type). */
export function dieModels(target: Target): (d: number) => DieCostModel {
  const models = target.dieTypes.map(dieCostModel);
  return (d) => models[target.layout[d]!]!;
}

// ---------------------------------------------------------------------------------------------
// Shape: the structure every die shares

const NOT_LOOP = -1;

/** A node while the shape is being built (its loop body and carried deps are filled in last). */
type Mutable<T> = { -readonly [K in keyof T]: T[K] };

export interface Node {
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
  /** A collective that is a step inside a compute op (`part_of`), reported apart. */
  readonly internal: boolean;
  /** Which of `deps` are in the same body (the same frame at run time). */
  readonly local: readonly boolean[];
  /** Positions in the same body of the nodes depending on this one, in body order (repeated per dep). */
  readonly localDependents: number[];
}

interface BlockKey {
  readonly layer: number | null;
  readonly phase: Phase;
  readonly block: string;
}

/** A collective's numbers on one die. */
export interface CollectiveNumbers {
  readonly group: string;
  readonly position: number;
  readonly size: number;
  readonly steps: number;
  readonly stepBytes: number;
  readonly latency: number;
  readonly axis: string;
}

/** One die's numbers: seconds (compute), bytes (DRAM) per node; collectives apart. */
export interface DieNumbers {
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
    this.flatten(p.instructions, NOT_LOOP, this.top, new Map());
  }

  /** Whether the body of loop node `outer` (NOT_LOOP: the top level) is `inner`'s or encloses it. */
  private encloses(outer: number, inner: number): boolean {
    for (let b = inner; ; b = this.nodes[b]!.parent) {
      if (b === outer) return true;
      if (b === NOT_LOOP) return false;
    }
  }

  /** `seen`: the nodes flattened so far by id (a loop's only once its body is). */
  private flatten(list: readonly Instruction[], parent: number, out: number[], seen: Map<number, number>): void {
    const body = new Map<number, number>();
    list.forEach((ins, pos) => {
      const index = this.nodes.length;
      const deps = ins.deps.map((id) => {
        const n = seen.get(id);
        if (n === undefined || !this.encloses(this.nodes[n]!.parent, parent)) throw programError(`instruction ${ins.id} depends on ${id}, which is not an earlier instruction of its body or an enclosing one`);
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
        internal: ins.kind === 'collective' && ins.partOf !== null,
        local: deps.map((n) => this.nodes[n]!.parent === parent),
        localDependents: [],
      };
      for (const n of deps) if (this.nodes[n]!.parent === parent) this.nodes[n]!.localDependents.push(pos);
      this.nodes.push(node);
      out.push(index);
      if (ins.kind === 'loop') {
        if (ins.count < 1 || ins.size <= 0) throw programError(`loop ${ins.id} has count ${ins.count} and size ${ins.size}`);
        const inner: number[] = [];
        this.flatten(ins.body, index, inner, seen);
        (node as Mutable<Node>).loop = { count: ins.count, share: ins.lastSize / ins.size, body: inner };
      }
      if (seen.has(ins.id)) throw programError(`instruction id ${ins.id} appears twice`);
      seen.set(ins.id, index);
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
      (this.nodes[index] as Mutable<Node>).carried = carried;
    });
  }

  private blockOf(ins: Instruction): number {
    const key: BlockKey = { layer: ins.layer, phase: accountedPhase(ins), block: ins.block ?? 'other' };
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
          case 'vector':
          case 'dram.read':
          case 'dram.write':
            work[node.index] = workOf(ins, model, ignore);
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

  /**
   * A colour per die (row-major) such that dies of one colour have the same numbers: those
   * of the instructions `shared` says may vary (the rest are die 0's on every die). With each
   * colour's numbers of those instructions (`values`, in the order of `nodes`).
   */
  varyingColours(shared: SharedPrograms, D: number, modelOf: (d: number) => DieCostModel, target: Target, ignore: ReadonlySet<string>): VaryingColours {
    const byId = new Map(this.nodes.map((n) => [n.id, n]));
    // Dies with the same numbers (and type) are read once, through their class's first die.
    const classes = shared.varyingClasses();
    if (classes.classOf.length !== D) throw programError(`${classes.classOf.length} dies in the varying classes, ${D} programs`);
    const colours = new Map<string, number>();
    const colourOfClass = new Int32Array(classes.reps.length);
    const values: Float64Array[] = [];
    const colls: (readonly (CollectiveNumbers | null)[])[] = [];
    let nodes: Int32Array | undefined;
    classes.reps.forEach((d, k) => {
      const list = shared.varying(d);
      const mine = new Float64Array(list.length);
      const at = new Int32Array(list.length);
      const ownColls: (CollectiveNumbers | null)[] = list.map(() => null);
      list.forEach(({ ins }, k) => {
        const node = byId.get(ins.id);
        if (node === undefined || node.kind !== ins.kind || ins.kind === 'loop') {
          throw programError(`die ${d}: varying instruction ${ins.id} is not a compute, DRAM or collective instruction of die 0's program`);
        }
        at[k] = node.index;
        // A collective whose groups differ in size (heads dealt unevenly): its own numbers;
        // its members and position come from the shared rings.
        if (ins.kind === 'collective') ownColls[k] = collectiveNumbers(ins, target);
        else mine[k] = workOf(ins, modelOf(d), ignore);
      });
      if (nodes === undefined) nodes = at;
      else if (at.length !== nodes.length || at.some((n, k) => n !== nodes![k])) throw programError(`die ${d}: its varying instructions are not die 0's`);
      // Dies of different types differ in every instruction's time, varying or not.
      const collKey = ownColls.map((c) => (c === null ? '' : `${c.size}/${c.steps}/${c.stepBytes}/${c.latency}`)).join(';');
      const key = `${target.layout[d]}|${Array.from(new Uint32Array(mine.buffer)).join(',')}|${collKey}`;
      let c = colours.get(key);
      if (c === undefined) {
        colours.set(key, (c = colours.size));
        values.push(mine);
        colls.push(ownColls);
      }
      colourOfClass[k] = c;
    });
    const colour = Int32Array.from(classes.classOf, (k) => colourOfClass[k]!);
    return { colour, values, colls, nodes: nodes ?? new Int32Array(0) };
  }
}

/** Dies coloured by the numbers of their varying instructions (Shape.varyingColours). */
interface VaryingColours {
  readonly colour: Int32Array;
  /** Per colour, the numbers of the varying instructions. */
  readonly values: readonly Float64Array[];
  /** Per colour, a varying collective's numbers (null for compute and DRAM instructions). */
  readonly colls: readonly (readonly (CollectiveNumbers | null)[])[];
  /** The varying instructions' nodes. */
  readonly nodes: Int32Array;
}

/**
 * A die's numbers from die 0's (`base`) and its colour's numbers of the varying instructions:
 * every other instruction has die 0's numbers on every die, and a collective's numbers are the
 * same on every die but for the position, which class mode reads from the shared rings, unless
 * the collective is varying (groups of different sizes). So a representative costs no program
 * of its own; `colls` is die 0's list, shared unless a varying collective replaces entries.
 */
function numbersFromColour(base: DieNumbers, v: VaryingColours, colour: number, nodes: readonly Node[]): DieNumbers {
  const work = base.work.slice();
  const values = v.values[colour]!;
  const own = v.colls[colour]!;
  let colls = base.colls;
  for (let k = 0; k < v.nodes.length; k++) {
    const c = own[k];
    if (c === null || c === undefined) work[v.nodes[k]!] = values[k]!;
    else {
      if (colls === base.colls) colls = base.colls.slice();
      colls[nodes[v.nodes[k]!]!.coll] = c;
    }
  }
  return { work, colls };
}

/** A compute instruction's seconds or a DRAM transfer's bytes (zero for a class set aside). */
function workOf(ins: GemmInstr | VectorInstr | DramInstr, model: DieCostModel, ignore: ReadonlySet<string>): number {
  switch (ins.kind) {
    case 'gemm':
      return ignore.has('compute') ? 0 : model.gemmSeconds(ins);
    case 'vector':
      return ignore.has('compute') ? 0 : model.vectorSeconds(vectorWork(ins));
    default:
      return ignore.has('dram') ? 0 : ins.bytes;
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

/**
 * The phase a block's accounting puts an instruction in. An update-phase reduce-scatter
 * completes a sharded weight's gradient (Optimus's SUMMA reduction of dW, made after the
 * mini-batch loop because dW accumulates over it), so it counts with the backward, as Table
 * III's backward columns do; update-phase all-reduces synchronise the gradients of replicated
 * parameters (biases, norm scales) and stay in the update with the optimizer's own work.
 */
export function accountedPhase(ins: Instruction): Phase {
  return ins.phase === 'update' && ins.kind === 'collective' && ins.op === 'reduce_scatter' ? 'bwd' : ins.phase;
}

function programError(message: string): GygesError {
  return error('GY7003', message);
}

// ---------------------------------------------------------------------------------------------
// Running
//
// Representation (for speed; the semantics above are unchanged). An instance is one small
// object and carries no key of its own: program order is the order of its frames (loop id,
// iteration) from the top down and then its node's id, compared by walking both instances'
// frames to their common one (`earlier`). The NoP cursor walks the shape by loop iterations
// and finds its next collective's instance by walking the die's live frames. A group has at
// most one meeting open at a time (its members serve their collectives in the same program
// order, and a member that has started one is busy until all have), so meetings are kept per
// group, keyed by a small integer, and checked to be the same collective by each die's count
// of collectives served.
//
// The executor keeps a state per simulated die: every die, or in class mode each class's
// representative, numbered by class; `die` in what follows is the state's index. In class
// mode meetings are kept per serial (a die's count of collectives served before this one):
// which representatives have started it and when, and per member list how many of the
// states it needs have yet to start and which of its representatives wait for them (one count
// per list, so a ring of N distinct members costs N per meeting, not N²); a serial's record
// goes once every representative has started it and every one has been solved.

/** One instance of a node on a die. */
export class Inst {
  pending = 0;
  done = false;
  ready = false;
  dependents: Inst[] | null = null;
  /** For a loop instance: its iterations. */
  loop: LoopRun | null = null;
  constructor(
    readonly node: Node,
    readonly frame: Frame,
  ) {}
}

/** One iteration of a loop body on a die (or a die's top level). */
export class Frame {
  readonly insts: Inst[] = [];
  remaining = 0;
  constructor(
    readonly die: number,
    /** The loop node, or -1 for the top level. */
    readonly loopNode: number,
    /** The loop's instruction id (program order), or -1. */
    readonly loopId: number,
    /** The iteration index, or -1 for the top level (moved on by steady-state jumps). */
    public it: number,
    /** Nesting depth: 0 at the top level. */
    readonly depth: number,
    readonly parent: Frame | null,
    readonly scale: number,
    readonly owner: LoopRun | null,
  ) {}
}

export class LoopRun {
  opened = 0;
  completed = 0;
  /** For a top-level loop: instances inside it that became ready or completed (steady.ts). */
  activity = 0;
  last: Frame | null = null;
  /** Opened iterations not yet finished (at most WINDOW). */
  readonly live: Frame[] = [];
  constructor(readonly inst: Inst) {}
}

/** At most this many iterations of one loop are materialised and unfinished at once. */
const WINDOW = 2;

/** The open meeting of a collective group: who has started, when. */
export interface Meeting {
  readonly starts: Float64Array;
  readonly insts: (Inst | null)[];
  count: number;
  /** The members' count of collectives served before this one (the same on every die). */
  serial: number;
}

/** Class mode: one collective (by serial) as the representatives meet at it. */
export interface SerialMeeting {
  /** The collective node: the same on every die. */
  node: number;
  /** Per representative: whether it has started, and when. */
  readonly started: Uint8Array;
  readonly starts: Float64Array;
  /** Per representative waiting to be solved: its instance. */
  readonly insts: (Inst | null)[];
  /** Per representative started: its place in the order of starts (0, 1, …). */
  readonly arrival: Int32Array;
  /**
   * Per member list a started representative is on: how many of the states it needs have not
   * started, and the representatives on it waiting for them (in the order they started). One
   * count per list, not per member, so a flat ring of N distinct dies costs N, not N², per meeting.
   */
  readonly lists: Map<number, { remaining: number; readonly waiting: number[] }>;
  /** Per representative not yet started: the member lists counting on its start. */
  readonly watchers: (number[] | null)[];
  count: number;
  unsolved: number;
  /**
   * Per member list, its ring once solved: every representative on that list reads its own
   * end from the one solution (a ring of N members solved once, not once per class on it).
   */
  readonly solved: Map<number, SolvedRing>;
}

/** One member list's ring in a meeting (class mode), with what it was solved for. */
interface SolvedRing {
  readonly tau: number;
  readonly steps: number;
  readonly latency: number;
  /** The latest member start. */
  readonly latest: number;
  readonly end: Float64Array;
  readonly sendsEnd: Float64Array;
}

export interface DieState {
  readonly numbers: DieNumbers;
  /**
   * Per collective node: the group's index among the package's meeting groups, or in class
   * mode its member list (Rings.lists).
   */
  readonly groupOf: Int32Array;
  readonly computeReady: Inst[];
  readonly dramReady: Inst[];
  computeBusy: Inst | null;
  dramBusy: Inst | null;
  nopBusy: Inst | null;
  readonly nopCursor: NopCursor;
  /** The cursor's collective's instance, once found (nextCollective). */
  nopNext: Inst | null;
  /** Collectives this die has started. */
  served: number;
  /** Top-level instances that became ready or completed so far, and the top-level loops running (steady.ts). */
  topActivity: number;
  readonly topLoops: Set<LoopRun>;
  /** compute, dram, nop. */
  readonly busy: Float64Array;
  /** compute, nop, dram, idle (SPLIT_FIELDS). */
  readonly split: Float64Array;
  /** Per block: compute, dram, nop busy; nop latency; exposed compute, nop, dram, idle; nop inside compute ops. */
  readonly perBlock: Float64Array;
  /** Per block: the steady-state epoch (Clock) in which its perBlock fields last changed. */
  readonly blockChanged: Int32Array;
  last: number;
  finish: number;
  /** The instruction each engine serves: its start, and its seconds (compute) or latency (NoP). */
  computeStart: number;
  computeSeconds: number;
  dramStart: number;
  dramBytes: number;
  nopStart: number;
  nopLatency: number;
  /** The engines' completion events (one closure per die, not per instance). */
  onCompute: () => void;
  onDram: () => void;
  onNop: () => void;
}

export const BLOCK_FIELDS = 9;

/** The steady-state epoch: checkpoints taken so far (steady.ts). */
export interface Clock {
  epoch: number;
}
const nothing = (): void => {};
const SPLIT_COMPUTE = 0;
const SPLIT_NOP = 1;
const SPLIT_DRAM = 2;
const SPLIT_IDLE = 3;
const BUSY_COMPUTE = 0;
const BUSY_DRAM = 1;
const BUSY_NOP = 2;

class Executor {
  private readonly queue = new EventQueue();
  private readonly dram: DramChannels;
  private readonly state: DieState[];
  private readonly meetings: (Meeting | null)[] = [];
  private instances = 0;
  private readonly tops: Frame[] = [];
  private readonly nodes: readonly Node[];
  private readonly bandwidth: number;
  /** Per die of the package: its state (its class in class mode). */
  private readonly stateOf: Int32Array;
  /** Per state: the dies it stands for whose spans the trace wants; and the die it simulates. */
  private readonly tracedDies: number[][];
  private readonly simulated: Int32Array;
  /** Class mode: open meetings by serial, spare ones, and per member list its states and their distinct ones. */
  private readonly serials = new Map<number, SerialMeeting>();
  private readonly spareSerials: SerialMeeting[] = [];
  private readonly listStates: (Int32Array | undefined)[] = [];
  private readonly listNeeds: (Int32Array | undefined)[] = [];
  private startScratch = new Float64Array(16);
  private readonly steady: SteadyState | null;
  /** Steady-state checkpoints so far: what DieState.blockChanged is stamped with. */
  private readonly clock: Clock = { epoch: 0 };

  constructor(
    private readonly shape: Shape,
    numbers: readonly DieNumbers[],
    private readonly classes: DieClasses | null,
    private readonly where: readonly Range[],
    target: Target,
    private readonly trace: TraceSink | null,
    /** With steady-state jumps, the loops (instruction ids) never jumped over; null: no jumps. */
    whole: ReadonlySet<number> | null,
  ) {
    this.nodes = shape.nodes;
    this.bandwidth = target.package.link.bandwidthBytesPerS;
    this.dram = new DramChannels(target, this.queue, classes);
    const D = where.length;
    this.stateOf = classes !== null ? classes.classOf : Int32Array.from({ length: D }, (_, d) => d);
    this.simulated = classes !== null ? classes.reps : Int32Array.from({ length: D }, (_, d) => d);
    // Per simulated die, the dies whose spans it traces: those it stands for that the sink wants.
    this.tracedDies = Array.from(this.simulated, () => []);
    const wanted = trace?.onlyDies === undefined ? null : new Set(trace.onlyDies);
    for (let d = 0; d < D; d++) if (wanted === null || wanted.has(d)) this.tracedDies[this.stateOf[d]!]!.push(d);
    const collectiveNodes = shape.nodes.filter((n) => n.kind === 'collective').map((n) => n.index);
    const groupIndex = new Map<string, number>();
    this.state = Array.from(this.simulated, (die) => {
      const nums = numbers[die]!;
      let groupOf: Int32Array;
      if (classes !== null) {
        const { grouping, listOf, groupings: G } = classes.rings;
        groupOf = grouping.map((g) => listOf[die * G + g]!);
      } else {
        groupOf = new Int32Array(nums.colls.length);
        nums.colls.forEach((c, k) => {
          let g = groupIndex.get(c.group);
          if (g === undefined) {
            g = groupIndex.size;
            groupIndex.set(c.group, g);
            this.meetings.push(null);
          }
          groupOf[k] = g;
        });
      }
      return {
        numbers: nums,
        groupOf,
        computeReady: [],
        dramReady: [],
        computeBusy: null,
        dramBusy: null,
        nopBusy: null,
        nopCursor: new NopCursor(shape, collectiveNodes),
        nopNext: null,
        served: 0,
        topActivity: 0,
        topLoops: new Set(),
        busy: new Float64Array(3),
        split: new Float64Array(4),
        perBlock: new Float64Array(shape.blocks.length * BLOCK_FIELDS),
        blockChanged: new Int32Array(shape.blocks.length),
        last: 0,
        finish: 0,
        computeStart: 0,
        computeSeconds: 0,
        dramStart: 0,
        dramBytes: 0,
        nopStart: 0,
        nopLatency: 0,
        onCompute: nothing,
        onDram: nothing,
        onNop: nothing,
      };
    });
    this.state.forEach((s, d) => {
      s.onCompute = () => this.computeDone(d);
      s.onDram = () => this.dramDone(d);
      s.onNop = () => this.nopDone(d);
    });
    this.steady = whole !== null ? new SteadyState({ queue: this.queue, dram: this.dram, states: this.state, tops: this.tops, meetings: this.meetings, serials: this.serials, clock: this.clock }, whole) : null;
  }

  run(): void {
    this.queue.schedule(0, () => {
      for (let d = 0; d < this.state.length; d++) {
        const top = new Frame(d, NOT_LOOP, -1, -1, 0, null, 1, null);
        this.tops.push(top);
        this.open(top, this.shape.top);
      }
    });
    this.queue.run();
    this.state.forEach((s, d) => {
      const left = s.nopCursor.current;
      assert(left < 0 && this.tops[d]!.remaining === 0, `program execution deadlocked: die ${this.simulated[d]} stopped with ${this.tops[d]!.remaining} top-level instructions unfinished (next collective ${left < 0 ? 'none' : `node ${left}`})`);
    });
    assert(this.serials.size === 0, `program execution left ${this.serials.size} collectives unmet`);
  }

  // -- materialising ---------------------------------------------------------------------------

  /** Create the instances of a body in `frame`; those already free become ready. */
  private open(frame: Frame, body: readonly number[]): void {
    const nodes = this.nodes;
    const insts = frame.insts;
    const first = insts.length;
    const owner = frame.owner;
    const previous = owner !== null && owner.last !== null && owner.last !== frame ? owner.last : null;
    for (let k = 0; k < body.length; k++) {
      const node = nodes[body[k]!]!;
      const inst = new Inst(node, frame);
      insts.push(inst);
      frame.remaining++;
      this.instances++;
      // A dep in the same body is this frame's instance, created just now and not done: it
      // finds its dependents through its node's localDependents (complete).
      const deps = node.deps;
      const local = node.local;
      for (let i = 0; i < deps.length; i++) {
        if (local[i]) inst.pending++;
        else this.waitOn(inst, this.lookup(frame, deps[i]!));
      }
      const carried = node.carried;
      if (carried.length > 0 && previous !== null) {
        for (let i = 0; i < carried.length; i++) this.waitOn(inst, previous.insts[nodes[carried[i]!]!.pos]!);
      }
    }
    for (let k = first; k < insts.length; k++) {
      const inst = insts[k]!;
      if (inst.pending === 0) this.becomeReady(inst);
    }
  }

  private waitOn(inst: Inst, dep: Inst): void {
    if (dep.done) return;
    inst.pending++;
    if (dep.dependents === null) dep.dependents = [inst];
    else dep.dependents.push(inst);
  }

  private lookup(frame: Frame, node: number): Inst {
    const target = this.nodes[node]!;
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
      const body = new Frame(frame.die, node.index, node.id, it, frame.depth + 1, frame, scale, run);
      run.live.push(body);
      // Carried deps look at the previous iteration: `last` is it until this one is open.
      this.open(body, loop.body);
      run.last = body;
      if (this.steady !== null && frame.die === 0 && frame.depth === 0) this.steady.opened(run, it);
      if (body.remaining === 0) this.iterationDone(body);
    }
  }

  // -- readiness and completion ----------------------------------------------------------------

  private becomeReady(inst: Inst): void {
    inst.ready = true;
    this.changed(inst.frame);
    switch (inst.node.engine) {
      case null: {
        const run = new LoopRun(inst);
        inst.loop = run;
        if (inst.frame.depth === 0) this.state[inst.frame.die]!.topLoops.add(run);
        this.openIterations(run);
        return;
      }
      case 'compute': {
        const die = inst.frame.die;
        heapPush(this.state[die]!.computeReady, inst);
        return this.dispatchCompute(die);
      }
      case 'dram': {
        const die = inst.frame.die;
        heapPush(this.state[die]!.dramReady, inst);
        return this.dispatchDram(die);
      }
      case 'nop':
        return this.dispatchNop(inst.frame.die);
      default:
        return assertNever(inst.node.engine);
    }
  }

  private complete(inst: Inst): void {
    inst.done = true;
    const frame = inst.frame;
    const s = this.state[frame.die]!;
    s.finish = Math.max(s.finish, this.queue.now);
    this.changed(frame);
    // Dependents in the same frame registered first (when the frame opened), then the rest.
    const local = inst.node.localDependents;
    if (local.length > 0) {
      const insts = frame.insts;
      for (let i = 0; i < local.length; i++) {
        const d = insts[local[i]!]!;
        if (--d.pending === 0) this.becomeReady(d);
      }
    }
    const deps = inst.dependents;
    inst.dependents = null;
    if (deps !== null) {
      for (let i = 0; i < deps.length; i++) {
        const d = deps[i]!;
        if (--d.pending === 0) this.becomeReady(d);
      }
    }
    if (--frame.remaining === 0 && frame.owner !== null) this.iterationDone(frame);
  }

  private iterationDone(frame: Frame): void {
    const run = frame.owner!;
    const live = run.live;
    const at = live.indexOf(frame);
    if (at >= 0) live.splice(at, 1);
    run.completed++;
    if (run.completed === run.inst.node.loop!.count) {
      // Nothing looks into a finished loop again: let its last iteration's instances go, or
      // every loop of a long program would keep one iteration alive to the end.
      run.last = null;
      run.inst.loop = null;
      if (run.inst.frame.depth === 0) this.state[run.inst.frame.die]!.topLoops.delete(run);
      this.complete(run.inst);
    } else this.openIterations(run);
  }

  /** Count a change of status in `frame`: on its die's top level, or in its top-level loop. */
  private changed(frame: Frame): void {
    if (frame.depth === 0) {
      this.state[frame.die]!.topActivity++;
      return;
    }
    let f = frame;
    while (f.depth > 1) f = f.parent!;
    f.owner!.activity++;
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
    s.computeStart = start;
    s.computeSeconds = seconds;
    this.queue.schedule(start + seconds, s.onCompute);
  }

  private computeDone(die: number): void {
    const s = this.state[die]!;
    const inst = s.computeBusy!;
    const seconds = s.computeSeconds;
    this.sweep(die);
    s.computeBusy = null;
    s.busy[BUSY_COMPUTE] += seconds;
    s.perBlock[inst.node.block * BLOCK_FIELDS + 0] += seconds;
    s.blockChanged[inst.node.block] = this.clock.epoch;
    if (this.trace !== null) this.span(die, 'compute', inst, s.computeStart);
    this.complete(inst);
    this.dispatchCompute(die);
  }

  private dispatchDram(die: number): void {
    const s = this.state[die]!;
    if (s.dramBusy !== null || s.dramReady.length === 0) return;
    const inst = heapPop(s.dramReady);
    const bytes = s.numbers.work[inst.node.index]! * inst.frame.scale;
    const start = this.queue.now;
    this.sweep(die);
    s.dramBusy = inst;
    s.dramStart = start;
    s.dramBytes = bytes;
    this.dram.transfer(die, bytes, s.onDram);
  }

  private dramDone(die: number): void {
    const s = this.state[die]!;
    const inst = s.dramBusy!;
    this.sweep(die);
    const seconds = this.queue.now - s.dramStart;
    s.dramBusy = null;
    s.busy[BUSY_DRAM] += seconds;
    s.perBlock[inst.node.block * BLOCK_FIELDS + 1] += seconds;
    s.blockChanged[inst.node.block] = this.clock.epoch;
    if (this.trace !== null) this.span(die, 'dma', inst, s.dramStart, { bytes: s.dramBytes });
    this.complete(inst);
    this.dispatchDram(die);
  }

  /** The instance of the die's next collective (its NoP cursor), if it has been created. */
  private nextCollective(die: number): Inst | null {
    const cursor = this.state[die]!.nopCursor;
    if (cursor.current < 0) return null;
    const nodes = this.nodes;
    let f = this.tops[die]!;
    for (let k = 1; k < cursor.depth; k++) {
      const loopNode = nodes[cursor.bodies[k - 1]![cursor.idx[k - 1]!]!]!;
      const li = f.insts[loopNode.pos];
      if (li === undefined || li.loop === null) return null;
      const live = li.loop.live;
      const it = cursor.its[k]!;
      let next: Frame | null = null;
      for (let i = 0; i < live.length; i++) {
        if (live[i]!.it === it) {
          next = live[i]!;
          break;
        }
      }
      if (next === null) return null;
      f = next;
    }
    return f.insts[nodes[cursor.current]!.pos] ?? null;
  }

  private dispatchNop(die: number): void {
    const s = this.state[die]!;
    if (s.nopBusy !== null) return;
    let inst = s.nopNext;
    if (inst === null) {
      inst = this.nextCollective(die);
      if (inst === null) return;
      s.nopNext = inst;
    }
    if (!inst.ready) return;
    s.nopNext = null;
    s.nopCursor.advance();
    const serial = s.served++;
    this.sweep(die);
    s.nopBusy = inst;
    const c = s.numbers.colls[inst.node.coll]!;
    if (this.classes !== null) return this.meetBySerial(die, inst, serial, c);
    if (c.steps === 0) {
      s.nopStart = this.queue.now;
      s.nopLatency = 0;
      this.queue.schedule(this.queue.now, s.onNop);
      return;
    }
    const g = s.groupOf[inst.node.coll]!;
    let m = this.meetings[g]!;
    if (m === null) {
      m = { starts: new Float64Array(c.size), insts: new Array<Inst | null>(c.size).fill(null), count: 0, serial };
      this.meetings[g] = m;
    } else if (m.count === 0) {
      m.serial = serial;
    }
    if (m.serial !== serial || m.insts.length !== c.size || m.insts[c.position] !== null) {
      throw new InternalError(`collective group ${c.group} met out of order or twice at position ${c.position}`);
    }
    m.insts[c.position] = inst;
    m.starts[c.position] = this.queue.now;
    if (++m.count === c.size) {
      this.solveRing(m, c, inst.frame.scale);
      m.count = 0;
      m.insts.fill(null);
    }
  }

  private ringScratch: RingSolution | undefined = undefined;

  /** Every member has started: solve the ring (see the header) and schedule each one's end. */
  private solveRing(m: Meeting, c: CollectiveNumbers, scale: number): void {
    const n = c.size;
    const tau = (c.stepBytes * scale) / this.bandwidth;
    const ring = solveRing(m.starts, n, c.steps, tau, c.latency, this.ringScratch);
    this.ringScratch = ring;
    for (let p = 0; p < n; p++) {
      // Every member's result depends on every member's data, so none ends before the last
      // has started (a ring of fewer steps than members, standing for a torus or tree
      // algorithm, would otherwise let far members finish early).
      const end = Math.max(ring.end[p]!, this.queue.now);
      const inst = m.insts[p]!;
      const s = this.state[inst.frame.die]!;
      const start = m.starts[p]!;
      s.nopStart = start;
      s.nopLatency = c.steps * c.latency;
      this.queue.schedule(end, s.onNop);
      if (this.trace !== null) this.trace.span(inst.frame.die, `link ${linkName(c.axis)}`, inst.node.label, start, ring.sendsEnd[p]!, { bytes: c.steps * c.stepBytes * scale });
    }
  }

  /** Class mode: representative `die` starts its collective number `serial` (see the header). */
  private meetBySerial(die: number, inst: Inst, serial: number, c: CollectiveNumbers): void {
    const now = this.queue.now;
    let m = this.serials.get(serial);
    if (m === undefined) {
      m = this.spareSerials.pop() ?? this.newSerial();
      m.node = inst.node.index;
      this.serials.set(serial, m);
    }
    if (m.node !== inst.node.index || m.started[die] !== 0) {
      throw new InternalError(`collective ${serial} in program order met out of order or twice by die ${this.simulated[die]}`);
    }
    m.started[die] = 1;
    m.starts[die] = now;
    m.arrival[die] = m.count++;
    // The lists this start completes: their waiting members are solved after this die, in the
    // order they started.
    let ready: number[] | null = null;
    const watching = m.watchers[die];
    if (watching !== null && watching !== undefined) {
      m.watchers[die] = null;
      for (const list of watching) {
        const rec = m.lists.get(list)!;
        if (--rec.remaining === 0) {
          ready = ready === null ? rec.waiting.slice() : ready.concat(rec.waiting);
          rec.waiting.length = 0;
        }
      }
    }
    const s = this.state[die]!;
    if (c.steps === 0) {
      s.nopStart = now;
      s.nopLatency = 0;
      this.queue.schedule(now, s.onNop);
    } else {
      const list = s.groupOf[inst.node.coll]!;
      let rec = m.lists.get(list);
      if (rec === undefined) {
        const need = this.needsOf(list);
        let remaining = 0;
        for (let i = 0; i < need.length; i++) {
          const v = need[i]!;
          if (m.started[v] !== 0) continue;
          remaining++;
          const w = m.watchers[v];
          if (w === null || w === undefined) m.watchers[v] = [list];
          else w.push(list);
        }
        rec = { remaining, waiting: [] };
        m.lists.set(list, rec);
      }
      m.insts[die] = inst;
      if (rec.remaining === 0) this.solveByClass(m, die);
      else {
        rec.waiting.push(die);
        m.unsolved++;
      }
    }
    if (ready !== null) {
      if (ready.length > 1) ready.sort((a, b) => m.arrival[a]! - m.arrival[b]!);
      for (const w of ready) {
        m.unsolved--;
        this.solveByClass(m, w);
      }
    }
    if (m.count === this.state.length && m.unsolved === 0) {
      this.serials.delete(serial);
      m.started.fill(0);
      m.count = 0;
      m.solved.clear();
      m.lists.clear();
      this.spareSerials.push(m);
    }
  }

  /** Class mode: representative `die`'s position in the ring of its collective `coll` (the shared rings'). */
  private positionOf(die: number, coll: number): number {
    const { position, grouping, groupings } = this.classes!.rings;
    return position[this.simulated[die]! * groupings + grouping[coll]!]!;
  }

  private newSerial(): SerialMeeting {
    const n = this.state.length;
    return { node: -1, started: new Uint8Array(n), starts: new Float64Array(n), insts: new Array<Inst | null>(n).fill(null), arrival: new Int32Array(n), lists: new Map(), watchers: new Array<number[] | null>(n).fill(null), count: 0, unsolved: 0, solved: new Map() };
  }

  /** The states (classes) of a member list's dies, by position. */
  private statesOf(list: number): Int32Array {
    let states = this.listStates[list];
    if (states === undefined) {
      states = this.classes!.rings.lists[list]!.map((d) => this.stateOf[d]!);
      this.listStates[list] = states;
    }
    return states;
  }

  /** The distinct states of a member list: whose starts its members' rings wait for. */
  private needsOf(list: number): Int32Array {
    let need = this.listNeeds[list];
    if (need === undefined) {
      need = Int32Array.from(new Set(this.statesOf(list)));
      this.listNeeds[list] = need;
    }
    return need;
  }

  /**
   * Class mode: every class in representative `die`'s group has started: solve its ring, each
   * member starting when its class's representative did, and schedule its own end.
   */
  private solveByClass(m: SerialMeeting, die: number): void {
    const inst = m.insts[die]!;
    m.insts[die] = null;
    const s = this.state[die]!;
    const c = s.numbers.colls[inst.node.coll]!;
    const list = s.groupOf[inst.node.coll]!;
    const position = this.positionOf(die, inst.node.coll);
    const scale = inst.frame.scale;
    const start = m.starts[die]!;
    s.nopStart = start;
    s.nopLatency = c.steps * c.latency;
    if (this.needsOf(list).length === 1) {
      // Every member is of this class and starts with it: solveRing's maximiser is the
      // window's first index for every member, which gives these very bits.
      const tau = (c.stepBytes * scale) / this.bandwidth;
      const last = (c.steps - 1) * tau + (start + (c.steps - 1) * c.latency);
      this.queue.schedule(last + tau + c.latency, s.onNop);
      if (this.trace !== null) {
        for (const d of this.tracedDies[die]!) this.trace.span(d, `link ${linkName(c.axis)}`, inst.node.label, start, last + tau, { bytes: c.steps * c.stepBytes * scale });
      }
      return;
    }
    const ring = this.ringOf(m, list, c.steps, (c.stepBytes * scale) / this.bandwidth, c.latency);
    // As in solveRing above: no member ends before the last has started.
    const end = Math.max(ring.end[position]!, ring.latest);
    this.queue.schedule(end, s.onNop);
    if (this.trace !== null) {
      for (const d of this.tracedDies[die]!) this.trace.span(d, `link ${linkName(c.axis)}`, inst.node.label, start, ring.sendsEnd[position]!, { bytes: c.steps * c.stepBytes * scale });
    }
  }

  /** Member list `list`'s ring in meeting `m`, solved on first asking (every member has started). */
  private ringOf(m: SerialMeeting, list: number, steps: number, tau: number, latency: number): SolvedRing {
    const known = m.solved.get(list);
    if (known !== undefined && known.steps === steps && known.tau === tau && known.latency === latency) return known;
    const states = this.statesOf(list);
    const n = states.length;
    if (this.startScratch.length < n) this.startScratch = new Float64Array(n);
    const starts = this.startScratch;
    let latest = -Infinity;
    for (let p = 0; p < n; p++) {
      const t = m.starts[states[p]!]!;
      starts[p] = t;
      if (t > latest) latest = t;
    }
    const ring = solveRing(starts, n, steps, tau, latency, this.ringScratch);
    this.ringScratch = ring;
    const solved: SolvedRing = { tau, steps, latency, latest, end: ring.end.slice(0, n), sendsEnd: ring.sendsEnd.slice(0, n) };
    m.solved.set(list, solved);
    return solved;
  }

  private nopDone(die: number): void {
    const s = this.state[die]!;
    const inst = s.nopBusy!;
    const start = s.nopStart;
    const latency = s.nopLatency;
    const c = s.numbers.colls[inst.node.coll]!;
    this.sweep(die);
    const seconds = this.queue.now - start;
    s.nopBusy = null;
    s.busy[BUSY_NOP] += seconds;
    const b = inst.node.block * BLOCK_FIELDS;
    if (inst.node.internal) s.perBlock[b + 8] += seconds;
    else {
      s.perBlock[b + 2] += seconds;
      s.perBlock[b + 3] += latency;
    }
    s.blockChanged[inst.node.block] = this.clock.epoch;
    if (this.trace !== null) this.span(die, 'nop', inst, start, { steps: c.steps, group: c.size });
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
    let field: number;
    let inst: Inst | null;
    if (s.computeBusy !== null) {
      field = SPLIT_COMPUTE;
      inst = s.computeBusy;
    } else if (s.nopBusy !== null) {
      field = SPLIT_NOP;
      inst = s.nopBusy;
    } else if (s.dramBusy !== null) {
      field = SPLIT_DRAM;
      inst = s.dramBusy;
    } else {
      field = SPLIT_IDLE;
      inst = null;
    }
    s.split[field] += dt;
    if (inst !== null) {
      s.perBlock[inst.node.block * BLOCK_FIELDS + 4 + field] += dt;
      s.blockChanged[inst.node.block] = this.clock.epoch;
    }
  }

  /** A span of simulated die `die`, on every die it stands for. */
  private span(die: number, track: TraceTrack, inst: Inst, start: number, args: Record<string, string | number> = {}): void {
    if (this.trace === null) return;
    const key = this.shape.blocks[inst.node.block]!;
    const all = { id: inst.node.id, layer: key.layer ?? '-', phase: key.phase, block: key.block, ...args };
    for (const d of this.tracedDies[die]!) this.trace.span(d, track, inst.node.label, start, this.queue.now, all);
  }

  // -- result ----------------------------------------------------------------------------------

  result(): ExecutionResult {
    // Every die reports its simulated die's times.
    const finish = Array.from(this.stateOf, (k) => this.state[k]!.finish);
    const latency = finish.reduce((m, x) => Math.max(m, x), 0);
    const critical = Math.max(0, finish.indexOf(latency));
    const s = this.state[this.stateOf[critical]!]!;
    // Time after the die's last instruction, until the package is done, is idle.
    const split = { compute: s.split[SPLIT_COMPUTE]!, nop: s.split[SPLIT_NOP]!, dram: s.split[SPLIT_DRAM]!, idle: s.split[SPLIT_IDLE]! + (latency - s.last) };
    const busyOf = (t: DieState) => ({ compute: t.busy[BUSY_COMPUTE]!, dram: t.busy[BUSY_DRAM]!, nop: t.busy[BUSY_NOP]! });
    const busy = { compute: 0, dram: 0, nop: 0 };
    for (const t of this.state) {
      const b = busyOf(t);
      for (const k of ['compute', 'dram', 'nop'] as const) busy[k] = Math.max(busy[k], b[k]);
    }
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
        nop_internal_s: f(8),
        exposed: { compute: f(4), nop: f(5), dram: f(6), idle: f(7) },
      };
    });
    return {
      latency_s: latency,
      breakdown_s: split,
      busy_s: busy,
      critical_die: this.where[critical]!,
      dies: Array.from(this.stateOf, (k, d) => ({ die: this.where[d]!, finish_s: this.state[k]!.finish, busy_s: busyOf(this.state[k]!) })),
      blocks,
      instances: this.instances,
      events: this.queue.eventsRun,
      classes: this.state.length,
      iterations_extrapolated: this.steady?.iterationsSkipped ?? 0,
    };
  }
}

/** The link direction a collective on these grid axes drives (rings run east and south). */
export function linkName(axis: string): string {
  return axis === 'c' ? 'east (row ring)' : axis === 'r' ? 'south (column ring)' : 'ring over all dies';
}

/**
 * Walks a die's collectives in program order (the same on every die): `current` is the next
 * one's node (or −1 when none is left), reached through the loop iterations `its[1..depth−1]`
 * of the loops `bodies[k−1][idx[k−1]]`.
 */
export class NopCursor {
  readonly bodies: (readonly number[])[] = [];
  readonly idx: number[] = [];
  /** The iteration of the loop whose body is at this level (−1 at the top). */
  readonly its: number[] = [];
  depth = 0;
  current = -1;

  constructor(
    private readonly shape: Shape,
    collectiveNodes: readonly number[],
  ) {
    if (collectiveNodes.length > 0) this.push(shape.top, -1);
    this.find();
  }

  advance(): void {
    this.idx[this.depth - 1]!++;
    this.find();
  }

  private push(body: readonly number[], it: number): void {
    const k = this.depth++;
    this.bodies[k] = body;
    this.idx[k] = 0;
    this.its[k] = it;
  }

  /** Move to the next collective at or after the current position. */
  private find(): void {
    const nodes = this.shape.nodes;
    for (;;) {
      if (this.depth === 0) {
        this.current = -1;
        return;
      }
      const k = this.depth - 1;
      const body = this.bodies[k]!;
      const i = this.idx[k]!;
      if (i >= body.length) {
        this.depth--;
        if (this.depth === 0) continue;
        // Finished one iteration of the loop at bodies[k−1][idx[k−1]]: next iteration or move on.
        const loopNode = nodes[this.bodies[k - 1]![this.idx[k - 1]!]!]!;
        const it = this.its[k]! + 1;
        if (it < loopNode.loop!.count) this.push(loopNode.loop!.body, it);
        else this.idx[k - 1]!++;
        continue;
      }
      const node = nodes[body[i]!]!;
      if (node.kind === 'collective') {
        this.current = node.index;
        return;
      }
      if (node.loop !== null && this.containsCollective(node)) {
        this.push(node.loop.body, 0);
        continue;
      }
      this.idx[k] = i + 1;
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

/**
 * Program order: the instances' (loop id, iteration) pairs from the top down, then their
 * node ids, compared lexicographically; found at the first frame the two do not share.
 */
function earlier(a: Inst, b: Inst): boolean {
  let fa = a.frame;
  let fb = b.frame;
  let xa = a.node.id;
  let xb = b.node.id;
  let ia = -1;
  let ib = -1;
  while (fa.depth > fb.depth) {
    xa = fa.loopId;
    ia = fa.it;
    fa = fa.parent!;
  }
  while (fb.depth > fa.depth) {
    xb = fb.loopId;
    ib = fb.it;
    fb = fb.parent!;
  }
  while (fa !== fb) {
    xa = fa.loopId;
    ia = fa.it;
    fa = fa.parent!;
    xb = fb.loopId;
    ib = fb.it;
    fb = fb.parent!;
  }
  if (xa !== xb) return xa < xb;
  return ia < ib;
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

// -- the ring of a collective ---------------------------------------------------------------------

export interface RingSolution {
  /** When member p has received every step and its own last message has arrived. */
  readonly end: Float64Array;
  /** When member p's last message has left its link. */
  readonly sendsEnd: Float64Array;
  /** Scratch for the window maxima. */
  readonly deque: Int32Array;
}

/**
 * A ring of n members, S steps, each step moving one message of τ seconds on the link from
 * member p to p+1 and arriving a later; member p starts at `starts[p]`; its step-s send waits
 * for its step-(s−1) message from p−1 and for its own previous send to leave the link:
 *   send(p, s) = max(send(p−1, s−1) + τ + a, send(p, s−1) + τ),  send(p, 0) = start(p)
 * whose solution is send(p, s) = s·τ + max_{0≤k≤s} (start(p−k) + k·a). With the virtual index
 * j = p − k (not reduced mod n), send(p, S−1) = (S−1)τ + max_{j∈[p−S+1, p]} (start(j mod n)
 * + (p−j)·a), every window's maximiser from one monotonic deque over start(j mod n) − j·a:
 * O(n + S). The maximum is evaluated from the member's own offset p − j, so members that see
 * the same starts around the ring get the same bits wherever they sit on it.
 */
export function solveRing(starts: ArrayLike<number>, n: number, S: number, tau: number, a: number, scratch?: RingSolution): RingSolution {
  const big = scratch !== undefined && scratch.end.length >= n && scratch.deque.length >= n + S + 1;
  const out: RingSolution = big ? scratch : { end: new Float64Array(n), sendsEnd: new Float64Array(n + 1), deque: new Int32Array(n + S + 1) };
  const start = (j: number): number => starts[((j % n) + n) % n]!;
  const at = (j: number): number => start(j) - j * a;
  const deque = out.deque;
  // lastSend for p ∈ [−1, n−1] is kept in sendsEnd[p + 1] first, then turned into ends.
  const last = out.sendsEnd;
  let head = 0;
  let tail = 0;
  for (let j = -S; j <= n - 1; j++) {
    const v = at(j);
    while (tail > head && at(deque[tail - 1]!) <= v) tail--;
    deque[tail++] = j;
    if (j >= -1) {
      while (deque[head]! < j - S + 1) head++;
      const i = deque[head]!;
      last[j + 1] = (S - 1) * tau + (start(i) + (j - i) * a);
    }
  }
  for (let p = 0; p < n; p++) out.end[p] = Math.max(last[p]!, last[p + 1]!) + tau + a;
  // Shift: sendsEnd[p] = member p's last send + τ.
  for (let p = 0; p < n; p++) last[p] = last[p + 1]! + tau;
  return out;
}
