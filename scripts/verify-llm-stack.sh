#!/usr/bin/env bash
# Verifies a running UpCoach LLM stack through its gateway (the guide's verify-llm-stack.sh).
#
# Usage: scripts/verify-llm-stack.sh [--url URL] [options]
#
# Checks, in order, each a row of the table printed at the end:
#   1. service availability  GET /health: the gateway answers 200 (503: no chat can be served),
#                            every part it watches is healthy (why not, with the admin key)
#   2. model loading         GET /api/models: the catalog lists models
#   3. API functionality     POST /api/chat/completions, POST /api/coaching/chat,
#                            POST /api/embeddings, GET /api/metrics answer with their shapes
#                            (metrics: with the admin key, skipped without one while keys are on)
#   4. response quality      the chat reply is words, not noise; related sentences embed closer
#                            than unrelated ones
#   5. latency benchmark     RUNS short completions: p50 and p95 against --max-latency-ms
# Exit status: 0 when every check passes, 1 when one fails (the table names it), 2 on bad usage.
set -uo pipefail

usage() {
  cat <<'EOF'
Usage: scripts/verify-llm-stack.sh [--url URL] [options]

Checks a running UpCoach LLM stack through its gateway: service availability (/health), model
loading (/api/models), API functionality (chat completions, coaching chat, embeddings, metrics),
response quality sanity, and a latency benchmark. Prints a table; exits 1 if any check fails.

Options:
  --url URL              gateway base URL (default: $VERIFY_URL, else
                         http://localhost:$GATEWAY_PORT, port 3100)
  --api-key KEY          API key sent as "Authorization: Bearer KEY" (default: $LLM_API_KEY)
  --admin-key KEY        sent instead on /health, whose rows then say why a part is unhealthy,
                         and on /api/metrics, which needs it while the gateway's keys are on
                         (default: $LLM_ADMIN_KEY)
  --model NAME           chat model to ask (default: none, the router picks)
  --runs N               completions timed by the latency benchmark (default: 5)
  --max-latency-ms MS    p95 limit for the latency benchmark (default: 10000; the guide's
                         CPU coaching chat is 2.5 s on 8+ cores)
  --timeout SECONDS      limit for each request (default: 120)
  --insecure             accept a self-signed TLS certificate
  -h, --help             show this help
EOF
}

die_usage() { echo "verify-llm-stack: $1 (see --help)" >&2; exit 2; }

URL=${VERIFY_URL:-http://localhost:${GATEWAY_PORT:-3100}}
API_KEY=${LLM_API_KEY:-}
ADMIN_KEY=${LLM_ADMIN_KEY:-}
MODEL=""
RUNS=5
MAX_LATENCY_MS=10000
TIMEOUT=120
INSECURE=()
while (($#)); do
  case $1 in
    --url) URL=${2:?--url needs a value}; shift 2 ;;
    --api-key) API_KEY=${2:?--api-key needs a value}; shift 2 ;;
    --admin-key) ADMIN_KEY=${2:?--admin-key needs a value}; shift 2 ;;
    --model) MODEL=${2:?--model needs a value}; shift 2 ;;
    --runs) RUNS=${2:?--runs needs a value}; shift 2 ;;
    --max-latency-ms) MAX_LATENCY_MS=${2:?--max-latency-ms needs a value}; shift 2 ;;
    --timeout) TIMEOUT=${2:?--timeout needs a value}; shift 2 ;;
    --insecure) INSECURE=(--insecure); shift ;;
    -h|--help) usage; exit 0 ;;
    *) die_usage "unknown option $1" ;;
  esac
done
[[ $RUNS =~ ^[1-9][0-9]*$ ]] || die_usage "--runs must be a positive integer, not '$RUNS'"
[[ $MAX_LATENCY_MS =~ ^[0-9]+$ ]] || die_usage "--max-latency-ms must be a number of ms"
URL=${URL%/}
PY=${PYTHON:-python3}
command -v curl >/dev/null || { echo "verify-llm-stack: curl is not installed" >&2; exit 2; }
command -v "$PY" >/dev/null || { echo "verify-llm-stack: $PY is not installed (set PYTHON)" >&2; exit 2; }

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

# -- results ---------------------------------------------------------------------------------------
ROWS=()
FAILED=()
record() {  # record CHECK PASS|FAIL|SKIP DETAIL [MS]
  ROWS+=("$1"$'\t'"$2"$'\t'"${4:--}"$'\t'"$3")
  [[ $2 == FAIL ]] && FAILED+=("$1")
  return 0
}

# -- HTTP and JSON ---------------------------------------------------------------------------------
# request METHOD PATH [JSON]: sets CODE (000 when unreachable), MS, OUT (body file), ERR;
# sends REQUEST_KEY when set, else API_KEY
N=0
request() {
  local method=$1 path=$2 body=${3:-} meta
  N=$((N + 1)); OUT="$WORK/$N.json"
  local args=(-sS -X "$method" -o "$OUT" -w '%{http_code} %{time_total}' --max-time "$TIMEOUT"
              "${INSECURE[@]}" -H 'Accept: application/json')
  local key=${REQUEST_KEY:-$API_KEY}
  [[ -n $key ]] && args+=(-H "Authorization: Bearer $key")
  [[ -n $body ]] && args+=(-H 'Content-Type: application/json' --data "$body")
  if meta=$(curl "${args[@]}" "$URL$path" 2>"$WORK/curl.err"); then ERR=""; else
    ERR=$(head -c 200 "$WORK/curl.err"); fi
  CODE=${meta%% *}; CODE=${CODE:-000}
  MS=$(awk -v t="${meta##* }" 'BEGIN { printf "%d", t * 1000 }')
  [[ -f $OUT ]] || : >"$OUT"
}

CHECKS="$(cd "$(dirname "$0")" && pwd)/verify_checks.py"
judge() { "$PY" "$CHECKS" "$1" "$2" 2>&1; }  # judge KIND FILE: see verify_checks.py

error_of() {  # a short reason for a failed request
  if [[ $CODE == 000 ]]; then echo "unreachable: ${ERR:-no answer}"; return; fi
  local message
  message=$(judge error "$OUT")
  echo "HTTP $CODE${message:+: $message}"
}

# check NAME KIND WHAT: records a PASS/FAIL row for the last request, judged by KIND when it is 200
check() {
  local name=$1 kind=$2 what=$3 verdict
  if [[ $CODE != 200 ]]; then record "$name" FAIL "$what $(error_of)" "$MS"; return; fi
  verdict=$(judge "$kind" "$OUT")
  case ${verdict%%$'\t'*} in
    PASS|FAIL) record "$name" "${verdict%%$'\t'*}" "${verdict#*$'\t'}" "$MS" ;;
    *) record "$name" FAIL "$what: could not judge the reply: ${verdict:0:80}" "$MS" ;;
  esac
}

# judge_file NAME KIND FILE: records the verdict of KIND on an earlier reply
judge_file() {
  local verdict
  verdict=$(judge "$2" "$3")
  case ${verdict%%$'\t'*} in
    PASS|FAIL) record "$1" "${verdict%%$'\t'*}" "${verdict#*$'\t'}" ;;
    *) record "$1" FAIL "could not judge: ${verdict:0:80}" ;;
  esac
}

json_str() { "$PY" -c 'import json, sys; print(json.dumps(sys.argv[1]))' "$1"; }
chat_body() {  # chat_body PROMPT MAX_TOKENS
  local model=""
  [[ -n $MODEL ]] && model="\"model\": $(json_str "$MODEL"), "
  printf '{%s"messages": [{"role": "user", "content": %s}], "max_tokens": %d}' \
    "$model" "$(json_str "$1")" "$2"
}

# -- 1. service availability -----------------------------------------------------------------------
REQUEST_KEY=$ADMIN_KEY request GET /health
GATEWAY_UP=0
if [[ $CODE == 000 ]]; then
  record "availability: gateway" FAIL "$URL: $(error_of)"
else
  GATEWAY_UP=1
  if [[ $CODE == 200 ]]; then
    record "availability: gateway" PASS "$URL/health answers" "$MS"
  else
    record "availability: gateway" FAIL "/health $(error_of)" "$MS"
  fi
  while IFS=$'\t' read -r name verdict detail; do
    [[ -n $name ]] && record "availability: $name" "$verdict" "$detail"
  done < <(judge health "$OUT")
fi

CHECK_NAMES=("models: catalog" "api: chat completions" "api: coaching chat" "api: embeddings"
             "api: metrics" "quality: chat reply" "quality: embeddings" "latency: chat p95")
if ((!GATEWAY_UP)); then
  for name in "${CHECK_NAMES[@]}"; do record "$name" SKIP "gateway unreachable"; done
else
  # -- 2. model loading ----------------------------------------------------------------------------
  request GET /api/models
  check "models: catalog" models /api/models

  # -- 3. API functionality ------------------------------------------------------------------------
  request POST /api/chat/completions "$(chat_body "Give me a motivation tip" 60)"
  check "api: chat completions" chat /api/chat/completions
  CHAT_OUT=$OUT

  request POST /api/coaching/chat '{"messages": [{"role": "user", "content": "Help me build a morning routine"}], "context_type": "habits"}'
  check "api: coaching chat" coaching /api/coaching/chat

  request POST /api/embeddings '{"input": ["Help me build a morning routine", "I want a better morning routine", "Quarterly corporate tax filing deadlines"]}'
  check "api: embeddings" embeddings /api/embeddings
  EMBED_OUT=$OUT

  REQUEST_KEY=$ADMIN_KEY request GET /api/metrics
  if [[ $CODE == 401 && -z $ADMIN_KEY ]]; then
    record "api: metrics" SKIP "keys are on: /api/metrics needs --admin-key (LLM_ADMIN_KEY)" "$MS"
  else
    check "api: metrics" metrics /api/metrics
  fi

  # -- 4. response quality sanity ------------------------------------------------------------------
  judge_file "quality: chat reply" chat-quality "$CHAT_OUT"
  judge_file "quality: embeddings" embedding-quality "$EMBED_OUT"

  # -- 5. latency benchmark ------------------------------------------------------------------------
  # No temperature or seed: the gateway caches only reproducible requests, so each one is served.
  TIMES=()
  LATENCY_ERR=""
  for ((i = 1; i <= RUNS; i++)); do
    request POST /api/chat/completions "$(chat_body "Quick tip number $i for staying hydrated" 16)"
    if [[ $CODE == 200 ]]; then TIMES+=("$MS"); else LATENCY_ERR=$(error_of); break; fi
  done
  if [[ -n $LATENCY_ERR ]]; then
    record "latency: chat p95" FAIL "request $((${#TIMES[@]} + 1)) of $RUNS: $LATENCY_ERR"
  else
    read -r p50 p95 worst < <(printf '%s\n' "${TIMES[@]}" | sort -n | awk '
      { v[NR] = $1 }
      END { i95 = int(NR * 0.95 + 0.999); print v[int((NR + 1) / 2)], v[i95 < 1 ? 1 : i95], v[NR] }')
    detail="p50 ${p50} ms, p95 ${p95} ms, max ${worst} ms over $RUNS (limit ${MAX_LATENCY_MS} ms)"
    if ((p95 <= MAX_LATENCY_MS)); then record "latency: chat p95" PASS "$detail" "$p95"
    else record "latency: chat p95" FAIL "$detail" "$p95"; fi
  fi
fi

# -- the table -------------------------------------------------------------------------------------
echo "UpCoach LLM stack verification: $URL"
printf '  %-28s %-6s %8s  %s\n' CHECK RESULT MS DETAIL
for row in "${ROWS[@]}"; do
  IFS=$'\t' read -r name result ms detail <<<"$row"
  ((${#detail} > 100)) && detail="${detail:0:97}..."
  printf '  %-28s %-6s %8s  %s\n' "$name" "$result" "$ms" "$detail"
done
if ((${#FAILED[@]})); then
  joined=$(printf '%s, ' "${FAILED[@]}")
  echo "FAILED: ${#FAILED[@]} of ${#ROWS[@]} checks: ${joined%, }"
  exit 1
fi
echo "OK: ${#ROWS[@]} checks passed"
