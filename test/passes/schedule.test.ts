// The schedule pass: per-die programs from the compiled IR. A golden of one die's text form
// (reviewed as a diff, `npm run test:update` regenerates it), then the invariants every program
// set must keep — on fixed cases and on random small models, grids and buffer sizes: every
// buffer an instruction names is declared, dependencies point backwards, no two buffers share
// SRAM while both are live, the reported peaks are the allocator's, collectives match across
// their group, per-block traffic equals the IR's notes, and per-die totals agree with the
// materialised programs.

import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { compile, type CompileOptions } from '../../src/compile.js';
import type { Module } from '../../src/ir/module.js';
import { blockTraffic, forEachInstr, printProgram, programTotals, type Instruction, type Program } from '../../src/backend/program.js';
import { trafficByBlock } from '../../src/passes/collectives.js';
import { defaultPipeline } from '../../src/passes/index.js';
import { runPipeline } from '../../src/passes/manager.js';
import { STRATEGIES, type Strategy } from '../../src/passes/pass.js';
import { activationNeed, buildPrograms, programsOf, schedule, type ProgramSet } from '../../src/passes/schedule/index.js';
import { loadTarget } from '../../src/target/load.js';
import { withDie, type Target } from '../../src/target/target.js';
import { loadModel } from '../../src/frontend/load.js';
import { GygesError } from '../../src/diagnostics/diagnostic.js';

function programs(model: string, opts: CompileOptions): { set: ProgramSet; module: Module } {
  const c = compile(model, opts);
  return { set: buildPrograms(c.module, c.target, c.strategy), module: c.module };
}

function withBuffers(t: Target, weight: number, activation: number): Target {
  return withDie(t, { ...t.die, weightBufferBytes: weight, activationBufferBytes: activation });
}

function close(a: number, b: number): boolean {
  return Math.abs(a - b) <= 1e-9 * Math.max(1, Math.abs(a), Math.abs(b));
}

// -- invariants -------------------------------------------------------------------------------

function checkProgram(p: Program, problems: string[]): void {
  const declared = new Set(p.buffers.map((b) => b.name));
  const visit = (list: readonly Instruction[]) => {
    const here = new Set(list.map((x) => x.id));
    for (const ins of list) {
      for (const b of [...ins.reads, ...ins.writes]) if (!declared.has(b)) problems.push(`${ins.id} names undeclared buffer ${b}`);
      for (const d of ins.deps) if (d >= ins.id) problems.push(`${ins.id} depends on later ${d}`);
      for (const d of ins.carried) if (!here.has(d)) problems.push(`${ins.id} carries on ${d} outside its body`);
      if (ins.kind !== 'loop' && ins.loc === null) problems.push(`${ins.id} has no location`);
      if (ins.kind === 'loop') visit(ins.body);
    }
  };
  visit(p.instructions);
  for (const kind of ['activation', 'weight'] as const) {
    const bufs = p.buffers.filter((b) => b.kind === kind && b.bytes > 0);
    const peak = Math.max(0, ...bufs.map((b) => b.offset + b.bytes));
    const reported = kind === 'activation' ? p.header.sram.activationPeak : p.header.sram.weightPeak;
    if (peak !== reported) problems.push(`${kind} peak ${reported} reported, buffers reach ${peak}`);
    for (let i = 0; i < bufs.length; i++) {
      for (let j = i + 1; j < bufs.length; j++) {
        const [x, y] = [bufs[i]!, bufs[j]!];
        const time = x.live[0] <= y.live[1] && y.live[0] <= x.live[1];
        const space = x.offset < y.offset + y.bytes && y.offset < x.offset + x.bytes;
        if (time && space) problems.push(`${x.name} and ${y.name} share SRAM while both live`);
      }
    }
  }
}

/** Check every die's program (all dies: the grids here are small). */
function checkSet(set: ProgramSet, m: Module): string[] {
  const problems: string[] = [];
  const ir = trafficByBlock(m);
  const groups = new Map<string, { sig: string; group: string; on: string[] }>();
  for (const die of set.dies()) {
    const p = set.programFor(die);
    checkProgram(p, problems);
    const mine = `${die.i},${die.j}`;
    forEachInstr(p.instructions, (ins) => {
      if (ins.kind !== 'collective') return;
      const sig = `${ins.op} ${ins.algo} ${ins.sentBytes} ${ins.linkBytes} ${ins.steps} ${JSON.stringify(ins.group)}`;
      const g = groups.get(ins.cid) ?? { sig, group: ins.group.map((d) => `${d[0]},${d[1]}`).sort().join(' '), on: [] };
      if (g.sig !== sig) problems.push(`collective ${ins.cid} differs between dies`);
      if (`${ins.group[ins.position]?.join(',')}` !== mine) problems.push(`collective ${ins.cid}: die ${mine} is not at position ${ins.position}`);
      g.on.push(mine);
      groups.set(ins.cid, g);
    });
    const [a, b] = [programTotals(p), set.totalsFor(die)];
    for (const k of Object.keys(a) as (keyof typeof a)[]) if (!close(a[k], b[k])) problems.push(`die ${mine}: ${k} ${a[k]} in the program, ${b[k]} in totalsFor`);
    const traffic = blockTraffic(p);
    for (const key of new Set([...ir.keys(), ...traffic.keys()])) {
      const want = ir.get(key) ?? { linkBytes: 0, sentBytes: 0, headLinkBytes: 0 };
      const got = traffic.get(key) ?? { linkBytes: 0, sentBytes: 0, headLinkBytes: 0 };
      // Heads dealt unevenly: the IR notes the busiest die's traffic; dies with fewer heads move less.
      const fits = (x: number, y: number) => (want.uneven ? x <= y * (1 + 1e-9) : close(x, y));
      if (!fits(got.linkBytes, want.linkBytes) || !fits(got.sentBytes, want.sentBytes) || !fits(got.headLinkBytes, want.headLinkBytes)) {
        problems.push(`die ${mine} block ${key}: program ${JSON.stringify(got)}, IR ${JSON.stringify(want)}`);
      }
    }
  }
  for (const [cid, g] of groups) if ([...g.on].sort().join(' ') !== g.group) problems.push(`collective ${cid} runs on ${g.on.join(' ')}, its group is ${g.group}`);
  return [...new Set(problems)].slice(0, 10);
}

// -- the golden --------------------------------------------------------------------------------

describe('schedule: tiny-gpt on hecaton-2x2-standard', () => {
  const { set, module } = programs('models/tiny-gpt.gy', { hw: 'hecaton-2x2-standard' });

  it('matches the golden text program of die [0, 1]', async () => {
    await expect(printProgram(set.programFor({ i: 0, j: 1 }))).toMatchFileSnapshot('./schedule/tiny-gpt.die-0-1.txt');
  });

  it('keeps every invariant on every die', () => {
    expect(checkSet(set, module)).toEqual([]);
  });

  it('runs forward through the groups, then backward, each in one loop over the mini-batches', () => {
    const p = set.programFor({ i: 0, j: 0 });
    const loops = p.instructions.filter((x) => x.kind === 'loop');
    expect(loops.map((l) => [l.phase, l.over, l.count, l.size, l.lastSize])).toEqual([
      ['fwd', 'minibatch', 1, 2, 2],
      ['bwd', 'minibatch', 1, 2, 2],
    ]);
    // Weights are read before the loops, updates applied after the backward loop (Algorithm 1 step 8).
    const bwd = p.instructions.indexOf(loops[1]!);
    expect(p.instructions.slice(bwd + 1).some((x) => x.kind === 'vector' && x.op === 'sgd')).toBe(true);
    expect(p.instructions.slice(0, p.instructions.indexOf(loops[0]!)).every((x) => x.kind === 'dram.read' || x.kind === 'vector')).toBe(true);
  });

  it('does the IR’s GEMM work exactly once over all dies', () => {
    let want = 0;
    for (const op of module.ops()) {
      const shape = (i: number) => op.operands[i]!.type.shape;
      if (op.kind === 'linear' || op.kind === 'linear_grad') {
        const [k, n] = shape(1) as [number, number];
        const m = shape(0).reduce((a, b) => a * b, 1) / k;
        const gemms = op.kind === 'linear' ? 1 : (op.attrs.wrt as number[]).filter((w) => w < 2).length;
        want += gemms * m * k * n;
      } else if (op.kind === 'attention' || op.kind === 'attention_grad') {
        const [b, s, h] = shape(0) as [number, number, number];
        const wrt = (op.attrs.wrt as number[] | undefined) ?? [];
        // Backward recomputes q·kᵀ, then dP (for dq or dk) and one GEMM per gradient.
        const gemms = op.kind === 'attention' ? 2 : 1 + wrt.length + (wrt.includes(0) || wrt.includes(1) ? 1 : 0);
        want += gemms * b * s * shape(1)[1]! * h;
      }
    }
    const got = set.dies().reduce((sum, d) => sum + set.totalsFor(d).macs, 0);
    expect(got).toBe(want);
  });

  it('materialises a die’s program the same way twice', () => {
    expect(printProgram(set.programFor({ i: 1, j: 0 }))).toBe(printProgram(set.programFor({ i: 1, j: 0 })));
  });
});

describe('schedule: the mini-batch the allocation proves fits', () => {
  // tiny-gpt, batch 4096, megatron on 2x2: the minibatch pass estimates 170 samples fit, but
  // the allocated buffers of 170 take 5.64 MiB of the 4 MiB.
  const opts: CompileOptions = { hw: 'hecaton-2x2-standard', strategy: 'megatron', batch: 4096 };

  it('takes the largest smaller mini-batch whose allocation fits, and says so', () => {
    const c = compile('models/tiny-gpt.gy', opts);
    const set = programsOf(c.module)!;
    const cap = c.target.die.activationBufferBytes;
    expect(set.peak.activation).toBeLessThanOrEqual(cap);
    const size = set.minibatch.size;
    expect(size).toBeLessThan(170);
    expect(c.module.notes['minibatch.size']).toBe(size);
    expect(c.module.notes['minibatch.count']).toBe(Math.ceil(4096 / size));
    expect(c.passes.find((p) => p.pass === 'schedule')!.reports[0]).toMatch(new RegExp(`^mini-batch 170 needs .* more than 4.00 MiB: mini-batch ${size} \\(\\d+ mini-batches\\) is the largest that fits$`));
    // One sample more overflows: it is the largest.
    expect(buildPrograms(c.module, c.target, c.strategy, true, size + 1).peak.activation).toBeGreaterThan(cap);
  });

  it('keeps a mini-batch the user chose, overflow and all', () => {
    const c = compile('models/tiny-gpt.gy', { ...opts, pipeline: 'train,fuse,minibatch{size=170},tile2d,collectives,schedule' });
    expect(programsOf(c.module)!.minibatch.size).toBe(170);
    expect(c.module.notes['schedule.sram_ok']).toBe(false);
  });
});

describe('schedule: invariants on fixed cases', () => {
  it('tiny-gpt with Adam: moments are read and written beside their weights', () => {
    const r = programs('models/tiny-gpt.gy', { hw: 'hecaton-2x2-standard', optimizer: 'adam' });
    expect(checkSet(r.set, r.module)).toEqual([]);
    expect(printProgram(r.set.programFor({ i: 0, j: 0 }))).toMatch(/vector adam .*"layer\.0\.w_qkv/);
  });

  const cases: [string, string, Strategy, Record<string, number>][] = [
    ['tiny-gpt', 'hecaton-2x3-standard', 'hecaton', {}],
    ['tiny-gpt', 'hecaton-2x3-standard', 'megatron', {}],
    ['tiny-llama', 'hecaton-3x2-standard', 'hecaton', {}],
    ['tiny-llama', 'hecaton-2x2-standard', 'optimus', {}],
    ['tiny-gpt', 'hecaton-2x2-standard', 'torus', { batch: 5 }],
  ];
  for (const [model, hw, strategy, set] of cases) {
    it(`${model} on ${hw}, ${strategy}`, () => {
      const r = programs(`models/${model}.gy`, { hw, strategy, set });
      expect(checkSet(r.set, r.module)).toEqual([]);
    });
  }

  it('bert-large (3 layers) on 16 dies: per-block traffic in the programs equals the IR’s (Table III’s source)', () => {
    for (const strategy of ['hecaton', 'megatron'] as const) {
      const r = programs('models/bert-large.gy', { hw: 'hecaton-4x4-standard', strategy, set: { layers: 3 } });
      const ir = trafficByBlock(r.module);
      const traffic = blockTraffic(r.set.programFor({ i: 1, j: 2 }));
      for (const block of ['fwd/attention', 'fwd/ffn', 'bwd/attention', 'bwd/ffn']) {
        expect(traffic.get(`1|${block}`)!.linkBytes).toBeCloseTo(ir.get(`1|${block}`)!.linkBytes, 3);
      }
    }
  });

  it('a partial last mini-batch does last_size/size of the loop body', () => {
    const c = compile('models/tiny-gpt.gy', { hw: 'hecaton-2x2-standard', batch: 5 });
    c.module.notes['minibatch.size'] = 2;
    const set = buildPrograms(c.module, c.target, c.strategy);
    const p = set.programFor({ i: 0, j: 0 });
    const loops = p.instructions.filter((x) => x.kind === 'loop');
    expect(loops.map((l) => [l.count, l.size, l.lastSize])).toEqual([
      [3, 2, 1],
      [3, 2, 1],
    ]);
    expect(checkSet(set, c.module)).toEqual([]);
  });

  it('batch 1: a gradient that is a view of a mini-batch value outlives the loop without sharing its SRAM', () => {
    // With batch 1 the gradient of a [1, s, h] broadcast of a weight is a reshape of the
    // loop's all-gathered tile, written to DRAM after the loop: its buffer lives across the
    // loop and must be placed around the loop's own buffers.
    const dir = mkdtempSync(join(tmpdir(), 'gyges-b1-'));
    try {
      const src = readFileSync('models/tiny-gpt.gy', 'utf8').replace('x = add(embedding(ids, tok_emb), pos)', 'x = add(embedding(ids, tok_emb), reshape(pos, shape = [1, seq, h]))');
      expect(src).toContain('reshape(pos');
      writeFileSync(join(dir, 'b1.gy'), src);
      const c = compile(join(dir, 'b1.gy'), { hw: 'hecaton-2x2-standard', batch: 1 });
      const set = buildPrograms(c.module, c.target, c.strategy);
      expect(checkSet(set, c.module)).toEqual([]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('streams weights that do not fit through the buffer in chunk loops, and their updates too', () => {
    const t = withBuffers(loadTarget('hecaton-2x2-standard'), 24 * 1024, 4 * 2 ** 20);
    const r = programs('models/tiny-gpt.gy', { hw: t, set: { layers: 1 } });
    const chunks: string[] = [];
    forEachInstr(r.set.programFor({ i: 0, j: 0 }).instructions, (ins) => {
      if (ins.kind === 'loop' && ins.over === 'chunk') chunks.push(`${ins.phase} ${ins.count}`);
    });
    expect(chunks.length).toBeGreaterThan(0);
    expect(chunks.some((c) => c.startsWith('update'))).toBe(true);
    expect(checkSet(r.set, r.module)).toEqual([]);
  });
});

describe('schedule: DRAM traffic beside the next mini-batch (§III-B a, Fig. 5)', () => {
  /** Per top-level mini-batch loop: the ids of its body, its DRAM writes, and the last id inside it. */
  function loopsOf(p: Program): { id: number; body: readonly Instruction[]; last: number }[] {
    return p.instructions.flatMap((ins) => {
      if (ins.kind !== 'loop') return [];
      let last = ins.id;
      forEachInstr(ins.body, (x) => (last = Math.max(last, x.id)));
      return [{ id: ins.id, body: ins.body, last }];
    });
  }

  it('a value written back keeps its buffer for the whole body, so the next mini-batch does not wait for its write', () => {
    const { set } = programs('models/bert-large.gy', { hw: 'hecaton-4x4-standard', set: { layers: 1 } });
    const p = set.programFor({ i: 0, j: 0 });
    const byName = new Map(p.buffers.map((b) => [b.name, b]));
    let resident = 0;
    for (const loop of loopsOf(p)) {
      for (const w of loop.body) {
        if (w.kind !== 'dram.write' || !w.reads.every((r) => byName.get(r)!.live.join() === `${loop.id + 1},${loop.last}`)) continue;
        resident++;
        // Only the next value written into the same buffer waits for the write to drain.
        for (const x of loop.body) if (x.carried.includes(w.id)) expect(w.reads.every((r) => x.writes.includes(r)), `${x.id} waits for ${w.id}`).toBe(true);
      }
    }
    // BERT-Large's buffer holds 17 of the 19: all but the backward FFN loop's two (its dx partials take 2 MiB).
    expect(resident).toBeGreaterThanOrEqual(15);
  });

  it('gives the reservation up where the buffer cannot hold it, and still fits', () => {
    const base = loadTarget('hecaton-2x2-standard');
    const tight = withBuffers(base, base.die.weightBufferBytes, 40 * 1024);
    const roomy = programs('models/tiny-gpt.gy', { hw: base }).set.programFor({ i: 0, j: 0 });
    const small = programs('models/tiny-gpt.gy', { hw: tight }).set.programFor({ i: 0, j: 0 });
    const resident = (p: Program) => {
      const spans = new Map(loopsOf(p).map((l) => [l.id, l] as const));
      const byName = new Map(p.buffers.map((b) => [b.name, b]));
      let n = 0;
      for (const l of spans.values()) for (const w of l.body) if (w.kind === 'dram.write') for (const r of w.reads) if (byName.get(r)!.live[0] === l.id + 1 && byName.get(r)!.live[1] === l.last) n++;
      return n;
    };
    expect(resident(small)).toBeLessThan(resident(roomy));
    expect(small.header.sram.activationPeak).toBeLessThanOrEqual(40 * 1024);
  });
});

describe('schedule: a Linear backward’s gather of x beside dx’s GEMM', () => {
  /** For each Linear backward with both halves in a loop body: whether x's gather comes before dx's reduce-scatter. */
  function orders(p: Program): boolean[] {
    const out: boolean[] = [];
    const visit = (body: readonly Instruction[]) => {
      body.forEach((ins, k) => {
        if (ins.kind === 'loop') return visit(ins.body);
        if (ins.kind !== 'gemm' || ins.op !== 'linear_grad:dx') return;
        const dw = body.findIndex((x, j) => j > k && x.kind === 'gemm' && x.op === 'linear_grad:dw' && x.ir?.op === ins.ir?.op);
        if (dw < 0) return;
        const between = body.slice(k + 1, dw).filter((x) => x.kind === 'collective' && x.partOf === null);
        const gather = between.findIndex((x) => x.kind === 'collective' && x.op === 'all_gather');
        const reduce = between.findIndex((x) => x.kind === 'collective' && x.op === 'reduce_scatter');
        if (gather >= 0 && reduce >= 0) out.push(gather < reduce);
      });
    };
    visit(p.instructions);
    return out;
  }

  it('gathers x before reducing dx where the buffer holds x, dy and dx at once, and keeps Algorithm 1’s order where not', () => {
    const { set } = programs('models/bert-large.gy', { hw: 'hecaton-4x4-standard', set: { layers: 1 } });
    const p = set.programFor({ i: 0, j: 0 });
    const o = orders(p);
    // BERT-Large's FFN down-projection (x and dx of 4h columns, 2 MiB each per die) keeps Algorithm 1's order.
    expect(o.filter((e) => e).length).toBeGreaterThanOrEqual(2);
    expect(o.filter((e) => !e).length).toBeGreaterThanOrEqual(1);
    expect(p.header.sram.activationPeak).toBeLessThanOrEqual(4 * 2 ** 20);
    // Algorithm 1's order everywhere needs less buffer: that is what the early gathers spend.
    const c = compile('models/bert-large.gy', { hw: 'hecaton-4x4-standard', set: { layers: 1 } });
    expect(activationNeed(c.module, c.target, c.strategy)).toBeLessThan(p.header.sram.activationPeak);
  });

  it('says how many Linear backwards gather early and how many keep Algorithm 1’s order', () => {
    const c = compile('models/bert-large.gy', { hw: 'hecaton-4x4-standard', set: { layers: 1 } });
    const lines = c.passes.find((p) => p.pass === 'schedule')!.reports;
    const line = lines.find((l) => l.includes('Linear backwards'));
    const o = orders(programsOf(c.module)!.programFor({ i: 0, j: 0 }));
    expect(line).toMatch(/^\d+ of \d+ Linear backwards gather x while dx is computed and reduce dx while dw is; \d+ keep Algorithm 1's order/);
    const [early, all, kept] = line!.match(/\d+/g)!.map(Number);
    expect(all).toBe(early! + kept!);
    expect(o.filter((e) => !e).length).toBeLessThanOrEqual(kept!);
    expect(kept).toBeGreaterThan(0);
  });

  it('falls back to Algorithm 1’s order when the buffer is only as large as that order needs, with the same work', () => {
    const base = loadTarget('hecaton-2x2-standard');
    const c = compile('models/tiny-gpt.gy', { hw: base });
    const roomy = buildPrograms(c.module, base, c.strategy);
    const need = activationNeed(c.module, base, c.strategy);
    expect(orders(roomy.programFor({ i: 0, j: 0 })).every((e) => e)).toBe(true);
    expect(roomy.peak.activation).toBeGreaterThan(need);
    const tight = buildPrograms(c.module, withBuffers(base, base.die.weightBufferBytes, need), c.strategy);
    const o = orders(tight.programFor({ i: 0, j: 0 }));
    expect(o.some((e) => !e)).toBe(true);
    expect(tight.peak.activation).toBeLessThanOrEqual(need);
    const [a, b] = [roomy.totalsFor({ i: 0, j: 0 }), tight.totalsFor({ i: 0, j: 0 })];
    expect([b.macs, b.sentBytes, b.dramReadBytes, b.dramWriteBytes]).toEqual([a.macs, a.sentBytes, a.dramReadBytes, a.dramWriteBytes]);
  });
});

describe('schedule: properties over random small models, grids and buffers', () => {
  it('keeps every invariant', { timeout: 60_000 }, () => {
    fc.assert(
      fc.property(
        fc.record({
          h: fc.constantFrom(32, 64),
          heads: fc.constantFrom(2, 4),
          layers: fc.integer({ min: 1, max: 2 }),
          batch: fc.integer({ min: 1, max: 5 }),
          rows: fc.integer({ min: 1, max: 3 }),
          cols: fc.integer({ min: 1, max: 3 }),
          weightKiB: fc.constantFrom(8, 32, 4096),
          activationKiB: fc.constantFrom(24, 64, 4096),
          size: fc.integer({ min: 1, max: 5 }),
          strategy: fc.constantFrom(...STRATEGIES),
          training: fc.boolean(),
        }),
        (p) => {
          const t = withBuffers(loadTarget(`hecaton-${p.rows}x${p.cols}-standard`), p.weightKiB * 1024, p.activationKiB * 1024);
          const m = loadModel('models/tiny-gpt.gy', { batch: p.batch, set: { h: p.h, heads: p.heads, layers: p.layers } });
          let c: ReturnType<typeof compile>;
          try {
            c = compile(m, { hw: t, strategy: p.strategy, mode: p.training ? 'train' : 'inference' });
          } catch (e) {
            // Grids a strategy cannot map, or layers no buffer holds: user errors, not schedules.
            if (e instanceof GygesError && e.code.startsWith('GY3')) return;
            throw e;
          }
          c.module.notes['minibatch.size'] = Math.min(p.size, p.batch);
          expect(checkSet(buildPrograms(c.module, c.target, c.strategy), c.module)).toEqual([]);
        },
      ),
      { numRuns: 40, seed: 7 },
    );
  });
});

describe('the schedule pass', () => {
  it('runs after collectives, stores the programs for the caller and notes the peaks', () => {
    const target = loadTarget('hecaton-2x2-standard');
    const m = loadModel('models/tiny-gpt.gy');
    const reports: string[] = [];
    const records = runPipeline(m, [...defaultPipeline(), { pass: schedule, options: {} }], { target, strategy: 'hecaton' }, { verifyEach: true });
    reports.push(...records.at(-1)!.reports);
    const set = programsOf(m)!;
    expect(set.dies()).toHaveLength(4);
    expect(m.notes['schedule.programs']).toBe(4);
    expect(m.notes['schedule.instructions_per_die']).toBe(set.instructionsPerDie);
    expect(m.notes['schedule.activation_peak_bytes']).toBe(set.peak.activation);
    expect(m.notes['schedule.weight_peak_bytes']).toBe(set.peak.weight);
    expect(m.notes['schedule.sram_ok']).toBe(true);
    expect(reports[0]).toMatch(/^4 programs of \d+ instructions; peak SRAM per die/);
  });

  it('needs the collectives pass', () => {
    const m = loadModel('models/tiny-gpt.gy');
    expect(() => runPipeline(m, [{ pass: schedule, options: {} }], { target: loadTarget('hecaton-2x2-standard'), strategy: 'hecaton' })).toThrow(/collectives\.count/);
  });
});
