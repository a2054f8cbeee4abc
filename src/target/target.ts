// The hardware target the compiler and the backends read: a die type, a package (an R×C grid
// of dies joined by D2D links) and a memory system, normalised to SI units (Hz, bytes, bytes
// per second, seconds, watts; energies stay in pJ as named). Passes take every hardware number
// from here, never from constants; src/target/load.ts builds it from validated data files.

import { bytes } from '../util/format.js';
import type { CustomCosts } from './accelerators.js';

export type Precision = 'fp32' | 'bf16' | 'fp16';
export type RouterPort = 'E' | 'S' | 'W' | 'N';
/** `standard` (organic substrate) and `advanced` (silicon bridge) ship; files may name others. */
export type PackageKind = 'standard' | 'advanced' | (string & {});

export interface DieEnergy {
  /** One multiply-accumulate at the die's precision. */
  readonly macPj: number;
  readonly sramReadPjPerByte: number;
  readonly sramWritePjPerByte: number;
  /** One vector-unit operation on one element. */
  readonly vectorOpPj: number;
  /** Leakage of one die, whole time it is powered. */
  readonly staticW: number;
}

export interface RouterSpec {
  /** The NoP directions the router drives (the local port is implicit). */
  readonly ports: readonly RouterPort[];
  /** Whether the router forwards bypass-ring traffic alongside its own transfers (§III-A b). */
  readonly bypass: boolean;
}

export interface DieSpec {
  readonly name: string;
  /** The accelerator kind whose cost formulas apply (accelerators.ts): `pe-array`, `systolic`. */
  readonly model: string;
  readonly precision: Precision;
  readonly macs: number;
  readonly pes: number;
  readonly clockHz: number;
  readonly activationBufferBytes: number;
  readonly weightBufferBytes: number;
  readonly vectorLanes: number;
  readonly router: RouterSpec;
  readonly energy: DieEnergy;
  /** The IR ops the vector unit runs; absent: every op. */
  readonly vectorOps?: readonly string[];
  /** A plugin's own cost functions (plugin.ts), over the kind's where given. */
  readonly custom?: CustomCosts;
  /** The plugin or description file the die came from, when not bundled. */
  readonly file?: string;
}

export interface LinkSpec {
  readonly lanes: number;
  readonly gtpsPerLane: number;
  /** Per direction: lanes × GT/s / 8. */
  readonly bandwidthBytesPerS: number;
  /** Latency α of a link between adjacent dies. */
  readonly alphaS: number;
  /** A bypass-ring link's latency is this × α (2 in the paper, §III-A b). */
  readonly bypassLatencyFactor: number;
  readonly energyPjPerBit: number;
}

export interface PackageSpec {
  readonly kind: PackageKind;
  readonly rows: number;
  readonly cols: number;
  /** rows × cols */
  readonly dies: number;
  readonly link: LinkSpec;
}

export interface MemorySpec {
  readonly kind: string;
  readonly dataRateMtps: number;
  readonly channelWidthBits: number;
  /** Resolved channel count (explicit, or channels per edge die × 2·(rows + cols)). */
  readonly channels: number;
  /** data rate × width / 8 */
  readonly channelBandwidthBytesPerS: number;
  /** channels × channelBandwidthBytesPerS */
  readonly totalBandwidthBytesPerS: number;
  readonly energyPjPerBit: number;
  /** Total DRAM capacity, when the description gives one. */
  readonly capacityBytes?: number;
}

export interface Target {
  readonly name: string;
  /** Where it came from: a preset name or a file path. */
  readonly source: string;
  /** The die of a homogeneous package; of a heterogeneous one, its first die type. */
  readonly die: DieSpec;
  /** Every die type of the package (one for a homogeneous package; `die` is the first). */
  readonly dieTypes: readonly DieSpec[];
  /** Per die, row-major: its index in dieTypes. */
  readonly layout: readonly number[];
  /** How the tiler shares work among die types: in proportion to throughput, or evenly. */
  readonly balance: 'throughput' | 'even';
  readonly package: PackageSpec;
  readonly memory: MemorySpec;
}

/** The die type of die `d` (row-major index). */
export function dieAt(t: Target, d: number): DieSpec {
  return t.dieTypes[t.layout[d]!]!;
}

/** The target with every die of type `die` (a homogeneous package). */
export function withDie(t: Target, die: DieSpec): Target {
  return { ...t, die, dieTypes: [die], layout: t.layout.map(() => 0) };
}

/** Whether the package mixes die types. */
export function isHeterogeneous(t: Target): boolean {
  return t.dieTypes.length > 1;
}

/**
 * The buffer capacities every die offers: the smallest of each over the package's die types.
 * Passes size tiles by the largest tile any die holds, so they check it against these.
 */
export function bufferCapacity(t: Target): { readonly activation: number; readonly weight: number } {
  return {
    activation: Math.min(...t.dieTypes.map((d) => d.activationBufferBytes)),
    weight: Math.min(...t.dieTypes.map((d) => d.weightBufferBytes)),
  };
}

/** Peak MAC throughput of one die, MAC/s. */
export function dieMacsPerS(die: DieSpec): number {
  return die.macs * die.clockHz;
}

/** A multi-line summary for `gyges target` and `gyges compile`. */
export function describeTarget(t: Target): string {
  const { package: pkg, memory: mem } = t;
  const link = pkg.link;
  const peakTflops = (2 * t.layout.reduce((s, k) => s + dieMacsPerS(t.dieTypes[k]!), 0)) / 1e12;
  const describeDie = (die: DieSpec, head: string) => [
    `${head}${die.name}: ${die.macs} ${die.precision} MACs in ${die.pes} ${die.model === 'systolic' ? 'systolic arrays' : 'PEs'} at ${num(die.clockHz / 1e6)} MHz, ` +
      `${die.vectorLanes} vector lanes (model ${die.model}${die.custom ? ', plugin costs' : ''})`,
    `           buffers ${bytes(die.activationBufferBytes)} activation + ${bytes(die.weightBufferBytes)} weight; ` +
      `router ${die.router.ports.join('/')}${die.router.bypass ? ' with bypass' : ''}`,
    `           energy ${num(die.energy.macPj)} pJ/MAC, SRAM ${num(die.energy.sramReadPjPerByte)}/${num(die.energy.sramWritePjPerByte)} ` +
      `pJ/B read/write, ${num(die.energy.vectorOpPj)} pJ/vector op, ${num(die.energy.staticW)} W static`,
  ];
  const grid = () =>
    Array.from({ length: pkg.rows }, (_, i) => `           ${t.layout.slice(i * pkg.cols, (i + 1) * pkg.cols).map((k) => t.dieTypes[k]!.name).join(' ')}`);
  const lines = [
    `target ${t.name}${t.source === t.name ? '' : ` (${t.source})`}`,
    ...t.dieTypes.flatMap((d, k) => describeDie(d, k === 0 ? '  die      ' : '           ')),
    `  package  ${pkg.kind}, ${pkg.rows}x${pkg.cols} = ${pkg.dies} dies, peak ${num(peakTflops)} TFLOP/s`,
    `           D2D x${link.lanes} at ${num(link.gtpsPerLane)} GT/s = ${num(link.bandwidthBytesPerS / 1e9)} GB/s per direction, ` +
      `alpha ${num(link.alphaS * 1e9)} ns, bypass ${num(link.bypassLatencyFactor)}x alpha, ${num(link.energyPjPerBit)} pJ/bit`,
    ...(isHeterogeneous(t) ? [`           layout (die types, row by row; work shared by ${t.balance === 'even' ? 'equal shares' : 'throughput'}):`, ...grid()] : []),
    `  memory   ${mem.kind}: ${mem.channels} channels x ${num(mem.channelBandwidthBytesPerS / 1e9)} GB/s = ` +
      `${num(mem.totalBandwidthBytesPerS / 1e9)} GB/s, ${num(mem.energyPjPerBit)} pJ/bit` +
      (mem.capacityBytes === undefined ? '' : `, ${bytes(mem.capacityBytes)}`),
  ];
  return lines.join('\n');
}

/** At most six significant digits, without trailing zeros. */
function num(x: number): string {
  return String(Number(x.toPrecision(6)));
}

/** A plain object with a fixed key order (snake_case, SI units), for `--json` output. */
export function targetToJSON(t: Target): Record<string, unknown> {
  const { package: pkg, memory: mem } = t;
  const dieJSON = (die: DieSpec) => ({
      name: die.name,
      model: die.model,
      precision: die.precision,
      macs: die.macs,
      pes: die.pes,
      clock_hz: die.clockHz,
      activation_buffer_bytes: die.activationBufferBytes,
      weight_buffer_bytes: die.weightBufferBytes,
      vector_lanes: die.vectorLanes,
      router: { ports: [...die.router.ports], bypass: die.router.bypass },
      energy: {
        mac_pj: die.energy.macPj,
        sram_read_pj_per_byte: die.energy.sramReadPjPerByte,
        sram_write_pj_per_byte: die.energy.sramWritePjPerByte,
        vector_op_pj: die.energy.vectorOpPj,
        static_w: die.energy.staticW,
      },
      vector_ops: die.vectorOps ? [...die.vectorOps] : null,
      plugin: die.file ?? null,
  });
  return {
    name: t.name,
    source: t.source,
    die: dieJSON(t.die),
    // A heterogeneous package also lists its die types and, row by row, each die's type.
    ...(isHeterogeneous(t)
      ? {
          die_types: t.dieTypes.map(dieJSON),
          layout: Array.from({ length: pkg.rows }, (_, i) => t.layout.slice(i * pkg.cols, (i + 1) * pkg.cols).map((k) => t.dieTypes[k]!.name)),
          balance: t.balance,
        }
      : {}),
    package: {
      kind: pkg.kind,
      rows: pkg.rows,
      cols: pkg.cols,
      dies: pkg.dies,
      link: {
        lanes: pkg.link.lanes,
        gtps_per_lane: pkg.link.gtpsPerLane,
        bandwidth_bytes_per_s: pkg.link.bandwidthBytesPerS,
        alpha_s: pkg.link.alphaS,
        bypass_latency_factor: pkg.link.bypassLatencyFactor,
        energy_pj_per_bit: pkg.link.energyPjPerBit,
      },
    },
    memory: {
      kind: mem.kind,
      data_rate_mtps: mem.dataRateMtps,
      channel_width_bits: mem.channelWidthBits,
      channels: mem.channels,
      channel_bandwidth_bytes_per_s: mem.channelBandwidthBytesPerS,
      total_bandwidth_bytes_per_s: mem.totalBandwidthBytesPerS,
      energy_pj_per_bit: mem.energyPjPerBit,
      capacity_bytes: mem.capacityBytes ?? null,
    },
  };
}
