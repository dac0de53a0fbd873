// The connector's file custody (C3): the master secret never keys anything directly. Separate
// pseudonym and binding keys, each labelled with its version, come from it; a keys file that
// others may read is refused before any key is used; close() zeroes what was held.
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { assertOwnerOnly, openFileCustody, type FileKeys } from '../../clients/connector/custody/file.ts';
import { exportPrivateKey, generateKeyPair, verify } from '../../shared/core/crypto/index.ts';
import {
  derivePatientRef,
  deriveBindingSecret,
  newRandomId,
  toBase64Url,
} from '../../shared/core/protocol/index.ts';

const hospital = generateKeyPair();
const keys = (
  bindingKeyVersion = 1,
  masterSecret = toBase64Url(new Uint8Array(randomBytes(32))),
): FileKeys => ({
  publicKey: hospital.publicKey.toBase64Url(),
  privateKey: toBase64Url(exportPrivateKey(hospital.privateKey)),
  masterSecret,
  bindingKeyVersion,
});

describe('C3 file custody of the hospital keys', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'cb-custody-'));
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it('C3 derives distinct pseudonym and binding keys per version, and signs with the hospital key', () => {
    const stored = keys();
    const custody = openFileCustody(stored);
    const again = openFileCustody(stored);
    expect(derivePatientRef(custody.pseudonymKey, '42')).toBe(derivePatientRef(again.pseudonymKey, '42'));
    // The two keys are not the same key, nor the master secret itself.
    const invitation = newRandomId();
    const ref = derivePatientRef(custody.pseudonymKey, '42');
    expect(derivePatientRef(custody.bindingKey, '42')).not.toBe(ref);
    expect(toBase64Url(deriveBindingSecret(custody.bindingKey, invitation, ref))).not.toBe(
      toBase64Url(deriveBindingSecret(custody.pseudonymKey, invitation, ref)),
    );
    // A rotated binding key differs, and the old version stays derivable for old invitations.
    const rotated = openFileCustody({ ...stored, bindingKeyVersion: 2 });
    expect(rotated.bindingKey.version).toBe(2);
    // Pseudonyms do not move with it: every patient keeps their patientRef.
    expect(derivePatientRef(rotated.pseudonymKey, '42')).toBe(ref);
    expect(toBase64Url(deriveBindingSecret(rotated.bindingKey, invitation, ref))).not.toBe(
      toBase64Url(deriveBindingSecret(custody.bindingKey, invitation, ref)),
    );
    expect(toBase64Url(deriveBindingSecret(rotated.bindingKeyOf(1), invitation, ref))).toBe(
      toBase64Url(deriveBindingSecret(custody.bindingKey, invitation, ref)),
    );
    const message = new TextEncoder().encode('cb/test');
    expect(verify(custody.signer.sign(message), hospital.publicKey)).toEqual(message);
    for (const opened of [custody, again, rotated]) opened.close();
  });

  it('C3 zeroes its keys on close: nothing derives afterwards', () => {
    const custody = openFileCustody(keys());
    custody.close();
    expect(() => derivePatientRef(custody.pseudonymKey, '42')).toThrow(/destroyed/);
    expect(() => deriveBindingSecret(custody.bindingKey, newRandomId(), newRandomId())).toThrow(/destroyed/);
  });

  it('C3 refuses a keys file that others may read or write, naming the fix', async () => {
    const path = join(dir, 'hospital-keys.json');
    await writeFile(path, JSON.stringify(keys()), { mode: 0o600 });
    await expect(assertOwnerOnly(path)).resolves.toBeUndefined();
    for (const mode of [0o644, 0o640, 0o604, 0o660]) {
      await chmod(path, mode);
      await expect(assertOwnerOnly(path)).rejects.toThrow(/chmod 600/);
    }
    await expect(assertOwnerOnly(join(dir, 'missing.json'))).rejects.toThrow(/cb-connector keys/);
  });

  it('C3 refuses a damaged master secret', () => {
    expect(() => openFileCustody(keys(1, toBase64Url(new Uint8Array(16))))).toThrow(/master secret/);
  });
});
