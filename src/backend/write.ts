// Writing a program set to a folder: `manifest.json` (target, strategy, grid, model,
// mini-batch, and what each die does per iteration) and, for every die, `die-I-J.json` (the
// program's JSON form, what simulators read) and `die-I-J.txt` (its text form, for people).
// Byte-identical across runs. Atomic: everything goes into a temporary sibling folder that is
// renamed into place at the end; an existing program folder is replaced only then, and a
// failure leaves no partial output. A folder that is not a program folder is never replaced.

import { existsSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { GygesError, InternalError, error } from '../diagnostics/diagnostic.js';
import type { ProgramSet } from '../passes/schedule/index.js';
import type { Die } from '../passes/sharding.js';
import { bufferCapacity, targetToJSON } from '../target/target.js';
import { printProgram, programToJSON } from './program.js';

export const MANIFEST_FORMAT = 'gyges-manifest/1';

export interface WriteSummary {
  readonly dir: string;
  readonly files: number;
}

export function dieFileBase(die: Die): string {
  return `die-${die.i}-${die.j}`;
}

/** The manifest as a plain object with a fixed key order. */
export function manifestToJSON(set: ProgramSet): Record<string, unknown> {
  const cap = bufferCapacity(set.target);
  const ok = set.peak.activation <= cap.activation && set.peak.weight <= cap.weight;
  return {
    format: MANIFEST_FORMAT,
    model: set.model,
    strategy: set.strategy,
    target: targetToJSON(set.target),
    grid: [set.grid.rows, set.grid.cols],
    minibatch: { batch: set.minibatch.batch, size: set.minibatch.size, count: set.minibatch.count, last_size: set.minibatch.lastSize },
    instructions_per_die: set.instructionsPerDie,
    dies: set.dies().map((die) => {
      const t = set.totalsFor(die);
      return {
        die: [die.i, die.j],
        program: `${dieFileBase(die)}.json`,
        text: `${dieFileBase(die)}.txt`,
        sent_bytes: t.sentBytes,
        link_bytes: t.linkBytes,
        dram_read_bytes: t.dramReadBytes,
        dram_write_bytes: t.dramWriteBytes,
        macs: t.macs,
        vector_flops: t.vectorFlops,
        sram_activation_peak_bytes: set.peak.activation,
        sram_weight_peak_bytes: set.peak.weight,
        sram_ok: ok,
      };
    }),
  };
}

/** Write every die's program and the manifest into `dir` (replaced as a whole, or left untouched). */
export function writePrograms(set: ProgramSet, dir: string): WriteSummary {
  const target = resolve(dir);
  refuseForeign(target, dir);
  let tmp: string | undefined;
  let files = 0;
  try {
    tmp = mkdtempSync(join(dirname(target), `.${basename(target)}-`));
    for (const die of set.dies()) {
      const p = set.programFor(die);
      // One line per die: packages have thousands of dies; the .txt form is for reading.
      writeFileSync(join(tmp, `${dieFileBase(die)}.json`), `${JSON.stringify(programToJSON(p))}\n`);
      writeFileSync(join(tmp, `${dieFileBase(die)}.txt`), printProgram(p));
      files += 2;
    }
    writeFileSync(join(tmp, 'manifest.json'), `${JSON.stringify(manifestToJSON(set), null, 2)}\n`);
    swapIn(tmp, target);
    return { dir: target, files: files + 1 };
  } catch (e) {
    if (tmp) quietly(() => rmSync(tmp!, { recursive: true, force: true }));
    if (e instanceof GygesError || e instanceof InternalError) throw e;
    throw error('GY7002', `cannot write programs to '${dir}': ${(e as Error).message}`);
  }
}

/** Rename the finished folder into place, replacing an earlier one only now (restored if that fails). */
function swapIn(tmp: string, target: string): void {
  const old = `${tmp}.old`;
  const had = existsSync(target);
  if (had) renameSync(target, old);
  try {
    renameSync(tmp, target);
  } catch (e) {
    if (had) quietly(() => renameSync(old, target));
    throw e;
  }
  if (had) quietly(() => rmSync(old, { recursive: true, force: true }));
}

/** Clean-up after a failure must not hide the failure. */
function quietly(f: () => unknown): void {
  try {
    f();
  } catch {
    // the original error is the one to report
  }
}

/** Only an empty folder or an earlier program folder (it has our manifest) may be replaced. */
function refuseForeign(target: string, dir: string): void {
  if (!existsSync(target)) return;
  if (!statSync(target).isDirectory()) throw error('GY7002', `cannot write programs to '${dir}': it is a file`);
  if (readdirSync(target).length === 0) return;
  let format: unknown;
  try {
    format = (JSON.parse(readFileSync(join(target, 'manifest.json'), 'utf8')) as { format?: unknown }).format;
  } catch {
    format = undefined;
  }
  if (format !== MANIFEST_FORMAT) {
    throw error('GY7002', `cannot write programs to '${dir}': the folder exists and holds no program manifest; refusing to replace it`);
  }
}
