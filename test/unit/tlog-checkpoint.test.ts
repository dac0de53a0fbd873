// Signed notes, checkpoints and cosignatures: interop vectors from other implementations (the Go
// sumdb/note example, a real CT log checkpoint with a witness cosignature), strict parsing, and
// round-trips.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  cosignCheckpoint,
  formatCheckpoint,
  openCheckpoint,
  parseCheckpoint,
  signCheckpoint,
} from '../../shared/core/tlog/checkpoint.ts';
import { cosignatureSigner, cosignatureVerifier } from '../../shared/core/tlog/cosignature.ts';
import { ed25519PublicKey, ed25519Signer, ed25519Verifier } from '../../shared/core/tlog/ed25519.ts';
import { parseVerifierKey } from '../../shared/core/tlog/keys.ts';
import { formatNote, parseNote, signNote, verifyNote } from '../../shared/core/tlog/note.ts';

const hex = (bytes: Uint8Array): string => Buffer.from(bytes).toString('hex');
const seed = (byte: number): Uint8Array => new Uint8Array(32).fill(byte);

const GO_TEXT =
  "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n";
const GO_NOTE = `${GO_TEXT}\n— PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n`;
const GO_VKEY = 'PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW';
const GO_SKEY_SEED = 'AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz';

// A checkpoint of the arche2025h1 staging CT log with witness cosignatures, as published in
// a third-party test suite: the log's Ed25519 line (ba2f06c0), an RFC 6962 line of another type
// that must be ignored, and remora.n621.de's cosignature/v1 (type 0x04).
const ARCHE = `arche2025h1.staging.ct.transparency.dev
1432088532
U7WM79jrzyhGZ5/GUBTpM7NzwdyfFx61t3RovgcC4Ro=

— arche2025h1.staging.ct.transparency.dev zTM8sQAAAZ5W0WdjBAMARjBEAiBjW5IQf9pvsYLfQFX6hoGREPMHbdQ3urbllzalApkptQIgIpwtEroeW2BXaHAI4kJXFbon5Ch9MNL5zRNZ55lvGt0=
— arche2025h1.staging.ct.transparency.dev ui8GwCF1+kWqZrxGdhj4aX3gcw7XUlXQQabg/27lefwhUkzbC3NygNI75MdhL1bfTW9g8Ei59RA23oHP7Ry1k3ZFWwQ=
— transparency.dev/DEV:witness-little-garden 2AQqhwAAAABqEiEgzgFIqqhbUoDwjMWE6UP8nd8/KYTzwZ2rhIgcqoXHAwVkjZr4AscylP3v7sEodkRAErumC2q44vdgJY096st5BQ==
— witness1.smartit.nu/witness1 pIyCDwAAAABqEiEghIp82KWebrw7/oHQwlTAm3g2RKS4+eebl8eO0WH+/iEcxZ75W3u5hNI7TOQtmJbqmNWVuE0tgh0XwzdZsDsUAQ==
— remora.n621.de 2net5wAAAABqEiEgPlfF3V06o0Y+fHM+J5J9s27wgxxcOVSpZ/2g/KSiXCg9DEZI+aVCIobWX9sXTynk5XeU/zZ0WBxtqB0DrAWfBw==
— witness.stagemole.eu Z/euoAAAAABqEiEgw0i+7g2ENfDAWHmtRzCfKTHSDwYDJA2NmKeGi9Y8FtEyOUvVr+AJmIY/2TUFucgKi7lI7cUiOvKFYe/TmN9DAg==
`;
const ARCHE_VKEY =
  'arche2025h1.staging.ct.transparency.dev+ba2f06c0+AU0vHmlGCS/PdN8b2OaGmKprLI8HKM+dJ472xgFYh15f';
const REMORA_VKEY = 'remora.n621.de+da77ade7+BOvN63jn/bLvkieywe8R6UYAtVtNbZpXh34x7onlmtw2';

describe('Ed25519 keys and signed notes against other implementations', () => {
  it('derives the RFC 8032 test 1 public key from its seed', () => {
    const rfcSeed = new Uint8Array(
      Buffer.from('9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60', 'hex'),
    );
    expect(hex(ed25519PublicKey(rfcSeed))).toBe(
      'd75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a',
    );
  });

  it('reproduces the Go sumdb/note example byte for byte (key id, verifier key, signature)', async () => {
    const signer = ed25519Signer('PeterNeumann', Buffer.from(GO_SKEY_SEED, 'base64').subarray(1));
    expect(signer.verifierKey).toBe(GO_VKEY);
    expect(hex(signer.keyId)).toBe('c74f20a3');
    expect(formatNote(await signNote(GO_TEXT, [signer]))).toBe(GO_NOTE);
    const key = parseVerifierKey(GO_VKEY);
    const verified = verifyNote(parseNote(GO_NOTE), [ed25519Verifier(key.name, key.publicKey)]);
    expect(verified.map((v) => v.signature.name)).toEqual(['PeterNeumann']);
  });

  it('verifies a real CT checkpoint and its remora cosignature, ignoring the unknown type-0x05 line', () => {
    const log = parseVerifierKey(ARCHE_VKEY);
    const witness = parseVerifierKey(REMORA_VKEY);
    expect(witness.type).toBe(0x04);
    const remora = cosignatureVerifier(witness.name, witness.publicKey);
    const opened = openCheckpoint(ARCHE, {
      origin: 'arche2025h1.staging.ct.transparency.dev',
      verifiers: [ed25519Verifier(log.name, log.publicKey), remora],
    });
    expect(opened.checkpoint.size).toBe(1432088532);
    expect(opened.verified.map((v) => v.signature.name)).toEqual([log.name, witness.name]);
    const cosig = opened.verified[1]?.signature.signature as Uint8Array;
    expect(remora.timestampOf(cosig)).toBe(0x6a122120);
    // Another size under the same signatures must fail: the known key's line no longer verifies.
    const tampered = ARCHE.replace('1432088532', '1432088533');
    expect(() =>
      openCheckpoint(tampered, { origin: log.name, verifiers: [ed25519Verifier(log.name, log.publicKey)] }),
    ).toThrow(/does not verify/);
    expect(() => openCheckpoint(ARCHE, { origin: 'other.example/log', verifiers: [remora] })).toThrow(
      /another log/,
    );
  });

  it('rejects verifier keys whose id does not match or whose type is unsupported', () => {
    expect(() => parseVerifierKey(GO_VKEY.replace('c74f20a3', 'c74f20a4'))).toThrow(/does not match/);
    expect(() => parseVerifierKey('PeterNeumann+c74f20a3')).toThrow();
    expect(() => parseVerifierKey(`${GO_VKEY} `)).toThrow();
  });
});

describe('signed-note parsing', () => {
  const signer = ed25519Signer('example.com/log', seed(1));
  const verifier = ed25519Verifier('example.com/log', signer.publicKey);

  it('round-trips any text and signature set canonically', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.stringMatching(/^[a-z0-9 ./—é]{0,20}$/), { minLength: 1, maxLength: 5 }),
        async (lines) => {
          const text = `${lines.join('\n')}\n`;
          const note = await signNote(text, [signer, ed25519Signer('other', seed(2))]);
          const serialised = formatNote(note);
          const parsed = parseNote(serialised);
          expect(parsed.text).toBe(text);
          expect(formatNote(parsed)).toBe(serialised);
          expect(parseNote(new TextEncoder().encode(serialised))).toEqual(parsed);
          expect(verifyNote(parsed, [verifier])).toHaveLength(1);
        },
      ),
      { numRuns: 100 },
    );
  });

  it('splits text from signatures at the LAST blank line', async () => {
    const note = formatNote(await signNote('a\n\nb\n', [signer]));
    expect(parseNote(note).text).toBe('a\n\nb\n');
    expect(verifyNote(parseNote(note), [verifier])).toHaveLength(1);
  });

  it('rejects every malformed spelling', () => {
    const line = GO_NOTE.slice(GO_TEXT.length + 1, -1);
    for (const [bad, why] of [
      [GO_NOTE.replaceAll('\n', '\r\n'), 'CRLF line endings'],
      [GO_NOTE.slice(0, -1), 'no final newline'],
      [`${GO_NOTE.slice(0, -1)} \n`, 'trailing space after the signature'],
      [GO_NOTE.replace('— PeterNeumann', '—  PeterNeumann'), 'two spaces'],
      [GO_NOTE.replace('— ', '- '), 'hyphen instead of em dash'],
      [GO_NOTE.replace('PeterNeumann', 'Peter+Neumann'), 'plus in the name'],
      [GO_NOTE.replace('x08go', 'x08go='), 'non-canonical base64'],
      [`${GO_TEXT}\n— PeterNeumann AAAA\n`, 'key id but no signature'],
      [`${GO_TEXT}\n`, 'no signature lines'],
      [GO_TEXT, 'no blank line'],
      [`${GO_NOTE}\n`, 'trailing blank line'],
      [`${GO_TEXT}\n${`${line}\n`.repeat(65)}`, 'too many signatures'],
      [GO_NOTE.replace('If', 'I\tf'), 'a control character'],
    ] as const) {
      expect(() => parseNote(bad), why).toThrow(/./);
    }
    expect(() => parseNote(new Uint8Array([0xff, 0x0a, 0x0a]))).toThrow(/UTF-8/);
  });

  it('ignores unknown keys, even sharing a name or an id, but not a failing known key', async () => {
    const note = await signNote('x\n', [signer]);
    const sameNameOtherKey = ed25519Verifier('example.com/log', ed25519PublicKey(seed(3)));
    expect(() => verifyNote(note, [sameNameOtherKey])).toThrow(/no signature from a known key/);
    const sameIdOtherName = { ...verifier, name: 'example.com/other' };
    expect(() => verifyNote(note, [sameIdOtherName])).toThrow(/no signature from a known key/);
    const forged = {
      ...note,
      signatures: note.signatures.map((s) => ({ ...s, signature: new Uint8Array(64) })),
    };
    expect(() => verifyNote(forged, [verifier])).toThrow(/does not verify/);
    const twice = { ...note, signatures: [...note.signatures, ...note.signatures] };
    expect(() => verifyNote(twice, [verifier])).toThrow(/two signatures/);
  });
});

describe('checkpoints', () => {
  const root = new Uint8Array(32).fill(7);

  it('format and parse the three lines and extensions canonically', () => {
    const checkpoint = { origin: 'example.com/log', size: 20852163, rootHash: root, extensions: ['ext one'] };
    const text = formatCheckpoint(checkpoint);
    expect(text).toBe(`example.com/log\n20852163\n${Buffer.from(root).toString('base64')}\next one\n`);
    expect(parseCheckpoint(text)).toEqual(checkpoint);
    expect(parseCheckpoint('o\n0\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n').size).toBe(0);
  });

  it('reject non-canonical checkpoint text', () => {
    const good = formatCheckpoint({ origin: 'o', size: 5, rootHash: root, extensions: [] });
    const [o, s, r] = good.split('\n') as [string, string, string];
    for (const [bad, why] of [
      [`${o}\n${s}\n`, 'two lines'],
      [`${o}\n05\n${r}\n`, 'leading zero'],
      [`${o}\n+5\n${r}\n`, 'sign'],
      [`${o}\n${s} \n${r}\n`, 'trailing space on size'],
      [`${o} \n${s}\n${r}\n`, 'trailing space on origin'],
      [`${o}\n${s}\n${r} \n`, 'trailing space on root'],
      [`${o}\n${s}\n${r.slice(0, -1)}\n`, 'unpadded root'],
      [`${o}\n${s}\n${Buffer.alloc(31).toString('base64')}\n`, 'short root'],
      [`${o}\n${s}\n${r}\n\n`, 'empty extension line'],
      [`${o}\n${s}\n${r}`, 'no final newline'],
      [`${o}\n9007199254740992\n${r}\n`, 'size beyond 2^53'],
      [`\n${s}\n${r}\n`, 'empty origin'],
    ] as const) {
      expect(() => parseCheckpoint(bad), why).toThrow(/./);
    }
  });

  it('are signed by the log, cosigned by witnesses, and opened with a timestamp', async () => {
    const log = ed25519Signer('example.com/log', seed(4));
    const witness = cosignatureSigner('witness.example/w1', seed(5), () => 1_700_000_000);
    const signed = await signCheckpoint(
      { origin: 'example.com/log', size: 3, rootHash: root, extensions: [] },
      [log],
    );
    const cosigned = await cosignCheckpoint(signed, [witness]);
    expect(cosigned.startsWith(signed)).toBe(true);
    const witnessVerifier = cosignatureVerifier(witness.name, witness.publicKey);
    const opened = openCheckpoint(cosigned, {
      origin: 'example.com/log',
      verifiers: [ed25519Verifier(log.name, log.publicKey), witnessVerifier],
    });
    expect(opened.verified).toHaveLength(2);
    expect(witnessVerifier.timestampOf(opened.verified[1]?.signature.signature as Uint8Array)).toBe(
      1_700_000_000,
    );
    // A cosignature key is not an Ed25519 note key: type bytes separate their key ids.
    expect(hex(witness.keyId)).not.toBe(hex(ed25519Signer(witness.name, seed(5)).keyId));
    expect(witness.verifierKey.split('+')[2]?.startsWith('B')).toBe(true);
  });
});
