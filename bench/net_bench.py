#!/usr/bin/env python3
"""berth-net: time added to a run by network setup, and TCP throughput.

1. Setup: the berth-net example driver `net_timing` attaches and detaches a
   container on an existing private bridge network ITER times, without and with
   one published port (-p 0.0.0.0::80), and reports medians in ms. The first attach
   (which creates the bridge and the nft table) is reported separately.
2. Throughput (iperf3, TCP, T seconds each), as ratios of a bare veth pair
   (host <-> namespace, no bridge, no NAT) measured in the same run:
     - host -> container through a published port on 127.0.0.1 (DNAT, no proxy)
     - host -> container through a published port on the bridge address
     - container -> container on the same bridge
   The namespaces and bridge come from the `net_hold` example driver.

Peers (podman/netavark, docker-proxy) are not measured here: no image can be
pulled on this machine and no dockerd runs. Benchmarks, not tests: nothing asserts.
All traffic stays inside namespaces/bridges created here; every object has a
unique name (pid) and is removed at the end.

  cargo build --release -p berth-net --examples
  sudo bench/net_bench.py [--bin /work/target-net/release/examples] [-n 50] [-t 5]
Needs root, iperf3 and util-linux (nsenter), iproute2.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import time


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


def iperf(server_ns, client_ns, addr, port, seconds, server_port=None):
    """Runs a one-off iperf3 server on server_port (in server_ns, or the host if
    None) and a client to addr:port; returns received Gbit/s."""
    pre = lambda ns: ["nsenter", f"--net={ns}"] if ns else []
    srv = subprocess.Popen(pre(server_ns) + ["iperf3", "-s", "-1", "-p", str(server_port or port)],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(50):
            time.sleep(0.1)
            r = subprocess.run(pre(client_ns) + ["iperf3", "-c", addr, "-p", str(port), "-t", str(seconds), "-J"],
                               capture_output=True, text=True)
            if r.returncode == 0:
                j = json.loads(r.stdout)
                return j["end"]["sum_received"]["bits_per_second"] / 1e9
        raise RuntimeError(f"iperf3 to {addr}:{port} failed: {r.stdout[-300:]} {r.stderr[-300:]}")
    finally:
        try:
            srv.wait(timeout=seconds + 10)
        except subprocess.TimeoutExpired:
            srv.kill()
            srv.wait()


def bare_veth(subnet, seconds):
    b, c = subnet
    pid = os.getpid()
    ns, host, peer = f"bnb{pid}", f"bnv{pid}a", f"bnv{pid}b"
    sh("ip", "netns", "add", ns)
    try:
        sh("ip", "link", "add", host, "type", "veth", "peer", "name", peer, "netns", ns)
        sh("ip", "addr", "add", f"10.{b}.{c}.1/24", "dev", host)
        sh("ip", "link", "set", host, "up")
        sh("ip", "-n", ns, "addr", "add", f"10.{b}.{c}.2/24", "dev", peer)
        sh("ip", "-n", ns, "link", "set", peer, "up")
        sh("ip", "-n", ns, "link", "set", "lo", "up")
        return iperf(f"/run/netns/{ns}", None, f"10.{b}.{c}.2", 5201, seconds)
    finally:
        subprocess.run(["ip", "link", "del", host], capture_output=True)
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", default="/work/target-net/release/examples")
    ap.add_argument("-n", type=int, default=50, help="attach/detach iterations")
    ap.add_argument("-t", type=int, default=5, help="seconds per iperf3 run")
    a = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("needs root")
    for tool in ("iperf3", "nsenter", "ip", "nft"):
        if not shutil.which(tool):
            sys.exit(f"missing {tool}")
    pid = os.getpid()
    (b1, c1), (b2, c2), (b3, c3) = free_subnets(3)
    print(time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()), "kernel", os.uname().release,
          "load", " ".join(f"{x:.2f}" for x in os.getloadavg()))
    fwd = open("/proc/sys/net/ipv4/ip_forward").read().strip()

    print("\n== setup time (median ms over", a.n, "iterations) ==")
    t = json.loads(sh(f"{a.bin}/net_timing", f"10.{b1}.{c1}.0/24", str(a.n), f"bnt{pid}", f"bnt{pid}"))
    for k in ("first_attach_ms", "attach_ms", "detach_ms", "attach_port_ms", "detach_port_ms"):
        print(f"  {k:18} {t[k]:8.3f}")

    print("\n== TCP throughput (iperf3, Gbit/s; ratio to a bare veth pair) ==")
    base = bare_veth((b2, c2), a.t)
    hold = subprocess.Popen([f"{a.bin}/net_hold", f"10.{b3}.{c3}.0/24", f"bnh{pid}", f"bnh{pid}"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        info = json.loads(hold.stdout.readline())
        rows = [("bare veth host -> netns", base)]
        rows.append(("published 127.0.0.1:port", iperf(info["srv_netns"], None, "127.0.0.1", info["host_port"], a.t, 5201)))
        rows.append(("published bridge-addr:port", iperf(info["srv_netns"], None, info["gateway"], info["host_port"], a.t, 5201)))
        rows.append(("container -> container", iperf(info["srv_netns"], info["cli_netns"], info["srv_ip"], 5201, a.t)))
    finally:
        hold.stdin.close()
        hold.wait(timeout=30)
        with open("/proc/sys/net/ipv4/ip_forward", "w") as f:
            f.write(fwd)
    for name, gbps in rows:
        print(f"  {name:28} {gbps:8.2f} Gbit/s  ratio {gbps / base:5.2f}")


if __name__ == "__main__":
    main()
