// How long-running library calls say how far they are: a count of steps announced up front
// (more may be added once known, e.g. a pipeline's passes) and a tick with a label after each.
// The library only ever calls this interface; the command line draws it as a bar on a
// terminal (src/cli/progress.ts) and everything else passes NO_PROGRESS.

export interface Progress {
  /** Begin, expecting `total` steps. */
  start(total: number): void;
  /** Expect `n` steps more than announced so far. */
  add(n: number): void;
  /** One step is done; `label` says which. */
  tick(label: string): void;
  /** Done (also after a failure): remove whatever was drawn. */
  stop(): void;
}

export const NO_PROGRESS: Progress = { start: () => {}, add: () => {}, tick: () => {}, stop: () => {} };
