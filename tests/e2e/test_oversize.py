"""Outputs larger than Kafka takes never stall a partition (issue 7, item 1).

- A request whose metadata holds 1,000,000 characters is answered (its
  result echoes the metadata, about 1 MB: the producer's message.max.bytes
  is sized from limits.max_message_bytes plus switchyard's envelope), its
  offset is committed, SIGTERM during its provider call exits within the
  grace, and a second owner of the partition does not call the provider
  again: exactly one call across two successive owners.
- Outputs the broker refuses for good (librdkafka's mock cluster answers
  the next Produce with the injected error, as a broker with a smaller
  max.message.bytes or a missing ACL would) are replaced, never retried
  for ever: a result by an error result `result_too_large` that says what
  was dropped; an oversized dead letter by its headers, a bounded prefix of
  the input and a pointer to the source offset; a result the topic is not
  authorized for by a dead letter `result_undeliverable`.
- A tombstone (null key, null value) is dead-lettered with null key and
  null value, not empty ones.
- Every offset is committed: nothing is left behind.
"""

import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from harness import TEST_KEYS as KEYS, TEST_POLICY as POLICY, Checks, Harness  # noqa: E402

GRACE_MS = 8000
FLUSH_MS = 5000


def request(rid, content, **extra):
    body = {"id": rid, "task": "code", "messages": [{"role": "user", "content": content}]}
    body.update(extra)
    return json.dumps(body).encode()


def main():
    t = Checks()
    topics = {"requests": "big.requests", "results": "big.results", "costs": "big.costs",
              "dead_letter": "big.dlq"}
    h = Harness({v: 1 for v in topics.values()}, fake_args=["--latency-ms", "5"])
    group = f"big-{os.getpid()}"
    big_kcat = ["-X", "message.max.bytes=8000000"]
    try:
        limits = {"commit_interval_ms": 200, "backoff_initial_ms": 20, "backoff_max_ms": 2000,
                  "shutdown_grace_ms": GRACE_MS, "flush_timeout_ms": FLUSH_MS}
        cfg = h.write_config(group, topics, limits=limits)
        meta = {"blob": "m" * 1_000_000}
        h.produce(topics["requests"],
                  [("big-1", request("big-1", "a big echo #latency=2500", metadata=meta))],
                  kcat_args=big_kcat)
        a = h.start_worker(cfg, POLICY, env=KEYS)
        # SIGTERM while the 2.5 s provider call is in flight
        t.ok(h.wait_log("partitions_assigned"), "the first owner is assigned the partition")
        time.sleep(1.0)  # its 2.5 s call is in flight
        t0 = time.time()
        a.send_signal(15)
        rc = a.wait(timeout=60)
        took = time.time() - t0
        t.ok(rc == 0, f"first owner exits 0 after SIGTERM ({rc})")
        t.ok(took < (GRACE_MS + FLUSH_MS) / 1000 + 3,
             f"SIGTERM during the call exits within the grace plus the flush bound ({took:.1f} s)")
        res = h.read(topics["results"], lambda ms: len(ms) >= 1, timeout=30)
        t.ok(len(res) == 1, f"the 1,000,000-character request is answered ({len(res)} results)")
        if res:
            r = json.loads(res[0][1])
            t.ok(r["status"] == "ok" and r.get("metadata") == meta,
                 f"its result is ok and echoes the metadata ({r['status']}, {len(res[0][1])} bytes)")
        committed, ends = h.committed(group, topics["requests"])
        t.ok(committed == ends == [1], f"its offset is committed ({committed} vs {ends})")

        b = h.start_worker(cfg, POLICY, env=KEYS, args=["--exit-when-idle", "3000"])
        t.ok(b.wait(timeout=60) == 0, "second owner exits 0")
        calls = [e for e in h.provider_log()
                 if "a big echo" in json.dumps(e.get("body", {}))]
        t.ok(len(calls) == 1, f"exactly one provider call across two owners ({len(calls)})")

        def run_owner(what):
            w = h.start_worker(cfg, POLICY, env=KEYS, args=["--exit-when-idle", "2000"])
            t.ok(w.wait(timeout=90) == 0, f"{what}: the owner exits 0")

        # the broker refuses a result as too large (a topic whose
        # max.message.bytes is below ours): an error result replaces it
        h.produce(topics["requests"], [("ob-1", request("ob-1", "cheap", budget_usd=1e-9))])
        t.ok(h.mock_command("push_errors 0 1 10").startswith("ok"), "inject MSG_SIZE_TOO_LARGE")
        run_owner("refused result")
        res = h.read(topics["results"], lambda ms: any(m[0] == "ob-1" for m in ms), timeout=20)
        ob = [json.loads(m[1]) for m in res if m[0] == "ob-1"]
        if t.ok(len(ob) == 1, f"the refused result is replaced by one result ({len(ob)})"):
            err = ob[0].get("error", {})
            t.ok(ob[0]["status"] == "error" and err.get("code") == "result_too_large",
                 f"an error result result_too_large ({err})")
            t.ok("dropped: output text" in err.get("message", ""),
                 f"saying what was dropped ({err.get('message')})")

        # the broker refuses a dead letter as too large: headers, a bounded
        # prefix and a pointer to the source offset
        h.produce(topics["requests"], [("in-2mb", b"x" * 2_000_000)], kcat_args=big_kcat)
        t.ok(h.mock_command("push_errors 0 1 10").startswith("ok"), "inject MSG_SIZE_TOO_LARGE")
        run_owner("refused dead letter")
        dlq = h.read(topics["dead_letter"], lambda ms: any(m[0] == "in-2mb" for m in ms),
                     timeout=20)
        big = [m for m in dlq if m[0] == "in-2mb"]
        if t.ok(len(big) == 1, f"the 2 MB input is dead-lettered once ({len(big)})"):
            hdrs = {k: v.decode() for k, v in big[0][2]}
            t.ok(hdrs.get("x-error-code") == "too_large", f"as too_large ({hdrs.get('x-error-code')})")
            t.ok(hdrs.get("x-error-truncated") == "true"
                 and hdrs.get("x-error-original-bytes") == "2000000",
                 f"marked truncated with the original size ({hdrs.get('x-error-original-bytes')})")
            t.ok(0 < len(big[0][1]) <= 65536 and big[0][1] == b"x" * len(big[0][1]),
                 f"its value is a bounded prefix of the input ({len(big[0][1])} bytes)")
            t.ok(hdrs.get("x-error-offset") == "2" and hdrs.get("x-error-topic") == topics["requests"],
                 "it points at the source offset")

        # the results topic refuses for good (not authorized): the request
        # is dead-lettered as result_undeliverable, pointing at its offset
        h.produce(topics["requests"], [("ob-2", request("ob-2", "cheap", budget_usd=1e-9))])
        t.ok(h.mock_command("push_errors 0 1 29").startswith("ok"),
             "inject TOPIC_AUTHORIZATION_FAILED")
        run_owner("unauthorized result")
        dlq = h.read(topics["dead_letter"], lambda ms: any(m[0] == "ob-2" for m in ms), timeout=20)
        un = [m for m in dlq if m[0] == "ob-2"]
        if t.ok(len(un) == 1, f"the undeliverable result is dead-lettered ({len(un)})"):
            hdrs = {k: v.decode() for k, v in un[0][2]}
            t.ok(hdrs.get("x-error-code") == "result_undeliverable"
                 and "authorization" in hdrs.get("x-error-message", "").lower(),
                 f"as result_undeliverable, saying why ({hdrs.get('x-error-message')})")
            t.ok(hdrs.get("x-error-offset") == "3" and json.loads(un[0][1])["id"] == "ob-2",
                 "carrying the request and pointing at its offset")

        # a tombstone: null key and null value stay null
        h.produce(topics["requests"], [("", b"")], kcat_args=["-Z"])
        run_owner("tombstone")
        dlq = h.read(topics["dead_letter"], lambda ms: any(m[0] is None for m in ms), timeout=20)
        tomb = [m for m in dlq if m[0] is None]
        if t.ok(len(tomb) == 1, "the tombstone is dead-lettered with a null key"):
            t.ok(tomb[0][1] is None, f"and a null value ({tomb[0][1]!r})")
        committed, ends = h.committed(group, topics["requests"])
        t.ok(committed == ends == [5], f"every offset is committed ({committed} vs {ends})")
        with open(h.worker_log) as f:
            lines = f.readlines()
        t.ok(len(lines) < 200, f"the worker's log stays short ({len(lines)} lines)")
    finally:
        h.close()
    return t.summary()


if __name__ == "__main__":
    sys.exit(main())
