"""No invisible spend (issue 11, item 3): costs.reserve.

With reservations on (the default), a batch goes through the mock cluster
and the fake provider, some of whose calls fail with 500 (unbilled, retried
or fallen back). The cost topic's partitions are led by a broker that
answers everything 400 ms late (broker_rtt), every other partition by
another: a worker that sent its call before its reservation was
acknowledged would reach the provider within milliseconds of publishing
it, one that waits reaches it at least a round trip later. So:
- every call the provider saw has a reserved record, published before the
  call reached the provider by at least half that round trip (the record's
  ts_ms is when it was published, the provider's log's ts_ms when the call
  arrived, one host clock), and at a lower offset than its settled record;
- every reserved call_id has exactly one settled record, whose cost is
  usage x price to the nano-USD (0 with no usage for a failed call), at
  most what was reserved; every attempt of every result is settled;
- the metrics count the reservations, their settlements and their waits.
With costs.reserve: false, on other topics: no reserved record, every
record "settled", one per billable attempt.
Then, reservations on again, once a worker is warm the cost topic's broker
becomes 3 s slow and requests come whose deadline is 1.5 s away: each ends
deadline_exceeded while its reservation waits, no call reaches the
provider, and each reserved call is settled at 0 (the reservation landed
after the worker stopped waiting for it).
"""

import json
import os
import sys
import time
from decimal import Decimal

sys.path.insert(0, os.path.dirname(__file__))
from harness import (TEST_KEYS as KEYS, TEST_POLICY as POLICY, Checks, Harness,  # noqa: E402
                     metric, scrape)

import yaml  # noqa: E402

N = 60
RTT_MS = 400
CATS = ["input", "output", "cache_read", "cache_write", "reasoning"]


def prices_nusd():
    out = {}
    for name, m in yaml.safe_load(open(POLICY))["models"].items():
        p = {k: int(Decimal(str(v)) * 10**9) for k, v in m["price"].items()}
        p.setdefault("cache_read", p["input"])
        p.setdefault("cache_write", p["input"])
        p.setdefault("reasoning", p["output"])
        out[name] = p
    return out


def sample(text, name):
    """The value of the unlabelled sample `name`; None when there is none."""
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split(" ", 1)[1])
    return None


def topics_for(prefix):
    return {"requests": f"{prefix}.requests", "results": f"{prefix}.results",
            "costs": f"{prefix}.costs", "dead_letter": f"{prefix}.dlq"}


def configure(h, group, topics, reserve):
    path = h.write_config(group, topics)
    cfg = json.load(open(path))
    cfg["costs"] = {"reserve": reserve}
    cfg["metrics"] = {"listen": "127.0.0.1:0"}
    path = os.path.join(h.dir, f"worker-{group}.yaml")
    with open(path, "w") as f:
        json.dump(cfg, f)
    return path


def requests(prefix):
    tasks = ["code", "planning", "chit-chat"]
    return [(f"{prefix}-{i:03d}", json.dumps({
        "id": f"{prefix}-{i:03d}", "task": tasks[i % 3], "tenant": "acme",
        "messages": [{"role": "user", "content": f"request {prefix}-{i:03d} #out={5 + i}"}]}).encode())
        for i in range(N)]


def run(h, prefix, reserve):
    """Runs a batch to the end; (results, cost records with offsets, metrics text)."""
    topics = topics_for(prefix)
    cfg = configure(h, f"{prefix}-{os.getpid()}", topics, reserve)
    reqs = requests(prefix)
    h.produce(topics["requests"], reqs)
    h.start_worker(cfg, POLICY, env=KEYS)
    addr = h.metrics_address()
    res = h.read(topics["results"], lambda ms: len({m[0] for m in ms}) >= N, timeout=120)
    text = scrape(addr) if addr else ""
    h.stop_worker()
    results = {m[0]: json.loads(m[1]) for m in res}
    # read until every attempt has its cost record (or a deadline): the
    # cost topic's broker is slow
    want = {a["call_id"] for r in results.values() for a in r["attempts"]
            if reserve or a["billable"]}

    def settled(ms):
        return want <= {json.loads(m[1])["call_id"] for m in ms
                        if json.loads(m[1]).get("kind") != "reserved"}
    costs = [(json.loads(m[1]), m[3], m[4])
             for m in h.read(topics["costs"], settled, timeout=30)]
    return results, costs, text


def main():
    t = Checks()
    prices = prices_nusd()
    names = []
    for prefix in ("rsv", "off", "late"):
        names += [(topic, 2) for topic in topics_for(prefix).values()]
    h = Harness(dict(names), brokers=2,
                fake_args=["--latency-ms", "20", "--fault", "gpt-4.1-mini:status:500@12",
                           "--fault", "claude-opus-4-1:status:503@6"])
    try:
        for topic, parts in names:
            leader = 2 if topic.endswith(".costs") else 1
            for p in range(parts):
                t.ok(h.mock_command(f"partition_leader {topic} {p} {leader}") == "ok",
                     f"{topic}[{p}] led by broker {leader}")
        t.ok(h.mock_command(f"broker_rtt 2 {RTT_MS}") == "ok",
             f"the cost topic's broker answers {RTT_MS} ms late")

        # ---- reservations on ----
        res, costs, text = run(h, "rsv", True)
        t.ok(len(res) == N and all(r["status"] == "ok" for r in res.values()),
             f"every request answered ({len(res)} results)")
        calls = {}
        for e in h.provider_log():
            cid = {k.lower(): v for k, v in e.get("headers", {}).items()}.get("x-client-request-id")
            if cid:
                calls[cid] = e
        reserved, settled = {}, {}
        for c, part, off in costs:
            (reserved if c.get("kind") == "reserved" else settled).setdefault(
                c["call_id"], []).append((c, part, off))
        t.ok(all(c.get("kind") in ("reserved", "settled") for c, _, _ in costs),
             "every cost record says its kind")
        failed_calls = [cid for cid, e in calls.items() if e.get("status") != 200]
        t.ok(len(calls) > N and failed_calls,
             f"{len(calls)} calls, {len(failed_calls)} of them failed (500, 503)")
        t.ok(set(calls) <= set(reserved),
             f"every call the provider saw was reserved ({len(set(calls) - set(reserved))} not)")
        early = [cid for cid, e in calls.items() if cid in reserved
                 and e["ts_ms"] - reserved[cid][0][0]["ts_ms"] < RTT_MS // 2]
        t.ok(not early, f"every call reached the provider after its reservation was acknowledged "
             f"(at least {RTT_MS // 2} ms after it was published; {len(early)} earlier: {early[:3]})")
        one = [cid for cid in reserved if len(settled.get(cid, [])) != 1]
        t.ok(not one, f"every reserved call has exactly one settled record ({len(one)} not)")
        t.ok(set(settled) == set(reserved) == set(calls),
             "settled = reserved = the provider's calls (no call reserved and not sent here)")
        order = [cid for cid in reserved if cid in settled and not (
            reserved[cid][0][1] == settled[cid][0][1] and reserved[cid][0][2] < settled[cid][0][2])]
        t.ok(not order, f"a reservation precedes its settlement on the same partition ({order[:3]})")
        wrong, zero_bad, over = [], [], []
        for cid, [(c, _, _)] in ((k, v) for k, v in settled.items() if len(v) == 1):
            p = prices[c["model"]]
            exact = sum(c["usage"][k] * p[k] for k in CATS)
            if c["cost_nusd"] != (exact + 500000) // 1000000:
                wrong.append(cid)
            if calls.get(cid, {}).get("status") != 200 and (
                    c["cost_nusd"] != 0 or any(c["usage"].values()) or c["status"] != "error"):
                zero_bad.append(cid)
            if cid in reserved and c["cost_nusd"] > reserved[cid][0][0]["reserved_nusd"]:
                over.append(cid)
        t.ok(not wrong, f"settled cost = usage x price to the nano-USD ({wrong[:3]})")
        t.ok(not zero_bad, f"a failed call settles at 0 with no usage ({zero_bad[:3]})")
        t.ok(not over, f"no call cost more than it reserved ({over[:3]})")
        rbad = [cid for cid, v in reserved.items() if v[0][0]["cost_nusd"] != 0
                or any(v[0][0]["usage"].values()) or v[0][0]["reserved_nusd"] <= 0]
        t.ok(not rbad, f"reservations: usage 0, cost 0, a positive worst case ({rbad[:3]})")
        attempts = {a["call_id"]: a for r in res.values() for a in r["attempts"]}
        t.ok(set(attempts) == set(settled), "every attempt of every result is settled, and "
             "nothing else")
        t.ok(all(sum(settled.get(a["call_id"], [({"cost_nusd": -1}, 0, 0)])[0][0]["cost_nusd"]
                     for a in r["attempts"])
                 == r["cost_nusd"] for r in res.values()), "each result's cost = its settlements")
        t.ok(sample(text, "switchyard_reservations_total") == len(reserved),
             f"switchyard_reservations_total = {len(reserved)}")
        t.ok(sample(text, "switchyard_reservations_settled_total") == len(settled),
             f"switchyard_reservations_settled_total = {len(settled)}")
        t.ok(sample(text, "switchyard_reservation_wait_seconds_count") == len(reserved),
             "every reservation's wait is in the histogram")
        t.ok(metric(text, "switchyard_reservation_wait_seconds_bucket", le="0.1") == 0,
             f"no acknowledgement came sooner than the broker's {RTT_MS} ms")
        t.ok(metric(text, "switchyard_reservations_failed_total", reason="timeout") == 0,
             "no reservation failed")

        # ---- reservations off ----
        res, costs, _ = run(h, "off", False)
        t.ok(len(res) == N, f"off: every request answered ({len(res)} results)")
        t.ok(costs and all(c.get("kind") == "settled" for c, _, _ in costs),
             "off: every record is settled, none reserved")
        billable = {a["call_id"] for r in res.values() for a in r["attempts"] if a["billable"]}
        t.ok(sorted(c["call_id"] for c, _, _ in costs) == sorted(billable),
             "off: one record per billable attempt, as before")
        t.ok(all("reserved_nusd" not in c for c, _, _ in costs), "off: no reserved_nusd")

        # ---- a deadline passes while reservations wait ----
        t.ok(h.mock_command("broker_rtt 2 0") == "ok", "the cost topic's broker is fast again")
        topics = topics_for("late")
        cfg = configure(h, f"late-{os.getpid()}", topics, True)
        h.start_worker(cfg, POLICY, env=KEYS)
        addr = h.metrics_address()
        warm = [("late-warm", json.dumps({"id": "late-warm", "task": "code", "messages": [
            {"role": "user", "content": "request late-warm"}]}).encode())]
        h.produce(topics["requests"], warm)
        t.ok(len(h.read(topics["results"], lambda ms: len(ms) >= 1, timeout=60)) == 1,
             "late: a first request is answered (the worker is warm)")
        t.ok(h.mock_command("broker_rtt 2 3000") == "ok", "the cost topic's broker: 3 s late")
        ids = [f"late-{i:02d}" for i in range(8)]
        deadline = int(time.time() * 1000) + 1500
        h.produce(topics["requests"], [(i, json.dumps({
            "id": i, "task": "code", "deadline_ms": deadline,
            "messages": [{"role": "user", "content": f"request {i}"}]}).encode()) for i in ids])
        res = {m[0]: json.loads(m[1]) for m in h.read(
            topics["results"], lambda ms: len({m[0] for m in ms} & set(ids)) >= len(ids), timeout=60)}
        t.ok(all(res.get(i, {}).get("error", {}).get("code") == "deadline_exceeded" for i in ids),
             f"late: every request ends deadline_exceeded "
             f"({[res.get(i, {}).get('error', {}).get('code') for i in ids]})")
        t.ok(all(not res.get(i, {}).get("attempts") for i in ids), "late: no attempt was made")
        sent = [e for e in h.provider_log() if any(
            f"request {i}" in json.dumps(e.get("body")) for i in ids)]
        t.ok(not sent, f"late: no call reached the provider ({len(sent)} did)")
        text = scrape(addr) if addr else ""
        t.ok(metric(text, "switchyard_reservations_failed_total", reason="deadline") == len(ids),
             f"late: {len(ids)} reservations failed for the deadline")
        t.ok(h.mock_command("broker_rtt 2 0") == "ok", "the cost topic's broker is fast again")
        costs = [json.loads(m[1]) for m in h.read(topics["costs"], lambda ms: len(
            [m for m in ms if json.loads(m[1])["id"] in ids]) >= 2 * len(ids), timeout=30)]
        late = [c for c in costs if c["id"] in ids]
        rk = {c["call_id"] for c in late if c["kind"] == "reserved"}
        sk = {c["call_id"]: c for c in late if c["kind"] == "settled"}
        t.ok(len(rk) == len(ids) and set(sk) == rk,
             f"late: each request's reservation is on the topic, and settled "
             f"({len(rk)} reserved, {len(sk)} settled)")
        t.ok(all(c["cost_nusd"] == 0 and not any(c["usage"].values()) and c["status"] == "error"
                 for c in sk.values()), "late: settled at 0, no usage, status error")
        t.ok(h.stop_worker() == 0, "late: the worker exits 0")
    finally:
        h.close()
    return t.summary()


if __name__ == "__main__":
    sys.exit(main())
