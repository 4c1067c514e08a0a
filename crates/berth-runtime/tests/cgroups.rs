//! cgroups at the runtime level (issue 3, "Must show" and "Bad input"): real busybox
//! containers made by berth-runtime from config.json `linux.resources`, observed from the
//! host (the container's cgroup directories), from inside (its /sys/fs/cgroup) and
//! through the runtime's own commands (`events`, `update`, `pause`/`resume`, `ps`).
//! Run as root on a cgroup v1 or hybrid host (this project's machine):
//!
//! ```text
//! cargo test --release -p berth-runtime --test cgroups
//! cargo test --release -p berth-runtime --test cgroups cpu_quota -- --nocapture
//! ```
//! (BERTH_RUNTIME chooses the binary, see tests/common.) On a host without v1
//! controllers each test says it is skipped: v2 is covered by berth-cgroups' fake-cgroupfs
//! unit tests.
//!
//! The tests run one at a time ([`serial`]): the CPU-quota and read-rate measurements
//! must not compete with the OOM test for this machine's two cores. Each container has a
//! unique id in a private `--root` and is deleted by its guard even when an assertion
//! fails; every test ends by checking that nothing named after it is left (state dir,
//! cgroup directory in any hierarchy, process, mount).

#[macro_use]
mod common;

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use common::{
    assert_everything_gone, assert_one_line_error, temp_dir, unique_name, wait_timeout, Bundle,
    Container, Runtime,
};
use serde_json::{json, Value};

const MIB: u64 = 1 << 20;

// ---------------------------------------------------------------------------------------
// Must show

/// memory limit 64 MiB: `dd bs=200M` (a 200 MiB buffer that read(2) from /dev/zero
/// fills, i.e. 200 MiB of anonymous memory) is OOM-killed; the shell that ran it
/// survives and sees 137; a streaming `events` started before reports `"type":"oom"`;
/// `events --stats` afterwards counts the kill; the runtime and the host are fine. Then
/// the same allocator as the container's init: `run` exits 137.
#[test]
fn memory_limit_oom_kills_the_allocator_and_events_report_it() {
    let _serial = serial();
    if !v1_host() {
        return;
    }
    let runtime = Runtime::berth();
    let bundle = busybox_bundle(
        "dd if=/dev/zero of=/dev/null bs=200M count=1; echo dd-exit=$?; exec sleep 600",
        json!({"memory": {"limit": 64 * MIB}}),
    );
    let container = Container::new(&runtime, &bundle);
    let created = container.create();
    created.assert_success();
    let mut events = EventStream::start(&container, "100ms");
    // The stream has read the OOM counter (0) before anything can be killed.
    wait_for("a first stats event", Duration::from_secs(10), || {
        events
            .lines()
            .iter()
            .any(|l| l["type"] == "stats")
            .then_some(())
    });
    container.start().assert_success();
    let out = wait_for("dd to finish", Duration::from_secs(60), || {
        let out = created.stdout();
        out.contains("dd-exit=").then_some(out)
    });
    assert!(
        out.contains("dd-exit=137"),
        "dd allocating 200 MiB under a 64 MiB limit was not SIGKILLed:\n{created}"
    );
    let oom = wait_for(
        "an oom event from `events --interval 100ms`",
        Duration::from_secs(5),
        || events.lines().into_iter().find(|l| l["type"] == "oom"),
    );
    assert_eq!(oom["id"], container.id.as_str(), "oom event: {oom}");

    let stats = stats(&container);
    let memory = &stats["memory"];
    assert!(
        memory["oom_kill"].as_u64().unwrap_or(0) >= 1,
        "events --stats does not count the OOM kill: {memory}"
    );
    assert_eq!(memory["limit"], 64 * MIB, "{memory}");
    assert!(
        memory["max_usage"].as_u64().unwrap_or(u64::MAX) <= 64 * MIB,
        "usage went above the limit: {memory}"
    );
    // Only the allocator died: the container's init (the shell) and the runtime's
    // commands are fine, and the stream is still following.
    assert_eq!(
        container.state().expect("state after the OOM kill")["status"],
        "running"
    );
    assert!(
        events.child.try_wait().expect("poll events").is_none(),
        "events exited early; its stderr: {}",
        fs::read_to_string(&events.stderr).unwrap_or_default()
    );
    container.kill("KILL").assert_success();
    container.wait_for_status("stopped", Duration::from_secs(10));
    let status = events.wait(Duration::from_secs(10));
    assert!(
        status.is_some_and(|s| s.success()),
        "events did not exit cleanly once the container stopped: {status:?}; stderr: {}",
        fs::read_to_string(&events.stderr).unwrap_or_default()
    );
    container.delete().assert_success();
    assert_everything_gone(&container);

    // The allocator as the init: the container dies of SIGKILL, `run` exits 128 + 9.
    let mut bundle = busybox_bundle("", json!({"memory": {"limit": 64 * MIB}}));
    bundle.config["process"]["args"] =
        json!(["dd", "if=/dev/zero", "of=/dev/null", "bs=200M", "count=1"]);
    bundle.write_config();
    let container = Container::new(&runtime, &bundle);
    let run = container.run();
    assert_eq!(run.status.code(), Some(137), "{run}");
    assert_everything_gone(&container);
}

/// CPU quota of half a CPU (50000/100000): busy loops are throttled. Two `events --stats`
/// samples one second apart: the numbers are the kernel's cpu.stat, nr_throttled grows,
/// throttled % (Δnr_throttled / Δnr_periods) is above 50, usage over the second is
/// 0.3..0.7 CPU. Removing the quota (`update --cpu-quota -1`) makes the quota `null`
/// ("no limit"), not 0.
///
/// Two loops, not one: a single loop wants exactly one CPU, and with the machine busy
/// (other builds on its 2 cores) it got about its 0.5 CPU by fair share alone, so it
/// reached its quota late or not at all in many periods (27-50% counted as throttled);
/// two loops exhaust the quota early in every period.
#[test]
fn cpu_quota_of_half_a_cpu_throttles_a_busy_loop() {
    let _serial = serial();
    if !v1_host() {
        return;
    }
    let runtime = Runtime::berth();
    let bundle = busybox_bundle(
        "while :; do :; done & while :; do :; done",
        json!({"cpu": {"quota": 50000, "period": 100000}}),
    );
    let container = Container::new(&runtime, &bundle);
    container.create().assert_success();
    container.start().assert_success();
    let cpu_dir = container_cgroup(&container.id, "cpu");
    assert_eq!(read_trimmed(&cpu_dir.join("cpu.cfs_quota_us")), "50000");
    assert_eq!(read_trimmed(&cpu_dir.join("cpu.cfs_period_us")), "100000");
    std::thread::sleep(Duration::from_millis(300));
    let a = stats(&container);
    let t0 = Instant::now();
    std::thread::sleep(Duration::from_secs(1));
    // The kernel's own counters around the second sample: berth must report them as is.
    let host_before = cpu_stat(&cpu_dir);
    let b = stats(&container);
    let host_after = cpu_stat(&cpu_dir);
    let elapsed = t0.elapsed().as_secs_f64();
    let (ca, cb) = (&a["cpu"], &b["cpu"]);
    let n = |v: &Value, k: &str| {
        v[k].as_u64()
            .unwrap_or_else(|| panic!("cpu.{k} missing: {v}"))
    };
    for (ours, kernel) in [
        ("nr_periods", "nr_periods"),
        ("nr_throttled", "nr_throttled"),
        ("throttled_time_ns", "throttled_time"),
    ] {
        assert!(
            (host_before[kernel]..=host_after[kernel]).contains(&n(cb, ours)),
            "events --stats cpu.{ours} = {} but the kernel's cpu.stat {kernel} went {} -> {}",
            n(cb, ours),
            host_before[kernel],
            host_after[kernel]
        );
    }
    let periods = n(cb, "nr_periods") - n(ca, "nr_periods");
    let throttled = n(cb, "nr_throttled") - n(ca, "nr_throttled");
    let used = (n(cb, "usage_total_ns") - n(ca, "usage_total_ns")) as f64 / 1e9;
    let cores = used / elapsed;
    let percent = throttled as f64 * 100.0 / periods.max(1) as f64;
    eprintln!(
        "over {elapsed:.3}s: {cores:.3} CPU, throttled in {throttled} of {periods} periods \
         ({percent:.1}%), throttled_time {} -> {} ns",
        n(ca, "throttled_time_ns"),
        n(cb, "throttled_time_ns")
    );
    assert_eq!(cb["quota_us"], 50000, "{cb}");
    assert_eq!(cb["period_us"], 100000, "{cb}");
    assert!(throttled > 0, "nr_throttled did not grow: {ca} -> {cb}");
    assert!(
        periods >= 5,
        "only {periods} CFS periods in a second: {ca} -> {cb}"
    );
    assert!(percent > 50.0, "throttled {percent:.1}%: {ca} -> {cb}");
    assert!(
        (0.3..=0.7).contains(&cores),
        "a busy loop under a 0.5 CPU quota used {cores:.3} CPU (machine too busy?)"
    );

    // No quota: "no limit" (null), not "0% throttled". runc's callers write
    // `--cpu-quota -1`; if berth refuses that form, the rest is checked with `=-1`.
    let runc_form = container.invoke(&["update", "--cpu-quota", "-1", &container.id]);
    if !runc_form.success() {
        container
            .invoke(&["update", "--cpu-quota=-1", &container.id])
            .assert_success();
    }
    assert_eq!(read_trimmed(&cpu_dir.join("cpu.cfs_quota_us")), "-1");
    let c = stats(&container);
    assert!(
        c["cpu"]["quota_us"].is_null(),
        "no quota must read as null (no limit): {}",
        c["cpu"]
    );
    stop_and_delete(&container);
    assert!(
        runc_form.success(),
        "runc's `update --cpu-quota -1` (a negative value as a separate argument) is refused:\n{runc_form}"
    );
}

/// pids limit 10: the 11th process fails to fork. The init shell runs a subshell that
/// starts `sleep`s in the background until a fork fails; ash then aborts the subshell
/// ("can't fork"). Count: init + subshell + 8 sleeps = 10 processes, so exactly 8
/// sleeps start; the fork of the 9th (the 11th process) fails. Then 9 remain (the
/// subshell is gone) and `events --stats` shows current 9, limit 10.
#[test]
fn pids_limit_stops_the_eleventh_process() {
    let _serial = serial();
    if !v1_host() {
        return;
    }
    let runtime = Runtime::berth();
    let bundle = busybox_bundle(
        r#"(i=0; while [ $i -lt 12 ]; do i=$((i+1)); sleep 600 & echo "started $i"; done; echo loop-done); echo "loop-exit=$?"; exec sleep 600"#,
        json!({"pids": {"limit": 10}}),
    );
    let container = Container::new(&runtime, &bundle);
    let created = container.create();
    created.assert_success();
    container.start().assert_success();
    let out = wait_for("the fork loop to end", Duration::from_secs(20), || {
        let out = created.stdout();
        out.contains("loop-exit=").then_some(out)
    });
    let started = out.lines().filter(|l| l.starts_with("started ")).count();
    assert_eq!(
        started, 8,
        "init + subshell + 8 sleeps = 10 processes, the next fork must fail:\n{created}"
    );
    assert!(
        !out.contains("loop-done") && out.contains("loop-exit=2"),
        "the subshell should have died on a failed fork:\n{created}"
    );
    assert!(
        created.stderr().contains("can't fork"),
        "no fork failure reported inside:\n{created}"
    );
    assert_eq!(
        read_trimmed(&container_cgroup(&container.id, "pids").join("pids.max")),
        "10"
    );
    let pids = &stats(&container)["pids"];
    assert_eq!(pids["limit"], 10, "{pids}");
    assert_eq!(pids["current"], 9, "init + 8 sleeps: {pids}");
    stop_and_delete(&container);
}

/// throttleReadBpsDevice of 2 MiB/s on a loop device made for the test: reading 6 MiB
/// with O_DIRECT (busybox dd iflag=direct) inside the container takes about 3 s, timed
/// inside with /proc/uptime; the host cgroup has the rule; stats count the bytes.
#[test]
fn read_bps_limit_on_a_loop_device() {
    let _serial = serial();
    if !v1_host() {
        return;
    }
    let Some(disk) = LoopDevice::new(32 * MIB) else {
        return;
    };
    let (major, minor) = (disk.major, disk.minor);
    let rate = 2 * MIB;
    // Unthrottled, the same read must be much faster, or the test would prove nothing.
    let t0 = Instant::now();
    let status = Command::new("dd")
        .args([
            &format!("if={}", disk.path.display()),
            "of=/dev/null",
            "bs=1M",
            "count=6",
            "iflag=direct",
        ])
        .stderr(Stdio::null())
        .status()
        .expect("run dd on the host");
    assert!(status.success());
    let host_rate = 6.0 * MIB as f64 / t0.elapsed().as_secs_f64();
    eprintln!(
        "unthrottled on the host: {:.1} MiB/s",
        host_rate / MIB as f64
    );
    assert!(
        host_rate > 3.0 * rate as f64,
        "the loop device is too slow to show a 2 MiB/s limit"
    );

    let mut bundle = busybox_bundle(
        "read t0 x < /proc/uptime; dd if=/dev/cgtdisk of=/dev/null bs=1M count=6 iflag=direct; \
         echo dd-exit=$?; read t1 x < /proc/uptime; echo \"t0=$t0 t1=$t1\"; exec sleep 600",
        json!({"blockIO": {"throttleReadBpsDevice": [
            {"major": major, "minor": minor, "rate": rate}
        ]}}),
    );
    bundle.config["linux"]["devices"] = json!([{
        "path": "/dev/cgtdisk", "type": "b", "major": major, "minor": minor,
        "fileMode": 0o660, "uid": 0, "gid": 0
    }]);
    bundle.write_config();
    let container = Container::new(&Runtime::berth(), &bundle);
    let created = container.create();
    created.assert_success();
    assert_eq!(
        read_trimmed(
            &container_cgroup(&container.id, "blkio").join("blkio.throttle.read_bps_device")
        ),
        format!("{major}:{minor} {rate}")
    );
    container.start().assert_success();
    let out = wait_for("dd to finish", Duration::from_secs(30), || {
        let out = created.stdout();
        out.contains("t1=").then_some(out)
    });
    assert!(out.contains("dd-exit=0"), "dd failed inside:\n{created}");
    let times: Vec<f64> = out
        .split_whitespace()
        .filter_map(|w| w.strip_prefix("t0=").or_else(|| w.strip_prefix("t1=")))
        .map(|t| t.parse().expect("uptime seconds"))
        .collect();
    let secs = times[1] - times[0];
    let measured = 6.0 * MIB as f64 / secs;
    eprintln!(
        "inside, 6 MiB in {secs:.2}s = {:.2} MiB/s (limit 2)",
        measured / MIB as f64
    );
    assert!(
        measured < 3.0 * MIB as f64,
        "read at {:.2} MiB/s under a 2 MiB/s limit",
        measured / MIB as f64
    );
    assert!(
        measured > 1.0 * MIB as f64,
        "read at {:.2} MiB/s: far below the 2 MiB/s limit",
        measured / MIB as f64
    );
    let blkio = stats(&container)["blkio"].clone();
    let dev = blkio
        .as_array()
        .and_then(|d| {
            d.iter()
                .find(|d| d["major"] == major && d["minor"] == minor)
        })
        .unwrap_or_else(|| panic!("no blkio stats for {major}:{minor}: {blkio}"))
        .clone();
    assert!(
        dev["read_bytes"].as_u64().unwrap_or(0) >= 6 * MIB,
        "blkio stats: {dev}"
    );
    assert!(
        dev["read_ops"].as_u64().unwrap_or(0) >= 6,
        "blkio stats: {dev}"
    );
    stop_and_delete(&container);
}

/// `update` raises and lowers a running container's memory limit, seen from the host
/// (memory.limit_in_bytes of its cgroup) and from inside (its cgroup namespace's
/// /sys/fs/cgroup); `pause` stops a counter writing to a bind-mounted host dir (state
/// "paused", freezer FROZEN), `resume` continues it (state "running").
#[test]
fn update_memory_limit_and_pause_resume_a_counter() {
    let _serial = serial();
    if !v1_host() {
        return;
    }
    let mut bundle = busybox_bundle(
        "i=0; while :; do i=$((i+1)); echo $i > /shared/n.tmp; mv /shared/n.tmp /shared/n; \
         usleep 10000; done",
        json!({"memory": {"limit": 128 * MIB}}),
    );
    add_cgroup_namespace(&mut bundle);
    let shared = bundle.host_path("shared");
    fs::create_dir_all(&shared).expect("create shared dir");
    add_bind(&mut bundle, &shared, "/shared", false);
    let container = Container::new(&Runtime::berth(), &bundle);
    container.create().assert_success();
    container.start().assert_success();
    let memory_dir = container_cgroup(&container.id, "memory");
    let limit_inside = || {
        let out = container.invoke(&[
            "exec",
            &container.id,
            "cat",
            "/sys/fs/cgroup/memory/memory.limit_in_bytes",
        ]);
        out.assert_success();
        out.stdout().trim().to_string()
    };
    let limit_on_host = || read_trimmed(&memory_dir.join("memory.limit_in_bytes"));
    assert_eq!(limit_on_host(), (128 * MIB).to_string());
    assert_eq!(limit_inside(), (128 * MIB).to_string());
    for (flag, bytes) in [("256m", 256 * MIB), ("32m", 32 * MIB)] {
        container
            .invoke(&["update", "--memory", flag, &container.id])
            .assert_success();
        assert_eq!(
            limit_on_host(),
            bytes.to_string(),
            "after update --memory {flag}"
        );
        assert_eq!(
            limit_inside(),
            bytes.to_string(),
            "after update --memory {flag}"
        );
        assert_eq!(stats(&container)["memory"]["limit"], bytes);
    }

    let counter = shared.join("n");
    let value = || read_counter(&counter);
    wait_for("the counter to start", Duration::from_secs(10), || {
        (value() >= 3).then_some(())
    });
    container.invoke(&["pause", &container.id]).assert_success();
    assert_eq!(container.state().expect("state")["status"], "paused");
    assert_eq!(
        read_trimmed(&container_cgroup(&container.id, "freezer").join("freezer.state")),
        "FROZEN"
    );
    let frozen_at = value();
    std::thread::sleep(Duration::from_millis(400));
    assert_eq!(value(), frozen_at, "a paused counter moved");
    container
        .invoke(&["resume", &container.id])
        .assert_success();
    assert_eq!(container.state().expect("state")["status"], "running");
    wait_for(
        "the counter to move after resume",
        Duration::from_secs(5),
        || (value() > frozen_at).then_some(()),
    );
    stop_and_delete(&container);
}

/// Reading a 64 MiB file (written on the host with O_DIRECT, so not yet cached, on the
/// real disk, bind-mounted) inside grows the container's page cache (`memory.file`) by
/// about that much while anon stays small. Under a 32 MiB limit the same read of another
/// 64 MiB file succeeds: page cache counts toward the limit and is reclaimed, not OOM.
#[test]
fn reading_a_file_grows_page_cache_not_anon() {
    let _serial = serial();
    if !v1_host() {
        return;
    }
    let data = tempfile::Builder::new()
        .prefix("berth-cgt-data-")
        .tempdir_in("/var/tmp")
        .expect("temp dir on disk");
    for name in ["big", "big2"] {
        let status = Command::new("dd")
            .args([
                "if=/dev/zero",
                &format!("of={}", data.path().join(name).display()),
                "bs=1M",
                "count=64",
                "oflag=direct",
            ])
            .stderr(Stdio::null())
            .status()
            .expect("run dd on the host");
        assert!(status.success(), "write the test file");
    }
    let mut bundle = busybox_bundle(
        "cat /data/big > /dev/null; echo read-done=$?; exec sleep 600",
        json!({"memory": {"limit": 256 * MIB}}),
    );
    add_bind(&mut bundle, data.path(), "/data", true);
    let container = Container::new(&Runtime::berth(), &bundle);
    let created = container.create();
    created.assert_success();
    let before = stats(&container)["memory"].clone();
    container.start().assert_success();
    let out = wait_for("cat to finish", Duration::from_secs(60), || {
        let out = created.stdout();
        out.contains("read-done=").then_some(out)
    });
    assert!(out.contains("read-done=0"), "{created}");
    let after = stats(&container)["memory"].clone();
    let n = |v: &Value, k: &str| {
        v[k].as_u64()
            .unwrap_or_else(|| panic!("memory.{k} missing: {v}"))
    };
    eprintln!(
        "file {} -> {} MiB, anon {} -> {} KiB, usage {} MiB, working_set {} MiB",
        n(&before, "file") / MIB,
        n(&after, "file") / MIB,
        n(&before, "anon") >> 10,
        n(&after, "anon") >> 10,
        n(&after, "usage") / MIB,
        n(&after, "working_set") / MIB
    );
    assert!(
        n(&after, "file") >= n(&before, "file") + 56 * MIB,
        "page cache did not grow by ~64 MiB: {before} -> {after}"
    );
    assert!(
        n(&after, "anon") < 16 * MIB,
        "anon grew from reading a file: {after}"
    );
    assert!(
        n(&after, "active_file") + n(&after, "inactive_file") >= 56 * MIB,
        "{after}"
    );
    assert!(n(&after, "usage") >= n(&after, "file"), "{after}");
    assert!(n(&after, "working_set") <= n(&after, "usage"), "{after}");
    stop_and_delete(&container);

    let mut bundle = busybox_bundle(
        "cat /data/big2 > /dev/null; echo read-done=$?; \
         cat /sys/fs/cgroup/memory/memory.max_usage_in_bytes",
        json!({"memory": {"limit": 32 * MIB}}),
    );
    add_cgroup_namespace(&mut bundle);
    add_bind(&mut bundle, data.path(), "/data", true);
    let container = Container::new(&Runtime::berth(), &bundle);
    let run = container.run();
    assert_eq!(run.status.code(), Some(0), "{run}");
    let out = run.stdout();
    assert!(out.contains("read-done=0"), "{run}");
    let max_usage: u64 = out
        .lines()
        .last()
        .and_then(|l| l.trim().parse().ok())
        .unwrap_or_else(|| panic!("no max_usage_in_bytes:\n{run}"));
    assert!(max_usage <= 32 * MIB, "{run}");
    assert_everything_gone(&container);
}

/// The container sees its own limits, as a JVM would read them: with a cgroup
/// namespace (real cgroupfs mounts) and without one (binds of its own directories),
/// /sys/fs/cgroup/{memory,cpu,pids} inside show the configured values, and the mount
/// is read-only as the default spec says.
#[test]
fn the_container_sees_its_own_limits() {
    let _serial = serial();
    if !v1_host() {
        return;
    }
    for cgroupns in [true, false] {
        let mut bundle = busybox_bundle(
            "cd /sys/fs/cgroup && cat memory/memory.limit_in_bytes cpu/cpu.cfs_quota_us \
             cpu/cpu.cfs_period_us pids/pids.max; grep ':memory:' /proc/self/cgroup; \
             if touch memory/x 2>/dev/null; then echo writable; else echo read-only; fi",
            json!({
                "memory": {"limit": 96 * MIB},
                "cpu": {"quota": 25000, "period": 100000},
                "pids": {"limit": 50}
            }),
        );
        if cgroupns {
            add_cgroup_namespace(&mut bundle);
        }
        let container = Container::new(&Runtime::berth(), &bundle);
        let run = container.run();
        assert!(run.success(), "cgroupns={cgroupns}: {run}");
        let own = if cgroupns {
            ":memory:/".to_string()
        } else {
            format!(":memory:/berth/{}", container.id)
        };
        let out = run.stdout();
        let lines: Vec<&str> = out.lines().collect();
        let expected = [
            (96 * MIB).to_string(),
            "25000".into(),
            "100000".into(),
            "50".into(),
        ];
        assert_eq!(
            lines.get(..4),
            Some(&expected.each_ref().map(|s| s.as_str())[..]),
            "cgroupns={cgroupns}:\n{run}"
        );
        assert!(
            lines.get(4).is_some_and(|l| l.ends_with(&own)),
            "cgroupns={cgroupns}: /proc/self/cgroup should end with {own}:\n{run}"
        );
        assert_eq!(
            lines.get(5),
            Some(&"read-only"),
            "cgroupns={cgroupns}:\n{run}"
        );
        assert_everything_gone(&container);
    }
}

/// `ps --format json` lists the container's processes from its cgroup: the init and its
/// two children, the same set as the host's cgroup.procs; the table keeps ps's header
/// and one line per process.
#[test]
fn ps_lists_the_init_and_its_children() {
    let _serial = serial();
    if !v1_host() {
        return;
    }
    let bundle = busybox_bundle("sleep 600 & sleep 601 & wait", json!({}));
    let container = Container::new(&Runtime::berth(), &bundle);
    container.create().assert_success();
    container.start().assert_success();
    let init = container.state().expect("state")["pid"]
        .as_i64()
        .expect("pid") as i32;
    let pids = wait_for("three processes", Duration::from_secs(10), || {
        let out = container.invoke(&["ps", "--format", "json", &container.id]);
        out.assert_success();
        let pids: Vec<i32> = serde_json::from_str(out.stdout().trim())
            .unwrap_or_else(|e| panic!("ps --format json is not a list of pids ({e}):\n{out}"));
        (pids.len() == 3).then_some(pids)
    });
    assert!(pids.contains(&init), "init {init} missing from {pids:?}");
    for pid in pids.iter().filter(|p| **p != init) {
        let status = fs::read_to_string(format!("/proc/{pid}/status")).expect("child status");
        assert!(
            status.contains(&format!("PPid:\t{init}\n")),
            "{pid} is not a child of the init {init}:\n{status}"
        );
    }
    let mut in_cgroup: Vec<i32> =
        read_trimmed(&container_cgroup(&container.id, "pids").join("cgroup.procs"))
            .lines()
            .map(|l| l.parse().expect("pid"))
            .collect();
    in_cgroup.sort_unstable();
    assert_eq!(pids, in_cgroup);
    let table = container.invoke(&["ps", &container.id]);
    table.assert_success();
    let text = table.stdout();
    let mut lines = text.lines();
    assert!(
        lines.next().is_some_and(|h| h.contains("PID")),
        "no header:\n{table}"
    );
    assert_eq!(lines.count(), 3, "{table}");
    for pid in &pids {
        assert!(
            text.lines().any(|l| l
                .split_whitespace()
                .nth(1)
                .is_some_and(|p| p == pid.to_string())),
            "{pid} missing from the table:\n{table}"
        );
    }
    stop_and_delete(&container);
}

// ---------------------------------------------------------------------------------------
// Bad input

/// `update --memory 4k` below what the container uses (8 MB in a shell variable): a one-
/// line error naming memory.limit; the cgroup keeps its limit, and a CPU quota given in
/// the same update (written before the memory limit) is rolled back; the failed value is
/// not remembered by later updates. `update --cpu-quota 500` (below 1 ms) is refused the
/// same way. The container keeps running.
#[test]
fn update_below_usage_or_below_a_millisecond_is_refused_and_nothing_changes() {
    let _serial = serial();
    if !v1_host() {
        return;
    }
    let bundle = busybox_bundle(
        "x=$(head -c 8000000 /dev/zero | tr '\\0' a); echo ready ${#x}; while :; do sleep 1; done",
        json!({
            "memory": {"limit": 256 * MIB},
            "cpu": {"quota": 50000, "period": 100000},
            "pids": {"limit": 100}
        }),
    );
    let runtime = Runtime::berth();
    let container = Container::new(&runtime, &bundle);
    let created = container.create();
    created.assert_success();
    container.start().assert_success();
    wait_for("8 MB held", Duration::from_secs(20), || {
        created.stdout().contains("ready 8000000").then_some(())
    });
    let memory_dir = container_cgroup(&container.id, "memory");
    let cpu_dir = container_cgroup(&container.id, "cpu");
    let pids_dir = container_cgroup(&container.id, "pids");

    let out = container.invoke(&[
        "update",
        "--cpu-quota",
        "20000",
        "--memory",
        "4k",
        &container.id,
    ]);
    out.assert_failure();
    eprintln!(
        "update --cpu-quota 20000 --memory 4k: {}",
        out.stderr().trim()
    );
    assert_one_line_error(&runtime, &out);
    assert!(out.stderr().contains("memory.limit"), "{out}");
    assert_eq!(
        read_trimmed(&memory_dir.join("memory.limit_in_bytes")),
        (256 * MIB).to_string()
    );
    assert_eq!(
        read_trimmed(&cpu_dir.join("cpu.cfs_quota_us")),
        "50000",
        "the quota written before the failed memory limit was not rolled back"
    );

    let out = container.invoke(&["update", "--cpu-quota", "500", &container.id]);
    out.assert_failure();
    eprintln!("update --cpu-quota 500: {}", out.stderr().trim());
    assert_one_line_error(&runtime, &out);
    assert!(out.stderr().contains("cpu.quota"), "{out}");
    assert_eq!(read_trimmed(&cpu_dir.join("cpu.cfs_quota_us")), "50000");

    // A later good update applies only itself: the refused values were not saved.
    container
        .invoke(&["update", "--pids-limit", "50", &container.id])
        .assert_success();
    assert_eq!(read_trimmed(&pids_dir.join("pids.max")), "50");
    assert_eq!(
        read_trimmed(&memory_dir.join("memory.limit_in_bytes")),
        (256 * MIB).to_string()
    );
    assert_eq!(read_trimmed(&cpu_dir.join("cpu.cfs_quota_us")), "50000");
    assert_eq!(container.state().expect("state")["status"], "running");
    stop_and_delete(&container);
}

/// Limits refused at create, each with a one-line error naming the field and nothing
/// left behind: a CPU quota below 1 ms, a throttle on a device that does not exist, blkio
/// weights out of 10..=1000 (5, 2000, and -1 which is not even a u16).
#[test]
fn create_refuses_bad_limits_and_leaves_nothing() {
    let _serial = serial();
    if !v1_host() {
        return;
    }
    assert!(
        !Path::new("/sys/dev/block/250:250").exists(),
        "250:250 is a real block device here; pick another"
    );
    let cases = [
        (
            json!({"cpu": {"quota": 500, "period": 100000}}),
            "cpu.quota",
        ),
        (
            json!({"blockIO": {"throttleReadBpsDevice": [
                {"major": 250, "minor": 250, "rate": 1048576}
            ]}}),
            "throttleReadBpsDevice",
        ),
        (json!({"blockIO": {"weight": 5}}), "blockIO.weight"),
        (json!({"blockIO": {"weight": 2000}}), "blockIO.weight"),
        (json!({"blockIO": {"weight": -1}}), "weight"),
    ];
    let runtime = Runtime::berth();
    let mut failures = Vec::new();
    for (resources, field) in cases {
        // A valid memory limit first: it must not be half-applied (the cgroup goes).
        let mut resources = resources;
        resources["memory"] = json!({"limit": 64 * MIB});
        let bundle = busybox_bundle("true", resources.clone());
        let container = Container::new(&runtime, &bundle);
        let out = container.create();
        let stderr = out.stderr();
        eprintln!("create with {resources}: {}", stderr.trim());
        let lines = stderr.lines().filter(|l| !l.trim().is_empty()).count();
        if out.success() || lines != 1 || !stderr.contains(field) {
            failures.push(format!(
                "resources {resources}: expected a one-line error naming {field}; got:\n{out}"
            ));
        }
        assert!(
            container.state().is_none(),
            "state exists after a failed create"
        );
        assert_everything_gone(&container);
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// A cgroupsPath outside berth's parent that already holds a process (a `sleep` this test
/// put in its own memory and pids cgroups, with a 256 MiB limit): create fails with a
/// one-line error naming that cgroup; the sleep survives, still in both cgroups, whose
/// limits are untouched; the directories berth made in the other hierarchies are gone.
#[test]
fn create_refuses_a_cgroups_path_that_holds_processes() {
    let _serial = serial();
    if !v1_host() {
        return;
    }
    let mut busy = BusyCgroup::new(&["memory", "pids"]);
    fs::write(
        busy.dirs[0].join("memory.limit_in_bytes"),
        (256 * MIB).to_string(),
    )
    .expect("set my memory limit");
    let bundle = busybox_bundle(
        "true",
        json!({"memory": {"limit": 64 * MIB}, "pids": {"limit": 10}}),
    );
    let mut bundle = bundle;
    bundle.config["linux"]["cgroupsPath"] = json!(format!("/{}", busy.name));
    bundle.write_config();
    let runtime = Runtime::berth();
    let container = Container::new(&runtime, &bundle);
    let out = container.create();
    out.assert_failure();
    eprintln!("create in a busy cgroupsPath: {}", out.stderr().trim());
    assert_one_line_error(&runtime, &out);
    assert!(
        out.stderr().contains(&busy.name),
        "the error does not name the cgroup:\n{out}"
    );
    assert!(
        busy.sleep_alive(),
        "berth killed the process already in the cgroup"
    );
    for dir in &busy.dirs {
        assert_eq!(
            read_trimmed(&dir.join("cgroup.procs")),
            busy.pid().to_string(),
            "{}",
            dir.display()
        );
    }
    assert_eq!(
        read_trimmed(&busy.dirs[0].join("memory.limit_in_bytes")),
        (256 * MIB).to_string(),
        "berth changed the memory limit of a cgroup it refused"
    );
    assert_eq!(read_trimmed(&busy.dirs[1].join("pids.max")), "max");
    let stray: Vec<PathBuf> = common::cgroup_dirs_named(&busy.name)
        .into_iter()
        .filter(|d| !busy.dirs.contains(d))
        .collect();
    assert!(
        stray.is_empty(),
        "berth left the cgroups it made: {stray:?}"
    );
    assert_everything_gone(&container);
}

// ---------------------------------------------------------------------------------------
// Support

/// One test at a time (see the module doc); a failed test must not block the others.
fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Root on a host with v1 controllers (v1 or hybrid); otherwise says why it skips.
fn v1_host() -> bool {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped: needs root");
        return false;
    }
    if v1_mountpoint("memory").is_none() {
        eprintln!("skipped: no cgroup v1 memory hierarchy (pure v2 host)");
        return false;
    }
    true
}

/// A busybox bundle running `sh -c script`, with `resources` merged into the default
/// spec's `linux.resources` (which denies all devices).
fn busybox_bundle(script: &str, resources: Value) -> Bundle {
    let mut bundle = Bundle::busybox();
    bundle.config["process"]["args"] = json!(["sh", "-c", script]);
    let Value::Object(add) = resources else {
        panic!("resources must be an object")
    };
    let current = &mut bundle.config["linux"]["resources"];
    if !current.is_object() {
        *current = json!({});
    }
    let current = current.as_object_mut().expect("resources object");
    for (k, v) in add {
        current.insert(k, v);
    }
    bundle.write_config();
    bundle
}

fn add_cgroup_namespace(bundle: &mut Bundle) {
    bundle.config["linux"]["namespaces"]
        .as_array_mut()
        .expect("namespaces")
        .push(json!({"type": "cgroup"}));
    bundle.write_config();
}

/// A bind mount of a host directory (its mount point made in the rootfs, which the
/// default spec mounts read-only).
fn add_bind(bundle: &mut Bundle, source: &Path, destination: &str, readonly: bool) {
    fs::create_dir_all(bundle.in_rootfs(destination)).expect("create mount point");
    bundle.config["mounts"]
        .as_array_mut()
        .expect("mounts")
        .push(json!({
            "destination": destination,
            "type": "bind",
            "source": source,
            "options": ["rbind", if readonly { "ro" } else { "rw" }]
        }));
    bundle.write_config();
}

/// `events --stats ID`: the stats event's `data`.
fn stats(container: &Container) -> Value {
    let out = container.invoke(&["events", "--stats", &container.id]);
    out.assert_success();
    let event: Value = serde_json::from_str(out.stdout().trim())
        .unwrap_or_else(|e| panic!("events --stats is not one JSON object ({e}):\n{out}"));
    assert_eq!(event["type"], "stats", "{event}");
    assert_eq!(event["id"], container.id.as_str(), "{event}");
    event["data"].clone()
}

/// SIGKILL, wait for "stopped", delete, and check that nothing is left.
fn stop_and_delete(container: &Container) {
    container.kill("KILL").assert_success();
    container.wait_for_status("stopped", Duration::from_secs(10));
    container.delete().assert_success();
    assert_everything_gone(container);
}

/// Polls `probe` every 20 ms until it returns something; panics after `timeout`.
fn wait_for<T>(what: &str, timeout: Duration, mut probe: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = probe() {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn read_trimmed(path: &Path) -> String {
    fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
        .trim()
        .to_string()
}

/// A v1 cgroup's cpu.stat as numbers by name.
fn cpu_stat(dir: &Path) -> std::collections::HashMap<String, u64> {
    read_trimmed(&dir.join("cpu.stat"))
        .lines()
        .filter_map(|l| {
            let (k, v) = l.split_once(' ')?;
            Some((k.to_string(), v.trim().parse().ok()?))
        })
        .collect()
}

/// The counter's value (written by rename, so never torn); 0 before it exists.
fn read_counter(path: &Path) -> u64 {
    fs::read_to_string(path)
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0)
}

/// The mount point of the v1 hierarchy holding `controller` (/proc/self/mountinfo).
fn v1_mountpoint(controller: &str) -> Option<PathBuf> {
    let mountinfo = fs::read_to_string("/proc/self/mountinfo").ok()?;
    mountinfo.lines().find_map(|line| {
        let (left, right) = line.split_once(" - ")?;
        let mut fields = right.split(' ');
        if fields.next()? != "cgroup" {
            return None;
        }
        let options = fields.nth(1)?;
        if !options.split(',').any(|o| o == controller) {
            return None;
        }
        left.split(' ').nth(4).map(PathBuf::from)
    })
}

/// The container's cgroup directory in the v1 hierarchy of `controller`.
fn container_cgroup(id: &str, controller: &str) -> PathBuf {
    let mount =
        v1_mountpoint(controller).unwrap_or_else(|| panic!("no v1 {controller} hierarchy mounted"));
    common::cgroup_dirs_named(id)
        .into_iter()
        .find(|d| d.starts_with(&mount))
        .unwrap_or_else(|| panic!("no cgroup for {id} under {}", mount.display()))
}

/// `berth-runtime events --interval I ID` running in the background, its output in
/// files; killed on drop.
struct EventStream {
    child: Child,
    stdout: PathBuf,
    stderr: PathBuf,
    _dir: tempfile::TempDir,
}

impl EventStream {
    fn start(container: &Container, interval: &str) -> EventStream {
        let dir = temp_dir("events");
        let stdout = dir.path().join("stdout");
        let stderr = dir.path().join("stderr");
        let root = container.state_root();
        let child = container
            .runtime
            .command()
            .arg("--root")
            .arg(&root)
            .args(["events", "--interval", interval, &container.id])
            .stdout(fs::File::create(&stdout).expect("events stdout"))
            .stderr(fs::File::create(&stderr).expect("events stderr"))
            .spawn()
            .expect("run events");
        EventStream {
            child,
            stdout,
            stderr,
            _dir: dir,
        }
    }

    /// The complete lines printed so far, each parsed as JSON.
    fn lines(&self) -> Vec<Value> {
        let text = fs::read_to_string(&self.stdout).unwrap_or_default();
        let complete = text.rfind('\n').map_or("", |end| &text[..end]);
        complete
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| {
                serde_json::from_str(l)
                    .unwrap_or_else(|e| panic!("events printed a non-JSON line ({e}): {l}"))
            })
            .collect()
    }

    fn wait(&mut self, timeout: Duration) -> Option<ExitStatus> {
        wait_timeout(&mut self.child, timeout)
    }
}

impl Drop for EventStream {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A loop device over a sparse file on disk; detached on drop.
struct LoopDevice {
    path: PathBuf,
    major: u64,
    minor: u64,
    _dir: tempfile::TempDir,
}

impl LoopDevice {
    /// `None` (with a message) when no loop device can be set up here.
    fn new(size: u64) -> Option<LoopDevice> {
        let dir = tempfile::Builder::new()
            .prefix("berth-cgt-loop-")
            .tempdir_in("/var/tmp")
            .expect("temp dir on disk");
        let image = dir.path().join("disk.img");
        fs::File::create(&image)
            .and_then(|f| f.set_len(size))
            .expect("create the disk image");
        let out = Command::new("losetup")
            .args(["--find", "--show"])
            .arg(&image)
            .output()
            .expect("run losetup");
        if !out.status.success() {
            eprintln!(
                "skipped: losetup failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            return None;
        }
        let path = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        let rdev = fs::metadata(&path).expect("stat the loop device").rdev();
        Some(LoopDevice {
            major: nix::sys::stat::major(rdev),
            minor: nix::sys::stat::minor(rdev),
            path,
            _dir: dir,
        })
    }
}

impl Drop for LoopDevice {
    fn drop(&mut self) {
        let status = Command::new("losetup").arg("-d").arg(&self.path).status();
        if !status.as_ref().is_ok_and(|s| s.success()) {
            eprintln!("cleanup: losetup -d {}: {status:?}", self.path.display());
        }
    }
}

/// A cgroup made by the test in some v1 hierarchies (`/<name>`), holding a `sleep`;
/// on drop the sleep is killed and the directories removed.
struct BusyCgroup {
    name: String,
    dirs: Vec<PathBuf>,
    sleep: Child,
}

impl BusyCgroup {
    fn new(controllers: &[&str]) -> BusyCgroup {
        let name = unique_name("cgt-busy");
        let sleep = Command::new("sleep")
            .arg("600")
            .stdin(Stdio::null())
            .spawn()
            .expect("run sleep");
        let mut busy = BusyCgroup {
            name,
            dirs: Vec::new(),
            sleep,
        };
        for controller in controllers {
            let mount =
                v1_mountpoint(controller).unwrap_or_else(|| panic!("no v1 {controller} hierarchy"));
            let dir = mount.join(&busy.name);
            fs::create_dir(&dir).expect("create my cgroup");
            busy.dirs.push(dir.clone());
            fs::write(dir.join("cgroup.procs"), busy.pid().to_string())
                .expect("move sleep into my cgroup");
        }
        busy
    }

    fn pid(&self) -> u32 {
        self.sleep.id()
    }

    fn sleep_alive(&mut self) -> bool {
        self.sleep.try_wait().expect("poll sleep").is_none()
    }
}

impl Drop for BusyCgroup {
    fn drop(&mut self) {
        let _ = self.sleep.kill();
        let _ = self.sleep.wait();
        for dir in self.dirs.iter().rev() {
            // The sleep's exit is noticed by the cgroup a moment after it is reaped.
            let deadline = Instant::now() + Duration::from_secs(5);
            while let Err(err) = fs::remove_dir(dir) {
                if Instant::now() > deadline {
                    eprintln!("cleanup: rmdir {}: {err}", dir.display());
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
}
