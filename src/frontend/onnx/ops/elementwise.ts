// Elementwise arithmetic, comparisons, logic and activations, and the reductions, with ONNX's
// exact semantics: multidirectional broadcasting (and the `broadcast`/`axis` form before opset
// 7), integer arithmetic that stays integral (Div truncates toward zero), Pow whose exponent
// may have another type, Clip bounds that move from attributes to inputs at opset 11, and
// reductions whose axes move from an attribute to an input (ReduceSum at 13, the others at 18).
// Values are computed in double precision and rounded to the output type once.
//
// `evaluate` reads axes from the tensors it is given rather than through ctx.constant, so it
// also serves an interpreter that feeds computed values; `infer` needs them known.

import type { InferredOutput, OnnxOpContext, OnnxOpDef, ValueFacts } from '../infer.js';
import { allocValues, castValue, isFloatType, numelOf, type OnnxDType, type Tensor, type TensorValues } from '../tensor.js';
import { broadcastDims, broadcastIndex, intsOf, normAxis } from './util.js';

// ---------------------------------------------------------------------------------------------
// Checks shared by the definitions

/** Element types an operator accepts. */
type TypeClass = 'float' | 'numeric' | 'signed' | 'bool' | 'any';

const CLASS_TEXT: Readonly<Record<TypeClass, string>> = {
  float: 'floating-point tensors',
  numeric: 'numeric tensors',
  signed: 'signed numeric tensors',
  bool: 'bool tensors',
  any: 'tensors',
};

function inClass(dtype: OnnxDType, cls: TypeClass): boolean {
  switch (cls) {
    case 'float': return isFloatType(dtype);
    case 'numeric': return dtype !== 'bool';
    case 'signed': return dtype !== 'bool' && !dtype.startsWith('u');
    case 'bool': return dtype === 'bool';
    case 'any': return true;
  }
}

function checkType(ctx: OnnxOpContext, dtype: OnnxDType, cls: TypeClass, what: string): void {
  if (!inClass(dtype, cls)) ctx.fail(`${what} has element type ${dtype}, but ${ctx.node.opType} takes ${CLASS_TEXT[cls]}`);
}

function dimsText(dims: readonly number[]): string {
  return `[${dims.join(', ')}]`;
}

function sameDims(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

/** Input i, which the operator requires. */
function required(ctx: OnnxOpContext, i: number, what: string): ValueFacts {
  const f = ctx.inputs[i];
  return f ?? ctx.fail(`input ${i} (${what}) is missing`);
}

function arity(ctx: OnnxOpContext, min: number, max: number): void {
  const n = ctx.inputs.length;
  if (n >= min && n <= max) return;
  const want = max === Infinity ? `at least ${min}` : min === max ? `${min}` : `${min} to ${max}`;
  ctx.fail(`takes ${want} input${max === 1 ? '' : 's'}, but the node has ${n}`);
}

/** Operators that ONNX added after opset 1 do not exist in models importing an older opset. */
function since(ctx: OnnxOpContext, opset: number | undefined): void {
  if (opset !== undefined && ctx.opset < opset) ctx.fail(`is an ONNX operator from opset ${opset}, but the model imports opset ${ctx.opset}`);
}

/**
 * Integer results need truncating and wrapping. Float storage rounds by itself, and every
 * bool result here is already 0 or 1.
 */
function exact(dtype: OnnxDType): boolean {
  return !isFloatType(dtype) && dtype !== 'bool';
}

// ---------------------------------------------------------------------------------------------
// erf

const TWO_OVER_SQRT_PI = 1.1283791670955126;
const INV_SQRT_PI = 0.5641895835477563;

/**
 * The error function to double precision (relative error below 1e-15). Below 2.5 it sums
 * erf(a) = 2/√π · e^(−a²) · Σ 2ⁿ a^(2n+1) / (1·3·…·(2n+1)), whose terms are all positive so
 * nothing cancels; from 2.5 it takes 1 − erfc(a), erfc by its continued fraction
 * e^(−a²)/√π · 1/(a + (1/2)/(a + 1/(a + (3/2)/(a + …)))) evaluated from the tail. From 6 on,
 * erfc is below half an ulp of 1.
 */
export function erf(x: number): number {
  if (Number.isNaN(x)) return x;
  const a = Math.abs(x);
  let r: number;
  if (a < 2.5) {
    const a2 = a * a;
    let term = a;
    let sum = a;
    for (let n = 1; n < 100; n++) {
      term *= (2 * a2) / (2 * n + 1);
      sum += term;
      if (term <= sum * 1e-17) break;
    }
    r = TWO_OVER_SQRT_PI * Math.exp(-a2) * sum;
  } else if (a < 6) {
    let t = a;
    for (let k = 40; k >= 1; k--) t = a + k / 2 / t;
    r = 1 - (INV_SQRT_PI * Math.exp(-a * a)) / t;
  } else {
    r = 1;
  }
  return x < 0 ? -r : r;
}

// ---------------------------------------------------------------------------------------------
// Elementwise loops

/** One input's values mapped through f into a fresh tensor of `dtype`. */
function mapValues(x: Tensor, dtype: OnnxDType, f: (v: number) => number): Tensor {
  const n = x.data.length;
  const out = allocValues(dtype, n);
  const src = x.data;
  if (exact(dtype)) for (let k = 0; k < n; k++) out[k] = castValue(f(src[k]!), dtype);
  else for (let k = 0; k < n; k++) out[k] = f(src[k]!);
  return { dtype, dims: [...x.dims], data: out };
}

/**
 * How an operand of shape `dims` is read when broadcast to `outDims`, split as broadcasting
 * loops run: over the output's leading axes (`idx`, the operand's row for each output row;
 * undefined when it is the row itself) and along the last axis (`last`: the operand's last
 * size, 1 when it repeats one value along the row).
 */
interface RowReader {
  readonly idx: Int32Array | undefined;
  readonly last: number;
}

function rowReader(dims: readonly number[], outDims: readonly number[]): RowReader {
  const rank = outDims.length;
  if (rank === 0) return { idx: undefined, last: 1 };
  const padded = [...new Array<number>(rank - dims.length).fill(1), ...dims];
  return { idx: broadcastIndex(padded.slice(0, -1), outDims.slice(0, -1)), last: padded[rank - 1]! };
}

/** f over two broadcast operands (their shapes as broadcasting sees them) into `dims`. */
function zip(
  a: TensorValues, ad: readonly number[], b: TensorValues, bd: readonly number[],
  dims: readonly number[], dtype: OnnxDType, f: (x: number, y: number) => number,
): Tensor {
  const n = numelOf(dims);
  const out = allocValues(dtype, n);
  const round = exact(dtype);
  const inner = dims.length ? dims[dims.length - 1]! : 1;
  const rows = inner ? n / inner : 0;
  const ra = rowReader(ad, dims);
  const rb = rowReader(bd, dims);
  const sa = ra.last === 1 ? 0 : 1;
  const sb = rb.last === 1 ? 0 : 1;
  let k = 0;
  for (let r = 0; r < rows; r++) {
    const pa = (ra.idx ? ra.idx[r]! : r) * ra.last;
    const pb = (rb.idx ? rb.idx[r]! : r) * rb.last;
    if (round) for (let i = 0; i < inner; i++) out[k++] = castValue(f(a[pa + i * sa]!, b[pb + i * sb]!), dtype);
    else for (let i = 0; i < inner; i++) out[k++] = f(a[pa + i * sa]!, b[pb + i * sb]!);
  }
  return { dtype, dims: [...dims], data: out };
}

// ---------------------------------------------------------------------------------------------
// Binary operators

/**
 * The operands' shapes as broadcasting sees them. From opset 7 that is multidirectional
 * broadcasting of the shapes as they are; before, B broadcasts onto A only with broadcast=1,
 * its axes placed from `axis` (default: the trailing axes), and shapes must match otherwise.
 */
function operandDims(ctx: OnnxOpContext, a: readonly number[], b: readonly number[]): [readonly number[], readonly number[]] {
  if (ctx.opset >= 7) return [a, b];
  if (ctx.attrInt('broadcast', 0) === 0) {
    if (!sameDims(a, b)) ctx.fail(`shapes ${dimsText(a)} and ${dimsText(b)} differ, and before opset 7 operands broadcast only with broadcast=1`);
    return [a, b];
  }
  if (b.length > a.length) ctx.fail(`B of shape ${dimsText(b)} has more axes than A of shape ${dimsText(a)} (before opset 7 only B broadcasts)`);
  const axis = ctx.attr('axis') === undefined ? a.length - b.length : normAxis(ctx, ctx.attrInt('axis'), Math.max(a.length, 1));
  if (axis + b.length > a.length) ctx.fail(`B of shape ${dimsText(b)} placed at axis ${axis} runs past A of shape ${dimsText(a)}`);
  const padded = [...new Array<number>(axis).fill(1), ...b, ...new Array<number>(a.length - axis - b.length).fill(1)];
  padded.forEach((d, i) => {
    if (d !== 1 && d !== a[i]) ctx.fail(`B of shape ${dimsText(b)} does not match A of shape ${dimsText(a)} from axis ${axis}`);
  });
  return [a, padded];
}

interface BinarySpec {
  /** Element types of A (and of B, which must have A's type unless `mixed`). */
  readonly types: TypeClass;
  /** Comparisons and logic give bool; everything else has A's type. */
  readonly bool?: boolean;
  /** Pow's exponent may have any numeric type. */
  readonly mixed?: boolean;
  readonly since?: number;
  /** The function for A's element type, after checking the node's attributes. */
  fn(ctx: OnnxOpContext, dtype: OnnxDType): (a: number, b: number) => number;
}

function binary(spec: BinarySpec): OnnxOpDef {
  return {
    infer(ctx) {
      since(ctx, spec.since);
      arity(ctx, 2, 2);
      const a = required(ctx, 0, 'A');
      const b = required(ctx, 1, 'B');
      checkType(ctx, a.dtype, spec.types, 'A');
      if (spec.mixed) checkType(ctx, b.dtype, 'numeric', 'B');
      else if (b.dtype !== a.dtype) ctx.fail(`inputs have different element types (${a.dtype} and ${b.dtype})`);
      spec.fn(ctx, a.dtype);
      return [{ dtype: spec.bool ? 'bool' : a.dtype, dims: broadcastDims(ctx, operandDims(ctx, a.dims, b.dims)) }];
    },
    evaluate(ctx, inputs) {
      const [a, b] = inputs as [Tensor, Tensor];
      const [ad, bd] = operandDims(ctx, a.dims, b.dims);
      return [zip(a.data, ad, b.data, bd, broadcastDims(ctx, [ad, bd]), spec.bool ? 'bool' : a.dtype, spec.fn(ctx, a.dtype))];
    },
  };
}

const arith = (f: (a: number, b: number) => number): OnnxOpDef => binary({ types: 'numeric', fn: () => f });
const compare = (types: TypeClass, f: (a: number, b: number) => boolean, from?: number): OnnxOpDef =>
  binary({ types, bool: true, ...(from ? { since: from } : {}), fn: () => (a, b) => (f(a, b) ? 1 : 0) });

function integerDivisor(ctx: OnnxOpContext, b: number): number {
  return b === 0 ? ctx.fail('integer division by zero') : b;
}

/** Python's remainder (sign of the divisor): Mod with fmod=0. */
function floorMod(a: number, b: number): number {
  const r = a % b;
  return r !== 0 && (r < 0) !== (b < 0) ? r + b : r;
}

/** C's pow: 1 to any power, and −1 to ±∞, are 1 (JavaScript gives NaN). */
function pow(a: number, b: number): number {
  if (a === 1 || (a === -1 && (b === Infinity || b === -Infinity))) return 1;
  return a ** b;
}

const BINARY_OPS: Record<string, OnnxOpDef> = {
  Add: arith((a, b) => a + b),
  Sub: arith((a, b) => a - b),
  Mul: arith((a, b) => a * b),
  Div: binary({
    types: 'numeric',
    // Integer division truncates toward zero, as C and ONNX Runtime do.
    fn: (ctx, t) => (isFloatType(t) ? (a, b) => a / b : (a, b) => Math.trunc(a / integerDivisor(ctx, b))),
  }),
  Mod: binary({
    types: 'numeric',
    since: 10,
    fn(ctx, t) {
      const fmod = ctx.attrInt('fmod', 0);
      if (fmod !== 0 && fmod !== 1) ctx.fail(`fmod must be 0 or 1, not ${fmod}`);
      const int = !isFloatType(t);
      // fmod=1 is C's fmod (sign of the dividend); fmod=0 is Python's % (sign of the divisor).
      // ONNX asks fmod=1 for floats; fmod=0 on floats computes NumPy's mod, as its reference does.
      if (fmod === 1) return int ? (a, b) => a % integerDivisor(ctx, b) : (a, b) => a % b;
      return int ? (a, b) => floorMod(a, integerDivisor(ctx, b)) : floorMod;
    },
  }),
  Pow: binary({ types: 'numeric', mixed: true, fn: () => pow }),
  Equal: compare('any', (a, b) => a === b),
  Less: compare('numeric', (a, b) => a < b),
  Greater: compare('numeric', (a, b) => a > b),
  LessOrEqual: compare('numeric', (a, b) => a <= b, 12),
  GreaterOrEqual: compare('numeric', (a, b) => a >= b, 12),
  And: compare('bool', (a, b) => a !== 0 && b !== 0),
  Or: compare('bool', (a, b) => a !== 0 || b !== 0),
  Xor: compare('bool', (a, b) => (a !== 0) !== (b !== 0)),
};

/** PRelu: the slope broadcasts onto X (unidirectionally); the result has X's shape. */
const PRELU: OnnxOpDef = {
  infer(ctx) {
    arity(ctx, 2, 2);
    const x = required(ctx, 0, 'X');
    const slope = required(ctx, 1, 'slope');
    checkType(ctx, x.dtype, 'numeric', 'X');
    if (slope.dtype !== x.dtype) ctx.fail(`inputs have different element types (${x.dtype} and ${slope.dtype})`);
    const dims = broadcastDims(ctx, [x.dims, slope.dims]);
    if (!sameDims(dims, x.dims)) ctx.fail(`slope of shape ${dimsText(slope.dims)} does not broadcast onto X of shape ${dimsText(x.dims)}`);
    return [{ dtype: x.dtype, dims: x.dims }];
  },
  evaluate(_ctx, inputs) {
    const [x, slope] = inputs as [Tensor, Tensor];
    return [zip(x.data, x.dims, slope.data, slope.dims, x.dims, x.dtype, (v, s) => (v < 0 ? v * s : v))];
  },
};

// ---------------------------------------------------------------------------------------------
// Variadic operators: Sum, Mean, Max, Min

function variadic(f: (acc: number, x: number) => number, mean = false): OnnxOpDef {
  const dimsOf = (ctx: OnnxOpContext, shapes: readonly (readonly number[])[]): number[] => {
    // Before opset 8 these took equal shapes only.
    if (ctx.opset < 8 && shapes.some((s) => !sameDims(s, shapes[0]!))) {
      ctx.fail(`shapes ${shapes.map(dimsText).join(' and ')} differ, and before opset 8 ${ctx.node.opType} does not broadcast`);
    }
    return broadcastDims(ctx, shapes);
  };
  return {
    infer(ctx) {
      arity(ctx, 1, Infinity);
      const xs = ctx.inputs.map((_, i) => required(ctx, i, `data_${i}`));
      checkType(ctx, xs[0]!.dtype, 'numeric', 'data_0');
      xs.forEach((x, i) => {
        if (x.dtype !== xs[0]!.dtype) ctx.fail(`inputs have different element types (data_0 is ${xs[0]!.dtype}, data_${i} ${x.dtype})`);
      });
      return [{ dtype: xs[0]!.dtype, dims: dimsOf(ctx, xs.map((x) => x.dims)) }];
    },
    evaluate(ctx, inputs) {
      const xs = inputs as Tensor[];
      const dtype = xs[0]!.dtype;
      const dims = dimsOf(ctx, xs.map((x) => x.dims));
      const n = numelOf(dims);
      const acc = new Float64Array(n);
      const inner = dims.length ? dims[dims.length - 1]! : 1;
      const rows = inner ? n / inner : 0;
      xs.forEach((x, j) => {
        const rx = rowReader(x.dims, dims);
        const step = rx.last === 1 ? 0 : 1;
        const d = x.data;
        let k = 0;
        for (let r = 0; r < rows; r++) {
          const p = (rx.idx ? rx.idx[r]! : r) * rx.last;
          if (j === 0) for (let i = 0; i < inner; i++) acc[k++] = d[p + i * step]!;
          else for (let i = 0; i < inner; i++, k++) acc[k] = f(acc[k]!, d[p + i * step]!);
        }
      });
      const out = allocValues(dtype, n);
      const round = exact(dtype);
      for (let k = 0; k < n; k++) {
        const v = mean ? acc[k]! / xs.length : acc[k]!;
        out[k] = round ? castValue(v, dtype) : v;
      }
      return [{ dtype, dims, data: out }];
    },
  };
}

// NaN wins, as NumPy's maximum and minimum (ONNX's reference) propagate it.
const maxOf = (a: number, b: number): number => (a > b || a !== a ? a : b);
const minOf = (a: number, b: number): number => (a < b || a !== a ? a : b);

const VARIADIC_OPS: Record<string, OnnxOpDef> = {
  Sum: variadic((a, b) => a + b),
  Mean: variadic((a, b) => a + b, true),
  Max: variadic(maxOf),
  Min: variadic(minOf),
};

// ---------------------------------------------------------------------------------------------
// Unary operators

interface UnarySpec {
  readonly types: TypeClass;
  /** IsNaN, IsInf and Not give bool. */
  readonly bool?: boolean;
  readonly since?: number;
  /** The function, after reading (and checking) the node's attributes. */
  fn(ctx: OnnxOpContext): (x: number) => number;
}

function unary(spec: UnarySpec): OnnxOpDef {
  return {
    infer(ctx) {
      since(ctx, spec.since);
      arity(ctx, 1, 1);
      const x = required(ctx, 0, 'X');
      checkType(ctx, x.dtype, spec.types, 'X');
      spec.fn(ctx);
      return [{ dtype: spec.bool ? 'bool' : x.dtype, dims: x.dims }];
    },
    evaluate(ctx, inputs) {
      const x = inputs[0]!;
      return [mapValues(x, spec.bool ? 'bool' : x.dtype, spec.fn(ctx))];
    },
  };
}

const simple = (types: TypeClass, f: (x: number) => number, from?: number): OnnxOpDef =>
  unary({ types, ...(from ? { since: from } : {}), fn: () => f });

/** Rounds half to even (ONNX Round, NumPy's round). */
function roundHalfEven(x: number): number {
  const f = Math.floor(x);
  const d = x - f;
  if (d < 0.5) return f;
  if (d > 0.5) return f + 1;
  return f % 2 === 0 ? f : f + 1;
}

/** log(1 + e^x) without overflow for large x. */
function softplus(x: number): number {
  return x > 0 ? x + Math.log1p(Math.exp(-x)) : Math.log1p(Math.exp(x));
}

function sigmoid(x: number): number {
  // e^(−x) overflows harmlessly to ∞ for very negative x (giving 0); for positive x it stays small.
  return 1 / (1 + Math.exp(-x));
}

const SQRT_2_OVER_PI = Math.sqrt(2 / Math.PI);

const UNARY_OPS: Record<string, OnnxOpDef> = {
  Neg: simple('signed', (x) => -x),
  Abs: simple('numeric', Math.abs),
  Sign: simple('numeric', Math.sign, 9),
  Sqrt: simple('float', Math.sqrt),
  Reciprocal: simple('float', (x) => 1 / x),
  Exp: simple('float', Math.exp),
  Log: simple('float', Math.log),
  Erf: simple('numeric', erf, 9),
  Tanh: simple('float', Math.tanh),
  Sigmoid: simple('float', sigmoid),
  // Integer Relu exists from opset 14; NaN passes through, as in NumPy's maximum.
  Relu: simple('numeric', (x) => (x < 0 ? 0 : x)),
  Softplus: simple('float', softplus),
  Softsign: simple('float', (x) => x / (1 + Math.abs(x))),
  Mish: simple('float', (x) => x * Math.tanh(softplus(x)), 18),
  HardSwish: simple('float', (x) => x * Math.max(0, Math.min(1, x / 6 + 0.5)), 14),
  Sin: simple('float', Math.sin, 7),
  Cos: simple('float', Math.cos, 7),
  Tan: simple('float', Math.tan, 7),
  Asin: simple('float', Math.asin, 7),
  Acos: simple('float', Math.acos, 7),
  Atan: simple('float', Math.atan, 7),
  Sinh: simple('float', Math.sinh, 9),
  Cosh: simple('float', Math.cosh, 9),
  Asinh: simple('float', Math.asinh, 9),
  Acosh: simple('float', Math.acosh, 9),
  Atanh: simple('float', Math.atanh, 9),
  Floor: simple('float', Math.floor),
  Ceil: simple('float', Math.ceil),
  Round: simple('float', roundHalfEven, 11),
  Not: unary({ types: 'bool', bool: true, fn: () => (x) => (x !== 0 ? 0 : 1) }),
  IsNaN: unary({ types: 'float', bool: true, since: 9, fn: () => (x) => (Number.isNaN(x) ? 1 : 0) }),
  IsInf: unary({
    types: 'float',
    bool: true,
    since: 10,
    fn(ctx) {
      const neg = ctx.attrInt('detect_negative', 1) !== 0;
      const pos = ctx.attrInt('detect_positive', 1) !== 0;
      return (x) => ((pos && x === Infinity) || (neg && x === -Infinity) ? 1 : 0);
    },
  }),
  LeakyRelu: unary({
    types: 'float',
    fn(ctx) {
      const alpha = ctx.attrFloat('alpha', 0.01);
      return (x) => (x < 0 ? alpha * x : x);
    },
  }),
  Elu: unary({
    types: 'float',
    fn(ctx) {
      const alpha = ctx.attrFloat('alpha', 1);
      return (x) => (x < 0 ? alpha * Math.expm1(x) : x);
    },
  }),
  Selu: unary({
    types: 'float',
    fn(ctx) {
      const alpha = ctx.attrFloat('alpha', 1.67326319217681884765625);
      const gamma = ctx.attrFloat('gamma', 1.05070102214813232421875);
      return (x) => gamma * (x > 0 ? x : alpha * Math.expm1(x));
    },
  }),
  Celu: unary({
    types: 'float',
    since: 12,
    fn(ctx) {
      const alpha = ctx.attrFloat('alpha', 1);
      if (alpha === 0) ctx.fail('alpha must not be 0');
      return (x) => Math.max(0, x) + Math.min(0, alpha * Math.expm1(x / alpha));
    },
  }),
  ThresholdedRelu: unary({
    types: 'float',
    since: 10,
    fn(ctx) {
      const alpha = ctx.attrFloat('alpha', 1);
      return (x) => (x > alpha ? x : 0);
    },
  }),
  HardSigmoid: unary({
    types: 'float',
    fn(ctx) {
      const alpha = ctx.attrFloat('alpha', 0.2);
      const beta = ctx.attrFloat('beta', 0.5);
      return (x) => Math.max(0, Math.min(1, alpha * x + beta));
    },
  }),
  Gelu: unary({
    types: 'float',
    since: 20,
    fn(ctx) {
      const approximate = ctx.attrString('approximate', 'none');
      if (approximate === 'none') return (x) => 0.5 * x * (1 + erf(x / Math.SQRT2));
      if (approximate === 'tanh') return (x) => 0.5 * x * (1 + Math.tanh(SQRT_2_OVER_PI * (x + 0.044715 * x * x * x)));
      return ctx.fail(`approximate must be 'none' or 'tanh', not '${approximate}'`);
    },
  }),
};

/** The bounds of Clip before opset 11 default to float's range (std::numeric_limits<float>). */
const FLOAT_MAX = 3.4028234663852886e38;

/** Clip: bounds are attributes before opset 11 and optional scalar inputs from 11. */
const CLIP: OnnxOpDef = {
  infer(ctx) {
    arity(ctx, 1, ctx.opset < 11 ? 1 : 3);
    const x = required(ctx, 0, 'input');
    checkType(ctx, x.dtype, ctx.opset < 12 ? 'float' : 'numeric', 'input');
    if (ctx.opset < 11) {
      ctx.attrFloat('min', -FLOAT_MAX);
      ctx.attrFloat('max', FLOAT_MAX);
    }
    (['min', 'max'] as const).forEach((what, j) => {
      const b = ctx.inputs[j + 1];
      if (!b) return;
      if (b.dims.length > 1 || numelOf(b.dims) !== 1) ctx.fail(`${what} must be a scalar, not of shape ${dimsText(b.dims)}`);
      if (b.dtype !== x.dtype) ctx.fail(`${what} has element type ${b.dtype}, but input has ${x.dtype}`);
    });
    return [{ dtype: x.dtype, dims: x.dims }];
  },
  evaluate(ctx, inputs) {
    const x = inputs[0]!;
    const lo = ctx.opset < 11 ? ctx.attrFloat('min', -FLOAT_MAX) : (inputs[1]?.data[0] ?? -Infinity);
    const hi = ctx.opset < 11 ? ctx.attrFloat('max', FLOAT_MAX) : (inputs[2]?.data[0] ?? Infinity);
    // min then max: when min > max every value becomes max, as ONNX specifies; NaN stays NaN.
    return [mapValues(x, x.dtype, (v) => {
      const a = v < lo ? lo : v;
      return a > hi ? hi : a;
    })];
  },
};

// ---------------------------------------------------------------------------------------------
// Reductions

interface ReduceSpec {
  /** Opset from which axes is the optional second input (with noop_with_empty_axes). */
  readonly axesInput: number;
  readonly step: 'sum' | 'prod' | 'max' | 'min' | 'logsumexp';
  /** Applied to each element before accumulating (SumSquare squares, L1 takes |x|). */
  readonly pre?: (x: number) => number;
  /** Applied to each accumulated value with its element count (Mean divides, L2 takes the root). */
  readonly post?: (acc: number, count: number) => number;
  /** ReduceMax and ReduceMin take bool from opset 20. */
  readonly bool?: boolean;
}

/** Where a reduction's axes come from at this opset, and whether they are given right. */
function checkReduceInputs(ctx: OnnxOpContext, spec: ReduceSpec): void {
  if (ctx.opset >= spec.axesInput) {
    arity(ctx, 1, 2);
    if (ctx.attr('axes')) ctx.fail(`takes axes as its second input from opset ${spec.axesInput}, not as an attribute (the model imports opset ${ctx.opset})`);
    const f = ctx.inputs[1];
    if (f && f.dims.length !== 1) ctx.fail(`axes must be a 1-D tensor, not of shape ${dimsText(f.dims)}`);
    if (f && f.dtype !== 'i64') ctx.fail(`axes must be an int64 tensor, not ${f.dtype}`);
  } else if (ctx.inputs.slice(1).some(Boolean)) {
    ctx.fail(`takes axes as an attribute before opset ${spec.axesInput}, not as an input (the model imports opset ${ctx.opset})`);
  }
}

/**
 * The sorted axes a reduction reduces; [] when it reduces nothing (noop_with_empty_axes on
 * empty axes). `axes` is the axes input's shape, when present; `read` gives its numbers
 * (ctx.constant when inferring, the given tensor when evaluating).
 */
function reduceAxes(ctx: OnnxOpContext, spec: ReduceSpec, rank: number, axes: { dims: readonly number[] } | undefined, read: () => Tensor): number[] {
  let list: number[];
  let noop = false;
  if (ctx.opset >= spec.axesInput) {
    noop = ctx.attrInt('noop_with_empty_axes', 0) !== 0;
    // An empty axes input needs no numbers: its shape says it all.
    list = !axes || numelOf(axes.dims) === 0 ? [] : intsOf(read());
  } else {
    list = [...ctx.attrInts('axes', [])];
  }
  if (list.length === 0) return noop ? [] : Array.from({ length: rank }, (_, i) => i);
  const out = list.map((a) => normAxis(ctx, a, rank, 'axes entry'));
  if (new Set(out).size !== out.length) ctx.fail(`axes [${list.join(', ')}] repeat an axis`);
  return out.sort((p, q) => p - q);
}

function reducedDims(ctx: OnnxOpContext, dims: readonly number[], axes: readonly number[]): number[] {
  const keep = ctx.attrInt('keepdims', 1) !== 0;
  return keep ? dims.map((d, i) => (axes.includes(i) ? 1 : d)) : dims.filter((_, i) => !axes.includes(i));
}

/** The reduction of x over `axes`, one value per element of the keepdims shape. */
function reduceValues(x: Tensor, axes: readonly number[], spec: ReduceSpec): Float64Array {
  const keepDims = x.dims.map((d, i) => (axes.includes(i) ? 1 : d));
  const m = numelOf(keepDims);
  const n = x.data.length;
  const count = m === 0 ? 0 : n / m;
  // For every input element, the output element it reduces into (itself when nothing reduces).
  const at = broadcastIndex(keepDims, x.dims) ?? Int32Array.from({ length: n }, (_, k) => k);
  const src = x.data;
  const acc = new Float64Array(m);
  const pre = spec.pre;
  switch (spec.step) {
    case 'sum':
      for (let k = 0; k < n; k++) acc[at[k]!] += pre ? pre(src[k]!) : src[k]!;
      break;
    case 'prod':
      acc.fill(1);
      for (let k = 0; k < n; k++) acc[at[k]!] *= src[k]!;
      break;
    case 'max':
    case 'logsumexp':
      acc.fill(-Infinity);
      for (let k = 0; k < n; k++) {
        const o = at[k]!;
        acc[o] = maxOf(acc[o]!, src[k]!);
      }
      break;
    case 'min':
      acc.fill(Infinity);
      for (let k = 0; k < n; k++) {
        const o = at[k]!;
        acc[o] = minOf(acc[o]!, src[k]!);
      }
      break;
  }
  if (spec.step === 'logsumexp') {
    // log Σ e^x = max + log Σ e^(x − max): no overflow. An infinite or NaN max is the result.
    const sums = new Float64Array(m);
    for (let k = 0; k < n; k++) {
      const o = at[k]!;
      if (Number.isFinite(acc[o]!)) sums[o] += Math.exp(src[k]! - acc[o]!);
    }
    for (let o = 0; o < m; o++) if (Number.isFinite(acc[o]!)) acc[o] = acc[o]! + Math.log(sums[o]!);
  }
  if (spec.post) for (let o = 0; o < m; o++) acc[o] = spec.post(acc[o]!, count);
  return acc;
}

/** The least and greatest values of an integer or bool type (int64's as doubles). */
function integerRange(dtype: OnnxDType): [number, number] {
  switch (dtype) {
    case 'bool': return [0, 1];
    case 'i8': return [-128, 127];
    case 'u8': return [0, 255];
    case 'i16': return [-32768, 32767];
    case 'u16': return [0, 65535];
    case 'i32': return [-2147483648, 2147483647];
    case 'u32': return [0, 4294967295];
    case 'u64': return [0, 2 ** 64];
    default: return [-(2 ** 63), 2 ** 63];
  }
}

function reduction(spec: ReduceSpec): OnnxOpDef {
  return {
    infer(ctx) {
      const x = required(ctx, 0, 'data');
      if (!spec.bool || ctx.opset < 20) checkType(ctx, x.dtype, 'numeric', 'data');
      checkReduceInputs(ctx, spec);
      const axes = reduceAxes(ctx, spec, x.dims.length, ctx.inputs[1], () => ctx.constant(1, 'axes'));
      return [{ dtype: x.dtype, dims: reducedDims(ctx, x.dims, axes) }];
    },
    evaluate(ctx, inputs) {
      const x = inputs[0]!;
      const axes = reduceAxes(ctx, spec, x.dims.length, inputs[1], () => inputs[1]!);
      const acc = reduceValues(x, axes, spec);
      const out = allocValues(x.dtype, acc.length);
      if (isFloatType(x.dtype)) out.set(acc);
      else {
        // An empty ReduceMax/ReduceMin of integers or bools gives the type's least/greatest value, not ∓∞.
        const [lo, hi] = integerRange(x.dtype);
        for (let o = 0; o < acc.length; o++) {
          const v = acc[o]!;
          out[o] = v === -Infinity ? lo : v === Infinity ? hi : castValue(v, x.dtype);
        }
      }
      return [{ dtype: x.dtype, dims: reducedDims(ctx, x.dims, axes), data: out }];
    },
  };
}

const REDUCE_OPS: Record<string, OnnxOpDef> = {
  ReduceSum: reduction({ axesInput: 13, step: 'sum' }),
  ReduceMean: reduction({ axesInput: 18, step: 'sum', post: (s, n) => s / n }),
  ReduceSumSquare: reduction({ axesInput: 18, step: 'sum', pre: (x) => x * x }),
  ReduceL1: reduction({ axesInput: 18, step: 'sum', pre: Math.abs }),
  ReduceL2: reduction({ axesInput: 18, step: 'sum', pre: (x) => x * x, post: Math.sqrt }),
  ReduceLogSum: reduction({ axesInput: 18, step: 'sum', post: Math.log }),
  ReduceLogSumExp: reduction({ axesInput: 18, step: 'logsumexp' }),
  ReduceProd: reduction({ axesInput: 18, step: 'prod' }),
  ReduceMax: reduction({ axesInput: 18, step: 'max', bool: true }),
  ReduceMin: reduction({ axesInput: 18, step: 'min', bool: true }),
};

/** ArgMax/ArgMin: the int64 index of the extreme along `axis` (the first, or the last with select_last_index). */
function argExtreme(max: boolean): OnnxOpDef {
  const read = (ctx: OnnxOpContext, dims: readonly number[]) => {
    const axis = normAxis(ctx, ctx.attrInt('axis', 0), dims.length);
    const keep = ctx.attrInt('keepdims', 1) !== 0;
    const last = ctx.attrInt('select_last_index', 0) !== 0;
    const out = keep ? dims.map((d, i) => (i === axis ? 1 : d)) : dims.filter((_, i) => i !== axis);
    return { axis, last, out };
  };
  return {
    infer(ctx): InferredOutput[] {
      arity(ctx, 1, 1);
      const x = required(ctx, 0, 'data');
      checkType(ctx, x.dtype, 'numeric', 'data');
      const { axis, out } = read(ctx, x.dims);
      if (x.dims[axis] === 0) ctx.fail(`cannot take ${ctx.node.opType} over axis ${axis} of size 0`);
      return [{ dtype: 'i64', dims: out }];
    },
    evaluate(ctx, inputs) {
      const x = inputs[0]!;
      const { axis, last, out } = read(ctx, x.dims);
      const len = x.dims[axis]!;
      const inner = numelOf(x.dims.slice(axis + 1));
      const outer = numelOf(x.dims.slice(0, axis));
      const data = new Float64Array(outer * inner);
      const src = x.data;
      // NaN counts as the extreme, as in NumPy (ONNX's reference).
      const better = max ? (v: number, b: number) => v > b || (v !== v && b === b) : (v: number, b: number) => v < b || (v !== v && b === b);
      for (let o = 0; o < outer; o++) {
        for (let i = 0; i < inner; i++) {
          const base = o * len * inner + i;
          let best = src[base]!;
          let at = 0;
          for (let j = 1; j < len; j++) {
            const v = src[base + j * inner]!;
            if (better(v, best) || (last && (v === best || (v !== v && best !== best)))) {
              best = v;
              at = j;
            }
          }
          data[o * inner + i] = at;
        }
      }
      return [{ dtype: 'i64', dims: out, data }];
    },
  };
}

export const ELEMENTWISE_OPS: Readonly<Record<string, OnnxOpDef>> = {
  ...BINARY_OPS,
  PRelu: PRELU,
  ...VARIADIC_OPS,
  ...UNARY_OPS,
  Clip: CLIP,
  ...REDUCE_OPS,
  ArgMax: argExtreme(true),
  ArgMin: argExtreme(false),
};
