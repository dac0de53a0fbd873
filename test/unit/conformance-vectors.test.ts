// The conformance vectors in vectors/ (docs/NATIVE.md) cannot drift from the code: each file is
// exactly what test/vectors/generate.ts makes from the committed randomised outputs, its
// deterministic parts do not depend on those outputs, and every vector is checked against the
// library in both directions (what is committed verifies or opens; what is deterministic is
// re-derived; what the library makes now is accepted by the vector's own procedure). Negative
// vectors must fail with their stable code. vectors/transparency.json is checked in depth by
// tlog-vectors.test.ts.
import { createDecipheriv, createHash, createHmac } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { openFileCustody } from '../../clients/connector/custody/file.ts';
import {
  createKeyWrapper,
  decryptRecord,
  importKeyPair,
  importPublicKey,
  recordChunkContext,
  sign,
  unwrapContentKey,
  verify,
} from '../../shared/core/crypto/index.ts';
import { contentKeyBytes, contentKeyFromBytes } from '../../shared/core/crypto/keys.ts';
import { openCell } from '../../shared/core/crypto/secure-cell-seal.ts';
import { themis } from '../../shared/core/crypto/themis.ts';
import {
  bindingProofText,
  bodyDigest,
  canonicalApiBase,
  acceptDeviceLink,
  buildDeviceLink,
  canonicalJson,
  contentKeyFromLink,
  decodeInvitationQr,
  decodeLinkQr,
  encodeLinkQr,
  linkedCertificateFor,
  linkIdOf,
  readDeviceLinkUnverified,
  signLinkedDeviceCertificate,
  deriveBindingSecret,
  deriveOperatorRef,
  derivePatientRef,
  encodeInvitationQr,
  isErrorCode,
  memoryHmacKey,
  requestSigningString,
  signRequest,
  tokenDigest,
  verifyBindingProof,
} from '../../shared/core/protocol/index.ts';
import type { DeviceLink, KeyKind, LinkedDeviceCertificate } from '../../shared/core/protocol/index.ts';
import { ed25519PublicKey } from '../../shared/core/tlog/ed25519.ts';
import {
  errorCodeOf,
  hex,
  KEY_NAMES,
  seed,
  testKeys,
  unb64,
  unhex,
  utf8,
  verifyAs,
} from '../vectors/common.ts';
import type { DocumentKind, KeyName } from '../vectors/common.ts';
import {
  generateVectors,
  keyWrapPayload,
  openContainerAs,
  readCommittedVectors,
  renderVectors,
  sealMessageKey,
  secureMessageDecrypt,
  VECTOR_DIR,
  VECTOR_FILES,
  vectorPath,
  verifyVectorRequest,
} from '../vectors/generate.ts';
import type { VectorSet } from '../vectors/generate.ts';
import { checkLink, checkLinkedDevice, linkQrOf, unwrapFromLink } from '../vectors/linking.ts';
import type {
  LinkCheck,
  LinkedDeviceCheck,
  LinkerStateVector,
  LinkQrFields,
  UnwrapCheck,
} from '../vectors/linking.ts';

const committed = readCommittedVectors() as VectorSet;
const keys = testKeys();
const pair = (name: string) => keys[name as KeyName].pair;
const sha = (bytes: Uint8Array): Uint8Array => new Uint8Array(createHash('sha256').update(bytes).digest());
const text = (bytes: Uint8Array): string => Buffer.from(bytes).toString('utf8');
const P256_ORDER = 0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551n;

/** Fields whose values come from randomness (or a DER length), left out where exactness is required. */
const RANDOMISED = new Set([
  'signed',
  'wrappedKey',
  'signedManifest',
  'ciphertextSha256',
  'containerHex',
  'containerLength',
  'ivHex',
  'tagHex',
  'sealedHex',
  'CB-Signature',
  // Derived from a randomised output (a signature or a wrap inside the link), so fresh too.
  'linkedByCertificate',
  'linkProof',
  'linkSha256',
  'proofInput',
]);
function deterministic(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(deterministic);
  if (value === null || typeof value !== 'object') return value;
  return Object.fromEntries(
    Object.entries(value)
      .filter(([key]) => !RANDOMISED.has(key))
      .map(([key, inner]) => [key, deterministic(inner)]),
  );
}

/** Opens a Secure Cell with wasm-themis itself, the reference Themis engine phones match. */
function themisOpen(key: Uint8Array, sealed: Uint8Array, context: Uint8Array): Uint8Array {
  const cell = themis().SecureCellSeal.withKey(key);
  return context.length > 0 ? cell.decrypt(sealed, context) : cell.decrypt(sealed);
}

/** Opens a Seal by PROTOCOL.md §2.3's layout alone: the message key and AES-256-GCM. */
function gcmOpen(messageKey: Uint8Array, sealed: Uint8Array, context: Uint8Array): Uint8Array {
  const decipher = createDecipheriv('aes-256-gcm', messageKey, sealed.subarray(16, 28), {
    authTagLength: 16,
  });
  decipher.setAuthTag(sealed.subarray(28, 44));
  if (context.length > 0) decipher.setAAD(context);
  return new Uint8Array(Buffer.concat([decipher.update(sealed.subarray(44)), decipher.final()]));
}

describe('vectors/', () => {
  it('holds exactly the files the generator writes, each described', () => {
    const files = readdirSync(VECTOR_DIR).filter((name) => name.endsWith('.json'));
    expect(files.sort()).toEqual(VECTOR_FILES.map((name) => `${name}.json`).sort());
    for (const name of VECTOR_FILES) {
      const description = (committed[name] as { description?: unknown }).description;
      expect(typeof description === 'string' && description.length > 100, name).toBe(true);
    }
  });

  it('is byte for byte what the generator makes from the committed outputs (rerun it if this fails on purpose)', async () => {
    const rendered = await renderVectors(await generateVectors(committed));
    for (const name of VECTOR_FILES)
      expect(rendered[name], name).toBe(readFileSync(vectorPath(name), 'utf8'));
  }, 30_000);

  it('has deterministic parts that fresh randomness reproduces exactly', async () => {
    const fresh = await generateVectors({});
    // The fresh run signed, sealed and wrapped anew: those differ, everything else must not.
    expect(deterministic(fresh)).toEqual(deterministic(committed));
    expect(
      (fresh.signatures as { valid: { signed: string }[] }).valid[1]!.signed,
      'a fresh run signs anew',
    ).not.toBe((committed.signatures as { valid: { signed: string }[] }).valid[1]!.signed);
  }, 30_000);

  it('is up to date by the documented command (`node test/vectors/generate.ts --check`)', () => {
    const script = fileURLToPath(new URL('../vectors/generate.ts', import.meta.url));
    // Throws (exit status 1) if any file differs from what the command would write.
    const out = execFileSync(process.execPath, [script, '--check'], { encoding: 'utf8' });
    expect(out).toContain('vectors/ is up to date');
  }, 30_000);

  it('names only error codes of the catalogue (PROTOCOL.md §12) in its negative vectors', () => {
    const codes: unknown[] = [];
    const walk = (value: unknown): void => {
      if (Array.isArray(value)) value.forEach(walk);
      else if (value !== null && typeof value === 'object') {
        for (const [key, inner] of Object.entries(value)) {
          if (key === 'expectedError') codes.push(inner);
          else walk(inner);
        }
      }
    };
    walk(committed);
    expect(codes.length).toBeGreaterThan(60);
    for (const code of codes) expect(isErrorCode(code), String(code)).toBe(true);
  });
});

describe('vectors/keys.json', () => {
  const file = committed.keys as {
    ec: Record<string, { seedLabel: string; privateKey: string; publicKey: string; fingerprint: string }>;
    masterSecret: { seedLabel: string; valueHex: string };
    contentKey: { seedLabel: string; valueHex: string };
    witness: { seedLabel: string; seedHex: string; publicKeyHex: string };
  };

  it('holds key pairs whose scalar is SHA-256 of their label, that Themis imports as pairs', () => {
    expect(Object.keys(file.ec).sort()).toEqual([...KEY_NAMES].sort());
    for (const key of Object.values(file.ec)) {
      expect(key.seedLabel).toMatch(/test only/);
      const scalar = BigInt(`0x${hex(sha(utf8(key.seedLabel)))}`) % P256_ORDER;
      const privateBytes = unb64(key.privateKey);
      expect(hex(privateBytes.subarray(13))).toBe(scalar.toString(16).padStart(64, '0'));
      const imported = importKeyPair(key.privateKey, key.publicKey);
      expect(imported.publicKey.fingerprint).toBe(key.fingerprint);
      expect(unb64(key.fingerprint)).toEqual(sha(unb64(key.publicKey)));
      // Sign with the private half, verify with the public half.
      expect(text(verify(sign(utf8('pair check'), imported.privateKey), imported.publicKey))).toBe(
        'pair check',
      );
    }
  });

  it('holds secrets and the witness key derived from their labels', () => {
    expect(file.masterSecret.valueHex).toBe(hex(sha(utf8(file.masterSecret.seedLabel))));
    expect(file.contentKey.valueHex).toBe(hex(sha(utf8(file.contentKey.seedLabel))));
    expect(file.masterSecret.valueHex).toBe(hex(seed('master secret')));
    expect(file.witness.seedHex).toBe(hex(sha(utf8(file.witness.seedLabel))));
    expect(file.witness.publicKeyHex).toBe(hex(ed25519PublicKey(unhex(file.witness.seedHex))));
  });
});

describe('vectors/derivations.json', () => {
  const file = committed.derivations as {
    hospitalKeys: {
      masterSecretHex: string;
      keys: { purpose: 'pseudonym' | 'binding'; label: string; version: number; keyHex: string }[];
    };
    patientRefs: {
      valid: { patientNumberUtf8: string; patientRef: string }[];
      invalid: { patientNumberUtf8: string; expectedError: string }[];
    };
    operatorRefs: { valid: { staffIdUtf8: string; operatorRef: string }[] };
    fingerprints: { key: string; publicKey: string; fingerprint: string }[];
    tokens: { token: string; tokenSha256: string; tokenHex: string }[];
    binding: {
      valid: {
        bindingKeyVersion: number;
        invitationId: string;
        patientRef: string;
        devicePublicKey: string;
        deviceId: string;
        bindingSecretHex: string;
        bindingProof: string;
      };
      bindingSecretOfVersion2Hex: string;
      invalid: {
        name: string;
        bindingKeyVersion: number;
        invitationId: string;
        patientRef: string;
        devicePublicKey: string;
        deviceId: string;
        bindingProof: string;
        expectedError: string;
      }[];
    };
    chunkContexts: { recordId: string; index: number; last: boolean; contextHex: string }[];
  };
  const keyOf = (purpose: string, version: number) => {
    const entry = file.hospitalKeys.keys.find((k) => k.purpose === purpose && k.version === version)!;
    return memoryHmacKey(unhex(entry.keyHex), version);
  };

  it("holds the connector's derived keys, which its file custody computes from the master secret", () => {
    const hospital = (committed.keys as { ec: Record<string, { publicKey: string; privateKey: string }> }).ec
      .hospital!;
    const custody = openFileCustody({
      ...hospital,
      masterSecret: Buffer.from(unhex(file.hospitalKeys.masterSecretHex)).toString('base64url'),
      bindingKeyVersion: 1,
    });
    const probe = utf8('probe');
    const master = unhex(file.hospitalKeys.masterSecretHex);
    for (const key of file.hospitalKeys.keys) {
      // HMAC-SHA256(masterSecret, label || uint16 BE version), the documented formula.
      const expected = createHmac('sha256', master)
        .update(utf8(key.label))
        .update(Uint8Array.of(key.version >> 8, key.version & 0xff))
        .digest('hex');
      expect(key.keyHex).toBe(expected);
      const held = key.purpose === 'pseudonym' ? custody.pseudonymKey : custody.bindingKeyOf(key.version);
      expect(hex(held.hmac(probe))).toBe(hex(keyOf(key.purpose, key.version).hmac(probe)));
    }
    custody.close();
  });

  it('holds patientRefs and operatorRefs that the library derives, and refuses the invalid numbers', async () => {
    const pseudonymKey = keyOf('pseudonym', 1);
    for (const { patientNumberUtf8, patientRef } of file.patientRefs.valid) {
      expect(derivePatientRef(pseudonymKey, patientNumberUtf8)).toBe(patientRef);
    }
    // NFC: the precomposed and the decomposed spelling are one patient.
    expect(file.patientRefs.valid[2]!.patientRef).toBe(file.patientRefs.valid[3]!.patientRef);
    for (const { patientNumberUtf8, expectedError } of file.patientRefs.invalid) {
      expect(await errorCodeOf(() => derivePatientRef(pseudonymKey, patientNumberUtf8))).toBe(expectedError);
    }
    for (const { staffIdUtf8, operatorRef } of file.operatorRefs.valid) {
      expect(deriveOperatorRef(pseudonymKey, staffIdUtf8)).toBe(operatorRef);
    }
  });

  it('holds fingerprints and token digests', () => {
    for (const { publicKey, fingerprint } of file.fingerprints) {
      expect(importPublicKey(publicKey).fingerprint).toBe(fingerprint);
    }
    for (const { token, tokenSha256, tokenHex } of file.tokens) {
      expect(hex(unb64(token))).toBe(tokenHex);
      expect(tokenDigest(token)).toBe(tokenSha256);
      expect(unb64(tokenSha256)).toEqual(sha(unhex(tokenHex)));
    }
  });

  it('holds a binding secret and proof the library derives and accepts, and refuses each changed input', async () => {
    const v = file.binding.valid;
    const secret = deriveBindingSecret(keyOf('binding', v.bindingKeyVersion), v.invitationId, v.patientRef);
    expect(hex(secret)).toBe(v.bindingSecretHex);
    expect(hex(deriveBindingSecret(keyOf('binding', 2), v.invitationId, v.patientRef))).toBe(
      file.binding.bindingSecretOfVersion2Hex,
    );
    const devicePublicKey = importPublicKey(v.devicePublicKey);
    expect(devicePublicKey.fingerprint).toBe(v.deviceId);
    expect(bindingProofText(secret, v.invitationId, devicePublicKey)).toBe(v.bindingProof);
    const check = (c: typeof v | (typeof file.binding.invalid)[number]) =>
      verifyBindingProof({
        bindingKey: keyOf('binding', c.bindingKeyVersion),
        invitationId: c.invitationId,
        patientRef: c.patientRef,
        deviceId: c.deviceId,
        devicePublicKey: importPublicKey(c.devicePublicKey),
        bindingProof: c.bindingProof,
      });
    expect(() => check(v)).not.toThrow();
    expect(file.binding.invalid.length).toBeGreaterThanOrEqual(5);
    for (const entry of file.binding.invalid) {
      expect(await errorCodeOf(() => check(entry)), entry.name).toBe(entry.expectedError);
    }
  });

  it('holds record-chunk contexts laid out as PROTOCOL.md §2.3 says', () => {
    for (const { recordId, index, last, contextHex } of file.chunkContexts) {
      expect(hex(recordChunkContext(recordId, index, last))).toBe(contextHex);
      const id = utf8(recordId);
      const layout = new Uint8Array([
        ...utf8('CBRC'),
        0x01,
        id.length >> 8,
        id.length & 0xff,
        ...id,
        (index >>> 24) & 0xff,
        (index >>> 16) & 0xff,
        (index >>> 8) & 0xff,
        index & 0xff,
        last ? 1 : 0,
      ]);
      expect(contextHex).toBe(hex(layout));
    }
  });
});

describe('vectors/signatures.json', () => {
  interface Entry {
    name: string;
    kind: DocumentKind;
    at?: string;
    token?: string;
    signed: string;
  }
  const file = committed.signatures as {
    valid: (Entry & { signer: string; document: unknown; messageUtf8: string })[];
    invalid: (Entry & { verifyWith: string; expectedError: string })[];
  };
  const check = (entry: Entry, signed: Uint8Array, key: string) =>
    verifyAs({
      kind: entry.kind,
      signed,
      publicKey: pair(key).publicKey,
      ...(entry.at ? { at: new Date(entry.at) } : {}),
      ...(entry.token ? { token: entry.token } : {}),
    });

  it('holds a signed form of every kind of document, each verifying to its canonical JSON', () => {
    expect(new Set(file.valid.map((entry) => entry.kind))).toEqual(
      new Set([
        'secureMessageSign',
        'deviceCertificate',
        'pairRequest',
        'uploadManifest',
        'receipt',
        'deletionReceipt',
      ]),
    );
    for (const entry of file.valid) {
      const signed = unb64(entry.signed);
      const accepted = check(entry, signed, entry.signer);
      expect(canonicalJson(accepted), entry.name).toBe(canonicalJson(entry.document));
      if (entry.kind !== 'secureMessageSign') expect(entry.messageUtf8).toBe(canonicalJson(entry.document));
      // The layout of §2.5: tag, lengths (little-endian), the message in the clear, DER.
      const view = new DataView(signed.buffer, signed.byteOffset, signed.byteLength);
      expect(view.getUint32(0, true)).toBe(0x26042620);
      const m = view.getUint32(4, true);
      expect(text(signed.subarray(12, 12 + m))).toBe(entry.messageUtf8);
      expect(12 + m + view.getUint32(8, true)).toBe(signed.length);
    }
  });

  it('accepts what the library signs now for each document (the other direction)', () => {
    for (const entry of file.valid) {
      const fresh = sign(utf8(entry.messageUtf8), pair(entry.signer).privateKey);
      expect(canonicalJson(check(entry, fresh, entry.signer)), entry.name).toBe(
        canonicalJson(entry.document),
      );
    }
  });

  it('refuses every invalid signed form with its stable code', async () => {
    expect(file.invalid.length).toBeGreaterThanOrEqual(15);
    for (const entry of file.invalid) {
      expect(await errorCodeOf(() => check(entry, unb64(entry.signed), entry.verifyWith)), entry.name).toBe(
        entry.expectedError,
      );
    }
  });
});

describe('vectors/containers.json', () => {
  interface OpenAs {
    device: KeyName;
    hospitalKey: KeyName;
    hospitalId: string;
    recordId: string;
  }
  const file = committed.containers as {
    valid: {
      openAs: OpenAs;
      contentKeyHex: string;
      header: Record<string, unknown>;
      headerJsonUtf8: string;
      fileUtf8: string;
      plaintextHex: string;
      manifest: Record<string, unknown> & {
        chunkSize: number;
        chunkCount: number;
        plaintextLength: number;
        ciphertextLength: number;
        ciphertextSha256: string;
        wrapKey: string;
        recordId: string;
        recipients: { deviceId: string; wrappedKey: string }[];
      };
      signedManifest: string;
      keyWrapPayloadHex: string;
      chunks: {
        index: number;
        last: boolean;
        contextHex: string;
        dataHex: string;
        sealedMessageHex: string;
        messageKeyHex: string;
        ivHex: string;
        tagHex: string;
        sealedHex: string;
      }[];
      containerHex: string;
      opened: { header: Record<string, unknown>; fileUtf8: string };
    };
    invalid: { name: string; openAs: OpenAs; containerHex: string; expectedError: string }[];
    invalidChunkSequences: { name: string; recordId: string; chunks: number[]; expectedError: string }[];
    secureCells: {
      name: string;
      keyHex: string;
      messageUtf8: string;
      contextHex: string;
      messageKeyHex: string;
      sealedHex: string;
    }[];
  };
  const v = file.valid;
  const key = unhex(v.contentKeyHex);

  it('opens as a device opens it (openRecord) to the committed header and file', async () => {
    const opened = await openContainerAs(keys, unhex(v.containerHex), v.openAs);
    expect(canonicalJson(opened.header)).toBe(canonicalJson(v.opened.header));
    expect(text(opened.file)).toBe(v.opened.fileUtf8);
    expect(canonicalJson(opened.manifest)).toBe(canonicalJson(v.manifest));
  });

  it('is laid out as §7 says: header, the signed manifest, then length-framed chunks', () => {
    const bytes = unhex(v.containerHex);
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    expect(text(bytes.subarray(0, 4))).toBe('CBRU');
    expect(bytes[4]).toBe(1);
    const m = view.getUint32(5, false);
    const signedManifest = bytes.subarray(9, 9 + m);
    expect(signedManifest).toEqual(unb64(v.signedManifest));
    expect(JSON.parse(text(verify(signedManifest, pair('hospital').publicKey)))).toEqual(v.manifest);
    const section = bytes.subarray(9 + m);
    expect(section.length).toBe(v.manifest.ciphertextLength);
    expect(v.manifest.ciphertextLength).toBe(v.manifest.plaintextLength + 49 * v.manifest.chunkCount);
    expect(unb64(v.manifest.ciphertextSha256)).toEqual(sha(section));
    let offset = 0;
    for (const chunk of v.chunks) {
      const length = new DataView(section.buffer, section.byteOffset + offset, 4).getUint32(0, false);
      expect(hex(section.subarray(offset + 4, offset + 4 + length))).toBe(chunk.sealedHex);
      offset += 4 + length;
    }
    expect(offset).toBe(section.length);
  });

  it('holds the record plaintext of §6, cut into chunks of chunkSize', () => {
    const header = utf8(v.headerJsonUtf8);
    const expected = new Uint8Array([
      ...utf8('CBRP'),
      1,
      ...[24, 16, 8, 0].map((shift) => (header.length >>> shift) & 0xff),
      ...header,
      ...utf8(v.fileUtf8),
    ]);
    expect(v.plaintextHex).toBe(hex(expected));
    expect(v.headerJsonUtf8).toBe(canonicalJson(v.header));
    expect(v.chunks.map((c) => c.dataHex).join('')).toBe(v.plaintextHex);
    expect(v.chunks).toHaveLength(v.manifest.chunkCount);
    expect(v.chunks.length).toBeGreaterThan(2);
  });

  it('wraps the content key for the device under the manifest wrap key (§2.4)', () => {
    const [recipient] = v.manifest.recipients;
    const wrapKey = importPublicKey(v.manifest.wrapKey);
    const device = pair(v.openAs.device);
    expect(recipient!.deviceId).toBe(device.publicKey.fingerprint);
    const wrapped = unb64(recipient!.wrappedKey);
    expect(hex(secureMessageDecrypt(device.privateKey, wrapKey, wrapped))).toBe(v.keyWrapPayloadHex);
    expect(v.keyWrapPayloadHex).toBe(
      hex(keyWrapPayload(wrapKey, device.publicKey, v.manifest.recordId, key)),
    );
    const unwrapped = unwrapContentKey(wrapped, { recordId: v.manifest.recordId, device, wrapKey });
    expect(hex(contentKeyBytes(unwrapped))).toBe(v.contentKeyHex);
  });

  it('holds chunks that open one by one with Themis, the library and the documented Seal layout', () => {
    for (const chunk of v.chunks) {
      const context = unhex(chunk.contextHex);
      const sealed = unhex(chunk.sealedHex);
      expect(chunk.contextHex).toBe(hex(recordChunkContext(v.manifest.recordId, chunk.index, chunk.last)));
      expect(chunk.sealedMessageHex).toBe(`00${chunk.dataHex}`);
      expect(sealed.length).toBe(unhex(chunk.dataHex).length + 45);
      expect(hex(themisOpen(key, sealed, context))).toBe(chunk.sealedMessageHex);
      expect(hex(openCell(key, sealed, context)!)).toBe(chunk.sealedMessageHex);
      const messageKey = unhex(chunk.messageKeyHex);
      expect(messageKey).toEqual(sealMessageKey(key, sealed.length - 44, context));
      expect(hex(gcmOpen(messageKey, sealed, context))).toBe(chunk.sealedMessageHex);
      expect(hex(sealed.subarray(16, 28))).toBe(chunk.ivHex);
      expect(hex(sealed.subarray(28, 44))).toBe(chunk.tagHex);
    }
    const record = decryptRecord(
      v.chunks.map((c) => unhex(c.sealedHex)),
      { key: contentKeyFromBytes(key), recordId: v.manifest.recordId },
    );
    expect(hex(record)).toBe(v.plaintextHex);
  });

  it('refuses every invalid container with its stable code', async () => {
    expect(file.invalid.length).toBeGreaterThanOrEqual(8);
    for (const entry of file.invalid) {
      expect(
        await errorCodeOf(() => openContainerAs(keys, unhex(entry.containerHex), entry.openAs)),
        entry.name,
      ).toBe(entry.expectedError);
    }
  });

  it('refuses every reordered, cut or extended chunk sequence with its stable code', async () => {
    const sealed = v.chunks.map((c) => unhex(c.sealedHex));
    for (const entry of file.invalidChunkSequences) {
      const open = () =>
        decryptRecord(
          entry.chunks.map((i) => sealed[i]!),
          { key: contentKeyFromBytes(key), recordId: entry.recordId },
        );
      expect(await errorCodeOf(open), entry.name).toBe(entry.expectedError);
    }
  });

  it('holds Secure Cells that Themis, the library and the Seal layout open, and cells Themis makes open too', () => {
    for (const cell of file.secureCells) {
      const cellKey = unhex(cell.keyHex);
      const context = unhex(cell.contextHex);
      const sealed = unhex(cell.sealedHex);
      expect(text(themisOpen(cellKey, sealed, context))).toBe(cell.messageUtf8);
      expect(text(openCell(cellKey, sealed, context)!)).toBe(cell.messageUtf8);
      expect(cell.messageKeyHex).toBe(hex(sealMessageKey(cellKey, utf8(cell.messageUtf8).length, context)));
      expect(text(gcmOpen(unhex(cell.messageKeyHex), sealed, context))).toBe(cell.messageUtf8);
      // The other direction: a cell wasm-themis seals now opens by the vector's procedure.
      const themisCell = themis().SecureCellSeal.withKey(cellKey);
      const fresh =
        context.length > 0
          ? themisCell.encrypt(utf8(cell.messageUtf8), context)
          : themisCell.encrypt(utf8(cell.messageUtf8));
      expect(text(gcmOpen(unhex(cell.messageKeyHex), fresh, context))).toBe(cell.messageUtf8);
    }
  });
});

describe('vectors/key-wraps.json', () => {
  interface UnwrapWith {
    device: KeyName;
    wrapKey: KeyName;
    recordId: string;
  }
  const file = committed['key-wraps'] as {
    valid: {
      recordId: string;
      wrapKey: KeyName;
      device: KeyName;
      contentKeyHex: string;
      payload: { wrapKeySha256Hex: string; deviceKeySha256Hex: string; recordIdLength: number };
      payloadHex: string;
      wrappedKey: string;
      wrappedKeyLength: number;
    };
    invalid: { name: string; wrappedKey: string; unwrapWith: UnwrapWith; expectedError: string }[];
  };
  const v = file.valid;
  const unwrap = (wrapped: string, as: UnwrapWith) =>
    unwrapContentKey(unb64(wrapped), {
      recordId: as.recordId,
      device: pair(as.device),
      wrapKey: pair(as.wrapKey).publicKey,
    });

  it('holds a wrapped key that unwraps to the content key, around the documented payload', () => {
    const wrapKey = pair(v.wrapKey).publicKey;
    const device = pair(v.device);
    expect(unb64(v.wrappedKey)).toHaveLength(v.wrappedKeyLength);
    expect(v.wrappedKeyLength).toBe(177);
    expect(hex(secureMessageDecrypt(device.privateKey, wrapKey, unb64(v.wrappedKey)))).toBe(v.payloadHex);
    expect(v.payloadHex).toBe(
      hex(keyWrapPayload(wrapKey, device.publicKey, v.recordId, unhex(v.contentKeyHex))),
    );
    expect(v.payload.wrapKeySha256Hex).toBe(hex(sha(wrapKey.toBytes())));
    expect(v.payload.deviceKeySha256Hex).toBe(hex(sha(device.publicKey.toBytes())));
    const key = unwrap(v.wrappedKey, { device: v.device, wrapKey: v.wrapKey, recordId: v.recordId });
    expect(hex(contentKeyBytes(key))).toBe(v.contentKeyHex);
  });

  it("holds the payload the library's own wrapping makes (the other direction)", () => {
    const device = pair(v.device);
    const wrapper = createKeyWrapper();
    const wrapped = wrapper.wrap(contentKeyFromBytes(unhex(v.contentKeyHex)), {
      recordId: v.recordId,
      device: device.publicKey,
    });
    const payload = secureMessageDecrypt(device.privateKey, wrapper.publicKey, wrapped);
    wrapper.destroy();
    expect(hex(payload)).toBe(
      hex(keyWrapPayload(wrapper.publicKey, device.publicKey, v.recordId, unhex(v.contentKeyHex))),
    );
    // Only the wrap key's hash differs from the committed payload: same layout, another upload.
    expect(hex(payload.subarray(37))).toBe(v.payloadHex.slice(37 * 2));
  });

  it('refuses every invalid wrapped key with its stable code', async () => {
    expect(file.invalid.length).toBeGreaterThanOrEqual(6);
    for (const entry of file.invalid) {
      expect(await errorCodeOf(() => unwrap(entry.wrappedKey, entry.unwrapWith)), entry.name).toBe(
        entry.expectedError,
      );
    }
  });
});

describe('vectors/requests.json', () => {
  interface Request {
    name: string;
    audience: string;
    method: string;
    target: string;
    bodyUtf8: string;
    headers: Record<string, string>;
  }
  const file = committed.requests as {
    valid: (Request & { signer: KeyName; bodySha256: string; stringToSignUtf8: string })[];
    invalid: (Request & {
      now: number;
      accept: KeyKind[];
      registered: KeyName[];
      seenNonce: boolean;
      expectedError: string;
    })[];
  };

  it('holds requests whose digest and string to sign are exact, and whose signature verifies', async () => {
    for (const r of file.valid) {
      expect(bodyDigest(utf8(r.bodyUtf8))).toBe(r.bodySha256);
      expect(
        requestSigningString({
          audience: r.audience,
          method: r.method,
          target: r.target,
          bodySha256: r.bodySha256,
          timestamp: r.headers['CB-Timestamp']!,
          nonce: r.headers['CB-Nonce']!,
          keyId: r.headers['CB-Key-Id']!,
        }),
      ).toBe(r.stringToSignUtf8);
      expect(r.stringToSignUtf8.split('\n')).toHaveLength(8);
      expect(text(verify(unb64(r.headers['CB-Signature']!), pair(r.signer).publicKey))).toBe(
        r.stringToSignUtf8,
      );
      const kind = r.headers['CB-Key-Id']!.split(':')[0] as KeyKind;
      const now = Number(r.headers['CB-Timestamp']);
      await verifyVectorRequest(keys, { ...r, now, accept: [kind], registered: [r.signer] });
    }
  });

  it('accepts the headers the library signs now, equal but for the signature (the other direction)', async () => {
    for (const r of file.valid) {
      const headers = signRequest({
        audience: r.audience,
        method: r.method,
        target: r.target,
        body: utf8(r.bodyUtf8),
        keyId: r.headers['CB-Key-Id']!,
        privateKey: pair(r.signer).privateKey,
        now: new Date(Number(r.headers['CB-Timestamp']) * 1000),
        nonce: r.headers['CB-Nonce']!,
      });
      expect({ ...headers, 'CB-Signature': '' }).toEqual({ ...r.headers, 'CB-Signature': '' });
      const kind = r.headers['CB-Key-Id']!.split(':')[0] as KeyKind;
      await verifyVectorRequest(keys, {
        ...r,
        headers,
        now: Number(r.headers['CB-Timestamp']),
        accept: [kind],
        registered: [r.signer],
      });
    }
  });

  it('refuses every invalid request with its stable code', async () => {
    expect(file.invalid.length).toBeGreaterThanOrEqual(12);
    for (const entry of file.invalid) {
      expect(await errorCodeOf(() => verifyVectorRequest(keys, entry)), entry.name).toBe(entry.expectedError);
    }
  });
});

describe('vectors/qr.json', () => {
  interface Fields {
    apiBase: string;
    hospitalId: string;
    invitationId: string;
    token: string;
    bindingSecretHex: string;
    hospitalPublicKey: string;
    witnessKeyHex: string;
  }
  const file = committed.qr as {
    valid: { name: string; fields: Fields; payloadHex: string; text: string; textLength: number }[];
    invalid: { name: string; text: string; expectedError: string }[];
    apiBases: { input: string; canonical: string | null; acceptedInQr: boolean }[];
  };

  it('holds QR texts the library encodes exactly and decodes back to their fields', () => {
    for (const { fields, payloadHex, text: qr, textLength } of file.valid) {
      const encoded = encodeInvitationQr({
        apiBase: fields.apiBase,
        hospitalId: fields.hospitalId,
        invitationId: fields.invitationId,
        token: fields.token,
        bindingSecret: unhex(fields.bindingSecretHex),
        hospitalPublicKey: importPublicKey(fields.hospitalPublicKey),
        witnessKey: unhex(fields.witnessKeyHex),
      });
      expect(encoded).toBe(qr);
      expect(qr).toHaveLength(textLength);
      expect(hex(unb64(qr.slice(4)))).toBe(payloadHex);
      const decoded = decodeInvitationQr(qr);
      expect({
        apiBase: decoded.apiBase,
        hospitalId: decoded.hospitalId,
        invitationId: decoded.invitationId,
        token: decoded.token,
        bindingSecretHex: hex(decoded.bindingSecret),
        hospitalPublicKey: decoded.hospitalPublicKey.toBase64Url(),
        witnessKeyHex: hex(decoded.witnessKey),
      }).toEqual(fields);
    }
  });

  it('refuses every invalid QR text with its stable code', async () => {
    expect(file.invalid.length).toBeGreaterThanOrEqual(12);
    for (const entry of file.invalid) {
      expect(await errorCodeOf(() => decodeInvitationQr(entry.text)), entry.name).toBe(entry.expectedError);
    }
  });

  it('says which apiBase a QR code may carry, as the canonicaliser decides', () => {
    for (const { input, canonical, acceptedInQr } of file.apiBases) {
      expect(canonicalApiBase(input) ?? null, input).toBe(canonical);
      expect(acceptedInQr).toBe(canonical === input);
    }
    expect(file.apiBases.filter((a) => a.acceptedInQr).length).toBeGreaterThanOrEqual(3);
    expect(file.apiBases.filter((a) => !a.acceptedInQr).length).toBeGreaterThanOrEqual(8);
  });
});

describe('vectors/linking.json', () => {
  type Named<T> = T & { name: string; expectedError: string };
  const file = committed.linking as {
    qr: {
      valid: {
        name: string;
        fields: LinkQrFields;
        payloadHex: string;
        text: string;
        textLength: number;
        linkId: string;
      }[];
      invalid: { name: string; text: string; expectedError: string }[];
      unencodable: { name: string; fields: LinkQrFields; expectedError: string }[];
    };
    link: {
      linker: LinkerStateVector;
      valid: {
        name: string;
        qr: string;
        signer: KeyName;
        at: string;
        document: DeviceLink;
        proofInput: { canonicalJsonUtf8: string; sha256Hex: string };
        signed: string;
      }[];
      invalid: Named<LinkCheck>[];
    };
    unwrap: {
      link: string;
      wrapKey: KeyName;
      device: KeyName;
      records: { recordId: string; contentKeyHex: string; payloadHex: string }[];
      invalid: Named<UnwrapCheck>[];
    };
    linkedCertificate: {
      valid: LinkedDeviceCheck & { name: string; document: LinkedDeviceCertificate };
      invalid: Named<LinkedDeviceCheck>[];
    };
  };
  const qrNamed = (name: string) => file.qr.valid.find((q) => q.name === name)!;
  const linkNamed = (name: string) => file.link.valid.find((l) => l.name === name)!;
  const signedLinkOf = (name: string) => linkNamed(name).signed;
  const hmacBytes = (key: Uint8Array, ...parts: Uint8Array[]) => {
    const mac = createHmac('sha256', key);
    for (const part of parts) mac.update(part);
    return new Uint8Array(mac.digest());
  };
  const b64 = (bytes: Uint8Array) => Buffer.from(bytes).toString('base64url');

  it('holds link QR texts laid out as §17.1 says, that the library encodes exactly and decodes back', () => {
    for (const { fields, payloadHex, text: qr, textLength, linkId } of file.qr.valid) {
      expect(encodeLinkQr(linkQrOf(fields))).toBe(qr);
      expect(qr).toHaveLength(textLength);
      expect(qr.startsWith('CBL1:')).toBe(true);
      const ascii = (value: string) => [...value].map((c) => c.charCodeAt(0));
      const layout = new Uint8Array([
        fields.apiBase.length,
        ...ascii(fields.apiBase),
        fields.hospitalId.length,
        ...ascii(fields.hospitalId),
        ...unb64(fields.devicePublicKey),
        ...unhex(fields.secretHex),
        { ios: 0, android: 1, other: 2 }[fields.platform],
      ]);
      expect(hex(unb64(qr.slice(5)))).toBe(hex(layout));
      expect(payloadHex).toBe(hex(layout));
      const decoded = decodeLinkQr(qr);
      expect({
        apiBase: decoded.apiBase,
        hospitalId: decoded.hospitalId,
        devicePublicKey: decoded.devicePublicKey.toBase64Url(),
        secretHex: hex(decoded.secret),
        platform: decoded.platform,
      }).toEqual(fields);
      expect(linkId).toBe(b64(sha(new Uint8Array([...utf8('cb/link-id/v1'), ...unhex(fields.secretHex)]))));
      expect(linkIdOf(unhex(fields.secretHex))).toBe(linkId);
    }
  });

  it('refuses every invalid link QR text, and every field set the encoder must not encode, with its code', async () => {
    expect(file.qr.invalid.length).toBeGreaterThanOrEqual(12);
    for (const entry of file.qr.invalid) {
      expect(await errorCodeOf(() => decodeLinkQr(entry.text)), entry.name).toBe(entry.expectedError);
    }
    for (const entry of file.qr.unencodable) {
      expect(await errorCodeOf(() => encodeLinkQr(linkQrOf(entry.fields))), entry.name).toBe(
        entry.expectedError,
      );
    }
  });

  it('holds links signed over their canonical JSON, whose proof is the HMAC of §17.1 under the QR secret', () => {
    const deviceCertificate = (
      committed.signatures as { valid: { name: string; signed: string }[] }
    ).valid.find((entry) => entry.name === 'device certificate')!.signed;
    expect(file.link.linker.linkedByCertificate).toBe(deviceCertificate);
    for (const v of file.link.valid) {
      const qr = qrNamed(v.qr);
      const { linkProof, ...unproven } = v.document;
      expect(v.proofInput.canonicalJsonUtf8).toBe(canonicalJson(unproven));
      expect(v.proofInput.sha256Hex).toBe(hex(sha(utf8(v.proofInput.canonicalJsonUtf8))));
      const secret = unhex(qr.fields.secretHex);
      expect(linkProof).toBe(b64(hmacBytes(secret, utf8('cb/link-proof/v1'), unhex(v.proofInput.sha256Hex))));
      expect(v.document.linkId).toBe(qr.linkId);
      expect(v.document.linkedByCertificate).toBe(deviceCertificate);
      expect(v.document.devicePublicKey).toBe(qr.fields.devicePublicKey);
      expect(text(verify(unb64(v.signed), pair(v.signer).publicKey))).toBe(canonicalJson(v.document));
      // Both parties of §17.4 accept it.
      const byPhone = checkLink({ checkedBy: 'newPhone', signed: v.signed, qr: qr.text });
      expect(canonicalJson(byPhone), v.name).toBe(canonicalJson(v.document));
      const byPairing = checkLink({
        checkedBy: 'pairingFunction',
        signed: v.signed,
        linker: file.link.linker,
        at: v.at,
      });
      expect(canonicalJson(byPairing), v.name).toBe(canonicalJson(v.document));
    }
  });

  it("accepts the link the library's buildDeviceLink makes from the vector's QR (the other direction)", () => {
    const v = linkNamed(file.unwrap.link);
    const qr = linkQrOf(qrNamed(v.qr).fields);
    const { signed, document } = buildDeviceLink({
      qr,
      linker: {
        deviceId: pair('device').publicKey.fingerprint,
        keys: pair('device'),
        certificate: file.link.linker.linkedByCertificate,
        hospitalId: v.document.hospitalId,
        patientRef: v.document.patientRef,
        hospitalPublicKey: importPublicKey(v.document.hospitalPublicKey),
        ...(v.document.witnessKey ? { witnessKey: v.document.witnessKey } : {}),
      },
      records: file.unwrap.records.map((r) => ({
        recordId: r.recordId,
        contentKey: contentKeyFromBytes(unhex(r.contentKeyHex)),
      })),
      now: new Date(v.at),
    });
    // Only the fresh wrap key, its wraps and so the proof differ from the committed link.
    const { wrapKey: _w, keys: _k, linkProof, ...same } = document;
    const { wrapKey: _cw, keys: _ck, linkProof: _cp, ...committedSame } = v.document;
    expect(same).toEqual(committedSame);
    const { linkProof: _p, ...unproven } = document;
    expect(linkProof).toBe(
      b64(hmacBytes(qr.secret, utf8('cb/link-proof/v1'), sha(utf8(canonicalJson(unproven))))),
    );
    const accepted = acceptDeviceLink(signed, qr);
    for (const r of file.unwrap.records) {
      const key = contentKeyFromLink(accepted, r.recordId, pair(file.unwrap.device));
      expect(hex(contentKeyBytes(key))).toBe(r.contentKeyHex);
    }
  });

  it('refuses every tampered link with its code, by the new phone and by the pairing function', async () => {
    expect(file.link.invalid.filter((e) => e.checkedBy === 'newPhone').length).toBeGreaterThanOrEqual(12);
    expect(file.link.invalid.filter((e) => e.checkedBy === 'pairingFunction').length).toBeGreaterThanOrEqual(
      6,
    );
    for (const entry of file.link.invalid) {
      expect(await errorCodeOf(() => checkLink(entry)), entry.name).toBe(entry.expectedError);
    }
  });

  it('holds re-wrapped keys around the §2.4 payload under the link wrap key, each opening only as its record', async () => {
    const v = linkNamed(file.unwrap.link);
    const link = readDeviceLinkUnverified(unb64(v.signed));
    const device = pair(file.unwrap.device);
    const wrapKey = pair(file.unwrap.wrapKey).publicKey;
    expect(link.wrapKey).toBe(wrapKey.toBase64Url());
    expect(link.keys.map((k) => k.recordId)).toEqual(file.unwrap.records.map((r) => r.recordId));
    for (const [i, r] of file.unwrap.records.entries()) {
      const wrapped = unb64(link.keys[i]!.wrappedKey);
      expect(hex(secureMessageDecrypt(device.privateKey, wrapKey, wrapped))).toBe(r.payloadHex);
      expect(r.payloadHex).toBe(
        hex(keyWrapPayload(wrapKey, device.publicKey, r.recordId, unhex(r.contentKeyHex))),
      );
      const key = unwrapFromLink(keys, link, {
        wrapKey: link.wrapKey,
        keys: link.keys,
        recordId: r.recordId,
        device: file.unwrap.device,
      });
      expect(hex(key)).toBe(r.contentKeyHex);
    }
    expect(file.unwrap.invalid.length).toBeGreaterThanOrEqual(6);
    for (const entry of file.unwrap.invalid) {
      expect(await errorCodeOf(() => unwrapFromLink(keys, link, entry)), entry.name).toBe(
        entry.expectedError,
      );
    }
  });

  it('holds a linked device certificate the library issues for the link and accepts beside it', async () => {
    const v = file.linkedCertificate.valid;
    const signedLink = unb64(signedLinkOf(v.link));
    expect(text(verify(unb64(v.signed), pair(v.verifyWith).publicKey))).toBe(canonicalJson(v.document));
    expect(v.document.linkSha256).toBe(b64(sha(signedLink)));
    const link = readDeviceLinkUnverified(signedLink);
    const issued = linkedCertificateFor(link, signedLink, {
      issuedAt: new Date(v.document.issuedAt),
      expiresAt: new Date(v.document.expiresAt),
    });
    expect(canonicalJson(issued)).toBe(canonicalJson(v.document));
    const checked = checkLinkedDevice(keys, v, signedLinkOf);
    expect(canonicalJson(checked.certificate)).toBe(canonicalJson(v.document));
    // The other direction: what the library signs now is accepted the same way.
    const fresh = b64(signLinkedDeviceCertificate(issued, pair('pairing').privateKey));
    expect(canonicalJson(checkLinkedDevice(keys, { ...v, signed: fresh }, signedLinkOf).certificate)).toBe(
      canonicalJson(v.document),
    );
    expect(file.linkedCertificate.invalid.length).toBeGreaterThanOrEqual(8);
    for (const entry of file.linkedCertificate.invalid) {
      expect(await errorCodeOf(() => checkLinkedDevice(keys, entry, signedLinkOf)), entry.name).toBe(
        entry.expectedError,
      );
    }
  });
});

describe('docs/NATIVE.md', () => {
  const guide = readFileSync(new URL('../../docs/NATIVE.md', import.meta.url), 'utf8');

  it('names every vector file, and only files that exist', () => {
    for (const name of VECTOR_FILES) expect(guide).toContain(`\`${name}.json\``);
    const named = [...guide.matchAll(/`(?:vectors\/)?([a-z-]+)\.json`/g)].map((m) => m[1]);
    for (const name of named) expect(VECTOR_FILES as readonly string[], name).toContain(name);
  });

  it('quotes only vector entries that exist (by name)', () => {
    const names: string[] = [];
    const walk = (value: unknown): void => {
      if (Array.isArray(value)) value.forEach(walk);
      else if (value !== null && typeof value === 'object') {
        const name = (value as { name?: unknown }).name;
        if (typeof name === 'string') names.push(name);
        Object.values(value).forEach(walk);
      }
    };
    walk(committed);
    // Quoted phrases outside code spans are entry names (or parts of them) in the vectors.
    const quoted = [...guide.replace(/`[^`]*`/g, '').matchAll(/"([^"]+)"/g)].map((m) =>
      m[1]!.replace(/\s+/g, ' '),
    );
    expect(quoted.length).toBeGreaterThan(8);
    for (const phrase of quoted)
      expect(
        names.some((name) => name.includes(phrase)),
        phrase,
      ).toBe(true);
  });
});
