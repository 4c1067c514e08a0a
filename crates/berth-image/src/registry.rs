//! Pull and push against an OCI distribution registry, and docker-style login/logout.
//!
//! Synchronous (ureq): the caller may be a CLI or a worker thread of the engine.
//! - Scheme: `http` for loopback registries (`localhost`, `127.0.0.0/8`, `[::1]`) or when
//!   [`RegistryOptions::insecure`] is set, `https` otherwise. `docker.io` is served by
//!   `registry-1.docker.io`.
//! - Auth: the first 401 names the scheme. `Bearer realm=…,service=…,scope=…` → a token
//!   from the realm (with basic credentials when we have them); `Basic` → credentials on
//!   every request. Credentials come from the docker config file (`auths.<registry>.auth`
//!   = base64 `user:pass`), whose path the caller passes (docker: ~/.docker/config.json).
//! - Pull: an index/manifest list is resolved to linux/amd64; blobs already in the store
//!   are skipped; every blob is verified against its digest while it streams in; the image
//!   is registered only when all of it is present (same path as `load`).
//! - Push: each blob is checked with HEAD first, then mounted from another repository of
//!   the same registry that the store knows holds it (cross-repo mount), else uploaded
//!   (POST + monolithic PUT). The manifest goes last, so a registry never serves a
//!   manifest whose blobs are missing.

use crate::digest;
use crate::reference::Reference;
use crate::store::{
    Descriptor, Image, ImageIndex, Manifest, Result as StoreResult, Store, StoreError,
    MEDIA_DOCKER_LIST, MEDIA_DOCKER_MANIFEST, MEDIA_OCI_INDEX, MEDIA_OCI_MANIFEST,
};
use base64::Engine as _;
use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("{method} {url}: {status} {body}")]
    Status {
        method: &'static str,
        url: String,
        status: u16,
        body: String,
    },
    #[error("{method} {url}: {source}")]
    Transport {
        method: &'static str,
        url: String,
        #[source]
        source: Box<ureq::Transport>,
    },
    #[error("read {url}: {source}")]
    Read {
        url: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{url}: unauthorized: {why}")]
    Auth { url: String, why: String },
    #[error("manifest {reference}: {why}")]
    Manifest { reference: String, why: String },
    #[error("credentials file {path}: {why}")]
    Config { path: PathBuf, why: String },
    #[error(transparent)]
    Store(#[from] StoreError),
}

pub type Result<T, E = RegistryError> = std::result::Result<T, E>;

#[derive(Debug, Clone, Default)]
pub struct RegistryOptions {
    /// Allow plain http (and skip nothing else) for a non-loopback registry.
    pub insecure: bool,
    /// docker config.json with `auths` (None: anonymous).
    pub auth_file: Option<PathBuf>,
}

/// Progress events; the CLI draws bars on a TTY or prints lines.
#[derive(Debug, Clone)]
pub enum Progress {
    /// A blob is already present (locally for pull, remotely for push).
    Exists { digest: String },
    /// A blob was mounted from another repository.
    Mounted { digest: String, from: String },
    /// A blob transfer finished.
    Done { digest: String, size: u64 },
    /// The manifest was written or read.
    Manifest { digest: String },
}

/// The registry host docker uses in config.json for Docker Hub.
const DOCKER_HUB_AUTH_KEY: &str = "https://index.docker.io/v1/";

fn is_loopback(host: &str) -> bool {
    let h = host
        .rsplit_once(':')
        .map(|(h, p)| {
            if p.bytes().all(|b| b.is_ascii_digit()) {
                h
            } else {
                host
            }
        })
        .unwrap_or(host);
    h == "localhost" || h.starts_with("127.") || h == "[::1]"
}

fn base_url(registry: &str, insecure: bool) -> String {
    let host = if registry == "docker.io" {
        "registry-1.docker.io"
    } else {
        registry
    };
    let scheme = if insecure || is_loopback(registry) {
        "http"
    } else {
        "https"
    };
    format!("{scheme}://{host}")
}

/// Key under `auths` for `registry`.
fn auth_key(registry: &str) -> String {
    if registry == "docker.io" {
        DOCKER_HUB_AUTH_KEY.to_string()
    } else {
        registry.to_string()
    }
}

/// A parsed `WWW-Authenticate` challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    pub scheme: String,
    pub params: BTreeMap<String, String>,
}

/// `Bearer realm="https://auth",service="reg",scope="repository:a:pull"`.
pub fn parse_challenge(h: &str) -> Option<Challenge> {
    let h = h.trim();
    let (scheme, rest) = h.split_once(' ').unwrap_or((h, ""));
    let mut params = BTreeMap::new();
    let mut s = rest.trim();
    while !s.is_empty() {
        let (k, after) = s.split_once('=')?;
        let k = k.trim().to_ascii_lowercase();
        let after = after.trim_start();
        let (v, next) = if let Some(q) = after.strip_prefix('"') {
            let end = q.find('"')?;
            (q[..end].to_string(), &q[end + 1..])
        } else {
            let end = after.find(',').unwrap_or(after.len());
            (after[..end].trim().to_string(), &after[end..])
        };
        params.insert(k, v);
        s = next.trim_start().trim_start_matches(',').trim_start();
    }
    Some(Challenge {
        scheme: scheme.to_ascii_lowercase(),
        params,
    })
}

/// Read `user:pass` for `registry` from a docker config file (None if absent).
pub fn credentials(config: &Path, registry: &str) -> Result<Option<(String, String)>> {
    let bad = |why: String| RegistryError::Config {
        path: config.to_path_buf(),
        why,
    };
    let bytes = match std::fs::read(config) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(bad(e.to_string())),
    };
    let v: serde_json::Value = serde_json::from_slice(&bytes).map_err(|e| bad(e.to_string()))?;
    let key = auth_key(registry);
    let Some(auth) = v["auths"][&key]["auth"].as_str() else {
        return Ok(None);
    };
    let raw = base64::engine::general_purpose::STANDARD
        .decode(auth)
        .map_err(|e| bad(format!("auths.{key}.auth: {e}")))?;
    let s = String::from_utf8(raw).map_err(|e| bad(format!("auths.{key}.auth: {e}")))?;
    let (u, p) = s
        .split_once(':')
        .ok_or_else(|| bad(format!("auths.{key}.auth: not user:pass")))?;
    Ok(Some((u.to_string(), p.to_string())))
}

fn write_config(config: &Path, v: &serde_json::Value) -> Result<()> {
    let bad = |why: String| RegistryError::Config {
        path: config.to_path_buf(),
        why,
    };
    if let Some(dir) = config.parent() {
        std::fs::create_dir_all(dir).map_err(|e| bad(e.to_string()))?;
    }
    let tmp = config.with_extension("tmp");
    let bytes = serde_json::to_vec_pretty(v).map_err(|e| bad(e.to_string()))?;
    {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .truncate(true)
            .write(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(|e| bad(e.to_string()))?;
        f.write_all(&bytes).map_err(|e| bad(e.to_string()))?;
        f.sync_all().map_err(|e| bad(e.to_string()))?;
    }
    std::fs::rename(&tmp, config).map_err(|e| bad(e.to_string()))
}

fn read_config(config: &Path) -> Result<serde_json::Value> {
    match std::fs::read(config) {
        Ok(b) => serde_json::from_slice(&b).map_err(|e| RegistryError::Config {
            path: config.to_path_buf(),
            why: e.to_string(),
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(serde_json::json!({})),
        Err(e) => Err(RegistryError::Config {
            path: config.to_path_buf(),
            why: e.to_string(),
        }),
    }
}

/// `docker login`: check the credentials against the registry, then store them.
pub fn login(
    registry: &str,
    user: &str,
    password: &str,
    config: &Path,
    opts: &RegistryOptions,
) -> Result<()> {
    let mut c = Client::new(
        registry,
        opts,
        Some((user.to_string(), password.to_string())),
    );
    c.scope = None;
    let url = format!("{}/v2/", c.base);
    c.request("GET", &url, &[], None).map(|_| ())?;
    let mut v = read_config(config)?;
    if !v.is_object() {
        v = serde_json::json!({});
    }
    if !v["auths"].is_object() {
        v["auths"] = serde_json::json!({});
    }
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    v["auths"][auth_key(registry)] = serde_json::json!({ "auth": auth });
    write_config(config, &v)
}

/// `docker logout`: forget the credentials for `registry`. Returns whether any were stored.
pub fn logout(registry: &str, config: &Path) -> Result<bool> {
    let mut v = read_config(config)?;
    let removed = v["auths"]
        .as_object_mut()
        .and_then(|m| m.remove(&auth_key(registry)))
        .is_some();
    if removed {
        write_config(config, &v)?;
    }
    Ok(removed)
}

struct Client {
    agent: ureq::Agent,
    base: String,
    registry: String,
    creds: Option<(String, String)>,
    /// `Authorization` header value once known.
    auth: Option<String>,
    scope: Option<String>,
}

struct Resp {
    status: u16,
    headers: BTreeMap<String, String>,
    body: Box<dyn Read + Send + Sync>,
}

impl Resp {
    fn bytes(mut self, url: &str) -> Result<Vec<u8>> {
        let mut b = Vec::new();
        self.body
            .read_to_end(&mut b)
            .map_err(|source| RegistryError::Read {
                url: url.to_string(),
                source,
            })?;
        Ok(b)
    }
}

impl Client {
    fn new(registry: &str, opts: &RegistryOptions, creds: Option<(String, String)>) -> Client {
        Client {
            agent: ureq::AgentBuilder::new()
                .timeout_connect(Duration::from_secs(30))
                .redirects(8)
                .build(),
            base: base_url(registry, opts.insecure),
            registry: registry.to_string(),
            creds,
            auth: None,
            scope: None,
        }
    }

    fn for_repo(registry: &str, repo: &str, push: bool, opts: &RegistryOptions) -> Result<Client> {
        let creds = match &opts.auth_file {
            Some(p) => credentials(p, registry)?,
            None => None,
        };
        let mut c = Client::new(registry, opts, creds);
        c.scope = Some(format!(
            "repository:{repo}:{}",
            if push { "pull,push" } else { "pull" }
        ));
        Ok(c)
    }

    /// One request; on the first 401 authenticate per the challenge and retry once.
    fn request(
        &mut self,
        method: &'static str,
        url: &str,
        headers: &[(&str, &str)],
        body: Option<&mut dyn Read>,
    ) -> Result<Resp> {
        let mut body = body;
        for attempt in 0..2 {
            let mut req = self.agent.request(method, url);
            for (k, v) in headers {
                req = req.set(k, v);
            }
            if let Some(a) = &self.auth {
                req = req.set("Authorization", a);
            }
            let res = match body.as_mut() {
                Some(b) => req.send(b),
                None => req.call(),
            };
            let resp = match res {
                Ok(r) => r,
                Err(ureq::Error::Status(401, r)) if attempt == 0 && self.auth.is_none() => {
                    let chal = r.header("www-authenticate").unwrap_or("").to_string();
                    self.authenticate(url, &chal)?;
                    if body.is_some() {
                        // A streamed body cannot be replayed; callers send bodies only
                        // after an authenticated request on the same client.
                        return Err(RegistryError::Auth {
                            url: url.to_string(),
                            why: "authentication required before sending a body".into(),
                        });
                    }
                    continue;
                }
                Err(ureq::Error::Status(code, r)) => {
                    let mut b = String::new();
                    let _ = r.into_reader().take(4096).read_to_string(&mut b);
                    if code == 401 {
                        return Err(RegistryError::Auth {
                            url: url.to_string(),
                            why: b.trim().to_string(),
                        });
                    }
                    return Err(RegistryError::Status {
                        method,
                        url: url.to_string(),
                        status: code,
                        body: b.trim().to_string(),
                    });
                }
                Err(ureq::Error::Transport(t)) => {
                    return Err(RegistryError::Transport {
                        method,
                        url: url.to_string(),
                        source: Box::new(t),
                    })
                }
            };
            let mut h = BTreeMap::new();
            for n in resp.headers_names() {
                if let Some(v) = resp.header(&n) {
                    h.insert(n.to_ascii_lowercase(), v.to_string());
                }
            }
            return Ok(Resp {
                status: resp.status(),
                headers: h,
                body: Box::new(resp.into_reader()),
            });
        }
        Err(RegistryError::Auth {
            url: url.to_string(),
            why: "still unauthorized after authenticating".into(),
        })
    }

    fn basic(&self) -> Option<String> {
        self.creds.as_ref().map(|(u, p)| {
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"))
            )
        })
    }

    fn authenticate(&mut self, url: &str, challenge: &str) -> Result<()> {
        let Some(ch) = parse_challenge(challenge) else {
            return Err(RegistryError::Auth {
                url: url.to_string(),
                why: format!("unparseable challenge {challenge:?}"),
            });
        };
        match ch.scheme.as_str() {
            "basic" => {
                self.auth = Some(self.basic().ok_or_else(|| RegistryError::Auth {
                    url: url.to_string(),
                    why: format!("registry {} wants credentials: log in first", self.registry),
                })?);
                Ok(())
            }
            "bearer" => {
                let realm = ch.params.get("realm").cloned().unwrap_or_default();
                let mut req = self.agent.get(&realm);
                if let Some(s) = ch.params.get("service") {
                    req = req.query("service", s);
                }
                if let Some(s) = ch.params.get("scope").or(self.scope.as_ref()) {
                    req = req.query("scope", s);
                }
                if let Some(b) = self.basic() {
                    req = req.set("Authorization", &b);
                }
                let resp = req.call().map_err(|e| RegistryError::Auth {
                    url: realm.clone(),
                    why: e.to_string(),
                })?;
                let v: serde_json::Value =
                    serde_json::from_reader(resp.into_reader().take(1 << 20)).map_err(|e| {
                        RegistryError::Auth {
                            url: realm.clone(),
                            why: e.to_string(),
                        }
                    })?;
                let tok = v["token"]
                    .as_str()
                    .or(v["access_token"].as_str())
                    .ok_or_else(|| RegistryError::Auth {
                        url: realm.clone(),
                        why: "token response has no token".into(),
                    })?;
                self.auth = Some(format!("Bearer {tok}"));
                Ok(())
            }
            other => Err(RegistryError::Auth {
                url: url.to_string(),
                why: format!("unsupported auth scheme {other}"),
            }),
        }
    }
}

const ACCEPT: &str = "application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.v2+json, application/vnd.docker.distribution.manifest.list.v2+json";

/// `docker pull`. Returns the registered image, tagged with `reference`.
pub fn pull(
    store: &Store,
    reference: &str,
    opts: &RegistryOptions,
    progress: &dyn Fn(Progress),
) -> Result<Image> {
    let r = Reference::parse(reference).map_err(StoreError::from)?;
    let mut c = Client::for_repo(&r.registry, &r.repository, false, opts)?;
    let _g = store.ingest_lock()?;
    let url = format!(
        "{}/v2/{}/manifests/{}",
        c.base,
        r.repository,
        r.tag_or_digest()
    );
    let resp = c.request("GET", &url, &[("Accept", ACCEPT)], None)?;
    let ctype = resp
        .headers
        .get("content-type")
        .cloned()
        .unwrap_or_default();
    let top = resp.bytes(&url)?;
    let top_digest = digest::sha256(&top);
    if let Some(d) = &r.digest {
        if *d != top_digest {
            return Err(RegistryError::Manifest {
                reference: reference.to_string(),
                why: format!("registry sent content with digest {top_digest}"),
            });
        }
    }
    let media = media_type_of(&top, &ctype);
    let manifest_bytes = if media == MEDIA_OCI_INDEX || media == MEDIA_DOCKER_LIST {
        let idx: ImageIndex =
            serde_json::from_slice(&top).map_err(|e| RegistryError::Manifest {
                reference: reference.to_string(),
                why: e.to_string(),
            })?;
        let m = idx
            .manifests
            .iter()
            .find(|m| {
                m.platform
                    .as_ref()
                    .is_some_and(|p| p.os == "linux" && p.architecture == "amd64")
            })
            .ok_or_else(|| RegistryError::Manifest {
                reference: reference.to_string(),
                why: "no linux/amd64 manifest in the index".into(),
            })?;
        let url = format!("{}/v2/{}/manifests/{}", c.base, r.repository, m.digest);
        let b = c
            .request("GET", &url, &[("Accept", ACCEPT)], None)?
            .bytes(&url)?;
        if digest::sha256(&b) != m.digest {
            return Err(RegistryError::Manifest {
                reference: reference.to_string(),
                why: format!("manifest {} has the wrong digest", m.digest),
            });
        }
        b
    } else {
        top.clone()
    };
    let manifest: Manifest =
        serde_json::from_slice(&manifest_bytes).map_err(|e| RegistryError::Manifest {
            reference: reference.to_string(),
            why: e.to_string(),
        })?;
    progress(Progress::Manifest {
        digest: digest::sha256(&manifest_bytes),
    });
    let mut blobs = vec![manifest.config.clone()];
    blobs.extend(manifest.layers.iter().cloned());
    for d in &blobs {
        fetch_blob(&mut c, store, &r, d, progress)?;
    }
    let repo_digest = format!("{}@{}", r.name(), top_digest);
    let tags: Vec<Reference> = if r.tag.is_some() {
        vec![Reference {
            digest: None,
            ..r.clone()
        }]
    } else {
        Vec::new()
    };
    Ok(store.register(&manifest_bytes, &tags, Some(repo_digest))?)
}

fn fetch_blob(
    c: &mut Client,
    store: &Store,
    r: &Reference,
    d: &Descriptor,
    progress: &dyn Fn(Progress),
) -> Result<()> {
    if store.has_blob(&d.digest) {
        progress(Progress::Exists {
            digest: d.digest.clone(),
        });
        return Ok(());
    }
    let url = format!("{}/v2/{}/blobs/{}", c.base, r.repository, d.digest);
    let resp = c.request("GET", &url, &[], None)?;
    let (_, size) = store.put_blob(resp.body, Some(&d.digest))?;
    progress(Progress::Done {
        digest: d.digest.clone(),
        size,
    });
    Ok(())
}

fn media_type_of(bytes: &[u8], content_type: &str) -> String {
    #[derive(serde::Deserialize)]
    struct Probe {
        #[serde(rename = "mediaType", default)]
        media_type: Option<String>,
        #[serde(default)]
        manifests: Option<serde_json::Value>,
    }
    let p: Option<Probe> = serde_json::from_slice(bytes).ok();
    match p {
        Some(Probe {
            media_type: Some(m),
            ..
        }) if !m.is_empty() => m,
        Some(Probe {
            manifests: Some(_), ..
        }) => MEDIA_OCI_INDEX.to_string(),
        _ if !content_type.is_empty() => content_type
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_string(),
        _ => MEDIA_OCI_MANIFEST.to_string(),
    }
}

/// `docker push`: push the local image `local` as `target` (default: its own name).
/// Returns the manifest digest the registry stored.
pub fn push(
    store: &Store,
    local: &str,
    target: Option<&str>,
    opts: &RegistryOptions,
    progress: &dyn Fn(Progress),
) -> Result<String> {
    let img = store.resolve(local)?;
    let r = Reference::parse(target.unwrap_or(local)).map_err(StoreError::from)?;
    let mut c = Client::for_repo(&r.registry, &r.repository, true, opts)?;
    let manifest_bytes = store.read_blob(&img.manifest_digest)?;
    let manifest: Manifest =
        serde_json::from_slice(&manifest_bytes).map_err(|e| RegistryError::Manifest {
            reference: local.to_string(),
            why: e.to_string(),
        })?;
    // Authenticate up front with a body-less request, so uploads never need a replay.
    let ping = format!("{}/v2/", c.base);
    let _ = c.request("GET", &ping, &[], None);
    let mounts = known_locations(store, &r)?;
    let mut blobs = manifest.layers.clone();
    blobs.push(manifest.config.clone());
    for d in &blobs {
        push_blob(&mut c, store, &r, d, mounts.get(&d.digest), progress)?;
    }
    let media = manifest
        .media_type
        .clone()
        .unwrap_or_else(|| MEDIA_OCI_MANIFEST.to_string());
    let media = if media.is_empty() {
        MEDIA_DOCKER_MANIFEST.to_string()
    } else {
        media
    };
    let url = format!(
        "{}/v2/{}/manifests/{}",
        c.base,
        r.repository,
        r.tag_or_digest()
    );
    let len = manifest_bytes.len().to_string();
    let resp = c.request(
        "PUT",
        &url,
        &[("Content-Type", &media), ("Content-Length", &len)],
        Some(&mut &manifest_bytes[..]),
    )?;
    let digest = resp
        .headers
        .get("docker-content-digest")
        .cloned()
        .unwrap_or_else(|| digest::sha256(&manifest_bytes));
    progress(Progress::Manifest {
        digest: digest.clone(),
    });
    let repo_digest = format!("{}@{}", r.name(), digest);
    store.update_index(|idx| {
        if let Some(rec) = idx.images.get_mut(&img.id) {
            if !rec.repo_digests.contains(&repo_digest) {
                rec.repo_digests.push(repo_digest.clone());
            }
        }
        Ok(())
    })?;
    Ok(digest)
}

/// Blob digest → another repository on the same registry that holds it (from the
/// repo digests of images pulled from / pushed to that registry).
fn known_locations(store: &Store, target: &Reference) -> StoreResult<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for img in store.list()? {
        for rd in &img.repo_digests {
            let Ok(r) = Reference::parse(rd) else {
                continue;
            };
            if r.registry != target.registry || r.repository == target.repository {
                continue;
            }
            for l in &img.layers {
                out.entry(l.digest.clone())
                    .or_insert_with(|| r.repository.clone());
            }
            out.entry(img.id.clone())
                .or_insert_with(|| r.repository.clone());
        }
    }
    Ok(out)
}

fn push_blob(
    c: &mut Client,
    store: &Store,
    r: &Reference,
    d: &Descriptor,
    mount_from: Option<&String>,
    progress: &dyn Fn(Progress),
) -> Result<()> {
    let head = format!("{}/v2/{}/blobs/{}", c.base, r.repository, d.digest);
    match c.request("HEAD", &head, &[], None) {
        Ok(_) => {
            progress(Progress::Exists {
                digest: d.digest.clone(),
            });
            return Ok(());
        }
        Err(RegistryError::Status { status: 404, .. }) => {}
        Err(e) => return Err(e),
    }
    let start = match mount_from {
        Some(from) => format!(
            "{}/v2/{}/blobs/uploads/?mount={}&from={}",
            c.base, r.repository, d.digest, from
        ),
        None => format!("{}/v2/{}/blobs/uploads/", c.base, r.repository),
    };
    let resp = c.request(
        "POST",
        &start,
        &[("Content-Length", "0")],
        Some(&mut std::io::empty()),
    )?;
    if resp.status == 201 {
        progress(Progress::Mounted {
            digest: d.digest.clone(),
            from: mount_from.cloned().unwrap_or_default(),
        });
        return Ok(());
    }
    let loc = resp
        .headers
        .get("location")
        .cloned()
        .ok_or_else(|| RegistryError::Status {
            method: "POST",
            url: start.clone(),
            status: resp.status,
            body: "no Location header for the upload".into(),
        })?;
    let loc = if loc.starts_with('/') {
        format!("{}{loc}", c.base)
    } else {
        loc
    };
    let sep = if loc.contains('?') { '&' } else { '?' };
    let put = format!("{loc}{sep}digest={}", d.digest);
    let f = store.open_blob(&d.digest)?;
    let size = f.metadata().map(|m| m.len()).unwrap_or(d.size).to_string();
    let mut reader = std::io::BufReader::with_capacity(256 * 1024, f);
    c.request(
        "PUT",
        &put,
        &[
            ("Content-Type", "application/octet-stream"),
            ("Content-Length", &size),
        ],
        Some(&mut reader),
    )?;
    progress(Progress::Done {
        digest: d.digest.clone(),
        size: d.size,
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenges() {
        let c = parse_challenge(r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull""#)
            .expect("parse");
        assert_eq!(c.scheme, "bearer");
        assert_eq!(c.params["realm"], "https://auth.docker.io/token");
        assert_eq!(c.params["scope"], "repository:library/busybox:pull");
        let b = parse_challenge(r#"Basic realm="Registry Realm""#).expect("basic");
        assert_eq!(b.scheme, "basic");
        assert_eq!(b.params["realm"], "Registry Realm");
        assert!(parse_challenge("Bearer realm=\"unterminated").is_none());
    }

    #[test]
    fn schemes() {
        assert_eq!(base_url("127.0.0.1:5000", false), "http://127.0.0.1:5000");
        assert_eq!(base_url("localhost:5000", false), "http://localhost:5000");
        assert_eq!(base_url("quay.io", false), "https://quay.io");
        assert_eq!(base_url("quay.io", true), "http://quay.io");
        assert_eq!(base_url("docker.io", false), "https://registry-1.docker.io");
    }

    #[test]
    fn login_file_round_trip() {
        let t = tempfile::tempdir().expect("tmp");
        let cfg = t.path().join("config.json");
        std::fs::write(
            &cfg,
            r#"{"auths":{"other:1":{"auth":"eDp5"}},"credsStore":"x"}"#,
        )
        .expect("seed");
        let mut v = read_config(&cfg).expect("read");
        v["auths"]["127.0.0.1:5000"] =
            serde_json::json!({"auth": base64::engine::general_purpose::STANDARD.encode("u:p:w")});
        write_config(&cfg, &v).expect("write");
        assert_eq!(
            credentials(&cfg, "127.0.0.1:5000").expect("creds"),
            Some(("u".into(), "p:w".into()))
        );
        assert_eq!(
            credentials(&cfg, "other:1").expect("creds"),
            Some(("x".into(), "y".into()))
        );
        assert!(logout("127.0.0.1:5000", &cfg).expect("logout"));
        assert!(!logout("127.0.0.1:5000", &cfg).expect("logout again"));
        assert_eq!(credentials(&cfg, "127.0.0.1:5000").expect("creds"), None);
        let v = read_config(&cfg).expect("read");
        assert_eq!(v["credsStore"], "x", "other keys are kept");
    }
}
