"""Real processes for end-to-end tests and the demo: the mock Kafka
cluster, the fake provider, switchyard itself, kcat to produce, Python's
confluent-kafka to read back. Everything listens on 127.0.0.1 only, and
everything started here is stopped by Harness.close()."""

import json
import os
import signal
import subprocess
import tempfile
import time
import urllib.error
import urllib.request

from confluent_kafka import Consumer, TopicPartition

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BUILD = os.path.join(ROOT, os.environ.get("BUILD", "build"))
# the key variables write_config names by default, and the tests' policy
TEST_KEYS = {"SWITCHYARD_TEST_ANTHROPIC_KEY": "k1", "SWITCHYARD_TEST_OPENAI_KEY": "k2"}
TEST_POLICY = os.path.join(ROOT, "tests", "e2e", "policy.yaml")


class Harness:
    def __init__(self, topics, fake_args=(), brokers=1):
        self.dir = tempfile.mkdtemp(prefix="switchyard-e2e-")
        self.procs = []
        self.topics = topics
        self.mock = subprocess.Popen(
            [os.path.join(BUILD, "mock_kafka"), "--brokers", str(brokers)]
            + sum((["--topic", f"{t}:{n}"] for t, n in topics.items()), []),
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.procs.append(self.mock)
        line = self.mock.stdout.readline().strip()
        if not line.startswith("bootstrap="):
            raise RuntimeError(f"mock_kafka did not start: {line!r}")
        self.bootstrap = line.split("=", 1)[1]
        self.fake_log = os.path.join(self.dir, "provider.jsonl")
        self.fake = subprocess.Popen(
            [os.path.join(BUILD, "fake_provider"), "--host", "127.0.0.1", "--port", "0",
             "--log", self.fake_log] + list(fake_args),
            stdout=subprocess.PIPE, text=True)
        self.procs.append(self.fake)
        line = self.fake.stdout.readline().strip()
        if not line.startswith("listening="):
            raise RuntimeError(f"fake_provider did not start: {line!r}")
        self.provider_addr = line.split("=", 1)[1]
        self.worker = None

    def mock_command(self, line):
        """A control command for the mock cluster (see mock_kafka.c); its
        one-line answer."""
        self.mock.stdin.write(line + "\n")
        self.mock.stdin.flush()
        return self.mock.stdout.readline().strip()

    def write_config(self, group, topics, limits=None, providers=None, extra_kafka=None):
        """worker.yaml pointing at the mock cluster and the fake provider."""
        base = f"http://{self.provider_addr}"
        providers = providers or {
            "anthropic": {"type": "anthropic", "base_url": base,
                          "api_key_env": "SWITCHYARD_TEST_ANTHROPIC_KEY", "timeout_ms": 5000},
            "openai": {"type": "openai", "base_url": base + "/v1",
                       "api_key_env": "SWITCHYARD_TEST_OPENAI_KEY", "timeout_ms": 5000},
        }
        kafka = {"bootstrap.servers": self.bootstrap, "group.id": group,
                 "session.timeout.ms": 6000, "heartbeat.interval.ms": 500,
                 "auto.offset.reset": "earliest", "topic.metadata.refresh.interval.ms": 1000}
        kafka.update(extra_kafka or {})
        cfg = {"kafka": kafka, "topics": topics, "providers": providers,
               "limits": limits or {"commit_interval_ms": 500, "backoff_initial_ms": 20,
                                    "backoff_max_ms": 2000, "shutdown_grace_ms": 10000}}
        path = os.path.join(self.dir, "worker.yaml")
        with open(path, "w") as f:
            json.dump(cfg, f, indent=1)  # JSON is YAML
        return path

    def produce(self, topic, records, kcat_args=()):
        """records: list of (key, value-bytes); produced with kcat, key and
        value separated by a tab, one record per line. kcat_args: more
        kcat options (e.g. "-Z" to send empty keys and values as null,
        "-X", "message.max.bytes=..." for large ones)."""
        data = b"".join(k.encode() + b"\t" + v + b"\n" for k, v in records)
        subprocess.run(["kcat", "-P", "-b", self.bootstrap, "-t", topic, "-K", "\t",
                        "-X", "enable.idempotence=true"] + list(kcat_args),
                       input=data, check=True, timeout=120)

    def wait_log(self, event, timeout=30):
        """Waits until the current worker logs `event`; True if it did."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            with open(self.worker_log) as f:
                if any(f'"event":"{event}"' in line for line in f):
                    return True
            time.sleep(0.05)
        return False

    def metrics_address(self, timeout=30):
        """The worker's metrics address, from its metrics_listening log
        line (other lines, a wrapper's such as valgrind's, are skipped);
        None if the worker exits or the line does not come in time."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            with open(self.worker_log) as f:
                for line in f:
                    try:
                        e = json.loads(line)
                    except ValueError:
                        continue
                    if e.get("event") == "metrics_listening":
                        return e["msg"].split("//", 1)[1].split("/", 1)[0]
            if self.worker.poll() is not None:
                return None
            time.sleep(0.05)
        return None

    def start_worker(self, config, policy, env=None, args=()):
        e = dict(os.environ)
        e.update(env or {})
        self.nworkers = getattr(self, "nworkers", 0) + 1
        self.worker_log = os.path.join(self.dir, f"worker-{self.nworkers}.log")
        # SWITCHYARD_WRAPPER="valgrind --error-exitcode=9 ..." runs the worker under a tool
        wrapper = os.environ.get("SWITCHYARD_WRAPPER", "").split()
        self.worker = subprocess.Popen(
            wrapper + [os.path.join(BUILD, "switchyard"), "--config", config, "--policy", policy]
            + list(args), env=e, stdout=subprocess.DEVNULL,
            stderr=open(self.worker_log, "w"))
        self.procs.append(self.worker)
        return self.worker

    def stop_worker(self, timeout=60):
        self.worker.send_signal(signal.SIGTERM)
        return self.worker.wait(timeout=timeout)

    def consumer(self, group=None):
        return Consumer({"bootstrap.servers": self.bootstrap,
                         "group.id": group or f"reader-{os.getpid()}-{time.time()}",
                         "auto.offset.reset": "earliest", "enable.auto.commit": False})

    def read(self, topic, until, timeout=120):
        """Reads topic from the beginning until until(messages) is true or
        timeout; returns the messages as (key, value, headers, partition,
        offset) tuples."""
        c = self.consumer()
        parts = [TopicPartition(topic, p, 0) for p in range(self.topics[topic])]
        c.assign(parts)
        out = []
        deadline = time.time() + timeout
        while time.time() < deadline and not until(out):
            for m in c.consume(1000, timeout=0.5):
                if m.error():
                    continue
                out.append((m.key().decode() if m.key() is not None else None, m.value(),
                            m.headers() or [], m.partition(), m.offset()))
        c.close()
        return out

    def committed(self, group, topic):
        c = self.consumer(group)
        parts = [TopicPartition(topic, p) for p in range(self.topics[topic])]
        got = c.committed(parts, timeout=10)
        ends = [c.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
                for p in range(self.topics[topic])]
        c.close()
        return [tp.offset for tp in got], ends

    def provider_log(self):
        """The fake provider's request log; a last line still being
        written (no newline yet) is left for the next read."""
        if not os.path.exists(self.fake_log):
            return []
        with open(self.fake_log) as f:
            return [json.loads(l) for l in f if l.endswith("\n") and l.strip()]

    def close(self):
        for p in reversed(self.procs):
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
        for p in self.procs:
            for s in (p.stdin, p.stdout):
                if s:
                    s.close()


def http_status(addr, path):
    """The HTTP status of GET http://addr/path; None when nothing answers."""
    try:
        with urllib.request.urlopen(f"http://{addr}{path}", timeout=10) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code
    except OSError:
        return None


def json_lines(path):
    """The JSON objects of a file of JSON lines (a worker's log, a provider's
    request log); other lines (a wrapper's output, a last line still being
    written) are skipped. [] when the file does not exist."""
    out = []
    if not os.path.exists(path):
        return out
    with open(path) as f:
        for line in f:
            try:
                out.append(json.loads(line))
            except ValueError:
                pass
    return out


def bills(msgs):
    """The cost-topic messages (as read() returns them) that bill: settled
    records (one without "kind" is an older worker's: settled) of calls with
    usage or cost. With costs.reserve (on by default) every call also has a
    reserved record before it, and a call that cost nothing a settled one
    at 0 (issue 11)."""
    out = []
    for m in msgs:
        c = json.loads(m[1])
        if c.get("kind", "settled") == "settled" and (c["cost_nusd"] or any(c["usage"].values())):
            out.append(m)
    return out


def schema_validator(name):
    """A validator for schemas/NAME, its $refs to the other schemas of
    schemas/ resolved locally (never over the network)."""
    import jsonschema  # only the tests that validate need it
    store = {}
    for f in os.listdir(os.path.join(ROOT, "schemas")):
        if f.endswith(".schema.json"):
            s = json.load(open(os.path.join(ROOT, "schemas", f)))
            store[s["$id"]] = s
    s = json.load(open(os.path.join(ROOT, "schemas", name)))
    resolver = jsonschema.RefResolver(s["$id"], s, store=store)
    return jsonschema.Draft202012Validator(s, resolver=resolver)


def scrape(addr):
    """The text of http://addr/metrics; "" when nothing answers."""
    try:
        with urllib.request.urlopen(f"http://{addr}/metrics", timeout=5) as r:
            return r.read().decode()
    except OSError:
        return ""


def metric(text, name, **labels):
    """The value of the first sample of `name` whose labels include
    `labels`, in a Prometheus text page; None when there is none."""
    for line in text.splitlines():
        if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return None


class Checks:
    """ok()-style counting: every check counts; the last line is the count."""

    def __init__(self):
        self.passed = self.failed = 0

    def ok(self, cond, what):
        if cond:
            self.passed += 1
        else:
            self.failed += 1
            print(f"FAIL: {what}", flush=True)
        return cond

    def summary(self):
        print(f"{self.passed} passed, {self.failed} failed")
        return 0 if self.failed == 0 else 1
