// One source of truth for "which function may use which key": the local KMS emulator's IAM
// policy (emulator/kms/policy.ts, policyFromCatalog) and the grants Terraform makes are both
// derived from infra/catalog.json. Here they are compared directly, and the emulator's own
// authorizer, fed Terraform's grants, shows that no function can use another's key.
import { describe, expect, it } from 'vitest';
import { Authorizer, type Permission } from '../../emulator/kms/permissions.ts';
import { parsePolicy, policyFromCatalog } from '../../emulator/kms/policy.ts';
import { serviceAccountPrincipal } from '../../shared/emulation.ts';
import { cryptoKeyName, loadCatalog } from '../../shared/runtime/catalog.ts';
import { ENVIRONMENTS, PROJECT_ID, fixtureTree, planEnvironment } from './lib/load.ts';
import { terraformFunctionKmsGrants, type KmsGrantTriple } from './lib/policy.ts';

const catalog = loadCatalog();

function emulatorTriples(): KmsGrantTriple[] {
  return policyFromCatalog(catalog, PROJECT_ID).bindings.flatMap((b) =>
    b.members.map((member) => ({ resource: b.resource, role: b.role, member })),
  );
}

const sorted = (triples: KmsGrantTriple[]) =>
  triples.map((t) => `${t.resource} ${t.role} ${t.member}`).sort();

/** Terraform's grants to function accounts, as a policy the emulator's authorizer enforces. */
function authorizerFrom(triples: KmsGrantTriple[]): Authorizer {
  return new Authorizer(
    parsePolicy(
      { bindings: triples.map((t) => ({ resource: t.resource, role: t.role, members: [t.member] })) },
      'terraform',
    ),
  );
}

const USES: Permission[] = [
  'cloudkms.cryptoKeyVersions.useToDecrypt',
  'cloudkms.cryptoKeyVersions.useToEncrypt',
  'cloudkms.cryptoKeyVersions.useToSign',
  'cloudkms.cryptoKeyVersions.viewPublicKey',
];

describe.each(ENVIRONMENTS)('KMS grants: emulator policy vs infra/environments/%s', (env) => {
  it('are the same set of (key, role, service account)', async () => {
    const terraform = terraformFunctionKmsGrants(await planEnvironment(env));
    expect(sorted(terraform)).toEqual(sorted(emulatorTriples()));
    expect(terraform.length).toBeGreaterThan(0);
  });

  it("let no function use another function's key, and each use its own only as the catalog says", async () => {
    const terraform = authorizerFrom(terraformFunctionKmsGrants(await planEnvironment(env)));
    const local = new Authorizer(policyFromCatalog(catalog, PROJECT_ID));
    const keys = [...new Set(Object.values(catalog.functions).flatMap((fn) => fn.kms.map((g) => g.key)))];
    for (const [name, fn] of Object.entries(catalog.functions)) {
      const principal = serviceAccountPrincipal(fn.serviceAccount, PROJECT_ID);
      for (const key of keys) {
        const version = `${cryptoKeyName(catalog, key, PROJECT_ID)}/cryptoKeyVersions/1`;
        const own = fn.kms.some((g) => g.key === key);
        for (const permission of USES) {
          const allowed = terraform.allows(principal, permission, version);
          expect(allowed, `${name} ${permission} on ${key}`).toBe(
            local.allows(principal, permission, version),
          );
          if (!own) expect(allowed, `${name} must not use ${key}`).toBe(false);
        }
      }
      for (const grant of fn.kms) {
        const version = `${cryptoKeyName(catalog, grant.key, PROJECT_ID)}/cryptoKeyVersions/1`;
        expect(
          terraform.allows(principal, 'cloudkms.cryptoKeyVersions.useToDecrypt', version),
          `${name} unwraps its key`,
        ).toBe(grant.role === 'roles/cloudkms.cryptoKeyDecrypter');
      }
    }
  });

  it('let the sequencer sign with its Ed25519 key and read its public key, and nothing more', async () => {
    const sequencer = catalog.functions.sequencer!;
    expect(sequencer.kms).toEqual([
      {
        key: 'sequencer',
        purpose: 'ASYMMETRIC_SIGN',
        algorithm: 'EC_SIGN_ED25519',
        role: 'roles/cloudkms.signerVerifier',
      },
    ]);
    const principal = serviceAccountPrincipal(sequencer.serviceAccount, PROJECT_ID);
    const version = `${cryptoKeyName(catalog, 'sequencer', PROJECT_ID)}/cryptoKeyVersions/1`;
    const authorizers = {
      terraform: authorizerFrom(terraformFunctionKmsGrants(await planEnvironment(env))),
      emulator: new Authorizer(policyFromCatalog(catalog, PROJECT_ID)),
    };
    for (const [source, authorizer] of Object.entries(authorizers)) {
      for (const permission of USES) {
        expect(authorizer.allows(principal, permission, version), `${source}: sequencer ${permission}`).toBe(
          permission === 'cloudkms.cryptoKeyVersions.useToSign' ||
            permission === 'cloudkms.cryptoKeyVersions.viewPublicKey',
        );
      }
      // No other function's account may sign with it or even see its public key through KMS.
      for (const [name, fn] of Object.entries(catalog.functions)) {
        if (name === 'sequencer') continue;
        const other = serviceAccountPrincipal(fn.serviceAccount, PROJECT_ID);
        for (const permission of USES) {
          expect(authorizer.allows(other, permission, version), `${source}: ${name} ${permission}`).toBe(
            false,
          );
        }
      }
    }
  });
});

describe('the comparison catches drift', () => {
  it('a grant Terraform adds outside the catalog makes the two disagree', async () => {
    const drifted = terraformFunctionKmsGrants(
      await planEnvironment('prod', { tree: fixtureTree('cross-key') }),
    );
    expect(sorted(drifted)).not.toEqual(sorted(emulatorTriples()));
    const ingest = serviceAccountPrincipal(catalog.functions.ingest!.serviceAccount, PROJECT_ID);
    const recordsKey = `${cryptoKeyName(catalog, 'records', PROJECT_ID)}/cryptoKeyVersions/1`;
    expect(
      authorizerFrom(drifted).allows(ingest, 'cloudkms.cryptoKeyVersions.useToDecrypt', recordsKey),
    ).toBe(true);
  });
});
