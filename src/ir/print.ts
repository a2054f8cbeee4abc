// The canonical text form of a module. Values are renumbered %0, %1, ... in definition order
// (inputs, params, consts, then op results in the module's topological order), attributes
// print in op-table order, numbers print as the shortest text that reads back exactly. The
// parser (parse.ts) reads this text back, and print(parse(print(m))) === print(m).
//
//   module "tiny" {
//     input %0 "ids" : i64[2, 32] loc("tiny.gy":9:1)
//     param %1 "tok_emb" : f32[256, 64] loc("tiny.gy":10:1)
//     %2 "x" = embedding(%0, %1) : f32[2, 32, 64] loc("tiny.gy":12:5)
//     %3 "layer.0.q", %4 "layer.0.k" = split(%2) {axis = -1, sizes = [32, 32]} : f32[2, 32, 32], f32[2, 32, 32] layer 0 loc("tiny.gy":14:3)
//     output %3
//   }
//
// Ops raised from an ONNX graph name their node instead of a line: `loc("gpt2.onnx" node "/h.0/MatMul")`.
//
// Passes annotate with notes: `note "minibatch.size" = 4` at module level, and
// `#{"fuse.group" = 2}` after an op's types. Notes print sorted by key.

import { formatAttr, type AttrValue } from './attrs.js';
import type { Module, Notes, Op, Value } from './module.js';
import { formatType } from './types.js';
import type { SourceLoc } from '../diagnostics/diagnostic.js';

export function printModule(m: Module): string {
  const ids = new Map<Value, number>();
  const ref = (v: Value): string => `%${ids.get(v)}`;
  const def = (v: Value): string => {
    ids.set(v, ids.size);
    return `${ref(v)} ${JSON.stringify(v.name)}`;
  };
  const lines: string[] = [`module ${JSON.stringify(m.name)} {`];
  for (const [k, v] of sortedEntries(m.notes)) lines.push(`  note ${JSON.stringify(k)} = ${formatAttr(v)}`);
  for (const v of m.inputs) lines.push(`  input ${def(v)} : ${formatType(v.type)}${locSuffix(v.loc)}`);
  for (const v of m.params) lines.push(`  param ${def(v)} : ${formatType(v.type)}${locSuffix(v.loc)}`);
  for (const v of m.states) lines.push(`  state ${def(v)} : ${formatType(v.type)}${locSuffix(v.loc)}`);
  for (const v of m.consts) {
    lines.push(`  const ${def(v)} : ${formatType(v.type)} = ${formatAttr(v.data ?? [])}${locSuffix(v.loc)}`);
  }
  for (const op of m.ops()) lines.push(`  ${printOp(op, def, ref)}`);
  lines.push(`  output ${m.outputs.map(ref).join(', ')}`);
  lines.push('}');
  return lines.join('\n') + '\n';
}

function printOp(op: Op, def: (v: Value) => string, ref: (v: Value) => string): string {
  const operands = op.operands.map(ref).join(', ');
  const results = op.results.map(def).join(', ');
  const attrs = Object.entries(op.attrs);
  const attrText = attrs.length ? ` {${attrs.map(([k, v]) => `${k} = ${formatAttr(v)}`).join(', ')}}` : '';
  const types = op.results.map((r) => formatType(r.type)).join(', ');
  const layer = op.layer !== undefined ? ` layer ${op.layer}` : '';
  const notes = op.notes ? sortedEntries(op.notes) : [];
  const noteText = notes.length ? ` #{${notes.map(([k, v]) => `${JSON.stringify(k)} = ${formatAttr(v)}`).join(', ')}}` : '';
  return `${results} = ${op.kind}(${operands})${attrText} : ${types}${layer}${noteText}${locSuffix(op.loc)}`;
}

/** Notes print sorted by key, so the order passes added them in does not matter. */
function sortedEntries(notes: Notes): [string, AttrValue][] {
  return Object.entries(notes).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
}

/** ` loc("file":line:col)`; a graph node's location is ` loc("file" node "name")` (no lines). */
function locSuffix(loc: SourceLoc | undefined): string {
  if (!loc) return '';
  const at = loc.node === undefined || loc.line > 0 ? `:${loc.line}:${loc.col}` : '';
  const node = loc.node === undefined ? '' : ` node ${JSON.stringify(loc.node)}`;
  return ` loc(${JSON.stringify(loc.file)}${at}${node})`;
}
