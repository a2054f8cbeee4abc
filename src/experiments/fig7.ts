// fig7 — weak scaling (§VI-C, Fig. 7): each workload on its own die count (h doubles while the
// dies quadruple), standard package, every strategy; the NoP share of one layer's latency.
// Hecaton's share should stay nearly flat, the baselines' grow. `on_package_nop_share` leaves
// exposed DRAM time out (NoP over compute + NoP): the baselines here are DRAM-bound, which
// hides their NoP growth in `nop_share` (docs/reproduction.md).

import { STRATEGIES } from '../passes/pass.js';
import type { Experiment, Row, Task } from './experiment.js';
import { measure } from './measure.js';
import { preset, WORKLOADS } from './workloads.js';

export const fig7: Experiment = {
  name: 'fig7',
  title: 'Weak scaling: NoP share of one layer’s training latency (standard package)',
  tasks(): Task[] {
    return WORKLOADS.flatMap((w) =>
      STRATEGIES.map((strategy) => ({
        label: `${w.name} ${strategy}`,
        run(): Row[] {
          const m = measure({ model: w.file, hw: preset(w.side, w.side, 'standard'), variant: strategy });
          const b = m.breakdown_s;
          return [{ model: w.name, dies: m.dies, strategy, nop_share: b.nop / m.latency_s, on_package_nop_share: b.nop / (b.compute + b.nop), latency_s: m.latency_s, nop_s: b.nop, dram_s: b.dram, sram_ok: m.sram_ok }];
        },
      })),
    );
  },
  finish: (rows) => [...rows],
  chart: (rows) => ({
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: 'Fig. 7: NoP share of latency, weak scaling',
    data: { values: rows.map((r) => ({ ...r, workload: `${r.model} (${r.dies})` })) },
    mark: 'bar',
    encoding: {
      x: { field: 'workload', type: 'nominal', sort: null, title: 'workload (dies)' },
      xOffset: { field: 'strategy', type: 'nominal', sort: null },
      y: { field: 'nop_share', type: 'quantitative', title: 'NoP share of latency', axis: { format: '%' } },
      color: { field: 'strategy', type: 'nominal', sort: null },
    },
  }),
};
