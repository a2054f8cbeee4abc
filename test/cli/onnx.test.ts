// `.onnx` models through the command line: the shipped exports compile and simulate on the
// presets with the raised op counts and parameter counts they should have, dynamic axes take
// --input-shape (or --batch/--seq), and every kind of bad file is one GY line on stderr with
// exit 1 and no stack trace. Bad files are built here with onnx-proto in a temporary folder.

import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import protobuf from 'onnx-proto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main } from '../../src/cli/main.js';

const { onnx } = protobuf;
const SHARED = fileURLToPath(new URL('../data/onnx/', import.meta.url));
const ENCODER = join(SHARED, 'encoder_torch_l2_h64.onnx');
const TINY = join(SHARED, 'gpt2_tiny_l2_h64.onnx');
const SMALL = join(SHARED, 'gpt2_small_graph_only.onnx');

async function run(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await main(argv, { out: (t) => (out += t), err: (t) => (err += t) });
  return { code, out, err };
}

/** Exit 1 and exactly one diagnostic line with `code`, no stack frames. */
function userError(r: { code: number; out: string; err: string }, code: string): void {
  expect(r.code, r.err).toBe(1);
  expect(r.err.endsWith('\n')).toBe(true);
  expect(r.err.trimEnd()).not.toContain('\n');
  expect(r.err).toContain(`error ${code}:`);
  expect(r.err).not.toMatch(/\bat .*\(.*:\d+:\d+\)/);
}

/** Elements of every initializer the file stores. */
function initializerElements(path: string): number {
  const m = onnx.ModelProto.decode(readFileSync(path));
  return (m.graph?.initializer ?? []).reduce((n, t) => n + (t.dims ?? []).reduce((p: number, d) => p * Number(d), 1), 0);
}

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'gyges-onnx-cli-'));
});
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

describe('the shipped exports', () => {
  const cases = [
    { path: ENCODER, layers: 2, linear: 2 * 4, attention: 2, layernorm: 4 },
    { path: TINY, layers: 2, linear: 2 * 4 + 1, attention: 2, layernorm: 5 },
    { path: SMALL, layers: 12, linear: 12 * 4 + 1, attention: 12, layernorm: 25 },
  ];
  for (const c of cases) {
    it(`stats: ${c.path.split('/').pop()} raises ${c.linear} Linear ops and ${c.attention} attention cores, and keeps every initializer as a parameter`, async () => {
      const r = await run('stats', c.path, '--json');
      expect(r.code, r.err).toBe(0);
      const s = JSON.parse(r.out);
      expect(s.linear).toBe(c.linear);
      expect(s.attention).toBe(c.attention);
      expect(s.layers).toBe(c.layers);
      expect(s.op_counts.layernorm).toBe(c.layernorm);
      expect(s.params).toBe(initializerElements(c.path));
    });
  }

  for (const hw of ['hecaton-2x2-standard', 'hecaton-4x4-standard']) {
    for (const path of [ENCODER, TINY]) {
      it(`compare: every strategy compiles and simulates ${path.split('/').pop()} on ${hw}`, async () => {
        const r = await run('compare', path, '--hw', hw, '--json');
        expect(r.code, r.err).toBe(0);
        const rows = JSON.parse(r.out).strategies as { strategy: string; latency_s?: number; error?: string }[];
        expect(rows.map((x) => x.strategy)).toEqual(['hecaton', 'megatron', 'torus', 'optimus']);
        for (const x of rows) expect(x.latency_s, `${x.strategy}: ${x.error}`).toBeGreaterThan(0);
      });
    }
  }

  it('compare: every strategy compiles and simulates the GPT-2 small graph on hecaton-4x4-standard', async () => {
    const r = await run('compare', SMALL, '--hw', 'hecaton-4x4-standard', '--json');
    expect(r.code, r.err).toBe(0);
    const rows = JSON.parse(r.out).strategies as { strategy: string; latency_s?: number }[];
    expect(rows.map((x) => x.latency_s! > 0)).toEqual([true, true, true, true]);
  }, 60_000);

  for (const hw of ['hecaton-2x2-standard', 'hecaton-4x4-standard', 'hecaton-8x8-standard']) {
    it(`simulate: the GPT-2 small graph (no weight data) on ${hw}`, async () => {
      const r = await run('simulate', SMALL, '--hw', hw, '--json');
      expect(r.code, r.err).toBe(0);
      const s = JSON.parse(r.out);
      expect(s.latency_s).toBeGreaterThan(0);
      expect(s.strategy).toBe('hecaton');
    }, 60_000);
  }

  it('compile writes per-die programs whose instructions name ONNX nodes', async () => {
    const out = join(dir, 'programs');
    const r = await run('compile', TINY, '--hw', 'hecaton-2x2-standard', '-o', out);
    expect(r.code, r.err).toBe(0);
    expect(readFileSync(join(out, 'die-0-0.txt'), 'utf8')).toContain("node '/blocks.1/MatMul_1'");
  });
});

// -- small models built here ----------------------------------------------------------------

type Dims = readonly (number | string)[];

function valueInfo(name: string, elemType: number, dims: Dims): protobuf.onnx.IValueInfoProto {
  return { name, type: { tensorType: { elemType, shape: { dim: dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) } } } };
}

function write(file: string, graph: protobuf.onnx.IGraphProto, opset = 17): string {
  const model = onnx.ModelProto.create({ irVersion: 8, opsetImport: [{ domain: '', version: opset }], graph });
  const path = join(dir, file);
  writeFileSync(path, onnx.ModelProto.encode(model).finish());
  return path;
}

const F32 = 1;
const I64 = 7;

/** y = Relu(x · w) with x [batch, seq, 4]: small, and with dynamic axes where asked. */
function matmulModel(file: string, dims: Dims): string {
  const w = { name: 'w', dataType: F32, dims: [4, 4], rawData: new Uint8Array(64) };
  return write(file, {
    name: 'g',
    node: [{ name: 'mm', opType: 'MatMul', input: ['x', 'w'], output: ['h'] }, { name: 'act', opType: 'Relu', input: ['h'], output: ['y'] }],
    initializer: [w],
    input: [valueInfo('x', F32, dims)],
    output: [valueInfo('y', F32, [...dims.slice(0, -1), 4])],
  });
}

describe('dynamic axes', () => {
  const dyn = () => matmulModel('dyn.onnx', ['batch', 'seq', 4]);

  it('an unknown dimension is GY5005 naming the input', async () => {
    const r = await run('stats', dyn());
    userError(r, 'GY5005');
    expect(r.err).toContain("input 'x'");
  });

  it('--input-shape binds it; --batch and --seq bind the first two axes', async () => {
    const a = await run('stats', dyn(), '--input-shape', 'x=3x5x4', '--json');
    expect(a.code, a.err).toBe(0);
    expect(JSON.parse(a.out).inputs[0].shape).toEqual([3, 5, 4]);
    const b = await run('stats', dyn(), '--batch', '2', '--seq', '7', '--json');
    expect(b.code, b.err).toBe(0);
    expect(JSON.parse(b.out).inputs[0].shape).toEqual([2, 7, 4]);
  });

  it('usage errors: bad syntax, an unknown input, a fixed axis, and --set on an ONNX model', async () => {
    userError(await run('stats', dyn(), '--input-shape', 'x=3by5'), 'GY9001');
    userError(await run('stats', dyn(), '--input-shape', 'ids=3x5x4'), 'GY9001');
    userError(await run('stats', matmulModel('fixed.onnx', [2, 8, 4]), '--batch', '4'), 'GY9001');
    userError(await run('stats', dyn(), '--set', 'layers=2'), 'GY9001');
    userError(await run('stats', 'models/tiny-gpt.gy', '--input-shape', 'ids=2x8'), 'GY9001');
  });
});

describe('bad files give one GY line', () => {
  it('a truncated file', async () => {
    const bytes = readFileSync(TINY);
    const path = join(dir, 'truncated.onnx');
    writeFileSync(path, bytes.subarray(0, Math.floor(bytes.length / 3)));
    userError(await run('stats', path), 'GY5001');
  });

  it('random bytes', async () => {
    const path = join(dir, 'random.onnx');
    let s = 12345;
    writeFileSync(path, Uint8Array.from({ length: 4096 }, () => ((s = (s * 1103515245 + 12345) >>> 0) >>> 24)));
    userError(await run('compile', path, '--hw', 'hecaton-2x2-standard'), 'GY5001');
  });

  it('unsupported operators: each type listed with its first node', async () => {
    const path = write('unsupported.onnx', {
      name: 'g',
      node: [
        { name: 'a', opType: 'FancyNorm', input: ['x'], output: ['h1'] },
        { name: 'b', opType: 'FancyNorm', input: ['h1'], output: ['h2'] },
        { name: 'c', opType: 'Wobble', input: ['h2'], output: ['y'] },
      ],
      input: [valueInfo('x', F32, [2, 4])],
      output: [valueInfo('y', F32, [2, 4])],
    });
    const r = await run('stats', path);
    userError(r, 'GY5002');
    expect(r.err).toContain("FancyNorm (first: node 'a')");
    expect(r.err).toContain("Wobble (first: node 'c')");
  });

  it('an external-data path that leaves the model folder', async () => {
    const w = { name: 'w', dataType: F32, dims: [4, 4], dataLocation: onnx.TensorProto.DataLocation.EXTERNAL, externalData: [{ key: 'location', value: '../outside.bin' }] };
    const path = write('escape.onnx', {
      name: 'g',
      node: [{ name: 'mm', opType: 'MatMul', input: ['x', 'w'], output: ['y'] }],
      initializer: [w],
      input: [valueInfo('x', F32, [2, 4])],
      output: [valueInfo('y', F32, [2, 4])],
    });
    const r = await run('stats', path);
    userError(r, 'GY5004');
    expect(r.err).toContain('leaves the model');
  });

  it('a tensor declaring 10^12 elements', async () => {
    const w = { name: 'w', dataType: F32, dims: [1_000_000, 1_000_000], rawData: new Uint8Array(16) };
    const path = write('huge.onnx', {
      name: 'g',
      node: [{ name: 'mm', opType: 'MatMul', input: ['x', 'w'], output: ['y'] }],
      initializer: [w],
      input: [valueInfo('x', F32, [2, 1_000_000])],
      output: [valueInfo('y', F32, [2, 1_000_000])],
    });
    userError(await run('stats', path), 'GY5007');
  });

  it('missing external data when its numbers are needed (a Reshape shape stored outside)', async () => {
    const shape = { name: 'shape', dataType: I64, dims: [2], dataLocation: onnx.TensorProto.DataLocation.EXTERNAL, externalData: [{ key: 'location', value: 'missing.bin' }] };
    const path = write('missing.onnx', {
      name: 'g',
      node: [{ name: 'r', opType: 'Reshape', input: ['x', 'shape'], output: ['y'] }],
      initializer: [shape],
      input: [valueInfo('x', F32, [2, 4])],
      output: [valueInfo('y', F32, [4, 2])],
    });
    const r = await run('simulate', path, '--hw', 'hecaton-2x2-standard');
    userError(r, 'GY5004');
    expect(r.err).toContain('missing.bin');
  });
});
