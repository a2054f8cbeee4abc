// Activations written out as arithmetic:
//   GeLU (erf):  0.5 · x · (1 + erf(x / √2))
//   GeLU (tanh): 0.5 · x · (1 + tanh(√(2/π) · (x + 0.044715 · x³)))
//   SiLU:        x · sigmoid(x)          (SwiGLU is then silu(gate) · up, an ordinary mul)
// The product is read as a tree of Muls in any grouping and order, and the argument of erf
// or tanh as a polynomial in x (Add, Sub, Mul, Div by a number, Pow, Neg), so every way an
// exporter or model code spells these constants and powers matches.

import type { OnnxNode } from '../../model.js';
import type { GraphView } from '../graph.js';
import { near } from '../graph.js';
import { withIr } from '../layout.js';
import { matchOf, split2, type Matcher } from '../match.js';
import { castTo } from './norm.js';

const SQRT1_2 = Math.SQRT1_2;
const TANH_C = Math.sqrt(2 / Math.PI);

export const gelu: Matcher = (g, root) => {
  if (root.opType !== 'Mul') return undefined;
  const nodes: OnnxNode[] = [];
  const factors = productOf(g, root, nodes);
  let c = 1;
  const terms: string[] = [];
  for (const f of factors) {
    const s = g.scalar(f);
    if (s !== undefined) c *= s;
    else terms.push(f);
  }
  if (terms.length !== 2 || !near(c, 0.5)) return undefined;
  for (const [x, t] of [[terms[0]!, terms[1]!], [terms[1]!, terms[0]!]]) {
    const found: OnnxNode[] = [];
    const approximate = onePlus(g, t, x, found);
    if (approximate) return matchOf(g, 'gelu', root, [...nodes, ...found], [x], (e) => {
      e.at(root);
      const v = e.value(x);
      return castTo(e, withIr(v, e.op('gelu', [v.ir], { approximate }, root.outputs[0])), root.outputs[0]!);
    });
  }
  return undefined;
};

export const silu: Matcher = (g, root) => {
  if (root.opType !== 'Mul') return undefined;
  const nodes: OnnxNode[] = [];
  const s = split2(root, (i) => {
    const d = g.def(i, undefined, true);
    return d?.opType === 'Sigmoid' && g.same(d.inputs[0]!, other(root, i));
  });
  if (!s) return undefined;
  const sig = g.def(s[0], nodes, true)!;
  const x = s[1];
  return matchOf(g, 'silu', root, [...nodes, sig], [x], (e) => {
    e.at(root);
    const v = e.value(x);
    return castTo(e, withIr(v, e.op('silu', [v.ir], {}, root.outputs[0])), root.outputs[0]!);
  });
};

function other(node: OnnxNode, name: string): string {
  return node.inputs[0] === name ? node.inputs[1]! : node.inputs[0]!;
}

/** The factors of a product: Muls whose result only this product reads are opened up. */
function productOf(g: GraphView, mul: OnnxNode, nodes: OnnxNode[]): string[] {
  const out: string[] = [];
  for (const i of mul.inputs) {
    const trail: OnnxNode[] = [];
    const d = g.def(i, trail, true);
    const src = g.source(i, undefined, true);
    if (d?.opType === 'Mul' && g.users(src).length === 1 && !g.isOutput(src) && trail.every((n) => g.users(n.outputs[0]!).length === 1)) {
      nodes.push(...trail, d);
      out.push(...productOf(g, d, nodes));
    } else out.push(i);
  }
  return out;
}

/** For 1 + erf(x/√2) or 1 + tanh(√(2/π)(x + 0.044715x³)): which GeLU it is. */
function onePlus(g: GraphView, t: string, x: string, nodes: OnnxNode[]): 'none' | 'tanh' | undefined {
  const add = g.def(t, nodes, true);
  if (add?.opType !== 'Add') return undefined;
  const s = split2(add, (i) => near(g.scalar(i), 1, 1e-6));
  if (!s) return undefined;
  const fn = g.def(s[1], nodes, true);
  if (fn?.opType !== 'Erf' && fn?.opType !== 'Tanh') return undefined;
  nodes.push(add, fn);
  const p = polynomial(g, fn.inputs[0]!, x, nodes, 0);
  if (!p) return undefined;
  const coef = (k: number) => p.get(k) ?? 0;
  const degrees = [...p.keys()].filter((k) => Math.abs(p.get(k)!) > 1e-9);
  if (fn.opType === 'Erf' && degrees.length === 1 && near(coef(1), SQRT1_2)) return 'none';
  if (fn.opType === 'Tanh' && degrees.length === 2 && near(coef(1), TANH_C) && near(coef(3), TANH_C * 0.044715)) return 'tanh';
  return undefined;
}

type Poly = Map<number, number>;

/** `name` as a polynomial in `x` (degree → coefficient), or undefined. */
function polynomial(g: GraphView, name: string, x: string, nodes: OnnxNode[], depth: number): Poly | undefined {
  if (g.same(name, x)) return new Map([[1, 1]]);
  const s = g.scalar(name);
  if (s !== undefined) return new Map([[0, s]]);
  if (depth > 8) return undefined;
  const d = g.def(name, nodes, true);
  if (!d) return undefined;
  nodes.push(d);
  const [a, b] = d.inputs;
  const pa = a === undefined ? undefined : polynomial(g, a, x, nodes, depth + 1);
  if (!pa) return undefined;
  if (d.opType === 'Neg') return scaled(pa, -1);
  const nb = b === undefined ? undefined : g.scalar(b);
  if (d.opType === 'Div' && nb) return scaled(pa, 1 / nb);
  if (d.opType === 'Pow' && nb !== undefined && Number.isInteger(nb) && nb >= 1 && nb <= 4) {
    let r: Poly = new Map([[0, 1]]);
    for (let k = 0; k < nb; k++) r = times(r, pa);
    return r;
  }
  const pb = b === undefined ? undefined : polynomial(g, b, x, nodes, depth + 1);
  if (!pb) return undefined;
  if (d.opType === 'Add') return plus(pa, pb, 1);
  if (d.opType === 'Sub') return plus(pa, pb, -1);
  if (d.opType === 'Mul') return times(pa, pb);
  return undefined;
}

function scaled(p: Poly, k: number): Poly {
  return new Map([...p].map(([d, c]) => [d, c * k]));
}

function plus(p: Poly, q: Poly, sign: number): Poly {
  const out = new Map(p);
  for (const [d, c] of q) out.set(d, (out.get(d) ?? 0) + sign * c);
  return out;
}

function times(p: Poly, q: Poly): Poly {
  const out: Poly = new Map();
  for (const [d1, c1] of p) for (const [d2, c2] of q) out.set(d1 + d2, (out.get(d1 + d2) ?? 0) + c1 * c2);
  return out;
}
