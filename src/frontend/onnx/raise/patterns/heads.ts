// How q, k and v of an attention core lie in their IR values. The q view (layout.ts) is
// [batch axes..., S, D]: its batch atoms that share an IR dimension with the head size are the
// heads, the rest the batch. k and v are lined up with q axis by axis (right-aligned, as
// MatMul broadcasts); atoms k or v read with stride 0 (an Expand of a size-1 axis) among the
// heads are repeated key/value heads, which must come last within the heads so query head j
// reads key/value head j / repeats, as grouped-query attention does.

import { groupSize, splitAtomOf, type Atom, type Group, type Lazy } from '../layout.js';

/** For one q batch atom: the atoms of k (or v) it pairs with, major first; undefined atoms are broadcast. */
type Parts = { atom: Atom | undefined; size: number }[];

export interface Side {
  lazy: Lazy;
  groups: Group[];
  heads: number;
}

export interface Plan {
  q: Side;
  k: Side;
  v: Side;
  heads: number;
  headSize: number;
  /** The q batch atoms that are batch (not heads), and the heads. */
  batch: readonly Atom[];
  headAtoms: readonly Atom[];
  qBatchGroups: readonly Group[];
  s: Group;
  dv: Group;
}

export function planLayout(q: Lazy, k: Lazy, v: Lazy): Plan | undefined {
  const rq = q.view.length;
  if (rq < 2 || k.view.length < 2 || v.view.length < 2) return undefined;
  if (q.view.flat().some((a) => a.bcast)) return undefined;
  const [s, d] = [q.view[rq - 2]!, q.view[rq - 1]!];
  const qBatchGroups = q.view.slice(0, -2);
  const qBatch = qBatchGroups.flat();
  const [dk, t] = k.view.slice(-2) as [Group, Group];
  const [tv, dv] = v.view.slice(-2) as [Group, Group];
  if ([dk, t, tv, dv].some((g) => g.some((a) => a.bcast))) return undefined;
  if (groupSize(d) !== groupSize(dk) || groupSize(dv) !== groupSize(d) || groupSize(t) !== groupSize(tv)) return undefined;
  if (!sameSizes(t, tv)) return undefined;
  const headAtoms = headsOf(q, qBatchGroups, d);
  const batch = qBatch.filter((a) => !headAtoms.includes(a));
  const kSide = pairSide(k, qBatchGroups, headAtoms, dk, t);
  const vSide = pairSide(v, qBatchGroups, headAtoms, dv, tv);
  if (!kSide || !vSide || kSide.heads !== vSide.heads) return undefined;
  const heads = headAtoms.reduce((p, a) => p * a.size, 1);
  const qSide: Side = { lazy: q, groups: [batch, s, [...headAtoms, ...d]], heads };
  return { q: qSide, k: kSide, v: vSide, heads, headSize: groupSize(d), batch, headAtoms, qBatchGroups, s, dv };
}

/** The batch atoms of q that are heads: those sharing an IR dimension with the head size. */
export function headsOf(q: Lazy, batchGroups: readonly Group[], d: Group): Atom[] {
  const batch = batchGroups.flat();
  const home = q.irGroups.find((g) => d.length > 0 && g.includes(d[d.length - 1]!)) ?? [];
  const heads = batch.filter((a) => home.includes(a));
  // Heads already on an axis of their own ([b, h, s, d] inputs): every batch axis after the first.
  if (heads.length === 0 && batchGroups.length >= 2) return batchGroups.slice(1).flat();
  return heads;
}

/**
 * Lines k's (or v's) batch axes up with q's (right-aligned, as MatMul broadcasts), splitting
 * atoms of k where one q atom covers several. Batch atoms must be real; head atoms may end
 * in broadcast atoms (repeated key/value heads), which gives kv_heads = heads / repeats.
 */
function pairSide(l0: Lazy, qGroups: readonly Group[], headAtoms: readonly Atom[], dk: Group, t: Group): Side | undefined {
  let l = l0;
  const kGroups = l.view.slice(0, -2);
  if (kGroups.length > qGroups.length) return undefined;
  const batch: Atom[] = [];
  const heads: Atom[] = [];
  let repeated = false;
  for (let i = 0; i < qGroups.length; i++) {
    const qg = qGroups[i]!;
    const kg = kGroups[i - (qGroups.length - kGroups.length)] ?? [];
    const paired = pairGroup(l, qg, kg);
    if (!paired) return undefined;
    l = paired.lazy;
    for (const [j, a] of qg.entries()) {
      const parts = paired.parts[j]!;
      const isHead = headAtoms.includes(a);
      for (const p of parts) {
        const real = p.atom !== undefined && !p.atom.bcast;
        if (!isHead && !real) return undefined;
        if (!isHead) batch.push(p.atom!);
        else if (real && repeated) return undefined;
        else if (real) heads.push(p.atom!);
        else repeated = true;
      }
    }
  }
  const kvHeads = heads.reduce((p, a) => p * a.size, 1);
  return { lazy: l, groups: [batch, t, [...heads, ...dk]], heads: kvHeads };
}

function pairGroup(l0: Lazy, qg: Group, kg: Group): { lazy: Lazy; parts: Parts[] } | undefined {
  let l = l0;
  if (groupSize(kg) === 1) return { lazy: l, parts: qg.map((a) => [{ atom: undefined, size: a.size }]) };
  if (groupSize(kg) !== groupSize(qg)) return undefined;
  const queue = [...kg];
  const parts: Parts[] = [];
  for (const a of qg) {
    const mine: Parts = [];
    let need = a.size;
    while (need > 1) {
      const k = queue[0];
      if (!k) return undefined;
      if (need % k.size === 0) {
        mine.push({ atom: k, size: k.size });
        queue.shift();
        need /= k.size;
      } else if (k.size % need === 0) {
        const s = splitAtomOf(l, k, need);
        l = s.lazy;
        mine.push({ atom: s.outer, size: need });
        queue[0] = s.inner;
        need = 1;
      } else return undefined;
    }
    parts.push(mine);
  }
  return { lazy: l, parts };
}

function sameSizes(a: Group, b: Group): boolean {
  return a.length === b.length && a.every((x, i) => x.size === b[i]!.size);
}

