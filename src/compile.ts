// The library's compile entry point: load a model and a target, run a pipeline of passes.
// The CLI is a thin layer over this; tests and scripts call it directly.

import { loadModel, type LoadOptions } from './frontend/load.js';
import type { Module } from './ir/module.js';
import { verifyModule } from './ir/verify.js';
import { defaultPipeline, PASSES } from './passes/index.js';
import { runPipeline, type PassHooks, type PassRecord } from './passes/manager.js';
import type { Strategy } from './passes/pass.js';
import { parsePipeline } from './passes/pipeline.js';
import { atDiePrecision } from './passes/precision.js';
import { loadTarget } from './target/load.js';
import type { Target } from './target/target.js';
import type { Progress } from './util/progress.js';

export interface CompileOptions extends LoadOptions {
  /** A preset name, a hardware file, or a loaded target. */
  readonly hw: string | Target;
  readonly strategy?: Strategy | undefined;
  readonly mode?: 'train' | 'inference' | undefined;
  readonly optimizer?: 'sgd' | 'adam' | undefined;
  /** A pipeline in text form; default: the registered default pipeline. */
  readonly pipeline?: string | undefined;
  readonly hooks?: PassHooks | undefined;
  /** Told how many passes will run once the pipeline is known (`add`), then `tick`ed after each. */
  readonly progress?: Progress | undefined;
}

export interface Compilation {
  readonly module: Module;
  readonly target: Target;
  readonly strategy: Strategy;
  readonly passes: readonly PassRecord[];
}

export function compile(model: string | Module, opts: CompileOptions): Compilation {
  const target = typeof opts.hw === 'string' ? loadTarget(opts.hw) : opts.hw;
  const module = typeof model === 'string' ? loadModel(model, opts) : model;
  verifyModule(module, 'lowering');
  // Tensors live at the die's precision (src/passes/precision.ts).
  if (atDiePrecision(module, target) > 0) verifyModule(module, 'precision');
  const strategy = opts.strategy ?? 'hecaton';
  const steps = opts.pipeline !== undefined ? parsePipeline(opts.pipeline, PASSES) : defaultPipeline({ mode: opts.mode, optimizer: opts.optimizer });
  const passes = runPipeline(module, steps, { target, strategy }, withProgress(opts.hooks, steps.map((s) => s.pass.name), opts.progress));
  return { module, target, strategy, passes };
}

/** The hooks, also ticking `progress` after every pass (as many as will run: up to stopAfter). */
function withProgress(hooks: PassHooks | undefined, names: readonly string[], progress: Progress | undefined): PassHooks | undefined {
  if (progress === undefined) return hooks;
  const last = hooks?.stopAfter === undefined ? -1 : names.indexOf(hooks.stopAfter);
  progress.add(last >= 0 ? last + 1 : names.length);
  return {
    ...hooks,
    afterPass(m, record) {
      hooks?.afterPass?.(m, record);
      if (record.index >= 0) progress.tick(record.pass);
    },
  };
}
