//! berth-image: the content store, layers, overlay snapshots, archives and registries.
//!
//! Synchronous library (no tokio): the registry client is ureq; layer unpacking uses
//! scoped threads. Modules and what each owns:
//! - [`reference`]: Docker-normalised image names (`busybox` = `docker.io/library/busybox:latest`).
//! - [`store`]: digest-addressed blobs, the names index, unpacked layers, import/commit,
//!   tag/remove/prune, history and inspect data. Crash-safe (see its module doc).
//! - [`layer`]: the tar → directory unpacker (the security boundary: no write ever leaves
//!   the layer dir) and the overlay-upper → tar packer.
//! - [`snapshot`]: overlayfs mounts over the layer dirs (new mount API, any number of
//!   layers) and `docker diff`.
//! - [`archive`]: `load`/`save` of docker and OCI archives.
//! - [`registry`]: pull/push/login/logout against an OCI distribution registry.
//! - [`bootstrap`]: an offline busybox base image from the host's busybox-static.
//! - [`changes`]: `--change` instructions; [`digest`]: sha256 helpers.
//!
//! API summary (the engine and build are written against these):
//!
//! ```ignore
//! let store = Store::open(Path::new("/var/lib/berth/image"))?;   // creates dirs, cleans debris
//! let img: Image = store.resolve("busybox")?;                   // name, name@digest, id, or id prefix (>= 4 hex)
//! img.id              // "sha256:<hex>" of the config blob (docker's image ID)
//! img.config          // oci_spec::image::ImageConfiguration
//! img.repo_tags       // ["docker.io/library/busybox:latest"] (normalised; store::familiar() shortens)
//! img.layers          // Vec<Layer { digest, diff_id, size, media_type }>, bottom first
//! let lowers: Vec<PathBuf> = store.layer_dirs(&img)?;          // unpacked, BOTTOM layer first (empty for scratch)
//! store.list()? -> Vec<Image>
//! store.load(reader)? -> Vec<Image>                           // docker-save (legacy or 25+) or OCI-layout tar
//! store.save(&["busybox"], writer)?                           // manifest.json + index.json + oci-layout
//! store.import(reader, &changes, Some("name:tag"))? -> Image  // rootfs tar (any compression) → 1-layer image
//! store.tag("busybox", "mine:1")?; store.untag("mine:1")?;
//! store.remove("busybox", force, &|image_id| in_use)? -> Vec<String>   // "Untagged: …", "Deleted: …"
//! store.prune(all, &|image_id| in_use)? -> Vec<String>        // deleted ids
//! store.history("busybox")? -> Vec<HistoryEntry>;  store.inspect("busybox")? -> serde_json::Value
//! store.commit(Some(&parent), Some(upper_dir), &CommitOptions{..}, Some("tag"))? -> Image  // for build
//! snapshot::Overlay { lowers, upper, work }.mount(target)?;  snapshot::unmount(target)?
//! snapshot::diff(upper_dir, &lowers)? -> Vec<Change { kind: Added|Changed|Deleted, path }>
//! reference::Reference::parse("busybox")?.to_string() == "docker.io/library/busybox:latest"
//! bootstrap::busybox(&store, "busybox:latest")? -> Image      // offline base image from apt's busybox-static
//! registry::pull(&store, "127.0.0.1:5000/x:1", &RegistryOptions{..}, &|p: Progress| ..)? -> Image
//! registry::push(&store, "x:1", Some("127.0.0.1:5000/x:1"), &opts, &progress)? -> manifest digest
//! registry::login(registry, user, pass, &config_json_path, &opts)?;  registry::logout(registry, &path)?
//! ```
//!
//! Who decides what: the ENGINE knows which containers use which image; `remove` and
//! `prune` ask it through `in_use(image_id)`. Progress display belongs to the CLI: the
//! registry functions report [`registry::Progress`] events through a callback.

pub mod archive;
pub mod bootstrap;
pub mod changes;
pub mod digest;
pub mod layer;
pub mod reference;
pub mod registry;
pub mod snapshot;
pub mod store;

pub use reference::Reference;
pub use store::{CommitOptions, HistoryEntry, Image, Layer, Store, StoreError};
