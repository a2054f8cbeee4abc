// `gyges verify`: compile a model, run every die's program on real numbers (distributed.ts)
// and compare with the single-device reference interpreter of the training module before
// tiling (reference.ts): the forward outputs (or, for an ONNX model, onnxruntime's outputs
// when the caller supplies a runner), every gradient an update consumed, and every updated
// weight. Numbers are fed deterministically (feeds.ts); an ONNX model's weights are its own.

import { compile, type CompileOptions } from '../../compile.js';
import { loadModel } from '../../frontend/load.js';
import type { Module } from '../../ir/module.js';
import { verifyModule } from '../../ir/verify.js';
import { programsOf } from '../../passes/schedule/index.js';
import { deriveTraining } from '../../passes/train.js';
import { error, InternalError } from '../../diagnostics/diagnostic.js';
import type { Program } from '../program.js';
import { executeDistributed, ScheduleFault } from './distributed.js';
import { feedByName, onnxParamValues, randomValues } from './feeds.js';
import { interpretModule, valuesByName } from './reference.js';

/** Forward outputs of an ONNX model by output name, given its inputs by name. */
export type OnnxRunner = (path: string, inputs: ReadonlyMap<string, Float64Array>, m: Module) => Promise<Map<string, Float64Array>>;

export interface VerifyOptions extends CompileOptions {
  readonly seed?: number;
  /** Runs an ONNX model's forward (onnxruntime); without it the forward is compared with the interpreter. */
  readonly onnx?: OnnxRunner;
  /** Changes the programs before they run (tests that break a schedule on purpose). */
  readonly tamper?: (programs: Program[]) => void;
}

/** The largest relative error allowed (fp32 storage, float64 arithmetic). */
export const TOLERANCE = 1e-4;

export interface VerifyReport {
  readonly ok: boolean;
  readonly model: string;
  readonly target: string;
  readonly strategy: string;
  readonly dies: number;
  readonly minibatches: number;
  readonly fusion_groups: number;
  readonly fwd_reference: 'onnxruntime' | 'interpreter';
  readonly fwd_max_rel_err: number;
  readonly grad_max_rel_err: number;
  readonly update_max_rel_err: number;
  /** Tensors compared: forward outputs, gradients, updated weights. */
  readonly compared: { readonly fwd: number; readonly grad: number; readonly update: number };
  /** The tensor with the largest error of each kind. */
  readonly worst: { readonly fwd: string | null; readonly grad: string | null; readonly update: string | null };
  readonly tolerance: number;
  /** Why the programs could not run to the end, when they could not. */
  readonly fault: string | null;
  /** Tensors beyond the tolerance (up to 20, worst first). */
  readonly failures: readonly { readonly kind: 'fwd' | 'grad' | 'update'; readonly name: string; readonly rel_err: number }[];
}

/** max |a − b| / max |b| over a tensor (0 when both are zero; Infinity for NaN or a size mismatch). */
export function relativeError(got: Float64Array | undefined, want: Float64Array): number {
  if (!got || got.length !== want.length) return Infinity;
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < want.length; i++) {
    const d = Math.abs(got[i]! - want[i]!);
    if (Number.isNaN(d)) return Infinity;
    diff = Math.max(diff, d);
    scale = Math.max(scale, Math.abs(want[i]!));
  }
  return diff === 0 ? 0 : diff / (scale || 1);
}

export async function verify(model: string, opts: VerifyOptions): Promise<VerifyReport> {
  const compiled = compile(model, { ...opts, optimizer: opts.optimizer ?? 'sgd', mode: 'train' });
  // The reference trains as the compiled module does (a pipeline's text may set the optimizer).
  if (compiled.module.notes['train.mode'] !== 'train') throw error('GY9001', 'verify checks a training iteration: the pipeline must start with train (mode train)');
  const optimizer = compiled.module.notes['train.optimizer'] === 'adam' ? 'adam' : 'sgd';
  const set = programsOf(compiled.module);
  if (!set) throw new InternalError('verify: the pipeline made no programs (it must end with schedule)');
  const programs = set.dies().map((d) => set.programFor(d));
  opts.tamper?.(programs);

  const reference = loadModel(model, opts);
  verifyModule(reference, 'lowering');
  deriveTraining(reference, { mode: 'train', optimizer });
  const isOnnx = model.toLowerCase().endsWith('.onnx');
  const given = new Map<string, Float64Array>(isOnnx ? onnxParamValues(reference, model) : []);
  for (const v of reference.declarations()) {
    if (v.kind !== 'const' && !given.has(v.name)) given.set(v.name, randomValues(reference, v, { seed: opts.seed ?? 1 }));
  }
  const feed = feedByName(given);
  // Every value kept: the gradients the updates consume are intermediates.
  const want = valuesByName(interpretModule(reference, feed));

  const updates = reference.ops().filter((op) => op.kind === 'sgd' || op.kind === 'adam');
  const updated = new Set(updates.flatMap((op) => op.results.map((r) => r.name)));
  const forward = reference.outputs.filter((o) => !updated.has(o.name));
  const gradNames = updates.map((op) => op.operands[1]!.name);

  let fwdWant = new Map(forward.map((o) => [o.name, want.get(o.name)!]));
  let fwdReference: VerifyReport['fwd_reference'] = 'interpreter';
  if (isOnnx && opts.onnx) {
    const inputs = new Map(reference.inputs.filter((v) => !v.name.startsWith('grad.')).map((v) => [v.name, given.get(v.name)!]));
    fwdWant = await opts.onnx(model, inputs, reference);
    fwdReference = 'onnxruntime';
  }

  const base = {
    model: compiled.module.name,
    target: compiled.target.name,
    strategy: compiled.strategy,
    dies: programs.length,
    minibatches: set.minibatch.count,
    fusion_groups: (compiled.module.notes['fuse.groups'] as number | undefined) ?? 1,
    fwd_reference: fwdReference,
    tolerance: TOLERANCE,
    compared: { fwd: fwdWant.size, grad: gradNames.length, update: updated.size },
  };
  let run;
  try {
    run = executeDistributed(compiled.module, programs, feed);
  } catch (e) {
    if (!(e instanceof ScheduleFault)) throw e;
    return { ...base, ok: false, fwd_max_rel_err: Infinity, grad_max_rel_err: Infinity, update_max_rel_err: Infinity, worst: { fwd: null, grad: null, update: null }, fault: e.detail, failures: [] };
  }
  const failures: { kind: 'fwd' | 'grad' | 'update'; name: string; rel_err: number }[] = [];
  const worstOf = (kind: 'fwd' | 'grad' | 'update', names: Iterable<string>, got: (n: string) => Float64Array | undefined, ref: (n: string) => Float64Array) => {
    let err = 0;
    let name: string | null = null;
    for (const n of names) {
      const e = relativeError(got(n), ref(n));
      if (e > TOLERANCE) failures.push({ kind, name: n, rel_err: e });
      if (name === null || e > err) [err, name] = [e, n];
    }
    return { err, name };
  };
  const fwd = worstOf('fwd', fwdWant.keys(), (n) => run.dram.get(n), (n) => fwdWant.get(n)!);
  const grad = worstOf('grad', gradNames, (n) => run.gradients.get(n) ?? run.dram.get(n), (n) => want.get(n)!);
  const update = worstOf('update', updated, (n) => run.dram.get(n), (n) => want.get(n)!);
  failures.sort((a, b) => b.rel_err - a.rel_err);
  const ok = [fwd.err, grad.err, update.err].every((e) => e <= TOLERANCE);
  return {
    ...base,
    ok,
    fwd_max_rel_err: fwd.err,
    grad_max_rel_err: grad.err,
    update_max_rel_err: update.err,
    worst: { fwd: fwd.name, grad: grad.name, update: update.name },
    fault: null,
    failures: failures.slice(0, 20),
  };
}
