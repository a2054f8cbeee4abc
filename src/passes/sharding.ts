// Sharding specs: how a tensor is spread over the R×C die grid. Every tensor is seen as a
// 2-D matrix — rows are all leading dimensions flattened (a [b, s, h] activation is the
// paper's [bs, h]), columns the last dimension — and a spec says which grid axes split the
// rows and which split the columns, and over which axes the tensor is a partial sum still to
// be reduced. Grid axis `r` indexes die rows (i), `c` die columns (j); an axis list such as
// `rc` splits a dimension over all dies, row-major.
//
//   [r, c]     die [i, j] holds row block i and column block j   (Algorithm 1's X[i, j])
//   [-, c]     die [i, j] holds all rows of column block j         (after all-gather within a column)
//   [-, r]~c   die [i, j] holds a partial sum over column index j  (before reduce-scatter within a row)
//   [c, r]     the transposed layout (Algorithm 1's Y[j, i])
//   [-, -]     replicated on every die
//   [-, rc:kv8/2]  keys or values of grouped-query attention: the columns of a [.., kv_heads·d]
//              tensor that the die's block of the queries (8 heads split as [-, rc]) reads
//              (its query heads' shared key/value head, or the same slice of it); dies whose
//              queries share a key/value head hold the same columns
//   [-, c:kv32/8]  whole heads of an 8-head tensor for runs of 4 dies along c (32 blocks of
//              one pseudo-head each, 8 heads): rotary embeddings of grouped-query keys
//   [-, rc:kv8/2]~rc  a gradient of such keys or values: each die's contribution to its own
//              columns (zero elsewhere), summed over the dies (partial axes may split columns)
//   [-, r96c]  whole heads when they do not split evenly: wherever axis r appears it splits its
//              dimension into 96 granules (heads), block i getting ⌊96(i+1)/R⌋ − ⌊96i/R⌋ of them
//              (1 or 2 on 64 rows), and c splits each row's heads evenly; likewise [r96, c]
//              (a weight whose rows are heads) and [-, c]~r96 (a sum over heads split so)
//   [-, rc5]   the inner axis deals granules instead: r splits 20 heads evenly, 5 per row, and
//              c deals each row's 5 over its 4 dies, 1, 1, 1 and 2 (a granular axis is a
//              weighted one whose units are the granules: gridFor)
//
// The text form above is what tile2d writes into notes and what collectives reads back.

import { assert } from '../diagnostics/diagnostic.js';
import { byteSize, numel, type TensorType } from '../ir/types.js';
import type { ProgramHeader } from '../backend/program.js';

export type Axis = 'r' | 'c';
export interface Sharding {
  readonly rows: readonly Axis[];
  readonly cols: readonly Axis[];
  readonly partial: readonly Axis[];
  /** Keys or values of grouped-query attention: `cols` split the queries, which have `heads` heads sharing `kvHeads`. */
  readonly kv?: { readonly heads: number; readonly kvHeads: number };
  /**
   * Whole heads over an axis they do not divide: wherever `axis` appears in the spec (rows,
   * columns or partial), it splits that dimension (or, after an outer axis, each outer block
   * of it) into `count` equal granules dealt out as evenly as whole granules allow
   * (granuleUnits). The dimension is a head dimension there.
   */
  readonly granules?: { readonly axis: Axis; readonly count: number };
}

export interface Grid {
  readonly rows: number;
  readonly cols: number;
  /**
   * A heterogeneous package's load balance (balance.ts): each die row's (column's) share of
   * any dimension split over axis r (c), in whole units. A split over the axis cuts the
   * dimension into Σ units even blocks and gives row i `rowUnits[i]` consecutive ones.
   * Absent: every row (column) gets one equal block.
   */
  readonly rowUnits?: readonly number[];
  readonly colUnits?: readonly number[];
}

/** The grid a program header describes (its size and, on a heterogeneous package, its units). */
export function gridOfHeader(h: ProgramHeader): Grid {
  return {
    rows: h.grid[0],
    cols: h.grid[1],
    ...(h.units?.rows ? { rowUnits: h.units.rows } : {}),
    ...(h.units?.cols ? { colUnits: h.units.cols } : {}),
  };
}

/** How one grid axis splits a dimension: into that many equal blocks, or blocks of these units. */
export type Split = number | readonly number[];

export const REPLICATED: Sharding = { rows: [], cols: [], partial: [] };

export function sharding(rows: readonly Axis[], cols: readonly Axis[], partial: readonly Axis[] = []): Sharding {
  // Specs are made many thousand times and never mutated: each is made once and shared.
  const key = (axesCode(rows) * 5 + axesCode(cols)) * 5 + axesCode(partial);
  const known = key >= 0 ? SPECS[key] : undefined;
  if (known !== undefined) return known;
  const used = [...rows, ...cols];
  assert(new Set(used).size === used.length, `axis used twice in sharding [${rows.join('')}, ${cols.join('')}]`);
  assert(partial.every((a) => !used.includes(a)), 'a partial-sum axis cannot also split a dimension');
  const s: Sharding = { rows: [...rows], cols: [...cols], partial: [...partial] };
  if (key >= 0) SPECS[key] = s;
  return s;
}

/** Every valid spec without grouped-query columns, by axesCode of its rows, columns and partial axes. */
const SPECS: Sharding[] = [];

/** An axis list as 0 … 4 (-, r, c, rc, cr); a large negative number for anything longer or repeated. */
function axesCode(axes: readonly Axis[]): number {
  if (axes.length === 0) return 0;
  if (axes.length === 1) return axes[0] === 'r' ? 1 : 2;
  if (axes.length === 2 && axes[0] !== axes[1]) return axes[0] === 'r' ? 3 : 4;
  return -1000;
}

/**
 * The key/value layout matching queries split by `cols` (grouped-query attention, kvHeads <
 * heads); with `partial`, contributions to those columns still to be summed over those axes.
 */
export function kvSharding(queries: Sharding, heads: number, kvHeads: number, partial: readonly Axis[] = []): Sharding {
  const key = `${formatSharding(sharding(queries.rows, queries.cols))}:${heads}/${kvHeads}~${partial.join('')}`;
  let s = KV_SPECS.get(key);
  if (s === undefined) {
    assert(partial.every((a) => !queries.rows.includes(a)), 'a partial-sum axis cannot also split the rows');
    s = { rows: [...queries.rows], cols: [...queries.cols], partial: [...partial], kv: { heads, kvHeads } };
    KV_SPECS.set(key, s);
  }
  return s;
}

const KV_SPECS = new Map<string, Sharding>();

/**
 * `s` with `axis` splitting its dimension into `count` whole granules (heads) wherever it
 * appears; `s` itself when the axis does not appear or `count` is absent.
 */
export function withGranules(s: Sharding, g: Sharding['granules']): Sharding {
  if (g === undefined || ![...s.rows, ...s.cols, ...s.partial].includes(g.axis)) return s.granules ? plain(s) : s;
  if (s.granules && s.granules.axis === g.axis && s.granules.count === g.count) return s;
  assert(!s.kv, 'grouped-query layouts do not take granules');
  const key = `${formatSharding(plain(s))}|${g.axis}${g.count}`;
  let out = GRANULAR.get(key);
  if (out === undefined) {
    out = { rows: s.rows, cols: s.cols, partial: s.partial, granules: { axis: g.axis, count: g.count } };
    GRANULAR.set(key, out);
  }
  return out;
}

const GRANULAR = new Map<string, Sharding>();

/** The spec without granules. */
function plain(s: Sharding): Sharding {
  return s.granules ? sharding(s.rows, s.cols, s.partial) : s;
}

/** A spec over these axes that keeps `like`'s granules where their axis is still used. */
export function reshard(like: Sharding, rows: readonly Axis[], cols: readonly Axis[], partial: readonly Axis[] = []): Sharding {
  return withGranules(sharding(rows, cols, partial), like.granules);
}

/** Granules dealt over `n` blocks as evenly as whole ones allow: block k gets ⌊(k+1)·count/n⌋ − ⌊k·count/n⌋. */
export function granuleUnits(count: number, n: number): number[] {
  return Array.from({ length: n }, (_, k) => Math.floor(((k + 1) * count) / n) - Math.floor((k * count) / n));
}

/**
 * The grid as a spec sees it: a granular axis becomes a weighted one whose units are the
 * granules each block gets, so every per-die computation over the spec's axes (tileOf,
 * maxBlock, units, splitsOf) deals whole granules. Other specs see the grid itself.
 */
export function gridFor(s: Sharding, grid: Grid): Grid {
  const g = s.granules;
  if (g === undefined) return grid;
  const seen = LAST_GRID.get(s);
  if (seen !== undefined && seen.grid === grid) return seen.out;
  const key = `${gridKey(grid)}|${g.axis}${g.count}`;
  let out = GRANULE_GRIDS.get(key);
  if (out === undefined) {
    assert(unitsOf(g.axis, grid) === undefined, 'granules on an axis the package already weights');
    const units = granuleUnits(g.count, g.axis === 'r' ? grid.rows : grid.cols);
    out = g.axis === 'r' ? { ...grid, rowUnits: units } : { ...grid, colUnits: units };
    GRANULE_GRIDS.set(key, out);
  }
  LAST_GRID.set(s, { grid, out });
  return out;
}

const GRANULE_GRIDS = new Map<string, Grid>();

/** One dimension of a spec: the rows, the columns, or the contraction its partial sum splits. */
export type SpecDim = 'rows' | 'cols' | 'partial';

// Per-die geometry of one dimension of a spec, through the grid the spec sees (gridFor), so
// that heads dealt out whole (granules) are dealt wherever the spec is read.

/** The most items any die holds of `n` split as `s` splits `dim`. */
export function specMaxBlock(n: number, s: Sharding, dim: SpecDim, grid: Grid): number {
  return maxBlock(n, s[dim], gridFor(s, grid));
}

/** Whether every die holds as many of `n` split as `s` splits `dim`. */
export function specEvenSplit(n: number, s: Sharding, dim: SpecDim, grid: Grid): boolean {
  return evenSplit(n, s[dim], gridFor(s, grid));
}

/** The range of `n` items die `die` holds split as `s` splits `dim`. */
export function specRange(n: number, s: Sharding, dim: SpecDim, grid: Grid, die: Die): readonly [number, number] {
  return axisRange(n, s[dim], gridFor(s, grid), die);
}

/** How each axis of `dim` splits under `s`, outermost first. */
export function specSplits(s: Sharding, dim: SpecDim, grid: Grid): Split[] {
  return splitsOf(s[dim], gridFor(s, grid));
}

/** The equal blocks `s` cuts `dim` into before dies take their share. */
export function specUnits(s: Sharding, dim: SpecDim, grid: Grid): number {
  return units(s[dim], gridFor(s, grid));
}
/** The grid each granular spec was last seen with, and what it sees (most calls repeat it). */
const LAST_GRID = new WeakMap<Sharding, { readonly grid: Grid; readonly out: Grid }>();

/**
 * Whole heads of a tensor with fewer heads than `axes` make blocks: each run of dies whose
 * blocks fall in one head holds that head (a grouped-query key's heads for rotary embeddings,
 * which pair dimensions half a head apart). Undefined when the blocks do not divide evenly.
 */
export function groupedHeads(rows: readonly Axis[], axes: readonly Axis[], heads: number, grid: Grid): Sharding | undefined {
  if (axes.length === 0 || weighted(axes, grid)) return undefined;
  const blocks = span(axes, grid);
  return blocks % heads === 0 && blocks > heads ? kvSharding(sharding(rows, axes), blocks, heads) : undefined;
}

/** Texts of specs already formatted (specs are never mutated; parsed ones are shared). */
const FORMATTED = new WeakMap<Sharding, string>();

export function formatSharding(s: Sharding): string {
  let text = FORMATTED.get(s);
  if (text === undefined) {
    const g = s.granules;
    const dim = (axes: readonly Axis[]) => (axes.length ? axes.map((a) => (g && a === g.axis ? `${a}${g.count}` : a)).join('') : '-');
    const kv = s.kv ? `:kv${s.kv.heads}/${s.kv.kvHeads}` : '';
    text = `[${dim(s.rows)}, ${dim(s.cols)}${kv}]${s.partial.length ? `~${dim(s.partial)}` : ''}`;
    FORMATTED.set(s, text);
  }
  return text;
}

/** Parsed specs by text: passes read the same few specs back from notes many thousand times. */
const PARSED = new Map<string, Sharding>();

/** The spec a text names (shared: specs are never mutated). */
export function parseSharding(text: string): Sharding {
  let s = PARSED.get(text);
  if (s === undefined) {
    s = parseShardingText(text);
    PARSED.set(text, s);
  }
  return s;
}

function parseShardingText(text: string): Sharding {
  const m = /^\[([rc\d-]+), ([rc\d-]+)(?::kv(\d+)\/(\d+))?\](?:~([rc\d]+))?$/.exec(text);
  assert(m, `bad sharding text '${text}'`);
  let granules: Sharding['granules'];
  const axes = (t: string): Axis[] => {
    if (t === '-') return [];
    const out: Axis[] = [];
    for (const [, a, n] of t.matchAll(/([rc])(\d*)/g)) {
      out.push(a as Axis);
      if (n) granules = { axis: a as Axis, count: Number(n) };
    }
    return out;
  };
  const rows = axes(m[1]!);
  const cols = axes(m[2]!);
  const partial = m[5] ? axes(m[5]) : [];
  if (m[3]) return kvSharding(sharding(rows, cols), Number(m[3]), Number(m[4]), partial);
  return withGranules(sharding(rows, cols, partial), granules);
}

export function sameSharding(a: Sharding, b: Sharding): boolean {
  return formatSharding(a) === formatSharding(b);
}

/** Number of dies an axis list spans. */
export function span(axes: readonly Axis[], grid: Grid): number {
  return axes.reduce((n, a) => n * (a === 'r' ? grid.rows : grid.cols), 1);
}

/** The units a weighted axis splits into, or undefined for an even axis. */
function unitsOf(a: Axis, grid: Grid): readonly number[] | undefined {
  return a === 'r' ? grid.rowUnits : grid.colUnits;
}

/**
 * Number of equal blocks an axis list cuts a dimension into before dies take their share:
 * the dies it spans on an even grid, the sum of units on a weighted axis. A dimension divides
 * into whole heads (or equal tiles) per die when it divides by this.
 */
export function units(axes: readonly Axis[], grid: Grid): number {
  return axes.reduce((n, a) => n * (unitsOf(a, grid)?.reduce((x, y) => x + y, 0) ?? (a === 'r' ? grid.rows : grid.cols)), 1);
}

/** Whether any axis of the list gives dies unequal shares. */
export function weighted(axes: readonly Axis[], grid: Grid): boolean {
  return axes.some((a) => unitsOf(a, grid) !== undefined);
}

/** Whether `n` items split over `axes` give every die the same number. */
export function evenSplit(n: number, axes: readonly Axis[], grid: Grid): boolean {
  return !weighted(axes, grid) && n % span(axes, grid) === 0;
}

/** The most items any die holds when `axes` split `n` (the even ⌈n / dies⌉ on an even grid). */
export function maxBlock(n: number, axes: readonly Axis[], grid: Grid): number {
  if (!weighted(axes, grid)) return Math.ceil(n / span(axes, grid));
  // A walk over every block (4096 on 64×64), remembered per grid, length and axes.
  let byKey = MOST.get(grid);
  if (byKey === undefined) MOST.set(grid, (byKey = new Map()));
  const key = `${n}|${axes.join('')}`;
  let most = byKey.get(key);
  if (most === undefined) {
    const splits = splitsOf(axes, grid);
    most = 0;
    for (let k = 0; k < span(axes, grid); k++) {
      const [a, b] = nestedRange(n, splits, k);
      most = Math.max(most, b - a);
    }
    byKey.set(key, most);
  }
  return most;
}

const MOST = new WeakMap<Grid, Map<string, number>>();

/** The 2-D view of a type: rows = product of leading dims (1 for vectors), cols = last dim. */
export function matrixView(t: TensorType): { rows: number; cols: number } {
  const cols = t.shape[t.shape.length - 1] ?? 1;
  return { rows: cols === 0 ? 0 : numel(t) / cols, cols };
}

/** Bytes of the largest tile one die holds (tiles are as even as the sizes allow). */
export function tileBytes(t: TensorType, s: Sharding, grid: Grid): number {
  const { rows, cols } = matrixView(t);
  const elemBytes = byteSize(t) / Math.max(1, numel(t));
  return specMaxBlock(rows, s, 'rows', grid) * maxTileCols(cols, s, grid) * elemBytes;
}

/** Columns of the widest tile. */
export function maxTileCols(cols: number, s: Sharding, grid: Grid): number {
  if (!s.kv) return specMaxBlock(cols, s, 'cols', grid);
  return kvWidths(cols, s.kv, s.cols, grid).most;
}

/** Whether every tile has the same size (the dimensions divide by the axis spans). */
export function evenTiles(t: TensorType, s: Sharding, grid: Grid): boolean {
  const { rows, cols } = matrixView(t);
  if (!specEvenSplit(rows, s, 'rows', grid)) return false;
  if (!s.kv) return specEvenSplit(cols, s, 'cols', grid);
  return kvWidths(cols, s.kv, s.cols, grid).even;
}

/**
 * The widest block of grouped-query key/value columns, and whether all blocks are as wide:
 * a walk over every block of the split, remembered per layout (the same few layouts come
 * back for every op of every layer, and a 64×64 grid has 4096 blocks).
 */
const KV_WIDTHS = new Map<string, { readonly most: number; readonly even: boolean }>();

function kvWidths(cols: number, kv: NonNullable<Sharding['kv']>, axes: readonly Axis[], grid: Grid): { readonly most: number; readonly even: boolean } {
  const key = `${cols}|${kv.heads}/${kv.kvHeads}|${axes.join('')}|${grid.rows}x${grid.cols}|${grid.rowUnits?.join(',') ?? ''}|${grid.colUnits?.join(',') ?? ''}`;
  let w = KV_WIDTHS.get(key);
  if (w === undefined) {
    const widths = new Set<number>();
    let most = 0;
    for (let p = 0; p < span(axes, grid); p++) {
      const [a, b] = kvColumns(cols, kv, nestedRange(queryWidth(cols, kv), splitsOf(axes, grid), p));
      most = Math.max(most, b - a);
      widths.add(b - a);
    }
    w = { most, even: widths.size === 1 };
    KV_WIDTHS.set(key, w);
  }
  return w;
}

function queryWidth(kvCols: number, kv: NonNullable<Sharding['kv']>): number {
  return (kvCols / kv.kvHeads) * kv.heads;
}

/**
 * The key/value columns queries [a, b) read: the key/value heads of whole query heads, or the
 * same slice of the shared head when the block is a slice of one query head.
 */
export function kvColumns(kvCols: number, kv: NonNullable<Sharding['kv']>, q: readonly [number, number]): readonly [number, number] {
  const d = kvCols / kv.kvHeads;
  const g = kv.heads / kv.kvHeads;
  const [a, b] = q;
  if (b <= a) return [0, 0];
  const first = Math.floor(a / d);
  const last = Math.floor((b - 1) / d);
  if (first === last && b - a < d) {
    const base = Math.floor(first / g) * d;
    return [base + (a % d), base + ((b - 1) % d) + 1];
  }
  return [Math.floor(first / g) * d, (Math.floor(last / g) + 1) * d];
}

/** The grid axis other than `a`. */
export function otherAxis(a: Axis): Axis {
  return a === 'r' ? 'c' : 'r';
}

/** The sharding with rows and columns swapped: Algorithm 1's mapping for the next fused layer. */
export function transposeMapping(s: Sharding): Sharding {
  const swap = (axes: readonly Axis[]) => axes.map(otherAxis);
  const g = s.granules;
  return withGranules(sharding(swap(s.rows), swap(s.cols), swap(s.partial)), g && { axis: otherAxis(g.axis), count: g.count });
}

// -- per-die geometry -----------------------------------------------------------------------

/** A die's coordinates: row i, column j. */
export interface Die {
  readonly i: number;
  readonly j: number;
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

/** Index of the block die (i, j) holds along an axis list, row-major over the listed axes. */
export function blockIndex(axes: readonly Axis[], grid: Grid, die: Die): number {
  let idx = 0;
  for (const a of axes) idx = idx * (a === 'r' ? grid.rows : grid.cols) + (a === 'r' ? die.i : die.j);
  return idx;
}

/** Half-open range [start, end) of block `index` when `n` items split into `parts` blocks of ceil(n/parts). */
export function blockRange(n: number, parts: number, index: number): readonly [number, number] {
  const size = Math.ceil(n / parts);
  const start = Math.min(n, index * size);
  return [start, Math.min(n, start + size)];
}

/** How each axis of a list splits, outermost first. */
export function splitsOf(axes: readonly Axis[], grid: Grid): Split[] {
  return axes.map((a) => unitsOf(a, grid) ?? (a === 'r' ? grid.rows : grid.cols));
}

/** Blocks a split makes. */
export function splitParts(split: Split): number {
  return typeof split === 'number' ? split : split.length;
}

/**
 * Block `k` of `n` items under one split: the even block of blockRange, or on a weighted split
 * the units from the block's first to its last, of Σ units even blocks.
 */
export function splitRange(n: number, split: Split, k: number): readonly [number, number] {
  if (typeof split === 'number') return blockRange(n, split, k);
  let before = 0;
  for (let x = 0; x < k; x++) before += split[x]!;
  const total = split.reduce((a, b) => a + b, 0);
  const size = Math.ceil(n / total);
  return [Math.min(n, before * size), Math.min(n, (before + split[k]!) * size)];
}

/**
 * Block `index` (row-major over nested splits, outermost first) of `n` items: the outer split
 * cuts [0, n) into blocks, each inner split cuts its parent block again. So a split over `rc`
 * refines the split over `r` even when the sizes do not divide evenly (a die's block along
 * `rc` lies inside its block along `r`); with even sizes it is the flat block of n/parts.
 */
export function nestedRange(n: number, splits: readonly Split[], index: number): readonly [number, number] {
  let [start, end] = [0, n];
  let rest = index;
  let inner = splits.reduce<number>((a, b) => a * splitParts(b), 1);
  for (const split of splits) {
    inner /= splitParts(split);
    const k = Math.floor(rest / inner);
    rest %= inner;
    const [a, b] = splitRange(end - start, split, k);
    [start, end] = [start + a, start + b];
  }
  return [start, end];
}

/** The range of `n` items die `die` holds when `axes` split them. */
export function axisRange(n: number, axes: readonly Axis[], grid: Grid, die: Die): readonly [number, number] {
  const code = axesCode(axes);
  if (code < 0 || n >= 2 ** 40) return nestedRange(n, splitsOf(axes, grid), blockIndex(axes, grid, die));
  // Asked for every die, once per instruction that differs between dies: each block's range
  // is worked out once per grid, axes and length.
  let byKey = RANGES.get(grid);
  if (byKey === undefined) RANGES.set(grid, (byKey = new Map()));
  const key = n * 8 + code;
  let table = byKey.get(key);
  if (table === undefined) byKey.set(key, (table = new Float64Array(2 * span(axes, grid)).fill(-1)));
  const b = blockIndex(axes, grid, die);
  if (table[2 * b] === -1) {
    const [start, end] = nestedRange(n, splitsOf(axes, grid), b);
    table[2 * b] = start;
    table[2 * b + 1] = end;
  }
  return [table[2 * b]!, table[2 * b + 1]!];
}

/** Per grid, per length and axes: each block's range (−1 until asked). */
const RANGES = new WeakMap<Grid, Map<number, Float64Array>>();

/** The rows and columns of a tensor's 2-D view that die `die` holds under `s`. */
export function tileOf(t: TensorType, s: Sharding, grid: Grid, die: Die): { rows: readonly [number, number]; cols: readonly [number, number] } {
  const { rows, cols } = matrixView(t);
  if (s.kv) return { rows: axisRange(rows, s.rows, grid, die), cols: kvColumns(cols, s.kv, axisRange(queryWidth(cols, s.kv), s.cols, grid, die)) };
  return { rows: specRange(rows, s, 'rows', grid, die), cols: specRange(cols, s, 'cols', grid, die) };
}

/**
 * The dies of `die`'s group over `axes`, in ring order. One axis: the die's column (axis r)
 * or row (axis c), in index order — the bypass ring (§III-A b). Both axes: every die, in a
 * snake order (row 0 left to right, row 1 right to left, ...), so ring neighbours are
 * adjacent dies wherever the grid allows.
 */
export function groupOf(axes: readonly Axis[], grid: Grid, die: Die): Die[] {
  if (axes.length === 0) return [die];
  if (axes.length === 1) {
    return axes[0] === 'r'
      ? Array.from({ length: grid.rows }, (_, i) => ({ i, j: die.j }))
      : Array.from({ length: grid.cols }, (_, j) => ({ i: die.i, j }));
  }
  const out: Die[] = [];
  for (let i = 0; i < grid.rows; i++) {
    for (let k = 0; k < grid.cols; k++) out.push({ i, j: i % 2 === 0 ? k : grid.cols - 1 - k });
  }
  return out;
}

// -- grouped-query layouts: where tiles lie relative to each other ----------------------------

/** Every die of `grid` (row-major). */
export function diesOf(grid: Grid): Die[] {
  const out: Die[] = [];
  for (let i = 0; i < grid.rows; i++) for (let j = 0; j < grid.cols; j++) out.push({ i, j });
  return out;
}

function within(a: readonly [number, number], b: readonly [number, number]): boolean {
  return a[1] <= a[0] || (b[0] <= a[0] && a[1] <= b[1]);
}

function overlaps(a: readonly [number, number], b: readonly [number, number]): boolean {
  return a[0] < b[1] && b[0] < a[1];
}

const WITHIN = new Map<string, boolean>();

/** Whether every die's tile under `inner` lies inside its tile under `outer` (reading it is a local slice). */
export function tilesWithin(t: TensorType, inner: Sharding, outer: Sharding, grid: Grid): boolean {
  const key = `${t.shape.join('x')}|${formatSharding(inner)}|${formatSharding(outer)}|${gridKey(grid)}`;
  let yes = WITHIN.get(key);
  if (yes === undefined) {
    yes = diesOf(grid).every((d) => {
      const a = tileOf(t, inner, grid, d);
      const b = tileOf(t, outer, grid, d);
      return within(a.rows, b.rows) && within(a.cols, b.cols);
    });
    WITHIN.set(key, yes);
  }
  return yes;
}

function gridKey(grid: Grid): string {
  return `${grid.rows}x${grid.cols}|${grid.rowUnits?.join(',') ?? ''}|${grid.colUnits?.join(',') ?? ''}`;
}

const RUNS = new Map<string, number>();

/**
 * The dies a collective over `axes` from `from` to `to` must involve: runs of this many
 * consecutive blocks along the axes (blockIndex order), the smallest that keeps everything a
 * die needs inside its run. A gather needs a die's new tile covered by its run's tiles; a
 * reduction needs every die outside the run to hold nothing of the die's new tile (grouped-
 * query gradients are zero outside a die's own columns). Only grouped-query layouts place
 * tiles so; otherwise, and on weighted axes, the whole axis.
 */
export function runLength(t: TensorType, from: Sharding, to: Sharding, axes: readonly Axis[], reduces: boolean, grid: Grid): number {
  const n = span(axes, grid);
  if ((!from.kv && !to.kv) || weighted(axes, grid)) return n;
  const key = `${t.shape.join('x')}|${formatSharding(from)}|${formatSharding(to)}|${axes.join('')}|${reduces}|${gridKey(grid)}`;
  let best = RUNS.get(key);
  if (best !== undefined) return best;
  best = n;
  const dies = diesOf(grid);
  // Dies along the axes with the other coordinates of `d`, by block index.
  const along = (d: Die) => Array.from({ length: n }, (_, k) => dieAtBlock(axes, grid, k, d));
  const fits = (g: number) =>
    dies.every((d) => {
      const first = Math.floor(blockIndex(axes, grid, d) / g) * g;
      const line = along(d);
      const want = tileOf(t, to, grid, d);
      if (reduces) {
        return line.every((e, k) => {
          if (k >= first && k < first + g) return true;
          const has = tileOf(t, from, grid, e);
          return !(overlaps(has.rows, want.rows) && overlaps(has.cols, want.cols));
        });
      }
      // Covered: the run's tiles (all holding the wanted rows) cover the wanted columns.
      const spans = line
        .slice(first, first + g)
        .map((e) => tileOf(t, from, grid, e))
        .filter((h) => within(want.rows, h.rows))
        .map((h) => h.cols)
        .sort((a, b) => a[0] - b[0]);
      let reach = want.cols[0];
      for (const [a, b] of spans) if (a <= reach) reach = Math.max(reach, b);
      return reach >= want.cols[1];
    });
  for (let g = 1; g < n; g++) {
    if (n % g === 0 && fits(g)) {
      best = g;
      break;
    }
  }
  RUNS.set(key, best);
  return best;
}
