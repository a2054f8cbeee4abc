// The IR verifier: the invariants every stage must keep. Tests run it after every pass and
// it names the stage that broke an invariant (a broken invariant is a Gyges bug, so it is an
// internal error). Checked here:
//   - every op's operands are values of this module, defined before use (no cycles);
//   - operand counts, attributes and result types agree with the op table's inference;
//   - value names are unique; consts hold exactly numel(type) numbers;
//   - the module has outputs, all of them its own values.

import { resolveAttrs, formatAttr, OpError } from './attrs.js';
import { checkArity, opDef } from './ops.js';
import type { Module, Op } from './module.js';
import { formatType, numel, sameType } from './types.js';
import { InternalError } from '../diagnostics/diagnostic.js';

export class VerifyError extends InternalError {
  constructor(
    readonly stage: string,
    readonly problems: readonly string[],
  ) {
    super(`IR invalid after ${stage}: ${problems[0]}${problems.length > 1 ? ` (and ${problems.length - 1} more)` : ''}`);
  }
}

/** All invariant violations, empty when the module is valid. */
export function verifyProblems(m: Module): string[] {
  const problems: string[] = [];
  const names = new Set<string>();
  for (const v of m.values()) {
    if (names.has(v.name)) problems.push(`value name '${v.name}' is defined twice`);
    names.add(v.name);
    if (v.kind === 'const' && v.data?.length !== numel(v.type)) {
      problems.push(`const '${v.name}' holds ${v.data?.length ?? 0} numbers for type ${formatType(v.type)}`);
    }
  }
  let ops: readonly Op[] = [];
  try {
    ops = m.ops();
  } catch (e) {
    problems.push(e instanceof Error ? e.message : String(e));
  }
  const defined = new Set(m.declarations());
  for (const op of ops) {
    const where = `${op.kind} defining '${op.results[0]?.name ?? '?'}'`;
    for (const v of op.operands) {
      if (!m.hasValue(v)) problems.push(`${where}: operand '${v.name}' is not in the module`);
      else if (!defined.has(v)) problems.push(`${where}: operand '${v.name}' is used before it is defined`);
    }
    problems.push(...checkOp(op).map((p) => `${where}: ${p}`));
    op.results.forEach((r) => defined.add(r));
  }
  if (m.outputs.length === 0) problems.push('the module has no outputs');
  for (const v of m.outputs) if (!m.hasValue(v)) problems.push(`output '${v.name}' is not in the module`);
  return problems;
}

function checkOp(op: Op): string[] {
  const def = opDef(op.kind);
  try {
    checkArity(def, op.operands.length);
    const attrs = resolveAttrs(op.kind, def.attrs, op.attrs);
    for (const [k, v] of Object.entries(attrs)) {
      if (formatAttr(v) !== formatAttr(op.attrs[k]!)) return [`attribute ${k} is not in canonical form`];
    }
    const types = def.infer(op.operands.map((v) => v.type), attrs);
    if (types.length !== op.results.length) return [`has ${op.results.length} results, the op table infers ${types.length}`];
    return types.flatMap((t, i) =>
      sameType(t, op.results[i]!.type) ? [] : [`result ${i} is ${formatType(op.results[i]!.type)}, the op table infers ${formatType(t)}`],
    );
  } catch (e) {
    if (e instanceof OpError) return [e.message];
    throw e;
  }
}

/** Throw a VerifyError naming `stage` if the module breaks an invariant. */
export function verifyModule(m: Module, stage = 'construction'): void {
  const problems = verifyProblems(m);
  if (problems.length) throw new VerifyError(stage, problems);
}
