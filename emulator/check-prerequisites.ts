// Says in one line whether this machine can run the local stack, and what to install if not.
import { FirestoreUnavailableError, locateFirestoreJar, checkJava } from './firestore/server.ts';

try {
  const jar = locateFirestoreJar();
  checkJava();
  console.log(`ok: Node ${process.version}, Java on PATH, Firestore emulator at ${jar}`);
} catch (error) {
  if (!(error instanceof FirestoreUnavailableError)) throw error;
  console.error(error.message);
  process.exitCode = 1;
}
