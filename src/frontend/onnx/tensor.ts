// Tensors of the ONNX frontend: an element type, a shape and, when known, the numbers.
// Floating types hold their values in a Float32Array (f16 and bf16 widened) or a
// Float64Array (f64); integers and booleans in a Float64Array, which is exact for every
// integer the supported exports use (|v| < 2^53; INT64_MAX as a Slice bound rounds to
// 2^63 and still clamps). Strings and complex numbers are not supported.

import type { DType } from '../../ir/types.js';

/** ONNX element types the frontend reads, named as the IR names them where the IR has them. */
export type OnnxDType = DType | 'u16' | 'u32' | 'u64';

export type TensorValues = Float32Array | Float64Array;

export interface Tensor {
  readonly dtype: OnnxDType;
  readonly dims: readonly number[];
  readonly data: TensorValues;
}

/** TensorProto.DataType codes (onnx.proto3) and their element type and size in bytes. */
const ONNX_DTYPES: Readonly<Record<number, { dtype: OnnxDType; bytes: number }>> = {
  1: { dtype: 'f32', bytes: 4 },
  2: { dtype: 'u8', bytes: 1 },
  3: { dtype: 'i8', bytes: 1 },
  4: { dtype: 'u16', bytes: 2 },
  5: { dtype: 'i16', bytes: 2 },
  6: { dtype: 'i32', bytes: 4 },
  7: { dtype: 'i64', bytes: 8 },
  9: { dtype: 'bool', bytes: 1 },
  10: { dtype: 'f16', bytes: 2 },
  11: { dtype: 'f64', bytes: 8 },
  12: { dtype: 'u32', bytes: 4 },
  13: { dtype: 'u64', bytes: 8 },
  16: { dtype: 'bf16', bytes: 2 },
};

const ONNX_TYPE_NAMES: Readonly<Record<number, string>> = {
  0: 'UNDEFINED', 8: 'STRING', 14: 'COMPLEX64', 15: 'COMPLEX128', 17: 'FLOAT8E4M3FN', 18: 'FLOAT8E4M3FNUZ',
  19: 'FLOAT8E5M2', 20: 'FLOAT8E5M2FNUZ', 21: 'UINT4', 22: 'INT4',
};

/** The element type of an ONNX DataType code, or undefined when the frontend has none. */
export function onnxDType(code: number): { dtype: OnnxDType; bytes: number } | undefined {
  return ONNX_DTYPES[code];
}

/** A DataType code as ONNX names it, for messages. */
export function onnxTypeName(code: number): string {
  return ONNX_TYPE_NAMES[code] ?? `type ${code}`;
}

/** The ONNX DataType code of an element type (for Cast's `to` and test data). */
export function onnxTypeCode(dtype: OnnxDType): number {
  for (const [code, d] of Object.entries(ONNX_DTYPES)) if (d.dtype === dtype) return Number(code);
  throw new Error(`no ONNX type code for ${dtype}`);
}

export function bytesOf(dtype: OnnxDType): number {
  for (const d of Object.values(ONNX_DTYPES)) if (d.dtype === dtype) return d.bytes;
  return 8;
}

export function isFloatType(dtype: OnnxDType): boolean {
  return dtype === 'f32' || dtype === 'f64' || dtype === 'f16' || dtype === 'bf16';
}

/** Fresh storage for n values of a type. */
export function allocValues(dtype: OnnxDType, n: number): TensorValues {
  return dtype === 'f32' || dtype === 'f16' || dtype === 'bf16' ? new Float32Array(n) : new Float64Array(n);
}

export function numelOf(dims: readonly number[]): number {
  let n = 1;
  for (const d of dims) n *= d;
  return n;
}

/** Rounds a value to what the type can hold (integers truncate and wrap, bool is 0/1). */
export function castValue(v: number, dtype: OnnxDType): number {
  switch (dtype) {
    case 'bool':
      // NaN is true, as in ONNX's and NumPy's casts to bool.
      return v !== 0 ? 1 : 0;
    case 'i8':
      return (Math.trunc(v) << 24) >> 24;
    case 'u8':
      return Math.trunc(v) & 0xff;
    case 'i16':
      return (Math.trunc(v) << 16) >> 16;
    case 'u16':
      return Math.trunc(v) & 0xffff;
    case 'i32':
      return Math.trunc(v) | 0;
    case 'u32':
      return Math.trunc(v) >>> 0;
    case 'i64':
    case 'u64':
      // + 0 turns the -0 of truncating (-0.5 -> -0) into the integer 0.
      return Number.isFinite(v) ? Math.trunc(v) + 0 : v;
    case 'f32':
      return Math.fround(v);
    case 'f16':
      return toHalf(v);
    case 'bf16':
      return toBf16(v);
    case 'f64':
      return v;
  }
}

/** Rounds to the nearest float16 (ties to even), overflowing to infinity. */
function toHalf(v: number): number {
  if (!Number.isFinite(v) || v === 0) return v;
  const a = Math.abs(v);
  if (a >= 65520) return Math.sign(v) * Infinity;
  let e = Math.floor(Math.log2(a));
  if (2 ** e > a) e--;
  else if (2 ** (e + 1) <= a) e++;
  // 10 fraction bits; below 2^-14 the spacing stays 2^-24 (subnormals).
  const q = 2 ** (Math.max(e, -14) - 10);
  const m = a / q;
  let r = Math.round(m);
  if (r - m === 0.5 && r % 2 !== 0) r--;
  return Math.sign(v) * r * q;
}

const BF16_VIEW = new DataView(new ArrayBuffer(4));

/** Rounds to the nearest bfloat16 (ties to even), through float32 as ONNX does. */
function toBf16(v: number): number {
  if (Number.isNaN(v)) return v;
  BF16_VIEW.setFloat32(0, v);
  const bits = BF16_VIEW.getUint32(0);
  BF16_VIEW.setUint32(0, ((bits + 0x7fff + ((bits >>> 16) & 1)) >>> 16) << 16);
  return BF16_VIEW.getFloat32(0);
}

function halfToFloat(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const frac = h & 0x3ff;
  if (exp === 0) return sign * frac * 2 ** -24;
  if (exp === 31) return frac ? NaN : sign * Infinity;
  return sign * (1 + frac / 1024) * 2 ** (exp - 15);
}

function bf16ToFloat(h: number): number {
  const buf = new DataView(new ArrayBuffer(4));
  buf.setUint32(0, h << 16);
  return buf.getFloat32(0);
}

/** Decodes little-endian raw bytes (TensorProto.raw_data or external data) into values. */
export function valuesFromBytes(dtype: OnnxDType, bytes: Uint8Array, n: number): TensorValues {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out = allocValues(dtype, n);
  for (let i = 0; i < n; i++) {
    switch (dtype) {
      case 'f32': out[i] = view.getFloat32(4 * i, true); break;
      case 'f64': out[i] = view.getFloat64(8 * i, true); break;
      case 'f16': out[i] = halfToFloat(view.getUint16(2 * i, true)); break;
      case 'bf16': out[i] = bf16ToFloat(view.getUint16(2 * i, true)); break;
      case 'i64': out[i] = Number(view.getBigInt64(8 * i, true)); break;
      case 'u64': out[i] = Number(view.getBigUint64(8 * i, true)); break;
      case 'i32': out[i] = view.getInt32(4 * i, true); break;
      case 'u32': out[i] = view.getUint32(4 * i, true); break;
      case 'i16': out[i] = view.getInt16(2 * i, true); break;
      case 'u16': out[i] = view.getUint16(2 * i, true); break;
      case 'i8': out[i] = view.getInt8(i); break;
      case 'u8': out[i] = view.getUint8(i); break;
      case 'bool': out[i] = view.getUint8(i) ? 1 : 0; break;
    }
  }
  return out;
}

/** Values from the typed repeated fields of a TensorProto (float_data, int32_data, ...). */
export function valuesFromFields(dtype: OnnxDType, fields: ArrayLike<number>, n: number): TensorValues {
  const out = allocValues(dtype, n);
  for (let i = 0; i < n; i++) {
    const v = fields[i]!;
    // f16 and bf16 travel as their bit patterns in int32_data.
    out[i] = dtype === 'f16' ? halfToFloat(v) : dtype === 'bf16' ? bf16ToFloat(v) : dtype === 'bool' ? (v ? 1 : 0) : v;
  }
  return out;
}

export function makeTensor(dtype: OnnxDType, dims: readonly number[], data: ArrayLike<number>): Tensor {
  const out = allocValues(dtype, data.length);
  for (let i = 0; i < data.length; i++) out[i] = castValue(data[i]!, dtype);
  return { dtype, dims: [...dims], data: out };
}
