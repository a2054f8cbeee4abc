// fuse counts, beside each unit's Linear weights and weight gradients, the other gradients its
// backward accumulates in the weight buffers: a position table's (summed over the batch) and
// the norms' scale and shift. Without them GPT-3 175B's first group overflowed its dies'
// weight buffers once the schedule allocated them. Where a group must end, it ends at the cut
// that sends the fewest activations through DRAM.

import { describe, expect, it } from 'vitest';
import { compile } from '../../src/compile.js';

describe('fuse: gradients besides the Linear weights', () => {
  it("counts GPT-3 175B's position gradient in its first group, whose buffers then fit (64x64)", () => {
    const c = compile('models/gpt3-175b.gy', { hw: 'hecaton-64x64-standard', set: { layers: 2, vocab: 50304 } });
    const lines = c.passes.find((p) => p.pass === 'fuse')!.reports;
    // Per die, weights and their gradients: w_qkv 2·0.5625 MiB (4/3 of an even share: 96
    // heads dealt over 64 rows), w_o 2·0.1875, w_up and w_down 2·0.5625 MiB each, with their
    // biases; the position table's gradient, [512, 12288] split over the 64 columns of dies:
    // 0.375 MiB. A whole layer with it, 4.13 MiB, does not fit; cut after the attention block
    // (where the residual stream and its normalised copy cross: 2 × 256 × 512 × 12288 × 4 B),
    // and the rest of the model groups a layer apart from there.
    expect(lines[0]).toMatch(/^group 0: attention block layer\.0\.w_qkv\+layer\.0\.w_o — 1\.88 MiB of 4\.00 MiB weight buffer per die; cut before layer\.0\.w_up, where the forward pass sends 12\.00 GiB of activations through DRAM/);
    expect(lines[1]).toMatch(/^group 1: linear layer\.0\.w_up, linear layer\.0\.w_down, attention block layer\.1\.w_qkv\+layer\.1\.w_o — 3\.75 MiB/);
    expect(c.module.notes['schedule.weight_peak_bytes']).toBeLessThanOrEqual(4 * 2 ** 20);
    expect(c.module.notes['schedule.sram_ok']).toBe(true);
  });

  it('counts nothing more for inference, which keeps no gradients', () => {
    const c = compile('models/gpt3-175b.gy', { hw: 'hecaton-64x64-standard', mode: 'inference', set: { layers: 1, vocab: 50304 } });
    const lines = c.passes.find((p) => p.pass === 'fuse')!.reports;
    // w_qkv 0.5625 + w_o 0.1875 + w_up 0.5625 + w_down 0.5625 + the head's 50304 × 12288
    // split over 4096 dies, 0.5757 MiB, and biases: one group of weights alone.
    expect(lines[0]).toBe('group 0: attention block layer.0.w_qkv+layer.0.w_o, linear layer.0.w_up, linear layer.0.w_down, linear logits — 2.45 MiB of 4.00 MiB weight buffer per die');
  });
});
