#!/usr/bin/python3
"""Regenerates openai-chat.yaml from OpenAI's full OpenAPI description.

Usage: /usr/bin/python3 tests/data/openapi/extract.py PATH/openai-openapi.yaml

Copies, verbatim, the component schemas the tests validate against (ROOTS)
and every schema they reference, transitively, then checks that the copy
parses to exactly the same schemas as the source. Update README.md (source
version, checksum, date) when you run it.
"""

import os
import re
import sys

import yaml

ROOTS = ["CreateChatCompletionRequest", "CreateChatCompletionResponse", "ErrorResponse",
         "CompletionUsage"]
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "openai-chat.yaml")


def closure(schemas):
    seen, stack = set(), list(ROOTS)

    def walk(node):
        if isinstance(node, dict):
            for k, v in node.items():
                if k == "$ref" and isinstance(v, str) and v.startswith("#/components/schemas/"):
                    stack.append(v.rsplit("/", 1)[1])
                else:
                    walk(v)
        elif isinstance(node, list):
            for x in node:
                walk(x)

    while stack:
        name = stack.pop()
        if name not in seen:
            seen.add(name)
            walk(schemas[name])
    return seen


def main(argv):
    if len(argv) != 2:
        sys.stderr.write(__doc__.split("\n\n")[1] + "\n")
        return 2
    with open(argv[1]) as f:
        text = f.read()
    spec = yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    schemas = spec["components"]["schemas"]
    names = closure(schemas)
    lines = text.split("\n")
    start = lines.index("  schemas:", lines.index("components:"))
    blocks, cur = {}, None
    for line in lines[start + 1:]:
        if line and not line.startswith("    "):
            break
        m = re.match(r"^    ([^ #][^:]*):\s*$", line)
        if m:
            cur = m.group(1).strip("\"'")
            blocks[cur] = []
        if cur:
            blocks[cur].append(line)
    out = ["# An extract of OpenAI's OpenAPI description (MIT licence): the component",
           "# schemas the tests validate against and every schema they reference,",
           "# copied verbatim. Source and date: README.md in this folder. Regenerate",
           "# with tests/data/openapi/extract.py.",
           "openapi: 3.1.0", "info:", "  title: OpenAI API (extract)",
           "  version: %s" % spec["info"]["version"],
           "  license:", "    name: MIT", "    identifier: MIT",
           "components:", "  schemas:"]
    for name in sorted(names):
        block = blocks[name]
        while block and not block[-1].strip():
            block = block[:-1]
        out.extend(block)
    with open(OUT, "w") as f:
        f.write("\n".join(out) + "\n")
    with open(OUT) as f:
        copy = yaml.safe_load(f)["components"]["schemas"]
    if copy != {n: schemas[n] for n in names}:
        sys.stderr.write("extract.py: the copy does not parse to the source's schemas\n")
        return 1
    print("%d schemas written to %s" % (len(names), OUT))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
