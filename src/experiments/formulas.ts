// The paper's closed forms, computed from the model dimensions alone (no compiler, no
// simulator): Table III's NoP transmission time per block, the compute time of a classic
// Transformer layer at the PE array's peak, and the weak-scaling ratios of §V-B. table3
// compares the programs' link bytes with the first; fig7 sets its measured NoP shares beside
// the share these formulas predict, with the exact (√N − 1)/N of eq. (2) and with eq. (7)'s
// approximation, so the part of a spread that the formulas themselves carry is visible.

import type { BlockDims } from '../backend/timing/simulate.js';
import type { Strategy } from '../passes/pass.js';

export const BLOCKS = ['fwd/attention', 'fwd/ffn', 'bwd/attention', 'bwd/ffn'] as const;
export type Block = (typeof BLOCKS)[number];

/** Table III's transmission column as multiples of γ = b·s·h/β and ξ = h²/β on n dies. */
export function coefficients(strategy: Strategy, block: Block, n: number): { gamma: number; xi: number } {
  const r = Math.sqrt(n);
  const bwd = block.startsWith('bwd');
  switch (strategy) {
    case 'megatron':
      return { gamma: ((bwd ? 3 : 2) * (n - 1)) / n, xi: 0 };
    case 'torus':
      return { gamma: bwd ? (3 * (n - 1)) / (2 * n) : (n - 1) / n, xi: 0 };
    case 'optimus': {
      const k = Math.log2(n) / (2 * r);
      const [a, c] = { 'fwd/attention': [2, 4], 'fwd/ffn': [5, 8], 'bwd/attention': [4, 8], 'bwd/ffn': [10, 16] }[block];
      return { gamma: a! * k, xi: c! * k };
    }
    case 'hecaton': {
      const a = HECATON_GAMMA[block];
      return { gamma: (a * (r - 1)) / n, xi: 0 };
    }
  }
}

/** Hecaton's γ multiples per block before the (√N − 1)/N factor (eq. (4), (5), Table III). */
const HECATON_GAMMA: Readonly<Record<Block, number>> = { 'fwd/attention': 6, 'fwd/ffn': 10, 'bwd/attention': 8, 'bwd/ffn': 15 };

/** γ and ξ in seconds: the time to move b·s·h and h² elements over one link. */
function units(d: BlockDims): { gamma: number; xi: number } {
  return { gamma: (d.b * d.s * d.h * d.bytes_per_element) / d.beta_bytes_per_s, xi: (d.h * d.h * d.bytes_per_element) / d.beta_bytes_per_s };
}

/** Table III's NoP transmission time of one layer's training iteration (all four blocks), seconds. */
export function layerTransmission(strategy: Strategy, d: BlockDims): number {
  const u = units(d);
  return BLOCKS.reduce((sum, block) => {
    const c = coefficients(strategy, block, d.N);
    return sum + c.gamma * u.gamma + c.xi * u.xi;
  }, 0);
}

/**
 * Multiply-accumulates of one training iteration of a classic layer (fused QKV, output
 * projection, a 4h FFN; Fig. 2): forward 12·b·s·h² in the Linears and 2·b·s²·h in the
 * attention core (q·kᵀ and softmax·v); backward twice each (activation and weight gradients;
 * dq, dk, dp and dv).
 */
export function layerMacs(d: BlockDims, withAttentionCore = true): number {
  const linear = 12 * d.b * d.s * d.h * d.h;
  const core = withAttentionCore ? 2 * d.b * d.s * d.s * d.h : 0;
  return 3 * (linear + core);
}

/**
 * The NoP share of (NoP + compute) the closed forms give for one layer on N dies whose PE
 * arrays run at `macsPerS` each: Table III's transmission over it plus compute at peak.
 */
export function formulaNopShare(strategy: Strategy, d: BlockDims, macsPerS: number): number {
  const nop = layerTransmission(strategy, d);
  return nop / (nop + layerMacs(d) / (d.N * macsPerS));
}

/**
 * The same for hecaton as §V-B's weak-scaling analysis takes it: eq. (7) replaces (√N − 1)/N
 * by 1/√N, and eq. (6) counts only the Linears' h²/N (no attention core). Under that analysis
 * the share is the same for every workload whose b·h/√N and b·h²/N grow alike.
 */
export function eq7NopShare(d: BlockDims, macsPerS: number): number {
  const total = BLOCKS.reduce((s, block) => s + HECATON_GAMMA[block], 0);
  const nop = (total / Math.sqrt(d.N)) * units(d).gamma;
  return nop / (nop + layerMacs(d, false) / (d.N * macsPerS));
}
