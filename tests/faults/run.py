#!/usr/bin/python3
"""make test-faults: counted fault scenarios against real processes (issue 8,
item 4), printed as one table and written to $BUILD/faults.json.

Each scenario starts its own mock Kafka cluster, fake provider(s) and
switchyard worker(s) (tests/e2e/harness.py), produces requests with kcat,
reads results, cost records and dead letters back, and counts, per row:
requests sent, results (distinct request ids answered), error results,
lost (requests with no result), duplicate results, dead letters, provider
calls billed (200 replies with a whole body in the providers' request logs)
against cost records de-duplicated on call_id (the settled ones with usage),
reservations still open (reserved, never settled: costs.reserve), 429s (provider logs),
fallbacks (ok results not answered by their first candidate), circuit
transitions (the worker's circuit_* log lines, else its /metrics), and the
elapsed time against the least the provider's limit allows.

Every scenario also checks what it must (lost = 0 always; billed = the
de-duplicated cost records, every record a billed call; with reservations,
every billed call settled or still reserved; in the rate-limit
scenarios no error result caused by 429s) with the harness's Checks; the
last line is "N passed, N failed" and the exit status is 1 on any failure.

  --short   the scaled-down subset `make test` runs (at most ~3 minutes on
            2 cores): a rate-limited batch, a 5xx storm, one provider down
            and back, malformed and truncated bodies
  --only A,B  run only the named scenarios (names as in the table)

It must never: leave a process running (every process it starts is stopped
in a finally), wait without a deadline, listen beyond loopback, or run more
than one scenario at a time (2 cores: one worker set, one provider, one
cluster at once)."""

import argparse
import glob
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "e2e"))
from harness import BUILD, TEST_KEYS as KEYS, Checks, Harness  # noqa: E402

from confluent_kafka import Consumer, TopicPartition  # noqa: E402

PARTITIONS = 4
OUTPUT_PARTITIONS = 32
# One policy for every scenario: two models on each provider family, a route
# per scenario shape; budgets far above any cost so no candidate is skipped
# for money (a fallback is then always a fault's doing).
MODELS = {
    "a1": ("anthropic", "claude-opus-4-1"),
    "a2": ("anthropic", "claude-sonnet-4-5"),
    "o1": ("openai", "gpt-4.1-mini"),
    "o2": ("openai", "gpt-4.1-nano"),
    "o3": ("openai", "o4-mini"),
}
ROUTES = {
    "batch": ["o1", "a2"],   # first candidate on the OpenAI-style provider
    "down": ["a1", "o1"],    # first candidate on the provider that goes down
    "m1": ["o1", "a2"],      # the must-show run: three models, each first of its own route
    "m2": ["o2", "a2"],
    "m3": ["o3", "a2"],
}
RATE_LIMIT_CODES = ("rate_limited", "candidates_exhausted")
BODY_FAULTS = ("truncate", "malformed")  # a 200 whose body cannot be read is not billed


def now_ms():
    return int(time.time() * 1000)


def fake_supports(args):
    """None when build/fake_provider starts with these options, else what it
    said: options the fake provider does not know yet (issue 8's --limit,
    the hang fault) make a row fail with the reason instead of a traceback."""
    p = subprocess.Popen([os.path.join(BUILD, "fake_provider"), "--host", "127.0.0.1",
                          "--port", "0"] + list(args),
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = p.stdout.readline().strip()
        if line.startswith("listening="):
            return None
        p.wait(timeout=10)
        return (p.stderr.read().strip().splitlines() or [f"exit {p.returncode}"])[0]
    finally:
        if p.poll() is None:
            p.kill()
        p.wait()
        p.stdout.close()
        p.stderr.close()


def hang_kind():
    """Issue 8's fault kind `hang`, or today's `timeout` (never answers)
    while the fake provider does not know `hang` yet."""
    return "hang" if fake_supports(["--fault", "x:hang@1"]) is None else "timeout"


def start_provider(h, args, port=0, log=None):
    """A fake provider of our own (a second provider, or one restarted on
    its old port); stopped by h.close(). Returns (process, address)."""
    log = log or os.path.join(h.dir, f"provider-{len(h.procs)}.jsonl")
    p = subprocess.Popen([os.path.join(BUILD, "fake_provider"), "--host", "127.0.0.1",
                          "--port", str(port), "--log", log] + list(args),
                         stdout=subprocess.PIPE, text=True)
    h.procs.append(p)
    line = p.stdout.readline().strip()
    if not line.startswith("listening="):
        raise RuntimeError(f"fake_provider did not start: {line!r}")
    return p, line.split("=", 1)[1]


def read_jsonl(path):
    out = []
    if not os.path.exists(path):
        return out
    with open(path) as f:
        for line in f:
            if not line.endswith("\n"):
                continue
            try:
                out.append(json.loads(line))
            except ValueError:
                pass  # a wrapper's line in a worker log
    return out


class Tail:
    """Reads a topic from the beginning, incrementally, remembering when
    each distinct key first arrived."""

    def __init__(self, h, topic):
        # log_level 0: the broker outage scenario would fill the table's
        # output with this reader's own connection errors
        self.c = Consumer({"bootstrap.servers": h.bootstrap, "log_level": 0,
                           "group.id": f"faults-reader-{os.getpid()}-{time.time()}",
                           "auto.offset.reset": "earliest", "enable.auto.commit": False})
        self.c.assign([TopicPartition(topic, p, 0) for p in range(h.topics[topic])])
        self.msgs = []
        self.first = {}  # key -> arrival time (s)

    def poll(self, seconds=0.5):
        for m in self.c.consume(1000, timeout=seconds):
            if m.error():
                continue
            k = m.key().decode() if m.key() is not None else None
            self.msgs.append((k, m.value()))
            self.first.setdefault(k, time.time())

    def wait(self, cond, timeout):
        """Polls until cond(self) or the deadline; cond's last value."""
        deadline = time.time() + timeout
        while not cond(self) and time.time() < deadline:
            self.poll()
        return cond(self)

    def close(self):
        self.c.close()


class Scenario:
    """One row: its processes, what it sent, and its counts at the end."""

    def __init__(self, name, fake_args=(), brokers=1, providers2=None, rpm=None,
                 rate_limited=False, timeout_ms=5000, limits=None, model_limits=None,
                 reserve=None):
        self.name, self.rpm, self.rate_limited = name, rpm, rate_limited
        # costs.reserve as the worker will run it: unset is its default (on)
        self.reserve = reserve is not False
        tag = f"{name}-{os.getpid()}-{int(time.time())}"
        self.topics = {"requests": f"{name}.requests", "results": f"{name}.results",
                       "costs": f"{name}.costs", "dead_letter": f"{name}.dlq"}
        self.group = f"faults-{tag}"  # a fresh group per scenario
        # the outputs get more partitions: the mock keeps about 5 MB of each,
        # and 20 SIGKILLs write some 40,000 cost records and 35,000 results
        self.h = Harness({t: OUTPUT_PARTITIONS if k in ("results", "costs") else PARTITIONS
                          for k, t in self.topics.items()}, fake_args=list(fake_args),
                         brokers=brokers)
        self.provider_logs = [self.h.fake_log]
        base = f"http://{self.h.provider_addr}"
        base2 = base
        if providers2 is not None:  # the OpenAI-style provider is a process of its own
            p, addr = start_provider(self.h, providers2)
            self.provider_logs.append(p.args[p.args.index("--log") + 1])
            base2 = f"http://{addr}"
        providers = {
            "anthropic": {"type": "anthropic", "base_url": base, "timeout_ms": timeout_ms,
                          "api_key_env": "SWITCHYARD_TEST_ANTHROPIC_KEY"},
            "openai": {"type": "openai", "base_url": base2 + "/v1", "timeout_ms": timeout_ms,
                       "api_key_env": "SWITCHYARD_TEST_OPENAI_KEY"},
        }
        self.limits = {"commit_interval_ms": 500, "backoff_initial_ms": 20,
                       "backoff_max_ms": 2000, "shutdown_grace_ms": 10000}
        self.limits.update(limits or {})
        self.config = self.h.write_config(self.group, self.topics, limits=self.limits,
                                          providers=providers)
        with open(self.config) as f:
            cfg = json.load(f)
        cfg["metrics"] = {"listen": "127.0.0.1:0"}
        if reserve is not None:  # costs.reserve; unset: the worker's default (on)
            cfg["costs"] = {"reserve": reserve}
        with open(self.config, "w") as f:
            json.dump(cfg, f, indent=1)
        self.policy = os.path.join(self.h.dir, "policy.json")
        models = {}
        for n, (prov, mid) in MODELS.items():
            models[n] = {"provider": prov, "model": mid, "price": {"input": 1, "output": 2},
                         "max_output_tokens": 4096}
            if model_limits:
                models[n]["limits"] = dict(model_limits)
        with open(self.policy, "w") as f:
            json.dump({"models": models, "routes": ROUTES,
                       "budget": {"default_usd": 10, "over_budget": "downgrade",
                                  "min_output_tokens": 16, "input_bytes_per_token": 3}}, f,
                      indent=1)
        self.sent = {}  # id -> route
        self.workers = []
        self.kills_ms = []
        self.notes = []
        self.results = Tail(self.h, self.topics["results"])
        self.t0 = None

    # ---- requests and workers ----

    def produce(self, n, route="batch", start=None, extra=lambda i: ""):
        start = len(self.sent) if start is None else start
        recs = []
        for i in range(start, start + n):
            rid = f"{self.name}-{i:06d}"
            r = route(i) if callable(route) else route
            self.sent[rid] = r
            recs.append((rid, json.dumps({"id": rid, "task": r, "messages": [
                {"role": "user", "content": f"request {rid}: hello {extra(i)}"}]}).encode()))
        self.h.produce(self.topics["requests"], recs)

    def start_worker(self):
        if self.t0 is None:
            self.t0 = time.time()
        w = self.h.start_worker(self.config, self.policy, env=KEYS)
        self.workers.append((w, self.h.worker_log))
        return w

    def alive(self):
        return [w for w, _ in self.workers if w.poll() is None]

    def kill(self, w):
        w.send_signal(signal.SIGKILL)
        w.wait(timeout=30)
        self.kills_ms.append(now_ms())

    def answered(self):
        return len(set(self.results.first) & set(self.sent))

    def wait_results(self, count, timeout):
        """Waits for `count` distinct answered requests; stops early, with a
        note, when every worker has exited."""
        deadline = time.time() + timeout
        while self.answered() < count and time.time() < deadline:
            self.results.poll()
            if self.workers and not self.alive():
                self.results.poll(2)
                if self.answered() < count:
                    with open(self.workers[-1][1], errors="replace") as f:
                        tail = [x.strip()[:200] for x in f.readlines()[-2:]]
                    self.notes.append(f"every worker exited (rc {self.workers[-1][0].returncode}): {tail}")
                    return False
        return self.answered() >= count

    def metrics_transitions(self):
        """switchyard_circuit_transitions_total summed over the live workers'
        /metrics; 0 when the metric is not there (today's main)."""
        total = 0
        for w, log in self.workers:
            if w.poll() is not None:
                continue
            addr = None
            for e in read_jsonl(log):
                if e.get("event") == "metrics_listening":
                    addr = e["msg"].split("//", 1)[1].split("/", 1)[0]
            if not addr:
                continue
            try:
                with urllib.request.urlopen(f"http://{addr}/metrics", timeout=5) as r:
                    text = r.read().decode()
            except OSError:
                continue
            for line in text.splitlines():
                if line.startswith("switchyard_circuit_transitions_total"):
                    try:
                        total += int(float(line.rsplit(" ", 1)[1]))
                    except ValueError:
                        pass
        return total

    def stop(self, t):
        """SIGTERM to every live worker; each must exit 0."""
        self.transitions_metrics = self.metrics_transitions()
        for w in self.alive():
            w.send_signal(signal.SIGTERM)
            try:
                rc = w.wait(timeout=60)
            except subprocess.TimeoutExpired:
                rc = "timeout"
            t.ok(rc == 0, f"{self.name}: a worker exits 0 on SIGTERM (got {rc})")

    # ---- counting ----

    def worker_events(self):
        out = []
        for path in sorted(glob.glob(os.path.join(self.h.dir, "worker-*.log"))):
            out += read_jsonl(path)
        return out

    def provider_entries(self):
        out = []
        for path in self.provider_logs:
            out += read_jsonl(path)
        return out

    def count(self, t):
        """The row's counts and the checks every scenario makes."""
        self.results.poll(1)
        elapsed = (max(self.results.first.values()) - self.t0) if self.results.first and self.t0 else 0
        by_id = {}
        for k, v in self.results.msgs:
            by_id.setdefault(k, []).append(v)
        res = {k: json.loads(v[0]) for k, v in by_id.items() if k in self.sent}
        dups = sum(len(v) - 1 for v in by_id.values())
        lost = len(set(self.sent) - set(res))
        dlq = self.h.read(self.topics["dead_letter"], lambda ms: False, timeout=2)
        log = self.provider_entries()
        billed = {}
        for e in log:
            cid = {k.lower(): v for k, v in (e.get("headers") or {}).items()}.get("x-client-request-id")
            if e.get("status") == 200 and (e.get("fault") or "") not in BODY_FAULTS and cid:
                billed[cid] = e
        body_faults = sum(1 for e in log if e.get("fault") in BODY_FAULTS)
        # with costs.reserve (the default) a call has a reserved record before
        # it is sent and a settled one after it, billable or not: the bill is
        # the settled records with usage; a reserved one without a settled
        # one is a call that may have been billed while its worker died
        def billing(ms):
            return {c["call_id"] for c in (json.loads(m[1]) for m in ms)
                    if c.get("kind") != "reserved" and (c.get("cost_nusd") or any(c["usage"].values()))}
        costs = self.h.read(self.topics["costs"], lambda ms: len(billing(ms)) >= len(billed),
                            timeout=15)
        cost_ids = billing(costs)
        records = [json.loads(m[1]) for m in costs]
        reserved = {c["call_id"]: c for c in records if c.get("kind") == "reserved"}
        settled = {c["call_id"] for c in records if c.get("kind") != "reserved"}
        open_ids = set(reserved) - settled
        n429 = sum(1 for e in log if e.get("status") == 429)
        errors = [r for r in res.values() if r.get("status") != "ok"]
        fallbacks = [r for r in res.values() if r.get("status") == "ok" and r.get("route")
                     and r.get("model") != r["route"][0]["model"]]
        evs = self.worker_events()
        trans = sum(1 for e in evs if e.get("event") in
                    ("circuit_open", "circuit_half_open", "circuit_closed"))
        trans = max(trans, getattr(self, "transitions_metrics", 0))
        per_model = {}
        for r in self.sent.values():
            per_model[ROUTES[r][0]] = per_model.get(ROUTES[r][0], 0) + 1
        # the provider's bucket starts full (rpm calls at once), then refills
        # at rpm a minute: the least time the batch can take
        min_s = (max(0, max(per_model.values()) - self.rpm) / self.rpm * 60
                 if self.rpm else None)
        row = {"scenario": self.name, "sent": len(self.sent), "results": len(res),
               "errors": len(errors), "lost": lost, "duplicates": dups, "dead_letters": len(dlq),
               "billed": len(billed), "costs": len(cost_ids), "429s": n429,
               "fallbacks": len(fallbacks), "circuit": trans, "elapsed_s": round(elapsed, 1),
               "min_s": round(min_s, 1) if min_s else None}
        codes = {}
        for r in errors:
            c = (r.get("error") or {}).get("code", "?")
            codes[c] = codes.get(c, 0) + 1
        if codes:
            self.notes.append(f"error codes {codes}")
        timeouts = sum(1 for r in res.values() for a in r.get("attempts", [])
                       if a.get("status") == "timeout")
        if timeouts:
            self.notes.append(f"{timeouts} calls timed out")
        if body_faults:
            self.notes.append(f"{body_faults} replies with a truncated or malformed body (not billed)")

        t.ok(lost == 0, f"{self.name}: every request has a result ({lost} lost of {len(self.sent)})")
        t.ok(len(dlq) == 0, f"{self.name}: no dead letters for valid requests ({len(dlq)})")
        t.ok(cost_ids <= set(billed), f"{self.name}: every cost record is a billed call "
             f"({len(cost_ids - set(billed))} are not)")
        missing = set(billed) - cost_ids
        if self.reserve:
            # a run with reservations on that made none proves nothing about
            # them: the invariant below would hold vacuously
            t.ok(len(reserved) > 0, f"{self.name}: reservations are on and the worker made "
                 f"some ({len(reserved)} reserved records)")
            # no invisible spend: a billed call is settled or still reserved
            t.ok(missing <= open_ids, f"{self.name}: every billed call is settled or still "
                 f"reserved ({len(missing - open_ids)} of {len(billed)} are neither)")
            self.notes.append(
                f"reservations: {len(reserved)} reserved, {len(reserved) - len(open_ids)} settled, "
                f"{len(open_ids)} open (at most {sum(reserved[c]['reserved_nusd'] for c in open_ids)}"
                f" nUSD); {len(missing)} billed calls unsettled, all among the open")
            row["reserved"], row["open"] = len(reserved), len(open_ids)
        if self.kills_ms:
            # a call answered just before a SIGKILL has no record: nothing
            # was left to write it (the contract of issue 7)
            at_kill = [c for c in missing if any(k - 10000 <= billed[c]["ts_ms"] <= k
                                                 for k in self.kills_ms)]
            t.ok(len(at_kill) == len(missing),
                 f"{self.name}: billed calls without a cost record were in flight at a kill "
                 f"({len(missing) - len(at_kill)} of {len(missing)} were not)")
            if missing:
                self.notes.append(f"{len(missing)} billed calls in flight at the "
                                  f"{len(self.kills_ms)} kills have no cost record")
        else:
            t.ok(not missing, f"{self.name}: billed = de-duplicated cost records "
                 f"({len(billed)} billed, {len(cost_ids)} records)")
        if self.rate_limited:
            by429 = [r["id"] for r in errors if (r.get("error") or {}).get("code") in RATE_LIMIT_CODES
                     and any(a.get("http_status") == 429 for a in r.get("attempts", []))]
            t.ok(not by429, f"{self.name}: no error result caused by 429s ({len(by429)}: {by429[:3]})")
            t.ok(not fallbacks, f"{self.name}: a 429 does not fall back: every result served by "
                 f"its first candidate ({len(fallbacks)} fallbacks)")
        self.res, self.log, self.evs = res, log, evs
        return row

    def close(self):
        try:
            self.results.close()
        finally:
            self.h.close()


def run_scenario(name, body, t, rows, **kw):
    """Builds a Scenario, runs body(s, t), counts the row; a scenario that
    cannot start (e.g. an option the fake provider does not know yet) is a
    failed row with the reason, never a traceback that hides the others."""
    print(f"--- {name}", flush=True)
    started = time.time()
    need = fake_supports(kw.get("fake_args", ()))
    if need is None and kw.get("providers2") is not None:
        need = fake_supports(kw["providers2"])
    if need is not None:
        t.ok(False, f"{name}: the fake provider rejects this scenario's options: {need}")
        rows.append({"scenario": name, "skipped": f"fake_provider: {need}",
                     "wall_s": round(time.time() - started, 1)})
        return
    s = None
    try:
        s = Scenario(name, **kw)
        body(s, t)
        s.stop(t)
        row = s.count(t)
        row["notes"] = s.notes
    except Exception as e:  # counted, reported, and the next scenario runs
        t.ok(False, f"{name}: {type(e).__name__}: {e}")
        row = {"scenario": name, "skipped": f"{type(e).__name__}: {e}"}
    finally:
        if s is not None:
            s.close()
    row["wall_s"] = round(time.time() - started, 1)
    rows.append(row)
    print(json.dumps(row), flush=True)


# ---- the scenarios ----

def batch(n, timeout, note=None):
    """Produce n requests, one worker, wait for every result."""
    def body(s, t):
        if note:
            s.notes.append(note)
        s.produce(n)
        s.start_worker()
        s.wait_results(n, timeout)
    return body


# half the provider's calls fail, interleaved as a flaky provider's are:
# the fake provider's rule faults every second call it sees, whichever
# request it belongs to (a retry may meet a failure again)
STORM_5XX_ARGS = ["--fault", "*:status:503,every:2"]


def storm_5xx(n):
    def body(s, t):
        s.produce(n)
        s.start_worker()
        s.wait_results(n, 180)
    return body


def storm_5xx_checks(s, t, row):
    """Half the calls failed, and every request still got its one result."""
    failed = sum(1 for e in s.log if str(e.get("fault") or "").startswith("status:503"))
    ok = sum(1 for r in s.res.values() if r.get("status") == "ok")
    codes = {}
    for r in s.res.values():
        if r.get("status") != "ok":
            code = r.get("error", {}).get("code")
            codes[code] = codes.get(code, 0) + 1
    s.notes.append(f"5xx: {failed} of {len(s.log)} provider calls answered 503; "
                   f"{ok} results ok, errors by code {codes}")
    # each provider process counts its own calls: floor(n/2) failures of n each
    t.ok(len(s.log) > 0 and len(s.log) - len(s.provider_logs) <= 2 * failed <= len(s.log),
         f"{s.name}: half the provider's calls failed ({failed} of {len(s.log)})")
    t.ok(len(s.res) == len(s.sent), f"{s.name}: every request has a result ({len(s.res)} of {len(s.sent)})")


def provider_down(warm, down, after, rate):
    """Requests at `rate` a second throughout; the first candidate's
    provider is stopped for `down` s and restarted on its port."""
    def body(s, t):
        s.start_worker()
        stop = threading.Event()
        errors = []

        def feed():
            while not stop.is_set():
                try:
                    s.produce(rate // 2, route="down")
                except Exception as e:  # noqa: BLE001 - reported below
                    errors.append(e)
                    return
                stop.wait(0.5)
        th = threading.Thread(target=feed)
        th.start()
        try:
            time.sleep(warm)  # steady traffic before the failure (not an assertion)
            h = s.h
            port = int(h.provider_addr.rsplit(":", 1)[1])
            h.fake.send_signal(signal.SIGTERM)  # SIGTERM: its log is flushed
            h.fake.wait(timeout=10)
            down_ms = now_ms()
            time.sleep(down)
            h.fake, _ = start_provider(h, [], port=port, log=h.fake_log)
            up_ms = now_ms()
            time.sleep(after)
        finally:
            stop.set()
            th.join(timeout=60)
        t.ok(not errors, f"{s.name}: every produce succeeded ({errors[:1]})")
        s.wait_results(len(s.sent), 120)
        s.res_window = (down_ms, up_ms)

    return body


def provider_down_checks(s, t, row, down):
    """The must-show of one provider down, from the worker's circuit lines,
    the results and the restarted provider's log."""
    down_ms, up_ms = s.res_window
    opened = [e["ts_ms"] for e in s.evs if e.get("event") == "circuit_open" and e["ts_ms"] >= down_ms]
    open_s = (opened[0] - down_ms) / 1000 if opened else None
    back = [e["ts_ms"] for e in s.log if e["ts_ms"] >= up_ms and e.get("status") == 200
            and e.get("body", {}).get("model") == MODELS["a1"][1]]
    back_s = (back[0] - up_ms) / 1000 if back else None
    a1_failed = sum(1 for r in s.res.values() for a in r.get("attempts", [])
                    if a["model"] == "a1" and a["status"] != "ok")
    timeouts = sum(1 for r in s.res.values() for a in r.get("attempts", [])
                   if a["model"] == "a1" and a["status"] == "timeout")
    skipped = sum(1 for r in s.res.values() for x in r.get("route", [])
                  if x["model"] == "a1" and x["decision"] == "skipped")
    errs = [r["id"] for r in s.res.values() if r.get("status") != "ok"]
    row["open_s"], row["back_s"] = open_s, back_s
    s.notes.append(f"down {down} s: circuit open after {open_s} s, traffic back {back_s} s after "
                   f"the restart; {a1_failed} failed calls to the down model, {skipped} requests "
                   f"skipped it, {timeouts} timed out")
    t.ok(open_s is not None and open_s <= 5, f"{s.name}: the circuit opens within 5 s ({open_s})")
    t.ok(not errs, f"{s.name}: requests go to their next candidate: every result ok ({len(errs)} errors)")
    t.ok(timeouts == 0, f"{s.name}: no request waits for a timeout ({timeouts})")
    # once open, the down model is skipped: the calls that fail are those in
    # flight when it went down, those that opened it, and one probe per
    # half-open period. A call's start is in its call_id (UUIDv7: ms first).
    def started(a):
        return int(a["call_id"].replace("-", "")[:12], 16)
    halves = sum(1 for e in s.evs if e.get("event") == "circuit_half_open"
                 and down_ms <= e["ts_ms"] <= up_ms)
    while_open = [a for r in s.res.values() for a in r.get("attempts", [])
                  if a["model"] == "a1" and a["status"] != "ok" and opened
                  and opened[0] + 50 <= started(a) <= up_ms]
    s.notes.append(f"{len(while_open)} calls to the down model started while its circuit was "
                   f"open or half open, {halves} half-open periods")
    t.ok(len(while_open) <= halves, f"{s.name}: while open the down provider is called only by "
         f"the half-open probes ({len(while_open)} calls, {halves} probes allowed)")
    t.ok(back_s is not None and back_s <= 10, f"{s.name}: traffic returns within 10 s ({back_s})")


def brokers_down(n, brokers, seconds):
    def body(s, t):
        s.produce(n)
        s.start_worker()
        s.wait_results(n // 4, 120)
        for b in range(1, brokers + 1):
            t.ok(s.h.mock_command(f"broker_down {b}") == "ok", f"{s.name}: broker {b} down")
        time.sleep(seconds)  # the outage itself
        for b in range(1, brokers + 1):
            t.ok(s.h.mock_command(f"broker_up {b}") == "ok", f"{s.name}: broker {b} up")
        s.wait_results(n, 240)
    return body


def sigkills(n, kills):
    def body(s, t):
        s.produce(n)
        s.start_worker()
        for k in range(kills):
            target = n * (k + 1) // (kills + 2)
            if not s.wait_results(target, 120):
                break
            s.kill(s.workers[-1][0])
            s.start_worker()
        s.notes.append(f"{len(s.kills_ms)} SIGKILLs")
        t.ok(len(s.kills_ms) == kills, f"{s.name}: {kills} kills made ({len(s.kills_ms)})")
        s.wait_results(n, 300)
    return body


def two_workers(n):
    def body(s, t):
        s.produce(n)
        s.start_worker()
        s.start_worker()
        s.wait_results(n // 3, 120)
        s.kill(s.workers[0][0])
        s.wait_results(2 * n // 3, 120)
        s.start_worker()
        s.notes.append("workers: 2 started, 1 killed at 1/3, 1 added at 2/3")
        s.wait_results(n, 240)
    return body


def must_show(n, rpm, limit_429):
    def body(s, t):
        s.produce(n, route=lambda i: ("m1", "m2", "m3")[i % 3])
        s.start_worker()
        s.wait_results(n, n / (3 * rpm) * 60 + 240)
    def check(s, t, row):
        calls = sorted(e["ts_ms"] for e in s.log)
        if not calls:
            t.ok(False, f"{s.name}: the provider was called")
            return
        first_min = calls[0] + 60000
        late = [e for e in s.log if e["ts_ms"] >= first_min]
        ok_late = [e for e in late if e.get("status") == 200]
        last = max((e["ts_ms"] for e in ok_late), default=first_min)
        span = max(last - first_min, 1) / 1000
        rate = len(ok_late) / span * 60 if ok_late else 0
        pct = 100 * rate / (3 * rpm)
        share = 100 * sum(1 for e in late if e.get("status") == 429) / max(len(late), 1)
        not_ok = sum(1 for r in s.res.values() if r.get("status") != "ok")
        row["accepted_pct"], row["late_429_pct"] = round(pct, 1), round(share, 2)
        s.notes.append(f"after the first minute: {len(ok_late)} accepted in {span:.0f} s = "
                       f"{pct:.1f}% of the allowed {3 * rpm}/min, {share:.2f}% of calls 429")
        if ok_late:  # a batch done within its first minute has no rate after it
            t.ok(pct >= 90, f"{s.name}: accepted rate after the first minute >= 90% ({pct:.1f}%)")
        t.ok(share <= limit_429, f"{s.name}: at most {limit_429}% 429s after the first minute "
             f"({share:.2f}%)")
        t.ok(not_ok == 0, f"{s.name}: every result ok ({not_ok} not)")
    return body, check


def scenarios(short):
    """(name, body, Scenario options, extra check or None); the short form
    is scaled down to fit about 3 minutes on 2 cores."""
    hang = hang_kind()
    out = []
    if short:
        out.append(("ratelimit", batch(240, 140), dict(fake_args=["--limit", "*:rpm=120"],
                                                       rpm=120, rate_limited=True), None))
        out.append(("5xx", storm_5xx(300), dict(fake_args=STORM_5XX_ARGS), storm_5xx_checks))
        out.append(("down", provider_down(3, 10, 12, 20), dict(providers2=[]), "down:10"))
        out.append(("bodies", batch(300, 120), dict(fake_args=[
            "--fault", "gpt-4.1-mini:truncate@60", "--fault", "gpt-4.1-mini:malformed@60",
            "--fault", "claude-sonnet-4-5:truncate@20"]), None))
        return out
    rpm = 300
    out.append(("ratelimit", batch(5 * rpm, 5 * 60 + 240),
                dict(fake_args=["--limit", f"*:rpm={rpm}"], rpm=rpm, rate_limited=True), None))
    out.append(("ratelimit-conf", batch(5 * rpm, 5 * 60 + 240),
                dict(fake_args=["--limit", f"*:rpm={rpm}"], rpm=rpm, rate_limited=True,
                     model_limits={"requests_per_minute": rpm}), None))
    out.append(("429-storm", batch(600, 300), dict(fake_args=[
        "--fault", "gpt-4.1-mini:status:429,retry_after:2@200"], rate_limited=True), None))
    out.append(("5xx", storm_5xx(1000), dict(fake_args=STORM_5XX_ARGS), storm_5xx_checks))
    out.append(("down", provider_down(5, 30, 15, 20), dict(providers2=[]), "down:30"))
    out.append(("hang", batch(300, 240, f"fault kind {hang}, provider timeout 1 s"), dict(fake_args=[
        "--fault", f"gpt-4.1-mini:{hang}@100"], timeout_ms=1000), None))
    out.append(("bodies", batch(1000, 180), dict(fake_args=[
        "--fault", "gpt-4.1-mini:truncate@200", "--fault", "gpt-4.1-mini:malformed@200",
        "--fault", "claude-sonnet-4-5:truncate@50"]), None))
    out.append(("brokers", brokers_down(3000, 3, 10), dict(brokers=3), None))
    out.append(("sigkill", sigkills(20000, 20), {}, None))
    # issue 11: reservations on, 2,000 calls in flight at each of 20 kills
    out.append(("reserve-kills", sigkills(8000, 20),
                dict(reserve=True, fake_args=["--latency-ms", "1000"],
                     limits={"max_in_flight": 2000, "max_in_flight_per_partition": 500}), None))
    out.append(("two-workers", two_workers(4000), {}, None))
    b, c = must_show(6000, 1200, 2)
    out.append(("must-show", b, dict(fake_args=["--limit", "*:rpm=1200"], rpm=1200,
                                     rate_limited=True), c))
    b, c = must_show(6000, 1200, 0.5)
    out.append(("must-show-conf", b, dict(fake_args=["--limit", "*:rpm=1200"], rpm=1200,
                                          rate_limited=True,
                                          model_limits={"requests_per_minute": 1200}), c))
    return out


COLUMNS = [("scenario", "scenario", 15), ("sent", "sent", 6), ("results", "results", 7),
           ("errors", "errors", 6), ("lost", "lost", 4), ("duplicates", "dup", 5),
           ("dead_letters", "dlq", 4), ("billed", "billed", 6), ("costs", "costs", 6),
           ("429s", "429s", 6), ("fallbacks", "fallbk", 6), ("circuit", "circuit", 7),
           ("open", "open", 5), ("elapsed_s", "elapsed", 7), ("min_s", "min s", 6), ("wall_s", "wall", 6)]


def table(rows):
    lines = ["  ".join(f"{h:>{w}}" if i else f"{h:<{w}}" for i, (_, h, w) in enumerate(COLUMNS))]
    for r in rows:
        if "skipped" in r:
            lines.append(f"{r['scenario']:<15}  not run: {r['skipped'][:100]}")
            continue
        cells = []
        for i, (k, _, w) in enumerate(COLUMNS):
            v = r.get(k)
            v = "-" if v is None else v
            cells.append(f"{v:>{w}}" if i else f"{v:<{w}}")
        lines.append("  ".join(cells))
    for r in rows:
        for n in r.get("notes", []):
            lines.append(f"  {r['scenario']}: {n}")
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--short", action="store_true", help="the scaled-down subset for make test")
    ap.add_argument("--only", default="", help="comma-separated scenario names")
    args = ap.parse_args()
    t = Checks()
    rows = []
    only = {x for x in args.only.split(",") if x}
    started = time.time()
    for name, body, kw, extra in scenarios(args.short):
        if only and name not in only:
            continue
        if extra and not callable(extra):  # provider down: its own must-show checks
            down = int(extra.split(":")[1])
            extra = (lambda d: lambda s, tt, row: provider_down_checks(s, tt, row, d))(down)
        run_scenario(name, wrap(body, extra), t, rows, **kw)
    total = round(time.time() - started, 1)
    print()
    print(table(rows))
    print(f"total {total} s ({'short' if args.short else 'full'} form)")
    os.makedirs(BUILD, exist_ok=True)
    with open(os.path.join(BUILD, "faults.json"), "w") as f:
        json.dump({"form": "short" if args.short else "full", "total_s": total, "rows": rows}, f,
                  indent=1)
    return t.summary()


def wrap(body, extra):
    """A scenario body whose extra checks run after the counts (they read
    the results and logs count() gathers)."""
    if extra is None:
        return body

    def run(s, t):
        body(s, t)
        orig = s.count

        def count(tt):
            row = orig(tt)
            extra(s, tt, row)
            return row
        s.count = count
    return run


if __name__ == "__main__":
    sys.exit(main())
