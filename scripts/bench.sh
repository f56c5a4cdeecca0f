#!/usr/bin/env bash
# make bench: the worker measured against floors (README, "Benchmarks").
# Starts the mock cluster and the fake providers on 127.0.0.1, runs the
# scenarios interleaved (scripts/bench_run.py does the work) and ends with
# one table; results in $BUILD/bench/results.json and $BUILD/bench/table.md.
# Knobs: BENCH_RUNS (default 3), BENCH_QUICK=1 (one small run, about a
# minute). Every process it starts is stopped on exit, whatever the exit.
set -eu
cd "$(dirname "$0")/.."
build=${BUILD:-build}
for b in switchyard mock_kafka fake_provider bench_load bench_kafka bench_http bench_json; do
    [ -x "$build/$b" ] || { echo "bench: $build/$b not built (make bench builds it)" >&2; exit 2; }
done
pid=
stop() {
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    fi
}
trap stop EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP
BUILD=$build /usr/bin/python3 scripts/bench_run.py &
pid=$!
rc=0
wait "$pid" || rc=$?
pid=
exit "$rc"
