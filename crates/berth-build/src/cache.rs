//! cache: which image a build step produced, keyed by what determined it, and
//! the memory needed to say why a step missed.
//!
//! A step's key is sha256(parent image id, the step as run after substitution,
//! the digest of its inputs). Inputs are named strings: `file:<path>` → content
//! hash for COPY/ADD sources, `arg:<NAME>` → value for the build args a RUN sees,
//! `from:<stage>` → the image id a `COPY --from` reads. The inputs of every entry
//! are kept beside the index, so a miss can be explained by diffing them against
//! the newest entry with the same parent and step ("src/main.c changed").
//!
//! Layout under `<berth root>/build/cache`: `index.json` (key → entry), `inputs/
//! <digest>.json`, `index.lock` (flock around read-modify-write; the index is
//! replaced by an atomic rename, so a killed build leaves the old or the new one).
//! Survives restarts; `berth builder prune` empties it.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};
use serde::{Deserialize, Serialize};

use crate::context::sha256_hex;

pub type Inputs = BTreeMap<String, String>;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Entry {
    pub parent: String,
    pub step: String,
    pub inputs: String,
    pub image: String,
    pub created: String,
    /// Where the step was written (`<Dockerfile path>:<line>`): a different step
    /// after the same parent from the same place is an edit of that line.
    #[serde(default)]
    pub origin: String,
}

pub struct Cache {
    dir: PathBuf,
}

fn io_err(what: &str, p: &Path) -> impl FnOnce(io::Error) -> io::Error {
    let msg = format!("{what} {}", p.display());
    move |e| io::Error::new(e.kind(), format!("{msg}: {e}"))
}

impl Cache {
    pub fn open(dir: &Path) -> io::Result<Cache> {
        fs::create_dir_all(dir.join("inputs")).map_err(io_err("create", dir))?;
        Ok(Cache {
            dir: dir.to_path_buf(),
        })
    }

    pub fn inputs_digest(inputs: &Inputs) -> String {
        let bytes = serde_json::to_vec(inputs).unwrap_or_default();
        sha256_hex(&bytes)
    }

    pub fn key(parent: &str, step: &str, inputs: &Inputs) -> String {
        let mut s = String::new();
        s.push_str(parent);
        s.push('\0');
        s.push_str(step);
        s.push('\0');
        s.push_str(&Self::inputs_digest(inputs));
        sha256_hex(s.as_bytes())
    }

    fn read_index(&self) -> BTreeMap<String, Entry> {
        fs::read(self.dir.join("index.json"))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default()
    }

    fn lock(&self) -> io::Result<Flock<File>> {
        let p = self.dir.join("index.lock");
        let f = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&p)
            .map_err(io_err("open", &p))?;
        Flock::lock(f, FlockArg::LockExclusive).map_err(|(_, e)| io::Error::from(e))
    }

    fn write_index(&self, idx: &BTreeMap<String, Entry>) -> io::Result<()> {
        let p = self.dir.join("index.json");
        let tmp = self
            .dir
            .join(format!("index.json.{}.tmp", std::process::id()));
        let mut f = File::create(&tmp).map_err(io_err("create", &tmp))?;
        f.write_all(&serde_json::to_vec(idx).unwrap_or_default())?;
        f.sync_all()?;
        fs::rename(&tmp, &p).map_err(io_err("rename", &p))
    }

    pub fn lookup(&self, key: &str) -> Option<Entry> {
        self.read_index().remove(key)
    }

    /// Forget `key` (its image is gone).
    pub fn forget(&self, key: &str) -> io::Result<()> {
        let _l = self.lock()?;
        let mut idx = self.read_index();
        if idx.remove(key).is_some() {
            self.write_index(&idx)?;
        }
        Ok(())
    }

    pub fn record(&self, key: &str, entry: Entry, inputs: &Inputs) -> io::Result<()> {
        let ip = self
            .dir
            .join("inputs")
            .join(format!("{}.json", entry.inputs));
        if !ip.exists() {
            let tmp = ip.with_extension(format!("{}.tmp", std::process::id()));
            fs::write(&tmp, serde_json::to_vec(inputs).unwrap_or_default())
                .map_err(io_err("write", &tmp))?;
            fs::rename(&tmp, &ip).map_err(io_err("rename", &ip))?;
        }
        let _l = self.lock()?;
        let mut idx = self.read_index();
        idx.insert(key.to_string(), entry);
        self.write_index(&idx)
    }

    fn load_inputs(&self, digest: &str) -> Option<Inputs> {
        let b = fs::read(self.dir.join("inputs").join(format!("{digest}.json"))).ok()?;
        serde_json::from_slice(&b).ok()
    }

    /// Why nothing matched `(parent, step, inputs)`, in plain words, or None when
    /// the cache knows nothing about this parent at all.
    pub fn explain_miss(
        &self,
        parent: &str,
        step: &str,
        inputs: &Inputs,
        origin: &str,
    ) -> Option<String> {
        let idx = self.read_index();
        let newest = |f: &dyn Fn(&Entry) -> bool| {
            idx.values()
                .filter(|e| e.parent == parent && f(e))
                .max_by(|a, b| a.created.cmp(&b.created))
                .cloned()
        };
        if let Some(e) = newest(&|e| e.step == step) {
            let old = self.load_inputs(&e.inputs).unwrap_or_default();
            return Some(diff_inputs(&old, inputs));
        }
        // the same line of the same Dockerfile after the same parent: it was edited
        // (another Dockerfile sharing the parent is not a change of this one)
        newest(&|e| !origin.is_empty() && e.origin == origin)
            .map(|e| format!("the instruction changed (was: {})", e.step))
    }

    /// Empty the cache; returns the image ids it referred to.
    pub fn clear(&self) -> io::Result<Vec<String>> {
        let _l = self.lock()?;
        let idx = self.read_index();
        self.write_index(&BTreeMap::new())?;
        let inputs = self.dir.join("inputs");
        if let Ok(rd) = fs::read_dir(&inputs) {
            for e in rd.flatten() {
                let _ = fs::remove_file(e.path());
            }
        }
        Ok(idx.into_values().map(|e| e.image).collect())
    }

    pub fn len(&self) -> usize {
        self.read_index().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// "src/main.c changed", "build arg VERSION changed (1 → 2)", ... at most a few names.
pub fn diff_inputs(old: &Inputs, new: &Inputs) -> String {
    let mut changed = Vec::new();
    let mut added = Vec::new();
    let mut removed = Vec::new();
    for (k, v) in new {
        match old.get(k) {
            Some(o) if o == v => {}
            Some(o) => changed.push((k.clone(), o.clone(), v.clone())),
            None => added.push(k.clone()),
        }
    }
    for k in old.keys() {
        if !new.contains_key(k) {
            removed.push(k.clone());
        }
    }
    let mut words = Vec::new();
    let describe = |k: &str| -> String {
        if let Some(f) = k.strip_prefix("file:") {
            f.to_string()
        } else if let Some(a) = k.strip_prefix("arg:") {
            format!("build arg {a}")
        } else if let Some(s) = k.strip_prefix("from:") {
            format!("--from={s}")
        } else {
            k.to_string()
        }
    };
    for (k, o, v) in &changed {
        if k.starts_with("arg:") {
            words.push(format!("{} changed ({o:?} → {v:?})", describe(k)));
        } else if k.starts_with("from:") {
            words.push(format!("{} changed (now {})", describe(k), short(v)));
        } else {
            words.push(format!("{} changed", describe(k)));
        }
    }
    for k in &added {
        words.push(format!("{} added", describe(k)));
    }
    for k in &removed {
        words.push(format!("{} removed", describe(k)));
    }
    if words.is_empty() {
        return "inputs changed".into();
    }
    let n = words.len();
    if n > 3 {
        words.truncate(3);
        words.push(format!("and {} more", n - 3));
    }
    words.join(", ")
}

fn short(id: &str) -> &str {
    let h = id.strip_prefix("sha256:").unwrap_or(id);
    &h[..h.len().min(12)]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inputs(kv: &[(&str, &str)]) -> Inputs {
        kv.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn keys_depend_on_parent_step_and_inputs() {
        let i = inputs(&[("file:a", "1")]);
        let k = Cache::key("p", "COPY a /", &i);
        assert_eq!(k, Cache::key("p", "COPY a /", &i));
        assert_ne!(k, Cache::key("q", "COPY a /", &i));
        assert_ne!(k, Cache::key("p", "COPY a /x", &i));
        assert_ne!(k, Cache::key("p", "COPY a /", &inputs(&[("file:a", "2")])));
    }

    #[test]
    fn misses_are_explained_by_the_input_that_changed() {
        let d = tempfile::tempdir().unwrap();
        let c = Cache::open(d.path()).unwrap();
        let old = inputs(&[("file:src/main.c", "1"), ("file:src/util.c", "1")]);
        let e = Entry {
            parent: "p".into(),
            step: "COPY src /src".into(),
            inputs: Cache::inputs_digest(&old),
            image: "sha256:aa".into(),
            created: "2026-01-01T00:00:00Z".into(),
            origin: "/ctx/Dockerfile:3".into(),
        };
        let key = Cache::key("p", "COPY src /src", &old);
        c.record(&key, e.clone(), &old).unwrap();
        assert_eq!(c.lookup(&key), Some(e));
        let new = inputs(&[("file:src/main.c", "2"), ("file:src/util.c", "1")]);
        assert_eq!(
            c.explain_miss("p", "COPY src /src", &new, "/ctx/Dockerfile:3")
                .unwrap(),
            "src/main.c changed"
        );
        assert!(c
            .explain_miss("p", "COPY src /app", &new, "/ctx/Dockerfile:3")
            .unwrap()
            .contains("instruction changed"));
        assert_eq!(
            c.explain_miss("p", "COPY src /app", &new, "/other/Dockerfile:3"),
            None
        );
        assert_eq!(
            c.explain_miss("other", "COPY src /src", &new, "/ctx/Dockerfile:3"),
            None
        );
        let imgs = c.clear().unwrap();
        assert_eq!(imgs, vec!["sha256:aa".to_string()]);
        assert!(c.lookup(&key).is_none());
    }

    #[test]
    fn arg_changes_name_the_values() {
        let s = diff_inputs(&inputs(&[("arg:V", "1")]), &inputs(&[("arg:V", "2")]));
        assert_eq!(s, "build arg V changed (\"1\" → \"2\")");
        let s = diff_inputs(
            &inputs(&[]),
            &inputs(&[
                ("file:a", "1"),
                ("file:b", "1"),
                ("file:c", "1"),
                ("file:d", "1"),
            ]),
        );
        assert_eq!(s, "a added, b added, c added, and 1 more");
    }
}
