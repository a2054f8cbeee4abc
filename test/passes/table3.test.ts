// Table III of the paper: the NoP transmission volume per Transformer block. For each
// classic block (BERT-Large, BLOOM-1.7B, GPT3-6.7B, classic-h8192) on its paper die count,
// the bytes on a die's busiest link per block — summed from the collective instructions of
// the emitted per-die programs, loops counted per iteration — equal a·γ + c·ξ with
// γ = b·s·h × 4 bytes and ξ = h² × 4 bytes within 1% (exactly for hecaton, megatron and torus;
// optimus's backward attention also carries its bias and norm-parameter all-reduces, under
// 0.1%), and agree with the IR's collectives. Table III counts the Linear layers' traffic
// only: collectives inside an attention core (optimus's key/value gathers) are reported apart
// (`partOf`, headLinkBytes) and checked separately below. Three layers are compiled (the
// per-block volume does not depend on depth) and the middle one is checked, on a corner die
// and a middle die.

import { describe, expect, it } from 'vitest';
import { compile } from '../../src/compile.js';
import { trafficByBlock } from '../../src/passes/collectives.js';
import { programsOf } from '../../src/passes/schedule/index.js';
import { blockTraffic, forEachInstr } from '../../src/backend/program.js';
import type { Strategy } from '../../src/passes/pass.js';

type Block = 'fwd/attention' | 'fwd/ffn' | 'bwd/attention' | 'bwd/ffn';
/** Transmission time per block in units of γ = b·s·h·4/β and ξ = h²·4/β, on n dies. */
type Coefficients = Record<Block, (n: number) => { gamma: number; xi: number }>;

const onlyGamma = (f: (n: number) => number) => (n: number) => ({ gamma: f(n), xi: 0 });
/** Optimus: log₂N/(2√N)·(a·γ + c·ξ). */
const summa = (a: number, c: number) => (n: number) => {
  const k = Math.log2(n) / (2 * Math.sqrt(n));
  return { gamma: a * k, xi: c * k };
};

// DESIGN.md §3 / paper Table III.
const TABLE3: Record<'hecaton' | 'megatron' | 'torus' | 'optimus', Coefficients> = {
  megatron: {
    'fwd/attention': onlyGamma((n) => (2 * (n - 1)) / n),
    'fwd/ffn': onlyGamma((n) => (2 * (n - 1)) / n),
    'bwd/attention': onlyGamma((n) => (3 * (n - 1)) / n),
    'bwd/ffn': onlyGamma((n) => (3 * (n - 1)) / n),
  },
  torus: {
    'fwd/attention': onlyGamma((n) => (n - 1) / n),
    'fwd/ffn': onlyGamma((n) => (n - 1) / n),
    'bwd/attention': onlyGamma((n) => (3 * (n - 1)) / (2 * n)),
    'bwd/ffn': onlyGamma((n) => (3 * (n - 1)) / (2 * n)),
  },
  optimus: {
    'fwd/attention': summa(2, 4),
    'fwd/ffn': summa(5, 8),
    'bwd/attention': summa(4, 8),
    'bwd/ffn': summa(10, 16),
  },
  hecaton: {
    'fwd/attention': onlyGamma((n) => (6 * (Math.sqrt(n) - 1)) / n),
    'fwd/ffn': onlyGamma((n) => (10 * (Math.sqrt(n) - 1)) / n),
    'bwd/attention': onlyGamma((n) => (8 * (Math.sqrt(n) - 1)) / n),
    'bwd/ffn': onlyGamma((n) => (15 * (Math.sqrt(n) - 1)) / n),
  },
};

const CASES: [string, number, number, number, number][] = [
  // model, grid side, batch, seq, h (paper §VI-A)
  ['bert-large', 4, 16, 512, 1024],
  ['bloom-1.7b', 8, 32, 512, 2048],
  ['gpt3-6.7b', 16, 64, 512, 4096],
  ['classic-h8192', 32, 128, 512, 8192],
];

describe('Table III: NoP transmission per Transformer block', () => {
  for (const [model, side, b, s, h] of CASES) {
    for (const strategy of Object.keys(TABLE3) as (keyof typeof TABLE3)[]) {
      it(`${strategy}, ${model} on ${side * side} dies`, () => {
        const c = compile(`models/${model}.gy`, { hw: `hecaton-${side}x${side}-standard`, strategy: strategy as Strategy, set: { layers: 3 } });
        const ir = trafficByBlock(c.module);
        const set = programsOf(c.module)!;
        const n = side * side;
        for (const die of [{ i: 0, j: 0 }, { i: side >> 1, j: (side >> 1) - 1 }]) {
          const traffic = blockTraffic(set.programFor(die));
          for (const [block, coef] of Object.entries(TABLE3[strategy])) {
            const got = traffic.get(`1|${block}`)?.linkBytes ?? 0;
            const { gamma, xi } = coef(n);
            const want = gamma * b * s * h * 4 + xi * h * h * 4;
            expect(Math.abs(got / want - 1), `die [${die.i}, ${die.j}] ${block}: ${got} bytes, Table III ${want}`).toBeLessThan(0.01);
            expect(got).toBeCloseTo(ir.get(`1|${block}`)!.linkBytes, 0);
          }
        }
      });
    }
  }
});

describe('optimus: the attention core’s own collectives, moved but apart from Table III', () => {
  // bert-large on 16 dies: 16 heads over the 4 dies of a row, so no head spans dies and every
  // byte inside the core is a key/value gather (forward) or its gradient's reduction.
  const [side, b, s, h] = [4, 16, 512, 1024];
  const c = compile('models/bert-large.gy', { hw: `hecaton-${side}x${side}-standard`, strategy: 'optimus', set: { layers: 3 } });
  const ir = trafficByBlock(c.module);
  const p = programsOf(c.module)!.programFor({ i: 1, j: 2 });
  const traffic = blockTraffic(p);
  // One [b·s, h] tensor broadcast (or reduced) along a column of √N dies: log₂N/(2√N)·γ (collective-cost.ts).
  const oneTensor = (Math.log2(side * side) / (2 * side)) * b * s * h * 4;

  // Normalizations on [r, c] tiles all-reduce their row statistics; those bytes are also inside compute ops.
  const norms = (key: string) =>
    c.module.ops().reduce((sum, op) => {
      const phase = op.notes?.['train.phase'] === 'fwd' ? 'fwd' : 'bwd';
      const at = `${op.layer ?? '-'}|${phase}/${String(op.notes?.['fuse.block'])}`;
      return at === key ? sum + ((op.notes?.['norm.link_bytes'] as number | undefined) ?? 0) : sum;
    }, 0);

  it('gathers K and V forward, and again backward where it also reduces dK and dV', () => {
    expect(norms('1|fwd/attention')).toBeGreaterThan(0);
    expect(traffic.get('1|fwd/attention')!.headLinkBytes - norms('1|fwd/attention')).toBeCloseTo(2 * oneTensor, 0);
    expect(traffic.get('1|bwd/attention')!.headLinkBytes - norms('1|bwd/attention')).toBeCloseTo(4 * oneTensor, 0);
    for (const key of ['1|fwd/attention', '1|bwd/attention']) expect(traffic.get(key)!.headLinkBytes).toBeCloseTo(ir.get(key)!.headLinkBytes, 0);
    expect(traffic.get('1|fwd/ffn')!.headLinkBytes).toBe(norms('1|fwd/ffn'));
  });

  it('emits them as collective instructions marked part of the core, and notes them on the core', () => {
    const inside: string[] = [];
    forEachInstr(p.instructions, (ins) => {
      if (ins.kind === 'collective' && ins.partOf?.startsWith('attention') && ins.layer === 1) inside.push(`${ins.partOf} ${ins.op} ${ins.axis}`);
    });
    expect(inside.sort()).toEqual([
      'attention broadcast r',
      'attention broadcast r',
      'attention_grad broadcast r',
      'attention_grad broadcast r',
      'attention_grad reduce_scatter r',
      'attention_grad reduce_scatter r',
    ]);
    const cores = c.module.ops().filter((op) => op.layer === 1 && (op.kind === 'attention' || op.kind === 'attention_grad'));
    expect(cores.map((op) => [op.kind, op.notes?.['attention.kv_collectives'], op.notes?.['attention.kv_link_bytes']])).toEqual([
      ['attention', 2, 2 * oneTensor],
      ['attention_grad', 4, 4 * oneTensor],
    ]);
  });
});
