// The local stack's stand-in for FCM on the device side: a made-up push token, and a long poll
// of the local FCM recorder for this device's pushes. A phone gets both from the FCM SDK, so
// they stay in the command-line device and out of the SDK.
import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import { pushDataSchema, toBase64Url } from '../../shared/core/protocol/index.ts';
import type { DeviceHome, Enrolment } from '../../sdk/home.ts';

/** A push token the local FCM recorder delivers to, whatever it is. */
export function localPushToken(): string {
  return `local-${toBase64Url(new Uint8Array(randomBytes(24)))}`;
}

const pollAnswerSchema = z.object({
  messages: z.array(z.object({ seq: z.int(), data: z.record(z.string(), z.string()) })),
  lastSeq: z.int(),
});

/**
 * Long-polls the local FCM recorder for this device's pushes after the last one seen. Only the
 * documented opaque hints count; anything else is ignored. Returns the hint, or undefined.
 */
export async function waitForPush(
  fcmUrl: string,
  enrolment: Enrolment,
  home: DeviceHome,
  waitMs: number,
): Promise<'records' | 'devices' | undefined> {
  const deadline = Date.now() + waitMs;
  let after = enrolment.data.lastPushSeq;
  try {
    while (Date.now() < deadline) {
      const wait = Math.min(60_000, Math.max(0, deadline - Date.now()));
      const response = await fetch(
        `${fcmUrl}/_recorder/tokens/${encodeURIComponent(enrolment.data.fcmToken)}/messages?after=${after}&waitMs=${wait}`,
      );
      const answer = pollAnswerSchema.parse(await response.json());
      for (const message of answer.messages) {
        after = message.seq;
        const hint = pushDataSchema.safeParse(message.data);
        if (hint.success) return hint.data.hint;
      }
      after = Math.max(after, answer.lastSeq);
    }
    return undefined;
  } finally {
    await home.save({ ...enrolment.data, lastPushSeq: after });
  }
}
