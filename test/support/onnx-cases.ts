// ONNX's single-operator conformance cases (test/data/onnx-node-tests): where they are, their
// tensor files, and a case's model with some inputs stored as constants (compiling needs a
// Reshape's shape or a Slice's starts as numbers, which the cases feed as inputs).

import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { LazyTensor, OnnxModel } from '../../src/frontend/onnx/model.js';
import type { Tensor } from '../../src/frontend/onnx/tensor.js';

export const CASES_DIR = fileURLToPath(new URL('../data/onnx-node-tests/', import.meta.url));

/** Every case's folder name (test_…), sorted. */
export const CASES: readonly string[] = readdirSync(CASES_DIR, { withFileTypes: true })
  .filter((d) => d.isDirectory() && d.name.startsWith('test_'))
  .map((d) => d.name)
  .sort();

/** The .pb files of a data set, in index order (input_0.pb, input_1.pb, ...). */
export function tensorFiles(dir: string, prefix: 'input' | 'output'): string[] {
  const files: string[] = [];
  for (let i = 0; existsSync(join(dir, `${prefix}_${i}.pb`)); i++) files.push(join(dir, `${prefix}_${i}.pb`));
  return files;
}

/** The model with some graph inputs turned into initializers holding the case's numbers. */
export function withConstants(model: OnnxModel, constants: Readonly<Record<string, Tensor>>): OnnxModel {
  const initializers = new Map<string, LazyTensor>(model.graph.initializers);
  for (const [name, t] of Object.entries(constants)) {
    initializers.set(name, { name, dtype: t.dtype, dims: t.dims, external: false, values: () => t.data });
  }
  const inputs = model.graph.inputs.filter((i) => !(i.name in constants));
  return { ...model, graph: { ...model.graph, inputs, initializers } };
}
