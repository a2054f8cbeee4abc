// Plugging in accelerators (issue 10): a die from a user's file changes what the compiler and
// the simulator do as the die's numbers say; the systolic kind costs GEMMs differently from the
// pe-array; broken plugins fail with one line; a heterogeneous package balances work by
// throughput, simulates faster than an all-slow one and still computes the model.

import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { simulate } from '../../src/backend/timing/simulate.js';
import { compile } from '../../src/compile.js';
import { GygesError } from '../../src/diagnostics/diagnostic.js';
import { loadAccelerator, loadAccelerators } from '../../src/target/plugin.js';
import { loadTarget } from '../../src/target/load.js';
import { dieCostModel, dieThroughput } from '../../src/target/accelerators.js';
import { wholeUnits } from '../../src/passes/balance.js';
import { verify } from '../../src/backend/functional/verify.js';

const DATA = 'test/data/accelerators';
const tmp = mkdtempSync(join(tmpdir(), 'gyges-accelerators-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function hwFile(name: string, text: string): string {
  const file = join(tmp, name);
  writeFileSync(file, text);
  return file;
}
/** A compute-bound case: one wide GPT-style layer, 48 heads, on 2×2 dies. */
const WIDE = { set: { layers: 1, h: 3072, heads: 48 }, batch: 8, seq: 256 } as const;

async function withAccelerator(hw: string, file: string) {
  return loadTarget(hw, await loadAccelerators([file]));
}

describe('a die from a user file', () => {
  it('with twice the MACs halves the compute time of a compute-bound case', { timeout: 60_000 }, async () => {
    const base = simulate('models/gpt3-6.7b.gy', { ...WIDE, hw: 'hecaton-2x2-standard' }).report;
    const fast = simulate('models/gpt3-6.7b.gy', { ...WIDE, hw: await withAccelerator('hecaton-2x2-standard', `${DATA}/double-macs.mjs`) }).report;
    expect(fast.target).toBe('hecaton-2x2-standard');
    const ratio = fast.breakdown_s.compute / base.breakdown_s.compute;
    expect(ratio).toBeGreaterThan(0.45);
    expect(ratio).toBeLessThan(0.55);
    // Same work, so the same MAC energy and DRAM traffic.
    expect(fast.energy_breakdown_j.compute).toBeCloseTo(base.energy_breakdown_j.compute, 6);
    expect(fast.dram_bytes).toBe(base.dram_bytes);
  });

  it('with its own gemm function is costed by it (an ideal array is never slower)', async () => {
    const plain = simulate('models/tiny-gpt.gy', { hw: 'hecaton-2x2-standard' }).report;
    const ideal = simulate('models/tiny-gpt.gy', { hw: await withAccelerator('hecaton-2x2-standard', `${DATA}/ideal.mjs`) }).report;
    expect(ideal.breakdown_s.compute).toBeLessThan(plain.breakdown_s.compute);
  });

  it('with half the weight buffer makes more, smaller fusion groups (§III-B b)', async () => {
    const groups = (hw: Parameters<typeof compile>[1]['hw']) => {
      const c = compile('models/bert-large.gy', { hw, set: { layers: 4 } });
      const fuse = c.passes.find((p) => p.pass === 'fuse')!;
      return { count: c.module.notes['fuse.groups'] as number, lines: fuse.reports };
    };
    const full = groups('hecaton-4x4-standard');
    const half = groups(await withAccelerator('hecaton-4x4-standard', `${DATA}/half-weights.json`));
    expect(half.count).toBeGreaterThan(full.count);
    expect(half.lines.join('\n')).toContain('of 2.00 MiB weight buffer per die');
    expect(half.lines.join('\n')).not.toContain('of 4.00 MiB');
  });

  it('is refused with one clear line when its cost function returns no number', async () => {
    const hw = await withAccelerator('hecaton-2x2-standard', `${DATA}/broken.mjs`);
    expect(() => simulate('models/tiny-gpt.gy', { hw })).toThrow(/^error GY4005: accelerator '.*broken\.mjs': gemm\(\{batch: 1, m: \d+, .*\) returned cycles NaN/);
  });

  it('that lacks a vector op the model needs stops the compile at the op (GY3005)', async () => {
    const hw = await withAccelerator('hecaton-2x2-standard', `${DATA}/no-softmax.yaml`);
    let caught: unknown;
    try {
      compile('models/tiny-gpt.gy', { hw });
    } catch (e) {
      caught = e;
    }
    expect(caught).toBeInstanceOf(GygesError);
    expect((caught as Error).message).toMatch(/^models\/tiny-gpt\.gy:\d+:\d+: error GY3005: die 'no-softmax' has no '/);
  });

  it('must have valid numbers and functions', async () => {
    await expect(loadAccelerator(`${DATA}/missing.mjs`)).rejects.toThrow(/GY9002: cannot read accelerator '.*missing\.mjs': no such file/);
    await expect(loadAccelerator('test/data/accelerators/README.md')).rejects.toThrow(/GY4003: accelerator .* must be an ES module/);
    await expect(loadAccelerators([`${DATA}/ideal.mjs`, `${DATA}/ideal.mjs`])).rejects.toThrow(/both define a die named 'ideal'/);
  });
});

describe('the systolic kind', () => {
  const systolic = loadTarget('systolic-bf16-2x2-standard').die;
  const hecaton = loadTarget('hecaton-2x2-standard').die;
  const model = dieCostModel(systolic);

  it('streams m rows through whole 128×128 weight tiles: cycles = ⌈tiles / pes⌉ · max(m, s) + 2s', () => {
    const g = (m: number, n: number, k: number) => Math.round(model.gemmSeconds({ batch: 1, m, n, k, macs: m * n * k, accumulate: false }) * systolic.clockHz * 1e6) / 1e6;
    expect(g(1024, 128, 128)).toBe(1024 + 256);
    expect(g(1024, 256, 384)).toBe(6 * 1024 + 256);
    // A ragged n wastes a whole column tile; a short m wastes the tile load.
    expect(g(1024, 129, 128)).toBe(2 * 1024 + 256);
    expect(g(16, 128, 128)).toBe(128 + 256);
  });

  it('differs in kind from the pe-array: a one-row product is cheap on the PEs, a tile load on the array', () => {
    const pe = dieCostModel(hecaton);
    const oneRow = { batch: 1, m: 1, n: 4096, k: 4096, macs: 4096 * 4096, accumulate: false };
    const peUtil = (4096 * 4096) / (pe.gemmSeconds(oneRow) * hecaton.clockHz * hecaton.macs);
    const sysUtil = (4096 * 4096) / (model.gemmSeconds(oneRow) * systolic.clockHz * systolic.macs);
    expect(peUtil).toBeCloseTo(1 / 16, 6);
    expect(sysUtil).toBeLessThan(1 / 100);
    expect(dieThroughput(model) / (systolic.macs * systolic.clockHz)).toBeGreaterThan(0.9);
  });

  it('keeps an f32 model at the die precision, bf16: half the bytes on the package', () => {
    const bf16 = simulate('models/tiny-gpt.gy', { hw: 'systolic-bf16-2x2-standard' });
    const f32 = simulate('models/tiny-gpt.gy', { hw: 'hecaton-2x2-standard' });
    expect(bf16.compilation.module.params.every((p) => p.type.dtype === 'bf16')).toBe(true);
    expect(bf16.report.dims?.bytes_per_element).toBe(2);
    expect(bf16.report.nop_bytes).toBe(f32.report.nop_bytes / 2);
    expect(bf16.report.dram_bytes).toBeLessThan(f32.report.dram_bytes);
  });
});

describe('a heterogeneous package', () => {
  it('splits work by throughput in whole heads', () => {
    expect(wholeUnits([2, 2, 1, 1], 12)).toEqual([2, 2, 1, 1]);
    expect(wholeUnits([2, 2, 1, 1], 4)).toBeUndefined();
    expect(wholeUnits([2, 2, 1, 1])).toEqual([2, 2, 1, 1]);
    expect(wholeUnits([3, 3, 3])).toBeUndefined();
    expect(wholeUnits([1.5, 1])).toEqual([3, 2]);
  });

  it('reports its balance and runs faster than the same package of slow dies', { timeout: 60_000 }, () => {
    const hetero = simulate('models/gpt3-6.7b.gy', { ...WIDE, hw: `${DATA}/half-fast-4x4.yaml` });
    const slow = simulate('models/gpt3-6.7b.gy', { ...WIDE, hw: `${DATA}/all-slow-4x4.yaml` });
    const tile = hetero.compilation.passes.find((p) => p.pass === 'tile2d')!.reports.join('\n');
    expect(tile).toContain('work split by die throughput: rows 2:2:1:1, columns even');
    expect(hetero.report.latency_s).toBeLessThan(0.9 * slow.report.latency_s);
    expect(hetero.report.breakdown_s.compute).toBeLessThan(0.8 * slow.report.breakdown_s.compute);
    // Split evenly instead, the slow dies set the pace: no faster than the all-slow package.
    const even = simulate('models/gpt3-6.7b.gy', { ...WIDE, hw: hwFile('even.yaml', `${readFileSync(`${DATA}/half-fast-4x4.yaml`, 'utf8')}balance: even\n`) });
    expect(even.compilation.passes.find((p) => p.pass === 'tile2d')!.reports.join('\n')).toContain('work split evenly over the die types (balance: even)');
    expect(even.report.latency_s).toBeGreaterThan(0.99 * slow.report.latency_s);
    expect(hetero.report.latency_s).toBeLessThan(0.9 * even.report.latency_s);
  });

  // 48 heads (4 key/value heads) in 192 columns: rows 2:2:1:1 keep 4 or 2 whole heads on every die.
  it.each(['hecaton', 'optimus'] as const)('still computes the model (verify, grouped-query tiny-llama, %s)', async (strategy) => {
    const r = await verify('models/tiny-llama.gy', { hw: `${DATA}/half-fast-4x4.yaml`, strategy, set: { heads: 48, h: 192, kv_heads: 4 } });
    expect(r.failures).toEqual([]);
    expect(r.ok).toBe(true);
  }, 60_000);

  it('lays out die types row by row, and refuses a layout it cannot place', () => {
    const t = loadTarget(`${DATA}/half-fast-4x4.yaml`);
    expect(t.dieTypes.map((d) => d.name)).toEqual(['fast', 'slow']);
    expect(t.layout).toEqual([0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1]);
    expect(t.dieTypes[0]!.macs).toBe(8192);
    // Names of the file's die and of bundled dies are types too, one spec per name.
    const mixed = loadTarget(hwFile('mixed.yaml', 'base: hecaton-2x2-standard\ndie_types: {fast: {macs: 8192}}\nlayout: ["fast hecaton", [hecaton, fast]]\n'));
    expect(mixed.dieTypes.map((d) => d.name)).toEqual(['fast', 'hecaton']);
    expect(mixed.layout).toEqual([0, 1, 1, 0]);
    const bad: [string, RegExp][] = [
      ['layout: [hecaton]\n', /:2:9: error GY4001: layout must have one entry per row of dies \(2\), got 1/],
      ['layout: [hecaton, "hecaton nope"]\n', /:2:19: error GY4001: unknown die type 'nope'/],
      ['layout: [hecaton, [hecaton, hecaton, hecaton]]\n', /error GY4001: layout\[1\] must name one die type for the whole row or one per die \(2\), got 3/],
      ['die_types: {sys: systolic-bf16}\nlayout: [hecaton, sys]\n', /error GY4001: die types 'hecaton' and 'systolic-bf16' differ in precision/],
      ['die_types: {fast: {macs: 8192}}\n', /error GY4001: die_types needs a layout/],
    ];
    for (const [text, message] of bad) expect(() => loadTarget(hwFile('bad.yaml', `base: hecaton-2x2-standard\n${text}`))).toThrow(message);
  });
});
