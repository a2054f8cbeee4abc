// Steady state: exact extrapolation of a long loop (execute.ts).
//
// A training iteration is mostly loops over mini-batches whose iterations do the same work.
// After a few iterations the executor often repeats itself: every event of iteration k+p
// happens exactly Δ seconds after the matching event of iteration k (p is 1, but dies on DRAM
// pools of unequal make-up can fall into a cycle of a few iterations). The executor is a
// deterministic function of its state, so once the whole state at one point of iteration k
// equals the state at the same point of iteration k−p, moved Δ later and p iterations on, it
// keeps repeating for as long as nothing depends on the iteration index. That holds until
// some die opens the loop's last iteration (a partial mini-batch has its own work), so the
// executor may jump over whole periods up to there: every time moves J·Δ later, every
// iteration index J·p further, and every accumulated time (busy, exposed, per block) grows by
// J times what one period added. This is what simulating those iterations would have
// produced, up to the rounding of the times.
//
// The checkpoint is the moment die 0 (the first simulated die) opens an iteration of a
// top-level loop; it runs as an event at that time, after the events already due then. The
// state compared there is everything that decides the future: pending events (relative
// times, simultaneous ones in a fixed order of their engines; the DRAM pools' stale events are
// no-ops and left out), the DRAM pools' transfers (bytes left, weights; in a fixed order of
// their owners), and per simulated die its engines (what each serves, since when), its ready
// queues, its NoP cursor and collectives served (relative to die 0's), the status of
// every instance of every running loop (iterations of the extrapolated loop numbered from the
// checkpoint's), and the collectives' open meetings. Top-level instances are summed up by a
// count of their changes (becoming ready, completing): when it is the same at two
// checkpoints, none changed in between, so the thousands of them waiting for later work need
// not be listed.
// Times compare within a tolerance far below any instruction's duration (rounding of absolute
// times); everything else exactly. A state never seen to repeat is simply simulated on.
//
// The accumulators a jump extrapolates include every block's accounts of every die, thousands
// of numbers, of which an iteration changes a few. So the dies stamp a block with the current
// epoch (checkpoints so far) whenever its accounts change; a loop's first checkpoint copies
// them all, and its later ones only the blocks stamped since. A jump moves the blocks stamped
// since its earlier checkpoint (the others moved by nothing in a period) by what they gained.
//
// Traces are not extrapolated (every span is wanted) unless the caller names the loops it
// wants whole (`whole`: a timeline of one loop); `steady: false` turns this off.

import { assert } from '../../diagnostics/diagnostic.js';
import type { DramChannels } from './engines.js';
import type { EventQueue } from './events.js';
import type { Clock, DieState, Frame, Inst, LoopRun, Meeting, Node, SerialMeeting } from './execute.js';

/** What of the executor a checkpoint reads and a jump moves on. */
export interface SteadyHost {
  readonly queue: EventQueue;
  readonly dram: DramChannels;
  /** Per simulated die. */
  readonly states: readonly DieState[];
  readonly tops: readonly Frame[];
  /** Open meetings: per group (every die simulated), or by serial (classes). */
  readonly meetings: readonly (Meeting | null)[];
  readonly serials: Map<number, SerialMeeting>;
  /** Counts checkpoints; dies stamp each block's accounts with it when they change. */
  readonly clock: Clock;
}

/** Loops shorter than this are simulated whole: a jump needs a few iterations to detect. */
const MIN_COUNT = 6;
/** The longest period looked for, in iterations (dies on DRAM pools of unequal make-up can fall into a cycle of several). */
const MAX_PERIOD = 8;
/**
 * Checkpoints start at the third iteration (the first two fill the pipeline) and are taken at
 * every iteration up to this one; after it, only at iterations 2^j … 2^j + MAX_PERIOD.
 */
const EAGER_UNTIL = 16;
/** Relative tolerance on times (of the current time) and on bytes. */
const TIME_TOLERANCE = 1e-12;
const BYTE_TOLERANCE = 1e-9;

/** A state, as exact codes and toleranced numbers, in a fixed walk order. */
class Signature {
  readonly codes: (number | string)[] = [];
  readonly times: number[] = [];
  readonly bytes: number[] = [];

  matches(o: Signature, now: number): boolean {
    if (this.codes.length !== o.codes.length || this.times.length !== o.times.length || this.bytes.length !== o.bytes.length) return false;
    for (let i = 0; i < this.codes.length; i++) if (this.codes[i] !== o.codes[i]) return false;
    const tt = TIME_TOLERANCE * Math.max(now, 1e-9);
    for (let i = 0; i < this.times.length; i++) if (Math.abs(this.times[i]! - o.times[i]!) > tt) return false;
    for (let i = 0; i < this.bytes.length; i++) {
      const a = this.bytes[i]!;
      const b = o.bytes[i]!;
      if (Math.abs(a - b) > BYTE_TOLERANCE * Math.max(Math.abs(a), Math.abs(b), 1)) return false;
    }
    return true;
  }
}

/**
 * What a checkpoint keeps: its state, and the accumulators a jump extrapolates — per die its
 * busy and split times, and the per-block accounts of the blocks that changed since the loop's
 * first checkpoint (the rest are as they were then: `First`).
 */
interface Checkpoint {
  readonly it: number;
  readonly now: number;
  /** Its epoch: blocks stamped with it or later changed after it. */
  readonly epoch: number;
  readonly sig: Signature;
  readonly served: Float64Array;
  readonly accounts: Float64Array[];
  readonly blocks: BlockAccounts[];
}

/** Some blocks' accounts: the blocks, and their fields block after block. */
interface BlockAccounts {
  readonly index: Int32Array;
  readonly fields: Float64Array;
}

/** A loop's first checkpoint: every block's accounts of every die then. */
interface First {
  readonly epoch: number;
  readonly perBlock: Float64Array[];
}

export class SteadyState {
  /** Per top-level loop node: its latest checkpoints (at most MAX_PERIOD). */
  private readonly history = new Map<number, Checkpoint[]>();
  /** Per top-level loop node: its first checkpoint's per-block accounts. */
  private readonly firsts = new Map<number, First>();
  /** Copies of every die's block accounts no loop needs any more, for the next first checkpoint. */
  private readonly spare: Float64Array[][] = [];
  /** Loops already jumped (or given up on). */
  private readonly finished = new Set<number>();
  /** Die callbacks and their codes (engine × die). */
  private readonly callbacks = new Map<() => void, number>();
  private readonly doneOwner = new Map<() => void, number>();
  private readonly checkpointFn = new Set<() => void>();
  /** Iterations jumped over, summed over loops (for reports and tests). */
  iterationsSkipped = 0;

  constructor(
    private readonly host: SteadyHost,
    /** Loops (instruction ids) never jumped over. */
    private readonly whole: ReadonlySet<number> = new Set(),
  ) {
    host.states.forEach((s, d) => {
      this.callbacks.set(s.onCompute, 3 * d);
      this.callbacks.set(s.onDram, 3 * d + 1);
      this.callbacks.set(s.onNop, 3 * d + 2);
      this.doneOwner.set(s.onDram, d);
    });
  }

  /** Die 0 has opened iteration `it` of the top-level loop `run`: check the state then. */
  opened(run: LoopRun, it: number): void {
    const node = run.inst.node;
    const count = node.loop!.count;
    if (count < MIN_COUNT || this.finished.has(node.index) || this.whole.has(node.id) || it < 2 || it >= count - 2) return;
    if (it > EAGER_UNTIL && it - highestPowerOfTwo(it) > MAX_PERIOD) return;
    const fn = (): void => {
      this.checkpointFn.delete(fn);
      this.checkpoint(node, it);
    };
    this.checkpointFn.add(fn);
    this.host.queue.schedule(this.host.queue.now, fn);
  }

  private checkpoint(node: Node, it: number): void {
    const host = this.host;
    const now = host.queue.now;
    const sig = this.signature(node, it, now);
    if (sig === null) {
      this.finished.add(node.index);
      this.dropFirst(node.index);
      return;
    }
    const epoch = ++host.clock.epoch;
    let first = this.firsts.get(node.index);
    if (first === undefined) {
      const copies = this.spare.pop() ?? host.states.map((s) => new Float64Array(s.perBlock.length));
      host.states.forEach((s, d) => copies[d]!.set(s.perBlock));
      first = { epoch, perBlock: copies };
      this.firsts.set(node.index, first);
    }
    const since = first.epoch;
    const here: Checkpoint = {
      it,
      now,
      epoch,
      sig,
      served: Float64Array.from(host.states, (s) => s.served),
      accounts: host.states.map(accountsOf),
      blocks: host.states.map((s) => changedBlocks(s, since)),
    };
    const history = this.history.get(node.index) ?? [];
    this.history.set(node.index, history);
    let before: Checkpoint | undefined;
    for (let p = 1; p <= MAX_PERIOD && before === undefined; p++) {
      const b = history.find((h) => h.it === it - p);
      if (b !== undefined && sig.matches(b.sig, now)) before = b;
    }
    history.push(here);
    if (history.length > MAX_PERIOD) history.shift();
    if (before === undefined) return;
    // The state repeats every `period` iterations: jump whole periods, to just before the
    // furthest die would open the last iteration.
    const period = it - before.it;
    let lead = 0;
    for (const top of host.tops) {
      const run = top.insts[node.pos]!.loop;
      if (run === null) return;
      lead = Math.max(lead, run.opened - 1 - it);
    }
    const jumps = Math.floor((node.loop!.count - 2 - it - lead) / period);
    this.finished.add(node.index);
    this.history.delete(node.index);
    this.firsts.delete(node.index);
    if (jumps >= 1) this.advance(node, jumps, period, now - before.now, before, here, first);
    this.spare.push(first.perBlock);
  }

  private dropFirst(loop: number): void {
    const first = this.firsts.get(loop);
    if (first === undefined) return;
    this.firsts.delete(loop);
    this.spare.push(first.perBlock);
  }

  /** Move the whole state on by `periods` repeats of `period` iterations, `seconds` each (see the header). */
  private advance(node: Node, periods: number, period: number, seconds: number, before: Checkpoint, here: Checkpoint, first: First): void {
    const host = this.host;
    const dt = periods * seconds;
    const iterations = periods * period;
    const perPeriod = here.served[0]! - before.served[0]!;
    host.queue.shift(dt);
    host.dram.shift(dt);
    host.states.forEach((s, d) => {
      assert(here.served[d]! - before.served[d]! === perPeriod, 'dies served different numbers of collectives in one steady period');
      s.served += periods * perPeriod;
      s.computeStart += dt;
      s.dramStart += dt;
      s.nopStart += dt;
      s.last += dt;
      s.finish += dt;
      const a = here.accounts[d]!;
      const b = before.accounts[d]!;
      let i = 0;
      for (const arr of [s.busy, s.split]) {
        for (let j = 0; j < arr.length; j++, i++) arr[j]! += periods * (a[i]! - b[i]!);
      }
      // Blocks unchanged since `before` move by nothing. The others, from what they were then
      // (its own record, or the first checkpoint's when it had not changed by then) to now.
      const fields = s.perBlock.length / s.blockChanged.length;
      const then = new Map<number, number>();
      const rec = before.blocks[d]!;
      rec.index.forEach((blk, k) => then.set(blk, k));
      const firstFields = first.perBlock[d]!;
      const epoch = host.clock.epoch;
      for (let blk = 0; blk < s.blockChanged.length; blk++) {
        if (s.blockChanged[blk]! < before.epoch) continue;
        const k = then.get(blk);
        const from = k === undefined ? firstFields : rec.fields;
        const at = k === undefined ? blk * fields : k * fields;
        for (let f = 0; f < fields; f++) s.perBlock[blk * fields + f]! += periods * (s.perBlock[blk * fields + f]! - from[at + f]!);
        s.blockChanged[blk] = epoch;
      }
      const cursor = s.nopCursor;
      for (let k = 1; k < cursor.depth; k++) {
        if (cursor.bodies[k - 1]![cursor.idx[k - 1]!] === node.index) cursor.its[k]! += iterations;
      }
      const run = host.tops[d]!.insts[node.pos]!.loop!;
      run.opened += iterations;
      run.completed += iterations;
      for (const f of run.live) f.it += iterations;
    });
    // Open meetings: later collectives, started later.
    for (const m of host.meetings) {
      if (m === null || m.count === 0) continue;
      m.serial += periods * perPeriod;
      for (let p = 0; p < m.insts.length; p++) if (m.insts[p] !== null) m.starts[p]! += dt;
    }
    const open = [...host.serials];
    host.serials.clear();
    for (const [serial, m] of open) {
      for (let i = 0; i < m.started.length; i++) if (m.started[i] !== 0) m.starts[i]! += dt;
      host.serials.set(serial + periods * perPeriod, m);
    }
    this.iterationsSkipped += iterations;
  }

  // -- the signature ---------------------------------------------------------------------------

  private signature(loop: Node, it: number, now: number): Signature | null {
    const host = this.host;
    const sig = new Signature();
    const { codes, times, bytes } = sig;
    const served0 = host.states[0]!.served;
    // Pending events, in the order they will run.
    const events: { at: number; seq: number; code: number }[] = [];
    let unknown = false;
    host.queue.forEachPending((at, seq, fn) => {
      let code = this.callbacks.get(fn);
      if (code === undefined) {
        const pool = host.dram.poolOfEvent(fn);
        if (pool === -1) return;
        if (pool !== undefined) code = -1 - pool;
        else if (this.checkpointFn.has(fn)) code = -1e9;
        else unknown = true;
      }
      events.push({ at, seq, code: code ?? 0 });
    });
    if (unknown) return null;
    // Simultaneous events by what they are, not by when they were queued: dies on different
    // DRAM pools finishing at one instant are queued in an order that can rotate from one
    // iteration to the next (64 classes of GPT-3 175B's uneven LM head never repeated), and
    // the order of simultaneous events decides nothing but the order of later ties.
    events.sort((a, b) => a.at - b.at || a.code - b.code || a.seq - b.seq);
    for (const e of events) {
      codes.push(e.code);
      times.push(e.at - now);
    }
    // A pool's transfers share its bandwidth alike whatever their order, which (like the order
    // of simultaneous events) decides only later ties: listed by owner, weight and bytes.
    host.dram.describe(now, (clock, transfers) => {
      codes.push(transfers.length);
      times.push(clock);
      const listed = transfers.map((x) => ({ owner: x.done === null ? -1 : (this.doneOwner.get(x.done) ?? -2), weight: x.weight, remaining: x.remaining }));
      listed.sort((a, b) => a.owner - b.owner || a.weight - b.weight || a.remaining - b.remaining);
      for (const x of listed) {
        codes.push(x.weight, x.owner);
        bytes.push(x.remaining);
      }
    });
    const instCode = (x: Inst | null): string => (x === null ? '-' : this.instCode(x, loop, it));
    host.states.forEach((s) => {
      codes.push(s.served - served0);
      const cursor = s.nopCursor;
      codes.push(cursor.depth, cursor.current);
      for (let k = 0; k < cursor.depth; k++) {
        const inLoop = k > 0 && cursor.bodies[k - 1]![cursor.idx[k - 1]!] === loop.index;
        codes.push(cursor.idx[k]!, inLoop ? cursor.its[k]! - it : cursor.its[k]!);
      }
      codes.push(instCode(s.computeBusy), instCode(s.dramBusy), instCode(s.nopBusy), instCode(s.nopNext));
      if (s.computeBusy !== null) times.push(s.computeStart - now, s.computeSeconds);
      if (s.dramBusy !== null) times.push(s.dramStart - now), bytes.push(s.dramBytes);
      if (s.nopBusy !== null) times.push(s.nopStart - now, s.nopLatency);
      // Top-level instances change only through topActivity (counted): the ready queues'
      // top-level entries are the same whenever it is; the rest are listed.
      codes.push(readyInLoops(s.computeReady, instCode), readyInLoops(s.dramReady, instCode));
      times.push(s.last - now, s.finish - now);
      codes.push(s.topActivity, s.topLoops.size);
      // Other running loops by their count of changes, likewise; the loop checked in full.
      for (const run of [...s.topLoops].sort((a, b) => a.inst.node.index - b.inst.node.index)) {
        codes.push(run.inst.node.index);
        if (run.inst.node === loop) this.loopState(run, loop, it, sig);
        else codes.push(run.activity);
      }
    });
    host.meetings.forEach((m, g) => {
      if (m === null || m.count === 0) return;
      codes.push(g, m.serial - served0, m.count);
      m.insts.forEach((x, p) => {
        codes.push(instCode(x));
        if (x !== null) times.push(m.starts[p]! - now);
      });
    });
    for (const serial of [...host.serials.keys()].sort((a, b) => a - b)) {
      const m = host.serials.get(serial)!;
      codes.push(serial - served0, m.node, m.count, m.unsolved);
      for (let i = 0; i < m.started.length; i++) {
        codes.push(m.started[i]!, instCode(m.insts[i] ?? null));
        if (m.started[i] !== 0) times.push(m.starts[i]! - now);
      }
      // How many starts each waiting member awaits follows from which have started. The order
      // matters only among members one start will complete together: per member not yet
      // started, the ones waiting for it, in the order they started.
      m.watchers.forEach((lists, v) => {
        if (lists === null || lists === undefined) return;
        const waiting = lists.flatMap((list) => m.lists.get(list)!.waiting).sort((a, b) => m.arrival[a]! - m.arrival[b]!);
        codes.push(v, waiting.join(' '));
      });
    }
    return sig;
  }

  /** A started loop: its iterations opened and completed, and every live instance's status. */
  private loopState(run: LoopRun, loop: Node, it: number, sig: Signature): void {
    const off = run.inst.node === loop ? it : 0;
    sig.codes.push(run.opened - off, run.completed - off, run.live.length);
    for (const f of run.live) {
      sig.codes.push(f.it - off);
      for (const x of f.insts) {
        if (x.done) sig.codes.push(-1);
        else if (!x.ready) sig.codes.push(x.pending);
        else {
          sig.codes.push(-2);
          if (x.loop !== null) this.loopState(x.loop, loop, it, sig);
        }
      }
    }
  }

  /** An instance by its frames (loop node and iteration, those of `loop` relative) and node. */
  private instCode(x: Inst, loop: Node, it: number): string {
    let code = `${x.node.index}`;
    for (let f: Frame | null = x.frame; f !== null && f.parent !== null; f = f.parent) {
      code = `${f.loopNode}:${f.loopNode === loop.index ? f.it - it : f.it}/${code}`;
    }
    return code;
  }
}

/** A die's busy and split times, in the order a jump extrapolates them. */
function accountsOf(s: DieState): Float64Array {
  const out = new Float64Array(s.busy.length + s.split.length);
  out.set(s.busy, 0);
  out.set(s.split, s.busy.length);
  return out;
}

/** The accounts of the die's blocks that changed in epoch `since` or later. */
function changedBlocks(s: DieState, since: number): BlockAccounts {
  const fields = s.perBlock.length / s.blockChanged.length;
  const index: number[] = [];
  for (let blk = 0; blk < s.blockChanged.length; blk++) if (s.blockChanged[blk]! >= since) index.push(blk);
  const out = new Float64Array(index.length * fields);
  index.forEach((blk, k) => out.set(s.perBlock.subarray(blk * fields, (blk + 1) * fields), k * fields));
  return { index: Int32Array.from(index), fields: out };
}

/** The entries of a ready queue inside loops, canonically ordered. */
function readyInLoops(heap: readonly Inst[], code: (x: Inst) => string): string {
  const inLoops: string[] = [];
  for (const x of heap) if (x.frame.depth > 0) inLoops.push(code(x));
  return inLoops.sort().join(' ');
}

function highestPowerOfTwo(n: number): number {
  return 2 ** Math.floor(Math.log2(n));
}
