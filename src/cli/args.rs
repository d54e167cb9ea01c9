//! The command line's arguments (clap): every command and flag, and nothing else.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use super::progress::ProgressMode;
use super::stores::{PublishArgs, StoreArgs};

#[derive(Parser)]
#[command(
    name = "pressing",
    version,
    about = "Masters in, gapless CMAF HLS + DASH ladders out"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    /// Print errors only (no progress, no summary).
    #[arg(long, short, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
    /// Print more detail (every rendition, every skipped rung, the store's settings).
    #[arg(long, short, global = true)]
    pub verbose: bool,
    /// How to show progress: bars on a terminal, lines otherwise (auto); JSON lines for
    /// machines (json), on standard error.
    #[arg(long, global = true, value_enum, default_value = "auto")]
    pub progress: ProgressMode,
}

#[derive(clap::Args)]
pub struct RunArgs {
    /// Master files or release folders (masters plus an optional release.json).
    #[arg(required = true)]
    pub inputs: Vec<PathBuf>,
    /// A built-in ladder (`pressing ladders` lists them) or a ladder file (path.toml).
    #[arg(long, default_value = "music")]
    pub ladder: String,
    /// Output folder (each track gets a sub-folder named after its id), or s3://bucket/prefix
    /// to encode into a local staging folder and publish from there.
    #[arg(long, default_value = "out")]
    pub out: String,
    /// The local staging folder for an s3:// output [default: under the user's cache folder].
    #[arg(long)]
    pub staging: Option<PathBuf>,
    /// Write the run's report (the package index, timing and, for an s3:// output, each
    /// track's publication) here, and nowhere else.
    #[arg(long)]
    pub report: Option<PathBuf>,
    /// Worker threads [default: every core].
    #[arg(long)]
    pub jobs: Option<usize>,
    /// Treat the inputs, in order, as one continuous programme (gapless album).
    #[arg(long)]
    pub gapless: bool,
    /// One CMAF track file per rendition, addressed by byte ranges, instead of segment files
    /// (the ladder's `single_file = true`).
    #[arg(long)]
    pub single_file: bool,
    /// Print the run's report on standard output (instead of the catalog records' paths).
    #[arg(long)]
    pub json: bool,
    /// Accept lossy masters (MP3, AAC, Vorbis, Opus) with a warning.
    #[arg(long)]
    pub allow_lossy: bool,
    /// Write the QC page, OUT/qc.html: waveform, loudness, spectrograms, bit rates, findings
    /// and each rendition's fingerprint similarity, per track.
    #[arg(long)]
    pub qc: bool,
    /// Score every lossy rendition against its master: ViSQOL v3 in audio mode (MOS-LQO, 1 to
    /// 4.75) on up to three 4-second windows, in the report and the catalog records. Costs CPU
    /// (BENCHMARKS.md); a ladder with prune_quality_margin is always scored.
    #[arg(long)]
    pub quality: bool,
    #[command(flatten)]
    pub keys: KeyArgs,
    #[command(flatten)]
    pub store: StoreArgs,
    #[command(flatten)]
    pub publish: PublishArgs,
}

/// Content protection: where the keys come from, and the scheme.
#[derive(clap::Args, Default)]
pub struct KeyArgs {
    /// Encrypt tier TIER of every track with this key (32 hex digits each): TIER=KID:KEY,
    /// repeatable. For tests and quick use; keep real keys in a CPIX document or a key server.
    #[arg(long = "key", value_name = "TIER=KID:KEY", conflicts_with = "cpix")]
    pub raw: Vec<String>,
    /// A DASH-IF CPIX document with the keys of the ladder's protected tiers (see the
    /// README: a ContentKeyUsageRule per tier, optionally per track).
    #[arg(long, value_name = "FILE", conflicts_with = "key_server")]
    pub cpix: Option<PathBuf>,
    /// A key server to ask for each track's keys: a CPIX endpoint in the SPEKE v2 shape
    /// (https://...), as the worker's --key-server.
    #[arg(long, value_name = "URL", conflicts_with = "raw")]
    pub key_server: Option<String>,
    /// Extra root certificates (PEM) to trust for the key server (a private CA).
    #[arg(long, value_name = "FILE", requires = "key_server")]
    pub key_server_ca: Option<PathBuf>,
    /// The Common Encryption scheme: cbcs (every DRM system) or cenc [default: the ladder's
    /// `[protection] scheme`, else cbcs].
    #[arg(long, value_parser = ["cbcs", "cenc"])]
    pub scheme: Option<String>,
}

#[derive(Subcommand)]
pub enum LaddersAction {
    /// Print a built-in ladder's TOML (save it, edit it, pass it with --ladder FILE.toml).
    Show { name: String },
}

#[derive(Subcommand)]
pub enum Command {
    /// Transcode and package masters (files or release folders) into HLS and DASH.
    Run(RunArgs),
    /// Check masters and release metadata and measure loudness, without encoding.
    Validate(ValidateArgs),
    /// List the built-in ladders, or print one (`pressing ladders show music`) to start your own.
    Ladders {
        #[command(subcommand)]
        action: Option<LaddersAction>,
    },
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions { shell: clap_complete::Shell },
    /// Print the man page (roff): `pressing man > pressing.1`.
    Man,
    /// Publish a package folder (written by `run`) to a store, then notify the catalog.
    Publish(PublishCmdArgs),
    /// Validate releases, upload them to the incoming store and queue them for the workers.
    Submit(super::fleet::SubmitArgs),
    /// Take jobs from the queue: press, publish, notify; until SIGTERM.
    Worker(Box<super::fleet::WorkerArgs>),
    /// Show jobs by id or release UPC (none: the dead-lettered jobs).
    Status(super::fleet::StatusArgs),
    /// Take tracks down: entry manifests first, then every object, then notify the catalog.
    Unpublish(UnpublishArgs),
    /// Write the QC page (DIR/qc.html) of a package folder written by `run`, without encoding.
    Qc {
        /// The package folder (holding index.json).
        dir: PathBuf,
    },
}

#[derive(clap::Args)]
pub struct ValidateArgs {
    /// Master files or release folders.
    #[arg(required = true)]
    pub inputs: Vec<PathBuf>,
    /// Release metadata to check against the inputs [default: each folder's release.json].
    #[arg(long)]
    pub metadata: Option<PathBuf>,
    /// Print the findings as JSON instead of the summary.
    #[arg(long)]
    pub json: bool,
    /// Accept lossy masters with a warning.
    #[arg(long)]
    pub allow_lossy: bool,
    /// The ladder `run` will use: its `[cover] min_size` is the cover's floor.
    #[arg(long, default_value = "music")]
    pub ladder: String,
}

#[derive(clap::Args)]
pub struct PublishCmdArgs {
    /// The folder `pressing run --out` wrote (it holds index.json).
    pub package: PathBuf,
    /// s3://bucket/prefix, or a local folder.
    pub destination: String,
    /// Write the publication's report (the index with each track's `publish`) here.
    #[arg(long)]
    pub report: Option<PathBuf>,
    /// Also print that report on standard output (instead of the catalog records' URLs).
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub store: StoreArgs,
    #[command(flatten)]
    pub publish: PublishArgs,
}

#[derive(clap::Args)]
pub struct UnpublishArgs {
    /// s3://bucket/prefix, or a local folder.
    pub destination: String,
    /// Track ids (the folder names: lowercased ISRCs or file names).
    #[arg(required_unless_present = "ddex", conflicts_with = "ddex")]
    pub tracks: Vec<String>,
    /// A DDEX ERN 4.3 PurgeReleaseMessage, or a NewReleaseMessage whose deals allow no tier
    /// today: take down every track of the release it names (the store's release index lists
    /// them).
    #[arg(long, value_name = "MESSAGE")]
    pub ddex: Option<PathBuf>,
    /// The ladder whose `[deals]` decide which tiers a NewReleaseMessage allows.
    #[arg(long, default_value = "music")]
    pub ladder: String,
    /// Where to send the `track.unpublished` notification.
    #[arg(long)]
    pub catalog_url: Option<String>,
    /// Print what was done as JSON on standard output.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub store: StoreArgs,
}
