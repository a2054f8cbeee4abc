// `gyges compile`: run the pipeline and show what it did. Every inspection flag is a hook on
// the one pass manager: --print-after-all / --print-after=PASS print the IR after passes,
// --dump-dir writes each stage to a numbered file, --stop-after ends the pipeline early,
// --verify-each runs the verifier after every pass. Output files appear only when the whole
// compile succeeds (they are written to a temporary folder and renamed into place).
// --emit dot prints the IR graph after the last pass that ran (src/inspect/dot.ts) instead of
// the summary, or writes it to the file -o names.

import { existsSync, mkdtempSync, readdirSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { compile, type Compilation, type CompileOptions } from '../compile.js';
import { error } from '../diagnostics/diagnostic.js';
import type { Module } from '../ir/module.js';
import { printModule } from '../ir/print.js';
import type { PassRecord } from '../passes/manager.js';
import { bufferCapacity, describeTarget, type Target } from '../target/target.js';
import { bytes } from '../util/format.js';
import { NO_PROGRESS, type Progress } from '../util/progress.js';
import { programsOf } from '../passes/schedule/index.js';
import { writePrograms } from '../backend/write.js';
import { moduleToDot } from '../inspect/dot.js';

export interface CompileFlags {
  /** A preset name or hardware file, or the target already loaded (with --accelerator files). */
  hw: string | Target;
  strategy?: CompileOptions['strategy'];
  mode?: CompileOptions['mode'];
  optimizer?: CompileOptions['optimizer'];
  pipeline?: string;
  printIr?: boolean;
  printAfterAll?: boolean;
  printAfter?: string[];
  dumpDir?: string;
  stopAfter?: string;
  verifyEach?: boolean;
  /** Write one program per die and a manifest into this folder (with `emit`: the file to write). */
  out?: string;
  /** Print the IR graph after the last pass that ran in this form instead of the summary. */
  emit?: 'dot';
}

/** Runs the compile; returns the text for stdout. */
export function runCompile(model: string, flags: CompileFlags, load: Pick<CompileOptions, 'batch' | 'seq' | 'set' | 'inputShapes'>, progress: Progress = NO_PROGRESS): string {
  const printed: string[] = [];
  const dumps: { file: string; text: string }[] = [];
  const printAfter = new Set(flags.printAfter ?? []);
  const afterPass = (m: Module, r: PassRecord) => {
    const wanted = flags.printAfterAll || printAfter.has(r.pass);
    if (!wanted && !flags.dumpDir) return;
    const text = `${r.reports.map((l) => `// ${r.pass}: ${l}\n`).join('')}${printModule(m)}`;
    if (wanted) printed.push(`// ----- IR after ${r.pass} -----\n${text}`);
    if (flags.dumpDir) dumps.push({ file: `${String(r.index + 1).padStart(2, '0')}-${r.pass}.gyir`, text });
  };
  // Progress: one step per pass.
  progress.start(0);
  let c: Compilation;
  try {
    c = compile(model, {
      ...load,
      hw: flags.hw,
      strategy: flags.strategy,
      mode: flags.mode,
      optimizer: flags.optimizer,
      pipeline: flags.pipeline,
      hooks: { afterPass, stopAfter: flags.stopAfter, verifyEach: flags.verifyEach ?? false },
      progress,
    });
  } finally {
    progress.stop();
  }
  if (flags.emit && !flags.out && (flags.printIr || flags.printAfterAll || printAfter.size)) {
    throw error('GY9001', `--emit ${flags.emit} prints to stdout, and so do --print-ir and --print-after*: give --emit a file with -o FILE`);
  }
  for (const p of printAfter) {
    if (!c.passes.some((r) => r.pass === p)) throw error('GY9001', `--print-after=${p}: no pass '${p}' ran (passes: ${c.passes.map((r) => r.pass).join(', ')})`);
  }
  if (flags.emit) {
    if (flags.dumpDir) writeFolder(flags.dumpDir, dumps);
    return emitGraph(c.module, flags.emit, flags.out, printed.length ? printed.join('\n') : summary(c));
  }
  if (flags.out) {
    const set = programsOf(c.module);
    if (!set) throw error('GY9001', `-o needs the schedule pass (ran: ${c.passes.map((p) => p.pass).join(', ') || 'none'})`);
    writePrograms(set, flags.out);
  }
  if (flags.dumpDir) writeFolder(flags.dumpDir, dumps);
  if (flags.printIr) return printModule(c.module);
  return printed.length ? printed.join('\n') : summary(c);
}

/** The module in `format`, written to `file` (the returned text is then `other`) or returned. */
function emitGraph(m: Module, format: 'dot', file: string | undefined, other: string): string {
  const text = moduleToDot(m);
  if (!file) return text;
  if (existsSync(file) && statSync(file).isDirectory()) throw error('GY9002', `cannot write '${file}': it is a folder (--emit ${format} -o takes a file)`);
  try {
    writeFileSync(file, text);
  } catch (e) {
    throw error('GY9002', `cannot write '${file}': ${(e as Error).message}`);
  }
  return other;
}

function summary(c: Compilation): string {
  const n = c.module.notes;
  const lines = [describeTarget(c.target), '', `model ${c.module.name}, strategy ${c.strategy}`];
  for (const r of c.passes) for (const l of r.reports) lines.push(`  ${r.pass}: ${l}`);
  // The schedule's allocation is exact; without it, the mini-batch pass's estimate.
  const act = n['schedule.activation_peak_bytes'] ?? n['minibatch.activation_peak_bytes'];
  if (typeof act === 'number') {
    const ok = (n['schedule.sram_ok'] ?? n['minibatch.sram_ok']) === true;
    const weight = typeof n['schedule.weight_peak_bytes'] === 'number' ? `, weight ${bytes(n['schedule.weight_peak_bytes'])} of ${bytes(bufferCapacity(c.target).weight)}` : '';
    lines.push(`peak SRAM per die: activation ${bytes(act)} of ${bytes(bufferCapacity(c.target).activation)}${weight}${ok ? '' : ' — OVERFLOWS (*)'}`);
  }
  return `${lines.join('\n')}\n`;
}

/**
 * Write files into `dir` only if all of them can be written: build beside it, then rename.
 * An existing `dir` is replaced only if everything in it matches `ours` (an earlier output).
 */
export function writeFolder(dir: string, files: readonly { file: string; text: string }[], ours = /^\d\d-[\w-]+\.gyir$/): void {
  if (existsSync(dir)) {
    const foreign = readdirSync(dir).filter((f) => !ours.test(f));
    if (foreign.length) throw error('GY9002', `refusing to replace '${dir}': it holds files Gyges did not write (${foreign.slice(0, 3).join(', ')})`);
  }
  const parent = dirname(dir);
  let tmp: string;
  try {
    tmp = mkdtempSync(join(parent, `.${basename(dir)}-`));
  } catch (e) {
    throw error('GY9002', `cannot write '${dir}': ${(e as Error).message}`);
  }
  try {
    for (const f of files) writeFileSync(join(tmp, f.file), f.text);
    if (existsSync(dir)) rmSync(dir, { recursive: true });
    renameSync(tmp, dir);
  } catch (e) {
    rmSync(tmp, { recursive: true, force: true });
    throw error('GY9002', `cannot write '${dir}': ${(e as Error).message}`);
  }
}
