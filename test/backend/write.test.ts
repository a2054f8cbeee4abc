// Writing programs to a folder: two compiles give byte-identical folders; the manifest names
// the target and totals each die; a failing write leaves nothing behind, and a folder that is
// not a program folder is never replaced.

import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { compile } from '../../src/compile.js';
import { GygesError } from '../../src/diagnostics/diagnostic.js';
import { parseProgram } from '../../src/backend/program.js';
import { writePrograms } from '../../src/backend/write.js';
import { buildPrograms, type ProgramSet } from '../../src/passes/schedule/index.js';

function programSet(hw = 'hecaton-2x2-standard'): ProgramSet {
  const c = compile('models/tiny-gpt.gy', { hw });
  return buildPrograms(c.module, c.target, c.strategy);
}

function snapshot(dir: string): Record<string, string> {
  return Object.fromEntries(readdirSync(dir).sort().map((f) => [f, readFileSync(join(dir, f), 'utf8')]));
}

function failure(f: () => unknown): GygesError {
  try {
    f();
  } catch (e) {
    if (e instanceof GygesError) return e;
    throw e;
  }
  throw new Error('expected a GygesError');
}

describe('writePrograms', () => {
  const root = mkdtempSync(join(tmpdir(), 'gyges-write-'));
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  it('writes byte-identical folders from two compiles', () => {
    const [a, b] = [join(root, 'a'), join(root, 'b')];
    expect(writePrograms(programSet(), a).files).toBe(9);
    writePrograms(programSet(), b);
    const files = snapshot(a);
    expect(Object.keys(files)).toEqual(['die-0-0.json', 'die-0-0.txt', 'die-0-1.json', 'die-0-1.txt', 'die-1-0.json', 'die-1-0.txt', 'die-1-1.json', 'die-1-1.txt', 'manifest.json']);
    expect(snapshot(b)).toEqual(files);
    expect(readdirSync(root).sort()).toEqual(['a', 'b']);
  });

  it('writes a manifest naming the target, and programs the simulators can read back', () => {
    const dir = join(root, 'a');
    const manifest = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8')) as Record<string, any>;
    expect(manifest.format).toBe('gyges-manifest/1');
    expect(manifest.target.name).toBe('hecaton-2x2-standard');
    expect(manifest.grid).toEqual([2, 2]);
    expect(manifest.dies).toHaveLength(4);
    expect(Object.keys(manifest.dies[0])).toEqual([
      'die', 'program', 'text', 'sent_bytes', 'link_bytes', 'dram_read_bytes', 'dram_write_bytes', 'macs', 'vector_flops',
      'sram_activation_peak_bytes', 'sram_weight_peak_bytes', 'sram_ok',
    ]);
    expect(manifest.dies[0].sram_ok).toBe(true);
    const p = parseProgram(readFileSync(join(dir, 'die-1-0.json'), 'utf8'), 'die-1-0.json');
    expect(p.header.die).toEqual([1, 0]);
  });

  it('replaces an earlier program folder as a whole', () => {
    const dir = join(root, 'a');
    writePrograms(programSet('hecaton-1x2-standard'), dir);
    expect(readdirSync(dir).sort()).toEqual(['die-0-0.json', 'die-0-0.txt', 'die-0-1.json', 'die-0-1.txt', 'manifest.json']);
  });

  it('leaves no folder when the write fails', () => {
    const file = join(root, 'not-a-folder');
    writeFileSync(file, 'x');
    const err = failure(() => writePrograms(programSet(), join(file, 'out')));
    expect(err.code).toBe('GY7002');
    expect(existsSync(join(file, 'out'))).toBe(false);
    expect(readdirSync(root).filter((f) => f.startsWith('.'))).toEqual([]);
  });

  it('refuses to replace a folder that holds no programs', () => {
    const dir = join(root, 'mine');
    mkdirSync(dir);
    writeFileSync(join(dir, 'notes.txt'), 'keep me');
    expect(failure(() => writePrograms(programSet(), dir)).code).toBe('GY7002');
    expect(readFileSync(join(dir, 'notes.txt'), 'utf8')).toBe('keep me');
  });
});
