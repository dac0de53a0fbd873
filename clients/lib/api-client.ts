// The device SDK's API client (sdk/api-client.ts), as the Node bins use it: before its first
// call each client makes a plain TCP connect with a short deadline, so a silent host is named
// within seconds instead of after the operating system's connect timeout.
import {
  createApiClient as createSdkApiClient,
  type ApiClient,
  type ApiClientOptions,
} from '../../sdk/api-client.ts';
import { assertReachable, CONNECT_TIMEOUT_MS, displayUrl } from './reachability.ts';

export { ApiError, NetworkError, responseBytes, withTransientRetries } from '../../sdk/api-client.ts';
export type { ApiCall, ApiClient, RequestSigner } from '../../sdk/api-client.ts';

export function createApiClient(
  options: Omit<ApiClientOptions, 'checkReachable'> & {
    /** How long the service may take to accept the connection (default 5 s). */
    readonly connectTimeoutMs?: number;
  },
): ApiClient {
  const timeoutMs = options.connectTimeoutMs ?? CONNECT_TIMEOUT_MS;
  return createSdkApiClient({
    ...options,
    checkReachable: (apiBase) => assertReachable(apiBase, displayUrl(apiBase), timeoutMs),
  });
}
