// What the compiler remembers instead of recomputing (issue 8) must be what it would compute:
// grouped-query tile widths (remembered per layout), shared spec objects and collective rings
// (one member list per ring, handed to every member), each against the plain computation.
// (Die [0, 0]'s instructions, made once while the program set is frozen, are checked by
// schedule.test.ts's totals and the goldens; the part-wise DRAM columns by the functional
// backend's tests, which read every tile's numbers; the simulator's shared path by
// test/backend/timing/symmetry.test.ts.)

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { compile } from '../../src/compile.js';
import { forEachInstr } from '../../src/backend/program.js';
import { programsOf } from '../../src/passes/schedule/index.js';
import { evenTiles, formatSharding, groupOf, kvSharding, maxTileCols, parseSharding, sharding, tileOf, type Axis, type Die, type Grid } from '../../src/passes/sharding.js';
import { tensor } from '../../src/ir/types.js';

const AXES: readonly (readonly Axis[])[] = [[], ['r'], ['c'], ['r', 'c'], ['c', 'r']];

function dies(grid: Grid): Die[] {
  const out: Die[] = [];
  for (let i = 0; i < grid.rows; i++) for (let j = 0; j < grid.cols; j++) out.push({ i, j });
  return out;
}

describe('remembered tile geometry', () => {
  it('grouped-query widths and evenness equal the walk over every die, asked twice', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 6 }), fc.integer({ min: 1, max: 6 }), fc.constantFrom(1, 2, 4, 8), fc.constantFrom(1, 2, 4), fc.constantFrom(2, 4, 8, 16), fc.integer({ min: 0, max: 4 }), (rows, cols, kvHeads, group, d, axes) => {
        const grid = { rows, cols };
        const heads = kvHeads * group;
        const s = kvSharding(sharding([], AXES[axes]!), heads, kvHeads);
        const t = tensor('f32', [3, kvHeads * d]);
        const widths = dies(grid).map((die) => {
          const c = tileOf(t, s, grid, die).cols;
          return c[1] - c[0];
        });
        for (let ask = 0; ask < 2; ask++) {
          expect(maxTileCols(kvHeads * d, s, grid)).toBe(Math.max(...widths));
          expect(evenTiles(t, s, grid)).toBe(new Set(widths).size === 1);
        }
      }),
    );
  });

  it('shared specs read and print as freshly made ones', () => {
    for (const rows of AXES) {
      for (const cols of AXES) {
        if (rows.some((a) => cols.includes(a))) continue;
        const partial = (['r', 'c'] as const).filter((a) => !rows.includes(a) && !cols.includes(a));
        const s = sharding(rows, cols, partial);
        expect({ rows: [...s.rows], cols: [...s.cols], partial: [...s.partial] }).toEqual({ rows: [...rows], cols: [...cols], partial });
        expect(sharding(rows, cols, partial)).toBe(s);
        expect(parseSharding(formatSharding(s))).toEqual(s);
      }
    }
    expect(() => sharding(['r'], ['r'])).toThrow(/axis used twice/);
    expect(() => sharding(['r'], ['r'])).toThrow(/axis used twice/);
  });
});

describe('remembered program parts', () => {
  for (const [model, hw, strategy] of [
    ['models/tiny-gpt.gy', 'hecaton-3x3-standard', 'hecaton'],
    ['models/tiny-llama.gy', 'hecaton-2x4-standard', 'hecaton'],
    ['models/tiny-gpt.gy', 'hecaton-4x4-standard', 'optimus'],
    ['models/tiny-llama.gy', 'hecaton-4x4-standard', 'megatron'],
  ] as const) {
    it(`${model} on ${hw}, ${strategy}: rings as groupOf makes them`, () => {
      const c = compile(model, { hw, strategy });
      const set = programsOf(c.module)!;
      const grid = set.grid;
      // Rings: every collective's group is groupOf's (or a run of it: one head's dies, or a grouped-query step's), with the die at its position.
      for (const die of set.dies()) {
        forEachInstr(set.programFor(die).instructions, (ins) => {
          if (ins.kind !== 'collective') return;
          expect(ins.group[ins.position]).toEqual([die.i, die.j]);
          if (ins.partOf !== null && ins.cid.includes(' heads ')) return;
          const axes = [...ins.axis] as Axis[];
          const ring = groupOf(axes, grid, die).map((g) => [g.i, g.j]);
          // A grouped-query step runs on a run of consecutive dies of the ring.
          const run = / run \d+/.test(ins.cid) ? ins.group.length : ring.length;
          const first = Math.floor(ring.findIndex(([i, j]) => i === die.i && j === die.j) / run) * run;
          expect(ins.group).toEqual(ring.slice(first, first + run));
        });
      }
    });
  }
});
