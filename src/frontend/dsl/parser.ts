// The model DSL parser: a chevrotain EmbeddedActionsParser that builds the typed syntax tree
// of ast.ts directly (no CST). The grammar is LL(2); the only two-token decision is telling a
// keyword attribute `name = value` from a positional operand inside a call. Parsing stops at
// the first error, reported as GY1002 at the offending token in one line: "expected X,
// found Y". Statement placement rules (`model` first, `input`/`output` only at top level,
// operands before attributes) are checked as the statements are parsed, so the first error
// in the file is the one reported.

import {
  EmbeddedActionsParser,
  EOF,
  tokenLabel,
  type IParserErrorMessageProvider,
  type IRecognitionException,
  type IToken,
  type TokenType,
} from 'chevrotain';
import { errorAt, type GygesError, type SourceLoc } from '../../diagnostics/diagnostic.js';
import type {
  BinaryOperator,
  BindStmt,
  CallExpr,
  DeclStmt,
  Expr,
  Ident,
  KeywordArg,
  LetStmt,
  ModelStmt,
  OutputStmt,
  Program,
  RepeatStmt,
  Stmt,
  TypeExpr,
} from './ast.js';
import {
  ALL_TOKENS,
  AddOp,
  Colon,
  Comma,
  endLoc,
  Equals,
  False,
  Identifier,
  Input,
  LBrace,
  LBracket,
  Let,
  LParen,
  Minus,
  Model,
  MulOp,
  NumberLit,
  Output,
  Param,
  RBrace,
  RBracket,
  Repeat,
  RParen,
  StarStar,
  StringLit,
  tokenize,
  tokenLoc,
  True,
} from './lexer.js';

/** Parse a DSL file into its syntax tree; throws GygesError (GY1001-GY1003) on bad input. */
export function parseProgram(text: string, file: string): Program {
  const tokens = tokenize(text, file);
  parser.file = file;
  parser.input = tokens;
  const statements = parser.program();
  const err = parser.errors[0];
  if (err) throw syntaxError(err, tokens, file);
  return { statements, end: endLoc(tokens, file) };
}

// -- messages -----------------------------------------------------------------------------

/**
 * Chevrotain's messages, reworded. Each says what was expected; `syntaxError` appends what
 * was found, so messages given with ERR_MSG at a call site read the same way.
 */
const messages: IParserErrorMessageProvider = {
  buildMismatchTokenMessage: ({ expected }) => `expected ${tokenLabel(expected)}`,
  buildNotAllInputParsedMessage: () => 'expected a statement',
  buildNoViableAltMessage: ({ expectedPathsPerAlt, customUserDescription }) =>
    `expected ${customUserDescription ?? describePaths(expectedPathsPerAlt.flat())}`,
  buildEarlyExitMessage: ({ expectedIterationPaths, customUserDescription }) =>
    `expected ${customUserDescription ?? describePaths(expectedIterationPaths)}`,
};

/** "'a', 'b' or 'c'" from the first token of each lookahead path. */
function describePaths(paths: readonly TokenType[][]): string {
  const labels = [...new Set(paths.map((p) => p[0]).filter((t) => t !== undefined).map((t) => tokenLabel(t)))];
  if (labels.length <= 1) return labels[0] ?? 'something else';
  return `${labels.slice(0, -1).join(', ')} or ${labels[labels.length - 1]}`;
}

function syntaxError(err: IRecognitionException, tokens: readonly IToken[], file: string): GygesError {
  const atEnd = err.token.tokenType === EOF;
  const loc = atEnd ? endLoc(tokens, file) : tokenLoc(err.token, file);
  const found = atEnd ? 'end of file' : err.token.tokenType === StringLit ? err.token.image : `'${err.token.image}'`;
  const message = `${err.message}, found ${found}`.replace(/\s+/g, ' ');
  return errorAt(loc, 'GY1002', message);
}

// -- placement checks ---------------------------------------------------------------------

function checkTopLevel(s: Stmt, index: number): void {
  if (s.kind === 'model' && index > 0) throw errorAt(s.loc, 'GY1002', "'model' must be the first statement of the file");
}

/** `repeatLine` is where the enclosing body opened: a missing '}' shows up here too. */
function checkInBody(s: Stmt, repeatLine: number): void {
  if (s.kind === 'model' || s.kind === 'input' || s.kind === 'output') {
    throw errorAt(s.loc, 'GY1002', `'${s.kind}' belongs at the top level, not inside the 'repeat' of line ${repeatLine} (is its '}' missing?)`);
  }
}

/** One argument of a call, before positional operands and attributes are separated. */
type Arg = { readonly kind: 'operand'; readonly value: Expr } | { readonly kind: 'attr'; readonly attr: KeywordArg };

// -- the grammar --------------------------------------------------------------------------

class DslParser extends EmbeddedActionsParser {
  /** The file named in every location; set before each parse. */
  file = '';

  constructor() {
    super(ALL_TOKENS, { recoveryEnabled: false, maxLookahead: 2, errorMessageProvider: messages });
    this.performSelfAnalysis();
  }

  readonly program = this.RULE('program', (): Stmt[] => {
    const statements: Stmt[] = [];
    this.MANY(() => {
      const s = this.SUBRULE(this.statement);
      this.ACTION(() => checkTopLevel(s, statements.length));
      statements.push(s);
    });
    return statements;
  });

  readonly statement = this.RULE('statement', (): Stmt =>
    this.OR<Stmt>({
      ERR_MSG: 'a statement',
      DEF: [
        { ALT: () => this.SUBRULE(this.modelStmt) },
        { ALT: () => this.SUBRULE(this.letStmt) },
        { ALT: () => this.SUBRULE(this.declStmt) },
        { ALT: () => this.SUBRULE(this.repeatStmt) },
        { ALT: () => this.SUBRULE(this.outputStmt) },
        { ALT: () => this.SUBRULE(this.bindStmt) },
      ],
    }),
  );

  readonly modelStmt = this.RULE('modelStmt', (): ModelStmt => {
    const kw = this.CONSUME(Model);
    const name = this.CONSUME(StringLit, { ERR_MSG: `expected the model name as a string after 'model', as in model "gpt2"` });
    return { kind: 'model', name: unquote(name), loc: this.loc(kw) };
  });

  readonly letStmt = this.RULE('letStmt', (): LetStmt => {
    const kw = this.CONSUME(Let);
    const name = this.ident(0, "expected a constant name after 'let'");
    this.CONSUME(Equals, { ERR_MSG: `expected '=' after 'let ${name.name}'` });
    const value = this.SUBRULE(this.expr);
    return { kind: 'let', name, value, loc: this.loc(kw) };
  });

  readonly declStmt = this.RULE('declStmt', (): DeclStmt => {
    const kw = this.OR([{ ALT: () => this.CONSUME(Input) }, { ALT: () => this.CONSUME(Param) }]);
    const name = this.ident(0, `expected a name after '${kw.image}'`);
    this.CONSUME(Colon, { ERR_MSG: `expected ':' and a type after '${kw.image} ${name.name}'` });
    const type = this.SUBRULE(this.type);
    const kind = kw.tokenType === Input ? 'input' : 'param';
    return { kind, name, type, loc: this.loc(kw) };
  });

  readonly type = this.RULE('type', (): TypeExpr => {
    const dtype = this.ident(0, 'expected a type such as f32[4, 8]');
    this.CONSUME(LBracket, { ERR_MSG: `expected '[' and the dimensions after '${dtype.name}'` });
    const dims: Expr[] = [];
    this.MANY_SEP({ SEP: Comma, DEF: () => dims.push(this.SUBRULE(this.expr)) });
    this.CONSUME(RBracket, { ERR_MSG: "expected ',' or ']' in the shape" });
    return { dtype, dims, loc: dtype.loc };
  });

  readonly repeatStmt = this.RULE('repeatStmt', (): RepeatStmt => {
    const kw = this.CONSUME(Repeat);
    const count = this.SUBRULE(this.expr);
    this.CONSUME(LBrace, { ERR_MSG: "expected '{' after the repeat count" });
    const body: Stmt[] = [];
    this.MANY(() => {
      const s = this.SUBRULE(this.statement);
      this.ACTION(() => checkInBody(s, kw.startLine ?? 1));
      body.push(s);
    });
    this.CONSUME(RBrace, { ERR_MSG: `expected a statement or the '}' that closes the 'repeat' of line ${kw.startLine}` });
    return { kind: 'repeat', count, body, loc: this.loc(kw) };
  });

  readonly outputStmt = this.RULE('outputStmt', (): OutputStmt => {
    const kw = this.CONSUME(Output);
    const names = [this.ident(0, "expected a name after 'output'")];
    this.MANY(() => {
      this.CONSUME(Comma);
      names.push(this.ident(1, "expected a name after ','"));
    });
    return { kind: 'output', names, loc: this.loc(kw) };
  });

  readonly bindStmt = this.RULE('bindStmt', (): BindStmt => {
    const targets = [this.ident(0, 'expected a name')];
    this.MANY(() => {
      this.CONSUME(Comma);
      targets.push(this.ident(1, "expected a name after ','"));
    });
    this.CONSUME(Equals, { ERR_MSG: `expected '=' after '${targets.map((t) => t.name).join(', ')}'` });
    const value = this.SUBRULE(this.expr);
    return { kind: 'bind', targets, value, loc: targets[0]!.loc };
  });

  // Expressions, loosest first: `+ -`, then `* / // %`, then unary `-`, then `**` (right
  // associative, binding tighter than a unary minus on its left: -2**2 is -4).

  readonly expr = this.RULE('expr', (): Expr => {
    let left = this.SUBRULE(this.term);
    this.MANY(() => {
      const op = this.CONSUME(AddOp);
      const right = this.SUBRULE2(this.term);
      left = this.binary(op, left, right);
    });
    return left;
  });

  readonly term = this.RULE('term', (): Expr => {
    let left = this.SUBRULE(this.unary);
    this.MANY(() => {
      const op = this.CONSUME(MulOp);
      const right = this.SUBRULE2(this.unary);
      left = this.binary(op, left, right);
    });
    return left;
  });

  readonly unary = this.RULE('unary', (): Expr => {
    const signs: IToken[] = [];
    this.MANY(() => signs.push(this.CONSUME(Minus)));
    let e = this.SUBRULE(this.power);
    for (let i = signs.length - 1; i >= 0; i--) e = { kind: 'neg', operand: e, loc: this.loc(signs[i]!) };
    return e;
  });

  readonly power = this.RULE('power', (): Expr => {
    const base = this.SUBRULE(this.primary);
    const exponent = this.OPTION(() => {
      const op = this.CONSUME(StarStar);
      return { op, right: this.SUBRULE(this.unary) };
    });
    return this.ACTION(() => (exponent ? this.binary(exponent.op, base, exponent.right) : base));
  });

  readonly primary = this.RULE('primary', (): Expr =>
    this.OR<Expr>({
      ERR_MSG: 'an expression',
      DEF: [
        {
          ALT: () => {
            const t = this.CONSUME(NumberLit);
            return { kind: 'number', value: Number(t.image), loc: this.loc(t) };
          },
        },
        {
          ALT: () => {
            const t = this.CONSUME(StringLit);
            return { kind: 'string', value: unquote(t), loc: this.loc(t) };
          },
        },
        {
          ALT: () => {
            const t = this.CONSUME(True);
            return { kind: 'bool', value: true, loc: this.loc(t) };
          },
        },
        {
          ALT: () => {
            const t = this.CONSUME(False);
            return { kind: 'bool', value: false, loc: this.loc(t) };
          },
        },
        { ALT: () => this.SUBRULE(this.parenExpr) },
        { ALT: () => this.SUBRULE(this.listExpr) },
        { ALT: () => this.SUBRULE(this.nameOrCall) },
      ],
    }),
  );

  readonly parenExpr = this.RULE('parenExpr', (): Expr => {
    this.CONSUME(LParen);
    const inner = this.SUBRULE(this.expr);
    this.CONSUME(RParen, { ERR_MSG: "expected ')' to close the '('" });
    return inner;
  });

  readonly listExpr = this.RULE('listExpr', (): Expr => {
    const open = this.CONSUME(LBracket);
    const items: Expr[] = [];
    this.MANY_SEP({ SEP: Comma, DEF: () => items.push(this.SUBRULE(this.expr)) });
    this.CONSUME(RBracket, { ERR_MSG: "expected ',' or ']' in the list" });
    return { kind: 'list', items, loc: this.loc(open) };
  });

  readonly nameOrCall = this.RULE('nameOrCall', (): Expr => {
    const callee = this.ident(0, 'expected a name');
    const args = this.OPTION(() => {
      this.CONSUME(LParen);
      const list: Arg[] = [];
      this.MANY_SEP({ SEP: Comma, DEF: () => list.push(this.SUBRULE(this.argument)) });
      this.CONSUME(RParen, { ERR_MSG: `expected ',' or ')' after the arguments of '${callee.name}'` });
      return list;
    });
    if (args === undefined) return { kind: 'name', name: callee.name, loc: callee.loc };
    return this.ACTION(() => makeCall(callee, args));
  });

  readonly argument = this.RULE('argument', (): Arg =>
    this.OR<Arg>({
      ERR_MSG: "an operand or an attribute 'name = value'",
      DEF: [
        {
          ALT: () => {
            const name = this.ident(0, 'expected an attribute name');
            this.CONSUME(Equals);
            return { kind: 'attr', attr: { name, value: this.SUBRULE(this.expr) } };
          },
        },
        { ALT: () => ({ kind: 'operand', value: this.SUBRULE2(this.expr) }) },
      ],
    }),
  );

  // -- helpers ------------------------------------------------------------------------------

  private ident(idx: number, message: string): Ident {
    const t = this.consume(idx, Identifier, { ERR_MSG: message });
    return { name: t.image, loc: this.loc(t) };
  }

  private binary(op: IToken, left: Expr, right: Expr): Expr {
    return { kind: 'binary', op: op.image as BinaryOperator, left, right, loc: left.loc, opLoc: this.loc(op) };
  }

  private loc(t: IToken): SourceLoc {
    return tokenLoc(t, this.file);
  }
}

/** Split a call's arguments into operands and attributes; operands must come first. */
function makeCall(callee: Ident, args: readonly Arg[]): CallExpr {
  const operands: Expr[] = [];
  const attrs: KeywordArg[] = [];
  for (const a of args) {
    if (a.kind === 'attr') {
      attrs.push(a.attr);
    } else if (attrs.length > 0) {
      throw errorAt(a.value.loc, 'GY1002', `operand after attributes in the call of '${callee.name}': operands come first, then 'name = value' attributes`);
    } else {
      operands.push(a.value);
    }
  }
  return { kind: 'call', callee, args: operands, attrs, loc: callee.loc };
}

function unquote(t: IToken): string {
  return t.image.slice(1, -1);
}

/** The one parser; chevrotain parsers are built once and given new input per parse. */
const parser = new DslParser();
