// The per-die program format: the JSON form parses back to the same program, a malformed file
// is a located user error (GY7001), and the sums simulators and the Table III checks read
// (per-block traffic, per-die totals) count loop bodies by their iterations, a partial last
// mini-batch by its share.

import { describe, expect, it } from 'vitest';
import { compile } from '../../src/compile.js';
import { GygesError } from '../../src/diagnostics/diagnostic.js';
import { blockTraffic, parseProgram, printProgram, programTotals, programToJSON, type Instruction, type Program } from '../../src/backend/program.js';
import { buildPrograms } from '../../src/passes/schedule/index.js';

const c = compile('models/tiny-gpt.gy', { hw: 'hecaton-2x2-standard' });
const set = buildPrograms(c.module, c.target, c.strategy);
const program = set.programFor({ i: 0, j: 1 });
const json = JSON.stringify(programToJSON(program), null, 2);

function codeOf(f: () => unknown): string | undefined {
  try {
    f();
  } catch (e) {
    if (e instanceof GygesError) return `${e.code}: ${e.detail}`;
    throw e;
  }
  return undefined;
}

/** A copy of the JSON form with one change. */
function edited(change: (j: Record<string, any>) => void): string {
  const j = JSON.parse(json) as Record<string, any>;
  change(j);
  return JSON.stringify(j);
}

const origin = { reads: [], writes: [], deps: [], carried: [], phase: 'fwd', layer: 0, block: 'ffn', loc: 'm.gy:1:1' } as const;

function collective(id: number, link: number, phase: 'fwd' | 'bwd' | 'update' = 'fwd', partOf: string | null = null): Instruction {
  const group = [[0, 0] as const, [0, 1] as const];
  return { ...origin, id, phase, kind: 'collective', op: 'all_gather', algo: 'ring', axis: 'c', cid: `x${id}`, group, position: 0, sentBytes: link, linkBytes: link, steps: 1, partOf };
}

/** A hand-made program: 100 link bytes before a loop of 3 mini-batches of 4 (the last of 1) around 10. */
const small: Program = {
  header: {
    model: 'm',
    target: 't',
    strategy: 'hecaton',
    grid: [1, 2],
    die: [0, 0],
    minibatch: { batch: 9, size: 4, count: 3, lastSize: 1 },
    sram: { activationPeak: 0, weightPeak: 0, activationCapacity: 1, weightCapacity: 1 },
    layouts: [],
  },
  buffers: [],
  instructions: [
    collective(0, 100),
    { ...origin, id: 1, kind: 'loop', over: 'minibatch', count: 3, size: 4, lastSize: 1, body: [collective(2, 10), collective(3, 7, 'update'), collective(4, 5, 'fwd', 'attention')] },
  ],
};

describe('program JSON form', () => {
  it('parses back to the same program', () => {
    expect(parseProgram(json, 'die-0-1.json')).toEqual(program);
  });

  it('is byte-identical across compiles', () => {
    const again = compile('models/tiny-gpt.gy', { hw: 'hecaton-2x2-standard' });
    const p = buildPrograms(again.module, again.target, again.strategy).programFor({ i: 0, j: 1 });
    expect(JSON.stringify(programToJSON(p), null, 2)).toBe(json);
  });

  it('keeps a fixed key order', () => {
    expect(Object.keys(JSON.parse(json) as object)).toEqual(['format', 'model', 'target', 'strategy', 'grid', 'die', 'minibatch', 'sram', 'layouts', 'buffers', 'instructions']);
    const first = (JSON.parse(json) as { instructions: Record<string, unknown>[] }).instructions[0]!;
    expect(Object.keys(first)).toEqual(['id', 'kind', 'tensor', 'rows', 'cols', 'bytes', 'reads', 'writes', 'deps', 'carried', 'phase', 'layer', 'block', 'loc']);
  });

  it('reports a malformed program file as GY7001 naming the field', () => {
    expect(codeOf(() => parseProgram('{ not json', 'p.json'))).toMatch(/^GY7001: p\.json: malformed program: not JSON/);
    expect(codeOf(() => parseProgram(edited((j) => delete j.grid), 'p.json'))).toMatch(/^GY7001: p\.json: malformed program: grid: /);
    expect(codeOf(() => parseProgram(edited((j) => (j.format = 'other/9')), 'p.json'))).toMatch(/^GY7001: .*format/);
    expect(codeOf(() => parseProgram(edited((j) => (j.instructions[0].kind = 'teleport')), 'p.json'))).toMatch(/^GY7001: .*instructions\.0\.kind/);
    expect(codeOf(() => parseProgram(edited((j) => (j.instructions[0].bytes = -1)), 'p.json'))).toMatch(/^GY7001: .*instructions\.0\.bytes/);
    expect(codeOf(() => parseProgram(edited((j) => (j.instructions[0].extra = 1)), 'p.json'))).toMatch(/^GY7001: .*instructions\.0/);
    const loop = (JSON.parse(json) as { instructions: { kind: string }[] }).instructions.findIndex((x) => x.kind === 'loop');
    expect(codeOf(() => parseProgram(edited((j) => (j.instructions[loop].body[0].deps = ['a'])), 'p.json'))).toMatch(
      new RegExp(`^GY7001: .*instructions\\.${loop}\\.body\\.0\\.deps\\.0`),
    );
  });
});

describe('program text form', () => {
  it('prints the header, buffers and instructions, loops indented', () => {
    const text = printProgram(program);
    expect(text.startsWith('program "tiny-gpt" die [0, 1]\n  target "hecaton-2x2-standard", strategy hecaton, grid 2x2\n')).toBe(true);
    expect(text).toMatch(/\n {4}\d+ {2}loop minibatch count 1 size 2 last 2 {2}; fwd \{\n/);
    expect(text).toMatch(/gemm linear m 64 n 96 k 32 = 196608 MAC/);
  });
});

describe('sums over a program', () => {
  it('count a loop body by its iterations, a partial last one by its share, updates with bwd', () => {
    const t = blockTraffic(small);
    // 100 + 10·(2 + 1/4) = 122.5 fwd; the update's 7·2.25 counts as bwd; the head reduce apart.
    expect(t.get('0|fwd/ffn')).toEqual({ linkBytes: 122.5, sentBytes: 122.5, headLinkBytes: 11.25 });
    expect(t.get('0|bwd/ffn')).toEqual({ linkBytes: 15.75, sentBytes: 15.75, headLinkBytes: 0 });
    expect(programTotals(small)).toMatchObject({ linkBytes: 100 + 22.5 + 15.75 + 11.25, instructions: 5 });
  });
});
