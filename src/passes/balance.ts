// Load balance on a heterogeneous package: every pass sees the die grid as a `Grid`, and on a
// package that mixes die types the grid carries units (sharding.ts) so that each die's share
// of every split dimension follows its throughput — the idea of H2's adaptive balancing
// (related.md), applied to 2D tiling instead of pipeline stages.
//
// Hecaton's tiling splits one dimension of every tensor over the die rows and another over
// the die columns, so die (i, j) does a fraction rowShare(i) × colShare(j) of each GEMM. That
// can match the dies' throughputs T(i, j) exactly when T is separable, T(i, j) ∝ a_i · b_j:
// every die row of one type (bands of rows), every column of one type, or a product of both.
// Then row i gets a_i units and column j gets b_j units (small whole numbers in the ratio of the
// throughputs, within 5%). A layout that is not separable (a checkerboard) cannot be balanced
// by row and column shares; its work is split evenly, and the report says so.
//
// Heads must stay whole on every die (tile2d's evenHeads replicates attention otherwise), so
// with attention the units of an axis add up to a divisor of the heads each block of the
// other axis holds: 48 heads on 2:1 rows of a 4×4 package take units 2:2:1:1 (each die 4 or 2
// heads), but 16 heads cannot be shared 2:1 over 16 dies in whole heads, and such an axis
// stays even (every die one head; the fast dies wait for the slow ones).
//
// Throughput is what each die type's own cost model (src/target/accelerators.ts) gives for a
// large GEMM, so a plugin's cost functions count, not only its MAC count.

import { dieCostModel, dieThroughput } from '../target/accelerators.js';
import type { Target } from '../target/target.js';
import type { Module } from '../ir/module.js';
import type { Grid } from './sharding.js';

export interface Balance {
  readonly grid: Grid;
  /** One line on what was decided, for the tiling report; null on a homogeneous package. */
  readonly note: string | null;
}

/** Units are whole numbers up to this: shares within 5% for ratios up to 8:1. */
const MAX_SCALE = 8;
const TOLERANCE = 0.05;

/** The grid of a target's package for module `m`, with units when its die types differ in throughput. */
export function gridOf(target: Target, m: Module): Grid {
  return balanceOf(target, m).grid;
}

const cache = new WeakMap<Target, WeakMap<Module, Balance>>();

export function balanceOf(target: Target, m: Module): Balance {
  let perModule = cache.get(target);
  if (perModule === undefined) cache.set(target, (perModule = new WeakMap()));
  let b = perModule.get(m);
  if (b === undefined) perModule.set(m, (b = computeBalance(target, headsOf(m))));
  return b;
}

/**
 * The head count every attention of the module divides into (their greatest common divisor),
 * or null without attention. Units that divide it keep heads whole on every die, so attention
 * splits over a weighted axis as it does over an even one (tile2d's evenHeads).
 */
function headsOf(m: Module): number | null {
  let g: number | null = null;
  for (const op of m.ops()) {
    if (op.kind !== 'attention' && op.kind !== 'attention_grad') continue;
    const h = op.attrs.heads as number;
    g = g === null ? h : gcd(g, h);
  }
  return g;
}

function computeBalance(target: Target, heads: number | null): Balance {
  const { rows: R, cols: C } = target.package;
  const even: Grid = { rows: R, cols: C };
  if (target.dieTypes.length === 1) return { grid: even, note: null };
  if (target.balance === 'even') return { grid: even, note: 'work split evenly over the die types (balance: even)' };
  const rates = target.dieTypes.map((d) => dieThroughput(dieCostModel(d)));
  const T = (i: number, j: number) => rates[target.layout[i * C + j]!]!;
  const rowRate = Array.from({ length: R }, (_, i) => T(i, 0));
  const colRate = Array.from({ length: C }, (_, j) => T(0, j) / T(0, 0));
  for (let i = 0; i < R; i++) {
    for (let j = 0; j < C; j++) {
      if (Math.abs(T(i, j) - rowRate[i]! * colRate[j]!) > 1e-9 * T(i, j)) {
        return { grid: even, note: `die throughputs are not a product of a row and a column profile (die [${i}, ${j}]): work is split evenly` };
      }
    }
  }
  // Heads split over both axes (a die's block of the row axis cut again over the columns)
  // stay whole only if the units of one axis times the blocks of the other divide them.
  const headsPer = (other: number, len: number) => (heads === null ? null : heads % other === 0 && heads / other >= len ? heads / other : heads);
  const rowUnits = wholeUnits(rowRate, headsPer(C, R));
  const rowTotal = rowUnits ? rowUnits.reduce((a, b) => a + b, 0) : R;
  const colUnits = wholeUnits(colRate, headsPer(rowTotal, C));
  const grid: Grid = { rows: R, cols: C, ...(rowUnits ? { rowUnits } : {}), ...(colUnits ? { colUnits } : {}) };
  const show = (u: readonly number[] | undefined) => (u ? u.join(':') : 'even');
  return { grid, note: `work split by die throughput: rows ${show(rowUnits)}, columns ${show(colUnits)}${heads !== null && (rowUnits || colUnits) ? ` (units divide the ${heads} heads)` : ''}` };
}

/**
 * The die count that, split evenly, gives each die what the busiest die holds of a tensor
 * split over the whole grid: R·C on an even grid, less when some dies take larger shares.
 * Fusion sizes weight tiles by it, so the largest tile fits the buffers.
 */
export function sharingDies(grid: Grid): number {
  const total = (u: readonly number[] | undefined, n: number) => (u ? u.reduce((a, b) => a + b, 0) / Math.max(...u) : n);
  return total(grid.rowUnits, grid.rows) * total(grid.colUnits, grid.cols);
}

/**
 * Whole units in the ratio of `rates`, or undefined when all rates are equal (within 5%).
 * With `heads`, the units add up to a divisor of it (so each unit is whole heads), the one
 * whose shares come closest to the rates; otherwise the smallest whole numbers within 5% of
 * the ratio (up to 8:1).
 */
export function wholeUnits(rates: readonly number[], heads: number | null = null): number[] | undefined {
  const least = Math.min(...rates);
  const ratio = rates.map((r) => r / least);
  if (ratio.every((r) => Math.abs(r - 1) <= TOLERANCE)) return undefined;
  const sum = ratio.reduce((a, b) => a + b, 0);
  const share = ratio.map((r) => r / sum);
  const error = (units: readonly number[]) => {
    const total = units.reduce((a, b) => a + b, 0);
    return Math.max(...units.map((u, k) => Math.abs(u / total / share[k]! - 1)));
  };
  let best: number[] | undefined;
  if (heads !== null && heads >= rates.length) {
    for (let total = rates.length; total <= heads; total++) {
      if (heads % total !== 0) continue;
      const units = apportion(share, total);
      if (best === undefined || error(units) < error(best) - 1e-12) best = units;
    }
  } else {
    for (let scale = 1; scale <= MAX_SCALE && best === undefined; scale++) {
      const units = ratio.map((r) => Math.max(1, Math.round(scale * r)));
      if (units.every((u, k) => Math.abs(u / (scale * ratio[k]!) - 1) <= TOLERANCE)) best = units;
    }
    best ??= ratio.map((r) => Math.max(1, Math.round(MAX_SCALE * r)));
  }
  if (best === undefined || best.every((u) => u === best![0])) return undefined;
  const g = best.reduce(gcd);
  return best.map((u) => u / g);
}

/** `total` whole units in proportion to `share` (largest remainder), at least one each. */
function apportion(share: readonly number[], total: number): number[] {
  const spare = total - share.length;
  const exact = share.map((s) => s * spare);
  const units = exact.map((x) => 1 + Math.floor(x));
  let left = total - units.reduce((a, b) => a + b, 0);
  const order = exact.map((x, k) => ({ k, rest: x - Math.floor(x) })).sort((a, b) => b.rest - a.rest || a.k - b.k);
  for (const { k } of order) {
    if (left <= 0) break;
    units[k]!++;
    left--;
  }
  return units;
}

function gcd(a: number, b: number): number {
  return b === 0 ? a : gcd(b, a % b);
}
