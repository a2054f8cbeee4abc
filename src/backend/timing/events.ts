// A small discrete-event engine for the timing backend. Events are callbacks scheduled at a
// time in seconds; a binary heap orders them by (time, sequence number), so events at equal
// times run in the order they were scheduled and every run of the same inputs is identical.
// Callbacks may schedule further events (never in the past); `run` drains the queue.
//
// Times are whole ticks of 2^-40 s (about 0.9 ps): `schedule` rounds to the nearest tick.
// Durations then add exactly (a power-of-two quantum, far above the rounding of a sum of
// seconds), so two events that should coincide — a DMA transfer of 2.4 µs after another of
// 2.4 µs, and a GEMM of 3.6 µs after one of 1.2 µs — do coincide, at every absolute time. Left
// as raw sums, their order would follow the last bits of the clock, which differ from one loop
// iteration to the next: the simulation would not repeat itself, and steady-state
// extrapolation (steady.ts) would find a period where the plain run has none.
//
// The heap is kept in parallel arrays (times and sequence numbers in typed arrays, callbacks
// beside them) so scheduling allocates no event object: the executor schedules one event per
// instruction instance, tens of millions on a large package.

import { assert } from '../../diagnostics/diagnostic.js';

/** The clock's resolution, s: a power of two, so times that are multiples of it add exactly. */
export const TICK_S = 2 ** -40;

export class EventQueue {
  private at = new Float64Array(1024);
  private seqs = new Float64Array(1024);
  private fns: ((() => void) | undefined)[] = new Array<(() => void) | undefined>(1024);
  private size = 0;
  private seq = 0;
  private time = 0;
  private processed = 0;

  /** The time of the event being run (or of the last one run). */
  get now(): number {
    return this.time;
  }

  /** How many events have run so far. */
  get eventsRun(): number {
    return this.processed;
  }

  schedule(when: number, fn: () => void): void {
    const at = Math.round(when / TICK_S) * TICK_S;
    if (!(at >= this.time) || at === Infinity) {
      assert(Number.isFinite(at), `event scheduled at a non-finite time ${at}`);
      assert(at >= this.time, `event scheduled in the past (${at} < ${this.time})`);
    }
    if (this.size === this.at.length) this.grow();
    const s = this.seq++;
    // Sift up from the new slot.
    const times = this.at;
    const seqs = this.seqs;
    const fns = this.fns;
    let i = this.size++;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      const pt = times[parent]!;
      if (!(at < pt || (at === pt && s < seqs[parent]!))) break;
      times[i] = pt;
      seqs[i] = seqs[parent]!;
      fns[i] = fns[parent];
      i = parent;
    }
    times[i] = at;
    seqs[i] = s;
    fns[i] = fn;
  }

  /** Run every event, including those scheduled while running; returns the final time. */
  run(): number {
    while (this.size > 0) {
      this.time = this.at[0]!;
      const fn = this.fns[0]!;
      this.removeTop();
      this.processed++;
      fn();
    }
    return this.time;
  }

  /** Visit the pending events (in heap order, not time order): time, sequence number, callback. */
  forEachPending(visit: (at: number, seq: number, fn: () => void) => void): void {
    for (let i = 0; i < this.size; i++) visit(this.at[i]!, this.seqs[i]!, this.fns[i]!);
  }

  /**
   * Move the clock and every pending event `dt` seconds later (steady-state extrapolation):
   * the order of events is unchanged, since every time moves alike.
   */
  shift(dt: number): void {
    assert(dt >= 0 && Number.isFinite(dt) && Math.round(dt / TICK_S) * TICK_S === dt, `events shifted by ${dt} s, not a whole number of ticks`);
    for (let i = 0; i < this.size; i++) this.at[i] += dt;
    this.time += dt;
  }

  private removeTop(): void {
    const times = this.at;
    const seqs = this.seqs;
    const fns = this.fns;
    const n = --this.size;
    if (n === 0) {
      fns[0] = undefined;
      return;
    }
    // Sift the last event down from the root.
    const t = times[n]!;
    const s = seqs[n]!;
    const f = fns[n];
    fns[n] = undefined;
    let i = 0;
    for (;;) {
      const left = 2 * i + 1;
      if (left >= n) break;
      const right = left + 1;
      let child = left;
      if (right < n) {
        const rt = times[right]!;
        const lt = times[left]!;
        if (rt < lt || (rt === lt && seqs[right]! < seqs[left]!)) child = right;
      }
      const ct = times[child]!;
      if (!(ct < t || (ct === t && seqs[child]! < s))) break;
      times[i] = ct;
      seqs[i] = seqs[child]!;
      fns[i] = fns[child];
      i = child;
    }
    times[i] = t;
    seqs[i] = s;
    fns[i] = f;
  }

  private grow(): void {
    const n = this.at.length * 2;
    const at = new Float64Array(n);
    at.set(this.at);
    const seqs = new Float64Array(n);
    seqs.set(this.seqs);
    this.at = at;
    this.seqs = seqs;
    this.fns.length = n;
  }
}
