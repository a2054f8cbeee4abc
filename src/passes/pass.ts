// What a pass is: a small named value with a one-line summary, typed options with defaults,
// what it requires of the module and what it establishes, and `run`. The algorithm lives in
// a plain function beside it; `run` only adapts it. Passes read hardware numbers from the
// target in their context, never from constants of their own.

import type { AttrKind, AttrValue } from '../ir/attrs.js';
import type { Module } from '../ir/module.js';
import type { Target } from '../target/target.js';

/** How a compile distributes work: the paper's method and its three baselines (§V-A). */
export const STRATEGIES = ['hecaton', 'megatron', 'torus', 'optimus'] as const;
export type Strategy = (typeof STRATEGIES)[number];

export interface PassOptionSpec {
  readonly kind: Exclude<AttrKind, 'floats' | 'dtype'>;
  readonly default: AttrValue;
  readonly oneOf?: readonly string[];
  readonly doc: string;
}

export type PassOptions = Readonly<Record<string, AttrValue>>;

/** What every pass sees besides the module. */
export interface PassContext {
  readonly target: Target;
  readonly strategy: Strategy;
  /** One line of what the pass decided and why (printed with `--explain`, kept in dumps). */
  report(pass: string, line: string): void;
}

export interface Pass {
  /** The same as its file name, its CLI name and its test folder. */
  readonly name: string;
  readonly summary: string;
  readonly options: Readonly<Record<string, PassOptionSpec>>;
  /** Module notes that must be present before it runs (set by earlier passes). */
  readonly requires: readonly string[];
  /** Module notes it sets. */
  readonly establishes: readonly string[];
  run(m: Module, ctx: PassContext, options: PassOptions): void;
}
