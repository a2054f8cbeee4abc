// Classes of interchangeable dies, for the executor's class mode (execute.ts).
//
// Two dies are interchangeable when they run the same numbers (the seconds and bytes of every
// instruction, each collective's size, steps, step bytes, step latency and axis), and for every
// collective their group's members, read around the ring from their own positions, are
// interchangeable in turn, and their DRAM pools hold the same mix of interchangeable dies on
// the same bandwidth. A partition of the dies in which every class has these properties with
// respect to the classes themselves is *equitable*; on an equitable partition every die of a
// class sees the same events at the same times as any other (by induction over the events:
// the same starts of its collectives' members, the same sharing of its DRAM pool), so
// simulating one die per class is exact.
//
// dieClasses finds the coarsest equitable partition by colour refinement: a colour per
// distinct die numbers (not the groups or positions, which are what the refinement looks at),
// then rounds in which a die's new colour is its colour, for each collective node the colours
// of its group's members in ring order from its own position, and the sorted colours of its
// DRAM pool with the pool's bandwidth. A new colour includes the old one, so the partition only
// splits; it is equitable once a round splits nothing.
//
// refineClasses starts from colours given by the caller: from every die's numbers
// (dieClasses), or from only the numbers a compile says may vary between dies.
//
// Speed. Many collective nodes share a member list (the rows and columns of the grid), so
// member lists are interned and each list's rotations are coloured once per round; colours
// are interned sequences of 32-bit words (a die's work is its Float64Array's words), found by
// a hash and confirmed by a full comparison.

import { error } from '../../diagnostics/diagnostic.js';
import type { Target } from '../../target/target.js';
import { dramPools } from './engines.js';
import { MemberLists, type CollectiveRings } from '../program.js';
import type { DieNumbers } from './execute.js';

export interface DieClasses {
  /** The class of each die; classes are numbered in the order of their lowest die. */
  readonly classOf: Int32Array;
  /** Each class's representative: its lowest die index. */
  readonly reps: Int32Array;
  /** The member lists the partition was refined on. */
  readonly rings: CollectiveRings;
}

/** The coarsest equitable partition of the dies, from every die's numbers (see the header). */
export function dieClasses(numbers: readonly DieNumbers[], target: Target): DieClasses {
  const rings = collectiveRings(numbers);
  const K = rings.collectives;
  const works = new Interner();
  const collectives = new Interner();
  const initial = new Interner();
  const axes = new Map<string, number>();
  const colour = new Int32Array(numbers.length);
  const collWords = new Float64Array(5 * K);
  numbers.forEach((n, d) => {
    const w = works.id(words(n.work), true);
    for (let k = 0; k < K; k++) {
      const c = n.colls[k]!;
      let axis = axes.get(c.axis);
      if (axis === undefined) axes.set(c.axis, (axis = axes.size));
      collWords.set([c.size, c.steps, c.stepBytes, c.latency, axis], 5 * k);
    }
    colour[d] = initial.id(Int32Array.of(w, collectives.id(words(collWords))));
  });
  return refineClasses(colour, rings, target);
}

/**
 * The coarsest equitable partition from initial colours (equal colours: equal numbers) and
 * the rings. The collectives' own numbers must be the same on every die but for their group's
 * size, which the ring colourings see (a rotation of another length is another sequence).
 */
export function refineClasses(initialColour: Int32Array, rings: CollectiveRings, target: Target): DieClasses {
  const D = initialColour.length;
  const { poolOf, bandwidth } = dramPools(target);
  if (poolOf.length !== D) throw error('GY7003', `${D} programs for a package of ${poolOf.length} dies`);
  const G = rings.groupings;
  let colour = initialColour;
  let count = new Set(initialColour).size;
  const position = rings.position;
  const poolDies: number[][] = bandwidth.map(() => []);
  for (let d = 0; d < D; d++) poolDies[poolOf[d]!]!.push(d);
  const bandwidthWords = words(Float64Array.from(bandwidth));
  const signature = new Int32Array(G + 2);
  for (;;) {
    const rotations = new Interner();
    const rotationOf = rings.lists.map((members) => {
      const n = members.length;
      const out = new Int32Array(n);
      const seq = new Int32Array(n);
      for (let p = 0; p < n; p++) {
        for (let i = 0, q = p; i < n; i++, q = q + 1 === n ? 0 : q + 1) seq[i] = colour[members[q]!]!;
        out[p] = rotations.id(seq);
      }
      return out;
    });
    const pools = new Interner();
    const poolColour = poolDies.map((dies, p) => {
      const seq = new Int32Array(dies.length + 2);
      seq[0] = bandwidthWords[2 * p]!;
      seq[1] = bandwidthWords[2 * p + 1]!;
      dies.forEach((d, i) => (seq[i + 2] = colour[d]!));
      seq.subarray(2).sort();
      return pools.id(seq);
    });
    const next = new Interner();
    const refined = new Int32Array(D);
    for (let d = 0; d < D; d++) {
      signature[0] = colour[d]!;
      const base = d * G;
      for (let g = 0; g < G; g++) signature[g + 1] = rotationOf[rings.listOf[base + g]!]![position[base + g]!]!;
      signature[G + 1] = poolColour[poolOf[d]!]!;
      refined[d] = next.id(signature);
    }
    colour = refined;
    if (next.size === count) break;
    count = next.size;
  }

  const classOf = new Int32Array(D);
  const classOfColour = new Map<number, number>();
  const reps: number[] = [];
  for (let d = 0; d < D; d++) {
    let c = classOfColour.get(colour[d]!);
    if (c === undefined) {
      c = reps.length;
      classOfColour.set(colour[d]!, c);
      reps.push(d);
    }
    classOf[d] = c;
  }
  return { classOf, reps: Int32Array.from(reps), rings };
}

/**
 * Every collective group's members by position, checking that each group's positions are
 * 0 … size−1, each held by one die that agrees on the size.
 */
export function collectiveRings(numbers: readonly DieNumbers[]): CollectiveRings {
  const D = numbers.length;
  const K = D > 0 ? numbers[0]!.colls.length : 0;
  const groupIndex = new Map<string, number>();
  const groups: Int32Array[] = [];
  const keys: string[] = [];
  const groupOf = new Int32Array(D * K);
  for (let d = 0; d < D; d++) {
    const colls = numbers[d]!.colls;
    if (colls.length !== K) throw error('GY7003', `die ${d} has ${colls.length} collectives, die 0 ${K}`);
    for (let k = 0; k < K; k++) {
      const c = colls[k]!;
      let g = groupIndex.get(c.group);
      if (g === undefined) {
        g = groups.length;
        groupIndex.set(c.group, g);
        groups.push(new Int32Array(c.size).fill(-1));
        keys.push(c.group);
      }
      const members = groups[g]!;
      if (members.length !== c.size || c.position < 0 || c.position >= c.size || !Number.isInteger(c.position)) {
        throw error('GY7003', `collective group ${c.group}: die ${d} claims position ${c.position} of ${c.size}, the group has ${members.length} members`);
      }
      if (members[c.position] !== -1) throw error('GY7003', `collective group ${c.group}: dies ${members[c.position]} and ${d} both claim position ${c.position}`);
      members[c.position] = d;
      groupOf[d * K + k] = g;
    }
  }
  const lists = new MemberLists();
  const listOfGroup = groups.map((members, g) => {
    const hole = members.indexOf(-1);
    if (hole >= 0) throw error('GY7003', `collective group ${keys[g]}: no die holds position ${hole} of ${members.length}`);
    return lists.id(members);
  });
  const listOf = new Int32Array(D * K);
  const position = new Int32Array(D * K);
  for (let i = 0; i < D * K; i++) {
    listOf[i] = listOfGroup[groupOf[i]!]!;
    position[i] = numbers[Math.floor(i / K)]!.colls[i % K]!.position;
  }
  // Each collective is its own grouping here (programs read one by one say no more).
  return { lists: lists.lists, grouping: Int32Array.from({ length: K }, (_, k) => k), listOf, position, collectives: K, groupings: K };
}

/** The 32-bit words of a Float64Array (bit patterns: equal words, equal numbers). */
function words(a: Float64Array): Int32Array {
  return new Int32Array(a.buffer, a.byteOffset, a.length * 2);
}

/** Numbers distinct sequences of words 0, 1, 2, … in the order they are first seen. */
class Interner {
  private readonly table = new Map<number, number | number[]>();
  private readonly seqs: Int32Array[] = [];

  get size(): number {
    return this.seqs.length;
  }

  /** The sequence's number; `keep`: store `seq` itself (the caller will not change it), not a copy. */
  id(seq: Int32Array, keep = false): number {
    const h = hashWords(seq);
    const hit = this.table.get(h);
    if (hit !== undefined) {
      if (typeof hit === 'number') {
        if (sameWords(this.seqs[hit]!, seq)) return hit;
      } else {
        for (const i of hit) if (sameWords(this.seqs[i]!, seq)) return i;
      }
    }
    const id = this.seqs.length;
    this.seqs.push(keep ? seq : seq.slice());
    if (hit === undefined) this.table.set(h, id);
    else if (typeof hit === 'number') this.table.set(h, [hit, id]);
    else hit.push(id);
    return id;
  }
}

function sameWords(a: Int32Array, b: Int32Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** MurmurHash3's 32-bit mixing over whole words. */
function hashWords(a: Int32Array): number {
  let h = 0x9747b28c;
  for (let i = 0; i < a.length; i++) {
    let k = Math.imul(a[i]!, 0xcc9e2d51);
    k = (k << 15) | (k >>> 17);
    h ^= Math.imul(k, 0x1b873593);
    h = (h << 13) | (h >>> 19);
    h = (Math.imul(h, 5) + 0xe6546b64) | 0;
  }
  h ^= a.length;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h;
}
