// Per-pass goldens in the IR's own text form (STYLE 14-15): the tiny GPT on a 2×2 package,
// dumped after every pass of the default pipeline. Each golden is then checked on its own:
// parse the previous pass's text, run just this pass, and compare with this pass's text —
// so every pass works from printed IR, and its notes round-trip. `npm run test:update`
// regenerates the files; review them as a diff.

import { describe, expect, it } from 'vitest';
import { compile } from '../../src/compile.js';
import { parseModule } from '../../src/ir/parse.js';
import { printModule } from '../../src/ir/print.js';
import { verifyModule } from '../../src/ir/verify.js';
import { runPipeline } from '../../src/passes/manager.js';
import { PASSES } from '../../src/passes/index.js';
import { parsePipeline } from '../../src/passes/pipeline.js';
import { loadTarget } from '../../src/target/load.js';

const target = loadTarget('hecaton-2x2-standard');
const dumps: { pass: string; text: string }[] = [];
compile('models/tiny-gpt.gy', {
  hw: target,
  hooks: { verifyEach: true, afterPass: (m, r) => dumps.push({ pass: r.pass, text: printModule(m) }) },
});

describe('tiny-gpt through the default pipeline on hecaton-2x2-standard', () => {
  dumps.forEach(({ pass, text }, i) => {
    const file = `./golden/tiny-gpt.${String(i).padStart(2, '0')}-${pass}.gyir`;
    it(`${pass}: matches ${file}`, async () => {
      await expect(text).toMatchFileSnapshot(file);
    });
    if (i === 0) return;
    it(`${pass}: running it on the parsed output of ${dumps[i - 1]!.pass} gives the same text`, () => {
      const m = parseModule(dumps[i - 1]!.text, 'before.gyir');
      runPipeline(m, parsePipeline(pass, PASSES), { target, strategy: 'hecaton' });
      verifyModule(m, pass);
      expect(printModule(m)).toBe(text);
    });
  });
});
