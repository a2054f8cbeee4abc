// Malformed hardware files (test/target/bad/*.yaml). Each file's first line is
// `# expect: LINE:COL: error GY4xxx: message`, the exact diagnostic after the `FILE:` prefix;
// the loader must throw exactly that, as one line, as a GygesError.

import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { GygesError } from '../../src/diagnostics/diagnostic.js';
import { loadTarget } from '../../src/target/index.js';

const folder = join('test', 'target', 'bad');
const files = readdirSync(folder)
  .filter((f) => f.endsWith('.yaml') || f.endsWith('.yml'))
  .sort();

function expectation(file: string): string {
  const first = readFileSync(join(folder, file), 'utf8').split('\n')[0] ?? '';
  const m = /^# expect: (.*)$/.exec(first);
  if (!m) throw new Error(`${file}: the first line must be '# expect: LINE:COL: error GY4xxx: message'`);
  return m[1]!;
}

describe('malformed hardware files', () => {
  test('cover the required kinds of mistake', () => {
    for (const name of [
      'negative-lanes',
      'string-for-number',
      'unknown-field',
      'missing-field',
      'yaml-syntax',
      'unknown-base',
      'zero-rows',
      'bad-package-kind',
      'non-positive-clock',
    ]) {
      expect(files).toContain(`${name}.yaml`);
    }
  });

  test.each(files)('%s', (file) => {
    const path = join(folder, file);
    const expected = `${path}:${expectation(file)}`;
    let caught: unknown;
    try {
      loadTarget(path);
    } catch (e) {
      caught = e;
    }
    expect(caught).toBeInstanceOf(GygesError);
    const e = caught as GygesError;
    expect(e.message).toBe(expected);
    expect(e.message).not.toContain('\n');
    expect(e.code).toBe(/error (GY\d{4}):/.exec(expected)![1]);
    expect(e.site.kind).toBe('loc');
  });
});
