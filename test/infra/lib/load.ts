// Plans an environment of infra/ (or infra/ with a fixture laid over it) and gathers what the
// policy checks need.
import { fileURLToPath } from 'node:url';
import { catalogSchema, type Catalog } from '../../../shared/runtime/catalog.ts';
import type { Value } from './hcl-eval.ts';
import type { FirestoreIndexes, PolicyInput } from './policy.ts';
import { SourceTree, parseTf, planConfiguration, type Plan } from './terraform.ts';

export const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url));
export const FIXTURES = 'test/infra/fixtures';
export const ENVIRONMENTS = ['dev', 'prod'] as const;
export type Environment = (typeof ENVIRONMENTS)[number];

export const PROJECT_ID = 'cb-policy-test';
export const PROJECT_NUMBER = '123456789012';

export const HOSPITALS: Readonly<Record<string, string>> = {
  'st-antonius': 'serviceAccount:connector@st-antonius-bridge.iam.gserviceaccount.com',
  umcu: 'principal://iam.googleapis.com/projects/99/locations/global/workloadIdentityPools/hospitals/subject/umcu-connector',
};

/** Root variables for a plan: what an operator's terraform.tfvars would hold. */
export function defaultVariables(overrides: Record<string, Value> = {}): Record<string, Value> {
  return {
    project_id: PROJECT_ID,
    source_object: 'functions-0123abc.zip',
    api_base: 'https://api.clinic-bridge.example',
    hospitals: { ...HOSPITALS },
    source_uploaders: [`serviceAccount:ci-deployer@${PROJECT_ID}.iam.gserviceaccount.com`],
    private_invokers: ['group:clinic-bridge-operators@example.org'],
    key_custodians: [],
    alert_emails: ['oncall@example.org'],
    ...overrides,
  };
}

export function baseTree(): SourceTree {
  return SourceTree.fromDirectory(REPO_ROOT, ['infra'], ['firestore.indexes.json', 'firestore.rules']);
}

/** infra/ with test/infra/fixtures/<name>/ laid over it (its files add to or replace infra/'s). */
export function fixtureTree(name: string): SourceTree {
  return baseTree().withOverlay(`${REPO_ROOT}${FIXTURES}/${name}`, 'infra');
}

export async function planEnvironment(
  env: Environment,
  options: { tree?: SourceTree; variables?: Record<string, Value> } = {},
): Promise<PolicyInput> {
  const tree = options.tree ?? baseTree();
  const variables = options.variables ?? defaultVariables();
  const plan = await planConfiguration(tree, `infra/environments/${env}`, {
    variables,
    projectNumber: PROJECT_NUMBER,
  });
  return policyInput(tree, plan, variables);
}

/** Attributes that hold prose for people, not configuration: exempt from the text scans. */
const PROSE = new Set(['description', 'error_message', 'content', 'display_name', 'title']);

export async function policyInput(
  tree: SourceTree,
  plan: Plan,
  variables: Record<string, Value>,
): Promise<PolicyInput> {
  const catalog: Catalog = catalogSchema.parse(JSON.parse(tree.read('infra/catalog.json')));
  const indexes = JSON.parse(tree.read('firestore.indexes.json')) as FirestoreIndexes;
  const firestoreRules = tree.read('firestore.rules');
  const rawStrings: { file: string; text: string }[] = [];
  for (const file of tree.allTfFiles()) {
    const walk = (value: unknown, key: string) => {
      if (PROSE.has(key)) return;
      if (typeof value === 'string') rawStrings.push({ file, text: value });
      else if (Array.isArray(value)) value.forEach((item) => walk(item, key));
      else if (value && typeof value === 'object')
        Object.entries(value).forEach(([k, item]) => walk(item, k));
    };
    walk(await parseTf(file, tree.read(file)), '');
  }
  return {
    plan,
    catalog,
    projectId: String(variables.project_id),
    indexes,
    firestoreRules,
    hospitals: (variables.hospitals ?? {}) as Record<string, string>,
    rawStrings,
  };
}
