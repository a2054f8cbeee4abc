// fig11 — layout (§VI-F, Fig. 11): 16 dies in every R×C layout (1×16 … 16×1), hecaton,
// BERT-Large (the workload paired with 16 dies), standard package. Latency, energy and the
// activation buffer one training iteration needs, normalised to the square 4×4 layout. SRAM
// is over the whole compiled model (the buffers are allocated for it), the others one layer's.
// The need (`activation_need_bytes`, what `sram_norm` compares) is the buffer the schedule
// runs in with nothing held for overlap; the allocated peak (`sram_activation_bytes`) also
// holds what the allocator reserves where there is room, and so sits at the capacity.

import { activationNeed } from '../passes/schedule/index.js';
import { normalise, type Experiment, type Row, type Task } from './experiment.js';
import { measure } from './measure.js';
import { preset, WORKLOADS } from './workloads.js';

const WORKLOAD = WORKLOADS.find((w) => w.name === 'bert-large')!;
const LAYOUTS: [number, number][] = [
  [1, 16],
  [2, 8],
  [4, 4],
  [8, 2],
  [16, 1],
];

export const fig11: Experiment = {
  name: 'fig11',
  title: `Layout of 16 dies: ${WORKLOAD.name}, hecaton, one layer (standard package)`,
  tasks(): Task[] {
    return LAYOUTS.map(([r, c]) => ({
      label: `${r}x${c}`,
      run(): Row[] {
        const m = measure({ model: WORKLOAD.file, hw: preset(r, c, 'standard'), variant: 'hecaton' });
        return [
          {
            model: WORKLOAD.name,
            rows: r,
            cols: c,
            layout: `${r}x${c}`,
            latency_s: m.latency_s,
            energy_j: m.energy_j,
            nop_s: m.breakdown_s.nop,
            sram_activation_bytes: m.sram_peak_bytes.activation,
            activation_need_bytes: activationNeed(m.compiled.module, m.compiled.target, m.compiled.strategy, m.minibatch.size),
            sram_weight_bytes: m.sram_peak_bytes.weight,
            sram_ok: m.sram_ok,
          },
        ];
      },
    }));
  },
  finish(rows) {
    const isBase = (r: Row) => r.rows === r.cols;
    const n = (f: string) => normalise(rows, f, () => '', isBase);
    const [l, e, s] = [n('latency_s'), n('energy_j'), n('activation_need_bytes')];
    return rows.map((r, i) => ({ ...r, latency_norm: l[i]!, energy_norm: e[i]!, sram_norm: s[i]! }));
  },
  chart: (rows) => ({
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: `Fig. 11: 16 dies by layout (rows x cols), × the 4x4 square (${WORKLOAD.name})`,
    data: { values: rows.map((r) => ({ ...r })) },
    transform: [{ fold: ['latency_norm', 'energy_norm', 'sram_norm'], as: ['metric', 'value'] }],
    mark: 'bar',
    encoding: {
      x: { field: 'layout', type: 'nominal', sort: null },
      xOffset: { field: 'metric', type: 'nominal', sort: null },
      y: { field: 'value', type: 'quantitative', title: '× 4x4' },
      color: { field: 'metric', type: 'nominal', sort: null },
    },
  }),
};
