"""The body of `make bench` (scripts/bench.sh starts it): starts the mock
Kafka cluster and two fake providers (instant, and 2 s), calibrates (one
small worker run whose outputs give the floors their bytes), then runs the
scenarios interleaved (run 1 of a, b, c, d, e, then run 2 ...), and writes
build/bench/results.json and build/bench/table.md, printing the table.

It must never talk to anything but 127.0.0.1 (every process it starts is
given loopback addresses; the worker configurations point both providers at
the fake), never leave a process it started running (stop_all() on every
exit, and bench.sh's trap on top), and never print a figure it did not
measure: a wrong count is an error exit with a message, not a smaller figure.

Knobs (environment): BENCH_RUNS (default 3), BENCH_QUICK=1 (one run of
small sizes: a smoke test of about a minute), BUILD (default build)."""

import json
import os
import platform
import re
import signal
import statistics
import subprocess
import sys
import time
import urllib.request

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
BUILD = os.path.join(ROOT, os.environ.get("BUILD", "build"))
OUT = os.path.join(BUILD, "bench")
QUICK = os.environ.get("BENCH_QUICK", "") not in ("", "0")
RUNS = int(os.environ.get("BENCH_RUNS", "1" if QUICK else "3"))
TICK = os.sysconf("SC_CLK_TCK")

# sizes: full, quick
SIZES = {
    "floor_n": (20000, 3000),        # messages per floor program
    "b_n": (50000, 15000),           # instant provider
    "c_n": (90000, 14000),           # 2 s provider, 10,000 in flight
    "d_warmup_s": (3, 1),
    "d_measure_s": (10, 3),
    "e_n": (30000, 12000),           # per worker count
}
SZ = {k: v[1] if QUICK else v[0] for k, v in SIZES.items()}

# topics: requests with few partitions (the mock keeps about 5 MB a
# partition, pruning the oldest), outputs with more
TOPICS = {
    "bench.cal.requests": 1,
    "bench.a.requests": 8, "bench.a.results": 32, "bench.a.costs": 32,
    "bench.b.requests": 8,
    # 16: 90,000 requests of 521 bytes are over 8 partitions' 5 MB
    "bench.c.requests": 16,
    "bench.d.requests": 8,
    "bench.e.requests": 16,
    "llm.results": 32, "llm.costs": 32, "llm.requests.dlq": 4,
}
CAL_PREFIX = "bench-k00"  # the floors' ids have its length: bench-aNN
C_IN_FLIGHT = 10000
C_LATENCY_MS = 2000
HTTP_CONNS = 64

procs = []


class BenchError(Exception):
    pass


def log(msg):
    print(f"bench: {msg}", file=sys.stderr, flush=True)


def stop_all():
    for p in reversed(procs):
        if p.poll() is None:
            try:
                p.terminate()
            except OSError:
                pass
    deadline = time.time() + 10
    for p in reversed(procs):
        try:
            p.wait(timeout=max(0.1, deadline - time.time()))
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
    procs.clear()


def on_signal(signum, frame):
    raise SystemExit(128 + signum)


def shipped_kafka_props():
    """The worker's own producer and consumer properties that shape batching,
    waiting and compression, as the worker gets them (worker.yaml's, else
    switchyard's defaults in worker/kafka.c): the Kafka floor uses the same."""
    import yaml
    path = os.environ.get("BENCH_WORKER_YAML", os.path.join(ROOT, "config", "worker.yaml"))
    kafka = yaml.safe_load(open(path)).get("kafka", {})
    prod = {"linger.ms": "1"}
    cons = {"fetch.wait.max.ms": "10"}
    for k, v in kafka.items():
        if k in ("compression.type", "linger.ms", "queue.buffering.max.ms", "batch.size",
                 "batch.num.messages"):
            prod[k] = str(v)
        elif k in ("fetch.wait.max.ms", "fetch.min.bytes", "fetch.max.bytes",
                   "max.partition.fetch.bytes"):
            cons[k] = str(v)
    return {"BENCH_KAFKA_PRODUCER": ",".join(f"{k}={v}" for k, v in prod.items()),
            "BENCH_KAFKA_CONSUMER": ",".join(f"{k}={v}" for k, v in cons.items())}


def tool(*args, timeout=600):
    """Runs one of the bench_* programs; its last stdout line as JSON (or
    text); fails loudly on a non-zero exit."""
    cmd = [os.path.join(BUILD, args[0])] + [str(a) for a in args[1:]]
    env = dict(os.environ, **shipped_kafka_props()) if args[0] == "bench_kafka" else None
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         env=env)
    procs.append(p)
    try:
        out, err = p.communicate(timeout=timeout)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        procs.remove(p)
    if p.returncode != 0:
        raise BenchError(f"{' '.join(cmd)} exited {p.returncode}: {err.strip()} {out.strip()}")
    line = out.strip().splitlines()[-1] if out.strip() else ""
    try:
        return json.loads(line)
    except ValueError:
        return line


class Cluster:
    def __init__(self):
        args = [os.path.join(BUILD, "mock_kafka")]
        for t, n in TOPICS.items():
            args += ["--topic", f"{t}:{n}"]
        self.mock = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     text=True)
        procs.append(self.mock)
        line = self.mock.stdout.readline().strip()
        if not line.startswith("bootstrap="):
            raise BenchError(f"mock_kafka did not start: {line!r}")
        self.bootstrap = line.split("=", 1)[1]
        if not all(h.startswith("127.0.0.1:") for h in self.bootstrap.split(",")):
            raise BenchError(f"mock_kafka is not on loopback: {self.bootstrap}")

    def marks(self, topic):
        return tool("bench_load", "marks", self.bootstrap, topic)


def start_provider(name, extra):
    logf = open(os.path.join(OUT, "logs", f"{name}.err"), "w")
    p = subprocess.Popen([os.path.join(BUILD, "fake_provider"), "--host", "127.0.0.1",
                          "--port", "0"] + extra, stdout=subprocess.PIPE, stderr=logf,
                         text=True)
    procs.append(p)
    line = p.stdout.readline().strip()
    if not line.startswith("listening="):
        raise BenchError(f"fake_provider did not start: {line!r}")
    addr = line.split("=", 1)[1]
    if not addr.startswith("127.0.0.1:"):
        raise BenchError(f"fake_provider is not on loopback: {addr}")
    return addr


def sub_once(text, pattern, repl, what):
    new, n = re.subn(pattern, repl, text, count=1, flags=re.M)
    if n != 1:
        raise BenchError(f"config/worker.yaml: cannot substitute {what} (has it changed?)")
    return new


def worker_config(name, cluster, provider, requests_topic, group, max_connections=None):
    """build/bench/NAME.yaml: the SHIPPED config/worker.yaml, with only what
    must change substituted, each marked with a `# bench:` comment."""
    # BENCH_WORKER_YAML: another base than the shipped file, to try a setting
    text = open(os.environ.get("BENCH_WORKER_YAML",
                               os.path.join(ROOT, "config", "worker.yaml"))).read()
    text = sub_once(text, r"^(\s+bootstrap\.servers:).*$",
                    rf"\1 {cluster.bootstrap}  # bench: the mock cluster", "bootstrap.servers")
    text = sub_once(text, r"^(\s+group\.id:).*$",
                    rf"\1 {group}  # bench: a fresh group per run (its start offsets committed)",
                    "group.id")
    text = sub_once(text, r"^(\s+requests:).*$",
                    rf"\1 {requests_topic}  # bench: this scenario's requests topic",
                    "topics.requests")
    text = sub_once(text, r"^(\s+base_url:) https://api\.anthropic\.com.*$",
                    rf"\1 http://{provider}  # bench: the fake provider (never called: "
                    "the route is openai's), so nothing leaves 127.0.0.1",
                    "anthropic base_url")
    text = sub_once(text, r"^(\s+base_url:) https://api\.openai\.com/v1.*$",
                    rf"\1 http://{provider}/v1  # bench: the fake provider", "openai base_url")
    text = sub_once(text, r"^(\s+listen:).*$",
                    r"\1 127.0.0.1:0  # bench: any free port (read from the log)",
                    "metrics listen")
    if max_connections:
        # the openai provider's max_connections (the second one in the file)
        parts = text.split("  openai:\n", 1)
        if len(parts) != 2:
            raise BenchError("config/worker.yaml: no openai provider")
        parts[1] = sub_once(parts[1], r"^(\s+max_connections:).*$",
                            rf"\1 {max_connections}  # bench: {max_connections} calls in flight",
                            "openai max_connections")
        text = "  openai:\n".join(parts)
    path = os.path.join(OUT, f"{name}.yaml")
    with open(path, "w") as f:
        f.write(text)
    return path


class Worker:
    def __init__(self, name, config):
        self.name = name
        self.log_path = os.path.join(OUT, "logs", f"{name}.log")
        env = dict(os.environ, OPENAI_API_KEY="bench-dummy", ANTHROPIC_API_KEY="bench-dummy")
        self.p = subprocess.Popen(
            [os.path.join(BUILD, "switchyard"), "--config", config,
             "--policy", os.path.join(ROOT, "config", "policy.yaml")],
            env=env, stdout=subprocess.DEVNULL, stderr=open(self.log_path, "w"))
        procs.append(self.p)
        self.addr = None
        deadline = time.time() + 30
        while time.time() < deadline and self.addr is None:
            if self.p.poll() is not None:
                raise BenchError(f"worker {name} exited {self.p.returncode}: see {self.log_path}")
            with open(self.log_path) as f:
                for line in f:
                    if '"event":"metrics_listening"' in line:
                        msg = json.loads(line)["msg"]
                        self.addr = msg.split("//", 1)[1].split("/", 1)[0]
            time.sleep(0.02)
        if self.addr is None:
            raise BenchError(f"worker {name}: no metrics_listening in 30 s: see {self.log_path}")
        self.rss_start_kb = self.status("VmRSS")
        self.cpu_start = self.cpu_s()

    def cpu_s(self):
        """The process's own user + system CPU seconds (/proc/PID/stat)."""
        with open(f"/proc/{self.p.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / TICK

    def status(self, key):
        with open(f"/proc/{self.p.pid}/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
        raise BenchError(f"no {key} in /proc/{self.p.pid}/status")

    def metric(self, name, label=None):
        """Sum of every series of metric NAME (with LABEL, e.g. status="ok",
        among its labels if given)."""
        if self.p.poll() is not None:
            raise BenchError(f"worker {self.name} exited {self.p.returncode}: see {self.log_path}")
        with urllib.request.urlopen(f"http://{self.addr}/metrics", timeout=10) as r:
            text = r.read().decode()
        total = 0.0
        for line in text.splitlines():
            if label and not (line.startswith(name + "{") and label in line.split("}")[0]):
                continue
            if line.startswith(name + " ") or line.startswith(name + "{"):
                total += float(line.rsplit(" ", 1)[1])
        return total

    def stop(self):
        self.p.terminate()
        try:
            rc = self.p.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait()
            raise BenchError(f"worker {self.name} did not stop in 60 s")
        procs.remove(self.p)
        if rc != 0:
            raise BenchError(f"worker {self.name} exited {rc} on SIGTERM: see {self.log_path}")


def wait_results(workers, n, stall_s=60, step=0.25):
    """Scrapes the workers' ok results every step s until their sum reaches
    n: the samples [(seconds since the first, sum)]. Fails if nothing
    progresses for stall_s. (The results are counted here, not read back
    from Kafka: the mock cluster serves one record batch per partition per
    fetch, so reading 90,000 small batches back takes minutes.)"""
    samples, last_change = [], time.time()
    t0 = time.time()
    due = t0
    while True:
        done = sum(w.metric("switchyard_results_total", 'status="ok"') for w in workers)
        now = time.time()
        if samples and done != samples[-1][1]:
            last_change = now
        samples.append((now - t0, done))
        if done >= n:
            return samples
        if now - last_change > stall_s:
            raise BenchError(f"{[w.name for w in workers]}: stuck at {done:.0f} of {n} results")
        due += step
        time.sleep(max(0.0, due - time.time()))


def crossing(samples, k):
    """When the count reached k, interpolated between two samples."""
    for (t0, c0), (t1, c1) in zip(samples, samples[1:]):
        if c1 >= k:
            return t0 + (t1 - t0) * ((k - c0) / (c1 - c0) if c1 > c0 else 1.0)
    raise BenchError(f"the results never reached {k}")


def steady(samples, n):
    """msg/s between the 10th and 90th percentile of the completions."""
    t10, t90 = crossing(samples, 0.1 * n), crossing(samples, 0.9 * n)
    if t90 - t10 < 0.5:
        raise BenchError(f"steady window of {t90 - t10:.2f} s: too few requests to measure")
    return 0.8 * n / (t90 - t10), t90 - t10


def timeline(samples):
    """[seconds since start, results completed since the previous sample]."""
    return [[round(t1, 3), int(c1 - c0)] for (_, c0), (t1, c1) in zip(samples, samples[1:])]


def marks_sum(cluster, topic):
    return sum(int(x) for x in cluster.marks(topic).split(","))


def check_landed(cluster, before, n, prefix):
    """Kafka's own count: the results and costs topics grew by n and 2n."""
    got = (marks_sum(cluster, "llm.results") - before[0],
           marks_sum(cluster, "llm.costs") - before[1])
    if got != (n, 2 * n):
        raise BenchError(f"{prefix}: the results topic grew by {got[0]}, the costs topic by "
                         f"{got[1]}, for {n} requests (want {n}, {2 * n})")


def check_outputs(w, n, prefix):
    """Every request got an ok result, a reserved and a settled cost record."""
    got = (w.metric("switchyard_results_total", 'status="ok"'),
           w.metric("switchyard_reservations_total"), w.metric("switchyard_cost_records_total"),
           w.metric("switchyard_dead_letters_total"))
    if got != (n, n, n, 0):
        raise BenchError(f"{prefix}: {got[0]:.0f} ok results, {got[1]:.0f} reserved and "
                         f"{got[2]:.0f} settled cost records, {got[3]:.0f} dead letters for "
                         f"{n} requests")


def run_batch(cluster, name, provider, topic, n, prefix, max_connections=None):
    """Pre-loads n requests, runs one worker over them until every result is
    out: its CPU, RSS and completion samples."""
    group = f"bench-{prefix}"
    before = (marks_sum(cluster, "llm.results"), marks_sum(cluster, "llm.costs"))
    tool("bench_load", "load", cluster.bootstrap, topic, n, prefix, group)
    cfg = worker_config(name, cluster, provider, topic, group, max_connections)
    w = Worker(name, cfg)
    perf = None
    if os.environ.get("BENCH_PERF") and name == "b-run1":
        # BENCH_PERF=1: a perf profile of scenario b's first run, for README
        # (perf report -i build/bench/perf-b.data --no-children)
        perf = subprocess.Popen(["perf", "record", "-F", "997", "-g", "-p", str(w.p.pid),
                                 "-o", os.path.join(OUT, "perf-b.data")],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    samples = wait_results([w], n)
    if perf:
        perf.send_signal(signal.SIGINT)
        perf.wait(timeout=60)
    cpu = w.cpu_s() - w.cpu_start
    hwm = w.status("VmHWM")
    check_outputs(w, n, prefix)
    w.stop()
    check_landed(cluster, before, n, prefix)
    rate, span = steady(samples, n)
    return {"requests": n, "wall_s": round(samples[-1][0], 3), "cpu_s": cpu,
            "cpu_us_per_msg": cpu * 1e6 / n, "msg_per_s": rate, "steady_window_s": span,
            "peak_rss_kb": hwm, "rss_after_start_kb": w.rss_start_kb}, samples


def calibrate(cluster, instant):
    """One small worker run through a logging fake provider: the bytes of
    the request, the provider body, the reply, the result and both cost
    records, for the floors."""
    from confluent_kafka import Consumer, TopicPartition

    d = os.path.join(OUT, "bytes")
    os.makedirs(d, exist_ok=True)
    plog = os.path.join(OUT, "logs", "calibration-provider.jsonl")
    logged = start_provider("calibration-provider", ["--log", plog])
    n = 50
    marks = {t: [int(x) for x in cluster.marks(t).split(",")] for t in ("llm.results", "llm.costs")}
    tool("bench_load", "load", cluster.bootstrap, "bench.cal.requests", n, CAL_PREFIX,
         f"bench-{CAL_PREFIX}")
    cfg = worker_config("calibration", cluster, logged, "bench.cal.requests",
                        f"bench-{CAL_PREFIX}")
    w = Worker("calibration", cfg)
    wait_results([w], n)
    check_outputs(w, n, CAL_PREFIX)
    w.stop()
    want = f"{CAL_PREFIX}-000000000"
    found = {}
    c = Consumer({"bootstrap.servers": cluster.bootstrap, "group.id": "bench-calibration-reader",
                  "enable.auto.commit": False})
    for topic, offs in marks.items():
        c.assign([TopicPartition(topic, p, o) for p, o in enumerate(offs)])
        deadline = time.time() + 30
        need = 1 if topic == "llm.results" else 2
        got = 0
        while got < need and time.time() < deadline:
            m = c.poll(0.5)
            if m is None or m.error():
                continue
            v = json.loads(m.value())
            if v.get("id") != want:
                continue
            if topic == "llm.results":
                if v.get("status") != "ok":
                    raise BenchError(f"calibration: result status {v.get('status')}: {v}")
                found["result.json"] = m.value()
            else:
                found[f"cost_{v.get('kind')}.json"] = m.value()
            got += 1
    c.close()
    for k in ("result.json", "cost_reserved.json", "cost_settled.json"):
        if k not in found:
            raise BenchError(f"calibration: no {k} for {want}")
    req = subprocess.run([os.path.join(BUILD, "bench_load"), "sample", CAL_PREFIX],
                         capture_output=True, check=True).stdout
    found["request.json"] = req
    with open(plog) as f:
        entries = [json.loads(x) for x in f if x.strip()]
    bodies = [e for e in entries if e.get("path") == "/v1/chat/completions" and e.get("body")]
    # (the provider's log may hold an entry more than once: count its seq)
    if len({e["seq"] for e in bodies}) != n:
        raise BenchError(f"calibration: the provider saw {len(bodies)} calls for {n} requests")
    body = json.dumps(bodies[0]["body"], separators=(",", ":"), ensure_ascii=False).encode()
    sent = int(bodies[0]["headers"].get("content-length", -1))
    if len(body) != sent:
        raise BenchError(f"calibration: provider body rebuilt as {len(body)} bytes, sent {sent}")
    found["provider_body.json"] = body
    r = urllib.request.Request(f"http://{instant}/v1/chat/completions", data=body, method="POST",
                               headers={"Content-Type": "application/json",
                                        "Authorization": "Bearer bench-dummy"})
    with urllib.request.urlopen(r, timeout=10) as resp:
        found["reply.json"] = resp.read()
    for k, v in found.items():
        with open(os.path.join(d, k), "wb") as f:
            f.write(v)
    return {k: len(v) for k, v in sorted(found.items())}


def scenario_a(cluster, instant, run):
    prefix = f"bench-a{run:02d}"
    n = SZ["floor_n"]
    tool("bench_load", "load", cluster.bootstrap, "bench.a.requests", n, prefix, f"bench-{prefix}")
    bytes_dir = os.path.join(OUT, "bytes")
    kafka = tool("bench_kafka", cluster.bootstrap, "bench.a.requests", f"bench-{prefix}", n,
                 "bench.a.results", "bench.a.costs", bytes_dir, f"{CAL_PREFIX}-000000000")
    http = tool("bench_http", f"http://{instant}/v1/chat/completions",
                os.path.join(bytes_dir, "provider_body.json"), n, HTTP_CONNS)
    js = tool("bench_json", bytes_dir, n)
    for what, r in (("kafka", kafka), ("http", http), ("json", js)):
        if r["messages"] != n:
            raise BenchError(f"floor {what}: {r['messages']} messages for {n}")
    return {"kafka": kafka, "http": http, "json": js,
            "sum_us": kafka["cpu_us_per_msg"] + http["cpu_us_per_msg"] + js["cpu_us_per_msg"]}


def scenario_b(cluster, instant, run):
    r, _ = run_batch(cluster, f"b-run{run}", instant, "bench.b.requests", SZ["b_n"],
                     f"bench-b{run:02d}")
    return r


def scenario_c(cluster, slow, run):
    r, samples = run_batch(cluster, f"c-run{run}", slow, "bench.c.requests", SZ["c_n"],
                           f"bench-c{run:02d}", max_connections=C_IN_FLIGHT)
    r["bytes_per_in_flight"] = (r["peak_rss_kb"] - r["rss_after_start_kb"]) * 1024 / C_IN_FLIGHT
    r["timeline_250ms"] = timeline(samples)
    return r


def wait_assigned(workers, partitions, timeout=60):
    """Until the workers hold every partition between them, each at least
    one, the same for 1 s; each worker's count."""
    deadline, stable_since, last = time.time() + timeout, None, None
    while time.time() < deadline:
        counts = [int(w.metric("switchyard_partitions_assigned")) for w in workers]
        ok = sum(counts) == partitions and min(counts) > 0
        if ok and counts == last:
            if time.time() - stable_since >= 1.0:
                return counts
        else:
            stable_since = time.time()
        last = counts if ok else None
        time.sleep(0.2)
    raise BenchError(f"workers never held all {partitions} partitions: {last}")


def cpu_busy_jiffies():
    """(busy, total) jiffies of the whole machine (/proc/stat)."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    idle = v[3] + v[4]
    return sum(v) - idle, sum(v)


def scenario_d(cluster, instant, run, b_rate):
    prefix = f"bench-d{run:02d}"
    group = f"bench-{prefix}"
    rate = max(1, int(b_rate / 2))
    tool("bench_load", "commit", cluster.bootstrap, "bench.d.requests", group)
    before = (marks_sum(cluster, "llm.results"), marks_sum(cluster, "llm.costs"))
    w = Worker(f"d-run{run}", worker_config(f"d-run{run}", cluster, instant,
                                            "bench.d.requests", group))
    wait_assigned([w], TOPICS["bench.d.requests"])
    busy0 = cpu_busy_jiffies()
    r = tool("bench_load", "latency", cluster.bootstrap, "bench.d.requests", "llm.results", rate,
             SZ["d_warmup_s"], SZ["d_measure_s"], prefix)
    busy1 = cpu_busy_jiffies()
    # how busy the machine's cores were meanwhile (worker, cluster, provider, client)
    r["machine_busy"] = round((busy1[0] - busy0[0]) / max(1, busy1[1] - busy0[1]), 3)
    check_outputs(w, r["sent"], prefix)
    # where the worker's share goes: its own histograms' means
    for key, metric in (("reservation_wait_ms", "switchyard_reservation_wait_seconds"),
                        ("provider_latency_ms", "switchyard_provider_latency_seconds")):
        n = w.metric(metric + "_count")
        r[key + "_mean"] = round(1000 * w.metric(metric + "_sum") / n, 3) if n else None
    w.stop()
    if r["received"] != r["sent"]:
        raise BenchError(f"{prefix}: {r['received']} results for {r['sent']} requests")
    check_landed(cluster, before, r["sent"], prefix)
    return r


def scenario_e(cluster, instant, run):
    out = {}
    parts = TOPICS["bench.e.requests"]
    for k in (1, 2, 4):
        prefix = f"bench-e{k}r{run:02d}"
        group = f"bench-{prefix}"
        n = SZ["e_n"]
        tool("bench_load", "commit", cluster.bootstrap, "bench.e.requests", group)
        before = (marks_sum(cluster, "llm.results"), marks_sum(cluster, "llm.costs"))
        ws = []
        for i in range(k):
            name = f"e{k}-run{run}-w{i + 1}"
            ws.append(Worker(name, worker_config(name, cluster, instant, "bench.e.requests",
                                                 group)))
        assigned = wait_assigned(ws, parts)
        tool("bench_load", "load", cluster.bootstrap, "bench.e.requests", n, prefix)
        samples = wait_results(ws, n)
        done = [w.metric("switchyard_results_total", 'status="ok"') for w in ws]
        end_assigned = [int(w.metric("switchyard_partitions_assigned")) for w in ws]
        dead = sum(w.metric("switchyard_dead_letters_total") for w in ws)
        for w in ws:
            w.stop()
        if dead:
            raise BenchError(f"{prefix}: {dead:.0f} dead letters")
        # no rebalance during the run: each request answered once
        check_landed(cluster, before, n, prefix)
        rate, span = steady(samples, n)
        out[str(k)] = {"workers": k, "requests": n, "msg_per_s": rate, "steady_window_s": span,
                       "results_per_worker": done,
                       "per_worker_msg_per_s": [rate * d / sum(done) for d in done],
                       "partitions_per_worker": assigned,
                       "partitions_per_worker_at_end": end_assigned,
                       "partition_spread": max(assigned) / min(assigned)}
    return out


def machine():
    def cmd(*a):
        try:
            return subprocess.run(a, capture_output=True, text=True, timeout=10).stdout.strip()
        except OSError:
            return None

    cpu = None
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return {"nproc": os.cpu_count(), "cpu": cpu, "kernel": platform.release(),
            "switchyard": cmd(os.path.join(BUILD, "switchyard"), "--version"),
            "git": cmd("git", "-C", ROOT, "describe", "--always", "--dirty"),
            "cc": cmd("cc", "--version").splitlines()[0],
            "librdkafka": cmd("pkg-config", "--modversion", "rdkafka"),
            "libcurl": cmd("pkg-config", "--modversion", "libcurl"),
            "jansson": cmd("pkg-config", "--modversion", "jansson"),
            "libyaml": cmd("pkg-config", "--modversion", "yaml-0.1"),
            "python": platform.python_version()}


# (key, label, unit, getter over one run, format)
FIGURES = [
    ("a_kafka_us", "a. floor: Kafka consume + 3 outputs (idempotent, worker.yaml's batching)", "µs CPU/msg",
     lambda r: r["a"]["kafka"]["cpu_us_per_msg"], "{:.1f}"),
    ("a_http_us", f"a. floor: HTTP call (curl multi, {HTTP_CONNS} kept-alive)", "µs CPU/call",
     lambda r: r["a"]["http"]["cpu_us_per_msg"], "{:.1f}"),
    ("a_json_us", "a. floor: jansson request, body, reply, result, 2 cost records", "µs CPU/msg",
     lambda r: r["a"]["json"]["cpu_us_per_msg"], "{:.1f}"),
    ("a_sum_us", "a. floors' sum", "µs CPU/msg", lambda r: r["a"]["sum_us"], "{:.1f}"),
    ("b_cpu_us", "b. instant provider: worker CPU", "µs/msg",
     lambda r: r["b"]["cpu_us_per_msg"], "{:.1f}"),
    ("b_ratio", "b. worker CPU / floors' sum", "x",
     lambda r: r["b"]["cpu_us_per_msg"] / r["a"]["sum_us"], "{:.2f}"),
    ("b_rate", "b. instant provider: throughput", "msg/s", lambda r: r["b"]["msg_per_s"],
     "{:,.0f}"),
    ("b_rss", "b. peak RSS", "MB", lambda r: r["b"]["peak_rss_kb"] / 1024, "{:.0f}"),
    ("c_rate", f"c. 2 s provider, {C_IN_FLIGHT:,} in flight: sustained", "msg/s",
     lambda r: r["c"]["msg_per_s"], "{:,.0f}"),
    ("c_ideal", "c. sustained / ideal 5,000 msg/s", "x",
     lambda r: r["c"]["msg_per_s"] / (C_IN_FLIGHT / (C_LATENCY_MS / 1000)), "{:.2f}"),
    ("c_cpu_us", "c. worker CPU", "µs/msg", lambda r: r["c"]["cpu_us_per_msg"], "{:.1f}"),
    ("c_rss", "c. peak RSS", "MB", lambda r: r["c"]["peak_rss_kb"] / 1024, "{:.0f}"),
    ("c_per_req", "c. memory per request in flight", "KB",
     lambda r: r["c"]["bytes_per_in_flight"] / 1024, "{:.1f}"),
    ("d_rate", "d. paced rate (half of b's)", "msg/s", lambda r: r["d"]["rate"], "{:,.0f}"),
    ("d_p50", "d. added latency p50 (send to receive)", "ms",
     lambda r: r["d"]["e2e_ms"]["p50"], "{:.1f}"),
    ("d_p99", "d. added latency p99", "ms", lambda r: r["d"]["e2e_ms"]["p99"], "{:.1f}"),
    ("d_max", "d. added latency max", "ms", lambda r: r["d"]["e2e_ms"]["max"], "{:.1f}"),
    ("d_own_p50", "d. worker's share p50 (result ts - request ts)", "ms",
     lambda r: r["d"]["worker_ms"]["p50"], "{:.0f}"),
    ("d_own_p99", "d. worker's share p99", "ms", lambda r: r["d"]["worker_ms"]["p99"], "{:.0f}"),
    ("e1_rate", "e. 1 worker, 16 partitions", "msg/s", lambda r: r["e"]["1"]["msg_per_s"],
     "{:,.0f}"),
    ("e2_rate", "e. 2 workers: total", "msg/s", lambda r: r["e"]["2"]["msg_per_s"], "{:,.0f}"),
    ("e2_ratio", "e. 2 workers / 1", "x",
     lambda r: r["e"]["2"]["msg_per_s"] / r["e"]["1"]["msg_per_s"], "{:.2f}"),
    ("e2_per", "e. 2 workers: per worker (mean)", "msg/s",
     lambda r: statistics.mean(r["e"]["2"]["per_worker_msg_per_s"]), "{:,.0f}"),
    ("e2_spread", "e. 2 workers: partitions max/min", "x",
     lambda r: r["e"]["2"]["partition_spread"], "{:.2f}"),
    ("e4_rate", "e. 4 workers: total", "msg/s", lambda r: r["e"]["4"]["msg_per_s"], "{:,.0f}"),
    ("e4_ratio", "e. 4 workers / 1", "x",
     lambda r: r["e"]["4"]["msg_per_s"] / r["e"]["1"]["msg_per_s"], "{:.2f}"),
    ("e4_per", "e. 4 workers: per worker (mean)", "msg/s",
     lambda r: statistics.mean(r["e"]["4"]["per_worker_msg_per_s"]), "{:,.0f}"),
    ("e4_spread", "e. 4 workers: partitions max/min", "x",
     lambda r: r["e"]["4"]["partition_spread"], "{:.2f}"),
]


def table(runs):
    lines = [f"| figure | unit | median | runs ({len(runs)}) |", "|---|---|---:|---|"]
    medians = {}
    for key, label, unit, get, fmt in FIGURES:
        vals = [get(r) for r in runs]
        med = statistics.median(vals)
        medians[key] = med
        lines.append(f"| {label} | {unit} | {fmt.format(med)} | "
                     f"{', '.join(fmt.format(v) for v in vals)} |")
    return "\n".join(lines) + "\n", medians


def main():
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)
    os.makedirs(os.path.join(OUT, "logs"), exist_ok=True)
    if RUNS < 1:
        raise BenchError("BENCH_RUNS must be at least 1")
    started = time.time()
    log(f"{RUNS} run(s){' (quick)' if QUICK else ''}; sizes {SZ}")
    cluster = Cluster()
    instant = start_provider("provider-instant", ["--latency-ms", "0"])
    slow = start_provider("provider-2s", ["--latency-ms", str(C_LATENCY_MS)])
    if os.environ.get("BENCH_D_RATE"):
        # BENCH_D_RATE=N: only scenario d at N msg/s (to study latency alone)
        print(json.dumps(scenario_d(cluster, instant, 1, 2 * int(os.environ["BENCH_D_RATE"]))))
        return
    if os.environ.get("BENCH_C_ONLY"):
        # BENCH_C_ONLY=1: only scenario c (to study memory and the refill alone)
        r = scenario_c(cluster, slow, 1)
        r.pop("timeline_250ms", None)
        print(json.dumps(r))
        return
    sizes = calibrate(cluster, instant)
    log(f"calibrated: bytes {sizes}")
    runs = []
    for run in range(1, RUNS + 1):
        r = {"run": run}
        log(f"run {run}: a (floors)")
        r["a"] = scenario_a(cluster, instant, run)
        log(f"run {run}: b (instant provider, {SZ['b_n']} requests)")
        r["b"] = scenario_b(cluster, instant, run)
        log(f"run {run}: c (2 s provider, {SZ['c_n']} requests)")
        r["c"] = scenario_c(cluster, slow, run)
        log(f"run {run}: d (latency at {int(r['b']['msg_per_s'] / 2)} msg/s)")
        r["d"] = scenario_d(cluster, instant, run, r["b"]["msg_per_s"])
        log(f"run {run}: e (scale-out 1, 2, 4 workers)")
        r["e"] = scenario_e(cluster, instant, run)
        runs.append(r)
    md, medians = table(runs)
    wall = time.time() - started
    result = {"machine": machine(), "quick": QUICK, "runs_wanted": RUNS, "sizes": SZ,
              "topics": TOPICS, "bytes": sizes, "request_bytes": sizes["request.json"],
              "wall_s": round(wall, 1), "runs": runs, "medians": medians,
              "ratios": {k: medians[k] for k in ("b_ratio", "c_ideal", "e2_ratio", "e4_ratio")}}
    with open(os.path.join(OUT, "results.json"), "w") as f:
        json.dump(result, f, indent=1)
    with open(os.path.join(OUT, "table.md"), "w") as f:
        f.write(md)
    print(md, end="")
    print(f"\n{len(runs)} run(s) in {wall:.0f} s on {os.cpu_count()} cores; "
          f"{os.path.relpath(os.path.join(OUT, 'results.json'), ROOT)}, "
          f"{os.path.relpath(os.path.join(OUT, 'table.md'), ROOT)}")


if __name__ == "__main__":
    rc = 0
    try:
        main()
    except BenchError as e:
        print(f"bench: FAILED: {e}", file=sys.stderr)
        rc = 1
    finally:
        stop_all()
    sys.exit(rc)
