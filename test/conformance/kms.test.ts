// Conformance of the local Cloud KMS emulator, driven by the official @google-cloud/kms
// client exactly as production code drives Cloud KMS; only the endpoint differs.
import { KeyManagementServiceClient } from '@google-cloud/kms';
import { grpc } from 'google-gax';
import { createHash, createPublicKey, verify } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { principalClientOptions } from '../../shared/adapters/google-clients.ts';
import { policyFromCatalog, writePolicyFile } from '../../emulator/kms/policy.ts';
import { startKmsEmulator, type KmsEmulator } from '../../emulator/kms/server.ts';
import { crc32c } from '../../shared/core/checksums/crc32c.ts';
import { LOCAL_PRINCIPAL_HEADER, serviceAccountPrincipal } from '../../shared/emulation.ts';
import { cryptoKeyName, loadCatalog } from '../../shared/runtime/catalog.ts';

process.env.METADATA_SERVER_DETECTION = 'none';

const PROJECT = 'cb-kms-conformance';
const catalog = loadCatalog();
const LOCATION = `projects/${PROJECT}/locations/${catalog.location}`;
const RING = `${LOCATION}/keyRings/${catalog.keyRing}`;
const PAIRING_KEY = cryptoKeyName(catalog, 'pairing', PROJECT);
const INGEST_KEY = cryptoKeyName(catalog, 'ingest', PROJECT);
const PAIRING_SA = serviceAccountPrincipal(catalog.functions.pairing!.serviceAccount, PROJECT);
const SEQUENCER_KEY = cryptoKeyName(catalog, 'sequencer', PROJECT);
const SEQUENCER_SA = serviceAccountPrincipal(catalog.functions.sequencer!.serviceAccount, PROJECT);

const { status } = grpc;

let dataDir: string;
let policyFile: string;
let emulator: KmsEmulator;
let kms: KeyManagementServiceClient;
const clients: KeyManagementServiceClient[] = [];

function connect(server: KmsEmulator, principal?: string): KeyManagementServiceClient {
  const client = new KeyManagementServiceClient({
    apiEndpoint: server.host,
    port: server.port,
    sslCreds: grpc.credentials.createInsecure(),
    ...(principal ? principalClientOptions(principal) : {}),
  });
  clients.push(client);
  return client;
}

/** How a caller names itself to the emulator: one metadata entry per call. */
function as(principal: string) {
  return { otherArgs: { headers: { [LOCAL_PRINCIPAL_HEADER]: principal } } };
}

async function expectStatus(call: Promise<unknown>, code: number, message?: RegExp): Promise<void> {
  const error = (await call.then(
    () => undefined,
    (reason: unknown) => reason,
  )) as { code?: number; details?: string } | undefined;
  expect(error, 'the call should have failed').toBeDefined();
  expect(error?.code, error?.details).toBe(code);
  if (message) expect(error?.details).toMatch(message);
}

const crc = (data: Uint8Array | string) => crc32c(typeof data === 'string' ? Buffer.from(data) : data);
/** The client returns Int64Value.value as a string. */
const int64 = (value: { value?: unknown } | null | undefined) => Number(value?.value);

beforeAll(async () => {
  dataDir = await mkdtemp(join(tmpdir(), 'kms-conformance-'));
  policyFile = join(dataDir, 'policy.json');
  await writePolicyFile(policyFile, policyFromCatalog(catalog, PROJECT));
  emulator = await startKmsEmulator({ port: 0, dataDir: join(dataDir, 'state'), policyFile });
  kms = connect(emulator);
  // What infra/ provisions: the key ring and one key per catalog grant, with the grant's
  // purpose and algorithm (an asymmetric key has no default algorithm in Cloud KMS).
  await kms.createKeyRing({ parent: LOCATION, keyRingId: catalog.keyRing, keyRing: {} });
  for (const fn of Object.values(catalog.functions)) {
    for (const grant of fn.kms) {
      await kms.createCryptoKey({
        parent: RING,
        cryptoKeyId: grant.key,
        cryptoKey: {
          purpose: grant.purpose,
          ...(grant.algorithm ? { versionTemplate: { algorithm: grant.algorithm } } : {}),
        },
      });
    }
  }
});

afterAll(async () => {
  for (const client of clients) await client.close();
  await emulator?.close();
  if (dataDir) await rm(dataDir, { recursive: true, force: true });
});

describe('KMS emulator', () => {
  it('derives the policy from the catalog: each service account gets its role on its own key only', () => {
    const policy = policyFromCatalog(catalog, PROJECT);
    const grants = Object.values(catalog.functions).flatMap((fn) => fn.kms.map((grant) => ({ fn, grant })));
    expect(policy.bindings).toHaveLength(grants.length);
    for (const { fn, grant } of grants) {
      expect(policy.bindings).toContainEqual({
        resource: cryptoKeyName(catalog, grant.key, PROJECT),
        role: grant.role,
        members: [serviceAccountPrincipal(fn.serviceAccount, PROJECT)],
      });
    }
  });

  it('creates, gets and lists key rings, keys and versions', async () => {
    const [ring] = await kms.createKeyRing({ parent: LOCATION, keyRingId: 'lifecycle', keyRing: {} });
    expect(ring.name).toBe(`${LOCATION}/keyRings/lifecycle`);
    expect(Number(ring.createTime?.seconds)).toBeGreaterThan(0);
    const [got] = await kms.getKeyRing({ name: ring.name });
    expect(got.name).toBe(ring.name);
    const [rings] = await kms.listKeyRings({ parent: LOCATION });
    expect(rings.map((r) => r.name)).toEqual([RING, ring.name]);

    const [key] = await kms.createCryptoKey({
      parent: ring.name,
      cryptoKeyId: 'empty',
      cryptoKey: { purpose: 'ENCRYPT_DECRYPT', labels: { team: 'platform' } },
      skipInitialVersionCreation: true,
    });
    expect(key.purpose).toBe('ENCRYPT_DECRYPT');
    expect(key.primary).toBeNull();
    expect(key.versionTemplate?.algorithm).toBe('GOOGLE_SYMMETRIC_ENCRYPTION');
    expect(key.labels).toEqual({ team: 'platform' });
    let [versions] = await kms.listCryptoKeyVersions({ parent: key.name });
    expect(versions).toEqual([]);
    await expectStatus(
      kms.encrypt({ name: key.name, plaintext: Buffer.from('x') }),
      status.FAILED_PRECONDITION,
    );

    const [v1] = await kms.createCryptoKeyVersion({ parent: key.name, cryptoKeyVersion: {} });
    expect(v1.name).toBe(`${key.name}/cryptoKeyVersions/1`);
    expect(v1.state).toBe('ENABLED');
    expect(v1.algorithm).toBe('GOOGLE_SYMMETRIC_ENCRYPTION');
    const [gotVersion] = await kms.getCryptoKeyVersion({ name: v1.name });
    expect(gotVersion.state).toBe('ENABLED');
    await kms.createCryptoKeyVersion({ parent: key.name, cryptoKeyVersion: {} });
    [versions] = await kms.listCryptoKeyVersions({ parent: key.name });
    expect(versions.map((v) => v.name)).toEqual([v1.name, `${key.name}/cryptoKeyVersions/2`]);

    await kms.createCryptoKey({
      parent: ring.name,
      cryptoKeyId: 'second',
      cryptoKey: { purpose: 'ENCRYPT_DECRYPT' },
    });
    const [keys] = await kms.listCryptoKeys({ parent: ring.name });
    expect(keys.map((k) => k.name)).toEqual([key.name, `${ring.name}/cryptoKeys/second`]);
    expect(keys[1]?.primary?.name).toBe(`${ring.name}/cryptoKeys/second/cryptoKeyVersions/1`);
    const [gotKey] = await kms.getCryptoKey({ name: `${ring.name}/cryptoKeys/second` });
    expect(gotKey.primary?.state).toBe('ENABLED');

    // Paging: one key per page, with a token to the next.
    const [page1, next] = await kms.listCryptoKeys(
      { parent: ring.name, pageSize: 1 },
      { autoPaginate: false },
    );
    expect(page1).toHaveLength(1);
    expect(next?.pageToken).toBeTruthy();
    const [page2] = await kms.listCryptoKeys(
      { parent: ring.name, pageSize: 1, pageToken: next!.pageToken! },
      { autoPaginate: false },
    );
    expect(page2.map((k) => k.name)).toEqual([`${ring.name}/cryptoKeys/second`]);
  });

  it('encrypts and decrypts with additional authenticated data', async () => {
    const plaintext = Buffer.from('wrapped Themis key material');
    const aad = Buffer.from('pairing/device-key');
    const [encrypted] = await kms.encrypt({ name: PAIRING_KEY, plaintext, additionalAuthenticatedData: aad });
    expect(encrypted.name).toBe(`${PAIRING_KEY}/cryptoKeyVersions/1`);
    expect(Buffer.from(encrypted.ciphertext as Uint8Array).includes(plaintext)).toBe(false);
    const [decrypted] = await kms.decrypt({
      name: PAIRING_KEY,
      ciphertext: encrypted.ciphertext,
      additionalAuthenticatedData: aad,
    });
    expect(Buffer.from(decrypted.plaintext as Uint8Array)).toEqual(plaintext);
    expect(decrypted.usedPrimary).toBe(true);
    expect(decrypted.protectionLevel).toBe('SOFTWARE');
  });

  it('refuses a wrong AAD, a tampered ciphertext and another key with INVALID_ARGUMENT', async () => {
    const aad = Buffer.from('context-a');
    const [encrypted] = await kms.encrypt({
      name: PAIRING_KEY,
      plaintext: Buffer.from('secret'),
      additionalAuthenticatedData: aad,
    });
    const ciphertext = Buffer.from(encrypted.ciphertext as Uint8Array);
    await expectStatus(
      kms.decrypt({ name: PAIRING_KEY, ciphertext, additionalAuthenticatedData: Buffer.from('context-b') }),
      status.INVALID_ARGUMENT,
      /Decryption failed/,
    );
    await expectStatus(
      kms.decrypt({ name: PAIRING_KEY, ciphertext }),
      status.INVALID_ARGUMENT,
      /Decryption failed/,
    );
    const tampered = Buffer.from(ciphertext);
    tampered[tampered.length - 20]! ^= 0x01;
    await expectStatus(
      kms.decrypt({ name: PAIRING_KEY, ciphertext: tampered, additionalAuthenticatedData: aad }),
      status.INVALID_ARGUMENT,
      /Decryption failed/,
    );
    await expectStatus(
      kms.decrypt({ name: INGEST_KEY, ciphertext, additionalAuthenticatedData: aad }),
      status.INVALID_ARGUMENT,
      /Decryption failed/,
    );
  });

  it('rotates: new encryptions use the new primary and old ciphertext still decrypts', async () => {
    const [key] = await kms.createCryptoKey({
      parent: RING,
      cryptoKeyId: 'rotation',
      cryptoKey: { purpose: 'ENCRYPT_DECRYPT' },
    });
    const [before] = await kms.encrypt({ name: key.name, plaintext: Buffer.from('before') });
    expect(before.name).toBe(`${key.name}/cryptoKeyVersions/1`);

    const [v2] = await kms.createCryptoKeyVersion({ parent: key.name, cryptoKeyVersion: {} });
    // A new version is not primary until it is made so.
    const [stillV1] = await kms.encrypt({ name: key.name, plaintext: Buffer.from('x') });
    expect(stillV1.name).toBe(`${key.name}/cryptoKeyVersions/1`);
    const [rotated] = await kms.updateCryptoKeyPrimaryVersion({ name: key.name, cryptoKeyVersionId: '2' });
    expect(rotated.primary?.name).toBe(v2.name);

    const [after] = await kms.encrypt({ name: key.name, plaintext: Buffer.from('after') });
    expect(after.name).toBe(v2.name);
    const [old] = await kms.decrypt({ name: key.name, ciphertext: before.ciphertext });
    expect(Buffer.from(old.plaintext as Uint8Array).toString()).toBe('before');
    expect(old.usedPrimary).toBe(false);
    const [current] = await kms.decrypt({ name: key.name, ciphertext: after.ciphertext });
    expect(Buffer.from(current.plaintext as Uint8Array).toString()).toBe('after');
    expect(current.usedPrimary).toBe(true);

    // Encrypt also takes a version name.
    const [pinned] = await kms.encrypt({
      name: `${key.name}/cryptoKeyVersions/1`,
      plaintext: Buffer.from('pinned'),
    });
    expect(pinned.name).toBe(`${key.name}/cryptoKeyVersions/1`);
    await expectStatus(
      kms.updateCryptoKeyPrimaryVersion({ name: key.name, cryptoKeyVersionId: '9' }),
      status.NOT_FOUND,
    );
  });

  it('destroys a version: it can no longer decrypt; restore and enable bring it back', async () => {
    const [key] = await kms.createCryptoKey({
      parent: RING,
      cryptoKeyId: 'destroy',
      cryptoKey: { purpose: 'ENCRYPT_DECRYPT' },
    });
    const [encrypted] = await kms.encrypt({ name: key.name, plaintext: Buffer.from('short-lived') });
    const v1 = `${key.name}/cryptoKeyVersions/1`;
    const [destroyed] = await kms.destroyCryptoKeyVersion({ name: v1 });
    expect(destroyed.state).toBe('DESTROY_SCHEDULED');
    expect(Number(destroyed.destroyTime?.seconds)).toBeGreaterThan(Date.now() / 1000 + 29 * 24 * 3600);
    await expectStatus(
      kms.decrypt({ name: key.name, ciphertext: encrypted.ciphertext }),
      status.FAILED_PRECONDITION,
      /DESTROY_SCHEDULED/,
    );
    await expectStatus(
      kms.encrypt({ name: key.name, plaintext: Buffer.from('x') }),
      status.FAILED_PRECONDITION,
    );
    await expectStatus(kms.destroyCryptoKeyVersion({ name: v1 }), status.FAILED_PRECONDITION);

    const [restored] = await kms.restoreCryptoKeyVersion({ name: v1 });
    expect(restored.state).toBe('DISABLED');
    await expectStatus(
      kms.decrypt({ name: key.name, ciphertext: encrypted.ciphertext }),
      status.FAILED_PRECONDITION,
    );
    const [enabled] = await kms.updateCryptoKeyVersion({
      cryptoKeyVersion: { name: v1, state: 'ENABLED' },
      updateMask: { paths: ['state'] },
    });
    expect(enabled.state).toBe('ENABLED');
    const [decrypted] = await kms.decrypt({ name: key.name, ciphertext: encrypted.ciphertext });
    expect(Buffer.from(decrypted.plaintext as Uint8Array).toString()).toBe('short-lived');

    // Once destroy_scheduled_duration has passed, the version is DESTROYED for good.
    const [quick] = await kms.createCryptoKey({
      parent: RING,
      cryptoKeyId: 'destroy-now',
      cryptoKey: { purpose: 'ENCRYPT_DECRYPT', destroyScheduledDuration: { seconds: 0 } },
    });
    const [gone] = await kms.encrypt({ name: quick.name, plaintext: Buffer.from('gone') });
    await kms.destroyCryptoKeyVersion({ name: `${quick.name}/cryptoKeyVersions/1` });
    const [final] = await kms.getCryptoKeyVersion({ name: `${quick.name}/cryptoKeyVersions/1` });
    expect(final.state).toBe('DESTROYED');
    await expectStatus(kms.restoreCryptoKeyVersion({ name: final.name }), status.FAILED_PRECONDITION);
    await expectStatus(
      kms.decrypt({ name: quick.name, ciphertext: gone.ciphertext }),
      status.FAILED_PRECONDITION,
    );
  });

  it('signs a SHA-256 digest that node:crypto verifies with the GetPublicKey PEM', async () => {
    const [key] = await kms.createCryptoKey({
      parent: RING,
      cryptoKeyId: 'signing',
      cryptoKey: { purpose: 'ASYMMETRIC_SIGN', versionTemplate: { algorithm: 'EC_SIGN_P256_SHA256' } },
    });
    expect(key.primary).toBeNull();
    const name = `${key.name}/cryptoKeyVersions/1`;
    const [publicKey] = await kms.getPublicKey({ name });
    expect(publicKey.name).toBe(name);
    expect(publicKey.algorithm).toBe('EC_SIGN_P256_SHA256');
    expect(publicKey.pem).toMatch(/^-----BEGIN PUBLIC KEY-----\n[\s\S]+-----END PUBLIC KEY-----\n$/);
    expect(int64(publicKey.pemCrc32c)).toBe(crc(publicKey.pem!));

    const message = Buffer.from('retention receipt 2024-05-01');
    const digest = createHash('sha256').update(message).digest();
    const [signed] = await kms.asymmetricSign({
      name,
      digest: { sha256: digest },
      digestCrc32c: { value: crc(digest) },
    });
    const signature = Buffer.from(signed.signature as Uint8Array);
    expect(signed.name).toBe(name);
    expect(signature[0]).toBe(0x30); // DER SEQUENCE, as real KMS returns
    expect(verify('sha256', message, publicKey.pem!, signature)).toBe(true);
    expect(verify('sha256', Buffer.from('something else'), publicKey.pem!, signature)).toBe(false);

    await expectStatus(
      kms.asymmetricSign({ name, digest: { sha256: digest.subarray(0, 31) } }),
      status.INVALID_ARGUMENT,
    );
    await expectStatus(
      kms.asymmetricSign({ name, digest: { sha384: Buffer.alloc(48) } }),
      status.INVALID_ARGUMENT,
    );
    await expectStatus(
      kms.getPublicKey({ name: `${PAIRING_KEY}/cryptoKeyVersions/1` }),
      status.FAILED_PRECONDITION,
    );
  });

  it("signs the message itself with the sequencer's EC_SIGN_ED25519 key, for its own account only", async () => {
    const grant = catalog.functions.sequencer!.kms.find((g) => g.key === 'sequencer');
    expect(grant).toMatchObject({ purpose: 'ASYMMETRIC_SIGN', algorithm: 'EC_SIGN_ED25519' });
    const [key] = await kms.getCryptoKey({ name: SEQUENCER_KEY });
    expect(key.purpose).toBe('ASYMMETRIC_SIGN');
    expect(key.versionTemplate?.algorithm).toBe('EC_SIGN_ED25519');
    const name = `${SEQUENCER_KEY}/cryptoKeyVersions/1`;

    const [publicKey] = await kms.getPublicKey({ name }, as(SEQUENCER_SA));
    expect(publicKey.name).toBe(name);
    expect(publicKey.algorithm).toBe('EC_SIGN_ED25519');
    expect(publicKey.pem).toMatch(/^-----BEGIN PUBLIC KEY-----\n[\s\S]+-----END PUBLIC KEY-----\n$/);
    expect(int64(publicKey.pemCrc32c)).toBe(crc(publicKey.pem!));
    expect(createPublicKey(publicKey.pem!).asymmetricKeyType).toBe('ed25519');

    // Ed25519 signs the message, not a digest of it: the request carries `data`.
    const message = Buffer.from('clinic-bridge/audit/v1\n42\nq0Lk2xKa8cLXz3sVtiVZ6xJ0P3E8sXj6w5NHFbr1cVs=\n');
    const [signed] = await kms.asymmetricSign(
      { name, data: message, dataCrc32c: { value: crc(message) } },
      as(SEQUENCER_SA),
    );
    const signature = Buffer.from(signed.signature as Uint8Array);
    expect(signed.name).toBe(name);
    expect(signature).toHaveLength(64); // the plain RFC 8032 signature, no DER wrapping
    expect(signed.verifiedDataCrc32c).toBe(true);
    expect(signed.verifiedDigestCrc32c).toBe(false);
    expect(int64(signed.signatureCrc32c)).toBe(crc(signature));
    expect(verify(null, message, publicKey.pem!, signature)).toBe(true);
    expect(verify(null, Buffer.from('something else'), publicKey.pem!, signature)).toBe(false);

    // Without a checksum the data is still signed, just not reported as verified.
    const [unchecked] = await kms.asymmetricSign({ name, data: message }, as(SEQUENCER_SA));
    expect(unchecked.verifiedDataCrc32c).toBe(false);
    expect(verify(null, message, publicKey.pem!, Buffer.from(unchecked.signature as Uint8Array))).toBe(true);
    await expectStatus(
      kms.asymmetricSign(
        { name, data: message, dataCrc32c: { value: (crc(message) + 1) % 2 ** 32 } },
        as(SEQUENCER_SA),
      ),
      status.INVALID_ARGUMENT,
    );

    // A digest is refused for Ed25519, as Cloud KMS refuses it.
    const digest = createHash('sha256').update(message).digest();
    await expectStatus(
      kms.asymmetricSign({ name, digest: { sha256: digest } }, as(SEQUENCER_SA)),
      status.INVALID_ARGUMENT,
      /data/,
    );
    // And `data` is refused for a key that signs digests.
    const [p256] = await kms.createCryptoKey({
      parent: RING,
      cryptoKeyId: 'signing-p256-data',
      cryptoKey: { purpose: 'ASYMMETRIC_SIGN', versionTemplate: { algorithm: 'EC_SIGN_P256_SHA256' } },
    });
    await expectStatus(
      kms.asymmetricSign({ name: `${p256.name}/cryptoKeyVersions/1`, data: message }),
      status.INVALID_ARGUMENT,
    );

    // Only the sequencer's account signs with it, and it signs with nothing else.
    await expectStatus(
      kms.asymmetricSign({ name, data: message }, as(PAIRING_SA)),
      status.PERMISSION_DENIED,
      /^Permission 'cloudkms\.cryptoKeyVersions\.useToSign' denied on resource '.*\/cryptoKeys\/sequencer\/cryptoKeyVersions\/1' \(or it may not exist\)\.$/,
    );
    await expectStatus(kms.getPublicKey({ name }, as(PAIRING_SA)), status.PERMISSION_DENIED);
    await expectStatus(
      kms.asymmetricSign(
        { name, data: message },
        as(serviceAccountPrincipal(catalog.functions.sequencer!.serviceAccount, 'another-project')),
      ),
      status.PERMISSION_DENIED,
    );
    const [wrapped] = await kms.encrypt({ name: PAIRING_KEY, plaintext: Buffer.from('not yours') });
    await expectStatus(
      kms.decrypt({ name: PAIRING_KEY, ciphertext: wrapped.ciphertext }, as(SEQUENCER_SA)),
      status.PERMISSION_DENIED,
    );
    await expectStatus(
      kms.createCryptoKeyVersion({ parent: SEQUENCER_KEY, cryptoKeyVersion: {} }, as(SEQUENCER_SA)),
      status.PERMISSION_DENIED,
    );
  });

  it('signs and verifies MACs', async () => {
    const [key] = await kms.createCryptoKey({
      parent: RING,
      cryptoKeyId: 'mac',
      cryptoKey: { purpose: 'MAC', versionTemplate: { algorithm: 'HMAC_SHA256' } },
    });
    const name = `${key.name}/cryptoKeyVersions/1`;
    const data = Buffer.from('audit checkpoint 42');
    const [signed] = await kms.macSign({ name, data });
    const mac = Buffer.from(signed.mac as Uint8Array);
    expect(signed.name).toBe(name);
    expect(mac).toHaveLength(32);
    const [good] = await kms.macVerify({ name, data, mac });
    expect(good.success).toBe(true);
    expect(good.verifiedSuccessIntegrity).toBe(true);
    const [bad] = await kms.macVerify({ name, data: Buffer.from('audit checkpoint 43'), mac });
    expect(bad.success).toBe(false);
    expect(bad.verifiedSuccessIntegrity).toBe(false);
  });

  it('rejects a request-side CRC32C that does not match, for every checksummed field', async () => {
    const [signKey] = await kms.createCryptoKey({
      parent: RING,
      cryptoKeyId: 'crc-sign',
      cryptoKey: { purpose: 'ASYMMETRIC_SIGN', versionTemplate: { algorithm: 'EC_SIGN_P256_SHA256' } },
    });
    const [macKey] = await kms.createCryptoKey({
      parent: RING,
      cryptoKeyId: 'crc-mac',
      cryptoKey: { purpose: 'MAC', versionTemplate: { algorithm: 'HMAC_SHA256' } },
    });
    const plaintext = Buffer.from('payload');
    const aad = Buffer.from('aad');
    const [encrypted] = await kms.encrypt({ name: PAIRING_KEY, plaintext, additionalAuthenticatedData: aad });
    const wrong = (data: Buffer | Uint8Array) => ({ value: (crc(data) + 1) % 2 ** 32 });
    const digest = createHash('sha256').update(plaintext).digest();
    const macName = `${macKey.name}/cryptoKeyVersions/1`;
    const [mac] = await kms.macSign({ name: macName, data: plaintext });

    const cases: [string, Promise<unknown>][] = [
      ['plaintext_crc32c', kms.encrypt({ name: PAIRING_KEY, plaintext, plaintextCrc32c: wrong(plaintext) })],
      [
        'additional_authenticated_data_crc32c',
        kms.encrypt({
          name: PAIRING_KEY,
          plaintext,
          additionalAuthenticatedData: aad,
          additionalAuthenticatedDataCrc32c: wrong(aad),
        }),
      ],
      [
        'ciphertext_crc32c',
        kms.decrypt({
          name: PAIRING_KEY,
          ciphertext: encrypted.ciphertext,
          additionalAuthenticatedData: aad,
          ciphertextCrc32c: wrong(encrypted.ciphertext as Uint8Array),
        }),
      ],
      [
        'additional_authenticated_data_crc32c',
        kms.decrypt({
          name: PAIRING_KEY,
          ciphertext: encrypted.ciphertext,
          additionalAuthenticatedData: aad,
          additionalAuthenticatedDataCrc32c: wrong(aad),
        }),
      ],
      [
        'digest_crc32c',
        kms.asymmetricSign({
          name: `${signKey.name}/cryptoKeyVersions/1`,
          digest: { sha256: digest },
          digestCrc32c: wrong(digest),
        }),
      ],
      ['data_crc32c', kms.macSign({ name: macName, data: plaintext, dataCrc32c: wrong(plaintext) })],
      [
        'data_crc32c',
        kms.macVerify({ name: macName, data: plaintext, dataCrc32c: wrong(plaintext), mac: mac.mac }),
      ],
      [
        'mac_crc32c',
        kms.macVerify({
          name: macName,
          data: plaintext,
          mac: mac.mac,
          macCrc32c: wrong(mac.mac as Uint8Array),
        }),
      ],
    ];
    for (const [field, call] of cases) {
      await expectStatus(call, status.INVALID_ARGUMENT, new RegExp(field));
    }
    // A checksum of 0 is a checksum, not "unset".
    await expectStatus(
      kms.encrypt({ name: PAIRING_KEY, plaintext, plaintextCrc32c: { value: 0 } }),
      status.INVALID_ARGUMENT,
    );
  });

  it('returns correct response-side checksums and verified_* flags', async () => {
    const plaintext = Buffer.from('checksummed');
    const aad = Buffer.from('bound');
    const [encrypted] = await kms.encrypt({
      name: PAIRING_KEY,
      plaintext,
      plaintextCrc32c: { value: crc(plaintext) },
      additionalAuthenticatedData: aad,
      additionalAuthenticatedDataCrc32c: { value: crc(aad) },
    });
    expect(encrypted.verifiedPlaintextCrc32c).toBe(true);
    expect(encrypted.verifiedAdditionalAuthenticatedDataCrc32c).toBe(true);
    expect(int64(encrypted.ciphertextCrc32c)).toBe(crc(encrypted.ciphertext as Uint8Array));
    const [unverified] = await kms.encrypt({ name: PAIRING_KEY, plaintext });
    expect(unverified.verifiedPlaintextCrc32c).toBe(false);
    expect(unverified.verifiedAdditionalAuthenticatedDataCrc32c).toBe(false);

    const [decrypted] = await kms.decrypt({
      name: PAIRING_KEY,
      ciphertext: encrypted.ciphertext,
      ciphertextCrc32c: { value: crc(encrypted.ciphertext as Uint8Array) },
      additionalAuthenticatedData: aad,
      additionalAuthenticatedDataCrc32c: { value: crc(aad) },
    });
    expect(int64(decrypted.plaintextCrc32c)).toBe(crc(plaintext));

    const signName = `${RING}/cryptoKeys/crc-sign/cryptoKeyVersions/1`;
    const digest = createHash('sha256').update(plaintext).digest();
    const [signed] = await kms.asymmetricSign({
      name: signName,
      digest: { sha256: digest },
      digestCrc32c: { value: crc(digest) },
    });
    expect(signed.verifiedDigestCrc32c).toBe(true);
    expect(signed.verifiedDataCrc32c).toBe(false);
    expect(int64(signed.signatureCrc32c)).toBe(crc(signed.signature as Uint8Array));
    const [unsigned] = await kms.asymmetricSign({ name: signName, digest: { sha256: digest } });
    expect(unsigned.verifiedDigestCrc32c).toBe(false);

    const macName = `${RING}/cryptoKeys/crc-mac/cryptoKeyVersions/1`;
    const [mac] = await kms.macSign({
      name: macName,
      data: plaintext,
      dataCrc32c: { value: crc(plaintext) },
    });
    expect(mac.verifiedDataCrc32c).toBe(true);
    expect(int64(mac.macCrc32c)).toBe(crc(mac.mac as Uint8Array));
    const [verified] = await kms.macVerify({
      name: macName,
      data: plaintext,
      dataCrc32c: { value: crc(plaintext) },
      mac: mac.mac,
      macCrc32c: { value: crc(mac.mac as Uint8Array) },
    });
    expect(verified).toMatchObject({
      success: true,
      verifiedDataCrc32c: true,
      verifiedMacCrc32c: true,
      name: macName,
    });

    const [der] = await kms.getPublicKey({ name: signName, publicKeyFormat: 'DER' });
    expect(int64(der.pemCrc32c)).toBe(crc(der.pem!));
    expect(int64(der.publicKey?.crc32cChecksum)).toBe(crc(der.publicKey!.data as Uint8Array));
  });

  it('answers NOT_FOUND for missing resources', async () => {
    await expectStatus(
      kms.getKeyRing({ name: `${LOCATION}/keyRings/missing` }),
      status.NOT_FOUND,
      /not found/,
    );
    await expectStatus(kms.getCryptoKey({ name: `${RING}/cryptoKeys/missing` }), status.NOT_FOUND);
    await expectStatus(
      kms.getCryptoKeyVersion({ name: `${PAIRING_KEY}/cryptoKeyVersions/99` }),
      status.NOT_FOUND,
    );
    await expectStatus(
      kms.encrypt({ name: `${RING}/cryptoKeys/missing`, plaintext: Buffer.from('x') }),
      status.NOT_FOUND,
    );
    await expectStatus(
      kms.createCryptoKey({
        parent: `${LOCATION}/keyRings/missing`,
        cryptoKeyId: 'k',
        cryptoKey: { purpose: 'ENCRYPT_DECRYPT' },
      }),
      status.NOT_FOUND,
    );
    await expectStatus(kms.listCryptoKeyVersions({ parent: `${RING}/cryptoKeys/missing` }), status.NOT_FOUND);
  });

  it('answers ALREADY_EXISTS for duplicate key rings and keys', async () => {
    await expectStatus(
      kms.createKeyRing({ parent: LOCATION, keyRingId: catalog.keyRing, keyRing: {} }),
      status.ALREADY_EXISTS,
      /already exists/,
    );
    await expectStatus(
      kms.createCryptoKey({
        parent: RING,
        cryptoKeyId: 'pairing',
        cryptoKey: { purpose: 'ENCRYPT_DECRYPT' },
      }),
      status.ALREADY_EXISTS,
    );
  });

  it("lets the pairing function's service account decrypt with its own key only, and never encrypt", async () => {
    const [own] = await kms.encrypt({ name: PAIRING_KEY, plaintext: Buffer.from('pairing key material') });
    const [ok] = await kms.decrypt({ name: PAIRING_KEY, ciphertext: own.ciphertext }, as(PAIRING_SA));
    expect(Buffer.from(ok.plaintext as Uint8Array).toString()).toBe('pairing key material');

    const [other] = await kms.encrypt({ name: INGEST_KEY, plaintext: Buffer.from('ingest key material') });
    await expectStatus(
      kms.decrypt({ name: INGEST_KEY, ciphertext: other.ciphertext }, as(PAIRING_SA)),
      status.PERMISSION_DENIED,
      /^Permission 'cloudkms\.cryptoKeyVersions\.useToDecrypt' denied on resource '.*\/cryptoKeys\/ingest' \(or it may not exist\)\.$/,
    );
    await expectStatus(
      kms.encrypt({ name: PAIRING_KEY, plaintext: Buffer.from('x') }, as(PAIRING_SA)),
      status.PERMISSION_DENIED,
      /cloudkms\.cryptoKeyVersions\.useToEncrypt/,
    );
    // No viewer or admin role either, and a missing key looks the same as a forbidden one.
    await expectStatus(kms.getCryptoKey({ name: PAIRING_KEY }, as(PAIRING_SA)), status.PERMISSION_DENIED);
    await expectStatus(
      kms.decrypt({ name: `${RING}/cryptoKeys/missing`, ciphertext: own.ciphertext }, as(PAIRING_SA)),
      status.PERMISSION_DENIED,
    );
    await expectStatus(
      kms.createCryptoKeyVersion({ parent: PAIRING_KEY, cryptoKeyVersion: {} }, as(PAIRING_SA)),
      status.PERMISSION_DENIED,
    );
    // A principal that is not in the policy at all.
    await expectStatus(
      kms.decrypt(
        { name: PAIRING_KEY, ciphertext: own.ciphertext },
        as(serviceAccountPrincipal('cb-pairing', 'another-project')),
      ),
      status.PERMISSION_DENIED,
    );
  });

  it('takes the principal for a whole client from its options, and a per-call header over it', async () => {
    const pairing = connect(emulator, PAIRING_SA);
    const [own] = await kms.encrypt({ name: PAIRING_KEY, plaintext: Buffer.from('cold start') });
    const [other] = await kms.encrypt({ name: INGEST_KEY, plaintext: Buffer.from('not yours') });
    const [ok] = await pairing.decrypt({ name: PAIRING_KEY, ciphertext: own.ciphertext });
    expect(Buffer.from(ok.plaintext as Uint8Array).toString()).toBe('cold start');
    await expectStatus(
      pairing.decrypt({ name: INGEST_KEY, ciphertext: other.ciphertext }),
      status.PERMISSION_DENIED,
    );
    await expectStatus(
      pairing.encrypt({ name: PAIRING_KEY, plaintext: Buffer.from('x') }),
      status.PERMISSION_DENIED,
    );
    const ingestSa = serviceAccountPrincipal(catalog.functions.ingest!.serviceAccount, PROJECT);
    const [overridden] = await pairing.decrypt(
      { name: INGEST_KEY, ciphertext: other.ciphertext },
      as(ingestSa),
    );
    expect(Buffer.from(overridden.plaintext as Uint8Array).toString()).toBe('not yours');
  });

  it('keeps keys across a restart on the same data directory', async () => {
    const dir = join(dataDir, 'restart');
    const first = await startKmsEmulator({ dataDir: dir, policyFile });
    const before = connect(first);
    await before.createKeyRing({ parent: LOCATION, keyRingId: catalog.keyRing, keyRing: {} });
    const [key] = await before.createCryptoKey({
      parent: RING,
      cryptoKeyId: 'pairing',
      cryptoKey: { purpose: 'ENCRYPT_DECRYPT' },
    });
    const [old] = await before.encrypt({
      name: key.name,
      plaintext: Buffer.from('survives'),
      additionalAuthenticatedData: Buffer.from('a'),
    });
    await before.createCryptoKeyVersion({ parent: key.name, cryptoKeyVersion: {} });
    await before.updateCryptoKeyPrimaryVersion({ name: key.name, cryptoKeyVersionId: '2' });
    await before.close();
    await first.close();

    const second = await startKmsEmulator({ dataDir: dir, policyFile });
    try {
      const after = connect(second);
      const [decrypted] = await after.decrypt(
        { name: key.name, ciphertext: old.ciphertext, additionalAuthenticatedData: Buffer.from('a') },
        as(PAIRING_SA),
      );
      expect(Buffer.from(decrypted.plaintext as Uint8Array).toString()).toBe('survives');
      const [reloaded] = await after.getCryptoKey({ name: key.name });
      expect(reloaded.primary?.name).toBe(`${key.name}/cryptoKeyVersions/2`);
    } finally {
      await second.close();
    }
  });

  it('answers malformed requests with a status and keeps serving', async () => {
    const checks: [Promise<unknown>, number][] = [
      [kms.getKeyRing({ name: 'projects/x' }), status.INVALID_ARGUMENT],
      [kms.getCryptoKey({ name: '' }), status.INVALID_ARGUMENT],
      [kms.getCryptoKey({ name: `${RING}/cryptoKeys/bad name` }), status.INVALID_ARGUMENT],
      [
        kms.createKeyRing({ parent: LOCATION, keyRingId: 'x'.repeat(64), keyRing: {} }),
        status.INVALID_ARGUMENT,
      ],
      [kms.createCryptoKey({ parent: RING, cryptoKeyId: 'no-key' }), status.INVALID_ARGUMENT],
      [
        kms.createCryptoKey({ parent: RING, cryptoKeyId: 'no-purpose', cryptoKey: {} }),
        status.INVALID_ARGUMENT,
      ],
      [
        kms.createCryptoKey({
          parent: RING,
          cryptoKeyId: 'mismatch',
          cryptoKey: { purpose: 'MAC', versionTemplate: { algorithm: 'EC_SIGN_P256_SHA256' } },
        }),
        status.INVALID_ARGUMENT,
      ],
      [kms.encrypt({ name: PAIRING_KEY, plaintext: Buffer.alloc(0) }), status.INVALID_ARGUMENT],
      [kms.encrypt({ name: PAIRING_KEY, plaintext: Buffer.alloc(64 * 1024 + 1) }), status.INVALID_ARGUMENT],
      [
        kms.decrypt({ name: PAIRING_KEY, ciphertext: Buffer.from('not a ciphertext') }),
        status.INVALID_ARGUMENT,
      ],
      [
        kms.decrypt({ name: `${PAIRING_KEY}/cryptoKeyVersions/1`, ciphertext: Buffer.from('x') }),
        status.INVALID_ARGUMENT,
      ],
      [
        kms.asymmetricSign({ name: PAIRING_KEY, digest: { sha256: Buffer.alloc(32) } }),
        status.INVALID_ARGUMENT,
      ],
      [
        kms.macSign({ name: `${PAIRING_KEY}/cryptoKeyVersions/1`, data: Buffer.from('x') }),
        status.FAILED_PRECONDITION,
      ],
      [
        kms.updateCryptoKeyPrimaryVersion({ name: PAIRING_KEY, cryptoKeyVersionId: 'one' }),
        status.INVALID_ARGUMENT,
      ],
      [
        kms.listCryptoKeys({ parent: RING, pageToken: 'garbage' }, { autoPaginate: false }),
        status.INVALID_ARGUMENT,
      ],
      [kms.generateRandomBytes({ location: LOCATION, lengthBytes: 32 }), status.UNIMPLEMENTED],
      [kms.deleteCryptoKey({ name: PAIRING_KEY }), status.UNIMPLEMENTED],
      [kms.getKeyRing({ name: RING }, as('not-a-principal')), status.UNAUTHENTICATED],
    ];
    for (const [call, code] of checks) await expectStatus(call, code);

    // Bytes that are not a protobuf message, and two principals at once, straight over gRPC.
    const raw = new grpc.Client(emulator.address, grpc.credentials.createInsecure());
    try {
      const send = (payload: Buffer, metadata = new grpc.Metadata()) =>
        new Promise<unknown>((resolve, reject) =>
          raw.makeUnaryRequest(
            '/google.cloud.kms.v1.KeyManagementService/Encrypt',
            (value: Buffer) => value,
            (value: Buffer) => value,
            payload,
            metadata,
            (error, value) => (error ? reject(error) : resolve(value)),
          ),
        );
      await expect(send(Buffer.from([0xff, 0xff, 0xff, 0xff, 0x0f]))).rejects.toMatchObject({
        code: status.INTERNAL,
      });
      const twoPrincipals = new grpc.Metadata();
      twoPrincipals.add(LOCAL_PRINCIPAL_HEADER, PAIRING_SA);
      twoPrincipals.add(LOCAL_PRINCIPAL_HEADER, 'user:owner@localhost');
      await expect(send(Buffer.alloc(0), twoPrincipals)).rejects.toMatchObject({
        code: status.UNAUTHENTICATED,
      });
    } finally {
      raw.close();
    }

    const [encrypted] = await kms.encrypt({ name: PAIRING_KEY, plaintext: Buffer.from('still up') });
    const [decrypted] = await kms.decrypt({ name: PAIRING_KEY, ciphertext: encrypted.ciphertext });
    expect(Buffer.from(decrypted.plaintext as Uint8Array).toString()).toBe('still up');
  });
});
