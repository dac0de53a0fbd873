// The console's refusals: a stable code (what tests, logs and ICT's runbooks match on) and a
// message for ICT. A RefusedError, so the connector's bins print `CODE: message` and exit 3.
// Messages never carry a password, a session, a QR text or a patient number.
import { RefusedError } from '../../lib/cli.ts';

export type ConsoleErrorCode =
  | 'CONSOLE_TLS_REQUIRED'
  | 'CONSOLE_TLS_INVALID'
  | 'CONSOLE_BIND_FAILED'
  | 'CONSOLE_OIDC_CONFIG'
  | 'STAFF_ID_INVALID'
  | 'STAFF_EXISTS'
  | 'STAFF_UNKNOWN'
  | 'STAFF_ROLE_INVALID'
  | 'STAFF_PASSWORD_WEAK'
  | 'STAFF_LAST_ADMIN'
  | 'STAFF_STORE_DAMAGED'
  | 'PATIENT_NUMBER_INVALID'
  | 'DEVICE_NOT_THIS_PATIENTS'
  | 'RECORD_NOT_THIS_PATIENTS'
  | 'RECALL_RECEIPT_MISMATCH';

export class ConsoleError extends RefusedError {
  declare readonly code: ConsoleErrorCode;

  constructor(code: ConsoleErrorCode, message: string) {
    super(code, message);
    this.name = 'ConsoleError';
  }
}
