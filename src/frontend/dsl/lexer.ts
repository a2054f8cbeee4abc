// Tokens and lexer of the model DSL (docs/dsl.md), built with chevrotain. Whitespace,
// newlines and `#` comments are skipped: statements are told apart by their leading keyword
// or name, so an op call may run over several lines. Lexing errors become GY1001 (an
// unexpected character) or GY1003 (an unterminated string), reported at the first one.

import { createToken, Lexer, type IToken, type TokenType } from 'chevrotain';
import { errorAt, type SourceLoc } from '../../diagnostics/diagnostic.js';

// -- tokens -------------------------------------------------------------------------------

// A byte-order mark, as some editors write at the start of a file, counts as whitespace.
const WhiteSpace = createToken({ name: 'WhiteSpace', pattern: /[ \t\r\n\uFEFF]+/, group: Lexer.SKIPPED, line_breaks: true });
const Comment = createToken({ name: 'Comment', pattern: /#[^\r\n]*/, group: Lexer.SKIPPED });

export const Identifier = createToken({ name: 'Identifier', pattern: /[A-Za-z_][A-Za-z0-9_]*/, label: 'a name' });

function keyword(word: string): TokenType {
  return createToken({ name: `Kw_${word}`, pattern: word, longer_alt: Identifier, label: `'${word}'` });
}

export const Model = keyword('model');
export const Let = keyword('let');
export const Input = keyword('input');
export const Param = keyword('param');
export const Output = keyword('output');
export const Repeat = keyword('repeat');
export const True = keyword('true');
export const False = keyword('false');

export const NumberLit = createToken({ name: 'Number', pattern: /\d+(?:\.\d+)?(?:[eE][+-]?\d+)?/, label: 'a number' });
export const StringLit = createToken({ name: 'String', pattern: /"[^"\r\n]*"/, label: 'a string' });
/** A string that reaches the end of its line: lexes, then is reported as GY1003. */
export const UnterminatedString = createToken({ name: 'UnterminatedString', pattern: /"[^"\r\n]*/ });

function punct(name: string, text: string, categories: TokenType[] = []): TokenType {
  return createToken({ name, pattern: text, label: `'${text}'`, categories });
}

/** `+` and `-` between terms. */
export const AddOp = createToken({ name: 'AddOp', pattern: Lexer.NA, label: "'+' or '-'" });
/** `*`, `/`, `//` and `%` between factors. */
export const MulOp = createToken({ name: 'MulOp', pattern: Lexer.NA, label: "'*', '/', '//' or '%'" });

export const Plus = punct('Plus', '+', [AddOp]);
export const Minus = punct('Minus', '-', [AddOp]);
export const StarStar = punct('StarStar', '**');
export const Star = punct('Star', '*', [MulOp]);
export const SlashSlash = punct('SlashSlash', '//', [MulOp]);
export const Slash = punct('Slash', '/', [MulOp]);
export const Percent = punct('Percent', '%', [MulOp]);
export const LParen = punct('LParen', '(');
export const RParen = punct('RParen', ')');
export const LBracket = punct('LBracket', '[');
export const RBracket = punct('RBracket', ']');
export const LBrace = punct('LBrace', '{');
export const RBrace = punct('RBrace', '}');
export const Comma = punct('Comma', ',');
export const Colon = punct('Colon', ':');
export const Equals = punct('Equals', '=');

/** Every token type, in lexing priority order (longer operators before their prefixes). */
export const ALL_TOKENS: TokenType[] = [
  WhiteSpace,
  Comment,
  StringLit,
  UnterminatedString,
  NumberLit,
  Model,
  Let,
  Input,
  Param,
  Output,
  Repeat,
  True,
  False,
  Identifier,
  StarStar,
  Star,
  SlashSlash,
  Slash,
  Percent,
  Plus,
  Minus,
  LParen,
  RParen,
  LBracket,
  RBracket,
  LBrace,
  RBrace,
  Comma,
  Colon,
  Equals,
  AddOp,
  MulOp,
];

const dslLexer = new Lexer(ALL_TOKENS, { positionTracking: 'full', ensureOptimizations: true });

// -- lexing -------------------------------------------------------------------------------

/** Tokens of `text`, or a GygesError at the first character that starts no token. */
export function tokenize(text: string, file: string): IToken[] {
  const result = dslLexer.tokenize(text);
  const lexError = result.errors[0];
  const open = result.tokens.find((t) => t.tokenType === UnterminatedString);
  if (open && (!lexError || open.startOffset < lexError.offset)) {
    throw errorAt(tokenLoc(open, file), 'GY1003', `unterminated string: missing the closing '"' before the end of the line`);
  }
  if (lexError) {
    const loc: SourceLoc = { file, line: lexError.line ?? 1, col: lexError.column ?? 1 };
    throw errorAt(loc, 'GY1001', `unexpected character ${describeChar(text, lexError.offset)}`);
  }
  return result.tokens;
}

/** The location where a token starts. */
export function tokenLoc(t: IToken, file: string): SourceLoc {
  return { file, line: t.startLine ?? 1, col: t.startColumn ?? 1 };
}

/** Where the text ends: just after its last token (1:1 for an empty file). */
export function endLoc(tokens: readonly IToken[], file: string): SourceLoc {
  const last = tokens[tokens.length - 1];
  if (!last) return { file, line: 1, col: 1 };
  return { file, line: last.endLine ?? 1, col: (last.endColumn ?? 0) + 1 };
}

/** `'@'` for a printable character, `U+0007` for a control or invisible one. */
function describeChar(text: string, offset: number): string {
  const code = text.codePointAt(offset) ?? 0;
  const ch = String.fromCodePoint(code);
  if (/^[\p{L}\p{N}\p{P}\p{S}]$/u.test(ch)) return `'${ch}'`;
  return `U+${code.toString(16).toUpperCase().padStart(4, '0')}`;
}
