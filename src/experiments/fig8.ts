// fig8 — overall comparison (§VI-B, Fig. 8): every workload on its die count, standard and
// advanced package, the four strategies and hecaton without §III-B's scheduling (no layer
// fusion, no DRAM/compute overlap); latency and energy of one layer, normalised to hecaton,
// with the exposed-time and energy breakdowns and the SRAM overflow mark (*).

import { STRATEGIES } from '../passes/pass.js';
import { normalise, type Experiment, type Row, type Task } from './experiment.js';
import { measure, type Variant } from './measure.js';
import { preset, WORKLOADS } from './workloads.js';

const VARIANTS: readonly Variant[] = [...STRATEGIES, 'hecaton-no-overlap-fusion'];
const PACKAGES = ['standard', 'advanced'] as const;

export const fig8: Experiment = {
  name: 'fig8',
  title: 'Strategies × workloads × package: latency and energy of one layer, normalised to hecaton',
  tasks(): Task[] {
    return PACKAGES.flatMap((pkg) =>
      WORKLOADS.flatMap((w) =>
        VARIANTS.map((variant) => ({
          label: `${w.name} ${pkg} ${variant}`,
          run(): Row[] {
            const m = measure({ model: w.file, hw: preset(w.side, w.side, pkg), variant });
            const b = m.breakdown_s;
            const e = m.energy_breakdown_j;
            return [
              {
                model: w.name,
                package: pkg,
                strategy: variant,
                dies: m.dies,
                latency_s: m.latency_s,
                energy_j: m.energy_j,
                sram_ok: m.sram_ok,
                compute_s: b.compute,
                nop_s: b.nop,
                dram_s: b.dram,
                idle_s: b.idle,
                energy_compute_j: e.compute,
                energy_sram_j: e.sram,
                energy_d2d_j: e.d2d,
                energy_dram_j: e.dram,
                energy_static_j: e.static,
                sram_activation_bytes: m.sram_peak_bytes.activation,
                sram_weight_bytes: m.sram_peak_bytes.weight,
              },
            ];
          },
        })),
      ),
    );
  },
  finish(rows) {
    const group = (r: Row) => `${r.model}|${r.package}`;
    const isBase = (r: Row) => r.strategy === 'hecaton';
    const lat = normalise(rows, 'latency_s', group, isBase);
    const en = normalise(rows, 'energy_j', group, isBase);
    return rows.map((r, i) => ({ ...r, latency_norm: lat[i]!, energy_norm: en[i]! }));
  },
  chart(rows) {
    const values = rows.map((r) => ({ ...r, label: `${r.strategy}${r.sram_ok ? '' : '*'}` }));
    const panel = (field: string, title: string) => ({
      mark: { type: 'bar' as const },
      encoding: {
        x: { field: 'strategy', type: 'nominal' as const, sort: null, title: null },
        y: { field, type: 'quantitative' as const, title, scale: { type: 'log' as const } },
        color: { field: 'strategy', type: 'nominal' as const, sort: null },
        column: { field: 'model', type: 'nominal' as const, sort: null, title: null },
        row: { field: 'package', type: 'nominal' as const, sort: null, title: null },
      },
    });
    return {
      $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
      title: 'Fig. 8: latency and energy per layer, × hecaton (* overflows SRAM)',
      data: { values },
      vconcat: [panel('latency_norm', 'latency × hecaton'), panel('energy_norm', 'energy × hecaton')],
    };
  },
};
