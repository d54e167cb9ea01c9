//! A worker's counters and how they are read: the Prometheus text exposition, and a tiny
//! HTTP/1.1 responder for `/metrics`, `/healthz` and `/readyz` (GET only; an orchestrator's
//! probes and a Prometheus scrape need nothing more).

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Counters of a worker's life, for `/metrics` and the exit summary.
#[derive(Default)]
pub struct Metrics {
    pub published: AtomicU64,
    pub retried: AtomicU64,
    pub dead: AtomicU64,
    pub released: AtomicU64,
    pub in_flight: AtomicU64,
    pub bytes_published: AtomicU64,
    pub audio_millis: AtomicU64,
    pub encode_millis: AtomicU64,
    pub publish_millis: AtomicU64,
    pub download_millis: AtomicU64,
    pub lag_millis: AtomicU64,
    pub claimed: AtomicU64,
}

/// The Prometheus text exposition of a worker's counters.
pub fn metrics_text(m: &Metrics) -> String {
    let g = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
    let secs = |a: &std::sync::atomic::AtomicU64| g(a) as f64 / 1000.0;
    let encode = secs(&m.encode_millis);
    let rtf = if encode > 0.0 {
        secs(&m.audio_millis) / encode
    } else {
        0.0
    };
    let mut t = String::new();
    t += "# HELP pressing_jobs_total Jobs that ended on this worker, by outcome.\n";
    t += "# TYPE pressing_jobs_total counter\n";
    for (outcome, v) in [
        ("published", &m.published),
        ("retried", &m.retried),
        ("dead", &m.dead),
        ("released", &m.released),
    ] {
        t += &format!("pressing_jobs_total{{outcome=\"{outcome}\"}} {}\n", g(v));
    }
    t += "# HELP pressing_stage_seconds_total Time spent per stage.\n";
    t += "# TYPE pressing_stage_seconds_total counter\n";
    for (stage, v) in [
        ("download", &m.download_millis),
        ("encode", &m.encode_millis),
        ("publish", &m.publish_millis),
    ] {
        t += &format!(
            "pressing_stage_seconds_total{{stage=\"{stage}\"}} {}\n",
            secs(v)
        );
    }
    t += "# HELP pressing_encode_realtime_factor Audio seconds pressed per encode second.\n";
    t += "# TYPE pressing_encode_realtime_factor gauge\n";
    t += &format!("pressing_encode_realtime_factor {rtf}\n");
    t += "# HELP pressing_published_bytes_total Bytes uploaded to the output store.\n";
    t += "# TYPE pressing_published_bytes_total counter\n";
    t += &format!("pressing_published_bytes_total {}\n", g(&m.bytes_published));
    t += "# HELP pressing_jobs_in_flight Jobs running now.\n";
    t += "# TYPE pressing_jobs_in_flight gauge\n";
    t += &format!("pressing_jobs_in_flight {}\n", g(&m.in_flight));
    t += "# HELP pressing_queue_lag_seconds_total Submit-to-claim time summed over claims.\n";
    t += "# TYPE pressing_queue_lag_seconds_total counter\n";
    t += &format!("pressing_queue_lag_seconds_total {}\n", secs(&m.lag_millis));
    t += "# HELP pressing_jobs_claimed_total Jobs claimed.\n";
    t += "# TYPE pressing_jobs_claimed_total counter\n";
    t += &format!("pressing_jobs_claimed_total {}\n", g(&m.claimed));
    t
}

/// A tiny HTTP/1.1 responder for /metrics, /healthz and /readyz (GET only).
pub fn serve_metrics(listener: TcpListener, metrics: Arc<Metrics>, ready: Arc<AtomicBool>) {
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
            let mut reader = BufReader::new(&stream);
            let mut request = String::new();
            if reader.read_line(&mut request).is_err() {
                continue;
            }
            // Drain the headers.
            let mut line = String::new();
            while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
                line.clear();
            }
            let path = request.split_whitespace().nth(1).unwrap_or("/");
            let (status, body, kind) = match path {
                "/metrics" => (
                    "200 OK",
                    metrics_text(&metrics),
                    "text/plain; version=0.0.4",
                ),
                "/healthz" => ("200 OK", "ok\n".to_string(), "text/plain"),
                "/readyz" if ready.load(Ordering::SeqCst) => {
                    ("200 OK", "ready\n".to_string(), "text/plain")
                }
                "/readyz" => (
                    "503 Service Unavailable",
                    "stopping\n".to_string(),
                    "text/plain",
                ),
                _ => ("404 Not Found", "not found\n".to_string(), "text/plain"),
            };
            let mut s = &stream;
            let _ = write!(
                s,
                "HTTP/1.1 {status}\r\nContent-Type: {kind}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn the_exposition_holds_every_counter() {
        let m = Metrics::default();
        m.published.store(3, Ordering::Relaxed);
        m.dead.store(1, Ordering::Relaxed);
        m.encode_millis.store(2000, Ordering::Relaxed);
        m.audio_millis.store(60_000, Ordering::Relaxed);
        m.bytes_published.store(12345, Ordering::Relaxed);
        let text = metrics_text(&m);
        let want = [
            "pressing_jobs_total{outcome=\"published\"} 3",
            "pressing_jobs_total{outcome=\"dead\"} 1",
            "pressing_jobs_total{outcome=\"retried\"} 0",
            "pressing_stage_seconds_total{stage=\"encode\"} 2",
            "pressing_encode_realtime_factor 30",
            "pressing_published_bytes_total 12345",
            "pressing_jobs_in_flight 0",
        ];
        for line in want {
            assert!(
                text.lines().any(|l| l == line),
                "{line:?} missing from:\n{text}"
            );
        }
        // Every sample has its HELP and TYPE.
        let types = text.lines().filter(|l| l.starts_with("# TYPE ")).count();
        let helps = text.lines().filter(|l| l.starts_with("# HELP ")).count();
        assert_eq!((types, helps), (7, 7));
    }

    fn get(addr: std::net::SocketAddr, path: &str) -> String {
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        write!(s, "GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        let mut answer = String::new();
        s.read_to_string(&mut answer).unwrap();
        answer
    }

    #[test]
    fn the_responder_answers_probes_and_scrapes() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let metrics = Arc::new(Metrics::default());
        metrics.claimed.store(7, Ordering::Relaxed);
        let ready = Arc::new(AtomicBool::new(true));
        serve_metrics(listener, metrics, ready.clone());
        let m = get(addr, "/metrics");
        assert!(m.starts_with("HTTP/1.1 200 OK\r\n"), "{m}");
        assert!(m.contains("Content-Type: text/plain; version=0.0.4"), "{m}");
        assert!(m.contains("\npressing_jobs_claimed_total 7\n"), "{m}");
        assert!(get(addr, "/healthz").ends_with("\r\n\r\nok\n"));
        assert!(get(addr, "/readyz").starts_with("HTTP/1.1 200 OK"));
        ready.store(false, Ordering::SeqCst);
        assert!(get(addr, "/readyz").starts_with("HTTP/1.1 503 Service Unavailable"));
        assert!(get(addr, "/nothing").starts_with("HTTP/1.1 404 Not Found"));
    }
}
