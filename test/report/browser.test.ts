// The report in a real browser (issue 9's acceptance): headless Chromium, driven by
// playwright-core, opens a generated report from disk with no console errors and no network
// requests, finds every chart drawn (SVG with marks, laid out at a size), reads the embedded
// data, and takes a screenshot that is decoded and checked not to be blank.
//
// Chromium is Debian's package (/usr/bin/chromium, or CHROMIUM_PATH). Without it the test is
// skipped with its reason, except in CI (CI set), where .ci/run installs it and a missing
// browser is a failure.

import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { chromium } from 'playwright-core';
import { PNG } from 'pngjs';
import { describe, expect, it } from 'vitest';
import { main } from '../../src/cli/main.js';
import { DATA_ELEMENT_ID } from '../../src/report/index.js';
import { embeddedData } from '../support/report.js';

const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
const IN_CI = process.env.CI !== undefined && process.env.CI !== '' && process.env.CI !== 'false';

/** Distinct colours, and the share of pixels that differ from the top-left (background) one. */
function pixels(png: PNG): { colours: number; drawn: number } {
  const d = png.data;
  const seen = new Set<number>();
  const bg = d.readUInt32BE(0);
  let drawn = 0;
  for (let k = 0; k < d.length; k += 4) {
    const v = d.readUInt32BE(k);
    seen.add(v);
    if (v !== bg) drawn++;
  }
  return { colours: seen.size, drawn: drawn / (png.width * png.height) };
}

describe('the report in headless Chromium', () => {
  it('renders every chart with no console errors and no network requests, and is not blank', async (ctx) => {
    if (!existsSync(CHROMIUM)) {
      const reason = `no Chromium at ${CHROMIUM} (install Debian's chromium or set CHROMIUM_PATH)`;
      if (IN_CI) throw new Error(`${reason}: CI must run the browser test (.ci/run installs it)`);
      console.warn(`browser test skipped: ${reason}`);
      ctx.skip(reason);
    }
    const dir = mkdtempSync(join(tmpdir(), 'gyges-browser-'));
    const file = join(dir, 'report.html');
    let err = '';
    const code = await main(['report', 'models/tiny-gpt.gy', '--hw', 'hecaton-2x2-standard', '--batch', '8', '--pipeline', 'train,fuse,minibatch{size=2},tile2d,collectives,schedule', '-o', file], { out: () => {}, err: (t) => (err += t) });
    expect(err).toBe('');
    expect(code).toBe(0);
    const data = embeddedData(readFileSync(file, 'utf8'));

    const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true });
    try {
      const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
      const problems: string[] = [];
      const requests: string[] = [];
      page.on('console', (m) => {
        if (m.type() === 'error' || m.type() === 'warning') problems.push(`console ${m.type()}: ${m.text()}`);
      });
      page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
      page.on('requestfailed', (r) => problems.push(`request failed: ${r.url()}`));
      page.on('request', (r) => requests.push(r.url()));
      const url = pathToFileURL(file).href;
      await page.goto(url, { waitUntil: 'load' });

      const charts = await page.$$eval('figure.chart', (figs) =>
        figs.map((f) => {
          const svg = f.querySelector('svg');
          const box = svg?.getBoundingClientRect();
          return {
            name: f.getAttribute('data-chart'),
            marks: svg ? svg.querySelectorAll('g[class*="mark-"] path, g[class*="mark-"] rect, g[class*="mark-"] text').length : 0,
            width: box?.width ?? 0,
            height: box?.height ?? 0,
          };
        }),
      );
      expect(charts.map((c) => c.name)).toEqual(['strategies', 'blocks-latency', 'blocks-energy', 'layers', 'sram', 'links', 'collectives', 'timeline']);
      for (const c of charts) {
        expect(c.marks, c.name!).toBeGreaterThan(4);
        expect(c.width, c.name!).toBeGreaterThan(100);
        expect(c.height, c.name!).toBeGreaterThan(50);
      }
      // The timeline draws a bar per span it was given.
      const bars = await page.$$eval('#chart-timeline g.mark-rect path', (ps) => ps.length);
      expect(bars).toBe(data.timeline!.spans.length);
      // The page reads back the data it embeds.
      const inPage = await page.$eval(`#${DATA_ELEMENT_ID}`, (s) => JSON.parse(s.textContent ?? 'null'));
      expect(inPage).toEqual(data);

      const shot = join(dir, 'report.png');
      await page.screenshot({ path: shot, fullPage: true });
      ctx.annotate(`screenshot: ${shot}`);
      const png = PNG.sync.read(readFileSync(shot));
      expect(png.width).toBe(1280);
      expect(png.height).toBeGreaterThan(2000);
      const { colours, drawn } = pixels(png);
      expect(colours).toBeGreaterThan(100);
      expect(drawn).toBeGreaterThan(0.05);

      expect(problems).toEqual([]);
      expect(requests).toEqual([url]);
    } finally {
      await browser.close();
    }
  }, 120_000);
});
