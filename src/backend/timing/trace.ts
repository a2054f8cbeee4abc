// A Chrome-trace / Perfetto JSON trace of an execution: one process per die traced (every die,
// or those asked for), one thread per engine (compute, DMA, NoP) and per link direction the die
// drives. Complete events ('X') carry microsecond timestamps; metadata events name the
// processes and threads. Opens in ui.perfetto.dev or chrome://tracing. A trace stops
// recording after MAX_EVENTS (and says so in its metadata) so that a large package cannot
// produce a file no viewer can open.

import type { Range } from '../program.js';
import type { TraceSink, TraceTrack } from './execute.js';

export const MAX_TRACE_EVENTS = 2_000_000;

interface TraceEvent {
  readonly name: string;
  readonly ph: 'X' | 'M';
  readonly pid: number;
  readonly tid: number;
  readonly ts?: number;
  readonly dur?: number;
  readonly cat?: string;
  readonly args: Record<string, string | number>;
}

export class ChromeTrace implements TraceSink {
  private readonly events: TraceEvent[] = [];
  private readonly tracks = new Map<string, number>();
  /** Per die, its link tracks so far. */
  private readonly linkTracks = new Map<number, number>();
  private dropped = 0;

  /** The dies traced (indices into the package's dies); absent: every die. */
  readonly onlyDies?: readonly number[];

  constructor(
    private readonly dies: readonly Range[],
    private readonly limit = MAX_TRACE_EVENTS,
    only?: readonly number[],
  ) {
    if (only !== undefined) this.onlyDies = [...new Set(only)].sort((a, b) => a - b);
  }

  span(die: number, track: TraceTrack, name: string, startS: number, endS: number, args: Record<string, string | number>): void {
    if (this.events.length >= this.limit) {
      this.dropped++;
      return;
    }
    this.events.push({ name, ph: 'X', cat: track.startsWith('link') ? 'link' : track, pid: die, tid: this.trackId(die, track), ts: startS * 1e6, dur: (endS - startS) * 1e6, args });
  }

  /** Spans not recorded because the trace reached its limit. */
  get truncated(): number {
    return this.dropped;
  }

  private trackId(die: number, track: string): number {
    const key = `${die}|${track}`;
    let id = this.tracks.get(key);
    if (id === undefined) {
      // Link tracks are numbered per die, in the order the die first drives them, so a die's
      // track ids do not depend on which other dies are traced.
      const links = this.linkTracks.get(die) ?? 0;
      id = TRACK_ORDER.indexOf(track) >= 0 ? TRACK_ORDER.indexOf(track) : 10 + links;
      if (id >= 10) this.linkTracks.set(die, links + 1);
      this.tracks.set(key, id);
    }
    return id;
  }

  /** The trace as one JSON object (sorted, so identical runs give identical files). */
  toJSON(): { traceEvents: TraceEvent[]; displayTimeUnit: string; metadata: Record<string, unknown> } {
    const meta: TraceEvent[] = [];
    const traced = new Set(this.onlyDies ?? this.dies.keys());
    this.dies.forEach((d, pid) => {
      if (!traced.has(pid)) return;
      meta.push({ name: 'process_name', ph: 'M', pid, tid: 0, args: { name: `die [${d[0]}, ${d[1]}]` } });
      meta.push({ name: 'process_sort_index', ph: 'M', pid, tid: 0, args: { sort_index: pid } });
    });
    for (const [key, tid] of [...this.tracks].sort((a, b) => (a[0] < b[0] ? -1 : 1))) {
      const [pid, track] = [Number(key.slice(0, key.indexOf('|'))), key.slice(key.indexOf('|') + 1)];
      meta.push({ name: 'thread_name', ph: 'M', pid, tid, args: { name: track } });
    }
    const spans = [...this.events].sort((a, b) => a.pid - b.pid || a.tid - b.tid || a.ts! - b.ts!);
    return { traceEvents: [...meta, ...spans], displayTimeUnit: 'ns', metadata: { generator: 'gyges', dropped_spans: this.dropped } };
  }
}

const TRACK_ORDER = ['compute', 'dma', 'nop'];
