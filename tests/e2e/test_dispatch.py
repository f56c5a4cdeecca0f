"""Dispatch's paths, as the provider sees them (issue 7, items 3 and 7).

Each request steers the fake provider with #directives; the provider's own
request log (arrival time, delay, status, the X-Client-Request-Id we send)
is what is checked, with the results:

- A 429 is backpressure (issue 8): Retry-After is honoured (a 429 with
  Retry-After 1 s is called again no sooner than 1 s after its reply), the
  calls it costs do not count against max_attempts, and when waiting
  again would miss the deadline the request falls back, then ends with
  error code rate_limited, each candidate's route reason rate_limited.
- A deadline bounds the call's timeout and ends the request with
  deadline_exceeded, without waiting for the slow provider.
- A non-retryable 401 falls back to the next candidate at once, and a
  refused key is logged once per provider and model, not once per call.
- max_connections: the provider never sees more concurrent calls than the
  cap; the calls beyond it wait and are all served.
- A provider that cannot be reached (a closed port) is logged as
  provider_unreachable, at a bounded rate, naming base_url.
- A model the provider does not know (404) ends the request with an error
  result, is counted as a client_error attempt of its model, and is logged
  as provider_model_unknown: one line per provider and model at once, then
  at most one per 30 s, saying how many were not logged since.
"""

import json
import os
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from harness import (TEST_KEYS as KEYS, TEST_POLICY as POLICY, Checks, Harness,  # noqa: E402
                     metric, scrape)

TROUBLE_INTERVAL_S = 30  # dispatch.c: DISPATCH_TROUBLE_INTERVAL_MS


def request(rid, content, **extra):
    body = {"id": rid, "task": "code", "messages": [{"role": "user", "content": content}]}
    body.update(extra)
    return json.dumps(body).encode()


def calls_for(log, rid):
    return sorted((e for e in log if f"req {rid} " in json.dumps(e.get("body", {}))),
                  key=lambda e: e["ts_ms"])


def log_events(path):
    with open(path) as f:
        return [json.loads(l) for l in f if l.startswith("{")]


def main():
    t = Checks()
    topics = {"requests": "dp.requests", "results": "dp.results", "costs": "dp.costs",
              "dead_letter": "dp.dlq"}
    h = Harness({v: 1 for v in topics.values()}, fake_args=["--latency-ms", "5"])
    try:
        base = f"http://{h.provider_addr}"
        providers = {
            "anthropic": {"type": "anthropic", "base_url": base, "timeout_ms": 10000,
                          "api_key_env": "SWITCHYARD_TEST_ANTHROPIC_KEY"},
            "openai": {"type": "openai", "base_url": base + "/v1", "timeout_ms": 10000,
                       "api_key_env": "SWITCHYARD_TEST_OPENAI_KEY", "max_connections": 2},
        }
        limits = {"commit_interval_ms": 200, "backoff_initial_ms": 20, "backoff_max_ms": 5000,
                  "max_attempts": 2, "retries_per_candidate": 5}
        cfg = h.write_config(f"dp-{os.getpid()}", topics, limits=limits, providers=providers)
        # the deadlines below (3 s, 4.5 s) count calls on 2 connections, and
        # a reservation holds its call's connection until the broker
        # acknowledges it (a few ms each, 50 calls queued): these rules are
        # about calls, so they run without reservations (test_reserve.py
        # covers those, deadlines included)
        with open(cfg) as f:
            doc = json.load(f)
        doc["costs"] = {"reserve": False}
        with open(cfg, "w") as f:
            json.dump(doc, f)
        reqs = [(f"nr{i}", request(f"nr{i}", f"req nr{i} #fault=status:401")) for i in range(20)]
        reqs += [(f"cc{i}", request(f"cc{i}", f"req cc{i} #latency=150")) for i in range(30)]
        h.produce(topics["requests"], reqs)
        w = h.start_worker(cfg, POLICY, env=KEYS, args=["--exit-when-idle", "2000"])
        t.ok(h.wait_log("partitions_assigned"), "the worker joins")
        # produced once the worker runs: its 3 s deadline starts counting now
        now_ms = int(time.time() * 1000)
        late = [("dl", request("dl", "req dl #latency=20000", deadline_ms=now_ms + 3000)),
                ("ra", request("ra", "req ra #fault=status:429,retry_after:1",
                               deadline_ms=now_ms + 4500))]
        h.produce(topics["requests"], late)
        reqs += late
        t.ok(w.wait(timeout=120) == 0, "the worker answers everything and exits 0")
        time.sleep(0.3)
        res = {m[0]: json.loads(m[1]) for m in
               h.read(topics["results"], lambda ms: len(ms) >= len(reqs), timeout=30)}
        log = h.provider_log()
        t.ok(len(res) == len(reqs), f"one result per request ({len(res)} of {len(reqs)})")

        ra = calls_for(log, "ra")
        ra_mini = [e for e in ra if e["body"]["model"] == "gpt-4.1-mini"]
        t.ok(len(ra_mini) >= 3,
             f"429s spend no attempts: more calls than max_attempts=2 ({len(ra_mini)})")
        gaps = [b["ts_ms"] - (a["ts_ms"] + a.get("delay_ms", 0))
                for a, b in zip(ra_mini, ra_mini[1:])]
        t.ok(gaps and all(g >= 1000 for g in gaps),
             f"each call waits the provider's Retry-After of 1 s (gaps {gaps} ms)")
        r = res.get("ra", {})
        route = [(c["model"], c["decision"], c["reason"]) for c in r.get("route", [])]
        code = r.get("error", {}).get("code")
        # rate_limited: the worker saw that the next wait would pass the
        # deadline. On a loaded machine (ASan, a busy CI) a wait it rightly
        # began can end with the deadline already gone: deadline_exceeded,
        # the next candidate not reached. Either way no call is made late.
        t.ok(code == "rate_limited" or (code == "deadline_exceeded"
                                        and route[:1] == [("mini", "failed", "rate_limited")]),
             f"waiting past the deadline is not done: an error result rate_limited "
             f"({r.get('error')})")
        t.ok(code != "rate_limited" or route
             == [("mini", "failed", "rate_limited"), ("nano", "failed", "rate_limited")],
             f"the route says why each candidate was left ({r.get('route')})")
        t.ok(all(e["ts_ms"] <= now_ms + 4500 for e in ra),
             f"no call was sent after the deadline ({[e['ts_ms'] - now_ms for e in ra]} ms)")
        t.ok(r.get("completed_at_ms", 0) <= now_ms + 4500 + 1000,
             "and it ends by its deadline, not after")
        ids = [e["headers"].get("x-client-request-id") for e in ra]
        t.ok([a["call_id"] for a in r.get("attempts", [])] == ids,
             "each attempt's call_id is the X-Client-Request-Id the provider received")

        dl = calls_for(log, "dl")
        r = res.get("dl", {})
        t.ok(r.get("error", {}).get("code") == "deadline_exceeded",
             f"a deadline ends the request with deadline_exceeded ({r.get('error')})")
        t.ok(r.get("completed_at_ms", 0) - now_ms < 3000 + 2000,
             "without waiting for the 20 s provider beyond the deadline")
        att = r.get("attempts", [])
        t.ok(len(att) == 1 and att[0]["status"] == "timeout" and not dl,
             f"its one call timed out at the deadline, unanswered "
             f"({[a['status'] for a in att]}, {len(dl)} replies logged)")

        nr = [calls_for(log, f"nr{i}") for i in range(20)]
        t.ok(all([e["body"]["model"] for e in c] == ["gpt-4.1-mini", "gpt-4.1-nano"] for c in nr),
             "a 401 falls back to the next candidate at once, one call each")
        t.ok(all(res.get(f"nr{i}", {}).get("error", {}).get("code") == "provider_rejected"
                 for i in range(20)),
             "and ends with provider_rejected: the provider refused the request itself")
        t.ok(all([c["decision"] for c in res.get(f"nr{i}", {}).get("route", [])]
                 == ["failed", "failed"] for i in range(20)),
             "its route shows both candidates failed (the last one too, though max_attempts "
             "ended it)")
        refit = [(e["body"].get("max_tokens"),
                  {r["model"]: r.get("max_tokens") for r in res[f"nr{i}"]["route"]}[m])
                 for i in range(20) for e, m in zip(nr[i], ("mini", "nano"))]
        t.ok(refit and all(sent == planned for sent, planned in refit),
             "each candidate is sent the max_tokens its budget affords (the fallback re-fit "
             "to what is left, nothing billed yet)")
        events = log_events(h.worker_log)
        rejected = [e for e in events if e["event"] == "provider_key_rejected"]
        models = sorted({m for e in rejected for m in ("mini", "nano") if f"model {m} " in e["msg"]})
        t.ok(models == ["mini", "nano"] and len(rejected) == 2,
             f"a refused key is logged once per provider and model ({len(rejected)} lines)")
        t.ok(all("api_key_env" in e["msg"] and e["level"] == "error" for e in rejected),
             "as an error that says what to check")

        cc = [e for i in range(30) for e in calls_for(log, f"cc{i}")]
        edges = sorted([(e["ts_ms"], 1) for e in cc] +
                       [(e["ts_ms"] + e.get("delay_ms", 0), -1) for e in cc],
                       key=lambda x: (x[0], x[1]))
        peak = cur = 0
        for _, d in edges:
            cur += d
            peak = max(peak, cur)
        t.ok(len(cc) == 30 and all(res.get(f"cc{i}", {}).get("status") == "ok" for i in range(30)),
             f"30 calls beyond the cap all served ({len(cc)})")
        t.ok(peak <= 2, f"max_connections=2 holds at the provider (peak {peak} concurrent)")
    finally:
        h.close()

    # a provider that cannot be reached
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    closed = s.getsockname()[1]
    s.close()
    h = Harness({v: 1 for v in topics.values()}, fake_args=["--latency-ms", "5"])
    try:
        providers = {
            "anthropic": {"type": "anthropic", "base_url": f"http://127.0.0.1:{closed}",
                          "api_key_env": "SWITCHYARD_TEST_ANTHROPIC_KEY"},
            "openai": {"type": "openai", "base_url": f"http://127.0.0.1:{closed}/v1",
                       "api_key_env": "SWITCHYARD_TEST_OPENAI_KEY"},
        }
        limits = {"commit_interval_ms": 200, "backoff_initial_ms": 10, "backoff_max_ms": 50,
                  "max_attempts": 3}
        cfg = h.write_config(f"dp2-{os.getpid()}", topics, limits=limits, providers=providers)
        h.produce(topics["requests"], [(f"u{i}", request(f"u{i}", f"req u{i}")) for i in range(20)])
        w = h.start_worker(cfg, POLICY, env=KEYS, args=["--exit-when-idle", "2000"])
        t.ok(w.wait(timeout=60) == 0, "unreachable provider: the worker still answers and exits")
        res = h.read(topics["results"], lambda ms: len(ms) >= 20, timeout=20)
        t.ok(len(res) == 20 and all(json.loads(m[1])["status"] == "error" for m in res),
             f"every request gets an error result ({len(res)})")
        events = log_events(h.worker_log)
        un = [e for e in events if e["event"] == "provider_unreachable"]
        t.ok(1 <= len(un) <= 2 and all(f"127.0.0.1:{closed}" in e["msg"] for e in un),
             f"provider_unreachable is logged at a bounded rate, naming base_url ({len(un)} lines "
             "for 60 failed calls)")
    finally:
        h.close()
    model_unknown(t, topics)
    return t.summary()


def model_unknown(t, topics):
    """Every call answered 404: the provider does not know the model."""
    h = Harness({v: 1 for v in topics.values()}, fake_args=["--latency-ms", "5"])
    try:
        limits = {"commit_interval_ms": 200, "backoff_initial_ms": 20, "backoff_max_ms": 200,
                  "max_attempts": 4}
        cfg = h.write_config(f"dp3-{os.getpid()}", topics, limits=limits)
        with open(cfg) as f:
            doc = json.load(f)
        doc["metrics"] = {"listen": "127.0.0.1:0"}
        with open(cfg, "w") as f:
            json.dump(doc, f)
        n = 10
        h.produce(topics["requests"], [(f"mu{i}", request(f"mu{i}", f"req mu{i} #fault=status:404"))
                                       for i in range(n)])
        w = h.start_worker(cfg, POLICY, env=KEYS)
        addr = h.metrics_address()
        res = {m[0]: json.loads(m[1]) for m in
               h.read(topics["results"], lambda ms: len(ms) >= n, timeout=60)}
        calls = [calls_for(h.provider_log(), f"mu{i}") for i in range(n)]
        t.ok(all([(e["body"]["model"], e["status"]) for e in c]
                 == [("gpt-4.1-mini", 404), ("gpt-4.1-nano", 404)] for c in calls),
             "a 404 falls back to the next candidate at once, one call each")
        t.ok(len(res) == n and all(r.get("status") == "error"
                                   and r.get("error", {}).get("code") == "provider_rejected"
                                   for r in res.values()),
             f"each request ends with an error result provider_rejected "
             f"({len(res)}: {[(k, r.get('error', {}).get('code')) for k, r in res.items()][:3]})")

        def unknown():
            return [e for e in log_events(h.worker_log) if e["event"] == "provider_model_unknown"]

        def lines_for(lines, model):
            return [e for e in lines if f"model {model} (gpt-4.1-{model})" in e["msg"]]

        first = unknown()
        t.ok(len(first) == 2 and len(lines_for(first, "mini")) == 1
             and len(lines_for(first, "nano")) == 1,
             f"one provider_model_unknown line per provider and model for {2 * n} refused calls "
             f"({[e['msg'][:60] for e in first]})")
        t.ok(all(e["level"] == "error" and e.get("provider") == "openai"
                 and "check the model id" in e["msg"]
                 and "(0 more since the last report)" in e["msg"] for e in first),
             f"an error naming the provider, saying what to check ({first[:1]})")
        text = scrape(addr)
        counted = [metric(text, "switchyard_model_attempts_total", model=m, provider="openai",
                          outcome="client_error") for m in ("mini", "nano")]
        t.ok(counted == [n, n], f"the refused calls are counted as client_error ({counted})")
        t.ok(metric(text, "switchyard_results_total", status="error", code="provider_rejected")
             == n, "and the error results by code")

        # past the interval the next refusal is logged again, with the count
        # of those that were not
        due = (first[0]["ts_ms"] if first else time.time() * 1000) / 1000 + TROUBLE_INTERVAL_S + 1
        time.sleep(max(0.0, due - time.time()))
        h.produce(topics["requests"], [("mu-late", request("mu-late", "req mu-late "
                                                                      "#fault=status:404"))])
        h.read(topics["results"], lambda ms: len(ms) >= n + 1, timeout=60)
        deadline = time.time() + 10
        while time.time() < deadline and len(unknown()) < 4:
            time.sleep(0.1)
        later = unknown()[2:]
        t.ok(len(later) == 2 and all(len(lines_for(later, m)) == 1 and
                                     f"({n - 1} more since the last report)"
                                     in lines_for(later, m)[0]["msg"] for m in ("mini", "nano")),
             f"after {TROUBLE_INTERVAL_S} s one more line per model, counting the {n - 1} not "
             f"logged ({[e['msg'][-40:] for e in later]})")
        text = scrape(addr)
        counted = [metric(text, "switchyard_model_attempts_total", model=m, provider="openai",
                          outcome="client_error") for m in ("mini", "nano")]
        t.ok(counted == [n + 1, n + 1], f"and the counter goes on ({counted})")
        t.ok(h.stop_worker() == 0, "the worker stops, exit 0")
    finally:
        h.close()


if __name__ == "__main__":
    sys.exit(main())
