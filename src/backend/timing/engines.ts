// The per-die engines of the program executor (execute.ts) and the network-on-package they
// share. Every number comes from the Target:
//   compute  `gemm`: cycles = MACs / (die.macs × u), time = cycles / clockHz. The utilisation u
//            models a PE's MAC array as a square of side s = √(macs / pes): each of m, n and k
//            smaller than s fills only that fraction of its side, so u = Π min(1, x / s) over
//            x ∈ {m, n, k} (a 1-row product on a 16-wide array uses 1/16 of it).
//            `vector`: elements / vectorLanes cycles.
//   dram     `dram.read` / `dram.write`: bytes / (the package's total DRAM bandwidth / dies): a
//            fair share per die. Contention on individual channels is a later refinement.
//   nop      collectives, one ring step at a time, on the links of NopFabric below.
// NopFabric: one Network (network.ts: α, β, FIFO contention) with three planes of links, one per
// group shape, so each plane's link between two dies is its own FIFO:
//   'c'  (a row of dies) and 'r' (a column): the bypass ring of §III-A b. A ring step's latency
//        is α × bypassLatencyFactor when the ring has more than two dies (closing the ring
//        needs the bypass channel); a ring of two dies is plain neighbours, latency α.
//   'rc' (every die): a snake ring over neighbours, latency α per step (the closing link of
//        the snake is modelled as one α link too).
// Bandwidth is the link's β on every plane. Traffic of different planes sharing a physical
// link does not contend (a simplification).

import { assert, assertNever } from '../../diagnostics/diagnostic.js';
import type { GemmInstr, Instruction, LoopInstr, Range } from '../program.js';
import type { DieSpec, Target } from '../../target/target.js';
import type { EventQueue } from './events.js';
import { Network, type LinkId, type LinkStats } from './network.js';

export type EngineClass = 'compute' | 'dram' | 'nop';
export const ENGINE_CLASSES: readonly EngineClass[] = ['compute', 'dram', 'nop'];

/** The engine that serves an instruction (loops are walked, never served). */
export function engineOf(ins: Exclude<Instruction, LoopInstr>): EngineClass {
  switch (ins.kind) {
    case 'gemm':
    case 'vector':
      return 'compute';
    case 'dram.read':
    case 'dram.write':
      return 'dram';
    case 'collective':
      return 'nop';
    default:
      return assertNever(ins);
  }
}

/** Side of one PE's square MAC array. */
export function peArraySide(die: DieSpec): number {
  return Math.sqrt(die.macs / die.pes);
}

/** Fraction of the MAC array a product of m × k by k × n keeps busy. */
export function gemmUtilisation(g: Pick<GemmInstr, 'm' | 'n' | 'k'>, die: DieSpec): number {
  const side = peArraySide(die);
  return [g.m, g.n, g.k].reduce((u, x) => u * Math.min(1, x / side), 1);
}

export function gemmSeconds(g: Pick<GemmInstr, 'm' | 'n' | 'k' | 'macs'>, die: DieSpec): number {
  if (g.macs === 0) return 0;
  return g.macs / (die.macs * gemmUtilisation(g, die)) / die.clockHz;
}

export function vectorSeconds(elements: number, die: DieSpec): number {
  return elements / die.vectorLanes / die.clockHz;
}

/** A die's fair share of the package's DRAM bandwidth. */
export function dramBandwidthPerDie(t: Target): number {
  return t.memory.totalBandwidthBytesPerS / t.package.dies;
}

export function dramSeconds(bytes: number, t: Target): number {
  return bytes / dramBandwidthPerDie(t);
}

export type Plane = 'r' | 'c' | 'rc';
const PLANES: readonly Plane[] = ['r', 'c', 'rc'];

/** The link plane of a collective's grid axes. */
export function planeOf(axis: string): Plane {
  const p = PLANES.find((x) => x === axis);
  assert(p !== undefined, `collective on unknown grid axes '${axis}'`);
  return p;
}

/** The NoP of a package: per-plane links between dies, created when first used. */
export class NopFabric {
  private readonly net: Network;

  constructor(
    private readonly target: Target,
    engine: EventQueue,
  ) {
    this.net = new Network(engine);
  }

  /** Send `bytes` from die `from` to die `to` on `plane`; `onArrive` runs when it has arrived. */
  send(plane: Plane, from: Range, to: Range, bytes: number, onArrive: (at: number) => void): void {
    this.net.send([this.link(plane, from, to)], bytes, onArrive);
  }

  stats(): LinkStats[] {
    return this.net.stats();
  }

  /** Latency of one step on `plane`. */
  alphaOf(plane: Plane): number {
    const { rows, cols, link } = this.target.package;
    switch (plane) {
      case 'r':
        return rows > 2 ? link.alphaS * link.bypassLatencyFactor : link.alphaS;
      case 'c':
        return cols > 2 ? link.alphaS * link.bypassLatencyFactor : link.alphaS;
      case 'rc':
        return link.alphaS;
      default:
        return assertNever(plane);
    }
  }

  private link(plane: Plane, from: Range, to: Range): LinkId {
    const [a, b] = [this.node(plane, from), this.node(plane, to)];
    const known = this.net.linkBetween(a, b);
    if (known !== undefined) return known;
    return this.net.addLink({ from: a, to: b, alphaS: this.alphaOf(plane), bandwidthBytesPerS: this.target.package.link.bandwidthBytesPerS });
  }

  private node(plane: Plane, d: Range): number {
    const { rows, cols, dies } = this.target.package;
    assert(d[0] >= 0 && d[0] < rows && d[1] >= 0 && d[1] < cols, `no die [${d[0]}, ${d[1]}] in a ${rows}x${cols} package`);
    return PLANES.indexOf(plane) * dies + d[0] * cols + d[1];
  }
}
