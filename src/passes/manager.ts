// The pass manager: runs a pipeline over a module, checks each pass's prerequisites, and
// exposes the hooks every debug flag is built on (print after a pass, dump each pass to a
// numbered file, stop after a pass, verify after each pass, time each pass). Nothing else
// special-cases inspection.

import { performance } from 'node:perf_hooks';
import type { Module } from '../ir/module.js';
import { verifyModule } from '../ir/verify.js';
import { error } from '../diagnostics/diagnostic.js';
import type { Pass, PassContext } from './pass.js';
import type { PipelineStep } from './pipeline.js';

export interface PassRecord {
  readonly pass: string;
  readonly index: number;
  /** What the pass decided, one line each. */
  readonly reports: readonly string[];
  readonly ms: number;
}

export interface PassHooks {
  /** Run the verifier after every pass, naming the pass that broke an invariant. */
  readonly verifyEach?: boolean;
  /** Stop after the pass of this name (it must be in the pipeline). */
  readonly stopAfter?: string | undefined;
  /** Called before the first pass with index -1, then after every pass. */
  afterPass?(m: Module, record: PassRecord): void;
}

export type ManagerContext = Omit<PassContext, 'report'>;

/** Run `steps` over `m` in place; returns what each pass reported. */
export function runPipeline(m: Module, steps: readonly PipelineStep[], ctx: ManagerContext, hooks: PassHooks = {}): PassRecord[] {
  if (hooks.stopAfter !== undefined && !steps.some((s) => s.pass.name === hooks.stopAfter)) {
    throw error('GY9001', `--stop-after=${hooks.stopAfter}: no such pass in the pipeline (${steps.map((s) => s.pass.name).join(', ')})`);
  }
  hooks.afterPass?.(m, { pass: 'input', index: -1, reports: [], ms: 0 });
  const records: PassRecord[] = [];
  for (const [index, step] of steps.entries()) {
    checkRequires(m, step.pass, steps);
    const reports: string[] = [];
    const start = performance.now();
    step.pass.run(m, { ...ctx, report: (_pass, line) => reports.push(line) }, step.options);
    const record: PassRecord = { pass: step.pass.name, index, reports, ms: performance.now() - start };
    if (hooks.verifyEach) verifyModule(m, step.pass.name);
    records.push(record);
    hooks.afterPass?.(m, record);
    if (step.pass.name === hooks.stopAfter) break;
  }
  return records;
}

function checkRequires(m: Module, pass: Pass, steps: readonly PipelineStep[]): void {
  for (const need of pass.requires) {
    if (need in m.notes) continue;
    const provider = steps.find((s) => s.pass.establishes.includes(need))?.pass.name;
    throw error(
      'GY9001',
      `pass ${pass.name} needs '${need}'${provider ? `, which ${provider} establishes: run ${provider} before ${pass.name}` : ''}`,
    );
  }
}
