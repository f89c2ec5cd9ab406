#!/usr/bin/env bash
# Runs a command with what a compose environment's commands need beyond its env file: the
# Makefile's `up`, `down` and `verify` go through it.
#
# Usage: scripts/with-stack-env.sh --env development|staging|production [--keys] -- COMMAND...
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
PROG=with-stack-env

usage() {
  cat <<'USAGE'
Usage: scripts/with-stack-env.sh --env NAME [--keys] -- COMMAND [ARGS...]

Runs COMMAND from the repository root with INTERNAL_TOKEN and INTERNAL_ADMIN_TOKEN exported (or,
with --keys, the API keys instead), as docker-compose.yml requires them: taken from the shell when exported (production: always, from
the secrets manager), else generated once per environment and kept in
$DEPLOY_STATE_DIR/<env>/internal-tokens.env (default .deploy/; mode 0600), the file
scripts/deploy-llm-stack.sh uses too.

  --env NAME   development, staging or production (its file is .env.<NAME>)
  --keys       export LLM_API_KEY (the first key of the env file's list) and LLM_ADMIN_KEY,
               unless the shell exports them, instead of the internal tokens: what
               scripts/verify-llm-stack.sh sends to the gateway
  -h, --help   show this help
USAGE
}

fail() { echo "$PROG: $1" >&2; exit "${2:-2}"; }
# shellcheck source=scripts/lib/stack-env.sh
source "$ROOT/scripts/lib/stack-env.sh"

ENV_NAME=""
KEYS=0
while (($#)); do
  case $1 in
    --env) ENV_NAME=${2:-}; shift $(($# > 1 ? 2 : 1)) ;;
    --env=*) ENV_NAME=${1#*=}; shift ;;
    --keys) KEYS=1; shift ;;
    -h|--help) usage; exit 0 ;;
    --) shift; break ;;
    *) fail "unknown option '$1': see --help" ;;
  esac
done
case $ENV_NAME in
  development|staging|production) ;;
  "") fail "--env is required: use --env development, staging or production" ;;
  *) fail "unknown environment '$ENV_NAME': use --env development, staging or production" ;;
esac
(($#)) || fail "no command given: see --help"
cd "$ROOT"
ENV_FILE=.env.$ENV_NAME
[[ -f $ENV_FILE ]] || fail "env file $ENV_FILE not found: copy .env.example to $ENV_FILE and fill it in"

if ((KEYS)); then
  read_env_file "$ENV_FILE"
  key=${VALUES[LLM_API_KEY]:-}
  key=${key%%,*}
  key=${key// /}
  if [[ -n $key ]]; then
    export LLM_API_KEY=$key
  elif [[ ${RAW[LLM_API_KEY]:-} =~ \$\{([A-Za-z_][A-Za-z0-9_]*) ]]; then
    echo "$PROG: warning: LLM_API_KEY comes from \${${BASH_REMATCH[1]}}, which is not set: no key is sent" >&2
  fi
  [[ -n ${VALUES[LLM_ADMIN_KEY]:-} ]] && export LLM_ADMIN_KEY=${VALUES[LLM_ADMIN_KEY]}
else
  load_internal_tokens "$ENV_NAME" "${DEPLOY_STATE_DIR:-.deploy}/$ENV_NAME" 0
fi
exec "$@"
