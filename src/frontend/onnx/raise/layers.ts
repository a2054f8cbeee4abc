// Layer indices for a raised module, as the DSL's `repeat` gives them: every op of the i-th
// Transformer block gets `layer i`; embeddings before the first block and the final norm and
// head after the last get none. An ONNX graph has no blocks, so they are read off the
// residual stream: walking the ops in order, a *cut* is a point where a single value carries
// everything computed from the model's token input so far (the residual between two
// sub-blocks). Cuts split the ops into segments; a block starts at the segment holding an
// attention core and runs to the next such segment. The last block spans as many segments as
// the one before it (so a post-norm block keeps its closing LayerNorm while a pre-norm
// model's final norm stays outside); a single block ends with its last residual add.

import type { Module, Op, Value } from '../../../ir/module.js';

export function assignLayers(m: Module): void {
  const ops = m.ops();
  const cores = ops.filter((op) => op.kind === 'attention');
  if (cores.length === 0) return;
  const stream = streamValues(ops);
  const segments = segmentsOf(m, ops, stream);
  const segOf = new Map<Op, number>();
  segments.forEach((seg, i) => seg.forEach((op) => segOf.set(op, i)));
  const starts = [...new Set(cores.map((c) => segOf.get(c)!))].sort((a, b) => a - b);
  const ends = starts.map((_, i) => starts[i + 1] ?? lastEnd(segments, starts, stream));
  starts.forEach((s, layer) => {
    for (let k = s; k < ends[layer]!; k++) for (const op of segments[k]!) op.layer = layer;
  });
}

/**
 * Values computed from the main input: the graph inputs feeding the first Linear (or
 * attention core). Masks and rotary tables made from other inputs or constants are context
 * that every block reads, not the residual stream.
 */
function streamValues(ops: readonly Op[]): Set<Value> {
  const first = ops.find((op) => op.kind === 'linear') ?? ops.find((op) => op.kind === 'attention')!;
  const mainInputs = new Set<Value>();
  const seen = new Set<Value>();
  const back = [first.operands[0]!];
  while (back.length) {
    const v = back.pop()!;
    if (seen.has(v)) continue;
    seen.add(v);
    if (v.kind === 'input') mainInputs.add(v);
    if (v.def) back.push(...v.def.operands);
  }
  const stream = new Set<Value>(mainInputs);
  for (const op of ops) if (op.operands.some((v) => stream.has(v))) for (const r of op.results) stream.add(r);
  return stream;
}

/** Splits the ops at cuts; a segment that makes no stream value joins the one before it. */
function segmentsOf(m: Module, ops: readonly Op[], stream: ReadonlySet<Value>): Op[][] {
  const n = ops.length;
  const index = new Map(ops.map((op, i) => [op, i]));
  const live = new Array<number>(n + 1).fill(0);
  // A value made by op i (inputs: i = -1) is live across boundaries i+1 .. its last use (boundary b sits before op b).
  const count = (r: Value, i: number) => {
    if (!stream.has(r)) return;
    const uses = m.users(r).map((u) => index.get(u)!);
    const last = m.outputs.includes(r) ? n : Math.max(i, ...uses);
    for (let b = Math.max(i + 1, 1); b <= Math.min(last, n - 1); b++) live[b] = live[b]! + 1;
  };
  for (const v of m.inputs) count(v, -1);
  for (const [i, op] of ops.entries()) for (const r of op.results) count(r, i);
  const segments: Op[][] = [];
  let cur: Op[] = [];
  for (const [i, op] of ops.entries()) {
    if (i > 0 && live[i]! <= 1) {
      segments.push(cur);
      cur = [];
    }
    cur.push(op);
  }
  segments.push(cur);
  const merged: Op[][] = [];
  for (const seg of segments) {
    const makesStream = seg.some((op) => op.results.some((r) => stream.has(r)));
    if (!makesStream && merged.length > 0) merged[merged.length - 1]!.push(...seg);
    else merged.push(seg);
  }
  return merged;
}

/** Where the last block ends (exclusive segment index). */
function lastEnd(segments: readonly Op[][], starts: readonly number[], stream: ReadonlySet<Value>): number {
  const last = starts[starts.length - 1]!;
  if (starts.length >= 2) return Math.min(segments.length, last + (last - starts[starts.length - 2]!));
  let end = last + 1;
  for (let k = last; k < segments.length; k++) {
    if (segments[k]!.some((op) => op.kind === 'add' && op.operands.every((v) => stream.has(v)))) end = k + 1;
  }
  return end;
}
