"""Request-reply as Spring Kafka does it (issue 9, item 4).

Requests are produced with the headers exactly as Spring Kafka's
ReplyingKafkaTemplate sends them (its sendAndReceive, checked against
spring-kafka's sources): kafka_replyTopic holds the reply topic's UTF-8
bytes, kafka_correlationId the 16 raw bytes of a random UUID (its most
significant long first, which is Python's uuid.bytes), kafka_replyPartition
(only when the template is pinned to one partition) a 4-byte big-endian
int; plus a W3C trace context (traceparent, tracestate) as tracing
libraries send it.

- A request naming an allowed reply topic gets its result there, keyed by
  its id, with kafka_correlationId identical byte for byte and traceparent
  and tracestate copied; its cost record, on the costs topic, carries the
  same headers.
- A request naming a topic not on reply.reply_topics gets its result on the
  results topic, still with its headers, and the worker logs
  reply_topic_refused naming the topic; nothing goes to that topic.
- kafka_replyPartition does not stop the reply (the template listens on the
  whole topic unless pinned: README).
- A request without headers: a result without headers, on the results topic.
- A header over 1 KiB is not copied (reply_header_skipped), the others are.
- A reply topic that refuses the result for good (not authorized) takes the
  existing replacement: a dead letter result_undeliverable that keeps the
  request's headers.
- Nothing is lost: every request has exactly one result or dead letter, and
  every offset is committed.
"""

import json
import os
import struct
import sys
import time
import urllib.request
import uuid

sys.path.insert(0, os.path.dirname(__file__))
from harness import TEST_KEYS as KEYS, TEST_POLICY as POLICY, Checks, Harness, bills  # noqa: E402

from confluent_kafka import Producer  # noqa: E402

TOPICS = {"requests": "rr.requests", "results": "rr.results", "costs": "rr.costs",
          "dead_letter": "rr.dlq"}
REPLIES = "rr.replies"   # on the allow-list
REFUSED = "rr.elsewhere"  # named by a request, not on the allow-list
TRACEPARENT = b"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
TRACESTATE = b"rojo=00f067aa0ba902b7,congo=t61rcWkgMzE"


def request(rid, content="hello", **extra):
    body = {"id": rid, "task": "code", "messages": [{"role": "user", "content": content}]}
    body.update(extra)
    return json.dumps(body).encode()


def spring_headers(reply_topic, correlation, partition=None):
    """The headers ReplyingKafkaTemplate.sendAndReceive adds, in its order
    (reply topic, reply partition when pinned, then the correlation id),
    after the caller's own (here a trace context)."""
    h = [("traceparent", TRACEPARENT), ("tracestate", TRACESTATE),
         ("kafka_replyTopic", reply_topic.encode("utf-8"))]
    if partition is not None:
        h.append(("kafka_replyPartition", struct.pack(">i", partition)))
    h.append(("kafka_correlationId", correlation.bytes))
    return h


def produce(bootstrap, topic, records):
    """records: (key, value, headers) produced with confluent-kafka, as the
    Java client would: headers as (name, bytes) pairs, in order."""
    p = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True})
    errors = []
    for key, value, headers in records:
        p.produce(topic, key=key.encode(), value=value, headers=headers,
                  on_delivery=lambda err, _m: err and errors.append(err))
    left = p.flush(30)
    return left == 0 and not errors


def by_key(messages):
    out = {}
    for m in messages:
        out.setdefault(m[0], []).append(m)
    return out


def hdr(headers, name):
    """Every value of `name`, in order (headers as confluent-kafka gives them)."""
    return [v for k, v in headers if k == name]


def main():
    t = Checks()
    h = Harness({TOPICS["requests"]: 2, TOPICS["results"]: 1, TOPICS["costs"]: 1,
                 TOPICS["dead_letter"]: 1, REPLIES: 3, REFUSED: 1},
                fake_args=["--latency-ms", "5"])
    group = f"reply-{os.getpid()}"
    try:
        path = h.write_config(group, TOPICS)
        with open(path) as f:
            cfg = json.load(f)
        # copy_headers left at its default: traceparent, tracestate, kafka_correlationId
        cfg["reply"] = {"reply_topics": [REPLIES]}
        cfg["metrics"] = {"listen": "127.0.0.1:0"}
        with open(path, "w") as f:
            json.dump(cfg, f, indent=1)

        ids = {name: uuid.uuid4() for name in ("allowed", "pinned", "refused", "long")}
        long_trace = b"00-" + b"f" * 1100
        records = [
            ("rr-allowed", request("rr-allowed"), spring_headers(REPLIES, ids["allowed"])),
            ("rr-pinned", request("rr-pinned"), spring_headers(REPLIES, ids["pinned"], 2)),
            ("rr-refused", request("rr-refused"), spring_headers(REFUSED, ids["refused"])),
            ("rr-plain", request("rr-plain"), None),
            ("rr-long", request("rr-long"),
             [("traceparent", long_trace), ("kafka_correlationId", ids["long"].bytes)]),
        ]
        t.ok(produce(h.bootstrap, TOPICS["requests"], records), "requests produced")
        w = h.start_worker(path, POLICY, env=KEYS, args=["--exit-when-idle", "3000"])
        addr = h.metrics_address()
        h.read(TOPICS["costs"], lambda ms: len(bills(ms)) >= 5, timeout=60)
        page = ""
        deadline = time.time() + 10
        while time.time() < deadline and 'switchyard_reply_topic_results_total 2' not in page:
            try:
                with urllib.request.urlopen(f"http://{addr}/metrics", timeout=5) as r:
                    page = r.read().decode()
            except OSError:
                break
            time.sleep(0.1)
        counts = {n: v for n, v in (l.split(" ") for l in page.splitlines()
                                    if l.startswith("switchyard_reply_"))}
        t.ok(counts == {"switchyard_reply_topic_results_total": "2",
                        "switchyard_reply_topics_refused_total": "1",
                        "switchyard_reply_headers_skipped_total": "3"},
             f"/metrics counts the replies sent, refused, and the long header skipped on the "
             f"result, the cost record and its reservation ({counts})")
        t.ok(w.wait(timeout=120) == 0, "the worker exits 0 when idle")

        replies = by_key(h.read(REPLIES, lambda ms: len(ms) >= 2, timeout=30))
        results = by_key(h.read(TOPICS["results"], lambda ms: len(ms) >= 3, timeout=30))
        costs = by_key(bills(h.read(TOPICS["costs"], lambda ms: len(bills(ms)) >= 5, timeout=30)))
        t.ok(sorted(replies) == ["rr-allowed", "rr-pinned"],
             f"the reply topic holds the two allowed requests' results ({sorted(replies)})")
        t.ok(sorted(results) == ["rr-long", "rr-plain", "rr-refused"],
             f"the results topic holds the others ({sorted(results)})")

        for name in ("allowed", "pinned"):
            rid = f"rr-{name}"
            got = replies.get(rid, [])
            if not t.ok(len(got) == 1, f"{rid}: one result on {REPLIES} ({len(got)})"):
                continue
            key, value, headers, _part, _off = got[0]
            r = json.loads(value)
            t.ok(r["id"] == rid and r["status"] == "ok", f"{rid}: an ok result ({r['status']})")
            t.ok(hdr(headers, "kafka_correlationId") == [ids[name].bytes],
                 f"{rid}: kafka_correlationId identical byte for byte "
                 f"({hdr(headers, 'kafka_correlationId')})")
            t.ok(hdr(headers, "traceparent") == [TRACEPARENT]
                 and hdr(headers, "tracestate") == [TRACESTATE],
                 f"{rid}: traceparent and tracestate copied")
            t.ok(not hdr(headers, "kafka_replyTopic") and not hdr(headers, "kafka_replyPartition"),
                 f"{rid}: the reply routing headers are not copied ({[k for k, _ in headers]})")
            c = costs.get(rid, [])
            if t.ok(len(c) == 1, f"{rid}: one cost record on the costs topic ({len(c)})"):
                ch = c[0][2]
                t.ok(hdr(ch, "kafka_correlationId") == [ids[name].bytes]
                     and hdr(ch, "traceparent") == [TRACEPARENT]
                     and hdr(ch, "tracestate") == [TRACESTATE],
                     f"{rid}: its cost record carries the same headers")

        got = results.get("rr-refused", [])
        if t.ok(len(got) == 1, f"the refused reply topic's result is on the results topic "
                               f"({len(got)})"):
            headers = got[0][2]
            t.ok(json.loads(got[0][1])["status"] == "ok", "rr-refused: an ok result")
            t.ok(hdr(headers, "kafka_correlationId") == [ids["refused"].bytes]
                 and hdr(headers, "traceparent") == [TRACEPARENT],
                 "rr-refused: still with its correlation id and trace context")
        elsewhere = h.read(REFUSED, lambda ms: False, timeout=3)
        t.ok(elsewhere == [], f"nothing is sent to the topic not on the list ({len(elsewhere)})")
        with open(h.worker_log) as f:
            log = [json.loads(line) for line in f if line.startswith("{")]
        refused = [e for e in log if e.get("event") == "reply_topic_refused"]
        t.ok(len(refused) == 1 and refused[0].get("level") in ("warn", "warning")
             and REFUSED in refused[0]["msg"] and "rr-refused" in refused[0]["msg"],
             f"reply_topic_refused is logged once, naming the request and the topic ({refused})")

        got = results.get("rr-plain", [])
        t.ok(len(got) == 1 and not got[0][2],
             f"a request without headers: a result without headers ({got and got[0][2]})")
        got = results.get("rr-long", [])
        if t.ok(len(got) == 1, "rr-long: one result"):
            t.ok(hdr(got[0][2], "traceparent") == []
                 and hdr(got[0][2], "kafka_correlationId") == [ids["long"].bytes],
                 "a traceparent over 1 KiB is not copied; the correlation id is")
        t.ok(any(e.get("event") == "reply_header_skipped" and "traceparent" in e["msg"]
                 for e in log), "reply_header_skipped is logged, naming the header")

        # the reply topic refuses for good (the next Produce fails with
        # TOPIC_AUTHORIZATION_FAILED, as a missing ACL would): the existing
        # replacement, a dead letter result_undeliverable; a budget too
        # small for any model makes the result the only output
        cid = uuid.uuid4()
        t.ok(produce(h.bootstrap, TOPICS["requests"],
                     [("rr-denied", request("rr-denied", budget_usd=1e-9),
                       spring_headers(REPLIES, cid))]), "rr-denied produced")
        t.ok(h.mock_command("push_errors 0 1 29").startswith("ok"),
             "inject TOPIC_AUTHORIZATION_FAILED")
        w = h.start_worker(path, POLICY, env=KEYS, args=["--exit-when-idle", "3000"])
        t.ok(w.wait(timeout=120) == 0, "the second worker exits 0 when idle")
        dlq = by_key(h.read(TOPICS["dead_letter"], lambda ms: len(ms) >= 1, timeout=30))
        got = dlq.get("rr-denied", [])
        if t.ok(len(got) == 1, f"the refused reply is dead-lettered once ({len(got)})"):
            headers = got[0][2]
            code = hdr(headers, "x-error-code")
            msg = b"".join(hdr(headers, "x-error-message")).decode()
            t.ok(code == [b"result_undeliverable"] and REPLIES in msg,
                 f"as result_undeliverable, naming the reply topic ({code}, {msg})")
            t.ok(hdr(headers, "kafka_correlationId") == [cid.bytes]
                 and hdr(headers, "kafka_replyTopic") == [REPLIES.encode()],
                 "the dead letter keeps the request's own headers")
        replies = by_key(h.read(REPLIES, lambda ms: len(ms) >= 2, timeout=5))
        t.ok("rr-denied" not in replies, "no result for rr-denied on the reply topic")
        t.ok(sorted(dlq) == ["rr-denied"], f"nothing else is dead-lettered ({sorted(dlq)})")

        committed, ends = h.committed(group, TOPICS["requests"])
        t.ok(sum(ends) == 6 and committed == ends,
             f"every offset is committed ({committed} vs {ends})")
    finally:
        h.close()
    return t.summary()


if __name__ == "__main__":
    sys.exit(main())
