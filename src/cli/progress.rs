//! Terminal progress: a bar per track while encoding, a bar of bytes and objects while
//! uploading; one line per event when standard error is not a terminal.

use std::io::IsTerminal;
use std::sync::Mutex;

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};

use pressing::pipeline::ProgressSink;
use pressing::publish::UploadProgress;

/// Bars on a terminal; one line per finished track otherwise.
pub struct Progress {
    bars: Option<(MultiProgress, Mutex<Vec<TrackBar>>)>,
}

type TrackBar = (String, ProgressBar);

impl Progress {
    pub fn new() -> Progress {
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

/// Upload progress: bytes and objects.
pub struct Uploads {
    bar: Option<ProgressBar>,
    objects: std::sync::atomic::AtomicU64,
}

impl Uploads {
    pub fn new() -> Uploads {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::new(0);
            bar.set_style(
                ProgressStyle::with_template(
                    "{prefix:>24} [{bar:40}] {bytes}/{total_bytes} {msg} {binary_bytes_per_sec}",
                )
                .expect("static template")
                .progress_chars("=> "),
            );
            bar.set_prefix("upload");
            bar
        });
        Uploads {
            bar,
            objects: Default::default(),
        }
    }
}

impl UploadProgress for Uploads {
    fn start(&self, objects: u64, bytes: u64) {
        self.objects.store(0, std::sync::atomic::Ordering::Relaxed);
        if let Some(bar) = &self.bar {
            bar.reset();
            bar.set_length(bytes);
            bar.set_message(format!("0/{objects} objects"));
            bar.set_position(0);
        }
        self.objects
            .store(objects << 32, std::sync::atomic::Ordering::Relaxed);
    }

    fn uploaded(&self, bytes: u64) {
        let v = self
            .objects
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            + 1;
        if let Some(bar) = &self.bar {
            bar.inc(bytes);
            bar.set_message(format!("{}/{} objects", v & 0xffff_ffff, v >> 32));
        }
    }

    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
