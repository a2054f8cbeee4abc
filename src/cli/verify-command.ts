// `gyges verify`: run the compiled per-die programs on numbers and compare with references
// (src/backend/functional/verify.ts). An ONNX model's forward is compared with onnxruntime
// when onnxruntime-node is installed (it is optional: without it, with the interpreter).

import type { Target } from '../target/target.js';
import type { CompileOptions } from '../compile.js';
import { readOnnxModel } from '../frontend/onnx/model.js';
import type { Module } from '../ir/module.js';
import type { Strategy } from '../passes/pass.js';
import { TOLERANCE, verify, type OnnxRunner, type VerifyReport } from '../backend/functional/verify.js';
import { table } from '../util/format.js';

export interface VerifyFlags {
  /** A preset name or hardware file, or the target already loaded (with --accelerator files). */
  hw: string | Target;
  strategy?: Strategy;
  optimizer?: 'sgd' | 'adam';
  pipeline?: string;
  seed?: number;
  json?: boolean;
}

type Load = Pick<CompileOptions, 'batch' | 'seq' | 'set' | 'inputShapes'>;

/** The programs computed something else than the model: a fault of the compiler (exit 2). */
export class VerificationFailed extends Error {
  constructor(report: VerifyReport) {
    const what = report.fault ?? `largest relative errors fwd ${fmt(report.fwd_max_rel_err)}, grad ${fmt(report.grad_max_rel_err)}, update ${fmt(report.update_max_rel_err)} (tolerance ${report.tolerance})`;
    super(`internal error: verify: the programs for ${report.model} on ${report.target} (${report.strategy}) do not compute the model: ${what}`);
  }
}

export async function runVerify(model: string, flags: VerifyFlags, load: Load): Promise<{ text: string; report: VerifyReport }> {
  const report = await verify(model, {
    ...load,
    hw: flags.hw,
    strategy: flags.strategy,
    optimizer: flags.optimizer,
    pipeline: flags.pipeline,
    seed: flags.seed,
    onnx: await onnxRuntime(),
  });
  // JSON has no Infinity: a tensor that could not be compared (NaN, missing) reads as null.
  const text = flags.json ? `${JSON.stringify(report, null, 2)}\n` : formatVerify(report);
  return { text, report };
}

function fmt(x: number): string {
  return Number.isFinite(x) ? x.toExponential(2) : 'not comparable';
}

function formatVerify(r: VerifyReport): string {
  const rows = [
    ['model', `${r.model} on ${r.target}, ${r.strategy}: ${r.dies} dies, ${r.fusion_groups} fusion groups, ${r.minibatches} mini-batches`],
    ['forward', `${fmt(r.fwd_max_rel_err)} against ${r.fwd_reference === 'onnxruntime' ? 'onnxruntime' : 'the reference interpreter'} (${r.compared.fwd} outputs, worst ${r.worst.fwd ?? '-'})`],
    ['gradients', `${fmt(r.grad_max_rel_err)} against the reference interpreter (${r.compared.grad} tensors, worst ${r.worst.grad ?? '-'})`],
    ['updated weights', `${fmt(r.update_max_rel_err)} (${r.compared.update} tensors, worst ${r.worst.update ?? '-'})`],
    ['result', r.ok ? `ok (every relative error ≤ ${TOLERANCE})` : `FAILED${r.fault ? `: ${r.fault}` : ''}`],
    ...r.failures.slice(0, 8).map((f) => [`  ${f.kind}`, `${f.name}: ${fmt(f.rel_err)}`]),
  ];
  return `${table(rows, true)}\n`;
}

/** An onnxruntime-backed runner, or undefined when onnxruntime-node is not installed. */
async function onnxRuntime(): Promise<OnnxRunner | undefined> {
  let ort: typeof import('onnxruntime-node');
  try {
    ort = await import('onnxruntime-node');
  } catch {
    return undefined;
  }
  return async (path: string, inputs: ReadonlyMap<string, Float64Array>, m: Module) => {
    const feeds: Record<string, InstanceType<typeof ort.Tensor>> = {};
    for (const [name, data] of inputs) {
      const v = m.inputs.find((i) => i.name === name)!;
      const dims = [...v.type.shape];
      switch (v.type.dtype) {
        case 'f32':
          feeds[name] = new ort.Tensor('float32', Float32Array.from(data), dims);
          break;
        case 'i64':
          feeds[name] = new ort.Tensor('int64', BigInt64Array.from(data, (x) => BigInt(x)), dims);
          break;
        case 'i32':
          feeds[name] = new ort.Tensor('int32', Int32Array.from(data), dims);
          break;
        case 'bool':
          feeds[name] = new ort.Tensor('bool', Uint8Array.from(data), dims);
          break;
        default:
          throw new Error(`verify: no onnxruntime input for ${v.type.dtype}`);
      }
    }
    const session = await ort.InferenceSession.create(path, { executionProviders: ['cpu'] });
    try {
      const result = await session.run(feeds);
      const names = readOnnxModel(path).graph.outputs.map((o) => o.name);
      // The module's forward outputs are the graph's outputs, in order.
      const forward = m.outputs.filter((o) => !o.def || (o.def.kind !== 'sgd' && o.def.kind !== 'adam'));
      return new Map(forward.map((o, k) => [o.name, Float64Array.from(result[names[k]!]!.data as Float32Array)]));
    } finally {
      await session.release();
    }
  };
}
