// How many bytes a die puts on the network for one collective, and how many sequential steps
// it takes: the one place the algorithms' volumes are written down. `linkBytes` is the load
// of the busiest outgoing link of a die — transmission time × bandwidth, the quantity of the
// paper's Table III — and `sentBytes` all bytes a die sends. Sizes are per die: `tile` is the
// bytes a die holds before the collective.
//
//   ring over g dies (a row or column bypass ring, or a snake ring over all dies):
//     all-gather     g−1 steps, each sending one tile:           (g−1)·tile
//     reduce-scatter g−1 steps, each sending 1/g of the partial: (g−1)·tile/g   (§II-C, Fig. 3b)
//     all-reduce     reduce-scatter then all-gather:             2(g−1)·tile/g  (eq. 1)
//   exchange over g dies (all-reduce only; small ones, such as a norm's row statistics): every
//     die sends its whole partial both ways round the group's ring and forwards what it
//     receives, so after ⌈(g−1)/2⌉ steps it holds all g partials and adds them itself: about
//     a quarter of the ring's steps for g²/4 times its bytes, faster while the tile is small
//     against α·β (fasterAllReduce picks). Where the ring is a row or column folded through
//     bypass links (0 → 2 → 4 … 5 → 3 → 1 → 0, §III-A b) its one direction already crosses
//     every physical link both ways, so the reverse ring shares them: each link direction
//     carries two tiles per step, 2⌈(g−1)/2⌉·tile. On a plain ring (a snake over all dies, or
//     a line closed by a wrap-around wire) the reverse direction is free: ⌈(g−1)/2⌉·tile.
//   bidirectional over g dies (the collectives Table III does not count: an attention core's
//     own steps, the gathers spreading a 1-D baseline's DRAM read): the ring algorithm both
//     ways at once, ⌈(g−1)/2⌉ steps a phase instead of g−1, each direction moving what a ring
//     step moves. On a folded row the two directions share every link, so the busiest link
//     carries the ring's bytes in half its steps; on a plain ring each direction has its own,
//     so it carries half. (Table III's layout collectives stay one-way: its link latency
//     counts g−1 steps a phase.)
//   torus2d over an R×C grid (Mikami et al. / Ying et al. 2018, the paper's [33], [63]): the data
//     is halved; one half goes row-wise first, the other column-wise, at the same time, so a
//     die's horizontal and vertical links share the work. For an all-reduce of P bytes the
//     horizontal link carries (C−1)(R+1)/(RC)·P; on a square grid (N−1)/N·P, half a flat ring.
//     An all-gather of tile T: (C−1)(R+1)·T/2 horizontally.
//   recursive_doubling over g dies (Optimus's SUMMA broadcasts and reductions, the paper's
//     [60]): see doublingCost.

import { linkLatency } from '../target/link-latency.js';
import { InternalError, assertNever } from '../diagnostics/diagnostic.js';
import type { CollectiveAlgo } from '../ir/collective-ops.js';
import type { Op } from '../ir/module.js';
import { DTYPES } from '../ir/types.js';
import type { Target } from '../target/target.js';
import type { Strategy } from './pass.js';
import { span, type Axis, type Grid } from './sharding.js';

export type CollectiveKind = 'all_gather' | 'reduce_scatter' | 'all_reduce' | 'broadcast';

export interface CollectiveCost {
  readonly sentBytes: number;
  readonly linkBytes: number;
  /** Sequential communication steps (each pays the link latency once). */
  readonly steps: number;
}

/** How a group's ring lies on the links (matters for the exchange only; see the header). */
export type RingShape = 'folded' | 'plain';

/**
 * `groupSize` is the number of dies in each group; `grid` matters for torus2d only, `ring` for
 * the exchange and the bidirectional ring only (ringShape).
 */
export function collectiveCost(kind: CollectiveKind, algo: CollectiveAlgo, tile: number, groupSize: number, grid: Grid, ring?: RingShape): CollectiveCost {
  const g = groupSize;
  if (g <= 1) return { sentBytes: 0, linkBytes: 0, steps: 0 };
  switch (algo) {
    case 'ring':
      return ringCost(kind, tile, g);
    case 'torus2d':
      return torusCost(kind, tile, grid);
    case 'recursive_doubling':
      return doublingCost(kind, tile, g);
    case 'exchange':
      if (ring === undefined) throw new InternalError('the exchange needs to know how its ring lies on the links');
      return exchangeCost(kind, tile, g, ring);
    case 'bidirectional':
      if (ring === undefined) throw new InternalError('the bidirectional ring needs to know how its ring lies on the links');
      return bidirectionalCost(kind, tile, g, ring);
    default:
      return assertNever(algo);
  }
}

function exchangeCost(kind: CollectiveKind, tile: number, g: number, ring: RingShape): CollectiveCost {
  if (kind !== 'all_reduce') throw new InternalError(`the exchange algorithm is an all-reduce; asked for a ${kind}`);
  const steps = Math.ceil((g - 1) / 2);
  return { sentBytes: (g - 1) * tile, linkBytes: (ring === 'folded' ? 2 : 1) * steps * tile, steps };
}

function bidirectionalCost(kind: CollectiveKind, tile: number, g: number, ring: RingShape): CollectiveCost {
  const one = ringCost(kind, tile, g);
  const phases = kind === 'all_reduce' ? 2 : 1;
  const steps = phases * Math.ceil((g - 1) / 2);
  // Per phase the busiest direction forwards ⌈(g−1)/2⌉ of the ring's g−1 pieces; folded, the
  // other direction's ⌊(g−1)/2⌋ cross the same links.
  const linkBytes = ring === 'folded' ? one.linkBytes : (one.linkBytes * steps) / one.steps;
  return { sentBytes: one.sentBytes, linkBytes, steps };
}

/**
 * A row or column ring of more than two dies is folded through the routers' bypass links;
 * without them it is closed by a wire spanning the side, and a group over every die is a
 * snake through neighbours (engines.ts): both plain.
 */
export function ringShape(axes: readonly Axis[], groupSize: number, t: Target): RingShape {
  return axes.length === 1 && groupSize > 2 && t.die.router.bypass ? 'folded' : 'plain';
}

/**
 * The algorithm of a collective among `groupSize` dies along `axes`: the strategy's over a
 * whole row, column or grid, and a ring through a shorter run of dies (a 2-D torus algorithm
 * needs the whole grid). `own`: a collective Table III does not count, which runs both ways
 * round its ring where it would run one way.
 */
export function stepAlgorithm(strategy: Strategy, kind: CollectiveKind, axes: readonly Axis[], groupSize: number, grid: Grid, own: boolean): CollectiveAlgo {
  const whole = groupSize === span(axes, grid);
  const algo = whole || kind === 'broadcast' || strategy === 'optimus' ? algorithmFor(strategy, kind, axes) : 'ring';
  return own && algo === 'ring' ? 'bidirectional' : algo;
}

function ringCost(kind: CollectiveKind, tile: number, g: number): CollectiveCost {
  switch (kind) {
    case 'all_gather':
    case 'broadcast':
      return same((g - 1) * tile, g - 1);
    case 'reduce_scatter':
      return same(((g - 1) * tile) / g, g - 1);
    case 'all_reduce':
      return same((2 * (g - 1) * tile) / g, 2 * (g - 1));
    default:
      return assertNever(kind);
  }
}

function torusCost(kind: CollectiveKind, tile: number, grid: Grid): CollectiveCost {
  const { rows: R, cols: C } = grid;
  const N = R * C;
  const busiest = Math.max((C - 1) * (R + 1), (R - 1) * (C + 1));
  switch (kind) {
    case 'all_reduce':
      return { sentBytes: (2 * (N - 1) * tile) / N, linkBytes: (busiest * tile) / N, steps: 2 * (R - 1) + 2 * (C - 1) };
    case 'all_gather':
    case 'broadcast':
      return { sentBytes: (N - 1) * tile, linkBytes: (busiest * tile) / 2, steps: R - 1 + C - 1 };
    case 'reduce_scatter':
      return { sentBytes: ((N - 1) * tile) / N, linkBytes: (busiest * tile) / (2 * N), steps: R - 1 + C - 1 };
    default:
      return assertNever(kind);
  }
}

/**
 * SUMMA's broadcasts and reductions (Optimus): each of the g dies of a group roots one
 * broadcast of its tile, which a binomial tree spreads in log₂g rounds; the root sends in
 * every round, so the critical path is g·log₂g tiles — Table III's log₂N/(2√N) per γ or ξ
 * with g = √N. A reduction of a partial tile goes the other way in g blocks of tile/g.
 */
function doublingCost(kind: CollectiveKind, tile: number, g: number): CollectiveCost {
  const rounds = Math.ceil(Math.log2(g));
  switch (kind) {
    case 'all_gather':
    case 'broadcast':
      return { sentBytes: (g - 1) * tile, linkBytes: g * rounds * tile, steps: g * rounds };
    case 'reduce_scatter':
      return { sentBytes: ((g - 1) * tile) / g, linkBytes: rounds * tile, steps: g * rounds };
    case 'all_reduce':
      return { sentBytes: (2 * (g - 1) * tile) / g, linkBytes: 2 * rounds * tile, steps: 2 * g * rounds };
    default:
      return assertNever(kind);
  }
}

function same(bytes: number, steps: number): CollectiveCost {
  return { sentBytes: bytes, linkBytes: bytes, steps };
}

/** The algorithm each strategy uses for a collective over `axes`. */
export function algorithmFor(strategy: Strategy, kind: CollectiveKind, axes: readonly Axis[]): CollectiveAlgo {
  if (kind === 'broadcast' || strategy === 'optimus') return 'recursive_doubling';
  if (axes.length === 2) return strategy === 'torus' ? 'torus2d' : 'ring';
  return 'ring';
}

/**
 * The algorithm that finishes one all-reduce of `tile` bytes per die among the dies of `axes`
 * soonest on target `t`, for a collective Table III does not count: the strategy's own (both
 * ways round its ring, stepAlgorithm), or the exchange round the same ring, timed as
 * busiest-link bytes / β plus the steps' link latency (the timing backend's model,
 * engines.ts). Ties keep the strategy's algorithm.
 */
export function fasterAllReduce(strategy: Strategy, axes: readonly Axis[], tile: number, grid: Grid, t: Target): CollectiveAlgo {
  const g = span(axes, grid);
  const own = stepAlgorithm(strategy, 'all_reduce', axes, g, grid, true);
  const time = (algo: CollectiveAlgo): number => {
    const c = collectiveCost('all_reduce', algo, tile, g, grid, ringShape(axes, g, t));
    return c.linkBytes / t.package.link.bandwidthBytesPerS + linkLatency(algo, 'all_reduce', axes.join(''), c.steps, g, t);
  };
  return time('exchange') < time(own) ? 'exchange' : own;
}

/**
 * One all-reduce of a die's partial scores among the `perHead` dies sharing its head, along
 * `axes`: a step of the core, so both ways round its ring (stepAlgorithm).
 */
export function headReduceCost(op: Op, perHead: number, strategy: Strategy, axes: readonly Axis[], grid: Grid, t: Target): CollectiveCost {
  const [b, s] = op.operands[0]!.type.shape as [number, number];
  const keys = op.operands[1]!.type.shape[1]!;
  const scores = b * s * keys * DTYPES[op.operands[0]!.type.dtype].bytes;
  return collectiveCost('all_reduce', stepAlgorithm(strategy, 'all_reduce', axes, perHead, grid, true), scores, perHead, grid, ringShape(axes, perHead, t));
}
