// Op attributes: typed, declared per op in the op table, filled with defaults when an op is
// built so that every op carries all of its attributes explicitly (the printer writes them in
// table order, and print -> parse -> print is the identity).

import { isDType } from './types.js';
import type { DiagnosticCode } from '../diagnostics/codes.js';

export type AttrKind = 'int' | 'float' | 'bool' | 'string' | 'ints' | 'floats' | 'dtype';
export type AttrValue = number | boolean | string | readonly number[];
export type Attrs = Readonly<Record<string, AttrValue>>;

export interface AttrSpec {
  readonly kind: AttrKind;
  /** Used when the attribute is not given; without one the attribute is required unless optional. */
  readonly default?: AttrValue;
  /** May be absent altogether (no default, not required). */
  readonly optional?: boolean;
  /** For string attributes: the accepted values. */
  readonly oneOf?: readonly string[];
  readonly doc: string;
}

/** A problem with an op's operands or attributes, located by whoever built the op. */
export class OpError extends Error {
  constructor(
    readonly code: DiagnosticCode,
    message: string,
  ) {
    super(message);
  }
}

export function fail(code: DiagnosticCode, message: string): never {
  throw new OpError(code, message);
}

/** Check a single attribute value against its spec. */
export function checkAttr(op: string, name: string, spec: AttrSpec, v: AttrValue): AttrValue {
  const bad = (want: string): never =>
    fail('GY2006', `attribute '${name}' of ${op} must be ${want}, got ${formatAttr(v)}`);
  switch (spec.kind) {
    case 'int':
      if (typeof v !== 'number' || !Number.isInteger(v)) bad('a whole number');
      return v;
    case 'float':
      if (typeof v !== 'number' || !Number.isFinite(v)) bad('a number');
      return v;
    case 'bool':
      if (typeof v !== 'boolean') bad('true or false');
      return v;
    case 'string':
      if (typeof v !== 'string') bad('a string');
      if (spec.oneOf && !spec.oneOf.includes(v as string)) {
        fail('GY2019', `attribute '${name}' of ${op} must be one of ${spec.oneOf.map((s) => `"${s}"`).join(', ')}, got ${formatAttr(v)}`);
      }
      return v;
    case 'dtype':
      if (typeof v !== 'string' || !isDType(v)) bad('a dtype name such as "f32"');
      return v;
    case 'ints':
      if (!Array.isArray(v) || !v.every((x) => Number.isInteger(x))) bad('a list of whole numbers');
      return [...(v as readonly number[])];
    case 'floats':
      if (!Array.isArray(v) || !v.every((x) => typeof x === 'number' && Number.isFinite(x))) bad('a list of numbers');
      return [...(v as readonly number[])];
    default: {
      const never: never = spec.kind;
      return never;
    }
  }
}

/** Validate given attributes against the specs and fill defaults. Result keys follow spec order. */
export function resolveAttrs(op: string, specs: Readonly<Record<string, AttrSpec>>, given: Attrs): Attrs {
  for (const name of Object.keys(given)) {
    if (!Object.prototype.hasOwnProperty.call(specs, name)) {
      const known = Object.keys(specs);
      fail('GY2005', `${op} has no attribute '${name}'${known.length ? ` (it takes ${known.join(', ')})` : ' (it takes none)'}`);
    }
  }
  const out: Record<string, AttrValue> = {};
  for (const [name, spec] of Object.entries(specs)) {
    const v = given[name];
    if (v !== undefined) out[name] = checkAttr(op, name, spec, v);
    else if (spec.default !== undefined) out[name] = spec.default;
    else if (!spec.optional) fail('GY2007', `${op} needs attribute '${name}' (${spec.doc})`);
  }
  return out;
}

/** The canonical text of an attribute value, as the IR printer writes it. */
export function formatAttr(v: AttrValue): string {
  if (Array.isArray(v)) return `[${v.map((x) => formatNumber(x)).join(', ')}]`;
  if (typeof v === 'string') return JSON.stringify(v);
  if (typeof v === 'number') return formatNumber(v);
  return String(v);
}

/** Shortest text that reads back to the same double. */
export function formatNumber(n: number): string {
  return Object.is(n, -0) ? '-0' : String(n);
}
