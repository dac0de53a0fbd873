// The HCL evaluator the policy tests stand on: if it got Terraform's semantics wrong, the
// policy tests would prove things about a configuration Terraform would not build.
import { describe, expect, it } from 'vitest';
import { parseExpression, parseTemplateString } from './lib/hcl-expr.ts';
import { EvalError, Scope, Unknown, evaluate, makeSet, type Value } from './lib/hcl-eval.ts';
import { SourceTree, VariableValidationError, planConfiguration } from './lib/terraform.ts';

const files: Record<string, string> = { 'cfg/data.json': '{"b": {"x": 1}, "a": {"x": 2}}' };

function scope(names: Record<string, Value> = {}): Scope {
  return new Scope(
    {
      readFile: (path) =>
        files[path] ??
        (() => {
          throw new Error('missing');
        })(),
    },
    new Map(Object.entries(names)),
  );
}

const ev = (text: string, names: Record<string, Value> = {}) => evaluate(parseExpression(text), scope(names));
const tpl = (text: string, names: Record<string, Value> = {}) =>
  evaluate(parseTemplateString(text), scope(names));

describe('HCL expressions', () => {
  it('evaluates literals, operators and precedence', () => {
    expect(ev('1 + 2 * 3')).toBe(7);
    expect(ev('(1 + 2) * 3')).toBe(9);
    expect(ev('-4 + 1')).toBe(-3);
    expect(ev('!true || false && true')).toBe(false);
    expect(ev('"a" == "a" && 2 >= 2 && 1 != 2')).toBe(true);
    expect(ev('{ a = 1, "b" = [1, 2] }')).toEqual({ a: 1, b: [1, 2] });
    expect(ev('{\n  a = 1\n  b = 2\n}')).toEqual({ a: 1, b: 2 });
  });

  it('evaluates conditionals lazily', () => {
    expect(ev('true ? 1 : x.missing')).toBe(1);
    expect(ev('x == null ? "none" : x', { x: null })).toBe('none');
  });

  it('iterates maps in lexical key order, like Terraform', () => {
    expect(ev('[for k, v in m : k]', { m: { b: 1, a: 2, c: 3 } })).toEqual(['a', 'b', 'c']);
    expect(ev('keys(m)', { m: { b: 1, a: 2 } })).toEqual(['a', 'b']);
    expect(ev('values(m)', { m: { b: 1, a: 2 } })).toEqual([2, 1]);
  });

  it('builds objects with for expressions, grouping and filters', () => {
    const grants = [
      { key: 'k1', role: 'r', member: 'a' },
      { key: 'k1', role: 'r', member: 'b' },
      { key: 'k2', role: 'r', member: 'c' },
    ];
    expect(ev('{ for g in gs : g.key => g.member... }', { gs: grants })).toEqual({
      k1: ['a', 'b'],
      k2: ['c'],
    });
    expect(ev('{ for g in gs : g.member => g.key if g.key == "k1" }', { gs: grants })).toEqual({
      a: 'k1',
      b: 'k1',
    });
    expect(() => ev('{ for g in gs : g.key => g.member }', { gs: grants })).toThrow(
      /duplicate object key "k1"/,
    );
  });

  it('evaluates templates, including the %{ if } form hcl2json produces', () => {
    expect(tpl('serviceAccount:${x}@p.iam', { x: 'cb' })).toBe('serviceAccount:cb@p.iam');
    expect(tpl('${x}', { x: 5 })).toBe(5); // a bare interpolation keeps its type
    expect(tpl('only-%{if x == "(default)"}default%{else}${x}%{endif}', { x: '(default)' })).toBe(
      'only-default',
    );
    expect(tpl('only-%{if x == "(default)"}default%{else}${x}%{endif}', { x: 'named' })).toBe('only-named');
    expect(tpl('literal $${not} %%{either}')).toBe('literal ${not} %{either}');
    expect(tpl('resource.name.startsWith("projects/_/buckets/${b}/")', { b: 'x' })).toBe(
      'resource.name.startsWith("projects/_/buckets/x/")',
    );
    expect(tpl('${replace(s, "\\"", "")}', { s: 'a"b' })).toBe('ab');
  });

  it('implements try() and can() over evaluation errors only', () => {
    expect(ev('try(o.missing, "fallback")', { o: { present: 1 } })).toBe('fallback');
    expect(ev('try(o.present, "fallback")', { o: { present: 1 } })).toBe(1);
    expect(ev('can(regex("^[a-z]+$", "abc"))')).toBe(true);
    expect(ev('can(regex("^[a-z]+$", "ABC"))')).toBe(false);
    expect(() => ev('nosuchfunction(1)')).toThrow(/unsupported function/);
  });

  it('propagates values known only after apply instead of guessing them', () => {
    const unknown = new Unknown('google_thing.x.id');
    expect(ev('u', { u: unknown })).toBeInstanceOf(Unknown);
    expect(ev('u == "a"', { u: unknown })).toBeInstanceOf(Unknown);
    expect(tpl('prefix-${u}', { u: unknown })).toEqual(new Unknown('prefix-${google_thing.x.id}'));
    expect(ev('u.attr', { u: unknown })).toEqual(new Unknown('google_thing.x.id.attr'));
    expect(ev('length([u, 1])', { u: unknown })).toBe(2);
    expect(ev('upper(u)', { u: unknown })).toBeInstanceOf(Unknown);
  });

  it('reads files relative to the repository and decodes JSON', () => {
    expect(ev('jsondecode(file("cfg/sub/../data.json")).a.x')).toBe(2);
    expect(() => ev('file("cfg/none.json")')).toThrow(EvalError);
  });

  it('covers the functions the configuration uses', () => {
    expect(ev('merge({a = 1}, {b = 2}, {a = 3})')).toEqual({ a: 3, b: 2 });
    expect(ev('flatten([[1, [2]], 3])')).toEqual([1, 2, 3]);
    expect(ev('lookup({a = 1}, "b", 9)')).toBe(9);
    expect(ev('setproduct(["a", "b"], ["x"])')).toEqual([
      ['a', 'x'],
      ['b', 'x'],
    ]);
    expect(ev('sort(distinct(["b", "a", "b"]))')).toEqual(['a', 'b']);
    expect(ev('tonumber(trimsuffix("7776000s", "s")) <= 7776000')).toBe(true);
    expect(ev('coalesce(null, "x")')).toBe('x');
    expect(ev('min(600, 1800)')).toBe(600);
    expect(ev('alltrue([for d in [0, 7] : d == 0 || d >= 7])')).toBe(true);
    expect(ev('base64encode(jsonencode({b = 1, a = "x"}))')).toBe(
      Buffer.from('{"a":"x","b":1}').toString('base64'),
    );
    expect(ev('toset(["b", "a", "a"])')).toEqual(makeSet(['a', 'b']));
  });

  it('rejects syntax it does not understand rather than misreading it', () => {
    expect(() => parseTemplateString('%{ for x in y }${x}%{ endfor }')).toThrow(/only %\{ if \}/);
    expect(() => parseExpression('1 +')).toThrow();
    expect(() => parseExpression('provider::p::f(1)')).toThrow(/provider-defined/);
  });
});

describe('Terraform configuration expansion', () => {
  const tree = (mainTf: string, moduleTf = '') =>
    new SourceTree(
      new Map([
        ['root/main.tf', mainTf],
        ['mod/main.tf', moduleTf || 'variable "v" {}\noutput "o" { value = var.v }'],
      ]),
    );
  const plan = (mainTf: string, variables: Record<string, Value> = {}, moduleTf = '') =>
    planConfiguration(tree(mainTf, moduleTf), 'root', { variables, projectNumber: '1' });

  it('expands for_each over maps and sets, with each.key and each.value', async () => {
    const result = await plan(`
      resource "x_thing" "m" {
        for_each = { b = "two", a = "one" }
        name     = "\${each.key}-\${each.value}"
      }
      resource "x_thing" "s" {
        for_each = toset(["q", "p"])
        name     = each.value
      }`);
    expect(result.resources.map((r) => [r.address, r.values.name])).toEqual([
      ['x_thing.m["a"]', 'a-one'],
      ['x_thing.m["b"]', 'b-two'],
      ['x_thing.s["p"]', 'p'],
      ['x_thing.s["q"]', 'q'],
    ]);
  });

  it('refuses for_each over a list, as Terraform does', async () => {
    await expect(plan('resource "x_thing" "l" {\n for_each = ["a"]\n name = each.value\n}')).rejects.toThrow(
      /map or a set of strings/,
    );
  });

  it('refuses for_each over values known only after apply', async () => {
    await expect(
      plan(`
        resource "x_id" "a" { name = "a" }
        resource "x_thing" "t" {
          for_each = toset([x_id.a.generated])
          name     = each.value
        }`),
    ).rejects.toThrow(/known only after apply/);
  });

  it('expands dynamic blocks with their iterator', async () => {
    const result = await plan(`
      resource "x_thing" "d" {
        dynamic "rule" {
          for_each = { keep = 1, drop = 2 }
          content {
            name = rule.key
            age  = rule.value
          }
        }
      }`);
    expect(result.resources[0]!.values.rule).toEqual([
      { name: 'drop', age: 2 },
      { name: 'keep', age: 1 },
    ]);
  });

  it('passes module arguments, returns outputs and rejects unknown arguments', async () => {
    const ok = await plan(
      'module "m" {\n source = "../mod"\n v = "given"\n}\noutput "out" { value = module.m.o }',
    );
    expect(ok.outputs.out).toBe('given');
    await expect(plan('module "m" {\n source = "../mod"\n v = 1\n w = 2\n}')).rejects.toThrow(
      /no variable "w"/,
    );
    await expect(plan('module "m" {\n source = "../mod"\n}')).rejects.toThrow(/required/);
  });

  it('runs variable validations', async () => {
    const main = `
      variable "days" {
        default = 3
        validation {
          condition     = var.days == 0 || var.days >= 7
          error_message = "0 or at least 7."
        }
      }`;
    await expect(plan(main)).rejects.toThrow(VariableValidationError);
    await expect(plan(main, { days: 7 })).resolves.toBeDefined();
  });

  it('merges override files the way Terraform does', async () => {
    const files = new Map([
      ['root/main.tf', 'resource "x_thing" "t" {\n name = "a"\n size = 1\n nested { a = 1 }\n}'],
      ['root/main_override.tf', 'resource "x_thing" "t" {\n size = 2\n nested { b = 2 }\n}'],
    ]);
    const result = await planConfiguration(new SourceTree(files), 'root', {
      variables: {},
      projectNumber: '1',
    });
    expect(result.resources[0]!.values).toMatchObject({ name: 'a', size: 2, nested: [{ b: 2 }] });
  });

  it('models what providers compute from configuration, and nothing else', async () => {
    const result = await plan(`
      resource "google_service_account" "sa" {
        project    = "p1"
        account_id = "cb-x"
      }
      output "member" { value = google_service_account.sa.member }
      output "unique" { value = google_service_account.sa.unique_id }`);
    expect(result.outputs.member).toBe('serviceAccount:cb-x@p1.iam.gserviceaccount.com');
    expect(result.outputs.unique).toEqual(new Unknown('google_service_account.sa.unique_id'));
  });
});
