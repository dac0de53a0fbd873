// The connector's own memory of enrolments, so that no answer from the cloud can add or revive a
// device (PROTOCOL.md §10.3): every invitation it issued (id, patient, expiry, binding key
// version, who issued it), the one device that used each, and every device it revoked or saw
// disappear. A rogue cloud holding the pairing function's key and an old QR's binding secret
// can certify a device, but not one for an invitation this journal does not hold, not a second
// one for an invitation already used, not one issued after the invitation expired, and not one
// this journal has revoked. A phone linked by an accepted one (§17.4) is journalled when first
// accepted, so that once the cloud stops listing it, no later answer revives it either.
// Append-only JSON lines in the connector's home, owner-only.
import { appendFile, readFile } from 'node:fs/promises';
import { z } from 'zod';
import {
  deviceIdSchema,
  invitationIdSchema,
  operatorRefSchema,
  patientRefSchema,
  ProtocolError,
  type DeviceCertificate,
} from '../../shared/core/protocol/index.ts';
import { exists, writePrivateFile } from '../lib/files.ts';

/** Clock skew allowed between the invitation's expiry and the certificate's issue time. */
export const ISSUE_SKEW_MS = 300_000;

const lineSchema = z.discriminatedUnion('kind', [
  z.strictObject({
    kind: z.literal('invitation'),
    invitationId: invitationIdSchema,
    patientRef: patientRefSchema,
    createdAt: z.iso.datetime(),
    expiresAt: z.iso.datetime(),
    bindingKeyVersion: z.int().min(1).max(0xffff),
    operatorRef: operatorRefSchema,
    /** The member of staff, as the hospital knows them (stays inside the hospital). */
    staffId: z.string().min(1).max(128),
  }),
  z.strictObject({
    kind: z.literal('used'),
    invitationId: invitationIdSchema,
    deviceId: deviceIdSchema,
    at: z.iso.datetime(),
  }),
  z.strictObject({
    kind: z.literal('linked'),
    deviceId: deviceIdSchema,
    patientRef: patientRefSchema,
    /** The accepted device whose signed link vouched for it. */
    linkedBy: deviceIdSchema,
    at: z.iso.datetime(),
  }),
  z.strictObject({
    kind: z.literal('revoked'),
    deviceId: deviceIdSchema,
    at: z.iso.datetime(),
    /** `connector`: revoked here; `gone`: the cloud stopped listing a device this journal accepted. */
    reason: z.enum(['connector', 'gone']),
  }),
]);
type Line = z.output<typeof lineSchema>;
export type IssuedInvitation = Extract<Line, { kind: 'invitation' }>;

export class EnrolmentJournal {
  readonly path: string;
  readonly #invitations = new Map<string, IssuedInvitation>();
  readonly #usedBy = new Map<string, string>();
  readonly #revoked = new Set<string>();
  /** Linked devices accepted, by device id: their patient. */
  readonly #linked = new Map<string, string>();

  private constructor(path: string) {
    this.path = path;
  }

  static async open(path: string): Promise<EnrolmentJournal> {
    const journal = new EnrolmentJournal(path);
    const text = await readFile(path, 'utf8').catch(() => '');
    for (const [index, line] of text.split('\n').entries()) {
      if (line.trim() === '') continue;
      const parsed = lineSchema.safeParse(JSON.parse(line));
      // A damaged journal must not silently forget a revocation or a first use.
      if (!parsed.success) throw new Error(`${path} line ${index + 1} is damaged`);
      journal.#apply(parsed.data);
    }
    return journal;
  }

  #apply(line: Line): void {
    if (line.kind === 'invitation') this.#invitations.set(line.invitationId, line);
    else if (line.kind === 'used') this.#usedBy.set(line.invitationId, line.deviceId);
    else if (line.kind === 'linked') this.#linked.set(line.deviceId, line.patientRef);
    else this.#revoked.add(line.deviceId);
  }

  async #append(line: Line): Promise<void> {
    const checked = lineSchema.parse(line);
    if (!(await exists(this.path))) await writePrivateFile(this.path, '');
    await appendFile(this.path, `${JSON.stringify(checked)}\n`);
    this.#apply(checked);
  }

  invitation(invitationId: string): IssuedInvitation | undefined {
    return this.#invitations.get(invitationId);
  }

  isRevoked(deviceId: string): boolean {
    return this.#revoked.has(deviceId);
  }

  recordInvitation(invitation: Omit<IssuedInvitation, 'kind'>): Promise<void> {
    return this.#append({ kind: 'invitation', ...invitation });
  }

  recordRevocation(deviceId: string, reason: 'connector' | 'gone', at: Date): Promise<void> {
    if (this.#revoked.has(deviceId)) return Promise.resolve();
    return this.#append({ kind: 'revoked', deviceId, reason, at: at.toISOString() });
  }

  /**
   * The connector's own checks of a certificate that already verified, before its binding proof:
   * throws INVITATION_NOT_ISSUED, CERTIFICATE_LATE or DEVICE_REVOKED. Returns the invitation.
   */
  check(certificate: DeviceCertificate): IssuedInvitation {
    if (this.#revoked.has(certificate.deviceId)) throw new ProtocolError('DEVICE_REVOKED');
    const invitation = this.#invitations.get(certificate.invitationId);
    if (!invitation || invitation.patientRef !== certificate.patientRef) {
      throw new ProtocolError('INVITATION_NOT_ISSUED');
    }
    if (Date.parse(certificate.issuedAt) > Date.parse(invitation.expiresAt) + ISSUE_SKEW_MS) {
      throw new ProtocolError('CERTIFICATE_LATE');
    }
    return invitation;
  }

  /**
   * Settles which device each invitation belongs to, given the devices that passed every other
   * check: the one already recorded, else the only one claiming it now (recorded from here on).
   * Two or more first claimants are all refused: the journal cannot tell the patient's phone
   * from a device the cloud added with a leaked binding secret. Returns the refused device ids.
   */
  async settle(
    claims: readonly { deviceId: string; invitationId: string }[],
    at: Date,
  ): Promise<Set<string>> {
    const refused = new Set<string>();
    const byInvitation = Map.groupBy(claims, (claim) => claim.invitationId);
    for (const [invitationId, claimants] of byInvitation) {
      const owner = this.#usedBy.get(invitationId);
      if (owner !== undefined) {
        for (const claim of claimants) if (claim.deviceId !== owner) refused.add(claim.deviceId);
      } else if (claimants.length === 1) {
        await this.#append({
          kind: 'used',
          invitationId,
          deviceId: claimants[0]!.deviceId,
          at: at.toISOString(),
        });
      } else {
        for (const claim of claimants) refused.add(claim.deviceId);
      }
    }
    return refused;
  }

  /** Records a linked device accepted for `patientRef` the first time it is accepted. */
  recordLinked(device: { deviceId: string; patientRef: string; linkedBy: string }, at: Date): Promise<void> {
    if (this.#linked.has(device.deviceId)) return Promise.resolve();
    return this.#append({ kind: 'linked', ...device, at: at.toISOString() });
  }

  /** Linked devices this journal accepted for `patientRef`. */
  linkedDevices(patientRef: string): string[] {
    return [...this.#linked.entries()]
      .filter(([, owner]) => owner === patientRef)
      .map(([deviceId]) => deviceId);
  }

  /** Devices this journal accepted for `patientRef` (they used one of its invitations). */
  acceptedDevices(patientRef: string): string[] {
    return [...this.#usedBy.entries()]
      .filter(([invitationId]) => this.#invitations.get(invitationId)?.patientRef === patientRef)
      .map(([, deviceId]) => deviceId);
  }
}
