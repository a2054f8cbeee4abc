// Writing a whole file so that readers never see half of it: the text goes to a temporary file
// beside the destination, which is then renamed into place (and removed if anything fails).

import { renameSync, rmSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { error } from '../diagnostics/diagnostic.js';

/** Writes `text` to `file` atomically; a failure is GY9002 naming the file. */
export function writeAtomically(file: string, text: string): void {
  const tmp = join(dirname(file), `.${basename(file)}.${process.pid}.tmp`);
  try {
    writeFileSync(tmp, text);
    renameSync(tmp, file);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw error('GY9002', `cannot write '${file}': ${(e as Error).message}`);
  }
}
