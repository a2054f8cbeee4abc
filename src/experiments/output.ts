// An experiment's rows as a CSV file, a chart and a printed table. The chart is the
// experiment's Vega-Lite spec rendered headless to SVG (src/util/vega.ts).

import type { Cell, Experiment, Row } from './experiment.js';
import { table } from '../util/format.js';
import { vegaLiteToSvg } from '../util/vega.js';

function columns(rows: readonly Row[]): string[] {
  const out: string[] = [];
  for (const r of rows) for (const k of Object.keys(r)) if (!out.includes(k)) out.push(k);
  return out;
}

/** RFC 4180: fields with a comma, quote or line break are quoted, quotes doubled. */
function csvField(c: Cell | undefined): string {
  const text = c === null || c === undefined ? '' : String(c);
  return /[",\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

export function toCsv(rows: readonly Row[]): string {
  const cols = columns(rows);
  return [cols.join(','), ...rows.map((r) => cols.map((k) => csvField(r[k])).join(','))].join('\n') + '\n';
}

export async function toSvg(e: Experiment, rows: readonly Row[]): Promise<string> {
  return vegaLiteToSvg(e.chart(rows));
}

/** Numbers to four significant digits (shares as percentages), booleans as yes/no. */
function show(key: string, c: Cell | undefined): string {
  if (c === null || c === undefined) return '-';
  if (typeof c === 'boolean') return c ? 'yes' : 'no';
  if (typeof c === 'string') return c;
  if (key.endsWith('_share')) return `${(100 * c).toFixed(1)}%`;
  if (Number.isInteger(c)) return String(c);
  return c.toPrecision(4);
}

export function toTable(e: Experiment, rows: readonly Row[]): string {
  const cols = columns(rows);
  return `${e.title}\n${table([cols, ...rows.map((r) => cols.map((k) => show(k, r[k])))])}\n`;
}
