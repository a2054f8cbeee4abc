// Tensor types of the IR: an element type and a static shape. Every dimension is known by
// the time a model reaches the IR (frontends bind batch, sequence and dynamic axes first).

export const DTYPES = {
  f64: { bytes: 8, float: true },
  f32: { bytes: 4, float: true },
  f16: { bytes: 2, float: true },
  bf16: { bytes: 2, float: true },
  i64: { bytes: 8, float: false },
  i32: { bytes: 4, float: false },
  i16: { bytes: 2, float: false },
  i8: { bytes: 1, float: false },
  u8: { bytes: 1, float: false },
  bool: { bytes: 1, float: false },
} as const;

export type DType = keyof typeof DTYPES;

export interface TensorType {
  readonly dtype: DType;
  readonly shape: readonly number[];
}

export function isDType(s: string): s is DType {
  return Object.prototype.hasOwnProperty.call(DTYPES, s);
}

export function isFloat(d: DType): boolean {
  return DTYPES[d].float;
}

export function isInteger(d: DType): boolean {
  return !DTYPES[d].float && d !== 'bool';
}

export function tensor(dtype: DType, shape: readonly number[]): TensorType {
  return { dtype, shape: [...shape] };
}

/** Number of elements; 1 for a scalar. */
export function numel(t: TensorType | readonly number[]): number {
  const shape = 'shape' in t ? t.shape : t;
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

export function byteSize(t: TensorType): number {
  return numel(t) * DTYPES[t.dtype].bytes;
}

export function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

export function sameType(a: TensorType, b: TensorType): boolean {
  return a.dtype === b.dtype && sameShape(a.shape, b.shape);
}

/** The canonical text of a type, as the IR printer writes it: `f32[16, 512, 1024]`. */
export function formatType(t: TensorType): string {
  return `${t.dtype}[${t.shape.join(', ')}]`;
}

export function formatShape(shape: readonly number[]): string {
  return `[${shape.join(', ')}]`;
}
