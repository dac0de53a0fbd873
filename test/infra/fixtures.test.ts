// Bad input for the policy: deliberately wrong configurations must fail the very checks that
// infra/ passes (policy.test.ts). Each fixture in test/infra/fixtures/<name>/ is laid over
// infra/ (adding files, or overriding blocks through Terraform's own *_override.tf files), so
// it is the real configuration with one mistake, planned the same way.
import { describe, expect, it } from 'vitest';
import { catalogSchema, type Catalog } from '../../shared/runtime/catalog.ts';
import { VariableValidationError } from './lib/terraform.ts';
import { baseTree, defaultVariables, fixtureTree, planEnvironment } from './lib/load.ts';
import { runChecks, type Violation } from './lib/policy.ts';

interface Expectation {
  readonly fixture: string;
  readonly why: string;
  /** Each [check, pattern] must match at least one violation ("subject: message"). */
  readonly violations: readonly (readonly [string, RegExp])[];
}

const FIXTURES: readonly Expectation[] = [
  {
    fixture: 'widened-role',
    why: "pairing's account may also Encrypt with its key",
    violations: [
      [
        'kms-grants',
        /function pairing holds roles\/cloudkms\.cryptoKeyEncrypterDecrypter on \S+\/cryptoKeys\/pairing/,
      ],
    ],
  },
  {
    fixture: 'cross-key',
    why: "ingest's account may decrypt with the records function's key",
    violations: [
      ['kms-grants', /function ingest holds roles\/cloudkms\.cryptoKeyDecrypter on \S+\/cryptoKeys\/records/],
    ],
  },
  {
    fixture: 'key-ring-grant',
    why: "records' account holds Decrypt on the whole key ring",
    violations: [
      [
        'kms-grants',
        /cb-records@\S+ holds roles\/cloudkms\.cryptoKeyDecrypter on key ring \S+\/keyRings\/clinic-bridge,/,
      ],
    ],
  },
  {
    fixture: 'public-bucket',
    why: 'public access prevention off, and allUsers may read the records bucket',
    violations: [
      [
        'public-access',
        /records_public: grants roles\/storage\.objectViewer on bucket \S+-records to allUsers/,
      ],
      ['buckets', /bucket\["records"\]: public_access_prevention is "inherited"/],
    ],
  },
  {
    fixture: 'primitive-role',
    why: "ingest's account is project Editor",
    violations: [
      ['primitive-roles', /ingest_editor: grants roles\/editor/],
      ['primitive-roles', /editor\.tf: mentions roles\/editor/],
      ['function-grants', /function ingest holds roles\/editor on project/],
    ],
  },
  {
    fixture: 'missing-cmek',
    why: 'a bucket with a Google-managed key, and the database without CMEK',
    violations: [
      ['buckets', /google_storage_bucket\.exports: no CMEK/],
      ['buckets', /google_storage_bucket\.exports: has 0 authoritative IAM policies/],
      ['cmek', /google_storage_bucket\.exports: not encrypted with a customer-managed key/],
      ['cmek', /google_firestore_database\.db: not encrypted with a customer-managed key/],
    ],
  },
  {
    fixture: 'scheduler-oauth',
    why: 'retention called with an OAuth token, hourly',
    violations: [
      ['scheduler', /uses an OAuth token/],
      ['scheduler', /calls without an OIDC token/],
      ['scheduler', /schedule "0 \* \* \* \*", catalog says "17 3 \* \* \*"/],
      ['functions', /function\["retention"\]: its trigger calls without an identity/],
    ],
  },
  {
    fixture: 'old-runtime',
    why: 'functions built for nodejs20',
    violations: [['functions', /function\["ingest"\]: runtime "nodejs20", not nodejs22/]],
  },
  {
    fixture: 'unconditioned-hospital',
    why: "a hospital's connector may write anywhere in the ingest bucket",
    violations: [
      ['hospital-prefixes', /hospital st-antonius may write to \S+-ingest outside hospitals\/st-antonius\//],
      ['hospital-prefixes', /hospital st-antonius's grant on \S+-ingest is not limited/],
    ],
  },
  {
    fixture: 'ingest-reader',
    why: 'the records function may read uploads',
    violations: [
      ['hospital-prefixes', /cb-records@\S+ may read \S+-ingest; only ingest may/],
      ['function-grants', /function records holds roles\/storage\.objectViewer on bucket \S+-ingest/],
    ],
  },
  {
    fixture: 'tlog-aged',
    why: 'the transparency-log bucket gets an age backstop like the others',
    violations: [
      ['buckets', /bucket\["tlog"\]: lifecycle Delete rule \{"age":3650\} on the tlog bucket/],
      [
        'buckets',
        /bucket\["tlog"\]: lifecycle Delete rule \{"days_since_custom_time":1\} on the tlog bucket/,
      ],
    ],
  },
  {
    fixture: 'signing-key-rotated',
    why: "the sequencer's signing key rotated and made P-256 like the symmetric keys",
    violations: [
      [
        'function-keys',
        /function\["sequencer"\]: rotation_period "7776000s" on a ASYMMETRIC_SIGN key, which Cloud KMS does not rotate/,
      ],
      [
        'function-keys',
        /function\["sequencer"\]: algorithm "EC_SIGN_P256_SHA256", catalog says EC_SIGN_ED25519/,
      ],
    ],
  },
  {
    fixture: 'function-invokes-function',
    why: 'the pairing function may start a retention run',
    violations: [
      ['functions', /function\["retention"\]: invokers .*cb-pairing/],
      ['function-grants', /function pairing holds roles\/run\.invoker on run-service retention/],
    ],
  },
];

function assertViolations(found: Violation[], expected: readonly (readonly [string, RegExp])[]): void {
  const text = (violation: Violation) => `${violation.subject}: ${violation.message}`;
  for (const [check, pattern] of expected) {
    const matched = found.some((violation) => violation.check === check && pattern.test(text(violation)));
    expect(
      matched,
      `no "${check}" violation matching ${pattern}; found:\n${found.map((f) => `  [${f.check}] ${text(f)}`).join('\n')}`,
    ).toBe(true);
  }
  // Nothing else broke: the fixture differs from infra/ by exactly its one mistake.
  const allowed = new Set(expected.map(([check]) => check));
  expect(found.filter((violation) => !allowed.has(violation.check))).toEqual([]);
}

describe('deliberately wrong configurations fail the policy', () => {
  it.each(FIXTURES)('$fixture: $why', async ({ fixture, violations }) => {
    const input = await planEnvironment('prod', { tree: fixtureTree(fixture) });
    assertViolations(runChecks(input), violations);
  });
});

describe('a wrong catalog fails the policy (the catalog is the source of every grant)', () => {
  const withCatalog = (edit: (catalog: Catalog) => void) => {
    const tree = baseTree();
    const catalog = catalogSchema.parse(JSON.parse(tree.read('infra/catalog.json')));
    edit(catalog);
    return tree.withFile('infra/catalog.json', JSON.stringify(catalog));
  };

  it('a widened KMS role in the catalog: Terraform would grant it faithfully, so the catalog check stops it', async () => {
    const tree = withCatalog((c) => {
      c.functions.records!.kms[0]!.role = 'roles/cloudkms.cryptoOperator';
    });
    const found = runChecks(await planEnvironment('prod', { tree }));
    assertViolations(found, [
      ['catalog', /records: key "records" \(ENCRYPT_DECRYPT\) with roles\/cloudkms\.cryptoOperator/],
    ]);
  });

  it('two functions sharing a key: Terraform itself refuses (duplicate key), and so does the catalog check', async () => {
    const tree = withCatalog((c) => {
      c.functions.retention!.kms[0]!.key = 'records';
    });
    await expect(planEnvironment('prod', { tree })).rejects.toThrow(/duplicate object key "records"/);
  });

  it('an event-triggered function made public', async () => {
    const tree = withCatalog((c) => {
      c.functions.ingest!.access = 'public';
    });
    const found = runChecks(await planEnvironment('prod', { tree }));
    assertViolations(found, [
      ['catalog', /ingest: a storage\.finalized function must be "internal"/],
      [
        'public-access',
        /invoker\["ingest\/public"\]: grants roles\/run\.invoker on run-service ingest to allUsers/,
      ],
    ]);
  });

  it('a key algorithm of another purpose: Terraform would ask for it, Cloud KMS would refuse it', async () => {
    // Built past catalogSchema, which may refuse it first: the policy must not rely on that.
    const input = await planEnvironment('prod');
    const catalog = structuredClone(input.catalog);
    (catalog.functions.sequencer!.kms[0] as { purpose: string }).purpose = 'MAC';
    assertViolations(runChecks({ ...input, catalog }), [
      ['catalog', /sequencer: key "sequencer": algorithm EC_SIGN_ED25519 is not a MAC algorithm/],
      // The plan was made from the real catalog, so the key check sees the disagreement too.
      ['function-keys', /function\["sequencer"\]: purpose "ASYMMETRIC_SIGN", catalog says MAC/],
    ]);
  });

  it('a broad storage role', async () => {
    const tree = withCatalog((c) => {
      c.functions.records!.storage = [{ bucket: 'records', role: 'roles/storage.admin' }];
    });
    const found = runChecks(await planEnvironment('prod', { tree }));
    assertViolations(found, [['catalog', /records: storage role roles\/storage\.admin is not one of/]]);
  });

  it('a custom role that could rewrite IAM', async () => {
    const tree = withCatalog((c) => {
      c.customRoles!.cbObjectReader!.permissions.push('storage.buckets.setIamPolicy');
    });
    const found = runChecks(await planEnvironment('prod', { tree }));
    assertViolations(found, [
      ['catalog', /customRoles\.cbObjectReader: permission storage\.buckets\.setIamPolicy escalates/],
      // The same role is what hospitals read their receipts with: the prefix check sees it too.
      ['hospital-prefixes', /hospital st-antonius gets storage\.buckets\.setIamPolicy on \S+-outbox/],
    ]);
  });
});

describe('bad variables are refused before anything is planned', () => {
  const refused = (overrides: Record<string, unknown>, message: RegExp) =>
    expect(planEnvironment('prod', { variables: defaultVariables(overrides as never) })).rejects.toThrow(
      message,
    );

  it.each([
    ['allUsers as a connector', { hospitals: { evil: 'allUsers' } }, /never a user, a group, a set/],
    ['a person as a connector', { hospitals: { 'hosp-1': 'user:alice@example.org' } }, /never a user/],
    [
      'a whole identity pool as a connector',
      {
        hospitals: {
          'hosp-1': 'principalSet://iam.googleapis.com/projects/1/locations/global/workloadIdentityPools/p/*',
        },
      },
      /never a user, a group, a set/,
    ],
    [
      'a hospital id that escapes its prefix',
      { hospitals: { '../other': 'serviceAccount:c@h.iam.gserviceaccount.com' } },
      /Hospital ids/,
    ],
    [
      'a hospital id that is a prefix of wildcards',
      { hospitals: { 'h*': 'serviceAccount:c@h.iam.gserviceaccount.com' } },
      /Hospital ids/,
    ],
    [
      'one connector for two hospitals',
      {
        hospitals: {
          'hosp-1': 'serviceAccount:c@h.iam.gserviceaccount.com',
          'hosp-2': 'serviceAccount:c@h.iam.gserviceaccount.com',
        },
      },
      /Each hospital needs its own connector/,
    ],
    ['allUsers as a key custodian', { key_custodians: ['allUsers'] }, /never allUsers/],
    [
      'allAuthenticatedUsers invoking health',
      { private_invokers: ['allAuthenticatedUsers'] },
      /never allUsers or allAuthenticatedUsers/,
    ],
  ])('%s', async (_label, overrides, message) => {
    await refused(overrides, message);
    await expect(
      planEnvironment('prod', { variables: defaultVariables(overrides as never) }),
    ).rejects.toBeInstanceOf(VariableValidationError);
  });

  it('a soft-delete window GCS does not allow (3 days)', async () => {
    const tree = baseTree();
    const prod = tree.read('infra/environments/prod/main.tf');
    expect(prod).toContain('records    = 7');
    const bad = tree.withFile(
      'infra/environments/prod/main.tf',
      prod.replace('records    = 7', 'records    = 3'),
    );
    await expect(planEnvironment('prod', { tree: bad })).rejects.toThrow(
      /0 \(off\) or between 7 and 90 days/,
    );
  });

  it('a key protection level that is neither SOFTWARE nor HSM', async () => {
    const tree = baseTree();
    const prod = tree.read('infra/environments/prod/main.tf');
    const bad = tree.withFile('infra/environments/prod/main.tf', prod.replace('"HSM"', '"EXTERNAL"'));
    await expect(planEnvironment('prod', { tree: bad })).rejects.toThrow(
      /protection_level must be SOFTWARE or HSM/,
    );
  });
});
