"""Scale-out and backpressure, through real processes:
1. in-flight caps: one worker with max_in_flight 40 against a slow
   provider never has more than 40 calls open at once (the fake provider's
   own count), and still answers everything;
2. two workers in one group share the partitions; the first is stopped
   with SIGTERM halfway (its partitions are revoked, drained, committed and
   handed over); every request is answered, and the group's committed
   offsets reach the end offsets."""

import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from harness import TEST_KEYS as KEYS, TEST_POLICY as POLICY, Checks, Harness  # noqa: E402



def requests(prefix, n):
    out = []
    for i in range(n):
        rid = f"{prefix}-{i:05d}"
        task = ["planning", "reasoning", "code"][i % 3]
        out.append((rid, json.dumps({"id": rid, "task": task, "messages": [
            {"role": "user", "content": f"request {rid}: go"}]}).encode()))
    return out


def test_caps(t):
    topics = {"requests": "cap.requests", "results": "cap.results", "costs": "cap.costs",
              "dead_letter": "cap.dlq"}
    h = Harness({v: 4 for v in topics.values()}, fake_args=["--latency-ms", "100"])
    try:
        cfg = h.write_config(f"cap-{os.getpid()}", topics, limits={
            "max_in_flight": 40, "max_in_flight_per_partition": 15, "commit_interval_ms": 300})
        reqs = requests("cap", 600)
        h.produce(topics["requests"], reqs)
        h.start_worker(cfg, POLICY, env=KEYS)
        res = h.read(topics["results"], lambda ms: len({m[0] for m in ms}) >= len(reqs), timeout=120)
        time.sleep(1)
        t.ok(h.stop_worker() == 0, "capped worker exits 0")
        t.ok(len({m[0] for m in res}) == len(reqs), f"capped worker answers all ({len(res)})")
        # calls in progress at the provider, from its own log: each call is
        # open from its arrival until its reply starts
        time.sleep(0.3)
        events = []
        for e in h.provider_log():
            events += [(e["ts_ms"], 1), (e["ts_ms"] + e["delay_ms"], -1)]
        peak = cur = 0
        for _, d in sorted(events, key=lambda x: (x[0], x[1])):
            cur += d
            peak = max(peak, cur)
        t.ok(0 < peak <= 40, f"never more than max_in_flight calls at the provider (peak {peak})")
        committed, ends = h.committed(f"cap-{os.getpid()}", topics["requests"])
        t.ok(committed == ends, f"capped worker committed everything ({committed} vs {ends})")
    finally:
        h.close()


def test_two_workers(t):
    topics = {"requests": "grp.requests", "results": "grp.results", "costs": "grp.costs",
              "dead_letter": "grp.dlq"}
    h = Harness({v: 8 for v in topics.values()}, fake_args=["--latency-ms", "30", "--jitter-ms", "40"])
    group = f"grp-{os.getpid()}"
    try:
        cfg = h.write_config(group, topics, limits={
            "max_in_flight": 100, "commit_interval_ms": 300, "rebalance_grace_ms": 5000,
            "shutdown_grace_ms": 10000})
        reqs = requests("grp", 4000)
        h.produce(topics["requests"], reqs)
        a = h.start_worker(cfg, POLICY, env=KEYS)
        b = h.start_worker(cfg, POLICY, env=KEYS)
        h.read(topics["results"], lambda ms: len({m[0] for m in ms}) >= 1000, timeout=120)
        a.send_signal(15)
        rc_a = a.wait(timeout=60)
        t.ok(rc_a == 0, f"the first worker drains and exits 0 on SIGTERM ({rc_a})")
        res = h.read(topics["results"], lambda ms: len({m[0] for m in ms}) >= len(reqs), timeout=180)
        ids = {m[0] for m in res}
        t.ok(ids == {k for k, _ in reqs}, f"every request answered across the handover ({len(ids)})")
        by = {}
        for k, v, *_ in res:
            by.setdefault(k, set()).add(json.loads(v)["worker"])
        both = {w for ws in by.values() for w in ws}
        t.ok(len(both) == 2, f"both workers served requests ({len(both)})")
        redone = sum(1 for ws in by.values() if len(ws) > 1)
        print(f"requests answered by both workers (at-least-once redo): {redone}")
        time.sleep(1.5)
        b.send_signal(15)
        t.ok(b.wait(timeout=60) == 0, "the second worker exits 0")
        committed, ends = h.committed(group, topics["requests"])
        t.ok(committed == ends, f"the group committed every offset ({committed} vs {ends})")
    finally:
        h.close()


def main():
    t = Checks()
    test_caps(t)
    test_two_workers(t)
    return t.summary()


if __name__ == "__main__":
    sys.exit(main())
