// The report's charts as Vega-Lite specs, each built from the ReportData alone, data inline.
// Numbers are scaled to one unit per chart (µs, ms or s; µJ, mJ or J; KiB … GiB) picked from
// its largest value, and labels printed in cells are formatted here, so the rendered SVG does
// not depend on the renderer's number formatting.

import type { TopLevelSpec } from 'vega-lite';
import { STRATEGIES } from '../passes/pass.js';
import { bytes } from '../util/format.js';
import type { BlockRow, ReportData } from './collect.js';

export interface Chart {
  /** Its id in the page (and the prefix of its SVG's ids). */
  readonly name: string;
  readonly title: string;
  /** What the reader sees, in a sentence. */
  readonly caption: string;
  readonly spec: TopLevelSpec;
}

const SCHEMA = 'https://vega.github.io/schema/vega-lite/v6.json';

const TIME_PARTS = ['compute', 'nop', 'dram', 'idle'] as const;
const TIME_COLOURS = ['#4c78a8', '#f58518', '#54a24b', '#bab0ac'];
const ENERGY_PARTS = ['compute', 'sram', 'd2d', 'dram', 'static'] as const;
const ENERGY_COLOURS = ['#4c78a8', '#72b7b2', '#f58518', '#54a24b', '#bab0ac'];
const TRACK_KINDS = ['compute', 'DMA', 'NoP', 'link'];
/** How the parts of a split read in legends. */
const LEGEND: Readonly<Record<string, string>> = { compute: 'compute', nop: 'NoP', dram: 'DRAM', idle: 'idle', sram: 'SRAM', d2d: 'D2D', static: 'static' };
const legend = (parts: readonly string[]) => parts.map((p) => LEGEND[p] ?? p);
const TRACK_COLOURS = ['#4c78a8', '#54a24b', '#f58518', '#e45756'];

interface Unit {
  readonly factor: number;
  readonly name: string;
}

function timeUnit(max: number): Unit {
  if (max >= 1) return { factor: 1, name: 's' };
  if (max >= 1e-3) return { factor: 1e3, name: 'ms' };
  return { factor: 1e6, name: 'µs' };
}

function energyUnit(max: number): Unit {
  if (max >= 1) return { factor: 1, name: 'J' };
  if (max >= 1e-3) return { factor: 1e3, name: 'mJ' };
  return { factor: 1e6, name: 'µJ' };
}

function byteUnit(max: number): Unit {
  const names = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (max >= 1024 ** (i + 1) && i < names.length - 1) i++;
  return { factor: 1 / 1024 ** i, name: names[i]! };
}

/** The label of a block in charts: `fwd attention`, `update ffn`, `bwd other`. */
export function blockLabel(b: Pick<BlockRow, 'phase' | 'block'>): string {
  return `${b.phase} ${b.block}`;
}

/** Phase-block labels present in `rows`, forward first, then backward, then the update. */
function blockOrder(rows: readonly BlockRow[]): string[] {
  const phases = ['fwd', 'bwd', 'update'];
  const kinds = ['attention', 'ffn'];
  const rank = (label: string) => {
    const [p, k] = label.split(' ') as [string, string];
    const ki = kinds.indexOf(k);
    return phases.indexOf(p) * 10 + (ki < 0 ? kinds.length : ki);
  };
  return [...new Set(rows.map(blockLabel))].sort((a, b) => rank(a) - rank(b) || (a < b ? -1 : a > b ? 1 : 0));
}

interface Stacked {
  readonly values: readonly Record<string, string | number>[];
  readonly x: string;
  readonly xDomain: readonly string[];
  readonly xTitle: string | null;
  readonly parts: readonly string[];
  readonly colours: readonly string[];
  readonly yTitle: string;
  readonly column?: { readonly field: string; readonly domain: readonly string[] };
  readonly width: number;
}

/** Bars along `x` stacked by `part` (value `v`), in the parts' order, optionally one panel per column. */
function stackedBars(s: Stacked): Record<string, unknown> {
  const encoding = {
    x: { field: s.x, type: 'nominal', sort: s.xDomain, scale: { domain: s.xDomain }, title: s.xTitle, axis: { labelAngle: s.width / s.xDomain.length >= 55 ? 0 : -40 } },
    y: { field: 'v', type: 'quantitative', title: s.yTitle, stack: 'zero' },
    color: { field: 'part', type: 'nominal', sort: s.parts, scale: { domain: s.parts, range: s.colours }, title: null },
    order: { field: 'rank', type: 'quantitative' },
  };
  const bars = { mark: { type: 'bar' }, encoding, width: s.width, height: 220 };
  if (!s.column) return { data: { values: s.values }, ...bars };
  const { width, height, ...inner } = bars;
  return {
    data: { values: s.values },
    facet: { column: { field: s.column.field, type: 'nominal', sort: s.column.domain, title: null, header: { labelAngle: 0, labelFontSize: 11 } } },
    spec: { ...inner, width, height },
    resolve: { scale: { x: 'independent' } },
  };
}

/** A top-level spec; the page's heading titles the chart, so the chart has none of its own. */
function topLevel(spec: Record<string, unknown>): TopLevelSpec {
  return { $schema: SCHEMA, config: { font: 'sans-serif', view: { stroke: null }, axis: { labelLimit: 260 } }, ...spec } as unknown as TopLevelSpec;
}

/** Latency and energy of one training iteration per strategy, in their parts. */
function strategiesChart(d: ReportData): Chart {
  const ran = d.strategies.filter((r) => r.latency_s !== null);
  const t = timeUnit(Math.max(...ran.map((r) => r.latency_s!)));
  const e = energyUnit(Math.max(...ran.map((r) => r.energy_j!)));
  const time = ran.flatMap((r) => TIME_PARTS.map((p, rank) => ({ strategy: r.strategy, part: LEGEND[p]!, rank, v: r.breakdown_s![p] * t.factor })));
  const energy = ran.flatMap((r) => ENERGY_PARTS.map((p, rank) => ({ strategy: r.strategy, part: LEGEND[p]!, rank, v: r.energy_breakdown_j![p] * e.factor })));
  const missing = d.strategies.filter((r) => r.latency_s === null).map((r) => ({ strategy: r.strategy, note: 'cannot run' }));
  const panel = (values: object[], parts: readonly string[], colours: readonly string[], yTitle: string) => {
    const bars = stackedBars({ values: values as Record<string, number>[], x: 'strategy', xDomain: STRATEGIES, xTitle: null, parts, colours, yTitle, width: 220 });
    if (missing.length === 0) return bars;
    const { width, height, ...barLayer } = bars as { width: number; height: number };
    const note = {
      data: { values: missing },
      mark: { type: 'text', angle: 270, align: 'left', baseline: 'middle', dx: 6, color: '#666' },
      encoding: { x: { field: 'strategy', type: 'nominal', sort: STRATEGIES, scale: { domain: STRATEGIES } }, y: { datum: 0, type: 'quantitative' }, text: { field: 'note' } },
    };
    return { width, height, layer: [barLayer, note], resolve: { scale: { color: 'independent' } } };
  };
  return {
    name: 'strategies',
    title: 'Latency and energy per strategy',
    caption: `One training iteration on ${d.target}: exposed time on the critical die by engine, and energy by part, for every strategy${missing.length ? ` (${missing.map((m) => m.strategy).join(', ')} cannot run on this grid)` : ''}.`,
    spec: topLevel(
      { hconcat: [panel(time, legend(TIME_PARTS), TIME_COLOURS, `latency (${t.name})`), panel(energy, legend(ENERGY_PARTS), ENERGY_COLOURS, `energy (${e.name})`)], resolve: { scale: { color: 'independent' } } },
    ),
  };
}

/** Every strategy's time (or energy) per block and phase, summed over layers. */
function blocksChart(d: ReportData, what: 'latency' | 'energy'): Chart {
  const order = blockOrder(d.blocks);
  const sums = new Map<string, Record<string, number>>();
  for (const b of d.blocks) {
    const key = `${b.strategy}|${blockLabel(b)}`;
    const acc = sums.get(key) ?? {};
    const parts = what === 'latency' ? b.exposed_s : b.energy_j;
    for (const [p, v] of Object.entries(parts)) acc[p] = (acc[p] ?? 0) + v;
    sums.set(key, acc);
  }
  const parts = what === 'latency' ? TIME_PARTS : ENERGY_PARTS;
  const max = Math.max(...[...sums.values()].map((acc) => parts.reduce((s, p) => s + (acc[p] ?? 0), 0)));
  const unit = what === 'latency' ? timeUnit(max) : energyUnit(max);
  const all = [...sums].flatMap(([key, acc]) => {
    const [strategy, label] = key.split('|') as [string, string];
    return parts.map((p, rank) => ({ strategy, block: label, part: LEGEND[p]!, rank, v: (acc[p] ?? 0) * unit.factor }));
  });
  // Blocks of no time or energy under any strategy (a loop's own bookkeeping) get no panel.
  const shown = order.filter((label) => all.some((v) => v.block === label && v.v > 0));
  const values = all.filter((v) => shown.includes(v.block));
  const ran = STRATEGIES.filter((s) => d.strategies.some((r) => r.strategy === s && r.error === null));
  const title = what === 'latency' ? 'Exposed time per block and phase' : 'Energy per block and phase';
  return {
    name: `blocks-${what}`,
    title,
    caption:
      what === 'latency'
        ? 'Of the critical die’s wall time, what each block’s instructions left exposed (compute, NoP not hidden by compute, DRAM not hidden by either, waiting), summed over layers, per strategy.'
        : 'Energy of each block’s instructions on every die (MACs and vector ops, SRAM, die-to-die links, DRAM; static power over its exposed time), summed over layers, per strategy.',
    spec: topLevel(
      stackedBars({ values, x: 'strategy', xDomain: ran, xTitle: null, parts: legend(parts), colours: what === 'latency' ? TIME_COLOURS : ENERGY_COLOURS, yTitle: `${what} (${unit.name})`, column: { field: 'block', domain: shown }, width: Math.max(60, 22 * ran.length) }),
    ),
  };
}

/** The chosen strategy's exposed time per layer, stacked by phase and block. */
function layersChart(d: ReportData): Chart {
  const mine = d.blocks.filter((b) => b.strategy === d.strategy);
  const order = blockOrder(mine);
  const layerOf = (b: BlockRow) => (b.layer === null ? 'outside' : String(b.layer));
  const layers = [...new Set(mine.map(layerOf))].sort((a, b) => (a === 'outside' ? 1 : b === 'outside' ? -1 : Number(a) - Number(b)));
  const total = (b: BlockRow) => b.exposed_s.compute + b.exposed_s.nop + b.exposed_s.dram + b.exposed_s.idle;
  const perLayer = new Map<string, number>();
  for (const b of mine) perLayer.set(layerOf(b), (perLayer.get(layerOf(b)) ?? 0) + total(b));
  const unit = timeUnit(Math.max(...perLayer.values()));
  const values = mine.filter((b) => total(b) > 0).map((b) => ({ layer: layerOf(b), part: blockLabel(b), rank: order.indexOf(blockLabel(b)), v: total(b) * unit.factor }));
  const parts = order.filter((label) => values.some((v) => v.part === label));
  const palette = ['#4c78a8', '#9ecae9', '#f58518', '#ffbf79', '#54a24b', '#88d27a', '#b79a20', '#f2cf5b', '#bab0ac'];
  return {
    name: 'layers',
    title: `Exposed time per layer (${d.strategy})`,
    caption: `The ${d.strategy} schedule’s wall time by Transformer layer, split by phase and block (“outside”: embedding, head and loss).`,
    spec: topLevel(
      stackedBars({ values, x: 'layer', xDomain: layers, xTitle: 'layer', parts, colours: parts.map((_, i) => palette[i % palette.length]!), yTitle: `exposed time (${unit.name})`, width: Math.min(900, Math.max(160, 14 * layers.length)) }),
    ),
  };
}

interface Cell {
  readonly row: number;
  readonly col: number;
  readonly panel: string;
  readonly value: number;
  /** Printed in the cell, a line per entry. */
  readonly label: readonly string[];
}

/** On a heterogeneous package, each die's type by [row][column] (the hardware's `layout`); else null. */
function dieTypes(d: ReportData): readonly (readonly string[])[] | null {
  const layout = d.hardware.layout;
  return Array.isArray(layout) ? (layout as string[][]) : null;
}

/** What the heatmaps add on a heterogeneous package, for their captions. */
function typesNote(d: ReportData): string {
  const types = dieTypes(d);
  return types === null ? '' : ` Each cell names its die’s type; dies not of die [0, 0]’s type (${types[0]![0]}) are outlined.`;
}

/**
 * A heatmap over the die grid per panel; cells labelled when the grid is small enough to read.
 * On a heterogeneous package every cell also names its die's type (in its label and tooltip),
 * and dies of a type other than the first are outlined, so load follows the layout visibly.
 */
function heatmap(plain: readonly Cell[], d: ReportData, panels: readonly string[], colourTitle: string, domainMax: number): Record<string, unknown> {
  const [R, C] = d.grid;
  const step = Math.max(8, Math.min(80, Math.floor(480 / Math.max(R, C))));
  const axis = (field: string, title: string, n: number) => ({ field, type: 'ordinal', title, sort: Array.from({ length: n }, (_, k) => k), axis: { labelAngle: 0, ...(n > 16 ? { values: [0, n - 1] } : {}) } });
  const x = axis('col', 'column j', C);
  const y = axis('row', 'row i', R);
  const types = dieTypes(d);
  const first = types?.[0]?.[0];
  const cells = types === null ? plain : plain.map((c) => ({ ...c, type: types[c.row]![c.col]!, label: [types[c.row]![c.col]!, ...c.label] }));
  const tooltip = [
    { field: 'row', type: 'ordinal', title: 'row i' },
    { field: 'col', type: 'ordinal', title: 'column j' },
    ...(types === null ? [] : [{ field: 'type', type: 'nominal', title: 'die type' }]),
    { field: 'value', type: 'quantitative', title: colourTitle, format: '.3~g' },
  ];
  const layer: Record<string, unknown>[] = [
    { mark: { type: 'rect', stroke: 'white', strokeWidth: step >= 20 ? 1 : 0 }, encoding: { x, y, tooltip, color: { field: 'value', type: 'quantitative', title: colourTitle, scale: { domain: [0, domainMax], scheme: 'blues' } } } },
  ];
  if (types !== null) {
    layer.push({
      transform: [{ filter: { not: { field: 'type', equal: first } } }],
      mark: { type: 'rect', fill: null, stroke: '#d95f02', strokeWidth: Math.max(1, Math.min(3, step / 20)) },
      encoding: { x, y, tooltip },
    });
  }
  // Labels (one line per entry of `label`) only where a cell is wide enough to hold them.
  if (step >= 60) {
    layer.push({
      mark: { type: 'text', fontSize: 10, lineHeight: 12 },
      encoding: { x, y, text: { field: 'label' }, color: { condition: { test: `datum.value > ${0.6 * domainMax}`, value: 'white' }, value: 'black' } },
    });
  }
  return {
    data: { values: cells },
    facet: { column: { field: 'panel', type: 'nominal', sort: panels, title: null, header: { labelFontSize: 12 } } },
    spec: { width: { step }, height: { step }, layer },
  };
}

/** Each die's peak SRAM, activation and weight buffers, against their capacity. */
function sramChart(d: ReportData): Chart {
  const cap = d.sram.capacity_bytes;
  const cells = d.sram.dies.flatMap((x) => [
    { row: x.die[0], col: x.die[1], panel: `activation (of ${bytes(cap.activation)})`, value: x.activation_bytes / cap.activation, label: [bytes(x.activation_bytes)] },
    { row: x.die[0], col: x.die[1], panel: `weight (of ${bytes(cap.weight)})`, value: x.weight_bytes / cap.weight, label: [bytes(x.weight_bytes)] },
  ]);
  const max = Math.max(1, ...cells.map((c) => c.value));
  return {
    name: 'sram',
    title: 'Peak SRAM per die',
    caption: `The allocator’s peak use of each die’s activation and weight buffers, as a share of their capacity (above 1: the schedule needs more SRAM than the die has).${typesNote(d)}`,
    spec: topLevel(heatmap(cells, d, [...new Set(cells.map((c) => c.panel))], 'share of capacity', max)),
  };
}

/** Bytes each die sends on each of its links per iteration, coloured by utilisation. */
function linksChart(d: ReportData): Chart {
  const panels = [...new Set(d.links.loads.map((l) => l.link))];
  const cells = d.links.loads.map((l) => ({ row: l.die[0], col: l.die[1], panel: l.link, value: l.utilisation, label: [bytes(l.bytes), `${(100 * l.utilisation).toFixed(1)}%`] }));
  const max = Math.max(1e-9, ...cells.map((c) => c.value));
  return {
    name: 'links',
    title: 'Link traffic per die',
    caption: `Bytes each die sends per iteration on the link it drives along each ring (its row’s, its column’s, or one through all dies), coloured by utilisation: the time the link transmits over the iteration’s latency.${typesNote(d)}`,
    spec: topLevel(
      panels.length ? heatmap(cells, d, panels, 'utilisation', max) : { data: { values: [{ note: 'no collective crosses a link on this grid' }] }, mark: 'text', encoding: { text: { field: 'note' } } },
    ),
  };
}

/** Per-die bytes of the collectives the pass inserted, by kind, group axes and algorithm. */
function collectivesChart(d: ReportData): Chart | null {
  const detail = d.passes.find((p) => p.detail?.kind === 'collectives')?.detail;
  if (!detail || detail.kind !== 'collectives' || detail.collectives.length === 0) return null;
  const rows = detail.collectives.map((c) => ({ what: `${c.op} ${c.axis} ${c.algo}${c.part_of ? ` (in ${c.part_of})` : ''}`, bytes: c.link_bytes, count: c.count }));
  const unit = byteUnit(Math.max(...rows.map((r) => r.bytes)));
  const values = rows.map((r) => ({ ...r, v: r.bytes * unit.factor, label: `${r.count} × · ${bytes(r.bytes)}` }));
  const y = { field: 'what', type: 'nominal', title: null, sort: values.map((v) => v.what) };
  return {
    name: 'collectives',
    title: 'Collective bytes by kind',
    caption: 'Per die and training iteration, the bytes on the busiest link of each kind of collective (op, grid axes of its group, algorithm), with how many there are.',
    spec: topLevel(
      {
        data: { values },
        width: 420,
        height: { step: 20 },
        layer: [
          { mark: { type: 'bar', color: '#4c78a8' }, encoding: { y, x: { field: 'v', type: 'quantitative', title: `busiest-link bytes (${unit.name})` } } },
          { mark: { type: 'text', align: 'left', dx: 4, fontSize: 10 }, encoding: { y, x: { field: 'v', type: 'quantitative' }, text: { field: 'label' } } },
        ],
      },
    ),
  };
}

/** One steady-state mini-batch on a few dies: a lane per die and engine or link. */
function timelineChart(d: ReportData): Chart | null {
  const t = d.timeline;
  if (!t || t.spans.length === 0) return null;
  const unit = timeUnit(t.end_s - t.start_s);
  const kind = (track: string) => (track.startsWith('link') ? 'link' : track === 'dma' ? 'DMA' : track === 'nop' ? 'NoP' : track);
  const lane = (s: { die: readonly number[]; track: string }) => `[${s.die[0]}, ${s.die[1]}] ${s.track === 'dma' ? 'DMA' : s.track === 'nop' ? 'NoP' : s.track}`;
  const values = t.spans.map((s) => ({ lane: lane(s), kind: kind(s.track), name: s.name, start: s.start_s * unit.factor, end: s.end_s * unit.factor }));
  const lanes = [...new Set(values.map((v) => v.lane))];
  const [lo, hi] = t.loop.layers ?? [null, null];
  const where = lo === null ? '' : lo === hi ? ` of layer ${lo}` : ` of layers ${lo}–${hi}`;
  return {
    name: 'timeline',
    title: `One mini-batch: iteration ${t.loop.iteration + 1} of ${t.loop.count} of the ${t.loop.phase} loop${where}`,
    caption: `${t.steady ? 'A steady-state' : 'The only complete'} iteration of the ${t.loop.phase} mini-batch loop${where} (${d.strategy}), from its first compute instruction on die [0, 0] to the next iteration’s, ${((t.end_s - t.start_s) * unit.factor).toFixed(3)} ${unit.name}: what each engine and link of dies ${t.dies.map((x) => `[${x[0]}, ${x[1]}]`).join(', ')} does meanwhile.`,
    spec: topLevel(
      {
        data: { values },
        width: 900,
        height: { step: 18 },
        mark: { type: 'bar', stroke: 'white', strokeWidth: 0.5 },
        encoding: {
          y: { field: 'lane', type: 'nominal', sort: lanes, title: null },
          x: { field: 'start', type: 'quantitative', title: `time in the window (${unit.name})`, scale: { domain: [0, (t.end_s - t.start_s) * unit.factor] } },
          x2: { field: 'end' },
          color: { field: 'kind', type: 'nominal', sort: TRACK_KINDS, scale: { domain: TRACK_KINDS, range: TRACK_COLOURS }, title: null },
        },
      },
    ),
  };
}

/** Every chart of the report, in page order (charts without data left out). */
export function reportCharts(d: ReportData): Chart[] {
  const all = [strategiesChart(d), blocksChart(d, 'latency'), blocksChart(d, 'energy'), layersChart(d), sramChart(d), linksChart(d), collectivesChart(d), timelineChart(d)];
  return all.filter((c): c is Chart => c !== null);
}
