// Reading a program folder for people (`gyges inspect`): the manifest with its per-die totals,
// and any one die's program on request. Everything is validated on the way in; a missing folder
// is GY9002, a manifest or program that is not what `gyges compile -o` writes is GY7001, and
// both name the file.

import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { error } from '../diagnostics/diagnostic.js';
import { parseProgram, type Program, type Range } from '../backend/program.js';
import { MANIFEST_FORMAT } from '../backend/write.js';

const whole = z.number().int().nonnegative();
const amount = z.number().finite().nonnegative();
const pair = z.tuple([whole, whole]);

const DIE_ENTRY = z.object({
  die: pair,
  program: z.string().regex(/^die-\d+-\d+\.json$/),
  sent_bytes: amount,
  link_bytes: amount,
  dram_read_bytes: amount,
  dram_write_bytes: amount,
  macs: amount,
  vector_flops: amount,
  sram_activation_peak_bytes: amount,
  sram_weight_peak_bytes: amount,
  sram_ok: z.boolean(),
});

const MANIFEST = z.object({
  format: z.literal(MANIFEST_FORMAT),
  model: z.string(),
  strategy: z.string(),
  target: z.object({ name: z.string() }).loose(),
  grid: z.tuple([whole.min(1), whole.min(1)]),
  minibatch: z.object({ batch: whole, size: whole, count: whole, last_size: whole }),
  instructions_per_die: whole,
  dies: z.array(DIE_ENTRY).min(1),
});

export type DieEntry = z.infer<typeof DIE_ENTRY>;

export interface ProgramFolderView {
  readonly dir: string;
  readonly model: string;
  readonly strategy: string;
  readonly target: string;
  readonly grid: Range;
  readonly minibatch: { readonly batch: number; readonly size: number; readonly count: number; readonly lastSize: number };
  readonly instructionsPerDie: number;
  /** Row-major, one per die of the grid. */
  readonly dies: readonly DieEntry[];
  /** Read and validate die [i, j]'s program (GY9001 when the die is outside the grid). */
  program(i: number, j: number): Program;
}

/** Open a folder written by `gyges compile -o`: reads the manifest now, programs when asked. */
export function openProgramFolder(dir: string): ProgramFolderView {
  if (!existsSync(dir)) throw error('GY9002', `cannot read '${dir}': no such folder`);
  if (!statSync(dir).isDirectory()) throw error('GY9002', `cannot read '${dir}': not a folder (expected one written by 'gyges compile -o')`);
  const file = join(dir, 'manifest.json');
  if (!existsSync(file)) throw error('GY7001', `${file}: missing; '${dir}' is not a program folder written by 'gyges compile -o'`);
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    throw error('GY7001', `${file}: malformed manifest: ${(e as Error).message.split('\n')[0]}`);
  }
  const parsed = MANIFEST.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw error('GY7001', `${file}: malformed manifest: ${issue.path.join('.') || 'top level'}: ${issue.message}`);
  }
  const m = parsed.data;
  const [rows, cols] = m.grid;
  if (m.dies.length !== rows * cols) throw error('GY7001', `${file}: malformed manifest: a ${rows}x${cols} grid has ${rows * cols} dies, the manifest lists ${m.dies.length}`);
  m.dies.forEach((d, k) => {
    const want = [Math.floor(k / cols), k % cols];
    if (d.die[0] !== want[0] || d.die[1] !== want[1]) throw error('GY7001', `${file}: malformed manifest: dies.${k} is [${d.die.join(', ')}], expected [${want.join(', ')}] (row by row)`);
  });
  return {
    dir,
    model: m.model,
    strategy: m.strategy,
    target: m.target.name,
    grid: m.grid,
    minibatch: { batch: m.minibatch.batch, size: m.minibatch.size, count: m.minibatch.count, lastSize: m.minibatch.last_size },
    instructionsPerDie: m.instructions_per_die,
    dies: m.dies,
    program(i, j) {
      if (i >= rows || j >= cols) throw error('GY9001', `--die ${i},${j} is outside the ${rows}x${cols} grid of '${dir}' (rows 0..${rows - 1}, columns 0..${cols - 1})`);
      const path = join(dir, m.dies[i * cols + j]!.program);
      let text: string;
      try {
        text = readFileSync(path, 'utf8');
      } catch (e) {
        throw error('GY7001', `${path}: cannot read the program the manifest lists (${(e as Error).message.split('\n')[0]})`);
      }
      const p = parseProgram(text, path);
      if (p.header.die[0] !== i || p.header.die[1] !== j) throw error('GY7001', `${path}: holds the program of die [${p.header.die.join(', ')}], the manifest says [${i}, ${j}]`);
      return p;
    },
  };
}
