#!/usr/bin/python3
"""A consumer can validate switchyard's messages against schemas/ with no
network access (issue 9, item 6), the way README shows it
(tests/schema/validate_offline.py).

Usage: /usr/bin/python3 tests/schema/test_offline.py

Every way out of the process is closed first (socket connect, name lookup,
urllib): an attempt is recorded and fails. Then:
1. every $ref in every schema resolves from the local files alone;
2. every example under schemas/examples/{result,cost}/valid validates and
   every .../invalid one does not, with the example's validator;
3. the guard can fail: a validator built without the local store reaches
   for the network on a cross-file $ref (and is stopped), and a $ref to a
   schema that is not in schemas/ is refused without touching the network;
4. nothing but (3)'s deliberate attempt tried the network.
Prints one line per failure and "N passed, N failed"; exit 0 only if none
failed.
"""

import json
import os
import socket
import sys
import urllib.request
import warnings

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.join(HERE, "..", "..")
sys.path.insert(0, HERE)

warnings.simplefilter("ignore", DeprecationWarning)

ATTEMPTS = []  # every network attempt: (what, target)


class NetworkRefused(OSError):
    pass


def _refuse(what):
    def refuse(*args, **kwargs):
        target = args[1] if what == "socket.connect" and len(args) > 1 else (args[0] if args else None)
        ATTEMPTS.append((what, str(target)))
        raise NetworkRefused("network access refused in this test: %s %s" % (what, target))
    return refuse


# closed before jsonschema is imported, so nothing it sets up can reach out
socket.socket.connect = _refuse("socket.connect")
socket.socket.connect_ex = _refuse("socket.connect")
socket.create_connection = _refuse("socket.create_connection")
socket.getaddrinfo = _refuse("socket.getaddrinfo")
urllib.request.urlopen = _refuse("urllib.urlopen")
urllib.request.OpenerDirector.open = _refuse("urllib.open")

import jsonschema  # noqa: E402
from jsonschema.exceptions import RefResolutionError  # noqa: E402

import validate_offline  # noqa: E402

passed = failed = 0


def ok(cond, what):
    global passed, failed
    if cond:
        passed += 1
    else:
        failed += 1
        print("FAIL " + what)


def refs(node, out):
    if isinstance(node, dict):
        if isinstance(node.get("$ref"), str):
            out.append(node["$ref"])
        for v in node.values():
            refs(v, out)
    elif isinstance(node, list):
        for v in node:
            refs(v, out)
    return out


def resolve(v, ref):
    """Resolves ref from the validator's root schema, as validation would."""
    if hasattr(v, "_resolver") and not hasattr(v, "resolver"):  # referencing
        return v._resolver.lookup(ref).contents
    return v.resolver.resolve(ref)[1]


def main():
    store = validate_offline.load_schemas(os.path.join(ROOT, "schemas"))
    kinds = sorted(sid.rsplit("/", 1)[1][:-len(".schema.json")] for sid in store)
    ok(set(kinds) >= {"common", "request", "result", "cost", "dead_letter"},
       "every schema loaded (%s)" % kinds)

    # 1. every $ref resolves locally
    nrefs = 0
    for kind in kinds:
        v = validate_offline.validator(kind, store)
        for ref in refs(v.schema, []):
            nrefs += 1
            try:
                target = resolve(v, ref)
                ok(isinstance(target, (dict, bool)), "%s: $ref %s resolves to a schema" % (kind, ref))
            except Exception as e:  # noqa: BLE001 (any failure is the finding)
                ok(False, "%s: $ref %s does not resolve offline: %s" % (kind, ref, e))
    ok(nrefs >= 20, "the schemas hold cross-file and local $refs (%d)" % nrefs)

    # 2. the examples
    for kind in ("result", "cost"):
        v = validate_offline.validator(kind, store)
        for expect in ("valid", "invalid"):
            d = os.path.join(ROOT, "schemas", "examples", kind, expect)
            files = sorted(f for f in os.listdir(d) if f.endswith(".json"))
            ok(len(files) >= 3, "%s/%s: examples there (%d)" % (kind, expect, len(files)))
            for name in files:
                with open(os.path.join(d, name)) as f:
                    doc = json.load(f)
                try:
                    errors = list(v.iter_errors(doc))
                except Exception as e:  # noqa: BLE001
                    ok(False, "%s/%s/%s: validation raised %s" % (kind, expect, name, e))
                    continue
                if expect == "valid":
                    ok(not errors, "%s/valid/%s validates (%s)" % (
                        kind, name, [e.message for e in errors[:2]]))
                else:
                    ok(errors, "%s/invalid/%s is refused" % (kind, name))

    ok(not ATTEMPTS, "validation touched no network (%s)" % ATTEMPTS[:3])

    # 3. the guard can fail. Without the local store a cross-file $ref
    # goes to https://switchyard.dev/..., and the guard stops it.
    result = store["https://switchyard.dev/schemas/result.schema.json"]
    bare = jsonschema.Draft202012Validator(result)
    try:
        if hasattr(bare, "resolver"):
            bare.resolver.resolve("common.schema.json#/$defs/nusd")
        else:  # referencing: the default registry does not fetch; force it
            urllib.request.urlopen("https://switchyard.dev/schemas/common.schema.json")
        reached = False
    except Exception:  # noqa: BLE001
        reached = True
    ok(reached and any("switchyard.dev" in t for _, t in ATTEMPTS),
       "without the local store a cross-file $ref reaches for the network, and is stopped (%s)"
       % ATTEMPTS[:2])
    del ATTEMPTS[:]

    # a $ref to a schema that is not in schemas/ is refused, not fetched
    stray = dict(result, **{"$id": "https://switchyard.dev/schemas/stray.schema.json",
                            "$ref": "missing.schema.json#/$defs/x"})
    v = validate_offline.validator("stray", dict(store, **{stray["$id"]: stray}))
    try:
        list(v.iter_errors({}))
        refused = False
    except Exception as e:  # noqa: BLE001
        refused = "missing.schema.json" in str(e) or isinstance(e, RefResolutionError)
    ok(refused, "a $ref outside schemas/ is an error")
    ok(not ATTEMPTS, "and it was refused without a network attempt (%s)" % ATTEMPTS[:2])

    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
