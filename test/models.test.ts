// The model zoo: every model lowers, verifies, round-trips through the IR text form, and the
// paper's four workloads have their model cards' parameter and layer counts.

import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadModel } from '../src/frontend/load.js';
import { parseModule } from '../src/ir/parse.js';
import { printModule } from '../src/ir/print.js';
import { verifyModule } from '../src/ir/verify.js';
import { modelStats } from '../src/ir/stats.js';

const models = readdirSync('models').filter((f) => f.endsWith('.gy')).sort();

describe('every model in models/', () => {
  it('is there', () => expect(models.length).toBeGreaterThanOrEqual(9));
  for (const file of models) {
    it(`${file}: lowers, verifies, and print -> parse -> print is byte-identical`, () => {
      const m = loadModel(join('models', file));
      verifyModule(m, 'lowering');
      const text = printModule(m);
      const back = parseModule(text, `${file}.gyir`);
      verifyModule(back, 'parsing');
      expect(printModule(back)).toBe(text);
    });
  }
});

// Published parameter counts (model cards / papers) and layer counts.
const published: [string, number, number][] = [
  ['bert-large.gy', 340e6, 24], // Devlin et al. 2018
  ['bloom-1.7b.gy', 1.72e9, 24], // BigScience 2022
  ['gpt3-6.7b.gy', 6.7e9, 32], // Brown et al. 2020, Table 2.1
  ['llama2-70b.gy', 69.0e9, 80], // Touvron et al. 2023
  ['gpt3-175b.gy', 175.0e9, 96],
  ['llama3-405b.gy', 405e9, 126],
];

describe('model cards', () => {
  for (const [file, params, layers] of published) {
    it(`${file}: params within 2% of ${params / 1e9}B and ${layers} layers`, () => {
      const s = modelStats(loadModel(join('models', file)));
      expect(Math.abs(s.params / params - 1)).toBeLessThan(0.02);
      expect(s.layers).toBe(layers);
    });
  }

  it('counts raised ops and training FLOPs', () => {
    const s = modelStats(loadModel('models/gpt3-6.7b.gy'));
    expect(s.linear).toBe(32 * 4 + 1); // four per layer and the tied LM head
    expect(s.attention).toBe(32);
    // Training costs about 6 FLOPs per parameter per token (forward 2, backward 4) plus the
    // attention scores; the embedding table does no multiply-adds, so it is left out here.
    const tokens = 64 * 512;
    const dense = 6 * (s.params - 50257 * 4096 - 2048 * 4096) * tokens;
    expect(s.flops_per_iteration / dense).toBeGreaterThan(1.0);
    expect(s.flops_per_iteration / dense).toBeLessThan(1.2);
  });

  it('applies batch and sequence overrides', () => {
    const m = loadModel('models/llama2-70b.gy', { batch: 4, seq: 128 });
    expect(m.inputs[0]!.type.shape).toEqual([4, 128]);
    expect(m.outputs[0]!.type.shape).toEqual([4, 128, 32000]);
  });
});
