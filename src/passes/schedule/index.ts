// schedule: the last pass — order the work of every die, allocate its buffers, and emit the
// per-die programs (src/backend/program.ts). One walk over the IR builds a shared skeleton
// (instructions, buffers, dependencies, allocation); a die's program differs from another's
// only in tile ranges, byte and work counts, and collective groups, evaluated on demand
// (`programFor(die)`), so 1024 dies cost one walk.
//
// Order (paper §III-B, Fig. 5): forward through the fusion groups in order, then — training —
// backward through them in reverse, each group's weight update right after its backward loop
// (Algorithm 1 step 8). Each stage (group × phase) is
//   prologue  DRAM reads of the group's weights (once, §III-B: reused by every mini-batch),
//             what needs only them (a weight's own collectives), and zeroing of its gradient
//             accumulators (Algorithm 1: "initialize dW held by B_W");
//   loop      over mini-batches: DRAM reads of the mini-batch's inputs, compute, collectives,
//             DRAM writes of what later stages need. A Linear's backward runs in Algorithm 1's
//             order (dx and its reduce-scatter before x is gathered for dw); a Linear marked
//             `fuse.chunks` runs as a nested loop over column chunks of its streamed output
//             (or dy, backward), and its weights stream too when the group's do not fit;
//   epilogue  what needs the whole batch: weight updates, DRAM writes of gradients.
// Ops marked `tile2d.dram` run beside DRAM: no die instructions; their results are read from
// DRAM. A value made in one stage and used in another (or by DRAM-side ops, or an output) is
// written to DRAM once, in its whole (reduced) layout when its stage made one.
// Buffers are allocated with lifetimes (largest first, lowest free offset); every hazard of
// the resulting reuse becomes a dependency, and a DRAM read in a loop depends only on its
// buffer being free (`carried`), which is how the program lets DRAM traffic overlap
// computation (§III-B a); a value written back keeps its addresses for the whole body when
// the buffer allows, so the next mini-batch does not wait for the write to drain.
//
// Files: analysis.ts (where each op runs, what goes to DRAM), geometry.ts (per-die tiles),
// skeleton.ts (instructions and dependencies), emit*.ts (one stage at a time), allocate.ts,
// programs.ts (the program set), and this one: the pass.

import type { Module, Op } from '../../ir/module.js';
import { bufferCapacity, type Target } from '../../target/target.js';
import { bytes } from '../../util/format.js';
import { error, errorAt } from '../../diagnostics/diagnostic.js';
import { forEachInstr } from '../../backend/program.js';
import type { Pass, Strategy } from '../pass.js';
import { analyse } from './analysis.js';
import { Builder } from './emit.js';
import { serializeDram, StageEmitter } from './emit-stage.js';
import { finish } from './allocate.js';
import type { SNode } from './skeleton.js';
import { Programs, type ProgramSet } from './programs.js';

export type { ProgramSet } from './programs.js';

const PROGRAMS = new WeakMap<Module, ProgramSet>();

/** Per program set, its Linear backwards that gather x beside dx's GEMM and those kept in Algorithm 1's order. */
const ORDERS = new WeakMap<ProgramSet, { early: number; ordered: number }>();

/** The programs the schedule pass made for `m` (the pass context has no output slot). */
export function programsOf(m: Module): ProgramSet | undefined {
  return PROGRAMS.get(m);
}

/**
 * A die whose description lists the IR ops its vector unit runs (`vector_ops`) must run every
 * vector instruction of its program (a step of an op, such as `attention:softmax`, counts as
 * the op or as the step's own op). Every die runs die 0's instruction structure, so die 0's
 * program holds every op; `fill` (zeroing an accumulator) needs no vector unit.
 */
function checkVectorOps(set: ProgramSet, target: Target): void {
  const limited = target.dieTypes.filter((d) => d.vectorOps !== undefined);
  if (limited.length === 0) return;
  forEachInstr(set.programFor({ i: 0, j: 0 }).instructions, (ins) => {
    if (ins.kind !== 'vector' || ins.op === 'fill') return;
    // A step of an op (`layernorm:stats`, `attention:softmax`) counts as the op, or as the step when that is an op itself.
    const names = [ins.op, ...ins.op.split(':')];
    const die = limited.find((d) => !names.some((n) => d.vectorOps!.includes(n)));
    if (!die) return;
    const detail = `die '${die.name}' has no '${ins.op}' on its vector unit (it runs ${die.vectorOps!.join(', ') || 'nothing'}), but the model needs it${ins.ir ? ` for '${ins.ir.op}'` : ''}`;
    const at = ins.loc === null ? null : /^(.*):(\d+):(\d+)$/.exec(ins.loc);
    throw at ? errorAt({ file: at[1]!, line: Number(at[2]), col: Number(at[3]) }, 'GY3005', detail) : error('GY3005', `${detail}${ins.loc ? ` (at ${ins.loc})` : ''}`);
  });
}

/**
 * The programs at the minibatch pass's mini-batch, or — when their allocated activations
 * overflow the buffer and that size was the pass's own estimate, not the user's — at the
 * largest smaller mini-batch whose allocation fits (found by bisection; the peak grows with
 * the mini-batch). The minibatch pass sizes each op's footprint alone; the allocator also
 * keeps what neighbouring ops hold live and the next mini-batch's prefetched inputs (§III-B a),
 * so its estimate can be too large a mini-batch. When no size fits, the estimate stands and
 * the overflow is reported.
 */
function fitMinibatch(m: Module, target: Target, strategy: Strategy, overlap: boolean, capacity: number, report: (line: string) => void): ProgramSet {
  const first = buildPrograms(m, target, strategy, overlap);
  const planned = first.minibatch.size;
  if (first.peak.activation <= capacity || planned <= 1 || m.notes['minibatch.forced'] === true) return first;
  let best: ProgramSet | null = null;
  let [lo, hi] = [1, planned - 1];
  while (lo <= hi) {
    const mid = Math.floor((lo + hi) / 2);
    const trial = buildPrograms(m, target, strategy, overlap, mid);
    if (trial.peak.activation <= capacity) {
      best = trial;
      lo = mid + 1;
    } else {
      hi = mid - 1;
    }
  }
  if (best === null) return first;
  const { size, count } = best.minibatch;
  Object.assign(m.notes, { 'minibatch.size': size, 'minibatch.count': count, 'minibatch.sram_ok': true });
  report(
    `mini-batch ${planned} needs ${bytes(first.peak.activation)} of activation buffer once allocated, more than ${bytes(capacity)}: ` +
      `mini-batch ${size} (${count} mini-batches) is the largest that fits`,
  );
  return best;
}

/**
 * `overlap: false` is the ablation of §III-B a: DRAM traffic and on-package work no longer
 * overlap (serializeDram), in every loop and between stages.
 *
 * A Linear's backward gathers x for dw before it reduces dx (StageEmitter's `keepsOrder`), so
 * the gather runs beside dx's GEMM and dx's reduction beside dw's, where the activation buffer
 * holds x, dy and dx together. In a stage whose loop then overflows but fits with every
 * Linear in Algorithm 1's order (dx reduced before x is gathered), the Linears holding the
 * most bytes take that order one by one until it fits. A stage that overflows either way (a
 * starred baseline, run as if its buffer were large enough) keeps the overlap.
 */
export function buildPrograms(m: Module, target: Target, strategy: Strategy, overlap = true, minibatch?: number): ProgramSet {
  const capacity = bufferCapacity(target).activation;
  const build = (late: ReadonlySet<Op>) => emitPrograms(m, target, strategy, overlap, minibatch, late, capacity);
  let now = build(new Set());
  if (now.over.size === 0) return now.set;
  // Which overflowing stages Algorithm 1's order would fit (only its overflows are kept: a
  // package's programs are large).
  const first = now.over;
  const ordered = build(new Set([...first.values()].flat().map((e) => e.op))).over;
  const fixable = new Set([...first].filter(([i, early]) => early.length > 0 && !ordered.has(i)).map(([i]) => i));
  if (fixable.size === 0) return now.set;
  const late = new Set<Op>();
  for (;;) {
    const still = [...now.over].filter(([i]) => fixable.has(i));
    if (still.length === 0) return now.set;
    const before = late.size;
    for (const [, early] of still) if (early.length > 0) late.add(early.reduce((a, b) => (b.bytes > a.bytes ? b : a)).op);
    if (late.size === before) return now.set;
    now = build(late);
  }
}

/**
 * The activation buffer the schedule needs per die with nothing held for overlap: every
 * Linear backward in Algorithm 1's order, and every buffer held from its first access to its
 * last (no DRAM read or written-back value reserved for the whole mini-batch). The programs'
 * own peak also counts what the allocator reserves, where it fits, so that DRAM and NoP
 * traffic can run beside compute; it sits at the capacity whenever there is room.
 */
export function activationNeed(m: Module, target: Target, strategy: Strategy, minibatch?: number): number {
  const a = analyse(m, target, minibatch);
  const b = new Builder(a, target, strategy);
  for (const stage of a.stages) b.top.push(...new StageEmitter(b, stage).run());
  return finish(b.top, b.buffers, target, false).activation;
}

/**
 * The programs with the Linear backwards in `late` in Algorithm 1's order; and each stage whose
 * loop overflows `capacity`, with the Linears it gathers early.
 */
function emitPrograms(
  m: Module,
  target: Target,
  strategy: Strategy,
  overlap: boolean,
  minibatch: number | undefined,
  late: ReadonlySet<Op>,
  capacity: number,
): { set: ProgramSet; over: Map<number, StageEmitter['early']> } {
  const a = analyse(m, target, minibatch);
  const b = new Builder(a, target, strategy);
  const loops: [SNode, number, StageEmitter['early']][] = [];
  const orders = { early: 0, ordered: 0 };
  a.stages.forEach((stage, i) => {
    const emitter = new StageEmitter(b, stage, (op) => late.has(op));
    const nodes = emitter.run();
    for (const n of nodes) if (n.fixed.kind === 'loop') loops.push([n, i, emitter.early]);
    orders.early += emitter.early.length;
    orders.ordered += emitter.ordered;
    b.top.push(...nodes);
  });
  if (!overlap) serializeDram(b.top, null);
  const peak = finish(b.top, b.buffers, target);
  const over = new Map<number, StageEmitter['early']>();
  if (peak.activation > capacity) {
    for (const [loop, stage, early] of loops) {
      if (b.buffers.some((x) => x.kind === 'activation' && x.live[0] <= loop.end && x.live[1] >= loop.id && x.offset + x.bytes > capacity)) over.set(stage, early);
    }
  }
  const set = new Programs(m.name, target, strategy, a, b.top, b.buffers, peak, [...b.layouts.values()]);
  ORDERS.set(set, orders);
  return { set, over };
}

export const schedule: Pass = {
  name: 'schedule',
  summary: 'order each die’s work into loops over mini-batches, allocate its buffers and emit its program',
  options: {
    overlap: { kind: 'bool', default: true, doc: 'false: DRAM transfers wait for on-package work and the reverse (no §III-B a overlap)' },
  },
  requires: ['collectives.count'],
  establishes: ['schedule.programs'],
  run(m, ctx, options) {
    const cap = bufferCapacity(ctx.target);
    const set = fitMinibatch(m, ctx.target, ctx.strategy, options.overlap as boolean, cap.activation, (line) => ctx.report('schedule', line));
    checkVectorOps(set, ctx.target);
    PROGRAMS.set(m, set);
    const { activation, weight } = set.peak;
    const ok = activation <= cap.activation && weight <= cap.weight;
    Object.assign(m.notes, {
      'schedule.programs': set.grid.rows * set.grid.cols,
      'schedule.instructions_per_die': set.instructionsPerDie,
      'schedule.activation_peak_bytes': activation,
      'schedule.weight_peak_bytes': weight,
      'schedule.sram_ok': ok,
    });
    ctx.report(
      'schedule',
      `${set.grid.rows * set.grid.cols} programs of ${set.instructionsPerDie} instructions; peak SRAM per die: activation ${bytes(activation)} of ${bytes(cap.activation)}, ` +
        `weight ${bytes(weight)} of ${bytes(cap.weight)}${ok ? '' : ' (overflows)'}`,
    );
    const o = ORDERS.get(set);
    if (o && o.early + o.ordered > 0) {
      ctx.report(
        'schedule',
        `${o.early} of ${o.early + o.ordered} Linear backwards gather x while dx is computed and reduce dx while dw is` +
          (o.ordered > 0 ? `; ${o.ordered} keep Algorithm 1's order (reduce dx, then gather x), where holding x, dy and dx at once would overflow` : ''),
      );
    }
    const t = set.totalsFor({ i: 0, j: 0 });
    ctx.report('schedule', `die [0, 0] per iteration: DRAM ${bytes(t.dramReadBytes)} read and ${bytes(t.dramWriteBytes)} written, ${bytes(t.sentBytes)} sent, ${t.macs.toExponential(3)} MACs`);
  },
};
