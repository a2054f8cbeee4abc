// The synthetic exports of test/support/onnx-families.ts are real ONNX: onnxruntime loads every
// variant and runs it on the CPU, at the traced sizes and, for dynamic axes, at other sizes,
// producing outputs of the expected shapes and finite values.

import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import protobuf from 'onnx-proto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TensorData } from '../../support/onnx-build.js';
import { bertLike, FAMILY_VARIANTS, gpt2Like, llamaLike, paddedFrom, sampleInputs, type FamilyExport } from '../../support/onnx-families.js';

const { onnx } = protobuf;

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'gyges-onnx-families-'));
});
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

function feeds(m: FamilyExport, batch: number, seq: number, edit?: (inputs: Record<string, TensorData>) => void): Record<string, ort.Tensor> {
  const inputs = sampleInputs(m, batch, seq);
  edit?.(inputs);
  const out: Record<string, ort.Tensor> = {};
  for (const [name, t] of Object.entries(inputs)) out[name] = toOrt(t);
  return out;
}

/** Runs a model once at its traced sizes; returns each output's numbers. */
async function outputsOf(m: FamilyExport, edit?: (inputs: Record<string, TensorData>) => void): Promise<Record<string, Float32Array>> {
  const written = m.write(dir);
  const session = await ort.InferenceSession.create(written.path, { executionProviders: ['cpu'] });
  try {
    const r = await session.run(feeds(m, m.config.batch, m.config.seq, edit));
    return Object.fromEntries(Object.entries(r).map(([k, t]) => [k, t.data as Float32Array]));
  } finally {
    await session.release();
  }
}

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  expect(a.length).toBe(b.length);
  let worst = 0;
  for (let k = 0; k < a.length; k++) worst = Math.max(worst, Math.abs(a[k]! - b[k]!));
  return worst;
}

/** Rows [from, to) of position axis 1 in row `r` of a [batch, seq, width] output. */
function positions(t: Float32Array, m: FamilyExport, r: number, from: number, to: number): Float32Array {
  const width = t.length / (m.config.batch * m.config.seq);
  return t.slice((r * m.config.seq + from) * width, (r * m.config.seq + to) * width);
}

function toOrt(t: TensorData): ort.Tensor {
  switch (t.dtype) {
    case 'int64': return new ort.Tensor('int64', t.data as BigInt64Array, [...t.dims]);
    case 'float32': return new ort.Tensor('float32', t.data as Float32Array, [...t.dims]);
    case 'int32': return new ort.Tensor('int32', t.data as Int32Array, [...t.dims]);
    case 'bool': return new ort.Tensor('bool', t.data as Uint8Array, [...t.dims]);
  }
}

async function runAt(session: ort.InferenceSession, m: FamilyExport, batch: number, seq: number): Promise<void> {
  const results = await session.run(feeds(m, batch, seq));
  const want = m.outputShapes(batch, seq);
  expect(Object.keys(results).sort()).toEqual(Object.keys(want).sort());
  for (const [name, shape] of Object.entries(want)) {
    const r = results[name]!;
    expect(r.dims, `${name} at ${batch}x${seq}`).toEqual(shape);
    expect(r.type).toBe('float32');
    const data = r.data as Float32Array;
    const bad = data.findIndex((v) => !Number.isFinite(v));
    expect(bad, `${name}: first non-finite value at ${bad}`).toBe(-1);
    // Not all one value: the graph really computed something from the ids.
    expect(Math.max(...data) - Math.min(...data)).toBeGreaterThan(0);
  }
}

describe('synthetic family exports run in onnxruntime', () => {
  it('the catalogue covers the three families, opsets 14 to 18, dynamic and static, folded and not, external data', () => {
    const made = FAMILY_VARIANTS.map((v) => v.make());
    expect(new Set(made.map((m) => m.family))).toEqual(new Set(['bert', 'gpt2', 'llama']));
    expect(new Set(made.map((m) => m.config.opset))).toEqual(new Set([14, 15, 16, 17, 18]));
    expect(new Set(made.map((m) => m.config.dynamicAxes))).toEqual(new Set([true, false]));
    expect(new Set(made.map((m) => m.config.constantFolding))).toEqual(new Set([true, false]));
    expect(made.some((m) => m.config.externalWeights)).toBe(true);
    expect(new Set(made.map((m) => m.name)).size).toBe(made.length);
  });

  it('generation is deterministic', () => {
    for (const v of FAMILY_VARIANTS) {
      expect(Buffer.from(v.make().builder.encode()).equals(Buffer.from(v.make().builder.encode())), v.id).toBe(true);
    }
  });

  for (const v of FAMILY_VARIANTS) {
    it(`${v.id}: loads and runs on the CPU`, async () => {
      const m = v.make();
      const written = m.write(dir);
      const proto = onnx.ModelProto.decode(readFileSync(written.path));
      expect(Number(proto.opsetImport[0]!.version)).toBe(m.config.opset);
      const stored = (proto.graph?.initializer ?? []).filter((t) => t.dataLocation === onnx.TensorProto.DataLocation.EXTERNAL);
      if (m.config.externalWeights) {
        expect(written.dataPath).toBeDefined();
        expect(stored.length).toBeGreaterThan(0);
        expect(statSync(written.dataPath!).size).toBeGreaterThan(0);
      } else {
        expect(stored).toEqual([]);
      }
      const dims = proto.graph!.input![0]!.type!.tensorType!.shape!.dim!;
      expect(dims.map((d) => d.dimParam || Number(d.dimValue))).toEqual(m.config.dynamicAxes ? ['batch', 'sequence'] : [m.config.batch, m.config.seq]);

      const session = await ort.InferenceSession.create(written.path, { executionProviders: ['cpu'] });
      try {
        expect([...session.inputNames].sort()).toEqual(m.inputs.map((i) => i.name).sort());
        await runAt(session, m, m.config.batch, m.config.seq);
        if (m.config.dynamicAxes) {
          await runAt(session, m, 1, 5);
          await runAt(session, m, 3, m.config.maxPositions);
        }
      } finally {
        await session.release();
      }
    });
  }
});

// Same seed, same module, different exporter settings (opset, dynamic axes, folding, norm op,
// external data, rotary source, mask builder, rsqrt form): the same function.
describe('exporter settings do not change what a model computes', () => {
  const groups: [string, FamilyExport[]][] = [
    ['bert', [
      bertLike({ name: 'eq-bert-a' }),
      bertLike({ name: 'eq-bert-b', opset: 14, dynamicAxes: true, constantFolding: false, maskFill: 'ten-thousand' }),
      bertLike({ name: 'eq-bert-c', opset: 18, dynamicAxes: true, layerNormOp: false, externalWeights: true }),
      bertLike({ name: 'eq-bert-d', opset: 16, constantFolding: false }),
    ]],
    ['gpt2 hf', [
      gpt2Like({ name: 'eq-hf-a', style: 'hf', attentionMask: true }),
      gpt2Like({ name: 'eq-hf-b', style: 'hf', attentionMask: true, opset: 15, dynamicAxes: true, constantFolding: false }),
      gpt2Like({ name: 'eq-hf-c', style: 'hf', attentionMask: true, opset: 18, layerNormOp: false, externalWeights: true }),
    ]],
    ['nanogpt', [
      gpt2Like({ name: 'eq-nano-a', style: 'nanogpt' }),
      gpt2Like({ name: 'eq-nano-b', style: 'nanogpt', mask: 'trilu', dynamicAxes: true }),
      gpt2Like({ name: 'eq-nano-c', style: 'nanogpt', opset: 14, constantFolding: false }),
    ]],
    ['llama', [
      llamaLike({ name: 'eq-llama-a', attentionMask: false }),
      llamaLike({ name: 'eq-llama-b', rope: 'matmul', mask: 'triu', opset: 14, dynamicAxes: true, constantFolding: false }),
      llamaLike({ name: 'eq-llama-c', rope: 'einsum', rsqrt: 'reciprocal', opset: 18, dynamicAxes: true, attentionMask: false, externalWeights: true }),
      llamaLike({ name: 'eq-llama-d', rope: 'cache', opset: 16, constantFolding: false, attentionMask: false }),
    ]],
    ['llama with padding', [
      llamaLike({ name: 'eq-llamapad-a' }),
      llamaLike({ name: 'eq-llamapad-b', rope: 'matmul', opset: 15, dynamicAxes: true, constantFolding: false }),
      llamaLike({ name: 'eq-llamapad-c', rope: 'matmul', opset: 15, dynamicAxes: true, headsView: 'infer' }),
    ]],
  ];
  it('a different seed does give different numbers (the comparison is not vacuous)', async () => {
    const a = await outputsOf(bertLike({ name: 'eq-seed-a' }));
    const b = await outputsOf(bertLike({ name: 'eq-seed-b', seed: 2 }));
    expect(maxAbsDiff(a.last_hidden_state!, b.last_hidden_state!)).toBeGreaterThan(1e-2);
  });
  for (const [label, models] of groups) {
    it(`${label}: ${models.length} exports agree`, async () => {
      const ref = await outputsOf(models[0]!);
      for (const m of models.slice(1)) {
        const got = await outputsOf(m);
        for (const [k, v] of Object.entries(ref)) expect(maxAbsDiff(v, got[k]!), `${m.name} ${k}`).toBeLessThan(1e-4);
      }
    });
  }
});

// The masks really mask: decoder outputs at a position do not depend on later tokens, and no
// output at an attended position depends on a padded token.
describe('masks', () => {
  for (const v of FAMILY_VARIANTS) {
    const m = v.make();
    const ids = m.inputs[0]!.name;
    const main = Object.keys(m.outputShapes(1, 1))[0]!;
    const { seq, vocab } = m.config;
    const bump = (col: number, row: number) => (inputs: Record<string, TensorData>) => {
      const t = inputs[ids]!.data as BigInt64Array;
      t[row * seq + col] = (t[row * seq + col]! + 1n) % BigInt(vocab);
    };
    if (m.family !== 'bert') {
      it(`${v.id}: causal`, async () => {
        const a = (await outputsOf(m))[main]!;
        const b = (await outputsOf(m, bump(seq - 1, 0)))[main]!;
        expect(maxAbsDiff(positions(a, m, 0, 0, seq - 1), positions(b, m, 0, 0, seq - 1))).toBe(0);
        expect(maxAbsDiff(positions(a, m, 0, seq - 1, seq), positions(b, m, 0, seq - 1, seq))).toBeGreaterThan(1e-6);
      });
    }
    if (m.inputs.some((i) => i.name === 'attention_mask')) {
      it(`${v.id}: padding is masked`, async () => {
        const from = paddedFrom(seq);
        const a = (await outputsOf(m))[main]!;
        const b = (await outputsOf(m, bump(from, 1)))[main]!;
        expect(maxAbsDiff(positions(a, m, 1, 0, from), positions(b, m, 1, 0, from))).toBeLessThan(1e-6);
        // The same change at an attended position does reach the others (bidirectional models).
        if (m.family === 'bert') {
          const c = (await outputsOf(m, bump(from - 1, 1)))[main]!;
          expect(maxAbsDiff(positions(a, m, 1, 0, from - 1), positions(c, m, 1, 0, from - 1))).toBeGreaterThan(1e-6);
        }
      });
    }
  }
});
