// Preset names (`hecaton-RxC-standard`, `hecaton-RxC-advanced`) resolve to the paper's hardware
// (Hecaton §VI-A, UCIe 1.1, DDR5-6400) for any grid; names that are neither a preset nor a file
// are rejected with one line that says what a preset looks like.

import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { GygesError } from '../../src/diagnostics/diagnostic.js';
import { describeTarget, loadTarget, parsePresetName, targetToJSON } from '../../src/target/index.js';
import { bundled } from '../../src/util/paths.js';

const MiB = 2 ** 20;

function failure(spec: string): GygesError {
  try {
    loadTarget(spec);
  } catch (e) {
    expect(e).toBeInstanceOf(GygesError);
    expect((e as GygesError).message).not.toContain('\n');
    return e as GygesError;
  }
  throw new Error(`expected '${spec}' to fail`);
}

describe('preset names', () => {
  test.each([
    ['hecaton-1x1-standard', 1, 1],
    ['hecaton-3x3-advanced', 3, 3],
    ['hecaton-4x4-standard', 4, 4],
    ['hecaton-2x8-advanced', 2, 8],
    ['hecaton-32x32-standard', 32, 32],
    ['hecaton-64x64-advanced', 64, 64],
  ])('%s resolves to a %ix%i grid', (name, rows, cols) => {
    const t = loadTarget(name);
    expect(t.name).toBe(name);
    expect(t.source).toBe(name);
    expect(t.package.rows).toBe(rows);
    expect(t.package.cols).toBe(cols);
    expect(t.package.dies).toBe(rows * cols);
    expect(t.package.kind).toBe(name.endsWith('advanced') ? 'advanced' : 'standard');
  });

  test('parsePresetName accepts only the exact pattern', () => {
    expect(parsePresetName('hecaton-3x5-advanced')).toEqual({ text: 'hecaton-3x5-advanced', die: 'hecaton', rows: 3, cols: 5, kind: 'advanced' });
    for (const bad of ['hecaton-4x4', 'hecaton-4x4-Standard', 'Hecaton-4x4-standard', 'hecaton-4-standard', 'hecaton-4x4-standard ', 'simba-4x4-standard']) {
      expect(parsePresetName(bad)).toBeUndefined();
    }
  });
});

describe('hecaton-32x32-standard (the paper’s 1024-die standard package)', () => {
  const t = loadTarget('hecaton-32x32-standard');

  test('die: 4096 FP32 MACs in 16 PEs at 800 MHz, 4 MiB + 4 MiB buffers (§VI-A)', () => {
    expect(t.die.name).toBe('hecaton');
    expect(t.die.precision).toBe('fp32');
    expect(t.die.macs).toBe(4096);
    expect(t.die.pes).toBe(16);
    expect(t.die.clockHz).toBe(800e6);
    expect(t.die.activationBufferBytes).toBe(4 * MiB);
    expect(t.die.weightBufferBytes).toBe(4 * MiB);
    expect(t.die.vectorLanes).toBe(256);
    expect(t.die.router).toEqual({ ports: ['E', 'S', 'W', 'N'], bypass: true });
    expect(t.die.energy).toEqual({ macPj: 4.6, sramReadPjPerByte: 12.5, sramWritePjPerByte: 12.5, vectorOpPj: 4.6, staticW: 0 });
  });

  test('package: 1024 dies, x16 × 32 GT/s / 8 = 64e9 B/s per direction, α = 10 ns, bypass 2×', () => {
    expect(t.package.dies).toBe(1024);
    expect(t.package.link.lanes).toBe(16);
    expect(t.package.link.gtpsPerLane).toBe(32);
    expect(t.package.link.bandwidthBytesPerS).toBe(64e9);
    expect(t.package.link.alphaS).toBe(10e-9);
    expect(t.package.link.bypassLatencyFactor).toBe(2);
    expect(t.package.link.energyPjPerBit).toBe(0.6);
  });

  test('memory: DDR5-6400, 51.2 GB/s per channel, 2·(R+C) channels', () => {
    expect(t.memory.kind).toBe('ddr5-6400');
    expect(t.memory.channelBandwidthBytesPerS).toBe(51.2e9);
    expect(t.memory.channels).toBe(2 * (32 + 32));
    expect(t.memory.totalBandwidthBytesPerS).toBe(128 * 51.2e9);
    expect(t.memory.capacityBytes).toBeUndefined();
  });
});

describe('standard against advanced', () => {
  test.each([
    [1, 1],
    [4, 4],
    [3, 7],
  ])('%ix%i: advanced links have 4× the bandwidth, the rest is equal', (r, c) => {
    const std = loadTarget(`hecaton-${r}x${c}-standard`);
    const adv = loadTarget(`hecaton-${r}x${c}-advanced`);
    expect(adv.package.link.bandwidthBytesPerS).toBe(4 * std.package.link.bandwidthBytesPerS);
    expect(adv.package.link.bandwidthBytesPerS).toBe(256e9);
    expect(adv.package.link.lanes).toBe(64);
    expect(adv.package.link.alphaS).toBe(std.package.link.alphaS);
    expect(adv.package.link.energyPjPerBit).toBe(0.3);
    expect(adv.die).toEqual(std.die);
    expect(adv.memory).toEqual(std.memory);
  });

  test.each([
    [1, 1],
    [2, 8],
    [16, 16],
    [5, 3],
  ])('%ix%i has 2·(R+C) DRAM channels by default', (r, c) => {
    for (const kind of ['standard', 'advanced']) {
      const t = loadTarget(`hecaton-${r}x${c}-${kind}`);
      expect(t.memory.channels).toBe(2 * (r + c));
      expect(t.memory.totalBandwidthBytesPerS).toBe(2 * (r + c) * 51.2e9);
    }
  });
});

describe('names that are neither a preset nor a file', () => {
  const hint = 'not a file, and not a preset name like hecaton-4x4-standard or hecaton-8x8-advanced';

  test.each(['foo', 'hecaton-4x4', 'hecaton-4x4-medium', 'hecaton-4x4-Standard', 'hecaton-ax4-standard', ''])(
    "'%s' is GY4002",
    (spec) => {
      const e = failure(spec);
      expect(e.code).toBe('GY4002');
      expect(e.message).toBe(`error GY4002: unknown hardware '${spec}': ${hint}`);
    },
  );

  test.each(['hecaton-0x4-standard', 'hecaton-4x0-advanced', 'hecaton-0x0-standard'])('%s (an empty grid) is GY4001', (spec) => {
    const e = failure(spec);
    expect(e.code).toBe('GY4001');
    const m = /hecaton-(\d+)x(\d+)/.exec(spec)!;
    expect(e.message).toBe(`error GY4001: preset '${spec}' must have at least one row and one column, got ${m[1]}x${m[2]}`);
  });

  test('a missing file is GY9002', () => {
    const e = failure('no/such/hardware.yaml');
    expect(e.code).toBe('GY9002');
    expect(e.message).toBe("error GY9002: cannot read hardware file 'no/such/hardware.yaml': no such file");
    expect(failure('missing.yml').code).toBe('GY9002');
  });

  test('a folder is GY9002', () => {
    const e = failure('test/target');
    expect(e.code).toBe('GY9002');
    expect(e.message).toBe("error GY9002: cannot read hardware file 'test/target': it is a folder");
  });
});

describe('the Target value', () => {
  const t = loadTarget('hecaton-4x4-standard');

  test('is frozen all the way down', () => {
    expect(Object.isFrozen(t)).toBe(true);
    expect(Object.isFrozen(t.die.router.ports)).toBe(true);
    expect(Object.isFrozen(t.package.link)).toBe(true);
  });

  test('describeTarget is a multi-line summary of the main numbers', () => {
    const text = describeTarget(t);
    expect(text.split('\n').length).toBeGreaterThan(3);
    expect(text).toContain('target hecaton-4x4-standard');
    expect(text).toContain('4096 fp32 MACs in 16 PEs at 800 MHz');
    expect(text).toContain('4x4 = 16 dies');
    expect(text).toContain('x16 at 32 GT/s = 64 GB/s per direction');
    expect(text).toContain('alpha 10 ns');
    expect(text).toContain('16 channels x 51.2 GB/s');
  });

  test('targetToJSON has a stable key order and survives JSON', () => {
    const j = targetToJSON(t);
    expect(Object.keys(j)).toEqual(['name', 'source', 'die', 'package', 'memory']);
    expect(Object.keys(j.die as object)).toEqual([
      'name',
      'model',
      'precision',
      'macs',
      'pes',
      'clock_hz',
      'activation_buffer_bytes',
      'weight_buffer_bytes',
      'vector_lanes',
      'router',
      'energy',
      'vector_ops',
      'plugin',
    ]);
    expect(Object.keys(j.package as object)).toEqual(['kind', 'rows', 'cols', 'dies', 'link']);
    expect(JSON.parse(JSON.stringify(j))).toEqual(j);
    expect(JSON.stringify(targetToJSON(loadTarget('hecaton-4x4-standard')))).toBe(JSON.stringify(j));
    expect((j.package as { link: { bandwidth_bytes_per_s: number } }).link.bandwidth_bytes_per_s).toBe(64e9);
  });
});

describe('bundled data files', () => {
  const kinds = ['dies', 'packages', 'memory'];

  test('every number in a bundled file has a comment above it citing its source', () => {
    for (const kind of kinds) {
      const folder = bundled('targets', kind);
      for (const f of readdirSync(folder).filter((n) => n.endsWith('.yaml'))) {
        const lines = readFileSync(join(folder, f), 'utf8').split('\n');
        lines.forEach((line, i) => {
          if (!/^\s*[a-z_]+:\s*-?[0-9.]/.test(line)) return;
          // Walk up over the other numeric fields of the same group to the comment block.
          let j = i - 1;
          while (j >= 0 && /^\s*[a-z_]+:\s*-?[0-9.]/.test(lines[j]!)) j--;
          expect(lines[j]?.trim().startsWith('#'), `${kind}/${f}:${i + 1} '${line.trim()}' has no comment`).toBe(true);
        });
      }
    }
  });
});
