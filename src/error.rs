//! The crate's error: one variant per stage, plus output and internal failures.

use std::path::PathBuf;

use crate::ingest::validate::ValidationReport;
use crate::ingest::IngestError;
use crate::ladder::LadderError;
use crate::package::PackageError;
use crate::transcode::TranscodeError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Ladder(#[from] LadderError),
    #[error(transparent)]
    Ingest(#[from] IngestError),
    #[error(transparent)]
    Transcode(#[from] TranscodeError),
    #[error(transparent)]
    Package(#[from] PackageError),
    #[error("cannot write {path:?}: {source}")]
    Output {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("release refused: {} error(s), {} warning(s) in ingest", .0.errors, .0.warnings)]
    Rejected(Box<ValidationReport>),
    #[error("internal error: {0}")]
    Internal(String),
}

/// Process exit statuses (sysexits.h), documented in the README.
pub mod exit {
    pub const OK: u8 = 0;
    /// Command-line usage error.
    pub const USAGE: u8 = 64;
    /// Bad input: a master, the ladder or the release metadata.
    pub const BAD_INPUT: u8 = 65;
    /// Internal failure: an encoder or the pipeline itself.
    pub const INTERNAL: u8 = 70;
    /// Cannot write the output.
    pub const OUTPUT: u8 = 74;
}

impl Error {
    /// Whether running the same job again may succeed (the worker retries these).
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            Error::Output { .. }
                | Error::Package(PackageError::Write { .. })
                | Error::Ingest(IngestError::Io { .. })
        )
    }

    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Ladder(_) | Error::Ingest(_) | Error::Rejected(_) => exit::BAD_INPUT,
            Error::Output { .. } | Error::Package(PackageError::Write { .. }) => exit::OUTPUT,
            Error::Transcode(_) | Error::Package(_) | Error::Internal(_) => exit::INTERNAL,
        }
    }
}
