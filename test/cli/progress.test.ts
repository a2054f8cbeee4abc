// Progress on long commands: the library reports one step per pass and per strategy, and the
// command line draws a bar only on a terminal (nothing reaches a pipe or a file).

import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { terminalProgress } from '../../src/cli/progress.js';
import { main } from '../../src/cli/main.js';
import { compile } from '../../src/compile.js';
import { compareStrategies } from '../../src/backend/timing/compare.js';
import { NO_PROGRESS, type Progress } from '../../src/util/progress.js';

/** A Progress that writes down every call. */
function recorder(): Progress & { calls: string[] } {
  const calls: string[] = [];
  return {
    calls,
    start: (n) => calls.push(`start ${n}`),
    add: (n) => calls.push(`add ${n}`),
    tick: (label) => calls.push(`tick ${label}`),
    stop: () => calls.push('stop'),
  };
}

function fakeStream(tty: boolean): { stream: NodeJS.WriteStream; text: () => string } {
  const s = new PassThrough();
  let text = '';
  s.on('data', (c: Buffer) => (text += c.toString('utf8')));
  Object.assign(s, { isTTY: tty, columns: 100 });
  return { stream: s as unknown as NodeJS.WriteStream, text: () => text };
}

describe('progress', () => {
  it('compile announces the passes that will run and ticks after each', () => {
    const p = recorder();
    compile('models/tiny-gpt.gy', { hw: 'hecaton-2x2-standard', progress: p });
    expect(p.calls).toEqual(['add 7', 'tick qkv', 'tick train', 'tick fuse', 'tick minibatch', 'tick tile2d', 'tick collectives', 'tick schedule']);
    const q = recorder();
    compile('models/tiny-gpt.gy', { hw: 'hecaton-2x2-standard', progress: q, hooks: { stopAfter: 'tile2d' } });
    expect(q.calls).toEqual(['add 5', 'tick qkv', 'tick train', 'tick fuse', 'tick minibatch', 'tick tile2d']);
  });

  it('compare ticks once per strategy, a strategy that cannot run included', () => {
    const p = recorder();
    const runs = compareStrategies('models/tiny-gpt.gy', { hw: 'hecaton-2x4-standard' }, { progress: p });
    expect(p.calls).toEqual(['tick hecaton', 'tick megatron', 'tick torus', 'tick optimus']);
    expect(runs.find((r) => r.strategy === 'optimus')!.error).toMatch(/GY3003.*square/);
  });

  it('the command line brackets its work with start and stop, even when it fails', async () => {
    const bars: Record<string, string[]> = {};
    const io = {
      out: () => {},
      err: () => {},
      progress: (name: string) => {
        const r = recorder();
        bars[name] = r.calls;
        return r;
      },
    };
    expect(await main(['simulate', 'models/tiny-gpt.gy', '--hw', 'hecaton-2x2-standard'], io)).toBe(0);
    expect(bars.simulate).toEqual(['start 1', 'add 7', 'tick qkv', 'tick train', 'tick fuse', 'tick minibatch', 'tick tile2d', 'tick collectives', 'tick schedule', 'tick simulate', 'stop']);
    expect(await main(['compare', 'models/missing.gy', '--hw', 'hecaton-2x2-standard'], io)).toBe(1);
    expect(bars.compare).toEqual(['start 4', 'stop']);
  });

  it('draws a bar on a terminal and nothing on a pipe', () => {
    const pipe = fakeStream(false);
    const none = terminalProgress('work', pipe.stream);
    expect(none).toBe(NO_PROGRESS);
    none.start(3);
    none.stop();
    expect(pipe.text()).toBe('');
    const tty = fakeStream(true);
    const bar = terminalProgress('work', tty.stream);
    bar.start(2);
    expect(tty.text()).toContain('work [');
    expect(tty.text()).toContain('0/2');
    bar.add(1);
    bar.tick('a');
    bar.stop();
    // The cursor, hidden while the bar runs, is shown again.
    expect(tty.text()).toContain('\x1B[?25h');
  });
});
