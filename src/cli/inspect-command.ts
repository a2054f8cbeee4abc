// `gyges inspect DIR [--die i,j] [--json]`: read a program folder written by `gyges compile -o`.
// Without --die, the folder's header and per-die totals; with --die, that die's program with
// its instructions grouped under the source location (DSL line or ONNX node) each came from.

import { error } from '../diagnostics/diagnostic.js';
import { openProgramFolder } from '../inspect/folder.js';
import { dieViewJSON, dieViewText, folderSummaryJSON, folderSummaryText } from '../inspect/view.js';

export interface InspectFlags {
  die?: string;
  json?: boolean;
}

/** `i,j` (whole numbers); anything else is a usage error. */
export function parseDie(text: string, flag = '--die'): [number, number] {
  const m = /^\s*(\d+)\s*,\s*(\d+)\s*$/.exec(text);
  const die = m ? ([Number(m[1]), Number(m[2])] as [number, number]) : undefined;
  if (!die || !die.every(Number.isSafeInteger)) throw error('GY9001', `${flag} '${text.trim()}': expected ROW,COL, two whole numbers such as 0,1`);
  return die;
}

/** Returns the text for stdout. */
export function runInspect(dir: string, flags: InspectFlags): string {
  const die = flags.die === undefined ? undefined : parseDie(flags.die);
  const folder = openProgramFolder(dir);
  if (!die) return flags.json ? json(folderSummaryJSON(folder)) : folderSummaryText(folder);
  const p = folder.program(die[0], die[1]);
  return flags.json ? json(dieViewJSON(folder, p)) : dieViewText(folder, p);
}

function json(value: unknown): string {
  return `${JSON.stringify(value, null, 2)}\n`;
}
