// The connector's witness keeps what it follows of a hospital's audit log in a file; the
// following itself is the device SDK's (sdk/log-follower.ts), shared by witness and phone.
import { followedLogSchema, type FollowedLog } from '../../sdk/log-follower.ts';
import { readJsonFile, writeJsonFile, exists } from './files.ts';

export { followCheckpoint, followedLogSchema, trustedOf } from '../../sdk/log-follower.ts';
export type { CheckpointAnswer, Followed, FollowedLog, FollowOptions } from '../../sdk/log-follower.ts';

/** The saved state at `path`, or undefined before the first accepted checkpoint. */
export async function readFollowedLog(path: string): Promise<FollowedLog | undefined> {
  if (!(await exists(path))) return undefined;
  return readJsonFile(path, followedLogSchema, 'audit-log state');
}

/** Keeps the state atomically, owner-only. */
export async function saveFollowedLog(path: string, state: FollowedLog): Promise<void> {
  await writeJsonFile(path, followedLogSchema.parse(state));
}
