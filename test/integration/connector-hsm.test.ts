// The connector's PKCS#11 key custody against a real token (SoftHSM2, which .ci/run installs):
// the keys are made inside the token and cannot be read out, the token's signatures verify in
// the canonical low-s form, its HMACs equal node:crypto's, and every failure has a stable code
// and never shows the PIN. Without SoftHSM2 this file fails; it never skips.
//
// The tests share one token and run in order: provisioning first, then what uses its keys.
import { execFileSync } from 'node:child_process';
import { createHmac, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pkcs11js from 'pkcs11js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  CustodyError,
  importPkcs11SecretForTest,
  openPkcs11Custody,
  PKCS11_SIGNING_LABEL,
  pkcs11SecretLabel,
  provisionPkcs11Keys,
  type Pkcs11Custody,
  type CustodyErrorCode,
} from '../../clients/connector/custody/pkcs11.ts';
import { SIGNED_HEADER_LENGTH, verify, type PublicKey } from '../../shared/core/crypto/index.ts';
import { derivePatientRef, memoryHmacKey } from '../../shared/core/protocol/index.ts';
import { initSoftHsmTokens, SOFTHSM_MODULE } from '../helpers/softhsm.ts';

const MODULE = SOFTHSM_MODULE;
const TOKEN = 'cb-test';
const EMPTY_TOKEN = 'cb-empty';
const P256_ORDER = 0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551n;

const pin = randomBytes(12).toString('hex');
const token = { modulePath: MODULE, tokenLabel: TOKEN, pin };

function softHsmMissing(): string | undefined {
  if (!existsSync(MODULE)) return `${MODULE} is missing`;
  try {
    execFileSync('softhsm2-util', ['--version'], { stdio: 'ignore' });
  } catch {
    return 'softhsm2-util is not on the PATH';
  }
  return undefined;
}

/** The error a call throws, which must be a CustodyError with `code`. */
function custodyFailure(code: CustodyErrorCode, call: () => unknown): CustodyError {
  let thrown: unknown;
  try {
    call();
  } catch (error) {
    thrown = error;
  }
  expect(thrown).toBeInstanceOf(CustodyError);
  const error = thrown as CustodyError;
  expect(error.code, error.message).toBe(code);
  return error;
}

function expectNoPin(error: Error, ...pins: string[]): void {
  for (const text of pins) {
    expect(error.message).not.toContain(text);
    expect(String(error.stack)).not.toContain(text);
    expect(JSON.stringify(error)).not.toContain(text);
  }
}

/** s of the DER signature at the end of a signed form. */
function signatureS(signed: Uint8Array): bigint {
  const messageLength = new DataView(signed.buffer, signed.byteOffset).getUint32(4, true);
  const der = signed.subarray(SIGNED_HEADER_LENGTH + messageLength);
  const rLength = der[3]!;
  const sAt = 4 + rLength;
  expect(der[sAt]).toBe(0x02);
  let s = 0n;
  for (const byte of der.subarray(sAt + 2, sAt + 2 + der[sAt + 1]!)) s = (s << 8n) | BigInt(byte);
  return s;
}

/** Looks at the token's objects directly, as an auditor would, with no custody open. */
function inspectToken<T>(look: (lib: pkcs11js.PKCS11, session: Buffer) => T): T {
  const lib = new pkcs11js.PKCS11();
  lib.load(MODULE);
  lib.C_Initialize();
  try {
    const slot = lib.C_GetSlotList(true).find((s) => lib.C_GetTokenInfo(s).label.trim() === TOKEN)!;
    const session = lib.C_OpenSession(slot, pkcs11js.CKF_SERIAL_SESSION);
    lib.C_Login(session, pkcs11js.CKU_USER, pin);
    return look(lib, session);
  } finally {
    lib.C_Finalize();
  }
}

function findByLabel(lib: pkcs11js.PKCS11, session: Buffer, objectClass: number, label: string): Buffer[] {
  lib.C_FindObjectsInit(session, [
    { type: pkcs11js.CKA_CLASS, value: objectClass },
    { type: pkcs11js.CKA_LABEL, value: label },
  ]);
  const found = lib.C_FindObjects(session, 10);
  lib.C_FindObjectsFinal(session);
  return found;
}

describe('connector key custody in a PKCS#11 token (SoftHSM2)', () => {
  let dir: string;
  let hospitalKey: PublicKey;

  beforeAll(async () => {
    const missing = softHsmMissing();
    if (missing) {
      throw new Error(
        `SoftHSM2 is not installed (${missing}): .ci/run installs it (apt-get install softhsm2)`,
      );
    }
    dir = await mkdtemp(join(tmpdir(), 'cb-hsm-'));
    // The module reads its configuration at C_Initialize, which no test has called yet.
    process.env.SOFTHSM2_CONF = await initSoftHsmTokens(
      dir,
      [TOKEN, EMPTY_TOKEN],
      pin,
      'log.level = ERROR\n',
    );
  });
  afterAll(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('provisions the keys once, and the opened custody signs verifiable low-s signatures in the token', () => {
    hospitalKey = provisionPkcs11Keys(token);
    const custody = openPkcs11Custody(token);
    try {
      expect(custody.kind).toBe('pkcs11');
      expect(custody.pseudonymKey.version).toBe(1);
      expect(custody.bindingKey.version).toBe(1);
      expect(custody.signer.publicKey.toBase64Url()).toBe(hospitalKey.toBase64Url());
      // The token returns either s; about half of these come back high and must be canonicalised.
      for (let i = 0; i < 24; i++) {
        const message = randomBytes(1 + i * 37);
        const signed = custody.signer.sign(message);
        expect(Buffer.from(verify(signed, hospitalKey)).equals(message)).toBe(true);
        const s = signatureS(signed);
        expect(s > 0n && s <= P256_ORDER >> 1n).toBe(true);
      }
      expect(() => custody.signer.sign(new Uint8Array(0))).toThrow(/empty/);
    } finally {
      custody.close();
    }
  });

  it('refuses to provision over existing keys, and leaves them as they were', () => {
    const error = custodyFailure('HSM_KEY_EXISTS', () => provisionPkcs11Keys(token));
    expect(error.message).toContain(PKCS11_SIGNING_LABEL);
    custodyFailure('HSM_KEY_EXISTS', () => provisionPkcs11Keys({ ...token, version: 2 }));
    const counts = inspectToken((lib, session) =>
      [
        [pkcs11js.CKO_PRIVATE_KEY, PKCS11_SIGNING_LABEL],
        [pkcs11js.CKO_PUBLIC_KEY, PKCS11_SIGNING_LABEL],
        [pkcs11js.CKO_SECRET_KEY, pkcs11SecretLabel('pseudonym', 1)],
        [pkcs11js.CKO_SECRET_KEY, pkcs11SecretLabel('binding', 1)],
        [pkcs11js.CKO_SECRET_KEY, pkcs11SecretLabel('pseudonym', 2)],
      ].map(
        ([objectClass, label]) => findByLabel(lib, session, objectClass as number, label as string).length,
      ),
    );
    expect(counts).toEqual([1, 1, 1, 1, 0]);
    const custody = openPkcs11Custody(token);
    expect(custody.signer.publicKey.toBase64Url()).toBe(hospitalKey.toBase64Url());
    custody.close();
  });

  it('keeps the private key and the secrets sensitive and unextractable', () => {
    const flag = (value: Buffer | undefined): boolean => value?.[0] === 1;
    inspectToken((lib, session) => {
      const keys = [
        findByLabel(lib, session, pkcs11js.CKO_PRIVATE_KEY, PKCS11_SIGNING_LABEL)[0]!,
        findByLabel(lib, session, pkcs11js.CKO_SECRET_KEY, pkcs11SecretLabel('pseudonym', 1))[0]!,
        findByLabel(lib, session, pkcs11js.CKO_SECRET_KEY, pkcs11SecretLabel('binding', 1))[0]!,
      ];
      for (const key of keys) {
        const [token, secret, sensitive, extractable, alwaysSensitive, neverExtractable] = lib
          .C_GetAttributeValue(session, key, [
            { type: pkcs11js.CKA_TOKEN },
            { type: pkcs11js.CKA_PRIVATE },
            { type: pkcs11js.CKA_SENSITIVE },
            { type: pkcs11js.CKA_EXTRACTABLE },
            { type: pkcs11js.CKA_ALWAYS_SENSITIVE },
            { type: pkcs11js.CKA_NEVER_EXTRACTABLE },
          ])
          .map((attribute) => flag(attribute.value));
        expect([token, secret, sensitive, extractable, alwaysSensitive, neverExtractable]).toEqual([
          true,
          true,
          true,
          false,
          true,
          true,
        ]);
        expect(() => lib.C_GetAttributeValue(session, key, [{ type: pkcs11js.CKA_VALUE }])).toThrow(
          /CKR_ATTRIBUTE_SENSITIVE/,
        );
      }
      // The secrets are the 32 bytes provisioning asked for (CKA_VALUE_LEN is a CK_ULONG).
      const [length] = lib.C_GetAttributeValue(session, keys[1]!, [{ type: pkcs11js.CKA_VALUE_LEN }]);
      expect(length!.value.readBigUInt64LE()).toBe(32n);
    });
  });

  it('computes HMAC-SHA256 in the token exactly as node:crypto and memoryHmacKey do', () => {
    const pseudonymBytes = randomBytes(32);
    const bindingBytes = randomBytes(32);
    importPkcs11SecretForTest({ ...token, label: pkcs11SecretLabel('pseudonym', 2), value: pseudonymBytes });
    importPkcs11SecretForTest({ ...token, label: pkcs11SecretLabel('binding', 2), value: bindingBytes });
    const parts = [randomBytes(5), new Uint8Array(0), randomBytes(300)];
    const expected = (key: Buffer) => {
      const mac = createHmac('sha256', key);
      for (const part of parts) mac.update(part);
      return new Uint8Array(mac.digest());
    };

    const custody = openPkcs11Custody(token); // the highest version present is now 2
    try {
      expect(custody.pseudonymKey.version).toBe(2);
      expect(custody.bindingKey.version).toBe(2);
      expect(custody.pseudonymKey.hmac(...parts)).toEqual(expected(pseudonymBytes));
      expect(custody.pseudonymKey.hmac(...parts)).toEqual(memoryHmacKey(pseudonymBytes, 2).hmac(...parts));
      expect(custody.bindingKey.hmac(...parts)).toEqual(expected(bindingBytes));
      expect(custody.bindingKeyOf(2)).toBe(custody.bindingKey);
      expect(derivePatientRef(custody.pseudonymKey, '42')).toBe(
        derivePatientRef(memoryHmacKey(pseudonymBytes, 2), '42'),
      );
      // The provisioned version-1 binding key stays usable for older invitations, and differs.
      expect(custody.bindingKeyOf(1).version).toBe(1);
      expect(custody.bindingKeyOf(1).hmac(...parts)).not.toEqual(expected(bindingBytes));
      custodyFailure('HSM_KEY_MISSING', () => custody.bindingKeyOf(4));
    } finally {
      custody.close();
    }

    const first = openPkcs11Custody({ ...token, version: 1 });
    try {
      expect(first.bindingKey.version).toBe(1);
      expect(first.pseudonymKey.hmac(...parts)).not.toEqual(expected(pseudonymBytes));
    } finally {
      first.close();
    }
    custodyFailure('HSM_KEY_MISSING', () => openPkcs11Custody({ ...token, version: 9 }));

    // Rotating the binding key is adding its next version: pseudonyms stay as they were.
    const rotatedBytes = randomBytes(32);
    importPkcs11SecretForTest({ ...token, label: pkcs11SecretLabel('binding', 3), value: rotatedBytes });
    const rotated = openPkcs11Custody(token);
    try {
      expect(rotated.bindingKey.version).toBe(3);
      expect(rotated.bindingKey.hmac(...parts)).toEqual(expected(rotatedBytes));
      expect(rotated.pseudonymKey.version).toBe(2);
      expect(rotated.pseudonymKey.hmac(...parts)).toEqual(expected(pseudonymBytes));
      expect(rotated.bindingKeyOf(2).hmac(...parts)).toEqual(expected(bindingBytes));
    } finally {
      rotated.close();
    }
  });

  it('fails cleanly once closed, and the token opens again afterwards', () => {
    const custody: Pkcs11Custody = openPkcs11Custody(token);
    custody.close();
    custody.close();
    custodyFailure('CUSTODY_CLOSED', () => custody.signer.sign(new Uint8Array([1])));
    custodyFailure('CUSTODY_CLOSED', () => custody.pseudonymKey.hmac(new Uint8Array([1])));
    custodyFailure('CUSTODY_CLOSED', () => custody.bindingKeyOf(1));
    const again = openPkcs11Custody(token);
    expect(verify(again.signer.sign(new Uint8Array([1])), hospitalKey)).toEqual(new Uint8Array([1]));
    again.close();
  });

  it('refuses a second custody on the module while one is open, without disturbing the first', () => {
    const custody = openPkcs11Custody(token);
    try {
      custodyFailure('HSM_UNAVAILABLE', () => openPkcs11Custody(token));
      expect(verify(custody.signer.sign(new Uint8Array([2])), hospitalKey)).toEqual(new Uint8Array([2]));
    } finally {
      custody.close();
    }
  });

  it('reports a missing module, token or key with its code', () => {
    const missingLabel = custodyFailure('HSM_UNAVAILABLE', () =>
      openPkcs11Custody({ ...token, tokenLabel: 'no-such-token' }),
    );
    expect(missingLabel.message).toContain('no-such-token');
    custodyFailure('HSM_UNAVAILABLE', () =>
      openPkcs11Custody({ ...token, modulePath: join(dir, 'no-such-module.so') }),
    );
    const empty = custodyFailure('HSM_KEY_MISSING', () =>
      openPkcs11Custody({ ...token, tokenLabel: EMPTY_TOKEN }),
    );
    expect(empty.message).toContain(PKCS11_SIGNING_LABEL);
    for (const error of [missingLabel, empty]) expectNoPin(error, pin);
  });

  it('reports a wrong PIN as HSM_LOGIN_FAILED and shows neither PIN in any error', () => {
    const wrongPin = randomBytes(12).toString('hex');
    const errors = [
      custodyFailure('HSM_LOGIN_FAILED', () => openPkcs11Custody({ ...token, pin: wrongPin })),
      custodyFailure('HSM_LOGIN_FAILED', () => provisionPkcs11Keys({ ...token, pin: wrongPin })),
      custodyFailure('HSM_LOGIN_FAILED', () =>
        importPkcs11SecretForTest({ ...token, pin: wrongPin, label: 'x', value: randomBytes(32) }),
      ),
      custodyFailure('HSM_LOGIN_FAILED', () => openPkcs11Custody({ ...token, pin: '' })),
    ];
    for (const error of errors) expectNoPin(error, wrongPin, pin);
    // A failed login leaves the module free for the right PIN.
    openPkcs11Custody(token).close();
  });
});
