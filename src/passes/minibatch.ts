// minibatch: split the batch into mini-batches sized to the activation buffers (paper §III-B:
// "we divide a batch into multiple mini-batches as minimal execution units. This can help
// adapt the fixed hardware to arbitrary batch sizes"). The footprint of an op on a die is the
// tiles of its activation operands and results under the tiling plan, plus an attention
// core's score matrix; it grows linearly with the mini-batch, so the largest mini-batch that
// fits is capacity ÷ per-sample peak. A Linear whose output (or, backward, whose dy) does not
// fit for even one sample — a vocabulary projection — streams it in column chunks
// (`fuse.chunks`, shared with its gradient). Weights are loaded once per group and reused by every
// mini-batch. A strategy whose single sample overflows is still compiled (the paper marks
// such baselines with *): the overflow is recorded, not raised, and nothing is streamed for
// the buffer's sake, since it would still not fit.

import type { Module, Op, Value } from '../ir/module.js';
import { activationValues } from './activations.js';
import { linearName } from './units.js';
import { opDef } from '../ir/ops.js';
import { DTYPES } from '../ir/types.js';
import { bufferCapacity, type Target } from '../target/target.js';
import { bytes } from '../util/format.js';
import { error } from '../diagnostics/diagnostic.js';
import type { Pass, Strategy } from './pass.js';
import { sameSharding, specMaxBlock, specUnits, tileBytes, type Grid, type Sharding } from './sharding.js';
import { planTiling, type OpTiling, type TilingPlan } from './tile2d.js';
import { gridOf } from './balance.js';

export interface MinibatchPlan {
  readonly batch: number;
  readonly size: number;
  readonly count: number;
  /** Peak activation bytes per die for one sample, and the op where it peaks. */
  readonly perSampleBytes: number;
  readonly peakOp: Op | undefined;
  readonly peakBytes: number;
  readonly fits: boolean;
  /** Linears that would have streamed their outputs in chunks had that made one sample fit. */
  readonly unstreamed: number;
}

/**
 * Activation bytes one die holds while `op` runs, for the whole batch: a part that stays
 * resident and a part a Linear can stream in column chunks (its output forward, its dy
 * backward). A Linear's backward follows Algorithm 1: dx = dy·wᵀ is computed and
 * reduce-scattered (steps 2-5) before x is gathered for dw (steps 6-7), so x and dx are
 * never resident together.
 */
export function opFootprint(op: Op, t: OpTiling, grid: Grid, acts: ReadonlySet<Value>): { fixed: number; streamed: number } {
  const tile = (v: Value, s: Sharding | undefined) => (s && acts.has(v) ? tileBytes(v.type, s, grid) : 0);
  if (op.kind === 'linear_grad') {
    const wrt = op.attrs.wrt as readonly number[];
    const dx = wrt[0] === 0 ? tile(op.results[0]!, t.out[0]) : 0;
    const last = op.operands.length - 1;
    return { fixed: Math.max(dx, tile(op.operands[0]!, t.in[0])), streamed: tile(op.operands[last]!, t.in[last]) };
  }
  if (op.kind === 'linear') return { fixed: tile(op.operands[0]!, t.in[0]), streamed: tile(op.results[0]!, t.out[0]) };
  // A last-axis split or concat that keeps the sharding is a view of its operand's tiles.
  if ((op.kind === 'split' || op.kind === 'concat') && isView(t)) return { fixed: 0, streamed: 0 };
  let fixed = 0;
  const specs = opDef(op.kind).operands;
  op.operands.forEach((v, i) => {
    if (!specs[Math.min(i, specs.length - 1)]?.shapeOnly) fixed += tile(v, t.in[i]);
  });
  op.results.forEach((r, i) => (fixed += tile(r, t.out[i])));
  if (op.kind === 'attention' || op.kind === 'attention_grad') fixed += scoreBytes(op, t.out[0]!, grid);
  return { fixed, streamed: 0 };
}

function isView(t: OpTiling): boolean {
  const first = t.in[0];
  return first !== undefined && first.cols.length > 0 && [...t.in, ...t.out].every((s) => s !== undefined && sameSharding(s, first));
}

function chunksOf(op: Op): number {
  return (op.notes?.['fuse.chunks'] as number | undefined) ?? 1;
}

/**
 * The column chunks to stream the Linears in whose output (or dy) would otherwise dominate the
 * buffer — vocabulary projections — up to one output column per die of the split. A Linear
 * and its gradient share the count (it belongs to their weight).
 */
function oversizeChunks(sizes: ReadonlyMap<Op, { fixed: number; streamed: number }>, batch: number, capacity: number, grid: Grid, plan: TilingPlan): Map<Op, number> {
  // Streaming costs a collective round per chunk, so only a part larger than half the buffer
  // per sample streams — vocabulary projections; the paper's largest activation, the
  // gathered Z of 4sh/√N, takes at most half at weak scaling — in chunks of at most a quarter.
  const half = (capacity * batch) / 2;
  const perWeight = new Map<Value, number>();
  for (const [op, f] of sizes) {
    if (f.streamed <= half) continue;
    const t = plan.get(op)!;
    const spec = op.kind === 'linear' ? t.out[0]! : t.in[t.in.length - 1]!;
    const maxChunks = Math.max(1, Math.floor(op.results[0]!.type.shape.at(-1)! / specUnits(spec, 'cols', grid)));
    const chunks = Math.min(maxChunks, Math.max(chunksOf(op), Math.ceil(f.streamed / (half / 2))));
    const w = op.operands[1]!;
    perWeight.set(w, Math.max(perWeight.get(w) ?? 1, chunks));
  }
  const out = new Map<Op, number>();
  for (const op of sizes.keys()) {
    const c = perWeight.get(op.operands[1]!);
    if ((op.kind === 'linear' || op.kind === 'linear_grad') && c !== undefined) out.set(op, Math.max(c, chunksOf(op)));
  }
  return out;
}

/** The largest footprint of any op, with each Linear streamed in `chunks(op)` column chunks. */
function peakOf(sizes: ReadonlyMap<Op, { fixed: number; streamed: number }>, chunks: (op: Op) => number): { peak: number; peakOp: Op | undefined } {
  let peak = 0;
  let peakOp: Op | undefined;
  for (const [op, f] of sizes) {
    const bytesNow = f.fixed + f.streamed / chunks(op);
    if (bytesNow > peak) [peak, peakOp] = [bytesNow, op];
  }
  return { peak, peakOp };
}

/**
 * The per-die softmax(q·kᵀ) matrix: (heads on this die, at least a share of one) × (its query
 * rows, of all b·s when the queries are not split) × t.
 */
function scoreBytes(op: Op, heads: Sharding, grid: Grid): number {
  const [b, s] = op.operands[0]!.type.shape as [number, number];
  const t = op.operands[1]!.type.shape[1]!;
  const perDie = Math.max(1, specMaxBlock(op.attrs.heads as number, heads, 'cols', grid));
  const rows = specMaxBlock(b * s, heads, 'rows', grid);
  return perDie * rows * t * DTYPES[op.operands[0]!.type.dtype].bytes;
}

export function planMinibatch(m: Module, target: Target, strategy: Strategy, forced = 0): MinibatchPlan {
  const grid = gridOf(target, m);
  const plan = planTiling(m, target, strategy);
  const batch = m.inputs[0]?.type.shape[0] ?? 1;
  const acts = activationValues(m);
  const sizes = new Map<Op, { fixed: number; streamed: number }>();
  for (const [op, t] of plan) {
    if (!t.dram && opDef(op.kind).category !== 'collective') sizes.set(op, opFootprint(op, t, grid, acts));
  }
  const capacity = bufferCapacity(target).activation;
  const proposed = oversizeChunks(sizes, batch, capacity, grid, plan);
  let { peak, peakOp } = peakOf(sizes, (op) => proposed.get(op) ?? chunksOf(op));
  let unstreamed = 0;
  if (peak / batch > capacity) {
    // Even streamed, one sample overflows: chunks would add collective rounds without making
    // it fit. The strategy runs as the paper's starred baselines do, as if its buffer were
    // large enough (Fig. 8: "require SRAM capacity exceeding the hardware settings").
    ({ peak, peakOp } = peakOf(sizes, chunksOf));
    unstreamed = [...proposed].filter(([op, c]) => c > chunksOf(op)).length;
  } else {
    for (const [op, c] of proposed) op.notes = { ...op.notes, 'fuse.chunks': c };
  }
  const perSample = peak / batch;
  const fitting = Math.floor(capacity / Math.max(perSample, 1));
  const size = Math.max(1, Math.min(batch, forced > 0 ? forced : fitting));
  return { batch, size, count: Math.ceil(batch / size), perSampleBytes: perSample, peakOp, peakBytes: perSample * size, fits: fitting >= size, unstreamed };
}

export const minibatch: Pass = {
  name: 'minibatch',
  summary: 'pick the largest mini-batch whose activations fit each die (any batch size runs)',
  options: {
    size: { kind: 'int', default: 0, doc: 'samples per mini-batch; 0 picks the largest that fits the activation buffer' },
  },
  requires: ['fuse.groups'],
  establishes: ['minibatch.size'],
  run(m, ctx, options) {
    const forced = options.size as number;
    if (!Number.isInteger(forced) || forced < 0) throw error('GY9001', `minibatch{size=${forced}}: expected a whole number ≥ 0`);
    const p = planMinibatch(m, ctx.target, ctx.strategy, forced);
    Object.assign(m.notes, {
      'minibatch.batch': p.batch,
      'minibatch.size': p.size,
      'minibatch.count': p.count,
      'minibatch.activation_peak_bytes': Math.ceil(p.peakBytes),
      'minibatch.sram_ok': p.fits,
      ...(forced > 0 ? { 'minibatch.forced': true } : {}),
    });
    const where = p.peakOp ? ` at ${p.peakOp.kind} '${p.peakOp.kind === 'linear' || p.peakOp.kind === 'linear_grad' ? linearName(p.peakOp) : p.peakOp.results[0]!.name}'` : '';
    const cap = bytes(bufferCapacity(ctx.target).activation);
    ctx.report(
      'minibatch',
      p.fits
        ? `${forced > 0 ? 'chosen ' : ''}mini-batch ${p.size} of batch ${p.batch} (${p.count} mini-batches): ${bytes(p.perSampleBytes)} per sample per die at the peak${where}, buffer ${cap}`
        : forced > 0
          ? `chosen mini-batch ${p.size} needs ${bytes(p.peakBytes)} per die${where}, more than the ${cap} activation buffer: it overflows SRAM`
          : `one sample needs ${bytes(p.perSampleBytes)} per die${where}, more than the ${cap} activation buffer: runs with mini-batch 1 and overflows SRAM${p.unstreamed > 0 ? ` (${p.unstreamed} Linears left unstreamed: column chunks would not make it fit)` : ''}`,
    );
  },
};
