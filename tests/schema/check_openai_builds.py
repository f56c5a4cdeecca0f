#!/usr/bin/python3
"""Check that what switchyard sends OpenAI follows OpenAI's published schema.

Usage: /usr/bin/python3 tests/schema/check_openai_builds.py [REPO_ROOT]

Every tests/data/providers/openai/build/*/expected.json, and every Azure
one that names a model (the v1 path; a deployment URL names it in the path
instead), must validate against CreateChatCompletionRequest of OpenAI's
OpenAPI description (tests/data/openapi/openai-chat.yaml, through
tests/support/openai_schema.py). The unit suite (build/unit_tests
providers) pins each expected.json to the exact body the C adapter builds,
so together they check the built requests. At least one body must carry
each of: a json_schema response_format, tools, and an image part, so that
the check cannot pass on plain chat alone. Last line: "N passed, N failed".
"""

import glob
import json
import os
import sys

ROOT = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else
                       os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "tests", "support"))
import openai_schema  # noqa: E402

passed = failed = 0


def check(cond, what):
    global passed, failed
    if cond:
        passed += 1
    else:
        failed += 1
        print("FAIL %s" % what)


def has_image(body):
    return any(isinstance(m.get("content"), list) and
               any(p.get("type") == "image_url" for p in m["content"])
               for m in body.get("messages", []))


seen = {"json_schema": 0, "tools": 0, "image": 0}
files = sorted(glob.glob(os.path.join(ROOT, "tests/data/providers/openai/build/*/expected.json")) +
               glob.glob(os.path.join(ROOT, "tests/data/providers/azure/build/*/expected.json")))
checked = 0
for path in files:
    name = os.path.relpath(path, ROOT)
    with open(path, encoding="utf-8") as f:
        body = json.load(f)
    if "/azure/" in path and "model" not in body:
        continue
    checked += 1
    errors = openai_schema.validate("CreateChatCompletionRequest", body)
    check(not errors, "%s: %s" % (name, "; ".join(errors)))
    seen["json_schema"] += body.get("response_format", {}).get("type") == "json_schema"
    seen["tools"] += bool(body.get("tools"))
    seen["image"] += has_image(body)

check(checked >= 10, "at least 10 built bodies checked (%d)" % checked)
for feature, n in sorted(seen.items()):
    check(n > 0, "some built body carries %s" % feature)
# the check can fail: a body OpenAI refuses (an image part in the wrong shape) is caught
bad = {"model": "m", "messages": [{"role": "user", "content": [{"type": "image", "url": "https://x"}]}]}
check(openai_schema.validate("CreateChatCompletionRequest", bad) != [],
      "a body in switchyard's own part shape is refused by the schema")
print("%d passed, %d failed" % (passed, failed))
sys.exit(1 if failed else 0)
