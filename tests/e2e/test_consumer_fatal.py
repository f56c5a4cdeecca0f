"""A consumer that librdkafka declares fatally failed (a static member
fenced by another with the same group.instance.id, say) cannot consume
again: the worker must not linger as a live process with a dead consumer
and a green /healthz. The worker raises librdkafka's own test fatal error
(rd_kafka_test_fatal_error) after 5 messages, through
SWITCHYARD_FAULT_CONSUMER_FATAL_AFTER: it logs consumer_fatal, drains
within its shutdown bound and exits 1 so that its supervisor restarts it;
nothing is lost: a worker started after it answers every request."""

import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from harness import TEST_KEYS as KEYS, TEST_POLICY as POLICY, Checks, Harness  # noqa: E402


def main():
    t = Checks()
    topics = {"requests": "cf.requests", "results": "cf.results", "costs": "cf.costs",
              "dead_letter": "cf.dlq"}
    h = Harness({v: 2 for v in topics.values()}, fake_args=["--latency-ms", "20"])
    group = f"cf-{os.getpid()}"
    try:
        limits = {"commit_interval_ms": 200, "shutdown_grace_ms": 3000, "flush_timeout_ms": 3000}
        cfg = h.write_config(group, topics, limits=limits)
        reqs = [(f"cf-{i:03d}", json.dumps({"id": f"cf-{i:03d}", "task": "code", "messages": [
            {"role": "user", "content": f"request cf-{i:03d}"}]}).encode()) for i in range(50)]
        h.produce(topics["requests"], reqs)
        w = h.start_worker(cfg, POLICY, env=dict(KEYS, SWITCHYARD_FAULT_CONSUMER_FATAL_AFTER="5"))
        t.ok(h.wait_log("consumer_fatal", timeout=60), "the fatal error is logged (consumer_fatal)")
        t0 = time.time()
        rc = w.wait(timeout=30)
        took = time.time() - t0
        t.ok(rc == 1, f"the worker stops with exit status 1 ({rc})")
        t.ok(took < 3 + 3 + 1 + 1, f"within its shutdown bound ({took:.1f} s)")
        with open(h.worker_log) as f:
            events = [json.loads(l)["event"] for l in f if l.startswith("{")]
        t.ok("stopping" in events, "it drains as at a stop signal (stopping logged)")
        w = h.start_worker(cfg, POLICY, env=KEYS, args=["--exit-when-idle", "2000"])
        t.ok(w.wait(timeout=90) == 0, "a new worker takes over and exits 0 when idle")
        res = h.read(topics["results"], lambda ms: len({m[0] for m in ms}) >= len(reqs), timeout=30)
        t.ok({m[0] for m in res} == {k for k, _ in reqs},
             f"every request answered ({len({m[0] for m in res})} of {len(reqs)})")
        committed, ends = h.committed(group, topics["requests"])
        t.ok(committed == ends, f"committed to the end ({committed} vs {ends})")
    finally:
        h.close()
    return t.summary()


if __name__ == "__main__":
    sys.exit(main())
