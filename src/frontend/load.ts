// Loading a model file into the IR, by its extension: `.gy` is the model DSL, `.gyir` the
// IR's own text form (what `--print-ir` writes), `.onnx` an ONNX model. Size overrides
// (`--batch`, `--seq`, `--set`) apply to DSL models, whose constants name them; an ONNX
// model takes `--input-shape` for its dynamic axes, and `--batch`/`--seq` bind its inputs'
// dynamic first and second axes.

import { readFileSync } from 'node:fs';
import { extname } from 'node:path';
import { parseDsl } from './dsl/index.js';
import { parseModule } from '../ir/parse.js';
import type { Module } from '../ir/module.js';
import { error } from '../diagnostics/diagnostic.js';
import { loadOnnx } from './onnx/index.js';

export interface LoadOptions {
  /** Sets the model's `batch` constant. */
  readonly batch?: number | undefined;
  /** Sets the model's `seq` constant. */
  readonly seq?: number | undefined;
  /** Sets any top-level constant. */
  readonly set?: Readonly<Record<string, number>> | undefined;
  /** Whole shapes of an ONNX model's inputs, by name (`--input-shape NAME=2x32`). */
  readonly inputShapes?: Readonly<Record<string, readonly number[]>> | undefined;
}

export const MODEL_EXTENSIONS = ['.gy', '.gyir', '.onnx'] as const;

export function readText(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (e) {
    const why = (e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (e as Error).message;
    throw error('GY9002', `cannot read '${path}': ${why}`);
  }
}

export function overridesOf(opts: LoadOptions): Record<string, number> {
  const out: Record<string, number> = { ...(opts.set ?? {}) };
  if (opts.batch !== undefined) out.batch = opts.batch;
  if (opts.seq !== undefined) out.seq = opts.seq;
  return out;
}

export function loadModel(path: string, opts: LoadOptions = {}): Module {
  const ext = extname(path).toLowerCase();
  const overrides = overridesOf(opts);
  if (ext !== '.onnx' && Object.keys(opts.inputShapes ?? {}).length) {
    throw error('GY9001', `'${path}': --input-shape applies to .onnx models; a ${ext || 'model'} file sets sizes with --batch, --seq or --set`);
  }
  switch (ext) {
    case '.gy':
      return parseDsl(readText(path), path, overrides);
    case '.gyir':
      if (Object.keys(overrides).length) {
        throw error('GY9001', `'${path}' is IR text with fixed shapes: --batch, --seq and --set apply to .gy models`);
      }
      return parseModule(readText(path), path);
    case '.onnx':
      if (Object.keys(opts.set ?? {}).length) throw error('GY9001', `'${path}': --set names constants of .gy models; give an ONNX model's sizes with --input-shape`);
      return loadOnnx(path, { inputShapes: opts.inputShapes, batch: opts.batch, seq: opts.seq });
    default:
      throw error('GY9003', `'${path}': unknown model type '${ext || '(none)'}'; expected ${MODEL_EXTENSIONS.join(', ')}`);
  }
}
