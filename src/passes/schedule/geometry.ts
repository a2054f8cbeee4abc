// schedule/geometry: per-die tile sizes and positions, evaluated on demand. Buffer sizes use the
// largest tile (identical on every die); instruction counts use this die's own tile.

import { DTYPES, type TensorType } from '../../ir/types.js';
import { axisRange, evenTiles, maxBlock, maxTileCols, matrixView, REPLICATED, tileOf, type Axis, type Die, type Grid, type Sharding } from '../sharding.js';
import type { Range } from '../../backend/program.js';

export function len(r: Range): number {
  return r[1] - r[0];
}

/** Elements of the largest tile (for buffer sizes, identical on every die). */
export function tileElems(t: TensorType, s: Sharding | undefined, grid: Grid): number {
  const { rows, cols } = matrixView(t);
  const sp = s ?? REPLICATED;
  return maxBlock(rows, sp.rows, grid) * maxTileCols(cols, sp, grid);
}

export function dieTileElems(t: TensorType, s: Sharding | undefined, grid: Grid, die: Die): number {
  const tile = tileOf(t, s ?? REPLICATED, grid, die);
  return len(tile.rows) * len(tile.cols);
}

export function even(t: TensorType, s: Sharding | undefined, grid: Grid): boolean {
  return s === undefined || evenTiles(t, s, grid);
}

/** This die's block of a contraction of length `n` split over `axes` (a partial sum's axes). */
export function contraction(n: number, axes: readonly Axis[], grid: Grid, die: Die): number {
  return len(axisRange(n, axes, grid, die));
}

export function elemBytes(t: TensorType): number {
  return DTYPES[t.dtype].bytes;
}

/** The type of one mini-batch of a batched tensor. */
export function minibatchType(t: TensorType, size: number): TensorType {
  return { dtype: t.dtype, shape: [size, ...t.shape.slice(1)] };
}

/** The die at block `index` along `axes`, keeping `die`'s coordinates on the other axes. */
export function dieAtBlock(axes: readonly Axis[], grid: Grid, index: number, die: Die): Die {
  let rest = index;
  let i = die.i;
  let j = die.j;
  for (let k = axes.length - 1; k >= 0; k--) {
    const n = axes[k] === 'r' ? grid.rows : grid.cols;
    if (axes[k] === 'r') i = rest % n;
    else j = rest % n;
    rest = Math.floor(rest / n);
  }
  return { i, j };
}
