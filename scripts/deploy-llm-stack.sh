#!/usr/bin/env bash
# Deploys the UpCoach LLM stack with Docker Compose (the guide's deploy-llm-stack.sh).
#
# Usage: scripts/deploy-llm-stack.sh --env development|staging|production [--dry-run] [options]
#
# Checks the environment file before touching anything, builds the image for this release, starts
# Ollama and Redis (and vLLM in production), pulls the models (model-manager), starts the services
# waiting for their health checks, runs verify-llm-stack.sh, and records the release. If a health
# check or the verification fails it rolls back to the previous release, or stops what it started
# when there is none. --dry-run prints every step and changes nothing.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
PROG=deploy-llm-stack

usage() {
  cat <<'EOF'
Usage: scripts/deploy-llm-stack.sh --env development|staging|production [options]

Deploys the UpCoach LLM stack with Docker Compose:
  1. checks .env.<environment>: every variable of .env.example set; in production a real
     LLM_API_KEY (not a dev- key), TLS_ENABLED=true and the certificate files
  2. validates docker-compose.yml for the environment's profiles
  3. builds the image upcoach-llm:<release>
  4. starts Ollama and Redis (and vLLM in production), waiting for their health checks
  5. pulls the models and creates upcoach-assistant (model-manager, profile setup)
  6. starts the services and the gateway, waiting for their health checks (the gateway's is
     GET /readyz: 200 once a chat can be served)
  7. runs scripts/verify-llm-stack.sh against the gateway
  8. records the release; on a failed step 4-7 rolls back to the previous release (or stops
     what it started when there is none) and exits 1

Environments: development and staging run Ollama; production adds vLLM (profile production) on
the GPU and requires TLS.

Options:
  --env NAME          development, staging or production (required)
  --dry-run           print every step and command, change nothing (still checks the env file
                      and, when a compose binary is found, the compose file)
  --env-file PATH     use PATH instead of .env.<environment>
  --release TAG       image tag of this release (default: the git commit, else a timestamp)
  --timeout SECONDS   longest wait for health checks (default: 600; production 960, as
                      vLLM's first start downloads its weights)
  --skip-models       do not run model-manager
  --skip-verify       do not run verify-llm-stack.sh
  -h, --help          show this help

Environment: COMPOSE overrides the compose command (default "docker compose", else
docker-compose); DEPLOY_STATE_DIR where releases are recorded (default .deploy/). Variables
exported in the shell override the env file, as with docker compose.
Exit status: 0 deployed (or dry run), 1 deployment failed (rolled back), 2 bad input.
EOF
}

fail() { echo "$PROG: $1" >&2; exit "${2:-2}"; }
# shellcheck source=scripts/lib/stack-env.sh
source "$ROOT/scripts/lib/stack-env.sh"

# -- arguments -------------------------------------------------------------------------------------
ENV_NAME=""
ENV_FILE=""
DRY_RUN=0
RELEASE=""
TIMEOUT=""
TIMEOUT_GIVEN=0
SKIP_MODELS=0
SKIP_VERIFY=0
while (($#)); do
  case $1 in
    --env) ENV_NAME=${2:-}; shift $(($# > 1 ? 2 : 1)) ;;
    --env=*) ENV_NAME=${1#*=}; shift ;;
    --env-file) ENV_FILE=${2:-}; shift $(($# > 1 ? 2 : 1)) ;;
    --dry-run) DRY_RUN=1; shift ;;
    --release) RELEASE=${2:-}; shift $(($# > 1 ? 2 : 1)) ;;
    --timeout) TIMEOUT=${2:-}; TIMEOUT_GIVEN=1; shift $(($# > 1 ? 2 : 1)) ;;
    --skip-models) SKIP_MODELS=1; shift ;;
    --skip-verify) SKIP_VERIFY=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) fail "unknown option '$1': see --help" ;;
  esac
done
case $ENV_NAME in
  development|staging) PROFILES=() ;;
  production) PROFILES=(production) ;;
  "") fail "--env is required: use --env development, staging or production" ;;
  *) fail "unknown environment '$ENV_NAME': use --env development, staging or production" ;;
esac
# vLLM's first start downloads its weights: its health check allows 900 s (docker-compose.yml).
((TIMEOUT_GIVEN)) || { [[ $ENV_NAME == production ]] && TIMEOUT=960 || TIMEOUT=600; }
[[ $TIMEOUT =~ ^[1-9][0-9]*$ ]] || fail "--timeout must be a number of seconds, not '$TIMEOUT'"
ENV_FILE=${ENV_FILE:-$ROOT/.env.$ENV_NAME}
[[ -f $ENV_FILE ]] || fail "env file ${ENV_FILE#"$ROOT"/} not found: copy .env.example to .env.$ENV_NAME and fill it in (or pass --env-file)"
ENV_FILE=$(cd "$(dirname "$ENV_FILE")" && pwd)/$(basename "$ENV_FILE")
cd "$ROOT"
ENV_FILE=${ENV_FILE#"$ROOT"/}
if [[ -z $RELEASE ]]; then
  RELEASE=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || date -u +%Y%m%d%H%M%S)
fi
[[ $RELEASE =~ ^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$ ]] || fail "--release '$RELEASE' is not a valid image tag"

# -- 1. the environment file -----------------------------------------------------------------------
# Read like docker compose reads --env-file (scripts/lib/stack-env.sh).
read_env_file "$ENV_FILE"

mapfile -t REQUIRED < <(sed -nE 's/^([A-Z][A-Z0-9_]*)=.*/\1/p' .env.example)
for key in "${REQUIRED[@]}"; do
  if [[ -z ${RAW[$key]+set} && -z ${!key:-} ]]; then
    fail "$key is missing from $ENV_FILE: add it (see .env.example)"
  fi
  if [[ -z ${VALUES[$key]:-} ]]; then
    if [[ ${RAW[$key]:-} =~ \$\{([A-Za-z_][A-Za-z0-9_]*) ]]; then
      fail "$key is empty: $ENV_FILE takes it from \${${BASH_REMATCH[1]}}, which is not set: export ${BASH_REMATCH[1]}"
    fi
    fail "$key is empty in $ENV_FILE: give it a value (see .env.example)"
  fi
done
[[ ${VALUES[ENVIRONMENT]} == "$ENV_NAME" ]] \
  || fail "ENVIRONMENT is '${VALUES[ENVIRONMENT]}' in $ENV_FILE but --env is $ENV_NAME: fix one of them"

is_true() { [[ ${1,,} =~ ^(1|true|yes|on)$ ]]; }
is_dev_key() { [[ ${1,,} =~ ^(dev-.*|dev-key-local-only|changeme|change-me|secret|test|\$\{.*)$ ]]; }
TLS=0
is_true "${VALUES[TLS_ENABLED]}" && TLS=1
if [[ $ENV_NAME == production ]]; then
  # The gateway enforces the same rule at start-up (upcoach_llm/gateway/settings.py); checking here first
  # means a bad production file stops the deploy before anything is built or started.
  IFS=',' read -ra keys <<<"${VALUES[LLM_API_KEY]}"
  for k in "${keys[@]}"; do
    k=${k// /}
    if is_dev_key "$k"; then
      fail "LLM_API_KEY is a development key: production needs the real key (export SECRET_LLM_API_KEY from the secrets manager)"
    fi
    # MIN_SECRET_CHARS in upcoach_llm/common/limits.py
    ((${#k} >= 16)) || fail "LLM_API_KEY: each key needs at least 16 characters in production (a short key can be guessed)"
  done
  if [[ -n ${VALUES[LLM_ADMIN_KEY]:-} ]]; then
    is_dev_key "${VALUES[LLM_ADMIN_KEY]}" && fail "LLM_ADMIN_KEY is a development key: production needs a real one, or none"
    ((${#VALUES[LLM_ADMIN_KEY]} >= 16)) || fail "LLM_ADMIN_KEY: at least 16 characters are required in production"
  fi
  ((TLS)) || fail "TLS_ENABLED must be true in production: set TLS_ENABLED=true in $ENV_FILE"
  cert_dir=${VALUES[TLS_CERT_DIR]:-./certs}
  [[ $cert_dir == /* ]] || cert_dir=${cert_dir#./}
  for var in TLS_CERT_FILE TLS_KEY_FILE; do
    [[ -n ${VALUES[$var]:-} ]] || fail "$var is not set in $ENV_FILE: TLS needs it"
    file=$cert_dir/$(basename "${VALUES[$var]}")
    [[ -f $file ]] || fail "$var: $file not found: put the certificate and key in TLS_CERT_DIR ($cert_dir)"
  done
fi

# -- the compose command ---------------------------------------------------------------------------
COMPOSE_CMD=()
if [[ -n ${COMPOSE:-} ]]; then
  read -ra COMPOSE_CMD <<<"$COMPOSE"
elif command -v docker >/dev/null && docker compose version >/dev/null 2>&1; then
  COMPOSE_CMD=(docker compose)
elif command -v docker-compose >/dev/null; then
  COMPOSE_CMD=(docker-compose)
fi
if ((${#COMPOSE_CMD[@]} == 0)) && ((!DRY_RUN)); then
  fail "docker compose not found: install Docker with Compose v2 (>= 2.20), or set COMPOSE"
fi
SHOWN_COMPOSE=("${COMPOSE_CMD[@]}")
((${#SHOWN_COMPOSE[@]})) || SHOWN_COMPOSE=(docker compose)
PROFILE_ARGS=()
for p in "${PROFILES[@]}"; do PROFILE_ARGS+=(--profile "$p"); done
BASE=(-f docker-compose.yml --env-file "$ENV_FILE" "${PROFILE_ARGS[@]}")
INFRA=(ollama redis)
[[ $ENV_NAME == production ]] && INFRA+=(vllm)
SCHEME=http; VERIFY_ARGS=()
((TLS)) && { SCHEME=https; VERIFY_ARGS=(--insecure); }
GATEWAY_URL="$SCHEME://localhost:${VALUES[GATEWAY_PORT]}"
STATE_DIR=${DEPLOY_STATE_DIR:-.deploy}/$ENV_NAME
PREVIOUS=$(cat "$STATE_DIR/current" 2>/dev/null || true)

# -- internal tokens (scripts/lib/stack-env.sh) -----------------------------------------------------
load_internal_tokens "$ENV_NAME" "$STATE_DIR" "$DRY_RUN"

# -- running steps ---------------------------------------------------------------------------------
STEP=0
TOTAL=8
step() { STEP=$((STEP + 1)); echo "[$STEP/$TOTAL] $*"; }
show() { local words; words=$(printf '%q ' "${@:2}"); printf '      %s %s\n' "$1" "${words% }"; }
# compose_run [VAR=VALUE...] -- ARGS: runs (or, in a dry run, prints) one compose command
compose_run() {
  local vars=()
  while [[ $1 != -- ]]; do vars+=("$1"); shift; done
  shift
  if ((DRY_RUN)); then show "would run:" env "${vars[@]}" "${SHOWN_COMPOSE[@]}" "${BASE[@]}" "$@"; return 0; fi
  show "\$" "${SHOWN_COMPOSE[@]}" "$@"
  env "${vars[@]}" "${COMPOSE_CMD[@]}" "${BASE[@]}" "$@"
}

echo "==> deploying the UpCoach LLM stack: environment $ENV_NAME, release $RELEASE" \
     "(profiles: ${PROFILES[*]:-none})$( ((DRY_RUN)) && echo ' - DRY RUN, nothing is changed')"
step "check $ENV_FILE: ${#REQUIRED[@]} variables set, ENVIRONMENT=$ENV_NAME$( [[ $ENV_NAME == production ]] && echo ', real API key, TLS on, certificate found')"
echo "      ok"

step "validate docker-compose.yml for profiles: ${PROFILES[*]:-none}"
if ((${#COMPOSE_CMD[@]})); then
  if ! out=$(env UPCOACH_RELEASE="$RELEASE" "${COMPOSE_CMD[@]}" "${BASE[@]}" config -q 2>&1); then
    fail "docker-compose.yml is not valid for $ENV_NAME: $(tail -n 1 <<<"$out")"
  fi
  echo "      ok"
else
  echo "      skipped: no compose command found (a real deploy needs one)"
fi

step "build the image upcoach-llm:$RELEASE"
compose_run UPCOACH_RELEASE="$RELEASE" -- build || fail "image build failed: nothing was started" 1

rollback() {  # rollback REASON: puts the previous release back, or stops this one; exits 1
  local reason=$1
  echo "==> $reason: rolling back" >&2
  if [[ -n $PREVIOUS ]]; then
    if compose_run UPCOACH_RELEASE="$PREVIOUS" -- up -d --wait --wait-timeout "$TIMEOUT"; then
      fail "$reason; rolled back to release $PREVIOUS" 1
    fi
    fail "$reason; the rollback to release $PREVIOUS failed too: see '${SHOWN_COMPOSE[*]} ps'" 1
  fi
  compose_run UPCOACH_RELEASE="$RELEASE" -- down || true
  fail "$reason; no previous release: stopped what this deploy started" 1
}

step "start ${INFRA[*]} and wait for their health checks (up to ${TIMEOUT}s)"
compose_run UPCOACH_RELEASE="$RELEASE" -- up -d --wait --wait-timeout "$TIMEOUT" "${INFRA[@]}" \
  || rollback "health check failed for ${INFRA[*]}"

step "pull the models and create upcoach-assistant (model-manager)"
if ((SKIP_MODELS)); then
  echo "      skipped (--skip-models)"
else
  compose_run UPCOACH_RELEASE="$RELEASE" -- --profile setup run --rm model-manager \
    || rollback "model setup failed"
fi

step "start the services and the gateway, and wait until they are healthy and the gateway is ready (/readyz, up to ${TIMEOUT}s)"
compose_run UPCOACH_RELEASE="$RELEASE" -- up -d --wait --wait-timeout "$TIMEOUT" \
  || rollback "health check failed for the services"

step "verify the stack at $GATEWAY_URL"
if ((SKIP_VERIFY)); then
  echo "      skipped (--skip-verify)"
elif ((DRY_RUN)); then
  show "would run:" scripts/verify-llm-stack.sh --url "$GATEWAY_URL" "${VERIFY_ARGS[@]}"
else
  show "\$" scripts/verify-llm-stack.sh --url "$GATEWAY_URL" "${VERIFY_ARGS[@]}"
  LLM_API_KEY=${VALUES[LLM_API_KEY]%%,*} LLM_ADMIN_KEY=${VALUES[LLM_ADMIN_KEY]:-} \
    scripts/verify-llm-stack.sh \
    --url "$GATEWAY_URL" "${VERIFY_ARGS[@]}" || rollback "verification failed"
fi

step "record release $RELEASE as current for $ENV_NAME (previous: ${PREVIOUS:-none})"
if ((DRY_RUN)); then
  show "would write:" "$STATE_DIR/current"
  echo "      on a failed step 4-7: $( [[ -n $PREVIOUS ]] && echo "roll back to release $PREVIOUS" || echo "stop this release (compose down)")"
  echo "==> dry run complete: nothing was changed"
  exit 0
fi
mkdir -p "$STATE_DIR"
[[ -n $PREVIOUS ]] && printf '%s\n' "$PREVIOUS" >"$STATE_DIR/previous"
printf '%s\n' "$RELEASE" >"$STATE_DIR/current"
echo "==> deployed release $RELEASE to $ENV_NAME: $GATEWAY_URL"
