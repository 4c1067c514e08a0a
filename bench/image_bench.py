#!/usr/bin/env python3
"""Image load/unpack and pull throughput: berth against podman and skopeo (and docker).

Builds a multi-layer image locally (no network): LAYERS layers of random (incompressible)
files plus many small text files, at least 200 MB uncompressed, as an OCI layout; skopeo
turns it into a docker-archive tarball X. Then, interleaved, each round:

  berth  --root DIR load -i X                                      (fresh DIR)
  podman --root R --runroot RR --storage-driver overlay load -i X  (fresh R)
  skopeo copy docker-archive:X containers-storage:[overlay@R+RR]localhost/bench:1
  docker load -i X                                                 (only if dockerd runs)

With --pull the same image is pushed once (skopeo copy docker-archive:X docker://...)
into a private Debian `docker-registry` on 127.0.0.1 (free port, temp storage, own
config; killed by PID at the end) and each round pulls it instead (plain http, loopback):

  berth  --root DIR pull REG/bench:1                                (fresh DIR)
  podman --root R --runroot RR --storage-driver overlay pull --tls-verify=false REG/bench:1
  skopeo copy --src-tls-verify=false docker://REG/bench:1 containers-storage:[overlay@R+RR]REG/bench:1
  docker pull REG/bench:1                                           (only if dockerd runs)

Every tool starts from an empty store, so every one fetches or reads, verifies, stores and
unpacks every layer. The order rotates each round; stores are deleted only between rounds,
followed by a --settle pause (see the comment in main: ext4 without a journal makes file
creation slow for ~30 s after many deletions). Reported: median seconds, MB/s of uncompressed
image, and each peer's time as a ratio of berth's (> 1.0 means berth is faster).

The berth command defaults to `berth` (the CLI; `--berth` may carry extra global flags,
e.g. "berth --run-root /tmp/x"); the library's example driver takes the same arguments:
  cargo build --release -p berth-image --examples
  bench/image_bench.py --berth /work/target-image/release/examples/image_tool
Needs root, skopeo and podman (apt-get install skopeo podman); --pull also docker-registry.
"""
import argparse
import gzip
import hashlib
import io
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time


def sha(b):
    return "sha256:" + hashlib.sha256(b).hexdigest()


def make_layer(i, mb, rng_seed):
    """One layer tar: ~mb MB, 2/3 random data in a few big files, 1/3 small text files."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        def add(name, data, mode=0o644):
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            ti.mode = mode
            ti.mtime = 1700000000
            tf.addfile(ti, io.BytesIO(data))

        def adddir(name):
            ti = tarfile.TarInfo(name)
            ti.type = tarfile.DIRTYPE
            ti.mode = 0o755
            ti.mtime = 1700000000
            tf.addfile(ti)

        adddir(f"layer{i}")
        adddir(f"layer{i}/bin")
        adddir(f"layer{i}/text")
        rnd_bytes = mb * (2 << 20) // 3
        chunk = 8 << 20
        n = 0
        while rnd_bytes > 0:
            size = min(chunk, rnd_bytes)
            add(f"layer{i}/bin/blob{n}", os.urandom(size), 0o755)
            rnd_bytes -= size
            n += 1
        text_bytes = mb * (1 << 20) // 3
        words = [f"word{k} lorem ipsum dolor sit amet {rng_seed} " for k in range(64)]
        k = 0
        while text_bytes > 0:
            body = ("".join(words[(k + j) % 64] for j in range(40)) + "\n").encode() * 10
            d = f"layer{i}/text/d{k // 200}"
            if k % 200 == 0:
                adddir(d)
            add(f"{d}/f{k}.txt", body)
            text_bytes -= len(body)
            k += 1
    return buf.getvalue()


def make_image(work, layers, mb_per_layer):
    """An OCI layout dir with gzip layers; returns (oci_dir, uncompressed_bytes)."""
    oci = os.path.join(work, "oci")
    blobs = os.path.join(oci, "blobs", "sha256")
    os.makedirs(blobs)

    def put(b):
        d = sha(b)
        with open(os.path.join(blobs, d[7:]), "wb") as f:
            f.write(b)
        return d

    descs, diff_ids, total = [], [], 0
    for i in range(layers):
        raw = make_layer(i, mb_per_layer, i)
        total += len(raw)
        diff_ids.append(sha(raw))
        gz = gzip.compress(raw, compresslevel=1, mtime=0)
        descs.append({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": put(gz), "size": len(gz)})
    config = json.dumps({
        "architecture": "amd64", "os": "linux", "created": "2026-01-01T00:00:00Z",
        "config": {"Cmd": ["sh"], "Env": ["PATH=/bin"]},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    }).encode()
    cd = put(config)
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd, "size": len(config)},
        "layers": descs,
    }).encode()
    md = put(manifest)
    with open(os.path.join(oci, "index.json"), "w") as f:
        json.dump({"schemaVersion": 2, "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": md, "size": len(manifest),
            "annotations": {"org.opencontainers.image.ref.name": "bench"}}]}, f)
    with open(os.path.join(oci, "oci-layout"), "w") as f:
        f.write('{"imageLayoutVersion":"1.0.0"}')
    return oci, total


def timed(cmd, env=None):
    t0 = time.perf_counter()
    r = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    dt = time.perf_counter() - t0
    if r.returncode != 0:
        sys.exit(f"failed: {' '.join(cmd)}\n{r.stderr.decode(errors='replace')}")
    return dt


def fresh(path):
    if os.path.exists(path):
        # podman's overlay driver may leave mounts under its root.
        subprocess.run(["sh", "-c", f"grep -o ' {path}[^ ]*' /proc/self/mounts | sort -r | xargs -r -n1 umount -l"],
                       check=False)
        shutil.rmtree(path, ignore_errors=True)
    os.makedirs(path)
    return path


def free_port():
    # The registry binds it a moment later; a loopback port stolen in between is unlikely
    # and would make the registry exit, which start_registry reports.
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_registry(work):
    """Debian's docker-registry on 127.0.0.1:<free port>, storage and config under work.

    Returns (process, "127.0.0.1:PORT"). Plain http: every client here treats loopback
    registries as insecure (berth automatically, the others by their tls-verify flags)."""
    exe = shutil.which("docker-registry")
    if exe is None:
        sys.exit("docker-registry missing: apt-get install docker-registry")
    port = free_port()
    storage = os.path.join(work, "registry")
    os.makedirs(storage)
    conf = os.path.join(work, "registry.yml")
    with open(conf, "w") as f:
        # JSON is YAML; no auth, no access log (it would cost CPU during the pulls).
        json.dump({"version": 0.1,
                   "log": {"level": "error", "accesslog": {"disabled": True}},
                   "storage": {"filesystem": {"rootdirectory": storage}, "delete": {"enabled": True}},
                   "http": {"addr": f"127.0.0.1:{port}"}}, f)
    log = open(os.path.join(work, "registry.log"), "wb")
    proc = subprocess.Popen([exe, "serve", conf], stdout=log, stderr=subprocess.STDOUT)
    addr = f"127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            sys.exit(f"docker-registry exited ({proc.returncode}); see {log.name}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return proc, addr
        except OSError:
            time.sleep(0.1)
    proc.kill()
    sys.exit(f"docker-registry did not listen on {addr} within 20 s")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--berth", default="berth", help="berth command (or the image_tool example)")
    ap.add_argument("--pull", action="store_true",
                    help="measure pull from a private loopback registry instead of load")
    ap.add_argument("--layers", type=int, default=5)
    ap.add_argument("--mb-per-layer", type=int, default=45)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--workdir", default=None)
    ap.add_argument("--settle", type=float, default=40,
                    help="seconds to wait after each round's deletions (ext4 recently-deleted window)")
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("run as root")
    for tool in ("skopeo", "podman"):
        if shutil.which(tool) is None:
            sys.exit(f"{tool} missing: apt-get install skopeo podman")
    work = args.workdir or tempfile.mkdtemp(prefix=f"image-bench-{os.getpid()}-", dir="/var/tmp")
    registry = None
    tools = {}
    try:
        print(f"building a {args.layers}-layer image ...", flush=True)
        oci, total = make_image(work, args.layers, args.mb_per_layer)
        archive = os.path.join(work, "image.tar")
        subprocess.run(["skopeo", "copy", "-q", f"oci:{oci}:bench", f"docker-archive:{archive}:localhost/bench:1"],
                       check=True)
        mb = total / 1e6
        print(f"image: {args.layers} layers, {mb:.0f} MB uncompressed, archive {os.path.getsize(archive) / 1e6:.0f} MB")
        if mb < 200:
            print("warning: image smaller than 200 MB", file=sys.stderr)
        berth = args.berth.split()

        def runroot(tag):
            # containers/storage refuses a runroot longer than 50 characters.
            return f"/run/ibench-{os.getpid()}-{tag}"

        have_docker = shutil.which("docker") and subprocess.run(
            ["docker", "info"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode == 0
        if args.pull:
            registry, addr = start_registry(work)
            ref = f"{addr}/bench:1"
            t0 = time.perf_counter()
            subprocess.run(["skopeo", "copy", "-q", "--dest-tls-verify=false", f"docker-archive:{archive}",
                            f"docker://{ref}"], check=True)
            print(f"registry {addr} (pid {registry.pid}); push took {time.perf_counter() - t0:.1f}s")
            docker_ref = ref
            tools = {
                "berth": lambda d: berth + ["--root", d, "pull", "-q", ref],
                "podman pull": lambda d: ["podman", "--root", d + "/root", "--runroot", runroot("p"),
                                          "--storage-driver", "overlay", "--tmpdir", d + "/tmp",
                                          "pull", "-q", "--tls-verify=false", ref],
                "skopeo copy": lambda d: ["skopeo", "copy", "-q", "--src-tls-verify=false", f"docker://{ref}",
                                          f"containers-storage:[overlay@{d}/root+{runroot('s')}]{ref}"],
            }
            if have_docker:  # dockerd treats 127.0.0.0/8 registries as insecure by default
                tools["docker pull"] = lambda d: ["docker", "pull", "-q", ref]
        else:
            docker_ref = "localhost/bench:1"
            tools = {
                "berth": lambda d: berth + ["--root", d, "load", "-i", archive],
                "podman load": lambda d: ["podman", "--root", d + "/root", "--runroot", runroot("p"),
                                          "--storage-driver", "overlay", "--tmpdir", d + "/tmp", "load", "-q",
                                          "-i", archive],
                "skopeo copy": lambda d: ["skopeo", "copy", "-q", f"docker-archive:{archive}",
                                          f"containers-storage:[overlay@{d}/root+{runroot('s')}]localhost/bench:1"],
            }
            if have_docker:
                tools["docker load"] = lambda d: ["docker", "load", "-q", "-i", archive]
        docker = [k for k in tools if k.startswith("docker")]
        times = {k: [] for k in tools}
        if docker:  # a tag (and layers) left by an earlier run must not shadow round 1
            subprocess.run(["docker", "rmi", "-f", docker_ref], stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
        for r in range(args.rounds):
            used = []
            items = list(tools.items())
            k = r % len(items)  # rotate the order each round
            for name, cmd in items[k:] + items[:k]:
                d = fresh(os.path.join(work, "store-" + name.replace(" ", "-")))
                used.append(d)
                subprocess.run(["sync"])
                dt = timed(cmd(d))
                times[name].append(dt)
                print(f"round {r + 1} {name:12s} {dt:7.2f}s", flush=True)
            # Deleting a store frees ~6000 inodes; on an ext4 without a journal (this host's
            # root) the inode allocator then skips every inode freed in the last 30-35 s
            # (fs/ext4/ialloc.c recently_deleted()), re-reading inode-table blocks for each
            # candidate, so whoever creates files next pays seconds of system time (berth's
            # load measured 1.3 s on a clean disk, 7 s right after another tool's store was
            # removed). So nothing is deleted while a tool runs: the round's stores (and
            # docker's copy) go at the end of the round, then the window is waited out.
            for d in used:
                fresh(d)
            if docker:
                subprocess.run(["docker", "rmi", "-f", docker_ref], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
            subprocess.run(["sync"])
            if r + 1 < args.rounds:
                time.sleep(args.settle)
        base = statistics.median(times["berth"])
        print(f"\n{'pull' if args.pull else 'load'}: {mb:.0f} MB uncompressed")
        print(f"{'tool':12s} {'median s':>9s} {'MB/s':>8s} {'time / berth':>13s}")
        for name, ts in times.items():
            m = statistics.median(ts)
            print(f"{name:12s} {m:9.2f} {mb / m:8.0f} {m / base:13.2f}")
    finally:
        if registry is not None:
            registry.send_signal(signal.SIGTERM)
            try:
                registry.wait(10)
            except subprocess.TimeoutExpired:
                registry.kill()
                registry.wait()
        if not args.workdir:
            for name in [k.replace(" ", "-") for k in tools]:
                p = os.path.join(work, "store-" + name)
                if os.path.exists(p):
                    fresh(p)
            shutil.rmtree(work, ignore_errors=True)
        for tag in ("p", "s"):
            p = f"/run/ibench-{os.getpid()}-{tag}"
            if os.path.exists(p):
                fresh(p)
                os.rmdir(p)


if __name__ == "__main__":
    main()
