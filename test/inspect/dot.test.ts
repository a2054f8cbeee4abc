// `gyges compile --emit dot`: the IR graph in Graphviz DOT. The text must parse back with the
// DOT library that wrote it, hold one node per op (plus the declared values ops read), and one
// cluster per fusion group holding exactly that group's ops.

import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import dot from '@dagrejs/graphlib-dot';
import { describe, expect, it } from 'vitest';
import { main } from '../../src/cli/main.js';
import { compile } from '../../src/compile.js';
import type { Module } from '../../src/ir/module.js';
import { clusterId, moduleToDot, opNodeId } from '../../src/inspect/dot.js';

async function run(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await main(argv, { out: (t) => (out += t), err: (t) => (err += t) });
  return { code, out, err };
}

const MODEL = 'models/tiny-gpt.gy';
const HW = 'hecaton-2x2-standard';
// One fusion unit per group, so there are several clusters to check.
const PIPELINE = 'train,fuse{fusion=none}';

function checkGraph(text: string, m: Module): void {
  const g = dot.read(text);
  const ops = m.ops();
  const opNodes = g.nodes().filter((n) => (g.node(n)?.class ?? '').startsWith('op '));
  expect(opNodes.length).toBe(ops.length);
  expect(new Set(opNodes)).toEqual(new Set(ops.map(opNodeId)));
  for (const op of ops) expect(g.node(opNodeId(op))!.class).toBe(`op ${op.kind}`);

  const groups = new Set(ops.map((op) => String(op.notes!['fuse.group'])));
  expect(groups.size).toBeGreaterThan(1);
  const clusters = g.nodes().filter((n) => n.startsWith('cluster_'));
  expect(new Set(clusters)).toEqual(new Set([...groups].map(clusterId)));
  for (const c of clusters) expect(g.node(c)!.label).toMatch(/^fusion group \d+/);
  for (const op of ops) expect(g.parent(opNodeId(op))).toBe(clusterId(String(op.notes!['fuse.group'])));

  // Every operand is an edge into its op, from its producer or its declared value's node.
  for (const op of ops) {
    for (const v of op.operands) expect(g.hasEdge(v.def ? opNodeId(v.def) : `v${v.id}`, opNodeId(op))).toBe(true);
  }
}

describe('gyges compile --emit dot', () => {
  it('prints DOT that parses back with one node per op and a cluster per fusion group', async () => {
    const r = await run('compile', MODEL, '--hw', HW, '--pipeline', PIPELINE, '--emit', 'dot');
    expect(r.code).toBe(0);
    expect(r.err).toBe('');
    expect(r.out).toMatch(/^strict digraph \{/);
    checkGraph(r.out, compile(MODEL, { hw: HW, pipeline: PIPELINE }).module);
  });

  it('shows the graph where --stop-after ends the default pipeline, and writes it to -o FILE', async () => {
    const file = join(mkdtempSync(join(tmpdir(), 'gyges-dot-')), 'tiny.dot');
    const r = await run('compile', MODEL, '--hw', HW, '--stop-after', 'fuse', '--emit', 'dot', '-o', file);
    expect(r.code).toBe(0);
    expect(r.out).toContain('fuse:'); // the usual summary goes to stdout
    const text = readFileSync(file, 'utf8');
    const m = compile(MODEL, { hw: HW, hooks: { stopAfter: 'fuse' } }).module;
    expect(text).toBe(moduleToDot(m));
    const g = dot.read(text);
    expect(g.nodes().filter((n) => /^o\d+$/.test(n)).length).toBe(m.ops().length);
    // Training adds backward ops, coloured apart from the forward ones.
    const bwd = m.ops().find((op) => op.notes?.['train.phase'] === 'bwd')!;
    expect(g.node(opNodeId(bwd))!.fillcolor).not.toBe(g.node(opNodeId(m.ops()[0]!))!.fillcolor);
  });

  it('names the source location of each op in its label', async () => {
    const r = await run('compile', MODEL, '--hw', HW, '--pipeline', '', '--emit', 'dot');
    const g = dot.read(r.out);
    const labels = g.nodes().filter((n) => /^o\d+$/.test(n)).map((n) => g.node(n)!.label!);
    expect(labels.every((l) => /models\/tiny-gpt\.gy:\d+:\d+/.test(l))).toBe(true);
  });

  it('refuses to mix DOT with printed IR on stdout', async () => {
    const r = await run('compile', MODEL, '--hw', HW, '--pipeline', '', '--emit', 'dot', '--print-ir');
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/^error GY9001: --emit dot/);
    const bad = await run('compile', MODEL, '--hw', HW, '--emit', 'svg');
    expect(bad.code).toBe(1);
  });
});
