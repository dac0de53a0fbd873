// Points the official firebase-admin messaging client at the local FCM recorder, unchanged.
// It lives with the adapters (not in emulator/) because the production Notifier uses it when
// FCM_EMULATOR_URL is set; the recorder itself stays in emulator/fcm/.
//
// firebase-admin hard-codes https://fcm.googleapis.com and has no emulator switch for FCM.
// But in firebase-admin 14, `getMessaging(app).send()` goes out over HTTP/1.1 through Node's
// https.request, and the request carries the app's `httpAgent` option as its agent. The agent
// decides how a connection is opened, so an https.Agent whose createConnection() opens a
// plain TCP socket to the recorder delivers the very same request (POST
// /v1/projects/{project}/messages:send, Bearer token, JSON body) to the recorder instead,
// without TLS. A credential whose getAccessToken() returns a fixed token keeps the client
// away from Google's token endpoint. Errors come back through the client's own mapping, so
// code sees `messaging/registration-token-not-registered` exactly as in production.
//
// Limits, checked against firebase-admin 14.5:
// - Only the HTTP/1.1 path honours httpAgent. sendEach() and sendEachForMulticast() use
//   HTTP/2 by default (http2.connect to fcm.googleapis.com, no agent), so they reach the
//   recorder only after `messaging.enableLegacyHttpTransport()` (deprecated). Production
//   code should call send() per token, which it does anyway to handle UNREGISTERED per device.
// - The agent sends every HTTP request of that app to the recorder, whatever its host, so give
//   messaging an app of its own. Topic management (iid.googleapis.com) is not emulated.
// - Traffic to the recorder is plain HTTP, so the agent refuses any host but loopback.
import { Agent } from 'node:https';
import { connect } from 'node:net';
import type { Duplex } from 'node:stream';
import type { AppOptions, Credential, GoogleOAuthAccessToken } from 'firebase-admin/app';

/** An https.Agent that opens plain TCP connections to the recorder, whatever the request's host. */
export class LocalFcmAgent extends Agent {
  readonly target: { host: string; port: number };

  constructor(recorderUrl: string) {
    super({ keepAlive: false });
    const url = new URL(recorderUrl);
    if (url.protocol !== 'http:' || url.port === '') {
      throw new TypeError(
        `expected the recorder's base URL, such as http://127.0.0.1:8085, got ${recorderUrl}`,
      );
    }
    const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
    if (!isLoopback(host)) {
      throw new TypeError(`the FCM recorder must be on loopback (plain HTTP), got host ${host}`);
    }
    this.target = { host, port: Number(url.port) };
  }

  override createConnection(): Duplex {
    return connect(this.target);
  }
}

function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127(\.\d{1,3}){3}$/.test(host);
}

export function localFcmAgent(recorderUrl: string): LocalFcmAgent {
  return new LocalFcmAgent(recorderUrl);
}

/** A credential with a fixed access token; the recorder accepts any bearer token. */
export function localFcmCredential(accessToken = 'local-fcm-recorder'): Credential {
  return {
    getAccessToken: async (): Promise<GoogleOAuthAccessToken> => ({
      access_token: accessToken,
      expires_in: 3600,
    }),
  };
}

/** Options for `initializeApp(localFcmAppOptions(url, projectId), 'fcm-local')`. */
export function localFcmAppOptions(recorderUrl: string, projectId: string): AppOptions {
  return { projectId, credential: localFcmCredential(), httpAgent: localFcmAgent(recorderUrl) };
}
