// collectives: make every change of sharding explicit. For each operand, the spec its
// producer left (tile2d.out) is converted to the spec the consumer reads (tile2d.in) by
// reduce-scatters, all-reduces and all-gathers inserted as IR ops, each with its group, its
// algorithm, and the bytes a die sends (collective-cost.ts). Values crossing a fusion group or
// a phase come from DRAM: weights and other DRAM-side values are read straight into the
// consumer's tiles; activations are scattered and then all-gathered over the NoP (hecaton,
// Algorithm 1 steps 2-3 and 6-7; the 1-D baselines likewise, counting the gathers as Table
// III's "additional all-gather" for the activations a weight gradient needs and as part of
// the read, outside Table III, for the rest). A partial sum split along its last axis
// (the fused QKV projection) is reduced once before the split when every piece would be
// reduced alike after it (hoistReductions): the bytes are the same, the link latency is paid once.

import type { Module, Op, Value } from '../ir/module.js';
import { assert } from '../diagnostics/diagnostic.js';
import { bytes } from '../util/format.js';
import { DTYPES, numel, tensor, type TensorType } from '../ir/types.js';
import type { Pass, Strategy } from './pass.js';
import type { Target } from '../target/target.js';
import { collectiveCost, fasterAllReduce, headReduceCost, ringShape, stepAlgorithm, type CollectiveKind } from './collective-cost.js';
import { activationValues } from './activations.js';
import { resolvePartial, weightSpec } from './tile2d.js';
import { placementKey } from './units.js';
import { blockIndex, diesOf, evenTiles, formatSharding, groupedHeads, kvSharding, parseSharding, REPLICATED, reshard, runLength, sameSharding, sharding, span, specMaxBlock, tileBytes, tileOf, tilesWithin, withGranules, type Axis, type Die, type Grid, type Sharding } from './sharding.js';
import { gridOf } from './balance.js';

interface Step {
  readonly kind: CollectiveKind;
  readonly axes: readonly Axis[];
  readonly dim?: 'rows' | 'cols';
  readonly from: Sharding;
  readonly to: Sharding;
  /** Spreads one DRAM read over the dies that would otherwise each read a copy (stepsFor). */
  readonly read?: true;
}

/** The tensor a conversion moves, and the grid: grouped-query layouts need them to place tiles. */
export interface Geometry {
  readonly t: TensorType;
  readonly grid: Grid;
}

/** Collectives that turn `from` into `to`: reduce partial sums, then gather what `to` does not split. */
export function conversionSteps(from: Sharding, to: Sharding, strategy: Strategy, geo?: Geometry): Step[] {
  if (from.kv || to.kv) {
    assert(geo, `converting ${formatSharding(from)} to ${formatSharding(to)} needs the tensor's shape`);
    return groupedSteps(from, to, strategy, geo);
  }
  // Whole heads dealt unevenly (granules) tile the head dimension unlike an even split of the
  // same axis: the one layout reaches the other only through that dimension made whole.
  if (!sameGranules(from, to)) {
    const clash = [from.granules?.axis, to.granules?.axis].filter((a): a is Axis => a !== undefined && splitsDim(from, a) && splitsDim(to, a));
    if (clash.length) {
      const mid = clash.reduce(gatheredFrom, from);
      return [...conversionSteps(from, mid, strategy), ...conversionSteps(mid, to, strategy)];
    }
  }
  // A sum over heads dealt so (granular partial axis) is a sum like any other once reduced.
  let g = from.granules ?? to.granules;
  const mk = (rows: readonly Axis[], cols: readonly Axis[], partial: readonly Axis[] = []) => withGranules(sharding(rows, cols, partial), g);
  const steps: Step[] = [];
  let cur = from;
  const push = (kind: CollectiveKind, axes: readonly Axis[], next: Sharding, dim?: 'rows' | 'cols') => {
    steps.push({ kind, axes, from: cur, to: next, ...(dim ? { dim } : {}) });
    cur = next;
  };
  const pending = cur.partial.filter((a) => !to.partial.includes(a));
  if (g && pending.includes(g.axis)) g = to.granules;
  if (pending.length) {
    const rest = cur.partial.filter((a) => to.partial.includes(a));
    const ontoRows = pending.every((a) => to.rows.includes(a) && !cur.rows.includes(a));
    const ontoCols = pending.every((a) => to.cols.includes(a) && !cur.cols.includes(a));
    if (ontoRows) push('reduce_scatter', pending, mk([...cur.rows, ...pending], cur.cols, rest), 'rows');
    else if (ontoCols) push('reduce_scatter', pending, mk(cur.rows, [...cur.cols, ...pending], rest), 'cols');
    else if (pending.length === 2 && strategy === 'hecaton') {
      // Hecaton reduces one axis at a time, on its row and column rings, as it gathers.
      push('all_reduce', [pending[1]!], mk(cur.rows, cur.cols, [...rest, pending[0]!]));
      push('all_reduce', [pending[0]!], mk(cur.rows, cur.cols, rest));
    } else push('all_reduce', pending, mk(cur.rows, cur.cols, rest));
  }
  for (const dim of ['rows', 'cols'] as const) {
    const have = cur[dim];
    const want = to[dim];
    let keep = 0;
    while (keep < have.length && have[keep] === want[keep]) keep++;
    const drop = have.slice(keep);
    if (drop.length === 0) continue;
    const next = dim === 'rows' ? mk(have.slice(0, keep), cur.cols, cur.partial) : mk(cur.rows, have.slice(0, keep), cur.partial);
    // Single-axis groups run on a row or column ring; hecaton gathers one axis at a time.
    if (drop.length === 2 && strategy === 'hecaton') {
      const mid = dim === 'rows' ? mk(have.slice(0, keep + 1), cur.cols, cur.partial) : mk(cur.rows, have.slice(0, keep + 1), cur.partial);
      push('all_gather', [drop[1]!], mid, dim);
      push('all_gather', [drop[0]!], next, dim);
    } else push(strategy === 'optimus' ? 'broadcast' : 'all_gather', drop, next, dim);
  }
  // What remains (axes `to` splits and `cur` does not) is a local slice: no data moves.
  return steps;
}

/** Whether two specs deal heads alike (the same granules, or none). */
function sameGranules(a: Sharding, b: Sharding): boolean {
  return a.granules?.axis === b.granules?.axis && a.granules?.count === b.granules?.count;
}

function splitsDim(s: Sharding, a: Axis): boolean {
  return s.rows.includes(a) || s.cols.includes(a);
}

/** `s` with the dimension `a` splits brought whole: summed if partial over it, else gathered. */
function gatheredFrom(s: Sharding, a: Axis): Sharding {
  if (s.partial.includes(a)) return reshard(s, s.rows, s.cols, s.partial.filter((x) => x !== a));
  const cut = (axes: readonly Axis[]) => (axes.includes(a) ? axes.slice(0, axes.indexOf(a)) : axes);
  return reshard(s, cut(s.rows), cut(s.cols), s.partial);
}

/**
 * Conversions to and from grouped-query layouts, whose tiles do not follow the grid axes (dies
 * whose queries share a key/value head hold the same columns). A gradient's contributions are
 * summed, one axis at a time, straight into key/value tiles: the wanted ones, or whole heads
 * holding the wanted tiles, or else whole columns. A plain layout reaches key/value tiles
 * through the layout split by the queries' outer axis (`kvHome`), then an all-gather along
 * that axis. A tile inside the one held is a local slice. The collectives pass runs each of
 * these steps only among the dies that hold what a die needs (runLength): for Llama2-70B on
 * 32×32, runs of 4 dies along a row instead of the row of 32.
 */
function groupedSteps(from: Sharding, to: Sharding, strategy: Strategy, geo: Geometry): Step[] {
  const { t, grid } = geo;
  const steps: Step[] = [];
  let cur = from;
  const push = (kind: CollectiveKind, axes: readonly Axis[], next: Sharding, dim?: 'rows' | 'cols') => {
    steps.push({ kind, axes, from: cur, to: next, ...(dim ? { dim } : {}) });
    cur = next;
  };
  const gather = strategy === 'optimus' ? 'broadcast' : 'all_gather';
  // Summed straight into the wanted key/value tiles, or (a plain layout wanted: the gradient
  // of a fused projection's value piece) into the key/value tiles that hold the wanted ones,
  // which are then sliced locally.
  const sumInto = !cur.kv || cur.partial.length === 0 ? [] : to.kv ? [to] : headTilesHolding(to, cur.kv.kvHeads, geo);
  for (const into of sumInto) {
    const scattered = scatteredSum(cur, into, geo);
    if (!scattered) continue;
    if (scattered.first) push('all_reduce', [scattered.first], scattered.mid);
    push('reduce_scatter', scattered.onto, into, 'rows');
    return steps;
  }
  if (cur.kv && cur.partial.length) {
    const kvHeads = cur.kv.kvHeads;
    const plainTo = sharding(to.rows, to.cols);
    const grouped = to.kv ? [] : to.cols.map((_, n) => groupedHeads(to.rows, to.cols.slice(0, n + 1), kvHeads, grid));
    const candidates = [to.kv ? to : undefined, ...grouped, sharding(to.rows, [])].filter((c): c is Sharding => c !== undefined);
    const into = candidates.find((c) => c.rows.every((a) => !cur.partial.includes(a)) && (c === to || tilesWithin(t, plainTo, c, grid))) ?? REPLICATED;
    const pending = [...cur.partial];
    const withPartial = (rest: readonly Axis[]) => (into.kv ? kvSharding(sharding(into.rows, into.cols), into.kv.heads, into.kv.kvHeads, rest) : sharding(into.rows, into.cols, rest));
    // One axis at a time, the inner first, as hecaton reduces on its row and column rings;
    // over both at once when a key/value head's contributors straddle rows and columns so
    // that the first step would narrow some of them away (reducedAxisByAxis).
    if (pending.length === 2 && !reducedAxisByAxis(t, cur, withPartial([pending[0]!]), withPartial([]), pending[1]!, pending[0]!, grid)) {
      push('all_reduce', [...cur.cols.filter((a) => pending.includes(a)), ...pending.filter((a) => !cur.cols.includes(a))], withPartial([]));
    } else {
      while (pending.length) {
        const a = pending.pop()!;
        push('all_reduce', [a], withPartial(pending));
      }
    }
  }
  if (cur.partial.length === 0 && tilesWithin(t, to, cur, grid)) return steps;
  if (cur.kv && cur.partial.length === 0) {
    // Key/value tiles split by query rows (split queries): gather the rows, keeping the columns.
    const keep = cur.rows.filter((a) => to.rows.includes(a));
    const whole = kvSharding(sharding(keep, cur.cols), cur.kv.heads, cur.kv.kvHeads);
    if (keep.length < cur.rows.length && tilesWithin(t, to, whole, grid)) {
      push(gather, cur.rows.filter((a) => !keep.includes(a)), whole, 'rows');
      return steps;
    }
  }
  if (cur.kv) {
    // Key/value tiles on to a layout they do not hold: gather whole columns first.
    push(gather, cur.cols, sharding(cur.rows, []), 'cols');
    if (tilesWithin(t, to, cur, grid)) return steps;
  }
  if (!to.kv) return [...steps, ...conversionSteps(cur, to, strategy)];
  const home = kvHome(to);
  steps.push(...conversionSteps(cur, home, strategy));
  cur = home;
  if (!tilesWithin(t, to, cur, grid)) push(gather, home.cols, to, 'cols');
  return steps;
}

/** Key/value layouts (whole heads dealt over a prefix of `to`'s column axes) holding every tile of plain `to`. */
function headTilesHolding(to: Sharding, kvHeads: number, geo: Geometry): Sharding[] {
  const plain = sharding(to.rows, to.cols);
  return to.cols
    .map((_, n) => groupedHeads(to.rows, to.cols.slice(0, n + 1), kvHeads, geo.grid))
    .filter((g): g is Sharding => g !== undefined && tilesWithin(geo.t, plain, g, geo.grid));
}

/**
 * Grouped-query contributions summed into key/value tiles whose rows split over some of the
 * partial axes (dk and dv of split queries, into a rotary embedding's gradient): the other
 * partial axis, if any, all-reduced first into the wanted columns (`mid`, still partial over
 * `onto`), then a reduce-scatter over `onto` onto the rows. Undefined when `to` is no such
 * layout, or when summing axis by axis would lose contributions (reducedAxisByAxis).
 */
function scatteredSum(from: Sharding, to: Sharding, geo: Geometry): { first: Axis | undefined; mid: Sharding; onto: Axis[] } | undefined {
  if (!to.kv || to.partial.length) return undefined;
  const onto = to.rows.filter((a) => from.partial.includes(a));
  if (onto.length === 0 || to.rows.some((a) => !onto.includes(a) && !from.rows.includes(a))) return undefined;
  const others = from.partial.filter((a) => !onto.includes(a));
  if (others.length > 1) return undefined;
  const mid = kvSharding(sharding(to.rows.filter((a) => !onto.includes(a)), to.cols), to.kv.heads, to.kv.kvHeads, onto);
  const first = others[0];
  if (first && !reducedAxisByAxis(geo.t, from, mid, to, first, onto[0]!, geo.grid)) return undefined;
  return { first, mid, onto };
}

/**
 * Whether summing grouped-query contributions (`from`, partial over two axes) into `final`
 * tiles one axis at a time — over `first` into `mid`, then over `second` — is exact: each
 * die's contribution to each die's final tile must reach it, through the die on its `first`
 * line that holds (in `mid`) all it needs of it, inside both steps' runs. It is not when a
 * key/value head's dies straddle a row of dies (6 query heads over 2×3 sharing 3 key/value
 * heads: dies [0, 2] and [1, 0] share one), or when queries split over one axis read key/value
 * tiles that the first step narrows. Remembered per layout and grid.
 */
function reducedAxisByAxis(t: TensorType, from: Sharding, mid: Sharding, final: Sharding, first: Axis, second: Axis, grid: Grid): boolean {
  const key = `${t.shape.join('x')}|${formatSharding(from)}|${formatSharding(mid)}|${formatSharding(final)}|${first}${second}|${grid.rows}x${grid.cols}`;
  const known = AXIS_BY_AXIS.get(key);
  if (known !== undefined) return known;
  const run1 = runLength(t, from, mid, [first], true, grid);
  const run2 = runLength(t, mid, final, [second], true, grid);
  const dies = diesOf(grid);
  // Dies by the tile their contributions cover.
  const byTile = new Map<string, { rows: readonly [number, number]; cols: readonly [number, number]; dies: Die[] }>();
  for (const e of dies) {
    const tile = tileOf(t, from, grid, e);
    const k = `${tile.rows.join(',')}|${tile.cols.join(',')}`;
    const entry = byTile.get(k) ?? { ...tile, dies: [] };
    entry.dies.push(e);
    byTile.set(k, entry);
  }
  // Every die's tile after each step and its run along each axis, worked out once.
  const index = (d: Die) => d.i * grid.cols + d.j;
  const held = dies.map((x) => tileOf(t, mid, grid, x));
  const run1Of = dies.map((d) => Math.floor(blockIndex([first], grid, d) / run1));
  const run2Of = dies.map((d) => Math.floor(blockIndex([second], grid, d) / run2));
  const exact = dies.every((d) => {
    const want = tileOf(t, final, grid, d);
    for (const tile of byTile.values()) {
      const r0 = Math.max(want.rows[0], tile.rows[0]);
      const r1 = Math.min(want.rows[1], tile.rows[1]);
      const c0 = Math.max(want.cols[0], tile.cols[0]);
      const c1 = Math.min(want.cols[1], tile.cols[1]);
      if (r1 <= r0 || c1 <= c0) continue;
      for (const e of tile.dies) {
        // After the first step the contribution sits on the die of e's `first` line at d's coordinate there.
        const x = first === 'r' ? d.i * grid.cols + e.j : e.i * grid.cols + d.j;
        if (run1Of[x] !== run1Of[index(e)] || run2Of[x] !== run2Of[index(d)]) return false;
        const h = held[x]!;
        if (r0 < h.rows[0] || r1 > h.rows[1] || c0 < h.cols[0] || c1 > h.cols[1]) return false;
      }
    }
    return true;
  });
  AXIS_BY_AXIS.set(key, exact);
  return exact;
}

const AXIS_BY_AXIS = new Map<string, boolean>();

/** The plain layout key/value tiles are gathered from: split by the queries' outer axis only. */
export function kvHome(to: Sharding): Sharding {
  return sharding(to.rows, to.cols.slice(0, 1));
}

/**
 * The scattered layout a DRAM read starts from, gathered on the package into `to`: the axes
 * `to` leaves replicated split the rows. Given the tensor `t`, the grid and the samples per
 * mini-batch (hecaton, which gathers one axis at a time anyway), a layout whose mini-batch
 * tiles are uneven gives way to the first even one of: every free axis on the rows; one on
 * the rows and one on the columns; both on the columns. Grouped-query keys and values are
 * gathered from the layout their queries' outer axis splits (kvHome), so that is read. A die
 * left an empty block would make its program unlike the others' and split the package into
 * many classes of dies to simulate.
 */
export function scatteredFrom(wanted: Sharding, t?: TensorType, grid?: Grid, samples = 1): Sharding {
  const to = wanted.kv ? kvHome(wanted) : wanted;
  const freeOf = (cols: readonly Axis[]) => (['r', 'c'] as const).filter((a) => ![...to.rows, ...cols, ...to.partial].includes(a));
  // As before any shape is known (grouped-query keys and values: their queries' columns).
  const rowsFirst = reshard(to, [...to.rows, ...freeOf(to.cols)], to.cols);
  const cols = to.cols;
  const free = freeOf(cols);
  if (!t || !grid || free.length === 0) return rowsFirst;
  const sample = t.shape.length >= 3 ? tensor(t.dtype, [Math.min(samples, t.shape[0]!), ...t.shape.slice(1)]) : t;
  const candidates = [rowsFirst, reshard(to, [...to.rows, ...free], cols), ...free.map((a) => reshard(to, [...to.rows, ...free.filter((x) => x !== a)], [...cols, a])), reshard(to, to.rows, [...cols, ...free])];
  return candidates.find((s) => evenTiles(sample, s, grid)) ?? rowsFirst;
}

function specsOf(op: Op, key: 'tile2d.in' | 'tile2d.out'): readonly (Sharding | undefined)[] {
  const text = op.notes?.[key];
  if (typeof text !== 'string') assert(false, `${op.kind} has no ${key} note: run tile2d first`);
  let specs = SPEC_LISTS.get(text);
  if (specs === undefined) {
    specs = text.split('; ').map((t) => (t === 'dram' ? undefined : parseSharding(t)));
    SPEC_LISTS.set(text, specs);
  }
  return specs;
}

/** Spec lists by note text (a few dozen distinct texts serve every op of every layer; never mutated). */
const SPEC_LISTS = new Map<string, readonly (Sharding | undefined)[]>();

export interface CollectiveTotals {
  count: number;
  sentBytes: number;
  linkBytes: number;
}

export interface InsertedCollectives {
  /** Layout changes: the traffic of Table III. */
  readonly layout: CollectiveTotals;
  /** Steps of attention cores (see attentionSteps): moved, but not in Table III. */
  readonly attention: CollectiveTotals;
  /** Gathers spreading one DRAM read over a 1-D baseline's dies (stepsFor): not in Table III either. */
  readonly reads: CollectiveTotals;
}

export function insertCollectives(m: Module, grid: Grid, strategy: Strategy, target: Target): InsertedCollectives {
  const none = (): CollectiveTotals => ({ count: 0, sentBytes: 0, linkBytes: 0 });
  const totals: InsertedCollectives = { layout: none(), attention: none(), reads: none() };
  const acts = activationValues(m);
  // Samples per mini-batch (the minibatch pass's choice): what a DRAM read's tile holds.
  const samples = (m.notes['minibatch.size'] as number | undefined) ?? Number.MAX_SAFE_INTEGER;
  hoistReductions(m, grid, samples, strategy, acts);
  const made = new Map<string, Value>();
  /** The reduced copy of a partial value, made where it was produced: what DRAM keeps of it. */
  const whole = new Map<Value, { value: Value; spec: Sharding }>();
  for (const op of [...m.ops()]) {
    if (op.notes?.['tile2d.dram'] === true) continue;
    const wants = specsOf(op, 'tile2d.in');
    op.operands.forEach((v, k) => {
      const want = wants[k];
      if (!want) return;
      const { from, steps } = routeTo(v, op, k, wants, strategy, grid, samples, acts, whole.get(v));
      if (steps.length === 0) {
        if (from !== v) m.setOperand(op, k, from);
        return;
      }
      const inside = attentionSteps(v, op, k, wants[0], steps, strategy);
      const key = `${from.id}|${formatSharding(want)}|${placementKey(op)}|${steps.map((s, i) => s.kind + s.axes.join('') + (inside[i] ? `:${inside[i]!.kind}` : s.read ? ':read' : '')).join(',')}`;
      let out = made.get(key);
      if (!out) {
        const chain = emit(m, from, op, steps, inside, grid, strategy, target, totals);
        out = chain[chain.length - 1]!;
        made.set(key, out);
        const firstWhole = steps.findIndex((s) => s.to.partial.length === 0);
        if (v.def && placementKey(v.def) === placementKey(op) && steps[0]!.from.partial.length && firstWhole >= 0 && !whole.has(v)) {
          whole.set(v, { value: chain[firstWhole]!, spec: steps[firstWhole]!.to });
        }
      }
      m.setOperand(op, k, out);
    });
  }
  return totals;
}

/**
 * A partial sum split along its last axis (the fused QKV projection's [b·s, 3h] output split
 * into q, k and v) is reduced once, before the split, when every piece would otherwise be
 * reduced by the same collective right after it: the split keeps the layout (tile2d), so it
 * commutes with the reduction, and one reduce-scatter of the whole output moves the same
 * bytes as one per piece but pays the link latency once (paper eq. (4), T_RS_QKV). The split
 * is re-noted to run on the reduced layout; the collectives for it are then inserted as for
 * any other operand. Only pieces read in the split's own group and phase decide (those read
 * from DRAM get the reduced copy either way), and a step an attention core takes itself is
 * never hoisted. Splits are visited last first, so a split feeding another split sees the
 * inner one already hoisted.
 */
function hoistReductions(m: Module, grid: Grid, samples: number, strategy: Strategy, acts: ReadonlySet<Value>): void {
  for (const split of [...m.ops()].reverse()) {
    if (split.kind !== 'split' || split.notes?.['tile2d.dram'] === true) continue;
    const x = split.operands[0]!;
    const ins = specsOf(split, 'tile2d.in');
    const outs = specsOf(split, 'tile2d.out');
    const have = ins[0];
    if (!have || have.partial.length === 0 || ins.length !== 1 || !outs.every((s) => s && sameSharding(s, have))) continue;
    // The split's own operand must reach it as it was made, so the reduction is its only step.
    const producer = x.def;
    if (!producer || producer.notes?.['tile2d.dram'] === true || !acts.has(x) || placementKey(producer) !== placementKey(split)) continue;
    if (!sameSharding(specsOf(producer, 'tile2d.out')[producer.results.indexOf(x)]!, have)) continue;
    let first: Step | undefined;
    let agree = true;
    for (const piece of split.results) {
      for (const user of m.users(piece)) {
        if (user.notes?.['tile2d.dram'] === true) continue;
        if (placementKey(user) !== placementKey(split)) continue;
        const wants = specsOf(user, 'tile2d.in');
        user.operands.forEach((v, k) => {
          if (v !== piece || !agree) return;
          const route = wants[k] ? routeTo(v, user, k, wants, strategy, grid, samples, acts, undefined) : undefined;
          const step = route?.from === v ? route.steps[0] : undefined;
          const reduces = step && step.to.partial.length === 0 && (step.kind === 'reduce_scatter' || step.kind === 'all_reduce');
          if (!reduces || attentionSteps(v, user, k, wants[0], route!.steps, strategy)[0]) agree = false;
          else if (!first) first = step;
          else if (first.kind !== step.kind || first.axes.join('') !== step.axes.join('') || !sameSharding(first.to, step.to)) agree = false;
        });
      }
    }
    if (!agree || !first) continue;
    const to = formatSharding(first.to);
    split.notes = {
      ...split.notes,
      'tile2d.in': to,
      'tile2d.out': split.results.map(() => to).join('; '),
      'collectives.hoisted': `${first.kind} ${first.axes.join('')}`,
    };
  }
}

interface Route {
  /** The value the collectives start from: the operand, or its reduced copy. */
  readonly from: Value;
  readonly steps: Step[];
}

/** The collectives bringing operand `k` of `op` to the spec it wants (stepsFor), split as a core's query rows are (viaQueryRows). */
function routeTo(v: Value, op: Op, k: number, wants: readonly (Sharding | undefined)[], strategy: Strategy, grid: Grid, samples: number, acts: ReadonlySet<Value>, reduced: { value: Value; spec: Sharding } | undefined): Route {
  const route = stepsFor(v, op, k, wants[k]!, strategy, grid, samples, acts, reduced);
  return { from: route.from, steps: viaQueryRows(route.steps, coreQuery(v, op, k, wants[0], strategy), strategy, { t: v.type, grid }) };
}

function stepsFor(v: Value, op: Op, k: number, want: Sharding, strategy: Strategy, grid: Grid, samples: number, acts: ReadonlySet<Value>, reduced: { value: Value; spec: Sharding } | undefined): Route {
  const producer = v.def;
  // Optimus keeps each weight as 2-D blocks and broadcasts them to the dies that need them.
  if (strategy === 'optimus' && k === 1 && (op.kind === 'linear' || op.kind === 'linear_grad')) {
    // (in 2-D blocks of whole heads when its columns deal them: HeadWeights).
    return { from: v, steps: conversionSteps(withGranules(weightSpec('optimus', 'N'), want.granules), want, strategy) };
  }
  const besideDram = producer?.notes?.['tile2d.dram'] === true;
  const have = producer && !besideDram ? specsOf(producer, 'tile2d.out')[producer.results.indexOf(v)]! : undefined;
  const geo: Geometry = { t: v.type, grid };
  if (have && acts.has(v) && placementKey(producer!) === placementKey(op)) {
    return { from: v, steps: sameSharding(have, want) ? [] : conversionSteps(have, want, strategy, geo) };
  }
  // What leaves the package through DRAM is whole: a partial sum is reduced where it was made
  // (reusing the reduced copy its own group already made, if any).
  const source = reduced ?? { value: v, spec: have };
  const reduce = source.spec?.partial.length ? conversionSteps(source.spec, resolvePartial(source.spec, strategy, v.type.shape.length), strategy, geo) : [];
  // Weights and weight views are read straight into the tiles wanted.
  if (!acts.has(v)) return { from: source.value, steps: reduce };
  // Optimus broadcasts every GEMM operand (SUMMA), wherever it comes from.
  if (strategy === 'hecaton' || strategy === 'optimus' || (op.kind === 'linear_grad' && k === 0)) {
    return { from: source.value, steps: [...reduce, ...conversionSteps(strategy === 'hecaton' ? scatteredFrom(want, v.type, grid, samples) : scatteredFrom(want), want, strategy, geo)] };
  }
  // The 1-D baselines want other activations whole on every die. Read replicated, each die
  // would fetch its own copy through the shared channels (N times the bytes: on 1024 dies,
  // seconds of DRAM time per layer); so one copy is read, spread over the dies, and gathered
  // on the package, as hecaton reads (Algorithm 1 steps 2-3). Table III takes the baselines'
  // inputs as already there, so these gathers count as part of the read, apart from it.
  const spread = conversionSteps(scatteredFrom(want), want, strategy, geo).map((s): Step => ({ ...s, read: true }));
  return { from: source.value, steps: [...reduce, ...spread] };
}

/**
 * Which steps of a route belong to an attention core rather than to a change of layout.
 * A core may read keys and values in a wider layout than its queries: optimus keeps queries
 * in 2-D blocks [r, c] but a row block of queries attends to the whole sequence, so the core
 * gathers the keys and values of its heads along its column of dies ([r, c] → [-, c],
 * tile2d's summaAttention); backward, its dk and dv are partial sums over the query blocks
 * ([-, c]~r), which it reduces back to the queries' layout. Those steps are the core's own
 * work, as the all-reduce of partial scores is when a head spans several dies
 * (noteHeadSlices): Table III counts only the Linear layers' traffic, so they are noted
 * (`collective.part_of`) and counted apart — still emitted and moved. The rest of a route
 * (bringing a projection's output to the queries' layout, or a gradient on from there) is
 * layout traffic. Strategies whose cores read keys and values as they read queries (whole
 * heads per die) have no such steps. `query` is the spec the consumer reads operand 0 in.
 */
function attentionSteps(v: Value, op: Op, k: number, query: Sharding | undefined, steps: readonly Step[], strategy: Strategy): (Op | undefined)[] {
  const marks: (Op | undefined)[] = steps.map(() => undefined);
  const likeQueries = (s: Sharding, q: Sharding) => sameSharding(s, q) || (strategy === 'hecaton' && splitLike(s, q));
  // Keys and values into a core: the steps from the queries' layout on (or, queries split by
  // rows, from the keys' or values' tiles split alike: grouped-query tiles differ in columns).
  if (isCore(op) && (k === 1 || k === 2) && query) {
    const start = steps.findIndex((s) => likeQueries(s.from, query));
    if (start >= 0) for (let i = start; i < steps.length; i++) marks[i] = op;
  }
  // A core's result in a layout other than its queries' (dk, dv): the steps back to that layout.
  const producer = v.def;
  if (isCore(producer)) {
    const q = specsOf(producer, 'tile2d.in')[0]!;
    const end = steps.findIndex((s) => likeQueries(s.to, q));
    if (end >= 0 && !steps.slice(0, end + 1).some((s) => likeQueries(s.from, q))) {
      for (let i = 0; i <= end; i++) marks[i] = producer;
    }
  }
  return marks;
}

function isCore(o: Op | undefined): o is Op {
  return o?.kind === 'attention' || o?.kind === 'attention_grad';
}

/** Whole tiles with their rows split as a core's split queries are (grouped-query tiles differ in columns). */
function splitLike(s: Sharding, query: Sharding): boolean {
  return query.rows.length > 0 && s.partial.length === 0 && s.rows.join('') === query.rows.join('');
}

/**
 * The queries' layout of the core a value goes into as its keys or values, or comes out of
 * as their gradient, when the core splits its queries by rows; else undefined.
 */
function coreQuery(v: Value, op: Op, k: number, query: Sharding | undefined, strategy: Strategy): Sharding | undefined {
  // Optimus's cores split queries too, with their own steps (summaAttention).
  if (strategy !== 'hecaton') return undefined;
  if (isCore(op) && (k === 1 || k === 2)) return query?.rows.length ? query : undefined;
  const producer = v.def;
  if (!isCore(producer) || producer.results.indexOf(v) === 0) return undefined;
  const q = specsOf(producer, 'tile2d.in')[0];
  return q?.rows.length ? q : undefined;
}

/**
 * Keys and values of a core that splits its queries over some axes, and their gradients: an
 * all-reduce over those axes is a reduce-scatter onto the rows (as the queries lie) and an
 * all-gather of them, and taken so, the part that is the core's own (the gather of whole keys
 * and values, the sum of dk's and dv's query blocks) is told apart from the layout traffic
 * Table III counts (attentionSteps). The same bytes either way.
 */
function viaQueryRows(steps: readonly Step[], query: Sharding | undefined, strategy: Strategy, geo: Geometry): Step[] {
  if (!query) return [...steps];
  const out: Step[] = [];
  for (const s of steps) {
    const whole = s.kind === 'all_reduce' && s.to.partial.length === 0 && s.to.rows.length === 0 && s.axes.join('') === query.rows.join('');
    if (!whole || s.to.granules || s.from.granules) {
      out.push(s);
      continue;
    }
    const mid = s.to.kv ? kvSharding(sharding(query.rows, s.to.cols), s.to.kv.heads, s.to.kv.kvHeads) : sharding(query.rows, s.to.cols);
    const there = conversionSteps(s.from, mid, strategy, geo);
    const back = conversionSteps(mid, s.to, strategy, geo);
    if (there.length === 1 && there[0]!.kind === 'reduce_scatter' && back.length === 1 && back[0]!.kind === 'all_gather') out.push(there[0]!, back[0]!);
    else out.push(s);
  }
  return out;
}

/** Emit `steps` as collective ops reading `v`; returns each step's result. */
function emit(m: Module, v: Value, consumer: Op, steps: readonly Step[], inside: readonly (Op | undefined)[], grid: Grid, strategy: Strategy, target: Target, all: InsertedCollectives): Value[] {
  let cur = v;
  const chain: Value[] = [];
  for (const [i, s] of steps.entries()) {
    const axis = s.axes.join('');
    // Grouped-query steps run among the dies holding what each needs (runLength), on a ring
    // through the run (a 2-D torus algorithm needs the whole grid).
    const run = runLength(v.type, s.from, s.to, s.axes, s.kind === 'all_reduce' || s.kind === 'reduce_scatter', grid);
    const whole = run === span(s.axes, grid);
    const core = inside[i];
    // Table III's layout collectives run one way round their rings, as it counts them; the
    // steps of attention cores and the gathers spreading a DRAM read are ours to choose, and
    // run both ways (collective-cost.ts, bidirectional).
    const algo = stepAlgorithm(strategy, s.kind, s.axes, run, grid, core !== undefined || s.read === true);
    const attrs: Record<string, string | number> = s.kind === 'all_reduce' ? { axis, algo } : { axis, dim: s.dim!, algo };
    if (!whole) attrs.block = run;
    const op = m.addOp(s.kind, [cur], attrs, { names: [`${v.name}@${formatSharding(s.to)}`], loc: consumer.loc, layer: consumer.layer });
    // A gradient's key/value contributions are summed into the (wider) tiles they become;
    // a reduce-scatter sums the tiles it starts from.
    const tile = s.from.kv && s.from.partial.length && s.kind !== 'reduce_scatter' ? tileBytes(v.type, s.to, grid) : tileBytes(v.type, s.from, grid);
    const cost = collectiveCost(s.kind, algo, tile, run, grid, ringShape(s.axes, run, target));
    op.notes = {
      ...pick(consumer.notes, ['train.phase', 'fuse.group', 'fuse.block']),
      'tile2d.in': formatSharding(s.from),
      'tile2d.out': formatSharding(s.to),
      'collective.sent_bytes': cost.sentBytes,
      'collective.link_bytes': cost.linkBytes,
      'collective.steps': cost.steps,
    };
    if (core) {
      op.notes['collective.part_of'] = core.kind;
      // The core's own summary of the steps it adds (the instructions carry the bytes).
      const n = core.notes ?? {};
      const had = (key: string) => (n[key] as number | undefined) ?? 0;
      core.notes = {
        ...n,
        'attention.kv_collectives': had('attention.kv_collectives') + 1,
        'attention.kv_sent_bytes': had('attention.kv_sent_bytes') + cost.sentBytes,
        'attention.kv_link_bytes': had('attention.kv_link_bytes') + cost.linkBytes,
      };
    } else if (s.read) op.notes['collective.part_of'] = 'dram.read';
    const totals = core ? all.attention : s.read ? all.reads : all.layout;
    totals.count++;
    totals.sentBytes += cost.sentBytes;
    totals.linkBytes += cost.linkBytes;
    cur = op.results[0]!;
    chain.push(cur);
  }
  return chain;
}

function pick(notes: Op['notes'], keys: readonly string[]): Record<string, string | number | boolean | readonly number[]> {
  const out: Record<string, string | number | boolean | readonly number[]> = {};
  for (const k of keys) if (notes?.[k] !== undefined) out[k] = notes[k]!;
  return out;
}

/**
 * When dies outnumber heads, each die holds a slice of one head's dimensions: its q·kᵀ is a
 * partial sum that the k dies sharing the head all-reduce (paper §IV-C: "an all-reduce
 * operation is necessary"). Forward reduces the scores; backward reduces the recomputed
 * scores and, for dq or dk, dP = dA·vᵀ: the notes (`attention.*`) are per reduction. Table III
 * leaves this traffic out, so it is noted apart from the collectives that tile2d's layouts need.
 */
export function noteHeadSlices(m: Module, grid: Grid, strategy: Strategy, target: Target): CollectiveTotals {
  const totals: CollectiveTotals = { count: 0, sentBytes: 0, linkBytes: 0 };
  for (const op of m.ops()) {
    if (op.kind !== 'attention' && op.kind !== 'attention_grad') continue;
    const heads = specsOf(op, 'tile2d.in')[0]!;
    const perHead = headDies(op, heads, grid);
    if (perHead <= 1) continue;
    const cost = headReduceCost(op, perHead, strategy, heads.cols, grid, target);
    // Heads dealt unevenly (granules) share dies in runs of different lengths: the longest is noted.
    op.notes = { ...op.notes, 'attention.head_dies': perHead, 'attention.sent_bytes': cost.sentBytes, 'attention.link_bytes': cost.linkBytes, 'attention.steps': cost.steps, ...(heads.granules ? { 'attention.heads_dealt': true } : {}) };
    const reductions = headReductions(op);
    totals.count += reductions;
    totals.sentBytes += reductions * cost.sentBytes;
    totals.linkBytes += reductions * cost.linkBytes;
  }
  return totals;
}

/**
 * The most dies that share one head of an attention core whose queries are split by `heads`
 * (1: whole heads per die). Even splits share alike; heads dealt unevenly (granules) are
 * shared by more dies in blocks of fewer heads.
 */
export function headDies(op: Op, heads: Sharding, grid: Grid): number {
  const count = op.attrs.heads as number;
  if (heads.granules === undefined) return Math.ceil(span(heads.cols, grid) / count);
  // Dealt heads: as many dies share a head as the narrowest slice of one is narrower than it
  // (the same few layouts come back for every layer's cores).
  const q = op.operands[0]!.type;
  const key = `${q.shape.join('x')}|${count}|${formatSharding(heads)}|${grid.rows}x${grid.cols}`;
  let most = HEAD_DIES.get(key);
  if (most === undefined) {
    const width = q.shape.at(-1)! / count;
    most = 1;
    for (const d of diesOf(grid)) {
      const [a, b] = tileOf(q, heads, grid, d).cols;
      if (b > a && b - a < width) most = Math.max(most, width / (b - a));
    }
    HEAD_DIES.set(key, most);
  }
  return most;
}

const HEAD_DIES = new Map<string, number>();

/** Score all-reduces of an attention core whose heads span dies: backward recomputes the scores, and reduces dP too for dq or dk. */
function headReductions(op: Op): number {
  const wrt = (op.attrs.wrt as readonly number[] | undefined) ?? [];
  return op.kind === 'attention' || !(wrt.includes(0) || wrt.includes(1)) ? 1 : 2;
}

export const collectives: Pass = {
  name: 'collectives',
  summary: 'insert the all-gathers, reduce-scatters and all-reduces that sharding changes need',
  options: {},
  requires: ['tile2d.grid'],
  establishes: ['collectives.count'],
  run(m, ctx) {
    const grid = gridOf(ctx.target, m);
    const { layout: t, attention: kv, reads } = insertCollectives(m, grid, ctx.strategy, ctx.target);
    m.notes['collectives.count'] = t.count + kv.count + reads.count;
    ctx.report('collectives', `${t.count} collectives; per die and iteration ${bytes(t.linkBytes)} on the busiest link, ${bytes(t.sentBytes)} sent in all`);
    if (kv.count) {
      ctx.report('collectives', `${kv.count} more inside attention cores (gathering keys and values, reducing their gradients): ${bytes(kv.linkBytes)} per die on the busiest link (not in Table III)`);
    }
    if (reads.count) {
      ctx.report('collectives', `${reads.count} more gather activations read once from DRAM instead of once per die: ${bytes(reads.linkBytes)} per die on the busiest link (not in Table III)`);
    }
    const heads = noteHeadSlices(m, grid, ctx.strategy, ctx.target);
    if (heads.count) {
      ctx.report('collectives', `${heads.count} attention cores split heads over several dies: their score all-reduces add ${bytes(heads.linkBytes)} per die on the busiest link (not in Table III)`);
    }
    const norms = noteRowStatistics(m, grid, ctx.strategy, ctx.target);
    if (norms.count) {
      const how = norms.exchanged === 0 ? '' : norms.exchanged === norms.count ? ', each exchanged both ways round its ring (fewer steps than a ring all-reduce)' : `, ${norms.exchanged} of them exchanged both ways round their rings (fewer steps than a ring all-reduce)`;
      ctx.report('collectives', `${norms.count} normalizations see a row split over dies: their row-statistics all-reduces add ${bytes(norms.linkBytes)} per die on the busiest link (not in Table III)${how}`);
    }
  },
};

/** Row sums a normalization needs over its whole row: LayerNorm Σx, Σx²; RMSNorm Σx²; their gradients also Σg, Σg·x (g = dy·γ). */
export const NORM_SUMS: Readonly<Record<string, number>> = { layernorm: 2, rmsnorm: 1, layernorm_grad: 4, rmsnorm_grad: 2 };

/**
 * A normalization whose rows are split over dies (Hecaton's [r, c] tiles) needs statistics of
 * whole rows: each die sums its part of every row and the dies of the row all-reduce those
 * few numbers per row before normalizing (the mean and variance of LayerNorm, RMSNorm's mean
 * square; backward also the sums its gradient needs). Noted per op (`norm.*`), like the score
 * all-reduces, apart from Table III's traffic. The all-reduce carries a few bytes per row, so
 * its link latency dominates: it takes the faster of the ring and the exchange
 * (fasterAllReduce) for the planned mini-batch's tile. The byte notes are for the whole batch,
 * as every op's; a mini-batch moves its share.
 */
export function noteRowStatistics(m: Module, grid: Grid, strategy: Strategy, target: Target): CollectiveTotals & { exchanged: number } {
  const totals = { count: 0, sentBytes: 0, linkBytes: 0, exchanged: 0 };
  const batch = m.notes['minibatch.batch'];
  const size = m.notes['minibatch.size'];
  const share = typeof batch === 'number' && typeof size === 'number' && batch > 0 ? Math.min(1, size / batch) : 1;
  for (const op of m.ops()) {
    const sums = NORM_SUMS[op.kind];
    if (sums === undefined || op.notes?.['tile2d.dram'] === true) continue;
    const x = specsOf(op, 'tile2d.in')[0];
    if (!x || x.cols.length === 0) continue;
    const t = op.operands[0]!.type;
    const rows = specMaxBlock(numel(t) / t.shape[t.shape.length - 1]!, x, 'rows', grid);
    const tile = rows * sums * DTYPES[t.dtype].bytes;
    const algo = fasterAllReduce(strategy, x.cols, tile * share, grid, target);
    const g = span(x.cols, grid);
    const cost = collectiveCost('all_reduce', algo, tile, g, grid, ringShape(x.cols, g, target));
    op.notes = { ...op.notes, 'norm.sums': sums, 'norm.algo': algo, 'norm.sent_bytes': cost.sentBytes, 'norm.link_bytes': cost.linkBytes, 'norm.steps': cost.steps };
    totals.count++;
    if (algo === 'exchange') totals.exchanged++;
    totals.sentBytes += cost.sentBytes;
    totals.linkBytes += cost.linkBytes;
  }
  return totals;
}

export interface BlockTraffic {
  /** Collectives between layouts: the traffic of Table III. */
  linkBytes: number;
  sentBytes: number;
  /**
   * Collectives outside Table III's layouts: score all-reduces of heads that span several
   * dies, the key/value gathers (and their gradients' reductions) of attentionSteps, the row
   * statistics of normalizations whose rows span several dies, and the gathers that spread
   * a 1-D baseline's DRAM read (stepsFor).
   */
  headLinkBytes: number;
  /**
   * Set when heads are dealt unevenly (granules) in the block: dies of rows with fewer heads
   * move less than the numbers here, which count the busiest die (its score all-reduces run
   * on the longest runs, its layout collectives carry the most heads).
   */
  uneven?: boolean;
}

/**
 * Traffic per die summed per Transformer block: key `${layer}|${phase}/${block}`, phase fwd
 * or bwd. The weight update counts with the backward pass, as in Algorithm 1 (step 8).
 */
export function trafficByBlock(m: Module): Map<string, BlockTraffic> {
  const out = new Map<string, BlockTraffic>();
  for (const op of m.ops()) {
    const link = op.notes?.['collective.link_bytes'];
    const head = op.notes?.['attention.link_bytes'];
    if (typeof link !== 'number' && typeof head !== 'number' && typeof op.notes?.['norm.link_bytes'] !== 'number') continue;
    const phase = op.notes?.['train.phase'] === 'fwd' || op.notes?.['train.phase'] === undefined ? 'fwd' : 'bwd';
    const key = `${op.layer ?? '-'}|${phase}/${String(op.notes?.['fuse.block'])}`;
    const t = out.get(key) ?? { linkBytes: 0, sentBytes: 0, headLinkBytes: 0 };
    if (typeof link === 'number' && op.notes?.['collective.part_of'] !== undefined) t.headLinkBytes += link;
    else if (typeof link === 'number') {
      t.linkBytes += link;
      t.sentBytes += op.notes?.['collective.sent_bytes'] as number;
    }
    if (typeof head === 'number') {
      t.headLinkBytes += head * headReductions(op);
      if (op.notes?.['attention.heads_dealt'] === true) t.uneven = true;
    }
    const from = op.notes?.['tile2d.in'];
    if (typeof link === 'number' && typeof from === 'string' && parseSharding(from).granules !== undefined) t.uneven = true;
    const norm = op.notes?.['norm.link_bytes'];
    if (typeof norm === 'number') t.headLinkBytes += norm;
    out.set(key, t);
  }
  return out;
}
