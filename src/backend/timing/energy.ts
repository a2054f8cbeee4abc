// Energy of one training iteration, from the programs (what each die does, loops counted) and
// the latency (static power). Four dynamic parts, each from a cited default of the target:
//   compute  MACs × mac_pj and vector FLOPs × vector_op_pj (die model, die-model.ts);
//   sram     bytes read and written in the die's buffers × sram_read/write_pj_per_byte: the
//            compute instructions' operands and results (die model), DRAM transfers (a read
//            fills a buffer, a write drains one) and collectives (a die reads what it sends and
//            writes what it receives; ring collectives receive what they send);
//   d2d      bits a die sends × the package link's pJ/bit. Each sent byte is counted on one
//            link: a bypass-ring hop and an Optimus broadcast forwarded through routers are
//            counted once, not per die pitch crossed, since UCIe quotes energy per link;
//   dram     bits read and written × the memory's pJ/bit;
// plus static power × dies × latency.

import type { Target } from '../../target/target.js';
import { forEachInstr, type Instruction, type Program } from '../program.js';
import type { DieCostModel } from './die-model.js';
import { vectorWork } from './execute.js';

const PJ = 1e-12;

export interface EnergyParts {
  compute: number;
  sram: number;
  d2d: number;
  dram: number;
  static: number;
}

/** Sums energy and traffic over the dies' programs, one program at a time. */
export class EnergyAccount {
  readonly parts: EnergyParts = { compute: 0, sram: 0, d2d: 0, dram: 0, static: 0 };
  /** Bytes all dies send on the NoP and move to and from DRAM, per iteration. */
  nopBytes = 0;
  dramBytes = 0;
  private dies = 0;

  constructor(
    private readonly target: Target,
    private readonly model: DieCostModel,
  ) {}

  /** Adds a die's program; `copies`: as many dies running it. */
  add(p: Program, copies = 1): void {
    this.dies += copies;
    forEachInstr(p.instructions, (ins, times) => this.instr(ins, times * copies));
  }

  /**
   * Adds instructions run `times` per iteration each, scaled by `sign`: a die that runs die
   * 0's program but for some instructions counts as die 0 plus those, minus die 0's.
   */
  adjust(list: readonly { readonly ins: Instruction; readonly times: number }[], sign: 1 | -1, copies = 1): void {
    for (const { ins, times } of list) this.instr(ins, times * sign * copies);
  }

  private instr(ins: Instruction, times: number): void {
    const m = this.model;
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
    const parts = { ...this.parts, static: this.model.staticW * this.dies * latencyS };
    return { energy_j: parts.compute + parts.sram + parts.d2d + parts.dram + parts.static, parts };
  }
}
