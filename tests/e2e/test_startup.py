"""Start-up, through real processes: the worker checks that the Kafka
cluster answers and that its four topics exist before it consumes, within
limits.startup_timeout_ms, and says so in JSON lines.
1. bootstrap.servers at a closed port: every stderr line is JSON (librdkafka's
   own lines included), /readyz is not 200 while it waits, a warning names
   the bootstrap servers, and the worker exits 1 with an error naming them;
2. SIGTERM while it waits: it exits at once, not at the deadline;
3. a misspelt topic: exit 1 with an error naming it, and the check did not
   create it;
4. topics.create_missing: true with a missing topic: a warning, then it
   starts and serves;
5. ${ENV} values are passed whole: a 2000-byte group.id commits under
   exactly that group, and a 4 KiB "debug" value is accepted whole (cut at
   1023 bytes it names an unknown debug context and librdkafka refuses it)."""

import json
import os
import signal
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from harness import TEST_KEYS as KEYS, TEST_POLICY as POLICY, Checks, Harness, http_status  # noqa: E402

from confluent_kafka.admin import AdminClient  # noqa: E402


def log_lines(h):
    with open(h.worker_log) as f:
        return [l for l in f.read().splitlines() if l.strip()]


def events(h):
    out = []
    for l in log_lines(h):
        try:
            out.append(json.loads(l))
        except ValueError:
            pass
    return out


def wait_event(h, name, timeout=30):
    deadline = time.time() + timeout
    while time.time() < deadline:
        for e in events(h):
            if e.get("event") == name:
                return e
        if h.worker.poll() is not None:
            return None
        time.sleep(0.1)
    return None


def closed_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # bound, never listened: connections are refused
    return port


def with_metrics(path, **extra):
    with open(path) as f:
        c = json.load(f)
    c["metrics"] = {"listen": "127.0.0.1:0"}
    for k, v in extra.items():
        c[k] = v
    with open(path, "w") as f:
        json.dump(c, f)
    return path


def topic_names(h):
    md = AdminClient({"bootstrap.servers": h.bootstrap}).list_topics(timeout=10)
    return set(md.topics)


def test_closed_port(t):
    topics = {"requests": "cp.requests", "results": "cp.results", "costs": "cp.costs",
              "dead_letter": "cp.dlq"}
    h = Harness({v: 1 for v in topics.values()})
    try:
        servers = f"127.0.0.1:{closed_port()}"
        cfg = with_metrics(h.write_config(f"cp-{os.getpid()}", topics, limits={
            "startup_timeout_ms": 4000}, extra_kafka={"bootstrap.servers": servers}))
        w = h.start_worker(cfg, POLICY, env=KEYS)
        e = wait_event(h, "metrics_listening")
        addr = e["msg"].split("//", 1)[1].split("/", 1)[0] if e else None
        st = http_status(addr, "/readyz") if addr else None
        t.ok(st is not None and st != 200, f"/readyz is not 200 while the cluster is unreachable ({st})")
        t.ok(http_status(addr, "/healthz") == 200 if addr else False,
             "/healthz answers while the check runs (the loop is not blocked)")
        try:
            rc = w.wait(timeout=30)
        except Exception:
            rc = None
        t.ok(rc == 1, f"exit 1 when the cluster does not answer within startup_timeout_ms ({rc})")
        lines = log_lines(h)
        bad = []
        for l in lines:
            try:
                json.loads(l)
            except ValueError:
                bad.append(l)
        t.ok(lines and not bad, f"every stderr line is JSON ({len(lines)} lines, not JSON: {bad[:3]})")
        evs = events(h)
        t.ok(any(e.get("event") == "kafka_log" for e in evs),
             "librdkafka's own lines come through the JSON log")
        t.ok(any(e.get("level") == "warn" and servers in e.get("msg", "") for e in evs),
             "a warning names the bootstrap servers while it waits")
        t.ok(any(e.get("level") == "error" and e.get("event") == "kafka_unreachable"
                 and servers in e.get("msg", "") for e in evs),
             "the exit is an error naming the bootstrap servers")
        t.ok(not any(e.get("event") == "started" for e in evs), "it never says started")
        # SIGTERM while it waits: out at once, not at the deadline
        cfg = h.write_config(f"cp-{os.getpid()}", topics, limits={"startup_timeout_ms": 120000},
                             extra_kafka={"bootstrap.servers": servers})
        w = h.start_worker(cfg, POLICY, env=KEYS)
        wait_event(h, "kafka_not_reachable_yet")
        w.send_signal(signal.SIGTERM)
        try:
            rc = w.wait(timeout=15)
        except Exception:
            w.kill()
            rc = None
        t.ok(rc is not None, f"SIGTERM during the start-up check ends it long before the deadline ({rc})")
    finally:
        h.close()


def test_misspelt_topic(t):
    topics = {"requests": "ms.requests", "results": "ms.results", "costs": "ms.costs",
              "dead_letter": "ms.dlq"}
    h = Harness({v: 1 for v in topics.values()})
    try:
        wrong = dict(topics, results="ms.reslts")
        cfg = h.write_config(f"ms-{os.getpid()}", wrong, limits={"startup_timeout_ms": 20000})
        w = h.start_worker(cfg, POLICY, env=KEYS)
        try:
            rc = w.wait(timeout=30)
        except Exception:
            rc = None
        t.ok(rc == 1, f"a missing topic stops the worker with exit 1 ({rc})")
        evs = events(h)
        t.ok(any(e.get("level") == "error" and e.get("event") == "topic_missing"
                 and "ms.reslts" in e.get("msg", "") for e in evs),
             "the error names the missing topic")
        t.ok(not any(e.get("event") == "topic_missing" and "ms.results" in e.get("msg", "")
                     for e in evs), "topics that exist are not reported")
        t.ok("ms.reslts" not in topic_names(h), "the check does not create the topic")
    finally:
        h.close()


def test_create_missing(t):
    topics = {"requests": "cm.requests", "results": "cm.results", "costs": "cm.costs",
              "dead_letter": "cm.dlq"}
    h = Harness({topics["requests"]: 1, topics["results"]: 1, topics["dead_letter"]: 1})
    try:
        cfg = h.write_config(f"cm-{os.getpid()}", dict(topics, create_missing=True))
        h.produce(topics["requests"], [("cm-1", json.dumps({"id": "cm-1", "task": "code", "messages": [
            {"role": "user", "content": "request cm-1: go"}]}).encode())])
        h.start_worker(cfg, POLICY, env=KEYS)
        e = wait_event(h, "started")
        t.ok(e is not None, "with create_missing the worker starts although a topic is missing")
        t.ok(any(x.get("level") == "warn" and x.get("event") == "topic_missing"
                 and "cm.costs" in x.get("msg", "") for x in events(h)),
             "and warns, naming the missing topic")
        res = h.read(topics["results"], lambda ms: len(ms) >= 1, timeout=60)
        t.ok([m[0] for m in res] == ["cm-1"], f"and serves ({[m[0] for m in res]})")
        t.ok(h.stop_worker() == 0, "and exits 0 on SIGTERM")
        t.ok("cm.costs" in topic_names(h), "the broker created the missing topic on first use")
    finally:
        h.close()


def test_long_env_values(t):
    topics = {"requests": "le.requests", "results": "le.results", "costs": "le.costs",
              "dead_letter": "le.dlq"}
    h = Harness({v: 1 for v in topics.values()})
    group = (f"le-{os.getpid()}-" + "g" * 2000)[:2000]
    # librdkafka validates every word of "debug": cut at byte 1023, the
    # value ends in ",g" and is refused
    debug = "topic," + ",".join(["generic"] * 512)
    assert len(debug) > 4096 and debug[:1023].endswith(",g")
    try:
        cfg = h.write_config("unused", topics, extra_kafka={
            "group.id": "${SY_TEST_GROUP}", "debug": "${SY_TEST_DEBUG}"})
        reqs = [(f"le-{i}", json.dumps({"id": f"le-{i}", "task": "code", "messages": [
            {"role": "user", "content": f"request le-{i}: go"}]}).encode()) for i in range(5)]
        h.produce(topics["requests"], reqs)
        env = dict(KEYS, SY_TEST_GROUP=group, SY_TEST_DEBUG=debug)
        h.start_worker(cfg, POLICY, env=env)
        res = h.read(topics["results"], lambda ms: len(ms) >= 5, timeout=60)
        t.ok(len(res) == 5, f"a worker with 2000- and 4096-byte ${{ENV}} values serves ({len(res)})")
        evs = events(h)
        t.ok(not any(e.get("level") == "error" for e in evs),
             f"the 4096-byte debug value is taken whole (cut, it is not a debug context): "
             f"{[e['msg'][:120] for e in evs if e.get('level') == 'error'][:2]}")
        deadline = time.time() + 20
        committed = None
        while time.time() < deadline:
            committed, ends = h.committed(group, topics["requests"])
            if committed == ends:
                break
            time.sleep(0.3)
        t.ok(committed == [5], f"offsets are committed under exactly the 2000-byte group id ({committed})")
        prefix, _ = h.committed(group[:1023], topics["requests"])
        t.ok(prefix == [-1001], f"nothing under a shortened group id ({prefix})")
        t.ok(h.stop_worker() == 0, "exits 0")
    finally:
        h.close()


def main():
    t = Checks()
    test_closed_port(t)
    test_misspelt_topic(t)
    test_create_missing(t)
    test_long_env_values(t)
    return t.summary()


if __name__ == "__main__":
    sys.exit(main())
