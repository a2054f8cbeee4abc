// table3 — Table III: the bytes a die puts on its busiest link per Transformer block and
// training iteration, from the emitted per-die programs (die [0, 0], the middle of three
// layers), beside the paper's formula a·γ + c·ξ in bytes (γ = b·s·h·4, ξ = h²·4 bytes: the
// transmission-time column times β). Only Linear-layer traffic counts, as in the table. The
// classic block models run on their paper die counts; Llama2-70B's real block (grouped-query
// attention, SwiGLU) differs, so its place is taken by classic-h8192 (DESIGN.md §3).

import { compile } from '../compile.js';
import { blockTraffic } from '../backend/program.js';
import { programsOf } from '../passes/schedule/index.js';
import { STRATEGIES } from '../passes/pass.js';
import { bundled } from '../util/paths.js';
import type { Experiment, Row, Task } from './experiment.js';
import { BLOCKS, coefficients } from './formulas.js';
import { preset } from './workloads.js';

const CASES = [
  { model: 'bert-large', side: 4, b: 16, s: 512, h: 1024 },
  { model: 'bloom-1.7b', side: 8, b: 32, s: 512, h: 2048 },
  { model: 'gpt3-6.7b', side: 16, b: 64, s: 512, h: 4096 },
  { model: 'classic-h8192', side: 32, b: 128, s: 512, h: 8192 },
];

export const table3: Experiment = {
  name: 'table3',
  title: 'Table III: busiest-link bytes per block and iteration, programs vs formula',
  tasks(): Task[] {
    return CASES.flatMap((k) =>
      STRATEGIES.map((strategy) => ({
        label: `${k.model} ${strategy}`,
        run(): Row[] {
          const n = k.side * k.side;
          const c = compile(bundled('models', `${k.model}.gy`), { hw: preset(k.side, k.side, 'standard'), strategy, set: { layers: 3 } });
          const traffic = blockTraffic(programsOf(c.module)!.programFor({ i: 0, j: 0 }));
          return BLOCKS.map((block) => {
            const { gamma, xi } = coefficients(strategy, block, n);
            const formula = gamma * k.b * k.s * k.h * 4 + xi * k.h * k.h * 4;
            const got = traffic.get(`1|${block}`)?.linkBytes ?? 0;
            return { model: k.model, dies: n, strategy, block, link_bytes: got, table3_bytes: formula, ratio: got / formula };
          });
        },
      })),
    );
  },
  finish: (rows) => [...rows],
  chart: (rows) => ({
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: 'Table III: busiest-link bytes per block (bars: programs, ticks: formula)',
    data: { values: rows.map((r) => ({ ...r, workload: `${r.model} (${r.dies})` })) },
    facet: { column: { field: 'workload', type: 'nominal', sort: null, title: null } },
    spec: {
      layer: [
        {
          mark: 'bar',
          encoding: {
            x: { field: 'block', type: 'nominal', sort: null, title: null },
            xOffset: { field: 'strategy', type: 'nominal', sort: null },
            y: { field: 'link_bytes', type: 'quantitative', scale: { type: 'log' }, title: 'bytes on the busiest link' },
            color: { field: 'strategy', type: 'nominal', sort: null },
          },
        },
        {
          mark: { type: 'tick', color: 'black' },
          encoding: {
            x: { field: 'block', type: 'nominal', sort: null },
            xOffset: { field: 'strategy', type: 'nominal', sort: null },
            y: { field: 'table3_bytes', type: 'quantitative' },
          },
        },
      ],
    },
  }),
};
