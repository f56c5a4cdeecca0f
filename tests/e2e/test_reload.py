"""SIGHUP reloads the policy without stalling the loop (issue 7, item 6).

A policy of several MB (150,000 models) is parsed on reload's own thread:
/healthz keeps answering while it loads (answers arrive before the worker
logs policy_reloaded), the new policy is taken (a request routed by it is
answered), and a policy with an error is refused with its file:line:column
while the old one stays.
"""

import json
import os
import shutil
import sys
import threading
import time
import urllib.request

sys.path.insert(0, os.path.dirname(__file__))
from harness import TEST_KEYS as KEYS, TEST_POLICY as POLICY, Checks, Harness  # noqa: E402


def get(url, timeout=5):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.status, r.read().decode()


def events(path, name):
    with open(path) as f:
        return [json.loads(l) for l in f if f'"event":"{name}"' in l]


def main():
    t = Checks()
    topics = {"requests": "rl.requests", "results": "rl.results", "costs": "rl.costs",
              "dead_letter": "rl.dlq"}
    h = Harness({v: 1 for v in topics.values()}, fake_args=["--latency-ms", "5"])
    try:
        cfg = h.write_config(f"rl-{os.getpid()}", topics)
        with open(cfg) as f:
            c = json.load(f)
        c["metrics"] = {"listen": "127.0.0.1:0"}
        with open(cfg, "w") as f:
            json.dump(c, f)
        policy = os.path.join(h.dir, "policy.yaml")
        shutil.copy(POLICY, policy)
        w = h.start_worker(cfg, policy, env=KEYS)
        addr = h.metrics_address()
        t.ok(addr is not None and h.wait_log("partitions_assigned"), "the worker is up")

        with open(POLICY) as f:
            base = f.read()
        big = base.replace("routes:", "  bulk: &bulk { provider: openai, model: gpt-4.1-mini, "
                           "price: { input: 0.4, output: 1.6 } }\n"
                           + "".join(f"  extra{i}: *bulk\n" for i in range(150000))
                           + "routes:\n  bulkroute: [extra149999]", 1)
        with open(policy + ".new", "w") as f:
            f.write(big)
        os.replace(policy + ".new", policy)
        answers, stop = [], threading.Event()

        def poll():
            while not stop.is_set():
                try:
                    code, _ = get(f"http://{addr}/healthz", timeout=10)
                    answers.append((time.time(), code))
                except OSError:
                    answers.append((time.time(), 0))
                time.sleep(0.005)

        th = threading.Thread(target=poll)
        th.start()
        time.sleep(0.2)
        sent = time.time()
        w.send_signal(1)  # SIGHUP
        deadline = time.time() + 60
        while time.time() < deadline and not events(h.worker_log, "policy_reloaded"):
            time.sleep(0.02)
        stop.set()
        th.join()
        done = events(h.worker_log, "policy_reloaded")
        t.ok(len(done) == 1 and "150" in done[0]["msg"],
             f"the big policy is reloaded ({done[0]['msg'] if done else 'no policy_reloaded'})")
        if done:
            end = done[0]["ts_ms"] / 1000
            during = [a for a in answers if sent < a[0] < end and a[1] == 200]
            print(f"reload took {end - sent:.2f} s; /healthz answered {len(during)} times "
                  "meanwhile")
            t.ok(len(during) >= 3, f"/healthz answers while the policy loads ({len(during)} "
                 f"answers in {end - sent:.2f} s)")
        t.ok(all(code == 200 for _, code in answers), "every /healthz probe got 200")

        h.produce(topics["requests"], [("rl-1", json.dumps({
            "id": "rl-1", "task": "bulkroute",
            "messages": [{"role": "user", "content": "hi"}]}).encode())])
        res = h.read(topics["results"], lambda ms: len(ms) >= 1, timeout=30)
        t.ok(res and json.loads(res[0][1]).get("model") == "extra149999",
             "a request is routed by the new policy")

        with open(policy, "w") as f:
            f.write(base.replace("routes:", "routes:\n  broken: [nosuchmodel]", 1))
        w.send_signal(1)
        deadline = time.time() + 20
        while time.time() < deadline and not events(h.worker_log, "policy_reload_failed"):
            time.sleep(0.02)
        time.sleep(0.2)
        failed = events(h.worker_log, "policy_reload_failed")
        t.ok(any("policy.yaml:" in e["msg"] and "nosuchmodel" in e["msg"] for e in failed),
             f"a bad policy is refused with its position ({[e['msg'] for e in failed][:1]})")
        _, text = get(f"http://{addr}/metrics")
        t.ok('switchyard_policy_reloads_total{result="ok"} 1' in text
             and 'switchyard_policy_reloads_total{result="failed"} 1' in text,
             "the metrics count one reload of each kind")
        t.ok(h.stop_worker() == 0, "exit 0")
    finally:
        h.close()
    return t.summary()


if __name__ == "__main__":
    sys.exit(main())
