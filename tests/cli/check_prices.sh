#!/usr/bin/env bash
# The price table against an independent public price database: installs
# @pydantic/genai-prices from npm into $BUILD/npm (once; pinned version),
# then tests/support/genai_prices.js prices a set of usages for every entry
# of config/prices.yaml that both know (every category alone and mixed,
# both sides of every tier threshold) with our C ($BUILD/price_calc: the
# worker's loader and arithmetic) and with genai-prices' calcPrice, prints
# a table (entry, cases, max difference in nUSD, verdict) and fails on any
# difference beyond rounding to the nano-dollar, except entries that
# tests/data/prices/allow.yaml explains (the provider's published figure
# and why we differ).
# The usages sit on both sides of our tier thresholds and of the package's
# own, so a tier missing from our table is a priced difference.
# Before that, three self-checks show the comparison can fail: a table with
# one figure changed must fail, and pass once allow-listed; a table with
# one tier removed must fail.
# Last, scripts/update-prices (offline: the package is installed by then)
# must regenerate config/prices.yaml byte for byte, so a hand edit of the
# table fails here; a self-check shows a hand-edited figure is not what it
# regenerates.
# usage: tests/cli/check_prices.sh [path/to/price_calc] [path/to/prices.yaml]
# Ends with "N passed, N failed"; exits non-zero on any failure.
set -u
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}
CALC=${1:-$BUILD/price_calc}
PRICES=${2:-config/prices.yaml}
ALLOW=tests/data/prices/allow.yaml
NPM_DIR=$BUILD/npm
GENAI_VERSION=0.1.8

fail() {
    echo "FAIL $*"
    echo "0 passed, 1 failed"
    exit 1
}

[ -x "$CALC" ] || fail "$CALC is not built (make $BUILD/price_calc)"
command -v node >/dev/null 2>&1 || fail "node is not installed (make deps)"

installed() {
    [ "$(node -p "require('./$NPM_DIR/node_modules/$1/package.json').version" 2>/dev/null)" = "$2" ]
}

if ! installed @pydantic/genai-prices "$GENAI_VERSION"; then
    command -v npm >/dev/null 2>&1 || fail "npm is not installed (make deps)"
    mkdir -p "$NPM_DIR"
    [ -f "$NPM_DIR/package.json" ] || echo '{"private": true}' >"$NPM_DIR/package.json"
    (cd "$NPM_DIR" && npm install --no-audit --no-fund --loglevel=error \
        "@pydantic/genai-prices@$GENAI_VERSION") ||
        fail "npm install of @pydantic/genai-prices failed"
fi

check() {
    node tests/support/genai_prices.js check --npm "$NPM_DIR" --calc "$CALC" --prices "$1" \
        --allow "$2"
}

passed=0
failed=0
# selfcheck WHAT TABLE ALLOW PATTERN: checking TABLE against ALLOW must
# print a line matching PATTERN
selfcheck() {
    if check "$2" "$3" | grep -q "$4"; then
        echo "ok   self-check: $1"
        passed=$((passed + 1))
    else
        echo "FAIL self-check: $1: not so"
        failed=$((failed + 1))
    fi
}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# self-check: Sonnet 4.5's long-context output rate off by 0.5 USD/Mtok
sed '/"anthropic\/claude-sonnet-4-5":/,/batch_discount/ s/output: 22.5,/output: 22,/' \
    "$PRICES" >"$tmp/changed.yaml"
printf 'entries:\n  "anthropic/claude-sonnet-4-5":\n    published: "output 22.5 USD/Mtok above 200k"\n    why: "self-check of the allow-list"\n' \
    >"$tmp/allow.yaml"
if cmp -s "$PRICES" "$tmp/changed.yaml"; then
    echo "FAIL self-check: $PRICES has no Sonnet 4.5 long-context output rate to change"
    failed=$((failed + 1))
else
    selfcheck "a changed figure fails" "$tmp/changed.yaml" "$ALLOW" \
        '^anthropic/claude-sonnet-4-5 .*FAIL: ours'
fi
selfcheck "an explained difference is allowed" "$tmp/changed.yaml" "$tmp/allow.yaml" \
    '^anthropic/claude-sonnet-4-5 .*allowed: published'
# self-check: Sonnet 4.5 without its long-context tier (the package has
# it): the usages above the package's threshold must show the difference
sed '/"anthropic\/claude-sonnet-4-5":/,/batch_discount/ {/^    tiers:$/d; /above_input_tokens: 200000,/d}' \
    "$PRICES" >"$tmp/untiered.yaml"
if cmp -s "$PRICES" "$tmp/untiered.yaml"; then
    echo "FAIL self-check: $PRICES has no Sonnet 4.5 tier to remove"
    failed=$((failed + 1))
else
    selfcheck "a tier missing from the table fails" "$tmp/untiered.yaml" "$ALLOW" \
        '^anthropic/claude-sonnet-4-5 .*FAIL: ours'
fi
# self-check: what update-prices regenerates from a hand-edited table is
# not that table (the figure comes back from the package)
if node tests/support/genai_prices.js emit --npm "$NPM_DIR" --current "$tmp/changed.yaml" \
    2>/dev/null | cmp -s - "$tmp/changed.yaml"; then
    echo "FAIL self-check: a hand-edited figure is what update-prices regenerates"
    failed=$((failed + 1))
else
    echo "ok   self-check: a hand-edited figure is not what update-prices regenerates"
    passed=$((passed + 1))
fi

out=$(check "$PRICES" "$ALLOW")
rc=$?
echo "$out" | sed '$d'
last=$(echo "$out" | tail -n 1)
if [[ $last =~ ^([0-9]+)\ passed,\ ([0-9]+)\ failed$ ]]; then
    passed=$((passed + BASH_REMATCH[1]))
    failed=$((failed + BASH_REMATCH[2]))
else
    echo "$last"
    failed=$((failed + 1))
fi
[ $rc -eq 0 ] || [ $failed -gt 0 ] || failed=1

# the shipped table is exactly what scripts/update-prices writes from the
# pinned package (entries whose figures did not change keep their date)
regen=$(BUILD=$BUILD scripts/update-prices 2>&1)
urc=$?
if [ $urc -eq 0 ] && cmp -s config/prices.yaml "$BUILD/prices.candidate.yaml"; then
    echo "ok   scripts/update-prices regenerates config/prices.yaml byte for byte"
    passed=$((passed + 1))
else
    echo "$regen" | head -n 40
    echo "FAIL scripts/update-prices (exit $urc) does not regenerate config/prices.yaml"
    failed=$((failed + 1))
fi
echo "$passed passed, $failed failed"
[ $failed -eq 0 ]
