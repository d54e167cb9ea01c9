//! The pipeline: the only place that knows the order of the stages.
//!
//! `ingest` finds, decodes and measures masters; `transcode` plans rungs and its engine runs
//! the signal chain and encoders; `package` cuts segments; `manifest` writes playlists; the
//! report and catalog record describe the result; `publish` uploads a finished package to a
//! store and notifies the catalog. Each stage gets the previous stage's output; nothing here
//! encodes, writes boxes or talks to a network itself.
//!
//! Parallelism: programmes (a gapless album is one) run in parallel on a rayon pool; within a
//! programme the engine runs every rendition on its own thread (`transcode::engine`).

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::path::{Path, PathBuf};

use rayon::prelude::*;

use crate::catalog::{CatalogRecord, Notification, NotificationKind};
use crate::error::Error;
use crate::ingest::ddex;
use crate::ingest::fingerprint::{Fingerprint, ITEM_SECONDS, MIN_SIMILARITY};
use crate::ingest::metadata::ReleaseMetadata;
use crate::ingest::validate::{validate, Measured, ValidateOptions};
use crate::ingest::Finding;
use crate::ingest::{MasterFormat, TrackSource};
use crate::ladder::{Ladder, Tier};
use crate::layout;
use crate::manifest;
use crate::package::quality::{self, MasterAudio, Quality};
use crate::package::verify::{self, Verdict};
use crate::package::{self, LoudnessInfo, PackagedRendition, PackagerSink, RenditionPackager};
use crate::protect::{self, KeySource, RenditionProtection, Scheme, TrackKeys};
use crate::publish::{self, CatalogNotifier, PublishOptions, Store, UploadProgress};
use crate::report::{self, PackageIndex, RunReport, RunStats, TrackReport};
use crate::stats::{Stage, StageClock};
use crate::transcode::engine::{self, EncodedTrack, ProgrammeTrack};
use crate::transcode::{self, plan_renditions, RenditionPlan};

pub use crate::transcode::engine::{NoProgress, ProgressSink};

/// Temporary folder under the output folder; tracks move into place only when all succeed.
const STAGING_DIR: &str = ".pressing-staging";

/// Where a package bound for a store is served: an object key's public URL or locator.
pub type ServedAt<'a> = &'a (dyn Fn(&str) -> String + Sync);

pub struct RunOptions<'a> {
    pub inputs: Vec<PathBuf>,
    pub ladder: Ladder,
    pub out: PathBuf,
    /// Worker threads; `None` uses every core.
    pub jobs: Option<usize>,
    /// Treat the inputs as one continuous programme.
    pub gapless: bool,
    /// Accept lossy masters with a warning.
    pub allow_lossy: bool,
    /// An earlier decode pass of these masters (a fleet job's): validation reuses it
    /// instead of decoding every master once more.
    pub measured: Option<std::sync::Arc<Measured>>,
    /// What the index and the catalog records call a master, by its path (the fleet's
    /// incoming-store locator); a master not named here is called by its path.
    pub sources: HashMap<PathBuf, String>,
    /// Where the package will be served, when it is bound for a store: the catalog records
    /// carry these URLs from their first write.
    pub served_at: Option<ServedAt<'a>>,
    /// Which tiers are encrypted, how, and with whose keys (`None`: every tier clear).
    pub protection: Option<RunProtection<'a>>,
    /// Score every lossy rendition against its master (`--quality`; a ladder with
    /// `prune_quality_margin` is scored whatever this says).
    pub quality: bool,
}

/// What a run encrypts: the ladder's `[protection]` with the command line's overrides.
pub struct RunProtection<'a> {
    pub scheme: Scheme,
    /// The encrypted tiers (the ladder's and any the key source forces).
    pub tiers: Vec<Tier>,
    /// The tiers a listener may download for offline listening.
    pub offline: Vec<Tier>,
    /// The DRM systems to signal beside ClearKey (what a key server is asked for).
    pub systems: Vec<[u8; 16]>,
    pub keys: &'a dyn KeySource,
}

impl<'a> RunProtection<'a> {
    /// The ladder's `[protection]` (if any) with `--scheme` and the key source's forced tiers;
    /// `None` when nothing is to be encrypted.
    pub fn from_ladder(
        ladder: &Ladder,
        scheme: Option<Scheme>,
        keys: &'a dyn KeySource,
    ) -> Option<RunProtection<'a>> {
        let mut tiers: Vec<Tier> = ladder
            .protection
            .as_ref()
            .map(|p| p.tiers.clone())
            .unwrap_or_default();
        tiers.extend(keys.forced_tiers());
        tiers.sort();
        tiers.dedup();
        if tiers.is_empty() {
            return None;
        }
        Some(RunProtection {
            scheme: scheme
                .or(ladder.protection.as_ref().map(|p| p.scheme))
                .unwrap_or(Scheme::Cbcs),
            offline: ladder
                .protection
                .as_ref()
                .map(|p| p.offline_tiers())
                .unwrap_or_else(|| tiers.clone()),
            systems: ladder
                .protection
                .as_ref()
                .map(|p| p.systems.iter().map(|s| s.system_id()).collect())
                .unwrap_or_else(|| {
                    [protect::WIDEVINE, protect::PLAYREADY, protect::FAIRPLAY].to_vec()
                }),
            tiers,
            keys,
        })
    }
}

/// A track ready to transcode: its master's format and the renditions that apply.
struct PlannedTrack {
    source: TrackSource,
    format: MasterFormat,
    plans: Vec<RenditionPlan>,
    loudness: Option<LoudnessInfo>,
    /// The keys of its protected tiers (asked before anything is encoded).
    keys: Option<TrackKeys>,
    /// Where and when each tier may be offered (a DDEX release's deals; empty otherwise).
    availability: Vec<ddex::TierAvailability>,
    /// The master's acoustic fingerprint (`None`: too short to have one).
    fingerprint: Option<Fingerprint>,
}

/// Run the whole pipeline: ingest, transcode, package, manifests, catalog records and the
/// package index (`index.json`); returns the run's report.
pub fn run(opts: &RunOptions, progress: &dyn ProgressSink) -> Result<RunReport, Error> {
    transcode::init();
    let started = std::time::Instant::now();
    let clock = StageClock::default();
    let (release, validation) = clock.time_process(Stage::Validate, || {
        validate(
            &opts.inputs,
            ValidateOptions {
                allow_lossy: opts.allow_lossy,
                all_gapless: opts.gapless,
                metadata: None,
                writes_output: true,
                measured: opts.measured.clone(),
                cover_min_size: Some(opts.ladder.cover.min_size),
            },
        )
    });
    if validation.has_errors() {
        return Err(Error::Rejected(Box::new(validation)));
    }
    // The masters' fingerprints were made inside validation: their CPU moves to its own stage.
    let fingerprinting = std::time::Duration::from_nanos(
        validation
            .tracks
            .iter()
            .filter_map(|t| t.fingerprint.as_ref())
            .map(|f| f.cpu_nanos)
            .sum(),
    );
    clock.charge_to(Stage::Validate, Stage::Fingerprint, fingerprinting);
    let mut skipped = Vec::new();
    let mut planned = Vec::with_capacity(release.tracks.len());
    for source in &release.tracks {
        let format = source.format.clone().ok_or_else(|| {
            Error::Internal(format!("{:?} passed validation undecoded", source.path))
        })?;
        let (mut plans, mut skip) = plan_renditions(&source.id, &format, &opts.ladder);
        skipped.append(&mut skip);
        // A DDEX release's deals decide its tiers: a tier no deal allows is not packaged.
        let album = release.albums[source.album].as_ref();
        let availability = match album.and_then(|m| m.deals.as_ref()) {
            Some(deals) => {
                let a = ddex::availability(deals, &opts.ladder.deal_models, &ddex::today());
                plans.retain(|p| {
                    let allowed = a.iter().any(|x| x.tier == p.rung.tier);
                    if !allowed {
                        skipped.push(transcode::Skipped {
                            track: source.id.clone(),
                            rung: p.rung.id.clone(),
                            reason: format!(
                                "no deal allows tier {} (it needs a live deal with one of {} and a streaming use)",
                                p.rung.tier,
                                opts.ladder
                                    .deal_models
                                    .iter()
                                    .find(|(t, _)| *t == p.rung.tier)
                                    .map(|(_, m)| m.join(", "))
                                    .unwrap_or_default()
                            ),
                            scores: None,
                        });
                    }
                    allowed
                });
                if plans.is_empty() {
                    return Err(Error::Input {
                        path: source.path.clone(),
                        message: format!(
                            "no deal of the release allows any tier ({} deal(s); in DDEX no deal means not available), so nothing is packaged",
                            deals.len()
                        ),
                        fix: "add a ReleaseDeal whose DealTerms name a commercial model the ladder's [deals] maps to a tier, a streaming UseType, and a live validity period",
                    });
                }
                a
            }
            None => Vec::new(),
        };
        let loudness = validation
            .loudness_of(&source.id)
            .map(|(track, album)| LoudnessInfo {
                track: track.clone(),
                album: album.cloned(),
            });
        // Keys before any encoding: a missing key or a key server down fails the run at once.
        let keys = match &opts.protection {
            Some(p) => {
                let tiers: Vec<Tier> = p
                    .tiers
                    .iter()
                    .copied()
                    .filter(|t| plans.iter().any(|r| r.rung.tier == *t))
                    .collect();
                if tiers.is_empty() {
                    None
                } else {
                    Some(p.keys.track_keys(&protect::keys::KeyRequest {
                        content_id: &source.id,
                        tiers: &tiers,
                        scheme: p.scheme,
                        systems: &p.systems,
                    })?)
                }
            }
            None => None,
        };
        planned.push(PlannedTrack {
            source: source.clone(),
            format,
            plans,
            loudness,
            keys,
            availability,
            fingerprint: validation.fingerprint_of(&source.id).cloned(),
        });
    }
    // Each release's front cover in the sizes a catalog serves (checked at validation).
    let artwork = release
        .albums
        .iter()
        .map(|album| {
            let Some(cover) = album.as_ref().and_then(|m| m.cover.as_ref()) else {
                return Ok(None);
            };
            package::artwork::derive(cover, &opts.ladder.cover)
                .map(Some)
                .map_err(|message| Error::Input {
                    path: cover.clone(),
                    message: format!("the front cover cannot be resized: {message}"),
                    fix: "export the cover again as a baseline JPEG or a PNG",
                })
        })
        .collect::<Result<Vec<_>, Error>>()?;
    let programmes = &release.programmes;
    progress.run_started(planned.len());

    fs::create_dir_all(&opts.out).map_err(|source| Error::Output {
        path: opts.out.clone(),
        source,
    })?;
    let staging = opts.out.join(STAGING_DIR);
    let _ = fs::remove_dir_all(&staging);
    let result = (|| -> Result<(Vec<TrackReport>, Vec<transcode::Skipped>), Error> {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(opts.jobs.unwrap_or(0))
            .build()
            .map_err(|e| Error::Internal(format!("cannot start worker threads: {e}")))?;
        let encoded: Vec<Vec<(usize, EncodedTrack<PackagedRendition>)>> = pool.install(|| {
            programmes
                .par_iter()
                .map(|p| encode_programme(&planned, p, opts, &staging, progress, &clock))
                .collect::<Result<_, Error>>()
        })?;
        let mut tracks: Vec<_> = encoded.into_iter().flatten().collect();
        tracks.sort_by_key(|(index, _)| *index);
        let scoring = opts.quality || opts.ladder.prune_quality_margin.is_some();
        let mut judged =
            pool.install(|| judge_renditions(&planned, &tracks, &staging, &clock, scoring))?;
        let refused: Vec<Finding> = tracks
            .iter()
            .zip(&judged)
            .flat_map(|((index, t), j)| not_master(&planned[*index], t, j))
            .collect();
        if !refused.is_empty() {
            let mut report = validation.clone();
            report.errors += refused.len();
            report.findings.extend(refused);
            return Err(Error::Rejected(Box::new(report)));
        }
        if let Some(margin) = opts.ladder.prune_quality_margin {
            for ((index, t), j) in tracks.iter_mut().zip(judged.iter_mut()) {
                let track = &planned[*index];
                let mut pruned = prune(&track.source.id, t, j, margin);
                for s in &pruned {
                    let Some(i) = t.renditions.iter().position(|(p, _)| p.rung.id == s.rung) else {
                        continue;
                    };
                    let (_, r) = t.renditions.remove(i);
                    j.remove(i);
                    // The rung's folder, with every version of it.
                    let dir = staging.join(&track.source.id).join(&r.id);
                    fs::remove_dir_all(&dir)
                        .map_err(|source| Error::Output { path: dir, source })?;
                }
                skipped.append(&mut pruned);
            }
        }
        let reports = tracks
            .iter()
            .zip(&judged)
            .map(|((index, t), judged)| {
                let track = &planned[*index];
                let album = release.albums[track.source.album].as_ref();
                let cover = artwork[track.source.album].as_ref();
                write_manifests(track, t, &staging, album, cover, opts, judged)
            })
            .collect::<Result<Vec<_>, Error>>()?;
        publish_staged(&staging, &opts.out, &reports)?;
        Ok((reports, skipped))
    })();
    let _ = fs::remove_dir_all(&staging);
    let (tracks, skipped) = result?;
    let wall_seconds = started.elapsed().as_secs_f64();
    let audio_seconds: f64 = tracks.iter().map(|t| t.duration_seconds).sum();
    let stats = RunStats {
        wall_seconds,
        audio_seconds,
        realtime_factor: audio_seconds / wall_seconds,
        threads: opts.jobs.unwrap_or_else(rayon::current_num_threads),
        cpu_seconds: clock.report(),
    };
    let package = PackageIndex {
        warnings: validation.findings,
        ladder: opts.ladder.path.display().to_string(),
        gapless: release.is_gapless(),
        segment_seconds: opts.ladder.segment_seconds,
        single_file: opts.ladder.single_file,
        tracks,
        skipped,
    };
    report::write_index(&opts.out, &package)?;
    Ok(RunReport { package, stats })
}

/// Encode and package one programme; each track comes back with its index in `planned`.
fn encode_programme(
    planned: &[PlannedTrack],
    programme: &[usize],
    opts: &RunOptions,
    staging: &Path,
    progress: &dyn ProgressSink,
    clock: &StageClock,
) -> Result<Vec<(usize, EncodedTrack<PackagedRendition>)>, Error> {
    let tracks: Vec<ProgrammeTrack> = programme
        .iter()
        .map(|&i| ProgrammeTrack {
            source: &planned[i].source,
            format: &planned[i].format,
            plans: &planned[i].plans,
        })
        .collect();
    let ladder = &opts.ladder;
    let open_sink = |slot: usize,
                     plan: &RenditionPlan,
                     stream: &transcode::StreamConfig,
                     timing: &transcode::timeline::SetTiming| {
        let track = &planned[programme[slot]];
        let seconds = package::segment_seconds_for(
            track.format.declared_frames,
            track.format.sample_rate,
            ladder.segment_seconds,
        );
        let segment_len = (seconds * f64::from(plan.sample_rate)).round() as u64;
        let dir = staging.join(&track.source.id).join(&plan.rung.id);
        let protection = match (&opts.protection, &track.keys) {
            (Some(p), Some(keys)) => keys.key(plan.rung.tier).map(|key| {
                RenditionProtection::new(
                    p.scheme,
                    key.clone(),
                    protect::systems_for(&key.kid, p.scheme, &keys.systems, &p.systems),
                    &track.source.id,
                    &plan.rung.id,
                )
            }),
            _ => None,
        };
        Ok(PackagerSink {
            packager: RenditionPackager::new(
                &plan.rung.id,
                &dir,
                stream,
                segment_len,
                timing,
                ladder.single_file,
                protection,
            )?,
            segment_seconds: seconds,
            loudness: track.loudness.as_ref(),
        })
    };
    let encoded =
        engine::run_programme(&tracks, ladder.segment_seconds, &open_sink, progress, clock)?;
    Ok(programme.iter().copied().zip(encoded).collect())
}

/// What the run found of a packaged rendition, decoded again from its staged files.
struct Judged {
    /// Is it its master's audio (`package::verify`)?
    verdict: Verdict,
    /// Its quality score (`package::quality`): lossy renditions of a scored run.
    quality: Option<Quality>,
}

/// Each packaged rendition of each track decoded from its staged files, judged against its
/// master's fingerprint and, when `scoring`, scored against its master if it is lossy; in the
/// order of `tracks` and their renditions.
fn judge_renditions(
    planned: &[PlannedTrack],
    tracks: &[(usize, EncodedTrack<PackagedRendition>)],
    staging: &Path,
    clock: &StageClock,
    scoring: bool,
) -> Result<Vec<Vec<Judged>>, Error> {
    tracks
        .par_iter()
        .map(|(index, t)| {
            let track = &planned[*index];
            let dir = staging.join(&track.source.id);
            let failed = |r: &PackagedRendition, message: String| {
                Error::Internal(format!(
                    "rendition {} of {} cannot be judged: {message}",
                    r.id, track.source.id
                ))
            };
            let decoded =
                t.renditions
                    .par_iter()
                    .map(|(plan, r)| {
                        let windows = clock
                            .time(Stage::Verify, || verify::decode_windows(&dir, r))
                            .map_err(|message| failed(r, message))?;
                        let verdict = match &track.fingerprint {
                            Some(master) => clock
                                .time(Stage::Verify, || verify::judge_windows(&windows, master)),
                            None => Verdict::TooShort,
                        };
                        // Kept for the scores: lossy renditions of a scored run.
                        let kept = (scoring && !plan.rung.codec.is_lossless()).then_some(windows);
                        Ok((verdict, kept))
                    })
                    .collect::<Result<Vec<_>, Error>>()?;
            if decoded.iter().all(|(_, w)| w.is_none()) {
                return Ok(decoded
                    .into_iter()
                    .map(|(verdict, _)| Judged {
                        verdict,
                        quality: None,
                    })
                    .collect());
            }
            // The master's stretches that the windows need, read once for every rendition.
            let spans: Vec<(f64, f64)> = decoded
                .iter()
                .filter_map(|(_, w)| w.as_ref())
                .flat_map(quality::needed_seconds)
                .collect();
            let rates: Vec<u32> = t.renditions.iter().map(|(p, _)| p.sample_rate).collect();
            let master = clock
                .time(Stage::Quality, || {
                    MasterAudio::read(&track.source.path, &spans, &rates)
                })
                .map_err(|message| {
                    Error::Internal(format!(
                        "{} cannot be read again for its quality scores: {message}",
                        track.source.path.display()
                    ))
                })?;
            decoded
                .into_par_iter()
                .zip(&t.renditions)
                .map(|((verdict, windows), (_, r))| {
                    let quality = match windows {
                        Some(w) => clock
                            .time(Stage::Quality, || quality::score(&w, &master))
                            .map_err(|message| failed(r, message))?,
                        None => None,
                    };
                    Ok(Judged { verdict, quality })
                })
                .collect()
        })
        .collect()
}

/// The lossy rungs of a track that pruning skips: for each codec, from the lowest bit rate up,
/// a rung whose score is less than `margin` above the last kept rung's is skipped (the lowest
/// of a codec is always kept). Per codec, not per family: HE-AAC's spectral band replication
/// is a different trade from AAC-LC's, and a listener's device may decode only one. A rung
/// without a score (too short to score) is kept, and is no other rung's reference.
fn prune(
    track: &str,
    t: &EncodedTrack<PackagedRendition>,
    judged: &[Judged],
    margin: f64,
) -> Vec<transcode::Skipped> {
    let mut scored: Vec<(&RenditionPlan, f64)> = t
        .renditions
        .iter()
        .zip(judged)
        .filter_map(|((plan, _), j)| j.quality.as_ref().map(|q| (plan, q.mos)))
        .collect();
    scored.sort_by_key(|(p, _)| (p.rung.codec, p.bitrate));
    let mut skipped = Vec::new();
    let mut kept: Option<(&RenditionPlan, f64)> = None;
    for (plan, mos) in scored {
        match kept {
            Some((below, score)) if below.rung.codec == plan.rung.codec && mos < score + margin => {
                skipped.push(transcode::Skipped {
                    track: track.to_string(),
                    rung: plan.rung.id.clone(),
                    reason: format!(
                        "pruned: its quality score {mos:.3} is less than {margin} above {}'s {score:.3}, the next lower kept rung of {} (the ladder's prune_quality_margin)",
                        below.rung.id,
                        plan.rung.codec
                    ),
                    scores: Some(transcode::PrunedScores {
                        quality: mos,
                        below: below.rung.id.clone(),
                        below_quality: score,
                    }),
                });
            }
            _ => kept = Some((plan, mos)),
        }
    }
    skipped
}

/// The findings of a track's renditions that are not its master's audio.
fn not_master(
    track: &PlannedTrack,
    encoded: &EncodedTrack<PackagedRendition>,
    judged: &[Judged],
) -> Vec<Finding> {
    encoded
        .renditions
        .iter()
        .zip(judged)
        .filter_map(|((plan, _), j)| match &j.verdict {
            Verdict::Differs(m) => Some(
                Finding::error(
                    "rendition.not-master",
                    &track.source.path,
                    format!(
                        "rendition {} is not this master's audio: {:.1}% of its fingerprint's bits agree with the master's (at least {:.0}% expected), best at an offset of {} items ({:+.2} s)",
                        plan.rung.id,
                        m.similarity * 100.0,
                        MIN_SIMILARITY * 100.0,
                        m.offset,
                        f64::from(m.offset) * ITEM_SECONDS
                    ),
                    "nothing was published: this is a fault of the encoder or packager, not of the master; report it with the master to the pressing maintainers",
                )
                .at(format!("rendition {}", plan.rung.id)),
            ),
            _ => None,
        })
        .collect()
}

/// Media playlists, entry manifests (`manifest` decides the sets) and the catalog record of a
/// track; returns its report entry.
fn write_manifests(
    planned: &PlannedTrack,
    track: &EncodedTrack<PackagedRendition>,
    staging: &Path,
    album: Option<&ReleaseMetadata>,
    cover: Option<&package::artwork::Artwork>,
    opts: &RunOptions,
    judged: &[Judged],
) -> Result<TrackReport, Error> {
    let id = &planned.source.id;
    let dir = staging.join(id);
    let write = |name: &str, text: &[u8]| -> Result<(), Error> {
        let path = dir.join(name);
        fs::write(&path, text).map_err(|source| Error::Output { path, source })
    };
    for (_, r) in &track.renditions {
        write(
            &manifest::media_playlist_path(r),
            manifest::create_media_playlist(r).as_bytes(),
        )?;
    }
    let members: Vec<_> = track
        .renditions
        .iter()
        .map(|(plan, r)| (plan.rung.tier, plan.rung.codec.family(), r))
        .collect();
    let entries = manifest::create_entry_manifests(&members);
    for e in &entries {
        write(&e.path, e.text.as_bytes())?;
    }
    let mut report = report::track_report(
        &planned.source,
        &planned.format,
        planned.loudness.as_ref(),
        track,
        &entries,
    );
    if let Some(name) = opts.sources.get(&planned.source.path) {
        report.source = name.clone();
    }
    if let Some(p) = &opts.protection {
        report.offline = p.offline.clone();
    }
    report.availability = planned.availability.clone();
    report.fingerprint = planned.fingerprint.clone();
    for (r, j) in report.renditions.iter_mut().zip(judged) {
        r.similarity = j
            .verdict
            .similarity()
            .map(|x| (x * 1000.0).round() / 1000.0);
        r.quality = j.quality.clone();
    }
    for (rel, image) in cover.iter().flat_map(|a| a.files()) {
        let path = dir.join(&rel);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).map_err(|source| Error::Output {
                path: parent.to_owned(),
                source,
            })?;
        }
        write(&rel, &image.jpeg)?;
        report.cover.push(package::artwork::CoverImage {
            path: layout::track_key(id, &rel),
            width: image.size,
            height: image.size,
            bytes: image.jpeg.len() as u64,
        });
    }
    // The record's URLs: the entry manifests', the cover's and its own (what players and the
    // catalog fetch).
    let urls = match opts.served_at {
        Some(url) => entries
            .iter()
            .map(|e| layout::track_key(id, &e.path))
            .chain(report.cover.iter().map(|c| c.path.clone()))
            .chain([report.catalog.clone()])
            .map(|key| {
                let at = url(&key);
                (key, at)
            })
            .collect(),
        None => BTreeMap::new(),
    };
    let record = CatalogRecord::new(
        report.clone(),
        planned.source.metadata.clone(),
        album.cloned(),
        urls,
    );
    write(layout::CATALOG_RECORD, &record.to_json())?;
    Ok(report)
}

/// Move each staged track folder into the output folder, replacing an earlier run's.
fn publish_staged(staging: &Path, out: &Path, tracks: &[TrackReport]) -> Result<(), Error> {
    for t in tracks {
        let from = staging.join(&t.id);
        let to = out.join(&t.id);
        if to.exists() {
            fs::remove_dir_all(&to).map_err(|source| Error::Output {
                path: to.clone(),
                source,
            })?;
        }
        fs::rename(&from, &to).map_err(|source| Error::Output { path: to, source })?;
    }
    Ok(())
}

/// What publishing a package did, track by track (`tracks[].publish`).
#[derive(Clone, Debug)]
pub struct Published {
    pub index: PackageIndex,
}

impl Published {
    /// The first track whose notification the catalog rejected (a 4xx other than 429).
    pub fn rejected(&self) -> Option<&TrackReport> {
        self.index.tracks.iter().find(|t| {
            t.publish
                .as_ref()
                .is_some_and(|p| p.notification.rejected())
        })
    }

    /// Bytes uploaded, over every track.
    pub fn bytes(&self) -> u64 {
        self.index
            .tracks
            .iter()
            .filter_map(|t| t.publish.as_ref())
            .map(|p| p.bytes)
            .sum()
    }
}

/// Publish a package folder that `run` wrote (its `index.json` says what is in it) to a
/// store, and notify the catalog. A catalog record whose URLs are not this destination's is
/// written again with them before it is uploaded.
pub fn publish(
    dir: &Path,
    store: &dyn Store,
    notifier: &dyn CatalogNotifier,
    opts: &PublishOptions,
    progress: &dyn UploadProgress,
) -> Result<Published, Error> {
    let mut index = report::read_index(dir)?;
    // A DDEX TestMessage's release is pressed, not published, unless asked: checked for every
    // track before anything is uploaded, so no part of it is published.
    if !opts.test_messages {
        for track in &index.tracks {
            let path = dir.join(&track.catalog);
            let test = fs::read(&path)
                .ok()
                .and_then(|b| CatalogRecord::from_json(&b).ok())
                .and_then(|r| r.release)
                .and_then(|r| r.message)
                .is_some_and(|m| m.test);
            if test {
                return Err(Error::Input {
                    path,
                    message: "the release came in a DDEX TestMessage: it is pressed, not published"
                        .into(),
                    fix: "publish it with --publish-test-message, or deliver a LiveMessage",
                });
            }
        }
    }
    let mut releases: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for track in &mut index.tracks {
        let artifacts = track.artifacts(dir)?;
        let path = dir.join(&track.catalog);
        let bytes = fs::read(&path).map_err(|source| Error::Input {
            path: path.clone(),
            message: format!("cannot read the catalog record: {source}"),
            fix: "give the folder `pressing run --out` wrote",
        })?;
        let mut record = CatalogRecord::from_json(&bytes).map_err(|e| Error::Input {
            path: path.clone(),
            message: format!("not a catalog record: {e}"),
            fix: "give the folder `pressing run --out` wrote",
        })?;
        let urls: BTreeMap<String, String> = artifacts
            .iter()
            .filter(|a| a.kind.has_url())
            .map(|a| {
                let url = publish::object_url(opts.public_url.as_deref(), store, &a.key);
                (a.key.clone(), url)
            })
            .collect();
        if record.urls != urls {
            record.urls = urls;
            fs::write(&path, record.to_json()).map_err(|source| Error::Output {
                path: path.clone(),
                source,
            })?;
        }
        let body = |digest: &str| {
            Notification::of_record(NotificationKind::Published, &record)
                .with_package_sha256(digest)
                .to_bytes()
        };
        let package = publish::TrackPackage {
            track: track.id.clone(),
            artifacts,
        };
        track.publish = Some(publish::publish_track(
            &package, &body, store, notifier, opts, progress,
        )?);
        if let Some(upc) = record.release.as_ref().and_then(|r| r.upc.clone()) {
            releases.entry(upc).or_default().push(track.id.clone());
        }
    }
    // Each release's index (`layout::release_index`): its tracks, with any published before.
    for (upc, tracks) in releases {
        update_release_index(store, &upc, |ids| ids.extend(tracks))?;
    }
    Ok(Published { index })
}

/// What a release's index object holds.
#[derive(serde::Serialize, serde::Deserialize, Default)]
struct ReleaseIndex {
    upc: String,
    tracks: std::collections::BTreeSet<String>,
}

/// Read, change and write (or, emptied, delete) a release's index in a store.
fn update_release_index(
    store: &dyn Store,
    upc: &str,
    change: impl FnOnce(&mut std::collections::BTreeSet<String>),
) -> Result<(), Error> {
    let key = layout::release_index(upc);
    let mut index: ReleaseIndex = store
        .get(&key)?
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default();
    let before = index.tracks.clone();
    index.upc = layout::upc_of(upc).to_string();
    change(&mut index.tracks);
    if index.tracks == before && !before.is_empty() {
        return Ok(());
    }
    if index.tracks.is_empty() {
        store.delete(&[key])?;
    } else {
        let body = serde_json::to_vec_pretty(&index).expect("an index serialises");
        store.put_bytes(&key, &body, "application/json", "private, no-cache")?;
    }
    Ok(())
}

/// The tracks a store's release index lists for an ICPN (empty when there is none).
pub fn release_tracks(store: &dyn Store, icpn: &str) -> Result<Vec<String>, Error> {
    let index: Option<ReleaseIndex> = store
        .get(&layout::release_index(icpn))?
        .and_then(|b| serde_json::from_slice(&b).ok());
    Ok(index
        .map(|i| i.tracks.into_iter().collect())
        .unwrap_or_default())
}

/// Take a whole release down (a DDEX PurgeReleaseMessage names only the release): every track
/// its index lists, then the index.
pub fn unpublish_release(
    icpn: &str,
    store: &dyn Store,
    notifier: &dyn CatalogNotifier,
) -> Result<Vec<(String, Option<publish::UnpublishReport>)>, Error> {
    let tracks = release_tracks(store, icpn)?;
    let done = unpublish(&tracks, store, notifier)?;
    update_release_index(store, icpn, |ids| ids.clear())?;
    Ok(done)
}

/// Take tracks down from a store and tell the catalog (`publish::unpublish_track`); a track
/// with nothing in the store is `None`.
pub fn unpublish(
    tracks: &[String],
    store: &dyn Store,
    notifier: &dyn CatalogNotifier,
) -> Result<Vec<(String, Option<publish::UnpublishReport>)>, Error> {
    let mut out = Vec::new();
    for t in tracks {
        // The record names the track's release: its index no longer lists the track.
        let upc = std::cell::RefCell::new(None);
        let body = |record: Option<&[u8]>| {
            let record = record.and_then(|b| CatalogRecord::from_json(b).ok());
            *upc.borrow_mut() = record
                .as_ref()
                .and_then(|r| r.release.as_ref())
                .and_then(|r| r.upc.clone());
            let n = match &record {
                Some(r) => Notification::of_record(NotificationKind::Unpublished, r),
                None => Notification::bare(NotificationKind::Unpublished, t),
            };
            serde_json::to_value(n).expect("a notification serialises")
        };
        match publish::unpublish_track(t, store, notifier, &body) {
            Ok(r) => out.push((t.clone(), Some(r))),
            Err(publish::PublishError::NotPublished { .. }) => out.push((t.clone(), None)),
            Err(e) => return Err(e.into()),
        }
        if let Some(upc) = upc.into_inner() {
            update_release_index(store, &upc, |ids| {
                ids.remove(t);
            })?;
        }
    }
    Ok(out)
}
