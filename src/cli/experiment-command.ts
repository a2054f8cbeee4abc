// `gyges experiment NAME [--json] [-o DIR]`: run one of the paper's experiments (src/experiments)
// in-process, print its rows as a table (or one JSON object), and with -o write NAME.csv and a
// chart NAME.svg into DIR. Progress goes to stderr only when stderr is a terminal.

import { mkdirSync } from 'node:fs';
import { writeAtomically } from '../util/files.js';
import { join } from 'node:path';
import { error } from '../diagnostics/diagnostic.js';
import { findExperiment, runTasks, type Progress } from '../experiments/index.js';
import { NO_PROGRESS } from '../util/progress.js';
import { toCsv, toSvg, toTable } from '../experiments/output.js';

export interface ExperimentFlags {
  json?: boolean;
  out?: string;
}

export async function runExperiment(name: string, flags: ExperimentFlags, progress: Progress = NO_PROGRESS): Promise<string> {
  const e = findExperiment(name);
  const rows = runTasks(e, progress);
  if (flags.out !== undefined) {
    const svg = await toSvg(e, rows);
    try {
      mkdirSync(flags.out, { recursive: true });
    } catch (x) {
      throw error('GY9002', `cannot create '${flags.out}': ${(x as Error).message}`);
    }
    writeAtomically(join(flags.out, `${e.name}.csv`), toCsv(rows));
    writeAtomically(join(flags.out, `${e.name}.svg`), svg);
  }
  return flags.json ? `${JSON.stringify({ experiment: e.name, rows }, null, 2)}\n` : toTable(e, rows);
}
