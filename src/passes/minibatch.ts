// minibatch: split the batch into mini-batches sized to the activation buffers (paper §III-B:
// "we divide a batch into multiple mini-batches as minimal execution units. This can help
// adapt the fixed hardware to arbitrary batch sizes"). The footprint of an op on a die is the
// tiles of its activation operands and results under the tiling plan, plus an attention
// core's score matrix; it grows linearly with the mini-batch, so the largest mini-batch that
// fits is capacity ÷ per-sample peak. Weights are loaded once per group and reused by every
// mini-batch. A strategy whose single sample overflows is still compiled (the paper marks
// such baselines with *): the overflow is recorded, not raised.

import type { Module, Op, Value } from '../ir/module.js';
import { activationValues } from './activations.js';
import { opDef } from '../ir/ops.js';
import { DTYPES } from '../ir/types.js';
import type { Target } from '../target/target.js';
import { bytes } from '../util/format.js';
import type { Pass, Strategy } from './pass.js';
import { span, tileBytes, type Grid, type Sharding } from './sharding.js';
import { planTiling, type OpTiling } from './tile2d.js';

export interface MinibatchPlan {
  readonly batch: number;
  readonly size: number;
  readonly count: number;
  /** Peak activation bytes per die for one sample, and the op where it peaks. */
  readonly perSampleBytes: number;
  readonly peakOp: Op | undefined;
  readonly peakBytes: number;
  readonly fits: boolean;
}

/**
 * Activation bytes one die holds while `op` runs, for the whole batch. A Linear's backward
 * follows Algorithm 1: dx = dy·wᵀ is computed and reduce-scattered (steps 2-5) before x is
 * gathered for dw (steps 6-7), so x and dx are never resident together.
 */
export function opFootprint(op: Op, t: OpTiling, grid: Grid, acts: ReadonlySet<Value>): number {
  if (op.kind === 'linear_grad') {
    const tile = (v: Value, s: Sharding | undefined) => (s && acts.has(v) ? tileBytes(v.type, s, grid) : 0);
    const wrt = op.attrs.wrt as readonly number[];
    const dx = wrt[0] === 0 ? tile(op.results[0]!, t.out[0]) : 0;
    const last = op.operands.length - 1;
    return tile(op.operands[last]!, t.in[last]) + Math.max(dx, tile(op.operands[0]!, t.in[0]));
  }
  let total = 0;
  op.operands.forEach((v, i) => {
    const s = t.in[i];
    if (s && acts.has(v)) total += tileBytes(v.type, s, grid);
  });
  // A Linear streamed in column chunks (fuse.chunks) holds one chunk of its output at a time.
  const chunks = (op.notes?.['fuse.chunks'] as number | undefined) ?? 1;
  op.results.forEach((r, i) => {
    if (acts.has(r)) total += tileBytes(r.type, t.out[i]!, grid) / chunks;
  });
  if (op.kind === 'attention' || op.kind === 'attention_grad') total += scoreBytes(op, t.out[0]!, grid);
  return total;
}

/** The per-die softmax(q·kᵀ) matrix: b × (heads on this die, at least a share of one) × s × t. */
function scoreBytes(op: Op, heads: Sharding, grid: Grid): number {
  const [b, s] = op.operands[0]!.type.shape as [number, number];
  const t = op.operands[1]!.type.shape[1]!;
  const perDie = Math.max(1, Math.ceil((op.attrs.heads as number) / span(heads.cols, grid)));
  return b * perDie * s * t * DTYPES[op.operands[0]!.type.dtype].bytes;
}

export function planMinibatch(m: Module, target: Target, strategy: Strategy): MinibatchPlan {
  const grid = { rows: target.package.rows, cols: target.package.cols };
  const plan = planTiling(m, target, strategy);
  const batch = m.inputs[0]?.type.shape[0] ?? 1;
  const acts = activationValues(m);
  let peak = 0;
  let peakOp: Op | undefined;
  for (const [op, t] of plan) {
    if (t.dram || opDef(op.kind).category === 'collective') continue;
    const f = opFootprint(op, t, grid, acts);
    if (f > peak) [peak, peakOp] = [f, op];
  }
  const perSample = peak / batch;
  const capacity = target.die.activationBufferBytes;
  const fitting = Math.floor(capacity / Math.max(perSample, 1));
  const size = Math.max(1, Math.min(batch, fitting));
  return { batch, size, count: Math.ceil(batch / size), perSampleBytes: perSample, peakOp, peakBytes: perSample * size, fits: fitting >= 1 };
}

export const minibatch: Pass = {
  name: 'minibatch',
  summary: 'pick the largest mini-batch whose activations fit each die (any batch size runs)',
  options: {},
  requires: ['fuse.groups'],
  establishes: ['minibatch.size'],
  run(m, ctx) {
    const p = planMinibatch(m, ctx.target, ctx.strategy);
    Object.assign(m.notes, {
      'minibatch.batch': p.batch,
      'minibatch.size': p.size,
      'minibatch.count': p.count,
      'minibatch.activation_peak_bytes': Math.ceil(p.peakBytes),
      'minibatch.sram_ok': p.fits,
    });
    const where = p.peakOp ? ` at ${p.peakOp.kind} '${p.peakOp.results[0]!.name}'` : '';
    const cap = bytes(ctx.target.die.activationBufferBytes);
    ctx.report(
      'minibatch',
      p.fits
        ? `mini-batch ${p.size} of batch ${p.batch} (${p.count} mini-batches): ${bytes(p.perSampleBytes)} per sample per die at the peak${where}, buffer ${cap}`
        : `one sample needs ${bytes(p.perSampleBytes)} per die${where}, more than the ${cap} activation buffer: runs with mini-batch 1 and overflows SRAM`,
    );
  },
};
