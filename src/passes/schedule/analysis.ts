// schedule/analysis: which values scale with the batch, where every die op runs (its stage and
// the part of it: prologue, mini-batch loop or epilogue), and which values go to DRAM. Computed
// once per module before any instruction is emitted, so emission only follows its decisions.

import type { Module, Op, Value } from '../../ir/module.js';
import { opDef } from '../../ir/ops.js';
import { assert } from '../../diagnostics/diagnostic.js';
import type { Target } from '../../target/target.js';
import { parseSharding, type Grid, type Sharding } from '../sharding.js';
import { tileElems } from './geometry.js';
import { activationValues } from '../activations.js';
import { gridOf } from '../balance.js';

/** Where in a stage an op runs: before its mini-batch loop, in it, or after it. */
const PARTS = ['prologue', 'body', 'epilogue'] as const;
type StagePart = (typeof PARTS)[number];

/** A place in the program order: a stage and a part of it. */
interface Slot {
  readonly stage: number;
  readonly part: StagePart;
}

export interface StagePlan {
  readonly index: number;
  readonly phase: 'fwd' | 'bwd';
  readonly prologue: readonly Op[];
  readonly body: readonly Op[];
  readonly epilogue: readonly Op[];
}

export interface Analysis {
  readonly m: Module;
  readonly grid: Grid;
  readonly batch: number;
  readonly size: number;
  readonly count: number;
  readonly lastSize: number;
  readonly batched: ReadonlySet<Value>;
  readonly slots: ReadonlyMap<Op, Slot>;
  readonly stages: readonly StagePlan[];
  /** Values written to DRAM, each mapped to the logical tensor (root) it is a layout of. */
  readonly writes: ReadonlyMap<Value, Value>;
  readonly specs: SpecCache;
}

export function isDramSide(op: Op): boolean {
  return op.notes?.['tile2d.dram'] === true;
}

export function isCollective(op: Op): boolean {
  return opDef(op.kind).category === 'collective';
}

/** The value a chain of collectives started from: collectives change layouts, not tensors. */
export function rootOf(v: Value): Value {
  let r = v;
  while (r.def && isCollective(r.def)) r = r.def.operands[0]!;
  return r;
}

export class SpecCache {
  private readonly cache = new Map<Op, { in: (Sharding | undefined)[]; out: Sharding[] }>();
  /** Parsed spec lists by note text: a few dozen texts serve every op (the lists are only read). */
  private readonly lists = new Map<string, (Sharding | undefined)[]>();

  /** One spec per operand (undefined: read from DRAM as it lies), from tile2d's notes. */
  in(op: Op): (Sharding | undefined)[] {
    return this.get(op).in;
  }

  out(op: Op): Sharding[] {
    return this.get(op).out;
  }

  private get(op: Op): { in: (Sharding | undefined)[]; out: Sharding[] } {
    let s = this.cache.get(op);
    if (!s) {
      const list = (key: string) => {
        const t = op.notes?.[key];
        if (typeof t !== 'string') assert(false, `${op.kind} '${op.results[0]?.name}' has no ${key} note: run tile2d first`);
        let specs = this.lists.get(t);
        if (specs === undefined) {
          specs = t.split('; ').map((x) => (x === 'dram' ? undefined : parseSharding(x)));
          this.lists.set(t, specs);
        }
        return specs;
      };
      s = { in: op.operands.length ? list('tile2d.in') : [], out: list('tile2d.out') as Sharding[] };
      this.cache.set(op, s);
    }
    return s;
  }
}

function isBatchedOp(op: Op, batched: ReadonlySet<Value>): boolean {
  return op.operands.some((v) => batched.has(v)) || op.results.some((v) => batched.has(v));
}

function laterSlot(a: Slot, b: Slot): Slot {
  if (a.stage !== b.stage) return a.stage > b.stage ? a : b;
  return PARTS.indexOf(a.part) >= PARTS.indexOf(b.part) ? a : b;
}

/**
 * Stage of each die op: forward group g is stage g; backward group g is stage 2G−1−g (Fig. 5:
 * backward runs the groups in reverse); updates join their group's backward stage. Batched work
 * runs in the stage's loop; the rest before it (a weight's collectives: once, reused by every
 * mini-batch) or, when it needs the loop's accumulated results or is an update, after it. An op
 * never runs before what it reads: it moves to its producers' place when the notes say earlier.
 */
function assignSlots(m: Module, batched: ReadonlySet<Value>): Map<Op, Slot> {
  const groups = (m.notes['fuse.groups'] as number | undefined) ?? 1;
  const slots = new Map<Op, Slot>();
  const beside = new Map<Op, Slot>();
  for (const op of m.ops()) {
    let s: Slot | undefined;
    for (const v of op.operands) {
      const p = v.def && (slots.get(v.def) ?? beside.get(v.def));
      if (p) s = s ? laterSlot(s, p) : p;
    }
    if (isDramSide(op)) {
      // DRAM-side work runs once its die-made inputs are complete: after their loop.
      if (s) beside.set(op, { stage: s.stage, part: 'epilogue' });
      continue;
    }
    const group = (op.notes?.['fuse.group'] as number | undefined) ?? 0;
    const phase = op.notes?.['train.phase'] ?? 'fwd';
    const perBatch = isBatchedOp(op, batched);
    const noted: Slot = { stage: phase === 'fwd' ? group : 2 * groups - 1 - group, part: phase === 'update' ? 'epilogue' : perBatch ? 'body' : 'prologue' };
    s = s ? laterSlot(s, noted) : noted;
    if (perBatch && s.part === 'epilogue') s = { stage: s.stage + 1, part: 'body' };
    if (!perBatch && s.part === 'body') s = { stage: s.stage, part: 'epilogue' };
    slots.set(op, s);
  }
  return slots;
}

function planStages(m: Module, slots: ReadonlyMap<Op, Slot>): StagePlan[] {
  const groups = (m.notes['fuse.groups'] as number | undefined) ?? 1;
  const byStage = new Map<number, Record<StagePart, Op[]>>();
  for (const op of m.ops()) {
    const s = slots.get(op);
    if (!s) continue;
    const st = byStage.get(s.stage) ?? { prologue: [], body: [], epilogue: [] };
    st[s.part].push(op);
    byStage.set(s.stage, st);
  }
  return [...byStage.entries()]
    .sort((a, b) => a[0] - b[0])
    .map(([index, st]) => ({ index, phase: index < groups ? 'fwd' : 'bwd', ...st }));
}

/** A value and every layout of it the collectives made (breadth-first from the value). */
function family(m: Module, v: Value): Value[] {
  const out = [v];
  for (let i = 0; i < out.length; i++) {
    for (const u of m.users(out[i]!)) if (isCollective(u)) out.push(u.results[0]!);
  }
  return out;
}

/**
 * Which die-made values go to DRAM: those read by a later stage, by DRAM-side ops or as
 * outputs. Of all the layouts its own stage made, the whole one (no partial sum) with the
 * smallest tiles is written, so DRAM holds the tensor once.
 */
function chooseWrites(m: Module, slots: ReadonlyMap<Op, Slot>, specs: SpecCache, grid: Grid): Map<Value, Value> {
  const writes = new Map<Value, Value>();
  const outputs = new Set(m.outputs);
  const stageOf = (v: Value) => slots.get(v.def!)?.stage;
  for (const op of slots.keys()) {
    if (isCollective(op)) continue;
    for (const root of op.results) {
      const fam = family(m, root);
      const leaves = (f: Value) => outputs.has(f) || m.users(f).some((u) => isDramSide(u) || slots.get(u)!.stage !== stageOf(f));
      if (!fam.some(leaves)) continue;
      const home = fam.filter((f) => stageOf(f) === stageOf(root));
      const cost = (f: Value) => {
        const s = specs.out(f.def!)[f.def!.results.indexOf(f)]!;
        return (s.partial.length ? 1e30 : 0) + tileElems(f.type, s, grid);
      };
      const best = home.reduce((a, b) => (cost(b) < cost(a) ? b : a));
      writes.set(best, root);
    }
  }
  return writes;
}

/** `minibatch`: samples per mini-batch; by default the minibatch pass's choice. */
export function analyse(m: Module, target: Target, minibatch?: number): Analysis {
  const grid = gridOf(target, m);
  const batch = (m.notes['minibatch.batch'] as number | undefined) ?? m.inputs[0]?.type.shape[0] ?? 1;
  const size = Math.min(batch, minibatch ?? (m.notes['minibatch.size'] as number | undefined) ?? batch);
  const count = Math.ceil(batch / size);
  const batched = activationValues(m);
  const slots = assignSlots(m, batched);
  const specs = new SpecCache();
  return {
    m,
    grid,
    batch,
    size,
    count,
    lastSize: batch - (count - 1) * size,
    batched,
    slots,
    stages: planStages(m, slots),
    writes: chooseWrites(m, slots, specs, grid),
    specs,
  };
}
