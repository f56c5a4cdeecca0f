"""The metrics endpoint, through real processes: a worker with
metrics.listen on 127.0.0.1 (port chosen by the kernel) serves requests
against the fake provider with injected faults, and its /metrics page,
parsed by prometheus_client's own parser, must agree with what it
published: results, dead letters and cost records read back from Kafka,
tokens and nano-USD summed from the cost records, attempts by outcome and
the latency histogram recomputed from the results' attempts, and the
partitions' offsets against the topic's end offsets. Also: /healthz,
/readyz, 404/405/431, idle connections that do not block a scrape, and a
taken port that stops the worker at start with a clear error.

Operability: `promtool check metrics` (Debian's prometheus package) must
pass on a scrape taken while the worker works and on the last one; error
results counted by code equal the results topic's codes, dead letters by
code the dead-letter topic's x-error-code headers, the USD counters the
nano-USD ones / 1e9, the tenant series (metrics.tenant_label with
max_tenants 3) the results topic's tenants with the rest under "other";
process_* metrics are present and sane; an assigned partition that never
received a message still has a committed-offset series (-1), and every
partition a last-commit age. With logging.requests on, the log lines are
structured: request_received/call_done/request_done/dead_letter lines
carry the request id, partition, offset, model, provider, attempt, HTTP
status, latency and code fields that match what was published, and no
body appears without logging.bodies.

A second, short run with logging.bodies on (and real-length API keys, so
that they are registered for redaction): request_received carries the
prompt (the request's messages as JSON) and request_done the reply (the
result's output text), an API key written in a prompt is masked there and
appears nowhere in the log, and a prompt over the documented 4 KiB cap is
cut at exactly 4096 bytes with prompt_bytes giving its whole length. The
fake provider's replies stay under 1.5 KiB (256 words at most), so the
reply's cut, the same function as the prompt's, is left to
tests/unit/test_log.c."""

import collections
import json
import os
import random
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(__file__))
from harness import (TEST_KEYS as KEYS, TEST_POLICY as POLICY, Checks, Harness,  # noqa: E402
                     bills, json_lines)

from prometheus_client.parser import text_string_to_metric_families  # noqa: E402

N = 300
TOPICS = {"requests": "mx.requests", "results": "mx.results", "costs": "mx.costs",
          "dead_letter": "mx.dlq"}
REQ_PARTS = 5  # partition 4 gets no message: its committed offset is still shown
TENANTS = ["acme", "globex", "initech", "umbrella", "hooli"]
MAX_TENANTS = 3
FAULTS = ["gpt-4.1-mini:status:429@15", "claude-opus-4-1:status:529@10",
          "gpt-4.1-nano:status:400@4", "o4-mini:close@3", "o4-mini:malformed@5"]
LE = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300]
# the bodies run: its own topics, and keys long enough to be redacted
# (TEST_KEYS' two-byte keys are below the redaction's minimum)
BODY_TOPICS = {"requests": "mb.requests", "results": "mb.results", "costs": "mb.costs",
               "dead_letter": "mb.dlq"}
BODY_KEYS = {"SWITCHYARD_TEST_ANTHROPIC_KEY": "sk-ant-bodies-3f9c2e7a1b5d8e60",
             "SWITCHYARD_TEST_OPENAI_KEY": "sk-oai-bodies-8d1e4b7c2a9f3e05"}
BODY_CAP = 4096  # README, Logs: "cut at 4 KiB"


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
    """{(name, frozenset(labels)): value} from /metrics, the families, and
    the page's text."""
    status, headers, text = http(addr, "/metrics")
    samples = {}
    families = {}
    for fam in text_string_to_metric_families(text):
        families[fam.name] = fam.type
        for s in fam.samples:
            samples[(s.name, frozenset(s.labels.items()))] = s.value
    return status, headers, samples, families, text


def pick(samples, name, **labels):
    return samples.get((name, frozenset(labels.items())))


def make_requests(rng):
    """(key, value) pairs, and the dead-letter code each invalid one must get."""
    out, invalid = [], {}
    for i in range(N):
        rid = f"mx-{i:04d}"
        if i % 30 == 7:
            out.append((rid, b'{"id":"' + rid.encode() + b'", "task":'))
            invalid[rid] = "invalid_json"
            continue
        if i % 50 == 11:
            out.append((rid, json.dumps({"id": rid, "task": "code"}).encode()))
            invalid[rid] = "invalid_request"
            continue
        task = rng.choice(["planning", "reasoning", "code", "chit-chat"])
        content = f"request {rid}: go"
        if rng.random() < 0.3:
            content += f" #cached={rng.randrange(1, 30)}"
        if task == "reasoning" and rng.random() < 0.5:
            content += f" #reasoning={rng.randrange(1, 50)}"
        req = {"id": rid, "task": task, "messages": [{"role": "user", "content": content}]}
        if i % 7:
            req["tenant"] = TENANTS[i % len(TENANTS)]
        out.append((rid, json.dumps(req).encode()))
    return out, invalid


def promtool(t, text, what):
    """promtool check metrics on a scrape's text: it must be there, and pass."""
    tool = shutil.which("promtool")
    if not t.ok(tool is not None, "promtool is installed (scripts/install-deps.sh: prometheus)"):
        return
    r = subprocess.run([tool, "check", "metrics"], input=text.encode(), capture_output=True,
                       timeout=60)
    t.ok(r.returncode == 0, f"promtool check metrics passes on {what} (exit {r.returncode}: "
         f"{(r.stdout + r.stderr).decode(errors='replace')[:600]})")


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


def check_codes(t, m, results, dlq, invalid):
    """Error results by code and dead letters by code, against the topics."""
    want = collections.Counter(r["error"]["code"] for r in results.values() if r["status"] == "error")
    got = {dict(l)["code"]: v for (n, l), v in m.items()
           if n == "switchyard_results_total" and dict(l).get("status") == "error"}
    t.ok(want and all(got.get(c, 0) == n for c, n in want.items()) and
         sum(got.values()) == sum(want.values()),
         f"error results by code equal the results topic's codes ({dict(want)} vs "
         f"{ {c: v for c, v in got.items() if v} })")
    t.ok({"no_route", "over_budget", "deadline_exceeded", "candidates_exhausted",
          "provider_rejected", "result_too_large", "rate_limited", "circuit_open",
          "other"} <= set(got), f"every error code has a series, 0 until seen ({sorted(got)})")
    dl_want = collections.Counter()
    for _, _, headers, _, _ in dlq:
        code = dict(headers).get("x-error-code")
        dl_want[code.decode() if code else None] += 1
    dl_got = {dict(l)["code"]: v for (n, l), v in m.items() if n == "switchyard_dead_letters_total"}
    t.ok(dl_want == collections.Counter(invalid.values()) and
         all(dl_got.get(c) == n for c, n in dl_want.items()) and
         sum(dl_got.values()) == len(invalid),
         f"dead letters by code equal the dead-letter topic's x-error-code ({dict(dl_want)} vs "
         f"{ {c: v for c, v in dl_got.items() if v} })")


def check_tenants(t, m, results, costs):
    tracked = collections.defaultdict(collections.Counter)
    for (n, l), v in m.items():
        if n == "switchyard_tenant_results_total":
            tracked[dict(l)["tenant"]][dict(l)["status"]] += v
    usd = {dict(l)["tenant"]: v for (n, l), v in m.items() if n == "switchyard_tenant_cost_usd_total"}
    named = [x for x in tracked if x != "other"]
    t.ok(len(named) == MAX_TENANTS, f"metrics.max_tenants bounds the tenants tracked ({sorted(tracked)})")
    want = collections.defaultdict(collections.Counter)
    want_nusd = collections.Counter()
    for rid, r in results.items():
        name = r.get("tenant", "")
        name = name if name in named else "other"
        want[name][r["status"]] += 1
        want_nusd[name] += sum(c["cost_nusd"] for (k, _), c in costs.items() if k == rid)
    t.ok({k: dict(v) for k, v in want.items()} == {k: {s: n for s, n in v.items() if n}
                                                    for k, v in tracked.items() if sum(v.values())},
         f"results by tenant (the rest as other) equal the results topic's ({dict(want)} vs {dict(tracked)})")
    t.ok(all(abs(usd.get(k, -1) - want_nusd[k] / 1e9) < 1e-9 for k in want),
         f"cost in USD by tenant equals the cost records' ({dict(want_nusd)} vs {usd})")


def check_process(t, m, started):
    st = pick(m, "process_start_time_seconds")
    t.ok(st is not None and abs(st - started) < 5,
         f"process_start_time_seconds is when the worker started ({st} vs {started:.2f})")
    fds, maxfds = pick(m, "process_open_fds"), pick(m, "process_max_fds")
    t.ok(fds is not None and maxfds is not None and 5 <= fds < maxfds,
         f"process_open_fds within process_max_fds ({fds} / {maxfds})")
    rss, vsz = pick(m, "process_resident_memory_bytes"), pick(m, "process_virtual_memory_bytes")
    t.ok(rss is not None and vsz is not None and 1 << 20 < rss <= vsz,
         f"resident memory over 1 MiB and within the virtual ({rss} / {vsz})")
    cpu = pick(m, "process_cpu_seconds_total")
    t.ok(cpu is not None and 0 < cpu < 600, f"process_cpu_seconds_total counts the work ({cpu})")


def check_log(t, log, results, dlq, invalid):
    """The structured fields of the per-request lines against the topics."""
    lines = [e for e in log if isinstance(e, dict)]
    wid = {e.get("worker") for e in lines if e.get("event") != "exit_now"}
    t.ok(len(wid) == 1 and None not in wid, f"every line names the worker ({wid})")
    received = {e["request_id"]: e for e in lines if e.get("event") == "request_received"}
    t.ok(set(received) == set(results) and
         all(isinstance(e.get("partition"), int) and isinstance(e.get("offset"), int)
             for e in received.values()),
         f"request_received for each valid request, with partition and offset ({len(received)})")
    done = {e["request_id"]: e for e in lines if e.get("event") == "request_done"}
    bad = [rid for rid, r in results.items()
           if rid not in done or done[rid]["level"] != "debug" or
           (r["status"] == "ok") != ("code" not in done[rid]) or
           (r["status"] == "error" and done[rid]["code"] != r["error"]["code"]) or
           (done[rid]["partition"], done[rid]["offset"]) !=
           (received[rid]["partition"], received[rid]["offset"])]
    t.ok(not bad, f"request_done per result, its code the result's, at debug level ({bad[:3]})")
    calls = collections.defaultdict(list)
    for e in lines:
        if e.get("event") == "call_done":
            calls[e["request_id"]].append(e)
    wrong = []
    for rid, r in results.items():
        got = sorted(calls.get(rid, []), key=lambda e: e["attempt"])
        if len(got) != len(r["attempts"]):
            wrong.append((rid, "count", len(got), len(r["attempts"])))
            continue
        for e, a in zip(got, r["attempts"]):
            if (e["attempt"], e["model"], e["provider"], e["http_status"], e["latency_ms"]) != \
                    (a["attempt"], a["model"], a["provider"], a["http_status"], a["latency_ms"]):
                wrong.append((rid, e, a))
    t.ok(not wrong, f"call_done per attempt: attempt, model, provider, http_status, latency_ms "
         f"as the result's attempts ({wrong[:2]})")
    # each dead letter names its source in headers; its log line must too
    src = {}
    for k, _, headers, _, _ in dlq:
        hd = {n: v.decode() for n, v in headers}
        src[(int(hd["x-error-partition"]), int(hd["x-error-offset"]))] = (k, hd["x-error-code"])
    dls = {(e.get("partition"), e.get("offset")): e for e in lines if e.get("event") == "dead_letter"}
    t.ok(set(dls) == set(src) and len(src) == len(invalid) and
         all(dls[pos]["level"] == "warn" and dls[pos].get("code") == code == invalid[k]
             for pos, (k, code) in src.items()),
         f"dead_letter lines carry the code, partition and offset of each dead letter "
         f"({len(dls)} lines, {len(src)} dead letters)")
    t.ok(not any("prompt" in e or "reply" in e for e in lines),
         "no prompt or reply in the log without logging.bodies")


def bodies_run(t, h):
    """logging.bodies: prompts and replies in the per-request lines,
    redacted and cut at BODY_CAP."""
    cfg = h.write_config(f"mb-{os.getpid()}", BODY_TOPICS)
    with open(cfg) as f:
        c = json.load(f)
    c["logging"] = {"requests": True, "bodies": True}
    with open(cfg, "w") as f:
        json.dump(c, f)
    okey, akey = BODY_KEYS["SWITCHYARD_TEST_OPENAI_KEY"], BODY_KEYS["SWITCHYARD_TEST_ANTHROPIC_KEY"]
    msgs = {
        # whole: under the cap, an Anthropic key in it
        "mb-short": [{"role": "user", "content": f"say hi; my key is {akey} #out=12"}],
        # cut: about 7 KiB, an OpenAI key at its start
        "mb-long": [{"role": "user", "content": f"my key is {okey} and " + "lorem ipsum " * 600}],
    }
    tasks = {"mb-short": "planning", "mb-long": "code"}
    h.produce(BODY_TOPICS["requests"], [
        (rid, json.dumps({"id": rid, "task": tasks[rid], "messages": m}).encode())
        for rid, m in msgs.items()])
    h.start_worker(cfg, POLICY, env=BODY_KEYS)
    res = h.read(BODY_TOPICS["results"], lambda ms: len({m[0] for m in ms}) >= len(msgs), timeout=60)
    results = {k: json.loads(v) for k, v, _, _, _ in res}
    t.ok(h.stop_worker() == 0, "the bodies run's worker exits 0 on SIGTERM")
    with open(h.worker_log) as f:
        raw_log = f.read()
    lines = json_lines(h.worker_log)
    received = {e.get("request_id"): e for e in lines if e.get("event") == "request_received"}
    done = {e.get("request_id"): e for e in lines if e.get("event") == "request_done"}
    t.ok(set(results) == set(msgs) and all(r["status"] == "ok" for r in results.values()),
         f"both requests answered ok ({ {k: r['status'] for k, r in results.items()} })")

    def prompt_text(rid):
        """The prompt as the worker writes it: compact JSON, keys masked."""
        text = json.dumps({"messages": msgs[rid]}, separators=(",", ":"))
        return text.replace(okey, "********").replace(akey, "********")

    short = received.get("mb-short", {})
    t.ok(short.get("prompt") == prompt_text("mb-short") and "prompt_bytes" not in short,
         f"request_received carries the whole prompt under the cap, the key masked "
         f"({short.get('prompt')!r})")
    long_ = received.get("mb-long", {})
    whole = prompt_text("mb-long")
    t.ok(len(whole) > BODY_CAP and long_.get("prompt") == whole[:BODY_CAP] and
         long_.get("prompt_bytes") == len(whole),
         f"a prompt over the cap is cut at {BODY_CAP} bytes, prompt_bytes its whole length "
         f"({len(long_.get('prompt', ''))} bytes, prompt_bytes {long_.get('prompt_bytes')}, "
         f"whole {len(whole)})")
    t.ok(long_.get("prompt", "").startswith('{"messages":[{"role":"user","content":"my key is '
                                            '********'),
         f"the key at the long prompt's start is masked ({long_.get('prompt', '')[:80]!r})")
    bad = [rid for rid in msgs
           if not results.get(rid, {}).get("output", {}).get("text") or
           done.get(rid, {}).get("reply") != results[rid]["output"]["text"] or
           "reply_bytes" in done.get(rid, {})]
    t.ok(not bad, f"request_done carries the reply, the result's output text, whole "
         f"({ {rid: done.get(rid, {}).get('reply') for rid in msgs} })")
    pieces = [k[i:i + 8] for k in (okey, akey) for i in range(len(k) - 7)]
    leaked = [p for p in pieces if p in raw_log]
    t.ok(not leaked, f"no 8-byte piece of either API key anywhere in the log ({leaked[:3]})")


def main():
    t = Checks()
    rng = random.Random(7)
    parts = {v: 4 for v in TOPICS.values()}
    parts[TOPICS["requests"]] = REQ_PARTS
    parts.update({v: 1 for v in BODY_TOPICS.values()})
    h = Harness(parts, fake_args=sum((["--fault", f] for f in FAULTS), [])
                + ["--latency-ms", "5", "--jitter-ms", "120"])
    group = f"mx-{os.getpid()}"
    try:
        cfg = h.write_config(group, TOPICS)
        with open(cfg) as f:
            c = json.load(f)
        c["metrics"] = {"listen": "127.0.0.1:0", "tenant_label": True, "max_tenants": MAX_TENANTS}
        c["logging"] = {"requests": True}
        with open(cfg, "w") as f:
            json.dump(c, f)
        reqs, invalid = make_requests(rng)
        for p in range(REQ_PARTS - 1):  # the last partition stays empty
            h.produce(TOPICS["requests"], reqs[p::REQ_PARTS - 1], kcat_args=["-p", str(p)])
        started = time.time()
        h.start_worker(cfg, POLICY, env=KEYS)
        addr = h.metrics_address()
        t.ok(addr is not None and addr.startswith("127.0.0.1:"), f"the worker logs where it listens ({addr})")
        if addr is None:
            return t.summary()
        check_endpoints(t, addr)
        # while it works (the last of N requests answered takes a few seconds)
        st, _, early, _, text = scrape(addr)
        t.ok(st == 200, f"a scrape while the worker works ({st}, "
             f"{pick(early, 'switchyard_jobs_in_flight')} jobs in flight)")
        promtool(t, text, "a scrape taken while the worker works")

        res = h.read(TOPICS["results"], lambda ms: len({m[0] for m in ms}) >= N - len(invalid))
        dlq = h.read(TOPICS["dead_letter"], lambda ms: len({m[0] for m in ms}) >= len(invalid), timeout=30)
        results = {}
        for k, v, _, _, _ in res:
            results[k] = json.loads(v)
        # cost records for every billable attempt of the results
        want_costs = {(k, a["attempt"]) for k, r in results.items() for a in r["attempts"] if a["billable"]}
        cst = bills(h.read(TOPICS["costs"], lambda ms: len({(m[0], json.loads(m[1])["attempt"]) for m in bills(ms)}) >= len(want_costs), timeout=30))
        costs = {}
        for k, v, _, _, _ in cst:
            rec = json.loads(v)
            costs[(k, rec["attempt"])] = rec
        time.sleep(1.5)  # a commit interval, so the committed offsets have moved
        st, hd, m, fams, text = scrape(addr)
        t.ok(st == 200 and hd.get("Content-Type", "").startswith("text/plain; version=0.0.4"),
             f"/metrics is Prometheus text ({st} {hd.get('Content-Type')})")
        promtool(t, text, "the scrape after the run")

        ok = sum(1 for r in results.values() if r["status"] == "ok")
        err = len(results) - ok
        t.ok(len(results) == N - len(invalid) and ok > 0 and err > 0,
             f"the run has ok and error results ({ok} ok, {err} error)")
        t.ok(pick(m, "switchyard_messages_received_total") == N,
             f"received = {N} ({pick(m, 'switchyard_messages_received_total')})")
        errors = sum(v for (n, l), v in m.items()
                     if n == "switchyard_results_total" and dict(l).get("status") == "error")
        t.ok(pick(m, "switchyard_results_total", status="ok") == ok and errors == err,
             f"results by status match the results topic ({ok}/{err})")
        dead = sum(v for (n, _), v in m.items() if n == "switchyard_dead_letters_total")
        t.ok(dead == len({x[0] for x in dlq}) == len(invalid),
             f"dead letters match the dead-letter topic ({len(invalid)})")
        t.ok(pick(m, "switchyard_cost_records_total") == len(costs) == len(want_costs),
             f"cost records match the costs topic ({len(costs)})")
        check_codes(t, m, results, dlq, invalid)

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
            usd = pick(m, "switchyard_model_cost_usd_total", **lab)
            if usd is None or abs(usd - b["nusd"] / 1e9) > 1e-9:
                wrong.append((model, "usd", b["nusd"] / 1e9, usd))
            if pick(m, "switchyard_model_cost_records_total", **lab) != b["records"]:
                wrong.append((model, "records"))
            for cat in ["input", "output", "cache_read", "cache_write", "reasoning"]:
                if pick(m, "switchyard_model_tokens_total", category=cat, **lab) != b[cat]:
                    wrong.append((model, cat, b[cat], pick(m, "switchyard_model_tokens_total", category=cat, **lab)))
        t.ok(by_model and not wrong, f"per-model cost (nano-USD and USD), records and tokens equal the costs topic's sums ({wrong[:3]})")
        total = sum(r["cost_nusd"] for r in costs.values())
        exported = sum(v for (n, _), v in m.items() if n == "switchyard_model_cost_nanousd_total")
        t.ok(exported == total, f"the exported nano-USD add up to the cost topic ({exported} vs {total})")
        t.ok(fams.get("switchyard_model_cost_usd") == "counter", "the USD cost is a counter")
        check_tenants(t, m, results, costs)

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
        used = list(range(REQ_PARTS - 1))
        t.ok(pick(m, "switchyard_partitions_assigned") == REQ_PARTS and sorted(parts) == list(range(REQ_PARTS)),
             f"{REQ_PARTS} partitions assigned and reported ({sorted(parts)})")
        t.ok(all(parts[p].get("position_offset") == ends[p] and parts[p].get("high_watermark_offset") == ends[p]
                 and parts[p].get("lag_messages") == 0 and parts[p].get("in_flight") == 0 for p in parts),
             f"positions and high watermarks at the end offsets, lag 0 ({parts} vs {ends})")
        t.ok(all(parts[p].get("committed_offset") == committed[p] == ends[p] for p in used),
             f"committed offsets match the group's ({committed})")
        empty = REQ_PARTS - 1
        t.ok(ends[empty] == 0 and committed[empty] < 0 and parts[empty].get("committed_offset") == -1,
             f"a partition with nothing committed still has its committed-offset series, -1 "
             f"({parts[empty].get('committed_offset')}, group {committed[empty]})")
        ages = {p: parts[p].get("last_commit_age_seconds") for p in parts}
        t.ok(all(a is not None and 0 <= a < time.time() - started + 1 for a in ages.values()) and
             all(ages[p] < 30 for p in used),
             f"every partition has a last-commit age, within the run ({ages})")
        paused = sum(parts[p].get("paused", 0) for p in parts)
        t.ok(pick(m, "switchyard_partitions_paused") == paused,
             f"switchyard_partitions_paused counts the paused partitions ({paused})")
        t.ok(pick(m, "switchyard_jobs_in_flight") == 0 and pick(m, "switchyard_producer_unacknowledged") == 0,
             "nothing in flight once all is answered")
        check_process(t, m, started)

        # another worker on the same metrics port does not start
        first, first_log = h.worker, h.worker_log
        c["metrics"] = {"listen": addr}
        taken = cfg + ".taken.yaml"
        with open(taken, "w") as f:
            json.dump(c, f)
        rc = h.start_worker(taken, POLICY, env=KEYS).wait(timeout=30)
        with open(h.worker_log) as f:
            log = f.read()
        t.ok(rc == 1 and f"metrics.listen {addr}: cannot listen: Address already in use" in log,
             f"a taken metrics port stops the worker at start, saying why (exit {rc})")
        h.worker, h.worker_log = first, first_log
        t.ok(h.stop_worker() == 0, "the worker exits 0 on SIGTERM")
        check_log(t, json_lines(first_log), results, dlq, invalid)
        bodies_run(t, h)
    finally:
        h.close()
    return t.summary()


if __name__ == "__main__":
    sys.exit(main())
