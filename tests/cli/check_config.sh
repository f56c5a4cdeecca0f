#!/usr/bin/env bash
# The command line as an operator uses it: exit codes, and what is printed.
# $1: the switchyard binary.
set -u
bin=${1:-build/switchyard}
pass=0
fail=0
check() { # check DESCRIPTION COMMAND...: counts one check
    local what=$1
    shift
    if "$@"; then
        pass=$((pass + 1))
    else
        fail=$((fail + 1))
        echo "FAIL: $what"
    fi
}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
bad=tests/data/bad-config

# --check-config reads the environment as the start does: the shipped
# policy's two providers need their keys (placeholders: nothing connects)
export ANTHROPIC_API_KEY=sk-test-anthropic-not-real OPENAI_API_KEY=sk-test-openai-not-real
"$bin" --check-config --config config/worker.yaml --policy config/policy.yaml >"$tmp/out" 2>"$tmp/err"
check "shipped config: exit 0" test $? -eq 0
check "shipped config: nothing on stderr" test ! -s "$tmp/err"

"$bin" --check-config --config config/worker.yaml \
    --policy $bad/policy-misspelt-and-wrong-type.yaml >"$tmp/out" 2>"$tmp/err"
check "misspelt key + wrong type: exit 1" test $? -eq 1
check "misspelt key + wrong type: two located errors" \
    test "$(grep -cE "^$bad/policy-misspelt-and-wrong-type.yaml:[0-9]+:[0-9]+: " "$tmp/err")" -eq 2
check "misspelt key + wrong type: nothing else printed" test "$(wc -l <"$tmp/err")" -eq 2
check "misspelt key suggests the right one" grep -q 'did you mean "budget"' "$tmp/err"

# errors in both files are reported in one run
"$bin" --check-config --config $bad/worker-bad-limits.yaml \
    --policy $bad/policy-many-errors.yaml >"$tmp/out" 2>"$tmp/err"
check "errors in both files: exit 1" test $? -eq 1
check "errors in both files: all reported" test "$(wc -l <"$tmp/err")" -eq 13

for f in worker-api-key-in-file worker-api-key-env-is-a-key worker-kafka-properties \
    worker-api-key-env-key-shaped; do
    "$bin" --check-config --config $bad/$f.yaml >"$tmp/out" 2>"$tmp/err"
    check "$f: refused" test $? -eq 1
    check "$f: the secret is not echoed" bash -c "! grep -qE 'DO-NOT-ECHO|DONOTECHO' '$tmp/out' '$tmp/err'"
done
check "key-shaped api_key_env: each refused, located" \
    test "$(grep -c "^$bad/worker-api-key-env-key-shaped.yaml:[0-9]*:18: api_key_env: this looks like an API key" "$tmp/err")" -eq 5

# librdkafka's verdict on values written in the file, at each value
"$bin" --check-config --config $bad/worker-kafka-bad-values.yaml >"$tmp/out" 2>"$tmp/err"
check "socket.timeout.ms: abc, compression.codec: zzz: exit 1" test $? -eq 1
check "socket.timeout.ms: abc, compression.codec: zzz: the exact located lines" \
    diff <(sed "s|^|$bad/|" $bad/worker-kafka-bad-values.expected) "$tmp/err"

# What only the environment or the built librdkafka conf objects show:
# --check-config finds, without connecting, what start would refuse, and
# the start refuses with the same lines (as error events) before it
# connects. tests/data/bad-config/preflight/NAME.yaml: worker-* is checked
# with config/policy.yaml, policy-* with config/worker.yaml; NAME.expected
# holds the exact lines (empty: accepted).
pre=$bad/preflight
pre_env=(env -u SWITCHYARD_TEST_UNSET_KEY -u SWITCHYARD_TEST_UNSET_KEY_TOO
    -u SWITCHYARD_TEST_UNSET_SECRET SWITCHYARD_TEST_EMPTY_KEY= SWITCHYARD_TEST_TIMEOUT=abc
    SWITCHYARD_TEST_SMALL=1 SWITCHYARD_TEST_PROTOCOL=hunter2-DONOTECHO)
npre=0
for yaml in $pre/*.yaml; do
    name=$(basename "$yaml" .yaml)
    npre=$((npre + 1))
    case $name in
    worker-*) files=(--config "$yaml" --policy config/policy.yaml) ;;
    *) files=(--config config/worker.yaml --policy "$yaml") ;;
    esac
    want=0
    [ -s $pre/$name.expected ] && want=1
    "${pre_env[@]}" "$bin" --check-config "${files[@]}" >"$tmp/out" 2>"$tmp/err"
    check "preflight $name: --check-config exits $want" test $? -eq $want
    check "preflight $name: --check-config prints exactly $name.expected" \
        diff $pre/$name.expected "$tmp/err"
    check "preflight $name: no value from the environment printed" \
        bash -c "! grep -q DONOTECHO '$tmp/out' '$tmp/err'"
    [ $want -eq 1 ] || continue
    # the start: no Kafka listens on 127.0.0.1:9092 here, and none is needed
    "${pre_env[@]}" timeout 20 "$bin" "${files[@]}" >"$tmp/out" 2>"$tmp/err"
    check "preflight $name: the start exits 1" test $? -eq 1
    check "preflight $name: the start logs the same lines as error events, and nothing else" \
        /usr/bin/python3 -c '
import json, sys
want = open(sys.argv[1]).read().splitlines()
events = [json.loads(l) for l in open(sys.argv[2]) if l.strip()]
got = [e["msg"] for e in events if e["level"] == "error"]
assert got == want and len(events) == len(want), (got, want)
' $pre/$name.expected "$tmp/err"
    check "preflight $name: the start prints no value from the environment" \
        bash -c "! grep -q DONOTECHO '$tmp/err'"
done
check "preflight: at least 5 cases" test $npre -ge 5
check "preflight: the budget is named as the router sees it" \
    grep -q ':12:16: budget.default_usd: 0.000001 USD affords no route.* the cheapest is route "classification" (nano), which needs 0.0000071 USD$' \
    $pre/policy-budget-unaffordable.expected
# without the keys the shipped files are refused, each variable located
env -u ANTHROPIC_API_KEY OPENAI_API_KEY= "$bin" --check-config --config config/worker.yaml \
    --policy config/policy.yaml >"$tmp/out" 2>"$tmp/err"
check "shipped config without keys: exit 1" test $? -eq 1
# (the positions are those of the api_key_env values in the shipped file)
la=$(grep -n 'api_key_env: ANTHROPIC_API_KEY' config/worker.yaml | cut -d: -f1)
lo=$(grep -n 'api_key_env: OPENAI_API_KEY' config/worker.yaml | cut -d: -f1)
check "shipped config without keys: both variables, located" diff - "$tmp/err" <<EOF
config/worker.yaml:$la:18: provider anthropic: the environment variable that api_key_env names (ANTHROPIC_API_KEY) is not set or empty
config/worker.yaml:$lo:18: provider openai: the environment variable that api_key_env names (OPENAI_API_KEY) is not set or empty
EOF

"$bin" --check-config --config /nonexistent/worker.yaml >"$tmp/out" 2>"$tmp/err"
check "missing file: exit 1" test $? -eq 1
check "missing file: says so" grep -q '^/nonexistent/worker.yaml:1:1: cannot open' "$tmp/err"

# anything but a regular file is refused at once: a FIFO used to block for
# ever (timeout turns a regression into a failure, not a hang)
mkfifo "$tmp/fifo.yaml"
timeout 10 "$bin" --check-config --config "$tmp/fifo.yaml" --policy config/policy.yaml \
    >"$tmp/out" 2>"$tmp/err"
check "FIFO as worker.yaml: exit 1 at once" test $? -eq 1
check "FIFO as worker.yaml: says so" grep -qx "$tmp/fifo.yaml:1:1: not a regular file (a FIFO)" "$tmp/err"
timeout 10 "$bin" --check-config --config config/worker.yaml --policy "$tmp/fifo.yaml" \
    >"$tmp/out" 2>"$tmp/err"
check "FIFO as policy.yaml: exit 1 at once" test $? -eq 1
check "FIFO as policy.yaml: says so" grep -qx "$tmp/fifo.yaml:1:1: not a regular file (a FIFO)" "$tmp/err"
timeout 10 "$bin" --check-config --config config/worker.yaml --policy /dev/zero \
    >"$tmp/out" 2>"$tmp/err"
check "a device as policy.yaml: refused" \
    grep -qx "/dev/zero:1:1: not a regular file (a character device)" "$tmp/err"
truncate -s 5M "$tmp/big.yaml"
timeout 10 "$bin" --check-config --config "$tmp/big.yaml" --policy config/policy.yaml \
    >"$tmp/out" 2>"$tmp/err"
check "a 5 MiB file: refused" grep -qx "$tmp/big.yaml:1:1: the file is larger than 4 MiB" "$tmp/err"

# invalid environment values are refused before anything starts: exit 2
# with a message (the worker would otherwise go on to connect)
env_refused() { # env_refused DESCRIPTION PATTERN VAR=VALUE...: one check each for exit and message
    local what=$1 pattern=$2
    shift 2
    env "$@" timeout 10 "$bin" --config config/worker.yaml --policy config/policy.yaml \
        >"$tmp/out" 2>"$tmp/err"
    check "$what: exit 2" test $? -eq 2
    check "$what: says why" grep -q "$pattern" "$tmp/err"
}
env_refused "SWITCHYARD_LOG_LEVEL=verbose" \
    '^switchyard: SWITCHYARD_LOG_LEVEL: expected one of debug, info, warn, error$' \
    SWITCHYARD_LOG_LEVEL=verbose
env_refused "SWITCHYARD_LOG_LEVEL=INFO" 'SWITCHYARD_LOG_LEVEL: expected one of' \
    SWITCHYARD_LOG_LEVEL=INFO
env_refused "SWITCHYARD_WORKER_ID with a space" \
    '^switchyard: SWITCHYARD_WORKER_ID: expected 1 to 127 printable ASCII characters' \
    "SWITCHYARD_WORKER_ID=worker 1"
env_refused "SWITCHYARD_WORKER_ID of 128 bytes" 'SWITCHYARD_WORKER_ID: expected 1 to 127' \
    "SWITCHYARD_WORKER_ID=$(printf 'w%.0s' $(seq 128))"
env_refused "SWITCHYARD_WORKER_ID with a newline" 'SWITCHYARD_WORKER_ID: expected 1 to 127' \
    "SWITCHYARD_WORKER_ID=$(printf 'a\nb')"
SWITCHYARD_LOG_LEVEL=warn SWITCHYARD_WORKER_ID="$(printf 'w%.0s' $(seq 127))" \
    "$bin" --check-config --config config/worker.yaml --policy config/policy.yaml \
    >"$tmp/out" 2>"$tmp/err"
check "valid SWITCHYARD_LOG_LEVEL and a 127-byte SWITCHYARD_WORKER_ID: accepted" test $? -eq 0

# a provider the policy uses with no key in its variable: the worker does
# not start, names the variable, and prints no value
env -u ANTHROPIC_API_KEY OPENAI_API_KEY=sk-test-not-a-real-key-0001 timeout 10 \
    "$bin" --config config/worker.yaml --policy config/policy.yaml >"$tmp/out" 2>"$tmp/err"
check "missing API key: exit 1 before connecting" test $? -eq 1
check "missing API key: names the variable" \
    grep -q '"missing_api_key".*ANTHROPIC_API_KEY) is not set' "$tmp/err"
check "missing API key: the other key is not printed" \
    bash -c "! grep -q 'sk-test-not' '$tmp/err'"

"$bin" --bogus >/dev/null 2>&1
check "unknown option: exit 2" test $? -eq 2
"$bin" --check-config stray-argument >/dev/null 2>&1
check "stray argument: exit 2" test $? -eq 2

# --plan: one JSON line out per request line in, errors included
printf '%s\n' \
    '{"id":"p1","task":"planning","budget_usd":0.05,"messages":[{"role":"user","content":"hi"}]}' \
    '{"id":"p2","task":"unheard-of","messages":[{"role":"user","content":"hi"}]}' \
    'not json' |
    "$bin" --plan --config config/worker.yaml --policy config/policy.yaml >"$tmp/plan"
check "--plan exits 1 when a line is invalid" test $? -eq 1
check "--plan prints one line per request" test "$(wc -l <"$tmp/plan")" -eq 3
check "--plan: planning goes to opus first" \
    /usr/bin/python3 -c '
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1])]
assert lines[0]["outcome"] == "ok" and lines[0]["route"][0]["model"] == "opus", lines[0]
assert lines[0]["route"][0]["decision"] == "taken" and lines[0]["on_rate_limit"] == "wait"
assert lines[0]["route"][0]["worst_case_nusd"] <= lines[0]["budget_nusd"] == 50000000
assert lines[1]["route"][0]["model"] == "mini", lines[1]
assert lines[2]["error"]["code"] == "invalid_json" and lines[2]["line"] == 3, lines[2]
' "$tmp/plan"

# --plan with issue 10's fields: a pinned model, a field only some honour
printf '%s\n' \
    '{"id":"q1","task":"planning","model":["mini","sonnet"],"messages":[{"role":"user","content":"hi"}]}' \
    '{"id":"q2","task":"planning","seed":7,"messages":[{"role":"user","content":"hi"}]}' \
    '{"id":"q3","task":"planning","model":"no-such-model","messages":[{"role":"user","content":"hi"}]}' |
    "$bin" --plan --config config/worker.yaml --policy config/policy.yaml >"$tmp/plan2"
check "--plan: pinned models replace the route, unsupported fields skip, unknown pins are named" \
    /usr/bin/python3 -c '
import json, sys
q1, q2, q3 = [json.loads(l) for l in open(sys.argv[1])]
assert q1["pinned"] is True and [c["model"] for c in q1["route"]] == ["mini", "sonnet"], q1
assert all(c["reason"].startswith("pinned") for c in q1["route"]), q1
skipped = [c for c in q2["route"] if c["reason"] == "unsupported: seed"]
assert skipped and all(c["decision"] == "skipped" for c in skipped), q2
assert q2["outcome"] == "ok" and "pinned" not in q2, q2
assert q3["outcome"] == "unknown_model" and "no-such-model" in q3["reason"], q3
' "$tmp/plan2"

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
