#!/usr/bin/env python3
"""Engine benchmark (issue 6): `berth run --rm` against `podman run --rm` and `docker run --rm`.

One image for everyone: berth's offline busybox (`berth image bootstrap`), saved with
`berth save` and loaded into podman's and docker's private stores. Measured in one run:

  1. start-to-exit latency of `ENGINE run --rm busybox true`, wall ms, interleaved
     (each round runs every subject once, the order rotating by one per round), with
     3 untimed warm-up runs per subject that double as the functional check;
  2. 50 sequential runs of the same command per subject, total wall seconds;
  3. berth's own phases (BERTH_TIMING=1 on stderr), median per phase, and `run --rm`
     split into `create`, `start`, `wait`, `rm` CLI calls;
  4. monitor memory: 10 detached `sleep 600` containers per engine, then RSS and PSS
     (/proc/PID/smaps_rollup) of each container's monitor: berth-monitor, conmon
     (podman), containerd-shim-runc-v2 (docker); dockerd + containerd shown apart.

Subjects: berth (default bridge network), berth --network none, berth --network none
--runtime runc (the same engine on runc: engine cost vs runtime cost), podman --network
none and on a private bridge network, docker --network none and on a private bridge
network, and `exec /bin/true` as the harness floor.

Isolation: berth gets a private --root/--run-root and BERTH_BRIDGE / BERTH_NFT_TABLE /
BERTH_SUBNET_POOL of its own; podman a private --root/--runroot/--network-config-dir
and a bridge `bbenchp0` on 10.140.8.0/24 (netavark adds iptables rules for it; tables
and chains that did not exist before are removed at the end); docker a private dockerd
(own data root, exec root, socket, `--bridge none --iptables=false`) whose bridge
network `bbenchd0` is on 10.140.9.0/24, killed by PID at the end. The berth binaries
are copied into the work dir first, so a rebuild during the run cannot swap them.

podman runs with `--runtime runc` (crun 1.8 refuses this hybrid cgroup host) and
`--ulimit nofile=1024:1024 --ulimit nproc=1024:1024` (podman's default rlimits exceed
this host's hard limits, and the runtime then fails with EPERM).

Needs root, podman, conmon, runc, docker.io (dockerd + containerd). Python 3 standard
library only. Benchmarks, not tests: nothing here asserts a time.

  sudo bench/engine_bench.py [--bin /work/target-main/release] [-n 20] [--seq 50]
  sudo bench/engine_bench.py --only berth   # berth's rows only: quick, no podman/docker

berth-monitor: the static build (target/x86_64-unknown-linux-gnu/<profile>/, made by
scripts/test) is copied in place of the dynamic one when it is not older, as the
engine itself prefers it (Engine::monitor_binary); the report says which one ran.
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
REPO_DIR = os.path.dirname(BENCH_DIR)
BERTH_ENV = {
    "BERTH_BRIDGE": "bbench0",
    "BERTH_NFT_TABLE": "berth_bench",
    "BERTH_SUBNET_POOL": "10.140.7.0/24",
}
PODMAN_NET = ("bbenchp", "bbenchp0", "10.140.8.0/24", "10.140.8.1")
DOCKER_NET = ("bbenchd", "bbenchd0", "10.140.9.0/24")
ULIMITS = ["--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024"]


def die(msg):
    print(f"engine_bench: {msg}", file=sys.stderr)
    sys.exit(1)


def loadavg():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def version_of(argv, env=None):
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=20, env=env)
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"unknown ({e})"
    first = (out.stdout or out.stderr).strip().splitlines()
    return first[0] if first else "unknown"


def check(argv, env=None, what=None):
    r = subprocess.run(argv, capture_output=True, text=True, env=env)
    if r.returncode != 0:
        die(f"{what or ' '.join(argv)} failed (exit {r.returncode}): {r.stderr.strip()[-400:]}")
    return r.stdout


def percentile(values, p):
    s = sorted(values)
    k = max(0, min(len(s) - 1, int(-(-p * len(s) // 100)) - 1))
    return s[k]


def table(rows, headers):
    widths = [max(len(str(r[i])) for r in rows + [headers]) for i in range(len(headers))]
    out = ["  ".join(str(h).ljust(w) for h, w in zip(headers, widths))]
    out.append("  ".join("-" * w for w in widths))
    for r in rows:
        out.append("  ".join(str(c).ljust(w) if i == 0 else str(c).rjust(w)
                             for i, (c, w) in enumerate(zip(r, widths))))
    return "\n".join(out)


def ratio(a, b):
    return f"{a / b:.2f}x" if a is not None and b else "-"


# ---------------------------------------------------------------- engines


def spawn_dockerd(work, host):
    """A private dockerd (own config, data and exec root, pidfile, socket `host`; no
    bridge, iptables or forwarding of its own) in its own session; returns the process
    and its log file. The caller waits for it to answer."""
    cfg = os.path.join(work, "daemon.json")
    with open(cfg, "w") as f:
        f.write("{}\n")
    log = open(os.path.join(work, "dockerd.log"), "w")
    proc = subprocess.Popen(
        ["dockerd", "--config-file", cfg, "--data-root", os.path.join(work, "docker"),
         "--exec-root", os.path.join(work, "dexec"),
         "--pidfile", os.path.join(work, "docker.pid"), "-H", host,
         "--bridge", "none", "--iptables=false", "--ip6tables=false", "--ip-forward=false",
         "--ip-masq=false", "--storage-driver", "overlay2"],
        stdout=log, stderr=log, start_new_session=True)
    return proc, log


class Env:
    """The private installation of all three engines under one work dir."""

    def __init__(self, work, bin_dir, only_berth=False):
        self.work = work
        self.only_berth = only_berth
        self.bin = os.path.join(work, "bin")
        os.makedirs(self.bin)
        for b in ("berth", "berth-runtime", "berth-monitor"):
            src = os.path.join(bin_dir, b)
            if not os.access(src, os.X_OK):
                die(f"missing {src}")
            shutil.copy2(src, os.path.join(self.bin, b))
        # The engine prefers the static monitor when it is not older (monitor_binary).
        bin_abs = os.path.abspath(bin_dir)
        static = os.path.join(os.path.dirname(bin_abs), "x86_64-unknown-linux-gnu",
                              os.path.basename(bin_abs), "berth-monitor")
        self.monitor_kind = "dynamic"
        if (os.access(static, os.X_OK) and os.path.getmtime(static)
                >= os.path.getmtime(os.path.join(bin_dir, "berth-monitor"))):
            shutil.copy2(static, os.path.join(self.bin, "berth-monitor"))
            self.monitor_kind = f"static, from {static}"
        init = os.path.join(bin_dir, "berth-init")
        if os.access(init, os.X_OK):
            shutil.copy2(init, os.path.join(self.bin, "berth-init"))
        self.berth_env = dict(os.environ, **BERTH_ENV)
        self.berth = [os.path.join(self.bin, "berth"), "--root", os.path.join(work, "root"),
                      "--run-root", os.path.join(work, "run")]
        # containers/storage refuses a runroot longer than 50 characters.
        self.podman = ["podman", "--root", os.path.join(work, "proot"),
                       "--runroot", os.path.join(work, "prun"), "--storage-driver", "overlay",
                       "--cgroup-manager", "cgroupfs",
                       "--network-config-dir", os.path.join(work, "pnet")]
        self.docker_sock = f"unix://{work}/docker.sock"
        self.docker_env = dict(os.environ, DOCKER_HOST=self.docker_sock)
        self.docker = ["docker"]
        self.dockerd = None
        self.fw_before = None

    # -- setup

    def setup(self):
        self.fw_before = nft_tables()
        check(self.berth + ["image", "bootstrap"], self.berth_env, "berth image bootstrap")
        archive = os.path.join(self.work, "busybox.tar")
        if self.only_berth:
            return
        check(self.berth + ["save", "busybox", "-o", archive], self.berth_env, "berth save")
        check(self.podman + ["load", "-q", "-i", archive], None, "podman load")
        pnet = os.path.join(self.work, "pnet")
        os.makedirs(pnet, exist_ok=True)
        name, iface, subnet, gw = PODMAN_NET
        with open(os.path.join(pnet, f"{name}.json"), "w") as f:
            # podman 4.3 cannot name the bridge on `network create`; netavark reads this.
            json.dump({"name": name, "id": "b3e1c0ffee" + "0" * 52 + "aa", "driver": "bridge",
                       "network_interface": iface, "created": "2026-01-01T00:00:00Z",
                       "subnets": [{"subnet": subnet, "gateway": gw}], "ipv6_enabled": False,
                       "internal": False, "dns_enabled": False,
                       "ipam_options": {"driver": "host-local"}}, f)
        self.start_dockerd()
        check(self.docker + ["load", "-q", "-i", archive], self.docker_env, "docker load")
        name, iface, subnet = DOCKER_NET
        check(self.docker + ["network", "create", "--subnet", subnet,
                             "-o", f"com.docker.network.bridge.name={iface}", name],
              self.docker_env, "docker network create")

    def start_dockerd(self):
        self.dockerd, log = spawn_dockerd(self.work, self.docker_sock)
        for _ in range(150):
            if subprocess.run(self.docker + ["info"], env=self.docker_env,
                              capture_output=True).returncode == 0:
                return
            if self.dockerd.poll() is not None:
                die(f"dockerd exited {self.dockerd.returncode}, see {log.name}")
            time.sleep(0.2)
        die("dockerd did not come up in 30 s")

    # -- teardown (best effort, every step on its own)

    def teardown(self):
        def quiet(argv, env=None):
            subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

        ids = subprocess.run(self.berth + ["ps", "-a", "-q"], env=self.berth_env,
                             capture_output=True, text=True).stdout.split()
        if ids:
            quiet(self.berth + ["rm", "-f"] + ids, self.berth_env)
        quiet(self.berth + ["system", "teardown"], self.berth_env)
        if not self.only_berth:
            quiet(self.podman + ["rm", "-a", "-f", "-t", "0"])
        if self.dockerd is not None and self.dockerd.poll() is None:
            ids = subprocess.run(self.docker + ["ps", "-a", "-q"], env=self.docker_env,
                                 capture_output=True, text=True).stdout.split()
            if ids:
                quiet(self.docker + ["rm", "-f"] + ids, self.docker_env)
            quiet(self.docker + ["network", "rm", DOCKER_NET[0]], self.docker_env)
            self.dockerd.send_signal(signal.SIGTERM)
            try:
                self.dockerd.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.dockerd.kill()
                self.dockerd.wait()
        for iface in (BERTH_ENV["BERTH_BRIDGE"], PODMAN_NET[1], DOCKER_NET[1]):
            if os.path.exists(f"/sys/class/net/{iface}"):
                quiet(["ip", "link", "del", iface])
        remove_netavark_tables(self.fw_before or set())
        # Mounts left under the work dir (overlay of a store), deepest first.
        with open("/proc/self/mountinfo") as f:
            mps = [line.split()[4] for line in f if line.split()[4].startswith(self.work)]
        for mp in sorted(mps, key=len, reverse=True):
            quiet(["umount", "-l", mp])
        shutil.rmtree(self.work, ignore_errors=True)


def nft_tables():
    r = subprocess.run(["nft", "list", "tables"], capture_output=True, text=True)
    return set(line.strip() for line in r.stdout.splitlines() if line.strip())


def remove_netavark_tables(before):
    """netavark (iptables-nft) creates `ip nat` / `ip filter` for the podman network.

    A table that did not exist before the run and holds nothing but netavark's chains
    and jumps is removed; anything else is left alone and named.
    """
    for table in sorted(nft_tables() - before):
        fam, name = table.split()[1:3]
        if (fam, name) not in (("ip", "nat"), ("ip", "filter")):
            continue
        saved = subprocess.run(["iptables-save", "-t", name], capture_output=True, text=True).stdout
        foreign = [ln for ln in saved.splitlines()
                   if ln.startswith("-A") and "NETAVARK" not in ln]
        if foreign:
            print(f"engine_bench: leaving table {table}: it holds rules not made by netavark",
                  file=sys.stderr)
            continue
        subprocess.run(["nft", "delete", "table", fam, name])


# ---------------------------------------------------------------- subjects


class Subject:
    def __init__(self, name, argv, env=None, timing=False):
        self.name = name
        self.argv = argv
        self.env = env
        self.times_ms = []
        self.errors = []
        self.failure = None
        self.seq_s = None
        self.timing = timing
        self.err = tempfile.TemporaryFile()

    def run_once(self):
        """Spawn (vfork path: no preexec_fn), wait; return (wall ms, error or None)."""
        self.err.seek(0)
        self.err.truncate()
        t0 = time.perf_counter_ns()
        rc = subprocess.call(self.argv, env=self.env, stdin=subprocess.DEVNULL,
                             stdout=subprocess.DEVNULL, stderr=self.err)
        t1 = time.perf_counter_ns()
        if rc != 0:
            self.err.seek(0)
            lines = self.err.read().decode(errors="replace").strip().splitlines()
            return None, f"exit {rc}: {lines[-1] if lines else '(no stderr)'}"
        return (t1 - t0) / 1e6, None

    def record_error(self, err, planned):
        self.errors.append(err)
        if len(self.errors) > max(1, planned // 10):
            self.failure = f"{len(self.errors)} runs failed, last: {err}"


def subjects_for(e):
    b, p, d = e.berth, e.podman, e.docker
    img = ["busybox", "true"]
    berth = [
        Subject("exec /bin/true (floor)", ["/bin/true"]),
        Subject("berth", b + ["run", "--rm"] + img, e.berth_env),
        Subject("berth --network none", b + ["run", "--rm", "--network", "none"] + img,
                e.berth_env),
        Subject("berth --network none --runtime runc",
                b + ["run", "--rm", "--network", "none", "--runtime", "runc"] + img, e.berth_env),
    ]
    if e.only_berth:
        return berth
    return berth + [
        Subject("podman --network none",
                p + ["run", "--rm", "--runtime", "runc"] + ULIMITS + ["--network", "none"] + img),
        Subject("podman bridge",
                p + ["run", "--rm", "--runtime", "runc"] + ULIMITS
                + ["--network", PODMAN_NET[0]] + img),
        Subject("docker --network none", d + ["run", "--rm", "--network", "none"] + img,
                e.docker_env),
        Subject("docker bridge", d + ["run", "--rm", "--network", DOCKER_NET[0]] + img,
                e.docker_env),
    ]


# ---------------------------------------------------------------- phases


PHASE_RE = re.compile(r"^timing: (.+?)\s+([0-9.]+) ms \(total ([0-9.]+) ms\)")


def berth_phases(e, extra, runs):
    """Run berth with BERTH_TIMING=1; return ({phase: [ms]}, [wall ms], phase order)."""
    env = dict(e.berth_env, BERTH_TIMING="1")
    phases, walls, order = {}, [], []
    for _ in range(runs):
        t0 = time.perf_counter_ns()
        r = subprocess.run(e.berth + ["run", "--rm"] + extra + ["busybox", "true"], env=env,
                           stdin=subprocess.DEVNULL, capture_output=True, text=True)
        wall = (time.perf_counter_ns() - t0) / 1e6
        if r.returncode != 0:
            continue
        walls.append(wall)
        for line in r.stderr.splitlines():
            m = PHASE_RE.match(line.strip())
            if m:
                name = m.group(1).strip()
                if name not in order:
                    order.append(name)
                phases.setdefault(name, []).append(float(m.group(2)))
        # The start and the exit cleanup time themselves separately (each line's
        # "total" restarts with the cleanup), so the total is the sum of the phases.
        marks = [PHASE_RE.match(ln.strip()) for ln in r.stderr.splitlines()]
        marks = [m for m in marks if m]
        if marks:
            phases.setdefault("(total of the phases)", []).append(
                sum(float(m.group(2)) for m in marks))
    return phases, walls, order


def berth_steps(e, extra, runs):
    """`run --rm` split into its CLI steps: create, start, wait (exit + cleanup), rm.

    Each step is its own `berth` process, so the sum carries three more CLI starts
    than `run --rm`; `berth version` is timed alongside as that per-process floor.
    """
    steps = {k: [] for k in ("create", "start", "wait", "rm", "sum", "version")}

    def timed(argv):
        t0 = time.perf_counter_ns()
        r = subprocess.run(e.berth + argv, env=e.berth_env, stdin=subprocess.DEVNULL,
                           capture_output=True, text=True)
        ms = (time.perf_counter_ns() - t0) / 1e6
        if r.returncode != 0:
            raise RuntimeError(f"berth {argv[0]}: {r.stderr.strip()[-200:]}")
        return ms, r.stdout.strip()

    for _ in range(runs):
        try:
            a, cid = timed(["create"] + extra + ["busybox", "true"])
            cid = cid.splitlines()[-1]
            b, _ = timed(["start", cid])
            c, _ = timed(["wait", cid])
            d, _ = timed(["rm", cid])
            v, _ = timed(["version"])
        except RuntimeError as err:
            print(f"engine_bench: step split: {err}", file=sys.stderr)
            continue
        for k, x in zip(steps, (a, b, c, d, a + b + c + d, v)):
            steps[k].append(x)
    return steps


# ---------------------------------------------------------------- monitor memory


def smaps(pid):
    """(Rss kB, Pss kB) of a process from smaps_rollup, or None if it is gone."""
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            text = f.read()
    except OSError:
        return None
    rss = int(re.search(r"^Rss:\s+(\d+) kB", text, re.M).group(1))
    pss = int(re.search(r"^Pss:\s+(\d+) kB", text, re.M).group(1))
    return rss, pss


def procs():
    """[(pid, exe, argv)] of every process."""
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            exe = os.readlink(f"/proc/{d}/exe")
            with open(f"/proc/{d}/cmdline", "rb") as f:
                argv = f.read().split(b"\0")
        except OSError:
            continue
        out.append((int(d), exe, [a.decode(errors="replace") for a in argv if a]))
    return out


def monitor_pids(e, engine):
    """The per-container monitor processes of our private installation only."""
    found = []
    for pid, exe, argv in procs():
        line = " ".join(argv)
        if engine == "berth" and exe == os.path.join(e.bin, "berth-monitor"):
            found.append(pid)
        elif engine == "podman" and os.path.basename(exe) == "conmon" and e.work in line:
            found.append(pid)
        elif (engine == "docker" and os.path.basename(exe) == "containerd-shim-runc-v2"
              and e.work in line):
            found.append(pid)
    return found


def daemon_pids(e):
    out = []
    for pid, exe, argv in procs():
        base = os.path.basename(exe)
        if base in ("dockerd", "containerd") and e.work in " ".join(argv):
            out.append((base, pid))
    return out


def memory(e, count):
    """Start `count` detached sleepers per engine; measure their monitors; remove them."""
    starts = {
        "berth": (e.berth + ["run", "-d", "--network", "none", "busybox", "sleep", "600"],
                  e.berth_env, e.berth + ["rm", "-f"]),
        "podman": (e.podman + ["run", "-d", "--runtime", "runc"] + ULIMITS
                   + ["--network", "none", "busybox", "sleep", "600"],
                   None, e.podman + ["rm", "-f", "-t", "0"]),
        "docker": (e.docker + ["run", "-d", "--network", "none", "busybox", "sleep", "600"],
                   e.docker_env, e.docker + ["rm", "-f"]),
    }
    if e.only_berth:
        starts = {"berth": starts["berth"]}
    results = {}
    for engine, (argv, env, rm) in starts.items():
        ids = []
        try:
            for _ in range(count):
                ids.append(check(argv, env, f"{engine} run -d").strip().splitlines()[-1])
            time.sleep(2)  # let the monitors settle (lazy page faults, log files open)
            pids = monitor_pids(e, engine)
            mem = [m for m in (smaps(p) for p in pids) if m]
            daemons = []
            if engine == "docker":
                for name, pid in daemon_pids(e):
                    m = smaps(pid)
                    if m:
                        daemons.append((name, m))
            results[engine] = {"pids": pids, "mem": mem, "daemons": daemons}
        finally:
            if ids:
                subprocess.run(rm + ids, env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    return results


# ---------------------------------------------------------------- main


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bin", default=os.path.join(REPO_DIR, "target", "release"),
                    help="dir with berth, berth-runtime, berth-monitor (default target/release)")
    ap.add_argument("-n", "--iterations", type=int, default=20,
                    help="interleaved timed runs per subject (default 20)")
    ap.add_argument("--seq", type=int, default=50, help="sequential runs per subject (default 50)")
    ap.add_argument("--phase-runs", type=int, default=20,
                    help="berth runs with BERTH_TIMING=1 (default 20)")
    ap.add_argument("--containers", type=int, default=10,
                    help="detached containers per engine for monitor memory (default 10)")
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--json", metavar="FILE", help="also write raw samples as JSON")
    ap.add_argument("--only", choices=["all", "berth"], default="all",
                    help="`berth`: only berth's subjects and monitor (no podman/docker setup)")
    args = ap.parse_args()
    if os.geteuid() != 0:
        die("must run as root")
    tools = ("podman", "conmon", "runc", "docker", "dockerd", "nft", "iptables-save", "ip")
    if args.only == "berth":
        tools = ("runc", "nft", "ip")
    for tool in tools:
        if not shutil.which(tool):
            die(f"missing {tool} (apt-get install -y podman conmon runc docker.io nftables "
                "iptables iproute2)")

    load_start = loadavg()
    work = tempfile.mkdtemp(prefix="be-", dir="/tmp")  # short: podman's runroot <= 50 chars
    e = Env(work, args.bin, only_berth=args.only == "berth")
    try:
        print("setup: bootstrap busybox" + ("" if e.only_berth else
              ", save, load into podman and a private dockerd") + " ...", file=sys.stderr)
        e.setup()
        subjects = subjects_for(e)
        for s in subjects:
            for _ in range(args.warmup):
                if s.failure:
                    break
                _, err = s.run_once()
                if err:
                    s.record_error(err, args.iterations)
        live = [s for s in subjects if not s.failure]

        print(f"1. run --rm true: {args.iterations} rounds x {len(live)} subjects, "
              "interleaved ...", file=sys.stderr)
        for i in range(args.iterations):
            k = i % len(live)
            for s in live[k:] + live[:k]:
                if s.failure:
                    continue
                ms, err = s.run_once()
                if err:
                    s.record_error(err, args.iterations)
                else:
                    s.times_ms.append(ms)

        print(f"2. {args.seq} sequential runs per subject ...", file=sys.stderr)
        for s in live:
            if s.failure or s.name.startswith("exec"):
                continue
            t0 = time.perf_counter()
            failed = 0
            for _ in range(args.seq):
                _, err = s.run_once()
                failed += err is not None
            s.seq_s = time.perf_counter() - t0
            if failed:
                s.errors.append(f"{failed} of the {args.seq} sequential runs failed")

        print("3. berth phases (BERTH_TIMING=1) ...", file=sys.stderr)
        phases = {}
        for label, extra in (("berth", []), ("berth --network none", ["--network", "none"])):
            phases[label] = berth_phases(e, extra, args.phase_runs)

        steps = {}
        for label, extra in (("berth", []), ("berth --network none", ["--network", "none"])):
            steps[label] = berth_steps(e, extra, args.phase_runs)

        print(f"4. monitor memory, {args.containers} detached containers per engine ...",
              file=sys.stderr)
        mem = memory(e, args.containers)
        load_end = loadavg()

        digests = []
        for b in ("berth", "berth-runtime", "berth-monitor"):
            with open(os.path.join(e.bin, b), "rb") as f:
                digests.append(f"{b} {hashlib.sha256(f.read()).hexdigest()[:12]}")
        versions = {
            "berth": f"{version_of(e.berth + ['version'], e.berth_env)} (from {args.bin}; "
                     f"sha256 {', '.join(digests)}; berth-monitor {e.monitor_kind})",
            "podman": version_of(["podman", "--version"]),
            "conmon": version_of(["conmon", "--version"]),
            "runc": version_of(["runc", "--version"]),
            "docker": version_of(e.docker + ["version", "--format",
                                             "client {{.Client.Version}}, server {{.Server.Version}}"],
                                 e.docker_env),
            "containerd": version_of(["containerd", "--version"]),
        }
        if e.only_berth:
            versions = {k: versions[k] for k in ("berth", "runc")}
        report(args, subjects, phases, steps, mem, versions, load_start, load_end)
        if args.json:
            with open(args.json, "w") as f:
                json.dump({"subjects": {s.name: {"times_ms": s.times_ms, "seq_s": s.seq_s,
                                                 "errors": s.errors, "failure": s.failure}
                                        for s in subjects},
                           "phases": {k: v[0] for k, v in phases.items()},
                           "steps": steps,
                           "memory": mem, "load": [load_start, load_end]}, f, indent=2)
    finally:
        e.teardown()


def report(args, subjects, phases, steps, mem, versions, load_start, load_end):
    by = {s.name: s for s in subjects}

    def med(name):
        s = by.get(name)
        return statistics.median(s.times_ms) if s and s.times_ms and not s.failure else None

    docker_t, podman_t = med("docker --network none"), med("podman --network none")
    print()
    print(f"date:   {time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime())}")
    print(f"kernel: {os.uname().release} ({os.cpu_count()} CPUs), load average at start "
          f"{load_start}, at end {load_end}")
    for k, v in versions.items():
        print(f"{k}: {v}")
    print()
    rows = []
    for s in subjects:
        if s.failure or not s.times_ms:
            rows.append([s.name, "NOT MEASURED", "-", "-", "-", "-", "-"])
            continue
        m = statistics.median(s.times_ms)
        seq = f"{s.seq_s:.2f}" if s.seq_s is not None else "-"
        rows.append([s.name, f"{m:.1f}", f"{percentile(s.times_ms, 90):.1f}",
                     f"{min(s.times_ms):.1f}", ratio(m, docker_t), ratio(m, podman_t), seq])
    print(f"1+2. run --rm busybox true: wall ms ({args.iterations} interleaved runs each); "
          f"ratios of medians vs docker/podman --network none; {args.seq} sequential runs in s")
    print(table(rows, ["subject", "median", "p90", "min", "vs docker", "vs podman",
                       f"{args.seq} runs s"]))
    for s in subjects:
        if s.failure:
            print(f"  {s.name}: NOT MEASURED: {s.failure}")
        elif s.errors:
            print(f"  {s.name}: {len(s.errors)} failures left out, last: {s.errors[-1]}")
    print()
    for label, (ph, walls, order) in phases.items():
        if not walls:
            print(f"3. {label}: no successful BERTH_TIMING run")
            continue
        print(f"3. {label}: BERTH_TIMING=1 phases, median ms over {len(walls)} runs "
              f"(wall median {statistics.median(walls):.1f} ms)")
        rows = [[k, f"{statistics.median(ph[k]):.2f}"] for k in order if ph.get(k)]
        tot = ph.get("(total of the phases)")
        if tot:
            rows.append(["(total of the phases)", f"{statistics.median(tot):.2f}"])
            rows.append(["(wall - phases: CLI, create, exec, exit, cleanup)",
                         f"{statistics.median(walls) - statistics.median(tot):.2f}"])
        print(table(rows, ["phase", "median ms"]))
        print()
    rows = []
    for label, st in steps.items():
        for k, v in st.items():
            if v:
                rows.append([f"{label}: {k}", f"{statistics.median(v):.1f}", f"{min(v):.1f}"])
    if rows:
        print(f"3b. berth run --rm split into CLI steps (create, start, wait = exit + cleanup, "
              f"rm; version = one CLI process), ms over {args.phase_runs} runs")
        print(table(rows, ["step", "median", "min"]))
        print()
    rows = []
    for engine, name in (("berth", "berth-monitor"), ("podman", "conmon"),
                         ("docker", "containerd-shim-runc-v2")):
        r = mem.get(engine)
        if not r or not r["mem"]:
            rows.append([f"{engine}: {name}", "0", "-", "-", "-", "-"])
            continue
        rss = [m[0] for m in r["mem"]]
        pss = [m[1] for m in r["mem"]]
        rows.append([f"{engine}: {name}", str(len(rss)), f"{sum(rss) / 1024:.1f}",
                     f"{sum(pss) / 1024:.1f}", f"{statistics.median(rss) / 1024:.2f}",
                     f"{statistics.median(pss) / 1024:.2f}"])
    for dname, (rss, pss) in mem.get("docker", {}).get("daemons", []):
        rows.append([f"docker: {dname} (shared)", "1", f"{rss / 1024:.1f}", f"{pss / 1024:.1f}",
                     "-", "-"])
    print(f"4. monitor memory with {args.containers} detached `sleep 600` containers per engine "
          "(MiB, /proc/PID/smaps_rollup)")
    print(table(rows, ["process", "count", "RSS sum", "PSS sum", "RSS/container",
                       "PSS/container"]))
    print()
    b = med("berth")
    bs = by["berth"].seq_s
    bm = mem.get("berth", {}).get("mem")
    print("issue 6 targets: <= 30 ms per run, 50 runs <= 1.5 s, monitor < 1 MiB RSS")
    print(f"  berth run --rm: median {b if b is None else f'{b:.1f}'} ms; "
          f"{args.seq} runs {bs if bs is None else f'{bs:.2f}'} s; monitor RSS median "
          f"{statistics.median([m[0] for m in bm]) / 1024:.2f} MiB" if bm else
          "  (berth not fully measured)")


if __name__ == "__main__":
    signal.signal(signal.SIGINT, signal.default_int_handler)
    main()
