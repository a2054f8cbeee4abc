// `gyges report`: one self-contained HTML page whose sections and charts are all there, whose
// embedded data is the simulation's (the numbers `simulate --json` gives for each strategy),
// made byte for byte the same on every run; strategies that cannot run are rows, not
// failures; bad input is one line, exit 1, and no file.

import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { main } from '../../src/cli/main.js';
import { simulate } from '../../src/backend/timing/simulate.js';
import { STRATEGIES } from '../../src/passes/pass.js';
import { DATA_ELEMENT_ID, REPORT_FORMAT, SECTIONS, type ReportData } from '../../src/report/index.js';
import { embeddedData } from '../support/report.js';

async function run(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await main(argv, { out: (t) => (out += t), err: (t) => (err += t) });
  return { code, out, err };
}

// Four mini-batches of two, so the timeline has a steady-state iteration to show.
const PIPELINE = 'train,fuse,minibatch{size=2},tile2d,collectives,schedule';
const MODEL = ['models/tiny-gpt.gy', '--hw', 'hecaton-2x2-standard', '--batch', '8', '--pipeline', PIPELINE];
const CHARTS = ['strategies', 'blocks-latency', 'blocks-energy', 'layers', 'sram', 'links', 'collectives', 'timeline'];

describe('gyges report', () => {
  const dir = mkdtempSync(join(tmpdir(), 'gyges-report-'));
  let html = '';
  let data: ReportData;

  beforeAll(async () => {
    const r = await run('report', ...MODEL, '-o', join(dir, 'a.html'));
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/^wrote .*a\.html \(.*\): tiny-gpt on hecaton-2x2-standard, hecaton in detail, 4 of 4 strategies compared\n$/);
    html = readFileSync(join(dir, 'a.html'), 'utf8');
    data = embeddedData(html);
  }, 120_000);

  it('has every section, and every chart as inline SVG with marks', () => {
    for (const [id] of SECTIONS) expect(html).toContain(`<section id="${id}">`);
    const figures = [...html.matchAll(/<figure class="chart" id="chart-([\w-]+)" data-chart="[\w-]+">([\s\S]*?)<\/figure>/g)];
    expect(figures.map((f) => f[1])).toEqual(CHARTS);
    for (const [, , body] of figures) {
      expect(body).toMatch(/<svg [^>]*class="marks"/);
      expect(body).toMatch(/class="mark-(rect|text)/);
      expect(body).toMatch(/<path |<rect /);
    }
  });

  it('needs nothing from outside: no external scripts, styles, images or fonts', () => {
    expect(html).not.toMatch(/<(script|img|iframe|link)\b[^>]*\b(src|href)=/i);
    expect(html).not.toMatch(/@import|url\((?!#)/i);
    expect(html).not.toMatch(/(src|href)="(?!#)/i);
    // The only script is the data, which is not run.
    expect([...html.matchAll(/<script\b[^>]*>/g)].map((m) => m[0])).toEqual([`<script type="application/json" id="${DATA_ELEMENT_ID}">`]);
    // Ids are unique across the inline charts (a chart's url(#…) finds its own element).
    const ids = [...html.matchAll(/\sid="([^"]+)"/g)].map((m) => m[1]);
    expect(new Set(ids).size).toBe(ids.length);
  });

  it('embeds the simulation of the chosen strategy, as simulate --json would give it', () => {
    expect(data.format).toBe(REPORT_FORMAT);
    const { report } = simulate('models/tiny-gpt.gy', { hw: 'hecaton-2x2-standard', batch: 8, pipeline: PIPELINE });
    expect(data.simulation).toEqual(JSON.parse(JSON.stringify(report)));
    expect([data.model, data.target, data.strategy, data.grid]).toEqual(['tiny-gpt', 'hecaton-2x2-standard', 'hecaton', [2, 2]]);
    expect(data.settings).toMatchObject({ batch: 8, pipeline: PIPELINE });
  });

  it('compares every strategy, each with its own simulation’s numbers', () => {
    expect(data.strategies.map((s) => s.strategy)).toEqual([...STRATEGIES]);
    for (const s of data.strategies) {
      const { report } = simulate('models/tiny-gpt.gy', { hw: 'hecaton-2x2-standard', batch: 8, pipeline: PIPELINE, strategy: s.strategy });
      expect(s.error).toBeNull();
      expect([s.latency_s, s.energy_j, s.nop_bytes, s.dram_bytes, s.sram_ok]).toEqual([report.latency_s, report.energy_j, report.nop_bytes, report.dram_bytes, report.sram_ok]);
      expect(s.breakdown_s).toEqual(report.breakdown_s);
      expect(s.energy_breakdown_j).toEqual(report.energy_breakdown_j);
    }
  });

  it('splits each strategy into the simulation’s blocks, with energies summing to its energy', () => {
    for (const s of data.strategies) {
      const rows = data.blocks.filter((b) => b.strategy === s.strategy);
      expect(rows.length).toBeGreaterThan(0);
      for (const part of ['compute', 'sram', 'd2d', 'dram'] as const) {
        const sum = rows.reduce((a, b) => a + b.energy_j[part], 0);
        expect(Math.abs(sum - s.energy_breakdown_j![part])).toBeLessThan(1e-9 * s.energy_breakdown_j![part]);
      }
      const exposed = rows.reduce((a, b) => a + b.exposed_s.compute + b.exposed_s.nop + b.exposed_s.dram + b.exposed_s.idle, 0);
      expect(exposed).toBeLessThanOrEqual(s.latency_s! * (1 + 1e-12));
      expect(exposed).toBeGreaterThan(0.9 * s.latency_s!);
    }
    const mine = data.blocks.filter((b) => b.strategy === 'hecaton');
    expect(mine.map((b) => `${b.layer}|${b.phase}|${b.block}`)).toEqual(data.simulation.blocks.map((b) => `${b.layer}|${b.phase}|${b.block}`));
  });

  it('records what each pass decided, as data taken right after it ran', () => {
    expect(data.passes.map((p) => p.pass)).toEqual(['train', 'fuse', 'minibatch', 'tile2d', 'collectives', 'schedule']);
    const by = Object.fromEntries(data.passes.map((p) => [p.pass, p]));
    expect(by.minibatch!.notes).toMatchObject({ 'minibatch.batch': 8, 'minibatch.size': 2, 'minibatch.count': 4 });
    expect(by.schedule!.notes['schedule.activation_peak_bytes']).toBe(data.simulation.sram_peak_bytes.activation);
    // train's op counts are its own: the collectives the collectives pass adds later are not in them.
    const train = by.train!.detail;
    expect(train?.kind === 'train' && train.ops).toEqual({ fwd: 28, bwd: 29, update: 28 });
    const fuse = by.fuse!.detail;
    expect(fuse?.kind === 'fuse' && fuse.groups.length).toBe(by.fuse!.notes['fuse.groups']);
    const coll = by.collectives!.detail;
    expect(coll?.kind).toBe('collectives');
    if (coll?.kind === 'collectives') expect(coll.collectives.reduce((n, c) => n + c.count, 0)).toBe(by.collectives!.notes['collectives.count']);
    expect(html).not.toMatch(/\bms":|"ms"/);
  });

  it('puts each die’s peak SRAM and each link’s bytes on the grid', () => {
    expect(data.sram.dies.map((x) => x.die)).toEqual([[0, 0], [0, 1], [1, 0], [1, 1]]);
    for (const x of data.sram.dies) expect([x.activation_bytes, x.weight_bytes]).toEqual([data.simulation.sram_peak_bytes.activation, data.simulation.sram_peak_bytes.weight]);
    const links = [...new Set(data.links.loads.map((l) => l.link))];
    expect(links).toEqual(['east (row ring)', 'south (column ring)']);
    expect(data.links.loads).toHaveLength(4 * links.length);
    for (const l of data.links.loads) {
      expect(l.bytes).toBeGreaterThan(0);
      expect(l.utilisation).toBeCloseTo(l.bytes / data.links.bandwidth_bytes_per_s / data.simulation.latency_s, 12);
    }
  });

  it('shows a steady-state mini-batch on a few dies', () => {
    const t = data.timeline!;
    expect(t.loop.count).toBe(4);
    expect(t.loop.iteration).toBe(2);
    expect(t.steady).toBe(true);
    expect(t.dies).toContainEqual(data.simulation.critical_die);
    expect(t.end_s).toBeGreaterThan(t.start_s);
    const tracks = new Set(t.spans.map((s) => s.track));
    for (const k of ['compute', 'dma', 'nop']) expect(tracks).toContain(k);
    expect([...tracks].some((k) => k.startsWith('link '))).toBe(true);
    for (const s of t.spans) {
      expect(s.start_s).toBeGreaterThanOrEqual(0);
      expect(s.end_s).toBeLessThanOrEqual(t.end_s - t.start_s + 1e-15);
      expect(s.end_s).toBeGreaterThan(s.start_s);
    }
  });

  it('is byte-identical on a second run', async () => {
    const r = await run('report', ...MODEL, '-o', join(dir, 'b.html'));
    expect(r.code).toBe(0);
    expect(readFileSync(join(dir, 'b.html'), 'utf8') === html).toBe(true);
  }, 60_000);
});

describe('gyges report on a grid some strategies cannot use', () => {
  it('shows them as unable to run, and refuses to detail one of them', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'gyges-report-'));
    const ok = await run('report', 'models/tiny-gpt.gy', '--hw', 'hecaton-2x4-standard', '-o', join(dir, 'r.html'));
    expect(ok.code).toBe(0);
    expect(ok.out).toContain('3 of 4 strategies compared');
    const html = readFileSync(join(dir, 'r.html'), 'utf8');
    const optimus = embeddedData(html).strategies.find((s) => s.strategy === 'optimus')!;
    expect(optimus.latency_s).toBeNull();
    expect(optimus.error).toMatch(/GY3003.*square/);
    expect(html).toContain('cannot run: optimus needs a square grid');
    const bad = await run('report', 'models/tiny-gpt.gy', '--hw', 'hecaton-2x4-standard', '--strategy', 'optimus', '-o', join(dir, 'o.html'));
    expect(bad.code).toBe(1);
    expect(bad.err).toMatch(/^error GY3003: optimus needs a square grid[^\n]*\n$/);
    expect(existsSync(join(dir, 'o.html'))).toBe(false);
  }, 60_000);
});

describe('gyges report on a heterogeneous package', () => {
  it('names each die’s type on the grid heatmaps and outlines the dies of the other type', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'gyges-report-'));
    const r = await run('report', 'models/tiny-gpt.gy', '--hw', 'test/data/accelerators/half-fast-4x4.yaml', '--strategy', 'megatron', '-o', join(dir, 'h.html'));
    expect(r.code).toBe(0);
    const html = readFileSync(join(dir, 'h.html'), 'utf8');
    for (const chart of ['sram', 'links']) {
      const body = new RegExp(`<figure class="chart" id="chart-${chart}"[\\s\\S]*?</figure>`).exec(html)![0];
      // Row i of the layout [fast, fast, slow, slow]: every cell (and outline) says so in its
      // tooltip; the text marks carry the type in their label.
      const cells = [...body.matchAll(/aria-label="([^"]*row i: (\d+)[^"]*)"/g)].filter(([, label]) => !label!.includes('label:'));
      expect(cells.length).toBeGreaterThanOrEqual(16);
      for (const [, label, row] of cells) expect(label).toContain(`die type: ${Number(row) < 2 ? 'fast' : 'slow'}`);
      expect(body).toContain('outlined');
      expect(body).toMatch(/stroke="#d95f02"/);
    }
    // A homogeneous package shows neither.
    const plain = await run('report', 'models/tiny-gpt.gy', '--hw', 'hecaton-4x4-standard', '--strategy', 'megatron', '-o', join(dir, 'p.html'));
    expect(plain.code).toBe(0);
    const other = readFileSync(join(dir, 'p.html'), 'utf8');
    expect(other).not.toContain('die type:');
    expect(other).not.toContain('#d95f02');
  }, 60_000);
});

describe('gyges report errors', () => {
  it('a missing model: one line, exit 1, no file (and an earlier report left as it was)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'gyges-report-'));
    const r = await run('report', 'models/no-such-model.gy', '--hw', 'hecaton-2x2-standard', '-o', join(dir, 'r.html'));
    expect(r.code).toBe(1);
    expect(r.out).toBe('');
    expect(r.err.split('\n')).toHaveLength(2);
    expect(r.err).toBe("error GY9002: cannot read 'models/no-such-model.gy': no such file\n");
    expect(readdirSync(dir)).toEqual([]);
    writeFileSync(join(dir, 'old.html'), 'an earlier report');
    const again = await run('report', 'models/no-such-model.gy', '--hw', 'hecaton-2x2-standard', '-o', join(dir, 'old.html'));
    expect(again.code).toBe(1);
    expect(readFileSync(join(dir, 'old.html'), 'utf8')).toBe('an earlier report');
    expect(readdirSync(dir)).toEqual(['old.html']);
  });

  it('an unwritable destination is refused before any work, and -o is required', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'gyges-report-'));
    const folder = await run('report', 'models/tiny-gpt.gy', '--hw', 'hecaton-2x2-standard', '-o', dir);
    expect(folder.code).toBe(1);
    expect(folder.err).toMatch(/^error GY9002: cannot write .*: it is a folder[^\n]*\n$/);
    const missing = await run('report', 'models/tiny-gpt.gy', '--hw', 'hecaton-2x2-standard', '-o', join(dir, 'no', 'r.html'));
    expect(missing.code).toBe(1);
    expect(missing.err).toMatch(/^error GY9002: cannot write .*: no folder[^\n]*\n$/);
    const none = await run('report', 'models/tiny-gpt.gy', '--hw', 'hecaton-2x2-standard');
    expect(none.code).toBe(1);
    expect(none.err).toMatch(/^error GY9001: .*--out/);
    expect(readdirSync(dir)).toEqual([]);
  });
});
