// The training pass (src/passes/train.ts): golden training graphs of the tiny models, the
// structure every training graph must have (one update per parameter, one linear_grad per
// linear, summed tied gradients, no gradients for integers), the inference mode, and FLOPs
// that agree with the forward model's statistics.

import { describe, expect, it } from 'vitest';
import { loadModel } from '../../src/frontend/load.js';
import { Module, type Op, type Value } from '../../src/ir/module.js';
import { opDef } from '../../src/ir/ops.js';
import { parseModule } from '../../src/ir/parse.js';
import { printModule } from '../../src/ir/print.js';
import { modelStats } from '../../src/ir/stats.js';
import { tensor } from '../../src/ir/types.js';
import { verifyModule } from '../../src/ir/verify.js';
import { deriveTraining, type TrainOptions } from '../../src/passes/train.js';

const SGD: TrainOptions = { mode: 'train', optimizer: 'sgd' };
const ADAM: TrainOptions = { mode: 'train', optimizer: 'adam' };

function trained(model: string, opts: TrainOptions): Module {
  const m = deriveTraining(loadModel(`models/${model}.gy`), opts);
  verifyModule(m, 'train');
  return m;
}

const phase = (op: Op): unknown => op.notes?.['train.phase'];

function opFlops(op: Op): number {
  return opDef(op.kind).flops({ operands: op.operands.map((v) => v.type), results: op.results.map((v) => v.type), attrs: op.attrs }).fwd;
}

describe('golden training graphs', () => {
  it('tiny-gpt with sgd', async () => {
    await expect(printModule(trained('tiny-gpt', SGD))).toMatchFileSnapshot('./train/tiny-gpt.train.gyir');
  });

  it('tiny-llama with adam', async () => {
    await expect(printModule(trained('tiny-llama', ADAM))).toMatchFileSnapshot('./train/tiny-llama.train.gyir');
  });
});

describe('training graph structure', () => {
  for (const [model, opts] of [['tiny-gpt', SGD], ['tiny-llama', ADAM], ['bert-large', SGD]] as const) {
    describe(`${model} (${opts.optimizer})`, () => {
      const m = trained(model, opts);
      const ops = m.ops();
      const updateKind = opts.optimizer;

      it('updates every param exactly once, in declaration order', () => {
        const updates = ops.filter((o) => phase(o) === 'update');
        expect(updates.every((o) => o.kind === updateKind)).toBe(true);
        expect(updates.map((o) => o.operands[0])).toEqual(m.params);
        const perParam = opts.optimizer === 'adam' ? 3 : 1;
        expect(m.outputs.length).toBe(1 + (model === 'bert-large' ? 1 : 0) + perParam * m.params.length);
      });

      it('gives every linear one linear_grad whose wrt includes the weight', () => {
        const grads = ops.filter((o) => o.kind === 'linear_grad');
        for (const lin of ops.filter((o) => o.kind === 'linear')) {
          const mine = grads.filter((g) => g.operands[0] === lin.operands[0] && g.operands[1] === lin.operands[1]);
          expect(mine).toHaveLength(1);
          expect(mine[0]!.attrs.wrt).toContain(1);
          expect(mine[0]!.operands[mine[0]!.operands.length - 1]).not.toBe(lin.results[0]);
        }
        expect(grads).toHaveLength(ops.filter((o) => o.kind === 'linear').length);
      });

      it('differentiates every attention core once', () => {
        const count = (k: string) => ops.filter((o) => o.kind === k).length;
        expect(count('attention_grad')).toBe(count('attention'));
        expect(count('attention')).toBeGreaterThan(0);
      });

      it('marks every op with its phase and keeps locations and layers', () => {
        expect(ops.every((o) => ['fwd', 'bwd', 'update'].includes(phase(o) as string))).toBe(true);
        expect(ops.every((o) => o.loc !== undefined)).toBe(true);
        expect(m.notes).toEqual({ 'train.mode': 'train', 'train.optimizer': opts.optimizer });
      });

      it('prints, parses back to identical text and verifies', () => {
        const text = printModule(m);
        const back = parseModule(text, `${model}.train.gyir`);
        verifyModule(back, 'parsing');
        expect(printModule(back)).toBe(text);
      });

      it('is deterministic', () => {
        expect(printModule(trained(model, opts))).toBe(printModule(m));
      });

      it('gives integer inputs no gradient', () => {
        const ints = m.inputs.filter((v) => v.type.dtype === 'i64');
        expect(ints.length).toBeGreaterThan(0);
        for (const v of ints) expect(m.values().some((w) => w.name === `grad.${v.name}`)).toBe(false);
        expect(m.inputs.filter((v) => v.name.startsWith('grad.')).map((v) => v.type.dtype)).not.toContain('i64');
      });
    });
  }
});

describe('tied weights', () => {
  it('sums the embedding and LM-head gradients of tiny-gpt into one update', () => {
    const m = trained('tiny-gpt', SGD);
    const table = m.params.find((p) => p.name === 'tok_emb')!;
    const updates = m.users(table).filter((o) => o.kind === 'sgd');
    expect(updates).toHaveLength(1);
    const sum = updates[0]!.operands[1]!.def!;
    expect(sum.kind).toBe('add');
    expect(sum.operands.map((v) => v.def!.kind).sort()).toEqual(['embedding_grad', 'transpose']);
    expect(sum.notes?.['train.phase']).toBe('bwd');
  });
});

describe('inference mode', () => {
  it('adds no ops, only notes', () => {
    const before = printModule(loadModel('models/tiny-gpt.gy'));
    const m = deriveTraining(loadModel('models/tiny-gpt.gy'), { mode: 'inference', optimizer: 'sgd' });
    verifyModule(m, 'train');
    expect(m.ops().every((o) => phase(o) === 'fwd')).toBe(true);
    expect(m.notes).toEqual({ 'train.mode': 'inference' });
    const stripped = printModule(m)
      .replace(/ #\{"train\.phase" = "fwd"\}/g, '')
      .replace('  note "train.mode" = "inference"\n', '');
    expect(stripped).toBe(before);
  });
});

describe('FLOPs', () => {
  for (const model of ['tiny-gpt', 'bert-large']) {
    it(`${model}: forward + backward + update agrees with the forward model's statistics within 10%`, () => {
      const expected = modelStats(loadModel(`models/${model}.gy`)).flops_per_iteration;
      const m = trained(model, SGD);
      const byPhase = { fwd: 0, bwd: 0, update: 0 };
      for (const op of m.ops()) byPhase[phase(op) as keyof typeof byPhase] += opFlops(op);
      const stats = modelStats(loadModel(`models/${model}.gy`));
      expect(byPhase.fwd).toBe(stats.flops_forward);
      expect(byPhase.update).toBe(stats.flops_update);
      const total = byPhase.fwd + byPhase.bwd + byPhase.update;
      expect(Math.abs(total / expected - 1)).toBeLessThan(0.1);
      expect(Math.abs(byPhase.bwd / stats.flops_backward - 1)).toBeLessThan(0.1);
    });
  }

  it('linear_grad costs one GEMM per input or weight gradient and a row sum for the bias', () => {
    const m = trained('tiny-gpt', SGD);
    const g = m.ops().find((o) => o.kind === 'linear_grad' && o.results.length === 3)!;
    const [x, w] = g.operands as [Value, Value];
    const rows = x.type.shape[0]! * x.type.shape[1]!;
    const [k, n] = w.type.shape as [number, number];
    expect(opFlops(g)).toBe(2 * (2 * rows * k * n) + rows * n);
  });
});

describe('composed gradients on a hand-built graph', () => {
  // Every forward op whose gradient is a composition, with broadcasting in each direction.
  function everything(): Module {
    const m = new Module('compose');
    const f32 = (...s: number[]) => tensor('f32', s);
    const x = m.addInput('x', f32(2, 4, 8));
    const cond = m.addInput('cond', tensor('bool', [4, 8]));
    const idx = m.addInput('idx', tensor('i64', [3]));
    const w = m.addParam('w', f32(8, 8));
    const s = m.addParam('s', f32(4, 1));
    const t = m.addParam('t', f32(8));
    const e = m.addParam('e', f32(6, 8));
    m.addParam('unused', f32(5));
    const op = (kind: Parameters<Module['addOp']>[0], vs: Value[], attrs = {}, ...names: string[]) =>
      m.addOp(kind, vs, attrs, { names }).results;
    const [h] = op('matmul', [x, w], {}, 'h'); // [2,4,8] x [8,8]: w broadcast over the batch
    const [g] = op('mul', [h!, s!], {}, 'g'); // s [4,1] broadcast
    const [a] = op('add', [g!, t], {}, 'a'); // t [8] broadcast
    const [p, q] = op('split', [a!], { axis: -1, sizes: [4, 4] }, 'p', 'q');
    const [c] = op('concat', [p!, p!], { axis: -1 }, 'c'); // q gets no gradient
    const [wh] = op('where', [cond, c!, t], {}, 'wh');
    const [cs] = op('cast', [wh!], { to: 'f16' }, 'cs');
    const [cb] = op('cast', [cs!], { to: 'f32' }, 'cb');
    const [r] = op('reshape', [cb!], { shape: [8, 8] }, 'r');
    const [tr] = op('transpose', [r!], { perm: [1, 0] }, 'tr');
    const [mn] = op('reduce', [tr!], { fn: 'mean', axes: [0], keepdims: false }, 'mn');
    const [ex] = op('expand', [mn!], { shape: [3, 8] }, 'ex');
    const [gt] = op('gather', [e, idx], { axis: 0 }, 'gt');
    const [sb] = op('binary', [ex!, gt!], { fn: 'sub' }, 'sb');
    const [dv] = op('binary', [sb!, t], { fn: 'div' }, 'dv');
    const [ng] = op('unary', [dv!], { fn: 'neg' }, 'ng');
    const [fl] = op('unary', [ng!], { fn: 'floor' }, 'fl'); // no gradient through floor
    const [mx] = op('reduce', [ng!], { fn: 'max', axes: [1], keepdims: true }, 'mx');
    const [sm] = op('softmax', [ng!], { axis: 0 }, 'sm');
    const [lt] = op('binary', [sm!, fl!], { fn: 'less' }, 'lt');
    op('unary', [q!], { fn: 'exp' }, 'dead'); // reaches no output
    m.setOutputs([sm!, mx!, fl!, lt!]);
    return m;
  }

  const m = deriveTraining(everything(), SGD);
  const byName = (n: string) => m.values().find((v) => v.name === n);
  const summed = (param: string) => m.ops().find((o) => o.kind === 'sgd' && o.operands[0]!.name === param)!.operands[1]!;

  it('verifies and round-trips', () => {
    verifyModule(m, 'train');
    const text = printModule(m);
    expect(printModule(parseModule(text))).toBe(text);
  });

  it('seeds only outputs that carry a gradient', () => {
    expect(m.inputs.map((v) => v.name)).toEqual(['x', 'cond', 'idx', 'grad.sm', 'grad.mx']);
  });

  it('gives inputs no gradient and unused params a zero gradient', () => {
    for (const n of ['x', 'cond', 'idx', 'fl', 'lt', 'dead']) expect(byName(`grad.${n}`)).toBeUndefined();
    const zero = byName('grad.unused')!;
    expect(zero.def!.kind).toBe('expand');
    expect(zero.def!.operands[0]!.data).toEqual([0]);
  });

  it('composes forward ops where the gradient is one', () => {
    const kinds = (n: string) => byName(n)!.def!.kind;
    // t has three uses: add (a bias), where (b), div (b); their gradients are summed.
    expect(summed('t').def!.kind).toBe('add');
    expect(summed('t').def!.operands[0]!.def!.kind).toBe('add');
    expect(summed('t').type.shape).toEqual([8]);
    expect(summed('w').name).toBe('grad.w');
    expect(kinds('grad.h')).toBe('mul');
    expect(byName('grad.s.sum')!.def!.attrs).toEqual({ fn: 'sum', axes: [0, 2], keepdims: true }); // [2, 4, 8] -> [1, 4, 1]
    expect(byName('grad.s')!.def!.attrs).toEqual({ shape: [4, 1] });
    expect(byName('grad.w')!.def!.attrs).toEqual({ fn: 'sum', axes: [0], keepdims: false });
    expect(kinds('grad.w.full')).toBe('matmul');
    expect(kinds('grad.a')).toBe('concat');
    expect(kinds('grad.q')).toBe('expand'); // the split piece without a gradient: zeros
    expect(kinds('grad.cs')).toBe('cast');
    expect(byName('grad.wh')!.type.dtype).toBe('f32');
    expect(kinds('grad.tr')).toBe('mul'); // mean: expand, then scale by 1/8
    expect(kinds('grad.r')).toBe('transpose');
    expect(kinds('grad.cb')).toBe('reshape');
    expect(kinds('grad.e')).toBe('gather_grad');
    // ng feeds floor (no gradient), reduce max and softmax: two partials, summed, then negated.
    expect(byName('grad.dv')!.def!.attrs).toEqual({ fn: 'neg' });
    expect(byName('grad.dv')!.def!.operands[0]!.def!.kind).toBe('add');
  });

  it('uses dedicated ops where no composition is natural', () => {
    const kinds = new Set(m.ops().map((o) => o.kind));
    for (const k of ['softmax_grad', 'reduce_grad', 'binary_grad', 'gather_grad']) expect(kinds.has(k as never)).toBe(true);
    const div = m.ops().find((o) => o.kind === 'binary_grad')!;
    expect(div.attrs).toEqual({ fn: 'div', wrt: [0, 1] });
    expect(div.results.map((r) => r.type.shape)).toEqual([[3, 8], [8]]);
  });
});

describe('gradient ops in the op table', () => {
  const m = new Module('grads');
  const x = m.addInput('x', tensor('f32', [2, 3, 8]));
  const w = m.addParam('w', tensor('f32', [8, 4]));
  const dy = m.addInput('dy', tensor('f32', [2, 3, 4]));
  const bad = m.addInput('bad', tensor('f32', [2, 3, 5]));

  it('infers one result per wrt operand, typed as the operand', () => {
    const g = m.addOp('linear_grad', [x, w, dy], { wrt: [0, 1] });
    expect(g.results.map((r) => r.type.shape)).toEqual([[2, 3, 8], [8, 4]]);
    expect(m.addOp('linear_grad', [x, w, dy], { wrt: [1] }).results).toHaveLength(1);
  });

  it('rejects a dy that is not the forward result type, and bad wrt lists', () => {
    expect(() => m.addOp('linear_grad', [x, w, bad], { wrt: [1] })).toThrow(/GY2008: linear_grad: dy is f32\[2, 3, 5\], but linear yields f32\[2, 3, 4\]/);
    expect(() => m.addOp('linear_grad', [x, w, dy], { wrt: [1, 0] })).toThrow(/GY2019: .*strictly ascending/);
    expect(() => m.addOp('linear_grad', [x, w, dy], { wrt: [2] })).toThrow(/GY2019: linear_grad: operand 2 has no gradient/);
    expect(() => m.addOp('linear_grad', [x, w, dy], { wrt: [] })).toThrow(/GY2019/);
    expect(() => m.addOp('linear_grad', [x, w, dy])).toThrow(/GY2007: linear_grad needs attribute 'wrt'/);
    expect(() => m.addOp('unary_grad', [x, x], { fn: 'floor', wrt: [0] })).toThrow(/GY2019/);
  });

  it('has optimizer updates that keep the weight type', () => {
    const dw = m.addInput('dw', tensor('f32', [8, 4]));
    expect(m.addOp('sgd', [w, dw]).attrs).toEqual({ lr: 1e-3 });
    const adam = m.addOp('adam', [w, dw, dw, dw]);
    expect(adam.attrs).toEqual({ lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8 });
    expect(adam.results).toHaveLength(3);
    expect(opFlops(adam)).toBe(12 * 32);
    expect(() => m.addOp('sgd', [w, x])).toThrow(/GY2008/);
  });
});
