#!/usr/bin/env bash
# make demo: validate the shipped configuration, then route the example
# requests in config/requests.jsonl through the policy (a dry run: the
# plans are printed, no provider is called) and print a summary per task.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
bin=$BUILD/switchyard

"$bin" --check-config --config config/worker.yaml --policy config/policy.yaml
out=$(mktemp)
trap 'rm -f "$out"' EXIT
"$bin" --plan --config config/worker.yaml --policy config/policy.yaml \
    <config/requests.jsonl >"$out" || true
/usr/bin/python3 - "$out" <<'PY'
import collections, json, sys
first = collections.defaultdict(collections.Counter)
worst = collections.Counter()
invalid = collections.Counter()
for line in open(sys.argv[1]):
    d = json.loads(line)
    if "error" in d:
        invalid[d["error"]["code"]] += 1
        continue
    if d["outcome"] != "ok":
        first[d["task"]][d["outcome"]] += 1
        continue
    top = next(c for c in d["route"] if c["decision"] == "taken")
    first[d["task"]][top["model"]] += 1
    worst[d["task"]] += top["worst_case_nusd"]
print("\nrouting plan (dry run) for config/requests.jsonl")
print(f"{'task':18} {'first choice':40} {'worst case USD':>14}")
for task in sorted(first):
    picks = ", ".join(f"{m} x{n}" for m, n in first[task].most_common())
    print(f"{task:18} {picks:40} {worst[task] / 1e9:14.6f}")
print(f"invalid requests (would be dead letters): {sum(invalid.values())}"
      f" ({', '.join(f'{k} x{v}' for k, v in sorted(invalid.items()))})")
PY
