// The distributed functional executor against the references (issue: prove the schedule
// computes what the model computes). Every case compiles a small model for a grid and a
// strategy, runs every die's program on fp32 numbers and compares the forward outputs (with
// onnxruntime for the ONNX exports), every gradient an update consumed and every updated
// weight with the reference interpreter: relative errors ≤ 1e-4. Cases cover grids 1×1 to
// 4×4 (3×3 with widths that split over it), heads fewer than, equal to and more than dies,
// grouped-query attention with rotary embeddings,
// several mini-batches (gradients accumulated across them), several fusion groups with
// streamed Linears (chunk loops), and two schedules broken on purpose, which must fail.

import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import * as ort from 'onnxruntime-node';
import { relativeError, TOLERANCE, verify, type OnnxRunner, type VerifyOptions, type VerifyReport } from '../../../src/backend/functional/verify.js';
import { readOnnxModel } from '../../../src/frontend/onnx/model.js';
import type { Instruction, Program } from '../../../src/backend/program.js';
import { main } from '../../../src/cli/main.js';
import type { Strategy } from '../../../src/passes/pass.js';

const GPT = 'models/tiny-gpt.gy';
const LLAMA = 'models/tiny-llama.gy';
const STRATEGIES: Strategy[] = ['hecaton', 'megatron', 'torus', 'optimus'];

/** onnxruntime's forward outputs, by the module's output names. */
const onnxruntime: OnnxRunner = async (path, inputs, m) => {
  const feeds: Record<string, ort.Tensor> = {};
  for (const [name, data] of inputs) {
    const v = m.inputs.find((i) => i.name === name)!;
    feeds[name] = v.type.dtype === 'i64' ? new ort.Tensor('int64', BigInt64Array.from(data, (x) => BigInt(x)), [...v.type.shape]) : new ort.Tensor('float32', Float32Array.from(data), [...v.type.shape]);
  }
  const session = await ort.InferenceSession.create(path, { executionProviders: ['cpu'] });
  try {
    const result = await session.run(feeds);
    const names = readOnnxModel(path).graph.outputs.map((o) => o.name);
    const forward = m.outputs.filter((o) => o.def?.kind !== 'sgd' && o.def?.kind !== 'adam');
    return new Map(forward.map((o, k) => [o.name, Float64Array.from(result[names[k]!]!.data as Float32Array)]));
  } finally {
    await session.release();
  }
};

function expectOk(r: VerifyReport): void {
  const what = `${r.model} ${r.target} ${r.strategy}: ${r.fault ?? JSON.stringify(r.failures.slice(0, 3))}`;
  expect(r.ok, what).toBe(true);
  for (const e of [r.fwd_max_rel_err, r.grad_max_rel_err, r.update_max_rel_err]) expect(e, what).toBeLessThanOrEqual(TOLERANCE);
  // Not vacuous: every kind of tensor was compared.
  expect(r.compared.fwd).toBeGreaterThan(0);
  expect(r.compared.grad).toBeGreaterThan(0);
  expect(r.compared.update).toBeGreaterThanOrEqual(r.compared.grad);
}

function grids(strategy: Strategy): string[] {
  // Optimus needs a square grid, Megatron's flat ring an even number of dies.
  return ['1x1', '2x2', '2x4', '4x4'].filter((g) => strategy !== 'optimus' || g[0] === g[2]);
}

describe('verify: tiny-gpt (4 heads) on every grid and strategy', () => {
  for (const strategy of STRATEGIES) {
    for (const g of grids(strategy)) {
      it(`${g} ${strategy}`, async () => {
        expectOk(await verify(GPT, { hw: `hecaton-${g}-standard`, strategy, batch: 2, seq: 8 }));
      });
    }
  }
});

describe('verify: tiny-llama (grouped-query attention, rotary embeddings) on every grid and strategy', () => {
  // 4 query heads share 2 key/value heads: on 8 and 16 dies a head spans dies, so the
  // key/value columns each die reads are a slice of a shared head.
  for (const strategy of STRATEGIES) {
    for (const g of grids(strategy)) {
      it(`${g} ${strategy}`, async () => {
        expectOk(await verify(LLAMA, { hw: `hecaton-${g}-standard`, strategy, batch: 2, seq: 8 }));
      });
    }
  }
});

describe('verify: 3x3 with heads fewer than, as many as and more than the dies', () => {
  // 4 heads do not split over 9 dies: the attention core runs replicated (tile2d evenHeads).
  for (const strategy of ['hecaton', 'torus', 'optimus'] as const) {
    it(`4 heads on 9 dies, ${strategy}`, async () => {
      expectOk(await verify(GPT, { hw: 'hecaton-3x3-standard', strategy, batch: 2, seq: 8 }));
      expectOk(await verify(LLAMA, { hw: 'hecaton-3x3-standard', strategy, batch: 2, seq: 8 }));
    });
  }
  for (const heads of [3, 9, 18]) {
    for (const strategy of ['hecaton', 'torus', 'optimus'] as const) {
      it(`h 72, ${heads} heads, ${strategy}`, async () => {
        expectOk(await verify(GPT, { hw: 'hecaton-3x3-standard', strategy, batch: 2, seq: 8, set: { h: 72, heads } }));
      });
    }
    it(`tiny-llama, h 72, ${heads} heads sharing ${heads / 3} key/value heads, hecaton`, async () => {
      expectOk(await verify(LLAMA, { hw: 'hecaton-3x3-standard', strategy: 'hecaton', batch: 2, seq: 8, set: { h: 72, heads, kv_heads: heads / 3 } }));
    });
  }
});

describe('verify: mini-batches and fusion groups', () => {
  // A 32 KiB weight buffer splits tiny-gpt into several fusion groups and streams its larger
  // Linears in column chunks; mini-batches of one sample make four loop iterations.
  const dir = mkdtempSync(join(tmpdir(), 'gyges-verify-'));
  const hw = (g: string) => {
    const file = join(dir, `small-${g}.yaml`);
    writeFileSync(file, `base: hecaton-${g}-standard\ndie:\n  weight_buffer_mib: 0.03125\n`);
    return file;
  };
  const pipeline = 'train,fuse,minibatch{size=1},tile2d,collectives,schedule';
  for (const [g, strategy] of [['2x2', 'hecaton'], ['2x4', 'megatron'], ['4x4', 'hecaton'], ['4x4', 'optimus'], ['2x2', 'torus']] as const) {
    it(`${g} ${strategy}: gradients accumulate over 4 mini-batches across fusion groups`, async () => {
      const r = await verify(GPT, { hw: hw(g), strategy, batch: 4, seq: 8, pipeline });
      expect(r.minibatches).toBe(4);
      expect(r.fusion_groups).toBeGreaterThan(1);
      expectOk(r);
    });
  }
  it('tiny-llama on 2x4 megatron', async () => {
    const r = await verify(LLAMA, { hw: hw('2x4'), strategy: 'megatron', batch: 4, seq: 8, pipeline });
    expect(r.fusion_groups).toBeGreaterThan(1);
    expectOk(r);
  });
  it('with Adam as well', async () => {
    const r = await verify(GPT, { hw: hw('2x2'), strategy: 'hecaton', batch: 4, seq: 8, pipeline: pipeline.replace('train', 'train{optimizer=adam}') });
    // Every weight and both of its moments are updated.
    expect(r.compared.update).toBe(3 * r.compared.grad);
    expect(r.minibatches).toBe(4);
    expectOk(r);
  });
});

describe('verify: the ONNX exports, forward against onnxruntime', () => {
  for (const file of ['gpt2_tiny_l2_h64', 'encoder_torch_l2_h64']) {
    for (const [g, strategy] of [['1x1', 'hecaton'], ['2x2', 'hecaton'], ['2x4', 'megatron'], ['3x3', 'hecaton'], ['3x3', 'optimus'], ['4x4', 'optimus'], ['4x4', 'hecaton']] as const) {
      it(`${file} on ${g} ${strategy}`, async () => {
        const r = await verify(`test/data/onnx/${file}.onnx`, { hw: `hecaton-${g}-standard`, strategy, onnx: onnxruntime });
        expect(r.fwd_reference).toBe('onnxruntime');
        expectOk(r);
      }, 60_000);
    }
  }
});

/** Every instruction of a program, loop bodies included, with the list holding it. */
function walk(list: Instruction[], visit: (ins: Instruction, list: Instruction[], at: number) => void): void {
  list.forEach((ins, at) => {
    visit(ins, list, at);
    if (ins.kind === 'loop') walk(ins.body as Instruction[], visit);
  });
}

describe('verify: schedules broken on purpose are caught', () => {
  const opts: VerifyOptions = { hw: 'hecaton-2x2-standard', strategy: 'hecaton', batch: 2, seq: 8 };

  it('the intact schedule passes (the control)', async () => {
    expectOk(await verify(GPT, opts));
  });

  it('one reduce-scatter dropped from every die', async () => {
    let dropped = '';
    const r = await verify(GPT, {
      ...opts,
      tamper: (programs: Program[]) => {
        for (const p of programs) {
          walk(p.instructions as Instruction[], (ins, list, at) => {
            if (dropped && ins.kind === 'collective' && ins.cid.startsWith(dropped)) list.splice(at, 1);
            else if (!dropped && ins.kind === 'collective' && ins.op === 'reduce_scatter' && ins.phase === 'fwd') {
              dropped = ins.cid.split(' ')[0]!;
              list.splice(at, 1);
            }
          });
        }
      },
    });
    expect(dropped).not.toBe('');
    expect(r.ok).toBe(false);
  });

  it('two dies reading each other’s weight tiles', async () => {
    const r = await verify(GPT, {
      ...opts,
      tamper: (programs: Program[]) => {
        const reads = programs.slice(0, 2).map((p) => p.instructions.find((ins) => ins.kind === 'dram.read' && ins.tensor === 'layer.0.w_up')!);
        const [a, b] = reads as [Instruction & { rows: readonly [number, number] }, Instruction & { rows: readonly [number, number] }];
        expect(a.rows).not.toEqual(b.rows);
        const rows = a.rows;
        Object.assign(a, { rows: b.rows });
        Object.assign(b, { rows });
      },
    });
    expect(r.ok).toBe(false);
    expect(r.fault).toBeNull();
    expect(r.failures.length).toBeGreaterThan(0);
  });
});

describe('relativeError', () => {
  it('is max |a − b| over max |b|, infinite for NaN or a size mismatch', () => {
    expect(relativeError(Float64Array.of(1, 2.5), Float64Array.of(1, 2))).toBeCloseTo(0.25, 12);
    expect(relativeError(Float64Array.of(0), Float64Array.of(0))).toBe(0);
    expect(relativeError(Float64Array.of(Number.NaN), Float64Array.of(1))).toBe(Infinity);
    expect(relativeError(undefined, Float64Array.of(1))).toBe(Infinity);
  });
});

describe('gyges verify', () => {
  async function run(...argv: string[]) {
    let out = '';
    let err = '';
    const code = await main(argv, { out: (t) => (out += t), err: (t) => (err += t) });
    return { code, out, err };
  }

  it('prints the JSON report with the fields of the contract', async () => {
    const r = await run('verify', GPT, '--hw', 'hecaton-2x2-standard', '--batch', '2', '--seq', '8', '--json');
    expect(r.code).toBe(0);
    const j = JSON.parse(r.out);
    expect(j.ok).toBe(true);
    for (const k of ['fwd_max_rel_err', 'grad_max_rel_err', 'update_max_rel_err']) expect(j[k]).toBeLessThanOrEqual(1e-4);
    expect(j.dies).toBe(4);
  });

  it('prints a table without --json', async () => {
    const r = await run('verify', GPT, '--hw', 'hecaton-2x2-standard', '--strategy', 'megatron', '--batch', '2', '--seq', '8');
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/result\s+ok/);
  });

  it('reports a bad model file in one line, exit 1', async () => {
    const r = await run('verify', 'no-such-model.gy', '--hw', 'hecaton-2x2-standard');
    expect(r.code).toBe(1);
    expect(r.err.trim().split('\n')).toHaveLength(1);
  });
});
