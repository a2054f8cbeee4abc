// Where the executor's programs come from: a compile's program set (evaluated one die at a
// time), or a folder written by `gyges compile -o` — manifest.json and one die-I-J.json per
// die, each read and validated (parseProgram, GY7001) only when the executor asks for it.

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { error } from '../../diagnostics/diagnostic.js';
import type { ProgramSet } from '../../passes/schedule/index.js';
import { parseProgram, type Range } from '../program.js';
import { MANIFEST_FORMAT } from '../write.js';
import type { ProgramSource } from './execute.js';

export function sourceOfSet(set: ProgramSet): ProgramSource {
  const dies = set.dies();
  return { dies: dies.map((d) => [d.i, d.j] as const), program: (k) => set.programFor(dies[k]!), shared: set };
}

const pair = z.tuple([z.number().int().nonnegative(), z.number().int().nonnegative()]);
const MANIFEST = z.object({
  format: z.literal(MANIFEST_FORMAT),
  model: z.string(),
  strategy: z.string(),
  target: z.object({ name: z.string() }).loose(),
  grid: pair,
  minibatch: z.object({ batch: z.number(), size: z.number(), count: z.number() }).loose(),
  dies: z.array(z.object({ die: pair, program: z.string().regex(/^die-\d+-\d+\.json$/) }).loose()).min(1),
});

export interface ProgramFolder {
  readonly source: ProgramSource;
  readonly model: string;
  readonly strategy: string;
  readonly targetName: string;
  readonly grid: Range;
  readonly minibatch: { readonly batch: number; readonly size: number; readonly count: number };
}

/** The programs of a folder written by `gyges compile -o`. */
export function sourceOfFolder(dir: string): ProgramFolder {
  const file = join(dir, 'manifest.json');
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    throw error('GY7001', `${file}: not a program folder's manifest (${(e as Error).message.split('\n')[0]})`);
  }
  const m = MANIFEST.safeParse(raw);
  if (!m.success) {
    const issue = m.error.issues[0]!;
    throw error('GY7001', `${file}: ${issue.path.join('.') || 'manifest'}: ${issue.message}`);
  }
  const { grid, dies } = m.data;
  const want = grid[0] * grid[1];
  if (dies.length !== want) throw error('GY7001', `${file}: a ${grid[0]}x${grid[1]} grid needs ${want} dies, the manifest lists ${dies.length}`);
  dies.forEach((d, k) => {
    const [i, j] = [Math.floor(k / grid[1]), k % grid[1]];
    if (d.die[0] !== i || d.die[1] !== j) throw error('GY7001', `${file}: dies must be listed row by row; entry ${k} is [${d.die.join(', ')}], expected [${i}, ${j}]`);
  });
  const source: ProgramSource = {
    dies: dies.map((d) => d.die),
    program: (k) => {
      const path = join(dir, dies[k]!.program);
      let text: string;
      try {
        text = readFileSync(path, 'utf8');
      } catch (e) {
        throw error('GY7001', `${path}: cannot read (${(e as Error).message.split('\n')[0]})`);
      }
      const p = parseProgram(text, path);
      const d = dies[k]!.die;
      if (p.header.die[0] !== d[0] || p.header.die[1] !== d[1]) throw error('GY7001', `${path}: holds the program of die [${p.header.die.join(', ')}], the manifest says [${d.join(', ')}]`);
      return p;
    },
  };
  return { source, model: m.data.model, strategy: m.data.strategy, targetName: m.data.target.name, grid, minibatch: m.data.minibatch };
}
