//! The content store: digest-addressed blobs, unpacked layers and the names index.
//!
//! Layout under the root (e.g. /var/lib/berth/image):
//! ```text
//! blobs/sha256/<hex>     manifests, configs, layer blobs (as received: gzip/zstd/tar)
//! layers/<diffid-hex>/   one unpacked layer, shared by every image and container
//! layers/<diffid-hex>.size  bytes of the uncompressed tar (for `Size`)
//! index.json             { images: {id → record}, names: {normalised ref → id} }
//! index.lock             flock: read-modify-write of index.json
//! gc.lock                flock: shared while ingesting, exclusive while deleting
//! locks/<hex>.lock       flock: one unpacker per layer
//! tmp/<pid>-<n>/ + .lock one private scratch dir per open Store, flocked while alive
//! ```
//! Invariants:
//! - a blob file exists only with the bytes its name promises (hashed while written to
//!   tmp/, fsync, rename);
//! - a layer dir exists only complete and with a verified diffID (unpacked in tmp/, renamed);
//!   the full diffID names it so two layers can never collide (overlay's mount string
//!   limit is handled by the new mount API, not by short names);
//! - an image is registered (visible) only by the atomic rename of index.json, after all
//!   its blobs and layers exist; a kill -9 at any point leaves either the old or the new
//!   index, plus debris in tmp/ (removed on the next open, once its owner's flock is
//!   free) and maybe unreferenced blobs (removed by the next garbage collection, which
//!   runs on open when no other process is ingesting, and on remove/prune).
//! - ids are config digests (docker's image ID); names are normalised references.

use crate::changes::{self, ChangeError};
use crate::digest::{self, HashWriter};
use crate::layer::{self, LayerError};
use crate::reference::{Reference, ReferenceError};
use nix::fcntl::{Flock, FlockArg};
use oci_spec::image::{Config, ImageConfiguration};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

pub const MEDIA_OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const MEDIA_OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const MEDIA_OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const MEDIA_OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar";
pub const MEDIA_OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub const MEDIA_OCI_LAYER_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
pub const MEDIA_DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const MEDIA_DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error(transparent)]
    Reference(#[from] ReferenceError),
    #[error(transparent)]
    Change(#[from] ChangeError),
    #[error("no such image: {0}")]
    NotFound(String),
    #[error("image id prefix {prefix:?} is ambiguous: matches {matches:?}")]
    Ambiguous {
        prefix: String,
        matches: Vec<String>,
    },
    #[error("blob {digest}: digest mismatch (content hashes to {actual})")]
    DigestMismatch { digest: String, actual: String },
    #[error("layer {digest}: diffID mismatch: config says {expected}, content is {actual}")]
    DiffIdMismatch {
        digest: String,
        expected: String,
        actual: String,
    },
    #[error("blob {0} is missing from the store")]
    MissingBlob(String),
    #[error("invalid digest {0:?}")]
    BadDigest(String),
    #[error("unpack layer {digest}: {source}")]
    Unpack {
        digest: String,
        #[source]
        source: LayerError,
    },
    #[error("parse {what}: {source}")]
    Json {
        what: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("image config {id}: {why}")]
    BadConfig { id: String, why: String },
    #[error("image {image} ({id}) is in use by a container (use force to untag it anyway)")]
    InUse { image: String, id: String },
    #[error("image {0} has no tag {1}")]
    NoSuchTag(String, String),
    #[error("conflict: {0}")]
    Conflict(String),
    #[error("archive: {0}")]
    Archive(String),
    #[error("lock {path}: {source}")]
    Lock {
        path: PathBuf,
        #[source]
        source: nix::Error,
    },
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

fn io_at<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> StoreError + 'a {
    move |source| StoreError::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}

/// One layer of an image, as the manifest and config describe it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Layer {
    /// digest of the blob (compressed form).
    pub digest: String,
    /// digest of the uncompressed tar.
    pub diff_id: String,
    /// size of the blob.
    pub size: u64,
    pub media_type: String,
}

/// A registered image.
#[derive(Debug, Clone)]
pub struct Image {
    /// `sha256:<hex>` of the config blob (docker's image ID).
    pub id: String,
    pub config: ImageConfiguration,
    pub manifest_digest: String,
    /// Normalised references (`docker.io/library/busybox:latest`), sorted.
    pub repo_tags: Vec<String>,
    /// `name@sha256:<manifest digest>` for images pulled from or pushed to a registry.
    pub repo_digests: Vec<String>,
    /// Bottom layer first.
    pub layers: Vec<Layer>,
    pub created: Option<String>,
    /// Sum of the uncompressed layer sizes (docker's `Size`).
    pub size: u64,
    /// Made by a build step (the build cache), see `Record::intermediate`.
    pub intermediate: bool,
}

impl Image {
    /// The short id docker prints: the first 12 hex characters.
    pub fn short_id(&self) -> &str {
        let hex = self.id.strip_prefix("sha256:").unwrap_or(&self.id);
        &hex[..hex.len().min(12)]
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct Record {
    pub manifest: String,
    pub layers: Vec<Layer>,
    #[serde(default)]
    pub created: Option<String>,
    #[serde(default)]
    pub size: u64,
    #[serde(default)]
    pub repo_digests: Vec<String>,
    /// A build step's image (the build cache): hidden from `images` unless tagged,
    /// left alone by `image prune`, removed by `builder prune`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub intermediate: bool,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct Index {
    pub images: BTreeMap<String, Record>,
    pub names: BTreeMap<String, String>,
}

/// OCI descriptor (also fits docker schema2 descriptors).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Descriptor {
    #[serde(rename = "mediaType", default)]
    pub media_type: String,
    pub digest: String,
    pub size: u64,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub annotations: Option<BTreeMap<String, String>>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub platform: Option<Platform>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Platform {
    pub architecture: String,
    pub os: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub variant: Option<String>,
}

/// An image manifest (OCI or docker schema2).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    #[serde(rename = "schemaVersion")]
    pub schema_version: u32,
    #[serde(rename = "mediaType", skip_serializing_if = "Option::is_none", default)]
    pub media_type: Option<String>,
    pub config: Descriptor,
    pub layers: Vec<Descriptor>,
}

/// An image index / manifest list.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ImageIndex {
    #[serde(rename = "schemaVersion")]
    pub schema_version: u32,
    #[serde(rename = "mediaType", skip_serializing_if = "Option::is_none", default)]
    pub media_type: Option<String>,
    pub manifests: Vec<Descriptor>,
}

/// A config change for [`Store::commit`] (what build steps and `berth commit` need).
#[derive(Debug, Clone, Default)]
pub struct CommitOptions {
    /// Replace the runtime config wholesale (applied before `changes`).
    pub config: Option<Config>,
    /// `--change` lines.
    pub changes: Vec<String>,
    /// History `created_by` (e.g. `/bin/sh -c make`).
    pub created_by: Option<String>,
    pub comment: Option<String>,
    pub author: Option<String>,
    /// RFC 3339 creation time; `None` = now.
    pub created: Option<String>,
    /// Docker's config fields that the OCI config has no place for (`Healthcheck`,
    /// `OnBuild`, `Shell`), merged into the stored config's `config` object.
    pub extra_config: serde_json::Map<String, serde_json::Value>,
    /// Register as a build-cache image (see `Image::intermediate`).
    pub intermediate: bool,
}

/// One `history` line.
#[derive(Debug, Clone, Serialize)]
pub struct HistoryEntry {
    /// The image id for the top entry, `<missing>` below (docker's convention).
    pub id: String,
    pub created: Option<String>,
    pub created_by: String,
    pub size: u64,
    pub comment: String,
    pub empty_layer: bool,
}

static TMP_SEQ: AtomicU64 = AtomicU64::new(0);

/// An open content store. Cheap to share by reference between threads.
pub struct Store {
    root: PathBuf,
    tmp: PathBuf,
    _tmp_lock: Flock<File>,
}

impl Drop for Store {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.tmp);
        let _ = fs::remove_file(self.tmp.with_extension("lock"));
    }
}

impl Store {
    /// Open (creating) the store at `root`, remove debris of dead processes and
    /// collect garbage if nobody else is ingesting.
    pub fn open(root: &Path) -> Result<Store> {
        for d in ["blobs/sha256", "layers", "locks", "tmp"] {
            let p = root.join(d);
            fs::create_dir_all(&p).map_err(io_at("create", &p))?;
        }
        let tmpdir = root.join("tmp");
        Self::clean_debris(&tmpdir)?;
        let name = format!(
            "{}-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0),
            TMP_SEQ.fetch_add(1, Ordering::Relaxed)
        );
        // Locked under a name debris cleaners ignore, then renamed into view: a
        // cleaner in another process must never find `<name>.lock` unlocked (it would
        // take the lock, and this open would fail with EAGAIN).
        let lock_path = tmpdir.join(format!("{name}.lock"));
        let hidden = tmpdir.join(format!(".{name}.locking"));
        let lock = lock_file(&hidden, FlockArg::LockExclusiveNonblock)?;
        fs::rename(&hidden, &lock_path).map_err(io_at("rename", &lock_path))?;
        let tmp = tmpdir.join(&name);
        fs::create_dir(&tmp).map_err(io_at("create", &tmp))?;
        let store = Store {
            root: root.to_path_buf(),
            tmp,
            _tmp_lock: lock,
        };
        if let Ok(gc) = lock_file(&root.join("gc.lock"), FlockArg::LockExclusiveNonblock) {
            store.collect_garbage(&gc)?;
        }
        Ok(store)
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Remove tmp/ entries whose owner (the holder of `<name>.lock`) is gone.
    fn clean_debris(tmpdir: &Path) -> Result<()> {
        let entries = fs::read_dir(tmpdir).map_err(io_at("read", tmpdir))?;
        for e in entries.flatten() {
            let p = e.path();
            if p.extension().and_then(|x| x.to_str()) == Some("locking") {
                // an open killed before its rename: unlocked and a minute old
                let old = e
                    .metadata()
                    .and_then(|m| m.modified())
                    .map(|t| t.elapsed().map(|d| d.as_secs() > 60).unwrap_or(false))
                    .unwrap_or(false);
                if old {
                    if let Ok(_held) = lock_file(&p, FlockArg::LockExclusiveNonblock) {
                        let _ = fs::remove_file(&p);
                    }
                }
                continue;
            }
            if p.extension().and_then(|x| x.to_str()) != Some("lock") {
                continue;
            }
            let Ok(_held) = lock_file(&p, FlockArg::LockExclusiveNonblock) else {
                continue;
            };
            let dir = p.with_extension("");
            if dir.exists() {
                fs::remove_dir_all(&dir).map_err(io_at("remove debris", &dir))?;
            }
            let _ = fs::remove_file(&p);
        }
        Ok(())
    }

    pub(crate) fn tmp_path(&self, what: &str) -> PathBuf {
        self.tmp.join(format!(
            "{what}-{}",
            TMP_SEQ.fetch_add(1, Ordering::Relaxed)
        ))
    }

    pub fn blob_path(&self, digest: &str) -> Result<PathBuf> {
        let hex =
            digest::hex_of(digest).ok_or_else(|| StoreError::BadDigest(digest.to_string()))?;
        Ok(self.root.join("blobs/sha256").join(hex))
    }

    pub fn has_blob(&self, digest: &str) -> bool {
        self.blob_path(digest).map(|p| p.exists()).unwrap_or(false)
    }

    pub fn read_blob(&self, digest: &str) -> Result<Vec<u8>> {
        let p = self.blob_path(digest)?;
        fs::read(&p).map_err(|e| {
            if e.kind() == io::ErrorKind::NotFound {
                StoreError::MissingBlob(digest.to_string())
            } else {
                StoreError::Io {
                    op: "read",
                    path: p.clone(),
                    source: e,
                }
            }
        })
    }

    pub fn open_blob(&self, digest: &str) -> Result<File> {
        let p = self.blob_path(digest)?;
        File::open(&p).map_err(|e| {
            if e.kind() == io::ErrorKind::NotFound {
                StoreError::MissingBlob(digest.to_string())
            } else {
                StoreError::Io {
                    op: "open",
                    path: p.clone(),
                    source: e,
                }
            }
        })
    }

    /// Stream `r` into the store, hashing as it goes. With `expected`, a mismatch is an
    /// error and nothing is stored. Returns `(digest, size)`.
    pub fn put_blob(&self, r: impl Read, expected: Option<&str>) -> Result<(String, u64)> {
        if let Some(d) = expected {
            if digest::hex_of(d).is_none() {
                return Err(StoreError::BadDigest(d.to_string()));
            }
        }
        let tmp = self.tmp_path("blob");
        let f = File::create(&tmp).map_err(io_at("create", &tmp))?;
        let mut w = HashWriter::new(io::BufWriter::with_capacity(256 * 1024, f));
        let mut r = r;
        io::copy(&mut r, &mut w).map_err(io_at("write", &tmp))?;
        let (bw, digest, size) = w.finish();
        let f = bw.into_inner().map_err(|e| StoreError::Io {
            op: "write",
            path: tmp.clone(),
            source: e.into_error(),
        })?;
        if let Some(exp) = expected {
            if exp != digest {
                let _ = fs::remove_file(&tmp);
                return Err(StoreError::DigestMismatch {
                    digest: exp.to_string(),
                    actual: digest,
                });
            }
        }
        f.sync_all().map_err(io_at("fsync", &tmp))?;
        let dest = self.blob_path(&digest)?;
        fs::rename(&tmp, &dest).map_err(io_at("rename", &dest))?;
        Ok((digest, size))
    }

    pub fn put_blob_bytes(&self, bytes: &[u8]) -> Result<String> {
        let d = digest::sha256(bytes);
        if !self.has_blob(&d) {
            self.put_blob(bytes, Some(&d))?;
        }
        Ok(d)
    }

    pub(crate) fn read_index(&self) -> Result<Index> {
        let p = self.root.join("index.json");
        match fs::read(&p) {
            Ok(b) => serde_json::from_slice(&b).map_err(|source| StoreError::Json {
                what: p.display().to_string(),
                source,
            }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Index::default()),
            Err(e) => Err(StoreError::Io {
                op: "read",
                path: p,
                source: e,
            }),
        }
    }

    /// Read-modify-write of index.json under index.lock; the write is atomic.
    pub(crate) fn update_index<T>(&self, f: impl FnOnce(&mut Index) -> Result<T>) -> Result<T> {
        let _l = lock_file(&self.root.join("index.lock"), FlockArg::LockExclusive)?;
        let mut idx = self.read_index()?;
        let out = f(&mut idx)?;
        let bytes = serde_json::to_vec_pretty(&idx).map_err(|source| StoreError::Json {
            what: "index".into(),
            source,
        })?;
        self.write_atomic(&self.root.join("index.json"), &bytes)?;
        Ok(out)
    }

    fn write_atomic(&self, dest: &Path, bytes: &[u8]) -> Result<()> {
        let tmp = self.tmp_path("write");
        let mut f = File::create(&tmp).map_err(io_at("create", &tmp))?;
        f.write_all(bytes).map_err(io_at("write", &tmp))?;
        f.sync_all().map_err(io_at("fsync", &tmp))?;
        fs::rename(&tmp, dest).map_err(io_at("rename", dest))?;
        if let Some(parent) = dest.parent() {
            if let Ok(d) = File::open(parent) {
                let _ = d.sync_all();
            }
        }
        Ok(())
    }

    /// Shared gc lock: held while blobs exist that no image references yet.
    pub(crate) fn ingest_lock(&self) -> Result<Flock<File>> {
        lock_file(&self.root.join("gc.lock"), FlockArg::LockShared)
    }

    fn image_from(&self, idx: &Index, id: &str, rec: &Record) -> Result<Image> {
        let bytes = self.read_blob(id)?;
        let config: ImageConfiguration =
            serde_json::from_slice(&bytes).map_err(|source| StoreError::Json {
                what: format!("image config {id}"),
                source,
            })?;
        let mut repo_tags: Vec<String> = idx
            .names
            .iter()
            .filter(|(_, v)| v.as_str() == id)
            .map(|(k, _)| k.clone())
            .collect();
        repo_tags.sort();
        Ok(Image {
            id: id.to_string(),
            config,
            manifest_digest: rec.manifest.clone(),
            repo_tags,
            repo_digests: rec.repo_digests.clone(),
            layers: rec.layers.clone(),
            created: rec.created.clone(),
            size: rec.size,
            intermediate: rec.intermediate,
        })
    }

    /// Every image, newest first.
    pub fn list(&self) -> Result<Vec<Image>> {
        let idx = self.read_index()?;
        let mut out = Vec::new();
        for (id, rec) in &idx.images {
            out.push(self.image_from(&idx, id, rec)?);
        }
        out.sort_by(|a, b| b.created.cmp(&a.created).then(a.id.cmp(&b.id)));
        Ok(out)
    }

    /// A name (normalised), `name@digest`, a full id `sha256:<hex>`, or an id prefix
    /// (at least 4 hex characters, with or without `sha256:`).
    pub fn resolve(&self, reference: &str) -> Result<Image> {
        let idx = self.read_index()?;
        let id = resolve_id(&idx, reference)?;
        let rec = idx
            .images
            .get(&id)
            .ok_or_else(|| StoreError::NotFound(reference.to_string()))?;
        self.image_from(&idx, &id, rec)
    }

    /// The unpacked layer directories of `img`, bottom layer first, unpacking any
    /// that are missing (e.g. removed by hand). An image with no layers gives an empty list.
    pub fn layer_dirs(&self, img: &Image) -> Result<Vec<PathBuf>> {
        let _g = self.ingest_lock()?;
        self.ensure_layers(&img.layers)?;
        img.layers
            .iter()
            .map(|l| self.layer_dir(&l.diff_id))
            .collect()
    }

    pub fn layer_dir(&self, diff_id: &str) -> Result<PathBuf> {
        let hex =
            digest::hex_of(diff_id).ok_or_else(|| StoreError::BadDigest(diff_id.to_string()))?;
        Ok(self.root.join("layers").join(hex))
    }

    /// Unpack every layer not yet unpacked, independent layers in parallel.
    pub(crate) fn ensure_layers(&self, layers: &[Layer]) -> Result<Vec<u64>> {
        let threads = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2)
            .min(layers.len().max(1));
        let next = Mutex::new(0usize);
        let results: Mutex<Vec<Option<Result<u64>>>> =
            Mutex::new((0..layers.len()).map(|_| None).collect());
        std::thread::scope(|s| {
            for _ in 0..threads {
                s.spawn(|| loop {
                    let i = {
                        let Ok(mut n) = next.lock() else { return };
                        let i = *n;
                        *n += 1;
                        i
                    };
                    if i >= layers.len() {
                        return;
                    }
                    let r = self.ensure_layer(&layers[i]);
                    let failed = r.is_err();
                    if let Ok(mut res) = results.lock() {
                        res[i] = Some(r);
                    }
                    if failed {
                        // Stop handing out work; running unpacks finish on their own.
                        if let Ok(mut n) = next.lock() {
                            *n = layers.len();
                        }
                    }
                });
            }
        });
        let results = results.into_inner().unwrap_or_default();
        let mut sizes = Vec::new();
        for r in results.into_iter().flatten() {
            sizes.push(r?);
        }
        Ok(sizes)
    }

    /// Unpack one layer (once, whoever asks first) and return its tar size.
    pub(crate) fn ensure_layer(&self, l: &Layer) -> Result<u64> {
        let dir = self.layer_dir(&l.diff_id)?;
        if dir.exists() {
            return Ok(read_size(&dir).unwrap_or(l.size));
        }
        let hex = digest::hex_of(&l.diff_id).unwrap_or("invalid");
        let _lock = lock_file(
            &self.root.join("locks").join(format!("{hex}.lock")),
            FlockArg::LockExclusive,
        )?;
        if dir.exists() {
            return Ok(read_size(&dir).unwrap_or(l.size));
        }
        Ok(self.unpack_blob(&l.digest, Some(&l.diff_id))?.1)
    }

    /// [`Store::unpack_blob`] for a blob whose diffID is not known yet, one unpacker per blob.
    pub(crate) fn unpack_blob_locked(&self, digest: &str, hex: &str) -> Result<(String, u64)> {
        let _lock = lock_file(
            &self.root.join("locks").join(format!("blob-{hex}.lock")),
            FlockArg::LockExclusive,
        )?;
        self.unpack_blob(digest, None)
    }

    /// Unpack blob `digest` into a private dir, check the digests, and rename it to
    /// layers/<diffID> (unless an identical layer got there first). Returns (diffID, tar size).
    fn unpack_blob(&self, digest: &str, expected_diff_id: Option<&str>) -> Result<(String, u64)> {
        let blob = self.open_blob(digest)?;
        let tmp = self.tmp_path("layer");
        fs::create_dir(&tmp).map_err(io_at("create", &tmp))?;
        let fail = |e: StoreError| {
            let _ = fs::remove_dir_all(&tmp);
            Err(e)
        };
        let stats = match layer::unpack(io::BufReader::with_capacity(256 * 1024, blob), &tmp) {
            Ok(s) => s,
            Err(source) => {
                return fail(StoreError::Unpack {
                    digest: digest.to_string(),
                    source,
                })
            }
        };
        if stats.digest != digest {
            return fail(StoreError::DigestMismatch {
                digest: digest.to_string(),
                actual: stats.digest,
            });
        }
        if let Some(exp) = expected_diff_id {
            if stats.diff_id != exp {
                return fail(StoreError::DiffIdMismatch {
                    digest: digest.to_string(),
                    expected: exp.to_string(),
                    actual: stats.diff_id,
                });
            }
        }
        let dir = self.layer_dir(&stats.diff_id)?;
        self.write_atomic(
            &dir.with_extension("size"),
            stats.tar_size.to_string().as_bytes(),
        )?;
        match fs::rename(&tmp, &dir) {
            Ok(()) => {}
            // Same diffID unpacked by someone else meanwhile (e.g. from a differently
            // compressed blob): theirs is identical, keep it.
            Err(e)
                if dir.exists()
                    && matches!(e.raw_os_error(), Some(libc::ENOTEMPTY) | Some(libc::EEXIST)) =>
            {
                let _ = fs::remove_dir_all(&tmp);
            }
            Err(e) => return fail(io_at("rename", &dir)(e)),
        }
        Ok((stats.diff_id, stats.tar_size))
    }

    /// Register an image whose manifest, config and layer blobs are all in the store:
    /// check the config against the manifest, unpack the layers, then make it visible
    /// under `tags` in one atomic index write. Caller holds [`Store::ingest_lock`].
    pub(crate) fn register(
        &self,
        manifest_bytes: &[u8],
        tags: &[Reference],
        repo_digest: Option<String>,
    ) -> Result<Image> {
        let manifest: Manifest =
            serde_json::from_slice(manifest_bytes).map_err(|source| StoreError::Json {
                what: "image manifest".into(),
                source,
            })?;
        let id = manifest.config.digest.clone();
        let config_bytes = self.read_blob(&id)?;
        if digest::sha256(&config_bytes) != id {
            return Err(StoreError::DigestMismatch {
                digest: id.clone(),
                actual: digest::sha256(&config_bytes),
            });
        }
        let config: ImageConfiguration =
            serde_json::from_slice(&config_bytes).map_err(|source| StoreError::Json {
                what: format!("image config {id}"),
                source,
            })?;
        let diff_ids = config.rootfs().diff_ids();
        if diff_ids.len() != manifest.layers.len() {
            return Err(StoreError::BadConfig {
                id,
                why: format!(
                    "{} diffIDs in the config but {} layers in the manifest",
                    diff_ids.len(),
                    manifest.layers.len()
                ),
            });
        }
        let mut layers = Vec::new();
        for (d, diff_id) in manifest.layers.iter().zip(diff_ids) {
            if digest::hex_of(diff_id).is_none() {
                return Err(StoreError::BadDigest(diff_id.clone()));
            }
            if !self.has_blob(&d.digest) {
                return Err(StoreError::MissingBlob(d.digest.clone()));
            }
            layers.push(Layer {
                digest: d.digest.clone(),
                diff_id: diff_id.clone(),
                size: d.size,
                media_type: d.media_type.clone(),
            });
        }
        let sizes = self.ensure_layers(&layers)?;
        let manifest_digest = self.put_blob_bytes(manifest_bytes)?;
        let record = Record {
            manifest: manifest_digest,
            layers,
            created: config.created().clone(),
            size: sizes.iter().sum(),
            repo_digests: repo_digest.into_iter().collect(),
            intermediate: false,
        };
        self.update_index(|idx| {
            let rec = idx
                .images
                .entry(id.clone())
                .or_insert_with(|| record.clone());
            rec.manifest = record.manifest.clone();
            for d in &record.repo_digests {
                if !rec.repo_digests.contains(d) {
                    rec.repo_digests.push(d.clone());
                }
            }
            for t in tags {
                idx.names.insert(t.to_string(), id.clone());
            }
            Ok(())
        })?;
        self.resolve(&id)
    }

    /// Store `config` and an OCI manifest for it over `layers`, then register.
    pub(crate) fn register_config(
        &self,
        config: &ImageConfiguration,
        layers: &[Layer],
        tags: &[Reference],
    ) -> Result<Image> {
        let config_bytes = serde_json::to_vec(config).map_err(|source| StoreError::Json {
            what: "image config".into(),
            source,
        })?;
        self.register_config_bytes(&config_bytes, layers, tags)
    }

    /// As [`Store::register_config`], for config bytes already serialised.
    pub(crate) fn register_config_bytes(
        &self,
        config_bytes: &[u8],
        layers: &[Layer],
        tags: &[Reference],
    ) -> Result<Image> {
        let config_bytes = config_bytes.to_vec();
        let config_digest = self.put_blob_bytes(&config_bytes)?;
        let manifest = Manifest {
            schema_version: 2,
            media_type: Some(MEDIA_OCI_MANIFEST.into()),
            config: Descriptor {
                media_type: MEDIA_OCI_CONFIG.into(),
                digest: config_digest,
                size: config_bytes.len() as u64,
                annotations: None,
                platform: None,
            },
            layers: layers
                .iter()
                .map(|l| Descriptor {
                    media_type: l.media_type.clone(),
                    digest: l.digest.clone(),
                    size: l.size,
                    annotations: None,
                    platform: None,
                })
                .collect(),
        };
        let manifest_bytes = serde_json::to_vec(&manifest).map_err(|source| StoreError::Json {
            what: "image manifest".into(),
            source,
        })?;
        self.register(&manifest_bytes, tags, None)
    }

    /// Store a layer blob from `r` (any compression), returning its [`Layer`].
    /// The diffID is computed by unpacking, which also leaves the layer ready to use.
    pub(crate) fn add_layer_blob(&self, r: impl Read) -> Result<Layer> {
        let (digest, size) = self.put_blob(r, None)?;
        let blob = self.open_blob(&digest)?;
        let mut head = [0u8; 4];
        let n = (&blob)
            .read(&mut head)
            .map_err(io_at("read", &self.blob_path(&digest)?))?;
        let media_type = match layer::sniff(&head[..n]) {
            layer::Compression::Gzip => MEDIA_OCI_LAYER_GZIP,
            layer::Compression::Zstd => MEDIA_OCI_LAYER_ZSTD,
            layer::Compression::None => MEDIA_OCI_LAYER,
        };
        let hex = digest::hex_of(&digest).unwrap_or("invalid").to_string();
        let (diff_id, _) = self.unpack_blob_locked(&digest, &hex)?;
        let l = Layer {
            digest,
            diff_id,
            size,
            media_type: media_type.into(),
        };
        Ok(l)
    }

    /// `docker import`: a rootfs tarball (any compression) → a one-layer image.
    pub fn import(&self, r: impl Read, changes: &[String], tag: Option<&str>) -> Result<Image> {
        let tags = parse_tags(tag)?;
        let mut config = Config::default();
        for c in changes {
            changes::apply(&mut config, c)?;
        }
        let _g = self.ingest_lock()?;
        let l = self.add_layer_blob(r)?;
        let now = now_rfc3339();
        let mut ic = base_config();
        ic.set_created(Some(now.clone()));
        ic.set_config(Some(config));
        ic.rootfs_mut().set_diff_ids(vec![l.diff_id.clone()]);
        let mut h = oci_spec::image::History::default();
        h.set_created(Some(now));
        h.set_comment(Some("Imported from -".into()));
        ic.set_history(Some(vec![h]));
        self.register_config(&ic, &[l], &tags)
    }

    /// A new image: `parent`'s layers plus the overlay upper dir `upper` packed as one
    /// layer (no layer when `upper` is `None`: a config-only step), config changed by `opts`.
    pub fn commit(
        &self,
        parent: Option<&Image>,
        upper: Option<&Path>,
        opts: &CommitOptions,
        tag: Option<&str>,
    ) -> Result<Image> {
        let tags = parse_tags(tag)?;
        let _g = self.ingest_lock()?;
        let mut ic = match parent {
            Some(p) => p.config.clone(),
            None => base_config(),
        };
        let mut layers = parent.map(|p| p.layers.clone()).unwrap_or_default();
        let mut config = opts
            .config
            .clone()
            .or_else(|| ic.config().clone())
            .unwrap_or_default();
        for c in &opts.changes {
            changes::apply(&mut config, c)?;
        }
        ic.set_config(Some(config));
        if let Some(upper) = upper {
            let tmp = self.tmp_path("commit.tar");
            let f = File::create(&tmp).map_err(io_at("create", &tmp))?;
            layer::pack_upper(upper, io::BufWriter::new(f)).map_err(|source| {
                StoreError::Unpack {
                    digest: "(new layer)".into(),
                    source,
                }
            })?;
            let f = File::open(&tmp).map_err(io_at("open", &tmp))?;
            let l = self.add_layer_blob(f)?;
            let _ = fs::remove_file(&tmp);
            ic.rootfs_mut().diff_ids_mut().push(l.diff_id.clone());
            layers.push(l);
        }
        let created = opts.created.clone().unwrap_or_else(now_rfc3339);
        ic.set_created(Some(created.clone()));
        if opts.author.is_some() {
            ic.set_author(opts.author.clone());
        }
        let mut h = oci_spec::image::History::default();
        h.set_created(Some(created));
        h.set_created_by(opts.created_by.clone());
        h.set_comment(opts.comment.clone());
        h.set_author(opts.author.clone());
        if upper.is_none() {
            h.set_empty_layer(Some(true));
        }
        let mut hist = ic.history().clone().unwrap_or_default();
        hist.push(h);
        ic.set_history(Some(hist));
        let mut value = serde_json::to_value(&ic).map_err(|source| StoreError::Json {
            what: "image config".into(),
            source,
        })?;
        if !opts.extra_config.is_empty() {
            if let Some(obj) = value.get_mut("config").and_then(|c| c.as_object_mut()) {
                for (k, v) in &opts.extra_config {
                    obj.insert(k.clone(), v.clone());
                }
            }
        }
        let bytes = serde_json::to_vec(&value).map_err(|source| StoreError::Json {
            what: "image config".into(),
            source,
        })?;
        let img = self.register_config_bytes(&bytes, &layers, &tags)?;
        if opts.intermediate && tags.is_empty() {
            self.update_index(|idx| {
                if let Some(rec) = idx.images.get_mut(&img.id) {
                    rec.intermediate = true;
                }
                Ok(())
            })?;
            return self.resolve(&img.id);
        }
        Ok(img)
    }

    /// Mark (or unmark) `id` as a build-cache image; a build's result is unmarked
    /// so that an untagged result still shows in `images`, as docker's does.
    pub fn set_intermediate(&self, id: &str, yes: bool) -> Result<()> {
        self.update_index(|idx| {
            if let Some(rec) = idx.images.get_mut(id) {
                rec.intermediate = yes;
            }
            Ok(())
        })
    }

    /// `builder prune`: remove every untagged build-cache image no container uses.
    pub fn prune_intermediate(&self, in_use: &dyn Fn(&str) -> bool) -> Result<Vec<String>> {
        let gc = lock_file(&self.root.join("gc.lock"), FlockArg::LockExclusive)?;
        let deleted = self.update_index(|idx| {
            let named: BTreeSet<String> = idx.names.values().cloned().collect();
            let victims: Vec<String> = idx
                .images
                .iter()
                .filter(|(id, rec)| rec.intermediate && !named.contains(*id) && !in_use(id))
                .map(|(id, _)| id.clone())
                .collect();
            for v in &victims {
                idx.images.remove(v);
            }
            Ok(victims)
        })?;
        self.collect_garbage(&gc)?;
        Ok(deleted)
    }

    /// Add the name `new` to the image `source` refers to.
    pub fn tag(&self, source: &str, new: &str) -> Result<()> {
        let r = Reference::parse(new)?;
        if r.digest.is_some() {
            return Err(StoreError::Reference(ReferenceError::Tag {
                reference: new.to_string(),
                tag: "a digest cannot be a tag".into(),
            }));
        }
        // already so: no index write (a no-change rebuild re-tags; the write's fsync
        // would be most of its time)
        let idx = self.read_index()?;
        if let Ok(id) = resolve_id(&idx, source) {
            if idx.names.get(&r.to_string()) == Some(&id) {
                return Ok(());
            }
        }
        self.update_index(|idx| {
            let id = resolve_id(idx, source)?;
            idx.names.insert(r.to_string(), id);
            Ok(())
        })
    }

    /// Remove the name `reference` (the image stays, maybe dangling).
    pub fn untag(&self, reference: &str) -> Result<()> {
        let r = Reference::parse(reference)?;
        self.update_index(|idx| {
            idx.names
                .remove(&r.to_string())
                .map(|_| ())
                .ok_or_else(|| StoreError::NotFound(reference.to_string()))
        })
    }

    /// `docker rmi`. A name removes that name; the image itself goes when no name is
    /// left, or at once when `reference` is an id (which also drops all its names;
    /// an id with several names needs `force`, as in docker). The engine says which
    /// images containers use through `in_use(image_id)`: an image in use is refused
    /// without `force`; with `force` it is only untagged and stays (dangling) until
    /// its containers are gone — docker's behaviour, and the layers under a running
    /// container never disappear. Returns docker-style lines (`Untagged: …`, `Deleted: …`).
    pub fn remove(
        &self,
        reference: &str,
        force: bool,
        in_use: &dyn Fn(&str) -> bool,
    ) -> Result<Vec<String>> {
        let mut out = Vec::new();
        {
            let _gc = lock_file(&self.root.join("gc.lock"), FlockArg::LockExclusive)?;
            self.update_index(|idx| {
                let id = resolve_id(idx, reference)?;
                let names: Vec<String> = idx.names.iter().filter(|(_, v)| **v == id).map(|(k, _)| k.clone()).collect();
                let by_name = Reference::parse(reference)
                    .ok()
                    .map(|r| r.to_string())
                    .filter(|n| idx.names.contains_key(n));
                let used = in_use(&id);
                let to_untag: Vec<String> = match by_name {
                    Some(n) => {
                        if names.len() == 1 && used && !force {
                            return Err(StoreError::InUse {
                                image: reference.to_string(),
                                id: id.clone(),
                            });
                        }
                        vec![n]
                    }
                    None => {
                        if used && !force {
                            return Err(StoreError::InUse {
                                image: reference.to_string(),
                                id: id.clone(),
                            });
                        }
                        if names.len() > 1 && !force {
                            return Err(StoreError::Conflict(format!(
                                "unable to delete {} (must be forced) - image is referenced in multiple repositories",
                                short(&id)
                            )));
                        }
                        names.clone()
                    }
                };
                for n in &to_untag {
                    idx.names.remove(n);
                    out.push(format!("Untagged: {}", familiar(n)));
                }
                let still_named = idx.names.values().any(|v| *v == id);
                if !still_named && !used {
                    idx.images.remove(&id);
                    out.push(format!("Deleted: {id}"));
                }
                Ok(())
            })?;
            self.collect_garbage(&_gc)?;
        }
        Ok(out)
    }

    /// Delete dangling images (all unused images with `all`) that no container uses.
    /// Returns the deleted ids.
    pub fn prune(&self, all: bool, in_use: &dyn Fn(&str) -> bool) -> Result<Vec<String>> {
        let gc = lock_file(&self.root.join("gc.lock"), FlockArg::LockExclusive)?;
        let deleted = self.update_index(|idx| {
            let named: BTreeSet<String> = idx.names.values().cloned().collect();
            let victims: Vec<String> = idx
                .images
                .keys()
                .filter(|id| (all || !named.contains(*id)) && !in_use(id))
                .filter(|id| named.contains(*id) || !idx.images[*id].intermediate)
                .cloned()
                .collect();
            for v in &victims {
                idx.images.remove(v);
                idx.names.retain(|_, id| id != v);
            }
            Ok(victims)
        })?;
        self.collect_garbage(&gc)?;
        Ok(deleted)
    }

    /// Remove blobs and layer dirs that no registered image references.
    /// Needs the exclusive gc lock (the argument proves the caller holds it).
    fn collect_garbage(&self, _gc: &Flock<File>) -> Result<()> {
        let idx = self.read_index()?;
        let mut keep_blobs = BTreeSet::new();
        let mut keep_layers = BTreeSet::new();
        for (id, rec) in &idx.images {
            keep_blobs.insert(digest::hex_of(id).unwrap_or_default().to_string());
            keep_blobs.insert(
                digest::hex_of(&rec.manifest)
                    .unwrap_or_default()
                    .to_string(),
            );
            for l in &rec.layers {
                keep_blobs.insert(digest::hex_of(&l.digest).unwrap_or_default().to_string());
                keep_layers.insert(digest::hex_of(&l.diff_id).unwrap_or_default().to_string());
            }
        }
        let blobs = self.root.join("blobs/sha256");
        for e in fs::read_dir(&blobs)
            .map_err(io_at("read", &blobs))?
            .flatten()
        {
            if !keep_blobs.contains(e.file_name().to_string_lossy().as_ref()) {
                let _ = fs::remove_file(e.path());
            }
        }
        // Per-layer lock files are only taken under the shared gc lock, so none is held now.
        let locks = self.root.join("locks");
        for e in fs::read_dir(&locks)
            .map_err(io_at("read", &locks))?
            .flatten()
        {
            let _ = fs::remove_file(e.path());
        }
        let layers = self.root.join("layers");
        for e in fs::read_dir(&layers)
            .map_err(io_at("read", &layers))?
            .flatten()
        {
            let name = e.file_name().to_string_lossy().into_owned();
            let base = name.strip_suffix(".size").unwrap_or(&name);
            if keep_layers.contains(base) {
                continue;
            }
            let p = e.path();
            if name.ends_with(".size") {
                let _ = fs::remove_file(&p);
            } else {
                // Rename first so a half-deleted layer is never mistaken for a complete one.
                let doomed = self.tmp_path("deleting");
                fs::rename(&p, &doomed).map_err(io_at("rename", &p))?;
                fs::remove_dir_all(&doomed).map_err(io_at("remove", &doomed))?;
            }
        }
        Ok(())
    }

    /// `docker history`: newest first.
    pub fn history(&self, reference: &str) -> Result<Vec<HistoryEntry>> {
        let img = self.resolve(reference)?;
        let hist = img.config.history().clone().unwrap_or_default();
        let mut layer_sizes = img.layers.iter().map(|l| {
            self.layer_dir(&l.diff_id)
                .ok()
                .and_then(|d| fs::read_to_string(d.with_extension("size")).ok())
                .and_then(|s| s.trim().parse::<u64>().ok())
                .unwrap_or(l.size)
        });
        let mut out = Vec::new();
        for h in &hist {
            let empty = h.empty_layer().unwrap_or(false);
            out.push(HistoryEntry {
                id: "<missing>".into(),
                created: h.created().clone(),
                created_by: h.created_by().clone().unwrap_or_default(),
                size: if empty {
                    0
                } else {
                    layer_sizes.next().unwrap_or(0)
                },
                comment: h.comment().clone().unwrap_or_default(),
                empty_layer: empty,
            });
        }
        out.reverse();
        if let Some(top) = out.first_mut() {
            top.id = img.id.clone();
        }
        Ok(out)
    }

    /// `docker image inspect` JSON for one image.
    pub fn inspect(&self, reference: &str) -> Result<serde_json::Value> {
        let img = self.resolve(reference)?;
        Ok(inspect_json(&img))
    }
}

/// Docker-shaped inspect JSON.
pub fn inspect_json(img: &Image) -> serde_json::Value {
    let c = &img.config;
    serde_json::json!({
        "Id": img.id,
        "RepoTags": img.repo_tags.iter().map(|t| familiar(t)).collect::<Vec<_>>(),
        "RepoDigests": img.repo_digests,
        "Parent": "",
        "Comment": "",
        "Created": img.created.clone().unwrap_or_default(),
        "Author": c.author().clone().unwrap_or_default(),
        "Config": c.config(),
        "Architecture": c.architecture().to_string(),
        "Os": c.os().to_string(),
        "Size": img.size,
        "RootFS": {
            "Type": "layers",
            "Layers": c.rootfs().diff_ids(),
        },
        "Metadata": { "LastTagTime": "0001-01-01T00:00:00Z" },
    })
}

/// `docker.io/library/busybox:latest` → `busybox:latest`.
pub fn familiar(name: &str) -> String {
    Reference::parse(name)
        .map(|r| r.familiar())
        .unwrap_or_else(|_| name.to_string())
}

fn short(id: &str) -> &str {
    let h = id.strip_prefix("sha256:").unwrap_or(id);
    &h[..h.len().min(12)]
}

pub(crate) fn parse_tags(tag: Option<&str>) -> Result<Vec<Reference>> {
    Ok(match tag {
        Some(t) => vec![Reference::parse(t)?],
        None => Vec::new(),
    })
}

/// Name → id: names first (so an image called `abcd` wins over an id prefix), then
/// `name@digest` by repo digest or manifest, then ids and id prefixes.
pub(crate) fn resolve_id(idx: &Index, reference: &str) -> Result<String> {
    if let Ok(r) = Reference::parse(reference) {
        if let Some(d) = &r.digest {
            let want = format!("{}@{}", r.name(), d);
            for (id, rec) in &idx.images {
                if rec.repo_digests.contains(&want) || rec.manifest == *d {
                    return Ok(id.clone());
                }
            }
        } else if let Some(id) = idx.names.get(&r.to_string()) {
            return Ok(id.clone());
        }
    }
    let hex = reference.strip_prefix("sha256:").unwrap_or(reference);
    if hex.len() >= 4
        && hex.len() <= 64
        && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    {
        let matches: Vec<String> = idx
            .images
            .keys()
            .filter(|id| {
                id.strip_prefix("sha256:")
                    .is_some_and(|h| h.starts_with(hex))
            })
            .cloned()
            .collect();
        match matches.len() {
            0 => {}
            1 => return Ok(matches[0].clone()),
            _ => {
                return Err(StoreError::Ambiguous {
                    prefix: reference.to_string(),
                    matches,
                })
            }
        }
    }
    // Report an invalid name as such, rather than as "not found".
    if !reference.starts_with("sha256:") {
        Reference::parse(reference)?;
    }
    Err(StoreError::NotFound(reference.to_string()))
}

fn read_size(layer_dir: &Path) -> Option<u64> {
    fs::read_to_string(layer_dir.with_extension("size"))
        .ok()?
        .trim()
        .parse()
        .ok()
}

pub(crate) fn lock_file(path: &Path, arg: FlockArg) -> Result<Flock<File>> {
    let f = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .map_err(io_at("open lock", path))?;
    Flock::lock(f, arg).map_err(|(_, source)| StoreError::Lock {
        path: path.to_path_buf(),
        source,
    })
}

/// A config for this host's platform with no layers.
pub(crate) fn base_config() -> ImageConfiguration {
    let mut ic = ImageConfiguration::default();
    ic.set_architecture(oci_spec::image::Arch::Amd64);
    ic.set_os(oci_spec::image::Os::Linux);
    ic
}

/// The current UTC time as RFC 3339 (`2026-11-29T07:48:49Z`), without a date crate.
pub fn now_rfc3339() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    rfc3339(secs)
}

/// Seconds since the epoch → RFC 3339 UTC (civil-from-days, H. Hinnant's algorithm).
pub fn rfc3339(secs: i64) -> String {
    let days = secs.div_euclid(86400);
    let rem = secs.rem_euclid(86400);
    let z = days + 719468;
    let era = z.div_euclid(146097);
    let doe = z - era * 146097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + if m <= 2 { 1 } else { 0 };
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn idx_with(ids: &[&str], names: &[(&str, &str)]) -> Index {
        let mut idx = Index::default();
        for id in ids {
            idx.images.insert(id.to_string(), Record::default());
        }
        for (n, id) in names {
            idx.names.insert(
                Reference::parse(n).expect("ref").to_string(),
                id.to_string(),
            );
        }
        idx
    }

    #[test]
    fn resolve_names_ids_prefixes() {
        let a = format!("sha256:abcd{}", "0".repeat(60));
        let b = format!("sha256:abce{}", "1".repeat(60));
        let idx = idx_with(&[&a, &b], &[("busybox", &a), ("abce", &a)]);
        assert_eq!(resolve_id(&idx, "busybox").expect("name"), a);
        assert_eq!(
            resolve_id(&idx, "docker.io/library/busybox:latest").expect("full"),
            a
        );
        assert_eq!(resolve_id(&idx, &b).expect("id"), b);
        assert_eq!(resolve_id(&idx, "abcd").expect("prefix"), a);
        assert_eq!(resolve_id(&idx, "sha256:abce1").expect("prefix"), b);
        // A name wins over an id prefix.
        assert_eq!(resolve_id(&idx, "abce").expect("name first"), a);
        assert!(matches!(
            resolve_id(&idx, "abc"),
            Err(StoreError::NotFound(_))
        ));
        assert!(matches!(
            resolve_id(&idx, "sha256:abc"),
            Err(StoreError::NotFound(_))
        ));
        assert!(matches!(
            resolve_id(&idx, "ab"),
            Err(StoreError::NotFound(_))
        ));
        let idx2 = idx_with(&[&a, &format!("sha256:abcd{}", "2".repeat(60))], &[]);
        assert!(matches!(
            resolve_id(&idx2, "abcd"),
            Err(StoreError::Ambiguous { .. })
        ));
        assert!(matches!(
            resolve_id(&idx, "Bad:Name"),
            Err(StoreError::Reference(_))
        ));
    }

    #[test]
    fn timestamps() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951782400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_795_938_529), "2026-11-29T07:48:49Z");
    }
}
