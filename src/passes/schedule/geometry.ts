// schedule/geometry: per-die tile sizes and positions, evaluated on demand. Buffer sizes use the
// largest tile (identical on every die); instruction counts use this die's own tile.

import { DTYPES, type TensorType } from '../../ir/types.js';
import { blockIndex, dieAtBlock, evenTiles, matrixView, maxTileCols, REPLICATED, span, specMaxBlock, tileOf, type Axis, type Die, type Grid, type Sharding } from '../sharding.js';
import type { Range } from '../../backend/program.js';
import type { GroupFields } from './skeleton.js';

export function len(r: Range): number {
  return r[1] - r[0];
}

/** Elements of the largest tile (for buffer sizes, identical on every die). */
export function tileElems(t: TensorType, s: Sharding | undefined, grid: Grid): number {
  const { rows, cols } = matrixView(t);
  const sp = s ?? REPLICATED;
  return specMaxBlock(rows, sp, 'rows', grid) * maxTileCols(cols, sp, grid);
}

export function dieTileElems(t: TensorType, s: Sharding | undefined, grid: Grid, die: Die): number {
  const tile = tileOf(t, s ?? REPLICATED, grid, die);
  return len(tile.rows) * len(tile.cols);
}

export function even(t: TensorType, s: Sharding | undefined, grid: Grid): boolean {
  return s === undefined || evenTiles(t, s, grid);
}

export function elemBytes(t: TensorType): number {
  return DTYPES[t.dtype].bytes;
}

/** The type of one mini-batch of a batched tensor. */
export function minibatchType(t: TensorType, size: number): TensorType {
  return { dtype: t.dtype, shape: [size, ...t.shape.slice(1)] };
}


/**
 * A group of `run` consecutive blocks along `axes` (blockIndex order) holding `die`: the dies
 * sharing a head's slices for its score all-reduce, or those a grouped-query key/value step
 * runs among. `label` begins the collective's id, which names the run and the die's row or
 * column when the axes leave the other free.
 */
export function runMembers(label: string, axes: readonly Axis[], run: number, grid: Grid, die: Die): GroupFields {
  const idx = blockIndex(axes, grid, die);
  const first = Math.floor(idx / run) * run;
  const other = axes.length === 2 ? '' : axes[0] === 'r' ? ` col ${die.j}` : ` row ${die.i}`;
  return { cid: `${label} ${first / run}${other}`, group: runGroup(axes, run, grid, die, first), position: idx - first };
}

/** The member lists of runs, made once per grid and shared by the dies of a run and every collective over it. */
const RUN_GROUPS = new Map<string, Range[]>();

function runGroup(axes: readonly Axis[], run: number, grid: Grid, die: Die, first: number): Range[] {
  const other = axes.length === 2 ? -1 : axes[0] === 'r' ? die.j : die.i;
  const key = `${grid.rows}x${grid.cols} ${axes.join('')} ${run} ${first} ${other}`;
  let group = RUN_GROUPS.get(key);
  if (group === undefined) {
    group = [];
    const last = Math.min(span(axes, grid), first + run);
    for (let k = first; k < last; k++) {
      const d = dieAtBlock(axes, grid, k, die);
      group.push([d.i, d.j]);
    }
    RUN_GROUPS.set(key, group);
  }
  return group;
}
