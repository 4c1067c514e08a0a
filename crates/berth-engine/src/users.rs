//! users: `--user name[:group]` resolved the way docker does — against the
//! image's own /etc/passwd and /etc/group, read through RESOLVE_IN_ROOT so an
//! image whose /etc is a symlink to the host's cannot make us read host files.

use std::io::Read;
use std::path::Path;

use crate::EngineError;

#[derive(Debug, Clone, PartialEq, Default)]
pub struct ResolvedUser {
    pub uid: u32,
    pub gid: u32,
    pub additional_gids: Vec<u32>,
}

fn read_in_root(rootfs: &Path, path: &str) -> Option<String> {
    let dir = std::fs::File::open(rootfs).ok()?;
    let flags = nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_CLOEXEC;
    let fd = berth_sys::openat2(
        std::os::fd::AsFd::as_fd(&dir),
        Path::new(path),
        flags.bits(),
        0,
        berth_sys::RESOLVE_IN_ROOT | berth_sys::RESOLVE_NO_MAGICLINKS,
    )
    .ok()?;
    let mut s = String::new();
    std::fs::File::from(fd)
        .take(4 << 20)
        .read_to_string(&mut s)
        .ok()?;
    Some(s)
}

/// (name, id, gid, members) rows of a passwd- or group-format file.
fn rows(text: &str) -> Vec<Vec<&str>> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| l.split(':').collect())
        .collect()
}

pub fn resolve(
    user: &str,
    group_add: &[String],
    passwd: Option<&str>,
    group: Option<&str>,
) -> Result<ResolvedUser, EngineError> {
    let (u, g) = crate::parse::user(user);
    let passwd_rows = passwd.map(rows).unwrap_or_default();
    let group_rows = group.map(rows).unwrap_or_default();
    let (uid, mut gid, name) = if u.is_empty() {
        (0, 0, "root".to_string())
    } else if let Ok(n) = u.parse::<u32>() {
        let row = passwd_rows
            .iter()
            .find(|r| r.get(2).and_then(|x| x.parse::<u32>().ok()) == Some(n));
        (
            n,
            row.and_then(|r| r.get(3)?.parse().ok()).unwrap_or(0),
            row.map(|r| r[0].to_string()).unwrap_or_default(),
        )
    } else {
        let row = passwd_rows
            .iter()
            .find(|r| r[0] == u)
            .ok_or_else(|| EngineError::Exec {
                code: 126,
                message: format!("unable to find user {u}: no matching entries in passwd file"),
            })?;
        let id = row.get(2).and_then(|x| x.parse().ok()).unwrap_or(0);
        (
            id,
            row.get(3).and_then(|x| x.parse().ok()).unwrap_or(0),
            u.clone(),
        )
    };
    let find_group = |g: &str| -> Result<u32, EngineError> {
        if let Ok(n) = g.parse::<u32>() {
            return Ok(n);
        }
        group_rows
            .iter()
            .find(|r| r[0] == g)
            .and_then(|r| r.get(2)?.parse().ok())
            .ok_or_else(|| EngineError::Exec {
                code: 126,
                message: format!("unable to find group {g}: no matching entries in group file"),
            })
    };
    if let Some(g) = g {
        gid = find_group(&g)?;
    }
    let mut additional: Vec<u32> = Vec::new();
    if !name.is_empty() {
        for r in &group_rows {
            if r.get(3)
                .map(|m| m.split(',').any(|x| x == name))
                .unwrap_or(false)
            {
                if let Some(id) = r.get(2).and_then(|x| x.parse::<u32>().ok()) {
                    if id != gid && !additional.contains(&id) {
                        additional.push(id);
                    }
                }
            }
        }
    }
    for g in group_add {
        let id = find_group(g)?;
        if !additional.contains(&id) {
            additional.push(id);
        }
    }
    Ok(ResolvedUser {
        uid,
        gid,
        additional_gids: additional,
    })
}

pub fn resolve_in_rootfs(
    rootfs: &Path,
    user: &str,
    group_add: &[String],
) -> Result<ResolvedUser, EngineError> {
    let passwd = read_in_root(rootfs, "/etc/passwd");
    let group = read_in_root(rootfs, "/etc/group");
    resolve(user, group_add, passwd.as_deref(), group.as_deref())
}

#[cfg(test)]
mod tests {
    use super::*;
    const P: &str = "root:x:0:0:root:/root:/bin/sh\nweb:x:1000:1001::/home/web:/bin/sh\n";
    const G: &str = "root:x:0:\nwheel:x:10:web\nstaff:x:50:\n";
    #[test]
    fn users() {
        assert_eq!(
            resolve("", &[], Some(P), Some(G)).unwrap(),
            ResolvedUser::default()
        );
        let r = resolve("web", &[], Some(P), Some(G)).unwrap();
        assert_eq!(
            (r.uid, r.gid, r.additional_gids.clone()),
            (1000, 1001, vec![10])
        );
        let r = resolve("1000:1000", &[], Some(P), Some(G)).unwrap();
        assert_eq!((r.uid, r.gid), (1000, 1000));
        let r = resolve("4242", &["staff".into()], None, Some(G)).unwrap();
        assert_eq!((r.uid, r.gid, r.additional_gids), (4242, 0, vec![50]));
        assert!(resolve("nobody2", &[], Some(P), Some(G)).is_err());
        assert!(resolve("web:nogroup", &[], Some(P), Some(G)).is_err());
    }
}
