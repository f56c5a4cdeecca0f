"""No piece of an API key leaves the worker (issue 7, item 5), through real
processes. The worker runs with keys that do not look like "sk-..." (a
Groq-shaped key for OpenAI, an AWS-secret-shaped key with '/' and '+' for
Anthropic, both from tests/data/redact/keys.txt). Every request asks the
fake provider to fail with its key echoed inside a long error message
(#fault=status:S,echo_key:N), at every offset N that puts the key across
byte 200, where the worker bounds a provider's message: every cut of each
key is tried. Then no 8-byte piece of either key may appear in any message
of the results, costs and dead-letter topics (values and headers), in the
worker's stderr, or in a /metrics scrape; and the checks are shown to be
able to see a key: the provider's own log holds the echoed keys, and the
results quote the messages that carried them."""

import json
import os
import sys
import urllib.request

sys.path.insert(0, os.path.dirname(__file__))
from harness import ROOT, TEST_POLICY as POLICY, Checks, Harness  # noqa: E402

TOPICS = {"requests": "sec.requests", "results": "sec.results", "costs": "sec.costs",
          "dead_letter": "sec.dlq"}
BOUND = 200  # bytes of a provider's message the worker quotes
# not worth retrying (fall back at once) and worth retrying (429 excluded:
# its Retry-After of 1 s would only slow the test down)
STATUSES = [401, 400, 403, 404, 422, 500, 529]


def load_keys():
    keys = {}
    with open(os.path.join(ROOT, "tests", "data", "redact", "keys.txt")) as f:
        for line in f:
            if line.startswith("#") or "\t" not in line:
                continue
            shape, key = line.rstrip("\n").split("\t", 1)
            keys[shape] = key
    return keys


def pieces(keys):
    return {k[i:i + 8].encode() for k in keys for i in range(len(k) - 7)}


def leaks(blob, all_pieces):
    """The pieces of any key found in blob (bytes)."""
    return sorted(p.decode() for p in all_pieces if p in blob)


def make_requests(keys_by_route):
    """(key, bytes) for every offset that puts each route's key across byte
    BOUND; and two invalid requests, so that the dead-letter topic is
    exercised."""
    out = []
    n = 0
    for task, key in keys_by_route.items():
        for at in range(BOUND - len(key) + 1, BOUND + 1):
            status = STATUSES[n % len(STATUSES)]
            rid = f"sec-{n:04d}"
            content = f"request {rid} #fault=status:{status},echo_key:{at}"
            out.append((rid, json.dumps({"id": rid, "task": task, "messages": [
                {"role": "user", "content": content}]}).encode()))
            n += 1
    out.append(("sec-bad-1", b'{"id":"sec-bad-1","task":'))
    out.append(("sec-bad-2", b'{"id":"sec-bad-2","task":"code","messages":[]}'))
    return out


def main():
    t = Checks()
    shapes = load_keys()
    env = {"SWITCHYARD_TEST_OPENAI_KEY": shapes["groq"],
           "SWITCHYARD_TEST_ANTHROPIC_KEY": shapes["aws secret access key"]}
    all_pieces = pieces(env.values())
    # "code" routes to OpenAI models only, "planning" starts with Anthropic's
    reqs = make_requests({"code": env["SWITCHYARD_TEST_OPENAI_KEY"],
                          "planning": env["SWITCHYARD_TEST_ANTHROPIC_KEY"]})
    valid = [k for k, v in reqs if not k.startswith("sec-bad")]
    h = Harness({v: 2 for v in TOPICS.values()})
    try:
        cfg = h.write_config(f"sec-{os.getpid()}", TOPICS)
        with open(cfg) as f:
            c = json.load(f)
        c["metrics"] = {"listen": "127.0.0.1:0"}
        # every call fails on purpose (each echoing the key): no circuit may
        # open and spare the later calls the echo this test must see redacted
        for p in c["providers"].values():
            p["circuit"] = {"failures": 1000, "failure_percent": 100, "min_calls": 100000}
        with open(cfg, "w") as f:
            json.dump(c, f)
        h.produce(TOPICS["requests"], reqs)
        h.start_worker(cfg, POLICY, env=env)
        addr = h.metrics_address()
        t.ok(addr is not None, f"the worker logs where /metrics listens ({addr})")

        res = h.read(TOPICS["results"], lambda ms: len({m[0] for m in ms}) >= len(valid))
        dlq = h.read(TOPICS["dead_letter"], lambda ms: len({m[0] for m in ms}) >= 2, timeout=30)
        cst = h.read(TOPICS["costs"], lambda ms: False, timeout=3)
        t.ok(len({m[0] for m in res}) == len(valid), f"a result for every request ({len(res)}/{len(valid)})")
        t.ok(len({m[0] for m in dlq}) == 2, f"the two invalid requests are dead letters ({len(dlq)})")

        # the test can see a key: the provider echoed them, and the results
        # quote the messages that carried them
        log = h.provider_log()
        echoed = [e for e in log if any(k in json.dumps(e.get("response")) for k in env.values())]
        t.ok(len(echoed) >= len(valid), f"the provider echoed a key in every call ({len(echoed)} of {len(log)})")
        quoted = [m for m in res if b"Incorrect API key provided" in m[1]]
        t.ok(len(quoted) == len(valid), f"every result quotes the provider's message ({len(quoted)})")

        for name, msgs in (("results", res), ("costs", cst), ("dead-letter", dlq)):
            found = set()
            for key, value, headers, _, _ in msgs:
                blob = (key or "").encode() + b"\n" + (value or b"") + b"\n" + b"\n".join(
                    k.encode() + b"=" + (v or b"") for k, v in headers)
                found.update(leaks(blob, all_pieces))
            t.ok(not found, f"no piece of a key in the {name} topic ({len(msgs)} messages; found {sorted(found)[:3]})")

        if addr:
            with urllib.request.urlopen(f"http://{addr}/metrics", timeout=10) as r:
                page = r.read()
            t.ok(b"switchyard_" in page, f"/metrics answers ({len(page)} bytes)")
            found = leaks(page, all_pieces)
            t.ok(not found, f"no piece of a key in /metrics ({found[:3]})")

        t.ok(h.stop_worker() == 0, "the worker stops cleanly")
        with open(h.worker_log, "rb") as f:
            stderr = f.read()
        t.ok(len(stderr) > 0, f"the worker wrote its log ({len(stderr)} bytes)")
        found = leaks(stderr, all_pieces)
        t.ok(not found, f"no piece of a key in the worker's stderr ({found[:3]})")
    finally:
        h.close()
    return t.summary()


if __name__ == "__main__":
    sys.exit(main())
