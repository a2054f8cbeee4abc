// `gyges report MODEL --hw HW [--strategy S] -o report.html`: compile and simulate the model
// under every strategy and write one self-contained HTML page about it (src/report). The page
// is written only once all of it is made (beside its destination, then renamed), so a failure
// leaves no file; a destination that cannot be written is refused before the work starts.

import { existsSync, statSync } from 'node:fs';
import { dirname } from 'node:path';
import type { CompileOptions } from '../compile.js';
import { error } from '../diagnostics/diagnostic.js';
import type { Strategy } from '../passes/pass.js';
import type { Target } from '../target/target.js';
import { buildReport, REPORT_STEPS } from '../report/index.js';
import { writeAtomically } from '../util/files.js';
import { bytes } from '../util/format.js';
import { NO_PROGRESS, type Progress } from '../util/progress.js';

export interface ReportFlags {
  /** A preset name or hardware file, or the target already loaded (with --accelerator files). */
  hw: string | Target;
  strategy?: Strategy;
  mode?: CompileOptions['mode'];
  optimizer?: CompileOptions['optimizer'];
  pipeline?: string;
  out: string;
}

type Load = Pick<CompileOptions, 'batch' | 'seq' | 'set' | 'inputShapes'>;

/** Writes the report; returns the line for stdout. */
export async function runReport(model: string, flags: ReportFlags, load: Load, progress: Progress = NO_PROGRESS): Promise<string> {
  checkDestination(flags.out);
  progress.start(REPORT_STEPS);
  let made: Awaited<ReturnType<typeof buildReport>>;
  try {
    made = await buildReport(model, { ...load, hw: flags.hw, strategy: flags.strategy, mode: flags.mode, optimizer: flags.optimizer, pipeline: flags.pipeline }, progress);
  } finally {
    progress.stop();
  }
  const { html, data } = made;
  writeAtomically(flags.out, html);
  const ran = data.strategies.filter((s) => s.error === null).length;
  return `wrote ${flags.out} (${bytes(Buffer.byteLength(html))}): ${data.model} on ${data.target}, ${data.strategy} in detail, ${ran} of ${data.strategies.length} strategies compared\n`;
}

function checkDestination(file: string): void {
  if (existsSync(file) && statSync(file).isDirectory()) throw error('GY9002', `cannot write '${file}': it is a folder (-o takes the HTML file to write)`);
  const dir = dirname(file);
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw error('GY9002', `cannot write '${file}': no folder '${dir}'`);
}
