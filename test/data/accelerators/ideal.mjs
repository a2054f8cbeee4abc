// A user's die with its own GEMM cost function: an ideal array that never idles (every MAC
// unit busy whatever the shape), and a vector unit twice as wide as its lane count says.
export default {
  name: 'ideal',
  precision: 'fp32',
  macs: 4096,
  pes: 16,
  clock_mhz: 800,
  activation_buffer_mib: 4,
  weight_buffer_mib: 4,
  vector_lanes: 256,
  router: { ports: ['E', 'S', 'W', 'N'], bypass: true },
  energy: { mac_pj: 4.6, sram_read_pj_per_byte: 12.5, sram_write_pj_per_byte: 12.5, vector_op_pj: 4.6, static_w: 0 },
  gemm: ({ macs }) => ({ cycles: macs / 4096 }),
  vector: ({ elements }) => ({ cycles: elements / 512, energy_pj: elements * 4.6 }),
};
