// schedule/allocate: numbers the skeleton, gives every buffer a lifetime and an offset (largest
// first, lowest free offset; activations one mini-batch loop at a time), and turns every hazard
// of the resulting address reuse into a dependency, within an iteration or carried across one.

import { bufferCapacity, type Target } from '../../target/target.js';
import type { Range } from '../../backend/program.js';
import { addCarried, addDep, commonScope, lift, type Buf, type SNode } from './skeleton.js';
import { unique } from './emit.js';

function numberNodes(list: readonly SNode[], first: number): number {
  let next = first;
  for (const n of list) {
    n.id = next++;
    next = numberNodes(n.body, next);
    n.end = next - 1;
  }
  return next;
}

/** The innermost scope holding every access of a buffer. */
function scopeOf(buf: Buf): SNode | null {
  return buf.accessors.map((a) => a.parent).reduce((x, y) => commonScope(x, y));
}

/**
 * The instruction ids during which a buffer is reserved: from its first to its last access,
 * each access widened to the whole loop it sits in below the buffer's scope (a weight read
 * before a loop lives through all its iterations). A DRAM read's target in a loop is reserved
 * for the whole body, so the read of the next iteration can run ahead.
 */
function lifetime(buf: Buf): [number, number] {
  const scope = scopeOf(buf);
  if (buf.resident && scope) return [scope.id + 1, scope.end];
  const lifted = buf.accessors.map((x) => lift(x, scope));
  return [Math.min(...lifted.map((x) => x.id)), Math.max(...lifted.map((x) => x.end))];
}

/**
 * Offsets for buffers of one kind: largest first, each at the lowest offset free during its
 * lifetime (greedy by size, which fragments far less than first-come first-fit). Returns the peak.
 */
function allocate(bufs: readonly Buf[]): number {
  const BUCKET = 64;
  const byTime = new Map<number, Buf[]>();
  let peak = 0;
  for (const buf of [...bufs].sort((x, y) => y.bytes - x.bytes || x.live[0] - y.live[0])) {
    const [lo, hi] = [Math.floor(buf.live[0] / BUCKET), Math.floor(buf.live[1] / BUCKET)];
    const clash = new Set<Buf>();
    for (let k = lo; k <= hi; k++) {
      for (const x of byTime.get(k) ?? []) if (x.live[0] <= buf.live[1] && x.live[1] >= buf.live[0]) clash.add(x);
    }
    let offset = 0;
    for (const x of Array.from(clash).sort((p, q) => p.offset - q.offset)) {
      if (x.offset >= offset + buf.bytes) break;
      offset = Math.max(offset, x.offset + x.bytes);
    }
    buf.offset = offset;
    peak = Math.max(peak, offset + buf.bytes);
    for (let k = lo; k <= hi; k++) {
      const at = byTime.get(k);
      if (at) at.push(buf);
      else byTime.set(k, [buf]);
    }
  }
  return peak;
}

interface Segment<T> {
  lo: number;
  hi: number;
  v: T;
}

/** Disjoint address segments, each with a value; `take` returns what [lo, hi) overlapped. */
function take<T>(segs: Segment<T>[], lo: number, hi: number, v: T): { segs: Segment<T>[]; hit: Segment<T>[] } {
  const next: Segment<T>[] = [];
  const hit: Segment<T>[] = [];
  for (const s of segs) {
    if (s.hi <= lo || s.lo >= hi) {
      next.push(s);
      continue;
    }
    hit.push({ lo: Math.max(s.lo, lo), hi: Math.min(s.hi, hi), v: s.v });
    if (s.lo < lo) next.push({ lo: s.lo, hi: lo, v: s.v });
    if (s.hi > hi) next.push({ lo: hi, hi: s.hi, v: s.v });
  }
  next.push({ lo, hi, v });
  return { segs: next, hit };
}

/**
 * A buffer placed where an earlier one was waits for every access of that one (in the same
 * iteration, or for the loop it sat in). Only the last earlier occupant of each address
 * matters: it waited for the one before.
 */
function reuseDeps(bufs: readonly Buf[]): void {
  let segs: Segment<Buf>[] = [];
  for (const buf of bufs) {
    if (buf.bytes === 0) continue;
    const r = take(segs, buf.offset, buf.offset + buf.bytes, buf);
    segs = r.segs;
    for (const prev of unique(r.hit.map((h) => h.v))) for (const x of lastUses(prev)) addDep(buf.accessors[0]!, x);
  }
}

/**
 * Across iterations of a loop, a buffer's first writer waits for the accesses (in the previous
 * iteration) of the last buffer of the body that shares its addresses — itself, when nothing
 * later in the body reuses them.
 */
function carriedDeps(loop: SNode, bufs: readonly Buf[]): void {
  // `bufs` are ordered by the start of their lifetimes: those starting in the loop are a run.
  let lo = 0;
  let hi = bufs.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (bufs[mid]!.live[0] > loop.id) hi = mid;
    else lo = mid + 1;
  }
  const inLoop: Buf[] = [];
  for (let k = lo; k < bufs.length && bufs[k]!.live[0] <= loop.end; k++) {
    const b = bufs[k]!;
    if (b.bytes > 0 && b.live[1] <= loop.end) inLoop.push(b);
  }
  for (const [i, buf] of inLoop.entries()) {
    let open: Range[] = [[buf.offset, buf.offset + buf.bytes]];
    for (let k = inLoop.length - 1; k > i && open.length; k--) {
      const later = inLoop[k]!;
      const lo = later.offset;
      const hi = later.offset + later.bytes;
      if (!open.some(([a, b]) => a < hi && b > lo)) continue;
      for (const x of lastUses(later)) addCarried(buf.accessors[0]!, x, loop);
      open = open.flatMap(([a, b]): Range[] => (a >= hi || b <= lo ? [[a, b]] : ([[a, Math.min(b, lo)], [Math.max(a, hi), b]] as Range[]).filter(([p, q]) => q > p)));
    }
    if (open.length) for (const x of lastUses(buf)) addCarried(buf.accessors[0]!, x, loop);
  }
}

/** The accesses that finish last: the readers after the last write, else the last writers (each waited for the rest). */
function lastUses(buf: Buf): SNode[] {
  return buf.readersSince.length ? buf.readersSince : buf.writers;
}

function loops(list: readonly SNode[], out: SNode[] = []): SNode[] {
  for (const n of list) {
    if (n.fixed.kind !== 'loop') continue;
    out.push(n);
    loops(n.body, out);
  }
  return out;
}

/** The mini-batch loop (top-level loop) a node sits in, if any. */
function outerLoop(n: SNode | null): SNode | null {
  let x = n;
  while (x?.parent) x = x.parent;
  return x;
}

/**
 * Activations live inside mini-batch loops. A loop's DRAM reads stay reserved for the whole
 * body (the next mini-batch's read can start as soon as this one's last reader is done)
 * unless that overflows the activation buffer on its own; then each read holds its buffer
 * only from the read to the last use. The buffers are then placed together: loops do not
 * overlap in time, but a buffer that outlives its loop (a batch-1 value viewed as a
 * whole-batch one and written after the loop) shares the loop's time with its buffers.
 */
function allocateActivations(bufs: readonly Buf[], capacity: number): number {
  const byLoop = new Map<SNode | null, Buf[]>();
  for (const b of bufs) {
    const l = outerLoop(scopeOf(b));
    const group = byLoop.get(l);
    if (group) group.push(b);
    else byLoop.set(l, [b]);
  }
  for (const group of byLoop.values()) {
    for (const b of group) b.live = lifetime(b);
    if (group.some((b) => b.resident) && allocate(group) > capacity) {
      for (const b of group) {
        b.resident = false;
        b.live = lifetime(b);
      }
    }
  }
  return allocate(bufs);
}

/** Number the skeleton, allocate both buffer kinds, add reuse dependencies; returns the peaks. */
export function finish(top: readonly SNode[], buffers: readonly Buf[], target: Target): { activation: number; weight: number } {
  numberNodes(top, 0);
  const weights = buffers.filter((b) => b.kind === 'weight');
  for (const b of weights) b.live = lifetime(b);
  const peaks = {
    activation: allocateActivations(
      buffers.filter((b) => b.kind === 'activation'),
      bufferCapacity(target).activation,
    ),
    weight: allocate(weights),
  };
  const all = loops(top);
  for (const kind of ['activation', 'weight'] as const) {
    const mine = buffers.filter((b) => b.kind === kind).sort((x, y) => x.live[0] - y.live[0]);
    reuseDeps(mine);
    for (const l of all) carriedDeps(l, mine);
  }
  return peaks;
}
