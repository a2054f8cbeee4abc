// The linear-algebra and normalisation operators of the ONNX frontend (ops/linalg.ts) and the
// reference interpreter (interpret.ts), on small hand-built graphs: MatMul's 1-D promotion and
// batch broadcasting, Gemm's attributes and bias, Einsum's equation forms (explicit and implicit
// output, diagonals, ellipsis broadcasting), Softmax before and from opset 13, and
// LayerNormalization's three outputs. Numbers are checked against hand computation or a naive
// loop; ONNX's own conformance cases of these operators run in conformance.test.ts.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inferGraph, type InferredGraph } from '../../../src/frontend/onnx/infer.js';
import { interpretGraph } from '../../../src/frontend/onnx/interpret.js';
import { readOnnxModel } from '../../../src/frontend/onnx/model.js';
import { makeTensor, type OnnxDType, type Tensor } from '../../../src/frontend/onnx/tensor.js';
import { attr, f32, i64, OnnxGraphBuilder, seededRandom, type AttrValue, type ElemType, type TensorData } from '../../support/onnx-build.js';
import { errorOf, expectClose as expectCloseTo } from '../../support/expect-values.js';
const expectClose = (got: ArrayLike<number>, want: ArrayLike<number>, rel = 1e-5) => expectCloseTo(got, want, rel, true);


let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'gyges-ops-linalg-'));
});
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

const DTYPES: Readonly<Record<ElemType, OnnxDType>> = { float32: 'f32', int32: 'i32', int64: 'i64', bool: 'bool' };

function tensorOf(t: TensorData): Tensor {
  return makeTensor(DTYPES[t.dtype], t.dims, Array.from(t.data as ArrayLike<number | bigint>, Number));
}

let serial = 0;
function build(opset: number, body: (b: OnnxGraphBuilder) => void): InferredGraph {
  const b = new OnnxGraphBuilder({ name: 'g', opset });
  body(b);
  return inferGraph(readOnnxModel(b.write(dir, `case${++serial}.onnx`).path));
}

interface RunOptions {
  readonly attrs?: Record<string, AttrValue>;
  readonly opset?: number;
  /** Number of outputs the node names (default 1). */
  readonly outputs?: number;
}

/** One node over graph inputs, inferred and then interpreted on the given numbers: its outputs. */
function run(opType: string, inputs: readonly (TensorData | undefined)[], o: RunOptions = {}): Tensor[] {
  const names = Array.from({ length: o.outputs ?? 1 }, (_, k) => `out${k}`);
  const g = build(o.opset ?? 17, (b) => {
    const ins = inputs.map((t, i) => (t ? b.input(`x${i}`, t.dtype, t.dims) : ''));
    b.node(opType, ins, { outputNames: names, attrs: o.attrs ?? {} });
  });
  const feeds: Record<string, Tensor> = {};
  inputs.forEach((t, i) => {
    if (t) feeds[`x${i}`] = tensorOf(t);
  });
  const values = interpretGraph(g, feeds);
  return names.map((n) => {
    const v = values.get(n)!;
    // Inference and evaluation agree on every output.
    expect(v.dims).toEqual(g.facts.get(n)!.dims);
    expect(v.dtype).toBe(g.facts.get(n)!.dtype);
    return v;
  });
}


function random(dims: number[], seed: number): TensorData {
  const rand = seededRandom(seed);
  return f32(dims, Array.from({ length: dims.reduce((p, d) => p * d, 1) }, () => rand() * 2 - 1));
}

function iota(dims: number[], scale = 1): TensorData {
  return f32(dims, Array.from({ length: dims.reduce((p, d) => p * d, 1) }, (_, i) => i * scale));
}

describe('MatMul', () => {
  const a = f32([2, 3], [1, 2, 3, 4, 5, 6]);
  const b = f32([3, 2], [7, 8, 9, 10, 11, 12]);

  it('multiplies matrices', () => {
    const [y] = run('MatMul', [a, b]);
    expect(y!.dims).toEqual([2, 2]);
    expect(Array.from(y!.data)).toEqual([58, 64, 139, 154]);
  });

  it('promotes a 1-D operand and drops the added axis again', () => {
    const v = f32([3], [1, 0, -1]);
    const [vb] = run('MatMul', [v, b]);
    expect(vb!.dims).toEqual([2]);
    expect(Array.from(vb!.data)).toEqual([-4, -4]);
    const [av] = run('MatMul', [a, v]);
    expect(av!.dims).toEqual([2]);
    expect(Array.from(av!.data)).toEqual([-2, -2]);
    const [dot] = run('MatMul', [v, f32([3], [4, 5, 6])]);
    expect(dot!.dims).toEqual([]);
    expect(Array.from(dot!.data)).toEqual([-2]);
    // A 1-D B against a batch of matrices: [2, 2, 3] x [3] -> [2, 2].
    const [bv] = run('MatMul', [iota([2, 2, 3]), v]);
    expect(bv!.dims).toEqual([2, 2]);
    expect(Array.from(bv!.data)).toEqual([-2, -2, -2, -2]);
  });

  it('broadcasts the batch axes', () => {
    const x = random([2, 1, 4, 3], 1);
    const w = random([5, 3, 2], 2);
    const [y] = run('MatMul', [x, w]);
    expect(y!.dims).toEqual([2, 5, 4, 2]);
    const want: number[] = [];
    for (let p = 0; p < 2; p++) {
      for (let q = 0; q < 5; q++) {
        for (let i = 0; i < 4; i++) {
          for (let j = 0; j < 2; j++) {
            let s = 0;
            for (let k = 0; k < 3; k++) s += x.data[p * 12 + i * 3 + k]! as number * (w.data[q * 6 + k * 2 + j]! as number);
            want.push(s);
          }
        }
      }
    }
    expectClose(y!.data, want);
  });

  it('multiplies integers exactly in their type', () => {
    const [y] = run('MatMul', [i64([1, 2], [3_000_000_000, 1]), i64([2, 1], [3, -5])]);
    expect(y!.dtype).toBe('i64');
    expect(Array.from(y!.data)).toEqual([8_999_999_995]);
  });

  it('fails clearly on mismatched operands', () => {
    const inner = errorOf(() => run('MatMul', [a, a]));
    expect(inner.code).toBe('GY5006');
    expect(inner.message).toMatch(/MatMul: cannot multiply \[2, 3\] by \[2, 3\]: the inner dimensions 3 and 2 differ/);
    const batch = errorOf(() => run('MatMul', [random([2, 2, 3], 1), random([3, 3, 2], 2)]));
    expect(batch.message).toMatch(/do not broadcast/);
    const types = errorOf(() => run('MatMul', [a, i64([3, 1], [1, 2, 3])]));
    expect(types.message).toMatch(/B has type i64, but input 0 has f32/);
  });
});

describe('Gemm', () => {
  const a = f32([2, 3], [1, 2, 3, 4, 5, 6]);
  const bt = f32([2, 3], [1, 0, 1, 0, 1, 0]);

  it('applies transA, transB, alpha, beta and a broadcast C', () => {
    // A·Bᵀ = [[4, 2], [10, 5]]; 2·that + 0.5·[10, 20] per row.
    const [y] = run('Gemm', [a, bt, f32([2], [10, 20])], { attrs: { transB: attr.int(1), alpha: attr.float(2), beta: attr.float(0.5) } });
    expect(y!.dims).toEqual([2, 2]);
    expect(Array.from(y!.data)).toEqual([13, 14, 25, 20]);
    // Aᵀ·A with a column bias [3, 1]: [[17, 22, 27], [22, 29, 36], [27, 36, 45]] + row index.
    const [z] = run('Gemm', [a, a, f32([3, 1], [0, 1, 2])], { attrs: { transA: attr.int(1) } });
    expect(z!.dims).toEqual([3, 3]);
    expect(Array.from(z!.data)).toEqual([17, 22, 27, 23, 30, 37, 29, 38, 47]);
    // C is optional from opset 11.
    const [n] = run('Gemm', [a, bt], { attrs: { transB: attr.int(1) }, opset: 13 });
    expect(Array.from(n!.data)).toEqual([4, 2, 10, 5]);
  });

  it('fails clearly on bad operands and a missing C before opset 11', () => {
    const inner = errorOf(() => run('Gemm', [a, bt]));
    expect(inner.code).toBe('GY5006');
    expect(inner.message).toMatch(/Gemm: cannot multiply A \[2, 3\] by B \[2, 3\]: the inner dimensions 3 and 2 differ/);
    const bias = errorOf(() => run('Gemm', [a, bt, f32([3], [1, 2, 3])], { attrs: { transB: attr.int(1) } }));
    expect(bias.message).toMatch(/C \[3\] does not broadcast to the result \[2, 2\]/);
    const rank = errorOf(() => run('Gemm', [random([1, 2, 3], 1), bt]));
    expect(rank.message).toMatch(/A and B must be matrices, not \[1, 2, 3\] and \[2, 3\]/);
    const old = errorOf(() => run('Gemm', [a, bt], { attrs: { transB: attr.int(1) }, opset: 9 }));
    expect(old.message).toMatch(/takes 3 inputs, but the node has 2/);
  });
});

describe('Einsum', () => {
  const einsum = (equation: string, ...xs: TensorData[]): Tensor => run('Einsum', xs, { attrs: { equation: attr.string(equation) } })[0]!;

  it("contracts attention scores: 'bhqd,bhkd->bhqk'", () => {
    const q = random([2, 3, 4, 5], 3);
    const k = random([2, 3, 6, 5], 4);
    const y = einsum('bhqd,bhkd->bhqk', q, k);
    expect(y.dims).toEqual([2, 3, 4, 6]);
    const want: number[] = [];
    for (let bh = 0; bh < 6; bh++) {
      for (let i = 0; i < 4; i++) {
        for (let j = 0; j < 6; j++) {
          let s = 0;
          for (let d = 0; d < 5; d++) s += (q.data[bh * 20 + i * 5 + d] as number) * (k.data[bh * 30 + j * 5 + d] as number);
          want.push(s);
        }
      }
    }
    expectClose(y.data, want);
  });

  it("takes diagonals and traces: 'ii->i', 'ii', 'bii->bi'", () => {
    const m = iota([3, 3]);
    const diag = einsum('ii->i', m);
    expect(diag.dims).toEqual([3]);
    expect(Array.from(diag.data)).toEqual([0, 4, 8]);
    const trace = einsum('ii', m);
    expect(trace.dims).toEqual([]);
    expect(Array.from(trace.data)).toEqual([12]);
    const batch = einsum('bii->bi', iota([2, 2, 2]));
    expect(Array.from(batch.data)).toEqual([0, 3, 4, 7]);
  });

  it('orders an implicit output alphabetically and sums dropped letters', () => {
    // 'ji' implicitly means 'ji->ij': a transpose.
    const t = einsum('ji', iota([2, 3]));
    expect(t.dims).toEqual([3, 2]);
    expect(Array.from(t.data)).toEqual([0, 3, 1, 4, 2, 5]);
    const mm = einsum('ij,jk', f32([2, 3], [1, 2, 3, 4, 5, 6]), f32([3, 2], [7, 8, 9, 10, 11, 12]));
    expect(Array.from(mm.data)).toEqual([58, 64, 139, 154]);
    const rows = einsum('ij->i', iota([2, 3]));
    expect(Array.from(rows.data)).toEqual([3, 12]);
    const all = einsum('ij->', iota([2, 3]));
    expect(all.dims).toEqual([]);
    expect(Array.from(all.data)).toEqual([15]);
    // Spaces are allowed; three operands multiply together.
    const three = einsum('i, i, i ->', f32([2], [1, 2]), f32([2], [3, 4]), f32([2], [5, 6]));
    expect(Array.from(three.data)).toEqual([63]);
  });

  it("broadcasts ellipsis axes: '...ij,...jk'", () => {
    const x = random([2, 1, 3, 4], 5);
    const w = random([5, 4, 2], 6);
    const y = einsum('...ij,...jk', x, w);
    const [ref] = run('MatMul', [x, w]);
    expect(y.dims).toEqual([2, 5, 3, 2]);
    expectClose(y.data, ref!.data);
    const explicit = einsum('...ij,...jk->...ik', x, w);
    expectClose(explicit.data, ref!.data);
    // The ellipsis may cover no axes.
    const none = einsum('...ij,...jk->...ik', f32([1, 2], [1, 2]), f32([2, 1], [3, 4]));
    expect(none.dims).toEqual([1, 1]);
    expect(Array.from(none.data)).toEqual([11]);
  });

  it('fails clearly on malformed equations', () => {
    const m = iota([2, 3]);
    const msg = (equation: string, ...xs: TensorData[]) => errorOf(() => einsum(equation, ...xs)).message;
    expect(msg('ij,jk->ik', m)).toMatch(/equation 'ij,jk->ik' has 2 input terms, but the node has 1 input/);
    expect(msg('i2->i', m)).toMatch(/term 0 'i2' has '2'/);
    expect(msg('ijk->i', m)).toMatch(/names 3 axes, but input 0 has shape \[2, 3\]/);
    expect(msg('ii->i', m)).toMatch(/repeats 'i' over axes of sizes 2 and 3/);
    expect(msg('ij,ij->ij', m, iota([3, 2]))).toMatch(/label 'i' has size 2 in one operand and 3 in input 1/);
    expect(msg('ij->k', m)).toMatch(/output 'k' has 'k', which no input term has/);
    expect(msg('ij->ii', m)).toMatch(/output 'ii' repeats 'i'/);
  });

  it('folds 2^20-element results quickly', () => {
    const g = build(17, (b) => {
      b.initializer('q', random([1, 4, 512, 64], 7));
      b.initializer('k', random([1, 4, 512, 64], 8));
      b.op('Einsum', ['q', 'k'], { equation: attr.string('bhqd,bhkd->bhqk') }, 'y');
    });
    const y = g.facts.get('y')!;
    expect(y.dims).toEqual([1, 4, 512, 512]);
    expect(y.value?.data.length).toBe(2 ** 20);
  });
});

describe('Softmax and LogSoftmax', () => {
  const x = iota([2, 3, 2], 0.5);

  /** Softmax of each group of `n` values `inner` apart in a flat array. */
  function softmaxRef(data: ArrayLike<number>, outer: number, n: number, inner: number): number[] {
    const out = new Array<number>(data.length);
    for (let o = 0; o < outer; o++) {
      for (let i = 0; i < inner; i++) {
        const at = (k: number) => o * n * inner + k * inner + i;
        let sum = 0;
        for (let k = 0; k < n; k++) sum += Math.exp(data[at(k)]!);
        for (let k = 0; k < n; k++) out[at(k)] = Math.exp(data[at(k)]!) / sum;
      }
    }
    return out;
  }

  it('normalises along axis 1 alone from opset 13', () => {
    const [y] = run('Softmax', [x], { attrs: { axis: attr.int(1) }, opset: 13 });
    expect(y!.dims).toEqual([2, 3, 2]);
    expectClose(y!.data, softmaxRef(x.data as Float32Array, 2, 3, 2));
  });

  it('coerces the input to 2-D from axis 1 before opset 13', () => {
    const [y] = run('Softmax', [x], { attrs: { axis: attr.int(1) }, opset: 11 });
    expect(y!.dims).toEqual([2, 3, 2]);
    expectClose(y!.data, softmaxRef(x.data as Float32Array, 2, 6, 1));
  });

  it('defaults the axis to 1 before opset 13 and to -1 from 13', () => {
    const [old] = run('Softmax', [x], { opset: 11 });
    expectClose(old!.data, softmaxRef(x.data as Float32Array, 2, 6, 1));
    const [now] = run('Softmax', [x], { opset: 13 });
    expectClose(now!.data, softmaxRef(x.data as Float32Array, 6, 2, 1));
  });

  it('stays finite on large inputs, and LogSoftmax is its logarithm', () => {
    const big = f32([3], [1000, 1001, 1002]);
    const [y] = run('Softmax', [big]);
    const e = [Math.exp(-2), Math.exp(-1), 1];
    const s = e[0]! + e[1]! + e[2]!;
    expectClose(y!.data, e.map((v) => v / s));
    const [l] = run('LogSoftmax', [big]);
    expectClose(l!.data, e.map((v) => Math.log(v / s)));
    const [l11] = run('LogSoftmax', [x], { opset: 11 });
    expectClose(l11!.data, softmaxRef(x.data as Float32Array, 2, 6, 1).map(Math.log));
  });

  it('fails on an out-of-range axis or an integer input', () => {
    expect(errorOf(() => run('Softmax', [x], { attrs: { axis: attr.int(3) } })).message).toMatch(/Softmax: axis 3 is out of range for rank 3/);
    expect(errorOf(() => run('Softmax', [i64([2], [1, 2])])).message).toMatch(/must be a floating-point tensor, not i64/);
  });
});

describe('LayerNormalization', () => {
  it('normalises over dims[axis:] and returns Mean and InvStdDev with ones for the normalised axes', () => {
    const x = f32([2, 2, 2], [1, 2, 3, 4, -1, -1, 1, 1]);
    const scale = f32([2], [1, 2]);
    const bias = f32([2], [0, 10]);
    const [y, mean, inv] = run('LayerNormalization', [x, scale, bias], { attrs: { axis: attr.int(1), epsilon: attr.float(0) }, outputs: 3 });
    expect(mean!.dims).toEqual([2, 1, 1]);
    expect(inv!.dims).toEqual([2, 1, 1]);
    // Row 0: mean 2.5, variance 1.25; row 1: mean 0, variance 1.
    expectClose(mean!.data, [2.5, 0]);
    expectClose(inv!.data, [1 / Math.sqrt(1.25), 1]);
    const r = 1 / Math.sqrt(1.25);
    expectClose(y!.data, [-1.5 * r, -0.5 * r * 2 + 10, 0.5 * r, 1.5 * r * 2 + 10, -1, -2 + 10, 1, 2 + 10]);
  });

  it('defaults to the last axis with epsilon 1e-5, B optional', () => {
    const x = f32([2, 2], [0, 2, 5, 5]);
    const [y, mean] = run('LayerNormalization', [x, f32([2], [1, 1])], { outputs: 2 });
    expect(mean!.dims).toEqual([2, 1]);
    expectClose(mean!.data, [1, 5]);
    expectClose(y!.data, [-1 / Math.sqrt(1 + 1e-5), 1 / Math.sqrt(1 + 1e-5), 0, 0]);
  });

  it('fails before opset 17 and on a Scale that does not broadcast', () => {
    const x = random([2, 4], 9);
    expect(errorOf(() => run('LayerNormalization', [x, random([4], 1)], { opset: 16 })).message).toMatch(/is defined from opset 17; this model uses opset 16/);
    expect(errorOf(() => run('LayerNormalization', [x, random([3], 1)])).message).toMatch(/Scale \[3\] does not broadcast to X \[2, 4\]/);
  });
});

describe('interpretGraph', () => {
  /** Softmax(x·W + b) over a weight and bias stored as initializers. */
  function classifier(): InferredGraph {
    return build(17, (b) => {
      b.input('x', 'float32', [2, 2]);
      b.initializer('W', f32([2, 3], [1, 0, 1, 0, 1, 1]));
      b.initializer('b', f32([3], [0, 0, -1]));
      const h = b.op('MatMul', ['x', 'W']);
      const z = b.op('Add', [h, 'b'], {}, 'z');
      b.op('Softmax', [z], { axis: attr.int(-1) }, 'y');
      b.output('y', 'float32', [2, 3]);
    });
  }

  it('runs MatMul, Add and Softmax and returns every value', () => {
    const g = classifier();
    const values = interpretGraph(g, { x: makeTensor('f32', [2, 2], [1, 2, 0, 0]) });
    // x·W + b = [[1, 2, 2], [0, 0, -1]].
    expect(Array.from(values.get('z')!.data)).toEqual([1, 2, 2, 0, 0, -1]);
    const e = Math.E;
    const s0 = e + 2 * e ** 2;
    const s1 = 2 + 1 / e;
    expectClose(values.get('y')!.data, [e / s0, e ** 2 / s0, e ** 2 / s0, 1 / s1, 1 / s1, 1 / e / s1]);
    expect(Array.from(values.get('W')!.data)).toEqual([1, 0, 1, 0, 1, 1]);
  });

  it('checks the given inputs against the inferred graph', () => {
    const g = classifier();
    const shape = errorOf(() => interpretGraph(g, { x: makeTensor('f32', [1, 2], [1, 2]) }));
    expect(shape.code).toBe('GY9001');
    expect(shape.message).toMatch(/input 'x' of '.*' was inferred with shape \[2, 2\], but the value given has shape \[1, 2\]/);
    const type = errorOf(() => interpretGraph(g, { x: makeTensor('i64', [2, 2], [1, 2, 3, 4]) }));
    expect(type.message).toMatch(/input 'x' of '.*' is f32, but the value given is i64/);
    expect(errorOf(() => interpretGraph(g, {})).message).toMatch(/no value given for input 'x'/);
    expect(errorOf(() => interpretGraph(g, { x: makeTensor('f32', [2, 2], [1, 2, 3, 4]), y: makeTensor('f32', [1], [0]) })).message).toMatch(/has no input 'y' \(inputs: x\)/);
  });
});
