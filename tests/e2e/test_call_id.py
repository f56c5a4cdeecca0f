"""Spend is never dropped by de-duplication (issue 7, item 4).

Worker A works through requests but commits nothing (a long commit
interval), and is killed with SIGKILL halfway. Worker B owns the partitions
next and redoes all of A's work: every request A had answered is called and
billed again, with attempts numbered from 1 again. The cost topic,
de-duplicated on call_id as the contract says, must then hold one record
for every call the provider billed (matched by the X-Client-Request-Id the
worker sends), except the calls A still had in flight when it was killed,
and nothing else; de-duplicating on (id, attempt), the old rule, would drop
real spend.
"""

import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from harness import TEST_KEYS as KEYS, TEST_POLICY as POLICY, Checks, Harness  # noqa: E402

N = 300
# a call the provider answered this long before the SIGKILL may still lack
# its cost record: the worker had the reply but had not yet produced the
# settled record, or librdkafka had not yet sent it (its linger, a loaded
# 2-core machine). A call answered earlier than that was not in flight.
SLACK_MS = 1000


def main():
    t = Checks()
    topics = {"requests": "cid.requests", "results": "cid.results", "costs": "cid.costs",
              "dead_letter": "cid.dlq"}
    h = Harness({v: 2 for v in topics.values()}, fake_args=["--latency-ms", "150"])
    group = f"cid-{os.getpid()}"
    try:
        limits = {"commit_interval_ms": 60000, "backoff_initial_ms": 20,
                  "backoff_max_ms": 2000, "max_in_flight": 40}
        cfg = h.write_config(group, topics, limits=limits)
        reqs = [(f"c-{i:03d}", json.dumps({"id": f"c-{i:03d}", "task": "code", "messages": [
            {"role": "user", "content": f"request c-{i:03d}"}]}).encode()) for i in range(N)]
        h.produce(topics["requests"], reqs)
        a = h.start_worker(cfg, POLICY, env=KEYS)
        h.read(topics["results"], lambda ms: len(ms) >= N // 3, timeout=90)
        kill_at_ms = time.time() * 1000  # A dies after this...
        a.kill()
        a.wait()
        kill_ms = time.time() * 1000  # ...and before this: later calls are B's
        b = h.start_worker(cfg, POLICY, env=KEYS, args=["--exit-when-idle", "3000"])
        res = h.read(topics["results"], lambda ms: len({m[0] for m in ms}) >= N, timeout=120)
        t.ok(b.wait(timeout=120) == 0, "B finishes and exits 0")
        t.ok({m[0] for m in res} == {k for k, _ in reqs}, "every request has a result")
        time.sleep(0.5)

        billed = {}
        for e in h.provider_log():
            cid = {k.lower(): v for k, v in e.get("headers", {}).items()}.get(
                "x-client-request-id")
            if e.get("status") == 200 and cid:
                billed[cid] = e
        records = [json.loads(m[1]) for m in h.read(topics["costs"], lambda ms: False, timeout=3)]
        # costs.reserve (the default): each call is also reserved before it is
        # sent; the settled records are the bill, the reserved ones what may be
        reserved = {c["call_id"] for c in records if c.get("kind") == "reserved"}
        costs = [c for c in records if c.get("kind") != "reserved"]
        by_call = {}
        for c in costs:
            by_call.setdefault(c["call_id"], []).append(c)
        same = all(len({json.dumps(x, sort_keys=True) for x in v}) == 1 for v in by_call.values())
        t.ok(same, "records sharing a call_id are copies of one record (producer retries)")
        kept = set(by_call)
        t.ok(kept <= set(billed), f"every de-duplicated record is a call the provider billed "
             f"({len(kept - set(billed))} are not)")
        missing = set(billed) - kept

        # in flight at the kill: sent by A (arrived before the kill), and
        # its reply not yet over SLACK_MS before it. The provider logs a
        # call's arrival (ts_ms) and the latency it waited before replying
        # (delay_ms): the reply ended no earlier than ts_ms + delay_ms.
        def reply_end(e):
            return e["ts_ms"] + e.get("delay_ms", 0)

        in_flight = [c for c in missing if billed[c]["ts_ms"] <= kill_ms
                     and reply_end(billed[c]) >= kill_at_ms - SLACK_MS]
        early = sorted(int(kill_at_ms - reply_end(billed[c])) for c in missing
                       if c not in in_flight)
        t.ok(len(in_flight) == len(missing),
             f"the billed calls without a record were in flight at the kill: sent by A, "
             f"answered at most {SLACK_MS} ms before it ({len(early)} of {len(missing)} were "
             f"not: answered {early[:5]} ms before the kill, or sent by B)")
        t.ok(missing <= reserved, f"the billed calls without a settled record are reserved on "
             f"the cost topic ({len(missing - reserved)} of {len(missing)} are not)")
        t.ok(len(missing) <= limits["max_in_flight"],
             f"at most max_in_flight of them ({len(missing)})")
        redone = {c["id"] for c in costs if billed.get(c["call_id"], {}).get("ts_ms", 0) <= kill_ms}
        t.ok(len(redone) >= N // 3 - limits["max_in_flight"],
             f"A's answered requests were billed before the kill ({len(redone)})")
        pairs = {(c["id"], c["attempt"]) for c in costs}
        oldest = max((int(kill_at_ms - reply_end(billed[c])) for c in in_flight), default=0)
        print(f"{len(billed)} calls billed by the provider, {len(costs)} cost records, "
              f"{len(kept)} after de-duplication on call_id, {len(missing)} in flight at the "
              f"kill (the earliest answered {oldest} ms before it); (id, attempt) would keep "
              f"{len(pairs)}")
        t.ok(len(pairs) < len(kept),
             f"(id, attempt) would drop billed calls: {len(pairs)} keys for {len(kept)} calls")
        total_kept = sum(by_call[c][0]["cost_nusd"] for c in kept)
        t.ok(total_kept > 0 and len(kept) > N, f"{len(kept)} billed calls for {N} requests, "
             f"{total_kept} nUSD after de-duplication on call_id")
        res_calls = {a["call_id"] for m in res for a in json.loads(m[1])["attempts"]
                     if a["billable"]}
        t.ok(res_calls <= kept | missing,
             "every billable attempt in a result names a billed call")
    finally:
        h.close()
    return t.summary()


if __name__ == "__main__":
    sys.exit(main())
