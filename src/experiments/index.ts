// The experiments of the paper's evaluation (§VI), registered once, by CLI name. Each is
// defined in its own file; docs/reproduction.md sets their results beside the paper's.

import { error } from '../diagnostics/diagnostic.js';
import type { Experiment } from './experiment.js';
import { table3 } from './table3.js';
import { fig7 } from './fig7.js';
import { fig8 } from './fig8.js';
import { fig9 } from './fig9.js';
import { fig10 } from './fig10.js';
import { fig11 } from './fig11.js';

export { runTasks, type Experiment, type Progress, type Row } from './experiment.js';
export { measure, type Measurement, type Point, type Variant } from './measure.js';

export const EXPERIMENTS = [table3, fig7, fig8, fig9, fig10, fig11] as const satisfies readonly Experiment[];

export function findExperiment(name: string): Experiment {
  const e = EXPERIMENTS.find((x) => x.name === name);
  if (!e) throw error('GY9001', `unknown experiment '${name}': expected one of ${EXPERIMENTS.map((x) => x.name).join(', ')}`);
  return e;
}
