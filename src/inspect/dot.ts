// The IR as a Graphviz graph (`gyges compile --emit dot`). One box per op (`o<id>`), labelled
// with its kind, result names and source location and coloured by training phase; one ellipse
// per input, parameter, optimizer state or constant an op reads (`v<id>`); an edge from each
// producer to each op that reads it, labelled with the values it carries. Ops of one fusion
// group (`fuse.group`) sit in a subgraph `cluster_g<N>`, which Graphviz draws as a box; so does
// a declared value read only inside one group. The graph is a compound graphlib Graph written
// by @dagrejs/graphlib-dot, which reads the text back into the same structure.

import { Graph } from '@dagrejs/graphlib';
import dot from '@dagrejs/graphlib-dot';
import { formatLoc } from '../diagnostics/diagnostic.js';
import type { Module, Op, Value } from '../ir/module.js';
import { formatType } from '../ir/types.js';

type Attrs = Record<string, string>;

const PHASE_COLOUR: Record<string, string> = { fwd: '#dbe9f6', bwd: '#f8dede', update: '#def2de' };
const VALUE_COLOUR: Record<string, string> = { input: '#fff2cc', param: '#eeeeee', state: '#e8e0f0', const: '#ffffff' };

export const opNodeId = (op: Op): string => `o${op.id}`;
export const valueNodeId = (v: Value): string => `v${v.id}`;
export const clusterId = (group: number | string): string => `cluster_g${group}`;

/** DOT text may not end a quoted string with a backslash or hold raw line breaks: keep labels plain. */
function plain(text: string): string {
  return text.replace(/\\/g, '/').replace(/[\r\n]+/g, ' ');
}

/** Label lines joined by DOT's centred line break (the two characters `\n`). */
function lines(...parts: (string | undefined)[]): string {
  return parts.filter((p): p is string => !!p).map(plain).join('\\n');
}

function groupOf(op: Op): string | undefined {
  const g = op.notes?.['fuse.group'];
  return g === undefined ? undefined : String(g);
}

/** The module as a compound graphlib graph, ready for `dot.write`. */
export function moduleGraph(m: Module): Graph<Attrs, Attrs, Attrs> {
  const g = new Graph<Attrs, Attrs, Attrs>({ directed: true, compound: true, multigraph: false });
  g.setGraph({ label: plain(`${m.name}`), labelloc: 't', rankdir: 'TB', fontname: 'Helvetica' });
  const ops = m.ops();
  const outputs = new Set(m.outputs);

  // Clusters first, in order of first appearance, so the text lists them in program order;
  // each says which Transformer blocks (`fuse.block`) its ops belong to.
  const blocks = new Map<string, Set<string>>();
  for (const op of ops) {
    const grp = groupOf(op);
    if (grp === undefined) continue;
    const s = blocks.get(grp) ?? new Set();
    const block = op.notes?.['fuse.block'];
    if (block !== undefined) s.add(String(block));
    blocks.set(grp, s);
  }
  for (const [grp, kinds] of blocks) {
    g.setNode(clusterId(grp), { label: plain(`fusion group ${grp}${kinds.size ? ` (${[...kinds].join(', ')})` : ''}`), style: 'rounded', color: '#888888', fontname: 'Helvetica' });
  }

  // Declared values an op reads, placed in a cluster when all their readers share one.
  const declared = new Map<Value, Set<string | undefined>>();
  for (const op of ops) {
    for (const v of op.operands) {
      if (v.def) continue;
      const s = declared.get(v) ?? new Set();
      s.add(groupOf(op));
      declared.set(v, s);
    }
  }
  for (const [v, groups] of declared) {
    const id = valueNodeId(v);
    g.setNode(id, {
      label: lines(`${v.kind} ${v.name}`, formatType(v.type)),
      shape: 'ellipse',
      style: 'filled',
      fillcolor: VALUE_COLOUR[v.kind] ?? '#ffffff',
      fontname: 'Helvetica',
      class: `value ${v.kind}`,
    });
    const only = groups.size === 1 ? [...groups][0] : undefined;
    if (only !== undefined) g.setParent(id, clusterId(only));
  }

  for (const op of ops) {
    const id = opNodeId(op);
    const phase = op.notes?.['train.phase'];
    const isOutput = op.results.some((r) => outputs.has(r));
    g.setNode(id, {
      label: lines(
        op.layer === undefined ? op.kind : `${op.kind}  (layer ${op.layer})`,
        op.results.map((r) => `${r.name}: ${formatType(r.type)}`).join(', '),
        op.loc ? formatLoc(op.loc) : undefined,
        isOutput ? 'model output' : undefined,
      ),
      shape: 'box',
      style: 'filled',
      fillcolor: PHASE_COLOUR[String(phase)] ?? '#ffffff',
      peripheries: isOutput ? '2' : '1',
      fontname: 'Helvetica',
      class: `op ${op.kind}`,
    });
    const grp = groupOf(op);
    if (grp !== undefined) g.setParent(id, clusterId(grp));
  }

  // Edges: producer -> reader, one per pair, labelled with every value it carries (operand order).
  for (const op of ops) {
    const carried = new Map<string, string[]>();
    for (const v of op.operands) {
      const from = v.def ? opNodeId(v.def) : valueNodeId(v);
      const names = carried.get(from) ?? [];
      if (!names.includes(v.name)) names.push(v.name);
      carried.set(from, names);
    }
    for (const [from, names] of carried) g.setEdge(from, opNodeId(op), { label: plain(names.join(', ')), fontsize: '10', fontname: 'Helvetica' });
  }
  return g;
}

/** The module in Graphviz DOT (`dot -Tsvg` draws it). */
export function moduleToDot(m: Module): string {
  return dot.write(moduleGraph(m));
}
