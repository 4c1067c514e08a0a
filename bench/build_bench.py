#!/usr/bin/env python3
"""Build benchmark (issue 8): `berth build` against `podman build` and `docker build`.

One Dockerfile and one context (a busybox base, the only image on this host), built by
every subject in one run, in three situations:

  1. cold build: the cache disabled (`--no-cache` for all);
  2. no-change rebuild: the same build again, cache on, nothing changed;
  3. one-file-change rebuild: one file under src/ (copied by a late COPY) gets a new
     line, then the build runs again with the cache on.

Interleaved: 1 untimed warm-up round, then N rounds; in every round each phase runs
every subject once, the order of the subjects rotating by one per round. Wall ms from
spawn to exit (`perf_counter_ns`; output read from a pipe, each line time-stamped, so
the time of every `Step N/M` line also gives a per-step split).

Subjects: berth (`--network none` for RUN), berth with the default bridge network,
podman build (buildah 1.28 inside; `--runtime runc --network none` and low ulimits,
as engine_bench.py explains), docker build with the classic builder (`DOCKER_BUILDKIT=0`,
a private dockerd; `--network none`). Every subject has its own copy of the context,
each berth row its own store (see `second_berth`).

The private installations come from engine_bench.py (`Env`): berth's offline busybox,
saved with `berth save` and loaded into podman's and docker's private stores, so all
build on the same bytes; a private dockerd; everything removed at the end, also on
failure (Ctrl-C or SIGTERM included). This script uses its own bridge names and
subnets (checked to be free) so it can run next to engine_bench.py.

Needs root, podman, conmon, runc, docker.io (dockerd + containerd). Python 3 standard
library only. Benchmarks, not tests: nothing here asserts a time.

  sudo bench/build_bench.py [--bin /work/target-main/release] [-n 5] [--json F]
"""

import argparse
import hashlib
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

BENCH_DIR = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, BENCH_DIR)
sys.dont_write_bytecode = True  # no bench/__pycache__ from the import
import engine_bench as eb  # noqa: E402  (the Env machinery, shared on purpose)

REPO_DIR = os.path.dirname(BENCH_DIR)

DOCKERFILE = """\
FROM busybox
WORKDIR /app
COPY deps.txt ./
RUN mkdir -p vendor && for i in $(seq 1 16); do dd if=/dev/urandom of=vendor/lib$i.so bs=256k count=1 2>/dev/null; done && sort deps.txt > vendor/deps.lock
COPY src/ ./src/
RUN wc -l src/*.txt > build.tmp && mkdir -p out && md5sum src/*.txt > out/manifest && tail -n 1 build.tmp > out/lines && rm build.tmp
ENV APP_MODE=production PATH=/app/bin:$PATH
USER 1000:1000
CMD ["cat", "/app/out/manifest"]
"""
STEPS = 9
SRC_FILES = 100
EDITED = "src/mod050.txt"
# The functional check: the RUN outputs exist, the temp file deleted in its RUN is
# hidden, USER took effect.
CHECK_CMD = ["sh", "-c", "cat /app/out/lines && test ! -e /app/build.tmp && wc -c < "
             "/app/vendor/lib16.so && id -u"]
CHECK_RE = re.compile(r"^\d+ total\n262144\n1000$")

STEP_RE = re.compile(r"^(?:Step|STEP) (\d+)/(\d+)\s*:\s*(.*)$")
CACHED_RE = {
    "berth": re.compile(r"^ ---> CACHED\b"),
    "podman": re.compile(r"^--> Using cache\b"),
    "docker": re.compile(r"^ ---> Using cache\b"),
}
PHASES = ("cold", "no-change", "one-file")
PHASE_TITLE = {
    "cold": "cold build (--no-cache)",
    "no-change": "no-change rebuild",
    "one-file": f"one-file-change rebuild ({EDITED} edited)",
}


def die(msg):
    print(f"build_bench: {msg}", file=sys.stderr)
    sys.exit(1)


# ---------------------------------------------------------------- isolation


def pick_networks():
    """Bridge names and /24s of our own, so a concurrent engine_bench.py cannot clash."""
    used = subprocess.run(["ip", "-4", "addr"], capture_output=True, text=True).stdout
    used += subprocess.run(["ip", "-4", "route"], capture_output=True, text=True).stdout
    free = [n for n in range(10, 250) if f"10.143.{n}." not in used]
    if len(free) < 3:
        die("no free 10.143.x.0/24 subnets")
    names = ("bbuild0", "bbuildp0", "bbuildd0")
    for iface in names:
        if os.path.exists(f"/sys/class/net/{iface}"):
            die(f"interface {iface} exists: is another build_bench.py running?")
    a, b, c = free[:3]
    eb.BERTH_ENV = {
        "BERTH_BRIDGE": names[0],
        "BERTH_NFT_TABLE": "berth_bbuild",
        "BERTH_SUBNET_POOL": f"10.143.{a}.0/24",
    }
    eb.PODMAN_NET = ("bbuildp", names[1], f"10.143.{b}.0/24", f"10.143.{b}.1")
    eb.DOCKER_NET = ("bbuildd", names[2], f"10.143.{c}.0/24")


def make_context(path):
    os.makedirs(os.path.join(path, "src"))
    with open(os.path.join(path, "Dockerfile"), "w") as f:
        f.write(DOCKERFILE)
    with open(os.path.join(path, ".dockerignore"), "w") as f:
        f.write("Dockerfile\n.dockerignore\n")
    with open(os.path.join(path, "deps.txt"), "w") as f:
        f.write("libfoo 1.2\nlibbar 3.4\nlibbaz 0.9\n")
    for i in range(1, SRC_FILES + 1):
        with open(os.path.join(path, "src", f"mod{i:03d}.txt"), "w") as f:
            f.write("".join(f"line {j} of module {i:03d}\n" for j in range(1, 21)))


# ---------------------------------------------------------------- subjects


class Build:
    """One timed build: wall ms, time-stamped output lines, exit code."""

    def __init__(self, wall_ms, lines, rc):
        self.wall_ms = wall_ms
        self.lines = lines  # [(ms since spawn, text)]
        self.rc = rc

    def steps(self):
        """[(step no, text, ms)]: from its `Step` line to the next (the last to exit)."""
        starts = []
        for t, text in self.lines:
            m = STEP_RE.match(text)
            if m:
                starts.append((int(m.group(1)), m.group(3), t))
        out = []
        for i, (n, text, t) in enumerate(starts):
            end = starts[i + 1][2] if i + 1 < len(starts) else self.wall_ms
            out.append((n, text, end - t))
        return out

    def first_step_ms(self):
        for t, text in self.lines:
            if STEP_RE.match(text):
                return t
        return None

    def tail(self, n=6):
        return " | ".join(text for _, text in self.lines[-n:])


class Subject:
    def __init__(self, name, kind, base_argv, env, ctx, tag, run_argv, run_env, extra):
        self.name = name
        self.kind = kind
        self.base = base_argv
        self.env = env
        self.ctx = ctx
        self.tag = tag
        self.run_argv = run_argv
        self.run_env = run_env
        self.extra = extra  # build flags
        self.edits = 0
        self.results = {p: [] for p in PHASES}  # [Build]
        self.errors = {p: [] for p in PHASES}

    def argv(self, phase):
        cold = ["--no-cache"] if phase == "cold" else []
        return self.base + ["build"] + self.extra + cold + ["-t", self.tag, self.ctx]

    def edit(self):
        """Change one source file's content (docker's COPY cache ignores mtimes)."""
        self.edits += 1
        with open(os.path.join(self.ctx, EDITED), "a") as f:
            f.write(f"edit {self.edits} by {self.name}\n")

    def build(self, phase):
        if phase == "one-file":
            self.edit()
        t0 = time.perf_counter_ns()
        p = subprocess.Popen(self.argv(phase), env=self.env, stdin=subprocess.DEVNULL,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        lines = []
        try:
            for raw in p.stdout:
                lines.append(((time.perf_counter_ns() - t0) / 1e6,
                              raw.decode(errors="replace").rstrip("\n")))
        except BaseException:
            # interrupted: stop our build before the teardown removes its stores
            p.kill()
            p.wait()
            raise
        rc = p.wait()
        wall = (time.perf_counter_ns() - t0) / 1e6
        p.stdout.close()
        return Build(wall, lines, rc)

    def cached(self, b):
        return sum(1 for _, text in b.lines if CACHED_RE[self.kind].match(text))

    def check_image(self):
        r = subprocess.run(self.run_argv + [self.tag] + CHECK_CMD, env=self.run_env,
                           capture_output=True, text=True, stdin=subprocess.DEVNULL)
        out = r.stdout.strip()
        if r.returncode != 0 or not CHECK_RE.match(out):
            return f"`run {self.tag}` check failed (exit {r.returncode}): " \
                   f"{out[-200:]!r} {r.stderr.strip()[-300:]}"
        return None


def second_berth(e, work):
    """A second berth root for the bridge row.

    berth's cache key is (parent image, step, inputs); a `--no-cache` build re-points a
    RUN step's key to its new image, so two subjects sharing one store would turn each
    other's no-change rebuilds into misses. Each berth row gets its own store.
    """
    argv = [os.path.join(e.bin, "berth"), "--root", os.path.join(work, "root2"),
            "--run-root", os.path.join(work, "run2")]
    eb.check(argv + ["image", "bootstrap"], e.berth_env, "berth image bootstrap (root2)")
    return argv


def teardown_second(argv, env):
    if argv:
        subprocess.run(argv + ["system", "teardown"], env=env, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)


def subjects_for(e, work, berth2):
    net_none = ["--network", "none"]
    docker_build_env = dict(e.docker_env, DOCKER_BUILDKIT="0")
    specs = [
        ("berth", "berth", e.berth, e.berth_env, net_none,
         e.berth + ["run", "--rm", "--network", "none"], e.berth_env),
        ("berth (bridge)", "berth", berth2, e.berth_env, [],
         berth2 + ["run", "--rm", "--network", "none"], e.berth_env),
        ("podman build", "podman", e.podman, None,
         ["--runtime", "runc", "--pull=never"] + eb.ULIMITS + net_none,
         e.podman + ["run", "--rm", "--runtime", "runc"] + eb.ULIMITS + net_none, None),
        ("docker build (classic)", "docker", e.docker, docker_build_env, net_none,
         e.docker + ["run", "--rm", "--network", "none"], e.docker_env),
    ]
    out = []
    for i, (name, kind, base, env, extra, run_argv, run_env) in enumerate(specs):
        ctx = os.path.join(work, f"ctx{i}")
        make_context(ctx)
        out.append(Subject(name, kind, base, env, ctx, f"bbapp{i}:latest", run_argv, run_env,
                           extra))
    return out


# ---------------------------------------------------------------- report


def fmt(x, digits=1):
    return "-" if x is None else f"{x:.{digits}f}"


def med(xs):
    return statistics.median(xs) if xs else None


def report(args, subjects, versions, load_start, load_end, started):
    print()
    print(f"date:   {started} .. {time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime())}")
    print(f"kernel: {os.uname().release} ({os.cpu_count()} CPUs), load average at start "
          f"{load_start}, at end {load_end}")
    for k, v in versions.items():
        print(f"{k}: {v}")
    print()
    meds = {}
    for s in subjects:
        for p in PHASES:
            ok = [b.wall_ms for b in s.results[p]]
            meds[(s.name, p)] = med(ok)
    peers = [s for s in subjects if s.kind != "berth"]
    rows = []
    for p in PHASES:
        for s in subjects:
            ok = [b.wall_ms for b in s.results[p]]
            if not ok:
                rows.append([f"{p}: {s.name}", "NOT MEASURED"] + ["-"] * (3 + len(peers)))
                continue
            m = med(ok)
            ratios = [eb.ratio(m, meds[(q.name, p)]) for q in peers]
            hits = sorted(set(s.cached(b) for b in s.results[p]))
            rows.append([f"{p}: {s.name}", fmt(m), fmt(eb.percentile(ok, 90)), fmt(min(ok))]
                        + ratios + ["/".join(map(str, hits)) + f" of {STEPS - 1}"])
    print(f"1. wall ms per build, {args.rounds} interleaved rounds (after {args.warmup} "
          "warm-up); ratios of medians against each peer; cached = steps the tool "
          "reported as cache hits")
    print(eb.table(rows, ["phase: subject", "median", "p90", "min"]
                   + [f"vs {q.name.split()[0]}" for q in peers] + ["cached"]))
    for s in subjects:
        for p in PHASES:
            if s.errors[p]:
                print(f"  {p}: {s.name}: {len(s.errors[p])} failed builds left out, last: "
                      f"{s.errors[p][-1]}")
    print()
    # per-step split of the cold and one-file builds
    for p in ("cold", "one-file"):
        rows = []
        per = {}
        for s in subjects:
            d = {}
            firsts = []
            for b in s.results[p]:
                f = b.first_step_ms()
                if f is not None:
                    firsts.append(f)
                for n, _, ms in b.steps():
                    d.setdefault(n, []).append(ms)
            per[s.name] = (d, firsts)
        texts = {}
        for line in DOCKERFILE.splitlines():
            texts[len(texts) + 1] = line if len(line) <= 44 else line[:41] + "..."
        rows.append(["spawn -> Step 1 line"] + [fmt(med(per[s.name][1])) for s in subjects])
        for n in range(1, STEPS + 1):
            label = f"{n} {texts.get(n, '')}"
            if n == STEPS:
                label += " (+ commit, tag, exit)"
            rows.append([label] + [fmt(med(per[s.name][0].get(n, []))) for s in subjects])
        rows.append(["wall"] + [fmt(meds[(s.name, p)]) for s in subjects])
        print(f"2. {PHASE_TITLE[p]}: median ms per step, from the step's `Step N/M` line "
              "to the next one")
        print(eb.table(rows, ["step"] + [s.name for s in subjects]))
        print()
    # what berth said about the one-file change
    for s in subjects:
        if s.kind == "berth" and s.results["one-file"]:
            misses = [t for _, t in s.results["one-file"][-1].lines if "cache miss" in t]
            if misses:
                print(f"berth's explanation of the first miss in a one-file rebuild: "
                      f"{misses[0].strip()}")
                break
    print()
    b = subjects[0]
    print("issue 8 targets: no-change rebuild < 50 ms and <= 0.1x every peer; cold build "
          "faster than every peer")
    nc = meds[(b.name, "no-change")]
    cold = meds[(b.name, "cold")]
    if nc is None or cold is None:
        print("  berth not fully measured: targets NOT MET")
        return
    worst = max((nc / meds[(q.name, "no-change")] for q in peers
                 if meds[(q.name, "no-change")]), default=None)
    met1 = nc < 50 and worst is not None and worst <= 0.1
    print(f"  no-change rebuild: berth {nc:.1f} ms, worst ratio {fmt(worst, 3)}x "
          f"-> {'MET' if met1 else 'NOT MET'}")
    pc = [(q.name, meds[(q.name, "cold")]) for q in peers]
    met2 = all(m is not None and cold < m for _, m in pc)
    print(f"  cold build: berth {cold:.1f} ms vs "
          + ", ".join(f"{n} {fmt(m)} ms" for n, m in pc)
          + f" -> {'MET' if met2 else 'NOT MET'}")


# ---------------------------------------------------------------- main


def on_sigterm(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bin", default=os.path.join(REPO_DIR, "target", "release"),
                    help="dir with berth, berth-runtime, berth-monitor (default target/release)")
    ap.add_argument("-n", "--rounds", type=int, default=5,
                    help="timed rounds (default 5); each builds every phase x subject once")
    ap.add_argument("--warmup", type=int, default=1, help="untimed rounds first (default 1)")
    ap.add_argument("--json", metavar="FILE", help="also write raw samples as JSON")
    ap.add_argument("--keep-logs", metavar="DIR",
                    help="copy each subject's last build output of each phase here")
    args = ap.parse_args()
    if os.geteuid() != 0:
        die("must run as root")
    for tool in ("podman", "conmon", "runc", "docker", "dockerd", "nft", "iptables-save", "ip"):
        if not shutil.which(tool):
            die(f"missing {tool} (apt-get install -y podman conmon runc docker.io nftables "
                "iptables iproute2)")
    pick_networks()

    started = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
    load_start = eb.loadavg()
    work = tempfile.mkdtemp(prefix="bb-", dir="/tmp")  # short: podman's runroot <= 50 chars
    e = None
    berth2 = None
    try:
        e = eb.Env(work, args.bin)
        r = subprocess.run(e.berth + ["build", "--help"], capture_output=True, text=True)
        if r.returncode != 0 or "--no-cache" not in r.stdout:
            die(f"the copied berth has no usable `build` (exit {r.returncode}): "
                f"{r.stderr.strip()[-300:]}")
        print("setup: bootstrap busybox, save, load into podman and a private dockerd ...",
              file=sys.stderr)
        e.setup()
        berth2 = second_berth(e, work)
        subjects = subjects_for(e, work, berth2)

        def round_(i, timed):
            k = i % len(subjects)
            order = subjects[k:] + subjects[:k]
            for p in PHASES:
                for s in order:
                    b = s.build(p)
                    if b.rc != 0:
                        s.errors[p].append(f"exit {b.rc}: {b.tail()}")
                        if not timed:
                            die(f"warm-up {p} build of {s.name} failed (exit {b.rc}):\n"
                                + "\n".join(t for _, t in b.lines[-30:]))
                    elif timed:
                        s.results[p].append(b)
                    if args.keep_logs and (timed or i == 0):
                        os.makedirs(args.keep_logs, exist_ok=True)
                        fn = re.sub(r"[^a-z0-9]+", "-", f"{s.name}-{p}".lower()).strip("-")
                        with open(os.path.join(args.keep_logs, fn + ".log"), "w") as f:
                            f.writelines(f"{t:9.1f}  {x}\n" for t, x in b.lines)
                            f.write(f"{b.wall_ms:9.1f}  (exit {b.rc})\n")

        for i in range(args.warmup):
            print(f"warm-up round {i + 1}/{args.warmup} ...", file=sys.stderr)
            round_(i, False)
        for s in subjects:
            err = s.check_image()
            if err:
                die(f"{s.name}: {err}")
        print("functional check passed for every subject (RUN outputs present, deleted "
              "temp file hidden, USER 1000)", file=sys.stderr)
        for i in range(args.rounds):
            print(f"round {i + 1}/{args.rounds} (load {eb.loadavg()}) ...", file=sys.stderr)
            round_(i, True)
        load_end = eb.loadavg()

        digests = []
        for b in ("berth", "berth-runtime", "berth-monitor"):
            with open(os.path.join(e.bin, b), "rb") as f:
                digests.append(f"{b} {hashlib.sha256(f.read()).hexdigest()[:12]}")
        versions = {
            "berth": f"{eb.version_of(e.berth + ['version'], e.berth_env)} (from {args.bin}; "
                     f"sha256 {', '.join(digests)})",
            "podman": eb.version_of(["podman", "--version"]) + ", buildah inside: "
                      + eb.version_of(["podman", "info", "--format",
                                       "{{.Host.BuildahVersion}}"]),
            "runc": eb.version_of(["runc", "--version"]),
            "docker": eb.version_of(e.docker + ["version", "--format",
                                                "client {{.Client.Version}}, server "
                                                "{{.Server.Version}}"], e.docker_env),
            "containerd": eb.version_of(["containerd", "--version"]),
        }
        report(args, subjects, versions, load_start, load_end, started)
        if args.json:
            with open(args.json, "w") as f:
                json.dump({"subjects": {s.name: {p: [{"wall_ms": b.wall_ms, "lines": b.lines,
                                                      "cached": s.cached(b)}
                                                     for b in s.results[p]]
                                                 for p in PHASES}
                                        for s in subjects},
                           "errors": {s.name: s.errors for s in subjects},
                           "load": [load_start, load_end], "versions": versions}, f, indent=1)
    finally:
        if e is not None:
            print("teardown ...", file=sys.stderr)
            teardown_second(berth2, e.berth_env)
            e.teardown()
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, on_sigterm)
    main()
