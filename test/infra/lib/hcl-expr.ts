// A parser for the HCL expression language, as it appears in @cdktf/hcl2json's output.
//
// hcl2json (HashiCorp's HCL parser) turns every .tf file into JSON; each attribute that is
// not a plain literal becomes a template string such as "serviceAccount:${var.x}" or
// "${merge(local.a, local.b)}", whose literal parts are already unescaped and whose ${...}
// parts are raw HCL. This file parses those strings into a small AST that ./hcl-eval.ts
// evaluates. It covers the expression language Terraform configurations use: literals,
// templates (with %{ if } directives), references and traversals, splats, function calls
// (with ... expansion), operators, conditionals, tuples, objects and for expressions.
// %{ for } directives and heredocs inside expressions are rejected with a clear error.

export type Expr =
  | { readonly kind: 'literal'; readonly value: string | number | boolean | null }
  | { readonly kind: 'template'; readonly parts: readonly (string | Expr)[] }
  | { readonly kind: 'name'; readonly name: string }
  | { readonly kind: 'attr'; readonly target: Expr; readonly name: string }
  | { readonly kind: 'index'; readonly target: Expr; readonly key: Expr }
  | { readonly kind: 'splat'; readonly target: Expr; readonly ops: readonly TraversalOp[] }
  | { readonly kind: 'call'; readonly name: string; readonly args: readonly Expr[]; readonly expand: boolean }
  | { readonly kind: 'unary'; readonly op: '!' | '-'; readonly operand: Expr }
  | { readonly kind: 'binary'; readonly op: BinaryOp; readonly left: Expr; readonly right: Expr }
  | { readonly kind: 'cond'; readonly test: Expr; readonly then: Expr; readonly else: Expr }
  | { readonly kind: 'tuple'; readonly items: readonly Expr[] }
  | { readonly kind: 'object'; readonly items: readonly { readonly key: Expr; readonly value: Expr }[] }
  | {
      readonly kind: 'for';
      readonly result: 'tuple' | 'object';
      readonly keyVar: string | undefined;
      readonly valueVar: string;
      readonly collection: Expr;
      readonly key: Expr | undefined;
      readonly value: Expr;
      readonly group: boolean;
      readonly condition: Expr | undefined;
    };

export type TraversalOp =
  { readonly kind: 'attr'; readonly name: string } | { readonly kind: 'index'; readonly key: Expr };

export type BinaryOp = '||' | '&&' | '==' | '!=' | '<' | '<=' | '>' | '>=' | '+' | '-' | '*' | '/' | '%';

export class HclSyntaxError extends Error {
  override name = 'HclSyntaxError';
}

/** Parses one hcl2json attribute string: a template with unescaped literal parts. */
export function parseTemplateString(text: string): Expr {
  const parser = new Parser(text);
  const parts = parser.templateParts(false, undefined);
  if (parser.pos !== text.length) parser.fail('unexpected text after template');
  return simplifyTemplate(parts);
}

/** Parses a bare HCL expression (tests and ad-hoc use). */
export function parseExpression(text: string): Expr {
  const parser = new Parser(text);
  const expr = parser.expression();
  parser.skipSpace();
  if (parser.pos !== text.length) parser.fail('unexpected text after expression');
  return expr;
}

function simplifyTemplate(parts: (string | Expr)[]): Expr {
  if (parts.length === 0) return { kind: 'literal', value: '' };
  if (parts.length === 1 && typeof parts[0] === 'string') return { kind: 'literal', value: parts[0] };
  // A template that is exactly one interpolation yields its value unconverted, as in HCL.
  if (parts.length === 1 && typeof parts[0] !== 'string') return parts[0]!;
  return { kind: 'template', parts };
}

const BINARY_LEVELS: readonly (readonly BinaryOp[])[] = [
  ['||'],
  ['&&'],
  ['==', '!='],
  ['<', '<=', '>', '>='],
  ['+', '-'],
  ['*', '/', '%'],
];

class Parser {
  pos = 0;
  readonly text: string;

  constructor(text: string) {
    this.text = text;
  }

  fail(message: string): never {
    const start = Math.max(0, this.pos - 40);
    const context = `${this.text.slice(start, this.pos)}⟨here⟩${this.text.slice(this.pos, this.pos + 40)}`;
    throw new HclSyntaxError(`${message} at offset ${this.pos}: ${JSON.stringify(context)}`);
  }

  peek(offset = 0): string {
    return this.text[this.pos + offset] ?? '';
  }

  startsWith(token: string): boolean {
    return this.text.startsWith(token, this.pos);
  }

  skipSpace(): void {
    for (;;) {
      const c = this.peek();
      if (c === ' ' || c === '\t' || c === '\n' || c === '\r') {
        this.pos++;
      } else if (c === '#' || this.startsWith('//')) {
        while (this.pos < this.text.length && this.peek() !== '\n') this.pos++;
      } else if (this.startsWith('/*')) {
        const end = this.text.indexOf('*/', this.pos + 2);
        if (end < 0) this.fail('unterminated comment');
        this.pos = end + 2;
      } else {
        return;
      }
    }
  }

  accept(token: string): boolean {
    this.skipSpace();
    if (!this.startsWith(token)) return false;
    this.pos += token.length;
    return true;
  }

  expect(token: string): void {
    if (!this.accept(token)) this.fail(`expected "${token}"`);
  }

  /**
   * Template parts up to `terminator` (a closing quote for nested strings) or the end.
   * `escapes`: nested quoted strings process backslash escapes; hcl2json's top-level
   * strings are already unescaped.
   */
  templateParts(escapes: boolean, terminator: string | undefined): (string | Expr)[] {
    const { parts, stoppedAt } = this.templateSequence(escapes, terminator);
    if (stoppedAt) this.fail(`unexpected %{ ${stoppedAt} }`);
    return parts;
  }

  /**
   * hcl2json rewrites a conditional inside a longer template as an %{ if } directive
   * ("a-${c ? x : y}" becomes "a-%{if c}x%{else}${y}%{endif}"), so if/else/endif are
   * supported; %{ for } is not.
   */
  templateSequence(
    escapes: boolean,
    terminator: string | undefined,
  ): { parts: (string | Expr)[]; stoppedAt: 'else' | 'endif' | undefined } {
    const parts: (string | Expr)[] = [];
    let literal = '';
    const flush = () => {
      if (literal) parts.push(literal);
      literal = '';
    };
    while (this.pos < this.text.length) {
      if (terminator !== undefined && this.peek() === terminator)
        return { parts: flushAnd(parts, literal), stoppedAt: undefined };
      if (this.startsWith('$${')) {
        literal += '${';
        this.pos += 3;
      } else if (this.startsWith('%%{')) {
        literal += '%{';
        this.pos += 3;
      } else if (this.startsWith('${')) {
        flush();
        this.pos += 2;
        this.accept('~');
        parts.push(this.expression());
        this.skipSpace();
        this.accept('~');
        this.expect('}');
      } else if (this.startsWith('%{')) {
        this.pos += 2;
        this.accept('~');
        const word = this.keyword('else') ? 'else' : this.keyword('endif') ? 'endif' : undefined;
        if (word) {
          this.skipSpace();
          this.accept('~');
          this.expect('}');
          return { parts: flushAnd(parts, literal), stoppedAt: word };
        }
        if (!this.keyword('if')) this.fail('only %{ if } template directives are supported');
        flush();
        const test = this.expression();
        this.skipSpace();
        this.accept('~');
        this.expect('}');
        const thenBranch = this.templateSequence(escapes, terminator);
        let elseParts: (string | Expr)[] = [];
        if (thenBranch.stoppedAt === 'else') {
          const elseBranch = this.templateSequence(escapes, terminator);
          if (elseBranch.stoppedAt !== 'endif') this.fail('expected %{ endif }');
          elseParts = elseBranch.parts;
        } else if (thenBranch.stoppedAt !== 'endif') {
          this.fail('expected %{ endif }');
        }
        parts.push({
          kind: 'cond',
          test,
          then: { kind: 'template', parts: thenBranch.parts },
          else: { kind: 'template', parts: elseParts },
        });
      } else if (escapes && this.peek() === '\\') {
        literal += this.escape();
      } else if (escapes && this.peek() === '\n') {
        this.fail('newline in quoted string');
      } else {
        literal += this.peek();
        this.pos++;
      }
    }
    if (terminator !== undefined) this.fail('unterminated string');
    return { parts: flushAnd(parts, literal), stoppedAt: undefined };
  }

  escape(): string {
    const next = this.peek(1);
    const simple: Record<string, string> = { n: '\n', r: '\r', t: '\t', '"': '"', '\\': '\\' };
    if (next in simple) {
      this.pos += 2;
      return simple[next]!;
    }
    if (next === 'u' || next === 'U') {
      const length = next === 'u' ? 4 : 8;
      const hex = this.text.slice(this.pos + 2, this.pos + 2 + length);
      if (!/^[0-9a-fA-F]+$/.test(hex) || hex.length !== length) this.fail('bad unicode escape');
      this.pos += 2 + length;
      return String.fromCodePoint(Number.parseInt(hex, 16));
    }
    return this.fail(`unknown escape \\${next}`);
  }

  expression(): Expr {
    const test = this.binary(0);
    this.skipSpace();
    if (this.peek() === '?') {
      this.pos++;
      const then = this.expression();
      this.expect(':');
      const otherwise = this.expression();
      return { kind: 'cond', test, then, else: otherwise };
    }
    return test;
  }

  binary(level: number): Expr {
    if (level >= BINARY_LEVELS.length) return this.unary();
    let left = this.binary(level + 1);
    for (;;) {
      this.skipSpace();
      const op = this.binaryOperator(BINARY_LEVELS[level]!);
      if (!op) return left;
      const right = this.binary(level + 1);
      left = { kind: 'binary', op, left, right };
    }
  }

  binaryOperator(ops: readonly BinaryOp[]): BinaryOp | undefined {
    // Longest first, and never mistake "=>" or "=" for "==", nor "..." for anything.
    for (const op of [...ops].sort((a, b) => b.length - a.length)) {
      if (!this.startsWith(op)) continue;
      if ((op === '<' || op === '>') && this.peek(1) === '=') continue;
      if (op === '-' && this.peek(1) === '>') continue;
      this.pos += op.length;
      return op;
    }
    return undefined;
  }

  unary(): Expr {
    this.skipSpace();
    if (this.peek() === '!' && this.peek(1) !== '=') {
      this.pos++;
      return { kind: 'unary', op: '!', operand: this.unary() };
    }
    if (this.peek() === '-') {
      this.pos++;
      return { kind: 'unary', op: '-', operand: this.unary() };
    }
    return this.postfix(this.primary());
  }

  postfix(initial: Expr): Expr {
    let expr = initial;
    for (;;) {
      // Traversals may not be separated from their target by a newline, but spaces are rare
      // enough in practice that we only skip horizontal space.
      const save = this.pos;
      while (this.peek() === ' ' || this.peek() === '\t') this.pos++;
      if (this.startsWith('[*]')) {
        this.pos += 3;
        return { kind: 'splat', target: expr, ops: this.splatOps(true) };
      }
      if (this.startsWith('.*')) {
        this.pos += 2;
        return { kind: 'splat', target: expr, ops: this.splatOps(false) };
      }
      if (this.peek() === '.' && this.peek(1) !== '.') {
        this.pos++;
        if (/[0-9]/.test(this.peek())) {
          const digits = this.readWhile(/[0-9]/);
          expr = { kind: 'index', target: expr, key: { kind: 'literal', value: Number(digits) } };
        } else {
          expr = { kind: 'attr', target: expr, name: this.identifier() };
        }
        continue;
      }
      if (this.peek() === '[') {
        this.pos++;
        const key = this.expression();
        this.expect(']');
        expr = { kind: 'index', target: expr, key };
        continue;
      }
      this.pos = save;
      return expr;
    }
  }

  splatOps(allowIndex: boolean): TraversalOp[] {
    const ops: TraversalOp[] = [];
    for (;;) {
      if (this.peek() === '.' && this.peek(1) !== '.') {
        this.pos++;
        ops.push({ kind: 'attr', name: this.identifier() });
      } else if (allowIndex && this.peek() === '[') {
        this.pos++;
        const key = this.expression();
        this.expect(']');
        ops.push({ kind: 'index', key });
      } else {
        return ops;
      }
    }
  }

  readWhile(pattern: RegExp): string {
    const start = this.pos;
    while (this.pos < this.text.length && pattern.test(this.peek())) this.pos++;
    return this.text.slice(start, this.pos);
  }

  identifier(): string {
    if (!/[A-Za-z_]/.test(this.peek())) this.fail('expected an identifier');
    return this.readWhile(/[A-Za-z0-9_-]/);
  }

  primary(): Expr {
    this.skipSpace();
    const c = this.peek();
    if (/[0-9]/.test(c)) {
      const number = this.readWhile(/[0-9.eE]/);
      const value = Number(number);
      if (!Number.isFinite(value)) this.fail(`bad number ${number}`);
      return { kind: 'literal', value };
    }
    if (c === '"') {
      this.pos++;
      const parts = this.templateParts(true, '"');
      this.pos++; // closing quote
      return simplifyTemplate(parts);
    }
    if (this.startsWith('<<')) this.fail('heredocs inside expressions are not supported');
    if (c === '(') {
      this.pos++;
      const inner = this.expression();
      this.expect(')');
      return inner;
    }
    if (c === '[') {
      this.pos++;
      return this.tupleOrFor();
    }
    if (c === '{') {
      this.pos++;
      return this.objectOrFor();
    }
    if (/[A-Za-z_]/.test(c)) {
      const name = this.identifier();
      if (name === 'true' || name === 'false') return { kind: 'literal', value: name === 'true' };
      if (name === 'null') return { kind: 'literal', value: null };
      if (this.peek() === ':' && this.peek(1) === ':')
        this.fail('provider-defined functions are not supported');
      if (this.peek() === '(') {
        this.pos++;
        return this.call(name);
      }
      return { kind: 'name', name };
    }
    return this.fail('expected an expression');
  }

  call(name: string): Expr {
    const args: Expr[] = [];
    let expand = false;
    if (this.accept(')')) return { kind: 'call', name, args, expand };
    for (;;) {
      args.push(this.expression());
      if (this.accept('...')) {
        expand = true;
        this.expect(')');
        return { kind: 'call', name, args, expand };
      }
      if (this.accept(')')) return { kind: 'call', name, args, expand };
      this.expect(',');
      if (this.accept(')')) return { kind: 'call', name, args, expand };
    }
  }

  keyword(word: string): boolean {
    this.skipSpace();
    if (!this.startsWith(word)) return false;
    const after = this.text[this.pos + word.length] ?? '';
    if (/[A-Za-z0-9_-]/.test(after)) return false;
    this.pos += word.length;
    return true;
  }

  forHeader(): { keyVar: string | undefined; valueVar: string; collection: Expr } {
    this.skipSpace();
    const first = this.identifier();
    let keyVar: string | undefined;
    let valueVar = first;
    if (this.accept(',')) {
      this.skipSpace();
      keyVar = first;
      valueVar = this.identifier();
    }
    if (!this.keyword('in')) this.fail('expected "in"');
    const collection = this.expression();
    this.expect(':');
    return { keyVar, valueVar, collection };
  }

  tupleOrFor(): Expr {
    if (this.keyword('for')) {
      const header = this.forHeader();
      const value = this.expression();
      const condition = this.keyword('if') ? this.expression() : undefined;
      this.expect(']');
      return { kind: 'for', result: 'tuple', ...header, key: undefined, value, group: false, condition };
    }
    const items: Expr[] = [];
    for (;;) {
      if (this.accept(']')) return { kind: 'tuple', items };
      items.push(this.expression());
      if (this.accept(']')) return { kind: 'tuple', items };
      this.expect(',');
    }
  }

  objectOrFor(): Expr {
    if (this.keyword('for')) {
      const header = this.forHeader();
      const key = this.expression();
      this.expect('=>');
      const value = this.expression();
      const group = this.accept('...');
      const condition = this.keyword('if') ? this.expression() : undefined;
      this.expect('}');
      return { kind: 'for', result: 'object', ...header, key, value, group, condition };
    }
    const items: { key: Expr; value: Expr }[] = [];
    for (;;) {
      if (this.accept('}')) return { kind: 'object', items };
      this.skipSpace();
      let key: Expr;
      if (/[A-Za-z_]/.test(this.peek())) {
        // A bare identifier key is the literal name (HCL), unless it is a traversal or call.
        const save = this.pos;
        const name = this.identifier();
        this.skipSpace();
        if ((this.peek() === '=' && this.peek(1) !== '=') || this.peek() === ':') {
          key = { kind: 'literal', value: name };
        } else {
          this.pos = save;
          key = this.expression();
        }
      } else {
        key = this.expression();
      }
      this.skipSpace();
      if (this.peek() === '=' && this.peek(1) !== '=' && this.peek(1) !== '>') this.pos++;
      else if (this.peek() === ':') this.pos++;
      else this.fail('expected "=" or ":" after an object key');
      const value = this.expression();
      items.push({ key, value });
      this.accept(',');
    }
  }
}

function flushAnd(parts: (string | Expr)[], literal: string): (string | Expr)[] {
  if (literal) parts.push(literal);
  return parts;
}
