//! pressing: turns a record label's audio masters into gapless, sample-accurate CMAF streams
//! with HLS and DASH manifests.
//!
//! Stages, each taking the previous stage's output: [`ingest`] -> [`transcode`] -> [`package`]
//! (+ [`manifest`]); [`pipeline`] orders them. The CLI is a thin shell over [`pipeline::run`].
#![deny(unsafe_code)]

pub mod catalog;
pub mod dirs;
pub mod error;
pub mod exit;
pub mod fleet;
pub mod ingest;
pub mod ladder;
pub mod layout;
pub mod limits;
pub mod manifest;
pub mod package;
pub mod pipeline;
pub mod protect;
pub mod publish;
pub mod report;
pub mod stats;
pub mod transcode;

pub use error::Error;
