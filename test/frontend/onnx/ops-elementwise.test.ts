// The elementwise operators and reductions of the ONNX frontend (ops/elementwise.ts): every
// ONNX conformance case of these operators (shapes through inferGraph, values through
// folding), and small hand-built graphs for what the cases do not reach: broadcasting and its
// pre-opset-7 form, integer semantics, Pow's mixed types, erf's accuracy, activations'
// attributes and opsets, Clip's bounds as attributes or inputs, and reductions whose axes are an
// attribute or an input depending on the opset.

import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { inferGraph, type InferredGraph, type ValueFacts } from '../../../src/frontend/onnx/infer.js';
import { readOnnxModel, readTensorFile, type OnnxModel } from '../../../src/frontend/onnx/model.js';
import { erf } from '../../../src/frontend/onnx/ops/elementwise.js';
import { numelOf, type Tensor } from '../../../src/frontend/onnx/tensor.js';
import { attr, bool, caseWriter, f32, i32, i64, OnnxGraphBuilder, vecI64, type AttrValue, type ElemType, type TensorData } from '../../support/onnx-build.js';
import { errorOf, expectClose as expectCloseTo } from '../../support/expect-values.js';

const CASES = fileURLToPath(new URL('../../data/onnx-node-tests/', import.meta.url));

const writeCase = caseWriter('gyges-ops-elementwise-');
function build(opset: number, body: (b: OnnxGraphBuilder) => void): InferredGraph {
  const b = new OnnxGraphBuilder({ name: 'g', opset });
  body(b);
  return inferGraph(readOnnxModel(writeCase(b)));
}

/** One node over constant inputs (initializers; undefined leaves an optional input out): its output's facts. */
function run(opType: string, inputs: readonly (TensorData | undefined)[], attrs: Record<string, AttrValue> = {}, opset = 17): ValueFacts {
  const g = build(opset, (b) => {
    const names = inputs.map((t, i) => (t ? b.initializer(`in${i}`, t) : ''));
    b.op(opType, names, attrs, 'out');
  });
  return g.facts.get('out')!;
}

/** One node over graph inputs of the given types and shapes: its output's facts (shape only). */
function shapeOf(opType: string, inputs: readonly [ElemType, number[]][], attrs: Record<string, AttrValue> = {}, opset = 17): ValueFacts {
  const g = build(opset, (b) => {
    const names = inputs.map(([t, dims], i) => b.input(`x${i}`, t, dims));
    b.op(opType, names, attrs, 'out');
  });
  return g.facts.get('out')!;
}

function values(f: ValueFacts): number[] {
  expect(f.value, `${f.name} folded`).toBeDefined();
  // + 0 turns -0 into 0, which toEqual would tell apart.
  return Array.from(f.value!.data, (v) => v + 0);
}

const expectClose = (got: ArrayLike<number>, want: ArrayLike<number>, rel = 1e-6) => expectCloseTo(got, want, rel);

function dimsText(dims: readonly number[]): string {
  return `[${dims.join(', ')}]`;
}


// ---------------------------------------------------------------------------------------------

describe('ONNX conformance cases', () => {
  const MINE = /^test_(add|div|equal|erf|mul|neg|not|pow|reciprocal|relu|sigmoid|sin|cos|sqrt|sub|tanh|reduce_mean|reduce_sum|reduce_sum_square)(_|$)/;
  const cases = readdirSync(CASES).filter((d) => MINE.test(d)).sort();

  it('finds the cases', () => {
    expect(cases.length).toBeGreaterThanOrEqual(67);
  });

  /** The model with the chosen graph inputs turned into initializers holding the case's inputs. */
  function withInputs(model: OnnxModel, inputs: readonly Tensor[], which: (t: Tensor) => boolean = () => true): OnnxModel {
    const initializers = new Map(model.graph.initializers);
    const kept = model.graph.inputs.filter((input, i) => {
      const t = inputs[i]!;
      if (!which(t)) return true;
      initializers.set(input.name, { name: input.name, dtype: t.dtype, dims: t.dims, external: false, values: () => t.data });
      return false;
    });
    return { ...model, graph: { ...model.graph, inputs: kept, initializers } };
  }

  it.each(cases)('%s', (name) => {
    const root = join(CASES, name);
    const model = readOnnxModel(join(root, 'model.onnx'));
    const data = join(root, 'test_data_set_0');
    const files = readdirSync(data);
    const inputs = model.graph.inputs.map((_, i) => readTensorFile(join(data, `input_${i}.pb`)));
    const outputs = files.filter((f) => f.startsWith('output_')).map((_, i) => readTensorFile(join(data, `output_${i}.pb`)));
    expect(outputs.length).toBe(model.graph.outputs.length);

    // Shapes from the declared input shapes alone. ReduceSum's axes may be a graph input:
    // unless it is empty (its shape says so), the result's shape depends on its numbers.
    // Inputs with no elements become (empty) initializers: graph inputs bind positive sizes only.
    const node = model.graph.nodes[0]!;
    const shapesOnly = withInputs(model, inputs, (t) => numelOf(t.dims) === 0);
    if (node.opType === 'ReduceSum' && node.inputs[1] && numelOf(inputs[1]!.dims) > 0) {
      const e = errorOf(() => inferGraph(shapesOnly));
      expect(e.code).toBe('GY5006');
      expect(e.message).toMatch(/input 1 \(axes\) must be known when compiling/);
    } else {
      const g = inferGraph(shapesOnly);
      model.graph.outputs.forEach((o, i) => {
        const f = g.facts.get(o.name)!;
        expect(f.dims).toEqual(outputs[i]!.dims);
        expect(f.dtype).toBe(outputs[i]!.dtype);
      });
    }

    // Values by folding the node over the case's inputs.
    const g = inferGraph(withInputs(model, inputs));
    model.graph.outputs.forEach((o, i) => {
      const f = g.facts.get(o.name)!;
      const want = outputs[i]!;
      expect(f.value, 'folded').toBeDefined();
      expect(f.dtype).toBe(want.dtype);
      expect(f.dims).toEqual(want.dims);
      if (want.dtype === 'f32' || want.dtype === 'f64') expectClose(f.value!.data, want.data, 1e-5);
      else expect(Array.from(f.value!.data)).toEqual(Array.from(want.data));
    });
  });
});

// ---------------------------------------------------------------------------------------------

describe('broadcasting', () => {
  it('broadcasts multidirectionally', () => {
    const out = run('Add', [f32([2, 3, 1], [0, 10, 20, 30, 40, 50]), f32([4], [1, 2, 3, 4])]);
    expect(out.dims).toEqual([2, 3, 4]);
    expect(values(out).slice(0, 8)).toEqual([1, 2, 3, 4, 11, 12, 13, 14]);
    expect(values(out).slice(-4)).toEqual([51, 52, 53, 54]);
    expect(shapeOf('Mul', [['float32', [1, 5]], ['float32', [3, 1]]]).dims).toEqual([3, 5]);
    expect(shapeOf('Sub', [['float32', []], ['float32', [2, 2]]]).dims).toEqual([2, 2]);
  });

  it('reads every operand as NumPy broadcasting does', () => {
    const pairs: [number[], number[]][] = [
      [[2, 3, 4], [2, 3, 4]], [[2, 3, 4], [4]], [[2, 3, 4], [3, 1]], [[2, 1, 4], [3, 1]], [[1], [2, 3]],
      [[], [2, 2]], [[3, 1], [1, 4]], [[2, 3, 1], [2, 3, 1]], [[1, 1, 1], [5]], [[2, 1, 3, 1], [4, 1, 2]],
    ];
    const iota = (dims: number[], from: number) => f32(dims, Array.from({ length: dims.reduce((p, d) => p * d, 1) }, (_, i) => from + i));
    for (const [ad, bd] of pairs) {
      const out = run('Sub', [iota(ad, 0), iota(bd, 1000)]);
      const dims = out.dims;
      // The naive reading: each output index, right-aligned onto each operand, size-1 axes pinned to 0.
      const at = (od: number[], k: number): number => {
        const idx: number[] = [];
        for (let a = dims.length - 1, r = k; a >= 0; a--) {
          idx.unshift(r % dims[a]!);
          r = Math.floor(r / dims[a]!);
        }
        return idx.slice(dims.length - od.length).reduce((flat, i, a) => flat * od[a]! + (od[a] === 1 ? 0 : i), 0);
      };
      const want = Array.from({ length: dims.reduce((p, d) => p * d, 1) }, (_, k) => at(ad, k) - (1000 + at(bd, k)));
      expect(values(out), `${dimsText(ad)} - ${dimsText(bd)}`).toEqual(want);
      expect(values(run('Sum', [iota(ad, 0), iota(bd, 1000)])).length).toBe(want.length);
    }
  });

  it('fails on shapes that do not broadcast, naming the node', () => {
    const e = errorOf(() => shapeOf('Add', [['float32', [2, 3]], ['float32', [4]]]));
    expect(e.code).toBe('GY5006');
    expect(e.message).toMatch(/node '\/Add'.*Add: shapes \[2, 3\] and \[4\] do not broadcast/);
    expect(errorOf(() => shapeOf('Equal', [['int64', [3, 2]], ['int64', [3]]])).message).toMatch(/do not broadcast/);
  });

  it('fails on operands of different element types', () => {
    expect(errorOf(() => shapeOf('Add', [['float32', [2]], ['int64', [2]]])).message).toMatch(/different element types \(f32 and i64\)/);
  });

  it('before opset 7, broadcasts B onto A only with broadcast=1, from `axis`', () => {
    const a = f32([2, 3, 2], Array.from({ length: 12 }, (_, i) => i));
    const out = run('Add', [a, f32([3], [100, 200, 300])], { broadcast: attr.int(1), axis: attr.int(1) }, 6);
    expect(out.dims).toEqual([2, 3, 2]);
    expect(values(out)).toEqual([100, 101, 202, 203, 304, 305, 106, 107, 208, 209, 310, 311]);
    // Without axis B aligns with A's trailing axes.
    expect(values(run('Mul', [a, f32([2], [1, -1])], { broadcast: attr.int(1) }, 6)).slice(0, 4)).toEqual([0, -1, 2, -3]);
    expect(errorOf(() => run('Add', [a, f32([2], [1, 2])], {}, 6)).message).toMatch(/broadcast only with broadcast=1/);
    expect(errorOf(() => run('Add', [a, f32([3], [1, 2, 3])], { broadcast: attr.int(1) }, 6)).message).toMatch(/does not match A of shape \[2, 3, 2\] from axis 2/);
    // From opset 7 the same operands broadcast as NumPy does.
    expect(errorOf(() => run('Add', [a, f32([3], [1, 2, 3])], {}, 7)).message).toMatch(/do not broadcast/);
  });
});

describe('integer semantics', () => {
  it('Div truncates toward zero for integer types', () => {
    const a = [7, -7, 7, -7, 6, 0];
    const b = [2, 2, -2, -2, 4, 5];
    const want = [3, -3, -3, 3, 1, 0];
    const out32 = run('Div', [i32([6], a), i32([6], b)]);
    expect(out32.dtype).toBe('i32');
    expect(values(out32)).toEqual(want);
    const out64 = run('Div', [i64([6], a), i64([6], b)]);
    expect(out64.dtype).toBe('i64');
    expect(values(out64)).toEqual(want);
    expect(values(run('Div', [f32([2], [7, -7]), f32([2], [2, 2])]))).toEqual([3.5, -3.5]);
    expect(errorOf(() => run('Div', [i64([2], [1, 2]), i64([2], [1, 0])])).message).toMatch(/integer division by zero/);
  });

  it('Mod follows the divisor with fmod=0 and the dividend with fmod=1', () => {
    const a = i64([4], [-4, 7, 5, -3]);
    const b = i64([4], [3, -3, -2, 2]);
    expect(values(run('Mod', [a, b]))).toEqual([2, -2, -1, 1]);
    expect(values(run('Mod', [a, b], { fmod: attr.int(1) }))).toEqual([-1, 1, 1, -1]);
    expectClose(values(run('Mod', [f32([2], [5.5, -5.5]), f32([2], [2, 2])], { fmod: attr.int(1) })), [1.5, -1.5]);
    expect(errorOf(() => run('Mod', [a, b], {}, 9)).message).toMatch(/from opset 10, but the model imports opset 9/);
  });

  it('integer results wrap and truncate', () => {
    expect(values(run('Add', [i32([1], [2147483647]), i32([1], [1])]))).toEqual([-2147483648]);
    expect(values(run('Mul', [i32([1], [65536]), i32([1], [65536])]))).toEqual([0]);
    expect(values(run('Mean', [i64([2], [1, 2]), i64([2], [2, 2])]))).toEqual([1, 2]);
    expect(values(run('ReduceMean', [i64([3], [1, 2, 2])], { keepdims: attr.int(0) }, 13))).toEqual([1]);
  });
});

describe('Pow', () => {
  it('gives the base type whatever the exponent type', () => {
    const fi = run('Pow', [f32([3], [2, 3, 4]), i64([3], [2, 3, -1])]);
    expect(fi.dtype).toBe('f32');
    expect(values(fi)).toEqual([4, 27, 0.25]);
    const if_ = run('Pow', [i64([3], [2, 4, 9]), f32([3], [0.5, 0.5, 0.5])]);
    expect(if_.dtype).toBe('i64');
    expect(values(if_)).toEqual([1, 2, 3]);
    const ii = run('Pow', [i32([2], [2, 3]), i32([2], [10, 3])]);
    expect(ii.dtype).toBe('i32');
    expect(values(ii)).toEqual([1024, 27]);
    expect(shapeOf('Pow', [['float32', [2, 3]], ['int32', []]]).dims).toEqual([2, 3]);
  });

  it('follows C pow at the edges and rejects a bool base', () => {
    expect(values(run('Pow', [f32([3], [1, -1, 0]), f32([3], [NaN, Infinity, 0])]))).toEqual([1, 1, 1]);
    expect(errorOf(() => shapeOf('Pow', [['bool', [2]], ['float32', [2]]])).message).toMatch(/A has element type bool, but Pow takes numeric tensors/);
  });
});

describe('comparisons and logic', () => {
  it('give bool', () => {
    const a = f32([4], [1, 2, 3, NaN]);
    const b = f32([4], [2, 2, 2, NaN]);
    const cases: [string, number[]][] = [
      ['Equal', [0, 1, 0, 0]], ['Less', [1, 0, 0, 0]], ['Greater', [0, 0, 1, 0]],
      ['LessOrEqual', [1, 1, 0, 0]], ['GreaterOrEqual', [0, 1, 1, 0]],
    ];
    for (const [op, want] of cases) {
      const out = run(op, [a, b]);
      expect(out.dtype, op).toBe('bool');
      expect(values(out), op).toEqual(want);
    }
    expect(values(run('Equal', [i64([3], [1, 2, 3]), i64([1], [2])]))).toEqual([0, 1, 0]);
    expect(errorOf(() => run('LessOrEqual', [a, b], {}, 11)).message).toMatch(/from opset 12/);
  });

  it('And, Or, Xor and Not take bool', () => {
    const p = bool([4], [0, 0, 1, 1]);
    const q = bool([4], [0, 1, 0, 1]);
    expect(values(run('And', [p, q]))).toEqual([0, 0, 0, 1]);
    expect(values(run('Or', [p, q]))).toEqual([0, 1, 1, 1]);
    expect(values(run('Xor', [p, q]))).toEqual([0, 1, 1, 0]);
    expect(values(run('Not', [p]))).toEqual([1, 1, 0, 0]);
    expect(run('Not', [p]).dtype).toBe('bool');
    expect(errorOf(() => shapeOf('And', [['float32', [2]], ['float32', [2]]])).message).toMatch(/takes bool tensors/);
  });

  it('IsNaN and IsInf', () => {
    const x = f32([4], [1, NaN, Infinity, -Infinity]);
    expect(values(run('IsNaN', [x]))).toEqual([0, 1, 0, 0]);
    expect(values(run('IsInf', [x]))).toEqual([0, 0, 1, 1]);
    expect(values(run('IsInf', [x], { detect_negative: attr.int(0) }))).toEqual([0, 0, 1, 0]);
    expect(values(run('IsInf', [x], { detect_positive: attr.int(0) }))).toEqual([0, 0, 0, 1]);
  });
});

describe('variadic Sum, Mean, Max, Min', () => {
  it('broadcast over any number of inputs', () => {
    const a = f32([2, 1], [1, 2]);
    const b = f32([3], [10, 20, 30]);
    const c = f32([], [100]);
    const sum = run('Sum', [a, b, c]);
    expect(sum.dims).toEqual([2, 3]);
    expect(values(sum)).toEqual([111, 121, 131, 112, 122, 132]);
    expect(values(run('Mean', [a, b, c]))).toEqual([111 / 3, 121 / 3, 131 / 3, 112 / 3, 122 / 3, 132 / 3].map(Math.fround));
    expect(values(run('Max', [a, b]))).toEqual([10, 20, 30, 10, 20, 30]);
    expect(values(run('Min', [f32([3], [1, 5, 3])]))).toEqual([1, 5, 3]);
  });

  it('propagate NaN in Max and Min', () => {
    expect(values(run('Max', [f32([2], [NaN, 1]), f32([2], [1, NaN])]))).toEqual([NaN, NaN]);
    expect(values(run('Min', [f32([2], [NaN, 1]), f32([2], [1, NaN])]))).toEqual([NaN, NaN]);
  });

  it('do not broadcast before opset 8', () => {
    expect(errorOf(() => shapeOf('Sum', [['float32', [2, 3]], ['float32', [3]]], {}, 7)).message).toMatch(/before opset 8 Sum does not broadcast/);
    expect(shapeOf('Sum', [['float32', [2, 3]], ['float32', [3]]], {}, 8).dims).toEqual([2, 3]);
  });
});

describe('erf', () => {
  // Reference values from mpmath at 30 digits.
  const known: [number, number][] = [
    [1e-6, 1.1283791670951364e-6],
    [0.1, 0.1124629160182849],
    [0.5, 0.5204998778130465],
    [1, 0.8427007929497149],
    [-2, -0.9953222650189527],
    [2.5, 0.999593047982555],
    [3.5, 0.9999992569016276],
    [-4.2, -0.9999999971445058],
    [5.5, 0.9999999999999927],
  ];

  it('is accurate to double precision', () => {
    for (const [x, want] of known) expect(Math.abs(erf(x) - want) / Math.abs(want), `erf(${x})`).toBeLessThan(2e-15);
    expect(erf(0)).toBe(0);
    expect(erf(40)).toBe(1);
    expect(erf(-Infinity)).toBe(-1);
    expect(erf(NaN)).toBeNaN();
  });

  it('is odd and increasing across the switch between its two forms', () => {
    let prev = -1;
    for (let x = -6; x <= 6; x += 0.001) {
      const y = erf(x);
      expect(y).toBeGreaterThanOrEqual(prev);
      expect(erf(-x)).toBe(-y);
      prev = y;
    }
  });

  it('folds to the float32 rounding of the exact value', () => {
    const out = run('Erf', [f32([known.length], known.map(([x]) => x))]);
    expect(values(out)).toEqual(known.map(([x]) => Math.fround(erf(Math.fround(x)))));
    expectClose(values(out), known.map(([, v]) => v), 1e-7);
  });
});

describe('unary activations', () => {
  const x = f32([6], [-3, -1, -0.5, 0, 0.5, 2]);
  const xs = [-3, -1, -0.5, 0, 0.5, 2];

  it('compute the function of each element', () => {
    const cases: [string, (v: number) => number][] = [
      ['Neg', (v) => -v], ['Abs', Math.abs], ['Sign', Math.sign], ['Exp', Math.exp], ['Tanh', Math.tanh],
      ['Sigmoid', (v) => 1 / (1 + Math.exp(-v))], ['Relu', (v) => Math.max(v, 0)], ['Softplus', (v) => Math.log(1 + Math.exp(v))],
      ['Sin', Math.sin], ['Cos', Math.cos], ['Floor', Math.floor], ['Ceil', Math.ceil], ['Softsign', (v) => v / (1 + Math.abs(v))],
    ];
    for (const [op, f] of cases) {
      const out = run(op, [x]);
      expect(out.dtype, op).toBe('f32');
      expectClose(values(out), xs.map(f), 1e-6);
    }
    expectClose(values(run('Sqrt', [f32([3], [4, 2, 0])])), [2, Math.SQRT2, 0]);
    expectClose(values(run('Reciprocal', [f32([2], [4, -0.5])])), [0.25, -2]);
    expectClose(values(run('Log', [f32([2], [1, Math.E])])), [0, 1]);
  });

  it('read their attributes', () => {
    expectClose(values(run('LeakyRelu', [x])), xs.map((v) => (v < 0 ? 0.01 * v : v)));
    expectClose(values(run('LeakyRelu', [x], { alpha: attr.float(0.2) })), xs.map((v) => (v < 0 ? 0.2 * v : v)));
    expectClose(values(run('Elu', [x], { alpha: attr.float(2) })), xs.map((v) => (v < 0 ? 2 * (Math.exp(v) - 1) : v)));
    expectClose(values(run('HardSigmoid', [x])), xs.map((v) => Math.max(0, Math.min(1, 0.2 * v + 0.5))));
    expectClose(values(run('HardSigmoid', [x], { alpha: attr.float(0.5), beta: attr.float(0.25) })), xs.map((v) => Math.max(0, Math.min(1, 0.5 * v + 0.25))));
  });

  it('cover the less common activations', () => {
    const selu = (v: number) => 1.0507009873554805 * (v > 0 ? v : 1.6732632423543772 * (Math.exp(v) - 1));
    expectClose(values(run('Selu', [x])), xs.map(selu));
    expectClose(values(run('HardSwish', [x], {}, 14)), xs.map((v) => v * Math.max(0, Math.min(1, v / 6 + 0.5))));
    expectClose(values(run('Mish', [x], {}, 18)), xs.map((v) => v * Math.tanh(Math.log1p(Math.exp(v)))));
    expectClose(values(run('ThresholdedRelu', [x], { alpha: attr.float(0.25) })), xs.map((v) => (v > 0.25 ? v : 0)));
    expectClose(values(run('Celu', [x], { alpha: attr.float(2) })), xs.map((v) => Math.max(0, v) + Math.min(0, 2 * (Math.exp(v / 2) - 1))));
    // PRelu's slope broadcasts onto X, never the other way.
    expect(values(run('PRelu', [f32([2, 2], [-1, 2, -3, 4]), f32([2], [0.5, 0.25])]))).toEqual([-0.5, 2, -1.5, 4]);
    expect(errorOf(() => shapeOf('PRelu', [['float32', [2]], ['float32', [3, 2]]])).message).toMatch(/slope of shape \[3, 2\] does not broadcast onto X of shape \[2\]/);
    expect(errorOf(() => shapeOf('HardSwish', [['float32', [2]]], {}, 13)).message).toMatch(/from opset 14/);
  });

  it('Softplus and Sigmoid do not overflow', () => {
    expect(values(run('Softplus', [f32([3], [100, -100, 1000])]))).toEqual([100, Math.fround(Math.exp(-100)), 1000]);
    expect(values(run('Sigmoid', [f32([2], [-1000, 1000])]))).toEqual([0, 1]);
  });

  it('Round rounds half to even', () => {
    expect(values(run('Round', [f32([9], [-2.5, -1.5, -0.5, 0.5, 1.5, 2.5, 2.4, 2.6, -2.6])]))).toEqual([-2, -2, 0, 0, 2, 2, 2, 3, -3]);
    expect(errorOf(() => run('Round', [x], {}, 10)).message).toMatch(/from opset 11/);
  });

  it('Gelu exists from opset 20, exact or with the tanh approximation', () => {
    const exact = xs.map((v) => 0.5 * v * (1 + erf(v / Math.SQRT2)));
    const tanh = xs.map((v) => 0.5 * v * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (v + 0.044715 * v ** 3))));
    expectClose(values(run('Gelu', [x], {}, 20)), exact);
    expectClose(values(run('Gelu', [x], { approximate: attr.string('tanh') }, 20)), tanh);
    expect(errorOf(() => run('Gelu', [x], {}, 18)).message).toMatch(/Gelu: is an ONNX operator from opset 20, but the model imports opset 18/);
    expect(errorOf(() => shapeOf('Gelu', [['float32', [2]]], { approximate: attr.string('fast') }, 20)).message).toMatch(/approximate must be 'none' or 'tanh', not 'fast'/);
  });

  it('float-only operators reject integer inputs', () => {
    expect(errorOf(() => shapeOf('Sqrt', [['int64', [2]]])).message).toMatch(/X has element type i64, but Sqrt takes floating-point tensors/);
    expect(values(run('Abs', [i64([2], [-3, 4])]))).toEqual([3, 4]);
    expect(values(run('Erf', [i32([2], [0, 3])]))).toEqual([0, 0]);
  });
});

describe('Clip', () => {
  const x = f32([5], [-5, -1, 0, 1, 5]);

  it('takes its bounds as attributes before opset 11', () => {
    expect(values(run('Clip', [x], { min: attr.float(-2), max: attr.float(2) }, 6))).toEqual([-2, -1, 0, 1, 2]);
    expect(values(run('Clip', [x], { max: attr.float(0.5) }, 6))).toEqual([-5, -1, 0, 0.5, 0.5]);
    expect(errorOf(() => run('Clip', [x, f32([], [0])], {}, 10)).message).toMatch(/takes 1 input, but the node has 2/);
  });

  it('takes its bounds as optional scalar inputs from opset 11', () => {
    expect(values(run('Clip', [x, f32([], [-2]), f32([], [2])], {}, 13))).toEqual([-2, -1, 0, 1, 2]);
    expect(values(run('Clip', [x, undefined, f32([], [0])], {}, 13))).toEqual([-5, -1, 0, 0, 0]);
    expect(values(run('Clip', [x, f32([], [0])], {}, 13))).toEqual([0, 0, 0, 1, 5]);
    expect(values(run('Clip', [x], {}, 13))).toEqual([-5, -1, 0, 1, 5]);
    // min above max makes everything max.
    expect(values(run('Clip', [x, f32([], [3]), f32([], [1])], {}, 13))).toEqual([1, 1, 1, 1, 1]);
    expect(values(run('Clip', [i64([3], [-9, 4, 9]), i64([], [0]), i64([], [5])], {}, 13))).toEqual([0, 4, 5]);
    expect(errorOf(() => shapeOf('Clip', [['float32', [5]], ['float32', [2]]], {}, 13)).message).toMatch(/min must be a scalar, not of shape \[2\]/);
  });
});

describe('reductions', () => {
  // 2 x 3: [[1, 2, 3], [4, 5, 6]]
  const x = f32([2, 3], [1, 2, 3, 4, 5, 6]);

  it('ReduceMean takes axes as an attribute before opset 18 and as an input from 18', () => {
    const before = run('ReduceMean', [x], { axes: attr.ints([1]), keepdims: attr.int(0) }, 13);
    expect(before.dims).toEqual([2]);
    expect(values(before)).toEqual([2, 5]);
    const after = run('ReduceMean', [x, vecI64([1])], { keepdims: attr.int(0) }, 18);
    expect(after.dims).toEqual([2]);
    expect(values(after)).toEqual([2, 5]);
    expect(errorOf(() => run('ReduceMean', [x], { axes: attr.ints([1]) }, 18)).message).toMatch(/takes axes as its second input from opset 18, not as an attribute/);
    expect(errorOf(() => run('ReduceMean', [x, vecI64([1])], {}, 17)).message).toMatch(/takes axes as an attribute before opset 18, not as an input/);
  });

  it('ReduceSum moves axes to an input at opset 13', () => {
    expect(values(run('ReduceSum', [x], { axes: attr.ints([0]) }, 11))).toEqual([5, 7, 9]);
    expect(run('ReduceSum', [x], { axes: attr.ints([0]) }, 11).dims).toEqual([1, 3]);
    expect(values(run('ReduceSum', [x, vecI64([0])], {}, 13))).toEqual([5, 7, 9]);
    expect(errorOf(() => run('ReduceSum', [x], { axes: attr.ints([0]) }, 13)).message).toMatch(/from opset 13/);
    // Without axes every axis is reduced.
    const all = run('ReduceSum', [x], {}, 13);
    expect(all.dims).toEqual([1, 1]);
    expect(values(all)).toEqual([21]);
  });

  it('needs the axes input known; empty axes reduce all, or nothing with noop_with_empty_axes', () => {
    const e = errorOf(() => shapeOf('ReduceSum', [['float32', [2, 3]], ['int64', [1]]], {}, 13));
    expect(e.code).toBe('GY5006');
    expect(e.message).toMatch(/ReduceSum: input 1 \(axes\) must be known when compiling/);
    const empty = (attrs: Record<string, AttrValue>) => build(13, (b) => {
      b.op('ReduceSum', [b.input('x', 'float32', [2, 3]), b.initializer('axes', i64([0], []))], attrs, 'out');
    }).facts.get('out')!.dims;
    expect(empty({ noop_with_empty_axes: attr.int(1) })).toEqual([2, 3]);
    expect(empty({})).toEqual([1, 1]);
    expect(empty({ keepdims: attr.int(0) })).toEqual([]);
  });

  it('noop_with_empty_axes reduces each element alone', () => {
    expect(values(run('ReduceSum', [x, i64([0], [])], { noop_with_empty_axes: attr.int(1) }, 13))).toEqual([1, 2, 3, 4, 5, 6]);
    expect(values(run('ReduceSumSquare', [x], { noop_with_empty_axes: attr.int(1) }, 18))).toEqual([1, 4, 9, 16, 25, 36]);
    expect(values(run('ReduceMean', [x], { noop_with_empty_axes: attr.int(0) }, 18))).toEqual([3.5]);
  });

  it('computes every reduction', () => {
    const axes = { axes: attr.ints([-1]), keepdims: attr.int(0) };
    const y = f32([2, 3], [1, -2, 3, -4, 5, -6]);
    const cases: [string, number[]][] = [
      ['ReduceSum', [2, -5]], ['ReduceMean', [2 / 3, -5 / 3]], ['ReduceSumSquare', [14, 77]], ['ReduceMax', [3, 5]],
      ['ReduceMin', [-2, -6]], ['ReduceProd', [-6, 120]], ['ReduceL1', [6, 15]], ['ReduceL2', [Math.sqrt(14), Math.sqrt(77)]],
      ['ReduceLogSumExp', [Math.log(Math.E + Math.exp(-2) + Math.exp(3)), Math.log(Math.exp(-4) + Math.exp(5) + Math.exp(-6))]],
    ];
    for (const [op, want] of cases) {
      const out = run(op, [y], op === 'ReduceSum' ? { axes: attr.ints([-1]), keepdims: attr.int(0) } : axes, op === 'ReduceSum' ? 11 : 13);
      expect(out.dims, op).toEqual([2]);
      expectClose(values(out), want, 1e-6);
    }
    // log-sum-exp does not overflow.
    expectClose(values(run('ReduceLogSumExp', [f32([2], [1000, 1000])], {}, 13)), [1000 + Math.LN2]);
  });

  it('reduces empty sets to the identity of the reduction', () => {
    const none = f32([2, 0], []);
    expect(values(run('ReduceSum', [none], { axes: attr.ints([1]) }, 11))).toEqual([0, 0]);
    expect(values(run('ReduceProd', [none], { axes: attr.ints([1]) }, 13))).toEqual([1, 1]);
    expect(values(run('ReduceMax', [none], { axes: attr.ints([1]) }, 13))).toEqual([-Infinity, -Infinity]);
    expect(values(run('ReduceLogSumExp', [none], { axes: attr.ints([1]) }, 13))).toEqual([-Infinity, -Infinity]);
    expect(values(run('ReduceMin', [i32([2, 0], [])], { axes: attr.ints([1]) }, 13))).toEqual([2147483647, 2147483647]);
    expect(run('ReduceMean', [none], { axes: attr.ints([0]) }, 13).dims).toEqual([1, 0]);
  });

  it('rejects repeated or out-of-range axes', () => {
    expect(errorOf(() => run('ReduceMax', [x], { axes: attr.ints([1, -1]) }, 13)).message).toMatch(/axes \[1, -1\] repeat an axis/);
    expect(errorOf(() => run('ReduceMax', [x], { axes: attr.ints([2]) }, 13)).message).toMatch(/axes entry 2 is out of range for rank 2/);
  });
});

describe('ArgMax and ArgMin', () => {
  const x = f32([2, 4], [1, 7, 7, 3, 9, 2, 2, 9]);

  it('give int64 indices of the first extreme, or the last with select_last_index', () => {
    const out = run('ArgMax', [x], { axis: attr.int(1) });
    expect(out.dtype).toBe('i64');
    expect(out.dims).toEqual([2, 1]);
    expect(values(out)).toEqual([1, 0]);
    expect(values(run('ArgMax', [x], { axis: attr.int(-1), select_last_index: attr.int(1) }))).toEqual([2, 3]);
    expect(values(run('ArgMin', [x], { axis: attr.int(1), keepdims: attr.int(0) }))).toEqual([0, 1]);
    expect(values(run('ArgMin', [x], { axis: attr.int(1), select_last_index: attr.int(1) }))).toEqual([0, 2]);
    const down = run('ArgMax', [x], { keepdims: attr.int(0) });
    expect(down.dims).toEqual([4]);
    expect(values(down)).toEqual([1, 0, 0, 1]);
  });
});
