"""Consumer paths on the mock cluster that only a rebalance or a broker
failure reaches:
1. a lost assignment (the mock answers a heartbeat with UNKNOWN_MEMBER_ID
   while a slow call is in flight): nothing is committed for the lost
   generation, the offset is committed only after the next owner has redone
   the unfinished request, and the work finished above it is skipped; the
   partition holding the slow call is reported as stalled meanwhile;
2. an expired rebalance grace: a second worker joins while the first has a
   slow call in flight on each partition; the partition it gives up is
   released after rebalance_grace_ms with its commit at the done prefix, and
   the new owner redoes the unfinished request;
3. held commits: after a commit fails with REBALANCE_IN_PROGRESS, periodic
   commits wait (none is sent) until the next assignment, then the offset
   reaches the end;
4. readiness: /readyz is 200 in the group, not 200 with every broker down,
   and 200 again when the broker is back."""

import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from harness import TEST_KEYS as KEYS, TEST_POLICY as POLICY, Checks, Harness, http_status  # noqa: E402

HEARTBEAT, OFFSET_COMMIT = 12, 8
UNKNOWN_MEMBER_ID, REBALANCE_IN_PROGRESS = 25, 27


def request(rid, latency=None):
    content = f"request {rid}: go" + (f" #latency={latency}" if latency else "")
    return (rid, json.dumps({"id": rid, "task": "code", "messages": [
        {"role": "user", "content": content}]}).encode())


def produce_to(h, topic, partition, records):
    data = b"".join(k.encode() + b"\t" + v + b"\n" for k, v in records)
    subprocess.run(["kcat", "-P", "-b", h.bootstrap, "-t", topic, "-p", str(partition), "-K", "\t",
                    "-X", "enable.idempotence=true"], input=data, check=True, timeout=120)


def events(path):
    out = []
    with open(path) as f:
        for l in f:
            try:
                out.append(json.loads(l))
            except ValueError:
                pass
    return out


def calls(h):
    """{request id: [(start ms, end ms), ...]} from the provider's own log."""
    out = {}
    for e in h.provider_log():
        text = e["body"]["messages"][-1]["content"]
        rid = text.split("request ", 1)[1].split(":", 1)[0]
        out.setdefault(rid, []).append((e["ts_ms"], e["ts_ms"] + e["delay_ms"]))
    return out


def wait_for(cond, timeout):
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = cond()
        if v:
            return v
        time.sleep(0.1)
    return cond()


def commits(evs, partition=None):
    """(ts_ms, partition, offset) of every commit the worker sent (debug log)."""
    out = []
    for e in evs:
        if e.get("event") == "commit":
            w = e["msg"].split()
            p, off = int(w[1]), int(w[3])
            if partition is None or p == partition:
                out.append((e["ts_ms"], p, off))
    return out


def slow_providers(h):
    base = f"http://{h.provider_addr}"
    return {"anthropic": {"type": "anthropic", "base_url": base, "timeout_ms": 60000,
                          "api_key_env": "SWITCHYARD_TEST_ANTHROPIC_KEY"},
            "openai": {"type": "openai", "base_url": base + "/v1", "timeout_ms": 60000,
                       "api_key_env": "SWITCHYARD_TEST_OPENAI_KEY"}}


def test_lost(t):
    topics = {"requests": "lost.requests", "results": "lost.results", "costs": "lost.costs",
              "dead_letter": "lost.dlq"}
    h = Harness({v: 1 for v in topics.values()}, fake_args=["--latency-ms", "5"])
    group = f"lost-{os.getpid()}"
    try:
        cfg = h.write_config(group, topics, limits={"commit_interval_ms": 200,
                                                    "stalled_partition_ms": 1000},
                             providers=slow_providers(h))
        reqs = [request("lost-0", latency=15000)] + [request(f"lost-{i}") for i in range(1, 6)]
        h.produce(topics["requests"], reqs)
        h.start_worker(cfg, POLICY, env=dict(KEYS, SWITCHYARD_LOG_LEVEL="debug"))
        # the provider logs a call when it answers: the five fast ones
        # answered means the slow one, taken first, is in flight
        t.ok(wait_for(lambda: len(calls(h)) == 5 and "lost-0" not in calls(h), 30),
             "the fast requests are answered while the slow one is in flight")
        t.ok(wait_for(lambda: any(e.get("event") == "commit" and "sy1:1+5" in e["msg"]
                                  for e in events(h.worker_log)), 30),
             "the worker commits offset 0 saying 1-5 are done")
        t.ok(h.mock_command(f"push_errors {HEARTBEAT} 1 {UNKNOWN_MEMBER_ID}") == "ok",
             "the mock will answer a heartbeat with UNKNOWN_MEMBER_ID")
        res = h.read(topics["results"], lambda ms: len(ms) >= 7, timeout=60)
        t.ok(wait_for(lambda: h.committed(group, topics["requests"])[0] == [6], 30),
             "the partition is committed to the end at last")
        t.ok(h.stop_worker() == 0, "exits 0")
        evs = events(h.worker_log)
        t.ok(any(e.get("event") == "partitions_lost" for e in evs),
             "the heartbeat error made the worker lose its assignment")
        c = calls(h)
        t.ok(len(c.get("lost-0", [])) == 2, f"the request in flight at the loss is redone ({c.get('lost-0')})")
        t.ok(all(len(c.get(f"lost-{i}", [])) == 1 for i in range(1, 6)),
             f"the finished ones are skipped, not paid twice ({[len(c.get(f'lost-{i}', [])) for i in range(1, 6)]})")
        redo_end = max(end for _, end in c.get("lost-0", [(0, 0)]))
        first_end = min(end for _, end in c.get("lost-0", [(0, 0)]))
        past = [(ts, off) for ts, _, off in commits(evs) if off > 0]
        t.ok(past and past[0][0] >= redo_end,
             f"offset 0 is committed past only after the redo ends (first commit past 0 at "
             f"{past[0][0] if past else None}, first call ends {first_end}, redo ends {redo_end})")
        t.ok(len({m[0] for m in res}) == 6, "every request has a result")
        stalled = [e for e in evs if e.get("event") == "partition_stalled"]
        t.ok(stalled and "lost.requests/0" in stalled[0]["msg"] and "been 0 " in stalled[0]["msg"],
             f"the partition waiting on the slow call is reported stalled at offset 0 "
             f"({stalled[0]['msg'][:100] if stalled else None})")
    finally:
        h.close()


def test_grace(t):
    topics = {"requests": "grace.requests", "results": "grace.results", "costs": "grace.costs",
              "dead_letter": "grace.dlq"}
    h = Harness({v: 2 for v in topics.values()}, fake_args=["--latency-ms", "5"])
    group = f"grace-{os.getpid()}"
    try:
        cfg = h.write_config(group, topics, limits={"commit_interval_ms": 200,
                                                    "rebalance_grace_ms": 1000},
                             providers=slow_providers(h),
                             # librdkafka 2.0.2's mock turns a member joining a
                             # cooperative group into a lost assignment for the
                             # others; an eager revoke is a revoke
                             extra_kafka={"partition.assignment.strategy": "range"})
        for p in (0, 1):
            produce_to(h, topics["requests"], p, [request(f"g{p}-0", latency=15000),
                                                  request(f"g{p}-1"), request(f"g{p}-2")])
        h.start_worker(cfg, POLICY, env=dict(KEYS, SWITCHYARD_LOG_LEVEL="debug"))
        log_a = h.worker_log
        t.ok(wait_for(lambda: len(calls(h)) == 4, 30),
             "A answers the fast requests while a slow one is in flight on each partition")

        def done_committed():
            evs, seen = events(log_a), set()
            for i, e in enumerate(evs):
                if e.get("event") == "commit" and "sy1:1+2" in e["msg"]:
                    seen.add(int(e["msg"].split()[1]))
                    if seen == {0, 1} and any(x.get("event") == "commit_ok" for x in evs[i:]):
                        return True
            return False
        t.ok(wait_for(done_committed, 30), "A commits offset 0 of each, saying 1-2 are done")
        h.start_worker(cfg, POLICY, env=KEYS)
        log_b = h.worker_log
        h.read(topics["results"], lambda ms: len({m[0] for m in ms}) >= 6, timeout=90)
        t.ok(wait_for(lambda: h.committed(group, topics["requests"])[0] == [3, 3], 60),
             "both partitions are committed to the end at last")
        evs_a = events(log_a)
        expired = [e for e in evs_a if e.get("event") == "revoke_grace_expired"]
        # the group may rebalance more than once while B joins (timing):
        # every release counts, each partition at least once
        t.ok({int(e["msg"].split()[1]) for e in expired} == {0, 1},
             f"A (eager: everything revoked) releases both partitions at the grace with their "
             f"slow calls unfinished ({[e['msg'][:40] for e in expired]})")
        released = min((e["ts_ms"] for e in expired), default=0)
        c = calls(h)
        t.ok(all(len(c.get(f"g{p}-0", [])) >= 2 for p in (0, 1)),
             f"each unfinished request is redone by the partition's next owner "
             f"({[len(c.get(f'g{p}-0', [])) for p in (0, 1)]} calls)")
        t.ok(all(len(c.get(f"g{p}-{i}", [])) == 1 for p in (0, 1) for i in (1, 2)),
             f"finished requests are not called again ({ {k: len(v) for k, v in c.items()} })")
        first_end = min(end for p in (0, 1) for _, end in c.get(f"g{p}-0", [(0, 0)]))
        t.ok(released and released < first_end,
             "the release comes at the grace, before the slow calls end")
        before = [off for ts, _, off in commits(evs_a) if ts <= released]
        t.ok(before and max(before) == 0,
             f"until the release A commits only the done prefix, offset 0 ({sorted(set(before))})")
        skipped = [e for e in events(log_b) + evs_a if e.get("event") == "resume_done_work"]
        t.ok(len(skipped) >= 2,
             f"each next owner skips what A finished above the commit ({len(skipped)})")
        for w in list(h.procs[2:]):
            w.send_signal(15)
        t.ok(all(w.wait(timeout=60) == 0 for w in h.procs[2:]), "both workers exit 0")
    finally:
        h.close()


def test_held(t):
    topics = {"requests": "held.requests", "results": "held.results", "costs": "held.costs",
              "dead_letter": "held.dlq"}
    h = Harness({v: 1 for v in topics.values()}, fake_args=["--latency-ms", "5"])
    group = f"held-{os.getpid()}"
    try:
        cfg = h.write_config(group, topics, limits={"commit_interval_ms": 200})
        with open(cfg) as f:
            c = json.load(f)
        c["metrics"] = {"listen": "127.0.0.1:0"}
        with open(cfg, "w") as f:
            json.dump(c, f)
        h.produce(topics["requests"], [request(f"h-{i}") for i in range(5)])
        h.start_worker(cfg, POLICY, env=dict(KEYS, SWITCHYARD_LOG_LEVEL="debug"))
        t.ok(wait_for(lambda: h.committed(group, topics["requests"])[0] == [5], 30),
             "the first batch is committed")
        addr = None
        for e in events(h.worker_log):
            if e.get("event") == "metrics_listening":
                addr = e["msg"].split("//", 1)[1].split("/", 1)[0]
        t.ok(addr and wait_for(lambda: http_status(addr, "/readyz") == 200, 20),
             "/readyz is 200 in the group with the cluster up")
        t.ok(h.mock_command(f"push_errors {OFFSET_COMMIT} 1 {REBALANCE_IN_PROGRESS}") == "ok",
             "the mock will fail the next commit with REBALANCE_IN_PROGRESS")
        h.produce(topics["requests"], [request(f"h-{i}") for i in range(5, 10)])
        held = wait_for(lambda: [e for e in events(h.worker_log) if e.get("event") == "commits_held"], 30)
        t.ok(held, "the failed commit holds periodic commits")
        h.read(topics["results"], lambda ms: len(ms) >= 10, timeout=60)
        # ten commit intervals with work done: still nothing is sent
        time.sleep(2.0)
        held_at = held[0]["ts_ms"] if held else 0
        after = [x for x in commits(events(h.worker_log)) if x[0] > held_at]
        t.ok(held and not after, f"no periodic commit is sent while held ({after[:3]})")
        t.ok(h.committed(group, topics["requests"])[0] == [5], "the committed offset stays")
        # the next assignment: the mock makes the group rebalance
        t.ok(h.mock_command(f"push_errors {HEARTBEAT} 1 {REBALANCE_IN_PROGRESS}") == "ok",
             "the mock will answer a heartbeat with REBALANCE_IN_PROGRESS")
        t.ok(wait_for(lambda: h.committed(group, topics["requests"])[0] == [10], 30),
             "after the next assignment commits resume and reach the end")
        t.ok(any(e.get("event") == "commits_resumed" and "assignment" in e["msg"]
                 for e in events(h.worker_log)), "the worker says commits resumed")
        # readiness follows the cluster
        t.ok(h.mock_command("broker_down 1") == "ok", "the only broker goes down")
        t.ok(wait_for(lambda: http_status(addr, "/readyz") not in (200, None), 30),
             "/readyz is not 200 with every broker down")
        t.ok(h.mock_command("broker_up 1") == "ok", "the broker comes back")
        t.ok(wait_for(lambda: http_status(addr, "/readyz") == 200, 30),
             "/readyz is 200 again once a broker answers")
        t.ok(h.stop_worker() == 0, "exits 0")
    finally:
        h.close()


def main():
    t = Checks()
    test_lost(t)
    test_grace(t)
    test_held(t)
    return t.summary()


if __name__ == "__main__":
    sys.exit(main())
