// Pipelines are data with a text form: `train{optimizer=adam},fuse,minibatch,tile2d`. A
// pipeline parses from that text, prints back to the same text (options in the order the
// pass declares them, defaults included), and is checked against the registry: unknown
// passes and options are user errors that list what exists.

import { formatAttr, type AttrValue } from '../ir/attrs.js';
import { error } from '../diagnostics/diagnostic.js';
import { closest } from '../util/suggest.js';
import type { Pass, PassOptions } from './pass.js';

export interface PipelineStep {
  readonly pass: Pass;
  readonly options: PassOptions;
}

/** Parse `name{key=value,...},name,...` against the registered passes. */
export function parsePipeline(text: string, registry: readonly Pass[]): PipelineStep[] {
  const steps: PipelineStep[] = [];
  const re = /\s*([A-Za-z0-9_-]+)\s*(?:\{([^{}]*)\})?\s*(?:,|$)/y;
  let pos = 0;
  while (pos < text.length) {
    re.lastIndex = pos;
    const m = re.exec(text);
    if (!m || re.lastIndex === pos) throw error('GY9001', `pipeline '${text}': cannot read it from column ${pos + 1}`);
    pos = re.lastIndex;
    const pass = registry.find((p) => p.name === m[1]);
    if (!pass) {
      const guess = closest(m[1]!, registry.map((p) => p.name), 3);
      throw error('GY9001', `pipeline: unknown pass '${m[1]}'${guess ? ` (did you mean '${guess}'?)` : ''}; passes are ${registry.map((p) => p.name).join(', ')}`);
    }
    steps.push({ pass, options: parseOptions(pass, m[2] ?? '') });
  }
  return steps;
}

function parseOptions(pass: Pass, text: string): PassOptions {
  const given: Record<string, string> = {};
  for (const item of text.split(',').map((s) => s.trim()).filter(Boolean)) {
    const [k, v, ...rest] = item.split('=').map((s) => s.trim());
    if (!k || v === undefined || rest.length) throw error('GY9001', `pipeline: option '${item}' of ${pass.name} must be NAME=VALUE`);
    given[k] = v;
  }
  return resolvePassOptions(pass, given);
}

/** Check option text against the pass's specs and fill defaults (spec order). */
export function resolvePassOptions(pass: Pass, given: Readonly<Record<string, string>>): PassOptions {
  for (const k of Object.keys(given)) {
    if (!(k in pass.options)) {
      const known = Object.keys(pass.options);
      throw error('GY9001', `pass ${pass.name} has no option '${k}'${known.length ? ` (options: ${known.join(', ')})` : ''}`);
    }
  }
  const out: Record<string, AttrValue> = {};
  for (const [k, spec] of Object.entries(pass.options)) {
    const raw = given[k];
    if (raw === undefined) {
      out[k] = spec.default;
      continue;
    }
    const bad = (want: string): never => {
      throw error('GY9001', `option ${k} of ${pass.name} must be ${want}, got '${raw}'`);
    };
    switch (spec.kind) {
      case 'int':
        if (!/^-?\d+$/.test(raw)) bad('a whole number');
        out[k] = Number(raw);
        break;
      case 'float':
        if (!Number.isFinite(Number(raw)) || raw === '') bad('a number');
        out[k] = Number(raw);
        break;
      case 'bool':
        if (raw !== 'true' && raw !== 'false') bad('true or false');
        out[k] = raw === 'true';
        break;
      case 'string':
        if (spec.oneOf && !spec.oneOf.includes(raw)) bad(`one of ${spec.oneOf.join(', ')}`);
        out[k] = raw;
        break;
      case 'ints':
        if (!/^\d+(x\d+)*$/.test(raw)) bad('whole numbers joined by x, like 4x4');
        out[k] = raw.split('x').map(Number);
        break;
    }
  }
  return out;
}

/** The canonical text of a pipeline; parsePipeline(printPipeline(p)) prints the same. */
export function printPipeline(steps: readonly PipelineStep[]): string {
  return steps
    .map(({ pass, options }) => {
      const opts = Object.entries(options).map(([k, v]) => `${k}=${Array.isArray(v) ? v.join('x') : typeof v === 'string' ? v : formatAttr(v)}`);
      return opts.length ? `${pass.name}{${opts.join(',')}}` : pass.name;
    })
    .join(',');
}
