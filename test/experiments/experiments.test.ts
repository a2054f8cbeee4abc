// The experiments of issue 7 (src/experiments): the ablation's pass options, the per-layer
// measurement, and the acceptance properties the paper's figures carry that this simulator
// reproduces (fig9's EDP trends, fig10's growth with α, fig11's SRAM by layout, Table III's
// volumes); the command's contract (JSON rows, CSV and SVG files, one-line errors). Figures
// where we differ from the paper are explained, with numbers, in docs/reproduction.md.

import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { main } from '../../src/cli/main.js';
import { compile } from '../../src/compile.js';
import { GygesError } from '../../src/diagnostics/diagnostic.js';
import { findExperiment, measure, runTasks, type Row } from '../../src/experiments/index.js';
import { ABLATION_PIPELINE } from '../../src/experiments/measure.js';
import { toCsv } from '../../src/experiments/output.js';
import { findUnits } from '../../src/passes/units.js';

async function run(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await main(argv, { out: (t) => (out += t), err: (t) => (err += t) });
  return { code, out, err };
}

const num = (r: Row, k: string) => r[k] as number;

describe('the ablation’s pass options', () => {
  it('fuse{fusion=none} gives every fusion unit a group of its own', () => {
    const at = (pipeline: string) => compile('models/bert-large.gy', { hw: 'hecaton-4x4-advanced', set: { layers: 2 }, pipeline }).module;
    const greedy = at('train,fuse');
    const none = at('train,fuse{fusion=none}');
    expect(none.notes['fuse.groups']).toBe(findUnits(at('train')).length);
    expect(none.notes['fuse.groups'] as number).toBeGreaterThan(greedy.notes['fuse.groups'] as number);
  });

  it('schedule{overlap=false} exposes DRAM time the overlapped schedule hides, with the same work', () => {
    const point = { model: 'models/bert-large.gy', hw: 'hecaton-4x4-standard', set: { batch: 4 } };
    const base = measure({ ...point, variant: 'hecaton' });
    const ablated = measure({ ...point, variant: 'hecaton-no-overlap-fusion' });
    expect(ablated.latency_s).toBeGreaterThan(base.latency_s * 1.02);
    expect(ablated.breakdown_s.dram).toBeGreaterThan(base.breakdown_s.dram);
    expect(ablated.breakdown_s.compute).toBeCloseTo(base.breakdown_s.compute, 9);
    expect(ablated.energy_breakdown_j.compute).toBeCloseTo(base.energy_breakdown_j.compute, 6);
    expect(ABLATION_PIPELINE).toContain('schedule{overlap=false}');
  });
});

describe('measure: one layer of a deep model', () => {
  it('is the middle layer of the full model, not the whole one-layer model', () => {
    const m = measure({ model: 'models/bert-large.gy', hw: 'hecaton-4x4-standard', variant: 'hecaton', set: { batch: 4 } });
    const b = m.breakdown_s;
    expect(b.compute + b.nop + b.dram + b.idle).toBeCloseTo(m.latency_s, 12);
    expect(m.latency_s).toBeLessThan(m.report.latency_s / 3);
    expect(m.energy_j).toBeLessThan(m.report.energy_j / 3);
    expect(m.energy_j).toBeGreaterThan(0);
  });
});

describe('table3', () => {
  it('the programs move Table III’s bytes per block (BERT-Large on 16 dies)', () => {
    const tasks = findExperiment('table3').tasks().filter((t) => t.label.startsWith('bert-large'));
    expect(tasks).toHaveLength(4);
    const rows = tasks.flatMap((t) => t.run());
    expect(rows).toHaveLength(16);
    for (const r of rows) expect(Math.abs(num(r, 'ratio') - 1), `${r.strategy} ${r.block}`).toBeLessThan(0.01);
  });
});

describe('fig7: weak scaling', () => {
  const rows = runTasks(findExperiment('fig7'));
  const of = (s: string) => rows.filter((r) => r.strategy === s);

  it('every baseline’s NoP share grows at every step', () => {
    for (const s of ['megatron', 'torus', 'optimus']) {
      const shares = of(s).map((r) => num(r, 'nop_share'));
      expect(shares).toHaveLength(4);
      for (let i = 1; i < shares.length; i++) expect(shares[i], `${s} step ${i}`).toBeGreaterThan(shares[i - 1]!);
    }
  });

  it('sets Table III’s share beside the measured one, worked out here by hand for BERT-Large', () => {
    const bert = of('hecaton')[0]!;
    // γ = b·s·h·4 B / β; hecaton moves (6 + 10 + 8 + 15)·(√N − 1)/N·γ per layer (Table III).
    const nop = ((39 * 3) / 16) * ((16 * 512 * 1024 * 4) / 64e9);
    // 3 × (12·b·s·h² + 2·b·s²·h) MACs on 16 dies of 4096 MACs at 800 MHz.
    const compute = (3 * (12 * 16 * 512 * 1024 ** 2 + 2 * 16 * 512 ** 2 * 1024)) / (16 * 4096 * 800e6);
    expect(num(bert, 'formula_nop_share')).toBeCloseTo(nop / (nop + compute), 12);
    // Eq. (7)'s 39/√N and eq. (6)'s Linears only.
    const nop7 = (39 / 4) * ((16 * 512 * 1024 * 4) / 64e9);
    const compute7 = (3 * 12 * 16 * 512 * 1024 ** 2) / (16 * 4096 * 800e6);
    expect(num(bert, 'eq7_nop_share')).toBeCloseTo(nop7 / (nop7 + compute7), 12);
  });

  it('hecaton: §V-B’s approximations keep the share flat; exact steps spread it, and the simulator follows', () => {
    const h = of('hecaton');
    for (const r of h) expect(num(r, 'eq7_nop_share')).toBeCloseTo(num(h[0]!, 'eq7_nop_share'), 12);
    const formula = h.map((r) => num(r, 'formula_nop_share'));
    for (let i = 1; i < formula.length; i++) expect(formula[i]).toBeGreaterThan(formula[i - 1]!);
    expect(formula.at(-1)! - formula[0]!).toBeGreaterThan(0.05);
    // Counting all NoP time, hidden or not, the simulated share stays within 4 points of the
    // closed form: the attention cores' key/value collectives (not in Table III) and the GEMM
    // utilisation make the difference. Exposed, it is lower: part of the NoP time runs beside
    // compute.
    for (const r of h) {
      const busy = num(r, 'nop_busy_s') / (num(r, 'nop_busy_s') + num(r, 'compute_s'));
      expect(Math.abs(busy - num(r, 'formula_nop_share')), String(r.model)).toBeLessThan(0.04);
      expect(num(r, 'on_package_nop_share')).toBeLessThan(busy);
    }
    for (const r of of('megatron')) expect(r.eq7_nop_share).toBeNull();
  });
});

describe('fig9: strong scaling', () => {
  const rows = runTasks(findExperiment('fig9'));
  const edp = (s: string) => rows.filter((r) => r.strategy === s).map((r) => [num(r, 'dies'), num(r, 'edp')] as const);

  it('megatron’s EDP bottoms out at an interior die count', () => {
    const m = edp('megatron');
    const best = m.reduce((a, b) => (b[1] < a[1] ? b : a));
    expect(best[0]).toBeGreaterThan(m[0]![0]);
    expect(best[0]).toBeLessThan(m.at(-1)![0]);
  });

  it('hecaton’s EDP keeps falling', () => {
    const h = edp('hecaton');
    expect(h).toHaveLength(7);
    for (let i = 1; i < h.length; i++) expect(h[i]![1], `${h[i]![0]} dies`).toBeLessThan(h[i - 1]![1]);
  });
});

describe('fig10: link latency 10 → 100 ns', () => {
  const rows = runTasks(findExperiment('fig10')).filter((r) => r.alpha_ns === 100);

  it('grows hecaton’s NoP time by at most 3.5×, and its latency by less than that', () => {
    expect(rows).toHaveLength(4);
    for (const r of rows) {
      expect(num(r, 'nop_norm'), String(r.model)).toBeGreaterThan(1);
      expect(num(r, 'nop_norm'), String(r.model)).toBeLessThanOrEqual(3.5);
      expect(num(r, 'latency_norm'), String(r.model)).toBeLessThan(num(r, 'nop_norm'));
    }
  });
});

describe('gyges experiment', () => {
  it('fig11: prints JSON rows, writes the CSV and an SVG with a mark per value', async () => {
    const dir = join(mkdtempSync(join(tmpdir(), 'gyges-exp-')), 'out');
    const r = await run('experiment', 'fig11', '--json', '-o', dir);
    expect(r.code).toBe(0);
    const j = JSON.parse(r.out) as { experiment: string; rows: Row[] };
    expect(j.experiment).toBe('fig11');
    expect(j.rows.map((x) => x.layout)).toEqual(['1x16', '2x8', '4x4', '8x2', '16x1']);
    const square = j.rows[2]!;
    expect([square.latency_norm, square.energy_norm, square.sram_norm]).toEqual([1, 1, 1]);
    // The buffer a layout needs grows when the larger activation is gathered along a long side
    // (§VI-F): a 1×16 row gathers everything along 16 dies; on 2×8, tile2d gathers the larger
    // activation along the short side, so it needs less than the square.
    expect(num(j.rows[0]!, 'activation_need_bytes')).toBeGreaterThan(num(square, 'activation_need_bytes'));
    expect(num(j.rows[1]!, 'activation_need_bytes')).toBeLessThan(num(square, 'activation_need_bytes'));
    // The allocated peak adds what is reserved for overlap where there is room.
    for (const r of j.rows) expect(num(r, 'sram_activation_bytes')).toBeGreaterThanOrEqual(num(r, 'activation_need_bytes'));
    const csv = readFileSync(join(dir, 'fig11.csv'), 'utf8').trimEnd().split('\n');
    expect(csv).toHaveLength(6);
    expect(csv[0]!.split(',')).toEqual(Object.keys(j.rows[0]!));
    const svg = readFileSync(join(dir, 'fig11.svg'), 'utf8');
    expect(svg.startsWith('<svg')).toBe(true);
    expect(svg.match(/aria-roledescription="bar"/g)).toHaveLength(3 * 5);
    expect(svg).toContain('layout: 2x8');
  });

  it('prints a table without --json, and writes nothing without -o', async () => {
    const r = await run('experiment', 'fig11');
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/^bert-large\s+4\s+4\s+4x4\s/m);
    expect(r.err).toBe('');
  });

  it('rejects an unknown experiment with one line and exit 1', async () => {
    const r = await run('experiment', 'fig12');
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/^error GY9001: unknown experiment 'fig12': expected one of table3, fig7, fig8, fig9, fig10, fig11\n$/);
    expect(() => findExperiment('fig12')).toThrow(GygesError);
    expect(existsSync('fig12.csv')).toBe(false);
  });

  it('quotes CSV fields that need it', () => {
    expect(toCsv([{ a: 'x,y', b: 'say "hi"', c: null, d: true }])).toBe('a,b,c,d\n"x,y","say ""hi""",,true\n');
  });
});
