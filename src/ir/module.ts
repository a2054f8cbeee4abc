// The IR module: a bipartite dataflow graph of values and ops. Each op lists its operands
// (by position, so `mul(x, x)` keeps both uses) and its results; the module keeps, per value,
// the ops that use it (each once, by creation order), which is all the graph queries need.
// (The graph was first held in @dagrejs/graphlib; its string-keyed nodes and edges cost a
// quarter of a large compile, so the adjacency is now kept directly, with the same answers.)
// Ops are created only from values that already exist, and every query that lists ops
// returns one deterministic topological order (ties broken by creation order), so printing
// and every pass see the same sequence on every run.

import { OpError, resolveAttrs, type AttrValue, type Attrs } from './attrs.js';
import { checkArity, opDef, type OpKind } from './ops.js';
import type { TensorType } from './types.js';
import { assert, errorAt, type SourceLoc } from '../diagnostics/diagnostic.js';

/**
 * input: fed by the host each iteration; param: a trainable weight; state: optimizer state
 * kept in DRAM beside the weights (Adam moments); const: known numbers; result: an op's.
 */
export type ValueKind = 'input' | 'param' | 'state' | 'const' | 'result';

/** Pass-owned annotations (fusion group, tiling, ...): printed and parsed, never semantic. */
export type Notes = Record<string, AttrValue>;

export interface Value {
  readonly id: number;
  readonly kind: ValueKind;
  name: string;
  type: TensorType;
  /** The op that produces a `result`; undefined for inputs, params and consts. */
  def: Op | undefined;
  /** Contents of a `const`, row-major. */
  data?: readonly number[];
  loc?: SourceLoc;
}

export interface Op {
  readonly id: number;
  readonly kind: OpKind;
  operands: Value[];
  results: Value[];
  attrs: Attrs;
  loc?: SourceLoc;
  /** Index of the Transformer layer the op belongs to, when the frontend knows it. */
  layer?: number;
  /** Annotations added by passes, keyed `pass.field` (e.g. `fuse.group`). */
  notes?: Notes;
}

export interface OpOptions {
  /** Names of the results, in order; defaults derive from the op kind. */
  readonly names?: readonly string[];
  readonly loc?: SourceLoc | undefined;
  readonly layer?: number | undefined;
}

export class Module {
  readonly inputs: Value[] = [];
  readonly params: Value[] = [];
  readonly states: Value[] = [];
  readonly consts: Value[] = [];
  /** Module-level annotations added by passes (e.g. `minibatch.size`). */
  readonly notes: Notes = {};
  outputs: Value[] = [];

  /** Every value of the module, with the ops using it: each once, by id (creation order). */
  private readonly userLists = new Map<Value, Op[]>();
  /** Every op of the module, in creation order. */
  private readonly opSet = new Set<Op>();
  private readonly names = new Set<string>();
  /** Per base name, a suffix below which every `base.i` is taken (uniqueName; reset on removal). */
  private readonly nextSuffix = new Map<string, number>();
  private nextId = 0;
  private orderCache: Op[] | undefined;

  constructor(public name: string) {}

  // -- construction -----------------------------------------------------------------------

  addInput(name: string, type: TensorType, loc?: SourceLoc): Value {
    const v = this.newValue('input', name, type, loc);
    this.inputs.push(v);
    return v;
  }

  addParam(name: string, type: TensorType, loc?: SourceLoc): Value {
    const v = this.newValue('param', name, type, loc);
    this.params.push(v);
    return v;
  }

  addState(name: string, type: TensorType, loc?: SourceLoc): Value {
    const v = this.newValue('state', name, type, loc);
    this.states.push(v);
    return v;
  }

  addConst(name: string, type: TensorType, data: readonly number[], loc?: SourceLoc): Value {
    const v = this.newValue('const', name, type, loc);
    v.data = [...data];
    this.consts.push(v);
    return v;
  }

  /**
   * Add an op: checks the operand count, validates and completes the attributes, and infers
   * the result types from the op table. Bad operands or attributes are user errors located at
   * `opts.loc`.
   */
  addOp(kind: OpKind, operands: readonly Value[], attrs: Attrs = {}, opts: OpOptions = {}): Op {
    const def = opDef(kind);
    let resolved: Attrs;
    let types: TensorType[];
    try {
      checkArity(def, operands.length);
      resolved = resolveAttrs(kind, def.attrs, attrs);
      types = def.infer(
        operands.map((v) => v.type),
        resolved,
      );
    } catch (e) {
      if (e instanceof OpError) throw errorAt(opts.loc, e.code, e.message);
      throw e;
    }
    for (const v of operands) if (!this.userLists.has(v)) assert(false, `operand %${v.name} is not in module ${this.name}`);
    if (opts.names) assert(opts.names.length === types.length, `${kind}: ${opts.names.length} names for ${types.length} results`);

    const op: Op = { id: this.nextId++, kind, operands: [...operands], results: [], attrs: resolved };
    if (opts.loc) op.loc = opts.loc;
    if (opts.layer !== undefined) op.layer = opts.layer;
    this.opSet.add(op);
    for (const v of operands) addUser(this.userLists.get(v)!, op);
    op.results = types.map((t, i) => {
      const r = this.newValue('result', opts.names?.[i] ?? kind, t, opts.loc);
      r.def = op;
      return r;
    });
    this.orderCache = undefined;
    return op;
  }

  setOutputs(values: readonly Value[]): void {
    for (const v of values) assert(this.userLists.has(v), `output %${v.name} is not in module ${this.name}`);
    this.outputs = [...values];
  }

  // -- queries ----------------------------------------------------------------------------

  /** All ops in a deterministic topological order. Throws (internal) on a cycle. */
  ops(): readonly Op[] {
    if (!this.orderCache) this.orderCache = this.topologicalOrder();
    return this.orderCache;
  }

  /** Ops that use `v`, in order, each once. */
  users(v: Value): Op[] {
    return this.userLists.get(v)?.slice() ?? [];
  }

  /** Values that are not op results, in definition order: inputs, params, states, consts. */
  declarations(): Value[] {
    return [...this.inputs, ...this.params, ...this.states, ...this.consts];
  }

  /** Every value, in definition order: the declarations, then op results. */
  values(): Value[] {
    return [...this.declarations(), ...this.ops().flatMap((o) => o.results)];
  }

  hasValue(v: Value): boolean {
    return this.userLists.has(v);
  }

  opCount(): number {
    return this.opSet.size;
  }

  // -- rewriting (used by passes) ---------------------------------------------------------

  /** Make every use of `from` (operands and outputs) use `to` instead. */
  replaceAllUses(from: Value, to: Value): void {
    const toUsers = this.userLists.get(to);
    assert(toUsers !== undefined, `replaceAllUses: %${to.name} is not in module ${this.name}`);
    const users = this.users(from);
    for (const user of users) {
      user.operands.forEach((v, i) => {
        if (v === from) user.operands[i] = to;
      });
      addUser(toUsers, user);
    }
    if (from !== to && users.length) this.userLists.get(from)!.length = 0;
    this.outputs = this.outputs.map((v) => (v === from ? to : v));
    this.orderCache = undefined;
  }

  /** Make operand `index` of `op` read `to` (one use, where replaceAllUses rewires all). */
  setOperand(op: Op, index: number, to: Value): void {
    const from = op.operands[index];
    assert(from !== undefined && this.userLists.has(to), `setOperand: bad operand ${index} of ${op.kind}`);
    op.operands[index] = to;
    if (!op.operands.includes(from)) removeUser(this.userLists.get(from)!, op);
    addUser(this.userLists.get(to)!, op);
    this.orderCache = undefined;
  }

  /** Remove an op whose results are no longer used. */
  removeOp(op: Op): void {
    for (const r of op.results) {
      assert(this.users(r).length === 0 && !this.outputs.includes(r), `cannot remove ${op.kind}: %${r.name} is still used`);
      this.userLists.delete(r);
      this.names.delete(r.name);
    }
    this.nextSuffix.clear();
    for (const v of new Set(op.operands)) {
      const users = this.userLists.get(v);
      if (users) removeUser(users, op);
    }
    this.opSet.delete(op);
    this.orderCache = undefined;
  }

  // -- internals --------------------------------------------------------------------------

  private newValue(kind: ValueKind, name: string, type: TensorType, loc: SourceLoc | undefined): Value {
    const v: Value = { id: this.nextId++, kind, name: this.uniqueName(name), type, def: undefined };
    if (loc) v.loc = loc;
    this.userLists.set(v, []);
    this.orderCache = undefined;
    return v;
  }

  /** Give `v` the name `base` (or `base.i` if another value has it), freeing its old name. */
  rename(v: Value, base: string): void {
    if (v.name === base) return;
    this.names.delete(v.name);
    this.nextSuffix.clear();
    v.name = this.uniqueName(base);
  }

  /** `base` if unused, else the first free of `base.1`, `base.2`, ... */
  private uniqueName(base: string): string {
    let name = base;
    if (this.names.has(name)) {
      // Names are only added between removals: every suffix below the hint stays taken.
      let i = this.nextSuffix.get(base) ?? 1;
      for (name = `${base}.${i}`; this.names.has(name); ) name = `${base}.${++i}`;
      this.nextSuffix.set(base, i + 1);
    }
    this.names.add(name);
    return name;
  }

  /** Kahn's algorithm over op nodes, always taking the ready op created first. */
  private topologicalOrder(): Op[] {
    const pending = new Map<Op, number>();
    const ready = new MinHeap();
    for (const op of this.opSet) {
      const producers = distinctProducers(op);
      pending.set(op, producers);
      if (producers === 0) ready.push(op);
    }
    const order: Op[] = [];
    for (let op = ready.pop(); op; op = ready.pop()) {
      order.push(op);
      const results = op.results;
      for (let i = 0; i < results.length; i++) {
        const users = this.userLists.get(results[i]!)!;
        for (let u = 0; u < users.length; u++) {
          const user = users[u]!;
          // A user of several of the op's results waits for the op once.
          if (usesEarlierResult(user, results, i)) continue;
          const n = pending.get(user)! - 1;
          pending.set(user, n);
          if (n === 0) ready.push(user);
        }
      }
    }
    assert(order.length === pending.size, `module ${this.name} has a cycle`);
    return order;
  }
}

/** The number of distinct ops whose results `op` reads. */
function distinctProducers(op: Op): number {
  const operands = op.operands;
  let n = 0;
  for (let k = 0; k < operands.length; k++) {
    const d = operands[k]!.def;
    if (d === undefined) continue;
    let seen = false;
    for (let q = 0; q < k && !seen; q++) seen = operands[q]!.def === d;
    if (!seen) n++;
  }
  return n;
}

/** Whether `user` reads one of `results` before index `i`. */
function usesEarlierResult(user: Op, results: readonly Value[], i: number): boolean {
  for (let q = 0; q < i; q++) if (user.operands.includes(results[q]!)) return true;
  return false;
}

/** Add `op` to a value's users, kept unique and ordered by id. */
function addUser(users: Op[], op: Op): void {
  let i = users.length;
  while (i > 0 && users[i - 1]!.id > op.id) i--;
  if (i > 0 && users[i - 1] === op) return;
  users.splice(i, 0, op);
}

function removeUser(users: Op[], op: Op): void {
  const i = users.indexOf(op);
  if (i >= 0) users.splice(i, 1);
}

/** A binary min-heap of ops keyed by id. */
class MinHeap {
  private readonly items: Op[] = [];

  push(op: Op): void {
    const a = this.items;
    a.push(op);
    for (let i = a.length - 1; i > 0; ) {
      const p = (i - 1) >> 1;
      if (a[p]!.id <= a[i]!.id) break;
      const t = a[p]!;
      a[p] = a[i]!;
      a[i] = t;
      i = p;
    }
  }

  pop(): Op | undefined {
    const a = this.items;
    const top = a[0];
    const end = a.pop();
    if (a.length > 0 && end) {
      a[0] = end;
      for (let i = 0; ; ) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < a.length && a[l]!.id < a[m]!.id) m = l;
        if (r < a.length && a[r]!.id < a[m]!.id) m = r;
        if (m === i) break;
        const t = a[m]!;
        a[m] = a[i]!;
        a[i] = t;
        i = m;
      }
    }
    return top;
  }
}
