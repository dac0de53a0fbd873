// The hospital's own audit trail of the console (NEN 7513: who looked at or did what, for which
// patient, when, with what outcome): JSON lines in an owner-only file in the connector's home,
// beside the enrolment and send journals that already name the member of staff. It stays inside
// the hospital; the cloud sees each action only under the staff member's pseudonym
// (operatorRef), which is written here too so the two trails can be joined by the hospital.
import { appendFile, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { exists, writePrivateFile } from '../../lib/files.ts';

export const AUDIT_FILE = 'console-audit.jsonl';

export type AuditAction =
  | 'signin'
  | 'signin.refused'
  | 'signout'
  | 'patient.lookup'
  | 'invitation.created'
  | 'device.revoked'
  | 'record.recalled'
  | 'staff.added'
  | 'staff.removed'
  | 'staff.password';

export interface AuditLine {
  readonly at: string;
  readonly action: AuditAction;
  /** The signed-in member of staff (for a refused sign-in: the account tried, if it exists). */
  readonly staffId?: string;
  readonly operatorRef?: string;
  readonly via: 'password' | 'oidc' | 'session';
  readonly outcome: string;
  readonly patientNumber?: string;
  readonly invitationId?: string;
  readonly deviceId?: string;
  readonly recordId?: string;
  readonly subject?: string;
  readonly client?: string;
}

export class ConsoleAudit {
  readonly path: string;
  #queue: Promise<void> = Promise.resolve();

  constructor(homeDir: string) {
    this.path = join(homeDir, AUDIT_FILE);
  }

  /** Appends one line; lines are written in call order (one writer per console). */
  write(line: Omit<AuditLine, 'at'> & { at?: string }): Promise<void> {
    const text = `${JSON.stringify({ at: new Date().toISOString(), ...line })}\n`;
    this.#queue = this.#queue.then(async () => {
      if (!(await exists(this.path))) await writePrivateFile(this.path, '');
      await appendFile(this.path, text);
    });
    return this.#queue;
  }

  async read(): Promise<AuditLine[]> {
    const text = await readFile(this.path, 'utf8').catch(() => '');
    return text
      .split('\n')
      .filter((line) => line.trim() !== '')
      .map((line) => JSON.parse(line) as AuditLine);
  }
}
