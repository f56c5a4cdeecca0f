"""Every provider adapter end to end (issue 10): OpenAI, Azure OpenAI
(deployment path with api-version, and the v1 path), Anthropic, Google
Gemini and AWS Bedrock (SigV4 with a session token, and a Bedrock API key),
each through the fake provider over real HTTP in its own wire format.

For each provider the same requests go through the worker: plain chat
(usage with cached and reasoning tokens), JSON-Schema structured output,
tools, an image, a tool result turn, a 400, a 503 and a content filter. The test checks the
bytes on the results and costs topics (usage normalized by each provider's
own rule, read back from the reply the provider logged; cost equal to usage
times price to the nano-dollar; the parsed JSON; the normalized tool call;
the error codes) and what each provider received (its path, its
authentication, the request body in its own shape; OpenAI's and Azure's
against OpenAI's published OpenAPI description). Then: a request that pins
a model, a field one candidate cannot honour (skipped with `unsupported:
seed`) and one that none can (an `unsupported` error result), and rate
limits on Gemini, Bedrock and Azure answered with 429 in each one's shape:
every request is still answered, after waiting; Gemini's retryDelay (in
its body) and Azure's Retry-After are waited, by the fake's logged times;
Azure's replies carry its remaining counts (seen by a client of the
test's own)."""

import base64
import json
import os
import sys
import re
import urllib.error
import urllib.request
from fractions import Fraction

sys.path.insert(0, os.path.dirname(__file__))
from harness import ROOT, Checks, Harness, bills, metric, scrape  # noqa: E402

sys.path.insert(0, os.path.join(ROOT, "tests", "support"))
import openai_schema  # noqa: E402

TOPICS = {"requests": "prov.requests", "results": "prov.results", "costs": "prov.costs",
          "dead_letter": "prov.dlq"}
KEYS = {"SWITCHYARD_TEST_OPENAI_KEY": "oa-test-key-1234",
        "SWITCHYARD_TEST_ANTHROPIC_KEY": "an-test-key-5678",
        "SWITCHYARD_TEST_GEMINI_KEY": "ge-test-key-9012",
        "SWITCHYARD_TEST_AZURE_KEY": "az-test-key-3456",
        "SWITCHYARD_TEST_BEDROCK_KEY": "br-test-key-7890",
        "AWS_ACCESS_KEY_ID": "AKIDEXAMPLETESTKEY01",
        "AWS_SECRET_ACCESS_KEY": "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
        "AWS_SESSION_TOKEN": "FwoGZXIvYXdzEXAMPLESESSIONTOKEN/with+slash="}

# name -> (provider, api, provider model id, prices)
PRICES = {"input": 3, "output": 15, "cache_read": 0.3, "cache_write": 3.75, "reasoning": 15}
MODELS = {
    "oa": ("openai", "openai", "gpt-4.1-mini"),
    "az": ("azure", "azure", "prod-gpt4o"),
    "az1": ("azure_v1", "azure", "gpt-4o-mini"),
    "an": ("anthropic", "anthropic", "claude-sonnet-4-5"),
    "ge": ("gemini", "gemini", "gemini-2.5-flash"),
    "br": ("bedrock", "bedrock", "anthropic.claude-3-5-sonnet-20240620-v1:0"),
    "brk": ("bedrock_key", "bedrock", "amazon.nova-pro-v1:0"),
}
# limited models: one per API family whose 429s have their own shape
# requests to each limited model: one more than its rpm=3 bucket holds, so
# at least one meets a 429 and waits for the bucket (about 20 s)
RL_REQUESTS = 4
LIMITED = {"gel": ("gemini", "gemini", "gemini-2.0-flash-lite"),
           "brl": ("bedrock", "bedrock", "meta.llama3-70b-instruct-v1:0"),
           "azl": ("azure", "azure", "limited-deployment")}
# the test's own calls to the limited Azure deployment, under a key of
# their own (the fake's buckets are per key and model: the worker's stay
# untouched), to see the headers Azure sends
PROBE_KEY = "az-probe-key-0000"
PNG = base64.b64encode(bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360f8cfc0f01f0005000201a5f6"
    "45400000000049454e44ae426082")).decode()
PERSON = {"type": "object", "properties": {"name": {"type": "string"},
                                           "age": {"type": "integer"}},
          "required": ["name", "age"], "additionalProperties": False}
WEATHER = {"name": "get_weather", "description": "The weather in a city",
           "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                          "required": ["city"]}}


def write_policy(path):
    lines = ["models:"]
    for name, (prov, _, model) in {**MODELS, **LIMITED}.items():
        price = ", ".join(f"{k}: {v}" for k, v in PRICES.items())
        lines.append(f"  {name}: {{ provider: {prov}, model: \"{model}\", "
                     f"price: {{ {price} }}, max_output_tokens: 8192 }}")
    lines.append("routes:")
    for name in {**MODELS, **LIMITED}:
        lines.append(f"  t-{name}: [{name}]")
    lines += ["  seedy: [an, oa]", "  only-an: [an]", "  default: [oa]",
              "budget:", "  default_usd: 0.5", "  over_budget: downgrade",
              "  min_output_tokens: 16", "  input_bytes_per_token: 3"]
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


def requests_for(name):
    """(id, request) pairs for one model."""
    task = f"t-{name}"
    user = lambda rid, extra="": [{"role": "user", "content": f"request {rid} {extra}"}]  # noqa: E731
    out = [
        (f"{name}-plain", {"messages": user(f"{name}-plain", "#out=12 #cached=5 #reasoning=3")}),
        (f"{name}-json", {"messages": user(f"{name}-json", "a person, as JSON"),
                          "response_format": {"type": "json_schema", "json_schema": {
                              "name": "person", "schema": PERSON, "strict": True}}}),
        (f"{name}-tools", {"messages": user(f"{name}-tools", "weather in Paris? #tool=get_weather"),
                           "tools": [WEATHER]}),
        (f"{name}-image", {"messages": [{"role": "user", "content": [
            {"type": "text", "text": f"request {name}-image: what is in it?"},
            {"type": "image", "media_type": "image/png", "data": PNG}]}]}),
        (f"{name}-turn", {"tools": [WEATHER], "messages": [
            {"role": "user", "content": f"request {name}-turn: weather in Paris?"},
            {"role": "assistant", "tool_calls": [
                {"id": "call_7", "name": "get_weather", "arguments": {"city": "Paris"}}]},
            {"role": "tool", "tool_call_id": "call_7", "content": "18 C, clear"}]}),
        (f"{name}-400", {"messages": user(f"{name}-400", "#fault=status:400")}),
        (f"{name}-503", {"messages": user(f"{name}-503", "#fault=status:503")}),
        (f"{name}-filter", {"messages": user(f"{name}-filter", "#fault=content_filter")}),
    ]
    return [(rid, dict(r, id=rid, task=task)) for rid, r in out]


def expected_usage(api, reply):
    """The disjoint categories a provider's reply means, by its own rule."""
    if api in ("openai", "azure"):
        u = reply["usage"]
        cached = (u.get("prompt_tokens_details") or {}).get("cached_tokens", 0)
        reasoning = (u.get("completion_tokens_details") or {}).get("reasoning_tokens", 0)
        return {"input": u["prompt_tokens"] - cached, "cache_read": cached, "cache_write": 0,
                "output": u["completion_tokens"] - reasoning, "reasoning": reasoning}
    if api == "anthropic":
        u = reply["usage"]
        return {"input": u["input_tokens"], "cache_read": u.get("cache_read_input_tokens", 0),
                "cache_write": u.get("cache_creation_input_tokens", 0),
                "output": u["output_tokens"], "reasoning": 0}
    if api == "gemini":
        u = reply["usageMetadata"]
        cached = u.get("cachedContentTokenCount", 0)
        return {"input": u["promptTokenCount"] - cached + u.get("toolUsePromptTokenCount", 0),
                "cache_read": cached, "cache_write": 0,
                "output": u.get("candidatesTokenCount", 0),
                "reasoning": u.get("thoughtsTokenCount", 0)}
    u = reply["usage"]  # bedrock: inputTokens excludes the cache
    return {"input": u["inputTokens"], "cache_read": u.get("cacheReadInputTokens", 0),
            "cache_write": u.get("cacheWriteInputTokens", 0), "output": u["outputTokens"],
            "reasoning": 0}


def cost_nusd(usage):
    """usage x price, exactly, rounded half up to the nano-dollar."""
    total = sum(Fraction(str(PRICES[c])) * 1000 * n for c, n in usage.items())
    return int(total + Fraction(1, 2))


def calls_of(log, rid):
    """The provider calls whose body carries the request's marker."""
    return [e for e in log if e.get("body") is not None and f"request {rid}" in json.dumps(e["body"])]


def gemini_retry_delay_ms(reply):
    """RetryInfo.retryDelay ("19s", "18.734s") of a Gemini 429 body, in ms
    rounded up; None when the body has none."""
    for d in (((reply or {}).get("error") or {}).get("details") or []):
        if not isinstance(d, dict) or not str(d.get("@type")).endswith("google.rpc.RetryInfo"):
            continue
        delay = d.get("retryDelay")
        if isinstance(delay, str) and delay.endswith("s"):
            try:
                ms = Fraction(delay[:-1]) * 1000
            except ValueError:
                return None
            return -(-ms.numerator // ms.denominator)
    return None


def check_waits(t, log, name, model, delay_of, what):
    """Every 429 of `model` is honoured: the next call for the model comes
    no earlier than the wait the 429 gave (delay_of(reply) ms). Both times
    are the fake provider's own (ts_ms, whole ms of one clock, taken as
    each call arrives): an ordering of logged times, not a timing of the
    test; the 1 ms is the two truncations to whole ms."""
    calls = sorted((e for e in log if e.get("model") == model), key=lambda e: e["seq"])
    for i, e in enumerate(calls):
        if not e.get("rate_limited"):
            continue
        wait = delay_of(e.get("response"))
        after = calls[i + 1] if i + 1 < len(calls) else None
        t.ok(wait is not None and after is not None
             and after["ts_ms"] >= e["ts_ms"] + wait - 1,
             f"{name}: the next call after the 429 waited {what} ({wait} ms): "
             f"429 at {e['ts_ms']}, next at {after and after['ts_ms']}")


def azure_retry_floor_ms(reply):
    """Azure's 429 message says "Please retry after N seconds", N its
    Retry-After rounded up; its retry-after-ms (what the worker uses) is
    more than N-1 seconds. None when the message says no N."""
    msg = (((reply or {}).get("error") or {}).get("message")) or ""
    m = re.search(r"retry after (\d+) second", msg) if isinstance(msg, str) else None
    return (int(m.group(1)) - 1) * 1000 if m else None


def probe_azure(base, n):
    """n calls, one after the other, to the limited Azure deployment under
    PROBE_KEY: [(status, {header: value})], header names in lower case."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    url = f"{base}/openai/deployments/{LIMITED['azl'][2]}/chat/completions?api-version=2024-10-21"
    out = []
    for i in range(n):
        body = json.dumps({"messages": [{"role": "user", "content": f"request azl-probe{i}"}],
                           "max_tokens": 16}).encode()
        req = urllib.request.Request(url, data=body, headers={
            "api-key": PROBE_KEY, "content-type": "application/json"})
        try:
            with opener.open(req, timeout=10) as resp:
                resp.read()
                out.append((resp.status, {k.lower(): v for k, v in resp.headers.items()}))
        except urllib.error.HTTPError as err:
            err.read()
            out.append((err.code, {k.lower(): v for k, v in err.headers.items()}))
    return out


def first_call(t, log, rid):
    """The first provider call logged for request `rid`, as a list of at
    most one: a check that none was logged fails here, so the checks on
    what the provider received are never skipped silently."""
    calls = calls_of(log, rid)
    t.ok(len(calls) >= 1, f"{rid}: the provider logged a call for it ({len(calls)} calls)")
    return calls[:1]


def check_sent(t, name, api, model, e, kind):
    """What the provider received for request kind `kind` of model `name`."""
    body, headers, path = e["body"], e.get("headers", {}), e.get("path", "")
    query = e.get("query") or ""
    where = f"{name}-{kind}"
    if api == "openai":
        t.ok(path == "/v1/chat/completions" and headers.get("authorization")
             == "Bearer " + KEYS["SWITCHYARD_TEST_OPENAI_KEY"], f"{where}: OpenAI path and key")
    elif api == "azure":
        key_ok = headers.get("api-key") == KEYS["SWITCHYARD_TEST_AZURE_KEY"] \
            and "authorization" not in headers
        if name in ("az", "azl"):
            t.ok(path == f"/openai/deployments/{model}/chat/completions"
                 and "api-version=2024-10-21" in query and key_ok,
                 f"{where}: Azure deployment path, api-version and api-key ({path}?{query})")
        else:
            t.ok(path == "/openai/v1/chat/completions" and body.get("model") == model and key_ok,
                 f"{where}: Azure v1 path with the model in the body ({path})")
    elif api == "anthropic":
        t.ok(path == "/v1/messages" and headers.get("x-api-key")
             == KEYS["SWITCHYARD_TEST_ANTHROPIC_KEY"] and "anthropic-version" in headers,
             f"{where}: Anthropic path, key and version")
    elif api == "gemini":
        t.ok(path == f"/v1beta/models/{model}:generateContent" and headers.get("x-goog-api-key")
             == KEYS["SWITCHYARD_TEST_GEMINI_KEY"] and "key=" not in query,
             f"{where}: Gemini path and x-goog-api-key, no key in the URL ({path}?{query})")
    else:
        enc = urllib.request.quote(model, safe="")
        t.ok(path in (f"/model/{enc}/converse", f"/model/{model}/converse"),
             f"{where}: Bedrock Converse path ({path})")
        auth = headers.get("authorization", "")
        if name == "brk":
            t.ok(auth == "Bearer " + KEYS["SWITCHYARD_TEST_BEDROCK_KEY"],
                 f"{where}: a Bedrock API key as a bearer token")
        else:
            cred = f"Credential={KEYS['AWS_ACCESS_KEY_ID']}/"
            t.ok(auth.startswith("AWS4-HMAC-SHA256 ") and cred in auth
                 and "/us-east-1/bedrock/aws4_request" in auth and "Signature=" in auth
                 and headers.get("x-amz-security-token") == KEYS["AWS_SESSION_TOKEN"]
                 and "x-amz-date" in headers,
                 f"{where}: SigV4 with the session token ({auth[:80]})")
        t.ok(KEYS["AWS_SECRET_ACCESS_KEY"] not in json.dumps(e),
             f"{where}: the secret access key is never sent")

    if api in ("openai", "azure") and kind in ("json", "tools", "image", "turn"):
        # a deployment URL names the model: Azure's body has none, which
        # OpenAI's description requires; the rest must match it
        errs = openai_schema.validate("CreateChatCompletionRequest",
                                      body if "model" in body else dict(body, model=model))
        t.ok(not errs, f"{where}: the body is a valid CreateChatCompletionRequest {errs[:2]}")
    dump = json.dumps(body)
    if kind == "json":
        if api in ("openai", "azure"):
            rf = body.get("response_format", {})
            t.ok(rf.get("type") == "json_schema" and rf["json_schema"]["schema"] == PERSON,
                 f"{where}: response_format carries the schema")
        elif api == "gemini":
            g = body.get("generationConfig", {})
            t.ok(g.get("responseMimeType") == "application/json"
                 and (g.get("responseJsonSchema") or g.get("responseSchema")),
                 f"{where}: responseMimeType and the schema")
        elif api == "anthropic":
            t.ok(body.get("tool_choice", {}).get("type") == "tool"
                 and any(tl.get("input_schema") == PERSON for tl in body.get("tools", [])),
                 f"{where}: a forced tool with the schema")
        else:
            tc = body.get("toolConfig", {})
            t.ok("tool" in tc.get("toolChoice", {}) and any(
                tl["toolSpec"]["inputSchema"]["json"] == PERSON for tl in tc.get("tools", [])),
                f"{where}: a forced tool with the schema")
    elif kind == "tools":
        t.ok("get_weather" in dump and '"city"' in dump, f"{where}: the tool is declared")
    elif kind == "image":
        shapes = {"openai": "data:image/png;base64," + PNG, "azure": "data:image/png;base64," + PNG,
                  "anthropic": '"data": "%s"' % PNG, "gemini": PNG, "bedrock": PNG}
        t.ok(shapes[api] in dump, f"{where}: the image reached the provider")
    elif kind == "turn":
        t.ok("18 C, clear" in dump and "call_7" in dump or (api == "gemini" and "18 C, clear" in dump
                                                          and "get_weather" in dump),
             f"{where}: the tool call and its result reached the provider")


def main():
    t = Checks()
    limits = ["--limit", "gemini-2.0-flash-lite:rpm=3", "--limit",
              "meta.llama3-70b-instruct-v1:0:rpm=3", "--limit", "limited-deployment:rpm=3,headers=1"]
    h = Harness({v: 2 for v in TOPICS.values()}, fake_args=limits)
    try:
        base = f"http://{h.provider_addr}"
        off = {"failures": 1000, "failure_percent": 100, "min_calls": 100000}
        common = {"timeout_ms": 5000, "circuit": off}
        providers = {
            "openai": {"type": "openai", "base_url": base + "/v1",
                       "api_key_env": "SWITCHYARD_TEST_OPENAI_KEY", **common},
            "anthropic": {"type": "anthropic", "base_url": base,
                          "api_key_env": "SWITCHYARD_TEST_ANTHROPIC_KEY", **common},
            "gemini": {"type": "gemini", "base_url": base,
                       "api_key_env": "SWITCHYARD_TEST_GEMINI_KEY", **common},
            "bedrock": {"type": "bedrock", "base_url": base, "region": "us-east-1", **common},
            "bedrock_key": {"type": "bedrock", "base_url": base, "region": "eu-west-1",
                            "auth": "bearer", "api_key_env": "SWITCHYARD_TEST_BEDROCK_KEY",
                            **common},
            "azure": {"type": "azure", "base_url": base, "api_version": "2024-10-21",
                      "api_key_env": "SWITCHYARD_TEST_AZURE_KEY", **common},
            "azure_v1": {"type": "azure", "base_url": base,
                         "api_key_env": "SWITCHYARD_TEST_AZURE_KEY", **common},
        }
        cfg = h.write_config(f"prov-{os.getpid()}", TOPICS, providers=providers,
                             limits={"commit_interval_ms": 500, "backoff_initial_ms": 20,
                                     "backoff_max_ms": 200, "shutdown_grace_ms": 10000,
                                     "retries_per_candidate": 2})
        with open(cfg) as f:
            c = json.load(f)
        c["metrics"] = {"listen": "127.0.0.1:0"}
        with open(cfg, "w") as f:
            json.dump(c, f)
        policy = os.path.join(h.dir, "policy.yaml")
        write_policy(policy)

        reqs = []
        for name in MODELS:
            reqs += requests_for(name)
        reqs += [("pin-ge", {"id": "pin-ge", "task": "t-oa", "model": "ge", "messages": [
                     {"role": "user", "content": "request pin-ge"}]}),
                 ("pin-list", {"id": "pin-list", "task": "t-oa", "model": ["nope-not-a-model"],
                               "messages": [{"role": "user", "content": "request pin-list"}]}),
                 ("seed-fallback", {"id": "seed-fallback", "task": "seedy", "seed": 7, "messages": [
                     {"role": "user", "content": "request seed-fallback"}]}),
                 ("seed-none", {"id": "seed-none", "task": "only-an", "seed": 7, "messages": [
                     {"role": "user", "content": "request seed-none"}]})]
        for name in LIMITED:
            for i in range(RL_REQUESTS):
                rid = f"{name}-rl{i}"
                reqs.append((rid, {"id": rid, "task": f"t-{name}", "messages": [
                    {"role": "user", "content": f"request {rid}"}]}))
        ids = {rid for rid, _ in reqs}
        h.produce(TOPICS["requests"], [(rid, json.dumps(r).encode()) for rid, r in reqs])
        h.start_worker(cfg, policy, env=KEYS)
        addr = h.metrics_address()
        res = h.read(TOPICS["results"], lambda ms: {m[0] for m in ms} >= ids, timeout=240)
        results = {}
        for m in res:
            results.setdefault(m[0], json.loads(m[1]))
        t.ok(set(results) >= ids, f"a result for every request ({len(set(results) & ids)}/{len(ids)});"
             f" missing {sorted(ids - set(results))[:8]}")
        costs = bills(h.read(TOPICS["costs"], lambda ms: False, timeout=3))
        cost_by_id = {}
        for m in costs:
            cost_by_id.setdefault(m[0], []).append(json.loads(m[1]))
        dlq = h.read(TOPICS["dead_letter"], lambda ms: False, timeout=1)
        t.ok(not dlq, f"no request was dead-lettered ({[m[0] for m in dlq][:5]})")
        log = h.provider_log()
        text = scrape(addr) if addr else ""

        for name, (prov, api, model) in MODELS.items():
            r = results.get(f"{name}-plain", {})
            calls = calls_of(log, f"{name}-plain")
            t.ok(r.get("status") == "ok" and r.get("provider") == prov and len(calls) == 1,
                 f"{name}: plain chat answered by {prov} in one call ({r.get('error')})")
            # the usage checks fail, not skip, when the logged reply is missing
            reply = calls[0].get("response") if calls else None
            t.ok(isinstance(reply, dict), f"{name}: the provider logged its reply to the plain chat")
            try:
                want = expected_usage(api, reply)
            except (KeyError, TypeError, AttributeError):
                want = None
            t.ok(want is not None and r.get("usage") == want,
                 f"{name}: usage by {api}'s rule {r.get('usage')} == {want}")
            t.ok(want is not None and want["cache_read"] > 0
                 and (api not in ("openai", "azure", "gemini") or want["reasoning"] > 0),
                 f"{name}: the provider reported cached (and reasoning) tokens: {want}")
            t.ok(want is not None and r.get("cost_nusd") == cost_nusd(want),
                 f"{name}: cost {r.get('cost_nusd')} == usage x price")
            recs = cost_by_id.get(f"{name}-plain", [])
            t.ok(want is not None and len(recs) >= 1 and recs[0]["usage"] == want
                 and recs[0]["cost_nusd"] == r.get("cost_nusd"),
                 f"{name}: the cost record says the same ({recs[:1]})")
            for e in first_call(t, log, f"{name}-plain"):
                check_sent(t, name, api, model, e, "plain")

            r = results.get(f"{name}-json", {})
            out = r.get("output", {})
            t.ok(r.get("status") == "ok" and isinstance(out.get("json"), dict)
                 and out["json"] == json.loads(out.get("text", "null"))
                 and set(out["json"]) >= {"name", "age"} and not out.get("tool_calls"),
                 f"{name}: structured output parsed on the result ({out})")
            for e in first_call(t, log, f"{name}-json"):
                check_sent(t, name, api, model, e, "json")

            r = results.get(f"{name}-tools", {})
            out = r.get("output", {})
            tc = out.get("tool_calls") or [{}]
            t.ok(r.get("status") == "ok" and out.get("finish_reason") == "tool_calls"
                 and tc[0].get("name") == "get_weather" and isinstance(tc[0].get("arguments"), dict)
                 and "city" in tc[0]["arguments"] and isinstance(tc[0].get("id"), str) and tc[0]["id"],
                 f"{name}: the tool call in the normalized shape ({out})")
            for e in first_call(t, log, f"{name}-tools"):
                check_sent(t, name, api, model, e, "tools")

            for kind in ("image", "turn"):
                r = results.get(f"{name}-{kind}", {})
                t.ok(r.get("status") == "ok", f"{name}: the {kind} request answered ({r.get('error')})")
                for e in first_call(t, log, f"{name}-{kind}"):
                    check_sent(t, name, api, model, e, kind)

            r = results.get(f"{name}-400", {})
            err = r.get("error", {})
            t.ok(r.get("status") == "error" and err.get("code") == "provider_rejected"
                 and len(r.get("attempts", [])) == 1 and r["attempts"][0].get("http_status") == 400
                 and r["attempts"][0].get("error", {}).get("message", "").startswith("HTTP 400: ")
                 and len(r["attempts"][0]["error"]["message"]) > len("HTTP 400: (no message)"),
                 f"{name}: a 400 in {api}'s shape is a provider_rejected result quoting it ({err})")
            r = results.get(f"{name}-503", {})
            t.ok(r.get("status") == "error" and r.get("error", {}).get("code") == "candidates_exhausted"
                 and len(r.get("attempts", [])) == 3
                 and all(a.get("http_status") == 503 for a in r["attempts"]),
                 f"{name}: a 503 is retried, then candidates_exhausted ({r.get('error')})")

            r = results.get(f"{name}-filter", {})
            if api == "azure":  # Azure refuses a filtered prompt with a 400 of its own
                att = r.get("attempts", [{}])
                t.ok(r.get("status") == "error" and r.get("error", {}).get("code") == "provider_rejected"
                     and len(att) == 1 and att[0].get("error", {}).get("code") == "content_filter",
                     f"{name}: Azure's content filter is not retried: provider_rejected ({r.get('error')})")
            else:
                t.ok(r.get("status") == "ok"
                     and r.get("output", {}).get("finish_reason") == "content_filter",
                     f"{name}: a filtered answer says content_filter ({r.get('output')}, {r.get('error')})")

        r = results.get("pin-ge", {})
        t.ok(r.get("status") == "ok" and r.get("model") == "ge" and r.get("pinned") is True
             and [c["model"] for c in r.get("route", [])] == ["ge"],
             f"a pinned model replaces the route, and the result says so ({r.get('route')})")
        r = results.get("pin-list", {})
        t.ok(r.get("status") == "error" and r.get("error", {}).get("code") == "unknown_model"
             and "nope-not-a-model" in r["error"].get("message", ""),
             f"a pinned name not in the policy is an unknown_model error result ({r.get('error')})")
        r = results.get("seed-fallback", {})
        route = r.get("route", [])
        t.ok(r.get("status") == "ok" and r.get("model") == "oa" and route
             and route[0]["model"] == "an" and route[0]["reason"] == "unsupported: seed",
             f"a candidate that cannot honour seed is skipped with 'unsupported: seed' ({route})")
        sent = calls_of(log, "seed-fallback")
        t.ok(len(sent) >= 1 and all(e["body"].get("seed") == 7
                                    and e.get("path") == "/v1/chat/completions" for e in sent),
             f"the skipped candidate got no call, and the one that took it was sent the seed "
             f"({[(e.get('path'), e['body'].get('seed')) for e in sent]})")
        r = results.get("seed-none", {})
        t.ok(r.get("status") == "error" and r.get("error", {}).get("code") == "unsupported"
             and "seed" in r["error"].get("message", ""),
             f"no candidate can honour seed: an unsupported error result naming it ({r.get('error')})")

        for name, (prov, api, model) in LIMITED.items():
            rl = [results.get(f"{name}-rl{i}", {}) for i in range(RL_REQUESTS)]
            t.ok(all(x.get("status") == "ok" for x in rl),
                 f"{name}: every rate-limited request is answered ({[x.get('status') for x in rl]})")
            refused = [e for e in log if e.get("rate_limited") and e.get("model") == model]
            t.ok(len(refused) >= 1, f"{name}: {api} answered 429 in its shape ({len(refused)} times)")
            t.ok(all(a.get("http_status") in (200, 429) for x in rl for a in x.get("attempts", [])),
                 f"{name}: no call failed otherwise")
            got = metric(text, "switchyard_rate_limited_total", model=model)
            t.ok(got is not None and got >= 1, f"{name}: switchyard_rate_limited_total counts them ({got})")
            if api == "gemini":
                # the wait is in the 429's body, not a header: without the
                # adapter's retry_delay_ms the lane would pause 20 ms (the
                # backoff), and the fake would refuse the retry again
                for i in range(RL_REQUESTS):
                    n = sum(1 for e in calls_of(log, f"{name}-rl{i}") if e.get("rate_limited"))
                    t.ok(n <= 1, f"{name}-rl{i}: at most one 429 ({n}): the retryDelay was waited")
                check_waits(t, log, name, model, gemini_retry_delay_ms, "the body's retryDelay")
            if api == "azure":
                # Azure's x-ratelimit-remaining-* give no limit, so the lane
                # knows no rate before a 429 and the call past the fake's
                # bucket still meets one (ratelimit.c rl_sync_remaining: a
                # remaining count without a known rate changes nothing); the 429's
                # retry-after-ms is waited, so no request meets a second one
                worker = [e for e in refused if e.get("headers", {}).get("api-key") != PROBE_KEY]
                t.ok(len(worker) == 1, f"{name}: exactly one 429 for the worker's calls "
                     f"({len(worker)}): remaining counts alone do not hold a call back, "
                     f"Retry-After does")
                for i in range(RL_REQUESTS):
                    n = sum(1 for e in calls_of(log, f"{name}-rl{i}") if e.get("rate_limited"))
                    t.ok(n <= 1, f"{name}-rl{i}: at most one 429 ({n}): Retry-After was waited")
                check_waits(t, log, name, model, azure_retry_floor_ms, "Azure's Retry-After")

        # what Azure's limited deployment sends, seen by a client of its own
        got = probe_azure(base, 4)
        t.ok([st for st, _ in got] == [200, 200, 200, 429],
             f"azl probe: rpm=3 admits three calls, then 429 ({[st for st, _ in got]})")
        t.ok([hd.get("x-ratelimit-remaining-requests") for _, hd in got] == ["2", "1", "0", "0"]
             and not any(k.startswith("x-ratelimit-limit-") or k.startswith("x-ratelimit-reset-")
                         for _, hd in got for k in hd),
             f"azl probe: every reply carries x-ratelimit-remaining-requests and no limit or reset "
             f"({[{k: v for k, v in hd.items() if 'ratelimit' in k} for _, hd in got]})")
        last = got[-1][1] if got else {}
        ra, ra_ms = last.get("retry-after", ""), last.get("retry-after-ms", "")
        t.ok(ra.isdigit() and ra_ms.isdigit() and int(ra) == max(1, -(-int(ra_ms) // 1000)),
             f"azl probe: the 429 carries Retry-After and retry-after-ms that agree ({ra}, {ra_ms})")
        t.ok(h.stop_worker() == 0, "the worker stops cleanly, exit 0")
    finally:
        h.close()
    return t.summary()


if __name__ == "__main__":
    sys.exit(main())
