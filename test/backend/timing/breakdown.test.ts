// Energy per block and bytes per link (breakdown.ts) against the simulator they mirror: block
// energies sum to the simulation's dynamic energy, block keys are the report's, and each
// die's link bytes equal the link spans the executor traces; the shortcut through a compile's
// shared programs gives what reading every die's program gives.

import { describe, expect, it } from 'vitest';
import { compile } from '../../../src/compile.js';
import { blockEnergy, linkLoads } from '../../../src/backend/timing/breakdown.js';
import type { ProgramSource, TraceSink } from '../../../src/backend/timing/execute.js';
import { simulateCompiled } from '../../../src/backend/timing/simulate.js';
import { sourceOfSet } from '../../../src/backend/timing/source.js';
import { programsOf } from '../../../src/passes/schedule/index.js';
import type { Strategy } from '../../../src/passes/pass.js';

function setup(strategy: Strategy, hw = 'hecaton-4x4-standard') {
  const c = compile('models/tiny-gpt.gy', { hw, strategy, batch: 4 });
  const shared = sourceOfSet(programsOf(c.module)!);
  // The same programs without what the dies share: every die's program is read.
  const plain: ProgramSource = { dies: shared.dies, program: (d) => shared.program(d) };
  return { c, shared, plain };
}

describe('blockEnergy', () => {
  for (const strategy of ['hecaton', 'megatron', 'optimus'] as const) {
    it(`${strategy}: sums to the simulated dynamic energy, over the report's blocks`, () => {
      const { c, shared, plain } = setup(strategy);
      const report = simulateCompiled(c);
      const blocks = blockEnergy(shared, c.target);
      expect(blocks.map((b) => `${b.layer}|${b.phase}|${b.block}`)).toEqual(report.blocks.map((b) => `${b.layer}|${b.phase}|${b.block}`));
      for (const part of ['compute', 'sram', 'd2d', 'dram'] as const) {
        const sum = blocks.reduce((s, b) => s + b.energy_j[part], 0);
        expect(sum).toBeGreaterThan(0);
        expect(Math.abs(sum - report.energy_breakdown_j[part])).toBeLessThan(1e-9 * report.energy_breakdown_j[part]);
      }
      expect(blocks.every((b) => b.energy_j.static === 0)).toBe(true);
      const slow = blockEnergy(plain, c.target);
      slow.forEach((b, i) => expect(b.energy_j.compute).toBeCloseTo(blocks[i]!.energy_j.compute, 15));
    });
  }
});

describe('linkLoads', () => {
  for (const [strategy, hw] of [['hecaton', 'hecaton-4x4-standard'], ['megatron', 'hecaton-4x4-standard'], ['hecaton', 'hecaton-1x4-standard']] as const) {
    it(`${strategy} on ${hw}: each die's link bytes are the bytes of its traced link spans`, () => {
      const { c, shared, plain } = setup(strategy, hw);
      const traced = new Map<string, number>();
      const sink: TraceSink = {
        span(die, track, _name, _start, _end, args) {
          if (!track.startsWith('link ')) return;
          const key = `${die}|${track.slice('link '.length)}`;
          traced.set(key, (traced.get(key) ?? 0) + (args.bytes as number));
        },
      };
      simulateCompiled(c, { trace: sink });
      const loads = linkLoads(shared, c.target);
      const D = shared.dies.length;
      expect(loads.length % D).toBe(0);
      let total = 0;
      loads.forEach((l, k) => {
        const d = Math.floor(k / (loads.length / D));
        expect(l.die).toEqual(shared.dies[d]);
        const want = traced.get(`${d}|${l.link}`) ?? 0;
        expect(Math.abs(l.bytes - want)).toBeLessThanOrEqual(1e-9 * Math.max(want, 1));
        expect(l.busy_s).toBeCloseTo(l.bytes / c.target.package.link.bandwidthBytesPerS, 18);
        total += l.bytes;
      });
      expect(total).toBeGreaterThan(0);
      expect(loads.length / D).toBe(new Set([...traced.keys()].map((k) => k.split('|')[1])).size);
      expect(linkLoads(plain, c.target)).toEqual(loads);
    });
  }
});
