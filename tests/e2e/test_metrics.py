"""The metrics endpoint, through real processes: a worker with
metrics.listen on 127.0.0.1 (port chosen by the kernel) serves requests
against the fake provider with injected faults, and its /metrics page,
parsed by prometheus_client's own parser, must agree with what it
published: results, dead letters and cost records read back from Kafka,
tokens and nano-USD summed from the cost records, attempts by outcome and
the latency histogram recomputed from the results' attempts, and the
partitions' offsets against the topic's end offsets. Also: /healthz,
/readyz, 404/405/431, idle connections that do not block a scrape, and a
taken port that stops the worker at start with a clear error."""

import collections
import json
import os
import random
import socket
import sys
import time
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(__file__))
from harness import TEST_KEYS as KEYS, TEST_POLICY as POLICY, Checks, Harness  # noqa: E402

from prometheus_client.parser import text_string_to_metric_families  # noqa: E402

N = 300
TOPICS = {"requests": "mx.requests", "results": "mx.results", "costs": "mx.costs",
          "dead_letter": "mx.dlq"}
FAULTS = ["gpt-4.1-mini:status:429@15", "claude-opus-4-1:status:529@10",
          "gpt-4.1-nano:status:400@4", "o4-mini:close@3", "o4-mini:malformed@5"]
LE = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300]


def outcome(a):
    """The worker's outcome label, from a result's attempt entry."""
    if a["status"] == "ok":
        return "ok"
    if a["status"] == "timeout":
        return "timeout"
    s = a["http_status"]
    if s == 0:
        return "transport_error"
    if s == 429:
        return "rate_limited"
    if s >= 500:
        return "server_error"
    if s >= 400:
        return "client_error"
    return "malformed_reply"


def http(addr, path, method="GET"):
    req = urllib.request.Request(f"http://{addr}{path}", method=method)
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.headers, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read().decode()


def raw(addr, data):
    """Sends raw bytes, returns the status line of the answer."""
    host, port = addr.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=10) as s:
        s.sendall(data)
        buf = b""
        while b"\r\n" not in buf:
            chunk = s.recv(4096)
            if not chunk:
                break
            buf += chunk
        return buf.split(b"\r\n", 1)[0].decode(errors="replace")


def scrape(addr):
    """{(name, frozenset(labels)): value} from /metrics, and the families."""
    status, headers, text = http(addr, "/metrics")
    samples = {}
    families = {}
    for fam in text_string_to_metric_families(text):
        families[fam.name] = fam.type
        for s in fam.samples:
            samples[(s.name, frozenset(s.labels.items()))] = s.value
    return status, headers, samples, families


def pick(samples, name, **labels):
    return samples.get((name, frozenset(labels.items())))


def make_requests(rng):
    out = []
    for i in range(N):
        rid = f"mx-{i:04d}"
        if i % 30 == 7:
            out.append((rid, b'{"id":"' + rid.encode() + b'", "task":'))
            continue
        task = rng.choice(["planning", "reasoning", "code", "chit-chat"])
        content = f"request {rid}: go"
        if rng.random() < 0.3:
            content += f" #cached={rng.randrange(1, 30)}"
        if task == "reasoning" and rng.random() < 0.5:
            content += f" #reasoning={rng.randrange(1, 50)}"
        out.append((rid, json.dumps({"id": rid, "task": task, "messages": [
            {"role": "user", "content": content}]}).encode()))
    return out


def check_endpoints(t, addr):
    st, hd, body = http(addr, "/healthz")
    t.ok(st == 200 and body == "ok\n", f"/healthz answers 200 ok ({st} {body!r})")
    # ready once the worker is in its group (the mock's first join takes ~3 s)
    deadline = time.time() + 30
    st, _, body = http(addr, "/readyz")
    while st != 200 and time.time() < deadline:
        time.sleep(0.2)
        st, _, body = http(addr, "/readyz")
    t.ok(st == 200, f"/readyz answers 200 once in the group ({st} {body!r})")
    st, _, _ = http(addr, "/nope")
    t.ok(st == 404, f"an unknown path is 404 ({st})")
    st, hd, _ = http(addr, "/metrics", method="POST")
    t.ok(st == 405 and "GET" in (hd.get("Allow") or ""), f"POST is 405 with Allow ({st})")
    st, hd, body = http(addr, "/metrics", method="HEAD")
    t.ok(st == 200 and int(hd.get("Content-Length", "0")) > 0 and body == "",
         f"HEAD gives the length and no body ({st})")
    line = raw(addr, b"GET /metrics HTTP/1.1\r\nX-Pad: " + b"a" * 9000 + b"\r\n\r\n")
    t.ok(line.startswith("HTTP/1.1 431"), f"a request head over 8 KiB is refused ({line!r})")
    line = raw(addr, b"\x16\x03\x01 not http\r\n\r\n")
    t.ok(line.startswith("HTTP/1.1 400"), f"garbage is a 400 ({line!r})")
    # idle connections (a stuck scraper) hold slots but never the loop
    host, port = addr.rsplit(":", 1)
    idle = [socket.create_connection((host, int(port)), timeout=5) for _ in range(10)]
    st, _, _ = http(addr, "/healthz")
    t.ok(st == 200, "a scrape is served while 10 idle connections are open")
    for s in idle:
        s.close()


def main():
    t = Checks()
    rng = random.Random(7)
    h = Harness({v: 4 for v in TOPICS.values()}, fake_args=sum((["--fault", f] for f in FAULTS), [])
                + ["--latency-ms", "5", "--jitter-ms", "120"])
    group = f"mx-{os.getpid()}"
    try:
        cfg = h.write_config(group, TOPICS)
        with open(cfg) as f:
            c = json.load(f)
        c["metrics"] = {"listen": "127.0.0.1:0"}
        with open(cfg, "w") as f:
            json.dump(c, f)
        reqs = make_requests(rng)
        h.produce(TOPICS["requests"], reqs)
        h.start_worker(cfg, POLICY, env=KEYS)
        addr = h.metrics_address()
        t.ok(addr is not None and addr.startswith("127.0.0.1:"), f"the worker logs where it listens ({addr})")
        if addr is None:
            return t.summary()
        check_endpoints(t, addr)

        invalid = {k for k, v in reqs if not v.endswith(b"}")}
        res = h.read(TOPICS["results"], lambda ms: len({m[0] for m in ms}) >= N - len(invalid))
        dlq = h.read(TOPICS["dead_letter"], lambda ms: len({m[0] for m in ms}) >= len(invalid), timeout=30)
        results = {}
        for k, v, _, _, _ in res:
            results[k] = json.loads(v)
        # cost records for every billable attempt of the results
        want_costs = {(k, a["attempt"]) for k, r in results.items() for a in r["attempts"] if a["billable"]}
        cst = h.read(TOPICS["costs"], lambda ms: len({(m[0], json.loads(m[1])["attempt"]) for m in ms}) >= len(want_costs), timeout=30)
        costs = {}
        for k, v, _, _, _ in cst:
            rec = json.loads(v)
            costs[(k, rec["attempt"])] = rec
        time.sleep(1.5)  # a commit interval, so the committed offsets have moved
        st, hd, m, fams = scrape(addr)
        t.ok(st == 200 and hd.get("Content-Type", "").startswith("text/plain; version=0.0.4"),
             f"/metrics is Prometheus text ({st} {hd.get('Content-Type')})")

        ok = sum(1 for r in results.values() if r["status"] == "ok")
        err = len(results) - ok
        t.ok(len(results) == N - len(invalid) and ok > 0 and err > 0,
             f"the run has ok and error results ({ok} ok, {err} error)")
        t.ok(pick(m, "switchyard_messages_received_total") == N,
             f"received = {N} ({pick(m, 'switchyard_messages_received_total')})")
        t.ok(pick(m, "switchyard_results_total", status="ok") == ok and
             pick(m, "switchyard_results_total", status="error") == err,
             f"results by status match the results topic ({ok}/{err})")
        t.ok(pick(m, "switchyard_dead_letters_total") == len({x[0] for x in dlq}) == len(invalid),
             f"dead letters match the dead-letter topic ({len(invalid)})")
        t.ok(pick(m, "switchyard_cost_records_total") == len(costs) == len(want_costs),
             f"cost records match the costs topic ({len(costs)})")

        # per model: records, nano-USD and tokens, summed from the cost topic
        by_model = collections.defaultdict(lambda: collections.Counter())
        for rec in costs.values():
            b = by_model[(rec["model"], rec["provider"])]
            b["records"] += 1
            b["nusd"] += rec["cost_nusd"]
            for cat, n in rec["usage"].items():
                b[cat] += n
        wrong = []
        for (model, prov), b in by_model.items():
            lab = {"model": model, "provider": prov}
            if pick(m, "switchyard_model_cost_nanousd_total", **lab) != b["nusd"]:
                wrong.append((model, "nusd", b["nusd"], pick(m, "switchyard_model_cost_nanousd_total", **lab)))
            if pick(m, "switchyard_model_cost_records_total", **lab) != b["records"]:
                wrong.append((model, "records"))
            for cat in ["input", "output", "cache_read", "cache_write", "reasoning"]:
                if pick(m, "switchyard_model_tokens_total", category=cat, **lab) != b[cat]:
                    wrong.append((model, cat, b[cat], pick(m, "switchyard_model_tokens_total", category=cat, **lab)))
        t.ok(by_model and not wrong, f"per-model cost, records and tokens equal the costs topic's sums ({wrong[:3]})")
        total = sum(r["cost_nusd"] for r in costs.values())
        exported = sum(v for (n, _), v in m.items() if n == "switchyard_model_cost_nanousd_total")
        t.ok(exported == total, f"the exported nano-USD add up to the cost topic ({exported} vs {total})")

        # attempts by outcome and the latency histogram, from the results' attempts
        attempts = collections.Counter()
        lat = collections.defaultdict(list)
        for r in results.values():
            for a in r["attempts"]:
                attempts[(a["model"], a["provider"], outcome(a))] += 1
                lat[a["provider"]].append(a["latency_ms"])
        exported = {(dict(l)["model"], dict(l)["provider"], dict(l)["outcome"]): v
                    for (n, l), v in m.items() if n == "switchyard_model_attempts_total" and v}
        t.ok(exported == dict(attempts), f"attempts by model and outcome match the results "
             f"({sorted(set(exported.items()) ^ set(attempts.items()))[:4]})")
        outcomes = {o for (_, _, o) in attempts}
        t.ok({"ok", "rate_limited", "server_error", "client_error", "malformed_reply",
              "transport_error"} <= outcomes, f"every injected fault kind was seen ({sorted(outcomes)})")
        bad_hist = []
        for prov, ls in lat.items():
            buckets = {float(dict(l)["le"]): v for (n, l), v in m.items()
                       if n == "switchyard_provider_latency_seconds_bucket" and dict(l)["provider"] == prov}
            if sorted(buckets) != LE + [float("inf")]:
                bad_hist.append((prov, "bounds", sorted(buckets)))
            for le in LE + [float("inf")]:
                want = sum(1 for x in ls if x <= le * 1000)
                if buckets.get(le) != want:
                    bad_hist.append((prov, le, want, buckets.get(le)))
            if pick(m, "switchyard_provider_latency_seconds_count", provider=prov) != len(ls):
                bad_hist.append((prov, "count"))
            if abs(pick(m, "switchyard_provider_latency_seconds_sum", provider=prov) - sum(ls) / 1000) > 1e-6:
                bad_hist.append((prov, "sum"))
        t.ok(not bad_hist, f"the latency histogram matches the attempts' latencies ({bad_hist[:3]})")
        t.ok(fams.get("switchyard_provider_latency_seconds") == "histogram" and
             fams.get("switchyard_results") == "counter", "families carry their types")

        # the partitions: everything finished and committed
        committed, ends = h.committed(group, TOPICS["requests"])
        parts = {}
        for (n, l), v in m.items():
            if n.startswith("switchyard_partition_"):
                parts.setdefault(int(dict(l)["partition"]), {})[n[len("switchyard_partition_"):]] = v
        t.ok(pick(m, "switchyard_partitions_assigned") == 4 and sorted(parts) == [0, 1, 2, 3],
             f"4 partitions assigned and reported ({sorted(parts)})")
        t.ok(all(parts[p].get("position_offset") == ends[p] and parts[p].get("high_watermark_offset") == ends[p]
                 and parts[p].get("lag_messages") == 0 and parts[p].get("in_flight") == 0 for p in parts),
             f"positions and high watermarks at the end offsets, lag 0 ({parts} vs {ends})")
        t.ok(all(parts[p].get("committed_offset") == committed[p] == ends[p] for p in parts),
             f"committed offsets match the group's ({committed})")
        t.ok(pick(m, "switchyard_jobs_in_flight") == 0 and pick(m, "switchyard_producer_unacknowledged") == 0,
             "nothing in flight once all is answered")

        # another worker on the same metrics port does not start
        first = h.worker
        c["metrics"] = {"listen": addr}
        taken = cfg + ".taken.yaml"
        with open(taken, "w") as f:
            json.dump(c, f)
        rc = h.start_worker(taken, POLICY, env=KEYS).wait(timeout=30)
        with open(h.worker_log) as f:
            log = f.read()
        t.ok(rc == 1 and f"metrics.listen {addr}: cannot listen: Address already in use" in log,
             f"a taken metrics port stops the worker at start, saying why (exit {rc})")
        h.worker = first
        t.ok(h.stop_worker() == 0, "the worker exits 0 on SIGTERM")
    finally:
        h.close()
    return t.summary()


if __name__ == "__main__":
    sys.exit(main())
