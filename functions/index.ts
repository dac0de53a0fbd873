// The deployment archive's entry point (package.json `main`): registers every function under its
// own name. Each deployed Cloud Function loads this one archive and serves the target named by
// its entry point; the others stay registered but unbuilt (a function is built on its first
// request), so no instance ever loads another function's key.
import './health/index.ts';
import './pairing/index.ts';
import './ingest/index.ts';
import './records/index.ts';
import './retention/index.ts';
import './sequencer/index.ts';
