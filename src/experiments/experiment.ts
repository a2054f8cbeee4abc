// What an experiment is: a name (the CLI's), a title, the points it measures, and how its rows
// become a chart. An experiment lists its points before it runs any, so a caller can show
// progress; each point yields one or more rows of named fields (the `--json` rows and the
// CSV's columns). Rows are plain records in a fixed order, so output is deterministic.

import type { TopLevelSpec } from 'vega-lite';
import { NO_PROGRESS, type Progress } from '../util/progress.js';

export { NO_PROGRESS, type Progress };

export type Cell = string | number | boolean | null;
export type Row = Readonly<Record<string, Cell>>;

/** One unit of work: a label for progress, and what it measures. */
export interface Task {
  readonly label: string;
  run(): Row[];
}

export interface Experiment {
  readonly name: string;
  readonly title: string;
  /** The points to measure, in output order. */
  tasks(): Task[];
  /** Rows computed from all measured rows (normalisations); identity when none. */
  finish(rows: readonly Row[]): Row[];
  /** A Vega-Lite spec of the chart, its data inline. */
  chart(rows: readonly Row[]): TopLevelSpec;
}

export function runTasks(e: Experiment, progress: Progress = NO_PROGRESS): Row[] {
  const tasks = e.tasks();
  progress.start(tasks.length);
  const rows: Row[] = [];
  try {
    for (const t of tasks) {
      rows.push(...t.run());
      progress.tick(t.label);
    }
  } finally {
    progress.stop();
  }
  return e.finish(rows);
}

/** x / the value of the row of the same group that `isBase` picks (null when it has none). */
export function normalise(rows: readonly Row[], field: string, group: (r: Row) => string, isBase: (r: Row) => boolean): (number | null)[] {
  const base = new Map<string, number>();
  for (const r of rows) if (isBase(r) && typeof r[field] === 'number') base.set(group(r), r[field] as number);
  return rows.map((r) => {
    const b = base.get(group(r));
    return b === undefined || typeof r[field] !== 'number' ? null : (r[field] as number) / b;
  });
}
