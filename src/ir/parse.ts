// Reads the text form that print.ts writes back into a Module. The grammar is small and
// regular, so a hand-written scanner and recursive-descent reader keep it exact: every
// error names file:line:col (GY6001 for syntax, GY6002 for a type that disagrees with the
// op table's inference, GY2xxx for op-level problems reported by Module.addOp).

import { isOpKind, opDef } from './ops.js';
import { Module, type Value } from './module.js';
import { formatType, isDType, sameType, type TensorType } from './types.js';
import type { AttrValue } from './attrs.js';
import { errorAt, type SourceLoc } from '../diagnostics/diagnostic.js';

type TokKind = 'id' | 'ref' | 'str' | 'num' | 'punct' | 'eof';
interface Tok {
  kind: TokKind;
  text: string;
  line: number;
  col: number;
}

const PUNCT = new Set(['{', '}', '(', ')', '[', ']', ',', ':', '=', '#']);

function scan(text: string, file: string): Tok[] {
  const toks: Tok[] = [];
  let line = 1;
  let col = 1;
  let i = 0;
  const at = (): SourceLoc => ({ file, line, col });
  while (i < text.length) {
    const c = text[i]!;
    if (c === '\n') {
      i++;
      line++;
      col = 1;
      continue;
    }
    if (c === ' ' || c === '\t' || c === '\r') {
      i++;
      col++;
      continue;
    }
    const start = i;
    let kind: TokKind;
    if (PUNCT.has(c)) {
      kind = 'punct';
      i++;
    } else if (c === '"') {
      kind = 'str';
      i++;
      while (i < text.length && text[i] !== '"' && text[i] !== '\n') i += text[i] === '\\' ? 2 : 1;
      if (text[i] !== '"') throw errorAt(at(), 'GY6001', 'unterminated string');
      i++;
    } else if (c === '%') {
      kind = 'ref';
      i++;
      while (i < text.length && /[0-9]/.test(text[i]!)) i++;
      if (i === start + 1) throw errorAt(at(), 'GY6001', "expected a number after '%'");
    } else if (/[-0-9]/.test(c)) {
      kind = 'num';
      i++;
      while (i < text.length && /[0-9.eE+-]/.test(text[i]!)) i++;
    } else if (/[A-Za-z_]/.test(c)) {
      kind = 'id';
      while (i < text.length && /[A-Za-z0-9_]/.test(text[i]!)) i++;
    } else {
      throw errorAt(at(), 'GY6001', `unexpected character ${JSON.stringify(c)}`);
    }
    toks.push({ kind, text: text.slice(start, i), line, col });
    col += i - start;
  }
  toks.push({ kind: 'eof', text: 'end of file', line, col });
  return toks;
}

class Reader {
  private pos = 0;
  readonly module: Module;
  private readonly refs = new Map<string, Value>();
  private readonly names = new Set<string>();

  constructor(
    private readonly toks: Tok[],
    private readonly file: string,
  ) {
    this.module = new Module('');
  }

  // -- token helpers ----------------------------------------------------------------------

  private peek(offset = 0): Tok {
    return this.toks[Math.min(this.pos + offset, this.toks.length - 1)]!;
  }

  private loc(t: Tok = this.peek()): SourceLoc {
    return { file: this.file, line: t.line, col: t.col };
  }

  private fail(detail: string, t: Tok = this.peek()): never {
    throw errorAt(this.loc(t), 'GY6001', detail);
  }

  private next(): Tok {
    const t = this.peek();
    if (t.kind !== 'eof') this.pos++;
    return t;
  }

  private is(text: string): boolean {
    const t = this.peek();
    return (t.kind === 'punct' || t.kind === 'id') && t.text === text;
  }

  private expect(text: string, context: string): Tok {
    if (!this.is(text)) this.fail(`expected '${text}' ${context}, found '${this.peek().text}'`);
    return this.next();
  }

  private expectKind(kind: TokKind, what: string): Tok {
    if (this.peek().kind !== kind) this.fail(`expected ${what}, found '${this.peek().text}'`);
    return this.next();
  }

  private str(what: string): string {
    return JSON.parse(this.expectKind('str', what).text) as string;
  }

  private num(what: string): number {
    const t = this.expectKind('num', what);
    const n = Number(t.text);
    if (!Number.isFinite(n) && t.text !== '-0') this.fail(`bad number '${t.text}'`, t);
    return n;
  }

  // -- grammar ----------------------------------------------------------------------------

  read(): Module {
    this.expect('module', 'at the start');
    this.module.name = this.str('the module name');
    this.expect('{', 'after the module name');
    for (;;) {
      if (this.is('note')) this.moduleNote();
      else if (this.is('input') || this.is('param') || this.is('state') || this.is('const')) this.declaration();
      else if (this.is('output')) {
        this.output();
        break;
      } else if (this.peek().kind === 'ref') this.operation();
      else this.fail(`expected a declaration, an op or 'output', found '${this.peek().text}'`);
    }
    this.expect('}', 'to close the module');
    if (this.peek().kind !== 'eof') this.fail(`unexpected '${this.peek().text}' after the module`);
    return this.module;
  }

  private definition(): { ref: Tok; name: string } {
    const ref = this.expectKind('ref', 'a value id such as %0');
    if (this.refs.has(ref.text)) this.fail(`${ref.text} is defined twice`, ref);
    const nameTok = this.peek();
    const name = this.str('the value name');
    if (this.names.has(name)) this.fail(`value name ${JSON.stringify(name)} is used twice`, nameTok);
    this.names.add(name);
    return { ref, name };
  }

  private declaration(): void {
    const kw = this.next().text;
    const { ref, name } = this.definition();
    this.expect(':', 'before the type');
    const type = this.type();
    let data: number[] | undefined;
    if (kw === 'const') {
      this.expect('=', 'before the constant data');
      data = this.numberList();
    }
    const loc = this.optionalLoc();
    const m = this.module;
    const v =
      kw === 'input'
        ? m.addInput(name, type, loc)
        : kw === 'param'
          ? m.addParam(name, type, loc)
          : kw === 'state'
            ? m.addState(name, type, loc)
            : m.addConst(name, type, data!, loc);
    this.refs.set(ref.text, v);
  }

  /** `note "key" = value` at module level. */
  private moduleNote(): void {
    this.next();
    const key = this.str('a note key');
    this.expect('=', 'after the note key');
    this.module.notes[key] = this.attrValue();
  }

  /** `#{"key" = value, ...}` after an op's types. */
  private opNotes(): Record<string, AttrValue> {
    this.expect('#', 'to start notes');
    this.expect('{', "after '#'");
    const notes: Record<string, AttrValue> = {};
    while (!this.is('}')) {
      if (Object.keys(notes).length) this.expect(',', 'between notes');
      const key = this.str('a note key');
      this.expect('=', 'after the note key');
      notes[key] = this.attrValue();
    }
    this.next();
    return notes;
  }

  private operation(): void {
    const defs = [this.definition()];
    while (this.is(',')) {
      this.next();
      defs.push(this.definition());
    }
    this.expect('=', 'after the results');
    const opTok = this.expectKind('id', 'an op name');
    if (!isOpKind(opTok.text)) throw errorAt(this.loc(opTok), 'GY2003', `unknown op '${opTok.text}'`);
    this.expect('(', 'after the op name');
    const operands: Value[] = [];
    while (!this.is(')')) {
      if (operands.length) this.expect(',', 'between operands');
      const t = this.expectKind('ref', 'an operand such as %0');
      const v = this.refs.get(t.text);
      if (!v) this.fail(`${t.text} is used before it is defined`, t);
      operands.push(v);
    }
    this.next();
    const attrs = this.is('{') ? this.attributes(opTok.text) : {};
    this.expect(':', 'before the result types');
    const typeToks: Tok[] = [];
    const types: TensorType[] = [];
    do {
      if (types.length) this.next();
      typeToks.push(this.peek());
      types.push(this.type());
    } while (this.is(','));
    let layer: number | undefined;
    if (this.is('layer')) {
      this.next();
      layer = this.num('a layer index');
    }
    const notes = this.is('#') ? this.opNotes() : undefined;
    const loc = this.optionalLoc();
    if (types.length !== defs.length) this.fail(`${defs.length} results but ${types.length} types`, typeToks[0]);
    const op = this.module.addOp(opTok.text, operands, attrs, { names: defs.map((d) => d.name), loc: loc ?? this.loc(opTok), layer });
    if (notes) op.notes = notes;
    if (!loc) {
      delete op.loc;
      for (const r of op.results) delete r.loc;
    }
    if (op.results.length !== defs.length) {
      throw errorAt(this.loc(opTok), 'GY6002', `${opTok.text} has ${op.results.length} results, the text names ${defs.length}`);
    }
    op.results.forEach((r, i) => {
      if (!sameType(r.type, types[i]!)) {
        throw errorAt(this.loc(typeToks[i]), 'GY6002', `result ${i} of ${opTok.text} is ${formatType(r.type)}, the text says ${formatType(types[i]!)}`);
      }
      this.refs.set(defs[i]!.ref.text, r);
    });
  }

  private attributes(opName: string): Record<string, AttrValue> {
    const specs = opDef(opName as Parameters<typeof opDef>[0]).attrs;
    const attrs: Record<string, AttrValue> = {};
    this.expect('{', 'to open the attributes');
    while (!this.is('}')) {
      if (Object.keys(attrs).length) this.expect(',', 'between attributes');
      const key = this.expectKind('id', 'an attribute name');
      this.expect('=', `after attribute '${key.text}'`);
      const spec = specs[key.text];
      if (!spec) throw errorAt(this.loc(key), 'GY2005', `${opName} has no attribute '${key.text}'`);
      attrs[key.text] = this.attrValue();
    }
    this.next();
    return attrs;
  }

  private attrValue(): AttrValue {
    const t = this.peek();
    if (t.kind === 'str') return this.str('a string');
    if (t.kind === 'num') return this.num('a number');
    if (this.is('[')) return this.numberList();
    if (this.is('true') || this.is('false')) return this.next().text === 'true';
    return this.fail(`expected an attribute value, found '${t.text}'`);
  }

  private numberList(): number[] {
    this.expect('[', 'to open a list');
    const out: number[] = [];
    while (!this.is(']')) {
      if (out.length) this.expect(',', 'between list items');
      out.push(this.num('a number'));
    }
    this.next();
    return out;
  }

  private type(): TensorType {
    const t = this.expectKind('id', 'a type such as f32[2, 3]');
    if (!isDType(t.text)) throw errorAt(this.loc(t), 'GY2017', `unknown dtype '${t.text}'`);
    const shape = this.numberList();
    if (!shape.every((d) => Number.isInteger(d) && d >= 0)) this.fail(`dimensions must be whole numbers ≥ 0`, t);
    return { dtype: t.text, shape };
  }

  private optionalLoc(): SourceLoc | undefined {
    if (!this.is('loc')) return undefined;
    this.next();
    this.expect('(', "after 'loc'");
    const file = this.str('a file name');
    // `"file":line:col`, `"file" node "name"` (a graph node) or both.
    let line = 0;
    let col = 0;
    if (!this.is('node')) {
      this.expect(':', 'after the file name');
      line = this.num('a line number');
      this.expect(':', 'after the line number');
      col = this.num('a column number');
    }
    let node: string | undefined;
    if (this.is('node')) {
      this.next();
      node = this.str('a node name');
    }
    this.expect(')', 'to close the location');
    return node === undefined ? { file, line, col } : { file, line, col, node };
  }

  private output(): void {
    this.next();
    const outs: Value[] = [];
    do {
      if (outs.length) this.next();
      const t = this.expectKind('ref', 'an output value such as %3');
      const v = this.refs.get(t.text);
      if (!v) this.fail(`${t.text} is not defined`, t);
      outs.push(v);
    } while (this.is(','));
    this.module.setOutputs(outs);
  }
}

/** Parse the IR text form. `file` names the text in error locations. */
export function parseModule(text: string, file = '<ir>'): Module {
  return new Reader(scan(text, file), file).read();
}
