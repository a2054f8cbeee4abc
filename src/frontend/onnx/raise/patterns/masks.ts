// Attention masks. A mask whose numbers are known and that keeps exactly j ≤ i (folded from
// Trilu, a stored lower-triangular buffer, a Range comparison) becomes `causal`; a mask that
// keeps everything disappears; anything else (padding from an input, a bias) becomes the
// additive mask operand, a Where mask turned into 0 / fill. A sum of masks is split into its
// terms first, so Llama's causal + padding mask gives `causal` and a padding operand.

import type { Value } from '../../../../ir/module.js';
import { numel } from '../../../../ir/types.js';
import type { Tensor } from '../../tensor.js';
import { F32_MAX, type Emitter } from '../emit.js';
import type { GraphView } from '../graph.js';
import { groupSize } from '../layout.js';
import type { Plan } from './heads.js';

/** Fill values at or below this are "masked out" (-inf, finfo.min, -1e9, the older -10000). */
export const MASKED = -1e4;

export type MaskSpec =
  | { kind: 'where'; cond: string; keepWhenTrue: boolean; fill: number; out: string }
  | { kind: 'add'; mask: string };

interface MaskPlan {
  causal: boolean;
  /** Builds the additive mask operand, if one is needed. */
  operand?: () => Value;
}

export function planMasks(e: Emitter, masks: readonly MaskSpec[], plan: Plan): MaskPlan | undefined {
  const S = groupSize(plan.s);
  const T = groupSize(plan.k.groups[1]!);
  let causal = false;
  const operands: (() => Value)[] = [];
  const specs = masks.flatMap((m): MaskSpec[] => (m.kind === 'add' ? maskTerms(e.g, m.mask, 0).map((t) => ({ kind: 'add', mask: t })) : [m]));
  for (const m of specs) {
    const keep = keepOf(e, m);
    if (keep && keep.every) continue;
    if (keep && keep.causal(S, T)) {
      causal = true;
      continue;
    }
    const shape = m.kind === 'where' ? e.g.facts(m.cond).dims : e.g.facts(m.mask).dims;
    const irShape = maskShape(shape, plan);
    if (!irShape) return undefined;
    operands.push(() => additive(e, m, irShape));
  }
  if (operands.length === 0) return { causal };
  return {
    causal,
    operand: () => operands.map((f) => f()).reduce((a, b) => e.op('add', [a, b])),
  };
}

/**
 * The terms of an additive mask: a sum of masks (Llama's causal + padding) is split so a
 * causal term can become `causal` while the rest stays an operand. A Slice that cuts
 * nothing is looked through.
 */
export function maskTerms(g: GraphView, name: string, depth: number): string[] {
  if (depth > 4 || g.known(name)) return [name];
  const d = g.def(name, undefined, true);
  if (d?.opType === 'Add' && d.inputs.length === 2) return d.inputs.flatMap((i) => maskTerms(g, i, depth + 1));
  const steps = d?.inputs[4] ? g.known(d.inputs[4]) : undefined;
  const forward = !d?.inputs[4] || (steps !== undefined && Array.from(steps.data).every((x) => x === 1));
  if (d?.opType === 'Slice' && forward && sameShape(g.facts(d.inputs[0]!).dims, g.facts(name).dims)) return maskTerms(g, d.inputs[0]!, depth + 1);
  return [name];
}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

interface Keep {
  /** Every position is kept (the mask does nothing). */
  every: boolean;
  causal(S: number, T: number): boolean;
}

/** Which positions a known mask keeps. */
function keepOf(e: Emitter, m: MaskSpec): Keep | undefined {
  const t: Tensor | undefined = e.g.known(m.kind === 'where' ? m.cond : m.mask);
  if (!t) return undefined;
  const keepAt = m.kind === 'where' ? (i: number) => (t.data[i] !== 0) === m.keepWhenTrue : (i: number) => t.data[i] === 0;
  const maskedAt = m.kind === 'where' ? (i: number) => !keepAt(i) : (i: number) => t.data[i]! <= MASKED;
  let every = true;
  for (let i = 0; i < t.data.length; i++) {
    if (!keepAt(i) && !maskedAt(i)) return undefined; // a bias, not a mask
    if (!keepAt(i)) every = false;
  }
  return { every, causal: (S, T) => isCausal(t, keepAt, S, T) };
}

/** keep[..., i, j] = j ≤ i for every leading index, over an S×T block with S = T. */
function isCausal(t: Tensor, keepAt: (i: number) => boolean, S: number, T: number): boolean {
  const r = t.dims.length;
  if (r < 2 || S !== T || t.dims[r - 2] !== S || t.dims[r - 1] !== T) return false;
  for (let base = 0; base < t.data.length; base += S * T) {
    for (let i = 0; i < S; i++) for (let j = 0; j < T; j++) if (keepAt(base + i * T + j) !== j <= i) return false;
  }
  return true;
}

/**
 * The IR shape of a mask whose ONNX shape broadcasts against the scores
 * [q batch axes..., S, T]: [S', T'] without batch extent, else [b', h', S', T'] when each
 * batch axis it spans holds only batch atoms or only head atoms, batch first.
 */
function maskShape(shape: readonly number[], plan: Plan): number[] | undefined {
  const groups = plan.qBatchGroups;
  const r = groups.length + 2;
  if (shape.length > r || shape.length < 1) return undefined;
  const full = [...Array.from({ length: r - shape.length }, () => 1), ...shape];
  const [sm, tm] = full.slice(-2) as [number, number];
  let b = 1;
  let h = 1;
  for (const [i, g] of groups.entries()) {
    const n = full[i]!;
    if (n === 1) continue;
    if (n !== groupSize(g)) return undefined;
    const heads = g.every((a) => plan.headAtoms.includes(a));
    const batch = g.every((a) => !plan.headAtoms.includes(a));
    if (heads) h *= n;
    else if (batch && h === 1) b *= n;
    else return undefined;
  }
  if (b === 1 && h === 1) return [sm, tm];
  return [b, h, sm, tm];
}

/** The additive form of a mask, reshaped for the IR. */
function additive(e: Emitter, m: MaskSpec, shape: readonly number[]): Value {
  let v: Value;
  if (m.kind === 'add') v = e.tensor(m.mask);
  else {
    const cond = e.tensor(m.cond);
    const dtype = e.dtype(e.g.facts(m.out).dtype, m.out);
    const zero = e.scalar(0, dtype, `${m.cond}.keep`);
    const fill = e.scalar(Math.max(m.fill, -F32_MAX), dtype, `${m.cond}.fill`);
    v = m.keepWhenTrue ? e.op('where', [cond, zero, fill]) : e.op('where', [cond, fill, zero]);
  }
  return numel(v.type.shape) === numel(shape) ? e.reshape(v, shape) : v;
}
