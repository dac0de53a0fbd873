// Inviting a patient (docs/PROTOCOL.md §10.1): a fresh invitation id and one-time token, the
// binding secret derived with the current binding key, the invitation registered with the
// pairing function (only the token's digest, and the inviting member of staff as the hospital's
// pseudonym), recorded in the connector's enrolment journal (so no other invitation's device is
// ever accepted), and the QR text. The token lives only in the QR code.
import {
  deriveBindingSecret,
  derivePatientRef,
  encodeInvitationQr,
  formatTimestamp,
  invitationResponseSchema,
  MAX_INVITATION_ATTEMPTS,
  newInvitationToken,
  newRandomId,
  tokenDigest,
} from '../../shared/core/protocol/index.ts';
import { withTransientRetries } from '../lib/api-client.ts';
import { UsageError } from '../lib/cli.ts';
import type { Connector } from './home.ts';
import { witnessPublicKey } from './witness.ts';

export interface InviteOptions {
  readonly patientNumber: string;
  readonly expiresMinutes: number;
  readonly attempts: number;
  readonly now: Date;
}

export interface Invitation {
  readonly invitationId: string;
  readonly expiresAt: string;
  /** The `CB1:` text: render it, never store or log it (it holds the token and binding secret). */
  readonly qrText: string;
}

export async function invitePatient(connector: Connector, options: InviteOptions): Promise<Invitation> {
  if (
    !Number.isInteger(options.expiresMinutes) ||
    options.expiresMinutes < 1 ||
    options.expiresMinutes > 7 * 24 * 60
  ) {
    throw new UsageError('--expires-minutes must be a whole number from 1 to 10080 (7 days)');
  }
  if (
    !Number.isInteger(options.attempts) ||
    options.attempts < 1 ||
    options.attempts > MAX_INVITATION_ATTEMPTS
  ) {
    throw new UsageError(`--attempts must be a whole number from 1 to ${MAX_INVITATION_ATTEMPTS}`);
  }
  const { custody, operator } = connector;
  const patientRef = derivePatientRef(custody.pseudonymKey, options.patientNumber);
  const invitationId = newRandomId();
  const token = newInvitationToken();
  const body = {
    invitationId,
    patientRef,
    tokenSha256: tokenDigest(token),
    expiresAt: formatTimestamp(new Date(options.now.getTime() + options.expiresMinutes * 60_000)),
    maxAttempts: options.attempts,
    operatorRef: operator.operatorRef,
  };
  // Journalled before the cloud hears of it: a device can only ever be accepted for an
  // invitation this connector holds, and one the cloud never stored simply pairs no one.
  await connector.enrolments.recordInvitation({
    invitationId,
    patientRef,
    createdAt: options.now.toISOString(),
    expiresAt: new Date(body.expiresAt).toISOString(),
    bindingKeyVersion: custody.bindingKey.version,
    operatorRef: operator.operatorRef,
    staffId: operator.staffId,
  });
  // An identical invitation counts as created, so a retry after a lost answer is safe.
  const created = await withTransientRetries(() =>
    connector.api.call(
      { method: 'POST', target: '/pairing/v1/invitations', json: body },
      invitationResponseSchema,
    ),
  );
  const qrText = encodeInvitationQr({
    apiBase: connector.config.apiBase,
    hospitalId: connector.hospitalId,
    invitationId,
    token,
    bindingSecret: deriveBindingSecret(custody.bindingKey, invitationId, patientRef),
    hospitalPublicKey: connector.publicKey,
    witnessKey: witnessPublicKey(connector),
  });
  return { invitationId, expiresAt: created.expiresAt, qrText };
}
