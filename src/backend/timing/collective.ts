// Simulates ONE collective alone on a package of uniform links, through the event engine and
// the contended network — `gyges collective`. Unlike passes/collective-cost.ts, which writes
// the algorithms' volumes in closed form, this runs them: every die sends real messages and a
// send waits for the data it forwards, so latency, contention and phase alignment come out of
// the simulation rather than a formula (the tests check the two agree where they should).
//
// Algorithms (`bytes` is each die's buffer; for all-gather, each die's input shard):
//   ring of n dies (links both ways, the algorithm uses one direction, die d → d+1):
//     reduce-scatter  n−1 steps of bytes/n; all-gather n−1 steps of the shard;
//     all-reduce      reduce-scatter then all-gather (eq. 1 of the paper, §II-C).
//     In each step every die sends one chunk to its successor, and its next send waits for
//     the chunk of the previous step to arrive from its predecessor.
//   torus R×C (wrap-around links both ways; rows ring eastwards, columns southwards): the
//     2-D algorithm of collective-cost.ts. Each die's buffer is halved; one half runs the ring
//     algorithm along its row then its column, the other along its column then its row, at
//     the same time. All-reduce per half: reduce-scatter (first dim), reduce-scatter (second),
//     all-gather (second), all-gather (first). Reduce-scatter: the first two of those phases.
//     All-gather: all-gather (first dim) of the half shard, then (second) of g₁ half shards.
//   exchange (all-reduce only, `algorithm: 'exchange'`; the compiler's choice for small
//     all-reduces, collective-cost.ts): on a ring every die sends its whole buffer to both
//     neighbours and forwards what arrives, ⌈(n−1)/2⌉ steps one way and ⌊(n−1)/2⌋ the other,
//     then adds the n buffers itself. On a torus it exchanges along its row, then the row's
//     sum along its column.
//   bidirectional ring (`algorithm: 'bidirectional'`, ring topology): the ring algorithm run
//     both ways at once, each die's block reached from both sides. All-gather: the shard
//     forwarded ⌈(n−1)/2⌉ steps one way and ⌊(n−1)/2⌋ the other; reduce-scatter: a block of
//     bytes/n per step each way, the partial sums of a block converging on its die from both
//     sides in as many steps; all-reduce: the two in turn. Half the ring's steps; each link
//     direction carries half the ring's bytes.
//   all-to-all (either topology): each die splits its buffer into one chunk per die and sends
//     every other die its chunk at once along the shortest route (dimension-ordered on the
//     torus: along the row first, then the column; ties go the positive way), so messages
//     contend for links in first-come-first-served order.
// Reductions' compute time is zero here.

import { assert, assertNever, error } from '../../diagnostics/diagnostic.js';
import { EventQueue } from './events.js';
import { Network, type LinkId } from './network.js';

export type SimCollectiveKind = 'all_gather' | 'reduce_scatter' | 'all_reduce' | 'all_to_all';

export type SimTopology =
  | { readonly kind: 'ring'; readonly n: number }
  | { readonly kind: 'torus'; readonly rows: number; readonly cols: number };

export interface CollectiveSimInput {
  readonly kind: SimCollectiveKind;
  readonly topology: SimTopology;
  /** Each die's buffer in bytes (for all-gather, each die's input shard). */
  readonly bytes: number;
  /** Latency of one link hop, seconds. */
  readonly alphaS: number;
  /** Bandwidth of every link, bytes per second. */
  readonly bandwidthBytesPerS: number;
  /**
   * Instead of the topology's own algorithm (see the header): 'exchange' (all-reduce only) or
   * 'bidirectional' (ring topology only; not all-to-all).
   */
  readonly algorithm?: 'exchange' | 'bidirectional';
}

export interface CollectiveSimResult {
  readonly kind: SimCollectiveKind;
  /** `ring:N` or `torus:RxC`, as on the command line. */
  readonly topology: string;
  readonly algorithm: 'ring' | 'torus2d' | 'exchange' | 'bidirectional' | 'direct';
  readonly dies: number;
  readonly bytes: number;
  readonly alpha_s: number;
  readonly bandwidth_bytes_per_s: number;
  /** When the last die holds its result. */
  readonly time_s: number;
  /** Sequential steps on the critical path of the algorithm (all-to-all: the longest route, in hops). */
  readonly steps: number;
  /** Bytes the busiest die injects (forwarding by intermediate dies not counted). */
  readonly bytes_per_die_sent: number;
  /** Bytes carried by the busiest link. */
  readonly link_bytes_max: number;
  /** Transmission time of the busiest link. */
  readonly link_busy_max_s: number;
  /** link_busy_max_s / time_s (0 when time_s is 0). */
  readonly link_utilisation_max: number;
  /** Bytes summed over every link hop: the quantity link energy scales with. */
  readonly total_link_bytes: number;
  readonly links: number;
  readonly messages: number;
  readonly events: number;
}

/** Largest package the command simulates. */
const MAX_DIES = 4096;
/** Most link hops an all-to-all may simulate (about 20 s; a 32×32 torus needs 1.7·10⁷). */
const MAX_ALL_TO_ALL_HOPS = 2e7;

export function simulateCollective(input: CollectiveSimInput): CollectiveSimResult {
  checkInput(input);
  const engine = new EventQueue();
  const fabric = buildFabric(input.topology, engine, input);
  const run = input.kind === 'all_to_all' ? runAllToAll(fabric, input.bytes) : runPrograms(fabric, programsFor(input));
  engine.run();
  assert(run.complete(), `collective ${input.kind} on ${formatTopology(input.topology)} deadlocked`);
  return summarise(input, fabric, run, engine.eventsRun);
}

/** Parse `ring:N` or `torus:RxC`. */
export function parseTopology(text: string): SimTopology {
  const ring = /^ring:(\d+)$/.exec(text);
  if (ring) return { kind: 'ring', n: Number(ring[1]) };
  const torus = /^torus:(\d+)x(\d+)$/.exec(text);
  if (torus) return { kind: 'torus', rows: Number(torus[1]), cols: Number(torus[2]) };
  throw error('GY8001', `topology '${text}' is neither ring:N nor torus:RxC`);
}

export function formatTopology(t: SimTopology): string {
  switch (t.kind) {
    case 'ring':
      return `ring:${t.n}`;
    case 'torus':
      return `torus:${t.rows}x${t.cols}`;
    default:
      return assertNever(t);
  }
}

// ---------------------------------------------------------------------------------------------
// Input checks

function checkInput(input: CollectiveSimInput): void {
  const dies = dieCount(input.topology);
  const sizes = input.topology.kind === 'ring' ? [input.topology.n] : [input.topology.rows, input.topology.cols];
  if (!sizes.every((s) => Number.isInteger(s) && s >= 1)) {
    throw error('GY8001', `topology ${formatTopology(input.topology)} needs whole numbers of dies of at least 1`);
  }
  if (dies > MAX_DIES) throw error('GY8001', `topology ${formatTopology(input.topology)} has ${dies} dies; at most ${MAX_DIES} are simulated`);
  checkNumber('bytes', input.bytes, false);
  checkNumber('link latency', input.alphaS, false);
  checkNumber('link bandwidth', input.bandwidthBytesPerS, true);
  if (input.algorithm === 'exchange' && input.kind !== 'all_reduce') {
    throw error('GY8001', `the exchange algorithm is an all-reduce; ${input.kind.replace('_', '-')} has no exchange`);
  }
  if (input.algorithm === 'bidirectional' && (input.topology.kind !== 'ring' || input.kind === 'all_to_all')) {
    throw error('GY8001', `the bidirectional ring runs all-gathers, reduce-scatters and all-reduces on ring:N; not ${input.kind.replace(/_/g, '-')} on ${formatTopology(input.topology)}`);
  }
}

function checkNumber(what: string, x: number, positive: boolean): void {
  if (!Number.isFinite(x) || x < 0 || (positive && x === 0)) {
    throw error('GY8001', `${what} must be a finite number ${positive ? 'above' : 'of at least'} 0, got ${x}`);
  }
}

function dieCount(t: SimTopology): number {
  switch (t.kind) {
    case 'ring':
      return t.n;
    case 'torus':
      return t.rows * t.cols;
    default:
      return assertNever(t);
  }
}

// ---------------------------------------------------------------------------------------------
// Topologies: dies, links and shortest routes

interface Fabric {
  readonly dies: number;
  readonly engine: EventQueue;
  readonly net: Network;
  /** Successor of a die on its ring ('ring' topology), row ring or column ring, and predecessors (the `back` ones). */
  readonly next: Readonly<Record<Phase['next'], (d: number) => number>>;
  /** Die positions visited by the shortest (dimension-ordered) route, excluding the source. */
  readonly path: (src: number, dst: number) => number[];
}

function buildFabric(t: SimTopology, engine: EventQueue, link: CollectiveSimInput): Fabric {
  const net = new Network(engine);
  const spec = { alphaS: link.alphaS, bandwidthBytesPerS: link.bandwidthBytesPerS };
  const connect = (from: number, to: number): void => {
    if (from !== to && net.linkBetween(from, to) === undefined) net.addLink({ from, to, ...spec });
  };
  switch (t.kind) {
    case 'ring':
      return { engine, net, ...ringFabric(t.n, connect) };
    case 'torus':
      return { engine, net, ...torusFabric(t.rows, t.cols, connect) };
    default:
      return assertNever(t);
  }
}

type Shape = Pick<Fabric, 'dies' | 'next' | 'path'>;

function ringFabric(n: number, connect: (a: number, b: number) => void): Shape {
  for (let d = 0; d < n; d++) {
    connect(d, (d + 1) % n);
    connect((d + 1) % n, d);
  }
  const ring = (d: number): number => (d + 1) % n;
  const back = (d: number): number => (d + n - 1) % n;
  return { dies: n, next: { ring, row: ring, col: ring, ringBack: back, rowBack: back, colBack: back }, path: (src, dst) => ringWalk(src, dst, n) };
}

function torusFabric(rows: number, cols: number, connect: (a: number, b: number) => void): Shape {
  const id = (i: number, j: number): number => i * cols + j;
  for (let i = 0; i < rows; i++) {
    for (let j = 0; j < cols; j++) {
      connect(id(i, j), id(i, (j + 1) % cols));
      connect(id(i, (j + 1) % cols), id(i, j));
      connect(id(i, j), id((i + 1) % rows, j));
      connect(id((i + 1) % rows, j), id(i, j));
    }
  }
  const row = (d: number): number => id(Math.floor(d / cols), ((d % cols) + 1) % cols);
  const col = (d: number): number => id((Math.floor(d / cols) + 1) % rows, d % cols);
  const rowBack = (d: number): number => id(Math.floor(d / cols), ((d % cols) + cols - 1) % cols);
  const colBack = (d: number): number => id((Math.floor(d / cols) + rows - 1) % rows, d % cols);
  const path = (src: number, dst: number): number[] => {
    const [si, sj, di, dj] = [Math.floor(src / cols), src % cols, Math.floor(dst / cols), dst % cols];
    const alongRow = ringWalk(sj, dj, cols).map((j) => id(si, j));
    const alongCol = ringWalk(si, di, rows).map((i) => id(i, dj));
    return [...alongRow, ...alongCol];
  };
  return { dies: rows * cols, next: { ring: row, row, col, ringBack: rowBack, rowBack, colBack }, path };
}

/** Positions after each hop of the shorter way round a ring of n from `from` to `to`. */
function ringWalk(from: number, to: number, n: number): number[] {
  const forward = (to - from + n) % n;
  const step = forward <= n - forward ? 1 : -1;
  const hops = step === 1 ? forward : n - forward;
  return Array.from({ length: hops }, (_, k) => (((from + step * (k + 1)) % n) + n) % n);
}

function routeLinks(fabric: Fabric, src: number, dst: number): LinkId[] {
  const stops = [src, ...fabric.path(src, dst)];
  return stops.slice(1).map((to, k) => fabric.net.linkBetween(stops[k]!, to)!);
}

// ---------------------------------------------------------------------------------------------
// Ring and torus algorithms as per-die programs of ring phases

/** One ring phase: `steps` sends of `chunkBytes` to the die's successor `next(d)` (or predecessor, the `back` ones). */
interface Phase {
  readonly next: 'ring' | 'row' | 'col' | 'ringBack' | 'rowBack' | 'colBack';
  readonly steps: number;
  readonly chunkBytes: number;
  /** Start only once every program of the die has finished the phases before this one. */
  readonly sync?: boolean;
}

/** Every die runs every program; programs run concurrently and independently. */
interface Programs {
  readonly algorithm: 'ring' | 'torus2d' | 'exchange' | 'bidirectional';
  readonly programs: readonly (readonly Phase[])[];
}

function programsFor(input: CollectiveSimInput): Programs {
  const { topology: t, bytes } = input;
  const kind = input.kind as Exclude<SimCollectiveKind, 'all_to_all'>;
  if (input.algorithm === 'exchange') return { algorithm: 'exchange', programs: exchangePrograms(t, bytes) };
  if (input.algorithm === 'bidirectional' && t.kind === 'ring') return { algorithm: 'bidirectional', programs: bidirectionalPrograms(kind, bytes, t.n) };
  switch (t.kind) {
    case 'ring':
      return { algorithm: 'ring', programs: [ringPhases(kind, bytes, { next: 'ring', g: t.n })] };
    case 'torus': {
      const row = { next: 'row' as const, g: t.cols };
      const col = { next: 'col' as const, g: t.rows };
      return { algorithm: 'torus2d', programs: [torusHalf(kind, bytes / 2, row, col), torusHalf(kind, bytes / 2, col, row)] };
    }
    default:
      return assertNever(t);
  }
}

/**
 * The exchange all-reduce: a forward and a backward program; every send is the whole buffer,
 * forwarded a step later. On a torus a die's column exchange (of its row's sum) starts once
 * both programs have finished the row's.
 */
function exchangePrograms(t: SimTopology, bytes: number): Phase[][] {
  switch (t.kind) {
    case 'ring': {
      const [f, b] = bothWays(t.n, bytes, 'ring', 'ringBack');
      return [[f], [b]];
    }
    case 'torus': {
      const [rf, rb] = bothWays(t.cols, bytes, 'row', 'rowBack');
      const [cf, cb] = bothWays(t.rows, bytes, 'col', 'colBack', true);
      return [
        [rf, cf],
        [rb, cb],
      ];
    }
    default:
      return assertNever(t);
  }
}

/** One phase each way round a ring of g dies: ⌈(g−1)/2⌉ steps forward, ⌊(g−1)/2⌋ back. */
function bothWays(g: number, chunkBytes: number, fwd: Phase['next'], back: Phase['next'], sync = false): [Phase, Phase] {
  return [
    { next: fwd, steps: Math.ceil((g - 1) / 2), chunkBytes, sync },
    { next: back, steps: Math.floor((g - 1) / 2), chunkBytes, sync },
  ];
}

/**
 * The ring algorithm both ways round a ring of n: a forward and a backward program, each
 * phase ⌈(n−1)/2⌉ steps forward and ⌊(n−1)/2⌋ backward; an all-reduce's gathering phase waits
 * for both directions' reduce-scatter.
 */
function bidirectionalPrograms(kind: Exclude<SimCollectiveKind, 'all_to_all'>, bytes: number, n: number): Phase[][] {
  const ways = (chunkBytes: number, sync = false) => bothWays(n, chunkBytes, 'ring', 'ringBack', sync);
  switch (kind) {
    case 'all_gather': {
      const [f, b] = ways(bytes);
      return [[f], [b]];
    }
    case 'reduce_scatter': {
      const [f, b] = ways(bytes / n);
      return [[f], [b]];
    }
    case 'all_reduce': {
      const [rf, rb] = ways(bytes / n);
      const [gf, gb] = ways(bytes / n, true);
      return [
        [rf, gf],
        [rb, gb],
      ];
    }
    default:
      return assertNever(kind);
  }
}

interface Dim {
  readonly next: Phase['next'];
  readonly g: number;
}

function ringPhases(kind: Exclude<SimCollectiveKind, 'all_to_all'>, bytes: number, dim: Dim): Phase[] {
  const rs = { next: dim.next, steps: dim.g - 1, chunkBytes: bytes / dim.g };
  switch (kind) {
    case 'all_gather':
      return [{ next: dim.next, steps: dim.g - 1, chunkBytes: bytes }];
    case 'reduce_scatter':
      return [rs];
    case 'all_reduce':
      return [rs, rs];
    default:
      return assertNever(kind);
  }
}

/** One half of the 2-D algorithm: `half` bytes per die, dimension `a` first, then `b`. */
function torusHalf(kind: Exclude<SimCollectiveKind, 'all_to_all'>, half: number, a: Dim, b: Dim): Phase[] {
  switch (kind) {
    case 'all_gather':
      return [...ringPhases('all_gather', half, a), ...ringPhases('all_gather', half * a.g, b)];
    case 'reduce_scatter':
      return [...ringPhases('reduce_scatter', half, a), ...ringPhases('reduce_scatter', half / a.g, b)];
    case 'all_reduce': {
      const [rsA, rsB] = [ringPhases('reduce_scatter', half, a), ringPhases('reduce_scatter', half / a.g, b)];
      return [...rsA, ...rsB, ...ringPhases('all_gather', half / (a.g * b.g), b), ...ringPhases('all_gather', half / a.g, a)];
    }
    default:
      return assertNever(kind);
  }
}

interface RunState {
  /** When each die holds its result. */
  readonly finish: number[];
  /** Bytes each die injects. */
  readonly sent: number[];
  steps: number;
  messages: number;
  algorithm: CollectiveSimResult['algorithm'];
  /** Whether every die reached the end of every program (false means a deadlock). */
  complete: () => boolean;
}

interface DieState {
  phase: number;
  /** The next step to send in the current phase. */
  next: number;
  /** Chunks received so far, per phase (a fast predecessor may run a phase ahead). */
  readonly recv: number[];
}

function runPrograms(fabric: Fabric, progs: Programs): RunState {
  const run: RunState = newRun(fabric.dies, progs.algorithm);
  run.steps = maxOf(progs.programs.map((p) => p.reduce((s, ph) => s + ph.steps, 0)));
  const states = progs.programs.map((p) =>
    Array.from({ length: fabric.dies }, (): DieState => ({ phase: 0, next: 0, recv: p.map(() => 0) })),
  );
  const advance = (p: number, d: number): void => {
    const prog = progs.programs[p]!;
    const s = states[p]![d]!;
    while (s.phase < prog.length) {
      const ph = prog[s.phase]!;
      if (s.next === 0 && ph.sync && !states.every((dies) => dies[d]!.phase >= s.phase)) {
        return;
      } else if (s.next < ph.steps && (s.next === 0 || s.recv[s.phase]! >= s.next)) {
        sendStep(p, d, s.phase, ph);
        s.next++;
      } else if (s.next === ph.steps && s.recv[s.phase]! >= ph.steps) {
        s.phase++;
        s.next = 0;
        // Programs of this die waiting for every one to reach this phase may go on.
        for (let q = 0; q < progs.programs.length; q++) if (q !== p && progs.programs[q]![s.phase]?.sync) advance(q, d);
      } else {
        return;
      }
    }
    run.finish[d] = Math.max(run.finish[d]!, fabric.engine.now);
  };
  const sendStep = (p: number, d: number, phase: number, ph: Phase): void => {
    const to = fabric.next[ph.next](d);
    run.sent[d] = run.sent[d]! + ph.chunkBytes;
    run.messages++;
    fabric.net.send(routeLinks(fabric, d, to), ph.chunkBytes, () => {
      states[p]![to]!.recv[phase]!++;
      advance(p, to);
    });
  };
  run.complete = () => states.every((dies, p) => dies.every((s) => s.phase === progs.programs[p]!.length));
  for (let p = 0; p < progs.programs.length; p++) for (let d = 0; d < fabric.dies; d++) advance(p, d);
  return run;
}

function runAllToAll(fabric: Fabric, bytes: number): RunState {
  const run = newRun(fabric.dies, 'direct');
  const n = fabric.dies;
  const chunk = bytes / n;
  // Every die sees the same distances, so die 0's routes give the total.
  const hops = n * Array.from({ length: n }, (_, d) => fabric.path(0, d).length).reduce((a, b) => a + b, 0);
  if (hops > MAX_ALL_TO_ALL_HOPS) {
    throw error('GY8001', `an all-to-all on ${n} dies of this topology needs ${hops} link hops; at most ${MAX_ALL_TO_ALL_HOPS} are simulated`);
  }
  for (let offset = 1; offset < n; offset++) {
    for (let src = 0; src < n; src++) {
      const dst = (src + offset) % n;
      const route = routeLinks(fabric, src, dst);
      run.steps = Math.max(run.steps, route.length);
      run.sent[src] = run.sent[src]! + chunk;
      run.messages++;
      fabric.net.send(route, chunk, (at) => {
        run.finish[dst] = Math.max(run.finish[dst]!, at);
      });
    }
  }
  return run;
}

function newRun(dies: number, algorithm: RunState['algorithm']): RunState {
  const finish = new Array<number>(dies).fill(0);
  return { finish, sent: new Array<number>(dies).fill(0), steps: 0, messages: 0, algorithm, complete: () => true };
}

// ---------------------------------------------------------------------------------------------
// Results

function summarise(input: CollectiveSimInput, fabric: Fabric, run: RunState, events: number): CollectiveSimResult {
  const links = fabric.net.stats();
  const time = maxOf(run.finish);
  const busyMax = maxOf(links.map((l) => l.busyS));
  return {
    kind: input.kind,
    topology: formatTopology(input.topology),
    algorithm: run.algorithm,
    dies: fabric.dies,
    bytes: input.bytes,
    alpha_s: input.alphaS,
    bandwidth_bytes_per_s: input.bandwidthBytesPerS,
    time_s: time,
    steps: run.steps,
    bytes_per_die_sent: maxOf(run.sent),
    link_bytes_max: maxOf(links.map((l) => l.bytes)),
    link_busy_max_s: busyMax,
    link_utilisation_max: time > 0 ? busyMax / time : 0,
    total_link_bytes: links.reduce((s, l) => s + l.bytes, 0),
    links: links.length,
    messages: run.messages,
    events,
  };
}

/** The largest of non-negative numbers (0 for none), without spreading large arrays. */
function maxOf(xs: readonly number[]): number {
  return xs.reduce((m, x) => Math.max(m, x), 0);
}
