#!/bin/bash
# Self-test of the fake provider, through real HTTP on 127.0.0.1.
#
# Usage: tests/support/fake_provider_selftest.sh BUILD/fake_provider [--bench]
#
# Starts the binary on an ephemeral port with a request log, talks to it with
# curl (and a raw socket for pipelining), checks status codes, headers and
# usage numbers against exact expected values, checks the log, validates the
# OpenAI request and reply bodies found in the log against OpenAI's published
# schemas (tests/support/openai_schema.py, with the extract the project keeps
# in tests/data/openapi: never skipped), and stops it with SIGTERM. The last
# line is `N passed, N failed`; the exit status is 0 only if nothing failed.
#
# FAKE_PROVIDER_WRAPPER="valgrind --error-exitcode=99 --leak-check=full
# --errors-for-leak-kinds=definite" runs the binary under a wrapper; its exit
# status after SIGTERM must then still be 0.
#
# --bench (informational, never counted): wrk throughput with an OpenAI POST
# at 64, 1000 and 10000 keep-alive connections, 5 s each, when wrk is
# installed. It prints requests/s and the server's max open connections.
set -u

BIN=${1:?usage: $0 BUILD/fake_provider [--bench]}
BENCH=${2:-}
HERE=$(cd "$(dirname "$0")" && pwd)
PY=/usr/bin/python3
SCHEMA="$HERE/openai_schema.py"
TMP=$(mktemp -d "${TMPDIR:-/tmp}/fake_provider_selftest.XXXXXX")
LOG="$TMP/requests.jsonl"
SERVER_PID=
pass=0
fail=0

cleanup() {
	if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
		kill "$SERVER_PID" 2>/dev/null
		wait "$SERVER_PID" 2>/dev/null
	fi
	rm -rf "$TMP"
}
trap cleanup EXIT

ok() { # ok DESCRIPTION: a passed check
	pass=$((pass + 1))
	echo "ok - $1"
}
not_ok() { # not_ok DESCRIPTION WHY
	fail=$((fail + 1))
	echo "FAIL - $1: $2"
}
check() { # check DESCRIPTION EXPECTED ACTUAL
	if [ "$2" == "$3" ]; then ok "$1"; else not_ok "$1" "expected '$2', got '$3'"; fi
}
check_that() { # check_that DESCRIPTION COMMAND...: passes when COMMAND succeeds
	local desc=$1
	shift
	if "$@"; then ok "$desc"; else not_ok "$desc" "$* is false"; fi
}
at_least() { # at_least MIN VALUE (decimals allowed)
	$PY -c 'import sys; sys.exit(0 if float(sys.argv[2]) >= float(sys.argv[1]) else 1)' "$1" "$2" 2>/dev/null
}

body() { # body NAME < JSON: a request body file
	cat >"$TMP/$1.json"
}

# call NAME PATH BODY|- [CURL ARGS...]: POST body NAME (GET when -); keeps
# NAME.out (reply body), .hdr (reply head), .code, .time, .rc (curl's exit)
call() {
	local name=$1 path=$2 b=$3 w
	shift 3
	local args=(-sS -o "$TMP/$name.out" -D "$TMP/$name.hdr" -w '%{http_code} %{time_total}' --max-time 10)
	if [ "$b" != - ]; then
		args+=(-H 'content-type: application/json' --data-binary "@$TMP/$b.json")
	fi
	: >"$TMP/$name.out"
	w=$(curl "${args[@]}" "$@" "http://$ADDR$path" 2>"$TMP/$name.err")
	echo $? >"$TMP/$name.rc"
	echo "${w% *}" >"$TMP/$name.code"
	echo "${w#* }" >"$TMP/$name.time"
}
code() { cat "$TMP/$1.code"; }
rc() { cat "$TMP/$1.rc"; }
elapsed() { cat "$TMP/$1.time"; }
header() { # header NAME FIELD: value of a reply header (last one), or empty
	tr -d '\r' <"$TMP/$1.hdr" | awk -v f="$(echo "$2" | tr 'A-Z' 'a-z')" \
		'{ n = index($0, ":"); if (n > 0 && tolower(substr($0, 1, n - 1)) == f) { v = substr($0, n + 1); sub(/^[ \t]+/, "", v); r = v } } END { print r }'
}
j() { # j NAME DOTTED.PATH: a value of the JSON reply (strings bare, the rest as JSON)
	$PY -c '
import json, sys
try:
    d = json.load(open(sys.argv[1]))
except Exception:
    print("<not json>"); sys.exit()
for k in filter(None, sys.argv[2].split(".")):
    try:
        d = d[int(k)] if isinstance(d, list) else d[k]
    except Exception:
        print("<missing>"); sys.exit()
print(d if isinstance(d, str) else json.dumps(d, sort_keys=True))' "$TMP/$1.out" "$2"
}

OA=(-H 'authorization: Bearer sk-test')
AN=(-H 'x-api-key: sk-ant-test' -H 'anthropic-version: 2023-06-01')

# ---- command line ----

"$BIN" --host 0.0.0.0 --port 0 >"$TMP/cli1.out" 2>"$TMP/cli1.err"
st=$?
check_that "refuses a non-loopback host (0.0.0.0)" [ "$st" -ne 0 ]
check_that "says why it refused 0.0.0.0" grep -q loopback "$TMP/cli1.err"
"$BIN" --host 10.1.2.3 --port 0 >/dev/null 2>&1
check_that "refuses a non-loopback host (10.1.2.3)" [ $? -ne 0 ]
"$BIN" --fault nonsense >/dev/null 2>&1
check "rejects a bad --fault spec" 2 $?
"$BIN" --fault gpt:status:200 >/dev/null 2>&1
check "rejects a non-error status fault" 2 $?
"$BIN" --fault gpt:timeout,echo_key:5 >/dev/null 2>&1
check "rejects echo_key without a status" 2 $?
"$BIN" --fault gpt:status:401,echo_key:4097 >/dev/null 2>&1
check "rejects echo_key past 4096" 2 $?

# ---- start ----

${FAKE_PROVIDER_WRAPPER:-} "$BIN" --port 0 --ready-file "$TMP/ready" --log "$LOG" --output-tokens 16 \
	--fault 'flaky-model:status:503@2' --fault 'llama3:8b:status:500@1' \
	--fault 'claude-busy:status:529@1' --fault 'dead-model:close' \
	>"$TMP/server.out" 2>"$TMP/server.err" &
SERVER_PID=$!
for _ in $(seq 1 300); do
	[ -s "$TMP/ready" ] && break
	sleep 0.1
done
if [ ! -s "$TMP/ready" ]; then
	not_ok "server starts" "no ready file; stderr: $(cat "$TMP/server.err")"
	echo "$pass passed, $fail failed"
	exit 1
fi
ADDR=$(cat "$TMP/ready")
ok "server starts and writes its ready file"
check_that "ready file holds 127.0.0.1:PORT" grep -Eq '^127\.0\.0\.1:[0-9]+$' "$TMP/ready"
check "stdout says listening=ADDR" "listening=$ADDR" "$(head -n1 "$TMP/server.out")"

# ---- plain endpoints ----

call health /healthz -
check "GET /healthz status" 200 "$(code health)"
check "GET /healthz body" ok "$(cat "$TMP/health.out")"
call nowhere /v1/nothing -
check "unknown path -> 404" 404 "$(code nowhere)"
call wrong_method /v1/chat/completions - "${OA[@]}"
check "GET on a POST endpoint -> 404" 404 "$(code wrong_method)"

# ---- OpenAI ----

body o_basic <<'EOF'
{"model":"gpt-4.1-mini","messages":[{"role":"system","content":"You are terse."},{"role":"user","content":"Hello there, fake!"}]}
EOF
call o_noauth /v1/chat/completions o_basic
check "OpenAI without authorization -> 401" 401 "$(code o_noauth)"
check "OpenAI 401 error shape" '["code", "message", "param", "type"]' "$(j o_noauth error | $PY -c 'import json,sys; print(json.dumps(sorted(json.load(sys.stdin))))')"
check "OpenAI 401 error type" invalid_request_error "$(j o_noauth error.type)"
call o_badauth /v1/chat/completions o_basic -H 'authorization: Basic abc'
check "OpenAI with a non-Bearer authorization -> 401" 401 "$(code o_badauth)"

# input = ceil(14/4)+3 + ceil(18/4)+3 = 7 + 8 = 15; output = 16 (no cap)
call o_basic /v1/chat/completions o_basic "${OA[@]}"
check "OpenAI basic status" 200 "$(code o_basic)"
check "OpenAI object" chat.completion "$(j o_basic object)"
check "OpenAI echoes the model" gpt-4.1-mini "$(j o_basic model)"
check "OpenAI prompt_tokens" 15 "$(j o_basic usage.prompt_tokens)"
check "OpenAI completion_tokens" 16 "$(j o_basic usage.completion_tokens)"
check "OpenAI total_tokens" 31 "$(j o_basic usage.total_tokens)"
check "OpenAI cached_tokens" 0 "$(j o_basic usage.prompt_tokens_details.cached_tokens)"
check "OpenAI reasoning_tokens" 0 "$(j o_basic usage.completion_tokens_details.reasoning_tokens)"
check "OpenAI finish_reason without cap" stop "$(j o_basic choices.0.finish_reason)"
check "OpenAI message role" assistant "$(j o_basic choices.0.message.role)"
check "OpenAI refusal is null" null "$(j o_basic choices.0.message.refusal)"
check_that "OpenAI text starts with 'fake reply '" grep -q '^fake reply ' <(j o_basic choices.0.message.content)
check_that "OpenAI reply has x-request-id" [ -n "$(header o_basic x-request-id)" ]
check "OpenAI keep-alive by default" keep-alive "$(header o_basic connection)"

body o_cap <<'EOF'
{"model":"gpt-4.1-mini","max_tokens":10,"messages":[{"role":"user","content":"abcd"}]}
EOF
call o_cap /v1/chat/completions o_cap "${OA[@]}"
check "OpenAI max_tokens caps completion_tokens" 10 "$(j o_cap usage.completion_tokens)"
check "OpenAI finish_reason at the cap" length "$(j o_cap choices.0.finish_reason)"
check "OpenAI prompt_tokens for 'abcd'" 4 "$(j o_cap usage.prompt_tokens)"

body o_cap2 <<'EOF'
{"model":"gpt-4.1-mini","max_completion_tokens":16,"max_tokens":5,"messages":[{"role":"user","content":"abcde"}]}
EOF
call o_cap2 /v1/chat/completions o_cap2 "${OA[@]}"
check "OpenAI max_completion_tokens wins over max_tokens" 16 "$(j o_cap2 usage.completion_tokens)"
check "OpenAI output == cap -> length" length "$(j o_cap2 choices.0.finish_reason)"
check "OpenAI prompt_tokens for 'abcde'" 5 "$(j o_cap2 usage.prompt_tokens)"

# directives come from the LAST user message only (#out=99 is ignored);
# input = (ceil(20/4)+3) + (ceil(10/4)+3) + (ceil((15+29)/4)+3) = 8 + 6 + 14 = 28
body o_dir <<'EOF'
{"model":"gpt-4.1","messages":[{"role":"user","content":"Old question #out=99"},{"role":"assistant","content":"Old answer"},{"role":"user","content":[{"type":"text","text":"Plan the trip. "},{"type":"text","text":"#cached=7 #reasoning=5 #out=4"}]}]}
EOF
call o_dir /v1/chat/completions o_dir "${OA[@]}"
check "OpenAI #cached counts inside prompt_tokens (28 + 7)" 35 "$(j o_dir usage.prompt_tokens)"
check "OpenAI cached_tokens from #cached" 7 "$(j o_dir usage.prompt_tokens_details.cached_tokens)"
check "OpenAI #reasoning counts inside completion_tokens (4 + 5)" 9 "$(j o_dir usage.completion_tokens)"
check "OpenAI reasoning_tokens from #reasoning" 5 "$(j o_dir usage.completion_tokens_details.reasoning_tokens)"
check "OpenAI total_tokens with cache and reasoning" 44 "$(j o_dir usage.total_tokens)"
check "OpenAI #out below no cap -> stop" stop "$(j o_dir choices.0.finish_reason)"

body o_outcap <<'EOF'
{"model":"gpt-4.1","max_tokens":20,"messages":[{"role":"user","content":"go #out=50"}]}
EOF
call o_outcap /v1/chat/completions o_outcap "${OA[@]}"
check "OpenAI #out is still capped by max_tokens" 20 "$(j o_outcap usage.completion_tokens)"
check "OpenAI capped #out -> length" length "$(j o_outcap choices.0.finish_reason)"

body o_429 <<'EOF'
{"model":"gpt-4.1","messages":[{"role":"user","content":"hi #fault=status:429"}]}
EOF
call o_429 /v1/chat/completions o_429 "${OA[@]}"
check "OpenAI #fault=status:429" 429 "$(code o_429)"
check "OpenAI 429 has retry-after: 1" 1 "$(header o_429 retry-after)"
check "OpenAI 429 error code" rate_limit_exceeded "$(j o_429 error.code)"
check "OpenAI 429 error type" requests "$(j o_429 error.type)"

body o_429b <<'EOF'
{"model":"gpt-4.1","messages":[{"role":"user","content":"hi #fault=status:429,retry_after:2"}]}
EOF
call o_429b /v1/chat/completions o_429b "${OA[@]}"
check "OpenAI 429 with retry_after:2" 429 "$(code o_429b)"
check "OpenAI 429 retry-after: 2" 2 "$(header o_429b retry-after)"

body o_500 <<'EOF'
{"model":"gpt-4.1","messages":[{"role":"user","content":"hi #fault=status:500"}]}
EOF
call o_500 /v1/chat/completions o_500 "${OA[@]}"
check "OpenAI #fault=status:500" 500 "$(code o_500)"
check "OpenAI 500 error type" server_error "$(j o_500 error.type)"
check "OpenAI 500 has no retry-after" "" "$(header o_500 retry-after)"

# echo_key:N: the request's key at byte N of a long error message
msg_at() { # msg_at NAME DOTTED.PATH OFFSET LENGTH: a slice of a message, and its length
	$PY -c 'import json, sys
d = json.load(open(sys.argv[1]))
for k in sys.argv[2].split("."):
    d = d[k]
a, n = int(sys.argv[3]), int(sys.argv[4])
print(d[a:a + n], len(d))' "$TMP/$1.out" "$2" "$3" "$4" 2>/dev/null
}
body o_echo <<'EOF'
{"model":"gpt-4.1","messages":[{"role":"user","content":"hi #fault=status:401,echo_key:190"}]}
EOF
call o_echo /v1/chat/completions o_echo -H 'authorization: Bearer gsk_SelfTestKey0123456789'
check "OpenAI #fault=status:401,echo_key:190" 401 "$(code o_echo)"
check "OpenAI echo_key:190: the Bearer token at byte 190 of the message" \
	"gsk_SelfTestKey0123456789 306" "$(msg_at o_echo error.message 190 25)"
body a_echo <<'EOF'
{"model":"claude-x","max_tokens":5,"messages":[{"role":"user","content":"hi #fault=status:400,echo_key:0"}]}
EOF
call a_echo /v1/messages a_echo -H 'x-api-key: hf_SelfTestKey' -H 'anthropic-version: 2023-06-01'
check "Anthropic #fault=status:400,echo_key:0" 400 "$(code a_echo)"
check "Anthropic echo_key:0: x-api-key at the start of the message" \
	"hf_SelfTestKey 105" "$(msg_at a_echo error.message 0 14)"

body o_trunc <<'EOF'
{"model":"gpt-4.1","messages":[{"role":"user","content":"hi #fault=truncate"}]}
EOF
call o_trunc /v1/chat/completions o_trunc "${OA[@]}"
check "OpenAI truncate: status line 200" 200 "$(code o_trunc)"
check "OpenAI truncate: curl sees a partial body (exit 18)" 18 "$(rc o_trunc)"
len=$(header o_trunc content-length)
got=$(stat -c %s "$TMP/o_trunc.out")
check "OpenAI truncate: half of Content-Length arrives" "$((len / 2))" "$got"

body o_malformed <<'EOF'
{"model":"gpt-4.1","messages":[{"role":"user","content":"hi #fault=malformed"}]}
EOF
call o_malformed /v1/chat/completions o_malformed "${OA[@]}"
check "OpenAI malformed: 200" 200 "$(code o_malformed)"
check "OpenAI malformed: body is not JSON" "<not json>" "$(j o_malformed id)"
check "OpenAI malformed: complete per Content-Length (curl exit 0)" 0 "$(rc o_malformed)"

body o_close <<'EOF'
{"model":"gpt-4.1","messages":[{"role":"user","content":"hi #fault=close"}]}
EOF
call o_close /v1/chat/completions o_close "${OA[@]}"
check "OpenAI close: empty reply (curl exit 52)" 52 "$(rc o_close)"

body o_timeout <<'EOF'
{"model":"gpt-4.1","messages":[{"role":"user","content":"hi #fault=timeout"}]}
EOF
call o_timeout /v1/chat/completions o_timeout "${OA[@]}" --max-time 1
check "OpenAI timeout: no answer within 1 s (curl exit 28)" 28 "$(rc o_timeout)"

body o_slow <<'EOF'
{"model":"gpt-4.1","messages":[{"role":"user","content":"hi #fault=slow"}]}
EOF
call o_slow /v1/chat/completions o_slow "${OA[@]}"
check "OpenAI slow: 200" 200 "$(code o_slow)"
check "OpenAI slow: complete JSON in the end" 16 "$(j o_slow usage.completion_tokens)"
check_that "OpenAI slow: body took >= 0.5 s ($(elapsed o_slow) s)" at_least 0.5 "$(elapsed o_slow)"

body o_latency <<'EOF'
{"model":"gpt-4.1","messages":[{"role":"user","content":"hi #latency=300"}]}
EOF
call o_latency /v1/chat/completions o_latency "${OA[@]}"
check "OpenAI #latency=300: 200" 200 "$(code o_latency)"
check_that "OpenAI #latency=300: took >= 0.25 s ($(elapsed o_latency) s)" at_least 0.25 "$(elapsed o_latency)"

body o_flaky <<'EOF'
{"model":"flaky-model","messages":[{"role":"user","content":"hi"}]}
EOF
call o_flaky1 /v1/chat/completions o_flaky "${OA[@]}"
call o_flaky2 /v1/chat/completions o_flaky "${OA[@]}"
call o_flaky3 /v1/chat/completions o_flaky "${OA[@]}"
check "--fault flaky-model:status:503@2: 1st" 503 "$(code o_flaky1)"
check "--fault flaky-model:status:503@2: 2nd" 503 "$(code o_flaky2)"
check "--fault flaky-model:status:503@2: 3rd succeeds" 200 "$(code o_flaky3)"
check "OpenAI 503 error type" server_error "$(j o_flaky1 error.type)"

body o_llama <<'EOF'
{"model":"llama3:8b","messages":[{"role":"user","content":"hi"}]}
EOF
call o_llama1 /v1/chat/completions o_llama "${OA[@]}"
call o_llama2 /v1/chat/completions o_llama "${OA[@]}"
check "--fault with ':' in the model (llama3:8b): 1st -> 500" 500 "$(code o_llama1)"
check "--fault llama3:8b@1: 2nd succeeds" 200 "$(code o_llama2)"

body o_dead <<'EOF'
{"model":"dead-model","messages":[{"role":"user","content":"hi"}]}
EOF
call o_dead1 /v1/chat/completions o_dead "${OA[@]}"
call o_dead2 /v1/chat/completions o_dead "${OA[@]}"
check "--fault dead-model:close (no count): 1st" 52 "$(rc o_dead1)"
check "--fault dead-model:close (no count): 2nd" 52 "$(rc o_dead2)"

printf '{"model": "gpt-4.1", "messages": [' >"$TMP/o_badjson.json"
call o_badjson /v1/chat/completions o_badjson "${OA[@]}"
check "OpenAI invalid JSON body -> 400" 400 "$(code o_badjson)"
body o_nomsg <<'EOF'
{"model":"gpt-4.1"}
EOF
call o_nomsg /v1/chat/completions o_nomsg "${OA[@]}"
check "OpenAI without messages -> 400" 400 "$(code o_nomsg)"
check "OpenAI 400 names the param" messages "$(j o_nomsg error.param)"

call o_close_hdr /v1/chat/completions o_basic "${OA[@]}" -H 'connection: close'
check "Connection: close is honoured" close "$(header o_close_hdr connection)"

# ---- Azure OpenAI ----

body az <<'EOF'
{"messages":[{"role":"user","content":"abcdefgh"}]}
EOF
call az '/openai/deployments/my-dep/chat/completions?api-version=2024-10-21' az -H 'api-key: az-key'
check "Azure with api-key: 200" 200 "$(code az)"
check "Azure echoes the deployment as model" my-dep "$(j az model)"
check "Azure prompt_tokens (ceil(8/4)+3)" 5 "$(j az usage.prompt_tokens)"
call az_noauth '/openai/deployments/my-dep/chat/completions?api-version=2024-10-21' az
check "Azure without api-key -> 401" 401 "$(code az_noauth)"
call az_nover '/openai/deployments/my-dep/chat/completions' az -H 'api-key: az-key'
check "Azure without api-version -> 400" 400 "$(code az_nover)"

# ---- Anthropic ----

# input = ceil(9/4) [system] + ceil(12/4)+3 = 3 + 6 = 9
body a_basic <<'EOF'
{"model":"claude-sonnet-4-5","max_tokens":100,"system":"Be brief.","messages":[{"role":"user","content":"What is 2+2?"}]}
EOF
call a_nokey /v1/messages a_basic -H 'anthropic-version: 2023-06-01'
check "Anthropic without x-api-key -> 401" 401 "$(code a_nokey)"
check "Anthropic 401 shape: type error" error "$(j a_nokey type)"
check "Anthropic 401 error type" authentication_error "$(j a_nokey error.type)"
call a_nover /v1/messages a_basic -H 'x-api-key: sk-ant-test'
check "Anthropic without anthropic-version -> 401" 401 "$(code a_nover)"

call a_basic /v1/messages a_basic "${AN[@]}"
check "Anthropic basic status" 200 "$(code a_basic)"
check "Anthropic type" message "$(j a_basic type)"
check "Anthropic role" assistant "$(j a_basic role)"
check "Anthropic echoes the model" claude-sonnet-4-5 "$(j a_basic model)"
check "Anthropic content block type" text "$(j a_basic content.0.type)"
check_that "Anthropic text starts with 'fake reply '" grep -q '^fake reply ' <(j a_basic content.0.text)
check "Anthropic input_tokens" 9 "$(j a_basic usage.input_tokens)"
check "Anthropic output_tokens" 16 "$(j a_basic usage.output_tokens)"
check "Anthropic cache_read_input_tokens" 0 "$(j a_basic usage.cache_read_input_tokens)"
check "Anthropic cache_creation_input_tokens" 0 "$(j a_basic usage.cache_creation_input_tokens)"
check "Anthropic stop_reason" end_turn "$(j a_basic stop_reason)"
check "Anthropic stop_sequence" null "$(j a_basic stop_sequence)"
check_that "Anthropic reply has request-id" [ -n "$(header a_basic request-id)" ]

body a_nomax <<'EOF'
{"model":"claude-sonnet-4-5","messages":[{"role":"user","content":"hi"}]}
EOF
call a_nomax /v1/messages a_nomax "${AN[@]}"
check "Anthropic without max_tokens -> 400" 400 "$(code a_nomax)"
check "Anthropic 400 error type" invalid_request_error "$(j a_nomax error.type)"

# input = ceil(18/4) [system blocks] + ceil(42/4)+3 = 5 + 14 = 19
body a_dir <<'EOF'
{"model":"claude-opus-4-1","max_tokens":100,"system":[{"type":"text","text":"You are a planner."}],"messages":[{"role":"user","content":[{"type":"text","text":"Plan it. #cached=11 #cache_write=22 #out=5"}]}]}
EOF
call a_dir /v1/messages a_dir "${AN[@]}"
check "Anthropic input_tokens exclude cache tokens" 19 "$(j a_dir usage.input_tokens)"
check "Anthropic cache_read_input_tokens from #cached" 11 "$(j a_dir usage.cache_read_input_tokens)"
check "Anthropic cache_creation_input_tokens from #cache_write" 22 "$(j a_dir usage.cache_creation_input_tokens)"
check "Anthropic output_tokens from #out" 5 "$(j a_dir usage.output_tokens)"
check "Anthropic #out below the cap -> end_turn" end_turn "$(j a_dir stop_reason)"

body a_cap <<'EOF'
{"model":"claude-sonnet-4-5","max_tokens":16,"messages":[{"role":"user","content":"hi"}]}
EOF
call a_cap /v1/messages a_cap "${AN[@]}"
check "Anthropic output == max_tokens" 16 "$(j a_cap usage.output_tokens)"
check "Anthropic stop_reason at the cap" max_tokens "$(j a_cap stop_reason)"

body a_529 <<'EOF'
{"model":"claude-sonnet-4-5","max_tokens":16,"messages":[{"role":"user","content":"hi #fault=status:529"}]}
EOF
call a_529 /v1/messages a_529 "${AN[@]}"
check "Anthropic #fault=status:529" 529 "$(code a_529)"
check "Anthropic 529 error type" overloaded_error "$(j a_529 error.type)"

body a_429 <<'EOF'
{"model":"claude-sonnet-4-5","max_tokens":16,"messages":[{"role":"user","content":"hi #fault=status:429"}]}
EOF
call a_429 /v1/messages a_429 "${AN[@]}"
check "Anthropic #fault=status:429" 429 "$(code a_429)"
check "Anthropic 429 error type" rate_limit_error "$(j a_429 error.type)"
check "Anthropic 429 retry-after: 1" 1 "$(header a_429 retry-after)"

body a_500 <<'EOF'
{"model":"claude-sonnet-4-5","max_tokens":16,"messages":[{"role":"user","content":"hi #fault=status:500"}]}
EOF
call a_500 /v1/messages a_500 "${AN[@]}"
check "Anthropic 500 error type" api_error "$(j a_500 error.type)"

body a_busy <<'EOF'
{"model":"claude-busy","max_tokens":16,"messages":[{"role":"user","content":"hi"}]}
EOF
call a_busy1 /v1/messages a_busy "${AN[@]}"
call a_busy2 /v1/messages a_busy "${AN[@]}"
check "--fault claude-busy:status:529@1: 1st" 529 "$(code a_busy1)"
check "--fault claude-busy:status:529@1: 2nd succeeds" 200 "$(code a_busy2)"

# ---- HTTP edges ----

call chunked /v1/chat/completions o_basic "${OA[@]}" -H 'transfer-encoding: chunked'
check "chunked request body -> 411" 411 "$(code chunked)"

head -c $((9 * 1024 * 1024)) /dev/zero | tr '\0' 'a' >"$TMP/huge.json"
call huge /v1/chat/completions huge "${OA[@]}"
check "body over 8 MiB -> 413" 413 "$(code huge)"

big=$(head -c 70000 /dev/zero | tr '\0' 'b')
call bighead /healthz - -H "x-big: $big"
check "head over 64 KiB -> 413" 413 "$(code bighead)"

body ka <<'EOF'
{"model":"keepalive-test","messages":[{"role":"user","content":"hi"}]}
EOF
curl -sS -o /dev/null -o /dev/null "${OA[@]}" -H 'content-type: application/json' \
	--data-binary "@$TMP/ka.json" "http://$ADDR/v1/chat/completions" "http://$ADDR/v1/chat/completions"
check "curl's two requests reused the connection" ok "$(sleep 0.2; $PY - "$LOG" <<'EOF'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
ka = [r for r in rows if isinstance(r.get("body"), dict) and r["body"].get("model") == "keepalive-test"]
ok = len(ka) == 2 and ka[0]["conn"] == ka[1]["conn"] and [r["req"] for r in ka] == [1, 2]
print("ok" if ok else "no: %r" % [(r["conn"], r["req"]) for r in ka])
EOF
)"

pipelined=$($PY - "$ADDR" <<'EOF'
import json, socket, sys
host, port = sys.argv[1].rsplit(":", 1)
s = socket.create_connection((host, int(port)), timeout=5)
def post(content):
    body = json.dumps({"model": "pipe", "messages": [{"role": "user", "content": content}]}).encode()
    return (b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer k\r\n"
            b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body)) + body
# the first is slowest: replies must still come back in request order
s.sendall(post("first #latency=300 #out=1") + post("second #out=2") + b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
buf, out = b"", []
while len(out) < 3:
    while b"\r\n\r\n" not in buf:
        chunk = s.recv(65536)
        if not chunk:
            print("EOF after %r" % out); sys.exit()
        buf += chunk
    head, rest = buf.split(b"\r\n\r\n", 1)
    lines = head.split(b"\r\n")
    cl = int([l.split(b":", 1)[1] for l in lines[1:] if l.lower().startswith(b"content-length:")][0])
    while len(rest) < cl:
        rest += s.recv(65536)
    body, buf = rest[:cl], rest[cl:]
    status = lines[0].split(b" ")[1].decode()
    try:
        out.append("%s:%s" % (status, json.loads(body)["usage"]["completion_tokens"]))
    except ValueError:
        out.append("%s:%s" % (status, body.decode()))
print(" ".join(out))
EOF
)
check "pipelined requests are answered in order" "200:1 200:2 200:ok" "$pipelined"

# more than the 64 replies a connection may owe: reading pauses, then resumes
many=$($PY - "$ADDR" <<'EOF'
import json, socket, sys
host, port = sys.argv[1].rsplit(":", 1)
def post(i):
    body = json.dumps({"model": "pipe", "messages": [{"role": "user", "content": "n%d #out=%d" % (i, i % 50 + 1)}]}).encode()
    return (b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer k\r\n"
            b"Content-Length: %d\r\n\r\n" % len(body)) + body
N = 300
s = socket.create_connection((host, int(port)), timeout=10)
s.sendall(b"".join(post(i) for i in range(N)))
buf, got = b"", []
while len(got) < N:
    while b"\r\n\r\n" not in buf:
        chunk = s.recv(65536)
        if not chunk:
            print("EOF after %d" % len(got)); sys.exit()
        buf += chunk
    head, rest = buf.split(b"\r\n\r\n", 1)
    cl = int([l.split(b":", 1)[1] for l in head.split(b"\r\n")[1:] if l.lower().startswith(b"content-length:")][0])
    while len(rest) < cl:
        rest += s.recv(65536)
    got.append(json.loads(rest[:cl])["usage"]["completion_tokens"])
    buf = rest[cl:]
print("in order" if got == [i % 50 + 1 for i in range(N)] else "out of order")
EOF
)
check "300 pipelined requests (queue cap 64) all answered in order" "in order" "$many"

# ---- stats ----

call stats /stats -
check "GET /stats status" 200 "$(code stats)"
check "/stats counts the 529s on /v1/messages" 2 "$(j stats requests./v1/messages.status.529)"
check "/stats counts the 503s" 2 "$(j stats requests./v1/chat/completions.status.503)"
check_that "/stats has open_connections" [ "$(j stats open_connections)" != "<missing>" ]
check_that "/stats max_open_connections >= 1" at_least 1 "$(j stats max_open_connections)"

# ---- stop ----

sent_before_stop=$(j stats requests_total)
kill -TERM "$SERVER_PID"
for _ in $(seq 1 100); do
	kill -0 "$SERVER_PID" 2>/dev/null || break
	sleep 0.1
done
wait "$SERVER_PID"
check "SIGTERM: exits 0" 0 $?
SERVER_PID=
if [ -s "$TMP/server.err" ]; then
	echo "# server stderr:"
	sed 's/^/#   /' "$TMP/server.err" | tail -n 30
fi

# ---- the log ----

$PY - "$LOG" "$sent_before_stop" >"$TMP/logcheck.txt" <<'EOF'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
def result(ok, desc, why=""):
    print(("ok" if ok else "FAIL") + "\t" + desc + ("\t" + why if not ok else ""))
need = {"ts_ms", "conn", "method", "path", "headers", "status", "fault", "response"}
missing = [(r.get("seq"), sorted(need - set(r))) for r in rows if need - set(r)]
result(not missing, "every log line has ts_ms conn method path headers status fault response", repr(missing[:3]))
nobody = [r.get("seq") for r in rows if "body" not in r and "body_raw" not in r]
result(not nobody, "every log line has body or body_raw", repr(nobody[:3]))
upper = [k for r in rows for k in r["headers"] if k != k.lower()]
result(not upper, "header names are lower-cased", repr(upper[:3]))
seqs = sorted(r["seq"] for r in rows)
# requests_total, from the last request (/stats), counts every request, itself included
result(len(rows) == int(sys.argv[2]) and seqs == list(range(1, len(rows) + 1)),
       "one line per request received (%d lines)" % len(rows), "seqs %r" % seqs[-5:])
def by_fault(f):
    return [r for r in rows if r["fault"] == f]
r = by_fault("status:429,retry_after:2")
result(len(r) == 1 and r[0]["status"] == 429 and r[0]["response"]["error"]["code"] == "rate_limit_exceeded",
       "429 line: fault, status and response", repr(r))
r = by_fault("timeout")
result(len(r) == 1 and r[0]["status"] is None and r[0]["response"] is None,
       "timeout line: status null, response null", repr(r))
r = [x for x in by_fault("close")]
result(len(r) == 3 and all(x["status"] is None for x in r), "close lines: status null (3)", repr(r))
r = by_fault("truncate")
result(len(r) == 1 and r[0]["status"] == 200 and r[0]["response"]["object"] == "chat.completion",
       "truncate line: status 200 and the full response", repr(r))
r = by_fault("malformed")
result(len(r) == 1 and r[0]["response"] is None and isinstance(r[0].get("response_raw"), str),
       "malformed line: response null, response_raw string", repr(r))
r = [x for x in rows if x.get("body_raw") is not None]
result(len(r) == 1 and r[0]["body_raw"] == '{"model": "gpt-4.1", "messages": [',
       "non-JSON bodies are logged under body_raw", repr([x["seq"] for x in r]))
r = [x for x in rows if x["path"] == "/v1/chat/completions" and x["status"] == 200
     and isinstance(x.get("body"), dict) and x["body"].get("model") == "gpt-4.1-mini"
     and x["body"].get("max_tokens") == 10]
result(len(r) == 1 and r[0]["headers"].get("authorization") == "Bearer sk-test"
       and r[0]["response"]["usage"]["completion_tokens"] == 10,
       "request and reply are logged as sent", repr(r))
r = [x for x in rows if x["path"] == "/openai/deployments/my-dep/chat/completions" and x["status"] == 200]
result(len(r) == 1 and r[0]["query"] == "api-version=2024-10-21", "Azure line keeps path and query", repr(r))

# inputs for the schema checks
openai_paths = ("/v1/chat/completions", "/openai/deployments/my-dep/chat/completions")
with open(sys.argv[1] + ".requests", "w") as f:
    for x in rows:
        if x["path"] == "/v1/chat/completions" and x["status"] == 200 and isinstance(x.get("body"), dict):
            f.write(json.dumps(x["body"]) + "\n")
with open(sys.argv[1] + ".responses", "w") as f:
    for x in rows:
        if x["path"] in openai_paths and x["status"] == 200 and x["response"] is not None:
            f.write(json.dumps(x["response"]) + "\n")
with open(sys.argv[1] + ".errors", "w") as f:
    for x in rows:
        if x["path"] in openai_paths and x["status"] and x["status"] >= 400 and x["response"] is not None:
            f.write(json.dumps(x["response"]) + "\n")
EOF
while IFS=$'\t' read -r verdict desc why; do
	if [ "$verdict" == ok ]; then ok "log: $desc"; else not_ok "log: $desc" "$why"; fi
done <"$TMP/logcheck.txt"
[ -s "$TMP/logcheck.txt" ] || not_ok "log checks ran" "no output"

# ---- OpenAI's published schemas ----

schema_check() { # schema_check COMPONENT FILE DESCRIPTION
	local out st
	out=$($PY "$SCHEMA" "$1" "$2" 2>&1)
	st=$?
	if [ $st -eq 0 ]; then
		ok "$3 ($(echo "$out" | tail -n1))"
	else
		not_ok "$3" "$(echo "$out" | head -n 10)"
	fi
}
schema_check CreateChatCompletionRequest "$LOG.requests" "logged OpenAI requests match CreateChatCompletionRequest"
schema_check CreateChatCompletionResponse "$LOG.responses" "OpenAI replies match CreateChatCompletionResponse"
schema_check ErrorResponse "$LOG.errors" "OpenAI error replies match ErrorResponse"

# ---- throughput (informational) ----

if [ "$BENCH" == --bench ]; then
	if ! command -v wrk >/dev/null; then
		echo "# bench skipped: wrk is not installed"
	else
		"$BIN" --port 0 --ready-file "$TMP/bench.ready" >/dev/null 2>&1 &
		SERVER_PID=$!
		for _ in $(seq 1 50); do
			[ -s "$TMP/bench.ready" ] && break
			sleep 0.1
		done
		BADDR=$(cat "$TMP/bench.ready")
		cat >"$TMP/post.lua" <<'EOF'
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer sk-bench"
wrk.body = '{"model":"gpt-4.1-mini","max_tokens":64,"messages":[{"role":"system","content":"You are terse."},{"role":"user","content":"Summarise the routing policy in one line."}]}'
EOF
		for conns in 64 1000 10000; do
			threads=2
			out=$(wrk -t "$threads" -c "$conns" -d 5s --timeout 10s -s "$TMP/post.lua" "http://$BADDR/v1/chat/completions" 2>&1)
			rps=$(echo "$out" | awk '/^Requests\/sec/ { print $2 }')
			errs=$(echo "$out" | grep -E 'Socket errors|Non-2xx' | tr -s ' ' | tr '\n' ';')
			echo "# bench: $conns connections: ${rps:-?} requests/s ${errs}"
		done
		curl -s "http://$BADDR/stats" >"$TMP/bench.stats"
		echo "# bench: server max_open_connections=$($PY -c 'import json,sys; print(json.load(open(sys.argv[1]))["max_open_connections"])' "$TMP/bench.stats")"
		kill -TERM "$SERVER_PID"
		wait "$SERVER_PID"
		SERVER_PID=
	fi
fi

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
