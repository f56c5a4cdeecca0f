#!/usr/bin/python3
"""Validate switchyard messages against schemas/ with no network access.

Usage: /usr/bin/python3 tests/schema/validate_offline.py KIND FILE...
  KIND: result, cost, request or dead_letter (schemas/KIND.schema.json)
  FILE: one JSON document each (a message value as read from Kafka)

Prints "FILE: ok" or "FILE: INVALID: reason at path" and exits 1 when any
file is invalid. This file is the example README shows: a consumer copies
schemas/ and validator() below. Each schema's $id is
https://switchyard.dev/schemas/<file>, and the $refs between them
("common.schema.json#/$defs/nusd") resolve against those $ids; nothing is
served at that address, so every schema is loaded from the local directory
under its $id and any other reference is refused instead of fetched.

Works with Debian 12's python3-jsonschema (4.10, RefResolver) and with
jsonschema >= 4.18 (the referencing library's Registry).
"""

import json
import os
import sys

import jsonschema

SCHEMAS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "schemas")


def load_schemas(directory=SCHEMAS):
    """{$id: schema} for every *.schema.json in directory."""
    store = {}
    for name in sorted(os.listdir(directory)):
        if name.endswith(".schema.json"):
            with open(os.path.join(directory, name)) as f:
                schema = json.load(f)
            store[schema["$id"]] = schema
    return store


def validator(kind, store):
    """A Draft 2020-12 validator for schemas/KIND.schema.json whose $refs
    resolve from store only."""
    schema = store["https://switchyard.dev/schemas/%s.schema.json" % kind]
    cls = jsonschema.Draft202012Validator
    try:  # jsonschema >= 4.18
        from referencing import Registry, Resource
        from referencing.exceptions import NoSuchResource

        def refuse(uri):  # called for any URI not in the registry
            raise NoSuchResource(ref=uri)

        registry = Registry(retrieve=refuse).with_resources(
            (sid, Resource.from_contents(s)) for sid, s in store.items())
        return cls(schema, registry=registry, format_checker=cls.FORMAT_CHECKER)
    except ImportError:  # Debian 12: jsonschema 4.10
        from jsonschema import RefResolver
        from jsonschema.exceptions import RefResolutionError

        def refuse(uri):
            raise RefResolutionError("not a local schema: %s" % uri)

        resolver = RefResolver.from_schema(
            schema, store=store, handlers={"http": refuse, "https": refuse, "file": refuse})
        return cls(schema, resolver=resolver, format_checker=cls.FORMAT_CHECKER)


def main(argv):
    if len(argv) < 3:
        print(__doc__.split("\n\n")[1], file=sys.stderr)
        return 2
    v = validator(argv[1], load_schemas())
    bad = 0
    for path in argv[2:]:
        with open(path) as f:
            doc = json.load(f)
        error = jsonschema.exceptions.best_match(v.iter_errors(doc))
        if error is None:
            print("%s: ok" % path)
        else:
            bad += 1
            print("%s: INVALID: %s at %s" % (path, error.message, error.json_path))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
