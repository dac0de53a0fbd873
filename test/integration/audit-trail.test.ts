// The audit trail's tamper evidence, end to end: events written by the real Firestore adapter,
// a checkpoint signed by the deployed retention function (run with `cb-admin run-retention`),
// and then someone with write access to the database edits, deletes, inserts, reorders, cuts
// off or consistently rewrites events, or forges a checkpoint. `cb-admin audit-verify` must
// name each kind and where it happened, with exit code 3, and be clean again once restored.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { DocumentData, Firestore } from '@google-cloud/firestore';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startStack, type Stack } from '../../emulator/stack.ts';
import {
  AUDIT_COLLECTIONS,
  auditEventId,
  createFirestoreAuditLog,
} from '../../shared/adapters/firestore-audit.ts';
import { createFirestore } from '../../shared/adapters/google-clients.ts';
import { chainEvents, signCheckpoint, type AuditEvent, type AuditFields } from '../../shared/audit/chain.ts';
import { generateKeyPair } from '../../shared/core/crypto/index.ts';
import { binRunner, writeStackEnvFile, type BinOutcome } from '../helpers/bins.ts';
import { functionPublicKey } from '../helpers/delivery-fixture.ts';

const CHAIN = 'audit-tamper-h';

function fields(i: number): AuditFields {
  return {
    at: `2031-05-01T10:00:0${i}Z`,
    actor: { kind: 'device', id: `device-${i}` },
    action: i % 2 === 0 ? 'record.downloaded' : 'record.acknowledged',
    hospitalId: CHAIN,
  };
}

describe('audit trail tampering, caught by cb-admin audit-verify', () => {
  let dir: string;
  let stack: Stack;
  let firestore: Firestore;
  let verify: () => Promise<BinOutcome>;
  let snapshot: { id: string; data: DocumentData }[];
  let head: DocumentData;

  const events = () => firestore.collection(AUDIT_COLLECTIONS.events);
  const eventDoc = (seq: number) => events().doc(auditEventId(CHAIN, seq));

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'cb-audit-'));
    stack = await startStack({ dataDir: join(dir, 'stack'), portBase: 0 });
    firestore = createFirestore(stack.env.GCLOUD_PROJECT!, stack.env);
    const run = binRunner(await writeStackEnvFile(stack, dir));
    await createFirestoreAuditLog(firestore).append([1, 2, 3, 4, 5, 6].map((i) => ({ fields: fields(i) })));
    const retention = await run('cb-admin', ['run-retention', '--job', 'seal']);
    expect(retention.code).toBe(0);
    const key = (await functionPublicKey(firestore, 'retention')).toBase64Url();
    verify = () => run('cb-admin', ['audit-verify', '--chain', CHAIN, '--retention-key', key]);
    const { docs } = await events().where('chain', '==', CHAIN).get();
    snapshot = docs.map((doc) => ({ id: doc.id, data: doc.data() }));
    head = (await firestore.collection(AUDIT_COLLECTIONS.heads).doc(CHAIN).get()).data()!;
  });

  afterAll(async () => {
    await firestore?.terminate();
    await stack?.close();
    await rm(dir, { recursive: true, force: true });
  });

  async function restore(): Promise<void> {
    const { docs } = await events().where('chain', '==', CHAIN).get();
    await Promise.all(docs.map((doc) => doc.ref.delete()));
    await Promise.all(snapshot.map(({ id, data }) => events().doc(id).set(data)));
    await firestore.collection(AUDIT_COLLECTIONS.heads).doc(CHAIN).set(head);
    const checkpoints = await firestore
      .collection(AUDIT_COLLECTIONS.checkpoints)
      .where('chain', '==', CHAIN)
      .get();
    await Promise.all(
      checkpoints.docs.filter((doc) => doc.id.endsWith('forged')).map((doc) => doc.ref.delete()),
    );
  }

  async function expectCaught(line: string): Promise<void> {
    const outcome = await verify();
    expect(outcome.stdout).toContain(`${CHAIN}  ${line}`);
    expect(outcome.code).toBe(3);
    await restore();
    expect((await verify()).code).toBe(0);
  }

  it('an untouched chain verifies against the signed checkpoint', async () => {
    const outcome = await verify();
    expect(outcome.code).toBe(0);
    expect(outcome.stdout).toContain(`${CHAIN}  ok  6 event(s), 1 checkpoint(s)`);
  });

  it('an edited event', async () => {
    await eventDoc(3).update({ 'fields.action': 'record.deleted' });
    await expectCaught('EDITED at event 3');
  });

  it('a deleted event', async () => {
    await eventDoc(3).delete();
    await expectCaught('DELETED at event 3');
  });

  it('an inserted event', async () => {
    const original = snapshot.find((doc) => doc.id === auditEventId(CHAIN, 3))!.data;
    await events()
      .doc(`${auditEventId(CHAIN, 3)}-extra`)
      .set({ ...original, fields: fields(9) });
    await expectCaught('INSERTED at event 3');
  });

  it('two events swapped', async () => {
    await eventDoc(2).update({ seq: 3 });
    await eventDoc(3).update({ seq: 2 });
    await expectCaught('REORDERED at event 2');
  });

  it('a cut-off tail, with the head moved back to match', async () => {
    await eventDoc(6).delete();
    const five = snapshot.find((doc) => doc.id === auditEventId(CHAIN, 5))!.data;
    await firestore.collection(AUDIT_COLLECTIONS.heads).doc(CHAIN).set(five);
    await expectCaught('TRUNCATED at event 6');
  });

  it('a consistent rewrite, every hash recomputed after an edit', async () => {
    const stored = snapshot.map(({ data }) => data).sort((a, b) => a.seq - b.seq);
    const first: AuditEvent = {
      seq: 1,
      fields: stored[0]!.fields,
      prevHash: stored[0]!.prevHash,
      hash: stored[0]!.hash,
    };
    const rewritten = chainEvents(first, [
      { ...fields(2), actor: { kind: 'device', id: 'someone-else' } },
      ...[3, 4, 5, 6].map(fields),
    ]);
    for (const event of rewritten)
      await eventDoc(event.seq).set({ ...event, fields: { ...event.fields }, chain: CHAIN });
    await expectCaught('CHECKPOINT_MISMATCH at event 1');
  });

  it('a checkpoint forged with a key other than the retention function key', async () => {
    const forger = generateKeyPair();
    const signed = { seq: 6, hash: 'not-the-real-head', at: '2031-05-02T00:00:00Z' };
    await firestore
      .collection(AUDIT_COLLECTIONS.checkpoints)
      .doc(`${auditEventId(CHAIN, 6)}-forged`)
      .set({ ...signed, chain: CHAIN, signature: Buffer.from(signCheckpoint(signed, forger.privateKey)) });
    await expectCaught('CHECKPOINT_INVALID at event 6');
  });
});
