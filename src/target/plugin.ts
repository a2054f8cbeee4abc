// Accelerator files (`--accelerator FILE`): a die described by the user, without editing the
// compiler. Two forms:
//
//   my-die.json / .yaml   a die description with the fields of targets/dies/*.yaml; `model:`
//                         picks a registered kind's cost formulas (accelerators.ts).
//   my-die.js / .mjs      an ES module whose default export is the same fields, plus optional
//                         functions that replace the kind's costs:
//                           gemm({batch, m, n, k, macs, accumulate}) → {cycles, energy_pj?,
//                                                                     sram_read_bytes?, sram_write_bytes?}
//                           vector({op, elements, flops, inputs, outputs, accumulate}) → the same
//                         cycles are at the die's clock; a field left out takes the kind's value.
//
// docs/adding-an-accelerator.md walks through one. The die's numbers are validated with the
// bundled dies' schema; what the functions return is checked on every call (a finite number of
// cycles ≥ 0, energies and bytes likewise), so a broken plugin is one clear error, not a NaN in
// a report.

import { existsSync } from 'node:fs';
import { extname, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { error, type GygesError } from '../diagnostics/diagnostic.js';
import type { CustomCost, CustomCosts, GemmWork, VectorWork } from './accelerators.js';
import { dieSpecOf, loadDieFile } from './load.js';
import { dieSchema, formatPath, problemsOf } from './schema.js';
import type { DieSpec } from './target.js';

const MODULE_EXTENSIONS = ['.js', '.mjs'];
const DATA_EXTENSIONS = ['.json', '.yaml', '.yml'];

/** Each file's die, in order; names must be distinct. */
export async function loadAccelerators(files: readonly string[]): Promise<DieSpec[]> {
  const dies: DieSpec[] = [];
  for (const f of files) {
    const d = await loadAccelerator(f);
    const twin = dies.find((x) => x.name === d.name);
    if (twin) throw error('GY4001', `accelerators '${twin.file}' and '${f}' both define a die named '${d.name}'`);
    dies.push(d);
  }
  return dies;
}

/** The die an accelerator file defines. */
export async function loadAccelerator(file: string): Promise<DieSpec> {
  const ext = extname(file).toLowerCase();
  if (DATA_EXTENSIONS.includes(ext)) return { ...loadDieFile(file), file };
  if (!MODULE_EXTENSIONS.includes(ext)) {
    throw error('GY4003', `accelerator '${file}' must be an ES module (.js, .mjs) or a die description (.json, .yaml, .yml)`);
  }
  if (!existsSync(file)) throw error('GY9002', `cannot read accelerator '${file}': no such file`);
  let mod: { default?: unknown };
  try {
    mod = (await import(pathToFileURL(resolve(file)).href)) as { default?: unknown };
  } catch (e) {
    throw error('GY9002', `cannot load accelerator '${file}': ${firstLine(e)}`);
  }
  const def = mod.default;
  if (def === null || typeof def !== 'object' || Array.isArray(def)) {
    throw error('GY4001', `accelerator '${file}' must export default an object with the die's fields (name, precision, macs, ...)`);
  }
  const { gemm, vector, ...fields } = def as Record<string, unknown>;
  for (const [name, fn] of [['gemm', gemm], ['vector', vector]] as const) {
    if (fn !== undefined && typeof fn !== 'function') throw error('GY4001', `accelerator '${file}': ${name} must be a function, got ${typeof fn}`);
  }
  const parsed = dieSchema.safeParse(fields);
  if (!parsed.success) {
    const p = problemsOf(dieSchema, fields, parsed.error.issues)[0]!;
    throw error(p.code, `accelerator '${file}': ${p.detail.replace(/^the hardware description/, formatPath([]))}`);
  }
  const custom: CustomCosts = {
    ...(gemm ? { gemm: checked(file, 'gemm', gemm as (g: GemmWork) => unknown, (g: GemmWork) => ({ batch: g.batch, m: g.m, n: g.n, k: g.k, macs: g.macs, accumulate: g.accumulate })) } : {}),
    ...(vector
      ? { vector: checked(file, 'vector', vector as (v: VectorWork) => unknown, (v: VectorWork) => ({ op: v.op, elements: v.elements, flops: v.flops, inputs: v.inputs, outputs: v.outputs, accumulate: v.accumulate })) }
      : {}),
  };
  return dieSpecOf(parsed.data, { file, ...(gemm || vector ? { custom } : {}) });
}

/** A plugin cost function that sees only the documented fields, and whose every answer is checked. */
function checked<W extends object>(file: string, name: string, fn: (w: W) => unknown, fields: (w: W) => W): (w: W) => CustomCost {
  return (given) => {
    const w = fields(given);
    let out: unknown;
    try {
      out = fn(w);
    } catch (e) {
      throw pluginError(file, `${name}(${show(w)}) threw: ${firstLine(e)}`);
    }
    if (out === null || typeof out !== 'object') throw pluginError(file, `${name}(${show(w)}) must return an object {cycles, ...}, got ${out === null ? 'null' : typeof out}`);
    const r = out as Record<string, unknown>;
    for (const key of ['cycles', 'energy_pj', 'sram_read_bytes', 'sram_write_bytes']) {
      const v = r[key];
      if (v === undefined && key !== 'cycles') continue;
      if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) {
        throw pluginError(file, `${name}(${show(w)}) returned ${key} ${typeof v === 'number' ? String(v) : typeof v}; it must be a finite number ≥ 0`);
      }
    }
    return r as unknown as CustomCost;
  };
}

function pluginError(file: string, detail: string): GygesError {
  return error('GY4005', `accelerator '${file}': ${detail}`);
}

function show(w: object): string {
  return `{${Object.entries(w).map(([k, v]) => `${k}: ${typeof v === 'string' ? JSON.stringify(v) : String(v)}`).join(', ')}}`;
}

function firstLine(e: unknown): string {
  return ((e instanceof Error ? e.message : String(e)).split('\n')[0] ?? '').trim();
}
