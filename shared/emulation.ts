// Names shared by the local emulator stack and the code that runs against it.
// Production never sends or reads these: on Google Cloud the caller's identity comes from
// its service account's OAuth token, which the local stack has no way to mint or check.

/** gRPC metadata / HTTP header carrying the caller's IAM principal to a local emulator. */
export const LOCAL_PRINCIPAL_HEADER = 'x-clinic-bridge-principal';

/** The principal of a call that names none: the developer, as project owner. */
export const LOCAL_OWNER = 'user:owner@localhost';

export function serviceAccountEmail(accountId: string, projectId: string): string {
  return `${accountId}@${projectId}.iam.gserviceaccount.com`;
}

export function serviceAccountPrincipal(accountId: string, projectId: string): string {
  return `serviceAccount:${serviceAccountEmail(accountId, projectId)}`;
}

/** `npm start` writes its NAME=value environment to this file in its data directory for clients. */
export const STACK_ENV_FILE = 'stack.env';
