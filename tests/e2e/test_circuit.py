"""Circuit breakers (issue 8, item 2), as an operator meets them.

The route's first candidate (sonnet) is served by a provider process of its
own; the fallback (mini) by another. Requests flow at a steady pace while
the first provider is killed and, 12 s later, started again on the same
port:

- its circuit opens within 5 s of the kill (one circuit_open line), and
  while it is open its requests go to their next candidate at once: the
  route says `circuit_open`, no request waits for a timeout, and the dead
  provider is tried only by the bounded probes of a half-open circuit;
- /metrics shows the state and counts the transitions, and each one is
  one log line: the circuit_* lines, per lane and state entered, are
  switchyard_circuit_transitions_total;
- traffic returns to the first candidate within 10 s of the provider
  coming back (circuit_half_open, then circuit_closed);
- nothing is lost: one result per request, all ok, and every billed call
  has its cost record.
"""

import json
import os
import re
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(__file__))
from harness import (BUILD, TEST_KEYS as KEYS, Checks, Harness, bills, json_lines,  # noqa: E402
                     metric, scrape)

POLICY = """
models:
  sonnet: { provider: primary, model: claude-sonnet-4-5, price: { input: 3, output: 15 } }
  mini:   { provider: openai,  model: gpt-4.1-mini,      price: { input: 0.4, output: 1.6 } }
routes:
  code: [sonnet, mini]
budget: { default_usd: 0.05, over_budget: downgrade }
"""


def start_fake(port, log):
    p = subprocess.Popen([os.path.join(BUILD, "fake_provider"), "--host", "127.0.0.1",
                          "--port", str(port), "--log", log, "--latency-ms", "5"],
                         stdout=subprocess.PIPE, text=True)
    line = p.stdout.readline().strip()
    if not line.startswith("listening="):
        raise RuntimeError(f"fake_provider did not start: {line!r}")
    return p, int(line.rsplit(":", 1)[1])








def main():
    t = Checks()
    topics = {"requests": "cb.requests", "results": "cb.results", "costs": "cb.costs",
              "dead_letter": "cb.dlq"}
    h = Harness({"cb.requests": 2, "cb.results": 1, "cb.costs": 1, "cb.dlq": 1},
                fake_args=["--latency-ms", "5"])
    primary_log = os.path.join(h.dir, "primary.jsonl")
    primary, port = start_fake(0, primary_log)
    h.procs.append(primary)
    try:
        providers = {
            "primary": {"type": "anthropic", "base_url": f"http://127.0.0.1:{port}",
                        "api_key_env": "SWITCHYARD_TEST_ANTHROPIC_KEY", "timeout_ms": 5000,
                        "connect_timeout_ms": 1000,
                        "circuit": {"failures": 5, "open_ms": 3000, "probes": 1}},
            "openai": {"type": "openai", "base_url": f"http://{h.provider_addr}/v1",
                       "api_key_env": "SWITCHYARD_TEST_OPENAI_KEY", "timeout_ms": 5000},
        }
        limits = {"commit_interval_ms": 200, "backoff_initial_ms": 20, "backoff_max_ms": 200,
                  "max_attempts": 4, "retries_per_candidate": 1}
        cfg = h.write_config(f"cb-{os.getpid()}", topics, limits=limits, providers=providers)
        cfg_doc = json.load(open(cfg))
        cfg_doc["metrics"] = {"listen": "127.0.0.1:0"}
        json.dump(cfg_doc, open(cfg, "w"))
        policy = os.path.join(h.dir, "policy.yaml")
        with open(policy, "w") as f:
            f.write(POLICY)
        h.start_worker(cfg, policy, env=KEYS)
        t.ok(h.wait_log("partitions_assigned"), "the worker joins")
        addr = h.metrics_address()

        # a steady flow: 10 requests a second for 30 s, each stamped with when it was sent
        sent = {}
        stop = threading.Event()

        def flow():
            i = 0
            while not stop.is_set() and i < 300:
                rid = f"c{i}"
                body = {"id": rid, "task": "code",
                        "messages": [{"role": "user", "content": f"req {rid}"}]}
                sent[rid] = time.time()
                h.produce(topics["requests"], [(rid, json.dumps(body).encode())])
                i += 1
                time.sleep(max(0.0, 0.1 - (time.time() - sent[rid])))

        flow_thread = threading.Thread(target=flow)
        flow_thread.start()
        time.sleep(6)
        killed_at = time.time()
        primary.kill()
        primary.wait()
        # while it is down: the state, from /metrics
        open_seen = None
        while time.time() < killed_at + 12:
            text = scrape(addr)
            if metric(text, "switchyard_circuit_state", provider="primary",
                      model="claude-sonnet-4-5", state="open") == 1 and open_seen is None:
                open_seen = time.time()
            time.sleep(0.2)
        back_at = time.time()
        primary2, _ = start_fake(port, primary_log + ".2")
        h.procs.append(primary2)
        flow_thread.join(timeout=60)
        stop.set()
        n = len(sent)
        res = {m[0]: json.loads(m[1]) for m in
               h.read(topics["results"], lambda ms: len({x[0] for x in ms}) >= n, timeout=60)}
        text = scrape(addr)
        t.ok(h.stop_worker(timeout=60) == 0, "the worker stops cleanly (exit 0)")

        t.ok(len(res) == n and all(r["status"] == "ok" for r in res.values()),
             f"one ok result per request ({len(res)} of {n}; "
             f"{sum(r['status'] != 'ok' for r in res.values())} errors)")
        events = [json.loads(l) for l in open(h.worker_log) if l.startswith("{")]
        trans = [e["event"] for e in events if e["event"].startswith("circuit_")]
        opened = [e for e in events if e["event"] == "circuit_open"]
        t.ok(len(opened) >= 1 and "primary" in opened[0]["msg"],
             f"the circuit opens, logged as circuit_open naming the provider ({len(opened)})")
        t.ok(open_seen is not None and open_seen - killed_at <= 5.0,
             f"/metrics shows it open within 5 s of the kill "
             f"({None if open_seen is None else round(open_seen - killed_at, 2)} s)")
        skipped = [r for r in res.values()
                   if r["route"][0]["decision"] == "skipped"
                   and r["route"][0]["reason"] == "circuit_open"]
        t.ok(len(skipped) >= 30 and all(r["model"] == "mini" for r in skipped),
             f"while open, requests skip sonnet (route reason circuit_open) and are served by "
             f"mini ({len(skipped)})")
        timeouts = [a for r in res.values() for a in r["attempts"] if a["status"] == "timeout"]
        t.ok(not timeouts, f"no request waits for a timeout ({len(timeouts)} timed-out calls)")
        down = [r for r in res.values() if killed_at + 1 < sent[r["id"]] < back_at - 0.5]
        slow = [r for r in down if r["completed_at_ms"] - r["received_at_ms"] > 1000]
        t.ok(down and not slow,
             f"requests sent while it is down are answered at once ({len(slow)} of {len(down)} "
             "took over 1 s)")
        probes = [r for r in down if any(a["model"] == "sonnet" for a in r["attempts"])]
        t.ok(len(probes) <= 12 // 3 + 2,
             f"the dead provider is tried only by half-open probes ({len(probes)} requests)")
        later = [r for r in res.values() if sent[r["id"]] > back_at + 10]
        t.ok(later and all(r["model"] == "sonnet" for r in later),
             f"traffic is back on sonnet within 10 s of the provider's return "
             f"({sum(r['model'] == 'sonnet' for r in later)} of {len(later)})")
        closed = [e for e in events if e["event"] == "circuit_closed"]
        half = [e for e in events if e["event"] == "circuit_half_open"]
        t.ok(closed and half, f"circuit_half_open and circuit_closed are logged ({trans})")
        first_back = min((sent[r["id"]] for r in res.values()
                          if sent[r["id"]] > back_at and r["model"] == "sonnet"), default=None)
        t.ok(first_back is not None and first_back - back_at <= 10,
             f"the first request served by sonnet after the return was sent "
             f"{None if first_back is None else round(first_back - back_at, 2)} s after it")
        tr = metric(text, "switchyard_circuit_transitions_total", provider="primary",
                    model="claude-sonnet-4-5", to="open")
        t.ok(tr is not None and tr >= 1, f"switchyard_circuit_transitions_total{{to=open}} = {tr}")
        # every transition is one log line: the lines, by lane and state
        # entered, are the counter /metrics shows (scraped once the traffic
        # had ended: no call was left to move a circuit)
        counted = {}
        for line in text.splitlines():
            m = re.match(r'switchyard_circuit_transitions_total\{provider="([^"]*)",'
                         r'model="([^"]*)",to="([^"]*)"\} (\d+)$', line)
            if m and int(m.group(4)):
                counted[m.group(1, 2, 3)] = int(m.group(4))
        logged = {}
        for e in events:
            if e["event"] in ("circuit_open", "circuit_half_open", "circuit_closed"):
                k = (e.get("provider"), e.get("model"), e["event"][len("circuit_"):])
                logged[k] = logged.get(k, 0) + 1
        t.ok(logged == counted and sum(counted.values()) >= 3,
             f"each transition is one log line: circuit_* lines {logged}, "
             f"switchyard_circuit_transitions_total {counted}")
        st = metric(text, "switchyard_circuit_state", provider="primary",
                    model="claude-sonnet-4-5", state="closed")
        t.ok(st == 1, f"and the state is closed again at the end ({st})")
        # money: every billed call has one cost record
        billed = [e for p in (primary_log, primary_log + ".2", h.fake_log) for e in json_lines(p)
                  if e.get("status") == 200]
        costs = bills(h.read(topics["costs"], lambda ms: len(bills(ms)) >= len(billed),
                             timeout=30))
        ids = {json.loads(m[1])["call_id"] for m in costs}
        t.ok(ids == {e["headers"].get("x-client-request-id") for e in billed},
             f"every billed call has its cost record, de-duplicated on call_id "
             f"({len(ids)} records, {len(billed)} billed)")
    finally:
        h.close()
    return t.summary()


if __name__ == "__main__":
    sys.exit(main())
