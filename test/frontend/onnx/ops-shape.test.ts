// The data-movement, shape-arithmetic and type operators (src/frontend/onnx/ops/shape.ts) through
// the real path: small models built with OnnxGraphBuilder, written, read back and inferred, so
// folding produces the values checked here. Covers the opset differences (Split < 13 / 13 / 18,
// Squeeze and Unsqueeze < 13, Slice < 10, Shape start/end from 15, Reshape allowzero), the
// error messages, every element type's storage, and ONNX's own conformance cases of these ops.

import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { GygesError } from '../../../src/diagnostics/diagnostic.js';
import { inferGraph, type InferredGraph, type OnnxOpContext, type ValueFacts } from '../../../src/frontend/onnx/infer.js';
import { readOnnxModel, readTensorFile, type LazyTensor, type OnnxAttr, type OnnxModel, type OnnxNode } from '../../../src/frontend/onnx/model.js';
import { SHAPE_OPS } from '../../../src/frontend/onnx/ops/shape.js';
import { isFloatType, makeTensor, type OnnxDType, type Tensor } from '../../../src/frontend/onnx/tensor.js';
import { attr, bool, caseWriter, f32, i32, i64, INT64_MAX, OnnxGraphBuilder, scalarF32, scalarI64, vecI64, type TensorData } from '../../support/onnx-build.js';

const CONFORMANCE = fileURLToPath(new URL('../../data/onnx-node-tests/', import.meta.url));

const writeCase = caseWriter('gyges-ops-shape-');
/** Builds a graph at an opset, writes it, reads it back and infers it. */
function infer(opset: number, build: (b: OnnxGraphBuilder) => void): InferredGraph {
  const b = new OnnxGraphBuilder({ name: 'g', opset });
  build(b);
  return inferGraph(readOnnxModel(writeCase(b)));
}

/** The GY5006 error a graph raises. */
function failure(opset: number, build: (b: OnnxGraphBuilder) => void): GygesError {
  try {
    infer(opset, build);
  } catch (e) {
    expect(e).toBeInstanceOf(GygesError);
    return e as GygesError;
  }
  throw new Error('the graph inferred without error');
}

function facts(g: InferredGraph, name: string): ValueFacts {
  const f = g.facts.get(name);
  if (!f) throw new Error(`no value '${name}'`);
  return f;
}

/** dtype, dims and folded numbers of a value (which must have been folded). */
function folded(g: InferredGraph, name: string): { dtype: OnnxDType; dims: readonly number[]; values: number[] } {
  const f = facts(g, name);
  if (!f.value) throw new Error(`value '${name}' was not folded`);
  expect(f.value.dims).toEqual(f.dims);
  expect(f.value.dtype).toBe(f.dtype);
  return { dtype: f.dtype, dims: f.dims, values: Array.from(f.value.data) };
}

const iota = (n: number, from = 0) => Array.from({ length: n }, (_, i) => from + i);
const c = (b: OnnxGraphBuilder, t: TensorData) => b.constant(t);

describe('shape arithmetic folds on activations', () => {
  it('Shape -> Gather -> Unsqueeze -> Concat -> Reshape (opset 13 and 11)', () => {
    for (const opset of [11, 13]) {
      let out = '';
      const g = infer(opset, (b) => {
        const x = b.input('x', 'float32', [2, 5, 12]);
        const shape = b.op('Shape', [x]);
        const batch = b.op('Gather', [shape, c(b, scalarI64(0))], { axis: attr.int(0) });
        const seq = b.op('Gather', [shape, c(b, scalarI64(1))], { axis: attr.int(0) });
        const unsq = (v: string) => (opset < 13 ? b.op('Unsqueeze', [v], { axes: attr.ints([0]) }) : b.op('Unsqueeze', [v, c(b, vecI64([0]))]));
        const target = b.op('Concat', [unsq(batch), unsq(seq), c(b, vecI64([3, -1]))], { axis: attr.int(0) });
        out = b.op('Reshape', [x, target], {}, 'y');
        b.output('y', 'float32', [2, 5, 3, 4]);
      });
      expect(facts(g, out).dims).toEqual([2, 5, 3, 4]);
      expect(facts(g, out).value).toBeUndefined();
      const shape = g.nodes.find((n) => n.opType === 'Shape')!;
      expect(folded(g, shape.outputs[0]!)).toEqual({ dtype: 'i64', dims: [3], values: [2, 5, 12] });
      const concat = g.nodes.find((n) => n.opType === 'Concat')!;
      expect(folded(g, concat.outputs[0]!).values).toEqual([2, 5, 3, -1]);
      expect(g.folded.has(concat.name)).toBe(true);
    }
  });

  it('Shape start/end from opset 15 (clamped, negative), ignored before; Size', () => {
    const run = (opset: number, attrs: Record<string, number>) =>
      folded(
        infer(opset, (b) => {
          const x = b.input('x', 'float32', [2, 3, 4, 5]);
          const a = Object.fromEntries(Object.entries(attrs).map(([k, v]) => [k, attr.int(v)]));
          b.op('Shape', [x], a, 's');
        }),
        's',
      ).values;
    expect(run(15, {})).toEqual([2, 3, 4, 5]);
    expect(run(15, { start: 1 })).toEqual([3, 4, 5]);
    expect(run(15, { start: -1 })).toEqual([5]);
    expect(run(15, { start: 1, end: -1 })).toEqual([3, 4]);
    expect(run(15, { start: -10, end: 10 })).toEqual([2, 3, 4, 5]);
    expect(run(15, { start: 3, end: 1 })).toEqual([]);
    expect(run(14, { start: 1, end: 2 })).toEqual([2, 3, 4, 5]);
    const g = infer(13, (b) => b.op('Size', [b.input('x', 'float32', [2, 3, 4])], {}, 'n'));
    expect(folded(g, 'n')).toEqual({ dtype: 'i64', dims: [], values: [24] });
  });
});

describe('Reshape and Flatten', () => {
  const reshape = (opset: number, dims: number[], shape: number[], allowzero?: number) =>
    infer(opset, (b) => {
      const x = b.initializer('x', f32(dims, iota(dims.reduce((p, d) => p * d, 1))));
      b.op('Reshape', [x, c(b, vecI64(shape))], allowzero === undefined ? {} : { allowzero: attr.int(allowzero) }, 'y');
    });

  it('copies 0, infers -1, keeps the numbers', () => {
    const y = folded(reshape(13, [2, 3, 4], [0, -1]), 'y');
    expect(y.dims).toEqual([2, 12]);
    expect(y.values).toEqual(iota(24));
    expect(folded(reshape(13, [2, 3, 4], [-1]), 'y').dims).toEqual([24]);
    expect(folded(reshape(13, [2, 3, 4], [4, 0, 2]), 'y').dims).toEqual([4, 3, 2]);
  });

  it('allowzero (opset 14) keeps a literal 0; the attribute before 5', () => {
    expect(folded(reshape(14, [2, 0, 3], [3, 0], 1), 'y').dims).toEqual([3, 0]);
    expect(folded(reshape(14, [2, 0, 3], [0, 0, 3], 0), 'y').dims).toEqual([2, 0, 3]);
    const g = infer(4, (b) => {
      b.op('Reshape', [b.initializer('x', f32([2, 3], iota(6)))], { shape: attr.ints([3, -1]) }, 'y');
    });
    expect(folded(g, 'y').dims).toEqual([3, 2]);
  });

  it('rejects two -1s, a count mismatch, and 0 with -1 under allowzero', () => {
    expect(() => reshape(13, [2, 3, 4], [-1, -1])).toThrow(/error GY5006: Reshape: shape \[-1, -1\] has more than one -1/);
    expect(() => reshape(13, [2, 3, 4], [5, -1])).toThrow(/cannot reshape \[2, 3, 4\] \(24 elements\) to \[5, -1\]/);
    expect(() => reshape(13, [2, 3, 4], [5, 5])).toThrow(/to \[5, 5\] \(25 elements\)/);
    expect(() => reshape(14, [2, 0, 3], [0, -1], 1)).toThrow(/has both 0 and -1/);
    expect(() => reshape(13, [6], [0, 0])).toThrow(/copies dimension 1 \(0\), but the input \[6\] has rank 1/);
  });

  it('Flatten at axes 0, 2 and -1', () => {
    const flat = (axis: number) => infer(13, (b) => b.op('Flatten', [b.input('x', 'float32', [2, 3, 4])], { axis: attr.int(axis) }, 'y'));
    expect(facts(flat(0), 'y').dims).toEqual([1, 24]);
    expect(facts(flat(2), 'y').dims).toEqual([6, 4]);
    expect(facts(flat(-1), 'y').dims).toEqual([6, 4]);
    expect(facts(flat(3), 'y').dims).toEqual([24, 1]);
    expect(() => flat(4)).toThrow(/axis 4 is out of range for rank 3/);
  });
});

describe('Squeeze and Unsqueeze', () => {
  it('take axes as an attribute before opset 13 and as an input from 13', () => {
    const g11 = infer(11, (b) => {
      const x = b.input('x', 'float32', [1, 3, 1, 4]);
      b.op('Squeeze', [x], { axes: attr.ints([0, -2]) }, 'a');
      b.op('Squeeze', [x], {}, 'b');
      b.op('Unsqueeze', [x], { axes: attr.ints([0, -1]) }, 'c');
    });
    expect(facts(g11, 'a').dims).toEqual([3, 4]);
    expect(facts(g11, 'b').dims).toEqual([3, 4]);
    expect(facts(g11, 'c').dims).toEqual([1, 1, 3, 1, 4, 1]);
    const g13 = infer(13, (b) => {
      const x = b.input('x', 'float32', [1, 3, 1, 4]);
      b.op('Squeeze', [x, c(b, vecI64([2]))], {}, 'a');
      b.op('Squeeze', [x], {}, 'b');
      b.op('Unsqueeze', [x, c(b, vecI64([3, 1]))], {}, 'c');
    });
    expect(facts(g13, 'a').dims).toEqual([1, 3, 4]);
    expect(facts(g13, 'b').dims).toEqual([3, 4]);
    expect(facts(g13, 'c').dims).toEqual([1, 1, 3, 1, 1, 4]);
  });

  it('fold values and fail on a non-1 axis, repeats, or an axes attribute at 13', () => {
    const g = infer(13, (b) => b.op('Unsqueeze', [c(b, scalarI64(7)), c(b, vecI64([0]))], {}, 'y'));
    expect(folded(g, 'y')).toEqual({ dtype: 'i64', dims: [1], values: [7] });
    expect(() => infer(13, (b) => b.op('Squeeze', [b.input('x', 'float32', [1, 3]), c(b, vecI64([1]))]))).toThrow(
      /cannot squeeze axis 1 of shape \[1, 3\]: its size is 3, not 1/,
    );
    expect(() => infer(13, (b) => b.op('Unsqueeze', [b.input('x', 'float32', [3]), c(b, vecI64([0, -3]))]))).toThrow(/axes \[0, -3\] repeat an axis/);
    expect(() => infer(13, (b) => b.op('Unsqueeze', [b.input('x', 'float32', [3])], { axes: attr.ints([0]) }))).toThrow(/takes 2 inputs, but the node has 1/);
  });

  it('fails clearly when axes are computed at run time', () => {
    const e = failure(13, (b) => b.op('Unsqueeze', [b.input('x', 'float32', [3]), b.input('axes', 'int64', [1])]));
    expect(e.code).toBe('GY5006');
    expect(e.message).toMatch(/input 1 \(axes\) must be known when compiling/);
  });
});

describe('Concat and Split', () => {
  it('Concat along a negative axis, and a mismatch error', () => {
    const g = infer(13, (b) => {
      const a = b.initializer('a', i64([2, 1], [1, 2]));
      const d = b.initializer('d', i64([2, 2], [3, 4, 5, 6]));
      b.op('Concat', [a, d], { axis: attr.int(-1) }, 'y');
    });
    expect(folded(g, 'y')).toEqual({ dtype: 'i64', dims: [2, 3], values: [1, 3, 4, 2, 5, 6] });
    expect(() =>
      infer(13, (b) => b.op('Concat', [b.input('a', 'float32', [2, 3]), b.input('d', 'float32', [3, 3])], { axis: attr.int(1) })),
    ).toThrow(/input 1 of shape \[3, 3\] does not fit input 0 of shape \[2, 3\] outside axis 1/);
  });

  const split = (opset: number, n: number, sizes: number[] | undefined, outputs: number, extra: Record<string, number> = {}) =>
    infer(opset, (b) => {
      const x = b.initializer('x', f32([2, n], iota(2 * n)));
      const attrs: Record<string, ReturnType<typeof attr.int>> = { axis: attr.int(1) };
      for (const [k, v] of Object.entries(extra)) attrs[k] = attr.int(v);
      if (sizes && opset < 13) attrs.split = attr.ints(sizes);
      const inputs = sizes && opset >= 13 ? [x, c(b, vecI64(sizes))] : [x];
      b.node('Split', inputs, { outputNames: iota(outputs).map((i) => `y${i}`), attrs });
    });
  const parts = (g: InferredGraph, k: number) => iota(k).map((i) => folded(g, `y${i}`));

  it('sizes from the attribute before 13, the input from 13, equal parts without them', () => {
    for (const opset of [11, 13]) {
      const [a, d] = parts(split(opset, 5, [2, 3], 2), 2);
      expect(a!.dims).toEqual([2, 2]);
      expect(a!.values).toEqual([0, 1, 5, 6]);
      expect(d!.values).toEqual([2, 3, 4, 7, 8, 9]);
    }
    const eq = parts(split(13, 6, undefined, 3), 3);
    expect(eq.map((p) => p.values)).toEqual([
      [0, 1, 6, 7],
      [2, 3, 8, 9],
      [4, 5, 10, 11],
    ]);
    expect(parts(split(13, 4, [0, 4], 2), 2).map((p) => p.dims)).toEqual([
      [2, 0],
      [2, 4],
    ]);
  });

  it('num_outputs at 18 leaves the last part smaller; before 18 uneven parts fail', () => {
    expect(parts(split(18, 7, undefined, 3, { num_outputs: 3 }), 3).map((p) => p.dims[1])).toEqual([3, 3, 1]);
    expect(parts(split(18, 9, undefined, 4, { num_outputs: 4 }), 4).map((p) => p.dims[1])).toEqual([3, 3, 3, 0]);
    expect(() => split(13, 7, undefined, 3)).toThrow(/cannot split axis 1 of size 7 into 3 equal parts/);
    expect(() => split(18, 6, undefined, 3, { num_outputs: 2 })).toThrow(/num_outputs is 2, but the node has 3 outputs/);
  });

  it('rejects sizes that do not sum to the axis, or do not match the outputs', () => {
    expect(() => split(13, 5, [2, 2], 2)).toThrow(/error GY5006: Split: split sizes \[2, 2\] sum to 4, but axis 1 of \[2, 5\] has size 5/);
    expect(() => split(11, 5, [1, 1, 3], 2)).toThrow(/split \[1, 1, 3\] has 3 parts, but the node has 2 outputs/);
  });
});

describe('Slice', () => {
  const data = () => f32([3, 4], iota(12));
  const slice13 = (starts: (number | bigint)[], ends: (number | bigint)[], axes?: number[], steps?: number[]) =>
    infer(13, (b) => {
      const ins = [b.initializer('x', data()), c(b, vecI64(starts)), c(b, vecI64(ends))];
      if (axes || steps) ins.push(axes ? c(b, vecI64(axes)) : '');
      if (steps) ins.push(c(b, vecI64(steps)));
      b.op('Slice', ins, {}, 'y');
    });

  it('clamps out-of-range bounds and reads INT64_MAX / INT64_MIN as open ends', () => {
    expect(folded(slice13([1], [INT64_MAX], [1]), 'y')).toMatchObject({ dims: [3, 3], values: [1, 2, 3, 5, 6, 7, 9, 10, 11] });
    expect(folded(slice13([-100, 2], [100, 3]), 'y')).toMatchObject({ dims: [3, 1], values: [2, 6, 10] });
    expect(folded(slice13([5], [10], [0]), 'y').dims).toEqual([0, 4]);
    expect(folded(slice13([-2], [-1], [-1]), 'y').values).toEqual([2, 6, 10]);
  });

  it('negative steps, down to INT64_MIN', () => {
    const rev = folded(slice13([-1], [-INT64_MAX - 1n], [1], [-1]), 'y');
    expect(rev.dims).toEqual([3, 4]);
    expect(rev.values.slice(0, 4)).toEqual([3, 2, 1, 0]);
    expect(folded(slice13([INT64_MAX, 3], [0, 0], [0, 1], [-2, -2]), 'y')).toMatchObject({ dims: [1, 2], values: [11, 9] });
    expect(folded(slice13([10], [-10], [1], [-3]), 'y').values).toEqual([3, 0, 7, 4, 11, 8]);
  });

  it('takes attributes before opset 10', () => {
    const g = infer(9, (b) => {
      b.op('Slice', [b.initializer('x', data())], { starts: attr.ints([1, 0]), ends: attr.ints([3, -1]), axes: attr.ints([0, 1]) }, 'y');
    });
    expect(folded(g, 'y')).toMatchObject({ dims: [2, 3], values: [4, 5, 6, 8, 9, 10] });
    expect(() => infer(9, (b) => b.op('Slice', [b.initializer('x', data())], { ends: attr.ints([1]) }))).toThrow(/missing required attribute 'starts'/);
  });

  it('rejects a zero step and mismatched lengths', () => {
    expect(() => slice13([0], [2], [0], [0])).toThrow(/step of axis 0 is 0/);
    expect(() => slice13([0, 1], [2], [0])).toThrow(/starts \[0, 1\] and ends \[2\] differ in length/);
  });
});

describe('Gather and GatherElements', () => {
  it('gathers along any axis with negative indices; a scalar index drops the axis', () => {
    const g = infer(13, (b) => {
      const x = b.initializer('x', f32([2, 3, 2], iota(12)));
      b.op('Gather', [x, b.initializer('i', i64([2, 2], [-1, 0, 1, 2]))], { axis: attr.int(1) }, 'a');
      b.op('Gather', [x, c(b, scalarI64(-1))], { axis: attr.int(0) }, 'd');
      b.op('Gather', [x, b.initializer('j', i32([1], [1]))], { axis: attr.int(-1) }, 'e');
    });
    expect(folded(g, 'a')).toMatchObject({ dims: [2, 2, 2, 2], values: [4, 5, 0, 1, 2, 3, 4, 5, 10, 11, 6, 7, 8, 9, 10, 11] });
    expect(folded(g, 'd')).toMatchObject({ dims: [3, 2], values: [6, 7, 8, 9, 10, 11] });
    expect(folded(g, 'e')).toMatchObject({ dims: [2, 3, 1], values: [1, 3, 5, 7, 9, 11] });
  });

  it('fails on an index out of range and on float indices', () => {
    expect(() => infer(13, (b) => b.op('Gather', [b.initializer('x', f32([3], [1, 2, 3])), c(b, vecI64([3]))]))).toThrow(
      /error GY5006: Gather: index 3 is out of range for axis 0 of size 3/,
    );
    expect(() => infer(13, (b) => b.op('Gather', [b.initializer('x', f32([3], [1, 2, 3])), c(b, vecI64([-4]))]))).toThrow(/index -4 is out of range/);
    expect(() => infer(13, (b) => b.op('Gather', [b.input('x', 'float32', [3]), b.input('i', 'float32', [1])]))).toThrow(/indices must be int32 or int64, not f32/);
  });

  it('GatherElements picks along an axis', () => {
    const g = infer(13, (b) => {
      const x = b.initializer('x', f32([2, 3], [1, 2, 3, 4, 5, 6]));
      b.op('GatherElements', [x, b.initializer('i', i64([2, 2], [2, 0, -1, 1]))], { axis: attr.int(1) }, 'a');
      b.op('GatherElements', [x, b.initializer('j', i64([1, 3], [1, 0, 1]))], { axis: attr.int(0) }, 'd');
    });
    expect(folded(g, 'a')).toMatchObject({ dims: [2, 2], values: [3, 1, 6, 5] });
    expect(folded(g, 'd')).toMatchObject({ dims: [1, 3], values: [4, 2, 6] });
  });
});

describe('Transpose, Expand, Tile, Pad', () => {
  it('Transpose reverses by default and rejects a bad perm', () => {
    const g = infer(13, (b) => {
      const x = b.initializer('x', f32([2, 3], iota(6)));
      b.op('Transpose', [x], {}, 'a');
      b.op('Transpose', [b.initializer('z', f32([2, 3, 2], iota(12)))], { perm: attr.ints([1, 2, 0]) }, 'd');
    });
    expect(folded(g, 'a')).toMatchObject({ dims: [3, 2], values: [0, 3, 1, 4, 2, 5] });
    expect(folded(g, 'd')).toMatchObject({ dims: [3, 2, 2], values: [0, 6, 1, 7, 2, 8, 3, 9, 4, 10, 5, 11] });
    for (const perm of [[0, 0], [0], [0, 2]]) {
      expect(() => infer(13, (b) => b.op('Transpose', [b.input('x', 'float32', [2, 3])], { perm: attr.ints(perm) }))).toThrow(
        `error GY5006: Transpose: perm [${perm.join(', ')}] is not a permutation of the 2 axes of the input`,
      );
    }
  });

  it('Expand broadcasts both ways; Tile repeats', () => {
    const g = infer(13, (b) => {
      b.op('Expand', [b.initializer('x', f32([3, 1], [1, 2, 3])), c(b, vecI64([2, 1, 2]))], {}, 'e');
      b.op('Tile', [b.initializer('t', i64([2, 2], [1, 2, 3, 4])), c(b, vecI64([1, 2]))], {}, 't2');
    });
    expect(folded(g, 'e')).toMatchObject({ dims: [2, 3, 2], values: [1, 1, 2, 2, 3, 3, 1, 1, 2, 2, 3, 3] });
    expect(folded(g, 't2')).toMatchObject({ dtype: 'i64', dims: [2, 4], values: [1, 2, 1, 2, 3, 4, 3, 4] });
    expect(() => infer(13, (b) => b.op('Expand', [b.input('x', 'float32', [3, 2]), c(b, vecI64([4, 3]))]))).toThrow(/do not broadcast/);
  });

  it('Pad: constant (input from 11, attribute before), reflect, edge, cropping', () => {
    const pad = (mode: string, pads: number[], value?: number) =>
      infer(13, (b) => {
        const ins = [b.initializer('x', f32([2, 3], [1, 2, 3, 4, 5, 6])), c(b, vecI64(pads))];
        if (value !== undefined) ins.push(c(b, scalarF32(value)));
        b.op('Pad', ins, { mode: attr.string(mode) }, 'y');
      });
    expect(folded(pad('constant', [0, 1, 1, 0], 9), 'y')).toMatchObject({ dims: [3, 4], values: [9, 1, 2, 3, 9, 4, 5, 6, 9, 9, 9, 9] });
    expect(folded(pad('reflect', [0, 2, 0, 1]), 'y')).toMatchObject({ dims: [2, 6], values: [3, 2, 1, 2, 3, 2, 6, 5, 4, 5, 6, 5] });
    expect(folded(pad('edge', [1, 0, 0, 2]), 'y')).toMatchObject({ dims: [3, 5], values: [1, 2, 3, 3, 3, 1, 2, 3, 3, 3, 4, 5, 6, 6, 6] });
    expect(folded(pad('constant', [0, -1, 0, 1]), 'y')).toMatchObject({ dims: [2, 3], values: [2, 3, 0, 5, 6, 0] });
    const old = infer(10, (b) => {
      b.op('Pad', [b.initializer('x', f32([2], [1, 2]))], { pads: attr.ints([1, 2]), value: attr.float(-1) }, 'y');
    });
    expect(folded(old, 'y')).toMatchObject({ dims: [5], values: [-1, 1, 2, -1, -1] });
    expect(() => pad('constant', [1, 1])).toThrow(/pads \[1, 1\] must have 4 entries/);
    expect(() => pad('wrap', [0, 1, 0, 1])).toThrow(/mode 'wrap' is not a Pad mode at opset 13/);
  });
});

describe('generated values', () => {
  it('Constant: value, value_float(s), value_int(s)', () => {
    const g = infer(13, (b) => {
      b.op('Constant', [], { value: attr.tensor(i64([2], [5, -6])) }, 'a');
      b.op('Constant', [], { value_float: attr.float(1.5) }, 'd');
      b.op('Constant', [], { value_floats: attr.floats([1, 2]) }, 'e');
      b.op('Constant', [], { value_int: attr.int(7) }, 'f');
      b.op('Constant', [], { value_ints: attr.ints([1, 2, 3]) }, 'h');
    });
    expect(folded(g, 'a')).toEqual({ dtype: 'i64', dims: [2], values: [5, -6] });
    expect(folded(g, 'd')).toEqual({ dtype: 'f32', dims: [], values: [1.5] });
    expect(folded(g, 'e')).toEqual({ dtype: 'f32', dims: [2], values: [1, 2] });
    expect(folded(g, 'f')).toEqual({ dtype: 'i64', dims: [], values: [7] });
    expect(folded(g, 'h')).toEqual({ dtype: 'i64', dims: [3], values: [1, 2, 3] });
    expect(() => infer(13, (b) => b.op('Constant', [], {}))).toThrow(/Constant: has no value attribute/);
    expect(() => infer(13, (b) => b.op('Constant', [], { value_int: attr.int(1), value_float: attr.float(1) }))).toThrow(/needs exactly one/);
  });

  it('ConstantOfShape: float 0 by default, the value attribute otherwise, empty dims allowed', () => {
    const g = infer(13, (b) => {
      b.op('ConstantOfShape', [c(b, vecI64([2, 2]))], {}, 'a');
      b.op('ConstantOfShape', [c(b, vecI64([3]))], { value: attr.tensor(i64([1], [4])) }, 'd');
      b.op('ConstantOfShape', [c(b, vecI64([0, 2]))], { value: attr.tensor(bool([1], [1])) }, 'e');
    });
    expect(folded(g, 'a')).toEqual({ dtype: 'f32', dims: [2, 2], values: [0, 0, 0, 0] });
    expect(folded(g, 'd')).toEqual({ dtype: 'i64', dims: [3], values: [4, 4, 4] });
    expect(folded(g, 'e')).toEqual({ dtype: 'bool', dims: [0, 2], values: [] });
  });

  it('Range over floats and ints, with a negative delta', () => {
    const g = infer(13, (b) => {
      b.op('Range', [c(b, scalarF32(0.5)), c(b, scalarF32(2)), c(b, scalarF32(0.25))], {}, 'a');
      b.op('Range', [c(b, scalarI64(10)), c(b, scalarI64(1)), c(b, scalarI64(-3))], {}, 'd');
      b.op('Range', [c(b, scalarI64(1)), c(b, scalarI64(1)), c(b, scalarI64(1))], {}, 'e');
    });
    expect(folded(g, 'a')).toEqual({ dtype: 'f32', dims: [6], values: [0.5, 0.75, 1, 1.25, 1.5, 1.75] });
    expect(folded(g, 'd')).toEqual({ dtype: 'i64', dims: [3], values: [10, 7, 4] });
    expect(folded(g, 'e').dims).toEqual([0]);
    expect(() => infer(13, (b) => b.op('Range', [c(b, scalarI64(0)), c(b, scalarI64(1)), c(b, scalarI64(0))]))).toThrow(/delta is 0/);
    expect(() => infer(13, (b) => b.op('Range', [c(b, scalarI64(0)), c(b, scalarF32(1)), c(b, scalarI64(1))]))).toThrow(/limit is f32 but start is i64/);
  });
});

describe('types: Cast, CastLike, Where, Trilu, Dropout, Identity', () => {
  it('Cast truncates to integers, wraps, rounds to f16 and bf16, and maps to bool', () => {
    const g = infer(13, (b) => {
      const x = b.initializer('x', f32([5], [-2.7, -0.5, 0, 1.9, 3e9]));
      b.op('Cast', [x], { to: attr.int(7) }, 'i');
      b.op('Cast', [x], { to: attr.int(6) }, 'j');
      b.op('Cast', [x], { to: attr.int(9) }, 'k');
      b.op('Cast', [b.initializer('t', f32([3], [1 / 3, 65519, 1e-7]))], { to: attr.int(10) }, 'h');
      b.op('Cast', [b.initializer('u', f32([1], [1 / 3]))], { to: attr.int(16) }, 'bf');
      b.op('CastLike', [c(b, vecI64([1, 0])), b.initializer('like', bool([1], [1]))], {}, 'cl');
    });
    expect(folded(g, 'i')).toEqual({ dtype: 'i64', dims: [5], values: [-2, 0, 0, 1, 3e9] });
    expect(folded(g, 'j').values).toEqual([-2, 0, 0, 1, -1294967296]);
    expect(folded(g, 'k')).toEqual({ dtype: 'bool', dims: [5], values: [1, 1, 0, 1, 1] });
    expect(folded(g, 'h').values).toEqual([0.333251953125, 65504, 1.1920928955078125e-7]);
    expect(folded(g, 'bf').values).toEqual([0.333984375]);
    expect(folded(g, 'cl')).toEqual({ dtype: 'bool', dims: [2], values: [1, 0] });
    expect(() => infer(13, (b) => b.op('Cast', [b.input('x', 'float32', [1])], { to: attr.int(8) }))).toThrow(/cannot cast to STRING/);
    // Cast-1 names the type in a string.
    const named = infer(5, (b) => b.op('Cast', [b.initializer('x', f32([2], [1.5, -1.5]))], { to: attr.string('INT32') }, 'y'));
    expect(folded(named, 'y')).toEqual({ dtype: 'i32', dims: [2], values: [1, -1] });
    // saturate (opset 19) concerns float8 only.
    const s = infer(19, (b) => b.op('Cast', [b.initializer('x', f32([1], [2.5]))], { to: attr.int(11), saturate: attr.int(0) }, 'y'));
    expect(folded(s, 'y')).toEqual({ dtype: 'f64', dims: [1], values: [2.5] });
  });

  it('Where broadcasts three inputs and keeps X\'s type', () => {
    const g = infer(13, (b) => {
      const cond = b.initializer('c', bool([2, 1], [1, 0]));
      b.op('Where', [cond, b.initializer('x', i64([3], [1, 2, 3])), c(b, scalarI64(-1))], {}, 'y');
    });
    expect(folded(g, 'y')).toEqual({ dtype: 'i64', dims: [2, 3], values: [1, 2, 3, -1, -1, -1] });
    expect(() => infer(13, (b) => b.op('Where', [b.input('c', 'bool', [2]), b.input('x', 'float32', [2]), b.input('y', 'int64', [2])]))).toThrow(
      /X is f32 but Y is i64/,
    );
    expect(() => infer(13, (b) => b.op('Where', [b.input('c', 'float32', [2]), b.input('x', 'float32', [2]), b.input('y', 'float32', [2])]))).toThrow(
      /condition must be bool/,
    );
  });

  it('Trilu: upper and lower, a k input, batched', () => {
    const g = infer(14, (b) => {
      const x = b.initializer('x', f32([2, 2, 3], iota(12, 1)));
      b.op('Trilu', [x], {}, 'u');
      b.op('Trilu', [x, c(b, scalarI64(-1))], { upper: attr.int(0) }, 'l');
      b.op('Trilu', [x, c(b, scalarI64(1))], {}, 'u1');
    });
    expect(folded(g, 'u').values).toEqual([1, 2, 3, 0, 5, 6, 7, 8, 9, 0, 11, 12]);
    expect(folded(g, 'l').values).toEqual([0, 0, 0, 4, 0, 0, 0, 0, 0, 10, 0, 0]);
    expect(folded(g, 'u1').values).toEqual([0, 2, 3, 0, 0, 6, 0, 8, 9, 0, 0, 12]);
    expect(() => infer(14, (b) => b.op('Trilu', [b.input('x', 'float32', [3])]))).toThrow(/must have rank 2 or more/);
  });

  it('Dropout is the identity with an all-true mask; training mode is refused', () => {
    const g = infer(13, (b) => {
      b.node('Dropout', [b.initializer('x', f32([2], [1, 2])), c(b, scalarF32(0.1))], { outputNames: ['y', 'm'] });
    });
    expect(folded(g, 'y')).toEqual({ dtype: 'f32', dims: [2], values: [1, 2] });
    expect(folded(g, 'm')).toEqual({ dtype: 'bool', dims: [2], values: [1, 1] });
    const old = infer(9, (b) => b.node('Dropout', [b.input('x', 'float32', [2])], { outputNames: ['y', 'm'] }));
    expect(facts(old, 'm').dtype).toBe('f32');
    expect(() =>
      infer(13, (b) => b.node('Dropout', [b.input('x', 'float32', [2]), c(b, scalarF32(0.1)), c(b, bool([], [1]))], { outputNames: ['y'] })),
    ).toThrow(/training_mode is true/);
  });

  it('Identity passes any value through', () => {
    const g = infer(13, (b) => {
      b.op('Identity', [b.initializer('x', bool([2], [1, 0]))], {}, 'y');
      b.op('Identity', [b.input('z', 'float32', [4, 2])], {}, 'w');
    });
    expect(folded(g, 'y')).toEqual({ dtype: 'bool', dims: [2], values: [1, 0] });
    expect(facts(g, 'w').dims).toEqual([4, 2]);
    expect(facts(g, 'w').value).toBeUndefined();
  });
});

describe('every element type', () => {
  /** Runs an op's infer and evaluate directly on given tensors (types the builder cannot write). */
  function run(opType: string, inputs: Tensor[], attrs: Record<string, OnnxAttr> = {}, opset = 17): Tensor[] {
    const node: OnnxNode = {
      name: opType,
      opType,
      domain: '',
      inputs: inputs.map((_, i) => `in${i}`),
      outputs: ['out'],
      attrs: new Map(Object.entries(attrs)),
      index: 0,
    };
    const fail = (detail: string): never => {
      throw new Error(detail);
    };
    const ctx: OnnxOpContext = {
      node,
      opset,
      inputs: inputs.map((t, i) => ({ name: `in${i}`, dtype: t.dtype, dims: t.dims, value: t })),
      attr: (n) => node.attrs.get(n),
      attrInt: (n, d) => (node.attrs.get(n) as { value: number } | undefined)?.value ?? d ?? fail(`missing ${n}`),
      attrFloat: (n, d) => (node.attrs.get(n) as { value: number } | undefined)?.value ?? d ?? fail(`missing ${n}`),
      attrInts: (n, d) => (node.attrs.get(n) as { value: number[] } | undefined)?.value ?? d ?? fail(`missing ${n}`),
      attrString: (n, d) => (node.attrs.get(n) as { value: string } | undefined)?.value ?? d ?? fail(`missing ${n}`),
      constant: (i) => inputs[i]!,
      fail,
    };
    const def = SHAPE_OPS[opType]!;
    const outs = def.infer(ctx);
    const vals = def.evaluate!(ctx, inputs);
    vals.forEach((v, i) => {
      expect(v.dims).toEqual(outs[i]!.dims);
      expect(v.dtype).toBe(outs[i]!.dtype);
      expect(v.data).toBeInstanceOf(isFloatType(v.dtype) && v.dtype !== 'f64' ? Float32Array : Float64Array);
    });
    return vals;
  }
  const types: OnnxDType[] = ['f32', 'f16', 'bf16', 'f64', 'i8', 'u8', 'i16', 'u16', 'i32', 'u32', 'i64', 'u64', 'bool'];

  it('moves data of every type without changing it', () => {
    for (const dtype of types) {
      const x = makeTensor(dtype, [2, 2], dtype === 'bool' ? [1, 0, 0, 1] : [1, 2, 3, 4]);
      const v = (ts: Tensor[]) => Array.from(ts[0]!.data);
      expect(v(run('Transpose', [x])), dtype).toEqual(dtype === 'bool' ? [1, 0, 0, 1] : [1, 3, 2, 4]);
      expect(v(run('Concat', [x, x], { axis: { kind: 'int', value: 0 } }))).toEqual([...x.data, ...x.data]);
      expect(v(run('Gather', [x, makeTensor('i64', [1], [1])], { axis: { kind: 'int', value: 1 } }))).toEqual([x.data[1], x.data[3]]);
      expect(v(run('Slice', [x, makeTensor('i64', [1], [1]), makeTensor('i64', [1], [2])]))).toEqual([x.data[2], x.data[3]]);
      expect(v(run('Expand', [x, makeTensor('i64', [3], [2, 1, 1])])).length).toBe(8);
      expect(run('Cast', [x], { to: { kind: 'int', value: 11 } })[0]!.dtype).toBe('f64');
      expect(run('Where', [makeTensor('bool', [1], [0]), x, x])[0]!.dtype).toBe(dtype);
    }
  });
});

describe("ONNX's conformance cases", () => {
  const PREFIXES = [
    'cast', 'castlike', 'concat', 'constant', 'constantofshape', 'expand', 'gather', 'identity', 'reshape', 'shape',
    'slice', 'split', 'squeeze', 'transpose', 'tril', 'triu', 'unsqueeze', 'where', 'range',
  ];
  const cases = readdirSync(CONFORMANCE)
    .filter((d) => d.startsWith('test_') && PREFIXES.some((p) => d === `test_${p}` || d.startsWith(`test_${p}_`)))
    .sort();

  it('finds the cases', () => {
    expect(cases.length).toBeGreaterThanOrEqual(99);
  });

  /**
   * Reads a case with its inputs bound as initializers (the test data's numbers), so the one
   * node folds and both its inferred shape and its values can be checked.
   */
  function bound(name: string): { model: OnnxModel; expected: Tensor[] } {
    const base = join(CONFORMANCE, name);
    const model = readOnnxModel(join(base, 'model.onnx'));
    const data = join(base, 'test_data_set_0');
    const initializers = new Map(model.graph.initializers);
    model.graph.inputs.forEach((input, i) => {
      const t = readTensorFile(join(data, `input_${i}.pb`));
      const lazy: LazyTensor = { name: input.name, dtype: t.dtype, dims: t.dims, external: false, values: () => t.data };
      initializers.set(input.name, lazy);
    });
    const expected: Tensor[] = [];
    for (let k = 0; existsSync(join(data, `output_${k}.pb`)); k++) expected.push(readTensorFile(join(data, `output_${k}.pb`)));
    return { model: { ...model, graph: { ...model.graph, inputs: [], initializers } }, expected };
  }

  it.each(cases)('%s', (name) => {
    const { model, expected } = bound(name);
    const g = inferGraph(model);
    expect(expected.length).toBe(model.graph.outputs.length);
    model.graph.outputs.forEach((out, k) => {
      const want = expected[k]!;
      const got = facts(g, out.name);
      expect(got.dims, `${out.name} shape`).toEqual(want.dims);
      expect(got.dtype).toBe(want.dtype);
      expect(got.value, `${out.name} folded`).toBeDefined();
      const values = got.value!.data;
      expect(values.length).toBe(want.data.length);
      for (let i = 0; i < values.length; i++) {
        const a = values[i]!;
        const e = want.data[i]!;
        if (Number.isNaN(e)) expect(a).toBeNaN();
        else if (isFloatType(want.dtype)) expect(Math.abs(a - e), `${out.name}[${i}]`).toBeLessThanOrEqual(1e-5 * Math.max(1, Math.abs(e)));
        else expect(a, `${out.name}[${i}]`).toBe(e);
      }
    });
  });
});
