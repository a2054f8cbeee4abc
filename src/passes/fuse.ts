// fuse: group consecutive fusion units so that a group's weights — and in training its
// weight gradients, accumulated on-die across mini-batches (Algorithm 1) — fit the weight
// buffers of the whole package (paper §III-B b: "the fusion depth is constrained by the
// capacity of weight buffers"). The groups follow from the buffer size: with tight buffers an
// attention block is fused and the FFN layers run apart; with room, attention and FFN fuse.
// Every op gets `fuse.group`: Linears by their unit, other forward ops by the last Linear
// before them, backward ops by the Linear whose weight they share or the last before them.

import { errorAt } from '../diagnostics/diagnostic.js';
import type { Module, Op, Value } from '../ir/module.js';
import { byteSize } from '../ir/types.js';
import { bufferCapacity, type Target } from '../target/target.js';
import { bytes } from '../util/format.js';
import type { Pass, Strategy } from './pass.js';
import { findUnits, isForward, linearName, type Unit } from './units.js';
import { gridOf, sharingDies } from './balance.js';
import { activationValues } from './activations.js';
import type { Grid } from './sharding.js';
import { HeadWeights } from './tile2d.js';

export interface FusionGroup {
  readonly units: readonly Unit[];
  /** Weight-buffer bytes per die the group needs in all, and each of its units. */
  readonly bytesPerDie: number;
  readonly unitBytes: readonly number[];
  /** Column chunks its weights stream through the buffers in (1: resident). */
  readonly chunks: number;
}

/**
 * Weight-buffer bytes per die for a unit. Every strategy spreads each weight over all N dies
 * (2-D tiles for hecaton and optimus, column or row slices for the 1-D ones); training keeps
 * a weight-gradient tile beside each weight tile; optimus also holds the block it receives
 * from a peer during each broadcast step (§V-A b: "Optimus needs extra storage for segments
 * broadcast from other dies"). Weights whose heads are dealt out unevenly (tile2d's HeadWeights)
 * have a largest tile `uneven` times an even share.
 */
export function unitWeightBytesPerDie(unit: Unit, dies: number, training: boolean, strategy: Strategy, uneven: ReadonlyMap<Value, number> = new Map()): number {
  const perDie = unit.linears
    .flatMap((l) => l.operands.slice(1))
    .reduce((sum, w) => sum + Math.ceil((byteSize(w.type) / dies) * (uneven.get(w) ?? 1)), 0);
  return perDie * (training ? 2 : 1) * (strategy === 'optimus' ? 2 : 1);
}

/**
 * How deep units fuse: `greedy` (the paper's layer fusion, §III-B b) as deep as the buffers
 * allow, its groups cut where the fewest activations cross (groupUnits; the name is kept for
 * pipelines that spell it); `none` gives every unit a group of its own, so every activation between units goes
 * through DRAM (the ablation of Fig. 8; an attention block stays one unit, its core needs it).
 */
export const FUSIONS = ['greedy', 'none'] as const;
export type Fusion = (typeof FUSIONS)[number];

/**
 * Grouping of consecutive units under the per-die weight-buffer capacity. Every cut between
 * two groups sends the activations that cross it through DRAM, and some cuts cost more than
 * others (inside an FFN the 4h-wide intermediate crosses, between layers only the h-wide
 * residual stream), so the groups are chosen to minimise the summed cost of their cuts
 * (`cutCost(i)`: the cut after unit i), then the number of groups; among equal choices the
 * earlier groups are the larger, which with no cut costs is greedy grouping. A unit too large
 * for the buffers on its own gets a group to itself and streams its weight through them in
 * column chunks (the output columns of a Linear are independent, and its gathered input stays
 * resident, so only the weight reads are split); it is an error only when even a chunk of one
 * output column per die cannot fit. `dies`: what a weight's largest tile is a 1/dies share of
 * (balance.ts sharingDies; R·C on a homogeneous package); `uneven`: weights whose largest tile
 * is that many times such a share (heads dealt unevenly, HeadWeights.imbalance); `besides`:
 * other weight-buffer bytes per die a unit brings (otherGradients).
 */
export function groupUnits(
  units: readonly Unit[],
  target: Target,
  training: boolean,
  strategy: Strategy,
  fusion: Fusion = 'greedy',
  dies = target.package.dies,
  uneven: ReadonlyMap<Value, number> = new Map(),
  besides: ReadonlyMap<Unit, number> = new Map(),
  cutCost: (i: number) => number = () => 0,
): FusionGroup[] {
  const capacity = bufferCapacity(target).weight;
  const need = units.map((u) => unitWeightBytesPerDie(u, dies, training, strategy, uneven) + (besides.get(u) ?? 0));
  const n = units.length;
  // best[i]: the least [cut cost, groups] for units i.., and where its first group ends.
  const best: { cost: number; groups: number; end: number }[] = Array(n + 1);
  best[n] = { cost: 0, groups: 0, end: n };
  for (let i = n - 1; i >= 0; i--) {
    let used = 0;
    let pick: (typeof best)[number] | undefined;
    for (let j = i + 1; j <= n; j++) {
      used += need[j - 1]!;
      // A unit alone may exceed the buffers (it streams); otherwise the group must fit.
      if (j > i + 1 && (used > capacity || fusion === 'none')) break;
      const rest = best[j]!;
      const cost = rest.cost + (j < n ? cutCost(j - 1) : 0);
      const groups = rest.groups + 1;
      // Later j wins ties: the first group as large as it can be.
      if (!pick || cost < pick.cost || (cost === pick.cost && groups <= pick.groups)) pick = { cost, groups, end: j };
      if (need[i]! > capacity) break;
    }
    best[i] = pick!;
  }
  const groups: FusionGroup[] = [];
  for (let i = 0; i < n; i = best[i]!.end) {
    const members = units.slice(i, best[i]!.end);
    const unitBytes = need.slice(i, best[i]!.end);
    const bytesPerDie = unitBytes.reduce((a, b) => a + b, 0);
    const chunks = bytesPerDie > capacity ? chunksFor(members[0]!, bytesPerDie, capacity, dies, training) : 1;
    groups.push({ units: members, bytesPerDie, unitBytes, chunks });
  }
  return groups;
}

function chunksFor(unit: Unit, need: number, capacity: number, dies: number, training: boolean): number {
  const chunks = Math.ceil(need / capacity);
  const l = unit.linears[0]!;
  const columns = Math.min(...unit.linears.map((x) => x.results[0]!.type.shape.at(-1)!));
  if (columns / chunks < dies) {
    throw errorAt(
      l.loc,
      'GY3001',
      `layer '${linearName(l)}' needs ${bytes(need)} of weight buffer per die${training ? ' (weights and their gradients)' : ''}, but a die holds ${bytes(capacity)}: even streamed in chunks of one output column per die (${dies} ${dies === 1 ? 'die' : 'dies'}) it does not fit`,
    );
  }
  return chunks;
}

export function fuseModule(m: Module, target: Target, strategy: Strategy, report: (line: string) => void, fusion: Fusion = 'greedy'): FusionGroup[] {
  const training = m.notes['train.mode'] === 'train';
  const grid = gridOf(target, m);
  const dies = sharingDies(grid);
  const uneven = HeadWeights.imbalance(m, strategy, grid);
  const units = findUnits(m);
  const acts = activationValues(m);
  const besides = training ? otherGradients(m, units, grid, acts) : new Map<Unit, number>();
  const crossing = crossingBytes(m, units, acts);
  const groups = groupUnits(units, target, training, strategy, fusion, dies, uneven, besides, (i) => crossing[i]!);
  const groupOfLinear = new Map<Op, Placement>();
  groups.forEach((g, i) =>
    g.units.forEach((u) => u.linears.forEach((l) => groupOfLinear.set(l, { group: i, block: u.kind === 'attention' ? 'attention' : 'ffn' }))),
  );
  assignGroups(m, groupOfLinear);
  for (const g of groups.filter((x) => x.chunks > 1)) {
    for (const l of g.units.flatMap((u) => u.linears)) l.notes = { ...l.notes, 'fuse.chunks': g.chunks };
  }
  m.notes['fuse.groups'] = groups.length;
  const capacity = bufferCapacity(target).weight;
  groups.forEach((g, i) => {
    const what = g.units.map((u) => `${u.kind === 'attention' ? 'attention block' : 'linear'} ${u.linears.map(linearName).join('+')}`);
    const next = groups[i + 1]?.units[0];
    const more = groups[i + 1]?.unitBytes[0] ?? 0;
    const last = units.indexOf(g.units[g.units.length - 1]!);
    const why = next && fusion === 'none'
      ? '; fusion=none: every unit alone'
      : next && g.bytesPerDie + more <= capacity
      ? `; cut before ${linearName(next.linears[0]!)}, where the forward pass sends ${bytes(crossing[last]!)} of activations through DRAM, the cheapest cut for the groups after`
      : next
      ? `; adding ${linearName(next.linears[0]!)} needs ${bytes(more)} more`
      : '';
    const size = g.chunks > 1 ? `${bytes(g.bytesPerDie)} per die, streamed in ${g.chunks} column chunks through the ${bytes(capacity)} weight buffer` : `${bytes(g.bytesPerDie)} of ${bytes(capacity)} weight buffer per die`;
    report(`group ${i}: ${what.join(', ')} — ${size}${g.chunks > 1 ? '' : why}`);
  });
  return groups;
}

/**
 * Bytes of forward activations that a cut after unit i would send through DRAM: those made
 * at or before unit i (an op belongs to the unit of the last Linear before it) and read
 * after it. Backward, their gradients cross the same cut, in proportion.
 */
function crossingBytes(m: Module, units: readonly Unit[], acts: ReadonlySet<Value>): number[] {
  const unitOf = new Map<Op, number>();
  units.forEach((u, i) => u.linears.forEach((l) => unitOf.set(l, i)));
  const made = new Map<Value, number>();
  const lastUse = new Map<Value, number>();
  let at = 0;
  for (const op of m.ops()) {
    if (!isForward(op)) continue;
    at = unitOf.get(op) ?? at;
    for (const v of op.operands) if (made.has(v)) lastUse.set(v, Math.max(lastUse.get(v) ?? at, at));
    for (const r of op.results) if (acts.has(r)) made.set(r, at);
  }
  // A difference array over the cuts after units 0 … n−2.
  const delta = new Array<number>(units.length + 1).fill(0);
  for (const [v, from] of made) {
    const to = lastUse.get(v);
    if (to === undefined || to <= from) continue;
    delta[from]! += byteSize(v.type);
    delta[to]! -= byteSize(v.type);
  }
  const out: number[] = [];
  let sum = 0;
  for (let i = 0; i < units.length; i++) out.push((sum += delta[i]!));
  return out;
}

/**
 * Weight-buffer bytes per die, by unit, of the gradients its backward computes from
 * activations besides its Linears' weight gradients: a position table's (summed over the
 * batch), a norm's scale and shift. Like weight gradients they accumulate across mini-batches
 * in the weight buffers, so the unit that computes them counts them. Each is split over one
 * axis of dies at least (tile2d's vector layouts, chosen later): this counts a share of the
 * longer axis, exact on square grids (a position gradient of [512, 12288] on 64×64: 384 KiB
 * per die). Ops that run beside DRAM (embedding and gather gradients) hold nothing on the dies.
 * A backward op belongs to the unit of the last Linear gradient before it, as assignGroups
 * places it.
 */
function otherGradients(m: Module, units: readonly Unit[], grid: Grid, acts: ReadonlySet<Value>): Map<Unit, number> {
  const unitOfWeight = new Map<Value, Unit>();
  for (const u of units) for (const l of u.linears) unitOfWeight.set(l.operands[1]!, u);
  const share = Math.max(grid.rows, grid.cols);
  const out = new Map<Unit, number>();
  let last: Unit | undefined = units[0];
  for (const op of m.ops()) {
    if (isForward(op) || op.kind === 'sgd' || op.kind === 'adam') continue;
    if (op.kind === 'linear_grad') {
      last = unitOfWeight.get(op.operands[1]!) ?? last;
      continue;
    }
    if (op.kind === 'embedding_grad' || op.kind === 'gather_grad' || !op.operands.some((v) => acts.has(v)) || last === undefined) continue;
    const bytesHere = op.results.filter((r) => !acts.has(r)).reduce((sum, r) => sum + Math.ceil(byteSize(r.type) / share), 0);
    if (bytesHere > 0) out.set(last, (out.get(last) ?? 0) + bytesHere);
  }
  return out;
}

/** Where an op runs: its fusion group, and the Transformer block it belongs to (for reports). */
interface Placement {
  readonly group: number;
  readonly block: 'attention' | 'ffn';
}

/**
 * Give every op a placement (see the header). `fuse.block` says whether an op belongs to an
 * attention or an FFN block, so traffic can be reported per block as Table III does.
 */
function assignGroups(m: Module, groupOfLinear: ReadonlyMap<Op, Placement>): void {
  const groupOfWeight = new Map([...groupOfLinear].map(([l, g]) => [l.operands[1]!, g]));
  const ops = m.ops();
  let fwd: Placement = { group: 0, block: 'attention' };
  let bwd: Placement | undefined;
  for (const op of ops) {
    let g: Placement;
    if (isForward(op)) {
      g = groupOfLinear.get(op) ?? fwd;
      fwd = g;
    } else {
      // linear_grad(x, w, ...) and the optimizer's update(w, dw, ...) find theirs by weight.
      const weight = op.kind === 'linear_grad' ? op.operands[1] : op.operands[0];
      const viaWeight = weight ? groupOfWeight.get(weight) : undefined;
      g = viaWeight ?? bwd ?? fwd;
      if (op.kind === 'linear_grad') bwd = g;
    }
    op.notes = { ...op.notes, 'fuse.group': g.group, 'fuse.block': g.block };
  }
}

export const fuse: Pass = {
  name: 'fuse',
  summary: 'group consecutive linear layers whose weights (and weight gradients) fit the weight buffers',
  options: {
    fusion: { kind: 'string', default: 'greedy', oneOf: FUSIONS, doc: 'greedy: units fuse while the weight buffers hold them, groups cut where the fewest activations cross to DRAM; none: every unit its own group (no layer fusion)' },
  },
  requires: ['train.mode'],
  establishes: ['fuse.groups'],
  run(m, ctx, options) {
    fuseModule(m, ctx.target, ctx.strategy, (line) => ctx.report('fuse', line), options.fusion as Fusion);
  },
};
