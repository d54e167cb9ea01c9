//! The QC page: one self-contained HTML file (`qc.html`) for a package, a section per track,
//! for the engineer who signs a release off: the waveform with true-peak overs, loudness over
//! time, spectrograms of the master and of the lowest and highest lossy renditions, each
//! rendition's bit rate per segment, the findings with their fixes, each rendition's
//! fingerprint similarity (and quality score), and the track's availability and tiers.
//!
//! Everything is inline (figures as SVG, spectrogram pixels as JPEG data URIs, the style sheet);
//! the page loads nothing and runs no script. It is made from a package on disk (its
//! `index.json` and files), so `pressing qc DIR` draws a package pressed earlier without
//! encoding again; the master is read when it is still where the report says, otherwise the
//! lossless rendition at the master's rate (bit-exact) stands in for it, and the page says so.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use base64::Engine;
use rayon::prelude::*;

use crate::error::Error;
use crate::ingest::{Finding, MasterReader, Severity};
use crate::layout;
use crate::package::verify;
use crate::report::{self, PackageIndex, RenditionReport, TrackReport};

mod figures;
pub mod signal;

use signal::{LoudnessCurves, Measure, Spectrogram, Waveform};

/// What the page shows of one track, measured from its audio.
pub struct TrackFigures {
    /// What the master's figures were drawn from.
    pub source: String,
    pub waveform: Option<Waveform>,
    pub loudness: Option<LoudnessCurves>,
    /// (label, spectrogram): the master's, then the lowest and highest clear lossy renditions.
    pub spectrograms: Vec<(String, Spectrogram)>,
    /// Per rendition, (start seconds, kbit/s) of each segment.
    pub bitrates: Vec<(String, Vec<(f64, f64)>)>,
    /// What could not be drawn, and why.
    pub notes: Vec<String>,
}

/// Write `<dir>/qc.html` for the package in `dir`; returns its path.
pub fn write_page(dir: &Path) -> Result<PathBuf, Error> {
    let index = report::read_index(dir)?;
    let figures: Vec<TrackFigures> = index
        .tracks
        .par_iter()
        .map(|t| measure_track(dir, t))
        .collect();
    let html = page(dir, &index, &figures)?;
    let path = dir.join(layout::QC_PAGE);
    std::fs::write(&path, html).map_err(|source| Error::Output {
        path: path.clone(),
        source,
    })?;
    Ok(path)
}

/// Decode what a track's figures need: its master (or its bit-exact lossless rendition), and
/// its lowest and highest clear lossy renditions.
fn measure_track(root: &Path, t: &TrackReport) -> TrackFigures {
    let mut out = TrackFigures {
        source: String::new(),
        waveform: None,
        loudness: None,
        spectrograms: Vec::new(),
        bitrates: Vec::new(),
        notes: Vec::new(),
    };
    let top_hz = f64::from(t.sample_rate) / 2.0;
    let master = Path::new(&t.source);
    let measured = if master.is_file() {
        out.source = format!("the master, {}", t.source);
        measure_master(master, t, top_hz)
    } else {
        // The lossless rendition at the master's rate and depth decodes to the master's samples.
        match t.renditions.iter().find(|r| {
            r.codec.is_lossless()
                && r.key_id.is_none()
                && r.sample_rate == t.sample_rate
                && r.bits_per_sample == Some(t.bits_per_sample)
        }) {
            Some(r) => {
                out.source = format!(
                    "rendition {} (bit-exact to the master, which is not at {})",
                    r.id, t.source
                );
                measure_rendition(root, r, t.duration_samples, true, top_hz)
            }
            None => Err(format!(
                "the master is not at {} and no clear lossless rendition at its rate stands in for it",
                t.source
            )),
        }
    };
    match measured {
        Ok((w, l, s)) => {
            out.waveform = w;
            out.loudness = l;
            if let Some(s) = s {
                out.spectrograms.push(("master".into(), s));
            }
        }
        Err(e) => out.notes.push(format!("master figures: {e}")),
    }
    let mut lossy: Vec<&RenditionReport> = t
        .renditions
        .iter()
        .filter(|r| !r.codec.is_lossless() && r.key_id.is_none())
        .collect();
    lossy.sort_by_key(|r| (r.target_bitrate.unwrap_or(0), r.average_bandwidth));
    let ends: Vec<&RenditionReport> = match (lossy.first(), lossy.last()) {
        (Some(a), Some(b)) if a.id != b.id => vec![a, b],
        (Some(a), _) => vec![a],
        _ => Vec::new(),
    };
    if ends.is_empty() && t.renditions.iter().any(|r| !r.codec.is_lossless()) {
        out.notes
            .push("the lossy renditions are encrypted: no spectrogram is drawn from them".into());
    }
    for r in ends {
        match measure_rendition(root, r, r.duration_samples, false, top_hz) {
            Ok((_, _, Some(s))) => out.spectrograms.push((r.id.clone(), s)),
            Ok(_) => {}
            Err(e) => out.notes.push(format!("rendition {}: {e}", r.id)),
        }
    }
    for r in &t.renditions {
        match segment_bitrates(root, r) {
            Ok(points) => out.bitrates.push((r.id.clone(), points)),
            Err(e) => out.notes.push(format!("rendition {} bit rates: {e}", r.id)),
        }
    }
    out
}

type Measured = (
    Option<Waveform>,
    Option<LoudnessCurves>,
    Option<Spectrogram>,
);

fn measure_master(path: &Path, t: &TrackReport, top_hz: f64) -> Result<Measured, String> {
    let mut reader = MasterReader::open(path, false).map_err(|e| e.to_string())?;
    let f = reader.format().clone();
    let mut m = Measure::new(
        f.channels,
        f.sample_rate,
        t.duration_samples,
        true,
        Some(top_hz),
    )?;
    while let Some(chunk) = reader.next_chunk().map_err(|e| e.to_string())? {
        m.push(chunk);
    }
    Ok(m.finish())
}

fn measure_rendition(
    root: &Path,
    r: &RenditionReport,
    frames: u64,
    figures: bool,
    top_hz: f64,
) -> Result<Measured, String> {
    let audio = verify::decode_reported(root, r, None)?;
    let mut m = Measure::new(
        audio.channels,
        audio.sample_rate,
        frames,
        figures,
        Some(top_hz),
    )?;
    for chunk in audio
        .samples
        .chunks(8192 * usize::from(audio.channels.max(1)))
    {
        m.push(chunk);
    }
    Ok(m.finish())
}

/// Each segment's start and bit rate, from the rendition's media playlist (durations) and
/// its files or byte ranges (sizes).
fn segment_bitrates(root: &Path, r: &RenditionReport) -> Result<Vec<(f64, f64)>, String> {
    let path = root.join(&r.playlist);
    let text = std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let playlist = m3u8_rs::parse_media_playlist_res(&text)
        .map_err(|e| format!("{}: {e:?}", path.display()))?;
    let dir = path.parent().unwrap_or(root);
    let mut t = 0.0;
    let mut points = Vec::with_capacity(playlist.segments.len());
    for s in &playlist.segments {
        let bytes = match &s.byte_range {
            Some(range) => range.length,
            None => std::fs::metadata(dir.join(&s.uri))
                .map_err(|e| format!("{}: {e}", s.uri))?
                .len(),
        };
        let seconds = f64::from(s.duration).max(1e-6);
        points.push((t, bytes as f64 * 8.0 / seconds / 1000.0));
        t += seconds;
    }
    Ok(points)
}

/// HTML-escaped text.
fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A number as the page prints it, in an element the tests (and anyone) can find by key.
fn value(key: &str, text: String) -> String {
    format!("<span data-k=\"{key}\">{}</span>", esc(&text))
}

const STYLE: &str =
    "body{font:14px/1.45 system-ui,sans-serif;margin:24px;color:#222;max-width:1000px}\
h1{font-size:22px}h2{font-size:18px;margin-top:40px;border-top:2px solid #ccc;padding-top:12px}\
h3{font-size:15px;margin:18px 0 6px}table{border-collapse:collapse;margin:6px 0}\
td,th{border:1px solid #ccc;padding:3px 8px;text-align:left}th{background:#f2f2f2}\
td.n{text-align:right;font-variant-numeric:tabular-nums}\
figure{margin:8px 0}figcaption{color:#555;font-size:12px}\
.spec{position:relative;display:inline-block}.spec img{position:absolute;image-rendering:auto}\
.spec svg{position:relative}.error{color:#b00}.warning{color:#a60}.note{color:#666}";

fn page(root: &Path, index: &PackageIndex, figures: &[TrackFigures]) -> Result<String, Error> {
    let mut h = String::new();
    let _ = writeln!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; img-src data:; style-src 'unsafe-inline'\">\
<title>QC: {}</title><style>{STYLE}</style></head><body>",
        esc(&root.display().to_string())
    );
    let _ =
        writeln!(
        h,
        "<h1>QC: {}</h1><p>{} track(s), ladder {}, {}, segments of {} s. Made by pressing {}.</p>",
        esc(&root.display().to_string()),
        index.tracks.len(),
        esc(&index.ladder),
        if index.single_file { "one file per rendition" } else { "segment files" },
        index.segment_seconds,
        env!("CARGO_PKG_VERSION"),
    );
    let release_findings: Vec<&Finding> = index
        .warnings
        .iter()
        .filter(|f| !index.tracks.iter().any(|t| t.source == f.file))
        .collect();
    if !release_findings.is_empty() {
        h.push_str("<h3>Findings of the release</h3>");
        findings_table(&mut h, &release_findings);
    }
    for (t, f) in index.tracks.iter().zip(figures) {
        track_section(&mut h, index, t, f).map_err(Error::Internal)?;
    }
    h.push_str("</body></html>\n");
    Ok(h)
}

fn findings_table(h: &mut String, findings: &[&Finding]) {
    h.push_str(
        "<table><tr><th>severity</th><th>code</th><th>where</th><th>finding</th><th>fix</th></tr>",
    );
    for f in findings {
        let severity = match f.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        let _ = write!(
            h,
            "<tr><td class=\"{severity}\">{severity}</td><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&f.code),
            esc(f.location.as_deref().unwrap_or("")),
            esc(&f.message),
            esc(&f.fix)
        );
    }
    h.push_str("</table>\n");
}

fn track_section(
    h: &mut String,
    index: &PackageIndex,
    t: &TrackReport,
    f: &TrackFigures,
) -> Result<(), String> {
    let id = esc(&t.id);
    let _ = writeln!(
        h,
        "<section class=\"track\" id=\"track-{id}\" data-track=\"{id}\"><h2>{id}{}</h2>\
<p>{} · {} Hz · {} ch · {}-bit · {} s · figures from {}</p>",
        t.isrc
            .as_deref()
            .map(|i| format!(" · ISRC {}", esc(i)))
            .unwrap_or_default(),
        esc(&t.source),
        t.sample_rate,
        t.channels,
        t.bits_per_sample,
        value("duration", format!("{:.3}", t.duration_seconds)),
        esc(&f.source),
    );
    // Loudness numbers.
    if let Some(l) = &t.loudness {
        let _ = writeln!(
            h,
            "<table><tr><th>integrated</th><th>loudness range</th><th>true peak</th><th>sample peak</th><th>album</th></tr>\
<tr><td class=\"n\">{} LUFS</td><td class=\"n\">{} LU</td><td class=\"n\">{} dBTP</td><td class=\"n\">{} dBFS</td><td class=\"n\">{}</td></tr></table>",
            value("integrated", l.integrated_lufs.map_or("—".into(), |v| format!("{v:.1}"))),
            value("lra", format!("{:.1}", l.loudness_range_lu)),
            value("true-peak", format!("{:.1}", l.true_peak_dbtp)),
            value("sample-peak", format!("{:.1}", l.sample_peak_dbfs)),
            t.album_loudness
                .as_ref()
                .and_then(|a| a.integrated_lufs)
                .map_or("—".into(), |v| format!("{} LUFS", value("album", format!("{v:.1}")))),
        );
    }
    let seconds = t.duration_seconds;
    if let Some(w) = &f.waveform {
        let overs = w.overs().count();
        let _ = writeln!(
            h,
            "<figure data-figure=\"waveform\">{}<figcaption>Waveform: the lowest and highest sample of any channel per {:.0} ms; \
{overs} column(s) with a true peak above -1 dBTP (orange) or 0 dBTP (red) marked above it.</figcaption></figure>",
            figures::waveform(w)?,
            seconds * 1000.0 / w.columns.len().max(1) as f64
        );
    }
    if let Some(c) = &f.loudness {
        let integrated = t.loudness.as_ref().and_then(|l| l.integrated_lufs);
        let _ = writeln!(
            h,
            "<figure data-figure=\"loudness\">{}<figcaption>Momentary (400 ms) and short-term (3 s) loudness every 100 ms (ITU-R BS.1770-4); \
integrated {} LUFS, loudness range {} LU.</figcaption></figure>",
            figures::loudness(c, seconds, integrated)?,
            integrated.map_or("—".into(), |v| format!("{v:.1}")),
            t.loudness.as_ref().map_or("—".into(), |l| format!("{:.1}", l.loudness_range_lu)),
        );
    }
    if !f.spectrograms.is_empty() {
        h.push_str("<h3>Spectrograms</h3><figure data-figure=\"spectrograms\">");
        let width = (figures::WIDTH / f.spectrograms.len().max(1) as u32).max(300);
        for (label, s) in &f.spectrograms {
            let (axes, [x, y, w, hh]) = figures::spectrogram_axes(s, width)?;
            let jpeg = figures::spectrogram_jpeg(s)?;
            let _ = write!(
                h,
                "<div class=\"spec\" data-spectrogram=\"{}\"><img alt=\"spectrogram of {}\" style=\"left:{x}px;top:{y}px;width:{w}px;height:{hh}px\" \
src=\"data:image/jpeg;base64,{}\">{axes}<div style=\"text-align:center\">{}</div></div>",
                esc(label),
                esc(label),
                base64::engine::general_purpose::STANDARD.encode(jpeg),
                esc(label)
            );
        }
        h.push_str("<figcaption>Spectrograms (Viridis, -120 to 0 dB relative to a full-scale sine; gray: above the stream's Nyquist frequency): \
the master, the lowest and the highest clear lossy renditions, where each codec cuts off.</figcaption></figure>\n");
    }
    if !f.bitrates.is_empty() {
        let _ = writeln!(
            h,
            "<figure data-figure=\"bitrates\">{}<figcaption>Bit rate of each rendition per segment (kbit/s, log scale).</figcaption></figure>",
            figures::bitrates(&f.bitrates, seconds)?
        );
    }
    // Renditions.
    h.push_str("<h3>Renditions</h3><table><tr><th>rendition</th><th>codec</th><th>tier</th><th>rate</th><th>ch</th>\
<th>target kbit/s</th><th>mean kbit/s</th><th>peak kbit/s</th><th>similarity</th><th>quality (MOS)</th><th>encrypted</th></tr>");
    for r in &t.renditions {
        let _ = write!(
            h,
            "<tr data-rendition=\"{}\"><td>{}</td><td>{}</td><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td>\
<td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td>{}</td></tr>",
            esc(&r.id),
            esc(&r.id),
            r.codec,
            r.tier,
            r.sample_rate,
            r.channels,
            r.target_bitrate.map_or("—".into(), |b| format!("{}", b / 1000)),
            value("mean-kbps", format!("{:.0}", r.average_bandwidth as f64 / 1000.0)),
            value("peak-kbps", format!("{:.0}", r.bandwidth as f64 / 1000.0)),
            value("similarity", r.similarity.map_or("—".into(), |s| format!("{s:.3}"))),
            r.quality.as_ref().map_or("—".into(), |q| format!(
                "{} <small>({})</small>",
                value("quality", format!("{:.2}", q.mos)),
                q.windows
                    .iter()
                    .map(|w| format!("{w:.2}"))
                    .collect::<Vec<_>>()
                    .join(" / ")
            )),
            r.scheme.map_or("no".into(), |s| format!("{s:?}").to_lowercase()),
        );
    }
    h.push_str("</table>\n");
    if let Some(fp) = &t.fingerprint {
        let _ = writeln!(
            h,
            "<p>Fingerprint (Chromaprint, {} s): <code title=\"{}\">{}…</code></p>",
            fp.duration,
            esc(&fp.fingerprint),
            esc(&fp.fingerprint.chars().take(32).collect::<String>())
        );
    }
    let skipped: Vec<_> = index.skipped.iter().filter(|s| s.track == t.id).collect();
    if !skipped.is_empty() {
        h.push_str("<h3>Skipped rungs</h3><table><tr><th>rung</th><th>why</th></tr>");
        for s in skipped {
            let _ = write!(
                h,
                "<tr><td>{}</td><td>{}</td></tr>",
                esc(&s.rung),
                esc(&s.reason)
            );
        }
        h.push_str("</table>\n");
    }
    // Findings.
    let findings: Vec<&Finding> = index
        .warnings
        .iter()
        .filter(|w| w.file == t.source)
        .collect();
    h.push_str("<h3>Findings</h3>");
    if findings.is_empty() {
        h.push_str("<p>None.</p>\n");
    } else {
        findings_table(h, &findings);
    }
    // Availability and tiers.
    let mut tiers: Vec<String> = t.renditions.iter().map(|r| r.tier.to_string()).collect();
    tiers.dedup();
    let _ = write!(
        h,
        "<h3>Availability</h3><p>Tiers: {}.",
        esc(&tiers.join(", "))
    );
    if !t.offline.is_empty() {
        let offline: Vec<String> = t.offline.iter().map(|t| t.to_string()).collect();
        let _ = write!(h, " Offline: {}.", esc(&offline.join(", ")));
    }
    h.push_str("</p>");
    if t.availability.is_empty() {
        h.push_str(
            "<p class=\"note\">No deals (release.json): every packaged tier, everywhere.</p>\n",
        );
    } else {
        h.push_str("<table><tr><th>tier</th><th>territories</th><th>from</th><th>until</th><th>offline</th></tr>");
        for a in &t.availability {
            let place = if a.worldwide {
                if a.excluded_territories.is_empty() {
                    "worldwide".to_string()
                } else {
                    format!("worldwide except {}", a.excluded_territories.join(", "))
                }
            } else {
                a.territories.join(", ")
            };
            let _ = write!(
                h,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                a.tier,
                esc(&place),
                esc(a.start.as_deref().unwrap_or("—")),
                esc(a.end.as_deref().unwrap_or("open")),
                if a.offline { "yes" } else { "no" }
            );
        }
        h.push_str("</table>\n");
    }
    for note in &f.notes {
        let _ = write!(h, "<p class=\"note\">Not drawn: {}</p>", esc(note));
    }
    h.push_str("</section>\n");
    Ok(())
}
