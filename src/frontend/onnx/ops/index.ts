// The registry of ONNX operators the frontend understands: for each, shape and dtype
// inference and, where folding or interpreting needs it, evaluation on known numbers.
// An operator missing here is reported as unsupported (GY5002), with the first node using it.
// Definitions are grouped by family: data movement and shape arithmetic (shape.ts),
// elementwise arithmetic and reductions (elementwise.ts), and the linear-algebra and
// normalisation operators (linalg.ts).

import type { OnnxOpDef } from '../infer.js';
import { ELEMENTWISE_OPS } from './elementwise.js';
import { LINALG_OPS } from './linalg.js';
import { SHAPE_OPS } from './shape.js';

export const ONNX_OPS: Readonly<Record<string, OnnxOpDef>> = {
  ...SHAPE_OPS,
  ...ELEMENTWISE_OPS,
  ...LINALG_OPS,
};
