// The executor solves a collective's ring in closed form (solveRing) instead of simulating its
// messages. Here the same ring runs message by message on the contended network (network.ts:
// FIFO links, α after each transmission) from random start times, and the two must agree.

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { EventQueue } from '../../../src/backend/timing/events.js';
import { solveRing } from '../../../src/backend/timing/execute.js';
import { Network } from '../../../src/backend/timing/network.js';

/** Member p sends step s to p+1 once it has started and (s > 0) received step s−1 from p−1. */
function byMessages(starts: readonly number[], steps: number, bytes: number, alpha: number, beta: number): number[] {
  const n = starts.length;
  const q = new EventQueue();
  const net = new Network(q);
  const links = starts.map((_, p) => net.addLink({ from: p, to: (p + 1) % n, alphaS: alpha, bandwidthBytesPerS: beta }));
  const received = starts.map(() => 0);
  const delivered = starts.map(() => 0);
  const end = starts.map(() => 0);
  const sent = starts.map(() => 0);
  const started = starts.map(() => false);
  const done = (p: number, t: number): void => {
    if (received[p] === steps && delivered[p] === steps) end[p] = t;
  };
  const trySend = (p: number): void => {
    while (started[p] && sent[p]! < steps && sent[p]! <= received[p]!) {
      sent[p]!++;
      net.send([links[p]!], bytes, (t) => {
        const next = (p + 1) % n;
        delivered[p]!++;
        received[next]!++;
        trySend(next);
        done(next, t);
        done(p, t);
      });
    }
  };
  starts.forEach((t, p) =>
    q.schedule(t, () => {
      started[p] = true;
      trySend(p);
    }),
  );
  q.run();
  return end;
}

describe('solveRing', () => {
  it('equals message-by-message simulation from any start times', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 2, max: 9 }),
        fc.integer({ min: 1, max: 20 }),
        fc.array(fc.integer({ min: 0, max: 5000 }), { minLength: 9, maxLength: 9 }),
        fc.constantFrom(0, 1e-8, 5e-7),
        (n, steps, offsets, alpha) => {
          const beta = 64e9;
          const bytes = 65536; // 1.024 µs per step on the link
          const starts = offsets.slice(0, n).map((x) => x * 1e-9);
          const closed = solveRing(starts, n, steps, bytes / beta, alpha);
          const sim = byMessages(starts, steps, bytes, alpha, beta);
          for (let p = 0; p < n; p++) expect(closed.end[p]).toBeCloseTo(sim[p]!, 10); // the event clock ticks in 2^-40 s
        },
      ),
      { numRuns: 200, seed: 7 },
    );
  });

  it('costs S(τ + a) when every member starts together', () => {
    const r = solveRing([0, 0, 0, 0], 4, 3, 2e-6, 1e-8);
    for (const e of r.end) expect(e).toBeCloseTo(3 * (2e-6 + 1e-8), 18);
  });

  it('makes a late member delay everyone downstream, and queue its own sends', () => {
    const early = solveRing([0, 0, 0, 0], 4, 6, 1e-6, 0);
    const late = solveRing([0, 5e-6, 0, 0], 4, 6, 1e-6, 0);
    for (let p = 0; p < 4; p++) expect(late.end[p]).toBeGreaterThan(early.end[p]!);
  });
});
