//! berth-build: Dockerfiles into OCI images in berth's store, with a layer cache
//! that says why it missed.
//!
//! Modules: [`dockerfile`] (syntax → instructions, Docker's variable
//! substitution, `.dockerignore`, the primer's lints), [`context`] (the build
//! context, COPY sources, content hashes), [`cache`] (step → image, and the
//! explanations), [`fsutil`] (copies that never leave either tree), [`exec`] (a
//! step's overlay and the RUN container), [`builder`] (the stages and their
//! instructions, Docker's semantics).
//!
//! Public API: [`builder::build`] with [`builder::BuildOptions`] → [`builder::BuildOutcome`];
//! [`builder::prune`] for `berth builder prune`; [`BuildError`].

pub mod builder;
pub mod cache;
pub mod context;
pub mod dockerfile;
pub mod exec;
pub mod fsutil;

pub use builder::{build, prune, BuildOptions, BuildOutcome, ContextSource};

use std::io;

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("{0}")]
    Parse(#[from] dockerfile::ParseError),
    /// A RUN whose command failed: Docker's wording, exit code kept.
    #[error("the command '{command}' returned a non-zero code: {code}")]
    RunFailed { command: String, code: i32 },
    /// A step that could not be carried out (bad source, unknown stage, ...).
    #[error("{0}")]
    Step(String),
    #[error("{0}")]
    Invalid(String),
    #[error("image: {0}")]
    Image(String),
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: io::Error,
    },
}

impl BuildError {
    pub fn io(what: impl Into<String>, source: io::Error) -> BuildError {
        BuildError::Io {
            what: what.into(),
            source,
        }
    }
}
