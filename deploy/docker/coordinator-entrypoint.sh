#!/bin/sh
# Container entrypoint of the coordinator: initialises the coordinator on the first start (when
# the data folder holds no CA key yet), then runs `loom coordinator start`. Arguments are passed
# on to `loom coordinator start`.
#
# Environment (read by this script only):
#   LOOM_DATA_DIR    state folder                  (default /var/lib/loom)
#   LOOM_INIT_HOSTS  names and addresses for the server certificate, separated by spaces or
#                    commas; used on the first start only (default "coordinator localhost")
# The coordinator's own settings (LOOM_API_PORT, LOOM_AGENT_PORT, LOOM_ENGINE, ...) are read by
# `loom coordinator start` itself.
set -eu

DATA_DIR="${LOOM_DATA_DIR:-/var/lib/loom}"
INIT_HOSTS="${LOOM_INIT_HOSTS:-coordinator localhost}"
LOOM_HOME="${LOOM_HOME:-/opt/loom}"

cd "$LOOM_HOME"

# Runs `loom coordinator init` with one --cert-host flag per name in INIT_HOSTS. A function has its
# own positional parameters, so building the argument list here leaves the script's "$@" alone.
init_coordinator() {
  set -- coordinator init --data-dir "$DATA_DIR"
  hosts=$(printf '%s\n' "$INIT_HOSTS" | tr ',' ' ')
  set -f
  for h in $hosts; do
    set -- "$@" --cert-host "$h"
  done
  set +f
  node cli/loom.js "$@"
}

# `loom coordinator init` writes pki/ca-key.pem first, and refuses a data folder that holds it or
# any other part of a coordinator (pki/, db/, coordinator.json), naming what it found. So the key
# marks a coordinator to start; a folder with other parts only (an interrupted first start) stops
# the container with init's message rather than getting a new CA. `init --force`, run by hand,
# starts such a folder over.
if [ ! -f "$DATA_DIR/pki/ca-key.pem" ]; then
  echo "loom: no coordinator in $DATA_DIR; initialising it (certificate hosts: $INIT_HOSTS)"
  init_coordinator
  echo "loom: the admin token above is printed only this once; later starts do not show it again"
fi

exec node cli/loom.js coordinator start --data-dir "$DATA_DIR" "$@"
