// Which values are activations — data that flows from the model's inputs and scales with the
// batch — as opposed to weights, weight views and weight gradients. Activations live in the
// dies' activation buffers and move over the NoP; weight-like values live in the weight
// buffers or in DRAM. A forward result is an activation if any operand is; a gradient op's
// result is one if the operand it is the gradient of is (a Linear's dx yes, its dw no);
// optimizer results never are, nor is anything without the batch as its leading dimension.

import type { Module, Op, Value } from '../ir/module.js';

export function activationValues(m: Module): Set<Value> {
  // Activations keep the batch as their leading dimension; a sum over the batch (a broadcast
  // weight's gradient, such as a position table's) is weight-shaped.
  const batch = m.inputs[0]?.type.shape[0];
  const batched = (v: Value) => v.type.shape[0] === batch;
  const acts = new Set<Value>(m.inputs.filter(batched));
  for (const op of m.ops()) {
    const wrt = op.attrs.wrt as readonly number[] | undefined;
    if (op.kind === 'sgd' || op.kind === 'adam' || !keepsBatch(op)) continue;
    op.results.forEach((r, i) => {
      const from = wrt ? [op.operands[wrt[i]!]!] : op.operands;
      if (batched(r) && from.some((v) => acts.has(v))) acts.add(r);
    });
  }
  return acts;
}

/** Ops whose result may keep the batch axis first (a sum over it, or a transpose moving it, may not). */
function keepsBatch(op: Op): boolean {
  if (op.kind === 'reduce') {
    const rank = op.operands[0]!.type.shape.length;
    return !(op.attrs.axes as readonly number[]).some((a) => (a < 0 ? a + rank : a) === 0);
  }
  if (op.kind === 'transpose') return (op.attrs.perm as readonly number[])[0] === 0;
  return true;
}
