//! context: the build context (a directory, or a tar read from stdin and unpacked
//! into the build's scratch dir), its `.dockerignore`, COPY source resolution and
//! the content hashes the cache keys on.
//!
//! Invariants: a source path is cleaned lexically and refused when `..` would
//! leave the context (Docker's "forbidden path outside the build context"); it is
//! then opened through [`Tree`], so a symlink inside the context cannot reach
//! outside it either. Ignored paths behave as if they did not exist.

use std::collections::BTreeMap;
use std::io::{self, Read};
use std::path::Path;

use sha2::{Digest, Sha256};

use crate::dockerfile::ignore::{glob_match, Ignore};
use crate::fsutil::{EntryKind, Tree};

pub struct Context {
    pub tree: Tree,
    pub ignore: Ignore,
}

impl Context {
    /// `dir` as the context; the ignore file is `<dockerfile>.dockerignore` if it
    /// exists next to the Dockerfile, else `.dockerignore` at the root (Docker's order).
    pub fn open(dir: &Path, dockerfile: Option<&Path>) -> io::Result<Context> {
        let tree = Tree::open(dir)?;
        let mut text = None;
        if let Some(df) = dockerfile {
            let mut name = df.as_os_str().to_owned();
            name.push(".dockerignore");
            if let Ok(t) = std::fs::read_to_string(&name) {
                text = Some(t);
            }
        }
        if text.is_none() {
            if let Ok(mut f) = tree.open_file(".dockerignore") {
                let mut s = String::new();
                f.read_to_string(&mut s)?;
                text = Some(s);
            }
        }
        let ignore = Ignore::parse(text.as_deref().unwrap_or(""));
        Ok(Context { tree, ignore })
    }

    pub fn excluded(&self, rel: &str) -> bool {
        !rel.is_empty() && rel != "." && self.ignore.excluded(rel)
    }
}

/// A source root for COPY: the context (with its ignore rules) or another stage's
/// or image's root filesystem (`--from`, nothing ignored).
pub struct Source<'a> {
    pub tree: &'a Tree,
    pub ignore: Option<&'a Ignore>,
}

impl Source<'_> {
    pub fn skip(&self, rel: &str, is_dir: bool) -> bool {
        match self.ignore {
            Some(i) => !rel.is_empty() && rel != "." && i.excluded_entry(rel, is_dir),
            None => false,
        }
    }
}

/// Clean `p` lexically relative to the root: `/a/./b/../c` → `a/c`. `None` when
/// `..` climbs above the root.
pub fn clean_rel(p: &str) -> Option<String> {
    let mut parts: Vec<&str> = Vec::new();
    for c in p.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            c => parts.push(c),
        }
    }
    Some(parts.join("/"))
}

fn has_wildcard(s: &str) -> bool {
    s.contains(['*', '?', '['])
}

/// The tree-relative paths COPY sources name, wildcards expanded (sorted per
/// source). Errors are Docker's words.
pub fn resolve_sources(src: &Source<'_>, sources: &[String]) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    for s in sources {
        // `..` that climbs out is refused whether or not it would exist
        let Some(clean) = clean_rel(s) else {
            return Err(format!("forbidden path outside the build context: {s}"));
        };
        if !has_wildcard(&clean) {
            if src.skip(&clean, false) || src.tree.lstat(&clean).is_err() {
                return Err(format!(
                    "file not found in build context or excluded by .dockerignore: stat {s}: file does not exist"
                ));
            }
            out.push(clean);
            continue;
        }
        let mut bases: Vec<String> = vec![String::new()];
        for comp in clean.split('/') {
            let mut next = Vec::new();
            for b in &bases {
                if has_wildcard(comp) {
                    let Ok(names) = src.tree.list(if b.is_empty() { "." } else { b }) else {
                        continue;
                    };
                    for n in names {
                        if glob_match(comp, &n) {
                            let p = join(b, &n);
                            if !src.skip(&p, false) {
                                next.push(p);
                            }
                        }
                    }
                } else {
                    let p = join(b, comp);
                    if src.tree.lstat(&p).is_ok() && !src.skip(&p, false) {
                        next.push(p);
                    }
                }
            }
            bases = next;
        }
        if bases.is_empty() {
            return Err(format!(
                "no source files were specified (no match for {s:?})"
            ));
        }
        bases.sort();
        out.extend(bases);
    }
    Ok(out)
}

pub fn join(base: &str, name: &str) -> String {
    if base.is_empty() || base == "." {
        name.to_string()
    } else {
        format!("{base}/{name}")
    }
}

/// Content hashes of everything the sources cover, by tree-relative path: the
/// cache's inputs for a COPY/ADD, and what a miss explanation diffs. A file's
/// hash covers its bytes and mode; a symlink's its target; a directory's its mode.
pub fn hash_sources(src: &Source<'_>, paths: &[String]) -> io::Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    let mut buf = vec![0u8; 128 * 1024];
    for p in paths {
        src.tree.walk(
            p,
            &|rel, is_dir| src.skip(rel, is_dir),
            &mut |rel, st, kind| {
                let mut h = Sha256::new();
                h.update(format!("{:o}\0", st.st_mode & 0o7777).as_bytes());
                match kind {
                    EntryKind::Dir => h.update(b"dir"),
                    EntryKind::File => {
                        h.update(b"file\0");
                        let mut f = src.tree.open_file(rel)?;
                        loop {
                            let n = f.read(&mut buf)?;
                            if n == 0 {
                                break;
                            }
                            h.update(&buf[..n]);
                        }
                    }
                    EntryKind::Symlink(t) => {
                        h.update(b"symlink\0");
                        h.update(t.as_os_str().as_encoded_bytes());
                    }
                    EntryKind::Special => {
                        h.update(format!("node {}", st.st_rdev).as_bytes());
                    }
                }
                out.insert(rel.to_string(), hex(&h.finalize()));
                Ok(())
            },
        )?;
    }
    Ok(out)
}

pub fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

pub fn sha256_hex(b: &[u8]) -> String {
    hex(&Sha256::digest(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_rel_stays_inside() {
        assert_eq!(clean_rel("/a/./b/../c").as_deref(), Some("a/c"));
        assert_eq!(clean_rel(".").as_deref(), Some(""));
        assert_eq!(clean_rel("a/../.."), None);
        assert_eq!(clean_rel("../x"), None);
        assert_eq!(clean_rel("a//b/").as_deref(), Some("a/b"));
    }

    #[test]
    fn sources_resolve_with_wildcards_and_refuse_escapes() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir(d.path().join("src")).unwrap();
        std::fs::write(d.path().join("src/a.c"), "a").unwrap();
        std::fs::write(d.path().join("src/b.c"), "b").unwrap();
        std::fs::write(d.path().join("src/c.h"), "c").unwrap();
        std::os::unix::fs::symlink("/etc/passwd", d.path().join("evil")).unwrap();
        let tree = Tree::open(d.path()).unwrap();
        let ignore = Ignore::parse("");
        let src = Source {
            tree: &tree,
            ignore: Some(&ignore),
        };
        assert_eq!(
            resolve_sources(&src, &["src/*.c".into()]).unwrap(),
            vec!["src/a.c".to_string(), "src/b.c".to_string()]
        );
        assert!(resolve_sources(&src, &["../x".into()])
            .unwrap_err()
            .contains("outside the build context"));
        assert!(resolve_sources(&src, &["nope".into()])
            .unwrap_err()
            .contains("not found"));
        assert!(resolve_sources(&src, &["*.zz".into()]).is_err());
        // the symlink resolves inside the context: /etc/passwd there does not exist
        assert!(tree.open_file("evil").is_err());
    }

    #[test]
    fn hashes_change_with_content_and_mode() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("f"), "one").unwrap();
        let tree = Tree::open(d.path()).unwrap();
        let src = Source {
            tree: &tree,
            ignore: None,
        };
        let h1 = hash_sources(&src, &["f".into()]).unwrap();
        std::fs::write(d.path().join("f"), "two").unwrap();
        let h2 = hash_sources(&src, &["f".into()]).unwrap();
        assert_ne!(h1, h2);
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(d.path().join("f"), std::fs::Permissions::from_mode(0o755))
            .unwrap();
        let h3 = hash_sources(&src, &["f".into()]).unwrap();
        assert_ne!(h2, h3);
    }
}
