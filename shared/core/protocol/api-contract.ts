// The HTTP API as one table (docs/PROTOCOL.md §9, §16.8): every endpoint a phone or a connector
// calls, with the zod schemas its service parses (path parameters, query, body), the schema of
// its answer, who signs it, and the error codes it may answer. docs/openapi.json is generated
// from this table (openapi.ts), and the tests hold it to the functions both ways: every route a
// function serves is here and every entry here is served (test/unit/openapi.test.ts), and every
// answer the local stack gives matches the document (test/integration/openapi.test.ts). The
// schemas are the very objects the services parse with, so the document cannot describe a body
// the handlers would refuse, or the other way round.
import { z } from 'zod';
import {
  accessLogQuerySchema,
  accessLogResponseSchema,
  ackBodySchema,
  ackResponseSchema,
  checkpointQuerySchema,
  cosignatureBodySchema,
  cosignatureResponseSchema,
  createInvitationRequestSchema,
  deletionResponseSchema,
  deviceCheckpointResponseSchema,
  deviceListResponseSchema,
  eraseBodySchema,
  hospitalActionBodySchema,
  invitationResponseSchema,
  pageQuerySchema,
  pairBodySchema,
  pairResponseSchema,
  patientDevicesResponseSchema,
  deliveryStatusResponseSchema,
  pushTokenBodySchema,
  recordListResponseSchema,
  revokeResponseSchema,
  signingKeyResponseSchema,
  witnessCheckpointResponseSchema,
} from './api.ts';
import { CONTAINER_MEDIA_TYPE } from './container.ts';
import { deviceLinksResponseSchema, linkBodySchema, linkResponseSchema } from './device-link.ts';
import type { ErrorCode } from './error-codes.ts';
import { deviceIdSchema, patientRefSchema, recordIdSchema } from './ids.ts';

export type ApiFunctionName = 'pairing' | 'records';
/** Who signs the request (§8): a paired device's key, the hospital's key, or nobody. */
export type ApiSigner = 'device' | 'hospital' | 'none';
export type ApiMethod = 'GET' | 'POST' | 'PUT';

/**
 * The body of a device's revoke: nothing to say, but a JSON object all the same, so that the
 * body the signature covers is never ambiguous. The same schema as shared/services/own-devices.ts
 * parses with (strict, no fields).
 */
export const emptyBodySchema = z.strictObject({});

export interface ApiJsonBody {
  /** Component name in the OpenAPI document. */
  readonly name: string;
  readonly schema: z.ZodType;
  readonly example: unknown;
}

export type ApiSuccess =
  | { readonly kind: 'json'; readonly status: number; readonly body: ApiJsonBody }
  | { readonly kind: 'empty'; readonly status: number }
  /** Bytes streamed through the function (record content), with their content-length. */
  | {
      readonly kind: 'stream';
      readonly status: number;
      readonly mediaType: string;
      /**
       * Answers `Range: bytes=<first>-` with 206 and the rest from that byte on, so a broken
       * download resumes where it stopped (any other Range is ignored: the whole, with 200).
       */
      readonly resumable?: boolean;
    };

export interface ApiEndpoint {
  /** Unique; the OpenAPI operationId. */
  readonly operationId: string;
  readonly function: ApiFunctionName;
  readonly method: ApiMethod;
  /** The path as the function routes it (`:name` captures a segment), below /<function>. */
  readonly route: string;
  readonly summary: string;
  readonly description: string;
  readonly signer: ApiSigner;
  /** Path parameters, each the schema the service parses it with. */
  readonly params?: Readonly<Record<string, z.ZodType>>;
  /** The query the service parses; endpoints without one refuse any query (INVALID_REQUEST). */
  readonly query?: z.ZodType;
  readonly body?: ApiJsonBody;
  readonly success: ApiSuccess;
  /** Codes this endpoint answers beyond those every endpoint and its signer may (see errorsOf). */
  readonly errors: readonly ErrorCode[];
}

/** Any endpoint: a body the wrapper cannot read or the schema refuses, and the catch-all 500. */
export const COMMON_ERRORS: readonly ErrorCode[] = [
  'INVALID_REQUEST',
  'PAYLOAD_TOO_LARGE',
  'UNSUPPORTED_MEDIA_TYPE',
  'INTERNAL_ERROR',
];

/** What request-signature verification may answer (§8), by signer. */
export const SIGNATURE_ERRORS: Readonly<Record<ApiSigner, readonly ErrorCode[]>> = {
  none: [],
  device: [
    'SIGNATURE_MISSING',
    'SIGNATURE_MALFORMED',
    'SIGNATURE_INVALID',
    'REQUEST_EXPIRED',
    'REQUEST_REPLAYED',
    'UNKNOWN_KEY',
    // A revoked or expired enrolment (device-caller.ts).
    'DEVICE_REVOKED',
  ],
  hospital: [
    'SIGNATURE_MISSING',
    'SIGNATURE_MALFORMED',
    'SIGNATURE_INVALID',
    'REQUEST_EXPIRED',
    'REQUEST_REPLAYED',
    'UNKNOWN_KEY',
    'HOSPITAL_SUSPENDED',
  ],
};

/** Every code an endpoint may answer, in catalogue-independent but stable order. */
export function errorsOf(endpoint: ApiEndpoint): ErrorCode[] {
  return [...new Set([...COMMON_ERRORS, ...SIGNATURE_ERRORS[endpoint.signer], ...endpoint.errors])];
}

// ---- Examples: values from docs/PROTOCOL.md where it has them, all valid for their schemas ----

const EXAMPLE = {
  deviceId: '56rf8cVN6JNYk--Rd2mpOWxvzkAua9hALBm3HHDM37U',
  recordId: 'gIGCg4SFhoeIiYqLjI2Ojw',
  patientRef: 'EREREREREREREREREREREQ',
  invitationId: 'ICEiIyQlJicoKSorLC0uLw',
  operatorRef: 'MDEyMzQ1Njc4OTo7PD0-Pw',
  token: 'QEFCQ0RFRkdISUpLTE1OT1BRUlNUVVZXWFlaW1xdXl8',
  // SHA-256 of the example token's 32 bytes.
  tokenSha256: 'yipP5yf6rs8W7NEwqG4IhcVUDAU3U0BEUHHAZXVV_UI',
  hospitalId: 'st-example-zh',
  // A signed document's base64url, shortened for the example: the Themis header of a signed form.
  signedDocument: 'ICYEJuQAAABHAAAA',
  // The example device public key of §3 (any records-function key has this form).
  publicKey: 'VUVDMgAAAC2fIV30AiTZSYpINOr0o-cgsTHvAQ8wuRlMXiyKhWBIadA5XTCX',
  checkpoint:
    'api.clinic-bridge.example/cb/audit/st-example-zh\n5\n5AYHmKt1a2bN/ycqr8eGGgFKxHC8CB6DXOBmZXz3myo=\n\n— api.clinic-bridge.example/cb/audit eIYMl1NgZN/wtIiMHW1qvm44BYkWQ1JjA/mE2XEhGhJQfv1ia8VCpTZ9KVb27JDsjpnFLR7soh0yh465T0X8jkid0A0=\n— st-example-zh.witness.clinic-bridge LBGbVwAAAABpW5mw2DNPhiyFQcC+YjBW7yZTEOoyxA0vekY2W56wixPs8UFMawPdtqoOEQL5mHQjNPZX5yWRHk2L7tXAX0JfidgFCg==\n',
  logKey: 'api.clinic-bridge.example/cb/audit+78860c97+AYMvN2xSUwtChydLdg4l+Pw5QYSc97eGfToR20e/GDLH',
  consistencyProof: [
    'atENiFLKPouLj4XpJ6oAmDAjClrn_vMWmFex9Tn_uAk',
    'gb73J_FL01BN11SWL8dwVgwGt5BV3rSoChQ3PENeV84',
    'XIdj2fnrbJqNtbGkEkvt3unEJ1E0R6qCS-f2H7DXXRA',
    'e6lVp2Hp53Z_FA85SpNZneNQoy_87sE5JJZ7nhHfs7Q',
  ],
} as const;

const revokeResponse: ApiJsonBody = {
  name: 'RevokeResponse',
  schema: revokeResponseSchema,
  example: { deviceId: EXAMPLE.deviceId, revokedAt: '2026-01-05T09:30:00Z' },
};
const deletionResponse: ApiJsonBody = {
  name: 'DeletionResponse',
  schema: deletionResponseSchema,
  example: { receipt: EXAMPLE.signedDocument },
};
const deviceLinksResponse: ApiJsonBody = {
  name: 'DeviceLinksResponse',
  schema: deviceLinksResponseSchema,
  example: {
    links: [
      { deviceId: EXAMPLE.deviceId, certificate: EXAMPLE.signedDocument, link: EXAMPLE.signedDocument },
    ],
  },
};
const hospitalActionBody: ApiJsonBody = {
  name: 'HospitalActionBody',
  schema: hospitalActionBodySchema,
  example: { operatorRef: EXAMPLE.operatorRef },
};

export const API_CONTRACT: readonly ApiEndpoint[] = [
  // ---- Pairing function (§9.1) ----
  {
    operationId: 'createInvitation',
    function: 'pairing',
    method: 'POST',
    route: '/v1/invitations',
    summary: 'Create an invitation (connector)',
    description:
      'Registers an invitation the connector issued: only the SHA-256 of its one-time token. ' +
      'Safe to retry: an identical invitation counts as created; any other body under a taken id is CONFLICT. ' +
      'expiresAt must lie in the future and at most 7 days ahead (INVALID_REQUEST, field expiresAt).',
    signer: 'hospital',
    body: {
      name: 'CreateInvitationRequest',
      schema: createInvitationRequestSchema,
      example: {
        invitationId: EXAMPLE.invitationId,
        patientRef: EXAMPLE.patientRef,
        tokenSha256: EXAMPLE.tokenSha256,
        expiresAt: '2026-01-05T09:45:00Z',
        maxAttempts: 3,
        operatorRef: EXAMPLE.operatorRef,
      },
    },
    success: {
      kind: 'json',
      status: 201,
      body: {
        name: 'InvitationResponse',
        schema: invitationResponseSchema,
        example: { invitationId: EXAMPLE.invitationId, expiresAt: '2026-01-05T09:45:00Z' },
      },
    },
    errors: ['CONFLICT'],
  },
  {
    operationId: 'pair',
    function: 'pairing',
    method: 'POST',
    route: '/v1/pair',
    summary: 'Pair a device (phone, unsigned: proof of possession in the body)',
    description:
      'The phone sends the token from the QR code and its signed cb/pair-request/v1 (§5.2); ' +
      'it gets its device certificate (§5.1). A retry by the same device while it is active gets the stored pairing back.',
    signer: 'none',
    body: {
      name: 'PairBody',
      schema: pairBodySchema,
      example: { token: EXAMPLE.token, pairRequest: EXAMPLE.signedDocument },
    },
    success: {
      kind: 'json',
      status: 201,
      body: {
        name: 'PairResponse',
        schema: pairResponseSchema,
        example: {
          deviceId: EXAMPLE.deviceId,
          certificate: EXAMPLE.signedDocument,
          expiresAt: '2027-01-05T09:30:00Z',
        },
      },
    },
    errors: [
      // The signed pair request (§5.2, §10.2 step 5).
      'DOCUMENT_INVALID',
      'DOCUMENT_TYPE_MISMATCH',
      'DOCUMENT_TOO_LARGE',
      'KEY_INVALID',
      'SIGNATURE_INVALID',
      'REQUEST_EXPIRED',
      // The invitation (pairing-rules.ts).
      'INVITATION_INVALID',
      'INVITATION_ATTEMPTS_EXCEEDED',
      'INVITATION_EXPIRED',
      'INVITATION_USED',
      'DEVICE_ALREADY_PAIRED',
      'DEVICE_LIMIT_REACHED',
    ],
  },
  {
    operationId: 'listPatientDevices',
    function: 'pairing',
    method: 'GET',
    route: '/v1/patients/:patientRef/devices',
    summary: "A patient's active devices at the calling hospital (connector)",
    description:
      'Active devices only, at most 64, each with its certificate; the connector checks each against its own enrolment journal (§10.3).',
    signer: 'hospital',
    params: { patientRef: patientRefSchema },
    success: {
      kind: 'json',
      status: 200,
      body: {
        name: 'PatientDevicesResponse',
        schema: patientDevicesResponseSchema,
        example: { devices: [{ deviceId: EXAMPLE.deviceId, certificate: EXAMPLE.signedDocument }] },
      },
    },
    errors: [],
  },
  {
    operationId: 'revokeDeviceByHospital',
    function: 'pairing',
    method: 'POST',
    route: '/v1/devices/:deviceId/revoke',
    summary: 'Revoke a device (connector)',
    description:
      "A device that is unknown, already revoked or another hospital's is NOT_FOUND, so no hospital can probe another's devices.",
    signer: 'hospital',
    params: { deviceId: deviceIdSchema },
    body: hospitalActionBody,
    success: { kind: 'json', status: 200, body: revokeResponse },
    errors: ['NOT_FOUND'],
  },
  {
    operationId: 'deliveryStatus',
    function: 'pairing',
    method: 'GET',
    route: '/v1/records/:recordId/delivery',
    summary: 'What became of a record the hospital sent (connector)',
    description:
      'Each recipient device and, once it acknowledged the record, whether it stored it or failed with its code. ' +
      "NOT_FOUND once the record is gone (recalled, erased, expired), and for an unknown id or another hospital's record.",
    signer: 'hospital',
    params: { recordId: recordIdSchema },
    success: {
      kind: 'json',
      status: 200,
      body: {
        name: 'DeliveryStatusResponse',
        schema: deliveryStatusResponseSchema,
        example: {
          recordId: EXAMPLE.recordId,
          acceptedAt: '2026-01-05T10:00:02Z',
          recipients: [
            {
              deviceId: EXAMPLE.deviceId,
              acknowledged: { outcome: 'stored', at: '2026-01-05T10:03:15Z' },
            },
          ],
        },
      },
    },
    errors: ['NOT_FOUND'],
  },
  {
    operationId: 'recallRecord',
    function: 'pairing',
    method: 'POST',
    route: '/v1/records/:recordId/recall',
    summary: 'Recall a record (connector)',
    description:
      "Deletes the record's container and metadata and answers with the signed cb/deletion-receipt/v1 (reason recall); a retry returns the same receipt. " +
      "An unknown id or another hospital's record is NOT_FOUND.",
    signer: 'hospital',
    params: { recordId: recordIdSchema },
    body: hospitalActionBody,
    success: { kind: 'json', status: 200, body: deletionResponse },
    errors: ['NOT_FOUND'],
  },
  {
    operationId: 'witnessCheckpoint',
    function: 'pairing',
    method: 'GET',
    route: '/v1/audit-log/checkpoint',
    summary: "The newest platform-signed checkpoint of the hospital's audit log (witness)",
    description:
      'With a consistency proof from fromSize, the size the witness last cosigned (§16.8); checkpoint is absent while the log is empty. ' +
      'A fromSize no published tree has is INVALID_REQUEST (field fromSize).',
    signer: 'hospital',
    query: checkpointQuerySchema,
    success: {
      kind: 'json',
      status: 200,
      body: {
        name: 'WitnessCheckpointResponse',
        schema: witnessCheckpointResponseSchema,
        example: {
          logKey: EXAMPLE.logKey,
          checkpoint: EXAMPLE.checkpoint,
          consistencyProof: EXAMPLE.consistencyProof,
        },
      },
    },
    errors: [],
  },
  {
    operationId: 'cosignCheckpoint',
    function: 'pairing',
    method: 'POST',
    route: '/v1/audit-log/cosignature',
    summary: "Hand back the witness's cosignature (witness)",
    description:
      'The checkpoint exactly as received with the cosignature line appended (§16.7); recorded is false when a larger checkpoint was already cosigned.',
    signer: 'hospital',
    body: {
      name: 'CosignatureBody',
      schema: cosignatureBodySchema,
      example: { checkpoint: EXAMPLE.checkpoint, witnessKey: 'aJsG06VKTRlem8JE779uNMvnSXkqzoTuOJ72bjgKxDU' },
    },
    success: {
      kind: 'json',
      status: 200,
      body: {
        name: 'CosignatureResponse',
        schema: cosignatureResponseSchema,
        example: { size: 5, recorded: true },
      },
    },
    errors: ['COSIGNATURE_INVALID', 'WITNESS_KEY_MISMATCH'],
  },

  {
    operationId: 'linkDevice',
    function: 'pairing',
    method: 'POST',
    route: '/v1/links',
    summary: 'Link a new phone (signed by a paired phone of the same patient)',
    description:
      "The body carries a cb/device-link/v1 (§17) signed by the very device that signs the request: the new phone's key, " +
      'and content keys re-wrapped for it. The new phone is enrolled with a cb/linked-device-certificate/v1 and added to the ' +
      'recipients of those records. A retry of the same link gets the stored enrolment back.',
    signer: 'device',
    body: { name: 'LinkBody', schema: linkBodySchema, example: { link: EXAMPLE.signedDocument } },
    success: {
      kind: 'json',
      status: 201,
      body: {
        name: 'LinkResponse',
        schema: linkResponseSchema,
        example: {
          deviceId: EXAMPLE.deviceId,
          certificate: EXAMPLE.signedDocument,
          expiresAt: '2027-01-05T09:30:00Z',
        },
      },
    },
    errors: [
      'LINK_INVALID',
      'LINK_REPLAYED',
      'LINK_RECORD_INVALID',
      'KEY_INVALID',
      'CERTIFICATE_INVALID',
      'DEVICE_ALREADY_PAIRED',
      'DEVICE_LIMIT_REACHED',
    ],
  },
  {
    operationId: 'listPatientDeviceLinks',
    function: 'pairing',
    method: 'GET',
    route: '/v1/patients/:patientRef/device-links',
    summary: "A patient's linked devices at the calling hospital, with their links (connector)",
    description:
      'Active devices enrolled by a link (§17), at most 64, each with its linked certificate and the signed link; ' +
      'the connector checks them with verifyLinkedDevice and decides by the signer whether to encrypt to them.',
    signer: 'hospital',
    params: { patientRef: patientRefSchema },
    success: { kind: 'json', status: 200, body: deviceLinksResponse },
    errors: [],
  },
  // ---- Records function (§9.2) ----
  {
    operationId: 'listRecords',
    function: 'records',
    method: 'GET',
    route: '/v1/records',
    summary: "The device's records, in the order ingest accepted them",
    description:
      'pageSize 1..100 (default 50); pageToken as returned in nextPageToken. A record this device holds no wrapped key for is not listed.',
    signer: 'device',
    query: pageQuerySchema,
    success: {
      kind: 'json',
      status: 200,
      body: {
        name: 'RecordListResponse',
        schema: recordListResponseSchema,
        example: {
          records: [
            {
              recordId: EXAMPLE.recordId,
              hospitalId: EXAMPLE.hospitalId,
              contentClass: 'document',
              createdAt: '2026-01-05T09:30:00Z',
              expiresAt: '2026-02-04T09:30:00Z',
              size: 48213,
            },
          ],
        },
      },
    },
    errors: [],
  },
  {
    operationId: 'getRecordContent',
    function: 'records',
    method: 'GET',
    route: '/v1/records/:recordId/content',
    summary: 'Download a record container (§7)',
    description:
      'The container bytes, streamed, with their content-length; the device checks digests and chunks. ' +
      'A broken download resumes with Range: bytes=<first>- (206, the bytes from there on); any other Range is ignored. ' +
      "Another patient's record, or one this device holds no key for, is NOT_FOUND (no existence oracle).",
    signer: 'device',
    params: { recordId: recordIdSchema },
    success: { kind: 'stream', status: 200, mediaType: CONTAINER_MEDIA_TYPE, resumable: true },
    errors: ['NOT_FOUND'],
  },
  {
    operationId: 'acknowledgeRecord',
    function: 'records',
    method: 'POST',
    route: '/v1/records/:recordId/ack',
    summary: 'Acknowledge a record: stored, or failed with a catalogue code',
    description:
      'A stored acknowledgement is final. A failed one must carry a code from the catalogue (INVALID_REQUEST, field errorCode).',
    signer: 'device',
    params: { recordId: recordIdSchema },
    body: { name: 'AckBody', schema: ackBodySchema, example: { outcome: 'stored' } },
    success: {
      kind: 'json',
      status: 200,
      body: {
        name: 'AckResponse',
        schema: ackResponseSchema,
        example: { recordId: EXAMPLE.recordId, acknowledgedAt: '2026-01-05T10:03:15Z' },
      },
    },
    errors: ['NOT_FOUND'],
  },
  {
    operationId: 'listOwnDevices',
    function: 'records',
    method: 'GET',
    route: '/v1/devices',
    summary: "The calling patient's devices at this hospital",
    description: 'current is true for the device that made the request.',
    signer: 'device',
    success: {
      kind: 'json',
      status: 200,
      body: {
        name: 'DeviceListResponse',
        schema: deviceListResponseSchema,
        example: {
          devices: [
            {
              deviceId: EXAMPLE.deviceId,
              hospitalId: EXAMPLE.hospitalId,
              platform: 'android',
              pairedAt: '2026-01-05T09:30:00Z',
              expiresAt: '2027-01-05T09:30:00Z',
              current: true,
            },
          ],
        },
      },
    },
    errors: [],
  },
  {
    operationId: 'revokeOwnDevice',
    function: 'records',
    method: 'POST',
    route: '/v1/devices/:deviceId/revoke',
    summary: 'Revoke this device or another of the same patient',
    description: 'A device of another patient, or one already revoked, is NOT_FOUND.',
    signer: 'device',
    params: { deviceId: deviceIdSchema },
    body: { name: 'EmptyBody', schema: emptyBodySchema, example: {} },
    success: { kind: 'json', status: 200, body: revokeResponse },
    errors: ['NOT_FOUND'],
  },
  {
    operationId: 'listDeviceLinks',
    function: 'records',
    method: 'GET',
    route: '/v1/devices/links',
    summary: "The calling patient's linked devices, with their links",
    description:
      'Each active device enrolled by a link (§17) with its linked certificate and signed link: other phones check it, ' +
      'and a newly linked phone fetches its own link here to unwrap the keys of the history.',
    signer: 'device',
    success: { kind: 'json', status: 200, body: deviceLinksResponse },
    errors: [],
  },
  {
    operationId: 'getSigningKey',
    function: 'records',
    method: 'GET',
    route: '/v1/signing-key',
    summary: "The records function's public key (unsigned)",
    description: 'What erasure receipts verify with; unsigned, because a device has no key before it pairs.',
    signer: 'none',
    success: {
      kind: 'json',
      status: 200,
      body: {
        name: 'SigningKeyResponse',
        schema: signingKeyResponseSchema,
        example: { publicKey: EXAMPLE.publicKey },
      },
    },
    errors: [],
  },
  {
    operationId: 'listAccessLog',
    function: 'records',
    method: 'GET',
    route: '/v1/access-log',
    summary: "The patient's access log at this hospital, newest first",
    description:
      'Each entry with its leaf in the audit transparency log and, when its index is below treeSize, an inclusion proof (§16.8). ' +
      'A treeSize larger than the newest cosigned size is INVALID_REQUEST (field treeSize).',
    signer: 'device',
    query: accessLogQuerySchema,
    success: {
      kind: 'json',
      status: 200,
      body: {
        name: 'AccessLogResponse',
        schema: accessLogResponseSchema,
        example: {
          entries: [
            {
              at: '2026-01-05T10:03:15Z',
              actor: { kind: 'device', id: 'IiIiIiIiIiIiIiIiIiIiIiIiIiIiIiIiIiIiIiIiIiI' },
              action: 'record.downloaded',
              recordId: 'MzMzMzMzMzMzMzMzMzMzMw',
              leaf: {
                event:
                  '{"action":"record.downloaded","actor":{"id":"IiIiIiIiIiIiIiIiIiIiIiIiIiIiIiIiIiIiIiIiIiI","kind":"device"},"at":"2026-01-05T10:03:15Z","hospitalId":"st-example-zh","patientRef":"EREREREREREREREREREREQ","recordId":"MzMzMzMzMzMzMzMzMzMzMw"}',
                salt: 'gK7Pz_ZYKgA0sIMFeXxBJXavW2HGr5fictnY4dcEvnE',
                index: 3,
                inclusionProof: [
                  'atENiFLKPouLj4XpJ6oAmDAjClrn_vMWmFex9Tn_uAk',
                  'XIdj2fnrbJqNtbGkEkvt3unEJ1E0R6qCS-f2H7DXXRA',
                  'e6lVp2Hp53Z_FA85SpNZneNQoy_87sE5JJZ7nhHfs7Q',
                ],
              },
            },
          ],
        },
      },
    },
    errors: [],
  },
  {
    operationId: 'deviceCheckpoint',
    function: 'records',
    method: 'GET',
    route: '/v1/audit-log/checkpoint',
    summary: "The newest checkpoint the hospital's witness cosigned (phone)",
    description:
      'With a consistency proof from fromSize, the size the phone trusts (§16.8, §16.9); checkpoint is absent until the witness has cosigned one.',
    signer: 'device',
    query: checkpointQuerySchema,
    success: {
      kind: 'json',
      status: 200,
      body: {
        name: 'DeviceCheckpointResponse',
        schema: deviceCheckpointResponseSchema,
        example: {
          logKey: EXAMPLE.logKey,
          checkpoint: EXAMPLE.checkpoint,
          consistencyProof: EXAMPLE.consistencyProof,
        },
      },
    },
    errors: [],
  },
  {
    operationId: 'erasePatient',
    function: 'records',
    method: 'POST',
    route: '/v1/patient/erase',
    summary: 'Erase everything of the calling patient at this hospital',
    description:
      'Deletes every record, invitation and device of the patient, the calling device last, and answers with the signed ' +
      'cb/deletion-receipt/v1 (reason erasure). Afterwards the device key is unknown (UNKNOWN_KEY).',
    signer: 'device',
    body: { name: 'EraseBody', schema: eraseBodySchema, example: { confirm: 'erase-everything' } },
    success: { kind: 'json', status: 200, body: deletionResponse },
    errors: [],
  },
  {
    operationId: 'setPushToken',
    function: 'records',
    method: 'PUT',
    route: '/v1/devices/self/push-token',
    summary: "Replace this device's FCM token",
    description: 'Push messages carry only a hint (§11).',
    signer: 'device',
    body: { name: 'PushTokenBody', schema: pushTokenBodySchema, example: { fcmToken: 'fcm-example-token' } },
    success: { kind: 'empty', status: 204 },
    errors: [],
  },
];

/** The OpenAPI path of an endpoint: /<function><route>, `:name` as `{name}`. */
export function openApiPath(endpoint: Pick<ApiEndpoint, 'function' | 'route'>): string {
  return `/${endpoint.function}${endpoint.route.replace(/:([A-Za-z]+)/g, '{$1}')}`;
}
