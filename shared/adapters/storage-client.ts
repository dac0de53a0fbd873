// The Cloud Storage client alone (shared/adapters/google-clients.ts re-exports it beside the
// others). On Google Cloud it finds its endpoint and credentials itself; against the local stack
// only the endpoint differs, STORAGE_EMULATOR_HOST.
import { Storage } from '@google-cloud/storage';

export function createStorage(projectId: string, env: Readonly<Record<string, string | undefined>>): Storage {
  const emulator = env.STORAGE_EMULATOR_HOST;
  // A custom apiEndpoint skips authentication unless asked, which is what an emulator wants.
  return new Storage({ projectId, ...(emulator ? { apiEndpoint: emulator } : {}) });
}
