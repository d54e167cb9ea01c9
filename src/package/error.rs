//! The package stage's error: its own file, so that the crate's `Error` can wrap it without
//! depending on the packager (which depends on the transcode engine, which returns `Error`).

use std::io;
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum PackageError {
    #[error("cannot write {path:?}: {source}")]
    Write { path: PathBuf, source: io::Error },
    #[error("rendition {rendition:?}: encoder produced {media} samples, fewer than priming {priming} + presented {presented}")]
    ShortStream {
        rendition: String,
        media: u64,
        priming: u32,
        presented: u64,
    },
}
