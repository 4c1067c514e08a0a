//! volume: named volumes — directories under `<root>/volumes/<name>/_data`
//! that are bind-mounted into containers, bypassing overlay, and outlive them.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::root::{write_atomic, Root};
use crate::EngineError;

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct Volume {
    #[serde(rename = "Name")]
    pub name: String,
    #[serde(rename = "Driver")]
    pub driver: String,
    #[serde(rename = "Mountpoint")]
    pub mountpoint: String,
    #[serde(rename = "CreatedAt")]
    pub created_at: String,
    #[serde(rename = "Labels")]
    pub labels: BTreeMap<String, String>,
    #[serde(rename = "Scope")]
    pub scope: String,
    /// Anonymous volumes (an image's VOLUME, `-v /path`) go with `rm -v`.
    #[serde(rename = "Anonymous", default)]
    pub anonymous: bool,
}

pub struct Volumes<'a> {
    pub root: &'a Root,
}

impl<'a> Volumes<'a> {
    pub fn new(root: &'a Root) -> Volumes<'a> {
        Volumes { root }
    }

    fn dir(&self, name: &str) -> PathBuf {
        self.root.volumes().join(name)
    }

    /// Create (or return the existing) volume. Idempotent like `docker volume create`.
    pub fn create(
        &self,
        name: &str,
        labels: BTreeMap<String, String>,
        anonymous: bool,
    ) -> Result<Volume, EngineError> {
        if !crate::names::is_valid_name(name) {
            return Err(EngineError::Invalid(format!(
                "invalid volume name {name:?}: only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
            )));
        }
        let _lock = crate::root::Lock::exclusive(&self.root.volumes().join(".lock"))
            .map_err(|e| EngineError::io("lock volumes", e))?;
        if let Ok(v) = self.inspect(name) {
            return Ok(v);
        }
        let dir = self.dir(name);
        let data = dir.join("_data");
        fs::create_dir_all(&data)
            .map_err(|e| EngineError::io(format!("create {}", data.display()), e))?;
        let v = Volume {
            name: name.into(),
            driver: "local".into(),
            mountpoint: data.to_string_lossy().into_owned(),
            created_at: crate::time::now(),
            labels,
            scope: "local".into(),
            anonymous,
        };
        write_atomic(
            &dir.join("volume.json"),
            &serde_json::to_vec_pretty(&v).expect("serialize"),
        )
        .map_err(|e| EngineError::io("write volume.json", e))?;
        crate::events::emit(self.root, "volume", "create", name, &[("driver", "local")]);
        Ok(v)
    }

    pub fn inspect(&self, name: &str) -> Result<Volume, EngineError> {
        let path = self.dir(name).join("volume.json");
        let data = fs::read(&path).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => EngineError::NoSuchVolume(name.into()),
            _ => EngineError::io(format!("read {}", path.display()), e),
        })?;
        serde_json::from_slice(&data)
            .map_err(|e| EngineError::Invalid(format!("corrupt {}: {e}", path.display())))
    }

    pub fn list(&self) -> Result<Vec<Volume>, EngineError> {
        let mut out = Vec::new();
        if let Ok(rd) = fs::read_dir(self.root.volumes()) {
            for e in rd.flatten() {
                let n = e.file_name().to_string_lossy().into_owned();
                if n.starts_with('.') {
                    continue;
                }
                if let Ok(v) = self.inspect(&n) {
                    out.push(v);
                }
            }
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// Remove a volume; `in_use` lists containers using it (refused unless empty).
    pub fn remove(&self, name: &str, in_use: &[String]) -> Result<(), EngineError> {
        self.inspect(name)?;
        if !in_use.is_empty() {
            return Err(EngineError::Conflict(format!(
                "remove {name}: volume is in use - [{}]",
                in_use.join(", ")
            )));
        }
        let dir = self.dir(name);
        fs::remove_dir_all(&dir)
            .map_err(|e| EngineError::io(format!("remove {}", dir.display()), e))?;
        crate::events::emit(self.root, "volume", "destroy", name, &[]);
        Ok(())
    }
}
