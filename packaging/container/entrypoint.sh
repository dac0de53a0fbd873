#!/usr/bin/env bash
# The connector container's entry point.
#   run           (default) the drop folder (`cb-connector watch`) and the front-desk console
#                 side by side, as the two systemd units run them. When either stops, the other
#                 is stopped and the container exits with the first one's status, so the
#                 runtime's restart policy brings both back: half a connector is not healthy.
#   healthcheck   GET /healthz of the console on 127.0.0.1 (the image's HEALTHCHECK).
#   anything else a cb-connector command, e.g. `keys --hospital <id>`, `configure --from …`,
#                 `staff add …`, `witness`.
# Settings come from the environment (docker run --env-file): CB_CONNECTOR_HOME, CB_DROP_DIR,
# CB_CONSOLE_PORT, CB_CONSOLE_TLS_CERT / CB_CONSOLE_TLS_KEY (serve beyond the container's
# loopback, which the console allows only with TLS), CB_OPERATOR, CB_HSM_PIN, GCLOUD_PROJECT,
# GOOGLE_APPLICATION_CREDENTIALS.
set -euo pipefail

# Where the image puts the connector (CB_APP_DIR only for test/unit/packaging.test.ts).
APP="${CB_APP_DIR:-/opt/clinic-bridge}"
# The flags the bin's shebang and `npm run cb-connector` use.
NODE_FLAGS=(--max-semi-space-size=2 --max-old-space-size=96 --liftoff-only --no-opt --no-maglev --expose-gc)
PORT="${CB_CONSOLE_PORT:-8480}"

# Run in the background (`connector … &`): the subshell becomes node itself, so $! is node's
# pid and a TERM sent to it reaches the connector, not a shell that would leave node running.
connector() {
  exec node "${NODE_FLAGS[@]}" "$APP/clients/cb-connector.ts" "$@"
}

run() {
  local console_args=(console --port "$PORT")
  if [ -n "${CB_CONSOLE_TLS_CERT:-}" ]; then
    console_args+=(--host 0.0.0.0 --tls-cert "$CB_CONSOLE_TLS_CERT"
      --tls-key "${CB_CONSOLE_TLS_KEY:?CB_CONSOLE_TLS_KEY must be set with CB_CONSOLE_TLS_CERT}")
  fi
  mkdir -p "$CB_DROP_DIR/inbox"
  connector watch "$CB_DROP_DIR" &
  local watch_pid=$!
  connector "${console_args[@]}" &
  local console_pid=$!
  # docker stop sends TERM to this shell (PID 1): pass it on to both.
  trap 'kill -TERM "$watch_pid" "$console_pid" 2>/dev/null || true' TERM INT
  local status=0
  wait -n "$watch_pid" "$console_pid" || status=$?
  kill -TERM "$watch_pid" "$console_pid" 2>/dev/null || true
  wait || true
  exit "$status"
}

healthcheck() {
  # Under TLS the console's certificate names the front desk's host name, not 127.0.0.1, so the
  # probe does not check it: it talks to its own container over loopback and sends nothing.
  exec node -e '
    const tls = Boolean(process.env.CB_CONSOLE_TLS_CERT);
    const port = Number(process.env.CB_CONSOLE_PORT || 8480);
    const client = require(tls ? "node:https" : "node:http");
    const request = client.get(
      { host: "127.0.0.1", port, path: "/healthz", timeout: 4000, rejectUnauthorized: false },
      (response) => {
        response.resume();
        process.exit(response.statusCode === 200 ? 0 : 1);
      },
    );
    request.on("timeout", () => request.destroy(new Error("timeout")));
    request.on("error", () => process.exit(1));
  '
}

case "${1:-run}" in
  run) run ;;
  healthcheck) healthcheck ;;
  *) exec node "${NODE_FLAGS[@]}" "$APP/clients/cb-connector.ts" "$@" ;;
esac
