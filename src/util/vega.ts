// Charts as SVG text: a Vega-Lite spec compiled to Vega and rendered headless (renderer `none`:
// no DOM, no canvas; text widths are estimated). Vega numbers the ids of gradients and clip
// paths with a counter that lives as long as the process, so the ids are renumbered from the
// chart's own prefix: the same spec then always gives the same SVG, and several charts can sit
// in one HTML page without one's `url(#…)` finding another's element.
// Used by the experiments' chart files and the HTML report's inline charts.

import * as vega from 'vega';
import { compile as compileVegaLite, type TopLevelSpec } from 'vega-lite';

export async function vegaLiteToSvg(spec: TopLevelSpec, idPrefix = 'chart'): Promise<string> {
  const view = new vega.View(vega.parse(compileVegaLite(spec).spec), { renderer: 'none' });
  try {
    return renumberIds(await view.toSVG(), idPrefix);
  } finally {
    view.finalize();
  }
}

/** Every `id` of `svg`, and every reference to it, renamed `PREFIX-N` in order of definition. */
export function renumberIds(svg: string, prefix: string): string {
  const names = new Map<string, string>();
  for (const m of svg.matchAll(/\sid="([^"]+)"/g)) if (!names.has(m[1]!)) names.set(m[1]!, `${prefix}-${names.size}`);
  return svg.replace(/(\sid="|url\(#|href="#)([^")]+)/g, (all, lead: string, id: string) => {
    const to = names.get(id);
    return to === undefined ? all : `${lead}${to}`;
  });
}
