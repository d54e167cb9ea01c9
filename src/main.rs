//! The `pressing` command line: parses arguments, wires the pipeline, prints.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Mutex;

use clap::{Parser, Subcommand};
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};

use pressing::error::exit;
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

#[derive(Subcommand)]
enum Command {
    /// Transcode and package masters (files or release folders) into HLS and DASH.
    Run {
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
        Command::Run {
            inputs,
            ladder,
            out,
            report,
            jobs,
            gapless,
            json,
        } => run(inputs, ladder, out, report, jobs, gapless, json),
    }
}

fn run(
    inputs: Vec<PathBuf>,
    ladder: PathBuf,
    out: PathBuf,
    report_path: Option<PathBuf>,
    jobs: Option<usize>,
    gapless: bool,
    json: bool,
) -> ExitCode {
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
    };
    let progress = Progress::new();
    let report = match pipeline::run(&opts, &progress) {
        Ok(r) => r,
        Err(e) => return fail(&e),
    };
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
