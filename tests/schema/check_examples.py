#!/usr/bin/python3
"""Check switchyard's message contracts and their examples.

Usage: /usr/bin/python3 tests/schema/check_examples.py [REPO_ROOT] [-v]

Run it with Debian's /usr/bin/python3 (python3-jsonschema). REPO_ROOT defaults
to two levels up from this script.

1. Every schemas/*.schema.json must be a valid draft 2020-12 schema
   (Draft202012Validator.check_schema), declare the 2020-12 $schema, an $id of
   https://switchyard.dev/schemas/<file name>, a title and a description, and
   say additionalProperties (or unevaluatedProperties) on every object schema
   that lists properties.
2. Every schemas/examples/<kind>/valid/*.json must validate against
   schemas/<kind>.schema.json, and every .../invalid/*.json must not.
3. The worker's C decoder must agree on every request example: each one is
   fed to `$BUILD/switchyard --plan` (BUILD defaults to build; the binary
   must be built), a valid example must decode, and an invalid one must fail
   with the code its NAME.error file starts with ("invalid_request: ...").
   The checks of 2 and 3 are counted separately, so an example on which the
   two disagree cannot pass.

$refs between schema files are resolved offline from a store of the schema
files keyed by $id; any other $ref fails instead of touching the network.

Patterns are matched with ECMA-262 semantics, as the schemas intend (and as
the C decoder does): `$` matches only at the very end of the string. Python's
re, which jsonschema uses as is, also lets `$` match before a final newline,
so "abc\\n" would pass "^[!-~]+$".

Example files must be strict JSON: duplicate keys, NaN and Infinity are
rejected when loading. A string holding an escape that is no Unicode
character (a lone surrogate such as "\\ud800", which Python's json accepts)
makes the document invalid as the contract says (invalid_utf8): such an
example must be under invalid/.

One check per schema file and per example; a failure prints
`FAIL path: reason`. The last line is `N passed, N failed`; the exit status is
0 only if nothing failed. -v also prints, for each invalid example, the
errors that made it invalid.
"""

import json
import os
import re
import sys
import warnings

import jsonschema
from jsonschema import Draft202012Validator, RefResolver
from jsonschema.exceptions import RefResolutionError, ValidationError, best_match

DRAFT = "https://json-schema.org/draft/2020-12/schema"
ID_BASE = "https://switchyard.dev/schemas/"

warnings.simplefilter("ignore", DeprecationWarning)


class ExampleError(Exception):
    pass


class NotUnicode(ExampleError):
    """The JSON is well-formed but a string is not Unicode text."""


def _no_duplicates(pairs):
    obj = {}
    for key, value in pairs:
        if key in obj:
            raise ExampleError("duplicate key %r" % key)
        obj[key] = value
    return obj


def _no_constant(name):
    raise ExampleError("non-standard JSON constant %s" % name)


def _check_unicode(node):
    """Raise NotUnicode when a key or string holds a lone surrogate."""
    strings = []
    if isinstance(node, str):
        strings = [node]
    elif isinstance(node, dict):
        strings = list(node.keys())
        for v in node.values():
            _check_unicode(v)
    elif isinstance(node, list):
        for v in node:
            _check_unicode(v)
    for text in strings:
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            raise NotUnicode("a string holds a lone surrogate escape (invalid_utf8)")


def load_json(path):
    try:
        with open(path, "rb") as f:
            text = f.read().decode("utf-8")
        doc = json.loads(text, object_pairs_hook=_no_duplicates,
                         parse_constant=_no_constant)
    except ExampleError:
        raise
    except (OSError, UnicodeDecodeError, ValueError) as e:
        raise ExampleError("cannot load JSON: %s" % e)
    _check_unicode(doc)
    return doc


# --- the C decoder ----------------------------------------------------------

def c_decoder_codes(root, paths):
    """Runs `switchyard --plan` once over the examples, one per line, and
    returns for each path the decoder's error code, or None when it decoded.
    Raises ExampleError when the decoder cannot be run."""
    build = os.environ.get("BUILD", "build")
    binary = os.path.join(root, build, "switchyard")
    if not os.access(binary, os.X_OK):
        raise ExampleError("%s is not built (make)" % binary)
    lines = []
    for path in paths:
        with open(path, "rb") as f:
            data = f.read()
        # one request per line: JSON may not hold a raw line break inside a
        # string, so outside strings they are plain whitespace
        lines.append(data.replace(b"\r", b" ").replace(b"\n", b" "))
    import subprocess
    proc = subprocess.run(
        [binary, "--plan", "--config", os.path.join(root, "config/worker.yaml"),
         "--policy", os.path.join(root, "config/policy.yaml")],
        input=b"\n".join(lines) + b"\n", stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, timeout=60)
    out = [json.loads(l) for l in proc.stdout.splitlines() if l.strip()]
    if len(out) != len(paths):
        raise ExampleError("%s --plan printed %d lines for %d examples: %s"
                           % (binary, len(out), len(paths), proc.stderr[:300]))
    return {p: (o.get("error") or {}).get("code") for p, o in zip(paths, out)}


# --- ECMA-262 `pattern` -----------------------------------------------------

_pattern_cache = {}


def _ecma_to_python(pattern):
    """Rewrite an ECMA-262 regex for Python's re: `$` outside a character
    class becomes \\Z (end of string only)."""
    out = []
    i, in_class = 0, False
    while i < len(pattern):
        c = pattern[i]
        if c == "\\" and i + 1 < len(pattern):
            out.append(pattern[i:i + 2])
            i += 2
            continue
        if in_class:
            if c == "]":
                in_class = False
        elif c == "[":
            in_class = True
        elif c == "$":
            c = r"\Z"
        out.append(c)
        i += 1
    return "".join(out)


def _ecma_pattern(validator, pattern, instance, schema):
    if not validator.is_type(instance, "string"):
        return
    rx = _pattern_cache.get(pattern)
    if rx is None:
        rx = _pattern_cache[pattern] = re.compile(_ecma_to_python(pattern))
    if not rx.search(instance):
        yield ValidationError("%r does not match %r" % (instance, pattern))


Validator = jsonschema.validators.extend(
    Draft202012Validator, {"pattern": _ecma_pattern})


def subprocess_errors():
    import subprocess
    return subprocess.SubprocessError


def _offline(uri):
    raise RefResolutionError("refusing to fetch %s: not a local schema" % uri)


# --- schema checks ----------------------------------------------------------

def lint_schema(schema, name):
    problems = []
    if schema.get("$schema") != DRAFT:
        problems.append("$schema is not %s" % DRAFT)
    if schema.get("$id") != ID_BASE + name:
        problems.append("$id is not %s" % (ID_BASE + name))
    for key in ("title", "description"):
        if not isinstance(schema.get(key), str) or not schema.get(key):
            problems.append("no %s" % key)

    def walk(node, where):
        if isinstance(node, dict):
            if (node.get("type") == "object" and "properties" in node
                    and "additionalProperties" not in node
                    and "unevaluatedProperties" not in node):
                problems.append("%s: object with properties but no "
                                "additionalProperties" % (where or "/"))
            for k, v in node.items():
                walk(v, "%s/%s" % (where, k))
        elif isinstance(node, list):
            for i, v in enumerate(node):
                walk(v, "%s/%d" % (where, i))

    walk(schema, "")
    return problems


def main(argv):
    verbose = "-v" in argv[1:]
    args = [a for a in argv[1:] if a != "-v"]
    root = args[0] if args else os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "..", "..")
    schema_dir = os.path.join(root, "schemas")
    example_dir = os.path.join(schema_dir, "examples")

    passed = failed = 0

    def fail(path, reason):
        nonlocal failed
        failed += 1
        print("FAIL %s: %s" % (os.path.relpath(path, root), reason))

    # 1. schema files
    schemas = {}  # file name -> schema
    store = {}
    names = sorted(n for n in os.listdir(schema_dir)
                   if n.endswith(".schema.json")) if os.path.isdir(schema_dir) else []
    if not names:
        fail(schema_dir, "no *.schema.json files")
    for name in names:
        path = os.path.join(schema_dir, name)
        try:
            schema = load_json(path)
            Draft202012Validator.check_schema(schema)
        except ExampleError as e:
            fail(path, str(e))
            continue
        except jsonschema.SchemaError as e:
            fail(path, "not a valid 2020-12 schema: %s at %s"
                 % (e.message, "/".join(map(str, e.absolute_path)) or "/"))
            continue
        problems = lint_schema(schema, name)
        if problems:
            fail(path, "; ".join(problems))
            continue
        schemas[name] = schema
        store[schema["$id"]] = schema
        passed += 1

    def validator_for(schema):
        resolver = RefResolver(base_uri=schema["$id"], referrer=schema,
                               store=store,
                               handlers={"http": _offline, "https": _offline,
                                         "file": _offline})
        return Validator(schema, resolver=resolver,
                         format_checker=Draft202012Validator.FORMAT_CHECKER)

    # 2. examples
    kinds = sorted(os.listdir(example_dir)) if os.path.isdir(example_dir) else []
    for kind in kinds:
        kdir = os.path.join(example_dir, kind)
        if not os.path.isdir(kdir):
            continue
        sname = kind + ".schema.json"
        schema = schemas.get(sname)
        if schema is None:
            fail(kdir, "no usable schema %s" % sname)
            continue
        validator = validator_for(schema)
        for expect in ("valid", "invalid"):
            edir = os.path.join(kdir, expect)
            files = sorted(f for f in os.listdir(edir) if f.endswith(".json")) \
                if os.path.isdir(edir) else []
            if not files:
                fail(edir, "no examples")
            for fname in files:
                path = os.path.join(edir, fname)
                try:
                    instance = load_json(path)
                    errors = list(validator.iter_errors(instance))
                except NotUnicode as e:
                    # invalid by the contract, before any schema applies
                    if expect == "valid":
                        fail(path, str(e))
                    else:
                        passed += 1
                        if verbose:
                            print("ok   %s: %s" % (os.path.relpath(path, root), e))
                    continue
                except ExampleError as e:
                    fail(path, str(e))
                    continue
                except RefResolutionError as e:
                    fail(path, "unresolved $ref: %s" % e)
                    continue
                if expect == "valid":
                    if errors:
                        e = best_match(errors)
                        fail(path, "expected valid: %s at %s" % (
                            e.message, e.json_path))
                        continue
                else:
                    if not errors:
                        fail(path, "expected invalid, but it validates")
                        continue
                    if verbose:
                        print("ok   %s: %d error(s): %s" % (
                            os.path.relpath(path, root), len(errors),
                            " | ".join("%s at %s" % (e.message[:100], e.json_path)
                                       for e in errors)))
                passed += 1

    # 3. the C decoder agrees on every request example
    req_dir = os.path.join(example_dir, "request")
    examples = []
    for expect in ("valid", "invalid"):
        edir = os.path.join(req_dir, expect)
        if os.path.isdir(edir):
            examples += [(os.path.join(edir, f), expect)
                         for f in sorted(os.listdir(edir)) if f.endswith(".json")]
    try:
        codes = c_decoder_codes(root, [p for p, _ in examples])
    except (ExampleError, OSError, ValueError, subprocess_errors()) as e:
        fail(req_dir, "C decoder: %s" % e)
        codes = None
    for path, expect in examples if codes is not None else []:
        got = codes[path]
        if expect == "valid":
            if got is not None:
                fail(path, "C decoder refuses it: %s" % got)
                continue
        else:
            try:
                with open(path[:-len(".json")] + ".error") as f:
                    want = f.read().split(":", 1)[0].strip()
            except OSError:
                fail(path, "no .error file beside it")
                continue
            if got != want:
                fail(path, "C decoder says %s, the .error file %s" % (got, want))
                continue
        passed += 1

    print("%d passed, %d failed" % (passed, failed))
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
