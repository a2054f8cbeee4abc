// `gyges report` as a library call: collect the data (collect.ts), draw its charts (charts.ts,
// rendered to SVG headless) and write them into one self-contained HTML page (html.ts).

import { NO_PROGRESS, type Progress } from '../util/progress.js';
import { vegaLiteToSvg } from '../util/vega.js';
import { reportCharts } from './charts.js';
import { collectReport, COLLECT_STEPS, type ReportData, type ReportOptions } from './collect.js';
import { renderHtml } from './html.js';

export { DATA_ELEMENT_ID, SECTIONS } from './html.js';
export { REPORT_FORMAT, type ReportData, type ReportOptions } from './collect.js';

/** Steps reported to `progress` (after `start`): the strategies, the timeline and the charts. */
export const REPORT_STEPS = COLLECT_STEPS + 1;

export async function buildReport(model: string, opts: ReportOptions, progress: Progress = NO_PROGRESS): Promise<{ html: string; data: ReportData }> {
  const data = collectReport(model, opts, progress);
  const charts = reportCharts(data);
  const svgs: string[] = [];
  for (const c of charts) svgs.push(await vegaLiteToSvg(c.spec, c.name));
  progress.tick('charts');
  return { html: renderHtml(data, charts, svgs), data };
}
