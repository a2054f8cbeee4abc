// Which values are activations — data that flows from the model's inputs and scales with the
// batch — as opposed to weights, weight views and weight gradients. Activations live in the
// dies' activation buffers and move over the NoP; weight-like values live in the weight
// buffers or in DRAM. A forward result is an activation if any operand is; a gradient op's
// result is one if the operand it is the gradient of is (a Linear's dx yes, its dw no);
// optimizer results never are, nor is anything without the batch as its leading dimension.

import type { Module, Value } from '../ir/module.js';

export function activationValues(m: Module): Set<Value> {
  // Activations keep the batch as their leading dimension; a sum over the batch (a broadcast
  // weight's gradient, such as a position table's) is weight-shaped.
  const batch = m.inputs[0]?.type.shape[0];
  const batched = (v: Value) => v.type.shape[0] === batch;
  const acts = new Set<Value>(m.inputs.filter(batched));
  for (const op of m.ops()) {
    const wrt = op.attrs.wrt as readonly number[] | undefined;
    if (op.kind === 'sgd' || op.kind === 'adam') continue;
    op.results.forEach((r, i) => {
      const from = wrt ? [op.operands[wrt[i]!]!] : op.operands;
      if (batched(r) && from.some((v) => acts.has(v))) acts.add(r);
    });
  }
  return acts;
}
