// `gyges inspect DIR [--die i,j] [--json]`: a folder written by `gyges compile -o`, summarised
// from its manifest, and one die's program with every instruction under its source location.
// Bad input is one line on stderr and exit 1.

import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { main } from '../../src/cli/main.js';
import { forEachInstr, parseProgram } from '../../src/backend/program.js';

async function run(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await main(argv, { out: (t) => (out += t), err: (t) => (err += t) });
  return { code, out, err };
}

function oneLineError(r: { code: number; out: string; err: string }, pattern: RegExp): void {
  expect(r.code).toBe(1);
  expect(r.out).toBe('');
  expect(r.err.endsWith('\n')).toBe(true);
  expect(r.err.trimEnd()).not.toContain('\n');
  expect(r.err).toMatch(pattern);
}

let root: string;
let dir: string;

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), 'gyges-inspect-'));
  dir = join(root, 'programs');
  const r = await run('compile', 'models/tiny-gpt.gy', '--hw', 'hecaton-2x2-standard', '-o', dir);
  expect(r.code).toBe(0);
});

describe('gyges inspect DIR', () => {
  it('summarises the folder: model, target, strategy, grid and per-die totals', async () => {
    const r = await run('inspect', dir);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/^model\s+tiny-gpt$/m);
    expect(r.out).toMatch(/^target\s+hecaton-2x2-standard$/m);
    expect(r.out).toMatch(/^strategy\s+hecaton$/m);
    expect(r.out).toMatch(/^grid\s+2x2 \(4 dies\)$/m);
    for (const d of ['[0, 0]', '[0, 1]', '[1, 0]', '[1, 1]', 'all dies']) expect(r.out).toContain(`\n${d}`);
  });

  it('gives the manifest totals in JSON, summed over the dies', async () => {
    const s = JSON.parse((await run('inspect', dir, '--json')).out);
    const manifest = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8'));
    expect(s).toMatchObject({ model: 'tiny-gpt', target: 'hecaton-2x2-standard', strategy: 'hecaton', grid: [2, 2] });
    expect(s.dies).toHaveLength(4);
    expect(s.dies[3].die).toEqual([1, 1]);
    for (const k of ['sent_bytes', 'dram_read_bytes', 'macs']) {
      expect(s.totals[k]).toBe(manifest.dies.reduce((a: number, d: Record<string, number>) => a + d[k]!, 0));
      expect(s.totals[k]).toBeGreaterThan(0);
    }
  });
});

describe('gyges inspect DIR --die i,j', () => {
  it('lists every instruction under the DSL location it came from, quoting the source line', async () => {
    const r = await run('inspect', dir, '--die', '0,1');
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/^die \[0, 1\] of "tiny-gpt"/);
    const p = parseProgram(readFileSync(join(dir, 'die-0-1.json'), 'utf8'), 'die-0-1.json');
    // Walk the listing: each instruction line must sit under the header of its own location.
    const locOf = new Map<number, string | null>();
    forEachInstr(p.instructions, (ins) => locOf.set(ins.id, ins.kind === 'loop' ? null : ins.loc));
    const listing = r.out.slice(r.out.indexOf('instructions, under'), r.out.indexOf('per source location'));
    let current: string | undefined;
    const seen = new Set<number>();
    for (const line of listing.split('\n')) {
      const header = /^\s*@ (\S+)/.exec(line);
      if (header) current = header[1];
      const ins = /^\s*(\d+)  (\S+)/.exec(line);
      if (!ins) continue;
      const id = Number(ins[1]);
      seen.add(id);
      if (ins[2] !== 'loop') expect(current, `instruction ${id}`).toBe(locOf.get(id) ?? '(no');
    }
    expect(seen).toEqual(new Set(locOf.keys()));
    expect(r.out).toMatch(/@ models\/tiny-gpt\.gy:\d+:\d+ {2}\[fwd L0 attention\] {2}q, k, v = split\(linear\(n, w_qkv, b_qkv\)/);
  });

  it('gives each location, with its instructions and their costs, in JSON', async () => {
    const r = await run('inspect', dir, '--die', '1,1', '--json');
    expect(r.code).toBe(0);
    const v = JSON.parse(r.out);
    expect(v.die).toEqual([1, 1]);
    const nonLoop = v.instructions.filter((i: { kind: string }) => i.kind !== 'loop');
    const listed = v.locations.flatMap((l: { instructions: number[] }) => l.instructions);
    expect(listed.sort((a: number, b: number) => a - b)).toEqual(nonLoop.map((i: { id: number }) => i.id).sort((a: number, b: number) => a - b));
    for (const l of v.locations) expect(l.loc).toMatch(/^models\/tiny-gpt\.gy:\d+:\d+$/);
    const macs = v.locations.reduce((a: number, l: { macs: number }) => a + l.macs, 0);
    expect(macs).toBeCloseTo(v.totals.macs, 6);
    expect(v.locations.some((l: { source: string | null }) => l.source?.startsWith('a = attention('))).toBe(true);
  });
});

describe('gyges inspect: bad input', () => {
  it('rejects a missing folder', async () => {
    oneLineError(await run('inspect', join(root, 'nowhere')), /^error GY9002: cannot read '.*nowhere': no such folder\n$/);
  });

  it('rejects a folder without a manifest, and a malformed manifest', async () => {
    oneLineError(await run('inspect', root), /^error GY7001: .*manifest\.json: missing/);
    const bad = join(root, 'bad-manifest');
    cpSync(dir, bad, { recursive: true });
    writeFileSync(join(bad, 'manifest.json'), '{"format": "gyges-manifest/1", "model": 3}');
    oneLineError(await run('inspect', bad), /^error GY7001: .*manifest\.json: malformed manifest: /);
  });

  it('rejects a malformed program file, naming it', async () => {
    const bad = join(root, 'bad-die');
    cpSync(dir, bad, { recursive: true });
    writeFileSync(join(bad, 'die-1-0.json'), '{"format": "gyges-program/2"');
    oneLineError(await run('inspect', bad, '--die', '1,0'), /^error GY7001: .*die-1-0\.json: malformed program: not JSON/);
    rmSync(join(bad, 'die-0-1.json'));
    oneLineError(await run('inspect', bad, '--die', '0,1'), /^error GY7001: .*die-0-1\.json: cannot read/);
    expect((await run('inspect', bad, '--die', '0,0')).code).toBe(0);
  });

  it('rejects a die outside the grid and a malformed --die', async () => {
    oneLineError(await run('inspect', dir, '--die', '2,0'), /^error GY9001: --die 2,0 is outside the 2x2 grid/);
    for (const text of ['1', '1,x', '-1,0', '1,2,3', '']) {
      oneLineError(await run('inspect', dir, '--die', text), /^error GY9001: --die '.*': expected ROW,COL/);
    }
  });
});
