// qkv: the projections that make one attention core's queries, keys and values from the same
// input become one Linear whose output is split, as the paper's analysis takes them (one
// W_QKV and one reduce-scatter T_RS_QKV, eq. (4)) and as Megatron-LM lays them out (its
// `linear_qkv`). A model written with separate wq, wk and wv (as Llama's reference code is)
// then moves the same bytes in one collective instead of three, forward and
// backward: on Llama2-70B over 32×32 dies, two reduce-scatters over 32 dies fewer forward and
// two all-gathers fewer backward per mini-batch, each 31 ring steps of link latency.
//
// The weights stay the model's parameters: the fused Linear reads a `concat` of them, a weight
// view that tile2d runs beside DRAM, and the train pass's rule for concat splits the fused
// weight gradient back into one gradient per parameter. Biases, when every projection has
// one, are concatenated alike. Projections reach the core directly or through rotary
// embeddings (on q and k); the split's pieces take the Linears' places.
// Runs on the forward graph, before train.

import type { Module, Op, Value } from '../ir/module.js';
import type { Pass } from './pass.js';

export interface FusedProjections {
  /** Attention cores whose projections became one Linear. */
  readonly cores: number;
  /** Linears removed (each core's projections less the one that replaces them). */
  readonly removed: number;
}

export function fuseProjections(m: Module): FusedProjections {
  let cores = 0;
  let removed = 0;
  for (const core of m.ops().filter((op) => op.kind === 'attention')) {
    const groups = siblingProjections(m, core).filter((g) => g.length >= 2);
    for (const g of groups) {
      fuse(m, core, g);
      removed += g.length - 1;
    }
    if (groups.length) cores++;
  }
  return { cores, removed };
}

/**
 * The Linears behind a core's q, k and v (in that order, each once, results used only on the
 * way to this core), grouped by what they read: one input, with biases all present or all
 * absent. Cross-attention's keys and values form a group without its queries.
 */
function siblingProjections(m: Module, core: Op): Op[][] {
  const groups = new Map<string, Op[]>();
  for (const v of core.operands.slice(0, 3)) {
    const l = projectionBehind(m, v, core);
    if (!l || l.operands[1]!.type.shape.length !== 2) continue;
    const key = `${l.operands[0]!.id}/${l.operands.length}`;
    const group = groups.get(key) ?? [];
    if (!group.includes(l)) group.push(l);
    groups.set(key, group);
  }
  return [...groups.values()];
}

/** The Linear making `v`, directly or through rotary embeddings, each result used only on the way. */
function projectionBehind(m: Module, v: Value, core: Op): Op | undefined {
  let cur = v;
  let next = core;
  for (;;) {
    const users = m.users(cur);
    const op = cur.def;
    if (users.length !== 1 || users[0] !== next || m.outputs.includes(cur) || !op) return undefined;
    if (op.kind === 'linear') return op;
    if (op.kind !== 'rope') return undefined;
    next = op;
    cur = op.operands[0]!;
  }
}

/** Replace `linears` (same input) by one Linear over their concatenated weights and a split. */
function fuse(m: Module, core: Op, linears: readonly Op[]): void {
  const first = linears[0]!;
  const at = { loc: first.loc, layer: first.layer };
  const weights = linears.map((l) => l.operands[1]!);
  const prefix = commonPrefix(weights);
  const w = m.addOp('concat', weights, { axis: 1 }, { ...at, names: [prefix + joinedTails(weights)] }).results[0]!;
  const operands = [first.operands[0]!, w];
  if (first.operands.length === 3) {
    const biases = linears.map((l) => l.operands[2]!);
    operands.push(m.addOp('concat', biases, { axis: 0 }, { ...at, names: [commonPrefix(biases) + joinedTails(biases)] }).results[0]!);
  }
  const y = m.addOp('linear', operands, {}, { ...at, names: [prefix + 'qkv'] }).results[0]!;
  const roles = linears.map((l) => [0, 1, 2].filter((i) => feeds(m, l.results[0]!, core, i)).map((i) => 'qkv'[i]).join(''));
  const sizes = weights.map((x) => x.type.shape[1]!);
  const split = m.addOp('split', [y], { axis: -1, sizes }, { ...at, names: roles.map((r) => prefix + r) });
  linears.forEach((l, i) => {
    m.replaceAllUses(l.results[0]!, split.results[i]!);
    m.removeOp(l);
  });
  // The pieces take the names the projections' results had, free now (layer.1.q, not layer.1.q.1).
  linears.forEach((l, i) => m.rename(split.results[i]!, l.results[0]!.name));
}

/** Whether `v` reaches operand `i` of `core` (through the single-use chain projectionBehind walked). */
function feeds(m: Module, v: Value, core: Op, i: number): boolean {
  let cur = v;
  while (cur !== core.operands[i]) {
    const user = m.users(cur)[0];
    if (!user || user === core) return false;
    cur = user.results[0]!;
  }
  return true;
}

/** The dotted prefix the names share (`layer.3.` for layer.3.wq, layer.3.wk), with its dot. */
function commonPrefix(values: readonly Value[]): string {
  const parts = values.map((v) => v.name.split('.'));
  let n = 0;
  while (n < parts[0]!.length - 1 && parts.every((p) => n < p.length - 1 && p[n] === parts[0]![n])) n++;
  return n ? parts[0]!.slice(0, n).join('.') + '.' : '';
}

/** What follows the common prefix of each name, joined: `wq_wk_wv`. */
function joinedTails(values: readonly Value[]): string {
  const skip = commonPrefix(values).length;
  return values.map((v) => v.name.slice(skip).replaceAll('.', '_')).join('_');
}

export const qkv: Pass = {
  name: 'qkv',
  summary: "fuse the projections that feed one attention core from one input into one Linear (the paper's W_QKV)",
  options: {},
  requires: [],
  establishes: ['qkv.fused'],
  run(m, ctx) {
    // After train the backward graph holds the projections' gradients: left as is.
    if (m.notes['train.mode'] !== undefined) {
      ctx.report('qkv', 'the module is already a training graph: projections left as they are');
      return;
    }
    const done = fuseProjections(m);
    m.notes['qkv.fused'] = done.cores;
    ctx.report('qkv', done.cores ? `${done.cores} attention cores: their projections read one concatenated weight (${done.removed} Linears fewer)` : 'no attention core has separate projections from one input');
  },
};
