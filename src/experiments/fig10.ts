// fig10 — link latency (§VI-E, Fig. 10): hecaton on every workload and its die count, advanced
// package (as the paper, to make link latency stand out), α = 10 ns and 100 ns. NoP time is the
// NoP engine's busy time on the layer's collectives (link latency plus transmission); both it
// and the layer's latency are also given normalised to α = 10 ns.

import { loadTarget } from '../target/load.js';
import { normalise, type Experiment, type Row, type Task } from './experiment.js';
import { measure, withAlpha } from './measure.js';
import { preset, WORKLOADS } from './workloads.js';

const ALPHAS_NS = [10, 100];

export const fig10: Experiment = {
  name: 'fig10',
  title: 'Link latency α = 10 ns vs 100 ns: hecaton, one layer, advanced package',
  tasks(): Task[] {
    return WORKLOADS.flatMap((w) =>
      ALPHAS_NS.map((alpha) => ({
        label: `${w.name} alpha ${alpha} ns`,
        run(): Row[] {
          const hw = withAlpha(loadTarget(preset(w.side, w.side, 'advanced')), alpha * 1e-9);
          const m = measure({ model: w.file, hw, variant: 'hecaton' });
          return [{ model: w.name, dies: m.dies, alpha_ns: alpha, latency_s: m.latency_s, nop_s: m.nop_busy_s, nop_link_latency_s: m.nop_link_latency_s, nop_exposed_s: m.breakdown_s.nop }];
        },
      })),
    );
  },
  finish(rows) {
    const group = (r: Row) => String(r.model);
    const isBase = (r: Row) => r.alpha_ns === ALPHAS_NS[0];
    const lat = normalise(rows, 'latency_s', group, isBase);
    const nop = normalise(rows, 'nop_s', group, isBase);
    return rows.map((r, i) => ({ ...r, latency_norm: lat[i]!, nop_norm: nop[i]! }));
  },
  chart: (rows) => ({
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: 'Fig. 10: latency and NoP time at α = 100 ns, × α = 10 ns (hecaton, advanced package)',
    data: { values: rows.map((r) => ({ ...r, alpha: `${r.alpha_ns} ns` })) },
    transform: [{ fold: ['latency_norm', 'nop_norm'], as: ['metric', 'value'] }],
    mark: 'bar',
    encoding: {
      x: { field: 'model', type: 'nominal', sort: null, title: null },
      xOffset: { field: 'alpha', type: 'nominal', sort: null },
      y: { field: 'value', type: 'quantitative', title: '× α = 10 ns' },
      color: { field: 'alpha', type: 'nominal', sort: null, title: 'α' },
      column: { field: 'metric', type: 'nominal', title: null },
    },
  }),
};
