// What an API call that should be refused answered: its HTTP status and stable error code.
// Throws if the call succeeded, so a test cannot mistake an accepted request for a refusal.
import { ApiError } from '../../clients/lib/api-client.ts';

export async function refusal(promise: Promise<unknown>): Promise<{ status: number; code: string }> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof ApiError) return { status: error.status, code: error.code };
    throw error;
  }
  throw new Error('expected a refusal');
}
