// Row-major index arithmetic shared by everything that walks tensors in memory (the ONNX
// frontend's constant folding and the functional backend's kernels): strides, and the one
// walk behind broadcasting, transposes and strided windows.

/** Row-major strides of a shape. */
export function stridesOf(shape: readonly number[]): number[] {
  const s = new Array<number>(shape.length);
  let acc = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    s[i] = acc;
    acc *= shape[i]!;
  }
  return s;
}

/**
 * For every element of `shape` in row-major order, `base + Σ index[axis]·strides[axis]`
 * (`strides` has one entry per axis of `shape`; 0 repeats an axis, as broadcasting does).
 */
export function walkOffsets(shape: readonly number[], strides: readonly number[], base = 0): Int32Array {
  let n = 1;
  for (const d of shape) n *= d;
  const out = new Int32Array(n);
  const r = shape.length;
  const idx = new Array<number>(r).fill(0);
  let off = base;
  for (let e = 0; e < n; e++) {
    out[e] = off;
    for (let ax = r - 1; ax >= 0; ax--) {
      idx[ax]!++;
      off += strides[ax]!;
      if (idx[ax]! < shape[ax]!) break;
      off -= strides[ax]! * shape[ax]!;
      idx[ax] = 0;
    }
  }
  return out;
}

/**
 * The strides with which an array of shape `inShape` is read when broadcast (NumPy-style,
 * right-aligned) to `outShape`: 0 along new and size-1 axes. Undefined where a dimension
 * neither matches nor is 1.
 */
export function broadcastStrides(inShape: readonly number[], outShape: readonly number[]): number[] | undefined {
  const extra = outShape.length - inShape.length;
  if (extra < 0) return undefined;
  const inStrides = stridesOf(inShape);
  const out: number[] = [];
  for (let i = 0; i < outShape.length; i++) {
    const j = i - extra;
    if (j < 0) {
      out.push(0);
      continue;
    }
    const e = inShape[j]!;
    if (e !== outShape[i] && e !== 1) return undefined;
    out.push(e === 1 ? 0 : inStrides[j]!);
  }
  return out;
}
