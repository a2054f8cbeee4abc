// The ONNX frontend's entry point: an .onnx file in, an IR Module out. Reading (model.ts)
// decodes the protobuf with lazily loaded tensor data, inference (infer.ts) binds the input
// shapes and folds shape arithmetic, and raising (raise/) recognises transformer structure
// and builds the Module. Sizes of dynamic axes come from `--input-shape NAME=2x32`; `--batch`
// and `--seq` bind the first two axes of every input whose axes there are dynamic, and a
// symbolic axis name (dim_param) bound once is bound wherever it appears.

import { error } from '../../diagnostics/diagnostic.js';
import type { Module } from '../../ir/module.js';
import { inferGraph } from './infer.js';
import { readOnnxModel, type OnnxDim, type OnnxModel } from './model.js';
import { raiseGraph } from './raise/raise.js';

export interface OnnxLoadOptions {
  /** Whole shapes of graph inputs, by name. */
  readonly inputShapes?: Readonly<Record<string, readonly number[]>> | undefined;
  /** Binds axis 0 of every input whose axis 0 is dynamic. */
  readonly batch?: number | undefined;
  /** Binds axis 1 of every input whose axis 1 is dynamic. */
  readonly seq?: number | undefined;
}

export function loadOnnx(path: string, opts: OnnxLoadOptions = {}): Module {
  const model = readOnnxModel(path);
  const inputShapes = bindShapes(model, opts);
  return raiseGraph(inferGraph(model, { inputShapes })).module;
}

/** Input shapes for inference: given ones, plus every input whose axes all become known. */
export function bindShapes(model: OnnxModel, opts: OnnxLoadOptions): Record<string, number[]> {
  const given = opts.inputShapes ?? {};
  const out: Record<string, number[]> = Object.fromEntries(Object.entries(given).map(([k, v]) => [k, [...v]]));
  const symbols = new Map<string, number>();
  for (const input of model.graph.inputs) {
    const shape = given[input.name];
    if (!shape || !input.dims) continue;
    input.dims.forEach((d, i) => {
      if (typeof d === 'string' && shape[i] !== undefined) symbols.set(d, shape[i]!);
    });
  }
  // --batch and --seq name a symbol wherever it first appears at axis 0 or 1.
  for (const input of model.graph.inputs) {
    const [d0, d1] = given[input.name] ? [] : input.dims ?? [];
    if (typeof d0 === 'string' && opts.batch !== undefined && !symbols.has(d0)) symbols.set(d0, opts.batch);
    if (typeof d1 === 'string' && opts.seq !== undefined && !symbols.has(d1)) symbols.set(d1, opts.seq);
  }
  for (const input of model.graph.inputs) {
    if (given[input.name] || !input.dims) continue;
    const dims = input.dims.map((d, i) => bindAxis(model, input.name, d, i, opts, symbols));
    if (dims.every((d): d is number => d !== undefined)) {
      if (input.dims.some((d) => typeof d !== 'number' || d < 0)) out[input.name] = dims;
    }
  }
  return out;
}

function bindAxis(model: OnnxModel, name: string, d: OnnxDim, axis: number, opts: OnnxLoadOptions, symbols: Map<string, number>): number | undefined {
  const flag = axis === 0 ? opts.batch : axis === 1 ? opts.seq : undefined;
  const fixed = typeof d === 'number' && d >= 0;
  if (flag !== undefined && fixed && d !== flag) {
    throw error('GY9001', `--${axis === 0 ? 'batch' : 'seq'} ${flag}: input '${name}' of '${model.file}' has axis ${axis} fixed to ${d}; only dynamic axes can be set (re-export with dynamic axes)`);
  }
  if (fixed) return d;
  if (typeof d === 'string' && symbols.has(d)) return symbols.get(d);
  return flag;
}
