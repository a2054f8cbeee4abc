// A user's die: the Hecaton die (targets/dies/hecaton.yaml) with twice the MACs per PE array,
// loaded with `--accelerator test/data/accelerators/double-macs.mjs`. Only numbers: the
// pe-array kind's formulas cost it.
export default {
  name: 'hecaton-2x',
  precision: 'fp32',
  macs: 8192,
  pes: 16,
  clock_mhz: 800,
  activation_buffer_mib: 4,
  weight_buffer_mib: 4,
  vector_lanes: 256,
  router: { ports: ['E', 'S', 'W', 'N'], bypass: true },
  energy: { mac_pj: 4.6, sram_read_pj_per_byte: 12.5, sram_write_pj_per_byte: 12.5, vector_op_pj: 4.6, static_w: 0 },
};
