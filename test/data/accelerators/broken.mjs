// A plugin whose GEMM cost is not a number: the simulator must refuse it with one clear line.
export default {
  name: 'broken',
  precision: 'fp32',
  macs: 4096,
  pes: 16,
  clock_mhz: 800,
  activation_buffer_mib: 4,
  weight_buffer_mib: 4,
  vector_lanes: 256,
  router: { ports: ['E', 'S', 'W', 'N'], bypass: true },
  energy: { mac_pj: 4.6, sram_read_pj_per_byte: 12.5, sram_write_pj_per_byte: 12.5, vector_op_pj: 4.6, static_w: 0 },
  gemm: ({ m }) => ({ cycles: m > 0 ? Number.NaN : 0 }),
};
