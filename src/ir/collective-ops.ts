// Collective ops: data movement between dies, explicit in the IR with group semantics. On the
// logical tensor each is the identity (same type in and out); what changes is how the tensor
// is spread over the grid, recorded in the `tile2d.in`/`tile2d.out` notes the collectives
// pass writes beside them. The group is given by grid axes: `r` spans a column of dies (those
// sharing column index j, paper: "within column"), `c` a row, `rc` every die.

import type { AttrSpec } from './attrs.js';
import type { OpDef } from './ops.js';

export const COLLECTIVE_ALGOS = ['ring', 'bidirectional', 'exchange', 'torus2d', 'recursive_doubling'] as const;
export type CollectiveAlgo = (typeof COLLECTIVE_ALGOS)[number];

const group: AttrSpec = {
  kind: 'string',
  oneOf: ['r', 'c', 'rc', 'cr'],
  doc: 'grid axes of each group: r = a column of dies, c = a row, rc = all dies',
};
const algo: AttrSpec = {
  kind: 'string',
  oneOf: COLLECTIVE_ALGOS,
  default: 'ring',
  doc: 'ring (the row/column bypass ring, or a snake ring over all dies), bidirectional (the ring algorithm both ways round that ring), exchange (all-reduce: every partial sent both ways round that ring), torus2d, recursive_doubling',
};
const dim: AttrSpec = { kind: 'string', oneOf: ['rows', 'cols'], doc: 'the dimension of the 2-D view that is split or joined' };
const block: AttrSpec = {
  kind: 'int',
  optional: true,
  doc: 'groups of this many consecutive dies along the axes (grouped-query keys and values); default: the whole axis',
};

function collective(name: string, summary: string, withDim: boolean): OpDef {
  return {
    name,
    summary,
    category: 'collective',
    operands: [{ name: 'x' }],
    attrs: withDim ? { axis: group, dim, algo, block } : { axis: group, algo, block },
    infer([x]) {
      return [{ ...x! }];
    },
    // Reductions add on the vector unit; the timing backend costs them from the bytes moved.
    flops: () => ({ fwd: 0, bwd: 0 }),
  };
}

export const all_gather = collective('all_gather', 'every die of a group ends with the blocks all of them held (joins dim)', true);
export const reduce_scatter = collective('reduce_scatter', 'sum partial tensors over a group, each die keeping one block of the sum (splits dim)', true);
export const all_reduce = collective('all_reduce', 'sum partial tensors over a group, every die keeping the whole sum', false);
export const broadcast = collective('broadcast', 'each die of a group in turn sends its block to the others (2-D SUMMA steps)', true);
