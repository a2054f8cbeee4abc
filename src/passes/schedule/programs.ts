// schedule/programs: the program set — the shared skeleton materialised per die on demand. What
// every die shares is frozen once; a die's program and totals evaluate only the fields that
// differ, so many dies cost one walk.

import { dieAt, type Target } from '../../target/target.js';
import { assert, assertNever } from '../../diagnostics/diagnostic.js';
import type { Strategy } from '../pass.js';
import type { Die, Grid } from '../sharding.js';
import { emptyTotals, MemberLists, type BufferDecl, type CollectiveRings, type DramLayout, type InstrCommon, type Instruction, type IrRef, type Program, type ProgramTotals, type Range, type SharedPrograms, type VaryingClasses } from '../../backend/program.js';
import type { Analysis } from './analysis.js';
import type { Buf, IrNode, SNode } from './skeleton.js';

export interface ProgramSet extends SharedPrograms {
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

export class Programs implements ProgramSet {
  readonly buffers: readonly BufferDecl[];
  readonly instructionsPerDie: number;
  readonly grid: Grid;
  readonly minibatch: ProgramSet['minibatch'];
  private readonly common = new Map<SNode, InstrCommon>();
  private readonly uniformTotals: ProgramTotals;
  private readonly varyingNodes: { node: SNode; times: number }[] = [];
  /** Collective nodes in program order (loop bodies in place). */
  private readonly collectives: SNode[] = [];
  private readonly irRefs = new Map<IrNode, IrRef>();
  /** Die [0, 0]'s instructions. */
  private readonly origin = new Map<SNode, Instruction>();
  private classes: VaryingClasses | undefined;

  constructor(
    readonly model: string,
    readonly target: Target,
    readonly strategy: Strategy,
    a: Analysis,
    private readonly top: readonly SNode[],
    buffers: readonly Buf[],
    readonly peak: { readonly activation: number; readonly weight: number },
    readonly layouts: readonly DramLayout[],
  ) {
    this.grid = a.grid;
    this.minibatch = { batch: a.batch, size: a.size, count: a.count, lastSize: a.lastSize };
    this.buffers = buffers.map((b) => ({ name: b.name, kind: b.kind, bytes: b.bytes, offset: b.offset, live: b.live, tensor: b.tensor, view: b.view }));
    this.uniformTotals = emptyTotals();
    this.walk(top, 1);
    this.instructionsPerDie = this.common.size;
  }

  /** Freeze what every die shares, and total what is the same on every die. */
  private walk(list: readonly SNode[], times: number): void {
    for (let k = 0; k < list.length; k++) {
      const n = list[k]!;
      const deps = sortedIds(n.deps);
      if (deps.length && deps[deps.length - 1]! >= n.id) assert(false, `schedule: instruction ${n.id} depends on a later one`);
      const { phase, layer, block, loc } = n.origin;
      this.common.set(n, { id: n.id, reads: n.reads.map(nameOf), writes: n.writes.map(nameOf), deps, carried: sortedIds(n.carried), phase, layer, block, loc });
      if (n.fixed.kind === 'collective') this.collectives.push(n);
      if (!n.uniform) this.varyingNodes.push({ node: n, times });
      if (n.fixed.kind === 'loop') this.walk(n.body, times * (n.fixed.count - 1 + n.fixed.lastSize / n.fixed.size));
      // Die 0's instruction, kept: its numbers are the uniform totals' and every die 0
      // program (the simulator's first read) is made of these objects.
      const ins = this.instr(n, ORIGIN);
      this.origin.set(n, ins);
      if (n.uniform) addInstrCost(this.uniformTotals, ins, times);
    }
  }

  dies(): Die[] {
    const out: Die[] = [];
    for (let i = 0; i < this.grid.rows; i++) for (let j = 0; j < this.grid.cols; j++) out.push({ i, j });
    return out;
  }

  programFor(die: Die): Program {
    assert(die.i >= 0 && die.i < this.grid.rows && die.j >= 0 && die.j < this.grid.cols, `no die [${die.i}, ${die.j}] in a ${this.grid.rows}x${this.grid.cols} grid`);
    const d = dieAt(this.target, die.i * this.grid.cols + die.j);
    return {
      header: {
        model: this.model,
        target: this.target.name,
        strategy: this.strategy,
        grid: [this.grid.rows, this.grid.cols],
        ...(this.grid.rowUnits || this.grid.colUnits ? { units: { rows: this.grid.rowUnits ?? null, cols: this.grid.colUnits ?? null } } : {}),
        die: [die.i, die.j],
        minibatch: this.minibatch,
        sram: { activationPeak: this.peak.activation, weightPeak: this.peak.weight, activationCapacity: d.activationBufferBytes, weightCapacity: d.weightBufferBytes },
        layouts: this.layouts,
      },
      buffers: this.buffers,
      instructions: this.top.map((n) => this.instr(n, die)),
    };
  }

  totalsFor(die: Die): ProgramTotals {
    const t = { ...this.uniformTotals };
    for (const { node, times } of this.varyingNodes) addCost(t, node, die, times);
    return t;
  }

  varying(d: number): { ins: Instruction; times: number }[] {
    const die = this.dieAt(d);
    return this.varyingNodes.map(({ node, times }) => ({ ins: this.instr(node, die), times }));
  }

  /**
   * Classes of dies by their varying instructions' numbers, found once: each die's numbers
   * (no instructions built) hashed and compared with its class's first die's. A 64×64 grid
   * with heads dealt unevenly has thousands of varying instructions and two classes.
   */
  varyingClasses(): VaryingClasses {
    if (this.classes !== undefined) return this.classes;
    const D = this.grid.rows * this.grid.cols;
    const classOf = new Int32Array(D);
    const reps: number[] = [];
    const counts: number[] = [];
    const numbers: Float64Array[] = [];
    const byHash = new Map<number, number[]>();
    // Each die's numbers into one scratch array (its size from die 0's), kept only for a new class.
    let width = 1;
    for (const { node } of this.varyingNodes) width += numberCount(node);
    const scratch = new Float64Array(width);
    const words = new Int32Array(scratch.buffer);
    for (let d = 0; d < D; d++) {
      const die = this.dieAt(d);
      scratch[0] = this.target.layout[d]!;
      let at = 1;
      for (const { node } of this.varyingNodes) at = numbersOf(node, die, scratch, at);
      const hash = hashWords(words);
      const known = byHash.get(hash) ?? [];
      let c = known.find((k) => sameNumbers(numbers[k]!, scratch));
      if (c === undefined) {
        c = reps.length;
        reps.push(d);
        counts.push(0);
        numbers.push(scratch.slice());
        known.push(c);
        byHash.set(hash, known);
      }
      classOf[d] = c;
      counts[c]!++;
    }
    this.classes = { classOf, reps: Int32Array.from(reps), counts: Int32Array.from(counts) };
    return this.classes;
  }

  /** Each collective's rings, from one evaluation per die of each way collectives group the dies. */
  rings(): CollectiveRings {
    const D = this.grid.rows * this.grid.cols;
    const K = this.collectives.length;
    const lists = new MemberLists();
    const byRing = new Map<string, number>();
    const first: SNode[] = [];
    const grouping = Int32Array.from(this.collectives, (n) => {
      const f = n.fixed;
      assert(f.kind === 'collective', 'rings: not a collective');
      let g = byRing.get(f.ring);
      if (g === undefined) {
        g = first.length;
        byRing.set(f.ring, g);
        first.push(n);
      }
      return g;
    });
    const G = first.length;
    const listOf = new Int32Array(D * G);
    const position = new Int32Array(D * G);
    // Member lists are shared by the dies of a ring (emit-ops.ts): intern each list once.
    const known = new Map<readonly Range[], number>();
    first.forEach((n, g) => {
      const f = n.fixed as Extract<SNode['fixed'], { kind: 'collective' }>;
      for (let d = 0; d < D; d++) {
        const m = f.members(this.dieAt(d));
        let id = known.get(m.group);
        if (id === undefined) {
          id = lists.id(Int32Array.from(m.group, ([i, j]) => i * this.grid.cols + j));
          known.set(m.group, id);
        }
        listOf[d * G + g] = id;
        position[d * G + g] = m.position;
      }
    });
    return { lists: lists.lists, grouping, listOf, position, collectives: K, groupings: G };
  }

  private dieAt(d: number): Die {
    assert(Number.isInteger(d) && d >= 0 && d < this.grid.rows * this.grid.cols, `no die ${d} in a ${this.grid.rows}x${this.grid.cols} grid`);
    return { i: Math.floor(d / this.grid.cols), j: d % this.grid.cols };
  }

  /** Buffer names instead of buffers; one object per node, shared by every die's program. */
  private irRef(ir: IrNode | null): IrRef | null {
    if (!ir) return null;
    let r = this.irRefs.get(ir);
    if (!r) {
      const rootName = ir.op.results[0]?.name ?? ir.op.kind;
      r = { op: rootName, args: ir.args.map((a) => (a ? a.map((b) => b.name) : null)), specs: ir.specs };
      this.irRefs.set(ir, r);
    }
    return r;
  }

  // Built field by field, in the order the program format lists them: object spreads made
  // this the compiler's hottest function.
  private instr(n: SNode, die: Die): Instruction {
    if (die.i === 0 && die.j === 0) {
      const known = this.origin.get(n);
      if (known !== undefined) return known;
    }
    const c = this.common.get(n)!;
    const f = n.fixed;
    const { id, reads, writes, deps, carried, phase, layer, block, loc } = c;
    switch (f.kind) {
      case 'dram.read':
      case 'dram.write': {
        const t = f.tile(die);
        return { id, reads, writes, deps, carried, phase, layer, block, loc, kind: f.kind, tensor: f.tensor, rows: t.rows, cols: t.cols, bytes: t.bytes };
      }
      case 'gemm': {
        const d = f.dims(die);
        return { id, reads, writes, deps, carried, phase, layer, block, loc, kind: 'gemm', op: f.op, batch: d.batch, m: d.m, n: d.n, k: d.k, macs: d.batch * d.m * d.n * d.k, accumulate: f.accumulate, ir: this.irRef(f.ir) };
      }
      case 'vector': {
        const w = f.work(die);
        return { id, reads, writes, deps, carried, phase, layer, block, loc, kind: 'vector', op: f.op, elements: w.elements, flops: w.flops, accumulate: f.accumulate, ir: this.irRef(f.ir) };
      }
      case 'collective': {
        const g = f.members(die);
        const z = f.sized ? f.sized(die) : f;
        return { id, reads, writes, deps, carried, phase, layer, block, loc, kind: 'collective', op: f.op, algo: f.algo, axis: f.axis, cid: g.cid, group: g.group, position: g.position, sentBytes: z.sentBytes, linkBytes: z.linkBytes, steps: z.steps, partOf: f.partOf };
      }
      case 'loop':
        return { id, reads, writes, deps, carried, phase, layer, block, loc, kind: 'loop', over: f.over, count: f.count, size: f.size, lastSize: f.lastSize, body: n.body.map((x) => this.instr(x, die)) };
      default:
        return assertNever(f);
    }
  }
}

/** The instructions' ids, ascending (lists of a few: an insertion sort, no comparator calls). */
function sortedIds(s: readonly SNode[]): number[] {
  const out: number[] = [];
  for (let k = 0; k < s.length; k++) {
    const x = s[k]!;
    let i = out.length;
    out.push(x.id);
    for (; i > 0 && out[i - 1]! > x.id; i--) out[i] = out[i - 1]!;
    out[i] = x.id;
  }
  return out;
}

function nameOf(b: Buf): string {
  return b.name;
}

/** Die [0, 0]. */
const ORIGIN: Die = { i: 0, j: 0 };

/** Add an instruction's work, `times` over (as addCost does from its node). */
function addInstrCost(t: ProgramTotals, ins: Instruction, times: number): void {
  t.instructions++;
  switch (ins.kind) {
    case 'dram.read':
      t.dramReadBytes += ins.bytes * times;
      break;
    case 'dram.write':
      t.dramWriteBytes += ins.bytes * times;
      break;
    case 'gemm':
      t.macs += ins.batch * ins.m * ins.n * ins.k * times;
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
    case 'collective': {
      const z = f.sized ? f.sized(die) : f;
      t.sentBytes += z.sentBytes * times;
      t.linkBytes += z.linkBytes * times;
      break;
    }
    case 'loop':
      break;
    default:
      assertNever(f);
  }
}

/** How many numbers numbersOf writes for a node. */
function numberCount(n: SNode): number {
  switch (n.fixed.kind) {
    case 'dram.read':
    case 'dram.write':
      return 1;
    case 'gemm':
      return 4;
    case 'vector':
      return 2;
    case 'collective':
      return 3;
    case 'loop':
      return 0;
    default:
      return assertNever(n.fixed);
  }
}

/** The numbers of a varying instruction on `die` (what its cost depends on), written into `out` from `at`; returns where they end. */
function numbersOf(n: SNode, die: Die, out: Float64Array, at: number): number {
  const f = n.fixed;
  switch (f.kind) {
    case 'dram.read':
    case 'dram.write':
      out[at] = f.tile(die).bytes;
      return at + 1;
    case 'gemm': {
      const d = f.dims(die);
      out[at] = d.batch;
      out[at + 1] = d.m;
      out[at + 2] = d.n;
      out[at + 3] = d.k;
      return at + 4;
    }
    case 'vector': {
      const w = f.work(die);
      out[at] = w.elements;
      out[at + 1] = w.flops;
      return at + 2;
    }
    case 'collective': {
      const z = f.sized ? f.sized(die) : f;
      out[at] = z.sentBytes;
      out[at + 1] = z.linkBytes;
      out[at + 2] = z.steps;
      return at + 3;
    }
    case 'loop':
      return at;
    default:
      return assertNever(f);
  }
}

function hashWords(w: Int32Array): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < w.length; i++) h = Math.imul(h ^ w[i]!, 0x01000193);
  return h >>> 0;
}

function sameNumbers(a: Float64Array, b: Float64Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i] && !(Number.isNaN(a[i]!) && Number.isNaN(b[i]!))) return false;
  return true;
}
