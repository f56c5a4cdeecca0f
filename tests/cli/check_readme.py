"""README's runnable blocks, run for real (issue 9: the manual cannot drift
from the program).

A fenced block preceded, on the line just above its opening fence, by
    <!-- runnable: KIND [; or-error: TEXT] -->
is extracted from README.md and run:
- shell         bash -e -o pipefail, from the repository root, against a
                mock cluster (build/mock_kafka) with the README's topics, a
                switchyard worker (config/policy.yaml) and the fake provider
                (build/fake_provider), all on 127.0.0.1;
- shell-syntax  bash -n only (set-up commands: make demo, make test);
- python        /usr/bin/python3, same environment as shell;
- worker-yaml   a whole worker.yaml: switchyard --check-config with
                config/policy.yaml;
- worker-yaml-part  top-level sections (e.g. a kafka: block) that replace
                the same sections of config/worker.yaml, then --check-config;
- policy-yaml   a whole policy: --check-config with config/worker.yaml.
`or-error: TEXT` also accepts a --check-config that fails with TEXT on
every error line (a block that needs a librdkafka feature Debian's build
lacks, as README says).
A block preceded by <!-- checked: java --> is not run (no JDK here): the
topic names it quotes must be README's topics and the JSON fields it reads
must exist in schemas/.

The blocks see, in their environment, the placeholders README documents:
BOOTSTRAP (the cluster's bootstrap list), METRICS (the worker's metrics
HOST:PORT), SWITCHYARD_PID (the worker's process id), PATH with build/
first; every ${NAME} a YAML block names, and the API key variables of
config/worker.yaml, are set to placeholder values for --check-config.

Two checks keep README's tables true without running anything: every
source file under worker/ has its line in "Source layout" (and every line
names a file that exists), and every warning or error event the worker can
log (log_warn, log_error, log_event or log_fields at a level above info, the
event a literal, or followed through a helper's parameter, a local variable
or INDIRECT) is named in the first cell of a "Troubleshooting" row.

A failing block fails the test with its README line number (README_VERBOSE=1
prints every block's output). The last line is "N passed, N failed"."""

import json
import os
import re
import subprocess
import sys
import tempfile
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "tests", "e2e"))
from harness import BUILD, Checks, Harness, http_status  # noqa: E402

MARK = re.compile(r"^<!--\s*(runnable|checked):\s*([a-z-]+)\s*(?:;\s*or-error:\s*(.*?))?\s*-->\s*$")
KINDS = {"shell", "shell-syntax", "python", "worker-yaml", "worker-yaml-part", "policy-yaml", "java"}
BLOCK_TIMEOUT = 90


def blocks(path):
    """(line of the opening fence, kind, or_error, text) of every marked block;
    a mark not followed by a fence is reported as kind None."""
    lines = open(path, encoding="utf-8").read().split("\n")
    out = []
    i = 0
    while i < len(lines):
        m = MARK.match(lines[i])
        if not m:
            i += 1
            continue
        kind, or_error = m.group(2), m.group(3)
        if i + 1 >= len(lines) or not lines[i + 1].startswith("```"):
            out.append((i + 1, None, None, f"mark '{lines[i]}' is not followed by a fence"))
            i += 1
            continue
        start = i + 2
        j = start
        while j < len(lines) and not lines[j].startswith("```"):
            j += 1
        out.append((i + 2, kind, or_error, "\n".join(lines[start:j]) + "\n"))
        i = j + 1
    return out


def readme_topics():
    """The topic names of config/worker.yaml, the ones README uses."""
    text = open(os.path.join(ROOT, "config", "worker.yaml")).read()
    section = re.search(r"^topics:\n((?:[ #].*\n|\n)*)", text, re.M).group(1)
    return dict(re.findall(r"^\s+(requests|results|costs|dead_letter):\s*(\S+)", section, re.M))


def schema_fields():
    names = set()

    def walk(node):
        if isinstance(node, dict):
            for k, v in node.items():
                if k == "properties" and isinstance(v, dict):
                    names.update(v.keys())
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    for f in os.listdir(os.path.join(ROOT, "schemas")):
        if f.endswith(".schema.json"):
            walk(json.load(open(os.path.join(ROOT, "schemas", f))))
    return names


def sections(text):
    """Top-level YAML sections of a block-style document, in order: (key, text)."""
    out = []
    for line in text.splitlines(keepends=True):
        m = re.match(r"^([A-Za-z_][A-Za-z0-9_]*):", line)
        if m:
            out.append([m.group(1), line])
        elif out:
            out[-1][1] += line
        # lines before the first key (comments) are dropped
    return out


def splice(base, part):
    """base with each top-level section that part has replaced by part's."""
    new = dict(sections(part))
    merged = [(k, new.pop(k, t)) for k, t in sections(base)]
    merged += list(new.items())
    return "".join(t if t.endswith("\n") else t + "\n" for _, t in merged)


def yaml_env(text):
    """Values for every ${NAME} and api_key_env a YAML text names."""
    names = set(re.findall(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}", text))
    names |= set(re.findall(r"api_key_env:\s*([A-Za-z_][A-Za-z0-9_]*)", text))
    return {n: "placeholder-not-a-secret" for n in names}


def check_config(tmp, config_text, policy_path, or_error):
    cfg = os.path.join(tmp, "readme-worker.yaml")
    with open(cfg, "w") as f:
        f.write(config_text)
    env = dict(os.environ)
    env.update(yaml_env(config_text))
    env.update(yaml_env(open(os.path.join(ROOT, "config", "worker.yaml")).read()))
    r = subprocess.run([os.path.join(BUILD, "switchyard"), "--check-config", "--config", cfg,
                        "--policy", policy_path], env=env, capture_output=True, text=True,
                       timeout=30)
    out = (r.stdout + r.stderr).strip()
    if r.returncode == 0:
        return True, out
    if or_error:
        lines = [l for l in out.splitlines() if l.strip()]
        if lines and all(or_error in l for l in lines):
            return True, f"refused as README says ({or_error}): {len(lines)} lines"
    return False, out


def run_block(kind, text, env, tmp):
    if kind == "shell-syntax":
        r = subprocess.run(["bash", "-n"], input=text, capture_output=True, text=True, timeout=10)
    elif kind == "shell":
        r = subprocess.run(["bash", "-e", "-o", "pipefail", "-c", text], cwd=ROOT, env=env,
                           capture_output=True, text=True, timeout=BLOCK_TIMEOUT)
    elif kind == "python":
        path = os.path.join(tmp, "block.py")
        with open(path, "w") as f:
            f.write(text)
        r = subprocess.run(["/usr/bin/python3", path], cwd=ROOT, env=env, capture_output=True,
                           text=True, timeout=BLOCK_TIMEOUT)
    else:
        raise ValueError(kind)
    return r.returncode == 0, (r.stdout + r.stderr).strip()


def check_java(text, topics, fields):
    """(ok, why): the topics it quotes are README's, it reads only schema fields."""
    quoted = set(re.findall(r'"([A-Za-z0-9._-]+)"', text))
    named = quoted & set(topics.values())
    bad_topics = {q for q in quoted if q.startswith("llm.")} - set(topics.values())
    read = set(re.findall(r'\.(?:get|path|has)\("([A-Za-z_]+)"\)', text))
    unknown = read - fields
    why = []
    if not named:
        why.append("names none of the topics " + ", ".join(sorted(topics.values())))
    if bad_topics:
        why.append("names topics that are not README's: " + ", ".join(sorted(bad_topics)))
    if unknown:
        why.append("reads fields the schemas do not have: " + ", ".join(sorted(unknown)))
    return not why, "; ".join(why) or f"topics {sorted(named)}, fields {sorted(read)}"


def start_cluster(topics, tmp):
    """The mock cluster with README's topics, the fake provider and a
    worker on config/policy.yaml; returns (harness, env for the blocks)."""
    h = Harness({topics["requests"]: 4, topics["results"]: 4, topics["costs"]: 4,
                 topics["dead_letter"]: 1}, fake_args=["--latency-ms", "20"])
    base = f"http://{h.provider_addr}"
    path = h.write_config("switchyard", topics, providers={
        "anthropic": {"type": "anthropic", "base_url": base, "api_key_env": "ANTHROPIC_API_KEY"},
        "openai": {"type": "openai", "base_url": base + "/v1", "api_key_env": "OPENAI_API_KEY"}})
    cfg = json.load(open(path))
    cfg["metrics"] = {"listen": "127.0.0.1:0"}
    with open(path, "w") as f:
        json.dump(cfg, f, indent=1)
    keys = {"ANTHROPIC_API_KEY": "readme-test-key-a", "OPENAI_API_KEY": "readme-test-key-o"}
    w = h.start_worker(path, os.path.join(ROOT, "config", "policy.yaml"), env=keys)
    addr = h.metrics_address()
    if addr is None:
        raise RuntimeError("the worker did not start: " + open(h.worker_log).read()[-2000:])
    deadline = time.time() + 30
    while time.time() < deadline and http_status(addr, "/readyz") != 200:
        time.sleep(0.1)
    env = dict(os.environ)
    env.update(keys)
    env.update({"BOOTSTRAP": h.bootstrap, "METRICS": addr, "SWITCHYARD_PID": str(w.pid),
                "PATH": os.path.join(BUILD) + os.pathsep + env.get("PATH", ""),
                "PYTHONDONTWRITEBYTECODE": "1"})
    return h, env


def layout_files(text):
    """The worker/ files the Source layout table names: `x.c/.h` is both."""
    sec = text.split("\n## Source layout", 1)[1].split("\n## ", 1)[0]
    named = set()
    for line in sec.splitlines():
        m = re.match(r"^\| `([^`]+)` \|", line)
        if not m:
            continue
        name = m.group(1)
        if name.endswith(".c/.h"):
            stem = name[:-len(".c/.h")]
            named |= {stem + ".c", stem + ".h"}
        else:
            named.add(name)
    return named


def check_layout(c, readme):
    """Every source file under worker/ has its line in the Source layout
    table, and every line names a file that exists: the map cannot drift."""
    with open(readme) as f:
        named = layout_files(f.read())
    wdir = os.path.join(ROOT, "worker")
    files = {os.path.relpath(os.path.join(d, n), wdir) for d, _, ns in os.walk(wdir)
             for n in ns if n.endswith((".c", ".h"))}
    c.ok(not files - named, f"every worker/ file is in Source layout (missing: {sorted(files - named)})")
    c.ok(not named - files, f"Source layout names only files that exist (gone: {sorted(named - files)})")


# ---- Troubleshooting covers every warning and error event ----------------

# A call that logs at warning or error level; group 1 is the function, the
# level (for log_event/log_fields) is checked on the first argument.
LOG_CALL = re.compile(r"\b(log_warn|log_error|log_event|log_fields)\s*\(")
# Event expressions that are neither a literal, a parameter nor a local
# variable: where their values come from (function, argument index).
INDIRECT = {"report.items[i].event": ("preflight_add", 1)}


def strip_comments(src):
    """C source with comments blanked (strings and line numbers kept)."""
    out, i, n = [], 0, len(src)
    while i < n:
        c = src[i]
        if c in "\"'":
            j = i + 1
            while j < n and src[j] != c:
                j += 2 if src[j] == "\\" else 1
            out.append(src[i:j + 1])
            i = j + 1
        elif src.startswith("/*", i):
            j = src.find("*/", i + 2)
            j = n if j < 0 else j + 2
            out.append(re.sub(r"[^\n]", " ", src[i:j]))
            i = j
        elif src.startswith("//", i):
            j = src.find("\n", i)
            j = n if j < 0 else j
            out.append(" " * (j - i))
            i = j
        else:
            out.append(c)
            i += 1
    return "".join(out)


def call_args(src, open_paren):
    """The top-level arguments of the call whose '(' is at open_paren."""
    args, depth, start, i = [], 0, open_paren + 1, open_paren
    while i < len(src):
        c = src[i]
        if c in "\"'":
            j = i + 1
            while j < len(src) and src[j] != c:
                j += 2 if src[j] == "\\" else 1
            i = j
        elif c in "([{":
            depth += 1
        elif c in ")]}":
            depth -= 1
            if depth == 0:
                args.append(src[start:i].strip())
                return args
        elif c == "," and depth == 1:
            args.append(src[start:i].strip())
            start = i + 1
        i += 1
    return args


def functions(src):
    """(start, name, parameter names) of every function definition, in
    order (definitions open at column 0, as clang-format leaves them)."""
    out = []
    for m in re.finditer(r"^[A-Za-z_][\w \t\*]*?\b(\w+)\s*\(", src, re.M):
        # a definition's body follows its parameter list (after an
        # attribute at most); a prototype ends with ';'
        tail = re.match(r"\([^;{]*\)\s*(?:__attribute__\s*\(\(.*?\)\)\s*)?([;{])",
                        src[m.end() - 1:], re.S)
        if not tail or tail.group(1) != "{":
            continue
        names = []
        for p in call_args(src, m.end() - 1):
            words = re.findall(r"\w+", p)
            names.append(words[-1] if words else "")
        out.append((m.start(), m.group(1), names))
    return out


def literals(expr):
    return re.findall(r'"([a-z][a-z0-9_]*)"', expr)


class EventScan:
    """The warning and error events of worker/**/*.c, each with where it is
    logged; unresolved: event expressions the scan could not follow."""

    def __init__(self, wdir):
        self.src = {}
        for d, _, ns in os.walk(wdir):
            for n in sorted(ns):
                if n.endswith(".c"):
                    p = os.path.join(d, n)
                    self.src[os.path.relpath(p, ROOT)] = strip_comments(open(p).read())
        self.funcs = {f: functions(s) for f, s in self.src.items()}
        self.events = {}
        self.unresolved = []

    def where(self, path, pos):
        return f"{path}:{self.src[path].count(chr(10), 0, pos) + 1}"

    def enclosing(self, path, pos):
        best = None
        for f in self.funcs[path]:
            if f[0] <= pos:
                best = f
        return best

    def calls_of(self, name):
        """(path, position of '(') of every call of function name."""
        for path, s in self.src.items():
            for m in re.finditer(r"\b" + re.escape(name) + r"\s*\(", s):
                line_start = s.rfind("\n", 0, m.start()) + 1
                if line_start == m.start() or re.match(r"\w", s[line_start]):
                    continue  # a definition or prototype at column 0
                yield path, m.end() - 1

    def resolve(self, path, pos, expr, depth=0):
        """The event names expr (an argument at pos) can hold."""
        found = literals(expr)
        if found:
            return found
        if depth > 4:
            return None
        if expr in INDIRECT:
            fn, idx = INDIRECT[expr]
            return self.resolve_param(fn, idx, depth)
        if not re.fullmatch(r"[A-Za-z_]\w*", expr):
            return None
        fn = self.enclosing(path, pos)
        if fn is None:
            return None
        if expr in fn[2]:
            return self.resolve_param(fn[1], fn[2].index(expr), depth)
        # a local variable: every value assigned to it before the call
        body = self.src[path][fn[0]:pos]
        found = []
        for m in re.finditer(r"\b" + re.escape(expr) + r"\s*=(?!=)([^;]*);", body):
            found += literals(m.group(1))
        return found or None

    def resolve_param(self, fn, idx, depth):
        found = []
        for path, paren in self.calls_of(fn):
            args = call_args(self.src[path], paren)
            if idx >= len(args):
                return None
            got = self.resolve(path, paren, args[idx], depth + 1)
            if got is None:
                self.unresolved.append(f"{self.where(path, paren)}: {fn}(... {args[idx]} ...)")
                continue
            found += got
        return found

    def scan(self):
        for path, s in self.src.items():
            for m in LOG_CALL.finditer(s):
                line_start = s.rfind("\n", 0, m.start()) + 1
                if re.match(r"\w", s[line_start]):
                    continue  # log.c's own definitions
                args = call_args(s, m.end() - 1)
                if m.group(1) in ("log_event", "log_fields"):
                    if len(args) < 2 or args[0] in ("LOG_INFO", "LOG_DEBUG"):
                        continue
                    expr = args[1]
                else:
                    expr = args[0] if args else ""
                got = self.resolve(path, m.start(), expr)
                if not got:
                    self.unresolved.append(f"{self.where(path, m.start())}: {expr}")
                    continue
                for e in got:
                    self.events.setdefault(e, self.where(path, m.start()))
        return self


def troubleshooting_names(text):
    """The backquoted names in the first cell of Troubleshooting's rows."""
    sec = text.split("\n## Troubleshooting", 1)[1].split("\n## ", 1)[0]
    names = set()
    for line in sec.splitlines():
        m = re.match(r"^\|([^|]*)\|", line)
        if m:
            names |= set(re.findall(r"`([a-z][a-z0-9_]*)", m.group(1)))
    return names


def check_events(c, readme):
    """Every warning and error event the worker can log has its row in
    Troubleshooting (what it means, what to do): the table cannot drift."""
    scan = EventScan(os.path.join(ROOT, "worker")).scan()
    with open(readme) as f:
        named = troubleshooting_names(f.read())
    c.ok(not scan.unresolved, "every warning/error log call's event is a literal the scan "
         f"can follow (add the others to INDIRECT): {scan.unresolved}")
    c.ok(len(scan.events) >= 40, f"the scan finds the worker's events ({len(scan.events)})")
    missing = sorted(f"{e} ({w})" for e, w in scan.events.items() if e not in named)
    c.ok(not missing, f"every warning/error event has a Troubleshooting row (missing: {missing})")


def main():
    readme = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "README.md")
    found = blocks(readme)
    topics = readme_topics()
    fields = schema_fields()
    c = Checks()
    check_layout(c, readme)
    check_events(c, readme)
    kinds = {k for _, k, _, _ in found}
    for need in ("shell", "python", "worker-yaml-part", "policy-yaml", "java"):
        c.ok(need in kinds, f"README has at least one '{need}' block")
    tmp = tempfile.mkdtemp(prefix="switchyard-readme-")
    h = env = None
    try:
        if any(k in ("shell", "python") for _, k, _, _ in found):
            h, env = start_cluster(topics, tmp)
        for line, kind, or_error, text in found:
            where = f"{os.path.basename(readme)}:{line}"
            if kind not in KINDS:
                c.ok(False, f"{where}: unknown or malformed mark ({kind}): {text[:80]}")
                continue
            t0 = time.time()
            try:
                if kind == "java":
                    good, out = check_java(text, topics, fields)
                elif kind == "worker-yaml":
                    good, out = check_config(tmp, text, os.path.join(ROOT, "config", "policy.yaml"),
                                             or_error)
                elif kind == "worker-yaml-part":
                    base = open(os.path.join(ROOT, "config", "worker.yaml")).read()
                    good, out = check_config(tmp, splice(base, text),
                                             os.path.join(ROOT, "config", "policy.yaml"), or_error)
                elif kind == "policy-yaml":
                    pol = os.path.join(tmp, "readme-policy.yaml")
                    with open(pol, "w") as f:
                        f.write(text)
                    good, out = check_config(tmp, open(os.path.join(ROOT, "config",
                                                                    "worker.yaml")).read(),
                                             pol, or_error)
                else:
                    good, out = run_block(kind, text, env, tmp)
            except subprocess.TimeoutExpired:
                good, out = False, f"timed out after {BLOCK_TIMEOUT} s"
            took = time.time() - t0
            if c.ok(good, f"{where}: {kind} block failed:\n{out[-3000:]}"):
                print(f"ok {where} {kind} ({took:.1f} s)")
                if os.environ.get("README_VERBOSE"):
                    print("    " + out.replace("\n", "\n    "))
        if h is not None:
            c.ok(h.worker.poll() is None, "the worker is still running after every block")
    finally:
        if h is not None:
            h.close()
    return c.summary()


if __name__ == "__main__":
    sys.exit(main())
