// The reference interpreter against numbers computed elsewhere. Every ONNX single-operator
// conformance case (test/data/onnx-node-tests) is raised to the IR with the ONNX frontend and
// interpreted on the case's inputs; its outputs must equal output_N.pb (exactly for integer
// and bool results, within 1e-5 relative with a floor of 1 for floats, as the frontend's own
// conformance test compares). Cases whose operator the frontend does not know, that the
// raiser rejects, or that fold to constants entirely are counted apart. Then the shipped
// model exports run through loadOnnx + interpretModule with their own weights and are
// compared with onnxruntime, and so are the synthetic family exports of test/support
// (Llama-style rope, rmsnorm, SwiGLU, grouped-query heads and padding masks, BERT, GPT-2).

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { feedByName, onnxParamValues, randomFeed } from '../../../src/backend/functional/feeds.js';
import { interpretModule } from '../../../src/backend/functional/reference.js';
import { GygesError } from '../../../src/diagnostics/diagnostic.js';
import { loadOnnx } from '../../../src/frontend/onnx/index.js';
import { inferGraph, unsupportedOps } from '../../../src/frontend/onnx/infer.js';
import { readOnnxModel, readTensorFile, type OnnxModel } from '../../../src/frontend/onnx/model.js';
import { raiseGraph } from '../../../src/frontend/onnx/raise/raise.js';
import { isFloatType, numelOf, type Tensor } from '../../../src/frontend/onnx/tensor.js';
import type { Module } from '../../../src/ir/module.js';
import { FAMILY_VARIANTS, sampleInputs } from '../../support/onnx-families.js';
import { CASES, CASES_DIR, tensorFiles, withConstants } from '../../support/onnx-cases.js';

const MODELS_DIR = fileURLToPath(new URL('../../data/onnx/', import.meta.url));
const tally = { unsupported: 0, rejected: 0, folded: 0, foldedOk: 0, raised: 0, ok: 0 };
const rejected: string[] = [];

const needsKnown = (e: unknown): boolean => e instanceof GygesError && e.code === 'GY5006' && /must be known when compiling/.test(e.message);

/**
 * The case raised to the IR with as few inputs stored as constants as its operator allows
 * (the cases feed even a Reshape's shape as an input, which compiling needs as numbers):
 * only empty ones (an input shape cannot declare a 0 axis; with none, loadOnnx reads the
 * file itself), then also integer ones, then all.
 */
function raiseCase(path: string, model: OnnxModel, given: Readonly<Record<string, Tensor>>): Module {
  const steps: ((t: Tensor) => boolean)[] = [(t) => numelOf(t.dims) === 0, (t) => numelOf(t.dims) === 0 || !isFloatType(t.dtype), () => true];
  let tried = -1;
  let last: unknown;
  for (const isConstant of steps) {
    const names = Object.keys(given).filter((n) => isConstant(given[n]!));
    if (names.length === tried) continue;
    tried = names.length;
    const inputShapes = Object.fromEntries(Object.entries(given).filter(([n]) => !names.includes(n)).map(([n, t]) => [n, t.dims]));
    try {
      if (names.length === 0) return loadOnnx(path, { inputShapes });
      const constants = Object.fromEntries(names.map((n) => [n, given[n]!]));
      return raiseGraph(inferGraph(withConstants(model, constants), { inputShapes })).module;
    } catch (e) {
      if (!needsKnown(e)) throw e;
      last = e;
    }
  }
  throw last;
}

/** Where the interpreter's numbers differ from the expected tensor, or undefined. */
function mismatch(got: Float64Array, shape: readonly number[], want: Tensor): string | undefined {
  if (shape.length !== want.dims.length || shape.some((d, i) => d !== want.dims[i])) return `shape [${shape.join(', ')}], expected [${want.dims.join(', ')}]`;
  const float = isFloatType(want.dtype);
  for (let i = 0; i < want.data.length; i++) {
    const [a, b] = [got[i]!, want.data[i]!];
    if (Number.isNaN(b) ? Number.isNaN(a) : a === b) continue;
    if (float && Math.abs(a - b) <= 1e-5 * Math.max(1, Math.abs(b))) continue;
    return `element ${i} is ${a}, expected ${b}`;
  }
  return undefined;
}

describe('ONNX single-operator cases through the IR', () => {
  it.each(CASES)('%s', (name) => {
    const dir = join(CASES_DIR, name);
    const path = join(dir, 'model.onnx');
    const model = readOnnxModel(path);
    if (unsupportedOps(model).length > 0) {
      tally.unsupported++;
      return;
    }
    const data = join(dir, 'test_data_set_0');
    const given: Record<string, Tensor> = {};
    tensorFiles(data, 'input').forEach((f, i) => {
      given[model.graph.inputs[i]!.name] = readTensorFile(f);
    });
    const expected = tensorFiles(data, 'output').map((f) => readTensorFile(f));

    let m: Module;
    try {
      m = raiseCase(path, model, given);
    } catch (e) {
      // Only a construct the IR has no form for may stop a case here (GY5008).
      if (!(e instanceof GygesError) || e.code !== 'GY5008') throw e;
      tally.rejected++;
      rejected.push(name);
      return;
    }
    const folded = m.opCount() === 0;
    if (folded) tally.folded++;
    else tally.raised++;

    const feeds = new Map(Object.entries(given).map(([n, t]) => [n, Float64Array.from(t.data)]));
    const values = interpretModule(m, feedByName(feeds));
    expect(m.outputs).toHaveLength(expected.length);
    m.outputs.forEach((o, i) => {
      expect(isFloatType(o.type.dtype), `output '${o.name}' is ${o.type.dtype}, expected ${expected[i]!.dtype}`).toBe(isFloatType(expected[i]!.dtype));
      expect(mismatch(values.get(o)!, o.type.shape, expected[i]!), `output '${o.name}'`).toBeUndefined();
    });
    if (folded) tally.foldedOk++;
    else tally.ok++;
  });

  // At the time of writing: 211 cases, 137 raised and 137 ok; 52 rejected (Einsum, CastLike,
  // ReduceSumSquare, Trilu of an input, LayerNormalization with its statistics outputs used,
  // a Slice with a negative step); 22 folded to constants (Shape, Constant, Range, ...).
  it('raises a large majority of the cases the raiser accepts, and every raised case computes the expected numbers', () => {
    expect(tally.unsupported + tally.rejected + tally.folded + tally.raised).toBe(CASES.length);
    expect(tally.ok).toBe(tally.raised);
    expect(tally.foldedOk).toBe(tally.folded);
    expect(tally.raised).toBeGreaterThanOrEqual(0.8 * (tally.raised + tally.folded));
    expect(tally.raised).toBeGreaterThanOrEqual(0.6 * CASES.length);
  });

  afterAll(() => {
    process.stdout.write(
      `ir reference: ${CASES.length} cases, ${tally.raised} raised, ${tally.ok} values ok ` +
        `(${tally.unsupported} unsupported operators, ${tally.rejected} rejected by the raiser, ${tally.folded} folded to constants, ${tally.foldedOk} of them ok)\n` +
        (rejected.length ? `ir reference: rejected: ${rejected.join(', ')}\n` : ''),
    );
  });
});

// ---------------------------------------------------------------------------------------
// Whole exports against onnxruntime.

function toOrt(m: Module, name: string, data: Float64Array): ort.Tensor {
  const v = m.inputs.find((i) => i.name === name)!;
  const dims = [...v.type.shape];
  switch (v.type.dtype) {
    case 'f32':
      return new ort.Tensor('float32', Float32Array.from(data), dims);
    case 'i64':
      return new ort.Tensor('int64', BigInt64Array.from(data, (x) => BigInt(x)), dims);
    default:
      throw new Error(`no onnxruntime feed for ${v.type.dtype}`);
  }
}

/**
 * Runs the ONNX file at `path` through loadOnnx + interpretModule (dynamic axes bound to `sizes`, params from its
 * initializers, `inputs` by name) and through onnxruntime; returns, per output, the worst
 * difference relative to max(|expected|, 1) and the largest |expected|.
 */
async function againstOrt(path: string, inputs: ReadonlyMap<string, Float64Array>, sizes: { batch?: number; seq?: number } = {}): Promise<{ name: string; worst: number; spread: number }[]> {
  const m = loadOnnx(path, sizes);
  expect(m.params.length).toBeGreaterThan(0);
  const values = interpretModule(m, feedByName(new Map([...onnxParamValues(m, path), ...inputs])), { keep: 'outputs' });
  const session = await ort.InferenceSession.create(path, { executionProviders: ['cpu'] });
  try {
    const result = await session.run(Object.fromEntries([...inputs].map(([n, d]) => [n, toOrt(m, n, d)])));
    const names = readOnnxModel(path).graph.outputs.map((o) => o.name);
    expect(m.outputs).toHaveLength(names.length);
    return m.outputs.map((o, k) => {
      const want = result[names[k]!]!.data as Float32Array;
      const got = values.get(o)!;
      expect(got.length).toBe(want.length);
      let worst = 0;
      let spread = 0;
      for (let i = 0; i < want.length; i++) {
        worst = Math.max(worst, Math.abs(got[i]! - want[i]!) / Math.max(Math.abs(want[i]!), 1));
        spread = Math.max(spread, Math.abs(want[i]!));
      }
      return { name: names[k]!, worst, spread };
    });
  } finally {
    await session.release();
  }
}

describe('exports agree with onnxruntime', () => {
  for (const file of ['encoder_torch_l2_h64.onnx', 'gpt2_tiny_l2_h64.onnx']) {
    it(file, async () => {
      const path = join(MODELS_DIR, file);
      const m = loadOnnx(path);
      const inputs = new Map(m.inputs.map((v) => [v.name, randomFeed(m, { seed: 3, scale: 1 })(v)]));
      for (const r of await againstOrt(path, inputs)) {
        process.stdout.write(`ir reference: ${file} ${r.name}: worst relative difference ${r.worst.toExponential(2)} (max |value| ${r.spread.toFixed(2)})\n`);
        expect(r.worst).toBeLessThan(1e-4);
        expect(r.spread).toBeGreaterThan(0.1);
      }
    });
  }

  describe('synthetic family exports', () => {
    let dir: string;
    beforeAll(() => {
      dir = mkdtempSync(join(tmpdir(), 'gyges-reference-'));
    });
    afterAll(() => {
      rmSync(dir, { recursive: true, force: true });
    });
    for (const v of FAMILY_VARIANTS) {
      it(v.id, async () => {
        const fam = v.make();
        const path = fam.write(dir).path;
        const sample = sampleInputs(fam, fam.config.batch, fam.config.seq);
        const inputs = new Map(Object.entries(sample).map(([n, t]) => [n, Float64Array.from(t.data as BigInt64Array, (x) => Number(x))]));
        for (const r of await againstOrt(path, inputs, { batch: fam.config.batch, seq: fam.config.seq })) {
          expect(r.worst, r.name).toBeLessThan(1e-4);
          expect(r.spread, r.name).toBeGreaterThan(0.1);
        }
      });
    }
  });

  it('gpt2_small_graph_only.onnx raises, but has no weights to run', () => {
    const path = join(MODELS_DIR, 'gpt2_small_graph_only.onnx');
    const m = loadOnnx(path);
    expect(m.params.length).toBeGreaterThan(100);
    let err: unknown;
    try {
      onnxParamValues(m, path);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(GygesError);
    expect((err as GygesError).code).toBe('GY5004');
  });
});
