// A plain single-device interpreter of an inferred ONNX graph: every node runs in graph order
// through its operator's `evaluate`, on the numbers of the given inputs, the initializers and
// the values inference already folded. It is the project's reference for what a model
// computes (compared against onnxruntime), so it favours clarity over speed: no fusion, no
// memory planning, every intermediate value kept.

import { error, GygesError, InternalError } from '../../diagnostics/diagnostic.js';
import { contextOf, type InferredGraph, type ValueFacts } from './infer.js';
import type { OnnxNode } from './model.js';
import { ONNX_OPS } from './ops/index.js';
import { numelOf, type Tensor } from './tensor.js';

function dimsText(dims: readonly number[]): string {
  return `[${dims.join(', ')}]`;
}

function sameDims(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

/**
 * Runs the graph on `inputs` (one tensor per graph input, of the shape inference bound) and
 * returns every value it computes or holds, by name: inputs, initializers, and each node's outputs.
 */
export function interpretGraph(inferred: InferredGraph, inputs: Readonly<Record<string, Tensor>>): Map<string, Tensor> {
  const { model, facts } = inferred;
  const file = model.file;
  const values = new Map<string, Tensor>();

  const declared = model.graph.inputs.map((i) => i.name);
  for (const name of Object.keys(inputs)) {
    if (!declared.includes(name)) throw error('GY9001', `'${file}' has no input '${name}' (inputs: ${declared.join(', ') || '(none)'})`);
  }
  for (const name of declared) {
    const t = inputs[name];
    const f = facts.get(name)!;
    if (!t) throw error('GY9001', `no value given for input '${name}' of '${file}'`);
    if (t.dtype !== f.dtype) throw error('GY9001', `input '${name}' of '${file}' is ${f.dtype}, but the value given is ${t.dtype}`);
    if (!sameDims(t.dims, f.dims)) {
      throw error('GY9001', `input '${name}' of '${file}' was inferred with shape ${dimsText(f.dims)}, but the value given has shape ${dimsText(t.dims)}`);
    }
    if (t.data.length !== numelOf(t.dims)) throw error('GY9001', `input '${name}': shape ${dimsText(t.dims)} needs ${numelOf(t.dims)} values, but ${t.data.length} are given`);
    values.set(name, t);
  }
  for (const init of model.graph.initializers.values()) {
    const f = facts.get(init.name);
    values.set(init.name, f?.value ?? { dtype: init.dtype, dims: init.dims, data: init.values() });
  }

  for (const node of inferred.nodes) {
    const outputs = node.outputs.filter((o) => o !== '');
    // Folded during inference (Constant nodes, shape arithmetic): the numbers are already known.
    if (outputs.every((o) => facts.get(o)?.value)) {
      for (const o of outputs) values.set(o, facts.get(o)!.value!);
      continue;
    }
    const def = ONNX_OPS[node.opType];
    if (!def?.evaluate) throw nodeError(file, node, 'GY5002', `${node.opType} cannot be interpreted: the frontend does not evaluate it`);
    const args = node.inputs.map((name) => {
      if (name === '') return undefined;
      const v = values.get(name);
      if (!v) throw nodeError(file, node, 'GY5001', `${node.opType}: input '${name}' has no value (it is not produced before this node)`);
      return v;
    });
    const known = node.inputs.map((name, i): ValueFacts | undefined => {
      const f = name === '' ? undefined : facts.get(name);
      return f && { ...f, value: args[i]! };
    });
    let results: Tensor[];
    try {
      // Every input carries its value, so `constant(i)` gives the number just computed.
      results = def.evaluate(contextOf(model, node, known), args);
    } catch (e) {
      if (e instanceof GygesError) throw e;
      throw nodeError(file, node, 'GY5006', `${node.opType}: ${(e as Error).message}`);
    }
    node.outputs.forEach((name, i) => {
      if (name === '') return;
      const r = results[i];
      const f = facts.get(name)!;
      // Inference and evaluation share one definition; disagreeing is a bug in that definition.
      if (!r || r.dtype !== f.dtype || !sameDims(r.dims, f.dims)) {
        const got = r ? `${r.dtype} ${dimsText(r.dims)}` : 'nothing';
        throw new InternalError(`${node.opType} node '${node.name}' output ${i} was inferred as ${f.dtype} ${dimsText(f.dims)} but evaluated to ${got}`);
      }
      values.set(name, r);
    });
  }
  return values;
}

function nodeError(file: string, node: OnnxNode, code: 'GY5001' | 'GY5002' | 'GY5006', detail: string): GygesError {
  return new GygesError(code, detail, { kind: 'node', file, node: node.name });
}
