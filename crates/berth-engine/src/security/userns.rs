//! userns: `--userns`, `--uidmap`, `--gidmap` → the container's user namespace maps.
//!
//! Modes (docker's and podman's words):
//! - `host` (or nothing): no user namespace, container root is host root (the
//!   default, as in docker).
//! - `auto` / `auto:size=N`: a block of N host ids (65536 by default, like
//!   podman's `--userns=auto`) that no other container of this engine uses,
//!   chosen by [`allocate`] at create time while the engine's names lock is held,
//!   so parallel `berth run`s never get overlapping blocks. The record keeps the
//!   block: a restart reuses it (the upper dir's files stay owned right) and `rm`
//!   frees it.
//! - `--uidmap C:H:N` (repeatable; `--gidmap` likewise, each defaulting to the
//!   other): exactly those maps, mode `private`. Ranges may not overlap on
//!   either side (the kernel would refuse the uid_map write at start; refusing at
//!   create means nothing is made).
//!
//! The pool for `auto` is the ranges /etc/subuid and /etc/subgid give the user
//! `berth` (docker's `dockremap`, podman's `containers`) when there are any;
//! without them, host ids from 100000 up, skipping every range those files give
//! anyone (a user's rootless containers must never share ids with berth's).
//! Blocks are taken first-fit from the bottom of the pool.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// One line of /proc/PID/uid_map (OCI `linux.uidMappings` entry).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub struct IdMap {
    pub container_id: u32,
    pub host_id: u32,
    pub size: u32,
}

impl std::fmt::Display for IdMap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}:{}", self.container_id, self.host_id, self.size)
    }
}

/// The user the subordinate id files are read for (docker: dockremap).
pub const SUBID_USER: &str = "berth";
/// Where the default pool starts without a subid entry (useradd's SUB_UID_MIN).
pub const DEFAULT_POOL_START: u32 = 100_000;
/// `auto`'s block size: a full 16-bit id space, what images assume.
pub const DEFAULT_SIZE: u32 = 65_536;
/// The kernel's limit on uid_map lines (Linux >= 4.15).
const MAX_LINES: usize = 340;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum UsernsError {
    #[error("invalid --userns value {0:?}: use host, auto, auto:size=N, or --uidmap/--gidmap")]
    Mode(String),
    #[error("invalid {flag} {value:?}: {reason}")]
    Map {
        flag: &'static str,
        value: String,
        reason: String,
    },
    #[error("invalid {flag}: {a} overlaps {b} ({side} ids)")]
    Overlap {
        flag: &'static str,
        a: IdMap,
        b: IdMap,
        side: &'static str,
    },
    #[error("conflicting options: {0}")]
    Conflict(String),
    #[error("--userns=auto: no free block of {size} {kind} ids left in the pool {pool}")]
    Exhausted {
        size: u32,
        kind: &'static str,
        pool: String,
    },
    #[error("read {path}: {reason}")]
    SubId { path: PathBuf, reason: String },
}

/// What the flags ask for, before `auto` is given its block.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Request {
    /// "" (host), "host", "auto", "auto:size=N" or "private".
    pub mode: String,
    pub uid_maps: Vec<IdMap>,
    pub gid_maps: Vec<IdMap>,
}

/// `--userns`, `--uidmap`, `--gidmap` → a validated [`Request`].
pub fn from_flags(
    userns: Option<&str>,
    uidmap: &[String],
    gidmap: &[String],
) -> Result<Request, UsernsError> {
    let mode = userns.unwrap_or("").to_string();
    let mut uid_maps = uidmap
        .iter()
        .map(|m| parse_map("--uidmap", m))
        .collect::<Result<Vec<_>, _>>()?;
    let mut gid_maps = gidmap
        .iter()
        .map(|m| parse_map("--gidmap", m))
        .collect::<Result<Vec<_>, _>>()?;
    validate("--uidmap", &uid_maps)?;
    validate("--gidmap", &gid_maps)?;
    let explicit = !uid_maps.is_empty() || !gid_maps.is_empty();
    match mode.as_str() {
        "" | "host" if !explicit => Ok(Request {
            mode,
            ..Default::default()
        }),
        "" | "private" if explicit => {
            // podman: one of the two given means the same maps for the other
            if uid_maps.is_empty() {
                uid_maps = gid_maps.clone();
            }
            if gid_maps.is_empty() {
                gid_maps = uid_maps.clone();
            }
            Ok(Request {
                mode: "private".into(),
                uid_maps,
                gid_maps,
            })
        }
        m if m == "auto" || m.starts_with("auto:") => {
            if explicit {
                return Err(UsernsError::Conflict(
                    "--userns=auto picks its own ranges: drop --uidmap/--gidmap".into(),
                ));
            }
            auto_size(m)?;
            Ok(Request {
                mode,
                ..Default::default()
            })
        }
        "host" => Err(UsernsError::Conflict(
            "--userns=host and --uidmap/--gidmap".into(),
        )),
        other => Err(UsernsError::Mode(other.into())),
    }
}

/// The block size of an `auto[:size=N]` mode.
pub fn auto_size(mode: &str) -> Result<u32, UsernsError> {
    let opts = match mode.strip_prefix("auto") {
        Some("") => return Ok(DEFAULT_SIZE),
        Some(rest) => rest
            .strip_prefix(':')
            .ok_or_else(|| UsernsError::Mode(mode.into()))?,
        None => return Err(UsernsError::Mode(mode.into())),
    };
    let mut size = DEFAULT_SIZE;
    for opt in opts.split(',') {
        match opt.split_once('=') {
            Some(("size", n)) => {
                size = n
                    .parse::<u32>()
                    .ok()
                    .filter(|n| *n > 0)
                    .ok_or_else(|| UsernsError::Map {
                        flag: "--userns",
                        value: mode.into(),
                        reason: "size must be a positive number".into(),
                    })?
            }
            _ => return Err(UsernsError::Mode(mode.into())),
        }
    }
    Ok(size)
}

/// `CONTAINER:HOST:SIZE`.
pub fn parse_map(flag: &'static str, s: &str) -> Result<IdMap, UsernsError> {
    let bad = |reason: &str| UsernsError::Map {
        flag,
        value: s.into(),
        reason: reason.into(),
    };
    let parts: Vec<&str> = s.split(':').collect();
    let [c, h, n] = parts.as_slice() else {
        return Err(bad("want CONTAINER_ID:HOST_ID:SIZE"));
    };
    let num = |v: &str| {
        v.parse::<u32>()
            .map_err(|_| bad(&format!("{v:?} is not an id")))
    };
    let m = IdMap {
        container_id: num(c)?,
        host_id: num(h)?,
        size: num(n)?,
    };
    if m.size == 0 {
        return Err(bad("size must be positive"));
    }
    // ids run to 2^32 - 2: (uid_t) -1 is "no id" to the kernel
    for start in [m.container_id, m.host_id] {
        if u64::from(start) + u64::from(m.size) > u64::from(u32::MAX) {
            return Err(bad("the range passes the last id (4294967294)"));
        }
    }
    Ok(m)
}

/// No two lines overlap on the container side or on the host side
/// (user_namespaces(7)), and there are few enough lines for the kernel.
pub fn validate(flag: &'static str, maps: &[IdMap]) -> Result<(), UsernsError> {
    if maps.len() > MAX_LINES {
        return Err(UsernsError::Map {
            flag,
            value: format!("{} lines", maps.len()),
            reason: format!("the kernel takes at most {MAX_LINES}"),
        });
    }
    for (i, a) in maps.iter().enumerate() {
        for b in &maps[i + 1..] {
            for (side, x, y) in [
                ("container", a.container_id, b.container_id),
                ("host", a.host_id, b.host_id),
            ] {
                if overlaps((x, a.size), (y, b.size)) {
                    return Err(UsernsError::Overlap {
                        flag,
                        a: *a,
                        b: *b,
                        side,
                    });
                }
            }
        }
    }
    Ok(())
}

fn overlaps(a: (u32, u32), b: (u32, u32)) -> bool {
    let (a0, a1) = (u64::from(a.0), u64::from(a.0) + u64::from(a.1));
    let (b0, b1) = (u64::from(b.0), u64::from(b.0) + u64::from(b.1));
    a0 < b1 && b0 < a1
}

/// The host id that container id `id` is, if the maps map it.
pub fn host_id(maps: &[IdMap], id: u32) -> Option<u32> {
    maps.iter().find_map(|m| {
        (id >= m.container_id && u64::from(id) < u64::from(m.container_id) + u64::from(m.size))
            .then(|| m.host_id + (id - m.container_id))
    })
}

/// The maps as /proc/PID/uid_map text.
pub fn map_text(maps: &[IdMap]) -> String {
    maps.iter()
        .map(|m| format!("{} {} {}\n", m.container_id, m.host_id, m.size))
        .collect()
}

/// Host id ranges (start, size).
pub type Range = (u32, u32);

/// Where `auto` takes its blocks from, for uids or gids.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pool {
    /// The ranges blocks may come from.
    pub ranges: Vec<Range>,
    /// Ranges inside those that belong to someone else (other users' subids).
    pub reserved: Vec<Range>,
}

impl Pool {
    /// The pool from the text of a subid file (`name:start:count` lines).
    pub fn from_subid(text: &str) -> Pool {
        let mut mine = Vec::new();
        let mut others = Vec::new();
        for line in text.lines() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let f: Vec<&str> = line.split(':').collect();
            let (Some(start), Some(count)) = (
                f.get(1).and_then(|v| v.parse::<u32>().ok()),
                f.get(2).and_then(|v| v.parse::<u32>().ok()),
            ) else {
                continue;
            };
            if f[0] == SUBID_USER {
                mine.push((start, count));
            } else {
                others.push((start, count));
            }
        }
        if mine.is_empty() {
            Pool {
                ranges: vec![(DEFAULT_POOL_START, u32::MAX - 1 - DEFAULT_POOL_START)],
                reserved: others,
            }
        } else {
            Pool {
                ranges: mine,
                reserved: Vec::new(),
            }
        }
    }

    /// The pool from /etc/subuid or /etc/subgid (a missing file is an empty one).
    pub fn from_file(path: &Path) -> Result<Pool, UsernsError> {
        match std::fs::read_to_string(path) {
            Ok(t) => Ok(Pool::from_subid(&t)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Pool::from_subid("")),
            Err(e) => Err(UsernsError::SubId {
                path: path.into(),
                reason: e.to_string(),
            }),
        }
    }

    fn describe(&self) -> String {
        self.ranges
            .iter()
            .map(|(s, n)| format!("{s}+{n}"))
            .collect::<Vec<_>>()
            .join(",")
    }
}

/// First fit: the lowest start of `size` free ids in `pool` that touch neither
/// its reserved ranges nor `used` (every other container's host ranges).
pub fn allocate(pool: &Pool, used: &[Range], size: u32) -> Option<u32> {
    let mut taken: Vec<Range> = pool.reserved.iter().chain(used).copied().collect();
    taken.sort();
    for &(start, count) in &pool.ranges {
        let end = u64::from(start) + u64::from(count);
        let mut s = u64::from(start);
        while s + u64::from(size) <= end {
            // the furthest end among taken ranges the candidate overlaps
            let clash = taken
                .iter()
                .filter(|t| overlaps((s as u32, size), **t))
                .map(|t| u64::from(t.0) + u64::from(t.1))
                .max();
            match clash {
                None => return Some(s as u32),
                Some(e) => s = e,
            }
        }
    }
    None
}

/// `auto[:size=N]` → one uid and one gid block, free of `used_uids`/`used_gids`,
/// from the pools of /etc/subuid and /etc/subgid.
pub fn allocate_auto(
    mode: &str,
    subuid: &Path,
    subgid: &Path,
    used_uids: &[Range],
    used_gids: &[Range],
) -> Result<(Vec<IdMap>, Vec<IdMap>), UsernsError> {
    let size = auto_size(mode)?;
    let mut out = Vec::new();
    for (kind, path, used) in [("uid", subuid, used_uids), ("gid", subgid, used_gids)] {
        let pool = Pool::from_file(path)?;
        let start = allocate(&pool, used, size).ok_or_else(|| UsernsError::Exhausted {
            size,
            kind,
            pool: pool.describe(),
        })?;
        out.push(vec![IdMap {
            container_id: 0,
            host_id: start,
            size,
        }]);
    }
    let gids = out.pop().expect("two pools");
    let uids = out.pop().expect("two pools");
    Ok((uids, gids))
}

/// The host ranges of a container's maps.
pub fn host_ranges(maps: &[IdMap]) -> impl Iterator<Item = Range> + '_ {
    maps.iter().map(|m| (m.host_id, m.size))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(c: u32, h: u32, n: u32) -> IdMap {
        IdMap {
            container_id: c,
            host_id: h,
            size: n,
        }
    }

    #[test]
    fn host_is_the_default_and_maps_imply_private() {
        assert_eq!(from_flags(None, &[], &[]).unwrap().mode, "");
        assert_eq!(from_flags(Some("host"), &[], &[]).unwrap().mode, "host");
        let r = from_flags(None, &["0:100000:65536".into()], &[]).unwrap();
        assert_eq!(r.mode, "private");
        assert_eq!(r.uid_maps, vec![m(0, 100000, 65536)]);
        assert_eq!(r.gid_maps, r.uid_maps, "gidmap defaults to the uidmap");
        let r = from_flags(Some("private"), &[], &["0:5:1".into()]).unwrap();
        assert_eq!(r.uid_maps, vec![m(0, 5, 1)]);
    }

    #[test]
    fn auto_and_its_size() {
        assert_eq!(from_flags(Some("auto"), &[], &[]).unwrap().mode, "auto");
        assert_eq!(auto_size("auto").unwrap(), 65536);
        assert_eq!(auto_size("auto:size=1024").unwrap(), 1024);
        assert!(auto_size("auto:size=0").is_err());
        assert!(auto_size("auto:size=x").is_err());
        assert!(auto_size("auto:uidmapping=0:1:2").is_err());
        assert!(auto_size("autox").is_err());
    }

    #[test]
    fn bad_flags_are_refused_naming_the_flag() {
        for (userns, uid, gid, needle) in [
            ("keep-id", vec![], vec![], "--userns"),
            ("container:x", vec![], vec![], "--userns"),
            ("host", vec!["0:1:1"], vec![], "conflicting"),
            ("auto", vec!["0:1:1"], vec![], "conflicting"),
            ("", vec!["0:100000"], vec![], "--uidmap"),
            ("", vec!["0:x:1"], vec![], "--uidmap"),
            ("", vec!["0:1:0"], vec![], "size"),
            ("", vec!["0:4294967290:10"], vec![], "last id"),
            (
                "",
                vec!["0:100000:65536", "1000:300000:10"],
                vec![],
                "overlaps",
            ),
            ("", vec!["0:100000:10", "10:100005:10"], vec![], "host ids"),
            ("", vec!["0:1:1"], vec!["0:100:10", "5:200:1"], "--gidmap"),
        ] {
            let uid: Vec<String> = uid.into_iter().map(String::from).collect();
            let gid: Vec<String> = gid.into_iter().map(String::from).collect();
            let e = from_flags(Some(userns), &uid, &gid)
                .unwrap_err()
                .to_string();
            assert!(e.contains(needle), "{userns:?} {uid:?} {gid:?}: {e}");
        }
        let e = from_flags(
            None,
            &["0:100000:65536".into(), "1000:300000:10".into()],
            &[],
        )
        .unwrap_err()
        .to_string();
        assert_eq!(
            e,
            "invalid --uidmap: 0:100000:65536 overlaps 1000:300000:10 (container ids)"
        );
    }

    #[test]
    fn adjacent_ranges_do_not_overlap() {
        assert!(validate("--uidmap", &[m(0, 100, 10), m(10, 110, 10)]).is_ok());
        assert!(validate("--uidmap", &vec![m(0, 0, 1); 341]).is_err());
    }

    #[test]
    fn host_id_and_map_text() {
        let maps = [m(0, 100000, 1000), m(1000, 500000, 10)];
        assert_eq!(host_id(&maps, 0), Some(100000));
        assert_eq!(host_id(&maps, 999), Some(100999));
        assert_eq!(host_id(&maps, 1005), Some(500005));
        assert_eq!(host_id(&maps, 1010), None);
        assert_eq!(map_text(&maps), "0 100000 1000\n1000 500000 10\n");
    }

    #[test]
    fn default_pool_skips_other_users_subids() {
        let pool = Pool::from_subid("alice:100000:65536\n# c\nbob:165536:65536\n");
        assert_eq!(pool.ranges, vec![(100000, u32::MAX - 1 - 100000)]);
        assert_eq!(allocate(&pool, &[], 65536), Some(231072));
        // and blocks in use by other containers
        assert_eq!(allocate(&pool, &[(231072, 65536)], 65536), Some(296608));
        // a small map in the middle pushes the block past it
        assert_eq!(allocate(&pool, &[(231072 + 10, 1)], 65536), Some(231083));
    }

    #[test]
    fn berth_subids_are_the_pool() {
        let pool = Pool::from_subid("alice:100000:65536\nberth:300000:131072\n");
        assert_eq!(pool.ranges, vec![(300000, 131072)]);
        assert!(pool.reserved.is_empty());
        assert_eq!(allocate(&pool, &[], 65536), Some(300000));
        assert_eq!(allocate(&pool, &[(300000, 65536)], 65536), Some(365536));
        assert_eq!(
            allocate(&pool, &[(300000, 65536), (365536, 1)], 65536),
            None
        );
        // a second pool range is used when the first is full
        let pool = Pool::from_subid("berth:300000:10\nberth:400000:65536\n");
        assert_eq!(allocate(&pool, &[], 65536), Some(400000));
    }

    #[test]
    fn allocate_auto_reads_both_files() {
        let dir = tempfile::tempdir().unwrap();
        let (u, g) = (dir.path().join("subuid"), dir.path().join("subgid"));
        std::fs::write(&u, "berth:200000:65536\n").unwrap();
        let (uids, gids) = allocate_auto("auto", &u, &g, &[], &[(100000, 65536)]).unwrap();
        assert_eq!(uids, vec![m(0, 200000, 65536)]);
        assert_eq!(
            gids,
            vec![m(0, 165536, 65536)],
            "no subgid file: default pool"
        );
        let e = allocate_auto("auto", &u, &g, &[(200000, 1)], &[]).unwrap_err();
        assert!(
            e.to_string().contains("no free block of 65536 uid ids"),
            "{e}"
        );
    }
}
