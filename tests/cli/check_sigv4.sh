#!/usr/bin/env bash
# Our SigV4 signer against AWS's: installs @smithy/signature-v4 (the AWS
# SDK for JavaScript v3's signer) and @aws-crypto/sha256-js from npm into
# $BUILD/npm (once; pinned versions), then tests/support/sigv4_smithy.js
# signs seeded generated requests with both and compares them.
# usage: tests/cli/check_sigv4.sh [path/to/sigv4_sign]
# Ends with "N passed, N failed"; exits non-zero on any failure.
# SIGV4_SEED and SIGV4_COUNT replay or widen a run.
set -u
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}
SIGNER=${1:-$BUILD/sigv4_sign}
NPM_DIR=$BUILD/npm
SMITHY_VERSION=5.7.5
SHA256_VERSION=5.2.0

fail() {
    echo "FAIL $*"
    echo "0 passed, 1 failed"
    exit 1
}

[ -x "$SIGNER" ] || fail "$SIGNER is not built (make $BUILD/sigv4_sign)"
command -v node >/dev/null 2>&1 || fail "node is not installed (make deps)"

installed() {
    local pkg=$1 want=$2
    [ "$(node -p "require('./$NPM_DIR/node_modules/$pkg/package.json').version" 2>/dev/null)" = "$want" ]
}

if ! installed @smithy/signature-v4 "$SMITHY_VERSION" ||
    ! installed @aws-crypto/sha256-js "$SHA256_VERSION"; then
    command -v npm >/dev/null 2>&1 || fail "npm is not installed (make deps)"
    mkdir -p "$NPM_DIR"
    [ -f "$NPM_DIR/package.json" ] || echo '{"private": true}' >"$NPM_DIR/package.json"
    (cd "$NPM_DIR" && npm install --no-audit --no-fund --loglevel=error \
        "@smithy/signature-v4@$SMITHY_VERSION" "@aws-crypto/sha256-js@$SHA256_VERSION") ||
        fail "npm install of @smithy/signature-v4 failed"
fi

exec node tests/support/sigv4_smithy.js --npm "$NPM_DIR" --signer "$SIGNER" \
    --seed "${SIGV4_SEED:-20240620}" --count "${SIGV4_COUNT:-200}"
