// `npm run bench`: one compile + simulation of a full training iteration per case, each in a
// fresh Node process so its wall time and peak memory are its own. Prints a table, then the
// same figures as JSON (one object: {"cases": [...]}) on the last line.
//
//   npm run bench                 every case
//   npm run bench -- NAME...      only the named cases
//   npm run bench -- scaling      a fixed per-die workload on 16 … 4096 dies (GPT3-6.7B's block,
//                                 2 layers, batch = dies/16, so b·s·h²/N stays constant; the
//                                 vocabulary padded to 50304 as Megatron-LM pads it, so the LM
//                                 head splits evenly over 64 columns of dies), and
//                                 whether wall time grows at most linearly with the dies
//   node bench/run.mjs --case NAME   (internal: run one case and print its JSON)
// A case still running after BENCH_LIMIT_S seconds (default 300) is stopped and reported.
//
// Reads the built compiler in dist/ (npm ci builds it; after editing, npx tsc -p tsconfig.build.json).

import { spawnSync } from 'node:child_process';
import { join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = resolve(fileURLToPath(new URL('..', import.meta.url)));
const load = (p) => import(pathToFileURL(join(root, 'dist', p)).href);

/** The paper's four workloads on their die counts (§VI-A), and the two 4096-die scale models. */
const CASES = [
  { name: 'bert-large@16', model: 'models/bert-large.gy', hw: 'hecaton-4x4-standard' },
  { name: 'bloom-1.7b@64', model: 'models/bloom-1.7b.gy', hw: 'hecaton-8x8-standard' },
  { name: 'gpt3-6.7b@256', model: 'models/gpt3-6.7b.gy', hw: 'hecaton-16x16-standard' },
  { name: 'llama2-70b@1024', model: 'models/llama2-70b.gy', hw: 'hecaton-32x32-standard' },
  // GPT-3's vocabulary padded as Megatron-LM pads it for training (50257 → 50304, a multiple of
  // 128): the LM head then splits evenly over 64 columns of dies, as the experiments pad theirs.
  // Unpadded, the head's two tile widths make 64 classes of dies to simulate (about 10 s).
  { name: 'gpt3-175b@4096', model: 'models/gpt3-175b.gy', hw: 'hecaton-64x64-standard', opts: { set: { vocab: 50304 } } },
  { name: 'llama3-405b@4096', model: 'models/llama3-405b.gy', hw: 'hecaton-64x64-standard' },
  // The worst case for the executor's classes: megatron's flat ring over 1024 dies with an
  // unpadded vocabulary (each die's share of the LM head differs from its ring neighbours'),
  // so every die is a class of its own and each collective meets 1024 distinct members.
  { name: 'megatron-uneven@1024', model: 'models/gpt3-6.7b.gy', hw: 'hecaton-32x32-standard', strategy: 'megatron', opts: { set: { layers: 1, vocab: 50257 } } },
];

/** The weak-scaling series: per-die work fixed while the package grows 256-fold. */
const SCALING = [4, 8, 16, 32, 64].map((side) => ({
  name: `scaling@${side * side}`,
  model: 'models/gpt3-6.7b.gy',
  hw: `hecaton-${side}x${side}-standard`,
  opts: { batch: (side * side) / 16, set: { layers: 2, vocab: 50304 } },
}));

async function runCase(name) {
  const c = [...CASES, ...SCALING].find((x) => x.name === name);
  if (!c) throw new Error(`no bench case '${name}'`);
  const { simulate } = await load('src/backend/timing/simulate.js');
  const { programsOf } = await load('src/passes/schedule/index.js');
  const t0 = performance.now();
  const { report, compilation } = simulate(join(root, c.model), { hw: c.hw, strategy: c.strategy ?? 'hecaton', ...(c.opts ?? {}) });
  const wall = (performance.now() - t0) / 1000;
  const set = programsOf(compilation.module);
  return {
    case: c.name,
    model: c.model,
    hw: c.hw,
    dies: report.dies,
    wall_s: wall,
    peak_rss_bytes: process.resourceUsage().maxRSS * 1024,
    instructions_per_die: set.instructionsPerDie,
    instructions_emitted: set.instructionsPerDie * report.dies,
    dies_simulated: report.dies_simulated,
    instances: report.instances,
    events: report.events,
    latency_s: report.latency_s,
    energy_j: report.energy_j,
  };
}

function fmtBytes(b) {
  return b >= 2 ** 30 ? `${(b / 2 ** 30).toFixed(2)} GiB` : `${(b / 2 ** 20).toFixed(0)} MiB`;
}

function table(rows) {
  const head = ['case', 'wall', 'peak memory', 'instructions', 'events', 'latency/iter'];
  const body = rows.map((r) =>
    r.error
      ? [r.case, 'failed', '', '', '', '']
      : [r.case, `${r.wall_s.toFixed(2)} s`, fmtBytes(r.peak_rss_bytes), r.instructions_emitted.toLocaleString('en-US'), r.events.toLocaleString('en-US'), `${r.latency_s.toFixed(3)} s`],
  );
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => String(b[i]).length)));
  const line = (cells) => cells.map((c, i) => (i === 0 ? String(c).padEnd(widths[i]) : String(c).padStart(widths[i]))).join('  ');
  const failures = rows.filter((r) => r.error).map((r) => `${r.case}: ${r.error}`);
  return [line(head), ...body.map(line), ...failures].join('\n');
}

/** Wall time relative to the smallest package against the growth in dies (linear = 1.00). */
function growth(rows) {
  const ok = rows.filter((r) => !r.error);
  if (ok.length < 2) return 'scaling: not enough cases finished';
  const [first] = ok;
  const parts = ok.map((r) => `${r.dies} dies ×${(r.wall_s / first.wall_s).toFixed(2)} time for ×${r.dies / first.dies} dies`);
  const worst = Math.max(...ok.slice(1).map((r) => r.wall_s / first.wall_s / (r.dies / first.dies)));
  return `scaling: ${parts.join('; ')}\nscaling: worst time growth over die growth ${worst.toFixed(3)} (${worst <= 1 ? 'at most linear' : 'FASTER THAN LINEAR'})`;
}

/** Seconds a case may run before it is reported as unfinished. */
const LIMIT_S = Number(process.env.BENCH_LIMIT_S ?? 300);

const args = process.argv.slice(2);
if (args[0] === '--case') {
  process.stdout.write(`${JSON.stringify(await runCase(args[1]))}\n`);
} else {
  const scaling = args.includes('scaling');
  const names = [...args.filter((a) => a !== 'scaling'), ...(scaling ? SCALING.map((c) => c.name) : [])];
  if (names.length === 0) names.push(...CASES.map((c) => c.name));
  const rows = [];
  for (const name of names) {
    const r = spawnSync(process.execPath, [fileURLToPath(import.meta.url), '--case', name], { encoding: 'utf8', maxBuffer: 1 << 26, timeout: LIMIT_S * 1000 });
    if (r.error?.code === 'ETIMEDOUT' || r.signal === 'SIGTERM') rows.push({ case: name, error: `not finished within ${LIMIT_S} s (BENCH_LIMIT_S)` });
    else if (r.status === 0) rows.push(JSON.parse(r.stdout.trim().split('\n').pop()));
    else {
      const lines = r.stderr.trim().split('\n');
      const why = lines.find((l) => /error GY\d{4}/.test(l)) ?? lines.find((l) => /^\w*Error/.test(l)) ?? `exit ${r.status ?? r.signal}`;
      rows.push({ case: name, error: why.replace(/^\w*Error: /, '').replace(root + '/', '').slice(0, 200) });
    }
    process.stderr.write(`${name}: ${rows.at(-1).error ?? `${rows.at(-1).wall_s.toFixed(2)} s`}\n`);
  }
  console.log(table(rows));
  if (scaling) console.log(growth(rows.filter((r) => r.case.startsWith('scaling@'))));
  console.log(JSON.stringify({ cases: rows }));
}
