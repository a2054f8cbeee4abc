// schedule/allocate: numbers the skeleton, gives every buffer a lifetime and an offset (largest
// first, lowest free offset; activations one mini-batch loop at a time), and turns every hazard
// of the resulting address reuse into a dependency, within an iteration or carried across one.

import { bufferCapacity, type Target } from '../../target/target.js';
import type { Range } from '../../backend/program.js';
import { addCarried, addDep, commonScope, lift, type Buf, type SNode } from './skeleton.js';

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
  const acc = buf.accessors;
  let scope = acc[0]!.parent;
  for (let k = 1; k < acc.length; k++) scope = commonScope(scope, acc[k]!.parent);
  return scope;
}

/**
 * The instruction ids during which a buffer is reserved: from its first to its last access,
 * each access widened to the whole loop it sits in below the buffer's scope (a weight read
 * before a loop lives through all its iterations). A resident buffer (a DRAM read's target, or
 * a value written back, in a loop) is reserved for the whole body, so the next iteration's read
 * can run ahead, or its first ops need not wait for this one's write.
 */
function lifetime(buf: Buf): [number, number] {
  const scope = scopeOf(buf);
  if (buf.resident && scope) return [scope.id + 1, scope.end];
  let first = Infinity;
  let last = -Infinity;
  for (const x of buf.accessors) {
    const l = lift(x, scope);
    if (l.id < first) first = l.id;
    if (l.end > last) last = l.end;
  }
  return [first, last];
}

/**
 * Offsets for buffers of one kind: largest first, each at the lowest offset free during its
 * lifetime (greedy by size, which fragments far less than first-come first-fit). Returns the peak.
 */
function allocate(bufs: readonly Buf[]): number {
  const BUCKET = 64;
  const byTime = new Map<number, Buf[]>();
  let peak = 0;
  const clash: Buf[] = [];
  for (const buf of [...bufs].sort((x, y) => y.bytes - x.bytes || x.live[0] - y.live[0])) {
    const [lo, hi] = [Math.floor(buf.live[0] / BUCKET), Math.floor(buf.live[1] / BUCKET)];
    // The placed buffers live at the same time, each once (in the first of its buckets
    // scanned), by offset (ties in the order met: the walk below does not depend on it).
    clash.length = 0;
    for (let k = lo; k <= hi; k++) {
      const at = byTime.get(k);
      if (at === undefined) continue;
      for (let q = 0; q < at.length; q++) {
        const x = at[q]!;
        if (x.live[0] > buf.live[1] || x.live[1] < buf.live[0]) continue;
        if (k > lo && Math.floor(x.live[0] / BUCKET) < k) continue;
        let i = clash.length;
        clash.push(x);
        for (; i > 0 && clash[i - 1]!.offset > x.offset; i--) clash[i] = clash[i - 1]!;
        clash[i] = x;
      }
    }
    let offset = 0;
    for (let q = 0; q < clash.length; q++) {
      const x = clash[q]!;
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

/**
 * A buffer placed where an earlier one was waits for every access of that one (in the same
 * iteration, or for the loop it sat in). Only the last earlier occupant of each address
 * matters: it waited for the one before. `owner` holds, by address, disjoint segments
 * [lo, hi) and their last occupant, ordered by address.
 */
function reuseDeps(bufs: readonly Buf[]): void {
  const los: number[] = [];
  const his: number[] = [];
  const owner: Buf[] = [];
  const hit: Buf[] = [];
  for (let q = 0; q < bufs.length; q++) {
    const buf = bufs[q]!;
    if (buf.bytes === 0) continue;
    const lo = buf.offset;
    const hi = buf.offset + buf.bytes;
    // The first segment ending after lo, then every one starting before hi.
    let a = 0;
    let b = his.length;
    while (a < b) {
      const mid = (a + b) >> 1;
      if (his[mid]! <= lo) a = mid + 1;
      else b = mid;
    }
    let end = a;
    hit.length = 0;
    for (; end < los.length && los[end]! < hi; end++) if (!hit.includes(owner[end]!)) hit.push(owner[end]!);
    // The overlapped run becomes what it keeps of its first and last segments around the new one.
    const left = a < end && los[a]! < lo ? owner[a]! : undefined;
    const leftLo = left ? los[a]! : 0;
    const right = a < end && his[end - 1]! > hi ? owner[end - 1]! : undefined;
    const rightHi = right ? his[end - 1]! : 0;
    los.splice(a, end - a);
    his.splice(a, end - a);
    owner.splice(a, end - a);
    let at = a;
    if (left) {
      los.splice(at, 0, leftLo);
      his.splice(at, 0, lo);
      owner.splice(at++, 0, left);
    }
    los.splice(at, 0, lo);
    his.splice(at, 0, hi);
    owner.splice(at++, 0, buf);
    if (right) {
      los.splice(at, 0, hi);
      his.splice(at, 0, rightHi);
      owner.splice(at, 0, right);
    }
    const first = buf.accessors[0]!;
    for (let k = 0; k < hit.length; k++) {
      const uses = lastUses(hit[k]!);
      for (let i = 0; i < uses.length; i++) addDep(first, uses[i]!);
    }
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
  for (let i = 0; i < inLoop.length; i++) {
    const buf = inLoop[i]!;
    const first = buf.accessors[0]!;
    // The buffer's addresses no later buffer of the body has taken yet.
    let open: Range[] | null = null;
    let a0 = buf.offset;
    let b0 = buf.offset + buf.bytes;
    let covered = false;
    for (let k = inLoop.length - 1; k > i && !covered; k--) {
      const later = inLoop[k]!;
      const lo = later.offset;
      const hi = later.offset + later.bytes;
      if (open === null) {
        // One open range (the usual case), kept in a0 and b0.
        if (!(a0 < hi && b0 > lo)) continue;
        const uses = lastUses(later);
        for (let u = 0; u < uses.length; u++) addCarried(first, uses[u]!, loop);
        const keepLeft = Math.min(b0, lo) > a0;
        const keepRight = b0 > Math.max(a0, hi);
        if (keepLeft && keepRight) open = [[a0, lo], [hi, b0]];
        else if (keepLeft) b0 = lo;
        else if (keepRight) a0 = hi;
        else covered = true;
        continue;
      }
      if (!open.some(([a, b]) => a < hi && b > lo)) continue;
      for (const x of lastUses(later)) addCarried(first, x, loop);
      open = open.flatMap(([a, b]): Range[] => (a >= hi || b <= lo ? [[a, b]] : ([[a, Math.min(b, lo)], [Math.max(a, hi), b]] as Range[]).filter(([p, q]) => q > p)));
      covered = open.length === 0;
    }
    if (!covered) for (const x of lastUses(buf)) addCarried(first, x, loop);
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
 * body (the next mini-batch's read can start as soon as this one's last reader is done), and
 * so do the values it writes back to DRAM: the next mini-batch's first ops then compute while
 * this one's results drain to DRAM, instead of waiting to reuse their addresses (Fig. 5: a
 * mini-batch's DRAM traffic overlaps the next one's on-package execution). When that overflows
 * the activation buffer, the written-back values give up their reservation first, then the
 * reads: each buffer then holds its addresses only from its first access to its last. The
 * buffers are then placed together: loops do not overlap in time, but a buffer that outlives
 * its loop (a batch-1 value viewed as a whole-batch one and written after the loop) shares the
 * loop's time with its buffers.
 */
function allocateActivations(bufs: readonly Buf[], capacity: number, reserve: boolean): number {
  const byLoop = new Map<SNode | null, Buf[]>();
  for (const b of bufs) {
    const l = outerLoop(scopeOf(b));
    const group = byLoop.get(l);
    if (group) group.push(b);
    else byLoop.set(l, [b]);
  }
  for (const [loop, group] of byLoop) {
    const reads = group.filter((b) => b.resident);
    const drained = loop === null ? [] : group.filter((b) => !b.resident && b.accessors.some((x) => x.fixed.kind === 'dram.write' && x.reads.includes(b)));
    const tiers = reserve ? [[...reads, ...drained], ...(drained.length > 0 && reads.length > 0 ? [reads] : []), []] : [[]];
    for (const tier of tiers) {
      const keep = new Set(tier);
      for (const b of group) {
        b.resident = keep.has(b);
        b.live = lifetime(b);
      }
      if (keep.size === 0 || allocate(group) <= capacity) break;
    }
  }
  return allocate(bufs);
}

/**
 * Number the skeleton, allocate both buffer kinds, add reuse dependencies; returns the peaks.
 * Without `reserve`, no loop buffer is reserved beyond its accesses (the least the order needs).
 */
export function finish(top: readonly SNode[], buffers: readonly Buf[], target: Target, reserve = true): { activation: number; weight: number } {
  numberNodes(top, 0);
  const weights = buffers.filter((b) => b.kind === 'weight');
  for (const b of weights) b.live = lifetime(b);
  const peaks = {
    activation: allocateActivations(
      buffers.filter((b) => b.kind === 'activation'),
      bufferCapacity(target).activation,
      reserve,
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
