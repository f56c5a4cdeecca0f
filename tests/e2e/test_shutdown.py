"""Every stop ends, and ends on time (issue 7, item 2).

1. A provider failing every call: after SIGTERM no new provider call starts
   (no retry, no fallback), the worker exits at once instead of waiting the
   whole grace, and the requests it abandoned are answered by the next
   owner (their offsets were not committed): one result per request in the
   end, and the next owner calls only for requests the first left.
2. Every broker down with outputs unacknowledged: SIGTERM exits within
   shutdown_grace_ms plus flush_timeout_ms (plus a small bound for
   leaving the group), as README states.
3. A second SIGTERM during that flush exits at once, with status 1.
4. A stop during the group's first join (before any assignment) exits 0.
5. A call still running at shutdown_grace_ms (a 10 s reply, a 1 s grace)
   is abandoned at the grace: the worker exits within the README's bound,
   says abandoned_at_grace in a JSON line, leaves the request uncommitted
   (the finished one before it committed), and a second worker in the
   group calls the provider again and answers it: one result for it
   overall.
"""

import collections
import json
import os
import sys
import time
import urllib.request

sys.path.insert(0, os.path.dirname(__file__))
from harness import TEST_KEYS as KEYS, TEST_POLICY as POLICY, Checks, Harness  # noqa: E402

# what README states for the time after the flush: leaving the group and
# freeing the clients (bounded by the same flush deadline, at least 1 s)
LEAVE_S = 1.0
SLACK_S = 2.0  # process start-up and scheduling on a loaded 2-core machine


def stop_within_bound(t, w, t0, grace, flush, what):
    """Waits for w (SIGTERM sent at t0) and checks the README's bound:
    shutdown_grace_ms + flush_timeout_ms + 1 s, and exit status 0."""
    rc = w.wait(timeout=120)
    took = time.time() - t0
    bound = (grace + flush) / 1000 + LEAVE_S + SLACK_S
    print(f"{what}: SIGTERM to exit {took:.2f} s (grace {grace} ms, flush {flush} ms)")
    t.ok(took <= bound, f"{what}: SIGTERM exits in {took:.1f} s (grace {grace} ms + flush "
         f"{flush} ms + {LEAVE_S} s, bound {bound:.1f} s)")
    t.ok(rc == 0, f"{what}: exit 0 ({rc})")


def request(rid, content):
    return json.dumps({"id": rid, "task": "code", "messages": [
        {"role": "user", "content": content}]}).encode()


def provider_post(h, path, doc):
    """POST doc to the fake provider (its /control); the decoded answer."""
    req = urllib.request.Request(f"http://{h.provider_addr}{path}", data=json.dumps(doc).encode(),
                                 headers={"content-type": "application/json"}, method="POST")
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read())


def provider_calls(h):
    """How many chat-completions calls the fake provider has received,
    counted on arrival (its log has a call only once it is answered)."""
    with urllib.request.urlopen(f"http://{h.provider_addr}/stats", timeout=10) as r:
        return json.loads(r.read())["requests"]["/v1/chat/completions"]["total"]


def call_id(e):
    """The X-Client-Request-Id (the worker's call_id) of a provider log line."""
    return {k.lower(): v for k, v in e.get("headers", {}).items()}.get("x-client-request-id")


def calls_for(log, rid):
    """The provider's log lines of the calls made for request rid (its id
    is in the prompt)."""
    return [e for e in log if f"call {rid} " in json.dumps(e.get("body"))]


def result_counts(h, topic):
    """Results per request id on topic, everything there is."""
    return collections.Counter(m[0] for m in h.read(topic, lambda ms: False, timeout=3))


def failing_provider(t):
    topics = {"requests": "sd1.requests", "results": "sd1.results", "costs": "sd1.costs",
              "dead_letter": "sd1.dlq"}
    # mini and nano (the "code" route) answer 503 to every call
    h = Harness({v: 2 for v in topics.values()},
                fake_args=["--latency-ms", "20", "--fault", "gpt-4.1-mini:status:503",
                           "--fault", "gpt-4.1-nano:status:503"])
    group = f"sd1-{os.getpid()}"
    try:
        limits = {"commit_interval_ms": 200, "backoff_initial_ms": 400, "backoff_max_ms": 2000,
                  "shutdown_grace_ms": 30000, "max_attempts": 32, "retries_per_candidate": 16}
        # the drain is what is tested: retries must still be pending at the
        # signal, so no circuit may open and end them early
        never = {"failures": 1000, "failure_percent": 100, "min_calls": 100000}
        base = f"http://{h.provider_addr}"
        providers = {
            "anthropic": {"type": "anthropic", "base_url": base, "circuit": never,
                          "api_key_env": "SWITCHYARD_TEST_ANTHROPIC_KEY", "timeout_ms": 5000},
            "openai": {"type": "openai", "base_url": base + "/v1", "circuit": never,
                       "api_key_env": "SWITCHYARD_TEST_OPENAI_KEY", "timeout_ms": 5000},
        }
        cfg = h.write_config(group, topics, limits=limits, providers=providers)
        reqs = [(f"f-{i:03d}", request(f"f-{i:03d}", f"call f-{i:03d} fails")) for i in range(100)]
        h.produce(topics["requests"], reqs)
        w = h.start_worker(cfg, POLICY, env=KEYS)
        deadline = time.time() + 30
        while time.time() < deadline and len(h.provider_log()) < 150:
            time.sleep(0.1)
        t0 = time.time()
        w.send_signal(15)
        rc = w.wait(timeout=60)
        took = time.time() - t0
        print(f"failing provider: SIGTERM to exit {took:.2f} s (grace 30 s)")
        t.ok(rc == 0, f"exit 0 after SIGTERM ({rc})")
        t.ok(took < 5, f"the drain does not wait for failing retries: {took:.1f} s of a 30 s grace")
        time.sleep(0.3)
        late = [e for e in h.provider_log() if e["ts_ms"] / 1000 > t0 + 0.1]
        t.ok(not late, f"no provider call starts after SIGTERM ({len(late)} did)")
        first = result_counts(h, topics["results"])
        committed, ends = h.committed(group, topics["requests"])
        done = sum(c for c in committed if c > 0)
        t.ok(done < 100, f"abandoned requests stay uncommitted ({committed} of {ends})")

        # the next owner, with a provider that answers now: it must answer
        # exactly what the first left, and call only for that
        provider_post(h, "/control", {"clear": True})
        restart_ms = time.time() * 1000
        w2 = h.start_worker(cfg, POLICY, env=KEYS, args=["--exit-when-idle", "2000"])
        t.ok(w2.wait(timeout=120) == 0, "the next owner answers the rest and exits 0")
        counts = result_counts(h, topics["results"])
        ids = {k for k, _ in reqs}
        twice = sorted(k for k, n in counts.items() if n != 1)
        t.ok(set(counts) == ids and not twice,
             f"one result per request across both owners ({len(counts)} of {len(ids)} ids, "
             f"{twice[:5]} more than once)")
        redone = [e for e in h.provider_log() if e["ts_ms"] > restart_ms]
        recalled = sorted(rid for rid in first if calls_for(redone, rid))
        t.ok(len(redone) >= 100 - len(first) and not recalled,
             f"the next owner calls only for requests the first did not finish "
             f"({len(redone)} calls, {recalled[:5]} were finished)")
        print(f"failing provider: {len(first)} results before the stop, committed {committed}, "
              f"{len(redone)} calls by the next owner")
    finally:
        h.close()


def abandoned_at_grace(t):
    """A call in flight at the grace is cut, not waited for, and is redone
    by the next owner."""
    topics = {"requests": "sd5.requests", "results": "sd5.results", "costs": "sd5.costs",
              "dead_letter": "sd5.dlq"}
    h = Harness({v: 1 for v in topics.values()}, fake_args=["--latency-ms", "5"])
    group = f"sd5-{os.getpid()}"
    try:
        grace, flush, slow_ms = 1000, 2000, 10000
        base = f"http://{h.provider_addr}"
        # the call's own timeout is far beyond its 10 s: only the grace cuts it
        providers = {
            "anthropic": {"type": "anthropic", "base_url": base, "timeout_ms": 60000,
                          "api_key_env": "SWITCHYARD_TEST_ANTHROPIC_KEY"},
            "openai": {"type": "openai", "base_url": base + "/v1", "timeout_ms": 60000,
                       "api_key_env": "SWITCHYARD_TEST_OPENAI_KEY"},
        }
        limits = {"commit_interval_ms": 200, "shutdown_grace_ms": grace,
                  "flush_timeout_ms": flush}
        cfg = h.write_config(group, topics, limits=limits, providers=providers)
        h.produce(topics["requests"], [("ag-done", request("ag-done", "call ag-done quick"))])
        w = h.start_worker(cfg, POLICY, env=KEYS)
        h.read(topics["results"], lambda ms: len(ms) >= 1, timeout=30)
        deadline = time.time() + 10
        while time.time() < deadline and h.committed(group, topics["requests"])[0] != [1]:
            time.sleep(0.1)
        before = h.committed(group, topics["requests"])[0]
        t.ok(before == [1], f"the finished request is committed before the stop ({before})")
        h.produce(topics["requests"], [("ag-slow", request(
            "ag-slow", f"call ag-slow takes #latency={slow_ms}"))])
        deadline = time.time() + 30
        while time.time() < deadline and provider_calls(h) < 2:
            time.sleep(0.05)
        t.ok(provider_calls(h) == 2, "the slow call reached the provider before the stop")
        t0 = time.time()
        w.send_signal(15)
        stop_within_bound(t, w, t0, grace, flush, "call in flight at the grace")
        took = time.time() - t0
        t.ok(took < slow_ms / 1000, f"the stop did not wait for the {slow_ms} ms reply "
             f"({took:.1f} s)")

        with open(h.worker_log) as f:
            lines = f.read().splitlines()
        events = []
        for line in lines:
            try:
                events.append(json.loads(line))
            except ValueError:
                events.append(None)
        bad = [line for line, e in zip(lines, events) if e is None]
        t.ok(not bad, f"every stderr line is JSON ({bad[:2]})")
        ab = [e for e in events if e and e.get("event") == "abandoned_at_grace"]
        t.ok(len(ab) == 1 and ab[0].get("level") == "warn" and ab[0].get("msg", "").startswith(
            "1 calls still running at the grace were abandoned"),
             f"one abandoned_at_grace warning, counting the one call ({ab})")
        after, ends = h.committed(group, topics["requests"])
        t.ok(after == [1] and ends == [2],
             f"the abandoned request stays uncommitted: committed {after}, log end {ends}")
        t.ok(result_counts(h, topics["results"]).get("ag-slow", 0) == 0,
             "and it has no result yet")

        w2 = h.start_worker(cfg, POLICY, env=KEYS, args=["--exit-when-idle", "2000"])
        t.ok(w2.wait(timeout=slow_ms / 1000 + 60) == 0, "the next owner answers it and exits 0")
        counts = result_counts(h, topics["results"])
        t.ok(counts == {"ag-done": 1, "ag-slow": 1},
             f"one result for each request overall ({dict(counts)})")
        # the provider logs a call when its reply is due, and answers the
        # cut one too, to nobody: the two calls are told apart by call_id
        calls = sorted(calls_for(h.provider_log(), "ag-slow"), key=lambda e: e["ts_ms"])
        ids = [call_id(e) for e in calls]
        t.ok(len(calls) == 2 and all(ids) and ids[0] != ids[1] and calls[1]["ts_ms"] > t0 * 1000,
             f"the next owner called the provider again ({len(calls)} calls, {ids})")
        res = [json.loads(m[1]) for m in h.read(topics["results"], lambda ms: False, timeout=3)
               if m[0] == "ag-slow"]
        att = [a["call_id"] for r in res for a in r.get("attempts", [])]
        t.ok(len(ids) == 2 and att == ids[1:] and res[0].get("status") == "ok",
             f"its result is the next owner's call only ({att}; calls {ids})")
        costs = [json.loads(m[1]) for m in h.read(topics["costs"], lambda ms: False, timeout=3)]
        settled = {c["call_id"] for c in costs if c.get("kind", "settled") == "settled"}
        reserved = {c["call_id"] for c in costs if c.get("kind") == "reserved"}
        t.ok(len(ids) == 2 and ids[0] in reserved and ids[0] not in settled and ids[1] in settled,
             "the cut call is reserved on the cost topic and never settled; the redo is settled")
        after, ends = h.committed(group, topics["requests"])
        t.ok(after == [2], f"then it is committed ({after})")
    finally:
        h.close()


def brokers_down(t):
    topics = {"requests": "sd2.requests", "results": "sd2.results", "costs": "sd2.costs",
              "dead_letter": "sd2.dlq"}
    for second_signal in (False, True):
        h = Harness({v: 1 for v in topics.values()}, fake_args=["--latency-ms", "5"])
        group = f"sd2-{os.getpid()}-{int(second_signal)}"
        try:
            grace, flush = 3000, (30000 if second_signal else 4000)
            limits = {"commit_interval_ms": 200, "shutdown_grace_ms": grace,
                      "flush_timeout_ms": flush}
            cfg = h.write_config(group, topics, limits=limits)
            h.produce(topics["requests"], [("warm", request("warm", "warm up"))])
            w = h.start_worker(cfg, POLICY, env=KEYS)
            h.read(topics["results"], lambda ms: len(ms) >= 1, timeout=30)
            h.produce(topics["requests"], [(f"d-{i}", request(f"d-{i}", f"slow {i} #latency=3000"))
                                           for i in range(20)])
            time.sleep(1.0)  # the worker has taken them: 3 s calls are in flight
            h.mock_command("broker_down 1")
            time.sleep(3.0)  # the calls finish; their outputs cannot be delivered
            t0 = time.time()
            w.send_signal(15)
            if second_signal:
                time.sleep(1.0)
                t1 = time.time()
                w.send_signal(15)
                rc = w.wait(timeout=60)
                print(f"second SIGTERM to exit {time.time() - t1:.2f} s")
                t.ok(time.time() - t1 < 1.0,
                     f"a second SIGTERM exits at once ({time.time() - t1:.2f} s)")
                t.ok(rc == 1, f"with status 1 ({rc})")
            else:
                stop_within_bound(t, w, t0, grace, flush, "brokers down")
                with open(h.worker_log) as f:
                    log = f.read()
                t.ok("unacknowledged_outputs" in log,
                     "it says which outputs were not acknowledged")
                lines = log.splitlines()
                bad = [l for l in lines if not l.startswith("{")]
                t.ok(not bad, f"every stderr line is JSON ({bad[:2]})")
                t.ok(len(lines) < 300, f"the log stays bounded ({len(lines)} lines)")
        finally:
            h.close()


def commit_unreachable(t):
    """Done work not yet committed (a long commit interval), then every
    broker down: the last commit cannot reach the coordinator, and must
    not wait for it beyond the bound."""
    topics = {"requests": "sd3.requests", "results": "sd3.results", "costs": "sd3.costs",
              "dead_letter": "sd3.dlq"}
    h = Harness({v: 1 for v in topics.values()}, fake_args=["--latency-ms", "5"])
    try:
        grace, flush = 2000, 3000
        cfg = h.write_config(f"sd3-{os.getpid()}", topics, limits={
            "commit_interval_ms": 60000, "shutdown_grace_ms": grace, "flush_timeout_ms": flush})
        h.produce(topics["requests"], [(f"q-{i}", request(f"q-{i}", f"quick {i}"))
                                       for i in range(10)])
        w = h.start_worker(cfg, POLICY, env=KEYS)
        h.read(topics["results"], lambda ms: len(ms) >= 10, timeout=30)
        time.sleep(0.5)  # acknowledged: the offsets are committable
        h.mock_command("broker_down 1")
        time.sleep(0.5)
        t0 = time.time()
        w.send_signal(15)
        stop_within_bound(t, w, t0, grace, flush, "commit unanswered")
    finally:
        h.close()


def before_assignment(t):
    """A stop while the worker joins its group, before its first
    assignment (the mock cluster holds a group's first join about 3 s):
    librdkafka 2.0.2 aborts when it destroys a cooperative-sticky consumer
    that joined but was never assigned, so the worker must leave it to the
    exit and still exit 0, on time, at every moment of the join."""
    topics = {"requests": "sd4.requests", "results": "sd4.results", "costs": "sd4.costs",
              "dead_letter": "sd4.dlq"}
    h = Harness({v: 1 for v in topics.values()}, fake_args=["--latency-ms", "5"])
    try:
        codes = []
        for i, delay in enumerate((0.2, 1.0, 2.0, 2.6, 2.9, 3.1, 3.4)):
            limits = {"commit_interval_ms": 200, "shutdown_grace_ms": 2000,
                      "flush_timeout_ms": 2000}
            cfg = h.write_config(f"sd4-{os.getpid()}-{i}", topics, limits=limits)
            w = h.start_worker(cfg, POLICY, env=KEYS)
            h.wait_log("started", timeout=30)
            time.sleep(delay)
            w.send_signal(15)
            try:
                codes.append(w.wait(timeout=2 + 2 + 1 + SLACK_S))
            except Exception:
                w.kill()
                codes.append("timeout")
        t.ok(codes == [0] * len(codes),
             f"a stop during the group join exits 0 on time at every moment ({codes})")
    finally:
        h.close()


def main():
    t = Checks()
    before_assignment(t)
    failing_provider(t)
    brokers_down(t)
    commit_unreachable(t)
    abandoned_at_grace(t)
    return t.summary()


if __name__ == "__main__":
    sys.exit(main())
