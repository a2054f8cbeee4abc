// A small, typed builder of ONNX models on onnx-proto, for tests that need ONNX files other than
// the shipped exports: graph inputs with symbolic dims (dim_param), initializers stored inline
// or as external data in a sibling file, Constant nodes, nodes with typed attributes, an opset,
// and encoding to bytes or writing to a folder. Names follow torch.onnx.export's scheme
// (`/scope/Op_N` nodes, `/scope/Op_N_output_K` values) so generated graphs read like real ones.

import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll } from 'vitest';
import protobuf from 'onnx-proto';

const { onnx } = protobuf;

/** Element types the builder writes, with their TensorProto.DataType codes. */
export type ElemType = 'float32' | 'int32' | 'int64' | 'bool';

const TYPE_CODES: Readonly<Record<ElemType, number>> = { float32: 1, int32: 6, int64: 7, bool: 9 };
const TYPE_BYTES: Readonly<Record<ElemType, number>> = { float32: 4, int32: 4, int64: 8, bool: 1 };

export function typeCode(t: ElemType): number {
  return TYPE_CODES[t];
}

/** A tensor's element type, shape and numbers (int64 as bigint, bool as 0/1 bytes). */
export interface TensorData {
  readonly dtype: ElemType;
  readonly dims: readonly number[];
  readonly data: Float32Array | Int32Array | BigInt64Array | Uint8Array;
}

function numel(dims: readonly number[]): number {
  return dims.reduce((p, d) => p * d, 1);
}

function checked(t: TensorData): TensorData {
  if (t.data.length !== numel(t.dims)) throw new Error(`tensor of shape [${t.dims.join(', ')}] given ${t.data.length} values`);
  return t;
}

export function f32(dims: readonly number[], values: ArrayLike<number>): TensorData {
  return checked({ dtype: 'float32', dims, data: Float32Array.from(values) });
}

export function i64(dims: readonly number[], values: ArrayLike<number | bigint>): TensorData {
  return checked({ dtype: 'int64', dims, data: BigInt64Array.from(Array.from(values, (v) => BigInt(v))) });
}

export function i32(dims: readonly number[], values: ArrayLike<number>): TensorData {
  return checked({ dtype: 'int32', dims, data: Int32Array.from(values) });
}

export function bool(dims: readonly number[], values: ArrayLike<number | boolean>): TensorData {
  return checked({ dtype: 'bool', dims, data: Uint8Array.from(Array.from(values, (v) => (v ? 1 : 0))) });
}

/** A 0-d float32 tensor: how the exporter stores a Python float constant. */
export const scalarF32 = (v: number): TensorData => f32([], [v]);
/** A 0-d int64 tensor: a Python int constant (an index, a size). */
export const scalarI64 = (v: number | bigint): TensorData => i64([], [v]);
/** A 1-D int64 tensor: axes, starts, ends, shapes. */
export const vecI64 = (vs: readonly (number | bigint)[]): TensorData => i64([vs.length], vs);

/** torch.finfo(torch.float32).min, the fill value of Hugging Face's additive masks. */
export const FLOAT32_MIN = -3.4028234663852886e38;
/** INT64_MAX, the `end` the exporter writes for an open slice (`x[a:]`). */
export const INT64_MAX = 9223372036854775807n;

function rawBytes(t: TensorData): Uint8Array {
  const d = t.data;
  return new Uint8Array(d.buffer.slice(d.byteOffset, d.byteOffset + d.byteLength));
}

export function tensorBytes(t: TensorData): number {
  return numel(t.dims) * TYPE_BYTES[t.dtype];
}

function tensorProto(name: string, t: TensorData): protobuf.onnx.ITensorProto {
  return { name, dataType: TYPE_CODES[t.dtype], dims: [...t.dims], rawData: rawBytes(t) };
}

/** A typed attribute value. */
export type AttrValue =
  | { readonly kind: 'int'; readonly value: number }
  | { readonly kind: 'float'; readonly value: number }
  | { readonly kind: 'string'; readonly value: string }
  | { readonly kind: 'ints'; readonly value: readonly number[] }
  | { readonly kind: 'floats'; readonly value: readonly number[] }
  | { readonly kind: 'tensor'; readonly value: TensorData };

/** Attribute constructors: `attr.int(1)`, `attr.float(1e-5)`, `attr.ints([0, 2, 1, 3])` ... */
export const attr = {
  int: (value: number): AttrValue => ({ kind: 'int', value }),
  float: (value: number): AttrValue => ({ kind: 'float', value }),
  string: (value: string): AttrValue => ({ kind: 'string', value }),
  ints: (value: readonly number[]): AttrValue => ({ kind: 'ints', value }),
  floats: (value: readonly number[]): AttrValue => ({ kind: 'floats', value }),
  tensor: (value: TensorData): AttrValue => ({ kind: 'tensor', value }),
};

function attrProto(name: string, a: AttrValue): protobuf.onnx.IAttributeProto {
  const T = onnx.AttributeProto.AttributeType;
  switch (a.kind) {
    case 'int': return { name, type: T.INT, i: a.value };
    case 'float': return { name, type: T.FLOAT, f: a.value };
    case 'string': return { name, type: T.STRING, s: new TextEncoder().encode(a.value) };
    case 'ints': return { name, type: T.INTS, ints: [...a.value] };
    case 'floats': return { name, type: T.FLOATS, floats: [...a.value] };
    case 'tensor': return { name, type: T.TENSOR, t: tensorProto('', a.value) };
  }
}

/** A declared dimension: a size, or a symbolic name (a dynamic axis). */
export type Dim = number | string;

export interface ValueDecl {
  readonly name: string;
  readonly dtype: ElemType;
  readonly dims: readonly Dim[];
}

/** What an initializer stands for: a trainable weight, or a stored constant (buffer). */
export type InitKind = 'param' | 'buffer';

export interface Initializer {
  readonly name: string;
  readonly tensor: TensorData;
  readonly kind: InitKind;
}

export interface NodeDecl {
  readonly name: string;
  readonly opType: string;
  readonly inputs: readonly string[];
  readonly outputs: readonly string[];
  readonly attrs: Readonly<Record<string, AttrValue>>;
}

export interface NodeOptions {
  /** Number of outputs (default 1), named `<node>_output_<k>`. */
  readonly outputs?: number;
  /** Explicit output names (a graph output's name, say). */
  readonly outputNames?: readonly string[];
  readonly attrs?: Readonly<Record<string, AttrValue>>;
}

export interface ModelOptions {
  readonly name: string;
  readonly opset: number;
  /** Default: 7 for opset 14, 8 above (what onnx 1.12-1.14 write). */
  readonly irVersion?: number;
  readonly producerName?: string;
  readonly producerVersion?: string;
}

export interface ExternalDataOptions {
  /** File name of the external data, beside the model. */
  readonly location: string;
  /** Initializers of at least this many bytes go to the file (onnx's default is 1024). */
  readonly threshold?: number;
  /** Alignment of each tensor's offset in the file (bytes). */
  readonly align?: number;
}

export interface WrittenModel {
  readonly path: string;
  /** The external data file, when one was written. */
  readonly dataPath?: string;
  /** Names of the initializers stored externally. */
  readonly externalNames: readonly string[];
}

export class OnnxGraphBuilder {
  readonly opts: ModelOptions;
  private readonly inputsList: ValueDecl[] = [];
  private readonly outputsList: ValueDecl[] = [];
  private readonly inits = new Map<string, Initializer>();
  private nodesList: NodeDecl[] = [];
  private readonly scopes: string[] = [];
  private readonly counters = new Map<string, number>();
  private anonymous = 0;

  constructor(opts: ModelOptions) {
    this.opts = opts;
  }

  get opset(): number {
    return this.opts.opset;
  }

  input(name: string, dtype: ElemType, dims: readonly Dim[]): string {
    this.inputsList.push({ name, dtype, dims });
    return name;
  }

  output(name: string, dtype: ElemType, dims: readonly Dim[]): string {
    this.outputsList.push({ name, dtype, dims });
    return name;
  }

  initializer(name: string, tensor: TensorData, kind: InitKind = 'param'): string {
    if (this.inits.has(name)) throw new Error(`initializer '${name}' defined twice`);
    this.inits.set(name, { name, tensor: checked(tensor), kind });
    return name;
  }

  /** A fresh name in the exporter's style for a folded or anonymous initializer (`onnx::MatMul_123`). */
  freshName(prefix: string): string {
    this.anonymous += 1;
    return `${prefix}_${100 + this.anonymous}`;
  }

  /** Runs `body` with a module scope pushed (`/encoder/layer.0/attention`), as the exporter names nodes. */
  scoped<T>(scope: string, body: () => T): T {
    this.scopes.push(scope);
    try {
      return body();
    } finally {
      this.scopes.pop();
    }
  }

  private nodeName(opType: string): string {
    const prefix = `/${this.scopes.length ? `${this.scopes.join('/')}/` : ''}${opType}`;
    const n = this.counters.get(prefix) ?? 0;
    this.counters.set(prefix, n + 1);
    return n === 0 ? prefix : `${prefix}_${n}`;
  }

  /** Adds a node; returns its output names. */
  node(opType: string, inputs: readonly string[], opts: NodeOptions = {}): string[] {
    const name = this.nodeName(opType);
    const count = opts.outputNames?.length ?? opts.outputs ?? 1;
    const outputs = opts.outputNames ? [...opts.outputNames] : Array.from({ length: count }, (_, k) => `${name}_output_${k}`);
    this.nodesList.push({ name, opType, inputs: [...inputs], outputs, attrs: { ...(opts.attrs ?? {}) } });
    return outputs;
  }

  /** Adds a single-output node and returns its output. */
  op(opType: string, inputs: readonly string[], attrs: Readonly<Record<string, AttrValue>> = {}, outputName?: string): string {
    return this.node(opType, inputs, { attrs, ...(outputName ? { outputNames: [outputName] } : {}) })[0]!;
  }

  /** A Constant node holding `t` (how the exporter writes Python constants and folded shapes). */
  constant(t: TensorData): string {
    return this.op('Constant', [], { value: attr.tensor(t) });
  }

  /** Renames a value everywhere: the exporter names graph outputs after the user's output names. */
  renameValue(from: string, to: string): string {
    this.nodesList = this.nodesList.map((n) => ({
      ...n,
      inputs: n.inputs.map((v) => (v === from ? to : v)),
      outputs: n.outputs.map((v) => (v === from ? to : v)),
    }));
    return to;
  }

  get nodes(): readonly NodeDecl[] {
    return this.nodesList;
  }

  get initializers(): readonly Initializer[] {
    return [...this.inits.values()];
  }

  get inputs(): readonly ValueDecl[] {
    return this.inputsList;
  }

  get outputs(): readonly ValueDecl[] {
    return this.outputsList;
  }

  /**
   * Mirrors the exporter's initializer de-duplication (PyTorch ≥ 1.12): initializers with the
   * same type, shape and bytes are stored once; every later one becomes an Identity of the first,
   * placed at the top of the graph under its own name. Returns the number removed.
   */
  deduplicateInitializers(): number {
    const seen = new Map<string, Initializer>();
    const identities: NodeDecl[] = [];
    const removed: string[] = [];
    for (const init of this.inits.values()) {
      const key = `${init.tensor.dtype}|${init.tensor.dims.join('x')}|${Buffer.from(rawBytes(init.tensor)).toString('base64')}`;
      const first = seen.get(key);
      if (!first) {
        seen.set(key, init);
        continue;
      }
      removed.push(init.name);
      identities.push({ name: `Identity_${identities.length}`, opType: 'Identity', inputs: [first.name], outputs: [init.name], attrs: {} });
    }
    for (const r of removed) this.inits.delete(r);
    this.nodesList = [...identities, ...this.nodesList];
    return removed.length;
  }

  /** The model as an onnx-proto ModelProto; initializers at or above `external.threshold` bytes are stored externally. */
  toProto(external?: ExternalDataOptions): { proto: protobuf.onnx.ModelProto; data?: Uint8Array; externalNames: string[] } {
    const threshold = external?.threshold ?? 1024;
    const align = external?.align ?? 64;
    const chunks: Uint8Array[] = [];
    let offset = 0;
    const externalNames: string[] = [];
    const initializer = [...this.inits.values()].map((init) => {
      const t = tensorProto(init.name, init.tensor);
      if (!external || tensorBytes(init.tensor) < threshold) return t;
      const bytes = t.rawData!;
      const pad = (align - (offset % align)) % align;
      if (pad) chunks.push(new Uint8Array(pad));
      offset += pad;
      chunks.push(bytes);
      externalNames.push(init.name);
      const entry = (key: string, value: string) => ({ key, value });
      const ext: protobuf.onnx.ITensorProto = {
        name: t.name,
        dataType: t.dataType,
        dims: t.dims,
        dataLocation: onnx.TensorProto.DataLocation.EXTERNAL,
        externalData: [entry('location', external.location), entry('offset', String(offset)), entry('length', String(bytes.length))],
      };
      offset += bytes.length;
      return ext;
    });
    const valueInfo = (v: ValueDecl): protobuf.onnx.IValueInfoProto => ({
      name: v.name,
      type: {
        tensorType: {
          elemType: TYPE_CODES[v.dtype],
          shape: { dim: v.dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) },
        },
      },
    });
    const graph: protobuf.onnx.IGraphProto = {
      name: this.opts.name,
      node: this.nodesList.map((n) => ({
        name: n.name,
        opType: n.opType,
        input: [...n.inputs],
        output: [...n.outputs],
        attribute: Object.entries(n.attrs).map(([k, a]) => attrProto(k, a)),
      })),
      initializer,
      input: this.inputsList.map(valueInfo),
      output: this.outputsList.map(valueInfo),
    };
    const proto = onnx.ModelProto.create({
      irVersion: this.opts.irVersion ?? (this.opts.opset <= 14 ? 7 : 8),
      producerName: this.opts.producerName ?? 'pytorch',
      producerVersion: this.opts.producerVersion ?? '1.13.1',
      opsetImport: [{ domain: '', version: this.opts.opset }],
      graph,
    });
    const data = external ? concatBytes(chunks, offset) : undefined;
    return data ? { proto, data, externalNames } : { proto, externalNames };
  }

  /** The serialized model (all initializers inline). */
  encode(): Uint8Array {
    return onnx.ModelProto.encode(this.toProto().proto).finish();
  }

  /** Writes `<dir>/<file>` and, with `external`, the external data file beside it. */
  write(dir: string, file: string, external?: ExternalDataOptions): WrittenModel {
    mkdirSync(dir, { recursive: true });
    const { proto, data, externalNames } = this.toProto(external);
    const path = join(dir, file);
    writeFileSync(path, onnx.ModelProto.encode(proto).finish());
    if (external && data) {
      const dataPath = join(dir, external.location);
      writeFileSync(dataPath, data);
      return { path, dataPath, externalNames };
    }
    return { path, externalNames };
  }
}

function concatBytes(chunks: readonly Uint8Array[], total: number): Uint8Array {
  const out = new Uint8Array(total);
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}

/** A deterministic generator of uniform numbers in [0, 1), for seeded weights (the functional backend's). */
export { seededRandom } from '../../src/backend/functional/feeds.js';

/**
 * For one test file: a temporary folder (removed after the file's tests) and a function that
 * writes a built graph into it as the next numbered case and returns its path.
 */
export function caseWriter(prefix: string): (b: OnnxGraphBuilder) => string {
  let dir = '';
  let serial = 0;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), prefix));
  });
  afterAll(() => {
    rmSync(dir, { recursive: true, force: true });
  });
  return (b) => b.write(dir, `case${++serial}.onnx`).path;
}
