"""Offline checks of config/deploy/ and `make install`: what can be checked
without systemd running, a container engine or a cluster.

Usage: check_deploy.py BUILD/switchyard  (run from the repository's top)

- switchyard.service: `systemd-analyze verify` passes with no warning at
  all (unknown keys and bad values are only warnings to it) on a copy whose
  ExecStart names the built binary; Type=notify with a watchdog; the stop
  timeout exceeds shutdown_grace_ms + flush_timeout_ms + 1 s (worker.yaml's
  values, else worker/config.c's defaults); the hardening is there.
- Dockerfile: every stage FROM debian:12-slim, at least two; the last stage
  runs as a user that is not root; EXPOSE is worker.yaml's metrics port; a
  HEALTHCHECK asks /healthz on that port; the line its sed rewrites exists.
- kubernetes.yaml: every document has apiVersion and kind; the ConfigMap's
  worker.yaml and policy.yaml pass `switchyard --check-config`; the
  Deployment's containerPort, probes and scrape annotation are that
  worker.yaml's metrics port; the probes ask /healthz and /readyz;
  terminationGracePeriodSeconds exceeds (shutdown_grace_ms +
  flush_timeout_ms) / 1000 + 1; every api_key_env comes from a Secret;
  several replicas; the PodDisruptionBudget selects the Deployment's pods.
- switchyard.1: groff renders it with no warning; man -l too; its long
  options are exactly `switchyard --help`'s; its version is --version's.
- `make install DESTDIR=...` installs the binary, the man page, the example
  configuration and the unit, and the installed binary runs.
"""

import os
import re
import shutil
import subprocess
import sys
import tempfile

import yaml

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
DEPLOY = os.path.join(ROOT, "config", "deploy")
passed = failed = 0


def ok(cond, what):
    global passed, failed
    if cond:
        passed += 1
    else:
        failed += 1
        print(f"FAIL: {what}", flush=True)
    return cond


def read(path):
    with open(path) as f:
        return f.read()


def config_defaults():
    """limits' defaults from worker/config.c's LIMIT(name, min, max, default)."""
    out = {}
    for m in re.finditer(r"LIMIT\((\w+),\s*[-\w]+,\s*[-\w]+,\s*(-?\d+)\)",
                         read(os.path.join(ROOT, "worker", "config.c"))):
        out[m.group(1)] = int(m.group(2))
    return out


def limits_of(worker_yaml, defaults):
    limits = (worker_yaml.get("limits") or {})
    return (int(limits.get("shutdown_grace_ms", defaults["shutdown_grace_ms"])),
            int(limits.get("flush_timeout_ms", defaults["flush_timeout_ms"])))


def port_of(worker_yaml):
    listen = str((worker_yaml.get("metrics") or {}).get("listen", ""))
    return int(listen.rsplit(":", 1)[1]) if ":" in listen else None


def unit_seconds(value):
    """systemd time spans as the unit uses them: "60", "60s", "2min", "1min 30s"."""
    total = 0.0
    for num, unit in re.findall(r"(\d+(?:\.\d+)?)\s*(ms|s|sec|min|m|h)?", value):
        total += float(num) * {"ms": 0.001, "min": 60, "m": 60, "h": 3600}.get(unit, 1)
    return total


def check_unit(binary, tmp, grace_ms, flush_ms):
    text = read(os.path.join(DEPLOY, "switchyard.service"))
    keys = {}
    for line in text.splitlines():
        if "=" in line and not line.lstrip().startswith(("#", ";")):
            k, v = line.split("=", 1)
            keys.setdefault(k.strip(), []).append(v.strip())
    one = {k: v[-1] for k, v in keys.items()}
    ok(one.get("Type") == "notify", "unit: Type=notify")
    ok(one.get("ExecStart", "").split()[0] == "/usr/local/bin/switchyard",
       "unit: ExecStart is make install's default PREFIX")
    ok("--config /etc/switchyard/worker.yaml" in one.get("ExecStart", "") and
       "--policy /etc/switchyard/policy.yaml" in one.get("ExecStart", ""),
       "unit: ExecStart names /etc/switchyard's two files")
    ok("kill -HUP $MAINPID" in one.get("ExecReload", ""), "unit: reload sends SIGHUP")
    ok(unit_seconds(one.get("WatchdogSec", "0")) > 0, "unit: WatchdogSec set")
    need = (grace_ms + flush_ms) / 1000 + 1
    stop = unit_seconds(one.get("TimeoutStopSec", "0"))
    ok(stop > need, f"unit: TimeoutStopSec {stop} s > shutdown_grace_ms + flush_timeout_ms "
       f"+ 1 s = {need} s")
    ok(one.get("Restart") == "on-failure", "unit: Restart=on-failure")
    ok(one.get("EnvironmentFile") == "-/etc/switchyard/env", "unit: keys from /etc/switchyard/env")
    for k, v in [("DynamicUser", "yes"), ("NoNewPrivileges", "yes"), ("ProtectSystem", "strict"),
                 ("ProtectHome", "yes"), ("PrivateTmp", "yes")]:
        ok(one.get(k) == v, f"unit: {k}={v}")
    # the verify: ExecStart must exist, and Documentation=man:switchyard(1)
    # is looked up with man, so the man page is put on a MANPATH of our own
    unit_dir = os.path.join(tmp, "unit")
    man_dir = os.path.join(tmp, "man", "man1")
    os.makedirs(unit_dir)
    os.makedirs(man_dir)
    shutil.copy(os.path.join(DEPLOY, "switchyard.1"), man_dir)
    unit = os.path.join(unit_dir, "switchyard.service")
    with open(unit, "w") as f:
        f.write(text.replace("/usr/local/bin/switchyard", os.path.abspath(binary)))
    env = dict(os.environ, MANPATH=os.path.join(tmp, "man"), SYSTEMD_LOG_COLOR="0")
    r = subprocess.run(["systemd-analyze", "verify", unit], capture_output=True, text=True,
                       env=env, timeout=120)
    out = (r.stdout + r.stderr).strip()
    ok(r.returncode == 0 and not out,
       f"unit: systemd-analyze verify passes with no warning (exit {r.returncode}): {out}")


def check_dockerfile(port, worker_text):
    text = read(os.path.join(DEPLOY, "Dockerfile"))
    # continuation lines joined: one instruction per entry
    lines = [l.strip() for l in re.sub(r"\\\n", " ", text).splitlines()
             if l.strip() and not l.strip().startswith("#")]
    froms = [i for i, l in enumerate(lines) if l.upper().startswith("FROM ")]
    ok(len(froms) >= 2, f"Dockerfile: multi-stage ({len(froms)} stages)")
    ok(all(lines[i].split()[1] == "debian:12-slim" for i in froms),
       "Dockerfile: every stage FROM debian:12-slim")
    last = lines[froms[-1]:] if froms else []
    users = [l.split()[1] for l in last if l.upper().startswith("USER ")]
    ok(users and users[-1].split(":")[0] not in ("root", "0"),
       f"Dockerfile: the final stage runs as a user that is not root ({users})")
    ok(any("COPY --from=" in l for l in last), "Dockerfile: the final stage copies the build's output")
    exposed = [p for l in last if l.upper().startswith("EXPOSE ") for p in l.split()[1:]]
    ok(exposed == [str(port)], f"Dockerfile: EXPOSE {exposed} is metrics.listen's port {port}")
    health = [l for l in last if l.upper().startswith("HEALTHCHECK ")]
    ok(len(health) == 1 and f":{port}/healthz" in health[0],
       f"Dockerfile: HEALTHCHECK asks /healthz on port {port}")
    # the final stage rewrites worker.yaml's listen line for the container's network
    m = re.search(r"sed 's/\^(.*?)/", text)
    pattern = m.group(1).replace("\\.", ".") if m else None
    ok(pattern and any(l == pattern for l in worker_text.splitlines()),
       f"Dockerfile: the listen line its sed rewrites is in config/worker.yaml ({pattern!r})")
    ok(any(l.startswith("ENTRYPOINT") and "/usr/local/bin/switchyard" in l for l in last),
       "Dockerfile: the entry point is the installed binary")


def check_kubernetes(binary, tmp, defaults, port):
    docs = [d for d in yaml.safe_load_all(read(os.path.join(DEPLOY, "kubernetes.yaml"))) if d]
    ok(docs and all(isinstance(d, dict) and d.get("apiVersion") and d.get("kind") for d in docs),
       "kubernetes: every document has apiVersion and kind")
    by_kind = {}
    for d in docs:
        by_kind.setdefault(d["kind"], []).append(d)
    cms = by_kind.get("ConfigMap", [])
    deps = by_kind.get("Deployment", [])
    pdbs = by_kind.get("PodDisruptionBudget", [])
    ok(len(cms) == 1 and len(deps) == 1 and len(pdbs) == 1,
       "kubernetes: one ConfigMap, one Deployment, one PodDisruptionBudget")
    if not (cms and deps and pdbs):
        return
    data = cms[0].get("data", {})
    ok("worker.yaml" in data and "policy.yaml" in data,
       "kubernetes: the ConfigMap holds worker.yaml and policy.yaml")
    wy = yaml.safe_load(data.get("worker.yaml", "")) or {}
    grace_ms, flush_ms = limits_of(wy, defaults)
    k8s_port = port_of(wy)
    ok(k8s_port == port, f"kubernetes: the ConfigMap's metrics port {k8s_port} is "
       f"config/worker.yaml's {port}")
    ok(str(wy.get("metrics", {}).get("listen", "")).startswith("0.0.0.0:"),
       "kubernetes: metrics listen on the pod's interfaces (probes come from the kubelet)")
    # the ConfigMap's files are a configuration the worker accepts
    cfg_dir = os.path.join(tmp, "k8s")
    os.makedirs(cfg_dir)
    for name in ("worker.yaml", "policy.yaml"):
        with open(os.path.join(cfg_dir, name), "w") as f:
            f.write(data.get(name, ""))
    key_vars = [p.get("api_key_env") for p in (wy.get("providers") or {}).values()]
    env = dict(os.environ, **{v: "check-deploy-placeholder" for v in key_vars if v})
    r = subprocess.run([binary, "--check-config", "--config", os.path.join(cfg_dir, "worker.yaml"),
                        "--policy", os.path.join(cfg_dir, "policy.yaml")],
                       capture_output=True, text=True, env=env, timeout=60)
    ok(r.returncode == 0, f"kubernetes: the ConfigMap passes --check-config: {r.stderr.strip()}")

    dep = deps[0]
    spec = dep.get("spec", {})
    pod = spec.get("template", {})
    labels = pod.get("metadata", {}).get("labels", {})
    ok(spec.get("replicas", 1) >= 2, f"kubernetes: several replicas ({spec.get('replicas')})")
    sel = spec.get("selector", {}).get("matchLabels", {})
    ok(sel and all(labels.get(k) == v for k, v in sel.items()),
       "kubernetes: the Deployment's selector matches its pods")
    tgp = pod.get("spec", {}).get("terminationGracePeriodSeconds", 30)
    need = (grace_ms + flush_ms) / 1000 + 1
    ok(tgp > need, f"kubernetes: terminationGracePeriodSeconds {tgp} > (shutdown_grace_ms + "
       f"flush_timeout_ms) / 1000 + 1 = {need}")
    containers = pod.get("spec", {}).get("containers", [])
    ok(len(containers) == 1, "kubernetes: one container")
    c = containers[0] if containers else {}
    ports = [p.get("containerPort") for p in c.get("ports", [])]
    ok(ports == [port], f"kubernetes: containerPort {ports} is metrics.listen's {port}")
    for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
        get = c.get(probe, {}).get("httpGet", {})
        ok(get.get("path") == path and get.get("port") in (port, "metrics"),
           f"kubernetes: {probe} asks {path} on {port} ({get})")
    ann = pod.get("metadata", {}).get("annotations", {})
    ok(ann.get("prometheus.io/scrape") == "true" and ann.get("prometheus.io/port") == str(port)
       and ann.get("prometheus.io/path") == "/metrics",
       f"kubernetes: Prometheus scrape annotations name port {port} and /metrics")
    env_of = {e.get("name"): e for e in c.get("env", [])}
    for v in key_vars:
        ref = env_of.get(v, {}).get("valueFrom", {}).get("secretKeyRef", {})
        ok(ref.get("name") and ref.get("key"), f"kubernetes: {v} comes from a Secret")
    ok(not [d for d in docs if d["kind"] == "Secret" and (d.get("data") or d.get("stringData"))],
       "kubernetes: no key is written in the file")
    mounts = {m.get("name"): m.get("mountPath") for m in c.get("volumeMounts", [])}
    vols = {v.get("name"): v.get("configMap", {}).get("name") for v in pod.get("spec", {}).get("volumes", [])}
    args = c.get("args", [])
    mounted = [n for n, p in mounts.items() if vols.get(n) == cms[0]["metadata"]["name"]]
    ok(mounted and all(a in args for a in (mounts[mounted[0]] + "/worker.yaml",
                                            mounts[mounted[0]] + "/policy.yaml")),
       "kubernetes: the container reads the ConfigMap's two files")
    pdb = pdbs[0].get("spec", {})
    psel = pdb.get("selector", {}).get("matchLabels", {})
    ok(psel and all(labels.get(k) == v for k, v in psel.items()),
       "kubernetes: the PodDisruptionBudget selects the Deployment's pods")
    ok("maxUnavailable" in pdb or "minAvailable" in pdb, "kubernetes: the PDB sets a bound")


def long_options(text):
    return set(re.findall(r"(?<![\w-])--[a-z][a-z-]*[a-z]", text))


def check_man(binary):
    page = os.path.join(DEPLOY, "switchyard.1")
    env = dict(os.environ, LC_ALL="C.UTF-8", MANWIDTH="80")
    r = subprocess.run(["groff", "-man", "-Tutf8", "-ww", "-z", page], capture_output=True,
                       text=True, env=env, timeout=60)
    ok(r.returncode == 0 and not r.stderr.strip(),
       f"man: groff renders with no warning: {r.stderr.strip()}")
    r = subprocess.run(["man", "-l", page], capture_output=True, text=True, env=env, timeout=60)
    ok(r.returncode == 0 and not r.stderr.strip() and "switchyard" in r.stdout,
       f"man: man -l renders with no warning: {r.stderr.strip()}")
    rendered = r.stdout.replace("\u2010", "-")  # hyphens groff made typographic
    h = subprocess.run([binary, "--help"], capture_output=True, text=True, timeout=30)
    ok(h.returncode == 0, "switchyard --help exits 0")
    got, want = long_options(rendered), long_options(h.stdout)
    ok(want and got == want, f"man: the page's options are --help's (only in the page: "
       f"{sorted(got - want)}; only in --help: {sorted(want - got)})")
    v = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=30)
    m = re.match(r"switchyard (\S+)\n$", v.stdout)
    ok(v.returncode == 0 and m, f"switchyard --version prints its version ({v.stdout!r})")
    th = re.search(r'^\.TH SWITCHYARD 1 "[^"]*" "switchyard ([^"]+)"', read(page), re.M)
    ok(m and th and th.group(1) == m.group(1),
       f"man: the page's version is --version's ({th and th.group(1)})")


def check_install(binary, tmp):
    dest = os.path.join(tmp, "dest")
    build = os.path.relpath(os.path.dirname(os.path.abspath(binary)), ROOT)
    # a make of our own, not a sub-make of `make check` (its jobserver and flags)
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL")}
    r = subprocess.run(["make", "--no-print-directory", "-s", "install", f"DESTDIR={dest}",
                        f"BUILD={build}"], cwd=ROOT, capture_output=True, text=True, env=env,
                       timeout=600)
    ok(r.returncode == 0, f"make install DESTDIR=... exits 0: {r.stderr.strip()}")
    prefix = os.path.join(dest, "usr", "local")
    expect = {
        "bin/switchyard": None,
        "share/man/man1/switchyard.1": "config/deploy/switchyard.1",
        "share/switchyard/worker.yaml": "config/worker.yaml",
        "share/switchyard/policy.yaml": "config/policy.yaml",
        "share/switchyard/prices.yaml": "config/prices.yaml",
        "lib/systemd/system/switchyard.service": "config/deploy/switchyard.service",
    }
    for rel, src in expect.items():
        path = os.path.join(prefix, rel)
        same = os.path.isfile(path) and (src is None or read(path) == read(os.path.join(ROOT, src)))
        ok(same, f"make install: {rel} installed" + (f" (as {src})" if src else ""))
    found = sorted(os.path.relpath(os.path.join(d, f), prefix)
                   for d, _, fs in os.walk(dest) for f in fs)
    ok(found == sorted(expect), f"make install: nothing else, nothing outside PREFIX ({found})")
    inst = os.path.join(prefix, "bin", "switchyard")
    ok(os.access(inst, os.X_OK), "make install: the binary is executable")
    v = subprocess.run([inst, "--version"], capture_output=True, text=True, timeout=30)
    ok(v.returncode == 0 and v.stdout.startswith("switchyard "),
       f"make install: the installed binary runs ({v.stdout.strip()})")
    r = subprocess.run(["make", "--no-print-directory", "-s", "install", f"DESTDIR={dest}",
                        "PREFIX=/opt/sy", f"BUILD={build}"], cwd=ROOT, capture_output=True,
                       text=True, env=env, timeout=600)
    ok(r.returncode == 0 and os.path.isfile(os.path.join(dest, "opt", "sy", "bin", "switchyard")),
       "make install: PREFIX=/opt/sy installs under it")


def main():
    if len(sys.argv) != 2:
        print("usage: check_deploy.py BUILD/switchyard", file=sys.stderr)
        return 2
    binary = sys.argv[1]
    defaults = config_defaults()
    ok("shutdown_grace_ms" in defaults and "flush_timeout_ms" in defaults,
       "worker/config.c's limit defaults are read")
    worker_text = read(os.path.join(ROOT, "config", "worker.yaml"))
    wy = yaml.safe_load(worker_text)
    port = port_of(wy)
    ok(port, f"config/worker.yaml sets metrics.listen ({port})")
    grace_ms, flush_ms = limits_of(wy, defaults)
    tmp = tempfile.mkdtemp(prefix="switchyard-deploy-")
    try:
        check_unit(binary, tmp, grace_ms, flush_ms)
        check_dockerfile(port, worker_text)
        check_kubernetes(binary, tmp, defaults, port)
        check_man(binary)
        check_install(binary, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"{passed} passed, {failed} failed")
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
