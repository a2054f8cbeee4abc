// `gyges simulate` as a library call: compile a model (or take a compilation), run its per-die
// programs on the timing executor, and report latency, energy and where the time went, in the
// field names of DESIGN.md §4 plus a `blocks` list (per Transformer block and phase).

import { compile, type Compilation, type CompileOptions } from '../../compile.js';
import { error } from '../../diagnostics/diagnostic.js';
import type { Module } from '../../ir/module.js';
import { programsOf, type ProgramSet } from '../../passes/schedule/index.js';
import { bufferCapacity, type Target } from '../../target/target.js';
import { precisionBytes } from '../../target/accelerators.js';
import type { Program } from '../program.js';
import { counted, EnergyAccount, type EnergyParts } from './energy.js';
import { executePrograms, type BlockTiming, type ExecuteOptions, type ProgramSource, type TimeSplit } from './execute.js';
import { sourceOfFolder, sourceOfSet } from './source.js';

/** The model and link parameters Table III's formulas take. */
export interface BlockDims {
  readonly b: number;
  readonly s: number;
  readonly h: number;
  readonly N: number;
  readonly alpha_s: number;
  readonly beta_bytes_per_s: number;
  readonly bytes_per_element: number;
}

export interface SimulationReport {
  readonly model: string;
  readonly target: string;
  readonly strategy: string;
  readonly dies: number;
  readonly grid: readonly [number, number];
  readonly latency_s: number;
  readonly energy_j: number;
  /** Exposed time of each engine class on the critical die (they sum to latency_s with idle). */
  readonly breakdown_s: TimeSplit;
  readonly energy_breakdown_j: EnergyParts;
  readonly nop_bytes: number;
  readonly dram_bytes: number;
  readonly sram_peak_bytes: { readonly activation: number; readonly weight: number };
  readonly sram_capacity_bytes: { readonly activation: number; readonly weight: number };
  readonly sram_ok: boolean;
  readonly minibatch: { readonly batch: number; readonly size: number; readonly count: number };
  readonly critical_die: readonly [number, number];
  readonly dims: BlockDims | null;
  readonly blocks: readonly (BlockTiming & { readonly dims: BlockDims | null })[];
  readonly instances: number;
  readonly events: number;
  /** Dies actually simulated: one per class of interchangeable dies (every die with symmetry off). */
  readonly dies_simulated: number;
  /** Loop iterations extrapolated from a repeating state instead of simulated (steady.ts). */
  readonly iterations_extrapolated: number;
}

export type SimulateOptions = CompileOptions & ExecuteOptions;

export function simulate(model: string | Module, opts: SimulateOptions): { report: SimulationReport; compilation: Compilation } {
  const compilation = compile(model, opts);
  return { report: simulateCompiled(compilation, opts), compilation };
}

export function simulateCompiled(c: Compilation, opts: ExecuteOptions = {}): SimulationReport {
  const set = programsOf(c.module);
  if (!set) throw error('GY9001', `simulation needs the schedule pass (ran: ${c.passes.map((p) => p.pass).join(', ') || 'none'})`);
  return simulateSet(set, c.target, modelDims(c.module, set, c.target), opts);
}

export function simulateSet(set: ProgramSet, target: Target, dims: BlockDims | null, opts: ExecuteOptions = {}): SimulationReport {
  const meta = { model: set.model, strategy: set.strategy, grid: [set.grid.rows, set.grid.cols] as const, minibatch: set.minibatch };
  return simulateSource(sourceOfSet(set), meta, target, dims, opts);
}

/**
 * Simulate the programs of a folder written by `gyges compile -o` (read one die at a time):
 * the simulator sees exactly the files. The folder does not record the model's dimensions,
 * so its blocks carry no `dims`.
 */
export function simulateFolder(dir: string, target: Target, opts: ExecuteOptions = {}): SimulationReport {
  const folder = sourceOfFolder(dir);
  if (folder.targetName !== target.name) throw error('GY9001', `the programs in '${dir}' were compiled for ${folder.targetName}; --hw names ${target.name}`);
  return simulateSource(folder.source, folder, target, null, opts);
}

interface RunMeta {
  readonly model: string;
  readonly strategy: string;
  readonly grid: readonly [number, number];
  readonly minibatch: { readonly batch: number; readonly size: number; readonly count: number };
}

function simulateSource(base: ProgramSource, meta: RunMeta, target: Target, dims: BlockDims | null, opts: ExecuteOptions): SimulationReport {
  const energy = new EnergyAccount(target);
  const peak = { activation: 0, weight: 0 };
  const seen = (p: Program) => {
    peak.activation = Math.max(peak.activation, p.header.sram.activationPeak);
    peak.weight = Math.max(peak.weight, p.header.sram.weightPeak);
  };
  let source: ProgramSource;
  const plain = base.shared;
  if (plain && opts.symmetry !== false) {
    // Every die runs die 0's program but for the varying instructions (the same buffers, so
    // the same peaks): energy is D times die 0's, corrected by each die's varying part, read
    // once per class of dies with the same numbers.
    const first = base.program(0);
    seen(first);
    energy.addShared(counted(first), (d) => plain.varying(d), plain.varyingClasses());
    source = { dies: base.dies, program: (d) => (d === 0 ? first : base.program(d)), shared: plain };
  } else {
    source = {
      dies: base.dies,
      program: (d: number): Program => {
        const p = base.program(d);
        energy.add(p, d);
        seen(p);
        return p;
      },
    };
  }
  const r = executePrograms(source, target, opts);
  const e = energy.total(r.latency_s);
  const cap = bufferCapacity(target);
  return {
    model: meta.model,
    target: target.name,
    strategy: meta.strategy,
    dies: meta.grid[0] * meta.grid[1],
    grid: [meta.grid[0], meta.grid[1]],
    latency_s: r.latency_s,
    energy_j: e.energy_j,
    breakdown_s: r.breakdown_s,
    energy_breakdown_j: e.parts,
    nop_bytes: energy.nopBytes,
    dram_bytes: energy.dramBytes,
    sram_peak_bytes: peak,
    sram_capacity_bytes: cap,
    sram_ok: peak.activation <= cap.activation && peak.weight <= cap.weight,
    minibatch: { batch: meta.minibatch.batch, size: meta.minibatch.size, count: meta.minibatch.count },
    critical_die: [r.critical_die[0], r.critical_die[1]],
    dims,
    blocks: r.blocks.map((b) => ({ ...b, dims: b.layer === null ? null : dims })),
    instances: r.instances,
    events: r.events,
    dies_simulated: r.classes,
    iterations_extrapolated: r.iterations_extrapolated,
  };
}

/**
 * b, s and h from the first forward attention core (its result is [b, s, h], h = heads × head
 * size), N and the link parameters from the target; null for a model without attention.
 */
export function modelDims(m: Module, set: ProgramSet, t: Target): BlockDims | null {
  const att = m.ops().find((o) => o.kind === 'attention');
  if (!att) return null;
  const shape = att.results[0]!.type.shape;
  if (shape.length !== 3) return null;
  return {
    b: set.minibatch.batch,
    s: shape[1]!,
    h: shape[2]!,
    N: set.grid.rows * set.grid.cols,
    alpha_s: t.package.link.alphaS,
    beta_bytes_per_s: t.package.link.bandwidthBytesPerS,
    bytes_per_element: precisionBytes(t.die.precision),
  };
}
