"""switchyard cost-report (issue 11, item 4).

1. A file: cost records with copies (the same call_id several times), a
   reservation later settled, one never settled, several tenants (one
   missing), tasks, models and days; `cost-report --input FILE --format
   json` prints totals equal, to the nano-dollar, to a direct sum here in
   Python of the file de-duplicated on call_id, overall and per group.
   A bad line is counted, reported with its line number, exit 1, totals
   unchanged.
2. The topic: a small batch through the worker (mock cluster + fake
   provider), then `cost-report --config --from --to` reads the costs
   topic (--to; --from cannot be exercised on the mock cluster, which
   answers no ListOffsets by timestamp); its totals (by tenant and
   metadata.batch) equal the Python sum of the topic read with
   confluent-kafka. It ran with the worker's own
   group.id while the worker was still up and never joined that group:
   the worker saw no rebalance, and the group's committed offsets are the
   same before and after (none on the costs topic).
"""

import datetime
import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from harness import BUILD, TEST_KEYS as KEYS, TEST_POLICY as POLICY, Checks, Harness  # noqa: E402
from confluent_kafka import Producer, TopicPartition  # noqa: E402

CATS = ["input", "output", "cache_read", "cache_write", "reasoning", "cache_write_1h"]
SWITCHYARD = os.path.join(BUILD, "switchyard")


def report(*args, stdin=None):
    p = subprocess.run([SWITCHYARD, "cost-report", *args], input=stdin, capture_output=True,
                       text=True, timeout=120)
    return p.returncode, p.stdout, p.stderr


def python_totals(records, key):
    """De-duplicated on call_id (settled wins over reserved), summed."""
    calls = {}
    for r in records:
        c = r["call_id"]
        if c not in calls or (r.get("kind", "settled") == "settled"
                              and calls[c].get("kind", "settled") == "reserved"):
            calls[c] = r
    groups = {}
    for r in calls.values():
        g = groups.setdefault(key(r), {"calls": 0, "cost_nusd": 0, "open": 0, "reserved": 0,
                                       "usage": {c: 0 for c in CATS}})
        if r.get("kind", "settled") == "settled":
            g["calls"] += 1
            g["cost_nusd"] += r["cost_nusd"]
            for u, v in r["usage"].items():
                g["usage"][u] += v
        else:
            g["open"] += 1
            g["reserved"] += r["reserved_nusd"]
    return groups


def as_python(group):
    return {"calls": group["calls"], "cost_nusd": group["cost_nusd"],
            "open": group["open_reservations"], "reserved": group["reserved_nusd"],
            "usage": group["usage"]}


def file_part(t, h):
    day0 = 1764028800000  # 2025-11-25T00:00:00Z
    recs = []
    n = 0
    for tenant in ["acme", "globex", None]:
        for task in ["chat", "code"]:
            for model, provider in [("opus", "anthropic"), ("mini", "openai")]:
                for d in range(3):
                    n += 1
                    r = {"version": 1, "id": f"r-{n}", "call_id": f"0190f3a2-0000-7000-8000-{n:012d}",
                         "attempt": 1, "task": task, "model": model, "provider": provider,
                         "provider_model": model, "status": "ok",
                         "usage": {"input": 1000 + n, "output": 37 * n, "cache_read": 5 * n,
                                   "cache_write": n, "reasoning": 3 * n},
                         "prices_nusd_per_mtok": {c: 1 for c in CATS[:5]},
                         # odd amounts: a float sum would lose the last digits
                         "cost_nusd": 123456789012 + 7919 * n, "budget_nusd": 10**12,
                         "ts_ms": day0 + d * 86400000 - 1 + (n % 2) * 2, "worker": "w"}
                    if tenant:
                        r["tenant"] = tenant
                    recs.append(r)
    lines = [json.dumps(r) for r in recs]
    lines += [json.dumps(r) for r in recs[::3]]  # copies (a producer's retries)
    zero = {c: 0 for c in CATS[:5]}
    res = dict(recs[0], call_id="0190f3a2-0000-7000-8000-900000000001", kind="reserved",
               reserved_nusd=555000000001, cost_nusd=0, usage=zero)
    lines.append(json.dumps(res))  # open: never settled
    res2 = dict(res, call_id="0190f3a2-0000-7000-8000-900000000002", reserved_nusd=999)
    settled2 = dict(recs[1], call_id=res2["call_id"], kind="settled", cost_nusd=4242)
    lines += [json.dumps(settled2), json.dumps(res2)]  # settled first, reserved after
    records = [json.loads(x) for x in lines]
    path = os.path.join(h.dir, "costs.jsonl")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")

    rc, out, err = report("--input", path, "--format", "json")
    t.ok(rc == 0, f"a clean file: exit 0 ({rc}, {err.strip()[:200]})")
    got = json.loads(out)
    want = python_totals(records, lambda r: ())[()]
    t.ok(as_python(got["total"]) == want,
         f"total = the Python sum de-duplicated on call_id, to the nano-dollar "
         f"({got['total']['cost_nusd']} vs {want['cost_nusd']}, open {got['total']['reserved_nusd']}"
         f" vs {want['reserved']})")
    t.ok(got["total"]["records"] == len(records), "every record is counted, copies included")
    t.ok(want["open"] == 1 and want["reserved"] == 555000000001, "one open reservation in the file")

    by = "tenant,task,model,day"
    rc, out, err = report("--input", path, "--format", "json", "--by", by)
    got = json.loads(out)

    def key(r):
        day = datetime.datetime.fromtimestamp(r["ts_ms"] // 1000, datetime.timezone.utc)
        return (r.get("tenant"), r["task"], r["model"], day.strftime("%Y-%m-%d"))
    want = python_totals(records, key)
    mine = {tuple(g["key"][c] for c in by.split(",")): as_python(g) for g in got["groups"]}
    t.ok(rc == 0 and mine == want,
         f"--by {by}: every group equals the Python sum ({len(mine)} vs {len(want)} groups)")
    t.ok(len({k[3] for k in want}) >= 4, "the records span days across midnight UTC")

    rc, out, err = report("--input", "-", "--by", "tenant", stdin="".join(
        x + "\n" for x in lines))
    t.ok(rc == 0 and "not yet settled, at most 555.000000001" in out,
         "table from stdin: the open reservation as 'not yet settled, at most X' in USD")
    total_usd = "%d.%09d" % divmod(python_totals(records, lambda r: ())[()]["cost_nusd"],
                                   10**9)
    t.ok(total_usd in out, f"table: the total in USD with nine decimals ({total_usd})")

    with open(path, "a") as f:
        f.write("{not json\n")
    rc, out, err = report("--input", path, "--format", "csv")
    nlines = len(lines) + 1
    t.ok(rc == 1 and f"{path}:{nlines}: not a cost record" in err,
         f"a bad line: exit 1 and its position on stderr ({rc}, {err.strip()[:200]})")
    total_row = [x for x in out.splitlines() if x.startswith("total,")]
    t.ok(total_row and total_row[0].split(",")[3] == str(
        python_totals(records, lambda r: ())[()]["cost_nusd"]),
        "the totals are still printed, without the bad line")
    rc, _, _ = report("--input", path, "--by", "nope")
    t.ok(rc == 2, "an unknown --by column: exit 2")


def read_topic(h, topic):
    """Every record of topic with its timestamp, read with confluent-kafka
    up to the end offsets."""
    c = h.consumer()
    ends = {p: c.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
            for p in range(h.topics[topic])}
    c.assign([TopicPartition(topic, p, 0) for p in ends if ends[p] > 0])
    out, pos = [], {p: 0 for p in ends}
    deadline = time.time() + 60
    while any(pos[p] < ends[p] for p in ends) and time.time() < deadline:
        for m in c.consume(1000, timeout=0.5):
            if m.error():
                continue
            pos[m.partition()] = m.offset() + 1
            out.append((m.timestamp()[1], json.loads(m.value())))
    c.close()
    return out


def topic_part(t, h, topics):
    group = f"costrep-{os.getpid()}"
    cfg = h.write_config(group, topics)
    start_ms = int(time.time() * 1000) - 1000
    reqs = []
    for i in range(40):
        req = {"id": f"cr-{i:03d}", "task": "code" if i % 3 else "chat",
               "messages": [{"role": "user", "content": f"request {i}"}],
               "metadata": {"batch": f"b-{i % 4}", "n": i}}
        if i % 5:
            req["tenant"] = f"t-{i % 2}"
        reqs.append((req["id"], json.dumps(req).encode()))
    h.produce(topics["requests"], reqs)
    h.start_worker(cfg, POLICY, env=KEYS)
    res = h.read(topics["results"], lambda ms: len({m[0] for m in ms}) >= len(reqs), timeout=90)
    t.ok(len({m[0] for m in res}) == len(reqs), "the worker answered every request")
    t.ok(h.wait_log("partitions_assigned"), "the worker is in its group")
    time.sleep(1.5)  # two commit intervals: the worker's commits are done
    with open(h.worker_log) as f:
        assigned_before = sum('"partitions_assigned"' in line for line in f)
    before = h.committed(group, topics["requests"])
    costs_before = h.committed(group, topics["costs"])

    end_ms = int(time.time() * 1000) + 60000
    # --to only: librdkafka 2.0.2's mock cluster answers every ListOffsets
    # by timestamp with -1 ("no record at or after it"), so --from, which
    # starts each partition at rd_kafka_offsets_for_times's offset, would
    # read nothing here; on a real broker it starts at the first record
    # at or after --from. The range filter itself is the same code.
    rc, out, err = report("--config", cfg, "--to",
                          datetime.datetime.fromtimestamp(end_ms / 1000, datetime.timezone.utc)
                          .strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
                          "--format", "json", "--by", "tenant,metadata.batch",
                          "--timeout", "30000")
    t.ok(rc == 0, f"cost-report --config: exit 0 ({rc}, {err.strip()[:300]})")
    got = json.loads(out) if rc == 0 else {"total": {}, "groups": []}
    topic = [r for ts, r in read_topic(h, topics["costs"]) if start_ms <= ts < end_ms]
    t.ok(len(topic) >= len(reqs), f"the costs topic holds a record per call ({len(topic)})")
    t.ok(all(r.get("metadata", {}).get("batch") for r in topic),
         "every cost record carries its request's metadata")
    want = python_totals(topic, lambda r: (r.get("tenant"), r["metadata"]["batch"]))
    mine = {(g["key"]["tenant"], g["key"]["metadata.batch"]): as_python(g)
            for g in got["groups"]}
    t.ok(mine == want and mine, f"by tenant and metadata.batch: every group equals the Python "
         f"sum of the topic ({len(mine)} vs {len(want)} groups)")
    total = python_totals(topic, lambda r: ())[()]
    t.ok(got["total"] and as_python(got["total"]) == total and total["cost_nusd"] > 0,
         f"the total equals the Python sum to the nano-dollar ({got['total'].get('cost_nusd')} vs "
         f"{total['cost_nusd']})")

    rc, out, err = report("--config", cfg, "--from", str(end_ms), "--format", "json")
    t.ok(rc == 0 and json.loads(out)["total"]["records"] == 0,
         f"--from after every record: nothing ({rc}, {err.strip()[:200]})")

    time.sleep(1.5)
    with open(h.worker_log) as f:
        log = f.read()
    t.ok(log.count('"partitions_assigned"') == assigned_before and '"revok' not in log,
         "the worker saw no rebalance: cost-report never joined its group")
    t.ok(h.committed(group, topics["requests"]) == before,
         "the group's committed offsets are unchanged")
    after_costs = h.committed(group, topics["costs"])
    t.ok(after_costs == costs_before and all(o < 0 for o in after_costs[0]),
         f"nothing committed on the costs topic ({after_costs[0]})")
    t.ok(h.stop_worker() == 0, "the worker stops cleanly")


def iso_ms(ms):
    """ms since the epoch as cost-report's ISO 8601 form, milliseconds kept."""
    return (datetime.datetime.fromtimestamp(ms / 1000, datetime.timezone.utc)
            .strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z")


def range_part(t, h, topics, topic):
    """Two batches on either side of T, with explicit record timestamps."""
    T = 1764072000000  # 2025-11-25T12:00:00.000Z
    zero = {c: 0 for c in CATS[:5]}

    def rec(n, **kw):
        r = {"version": 1, "id": f"rg-{n}", "call_id": f"0190f3a2-0000-7000-8000-7{n:011d}",
             "attempt": 1, "task": "chat", "model": "opus", "provider": "anthropic",
             "provider_model": "opus", "status": "ok", "tenant": f"t-{n % 2}",
             "usage": {"input": 100 + n, "output": 7 * n, "cache_read": 0, "cache_write": 0,
                       "reasoning": 0},
             "prices_nusd_per_mtok": {c: 1 for c in CATS[:5]},
             # distinct powers of ten plus odd digits: any record taken or
             # left out by mistake changes the total
             "cost_nusd": 10 ** (n + 2) + 7919 * n, "budget_nusd": 10**15, "worker": "w"}
        r.update(kw)
        return r
    # (record timestamp, record); the first batch ends at T-1, the second
    # starts at T exactly
    first = [(T - 3600000, rec(1)), (T - 2, rec(2)), (T - 1, rec(3)),
             (T - 5, rec(4, kind="reserved", reserved_nusd=4000000000004, cost_nusd=0,
                         usage=zero))]
    second = [(T, rec(5)), (T + 1, rec(6)), (T + 60000, rec(7)),
              (T + 3, rec(8, call_id=first[3][1]["call_id"], kind="settled",
                          cost_nusd=31415926))]
    p = Producer({"bootstrap.servers": h.bootstrap, "enable.idempotence": True})
    for batch in (first, second):
        for ts, r in batch:
            r["ts_ms"] = ts
            p.produce(topic, json.dumps(r).encode(), key=r["call_id"].encode(), timestamp=ts)
        t.ok(p.flush(30) == 0, f"a batch of {len(batch)} records produced")
    stamps = sorted(ts for ts, _ in read_topic(h, topic))
    t.ok(stamps == sorted(ts for ts, _ in first + second),
         f"the topic holds both batches with their own timestamps ({len(stamps)} records)")
    # --from starts each partition on its own: the batches must spread
    c = h.consumer()
    used = sum(c.get_watermark_offsets(TopicPartition(topic, tp), timeout=10)[1] > 0
               for tp in range(h.topics[topic]))
    c.close()
    t.ok(used > 1, f"the records are on several partitions ({used})")

    cfg = h.write_config(f"range-{os.getpid()}", dict(topics, costs=topic))
    whole = lambda rs: python_totals([r for _, r in rs], lambda r: ())[()]  # noqa: E731

    def total(*args):
        rc, out, err = report("--config", cfg, "--format", "json", "--timeout", "30000", *args)
        return (as_python(json.loads(out)["total"]) if rc == 0 else None), rc, err

    got, rc, err = total()
    want = whole(first + second)
    t.ok(got == want and want["open"] == 0,
         f"no bound: both batches ({rc}, {err.strip()[:200]})")
    got, rc, err = total("--to", str(T))
    want = whole(first)
    t.ok(got == want and want["calls"] == 3 and want["open"] == 1,
         f"--to T (ms): only the first batch, its reservation still open, to the nano-dollar "
         f"({got and got['cost_nusd']} vs {want['cost_nusd']}; {rc}, {err.strip()[:200]})")
    got, rc, err = total("--to", iso_ms(T))
    t.ok(got == want, f"--to T (ISO 8601): the same ({rc}, {err.strip()[:200]})")
    got, rc, err = total("--to", str(T + 1))
    want = whole(first + second[:1])
    t.ok(got == want and want["calls"] == 4,
         f"--to T+1 ms: the record stamped T exactly is in, nothing after it "
         f"({got and got['cost_nusd']} vs {want['cost_nusd']})")

    # does this cluster answer ListOffsets by timestamp? The first record
    # at or after T is at an offset >= 0 in the partition that holds it
    c = h.consumer()
    found = c.offsets_for_times([TopicPartition(topic, tp, T) for tp in range(h.topics[topic])],
                                timeout=10)
    c.close()
    answers = any(tp.offset >= 0 for tp in found)
    got, rc, err = total("--from", iso_ms(T))
    want = whole(second)
    if answers:
        t.ok(got == want and want["calls"] == 4 and want["open"] == 0,
             f"--from T: only the second batch, the call reserved before T settled in it, to "
             f"the nano-dollar ({got and got['cost_nusd']} vs {want['cost_nusd']})")
        got, rc, err = total("--from", str(T), "--to", str(T + 2))
        want = whole(second[:2])
        t.ok(got == want, f"--from T --to T+2: the two records stamped T and T+1 "
             f"({got and got['cost_nusd']} vs {want['cost_nusd']})")
    else:
        # the mock cluster: the start offsets of --from are unknown, so
        # cost-report must read nothing rather than records before T
        t.ok(rc == 0 and got is not None and got["calls"] == 0 and got["open"] == 0,
             f"--from T on a cluster without ListOffsets by timestamp (librdkafka's mock): "
             f"nothing read, no record from before T ({got}; {rc}, {err.strip()[:200]})")


def main():
    t = Checks()
    topics = {"requests": "crep.requests", "results": "crep.results", "costs": "crep.costs",
              "dead_letter": "crep.dlq"}
    h = Harness({"crep.requests": 2, "crep.results": 2, "crep.costs": 3, "crep.dlq": 1,
                 "crep.range": 3})
    try:
        file_part(t, h)
        topic_part(t, h, topics)
        range_part(t, h, topics, "crep.range")
    finally:
        h.close()
    return t.summary()


if __name__ == "__main__":
    sys.exit(main())
