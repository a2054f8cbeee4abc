// The report as one HTML page that needs nothing else: its style inline, its charts inline
// SVG (rendered beforehand, so the page runs no script), and the ReportData it was made from
// embedded as JSON (script#gyges-report-data, not executed) for anyone who wants the numbers.
// Sections follow the data's path: summary, strategies, blocks and phases, SRAM, links, the
// pass pipeline, the timeline. Every text from the model or the command line is escaped.

import { bytes, joules, seconds } from '../util/format.js';
import type { AttrValue } from '../ir/attrs.js';
import type { Chart } from './charts.js';
import { blockLabel } from './charts.js';
import type { BlockRow, ReportData, StrategyRow } from './collect.js';
import type { PassDecision, PassDetail } from './passes.js';

export const DATA_ELEMENT_ID = 'gyges-report-data';

/** The sections of the page, in order: id and heading. */
export const SECTIONS = [
  ['summary', 'Summary'],
  ['strategies', 'Strategies'],
  ['blocks', 'Blocks and phases'],
  ['sram', 'SRAM per die'],
  ['links', 'Links'],
  ['passes', 'Pass pipeline'],
  ['timeline', 'Timeline'],
] as const;

type SectionId = (typeof SECTIONS)[number][0];

/** Where each chart goes. */
const PLACE: Readonly<Record<string, SectionId>> = {
  strategies: 'strategies',
  'blocks-latency': 'blocks',
  'blocks-energy': 'blocks',
  layers: 'blocks',
  sram: 'sram',
  links: 'links',
  collectives: 'passes',
  timeline: 'timeline',
};

export function escapeHtml(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

/** JSON that cannot end its <script> element early. */
function embeddedJson(value: unknown): string {
  return JSON.stringify(value).replace(/</g, '\\u003c').replace(/\u2028/g, '\\u2028').replace(/\u2029/g, '\\u2029');
}

/** A table; `head` null for a list of facts (a name and its value per row). */
function table(head: readonly string[] | null, rows: readonly (readonly string[])[], cls = ''): string {
  const thead = head === null ? '' : `<thead><tr>${head.map((h) => `<th>${escapeHtml(h)}</th>`).join('')}</tr></thead>`;
  const body = rows.map((r) => `<tr>${r.map((c) => `<td>${escapeHtml(c)}</td>`).join('')}</tr>`).join('\n');
  return `<table${cls ? ` class="${cls}"` : ''}>${thead}<tbody>\n${body}\n</tbody></table>`;
}

function figure(chart: Chart, svg: string): string {
  return `<figure class="chart" id="chart-${chart.name}" data-chart="${chart.name}">\n<h3>${escapeHtml(chart.title)}</h3>\n${svg}\n<figcaption>${escapeHtml(chart.caption)}</figcaption>\n</figure>`;
}

const pct = (part: number, whole: number) => (whole > 0 ? `${((100 * part) / whole).toFixed(1)}%` : '-');

function summarySection(d: ReportData): string {
  const s = d.simulation;
  const e = s.energy_breakdown_j;
  const rows: string[][] = [
    ['model', s.model],
    ['target', `${s.target}: ${s.grid[0]}×${s.grid[1]} = ${s.dies} dies`],
    ['strategy', d.strategy],
    ['mini-batches', `${s.minibatch.count} of ${s.minibatch.size} (batch ${s.minibatch.batch})`],
    ['latency', `${seconds(s.latency_s)} per training iteration (critical die [${s.critical_die[0]}, ${s.critical_die[1]}])`],
    ['  compute / NoP / DRAM / idle', (['compute', 'nop', 'dram', 'idle'] as const).map((k) => `${seconds(s.breakdown_s[k])} (${pct(s.breakdown_s[k], s.latency_s)})`).join(' / ')],
    ['energy', joules(s.energy_j)],
    ['  compute / SRAM / D2D / DRAM / static', [e.compute, e.sram, e.d2d, e.dram, e.static].map(joules).join(' / ')],
    ['NoP sent, DRAM traffic', `${bytes(s.nop_bytes)}, ${bytes(s.dram_bytes)}`],
    ['peak SRAM per die', `activation ${bytes(s.sram_peak_bytes.activation)} of ${bytes(s.sram_capacity_bytes.activation)}, weight ${bytes(s.sram_peak_bytes.weight)} of ${bytes(s.sram_capacity_bytes.weight)}${s.sram_ok ? '' : ' — overflows'}`],
    ['simulated', `${s.dies_simulated} of ${s.dies} dies (one per class of interchangeable dies), ${s.events} events`],
  ];
  const settings = Object.entries(d.settings).filter(([, v]) => v !== undefined && !(typeof v === 'object' && v !== null && Object.keys(v).length === 0));
  if (settings.length) rows.push(['settings', settings.map(([k, v]) => `${k} ${typeof v === 'object' ? JSON.stringify(v) : String(v)}`).join(', ')]);
  return table(null, rows, 'facts');
}

function strategyTable(d: ReportData): string {
  const base = d.strategies.find((r) => r.strategy === d.strategy)!;
  const row = (r: StrategyRow): string[] => {
    if (r.latency_s === null) return [r.strategy, `cannot run: ${(r.error ?? '').replace(/^.*?error GY\d+: /, '')}`, '', '', '', '', '', '', ''];
    const b = r.breakdown_s!;
    return [
      `${r.strategy}${r.sram_ok ? '' : ' *'}`,
      seconds(r.latency_s),
      `${(r.latency_s / base.latency_s!).toFixed(2)}×`,
      pct(b.compute, r.latency_s),
      pct(b.nop, r.latency_s),
      pct(b.dram, r.latency_s),
      joules(r.energy_j!),
      `${(r.energy_j! / base.energy_j!).toFixed(2)}×`,
      `${bytes(r.sram_peak_bytes!.activation)} / ${bytes(r.sram_peak_bytes!.weight)}`,
    ];
  };
  const note = d.strategies.some((r) => r.sram_ok === false) ? '<p class="note">* needs more SRAM than the die has (the paper marks these in Fig. 8).</p>' : '';
  return table(['strategy', 'latency', `× ${d.strategy}`, 'compute', 'NoP', 'DRAM', 'energy', `× ${d.strategy}`, 'peak SRAM act / weight'], d.strategies.map(row), 'numbers') + note;
}

function blockTable(d: ReportData): string {
  const sums = new Map<string, { n: number; exposed: number; compute: number; lat: number; trans: number; inOps: number; energy: number }>();
  for (const b of d.blocks.filter((x: BlockRow) => x.strategy === d.strategy)) {
    const k = blockLabel(b);
    const g = sums.get(k) ?? { n: 0, exposed: 0, compute: 0, lat: 0, trans: 0, inOps: 0, energy: 0 };
    const x = b.exposed_s;
    const e = b.energy_j;
    g.n++;
    g.exposed += x.compute + x.nop + x.dram + x.idle;
    g.compute += b.busy_s.compute;
    g.lat += b.busy_s.nop_latency;
    g.trans += b.busy_s.nop_transmission;
    g.inOps += b.busy_s.nop_in_ops;
    g.energy += e.compute + e.sram + e.d2d + e.dram + e.static;
    sums.set(k, g);
  }
  // Blocks of no time and no energy (a loop's own bookkeeping) are left out.
  const rows = [...sums]
    .filter(([, g]) => g.exposed + g.compute + g.lat + g.trans + g.inOps + g.energy > 0)
    .map(([k, g]) => [k, String(g.n), seconds(g.exposed), seconds(g.compute), seconds(g.lat), seconds(g.trans), seconds(g.inOps), joules(g.energy)]);
  return table([`block (${d.strategy}, all layers)`, 'count', 'exposed', 'compute', 'NoP latency', 'NoP transmission', 'NoP inside ops', 'energy'], rows, 'numbers');
}

function noteValue(key: string, v: AttrValue): string {
  if (typeof v === 'boolean') return v ? 'yes' : 'no';
  if (typeof v === 'number') return key.endsWith('_bytes') ? `${bytes(v)} (${v} B)` : String(v);
  if (typeof v === 'string') return v;
  return key.endsWith('grid') ? v.join('×') : `[${v.join(', ')}]`;
}

function detailHtml(detail: PassDetail): string {
  switch (detail.kind) {
    case 'train':
      return table(['phase', 'ops'], Object.entries(detail.ops).map(([k, n]) => [k, String(n)]), 'numbers');
    case 'fuse': {
      const rows = detail.groups.map((g) => [String(g.group), g.blocks.join(', '), g.linears.join(', '), bytes(g.param_bytes), String(g.chunks)]);
      const t = table(['group', 'blocks', 'Linears (by weight)', 'weights and biases (whole)', 'column chunks'], rows);
      return `<details${rows.length <= 12 ? ' open' : ''}><summary>${rows.length} fusion group${rows.length === 1 ? '' : 's'}</summary>\n${t}\n</details>`;
    }
    case 'tile2d':
      return table(['decision', 'ops'], [...Object.entries(detail.orientation).map(([k, n]) => [`GEMMs in orientation ${k}`, String(n)]), ['ops beside DRAM (touch no activation)', String(detail.beside_dram)]], 'numbers');
    case 'collectives': {
      const rows = detail.collectives.map((c) => [c.op, c.axis, c.algo, c.part_of ?? '', String(c.count), bytes(c.link_bytes), bytes(c.sent_bytes)]);
      const extra: string[][] = [];
      const { norm_row_sums: norms, split_heads: heads } = detail;
      if (norms.ops) extra.push(['normalizations reducing row statistics over dies', `${norms.ops} ops, ${bytes(norms.link_bytes)} on the busiest link`]);
      if (heads.ops) extra.push(['attention cores reducing the scores of heads split over dies', `${heads.ops} ops, ${bytes(heads.link_bytes)} on the busiest link per reduction`]);
      const inside = extra.length ? `\n<p class="note">Reductions inside ops, not in Table III:</p>\n${table(null, extra, 'facts')}` : '';
      return `${table(['collective', 'group axes', 'algorithm', 'inside', 'count', 'busiest link', 'sent'], rows, 'numbers')}${inside}`;
    }
  }
}

function passItem(p: PassDecision, figures: string): string {
  const notes = Object.entries(p.notes).map(([k, v]) => [k, noteValue(k, v)]);
  const parts = [
    `<h3><span class="step">${p.index + 1}</span> ${escapeHtml(p.pass)}</h3>`,
    p.summary ? `<p>${escapeHtml(p.summary)}</p>` : '',
    notes.length ? table(['module note', 'value'], notes, 'facts') : '',
    p.detail ? detailHtml(p.detail) : '',
    p.detail?.kind === 'collectives' ? figures : '',
  ];
  return `<li class="pass" data-pass="${escapeHtml(p.pass)}">\n${parts.filter((x) => x !== '').join('\n')}\n</li>`;
}

const STYLE = `
:root { color-scheme: light; --ink: #1d2430; --muted: #5b6472; --rule: #d9dde3; --band: #f4f6f8; --accent: #4c78a8; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--ink); background: #fff; }
header { padding: 20px 32px 12px; border-bottom: 1px solid var(--rule); background: var(--band); }
header h1 { margin: 0 0 4px; font-size: 22px; }
header p { margin: 0 0 8px; color: var(--muted); }
nav a { margin-right: 14px; color: var(--accent); text-decoration: none; }
main { padding: 8px 32px 40px; max-width: 1280px; }
section { margin-top: 28px; }
h2 { font-size: 18px; border-bottom: 2px solid var(--accent); padding-bottom: 4px; }
h3 { font-size: 15px; margin: 18px 0 6px; }
figure.chart { margin: 16px 0 24px; overflow-x: auto; }
figure.chart svg { display: block; max-width: 100%; height: auto; }
figcaption, .note { color: var(--muted); font-size: 13px; max-width: 900px; }
table { border-collapse: collapse; margin: 8px 0 12px; font-size: 13px; }
th, td { padding: 3px 10px; border-bottom: 1px solid var(--rule); text-align: left; vertical-align: top; }
th { background: var(--band); font-weight: 600; }
table.numbers td + td { text-align: right; font-variant-numeric: tabular-nums; }
table.facts td:first-child { color: var(--muted); white-space: pre; }
ol.passes { list-style: none; padding: 0; }
li.pass { border-left: 3px solid var(--rule); padding: 2px 0 2px 14px; margin-bottom: 14px; }
.step { display: inline-block; min-width: 22px; color: #fff; background: var(--accent); border-radius: 11px; text-align: center; font-size: 12px; margin-right: 6px; }
details summary { cursor: pointer; color: var(--accent); }
`;

/** The page: `charts` with their rendered `svgs` (same order) placed in their sections. */
export function renderHtml(d: ReportData, charts: readonly Chart[], svgs: readonly string[]): string {
  const placed = new Map<SectionId, string[]>();
  charts.forEach((c, i) => {
    const at = PLACE[c.name] ?? 'summary';
    placed.set(at, [...(placed.get(at) ?? []), figure(c, svgs[i]!)]);
  });
  const figs = (id: SectionId) => (placed.get(id) ?? []).join('\n');
  const bodies: Record<SectionId, string> = {
    summary: summarySection(d),
    strategies: `${figs('strategies')}\n${strategyTable(d)}`,
    blocks: `${figs('blocks')}\n${blockTable(d)}`,
    sram: figs('sram'),
    links: `${figs('links')}\n<p class="note">Link bandwidth ${(d.links.bandwidth_bytes_per_s / 1e9).toFixed(1)} GB/s per direction; a collective moves its busiest-link bytes over the link each member drives towards the next member of its ring.</p>`,
    passes: d.passes.length ? `<ol class="passes">\n${d.passes.map((p) => passItem(p, figs('passes'))).join('\n')}\n</ol>` : '<p>No pass ran.</p>',
    timeline: figs('timeline') || '<p>The programs have no mini-batch loop to show.</p>',
  };
  const title = `${d.model} on ${d.target} (${d.strategy})`;
  const nav = SECTIONS.map(([id, h]) => `<a href="#${id}">${h}</a>`).join('');
  const sections = SECTIONS.map(([id, h]) => `<section id="${id}">\n<h2>${h}</h2>\n${bodies[id]}\n</section>`).join('\n');
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="gyges report">
<title>Gyges report: ${escapeHtml(title)}</title>
<style>${STYLE}</style>
</head>
<body>
<header>
<h1>${escapeHtml(title)}</h1>
<p>One training iteration, compiled and simulated by Gyges. The numbers behind every chart are embedded in this file as JSON (script#${DATA_ELEMENT_ID}).</p>
<nav>${nav}</nav>
</header>
<main>
${sections}
</main>
<script type="application/json" id="${DATA_ELEMENT_ID}">${embeddedJson(d)}</script>
</body>
</html>
`;
}
