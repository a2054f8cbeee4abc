#!/usr/bin/env node
// Entry point of the `gyges` command: the CLI lives in src/cli and is compiled to dist/.
import { main } from '../dist/src/cli/main.js';

process.exitCode = await main(process.argv.slice(2));
