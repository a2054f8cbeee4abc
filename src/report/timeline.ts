// A timeline of one mini-batch in steady state, for a few dies: the spans the executor traces
// (compute, DMA and NoP engines, the links a die drives) while die [0, 0] runs one iteration of
// a mini-batch loop. The loop is the forward mini-batch loop in the middle of the program (a
// fusion group deep in the model) and the iteration the middle one, so the pipeline is full:
// mini-batch n+1's DRAM reads overlap mini-batch n's work (§III-B a). The window runs from
// that iteration's first compute instruction to the next iteration's. Dies shown: [0, 0],
// the critical die, the middle of the grid and the far corner (those that differ).
//
// The simulation is run again with a trace sink that keeps the chosen dies' spans only. The
// chosen loop is simulated whole; other loops may jump over repeating iterations (steady.ts),
// which moves later times as simulating them would, up to rounding.

import type { Compilation } from '../compile.js';
import { assert } from '../diagnostics/diagnostic.js';
import type { Instruction, LoopInstr, Phase, Range } from '../backend/program.js';
import type { TraceSink, TraceTrack } from '../backend/timing/execute.js';
import { simulateCompiled } from '../backend/timing/simulate.js';
import { programsOf } from '../passes/schedule/index.js';

export interface TimelineSpan {
  readonly die: Range;
  /** compute, dma, nop, or `link NAME`. */
  readonly track: string;
  /** The instruction's label. */
  readonly name: string;
  /** Seconds from the window's start, clipped to the window. */
  readonly start_s: number;
  readonly end_s: number;
}

export interface Timeline {
  readonly dies: readonly Range[];
  /** The loop shown (its instruction id in die 0's program) and the iteration (from 0) of its count. */
  readonly loop: {
    readonly id: number;
    readonly phase: Phase;
    /** The first and last Transformer layer of its instructions, null when none is in a layer. */
    readonly layers: readonly [number, number] | null;
    readonly iteration: number;
    readonly count: number;
  };
  /** Neither the loop's first nor its last iteration: the pipeline is full. */
  readonly steady: boolean;
  /** The window, seconds into the training iteration. */
  readonly start_s: number;
  readonly end_s: number;
  readonly spans: readonly TimelineSpan[];
}

interface Kept {
  readonly die: number;
  readonly track: TraceTrack;
  readonly name: string;
  readonly start: number;
  readonly end: number;
  readonly id: number | null;
}

/** The timeline of `c`'s steady-state mini-batch, or null when its programs have no mini-batch loop. */
export function minibatchTimeline(c: Compilation, critical: Range): Timeline | null {
  const set = programsOf(c.module);
  if (!set) return null;
  const first = set.programFor({ i: 0, j: 0 });
  const loop = pickLoop(first.instructions);
  if (!loop) return null;
  const { rows: R, cols: C } = set.grid;
  const chosen = [[0, 0], critical, [Math.floor(R / 2), Math.floor(C / 2)], [R - 1, C - 1]] as const;
  const indices = [...new Set(chosen.map(([i, j]) => i * C + j))].sort((a, b) => a - b);
  const spans: Kept[] = [];
  const sink: TraceSink = {
    onlyDies: indices,
    span(die, track, name, start, end, args) {
      spans.push({ die, track, name, start, end, id: typeof args.id === 'number' ? args.id : null });
    },
  };
  simulateCompiled(c, { trace: sink, whole: [loop.id] });

  const anchor = loop.body.find((x) => x.kind === 'gemm' || x.kind === 'vector') ?? loop.body.find((x) => x.kind !== 'loop')!;
  const starts = spans.filter((s) => s.die === 0 && s.id === anchor.id).map((s) => s.start).sort((a, b) => a - b);
  assert(starts.length === loop.count, `timeline: instruction ${anchor.id} ran ${starts.length} times in a loop of ${loop.count}`);
  const iteration = loop.count >= 3 ? Math.floor(loop.count / 2) : 0;
  const start = starts[iteration]!;
  let end = starts[iteration + 1];
  if (end === undefined) {
    const body = idsIn(loop.body);
    end = spans.filter((s) => s.die === 0 && s.id !== null && body.has(s.id)).reduce((m, s) => Math.max(m, s.end), start);
  }
  const dieOf = (d: number): Range => [Math.floor(d / C), d % C];
  const shown = spans
    .filter((s) => s.end > start && s.start < end && s.end > s.start)
    .map((s) => ({ die: dieOf(s.die), index: s.die, track: s.track, name: s.name, start_s: Math.max(s.start, start) - start, end_s: Math.min(s.end, end) - start }))
    .sort((a, b) => a.index - b.index || trackRank(a.track) - trackRank(b.track) || (a.track < b.track ? -1 : a.track > b.track ? 1 : 0) || a.start_s - b.start_s || a.end_s - b.end_s)
    .map(({ index: _, ...s }) => s);
  return {
    dies: indices.map(dieOf),
    loop: { id: loop.id, phase: loop.phase, layers: layersOf(loop.body), iteration, count: loop.count },
    steady: iteration > 0 && iteration < loop.count - 1,
    start_s: start,
    end_s: end,
    spans: shown,
  };
}

/** The forward mini-batch loop in the middle of the program (any mini-batch loop without one). */
function pickLoop(top: readonly Instruction[]): LoopInstr | undefined {
  const loops = top.filter((x): x is LoopInstr => x.kind === 'loop' && x.over === 'minibatch');
  const forward = loops.filter((l) => l.phase === 'fwd');
  const pool = forward.length ? forward : loops;
  return pool[Math.floor((pool.length - 1) / 2)];
}

function layersOf(list: readonly Instruction[]): [number, number] | null {
  let range: [number, number] | null = null;
  const walk = (xs: readonly Instruction[]) => {
    for (const x of xs) {
      if (x.layer !== null) range = range === null ? [x.layer, x.layer] : [Math.min(range[0], x.layer), Math.max(range[1], x.layer)];
      if (x.kind === 'loop') walk(x.body);
    }
  };
  walk(list);
  return range;
}

function idsIn(list: readonly Instruction[], out = new Set<number>()): Set<number> {
  for (const x of list) {
    out.add(x.id);
    if (x.kind === 'loop') idsIn(x.body, out);
  }
  return out;
}

const TRACKS = ['compute', 'dma', 'nop'];

/** Engines first, then links. */
function trackRank(track: string): number {
  const k = TRACKS.indexOf(track);
  return k >= 0 ? k : TRACKS.length;
}
