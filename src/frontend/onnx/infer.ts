// Shape inference and constant folding over an ONNX graph. Graph inputs are bound to concrete
// shapes first (their own sizes, or `--input-shape NAME=2x32` for dynamic axes), so every
// value gets a dtype and a fully known shape; a node whose inputs are all known small
// constants is evaluated, which resolves the exporters' shape arithmetic (Shape, Gather,
// Unsqueeze, Concat, ConstantOfShape, Expand, Equal, Where ...) into plain numbers. Weights are
// never folded: their numbers may sit in external data that compiling must not need.

import { error, GygesError } from '../../diagnostics/diagnostic.js';
import type { LazyTensor, OnnxAttr, OnnxDim, OnnxModel, OnnxNode } from './model.js';
import { isFloatType, numelOf, type OnnxDType, type Tensor } from './tensor.js';
import { ONNX_OPS } from './ops/index.js';

/** Results of folding larger than this stay unevaluated (elements). */
export const FOLD_LIMIT = 2 ** 24;

/** What is known of a value after inference. */
export interface ValueFacts {
  readonly name: string;
  readonly dtype: OnnxDType;
  readonly dims: readonly number[];
  /** Known numbers: folded results, Constant nodes, small inline initializers. */
  readonly value?: Tensor;
  /** An initializer (a weight or a stored constant), whose numbers may not be loaded. */
  readonly init?: LazyTensor;
  /** The node that produces it; undefined for graph inputs and initializers. */
  readonly producer?: OnnxNode;
}

export interface InferredGraph {
  readonly model: OnnxModel;
  readonly facts: ReadonlyMap<string, ValueFacts>;
  /** Nodes in graph order, with Constant nodes and folded nodes still present. */
  readonly nodes: readonly OnnxNode[];
  /** Names of nodes whose every output was folded to a constant. */
  readonly folded: ReadonlySet<string>;
}

export interface InferOptions {
  /** Whole shapes for graph inputs, by input name (`--input-shape`). */
  readonly inputShapes?: Readonly<Record<string, readonly number[]>> | undefined;
}

/** The context an operator's inference sees. */
export interface OnnxOpContext {
  readonly node: OnnxNode;
  readonly opset: number;
  /** Facts of each input in order; undefined where an optional input is omitted. */
  readonly inputs: readonly (ValueFacts | undefined)[];
  attr(name: string): OnnxAttr | undefined;
  attrInt(name: string, fallback?: number): number;
  attrFloat(name: string, fallback?: number): number;
  attrInts(name: string, fallback?: readonly number[]): readonly number[];
  attrString(name: string, fallback?: string): string;
  /** The known numbers of input i (folded or a small initializer); fails when there are none. */
  constant(i: number, what: string): Tensor;
  /** Raises GY5006 on this node. */
  fail(detail: string): never;
}

export interface InferredOutput {
  readonly dtype: OnnxDType;
  readonly dims: readonly number[];
}

/** One operator's semantics: shapes always, numbers when folding or interpreting. */
export interface OnnxOpDef {
  infer(ctx: OnnxOpContext): InferredOutput[];
  /** Computes the outputs from known inputs (omitted optional inputs are undefined). */
  evaluate?(ctx: OnnxOpContext, inputs: readonly (Tensor | undefined)[]): Tensor[];
  /**
   * The outputs depend only on the inputs' shapes (Shape, Size): evaluated even when the
   * inputs' numbers are unknown, which is how shape arithmetic on activations folds once the
   * graph inputs are bound. `evaluate` then sees undefined for inputs without known numbers.
   */
  readonly fromShapes?: boolean;
}

/** Every operator type the graph uses that the frontend has no definition for, with the first node of each. */
export function unsupportedOps(model: OnnxModel): { opType: string; first: string }[] {
  const out = new Map<string, string>();
  for (const n of model.graph.nodes) {
    const key = n.domain ? `${n.domain}.${n.opType}` : n.opType;
    if ((n.domain || !Object.prototype.hasOwnProperty.call(ONNX_OPS, n.opType)) && !out.has(key)) out.set(key, n.name);
  }
  return [...out].map(([opType, first]) => ({ opType, first }));
}

export function inferGraph(model: OnnxModel, opts: InferOptions = {}): InferredGraph {
  const file = model.file;
  const missing = unsupportedOps(model);
  if (missing.length) {
    const list = missing.map((m) => `${m.opType} (first: node '${m.first}')`).join(', ');
    throw error('GY5002', `'${file}': unsupported ONNX operator${missing.length > 1 ? 's' : ''}: ${list}`);
  }
  const facts = new Map<string, ValueFacts>();
  const shapes = opts.inputShapes ?? {};
  for (const name of Object.keys(shapes)) {
    if (!model.graph.inputs.some((i) => i.name === name)) {
      const known = model.graph.inputs.map((i) => i.name).join(', ') || '(none)';
      throw error('GY9001', `--input-shape names '${name}', which is not an input of '${file}' (inputs: ${known})`);
    }
  }
  for (const input of model.graph.inputs) {
    facts.set(input.name, { name: input.name, dtype: input.dtype, dims: bindInput(input.name, input.dims, shapes[input.name], file) });
  }
  for (const init of model.graph.initializers.values()) {
    const small = !init.external && numelOf(init.dims) <= 64;
    facts.set(init.name, { name: init.name, dtype: init.dtype, dims: init.dims, init, ...(small ? { value: tensorOf(init) } : {}) });
  }

  const folded = new Set<string>();
  for (const node of model.graph.nodes) {
    const inputs = node.inputs.map((name) => {
      if (name === '') return undefined;
      const f = facts.get(name);
      if (!f) throw nodeError(file, node, 'GY5001', `input '${name}' is not defined before this node (the graph must be in topological order)`);
      return f;
    });
    const ctx = contextOf(model, node, inputs);
    const def = ONNX_OPS[node.opType]!;
    let outs: InferredOutput[];
    let values: Tensor[] | undefined;
    try {
      outs = def.infer(ctx);
      if (def.evaluate && (def.fromShapes ? outs.every((o) => numelOf(o.dims) <= FOLD_LIMIT) : foldable(inputs, outs))) {
        values = def.evaluate(ctx, inputs.map((f) => f && constantOf(f)));
      }
    } catch (e) {
      if (e instanceof GygesError) throw e;
      throw nodeError(file, node, 'GY5006', (e as Error).message);
    }
    node.outputs.forEach((name, i) => {
      if (name === '') return;
      const out = outs[i];
      if (!out) throw nodeError(file, node, 'GY5006', `has ${node.outputs.length} outputs, but ${node.opType} makes ${outs.length}`);
      const value = values?.[i];
      facts.set(name, { name, dtype: out.dtype, dims: out.dims, producer: node, ...(value ? { value } : {}) });
    });
    if (values) folded.add(node.name);
  }
  for (const out of model.graph.outputs) {
    if (!facts.has(out.name)) throw error('GY5001', `'${file}': graph output '${out.name}' is produced by no node`);
  }
  return { model, facts, nodes: model.graph.nodes, folded };
}

function bindInput(name: string, declared: readonly OnnxDim[] | undefined, given: readonly number[] | undefined, file: string): number[] {
  if (given) {
    if (given.some((d) => !Number.isSafeInteger(d) || d <= 0)) throw error('GY9001', `--input-shape ${name}: dimensions must be positive whole numbers`);
    if (declared && declared.length !== given.length) {
      throw error('GY9001', `--input-shape ${name}=${given.join('x')} has rank ${given.length}, but '${file}' declares ${name} with rank ${declared.length} [${declared.map(dimText).join(', ')}]`);
    }
    declared?.forEach((d, i) => {
      if (typeof d === 'number' && d >= 0 && d !== given[i]) {
        throw error('GY9001', `--input-shape ${name}=${given.join('x')}: dimension ${i} is fixed to ${d} by '${file}'`);
      }
    });
    return [...given];
  }
  if (!declared) throw error('GY5005', `'${file}': input '${name}' declares no shape; give one with --input-shape ${name}=AxB...`);
  return declared.map((d, i) => {
    if (typeof d === 'number' && d >= 0) return d;
    const what = typeof d === 'string' ? `'${d}'` : 'unknown';
    throw error('GY5005', `'${file}': input '${name}' has dimension ${i} ${what}; give its shape with --input-shape ${name}=${declared.map((x) => (typeof x === 'number' && x >= 0 ? x : 'N')).join('x')}`);
  });
}

function dimText(d: OnnxDim): string {
  return d === undefined ? '?' : String(d);
}

function tensorOf(t: LazyTensor): Tensor {
  return { dtype: t.dtype, dims: t.dims, data: t.values() };
}

/**
 * Largest external initializer whose numbers folding may read (elements): shape tensors an
 * exporter stored beside the weights. Weights themselves are far larger and never read.
 */
export const EXTERNAL_FOLD_LIMIT = 1024;

function foldsFrom(init: LazyTensor): boolean {
  // An external floating-point tensor is a weight, even a small one (a norm's 768 scales):
  // folding an Identity of it would read data a graph-only model does not ship.
  if (init.external) return numelOf(init.dims) <= EXTERNAL_FOLD_LIMIT && !isFloatType(init.dtype);
  return numelOf(init.dims) <= FOLD_LIMIT;
}

/** Known numbers of a value, loading an initializer's on demand (small external ones only). */
function constantOf(f: ValueFacts): Tensor | undefined {
  if (f.value) return f.value;
  if (f.init && foldsFrom(f.init)) return tensorOf(f.init);
  return undefined;
}

function isConstant(f: ValueFacts | undefined): boolean {
  return f === undefined || f.value !== undefined || (f.init !== undefined && foldsFrom(f.init));
}

function foldable(inputs: readonly (ValueFacts | undefined)[], outs: readonly InferredOutput[]): boolean {
  return inputs.every(isConstant) && outs.every((o) => numelOf(o.dims) <= FOLD_LIMIT);
}

function nodeError(file: string, node: OnnxNode, code: 'GY5001' | 'GY5006', detail: string): GygesError {
  return new GygesError(code, `${node.opType}: ${detail}`, { kind: 'node', file, node: node.name });
}

/** The context an operator sees on `node`, given its inputs' facts (with values where known). */
export function contextOf(model: OnnxModel, node: OnnxNode, inputs: readonly (ValueFacts | undefined)[]): OnnxOpContext {
  const fail = (detail: string): never => {
    throw nodeError(model.file, node, 'GY5006', detail);
  };
  const attr = (name: string) => node.attrs.get(name);
  const typed = <K extends OnnxAttr['kind']>(name: string, kind: K): Extract<OnnxAttr, { kind: K }> | undefined => {
    const a = attr(name);
    if (a && a.kind !== kind) fail(`attribute '${name}' should be ${kind}, not ${a.kind}`);
    return a as Extract<OnnxAttr, { kind: K }> | undefined;
  };
  const need = <T>(name: string, v: T | undefined): T => (v === undefined ? fail(`missing required attribute '${name}'`) : v);
  return {
    node,
    opset: model.opset,
    inputs,
    attr,
    attrInt: (name, fallback) => need(name, typed(name, 'int')?.value ?? fallback),
    attrFloat: (name, fallback) => {
      const a = attr(name);
      // Some exporters write integer-valued float attributes as ints.
      if (a?.kind === 'int') return a.value;
      return need(name, typed(name, 'float')?.value ?? fallback);
    },
    attrInts: (name, fallback) => need(name, typed(name, 'ints')?.value ?? fallback),
    attrString: (name, fallback) => need(name, typed(name, 'string')?.value ?? fallback),
    constant(i, what) {
      const f = inputs[i];
      const c = f && constantOf(f);
      if (!c) return fail(`input ${i} (${what}) must be known when compiling, but '${node.inputs[i] ?? ''}' is computed from the model's inputs or weights`);
      return c;
    },
    fail,
  };
}
