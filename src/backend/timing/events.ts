// A small discrete-event engine for the timing backend. Events are callbacks scheduled at a
// time in seconds; a binary heap orders them by (time, sequence number), so events at equal
// times run in the order they were scheduled and every run of the same inputs is identical.
// Callbacks may schedule further events (never in the past); `run` drains the queue.

import { assert } from '../../diagnostics/diagnostic.js';

interface Event {
  readonly at: number;
  readonly seq: number;
  readonly fn: () => void;
}

/** Earlier time first; at equal times, earlier scheduling first. */
function before(a: Event, b: Event): boolean {
  return a.at < b.at || (a.at === b.at && a.seq < b.seq);
}

export class EventQueue {
  private readonly heap: Event[] = [];
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

  schedule(at: number, fn: () => void): void {
    assert(Number.isFinite(at), `event scheduled at a non-finite time ${at}`);
    assert(at >= this.time, `event scheduled in the past (${at} < ${this.time})`);
    this.heap.push({ at, seq: this.seq++, fn });
    this.siftUp(this.heap.length - 1);
  }

  /** Run every event, including those scheduled while running; returns the final time. */
  run(): number {
    while (this.heap.length > 0) {
      const ev = this.pop();
      this.time = ev.at;
      this.processed++;
      ev.fn();
    }
    return this.time;
  }

  private pop(): Event {
    const heap = this.heap;
    const top = heap[0]!;
    const last = heap.pop()!;
    if (heap.length > 0) {
      heap[0] = last;
      this.siftDown(0);
    }
    return top;
  }

  private siftUp(i: number): void {
    const heap = this.heap;
    const ev = heap[i]!;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!before(ev, heap[parent]!)) break;
      heap[i] = heap[parent]!;
      i = parent;
    }
    heap[i] = ev;
  }

  private siftDown(i: number): void {
    const heap = this.heap;
    const n = heap.length;
    const ev = heap[i]!;
    for (;;) {
      const left = 2 * i + 1;
      if (left >= n) break;
      const right = left + 1;
      const child = right < n && before(heap[right]!, heap[left]!) ? right : left;
      if (!before(heap[child]!, ev)) break;
      heap[i] = heap[child]!;
      i = child;
    }
    heap[i] = ev;
  }
}
