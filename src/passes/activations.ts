// Which values are activations — data that flows from the model's inputs and scales with the
// batch — as opposed to weights, weight views and weight gradients. Activations live in the
// dies' activation buffers and move over the NoP; weight-like values live in the weight
// buffers or in DRAM. A forward result is an activation if any operand is; a gradient op's
// result is one if the operand it is the gradient of is (a Linear's dx yes, its dw no);
// optimizer results never are.

import type { Module, Value } from '../ir/module.js';

export function activationValues(m: Module): Set<Value> {
  const acts = new Set<Value>(m.inputs);
  for (const op of m.ops()) {
    const wrt = op.attrs.wrt as readonly number[] | undefined;
    if (op.kind === 'sgd' || op.kind === 'adam') continue;
    op.results.forEach((r, i) => {
      const from = wrt ? [op.operands[wrt[i]!]!] : op.operands;
      if (from.some((v) => acts.has(v))) acts.add(r);
    });
  }
  return acts;
}
