// The IR module: a dataflow graph of ops and values on @dagrejs/graphlib. The graph is
// bipartite — value nodes `v<id>` and op nodes `o<id>` — with an edge from each operand value
// to its user op (named by operand position, so `mul(x, x)` keeps both uses) and from each op
// to its results. Ops are created only from values that already exist, and every query that
// lists ops returns one deterministic topological order (ties broken by creation order), so
// printing and every pass see the same sequence on every run.

import { Graph } from '@dagrejs/graphlib';
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

type Node = { value: Value } | { op: Op };

export class Module {
  readonly inputs: Value[] = [];
  readonly params: Value[] = [];
  readonly states: Value[] = [];
  readonly consts: Value[] = [];
  /** Module-level annotations added by passes (e.g. `minibatch.size`). */
  readonly notes: Notes = {};
  outputs: Value[] = [];

  private readonly graph = new Graph<unknown, Node, number>({ directed: true, multigraph: true });
  private readonly names = new Set<string>();
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
    for (const v of operands) assert(this.graph.hasNode(vkey(v)), `operand %${v.name} is not in module ${this.name}`);
    if (opts.names) assert(opts.names.length === types.length, `${kind}: ${opts.names.length} names for ${types.length} results`);

    const op: Op = { id: this.nextId++, kind, operands: [...operands], results: [], attrs: resolved };
    if (opts.loc) op.loc = opts.loc;
    if (opts.layer !== undefined) op.layer = opts.layer;
    this.graph.setNode(okey(op), { op });
    operands.forEach((v, i) => this.graph.setEdge(vkey(v), okey(op), i, String(i)));
    op.results = types.map((t, i) => {
      const r = this.newValue('result', opts.names?.[i] ?? kind, t, opts.loc);
      r.def = op;
      this.graph.setEdge(okey(op), vkey(r), i, String(i));
      return r;
    });
    this.orderCache = undefined;
    return op;
  }

  setOutputs(values: readonly Value[]): void {
    for (const v of values) assert(this.graph.hasNode(vkey(v)), `output %${v.name} is not in module ${this.name}`);
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
    const ids = this.graph.successors(vkey(v)) ?? [];
    return ids.map((k) => opOf(this.graph.node(k))).sort((a, b) => a.id - b.id);
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
    return this.graph.hasNode(vkey(v));
  }

  opCount(): number {
    return this.graph.nodeCount() - this.valueCount();
  }

  // -- rewriting (used by passes) ---------------------------------------------------------

  /** Make every use of `from` (operands and outputs) use `to` instead. */
  replaceAllUses(from: Value, to: Value): void {
    for (const user of this.users(from)) {
      user.operands.forEach((v, i) => {
        if (v !== from) return;
        user.operands[i] = to;
        this.graph.removeEdge(vkey(from), okey(user), String(i));
        this.graph.setEdge(vkey(to), okey(user), i, String(i));
      });
    }
    this.outputs = this.outputs.map((v) => (v === from ? to : v));
    this.orderCache = undefined;
  }

  /** Make operand `index` of `op` read `to` (one use, where replaceAllUses rewires all). */
  setOperand(op: Op, index: number, to: Value): void {
    const from = op.operands[index];
    assert(from !== undefined && this.graph.hasNode(vkey(to)), `setOperand: bad operand ${index} of ${op.kind}`);
    op.operands[index] = to;
    this.graph.removeEdge(vkey(from), okey(op), String(index));
    this.graph.setEdge(vkey(to), okey(op), index, String(index));
    this.orderCache = undefined;
  }

  /** Remove an op whose results are no longer used. */
  removeOp(op: Op): void {
    for (const r of op.results) {
      assert(this.users(r).length === 0 && !this.outputs.includes(r), `cannot remove ${op.kind}: %${r.name} is still used`);
      this.graph.removeNode(vkey(r));
      this.names.delete(r.name);
    }
    this.graph.removeNode(okey(op));
    this.orderCache = undefined;
  }

  // -- internals --------------------------------------------------------------------------

  private newValue(kind: ValueKind, name: string, type: TensorType, loc: SourceLoc | undefined): Value {
    const v: Value = { id: this.nextId++, kind, name: this.uniqueName(name), type, def: undefined };
    if (loc) v.loc = loc;
    this.graph.setNode(vkey(v), { value: v });
    this.orderCache = undefined;
    return v;
  }

  /** `base` if unused, else `base.1`, `base.2`, ... */
  private uniqueName(base: string): string {
    let name = base;
    for (let i = 1; this.names.has(name); i++) name = `${base}.${i}`;
    this.names.add(name);
    return name;
  }

  private valueCount(): number {
    let n = 0;
    for (const k of this.graph.nodes()) if (k.startsWith('v')) n++;
    return n;
  }

  /** Kahn's algorithm over op nodes, always taking the ready op created first. */
  private topologicalOrder(): Op[] {
    const pending = new Map<Op, number>();
    const ready = new MinHeap();
    for (const k of this.graph.nodes()) {
      const node = this.graph.node(k);
      if (!('op' in node)) continue;
      const producers = new Set(node.op.operands.map((v) => v.def).filter((d) => d !== undefined));
      pending.set(node.op, producers.size);
      if (producers.size === 0) ready.push(node.op);
    }
    const order: Op[] = [];
    for (let op = ready.pop(); op; op = ready.pop()) {
      order.push(op);
      const next = new Set(op.results.flatMap((r) => this.users(r)));
      for (const user of next) {
        const n = pending.get(user)! - 1;
        pending.set(user, n);
        if (n === 0) ready.push(user);
      }
    }
    assert(order.length === pending.size, `module ${this.name} has a cycle`);
    return order;
  }
}

function vkey(v: Value): string {
  return `v${v.id}`;
}

function okey(op: Op): string {
  return `o${op.id}`;
}

function opOf(node: Node): Op {
  assert('op' in node, 'expected an op node');
  return node.op;
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
      [a[p], a[i]] = [a[i]!, a[p]!];
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
        [a[m], a[i]] = [a[i]!, a[m]!];
        i = m;
      }
    }
    return top;
  }
}
