// The program executor: tiny-gpt runs on a 2x2 package, deterministically; twice the MACs per
// die halves (about) the compute time; collectives take NoP time on 1x2 and 2x2 grids; the
// latency is never below any die's busiest engine.

import { describe, expect, it } from 'vitest';
import { compile } from '../../../src/compile.js';
import { executePrograms, type ExecutionResult } from '../../../src/backend/timing/execute.js';
import { buildPrograms } from '../../../src/passes/schedule/index.js';
import { sourceOfSet } from '../../../src/backend/timing/source.js';
import { withDie, type Target } from '../../../src/target/target.js';
import type { Instruction, Program } from '../../../src/backend/program.js';
import { GygesError } from '../../../src/diagnostics/diagnostic.js';

function execute(hw: string, change?: (t: Target) => Target): ExecutionResult {
  const c = compile('models/tiny-gpt.gy', { hw });
  const target = change ? change(c.target) : c.target;
  return executePrograms(sourceOfSet(buildPrograms(c.module, target, c.strategy)), target);
}

const base = execute('hecaton-2x2-standard');

describe('executePrograms', () => {
  it('runs tiny-gpt on a 2x2 package, the same way twice', () => {
    expect(base.latency_s).toBeGreaterThan(0);
    expect(base.events).toBeGreaterThan(0);
    expect(base.dies).toHaveLength(4);
    expect(execute('hecaton-2x2-standard')).toEqual(base);
  });

  it('takes about half the compute time on a die with twice the MACs', () => {
    const fast = execute('hecaton-2x2-standard', (t) => withDie(t, { ...t.die, macs: 2 * t.die.macs }));
    const ratio = fast.busy_s.compute / base.busy_s.compute;
    expect(ratio).toBeLessThan(0.75);
    expect(ratio).toBeGreaterThan(0.4);
    expect(fast.busy_s.dram).toBeCloseTo(base.busy_s.dram, 12);
  });

  it('spends NoP time on collectives on 1x2 and 2x2 grids', () => {
    const pair = execute('hecaton-1x2-standard');
    expect(pair.busy_s.nop).toBeGreaterThan(0);
    expect(base.busy_s.nop).toBeGreaterThan(0);
    expect(pair.latency_s).toBeGreaterThan(0);
  });

  it('is never faster than the busiest engine of any die', () => {
    for (const r of [base, execute('hecaton-1x2-standard')]) {
      for (const d of r.dies) {
        for (const busy of Object.values(d.busy_s)) expect(r.latency_s).toBeGreaterThanOrEqual(busy);
      }
      const split = r.breakdown_s.compute + r.breakdown_s.dram + r.breakdown_s.nop + r.breakdown_s.idle;
      expect(split).toBeCloseTo(r.latency_s, 15);
    }
  });
});

describe('executePrograms on malformed programs', () => {
  const c = compile('models/tiny-gpt.gy', { hw: 'hecaton-1x2-standard' });
  const set = buildPrograms(c.module, c.target, c.strategy);
  /** Run die programs edited by `edit` (applied to every die's instructions). */
  const run = (edit: (list: Instruction[]) => Instruction[]) => {
    const source = sourceOfSet(set);
    const program = (d: number): Program => {
      const p = source.program(d);
      return { ...p, instructions: edit(structuredClone(p.instructions) as Instruction[]) };
    };
    try {
      executePrograms({ dies: source.dies, program }, c.target);
      return 'ran';
    } catch (e) {
      if (e instanceof GygesError) return `${e.code}: ${e.detail}`;
      throw e;
    }
  };
  const loopAt = (list: Instruction[]) => list.findIndex((x) => x.kind === 'loop');

  it('rejects a dependency on an instruction inside another loop body', () => {
    const msg = run((list) => {
      const l = loopAt(list);
      const inner = (list[l] as Extract<Instruction, { kind: 'loop' }>).body[0]!;
      const after = list.slice(l + 1).find((x) => x.kind !== 'loop')!;
      (after.deps as number[]).push(inner.id);
      return list;
    });
    expect(msg).toMatch(/^GY7003: instruction \d+ depends on \d+, which is not an earlier instruction of its body or an enclosing one$/);
  });

  it('rejects a dependency on a later instruction, or on the enclosing loop itself', () => {
    expect(run((list) => ((list[0]!.deps as number[]).push(list[1]!.id), list))).toMatch(/^GY7003: .*not an earlier instruction/);
    const own = run((list) => {
      const loop = list[loopAt(list)] as Extract<Instruction, { kind: 'loop' }>;
      (loop.body[0]!.deps as number[]).push(loop.id);
      return list;
    });
    expect(own).toMatch(/^GY7003: .*not an earlier instruction/);
  });

  it('accepts a dependency on an earlier top-level instruction from inside a loop (the unedited programs)', () => {
    expect(run((list) => list)).toBe('ran');
  });
});
