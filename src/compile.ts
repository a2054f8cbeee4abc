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

export interface CompileOptions extends LoadOptions {
  /** A preset name, a hardware file, or a loaded target. */
  readonly hw: string | Target;
  readonly strategy?: Strategy | undefined;
  readonly mode?: 'train' | 'inference' | undefined;
  readonly optimizer?: 'sgd' | 'adam' | undefined;
  /** A pipeline in text form; default: the registered default pipeline. */
  readonly pipeline?: string | undefined;
  readonly hooks?: PassHooks | undefined;
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
  const passes = runPipeline(module, steps, { target, strategy }, opts.hooks);
  return { module, target, strategy, passes };
}
