// Feeds for the reference interpreter: deterministic pseudo-random numbers for a module's
// inputs, params and states (the same for a given seed and value name, whatever the order of
// the calls), feeds by value name, and a module's params read from the ONNX file it was
// loaded from.
//
// Ranges come from the module: an integer value that reaches an embedding's ids (through
// reshapes, transposes, slices, casts, ...) gets ids below the table's row count, one that
// reaches a gather's indices gets indices below the gathered axis's size; other integers
// are small (0..7), bools 0 or 1. Floats are uniform in [−scale, scale), except values read
// directly by log, sqrt or rsqrt, and Adam's second moments, which get (0, scale].

import { GygesError } from '../../diagnostics/diagnostic.js';
import type { Module, Op, Value } from '../../ir/module.js';
import { isFloat, numel } from '../../ir/types.js';
import { readOnnxModel } from '../../frontend/onnx/model.js';
import type { Feed } from './reference.js';

export interface RandomFeedOptions {
  /** Default 1. */
  readonly seed?: number;
  /** Floats are uniform in [−scale, scale); default 0.5. */
  readonly scale?: number;
}

/** A feed of deterministic pseudo-random numbers for every input, param and state of `m`. */
export function randomFeed(m: Module, opts: RandomFeedOptions = {}): Feed {
  return (v) => randomValues(m, v, opts);
}

/** The numbers `randomFeed` gives `v`: a fresh array each call, the same numbers every time. */
export function randomValues(m: Module, v: Value, opts: RandomFeedOptions = {}): Float64Array {
  const rand = seededRandom(hashName(v.name, opts.seed ?? 1));
  const n = numel(v.type);
  const out = new Float64Array(n);
  const dtype = v.type.dtype;
  if (isFloat(dtype)) {
    const scale = opts.scale ?? 0.5;
    if (needsPositive(m, v)) for (let i = 0; i < n; i++) out[i] = scale * (1 - rand());
    else for (let i = 0; i < n; i++) out[i] = scale * (2 * rand() - 1);
  } else if (dtype === 'bool') {
    for (let i = 0; i < n; i++) out[i] = rand() < 0.5 ? 0 : 1;
  } else {
    const bound = indexBound(m, v) ?? 8;
    for (let i = 0; i < n; i++) out[i] = Math.floor(rand() * bound);
  }
  return out;
}

/** Ops through which an integer value's numbers reach their users unchanged (rearranged at most). */
const CARRIERS = new Set<string>(['reshape', 'transpose', 'expand', 'slice', 'split', 'concat', 'cast', 'gather']);

/**
 * The exclusive upper bound of the numbers `v` may hold as ids or indices: the smallest row
 * count of an embedding, or size of a gathered axis, that its numbers reach; undefined when
 * they index nothing.
 */
export function indexBound(m: Module, v: Value): number | undefined {
  let bound: number | undefined;
  const seen = new Set<Value>();
  const visit = (x: Value): void => {
    if (seen.has(x)) return;
    seen.add(x);
    for (const op of m.users(x)) {
      op.operands.forEach((o, i) => {
        if (o !== x) return;
        const b = boundAt(op, i);
        if (b !== undefined) bound = bound === undefined ? b : Math.min(bound, b);
        const carries = CARRIERS.has(op.kind) && !(op.kind === 'gather' && i === 1);
        if (carries) op.results.forEach(visit);
      });
    }
  };
  visit(v);
  return bound;
}

/** The bound an op puts on its operand `i` as ids or indices. */
function boundAt(op: Op, i: number): number | undefined {
  switch (op.kind) {
    case 'embedding':
    case 'embedding_grad':
      return i === 0 ? op.operands[1]!.type.shape[0] : undefined;
    case 'gather':
    case 'gather_grad': {
      if (i !== 1) return undefined;
      const x = op.operands[0]!.type.shape;
      const axis = op.attrs.axis as number;
      return x[axis < 0 ? axis + x.length : axis];
    }
    default:
      return undefined;
  }
}

function needsPositive(m: Module, v: Value): boolean {
  return m.users(v).some((op) => {
    if (op.kind === 'adam') return op.operands[3] === v;
    return op.kind === 'unary' && ['log', 'sqrt', 'rsqrt'].includes(op.attrs.fn as string);
  });
}

/** A feed that looks values up by name, deferring to `fallback` (or failing) for the others. */
export function feedByName(byName: ReadonlyMap<string, Float64Array>, fallback?: Feed): Feed {
  return (v) => {
    const a = byName.get(v.name);
    if (a) return a;
    if (fallback) return fallback(v);
    throw new GygesError('GY9001', `no numbers given for ${v.kind} '${v.name}'`);
  };
}

/**
 * The numbers of `m`'s params read from the initializers of the ONNX file `m` was loaded
 * from: the ONNX frontend declares every weight initializer an op reads as a param under the
 * initializer's name (through Identity de-duplication), in its stored layout. Raises GY9001
 * when a param has no initializer of its name and type, GY5004 when the weights are in an
 * external file that cannot be read.
 */
export function onnxParamValues(m: Module, onnxPath: string): Map<string, Float64Array> {
  const inits = readOnnxModel(onnxPath).graph.initializers;
  const out = new Map<string, Float64Array>();
  const missing: string[] = [];
  for (const p of m.params) {
    const t = inits.get(p.name);
    if (!t || t.dims.length !== p.type.shape.length || t.dims.some((d, i) => d !== p.type.shape[i])) {
      missing.push(p.name);
      continue;
    }
    out.set(p.name, Float64Array.from(t.values()));
  }
  if (missing.length > 0) {
    throw new GygesError('GY9001', `'${onnxPath}' has no initializer of the name and shape of param${missing.length > 1 ? 's' : ''} ${missing.map((n) => `'${n}'`).join(', ')}`);
  }
  return out;
}

// ---------------------------------------------------------------------------------------
// Deterministic pseudo-random numbers.

/** FNV-1a of the name, mixed with the seed. */
function hashName(name: string, seed: number): number {
  let h = (0x811c9dc5 ^ Math.imul(seed | 0, 0x9e3779b1)) >>> 0;
  for (let i = 0; i < name.length; i++) {
    h ^= name.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h;
}

/** mulberry32: a small 32-bit generator, uniform in [0, 1), from a seed. */
export function seededRandom(state: number): () => number {
  let s = state >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
