// A network of directed links driven by the event engine. Each link has a latency α (s) and a
// bandwidth β (B/s) and transmits one message at a time, first come first served: a message
// of B bytes occupies the link for B/β and arrives α after its transmission ends. Routes are
// lists of links and are store-and-forward: the next hop is requested only once the whole
// message has arrived. Each link records its busy time and bytes, for utilisation and energy.
// Waiting messages queue at the link and only the one transmitting has an event scheduled, so
// the event heap stays as small as the number of links even when thousands of messages are
// injected at once (an all-to-all on 1024 dies sends about a million).

import { assert } from '../../diagnostics/diagnostic.js';
import type { EventQueue } from './events.js';

export type LinkId = number;

export interface LinkSpec {
  readonly from: number;
  readonly to: number;
  readonly alphaS: number;
  readonly bandwidthBytesPerS: number;
}

export interface LinkStats extends LinkSpec {
  readonly busyS: number;
  readonly bytes: number;
  readonly messages: number;
}

/** A message on its way: the hop `k` of `route` it is waiting for or crossing. */
interface InFlight {
  readonly route: readonly LinkId[];
  k: number;
  readonly bytes: number;
  readonly onArrive: (at: number) => void;
}

interface LinkState extends LinkSpec {
  transmitting: boolean;
  /** Messages waiting for the link, first come first served, from index `head`. */
  readonly queue: InFlight[];
  head: number;
  busyS: number;
  bytes: number;
  messages: number;
}

export class Network {
  private readonly links: LinkState[] = [];
  private readonly byEnds = new Map<number, LinkId>();

  constructor(private readonly engine: EventQueue) {}

  /** Add a link from node `from` to node `to`; there is at most one per ordered pair. */
  addLink(spec: LinkSpec): LinkId {
    const key = endsKey(spec.from, spec.to);
    assert(!this.byEnds.has(key), `link ${spec.from}->${spec.to} added twice`);
    assert(spec.bandwidthBytesPerS > 0 && spec.alphaS >= 0, `link ${spec.from}->${spec.to} has bad parameters`);
    this.links.push({ ...spec, transmitting: false, queue: [], head: 0, busyS: 0, bytes: 0, messages: 0 });
    this.byEnds.set(key, this.links.length - 1);
    return this.links.length - 1;
  }

  /** The link from `from` to `to`, if there is one. */
  linkBetween(from: number, to: number): LinkId | undefined {
    return this.byEnds.get(endsKey(from, to));
  }

  /**
   * Send `bytes` along `route` (consecutive links) starting now; `onArrive` runs, with the
   * arrival time, when the message has crossed the last link. An empty route arrives now.
   */
  send(route: readonly LinkId[], bytes: number, onArrive: (at: number) => void): void {
    assert(bytes >= 0 && Number.isFinite(bytes), `message of ${bytes} bytes`);
    this.checkRoute(route);
    this.hop({ route, k: 0, bytes, onArrive });
  }

  stats(): LinkStats[] {
    return this.links.map(({ from, to, alphaS, bandwidthBytesPerS, busyS, bytes, messages }) => ({
      from,
      to,
      alphaS,
      bandwidthBytesPerS,
      busyS,
      bytes,
      messages,
    }));
  }

  /** The message has reached the start of hop `msg.k`: queue for that link, or arrive. */
  private hop(msg: InFlight): void {
    if (msg.k === msg.route.length) {
      msg.onArrive(this.engine.now);
      return;
    }
    const link = this.links[msg.route[msg.k]!]!;
    if (link.transmitting) link.queue.push(msg);
    else this.transmit(link, msg);
  }

  /** Put `msg` on the idle `link` now; when done, the link takes the next waiting message. */
  private transmit(link: LinkState, msg: InFlight): void {
    const duration = msg.bytes / link.bandwidthBytesPerS;
    const end = this.engine.now + duration;
    link.transmitting = true;
    link.busyS += duration;
    link.bytes += msg.bytes;
    link.messages++;
    this.engine.schedule(end, () => {
      this.engine.schedule(end + link.alphaS, () => {
        msg.k++;
        this.hop(msg);
      });
      this.next(link);
    });
  }

  private next(link: LinkState): void {
    if (link.head === link.queue.length) {
      link.transmitting = false;
      link.queue.length = 0;
      link.head = 0;
      return;
    }
    const msg = link.queue[link.head]!;
    link.head++;
    this.transmit(link, msg);
  }

  private checkRoute(route: readonly LinkId[]): void {
    for (let k = 0; k < route.length; k++) {
      const link = this.links[route[k]!];
      assert(link !== undefined, `route names unknown link ${route[k]}`);
      if (k > 0) assert(this.links[route[k - 1]!]!.to === link.from, `route breaks at hop ${k}`);
    }
  }
}

/** One number per ordered pair of nodes (node numbers below 2²⁶). */
function endsKey(from: number, to: number): number {
  assert(Number.isInteger(from) && Number.isInteger(to) && from >= 0 && to >= 0 && from < 2 ** 26 && to < 2 ** 26, `bad link ends ${from}, ${to}`);
  return from * 2 ** 26 + to;
}
