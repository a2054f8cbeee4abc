// What `gyges inspect` shows. A folder: its header and every die's per-iteration totals from
// the manifest. A die: its program with the instructions grouped under the source location
// they came from (a DSL file:line:col, quoted from the file when it can be read, or an ONNX
// node), then a table of what each location costs per iteration. Both have a JSON form.

import { readFileSync } from 'node:fs';
import { addInstr, details, emptyTotals, forEachInstr, loopWeight, type Instruction, type Program, type ProgramTotals } from '../backend/program.js';
import { bytes, si, table } from '../util/format.js';
import type { DieEntry, ProgramFolderView } from './folder.js';

// -- the folder ------------------------------------------------------------------------------

const TOTAL_FIELDS = ['sent_bytes', 'link_bytes', 'dram_read_bytes', 'dram_write_bytes', 'macs', 'vector_flops'] as const;

export function folderSummaryJSON(f: ProgramFolderView): Record<string, unknown> {
  const totals = Object.fromEntries(TOTAL_FIELDS.map((k) => [k, f.dies.reduce((s, d) => s + d[k], 0)]));
  return {
    folder: f.dir,
    model: f.model,
    target: f.target,
    strategy: f.strategy,
    grid: [...f.grid],
    minibatch: { batch: f.minibatch.batch, size: f.minibatch.size, count: f.minibatch.count, last_size: f.minibatch.lastSize },
    instructions_per_die: f.instructionsPerDie,
    dies: f.dies.map((d) => ({ ...d, die: [...d.die] })),
    totals,
    sram_ok: f.dies.every((d) => d.sram_ok),
  };
}

export function folderSummaryText(f: ProgramFolderView): string {
  const mb = f.minibatch;
  const head = table(
    [
      ['folder', f.dir],
      ['model', f.model],
      ['target', f.target],
      ['strategy', f.strategy],
      ['grid', `${f.grid[0]}x${f.grid[1]} (${f.dies.length} dies)`],
      ['mini-batch', `batch ${mb.batch}, size ${mb.size}, count ${mb.count}, last ${mb.lastSize}`],
      ['instructions', `${f.instructionsPerDie} per die`],
    ],
    true,
  );
  const row = (label: string, d: Pick<DieEntry, (typeof TOTAL_FIELDS)[number]>, sram: string) => [
    label,
    bytes(d.sent_bytes),
    bytes(d.link_bytes),
    bytes(d.dram_read_bytes),
    bytes(d.dram_write_bytes),
    si(d.macs),
    si(d.vector_flops),
    sram,
  ];
  const sum = Object.fromEntries(TOTAL_FIELDS.map((k) => [k, f.dies.reduce((s, d) => s + d[k], 0)])) as Record<(typeof TOTAL_FIELDS)[number], number>;
  const rows = [
    ['die', 'sent', 'busiest link', 'DRAM read', 'DRAM written', 'MACs', 'vector FLOPs', 'peak SRAM act / weight'],
    ...f.dies.map((d) => row(`[${d.die.join(', ')}]`, d, `${bytes(d.sram_activation_peak_bytes)} / ${bytes(d.sram_weight_peak_bytes)}${d.sram_ok ? '' : ' OVERFLOWS'}`)),
    row('all dies', sum, ''),
  ];
  return `${head}\n\nper die, per training iteration (from manifest.json):\n${table(rows)}\n\nsee one die's program with: gyges inspect ${f.dir} --die i,j\n`;
}

// -- one die ---------------------------------------------------------------------------------

/** The source text a location points at, or null: the line of a readable .gy file. */
export type SourceReader = (loc: string) => string | null;

export function fileSourceReader(): SourceReader {
  const files = new Map<string, readonly string[] | null>();
  return (loc) => {
    const m = /^(.+\.gy):(\d+):(\d+)$/.exec(loc);
    if (!m) return null;
    const file = m[1]!;
    if (!files.has(file)) {
      try {
        files.set(file, readFileSync(file, 'utf8').split('\n'));
      } catch {
        files.set(file, null);
      }
    }
    const line = files.get(file)?.[Number(m[2]) - 1];
    return line === undefined ? null : line.trim();
  };
}

export interface LocationCost {
  readonly loc: string | null;
  readonly source: string | null;
  /** Ids of its instructions, in program order. */
  readonly ids: number[];
  /** Per training iteration (loop bodies times their iterations). */
  readonly totals: ProgramTotals;
}

/** Every location in order of first appearance, with what its instructions do per iteration. */
export function costByLocation(p: Program, source: SourceReader): LocationCost[] {
  const out = new Map<string | null, LocationCost>();
  const visit = (list: readonly Instruction[], times: number) => {
    for (const ins of list) {
      if (ins.kind === 'loop') {
        visit(ins.body, times * loopWeight(ins));
        continue;
      }
      let c = out.get(ins.loc);
      if (!c) {
        c = { loc: ins.loc, source: ins.loc === null ? null : source(ins.loc), ids: [], totals: emptyTotals() };
        out.set(ins.loc, c);
      }
      c.ids.push(ins.id);
      addInstr(c.totals, ins, times);
    }
  };
  visit(p.instructions, 1);
  return [...out.values()];
}

/** An instruction's line without its origin: what it does, what it reads and writes, what it waits for. */
function instrLine(ins: Instruction): string {
  const io = ins.reads.length + ins.writes.length ? `  ${ins.reads.map(q).join(' ')} -> ${ins.writes.map(q).join(' ')}` : '';
  const deps = `${ins.deps.length ? `  deps ${ins.deps.join(' ')}` : ''}${ins.carried.length ? `  carried ${ins.carried.join(' ')}` : ''}`;
  return `${details(ins)}${io}${deps}`;
}

function origin(ins: Instruction): string {
  return `${ins.phase}${ins.layer === null ? '' : ` L${ins.layer}`}${ins.block ? ` ${ins.block}` : ''}`;
}

function q(s: string): string {
  return JSON.stringify(s);
}

export function dieViewText(f: ProgramFolderView, p: Program, source: SourceReader = fileSourceReader()): string {
  const h = p.header;
  const entry = f.dies[h.die[0] * f.grid[1] + h.die[1]]!;
  const locs = costByLocation(p, source);
  let count = 0;
  let loops = 0;
  forEachInstr(p.instructions, (ins) => {
    count++;
    if (ins.kind === 'loop') loops++;
  });
  const lines = [
    `die [${h.die.join(', ')}] of ${q(h.model)}: target ${h.target}, strategy ${h.strategy}, grid ${h.grid.join('x')}`,
    `mini-batch batch ${h.minibatch.batch}, size ${h.minibatch.size}, count ${h.minibatch.count}, last ${h.minibatch.lastSize}; ` +
      `peak SRAM activation ${bytes(h.sram.activationPeak)} of ${bytes(h.sram.activationCapacity)}, weight ${bytes(h.sram.weightPeak)} of ${bytes(h.sram.weightCapacity)}`,
    `per iteration: sent ${bytes(entry.sent_bytes)}, DRAM ${bytes(entry.dram_read_bytes)} read and ${bytes(entry.dram_write_bytes)} written, ${si(entry.macs)} MACs`,
    `${p.buffers.length} buffers (listed in ${entry.program.replace(/\.json$/, '.txt')}), ${count} instructions (${loops} of them loops) from ${locs.filter((l) => l.loc !== null).length} source locations`,
    '',
    'instructions, under the source location each came from:',
  ];
  const list = (items: readonly Instruction[], depth: number) => {
    const pad = '  '.repeat(depth);
    let group: string | undefined;
    for (const ins of items) {
      if (ins.kind === 'loop') {
        lines.push(`${pad}${String(ins.id).padStart(4)}  ${instrLine(ins)}  ; ${origin(ins)} {`);
        list(ins.body, depth + 1);
        lines.push(`${pad}      }`);
        group = undefined;
        continue;
      }
      const key = `${ins.loc}|${origin(ins)}`;
      if (key !== group) {
        const text = ins.loc === null ? null : source(ins.loc);
        lines.push(`${pad}@ ${ins.loc ?? '(no source location)'}  [${origin(ins)}]${text ? `  ${text}` : ''}`);
        group = key;
      }
      lines.push(`${pad}${String(ins.id).padStart(4)}  ${instrLine(ins)}`);
    }
  };
  list(p.instructions, 0);
  const rows = [
    ['source location', 'instructions', 'MACs', 'DRAM bytes', 'sent'],
    ...locs.map((l) => [l.loc ?? '(none)', String(l.ids.length), si(l.totals.macs), bytes(l.totals.dramReadBytes + l.totals.dramWriteBytes), bytes(l.totals.sentBytes)]),
  ];
  // The quoted source goes last, left-aligned, beside the numbers.
  const quoted = ['source', ...locs.map((l) => clip(l.source ?? '', 60))];
  const body = table(rows).split('\n').map((line, k) => `${line}  ${quoted[k]}`.trimEnd());
  lines.push('', 'per source location, per training iteration:', ...body);
  return `${lines.join('\n')}\n`;
}

function clip(s: string, n: number): string {
  return s.length <= n ? s : `${s.slice(0, n - 1)}…`;
}

export function dieViewJSON(f: ProgramFolderView, p: Program, source: SourceReader = fileSourceReader()): Record<string, unknown> {
  const h = p.header;
  const entry = f.dies[h.die[0] * f.grid[1] + h.die[1]]!;
  const instructions: Record<string, unknown>[] = [];
  const walk = (items: readonly Instruction[], depth: number, loop: number | null) => {
    for (const ins of items) {
      instructions.push({ id: ins.id, kind: ins.kind, depth, loop, text: instrLine(ins), loc: ins.loc, phase: ins.phase, layer: ins.layer, block: ins.block });
      if (ins.kind === 'loop') walk(ins.body, depth + 1, ins.id);
    }
  };
  walk(p.instructions, 0, null);
  return {
    folder: f.dir,
    die: [...h.die],
    model: h.model,
    target: h.target,
    strategy: h.strategy,
    grid: [...h.grid],
    totals: { ...entry, die: [...entry.die] },
    buffers: p.buffers.length,
    instructions,
    locations: costByLocation(p, source).map((l) => ({
      loc: l.loc,
      source: l.source,
      instructions: l.ids,
      macs: l.totals.macs,
      vector_flops: l.totals.vectorFlops,
      dram_read_bytes: l.totals.dramReadBytes,
      dram_write_bytes: l.totals.dramWriteBytes,
      sent_bytes: l.totals.sentBytes,
    })),
  };
}
