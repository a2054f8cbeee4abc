// The paper's four workloads (§VI-A) and the die count each is paired with for weak scaling
// (§VI-C: h doubles while the dies quadruple). Batch and sequence (16/32/64/128 × 512) are the
// model files' own defaults, which cite the paper; nothing here overrides them.

import { bundled } from '../util/paths.js';

export interface Workload {
  readonly name: string;
  /** The model file (bundled with the package). */
  readonly file: string;
  /** Hidden size, for reports. */
  readonly h: number;
  /** Side of the square package it runs on (§VI-C). */
  readonly side: number;
}

export const WORKLOADS: readonly Workload[] = [
  { name: 'bert-large', file: bundled('models', 'bert-large.gy'), h: 1024, side: 4 },
  { name: 'bloom-1.7b', file: bundled('models', 'bloom-1.7b.gy'), h: 2048, side: 8 },
  { name: 'gpt3-6.7b', file: bundled('models', 'gpt3-6.7b.gy'), h: 4096, side: 16 },
  { name: 'llama2-70b', file: bundled('models', 'llama2-70b.gy'), h: 8192, side: 32 },
];

export function preset(rows: number, cols: number, pkg: 'standard' | 'advanced'): string {
  return `hecaton-${rows}x${cols}-${pkg}`;
}

