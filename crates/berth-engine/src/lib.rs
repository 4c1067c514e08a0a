//! berth-engine: containers, volumes and their lifecycle, daemonless.
//!
//! Every `berth` command opens the [`Engine`], acts on records under its root
//! and exits; there is no daemon. A running container's only companion is its
//! monitor (`berth-monitor`), which execs `berth container cleanup ID` when the
//! container exits — that is where exit codes, OOM kills, `--rm` and restart
//! policies are handled, whether or not any CLI is still around.
//!
//! Modules: [`root`] (layout, locks, atomic writes), [`record`] (container
//! records), [`parse`] (Docker flag syntaxes), [`spec`] (pure OCI spec
//! generation), [`security`] (Docker's default capabilities, seccomp profile,
//! masked paths), [`runtime`] (exec of the OCI runtime), [`lifecycle`]
//! (create/start/stop/kill/rm/cleanup), [`volume`], [`logs`], [`events`],
//! [`names`], [`time`].

pub mod events;
pub mod lifecycle;
pub mod logs;
pub mod names;
pub mod network;
pub mod parse;
pub mod record;
pub mod root;
pub mod runtime;
pub mod security;
pub mod spec;
pub mod time;
pub mod users;
pub mod volume;

pub use lifecycle::Engine;

use std::io;

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("{0}")]
    Invalid(String),
    #[error("no such container: {0}")]
    NoSuchContainer(String),
    #[error("no such volume: {0}")]
    NoSuchVolume(String),
    #[error("Conflict. The container name \"/{name}\" is already in use by container \"{id}\". You have to remove (or rename) that container to be able to reuse that name.")]
    NameInUse { name: String, id: String },
    #[error("{0}")]
    Conflict(String),
    #[error("image: {0}")]
    Image(String),
    #[error("network: {0}")]
    Network(String),
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: io::Error,
    },
    #[error("runtime {op}: {message}")]
    Runtime { op: String, message: String },
    /// The container's process could not be started: exit 126/127 as docker.
    #[error("{message}")]
    Exec { code: i32, message: String },
}

impl EngineError {
    pub fn io(what: impl Into<String>, source: io::Error) -> EngineError {
        EngineError::Io {
            what: what.into(),
            source,
        }
    }

    /// Docker's CLI exit code for this error: 125 for berth's own errors, 126
    /// for a command that cannot be executed, 127 for one that is not found.
    pub fn exit_code(&self) -> i32 {
        match self {
            EngineError::Exec { code, .. } => *code,
            _ => 125,
        }
    }
}
