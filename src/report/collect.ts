// Everything the HTML report shows, gathered as one plain JSON-able record (ReportData): the
// model run under every strategy (compareStrategies; a strategy that cannot map the model onto
// the grid is a row with its reason), per block and phase each one's exposed time, engine
// time and energy, and for the chosen strategy its simulation, what each pass decided (taken
// right after it ran), each die's peak SRAM, each link's bytes and utilisation, and a timeline
// of one steady-state mini-batch. Deterministic: the same inputs give the same record (pass
// wall times are left out for that reason).

import { compile, type Compilation, type CompileOptions } from '../compile.js';
import { assert } from '../diagnostics/diagnostic.js';
import { targetToJSON } from '../target/target.js';
import type { PassHooks } from '../passes/manager.js';
import { programsOf } from '../passes/schedule/index.js';
import { STRATEGIES, type Strategy } from '../passes/pass.js';
import type { Range } from '../backend/program.js';
import { blockEnergy, linkLoads, type LinkLoad } from '../backend/timing/breakdown.js';
import { compareStrategies } from '../backend/timing/compare.js';
import type { EnergyParts } from '../backend/timing/energy.js';
import type { TimeSplit } from '../backend/timing/execute.js';
import type { SimulationReport } from '../backend/timing/simulate.js';
import { sourceOfSet } from '../backend/timing/source.js';
import { NO_PROGRESS, type Progress } from '../util/progress.js';
import { passDecision, type PassDecision } from './passes.js';
import { minibatchTimeline, type Timeline } from './timeline.js';

export const REPORT_FORMAT = 'gyges-report/1';

/** A compile's options (model sizes, target, pipeline); the strategy is the one looked at closely. */
export type ReportOptions = Omit<CompileOptions, 'hooks' | 'progress'> & { readonly strategy?: Strategy | undefined };

export interface StrategyRow {
  readonly strategy: Strategy;
  /** Why it cannot run on this package; null when it ran. */
  readonly error: string | null;
  readonly latency_s: number | null;
  readonly energy_j: number | null;
  readonly breakdown_s: TimeSplit | null;
  readonly energy_breakdown_j: EnergyParts | null;
  readonly nop_bytes: number | null;
  readonly dram_bytes: number | null;
  readonly sram_peak_bytes: { readonly activation: number; readonly weight: number } | null;
  readonly sram_ok: boolean | null;
}

export interface BlockRow {
  readonly strategy: Strategy;
  readonly layer: number | null;
  readonly phase: string;
  readonly block: string;
  /** Of the critical die's wall time, what this block left exposed (sums to the latency with the tail's idle). */
  readonly exposed_s: TimeSplit;
  /** Engine time of its instructions on the critical die; NoP split into link latency and transmission. */
  readonly busy_s: { readonly compute: number; readonly dram: number; readonly nop: number; readonly nop_latency: number; readonly nop_transmission: number; readonly nop_in_ops: number };
  /** Its instructions' energy on every die; static power over its exposed time. */
  readonly energy_j: EnergyParts;
}

export interface LinkCell extends LinkLoad {
  /** busy_s over the iteration's latency. */
  readonly utilisation: number;
}

export interface ReportData {
  readonly format: typeof REPORT_FORMAT;
  readonly model: string;
  readonly target: string;
  readonly strategy: Strategy;
  readonly grid: readonly [number, number];
  /** The model and compile settings asked for (absent: the model's own). */
  readonly settings: Readonly<Record<string, unknown>>;
  readonly hardware: Readonly<Record<string, unknown>>;
  /** The chosen strategy's simulation, as `gyges simulate --json` gives it. */
  readonly simulation: SimulationReport;
  readonly strategies: readonly StrategyRow[];
  readonly blocks: readonly BlockRow[];
  readonly passes: readonly PassDecision[];
  readonly sram: { readonly capacity_bytes: { readonly activation: number; readonly weight: number }; readonly dies: readonly { readonly die: Range; readonly activation_bytes: number; readonly weight_bytes: number }[] };
  readonly links: { readonly bandwidth_bytes_per_s: number; readonly loads: readonly LinkCell[] };
  readonly timeline: Timeline | null;
}

/** Steps this reports to `progress` (after `start`): one per strategy and one for the timeline. */
export const COLLECT_STEPS = STRATEGIES.length + 1;

export function collectReport(model: string, opts: ReportOptions, progress: Progress = NO_PROGRESS): ReportData {
  const strategy = opts.strategy ?? 'hecaton';
  const { strategy: _, ...compileOpts } = opts;
  // Decisions are taken after every pass of every strategy's compile; the chosen one's are kept.
  let current: PassDecision[] = [];
  let decisions: PassDecision[] = [];
  const hooks: PassHooks = {
    afterPass(m, r) {
      if (r.index < 0) current = [];
      else current.push(passDecision(m, r));
    },
  };
  const blocks: BlockRow[] = [];
  let chosen: { c: Compilation; report: SimulationReport } | null = null;
  const runs = compareStrategies(model, { ...compileOpts, hooks }, {
    progress,
    visit(c, report) {
      blocks.push(...blockRows(c, report));
      if (c.strategy === strategy) {
        chosen = { c, report };
        decisions = current;
      }
    },
  });
  if (chosen === null) {
    // It cannot run here: compiling it alone raises its reason as the error it is.
    compile(model, { ...compileOpts, strategy });
    assert(false, `strategy ${strategy} failed in the comparison but compiles alone`);
  }
  const { c, report } = chosen as { c: Compilation; report: SimulationReport };
  const set = programsOf(c.module)!;
  const timeline = minibatchTimeline(c, report.critical_die);
  progress.tick('timeline');
  const links = linkLoads(sourceOfSet(set), c.target).map((l) => ({ ...l, utilisation: report.latency_s > 0 ? l.busy_s / report.latency_s : 0 }));
  return {
    format: REPORT_FORMAT,
    model: report.model,
    target: report.target,
    strategy,
    grid: [set.grid.rows, set.grid.cols],
    settings: { batch: opts.batch, seq: opts.seq, set: opts.set, input_shapes: opts.inputShapes, mode: opts.mode, optimizer: opts.optimizer, pipeline: opts.pipeline },
    hardware: targetToJSON(c.target),
    simulation: report,
    strategies: runs.map((r) => strategyRow(r.strategy, r.report, r.error)),
    blocks,
    passes: decisions,
    // Every die's buffers are allocated for the largest tile, so the schedule's peak is each die's.
    sram: {
      capacity_bytes: report.sram_capacity_bytes,
      dies: set.dies().map((d) => ({ die: [d.i, d.j] as const, activation_bytes: set.peak.activation, weight_bytes: set.peak.weight })),
    },
    links: { bandwidth_bytes_per_s: c.target.package.link.bandwidthBytesPerS, loads: links },
    timeline,
  };
}

function strategyRow(strategy: Strategy, r: SimulationReport | null, error: string | null): StrategyRow {
  return {
    strategy,
    error,
    latency_s: r?.latency_s ?? null,
    energy_j: r?.energy_j ?? null,
    breakdown_s: r?.breakdown_s ?? null,
    energy_breakdown_j: r?.energy_breakdown_j ?? null,
    nop_bytes: r?.nop_bytes ?? null,
    dram_bytes: r?.dram_bytes ?? null,
    sram_peak_bytes: r?.sram_peak_bytes ?? null,
    sram_ok: r?.sram_ok ?? null,
  };
}

/** The report's blocks with their energy (blockEnergy lists the same blocks in the same order). */
function blockRows(c: Compilation, report: SimulationReport): BlockRow[] {
  const energy = blockEnergy(sourceOfSet(programsOf(c.module)!), c.target);
  const staticW = c.target.layout.reduce((sum, k) => sum + c.target.dieTypes[k]!.energy.staticW, 0);
  return report.blocks.map((b, i) => {
    const e = energy[i]!;
    assert(e.layer === b.layer && e.phase === b.phase && e.block === b.block, `report: block ${i} is ${b.layer}/${b.phase}/${b.block} in the simulation, ${e.layer}/${e.phase}/${e.block} in the energy`);
    const x = b.exposed;
    return {
      strategy: c.strategy,
      layer: b.layer,
      phase: b.phase,
      block: b.block,
      exposed_s: x,
      busy_s: { compute: b.compute_s, dram: b.dram_s, nop: b.nop_s, nop_latency: b.nop_latency_s, nop_transmission: b.nop_transmission_s, nop_in_ops: b.nop_internal_s },
      energy_j: { ...e.energy_j, static: staticW * (x.compute + x.nop + x.dram + x.idle) },
    };
  });
}
