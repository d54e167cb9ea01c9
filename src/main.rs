//! The `pressing` command line: parses arguments, wires the pipeline, prints.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Mutex;

use clap::{Parser, Subcommand};
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};

use pressing::error::exit;
use pressing::ingest::validate::{ValidateOptions, ValidationReport};
use pressing::ladder::Ladder;
use pressing::pipeline::{self, ProgressSink, RunOptions};

#[derive(Parser)]
#[command(
    name = "pressing",
    version,
    about = "Masters in, gapless CMAF HLS + DASH ladders out"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Args)]
struct RunArgs {
    /// Master files or release folders (masters plus an optional release.json).
    #[arg(required = true)]
    inputs: Vec<PathBuf>,
    /// Ladder file.
    #[arg(long, default_value = "ladders/music.toml")]
    ladder: PathBuf,
    /// Output folder; each track gets a sub-folder named after its id.
    #[arg(long, default_value = "out")]
    out: PathBuf,
    /// Where to write the JSON report [default: <out>/report.json].
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
    match cli.command {
        Command::Run(args) => run(args),
        Command::Validate {
            inputs,
            metadata,
            json,
            allow_lossy,
        } => validate(inputs, metadata, json, allow_lossy),
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
    };
    let (_, report) = pressing::ingest::validate::validate(&inputs, opts);
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report).expect("the report serialises")
        );
    } else {
        print_validation(&report);
    }
    if report.has_errors() {
        ExitCode::from(exit::BAD_INPUT)
    } else {
        ExitCode::SUCCESS
    }
}

/// The human summary: one line per track, then every finding with its fix.
fn print_validation(report: &ValidationReport) {
    for t in &report.tracks {
        let errors = report
            .findings
            .iter()
            .filter(|f| f.is_error() && f.file == t.file)
            .count();
        let mark = if errors > 0 { "FAIL" } else { "ok  " };
        let format = match (t.sample_rate, t.channels, t.bits_per_sample) {
            (Some(r), Some(c), Some(b)) => format!("{r} Hz {c} ch {b}-bit"),
            _ => "unreadable".into(),
        };
        let loud = t.loudness.as_ref().map_or(String::new(), |l| {
            format!(
                "  {}  LRA {:.1} LU  TP {:+.1} dBTP",
                l.integrated_lufs
                    .map_or("silent".into(), |i| format!("{i:.1} LUFS")),
                l.loudness_range_lu,
                l.true_peak_dbtp
            )
        });
        eprintln!("{mark} {:<16} {}  {format}{loud}", t.id, t.file);
    }
    for a in &report.albums {
        if let Some(l) = &a.loudness {
            if let Some(i) = l.integrated_lufs {
                eprintln!(
                    "album {}: {i:.1} LUFS, LRA {:.1} LU, TP {:+.1} dBTP, album gain {:+.1} dB",
                    a.source,
                    l.loudness_range_lu,
                    l.true_peak_dbtp,
                    l.replaygain_db.unwrap_or(0.0)
                );
            }
        }
    }
    let mut findings: Vec<_> = report.findings.iter().collect();
    findings.sort_by_key(|f| std::cmp::Reverse(f.severity));
    for f in findings {
        eprintln!("{f}");
    }
    eprintln!(
        "{} error(s), {} warning(s): {}",
        report.errors,
        report.warnings,
        if report.has_errors() {
            "refused (fix the errors and validate again)"
        } else {
            "ready to press"
        }
    );
}

fn run(args: RunArgs) -> ExitCode {
    let RunArgs {
        inputs,
        ladder,
        out,
        report: report_path,
        jobs,
        gapless,
        json,
        allow_lossy,
    } = args;
    if jobs == Some(0) {
        eprintln!("error: --jobs 0 (expected at least 1 thread)");
        return ExitCode::from(exit::USAGE);
    }
    let ladder = match Ladder::from_path(&ladder) {
        Ok(l) => l,
        Err(e) => return fail(&pressing::Error::from(e)),
    };
    let opts = RunOptions {
        inputs,
        ladder,
        out: out.clone(),
        jobs,
        gapless,
        allow_lossy,
    };
    let progress = Progress::new();
    let report = match pipeline::run(&opts, &progress) {
        Ok(r) => r,
        Err(pressing::Error::Rejected(validation)) => {
            print_validation(&validation);
            return ExitCode::from(exit::BAD_INPUT);
        }
        Err(e) => return fail(&e),
    };
    for w in &report.warnings {
        eprintln!("{w}");
    }
    let text = serde_json::to_string_pretty(&report).expect("the report serialises");
    let report_path = report_path.unwrap_or_else(|| out.join("report.json"));
    if let Err(e) = std::fs::write(&report_path, format!("{text}\n")) {
        eprintln!("error: cannot write report {report_path:?}: {e}");
        return ExitCode::from(exit::OUTPUT);
    }
    if json {
        println!("{text}");
    }
    let renditions: usize = report.tracks.iter().map(|t| t.renditions.len()).sum();
    eprintln!(
        "pressed {} track(s), {} rendition(s), {} rung(s) skipped -> {} (report: {})",
        report.tracks.len(),
        renditions,
        report.skipped.len(),
        out.display(),
        report_path.display()
    );
    for s in &report.skipped {
        eprintln!("  skipped {} for {}: {}", s.rung, s.track, s.reason);
    }
    ExitCode::SUCCESS
}

fn fail(e: &pressing::Error) -> ExitCode {
    eprintln!("error: {e}");
    ExitCode::from(e.exit_code())
}

/// Bars on a terminal; one line per finished track otherwise.
struct Progress {
    bars: Option<(MultiProgress, Mutex<Vec<TrackBar>>)>,
}

type TrackBar = (String, ProgressBar);

impl Progress {
    fn new() -> Progress {
        let bars = std::io::stderr()
            .is_terminal()
            .then(|| (MultiProgress::new(), Mutex::new(Vec::new())));
        Progress { bars }
    }

    fn bar(&self, track: &str) -> Option<ProgressBar> {
        let (_, bars) = self.bars.as_ref()?;
        let bars = bars.lock().ok()?;
        bars.iter()
            .find(|(t, _)| t == track)
            .map(|(_, b)| b.clone())
    }
}

impl ProgressSink for Progress {
    fn track_started(&self, track: &str, total_frames: Option<u64>) {
        let Some((multi, bars)) = &self.bars else {
            return;
        };
        let bar = multi.add(ProgressBar::new(total_frames.unwrap_or(0)));
        bar.set_style(
            ProgressStyle::with_template("{prefix:>24} [{bar:40}] {percent:>3}% {elapsed}")
                .expect("static template")
                .progress_chars("=> "),
        );
        bar.set_prefix(track.to_string());
        if let Ok(mut b) = bars.lock() {
            b.push((track.to_string(), bar));
        }
    }

    fn track_advanced(&self, track: &str, frames: u64) {
        if let Some(bar) = self.bar(track) {
            bar.set_position(frames);
        }
    }

    fn track_finished(&self, track: &str) {
        match self.bar(track) {
            Some(bar) => bar.finish(),
            None => eprintln!("decoded {track}"),
        }
    }
}
