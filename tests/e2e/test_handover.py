"""A crash must not make finance pay twice: worker A finishes 50 requests
while the first one of the partition is still waiting for a slow provider
call, commits (offset 0, with the done offsets above it in the commit's
metadata), and is killed with SIGKILL. Worker B takes the partition over:
it must redo only the unfinished request, skip the 50 finished ones (no
second provider call, no second cost record), and commit to the end."""

import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from harness import TEST_KEYS as KEYS, TEST_POLICY as POLICY, Checks, Harness, bills  # noqa: E402



def main():
    t = Checks()
    topics = {"requests": "ho.requests", "results": "ho.results", "costs": "ho.costs",
              "dead_letter": "ho.dlq"}
    h = Harness({v: 1 for v in topics.values()}, fake_args=["--latency-ms", "5"])
    group = f"ho-{os.getpid()}"
    try:
        base = f"http://{h.provider_addr}"
        cfg = h.write_config(group, topics, limits={"commit_interval_ms": 200}, providers={
            "anthropic": {"type": "anthropic", "base_url": base, "timeout_ms": 60000,
                          "api_key_env": "SWITCHYARD_TEST_ANTHROPIC_KEY"},
            "openai": {"type": "openai", "base_url": base + "/v1", "timeout_ms": 60000,
                       "api_key_env": "SWITCHYARD_TEST_OPENAI_KEY"}})
        reqs = []
        for i in range(51):
            rid = f"ho-{i:03d}"
            content = f"request {rid}: go" + (" #latency=20000" if i == 0 else "")
            reqs.append((rid, json.dumps({"id": rid, "task": "code", "messages": [
                {"role": "user", "content": content}]}).encode()))
        h.produce(topics["requests"], reqs)
        a = h.start_worker(cfg, POLICY, env=KEYS)
        h.read(topics["results"], lambda ms: len({m[0] for m in ms}) >= 50, timeout=60)
        time.sleep(1.0)  # a commit interval or more: the metadata is committed
        committed, _ = h.committed(group, topics["requests"])
        t.ok(committed == [0], f"A commits nothing past the unfinished first request ({committed})")
        a.kill()
        a.wait()
        b = h.start_worker(cfg, POLICY, env=KEYS)
        res = h.read(topics["results"], lambda ms: len({m[0] for m in ms}) >= 51, timeout=90)
        time.sleep(1.0)
        b.send_signal(15)
        t.ok(b.wait(timeout=60) == 0, "B exits 0")
        time.sleep(0.3)
        calls = {}
        for e in h.provider_log():
            text = e["body"]["messages"][-1]["content"]
            rid = text.split("request ", 1)[1].split(":", 1)[0]
            calls[rid] = calls.get(rid, 0) + 1
        t.ok(calls.get("ho-000") == 2, f"the unfinished request is redone ({calls.get('ho-000')} calls)")
        twice = [k for k, n in calls.items() if k != "ho-000" and n != 1]
        t.ok(not twice, f"finished requests are not called again ({twice[:5]})")
        costs = bills(h.read(topics["costs"], lambda ms: False, timeout=3))
        t.ok(len(costs) == 51, f"one cost record per request, none paid twice ({len(costs)})")
        t.ok({m[0] for m in res} == {k for k, _ in reqs}, "every request has a result")
        committed, ends = h.committed(group, topics["requests"])
        t.ok(committed == ends == [51], f"B commits to the end ({committed} vs {ends})")
        with open(h.worker_log) as f:
            t.ok("resume_done_work" in f.read(), "B logs that it skips the finished work")
    finally:
        h.close()
    return t.summary()


if __name__ == "__main__":
    sys.exit(main())
