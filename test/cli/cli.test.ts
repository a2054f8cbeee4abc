// The command line: exit codes, one-line errors, JSON contracts (DESIGN.md §4). Most cases
// run `main` in-process; one runs the real executable to see what a shell sees.

import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
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

function oneLine(text: string): void {
  expect(text.endsWith('\n')).toBe(true);
  expect(text.trimEnd()).not.toContain('\n');
  expect(text).not.toMatch(/\bat .*\(.*:\d+:\d+\)/); // no stack frames
}

describe('gyges stats', () => {
  it('prints the JSON fields of the contract', async () => {
    const r = await run('stats', 'models/bert-large.gy', '--json');
    expect(r.code).toBe(0);
    const s = JSON.parse(r.out);
    for (const k of ['params', 'layers', 'linear', 'attention', 'flops_per_iteration']) expect(typeof s[k]).toBe('number');
    expect(s.layers).toBe(24);
    expect(s.linear).toBe(24 * 4 + 1);
    expect(s.attention).toBe(24);
  });

  it('prints a readable table without --json', async () => {
    const r = await run('stats', 'models/tiny-llama.gy');
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/^model\s+tiny-llama$/m);
    expect(r.out).toMatch(/^layers\s+2$/m);
  });

  it('honours --batch and --seq', async () => {
    const r = await run('stats', 'models/tiny-gpt.gy', '--batch', '5', '--seq', '7', '--json');
    expect(JSON.parse(r.out).inputs[0].shape).toEqual([5, 7]);
  });
});

describe('gyges compile', () => {
  it('prints lowered IR that parses back (empty pipeline)', async () => {
    const r = await run('compile', 'models/tiny-gpt.gy', '--hw', 'hecaton-2x2-standard', '--pipeline', '', '--print-ir');
    expect(r.code).toBe(0);
    const dir = mkdtempSync(join(tmpdir(), 'gyges-'));
    writeFileSync(join(dir, 'tiny.gyir'), r.out);
    const again = await run('compile', join(dir, 'tiny.gyir'), '--hw', 'hecaton-2x2-standard', '--pipeline', '', '--print-ir');
    expect(again.code).toBe(0);
    expect(again.out).toBe(r.out);
  });

  it('summarises what every pass decided and the peak SRAM', async () => {
    const r = await run('compile', 'models/bert-large.gy', '--hw', 'hecaton-4x4-standard', '--set', 'layers=2');
    expect(r.code).toBe(0);
    expect(r.out).toContain('model bert-large, strategy hecaton');
    for (const pass of ['train', 'fuse', 'minibatch', 'tile2d', 'collectives']) expect(r.out).toContain(`  ${pass}: `);
    expect(r.out).toMatch(/peak SRAM per die: activation [0-9.]+ MiB of 4\.00 MiB, weight [0-9.]+ MiB of 4\.00 MiB/);
  });

  it('marks a baseline that overflows SRAM instead of failing', async () => {
    const r = await run('compile', 'models/gpt3-6.7b.gy', '--hw', 'hecaton-16x16-standard', '--strategy', 'megatron', '--set', 'layers=1');
    expect(r.code).toBe(0);
    expect(r.out).toContain('OVERFLOWS (*)');
  });

  it('--print-after-all prints the IR after every pass, in order', async () => {
    const r = await run('compile', 'models/tiny-gpt.gy', '--hw', 'hecaton-2x2-standard', '--print-after-all');
    const headers = [...r.out.matchAll(/^\/\/ ----- IR after (\w+) -----$/gm)].map((m) => m[1]);
    expect(headers).toEqual(['input', 'qkv', 'train', 'fuse', 'minibatch', 'tile2d', 'collectives', 'schedule']);
  });

  it('--dump-dir writes one numbered file per pass, and --stop-after ends early', async () => {
    const dir = join(mkdtempSync(join(tmpdir(), 'gyges-')), 'dump');
    const r = await run('compile', 'models/tiny-gpt.gy', '--hw', 'hecaton-2x2-standard', '--dump-dir', dir, '--stop-after', 'fuse');
    expect(r.code).toBe(0);
    expect(readdirSync(dir)).toEqual(['00-input.gyir', '01-qkv.gyir', '02-train.gyir', '03-fuse.gyir']);
    expect(readFileSync(join(dir, '03-fuse.gyir'), 'utf8')).toMatch(/^\/\/ fuse: group 0: /);
    // A second run replaces its own dump.
    const again = await run('compile', 'models/tiny-gpt.gy', '--hw', 'hecaton-2x2-standard', '--dump-dir', dir);
    expect(again.code).toBe(0);
    expect(readdirSync(dir)).toHaveLength(8);
  });

  it('--mode inference compiles the forward graph only', async () => {
    const r = await run('compile', 'models/tiny-gpt.gy', '--hw', 'hecaton-2x2-standard', '--mode', 'inference', '--print-ir');
    expect(r.code).toBe(0);
    expect(r.out).not.toContain('linear_grad');
    expect(r.out).toContain('"train.mode" = "inference"');
  });

  it('is deterministic', async () => {
    const a = await run('compile', 'models/tiny-llama.gy', '--hw', 'hecaton-2x3-advanced', '--strategy', 'torus', '--print-ir');
    const b = await run('compile', 'models/tiny-llama.gy', '--hw', 'hecaton-2x3-advanced', '--strategy', 'torus', '--print-ir');
    expect(a.code).toBe(0);
    expect(a.out).toBe(b.out);
  });
});

describe('compile errors leave no partial output', () => {
  it('a layer that cannot fit the weight buffers fails with GY3001 and writes no dump', async () => {
    const root = mkdtempSync(join(tmpdir(), 'gyges-'));
    const hw = join(root, 'tiny-buffers.yaml');
    writeFileSync(hw, 'base: hecaton-1x1-standard\ndie:\n  weight_buffer_mib: 0.000244140625\n');
    const dump = join(root, 'dump');
    const r = await run('compile', 'models/tiny-gpt.gy', '--hw', hw, '--dump-dir', dump);
    expect(r.code).toBe(1);
    oneLine(r.err);
    expect(r.err).toMatch(/^models\/tiny-gpt\.gy:\d+:\d+: error GY3001: .*weight buffer per die/);
    expect(existsSync(dump)).toBe(false);
  });

  it('refuses to replace a folder holding other files', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'gyges-'));
    writeFileSync(join(dir, 'notes.txt'), 'mine');
    const r = await run('compile', 'models/tiny-gpt.gy', '--hw', 'hecaton-2x2-standard', '--dump-dir', dir);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/refusing to replace/);
    expect(readFileSync(join(dir, 'notes.txt'), 'utf8')).toBe('mine');
  });

  const unmappable: [string, string[], RegExp][] = [
    ['optimus on a non-square grid', ['--hw', 'hecaton-2x3-standard', '--strategy', 'optimus'], /^error GY3003: optimus needs a square grid/],
    ['megatron on an odd number of dies', ['--hw', 'hecaton-3x3-standard', '--strategy', 'megatron'], /^error GY3003: megatron's flat ring needs an even number of dies/],
    ['more dies than rows to split', ['--hw', 'hecaton-128x128-standard'], /^models\/tiny-gpt\.gy:\d+:\d+: error GY3003: hecaton splits the 64 rows of 'embedding' \(add\) over 128 dies/],
  ];
  for (const [name, flags, pattern] of unmappable) {
    it(`a model the strategy cannot map: ${name}`, async () => {
      const r = await run('compile', 'models/tiny-gpt.gy', ...flags);
      expect(r.code).toBe(1);
      oneLine(r.err);
      expect(r.err).toMatch(pattern);
    });
  }

  it('a grid of 0 dies is a hardware error', async () => {
    const r = await run('compile', 'models/tiny-gpt.gy', '--hw', 'hecaton-0x4-standard');
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/^error GY4001: preset 'hecaton-0x4-standard' must have at least one row and one column, got 0x4$/m);
  });

  it('a pipeline naming an unknown pass is a usage error', async () => {
    const r = await run('compile', 'models/tiny-gpt.gy', '--hw', 'hecaton-2x2-standard', '--pipeline', 'train,fusee');
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/unknown pass 'fusee' \(did you mean 'fuse'\?\)/);
  });

  it('compiling a training graph again is a user error', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'gyges-'));
    const first = await run('compile', 'models/tiny-gpt.gy', '--hw', 'hecaton-2x2-standard', '--stop-after', 'train', '--print-ir');
    writeFileSync(join(dir, 'trained.gyir'), first.out);
    const r = await run('compile', join(dir, 'trained.gyir'), '--hw', 'hecaton-2x2-standard');
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/GY3004: .*already a training graph/);
  });
});

describe('gyges collective', () => {
  it('gives time_s equal to the ring closed form 2(N-1)(α + S/(Nβ))', async () => {
    const r = await run('collective', 'all-reduce', '--topology', 'ring:8', '--bytes', String(2 ** 24), '--alpha-ns', '500', '--bandwidth-GBps', '64', '--json');
    expect(r.code).toBe(0);
    const want = 2 * 7 * (500e-9 + 2 ** 24 / (8 * 64e9));
    expect(JSON.parse(r.out).time_s / want).toBeCloseTo(1, 7); // each of 14 steps to a tick of 2^-40 s (events.ts)
  });

  it('rejects an unknown kind and a bad topology with one line', async () => {
    for (const argv of [['all-scatter', '--topology', 'ring:4'], ['all-gather', '--topology', 'mesh:4']]) {
      const r = await run('collective', ...argv, '--bytes', '64');
      expect(r.code).toBe(1);
      oneLine(r.err);
    }
  });
});

describe('user errors exit 1 with one line', () => {
  const cases: [string, string[], RegExp][] = [
    ['missing model file', ['stats', 'models/nope.gy'], /^error GY9002: cannot read 'models\/nope.gy': no such file$/],
    ['unknown extension', ['stats', 'README.md'], /GY9003/],
    ['unknown command', ['frobnicate'], /^error GY9001: unknown command 'frobnicate'/],
    ['unknown option', ['stats', 'models/tiny-gpt.gy', '--frob'], /^error GY9001: unknown option '--frob'/],
    ['bad batch', ['stats', 'models/tiny-gpt.gy', '--batch', '0'], /^error GY9001: .*--batch/],
    ['missing --hw', ['compile', 'models/tiny-gpt.gy'], /^error GY9001: required option '--hw <HW>' not specified/],
    ['unknown preset', ['compile', 'models/tiny-gpt.gy', '--hw', 'hecaton-4x4-deluxe'], /GY4002/],
    ['override of an undeclared constant', ['stats', 'models/tiny-gpt.gy', '--set', 'depth=3'], /GY2018/],
  ];
  for (const [name, argv, pattern] of cases) {
    it(name, async () => {
      const r = await run(...argv);
      expect(r.code).toBe(1);
      expect(r.out).toBe('');
      oneLine(r.err);
      expect(r.err.trimEnd()).toMatch(pattern);
    });
  }

  it('every malformed DSL case fails with its located one-line error', async () => {
    const dir = 'test/frontend/dsl-errors';
    const files = readdirSync(dir).filter((f) => f.endsWith('.gy'));
    expect(files.length).toBeGreaterThanOrEqual(12);
    for (const f of files) {
      const r = await run('stats', join(dir, f));
      expect(r.code, f).toBe(1);
      oneLine(r.err);
      expect(r.err, f).toMatch(new RegExp(`^${join(dir, f).replace(/[.]/g, '\\.')}:\\d+:\\d+: error GY\\d{4}: `));
    }
  });

  it('a malformed hardware file names the field', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'gyges-'));
    const hw = join(dir, 'hw.yaml');
    writeFileSync(hw, 'base: hecaton-4x4-standard\npackage:\n  link:\n    lanes: -3\n');
    const r = await run('compile', 'models/tiny-gpt.gy', '--hw', hw);
    expect(r.code).toBe(1);
    oneLine(r.err);
    expect(r.err).toContain(`${hw}:4:12: error GY4001: package.link.lanes`);
  });
});

describe('the installed executable', () => {
  it('exits 1 with one line and no stack trace on a user error', () => {
    const r = spawnSync(process.execPath, ['bin/gyges.js', 'stats', 'test/frontend/dsl-errors/undefined-name.gy'], { encoding: 'utf8' });
    expect(r.status).toBe(1);
    expect(r.stdout).toBe('');
    oneLine(r.stderr);
  });

  it('prints help and exits 0', () => {
    const out = execFileSync(process.execPath, ['bin/gyges.js', '--help'], { encoding: 'utf8' });
    expect(out).toContain('stats');
    expect(out).toContain('compile');
  });

  it('stops quietly when its reader closes the pipe early (| head)', () => {
    // The shell closes the pipe after the first line of a long output.
    const r = spawnSync('sh', ['-c', `"${process.execPath}" bin/gyges.js compile models/tiny-gpt.gy --hw hecaton-2x2-standard --print-after-all | head -n 1 > /dev/null`], { encoding: 'utf8' });
    expect(r.stderr).toBe('');
  });
});
