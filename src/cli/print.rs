//! What the command line prints for people: validation summaries and publication lines.

use std::process::ExitCode;

use pressing::exit;
use pressing::pipeline::Published;

use super::progress;
use pressing::ingest::validate::ValidationReport;

/// The human summary: one line per track, then every finding with its fix.
pub fn print_validation(report: &ValidationReport) {
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
        let mark = if errors > 0 {
            progress::paint(mark, "31")
        } else {
            progress::paint(mark, "32")
        };
        progress::info(format!("{mark} {:<16} {}  {format}{loud}", t.id, t.file));
    }
    for a in &report.albums {
        if let Some(l) = &a.loudness {
            if let Some(i) = l.integrated_lufs {
                progress::info(format!(
                    "album {}: {i:.1} LUFS, LRA {:.1} LU, TP {:+.1} dBTP, album gain {:+.1} dB",
                    a.source,
                    l.loudness_range_lu,
                    l.true_peak_dbtp,
                    l.replaygain_db.unwrap_or(0.0)
                ));
            }
        }
    }
    let mut findings: Vec<_> = report.findings.iter().collect();
    findings.sort_by_key(|f| std::cmp::Reverse(f.severity));
    for f in findings {
        if f.is_error() {
            eprintln!("{f}");
        } else {
            progress::info(f.to_string());
        }
    }
    progress::info(format!(
        "{} error(s), {} warning(s): {}",
        report.errors,
        report.warnings,
        if report.has_errors() {
            "refused (fix the errors and validate again)"
        } else {
            "ready to press"
        }
    ));
}

/// One line per published track; exit 76 when the catalog rejected a notification.
pub fn print_published(published: &Published) -> ExitCode {
    for t in &published.index.tracks {
        let Some(p) = &t.publish else { continue };
        progress::info(format!(
            "published {} -> {}: {} uploaded, {} already there, {} bytes, {} requests, {:.2} s; catalog: {}",
            t.id,
            p.destination,
            p.uploaded,
            p.skipped,
            p.bytes,
            p.requests,
            p.seconds,
            p.notification.status.as_str(),
        ));
    }
    if published.rejected().is_some() {
        progress::error("the catalog rejected a notification (see tracks[].publish.notification); the package is published");
        ExitCode::from(exit::REJECTED)
    } else {
        ExitCode::SUCCESS
    }
}
