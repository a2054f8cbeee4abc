// Where an iteration's energy and link traffic go, for reports: the energy of each Transformer
// block's instructions on every die, and the bytes each die puts on each of its links. Both
// are walks of the programs (loops counted as energy.ts and the executor count them), so they
// need no second simulation; the executor's own accounting is what they mirror:
//   - a block is the executor's (layer, accounted phase, block) key (execute.ts), so these
//     rows line up with a SimulationReport's `blocks`; their energies sum to its dynamic parts;
//   - a collective of a group of two or more dies moves its `link_bytes` over the link its
//     die drives towards the next member of its ring, one link per grid axis, named as the
//     trace's link tracks are (execute.ts linkName). A link transmits bytes / bandwidth
//     seconds (the executor's ring steps: link latency is paid between transmissions).
// With a compile's program set, die 0's program and every die's varying instructions suffice
// (as in simulate.ts): collectives carry the same numbers on every die, and their rings say
// how many members each die's group has.

import type { Target } from '../../target/target.js';
import { forEachInstr, type Instruction, type Phase, type Range } from '../program.js';
import { counted, EnergyAccount, type CountedInstrs, type EnergyParts } from './energy.js';
import { accountedPhase, linkName, type ProgramSource } from './execute.js';

export interface BlockEnergy {
  readonly layer: number | null;
  readonly phase: Phase;
  readonly block: string;
  /** Dynamic energy of the block's instructions on all dies (static power is 0 here: it goes with time). */
  readonly energy_j: EnergyParts;
}

/** The executor's block key of an instruction. */
function blockKey(ins: Instruction): { key: string; layer: number | null; phase: Phase; block: string } {
  const phase = accountedPhase(ins);
  const block = ins.block ?? 'other';
  return { key: `${ins.layer}|${phase}|${block}`, layer: ins.layer, phase, block };
}

/**
 * Energy per block, in the order blocks first appear in die 0's program (loops open their
 * block, as in the executor, so the rows are exactly the report's blocks). Each die's
 * instructions are costed on its own die type (energy.ts).
 */
export function blockEnergy(source: ProgramSource, target: Target): BlockEnergy[] {
  const blocks = new Map<string, { layer: number | null; phase: Phase; block: string }>();
  const split = (list: CountedInstrs): Map<string, { ins: Instruction; times: number }[]> => {
    const out = new Map<string, { ins: Instruction; times: number }[]>();
    for (const x of list) {
      const k = blockKey(x.ins);
      if (!blocks.has(k.key)) blocks.set(k.key, { layer: k.layer, phase: k.phase, block: k.block });
      let group = out.get(k.key);
      if (group === undefined) out.set(k.key, (group = []));
      group.push(x);
    }
    return out;
  };
  const D = source.dies.length;
  const accounts = new Map<string, EnergyAccount>();
  const accountOf = (key: string) => {
    let a = accounts.get(key);
    if (a === undefined) accounts.set(key, (a = new EnergyAccount(target)));
    return a;
  };
  const first = split(counted(source.program(0)));
  if (source.shared) {
    const shared = source.shared;
    const classes = shared.varyingClasses();
    const varying = new Map([0, ...classes.reps].map((d) => [d, split(shared.varying(d))]));
    for (const key of blocks.keys()) accountOf(key).addShared(first.get(key) ?? [], (d) => varying.get(d)!.get(key) ?? [], classes);
  } else {
    for (let d = 0; d < D; d++) {
      const mine = d === 0 ? first : split(counted(source.program(d)));
      for (const [key, list] of mine) accountOf(key).addInstrs(list, d);
    }
  }
  return [...blocks].map(([key, { layer, phase, block }]) => ({ layer, phase, block, energy_j: (accounts.get(key) ?? new EnergyAccount(target)).total(0).parts }));
}

export interface LinkLoad {
  /** The die that drives the link. */
  readonly die: Range;
  /** The link, as the trace names its track: `east (row ring)`, `south (column ring)`, `ring over all dies`. */
  readonly link: string;
  /** Bytes sent over it per training iteration. */
  readonly bytes: number;
  /** Seconds it spends transmitting them. */
  readonly busy_s: number;
}

/** Every die's links (row-major dies; links by name), each with the bytes it carries per iteration. */
export function linkLoads(source: ProgramSource, target: Target): LinkLoad[] {
  const D = source.dies.length;
  const perDie: Map<string, number>[] = Array.from({ length: D }, () => new Map());
  const names = new Set<string>();
  const count = (d: number, ins: Instruction, times: number, members: number) => {
    if (ins.kind !== 'collective' || members < 2 || ins.steps === 0) return;
    const name = linkName(ins.axis);
    names.add(name);
    perDie[d]!.set(name, (perDie[d]!.get(name) ?? 0) + ins.linkBytes * times);
  };
  if (source.shared) {
    const { lists, listOf, grouping, groupings: G } = source.shared.rings();
    const colls = counted(source.program(0)).filter((x) => x.ins.kind === 'collective');
    // Collectives whose groups differ in size have their own numbers per class of dies.
    const { classOf, reps } = source.shared.varyingClasses();
    const own = Array.from(reps, (d) => new Map(source.shared!.varying(d).filter((x) => x.ins.kind === 'collective').map((x) => [x.ins.id, x.ins])));
    for (let d = 0; d < D; d++) colls.forEach(({ ins, times }, k) => count(d, own[classOf[d]!]!.get(ins.id) ?? ins, times, lists[listOf[d * G + grouping[k]!]!]!.length));
  } else {
    for (let d = 0; d < D; d++) {
      forEachInstr(source.program(d).instructions, (ins, times) => {
        if (ins.kind === 'collective') count(d, ins, times, ins.group.length);
      });
    }
  }
  const bandwidth = target.package.link.bandwidthBytesPerS;
  const sorted = [...names].sort();
  return source.dies.flatMap((die, d) =>
    sorted.map((link) => {
      const bytes = perDie[d]!.get(link) ?? 0;
      return { die, link, bytes, busy_s: bytes / bandwidth };
    }),
  );
}
