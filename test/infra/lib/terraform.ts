// Loads a Terraform configuration with @cdktf/hcl2json and expands it the way `terraform
// plan` would lay it out: modules instantiated with their arguments, variables defaulted and
// validated, locals and outputs evaluated, and every resource and data source expanded per
// for_each/count key with its dynamic blocks. Attributes a provider computes and that can be
// derived from configuration (a service account's email, a key's resource name, a data
// source describing the project's service agents) are modelled; anything else a provider
// computes stays Unknown, which policy checks treat as "cannot prove", never as "fine".
//
// What this cannot do, and a real `terraform plan` against Google Cloud would: type-check
// against the provider schema, resolve remote modules, or know what already exists.
import { parse } from '@cdktf/hcl2json';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import {
  EvalError,
  Lazy,
  Scope,
  Unknown,
  containsUnknown,
  entriesOf,
  evaluateString,
  isObject,
  isSet,
  markComputed,
  normalisePath,
  toJson,
  toKey,
  typeName,
  type EvalContext,
  type Value,
  type ValueObject,
} from './hcl-eval.ts';

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type Body = { [key: string]: Json };

/** Repository files by repository-relative posix path; fixtures overlay it. */
export class SourceTree {
  readonly files: Map<string, string>;
  constructor(files: Map<string, string>) {
    this.files = files;
  }

  static fromDirectory(
    root: string,
    dirs: readonly string[],
    extraFiles: readonly string[] = [],
  ): SourceTree {
    const files = new Map<string, string>();
    const walk = (dir: string) => {
      for (const entry of readdirSync(join(root, dir))) {
        const path = `${dir}/${entry}`;
        if (entry === '.terraform' || entry === 'node_modules') continue;
        if (statSync(join(root, path)).isDirectory()) walk(path);
        else files.set(path, readFileSync(join(root, path), 'utf8'));
      }
    };
    for (const dir of dirs) walk(dir);
    for (const file of extraFiles) files.set(file, readFileSync(join(root, file), 'utf8'));
    return new SourceTree(files);
  }

  /** A copy with `overlay`'s files laid over `prefix` (added, or replacing same-named ones). */
  withOverlay(overlayRoot: string, prefix: string): SourceTree {
    const files = new Map(this.files);
    const walk = (dir: string) => {
      for (const entry of readdirSync(dir)) {
        const path = join(dir, entry);
        if (statSync(path).isDirectory()) walk(path);
        else
          files.set(
            `${prefix}/${relative(overlayRoot, path).split('\\').join('/')}`,
            readFileSync(path, 'utf8'),
          );
      }
    };
    walk(overlayRoot);
    return new SourceTree(files);
  }

  /** A copy with one file added or replaced. */
  withFile(path: string, text: string): SourceTree {
    return new SourceTree(new Map(this.files).set(path, text));
  }

  read(path: string): string {
    const text = this.files.get(path);
    if (text === undefined) throw new Error(`no such file: ${path}`);
    return text;
  }

  tfFiles(dir: string): string[] {
    return [...this.files.keys()]
      .filter((path) => path.endsWith('.tf') && path.slice(0, path.lastIndexOf('/')) === dir)
      .sort();
  }

  allTfFiles(): string[] {
    return [...this.files.keys()].filter((path) => path.endsWith('.tf')).sort();
  }
}

interface Declaration {
  readonly type: string;
  readonly name: string;
  readonly body: Body;
  readonly file: string;
}

export interface ModuleConfig {
  readonly dir: string;
  readonly files: readonly string[];
  readonly resources: ReadonlyMap<string, Declaration>;
  readonly data: ReadonlyMap<string, Declaration>;
  readonly variables: ReadonlyMap<string, Declaration>;
  readonly locals: ReadonlyMap<string, { value: Json; file: string }>;
  readonly outputs: ReadonlyMap<string, Declaration>;
  readonly modules: ReadonlyMap<string, Declaration>;
  readonly providers: readonly Declaration[];
}

const parsedFiles = new Map<string, Record<string, unknown>>();

/** Parses one .tf file with HashiCorp's HCL parser (cached by content). */
export async function parseTf(path: string, text: string): Promise<Record<string, unknown>> {
  const cacheKey = `${path}\n${text}`;
  const cached = parsedFiles.get(cacheKey);
  if (cached) return cached;
  const json = (await parse(path, text)) as Record<string, unknown>;
  parsedFiles.set(cacheKey, json);
  return json;
}

function isOverride(path: string): boolean {
  const file = path.slice(path.lastIndexOf('/') + 1);
  return file === 'override.tf' || file.endsWith('_override.tf');
}

/** Terraform's override-file merge: attributes replace, nested block types replace wholesale. */
function mergeOverride(original: Body, override: Body): Body {
  const merged: Body = { ...original };
  for (const [key, value] of Object.entries(override)) {
    if (key === 'dynamic' && isJsonObject(value) && isJsonObject(merged.dynamic ?? null)) {
      merged.dynamic = { ...(merged.dynamic as Body), ...value };
    } else {
      merged[key] = value;
    }
  }
  return merged;
}

function isJsonObject(value: Json): value is Body {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

export async function loadModule(tree: SourceTree, dir: string): Promise<ModuleConfig> {
  const files = tree.tfFiles(dir);
  if (files.length === 0) throw new Error(`no .tf files in ${dir}`);
  const resources = new Map<string, Declaration>();
  const data = new Map<string, Declaration>();
  const variables = new Map<string, Declaration>();
  const locals = new Map<string, { value: Json; file: string }>();
  const outputs = new Map<string, Declaration>();
  const modules = new Map<string, Declaration>();
  const providers: Declaration[] = [];

  const ordered = [...files.filter((f) => !isOverride(f)), ...files.filter(isOverride)];
  for (const file of ordered) {
    const override = isOverride(file);
    const json = await parseTf(file, tree.read(file));
    const typed = (kind: string, target: Map<string, Declaration>) => {
      const byType = (json[kind] ?? {}) as Record<string, Record<string, Body[]>>;
      for (const [type, byName] of Object.entries(byType)) {
        for (const [name, bodies] of Object.entries(byName)) {
          for (const body of bodies)
            add(target, `${type}.${name}`, { type, name, body, file }, override, kind);
        }
      }
    };
    const named = (kind: string, target: Map<string, Declaration>) => {
      const byName = (json[kind] ?? {}) as Record<string, Body[]>;
      for (const [name, bodies] of Object.entries(byName)) {
        for (const body of bodies) add(target, name, { type: kind, name, body, file }, override, kind);
      }
    };
    typed('resource', resources);
    typed('data', data);
    named('variable', variables);
    named('output', outputs);
    named('module', modules);
    for (const block of (json.locals ?? []) as Body[]) {
      for (const [name, value] of Object.entries(block)) {
        if (locals.has(name) && !override) throw new Error(`${file}: duplicate local value "${name}"`);
        locals.set(name, { value, file });
      }
    }
    for (const [name, bodies] of Object.entries((json.provider ?? {}) as Record<string, Body[]>)) {
      for (const body of bodies) providers.push({ type: 'provider', name, body, file });
    }
  }
  return { dir, files, resources, data, variables, locals, outputs, modules, providers };

  function add(
    target: Map<string, Declaration>,
    key: string,
    decl: Declaration,
    override: boolean,
    kind: string,
  ) {
    const existing = target.get(key);
    if (override) {
      if (!existing) throw new Error(`${decl.file}: override for ${kind} ${key}, which does not exist`);
      target.set(key, { ...existing, body: mergeOverride(existing.body, decl.body) });
      return;
    }
    if (existing) throw new Error(`${decl.file}: duplicate ${kind} ${key} (also in ${existing.file})`);
    target.set(key, decl);
  }
}

/** Loads a root module and, recursively, every local module it calls. */
export async function loadConfiguration(
  tree: SourceTree,
  rootDir: string,
): Promise<Map<string, ModuleConfig>> {
  const configs = new Map<string, ModuleConfig>();
  const visit = async (dir: string) => {
    if (configs.has(dir)) return;
    const config = await loadModule(tree, dir);
    configs.set(dir, config);
    for (const call of config.modules.values()) {
      const source = call.body.source;
      if (typeof source !== 'string' || !source.startsWith('.')) {
        throw new Error(
          `${call.file}: module "${call.name}" must have a local source, got ${JSON.stringify(source)}`,
        );
      }
      await visit(normalisePath(`${dir}/${source}`));
    }
  };
  await visit(rootDir);
  return configs;
}

// ---- planning ----

export interface PlannedResource {
  readonly address: string;
  readonly modulePath: string;
  readonly mode: 'managed' | 'data';
  readonly type: string;
  readonly name: string;
  readonly key: string | number | undefined;
  readonly values: ValueObject;
  /** The raw hcl2json body (meta-arguments such as lifecycle included). */
  readonly config: Body;
  readonly file: string;
}

export interface Plan {
  readonly rootDir: string;
  readonly resources: readonly PlannedResource[];
  readonly outputs: ValueObject;
  readonly files: readonly string[];
}

export interface PlanOptions {
  /** Root variable values, as a terraform.tfvars would give them. */
  readonly variables: Record<string, Value>;
  /** The project number the data sources report (a placeholder: it is not in config). */
  readonly projectNumber: string;
}

/** A variable's validation rule failed: Terraform would refuse to plan. */
export class VariableValidationError extends Error {
  override name = 'VariableValidationError';
}

const MODULE_META = new Set(['source', 'version', 'providers', 'depends_on', 'count', 'for_each']);
const META = new Set([
  'for_each',
  'count',
  'depends_on',
  'lifecycle',
  'provider',
  'provisioner',
  'connection',
]);

export async function planConfiguration(
  tree: SourceTree,
  rootDir: string,
  options: PlanOptions,
): Promise<Plan> {
  const configs = await loadConfiguration(tree, rootDir);
  const rootConfig = configs.get(rootDir)!;
  for (const name of Object.keys(options.variables)) {
    if (!rootConfig.variables.has(name))
      throw new EvalError(`${rootDir}: a value was given for undeclared variable "${name}"`);
  }
  const planner = new Planner(tree, configs, options);
  const root = planner.instantiate(rootDir, '', undefined);
  planner.walk(root);
  const outputs: ValueObject = {};
  for (const name of root.config.outputs.keys()) outputs[name] = root.output(name);
  return {
    rootDir,
    resources: planner.resources,
    outputs,
    files: [...configs.values()].flatMap((c) => c.files),
  };
}

class Planner implements EvalContext {
  readonly resources: PlannedResource[] = [];
  readonly tree: SourceTree;
  readonly configs: Map<string, ModuleConfig>;
  readonly options: PlanOptions;

  constructor(tree: SourceTree, configs: Map<string, ModuleConfig>, options: PlanOptions) {
    this.tree = tree;
    this.configs = configs;
    this.options = options;
  }

  readFile(path: string): string {
    return this.tree.read(path);
  }

  instantiate(
    dir: string,
    address: string,
    parent: { instance: ModuleInstance; call: Declaration } | undefined,
  ) {
    const config = this.configs.get(dir);
    if (!config) throw new Error(`module ${dir} was not loaded`);
    return new ModuleInstance(this, config, address, parent);
  }

  walk(instance: ModuleInstance): void {
    const { config } = instance;
    for (const name of config.variables.keys()) instance.variable(name);
    for (const name of config.locals.keys()) instance.local(name);
    for (const decl of config.resources.values()) instance.instances('managed', decl.type, decl.name);
    for (const decl of config.data.values()) instance.instances('data', decl.type, decl.name);
    for (const [name, call] of config.modules) {
      const child = instance.child(name);
      for (const argument of Object.keys(call.body)) {
        if (MODULE_META.has(argument) || child.config.variables.has(argument)) continue;
        throw new EvalError(
          `${call.file}: module "${name}" has no variable "${argument}" (unsupported argument)`,
        );
      }
      this.walk(child);
    }
    for (const name of config.outputs.keys()) instance.output(name);
  }
}

function at<T>(where: string, run: () => T): T {
  try {
    return run();
  } catch (error) {
    if (error instanceof VariableValidationError) throw error;
    const message = (error as Error).message;
    const wrapped = new (error instanceof EvalError ? EvalError : Error)(
      message.startsWith('in ') ? `in ${where}\n  ${message}` : `in ${where}: ${message}`,
    );
    throw wrapped;
  }
}

interface Instance {
  readonly key: string | number | undefined;
  readonly values: ValueObject;
}

class ModuleInstance {
  readonly planner: Planner;
  readonly config: ModuleConfig;
  readonly address: string;
  readonly parent: { instance: ModuleInstance; call: Declaration } | undefined;
  readonly scope: Scope;
  readonly #memo = new Map<string, Value>();
  readonly #instances = new Map<string, Instance[]>();
  readonly #children = new Map<string, ModuleInstance>();
  readonly #evaluating = new Set<string>();

  constructor(
    planner: Planner,
    config: ModuleConfig,
    address: string,
    parent: { instance: ModuleInstance; call: Declaration } | undefined,
  ) {
    this.planner = planner;
    this.config = config;
    this.address = address;
    this.parent = parent;
    const rootDir = parent ? this.root().config.dir : config.dir;
    const names = new Map<string, Value>([
      [
        'var',
        new Lazy(
          'var',
          (n) => this.variable(n),
          () => [...config.variables.keys()],
        ),
      ],
      [
        'local',
        new Lazy(
          'local',
          (n) => this.local(n),
          () => [...config.locals.keys()],
        ),
      ],
      [
        'module',
        new Lazy(
          'module',
          (n) => this.child(n).outputsObject(),
          () => [...config.modules.keys()],
        ),
      ],
      [
        'data',
        new Lazy(
          'data',
          (type) =>
            new Lazy(
              `data.${type}`,
              (name) => this.resourceValue('data', type, name),
              () => this.declared('data', type),
            ),
          () => [...new Set([...config.data.values()].map((d) => d.type))],
        ),
      ],
      ['path', { module: config.dir, root: rootDir, cwd: rootDir }],
      ['terraform', { workspace: 'default' }],
    ]);
    this.scope = new Scope(planner, names, undefined, (name) => {
      const resourceNames = this.declared('managed', name);
      if (resourceNames.length === 0) return undefined;
      return new Lazy(
        name,
        (n) => this.resourceValue('managed', name, n),
        () => resourceNames,
      );
    });
  }

  root(): ModuleInstance {
    return this.parent ? this.parent.instance.root() : this;
  }

  prefix(): string {
    return this.address ? `${this.address}.` : '';
  }

  declared(mode: 'managed' | 'data', type: string): string[] {
    const map = mode === 'managed' ? this.config.resources : this.config.data;
    return [...map.values()].filter((d) => d.type === type).map((d) => d.name);
  }

  memo(key: string, compute: () => Value): Value {
    if (this.#memo.has(key)) return this.#memo.get(key)!;
    if (this.#evaluating.has(key)) throw new Error(`cycle while evaluating ${this.prefix()}${key}`);
    this.#evaluating.add(key);
    try {
      const value = compute();
      this.#memo.set(key, value);
      return value;
    } finally {
      this.#evaluating.delete(key);
    }
  }

  evalJson(value: Json, scope: Scope): Value {
    if (typeof value === 'string') return evaluateString(value, scope);
    if (value === null || typeof value !== 'object') return value;
    if (Array.isArray(value)) {
      if (value.length > 0 && value.every(isJsonObject))
        return value.map((block) => this.evalBlock(block, scope));
      return value.map((item) => this.evalJson(item, scope));
    }
    const out: ValueObject = {};
    for (const [k, v] of Object.entries(value)) out[k] = this.evalJson(v, scope);
    return out;
  }

  /** A block body: attributes, nested blocks and dynamic blocks; meta-arguments skipped. */
  evalBlock(body: Body, scope: Scope): ValueObject {
    const out: ValueObject = {};
    const append = (key: string, blocks: Value[]) => {
      const existing = out[key];
      out[key] = Array.isArray(existing) ? [...existing, ...blocks] : blocks;
    };
    for (const [key, value] of Object.entries(body)) {
      if (META.has(key)) continue;
      if (key === 'dynamic' && isJsonObject(value)) {
        for (const [blockType, specs] of Object.entries(value)) {
          for (const spec of specs as Body[]) append(blockType, this.expandDynamic(blockType, spec, scope));
        }
        continue;
      }
      const evaluated = this.evalJson(value, scope);
      if (Array.isArray(evaluated) && Array.isArray(out[key])) append(key, evaluated);
      else out[key] = evaluated;
    }
    return out;
  }

  expandDynamic(blockType: string, spec: Body, scope: Scope): Value[] {
    const iterator = typeof spec.iterator === 'string' ? spec.iterator : blockType;
    const collection = this.evalJson(spec.for_each ?? null, scope);
    if (collection instanceof Unknown) {
      throw new EvalError(
        `dynamic "${blockType}" for_each is only known after apply (${collection.description})`,
      );
    }
    const content = (spec.content as Body[] | undefined)?.[0];
    if (!content) throw new EvalError(`dynamic "${blockType}" has no content block`);
    return entriesOf(collection).map(([key, value]) =>
      this.evalBlock(content, scope.with({ [iterator]: { key, value } })),
    );
  }

  variable(name: string): Value {
    return this.memo(`var.${name}`, () =>
      at(`${this.prefix()}var.${name}`, () => {
        const decl = this.config.variables.get(name);
        if (!decl) throw new EvalError(`no variable "${name}" is declared in ${this.config.dir}`);
        let value: Value;
        const given = this.parent ? this.parent.call.body[name] : undefined;
        const rootGiven = this.parent ? undefined : this.planner.options.variables[name];
        if (given !== undefined) value = this.parent!.instance.evalJson(given, this.parent!.instance.scope);
        else if (rootGiven !== undefined) value = rootGiven;
        else if (Object.hasOwn(decl.body, 'default')) value = this.evalJson(decl.body.default!, this.scope);
        else throw new EvalError(`variable "${name}" is required and was not set`);
        for (const rule of (decl.body.validation ?? []) as Body[]) {
          const scope = this.scope.with({
            var: new Lazy(
              'var',
              (n) => (n === name ? value : this.variable(n)),
              () => [...this.config.variables.keys()],
            ),
          });
          const ok = this.evalJson(rule.condition ?? null, scope);
          if (ok instanceof Unknown) continue;
          if (ok !== true) {
            throw new VariableValidationError(
              `${this.prefix()}var.${name}: ${typeof rule.error_message === 'string' ? rule.error_message : 'invalid value'}`,
            );
          }
        }
        return value;
      }),
    );
  }

  local(name: string): Value {
    return this.memo(`local.${name}`, () =>
      at(`${this.prefix()}local.${name}`, () => {
        const decl = this.config.locals.get(name);
        if (!decl) throw new EvalError(`no local value "${name}" in ${this.config.dir}`);
        return this.evalJson(decl.value, this.scope);
      }),
    );
  }

  output(name: string): Value {
    return this.memo(`output.${name}`, () =>
      at(`${this.prefix()}output.${name}`, () => {
        const decl = this.config.outputs.get(name);
        if (!decl) throw new EvalError(`module ${this.config.dir} has no output "${name}"`);
        return this.evalJson(decl.body.value ?? null, this.scope);
      }),
    );
  }

  outputsObject(): Lazy {
    return new Lazy(
      this.address,
      (n) => this.output(n),
      () => [...this.config.outputs.keys()],
    );
  }

  child(name: string): ModuleInstance {
    let child = this.#children.get(name);
    if (!child) {
      const call = this.config.modules.get(name);
      if (!call) throw new EvalError(`no module "${name}" in ${this.config.dir}`);
      if (call.body.for_each !== undefined || call.body.count !== undefined) {
        throw new Error(`${call.file}: module for_each/count is not supported by the policy tests`);
      }
      const dir = normalisePath(`${this.config.dir}/${String(call.body.source)}`);
      child = this.planner.instantiate(dir, `${this.prefix()}module.${name}`, { instance: this, call });
      this.#children.set(name, child);
    }
    return child;
  }

  resourceValue(mode: 'managed' | 'data', type: string, name: string): Value {
    const decl = (mode === 'managed' ? this.config.resources : this.config.data).get(`${type}.${name}`);
    if (!decl) throw new EvalError(`no ${mode === 'data' ? 'data source' : 'resource'} ${type}.${name}`);
    const instances = this.instances(mode, type, name);
    if (decl.body.for_each !== undefined) {
      return Object.fromEntries(instances.map((i) => [String(i.key), i.values]));
    }
    if (decl.body.count !== undefined) return instances.map((i) => i.values);
    return instances[0]!.values;
  }

  instances(mode: 'managed' | 'data', type: string, name: string): Instance[] {
    const memoKey = `${mode}:${type}.${name}`;
    const done = this.#instances.get(memoKey);
    if (done) return done;
    const base = `${this.prefix()}${mode === 'data' ? 'data.' : ''}${type}.${name}`;
    if (this.#evaluating.has(memoKey)) throw new Error(`cycle while evaluating ${base}`);
    this.#evaluating.add(memoKey);
    try {
      const decl = (mode === 'managed' ? this.config.resources : this.config.data).get(`${type}.${name}`)!;
      const result = at(base, () => this.expand(mode, decl, base));
      this.#instances.set(memoKey, result);
      return result;
    } finally {
      this.#evaluating.delete(memoKey);
    }
  }

  expand(mode: 'managed' | 'data', decl: Declaration, base: string): Instance[] {
    const keyed: { key: string | number | undefined; scope: Scope }[] = [];
    if (decl.body.for_each !== undefined) {
      const collection = this.evalJson(decl.body.for_each, this.scope);
      if (
        collection instanceof Unknown ||
        (Array.isArray(collection) && collection.some((c) => c instanceof Unknown))
      ) {
        throw new EvalError('for_each depends on values known only after apply; Terraform cannot plan this');
      }
      if (Array.isArray(collection) && !isSet(collection)) {
        throw new EvalError(
          `for_each needs a map or a set of strings, got a ${typeName(collection)} (use toset())`,
        );
      }
      if (isSet(collection) && (collection as Value[]).some((c) => typeof c !== 'string')) {
        throw new EvalError('for_each needs a set of strings');
      }
      if (!Array.isArray(collection) && !isObject(collection) && !(collection instanceof Lazy)) {
        throw new EvalError(`for_each needs a map or a set of strings, got a ${typeName(collection)}`);
      }
      for (const [key, value] of entriesOf(collection)) {
        keyed.push({ key: toKey(key), scope: this.scope.with({ each: { key: toKey(key), value } }) });
      }
    } else if (decl.body.count !== undefined) {
      const count = this.evalJson(decl.body.count, this.scope);
      if (typeof count !== 'number')
        throw new EvalError(`count must be a known number, got ${typeName(count)}`);
      for (let index = 0; index < count; index++)
        keyed.push({ key: index, scope: this.scope.with({ count: { index } }) });
    } else {
      keyed.push({ key: undefined, scope: this.scope });
    }
    return keyed.map(({ key, scope }) => {
      const address =
        key === undefined ? base : `${base}[${typeof key === 'number' ? key : JSON.stringify(key)}]`;
      const values = at(address, () => this.evalBlock(decl.body, scope));
      modelComputed(mode, decl.type, values, this.planner.options);
      markComputed(values, address);
      this.planner.resources.push({
        address,
        modulePath: this.address,
        mode,
        type: decl.type,
        name: decl.name,
        key,
        values,
        config: decl.body,
        file: decl.file,
      });
      return { key, values };
    });
  }
}

// ---- attributes providers compute, where configuration determines them ----

function knownString(values: ValueObject, name: string): string | undefined {
  const value = values[name];
  return typeof value === 'string' ? value : undefined;
}

function modelComputed(
  mode: 'managed' | 'data',
  type: string,
  values: ValueObject,
  options: PlanOptions,
): void {
  const project = knownString(values, 'project') ?? (options.variables.project_id as string | undefined);
  const set = (name: string, value: Value | undefined) => {
    if (value !== undefined && !Object.hasOwn(values, name)) values[name] = value;
  };
  if (mode === 'data') {
    switch (type) {
      case 'google_project':
        set('number', options.projectNumber);
        set('project_id', project);
        return;
      case 'google_storage_project_service_account': {
        const email = `service-${options.projectNumber}@gs-project-accounts.iam.gserviceaccount.com`;
        set('email_address', email);
        set('member', `serviceAccount:${email}`);
        return;
      }
      case 'google_iam_policy': {
        const bindings = Array.isArray(values.binding) ? values.binding : [];
        set(
          'policy_data',
          containsUnknown(bindings)
            ? new Unknown('policy_data with unknown members')
            : iamPolicyJson(bindings),
        );
        return;
      }
    }
    return;
  }
  const name = knownString(values, 'name');
  switch (type) {
    case 'google_service_account': {
      const accountId = knownString(values, 'account_id');
      if (accountId && project) {
        const email = `${accountId}@${project}.iam.gserviceaccount.com`;
        set('email', email);
        set('member', `serviceAccount:${email}`);
        set('id', `projects/${project}/serviceAccounts/${email}`);
        set('name', `projects/${project}/serviceAccounts/${email}`);
      }
      return;
    }
    case 'google_kms_key_ring': {
      const location = knownString(values, 'location');
      if (name && location && project)
        set('id', `projects/${project}/locations/${location}/keyRings/${name}`);
      return;
    }
    case 'google_kms_crypto_key': {
      const ring = knownString(values, 'key_ring');
      if (name && ring) set('id', `${ring}/cryptoKeys/${name}`);
      return;
    }
    case 'google_storage_bucket':
      if (name) {
        set('id', name);
        set('url', `gs://${name}`);
      }
      return;
    case 'google_project_iam_custom_role': {
      const roleId = knownString(values, 'role_id');
      if (roleId && project) {
        set('name', `projects/${project}/roles/${roleId}`);
        set('id', `projects/${project}/roles/${roleId}`);
      }
      return;
    }
    case 'google_cloudfunctions2_function': {
      const location = knownString(values, 'location');
      if (name && location && project)
        set('url', `https://${location}-${project}.cloudfunctions.net/${name}`);
      return;
    }
    case 'google_artifact_registry_repository': {
      const location = knownString(values, 'location');
      const repositoryId = knownString(values, 'repository_id');
      if (repositoryId && location && project) {
        set('id', `projects/${project}/locations/${location}/repositories/${repositoryId}`);
        set('name', repositoryId);
      }
      return;
    }
    case 'google_firestore_database':
      if (name && project) set('id', `projects/${project}/databases/${name}`);
      return;
    case 'google_logging_metric':
      if (name) set('id', name);
      return;
  }
}

function iamPolicyJson(bindings: Value[]): string {
  const policy = {
    bindings: bindings.map((binding) => {
      const b = binding as ValueObject;
      const condition = Array.isArray(b.condition) ? (b.condition[0] as ValueObject | undefined) : undefined;
      return {
        role: b.role ?? null,
        members: b.members ?? [],
        ...(condition ? { condition: toJson(condition) } : {}),
      };
    }),
  };
  return JSON.stringify(toJson(policy as unknown as Value));
}
