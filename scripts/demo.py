"""make demo: the main job on the embedded default. Starts a Kafka mock
cluster and the fake provider on 127.0.0.1, produces the example requests
in config/requests.jsonl, runs switchyard with config/policy.yaml until
everything is answered, and prints what happened: per task, which models
served how many requests and at what cost; error results; dead letters."""

import collections
import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "e2e"))
from harness import ROOT, Harness  # noqa: E402

TOPICS = {"requests": "llm.requests", "results": "llm.results", "costs": "llm.costs",
          "dead_letter": "llm.requests.dlq"}


def main():
    lines = open(os.path.join(ROOT, "config", "requests.jsonl"), "rb").read().splitlines()
    records = []
    for n, line in enumerate(lines):
        try:
            key = json.loads(line)["id"]
        except (ValueError, KeyError, TypeError):
            key = f"line-{n + 1}"
        records.append((key, line))
    h = Harness({TOPICS["requests"]: 4, TOPICS["results"]: 4, TOPICS["costs"]: 4,
                 TOPICS["dead_letter"]: 1},
                fake_args=["--latency-ms", "40", "--jitter-ms", "60",
                           "--fault", "claude-opus-4-1:status:529@5"])
    try:
        base = f"http://{h.provider_addr}"
        config = h.write_config("switchyard-demo", TOPICS, providers={
            "anthropic": {"type": "anthropic", "base_url": base, "api_key_env": "DEMO_ANTHROPIC_KEY"},
            "openai": {"type": "openai", "base_url": base + "/v1", "api_key_env": "DEMO_OPENAI_KEY"}})
        print(f"mock Kafka at {h.bootstrap}, fake provider at {h.provider_addr}")
        h.produce(TOPICS["requests"], records)
        print(f"produced {len(records)} requests to {TOPICS['requests']}")
        t0 = time.time()
        w = h.start_worker(config, os.path.join(ROOT, "config", "policy.yaml"),
                           env={"DEMO_ANTHROPIC_KEY": "demo-key-a", "DEMO_OPENAI_KEY": "demo-key-o"},
                           args=["--exit-when-idle", "1500"])
        rc = w.wait(timeout=300)
        took = time.time() - t0
        results = h.read(TOPICS["results"], lambda ms: False, timeout=3)
        costs = h.read(TOPICS["costs"], lambda ms: False, timeout=2)
        dlq = h.read(TOPICS["dead_letter"], lambda ms: False, timeout=2)
        committed, ends = h.committed("switchyard-demo", TOPICS["requests"])
    finally:
        h.close()

    res = {k: json.loads(v) for k, v, *_ in results}
    cost_recs = {}
    for k, v, *_ in costs:
        c = json.loads(v)
        cost_recs[(c["id"], c["attempt"])] = c
    served = collections.defaultdict(collections.Counter)
    spend = collections.Counter()
    errors = collections.Counter()
    for r in res.values():
        if r["status"] == "ok":
            served[r["task"]][r["model"]] += 1
        else:
            errors[r["error"]["code"]] += 1
    for c in cost_recs.values():
        spend[c["task"]] += c["cost_nusd"]
    print(f"\nswitchyard exited {rc} after {took:.1f} s\n")
    print(f"{'task':18} {'served by':44} {'cost USD':>12}")
    for task in sorted(set(served) | set(spend)):
        picks = ", ".join(f"{m} x{n}" for m, n in served[task].most_common())
        print(f"{task:18} {picks:44} {spend[task] / 1e9:12.6f}")
    total = sum(c["cost_nusd"] for c in cost_recs.values())
    answered = f"{sum(sum(s.values()) for s in served.values())} answered"
    print(f"{'total':18} {answered:44} {total / 1e9:12.6f}")
    calls = sum(len(r["attempts"]) for r in res.values())
    again = sum(1 for r in res.values() if len(r["attempts"]) > 1)
    print(f"\nprovider calls: {calls} ({again} requests retried or fell back after an "
          f"injected 529)")
    print(f"\nerror results: {sum(errors.values())} "
          f"({', '.join(f'{k} x{v}' for k, v in sorted(errors.items())) or 'none'})")
    reasons = collections.Counter(next(v.decode() for k, v in hd if k == "x-error-code")
                                  for _, _, hd, *_ in dlq)
    print(f"dead letters: {len(dlq)} ({', '.join(f'{k} x{v}' for k, v in sorted(reasons.items()))})")
    print(f"cost records: {len(cost_recs)}, {total} nUSD")
    print(f"committed offsets {committed} = end offsets {ends}: {committed == ends}")
    ok = rc == 0 and committed == ends and len(res) + len(dlq) == len(records)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
