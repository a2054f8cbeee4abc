// Reading ONNX node attributes and the constant inputs that newer opsets use instead of
// attributes (axes, starts, shapes), for the generic lowering and the matchers alike.

import type { OnnxNode } from '../model.js';
import type { Emitter } from './emit.js';

export function intAttr(n: OnnxNode, name: string): number | undefined {
  const a = n.attrs.get(name);
  return a?.kind === 'int' ? a.value : undefined;
}

export function floatAttr(n: OnnxNode, name: string): number | undefined {
  const a = n.attrs.get(name);
  return a?.kind === 'float' || a?.kind === 'int' ? a.value : undefined;
}

export function intsAttr(n: OnnxNode, name: string): readonly number[] | undefined {
  const a = n.attrs.get(name);
  return a?.kind === 'ints' ? a.value : undefined;
}

/** Known integers of an input that must be constant (axes, starts, shapes). */
export function constInts(e: Emitter, name: string, what: string): number[] {
  const t = e.g.known(name);
  if (!t) return e.fail(`its ${what} ('${name}') must be known when compiling, but is computed from the model's inputs or weights`);
  return Array.from(t.data);
}

export function normAxis(axis: number, rank: number): number {
  return axis < 0 ? axis + rank : axis;
}
