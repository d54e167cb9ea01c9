//! The crate's error: one variant per stage, plus output and internal failures.

use std::path::PathBuf;

use crate::exit;
use crate::fleet::QueueError;
use crate::ingest::validate::ValidationReport;
use crate::ingest::IngestError;
use crate::ladder::LadderError;
use crate::package::error::PackageError;
use crate::publish::{PublishError, StoreErrorKind};
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
    #[error(transparent)]
    Publish(#[from] PublishError),
    #[error(transparent)]
    Queue(#[from] QueueError),
    #[error(transparent)]
    Keys(#[from] crate::protect::KeyError),
    #[error("track {track:?}: the catalog rejected the notification (a 4xx other than 429; the package is published, and the same notification would be rejected again)")]
    CatalogRejected { track: String },
    /// The run was asked to stop (a worker's grace period ran out) before it finished.
    #[error("stopped before the run finished")]
    Stopped,
    #[error("{path:?}: {message} ({fix})")]
    Input {
        path: PathBuf,
        message: String,
        fix: &'static str,
    },
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

impl Error {
    /// Whether running the same job again may succeed (the worker retries these).
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Publish(e) => e.is_retryable(),
            Error::Queue(_) | Error::Stopped => true,
            Error::Keys(e) => e.is_retryable(),
            _ => matches!(
                self,
                Error::Output { .. }
                    | Error::Package(PackageError::Write { .. })
                    | Error::Ingest(IngestError::Io { .. })
            ),
        }
    }

    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Ladder(_) | Error::Ingest(_) | Error::Rejected(_) => exit::BAD_INPUT,
            Error::Input { .. } => exit::BAD_INPUT,
            Error::Publish(PublishError::Store(e)) => match e.kind {
                StoreErrorKind::Denied => exit::PERMISSION,
                StoreErrorKind::Local | StoreErrorKind::Integrity => exit::OUTPUT,
                StoreErrorKind::Unavailable
                | StoreErrorKind::NoSuchBucket
                | StoreErrorKind::Refused => exit::UNAVAILABLE,
            },
            Error::Publish(PublishError::Notify(_)) | Error::Queue(_) => exit::UNAVAILABLE,
            Error::Stopped => exit::TEMPFAIL,
            Error::Keys(e) => match e {
                crate::protect::KeyError::Unavailable { .. } => exit::UNAVAILABLE,
                crate::protect::KeyError::Refused { .. } => exit::PERMISSION,
                _ => exit::BAD_INPUT,
            },
            Error::CatalogRejected { .. } => exit::REJECTED,
            Error::Publish(PublishError::NotPublished { .. }) => exit::BAD_INPUT,
            Error::Output { .. } | Error::Package(PackageError::Write { .. }) => exit::OUTPUT,
            Error::Transcode(_) | Error::Package(_) | Error::Internal(_) => exit::INTERNAL,
        }
    }
}

impl From<crate::publish::StoreError> for Error {
    fn from(e: crate::publish::StoreError) -> Error {
        Error::Publish(PublishError::Store(e))
    }
}
