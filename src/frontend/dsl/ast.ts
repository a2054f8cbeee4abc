// The syntax tree of a model DSL file (docs/dsl.md), as the parser builds it and the lowering
// walks it. Expressions have one grammar for constants and tensors alike; which one a place
// needs is decided when lowering, so that misuse gets a precise error (GY2012) rather than a
// syntax error. Every node carries the location of its first token.

import type { SourceLoc } from '../../diagnostics/diagnostic.js';

export interface Ident {
  readonly name: string;
  readonly loc: SourceLoc;
}

export type BinaryOperator = '+' | '-' | '*' | '/' | '//' | '%' | '**';

export interface NumberExpr {
  readonly kind: 'number';
  readonly value: number;
  readonly loc: SourceLoc;
}

export interface StringExpr {
  readonly kind: 'string';
  readonly value: string;
  readonly loc: SourceLoc;
}

export interface BoolExpr {
  readonly kind: 'bool';
  readonly value: boolean;
  readonly loc: SourceLoc;
}

export interface NameExpr {
  readonly kind: 'name';
  readonly name: string;
  readonly loc: SourceLoc;
}

export interface NegExpr {
  readonly kind: 'neg';
  readonly operand: Expr;
  readonly loc: SourceLoc;
}

export interface BinaryExpr {
  readonly kind: 'binary';
  readonly op: BinaryOperator;
  readonly left: Expr;
  readonly right: Expr;
  readonly loc: SourceLoc;
  /** Location of the operator (division by zero points here). */
  readonly opLoc: SourceLoc;
}

export interface ListExpr {
  readonly kind: 'list';
  readonly items: readonly Expr[];
  readonly loc: SourceLoc;
}

/** `NAME = VALUE` inside a call's parentheses. */
export interface KeywordArg {
  readonly name: Ident;
  readonly value: Expr;
}

/** An op call, or `min`/`max` in a constant expression. `loc` is the callee's name. */
export interface CallExpr {
  readonly kind: 'call';
  readonly callee: Ident;
  readonly args: readonly Expr[];
  readonly attrs: readonly KeywordArg[];
  readonly loc: SourceLoc;
}

export type Expr = NumberExpr | StringExpr | BoolExpr | NameExpr | NegExpr | BinaryExpr | ListExpr | CallExpr;

export interface TypeExpr {
  readonly dtype: Ident;
  readonly dims: readonly Expr[];
  readonly loc: SourceLoc;
}

export interface ModelStmt {
  readonly kind: 'model';
  readonly name: string;
  readonly loc: SourceLoc;
}

export interface LetStmt {
  readonly kind: 'let';
  readonly name: Ident;
  readonly value: Expr;
  readonly loc: SourceLoc;
}

/** `input NAME: TYPE` or `param NAME: TYPE`. */
export interface DeclStmt {
  readonly kind: 'input' | 'param';
  readonly name: Ident;
  readonly type: TypeExpr;
  readonly loc: SourceLoc;
}

/** `A, B = EXPR`. */
export interface BindStmt {
  readonly kind: 'bind';
  readonly targets: readonly Ident[];
  readonly value: Expr;
  readonly loc: SourceLoc;
}

export interface RepeatStmt {
  readonly kind: 'repeat';
  readonly count: Expr;
  readonly body: readonly Stmt[];
  readonly loc: SourceLoc;
}

export interface OutputStmt {
  readonly kind: 'output';
  readonly names: readonly Ident[];
  readonly loc: SourceLoc;
}

export type Stmt = ModelStmt | LetStmt | DeclStmt | BindStmt | RepeatStmt | OutputStmt;

export interface Program {
  readonly statements: readonly Stmt[];
  /** Just after the last token: where "missing" things are reported. */
  readonly end: SourceLoc;
}
