//! security: the safety defaults `berth run` writes into the OCI spec, and the
//! flags that change them (`--cap-add`, `--cap-drop`, `--privileged`,
//! `--security-opt`, `--read-only`).
//!
//! The defaults are Docker's, kept as data with a comment per entry:
//! [`capabilities::DEFAULT`] (14 capabilities), [`seccomp::RULES`] (the default
//! seccomp profile), [`paths::MASKED`] and [`paths::READONLY`]. The runtime
//! applies exactly what the spec says; this module decides what it says.
//!
//! Order of use: parse the flags into [`SecurityOptions`] when the container
//! is created (so a bad flag, capability or seccomp profile fails before
//! anything exists), then [`apply`] them to the generated spec. [`apply`] is
//! deterministic given the options and host facts, and sets every field it
//! owns explicitly — oci-spec's own defaults for these fields are not Docker's.
//!
//! `--privileged` here means: every capability the engine holds, no seccomp
//! profile (unless one is given explicitly, as Docker does), no masked or
//! read-only paths. The rest of privileged mode — every host device, an
//! allow-all device cgroup, /sys and cgroupfs mounted read-write — belongs to
//! spec generation, not to this module.
//!
//! `--user`: the caller passes whether the container process is uid 0
//! (`uid_is_root`); a non-root process gets no effective/permitted
//! capabilities, only a bounding set (see [`capabilities::linux_capabilities`]).
//!
//! API:
//! - [`SecurityOptions::from_host_config`] / [`SecurityOptions::from_flags`] /
//!   [`parse_security_opt`]: flags → validated options.
//! - [`inline_seccomp_files`]: `seccomp=<file>` → `seccomp=<json>` for the
//!   record (what the Docker CLI sends over the API).
//! - [`apply`] (resolves against this host) / [`apply_resolved`] (pure).
//! - [`capabilities::resolve`], [`capabilities::linux_capabilities`],
//!   [`capabilities::mask`]; [`seccomp::default_profile`],
//!   [`seccomp::from_docker_json`]; [`paths::masked_paths`],
//!   [`paths::readonly_paths`].
//!
//! - [`runtime_exe`]: the runtime binary run through a read-only bind mount
//!   (CVE-2019-5736).
//! - [`userns`]: `--userns`/`--uidmap`/`--gidmap` → user namespace maps, and
//!   `auto`'s allocation of free host id blocks.
//!
//! README-tests.md (next to this file) lists the real-kernel tests to run
//! through `berth run`, with the exact expected values.

pub mod capabilities;
pub mod paths;
pub mod runtime_exe;
pub mod seccomp;
pub mod userns;

use std::path::PathBuf;

use oci_spec::runtime::{Linux, Process, Root, Spec};

pub use capabilities::{linux_capabilities, resolve, CapabilityError};
pub use seccomp::{default_profile, from_docker_json, SeccompProfileError};

#[derive(Debug, thiserror::Error)]
pub enum SecurityError {
    #[error("invalid --security-opt {opt:?}: {reason}")]
    InvalidOpt { opt: String, reason: String },
    #[error("read seccomp profile {}: {source}", path.display())]
    ReadProfile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("seccomp profile {}: {source}", path.display())]
    Profile {
        path: PathBuf,
        #[source]
        source: SeccompProfileError,
    },
    #[error(transparent)]
    Capability(#[from] CapabilityError),
    #[error("seccomp profile: {0}")]
    Seccomp(#[from] SeccompProfileError),
}

/// Which seccomp filter a container gets.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum SeccompChoice {
    /// Docker's default profile ([`seccomp::default_profile`]); none when privileged.
    #[default]
    Default,
    /// `seccomp=unconfined`: no filter.
    Unconfined,
    /// `seccomp=<file>`: the file's contents, a Docker-format profile
    /// (already validated by [`parse_security_opt`]).
    Profile(String),
}

/// Everything the security flags of `berth run` decide.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SecurityOptions {
    /// `--cap-add` / `--cap-drop`, as given (validated by [`SecurityOptions::from_flags`]).
    pub cap_add: Vec<String>,
    pub cap_drop: Vec<String>,
    pub privileged: bool,
    /// `--security-opt no-new-privileges`; off by default, as in Docker.
    pub no_new_privileges: bool,
    pub seccomp: SeccompChoice,
    /// `--read-only`: the root filesystem is mounted read-only (`--tmpfs`
    /// mounts, added by spec generation, stay writable).
    pub read_only: bool,
    /// `--security-opt systempaths=unconfined`: no masked or read-only paths.
    pub unmask_system_paths: bool,
    /// Accepted options that have no effect on this host, for the CLI to
    /// print as warnings (e.g. `label=disable` without SELinux labels).
    pub notes: Vec<String>,
}

impl SecurityOptions {
    /// Build and validate the options from `berth run` flags. Capabilities
    /// and the seccomp profile are checked here so a bad flag fails before
    /// the container is created.
    pub fn from_flags(
        cap_add: &[String],
        cap_drop: &[String],
        privileged: bool,
        read_only: bool,
        security_opt: &[String],
    ) -> Result<SecurityOptions, SecurityError> {
        let mut o = parse_security_opt(security_opt)?;
        capabilities::resolve(cap_add, cap_drop, privileged)?;
        o.cap_add = cap_add.to_vec();
        o.cap_drop = cap_drop.to_vec();
        o.privileged = privileged;
        o.read_only = read_only;
        Ok(o)
    }
}

impl SecurityOptions {
    /// The options recorded for a container (`berth run` flags as stored in
    /// its record), validated.
    pub fn from_host_config(
        hc: &crate::record::HostConfig,
    ) -> Result<SecurityOptions, SecurityError> {
        SecurityOptions::from_flags(
            &hc.cap_add,
            &hc.cap_drop,
            hc.privileged,
            hc.read_only,
            &hc.security_opt,
        )
    }
}

impl From<SecurityError> for crate::EngineError {
    fn from(e: SecurityError) -> Self {
        crate::EngineError::Invalid(e.to_string())
    }
}

/// Parse `--security-opt` values (Docker's syntax; `key:value` is Docker's
/// deprecated spelling of `key=value` and is accepted). Reads and validates a
/// `seccomp=<file>` profile.
pub fn parse_security_opt(opts: &[String]) -> Result<SecurityOptions, SecurityError> {
    let mut o = SecurityOptions::default();
    for opt in opts {
        let invalid = |reason: &str| SecurityError::InvalidOpt {
            opt: opt.clone(),
            reason: reason.to_string(),
        };
        let (key, value) = match opt.split_once('=').or_else(|| opt.split_once(':')) {
            Some((k, v)) => (k, Some(v)),
            None => (opt.as_str(), None),
        };
        match (key, value) {
            ("no-new-privileges", None) => o.no_new_privileges = true,
            ("no-new-privileges", Some(v)) => {
                o.no_new_privileges = parse_bool(v).ok_or_else(|| invalid("expected true or false"))?;
            }
            ("seccomp", Some("unconfined")) => o.seccomp = SeccompChoice::Unconfined,
            // Docker's name for its built-in profile.
            ("seccomp", Some("builtin")) => o.seccomp = SeccompChoice::Default,
            ("seccomp", Some("")) | ("seccomp", None) => {
                return Err(invalid("expected seccomp=unconfined or seccomp=<profile.json>"))
            }
            // The profile itself, inline: what the Docker CLI sends over the API
            // (it reads the file client-side) and what `inline_seccomp_files`
            // stores in a record.
            ("seccomp", Some(json)) if json.trim_start().starts_with('{') => {
                seccomp::from_docker_json(json, &[])?;
                o.seccomp = SeccompChoice::Profile(json.to_string());
            }
            ("seccomp", Some(path)) => {
                let path = PathBuf::from(path);
                let json = std::fs::read_to_string(&path)
                    .map_err(|source| SecurityError::ReadProfile { path: path.clone(), source })?;
                // Validate now; capabilities only select rules, they cannot make
                // a profile valid or invalid.
                seccomp::from_docker_json(&json, &[])
                    .map_err(|source| SecurityError::Profile { path: path.clone(), source })?;
                o.seccomp = SeccompChoice::Profile(json);
            }
            // Docker accepts a bare "disable" as label=disable.
            ("label", Some("disable")) | ("disable", None) => o.notes.push(
                "label=disable: berth does not apply SELinux labels to containers, nothing to disable".into(),
            ),
            ("label", Some(_)) => {
                return Err(invalid("SELinux labels are not supported by berth; only label=disable is accepted"))
            }
            ("apparmor", Some("unconfined")) => o.notes.push(
                "apparmor=unconfined: this kernel has no AppArmor, containers are never confined by it".into(),
            ),
            ("apparmor", Some(_)) => {
                return Err(invalid("this kernel has no AppArmor; only apparmor=unconfined is accepted"))
            }
            ("systempaths", Some("unconfined")) => o.unmask_system_paths = true,
            _ => {
                return Err(invalid(
                    "expected no-new-privileges[=true|false], seccomp=unconfined|<file>, \
                     label=disable, apparmor=unconfined or systempaths=unconfined",
                ))
            }
        }
    }
    Ok(o)
}

/// Replace each `seccomp=<file>` by `seccomp=<the file's JSON>`, as the
/// Docker CLI does before sending options to the daemon: store the result in
/// the container record so a later start does not depend on the file.
pub fn inline_seccomp_files(opts: &[String]) -> Result<Vec<String>, SecurityError> {
    let mut out = Vec::with_capacity(opts.len());
    for opt in opts {
        match opt.split_once('=').or_else(|| opt.split_once(':')) {
            Some(("seccomp", v))
                if !v.is_empty()
                    && v != "unconfined"
                    && v != "builtin"
                    && !v.trim_start().starts_with('{') =>
            {
                let path = PathBuf::from(v);
                let json = std::fs::read_to_string(&path).map_err(|source| {
                    SecurityError::ReadProfile {
                        path: path.clone(),
                        source,
                    }
                })?;
                seccomp::from_docker_json(&json, &[]).map_err(|source| SecurityError::Profile {
                    path: path.clone(),
                    source,
                })?;
                out.push(format!("seccomp={json}"));
            }
            _ => out.push(opt.clone()),
        }
    }
    Ok(out)
}

/// Go's strconv.ParseBool, which Docker uses for `no-new-privileges=<bool>`.
fn parse_bool(v: &str) -> Option<bool> {
    match v {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Some(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Some(false),
        _ => None,
    }
}

/// Write the security settings into a generated spec: process.capabilities,
/// process.noNewPrivileges, linux.seccomp, linux.maskedPaths,
/// linux.readonlyPaths and root.readonly. `uid_is_root`: the container
/// process runs as uid 0 (inside its user namespace, if any).
pub fn apply(
    spec: &mut Spec,
    opts: &SecurityOptions,
    uid_is_root: bool,
) -> Result<(), SecurityError> {
    let caps = capabilities::resolve(&opts.cap_add, &opts.cap_drop, opts.privileged)?;
    let mut masked = Vec::new();
    if !(opts.privileged || opts.unmask_system_paths) {
        masked = paths::masked_paths(false);
        masked.extend(paths::thermal_throttle_paths(std::path::Path::new("/sys")));
    }
    apply_resolved(
        spec,
        opts,
        uid_is_root,
        &caps,
        masked,
        &seccomp::Host::current(),
    )
}

/// [`apply`] with host facts given: the resolved capability set, the masked
/// paths, and the host the seccomp profile is resolved for (pure).
pub fn apply_resolved(
    spec: &mut Spec,
    opts: &SecurityOptions,
    uid_is_root: bool,
    caps: &[String],
    masked_paths: Vec<String>,
    host: &seccomp::Host,
) -> Result<(), SecurityError> {
    let seccomp = match &opts.seccomp {
        SeccompChoice::Unconfined => None,
        // Docker: privileged containers get no default filter...
        SeccompChoice::Default if opts.privileged => None,
        SeccompChoice::Default => Some(seccomp::default_profile(caps)),
        // ...but an explicitly requested profile is applied even to them.
        SeccompChoice::Profile(json) => Some(seccomp::from_docker_json_on(json, caps, host)?),
    };
    let readonly_paths = if opts.privileged || opts.unmask_system_paths {
        Vec::new()
    } else {
        paths::readonly_paths(false)
    };

    let process = spec.process_mut().get_or_insert_with(Process::default);
    process.set_capabilities(Some(capabilities::linux_capabilities(caps, uid_is_root)));
    process.set_no_new_privileges(Some(opts.no_new_privileges));
    // No AppArmor on this kernel; never ask the runtime for a profile.
    process.set_apparmor_profile(None);

    let linux = spec.linux_mut().get_or_insert_with(Linux::default);
    linux.set_seccomp(seccomp);
    linux.set_masked_paths(Some(masked_paths));
    linux.set_readonly_paths(Some(readonly_paths));

    let root = spec.root_mut().get_or_insert_with(Root::default);
    root.set_readonly(Some(opts.read_only));
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests: a panic is the failure report
mod tests {
    use super::*;
    use oci_spec::runtime::{LinuxSeccompAction, Spec};
    use std::io::Write;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    fn all_caps() -> Vec<String> {
        capabilities::KNOWN
            .iter()
            .map(|(n, _)| n.to_string())
            .collect()
    }

    fn host() -> seccomp::Host {
        seccomp::Host {
            arch: oci_spec::runtime::Arch::ScmpArchX86_64,
            filter_arch: "amd64",
            kernel: (6, 18),
        }
    }

    fn applied(opts: &SecurityOptions, root: bool) -> serde_json::Value {
        let caps =
            capabilities::resolve_in(&opts.cap_add, &opts.cap_drop, opts.privileged, &all_caps())
                .unwrap();
        let masked = if opts.privileged || opts.unmask_system_paths {
            vec![]
        } else {
            paths::masked_paths(false)
        };
        let mut spec = Spec::default();
        apply_resolved(&mut spec, opts, root, &caps, masked, &host()).unwrap();
        serde_json::to_value(&spec).unwrap()
    }

    fn sorted(v: &serde_json::Value) -> Vec<String> {
        let mut out: Vec<String> = v
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_str().unwrap().to_string())
            .collect();
        out.sort();
        out
    }

    #[test]
    fn parse_no_new_privileges_forms() {
        for (opt, want) in [
            ("no-new-privileges", true),
            ("no-new-privileges=true", true),
            ("no-new-privileges:true", true),
            ("no-new-privileges=1", true),
            ("no-new-privileges=false", false),
        ] {
            assert_eq!(
                parse_security_opt(&s(&[opt])).unwrap().no_new_privileges,
                want,
                "{opt}"
            );
        }
        let e = parse_security_opt(&s(&["no-new-privileges=maybe"])).unwrap_err();
        assert_eq!(
            e.to_string(),
            r#"invalid --security-opt "no-new-privileges=maybe": expected true or false"#
        );
        // Default is off, as in Docker.
        assert!(!parse_security_opt(&[]).unwrap().no_new_privileges);
    }

    #[test]
    fn parse_seccomp_forms() {
        assert_eq!(
            parse_security_opt(&s(&["seccomp=unconfined"]))
                .unwrap()
                .seccomp,
            SeccompChoice::Unconfined
        );
        assert_eq!(
            parse_security_opt(&s(&["seccomp:unconfined"]))
                .unwrap()
                .seccomp,
            SeccompChoice::Unconfined
        );
        assert_eq!(
            parse_security_opt(&[]).unwrap().seccomp,
            SeccompChoice::Default
        );

        let mut f = tempfile::NamedTempFile::new().unwrap();
        let json = r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["reboot"],"action":"SCMP_ACT_ERRNO"}]}"#;
        f.write_all(json.as_bytes()).unwrap();
        let opt = format!("seccomp={}", f.path().display());
        assert_eq!(
            parse_security_opt(&[opt]).unwrap().seccomp,
            SeccompChoice::Profile(json.into())
        );

        let mut bad = tempfile::NamedTempFile::new().unwrap();
        bad.write_all(br#"{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":["read","nosuchcall"],"action":"SCMP_ACT_ALLOW"}]}"#)
            .unwrap();
        let e = parse_security_opt(&[format!("seccomp={}", bad.path().display())])
            .unwrap_err()
            .to_string();
        assert!(e.contains(&bad.path().display().to_string()), "{e}");
        assert!(
            e.contains(r#"syscalls[0].names[1]: unknown syscall "nosuchcall""#),
            "{e}"
        );

        let e = parse_security_opt(&s(&["seccomp=/nonexistent/berth-profile.json"]))
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("read seccomp profile /nonexistent/berth-profile.json:"),
            "{e}"
        );
    }

    #[test]
    fn seccomp_files_are_inlined_for_the_record() {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        let json = r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["reboot"],"action":"SCMP_ACT_ERRNO"}]}"#;
        f.write_all(json.as_bytes()).unwrap();
        let opts = vec![
            format!("seccomp={}", f.path().display()),
            "no-new-privileges".to_string(),
            "seccomp=unconfined".to_string(),
        ];
        let inlined = inline_seccomp_files(&opts).unwrap();
        assert_eq!(inlined[0], format!("seccomp={json}"));
        assert_eq!(&inlined[1..], &opts[1..]);
        drop(f); // the file is gone; the record still parses
        let o = parse_security_opt(&inlined[..2]).unwrap();
        assert_eq!(o.seccomp, SeccompChoice::Profile(json.into()));
        assert!(o.no_new_privileges);
        // Inline JSON is validated too.
        let e = parse_security_opt(&s(&[
            r#"seccomp={"defaultAction":"SCMP_ACT_ERRNO","architectures":["SCMP_ARCH_Z80"]}"#,
        ]))
        .unwrap_err()
        .to_string();
        assert_eq!(
            e,
            r#"seccomp profile: architectures[0]: unknown architecture "SCMP_ARCH_Z80""#
        );
        assert!(inline_seccomp_files(&s(&["seccomp=/nonexistent/p.json"])).is_err());
    }

    #[test]
    fn parse_label_apparmor_and_unknown() {
        let o =
            parse_security_opt(&s(&["label=disable", "apparmor=unconfined", "disable"])).unwrap();
        assert_eq!(o.notes.len(), 3);
        let e = parse_security_opt(&s(&["apparmor=docker-default"]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("no AppArmor"), "{e}");
        let e = parse_security_opt(&s(&["label=type:svirt_lxc_net_t"]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("SELinux labels are not supported"), "{e}");
        for bad in ["bogus", "bogus=1", "seccomp", "seccomp="] {
            let e = parse_security_opt(&s(&[bad])).unwrap_err();
            assert!(matches!(e, SecurityError::InvalidOpt { .. }), "{bad}");
            assert!(e.to_string().contains(bad), "{e}");
        }
        assert!(
            parse_security_opt(&s(&["systempaths=unconfined"]))
                .unwrap()
                .unmask_system_paths
        );
    }

    #[test]
    fn from_flags_validates_capabilities() {
        let e = SecurityOptions::from_flags(&s(&["foo"]), &[], false, false, &[]).unwrap_err();
        assert_eq!(e.to_string(), r#"unknown capability: "CAP_FOO""#);
        let o = SecurityOptions::from_flags(
            &s(&["net_admin"]),
            &s(&["chown"]),
            false,
            true,
            &s(&["no-new-privileges"]),
        )
        .unwrap();
        assert_eq!(
            (o.read_only, o.no_new_privileges, o.cap_add.len()),
            (true, true, 1)
        );
    }

    #[test]
    fn golden_default_container() {
        let j = applied(&SecurityOptions::default(), true);
        let p = &j["process"];
        let mut want: Vec<String> = capabilities::DEFAULT
            .iter()
            .map(|c| c.to_string())
            .collect();
        want.sort();
        for set in ["bounding", "effective", "permitted"] {
            assert_eq!(sorted(&p["capabilities"][set]), want, "{set}");
        }
        assert_eq!(p["capabilities"]["inheritable"], serde_json::json!([]));
        assert_eq!(p["capabilities"]["ambient"], serde_json::json!([]));
        assert_eq!(p["noNewPrivileges"], false);
        assert!(p.get("apparmorProfile").is_none());
        let l = &j["linux"];
        assert_eq!(l["seccomp"]["defaultAction"], "SCMP_ACT_ERRNO");
        assert_eq!(l["seccomp"]["defaultErrnoRet"], 1);
        assert_eq!(
            l["seccomp"]["architectures"],
            serde_json::json!(["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"])
        );
        assert_eq!(l["maskedPaths"].as_array().unwrap().len(), 12);
        assert_eq!(
            l["readonlyPaths"],
            serde_json::json!([
                "/proc/bus",
                "/proc/fs",
                "/proc/irq",
                "/proc/sys",
                "/proc/sysrq-trigger"
            ])
        );
        assert_eq!(j["root"]["readonly"], false);
        // The whole seccomp section equals the data table's rendering.
        let caps: Vec<String> = want.clone();
        assert_eq!(
            l["seccomp"],
            serde_json::to_value(seccomp::default_profile(&caps)).unwrap()
        );
    }

    #[test]
    fn non_root_user_has_no_capabilities() {
        let j = applied(&SecurityOptions::default(), false);
        let c = &j["process"]["capabilities"];
        assert_eq!(c["bounding"].as_array().unwrap().len(), 14);
        for set in ["effective", "permitted", "inheritable", "ambient"] {
            assert_eq!(c[set], serde_json::json!([]), "{set}");
        }
    }

    #[test]
    fn cap_drop_all_and_no_new_privileges_and_read_only() {
        let o = SecurityOptions {
            cap_drop: s(&["ALL"]),
            no_new_privileges: true,
            read_only: true,
            ..Default::default()
        };
        let j = applied(&o, true);
        for set in ["bounding", "effective", "permitted"] {
            assert_eq!(
                j["process"]["capabilities"][set],
                serde_json::json!([]),
                "{set}"
            );
        }
        assert_eq!(j["process"]["noNewPrivileges"], true);
        assert_eq!(j["root"]["readonly"], true);
        // No capabilities: still the default profile, minus the cap-conditioned
        // chroot rule (CAP_SYS_CHROOT dropped).
        let sc = &j["linux"]["seccomp"]["syscalls"];
        assert!(!sc
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["names"] == serde_json::json!(["chroot"])));
    }

    #[test]
    fn privileged_gets_everything_and_no_confinement() {
        let o = SecurityOptions {
            privileged: true,
            ..Default::default()
        };
        let j = applied(&o, true);
        assert_eq!(
            j["process"]["capabilities"]["effective"]
                .as_array()
                .unwrap()
                .len(),
            41
        );
        assert!(j["linux"].get("seccomp").is_none());
        assert_eq!(j["linux"]["maskedPaths"], serde_json::json!([]));
        assert_eq!(j["linux"]["readonlyPaths"], serde_json::json!([]));
        // An explicit profile still applies to a privileged container.
        let o = SecurityOptions {
            privileged: true,
            seccomp: SeccompChoice::Profile(r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["reboot"],"action":"SCMP_ACT_ERRNO"}]}"#.into()),
            ..Default::default()
        };
        let j = applied(&o, true);
        assert_eq!(j["linux"]["seccomp"]["defaultAction"], "SCMP_ACT_ALLOW");
    }

    #[test]
    fn unconfined_and_systempaths() {
        let o = SecurityOptions {
            seccomp: SeccompChoice::Unconfined,
            unmask_system_paths: true,
            ..Default::default()
        };
        let j = applied(&o, true);
        assert!(j["linux"].get("seccomp").is_none());
        assert_eq!(j["linux"]["maskedPaths"], serde_json::json!([]));
        assert_eq!(j["linux"]["readonlyPaths"], serde_json::json!([]));
        // Capabilities are untouched by either.
        assert_eq!(
            j["process"]["capabilities"]["effective"]
                .as_array()
                .unwrap()
                .len(),
            14
        );
    }

    #[test]
    fn sys_admin_changes_the_seccomp_profile() {
        let o = SecurityOptions {
            cap_add: s(&["SYS_ADMIN"]),
            ..Default::default()
        };
        let caps = capabilities::resolve_in(&o.cap_add, &[], false, &all_caps()).unwrap();
        let mut spec = Spec::default();
        apply_resolved(&mut spec, &o, true, &caps, vec![], &host()).unwrap();
        let sc = spec.linux().as_ref().unwrap().seccomp().clone().unwrap();
        let mount_allowed = sc.syscalls().iter().flatten().any(|r| {
            r.action() == LinuxSeccompAction::ScmpActAllow && r.names().iter().any(|n| n == "mount")
        });
        assert!(mount_allowed);
    }

    #[test]
    fn apply_on_the_real_host() {
        // `apply` itself: resolves capabilities against this process.
        let mut spec = Spec::default();
        apply(&mut spec, &SecurityOptions::default(), true).unwrap();
        let linux = spec.linux().as_ref().unwrap();
        assert!(linux.seccomp().is_some());
        assert!(linux.masked_paths().as_ref().unwrap().len() >= 12);
        let e = apply(
            &mut spec,
            &SecurityOptions {
                cap_add: s(&["bogus"]),
                ..Default::default()
            },
            true,
        );
        assert!(matches!(e, Err(SecurityError::Capability(_))));
    }
}
