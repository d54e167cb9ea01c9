//! The `pressing` command line: parses arguments, wires the pipeline, prints.

mod cli;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use cli::print::{print_published, print_validation};
use cli::progress::{self, Progress, ProgressMode, Uploads};
use cli::stores::{PublishArgs, StoreArgs};
use pressing::error::exit;
use pressing::ingest::validate::ValidateOptions;
use pressing::ladder::Ladder;
use pressing::pipeline::{self, RunOptions};

#[derive(Parser)]
#[command(
    name = "pressing",
    version,
    about = "Masters in, gapless CMAF HLS + DASH ladders out"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Print errors only (no progress, no summary).
    #[arg(long, short, global = true, conflicts_with = "verbose")]
    quiet: bool,
    /// Print more detail (every rendition, every skipped rung, the store's settings).
    #[arg(long, short, global = true)]
    verbose: bool,
    /// How to show progress: bars on a terminal, lines otherwise (auto); JSON lines for
    /// machines (json), on standard error.
    #[arg(long, global = true, value_enum, default_value = "auto")]
    progress: ProgressMode,
}

#[derive(clap::Args)]
struct RunArgs {
    /// Master files or release folders (masters plus an optional release.json).
    #[arg(required = true)]
    inputs: Vec<PathBuf>,
    /// A built-in ladder (`pressing ladders` lists them) or a ladder file (path.toml).
    #[arg(long, default_value = "music")]
    ladder: String,
    /// Output folder (each track gets a sub-folder named after its id), or s3://bucket/prefix
    /// to encode into a local staging folder and publish from there.
    #[arg(long, default_value = "out")]
    out: String,
    /// The local staging folder for an s3:// output [default: under the user's cache folder].
    #[arg(long)]
    staging: Option<PathBuf>,
    /// Where to write the JSON report [default: <out>/report.json, or <staging>/report.json].
    #[arg(long)]
    report: Option<PathBuf>,
    /// Worker threads [default: every core].
    #[arg(long)]
    jobs: Option<usize>,
    /// Treat the inputs, in order, as one continuous programme (gapless album).
    #[arg(long)]
    gapless: bool,
    /// Also print the report on standard output.
    #[arg(long)]
    json: bool,
    /// Accept lossy masters (MP3, AAC, Vorbis, Opus) with a warning.
    #[arg(long)]
    allow_lossy: bool,
    #[command(flatten)]
    store: StoreArgs,
    #[command(flatten)]
    publish: PublishArgs,
}

#[derive(Subcommand)]
enum LaddersAction {
    /// Print a built-in ladder's TOML (save it, edit it, pass it with --ladder FILE.toml).
    Show { name: String },
}

#[derive(Subcommand)]
enum Command {
    /// Transcode and package masters (files or release folders) into HLS and DASH.
    Run(RunArgs),
    /// Check masters and release metadata and measure loudness, without encoding.
    Validate {
        /// Master files or release folders.
        #[arg(required = true)]
        inputs: Vec<PathBuf>,
        /// Release metadata to check against the inputs [default: each folder's release.json].
        #[arg(long)]
        metadata: Option<PathBuf>,
        /// Print the findings as JSON instead of the summary.
        #[arg(long)]
        json: bool,
        /// Accept lossy masters with a warning.
        #[arg(long)]
        allow_lossy: bool,
    },
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
    Publish {
        /// The folder `pressing run --out` wrote (it holds report.json).
        package: PathBuf,
        /// s3://bucket/prefix, or a local folder.
        destination: String,
        /// Also print the updated report on standard output.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        store: StoreArgs,
        #[command(flatten)]
        publish: PublishArgs,
    },
    /// Validate releases, upload them to the incoming store and queue them for the workers.
    Submit(cli::fleet::SubmitArgs),
    /// Take jobs from the queue: press, publish, notify; until SIGTERM.
    Worker(Box<cli::fleet::WorkerArgs>),
    /// Show jobs by id or release UPC (none: the dead-lettered jobs).
    Status(cli::fleet::StatusArgs),
    /// Take tracks down: entry manifests first, then every object, then notify the catalog.
    Unpublish {
        /// s3://bucket/prefix, or a local folder.
        destination: String,
        /// Track ids (the folder names: lowercased ISRCs or file names).
        #[arg(required = true)]
        tracks: Vec<String>,
        /// Where to send the `track.unpublished` notification.
        #[arg(long)]
        catalog_url: Option<String>,
        /// Print what was done as JSON on standard output.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        store: StoreArgs,
    },
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() {
                exit::USAGE
            } else {
                exit::OK
            };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    progress::init(cli.quiet, cli.verbose, cli.progress);
    match cli.command {
        Command::Run(args) => run(args),
        Command::Validate {
            inputs,
            metadata,
            json,
            allow_lossy,
        } => validate(inputs, metadata, json, allow_lossy),
        Command::Ladders { action } => ladders(action),
        Command::Completions { shell } => {
            use clap::CommandFactory;
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "pressing", &mut script);
            data_exit(script)
        }
        Command::Man => {
            use clap::CommandFactory;
            let mut page = Vec::new();
            match clap_mangen::Man::new(Cli::command()).render(&mut page) {
                Ok(()) => data_exit(page),
                Err(e) => {
                    progress::error(format!("cannot write the man page: {e}"));
                    ExitCode::from(exit::OUTPUT)
                }
            }
        }
        Command::Publish {
            package,
            destination,
            json,
            store,
            publish,
        } => publish_package(&package, &destination, json, &store, &publish),
        Command::Submit(args) => cli::fleet::submit(args),
        Command::Worker(args) => cli::fleet::worker(*args),
        Command::Status(args) => cli::fleet::status(args),
        Command::Unpublish {
            destination,
            tracks,
            catalog_url,
            json,
            store,
        } => unpublish(&destination, &tracks, catalog_url.as_deref(), json, &store),
    }
}

/// Pretty JSON on standard output.
fn json_out(v: &impl serde::Serialize) {
    let text = serde_json::to_string_pretty(v).expect("JSON serialises");
    progress::data(format!("{text}\n"));
}

/// Data on standard output as the whole of a command's work: its exit code.
fn data_exit(bytes: impl AsRef<[u8]>) -> ExitCode {
    if progress::data(bytes) {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(exit::OUTPUT)
    }
}

fn validate(
    inputs: Vec<PathBuf>,
    metadata: Option<PathBuf>,
    json: bool,
    allow_lossy: bool,
) -> ExitCode {
    let opts = ValidateOptions {
        allow_lossy,
        all_gapless: false,
        metadata,
        writes_output: false,
        measured: None,
    };
    let (_, report) = pressing::ingest::validate::validate(&inputs, opts);
    if json {
        json_out(&report);
    } else {
        print_validation(&report);
    }
    if report.has_errors() {
        ExitCode::from(exit::BAD_INPUT)
    } else {
        ExitCode::SUCCESS
    }
}

fn run(args: RunArgs) -> ExitCode {
    let RunArgs {
        inputs,
        ladder,
        out,
        staging,
        report: report_path,
        jobs,
        gapless,
        json,
        allow_lossy,
        store,
        publish,
    } = args;
    if jobs == Some(0) {
        progress::error("--jobs 0 (expected at least 1 thread)");
        return ExitCode::from(exit::USAGE);
    }
    let ladder = match Ladder::load(&ladder) {
        Ok(l) => l,
        Err(e) => return fail(&pressing::Error::from(e)),
    };
    // An s3:// output is encoded into a local staging folder, then published from it.
    let remote = cli::stores::is_remote(&out);
    let local = match (&staging, remote) {
        (Some(dir), true) => dir.clone(),
        (None, true) => cli::stores::default_staging(&out),
        (_, false) => PathBuf::from(&out),
    };
    // Wire the store and the catalog before encoding: a bad flag fails in a second, not after.
    let target = if remote {
        match (cli::stores::open(&out, &store), publish.notifier()) {
            (Ok(s), Ok(n)) => Some((s, n)),
            (Err(code), _) | (_, Err(code)) => return ExitCode::from(code),
        }
    } else {
        None
    };
    let opts = RunOptions {
        inputs,
        ladder,
        out: local.clone(),
        jobs,
        gapless,
        allow_lossy,
        measured: None,
    };
    let report = match pipeline::run(&opts, &Progress::new()) {
        Ok(r) => r,
        Err(pressing::Error::Rejected(validation)) => {
            print_validation(&validation);
            return ExitCode::from(exit::BAD_INPUT);
        }
        Err(e) => return fail(&e),
    };
    for w in &report.warnings {
        progress::info(w.to_string());
    }
    let text = serde_json::to_string_pretty(&report).expect("the report serialises");
    let in_package = local.join(pressing::layout::REPORT);
    if let Err(e) = std::fs::write(&in_package, format!("{text}\n")) {
        progress::error(format!("cannot write report {in_package:?}: {e}"));
        return ExitCode::from(exit::OUTPUT);
    }
    let renditions: usize = report.tracks.iter().map(|t| t.renditions.len()).sum();
    progress::info(format!(
        "pressed {} track(s), {} rendition(s), {} rung(s) skipped -> {} ({:.1} s, {:.0}x realtime)",
        report.tracks.len(),
        renditions,
        report.skipped.len(),
        local.display(),
        report.stats.wall_seconds,
        report.stats.realtime_factor,
    ));
    for s in &report.skipped {
        progress::info(format!(
            "  skipped {} for {}: {}",
            s.rung, s.track, s.reason
        ));
    }
    for t in &report.tracks {
        for r in &t.renditions {
            progress::detail(format!(
                "  {}/{}: {} {} Hz {} ch, {} kbit/s average, {} segments",
                t.id,
                r.id,
                r.codecs,
                r.sample_rate,
                r.channels,
                r.average_bandwidth / 1000,
                r.segments
            ));
        }
    }
    let (value, code) = match target {
        None => (
            serde_json::to_value(&report).expect("the report serialises"),
            ExitCode::SUCCESS,
        ),
        Some((store, notifier)) => {
            let opts = publish.options();
            match pipeline::publish(&local, &*store, &*notifier, &opts, &Uploads::new()) {
                Ok(v) => {
                    let code = print_published(&v);
                    // Published: the staging copy of the tracks is no longer needed (the report,
                    // with each track's publish entry, stays).
                    if staging.is_none() {
                        for t in &report.tracks {
                            let _ = std::fs::remove_dir_all(local.join(&t.id));
                        }
                    }
                    (v, code)
                }
                Err(e) => {
                    progress::error(e.to_string());
                    progress::info(format!(
                        "the package is kept in {}: `pressing publish {} {out}` finishes the job",
                        local.display(),
                        local.display()
                    ));
                    return ExitCode::from(e.exit_code());
                }
            }
        }
    };
    let text = serde_json::to_string_pretty(&value).expect("the report serialises");
    if let Some(path) = &report_path {
        if let Err(e) = std::fs::write(path, format!("{text}\n")) {
            progress::error(format!("cannot write report {path:?}: {e}"));
            return ExitCode::from(exit::OUTPUT);
        }
    }
    progress::info(format!(
        "report: {}",
        report_path.as_ref().unwrap_or(&in_package).display()
    ));
    if json {
        progress::data(format!("{text}\n"));
    }
    code
}

fn publish_package(
    package: &std::path::Path,
    destination: &str,
    json: bool,
    store: &StoreArgs,
    publish: &PublishArgs,
) -> ExitCode {
    let (store, notifier) = match (cli::stores::open(destination, store), publish.notifier()) {
        (Ok(s), Ok(n)) => (s, n),
        (Err(code), _) | (_, Err(code)) => return ExitCode::from(code),
    };
    match pipeline::publish(
        package,
        &*store,
        &*notifier,
        &publish.options(),
        &Uploads::new(),
    ) {
        Ok(v) => {
            let code = print_published(&v);
            if json {
                json_out(&v);
            }
            code
        }
        Err(e) => fail(&e),
    }
}

fn unpublish(
    destination: &str,
    tracks: &[String],
    catalog_url: Option<&str>,
    json: bool,
    store: &StoreArgs,
) -> ExitCode {
    let publish = PublishArgs {
        catalog_url: catalog_url.map(str::to_string),
        ..PublishArgs::default()
    };
    let (store, notifier) = match (cli::stores::open(destination, store), publish.notifier()) {
        (Ok(s), Ok(n)) => (s, n),
        (Err(code), _) | (_, Err(code)) => return ExitCode::from(code),
    };
    let done = match pipeline::unpublish(tracks, &*store, &*notifier) {
        Ok(d) => d,
        Err(e) => return fail(&e),
    };
    let mut rejected = false;
    for (track, r) in &done {
        match r {
            Some(r) => {
                rejected |= r.notification.status == pressing::publish::DeliveryStatus::Rejected;
                progress::info(format!(
                    "unpublished {track} from {}: {} object(s) deleted; catalog: {:?}",
                    r.destination, r.deleted, r.notification.status
                ));
            }
            None => progress::warning(format!(
                "{track}: nothing under {} (already unpublished, or never published)",
                store.destination()
            )),
        }
    }
    if json {
        let v: Vec<_> = done
            .iter()
            .map(|(t, r)| serde_json::json!({ "track": t, "unpublish": r }))
            .collect();
        json_out(&v);
    }
    if rejected {
        ExitCode::from(exit::REJECTED)
    } else {
        ExitCode::SUCCESS
    }
}

fn ladders(action: Option<LaddersAction>) -> ExitCode {
    match action {
        None => {
            let list: String = pressing::ladder::BUILTIN
                .iter()
                .map(|(name, about, _)| format!("{name:<8} {about}\n"))
                .collect();
            data_exit(list)
        }
        Some(LaddersAction::Show { name }) => match Ladder::builtin_text(&name) {
            Some(text) => data_exit(text),
            None => fail(&pressing::Error::from(
                pressing::ladder::LadderError::Unknown {
                    known: pressing::ladder::BUILTIN
                        .iter()
                        .map(|b| b.0)
                        .collect::<Vec<_>>()
                        .join(", "),
                    name,
                },
            )),
        },
    }
}

fn fail(e: &pressing::Error) -> ExitCode {
    progress::error(e.to_string());
    ExitCode::from(e.exit_code())
}
