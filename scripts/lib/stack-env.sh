# shellcheck shell=bash
# shellcheck disable=SC2034  # VALUES and RAW are filled for the caller
# What the deploy script and the Makefile's compose targets share about an environment: reading
# its .env.<environment> file as docker compose does, and its internal tokens. Sourced, not run;
# the caller defines fail MESSAGE [STATUS].

# read_env_file FILE: fills the global associative arrays VALUES (as compose resolves them) and
# RAW (as written). KEY=VALUE lines, # comments, optional quotes, ${NAME} and ${NAME:-default}
# taken from the shell; a variable exported in the shell wins over the file.
declare -A VALUES=() RAW=()
expand() {  # expand TEXT: replaces ${NAME} and ${NAME:-default} with the shell's values
  local text=$1 out="" name default
  while [[ $text =~ ^([^$]*)\$\{([A-Za-z_][A-Za-z0-9_]*)(:-([^}]*))?\}(.*)$ ]]; do
    out+=${BASH_REMATCH[1]}; name=${BASH_REMATCH[2]}; default=${BASH_REMATCH[4]}
    text=${BASH_REMATCH[5]}
    if [[ -n ${!name:-} ]]; then out+=${!name}; else out+=$default; fi
  done
  printf '%s' "$out$text"
}
read_env_file() {
  local line key value
  while IFS= read -r line || [[ -n $line ]]; do
    [[ $line =~ ^[[:space:]]*(export[[:space:]]+)?([A-Za-z_][A-Za-z0-9_]*)=(.*)$ ]] || continue
    key=${BASH_REMATCH[2]}; value=${BASH_REMATCH[3]}
    if [[ $value =~ ^\"(.*)\"[[:space:]]*(#.*)?$ ]] || [[ $value =~ ^\'(.*)\'[[:space:]]*(#.*)?$ ]]; then
      value=${BASH_REMATCH[1]}
    else
      value=${value%%[[:space:]]#*}
      value=${value%"${value##*[![:space:]]}"}
    fi
    RAW[$key]=$value
    if [[ -n ${!key:-} ]]; then VALUES[$key]=${!key}; else VALUES[$key]=$(expand "$value"); fi
  done <"$1"
}

# load_internal_tokens ENVIRONMENT STATE_DIR DRY_RUN: exports INTERNAL_TOKEN and
# INTERNAL_ADMIN_TOKEN. Every gRPC service refuses calls without INTERNAL_TOKEN; IndexContent and
# PullModel also need INTERNAL_ADMIN_TOKEN. Production takes both from the secrets manager
# (exported in the shell). Elsewhere, unless exported, they are generated once per environment and
# kept (mode 0600) in STATE_DIR/internal-tokens.env, so redeploys, rollbacks and `make up`/`down`
# keep talking to each other; a dry run (DRY_RUN=1) writes nothing.
random_token() { head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n'; }
load_internal_tokens() {
  local environment=$1 state_dir=$2 dry_run=$3 file=$2/internal-tokens.env
  if [[ -z ${INTERNAL_TOKEN:-} ]]; then
    [[ $environment == production ]] \
      && fail "INTERNAL_TOKEN is not set: production takes it from the secrets manager (export INTERNAL_TOKEN, 16+ characters)"
    if [[ -f $file ]]; then
      # shellcheck disable=SC1090
      source "$file"
    else
      INTERNAL_TOKEN=$(random_token)
      INTERNAL_ADMIN_TOKEN=${INTERNAL_ADMIN_TOKEN:-$(random_token)}
      if ((!dry_run)); then
        mkdir -p "$state_dir"
        (umask 077 && printf 'INTERNAL_TOKEN=%s\nINTERNAL_ADMIN_TOKEN=%s\n' \
          "$INTERNAL_TOKEN" "$INTERNAL_ADMIN_TOKEN" >"$file")
      fi
    fi
  fi
  ((${#INTERNAL_TOKEN} >= 16)) || fail "INTERNAL_TOKEN is shorter than 16 characters"
  export INTERNAL_TOKEN INTERNAL_ADMIN_TOKEN=${INTERNAL_ADMIN_TOKEN:-}
}
