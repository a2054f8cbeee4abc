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

/** 0.0123 -> "12.300 ms": seconds in s, ms or µs. */
export function seconds(s: number): string {
  if (s === 0) return '0 s';
  if (s >= 1) return `${s.toFixed(3)} s`;
  if (s >= 1e-3) return `${(s * 1e3).toFixed(3)} ms`;
  return `${(s * 1e6).toFixed(3)} µs`;
}

/** 0.5 -> "500.000 mJ": joules in J, mJ or µJ. */
export function joules(j: number): string {
  if (j >= 1) return `${j.toFixed(3)} J`;
  if (j >= 1e-3) return `${(j * 1e3).toFixed(3)} mJ`;
  return `${(j * 1e6).toFixed(3)} µJ`;
}

/** Columns separated by two spaces; the first left-aligned, the others right-aligned unless `left`. */
export function table(rows: readonly (readonly string[])[], left = false): string {
  const widths: number[] = [];
  for (const r of rows) r.forEach((c, i) => (widths[i] = Math.max(widths[i] ?? 0, c.length)));
  const pad = (c: string, i: number) => (i === 0 || left ? c.padEnd(widths[i]!) : c.padStart(widths[i]!));
  return rows.map((r) => r.map(pad).join('  ').trimEnd()).join('\n');
}
