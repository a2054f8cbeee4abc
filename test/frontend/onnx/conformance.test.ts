// ONNX's own node conformance cases (a one-node model, its inputs and the expected outputs as
// TensorProto files): for every case whose operator the frontend knows, inference must give
// the expected output shapes and the interpreter the expected numbers — exactly for integer
// and boolean outputs, within 1e-5 relative for floating-point ones. A case of an unknown
// operator must fail inference with GY5002 naming it.
//
// The cases feed everything as graph inputs, even a Reshape's shape or a Range's bounds,
// which compiling needs as known numbers (an exporter stores them as constants). Inference
// binds the inputs to the shapes of their .pb files; when an operator needs an input's
// numbers, the case runs again with inputs stored as initializers (see inferCase). A node
// whose inputs are all constants is folded, so its numbers still come from its evaluate.

import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { GygesError } from '../../../src/diagnostics/diagnostic.js';
import { inferGraph, unsupportedOps, type InferredGraph } from '../../../src/frontend/onnx/infer.js';
import { interpretGraph } from '../../../src/frontend/onnx/interpret.js';
import { readOnnxModel, readTensorFile, type OnnxModel } from '../../../src/frontend/onnx/model.js';
import { isFloatType, numelOf, type Tensor } from '../../../src/frontend/onnx/tensor.js';
import { CASES, CASES_DIR, tensorFiles, withConstants } from '../../support/onnx-cases.js';

const tally = { shapes: 0, values: 0, supported: 0, unsupported: 0 };

/** Where two tensors' numbers differ beyond the tolerance, or undefined when they agree. */
function mismatch(got: Tensor, want: Tensor): string | undefined {
  if (got.dtype !== want.dtype) return `type ${got.dtype}, expected ${want.dtype}`;
  if (got.data.length !== want.data.length) return `${got.data.length} values, expected ${want.data.length}`;
  const float = isFloatType(want.dtype);
  for (let i = 0; i < want.data.length; i++) {
    const a = got.data[i]!;
    const b = want.data[i]!;
    if (Number.isNaN(b) ? Number.isNaN(a) : a === b) continue;
    if (float && Number.isFinite(b) && Math.abs(a - b) <= 1e-5 * Math.max(1, Math.abs(b))) continue;
    return `element ${i} is ${a}, expected ${b}`;
  }
  return undefined;
}

/**
 * Inference of a case, with as few inputs stored as constants as its operator allows: first
 * only empty inputs (an input shape cannot declare a 0 axis), then also the integer ones
 * (shapes, axes, indices), then all (a Range's float bounds).
 */
function inferCase(model: OnnxModel, given: Readonly<Record<string, Tensor>>): { inferred: InferredGraph; feeds: Record<string, Tensor> } {
  const steps: ((t: Tensor) => boolean)[] = [(t) => numelOf(t.dims) === 0, (t) => numelOf(t.dims) === 0 || !isFloatType(t.dtype), () => true];
  let tried = -1;
  let needed: unknown;
  for (const isConstant of steps) {
    const names = Object.keys(given).filter((n) => isConstant(given[n]!));
    if (names.length === tried) continue;
    tried = names.length;
    const constants = Object.fromEntries(names.map((n) => [n, given[n]!]));
    const feeds = Object.fromEntries(Object.entries(given).filter(([n]) => !names.includes(n)));
    const inputShapes = Object.fromEntries(Object.entries(feeds).map(([n, t]) => [n, t.dims]));
    try {
      return { inferred: inferGraph(withConstants(model, constants), { inputShapes }), feeds };
    } catch (e) {
      if (!(e instanceof GygesError && e.code === 'GY5006' && /must be known when compiling/.test(e.message))) throw e;
      needed = e;
    }
  }
  throw needed;
}

it.each(CASES)('%s', (name) => {
  const dir = join(CASES_DIR, name);
  const model = readOnnxModel(join(dir, 'model.onnx'));
  const missing = unsupportedOps(model);
  if (missing.length > 0) {
    tally.unsupported++;
    let err: unknown;
    try {
      inferGraph(model);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(GygesError);
    expect((err as GygesError).code).toBe('GY5002');
    for (const m of missing) expect((err as GygesError).message).toContain(m.opType);
    return;
  }
  tally.supported++;

  const data = join(dir, 'test_data_set_0');
  const inputFiles = tensorFiles(data, 'input');
  const outputFiles = tensorFiles(data, 'output');
  const { inputs: graphInputs, outputs: graphOutputs } = model.graph;
  expect(inputFiles.length, 'input_N.pb files against graph inputs').toBe(graphInputs.length);
  expect(outputFiles.length, 'output_N.pb files against graph outputs').toBe(graphOutputs.length);
  const expected = outputFiles.map((f) => readTensorFile(f));

  const given: Record<string, Tensor> = {};
  graphInputs.forEach((input, i) => {
    given[input.name] = readTensorFile(inputFiles[i]!);
  });

  const { inferred, feeds } = inferCase(model, given);
  const shapes = graphOutputs.map((o) => inferred.facts.get(o.name)!.dims);
  expect(shapes).toEqual(expected.map((t) => t.dims));
  tally.shapes++;

  const values = interpretGraph(inferred, feeds);
  graphOutputs.forEach((o, i) => {
    const why = mismatch(values.get(o.name)!, expected[i]!);
    expect(why, `output '${o.name}'`).toBeUndefined();
  });
  tally.values++;
});

it('accounts for every case as supported or unsupported', () => {
  expect(CASES.length).toBeGreaterThan(0);
  expect(tally.supported + tally.unsupported).toBe(CASES.length);
});

afterAll(() => {
  process.stdout.write(`onnx conformance: ${CASES.length} cases, ${tally.shapes} shapes ok, ${tally.values} values ok, ${tally.unsupported} unsupported\n`);
});
