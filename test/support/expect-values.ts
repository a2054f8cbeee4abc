// Assertions shared by the ONNX operator tests: an error of the project's kind, and numbers
// close to expected ones.

import { expect } from 'vitest';
import { GygesError } from '../../src/diagnostics/diagnostic.js';

/** The GygesError `f` throws (fails the test when it throws something else or nothing). */
export function errorOf(f: () => unknown): GygesError {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(GygesError);
    return e as GygesError;
  }
  throw new Error('expected an error');
}

/**
 * Every element within `rel` of the expected one, relative to its size (or to 1 when
 * `floorOne`, for values near zero); NaN expects NaN.
 */
export function expectClose(got: ArrayLike<number>, want: ArrayLike<number>, rel: number, floorOne = false): void {
  expect(got.length).toBe(want.length);
  for (let i = 0; i < want.length; i++) {
    const w = want[i]!;
    const g = got[i]!;
    if (Number.isNaN(w)) {
      if (!Number.isNaN(g)) expect.fail(`element ${i}: ${g} where NaN was expected`);
      continue;
    }
    const scale = floorOne ? Math.max(1, Math.abs(w)) : Math.abs(w);
    if (!(Math.abs(g - w) <= rel * scale + 1e-30)) expect.fail(`element ${i}: ${g} is not close to ${w}`);
  }
}
