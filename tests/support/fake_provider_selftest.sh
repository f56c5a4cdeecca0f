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
# in tests/data/openapi: never skipped), and stops it with SIGTERM. Rate
# limits (--limit) are checked with small numbers (rpm=3, tpm=20) whose
# refill is far slower than the checks, so counts are exact: a bucket admits
# N then answers 429 in each provider's shape, headers count down, keys have
# their own buckets, a fixed window waits for its end, headers=0 sends none,
# slow and stalled bodies carry them; POST /control replaces limits and
# faults while it runs; a hung call gets no status within curl's 2 s. The last
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
"$BIN" --fault gpt:status:503,every:1 >/dev/null 2>&1
check "rejects every:1 (every call is the plain rule)" 2 $?
"$BIN" --fault gpt:status:401,echo_key:4097 >/dev/null 2>&1
check "rejects echo_key past 4096" 2 $?
for spec in 'gpt:tpm=0' 'gpt:window=fixed' 'gpt:rpm=3,window=sliding' 'gpt:rpm=3,headers=2' \
	'gpt:rpm=3,rpm=4' 'gpt:rpm=1000000001' 'gpt' ':rpm=3'; do
	"$BIN" --limit "$spec" >/dev/null 2>&1
	check "rejects --limit $spec" 2 $?
done
"$BIN" --limit 'gpt:rpm=3' --limit 'gpt:rpm=4' >/dev/null 2>&1
check "rejects two --limit rules for one model" 2 $?
"$BIN" --help | grep -q -- '--limit MODEL:rpm=N'
check "--help documents --limit" 0 $?

# ---- start ----

${FAKE_PROVIDER_WRAPPER:-} "$BIN" --port 0 --ready-file "$TMP/ready" --log "$LOG" --output-tokens 16 \
	--fault 'flaky-model:status:503@2' --fault 'llama3:8b:status:500@1' \
	--fault 'claude-busy:status:529@1' --fault 'dead-model:close' \
	--fault 'half-model:status:502,every:2@2' \
	--limit 'rl-gpt:rpm=3' --limit 'rl-tok:tpm=20,rpm=100' --limit 'rl-claude:rpm=2,tpm=1000' \
	--limit 'rl-fixed:rpm=2,window=fixed' --limit 'rl-quiet:rpm=1,headers=0' --limit 'rl-slow:rpm=5' \
	--limit 'rl-azure:rpm=1' --limit 'rl-gemini:rpm=1' --limit 'rl-bedrock:rpm=1' \
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

body o_half <<'EOF'
{"model":"half-model","messages":[{"role":"user","content":"hi"}]}
EOF
for i in 1 2 3 4 5 6; do call "o_half$i" /v1/chat/completions o_half "${OA[@]}"; done
check "--fault half-model:status:502,every:2@2: calls 1-6 (every 2nd faults, twice)" \
	"200 502 200 502 200 200" \
	"$(code o_half1) $(code o_half2) $(code o_half3) $(code o_half4) $(code o_half5) $(code o_half6)"

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

# input = ceil(18/4) [system blocks] + ceil(60/4)+3 = 5 + 18 = 23
body a_dir <<'EOF'
{"model":"claude-opus-4-1","max_tokens":100,"system":[{"type":"text","text":"You are a planner."}],"messages":[{"role":"user","content":[{"type":"text","text":"Plan it. #cached=11 #cache_write=22 #cache_write_1h=7 #out=5"}]}]}
EOF
call a_dir /v1/messages a_dir "${AN[@]}"
check "Anthropic input_tokens exclude cache tokens" 23 "$(j a_dir usage.input_tokens)"
check "Anthropic cache_read_input_tokens from #cached" 11 "$(j a_dir usage.cache_read_input_tokens)"
check "Anthropic cache_creation_input_tokens from #cache_write and #cache_write_1h" 29 "$(j a_dir usage.cache_creation_input_tokens)"
check "Anthropic cache_creation.ephemeral_5m_input_tokens from #cache_write" 22 "$(j a_dir usage.cache_creation.ephemeral_5m_input_tokens)"
check "Anthropic cache_creation.ephemeral_1h_input_tokens from #cache_write_1h" 7 "$(j a_dir usage.cache_creation.ephemeral_1h_input_tokens)"
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

# ---- request features: tools, structured output, images, sampling ----

PNG='iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=='
body o_tool <<'EOF'
{"model":"gpt-4.1","messages":[{"role":"user","content":"weather? #tool=get_weather"}],"tools":[{"type":"function","function":{"name":"get_weather","parameters":{"type":"object","properties":{"city":{"type":"string"},"unit":{"type":"string","enum":["c","f"]},"days":{"type":"integer"},"opt":{"type":"boolean"}},"required":["city","unit","days"]}}}]}
EOF
call o_tool /v1/chat/completions o_tool "${OA[@]}"
check "OpenAI #tool=: finish_reason tool_calls" tool_calls "$(j o_tool choices.0.finish_reason)"
check "OpenAI #tool=: the call's name" get_weather "$(j o_tool choices.0.message.tool_calls.0.function.name)"
check "OpenAI #tool=: arguments a JSON string of the minimal instance" '{"city":"","unit":"c","days":0}' "$(j o_tool choices.0.message.tool_calls.0.function.arguments)"
check "OpenAI #tool=: content null" null "$(j o_tool choices.0.message.content)"
body o_forced <<'EOF'
{"model":"gpt-4.1","messages":[{"role":"user","content":"go"}],"tools":[{"type":"function","function":{"name":"a"}},{"type":"function","function":{"name":"b","parameters":{"type":"object","properties":{"x":{"type":"array"}},"required":["x"]}}}],"tool_choice":{"type":"function","function":{"name":"b"}}}
EOF
call o_forced /v1/chat/completions o_forced "${OA[@]}"
check "OpenAI forced tool_choice calls it" 'b {"x":[]}' "$(j o_forced choices.0.message.tool_calls.0.function.name) $(j o_forced choices.0.message.tool_calls.0.function.arguments)"
body o_toolloop <<'EOF'
{"model":"gpt-4.1","messages":[{"role":"user","content":"weather? #tool=t"},{"role":"assistant","content":null,"tool_calls":[{"id":"call_1","type":"function","function":{"name":"t","arguments":"{}"}}]},{"role":"tool","tool_call_id":"call_1","content":"sunny"}],"tools":[{"type":"function","function":{"name":"t"}}]}
EOF
call o_toolloop /v1/chat/completions o_toolloop "${OA[@]}"
check "OpenAI after a tool result #tool= no longer applies: text" stop "$(j o_toolloop choices.0.finish_reason)"
body o_orphan <<'EOF'
{"model":"gpt-4.1","messages":[{"role":"user","content":"hi"},{"role":"tool","tool_call_id":"call_9","content":"x"}]}
EOF
call o_orphan /v1/chat/completions o_orphan "${OA[@]}"
check "OpenAI tool message without a preceding tool_calls -> 400" 400 "$(code o_orphan)"
body o_unanswered <<'EOF'
{"model":"gpt-4.1","messages":[{"role":"user","content":"hi"},{"role":"assistant","tool_calls":[{"id":"call_1","type":"function","function":{"name":"t","arguments":"{}"}}]},{"role":"user","content":"and?"}]}
EOF
call o_unanswered /v1/chat/completions o_unanswered "${OA[@]}"
check_that "OpenAI unanswered tool_calls -> 400 naming the id" grep -q 'call_1' <(j o_unanswered error.message)
body o_choice_notools <<'EOF'
{"model":"gpt-4.1","messages":[{"role":"user","content":"hi"}],"tool_choice":"required"}
EOF
call o_choice_notools /v1/chat/completions o_choice_notools "${OA[@]}"
check "OpenAI tool_choice without tools -> 400" 400 "$(code o_choice_notools)"
body o_schema <<'EOF'
{"model":"gpt-4.1","messages":[{"role":"user","content":"extract"}],"response_format":{"type":"json_schema","json_schema":{"name":"person","strict":true,"schema":{"type":"object","properties":{"name":{"type":"string"},"age":{"type":"integer"},"tags":{"type":"array","items":{"type":"string"}},"kind":{"$ref":"#/$defs/k"}},"required":["name","age","tags","kind"],"additionalProperties":false,"$defs":{"k":{"type":"string","enum":["a","b"]}}}}}}
EOF
call o_schema /v1/chat/completions o_schema "${OA[@]}"
check "OpenAI json_schema: the text is a minimal instance" '{"name":"","age":0,"tags":[],"kind":"a"}' "$(j o_schema choices.0.message.content)"
check "OpenAI json_schema: completion_tokens = ceil(40/4)" 10 "$(j o_schema usage.completion_tokens)"
body o_schema_cut <<'EOF'
{"model":"gpt-4.1","max_completion_tokens":3,"messages":[{"role":"user","content":"extract"}],"response_format":{"type":"json_schema","json_schema":{"name":"p","schema":{"type":"object","properties":{"name":{"type":"string"},"age":{"type":"integer"}},"required":["name","age"]}}}}
EOF
call o_schema_cut /v1/chat/completions o_schema_cut "${OA[@]}"
check "OpenAI json_schema at the cap: cut to 12 bytes, length" '{"name":""," length' "$(j o_schema_cut choices.0.message.content) $(j o_schema_cut choices.0.finish_reason)"
body o_jsonobj <<'EOF'
{"model":"gpt-4.1","messages":[{"role":"user","content":"answer in JSON"}],"response_format":{"type":"json_object"}}
EOF
call o_jsonobj /v1/chat/completions o_jsonobj "${OA[@]}"
check "OpenAI json_object: {}" '{}' "$(j o_jsonobj choices.0.message.content)"
body o_jsonobj_noword <<'EOF'
{"model":"gpt-4.1","messages":[{"role":"user","content":"answer"}],"response_format":{"type":"json_object"}}
EOF
call o_jsonobj_noword /v1/chat/completions o_jsonobj_noword "${OA[@]}"
check "OpenAI json_object without the word json -> 400" 400 "$(code o_jsonobj_noword)"
printf '{"model":"gpt-4.1","messages":[{"role":"user","content":[{"type":"text","text":"abcd"},{"type":"image_url","image_url":{"url":"data:image/png;base64,%s"}},{"type":"image_url","image_url":{"url":"https://example.com/a.png","detail":"low"}}]}]}' "$PNG" >"$TMP/o_image.json"
call o_image /v1/chat/completions o_image "${OA[@]}"
check "OpenAI two images: prompt_tokens = 1 + 3 + 2 x 85" 174 "$(j o_image usage.prompt_tokens)"
printf '{"model":"gpt-4.1","messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"data:image/png;base64,abc"}}]}]}' >"$TMP/o_badimg.json"
call o_badimg /v1/chat/completions o_badimg "${OA[@]}"
check "OpenAI image with bad base64 -> 400" "400 invalid_image_url" "$(code o_badimg) $(j o_badimg error.code)"
printf '{"model":"gpt-4.1","messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"data:image/tiff;base64,%s"}}]}]}' "$PNG" >"$TMP/o_badtype.json"
call o_badtype /v1/chat/completions o_badtype "${OA[@]}"
check "OpenAI image of an unknown type -> 400" "400 invalid_image_format" "$(code o_badtype) $(j o_badtype error.code)"
body o_sampling <<'EOF'
{"model":"gpt-4.1","messages":[{"role":"user","content":"hi"}],"temperature":2,"top_p":0.5,"seed":7,"stop":["a","b","c","d"],"reasoning_effort":"low","max_completion_tokens":50}
EOF
call o_sampling /v1/chat/completions o_sampling "${OA[@]}"
check "OpenAI sampling fields in range, reasoning_effort: 200" 200 "$(code o_sampling)"
for bad in '"temperature":2.5' '"top_p":-0.1' '"stop":["a","b","c","d","e"]' '"seed":1.5' '"reasoning_effort":"max"' '"frobnicate":1'; do
	printf '{"model":"gpt-4.1","messages":[{"role":"user","content":"hi"}],%s}' "$bad" >"$TMP/o_bad.json"
	call o_bad /v1/chat/completions o_bad "${OA[@]}"
	check "OpenAI rejects $bad" 400 "$(code o_bad)"
done
body o_effort_max <<'EOF'
{"model":"o3","messages":[{"role":"user","content":"hi"}],"reasoning_effort":"high","max_tokens":50}
EOF
call o_effort_max /v1/chat/completions o_effort_max "${OA[@]}"
check "OpenAI reasoning_effort with max_tokens -> 400 unsupported_parameter" unsupported_parameter "$(j o_effort_max error.code)"
body o_cf <<'EOF'
{"model":"gpt-4.1","messages":[{"role":"user","content":"hi #fault=content_filter"}]}
EOF
call o_cf /v1/chat/completions o_cf "${OA[@]}"
check "OpenAI content_filter: 200, finish_reason content_filter, content null" "200 content_filter null" "$(code o_cf) $(j o_cf choices.0.finish_reason) $(j o_cf choices.0.message.content)"

# ---- Azure: v1 path, content filter, limits ----

call az_v1 /openai/v1/chat/completions o_basic -H 'api-key: az-key'
check "Azure v1 path: 200 with the body's model" "200 gpt-4.1-mini" "$(code az_v1) $(j az_v1 model)"
call az_v1_bearer /openai/v1/chat/completions o_basic -H 'authorization: Bearer entra-token'
check "Azure v1 path with a Bearer token: 200" 200 "$(code az_v1_bearer)"
call az_v1_noauth /openai/v1/chat/completions o_basic
check "Azure v1 without a key: 401 in Azure's shape" '401 "401"' "$(code az_v1_noauth) $(j az_v1_noauth error.code | $PY -c 'import json,sys; print(json.dumps(sys.stdin.read().strip()))')"
check "Azure without api-version: Azure's code" MissingApiVersionParameter "$(j az_nover error.code)"
body az_cf <<'EOF'
{"messages":[{"role":"user","content":"bad words #fault=content_filter"}]}
EOF
call az_cf '/openai/deployments/my-dep/chat/completions?api-version=2024-10-21' az_cf -H 'api-key: az-key'
check "Azure content_filter: 400 code content_filter" "400 content_filter" "$(code az_cf) $(j az_cf error.code)"
check "Azure content_filter: innererror" "ResponsibleAIPolicyViolation true high" "$(j az_cf error.innererror.code) $(j az_cf error.innererror.content_filter_result.hate.filtered) $(j az_cf error.innererror.content_filter_result.hate.severity)"
call az_rl1 '/openai/deployments/rl-azure/chat/completions?api-version=2024-10-21' az -H 'api-key: az-rl'
call az_rl2 '/openai/deployments/rl-azure/chat/completions?api-version=2024-10-21' az -H 'api-key: az-rl'
check "Azure limit: 200 then 429" "200 429" "$(code az_rl1) $(code az_rl2)"
check "Azure headers: remaining only, no limit or reset" "0 0  " "$(header az_rl1 x-ratelimit-remaining-requests) $(header az_rl2 x-ratelimit-remaining-requests) $(header az_rl1 x-ratelimit-limit-requests) $(header az_rl1 x-ratelimit-reset-requests)"
check_that "Azure 429: retry-after and retry-after-ms" [ -n "$(header az_rl2 retry-after)" -a -n "$(header az_rl2 retry-after-ms)" ]
check "Azure 429: Azure's shape" 429 "$(j az_rl2 error.code)"

# ---- Anthropic: tools, thinking, images, refusals ----

body a_tool <<'EOF'
{"model":"claude-sonnet-4-5","max_tokens":100,"messages":[{"role":"user","content":"weather? #tool=get_weather"}],"tools":[{"name":"get_weather","input_schema":{"type":"object","properties":{"city":{"type":"string"},"n":{"type":"number","minimum":2.5}},"required":["city","n"]}}]}
EOF
call a_tool /v1/messages a_tool "${AN[@]}"
check "Anthropic #tool=: tool_use block and stop_reason" "tool_use tool_use get_weather" "$(j a_tool content.0.type) $(j a_tool stop_reason) $(j a_tool content.0.name)"
check "Anthropic #tool=: input is the minimal instance" '{"city": "", "n": 3}' "$(j a_tool content.0.input)"
body a_loop <<'EOF'
{"model":"claude-sonnet-4-5","max_tokens":100,"messages":[{"role":"user","content":"weather? #tool=t"},{"role":"assistant","content":[{"type":"tool_use","id":"toolu_1","name":"t","input":{}}]},{"role":"user","content":[{"type":"tool_result","tool_use_id":"toolu_1","content":"sunny"}]}],"tools":[{"name":"t","input_schema":{"type":"object"}}]}
EOF
call a_loop /v1/messages a_loop "${AN[@]}"
check "Anthropic tool result answered with text" "200 end_turn" "$(code a_loop) $(j a_loop stop_reason)"
body a_badresult <<'EOF'
{"model":"claude-sonnet-4-5","max_tokens":100,"messages":[{"role":"user","content":[{"type":"tool_result","tool_use_id":"toolu_9","content":"x"}]}]}
EOF
call a_badresult /v1/messages a_badresult "${AN[@]}"
check "Anthropic tool_result without its tool_use -> 400" 400 "$(code a_badresult)"
body a_think <<'EOF'
{"model":"claude-sonnet-4-5","max_tokens":2048,"thinking":{"type":"enabled","budget_tokens":1024},"messages":[{"role":"user","content":"think #reasoning=7 #out=5"}]}
EOF
call a_think /v1/messages a_think "${AN[@]}"
check "Anthropic thinking: a thinking block first, then text" "thinking text" "$(j a_think content.0.type) $(j a_think content.1.type)"
check "Anthropic thinking: output_tokens = 5 + 7" 12 "$(j a_think usage.output_tokens)"
for bad in '"thinking":{"type":"enabled","budget_tokens":1000}' '"thinking":{"type":"enabled","budget_tokens":4096}' \
	'"thinking":{"type":"enabled","budget_tokens":1024},"temperature":0.5' '"temperature":1.5' '"seed":1' \
	'"tool_choice":{"type":"any"}' '"top_k":-1'; do
	printf '{"model":"claude-sonnet-4-5","max_tokens":2048,"messages":[{"role":"user","content":"hi"}],%s}' "$bad" >"$TMP/a_bad.json"
	call a_bad /v1/messages a_bad "${AN[@]}"
	check "Anthropic rejects $bad" "400 invalid_request_error" "$(code a_bad) $(j a_bad error.type)"
done
printf '{"model":"claude-sonnet-4-5","max_tokens":100,"messages":[{"role":"user","content":[{"type":"image","source":{"type":"base64","media_type":"image/png","data":"%s"}},{"type":"image","source":{"type":"url","url":"https://example.com/x.jpg"}},{"type":"text","text":"abcd"}]}]}' "$PNG" >"$TMP/a_image.json"
call a_image /v1/messages a_image "${AN[@]}"
check "Anthropic two images: input_tokens = 1 + 3 + 170" 174 "$(j a_image usage.input_tokens)"
printf '{"model":"claude-sonnet-4-5","max_tokens":100,"messages":[{"role":"user","content":[{"type":"image","source":{"type":"base64","media_type":"image/bmp","data":"%s"}}]}]}' "$PNG" >"$TMP/a_badimg.json"
call a_badimg /v1/messages a_badimg "${AN[@]}"
check "Anthropic image of an unknown media type -> 400" 400 "$(code a_badimg)"
body a_cf <<'EOF'
{"model":"claude-sonnet-4-5","max_tokens":100,"messages":[{"role":"user","content":"hi #fault=content_filter"}]}
EOF
call a_cf /v1/messages a_cf "${AN[@]}"
check "Anthropic content_filter: stop_reason refusal, no content" "200 refusal []" "$(code a_cf) $(j a_cf stop_reason) $(j a_cf content)"

# ---- Gemini ----

GK=(-H 'x-goog-api-key: AIza-test')
GP=/v1beta/models/gemini-2.5-flash:generateContent
# input = ceil(9/4) [system] + ceil(12/4)+3 = 3 + 6 = 9
body g_basic <<'EOF'
{"systemInstruction":{"parts":[{"text":"Be brief."}]},"contents":[{"role":"user","parts":[{"text":"What is 2+2?"}]}],"generationConfig":{"maxOutputTokens":100,"temperature":0.2}}
EOF
call g_nokey "$GP" g_basic
check "Gemini without a key: 403 PERMISSION_DENIED" "403 PERMISSION_DENIED 403" "$(code g_nokey) $(j g_nokey error.status) $(j g_nokey error.code)"
call g_basic "$GP" g_basic "${GK[@]}"
check "Gemini basic: 200, role model, STOP" "200 model STOP" "$(code g_basic) $(j g_basic candidates.0.content.role) $(j g_basic candidates.0.finishReason)"
check_that "Gemini text starts with 'fake reply '" grep -q '^fake reply ' <(j g_basic candidates.0.content.parts.0.text)
check "Gemini usage: prompt 9, candidates 16, total 25" "9 16 25" "$(j g_basic usageMetadata.promptTokenCount) $(j g_basic usageMetadata.candidatesTokenCount) $(j g_basic usageMetadata.totalTokenCount)"
check "Gemini modelVersion" gemini-2.5-flash "$(j g_basic modelVersion)"
call g_qkey "/v1beta/models/gemini-2.0-flash-lite-001:generateContent?key=AIza-q" g_basic
check "Gemini ?key= and a model with dots: 200" "200 gemini-2.0-flash-lite-001" "$(code g_qkey) $(j g_qkey modelVersion)"
body g_dir <<'EOF'
{"contents":[{"role":"user","parts":[{"text":"abcd #cached=10 #reasoning=4 #out=6"}]}],"generationConfig":{"thinkingConfig":{"thinkingBudget":1024}}}
EOF
call g_dir "$GP" g_dir "${GK[@]}"
# input = ceil(35/4)+3 = 12; prompt = 12 + 10 cached
check "Gemini promptTokenCount INCLUDES cached (12 + 10)" 22 "$(j g_dir usageMetadata.promptTokenCount)"
check "Gemini cachedContentTokenCount, thoughtsTokenCount, candidates" "10 4 6" "$(j g_dir usageMetadata.cachedContentTokenCount) $(j g_dir usageMetadata.thoughtsTokenCount) $(j g_dir usageMetadata.candidatesTokenCount)"
check "Gemini totalTokenCount = prompt + candidates + thoughts" 32 "$(j g_dir usageMetadata.totalTokenCount)"
check "Gemini without #cached / #reasoning: no such fields" "<missing> <missing>" "$(j g_basic usageMetadata.cachedContentTokenCount) $(j g_basic usageMetadata.thoughtsTokenCount)"
body g_cap <<'EOF'
{"contents":[{"parts":[{"text":"hi"}]}],"generationConfig":{"maxOutputTokens":16}}
EOF
call g_cap "$GP" g_cap "${GK[@]}"
check "Gemini at the cap: MAX_TOKENS" MAX_TOKENS "$(j g_cap candidates.0.finishReason)"
body g_429 <<'EOF'
{"contents":[{"role":"user","parts":[{"text":"hi #fault=status:429,retry_after:7"}]}]}
EOF
call g_429 "$GP" g_429 "${GK[@]}"
check "Gemini 429: RESOURCE_EXHAUSTED, RetryInfo 7s, no Retry-After header" "429 RESOURCE_EXHAUSTED type.googleapis.com/google.rpc.RetryInfo 7s " \
	"$(code g_429) $(j g_429 error.status) $(j g_429 error.details.0.@type) $(j g_429 error.details.0.retryDelay) $(header g_429 retry-after)"
body g_503 <<'EOF'
{"contents":[{"role":"user","parts":[{"text":"hi #fault=status:503"}]}]}
EOF
call g_503 "$GP" g_503 "${GK[@]}"
check "Gemini 503: UNAVAILABLE" "503 UNAVAILABLE" "$(code g_503) $(j g_503 error.status)"
for bad in '"seed":1' '"generationConfig":{"temperature":2.5}' '"generationConfig":{"topK":3,"frob":1}' \
	'"generationConfig":{"responseMimeType":"application/json","responseSchema":{"type":"object","additionalProperties":false}}' \
	'"generationConfig":{"responseSchema":{"type":"OBJECT"}}' '"generationConfig":{"stopSequences":["a","b","c","d","e","f"]}'; do
	printf '{"contents":[{"role":"user","parts":[{"text":"hi"}]}],%s}' "$bad" >"$TMP/g_bad.json"
	call g_bad "$GP" g_bad "${GK[@]}"
	check "Gemini rejects $bad" "400 INVALID_ARGUMENT" "$(code g_bad) $(j g_bad error.status)"
done
body g_role <<'EOF'
{"contents":[{"role":"assistant","parts":[{"text":"hi"}]}]}
EOF
call g_role "$GP" g_role "${GK[@]}"
check "Gemini role assistant -> 400" 400 "$(code g_role)"
body g_tool <<'EOF'
{"contents":[{"role":"user","parts":[{"text":"weather? #tool=get_weather"}]}],"tools":[{"functionDeclarations":[{"name":"get_weather","parameters":{"type":"OBJECT","properties":{"city":{"type":"STRING"},"days":{"type":"INTEGER"}},"required":["city","days"]}}]}]}
EOF
call g_tool "$GP" g_tool "${GK[@]}"
check "Gemini #tool=: a functionCall part, finishReason STOP" 'get_weather {"city": "", "days": 0} STOP' "$(j g_tool candidates.0.content.parts.0.functionCall.name) $(j g_tool candidates.0.content.parts.0.functionCall.args) $(j g_tool candidates.0.finishReason)"
body g_any <<'EOF'
{"contents":[{"role":"user","parts":[{"text":"go"}]}],"tools":[{"functionDeclarations":[{"name":"a"},{"name":"b","parametersJsonSchema":{"type":"object","properties":{"q":{"type":"boolean"}},"required":["q"],"additionalProperties":false}}]}],"toolConfig":{"functionCallingConfig":{"mode":"ANY","allowedFunctionNames":["b"]}}}
EOF
call g_any "$GP" g_any "${GK[@]}"
check "Gemini mode ANY with allowedFunctionNames calls it" 'b {"q": false}' "$(j g_any candidates.0.content.parts.0.functionCall.name) $(j g_any candidates.0.content.parts.0.functionCall.args)"
body g_loop <<'EOF'
{"contents":[{"role":"user","parts":[{"text":"weather? #tool=t"}]},{"role":"model","parts":[{"functionCall":{"name":"t","args":{}}}]},{"role":"user","parts":[{"functionResponse":{"name":"t","response":{"r":"sunny"}}}]}],"tools":[{"functionDeclarations":[{"name":"t"}]}]}
EOF
call g_loop "$GP" g_loop "${GK[@]}"
check_that "Gemini after a functionResponse: text" [ "$(j g_loop candidates.0.content.parts.0.functionCall)" == "<missing>" -a "$(code g_loop)" == 200 ]
body g_orphan <<'EOF'
{"contents":[{"role":"user","parts":[{"functionResponse":{"name":"t","response":{}}}]}]}
EOF
call g_orphan "$GP" g_orphan "${GK[@]}"
check "Gemini functionResponse without a functionCall turn -> 400" 400 "$(code g_orphan)"
body g_schema <<'EOF'
{"contents":[{"role":"user","parts":[{"text":"extract"}]}],"generationConfig":{"responseMimeType":"application/json","responseJsonSchema":{"type":"object","properties":{"name":{"type":"string"},"n":{"type":["integer","null"]}},"required":["name","n"],"additionalProperties":false}}}
EOF
call g_schema "$GP" g_schema "${GK[@]}"
check "Gemini responseJsonSchema: the text is a minimal instance" '{"name":"","n":0}' "$(j g_schema candidates.0.content.parts.0.text)"
body g_schema2 <<'EOF'
{"contents":[{"role":"user","parts":[{"text":"extract"}]}],"generation_config":{"response_mime_type":"application/json","response_schema":{"type":"OBJECT","properties":{"ok":{"type":"BOOLEAN"}},"required":["ok"]}}}
EOF
call g_schema2 "$GP" g_schema2 "${GK[@]}"
check "Gemini responseSchema (snake_case names): minimal instance" '{"ok":false}' "$(j g_schema2 candidates.0.content.parts.0.text)"
printf '{"contents":[{"role":"user","parts":[{"text":"abcd"},{"inlineData":{"mimeType":"image/png","data":"%s"}},{"inline_data":{"mime_type":"image/jpeg","data":"%s"}}]}]}' "$PNG" "$PNG" >"$TMP/g_image.json"
call g_image "$GP" g_image "${GK[@]}"
check "Gemini two inline images: promptTokenCount = 1 + 3 + 170" 174 "$(j g_image usageMetadata.promptTokenCount)"
printf '{"contents":[{"role":"user","parts":[{"inlineData":{"mimeType":"image/png","data":"not base64!"}}]}]}' >"$TMP/g_badimg.json"
call g_badimg "$GP" g_badimg "${GK[@]}"
check "Gemini image with bad base64 -> 400" 400 "$(code g_badimg)"
body g_url <<'EOF'
{"contents":[{"role":"user","parts":[{"fileData":{"mimeType":"image/png","fileUri":"https://example.com/a.png"}}]}]}
EOF
call g_url "$GP" g_url "${GK[@]}"
check "Gemini image by an outside URL -> 400" 400 "$(code g_url)"
body g_cf <<'EOF'
{"contents":[{"role":"user","parts":[{"text":"hi #fault=content_filter"}]}]}
EOF
call g_cf "$GP" g_cf "${GK[@]}"
check "Gemini content_filter: promptFeedback.blockReason SAFETY, no candidates" "200 SAFETY <missing>" "$(code g_cf) $(j g_cf promptFeedback.blockReason) $(j g_cf candidates)"
call g_rl1 /v1beta/models/rl-gemini:generateContent g_basic "${GK[@]}"
call g_rl2 /v1beta/models/rl-gemini:generateContent g_basic "${GK[@]}"
check "Gemini limit: 200 then 429 RESOURCE_EXHAUSTED" "200 429 RESOURCE_EXHAUSTED" "$(code g_rl1) $(code g_rl2) $(j g_rl2 error.status)"
check_that "Gemini limit 429: RetryInfo retryDelay ($(j g_rl2 error.details.2.retryDelay))" grep -Eq '^[0-9]+(\.[0-9]{3})?s$' <(j g_rl2 error.details.2.retryDelay)
check "Gemini limit: no rate-limit headers, no retry-after" "  " "$(header g_rl1 x-ratelimit-remaining-requests) $(header g_rl2 retry-after) $(header g_rl2 x-ratelimit-limit-requests)"

# ---- Bedrock ----

BM=/model/anthropic.claude-3-5-sonnet-20240620-v1%3A0/converse
SIG=$(printf 'a%.0s' $(seq 64))
AMZ=(-H "x-amz-date: 20250101T000000Z" -H "authorization: AWS4-HMAC-SHA256 Credential=AKIDFAKE/20250101/us-east-1/bedrock/aws4_request, SignedHeaders=content-type;host;x-amz-date, Signature=$SIG")
# input = ceil(9/4) [system] + ceil(12/4)+3 = 9
body b_basic <<'EOF'
{"system":[{"text":"Be brief."}],"messages":[{"role":"user","content":[{"text":"What is 2+2?"}]}],"inferenceConfig":{"maxTokens":100,"temperature":0.5}}
EOF
call b_noauth "$BM" b_basic
check "Bedrock without auth: 403 {message}" "403 MissingAuthenticationTokenException" "$(code b_noauth) $(header b_noauth x-amzn-ErrorType)"
check_that "Bedrock 403 has a message" [ "$(j b_noauth message)" != "<missing>" ]
call b_basic "$BM" b_basic "${AMZ[@]}"
check "Bedrock SigV4-shaped: 200, end_turn" "200 end_turn assistant" "$(code b_basic) $(j b_basic stopReason) $(j b_basic output.message.role)"
check_that "Bedrock text starts with 'fake reply '" grep -q '^fake reply ' <(j b_basic output.message.content.0.text)
check "Bedrock usage: input 9, output 16, total 25" "9 16 25" "$(j b_basic usage.inputTokens) $(j b_basic usage.outputTokens) $(j b_basic usage.totalTokens)"
check_that "Bedrock metrics.latencyMs" [ "$(j b_basic metrics.latencyMs)" != "<missing>" ]
check "Bedrock request id header" 1 "$([ -n "$(header b_basic x-amzn-RequestId)" ] && echo 1)"
call b_bearer "$BM" b_basic -H 'authorization: Bearer ABSK-fake'
check "Bedrock API key (Bearer): 200" 200 "$(code b_bearer)"
for auth in "Credential=AKIDFAKE/20250101/us-east-1/bedrock/aws4_request, SignedHeaders=content-type;x-amz-date, Signature=$SIG" \
	"Credential=AKIDFAKE/20250101/us-east-1/s3/aws4_request, SignedHeaders=host;x-amz-date, Signature=$SIG" \
	"Credential=AKIDFAKE/20250102/us-east-1/bedrock/aws4_request, SignedHeaders=host;x-amz-date, Signature=$SIG" \
	"Credential=AKIDFAKE/20250101/us-east-1/bedrock/aws4_request, SignedHeaders=host;x-amz-date;x-amz-security-token, Signature=$SIG" \
	"Credential=AKIDFAKE/20250101/us-east-1/bedrock/aws4_request, SignedHeaders=x-amz-date;host, Signature=$SIG" \
	"Credential=AKIDFAKE/20250101/us-east-1/bedrock/aws4_request, SignedHeaders=host;x-amz-date, Signature=abc"; do
	call b_badauth "$BM" b_basic -H "x-amz-date: 20250101T000000Z" -H "authorization: AWS4-HMAC-SHA256 $auth"
	check "Bedrock refuses ${auth:0:60}...${auth: -40}" 403 "$(code b_badauth)"
done
call b_token "$BM" b_basic -H "x-amz-date: 20250101T000000Z" -H "x-amz-security-token: tok" \
	-H "authorization: AWS4-HMAC-SHA256 Credential=ASIAFAKE/20250101/eu-west-1/bedrock/aws4_request, SignedHeaders=host;x-amz-date;x-amz-security-token, Signature=$SIG"
check "Bedrock with a signed session token: 200" 200 "$(code b_token)"
body b_dir <<'EOF'
{"messages":[{"role":"user","content":[{"text":"abcd #cached=10 #cache_write=20 #out=5"}]}]}
EOF
call b_dir "$BM" b_dir "${AMZ[@]}"
# input = ceil(38/4)+3 = 13
check "Bedrock inputTokens EXCLUDE cache; reads, writes; total counts all" "13 10 20 5 48" \
	"$(j b_dir usage.inputTokens) $(j b_dir usage.cacheReadInputTokens) $(j b_dir usage.cacheWriteInputTokens) $(j b_dir usage.outputTokens) $(j b_dir usage.totalTokens)"
for f in 'status:429:ThrottlingException' 'status:400:ValidationException' 'status:403:AccessDeniedException' \
	'status:503:ServiceUnavailableException' 'status:500:InternalServerException' 'status:408:ModelTimeoutException'; do
	st=${f#status:}
	printf '{"messages":[{"role":"user","content":[{"text":"hi #fault=status:%s"}]}]}' "${st%%:*}" >"$TMP/b_f.json"
	call b_f "$BM" b_f "${AMZ[@]}"
	check "Bedrock fault ${st%%:*}: x-amzn-ErrorType ${st#*:}, {message}" "${st%%:*} ${st#*:} 1" "$(code b_f) $(header b_f x-amzn-ErrorType) $([ "$(j b_f message)" != '<missing>' ] && echo 1)"
done
check "Bedrock 429 fault: no retry-after" "" "$(header b_f retry-after)"
body b_tool <<'EOF'
{"messages":[{"role":"user","content":[{"text":"weather? #tool=get_weather"}]}],"toolConfig":{"tools":[{"toolSpec":{"name":"get_weather","inputSchema":{"json":{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}}}}]}}
EOF
call b_tool "$BM" b_tool "${AMZ[@]}"
check "Bedrock #tool=: a toolUse block, stopReason tool_use" 'tool_use get_weather {"city": ""}' "$(j b_tool stopReason) $(j b_tool output.message.content.0.toolUse.name) $(j b_tool output.message.content.0.toolUse.input)"
body b_forced <<'EOF'
{"messages":[{"role":"user","content":[{"text":"go"}]}],"toolConfig":{"tools":[{"toolSpec":{"name":"a","inputSchema":{"json":{"type":"object"}}}},{"toolSpec":{"name":"person","inputSchema":{"json":{"type":"object","properties":{"age":{"type":"integer"}},"required":["age"]}}}}],"toolChoice":{"tool":{"name":"person"}}}}
EOF
call b_forced "$BM" b_forced "${AMZ[@]}"
check "Bedrock toolChoice tool: calls it" 'person {"age": 0}' "$(j b_forced output.message.content.0.toolUse.name) $(j b_forced output.message.content.0.toolUse.input)"
body b_notoolcfg <<'EOF'
{"messages":[{"role":"user","content":[{"text":"hi"}]},{"role":"assistant","content":[{"toolUse":{"toolUseId":"t1","name":"t","input":{}}}]},{"role":"user","content":[{"toolResult":{"toolUseId":"t1","content":[{"text":"x"}]}}]}]}
EOF
call b_notoolcfg "$BM" b_notoolcfg "${AMZ[@]}"
check "Bedrock toolUse without toolConfig -> 400 ValidationException" "400 ValidationException" "$(code b_notoolcfg) $(header b_notoolcfg x-amzn-ErrorType)"
body b_think <<'EOF'
{"messages":[{"role":"user","content":[{"text":"think #reasoning=7 #out=5"}]}],"inferenceConfig":{"maxTokens":4096},"additionalModelRequestFields":{"thinking":{"type":"enabled","budget_tokens":2048}}}
EOF
call b_think "$BM" b_think "${AMZ[@]}"
check "Bedrock Claude thinking: reasoningContent first, output 5 + 7" "200 12" "$(code b_think) $(j b_think usage.outputTokens)"
check_that "Bedrock thinking: reasoningContent block" [ "$(j b_think output.message.content.0.reasoningContent.reasoningText.text)" != "<missing>" ]
call b_think_nova /model/amazon.nova-pro-v1%3A0/converse b_think "${AMZ[@]}"
check "Bedrock thinking to a non-Anthropic model -> 400" 400 "$(code b_think_nova)"
for bad in '"seed":1' '"inferenceConfig":{"temperature":1.5}' '"inferenceConfig":{"topK":5}' \
	'"additionalModelRequestFields":{"seed":1}' '"additionalModelRequestFields":{"thinking":{"type":"enabled","budget_tokens":512}}'; do
	printf '{"messages":[{"role":"user","content":[{"text":"hi"}]}],%s}' "$bad" >"$TMP/b_bad.json"
	call b_bad "$BM" b_bad "${AMZ[@]}"
	check "Bedrock rejects $bad" "400 ValidationException" "$(code b_bad) $(header b_bad x-amzn-ErrorType)"
done
body b_alt <<'EOF'
{"messages":[{"role":"user","content":[{"text":"a"}]},{"role":"user","content":[{"text":"b"}]}]}
EOF
call b_alt "$BM" b_alt "${AMZ[@]}"
check "Bedrock two user turns in a row -> 400" 400 "$(code b_alt)"
printf '{"messages":[{"role":"user","content":[{"text":"abcd"},{"image":{"format":"png","source":{"bytes":"%s"}}}]}]}' "$PNG" >"$TMP/b_image.json"
call b_image "$BM" b_image "${AMZ[@]}"
check "Bedrock image bytes: inputTokens = 1 + 3 + 85" 89 "$(j b_image usage.inputTokens)"
printf '{"messages":[{"role":"user","content":[{"image":{"format":"bmp","source":{"bytes":"%s"}}}]}]}' "$PNG" >"$TMP/b_badimg.json"
call b_badimg "$BM" b_badimg "${AMZ[@]}"
check "Bedrock image of an unknown format -> 400" 400 "$(code b_badimg)"
body b_cf <<'EOF'
{"messages":[{"role":"user","content":[{"text":"hi #fault=content_filter"}]}]}
EOF
call b_cf "$BM" b_cf "${AMZ[@]}"
check "Bedrock content_filter: stopReason content_filtered" "200 content_filtered" "$(code b_cf) $(j b_cf stopReason)"
call b_rl1 /model/rl-bedrock/converse b_basic "${AMZ[@]}"
call b_rl2 /model/rl-bedrock/converse b_basic "${AMZ[@]}"
check "Bedrock limit: 200 then 429 ThrottlingException, no headers" "200 429 ThrottlingException  " \
	"$(code b_rl1) $(code b_rl2) $(header b_rl2 x-amzn-ErrorType) $(header b_rl2 retry-after) $(header b_rl1 x-ratelimit-remaining-requests)"

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

# ---- rate limits (--limit) ----

godur_ms() { # godur_ms DURATION: a Go duration ("17ms", "1.5s", "6m0s") in ms, or "bad"
	$PY -c '
import re, sys
m = re.fullmatch(r"(?:(\d+)ms|(?:(\d+)h)?(?:(\d+)m)?(\d+(?:\.\d{1,3})?)s)", sys.argv[1])
if not m:
    print("bad"); sys.exit()
if m.group(1) is not None:
    print(int(m.group(1))); sys.exit()
h, mi, s = int(m.group(2) or 0), int(m.group(3) or 0), float(m.group(4))
print(round(h * 3600000 + mi * 60000 + s * 1000))' "$1"
}
between() { # between MIN MAX VALUE: MIN <= VALUE <= MAX (integers)
	[[ "$3" =~ ^[0-9]+$ ]] && [ "$3" -ge "$1" ] && [ "$3" -le "$2" ]
}
no_ratelimit_headers() { # no_ratelimit_headers NAME: no x-ratelimit-* nor anthropic-ratelimit-*
	! grep -qiE '^(x-ratelimit-|anthropic-ratelimit-)' "$TMP/$1.hdr"
}
is_rfc3339() { [[ "$1" =~ ^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z$ ]]; }

# OpenAI, rpm=3 (rolling): refills one request every 20 s, so the countdown
# below is exact unless a step takes 20 s
body rl_gpt <<'EOF'
{"model":"rl-gpt","messages":[{"role":"user","content":"hi"}]}
EOF
K1=(-H 'authorization: Bearer sk-rl-one')
for i in 1 2 3 4; do call "rl_gpt$i" /v1/chat/completions rl_gpt "${K1[@]}"; done
check "rpm=3: 1st admitted" 200 "$(code rl_gpt1)"
check "rpm=3: 2nd admitted" 200 "$(code rl_gpt2)"
check "rpm=3: 3rd admitted" 200 "$(code rl_gpt3)"
check "rpm=3: 4th -> 429" 429 "$(code rl_gpt4)"
check "OpenAI x-ratelimit-limit-requests on a 200" 3 "$(header rl_gpt1 x-ratelimit-limit-requests)"
check "OpenAI x-ratelimit-remaining-requests counts down" "2 1 0 0" \
	"$(for i in 1 2 3 4; do header "rl_gpt$i" x-ratelimit-remaining-requests; done | tr '\n' ' ' | sed 's/ $//')"
check "OpenAI reset-requests after one request: 20s (full again in 60/3 s)" 20s "$(header rl_gpt1 x-ratelimit-reset-requests)"
reset3=$(godur_ms "$(header rl_gpt3 x-ratelimit-reset-requests)")
check_that "OpenAI reset-requests after three: a Go duration in (40 s, 60 s] ($reset3 ms)" between 40001 60000 "$reset3"
check "rpm only: no token headers" "" "$(header rl_gpt1 x-ratelimit-limit-tokens)"
check "OpenAI limit 429 error.type" requests "$(j rl_gpt4 error.type)"
check "OpenAI limit 429 error.code" rate_limit_exceeded "$(j rl_gpt4 error.code)"
check "OpenAI limit 429 error.param" null "$(j rl_gpt4 error.param)"
check_that "OpenAI limit 429 message names model, organization, limit and use" grep -q \
	'^Rate limit reached for rl-gpt in organization org-fake on requests per min (RPM): Limit 3, Used 3, Requested 1\. Please try again in [0-9.]*m\?s\. ' \
	<(j rl_gpt4 error.message)
ra=$(header rl_gpt4 retry-after)
ra_ms=$(header rl_gpt4 retry-after-ms)
check_that "OpenAI limit 429 retry-after-ms in (0, 20000] ($ra_ms)" between 1 20000 "$ra_ms"
check "OpenAI limit 429 retry-after = retry-after-ms rounded up to seconds" "$(((ra_ms + 999) / 1000))" "$ra"
check "OpenAI limit 429 still carries the headers" 0 "$(header rl_gpt4 x-ratelimit-remaining-requests)"
call rl_gpt_k2 /v1/chat/completions rl_gpt -H 'authorization: Bearer sk-rl-two'
check "another key has its own bucket: 200" 200 "$(code rl_gpt_k2)"
check "another key has its own bucket: remaining 2" 2 "$(header rl_gpt_k2 x-ratelimit-remaining-requests)"
body rl_az <<'EOF'
{"messages":[{"role":"user","content":"hi"}]}
EOF
call rl_az '/openai/deployments/rl-gpt/chat/completions?api-version=2024-10-21' rl_az -H 'api-key: sk-rl-one'
check "the same key sent as Azure api-key shares the bucket: 429" 429 "$(code rl_az)"

# OpenAI, tpm=20: a call costs input ceil(4/4)+3 = 4 plus max_tokens 6 = 10
# tokens; refill is one token per 3 s
body rl_tok <<'EOF'
{"model":"rl-tok","max_tokens":6,"messages":[{"role":"user","content":"abcd"}]}
EOF
for i in 1 2 3; do call "rl_tok$i" /v1/chat/completions rl_tok "${K1[@]}"; done
check "tpm=20, 10 a call: 1st and 2nd admitted, 3rd 429" "200 200 429" "$(code rl_tok1) $(code rl_tok2) $(code rl_tok3)"
check "OpenAI x-ratelimit-limit-tokens" 20 "$(header rl_tok1 x-ratelimit-limit-tokens)"
check "OpenAI x-ratelimit-remaining-tokens after one call (20 - 10)" 10 "$(header rl_tok1 x-ratelimit-remaining-tokens)"
check "OpenAI x-ratelimit-reset-tokens after one call (10 tokens at 20/min)" 30s "$(header rl_tok1 x-ratelimit-reset-tokens)"
check "OpenAI x-ratelimit-remaining-requests beside tokens (rpm=100)" 99 "$(header rl_tok1 x-ratelimit-remaining-requests)"
check "OpenAI TPM 429 error.type" tokens "$(j rl_tok3 error.type)"
check_that "OpenAI TPM 429 message: TPM, Limit 20, Requested 10" grep -q \
	'^Rate limit reached for rl-tok in organization org-fake on tokens per min (TPM): Limit 20, Used [0-9]*, Requested 10\. ' \
	<(j rl_tok3 error.message)
check_that "OpenAI TPM 429 retry-after-ms: about 30 s for 10 tokens ($(header rl_tok3 retry-after-ms))" \
	between 20000 30000 "$(header rl_tok3 retry-after-ms)"

# Anthropic, rpm=2 and tpm=1000
body rl_claude <<'EOF'
{"model":"rl-claude","max_tokens":10,"messages":[{"role":"user","content":"hi"}]}
EOF
for i in 1 2 3; do call "rl_claude$i" /v1/messages rl_claude "${AN[@]}"; done
check "Anthropic rpm=2: 200 200 429" "200 200 429" "$(code rl_claude1) $(code rl_claude2) $(code rl_claude3)"
check "anthropic-ratelimit-requests-limit" 2 "$(header rl_claude1 anthropic-ratelimit-requests-limit)"
check "anthropic-ratelimit-requests-remaining counts down" "1 0 0" \
	"$(header rl_claude1 anthropic-ratelimit-requests-remaining) $(header rl_claude2 anthropic-ratelimit-requests-remaining) $(header rl_claude3 anthropic-ratelimit-requests-remaining)"
check_that "anthropic-ratelimit-requests-reset is RFC 3339 UTC ($(header rl_claude1 anthropic-ratelimit-requests-reset))" \
	is_rfc3339 "$(header rl_claude1 anthropic-ratelimit-requests-reset)"
# input ceil(2/4)+3 = 4, plus max_tokens 10: 14 a call
check "anthropic-ratelimit-tokens-limit/remaining" "1000 986" \
	"$(header rl_claude1 anthropic-ratelimit-tokens-limit) $(header rl_claude1 anthropic-ratelimit-tokens-remaining)"
check "anthropic-ratelimit-input-tokens-limit/remaining" "1000 986" \
	"$(header rl_claude1 anthropic-ratelimit-input-tokens-limit) $(header rl_claude1 anthropic-ratelimit-input-tokens-remaining)"
check "anthropic-ratelimit-output-tokens-limit/remaining" "1000 986" \
	"$(header rl_claude1 anthropic-ratelimit-output-tokens-limit) $(header rl_claude1 anthropic-ratelimit-output-tokens-remaining)"
check_that "anthropic-ratelimit-tokens-reset is RFC 3339 UTC" is_rfc3339 "$(header rl_claude1 anthropic-ratelimit-tokens-reset)"
check "Anthropic: no OpenAI headers" "" "$(header rl_claude1 x-ratelimit-limit-requests)"
check "Anthropic limit 429 type" error "$(j rl_claude3 type)"
check "Anthropic limit 429 error.type" rate_limit_error "$(j rl_claude3 error.type)"
check_that "Anthropic limit 429 message names the limit" grep -q \
	'exceed the rate limit for your organization (org-fake) of 2 requests per minute' <(j rl_claude3 error.message)
check_that "Anthropic limit 429 retry-after in [1, 30] s ($(header rl_claude3 retry-after))" \
	between 1 30 "$(header rl_claude3 retry-after)"

# fixed window, rpm=2: the third waits for the window that started with the
# first (about 60 s), where a rolling bucket would wait 30 s
body rl_fixed <<'EOF'
{"model":"rl-fixed","messages":[{"role":"user","content":"hi"}]}
EOF
for i in 1 2 3; do call "rl_fixed$i" /v1/chat/completions rl_fixed "${K1[@]}"; done
check "window=fixed rpm=2: 200 200 429" "200 200 429" "$(code rl_fixed1) $(code rl_fixed2) $(code rl_fixed3)"
check "window=fixed: remaining 1 then 0" "1 0" \
	"$(header rl_fixed1 x-ratelimit-remaining-requests) $(header rl_fixed2 x-ratelimit-remaining-requests)"
fr=$(godur_ms "$(header rl_fixed2 x-ratelimit-reset-requests)")
check_that "window=fixed: reset is the window's end, over 30 s away ($fr ms)" between 30001 60000 "$fr"
check_that "window=fixed: retry-after over 30 s ($(header rl_fixed3 retry-after))" \
	between 31 60 "$(header rl_fixed3 retry-after)"

# headers=0: no rate-limit headers, 429s keep retry-after
body rl_quiet <<'EOF'
{"model":"rl-quiet","messages":[{"role":"user","content":"hi"}]}
EOF
call rl_quiet1 /v1/chat/completions rl_quiet "${K1[@]}"
call rl_quiet2 /v1/chat/completions rl_quiet "${K1[@]}"
check "headers=0 rpm=1: 200 then 429" "200 429" "$(code rl_quiet1) $(code rl_quiet2)"
check_that "headers=0: a 200 has no rate-limit headers" no_ratelimit_headers rl_quiet1
check_that "headers=0: a 429 has no rate-limit headers" no_ratelimit_headers rl_quiet2
check_that "headers=0: the 429 keeps retry-after ($(header rl_quiet2 retry-after))" between 1 60 "$(header rl_quiet2 retry-after)"

# slow and stall bodies of a limited model carry the headers
body rl_slow <<'EOF'
{"model":"rl-slow","messages":[{"role":"user","content":"hi #fault=slow"}]}
EOF
call rl_slow /v1/chat/completions rl_slow "${K1[@]}"
check "slow body of a limited model: 200" 200 "$(code rl_slow)"
check "slow body of a limited model: complete JSON" 16 "$(j rl_slow usage.completion_tokens)"
check "slow body of a limited model: remaining-requests header" 4 "$(header rl_slow x-ratelimit-remaining-requests)"
body rl_stall <<'EOF'
{"model":"rl-slow","messages":[{"role":"user","content":"hi #fault=stall"}]}
EOF
call rl_stall /v1/chat/completions rl_stall "${K1[@]}" --max-time 2
check "stall: the head arrives (200) with its rate-limit header" "200 3" "$(code rl_stall) $(header rl_stall x-ratelimit-remaining-requests)"
check "stall: then the body stops, the connection held (curl exit 28)" 28 "$(rc rl_stall)"
len=$(header rl_stall content-length)
check "stall: half of Content-Length arrived" "$((len / 2))" "$(stat -c %s "$TMP/rl_stall.out")"

# ---- POST /control: limits and faults while running ----

ctl() { # ctl NAME JSON: POST /control
	printf '%s' "$2" >"$TMP/$1.json"
	call "$1" /control "$1"
}
call ctl_get /control -
check "GET /control lists the --limit rules" \
	'["rl-gpt:rpm=3,window=rolling,headers=1", "rl-tok:rpm=100,tpm=20,window=rolling,headers=1", "rl-claude:rpm=2,tpm=1000,window=rolling,headers=1", "rl-fixed:rpm=2,window=fixed,headers=1", "rl-quiet:rpm=1,window=rolling,headers=0", "rl-slow:rpm=5,window=rolling,headers=1", "rl-azure:rpm=1,window=rolling,headers=1", "rl-gemini:rpm=1,window=rolling,headers=1", "rl-bedrock:rpm=1,window=rolling,headers=1"]' \
	"$(j ctl_get limits)"
ctl ctl_bad1 '{"limits":["rl-ctl:rpm=x"]}'
check "control: a bad limit -> 400" 400 "$(code ctl_bad1)"
check_that "control: the 400 says which limit" grep -q 'bad limit rl-ctl:rpm=x' <(j ctl_bad1 error)
ctl ctl_bad2 '{"limits":["a:rpm=1"],"faults":["a:nonsense"]}'
check "control: a bad fault -> 400" 400 "$(code ctl_bad2)"
ctl ctl_bad3 '{"limit":[]}'
check "control: an unknown field -> 400" 400 "$(code ctl_bad3)"
ctl ctl_bad4 '{"limits":["a:rpm=1","a:rpm=2"]}'
check "control: two rules for one model -> 400" 400 "$(code ctl_bad4)"
ctl ctl_bad5 'not json'
check "control: not JSON -> 400" 400 "$(code ctl_bad5)"
call ctl_get2 /control -
check "control: a refused body changes nothing" "$(j ctl_get limits) $(j ctl_get faults)" "$(j ctl_get2 limits) $(j ctl_get2 faults)"

ctl ctl_lim '{"limits":["rl-ctl:rpm=1","*:rpm=1,window=fixed","star-b:rpm=2"]}'
check "control: new limits -> 200" 200 "$(code ctl_lim)"
check "control: the answer is the new rule set" \
	'["rl-ctl:rpm=1,window=rolling,headers=1", "*:rpm=1,window=fixed,headers=1", "star-b:rpm=2,window=rolling,headers=1"]' "$(j ctl_lim limits)"
check "control: limits alone leave the faults" "$(j ctl_get faults)" "$(j ctl_lim faults)"
body rl_ctl <<'EOF'
{"model":"rl-ctl","messages":[{"role":"user","content":"hi"}]}
EOF
call rl_ctl1 /v1/chat/completions rl_ctl "${K1[@]}"
call rl_ctl2 /v1/chat/completions rl_ctl "${K1[@]}"
check "control: the new limit applies at once (rpm=1: 200 then 429)" "200 429" "$(code rl_ctl1) $(code rl_ctl2)"
call rl_gpt5 /v1/chat/completions rl_gpt -H 'authorization: Bearer sk-rl-three'
check "control: '*' now covers rl-gpt (rpm=1)" 1 "$(header rl_gpt5 x-ratelimit-limit-requests)"
body star_a <<'EOF'
{"model":"star-a","messages":[{"role":"user","content":"hi"}]}
EOF
body star_c <<'EOF'
{"model":"star-c","messages":[{"role":"user","content":"hi"}]}
EOF
body star_b <<'EOF'
{"model":"star-b","messages":[{"role":"user","content":"hi"}]}
EOF
call star_a1 /v1/chat/completions star_a "${K1[@]}"
call star_a2 /v1/chat/completions star_a "${K1[@]}"
call star_c1 /v1/chat/completions star_c "${K1[@]}"
check "'*:rpm=1': star-a 200 then 429" "200 429" "$(code star_a1) $(code star_a2)"
check "'*': star-c has a bucket of its own" 200 "$(code star_c1)"
for i in 1 2 3; do call "star_b$i" /v1/chat/completions star_b "${K1[@]}"; done
check "a model's own rule wins over '*' (star-b rpm=2)" "200 200 429" "$(code star_b1) $(code star_b2) $(code star_b3)"

ctl ctl_lim2 '{"limits":["rl-ctl:rpm=3"]}'
call rl_ctl3 /v1/chat/completions rl_ctl "${K1[@]}"
check "control: a changed rule starts its buckets full (200, 2 left of 3)" "200 2" "$(code rl_ctl3) $(header rl_ctl3 x-ratelimit-remaining-requests)"
ctl ctl_lim3 '{"limits":["rl-ctl:rpm=3"]}'
call rl_ctl4 /v1/chat/completions rl_ctl "${K1[@]}"
check "control: an unchanged rule keeps its buckets (1 left)" 1 "$(header rl_ctl4 x-ratelimit-remaining-requests)"

ctl ctl_flt '{"faults":["ctl-model:status:502@1","hang-model:hang"]}'
check "control: new faults -> 200" '["ctl-model:status:502@1", "hang-model:hang"]' "$(j ctl_flt faults)"
body ctl_model <<'EOF'
{"model":"ctl-model","messages":[{"role":"user","content":"hi"}]}
EOF
call ctl_m1 /v1/chat/completions ctl_model "${OA[@]}"
call ctl_m2 /v1/chat/completions ctl_model "${OA[@]}"
check "control: the new fault applies (502@1, then 200)" "502 200" "$(code ctl_m1) $(code ctl_m2)"
call ctl_after /control -
check "control: the fault's count left is shown" '["ctl-model:status:502@0", "hang-model:hang"]' "$(j ctl_after faults)"
call ctl_flaky /v1/chat/completions o_flaky "${OA[@]}"
check "control: the --fault rules were replaced (flaky-model answers)" 200 "$(code ctl_flaky)"

body hang <<'EOF'
{"model":"hang-model","messages":[{"role":"user","content":"hi"}]}
EOF
call hang1 /v1/chat/completions hang "${OA[@]}" --max-time 2
check "hang: no status within 2 s" 000 "$(code hang1)"
check "hang: curl gave up on time (exit 28), the connection was held" 28 "$(rc hang1)"
check "hang: not one byte of a reply" 0 "$(stat -c %s "$TMP/hang1.out")"

ctl ctl_clear '{"clear":true}'
check "control: clear -> no rules" '{"faults": [], "limits": []}' "$(j ctl_clear "")"
call hang2 /v1/chat/completions hang "${OA[@]}"
check "control: after clear hang-model answers" 200 "$(code hang2)"
call rl_ctl5 /v1/chat/completions rl_ctl "${K1[@]}"
check "control: after clear no limit, no headers" "200 " "$(code rl_ctl5) $(header rl_ctl5 x-ratelimit-limit-requests)"

# ---- stats ----

call stats /stats -
check "GET /stats status" 200 "$(code stats)"
check "/stats counts the 529s on /v1/messages" 2 "$(j stats requests./v1/messages.status.529)"
check "/stats counts the 503s" 2 "$(j stats requests./v1/chat/completions.status.503)"
check_that "/stats has open_connections" [ "$(j stats open_connections)" != "<missing>" ]
check_that "/stats max_open_connections >= 1" at_least 1 "$(j stats max_open_connections)"
check "/stats per model: rl-gpt requests, rate_limited, by status" '2 {"200": 5, "429": 2} 7' \
	"$(j stats models.rl-gpt.rate_limited) $(j stats models.rl-gpt.status) $(j stats models.rl-gpt.requests)"
check "/stats per model: rl-claude" '1 {"200": 2, "429": 1}' "$(j stats models.rl-claude.rate_limited) $(j stats models.rl-claude.status)"
check "/stats per model: a hung call counts as never answered" '{"200": 1, "none": 1}' "$(j stats models.hang-model.status)"
check "/stats rate_limited in all" 12 "$(j stats rate_limited)"
check "/stats counts /control calls apart from requests_total" 13 "$(j stats requests./control.total)"

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
limited = {}
for x in rows:
    if x.get("rate_limited"):
        limited[x.get("model")] = limited.get(x.get("model"), 0) + 1
want = {"rl-gpt": 2, "rl-tok": 1, "rl-claude": 1, "rl-fixed": 1, "rl-quiet": 1, "rl-ctl": 1,
        "star-a": 1, "star-b": 1, "rl-azure": 1, "rl-gemini": 1, "rl-bedrock": 1}
result(limited == want, "rate_limited lines per model", repr(limited))
bad = [x["seq"] for x in rows if x.get("rate_limited") and (x["status"] != 429 or x["fault"] is not None
                                                          or x["delay_ms"] != 0)]
result(not bad, "rate_limited lines: status 429, no fault, no delay", repr(bad))
bad = [x["seq"] for x in rows if x["status"] == 429 and not x.get("rate_limited") and x["fault"] is None]
result(not bad, "every 429 is a fault or rate_limited", repr(bad))
r = [x for x in rows if x.get("path") == "/control"]
result(not r, "/control calls are not logged", repr([x["seq"] for x in r]))
r = [x for x in rows if x.get("fault") == "hang"]
result(len(r) == 1 and r[0]["status"] is None and r[0]["response"] is None and r[0]["model"] == "hang-model",
       "hang line: status null, response null, model", repr(r))
r = [x for x in rows if (x.get("path") or "").startswith("/openai/deployments/rl-gpt/")]
result(len(r) == 1 and r[0].get("model") == "rl-gpt", "Azure lines carry the deployment as model", repr(r))

apis = {"/v1/chat/completions": "openai", "/v1/messages": "anthropic", "/openai/v1/chat/completions": "azure",
        "/openai/deployments/my-dep/chat/completions": "azure",
        "/v1beta/models/gemini-2.5-flash:generateContent": "gemini",
        "/model/anthropic.claude-3-5-sonnet-20240620-v1%3A0/converse": "bedrock"}
calls = [x for x in rows if x["path"] in apis and x["method"] == "POST" and x["status"] not in (411, 413)]
bad = [(x["seq"], x.get("api")) for x in calls if x.get("api") != apis[x["path"]]]
seen = {x.get("api") for x in calls}
result(not bad and seen == set(apis.values()), "provider lines carry api (all five seen)", repr(bad[:5]))
bad = [x["seq"] for x in calls if x.get("request") != x.get("body")]
result(not bad, "provider lines carry the parsed body as request", repr(bad[:5]))
r = [x for x in rows if x["path"] == "/model/anthropic.claude-3-5-sonnet-20240620-v1%3A0/converse" and x["status"] == 200]
result(r and all(x["model"] == "anthropic.claude-3-5-sonnet-20240620-v1:0" for x in r),
       "Bedrock lines carry the decoded modelId as model", repr([x.get("model") for x in r[:3]]))
r = [x for x in rows if x["path"] in ("/healthz", "/stats") and ("api" in x or "request" in x)]
result(not r, "non-provider lines have no api or request", repr([x["seq"] for x in r]))

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
        # Azure's own errors ({"error":{"code","message"}}) are not OpenAI's
        if x["path"] == "/v1/chat/completions" and x["status"] and x["status"] >= 400 and x["response"] is not None:
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
