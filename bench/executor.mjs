// Bench and regression check for the timing executor (src/backend/timing/execute.ts).
// Usage (after `npx tsc -p tsconfig.build.json`):
//   node bench/executor.mjs run <model> <hw> [strategy] [layers|-] [out.json]
//     compiles, runs executePrograms, prints timing + RSS; writes the result's latency_s,
//     breakdown_s, busy_s and blocks to out.json when given.
//   node bench/executor.mjs suite <outdir>      the regression cases, one JSON each
//   node bench/executor.mjs compare <dirA> <dirB>  JSON-equal check of two suite outputs
// GYGES_DIST overrides the dist directory (e.g. a saved copy of an older build).
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

const dist = resolve(process.env.GYGES_DIST ?? new URL('../dist', import.meta.url).pathname);
const load = (p) => import(pathToFileURL(join(dist, p)).href);

const CASES = [
  ['tiny-gpt-2x2', 'models/tiny-gpt.gy', 'hecaton-2x2-standard', 'hecaton', '-'],
  ['tiny-gpt-1x2', 'models/tiny-gpt.gy', 'hecaton-1x2-standard', 'hecaton', '-'],
  ['bert-4x4-hecaton', 'models/bert-large.gy', 'hecaton-4x4-standard', 'hecaton', '-'],
  ['bert-4x4-megatron', 'models/bert-large.gy', 'hecaton-4x4-standard', 'megatron', '-'],
  ['classic-1l-8x8', 'models/classic-h8192.gy', 'hecaton-8x8-standard', 'hecaton', '1'],
];

async function run(model, hw, strategy = 'hecaton', layers = '-', out, extra = {}) {
  const { compile } = await load('src/compile.js');
  const { programsOf } = await load('src/passes/schedule/index.js');
  const { executePrograms } = await load('src/backend/timing/execute.js');
  const t0 = performance.now();
  const c = compile(model, { hw, strategy, set: layers !== '-' ? { layers: Number(layers) } : {} });
  const set = programsOf(c.module);
  const dies = set.dies();
  const t1 = performance.now();
  const r = executePrograms({ dies: dies.map((d) => [d.i, d.j]), program: (k) => set.programFor(dies[k]) }, c.target, extra);
  const t2 = performance.now();
  const summary = { latency: r.latency_s, inst: r.instances, events: r.events, compile_s: (t1 - t0) / 1e3, sim_s: (t2 - t1) / 1e3, rss_mb: Math.round(process.memoryUsage().rss / 2 ** 20) };
  console.log(JSON.stringify(summary));
  if (out) writeFileSync(out, JSON.stringify({ latency_s: r.latency_s, breakdown_s: r.breakdown_s, busy_s: r.busy_s, blocks: r.blocks, dies: r.dies, critical_die: r.critical_die, instances: r.instances, events: r.events }));
  return r;
}

const [cmd, ...args] = process.argv.slice(2);
if (cmd === 'run') {
  const [model, hw, strategy, layers, out] = args;
  await run(model, hw, strategy, layers, out);
} else if (cmd === 'suite') {
  const dir = args[0];
  mkdirSync(dir, { recursive: true });
  for (const [name, model, hw, strategy, layers] of CASES) {
    process.stdout.write(`${name}: `);
    await run(model, hw, strategy, layers, join(dir, `${name}.json`));
  }
} else if (cmd === 'compare') {
  const [a, b] = args;
  let bad = 0;
  for (const f of readdirSync(a).filter((f) => f.endsWith('.json'))) {
    const x = JSON.parse(readFileSync(join(a, f), 'utf8'));
    if (!existsSync(join(b, f))) continue;
    const y = JSON.parse(readFileSync(join(b, f), 'utf8'));
    const keys = ['latency_s', 'breakdown_s', 'busy_s', 'blocks', 'dies', 'critical_die', 'instances', 'events'];
    const diff = keys.filter((k) => JSON.stringify(x[k]) !== JSON.stringify(y[k]));
    console.log(`${f}: ${diff.length === 0 ? 'identical' : `DIFFERENT in ${diff.join(', ')}`}`);
    if (diff.length > 0) bad++;
  }
  process.exit(bad > 0 ? 1 : 0);
} else {
  console.error('usage: node bench/executor.mjs run|suite|compare ...');
  process.exit(2);
}
