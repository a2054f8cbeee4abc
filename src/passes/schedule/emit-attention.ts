// schedule/emit-attention: the attention core's instructions (forward and backward) on this
// die's heads, with the all-reduce of partial scores when a head is split over several dies.
// A layer of the stage emitter between emit-values.ts and emit-ops.ts.

import type { Op } from '../../ir/module.js';
import { blockIndex, span, tileOf, type Axis, type Die, type Grid, type Sharding } from '../sharding.js';
import type { Range } from '../../backend/program.js';
import { dieAtBlock, elemBytes, even, len } from './geometry.js';
import { originOf, type Buf, type GemmFields, type GroupFields, type Origin, type Static, type VectorFields } from './skeleton.js';
import type { ChunkPlan, Operands, Place } from './emit.js';
import { ValueEmitter } from './emit-values.js';

/** This die's part of an attention core: query rows, q columns, heads (or one head's slice) and their width. */
interface HeadTile {
  readonly rows: number;
  readonly qc: number;
  readonly hd: number;
  readonly kd: number;
}

interface AttentionCore {
  readonly geo: (die: Die) => HeadTile;
  readonly scores: Buf;
  /** Key length. */
  readonly t: number;
  readonly qs: Sharding;
  readonly origin: Origin;
  readonly uniform: boolean;
  /** Backward needs dP and the softmax gradient (dq or dk requested). */
  readonly needsDs: boolean;
  readonly vectorFlops: number;
  /** This die's share of the op's work. */
  readonly share: (g: HeadTile) => number;
}

/** Emits attention ops (see ValueEmitter for the stage's state). */
export class AttentionEmitter extends ValueEmitter {
  /**
   * The attention core on this die's heads (whole heads, or a slice of one when dies outnumber
   * heads): q·kᵀ into a score buffer, softmax there, then p·v. Backward follows the op
   * table's work: dP, the softmax gradient, and one GEMM per requested gradient. A head split
   * over several dies all-reduces its partial scores (forward) or dP (backward).
   */
  protected emitAttention(op: Op, ins: Operands, place: Place, chunk?: ChunkPlan): void {
    const core = this.attentionCore(op, place);
    const { geo, scores, t } = core;
    const gemm = (name: string, reads: Buf[], out: Buf, dims: (g: HeadTile) => GemmFields) =>
      this.b.node(place, core.origin, { kind: 'gemm', op: `${op.kind}:${name}`, accumulate: false, dims: (die) => dims(geo(die)) }, reads, [out], core.uniform);
    const [qb, kb, vb] = [ins(0), ins(1), ins(2)];
    const mask = op.operands.length === (op.kind === 'attention' ? 4 : 5) ? ins(3) : [];
    if (op.kind === 'attention') {
      gemm('qk', [...qb, ...kb], scores, (g) => ({ batch: g.hd, m: g.rows, n: t, k: g.kd }));
      this.softmax(op, core, place, mask);
      gemm('pv', [scores, ...vb], this.result(op, 0, place, chunk), (g) => ({ batch: g.hd, m: g.rows, n: g.kd, k: t }));
      return;
    }
    const dy = ins(op.operands.length - 1);
    if (core.needsDs) {
      gemm('dp', [...dy, ...vb], scores, (g) => ({ batch: g.hd, m: g.rows, n: t, k: g.kd }));
      this.softmax(op, core, place, mask);
    }
    (op.attrs.wrt as readonly number[]).forEach((which, i) => {
      const out = this.result(op, i, place, chunk);
      if (which === 0) gemm('dq', [scores, ...kb], out, (g) => ({ batch: g.hd, m: g.rows, n: g.kd, k: t }));
      else if (which === 1) gemm('dk', [scores, ...qb], out, (g) => ({ batch: g.hd, m: t, n: g.kd, k: g.rows }));
      else gemm('dv', [scores, ...dy], out, (g) => ({ batch: g.hd, m: t, n: g.kd, k: g.rows }));
    });
  }

  /** What an attention core does on each die, and its score buffer (sized for the largest tile). */
  private attentionCore(op: Op, place: Place): AttentionCore {
    const { a } = this.b;
    const q = op.operands[0]!;
    const qs = a.specs.in(op)[0]!;
    const [b, s, hq] = q.type.shape as [number, number, number];
    const t = op.operands[1]!.type.shape[1]!;
    const d = hq / (op.attrs.heads as number);
    const rs = a.batched.has(q) ? place.rowScale : 1;
    const geo = (die: Die): HeadTile => {
      const tile = tileOf(q.type, qs, a.grid, die);
      const qc = len(tile.cols);
      return { rows: len(tile.rows) * rs, qc, hd: qc >= d ? qc / d : 1, kd: Math.min(qc, d) };
    };
    const most = { rows: Math.ceil((b * s) / span(qs.rows, a.grid)) * rs, qc: Math.ceil(hq / span(qs.cols, a.grid)) };
    const name = `${op.results[0]!.name}.scores`;
    const scores = this.b.buffer(name, 'activation', Math.max(1, most.qc / d) * most.rows * t * elemBytes(q.type), name, false);
    const wrt = (op.attrs.wrt as readonly number[] | undefined) ?? [];
    const needsDs = wrt.includes(0) || wrt.includes(1);
    const gemms = op.kind === 'attention' ? 2 : wrt.length + (needsDs ? 1 : 0);
    // The op table's work less its GEMMs (2 FLOPs a MAC) is the softmax (or its gradient).
    const vectorFlops = Math.max(0, this.opFlops(op) - 2 * gemms * b * s * t * hq);
    return { geo, scores, t, qs, origin: originOf(op), uniform: even(q.type, qs, a.grid), needsDs, vectorFlops, share: (g) => (g.rows * g.qc) / (b * s * hq) };
  }

  private softmax(op: Op, core: AttentionCore, place: Place, mask: Buf[]): void {
    this.headReduce(op, core.scores, place, core.qs);
    const work = (die: Die): VectorFields => {
      const g = core.geo(die);
      return { elements: g.hd * g.rows * core.t, flops: core.vectorFlops * core.share(g) };
    };
    this.b.node(place, core.origin, { kind: 'vector', op: `${op.kind}:softmax`, accumulate: false, work }, [core.scores, ...mask], [core.scores], core.uniform);
  }

  /** The all-reduce of partial scores among the dies sharing one head (collectives' `attention.*` notes). */
  private headReduce(op: Op, scores: Buf, place: Place, qs: Sharding): void {
    const notes = op.notes ?? {};
    const perHead = notes['attention.head_dies'];
    if (typeof perHead !== 'number' || perHead <= 1) return;
    const { a } = this.b;
    const scale = (a.batched.has(op.operands[0]!) ? place.rowScale : 1) / place.chunks;
    const fixed: Static = {
      kind: 'collective',
      op: 'all_reduce',
      algo: 'ring',
      axis: qs.cols.join(''),
      sentBytes: (notes['attention.sent_bytes'] as number) * scale,
      linkBytes: (notes['attention.link_bytes'] as number) * scale,
      steps: notes['attention.steps'] as number,
      partOf: op.kind,
      ring: `heads ${qs.cols.join('')} ${perHead}`,
      members: (die) => headMembers(`${op.results[0]!.name}.scores`, qs.cols, perHead, a.grid, die),
    };
    this.b.node(place, originOf(op), fixed, [scores], [scores], true);
  }
}

/** The dies holding slices of the same head: consecutive blocks of the head axes. */
function headMembers(name: string, axes: readonly Axis[], perHead: number, grid: Grid, die: Die): GroupFields {
  const idx = blockIndex(axes, grid, die);
  const first = Math.floor(idx / perHead) * perHead;
  const last = Math.min(span(axes, grid), first + perHead);
  const group: Range[] = [];
  for (let k = first; k < last; k++) {
    const d = dieAtBlock(axes, grid, k, die);
    group.push([d.i, d.j]);
  }
  const other = axes.length === 2 ? '' : axes[0] === 'r' ? ` col ${die.j}` : ` row ${die.i}`;
  return { cid: `${name} heads ${first / perHead}${other}`, group, position: idx - first };
}
