// `gyges simulate`, `gyges compare` and the trace file: the JSON contract of DESIGN.md §4 plus
// the blocks list, a readable table, energy in its parts, determinism, a Chrome-trace file with
// a track per die, and one-line errors without partial files.

import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { main } from '../../src/cli/main.js';

async function run(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await main(argv, { out: (t) => (out += t), err: (t) => (err += t) });
  return { code, out, err };
}

describe('gyges simulate', () => {
  it('prints the JSON fields of the contract, with energy in parts and a blocks list', async () => {
    const r = await run('simulate', 'models/tiny-gpt.gy', '--hw', 'hecaton-2x2-standard', '--json');
    expect(r.code).toBe(0);
    const s = JSON.parse(r.out);
    for (const k of ['latency_s', 'energy_j', 'nop_bytes', 'dram_bytes', 'dies']) expect(typeof s[k]).toBe('number');
    expect(s.strategy).toBe('hecaton');
    expect(s.dies).toBe(4);
    expect(typeof s.sram_ok).toBe('boolean');
    for (const k of ['activation', 'weight']) expect(s.sram_peak_bytes[k]).toBeGreaterThan(0);
    for (const k of ['compute', 'nop', 'dram']) expect(s.breakdown_s[k]).toBeGreaterThanOrEqual(0);
    const split = s.breakdown_s.compute + s.breakdown_s.nop + s.breakdown_s.dram + s.breakdown_s.idle;
    expect(split).toBeCloseTo(s.latency_s, 15);
    // Energy: MACs, SRAM, D2D and DRAM all spend something; static is 0 W by default (cited).
    for (const k of ['compute', 'sram', 'd2d', 'dram']) expect(s.energy_breakdown_j[k]).toBeGreaterThan(0);
    const parts = Object.values(s.energy_breakdown_j as Record<string, number>).reduce((a, b) => a + b, 0);
    expect(parts).toBeCloseTo(s.energy_j, 12);
    // One entry per layer × phase × block, with Table III's parameters.
    const layer0 = s.blocks.filter((b: { layer: number | null; phase: string }) => b.layer === 0 && b.phase !== 'update');
    expect(layer0.map((b: { phase: string; block: string }) => `${b.phase}/${b.block}`).sort()).toEqual(['bwd/attention', 'bwd/ffn', 'fwd/attention', 'fwd/ffn']);
    for (const b of layer0) {
      expect(b.dims).toEqual({ b: 2, s: 32, h: 64, N: 4, alpha_s: 10e-9, beta_bytes_per_s: 64e9, bytes_per_element: 4 });
      expect(b.nop_latency_s + b.nop_transmission_s).toBeCloseTo(b.nop_s, 15);
    }
  });

  it('gives byte-identical JSON on every run', async () => {
    const a = await run('simulate', 'models/tiny-llama.gy', '--hw', 'hecaton-2x2-standard', '--json');
    const b = await run('simulate', 'models/tiny-llama.gy', '--hw', 'hecaton-2x2-standard', '--json');
    expect(a.code).toBe(0);
    expect(a.out).toBe(b.out);
  });

  it('jumps over repeating mini-batches by default, and simulates each with --no-extrapolate', async () => {
    const args = ['simulate', 'models/tiny-gpt.gy', '--hw', 'hecaton-2x2-standard', '--batch', '4096', '--json'];
    const fast = JSON.parse((await run(...args)).out);
    const every = JSON.parse((await run(...args, '--no-extrapolate')).out);
    expect(fast.iterations_extrapolated).toBeGreaterThan(0);
    expect(every.iterations_extrapolated).toBe(0);
    expect(every.events).toBeGreaterThan(fast.events);
    expect(Math.abs(fast.latency_s - every.latency_s)).toBeLessThan(1e-9 * every.latency_s);
  });

  it('notes on stderr when most dies must be simulated one by one, and not otherwise', async () => {
    // megatron's flat ring with a vocabulary of 1001 over 128 dies: no two dies alike.
    const slow = await run('simulate', 'models/tiny-gpt.gy', '--hw', 'hecaton-8x16-standard', '--strategy', 'megatron', '--set', 'vocab=1001', '--set', 'h=128', '--json');
    expect(slow.code).toBe(0);
    expect(JSON.parse(slow.out).dies_simulated).toBe(128);
    expect(slow.err).toMatch(/^note: simulating 128 of 128 dies one by one.*padding it/m);
    const padded = await run('simulate', 'models/tiny-gpt.gy', '--hw', 'hecaton-8x16-standard', '--strategy', 'megatron', '--set', 'vocab=1024', '--set', 'h=128', '--json');
    expect(JSON.parse(padded.out).dies_simulated).toBeLessThan(64);
    expect(padded.err).toBe('');
  });

  it('prints a readable table without --json', async () => {
    const r = await run('simulate', 'models/tiny-gpt.gy', '--hw', 'hecaton-2x2-standard', '--strategy', 'megatron');
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/^latency\s+\d+\.\d+ µs per training iteration/m);
    expect(r.out).toMatch(/^fwd attention\s+3\s/m);
    expect(r.out).toMatch(/strategy megatron/);
  });

  it('writes a Chrome trace with a track group per die and a track per engine and link', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'gyges-trace-'));
    const file = join(dir, 'trace.json');
    const r = await run('simulate', 'models/tiny-gpt.gy', '--hw', 'hecaton-2x2-standard', '--trace', file);
    expect(r.code).toBe(0);
    const t = JSON.parse(readFileSync(file, 'utf8'));
    const events = t.traceEvents as { ph: string; pid: number; tid: number; name: string; ts?: number; dur?: number; args: Record<string, unknown> }[];
    const processes = events.filter((e) => e.ph === 'M' && e.name === 'process_name');
    expect(processes.map((e) => e.args.name)).toEqual(['die [0, 0]', 'die [0, 1]', 'die [1, 0]', 'die [1, 1]']);
    const tracks = new Set(events.filter((e) => e.ph === 'M' && e.name === 'thread_name').map((e) => String(e.args.name)));
    for (const name of ['compute', 'dma', 'nop']) expect(tracks).toContain(name);
    expect([...tracks].some((n) => n.startsWith('link'))).toBe(true);
    const spans = events.filter((e) => e.ph === 'X');
    expect(spans.length).toBeGreaterThan(100);
    for (const e of spans) {
      expect(e.ts).toBeGreaterThanOrEqual(0);
      expect(e.dur).toBeGreaterThanOrEqual(0);
    }
    expect(new Set(spans.map((e) => e.pid))).toEqual(new Set([0, 1, 2, 3]));
  });

  it('traces only the dies --trace-dies names, with the spans a full trace has for them', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'gyges-trace-'));
    const [full, few] = [join(dir, 'full.json'), join(dir, 'few.json')];
    expect((await run('simulate', 'models/tiny-gpt.gy', '--hw', 'hecaton-4x4-standard', '--trace', full)).code).toBe(0);
    expect((await run('simulate', 'models/tiny-gpt.gy', '--hw', 'hecaton-4x4-standard', '--trace', few, '--trace-dies', '3,3; 0,1')).code).toBe(0);
    type Ev = { ph: string; pid: number; name: string; args: Record<string, unknown> };
    const [a, b] = [full, few].map((f) => JSON.parse(readFileSync(f, 'utf8')).traceEvents as Ev[]);
    expect(b!.filter((e) => e.ph === 'M' && e.name === 'process_name').map((e) => e.args.name)).toEqual(['die [0, 1]', 'die [3, 3]']);
    const spans = (es: Ev[], pids: number[]) => es.filter((e) => e.ph === 'X' && pids.includes(e.pid));
    expect(spans(b!, [1, 15]).length).toBeGreaterThan(0);
    expect(spans(b!, [1, 15])).toEqual(spans(a!, [1, 15]));
    expect(b!.every((e) => e.pid === 1 || e.pid === 15)).toBe(true);
    for (const [args, message] of [
      [['--trace', join(dir, 'x.json'), '--trace-dies', '4,0'], /die \[4, 0\] is not on the 4x4 package/],
      [['--trace', join(dir, 'x.json'), '--trace-dies', '1;2'], /--trace-dies '1': expected ROW,COL/],
      [['--trace-dies', '0,0'], /give --trace FILE too/],
    ] as const) {
      const r = await run('simulate', 'models/tiny-gpt.gy', '--hw', 'hecaton-4x4-standard', ...args);
      expect(r.code).toBe(1);
      expect(r.err.trimEnd()).not.toContain('\n');
      expect(r.err).toMatch(message);
    }
    expect(existsSync(join(dir, 'x.json'))).toBe(false);
  });

  it('simulates a program folder from its files exactly as the compile it came from', async () => {
    const dir = join(mkdtempSync(join(tmpdir(), 'gyges-progs-')), 'programs');
    expect((await run('compile', 'models/tiny-llama.gy', '--hw', 'hecaton-2x2-standard', '--strategy', 'torus', '-o', dir)).code).toBe(0);
    const fromFiles = JSON.parse((await run('simulate', dir, '--hw', 'hecaton-2x2-standard', '--json')).out);
    const fromModel = JSON.parse((await run('simulate', 'models/tiny-llama.gy', '--hw', 'hecaton-2x2-standard', '--strategy', 'torus', '--json')).out);
    // The folder does not record the model's dimensions; energy is summed die by die from the
    // files but from die 0 and the dies' differences after a compile (the same up to the
    // order of the additions); everything else is the same.
    const strip = (r: Record<string, unknown>) => ({ ...r, dims: null, energy_j: null, energy_breakdown_j: null, blocks: (r.blocks as Record<string, unknown>[]).map((b) => ({ ...b, dims: null })) });
    expect(fromFiles.strategy).toBe('torus');
    expect(strip(fromFiles)).toEqual(strip(fromModel));
    expect(Math.abs(fromFiles.energy_j / fromModel.energy_j - 1)).toBeLessThan(1e-12);
    for (const [k, v] of Object.entries(fromModel.energy_breakdown_j as Record<string, number>)) expect(Math.abs(fromFiles.energy_breakdown_j[k] - v)).toBeLessThanOrEqual(1e-12 * fromModel.energy_j);
    const wrong = await run('simulate', dir, '--hw', 'hecaton-4x4-standard');
    expect(wrong.code).toBe(1);
    expect(wrong.err).toMatch(/compiled for hecaton-2x2-standard/);
    writeFileSync(join(dir, 'die-1-0.json'), '{"format": "gyges-program/1"}\n');
    const broken = await run('simulate', dir, '--hw', 'hecaton-2x2-standard');
    expect(broken.code).toBe(1);
    expect(broken.err).toMatch(/^.*die-1-0\.json.*error GY7001|^error GY7001: .*die-1-0\.json/);
    expect(broken.err.trimEnd()).not.toContain('\n');
  });

  it('fails with one line and writes no trace on a bad model', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'gyges-trace-'));
    const file = join(dir, 'trace.json');
    const r = await run('simulate', 'models/nope.gy', '--hw', 'hecaton-2x2-standard', '--trace', file);
    expect(r.code).toBe(1);
    expect(r.err.trimEnd()).not.toContain('\n');
    expect(existsSync(file)).toBe(false);
  });
});

describe('gyges compare', () => {
  it('lists every strategy normalised to hecaton, overflowing ones marked', async () => {
    const r = await run('compare', 'models/tiny-gpt.gy', '--hw', 'hecaton-2x2-standard', '--json');
    expect(r.code).toBe(0);
    const s = JSON.parse(r.out);
    expect(s.strategies.map((x: { strategy: string }) => x.strategy)).toEqual(['hecaton', 'megatron', 'torus', 'optimus']);
    const hecaton = s.strategies[0];
    expect(hecaton.latency_norm).toBe(1);
    expect(hecaton.energy_norm).toBe(1);
    for (const x of s.strategies) {
      expect(x.latency_norm).toBeCloseTo(x.latency_s / hecaton.latency_s, 12);
      expect(typeof x.sram_ok).toBe('boolean');
    }
    const table = await run('compare', 'models/tiny-gpt.gy', '--hw', 'hecaton-2x2-standard');
    expect(table.out).toMatch(/^hecaton\s+\S+ µs\s+1\.00×/m);
  });

  it('says why optimus cannot run on a non-square grid instead of failing', async () => {
    const r = await run('compare', 'models/tiny-gpt.gy', '--hw', 'hecaton-2x4-standard', '--json');
    expect(r.code).toBe(0);
    const optimus = JSON.parse(r.out).strategies.find((x: { strategy: string }) => x.strategy === 'optimus');
    expect(optimus.error).toMatch(/square/);
  });
});
