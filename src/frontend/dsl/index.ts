// The model DSL frontend's entry point: text of a `.gy` file in, IR Module out. Parsing
// (lexer.ts, parser.ts) builds a syntax tree, lowering (lower.ts) evaluates constants,
// unrolls `repeat` and builds the Module. Every problem with the input is a GygesError.

import { errorAt } from '../../diagnostics/diagnostic.js';
import type { Module } from '../../ir/module.js';
import { lowerProgram } from './lower.js';
import { parseProgram } from './parser.js';

/**
 * Parse and lower a model DSL file. `file` is used verbatim in error locations and, without
 * a `model` statement, names the module (its base name without extension). `overrides`
 * replace the values of top-level `let` constants (`--batch`, `--seq`, `--set`).
 */
export function parseDsl(text: string, file: string, overrides: Readonly<Record<string, number>> = {}): Module {
  try {
    return lowerProgram(parseProgram(text, file), file, overrides);
  } catch (e) {
    // Pathological nesting, e.g. thousands of '(' in a row, exhausts the recursive descent.
    if (e instanceof RangeError && /call stack/i.test(e.message)) {
      throw errorAt({ file, line: 1, col: 1 }, 'GY1002', 'the file nests expressions too deeply to parse');
    }
    throw e;
  }
}
