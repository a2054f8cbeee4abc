// A read-only view of an inferred ONNX graph for the pattern matchers: who uses a value,
// what produces it once pass-through nodes (Identity, inference-mode Dropout, a Cast to the
// same type) are skipped, which values are known numbers and which come from weights.
// Matchers look at dataflow and folded constant values only, never at node names.

import { EXTERNAL_FOLD_LIMIT, type InferredGraph, type ValueFacts } from '../infer.js';
import type { LazyTensor, OnnxNode } from '../model.js';
import { isFloatType, numelOf, type Tensor } from '../tensor.js';
import { assert } from '../../../diagnostics/diagnostic.js';

/** Nodes whose first output is their first input: they vanish when raised. */
export function isPassThrough(node: OnnxNode, g: GraphView): boolean {
  switch (node.opType) {
    case 'Identity':
      return true;
    // Dropout is the identity at inference; its mask output has no IR form.
    case 'Dropout':
      return node.outputs.slice(1).every((o) => o === '' || (g.users(o).length === 0 && !g.isOutput(o)));
    case 'Cast': {
      const x = g.facts(node.inputs[0]!);
      return x.dtype === g.facts(node.outputs[0]!).dtype;
    }
    default:
      return false;
  }
}

/**
 * An initializer the IR treats as a trainable weight (`param`): a floating-point tensor of
 * more than one element. Integer and boolean initializers (shape tensors, index buffers) and
 * float scalars (fill values such as a mask's -1e4) are constants.
 */
export function isWeightInit(t: LazyTensor): boolean {
  return isFloatType(t.dtype) && numelOf(t.dims) > 1;
}

/**
 * Ops through which a value still *is* a weight (moved, viewed or cast, not computed with):
 * a value made from a weight by these stays tied to its `param` even when inference folded
 * it, while a weight-like buffer that arithmetic turns into something else (a rotary
 * frequency table into cos/sin, a causal-mask buffer into a condition) becomes a constant.
 */
const CARRIES = new Set(['Identity', 'Cast', 'Dropout', 'Transpose', 'Reshape', 'Unsqueeze', 'Squeeze', 'Flatten', 'Slice', 'Gather', 'Expand', 'Concat', 'Split']);

export class GraphView {
  readonly file: string;
  private readonly usersOf = new Map<string, OnnxNode[]>();
  private readonly outputs: ReadonlySet<string>;
  private readonly carrying = new Set<string>();

  constructor(readonly g: InferredGraph) {
    this.file = g.model.file;
    this.outputs = new Set(g.model.graph.outputs.map((o) => o.name));
    for (const node of g.nodes) {
      for (const name of new Set(node.inputs)) {
        if (name === '') continue;
        const list = this.usersOf.get(name) ?? [];
        list.push(node);
        this.usersOf.set(name, list);
      }
      if (this.carriesOut(node)) for (const o of node.outputs) if (o !== '') this.carrying.add(o);
    }
  }

  /** Whether a node's outputs are its weight input moved or scaled (see CARRIES). */
  private carriesOut(node: OnnxNode): boolean {
    const [a, b] = node.inputs;
    // Only when nothing computed from the model's inputs joins in (a Gather by token ids is an embedding lookup, not a weight).
    const fixed = (x: string) => x === '' || this.fromWeight(x) || this.g.facts.get(x)?.value !== undefined || this.g.facts.get(x)?.init !== undefined;
    if (CARRIES.has(node.opType)) {
      const data = node.opType === 'Concat' ? node.inputs : [a ?? ''];
      return data.some((i) => i !== '' && this.fromWeight(i)) && node.inputs.every(fixed);
    }
    // A weight scaled by a known number (a folded 1/√d on a projection) is still that weight.
    if (node.opType === 'Mul' || node.opType === 'Div') {
      const one = (x: string | undefined) => x !== undefined && this.g.facts.get(x)?.value?.data.length === 1 && !this.fromWeight(x);
      return (a !== undefined && this.fromWeight(a) && one(b)) || (node.opType === 'Mul' && b !== undefined && this.fromWeight(b) && one(a));
    }
    return false;
  }

  facts(name: string): ValueFacts {
    const f = this.g.facts.get(name);
    assert(f !== undefined, `no facts for ONNX value '${name}'`);
    return f;
  }

  /** Nodes reading `name`, each once, in graph order. */
  users(name: string): readonly OnnxNode[] {
    return this.usersOf.get(name) ?? [];
  }

  isOutput(name: string): boolean {
    return this.outputs.has(name);
  }

  producer(name: string): OnnxNode | undefined {
    return this.g.facts.get(name)?.producer;
  }

  /** The initializer `name` is, when it is a weight; not through any node. */
  weightInit(name: string): LazyTensor | undefined {
    const init = this.g.facts.get(name)?.init;
    return init && isWeightInit(init) ? init : undefined;
  }

  /** Whether a value is a weight initializer, or one moved, viewed, cast or scaled. */
  fromWeight(name: string): boolean {
    return this.carrying.has(name) || this.weightInit(name) !== undefined;
  }

  /**
   * The value `name` stands for once pass-through nodes are skipped backwards; the skipped
   * nodes are pushed onto `trail` so a matcher can claim them. `loose` also skips Casts
   * between floating-point types (mixed-precision exports cast around norms and softmax).
   */
  source(name: string, trail?: OnnxNode[], loose = false): string {
    let cur = name;
    for (;;) {
      const p = this.producer(cur);
      if (!p || !(isPassThrough(p, this) || (loose && this.isFloatCast(p)))) return cur;
      trail?.push(p);
      cur = p.inputs[0]!;
    }
  }

  private isFloatCast(n: OnnxNode): boolean {
    return n.opType === 'Cast' && isFloatType(this.facts(n.inputs[0]!).dtype) && isFloatType(this.facts(n.outputs[0]!).dtype);
  }

  /** The node producing `name` after pass-through nodes (and float Casts when `loose`), if any. */
  def(name: string, trail?: OnnxNode[], loose = false): OnnxNode | undefined {
    return this.producer(this.source(name, trail, loose));
  }

  /** Known numbers of a value that is not tied to a weight (folded, a Constant, a small constant initializer). */
  known(name: string): Tensor | undefined {
    if (this.fromWeight(name)) return undefined;
    const f = this.g.facts.get(name);
    return f?.value ?? (f?.init ? this.stored(f.init) : undefined);
  }

  /** An initializer's numbers, when they are in the model or a small external tensor. */
  private stored(t: LazyTensor): Tensor | undefined {
    if (t.external && numelOf(t.dims) > EXTERNAL_FOLD_LIMIT) return undefined;
    return { dtype: t.dtype, dims: t.dims, data: t.values() };
  }

  /**
   * Known numbers of any value, reading an inline initializer if need be (a stored rotary
   * table that a pattern absorbs); external data is read only for small tensors.
   */
  numbers(name: string): Tensor | undefined {
    const f = this.g.facts.get(this.source(name, undefined, true));
    return f?.value ?? (f?.init ? this.stored(f.init) : undefined);
  }

  /** The number a known one-element value holds (a 0-d or [1] scalar). */
  scalar(name: string): number | undefined {
    const t = this.known(this.source(name)) ?? this.known(name);
    return t && t.data.length === 1 ? t.data[0] : undefined;
  }

  /** Whether two names stand for the same value once pass-through nodes and float Casts are skipped. */
  same(a: string, b: string): boolean {
    return this.source(a, undefined, true) === this.source(b, undefined, true);
  }

  /**
   * Whether the nodes of a pattern are closed: every output of a node other than `root` is
   * read only by nodes of the pattern and is no graph output.
   */
  closed(nodes: ReadonlySet<OnnxNode>, root: OnnxNode): boolean {
    for (const n of nodes) {
      if (n === root) continue;
      for (const o of n.outputs) {
        if (o === '') continue;
        if (this.isOutput(o) || this.users(o).some((u) => !nodes.has(u))) return false;
      }
    }
    return true;
  }
}

/** Whether two numbers agree to a relative tolerance (exported constants are float32). */
export function near(a: number | undefined, b: number, rel = 1e-3): boolean {
  return a !== undefined && Math.abs(a - b) <= rel * Math.max(Math.abs(b), 1e-12);
}
