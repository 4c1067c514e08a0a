//! `berth build` and `berth builder prune`: flags → berth-build.

use std::io::{self, Read};
use std::path::PathBuf;

use anyhow::{Context as _, Result};

use crate::cli::{BuildArgs, BuilderCmd, Global};
use crate::engine;

pub fn build(g: &Global, a: BuildArgs) -> Result<i32> {
    let e = engine(g)?;
    let mut opts = berth_build::BuildOptions {
        tags: a.tags.clone(),
        target: a.target.clone(),
        no_cache: a.no_cache,
        quiet: a.quiet,
        network: a.network.clone(),
        lint_only: a.lint,
        platform: a.platform.clone(),
        ..Default::default()
    };
    for kv in &a.build_args {
        match kv.split_once('=') {
            Some((k, v)) => opts.build_args.push((k.to_string(), Some(v.to_string()))),
            None => opts.build_args.push((kv.clone(), None)),
        }
    }
    for kv in &a.labels {
        let (k, v) = kv.split_once('=').unwrap_or((kv.as_str(), ""));
        opts.labels.push((k.to_string(), v.to_string()));
    }
    if a.context == "-" {
        if a.file.as_deref() == Some("-") {
            anyhow::bail!("the context and the Dockerfile cannot both come from stdin");
        }
        opts.context = berth_build::ContextSource::Tar(Box::new(io::stdin()));
        opts.dockerfile = a.file.as_ref().map(PathBuf::from);
    } else {
        opts.context = berth_build::ContextSource::Dir(PathBuf::from(&a.context));
        match a.file.as_deref() {
            Some("-") => {
                let mut t = String::new();
                io::stdin()
                    .read_to_string(&mut t)
                    .context("read the Dockerfile from stdin")?;
                opts.dockerfile_text = Some(t);
            }
            // docker resolves -f against the current directory
            Some(f) => {
                let p = PathBuf::from(f);
                opts.dockerfile = Some(if p.is_absolute() {
                    p
                } else {
                    std::env::current_dir()
                        .context("current directory")?
                        .join(p)
                });
            }
            None => {}
        }
    }
    let stdout = io::stdout();
    let mut out = stdout.lock();
    let mut err = io::stderr();
    match berth_build::build(&e, opts, &mut out, &mut err) {
        Ok(outcome) => {
            if let (Some(path), Some(img)) = (&a.iidfile, &outcome.image) {
                std::fs::write(path, &img.id)
                    .with_context(|| format!("write --iidfile {}", path.display()))?;
            }
            Ok(0)
        }
        Err(e) => {
            // docker build exits 1 when the build fails
            eprintln!("berth: build failed: {e}");
            Ok(1)
        }
    }
}

pub fn builder_cmd(g: &Global, c: BuilderCmd) -> Result<i32> {
    match c {
        BuilderCmd::Prune(_) => {
            let e = engine(g)?;
            let removed = berth_build::prune(&e)?;
            for id in &removed {
                println!("Deleted: {id}");
            }
            println!("Total: {} build cache image(s) removed", removed.len());
            Ok(0)
        }
    }
}
