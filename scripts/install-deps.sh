#!/usr/bin/env bash
# Installs every Debian package that switchyard's build, tests, demo and
# benchmarks need. Idempotent: when all are present it does nothing (and
# does not touch the network).
set -euo pipefail

packages=(
    build-essential pkg-config
    librdkafka-dev libcurl4-openssl-dev libjansson-dev libyaml-dev libssl-dev
    libjemalloc-dev
    kcat python3 python3-confluent-kafka python3-jsonschema python3-yaml
    python3-prometheus-client prometheus
    clang libclang-rt-14-dev valgrind curl
    clang-format clang-tidy cppcheck bc jq
    libsystemd-dev systemd groff-base man-db
    nodejs
)

missing=()
for p in "${packages[@]}"; do
    status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
    [ "$status" = "install ok installed" ] || missing+=("$p")
done
# npm (tests/cli/check_sigv4.sh): Debian packages it apart from nodejs,
# NodeSource's nodejs carries it (and conflicts with Debian's npm)
command -v npm >/dev/null 2>&1 || missing+=(npm)

[ ${#missing[@]} -eq 0 ] && exit 0

echo "install-deps: installing ${missing[*]}" >&2
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
