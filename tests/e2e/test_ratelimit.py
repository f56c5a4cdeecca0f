"""Rate limits are backpressure, not failures (issue 8, item 1).

The fake provider enforces real per-key, per-model limits (a rolling
bucket, OpenAI's headers and 429 bodies). Phase 1 runs four kinds of
traffic at once through one worker, each on a lane (provider key and
model) of its own:

- learned: gpt-4.1-mini allows 60 requests a minute and nothing is
  configured: 75 requests are all answered by their first candidate, no
  error, the worker learns the limit from the headers (the metric shows
  it), and after the first burst the provider answers (almost) no 429;
- configured: gpt-4.1-nano allows 600 a minute and the policy says 600:
  100 requests paced by the worker, not one 429;
- on_rate_limit: fallback: a latency-sensitive route leaves a limited
  candidate at once for the next one (route reason rate_limited), and
  calls the limited model no more than once per request;
- deadline: requests whose deadline the wait would miss fall back before
  any call to the limited model (route: skipped, rate_limited).

Phase 2: queue_per_model 10 against a configured limit: the partitions
feeding the full queue are paused (metric and log line), and resumed:
every request is answered. The queue never holds more than
queue_per_model + partitions - 1 calls (sampled from /metrics), and its
calls leave in order within each partition (the worker's call_sent lines),
which are the calls the provider saw.

Phase 3: limits set in worker.yaml alone, against a provider that sends
no rate-limit headers (so nothing is learned before a 429) and whose
buckets are drained first (so a limit the worker ignored costs 429s at
once): providers.p3.model_limits (tokens_per_minute binds one model,
max_concurrent another) and the provider-wide providers.p4.limits
(requests_per_minute): not one 429, and the provider never holds more than
max_concurrent calls of the model at once (from its log: arrival and reply
times).

Every phase: one result per request, every billed call one cost record.
"""

import json
import os
import sys
import threading
import time
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(__file__))
from harness import Checks, Harness, bills, metric, scrape  # noqa: E402

KEYS = {"SWITCHYARD_TEST_ANTHROPIC_KEY": "k1", "SWITCHYARD_TEST_OPENAI_KEY": "k2",
        "RL_CFG_KEY": "k3", "RL_FB_KEY": "k4", "RL_P2_KEY": "k5", "RL_P3_KEY": "k6",
        "RL_P4_KEY": "k8"}

POLICY = """
models:
  mini:     { provider: openai, model: gpt-4.1-mini, price: { input: 0.4, output: 1.6 } }
  nano:     { provider: openai, model: gpt-4.1-nano, price: { input: 0.1, output: 0.4 } }
  sonnet:   { provider: anthropic, model: claude-sonnet-4-5, price: { input: 3, output: 15 } }
  nano_cfg: { provider: cfg, model: gpt-4.1-nano, price: { input: 0.1, output: 0.4 },
              limits: { requests_per_minute: 600 } }
  mini_fb:  { provider: fb, model: gpt-4.1-mini, price: { input: 0.4, output: 1.6 } }
  nano_fb:  { provider: fb, model: gpt-4.1-nano, price: { input: 0.1, output: 0.4 } }
  nano_p2:  { provider: p2, model: gpt-4.1-nano, price: { input: 0.1, output: 0.4 },
              limits: { requests_per_minute: 600 } }
  tok_p3:   { provider: p3, model: gpt-4o, price: { input: 2.5, output: 10 } }
  conc_p3:  { provider: p3, model: gpt-4o-mini, price: { input: 0.15, output: 0.6 } }
  rpm_p4:   { provider: p4, model: gpt-4.1, price: { input: 2, output: 8 } }
routes:
  learned:    [mini, sonnet]
  configured: [nano_cfg, sonnet]
  urgent:     { candidates: [mini_fb, nano_fb], on_rate_limit: fallback }
  pressed:    [nano_p2]
  tok:        [tok_p3]
  conc:       [conc_p3]
  wide:       [rpm_p4]
budget: { default_usd: 0.05, over_budget: downgrade }
"""


def request(rid, task, **extra):
    body = {"id": rid, "task": task, "messages": [{"role": "user", "content": f"req {rid}"}],
            "max_tokens": 20}
    body.update(extra)
    return (rid, json.dumps(body).encode())






# phase 3: worker.yaml's limits, each the one that binds on its lane
P3_TPM = 6000   # providers.p3.model_limits.tokens_per_minute (and the fake's gpt-4o tpm)
P3_CONC = 2     # providers.p3.model_limits.max_concurrent
P4_RPM = 60     # providers.p4.limits.requests_per_minute (and the fake's gpt-4.1 rpm)
# what the drain leaves in the fake's buckets: two seconds of each rate, more
# than the worker's own bucket (one second of the rate) can send at once
P3_LEFT = 2 * P3_TPM // 60
P4_LEFT = 2 * P4_RPM // 60


def direct_call(addr, key, model, max_tokens):
    """One call to the fake provider, not through the worker (it shares
    the worker's buckets: same key, same model); its HTTP status."""
    body = json.dumps({"model": model, "max_tokens": max_tokens,
                       "messages": [{"role": "user", "content": "drain"}]}).encode()
    r = urllib.request.Request(f"http://{addr}/v1/chat/completions", data=body,
                               headers={"authorization": f"Bearer {key}",
                                        "content-type": "application/json"})
    try:
        with urllib.request.urlopen(r, timeout=10) as resp:
            return resp.status
    except urllib.error.HTTPError as e:
        return e.code


def in_flight_peak(calls):
    """The most calls the provider held at once: each from its arrival
    (ts_ms) to its reply (ts_ms + delay_ms); a call arriving as another's
    reply leaves is not counted with it (the worker only sends the next
    once the reply is in)."""
    edges = sorted([(e["ts_ms"] + e["delay_ms"], -1) for e in calls] +
                   [(e["ts_ms"], 1) for e in calls])
    peak = cur = 0
    for _, d in edges:
        cur += d
        peak = max(peak, cur)
    return peak


def key_of(e):
    return e["headers"].get("authorization", "").replace("Bearer ", "")


def money(t, h, topics, log):
    billed = {e["headers"].get("x-client-request-id") for e in log if e.get("status") == 200}
    costs = bills(h.read(topics["costs"], lambda ms: len({json.loads(m[1])["call_id"]
                                                          for m in bills(ms)}) >= len(billed),
                         timeout=30))
    ids = {json.loads(m[1])["call_id"] for m in costs}
    t.ok(ids == billed, f"every billed call has its cost record, de-duplicated on call_id "
         f"({len(ids)} records, {len(billed)} billed)")


def main():
    t = Checks()
    t1 = {"requests": "rl.requests", "results": "rl.results", "costs": "rl.costs",
          "dead_letter": "rl.dlq"}
    t2 = {"requests": "rl2.requests", "results": "rl2.results", "costs": "rl2.costs",
          "dead_letter": "rl2.dlq"}
    t3 = {"requests": "rl3.requests", "results": "rl3.results", "costs": "rl3.costs",
          "dead_letter": "rl3.dlq"}
    parts = {v: (3 if k == "requests" else 1) for d in (t1, t2, t3) for k, v in d.items()}
    # phase 3's limits send no headers: only worker.yaml can keep the worker
    # under them, nothing is learned before the first 429
    h = Harness(parts, fake_args=["--latency-ms", "5", "--limit", "gpt-4.1-mini:rpm=60",
                                  "--limit", "gpt-4.1-nano:rpm=600",
                                  "--limit", f"gpt-4o:tpm={P3_TPM},headers=0",
                                  "--limit", f"gpt-4.1:rpm={P4_RPM},headers=0"])
    try:
        base = f"http://{h.provider_addr}"

        def openai(env):
            return {"type": "openai", "base_url": base + "/v1", "api_key_env": env,
                    "timeout_ms": 5000}
        providers = {
            "anthropic": {"type": "anthropic", "base_url": base,
                          "api_key_env": "SWITCHYARD_TEST_ANTHROPIC_KEY", "timeout_ms": 5000},
            "openai": openai("SWITCHYARD_TEST_OPENAI_KEY"), "cfg": openai("RL_CFG_KEY"),
            "fb": openai("RL_FB_KEY"), "p2": openai("RL_P2_KEY"),
            # phase 3: limits from worker.yaml alone (the policy sets none)
            "p3": dict(openai("RL_P3_KEY"), model_limits={"tokens_per_minute": P3_TPM,
                                                          "max_concurrent": P3_CONC}),
            "p4": dict(openai("RL_P4_KEY"), limits={"requests_per_minute": P4_RPM}),
        }
        limits = {"commit_interval_ms": 200, "backoff_initial_ms": 20, "backoff_max_ms": 2000}
        cfg = h.write_config(f"rl-{os.getpid()}", t1, limits=limits, providers=providers)
        doc = json.load(open(cfg))
        doc["metrics"] = {"listen": "127.0.0.1:0"}
        json.dump(doc, open(cfg, "w"))
        policy = os.path.join(h.dir, "policy.yaml")
        with open(policy, "w") as f:
            f.write(POLICY)

        # ---- phase 1 ----
        learned = [request(f"l{i}", "learned") for i in range(75)]
        configured = [request(f"c{i}", "configured") for i in range(100)]
        urgent = [request(f"u{i}", "urgent") for i in range(90)]
        h.produce(t1["requests"], learned + configured + urgent)
        h.start_worker(cfg, policy, env=KEYS)
        t.ok(h.wait_log("partitions_assigned"), "the worker joins")
        addr = h.metrics_address()
        time.sleep(2)
        now_ms = int(time.time() * 1000)
        # these would wait behind the configured lane's backlog past their deadline
        late = [request(f"d{i}", "configured", deadline_ms=now_ms + 2500) for i in range(10)]
        h.produce(t1["requests"], late)
        reqs = learned + configured + urgent + late
        learned_rate = None
        deadline = time.time() + 150
        res = {}
        while time.time() < deadline and len(res) < len(reqs):
            text = scrape(addr)
            rate = metric(text, "switchyard_rate_limit_per_minute", provider="openai",
                          model="gpt-4.1-mini", dimension="requests")
            learned_rate = rate if rate is not None else learned_rate
            res = {m[0]: json.loads(m[1]) for m in
                   h.read(t1["results"], lambda ms: len(ms) >= len(reqs), timeout=3)}
        t.ok(h.stop_worker(timeout=60) == 0, "phase 1: the worker stops cleanly (exit 0)")
        log = h.provider_log()
        t.ok(len(res) == len(reqs), f"one result per request ({len(res)} of {len(reqs)})")

        def calls(model, key):
            return sorted((e for e in log if e.get("model") == model and key_of(e) == key),
                          key=lambda e: e["ts_ms"])

        # learned
        lr = [res.get(k, {}) for k, _ in learned]
        t.ok(all(r.get("status") == "ok" and r.get("model") == "mini" for r in lr),
             f"learned: all 75 answered by their first candidate "
             f"({sum(r.get('status') == 'ok' and r.get('model') == 'mini' for r in lr)})")
        mini = calls("gpt-4.1-mini", "k2")
        t0 = mini[0]["ts_ms"] if mini else 0
        r429 = [e for e in mini if e.get("status") == 429]
        late429 = [e for e in r429 if e["ts_ms"] > t0 + 5000]
        ok200 = [e for e in mini if e.get("status") == 200]
        # the first burst meets 429s when it outruns the headers; on a slow
        # machine the worker may learn the limit from the headers first
        t.ok(len(ok200) == 75, f"75 billed calls ({len(ok200)} ok, {len(r429)} 429s on the way)")
        t.ok(len(late429) <= 2,
             f"after the first 5 s the worker keeps to the learned limit: {len(late429)} 429s "
             f"in {sum(e['ts_ms'] > t0 + 5000 for e in mini)} calls")
        t.ok(learned_rate is not None and 50 <= learned_rate <= 60,
             f"/metrics shows the limit it learned: {learned_rate} requests a minute")
        attempts_429 = sum(a["http_status"] == 429 for r in lr for a in r.get("attempts", []))
        t.ok(attempts_429 == len(r429), f"each 429 is an attempt of its result, status error "
             f"({attempts_429} of {len(r429)})")
        if len(ok200) > 60:
            span = (ok200[-1]["ts_ms"] - ok200[60]["ts_ms"]) / 1000
            print(f"learned: calls after the burst at {(len(ok200) - 61) / max(span, 0.001) * 60:.0f}"
                  f" a minute (the provider allows 60)")
        # configured
        cr = [res.get(k, {}) for k, _ in configured]
        nano = calls("gpt-4.1-nano", "k3")
        t.ok(all(r.get("status") == "ok" and r.get("model") == "nano_cfg" for r in cr),
             "configured: all 100 answered by their first candidate")
        t.ok(not [e for e in nano if e.get("status") == 429],
             f"configured at the provider's limit: not one 429 ({len(nano)} calls)")
        # fallback
        ur = [res.get(k, {}) for k, _ in urgent]
        fb = [r for r in ur if r.get("model") == "nano_fb"]
        t.ok(all(r.get("status") == "ok" for r in ur) and fb,
             f"on_rate_limit: fallback: all answered, {len(fb)} by the next candidate")
        t.ok(all(r["route"][0]["decision"] in ("failed", "skipped")
                 and r["route"][0]["reason"] == "rate_limited" for r in fb),
             "each fallback's route says rate_limited")
        per_req = {}
        for e in calls("gpt-4.1-mini", "k4"):
            rid = json.dumps(e["body"]).split("req ", 1)[1].split('"', 1)[0]
            per_req[rid] = per_req.get(rid, 0) + 1
        t.ok(per_req and max(per_req.values()) == 1,
             f"and no request calls the limited model twice (max {max(per_req.values() or [0])})")
        # deadline
        dr = [res.get(k, {}) for k, _ in late]
        t.ok(all(r.get("status") == "ok" and r.get("model") == "sonnet" for r in dr),
             f"deadline: the 10 late requests are served by the next candidate "
             f"({[r.get('model') for r in dr]})")
        t.ok(all(r["route"][0] == {**r["route"][0], "decision": "skipped",
                                   "reason": "rate_limited"} and
                 not [a for a in r["attempts"] if a["model"] == "nano_cfg"] for r in dr if r),
             "skipped before any call to the limited model, route reason rate_limited")
        errors = [r for r in res.values() if r.get("status") != "ok"]
        t.ok(not errors, f"no error result at all ({[r.get('error') for r in errors][:3]})")
        money(t, h, t1, log)

        # ---- phase 2: a full model queue pauses its partitions ----
        # The bound on the lane's queue (dispatch.c lane_press, consumer.c
        # consumer_can_start): when it reaches queue_per_model, every
        # partition with a call waiting in it is paused at once; a partition
        # with none waiting there can still start one message, whose call
        # joins the queue and pauses it; one that sees its last call leave
        # adds at most one back for it. So at most queue_per_model +
        # partitions - 1 wait, as long as no call comes back to the front
        # after a 429 (none here: the limit is configured at the provider's).
        queue_per_model = 10
        queue_bound = queue_per_model + parts[t2["requests"]] - 1
        limits2 = dict(limits, queue_per_model=queue_per_model, max_in_flight=1000,
                       max_in_flight_per_partition=1000)
        cfg2 = h.write_config(f"rl2-{os.getpid()}", t2, limits=limits2, providers=providers)
        doc = json.load(open(cfg2))
        doc["metrics"] = {"listen": "127.0.0.1:0"}
        doc["logging"] = {"requests": True}  # call_sent: the order calls leave the lane
        json.dump(doc, open(cfg2, "w"))
        reqs2 = [request(f"p{i}", "pressed") for i in range(80)]
        h.produce(t2["requests"], reqs2)
        h.start_worker(cfg2, policy, env=KEYS)
        addr = h.metrics_address()
        seen = {"paused": 0, "queue_max": 0, "samples": 0}
        done = threading.Event()

        def sample():
            # /metrics as often as it answers: a peak between two reads is missed
            while not done.is_set():
                text = scrape(addr)
                for p in range(3):
                    seen["paused"] |= metric(text, "switchyard_partition_paused_for_rate_limit",
                                             partition=str(p)) == 1
                q = metric(text, "switchyard_model_queue", provider="p2", model="gpt-4.1-nano")
                if q is not None:
                    seen["queue_max"] = max(seen["queue_max"], q)
                    seen["samples"] += 1
                time.sleep(0.01)

        sampler = threading.Thread(target=sample)
        sampler.start()
        res2 = {m[0]: json.loads(m[1]) for m in
                h.read(t2["results"], lambda ms: len({x[0] for x in ms}) >= len(reqs2),
                       timeout=90)}
        done.set()
        sampler.join()
        t.ok(h.stop_worker(timeout=60) == 0, "phase 2: the worker stops cleanly (exit 0)")
        t.ok(len(res2) == len(reqs2) and all(r["status"] == "ok" for r in res2.values()),
             f"phase 2: every request answered ({len(res2)} of {len(reqs2)})")
        t.ok(seen["paused"], "a full model queue pauses the partitions feeding it (metric)")
        events = [json.loads(l) for l in open(h.worker_log) if l.startswith("{")]
        t.ok(any(e["event"] == "model_queue_full" for e in events),
             "and says so once (model_queue_full)")
        log2 = [e for e in h.provider_log() if key_of(e) == "k5"]
        t.ok(not [e for e in log2 if e.get("status") == 429],
             f"phase 2: no 429, so no call came back to the front of the queue "
             f"({sum(e.get('status') == 429 for e in log2)})")
        t.ok(seen["samples"] > 0 and seen["queue_max"] <= queue_bound,
             f"the model queue stays within queue_per_model + partitions - 1 = {queue_bound}: "
             f"peaked at {seen['queue_max']:.0f} (queue_per_model {queue_per_model}, "
             f"{seen['samples']} samples of /metrics)")
        print(f"phase 2: model queue peaked at {seen['queue_max']:.0f} "
              f"(queue_per_model {queue_per_model})")
        # in order: the calls leave the lane (call_sent, logged as each
        # leaves) in the offsets' order within each partition
        sent2 = [e for e in events if e["event"] == "call_sent" and e.get("provider") == "p2"]
        order = {}
        for e in sent2:
            order.setdefault(e["partition"], []).append(e["offset"])
        t.ok(len(order) == parts[t2["requests"]] and
             all(o == sorted(set(o)) for o in order.values()),
             f"calls waiting for the model's limit leave in order within each partition "
             f"({ {p: sum(a > b for a, b in zip(o, o[1:])) for p, o in sorted(order.items())} } "
             f"out of order, by partition)")
        sent_ids = [e["msg"].split()[1] for e in sent2]
        t.ok(len(sent_ids) == len(reqs2) and
             set(sent_ids) == {e["headers"].get("x-client-request-id") for e in log2},
             f"and those are the calls the provider saw, one per request "
             f"({len(sent_ids)} call_sent lines, {len(log2)} calls)")
        committed, ends = h.committed(f"rl2-{os.getpid()}", t2["requests"])
        t.ok(committed == ends, f"and resumes them: all committed ({committed} of {ends})")
        money(t, h, t2, log2)

        # ---- phase 3: worker.yaml's model_limits and provider-wide limits ----
        # The fake's buckets for these keys are drained first, down to two
        # seconds of their rate: a worker that ignored a limit would meet
        # 429s within its first calls (its first blast is not paced when
        # nothing is known). p3's gpt-4o is bound by tokens_per_minute
        # (72-token calls, 5 ms each), its gpt-4o-mini by max_concurrent
        # (1 s calls: tokens would allow 4 at once); p4's gpt-4.1 by the
        # provider-wide requests_per_minute.
        drain_tok = direct_call(h.provider_addr, "k6", "gpt-4o", P3_TPM - P3_LEFT - 5)
        drain_req = [direct_call(h.provider_addr, "k8", "gpt-4.1", 1)
                     for _ in range(P4_RPM - P4_LEFT)]
        t.ok(drain_tok == 200 and drain_req == [200] * len(drain_req),
             f"phase 3: the fake's gpt-4o tokens and gpt-4.1 requests are drained "
             f"({drain_tok}, {sum(s == 200 for s in drain_req)} of {len(drain_req)})")
        cfg3 = h.write_config(f"rl3-{os.getpid()}", t3, limits=limits, providers=providers)
        tok = [request(f"t{i}", "tok", max_tokens=16,
                       messages=[{"role": "user", "content": f"req t{i} " + "x" * 200}])
               for i in range(12)]
        conc = [request(f"m{i}", "conc", max_tokens=16,
                        messages=[{"role": "user", "content": f"req m{i} #latency=1000"}])
                for i in range(12)]
        wide = [request(f"w{i}", "wide") for i in range(8)]
        reqs3 = tok + conc + wide
        h.produce(t3["requests"], reqs3)
        h.start_worker(cfg3, policy, env=KEYS)
        res3 = {m[0]: json.loads(m[1]) for m in
                h.read(t3["results"], lambda ms: len({x[0] for x in ms}) >= len(reqs3),
                       timeout=120)}
        t.ok(h.stop_worker(timeout=60) == 0, "phase 3: the worker stops cleanly (exit 0)")
        t.ok(len(res3) == len(reqs3) and all(r["status"] == "ok" for r in res3.values()),
             f"phase 3: every request answered ({len(res3)} of {len(reqs3)}; "
             f"{[r.get('error') for r in res3.values() if r['status'] != 'ok'][:3]})")
        log3 = [e for e in h.provider_log() if key_of(e) in ("k6", "k8")
                and e.get("body", {}).get("messages", [{}])[0].get("content") != "drain"]
        by_model = {m: [e for e in log3 if e.get("model") == m]
                    for m in ("gpt-4o", "gpt-4o-mini", "gpt-4.1")}
        for m, n, what in (("gpt-4o", len(tok), "model_limits.tokens_per_minute"),
                           ("gpt-4o-mini", len(conc), "model_limits.max_concurrent"),
                           ("gpt-4.1", len(wide), "the provider-wide limits.requests_per_minute")):
            calls3 = by_model[m]
            r429 = sum(e.get("status") == 429 for e in calls3)
            t.ok(r429 == 0 and sum(e.get("status") == 200 for e in calls3) == n,
                 f"{m}: {what} keeps the worker under the provider's limit: "
                 f"{r429} 429s in {len(calls3)} calls ({n} requests)")
        peak = in_flight_peak(by_model["gpt-4o-mini"])
        t.ok(peak <= P3_CONC,
             f"gpt-4o-mini: the provider never holds more than max_concurrent ({P3_CONC}) "
             f"of its calls at once (peak {peak})")
        print(f"phase 3: gpt-4o-mini peaked at {peak} calls in flight; gpt-4o's 72-token calls "
              f"at {len(by_model['gpt-4o'])} in "
              f"{(max((e['ts_ms'] for e in by_model['gpt-4o']), default=0) - min((e['ts_ms'] for e in by_model['gpt-4o']), default=0)) / 1000:.1f} s")
        money(t, h, t3, log3)
    finally:
        h.close()
    return t.summary()


if __name__ == "__main__":
    sys.exit(main())
