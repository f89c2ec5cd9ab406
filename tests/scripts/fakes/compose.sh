#!/usr/bin/env bash
# A stand-in for `docker compose`, for the deploy script's tests: Docker's engine cannot run on
# these machines. `config` runs the real Compose binary (REAL_COMPOSE), so the file is still
# checked; every other command is appended to FAKE_COMPOSE_LOG as "UPCOACH_RELEASE<TAB>args" and
# succeeds, except `up` while UPCOACH_RELEASE is FAKE_COMPOSE_FAIL_RELEASE (a failed health check).
set -euo pipefail
for arg in "$@"; do
  if [[ $arg == config ]]; then exec "$REAL_COMPOSE" "$@"; fi
done
printf '%s\t%s\n' "${UPCOACH_RELEASE:-}" "$*" >>"$FAKE_COMPOSE_LOG"
for arg in "$@"; do
  if [[ $arg == up && ${UPCOACH_RELEASE:-} == "${FAKE_COMPOSE_FAIL_RELEASE:-}" ]]; then
    echo "dependency failed to start: container upcoach-llm-generation-1 is unhealthy" >&2
    exit 1
  fi
done
