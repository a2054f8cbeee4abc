// User hardware files: `base: PRESET` plus partial overrides changes exactly the overridden
// fields; complete descriptions (YAML or JSON) load; `die:` / `memory:` may name bundled files
// and `package.kind` may name a bundled package to start from.

import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { GygesError } from '../../src/diagnostics/diagnostic.js';
import { loadTarget, targetToJSON, type Target } from '../../src/target/index.js';

const MiB = 2 ** 20;
const dir = mkdtempSync(join(tmpdir(), 'gyges-target-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function write(name: string, text: string): string {
  const file = join(dir, name);
  writeFileSync(file, text);
  return file;
}

/** A target's JSON form with one field replaced, for "exactly this changed" comparisons. */
function jsonOf(t: Target): Record<string, any> {
  return JSON.parse(JSON.stringify(targetToJSON(t)));
}

describe('base preset with overrides', () => {
  const preset = loadTarget('hecaton-4x4-standard');

  test('a die override changes exactly that field', () => {
    const file = write('half-weights.yaml', 'base: hecaton-4x4-standard\ndie: {weight_buffer_mib: 2}\n');
    const t = loadTarget(file);
    expect(t.die.weightBufferBytes).toBe(2 * MiB);
    const expected = jsonOf(preset);
    expected.name = 'half-weights';
    expected.source = file;
    expected.die.weight_buffer_bytes = 2 * MiB;
    expect(jsonOf(t)).toEqual(expected);
  });

  test('nested overrides in several sections merge deeply', () => {
    const file = write(
      'tuned.yml',
      [
        'name: tuned',
        'base: hecaton-4x4-standard',
        'die:',
        '  clock_mhz: 1000',
        '  energy: {static_w: 0.5}',
        'package:',
        '  link: {alpha_ns: 100}',
        'memory:',
        '  channels_per_edge_die: 2',
        '',
      ].join('\n'),
    );
    const t = loadTarget(file);
    const expected = jsonOf(preset);
    expected.name = 'tuned';
    expected.source = file;
    expected.die.clock_hz = 1e9;
    expected.die.energy.static_w = 0.5;
    expected.package.link.alpha_s = 100e-9;
    expected.memory.channels = 2 * 2 * (4 + 4);
    expected.memory.total_bandwidth_bytes_per_s = 32 * 51.2e9;
    expect(jsonOf(t)).toEqual(expected);
  });

  test('a grid override recomputes dies and DRAM channels', () => {
    const t = loadTarget(write('wide.yaml', 'base: hecaton-4x4-standard\npackage: {rows: 2, cols: 8}\n'));
    expect(t.package.dies).toBe(16);
    expect(t.memory.channels).toBe(2 * (2 + 8));
    expect(t.package.link).toEqual(preset.package.link);
  });

  test('an explicit channel count takes precedence over channels_per_edge_die', () => {
    const t = loadTarget(write('eight.yaml', 'base: hecaton-4x4-standard\nmemory: {channels: 8, capacity_gib_per_channel: 64}\n'));
    expect(t.memory.channels).toBe(8);
    expect(t.memory.totalBandwidthBytesPerS).toBe(8 * 51.2e9);
    expect(t.memory.capacityBytes).toBe(8 * 64 * 2 ** 30);
  });

  test('changing package.kind to a bundled package takes that package’s link', () => {
    const t = loadTarget(write('to-advanced.yaml', 'base: hecaton-4x4-standard\npackage: {kind: advanced}\n'));
    expect(t.package.link).toEqual(loadTarget('hecaton-4x4-advanced').package.link);
    expect(t.package.rows).toBe(4);
  });

  test('a new package kind keeps the base link unless it is overridden', () => {
    const t = loadTarget(write('relabel.yaml', 'base: hecaton-4x4-standard\npackage: {kind: organic-x16, link: {lanes: 8}}\n'));
    expect(t.package.kind).toBe('organic-x16');
    expect(t.package.link.lanes).toBe(8);
    expect(t.package.link.bandwidthBytesPerS).toBe(32e9);
    expect(t.package.link.alphaS).toBe(10e-9);
  });

  test('die: may name a bundled die', () => {
    const t = loadTarget(write('named-die.yaml', 'base: hecaton-2x2-advanced\ndie: hecaton\n'));
    expect(t.die).toEqual(loadTarget('hecaton-2x2-advanced').die);
  });
});

describe('complete descriptions', () => {
  const full = [
    'name: custom-chip',
    'die:',
    '  name: tiny',
    '  precision: bf16',
    '  macs: 1024',
    '  pes: 4',
    '  clock_mhz: 1000',
    '  activation_buffer_mib: 1',
    '  weight_buffer_mib: 0.5',
    '  vector_lanes: 64',
    '  router: {ports: [E, W], bypass: false}',
    '  energy: {mac_pj: 1, sram_read_pj_per_byte: 2, sram_write_pj_per_byte: 3, vector_op_pj: 4, static_w: 5}',
    'package:',
    '  kind: interposer',
    '  rows: 1',
    '  cols: 8',
    '  link: {lanes: 32, gtps_per_lane: 16, alpha_ns: 5, bypass_latency_factor: 1.5, energy_pj_per_bit: 0.25}',
    'memory:',
    '  kind: lpddr5',
    '  data_rate_mtps: 6400',
    '  channel_width_bits: 16',
    '  energy_pj_per_bit: 5',
    '  channels: 4',
    '',
  ].join('\n');

  test('a full YAML description loads with every field converted to SI', () => {
    const t = loadTarget(write('custom.yaml', full));
    expect(t.name).toBe('custom-chip');
    expect(t.die).toEqual({
      name: 'tiny',
      model: 'pe-array',
      precision: 'bf16',
      macs: 1024,
      pes: 4,
      clockHz: 1e9,
      activationBufferBytes: MiB,
      weightBufferBytes: MiB / 2,
      vectorLanes: 64,
      router: { ports: ['E', 'W'], bypass: false },
      energy: { macPj: 1, sramReadPjPerByte: 2, sramWritePjPerByte: 3, vectorOpPj: 4, staticW: 5 },
    });
    expect(t.package).toEqual({
      kind: 'interposer',
      rows: 1,
      cols: 8,
      dies: 8,
      link: { lanes: 32, gtpsPerLane: 16, bandwidthBytesPerS: 64e9, alphaS: 5e-9, bypassLatencyFactor: 1.5, energyPjPerBit: 0.25 },
    });
    expect(t.memory).toEqual({
      kind: 'lpddr5',
      dataRateMtps: 6400,
      channelWidthBits: 16,
      channels: 4,
      channelBandwidthBytesPerS: 12.8e9,
      totalBandwidthBytesPerS: 51.2e9,
      energyPjPerBit: 5,
    });
  });

  test('the same description as JSON gives the same target', () => {
    const yamlTarget = loadTarget(write('same.yaml', full));
    const asJson = JSON.stringify({
      name: 'custom-chip',
      die: { ...targetDieFields() },
      package: {
        kind: 'interposer',
        rows: 1,
        cols: 8,
        link: { lanes: 32, gtps_per_lane: 16, alpha_ns: 5, bypass_latency_factor: 1.5, energy_pj_per_bit: 0.25 },
      },
      memory: { kind: 'lpddr5', data_rate_mtps: 6400, channel_width_bits: 16, energy_pj_per_bit: 5, channels: 4 },
    });
    const jsonFile = write('same.json', asJson);
    const jsonTarget = loadTarget(jsonFile);
    expect({ ...jsonOf(jsonTarget), source: '' }).toEqual({ ...jsonOf(yamlTarget), source: '' });
  });

  test('bundled names and kinds fill in a short description; the name defaults to the file name', () => {
    const t = loadTarget(write('short-form.yaml', 'die: hecaton\npackage: {kind: advanced, rows: 2, cols: 3}\nmemory: ddr5-6400\n'));
    const preset = loadTarget('hecaton-2x3-advanced');
    expect(t.name).toBe('short-form');
    expect(t.die).toEqual(preset.die);
    expect(t.package).toEqual(preset.package);
    expect(t.memory).toEqual(preset.memory);
  });

  test('a memory kind naming a bundled memory starts from that file', () => {
    const t = loadTarget(
      write('mem-kind.yaml', 'die: hecaton\npackage: {kind: standard, rows: 2, cols: 2}\nmemory: {kind: ddr5-6400, energy_pj_per_bit: 15}\n'),
    );
    expect(t.memory.energyPjPerBit).toBe(15);
    expect(t.memory.channelBandwidthBytesPerS).toBe(51.2e9);
  });

  test('a file with another extension is GY4003', () => {
    const file = write('hardware.txt', 'base: hecaton-4x4-standard\n');
    const e = (() => {
      try {
        loadTarget(file);
      } catch (err) {
        return err;
      }
      return undefined;
    })();
    expect(e).toBeInstanceOf(GygesError);
    expect((e as GygesError).message).toBe(`error GY4003: hardware file '${file}' must end in .yaml, .yml or .json`);
  });

  test('a JSON syntax error is GY4003 with its location', () => {
    const file = write('broken.json', '{"base": "hecaton-4x4-standard",\n "die": {"pes": 16}\n');
    expect(() => loadTarget(file)).toThrow(GygesError);
    try {
      loadTarget(file);
    } catch (e) {
      expect((e as GygesError).code).toBe('GY4003');
      expect((e as GygesError).message).toMatch(new RegExp(`^${escape(file)}:\\d+:\\d+: error GY4003: YAML syntax error: `));
    }
  });

  test('a bad value in a JSON file points at its line and column', () => {
    const file = write('bad-value.json', '{\n  "base": "hecaton-4x4-standard",\n  "package": {"link": {"lanes": 0}}\n}\n');
    expect(() => loadTarget(file)).toThrow(`${file}:3:33: error GY4001: package.link.lanes must be a positive whole number, got 0`);
  });
});

function targetDieFields() {
  return {
    name: 'tiny',
    precision: 'bf16',
    macs: 1024,
    pes: 4,
    clock_mhz: 1000,
    activation_buffer_mib: 1,
    weight_buffer_mib: 0.5,
    vector_lanes: 64,
    router: { ports: ['E', 'W'], bypass: false },
    energy: { mac_pj: 1, sram_read_pj_per_byte: 2, sram_write_pj_per_byte: 3, vector_op_pj: 4, static_w: 5 },
  };
}

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
