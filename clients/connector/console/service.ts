// What the console does, over the connector's own operations (invite.ts, deliver.ts,
// receipts.ts and the pairing API the bin's revoke and recall call): each action opens the
// connector as the signed-in member of staff, so the enrolment and send journals name them and
// the cloud's audit trail carries their pseudonym (operatorRef), and closes its custody after.
// Opening per action also re-reads the journals, so a `cb-connector` run beside the console is
// never overwritten by a stale in-memory copy. Every action is scoped to the patient on screen:
// a device or record id from another patient is refused, whatever the form says.
import { basename } from 'node:path';
import QRCode from 'qrcode';
import { createBlobStore } from '../../../shared/adapters/blob-store.ts';
import { createStorage } from '../../../shared/adapters/storage-client.ts';
import {
  deliveryStatusResponseSchema,
  derivePatientRef,
  deviceIdSchema,
  recordIdSchema,
  revokeResponseSchema,
} from '../../../shared/core/protocol/index.ts';
import type { BlobStore } from '../../../shared/ports/blob-store.ts';
import { ApiError } from '../../lib/api-client.ts';
import { requireEnv, type ClientEnvironment } from '../../lib/environment.ts';
import { checkedDevices } from '../deliver.ts';
import type { Connector, ConnectorHome } from '../home.ts';
import { invitePatient } from '../invite.ts';
import { recallRecord, RecallReceiptMismatch } from '../recall.ts';
import { refreshJournal } from '../receipts.ts';
import { ConsoleError } from './errors.ts';

export interface DeviceRow {
  readonly deviceId: string;
  readonly status: 'active' | 'revoked' | 'refused';
  readonly pairedAt?: string;
  /** Why the connector refuses it (a §12 code). */
  readonly code?: string;
}

export interface RecordRow {
  readonly recordId: string;
  readonly uploadId: string;
  readonly document: string;
  readonly sentAt: string;
  readonly sentBy?: string;
  /** gone: accepted once, but the cloud no longer holds it (erased by the patient, or expired). */
  readonly status: 'sent' | 'accepted' | 'rejected' | 'recalled' | 'gone';
  readonly code?: string;
  /** For an accepted record: how many of its devices stored it, and how many could not open it. */
  readonly acknowledged?: { readonly stored: number; readonly failed: number; readonly of: number };
}

export interface ShownInvitation {
  readonly invitationId: string;
  readonly expiresAt: string;
  /** The QR as an SVG element: it holds the token and binding secret, so it is rendered, never stored or logged. */
  readonly qrSvg: string;
}

export interface InviteSettings {
  readonly expiresMinutes: number;
  readonly attempts: number;
}

export class ConsoleService {
  readonly #home: ConnectorHome;
  readonly #environment: ClientEnvironment;
  readonly #invite: InviteSettings;
  #blobs: BlobStore | undefined;

  constructor(home: ConnectorHome, environment: ClientEnvironment, invite: InviteSettings) {
    this.#home = home;
    this.#environment = environment;
    this.#invite = invite;
  }

  async #as<T>(staffId: string, action: (connector: Connector) => Promise<T>): Promise<T> {
    const connector = await this.#home.open(staffId);
    try {
      return await action(connector);
    } finally {
      connector.custody.close();
    }
  }

  #blobStore(): BlobStore {
    this.#blobs ??= createBlobStore(
      createStorage(requireEnv(this.#environment, 'GCLOUD_PROJECT'), this.#environment.env),
    );
    return this.#blobs;
  }

  /** The operatorRef under which `staffId` reaches the cloud. */
  operatorRef(staffId: string): Promise<string> {
    return this.#as(staffId, async (connector) => connector.operator.operatorRef);
  }

  async invite(staffId: string, patientNumber: string): Promise<ShownInvitation & { operatorRef: string }> {
    return this.#as(staffId, async (connector) => {
      const invitation = await invitePatient(connector, {
        patientNumber,
        expiresMinutes: this.#invite.expiresMinutes,
        attempts: this.#invite.attempts,
        now: new Date(),
      });
      // The same encoding as clients/lib/qr.ts: byte mode, error correction M, a quiet zone of 4.
      // Six whole screen pixels per module: fractional ones blur the edges a phone camera reads.
      const segments = [{ data: Buffer.from(invitation.qrText, 'latin1'), mode: 'byte' as const }];
      const modules = QRCode.create(segments, { errorCorrectionLevel: 'M' }).modules.size;
      const qrSvg = await QRCode.toString(segments, {
        type: 'svg',
        errorCorrectionLevel: 'M',
        margin: 4,
        width: (modules + 8) * 6,
      });
      return {
        invitationId: invitation.invitationId,
        expiresAt: invitation.expiresAt,
        qrSvg,
        operatorRef: connector.operator.operatorRef,
      };
    });
  }

  async #devices(connector: Connector, patientNumber: string): Promise<DeviceRow[]> {
    const patientRef = derivePatientRef(connector.custody.pseudonymKey, patientNumber);
    const { accepted, refused } = await checkedDevices(connector, patientRef, new Date());
    const rows: DeviceRow[] = [
      ...accepted.map((device) => ({
        deviceId: device.deviceId,
        status: 'active' as const,
        pairedAt: device.certificate.issuedAt,
      })),
      ...refused.map((device) => ({
        deviceId: device.deviceId,
        status: 'refused' as const,
        code: device.code,
      })),
    ];
    // Devices this connector accepted once and has since revoked (here, or seen gone from the cloud).
    const shown = new Set(rows.map((row) => row.deviceId));
    for (const deviceId of connector.enrolments.acceptedDevices(patientRef)) {
      if (!shown.has(deviceId) && connector.enrolments.isRevoked(deviceId)) {
        rows.push({ deviceId, status: 'revoked' });
      }
    }
    return rows;
  }

  async #records(connector: Connector, patientNumber: string): Promise<RecordRow[]> {
    // The journal says "recalled" whoever recalled it, from here or with `cb-connector recall`.
    const journal = await refreshJournal(connector, this.#blobStore());
    const rows = journal
      .filter(({ entry }) => entry.patientNumber === patientNumber)
      .map(({ entry, forged }): RecordRow => ({
        recordId: entry.recordId,
        uploadId: entry.uploadId,
        document: entry.title ?? basename(entry.file),
        sentAt: entry.sentAt,
        ...(entry.staffId ? { sentBy: entry.staffId } : {}),
        status: entry.status,
        ...(forged ? { code: 'RECEIPT_FORGED' } : entry.errorCode ? { code: entry.errorCode } : {}),
      }))
      .sort((a, b) => b.sentAt.localeCompare(a.sentAt));
    return Promise.all(
      rows.map(async (row) =>
        row.status === 'accepted' ? { ...row, ...(await this.#delivery(connector, row)) } : row,
      ),
    );
  }

  /** What the cloud says the record's devices did with it (the hospital-signed delivery status). */
  async #delivery(connector: Connector, row: RecordRow): Promise<Partial<RecordRow>> {
    try {
      const { recipients } = await connector.api.call(
        { method: 'GET', target: `/pairing/v1/records/${row.recordId}/delivery` },
        deliveryStatusResponseSchema,
      );
      const outcomes = recipients.map((recipient) => recipient.acknowledged?.outcome);
      return {
        acknowledged: {
          stored: outcomes.filter((outcome) => outcome === 'stored').length,
          failed: outcomes.filter((outcome) => outcome === 'failed').length,
          of: recipients.length,
        },
      };
    } catch (error) {
      if (error instanceof ApiError && error.code === 'NOT_FOUND') return { status: 'gone' };
      throw error;
    }
  }

  /** The patient's devices and what was sent to them. */
  patient(staffId: string, patientNumber: string): Promise<{ devices: DeviceRow[]; records: RecordRow[] }> {
    return this.#as(staffId, async (connector) => ({
      devices: await this.#devices(connector, patientNumber),
      records: await this.#records(connector, patientNumber),
    }));
  }

  /** Revokes one of the patient's devices, as `cb-connector revoke` does. */
  revoke(staffId: string, patientNumber: string, deviceId: string): Promise<{ operatorRef: string }> {
    return this.#as(staffId, async (connector) => {
      const parsed = deviceIdSchema.safeParse(deviceId);
      const devices = parsed.success ? await this.#devices(connector, patientNumber) : [];
      if (!devices.some((device) => device.deviceId === deviceId)) {
        throw new ConsoleError('DEVICE_NOT_THIS_PATIENTS', 'that device is not one of this patient’s');
      }
      // Journalled first: whatever the cloud says later, this connector encrypts nothing more for it.
      await connector.enrolments.recordRevocation(deviceId, 'connector', new Date());
      try {
        await connector.api.call(
          {
            method: 'POST',
            target: `/pairing/v1/devices/${deviceId}/revoke`,
            json: { operatorRef: connector.operator.operatorRef },
          },
          revokeResponseSchema,
        );
      } catch (error) {
        // Already revoked in the cloud (or never active there): the local revocation stands.
        if (!(error instanceof ApiError && error.code === 'NOT_FOUND')) throw error;
      }
      return { operatorRef: connector.operator.operatorRef };
    });
  }

  /** Recalls a record sent to the patient and checks the signed deletion receipt names it. */
  recall(staffId: string, patientNumber: string, recordId: string): Promise<{ operatorRef: string }> {
    return this.#as(staffId, async (connector) => {
      const sent = recordIdSchema.safeParse(recordId).success ? await connector.home.journal() : [];
      if (!sent.some((entry) => entry.recordId === recordId && entry.patientNumber === patientNumber)) {
        throw new ConsoleError('RECORD_NOT_THIS_PATIENTS', 'that record was not sent to this patient');
      }
      try {
        await recallRecord(connector, recordId);
      } catch (error) {
        if (error instanceof RecallReceiptMismatch) throw new ConsoleError(error.code, error.message);
        throw error;
      }
      return { operatorRef: connector.operator.operatorRef };
    });
  }
}
