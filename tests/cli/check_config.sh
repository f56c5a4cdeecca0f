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

for f in worker-api-key-in-file worker-api-key-env-is-a-key worker-kafka-properties; do
    "$bin" --check-config --config $bad/$f.yaml >"$tmp/out" 2>"$tmp/err"
    check "$f: refused" test $? -eq 1
    check "$f: the secret is not echoed" bash -c "! grep -q DO-NOT-ECHO '$tmp/out' '$tmp/err'"
done

"$bin" --check-config --config /nonexistent/worker.yaml >"$tmp/out" 2>"$tmp/err"
check "missing file: exit 1" test $? -eq 1
check "missing file: says so" grep -q '^/nonexistent/worker.yaml:1:1: cannot open' "$tmp/err"

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
assert lines[0]["route"][0]["decision"] == "taken"
assert lines[0]["route"][0]["worst_case_nusd"] <= lines[0]["budget_nusd"] == 50000000
assert lines[1]["route"][0]["model"] == "mini", lines[1]
assert lines[2]["error"]["code"] == "invalid_json" and lines[2]["line"] == 3, lines[2]
' "$tmp/plan"

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
