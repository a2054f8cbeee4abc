// `gyges simulate` and `gyges compare`: compile, run the per-die programs on the timing
// backend, and report latency, energy and where the time went (DESIGN.md §4). The trace file
// is written only when the whole run succeeded (beside its destination, then renamed).

import { statSync } from 'node:fs';
import { compile, type CompileOptions } from '../compile.js';
import { compareStrategies, type StrategyRun } from '../backend/timing/compare.js';
import { error } from '../diagnostics/diagnostic.js';
import { simulateCompiled, simulateFolder, type SimulationReport } from '../backend/timing/simulate.js';
import { loadTarget } from '../target/load.js';
import type { Target } from '../target/target.js';
import { ChromeTrace, MAX_TRACE_EVENTS } from '../backend/timing/trace.js';
import { parseDie } from './inspect-command.js';
import { programsOf } from '../passes/schedule/index.js';
import { STRATEGIES, type Strategy } from '../passes/pass.js';
import { NO_PROGRESS, type Progress } from '../util/progress.js';
import { bytes, joules, seconds, table } from '../util/format.js';
import { writeAtomically } from '../util/files.js';

export interface SimulateFlags {
  /** A preset name or hardware file, or the target already loaded (with --accelerator files). */
  hw: string | Target;
  strategy?: Strategy;
  json?: boolean;
  trace?: string;
  /** --trace-dies: `i,j` coordinates separated by `;`, the only dies the trace holds. */
  traceDies?: string;
  /** false with --no-extrapolate: simulate every loop iteration (steady.ts off). */
  extrapolate?: boolean;
}

type Load = Pick<CompileOptions, 'batch' | 'seq' | 'set' | 'inputShapes'>;

/** Progress: one step per pass, and one for the simulation. */
export function runSimulate(model: string, flags: SimulateFlags, load: Load, warn: (line: string) => void, progress: Progress = NO_PROGRESS): string {
  // A folder written by `gyges compile -o` is simulated from its files, as compiled.
  const folder = isDirectory(model);
  let report: SimulationReport;
  let trace: ChromeTrace | undefined;
  if (flags.traceDies !== undefined && flags.trace === undefined) throw error('GY9001', '--trace-dies chooses the dies of a trace: give --trace FILE too');
  progress.start(1);
  try {
    const c = folder ? null : compile(model, { ...load, hw: flags.hw, strategy: flags.strategy, progress });
    const target = c ? c.target : typeof flags.hw === 'string' ? loadTarget(flags.hw) : flags.hw;
    const set = c ? programsOf(c.module) : undefined;
    const dies = set ? set.dies().map((d) => [d.i, d.j] as const) : dieGrid(target.package.rows, target.package.cols);
    trace = flags.trace === undefined ? undefined : new ChromeTrace(dies, MAX_TRACE_EVENTS, flags.traceDies === undefined ? undefined : traceDies(flags.traceDies, dies, target));
    const opts = { trace, steady: flags.extrapolate !== false, onClasses: (n: number, all: number) => warnSlow(n, all, warn) };
    report = c ? simulateCompiled(c, opts) : simulateFolder(model, target, opts);
    progress.tick('simulate');
  } finally {
    progress.stop();
  }
  if (trace && flags.trace !== undefined) {
    writeAtomically(flags.trace, JSON.stringify(trace.toJSON()));
    if (trace.truncated > 0) warn(`warning: the trace holds its first ${trace.toJSON().traceEvents.length} events; ${trace.truncated} more were not recorded`);
  }
  return flags.json ? `${JSON.stringify(report, null, 2)}\n` : formatReport(report);
}

/**
 * Most dies simulated one by one that pass without a note: the 64 classes of GPT-3 175B's
 * unpadded vocabulary on 4096 dies take about 10 s; every one of 1024 dies, as long again.
 */
const QUIET_CLASSES = 64;

/** A note when more than half the dies, and many, must be simulated one by one. */
function warnSlow(simulated: number, dies: number, warn: (line: string) => void): void {
  if (simulated <= QUIET_CLASSES || simulated * 2 <= dies) return;
  warn(
    `note: simulating ${simulated} of ${dies} dies one by one, since few are interchangeable; an uneven split tells them apart ` +
      '(a vocabulary that is not a multiple of the die count, for one: padding it, as Megatron-LM does, lets dies share the work)',
  );
}

export interface CompareFlags {
  /** A preset name or hardware file, or the target already loaded (with --accelerator files). */
  hw: string | Target;
  json?: boolean;
}

/** Every strategy on one model and package, latency and energy normalised to hecaton. */
export function runCompare(model: string, flags: CompareFlags, load: Load, progress: Progress = NO_PROGRESS): string {
  let rows: StrategyRun[];
  progress.start(STRATEGIES.length);
  try {
    rows = compareStrategies(model, { ...load, hw: flags.hw }, { progress });
  } finally {
    progress.stop();
  }
  const base = rows.find((r) => r.strategy === 'hecaton')?.report;
  if (!base) throw error('GY3003', rows.find((r) => r.strategy === 'hecaton')?.error ?? 'hecaton cannot run on this package');
  if (flags.json) {
    return `${JSON.stringify(
      {
        model: base.model,
        target: base.target,
        dies: base.dies,
        baseline: 'hecaton',
        strategies: rows.map((r) =>
          r.report === null
            ? { strategy: r.strategy, error: r.error }
            : {
                strategy: r.strategy,
                latency_s: r.report.latency_s,
                energy_j: r.report.energy_j,
                latency_norm: r.report.latency_s / base.latency_s,
                energy_norm: r.report.energy_j / base.energy_j,
                breakdown_s: r.report.breakdown_s,
                energy_breakdown_j: r.report.energy_breakdown_j,
                sram_peak_bytes: r.report.sram_peak_bytes,
                sram_ok: r.report.sram_ok,
              },
        ),
      },
      null,
      2,
    )}\n`;
  }
  const head = ['strategy', 'latency', '× hecaton', 'compute', 'nop', 'dram', 'idle', 'energy', '× hecaton', 'peak SRAM act/weight'];
  const body = rows.map((r) => {
    const x = r.report;
    if (x === null) return [r.strategy, `cannot run: ${r.error!.replace(/^error GY\d+: /, '')}`];
    const share = (v: number) => `${((100 * v) / x.latency_s).toFixed(1)}%`;
    return [
      `${r.strategy}${x.sram_ok ? '' : '*'}`,
      seconds(x.latency_s),
      ratio(x.latency_s / base.latency_s),
      share(x.breakdown_s.compute),
      share(x.breakdown_s.nop),
      share(x.breakdown_s.dram),
      share(x.breakdown_s.idle),
      joules(x.energy_j),
      ratio(x.energy_j / base.energy_j),
      `${bytes(x.sram_peak_bytes.activation)} / ${bytes(x.sram_peak_bytes.weight)}`,
    ];
  });
  const note = rows.some((r) => r.report && !r.report.sram_ok) ? '\n* needs more SRAM than the die has (as the paper marks in Fig. 8)\n' : '\n';
  return `model ${base.model} on ${base.target} (${base.dies} dies), one training iteration\n${table([head, ...body])}${note}`;
}

export function formatReport(r: SimulationReport): string {
  const share = (v: number) => `${seconds(v)} (${((100 * v) / r.latency_s).toFixed(1)}%)`;
  const e = r.energy_breakdown_j;
  const summary = table(
    [
      ['model', `${r.model}, strategy ${r.strategy}, ${r.dies} dies (${r.grid[0]}x${r.grid[1]}), ${r.target}`],
      ['mini-batches', `${r.minibatch.count} of ${r.minibatch.size} (batch ${r.minibatch.batch})`],
      ['latency', `${seconds(r.latency_s)} per training iteration (critical die [${r.critical_die[0]}, ${r.critical_die[1]}])`],
      ['  compute', share(r.breakdown_s.compute)],
      ['  NoP (exposed)', share(r.breakdown_s.nop)],
      ['  DRAM (exposed)', share(r.breakdown_s.dram)],
      ['  idle (waiting)', share(r.breakdown_s.idle)],
      ['energy', joules(r.energy_j)],
      ['  compute / SRAM', `${joules(e.compute)} / ${joules(e.sram)}`],
      ['  D2D / DRAM', `${joules(e.d2d)} / ${joules(e.dram)}`],
      ['  static', joules(e.static)],
      ['NoP sent', bytes(r.nop_bytes)],
      ['DRAM traffic', bytes(r.dram_bytes)],
      [
        'peak SRAM per die',
        `activation ${bytes(r.sram_peak_bytes.activation)} of ${bytes(r.sram_capacity_bytes.activation)}, weight ${bytes(r.sram_peak_bytes.weight)} of ${bytes(r.sram_capacity_bytes.weight)}${r.sram_ok ? '' : ' — OVERFLOWS (*)'}`,
      ],
    ],
    true,
  );
  // Blocks summed over layers, by phase and kind (the JSON lists every layer); rows with no
  // time at all (ops that run beside DRAM) are left out.
  const groups = new Map<string, { n: number; compute: number; lat: number; trans: number; core: number; dram: number }>();
  for (const b of r.blocks) {
    const key = `${b.phase} ${b.block}`;
    const g = groups.get(key) ?? { n: 0, compute: 0, lat: 0, trans: 0, core: 0, dram: 0 };
    g.n++;
    g.compute += b.compute_s;
    g.lat += b.nop_latency_s;
    g.trans += b.nop_transmission_s;
    g.core += b.nop_internal_s;
    g.dram += b.exposed.dram;
    groups.set(key, g);
  }
  const rows = [['block (all layers)', 'count', 'compute', 'NoP latency', 'NoP transmission', 'NoP in attention', 'exposed DRAM']];
  for (const [k, g] of groups) {
    if (g.compute + g.lat + g.trans + g.core + g.dram === 0) continue;
    rows.push([k, String(g.n), seconds(g.compute), seconds(g.lat), seconds(g.trans), seconds(g.core), seconds(g.dram)]);
  }
  return `${summary}\n\n${table(rows)}\n`;
}

function ratio(x: number): string {
  return `${x.toFixed(2)}×`;
}

function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

/** `--trace-dies 0,0;7,7`: the indices of those dies among the package's (each must be on it). */
function traceDies(text: string, dies: readonly (readonly [number, number])[], target: Target): number[] {
  const parts = text.split(';').filter((p) => p.trim() !== '');
  if (parts.length === 0) throw error('GY9001', `--trace-dies '${text}': expected ROW,COL pairs separated by ';', such as 0,0;7,7`);
  return parts.map((p) => {
    const [i, j] = parseDie(p, '--trace-dies');
    const at = dies.findIndex((d) => d[0] === i && d[1] === j);
    if (at < 0) throw error('GY9001', `--trace-dies: die [${i}, ${j}] is not on the ${target.package.rows}x${target.package.cols} package`);
    return at;
  });
}

function dieGrid(rows: number, cols: number): [number, number][] {
  const out: [number, number][] = [];
  for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) out.push([i, j]);
  return out;
}

