// schedule/emit-attention: the attention core's instructions (forward and backward) on this
// die's heads, with the all-reduce of partial scores when a head is split over several dies.
// A layer of the stage emitter between emit-values.ts and emit-ops.ts.

import type { Op } from '../../ir/module.js';
import { formatSharding, specMaxBlock, tileOf, type Die, type Sharding } from '../sharding.js';
import { headReduceCost, stepAlgorithm } from '../collective-cost.js';
import { elemBytes, even, len, runMembers } from './geometry.js';
import { originOf, type Buf, type CollectiveSize, type GemmFields, type Origin, type Static, type VectorFields } from './skeleton.js';
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
  /** The largest tile's query rows and heads (buffer sizes). */
  readonly most: { readonly rows: number; readonly heads: number };
  /** Key length. */
  readonly t: number;
  readonly qs: Sharding;
  readonly origin: Origin;
  readonly uniform: boolean;
  /** Backward needs dP and the softmax gradient (dq or dk requested). */
  readonly needsDs: boolean;
  readonly vectorFlops: number;
  /** Of which the softmax (forward, or recomputed in backward). */
  readonly softmaxFlops: number;
  /** This die's share of the op's work. */
  readonly share: (g: HeadTile) => number;
}

/** Emits attention ops (see ValueEmitter for the stage's state). */
export class AttentionEmitter extends ValueEmitter {
  /**
   * The attention core on this die's heads (whole heads, or a slice of one when dies outnumber
   * heads): q·kᵀ into a score buffer, softmax there (scale, causal and given masks), then p·v.
   * Backward recomputes the scores and probabilities (they are not kept from forward), then
   * for dq or dk computes dP = dy·vᵀ into a second buffer and the softmax gradient there (dS,
   * scale included), and one GEMM per requested gradient: dq = dS·k, dk = dSᵀ·q, dv = pᵀ·dy.
   * A head split over several dies all-reduces its partial scores and partial dP.
   */
  protected emitAttention(op: Op, ins: Operands, place: Place, chunk?: ChunkPlan): void {
    const core = this.attentionCore(op, place);
    const { geo, scores, t } = core;
    const gemm = (name: string, reads: Buf[], out: Buf, dims: (g: HeadTile) => GemmFields) =>
      this.b.node(place, core.origin, { kind: 'gemm', op: `${op.kind}:${name}`, accumulate: false, dims: (die) => dims(geo(die)), ir: this.irOf(op) }, reads, [out], core.uniform);
    const [qb, kb, vb] = [ins(0), ins(1), ins(2)];
    const mask = op.operands.length === (op.kind === 'attention' ? 4 : 5) ? ins(3) : [];
    gemm('qk', [...qb, ...kb], scores, (g) => ({ batch: g.hd, m: g.rows, n: t, k: g.kd }));
    this.headReduce(op, scores, place, core);
    this.softmaxStep(op, core, place, 'softmax', [scores, ...mask], scores, core.softmaxFlops);
    if (op.kind === 'attention') {
      gemm('pv', [scores, ...vb], this.result(op, 0, place, chunk), (g) => ({ batch: g.hd, m: g.rows, n: g.kd, k: t }));
      return;
    }
    const dy = ins(op.operands.length - 1);
    const ds = core.needsDs ? this.scoreBuffer(op, 'dscores', core.most, t) : undefined;
    if (ds) {
      gemm('dp', [...dy, ...vb], ds, (g) => ({ batch: g.hd, m: g.rows, n: t, k: g.kd }));
      this.headReduce(op, ds, place, core);
      this.softmaxStep(op, core, place, 'softmax_grad', [scores, ds], ds, core.vectorFlops - core.softmaxFlops);
    }
    (op.attrs.wrt as readonly number[]).forEach((which, i) => {
      const out = this.result(op, i, place, chunk);
      if (which === 0) gemm('dq', [ds!, ...kb], out, (g) => ({ batch: g.hd, m: g.rows, n: g.kd, k: t }));
      else if (which === 1) gemm('dk', [ds!, ...qb], out, (g) => ({ batch: g.hd, m: t, n: g.kd, k: g.rows }));
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
    const heads = op.attrs.heads as number;
    const d = hq / heads;
    const rs = a.batched.has(q) ? place.rowScale : 1;
    const geo = (die: Die): HeadTile => {
      const tile = tileOf(q.type, qs, a.grid, die);
      const qc = len(tile.cols);
      return { rows: len(tile.rows) * rs, qc, hd: qc >= d ? qc / d : 1, kd: Math.min(qc, d) };
    };
    const most = { rows: specMaxBlock(b * s, qs, 'rows', a.grid) * rs, heads: Math.max(1, specMaxBlock(hq, qs, 'cols', a.grid) / d) };
    const scores = this.scoreBuffer(op, 'scores', most, t);
    const wrt = (op.attrs.wrt as readonly number[] | undefined) ?? [];
    const needsDs = wrt.includes(0) || wrt.includes(1);
    const gemms = op.kind === 'attention' ? 2 : 1 + wrt.length + (needsDs ? 1 : 0);
    // The op table's work less its GEMMs (2 FLOPs a MAC) is the softmax (and its gradient).
    const vectorFlops = Math.max(0, this.opFlops(op) - 2 * gemms * b * s * t * hq);
    const softmaxFlops = Math.min(vectorFlops, 5 * b * heads * s * t);
    return { geo, scores, most, t, qs, origin: originOf(op), uniform: even(q.type, qs, a.grid), needsDs, vectorFlops, softmaxFlops, share: (g) => (g.rows * g.qc) / (b * s * hq) };
  }

  /** Scratch space for this die's scores: heads × query rows × keys. */
  private scoreBuffer(op: Op, what: string, most: { rows: number; heads: number }, t: number): Buf {
    const name = `${op.results[0]!.name}.${what}`;
    return this.b.buffer(name, 'activation', most.heads * most.rows * t * elemBytes(op.operands[0]!.type), name, false, null);
  }

  private softmaxStep(op: Op, core: AttentionCore, place: Place, step: string, reads: Buf[], out: Buf, flops: number): void {
    const work = (die: Die): VectorFields => {
      const g = core.geo(die);
      return { elements: g.hd * g.rows * core.t, flops: flops * core.share(g) };
    };
    this.b.node(place, core.origin, { kind: 'vector', op: `${op.kind}:${step}`, accumulate: false, work, ir: this.irOf(op) }, reads, [out], core.uniform);
  }

  /**
   * The all-reduce of partial scores among the dies sharing one head (collectives' `attention.*`
   * notes). Heads dealt unevenly (granules) are shared by runs of different lengths, each die's
   * run as many dies as its slice of a head is narrower than the head.
   */
  private headReduce(op: Op, scores: Buf, place: Place, core: AttentionCore): void {
    const notes = op.notes ?? {};
    const most = notes['attention.head_dies'];
    if (typeof most !== 'number' || most <= 1) return;
    const { a } = this.b;
    const { qs } = core;
    const scale = (a.batched.has(op.operands[0]!) ? place.rowScale : 1) / place.chunks;
    const width = op.operands[0]!.type.shape.at(-1)! / (op.attrs.heads as number);
    const runOf = (die: Die) => (qs.granules ? Math.max(1, width / core.geo(die).qc) : most);
    const sizes = new Map<number, CollectiveSize>();
    const sized = (die: Die): CollectiveSize => {
      const run = runOf(die);
      let z = sizes.get(run);
      if (z === undefined) {
        const c = headReduceCost(op, run, this.b.strategy, qs.cols, a.grid, this.b.target);
        z = { sentBytes: c.sentBytes * scale, linkBytes: c.linkBytes * scale, steps: c.steps };
        sizes.set(run, z);
      }
      return z;
    };
    const fixed: Static = {
      kind: 'collective',
      op: 'all_reduce',
      algo: stepAlgorithm(this.b.strategy, 'all_reduce', qs.cols, most, a.grid, true),
      axis: qs.cols.join(''),
      sentBytes: (notes['attention.sent_bytes'] as number) * scale,
      linkBytes: (notes['attention.link_bytes'] as number) * scale,
      steps: notes['attention.steps'] as number,
      partOf: op.kind,
      ring: `heads ${qs.cols.join('')} ${qs.granules ? formatSharding(qs) : most}`,
      members: (die) => runMembers(`${scores.name} heads${qs.granules ? `/${runOf(die)}` : ''}`, qs.cols, runOf(die), a.grid, die),
      ...(qs.granules ? { sized } : {}),
    };
    this.b.node(place, originOf(op), fixed, [scores], [scores], !qs.granules);
  }
}
