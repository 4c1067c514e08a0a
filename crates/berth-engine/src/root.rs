//! root: where the engine keeps things, and the two primitives every record
//! write goes through — an exclusive `flock` and an atomic replace.
//!
//! Layout (`--root`, default /var/lib/berth; run state on tmpfs under /run/berth,
//! so a reboot forgets processes but keeps containers, images and volumes):
//! ```text
//! <root>/image/                 berth-image's store
//! <root>/net/                   berth-net's state (networks, leases)
//! <root>/volumes/<name>/_data   named volumes (bypass overlay)
//! <root>/containers/<id>/       container.json, upper/, work/, etc/, log.json*
//! <root>/containers.lock        held while names are checked and reserved
//! <root>/events.jsonl           append-only event log (`berth events`)
//! <run>/runtime/<name>/         the OCI runtime's --root (per runtime binary)
//! <run>/net/                    netns bind mounts
//! <run>/containers/<id>/        bundle/ (config.json + rootfs mount point), sockets
//! ```

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};

#[derive(Debug, Clone)]
pub struct Root {
    pub dir: PathBuf,
    pub run: PathBuf,
}

impl Root {
    pub fn new(dir: impl Into<PathBuf>, run: impl Into<PathBuf>) -> io::Result<Root> {
        let root = Root {
            dir: dir.into(),
            run: run.into(),
        };
        for d in [
            root.dir.join("containers"),
            root.dir.join("volumes"),
            root.run.join("containers"),
            root.run.join("runtime"),
        ] {
            fs::create_dir_all(&d)?;
        }
        Ok(root)
    }
    pub fn image_dir(&self) -> PathBuf {
        self.dir.join("image")
    }
    pub fn net_state(&self) -> PathBuf {
        self.dir.join("net")
    }
    pub fn net_run(&self) -> PathBuf {
        self.run.join("net")
    }
    pub fn containers(&self) -> PathBuf {
        self.dir.join("containers")
    }
    pub fn container_dir(&self, id: &str) -> PathBuf {
        self.dir.join("containers").join(id)
    }
    pub fn container_run(&self, id: &str) -> PathBuf {
        self.run.join("containers").join(id)
    }
    pub fn volumes(&self) -> PathBuf {
        self.dir.join("volumes")
    }
    pub fn runtime_root(&self, runtime: &str) -> PathBuf {
        let name = Path::new(runtime)
            .file_name()
            .map(|s| s.to_string_lossy().into_owned());
        self.run
            .join("runtime")
            .join(name.unwrap_or_else(|| "runtime".into()))
    }
    pub fn events(&self) -> PathBuf {
        self.dir.join("events.jsonl")
    }
    /// The engine-wide lock: held while names are checked and reserved.
    pub fn lock_names(&self) -> io::Result<Lock> {
        Lock::exclusive(&self.dir.join("containers.lock"))
    }
}

/// An exclusive advisory lock on a file; released on drop (or when the holder dies,
/// which is what makes a `kill -9` safe).
pub struct Lock {
    _flock: Flock<File>,
}

impl Lock {
    pub fn exclusive(path: &Path) -> io::Result<Lock> {
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)?;
        let flock =
            Flock::lock(file, FlockArg::LockExclusive).map_err(|(_, e)| io::Error::from(e))?;
        Ok(Lock { _flock: flock })
    }
}

/// Replace `path` atomically: write a temp file beside it, fsync, rename.
/// A reader sees the old or the new content, never a torn write.
pub fn write_atomic(path: &Path, data: &[u8]) -> io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let tmp = dir.join(format!(
        ".{}.tmp{}",
        path.file_name()
            .map(|s| s.to_string_lossy())
            .unwrap_or_default(),
        std::process::id()
    ));
    let mut f = File::create(&tmp)?;
    f.write_all(data)?;
    f.sync_all()?;
    drop(f);
    fs::rename(&tmp, path)?;
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}
