// Diagnostics: every user-facing error is a `GygesError` with a stable code from the
// catalogue (codes.ts) and, where one exists, a source location. The CLI prints it as one
// line (`file:line:col: error GY1001: message`) and exits 1; anything else that escapes is
// an internal fault and exits 2.

import type { DiagnosticCode } from './codes.js';

/**
 * A position in a source file; lines and columns count from 1. A model read from a graph
 * file (ONNX) has no lines: its locations name the graph node instead, with line and column 0.
 */
export interface SourceLoc {
  readonly file: string;
  readonly line: number;
  readonly col: number;
  /** The name of the graph node (ONNX) the IR op was made from. */
  readonly node?: string;
}

/** Where a diagnostic points: a text position, or a named node (ONNX node, hardware field). */
export type DiagnosticSite =
  | { readonly kind: 'loc'; readonly loc: SourceLoc }
  | { readonly kind: 'node'; readonly file: string; readonly node: string }
  | { readonly kind: 'none' };

export class GygesError extends Error {
  readonly code: DiagnosticCode;
  readonly site: DiagnosticSite;
  readonly detail: string;

  constructor(code: DiagnosticCode, detail: string, site: DiagnosticSite = { kind: 'none' }) {
    super(formatDiagnostic(code, detail, site));
    this.name = 'GygesError';
    this.code = code;
    this.site = site;
    this.detail = detail;
  }
}

/** `file:line:col`, or `file: node 'name'` (the form of a node site) for a graph node. */
export function formatLoc(loc: SourceLoc): string {
  if (loc.node === undefined) return `${loc.file}:${loc.line}:${loc.col}`;
  const at = loc.line > 0 ? `:${loc.line}:${loc.col}` : '';
  return `${loc.file}${at}: node '${loc.node}'`;
}

export function formatDiagnostic(code: DiagnosticCode, detail: string, site: DiagnosticSite): string {
  const text = `error ${code}: ${detail}`;
  switch (site.kind) {
    case 'loc':
      return `${formatLoc(site.loc)}: ${text}`;
    case 'node':
      return `${site.file}: node '${site.node}': ${text}`;
    case 'none':
      return text;
    default:
      return assertNever(site);
  }
}

/** Raise a user error at a source location. */
export function errorAt(loc: SourceLoc | undefined, code: DiagnosticCode, detail: string): GygesError {
  return new GygesError(code, detail, loc ? { kind: 'loc', loc } : { kind: 'none' });
}

/** Raise a user error with no location (command-line usage, missing files). */
export function error(code: DiagnosticCode, detail: string): GygesError {
  return new GygesError(code, detail);
}

/** Internal invariant: a failure here is a bug in Gyges, never bad input (exit 2). */
export function assert(cond: unknown, message: string): asserts cond {
  if (!cond) throw new InternalError(message);
}

export function assertNever(x: never): never {
  throw new InternalError(`unexpected value ${JSON.stringify(x)}`);
}

export class InternalError extends Error {
  constructor(message: string) {
    super(`internal error: ${message}`);
    this.name = 'InternalError';
  }
}
