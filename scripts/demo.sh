#!/usr/bin/env bash
# make demo: the main job on the embedded default (see scripts/demo.py).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
"$BUILD/switchyard" --check-config --config config/worker.yaml --policy config/policy.yaml
BUILD=$BUILD exec /usr/bin/python3 scripts/demo.py
