// Lowering of a DSL syntax tree to the IR: evaluates constant expressions, unrolls `repeat`
// by walking its body once per iteration (never re-parsing), resolves names through nested
// scopes, and builds the Module with `Module.addOp`, which checks operands and attributes
// and infers every shape from the op table. Scoping and IR naming follow docs/dsl.md: a body
// rebinding an outer name carries it from iteration to iteration, names first bound in a body
// live for one iteration, and values made in iteration i are named `layer.<i>.<name>`.

import { basename, extname } from 'node:path';
import { assert, assertNever, errorAt, GygesError, type SourceLoc } from '../../diagnostics/diagnostic.js';
import { formatNumber, OpError, resolveAttrs, type AttrKind, type AttrValue, type Attrs } from '../../ir/attrs.js';
import { Module, type Value } from '../../ir/module.js';
import { checkArity, isOpKind, opDef, OPS, type OpKind } from '../../ir/ops.js';
import { DTYPES, isDType, type TensorType } from '../../ir/types.js';
import { closest } from '../../util/suggest.js';
import type { BinaryExpr, BindStmt, CallExpr, DeclStmt, Expr, Ident, LetStmt, NameExpr, OutputStmt, Program, RepeatStmt, Stmt, TypeExpr } from './ast.js';

/** Guards against a runaway count (`repeat 1e9`) exhausting memory instead of failing. */
const MAX_REPEAT = 100_000;

/** Build the IR of a parsed DSL file; `overrides` replace top-level constants by name. */
export function lowerProgram(program: Program, file: string, overrides: Readonly<Record<string, number>>): Module {
  const model = program.statements.find((s) => s.kind === 'model');
  const module = new Module(model?.name ?? basename(file, extname(file)));
  const lowerer = new Lowerer(module, checkOverrides(program, overrides));
  lowerer.block(program.statements, new Scope(undefined));
  lowerer.finish(program.end);
  return module;
}

/** The overrides as a map, after checking that each names a top-level `let` (GY2018). */
function checkOverrides(program: Program, overrides: Readonly<Record<string, number>>): ReadonlyMap<string, number> {
  const declared = new Set(program.statements.flatMap((s) => (s.kind === 'let' ? [s.name.name] : [])));
  for (const name of Object.keys(overrides)) {
    if (!declared.has(name)) throw new GygesError('GY2018', `--set ${name}: the model declares no constant '${name}'`);
  }
  return new Map(Object.entries(overrides));
}

// -- scopes -------------------------------------------------------------------------------

type Binding =
  | { readonly kind: 'const'; readonly value: number; readonly loc: SourceLoc }
  | { readonly kind: 'tensor'; readonly value: Value; readonly loc: SourceLoc };

/** The names of the top level, or of one iteration of a `repeat` body. */
class Scope {
  private readonly names = new Map<string, Binding>();

  constructor(readonly parent: Scope | undefined) {}

  /** The binding of `name` in this scope or the nearest enclosing one. */
  lookup(name: string): Binding | undefined {
    return this.owner(name)?.names.get(name);
  }

  /** The innermost scope that binds `name`. */
  owner(name: string): Scope | undefined {
    for (let s: Scope | undefined = this; s; s = s.parent) if (s.names.has(name)) return s;
    return undefined;
  }

  /** The binding of `name` in this scope only. */
  own(name: string): Binding | undefined {
    return this.names.get(name);
  }

  set(name: string, b: Binding): void {
    this.names.set(name, b);
  }

  /** Every visible name, for "did you mean" suggestions. */
  visible(): string[] {
    const out: string[] = [];
    for (let s: Scope | undefined = this; s; s = s.parent) out.push(...s.names.keys());
    return out;
  }
}

// -- the walk -----------------------------------------------------------------------------

class Lowerer {
  private readonly outputs: Value[] = [];
  /** The next layer index handed to an outermost `repeat` iteration. */
  private nextLayer = 0;
  /** The layer being lowered: the outermost enclosing iteration, undefined at top level. */
  private layer: number | undefined;

  constructor(
    private readonly module: Module,
    private readonly overrides: ReadonlyMap<string, number>,
  ) {}

  block(statements: readonly Stmt[], scope: Scope): void {
    for (const s of statements) this.statement(s, scope);
  }

  /** Set the outputs; a model without any is GY2016, reported at the end of the file. */
  finish(end: SourceLoc): void {
    if (this.outputs.length === 0) {
      throw errorAt(end, 'GY2016', "the model has no outputs: add 'output NAME' for the values it computes");
    }
    this.module.setOutputs(this.outputs);
  }

  private statement(s: Stmt, scope: Scope): void {
    switch (s.kind) {
      case 'model':
        return; // read by lowerProgram
      case 'let':
        return this.let(s, scope);
      case 'input':
      case 'param':
        return this.decl(s, scope);
      case 'bind':
        return this.bind(s, scope);
      case 'repeat':
        return this.repeat(s, scope);
      case 'output':
        return this.output(s, scope);
      default:
        return assertNever(s);
    }
  }

  private let(s: LetStmt, scope: Scope): void {
    declareFree(scope, s.name);
    const override = scope.parent === undefined ? this.overrides.get(s.name.name) : undefined;
    const value = override ?? this.number(s.value, scope);
    scope.set(s.name.name, { kind: 'const', value, loc: s.name.loc });
  }

  private decl(s: DeclStmt, scope: Scope): void {
    declareFree(scope, s.name);
    const type = this.type(s.type, scope, s.name.name);
    const name = this.irName(s.name.name);
    const value = s.kind === 'input' ? this.module.addInput(name, type, s.name.loc) : this.module.addParam(name, type, s.name.loc);
    scope.set(s.name.name, { kind: 'tensor', value, loc: s.name.loc });
  }

  /** `A, B = EXPR`: an outer tensor name is updated where it lives (loop-carried). */
  private bind(s: BindStmt, scope: Scope): void {
    checkTargets(s.targets, scope);
    const values = this.bindingValues(s, scope);
    s.targets.forEach((t, i) => {
      const where = scope.owner(t.name) ?? scope;
      where.set(t.name, { kind: 'tensor', value: values[i]!, loc: t.loc });
    });
  }

  private bindingValues(s: BindStmt, scope: Scope): Value[] {
    const e = s.value;
    if (e.kind === 'call') return this.call(e, scope, s.targets.map((t) => this.irName(t.name)));
    if (e.kind === 'name') {
      const v = this.tensorName(e, scope);
      if (s.targets.length !== 1) throw errorAt(e.loc, 'GY2015', `'${e.name}' is one tensor, but ${s.targets.length} names are bound`);
      return [v];
    }
    throw errorAt(e.loc, 'GY2012', `the right side of '=' must be an op call or a tensor, not ${describe(e)}; use 'let' for constants`);
  }

  private repeat(s: RepeatStmt, scope: Scope): void {
    const n = this.number(s.count, scope);
    if (!Number.isInteger(n) || n < 1) {
      throw errorAt(s.count.loc, 'GY2009', `repeat count must be a whole number of at least 1, got ${formatNumber(n)}`);
    }
    if (n > MAX_REPEAT) throw errorAt(s.count.loc, 'GY2009', `repeat count ${n} is more than the limit of ${MAX_REPEAT}`);
    const outer = this.layer;
    try {
      for (let i = 0; i < n; i++) {
        this.layer = outer ?? this.nextLayer++;
        this.block(s.body, new Scope(scope));
      }
    } finally {
      this.layer = outer;
    }
  }

  private output(s: OutputStmt, scope: Scope): void {
    for (const name of s.names) {
      const b = scope.lookup(name.name);
      if (!b) throw undefinedName(name.name, name.loc, scope);
      if (b.kind === 'const') throw errorAt(name.loc, 'GY2012', `'${name.name}' is a constant, but outputs must be tensors`);
      this.outputs.push(b.value);
    }
  }

  // -- op calls -----------------------------------------------------------------------------

  /**
   * Lower a call and return its results. `names` are the IR names of a binding's targets;
   * without them the call is an anonymous operand and must have exactly one result.
   */
  private call(c: CallExpr, scope: Scope, names: readonly string[] | undefined): Value[] {
    const kind = opKindOf(c);
    const operands = c.args.map((a) => this.operand(a, scope));
    const attrs = this.attrs(kind, c, scope);
    const count = resultCount(kind, operands, attrs);
    if (count !== undefined) checkResultCount(c, count, names?.length);
    const opNames = count === undefined ? undefined : (names ?? [this.irName(kind)]);
    // With an unknown count the op is malformed: addOp reports why, located at the call.
    const op = this.module.addOp(kind, operands, attrs, { names: opNames, loc: c.loc, layer: this.layer });
    assert(count !== undefined, `addOp accepted a ${kind} that failed its pre-check`);
    return op.results;
  }

  /** A positional operand: a tensor name or a nested call. */
  private operand(e: Expr, scope: Scope): Value {
    switch (e.kind) {
      case 'name':
        return this.tensorName(e, scope);
      case 'call':
        return this.call(e, scope, undefined)[0]!;
      case 'number':
      case 'string':
      case 'bool':
      case 'neg':
      case 'binary':
      case 'list':
        throw errorAt(e.loc, 'GY2012', `an operand must be a tensor (a name or an op call), not ${describe(e)}`);
      default:
        return assertNever(e);
    }
  }

  private tensorName(e: NameExpr, scope: Scope): Value {
    const b = scope.lookup(e.name);
    if (!b) throw undefinedName(e.name, e.loc, scope);
    if (b.kind === 'const') throw errorAt(e.loc, 'GY2012', `'${e.name}' is a constant (${formatNumber(b.value)}), but a tensor is needed here`);
    return b.value;
  }

  /** Keyword attributes, each converted as its spec in the op table asks. */
  private attrs(kind: OpKind, c: CallExpr, scope: Scope): Attrs {
    const specs = opDef(kind).attrs;
    const out: Record<string, AttrValue> = {};
    for (const { name, value } of c.attrs) {
      if (Object.prototype.hasOwnProperty.call(out, name.name)) {
        throw errorAt(name.loc, 'GY2002', `attribute '${name.name}' of ${kind} is given twice`);
      }
      const spec = Object.prototype.hasOwnProperty.call(specs, name.name) ? specs[name.name] : undefined;
      // An unknown attribute keeps its plain value; addOp reports it (GY2005).
      out[name.name] = this.attrValue(value, spec?.kind, `attribute '${name.name}' of ${kind}`, scope);
    }
    return out;
  }

  private attrValue(e: Expr, kind: AttrKind | undefined, what: string, scope: Scope): AttrValue {
    switch (e.kind) {
      case 'string':
        if (kind === 'dtype' && !isDType(e.value)) throw unknownDType(e.value, e.loc);
        return e.value;
      case 'bool':
        return e.value;
      case 'list': {
        const items = e.items.map((item) => this.number(item, scope));
        if (kind === 'ints') items.forEach((v, i) => requireWhole(v, e.items[i]!.loc, `item ${i + 1} of ${what}`));
        return items;
      }
      case 'name':
        if ((kind === 'string' || kind === 'dtype') && !scope.lookup(e.name)) {
          throw errorAt(e.loc, 'GY2001', `undefined name '${e.name}' (${what} is a string: write "${e.name}")`);
        }
        return this.wholeIf(kind === 'int', e, what, scope);
      case 'number':
      case 'neg':
      case 'binary':
      case 'call':
        return this.wholeIf(kind === 'int', e, what, scope);
      default:
        return assertNever(e);
    }
  }

  private wholeIf(whole: boolean, e: Expr, what: string, scope: Scope): number {
    const v = this.number(e, scope);
    if (whole) requireWhole(v, e.loc, what);
    return v;
  }

  // -- constants ----------------------------------------------------------------------------

  /** Evaluate a constant expression. */
  private number(e: Expr, scope: Scope): number {
    switch (e.kind) {
      case 'number':
        return e.value;
      case 'name':
        return this.constName(e, scope);
      case 'neg':
        return -this.number(e.operand, scope);
      case 'binary':
        return arithmetic(e, this.number(e.left, scope), this.number(e.right, scope));
      case 'call':
        return this.constCall(e, scope);
      case 'string':
      case 'bool':
      case 'list':
        throw errorAt(e.loc, 'GY2020', `expected a number, found ${describe(e)}`);
      default:
        return assertNever(e);
    }
  }

  private constName(e: NameExpr, scope: Scope): number {
    const b = scope.lookup(e.name);
    if (!b) throw undefinedName(e.name, e.loc, scope);
    if (b.kind === 'tensor') throw errorAt(e.loc, 'GY2012', `'${e.name}' is a tensor, but a constant is needed here`);
    return b.value;
  }

  /** `min(a, b)` and `max(a, b)`, the only functions of constant expressions. */
  private constCall(c: CallExpr, scope: Scope): number {
    const f = c.callee.name;
    if (f !== 'min' && f !== 'max') {
      if (isOpKind(f)) throw errorAt(c.loc, 'GY2012', `${f}(...) is an op call and yields a tensor, but a constant is needed here`);
      const guess = closest(f, ['min', 'max'], 2);
      throw errorAt(c.loc, 'GY2003', `unknown function '${f}' in a constant expression (${guess ? `did you mean '${guess}'?` : 'only min and max exist'})`);
    }
    const attr = c.attrs[0];
    if (attr) throw errorAt(attr.name.loc, 'GY2005', `${f} takes no attributes`);
    if (c.args.length !== 2) throw errorAt(c.loc, 'GY2004', `${f} takes 2 arguments, got ${c.args.length}`);
    const a = this.number(c.args[0]!, scope);
    const b = this.number(c.args[1]!, scope);
    return f === 'min' ? Math.min(a, b) : Math.max(a, b);
  }

  private type(t: TypeExpr, scope: Scope, name: string): TensorType {
    if (!isDType(t.dtype.name)) throw unknownDType(t.dtype.name, t.dtype.loc);
    const shape = t.dims.map((d, i) => {
      const v = this.number(d, scope);
      const what = `dimension ${i + 1} of '${name}'`;
      requireWhole(v, d.loc, what);
      if (v <= 0 || !Number.isSafeInteger(v)) throw errorAt(d.loc, 'GY2014', `${what} must be a positive whole number, got ${formatNumber(v)}`);
      return v;
    });
    return { dtype: t.dtype.name, shape };
  }

  /** The IR name of a value or param: prefixed with its layer inside `repeat`. */
  private irName(name: string): string {
    return this.layer === undefined ? name : `layer.${this.layer}.${name}`;
  }
}

// -- checks and helpers -------------------------------------------------------------------

/** `input`, `param` and `let` introduce a name that must be new in its scope (GY2002). */
function declareFree(scope: Scope, name: Ident): void {
  const prev = scope.own(name.name);
  if (prev) throw errorAt(name.loc, 'GY2002', `'${name.name}' is already defined at ${prev.loc.line}:${prev.loc.col}`);
}

/** Binding targets must be distinct and must not name constants. */
function checkTargets(targets: readonly Ident[], scope: Scope): void {
  const seen = new Set<string>();
  for (const t of targets) {
    if (seen.has(t.name)) throw errorAt(t.loc, 'GY2002', `'${t.name}' is bound twice in one statement`);
    seen.add(t.name);
    const b = scope.lookup(t.name);
    if (b?.kind === 'const') {
      throw errorAt(t.loc, 'GY2002', `'${t.name}' is a constant (defined at ${b.loc.line}:${b.loc.col}) and cannot be rebound to a tensor`);
    }
  }
}

function opKindOf(c: CallExpr): OpKind {
  const name = c.callee.name;
  if (isOpKind(name)) return name;
  if (name === 'min' || name === 'max') {
    throw errorAt(c.loc, 'GY2003', `unknown op '${name}': ${name}(a, b) works on constants; for tensors use binary(a, b, fn = "${name}")`);
  }
  const guess = closest(name, Object.keys(OPS), 2);
  throw errorAt(c.loc, 'GY2003', `unknown op '${name}'${guess ? ` (did you mean '${guess}'?)` : " ('gyges ops' lists them)"}`);
}

/**
 * How many results the op would have, or undefined when its operands or attributes are
 * wrong (then `Module.addOp` reports the error). Bindings need the count before the op is
 * built, to name each result.
 */
function resultCount(kind: OpKind, operands: readonly Value[], attrs: Attrs): number | undefined {
  const def = opDef(kind);
  try {
    checkArity(def, operands.length);
    return def.infer(
      operands.map((v) => v.type),
      resolveAttrs(kind, def.attrs, attrs),
    ).length;
  } catch (e) {
    if (e instanceof OpError) return undefined;
    throw e;
  }
}

/** A binding names every result; an anonymous call (`bound` undefined) must have one. */
function checkResultCount(c: CallExpr, count: number, bound: number | undefined): void {
  const kind = c.callee.name;
  const results = `${count} result${count === 1 ? '' : 's'}`;
  if (bound === undefined) {
    if (count !== 1) throw errorAt(c.loc, 'GY2015', `${kind} returns ${results}, but an operand must be one tensor; bind them first, as in a, b = ${kind}(...)`);
  } else if (bound !== count) {
    throw errorAt(c.loc, 'GY2015', `${kind} returns ${results}, but ${bound} name${bound === 1 ? ' is' : 's are'} bound`);
  }
}

function arithmetic(e: BinaryExpr, a: number, b: number): number {
  switch (e.op) {
    case '+':
      return a + b;
    case '-':
      return a - b;
    case '*':
      return a * b;
    case '/':
      return a / nonZero(e, b);
    case '//':
      return Math.floor(a / nonZero(e, b));
    case '%':
      return a - b * Math.floor(a / nonZero(e, b)); // the sign of the divisor, as in Python
    case '**':
      if (a === 0 && b < 0) throw errorAt(e.opLoc, 'GY2011', `division by zero: 0 raised to the negative power ${formatNumber(b)}`);
      return a ** b;
    default:
      return assertNever(e.op);
  }
}

function nonZero(e: BinaryExpr, b: number): number {
  if (b === 0) throw errorAt(e.opLoc, 'GY2011', `division by zero: the right side of '${e.op}' is 0`);
  return b;
}

function requireWhole(v: number, loc: SourceLoc, what: string): void {
  if (!Number.isInteger(v)) throw errorAt(loc, 'GY2010', `${what} must be a whole number, got ${formatNumber(v)}`);
}

function unknownDType(name: string, loc: SourceLoc): GygesError {
  return errorAt(loc, 'GY2017', `unknown dtype '${name}' (expected one of ${Object.keys(DTYPES).join(', ')})`);
}

function undefinedName(name: string, loc: SourceLoc, scope: Scope): GygesError {
  const guess = closest(name, scope.visible(), Math.min(2, Math.floor(name.length / 3)));
  return errorAt(loc, 'GY2001', `undefined name '${name}'${guess ? ` (did you mean '${guess}'?)` : ''}`);
}

/** What an expression is, for messages: "the constant 3", "a string", ... */
function describe(e: Expr): string {
  switch (e.kind) {
    case 'number':
      return `the number ${formatNumber(e.value)}`;
    case 'string':
      return `the string "${e.value}"`;
    case 'bool':
      return String(e.value);
    case 'list':
      return 'a list';
    case 'neg':
    case 'binary':
      return 'a constant expression';
    case 'name':
      return `'${e.name}'`;
    case 'call':
      return `a call of '${e.callee.name}'`;
    default:
      return assertNever(e);
  }
}
