//! What the command line tells a person while it works, and how loudly.
//!
//! - On a terminal: one bar per track with its position in the track's time (mm:ss of mm:ss),
//!   the speed as a realtime factor and an ETA, under a release line (tracks done of total);
//!   an upload bar of bytes and objects while publishing.
//! - Not a terminal: one line per event (`--progress lines`), or JSON lines for machines
//!   (`--progress json`: `event`, `stage`, `track`, `frames`, `seconds`, ...).
//! - `--quiet`: errors only; `--verbose`: more detail. Everything goes to standard error;
//!   standard output carries only data (`--json`, `ladders show`, completions, the man page).
//! - Colour only on a terminal and never with `NO_COLOR` set.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::Instant;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use pressing::pipeline::ProgressSink;
use pressing::publish::UploadProgress;

/// How progress is shown (`--progress`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ProgressMode {
    /// Bars on a terminal, lines otherwise.
    Auto,
    Bars,
    Lines,
    Json,
    None,
}

#[derive(Clone, Copy, Debug)]
struct Settings {
    quiet: bool,
    verbose: bool,
    mode: ProgressMode,
    color: bool,
}

static SETTINGS: OnceLock<Settings> = OnceLock::new();

/// Set once from the global flags, before anything prints.
pub fn init(quiet: bool, verbose: bool, mode: ProgressMode) {
    let terminal = std::io::stderr().is_terminal();
    let mode = match (quiet, mode) {
        (true, ProgressMode::Auto) => ProgressMode::None,
        (_, ProgressMode::Auto) if terminal => ProgressMode::Bars,
        (_, ProgressMode::Auto) => ProgressMode::Lines,
        (_, m) => m,
    };
    let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    let _ = SETTINGS.set(Settings {
        quiet,
        verbose,
        mode,
        color: terminal && !no_color,
    });
}

fn settings() -> Settings {
    *SETTINGS.get().unwrap_or(&Settings {
        quiet: false,
        verbose: false,
        mode: ProgressMode::Lines,
        color: false,
    })
}

/// A line for a person (not with `--quiet`).
pub fn info(line: impl AsRef<str>) {
    if !settings().quiet {
        eprintln!("{}", line.as_ref());
    }
}

/// A detail line (only with `--verbose`).
pub fn detail(line: impl AsRef<str>) {
    if settings().verbose && !settings().quiet {
        eprintln!("{}", line.as_ref());
    }
}

/// A warning (not with `--quiet`).
pub fn warning(line: impl AsRef<str>) {
    if !settings().quiet {
        eprintln!("{} {}", paint("warning:", "33"), line.as_ref());
    }
}

/// An error: always printed.
pub fn error(line: impl AsRef<str>) {
    eprintln!("{} {}", paint("error:", "31"), line.as_ref());
}

/// Data for standard output (what a command made: catalog records, job ids; `--json`,
/// `ladders`, completions, the man page), printed whole.
///
/// A reader that stops early (`| head`, `| grep -q`) closes the pipe: that is not an error, the
/// reader has what it wanted, so a broken pipe ends the output quietly instead of panicking as
/// `println!` would. Any other write error is reported, and `false` returned.
pub fn data(bytes: impl AsRef<[u8]>) -> bool {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match out.write_all(bytes.as_ref()).and_then(|()| out.flush()) {
        Ok(()) => true,
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => true,
        Err(e) => {
            error(format!("cannot write to standard output: {e}"));
            false
        }
    }
}

/// `text` in an ANSI colour when colour is on.
pub fn paint(text: &str, code: &str) -> String {
    if settings().color {
        format!("\x1b[{code}m{text}\x1b[0m")
    } else {
        text.to_string()
    }
}

fn json_line(v: serde_json::Value) {
    eprintln!("{v}");
}

fn clock(seconds: f64) -> String {
    let s = seconds.max(0.0).round() as u64;
    format!("{:02}:{:02}", s / 60, s % 60)
}

struct Track {
    bar: Option<ProgressBar>,
    rate: u32,
    total: Option<u64>,
    started: Instant,
    last_line: f64,
}

/// Encoding progress: see the module docs.
pub struct Progress {
    multi: Option<MultiProgress>,
    release: Option<ProgressBar>,
    tracks: Mutex<HashMap<String, Track>>,
    total: AtomicUsize,
    done: AtomicUsize,
}

impl Progress {
    pub fn new() -> Progress {
        let bars = settings().mode == ProgressMode::Bars;
        let multi = bars.then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr()));
        let release = multi.as_ref().map(|m| {
            let bar = m.add(ProgressBar::new(0));
            bar.set_style(
                ProgressStyle::with_template("{prefix:>16} {pos}/{len} tracks {elapsed_precise}")
                    .expect("static template"),
            );
            bar.set_prefix("release");
            bar
        });
        Progress {
            multi,
            release,
            tracks: Mutex::new(HashMap::new()),
            total: AtomicUsize::new(0),
            done: AtomicUsize::new(0),
        }
    }

    /// "01:23 of 03:45  34x  ETA 00:05" for a track at `frames`.
    fn status(t: &Track, frames: u64) -> (f64, String) {
        let rate = f64::from(t.rate.max(1));
        let pos = frames as f64 / rate;
        let elapsed = t.started.elapsed().as_secs_f64().max(1e-3);
        let speed = pos / elapsed;
        let mut text = match t.total {
            Some(n) => format!("{} of {}", clock(pos), clock(n as f64 / rate)),
            None => clock(pos),
        };
        if pos > 0.0 {
            text.push_str(&format!("  {speed:.0}x"));
            if let Some(n) = t.total {
                let left = (n as f64 / rate - pos).max(0.0) / speed.max(1e-3);
                text.push_str(&format!("  ETA {}", clock(left)));
            }
        }
        (pos, text)
    }
}

impl ProgressSink for Progress {
    fn run_started(&self, tracks: usize) {
        self.total.store(tracks, Ordering::Relaxed);
        if let Some(r) = &self.release {
            r.set_length(tracks as u64);
        }
        if settings().mode == ProgressMode::Json {
            json_line(
                serde_json::json!({"event": "run_started", "stage": "encode", "tracks": tracks}),
            );
        }
    }

    fn track_started(&self, track: &str, total_frames: Option<u64>, rate: u32) {
        let bar = self.multi.as_ref().map(|m| {
            let bar = m.add(ProgressBar::new(total_frames.unwrap_or(0)));
            bar.set_style(
                ProgressStyle::with_template("{prefix:>16} [{bar:30}] {msg}")
                    .expect("static template")
                    .progress_chars("=> "),
            );
            bar.set_prefix(track.to_string());
            bar
        });
        let seconds = total_frames.map(|n| n as f64 / f64::from(rate.max(1)));
        match settings().mode {
            ProgressMode::Json => json_line(serde_json::json!({
                "event": "track_started", "stage": "encode", "track": track,
                "frames": 0, "total_frames": total_frames, "sample_rate": rate,
                "seconds": 0.0, "total_seconds": seconds,
            })),
            ProgressMode::Lines => eprintln!(
                "encoding {track} ({})",
                seconds.map_or("length unknown".into(), clock)
            ),
            _ => {}
        }
        if let Ok(mut t) = self.tracks.lock() {
            t.insert(
                track.to_string(),
                Track {
                    bar,
                    rate,
                    total: total_frames,
                    started: Instant::now(),
                    last_line: 0.0,
                },
            );
        }
    }

    fn track_advanced(&self, track: &str, frames: u64) {
        let Ok(mut tracks) = self.tracks.lock() else {
            return;
        };
        let Some(t) = tracks.get_mut(track) else {
            return;
        };
        let (pos, text) = Progress::status(t, frames);
        if let Some(bar) = &t.bar {
            bar.set_position(frames);
            bar.set_message(text);
        } else if settings().mode == ProgressMode::Json {
            json_line(serde_json::json!({
                "event": "track_progress", "stage": "encode", "track": track,
                "frames": frames, "seconds": pos,
            }));
        } else if settings().mode == ProgressMode::Lines && pos - t.last_line >= 30.0 {
            // A line every 30 s of audio: enough to see it move, not a flood.
            t.last_line = pos;
            eprintln!("  {track}: {text}");
        }
    }

    fn track_finished(&self, track: &str) {
        let done = self.done.fetch_add(1, Ordering::Relaxed) + 1;
        let total = self.total.load(Ordering::Relaxed);
        let Ok(mut tracks) = self.tracks.lock() else {
            return;
        };
        let Some(t) = tracks.remove(track) else {
            return;
        };
        let elapsed = t.started.elapsed().as_secs_f64();
        let seconds = t.total.map(|n| n as f64 / f64::from(t.rate.max(1)));
        match (&t.bar, settings().mode) {
            (Some(bar), _) => {
                let speed = seconds.map_or(String::new(), |s| {
                    format!("  {:.0}x", s / elapsed.max(1e-3))
                });
                bar.finish_with_message(format!(
                    "{}{speed}  done",
                    seconds.map_or("".into(), clock)
                ));
                if let Some(r) = &self.release {
                    r.set_position(done as u64);
                }
            }
            (None, ProgressMode::Json) => json_line(serde_json::json!({
                "event": "track_finished", "stage": "encode", "track": track,
                "seconds": seconds, "wall_seconds": elapsed, "done": done, "tracks": total,
            })),
            (None, ProgressMode::Lines) => {
                eprintln!("decoded {track} in {elapsed:.1} s ({done} of {total} tracks)")
            }
            _ => {}
        }
    }
}

/// Upload progress: bytes and objects.
pub struct Uploads {
    bar: Option<ProgressBar>,
    objects: AtomicU64,
    total: AtomicU64,
}

impl Uploads {
    pub fn new() -> Uploads {
        let bar = (settings().mode == ProgressMode::Bars).then(|| {
            let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr());
            bar.set_style(
                ProgressStyle::with_template(
                    "{prefix:>16} [{bar:30}] {bytes}/{total_bytes} {msg} {binary_bytes_per_sec}",
                )
                .expect("static template")
                .progress_chars("=> "),
            );
            bar.set_prefix("upload");
            bar
        });
        Uploads {
            bar,
            objects: AtomicU64::new(0),
            total: AtomicU64::new(0),
        }
    }
}

impl UploadProgress for Uploads {
    fn start(&self, objects: u64, bytes: u64) {
        self.objects.store(0, Ordering::Relaxed);
        self.total.store(objects, Ordering::Relaxed);
        if let Some(bar) = &self.bar {
            bar.reset();
            bar.set_length(bytes);
            bar.set_message(format!("0/{objects} objects"));
        }
        if settings().mode == ProgressMode::Json {
            json_line(
                serde_json::json!({"event": "upload_started", "stage": "publish", "objects": objects, "bytes": bytes}),
            );
        }
    }

    fn uploaded(&self, bytes: u64) {
        let n = self.objects.fetch_add(1, Ordering::Relaxed) + 1;
        if let Some(bar) = &self.bar {
            bar.inc(bytes);
            bar.set_message(format!(
                "{n}/{} objects",
                self.total.load(Ordering::Relaxed)
            ));
        }
    }

    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
        if settings().mode == ProgressMode::Json {
            json_line(
                serde_json::json!({"event": "upload_finished", "stage": "publish", "objects": self.objects.load(Ordering::Relaxed)}),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clock_reads_minutes_and_seconds() {
        assert_eq!(clock(0.0), "00:00");
        assert_eq!(clock(83.4), "01:23");
        assert_eq!(clock(3599.6), "60:00");
    }
}
