// One collective alone, simulated message by message, against the closed forms it must
// reproduce on uniform links (ring: eq. 1 of the paper, torus: the 2-D algorithm of
// passes/collective-cost.ts), plus contention and determinism.

import { describe, expect, it } from 'vitest';
import {
  parseTopology,
  simulateCollective,
  type CollectiveSimInput,
  type SimCollectiveKind,
  type SimTopology,
} from '../../../src/backend/timing/collective.js';
import { collectiveCost } from '../../../src/passes/collective-cost.js';
import { GygesError } from '../../../src/diagnostics/diagnostic.js';

const MiB = 1 << 20;
const BETA = 64e9;

function sim(kind: SimCollectiveKind, topology: SimTopology, bytes: number, alphaS: number, bandwidthBytesPerS = BETA) {
  return simulateCollective({ kind, topology, bytes, alphaS, bandwidthBytesPerS });
}

function relErr(got: number, want: number): number {
  return Math.abs(got - want) / want;
}

describe('ring collectives match the closed forms', () => {
  const closed: Record<'all_reduce' | 'all_gather' | 'reduce_scatter', (n: number, s: number, a: number) => number> = {
    all_reduce: (n, s, a) => 2 * (n - 1) * (a + s / (n * BETA)),
    all_gather: (n, s, a) => (n - 1) * (a + s / BETA),
    reduce_scatter: (n, s, a) => (n - 1) * (a + s / (n * BETA)),
  };
  for (const kind of ['all_reduce', 'all_gather', 'reduce_scatter'] as const) {
    for (const n of [4, 8, 16, 32]) {
      for (const s of [MiB, 256 * MiB]) {
        for (const alpha of [10e-9, 500e-9]) {
          it(`${kind} ring:${n} ${s / MiB} MiB α=${alpha * 1e9} ns`, () => {
            const r = sim(kind, { kind: 'ring', n }, s, alpha);
            expect(relErr(r.time_s, closed[kind](n, s, alpha))).toBeLessThan(0.01);
            const cost = collectiveCost(kind, 'ring', s, n, { rows: 1, cols: n });
            expect(r.steps).toBe(cost.steps);
            expect(relErr(r.bytes_per_die_sent, cost.sentBytes)).toBeLessThan(1e-12);
            expect(relErr(r.link_bytes_max, cost.linkBytes)).toBeLessThan(1e-12);
          });
        }
      }
    }
  }
});

// Torus n×n (N = n² dies), each die's buffer P, link latency α, bandwidth β. One half of P
// goes row-first, the other column-first; the ring in each dimension runs one direction
// (rows eastwards, columns southwards). Per half, all-reduce runs four ring phases of n−1
// steps: reduce-scatter of P/2 along the first dimension (chunks P/(2n)), reduce-scatter of
// the resulting P/(2n) along the second (chunks P/(2n²)), all-gather back along the second
// (chunks P/(2n²)), all-gather along the first (chunks P/(2n)). On a square grid the two halves
// are mirror images: whenever one uses the eastward links the other uses the southward ones,
// so they never contend and each phase costs (n−1)(α + chunk/β):
//   T_AR = 2(n−1)(α + P/(2nβ)) + 2(n−1)(α + P/(2n²β)) = 4(n−1)α + (n−1)(n+1)·P/(n²β)
//        = 4(√N−1)α + (N−1)/N · P/β                     (half a flat ring's transmission).
// Likewise reduce-scatter (the first two phases): 2(√N−1)α + (N−1)/(2N) · P/β, and
// all-gather of shard s (phases of chunks s/2, then n·s/2): 2(√N−1)α + (N−1)·s/(2β).
// On a non-square grid the halves' phases have different lengths and do share links, so
// the busier link direction — (C−1)(R+1)/(RC)·P, collective-cost.ts — governs instead.
describe('torus collectives match the 2-D closed forms', () => {
  const closed = {
    all_reduce: (N: number, p: number, a: number) => 4 * (Math.sqrt(N) - 1) * a + ((N - 1) / N) * (p / BETA),
    reduce_scatter: (N: number, p: number, a: number) => 2 * (Math.sqrt(N) - 1) * a + ((N - 1) / (2 * N)) * (p / BETA),
    all_gather: (N: number, s: number, a: number) => 2 * (Math.sqrt(N) - 1) * a + ((N - 1) * s) / (2 * BETA),
  };
  for (const kind of ['all_reduce', 'reduce_scatter', 'all_gather'] as const) {
    for (const n of [4, 8]) {
      for (const p of [MiB, 256 * MiB]) {
        for (const alpha of [10e-9, 500e-9]) {
          it(`${kind} torus:${n}x${n} ${p / MiB} MiB α=${alpha * 1e9} ns`, () => {
            const r = sim(kind, { kind: 'torus', rows: n, cols: n }, p, alpha);
            expect(relErr(r.time_s, closed[kind](n * n, p, alpha))).toBeLessThan(0.01);
            const cost = collectiveCost(kind, 'torus2d', p, n * n, { rows: n, cols: n });
            expect(r.steps).toBe(cost.steps);
            expect(relErr(r.bytes_per_die_sent, cost.sentBytes)).toBeLessThan(1e-12);
            expect(relErr(r.link_bytes_max, cost.linkBytes)).toBeLessThan(1e-12);
          });
        }
      }
    }
  }

  it('loads the busier direction of a rectangular torus as collective-cost.ts says', () => {
    const [rows, cols] = [2, 8];
    const r = sim('all_reduce', { kind: 'torus', rows, cols }, 64 * MiB, 0);
    const cost = collectiveCost('all_reduce', 'torus2d', 64 * MiB, rows * cols, { rows, cols });
    expect(relErr(r.link_bytes_max, cost.linkBytes)).toBeLessThan(1e-12);
    // The busiest link can do no better than carry its load back to back.
    expect(r.time_s).toBeGreaterThanOrEqual(cost.linkBytes / BETA);
  });
});

describe('all-to-all', () => {
  it('is slower on a ring than on a torus of the same size (contention on fewer links)', () => {
    for (const [n, side] of [[16, 4], [64, 8]] as const) {
      const ring = sim('all_to_all', { kind: 'ring', n }, 64 * MiB, 10e-9);
      const torus = sim('all_to_all', { kind: 'torus', rows: side, cols: side }, 64 * MiB, 10e-9);
      expect(ring.time_s).toBeGreaterThan(torus.time_s);
      expect(ring.link_bytes_max).toBeGreaterThan(torus.link_bytes_max);
      expect(ring.messages).toBe(n * (n - 1));
    }
  });

  it('on a ring is bounded below by the load of its busiest link', () => {
    // Shortest routes on a ring of 8: a die sends chunks 1,2,3,4 hops forward and 1,2,3 back;
    // the forward link out of each die carries 1+2+3+4 = 10 chunks of S/8.
    const S = 8 * MiB;
    const r = sim('all_to_all', { kind: 'ring', n: 8 }, S, 0);
    expect(r.link_bytes_max).toBe((10 * S) / 8);
    expect(r.time_s).toBeGreaterThanOrEqual((10 * S) / 8 / BETA);
    expect(r.steps).toBe(4);
  });

  it('takes one hop of α + chunk/β on a ring of two', () => {
    const r = sim('all_to_all', { kind: 'ring', n: 2 }, 2 * MiB, 1e-7);
    // Within a few ticks of the event clock (2^-40 s, events.ts).
    expect(relErr(r.time_s, 1e-7 + MiB / BETA)).toBeLessThan(1e-7);
  });
});

// The exchange all-reduce sends each die's whole buffer P both ways round the ring and forwards
// what arrives: ⌈(n−1)/2⌉ steps of (α + P/β) one way, one fewer or as many the other way, on
// links that carry each direction apart. On a torus the row's exchange, then the column's.
describe('the exchange all-reduce matches its closed form', () => {
  const steps = (g: number) => Math.ceil((g - 1) / 2);
  for (const n of [2, 3, 4, 7, 16, 32]) {
    for (const s of [64, 4096, MiB]) {
      for (const alpha of [10e-9, 500e-9]) {
        it(`ring:${n} ${s} B α=${alpha * 1e9} ns`, () => {
          const r = simulateCollective({ kind: 'all_reduce', topology: { kind: 'ring', n }, bytes: s, alphaS: alpha, bandwidthBytesPerS: BETA, algorithm: 'exchange' });
          expect(r.algorithm).toBe('exchange');
          expect(relErr(r.time_s, steps(n) * (alpha + s / BETA))).toBeLessThan(0.01);
          // A ring whose two directions are links of their own: plain.
          const cost = collectiveCost('all_reduce', 'exchange', s, n, { rows: 1, cols: n }, 'plain');
          expect(r.steps).toBe(cost.steps);
          expect(relErr(r.bytes_per_die_sent, cost.sentBytes)).toBeLessThan(1e-12);
          expect(relErr(r.link_bytes_max, cost.linkBytes)).toBeLessThan(1e-12);
        });
      }
    }
  }
  for (const [rows, cols] of [
    [4, 4],
    [8, 8],
    [3, 6],
  ] as const) {
    it(`torus:${rows}x${cols}: the row's steps then the column's`, () => {
      const s = 256;
      const r = simulateCollective({ kind: 'all_reduce', topology: { kind: 'torus', rows, cols }, bytes: s, alphaS: 10e-9, bandwidthBytesPerS: BETA, algorithm: 'exchange' });
      expect(r.steps).toBe(steps(cols) + steps(rows));
      expect(relErr(r.time_s, (steps(cols) + steps(rows)) * (10e-9 + s / BETA))).toBeLessThan(0.01);
      // Every die sends its own buffer to the rest of its row, then its row's sum to the rest of its column.
      expect(r.bytes_per_die_sent).toBe((cols - 1 + rows - 1) * s);
    });
  }
  it('takes fewer steps than the ring all-reduce, and is faster for small buffers only', () => {
    const run = (bytes: number, algorithm?: 'exchange') =>
      simulateCollective({ kind: 'all_reduce', topology: { kind: 'ring', n: 32 }, bytes, alphaS: 10e-9, bandwidthBytesPerS: BETA, ...(algorithm ? { algorithm } : {}) });
    expect(run(128, 'exchange').time_s).toBeLessThan(run(128).time_s / 3);
    expect(run(MiB, 'exchange').time_s).toBeGreaterThan(run(MiB).time_s * 5);
  });
  it('is an all-reduce only', () => {
    for (const kind of ['all_gather', 'reduce_scatter', 'all_to_all'] as const) {
      const f = () => simulateCollective({ kind, topology: { kind: 'ring', n: 4 }, bytes: 64, alphaS: 0, bandwidthBytesPerS: BETA, algorithm: 'exchange' });
      expect(f).toThrow(/GY8001.*exchange/);
    }
  });
});

// The bidirectional ring runs the ring algorithm both ways at once: ⌈(n−1)/2⌉ steps per phase
// instead of n−1, each moving what a ring step moves, on each direction of the links.
describe('the bidirectional ring matches its closed forms', () => {
  const half = (n: number) => Math.ceil((n - 1) / 2);
  const closed: Record<'all_reduce' | 'all_gather' | 'reduce_scatter', (n: number, s: number, a: number) => { time: number; link: number }> = {
    all_gather: (n, s, a) => ({ time: half(n) * (a + s / BETA), link: half(n) * s }),
    reduce_scatter: (n, s, a) => ({ time: half(n) * (a + s / (n * BETA)), link: (half(n) * s) / n }),
    all_reduce: (n, s, a) => ({ time: 2 * half(n) * (a + s / (n * BETA)), link: (2 * half(n) * s) / n }),
  };
  for (const kind of ['all_reduce', 'all_gather', 'reduce_scatter'] as const) {
    for (const n of [4, 7, 16, 32]) {
      for (const s of [MiB, 256 * MiB]) {
        for (const alpha of [10e-9, 500e-9]) {
          it(`${kind} ring:${n} ${s / MiB} MiB α=${alpha * 1e9} ns`, () => {
            const r = simulateCollective({ kind, topology: { kind: 'ring', n }, bytes: s, alphaS: alpha, bandwidthBytesPerS: BETA, algorithm: 'bidirectional' });
            const want = closed[kind](n, s, alpha);
            expect(r.algorithm).toBe('bidirectional');
            expect(relErr(r.time_s, want.time)).toBeLessThan(0.01);
            expect(relErr(r.link_bytes_max, want.link)).toBeLessThan(1e-12);
            // The compiler's closed form for a ring whose directions are links of their own.
            const cost = collectiveCost(kind, 'bidirectional', s, n, { rows: 1, cols: n }, 'plain');
            expect(cost.steps).toBe(r.steps);
            expect(relErr(cost.linkBytes, r.link_bytes_max)).toBeLessThan(1e-12);
            // Every die sends what it sends on the one-way ring, split over both directions.
            expect(relErr(r.bytes_per_die_sent, sim(kind, { kind: 'ring', n }, s, alpha).bytes_per_die_sent)).toBeLessThan(1e-12);
          });
        }
      }
    }
  }
  it('runs on rings only, and not all-to-all', () => {
    const bad = [
      () => simulateCollective({ kind: 'all_gather', topology: { kind: 'torus', rows: 4, cols: 4 }, bytes: 64, alphaS: 0, bandwidthBytesPerS: BETA, algorithm: 'bidirectional' }),
      () => simulateCollective({ kind: 'all_to_all', topology: { kind: 'ring', n: 4 }, bytes: 64, alphaS: 0, bandwidthBytesPerS: BETA, algorithm: 'bidirectional' }),
    ];
    for (const f of bad) expect(f).toThrow(/GY8001.*bidirectional/);
  });
});

describe('edge cases and errors', () => {
  it('costs nothing on one die', () => {
    for (const kind of ['all_reduce', 'all_gather', 'reduce_scatter', 'all_to_all'] as const) {
      expect(sim(kind, { kind: 'ring', n: 1 }, MiB, 1e-8).time_s).toBe(0);
      expect(sim(kind, { kind: 'torus', rows: 1, cols: 1 }, MiB, 1e-8).time_s).toBe(0);
    }
  });

  it('treats a 1×N torus as a ring carrying both halves', () => {
    // Both halves share the eastward links; interleaved, one half's transmissions hide the
    // other's latency, so the time is within a hair of the flat ring's, never below the load.
    const torus = sim('all_reduce', { kind: 'torus', rows: 1, cols: 8 }, 8 * MiB, 1e-8);
    const ring = sim('all_reduce', { kind: 'ring', n: 8 }, 8 * MiB, 1e-8);
    expect(torus.link_bytes_max).toBeCloseTo(ring.link_bytes_max, 6);
    expect(relErr(torus.time_s, ring.time_s)).toBeLessThan(0.01);
    expect(torus.time_s).toBeGreaterThanOrEqual(torus.link_bytes_max / BETA);
  });

  it('parses topologies and rejects bad parameters with GY8001', () => {
    expect(parseTopology('ring:16')).toEqual({ kind: 'ring', n: 16 });
    expect(parseTopology('torus:4x8')).toEqual({ kind: 'torus', rows: 4, cols: 8 });
    const bad: (() => unknown)[] = [
      () => parseTopology('mesh:4'),
      () => sim('all_reduce', { kind: 'ring', n: 0 }, MiB, 0),
      () => sim('all_reduce', { kind: 'torus', rows: 2.5, cols: 2 }, MiB, 0),
      () => sim('all_reduce', { kind: 'ring', n: 4 }, -1, 0),
      () => sim('all_reduce', { kind: 'ring', n: 4 }, MiB, Number.NaN),
      () => sim('all_reduce', { kind: 'ring', n: 4 }, MiB, 0, 0),
      () => sim('all_reduce', { kind: 'torus', rows: 100, cols: 100 }, MiB, 0),
      () => sim('all_to_all', { kind: 'ring', n: 1024 }, MiB, 0),
    ];
    for (const f of bad) {
      expect(f).toThrow(GygesError);
      expect(f).toThrow(/GY8001/);
    }
  });
});

describe('determinism', () => {
  it('gives identical results for identical inputs', () => {
    const inputs: CollectiveSimInput[] = [
      { kind: 'all_to_all', topology: { kind: 'torus', rows: 4, cols: 6 }, bytes: 3 * MiB + 7, alphaS: 3e-8, bandwidthBytesPerS: 32e9 },
      { kind: 'all_reduce', topology: { kind: 'torus', rows: 3, cols: 5 }, bytes: 5 * MiB, alphaS: 2e-8, bandwidthBytesPerS: 32e9 },
      { kind: 'all_gather', topology: { kind: 'ring', n: 12 }, bytes: MiB, alphaS: 1e-8, bandwidthBytesPerS: 64e9 },
    ];
    for (const input of inputs) {
      expect(JSON.stringify(simulateCollective(input))).toBe(JSON.stringify(simulateCollective(input)));
    }
  });
});
