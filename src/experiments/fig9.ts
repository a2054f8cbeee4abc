// fig9 — strong scaling (§VI-D, Fig. 9): one workload (GPT3-6.7B, b = 64, s = 512) on 16 to
// 1024 dies, hecaton against flat-ring Megatron, standard package. Latency and energy of one
// layer; EDP = latency × energy. As in the paper, latency and energy are also given normalised
// to the smallest value over all points, and edp_norm is their product. Die counts that are not
// squares use a 1:2 grid; hecaton, whose latency depends on orientation (§VI-F), takes the
// faster of R×C and C×R (the paper: "we follow the mapping preferences outlined in VI-F"), and
// Megatron's flat ring, which does not care, the same grid.

import { type Experiment, type Row, type Task } from './experiment.js';
import { measure, type Measurement } from './measure.js';
import { preset, WORKLOADS } from './workloads.js';

const WORKLOAD = WORKLOADS.find((w) => w.name === 'gpt3-6.7b')!;
const DIES = [16, 32, 64, 128, 256, 512, 1024];

/** The grids a die count can take: the square, or both orientations of a 1:2 rectangle. */
function grids(n: number): [number, number][] {
  const side = Math.round(Math.sqrt(n));
  if (side * side === n) return [[side, side]];
  const r = Math.round(Math.sqrt(n / 2));
  return [
    [r, 2 * r],
    [2 * r, r],
  ];
}

function row(strategy: string, m: Measurement): Row {
  return { dies: m.dies, strategy, layout: `${m.grid[0]}x${m.grid[1]}`, latency_s: m.latency_s, energy_j: m.energy_j, edp: m.latency_s * m.energy_j, sram_ok: m.sram_ok };
}

export const fig9: Experiment = {
  name: 'fig9',
  title: `Strong scaling: ${WORKLOAD.name}, one layer, hecaton vs megatron (standard package)`,
  tasks(): Task[] {
    return DIES.map((n) => ({
      label: `${WORKLOAD.name} on ${n} dies`,
      run(): Row[] {
        const options = grids(n).map((g) => measure({ model: WORKLOAD.file, hw: preset(g[0], g[1], 'standard'), variant: 'hecaton' }));
        const best = options.reduce((a, b) => (b.latency_s < a.latency_s ? b : a));
        const mega = measure({ model: WORKLOAD.file, hw: preset(best.grid[0], best.grid[1], 'standard'), variant: 'megatron' });
        return [row('hecaton', best), row('megatron', mega)];
      },
    }));
  },
  finish(rows) {
    const min = (f: string) => Math.min(...rows.map((r) => r[f] as number));
    const [l, e] = [min('latency_s'), min('energy_j')];
    return rows.map((r) => {
      const latency_norm = (r.latency_s as number) / l;
      const energy_norm = (r.energy_j as number) / e;
      return { ...r, latency_norm, energy_norm, edp_norm: latency_norm * energy_norm };
    });
  },
  chart(rows) {
    const panel = (field: string, title: string) => ({
      mark: { type: 'line' as const, point: true },
      encoding: {
        x: { field: 'dies', type: 'quantitative' as const, scale: { type: 'log' as const, base: 2 }, axis: { values: DIES } },
        y: { field, type: 'quantitative' as const, title, scale: { type: 'log' as const } },
        color: { field: 'strategy', type: 'nominal' as const, sort: null },
      },
    });
    return {
      $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
      title: `Fig. 9: strong scaling, ${WORKLOAD.name} (normalised to the minimum)`,
      data: { values: rows.map((r) => ({ ...r })) },
      hconcat: [panel('latency_norm', 'latency'), panel('energy_norm', 'energy'), panel('edp_norm', 'EDP')],
    };
  },
};
