// Reading an ONNX ModelProto (onnx-proto's protobufjs classes) into plain records: nodes with
// decoded attributes, graph inputs and outputs with their declared dims, and initializers
// whose numbers are read lazily. Only shapes are needed to compile, so an initializer's data —
// inline or in an external file — is decoded when someone asks for its values, and an
// external file is opened only then. Paths of external data must stay inside the model's
// folder; that is checked when the model is read, whether or not the data is ever needed.

import { closeSync, openSync, readFileSync, readSync, realpathSync, statSync } from 'node:fs';
import { dirname, isAbsolute, relative, resolve } from 'node:path';
import protobuf from 'onnx-proto';
import { error, GygesError } from '../../diagnostics/diagnostic.js';
import { bytesOf, numelOf, onnxDType, onnxTypeName, valuesFromBytes, valuesFromFields, type OnnxDType, type Tensor, type TensorValues } from './tensor.js';

const { onnx } = protobuf;

/** The newest default-domain opset whose operators the frontend knows. */
export const MAX_OPSET = 21;

/** Largest tensor whose numbers the frontend will hold (bytes). */
export const MAX_TENSOR_BYTES = 2 ** 31;

/** A declared dimension: a size, a symbolic name (dim_param), or unknown. */
export type OnnxDim = number | string | undefined;

export interface OnnxValueInfo {
  readonly name: string;
  readonly dtype: OnnxDType;
  /** Undefined when the graph declares no shape at all. */
  readonly dims: readonly OnnxDim[] | undefined;
}

/** A tensor whose shape is known now and whose numbers are decoded on first use. */
export interface LazyTensor {
  readonly name: string;
  readonly dtype: OnnxDType;
  readonly dims: readonly number[];
  /** Stored in an external file rather than in the model. */
  readonly external: boolean;
  /** Decodes the numbers (reading external data if need be); raises GY5004/GY5007. */
  values(): TensorValues;
}

export type OnnxAttr =
  | { readonly kind: 'float'; readonly value: number }
  | { readonly kind: 'int'; readonly value: number }
  | { readonly kind: 'string'; readonly value: string }
  | { readonly kind: 'floats'; readonly value: readonly number[] }
  | { readonly kind: 'ints'; readonly value: readonly number[] }
  | { readonly kind: 'strings'; readonly value: readonly string[] }
  | { readonly kind: 'tensor'; readonly value: LazyTensor }
  | { readonly kind: 'graph' }
  | { readonly kind: 'other'; readonly type: number };

export interface OnnxNode {
  /** The node's name; `<opType>#<index>` when the file leaves it empty. */
  readonly name: string;
  readonly opType: string;
  /** '' for the default domain (ai.onnx). */
  readonly domain: string;
  /** Input names in order; '' marks an omitted optional input. */
  readonly inputs: readonly string[];
  readonly outputs: readonly string[];
  readonly attrs: ReadonlyMap<string, OnnxAttr>;
  /** Position in the graph's node list. */
  readonly index: number;
}

export interface OnnxGraph {
  readonly name: string;
  readonly nodes: readonly OnnxNode[];
  /** Graph inputs that are not initializers: what the user feeds. */
  readonly inputs: readonly OnnxValueInfo[];
  readonly outputs: readonly OnnxValueInfo[];
  readonly initializers: ReadonlyMap<string, LazyTensor>;
  /** value_info entries (shapes the exporter recorded for intermediate values). */
  readonly valueInfo: ReadonlyMap<string, OnnxValueInfo>;
}

export interface OnnxModel {
  /** The path the model was read from, as given. */
  readonly file: string;
  /** Opset of the default domain. */
  readonly opset: number;
  readonly irVersion: number;
  readonly producer: string;
  readonly graph: OnnxGraph;
}

type Long = { toNumber(): number };
type Int = number | Long | null | undefined;

function num(v: Int): number {
  if (v === null || v === undefined) return 0;
  return typeof v === 'number' ? v : v.toNumber();
}

function text(bytes: Uint8Array | null | undefined): string {
  return bytes ? Buffer.from(bytes).toString('utf8') : '';
}

/** Reads and decodes an .onnx file; every problem is a GY5xxx or GY9002 line naming the file. */
export function readOnnxModel(path: string): OnnxModel {
  let bytes: Buffer;
  try {
    bytes = readFileSync(path);
  } catch (e) {
    const why = (e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (e as Error).message;
    throw error('GY9002', `cannot read '${path}': ${why}`);
  }
  let proto: protobuf.onnx.ModelProto;
  try {
    proto = onnx.ModelProto.decode(bytes);
  } catch (e) {
    throw error('GY5001', `'${path}' is not an ONNX model (${(e as Error).message.split('\n')[0]})`);
  }
  return modelOf(proto, path);
}

/** Decodes a serialized TensorProto (the conformance cases' input_N.pb / output_N.pb). */
export function readTensorFile(path: string): Tensor {
  let bytes: Buffer;
  try {
    bytes = readFileSync(path);
  } catch (e) {
    throw error('GY9002', `cannot read '${path}': ${(e as Error).message}`);
  }
  let proto: protobuf.onnx.TensorProto;
  try {
    proto = onnx.TensorProto.decode(bytes);
  } catch (e) {
    throw error('GY5001', `'${path}' is not an ONNX tensor (${(e as Error).message.split('\n')[0]})`);
  }
  const t = lazyTensor(proto, path, dirname(path));
  return { dtype: t.dtype, dims: t.dims, data: t.values() };
}

function modelOf(proto: protobuf.onnx.ModelProto, file: string): OnnxModel {
  if (!proto.graph) throw error('GY5001', `'${file}' is not an ONNX model (it has no graph)`);
  const imports = proto.opsetImport ?? [];
  const main = imports.find((o) => !o.domain || o.domain === 'ai.onnx');
  if (!main) throw error('GY5001', `'${file}' declares no opset for the default ONNX domain`);
  const opset = num(main.version);
  if (opset > MAX_OPSET) {
    throw error('GY5003', `'${file}' uses opset ${opset}; the frontend knows opsets up to ${MAX_OPSET}`);
  }
  const dir = dirname(resolve(file));
  const graph = graphOf(proto.graph, file, dir);
  return { file, opset, irVersion: num(proto.irVersion), producer: `${proto.producerName ?? ''} ${proto.producerVersion ?? ''}`.trim(), graph };
}

function graphOf(g: protobuf.onnx.IGraphProto, file: string, dir: string): OnnxGraph {
  const initializers = new Map<string, LazyTensor>();
  for (const t of g.initializer ?? []) {
    const lt = lazyTensor(t, file, dir);
    initializers.set(lt.name, lt);
  }
  const nodes = (g.node ?? []).map((n, index): OnnxNode => {
    const opType = n.opType ?? '';
    const name = n.name || `${opType}#${index}`;
    const attrs = new Map<string, OnnxAttr>();
    for (const a of n.attribute ?? []) attrs.set(a.name ?? '', attrOf(a, file, dir, name));
    return { name, opType, domain: n.domain === 'ai.onnx' ? '' : n.domain ?? '', inputs: [...(n.input ?? [])], outputs: [...(n.output ?? [])], attrs, index };
  });
  const infos = (list: protobuf.onnx.IValueInfoProto[] | null | undefined) => (list ?? []).map((v) => valueInfoOf(v, file));
  const valueInfo = new Map<string, OnnxValueInfo>();
  for (const v of infos(g.valueInfo)) valueInfo.set(v.name, v);
  return {
    name: g.name ?? '',
    nodes,
    inputs: infos(g.input).filter((v) => !initializers.has(v.name)),
    outputs: infos(g.output),
    initializers,
    valueInfo,
  };
}

function valueInfoOf(v: protobuf.onnx.IValueInfoProto, file: string): OnnxValueInfo {
  const name = v.name ?? '';
  const tt = v.type?.tensorType;
  if (!tt) throw error('GY5003', `'${file}': graph value '${name}' is not a tensor (sequences, maps and optionals are not supported)`);
  const dt = onnxDType(tt.elemType ?? 0);
  if (!dt) throw error('GY5003', `'${file}': graph value '${name}' has element type ${onnxTypeName(tt.elemType ?? 0)}, which the frontend does not support`);
  // A decoded message owns only the fields the file holds: an axis with neither a size nor a
  // name is unknown, not of size 0 (the prototype's default), and a size of 0 is a size.
  const has = (d: object, k: string) => Object.prototype.hasOwnProperty.call(d, k);
  const dims = tt.shape
    ? (tt.shape.dim ?? []).map((d): OnnxDim => (d.dimParam ? d.dimParam : has(d, 'dimValue') && d.dimValue !== null && d.dimValue !== undefined ? num(d.dimValue) : undefined))
    : undefined;
  return { name, dtype: dt.dtype, dims };
}

function attrOf(a: protobuf.onnx.IAttributeProto, file: string, dir: string, node: string): OnnxAttr {
  const T = onnx.AttributeProto.AttributeType;
  switch (a.type) {
    case T.FLOAT: return { kind: 'float', value: a.f ?? 0 };
    case T.INT: return { kind: 'int', value: num(a.i) };
    case T.STRING: return { kind: 'string', value: text(a.s) };
    case T.FLOATS: return { kind: 'floats', value: [...(a.floats ?? [])] };
    case T.INTS: return { kind: 'ints', value: (a.ints ?? []).map(num) };
    case T.STRINGS: return { kind: 'strings', value: (a.strings ?? []).map(text) };
    case T.TENSOR:
      if (!a.t) throw error('GY5001', `'${file}': node '${node}': attribute '${a.name}' has no tensor`);
      return { kind: 'tensor', value: lazyTensor(a.t, file, dir) };
    case T.GRAPH:
    case T.GRAPHS:
      return { kind: 'graph' };
    default:
      return { kind: 'other', type: a.type ?? 0 };
  }
}

function lazyTensor(t: protobuf.onnx.ITensorProto, file: string, dir: string): LazyTensor {
  const name = t.name ?? '';
  const what = `'${file}': tensor '${name}'`;
  const dt = onnxDType(t.dataType ?? 0);
  if (!dt) throw error('GY5003', `${what} has element type ${onnxTypeName(t.dataType ?? 0)}, which the frontend does not support`);
  const dims = (t.dims ?? []).map(num);
  if (dims.some((d) => !Number.isSafeInteger(d) || d < 0)) throw error('GY5001', `${what} has a bad dimension in [${dims.join(', ')}]`);
  const n = numelOf(dims);
  const bytes = n * dt.bytes;
  const tooBig = () => error('GY5007', `${what} declares ${n.toExponential(2)} elements (${dims.join('x')}); the frontend holds the numbers of tensors up to ${MAX_TENSOR_BYTES / 2 ** 30} GiB`);
  const external = t.dataLocation === onnx.TensorProto.DataLocation.EXTERNAL;

  if (external) {
    const entries = new Map((t.externalData ?? []).map((e) => [e.key ?? '', e.value ?? '']));
    const location = entries.get('location');
    if (!location) throw error('GY5004', `${what} is stored externally but names no location`);
    const path = insideFolder(location, dir, what);
    const offset = Number(entries.get('offset') ?? '0');
    const length = entries.has('length') ? Number(entries.get('length')) : bytes;
    if (!Number.isSafeInteger(offset) || offset < 0 || !Number.isSafeInteger(length) || length < 0) {
      throw error('GY5004', `${what} has a bad external offset or length`);
    }
    let cache: TensorValues | undefined;
    return {
      name, dtype: dt.dtype, dims, external: true,
      values() {
        if (cache) return cache;
        if (bytes > MAX_TENSOR_BYTES) throw tooBig();
        if (length !== bytes) throw error('GY5004', `${what} needs ${bytes} bytes but its external data is ${length} bytes long`);
        cache = valuesFromBytes(dt.dtype, readRange(path, offset, length, what), n);
        return cache;
      },
    };
  }

  // Inline data: the declared size must match what the file holds, which also rejects a
  // small file claiming a huge tensor before anything is allocated.
  const raw = t.rawData && t.rawData.length > 0 ? t.rawData : undefined;
  const fields = dt.dtype === 'f32' ? t.floatData : dt.dtype === 'f64' ? t.doubleData : dt.dtype === 'i64' ? t.int64Data : dt.dtype === 'u32' || dt.dtype === 'u64' ? t.uint64Data : t.int32Data;
  const held = raw ? raw.length : (fields?.length ?? 0) * dt.bytes;
  if (held !== bytes) {
    if (bytes > MAX_TENSOR_BYTES) throw tooBig();
    throw error('GY5001', `${what} declares ${n} elements (${dims.join('x') || 'scalar'}) but holds ${raw ? `${raw.length} bytes` : `${fields?.length ?? 0} values`}`);
  }
  let cache: TensorValues | undefined;
  return {
    name, dtype: dt.dtype, dims, external: false,
    values() {
      cache ??= raw ? valuesFromBytes(dt.dtype, raw, n) : valuesFromFields(dt.dtype, (fields ?? []).map((v) => num(v as Int)), n);
      return cache;
    },
  };
}

/** The external file's path, which must resolve (through links too) inside the model's folder. */
function insideFolder(location: string, dir: string, what: string): string {
  const leaves = (p: string, base: string) => {
    const r = relative(base, p);
    return r === '' || r.startsWith('..') || isAbsolute(r);
  };
  if (isAbsolute(location) || leaves(resolve(dir, location), dir)) {
    throw error('GY5004', `${what}: external data path '${location}' leaves the model's folder`);
  }
  const path = resolve(dir, location);
  try {
    const real = realpathSync(path);
    if (leaves(real, realpathSync(dir))) throw error('GY5004', `${what}: external data path '${location}' leaves the model's folder`);
  } catch (e) {
    if (e instanceof GygesError) throw e;
    // A missing file is fine until its numbers are needed.
  }
  return path;
}

function readRange(path: string, offset: number, length: number, what: string): Uint8Array {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (e) {
    const why = (e as NodeJS.ErrnoException).code === 'ENOENT' ? 'is missing' : `cannot be read (${(e as Error).message})`;
    throw error('GY5004', `${what}: external data file '${relative(process.cwd(), path) || path}' ${why}; it is needed for the tensor's values`);
  }
  try {
    const size = statSync(path).size;
    if (offset + length > size) throw error('GY5004', `${what}: external data ends at byte ${offset + length} but the file has ${size} bytes`);
    const out = new Uint8Array(length);
    let got = 0;
    while (got < length) {
      const r = readSync(fd, out, got, length - got, offset + got);
      if (r === 0) break;
      got += r;
    }
    return out;
  } finally {
    closeSync(fd);
  }
}

/** The byte size of a tensor of this type and shape (for statistics). */
export function tensorBytes(dtype: OnnxDType, dims: readonly number[]): number {
  return numelOf(dims) * bytesOf(dtype);
}
