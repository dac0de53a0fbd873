// The FCM HTTP v1 wire format, as far as Clinic Bridge uses it: the `messages:send` request
// body, checked with zod, and Google's JSON error shape. Pure functions only; the server in
// server.ts does the I/O.
//
// FCM parses its body as proto3 JSON, which accepts both the proto field name
// (`collapse_key`) and its lowerCamel JSON name (`collapseKey`). firebase-admin sends a mix
// (it renames some fields and not others), so every object below is normalised to the
// snake_case names first and then checked strictly, as FCM refuses unknown fields.
import { z } from 'zod';

export const FCM_ERROR_TYPE = 'type.googleapis.com/google.firebase.fcm.v1.FcmError';
export const BAD_REQUEST_TYPE = 'type.googleapis.com/google.rpc.BadRequest';

/** FCM's limit on the data payload of one message, in bytes. */
export const DEFAULT_MAX_MESSAGE_BYTES = 4096;
/** Google's front end refuses request bodies above this size. */
export const MAX_REQUEST_BYTES = 1024 * 1024;

/** Characters FCM registration tokens are made of (base64url plus `:`), with a sane cap. */
export const TOKEN_PATTERN = /^[A-Za-z0-9_:.~-]{1,4096}$/;

export interface FieldViolation {
  field: string;
  description: string;
}

export interface GoogleErrorBody {
  error: { code: number; message: string; status: string; details?: Record<string, unknown>[] };
}

/** Google's error JSON. `fcmErrorCode` adds the FcmError detail that firebase-admin maps to its codes. */
export function googleError(
  code: number,
  status: string,
  message: string,
  extra: { fcmErrorCode?: string; violations?: FieldViolation[] } = {},
): GoogleErrorBody {
  const details: Record<string, unknown>[] = [];
  if (extra.fcmErrorCode) details.push({ '@type': FCM_ERROR_TYPE, errorCode: extra.fcmErrorCode });
  if (extra.violations && extra.violations.length > 0) {
    details.push({ '@type': BAD_REQUEST_TYPE, fieldViolations: extra.violations });
  }
  return { error: { code, message, status, ...(details.length > 0 ? { details } : {}) } };
}

export function invalidArgument(message: string, violations: FieldViolation[] = []): GoogleErrorBody {
  return googleError(400, 'INVALID_ARGUMENT', message, { fcmErrorCode: 'INVALID_ARGUMENT', violations });
}

export function unregistered(): GoogleErrorBody {
  return googleError(404, 'NOT_FOUND', 'Requested entity was not found.', { fcmErrorCode: 'UNREGISTERED' });
}

export function unauthenticated(): GoogleErrorBody {
  return googleError(
    401,
    'UNAUTHENTICATED',
    'Request is missing required authentication credential. Expected OAuth 2 access token, login cookie or ' +
      'other valid authentication credential.',
  );
}

/**
 * Parses a request body as JSON. Returns an error text instead of throwing. A `__proto__`
 * key is refused: zod drops it from records silently, and a push must never lose data unseen.
 */
export function parseJson(text: string): { ok: true; value: unknown } | { ok: false; error: string } {
  let protoKey = false;
  try {
    const value: unknown = JSON.parse(text, (key, v: unknown) => {
      if (key === '__proto__') protoKey = true;
      return v;
    });
    if (protoKey)
      return { ok: false, error: 'Invalid JSON payload received. The key "__proto__" is not allowed.' };
    return { ok: true, value };
  } catch (error) {
    return { ok: false, error: `Invalid JSON payload received. ${(error as Error).message}` };
  }
}

const snakeCase = (key: string): string => key.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);

/** A strict proto message: lowerCamel keys become snake_case when the shape knows them. */
function protoObject<T extends z.ZodRawShape>(shape: T) {
  return z.preprocess((input) => {
    if (input === null || typeof input !== 'object' || Array.isArray(input)) return input;
    const entries = Object.entries(input).map(([key, value]): [string, unknown] => {
      const snake = snakeCase(key);
      // Both spellings at once is a duplicate field: keep the camel key so the strict check names it.
      const rename = snake !== key && Object.hasOwn(shape, snake) && !Object.hasOwn(input, snake);
      return [rename ? snake : key, value];
    });
    return Object.fromEntries(entries);
  }, z.strictObject(shape));
}

const dataMap = z.record(
  z.string(),
  z.string({ error: 'data values must be strings: FCM data is a map<string, string>' }),
);
const stringMap = z.record(z.string(), z.string());
const analyticsLabel = z
  .string()
  .regex(/^[a-zA-Z0-9\-_.~%]{1,50}$/, 'analytics_label must match ^[a-zA-Z0-9-_.~%]{1,50}$');
const duration = z.string().regex(/^\d{1,12}(\.\d{1,9})?s$/, 'must be a duration such as "3600s"');

const androidConfig = protoObject({
  collapse_key: z.string().optional(),
  // Proto enum names; FCM accepts the lower-case spelling firebase-admin documents.
  priority: z
    .string()
    .transform((p) => p.toUpperCase())
    .pipe(z.enum(['NORMAL', 'HIGH'], { error: 'priority must be NORMAL or HIGH' }))
    .optional(),
  ttl: duration.optional(),
  restricted_package_name: z.string().optional(),
  data: dataMap.optional(),
  notification: z.unknown().optional(),
  fcm_options: protoObject({ analytics_label: analyticsLabel.optional() }).optional(),
  direct_boot_ok: z.boolean().optional(),
  bandwidth_constrained_ok: z.boolean().optional(),
  restricted_satellite_ok: z.boolean().optional(),
});

const apnsConfig = protoObject({
  headers: stringMap.optional(),
  // A google.protobuf.Struct: the APNs JSON payload, with `aps` inside.
  payload: z.record(z.string(), z.unknown()).optional(),
  fcm_options: protoObject({
    analytics_label: analyticsLabel.optional(),
    image: z.string().optional(),
  }).optional(),
  live_activity_token: z.string().optional(),
});

const webpushConfig = protoObject({
  headers: stringMap.optional(),
  data: dataMap.optional(),
  notification: z.unknown().optional(),
  fcm_options: protoObject({
    link: z.string().optional(),
    analytics_label: analyticsLabel.optional(),
  }).optional(),
});

const messageShape = protoObject({
  name: z.string().optional(),
  token: z.string().optional(),
  topic: z.string().optional(),
  condition: z.string().optional(),
  fid: z.string().optional(),
  data: dataMap.optional(),
  notification: z.unknown().optional(),
  android: androidConfig.optional(),
  apns: apnsConfig.optional(),
  webpush: webpushConfig.optional(),
  fcm_options: protoObject({ analytics_label: analyticsLabel.optional() }).optional(),
});

export type FcmMessage = z.output<typeof messageShape>;

const DATA_ONLY =
  'Clinic Bridge sends data-only pushes, so the operating system never shows any text: ' +
  'a push carries only an opaque hint that records are waiting, never medical data';

const RESERVED_KEYS = new Set(['from', 'notification', 'message_type']);

/** FCM refuses these data keys: `from`, `notification`, `message_type` and anything starting with google or gcm. */
export function reservedDataKey(key: string): boolean {
  const lower = key.toLowerCase();
  return key === '' || RESERVED_KEYS.has(lower) || lower.startsWith('google') || lower.startsWith('gcm');
}

function dataBytes(data: Record<string, string> | undefined): number {
  let total = 0;
  for (const [key, value] of Object.entries(data ?? {}))
    total += Buffer.byteLength(key) + Buffer.byteLength(value);
  return total;
}

/** The Clinic Bridge rules on top of the wire format: token only, data only, no reserved keys. */
function checkPolicy(message: FcmMessage, ctx: z.RefinementCtx, maxMessageBytes: number): void {
  const issue = (path: (string | number)[], text: string) =>
    ctx.addIssue({ code: 'custom', path, message: text });

  const targets = (['token', 'topic', 'condition', 'fid'] as const).filter((t) => message[t] !== undefined);
  if (targets.length === 0) {
    issue(
      ['token'],
      'Exactly one target is required, and it must be a device registration token (message.token)',
    );
  } else if (targets.length > 1) {
    issue([targets[1] ?? 'token'], `Exactly one target is allowed, got ${targets.join(', ')}`);
  }
  for (const target of targets.filter((t) => t !== 'token')) {
    issue(
      [target],
      `Target "${target}" is not supported: Clinic Bridge pushes only to device registration tokens, ` +
        'never to topics, conditions or installation ids',
    );
  }
  if (message.token !== undefined && !TOKEN_PATTERN.test(message.token)) {
    issue(['token'], 'The registration token is not a valid FCM registration token');
  }

  if (message.notification !== undefined) {
    issue(['notification'], `A notification block is not allowed. ${DATA_ONLY}`);
  }
  if (message.android?.notification !== undefined) {
    issue(['android', 'notification'], `An Android notification block is not allowed. ${DATA_ONLY}`);
  }
  if (message.webpush?.notification !== undefined) {
    issue(['webpush', 'notification'], `A webpush notification block is not allowed. ${DATA_ONLY}`);
  }
  const aps = message.apns?.payload?.['aps'];
  if (aps !== null && typeof aps === 'object' && 'alert' in aps) {
    issue(['apns', 'payload', 'aps', 'alert'], `An APNs alert is not allowed. ${DATA_ONLY}`);
  }

  const maps: [string[], Record<string, string> | undefined][] = [
    [['data'], message.data],
    [['android', 'data'], message.android?.data],
    [['webpush', 'data'], message.webpush?.data],
  ];
  for (const [path, map] of maps) {
    for (const key of Object.keys(map ?? {})) {
      if (reservedDataKey(key)) {
        issue(
          [...path, key],
          `Invalid data payload key "${key}": "from", "notification", "message_type" and keys starting ` +
            'with "google" or "gcm" are reserved',
        );
      }
    }
  }

  // Android gets android.data when present (it replaces message.data); APNs gets data merged
  // into the APNs JSON payload. Either one above the limit is refused, as FCM does.
  const androidBytes = dataBytes(message.android?.data ?? message.data);
  const apnsBytes = Buffer.byteLength(JSON.stringify({ ...message.data, ...message.apns?.payload }));
  if (androidBytes > maxMessageBytes) {
    issue([], `Android message is too big: ${androidBytes} bytes of data, the limit is ${maxMessageBytes}`);
  } else if (message.apns?.payload !== undefined && apnsBytes > maxMessageBytes) {
    issue([], `APNs message is too big: ${apnsBytes} bytes of payload, the limit is ${maxMessageBytes}`);
  }
}

/** The body of `POST /v1/projects/{project}/messages:send`. */
export function sendRequestSchema(maxMessageBytes = DEFAULT_MAX_MESSAGE_BYTES) {
  return z
    .strictObject({
      validate_only: z.boolean().optional(),
      validateOnly: z.boolean().optional(),
      message: messageShape.superRefine((m, ctx) => checkPolicy(m, ctx, maxMessageBytes)),
    })
    .superRefine((body, ctx) => {
      if (body.validate_only !== undefined && body.validateOnly !== undefined) {
        ctx.addIssue({ code: 'custom', path: ['validateOnly'], message: 'validate_only is given twice' });
      }
    })
    .transform((body) => ({
      validateOnly: body.validate_only ?? body.validateOnly ?? false,
      message: body.message,
    }));
}

/** zod issues as Google field violations: `message.data.count`, etc. */
export function violationsOf(error: z.ZodError, where: 'body' | 'query' = 'body'): FieldViolation[] {
  return error.issues.map((issue) => {
    const path = issue.path.map(String);
    const field = path.length > 0 ? path.join('.') : where === 'body' ? 'request' : 'query';
    if (issue.code === 'unrecognized_keys') {
      const names = issue.keys.map((k) => `"${k}"`).join(', ');
      return {
        field,
        description:
          where === 'body'
            ? `Invalid JSON payload received. Unknown name ${names} at '${field}': Cannot find field.`
            : `Unknown query parameter ${names}.`,
      };
    }
    return { field, description: issue.message };
  });
}

/** One readable sentence for the top-level error message: the first violation. */
export function summarise(violations: FieldViolation[]): string {
  const first = violations[0];
  if (!first) return 'Request contains an invalid argument.';
  const more = violations.length > 1 ? ` (and ${violations.length - 1} more problem(s))` : '';
  // Whole-message problems read as FCM words them ("Android message is too big").
  const whole = ['message', 'request', 'query'].includes(first.field);
  if (whole || first.description.startsWith('Invalid JSON payload received.'))
    return `${first.description}${more}`;
  return `Invalid value at '${first.field}': ${first.description}${more}`;
}
