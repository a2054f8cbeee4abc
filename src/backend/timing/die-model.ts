// The cost model of one compute die: what an instruction costs in time and energy on it. The
// executor (execute.ts) and the energy account (energy.ts) only ever ask this interface, so a
// different accelerator is a different implementation of `DieCostModel`, not an edit to the
// simulator. `targetDieModel` reads every number from the target's die description
// (targets/dies/*.yaml, where each default cites its source).
//
// The default model:
//   gemm    cycles = MACs / (macs × u). The utilisation u models one PE's MAC array as a
//           square of side s = √(macs / pes): each of m, n and k smaller than s fills only that
//           fraction of its side, so u = Π min(1, x / s) over x ∈ {m, n, k} (a one-row
//           product on a 16-wide array uses 1/16 of it).
//   vector  elements / vectorLanes cycles.
//   energy  MACs × mac_pj; vector FLOPs × vector_op_pj; SRAM bytes read and written (below)
//           × sram_read/write_pj_per_byte. SRAM traffic is each operand read once and each
//           result written once per instruction (an accumulating result is also read): the
//           least traffic a schedule can have, since the programs do not say how a GEMM is
//           blocked inside the PE array.

import type { DieSpec, Precision } from '../../target/target.js';
import type { GemmInstr } from '../program.js';
import { assertNever } from '../../diagnostics/diagnostic.js';

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
export function peArraySide(die: DieSpec): number {
  return Math.sqrt(die.macs / die.pes);
}

/** Fraction of the MAC array a product of m × k by k × n keeps busy. */
export function gemmUtilisation(g: Pick<GemmWork, 'm' | 'n' | 'k'>, die: DieSpec): number {
  const side = peArraySide(die);
  return [g.m, g.n, g.k].reduce((u, x) => u * Math.min(1, x / side), 1);
}

const PJ = 1e-12;

/** The cost model of a die described by the target (DieSpec). */
export function targetDieModel(die: DieSpec): DieCostModel {
  const e = precisionBytes(die.precision);
  return {
    name: die.name,
    elementBytes: e,
    gemmSeconds: (g) => (g.macs === 0 ? 0 : g.macs / (die.macs * gemmUtilisation(g, die)) / die.clockHz),
    vectorSeconds: (v) => v.elements / die.vectorLanes / die.clockHz,
    gemmEnergy: (g) => {
      const out = g.batch * g.m * g.n * e;
      return {
        computeJ: g.macs * die.energy.macPj * PJ,
        sramReadBytes: g.batch * (g.m * g.k + g.k * g.n) * e + (g.accumulate ? out : 0),
        sramWriteBytes: out,
      };
    },
    vectorEnergy: (v) => ({
      computeJ: v.flops * die.energy.vectorOpPj * PJ,
      sramReadBytes: v.elements * e * (v.inputs + (v.accumulate ? 1 : 0)),
      sramWriteBytes: v.elements * e * v.outputs,
    }),
    sramReadJPerByte: die.energy.sramReadPjPerByte * PJ,
    sramWriteJPerByte: die.energy.sramWritePjPerByte * PJ,
    staticW: die.energy.staticW,
  };
}
