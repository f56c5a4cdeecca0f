"""systemd's service protocol (Type=notify), through real processes: the
test plays systemd with a notify socket of its own (AF_UNIX datagrams at a
temporary path, NOTIFY_SOCKET naming it) and runs the worker against the
mock cluster and the fake provider.

1. READY=1 comes once, and only after the worker logged partitions_assigned
   (the log line is on disk when the datagram arrives: the worker writes
   the line, then notifies); WATCHDOG=1 comes again and again from the
   loop (WATCHDOG_USEC=2 s, WATCHDOG_PID unset); no STOPPING=1 before the
   signal; after SIGTERM, STOPPING=1 comes while the worker is still
   running (a call in flight holds the drain open); exit 0.
2. WATCHDOG_PID naming another process: the watchdog is not for this
   worker (sd_watchdog_enabled's rule), so READY and STOPPING come and no
   WATCHDOG=1 ever does.
3. NOTIFY_SOCKET naming a path where nothing listens: every notification
   fails, the worker still serves and exits 0, and the failures are logged
   at most once per kind (the watchdog failed many times, one line says
   so)."""

import json
import os
import socket
import sys
import time
import urllib.request

sys.path.insert(0, os.path.dirname(__file__))
from harness import (TEST_KEYS as KEYS, TEST_POLICY as POLICY, Checks, Harness,  # noqa: E402
                     json_lines)


def events(h):
    return json_lines(h.worker_log)


def logged(h, name):
    return [e for e in events(h) if e.get("event") == name]


class NotifySocket:
    """The test's side of NOTIFY_SOCKET: each datagram is a list of
    KEY=VALUE lines, kept with the worker's state when it arrived."""

    def __init__(self, directory):
        self.path = os.path.join(directory, "notify.sock")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.sock.settimeout(0.2)
        self.got = []  # (fields dict, worker running, partitions_assigned logged)

    def pump(self, h, until, timeout=60):
        """Receives until until(self.got) or timeout; True if until held."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            if until(self.got):
                return True
            try:
                data = self.sock.recv(4096)
            except socket.timeout:
                continue
            # read the worker's state at once: the datagram was sent after
            # whatever it had written to its log by then
            running = h.worker.poll() is None
            assigned = bool(logged(h, "partitions_assigned"))
            fields = dict(l.split("=", 1) for l in data.decode().split("\n") if "=" in l)
            self.got.append((fields, running, assigned))
        return until(self.got)

    def count(self, key):
        return sum(1 for f, _, _ in self.got if key in f)

    def close(self):
        self.sock.close()


def topics_for(prefix):
    return {"requests": f"{prefix}.requests", "results": f"{prefix}.results",
            "costs": f"{prefix}.costs", "dead_letter": f"{prefix}.dlq"}


def start(h, prefix, notify_env):
    topics = topics_for(prefix)
    cfg = h.write_config(f"{prefix}-{os.getpid()}", topics)
    with open(cfg) as f:
        doc = json.load(f)
    doc["metrics"] = {"listen": "127.0.0.1:0"}
    with open(cfg, "w") as f:
        json.dump(doc, f)
    env = dict(KEYS)
    env.update(notify_env)
    os.environ.pop("WATCHDOG_PID", None)
    os.environ.pop("WATCHDOG_USEC", None)
    os.environ.pop("NOTIFY_SOCKET", None)
    return topics, h.start_worker(cfg, POLICY, env=env)


def jobs_in_flight(addr):
    try:
        with urllib.request.urlopen(f"http://{addr}/metrics", timeout=5) as r:
            for line in r.read().decode().splitlines():
                if line.startswith("switchyard_jobs_in_flight "):
                    return float(line.split()[1])
    except OSError:
        pass
    return 0


def ready_then_stopping(t):
    topics = topics_for("sdn1")
    h = Harness({v: 2 for v in topics.values()})
    ns = NotifySocket(h.dir)
    try:
        _, w = start(h, "sdn1", {"NOTIFY_SOCKET": ns.path, "WATCHDOG_USEC": "2000000"})
        t.ok(ns.pump(h, lambda g: any("READY" in f for f, _, _ in g)), "READY=1 arrives")
        ready = [(f, a) for f, _, a in ns.got if "READY" in f]
        t.ok(ready and ready[0][0]["READY"] == "1", f"READY=1 ({ready[:1]})")
        t.ok(ready and ready[0][1],
             "READY=1 comes after the worker logged partitions_assigned, not before")
        t.ok(ready and "consumer group" in ready[0][0].get("STATUS", ""),
             f"READY carries a STATUS ({ready[:1]})")
        # pings at half of WATCHDOG_USEC: three more after READY
        n0 = ns.count("WATCHDOG")
        t.ok(ns.pump(h, lambda g: ns.count("WATCHDOG") >= n0 + 3, timeout=30),
             f"WATCHDOG=1 arrives repeatedly ({ns.count('WATCHDOG')} pings)")
        t.ok(all(f["WATCHDOG"] == "1" for f, _, _ in ns.got if "WATCHDOG" in f),
             "every ping is WATCHDOG=1")
        t.ok(len(logged(h, "notify_watchdog")) == 1, "the worker logged its watchdog period")
        # a call held 4 s by the fake provider keeps the drain open
        h.produce(topics["requests"], [("hold", json.dumps({
            "id": "hold", "task": "code",
            "messages": [{"role": "user", "content": "hold #latency=4000"}]}).encode())])
        addr = h.metrics_address()
        deadline = time.time() + 30
        while time.time() < deadline and jobs_in_flight(addr) < 1:
            ns.pump(h, lambda g: False, timeout=0.2)
        t.ok(jobs_in_flight(addr) >= 1, "a request is in flight before the signal")
        t.ok(ns.count("STOPPING") == 0, "no STOPPING=1 before the signal")
        w.send_signal(15)
        t.ok(ns.pump(h, lambda g: ns.count("STOPPING") > 0, timeout=30),
             "STOPPING=1 arrives after SIGTERM")
        stopping = [(f, running) for f, running, _ in ns.got if "STOPPING" in f]
        t.ok(stopping and stopping[0][0]["STOPPING"] == "1" and stopping[0][1],
             f"STOPPING=1 arrives while the worker still runs ({stopping[:1]})")
        t.ok(stopping and "draining" in stopping[0][0].get("STATUS", ""),
             "STOPPING carries a STATUS")
        rc = w.wait(timeout=60)
        t.ok(rc == 0, f"exit 0 after SIGTERM ({rc})")
        ns.pump(h, lambda g: False, timeout=0.5)  # whatever is left in the queue
        t.ok(ns.count("READY") == 1, f"READY=1 is sent once ({ns.count('READY')})")
        t.ok(not logged(h, "notify_failed"), "no notification failed")
    finally:
        ns.close()
        h.close()


def watchdog_for_another_pid(t):
    topics = topics_for("sdn2")
    h = Harness({v: 1 for v in topics.values()})
    ns = NotifySocket(h.dir)
    try:
        # pid 1 is never the worker: the watchdog is someone else's
        _, w = start(h, "sdn2", {"NOTIFY_SOCKET": ns.path, "WATCHDOG_USEC": "200000",
                                 "WATCHDOG_PID": "1"})
        t.ok(ns.pump(h, lambda g: ns.count("READY") > 0), "WATCHDOG_PID elsewhere: READY=1")
        w.send_signal(15)
        t.ok(ns.pump(h, lambda g: ns.count("STOPPING") > 0), "WATCHDOG_PID elsewhere: STOPPING=1")
        rc = w.wait(timeout=60)
        ns.pump(h, lambda g: False, timeout=0.5)
        t.ok(rc == 0, f"WATCHDOG_PID elsewhere: exit 0 ({rc})")
        # READY needs ~3 s of joining: at 100 ms a ping would have come many times
        t.ok(ns.count("WATCHDOG") == 0 and not logged(h, "notify_watchdog"),
             f"WATCHDOG_PID elsewhere: no ping ({ns.count('WATCHDOG')})")
    finally:
        ns.close()
        h.close()


def nobody_listens(t):
    topics = topics_for("sdn3")
    h = Harness({v: 1 for v in topics.values()})
    try:
        gone = os.path.join(h.dir, "nobody.sock")
        _, w = start(h, "sdn3", {"NOTIFY_SOCKET": gone, "WATCHDOG_USEC": "200000"})
        t.ok(h.wait_log("partitions_assigned"), "no listener: the worker joins its group")
        deadline = time.time() + 30
        while time.time() < deadline and not any("READY" in e.get("msg", "")
                                                 for e in logged(h, "notify_failed")):
            time.sleep(0.1)
        rc = h.stop_worker()
        t.ok(rc == 0, f"no listener: exit 0 ({rc})")
        fails = logged(h, "notify_failed")
        kinds = [e["msg"].split()[2] for e in fails]
        print("notify_failed lines:", kinds)
        t.ok(kinds.count("READY") == 1, f"no listener: READY's failure logged once ({kinds})")
        t.ok(kinds.count("STOPPING") == 1, f"no listener: STOPPING's failure logged ({kinds})")
        t.ok(kinds.count("WATCHDOG") == 1, f"no listener: WATCHDOG's failures logged once ({kinds})")
        # the pings ran from the watchdog's start to the stop: many failures, one line
        wd = logged(h, "notify_watchdog")
        stop = logged(h, "stopping")
        ran_ms = stop[0]["ts_ms"] - wd[0]["ts_ms"] if wd and stop else 0
        t.ok(ran_ms >= 3 * 100, f"no listener: the watchdog pinged (and failed) "
             f"{ran_ms // 100} times, each after 100 ms")
    finally:
        h.close()


def main():
    t = Checks()
    ready_then_stopping(t)
    watchdog_for_another_pid(t)
    nobody_listens(t)
    return t.summary()


if __name__ == "__main__":
    sys.exit(main())
