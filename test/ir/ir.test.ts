// The IR on its own: building through the op table, the verifier, and the text form
// (print -> parse -> print is the identity; malformed text gives located errors).

import { describe, expect, it } from 'vitest';
import { Module } from '../../src/ir/module.js';
import { printModule } from '../../src/ir/print.js';
import { parseModule } from '../../src/ir/parse.js';
import { verifyModule, verifyProblems } from '../../src/ir/verify.js';
import { tensor } from '../../src/ir/types.js';
import { GygesError } from '../../src/diagnostics/diagnostic.js';

const loc = (line: number, col = 1) => ({ file: 'hand.gy', line, col });

function tinyBlock(): Module {
  const m = new Module('hand-built');
  const x = m.addInput('x', tensor('f32', [2, 8, 16]), loc(1));
  const wqkv = m.addParam('w_qkv', tensor('f32', [16, 48]), loc(2));
  const wo = m.addParam('w_o', tensor('f32', [16, 16]), loc(3));
  const g = m.addParam('ln_g', tensor('f32', [16]), loc(4));
  const shape = m.addConst('shape', tensor('i64', [2]), [16, 16], loc(5));
  const qkv = m.addOp('linear', [x, wqkv], {}, { names: ['qkv'], loc: loc(6, 3), layer: 0 }).results[0]!;
  const [q, k, v] = m.addOp('split', [qkv], { axis: -1, sizes: [16, 16, 16] }, { names: ['q', 'k', 'v'], loc: loc(7), layer: 0 }).results;
  const a = m.addOp('attention', [q!, k!, v!], { heads: 4, causal: true }, { names: ['a'], layer: 0 }).results[0]!;
  const o = m.addOp('linear', [a, wo], {}, { names: ['o'], layer: 0 }).results[0]!;
  const y = m.addOp('add', [x, o], {}, { names: ['y'] }).results[0]!;
  const n = m.addOp('layernorm', [y, g], { eps: 1e-12 }, { names: ['n'] }).results[0]!;
  const s = m.addOp('unary', [n], { fn: 'tanh' }).results[0]!;
  m.setOutputs([s, shape]);
  return m;
}

describe('module construction', () => {
  it('infers result types from the op table and fills default attributes', () => {
    const m = tinyBlock();
    const att = m.ops().find((o) => o.kind === 'attention')!;
    expect(att.results[0]!.type).toEqual(tensor('f32', [2, 8, 16]));
    expect(att.attrs).toEqual({ heads: 4, causal: true });
    const ln = m.ops().find((o) => o.kind === 'layernorm')!;
    expect(ln.attrs.eps).toBe(1e-12);
    verifyModule(m);
  });

  it('reports a located shape error for mismatched operands', () => {
    const m = new Module('bad');
    const x = m.addInput('x', tensor('f32', [2, 16]));
    const w = m.addParam('w', tensor('f32', [8, 4]));
    expect(() => m.addOp('linear', [x, w], {}, { loc: loc(3, 7) })).toThrow(
      'hand.gy:3:7: error GY2008: linear: input [2, 16] has 16 features, weight [8, 4] expects 8',
    );
  });

  it('rejects unknown attributes and wrong operand counts', () => {
    const m = new Module('bad');
    const x = m.addInput('x', tensor('f32', [2, 16]));
    expect(() => m.addOp('gelu', [x], { approx: 'tanh' })).toThrow(/GY2005: gelu has no attribute 'approx'/);
    expect(() => m.addOp('add', [x])).toThrow(/GY2004: add takes \(a, b\), got 1 operand/);
    expect(() => m.addOp('gelu', [x], { approximate: 'fast' })).toThrow(/GY2019/);
  });

  it('accepts an attention mask that broadcasts to the scores, and no other', () => {
    const m = new Module('mask');
    const q = m.addInput('q', tensor('f32', [1, 8, 16]));
    const mask = (shape: number[]) => m.addInput(`mask${shape.join('x')}`, tensor('f32', shape));
    expect(() => m.addOp('attention', [q, q, q, mask([8, 8])], { heads: 4 })).not.toThrow();
    expect(() => m.addOp('attention', [q, q, q, mask([1, 1, 8, 8])], { heads: 4 })).not.toThrow();
    expect(() => m.addOp('attention', [q, q, q, mask([2, 1, 8, 8])], { heads: 4 })).toThrow(/GY2008: attention mask \[2, 1, 8, 8\] does not broadcast to the scores \[1, 4, 8, 8\]/);
    expect(() => m.addOp('attention', [q, q, q, mask([1, 1, 1, 8, 8])], { heads: 4 })).toThrow(/GY2008: attention mask/);
  });

  it('keeps a deterministic topological order after rewiring', () => {
    const m = new Module('rewire');
    const x = m.addInput('x', tensor('f32', [4]));
    const a = m.addOp('unary', [x], { fn: 'exp' }, { names: ['a'] }).results[0]!;
    const b = m.addOp('unary', [a], { fn: 'neg' }, { names: ['b'] }).results[0]!;
    m.setOutputs([b]);
    // Insert c = tanh(x) late, then make b's producer read it: c must now come first.
    const c = m.addOp('unary', [x], { fn: 'tanh' }, { names: ['c'] }).results[0]!;
    m.replaceAllUses(a, c);
    m.removeOp(a.def!);
    expect(m.ops().map((o) => o.results[0]!.name)).toEqual(['c', 'b']);
    verifyModule(m, 'rewire');
  });

  it('keeps each value\'s users (each once, by creation order) through every rewrite', () => {
    const m = new Module('users');
    const x = m.addInput('x', tensor('f32', [4]));
    const y = m.addInput('y', tensor('f32', [4]));
    const sq = m.addOp('mul', [x, x], {}, { names: ['sq'] });
    const e = m.addOp('unary', [x], { fn: 'exp' }, { names: ['e'] });
    const n = m.addOp('unary', [y], { fn: 'neg' }, { names: ['n'] });
    const names = (v: typeof x) => m.users(v).map((o) => o.results[0]!.name);
    expect(names(x)).toEqual(['sq', 'e']);
    // One of two uses moved: sq still reads x.
    m.setOperand(sq, 0, y);
    expect(names(x)).toEqual(['sq', 'e']);
    expect(names(y)).toEqual(['sq', 'n']);
    m.setOperand(sq, 1, y);
    expect(names(x)).toEqual(['e']);
    expect(names(y)).toEqual(['sq', 'n']);
    // An older op joins a value's users in creation order.
    m.replaceAllUses(y, x);
    expect(names(x)).toEqual(['sq', 'e', 'n']);
    expect(names(y)).toEqual([]);
    expect(sq.operands).toEqual([x, x]);
    m.setOutputs([sq.results[0]!, e.results[0]!]);
    m.removeOp(n);
    expect(names(x)).toEqual(['sq', 'e']);
    expect(m.opCount()).toBe(2);
    expect(m.hasValue(n.results[0]!)).toBe(false);
    // A removed op's name is free again, and suffixes continue past the taken ones.
    expect(m.addOp('unary', [x], { fn: 'neg' }, { names: ['n'] }).results[0]!.name).toBe('n');
    expect(m.addOp('unary', [x], { fn: 'neg' }, { names: ['n'] }).results[0]!.name).toBe('n.1');
    expect(m.addOp('unary', [x], { fn: 'neg' }, { names: ['n'] }).results[0]!.name).toBe('n.2');
    expect(names(x)).toEqual(['sq', 'e', 'n', 'n.1', 'n.2']);
    verifyModule(m, 'users');
  });
});

describe('verifier', () => {
  it('names the stage that broke an invariant', () => {
    const m = tinyBlock();
    const lin = m.ops().find((o) => o.kind === 'linear')!;
    lin.results[0]!.type = tensor('f32', [2, 8, 47]);
    expect(verifyProblems(m)[0]).toMatch(/result 0 is f32\[2, 8, 47\], the op table infers f32\[2, 8, 48\]/);
    expect(() => verifyModule(m, 'fuse')).toThrow(/IR invalid after fuse/);
  });
});

describe('text form', () => {
  it('prints, parses and prints back identically', () => {
    const text = printModule(tinyBlock());
    expect(printModule(parseModule(text, 'a.gyir'))).toBe(text);
    verifyModule(parseModule(text));
  });

  it('round-trips optimizer state and pass notes', () => {
    const m = tinyBlock();
    m.addState('w_o.adam_m', tensor('f32', [16, 16]));
    m.notes['minibatch.size'] = 2;
    const lin = m.ops().find((o) => o.kind === 'linear')!;
    lin.notes = { 'tile2d.map': 'T', 'fuse.group': 1 };
    const text = printModule(m);
    expect(text).toContain('  note "minibatch.size" = 2\n');
    expect(text).toContain('  state %4 "w_o.adam_m" : f32[16, 16]\n');
    expect(text).toContain('layer 0 #{"fuse.group" = 1, "tile2d.map" = "T"} loc("hand.gy":6:3)');
    expect(printModule(parseModule(text))).toBe(text);
  });

  it('prints in canonical form', () => {
    const text = printModule(tinyBlock());
    expect(text).toContain('%5 "qkv" = linear(%0, %1) : f32[2, 8, 48] layer 0 loc("hand.gy":6:3)');
    expect(text).toContain('%6 "q", %7 "k", %8 "v" = split(%5) {axis = -1, sizes = [16, 16, 16]}');
    expect(text).toContain('{heads = 4, causal = true}');
    expect(text).toContain('const %4 "shape" : i64[2] = [16, 16] loc("hand.gy":5:1)');
    expect(text).toContain('{eps = 1e-12}');
    expect(text).toMatch(/output %\d+, %4\n}\n$/);
  });

  const bad: [string, string, string][] = [
    ['missing brace', 'module "m" \n  output %0\n}', 'bad.gyir:2:3: error GY6001: expected \'{\' after the module name, found \'output\''],
    ['use before def', 'module "m" {\n  %1 "y" = gelu(%0) : f32[2]\n  output %1\n}', 'bad.gyir:2:17: error GY6001: %0 is used before it is defined'],
    ['wrong type', 'module "m" {\n  input %0 "x" : f32[2]\n  %1 "y" = gelu(%0) : f32[3]\n  output %1\n}', 'bad.gyir:3:23: error GY6002: result 0 of gelu is f32[2], the text says f32[3]'],
    ['unknown op', 'module "m" {\n  input %0 "x" : f32[2]\n  %1 "y" = frobnicate(%0) : f32[2]\n  output %1\n}', "bad.gyir:3:12: error GY2003: unknown op 'frobnicate'"],
    ['duplicate name', 'module "m" {\n  input %0 "x" : f32[2]\n  input %1 "x" : f32[2]\n  output %1\n}', 'bad.gyir:3:12: error GY6001: value name "x" is used twice'],
    ['bad dtype', 'module "m" {\n  input %0 "x" : f33[2]\n  output %0\n}', "bad.gyir:2:18: error GY2017: unknown dtype 'f33'"],
    ['stray char', 'module "m" {\n  input %0 "x" : f32[2] $\n  output %0\n}', 'bad.gyir:2:25: error GY6001: unexpected character "$"'],
  ];
  for (const [name, text, message] of bad) {
    it(`reports ${name} with a location`, () => {
      let caught: unknown;
      try {
        parseModule(text, 'bad.gyir');
      } catch (e) {
        caught = e;
      }
      expect(caught).toBeInstanceOf(GygesError);
      expect((caught as Error).message).toBe(message);
    });
  }
});
