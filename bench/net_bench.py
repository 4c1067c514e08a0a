#!/usr/bin/env python3
"""berth-net: time added to a run by network setup, and TCP throughput vs peers.

1. Setup: the berth-net example driver `net_timing` attaches and detaches a
   container on an existing private bridge network ITER times, without and with
   one published port (-p 0.0.0.0::80), and reports medians in ms: wall time,
   CPU time of the calling thread (load-independent), wall time of a CLI-like
   fresh handle per call, and the per-phase breakdown; then again with the etc
   files on tmpfs. State dir and etc files on disk (/tmp), runtime dir on tmpfs
   (/dev/shm, standing in for /run), as the engine lays them out. The first
   attach (which creates the bridge and the nft table) is reported separately.
2. Throughput (iperf3, TCP, T seconds each, R interleaved rounds, median), as
   ratios of a bare veth pair (host <-> namespace, no bridge, no NAT) measured
   in the same run (ratio of the medians, and the median of each round's ratio
   to that round's bare pair); every iperf3 server is started once and stays up:
     - berth: host -> container through a published port on 127.0.0.1 and on
       the bridge address (no proxy: the host's TCP connects are redirected to
       the container by berth's cgroup connect4 program, nftables DNAT with
       BERTH_NET_SOCKLB=0), container -> container on one bridge (the
       same-network shortcut; namespaces from the `net_hold` example driver;
       iperf3 runs in them through nsenter);
     - docker (private dockerd: own data/exec root and socket, --iptables=false,
       so published ports go through docker-proxy, docker's userland proxy):
       host -> 127.0.0.1:port and container -> container;
     - podman (--runtime runc, netavark bridge, iptables DNAT): host -> bridge
       address:port, host -> 127.0.0.1:port, container -> container.
   docker and podman run iperf3 from an image made here: a rootfs tar with the
   host's /usr/bin/iperf3 and the libraries ldd lists, `docker/podman import`ed.
   Peers are skipped (and said so) when their tools are missing.

Benchmarks, not tests: nothing asserts. All traffic stays inside namespaces and
bridges created here; every object has a unique name (pid) and is removed at the
end (podman's netavark may create `ip nat`/`ip filter` iptables-nft tables; those
that did not exist before and hold only netavark rules are removed, as in
engine_bench.py).

  cargo build --release -p berth-net --examples
  sudo bench/net_bench.py [--bin /work/target-net/release/examples] [-n 50] [-t 5]
                          [-r 5] [--no-peers]
Needs root, iperf3, util-linux (nsenter), iproute2, nftables; for the peer rows
docker.io (dockerd, docker-proxy), docker CLI, podman, runc, conmon.
"""
import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from engine_bench import (ULIMITS, nft_tables, remove_netavark_tables,  # noqa: E402
                          spawn_dockerd)


def sh(*args, **kw):
    return subprocess.run(args, check=True, capture_output=True, text=True, **kw).stdout


def free_subnets(count):
    routes = sh("ip", "-4", "route", "show", "table", "all")
    out = []
    start = os.getpid() % 50
    for k in range(51 * 256):
        b, c = 200 + (start + k // 256) % 51, k % 256
        if f"10.{b}.{c}." not in routes and f"10.{b}.0.0/16" not in routes:
            out.append((b, c))
            if len(out) == count:
                return out
    sys.exit("no free 10.200-250.x.0/24 subnet")


def iperf_client(addr, port, seconds):
    """iperf3 client on the host against an already running server; Gbit/s."""
    for _ in range(50):
        r = subprocess.run(["iperf3", "-c", addr, "-p", str(port), "-t", str(seconds), "-J"],
                           capture_output=True, text=True)
        if r.returncode == 0:
            return json.loads(r.stdout)["end"]["sum_received"]["bits_per_second"] / 1e9
        time.sleep(0.2)
    raise RuntimeError(f"iperf3 to {addr}:{port} failed: {r.stdout[-300:]} {r.stderr[-300:]}")


def iperf_rootfs(work):
    """A rootfs tar holding the host's iperf3 and its shared libraries."""
    root = os.path.join(work, "iperf-root")
    files = ["/usr/bin/iperf3"]
    for line in sh("ldd", "/usr/bin/iperf3").splitlines():
        parts = line.split()
        path = parts[2] if "=>" in parts and len(parts) > 2 else parts[0]
        if path.startswith("/"):
            files.append(path)
    for f in files:
        dst = root + f
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        shutil.copy2(os.path.realpath(f), dst)
    os.makedirs(os.path.join(root, "tmp"), exist_ok=True)  # iperf3 mkstemp()s there
    os.chmod(os.path.join(root, "tmp"), 0o1777)
    tar = os.path.join(work, "iperf.tar")
    sh("tar", "-C", root, "-cf", tar, ".")
    return tar


class Peers:
    """A private dockerd and a private podman store, each with one bridge network."""

    def __init__(self, work, docker_net, podman_net):
        self.work = work
        self.docker_net = docker_net  # (name, bridge, subnet)
        self.podman_net = podman_net  # (name, bridge, subnet, gateway)
        self.sock = f"unix://{work}/docker.sock"
        self.denv = dict(os.environ, DOCKER_HOST=self.sock)
        self.dockerd = None
        self.podman = ["podman", "--root", os.path.join(work, "proot"),
                       "--runroot", os.path.join(work, "prun"), "--storage-driver", "overlay",
                       "--cgroup-manager", "cgroupfs",
                       "--network-config-dir", os.path.join(work, "pnet")]
        self.fw_before = nft_tables()

    def docker(self, *args, **kw):
        return subprocess.run(["docker", *args], env=self.denv, capture_output=True,
                              text=True, **kw)

    def start_docker(self, tar):
        self.dockerd, log = spawn_dockerd(self.work, self.sock)
        for _ in range(150):
            if self.docker("info").returncode == 0:
                break
            if self.dockerd.poll() is not None:
                raise RuntimeError(f"dockerd exited {self.dockerd.returncode}, see {log.name}")
            time.sleep(0.2)
        else:
            raise RuntimeError("dockerd did not come up in 30 s")
        check_run(["docker", "import", tar, "bnb-iperf:local"], self.denv)
        name, bridge, subnet = self.docker_net
        check_run(["docker", "network", "create", "--subnet", subnet,
                   "-o", f"com.docker.network.bridge.name={bridge}", name], self.denv)

    def start_podman(self, tar):
        pnet = os.path.join(self.work, "pnet")
        os.makedirs(pnet, exist_ok=True)
        name, bridge, subnet, gw = self.podman_net
        with open(os.path.join(pnet, f"{name}.json"), "w") as f:
            # podman 4.3 cannot name the bridge on `network create`; netavark reads this.
            json.dump({"name": name, "id": "b4e1c0ffee" + "0" * 52 + "aa", "driver": "bridge",
                       "network_interface": bridge, "created": "2026-01-01T00:00:00Z",
                       "subnets": [{"subnet": subnet, "gateway": gw}], "ipv6_enabled": False,
                       "internal": False, "dns_enabled": False,
                       "ipam_options": {"driver": "host-local"}}, f)
        check_run(self.podman + ["import", tar, "bnb-iperf:local"], None)

    def docker_servers(self, host_port):
        """Starts the iperf3 server container; returns {row name: measure(seconds)}."""
        name = self.docker_net[0]
        check_run(["docker", "run", "-d", "--name", "bnb-srv", "--network", name,
                   "-p", f"127.0.0.1:{host_port}:5201", "bnb-iperf:local",
                   "/usr/bin/iperf3", "-s"], self.denv)
        ip = check_run(["docker", "inspect", "-f",
                        "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", "bnb-srv"],
                       self.denv).strip()

        def c2c(seconds):
            out = check_run(["docker", "run", "--rm", "--network", name, "bnb-iperf:local",
                             "/usr/bin/iperf3", "-c", ip, "-t", str(seconds), "-J"], self.denv)
            return json.loads(out)["end"]["sum_received"]["bits_per_second"] / 1e9

        return {"docker -p 127.0.0.1:port (docker-proxy)":
                lambda t: iperf_client("127.0.0.1", host_port, t),
                "docker container -> container": c2c}

    def podman_servers(self, host_port):
        name, _, _, gw = self.podman_net
        run = self.podman + ["run", "--runtime", "runc"] + ULIMITS + ["--network", name]
        check_run(run + ["-d", "--name", "bnb-srv", "-p", f"{host_port}:5201",
                         "bnb-iperf:local", "/usr/bin/iperf3", "-s"], None)
        ip = check_run(self.podman + ["inspect", "-f",
                                      "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}",
                                      "bnb-srv"], None).strip()

        def c2c(seconds):
            out = check_run(run + ["--rm", "bnb-iperf:local", "/usr/bin/iperf3", "-c", ip,
                                   "-t", str(seconds), "-J"], None)
            return json.loads(out)["end"]["sum_received"]["bits_per_second"] / 1e9

        return {"podman -p bridge-addr:port (DNAT)": lambda t: iperf_client(gw, host_port, t),
                "podman -p 127.0.0.1:port (DNAT)":
                lambda t: iperf_client("127.0.0.1", host_port, t),
                "podman container -> container": c2c}

    def teardown(self):
        def quiet(argv, env=None):
            subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

        quiet(self.podman + ["rm", "-a", "-f", "-t", "0"])
        if self.dockerd is not None and self.dockerd.poll() is None:
            quiet(["docker", "rm", "-f", "bnb-srv"], self.denv)
            quiet(["docker", "network", "rm", self.docker_net[0]], self.denv)
            self.dockerd.send_signal(signal.SIGTERM)
            try:
                self.dockerd.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.dockerd.kill()
                self.dockerd.wait()
        for iface in (self.docker_net[1], self.podman_net[1]):
            if os.path.exists(f"/sys/class/net/{iface}"):
                quiet(["ip", "link", "del", iface])
        remove_netavark_tables(self.fw_before)
        with open("/proc/self/mountinfo") as f:
            mps = [line.split()[4] for line in f if line.split()[4].startswith(self.work)]
        for mp in sorted(mps, key=len, reverse=True):
            quiet(["umount", "-l", mp])


def check_run(argv, env):
    r = subprocess.run(argv, env=env, capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(argv[:4])}...: exit {r.returncode}: {r.stderr.strip()[-300:]}")
    return r.stdout


def ns_server(ns, port):
    """A persistent iperf3 server inside the namespace file `ns`."""
    return subprocess.Popen(["nsenter", f"--net={ns}", "iperf3", "-s", "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def ns_client(ns, addr, port, seconds):
    """iperf3 client run inside the namespace file `ns`; Gbit/s."""
    for _ in range(50):
        r = subprocess.run(["nsenter", f"--net={ns}", "iperf3", "-c", addr, "-p", str(port),
                            "-t", str(seconds), "-J"], capture_output=True, text=True)
        if r.returncode == 0:
            return json.loads(r.stdout)["end"]["sum_received"]["bits_per_second"] / 1e9
        time.sleep(0.2)
    raise RuntimeError(f"iperf3 to {addr}:{port} failed: {r.stdout[-300:]} {r.stderr[-300:]}")


class BareVeth:
    """host <-> namespace veth pair, no bridge, no NAT: the baseline."""

    def __init__(self, subnet):
        b, c = subnet
        pid = os.getpid()
        self.ns, self.host = f"bnb{pid}", f"bnv{pid}a"
        self.addr = f"10.{b}.{c}.2"
        sh("ip", "netns", "add", self.ns)
        self.srv = None
        sh("ip", "link", "add", self.host, "type", "veth", "peer", "name", f"bnv{pid}b",
           "netns", self.ns)
        sh("ip", "addr", "add", f"10.{b}.{c}.1/24", "dev", self.host)
        sh("ip", "link", "set", self.host, "up")
        sh("ip", "-n", self.ns, "addr", "add", f"{self.addr}/24", "dev", f"bnv{pid}b")
        sh("ip", "-n", self.ns, "link", "set", f"bnv{pid}b", "up")
        sh("ip", "-n", self.ns, "link", "set", "lo", "up")
        self.srv = ns_server(f"/run/netns/{self.ns}", 5201)

    def close(self):
        if self.srv:
            self.srv.kill()
            self.srv.wait()
        subprocess.run(["ip", "link", "del", self.host], capture_output=True)
        subprocess.run(["ip", "netns", "del", self.ns], capture_output=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", default="/work/target-net/release/examples")
    ap.add_argument("-n", type=int, default=50, help="attach/detach iterations")
    ap.add_argument("-t", type=int, default=5, help="seconds per iperf3 run")
    ap.add_argument("-r", "--rounds", type=int, default=3, help="interleaved iperf3 rounds")
    ap.add_argument("--no-peers", action="store_true", help="skip the docker and podman rows")
    a = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("needs root")
    for tool in ("iperf3", "nsenter", "ip", "nft"):
        if not shutil.which(tool):
            sys.exit(f"missing {tool}")
    pid = os.getpid()
    (b1, c1), (b2, c2), (b3, c3), (b4, c4), (b5, c5) = free_subnets(5)
    print(time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()), "kernel", os.uname().release,
          "load", " ".join(f"{x:.2f}" for x in os.getloadavg()))
    fwd = open("/proc/sys/net/ipv4/ip_forward").read().strip()

    print("\n== setup time (median ms over", a.n, "iterations) ==")
    t = json.loads(sh(f"{a.bin}/net_timing", f"10.{b1}.{c1}.0/24", str(a.n), f"bnt{pid}", f"bnt{pid}"))
    print(f"  {'first attach':24} {t['first_attach_ms']:8.3f}")
    print(f"  {'':24} {'wall':>8} {'cpu':>8}")
    for op in ("attach", "detach", "attach_port", "detach_port"):
        print(f"  {op:24} {t[op + '_ms']:8.3f} {t[op + '_cpu_ms']:8.3f}")
    for op in ("cli_attach_port", "cli_detach_port"):
        print(f"  {op:24} {t[op + '_ms']:8.3f}")
    # The engine keeps the etc files on disk; how much a tmpfs etc dir would save:
    t2 = json.loads(subprocess.run([f"{a.bin}/net_timing", f"10.{b1}.{c1}.0/24", str(a.n),
                                    f"bnt{pid}", f"bnt{pid}"], check=True, capture_output=True,
                                   text=True, env=dict(os.environ, NET_TIMING_ETC="/dev/shm")
                                   ).stdout)
    for op in ("attach", "detach", "attach_port", "detach_port"):
        print(f"  {op + ' (etc on tmpfs)':24} {t2[op + '_ms']:8.3f} {t2[op + '_cpu_ms']:8.3f}")
    print("  phases (median ms):")
    for op, phases in t["phases"].items():
        top = sorted(phases.items(), key=lambda kv: -kv[1])
        print(f"    {op:16} " + ", ".join(f"{k} {v:.2f}" for k, v in top if v >= 0.05))
    print("  load", " ".join(f"{x:.2f}" for x in os.getloadavg()))

    print(f"\n== TCP throughput (iperf3 {a.t} s, median of {a.rounds} interleaved rounds,"
          " Gbit/s; ratio to a bare veth pair) ==")
    rows = {}  # name -> measure(seconds) -> Gbit/s; insertion order = print order
    cleanups = []
    work = tempfile.mkdtemp(prefix="nb-", dir="/tmp")  # short: podman's runroot <= 50 chars
    try:
        bare = BareVeth((b2, c2))
        cleanups.append(bare.close)
        rows["bare veth host -> netns"] = lambda t: iperf_client(bare.addr, 5201, t)

        hold = subprocess.Popen([f"{a.bin}/net_hold", f"10.{b3}.{c3}.0/24", f"bnh{pid}",
                                 f"bnh{pid}"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                text=True)

        def stop_hold():
            hold.stdin.close()
            hold.wait(timeout=30)
        cleanups.append(stop_hold)
        info = json.loads(hold.stdout.readline())
        srv = ns_server(info["srv_netns"], 5201)
        cleanups.append(lambda: (srv.kill(), srv.wait()))
        hp = info["host_port"]
        rows["berth -p 127.0.0.1:port"] = lambda t: iperf_client("127.0.0.1", hp, t)
        rows["berth -p bridge-addr:port"] = lambda t: iperf_client(info["gateway"], hp, t)
        rows["berth container -> container"] = \
            lambda t: ns_client(info["cli_netns"], info["srv_ip"], 5201, t)

        if not a.no_peers:
            missing = [t for t in ("docker", "dockerd", "docker-proxy", "podman", "runc",
                                   "conmon", "tar", "iptables-save") if not shutil.which(t)]
            if missing:
                print(f"  (peer rows skipped: missing {' '.join(missing)})")
            else:
                peers = Peers(work, (f"bnbd{pid}", f"bnbd{pid}", f"10.{b4}.{c4}.0/24"),
                              (f"bnbp{pid}", f"bnbp{pid}", f"10.{b5}.{c5}.0/24",
                               f"10.{b5}.{c5}.1"))
                cleanups.append(peers.teardown)
                tar = iperf_rootfs(work)
                for name, start, servers in (("docker", peers.start_docker, peers.docker_servers),
                                             ("podman", peers.start_podman, peers.podman_servers)):
                    try:
                        start(tar)
                        rows.update(servers(free_port()))
                    except RuntimeError as e:
                        print(f"  ({name} rows skipped: {e})")

        results = {name: [] for name in rows}
        names = list(rows)
        for r in range(a.rounds):
            for name in names[r % len(names):] + names[:r % len(names)]:
                try:
                    results[name].append((r, rows[name](a.t)))
                except RuntimeError as e:
                    print(f"  ({name}: {str(e)[:160]})")
    finally:
        for c in reversed(cleanups):
            try:
                c()
            except Exception as e:  # keep cleaning up
                print(f"  (cleanup: {e})", file=sys.stderr)
        shutil.rmtree(work, ignore_errors=True)
        # netavark switches forwarding on and leaves it so.
        with open("/proc/sys/net/ipv4/ip_forward", "w") as f:
            f.write(fwd)
    med = {n: statistics.median(x for _, x in v) for n, v in results.items() if v}
    bare_name = "bare veth host -> netns"
    base = med.get(bare_name)
    bare_in = dict(results.get(bare_name, []))
    # Each round also measured the bare pair minutes apart at most: the median of
    # the per-round ratios is steadier than the ratio of medians on shared cores.
    print(f"  {'':40} {'Gbit/s':>8}  {'vs bare veth':>12}  {'per round':>9}  runs")
    for name in rows:
        if name in med:
            runs = " ".join(f"{x:.2f}" for _, x in results[name])
            ratio = f"{med[name] / base:12.2f}" if base else f"{'n/a':>12}"
            paired = [x / bare_in[r] for r, x in results[name] if bare_in.get(r)]
            per_round = f"{statistics.median(paired):9.2f}" if paired else f"{'n/a':>9}"
            print(f"  {name:40} {med[name]:8.2f}  {ratio}  {per_round}  {runs}")
    print("  load", " ".join(f"{x:.2f}" for x in os.getloadavg()))


def free_port():
    import socket
    with socket.socket() as s:
        s.bind(("0.0.0.0", 0))
        return s.getsockname()[1]


if __name__ == "__main__":
    main()
