#!/bin/sh
# Container entrypoint of an edge agent: enrolls the agent on the first start (when the data
# folder holds no identity yet), then runs `loom agent start`. Arguments are passed on to
# `loom agent start`; --data PATH is required there.
#
# Environment (read by this script only, except LOOM_ENROLLMENT_TOKEN, which `loom agent enroll`
# reads itself):
#   LOOM_DATA_DIR          agent state folder (identity, models)   (default /var/lib/loom)
#   LOOM_COORDINATOR_URL   operator API URL, https://HOST:8443      (first start only)
#   LOOM_ENROLLMENT_TOKEN  one-time enrollment token                (first start only)
#   LOOM_ENROLL_TOKEN      old name of LOOM_ENROLLMENT_TOKEN, still read (deprecated)
#   LOOM_AGENT_NAME        display name of the site                 (first start only; default:
#                          the container's host name)
set -eu

DATA_DIR="${LOOM_DATA_DIR:-/var/lib/loom}"
LOOM_HOME="${LOOM_HOME:-/opt/loom}"

cd "$LOOM_HOME"

# `loom agent enroll` writes identity/agent.json after the key and certificates, so its presence
# marks a finished enrollment.
if [ ! -f "$DATA_DIR/identity/agent.json" ]; then
  : "${LOOM_COORDINATOR_URL:?is not set; the first start enrolls the agent and needs it (https://HOST:8443)}"
  if [ -z "${LOOM_ENROLLMENT_TOKEN:-}" ] && [ -n "${LOOM_ENROLL_TOKEN:-}" ]; then
    echo "loom: LOOM_ENROLL_TOKEN is deprecated; set LOOM_ENROLLMENT_TOKEN instead" >&2
    LOOM_ENROLLMENT_TOKEN="$LOOM_ENROLL_TOKEN"
  fi
  : "${LOOM_ENROLLMENT_TOKEN:?is not set; the first start enrolls the agent and needs a one-time token}"
  echo "loom: no agent identity in $DATA_DIR; enrolling with $LOOM_COORDINATOR_URL"
  # The token goes through the environment, which `loom agent enroll` reads when no token flag is
  # given: a --token argument would be visible to every user of the host in `ps`.
  export LOOM_ENROLLMENT_TOKEN
  if [ -n "${LOOM_AGENT_NAME:-}" ]; then
    node cli/loom.js agent enroll --coordinator "$LOOM_COORDINATOR_URL" \
      --data-dir "$DATA_DIR" --name "$LOOM_AGENT_NAME"
  else
    node cli/loom.js agent enroll --coordinator "$LOOM_COORDINATOR_URL" --data-dir "$DATA_DIR"
  fi
fi

# The token is spent; the agent process has no use for it.
unset LOOM_ENROLLMENT_TOKEN LOOM_ENROLL_TOKEN
exec node cli/loom.js agent start --data-dir "$DATA_DIR" "$@"
