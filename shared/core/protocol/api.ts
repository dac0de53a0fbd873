// Bodies of the intended HTTPS API (protocol v2) and of push messages. The functions parse
// every request with these schemas (invariant 6) and answer errors as `errorBodySchema`.
// Signed documents travel inside JSON as base64url of their Themis signed form.
//
// Pairing function (base = the QR code's apiBase):
//   POST /pairing/v1/invitations                 hospital-signed  createInvitationRequest → invitationResponse
//   POST /pairing/v1/pair                        unsigned (PoP)   pairBody → pairResponse
//   GET  /pairing/v1/patients/{patientRef}/devices  hospital-signed  → patientDevicesResponse
//   POST /pairing/v1/devices/{deviceId}/revoke   hospital-signed  {} → revokeResponse
// Records function:
//   GET  /records/v1/records?pageSize&pageToken  device-signed    → recordListResponse
//   GET  /records/v1/records/{recordId}/content  device-signed    → container bytes (or 303 to a signed URL)
//   POST /records/v1/records/{recordId}/ack      device-signed    ackBody → ackResponse
//   GET  /records/v1/devices                     device-signed    → deviceListResponse
//   POST /records/v1/devices/{deviceId}/revoke   device-signed    {} → revokeResponse
//   PUT  /records/v1/devices/self/push-token     device-signed    pushTokenBody → 204
//   GET  /records/v1/access-log?pageSize&pageToken&treeSize  device-signed  → accessLogResponse
//   GET  /records/v1/audit-log/checkpoint?fromSize  device-signed  → deviceCheckpointResponse
// Pairing function, for the hospital's witness:
//   GET  /pairing/v1/audit-log/checkpoint?fromSize  hospital-signed → witnessCheckpointResponse
//   POST /pairing/v1/audit-log/cosignature       hospital-signed  cosignatureBody → cosignatureResponse
import { z } from 'zod';
import { fcmTokenSchema, contentClassSchema, platformSchema } from './documents.ts';
import { ProtocolError } from './error-codes.ts';
import {
  deviceIdSchema,
  hospitalIdSchema,
  invitationIdSchema,
  operatorRefSchema,
  patientRefSchema,
  publicKeySchema,
  recordIdSchema,
  sha256Schema,
  signedDocumentTextSchema,
  timestampSchema,
  tokenSchema,
} from './ids.ts';
import { fieldOf } from './signed-document.ts';

/** Largest JSON request body any endpoint accepts. */
export const MAX_JSON_BODY_BYTES = 64 * 1024;
export const MAX_INVITATION_ATTEMPTS = 10;
export const MAX_PAGE_SIZE = 100;

export const errorBodySchema = z.strictObject({
  error: z.strictObject({
    code: z.string().regex(/^[A-Z][A-Z0-9_]{1,63}$/),
    message: z.string().max(500),
    field: z.string().max(200).optional(),
    /** The request's Cloud Trace id, to quote when reporting a problem; also in x-trace-id. */
    traceId: z
      .string()
      .regex(/^[0-9a-f]{32}$/)
      .optional(),
  }),
});

export const pageQuerySchema = z.strictObject({
  pageSize: z
    .string()
    .regex(/^[1-9][0-9]{0,2}$/)
    .transform(Number)
    .pipe(z.int().min(1).max(MAX_PAGE_SIZE))
    .optional(),
  pageToken: z
    .string()
    .regex(/^[A-Za-z0-9_-]{1,512}$/)
    .optional(),
});
const nextPageToken = z
  .string()
  .regex(/^[A-Za-z0-9_-]{1,512}$/)
  .optional();

// ---- Pairing ----

export const createInvitationRequestSchema = z.strictObject({
  invitationId: invitationIdSchema,
  patientRef: patientRefSchema,
  /** SHA-256 of the token's 32 raw bytes; the platform never holds the token itself. */
  tokenSha256: sha256Schema,
  expiresAt: timestampSchema,
  maxAttempts: z.int().min(1).max(MAX_INVITATION_ATTEMPTS),
  /** The member of staff inviting, as the hospital's pseudonym (NEN 7513 "who"). */
  operatorRef: operatorRefSchema,
});

/** The body of a hospital's revoke and recall: who at the hospital asked, as its pseudonym. */
export const hospitalActionBodySchema = z.strictObject({ operatorRef: operatorRefSchema });
export const invitationResponseSchema = z.strictObject({
  invitationId: invitationIdSchema,
  expiresAt: timestampSchema,
});

export const pairBodySchema = z.strictObject({
  /** The one-time token from the QR code (base64url of 32 bytes). */
  token: tokenSchema,
  /** base64url of the signed cb/pair-request/v1. */
  pairRequest: signedDocumentTextSchema,
});
export const pairResponseSchema = z.strictObject({
  deviceId: deviceIdSchema,
  /** base64url of the signed cb/device-certificate/v1. */
  certificate: signedDocumentTextSchema,
  expiresAt: timestampSchema,
});

export const patientDevicesResponseSchema = z.strictObject({
  /** Active (not revoked, not expired) devices only. */
  devices: z
    .array(
      z.strictObject({
        deviceId: deviceIdSchema,
        certificate: signedDocumentTextSchema,
      }),
    )
    .max(64),
});

export const revokeResponseSchema = z.strictObject({
  deviceId: deviceIdSchema,
  revokedAt: timestampSchema,
});

/**
 * A hospital's view of one record it sent: each recipient device and whether it acknowledged
 * the record (stored, or failed with its code). Answers NOT_FOUND once the record is gone
 * (recalled, erased, expired) and for another hospital's record.
 */
export const deliveryStatusResponseSchema = z.strictObject({
  recordId: recordIdSchema,
  acceptedAt: timestampSchema,
  recipients: z
    .array(
      z.strictObject({
        deviceId: deviceIdSchema,
        acknowledged: z
          .strictObject({
            outcome: z.enum(['stored', 'failed']),
            errorCode: z
              .string()
              .regex(/^[A-Z][A-Z0-9_]{1,63}$/)
              .optional(),
            at: timestampSchema,
          })
          .optional(),
      }),
    )
    .max(64),
});

// ---- Records ----

export const recordSummarySchema = z.strictObject({
  recordId: recordIdSchema,
  hospitalId: hospitalIdSchema,
  contentClass: contentClassSchema,
  createdAt: timestampSchema,
  expiresAt: timestampSchema,
  /** Bytes of the container the content endpoint returns. */
  size: z.int().min(0),
  /** When this device acknowledged it, if it has. */
  acknowledgedAt: timestampSchema.optional(),
});
export const recordListResponseSchema = z.strictObject({
  records: z.array(recordSummarySchema).max(MAX_PAGE_SIZE),
  nextPageToken,
});

const errorCodeText = z.string().regex(/^[A-Z][A-Z0-9_]{1,63}$/);
export const ackBodySchema = z.discriminatedUnion('outcome', [
  z.strictObject({ outcome: z.literal('stored') }),
  /** The device could not open the record; errorCode is from the catalogue (CHUNK_INVALID, …). */
  z.strictObject({ outcome: z.literal('failed'), errorCode: errorCodeText }),
]);
export const ackResponseSchema = z.strictObject({
  recordId: recordIdSchema,
  acknowledgedAt: timestampSchema,
});

export const deviceListResponseSchema = z.strictObject({
  devices: z
    .array(
      z.strictObject({
        deviceId: deviceIdSchema,
        hospitalId: hospitalIdSchema,
        platform: platformSchema,
        pairedAt: timestampSchema,
        expiresAt: timestampSchema,
        /** True for the device that made the request. */
        current: z.boolean(),
      }),
    )
    .max(64),
});

export const pushTokenBodySchema = z.strictObject({ fcmToken: fcmTokenSchema });

/** GET /records/v1/signing-key: the records function's public key (erasure receipts). */
export const signingKeyResponseSchema = z.strictObject({ publicKey: publicKeySchema });

/** Erasure is final: the body must say so in as many words. */
export const eraseBodySchema = z.strictObject({ confirm: z.literal('erase-everything') });
/** The signed deletion receipt (cb/deletion-receipt/v1) in base64url, and what it names. */
export const deletionResponseSchema = z.strictObject({ receipt: z.string().min(1).max(2_000_000) });

/** Who acted on a patient's data: their device, the hospital's connector, the platform, an operator. */
export const auditActorSchema = z.strictObject({
  kind: z.enum(['device', 'hospital', 'system', 'operator']),
  id: z.string().min(1).max(200),
});

/**
 * The audit actions a patient's access log shows. The audit trail (shared/audit/chain.ts) records
 * these and the hospital's and platform's own (policy changes, retention runs).
 */
export const PATIENT_AUDIT_ACTIONS = [
  'invitation.created',
  'device.paired',
  'device.linked',
  'device.revoked',
  'device.removed',
  'record.created',
  'record.downloaded',
  'record.acknowledged',
  'record.recalled',
  'record.deleted',
  'patient.erased',
] as const;

// ---- Audit transparency log (docs/PROTOCOL.md §16) ----

/** A SHA-256 hash or 32-byte value as base64url. */
const hash32 = z.string().regex(/^[A-Za-z0-9_-]{43}$/);
const treeSizeText = z
  .string()
  .regex(/^(0|[1-9][0-9]{0,14})$/)
  .transform(Number);
/** Longest checkpoint note accepted: the text and a handful of signature lines. */
export const MAX_CHECKPOINT_NOTE = 4096;
const checkpointNote = z.string().min(1).max(MAX_CHECKPOINT_NOTE);
const proofHashes = z.array(hash32).max(64);

export const checkpointQuerySchema = z.strictObject({
  /** The size of the checkpoint the caller trusts; the consistency proof starts there. */
  fromSize: treeSizeText.optional(),
});
export const deviceCheckpointResponseSchema = z.strictObject({
  /** The platform's log key (a note verifier key). */
  logKey: z.string().max(512).optional(),
  /** The newest checkpoint the hospital's witness cosigned; absent until it has cosigned one. */
  checkpoint: checkpointNote.optional(),
  /** From `fromSize` to the checkpoint's size. */
  consistencyProof: proofHashes,
});
export const witnessCheckpointResponseSchema = z.strictObject({
  logKey: z.string().max(512).optional(),
  /** The newest checkpoint the platform signed; absent while the log is empty. */
  checkpoint: checkpointNote.optional(),
  consistencyProof: proofHashes,
});
export const cosignatureBodySchema = z.strictObject({
  /** The checkpoint as published, with the witness's cosignature line added. */
  checkpoint: checkpointNote,
  /** The witness's Ed25519 public key (32 bytes, base64url). */
  witnessKey: hash32,
});
export const cosignatureResponseSchema = z.strictObject({
  size: z.int().min(0),
  /** False when a larger checkpoint was already cosigned (this one is kept nowhere). */
  recorded: z.boolean(),
});

export const accessLogQuerySchema = pageQuerySchema.extend({
  /** The size of the cosigned checkpoint the device verified: proofs are given against it. */
  treeSize: treeSizeText.optional(),
});

/** What a device needs to check one access-log entry against the log (§16.9). */
export const auditLeafProofSchema = z.strictObject({
  /** The event exactly as committed (canonical JSON); its fields are the entry's. */
  event: z.string().min(2).max(4096),
  salt: hash32,
  /** Its leaf index; absent while the entry waits for the sequencer. */
  index: z.int().min(0).optional(),
  /** Inclusion proof against the tree of `treeSize` leaves, when the index is below it. */
  inclusionProof: proofHashes.optional(),
});

export const accessLogResponseSchema = z.strictObject({
  entries: z
    .array(
      z.strictObject({
        at: timestampSchema,
        /** Who acted: this patient's device, the hospital's connector, or the platform itself. */
        actor: auditActorSchema,
        action: z.enum(PATIENT_AUDIT_ACTIONS),
        recordId: recordIdSchema.optional(),
        deviceId: deviceIdSchema.optional(),
        invitationId: invitationIdSchema.optional(),
        /** The member of staff who acted for the hospital, as the hospital's pseudonym. */
        operatorRef: operatorRefSchema.optional(),
        outcome: errorCodeText.optional(),
        leaf: auditLeafProofSchema,
      }),
    )
    .max(MAX_PAGE_SIZE),
  nextPageToken,
});

// ---- Push (invariant 5) ----

/**
 * The whole FCM data payload: an opaque hint that something changed, nothing else. No record
 * id, hospital, patient or count: a device learns what changed only through signed API calls.
 * FCM data values must be strings.
 */
export const pushDataSchema = z.strictObject({
  cb: z.literal('1'),
  hint: z.enum(['records', 'devices']),
});
export type PushData = z.output<typeof pushDataSchema>;

export function pushData(hint: PushData['hint']): PushData {
  return { cb: '1', hint };
}

// ---- Parsing helper ----

/**
 * Parses a boundary value with a schema; a failure is INVALID_REQUEST naming the first failing
 * field (never its value).
 */
export function parseBoundary<S extends z.ZodType>(schema: S, value: unknown): z.output<S> {
  const parsed = schema.safeParse(value);
  if (!parsed.success)
    throw new ProtocolError('INVALID_REQUEST', undefined, { field: fieldOf(parsed.error) });
  return parsed.data;
}

/** Parses a JSON request body (bytes) with a schema: PAYLOAD_TOO_LARGE or INVALID_REQUEST. */
export function parseJsonBody<S extends z.ZodType>(
  schema: S,
  body: Uint8Array,
  maxBytes: number = MAX_JSON_BODY_BYTES,
): z.output<S> {
  if (body.length > maxBytes) throw new ProtocolError('PAYLOAD_TOO_LARGE');
  let value: unknown;
  try {
    value = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(body));
  } catch {
    throw new ProtocolError('INVALID_REQUEST', 'the body is not JSON');
  }
  return parseBoundary(schema, value);
}
