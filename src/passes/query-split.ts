// query-split: where dies outnumber the heads, an attention core can split its work in two
// ways, and tile2d asks this file which one costs the network less (hecaton only: the
// baselines keep the sliced heads Table III assumes).
//
//   head slices   every die holds a slice of one head's width (the paper's §IV-C: "an
//                 all-reduce operation is necessary"): q·kᵀ is a partial sum over the slices,
//                 so each forward all-reduces a b·s·t score matrix among the dies of a head,
//                 and backward two (the recomputed scores and dP);
//   query rows    whole heads over one axis of dies, the query rows over the other: no score
//                 is reduced, but each die reads its heads' keys and values whole (gathered
//                 along the query axis, forward and again backward) and its dk and dv are
//                 partial sums over that axis (reduce-scattered).
//
// The score matrix grows with the sequence and the keys and values with the head width, and
// the query rows take more ring steps, so neither layout always wins: for classic-h8192's 64
// heads of 128 on 32×32 dies (s = 512) the slices move 5.6 MiB per sample on a die's busiest
// link and the query rows 2.9 MiB, but at α = 100 ns on the advanced package the slices' fewer
// steps win. Rotary embeddings between the projections and the core take whichever layout
// their core takes (ropeLayout).

import type { Module, Op } from '../ir/module.js';
import type { Target } from '../target/target.js';
import type { Strategy } from './pass.js';
import { algorithmFor, collectiveCost, headReduceCost, ringShape, stepAlgorithm, type CollectiveCost } from './collective-cost.js';
import { groupedHeads, kvSharding, otherAxis, sharding, span, tileBytes, type Axis, type Grid, type Sharding } from './sharding.js';

/** An attention core's two candidate layouts (tile2d decides when they exist). */
export interface Candidates {
  /** Heads in slices over both axes. */
  readonly slices: Sharding;
  /** Whole heads over the first axis only, queries over `over`. */
  readonly heads: Sharding;
  readonly over: readonly Axis[];
}

/** What the choice weighed, per sample on a die's busiest link. */
export interface QuerySplitChoice {
  readonly splits: boolean;
  /** Dies sharing each head in slices. */
  readonly perHead: number;
  readonly queryBytes: number;
  readonly sliceBytes: number;
}

export class QuerySplits {
  private readonly chosen = new Map<string, QuerySplitChoice>();
  /** Rotary embeddings (and their gradients) by the attention core they feed or follow. */
  private readonly ropes = new Map<Op, Op>();
  /** Whether backward runs (the choice counts both passes' collectives). */
  private readonly trains: boolean;
  private readonly stepS: number;
  private readonly bytesPerS: number;

  constructor(
    m: Module,
    private readonly target: Target,
    private readonly strategy: Strategy,
    private readonly grid: Grid,
  ) {
    const link = target.package.link;
    // A ring step along a row or column of dies crosses a bypass link (§III-A b).
    this.stepS = link.alphaS * link.bypassLatencyFactor;
    this.bytesPerS = link.bandwidthBytesPerS;
    let trains = false;
    for (const op of m.ops()) {
      if (op.kind === 'attention') {
        for (const v of op.operands.slice(0, 2)) if (v.def?.kind === 'rope') this.ropes.set(v.def, op);
      } else if (op.kind === 'attention_grad') {
        trains = true;
        for (const r of op.results) for (const user of m.users(r)) if (user.kind === 'rope_grad' && user.operands[1] === r) this.ropes.set(user, op);
      }
    }
    this.trains = trains;
  }

  /** The attention core (or its gradient) whose layout a rotary embedding follows. */
  attentionOf(rope: Op): Op | undefined {
    return this.ropes.get(rope);
  }

  /**
   * Whether `op` (an attention core or its gradient) takes the query-row layout. Decided once
   * per shape and head axes, so a core and its gradient always agree.
   */
  splitsQueries(op: Op, c: Candidates): boolean {
    return this.choice(op, c)?.splits === true;
  }

  /** The choice for `op` and what it weighed; undefined for the baselines, which keep Table III's layouts. */
  choice(op: Op, c: Candidates): QuerySplitChoice | undefined {
    // The baselines keep the layouts Table III gives them.
    if (this.strategy !== 'hecaton') return undefined;
    const [q, k] = op.operands as [Op['operands'][number], Op['operands'][number]];
    const heads = op.attrs.heads as number;
    const kvHeads = (op.attrs.kv_heads as number | undefined) ?? heads;
    const key = `${q.type.shape.join('x')}|${k.type.shape.join('x')}|${heads}/${kvHeads}|${c.heads.cols.join('')}|${c.over.join('')}`;
    let known = this.chosen.get(key);
    if (known === undefined) {
      const [query, slices] = [this.queryCosts(op, c), this.sliceCosts(op, c)];
      const perSample = (costs: readonly CollectiveCost[]) => costs.reduce((s, x) => s + x.linkBytes, 0) / q.type.shape[0]!;
      known = {
        splits: this.seconds(query, q.type.shape[0]!) < this.seconds(slices, q.type.shape[0]!),
        perHead: span(c.slices.cols, this.grid) / heads,
        queryBytes: perSample(query),
        sliceBytes: perSample(slices),
      };
      this.chosen.set(key, known);
    }
    return known;
  }

  /**
   * The score all-reduces of head slices: one forward, two backward. And where a tensor needs
   * whole heads before the core slices them — q or k through a rotary embedding, grouped-query
   * k and v, whose dies share a head's columns — the projection's partial sum reaches them by
   * an all-reduce over the second head axis rather than a reduce-scatter: a gather more of its
   * whole-head tile, and again for its gradient. (Split queries reduce-scatter all of them.)
   */
  private sliceCosts(op: Op, c: Candidates): CollectiveCost[] {
    const heads = op.attrs.heads as number;
    const kvHeads = (op.attrs.kv_heads as number | undefined) ?? heads;
    const perHead = span(c.slices.cols, this.grid) / heads;
    const one = headReduceCost(op, perHead, this.strategy, c.slices.cols, this.grid, this.target);
    const out: CollectiveCost[] = Array(this.trains ? 3 : 1).fill(one);
    const [first, second] = c.slices.cols as [Axis, Axis];
    const g = span([second], this.grid);
    op.operands.slice(0, 3).forEach((v, i) => {
      if (v.def?.kind !== 'rope' && (i === 0 || kvHeads === heads)) return;
      const whole = tileBytes(v.type, sharding([], [first]), this.grid);
      const gather = collectiveCost('all_gather', algorithmFor(this.strategy, 'all_gather', [second]), whole / g, g, this.grid);
      out.push(...Array(this.trains ? 2 : 1).fill(gather));
    });
    return out;
  }

  /**
   * The query rows' extra traffic over the slices': each of k and v gathered whole along the
   * query axis forward and backward (the slices reduce-scatter the projection's partial sum,
   * the query rows all-reduce it: a gather more), and dk and dv reduce-scattered there.
   */
  private queryCosts(op: Op, c: Candidates): CollectiveCost[] {
    const heads = op.attrs.heads as number;
    const kvHeads = (op.attrs.kv_heads as number | undefined) ?? heads;
    const kv = kvHeads === heads ? c.heads : kvSharding(c.heads, heads, kvHeads);
    const g = span(c.over, this.grid);
    const out: CollectiveCost[] = [];
    for (const v of op.operands.slice(1, 3)) {
      const whole = tileBytes(v.type, kv, this.grid);
      // The core's own steps: both ways round the ring (collectives' emit).
      const algo = stepAlgorithm(this.strategy, 'all_gather', c.over, g, this.grid, true);
      const ring = ringShape(c.over, g, this.target);
      const gather = collectiveCost('all_gather', algo, whole / g, g, this.grid, ring);
      out.push(gather);
      if (this.trains) out.push(gather, collectiveCost('reduce_scatter', algo, whole, g, this.grid, ring));
    }
    return out;
  }

  /**
   * Time on the busiest link for one sample: its bytes at the link's bandwidth, and every
   * collective's steps at a bypass step's latency. The mini-batch is chosen from this plan
   * (minibatch.ts), so it is not known yet: one sample per mini-batch (what the large
   * workloads get) weighs the steps at their heaviest.
   */
  private seconds(costs: readonly CollectiveCost[], samples: number): number {
    return costs.reduce((s, x) => s + x.linkBytes / samples / this.bytesPerS + x.steps * this.stepS, 0);
  }
}

/**
 * A rotary embedding's layout under a core that splits its queries: rows over the query axis,
 * whole heads over the head axis — or, for grouped-query keys with fewer heads than that axis
 * has dies, each run of dies in one head holding it (groupedHeads).
 */
export function ropeLayout(heads: number, headAxis: Axis, grid: Grid): Sharding | undefined {
  const rows = [otherAxis(headAxis)];
  if (heads % span([headAxis], grid) === 0) return sharding(rows, [headAxis]);
  return groupedHeads(rows, [headAxis], heads, grid);
}
