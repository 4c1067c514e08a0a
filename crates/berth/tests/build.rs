//! `berth build` against the real kernel: RUN steps are real containers, layers
//! land in the real store, and the result runs with `berth run`.

mod common;

use common::*;
use std::path::Path;
use std::process::Stdio;

/// A build context in a temp dir, removed on drop.
struct Ctx {
    dir: tempfile::TempDir,
}

impl Ctx {
    fn new(dockerfile: &str) -> Ctx {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("Dockerfile"), dockerfile).unwrap();
        Ctx { dir }
    }
    fn path(&self) -> &Path {
        self.dir.path()
    }
    fn write(&self, rel: &str, content: &str) {
        let p = self.path().join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, content).unwrap();
    }
    fn ctx(&self) -> String {
        self.path().to_string_lossy().into_owned()
    }
}

/// An image tag removed (with the build cache images it leaves visible) on drop.
struct Tag(String);

impl Tag {
    fn new(prefix: &str) -> Tag {
        Tag(format!("{}:t", unique(prefix)))
    }
    fn s(&self) -> &str {
        &self.0
    }
}

impl Drop for Tag {
    fn drop(&mut self) {
        let _ = berth(&["rmi", "-f", &self.0]);
    }
}

/// `berth run --rm --network none IMAGE CMD...`, required to succeed; trimmed stdout.
fn run_img(image: &str, cmd: &[&str]) -> String {
    let mut args = vec!["run", "--rm", "--network", "none", image];
    args.extend_from_slice(cmd);
    ok(&args)
}

fn build(ctx: &Ctx, extra: &[&str]) -> std::process::Output {
    let c = ctx.ctx();
    let mut args = vec!["build"];
    args.extend_from_slice(extra);
    args.push(&c);
    berth(&args)
}

fn build_ok(ctx: &Ctx, extra: &[&str]) -> String {
    let o = build(ctx, extra);
    assert!(
        o.status.success(),
        "build failed ({:?}):\n{}\n{}",
        o.status.code(),
        stdout(&o),
        stderr(&o)
    );
    stdout(&o)
}

/// The step lines and their cache outcome: ("COPY a /a", "CACHED" | "miss: why").
fn outcomes(out: &str) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = Vec::new();
    for l in out.lines() {
        if let Some(rest) = l.strip_prefix("Step ") {
            let text = rest
                .split_once(" : ")
                .map(|x| x.1)
                .unwrap_or(rest)
                .to_string();
            v.push((text, String::new()));
        } else if let Some(r) = l.strip_prefix(" ---> CACHED") {
            let _ = r;
            if let Some(last) = v.last_mut() {
                last.1 = "CACHED".into();
            }
        } else if let Some(why) = l.strip_prefix(" ---> cache miss: ") {
            if let Some(last) = v.last_mut() {
                last.1 = format!("miss: {why}");
            }
        }
    }
    v
}

/// Mounts of finished builds (scratch dirs are `<pid>-<nanos>`; builds of other
/// tests running at the same time are alive and keep theirs).
fn no_build_mounts() {
    let e = env();
    let base = e.root.join("build/tmp");
    let m: Vec<String> = mounts_under(&base)
        .into_iter()
        .filter(|mp| {
            let rel = mp
                .strip_prefix(&*base.to_string_lossy())
                .unwrap_or(mp)
                .trim_start_matches('/');
            let pid = rel.split('-').next().unwrap_or("");
            !Path::new("/proc").join(pid).exists()
        })
        .collect();
    assert!(m.is_empty(), "build mounts left behind: {m:?}");
}

#[test]
fn multi_stage_copies_only_the_result_into_a_small_image() {
    let ctx = Ctx::new(
        "FROM busybox AS builder\n\
         RUN mkdir /out && echo built-by-stage-one > /out/app.txt && dd if=/dev/zero of=/junk bs=1024 count=2048 2>/dev/null\n\
         FROM busybox\n\
         COPY --from=builder /out/app.txt /app/app.txt\n\
         CMD [\"cat\", \"/app/app.txt\"]\n",
    );
    let tag = Tag::new("ms");
    build_ok(&ctx, &["-t", tag.s()]);
    let out = run_img(tag.s(), &[]);
    assert_eq!(out, "built-by-stage-one");
    let o = berth(&[
        "run",
        "--rm",
        "--network",
        "none",
        tag.s(),
        "test",
        "-e",
        "/junk",
    ]);
    assert_eq!(
        o.status.code(),
        Some(1),
        "the builder's junk must not be in the final image"
    );
    let size: u64 = inspect(tag.s(), ".Size").parse().unwrap();
    let base: u64 = inspect("busybox", ".Size").parse().unwrap();
    assert!(
        size < base + 64 * 1024,
        "final image {size} vs busybox {base}: builder layers leaked in"
    );
    no_build_mounts();
}

#[test]
fn rebuild_with_nothing_changed_is_all_cached_and_one_file_change_is_explained() {
    let ctx = Ctx::new(
        "FROM busybox\n\
         RUN echo deps > /deps\n\
         COPY dep.txt /dep.txt\n\
         RUN cat /dep.txt > /dep.copy\n\
         COPY src/ /src/\n\
         RUN cat /src/main.c /src/util.c > /all.c\n\
         ENV MODE=release\n",
    );
    ctx.write("dep.txt", "dependency list\n");
    ctx.write("src/main.c", "int main(){}\n");
    ctx.write("src/util.c", "int util;\n");
    let tag = Tag::new("cache");
    build_ok(&ctx, &["-t", tag.s()]);
    let id1 = inspect(tag.s(), ".Id");

    let out = build_ok(&ctx, &["-t", tag.s()]);
    let steps = outcomes(&out);
    assert_eq!(steps.len(), 7, "{out}");
    for (text, res) in &steps[1..] {
        assert_eq!(res, "CACHED", "{text} was not cached:\n{out}");
    }
    assert_eq!(
        inspect(tag.s(), ".Id"),
        id1,
        "a fully cached rebuild gives the same image"
    );

    ctx.write("src/main.c", "int main(){return 1;}\n");
    let out = build_ok(&ctx, &["-t", tag.s()]);
    let steps = outcomes(&out);
    assert_eq!(steps[1].1, "CACHED", "{out}");
    assert_eq!(steps[2].1, "CACHED", "{out}");
    assert_eq!(steps[3].1, "CACHED", "{out}");
    assert!(
        steps[4].1.starts_with("miss:") && steps[4].1.contains("src/main.c changed"),
        "{out}"
    );
    assert!(
        !steps[4].1.contains("util.c"),
        "only the changed file is named: {out}"
    );
    assert!(steps[5].1.starts_with("miss:"), "{out}");
    assert!(steps[6].1.starts_with("miss:"), "{out}");
    let all = run_img(tag.s(), &["cat", "/all.c"]);
    assert!(all.contains("return 1"), "{all}");
}

#[test]
fn env_workdir_user_entrypoint_take_effect_in_run_and_history_lists_them() {
    let ctx = Ctx::new(
        "FROM busybox\n\
         ENV GREETING=hello-from-env\n\
         WORKDIR /srv/app\n\
         RUN echo made-in-workdir > here.txt\n\
         USER 1000:1000\n\
         ENTRYPOINT [\"sh\", \"-c\", \"echo $GREETING $(pwd) $(id -u):$(id -g) $(cat here.txt)\"]\n",
    );
    let tag = Tag::new("cfg");
    build_ok(&ctx, &["-t", tag.s()]);
    let out = run_img(tag.s(), &[]);
    assert_eq!(out, "hello-from-env /srv/app 1000:1000 made-in-workdir");
    let hist = ok(&["history", "--no-trunc", tag.s()]);
    for want in [
        "ENV GREETING=hello-from-env",
        "WORKDIR /srv/app",
        "RUN /bin/sh -c echo made-in-workdir > here.txt",
        "USER 1000:1000",
        "ENTRYPOINT",
    ] {
        assert!(hist.contains(want), "history lacks {want:?}:\n{hist}");
    }
}

#[test]
fn a_file_deleted_in_a_run_step_is_hidden_in_the_final_image() {
    let ctx = Ctx::new(
        "FROM busybox\n\
         RUN mkdir -p /data && echo secret > /data/secret && echo keep > /data/keep\n\
         RUN rm /data/secret\n",
    );
    let tag = Tag::new("wh");
    build_ok(&ctx, &["-t", tag.s()]);
    let o = berth(&["run", "--rm", "--network", "none", tag.s(), "ls", "/data"]);
    assert_eq!(stdout(&o).trim(), "keep");
    // and the export carries a whiteout for it
    let dir = tempfile::tempdir().unwrap();
    let tar = dir.path().join("img.tar");
    ok(&["save", "-o", tar.to_str().unwrap(), tag.s()]);
    let listing = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            "cd {d} && tar -xf img.tar && for l in $(find . -path '*blobs*' -type f); do tar -tf $l 2>/dev/null; done",
            d = dir.path().display()
        ))
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&listing.stdout).contains("data/.wh.secret"),
        "no whiteout in the layers: {}",
        String::from_utf8_lossy(&listing.stdout)
    );
}

#[test]
fn failing_run_shows_output_and_exit_code_and_tags_nothing() {
    let ctx = Ctx::new("FROM busybox\nRUN echo visible-output-before-failure; exit 3\n");
    let tag = Tag::new("fail");
    let o = build(&ctx, &["-t", tag.s()]);
    assert_eq!(o.status.code(), Some(1));
    let all = format!("{}{}", stdout(&o), stderr(&o));
    assert!(all.contains("visible-output-before-failure"), "{all}");
    assert!(all.contains("returned a non-zero code: 3"), "{all}");
    assert!(
        !berth(&["image", "inspect", tag.s()]).status.success(),
        "a failed build must not tag"
    );
    no_build_mounts();
    // the step container is gone: its scratch record dir, runtime state, cgroups
    let step = all
        .lines()
        .find_map(|l| l.strip_prefix(" ---> Running in "))
        .expect("the RUN step names its container")
        .trim()
        .to_string();
    let e = env();
    let left: Vec<_> = std::fs::read_dir(e.root.join("containers"))
        .map(|r| {
            r.flatten()
                .filter(|d| d.file_name().to_string_lossy().starts_with(&step))
                .map(|d| d.path())
                .collect()
        })
        .unwrap_or_default();
    assert!(left.is_empty(), "step container dir left: {left:?}");
    let cg: Vec<_> = std::fs::read_dir("/sys/fs/cgroup")
        .map(|r| {
            r.flatten()
                .filter_map(|c| std::fs::read_dir(c.path().join("berth")).ok())
                .flat_map(|d| {
                    d.flatten()
                        .map(|x| x.file_name().to_string_lossy().into_owned())
                })
                .filter(|n| n.starts_with(&step))
                .collect()
        })
        .unwrap_or_default();
    assert!(cg.is_empty(), "step cgroups left: {cg:?}");
}

#[test]
fn bad_dockerfiles_fail_with_the_line_and_build_nothing() {
    let cases: &[(&str, &str)] = &[
        ("FROM busybox\nFOO bar\n", "line 2"),
        (
            "FROM busybox\nCOPY ../outside /x\n",
            "outside the build context",
        ),
        ("FROM busybox\nCOPY missing.txt /x\n", "not found"),
        (
            "FROM busybox\nCOPY --from=nosuchstage /a /b\n",
            "nosuchstage",
        ),
        ("FROM busybox\nCOPY onlyone\n", "line 2"),
        (
            "FROM busybox\nADD http://example.invalid/x.tar /x\n",
            "network",
        ),
        ("RUN true\n", "line 1"),
    ];
    for (df, want) in cases {
        let ctx = Ctx::new(df);
        let tag = Tag::new("bad");
        let o = build(&ctx, &["-t", tag.s()]);
        assert_ne!(o.status.code(), Some(0), "{df:?} built");
        let err = stderr(&o);
        assert!(err.contains(want), "{df:?}: {err:?} lacks {want:?}");
        assert!(
            !berth(&["image", "inspect", tag.s()]).status.success(),
            "{df:?} tagged"
        );
    }
    let ctx = Ctx::new("FROM busybox AS a\nRUN true\n");
    let o = build(&ctx, &["--target", "nope"]);
    assert_ne!(o.status.code(), Some(0));
    assert!(stderr(&o).contains("nope"), "{}", stderr(&o));
    no_build_mounts();
}

#[test]
fn build_args_dockerignore_and_the_cache_explanations() {
    let ctx = Ctx::new(
        "FROM busybox\n\
         ARG VERSION=1\n\
         COPY . /ctx/\n\
         RUN echo v$VERSION > /version\n",
    );
    ctx.write(".dockerignore", "ignored.txt\nlogs/\n");
    ctx.write("kept.txt", "kept\n");
    ctx.write("ignored.txt", "ignored\n");
    ctx.write("logs/a.log", "log\n");
    let tag = Tag::new("args");
    build_ok(&ctx, &["-t", tag.s()]);
    let ls = run_img(tag.s(), &["ls", "-a", "/ctx"]);
    assert!(
        ls.contains("kept.txt") && !ls.contains("ignored.txt") && !ls.contains("logs"),
        "{ls}"
    );
    assert_eq!(run_img(tag.s(), &["cat", "/version"]), "v1");
    // an ignored file's change does not touch the cache
    ctx.write("ignored.txt", "changed\n");
    let out = build_ok(&ctx, &["-t", tag.s()]);
    assert!(
        outcomes(&out)
            .iter()
            .skip(1)
            .filter(|s| !s.0.starts_with("ARG"))
            .all(|s| s.1 == "CACHED"),
        "{out}"
    );
    // a build arg's change is named
    let out = build_ok(&ctx, &["-t", tag.s(), "--build-arg", "VERSION=2"]);
    let steps = outcomes(&out);
    let run = steps.iter().find(|s| s.0.starts_with("RUN")).unwrap();
    assert!(run.1.contains("build arg VERSION changed"), "{out}");
    assert_eq!(run_img(tag.s(), &["cat", "/version"]), "v2");
    // --no-cache rebuilds everything
    let out = build_ok(&ctx, &["-t", tag.s(), "--no-cache"]);
    assert!(outcomes(&out).iter().all(|s| s.1 != "CACHED"), "{out}");
}

#[test]
fn context_from_stdin_tar_and_add_extracts_archives() {
    let ctx = Ctx::new("FROM busybox\nADD bundle.tar.gz /opt/\nCOPY hello.txt /\n");
    ctx.write("hello.txt", "hi\n");
    ctx.write("payload/inner.txt", "from-the-archive\n");
    let st = std::process::Command::new("tar")
        .args(["-czf", "bundle.tar.gz", "payload"])
        .current_dir(ctx.path())
        .status()
        .unwrap();
    assert!(st.success());
    std::fs::remove_dir_all(ctx.path().join("payload")).unwrap();
    let tag = Tag::new("stdin");
    let tar = std::process::Command::new("tar")
        .args(["-cf", "-", "."])
        .current_dir(ctx.path())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let o = command()
        .args(["build", "-t", tag.s(), "-"])
        .stdin(tar.stdout.unwrap())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    assert_eq!(
        run_img(tag.s(), &["cat", "/opt/payload/inner.txt", "/hello.txt"]),
        "from-the-archive\nhi"
    );
}

#[test]
fn onbuild_triggers_run_in_the_child_and_healthcheck_is_stored() {
    let parent = Ctx::new(
        "FROM busybox\n\
         ONBUILD RUN echo triggered > /trigger.txt\n\
         HEALTHCHECK --interval=5s CMD true\n",
    );
    let ptag = Tag::new("onb-parent");
    build_ok(&parent, &["-t", ptag.s()]);
    let child = Ctx::new(&format!("FROM {}\nRUN cat /trigger.txt\n", ptag.s()));
    let ctag = Tag::new("onb-child");
    build_ok(&child, &["-t", ctag.s()]);
    assert_eq!(run_img(ctag.s(), &["cat", "/trigger.txt"]), "triggered");
    let dir = tempfile::tempdir().unwrap();
    let tar = dir.path().join("p.tar");
    ok(&["save", "-o", tar.to_str().unwrap(), ptag.s()]);
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("cd {} && tar -xf p.tar && cat $(find . -name '*.json' ! -name manifest.json ! -name index.json ! -name repositories) 2>/dev/null; for f in $(find blobs -type f 2>/dev/null); do head -c 4000 $f | grep -a Healthcheck; done", dir.path().display()))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("\"Healthcheck\"") && text.contains("5000000000"),
        "{text}"
    );
}

#[test]
fn lints_warn_in_plain_words() {
    let ctx = Ctx::new(
        "FROM busybox\n\
         COPY . /app\n\
         RUN pip install -r requirements.txt\n\
         RUN true\n\
         RUN true\n",
    );
    let o = build(&ctx, &["--lint"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(err.contains("root"), "no-USER lint missing: {err}");
    assert!(
        err.contains("line 2"),
        "COPY . before install lint missing: {err}"
    );
}

#[test]
fn builder_prune_empties_the_cache() {
    // a private engine root: pruning the shared one would race the other tests
    let _ = env();
    let dir = tempfile::tempdir().unwrap();
    let e = Env {
        root: dir.path().join("root"),
        run: dir.path().join("run"),
    };
    let run = |args: &[&str]| {
        let o = raw(&e, args);
        assert!(
            o.status.success(),
            "berth {args:?}: {}{}",
            stdout(&o),
            stderr(&o)
        );
        stdout(&o)
    };
    run(&["image", "bootstrap", "busybox:latest"]);
    let ctx = Ctx::new("FROM busybox\nRUN echo prune-me > /p\nENV AFTER=1\n");
    let c = ctx.ctx();
    let b = ["build", "--network", "none", "-t", "pruned:1", c.as_str()];
    run(&b);
    let out = run(&b);
    assert_eq!(outcomes(&out)[1].1, "CACHED", "{out}");
    let before = run(&["images", "-a", "-q"]).lines().count();
    let pruned = run(&["builder", "prune", "-f"]);
    assert!(pruned.contains("Deleted"), "{pruned}");
    let after = run(&["images", "-a", "-q"]).lines().count();
    assert!(
        after < before,
        "prune removed no image ({before} → {after})"
    );
    let out = run(&b);
    assert!(outcomes(&out)[1].1.starts_with("miss:"), "{out}");
    assert_eq!(
        run(&["run", "--rm", "--network", "none", "pruned:1", "cat", "/p"]).trim(),
        "prune-me"
    );
    // the runtime binary's read-only copy (CVE-2019-5736) is meant to stay mounted
    // for the engine root's lifetime; anything else is a leak
    let mounts = mounts_under(dir.path());
    for m in &mounts {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(m)
            .status();
    }
    let leaked: Vec<_> = mounts.iter().filter(|m| !m.contains("/run/exe/")).collect();
    assert!(leaked.is_empty(), "{leaked:?}");
}

#[test]
fn a_built_image_saves_and_podman_loads_it_with_its_config() {
    let ctx = Ctx::new(
        "FROM busybox\n\
         RUN echo layer > /layer.txt\n\
         ENV BUILT_BY=berth\n\
         HEALTHCHECK CMD true\n\
         CMD [\"cat\", \"/layer.txt\"]\n",
    );
    let tag = Tag::new("export");
    build_ok(&ctx, &["-t", tag.s()]);
    let id = inspect(tag.s(), ".Id");
    let dir = tempfile::tempdir().unwrap();
    let tar = dir.path().join("img.tar");
    ok(&["save", "-o", tar.to_str().unwrap(), tag.s()]);
    let podman = |args: &[&str]| {
        let o = std::process::Command::new("podman")
            .arg("--root")
            .arg(dir.path().join("root"))
            .arg("--runroot")
            .arg(dir.path().join("runroot"))
            .args(["--storage-driver", "vfs", "--tmpdir"])
            .arg(dir.path().join("tmp"))
            .args(args)
            .output()
            .expect("podman (apt-get install podman)");
        assert!(
            o.status.success(),
            "podman {args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    podman(&["load", "-i", tar.to_str().unwrap()]);
    let ids = podman(&["images", "--no-trunc", "--format", "{{.ID}}"]);
    assert!(
        ids.contains(&id["sha256:".len()..]),
        "podman sees another id: {ids} vs {id}"
    );
    let cfg = podman(&[
        "image",
        "inspect",
        "--format",
        "{{.Config.Env}} {{.Config.Cmd}}",
        &id["sha256:".len()..],
    ]);
    assert!(
        cfg.contains("BUILT_BY=berth") && cfg.contains("/layer.txt"),
        "{cfg}"
    );
}

#[test]
fn symlinks_in_the_image_or_the_context_never_reach_the_host() {
    // host canaries: a directory an image symlink points at, a secret a context symlink points at
    let host = tempfile::tempdir().unwrap();
    let host_dir = host.path().join("target-dir");
    std::fs::create_dir(&host_dir).unwrap();
    std::fs::write(host.path().join("secret"), "HOST-SECRET-MARKER").unwrap();
    let ctx = Ctx::new(&format!(
        "FROM busybox\n\
         RUN ln -s {hd} /escape && ln -s ../../../../../../{hd} /escape-rel\n\
         COPY payload.txt /escape/\n\
         COPY payload.txt /escape-rel/\n",
        hd = host_dir.display()
    ));
    ctx.write("payload.txt", "payload\n");
    let tag = Tag::new("symlink");
    build_ok(&ctx, &["-t", tag.s()]);
    assert_eq!(
        std::fs::read_dir(&host_dir).unwrap().count(),
        0,
        "a COPY wrote through an image symlink onto the host"
    );
    // inside the image the file landed where the symlink points within the rootfs
    let inside = run_img(
        tag.s(),
        &["cat", &format!("{}/payload.txt", host_dir.display())],
    );
    assert_eq!(inside, "payload");

    // a context symlink to a host file: resolved inside the context, so not found
    let ctx2 = Ctx::new("FROM busybox\nCOPY s /s\n");
    std::os::unix::fs::symlink(host.path().join("secret"), ctx2.path().join("s")).unwrap();
    let o = build(&ctx2, &[]);
    let all = format!("{}{}", stdout(&o), stderr(&o));
    assert_ne!(o.status.code(), Some(0), "{all}");
    assert!(!all.contains("HOST-SECRET-MARKER"));
    // a relative one climbing out: same
    let ctx3 = Ctx::new("FROM busybox\nCOPY up/ /up/\n");
    std::os::unix::fs::symlink("../../../../../../../../", ctx3.path().join("up")).unwrap();
    let tag3 = Tag::new("symlink-up");
    let o = build(&ctx3, &["-t", tag3.s()]);
    if o.status.success() {
        // it resolved to the context root itself: only context files may be in /up
        let ls = run_img(tag3.s(), &["ls", "/up"]);
        assert!(!ls.contains("etc") && ls.contains("Dockerfile"), "{ls}");
    }
}
