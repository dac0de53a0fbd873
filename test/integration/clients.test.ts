// The product through its command-line clients, as child processes on the whole local stack:
// the operator registers a hospital, the connector invites a patient (QR PNG), the device pairs
// from the PNG, the connector sends a FHIR DocumentReference and its PDF, the device is pinged,
// syncs, decrypts and acknowledges, byte for byte. Then the attacks the connector itself must
// stop (invariant 3): a device injected straight into Firestore with a forged certificate, and
// one certified with the pairing function's own key but without a binding proof from the
// hospital's master secret, are never given a wrapped key. And the drop folder settles files.
import { randomBytes } from 'node:crypto';
import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Firestore } from '@google-cloud/firestore';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Stack } from '../../emulator/stack.ts';
import { RECORDS_COLLECTION } from '../../shared/adapters/firestore-records.ts';
import { createFirestore } from '../../shared/adapters/google-clients.ts';
import { generateKeyPair, type KeyPair } from '../../shared/core/crypto/index.ts';
import {
  derivePatientRef,
  readDocumentUnverified,
  uploadManifestSchema,
  UPLOAD_MANIFEST_TYPE,
} from '../../shared/core/protocol/index.ts';
import { openFileCustody, type FileKeys } from '../../clients/connector/custody/file.ts';
import { injectDevice, unboundCertificate } from '../helpers/injection.ts';
import { stackFunctionKeys } from '../helpers/stack-services.ts';
import type { BinName, BinOutcome } from '../helpers/bins.ts';
import { onboardConnector, type OnboardedConnector } from '../helpers/onboarded-connector.ts';
import { collectBytes, stackBlobStore } from '../helpers/delivery-fixture.ts';
import { runSequencer, storedAuditEvents } from '../helpers/audit-logs.ts';

const HOSPITAL = 'st-clients-zh';
const PATIENT = 'CANARY-991-patient';

// Each step starts a bin as its own process (about a second of start-up apiece on this machine).
describe('clients end to end', { timeout: 120_000 }, () => {
  let onboarded: OnboardedConnector;
  let dir: string;
  let stack: Stack;
  let firestore: Firestore;
  const connectorHome = () => onboarded.home;
  const deviceHome = () => join(dir, 'device');

  const bin = (name: BinName, args: string[]): Promise<BinOutcome> => onboarded.bin(name, args);

  const connector = (...args: string[]) => onboarded.connector(...args);
  const device = (...args: string[]) => bin('cb-device', [...args, '--home', deviceHome()]);

  beforeAll(async () => {
    onboarded = await onboardConnector({ hospitalId: HOSPITAL });
    ({ dir, stack } = onboarded);
    firestore = createFirestore(stack.env.GCLOUD_PROJECT!, stack.env);
  });

  afterAll(async () => {
    await firestore?.terminate();
    await onboarded?.close();
  });

  it('pairs from the PNG, delivers a FHIR DocumentReference and its PDF, and the device decrypts both', async () => {
    const qr = join(dir, 'invite.png');
    const invited = await connector('invite', PATIENT, '--out', qr);
    expect(invited.code).toBe(0);
    expect(invited.stdout).toMatch(/Invitation [A-Za-z0-9_-]{22}/);
    expect(invited.stdout).not.toContain('CB1:'); // the QR text (token, binding secret) is never printed as text

    const paired = await device('pair', qr, '--platform', 'android');
    expect(paired.code).toBe(0);
    expect(paired.stdout).toContain(`Paired with ${HOSPITAL}`);
    // The same QR code cannot pair a second device.
    const again = await bin('cb-device', ['pair', qr, '--home', join(dir, 'other-device')]);
    expect(again).toMatchObject({ code: 3 });
    expect(again.stderr).toContain('INVITATION_USED');

    const documentReference = join(dir, 'documentreference.json');
    const pdf = join(dir, 'discharge-letter.pdf');
    await writeFile(
      documentReference,
      JSON.stringify({
        resourceType: 'DocumentReference',
        id: 'dr-1',
        status: 'current',
        description: PATIENT,
      }),
    );
    await writeFile(
      pdf,
      Buffer.concat([Buffer.from('%PDF-1.4\n'), randomBytes(200_000), Buffer.from('\n%%EOF\n')]),
    );
    const sentFhir = await connector(
      'send',
      documentReference,
      '--patient',
      PATIENT,
      '--class',
      'fhir',
      '--wait',
    );
    const sentPdf = await connector(
      'send',
      pdf,
      '--patient',
      PATIENT,
      '--title',
      'Discharge letter',
      '--wait',
    );
    for (const sent of [sentFhir, sentPdf]) {
      expect(sent.code).toBe(0);
      expect(sent.stdout).toMatch(/accepted/);
    }

    const synced = await device('sync', '--wait', '20', '--out', join(dir, 'received'));
    expect(synced.code).toBe(0);
    expect(synced.stdout).toContain('Push received (records)');
    expect(synced.stdout).toContain('2 new record(s)');
    for (const file of [documentReference, pdf]) {
      const name = file.split('/').at(-1)!;
      expect((await readFile(join(dir, 'received', name))).equals(await readFile(file))).toBe(true);
    }
    const about = JSON.parse(await readFile(join(dir, 'received', 'documentreference.json.json'), 'utf8'));
    expect(about.mediaType).toBe('application/fhir+json');

    // Acknowledged on the server; a second sync fetches nothing.
    const records = await firestore.collection(RECORDS_COLLECTION).where('hospitalId', '==', HOSPITAL).get();
    expect(records.docs.every((doc) => Object.values(doc.get('acks') as object).length === 1)).toBe(true);
    const second = await device('sync', '--out', join(dir, 'received'));
    expect(second.stdout).toContain('0 new record(s)');
    const receipts = await connector('receipts');
    expect(receipts.code).toBe(0);
    expect(receipts.stdout.match(/accepted/g)).toHaveLength(2);
  });

  it('never wraps a key for a device injected into Firestore, however it is certified', async () => {
    const onboarding = JSON.parse(await readFile(join(dir, 'onboarding.json'), 'utf8')) as {
      hospitalId: string;
    };
    const custody = openFileCustody(
      JSON.parse(await readFile(join(connectorHome(), 'hospital-keys.json'), 'utf8')) as FileKeys,
    );
    const patientRef = derivePatientRef(custody.pseudonymKey, PATIENT);
    custody.close();
    // An invitation the connector issued that nobody used: the QR (and its binding secret) never
    // left the desk.
    const unused = await connector('invite', PATIENT);
    const unusedInvitation = /Invitation ([A-Za-z0-9_-]{22}),/.exec(unused.stdout)![1]!;
    // Someone with the pairing function's own key (e.g. a leaked service account) can certify,
    // but cannot compute a binding proof without the hospital's binding key, nor claim an
    // invitation the connector never issued.
    // The pairing function's own key, as its (leaked) service account unwraps it.
    const pairingKey = await stackFunctionKeys(stack, firestore, 'pairing').keyPair();
    const target = { hospitalId: onboarding.hospitalId, patientRef };
    const inject = (signer: KeyPair, label: string, invitationId?: string) =>
      injectDevice(
        firestore,
        target,
        (attacker, claimed) => unboundCertificate(signer.privateKey, attacker, target, claimed),
        `injected-${label}`,
        invitationId,
      );
    const forged = await inject(generateKeyPair(), 'forged');
    const unissued = await inject(pairingKey, 'unissued');
    const unbound = await inject(pairingKey, 'unbound', unusedInvitation);

    const listed = await connector('devices', '--patient', PATIENT);
    expect(listed.code).toBe(3);
    expect(listed.stdout).toMatch(/ verified /);
    expect(listed.stdout).toContain(`${forged}  REFUSED  CERTIFICATE_INVALID`);
    expect(listed.stdout).toContain(`${unissued}  REFUSED  INVITATION_NOT_ISSUED`);
    expect(listed.stdout).toContain(`${unbound}  REFUSED  BINDING_PROOF_INVALID`);

    const letter = join(dir, 'after-injection.txt');
    await writeFile(letter, 'results');
    const sent = await connector('send', letter, '--patient', PATIENT, '--wait');
    expect(sent.code).toBe(0);
    expect(sent.stderr).toContain(`skipped device ${forged}: CERTIFICATE_INVALID`);
    expect(sent.stderr).toContain(`skipped device ${unissued}: INVITATION_NOT_ISSUED`);
    expect(sent.stderr).toContain(`skipped device ${unbound}: BINDING_PROOF_INVALID`);
    expect(sent.stdout).toContain('(for 1 device(s))');
    // The stored container's manifest names only the genuine device.
    const uploadId = /^([A-Za-z0-9_-]{22}) {2}sent/m.exec(sent.stdout)![1]!;
    const record = (await firestore.collection(RECORDS_COLLECTION).where('uploadId', '==', uploadId).get())
      .docs[0]!;
    expect(record.get('recipients')).not.toContain(forged);
    expect(record.get('recipients')).not.toContain(unbound);
    expect(record.get('recipients')).not.toContain(unissued);
    const container = await collectBytes(
      stackBlobStore(stack).read(stack.env.RECORDS_BUCKET!, record.get('objectName') as string),
    );
    const manifestLength = new DataView(container.buffer, container.byteOffset).getUint32(5, false);
    const manifest = readDocumentUnverified(
      container.subarray(9, 9 + manifestLength),
      UPLOAD_MANIFEST_TYPE,
      uploadManifestSchema,
    );
    expect(manifest.recipients.map((r) => r.deviceId)).toHaveLength(1);
  });

  it('resends everything a patient was sent to the devices they have now', async () => {
    const before = (await firestore.collection(RECORDS_COLLECTION).where('hospitalId', '==', HOSPITAL).get())
      .size;
    const resent = await connector('resend', '--patient', PATIENT, '--wait');
    expect(resent.code).toBe(0);
    const uploads = resent.stdout.match(/^[A-Za-z0-9_-]{22} {2}accepted$/gm) ?? [];
    expect(uploads.length).toBeGreaterThanOrEqual(3); // the FHIR document, the PDF and the letter
    const after = (await firestore.collection(RECORDS_COLLECTION).where('hospitalId', '==', HOSPITAL).get())
      .size;
    expect(after - before).toBe(uploads.length); // new uploads, new records
  });

  it('the drop folder moves accepted files to done/ and refused ones to failed/ with the code', async () => {
    const drop = join(dir, 'drop');
    await mkdir(join(drop, 'inbox', PATIENT), { recursive: true });
    await mkdir(join(drop, 'inbox', 'never-invited'), { recursive: true });
    await writeFile(join(drop, 'inbox', PATIENT, 'lab.txt'), 'lab results');
    await writeFile(join(drop, 'inbox', 'never-invited', 'orphan.txt'), 'nobody');
    const watched = await connector('watch', drop, '--once');
    expect(watched.code).toBe(3); // one file failed
    expect(await readdir(join(drop, 'done', PATIENT))).toEqual(['lab.txt']);
    expect((await readdir(join(drop, 'failed', 'never-invited'))).sort()).toEqual([
      'orphan.txt',
      'orphan.txt.reason.txt',
    ]);
    expect(await readFile(join(drop, 'failed', 'never-invited', 'orphan.txt.reason.txt'), 'utf8')).toBe(
      'UNKNOWN_PATIENT\n',
    );
    expect(await readdir(join(drop, 'inbox', PATIENT))).toEqual([]);
    // What it reports is for the hospital's monitoring: one JSON event per line, with the ids
    // recall needs and the refusal's code, and never a patient number or a file name.
    const events = watched.stdout
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as { event: string; recordId?: string; code?: string });
    expect(events.map((e) => e.event).sort()).toEqual(['delivered', 'failed', 'sent']);
    expect(events.find((e) => e.event === 'delivered')?.recordId).toMatch(/^[A-Za-z0-9_-]{22}$/);
    expect(events.find((e) => e.event === 'failed')?.code).toBe('UNKNOWN_PATIENT');
    for (const secret of [PATIENT, 'never-invited', 'lab.txt', 'orphan.txt']) {
      expect(watched.stdout).not.toContain(secret);
    }

    // A file gone from sending/ while its receipt is awaited (a home restored from a backup older
    // than the folders): the receipt still settles the journal, and the watch goes on.
    await writeFile(join(drop, 'inbox', PATIENT, 'gone.txt'), 'gone');
    const started = await connector('watch', drop, '--once', '--timeout', '0');
    expect(started.code).toBe(1); // sent, its receipt not awaited
    await rm(join(drop, 'sending', PATIENT, 'gone.txt'));
    const settled = await connector('watch', drop, '--once', '--timeout', '60');
    expect(settled.code, settled.stderr).toBe(0);
    expect(JSON.parse(settled.stdout.trim().split('\n').at(-1)!)).toMatchObject({ event: 'missing' });
    const journal = (await readFile(join(connectorHome(), 'journal.jsonl'), 'utf8')).trim().split('\n');
    expect(JSON.parse(journal.at(-1)!)).toMatchObject({ status: 'accepted' });
  });

  it('changes a retention policy within bounds, audited with the operator, and refuses the rest', async () => {
    const admin = (...args: string[]) => bin('cb-admin', ['retention', '--id', HOSPITAL, ...args]);
    const shown = await admin();
    expect(shown.code).toBe(0);
    expect(shown.stdout).toMatch(/recordDays\s+90 {3}bounds 1\.\.400/);
    expect(await admin('--set', 'recordDays=30')).toMatchObject({ code: 2 }); // no --operator
    const tooLow = await admin('--set', 'auditEntryDays=30', '--operator', 'ops-alice');
    expect(tooLow.code).toBe(2);
    expect(tooLow.stderr).toContain('auditEntryDays must be 1825..3650');
    const changed = await admin(
      '--set',
      'recordDays=30',
      '--set',
      'acknowledgedRecordDays=7',
      '--operator',
      'ops-alice',
    );
    expect(changed.code).toBe(0);
    expect(changed.stdout).toMatch(/recordDays\s+30 .*\(was 90\)/);
    expect((await admin()).stdout).toMatch(/acknowledgedRecordDays\s+7 /);
    const changes = await storedAuditEvents(firestore, { action: 'policy.changed' });
    expect(changes).toHaveLength(1);
    expect(changes[0]).toMatchObject({ actor: { kind: 'operator', id: 'ops-alice' }, hospitalId: HOSPITAL });
  });

  it('recall, the access log, a retention run, the audit check and erasure, all through the bins', async () => {
    const sent = await firestore.collection(RECORDS_COLLECTION).where('hospitalId', '==', HOSPITAL).get();
    const recalled = sent.docs[0]!.id;
    // Ids are base64url and may start with '-': after '--' they are never taken for an option.
    const recallArgs = ['recall', '--home', connectorHome(), '--', recalled];
    const recall = await bin('cb-connector', recallArgs);
    expect(recall.code, recall.stderr).toBe(0);
    expect(recall.stdout).toContain(`Recalled ${recalled}`);
    expect((await bin('cb-connector', recallArgs)).code).toBe(0); // the same receipt again
    // The journal says so: `receipts` (and the console) show the record as recalled.
    const listed = await bin('cb-connector', ['receipts', '--json', '--home', connectorHome()]);
    const uploads = (JSON.parse(listed.stdout) as { uploads: { recordId: string; status: string }[] })
      .uploads;
    expect(uploads.find((upload) => upload.recordId === recalled)?.status).toBe('recalled');

    const log = await device('access-log', '--limit', '100');
    expect(log.code).toBe(0);
    expect(log.stdout).toMatch(
      new RegExp(`record\\.recalled\\s+record ${recalled}\\s+by hospital ${HOSPITAL}`),
    );
    expect(log.stdout).toMatch(/record\.downloaded .* by this device/);

    const retention = await bin('cb-admin', ['run-retention', '--job', 'clients-test']);
    expect(retention.code).toBe(0);
    expect(retention.stdout).toContain('retention-clients-test: complete');
    // The audit log of the hospital, sequenced, checked in full: every tile and every entry.
    await runSequencer(stack);
    const verified = await bin('cb-admin', ['audit-verify', '--log', HOSPITAL]);
    expect(verified.code).toBe(0);
    expect(verified.stdout).toMatch(new RegExp(`^${HOSPITAL}  ok  size \\d+, \\d+ entr(y|ies) checked`, 'm'));

    expect((await device('erase')).code).toBe(2); // needs --yes
    const erased = await device('erase', '--yes');
    expect(erased.code).toBe(0);
    expect(erased.stdout).toMatch(
      new RegExp(`Erased at ${HOSPITAL}: \\d+ record\\(s\\), \\d+ device\\(s\\)`),
    );
    expect(erased.stdout).toContain('verified with the records function');
    expect((await device('devices')).code).toBe(2); // the enrolment is forgotten
    const left = await firestore.collection(RECORDS_COLLECTION).where('hospitalId', '==', HOSPITAL).get();
    expect(
      left.docs.filter(
        (doc) =>
          (doc.get('recipients') as string[]).length > 0 &&
          doc.get('patientRef') === sent.docs[0]!.get('patientRef'),
      ),
    ).toEqual([]);
  });

  it('explains wrong usage with exit code 2 and --help with 0', async () => {
    expect((await bin('cb-admin', ['--help'])).code).toBe(0);
    const unknown = await connector('frobnicate');
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain('unknown command');
    const notPaired = await bin('cb-device', ['sync', '--home', join(dir, 'nobody')]);
    expect(notPaired.code).toBe(2);
    expect(notPaired.stderr).toContain('not paired yet');
  });
});
