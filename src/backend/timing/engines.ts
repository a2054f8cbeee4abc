// What the program executor (execute.ts) needs beside the die's cost model: which engine
// serves an instruction, the link latency of a collective's steps, and the DRAM channels.
//
// Link latency: the target's model (src/target/link-latency.ts), which the compiler also asks
// where it chooses between algorithms; spread evenly over the instruction's `steps`.
//
// DRAM: the package has `channels` DDR channels on its edge (target memory). When there are at
// least as many channels as dies, each die streams over its own share (channels / dies of
// them, striped); otherwise consecutive dies (row-major) share one channel, dies ⌊d·C / D⌋
// together. The dies sharing a channel share its bandwidth equally while they transfer
// (processor sharing: DDR interleaves their bursts).
//
// In the executor's class mode (execute.ts) one simulated die stands for every die of its
// class, so a pool holds weighted transfers: a transfer of weight m stands for m dies moving
// the same bytes at the same instant, and each unit of weight gets bandwidth / (sum of the
// weights). A class's transfer enters every simulated pool (one that holds a representative)
// with the number of the class's dies in that pool as its weight; only the entry in the
// representative's own pool reports its completion, the others just occupy bandwidth until
// their bytes are done. Pools holding no representative are not simulated: the classes make
// them behave as one that is (classes.ts). Without classes every die is its own transfer of
// weight 1, the plain processor sharing above.

import { assert, assertNever } from '../../diagnostics/diagnostic.js';
import type { CollectiveInstr, Instruction, LoopInstr } from '../program.js';
import type { Target } from '../../target/target.js';
import { linkLatency } from '../../target/link-latency.js';
import type { EventQueue } from './events.js';

export type EngineClass = 'compute' | 'dram' | 'nop';
export const ENGINE_CLASSES: readonly EngineClass[] = ['compute', 'dram', 'nop'];

/** The engine that serves an instruction (loops are walked, never served). */
export function engineOf(ins: Exclude<Instruction, LoopInstr>): EngineClass {
  switch (ins.kind) {
    case 'gemm':
    case 'vector':
      return 'compute';
    case 'dram.read':
    case 'dram.write':
      return 'dram';
    case 'collective':
      return 'nop';
    default:
      return assertNever(ins);
  }
}

/** Link latency of a whole collective (every step's slowest link), seconds. */
export function collectiveLatency(ins: Pick<CollectiveInstr, 'algo' | 'axis' | 'op' | 'steps' | 'group'>, t: Target): number {
  return linkLatency(ins.algo, ins.op, ins.axis, ins.steps, ins.group.length, t);
}


/** Each die's DRAM pool (dies row-major) and each pool's bandwidth, bytes/s (see the header). */
export function dramPools(t: Target): { readonly poolOf: Int32Array; readonly bandwidth: readonly number[] } {
  const D = t.package.dies;
  const C = t.memory.channels;
  const bw = t.memory.channelBandwidthBytesPerS;
  const poolOf = new Int32Array(D);
  const count = C >= D ? D : C;
  const each = C >= D ? (C / D) * bw : bw;
  for (let d = 0; d < D; d++) poolOf[d] = C >= D ? d : Math.floor((d * C) / D);
  return { poolOf, bandwidth: Array.from({ length: count }, () => each) };
}

/** The simulated dies that stand for whole classes of dies (execute.ts's class mode). */
export interface DramClasses {
  /** Class of each die of the package. */
  readonly classOf: Int32Array;
  /** Each class's representative die: the die simulated for it. */
  readonly reps: ArrayLike<number>;
}

/** A set of dies sharing DRAM bandwidth by weight while they transfer. */
interface Pool {
  readonly index: number;
  readonly bandwidth: number;
  readonly active: Transfer[];
  /** Sum of the active transfers' weights. */
  weight: number;
  last: number;
  version: number;
}

export interface Transfer {
  /** Bytes left for each die the transfer stands for. */
  remaining: number;
  readonly weight: number;
  readonly done: (() => void) | null;
}

/** Where one simulated die's transfer goes: (pool, weight) entries, the first its own pool's. */
type Share = readonly { readonly pool: number; readonly weight: number }[];

/** A pool's scheduled event, with its pool and the pool's version when it was scheduled. */
interface PoolEvent {
  (): void;
  readonly poolIndex: number;
  readonly poolVersion: number;
}

/** The package's DRAM channels, as pools of dies (see the header). */
export class DramChannels {
  private readonly pools: Pool[] = [];
  /** Per simulated die (every die, or each class's representative): its transfers' entries. */
  private readonly shares: Share[] = [];

  constructor(
    t: Target,
    private readonly queue: EventQueue,
    classes: DramClasses | null = null,
  ) {
    const { poolOf, bandwidth } = dramPools(t);
    bandwidth.forEach((b, index) => this.pools.push({ index, bandwidth: b, active: [], weight: 0, last: 0, version: 0 }));
    if (classes === null) {
      for (let d = 0; d < poolOf.length; d++) this.shares.push([{ pool: poolOf[d]!, weight: 1 }]);
      return;
    }
    const { classOf, reps } = classes;
    assert(classOf.length === poolOf.length, `${classOf.length} dies in classes, the package has ${poolOf.length}`);
    // Per simulated pool, the number of dies of each class in it.
    const counts = new Map<number, Map<number, number>>();
    for (let c = 0; c < reps.length; c++) counts.set(poolOf[reps[c]!]!, new Map());
    for (let d = 0; d < poolOf.length; d++) {
      const m = counts.get(poolOf[d]!);
      if (m !== undefined) m.set(classOf[d]!, (m.get(classOf[d]!) ?? 0) + 1);
    }
    const pools = [...counts.keys()].sort((a, b) => a - b);
    for (let c = 0; c < reps.length; c++) {
      const own = poolOf[reps[c]!]!;
      const share: { pool: number; weight: number }[] = [{ pool: own, weight: counts.get(own)!.get(c)! }];
      for (const p of pools) {
        const m = counts.get(p)!.get(c);
        if (p !== own && m !== undefined) share.push({ pool: p, weight: m });
      }
      this.shares.push(share);
    }
  }

  /** Move `bytes` for simulated die `die` (and its class); `done` runs when the transfer ends. */
  transfer(die: number, bytes: number, done: () => void): void {
    if (bytes <= 0) {
      this.queue.schedule(this.queue.now, done);
      return;
    }
    const share = this.shares[die]!;
    for (let i = 0; i < share.length; i++) {
      const { pool: p, weight } = share[i]!;
      const pool = this.pools[p]!;
      this.advance(pool);
      pool.active.push({ remaining: bytes, weight, done: i === 0 ? done : null });
      pool.weight += weight;
      this.reschedule(pool);
    }
  }

  private advance(pool: Pool): void {
    const now = this.queue.now;
    if (pool.active.length > 0 && now > pool.last) {
      const moved = ((now - pool.last) * pool.bandwidth) / pool.weight;
      for (const x of pool.active) x.remaining -= moved;
    }
    pool.last = now;
  }

  private reschedule(pool: Pool): void {
    if (pool.active.length === 0) return;
    let first = pool.active[0]!;
    for (const x of pool.active) if (x.remaining < first.remaining) first = x;
    const version = ++pool.version;
    const rate = pool.bandwidth / pool.weight;
    const at = this.queue.now + Math.max(0, first.remaining) / rate;
    const run = () => {
      if (pool.version !== version) return;
      this.advance(pool);
      first.remaining = 0;
      // Transfers within a byte of done finish together (rounding of the shared rate).
      const finished = pool.active.filter((x) => x.remaining <= 1);
      assert(finished.includes(first), 'DRAM pool lost its earliest transfer');
      pool.active.splice(0, pool.active.length, ...pool.active.filter((x) => x.remaining > 1));
      pool.weight = 0;
      for (const x of pool.active) pool.weight += x.weight;
      this.reschedule(pool);
      for (const x of finished) if (x.done !== null) x.done();
    };
    // The event carries its pool and version itself (a side table of every event ever
    // scheduled cost the collector more than the events).
    const event: PoolEvent = Object.assign(run, { poolIndex: pool.index, poolVersion: version });
    this.queue.schedule(at, event);
  }

  /**
   * For steady-state detection: whether a pending event is one of the pools' (its pool, or −1
   * for an event made stale by a later change of its pool), or undefined if it is not.
   */
  poolOfEvent(fn: () => void): number | undefined {
    const e = fn as Partial<PoolEvent>;
    if (e.poolIndex === undefined || e.poolVersion === undefined) return undefined;
    return this.pools[e.poolIndex]!.version === e.poolVersion ? e.poolIndex : -1;
  }

  /** Every pool's state for a signature: its clock relative to `now` while busy, and its transfers (in the order they were queued). */
  describe(now: number, pool: (clock: number, transfers: readonly Readonly<Transfer>[]) => void): void {
    for (const p of this.pools) pool(p.active.length === 0 ? 0 : p.last - now, p.active);
  }

  /** Move every pool's clock `dt` seconds later (steady-state extrapolation). */
  shift(dt: number): void {
    for (const p of this.pools) p.last += dt;
  }
}
