// The progress bar of long commands (experiment, report, compare, simulate, compile): drawn on
// stderr with cli-progress when stderr is a terminal, and nothing at all otherwise (pipes, CI,
// tests), so output meant for files or other programs never holds escape codes. The bar is
// cleared when the work ends, leaving the terminal as the command's own output left it.

import cliProgress from 'cli-progress';
import { NO_PROGRESS, type Progress } from '../util/progress.js';

/** A bar named `name` on `stream` when it is a terminal; NO_PROGRESS otherwise. */
export function terminalProgress(name: string, stream: NodeJS.WriteStream = process.stderr): Progress {
  if (!stream.isTTY) return NO_PROGRESS;
  const bar = new cliProgress.SingleBar(
    { stream, format: `${name} [{bar}] {value}/{total} {label}`, hideCursor: true, clearOnComplete: true, barsize: 24 },
    cliProgress.Presets.shades_classic,
  );
  let done = 0;
  let total = 0;
  let running = false;
  return {
    start: (n) => {
      total = n;
      done = 0;
      running = true;
      bar.start(total, 0, { label: '' });
    },
    add: (n) => {
      total += n;
      if (running) bar.setTotal(total);
    },
    tick: (label) => {
      if (running) bar.update(++done, { label });
    },
    stop: () => {
      if (running) bar.stop();
      running = false;
    },
  };
}
