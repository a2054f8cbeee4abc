// tile2d's report: attention whose heads cannot split evenly over the grid runs replicated
// over the axes that would split them unevenly (evenHeads); the compile says so, with the
// number of dies that compute each part alike, and says nothing when every core splits.

import { describe, expect, it } from 'vitest';
import { compile } from '../../src/compile.js';

function tileLines(hw: string, strategy: 'hecaton' | 'optimus' = 'hecaton'): string[] {
  const c = compile('models/tiny-gpt.gy', { hw, strategy });
  return c.passes.find((p) => p.pass === 'tile2d')!.reports.filter((l) => l.includes('attention cores'));
}

describe('tile2d report on attention heads', () => {
  it('says when heads do not split evenly and attention runs replicated', () => {
    // tiny-gpt has 4 heads: on 3x3 no axis splits them evenly, so each core runs on all 9 dies.
    expect(tileLines('hecaton-3x3-standard')).toEqual([
      "2 of 2 attention cores (4 heads, as 'layer.0.a') do not split evenly over the 3x3 dies: every part of such a core is computed alike on 9 dies (heads split only into whole heads, or equal slices of one, per die)",
    ]);
    // Optimus splits queries by rows over r and deals the heads over the 3 columns (1, 1, 2).
    expect(tileLines('hecaton-3x3-standard', 'optimus')[0]).toContain('deal whole heads over the 3 columns of dies, 1 or 2 per column');
  });

  it('is silent when every core splits over all the dies in whole heads, and says why it split queries instead of slicing heads', () => {
    expect(tileLines('hecaton-2x2-standard')).toEqual([]);
    // 4 heads on 16 dies would be quarter heads: the core splits its queries (query-split.ts).
    expect(tileLines('hecaton-4x4-standard')).toEqual([
      "2 attention cores (4 heads, as 'layer.0.a') split their heads over rows of dies and their queries over columns of dies: gathering their keys and values moves 9.00 KiB per sample on a die's busiest link, where slicing each head over 4 dies would move 12.00 KiB",
    ]);
  });
});
