// Embedding lookups: Gather(table, ids) along axis 0 of a 2-D weight. Token and token-type
// ids from the inputs become `embedding`; known ids 0..n−1 (position ids folded to a
// constant, or a slice of a stored arange) read rows k..k+n−1 of the table, which is a slice
// — as the model DSL writes position embeddings — reshaped to the lookup's shape. The Add of
// the embeddings stays an `add`.

import { intAttr } from '../attrs.js';
import { identity, withLeadingOnes } from '../layout.js';
import { matchOf, type Matcher } from '../match.js';

export const embedding: Matcher = (g, node) => {
  if (node.opType !== 'Gather' || (intAttr(node, 'axis') ?? 0) !== 0) return undefined;
  const [table, ids] = node.inputs as [string, string];
  const tdims = g.facts(table).dims;
  const idType = g.facts(ids).dtype;
  if (!g.fromWeight(table) || tdims.length !== 2 || g.fromWeight(ids) || !['i64', 'i32'].includes(idType)) return undefined;
  const out = node.outputs[0]!;
  return matchOf(g, 'embedding', node, [], [table, ids], (e) => {
    e.at(node);
    const w = e.tensor(table);
    const known = g.known(ids);
    const shape = g.facts(out).dims;
    const first = known ? arangeStart(known.data, tdims[0]!) : undefined;
    const n = known?.data.length ?? 0;
    // Positions 0..n−1 read as rows of the table; leading size-1 axes of the lookup stay implicit.
    if (known && first !== undefined && shape.slice(0, -2).every((d) => d === 1)) {
      const rows = e.op('slice', [w], { axes: [0], starts: [first], ends: [first + n] }, out);
      return withLeadingOnes(rows, shape.length - 2);
    }
    const idv = known ? e.constant({ ...known, data: known.data.map((v) => (v < 0 ? v + tdims[0]! : v)) }, `${out}.ids`) : e.tensor(ids);
    return identity(e.op('embedding', [idv, w], {}, out));
  });
};

/** k when the ids are k, k+1, ..., in row-major order within the table; else undefined. */
function arangeStart(ids: ArrayLike<number>, rows: number): number | undefined {
  const k = ids[0];
  if (k === undefined || k < 0) return undefined;
  for (let i = 0; i < ids.length; i++) if (ids[i] !== k + i) return undefined;
  return k + ids.length <= rows ? k : undefined;
}
