// One measured point of an experiment: compile a workload for a package and strategy, run it on
// the timing backend, and keep what the paper plots — the latency and energy of one training
// iteration of one Transformer layer (§VI-A: "the latency and energy metrics ... refer to the
// latency and energy consumed per iteration of each layer").
//
// How a layer is isolated: the model is compiled with three layers and the middle one counted: its
// latency is the wall time the simulator attributes to that layer's blocks (`exposed`, which
// splits a die's finish time among blocks), its energy the energy of that layer's instructions
// on every die. The other layers, embedding, LM head and loss are simulated, not counted. The
// vocabulary is padded up to a multiple of the die count, as Megatron-LM pads its vocabulary to
// a multiple of the tensor-parallel size, so the head splits evenly; this only touches the
// head, which is not counted, but it keeps every die alike, which the simulator exploits.

import { compile, type Compilation } from '../compile.js';
import { error } from '../diagnostics/diagnostic.js';
import { loadModel } from '../frontend/load.js';
import { counted, EnergyAccount, type CountedInstrs, type EnergyParts } from '../backend/timing/energy.js';
import type { TimeSplit } from '../backend/timing/execute.js';
import { simulateCompiled, type SimulationReport } from '../backend/timing/simulate.js';
import { sourceOfSet } from '../backend/timing/source.js';
import { programsOf, type ProgramSet } from '../passes/schedule/index.js';
import type { Strategy } from '../passes/pass.js';
import { loadTarget } from '../target/load.js';
import type { Target } from '../target/target.js';

/** A strategy of Fig. 8: the four of §V-A, and hecaton without §III-B's scheduling. */
export type Variant = Strategy | 'hecaton-no-overlap-fusion';

/** The ablation's pipeline: no layer fusion, no DRAM/compute overlap (§III-B a, b). */
export const ABLATION_PIPELINE = 'qkv,train,fuse{fusion=none},minibatch,tile2d,collectives,schedule{overlap=false}';

export interface Point {
  /** A model file, e.g. models/bert-large.gy. */
  readonly model: string;
  /** A preset name or a target (fig10 changes α on a preset). */
  readonly hw: string | Target;
  readonly variant: Variant;
  /** DSL constants besides `layers` and `vocab` (e.g. a smaller batch in tests). */
  readonly set?: Readonly<Record<string, number>>;
}

export interface Measurement {
  readonly dies: number;
  readonly grid: readonly [number, number];
  /** One training iteration of one layer. */
  readonly latency_s: number;
  readonly energy_j: number;
  /** Exposed time of the layer's instructions; sums to latency_s. */
  readonly breakdown_s: TimeSplit;
  readonly energy_breakdown_j: EnergyParts;
  /** Time the NoP engine spends on the layer's collectives, and of it, link latency. */
  readonly nop_busy_s: number;
  readonly nop_link_latency_s: number;
  readonly sram_peak_bytes: { readonly activation: number; readonly weight: number };
  readonly sram_ok: boolean;
  readonly minibatch: { readonly size: number; readonly count: number };
  /** The whole one-layer model as simulated (embedding and head included). */
  readonly report: SimulationReport;
  /** The compiled model the point ran. */
  readonly compiled: Compilation;
}

/** The layer measured (the only one compiled). */
const LAYER = 1;
/** Layers compiled: the measured one sits between two others, as in a deep model. */
const LAYERS = 3;

export function measure(p: Point): Measurement {
  const target = typeof p.hw === 'string' ? loadTarget(p.hw) : p.hw;
  const dies = target.package.dies;
  const vocab = vocabularyOf(p.model);
  const set = { ...(p.set ?? {}), layers: LAYERS, ...(vocab === null ? {} : { vocab: Math.ceil(vocab / dies) * dies }) };
  const ablation = p.variant === 'hecaton-no-overlap-fusion';
  const strategy: Strategy = ablation ? 'hecaton' : (p.variant as Strategy);
  const c = compile(p.model, { hw: target, strategy, set, ...(ablation ? { pipeline: ABLATION_PIPELINE } : {}) });
  const report = simulateCompiled(c);
  const mine = report.blocks.filter((b) => b.layer === LAYER);
  if (mine.length === 0) throw error('GY9001', `experiment: '${p.model}' has no layer ${LAYER} to measure`);
  const sum = (f: (b: (typeof mine)[number]) => number) => mine.reduce((s, b) => s + f(b), 0);
  const breakdown_s = { compute: sum((b) => b.exposed.compute), nop: sum((b) => b.exposed.nop), dram: sum((b) => b.exposed.dram), idle: sum((b) => b.exposed.idle) };
  const latency_s = breakdown_s.compute + breakdown_s.nop + breakdown_s.dram + breakdown_s.idle;
  const energy = layerEnergy(programsOf(c.module)!, target, latency_s);
  return {
    dies,
    grid: report.grid,
    latency_s,
    energy_j: energy.energy_j,
    breakdown_s,
    energy_breakdown_j: energy.parts,
    nop_busy_s: sum((b) => b.nop_s + b.nop_internal_s),
    nop_link_latency_s: sum((b) => b.nop_latency_s),
    sram_peak_bytes: report.sram_peak_bytes,
    sram_ok: report.sram_ok,
    minibatch: { size: report.minibatch.size, count: report.minibatch.count },
    report,
    compiled: c,
  };
}

/** The energy of the measured layer's instructions on every die, with static power over its latency. */
function layerEnergy(set: ProgramSet, target: Target, latencyS: number): { energy_j: number; parts: EnergyParts } {
  const account = new EnergyAccount(target);
  const source = sourceOfSet(set);
  const D = source.dies.length;
  const inLayer = (list: CountedInstrs) => list.filter((x) => x.ins.layer === LAYER);
  const all = (d: number) => inLayer(counted(source.program(d)));
  if (source.shared) {
    // As the simulator counts it: die 0's instructions on every die, corrected by each die's varying ones.
    const shared = source.shared;
    account.addShared(all(0), (d) => inLayer(shared.varying(d)), shared.varyingClasses());
  } else {
    for (let d = 0; d < D; d++) account.addInstrs(all(d), d);
  }
  return account.total(latencyS);
}

/** The rows of the model's token embedding (its vocabulary), or null when it has none. */
function vocabularyOf(model: string): number | null {
  const m = loadModel(model, { set: { layers: 1 } });
  const emb = m.ops().find((op) => op.kind === 'embedding');
  return emb ? emb.operands[1]!.type.shape[0]! : null;
}

/** A preset with another link latency α (fig10). */
export function withAlpha(t: Target, alphaS: number): Target {
  return { ...t, name: `${t.name} (alpha ${alphaS * 1e9} ns)`, package: { ...t.package, link: { ...t.package.link, alphaS } } };
}
