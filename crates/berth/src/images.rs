//! images: the image commands — images/ls, inspect, history, tag, rmi, prune,
//! load, save, import, pull, push, login, logout, bootstrap — and `diff`.

use std::io::{self, IsTerminal, Read, Write};

use anyhow::{bail, Context, Result};
use berth_engine::{Engine, EngineError};

use crate::cli::*;
use crate::engine;
use crate::format::{self, Row};

fn img_err(e: impl std::fmt::Display) -> EngineError {
    EngineError::Image(e.to_string())
}

pub fn inspect_json(e: &Engine, name: &str) -> Result<serde_json::Value> {
    Ok(e.images()?.inspect(name).map_err(img_err)?)
}

fn short(id: &str) -> String {
    id.trim_start_matches("sha256:").chars().take(12).collect()
}

fn ago(created: &Option<String>) -> String {
    let now = berth_engine::time::unix_nanos(std::time::SystemTime::now());
    match created
        .as_deref()
        .and_then(berth_engine::time::parse_rfc3339)
    {
        Some(t) => format!("{} ago", berth_engine::time::human_duration(now - t)),
        None => "N/A".into(),
    }
}

pub fn images(g: &Global, a: ImagesArgs) -> Result<i32> {
    let e = engine(g)?;
    let mut list = e.images()?.list().map_err(img_err)?;
    // build-cache images stay out of sight unless asked for (docker's intermediates)
    if !a.all {
        list.retain(|i| !i.intermediate || !i.repo_tags.is_empty());
    }
    if let Some(r) = &a.reference {
        let want = berth_image::Reference::parse(r)
            .map(|r| r.name())
            .unwrap_or_else(|_| r.clone());
        list.retain(|i| {
            i.repo_tags
                .iter()
                .any(|t| t.starts_with(&format!("{want}:")) || t == r)
        });
    }
    let mut rows: Vec<Row> = Vec::new();
    for i in &list {
        let tags: Vec<(String, String)> = if i.repo_tags.is_empty() {
            vec![("<none>".into(), "<none>".into())]
        } else {
            i.repo_tags
                .iter()
                .map(|t| match berth_image::Reference::parse(t) {
                    Ok(r) => {
                        let fam = r.familiar();
                        let (repo, tag) = fam
                            .rsplit_once(':')
                            .map(|(a, b)| (a.to_string(), b.to_string()))
                            .unwrap_or((fam.clone(), "<none>".into()));
                        (repo, tag)
                    }
                    Err(_) => (t.clone(), "<none>".into()),
                })
                .collect()
        };
        for (repo, tag) in tags {
            let mut r = Row::new();
            r.insert("Repository".into(), repo);
            r.insert("Tag".into(), tag);
            r.insert(
                "ID".into(),
                if a.no_trunc {
                    i.id.clone()
                } else {
                    short(&i.id)
                },
            );
            r.insert(
                "Digest".into(),
                i.repo_digests
                    .first()
                    .map(|d| d.rsplit('@').next().unwrap_or("").to_string())
                    .unwrap_or_else(|| "<none>".into()),
            );
            r.insert("CreatedSince".into(), ago(&i.created));
            r.insert("CreatedAt".into(), i.created.clone().unwrap_or_default());
            r.insert("Size".into(), crate::containers::human_size(i.size));
            rows.push(r);
        }
    }
    if a.quiet {
        let mut seen = std::collections::BTreeSet::new();
        for r in &rows {
            if seen.insert(r["ID"].clone()) {
                println!("{}", r["ID"]);
            }
        }
        return Ok(0);
    }
    let mut headers = vec![("Repository", "REPOSITORY"), ("Tag", "TAG")];
    if a.digests {
        headers.push(("Digest", "DIGEST"));
    }
    headers.extend([
        ("ID", "IMAGE ID"),
        ("CreatedSince", "CREATED"),
        ("Size", "SIZE"),
    ]);
    print!("{}", format::render(a.format.as_deref(), &headers, &rows));
    Ok(0)
}

pub fn rmi(g: &Global, a: RmiArgs) -> Result<i32> {
    let e = engine(g)?;
    let mut failed = false;
    for name in &a.images {
        let r = (|| -> Result<Vec<String>, EngineError> {
            let img = e
                .images()?
                .resolve(name)
                .map_err(|err| EngineError::Image(format!("No such image: {name} ({err})")))?;
            let users = e.containers_using_image(&img.id)?;
            if !users.is_empty() && !a.force {
                return Err(EngineError::Conflict(format!(
                    "conflict: unable to remove image {name} (must force) - image is being used by container(s) {}",
                    users.join(", ")
                )));
            }
            let in_use = |id: &str| {
                e.containers_using_image(id)
                    .map(|u| !u.is_empty())
                    .unwrap_or(true)
            };
            e.images()?.remove(name, a.force, &in_use).map_err(img_err)
        })();
        match r {
            Ok(lines) => {
                for l in lines {
                    println!("{l}");
                }
            }
            Err(err) => {
                eprintln!("berth: {err}");
                failed = true;
            }
        }
    }
    Ok(if failed { 1 } else { 0 })
}

pub fn tag(g: &Global, a: TagArgs) -> Result<i32> {
    engine(g)?
        .images()?
        .tag(&a.source, &a.target)
        .map_err(img_err)?;
    Ok(0)
}

pub fn history(g: &Global, a: HistoryArgs) -> Result<i32> {
    let e = engine(g)?;
    let h = e.images()?.history(&a.image).map_err(img_err)?;
    if a.quiet {
        for x in &h {
            println!(
                "{}",
                if x.id.is_empty() {
                    "<missing>".into()
                } else {
                    short(&x.id)
                }
            );
        }
        return Ok(0);
    }
    let rows: Vec<Row> = h
        .iter()
        .map(|x| {
            let mut by = x.created_by.clone();
            if !a.no_trunc && by.chars().count() > 45 {
                by = by.chars().take(44).collect::<String>() + "…";
            }
            [
                (
                    "ID".to_string(),
                    if x.id.is_empty() {
                        "<missing>".to_string()
                    } else if a.no_trunc {
                        x.id.clone()
                    } else {
                        short(&x.id)
                    },
                ),
                ("CreatedSince".to_string(), ago(&x.created)),
                ("CreatedBy".to_string(), by),
                ("Size".to_string(), crate::containers::human_size(x.size)),
                ("Comment".to_string(), x.comment.clone()),
            ]
            .into()
        })
        .collect();
    print!(
        "{}",
        format::render(
            a.format.as_deref(),
            &[
                ("ID", "IMAGE"),
                ("CreatedSince", "CREATED"),
                ("CreatedBy", "CREATED BY"),
                ("Size", "SIZE"),
                ("Comment", "COMMENT")
            ],
            &rows
        )
    );
    Ok(0)
}

pub fn load(g: &Global, a: LoadArgs) -> Result<i32> {
    let e = engine(g)?;
    let total = a
        .input
        .as_ref()
        .and_then(|p| std::fs::metadata(p).ok())
        .map(|m| m.len());
    let reader: Box<dyn Read> = match &a.input {
        Some(p) => Box::new(io::BufReader::new(
            std::fs::File::open(p).with_context(|| format!("open {}", p.display()))?,
        )),
        None => {
            if io::stdin().is_terminal() {
                bail!(EngineError::Invalid(
                    "requested load from stdin, but stdin is empty".into()
                ));
            }
            Box::new(io::BufReader::new(io::stdin()))
        }
    };
    let bar = if a.quiet {
        crate::progress::Progress::start_hidden()
    } else {
        crate::progress::Progress::start("Loading layer data", total, "bytes")
    };
    let counted = crate::progress::Counting {
        inner: reader,
        counters: bar.counters.clone(),
    };
    let loaded = e.images()?.load(counted).map_err(img_err);
    bar.finish();
    let loaded = loaded?;
    if !a.quiet {
        for i in loaded {
            if i.repo_tags.is_empty() {
                println!("Loaded image ID: {}", i.id);
            }
            for t in &i.repo_tags {
                let fam = berth_image::Reference::parse(t)
                    .map(|r| r.familiar())
                    .unwrap_or_else(|_| t.clone());
                println!("Loaded image: {fam}");
            }
        }
    }
    Ok(0)
}

pub fn save(g: &Global, a: SaveArgs) -> Result<i32> {
    let e = engine(g)?;
    let refs: Vec<&str> = a.images.iter().map(String::as_str).collect();
    match &a.output {
        Some(p) => {
            let tmp = p.with_extension("berth-partial");
            let f =
                std::fs::File::create(&tmp).with_context(|| format!("create {}", tmp.display()))?;
            let mut w = io::BufWriter::new(f);
            if let Err(err) = e.images()?.save(&refs, &mut w) {
                let _ = std::fs::remove_file(&tmp);
                return Err(img_err(err).into());
            }
            w.flush()?;
            drop(w);
            std::fs::rename(&tmp, p)?;
        }
        None => {
            if io::stdout().is_terminal() {
                bail!(EngineError::Invalid(
                    "cowardly refusing to save to a terminal. Use the -o flag or redirect".into()
                ));
            }
            let mut out = io::BufWriter::new(io::stdout().lock());
            e.images()?.save(&refs, &mut out).map_err(img_err)?;
            out.flush()?;
        }
    }
    Ok(0)
}

pub fn import(g: &Global, a: ImportArgs) -> Result<i32> {
    let e = engine(g)?;
    let reader: Box<dyn Read> = if a.file == "-" {
        Box::new(io::BufReader::new(io::stdin()))
    } else {
        Box::new(io::BufReader::new(
            std::fs::File::open(&a.file).with_context(|| format!("open {}", a.file))?,
        ))
    };
    let img = e
        .images()?
        .import(reader, &a.change, a.reference.as_deref())
        .map_err(img_err)?;
    println!("{}", img.id);
    Ok(0)
}

pub fn diff(g: &Global, a: DiffArgs) -> Result<i32> {
    let e = engine(g)?;
    let c = e.get(&a.container)?;
    let img = e.images()?.resolve(&c.config.image_id).map_err(img_err)?;
    let lowers = e.images()?.layer_dirs(&img).map_err(img_err)?;
    let upper = e.root.container_dir(&c.id).join("upper");
    for ch in berth_image::snapshot::diff(&upper, &lowers).map_err(img_err)? {
        println!("{ch}");
    }
    Ok(0)
}

pub fn image_cmd(g: &Global, c: ImageCmd) -> Result<i32> {
    match c {
        ImageCmd::Ls(a) => images(g, a),
        ImageCmd::Inspect(a) => crate::inspect::inspect(
            g,
            InspectArgs {
                kind: Some("image".into()),
                ..a
            },
        ),
        ImageCmd::History(a) => history(g, a),
        ImageCmd::Tag(a) => tag(g, a),
        ImageCmd::Rm(a) => rmi(g, a),
        ImageCmd::Load(a) => load(g, a),
        ImageCmd::Save(a) => save(g, a),
        ImageCmd::Import(a) => import(g, a),
        ImageCmd::Pull(a) => pull(g, a),
        ImageCmd::Push(a) => push(g, a),
        ImageCmd::Prune(a) => {
            let e = engine(g)?;
            let in_use = |id: &str| {
                e.containers_using_image(id)
                    .map(|u| !u.is_empty())
                    .unwrap_or(true)
            };
            for id in e.images()?.prune(a.all, &in_use).map_err(img_err)? {
                println!("Deleted: {id}");
            }
            Ok(0)
        }
        ImageCmd::Bootstrap { tag } => {
            let e = engine(g)?;
            let img = berth_image::bootstrap::busybox(e.images()?, &tag).map_err(img_err)?;
            println!("{}", img.id);
            Ok(0)
        }
    }
}

pub fn pull(g: &Global, a: PullArgs) -> Result<i32> {
    let e = engine(g)?;
    let opts = berth_image::registry::RegistryOptions {
        insecure: !a.tls_verify,
        auth_file: Some(auth_file()),
    };
    if let Some(p) = &a.platform {
        if p != "linux/amd64" && p != "linux/x86_64" {
            bail!(EngineError::Invalid(format!(
                "--platform {p}: this host runs linux/amd64 only"
            )));
        }
    }
    let quiet = a.quiet;
    let bar = if quiet {
        crate::progress::Progress::start_hidden()
    } else {
        crate::progress::Progress::start(&format!("Pulling {}", a.image), None, "blobs")
    };
    let counters = bar.counters.clone();
    let img = berth_image::registry::pull(e.images()?, &a.image, &opts, &|p| {
        progress(quiet, "Pulled", &counters, p)
    })
    .map_err(img_err);
    bar.finish();
    let img = img?;
    if quiet {
        println!("{}", img.id);
    } else {
        println!(
            "Digest: {}",
            img.repo_digests
                .first()
                .map(|d| d.rsplit('@').next().unwrap_or(""))
                .unwrap_or("")
        );
        println!(
            "Status: Downloaded image for {}",
            berth_image::Reference::parse(&a.image)
                .map(|r| r.familiar())
                .unwrap_or(a.image.clone())
        );
    }
    Ok(0)
}

pub fn push(g: &Global, a: PushArgs) -> Result<i32> {
    let e = engine(g)?;
    let opts = berth_image::registry::RegistryOptions {
        insecure: !a.tls_verify,
        auth_file: Some(auth_file()),
    };
    let quiet = a.quiet;
    let bar = if quiet {
        crate::progress::Progress::start_hidden()
    } else {
        crate::progress::Progress::start(&format!("Pushing {}", a.image), None, "blobs")
    };
    let counters = bar.counters.clone();
    let digest = berth_image::registry::push(e.images()?, &a.image, None, &opts, &|p| {
        progress(quiet, "Pushed", &counters, p)
    })
    .map_err(img_err);
    bar.finish();
    let digest = digest?;
    if !quiet {
        println!("digest: {digest}");
    }
    Ok(0)
}

/// Line-oriented progress (one line per blob), docker's words.
fn progress(
    quiet: bool,
    done: &str,
    counters: &crate::progress::Counters,
    p: berth_image::registry::Progress,
) {
    use berth_image::registry::Progress as P;
    use std::sync::atomic::Ordering;
    if let P::Done { size, .. } = &p {
        counters.bytes.fetch_add(*size, Ordering::Relaxed);
    }
    if !matches!(p, P::Manifest { .. }) {
        counters.items.fetch_add(1, Ordering::Relaxed);
    }
    if quiet {
        return;
    }
    let short = |d: &str| {
        d.trim_start_matches("sha256:")
            .chars()
            .take(12)
            .collect::<String>()
    };
    let line = match p {
        P::Exists { digest } => format!("{}: Already exists", short(&digest)),
        P::Mounted { digest, from } => format!("{}: Mounted from {from}", short(&digest)),
        P::Done { digest, size } => format!(
            "{}: {done} ({})",
            short(&digest),
            crate::containers::human_size(size)
        ),
        P::Manifest { .. } => return,
    };
    // on a terminal, clear the live status line first; it is redrawn below
    if io::stdout().is_terminal() {
        print!("\r\x1b[2K");
    }
    println!("{line}");
}

/// docker's config file: $DOCKER_CONFIG/config.json or ~/.docker/config.json.
fn auth_file() -> std::path::PathBuf {
    if let Some(d) = std::env::var_os("DOCKER_CONFIG") {
        return std::path::PathBuf::from(d).join("config.json");
    }
    let home = std::env::var_os("HOME").unwrap_or_else(|| "/root".into());
    std::path::PathBuf::from(home).join(".docker/config.json")
}

pub fn login(_g: &Global, a: LoginArgs) -> Result<i32> {
    let user = match &a.username {
        Some(u) => u.clone(),
        None => bail!(EngineError::Invalid(
            "login: --username is required (no interactive prompt)".into()
        )),
    };
    let password = if a.password_stdin {
        let mut s = String::new();
        io::stdin().read_to_string(&mut s)?;
        s.trim_end_matches(['\n', '\r']).to_string()
    } else {
        a.password.clone().ok_or_else(|| {
            EngineError::Invalid("login: --password or --password-stdin is required".into())
        })?
    };
    let opts = berth_image::registry::RegistryOptions {
        insecure: !a.tls_verify,
        auth_file: None,
    };
    berth_image::registry::login(&a.server, &user, &password, &auth_file(), &opts)
        .map_err(img_err)?;
    println!("Login Succeeded");
    Ok(0)
}

pub fn logout(_g: &Global, a: LogoutArgs) -> Result<i32> {
    if berth_image::registry::logout(&a.server, &auth_file()).map_err(img_err)? {
        println!("Removing login credentials for {}", a.server);
    } else {
        println!("Not logged in to {}", a.server);
    }
    Ok(0)
}
