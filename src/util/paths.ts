// Locating files that ship with the package (models/, targets/), whether running from the
// TypeScript sources (tests) or from the compiled dist/ tree (the `gyges` command).

import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

let root: string | undefined;

/** The folder holding gyges' package.json. */
export function packageRoot(): string {
  if (root) return root;
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json'))) {
    const up = dirname(dir);
    if (up === dir) throw new Error('internal error: gyges package.json not found above ' + fileURLToPath(import.meta.url));
    dir = up;
  }
  root = dir;
  return dir;
}

/** A path inside the package, e.g. `bundled('targets', 'dies', 'hecaton.yaml')`. */
export function bundled(...parts: string[]): string {
  return join(packageRoot(), ...parts);
}
