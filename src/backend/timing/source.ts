// Where the executor's programs come from: a compile's program set (evaluated one die at a time)
// or a folder written by `gyges compile -o` (read one die file at a time).

import type { ProgramSet } from '../../passes/schedule/index.js';
import type { ProgramSource } from './execute.js';

export function sourceOfSet(set: ProgramSet): ProgramSource {
  const dies = set.dies();
  return { dies: dies.map((d) => [d.i, d.j] as const), program: (k) => set.programFor(dies[k]!) };
}
