#!/usr/bin/env node
// Entry point of the `gyges` command: the CLI lives in src/cli and is compiled to dist/.
import { main } from '../dist/src/cli/main.js';

// A reader that stops early (`gyges ... | head`) closes the pipe: that is not a failure of the
// command, so stop quietly instead of raising an unhandled EPIPE.
process.stdout.on('error', (e) => {
  if (e.code === 'EPIPE') process.exit(0);
  throw e;
});

process.exitCode = await main(process.argv.slice(2));
