"""The idempotent producer of librdkafka 2.0.2 can fail fatally (DESIGN 8).
The mock cluster's injected Produce errors are retried by librdkafka
without a fatal error, so the worker raises librdkafka's own test fatal
error (rd_kafka_test_fatal_error) after 50 acknowledgements, through
SWITCHYARD_FAULT_PRODUCER_FATAL_AFTER, while more outputs are in flight.
The worker must recreate its producer, send again from memory what was not
acknowledged (no second provider call), answer every request and commit to
the end. The first two attempts to recreate the producer fail
(SWITCHYARD_FAULT_PRODUCER_RESTART_FAILS=2, as a failed rd_kafka_new would):
the worker says so, tries again a second later, and loses nothing. An
invalid value of either fault variable stops the worker at start."""

import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from harness import TEST_KEYS as KEYS, TEST_POLICY as POLICY, Checks, Harness  # noqa: E402



def main():
    t = Checks()
    topics = {"requests": "pf.requests", "results": "pf.results", "costs": "pf.costs",
              "dead_letter": "pf.dlq"}
    h = Harness({v: 2 for v in topics.values()}, fake_args=["--latency-ms", "20", "--jitter-ms", "200"])
    group = f"pf-{os.getpid()}"
    try:
        cfg = h.write_config(group, topics, limits={"commit_interval_ms": 200})
        reqs = [(f"pf-{i:04d}", json.dumps({"id": f"pf-{i:04d}", "task": "code", "messages": [
            {"role": "user", "content": f"request pf-{i:04d}: go"}]}).encode()) for i in range(400)]
        h.produce(topics["requests"], reqs)
        h.start_worker(cfg, POLICY, env=dict(KEYS, SWITCHYARD_FAULT_PRODUCER_FATAL_AFTER="50",
                                             SWITCHYARD_FAULT_PRODUCER_RESTART_FAILS="2"))
        res = h.read(topics["results"], lambda ms: len({m[0] for m in ms}) >= len(reqs), timeout=120)
        time.sleep(1.0)
        t.ok(h.stop_worker() == 0, "the worker exits 0")
        with open(h.worker_log) as f:
            log = f.read()
        t.ok("producer_fatal" in log and "producer_restarted" in log,
             "the fatal error was raised and the producer recreated")
        t.ok(log.count('"producer_restart_failed"') == 2,
             f"the two failed restarts are logged ({log.count('producer_restart_failed')})")
        t.ok({m[0] for m in res} == {k for k, _ in reqs}, f"every request answered ({len({m[0] for m in res})})")
        time.sleep(0.3)
        calls = {}
        for e in h.provider_log():
            rid = e["body"]["messages"][-1]["content"].split("request ", 1)[1].split(":", 1)[0]
            calls[rid] = calls.get(rid, 0) + 1
        again = [k for k, n in calls.items() if n != 1]
        t.ok(not again, f"outputs were sent again from memory, not recomputed ({again[:5]})")
        committed, ends = h.committed(group, topics["requests"])
        t.ok(committed == ends, f"committed to the end ({committed} vs {ends})")
        w = h.start_worker(cfg, POLICY, env=dict(KEYS, SWITCHYARD_FAULT_PRODUCER_FATAL_AFTER="5x"))
        rc = w.wait(timeout=30)
        with open(h.worker_log) as f:
            log = f.read()
        t.ok(rc == 1 and "SWITCHYARD_FAULT_PRODUCER_FATAL_AFTER" in log,
             f"an invalid fault value stops the worker at start ({rc})")
    finally:
        h.close()
    return t.summary()


if __name__ == "__main__":
    sys.exit(main())
