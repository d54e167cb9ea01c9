//! `run`, `validate`, `publish`, `unpublish` and `ladders`: the label's commands over
//! `pressing::pipeline`.
//!
//! What a command made goes to standard output, one line each, so that a script can take it
//! (`RECORDS=$(pressing run ...)`): every track's catalog record, as a path in the package or,
//! once published, as the URL it is served under. `--json` prints the report instead. The
//! human summary goes to standard error.

use std::path::PathBuf;
use std::process::ExitCode;

use pressing::exit;
use pressing::ingest::validate::ValidateOptions;
use pressing::ladder::Ladder;
use pressing::pipeline::{self, Published, RunOptions, RunProtection};
use pressing::protect::keys::{CpixFile, KeyServer, RawKeys};
use pressing::protect::{KeyError, KeySource, Scheme};
use pressing::publish;
use pressing::report::{self, PackageIndex, RunReport};

use super::args::{KeyArgs, LaddersAction, PublishCmdArgs, RunArgs, UnpublishArgs, ValidateArgs};
use super::print::{print_published, print_validation};
use super::progress::{self, Progress, Uploads};
use super::stores::{self, PublishArgs};
use super::{data_exit, fail, json_out};

pub fn validate(args: ValidateArgs) -> ExitCode {
    let ladder = match Ladder::load(&args.ladder) {
        Ok(l) => l,
        Err(e) => return fail(&pressing::Error::from(e)),
    };
    let opts = ValidateOptions {
        allow_lossy: args.allow_lossy,
        all_gapless: false,
        metadata: args.metadata,
        writes_output: false,
        measured: None,
        cover_min_size: Some(ladder.cover.min_size),
    };
    let (_, report) = pressing::ingest::validate::validate(&args.inputs, opts);
    if args.json {
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

/// One line per track on standard output: where its catalog record is.
fn print_records(index: &PackageIndex, published: bool) {
    let lines: String = index
        .tracks
        .iter()
        .map(|t| {
            let published_url = t
                .publish
                .as_ref()
                .filter(|_| published)
                .and_then(|p| p.urls.get(&t.catalog));
            format!("{}\n", published_url.unwrap_or(&t.catalog))
        })
        .collect();
    progress::data(lines);
}

pub fn run(args: RunArgs) -> ExitCode {
    if args.jobs == Some(0) {
        progress::error("--jobs 0 (expected at least 1 thread)");
        return ExitCode::from(exit::USAGE);
    }
    let mut ladder = match Ladder::load(&args.ladder) {
        Ok(l) => l,
        Err(e) => return fail(&pressing::Error::from(e)),
    };
    ladder.single_file |= args.single_file;
    let keys = match args.keys.source() {
        Ok(k) => k,
        Err(e) => return fail(&pressing::Error::from(e)),
    };
    let protection = RunProtection::from_ladder(&ladder, args.keys.scheme(), &*keys);
    // An s3:// output is encoded into a local staging folder, then published from it.
    let remote = stores::is_remote(&args.out);
    let local = match (&args.staging, remote) {
        (Some(dir), true) => dir.clone(),
        (None, true) => stores::default_staging(&args.out),
        (_, false) => PathBuf::from(&args.out),
    };
    // Wire the store and the catalog before encoding: a bad flag fails in a second, not after.
    let target = if remote {
        match (
            stores::open(&args.out, &args.store),
            args.publish.notifier(),
        ) {
            (Ok(s), Ok(n)) => Some((s, n)),
            (Err(code), _) | (_, Err(code)) => return ExitCode::from(code),
        }
    } else {
        None
    };
    let publish_opts = args.publish.options();
    let served_at = |key: &str| match &target {
        Some((store, _)) => publish::object_url(publish_opts.public_url.as_deref(), &**store, key),
        None => key.to_string(),
    };
    let opts = RunOptions {
        inputs: args.inputs,
        ladder,
        out: local.clone(),
        jobs: args.jobs,
        gapless: args.gapless,
        allow_lossy: args.allow_lossy,
        measured: None,
        sources: Default::default(),
        served_at: target.is_some().then_some(&served_at as _),
        protection,
        quality: args.quality,
    };
    let mut report = match pipeline::run(&opts, &Progress::new()) {
        Ok(r) => r,
        Err(pressing::Error::Rejected(validation)) => {
            print_validation(&validation);
            return ExitCode::from(exit::BAD_INPUT);
        }
        Err(e) => return fail(&e),
    };
    print_pressed(&report, &local);
    if args.qc {
        match pressing::qc::write_page(&local) {
            Ok(page) => progress::info(format!("QC page: {}", page.display())),
            Err(e) => return fail(&e),
        }
    }
    let mut code = ExitCode::SUCCESS;
    if let Some((store, notifier)) = &target {
        match pipeline::publish(
            &local,
            &**store,
            &**notifier,
            &publish_opts,
            &Uploads::new(),
        ) {
            Ok(published) => {
                code = print_published(&published);
                // Published: the staging copy of the tracks is no longer needed.
                if args.staging.is_none() {
                    for t in &report.package.tracks {
                        let _ = std::fs::remove_dir_all(local.join(&t.id));
                    }
                }
                report.package = published.index;
            }
            Err(e) => {
                progress::error(e.to_string());
                progress::info(format!(
                    "the package is kept in {}: `pressing publish {} {}` finishes the job",
                    local.display(),
                    local.display(),
                    args.out
                ));
                return ExitCode::from(e.exit_code());
            }
        }
    }
    finish(
        &report,
        args.report.as_deref(),
        args.json,
        target.is_some(),
        code,
    )
}

/// The run's report where `--report` asks, then standard output: the report (`--json`) or
/// the catalog records.
fn finish(
    report: &RunReport,
    path: Option<&std::path::Path>,
    json: bool,
    published: bool,
    code: ExitCode,
) -> ExitCode {
    if let Some(path) = path {
        if let Err(e) = report::write_report(path, report) {
            return fail(&e);
        }
        progress::info(format!("report: {}", path.display()));
    }
    if json {
        json_out(report);
    } else {
        print_records(&report.package, published);
    }
    code
}

/// The human summary of a run.
fn print_pressed(report: &RunReport, local: &std::path::Path) {
    let package = &report.package;
    for w in &package.warnings {
        progress::info(w.to_string());
    }
    let renditions: usize = package.tracks.iter().map(|t| t.renditions.len()).sum();
    progress::info(format!(
        "pressed {} track(s), {} rendition(s), {} rung(s) skipped -> {} ({:.1} s, {:.0}x realtime)",
        package.tracks.len(),
        renditions,
        package.skipped.len(),
        local.display(),
        report.stats.wall_seconds,
        report.stats.realtime_factor,
    ));
    for s in &package.skipped {
        progress::info(format!(
            "  skipped {} for {}: {}",
            s.rung, s.track, s.reason
        ));
    }
    for t in &package.tracks {
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
}

pub fn publish(args: PublishCmdArgs) -> ExitCode {
    let (store, notifier) = match (
        stores::open(&args.destination, &args.store),
        args.publish.notifier(),
    ) {
        (Ok(s), Ok(n)) => (s, n),
        (Err(code), _) | (_, Err(code)) => return ExitCode::from(code),
    };
    let published: Published = match pipeline::publish(
        &args.package,
        &*store,
        &*notifier,
        &args.publish.options(),
        &Uploads::new(),
    ) {
        Ok(p) => p,
        Err(e) => return fail(&e),
    };
    let code = print_published(&published);
    if let Some(path) = &args.report {
        if let Err(e) = report::write_json(path, &published.index) {
            return fail(&e);
        }
    }
    if args.json {
        json_out(&published.index);
    } else {
        print_records(&published.index, true);
    }
    code
}

/// `pressing qc DIR`: the QC page of a package written earlier.
pub fn qc(dir: &std::path::Path) -> ExitCode {
    match pressing::qc::write_page(dir) {
        Ok(page) => {
            println!("{}", page.display());
            ExitCode::SUCCESS
        }
        Err(e) => fail(&e),
    }
}

pub fn unpublish(args: UnpublishArgs) -> ExitCode {
    let publish = PublishArgs {
        catalog_url: args.catalog_url.clone(),
        ..PublishArgs::default()
    };
    let (store, notifier) = match (
        stores::open(&args.destination, &args.store),
        publish.notifier(),
    ) {
        (Ok(s), Ok(n)) => (s, n),
        (Err(code), _) | (_, Err(code)) => return ExitCode::from(code),
    };
    let result = match &args.ddex {
        Some(message) => {
            let text = match std::fs::read_to_string(message) {
                Ok(t) => t,
                Err(e) => {
                    progress::error(format!("{}: cannot read: {e}", message.display()));
                    return ExitCode::from(exit::BAD_INPUT);
                }
            };
            let ladder = match Ladder::load(&args.ladder) {
                Ok(l) => l,
                Err(e) => return fail(&pressing::Error::from(e)),
            };
            match pressing::ingest::ddex::takedown_of(message, &text, &ladder.deal_models) {
                Ok(Some(icpn)) => pipeline::unpublish_release(&icpn, &*store, &*notifier),
                Ok(None) => {
                    progress::error(format!(
                        "{}: the message's deals still allow a tier today, so it takes nothing down (fix: press and publish it: its publish withdraws the tiers it no longer allows)",
                        message.display()
                    ));
                    return ExitCode::from(exit::BAD_INPUT);
                }
                Err(f) => {
                    progress::error(format!(
                        "{} ({}): {} (fix: {})",
                        f.file,
                        f.location.as_deref().unwrap_or(""),
                        f.message,
                        f.fix
                    ));
                    return ExitCode::from(exit::BAD_INPUT);
                }
            }
        }
        None => pipeline::unpublish(&args.tracks, &*store, &*notifier),
    };
    let done = match result {
        Ok(d) => d,
        Err(e) => return fail(&e),
    };
    let mut rejected = false;
    for (track, r) in &done {
        match r {
            Some(r) => {
                rejected |= r.notification.rejected();
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
    if args.json {
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

pub fn ladders(action: Option<LaddersAction>) -> ExitCode {
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

impl KeyArgs {
    /// The key source the flags name: a CPIX document, or the raw keys (none given: no key,
    /// so a ladder that protects a tier fails naming the flags that would give one).
    pub fn source(&self) -> Result<Box<dyn KeySource>, KeyError> {
        if let Some(url) = &self.key_server {
            return Ok(Box::new(KeyServer::new(
                url,
                self.key_server_ca.as_deref(),
            )?));
        }
        match &self.cpix {
            Some(path) => Ok(Box::new(CpixFile::open(path)?)),
            None => Ok(Box::new(RawKeys::parse(&self.raw)?)),
        }
    }

    pub fn scheme(&self) -> Option<Scheme> {
        self.scheme.as_deref().and_then(Scheme::parse)
    }
}
