// tile2d: map every op onto the R×C die grid by giving each operand and result a sharding
// (sharding.ts). A Linear y = x·w with w sharded [b, a] reads x as [-, b] and produces a
// partial sum [-, a]~b; its gradients follow from the same w tiling (dx = dy·wᵀ is partial
// over a; dw = xᵀ·dy lands exactly on w's tile, so it accumulates in place, Algorithm 1):
//
//   hecaton   stage N: w [c, r]  (W[j, i] on die [i, j])   stage T: w [r, c]  (transposed)
//   megatron  column-parallel: w [-, rc]                  row-parallel: w [rc, -]
//   torus     as megatron (only the all-reduce algorithm differs, in collectives)
//   optimus   every Linear as a 2-D SUMMA product: x, w and y all [r, c]
//
// Stages alternate along the dataflow — each Linear takes the orientation opposite to the
// Linear its input comes from — so Algorithm 1's "next fused layer uses the transposed
// mapping" and Megatron's column/row pairs both fall out. Hecaton restarts the alternation
// at every fusion group (its inputs come from DRAM in any layout) and picks the start that
// moves fewer bytes on a non-square grid (Fig. 11). Attention cores keep whole heads on a
// die: heads are split over all dies, in the order the producing reduce-scatter leaves them,
// and dealt out whole where they split evenly over none (HeadWeights). Where that would slice
// each head over several dies, hecaton may instead keep whole heads on one axis and split the
// queries over the other, whichever moves fewer bytes (query-split.ts).
// Elementwise ops follow their first operand; data movement other than a last-axis split runs
// on replicated data. Ops that only touch weights in DRAM (embedding lookups, weight views)
// run beside DRAM and are marked `tile2d.dram`.

import type { Module, Op, Value } from '../ir/module.js';
import { opDef } from '../ir/ops.js';
import type { Target } from '../target/target.js';
import type { Pass, Strategy } from './pass.js';
import { formatSharding, granuleUnits, gridFor, groupedHeads, kvSharding, matrixView, otherAxis, REPLICATED, reshard, sameSharding, sharding, span, transposeMapping, units, weighted, withGranules, type Axis, type Grid, type Sharding } from './sharding.js';
import { error, errorAt } from '../diagnostics/diagnostic.js';
import { isForward, placementKey } from './units.js';
import { activationValues } from './activations.js';
import { bytes } from '../util/format.js';
import { QuerySplits, ropeLayout, type Candidates, type QuerySplitChoice } from './query-split.js';
import { balanceOf, gridOf } from './balance.js';

export type Orientation = 'N' | 'T';

export interface OpTiling {
  /** One spec per operand; undefined where the operand is read from DRAM as it lies (weights in DRAM, ids). */
  readonly in: readonly (Sharding | undefined)[];
  readonly out: readonly Sharding[];
  readonly orient?: Orientation;
  /** Runs beside DRAM, not on the dies' buffers (embedding lookups, weight views). */
  readonly dram?: boolean;
  /** An attention core that split its queries rather than slice its heads, and why (QuerySplits). */
  readonly queries?: QuerySplitChoice;
}

export type TilingPlan = Map<Op, OpTiling>;

/** Weight sharding [b, a] for a Linear of the given orientation. */
export function weightSpec(strategy: Strategy, orient: Orientation): Sharding {
  switch (strategy) {
    case 'hecaton':
      return orient === 'N' ? sharding(['c'], ['r']) : sharding(['r'], ['c']);
    case 'megatron':
    case 'torus':
      return orient === 'N' ? sharding([], ['r', 'c']) : sharding(['r', 'c'], []);
    case 'optimus':
      return sharding(['r'], ['c']);
  }
}

/** Where activations live when a strategy has no other reason: Algorithm 1's X[i, j], or replicated for 1-D TP. */
export function homeSpec(strategy: Strategy): Sharding {
  return strategy === 'megatron' || strategy === 'torus' ? REPLICATED : sharding(['r'], ['c']);
}

/**
 * A partial sum made whole: hecaton and optimus reduce-scatter onto the rows, 1-D TP
 * all-reduces; so does every strategy for a vector (one row: a norm's gamma gradient).
 */
export function resolvePartial(s: Sharding, strategy: Strategy, rank = 2): Sharding {
  if (s.partial.length === 0) return s;
  // Grouped-query contributions are summed into the key/value tiles they are for.
  if (s.kv) return kvSharding(sharding(s.rows, s.cols), s.kv.heads, s.kv.kvHeads);
  // Heads dealt over a partial axis (a sum over heads) are summed away: that axis then splits another dimension.
  const like = s.granules && s.partial.includes(s.granules.axis) ? REPLICATED : s;
  if (strategy === 'megatron' || strategy === 'torus' || rank < 2) return reshard(like, s.rows, s.cols);
  if (s.rows.length === 0) return reshard(like, s.partial, s.cols);
  return reshard(like, s.rows, [...s.cols, ...s.partial]);
}

/**
 * What a strategy cannot map (paper §V-A c): Optimus pairs row and column blocks, so it needs
 * a square grid; Megatron's flat ring is a Hamiltonian cycle, which a grid has only with an
 * even number of dies. Hecaton and the torus ring take any R×C.
 */
export function checkGrid(strategy: Strategy, grid: Grid): void {
  const n = grid.rows * grid.cols;
  if (strategy === 'optimus' && grid.rows !== grid.cols) {
    throw error('GY3003', `optimus needs a square grid of dies (its SUMMA steps pair row and column blocks); ${grid.rows}x${grid.cols} is not square`);
  }
  if (strategy === 'megatron' && n > 1 && n % 2 === 1) {
    throw error('GY3003', `megatron's flat ring needs an even number of dies to close a ring through neighbours; ${grid.rows}x${grid.cols} has ${n}`);
  }
}

/** Every split dimension must give each die at least one row or column. */
function checkSplits(plan: TilingPlan, grid: Grid, strategy: Strategy): void {
  const check = (op: Op, v: Value, s: Sharding | undefined) => {
    if (!s) return;
    const view = matrixView(v.type);
    // Grouped-query keys and values follow the queries' split: count the queries' columns.
    const cols = s.kv ? (view.cols / s.kv.kvHeads) * s.kv.heads : view.cols;
    const g = gridFor(s, grid);
    const tooFew = (dim: string, axes: readonly Axis[], n: number) => {
      const over = weighted(axes, g) ? `${span(axes, g)} dies (${units(axes, g)} shares by throughput)` : `${span(axes, g)} dies`;
      throw errorAt(op.loc, 'GY3003', `${strategy} splits the ${n} ${dim} of '${v.name}' (${op.kind}) over ${over}, fewer than one per die; use a smaller grid`);
    };
    if (units(s.rows, g) > view.rows) tooFew('rows', s.rows, view.rows);
    if (units(s.cols, g) > cols) tooFew('columns', s.cols, cols);
  };
  for (const [op, t] of plan) {
    if (t.dram) continue;
    op.operands.forEach((v, i) => check(op, v, t.in[i]));
    op.results.forEach((r, i) => check(op, r, t.out[i]));
  }
}

export function planTiling(m: Module, target: Target, strategy: Strategy): TilingPlan {
  const grid: Grid = gridOf(target, m);
  checkGrid(strategy, grid);
  const plan: TilingPlan = new Map();
  const orient = orientations(m, strategy, grid);
  const home = homeOfGroups(orient, strategy);
  const heads = new HeadWeights(m, strategy, grid);
  const splits = new QuerySplits(m, target, strategy, grid);
  const acts = activationValues(m);
  // Values made beside DRAM are read into whatever tiles their consumer wants.
  const outOf = (v: Value): Sharding | undefined => {
    const t = v.def && plan.get(v.def);
    return t && !t.dram ? t.out[v.def!.results.indexOf(v)] : undefined;
  };
  // Declarations (inputs, weights, optimizer state) live in DRAM until an op reads them.
  const dramSide = (v: Value): boolean => (v.def ? plan.get(v.def)?.dram === true : true);
  for (const op of m.ops()) {
    const dram = runsBesideDram(op, (v) => acts.has(v), dramSide);
    const t = dram ? { in: op.operands.map(() => undefined), out: op.results.map(() => REPLICATED), dram } : tileOp(op, strategy, orient, outOf, home(op), grid, heads, splits);
    // An operand read for its shape only is read by no die: no tile, so no collective brings it.
    const specs = opDef(op.kind).operands;
    const shapeOnly = (k: number) => specs[Math.min(k, specs.length - 1)]?.shapeOnly === true;
    plan.set(op, op.operands.some((_, k) => shapeOnly(k)) ? { ...t, in: t.in.map((s, k) => (shapeOnly(k) ? undefined : s)) } : t);
  }
  checkSplits(plan, grid, strategy);
  return plan;
}

/**
 * Ops that run beside DRAM rather than on the dies: embedding lookups and their scatter-add
 * gradients (the tables never enter the buffers), updates of such tables, and anything else
 * that touches no activation (weight views such as a tied head's transpose, sums of weight
 * gradients). GEMMs and attention always run on the dies.
 */
function runsBesideDram(op: Op, isAct: (v: Value) => boolean, dramSide: (v: Value) => boolean): boolean {
  switch (op.kind) {
    case 'embedding':
    case 'embedding_grad':
    case 'gather_grad':
      return true;
    case 'linear':
    case 'linear_grad':
    case 'attention':
    case 'attention_grad':
      return false;
    case 'sgd':
    case 'adam':
      return dramSide(op.operands[1]!);
    default:
      return !op.operands.some(isAct);
  }
}

/**
 * The layout an op falls back to when none of its operands is tiled (the residual stream as
 * it comes from DRAM): the scattered input of its group's first GEMM — Algorithm 1's X[i, j]
 * for a group that starts in orientation N, its transpose for one that starts in T — so the
 * first all-gather of the group is along one ring.
 */
function homeOfGroups(orient: ReadonlyMap<Op, Orientation>, strategy: Strategy): (op: Op) => Sharding {
  const start = new Map<unknown, Orientation>();
  for (const [l, o] of orient) if (!start.has(l.notes?.['fuse.group'])) start.set(l.notes?.['fuse.group'], o);
  return (op) => {
    const home = homeSpec(strategy);
    return strategy === 'hecaton' && start.get(op.notes?.['fuse.group']) === 'T' ? transposeMapping(home) : home;
  };
}

function tileOp(op: Op, strategy: Strategy, orient: ReadonlyMap<Op, Orientation>, outOf: (v: Value) => Sharding | undefined, home: Sharding, grid: Grid, heads: HeadWeights, splits: QuerySplits): OpTiling {
  const weightStage = (w: Value | undefined) => (w ? orient.get(stageOfWeight(op, w, orient)!) : undefined);
  switch (op.kind) {
    case 'linear': {
      const o = orient.get(op) ?? 'N';
      return linearTiling(op, strategy, o, heads.weightOf(op, weightSpec(strategy, o), outOf, grid));
    }
    case 'linear_grad': {
      const o = weightStage(op.operands[1]) ?? 'N';
      return linearGradTiling(op, strategy, o, heads.decided.get(op.operands[1]!));
    }
    case 'attention':
    case 'attention_grad': {
      if (strategy === 'optimus') return summaAttention(op, outOf(op.operands[0]!), grid);
      const s = evenHeads(headSpec(outOf(op.operands[0]!)), op, grid);
      const c = s.cols.length === 2 ? candidates(op, s.cols[0]!, grid) : undefined;
      const choice = c && splits.choice(op, c);
      if (choice?.splits) return { ...attentionTiling(op, c!.heads, c!.over), queries: choice };
      return attentionTiling(op, s, queryAxes(op, s, [], grid));
    }
    default:
      break;
  }
  // Splitting or joining the last axis keeps the sharding: a Linear's output columns are
  // arranged (by permuting its weight's columns) so each die's block holds its share of
  // every piece, as Megatron arranges Q, K and V per head.
  if ((op.kind === 'split' || op.kind === 'concat') && isLastAxis(op)) {
    const s = narrowestPiece(outOf(op.operands[0]!) ?? home, op.kind === 'split' ? op.results : op.operands, grid);
    return { in: op.operands.map(() => s), out: op.results.map(() => s) };
  }
  if (op.kind === 'reduce' && reducesRowsOnly(op)) return rowReduceTiling(op, strategy, outOf, home);
  if (op.kind === 'slice_grad') {
    // Each die fills its own tile of dx — zeros, and the part of the (small) dy window in it —
    // laid out as the forward x was, so the gradient meets the layout its consumers expect.
    const x = outOf(op.operands[0]!);
    return { in: [undefined, REPLICATED], out: [x ? resolvePartial(x, strategy) : home] };
  }
  if (opDef(op.kind).category === 'vector' || op.kind === 'sgd' || op.kind === 'adam') return vectorTiling(op, strategy, outOf, home, grid, splits);
  // Generic data movement on replicated data.
  return { in: op.operands.map(() => REPLICATED), out: op.results.map(() => REPLICATED) };
}

/**
 * Optimus (2-D SUMMA): y[i, j] = Σ_k x[i, k]·w[k, j], so die [i, j] sees all of its block row
 * of x (broadcast along its row of dies) and block column of w (broadcast along its column);
 * the broadcasts move both activations and weights (Table III's γ and ξ terms).
 *
 * Backward, dy stays in its blocks and the products are reduced instead (SUMMA's ABᵀ and
 * AᵀB forms): die [i, j] multiplies its block dy[i, j] by the column block w[:, j] it gathers
 * as in forward, a part of dx's row block i that sums over j (partial over c, reduced along
 * the row of dies); and the row block x[i, :] it gathers as in forward by dy[i, j], a part of
 * dw's column block j that sums over i (partial over r, reduced along the column). Each
 * Linear's backward thus broadcasts x and w and reduces dx (|x|) and dw (|w|): twice its
 * forward traffic whatever dy's width, as Table III's backward columns have it. (Broadcasting
 * dy along the rows instead would move the QKV projection's 3h-wide gradient, and dx[i, j]
 * would need w's row block j, which die [i, j] does not gather.)
 */
function summaTiling(op: Op, heads?: Sharding['granules']): OpTiling {
  // Heads dealt over the columns (summaHeads): every spec whose c splits the weight's columns.
  const dealt = (s: Sharding) => withGranules(s, heads);
  const xRow = sharding(['r'], []);
  const wCol = dealt(sharding([], ['c']));
  const blocks = dealt(sharding(['r'], ['c']));
  if (op.kind === 'linear') return { in: [xRow, wCol, ...(op.operands[2] ? [wCol] : [])], out: [blocks], orient: 'N' };
  const grads = [dealt(sharding(['r'], [], ['c'])), dealt(sharding([], ['c'], ['r'])), dealt(sharding([], ['c'], ['r']))];
  const wrt = (op.attrs.wrt as readonly number[] | undefined) ?? [];
  return { in: [xRow, wCol, ...(op.operands.length === 4 ? [wCol] : []), blocks], out: wrt.map((i) => grads[Math.min(i, 2)]!), orient: 'N' };
}

/**
 * Optimus keeps attention on its 2-D blocks: queries split by rows over r, heads by columns
 * over c; each die gathers the keys and values of its heads along its column (a row block of
 * queries attends to the whole sequence). Backward, dk and dv sum over the query blocks.
 */
function summaAttention(op: Op, q: Sharding | undefined, grid: Grid): OpTiling {
  // Queries from projections that dealt the heads over the columns keep them so.
  const g = q?.granules;
  const heads = g?.axis === 'c' && g.count === op.attrs.heads ? withGranules(sharding([], ['c']), g) : evenHeads(sharding([], ['c']), op, grid);
  return attentionTiling(op, heads, queryAxes(op, heads, ['r'], grid));
}

/**
 * An attention core with its heads split by `heads` and its query rows by `over`: each die
 * reads the keys and values of its heads whole (gathered along `over`), and backward its dk
 * and dv are sums over the query blocks (keysAndValues).
 */
function attentionTiling(op: Op, heads: Sharding, over: readonly Axis[]): OpTiling {
  const blocks = over.length ? reshard(heads, over, heads.cols) : heads;
  const kv = keysAndValues(op, heads, over);
  const maskAt = op.operands.length === (op.kind === 'attention' ? 4 : 5) ? 3 : -1;
  const ins = op.operands.map((_, i) => (i === maskAt ? REPLICATED : i === 1 || i === 2 ? kv.in : blocks));
  if (op.kind === 'attention') return { in: ins, out: [blocks] };
  const wrt = (op.attrs.wrt as readonly number[] | undefined) ?? [];
  return { in: ins, out: wrt.map((i) => (i === 0 ? blocks : kv.grad)) };
}

/**
 * The axes that split an attention core's query rows: `given` (optimus's r), then the grid
 * axes its heads leave unused — a core whose heads split over fewer axes than the grid has
 * (4 heads on 3×3, 12 on 4×4) splits its queries over the rest rather than compute every head
 * alike on their dies. Only axes that split each sample's sequence evenly on an even grid;
 * the others stay replicated.
 */
function queryAxes(op: Op, heads: Sharding, given: readonly Axis[], grid: Grid): Axis[] {
  const seq = op.operands[0]!.type.shape.at(-2)!;
  const spare = (['r', 'c'] as const).filter((a) => !heads.cols.includes(a) && !given.includes(a));
  const over = [...given, ...spare];
  if (spare.length && !weighted(over, grid) && seq % span(over, grid) === 0) return over;
  return [...given];
}

/**
 * How an attention core whose heads are split by `heads` reads its keys and values, and lays
 * out their gradients. With as many key/value heads as query heads, like the queries (dk and
 * dv partial over `over`, the axes splitting the query rows). With grouped-query attention,
 * each die reads the key/value columns its query heads share (kvSharding: dies whose queries
 * share a head hold the same columns), and its dk and dv are contributions to those columns
 * (zero outside them), to be summed over all the dies.
 */
function keysAndValues(op: Op, heads: Sharding, over: readonly Axis[] = []): { in: Sharding; grad: Sharding } {
  const h = op.attrs.heads as number;
  const kvHeads = (op.attrs.kv_heads as number | undefined) ?? h;
  if (kvHeads === h) return { in: heads, grad: reshard(heads, heads.rows, heads.cols, over) };
  return { in: kvSharding(heads, h, kvHeads), grad: kvSharding(heads, h, kvHeads, [...over, ...heads.cols]) };
}

/** `w` is the weight's spec (weightSpec, with granules when its rows or columns are heads dealt unevenly). */
function linearTiling(op: Op, strategy: Strategy, o: Orientation, w: Sharding): OpTiling {
  if (strategy === 'optimus') return summaTiling(op, w.granules);
  const x = reshard(w, [], w.rows);
  const y = reshard(w, [], w.cols, w.rows);
  // A bias is added once per reduction group (by the die at index 0 of it), so it joins the partial sum.
  return { in: [x, w, ...(op.operands[2] ? [reshard(w, [], w.cols)] : [])], out: [y], orient: o };
}

function linearGradTiling(op: Op, strategy: Strategy, o: Orientation, decided: Sharding | undefined): OpTiling {
  if (strategy === 'optimus') return summaTiling(op, decided?.granules);
  const w = decided ?? weightSpec(strategy, o);
  const x = reshard(w, [], w.rows);
  const dy = reshard(w, [], w.cols);
  // dx = dy·wᵀ is partial over w's column axes; dw = xᵀ·dy lands on w's tile; db sums dy's rows.
  const grads: Sharding[] = [reshard(w, [], w.rows, w.cols), w, reshard(w, [], w.cols)];
  const hasBias = op.operands.length === 4;
  const wrt = (op.attrs.wrt as readonly number[] | undefined) ?? [];
  return {
    in: [x, w, ...(hasBias ? [sharding([], w.cols)] : []), dy],
    out: wrt.map((i) => grads[Math.min(i, 2)]!),
    orient: o,
  };
}

/**
 * Attention keeps whole heads on a die: the head axis is split over every die, in the order
 * the producing reduce-scatter leaves it ([-, r]~c becomes [-, rc], §IV-C Step 10).
 */
function headSpec(q: Sharding | undefined): Sharding {
  if (q && q.rows.length === 0 && q.cols.length + q.partial.length === 2) return reshard(q, [], [...q.cols, ...q.partial]);
  // Queries split by rows and whole heads (a rotary embedding under split queries): the head axis first.
  if (q && !q.kv && !q.granules && q.rows.length === 1 && q.cols.length === 1 && q.partial.length === 0) return sharding([], [q.cols[0]!, q.rows[0]!]);
  // Whole heads split along one axis already (rotary embeddings' layout): split them further
  // along the other, a local slice.
  if (q && q.rows.length === 0 && q.partial.length === 0 && q.cols.length === 1) return reshard(q, [], [q.cols[0]!, otherAxis(q.cols[0]!)]);
  return sharding([], ['r', 'c']);
}

/**
 * Elementwise and row-wise ops run where their data already is. The layout comes from an
 * operand made in the same fusion group and phase when there is one — an operand reloaded
 * from DRAM can be read into any layout for free — and among those from the most finely
 * split one: cutting a replicated operand down to a tile is a local slice, while the
 * reverse would need an all-gather.
 */
function vectorTiling(op: Op, strategy: Strategy, outOf: (v: Value) => Sharding | undefined, home: Sharding, grid: Grid, splits: QuerySplits): OpTiling {
  const rank = Math.max(...op.results.map((r) => r.type.shape.length));
  const tiled = op.operands.filter((v) => v.type.shape.length === rank && outOf(v));
  const local = tiled.filter((v) => samePlacement(v.def!, op));
  const split = (v: Value) => {
    const s = outOf(v)!;
    return s.rows.length + s.cols.length + s.partial.length;
  };
  // A sum of partial sums laid out alike stays partial, reduced once after it rather than once
  // per operand: reduce(a) + reduce(b) = reduce(a + b). Gradients reaching one value through
  // separate projections add up this way (Llama's dx through wq, wk and wv, or w_gate and w_up).
  if (op.kind === 'add' && local.length === op.operands.length) {
    const first = outOf(local[0]!)!;
    if (first.partial.length > 0 && local.every((v) => sameSharding(outOf(v)!, first))) return { in: local.map(() => first), out: [first] };
  }
  const lead = [...(local.length ? local : tiled)].sort((a, b) => split(b) - split(a))[0];
  // Replicated data (from generic data movement) is cut down to the strategy's home layout.
  const from = lead && split(lead) > 0 ? outOf(lead)! : home;
  // Rotary embeddings sit between the Q/K projections and attention: reduce their partial
  // sums straight into attention's head layout rather than onto the rows.
  const s = op.kind === 'rope' || op.kind === 'rope_grad' ? ropeTiling(op, from, grid, splits) : resolvePartial(from, strategy, rank);
  const lower = (t: Value) => reshard(s, [], t.type.shape.length >= 1 ? s.cols : []);
  return {
    in: op.operands.map((v) => (v.type.shape.length === rank ? s : lower(v))),
    // A lower-rank result (a norm's gamma gradient) sums over the rows: partial over their axes.
    out: op.results.map((r) => (r.type.shape.length === rank ? s : reshard(s, [], s.cols, s.rows))),
  };
}

/**
 * Heads split over dies must split evenly: whole heads per die, or equal slices of one head
 * per die, so that no die's columns straddle two heads and the dies sharing a head form the
 * groups its score all-reduce runs on. Heads already dealt (granules) are kept; plain
 * multi-head attention that splits evenly over no prefix of the axes is dealt (dealtHeads);
 * otherwise the longest prefix of the head axes that splits evenly, the attention core
 * replicated over the rest (4 heads on a 3×3 grid run on every die).
 */
function evenHeads(s: Sharding, op: Op, grid: Grid): Sharding {
  // Heads dealt out whole were checked when dealt (dealtHeads).
  if (s.granules) return s;
  const heads = op.attrs.heads as number;
  const d = op.operands[0]!.type.shape.at(-1)! / heads;
  // Plain multi-head attention over both axes of an even grid: dealt rather than replicated.
  const plainHeads = ((op.attrs.kv_heads as number | undefined) ?? heads) === heads;
  if (plainHeads && s.cols.length === 2 && !weighted(s.cols, grid) && !splitsEvenly(heads, d, span(s.cols, grid))) {
    const g = dealtHeads(s.cols[0]!, heads, d, grid);
    if (g) return withGranules(s, g);
  }
  // On a weighted axis a die holds several units: they must be whole heads, not slices.
  const even = (axes: readonly Axis[]) => {
    const p = units(axes, grid);
    return heads % p === 0 || (!weighted(axes, grid) && p % heads === 0 && d % (p / heads) === 0);
  };
  let n = s.cols.length;
  while (n > 0 && !even(s.cols.slice(0, n))) n--;
  return n === s.cols.length ? s : sharding(s.rows, s.cols.slice(0, n));
}

/**
 * Heads that split over the grid neither into whole heads per die nor into equal slices of
 * one (96 heads on 64×64 dies) would leave the attention core computed alike on many dies.
 * Instead they are dealt out whole (dealtHeads, granules in sharding.ts): over the first
 * head axis, as evenly as whole heads allow — 1 or 2 per row of 64 — the other axis splitting
 * each block's heads evenly; or, when the first axis splits them evenly, within each block
 * over the other axis (20 heads on 4×4: 5 per row, 1, 1, 1 and 2 per die). Where the
 * projections' weight columns split the dealt axis, the query, key and value projections'
 * weights take the granules on their columns and the output projection's on its rows (its
 * input arrives so), and their gradients follow; otherwise (hecaton dealing over the inner
 * axis) the weights stay even and the attention core deals the heads itself (evenHeads).
 * Optimus, whose columns split heads and rows queries, deals them over the columns only
 * (summaHeads): its q/k/v weight columns take the granules, its output projection does not.
 *
 * Only plain multi-head attention whose q, k and v come straight from Linears (through
 * last-axis splits and rotary embeddings) is dealt so, on packages of one die type, and only
 * when every die gets whole heads or an equal slice of one; anything else keeps evenHeads'
 * layout, replicated over the axes that would split heads unevenly.
 */
export class HeadWeights {
  /** Query, key and value projection weights: their attention's heads and head width. */
  private readonly projections = new Map<Value, { readonly heads: number; readonly width: number }>();
  /** Output projection weights (and biases) of those attention cores. */
  private readonly outputs = new Map<Value, { readonly heads: number; readonly width: number }>();
  /** The spec each granular weight was given in forward (its gradients use the same). */
  readonly decided = new Map<Value, Sharding>();
  /** Optimus splits heads over the columns of dies only (its rows split the queries). */
  private readonly optimus: boolean;

  constructor(m: Module, strategy: Strategy, grid: Grid) {
    this.optimus = strategy === 'optimus';
    if (grid.rowUnits || grid.colUnits) return;
    const dies = grid.rows * grid.cols;
    for (const op of m.ops()) {
      if (op.kind !== 'attention') continue;
      const heads = op.attrs.heads as number;
      if (((op.attrs.kv_heads as number | undefined) ?? heads) !== heads) continue;
      const width = op.operands[0]!.type.shape.at(-1)! / heads;
      if (splitsEvenly(heads, width, dies)) continue;
      const weights = op.operands.slice(0, 3).map(projectionWeight);
      if (!weights.every((w) => w !== undefined)) continue;
      for (const w of weights) this.projections.set(w!.weight, { heads, width });
      for (const w of weights) if (w!.bias) this.projections.set(w!.bias, { heads, width });
      for (const user of m.users(op.results[0]!)) {
        if (user.kind === 'linear' && user.operands[0] === op.results[0]) for (const w of user.operands.slice(1)) this.outputs.set(w, { heads, width });
      }
    }
  }

  /**
   * For the fusion pass, before any orientation is chosen: how much larger than an even share
   * the largest tile of each weight dealt in heads may be, ⌈H/n⌉·n/H for the worst grid axis
   * that can deal them (4/3 for 96 heads over 64 rows).
   */
  static imbalance(m: Module, strategy: Strategy, grid: Grid): Map<Value, number> {
    const h = new HeadWeights(m, strategy, grid);
    const out = new Map<Value, number>();
    for (const [w, { heads, width }] of [...h.projections, ...h.outputs]) {
      // The heads a weight's largest tile holds over an even share, for each orientation's layout.
      const factor = (o: Orientation) => {
        if (strategy === 'optimus') {
          const g = h.projections.has(w) ? summaHeads(heads, grid) : undefined;
          return g ? (Math.ceil(heads / grid.cols) * grid.cols) / heads : 1;
        }
        const axes = weightSpec(strategy, o).cols;
        const g = axes[0] === undefined ? undefined : dealtHeads(axes[0], heads, width, grid);
        if (g === undefined || !axes.includes(g.axis)) return 1;
        const n = span([g.axis], grid);
        return (Math.ceil(g.count / n) * n) / g.count;
      };
      const worst = Math.max(factor('N'), factor('T'));
      if (worst > 1) out.set(w, worst);
    }
    return out;
  }

  /** The weight spec of a forward Linear: `w`, with granules when its columns or rows are such heads. */
  weightOf(op: Op, w: Sharding, outOf: (v: Value) => Sharding | undefined, grid: Grid): Sharding {
    const weight = op.operands[1]!;
    const proj = this.projections.get(weight);
    let out = w;
    if (this.optimus) {
      // SUMMA's weight columns split over c, as its attention splits heads: whole heads per column.
      const g = proj ? summaHeads(proj.heads, grid) : undefined;
      if (g) out = withGranules(sharding([], ['c']), g);
    } else if (proj) {
      // Dealt over an axis the weight's columns do not use (hecaton's inner axis, which splits
      // the weight's rows), the attention core deals them itself and the weight stays even.
      const g = w.cols[0] === undefined ? undefined : dealtHeads(w.cols[0], proj.heads, proj.width, grid);
      if (g && w.cols.includes(g.axis)) out = withGranules(w, g);
    } else {
      // The output projection: its input's columns are heads dealt over axes its weight's
      // rows split alike (the input's leading column axes).
      const x = outOf(op.operands[0]!);
      const g = x?.granules;
      if (g && w.rows.includes(g.axis) && w.rows.every((a, k) => x!.cols[k] === a)) out = withGranules(w, g);
    }
    if (out.granules) this.decided.set(weight, out);
    return out;
  }
}

/** The weight (and bias) a projection reads: q, k or v straight from a Linear, through last-axis splits and rotary embeddings. */
function projectionWeight(v: Value): { weight: Value; bias: Value | undefined } | undefined {
  let x: Value = v;
  for (;;) {
    const op = x.def;
    if (!op) return undefined;
    if (op.kind === 'linear') return { weight: op.operands[1]!, bias: op.operands[2] };
    if (op.kind !== 'rope' && (op.kind !== 'split' || !isLastAxis(op))) return undefined;
    x = op.operands[0]!;
  }
}

/**
 * How `heads` heads of width `width` whose head axes start with `first` (the other axis
 * splitting what it leaves) are dealt out whole when no even split exists: over `first`, as
 * evenly as whole heads allow, each block split evenly along the other axis (96 heads on 64
 * rows: 1 or 2 per row, its 64 dies sharing them); or, when `first` splits them evenly, over
 * the other axis within each block (20 heads on 4×4: 5 per row, 1, 1, 1 and 2 per die).
 * Undefined when neither leaves every die whole heads or an equal slice of one.
 */
function dealtHeads(first: Axis, heads: number, width: number, grid: Grid): Sharding['granules'] {
  const n = span([first], grid);
  const inner = (grid.rows * grid.cols) / n;
  const even = (u: number) => u % inner === 0 || (inner % u === 0 && width % (inner / u) === 0);
  if (heads >= n && granuleUnits(heads, n).every(even)) return { axis: first, count: heads };
  const perBlock = heads / n;
  if (heads % n === 0 && perBlock > inner) return { axis: otherAxis(first), count: perBlock };
  return undefined;
}

/** Optimus's heads over the columns of dies when they do not divide them: whole heads dealt over the columns. */
function summaHeads(heads: number, grid: Grid): Sharding['granules'] {
  return heads % grid.cols !== 0 && heads > grid.cols ? { axis: 'c', count: heads } : undefined;
}

/** Whether `heads` heads of width `width` split evenly over `dies` dies: whole heads, or equal slices of one. */
function splitsEvenly(heads: number, width: number, dies: number): boolean {
  return heads % dies === 0 || (dies % heads === 0 && width % (dies / heads) === 0);
}

/**
 * Rotary embeddings rotate pairs of dimensions half a head apart, so each die needs whole
 * heads: the longest prefix of the head axes that splits the heads into whole ones (the
 * attention core then takes its slice of a head locally).
 */
function wholeHeads(s: Sharding, heads: number, grid: Grid): Sharding {
  // Dealt heads (granules) count as units: whole heads per block by construction.
  const g = gridFor(s, grid);
  let n = s.cols.length;
  while (n > 0 && heads % units(s.cols.slice(0, n), g) !== 0) n--;
  return reshard(s, s.rows, s.cols.slice(0, n));
}

/**
 * The two layouts an attention core chooses between (QuerySplits) when its heads, split over
 * both axes starting with `first`, would fall into slices of one head per die, and whole heads
 * split evenly over `first` alone while the queries split over the other.
 */
function candidates(op: Op, first: Axis, grid: Grid): Candidates | undefined {
  const slices = evenHeads(sharding([], [first, otherAxis(first)]), op, grid);
  const heads = op.attrs.heads as number;
  if (slices.granules || slices.cols.length !== 2 || weighted(slices.cols, grid) || heads % span(slices.cols, grid) === 0) return undefined;
  if (heads % span([first], grid) !== 0) return undefined;
  const whole = sharding([], [first]);
  const over = queryAxes(op, whole, [], grid);
  return over.length ? { slices, heads: whole, over } : undefined;
}

/** A rotary embedding takes its attention core's choice (QuerySplits), else whole heads (ropeHeads). */
function ropeTiling(op: Op, from: Sharding, grid: Grid, splits: QuerySplits): Sharding {
  const heads = op.attrs.heads as number;
  const core = splits.attentionOf(op);
  const first = headSpec(from.kv ? sharding(from.rows, from.cols) : from).cols[0]!;
  const c = core && !from.granules ? candidates(core, first, grid) : undefined;
  const split = c && splits.splitsQueries(core!, c) ? ropeLayout(heads, first, grid) : undefined;
  return split ?? ropeHeads(from, heads, grid);
}

/**
 * Rotary embeddings' layout: whole heads per die (wholeHeads). A tensor with fewer heads than
 * the first axis has blocks (grouped-query keys: 8 heads, 32 columns of dies) would otherwise
 * be replicated on every die; instead each run of dies whose blocks fall in one head holds
 * that head (groupedHeads), and the attention core reads its columns from there.
 */
function ropeHeads(from: Sharding, heads: number, grid: Grid): Sharding {
  // Optimus's blocks with heads dealt over the columns hold whole heads already: kept.
  const base = from.kv ? sharding(from.rows, from.cols) : from.granules && from.rows.length ? from : headSpec(from);
  const whole = wholeHeads(base, heads, grid);
  if (whole.cols.length > 0) return whole;
  for (let n = 1; n <= base.cols.length; n++) {
    const g = groupedHeads(base.rows, base.cols.slice(0, n), heads, grid);
    if (g) return g;
  }
  return whole;
}

function samePlacement(a: Op, b: Op): boolean {
  return placementKey(a) === placementKey(b);
}

/** A sum over leading axes that keeps the last: works on row blocks where they lie. */
function reducesRowsOnly(op: Op): boolean {
  const rank = op.operands[0]!.type.shape.length;
  const axes = (op.attrs.axes as readonly number[]).map((a) => (a < 0 ? a + rank : a));
  return op.attrs.fn === 'sum' && rank >= 2 && !axes.includes(rank - 1);
}

/** Each die sums its own rows; the result is partial over the axes that split the rows. */
function rowReduceTiling(op: Op, strategy: Strategy, outOf: (v: Value) => Sharding | undefined, home: Sharding): OpTiling {
  const s = resolvePartial(outOf(op.operands[0]!) ?? home, strategy);
  return { in: [s], out: [reshard(s, [], s.cols, s.rows)] };
}

/**
 * `s`, with its inner column axes dropped until every piece of a last-axis split or concat
 * keeps at least one column per die: a fused projection's narrow key piece (16 columns)
 * cannot follow its query piece over 16 dies.
 */
function narrowestPiece(s: Sharding, pieces: readonly Value[], grid: Grid): Sharding {
  if (s.kv) return s;
  const narrowest = Math.min(...pieces.map((p) => matrixView(p.type).cols));
  let cols = s.cols;
  while (cols.length && units(cols, gridFor(s, grid)) > narrowest) cols = cols.slice(0, -1);
  return cols === s.cols ? s : reshard(s, s.rows, cols, s.partial);
}

function isLastAxis(op: Op): boolean {
  const rank = op.operands[0]!.type.shape.length;
  const axis = op.attrs.axis as number;
  return axis === -1 || axis === rank - 1;
}

/** The forward Linear whose weight a backward op uses. */
function stageOfWeight(_op: Op, w: Value, orient: ReadonlyMap<Op, Orientation>): Op | undefined {
  let byWeight = LINEAR_OF_WEIGHT.get(orient);
  if (byWeight === undefined) {
    // The first Linear (in orientation order) of each weight, found once per plan.
    byWeight = new Map();
    for (const l of orient.keys()) if (!byWeight.has(l.operands[1]!)) byWeight.set(l.operands[1]!, l);
    LINEAR_OF_WEIGHT.set(orient, byWeight);
  }
  return byWeight.get(w);
}

const LINEAR_OF_WEIGHT = new WeakMap<ReadonlyMap<Op, Orientation>, Map<Value, Op>>();

// -- orientations ---------------------------------------------------------------------------

/** Orientation of every forward Linear (see the header). */
export function orientations(m: Module, strategy: Strategy, grid: Grid): Map<Op, Orientation> {
  const linears = m.ops().filter((op) => op.kind === 'linear' && isForward(op));
  const perGroup = strategy === 'hecaton';
  const groupOf = (op: Op) => (op.notes?.['fuse.group'] as number | undefined) ?? 0;
  const chain = new Map<Op, { prev: Op | undefined }>();
  const known = new Map<Value, Op | undefined>();
  for (const l of linears) {
    const prev = previousLinear(l.operands[0]!, known);
    chain.set(l, { prev: prev && (!perGroup || groupOf(prev) === groupOf(l)) ? prev : undefined });
  }
  const starts = new Map<number, Orientation>();
  if (perGroup) {
    for (const g of new Set(linears.map(groupOf))) starts.set(g, cheaperStart(linears.filter((l) => groupOf(l) === g), chain, grid));
  }
  const out = new Map<Op, Orientation>();
  for (const l of linears) {
    const prev = chain.get(l)!.prev;
    out.set(l, prev ? flip(out.get(prev)!) : (starts.get(groupOf(l)) ?? 'N'));
  }
  return out;
}

function flip(o: Orientation): Orientation {
  return o === 'N' ? 'T' : 'N';
}

/**
 * The latest forward Linear whose output reaches `v` without passing another Linear: the
 * largest id over the paths back from `v` (so each value's answer holds for every query and
 * is remembered in `known`; the residual stream would otherwise be walked back to the
 * embedding from every Linear).
 */
function previousLinear(v: Value, known: Map<Value, Op | undefined>): Op | undefined {
  if (known.has(v)) return known.get(v);
  const op = v.def;
  let best: Op | undefined;
  if (op && isForward(op) && op.kind !== 'embedding') {
    if (op.kind === 'linear') best = op;
    else {
      known.set(v, undefined);
      for (const x of op.operands) {
        const p = previousLinear(x, known);
        if (p && (!best || p.id > best.id)) best = p;
      }
    }
  }
  known.set(v, best);
  return best;
}

/** Hecaton on a non-square grid: start the group in whichever orientation sends fewer bytes. */
function cheaperStart(group: readonly Op[], chain: ReadonlyMap<Op, { prev: Op | undefined }>, grid: Grid): Orientation {
  if (grid.rows === grid.cols) return 'N';
  const cost = (start: Orientation) => {
    const o = new Map<Op, Orientation>();
    let total = 0;
    for (const l of group) {
      const prev = chain.get(l)!.prev;
      const mine = prev && o.has(prev) ? flip(o.get(prev)!) : start;
      o.set(l, mine);
      const [gather, reduce]: Axis[] = mine === 'N' ? ['r', 'c'] : ['c', 'r'];
      const xBytes = l.operands[0]!.type.shape.reduce((a, b) => a * b, 1);
      const yBytes = l.results[0]!.type.shape.reduce((a, b) => a * b, 1);
      total += (span([gather], grid) - 1) * xBytes + (span([reduce], grid) - 1) * yBytes;
    }
    return total;
  };
  return cost('T') < cost('N') ? 'T' : 'N';
}

// -- the pass ---------------------------------------------------------------------------------

export function writeTiling(plan: TilingPlan): void {
  for (const [op, t] of plan) {
    const notes: Record<string, string | boolean> = {
      'tile2d.in': t.in.map((s) => (s ? formatSharding(s) : 'dram')).join('; '),
      'tile2d.out': t.out.map(formatSharding).join('; '),
    };
    if (t.orient) notes['tile2d.orient'] = t.orient;
    if (t.dram) notes['tile2d.dram'] = true;
    if (t.queries) notes['tile2d.queries'] = `split: ${bytes(t.queries.queryBytes)} per sample on the busiest link, against ${bytes(t.queries.sliceBytes)} for heads sliced over ${t.queries.perHead} dies`;
    op.notes = { ...op.notes, ...notes };
  }
}

/**
 * Lines for the compile report on attention cores that split their query rows over an axis
 * of dies: those hecaton chose so (QuerySplits: what each layout would move), and those whose
 * heads split evenly over fewer axes than the grid has. None when no core does.
 */
function splitQueries(plan: TilingPlan, strategy: Strategy): string[] {
  const cores = [...plan].filter(([op, t]) => op.kind === 'attention' && t.in[0]!.rows.length > (strategy === 'optimus' ? 1 : 0));
  const axes = (a: readonly Axis[]) => (a.length ? `${a.map((x) => (x === 'r' ? 'rows' : 'columns')).join(' and ')} of dies` : 'no axis');
  const line = (group: typeof cores, why: string) => {
    const [op, t] = group[0]!;
    const q = t.in[0]!;
    return `${group.length} attention cores (${op.attrs.heads as number} heads, as '${op.results[0]!.name}') split their heads over ${axes(q.cols)} and their queries over ${axes(q.rows)}: ${why}`;
  };
  const chosen = cores.filter(([, t]) => t.queries);
  const forced = cores.filter(([, t]) => !t.queries);
  const lines: string[] = [];
  if (chosen.length) {
    const c = chosen[0]![1].queries!;
    lines.push(line(chosen, `gathering their keys and values moves ${bytes(c.queryBytes)} per sample on a die's busiest link, where slicing each head over ${c.perHead} dies would move ${bytes(c.sliceBytes)}`));
  }
  if (forced.length) lines.push(line(forced, "the heads do not split evenly over every die, so each die reads its heads' keys and values whole"));
  return lines;
}

function replicatedAttention(plan: TilingPlan, grid: Grid): string | null {
  const dies = grid.rows * grid.cols;
  const cores = [...plan].filter(([op]) => op.kind === 'attention');
  const repeats = cores.map(([op, t]) => {
    const q = t.in[0]!;
    return { op, times: dies / span([...q.rows, ...q.cols], grid) };
  });
  const worst = repeats.filter((r) => r.times > 1);
  if (worst.length === 0) return null;
  const most = worst.reduce((a, b) => (b.times > a.times ? b : a));
  const heads = most.op.attrs.heads as number;
  return `${worst.length} of ${cores.length} attention cores (${heads} heads, as '${most.op.results[0]!.name}') do not split evenly over the ${grid.rows}x${grid.cols} dies: every part of such a core is computed alike on ${most.times} dies (heads split only into whole heads, or equal slices of one, per die)`;
}

/**
 * A line for the compile report when attention cores deal their heads unevenly (HeadWeights):
 * over which axis, how many heads per block, and how much more than an even share the
 * busiest dies compute. Null when no core does.
 */
function dealtAttention(plan: TilingPlan, grid: Grid): string | null {
  const cores = [...plan].filter(([op, t]) => op.kind === 'attention' && t.in[0]?.granules);
  if (cores.length === 0) return null;
  const [op, t] = cores[0]!;
  const q = t.in[0]!;
  const g = q.granules!;
  const n = span([g.axis], grid);
  const units = granuleUnits(g.count, n);
  const [few, most] = [Math.min(...units), Math.max(...units)];
  const name = (a: Axis) => (a === 'r' ? 'row' : 'column');
  const what = name(g.axis);
  const heads = op.attrs.heads as number;
  const busiest = `the busiest dies do ${(most / (g.count / n)).toFixed(2)}x an even share of attention`;
  const start = `${cores.length} attention cores (${heads} heads, as '${op.results[0]!.name}') deal whole heads`;
  const along = q.rows.length ? `the queries split over each ${what}'s dies` : `each split evenly along its ${what}`;
  if (q.cols[0] === g.axis) return `${start} over the ${n} ${what}s of dies, ${few} or ${most} per ${what}, ${along}: ${busiest} and of its projections`;
  const block = name(q.cols[0]!);
  return `${start} within each ${block} of dies, ${g.count} per ${block}, ${few} or ${most} per die: ${busiest}`;
}

export const tile2d: Pass = {
  name: 'tile2d',
  summary: 'shard every op over the R×C grid (Algorithm 1 for hecaton; 1-D or SUMMA tiling for the baselines)',
  options: {},
  requires: ['fuse.groups'],
  establishes: ['tile2d.grid'],
  run(m, ctx) {
    const plan = planTiling(m, ctx.target, ctx.strategy);
    writeTiling(plan);
    const { rows, cols } = ctx.target.package;
    m.notes['tile2d.grid'] = [rows, cols];
    const counts = { N: 0, T: 0 };
    for (const t of plan.values()) if (t.orient && t.out.length) counts[t.orient]++;
    ctx.report('tile2d', `${ctx.strategy} on ${rows}x${cols}: ${counts.N} GEMMs in orientation N, ${counts.T} in T`);
    const repeated = replicatedAttention(plan, gridOf(ctx.target, m));
    if (repeated !== null) ctx.report('tile2d', repeated);
    const dealt = dealtAttention(plan, gridOf(ctx.target, m));
    if (dealt !== null) ctx.report('tile2d', dealt);
    for (const line of splitQueries(plan, ctx.strategy)) ctx.report('tile2d', line);
    const balance = balanceOf(ctx.target, m).note;
    if (balance !== null) ctx.report('tile2d', balance);
  },
};
