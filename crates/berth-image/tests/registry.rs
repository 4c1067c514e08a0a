//! Pull/push against Debian's docker-registry on 127.0.0.1, with skopeo as the peer.
//! apt: docker-registry skopeo. Each test starts its own registry on a free port with a
//! temp storage dir and kills it by PID on drop.

mod common;

use berth_image::registry::{self, Progress, RegistryOptions};
use berth_image::{CommitOptions, Store};
use common::*;
use std::path::Path;
use std::process::{Child, Command};
use std::sync::Mutex;

/// bcrypt("berth-pw"), made once with python3's crypt (libxcrypt $2b$).
const HTPASSWD: &str = "berth:$2b$12$P/7ZuO194SeogFoLNlnI9OQvk7zHkr7QuSzQR3xXBio0Ln2xkyEAa\n";

struct Registry {
    child: Child,
    addr: String,
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_registry(dir: &Path, basic_auth: bool) -> Registry {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let addr = format!("127.0.0.1:{port}");
    std::fs::create_dir_all(dir.join("data")).expect("mkdir");
    let auth = if basic_auth {
        std::fs::write(dir.join("htpasswd"), HTPASSWD).expect("htpasswd");
        format!(
            "auth:\n  htpasswd:\n    realm: berth-test\n    path: {}\n",
            dir.join("htpasswd").display()
        )
    } else {
        String::new()
    };
    let cfg = format!(
        "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: {addr}\n{auth}",
        dir.join("data").display()
    );
    std::fs::write(dir.join("config.yml"), cfg).expect("config");
    let child = Command::new("docker-registry")
        .arg("serve")
        .arg(dir.join("config.yml"))
        .stdout(std::fs::File::create(dir.join("log")).expect("log"))
        .stderr(std::fs::File::create(dir.join("log.err")).expect("log"))
        .spawn()
        .expect("start docker-registry (apt-get install docker-registry)");
    let reg = Registry { child, addr };
    for _ in 0..100 {
        if std::net::TcpStream::connect(&reg.addr).is_ok() {
            return reg;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    panic!("docker-registry did not listen on {}", reg.addr);
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn derived(store: &Store, t: &Path, name: &str, content: &[u8]) -> berth_image::Image {
    let base = busybox(store);
    let m = mount_image(store, &base, t, name);
    std::fs::write(m.target.join("hello"), content).expect("write");
    store
        .commit(
            Some(&base),
            Some(&m.upper),
            &CommitOptions::default(),
            Some(&format!("{name}:1")),
        )
        .expect("commit")
}

fn kinds(events: &Mutex<Vec<Progress>>) -> Vec<&'static str> {
    events
        .lock()
        .expect("lock")
        .iter()
        .map(|p| match p {
            Progress::Exists { .. } => "exists",
            Progress::Mounted { .. } => "mounted",
            Progress::Done { .. } => "done",
            Progress::Manifest { .. } => "manifest",
        })
        .collect()
}

#[test]
fn push_pull_round_trip_with_skopeo_both_ways() {
    require_root();
    let t = tempfile::tempdir().expect("tmp");
    let reg = start_registry(&t.path().join("reg"), false);
    let a = Store::open(&t.path().join("a")).expect("open");
    let img = derived(&a, t.path(), "app", b"pushed by berth\n");
    let opts = RegistryOptions::default();
    let target = format!("{}/berth/app:1", reg.addr);
    let ev = Mutex::new(Vec::new());
    let digest = registry::push(&a, "app:1", Some(&target), &opts, &|p| {
        ev.lock().expect("lock").push(p)
    })
    .expect("push");
    assert_eq!(kinds(&ev), vec!["done", "done", "done", "manifest"]);
    // Again: everything is already there.
    let ev2 = Mutex::new(Vec::new());
    registry::push(&a, "app:1", Some(&target), &opts, &|p| {
        ev2.lock().expect("lock").push(p)
    })
    .expect("push again");
    assert_eq!(kinds(&ev2), vec!["exists", "exists", "exists", "manifest"]);
    // Another repository on the same registry: blobs are mounted, not uploaded.
    let ev3 = Mutex::new(Vec::new());
    let other = format!("{}/berth/other:2", reg.addr);
    registry::push(&a, "app:1", Some(&other), &opts, &|p| {
        ev3.lock().expect("lock").push(p)
    })
    .expect("push other");
    assert_eq!(
        kinds(&ev3),
        vec!["mounted", "mounted", "mounted", "manifest"]
    );

    // skopeo validates what berth pushed.
    let oci = t.path().join("oci");
    run(Command::new("skopeo")
        .args(["copy", "--src-tls-verify=false"])
        .arg(format!("docker://{target}"))
        .arg(format!("oci:{}:x", oci.display())));
    let inspect = run(Command::new("skopeo")
        .args(["inspect", "--tls-verify=false", "--raw"])
        .arg(format!("docker://{other}")));
    assert_eq!(berth_image::digest::sha256(inspect.as_bytes()), digest);

    // berth pulls into a fresh store: same image, runnable content.
    let b = Store::open(&t.path().join("b")).expect("open");
    let pulled = registry::pull(&b, &target, &opts, &|_| {}).expect("pull");
    assert_eq!(pulled.id, img.id);
    assert_eq!(
        pulled.repo_digests,
        vec![format!("{}/berth/app@{digest}", reg.addr)]
    );
    let m = mount_image(&b, &pulled, t.path(), "pulled");
    assert_eq!(
        std::fs::read(m.target.join("hello")).expect("hello"),
        b"pushed by berth\n"
    );
    assert_eq!(
        b.resolve(&format!("{}/berth/app@{digest}", reg.addr))
            .expect("by digest")
            .id,
        img.id
    );

    // skopeo pushes an image (from an OCI dir it made), berth pulls it; the busybox
    // layer berth already has is skipped.
    let c = Store::open(&t.path().join("c")).expect("open");
    busybox(&c);
    let other_img = derived(&a, t.path(), "skopeo-src", b"pushed by skopeo\n");
    let archive = t.path().join("src.tar");
    a.save(
        &["skopeo-src:1"],
        std::fs::File::create(&archive).expect("create"),
    )
    .expect("save");
    let sk_dir = t.path().join("skdir");
    run(Command::new("skopeo")
        .arg("copy")
        .arg(format!("oci-archive:{}", archive.display()))
        .arg(format!("oci:{}:y", sk_dir.display())));
    let sk_target = format!("{}/skopeo/pushed:3", reg.addr);
    run(Command::new("skopeo")
        .args(["copy", "--dest-tls-verify=false"])
        .arg(format!("oci:{}:y", sk_dir.display()))
        .arg(format!("docker://{sk_target}")));
    let ev4 = Mutex::new(Vec::new());
    let got = registry::pull(&c, &sk_target, &opts, &|p| {
        ev4.lock().expect("lock").push(p)
    })
    .expect("pull skopeo's push");
    assert_eq!(got.id, other_img.id);
    assert_eq!(
        kinds(&ev4),
        vec!["manifest", "done", "exists", "done"],
        "config new, busybox layer skipped, new layer fetched"
    );
    let m = mount_image(&c, &got, t.path(), "skopeo-pulled");
    assert_eq!(
        std::fs::read(m.target.join("hello")).expect("hello"),
        b"pushed by skopeo\n"
    );
}

#[test]
fn multi_platform_index_and_errors() {
    require_root();
    let t = tempfile::tempdir().expect("tmp");
    let reg = start_registry(&t.path().join("reg"), false);
    let a = Store::open(&t.path().join("a")).expect("open");
    let img = derived(&a, t.path(), "multi", b"amd64\n");
    let opts = RegistryOptions::default();
    let target = format!("{}/berth/multi:plain", reg.addr);
    let digest = registry::push(&a, "multi:1", Some(&target), &opts, &|_| {}).expect("push");
    let mbytes = a.read_blob(&img.manifest_digest).expect("manifest");
    // An index with an arm64 entry first: pull must pick amd64.
    let index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [
            {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": digest, "size": mbytes.len(),
             "platform": {"architecture": "arm64", "os": "linux"}},
            {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": digest, "size": mbytes.len(),
             "platform": {"architecture": "amd64", "os": "linux"}}
        ]
    });
    let body = serde_json::to_vec(&index).expect("json");
    ureq::put(&format!("http://{}/v2/berth/multi/manifests/idx", reg.addr))
        .set("Content-Type", "application/vnd.oci.image.index.v1+json")
        .send_bytes(&body)
        .expect("put index");
    let b = Store::open(&t.path().join("b")).expect("open");
    let got = registry::pull(&b, &format!("{}/berth/multi:idx", reg.addr), &opts, &|_| {})
        .expect("pull index");
    assert_eq!(got.id, img.id);
    let idx_digest = berth_image::digest::sha256(&body);
    assert_eq!(
        got.repo_digests,
        vec![format!("{}/berth/multi@{idx_digest}", reg.addr)]
    );
    // Missing tag and missing repository: clear errors, nothing registered.
    let err = registry::pull(
        &b,
        &format!("{}/berth/multi:nope", reg.addr),
        &opts,
        &|_| {},
    )
    .expect_err("no tag");
    assert!(err.to_string().contains("404"), "{err}");
    assert!(b
        .resolve(&format!("{}/berth/multi:nope", reg.addr))
        .is_err());
    assert_eq!(b.list().expect("list").len(), 1);
}

#[test]
fn basic_auth_login_push_pull_logout() {
    require_root();
    let t = tempfile::tempdir().expect("tmp");
    let reg = start_registry(&t.path().join("reg"), true);
    let a = Store::open(&t.path().join("a")).expect("open");
    derived(&a, t.path(), "secret", b"auth\n");
    let cfg = t.path().join("docker/config.json");
    let opts = RegistryOptions {
        insecure: false,
        auth_file: Some(cfg.clone()),
    };
    let target = format!("{}/private/img:1", reg.addr);
    let err =
        registry::push(&a, "secret:1", Some(&target), &opts, &|_| {}).expect_err("no credentials");
    assert!(
        err.to_string().contains("unauthorized") || err.to_string().contains("log in"),
        "{err}"
    );
    let err = registry::login(&reg.addr, "berth", "wrong", &cfg, &opts).expect_err("bad password");
    assert!(err.to_string().contains("unauthorized"), "{err}");
    assert!(!cfg.exists(), "failed login stores nothing");
    registry::login(&reg.addr, "berth", "berth-pw", &cfg, &opts).expect("login");
    let v: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&cfg).expect("cfg")).expect("json");
    assert_eq!(
        v["auths"][&reg.addr]["auth"], "YmVydGg6YmVydGgtcHc=",
        "base64 of berth:berth-pw, as docker writes it"
    );
    registry::push(&a, "secret:1", Some(&target), &opts, &|_| {}).expect("push with credentials");
    let b = Store::open(&t.path().join("b")).expect("open");
    registry::pull(&b, &target, &opts, &|_| {}).expect("pull with credentials");
    // skopeo reads docker's config format too.
    run(Command::new("skopeo")
        .args(["inspect", "--tls-verify=false", "--authfile"])
        .arg(&cfg)
        .arg(format!("docker://{target}")));
    assert!(registry::logout(&reg.addr, &cfg).expect("logout"));
    let c = Store::open(&t.path().join("c")).expect("open");
    assert!(registry::pull(&c, &target, &opts, &|_| {}).is_err());
}
