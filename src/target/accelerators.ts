// Accelerators: what one compute die's work costs in time and energy. The executor
// (backend/timing/execute.ts), the energy account (energy.ts) and the tiler's load balancing
// (a heterogeneous package splits work in proportion to each die's throughput) only ever ask a
// `DieCostModel`, so a new accelerator is a new entry in ACCELERATORS (a kind a die description
// names with `model:`), or a user's plugin file (plugin.ts) whose `gemm`/`vector` functions
// replace the kind's — never an edit to the simulator.
//
// Every number a model uses comes from the die description (targets/dies/*.yaml, where each
// default cites its source). The kinds:
//
//   pe-array  (the Hecaton die, §III-A a) `pes` processing elements, each a square MAC array of
//             side s = √(macs / pes) fed output-stationary. cycles = MACs / (macs × u), where
//             each of m, n and k smaller than s fills only that fraction of its side, so
//             u = Π min(1, x / s) over x ∈ {m, n, k} (a one-row product on a 16-wide array
//             uses 1/16 of it).
//   systolic  `pes` weight-stationary systolic arrays of side s = √(macs / pes), as a TPU's
//             matrix unit (Jouppi et al., ISCA 2017, §2; CACM 2020): the k × n weight is cut
//             into ⌈k/s⌉·⌈n/s⌉ tiles per product; an array holds one tile while the m rows of
//             the input stream through it, one row per cycle, and loads the next tile (s
//             cycles) behind them. So a tile costs max(m, s) cycles, the arrays share the tiles,
//             and filling and draining the pipeline adds 2s once per instruction:
//               cycles = ⌈batch·⌈k/s⌉·⌈n/s⌉ / pes⌉ · max(m, s) + 2s.
//             Ragged k and n waste whole tiles; a short m wastes the load time — unlike the
//             pe-array, whose loss is smooth in every dimension. The input is read from SRAM
//             once per column tile (⌈n/s⌉ times), the weight once.
//
// Both kinds: vector ops take elements / vector_lanes cycles; energy is MACs × mac_pj, vector
// FLOPs × vector_op_pj, and SRAM bytes read and written × sram_read/write_pj_per_byte, counting
// each operand read and each result written as the kind says (an accumulating result is also
// read): the least traffic a schedule can have, since the programs do not say how a GEMM is
// blocked inside the array.

import type { GemmInstr } from '../backend/program.js';
import { assertNever, error } from '../diagnostics/diagnostic.js';
import type { DieSpec, Precision } from './target.js';

/** What a GEMM instruction asks of the die (the program's own fields). */
export type GemmWork = Pick<GemmInstr, 'batch' | 'm' | 'n' | 'k' | 'macs' | 'accumulate'>;

export interface VectorWork {
  readonly op: string;
  readonly elements: number;
  readonly flops: number;
  /** Buffers read and written (each `elements` long). */
  readonly inputs: number;
  readonly outputs: number;
  readonly accumulate: boolean;
}

export interface ComputeEnergy {
  /** MACs and vector operations. */
  readonly computeJ: number;
  readonly sramReadBytes: number;
  readonly sramWriteBytes: number;
}

export interface DieCostModel {
  readonly name: string;
  /** Bytes of one element at the die's precision. */
  readonly elementBytes: number;
  gemmSeconds(g: GemmWork): number;
  vectorSeconds(v: VectorWork): number;
  gemmEnergy(g: GemmWork): ComputeEnergy;
  vectorEnergy(v: VectorWork): ComputeEnergy;
  readonly sramReadJPerByte: number;
  readonly sramWriteJPerByte: number;
  readonly staticW: number;
}

/** A registered kind of die: how a die description of this kind becomes a cost model. */
export interface Accelerator {
  /** The name a die description gives as `model:`. */
  readonly kind: string;
  readonly summary: string;
  /** Cycles and SRAM traffic of one GEMM instruction. */
  gemm(g: GemmWork, die: DieSpec): { readonly cycles: number; readonly sramReadElems: number; readonly sramWriteElems: number };
}

/** Cycles, energy and SRAM traffic a user's plugin may give for one instruction (plugin.ts). */
export interface CustomCost {
  readonly cycles: number;
  readonly energy_pj?: number;
  readonly sram_read_bytes?: number;
  readonly sram_write_bytes?: number;
}

/** A plugin's cost functions, already checked to return sane numbers (plugin.ts). */
export interface CustomCosts {
  readonly gemm?: (g: GemmWork) => CustomCost;
  readonly vector?: (v: VectorWork) => CustomCost;
}

export function precisionBytes(p: Precision): number {
  switch (p) {
    case 'fp32':
      return 4;
    case 'bf16':
    case 'fp16':
      return 2;
    default:
      return assertNever(p);
  }
}

/** Side of one PE's square MAC array. */
export function peArraySide(die: Pick<DieSpec, 'macs' | 'pes'>): number {
  return Math.sqrt(die.macs / die.pes);
}

/** Fraction of a pe-array die's MAC array a product of m × k by k × n keeps busy. */
export function gemmUtilisation(g: Pick<GemmWork, 'm' | 'n' | 'k'>, die: Pick<DieSpec, 'macs' | 'pes'>): number {
  const side = peArraySide(die);
  return [g.m, g.n, g.k].reduce((u, x) => u * Math.min(1, x / side), 1);
}

const peArray: Accelerator = {
  kind: 'pe-array',
  summary: 'output-stationary PEs of square MAC arrays; utilisation falls smoothly with m, n or k below the array side (Hecaton §III-A a)',
  gemm: (g, die) => {
    const out = g.batch * g.m * g.n;
    return {
      cycles: g.macs === 0 ? 0 : g.macs / (die.macs * gemmUtilisation(g, die)),
      sramReadElems: g.batch * (g.m * g.k + g.k * g.n) + (g.accumulate ? out : 0),
      sramWriteElems: out,
    };
  },
};

const systolic: Accelerator = {
  kind: 'systolic',
  summary: 'weight-stationary systolic arrays; whole s×s weight tiles, a short m wastes the tile load (TPU matrix unit)',
  gemm: (g, die) => {
    const out = g.batch * g.m * g.n;
    if (g.macs === 0) return { cycles: 0, sramReadElems: 0, sramWriteElems: 0 };
    const s = peArraySide(die);
    const colTiles = Math.ceil(g.n / s);
    const tiles = g.batch * Math.ceil(g.k / s) * colTiles;
    return {
      cycles: Math.ceil(tiles / die.pes) * Math.max(g.m, s) + 2 * s,
      sramReadElems: g.batch * (g.m * g.k * colTiles + g.k * g.n) + (g.accumulate ? out : 0),
      sramWriteElems: out,
    };
  },
};

/** Every kind of die the compiler knows; a die description names one with `model:`. */
export const ACCELERATORS: readonly Accelerator[] = [peArray, systolic];

export const DEFAULT_ACCELERATOR = peArray.kind;

export function acceleratorKinds(): string[] {
  return ACCELERATORS.map((a) => a.kind);
}

function acceleratorOf(die: DieSpec): Accelerator {
  const a = ACCELERATORS.find((x) => x.kind === die.model);
  if (!a) throw error('GY4002', `die '${die.name}': unknown model '${die.model}' (known: ${acceleratorKinds().join(', ')})`);
  return a;
}

const PJ = 1e-12;

/** The cost model of a die: its kind's formulas, or its plugin's functions where it gives them. */
export function dieCostModel(die: DieSpec): DieCostModel {
  const kind = acceleratorOf(die);
  const e = precisionBytes(die.precision);
  const custom = die.custom;
  const seconds = (cycles: number) => cycles / die.clockHz;
  const builtinGemm = (g: GemmWork) => kind.gemm(g, die);
  const builtinVector = (v: VectorWork) => ({
    cycles: v.elements / die.vectorLanes,
    energy_pj: v.flops * die.energy.vectorOpPj,
    sram_read_bytes: v.elements * e * (v.inputs + (v.accumulate ? 1 : 0)),
    sram_write_bytes: v.elements * e * v.outputs,
  });
  const gemmCost = (g: GemmWork): Required<CustomCost> => {
    const b = builtinGemm(g);
    const c = custom?.gemm?.(g);
    return {
      cycles: c ? c.cycles : b.cycles,
      energy_pj: c?.energy_pj ?? g.macs * die.energy.macPj,
      sram_read_bytes: c?.sram_read_bytes ?? b.sramReadElems * e,
      sram_write_bytes: c?.sram_write_bytes ?? b.sramWriteElems * e,
    };
  };
  const vectorCost = (v: VectorWork): Required<CustomCost> => {
    const b = builtinVector(v);
    const c = custom?.vector?.(v);
    return c ? { cycles: c.cycles, energy_pj: c.energy_pj ?? b.energy_pj, sram_read_bytes: c.sram_read_bytes ?? b.sram_read_bytes, sram_write_bytes: c.sram_write_bytes ?? b.sram_write_bytes } : b;
  };
  const energy = (c: Required<CustomCost>): ComputeEnergy => ({ computeJ: c.energy_pj * PJ, sramReadBytes: c.sram_read_bytes, sramWriteBytes: c.sram_write_bytes });
  return {
    name: die.name,
    elementBytes: e,
    gemmSeconds: custom?.gemm ? (g) => seconds(gemmCost(g).cycles) : (g) => seconds(builtinGemm(g).cycles),
    vectorSeconds: custom?.vector ? (v) => seconds(vectorCost(v).cycles) : (v) => seconds(v.elements / die.vectorLanes),
    gemmEnergy: (g) => energy(gemmCost(g)),
    vectorEnergy: (v) => energy(vectorCost(v)),
    sramReadJPerByte: die.energy.sramReadPjPerByte * PJ,
    sramWriteJPerByte: die.energy.sramWritePjPerByte * PJ,
    staticW: die.energy.staticW,
  };
}

/**
 * A die's sustained GEMM throughput in MAC/s, as its own cost model prices a large square
 * product (4096³, batch 1: large enough that every kind runs near its peak, as the big GEMMs
 * of a Transformer layer do). The tiler splits a heterogeneous package's work by it.
 */
export function dieThroughput(model: DieCostModel): number {
  const n = 4096;
  const macs = n * n * n;
  const s = model.gemmSeconds({ batch: 1, m: n, n, k: n, macs, accumulate: false });
  if (!(s > 0) || !Number.isFinite(s)) throw error('GY4001', `die '${model.name}': a ${n}x${n}x${n} GEMM must take a positive, finite time, got ${s} s`);
  return macs / s;
}
