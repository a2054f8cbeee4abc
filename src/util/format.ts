// Number formatting for human-readable reports (JSON output always carries raw numbers).

/** 335143936 -> "335.14 M"; decimal SI prefixes, for counts and FLOPs. */
export function si(n: number, unit = ''): string {
  const prefixes = ['', 'K', 'M', 'G', 'T', 'P', 'E'];
  let i = 0;
  let x = Math.abs(n);
  while (x >= 1000 && i < prefixes.length - 1) {
    x /= 1000;
    i++;
  }
  const text = i === 0 ? String(Math.round(x * 100) / 100) : x.toFixed(2);
  return `${n < 0 ? '-' : ''}${text} ${prefixes[i]}${unit}`.trimEnd();
}

/** 4194304 -> "4.00 MiB"; binary prefixes, for memory sizes. */
export function bytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
  let i = 0;
  let x = n;
  while (x >= 1024 && i < units.length - 1) {
    x /= 1024;
    i++;
  }
  return i === 0 ? `${x} B` : `${x.toFixed(2)} ${units[i]}`;
}

/** Columns separated by two spaces; the first left-aligned, the others right-aligned unless `left`. */
export function table(rows: readonly (readonly string[])[], left = false): string {
  const widths: number[] = [];
  for (const r of rows) r.forEach((c, i) => (widths[i] = Math.max(widths[i] ?? 0, c.length)));
  const pad = (c: string, i: number) => (i === 0 || left ? c.padEnd(widths[i]!) : c.padStart(widths[i]!));
  return rows.map((r) => r.map(pad).join('  ').trimEnd()).join('\n');
}
