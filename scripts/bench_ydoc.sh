#!/usr/bin/env bash
# Benchmark: is `--check-config` linear in the size of a policy?
# Generates two kinds of policy, each at N and 2N, and times
# `switchyard --check-config` on them, interleaved (N, 2N, N, 2N, ...):
#   keys:    one mapping of N model names (every value an alias of one model)
#   aliases: N anchored model names, 2.5 N aliases to them (the routes)
# Prints the median seconds of each and the ratio 2N/N: a linear parser
# gives about 2, a quadratic one about 4. A benchmark, not a test: it
# asserts nothing.
# Usage: scripts/bench_ydoc.sh [N (default 40000)] [RUNS (default 5)]
set -eu
cd "$(dirname "$0")/.."
n=${1:-40000}
runs=${2:-5}
bin=${BUILD:-build}/switchyard
# the generated policies use the openai provider: --check-config wants its key
export OPENAI_API_KEY=${OPENAI_API_KEY:-bench-not-used}
[ -x "$bin" ] || { echo "bench_ydoc: $bin not built (make)" >&2; exit 2; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

gen() { # gen KIND N FILE
    /usr/bin/python3 - "$1" "$2" "$3" <<'PY'
import sys
kind, n, path = sys.argv[1], int(sys.argv[2]), sys.argv[3]
out = ["models:"]
if kind == "keys":
    out.append("  base: &b {provider: openai, model: m, price: {input: 1, output: 2}}")
    out += ["  m%d: *b" % i for i in range(1, n)]
    out += ["routes:", "  default: [base]"]
else:
    out.append("  &k0 m0: &b {provider: openai, model: m, price: {input: 1, output: 2}}")
    out += ["  &k%d m%d: *b" % (i, i) for i in range(1, n)]
    out += ["routes:", "  default: [*k0]"]
    # 16 distinct candidates per route, spread over every anchor
    for r in range(max(1, (3 * n // 2) // 16)):
        c = ["*k%d" % (((r * 16 + j) * 7919) % n) for j in range(16)]
        out.append("  r%d: [%s]" % (r, ", ".join(c)))
open(path, "w").write("\n".join(out) + "\n")
PY
}

median() { sort -g | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}'; }

timeit() { # prints seconds for one --check-config run
    local s e
    s=$(date +%s.%N)
    "$bin" --check-config --config config/worker.yaml --policy "$1" >/dev/null 2>"$tmp/err" || {
        echo "bench_ydoc: $1 did not check: $(head -n 3 "$tmp/err")" >&2
        exit 1
    }
    e=$(date +%s.%N)
    echo "$e - $s" | bc -l
}

for kind in keys aliases; do
    gen "$kind" "$n" "$tmp/$kind-1.yaml"
    gen "$kind" $((2 * n)) "$tmp/$kind-2.yaml"
    : >"$tmp/t1"
    : >"$tmp/t2"
    for _ in $(seq "$runs"); do
        timeit "$tmp/$kind-1.yaml" >>"$tmp/t1"
        timeit "$tmp/$kind-2.yaml" >>"$tmp/t2"
    done
    t1=$(median <"$tmp/t1")
    t2=$(median <"$tmp/t2")
    printf 'bench_ydoc %-7s N=%d: %.3f s  2N=%d: %.3f s  ratio %.2f  (%d bytes, medians of %d)\n' \
        "$kind" "$n" "$t1" $((2 * n)) "$t2" "$(echo "$t2 / $t1" | bc -l)" \
        "$(stat -c %s "$tmp/$kind-2.yaml")" "$runs"
done
