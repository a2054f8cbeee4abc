// Energy of one training iteration, from the programs (what each die does, loops counted) and
// the latency (static power). Four dynamic parts, each from a cited default of the target:
//   compute  MACs × mac_pj and vector FLOPs × vector_op_pj (the die type's cost model,
//            src/target/accelerators.ts);
//   sram     bytes read and written in the die's buffers × sram_read/write_pj_per_byte: the
//            compute instructions' operands and results (die model), DRAM transfers (a read
//            fills a buffer, a write drains one) and collectives (a die reads what it sends and
//            writes what it receives; ring collectives receive what they send);
//   d2d      bits a die sends × the package link's pJ/bit. Each sent byte is counted on one
//            link: a bypass-ring hop and an Optimus broadcast forwarded through routers are
//            counted once, not per die pitch crossed, since UCIe quotes energy per link;
//   dram     bits read and written × the memory's pJ/bit;
// plus each die's static power × latency.

import type { Target } from '../../target/target.js';
import { forEachInstr, type Instruction, type Program, type VaryingClasses } from '../program.js';
import type { DieCostModel } from '../../target/accelerators.js';
import { dieModels, vectorWork } from './execute.js';

const PJ = 1e-12;

export interface EnergyParts {
  compute: number;
  sram: number;
  d2d: number;
  dram: number;
  static: number;
}

/** Instructions with how many times each runs per iteration. */
export type CountedInstrs = readonly { readonly ins: Instruction; readonly times: number }[];

/** A program's instructions with their counts. */
export function counted(p: Program): { ins: Instruction; times: number }[] {
  const out: { ins: Instruction; times: number }[] = [];
  forEachInstr(p.instructions, (ins, times) => out.push({ ins, times }));
  return out;
}

/** Sums energy and traffic over the dies' programs, one program at a time, each die on its own die type's model. */
export class EnergyAccount {
  readonly parts: EnergyParts = { compute: 0, sram: 0, d2d: 0, dram: 0, static: 0 };
  /** Bytes all dies send on the NoP and move to and from DRAM, per iteration. */
  nopBytes = 0;
  dramBytes = 0;
  /** Static power of the dies added, W. */
  private staticW = 0;
  private readonly modelOf: (d: number) => DieCostModel;

  constructor(private readonly target: Target) {
    this.modelOf = dieModels(target);
  }

  /** Adds die d's program. */
  add(p: Program, d: number): void {
    const model = this.modelOf(d);
    this.staticW += model.staticW;
    forEachInstr(p.instructions, (ins, times) => this.instr(ins, times, model));
  }

  /** Adds die d's instructions (a program or a part of one). */
  addInstrs(list: CountedInstrs, d: number): void {
    const model = this.modelOf(d);
    this.staticW += model.staticW;
    for (const { ins, times } of list) this.instr(ins, times, model);
  }

  /**
   * Adds every die of a package whose dies run die 0's instructions `first` but for their
   * varying ones: each die counts as die 0 minus die 0's varying instructions plus its own.
   */
  addShared(first: CountedInstrs, varying: (d: number) => CountedInstrs, classes: VaryingClasses): void {
    this.addSharedBase(first, varying(0), classes.classOf.length);
    classes.reps.forEach((d, c) => this.addVarying(varying(d), d, classes.counts[c]!));
  }

  /**
   * The shared part of addShared: die 0's instructions `first` on each of the D dies, less die
   * 0's varying ones `zero`; each die's own varying instructions follow with addVarying.
   */
  addSharedBase(first: CountedInstrs, zero: CountedInstrs, D: number): void {
    const copies = new Map<DieCostModel, number>();
    for (let d = 0; d < D; d++) {
      const model = this.modelOf(d);
      this.staticW += model.staticW;
      copies.set(model, (copies.get(model) ?? 0) + 1);
    }
    for (const [model, n] of copies) {
      for (const { ins, times } of first) this.instr(ins, times * n, model);
      for (const { ins, times } of zero) this.instr(ins, -times * n, model);
    }
  }

  /** Die d's varying instructions, after addSharedBase; `copies`: as many dies with the same numbers and type. */
  addVarying(list: CountedInstrs, d: number, copies = 1): void {
    const model = this.modelOf(d);
    for (const { ins, times } of list) this.instr(ins, times * copies, model);
  }

  private instr(ins: Instruction, times: number, m: DieCostModel): void {
    const link = this.target.package.link.energyPjPerBit * PJ * 8;
    const dram = this.target.memory.energyPjPerBit * PJ * 8;
    switch (ins.kind) {
      case 'gemm': {
        const e = m.gemmEnergy(ins);
        this.parts.compute += e.computeJ * times;
        this.parts.sram += (e.sramReadBytes * m.sramReadJPerByte + e.sramWriteBytes * m.sramWriteJPerByte) * times;
        break;
      }
      case 'vector': {
        const e = m.vectorEnergy(vectorWork(ins));
        this.parts.compute += e.computeJ * times;
        this.parts.sram += (e.sramReadBytes * m.sramReadJPerByte + e.sramWriteBytes * m.sramWriteJPerByte) * times;
        break;
      }
      case 'dram.read':
      case 'dram.write':
        this.dramBytes += ins.bytes * times;
        this.parts.dram += ins.bytes * dram * times;
        this.parts.sram += ins.bytes * (ins.kind === 'dram.read' ? m.sramWriteJPerByte : m.sramReadJPerByte) * times;
        break;
      case 'collective':
        this.nopBytes += ins.sentBytes * times;
        this.parts.d2d += ins.sentBytes * link * times;
        this.parts.sram += ins.sentBytes * (m.sramReadJPerByte + m.sramWriteJPerByte) * times;
        break;
      case 'loop':
        break;
    }
  }

  /** The parts with static power over `latencyS`, and their sum. */
  total(latencyS: number): { energy_j: number; parts: EnergyParts } {
    const parts = { ...this.parts, static: this.staticW * latencyS };
    return { energy_j: parts.compute + parts.sram + parts.d2d + parts.dram + parts.static, parts };
  }
}
