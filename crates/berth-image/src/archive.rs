//! Image archives: `docker save`/`podman save` tarballs in, and out.
//!
//! Accepted on load (from a file or a pipe, read once, in order):
//! - the legacy docker layout: `manifest.json` (`[{Config, RepoTags, Layers}]`) with
//!   `<id>.json` configs and `<id>/layer.tar` layers (symlinked duplicates allowed);
//! - the docker 25+ layout, which is also an OCI layout (`index.json`, `oci-layout`,
//!   `blobs/sha256/…`) plus a `manifest.json`;
//! - OCI layout archives (`podman save --format oci-archive`, `skopeo copy … oci-archive:`),
//!   with nested indexes resolved to linux/amd64.
//!
//! Every file in the archive is streamed into the store as it passes (blobs under
//! `blobs/sha256/` verified against their names); small JSON files are kept in memory.
//! Images are registered only after the whole archive was read and every blob they
//! name is present, so a truncated archive or a missing blob registers nothing.
//!
//! `save` writes both layouts at once: `oci-layout` + `index.json` + `blobs/sha256/*`
//! (what podman and skopeo read) and `manifest.json` pointing into the same blobs
//! (what `docker load` reads), so one archive loads everywhere.

use crate::digest;
use crate::reference::Reference;
use crate::store::{
    self, Descriptor, Image, ImageIndex, Manifest, Result, Store, StoreError, MEDIA_DOCKER_LIST,
    MEDIA_DOCKER_MANIFEST, MEDIA_OCI_INDEX, MEDIA_OCI_MANIFEST,
};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::{self, Read, Write};
use std::sync::{mpsc, Arc, Mutex};

/// Files up to this size that look like metadata are kept in memory.
const SMALL: u64 = 4 << 20;

#[derive(Debug, Serialize, Deserialize)]
struct DockerManifestEntry {
    #[serde(rename = "Config")]
    config: String,
    #[serde(rename = "RepoTags", default)]
    repo_tags: Option<Vec<String>>,
    #[serde(rename = "Layers")]
    layers: Vec<String>,
}

enum Item {
    Bytes(Vec<u8>),
    Blob(String),
    Link(String),
}

fn arch_err(what: impl Into<String>) -> StoreError {
    StoreError::Archive(what.into())
}

/// `./a/b/../c` → `a/c` (names are only map keys here, never filesystem paths).
fn norm(path: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    for c in path.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            c => out.push(c),
        }
    }
    out.join("/")
}

impl Store {
    /// `docker load`: every image in the archive, registered under its tags.
    pub fn load(&self, r: impl Read) -> Result<Vec<Image>> {
        let _g = self.ingest_lock()?;
        let workers = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2)
            .min(4);
        let files = std::thread::scope(|s| {
            let (tx, rx) = mpsc::channel::<String>();
            let rx = Arc::new(Mutex::new(rx));
            for _ in 0..workers {
                let rx = Arc::clone(&rx);
                s.spawn(move || loop {
                    let next = match rx.lock() {
                        Ok(q) => q.recv(),
                        Err(_) => return,
                    };
                    match next {
                        Ok(d) => self.prefetch_layer(&d),
                        Err(_) => return,
                    }
                });
            }
            let res = self.read_entries(r, &tx);
            drop(tx);
            res
        })?;
        let get = |path: &str| -> Result<Vec<u8>> {
            let mut p = norm(path);
            for _ in 0..16 {
                match files.get(&p) {
                    Some(Item::Link(t)) => p = t.clone(),
                    Some(Item::Bytes(b)) => return Ok(b.clone()),
                    Some(Item::Blob(d)) => return self.read_blob(d),
                    None => {
                        return Err(arch_err(format!(
                            "archive names {path} but does not contain it"
                        )))
                    }
                }
            }
            Err(arch_err(format!("{path}: too many links")))
        };
        let digest_of = |path: &str| -> Result<String> {
            let mut p = norm(path);
            for _ in 0..16 {
                match files.get(&p) {
                    Some(Item::Link(t)) => p = t.clone(),
                    Some(Item::Bytes(b)) => return self.put_blob_bytes(b),
                    Some(Item::Blob(d)) => return Ok(d.clone()),
                    None => {
                        return Err(arch_err(format!(
                            "archive names {path} but does not contain it"
                        )))
                    }
                }
            }
            Err(arch_err(format!("{path}: too many links")))
        };

        // Tags by config digest from a docker manifest.json, if any.
        let docker: Vec<DockerManifestEntry> = match files.get("manifest.json") {
            Some(_) => serde_json::from_slice(&get("manifest.json")?).map_err(|source| {
                StoreError::Json {
                    what: "manifest.json".into(),
                    source,
                }
            })?,
            None => Vec::new(),
        };
        let mut tags_by_config: HashMap<String, Vec<Reference>> = HashMap::new();
        for d in &docker {
            let cfg = digest_of(&d.config)?;
            let tags = tags_by_config.entry(cfg).or_default();
            for t in d.repo_tags.clone().unwrap_or_default() {
                tags.push(Reference::parse(&t)?);
            }
        }

        // (manifest bytes, tags) to register.
        let mut todo: Vec<(Vec<u8>, Vec<Reference>)> = Vec::new();
        if files.contains_key("index.json") {
            let index: ImageIndex =
                serde_json::from_slice(&get("index.json")?).map_err(|source| StoreError::Json {
                    what: "index.json".into(),
                    source,
                })?;
            let mut by_manifest: BTreeMap<String, (Vec<u8>, Vec<Reference>)> = BTreeMap::new();
            for desc in &index.manifests {
                let Some(mdesc) = self.pick_manifest(desc)? else {
                    continue;
                };
                let bytes = self.read_blob(&mdesc.digest)?;
                let m: Manifest =
                    serde_json::from_slice(&bytes).map_err(|source| StoreError::Json {
                        what: format!("manifest {}", mdesc.digest),
                        source,
                    })?;
                let entry = by_manifest
                    .entry(mdesc.digest.clone())
                    .or_insert_with(|| (bytes, Vec::new()));
                let ann = desc.annotations.clone().unwrap_or_default();
                let name = ann.get("io.containerd.image.name").or_else(|| {
                    ann.get("org.opencontainers.image.ref.name")
                        .filter(|n| n.contains(':') || n.contains('/'))
                });
                if let Some(n) = name {
                    if let Ok(r) = Reference::parse(n) {
                        entry.1.push(r);
                    }
                }
                if let Some(t) = tags_by_config.get(&m.config.digest) {
                    entry.1.extend(t.iter().cloned());
                }
            }
            todo.extend(by_manifest.into_values());
        } else if !docker.is_empty() {
            for d in &docker {
                let config = digest_of(&d.config)?;
                let mut layers = Vec::new();
                for l in &d.layers {
                    let dg = digest_of(l)?;
                    let mut f = self.open_blob(&dg)?;
                    let mut head = [0u8; 4];
                    let n = f
                        .read(&mut head)
                        .map_err(|e| arch_err(format!("read {l}: {e}")))?;
                    let mt = match crate::layer::sniff(&head[..n]) {
                        crate::layer::Compression::Gzip => store::MEDIA_OCI_LAYER_GZIP,
                        crate::layer::Compression::Zstd => store::MEDIA_OCI_LAYER_ZSTD,
                        crate::layer::Compression::None => store::MEDIA_OCI_LAYER,
                    };
                    let size = f.metadata().map(|m| m.len()).unwrap_or(0);
                    layers.push(desc(mt, &dg, size));
                }
                let cfg_size = self.read_blob(&config)?.len() as u64;
                let m = Manifest {
                    schema_version: 2,
                    media_type: Some(MEDIA_OCI_MANIFEST.into()),
                    config: desc(store::MEDIA_OCI_CONFIG, &config, cfg_size),
                    layers,
                };
                let bytes = serde_json::to_vec(&m).map_err(|source| StoreError::Json {
                    what: "manifest".into(),
                    source,
                })?;
                let tags = tags_by_config.get(&config).cloned().unwrap_or_default();
                todo.push((bytes, tags));
            }
        } else {
            return Err(arch_err(
                "no manifest.json or index.json: not an image archive",
            ));
        }
        let mut out = Vec::new();
        for (bytes, mut tags) in todo {
            tags.sort();
            tags.dedup();
            out.push(self.register(&bytes, &tags, None)?);
        }
        Ok(out)
    }

    /// Stream every archive member into the store (blobs) or memory (metadata), sending
    /// each newly stored blob to `unpack_queue` for speculative unpacking.
    fn read_entries(
        &self,
        r: impl Read,
        unpack_queue: &mpsc::Sender<String>,
    ) -> Result<HashMap<String, Item>> {
        let mut files: HashMap<String, Item> = HashMap::new();
        let mut ar = tar::Archive::new(r);
        let entries = ar
            .entries()
            .map_err(|e| arch_err(format!("read archive: {e}")))?;
        for e in entries {
            let mut e = e.map_err(|e| arch_err(format!("read archive: {e}")))?;
            let path = norm(&String::from_utf8_lossy(&e.path_bytes()));
            let kind = e.header().entry_type();
            match kind {
                tar::EntryType::Symlink | tar::EntryType::Link => {
                    let target = e
                        .link_name_bytes()
                        .map(|b| String::from_utf8_lossy(&b).into_owned())
                        .unwrap_or_default();
                    let resolved = if kind == tar::EntryType::Symlink {
                        let parent = path.rsplit_once('/').map(|(p, _)| p).unwrap_or("");
                        norm(&format!("{parent}/{target}"))
                    } else {
                        norm(&target)
                    };
                    files.insert(path, Item::Link(resolved));
                }
                tar::EntryType::Regular | tar::EntryType::Continuous => {
                    let size = e.size();
                    let blob_name = path
                        .strip_prefix("blobs/sha256/")
                        .map(|h| format!("sha256:{h}"));
                    let is_meta =
                        path.ends_with(".json") || path == "repositories" || path == "oci-layout";
                    if blob_name.is_none() && is_meta && size <= SMALL {
                        let mut b = Vec::with_capacity(size as usize);
                        e.read_to_end(&mut b)
                            .map_err(|e| arch_err(format!("read {path}: {e}")))?;
                        files.insert(path, Item::Bytes(b));
                        continue;
                    }
                    let is_new = !blob_name.as_ref().is_some_and(|d| self.has_blob(d));
                    let digest = match &blob_name {
                        Some(d) if self.has_blob(d) => {
                            io::copy(&mut e, &mut io::sink())
                                .map_err(|e| arch_err(format!("read {path}: {e}")))?;
                            d.clone()
                        }
                        Some(d) => self.put_blob(&mut e, Some(d))?.0,
                        None => self.put_blob(&mut e, None)?.0,
                    };
                    if is_new {
                        // Unpacking starts while the rest of the archive is still read.
                        let _ = unpack_queue.send(digest.clone());
                    }
                    files.insert(path, Item::Blob(digest));
                }
                _ => {}
            }
        }
        Ok(files)
    }

    /// Unpack a blob that may be a layer before the config says so (its diffID is
    /// computed from the content, so the result is right whatever the config says). A
    /// blob that is not a layer just fails to unpack; register() verifies as usual.
    fn prefetch_layer(&self, digest: &str) {
        let Ok(mut f) = self.open_blob(digest) else {
            return;
        };
        let mut first = [0u8; 1];
        if f.read(&mut first)
            .map(|n| n == 0 || first[0] == b'{')
            .unwrap_or(true)
        {
            return;
        }
        if let Some(hex) = digest::hex_of(digest) {
            let _ = self.unpack_blob_locked(digest, hex);
        }
    }

    /// Follow an index/manifest-list descriptor down to this host's manifest.
    pub(crate) fn pick_manifest(&self, d: &Descriptor) -> Result<Option<Descriptor>> {
        let is_index = d.media_type == MEDIA_OCI_INDEX || d.media_type == MEDIA_DOCKER_LIST;
        if !is_index {
            if let Some(p) = &d.platform {
                if !(p.os == "linux" && p.architecture == "amd64") {
                    return Ok(None);
                }
            }
            return Ok(Some(d.clone()));
        }
        let idx: ImageIndex =
            serde_json::from_slice(&self.read_blob(&d.digest)?).map_err(|source| {
                StoreError::Json {
                    what: format!("index {}", d.digest),
                    source,
                }
            })?;
        let found = idx.manifests.iter().find(|m| {
            m.platform
                .as_ref()
                .is_some_and(|p| p.os == "linux" && p.architecture == "amd64")
        });
        let found = found.or(if idx.manifests.len() == 1 {
            idx.manifests.first()
        } else {
            None
        });
        match found {
            Some(m) => {
                let mut m = m.clone();
                m.platform = None;
                self.pick_manifest(&m)
            }
            None => Err(arch_err(format!(
                "index {} has no linux/amd64 manifest",
                d.digest
            ))),
        }
    }

    /// `docker save`: the images `refs` name, in one archive both docker and podman load.
    pub fn save(&self, refs: &[&str], w: impl Write) -> Result<()> {
        let mut images = Vec::new();
        for r in refs {
            let img = self.resolve(r)?;
            // Save exactly the names asked for when a name was given, all names for an id.
            let tags: Vec<Reference> = match Reference::parse(r) {
                Ok(rf) if img.repo_tags.contains(&rf.to_string()) => vec![rf],
                _ => img
                    .repo_tags
                    .iter()
                    .filter_map(|t| Reference::parse(t).ok())
                    .collect(),
            };
            images.push((img, tags));
        }
        let mut b = tar::Builder::new(w);
        let mut written: BTreeSet<String> = BTreeSet::new();
        let mut index = ImageIndex {
            schema_version: 2,
            media_type: Some(MEDIA_OCI_INDEX.into()),
            manifests: Vec::new(),
        };
        let mut docker = Vec::new();
        let add =
            |b: &mut tar::Builder<_>, name: &str, size: u64, r: &mut dyn Read| -> Result<()> {
                let mut h = tar::Header::new_ustar();
                h.set_entry_type(tar::EntryType::Regular);
                h.set_mode(0o644);
                h.set_mtime(0);
                h.set_size(size);
                b.append_data(&mut h, name, r)
                    .map_err(|e| arch_err(format!("write {name}: {e}")))
            };
        let layout = br#"{"imageLayoutVersion":"1.0.0"}"#;
        add(&mut b, "oci-layout", layout.len() as u64, &mut &layout[..])?;
        for (img, tags) in &images {
            let mbytes = self.read_blob(&img.manifest_digest)?;
            let m: Manifest =
                serde_json::from_slice(&mbytes).map_err(|source| StoreError::Json {
                    what: format!("manifest {}", img.manifest_digest),
                    source,
                })?;
            let mut blobs = vec![img.manifest_digest.clone(), m.config.digest.clone()];
            blobs.extend(m.layers.iter().map(|l| l.digest.clone()));
            for d in &blobs {
                if !written.insert(d.clone()) {
                    continue;
                }
                let f = self.open_blob(d)?;
                let size = f
                    .metadata()
                    .map_err(|e| arch_err(format!("stat {d}: {e}")))?
                    .len();
                let hex = digest::hex_of(d).ok_or_else(|| StoreError::BadDigest(d.clone()))?;
                add(
                    &mut b,
                    &format!("blobs/sha256/{hex}"),
                    size,
                    &mut io::BufReader::new(f),
                )?;
            }
            let mt = m
                .media_type
                .clone()
                .unwrap_or_else(|| MEDIA_OCI_MANIFEST.into());
            let mt = if mt.is_empty() {
                MEDIA_DOCKER_MANIFEST.into()
            } else {
                mt
            };
            let mdesc = desc(&mt, &img.manifest_digest, mbytes.len() as u64);
            if tags.is_empty() {
                index.manifests.push(mdesc.clone());
            }
            for t in tags {
                let mut d = mdesc.clone();
                let mut ann = BTreeMap::new();
                ann.insert("io.containerd.image.name".to_string(), t.to_string());
                ann.insert(
                    "org.opencontainers.image.ref.name".to_string(),
                    t.tag.clone().unwrap_or_default(),
                );
                d.annotations = Some(ann);
                index.manifests.push(d);
            }
            docker.push(DockerManifestEntry {
                config: format!(
                    "blobs/sha256/{}",
                    digest::hex_of(&m.config.digest).unwrap_or_default()
                ),
                repo_tags: Some(tags.iter().map(|t| t.familiar()).collect()),
                layers: m
                    .layers
                    .iter()
                    .map(|l| {
                        format!(
                            "blobs/sha256/{}",
                            digest::hex_of(&l.digest).unwrap_or_default()
                        )
                    })
                    .collect(),
            });
        }
        let ij = serde_json::to_vec(&index).map_err(|source| StoreError::Json {
            what: "index.json".into(),
            source,
        })?;
        add(&mut b, "index.json", ij.len() as u64, &mut &ij[..])?;
        let mj = serde_json::to_vec(&docker).map_err(|source| StoreError::Json {
            what: "manifest.json".into(),
            source,
        })?;
        add(&mut b, "manifest.json", mj.len() as u64, &mut &mj[..])?;
        b.into_inner()
            .and_then(|mut w| w.flush())
            .map_err(|e| arch_err(format!("finish archive: {e}")))?;
        Ok(())
    }
}

fn desc(media_type: &str, digest: &str, size: u64) -> Descriptor {
    Descriptor {
        media_type: media_type.into(),
        digest: digest.into(),
        size,
        annotations: None,
        platform: None,
    }
}

#[cfg(test)]
mod tests {
    use super::norm;

    #[test]
    fn archive_paths() {
        assert_eq!(norm("./blobs/sha256/ab"), "blobs/sha256/ab");
        assert_eq!(norm("a/../b/layer.tar"), "b/layer.tar");
        assert_eq!(norm("../../x"), "x");
    }
}
