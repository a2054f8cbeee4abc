// The die's precision: a die stores, moves and multiplies numbers at its own precision
// (targets/dies/*.yaml `precision`), so a model written in f32 compiled for a bf16 die keeps
// its tensors in bf16 — half the bytes in every buffer, DRAM transfer and collective. compile()
// applies this before the pass pipeline: every f32 value (and every cast to f32) takes the
// die's element type; other types (integers, f64) are left as written. A model already at the
// die's precision is unchanged, as are f32 dies.

import type { Module } from '../ir/module.js';
import type { DType } from '../ir/types.js';
import type { Precision, Target } from '../target/target.js';

const DTYPE_OF: Record<Precision, DType> = { fp32: 'f32', bf16: 'bf16', fp16: 'f16' };

/** Retype `m`'s f32 tensors to the target's precision; returns how many values changed. */
export function atDiePrecision(m: Module, target: Target): number {
  const to = DTYPE_OF[target.die.precision];
  if (to === 'f32') return 0;
  let changed = 0;
  for (const v of m.values()) {
    if (v.type.dtype !== 'f32') continue;
    v.type = { ...v.type, dtype: to };
    changed++;
  }
  for (const op of m.ops()) if (op.kind === 'cast' && op.attrs.to === 'f32') op.attrs = { ...op.attrs, to };
  return changed;
}
