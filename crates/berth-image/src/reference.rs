//! Image references, normalised the way Docker does it.
//!
//! `busybox`, `busybox:latest`, `library/busybox` and `docker.io/library/busybox:latest`
//! all name one image. The grammar follows distribution/reference:
//! - the first path component is a registry when it contains `.` or `:` or is `localhost`;
//!   otherwise the registry is `docker.io` (and `index.docker.io` is folded into it);
//! - on `docker.io` a single-component path gets the `library/` prefix;
//! - path components are lowercase `[a-z0-9]+` joined by `.`, `_`, `__` or `-+`;
//! - a tag is `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`; the default tag is `latest`
//!   unless a digest is given;
//! - a digest is `sha256:<64 lowercase hex>`.
//!
//! Invariant: `Reference::parse(r.to_string()) == r` for every parsed `r`.

use std::fmt;

pub const DEFAULT_REGISTRY: &str = "docker.io";
pub const DEFAULT_TAG: &str = "latest";

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ReferenceError {
    #[error("invalid reference format {0:?}: empty")]
    Empty(String),
    #[error("invalid reference format {0:?}: repository name must be lowercase")]
    Uppercase(String),
    #[error("invalid reference format {reference:?}: bad path component {component:?}")]
    Component {
        reference: String,
        component: String,
    },
    #[error("invalid reference format {reference:?}: bad registry {registry:?}")]
    Registry { reference: String, registry: String },
    #[error("invalid reference format {reference:?}: bad tag {tag:?}")]
    Tag { reference: String, tag: String },
    #[error(
        "invalid reference format {reference:?}: bad digest {digest:?} (want sha256:<64 hex>)"
    )]
    Digest { reference: String, digest: String },
    #[error("invalid reference format {0:?}: name longer than 255 characters")]
    TooLong(String),
}

/// A normalised image reference: `registry/repository[:tag][@digest]`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Reference {
    /// `docker.io`, `localhost:5000`, `quay.io`, ...
    pub registry: String,
    /// `library/busybox`, `x/y`.
    pub repository: String,
    /// `None` only when a digest was given without a tag.
    pub tag: Option<String>,
    /// `sha256:<hex>`.
    pub digest: Option<String>,
}

impl Reference {
    pub fn parse(s: &str) -> Result<Reference, ReferenceError> {
        if s.is_empty() {
            return Err(ReferenceError::Empty(s.to_string()));
        }
        let (name_tag, digest) = match s.split_once('@') {
            Some((n, d)) => {
                if !is_digest(d) {
                    return Err(ReferenceError::Digest {
                        reference: s.to_string(),
                        digest: d.to_string(),
                    });
                }
                (n, Some(d.to_string()))
            }
            None => (s, None),
        };
        // A tag is after the last ':' that comes after the last '/', so
        // `localhost:5000/x` has no tag but `localhost:5000/x:1` has.
        let last_slash = name_tag.rfind('/').map(|i| i + 1).unwrap_or(0);
        let (name, tag) = match name_tag[last_slash..].rfind(':') {
            Some(i) => {
                let i = last_slash + i;
                (&name_tag[..i], Some(name_tag[i + 1..].to_string()))
            }
            None => (name_tag, None),
        };
        if name.is_empty() {
            return Err(ReferenceError::Empty(s.to_string()));
        }
        if name.len() > 255 {
            return Err(ReferenceError::TooLong(s.to_string()));
        }
        if let Some(t) = &tag {
            if !is_tag(t) {
                return Err(ReferenceError::Tag {
                    reference: s.to_string(),
                    tag: t.clone(),
                });
            }
        }
        let (registry, path) = match name.split_once('/') {
            Some((first, rest))
                if first.contains('.') || first.contains(':') || first == "localhost" =>
            {
                (first.to_string(), rest.to_string())
            }
            _ => (DEFAULT_REGISTRY.to_string(), name.to_string()),
        };
        if !is_registry(&registry) {
            return Err(ReferenceError::Registry {
                reference: s.to_string(),
                registry,
            });
        }
        let registry = if registry == "index.docker.io" || registry == "registry-1.docker.io" {
            DEFAULT_REGISTRY.to_string()
        } else {
            registry
        };
        if path.chars().any(|c| c.is_ascii_uppercase()) {
            return Err(ReferenceError::Uppercase(s.to_string()));
        }
        for component in path.split('/') {
            if !is_component(component) {
                return Err(ReferenceError::Component {
                    reference: s.to_string(),
                    component: component.to_string(),
                });
            }
        }
        let repository = if registry == DEFAULT_REGISTRY && !path.contains('/') {
            format!("library/{path}")
        } else {
            path
        };
        let tag = match (tag, &digest) {
            (None, None) => Some(DEFAULT_TAG.to_string()),
            (t, _) => t,
        };
        Ok(Reference {
            registry,
            repository,
            tag,
            digest,
        })
    }

    /// `registry/repository` without tag or digest.
    pub fn name(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }

    /// The short form Docker prints: `busybox:latest`, `x/y:1`, `localhost:5000/x:1`.
    pub fn familiar(&self) -> String {
        let mut out = if self.registry == DEFAULT_REGISTRY {
            self.repository
                .strip_prefix("library/")
                .unwrap_or(&self.repository)
                .to_string()
        } else {
            self.name()
        };
        if let Some(t) = &self.tag {
            out.push(':');
            out.push_str(t);
        }
        if let Some(d) = &self.digest {
            out.push('@');
            out.push_str(d);
        }
        out
    }

    /// The string a registry API wants after `/v2/<name>/manifests/`: the digest if any, else the tag.
    pub fn tag_or_digest(&self) -> &str {
        self.digest
            .as_deref()
            .or(self.tag.as_deref())
            .unwrap_or(DEFAULT_TAG)
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

impl std::str::FromStr for Reference {
    type Err = ReferenceError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Reference::parse(s)
    }
}

/// `sha256:<64 lowercase hex>`.
pub fn is_digest(d: &str) -> bool {
    d.strip_prefix("sha256:")
        .is_some_and(|h| h.len() == 64 && h.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
}

fn is_tag(t: &str) -> bool {
    let b = t.as_bytes();
    !b.is_empty()
        && b.len() <= 128
        && (b[0].is_ascii_alphanumeric() || b[0] == b'_')
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'))
}

/// `[a-z0-9]+ ((\.|_|__|-+) [a-z0-9]+)*`
fn is_component(c: &str) -> bool {
    let b = c.as_bytes();
    if b.is_empty() || !is_alnum_lower(b[0]) || !is_alnum_lower(b[b.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if is_alnum_lower(b[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < b.len() && !is_alnum_lower(b[i]) {
            i += 1;
        }
        let sep = &c[start..i];
        let ok = sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|x| x == b'-');
        if !ok {
            return false;
        }
    }
    true
}

fn is_alnum_lower(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit()
}

/// `host[:port]` where host is dot-separated labels of `[A-Za-z0-9-]` or a bracketed IPv6.
fn is_registry(r: &str) -> bool {
    let port_ok = |p: &str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit());
    if let Some(rest) = r.strip_prefix('[') {
        let Some((host, tail)) = rest.split_once(']') else {
            return false;
        };
        let host_ok = !host.is_empty() && host.bytes().all(|b| b.is_ascii_hexdigit() || b == b':');
        return host_ok && (tail.is_empty() || tail.strip_prefix(':').is_some_and(port_ok));
    }
    let host = match r.rsplit_once(':') {
        Some((h, p)) if port_ok(p) => h,
        Some(_) => return false,
        None => r,
    };
    !host.is_empty()
        && host.split('.').all(|label| {
            !label.is_empty()
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn norm(s: &str) -> String {
        Reference::parse(s).expect(s).to_string()
    }

    #[test]
    fn docker_hub_forms_are_one_image() {
        for s in [
            "busybox",
            "busybox:latest",
            "library/busybox",
            "docker.io/busybox",
            "docker.io/library/busybox:latest",
            "index.docker.io/library/busybox",
        ] {
            assert_eq!(norm(s), "docker.io/library/busybox:latest", "{s}");
        }
        assert_eq!(
            Reference::parse("busybox").expect("ok").familiar(),
            "busybox:latest"
        );
    }

    #[test]
    fn registries_ports_and_paths() {
        assert_eq!(norm("localhost:5000/x/y:tag"), "localhost:5000/x/y:tag");
        let r = Reference::parse("localhost:5000/x/y:tag").expect("ok");
        assert_eq!(r.registry, "localhost:5000");
        assert_eq!(r.repository, "x/y");
        assert_eq!(r.tag.as_deref(), Some("tag"));
        assert_eq!(norm("localhost/x"), "localhost/x:latest");
        assert_eq!(norm("localhost:5000/x"), "localhost:5000/x:latest");
        assert_eq!(norm("127.0.0.1:5000/a"), "127.0.0.1:5000/a:latest");
        assert_eq!(norm("quay.io/podman/stable:v4"), "quay.io/podman/stable:v4");
        assert_eq!(norm("user/repo"), "docker.io/user/repo:latest");
        assert_eq!(
            norm("a-b__c---d/f.g_h:1.0-rc_1"),
            "docker.io/a-b__c---d/f.g_h:1.0-rc_1"
        );
        assert_eq!(
            Reference::parse("localhost:5000/x:1")
                .expect("ok")
                .familiar(),
            "localhost:5000/x:1"
        );
    }

    #[test]
    fn digests() {
        let d = format!("sha256:{}", "a".repeat(64));
        let r = Reference::parse(&format!("busybox@{d}")).expect("ok");
        assert_eq!(r.tag, None);
        assert_eq!(r.digest.as_deref(), Some(d.as_str()));
        assert_eq!(r.to_string(), format!("docker.io/library/busybox@{d}"));
        assert_eq!(r.tag_or_digest(), d);
        let r = Reference::parse(&format!("localhost:5000/x:1@{d}")).expect("ok");
        assert_eq!(r.tag.as_deref(), Some("1"));
        assert_eq!(Reference::parse(&r.to_string()).expect("round trip"), r);
    }

    #[test]
    fn invalid_names_are_clear_errors() {
        let bad = [
            "",
            "Busybox",
            "busybox:",
            "busybox:-x",
            ":tag",
            "a//b",
            "/a",
            "a/",
            "a..b",
            "-a",
            "a-",
            "busybox@sha256:abc",
            "busybox@md5:0123",
            "a b",
            "busybox:a/b",
            "bad_host:99x/a",
        ];
        for s in bad {
            let e = Reference::parse(s);
            assert!(e.is_err(), "{s:?} should be invalid, got {e:?}");
            assert!(e
                .expect_err("invalid")
                .to_string()
                .starts_with("invalid reference format"));
        }
        assert!(Reference::parse(&"a".repeat(256)).is_err());
        assert!(Reference::parse(&format!("a:{}", "t".repeat(129))).is_err());
    }

    #[test]
    fn round_trip() {
        for s in [
            "busybox",
            "x/y:1",
            "localhost:5000/a/b/c:v",
            "ghcr.io/o/r:t",
        ] {
            let r = Reference::parse(s).expect("ok");
            assert_eq!(Reference::parse(&r.to_string()).expect("again"), r);
        }
    }
}
