// fig7 — weak scaling (§VI-C, Fig. 7): each workload on its own die count (h doubles while the
// dies quadruple), standard package, every strategy; the NoP share of one layer's latency.
// Hecaton's share should stay nearly flat, the baselines' grow. `on_package_nop_share` leaves
// exposed DRAM time out (NoP over compute + NoP); `nop_busy_s` is the NoP engines' whole busy
// time, exposed or hidden behind compute. Beside the measured shares stand the shares
// the closed forms predict (formulas.ts): `formula_nop_share`, Table III's transmission over it
// plus compute at the PE arrays' peak, at the workload's b, s, h and N (the classic block);
// and for hecaton `eq7_nop_share`, the same under §V-B's approximations, which is flat by
// construction. The gap between the two is what the approximations leave out.

import { InternalError } from '../diagnostics/diagnostic.js';
import { STRATEGIES } from '../passes/pass.js';
import { dieMacsPerS } from '../target/target.js';
import type { Experiment, Row, Task } from './experiment.js';
import { eq7NopShare, formulaNopShare } from './formulas.js';
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
          const dims = m.report.blocks.find((x) => x.dims !== null)?.dims;
          if (!dims) throw new InternalError(`fig7: ${w.name} reports no block dimensions`);
          const { target } = m.compiled;
          const macsPerS = dieMacsPerS(target.dieTypes[target.layout[0]!]!);
          return [
            {
              model: w.name,
              dies: m.dies,
              strategy,
              nop_share: b.nop / m.latency_s,
              on_package_nop_share: b.nop / (b.compute + b.nop),
              formula_nop_share: formulaNopShare(strategy, dims, macsPerS),
              eq7_nop_share: strategy === 'hecaton' ? eq7NopShare(dims, macsPerS) : null,
              latency_s: m.latency_s,
              compute_s: b.compute,
              nop_s: b.nop,
              nop_busy_s: m.nop_busy_s,
              dram_s: b.dram,
              sram_ok: m.sram_ok,
            },
          ];
        },
      })),
    );
  },
  finish: (rows) => [...rows],
  chart: (rows) => ({
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: { text: 'Fig. 7: NoP share of latency, weak scaling', subtitle: 'bars: simulated; ticks: Table III transmission over itself plus compute at peak' },
    data: { values: rows.map((r) => ({ ...r, workload: `${r.model} (${r.dies})` })) },
    layer: [
      {
        mark: 'bar',
        encoding: {
          x: { field: 'workload', type: 'nominal', sort: null, title: 'workload (dies)' },
          xOffset: { field: 'strategy', type: 'nominal', sort: null },
          y: { field: 'nop_share', type: 'quantitative', title: 'NoP share of latency', axis: { format: '%' } },
          color: { field: 'strategy', type: 'nominal', sort: null },
        },
      },
      {
        mark: { type: 'tick', color: 'black' },
        encoding: {
          x: { field: 'workload', type: 'nominal', sort: null },
          xOffset: { field: 'strategy', type: 'nominal', sort: null },
          y: { field: 'formula_nop_share', type: 'quantitative' },
        },
      },
    ],
  }),
};
