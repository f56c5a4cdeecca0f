"""Cost records name the price entry, its date and the tier (issue 11, item 1).

A policy whose model names an entry of a prices.yaml beside it: a short
call is billed at the base rates (price_tier 0), one whose prompt (cache
reads included) crosses the entry's threshold at the tier's rates for the
whole call (price_tier 1), each record exact and valid against
cost.schema.json with price_entry and price_date. SIGHUP re-reads the table
(a changed figure and date show on the next record); a table with an error
is refused with its file:line:column and the old prices stay.
"""

import json
import os
import sys
import time


sys.path.insert(0, os.path.dirname(__file__))
from harness import bills, schema_validator, TEST_KEYS as KEYS, Checks, Harness  # noqa: E402

TOPICS = {"requests": "pr.requests", "results": "pr.results", "costs": "pr.costs",
          "dead_letter": "pr.dlq"}
CATS = ["input", "output", "cache_read", "cache_write", "reasoning"]

TABLE = """entries:
  "anthropic/e2e":
    provider: anthropic
    model: "claude-sonnet-4-5"
    date: "{date}"
    source: "https://www.anthropic.com/pricing#api"
    price: {{input: 3, output: {output}, cache_read: 0.3, cache_write: 3.75, cache_write_1h: 6}}
    tiers:
      - {{above_input_tokens: 1000, price: {{input: 6, output: 22.5, cache_read: 0.6, cache_write: 7.5, cache_write_1h: 12}}}}
    batch_discount_percent: 50
"""
POLICY = """models:
  sonnet: { provider: anthropic, model: claude-sonnet-4-5, price: { entry: anthropic/e2e }, max_output_tokens: 64000 }
routes:
  default: [sonnet]
budget:
  default_usd: 0.5
"""
BASE = {"input": 3000000000, "output": 15000000000, "cache_read": 300000000,
        "cache_write": 3750000000, "reasoning": 15000000000}
TIER = {"input": 6000000000, "output": 22500000000, "cache_read": 600000000,
        "cache_write": 7500000000, "reasoning": 22500000000}


def events(path, name):
    with open(path) as f:
        return [json.loads(l) for l in f if f'"event":"{name}"' in l]


def main():
    t = Checks()
    cv = schema_validator("cost.schema.json")
    h = Harness({v: 1 for v in TOPICS.values()}, fake_args=["--latency-ms", "2"])
    try:
        cfg = h.write_config(f"pr-{os.getpid()}", TOPICS)
        table = os.path.join(h.dir, "prices.yaml")
        with open(table, "w") as f:
            f.write(TABLE.format(date="2026-01-15", output=15))
        policy = os.path.join(h.dir, "policy.yaml")
        with open(policy, "w") as f:
            f.write(POLICY)
        w = h.start_worker(cfg, policy, env=KEYS)
        t.ok(h.wait_log("partitions_assigned"), "the worker is up with a policy naming an entry")

        sent = [0]

        def call(rid, text):
            sent[0] += 1
            h.produce(TOPICS["requests"], [(rid, json.dumps({
                "id": rid, "task": "t", "messages": [{"role": "user", "content": text}],
                "max_tokens": 50}).encode())])
            # the settled record of the request's call (a reserved one
            # comes first: costs.reserve is on by default)
            recs = h.read(TOPICS["costs"], lambda ms: len(bills(ms)) >= sent[0], timeout=30)
            mine = [json.loads(m[1]) for m in bills(recs) if m[0] == rid]
            return mine[0] if mine else None

        def exact(rec, rates):
            want = sum(rec["usage"][c] * rates[c] for c in CATS)
            return rec["cost_nusd"] == (want + 500000) // 1000000

        short = call("pr-1", "hello there")
        t.ok(short is not None and cv.is_valid(short), f"a cost record, valid ({short})")
        t.ok(short and short.get("price_entry") == "anthropic/e2e"
             and short.get("price_date") == "2026-01-15" and short.get("price_tier") == 0,
             "a short call: price_entry, price_date, price_tier 0")
        t.ok(short and short["prices_nusd_per_mtok"] == BASE and exact(short, BASE),
             "billed exactly at the base rates")

        long = call("pr-2", "hello there #cached=5000")
        t.ok(long is not None and cv.is_valid(long), "the long call's record is valid")
        t.ok(long and long["usage"]["cache_read"] == 5000 and long.get("price_tier") == 1,
             f"a prompt over 1000 tokens with its cache reads: price_tier 1 ({long and long.get('price_tier')})")
        t.ok(long and long["prices_nusd_per_mtok"] == TIER and exact(long, TIER),
             "the whole call billed exactly at the tier's rates")

        with open(table + ".new", "w") as f:
            f.write(TABLE.format(date="2026-02-01", output=16))
        os.replace(table + ".new", table)
        w.send_signal(1)  # SIGHUP
        deadline = time.time() + 20
        while time.time() < deadline and not events(h.worker_log, "policy_reloaded"):
            time.sleep(0.02)
        t.ok(events(h.worker_log, "policy_reloaded"), "SIGHUP reloads the policy")
        after = call("pr-3", "hello again")
        rates = dict(BASE, output=16000000000, reasoning=16000000000)  # reasoning: as output
        t.ok(after and after.get("price_date") == "2026-02-01"
             and after["prices_nusd_per_mtok"] == rates and exact(after, rates),
             f"the reload re-read the table: new date and figure ({after and after.get('price_date')})")

        with open(table, "w") as f:
            f.write(TABLE.format(date="2026-02-30", output=16))
        w.send_signal(1)
        deadline = time.time() + 20
        while time.time() < deadline and not events(h.worker_log, "policy_reload_failed"):
            time.sleep(0.02)
        failed = events(h.worker_log, "policy_reload_failed")
        t.ok(any("prices.yaml:5:11: date" in e["msg"] for e in failed),
             f"a bad table is refused with its position ({[e['msg'] for e in failed][:1]})")
        kept = call("pr-4", "hello once more")
        t.ok(kept and kept.get("price_date") == "2026-02-01", "the old prices stay")
        t.ok(h.stop_worker() == 0, "exit 0")
    finally:
        h.close()
    return t.summary()


if __name__ == "__main__":
    sys.exit(main())
