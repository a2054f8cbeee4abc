// The emitter: builds the IR Module while the raise walk visits ONNX nodes. It owns the map
// from ONNX value names to lazy IR values (layout.ts), creates inputs, params and consts on
// first use, and stamps every op with the ONNX node it came from (SourceLoc.node).

import { GygesError, type SourceLoc } from '../../../diagnostics/diagnostic.js';
import type { Attrs } from '../../../ir/attrs.js';
import type { Module, Value } from '../../../ir/module.js';
import type { OpKind } from '../../../ir/ops.js';
import { isDType, type DType } from '../../../ir/types.js';
import type { OnnxNode } from '../model.js';
import type { OnnxDType, Tensor } from '../tensor.js';
import type { GraphView } from './graph.js';
import { identity, materialize, viewShape, type IrBuilder, type Lazy } from './layout.js';

/** float32's largest magnitude: IR constants hold finite numbers, so ±∞ (mask fills) become ±this. */
export const F32_MAX = 3.4028234663852886e38;

export class Emitter implements IrBuilder {
  private readonly lazies = new Map<string, Lazy>();
  private readonly declared = new Map<string, Value>();
  private readonly reshapes = new Map<string, Value>();
  private node: OnnxNode | undefined;
  /** Nodes that raised patterns claimed (generic lowering leaves them alone). */
  private claimedNodes: ReadonlySet<OnnxNode> = new Set();

  constructor(
    readonly m: Module,
    readonly g: GraphView,
  ) {}

  private lowerer: ((node: OnnxNode) => void) | undefined;
  private readonly lowering = new Set<OnnxNode>();

  /** How a node whose value is read before the walk lowered it is lowered then. */
  setLowerer(f: (node: OnnxNode) => void): void {
    this.lowerer = f;
  }

  setClaimed(nodes: ReadonlySet<OnnxNode>): void {
    this.claimedNodes = nodes;
  }

  claimed(node: OnnxNode): boolean {
    return this.claimedNodes.has(node);
  }

  /** Sets the ONNX node that ops emitted from now on come from. */
  at(node: OnnxNode): void {
    this.node = node;
  }

  loc(node: OnnxNode | undefined = this.node): SourceLoc | undefined {
    return node ? { file: this.g.file, line: 0, col: 0, node: node.name } : undefined;
  }

  /** An IR op at the current node; `name` defaults to the node's first output plus the op kind. */
  op(kind: OpKind, operands: readonly Value[], attrs: Attrs = {}, name?: string): Value {
    return this.ops(kind, operands, attrs, name ? [name] : undefined)[0]!;
  }

  ops(kind: OpKind, operands: readonly Value[], attrs: Attrs = {}, names?: readonly string[]): Value[] {
    const base = this.node?.outputs.find((o) => o !== '') ?? kind;
    return this.m.addOp(kind, operands, attrs, { names: names ?? [`${base}.${kind}`], loc: this.loc() }).results;
  }

  /** `v` reshaped to `shape`, made once however many raised ops ask (a padding mask read by every layer). */
  reshape(v: Value, shape: readonly number[]): Value {
    if (v.type.shape.length === shape.length && v.type.shape.every((d, i) => d === shape[i])) return v;
    const key = `${v.id}:${shape.join('x')}`;
    let r = this.reshapes.get(key);
    if (!r) {
      r = this.op('reshape', [v], { shape: [...shape] }, `${v.name}.reshape`);
      this.reshapes.set(key, r);
    }
    return r;
  }

  /** Raises GY5008 at the current node. */
  fail(detail: string): never {
    const n = this.node;
    throw new GygesError('GY5008', n ? `${n.opType}: ${detail}` : detail, n ? { kind: 'node', file: this.g.file, node: n.name } : { kind: 'none' });
  }

  set(name: string, l: Lazy): void {
    if (name !== '') this.lazies.set(name, l);
  }

  has(name: string): boolean {
    return this.lazies.has(name);
  }

  /** The lazy IR value of an ONNX value: computed, an input, a weight, or a constant. */
  value(name: string): Lazy {
    const l = this.lazies.get(name);
    if (l) return l;
    // A pass-through node (or, inside a raised pattern, a float Cast) was skipped: its input stands for it.
    const src = this.g.source(name);
    if (src !== name && this.lazies.has(src)) return this.lazies.get(src)!;
    const loose = this.g.source(name, undefined, true);
    if (loose !== src && this.lazies.has(loose)) return this.lazies.get(loose)!;
    // Computed by a node the walk has not lowered (not needed by the outputs, or a folded
    // node that moves a weight): lower it now.
    const p = this.g.producer(src);
    if (p && this.lowerer && !(this.g.g.folded.has(p.name) && !this.g.fromWeight(src)) && !this.lowering.has(p)) {
      const at = this.node;
      this.lowering.add(p);
      this.lowerer(p);
      if (at) this.at(at);
      const made = this.lazies.get(src);
      if (made) return made;
    }
    const out = identity(this.declare(src));
    this.lazies.set(name, out);
    return out;
  }

  /** The IR value of an ONNX value in exactly its ONNX layout. */
  tensor(name: string): Value {
    return materialize(this, this.value(name));
  }

  /** An IR constant holding `t` (named after the ONNX value it stands for). */
  constant(t: Tensor, name: string): Value {
    const dtype = this.dtype(t.dtype, name);
    const data = Array.from(t.data, (x) => (Number.isNaN(x) ? 0 : Math.max(-F32_MAX, Math.min(F32_MAX, x))));
    if (t.data.some((x) => Number.isNaN(x))) this.fail(`constant '${name}' holds NaN, which the IR cannot hold`);
    return this.m.addConst(name, { dtype, shape: [...t.dims] }, data, this.loc());
  }

  /** A scalar constant of `dtype` (shape []). */
  scalar(x: number, dtype: DType, name = `${this.node?.outputs[0] ?? 'c'}.const`): Value {
    return this.m.addConst(name, { dtype, shape: [] }, [Math.max(-F32_MAX, Math.min(F32_MAX, x))], this.loc());
  }

  /** The IR element type of an ONNX one; GY5008 for the unsigned types the IR lacks. */
  dtype(d: OnnxDType, what: string): DType {
    if (isDType(d)) return d;
    return this.fail(`'${what}' has element type ${d}, which the IR has no type for`);
  }

  /** The ONNX shape of a lazy value (for ops whose attributes need it). */
  shape(name: string): number[] {
    return viewShape(this.value(name));
  }

  private declare(name: string): Value {
    const have = this.declared.get(name);
    if (have) return have;
    const f = this.g.facts(name);
    const first = this.g.users(name)[0];
    const loc = first ? this.loc(first) : undefined;
    let v: Value;
    if (!f.producer && !f.init) v = this.m.addInput(name, { dtype: this.dtype(f.dtype, name), shape: [...f.dims] }, loc);
    else if (this.g.weightInit(name)) v = this.m.addParam(name, { dtype: this.dtype(f.dtype, name), shape: [...f.dims] }, loc);
    else {
      const known = this.g.known(name) ?? (f.init ? { dtype: f.init.dtype, dims: f.init.dims, data: f.init.values() } : undefined);
      if (!known) return this.fail(`value '${name}' is used before it is computed`);
      v = this.constant(known, name);
    }
    this.declared.set(name, v);
    return v;
  }
}
