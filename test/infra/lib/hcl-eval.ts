// Evaluates the AST of ./hcl-expr.ts with Terraform's semantics where they matter for policy:
// map and object iteration in lexical key order, for_each-style sets, lazy conditionals,
// try()/can(), duplicate-key errors in for expressions, and values that are only known after
// apply (Unknown) propagating through operators and templates instead of being guessed.
import { parseTemplateString, type Expr, type TraversalOp } from './hcl-expr.ts';

export type Value = null | boolean | number | string | Value[] | ValueObject | Unknown | Lazy;
export interface ValueObject {
  [key: string]: Value;
}

/** A value Terraform would know only after apply (a computed attribute). */
export class Unknown {
  readonly description: string;
  constructor(description: string) {
    this.description = description;
  }
  toString(): string {
    return `\${${this.description}}`;
  }
}

/** An object whose attributes are computed on first access (var, local, module, resources). */
export class Lazy {
  readonly label: string;
  readonly #get: (name: string) => Value;
  readonly #keys: () => string[];
  constructor(label: string, get: (name: string) => Value, keys: () => string[]) {
    this.label = label;
    this.#get = get;
    this.#keys = keys;
  }
  get(name: string): Value {
    return this.#get(name);
  }
  keys(): string[] {
    return this.#keys();
  }
}

/** An error Terraform would report while evaluating (what try() and can() catch). */
export class EvalError extends Error {
  override name = 'EvalError';
}

const SETS = new WeakSet<Value[]>();
/** Resource instances: reading an attribute they do not configure yields Unknown. */
const COMPUTED = new WeakMap<ValueObject, string>();

export function makeSet(items: Value[]): Value[] {
  const unique: Value[] = [];
  for (const item of items) if (!unique.some((u) => deepEqual(u, item))) unique.push(item);
  unique.sort(compareForSort);
  SETS.add(unique);
  return unique;
}

export function isSet(value: Value): boolean {
  return Array.isArray(value) && SETS.has(value);
}

export function markComputed(object: ValueObject, address: string): ValueObject {
  COMPUTED.set(object, address);
  return object;
}

export function isObject(value: Value): value is ValueObject {
  return (
    typeof value === 'object' &&
    value !== null &&
    !Array.isArray(value) &&
    !(value instanceof Unknown) &&
    !(value instanceof Lazy)
  );
}

export function containsUnknown(value: Value): boolean {
  if (value instanceof Unknown) return true;
  if (Array.isArray(value)) return value.some(containsUnknown);
  if (isObject(value)) return Object.values(value).some(containsUnknown);
  return false;
}

export function deepEqual(a: Value, b: Value): boolean {
  if (a === b) return true;
  if (Array.isArray(a) && Array.isArray(b))
    return a.length === b.length && a.every((x, i) => deepEqual(x, b[i]!));
  if (isObject(a) && isObject(b)) {
    const ka = Object.keys(a).sort();
    const kb = Object.keys(b).sort();
    return deepEqual(ka, kb) && ka.every((k) => deepEqual(a[k]!, b[k]!));
  }
  return false;
}

function compareForSort(a: Value, b: Value): number {
  const sa = typeof a === 'string' ? a : JSON.stringify(a);
  const sb = typeof b === 'string' ? b : JSON.stringify(b);
  return sa < sb ? -1 : sa > sb ? 1 : 0;
}

export function typeName(value: Value): string {
  if (value === null) return 'null';
  if (value instanceof Unknown) return 'unknown';
  if (value instanceof Lazy) return 'object';
  if (Array.isArray(value)) return isSet(value) ? 'set' : 'tuple';
  if (isObject(value)) return 'object';
  return typeof value;
}

/** Name resolution: a chain of frames, innermost first. */
export class Scope {
  readonly #names: ReadonlyMap<string, Value>;
  readonly #parent: Scope | undefined;
  readonly #fallback: ((name: string) => Value | undefined) | undefined;
  readonly context: EvalContext;

  constructor(
    context: EvalContext,
    names: ReadonlyMap<string, Value>,
    parent?: Scope,
    fallback?: (name: string) => Value | undefined,
  ) {
    this.context = context;
    this.#names = names;
    this.#parent = parent;
    this.#fallback = fallback;
  }

  with(names: Record<string, Value>): Scope {
    return new Scope(this.context, new Map(Object.entries(names)), this);
  }

  lookup(name: string): Value {
    if (this.#names.has(name)) return this.#names.get(name)!;
    const fromFallback = this.#fallback?.(name);
    if (fromFallback !== undefined) return fromFallback;
    if (this.#parent) return this.#parent.lookup(name);
    throw new EvalError(`unknown name "${name}"`);
  }
}

export interface EvalContext {
  /** Reads a file for file(); paths are repository-relative and already normalised. */
  readFile(path: string): string;
}

// ---- evaluation ----

export function evaluateString(text: string, scope: Scope): Value {
  return evaluate(parseTemplateString(text), scope);
}

export function evaluate(expr: Expr, scope: Scope): Value {
  switch (expr.kind) {
    case 'literal':
      return expr.value;
    case 'template': {
      let text = '';
      let unknown = false;
      for (const part of expr.parts) {
        if (typeof part === 'string') {
          text += part;
          continue;
        }
        const value = evaluate(part, scope);
        if (value instanceof Unknown) {
          unknown = true;
          text += value.toString();
        } else {
          text += toTemplateString(value);
        }
      }
      return unknown ? new Unknown(text.replace(/^\$\{(.*)\}$/s, '$1')) : text;
    }
    case 'name':
      return scope.lookup(expr.name);
    case 'attr':
      return getAttr(evaluate(expr.target, scope), expr.name);
    case 'index':
      return getIndex(evaluate(expr.target, scope), evaluate(expr.key, scope));
    case 'splat':
      return splat(evaluate(expr.target, scope), expr.ops, scope);
    case 'call':
      return callFunction(expr, scope);
    case 'unary': {
      const operand = evaluate(expr.operand, scope);
      if (operand instanceof Unknown) return new Unknown(`${expr.op}${operand.description}`);
      if (expr.op === '!') return !toBool(operand);
      return -toNumber(operand);
    }
    case 'binary':
      return binary(expr.op, expr.left, expr.right, scope);
    case 'cond': {
      const test = evaluate(expr.test, scope);
      if (test instanceof Unknown) return new Unknown(`(${test.description} ? ... : ...)`);
      return toBool(test) ? evaluate(expr.then, scope) : evaluate(expr.else, scope);
    }
    case 'tuple':
      return expr.items.map((item) => evaluate(item, scope));
    case 'object': {
      const result: ValueObject = {};
      for (const item of expr.items) {
        const key = evaluate(item.key, scope);
        if (key instanceof Unknown) return new Unknown('object with unknown key');
        result[toKey(key)] = evaluate(item.value, scope);
      }
      return result;
    }
    case 'for':
      return forExpression(expr, scope);
  }
}

function toTemplateString(value: Value): string {
  if (typeof value === 'string') return value;
  if (typeof value === 'number') return String(value);
  if (typeof value === 'boolean') return value ? 'true' : 'false';
  if (value === null) throw new EvalError('cannot include null in a string template');
  throw new EvalError(`cannot include a ${typeName(value)} in a string template`);
}

export function toKey(value: Value): string {
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  throw new EvalError(`a ${typeName(value)} cannot be a map key`);
}

function toBool(value: Value): boolean {
  if (typeof value === 'boolean') return value;
  if (value === 'true' || value === 'false') return value === 'true';
  throw new EvalError(`a ${typeName(value)} is not a bool`);
}

function toNumber(value: Value): number {
  if (typeof value === 'number') return value;
  if (typeof value === 'string' && value.trim() !== '' && Number.isFinite(Number(value)))
    return Number(value);
  throw new EvalError(`a ${typeName(value)} is not a number`);
}

export function getAttr(target: Value, name: string): Value {
  if (target instanceof Unknown) return new Unknown(`${target.description}.${name}`);
  if (target instanceof Lazy) return target.get(name);
  if (isObject(target)) {
    if (Object.hasOwn(target, name)) return target[name]!;
    const computed = COMPUTED.get(target);
    if (computed !== undefined) return new Unknown(`${computed}.${name}`);
    throw new EvalError(`unsupported attribute "${name}" (has: ${Object.keys(target).sort().join(', ')})`);
  }
  throw new EvalError(`cannot read attribute "${name}" of a ${typeName(target)}`);
}

export function getIndex(target: Value, key: Value): Value {
  if (target instanceof Unknown) return new Unknown(`${target.description}[${JSON.stringify(key)}]`);
  if (key instanceof Unknown) return new Unknown(`...[${key.description}]`);
  if (Array.isArray(target)) {
    if (isSet(target)) throw new EvalError('elements of a set cannot be indexed');
    const index = toNumber(key);
    if (!Number.isInteger(index) || index < 0 || index >= target.length) {
      throw new EvalError(`index ${index} out of range for a tuple of ${target.length}`);
    }
    return target[index]!;
  }
  if (target instanceof Lazy) return target.get(toKey(key));
  if (isObject(target)) {
    const name = toKey(key);
    if (!Object.hasOwn(target, name)) {
      throw new EvalError(`no element "${name}" (has: ${Object.keys(target).sort().join(', ')})`);
    }
    return target[name]!;
  }
  throw new EvalError(`cannot index a ${typeName(target)}`);
}

function splat(target: Value, ops: readonly TraversalOp[], scope: Scope): Value {
  if (target instanceof Unknown) return new Unknown(`${target.description}[*]`);
  const items = target === null ? [] : Array.isArray(target) ? target : [target];
  return items.map((item) =>
    ops.reduce<Value>(
      (value, op) =>
        op.kind === 'attr' ? getAttr(value, op.name) : getIndex(value, evaluate(op.key, scope)),
      item,
    ),
  );
}

/** Iteration as Terraform does it: objects and maps in lexical key order. */
export function entriesOf(collection: Value): [Value, Value][] {
  if (Array.isArray(collection)) {
    if (isSet(collection)) return collection.map((item) => [item, item]);
    return collection.map((item, index) => [index, item]);
  }
  if (collection instanceof Lazy)
    return collection
      .keys()
      .sort()
      .map((k) => [k, collection.get(k)]);
  if (isObject(collection))
    return Object.keys(collection)
      .sort()
      .map((k) => [k, collection[k]!]);
  throw new EvalError(`cannot iterate over a ${typeName(collection)}`);
}

function forExpression(expr: Extract<Expr, { kind: 'for' }>, scope: Scope): Value {
  const collection = evaluate(expr.collection, scope);
  if (collection instanceof Unknown) return new Unknown(`for expression over ${collection.description}`);
  const tuple: Value[] = [];
  const object: ValueObject = {};
  const groups = new Map<string, Value[]>();
  for (const [key, value] of entriesOf(collection)) {
    const names: Record<string, Value> = { [expr.valueVar]: value };
    if (expr.keyVar !== undefined) names[expr.keyVar] = key;
    const inner = scope.with(names);
    if (expr.condition) {
      const keep = evaluate(expr.condition, inner);
      if (keep instanceof Unknown) return new Unknown('for expression with an unknown condition');
      if (!toBool(keep)) continue;
    }
    if (expr.result === 'tuple') {
      tuple.push(evaluate(expr.value, inner));
      continue;
    }
    const resultKey = evaluate(expr.key!, inner);
    if (resultKey instanceof Unknown) return new Unknown('for expression with an unknown key');
    const name = toKey(resultKey);
    const resultValue = evaluate(expr.value, inner);
    if (expr.group) {
      const group = groups.get(name) ?? [];
      group.push(resultValue);
      groups.set(name, group);
    } else {
      if (Object.hasOwn(object, name))
        throw new EvalError(`duplicate object key "${name}" in a for expression`);
      object[name] = resultValue;
    }
  }
  if (expr.result === 'tuple') return tuple;
  if (expr.group) for (const [name, group] of groups) object[name] = group;
  return object;
}

function binary(op: string, leftExpr: Expr, rightExpr: Expr, scope: Scope): Value {
  const left = evaluate(leftExpr, scope);
  // Both sides are evaluated, as Terraform does: `a != null && a.x` fails there too.
  const right = evaluate(rightExpr, scope);
  if (left instanceof Unknown || right instanceof Unknown) return new Unknown(`(... ${op} ...)`);
  switch (op) {
    case '==':
      return deepEqual(left, right);
    case '!=':
      return !deepEqual(left, right);
    case '&&':
      return toBool(left) && toBool(right);
    case '||':
      return toBool(left) || toBool(right);
    case '<':
      return toNumber(left) < toNumber(right);
    case '<=':
      return toNumber(left) <= toNumber(right);
    case '>':
      return toNumber(left) > toNumber(right);
    case '>=':
      return toNumber(left) >= toNumber(right);
    case '+':
      return toNumber(left) + toNumber(right);
    case '-':
      return toNumber(left) - toNumber(right);
    case '*':
      return toNumber(left) * toNumber(right);
    case '/':
      return toNumber(left) / toNumber(right);
    case '%':
      return toNumber(left) % toNumber(right);
  }
  throw new EvalError(`unknown operator ${op}`);
}

// ---- functions ----

type Fn = (args: Value[], scope: Scope) => Value;

function str(value: Value, fn: string): string {
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  throw new EvalError(`${fn}: expected a string, got a ${typeName(value)}`);
}

function list(value: Value, fn: string): Value[] {
  if (Array.isArray(value)) return value;
  throw new EvalError(`${fn}: expected a list, got a ${typeName(value)}`);
}

function obj(value: Value, fn: string): ValueObject {
  if (isObject(value)) return value;
  if (value instanceof Lazy) return Object.fromEntries(value.keys().map((k) => [k, value.get(k)]));
  throw new EvalError(`${fn}: expected a map or object, got a ${typeName(value)}`);
}

function fromJson(value: unknown): Value {
  if (Array.isArray(value)) return value.map(fromJson);
  if (value && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, fromJson(v)]));
  }
  return value as Value;
}

export function toJson(value: Value): unknown {
  if (value instanceof Unknown) throw new EvalError('cannot encode an unknown value');
  if (value instanceof Lazy) throw new EvalError('cannot encode a lazy object');
  if (Array.isArray(value)) return value.map(toJson);
  if (isObject(value))
    return Object.fromEntries(
      Object.keys(value)
        .sort()
        .map((k) => [k, toJson(value[k]!)]),
    );
  return value;
}

/** Functions that look only at the shape of their arguments, so unknown elements pass through. */
const SHAPE_ONLY = new Set([
  'merge',
  'concat',
  'flatten',
  'keys',
  'values',
  'length',
  'lookup',
  'tolist',
  'tomap',
  'element',
  'coalesce',
]);

const FUNCTIONS: Record<string, Fn> = {
  jsondecode: ([text]) => fromJson(JSON.parse(str(text!, 'jsondecode'))),
  jsonencode: ([value]) => JSON.stringify(toJson(value!)),
  file: ([path], scope) => {
    const normalised = normalisePath(str(path!, 'file'));
    try {
      return scope.context.readFile(normalised);
    } catch (error) {
      throw new EvalError(`file: cannot read ${normalised}: ${(error as Error).message}`);
    }
  },
  flatten: ([value]) => {
    const out: Value[] = [];
    const walk = (v: Value) => (Array.isArray(v) ? v.forEach(walk) : out.push(v));
    list(value!, 'flatten').forEach(walk);
    return out;
  },
  merge: (args) => {
    const out: ValueObject = {};
    for (const arg of args) if (arg !== null) Object.assign(out, obj(arg, 'merge'));
    return out;
  },
  concat: (args) => args.flatMap((arg) => list(arg, 'concat')),
  keys: ([value]) => Object.keys(obj(value!, 'keys')).sort(),
  values: ([value]) => {
    const o = obj(value!, 'values');
    return Object.keys(o)
      .sort()
      .map((k) => o[k]!);
  },
  lookup: ([map, key, fallback]) => {
    const o = obj(map!, 'lookup');
    const name = str(key!, 'lookup');
    if (Object.hasOwn(o, name)) return o[name]!;
    if (fallback === undefined) throw new EvalError(`lookup: no key "${name}" and no default`);
    return fallback;
  },
  length: ([value]) => {
    if (typeof value === 'string') return [...value].length;
    if (Array.isArray(value)) return value.length;
    return Object.keys(obj(value!, 'length')).length;
  },
  contains: ([collection, value]) => list(collection!, 'contains').some((item) => deepEqual(item, value!)),
  toset: ([value]) => makeSet(list(value!, 'toset')),
  tolist: ([value]) => [...list(value!, 'tolist')],
  tomap: ([value]) => ({ ...obj(value!, 'tomap') }),
  sort: ([value]) => [...list(value!, 'sort').map((v) => str(v, 'sort'))].sort(),
  distinct: ([value]) => {
    const out: Value[] = [];
    for (const item of list(value!, 'distinct')) if (!out.some((o) => deepEqual(o, item))) out.push(item);
    return out;
  },
  reverse: ([value]) => [...list(value!, 'reverse')].reverse(),
  setproduct: (args) =>
    args.reduce<Value[][]>(
      (acc, arg) => acc.flatMap((prefix) => list(arg, 'setproduct').map((item) => [...prefix, item])),
      [[]],
    ),
  zipmap: ([keys, vals]) => {
    const k = list(keys!, 'zipmap');
    const v = list(vals!, 'zipmap');
    return Object.fromEntries(k.map((key, i) => [str(key, 'zipmap'), v[i] ?? null]));
  },
  element: ([value, index]) => {
    const l = list(value!, 'element');
    return l[toNumber(index!) % l.length]!;
  },
  one: ([value]) => {
    const l = list(value!, 'one');
    if (l.length > 1) throw new EvalError('one: more than one element');
    return l[0] ?? null;
  },
  compact: ([value]) => list(value!, 'compact').filter((v) => v !== null && v !== ''),
  coalesce: (args) => {
    const found = args.find((a) => a !== null && a !== '');
    if (found === undefined) throw new EvalError('coalesce: no non-null argument');
    return found;
  },
  alltrue: ([value]) => list(value!, 'alltrue').every((v) => toBool(v)),
  anytrue: ([value]) => list(value!, 'anytrue').some((v) => toBool(v)),
  join: ([sep, value]) =>
    list(value!, 'join')
      .map((v) => str(v, 'join'))
      .join(str(sep!, 'join')),
  split: ([sep, value]) => str(value!, 'split').split(str(sep!, 'split')),
  replace: ([value, search, replacement]) => {
    const s = str(search!, 'replace');
    const r = str(replacement!, 'replace');
    if (s.length > 1 && s.startsWith('/') && s.endsWith('/')) {
      return str(value!, 'replace').replace(
        new RegExp(s.slice(1, -1), 'g'),
        r.replace(/\$\{?(\d+)\}?/g, '$$$1'),
      );
    }
    return str(value!, 'replace').split(s).join(r);
  },
  lower: ([value]) => str(value!, 'lower').toLowerCase(),
  upper: ([value]) => str(value!, 'upper').toUpperCase(),
  trimspace: ([value]) => str(value!, 'trimspace').trim(),
  trimprefix: ([value, prefix]) => {
    const s = str(value!, 'trimprefix');
    const p = str(prefix!, 'trimprefix');
    return s.startsWith(p) ? s.slice(p.length) : s;
  },
  trimsuffix: ([value, suffix]) => {
    const s = str(value!, 'trimsuffix');
    const p = str(suffix!, 'trimsuffix');
    return p && s.endsWith(p) ? s.slice(0, -p.length) : s;
  },
  startswith: ([value, prefix]) => str(value!, 'startswith').startsWith(str(prefix!, 'startswith')),
  endswith: ([value, suffix]) => str(value!, 'endswith').endsWith(str(suffix!, 'endswith')),
  substr: ([value, offset, length]) => {
    const chars = [...str(value!, 'substr')];
    const start = toNumber(offset!);
    const count = toNumber(length!);
    return chars.slice(start, count < 0 ? undefined : start + count).join('');
  },
  format: ([spec, ...args]) => {
    let i = 0;
    return str(spec!, 'format').replace(/%[sdv%]/g, (m) =>
      m === '%%' ? '%' : toTemplateString(args[i++] ?? null),
    );
  },
  regex: ([pattern, value]) => {
    const match = new RegExp(str(pattern!, 'regex'), 'u').exec(str(value!, 'regex'));
    if (!match) throw new EvalError('regex: no match');
    if (match.length === 1) return match[0];
    return match.slice(1).map((g) => g ?? null);
  },
  tostring: ([value]) => (value === null ? null : str(value!, 'tostring')),
  tonumber: ([value]) => (value === null ? null : toNumber(value!)),
  tobool: ([value]) => (value === null ? null : toBool(value!)),
  min: (args) => Math.min(...args.map(toNumber)),
  max: (args) => Math.max(...args.map(toNumber)),
  abs: ([value]) => Math.abs(toNumber(value!)),
  floor: ([value]) => Math.floor(toNumber(value!)),
  ceil: ([value]) => Math.ceil(toNumber(value!)),
  sum: ([value]) => list(value!, 'sum').reduce<number>((a, b) => a + toNumber(b), 0),
  range: (args) => {
    const [start, end] =
      args.length === 1 ? [0, toNumber(args[0]!)] : [toNumber(args[0]!), toNumber(args[1]!)];
    return Array.from({ length: Math.max(0, end - start) }, (_, i) => start + i);
  },
  base64encode: ([value]) => Buffer.from(str(value!, 'base64encode'), 'utf8').toString('base64'),
  base64decode: ([value]) => Buffer.from(str(value!, 'base64decode'), 'base64').toString('utf8'),
};

export function normalisePath(path: string): string {
  const out: string[] = [];
  for (const part of path.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..') {
      if (out.length === 0 || out[out.length - 1] === '..') out.push('..');
      else out.pop();
    } else {
      out.push(part);
    }
  }
  return out.join('/');
}

function callFunction(expr: Extract<Expr, { kind: 'call' }>, scope: Scope): Value {
  // try() and can() take expressions, not values: they catch evaluation errors.
  if (expr.name === 'try') {
    for (const arg of expr.args) {
      try {
        return evaluate(arg, scope);
      } catch (error) {
        if (!(error instanceof EvalError)) throw error;
      }
    }
    throw new EvalError('try: no argument could be evaluated');
  }
  if (expr.name === 'can') {
    try {
      const value = evaluate(expr.args[0]!, scope);
      return value instanceof Unknown ? value : true;
    } catch (error) {
      if (!(error instanceof EvalError)) throw error;
      return false;
    }
  }
  const fn = FUNCTIONS[expr.name];
  if (!fn) throw new Error(`unsupported function ${expr.name}() (extend test/infra/lib/hcl-eval.ts)`);
  let args = expr.args.map((arg) => evaluate(arg, scope));
  if (expr.expand) {
    const last = args.pop();
    if (last instanceof Unknown) return new Unknown(`${expr.name}(...)`);
    args = [...args, ...list(last!, expr.name)];
  }
  if (!SHAPE_ONLY.has(expr.name) && args.some(containsUnknown)) return new Unknown(`${expr.name}(...)`);
  if (SHAPE_ONLY.has(expr.name) && args.some((a) => a instanceof Unknown))
    return new Unknown(`${expr.name}(...)`);
  return fn(args, scope);
}
