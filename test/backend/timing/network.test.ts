// The contended network: a message costs B/β on each link plus α after it, hops are
// store-and-forward, a link carries one message at a time in arrival order, and each link
// records its busy time and bytes. Times are compared to 11 digits: the event clock ticks in
// 2^-40 s (events.ts).

import { describe, expect, it } from 'vitest';
import { EventQueue } from '../../../src/backend/timing/events.js';
import { Network } from '../../../src/backend/timing/network.js';

const ALPHA = 1e-7;
const BETA = 1e9;
const B = 1e6; // 1 ms on a link

function line(nodes: number): { q: EventQueue; net: Network; links: number[] } {
  const q = new EventQueue();
  const net = new Network(q);
  const links = Array.from({ length: nodes - 1 }, (_, i) => net.addLink({ from: i, to: i + 1, alphaS: ALPHA, bandwidthBytesPerS: BETA }));
  return { q, net, links };
}

describe('Network', () => {
  it('delivers one message after B/β + α', () => {
    const { q, net, links } = line(2);
    let at = -1;
    net.send([links[0]!], B, (t) => (at = t));
    q.run();
    expect(at).toBeCloseTo(B / BETA + ALPHA, 11);
  });

  it('stores and forwards across hops', () => {
    const { q, net, links } = line(4);
    let at = -1;
    net.send(links, B, (t) => (at = t));
    q.run();
    expect(at).toBeCloseTo(3 * (B / BETA + ALPHA), 11);
  });

  it('makes two messages on one link take longer than either alone', () => {
    const alone = (): number => {
      const { q, net, links } = line(2);
      let at = -1;
      net.send([links[0]!], B, (t) => (at = t));
      q.run();
      return at;
    };
    const { q, net, links } = line(2);
    const arrivals: number[] = [];
    net.send([links[0]!], B, (t) => arrivals.push(t));
    net.send([links[0]!], B, (t) => arrivals.push(t));
    q.run();
    expect(arrivals[0]).toBeCloseTo(alone(), 11);
    // The second waits for the first's transmission, not its latency: 2B/β + α.
    expect(arrivals[1]).toBeCloseTo((2 * B) / BETA + ALPHA, 11);
    expect(Math.max(...arrivals)).toBeGreaterThan(alone());
    const [stats] = net.stats();
    expect(stats).toMatchObject({ bytes: 2 * B, messages: 2 });
    expect(stats!.busyS).toBeCloseTo((2 * B) / BETA, 11);
  });

  it('serves a link first come, first served, across routes that merge', () => {
    // 0→2 and 1→2 both need link 2→3; the message from 1 reaches node 2 first.
    const q = new EventQueue();
    const net = new Network(q);
    const link = (from: number, to: number, bw: number): number => net.addLink({ from, to, alphaS: 0, bandwidthBytesPerS: bw });
    const slow = link(0, 2, BETA / 2);
    const fast = link(1, 2, BETA);
    const shared = link(2, 3, BETA);
    const order: string[] = [];
    net.send([slow, shared], B, () => order.push('from0'));
    net.send([fast, shared], B, () => order.push('from1'));
    expect(q.run()).toBeCloseTo((2 * B) / BETA + B / BETA, 11);
    expect(order).toEqual(['from1', 'from0']);
  });

  it('rejects broken routes', () => {
    const { net, links } = line(3);
    expect(() => net.send([links[1]!, links[0]!], B, () => undefined)).toThrow(/route breaks/);
  });
});
