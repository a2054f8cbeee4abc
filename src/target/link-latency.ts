// Link latency of one collective step (α = the package's adjacent-link latency):
//   ring on a row or column of n dies ('c' / 'r'): with the router's bypass channel the ring's
//        longest link is a bypass link, bypass_latency_factor × α (§III-A b: "2 times the
//        adjacent links"); without it the ring closes through a wrap-around wire spanning the
//        side, n × α (§III-A b: the conventional torus's longest link is "the side length").
//        A ring of two dies is plain neighbours: α. Every die sends in every step, so a step
//        lasts as long as its slowest link.
//   ring over all dies ('rc', Megatron's flat ring): a Hamiltonian ring through neighbours
//        (§V-c: it needs an even number of dies), α per step.
//   bidirectional and exchange (collective-cost.ts): the same ring as 'ring', used both ways
//        at once, so their steps cost what a ring step costs (on a folded row or column the two
//        directions share links; collective-cost.ts counts that in the step's bytes).
//   torus2d (the Torus-ring baseline, [33], [63]): rings along rows and columns of the
//        conventional 2-D torus, closed by wrap-around wires spanning the side: a phase along
//        rows of C dies pays C·α per step, along columns R·α. All-reduce runs 2(C−1) row steps
//        and 2(R−1) column steps, all-gather and reduce-scatter half of each; on N = n² dies a
//        block's all-reduce costs 4(n−1)·n·α = 4(N−√N)α, Table III's torus column.
//   recursive_doubling (Optimus's SUMMA broadcasts and reductions, [60]): every one of the g
//        dies of the group roots a binomial-tree broadcast whose log₂g rounds span g/2, g/4,
//        …, 1 die pitches; a message crossing d pitches is forwarded by the routers in between
//        and pays d·α. One broadcast costs (g−1)α, the group's g of them g(g−1)α — N−√N per
//        broadcast set with g = √N (Table III's Optimus column); reductions mirror them.

import { error } from '../diagnostics/diagnostic.js';
import type { Target } from './target.js';

/**
 * Link latency of `steps` steps of collective `op` by `algo` among `g` dies grouped along
 * `axis` (r, c, or rc/cr for every die), seconds: see the header. The timing backend
 * charges it (engines.ts); the compiler asks it where it chooses between algorithms
 * (collective-cost.ts, fasterAllReduce).
 */
export function linkLatency(algo: string, op: string, axis: string, steps: number, g: number, t: Target): number {
  if (steps === 0) return 0;
  const link = t.package.link;
  const a = link.alphaS;
  switch (algo) {
    case 'ring':
    case 'bidirectional':
    case 'exchange': {
      if (axis.length === 2 || g <= 2) return steps * a;
      return steps * (t.die.router.bypass ? link.bypassLatencyFactor * a : g * a);
    }
    case 'torus2d': {
      const { rows: R, cols: C } = t.package;
      const phases = op === 'all_reduce' ? 2 : 1;
      return phases * ((C - 1) * C * a + (R - 1) * R * a);
    }
    case 'recursive_doubling': {
      const sets = op === 'all_reduce' ? 2 : 1;
      return sets * g * (g - 1) * a;
    }
    default:
      throw error('GY7003', `no link-latency model for collective algorithm '${algo}' (ring, bidirectional, exchange, torus2d, recursive_doubling)`);
  }
}
