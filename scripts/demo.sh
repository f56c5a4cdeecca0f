#!/usr/bin/env bash
# make demo: the main job on the embedded default (see scripts/demo.py).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
# --check-config reads the API keys as the start does; the demo calls only
# its fake provider, so placeholders stand in for keys not set
ANTHROPIC_API_KEY=${ANTHROPIC_API_KEY:-demo-not-used} OPENAI_API_KEY=${OPENAI_API_KEY:-demo-not-used} \
    "$BUILD/switchyard" --check-config --config config/worker.yaml --policy config/policy.yaml
BUILD=$BUILD exec /usr/bin/python3 scripts/demo.py
