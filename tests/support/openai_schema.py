#!/usr/bin/python3
"""Validate JSON documents against a component schema of OpenAI's OpenAPI file.

Usage: /usr/bin/python3 tests/support/openai_schema.py [--spec FILE] COMPONENT FILE.jsonl

Run it with Debian's /usr/bin/python3 (python3-jsonschema, python3-yaml).

COMPONENT names a schema under #/components/schemas of the spec, e.g.
CreateChatCompletionRequest or CreateChatCompletionResponse. Each non-empty
line of FILE.jsonl ("-" for stdin) is one JSON document; every failure
prints `FAIL line N: <json path>: <reason>`, and the last line is
`N passed, N failed`. Exit status: 0 if every line is valid (and there is at
least one), 1 otherwise (a missing spec too: nothing is ever skipped), 2 on
usage errors.

The spec is --spec FILE, else tests/data/openapi/openai-chat.yaml: the
extract of OpenAI's openai-openapi.yaml that the project keeps (see the
README beside it), so that every clone runs every check. The full upstream
file works too.

As a module: validate(component_name, doc, spec=None) -> list of error
strings (empty when doc is valid).

OpenAPI 3.1 schemas are JSON Schema 2020-12, with a few leftovers this
module rewrites before validating:
- `nullable: true` (OpenAPI 3.0) becomes a union with null;
- `$recursiveRef: "#"` (draft 2019-09, used by CompoundFilter) becomes a
  $ref to the component that declares `$recursiveAnchor`;
- OpenAPI-only keywords (discriminator, example, xml, externalDocs,
  x-* extensions, deprecated, readOnly/writeOnly) are annotations and are
  ignored by the validator, as JSON Schema ignores unknown keywords.
`format` is not asserted (2020-12's default), so "unixtime" and friends do
not need a checker. $refs outside this file fail instead of touching the
network.
"""

import copy
import json
import os
import sys
import warnings

import jsonschema
import yaml
from jsonschema import Draft202012Validator, RefResolver
from jsonschema.exceptions import RefResolutionError

warnings.simplefilter("ignore", DeprecationWarning)

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SPEC_FILE = os.path.join(REPO, "tests", "data", "openapi", "openai-chat.yaml")

_cache = {}


def spec_path(explicit=None):
    return explicit or SPEC_FILE


def _nullable(node):
    """Rewrite OpenAPI 3.0's `nullable: true` into a JSON Schema union with null."""
    node = dict(node)
    del node["nullable"]
    t = node.get("type")
    if isinstance(t, str):
        node["type"] = [t, "null"]
        if "enum" in node and None not in node["enum"]:
            node["enum"] = list(node["enum"]) + [None]
        return node
    if isinstance(t, list):
        if "null" not in t:
            node["type"] = t + ["null"]
        if "enum" in node and None not in node["enum"]:
            node["enum"] = list(node["enum"]) + [None]
        return node
    return {"anyOf": [node, {"type": "null"}]}


def _rewrite(node, component):
    if isinstance(node, list):
        return [_rewrite(item, component) for item in node]
    if not isinstance(node, dict):
        return node
    out = {}
    for key, value in node.items():
        if key == "$recursiveRef":
            if value != "#":
                raise ValueError("unsupported $recursiveRef %r in %s" % (value, component))
            out["$ref"] = "#/components/schemas/" + component
        elif key == "$recursiveAnchor":
            continue
        elif key in ("properties", "patternProperties", "$defs", "definitions", "dependentSchemas"):
            # maps of name -> schema: the names are not keywords
            out[key] = {k: _rewrite(v, component) for k, v in value.items()} if isinstance(value, dict) else value
        else:
            out[key] = _rewrite(value, component)
    if out.get("nullable") is True:
        out = _nullable(out)
    elif "nullable" in out and out.get("nullable") is not True:
        del out["nullable"]
    return out


def load(explicit=None):
    """Return the root document {"components": {"schemas": ...}}, rewritten; cached.
    A missing spec raises OSError: the project ships it, so it is a failure."""
    path = spec_path(explicit)
    if path in _cache:
        return _cache[path]
    with open(path, "rb") as f:
        loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
        spec = yaml.load(f, Loader=loader)
    schemas = spec.get("components", {}).get("schemas", {})
    root = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "components": {"schemas": {name: _rewrite(s, name) for name, s in schemas.items()}},
    }
    _cache[path] = root
    return root


def _no_remote(uri):
    raise RefResolutionError("refusing to fetch remote $ref %s" % uri)


def validator(component_name, spec=None):
    root = load(spec)
    if component_name not in root["components"]["schemas"]:
        raise KeyError("no component schema %r in %s" % (component_name, spec_path(spec)))
    key = ("validator", component_name, spec_path(spec))
    if key not in _cache:
        resolver = RefResolver(
            base_uri="", referrer=root, handlers={"http": _no_remote, "https": _no_remote}
        )
        schema = {"$ref": "#/components/schemas/" + component_name}
        _cache[key] = Draft202012Validator(schema, resolver=resolver)
    return _cache[key]


def _short(text, limit=300):
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _describe(error):
    path = "".join("/%s" % p for p in error.absolute_path) or "/"
    msg = error.message
    # anyOf/oneOf failures: name the closest branch's reasons, not the whole instance
    if error.context:
        deepest = sorted(error.context, key=lambda e: (-len(e.absolute_path), e.message))
        msg = "%s (e.g. %s)" % (error.validator + " failed", _short(deepest[0].message, 160))
    return "%s: %s" % (path, _short(msg))


def validate(component_name, doc, spec=None):
    """Errors of doc against #/components/schemas/<component_name>; [] when valid."""
    v = validator(component_name, spec)
    errors = sorted(v.iter_errors(doc), key=lambda e: list(map(str, e.absolute_path)))
    return [_describe(e) for e in errors]


def main(argv):
    args = list(argv[1:])
    explicit = None
    if len(args) >= 2 and args[0] == "--spec":
        explicit = args[1]
        args = args[2:]
    if len(args) != 2:
        sys.stderr.write(__doc__.split("\n\n")[1] + "\n")
        return 2
    component, path = args
    try:
        validator(component, explicit)
    except OSError as e:
        print("FAIL: cannot read the spec: %s" % e)
        print("0 passed, 1 failed")
        return 1
    except KeyError as e:
        sys.stderr.write("openai_schema: %s\n" % e.args[0])
        return 2
    passed = failed = 0
    f = sys.stdin if path == "-" else open(path, "r", encoding="utf-8")
    try:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                doc = json.loads(line)
            except ValueError as e:
                print("FAIL line %d: not JSON: %s" % (lineno, e))
                failed += 1
                continue
            errors = validate(component, doc, explicit)
            if errors:
                failed += 1
                for err in errors:
                    print("FAIL line %d: %s" % (lineno, err))
            else:
                passed += 1
    finally:
        if f is not sys.stdin:
            f.close()
    print("%d passed, %d failed" % (passed, failed))
    return 0 if failed == 0 and passed > 0 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
