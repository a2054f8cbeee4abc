// The registry of ONNX operators the frontend understands: for each, shape and dtype
// inference and, where folding or interpreting needs it, evaluation on known numbers.
// An operator missing here is reported as unsupported (GY5002), with the first node using it.

import type { OnnxOpDef } from '../infer.js';

const Identity: OnnxOpDef = {
  infer: (ctx) => [{ dtype: ctx.inputs[0]!.dtype, dims: ctx.inputs[0]!.dims }],
  evaluate: (_ctx, [x]) => [x!],
};

export const ONNX_OPS: Readonly<Record<string, OnnxOpDef>> = {
  Identity,
};
