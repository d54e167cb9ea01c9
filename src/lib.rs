//! pressing: turns a record label's audio masters into gapless, sample-accurate CMAF streams
//! with HLS and DASH manifests.
//!
//! Stages, each taking the previous stage's output: [`ingest`] -> [`transcode`] -> [`package`]
//! (+ [`manifest`]); [`pipeline`] orders them. The CLI is a thin shell over [`pipeline::run`].
#![deny(unsafe_code)]

// Always built: what reads and checks a delivery (masters, metadata, DDEX, ladders, CPIX).
pub mod dirs;
pub mod exit;
pub mod ingest;
pub mod ladder;
pub mod layout;
pub mod limits;
pub mod protect;

// The encoding pipeline and what it feeds (feature `press`, on by default).
#[cfg(feature = "press")]
pub mod catalog;
#[cfg(feature = "press")]
pub mod error;
#[cfg(feature = "press")]
pub mod fleet;
#[cfg(feature = "press")]
pub mod manifest;
#[cfg(feature = "press")]
pub mod package;
#[cfg(feature = "press")]
pub mod pipeline;
#[cfg(feature = "press")]
pub mod publish;
#[cfg(feature = "press")]
pub mod qc;
#[cfg(feature = "press")]
pub mod report;
#[cfg(feature = "press")]
pub mod stats;
#[cfg(feature = "press")]
pub mod transcode;

#[cfg(feature = "press")]
pub use error::Error;
