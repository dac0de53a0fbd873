// Device linking (docs/PROTOCOL.md §17; THREAT_MODEL.md "Device linking"): a paired phone enrols
// a new phone of the same patient and hands it the history as keys re-wrapped for it. The pairing
// function accepts a link only when the call AND the link document are signed by a current,
// unrevoked device of that patient, so the cloud cannot link a device on its own; it issues the
// linked certificate and stores the link (opaque wraps and signatures) on the new device. The
// records function serves each patient's links to its devices, the pairing function to the
// hospital, so both can check a linked device for themselves (verifyLinkedDevice).
import type { KeyPair } from '../core/crypto/index.ts';
import type { AuditLog } from '../audit/log.ts';
import type { Clock } from '../ports/clock.ts';
import type {
  DeviceLinkStore,
  LinkDecision,
  LinkSnapshot,
  NewLinkedDevice,
} from '../ports/device-link-store.ts';
import type { Notifier } from '../ports/notifier.ts';
import type { DeviceRecord, DeviceStore, PairingStores } from '../ports/pairing-store.ts';
import {
  documentFromText,
  formatTimestamp,
  linkBodySchema,
  linkedCertificateFor,
  parseBoundary,
  parseJsonBody,
  patientRefSchema,
  ProtocolError,
  signLinkedDeviceCertificate,
  toBase64Url,
  verifyDeviceLink,
  type DeviceLink,
} from '../core/protocol/index.ts';
import { createDeviceCaller, type DeviceCaller } from './device-caller.ts';
import { PAIRING_DEFAULTS } from './pairing.ts';
import { sendPushHints } from './push-hints.ts';
import { createHospitalCaller, type SignedCall } from './signed-call.ts';

export interface LinkedDeviceEntry {
  deviceId: string;
  certificate: string;
  link: string;
}

export interface DeviceLinkingOptions {
  readonly stores: PairingStores;
  readonly links: DeviceLinkStore;
  readonly clock: Clock;
  /** The pairing function's key pair: linked certificates are signed with it. */
  readonly keyPair: () => Promise<KeyPair>;
  readonly notifier?: Notifier;
  readonly audit: AuditLog;
  readonly limits?: Partial<typeof PAIRING_DEFAULTS>;
}

export interface DeviceLinkingService {
  /** POST /pairing/v1/links, signed by the linking device. */
  link(call: SignedCall): Promise<{ deviceId: string; certificate: string; expiresAt: string }>;
  /** GET /pairing/v1/patients/{patientRef}/device-links, hospital-signed. */
  hospitalLinks(call: SignedCall, patientRef: string): Promise<{ links: LinkedDeviceEntry[] }>;
}

interface LinkContext {
  readonly link: DeviceLink;
  readonly signedText: string;
  readonly device: NewLinkedDevice;
  readonly maxDevices: number;
  readonly now: Date;
}

/**
 * The linking rules as one pure decision over what the transaction read: the signer is still a
 * current device of this patient holding the certificate the link names; the new key is new (or
 * this very link's retry); the link id unused; room for one more device; and every record the link
 * carries a key for is a live record of this patient that the signer itself can open.
 */
export function decideLink(snapshot: LinkSnapshot, context: LinkContext): LinkDecision {
  const { link, now } = context;
  const linker = snapshot.linker;
  if (!linker) return { outcome: 'LINK_INVALID' };
  if (linker.status !== 'active' || linker.expiresAt <= now) return { outcome: 'DEVICE_REVOKED' };
  if (
    linker.hospitalId !== link.hospitalId ||
    linker.patientRef !== link.patientRef ||
    linker.certificate !== link.linkedByCertificate
  ) {
    return { outcome: 'LINK_INVALID' };
  }
  const target = snapshot.target;
  if (target) {
    // The retry of a link whose answer was lost gets its enrolment back; anything else is taken.
    if (target.link === context.signedText && target.status === 'active') {
      return { outcome: 'linked', device: target };
    }
    return { outcome: 'DEVICE_ALREADY_PAIRED' };
  }
  if (snapshot.linkIdTaken) return { outcome: 'LINK_REPLAYED' };
  const active = snapshot.patientDevices.filter((d) => d.status === 'active' && d.expiresAt > now);
  if (active.length >= context.maxDevices) return { outcome: 'DEVICE_LIMIT_REACHED' };
  for (const { recordId } of link.keys) {
    const record = snapshot.records.get(recordId);
    if (
      !record ||
      record.expiresAt <= now ||
      record.hospitalId !== link.hospitalId ||
      record.patientRef !== link.patientRef ||
      !record.recipients.includes(linker.deviceId)
    ) {
      return { outcome: 'LINK_RECORD_INVALID' };
    }
  }
  return {
    outcome: 'linked',
    device: context.device,
    writes: { device: context.device, recordIds: link.keys.map((k) => k.recordId) },
  };
}

/** The patient's active devices that were enrolled by a link, each with its certificate and link. */
async function linkedDevicesOf(
  devices: DeviceStore,
  links: DeviceLinkStore,
  hospitalId: string,
  patientRef: string,
  now: Date,
): Promise<LinkedDeviceEntry[]> {
  const active = (await devices.listActive(hospitalId, patientRef, now)).slice(0, 64);
  const found = await links.linksOf(active.map((d) => d.deviceId));
  return active.flatMap((device) => {
    const link = found.get(device.deviceId);
    return link === undefined ? [] : [{ deviceId: device.deviceId, certificate: device.certificate, link }];
  });
}

export function createDeviceLinkingService(options: DeviceLinkingOptions): DeviceLinkingService {
  const { stores, clock } = options;
  const limits = { ...PAIRING_DEFAULTS, ...options.limits };
  const caller = createDeviceCaller({ devices: stores.devices, nonces: stores.nonces, clock });
  const hospitalOf = createHospitalCaller({ hospitals: stores.hospitals, clock, nonces: stores.nonces });

  return Object.freeze({
    async link(call: SignedCall) {
      // Parse before verifying so a malformed body never spends a nonce.
      const body = parseJsonBody(linkBodySchema, call.body);
      const signed = documentFromText(body.link, 'link');
      const keyPair = await options.keyPair(); // also loads Themis
      const linker = await caller(call); // DEVICE_REVOKED for a revoked or expired signer
      const now = clock.now();
      const link = verifyDeviceLink(signed, { linker, now });
      // A linked enrolment lasts no longer than the one that vouched for it.
      const expiresAt = new Date(
        Math.min(now.getTime() + limits.deviceLifetimeMs, linker.expiresAt.getTime()),
      );
      const certificate = toBase64Url(
        signLinkedDeviceCertificate(
          linkedCertificateFor(link, signed, { issuedAt: now, expiresAt }),
          keyPair.privateKey,
        ),
      );
      const device: NewLinkedDevice = {
        deviceId: link.deviceId,
        hospitalId: link.hospitalId,
        patientRef: link.patientRef,
        // The invitation the chain of links started from: what the patient originally paired with.
        invitationId: linker.invitationId,
        certificate,
        bindingProof: '',
        fcmToken: '', // the new phone sets its own (PUT /records/v1/devices/self/push-token)
        platform: link.platform,
        pairedAt: now,
        expiresAt,
        link: body.link,
        linkId: link.linkId,
        linkedBy: linker.deviceId,
      };
      const decision = await options.links.link(
        {
          linkerId: linker.deviceId,
          deviceId: link.deviceId,
          linkId: link.linkId,
          hospitalId: link.hospitalId,
          patientRef: link.patientRef,
          recordIds: link.keys.map((k) => k.recordId),
        },
        (snapshot) =>
          decideLink(snapshot, {
            link,
            signedText: body.link,
            device,
            maxDevices: limits.maxDevicesPerPatient,
            now,
          }),
      );
      if (decision.outcome !== 'linked' || !decision.device) {
        const code = decision.outcome === 'linked' ? 'INTERNAL_ERROR' : decision.outcome;
        call.logger?.notice('link refused', { deviceId: linker.deviceId, code });
        throw new ProtocolError(code);
      }
      const enrolled = decision.device;
      await options.audit.append([
        {
          fields: {
            at: formatTimestamp(now),
            actor: { kind: 'device', id: linker.deviceId },
            action: 'device.linked',
            hospitalId: enrolled.hospitalId,
            patientRef: enrolled.patientRef,
            deviceId: enrolled.deviceId,
          },
          once: `linked:${enrolled.deviceId}`,
        },
      ]);
      call.logger?.info('device linked', {
        operation: 'pairing.link',
        hospitalId: enrolled.hospitalId,
        deviceId: enrolled.deviceId,
        count: link.keys.length,
      });
      const others = (await stores.devices.listActive(enrolled.hospitalId, enrolled.patientRef, now)).filter(
        (other: DeviceRecord) => other.deviceId !== enrolled.deviceId,
      );
      await sendPushHints(options.notifier, stores.devices, others, 'devices', call.logger);
      return {
        deviceId: enrolled.deviceId,
        certificate: enrolled.certificate,
        expiresAt: formatTimestamp(enrolled.expiresAt),
      };
    },

    async hospitalLinks(call: SignedCall, patientRef: string) {
      const ref = parseBoundary(patientRefSchema, patientRef);
      const hospitalId = await hospitalOf(call);
      return { links: await linkedDevicesOf(stores.devices, options.links, hospitalId, ref, clock.now()) };
    },
  });
}

export interface LinkedDevicesView {
  /** GET /records/v1/devices/links: the caller's patient's linked devices (its own link too). */
  list(call: SignedCall): Promise<{ links: LinkedDeviceEntry[] }>;
}

export function createLinkedDevicesView(options: {
  readonly caller: DeviceCaller;
  readonly devices: DeviceStore;
  readonly links: DeviceLinkStore;
  readonly clock: Clock;
}): LinkedDevicesView {
  return Object.freeze({
    async list(call: SignedCall) {
      const device = await options.caller(call);
      const links = await linkedDevicesOf(
        options.devices,
        options.links,
        device.hospitalId,
        device.patientRef,
        options.clock.now(),
      );
      call.logger?.info('device links listed', { operation: 'records.links', deviceId: device.deviceId });
      return { links };
    },
  });
}
