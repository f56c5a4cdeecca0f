#!/usr/bin/python3
"""The cases of tests/unit/test_costreport.c: for each, NAME.jsonl (a "#by
COLUMNS" line, then one cost record, or a bad one, per line) and
NAME.expected.json, the totals worked out here by an independent reference
in Python (de-duplicate on call_id, a settled record wins over a reserved
one, sum). Run it from this directory to rewrite the files; review the
difference before committing."""

import datetime
import json

CATS = ["input", "output", "cache_read", "cache_write", "reasoning", "cache_write_1h"]
ZERO = {"input": 0, "output": 0, "cache_read": 0, "cache_write": 0, "reasoning": 0}
DAY = 1764028800000  # 2025-11-25T00:00:00Z


def rec(call, cost, ts=1764064800000, tenant="acme", task="chat", model="mini",
        provider="openai", usage=None, kind=None, reserved=None, metadata=None, trunc=False):
    r = {"version": 1, "id": f"req-{call}", "call_id": "0190f3a2-b4c0-7000-8000-%012d" % call,
         "attempt": 1, "task": task, "model": model, "provider": provider,
         "provider_model": model + "-1", "status": "ok",
         "usage": usage or {"input": 100, "output": 10, "cache_read": 0, "cache_write": 0,
                            "reasoning": 0},
         "prices_nusd_per_mtok": {c: 1 for c in CATS[:5]},
         "cost_nusd": cost, "budget_nusd": 10**9, "ts_ms": ts, "worker": "w-1"}
    if tenant is not None:
        r["tenant"] = tenant
    if kind:
        r["kind"] = kind
    if reserved is not None:
        r["reserved_nusd"] = reserved
    if metadata is not None:
        r["metadata"] = metadata
    if trunc:
        r["metadata_truncated"] = True
    return json.dumps(r, separators=(",", ":"))


def reserved(call, amount, **kw):
    return rec(call, 0, kind="reserved", reserved=amount, usage=ZERO, **kw)


def changed(line, **fields):
    r = json.loads(line)
    r.update(fields)
    return json.dumps(r)


CASES = {
    "duplicates": ("", [rec(1, 1000), rec(1, 1000), rec(2, 2500), rec(1, 1000), rec(3, 7)]),
    "reserved-settled": ("tenant", [
        reserved(1, 90000), rec(1, 1234, kind="settled"),
        rec(2, 555), reserved(2, 7000),  # settled first (no kind: an older worker's)
        reserved(3, 40000, tenant="beta"),
        rec(3, 999999999, tenant="beta", kind="settled",
            usage={"input": 5, "output": 6, "cache_read": 7, "cache_write": 8, "reasoning": 9,
                   "cache_write_1h": 10})]),
    "reserved-only": ("model", [
        reserved(1, 123456789, model="opus"), reserved(1, 123456789, model="opus"),
        reserved(2, 1, model="opus"), reserved(3, 500, model="mini"),
        rec(4, 42, model="mini", kind="settled")]),
    "metadata-keys": ("metadata.batch,metadata.n", [
        rec(1, 10, metadata={"batch": "b-1", "n": 1}),
        rec(2, 20, metadata={"batch": "b-1", "n": 1}),
        rec(3, 30, metadata={"batch": "b-1", "n": "1"}),
        rec(4, 40, metadata={"batch": "b-2", "n": {"y": 2, "x": [1, "a"]}}),
        rec(5, 50, metadata={"other": "x"}),
        rec(6, 60),
        rec(7, 70, trunc=True),
        rec(8, 80, metadata={"batch": None, "n": True})]),
    "days-across-midnight": ("day", [
        rec(1, 1, ts=DAY - 1), rec(2, 2, ts=DAY), rec(3, 4, ts=DAY + 86400000 - 1),
        rec(4, 8, ts=DAY + 86400000), rec(5, 16, ts=0),
        # reserved before midnight, settled after: the settled record's day
        reserved(6, 999, ts=DAY - 5), rec(6, 32, ts=DAY + 5, kind="settled"),
        # an open reservation stays on its own day
        reserved(7, 64, ts=DAY - 5)]),
    "missing-tenant": ("tenant,task", [
        rec(1, 100, tenant=None, task="chat"), rec(2, 200, tenant=None, task="code"),
        rec(3, 400, tenant="", task="chat"), rec(4, 800, tenant="zeta"),
        rec(5, 1600, tenant="Acme"), rec(6, 3200, tenant="acme")]),
    "all-columns": ("provider,model,task,tenant,day", [
        rec(1, 11, provider="anthropic", model="opus", task="plan"),
        rec(2, 13, provider="openai", model="mini"),
        rec(3, 17, provider="anthropic", model="haiku", task="plan"),
        rec(4, 19, provider="anthropic", model="opus", task="plan", ts=DAY + 86400000 * 40)]),
    "bad-records": ("", [
        "not json at all", "[1,2,3]", "{}",
        rec(1, 5).replace('"call_id"', '"callid"'),
        changed(rec(2, 5), usage={"input": 1, "tokens": 2}),
        rec(3, -5), rec(4, 5, kind="maybe"), rec(5, 5, kind="reserved"),
        changed(rec(6, 5), version=2), changed(rec(7, 5), cost_nusd=5.0),
        changed(rec(8, 5), tenant=None), '{"call_id":"x","call_id":"y"}',
        rec(9, 5, metadata="a string"),
        rec(10, 1000), rec(10, 1000)]),
}


def is_cost_record(r):
    return (isinstance(r, dict) and r.get("version") == 1 and isinstance(r.get("call_id"), str)
            and r["call_id"] != ""
            and all(isinstance(r.get(k), str) for k in ("task", "model", "provider"))
            and ("tenant" not in r or isinstance(r["tenant"], str))
            and ("metadata" not in r or isinstance(r["metadata"], dict))
            and type(r.get("cost_nusd")) is int and r["cost_nusd"] >= 0
            and type(r.get("ts_ms")) is int and r["ts_ms"] >= 0
            and r.get("kind", "settled") in ("settled", "reserved")
            and (r.get("kind") != "reserved" or type(r.get("reserved_nusd")) is int)
            and isinstance(r.get("usage"), dict)
            and all(k in CATS and type(v) is int and v >= 0 for k, v in r["usage"].items()))


def loads_strict(line):
    def no_duplicates(pairs):
        keys = [k for k, _ in pairs]
        if len(keys) != len(set(keys)):
            raise ValueError("duplicate key")
        return dict(pairs)
    return json.loads(line, object_pairs_hook=no_duplicates)


def reference(by, lines):
    calls, records, bad = {}, {}, 0
    for line in lines:
        try:
            r = loads_strict(line)
        except ValueError:
            bad += 1
            continue
        if not is_cost_record(r):
            bad += 1
            continue
        c = r["call_id"]
        records[c] = records.get(c, 0) + 1
        if c not in calls or (r.get("kind", "settled") == "settled"
                              and calls[c].get("kind", "settled") != "settled"):
            calls[c] = r
    cols = [b for b in by.split(",") if b]

    def value(r, col):
        if col == "day":
            return datetime.datetime.fromtimestamp(
                r["ts_ms"] // 1000, datetime.timezone.utc).strftime("%Y-%m-%d")
        if col.startswith("metadata."):
            v = r.get("metadata", {}).get(col[9:])
            if v is None:
                return None
            return v if isinstance(v, str) else json.dumps(v, separators=(",", ":"),
                                                           sort_keys=True)
        return r.get(col)

    def zero():
        return {"records": 0, "calls": 0, "cost_nusd": 0, "usage": {c: 0 for c in CATS},
                "open_reservations": 0, "reserved_nusd": 0}

    groups, total = {}, zero()
    for c, r in calls.items():
        k = tuple(value(r, col) for col in cols)
        for t in [total] + ([groups.setdefault(k, zero())] if cols else []):
            t["records"] += records[c]
            if r.get("kind", "settled") == "settled":
                t["calls"] += 1
                t["cost_nusd"] += r["cost_nusd"]
                for u, v in r["usage"].items():
                    t["usage"][u] += v
            else:
                t["open_reservations"] += 1
                t["reserved_nusd"] += r["reserved_nusd"]

    def order(k):  # absent first, then bytewise
        return [(0, b"") if v is None else (1, v.encode()) for v in k]
    return {"by": cols,
            "groups": [dict(key=dict(zip(cols, k)), **groups[k]) for k in sorted(groups, key=order)],
            "total": total, "bad_records": bad}


if __name__ == "__main__":
    for name, (by, lines) in CASES.items():
        with open(name + ".jsonl", "w") as f:
            f.write("#by " + by + "\n")
            for line in lines:
                f.write(line + "\n")
        with open(name + ".expected.json", "w") as f:
            json.dump(reference(by, lines), f, indent=1)
            f.write("\n")
