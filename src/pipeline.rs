//! The pipeline: the only place that knows the order of the stages.
//!
//! `ingest` finds and decodes masters, `transcode` plans rungs and runs the signal chain and
//! encoders, `package` writes segments, `manifest` writes playlists, and this module writes the
//! report. Tracks of one gapless programme share one continuous signal chain (resampler and
//! dither state carry across track boundaries); other tracks are independent programmes.
//!
//! Parallelism: programmes run in parallel on a rayon pool. Within a programme, a producer
//! decodes, resamples (once per output rate, rates in parallel) and dithers one second of audio
//! at a time, and every rendition is an independent consumer on its own thread, fed through a
//! bounded queue: no rung waits for the slowest at each chunk, and the cores stay busy to the
//! end of an album. Memory stays bounded: the producer runs at most a few chunks ahead, and
//! segments go to disk as soon as they are final.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rayon::prelude::*;

use crate::catalog::{self, CatalogRecord};
use crate::error::Error;
use crate::ingest::metadata::ReleaseMetadata;
use crate::ingest::validate::{validate, ValidateOptions};
use crate::ingest::{MasterFormat, MasterReader, SampleKind, TrackSource};
use crate::ladder::{Family, Ladder, Tier};
use crate::manifest;
use crate::package::{self, LoudnessInfo, PackagedRendition, RenditionPackager};
use crate::report::{MpdRef, PlaylistRef, RenditionReport, RunReport, RunStats, TrackReport};
use crate::stats::{Stage, StageClock};
use crate::transcode::{
    self, plan_renditions, Encoder, InputKind, Pcm, Quantizer, RenditionPlan, StreamResampler,
};

/// Chunks the producer may run ahead of the slowest rendition.
const QUEUE_CHUNKS: usize = 3;

/// Seconds of master audio processed per step: long enough that the per-step join costs
/// little, short enough that memory stays small (about 1.5 MB per output rate at 192 kHz).
const CHUNK_SECONDS: usize = 1;

/// Temporary folder under the output folder; tracks move into place only when all succeed.
const STAGING_DIR: &str = ".pressing-staging";

pub struct RunOptions {
    pub inputs: Vec<PathBuf>,
    pub ladder: Ladder,
    pub out: PathBuf,
    /// Worker threads; `None` uses every core.
    pub jobs: Option<usize>,
    /// Treat the inputs as one continuous programme.
    pub gapless: bool,
    /// Accept lossy masters with a warning.
    pub allow_lossy: bool,
}

/// Progress events, for a terminal bar or log lines. Must be cheap: called once per chunk.
pub trait ProgressSink: Sync {
    fn track_started(&self, _track: &str, _total_frames: Option<u64>) {}
    fn track_advanced(&self, _track: &str, _frames: u64) {}
    fn track_finished(&self, _track: &str) {}
}

/// A sink that reports nothing.
pub struct NoProgress;
impl ProgressSink for NoProgress {}

/// A track ready to transcode: its master's format and the renditions that apply.
struct PlannedTrack {
    source: TrackSource,
    format: MasterFormat,
    plans: Vec<RenditionPlan>,
    loudness: Option<LoudnessInfo>,
}

/// What a finished track hands back for manifests and the report.
struct EncodedTrack {
    index: usize,
    frames: u64,
    renditions: Vec<(RenditionPlan, PackagedRendition)>,
}

/// Run the whole pipeline: ingest, transcode, package, manifests, report.
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
            },
        )
    });
    if validation.has_errors() {
        return Err(Error::Rejected(Box::new(validation)));
    }
    let mut skipped = Vec::new();
    let mut planned = Vec::with_capacity(release.tracks.len());
    for source in &release.tracks {
        let reader = MasterReader::open(&source.path, false)?;
        let format = reader.format().clone();
        let (plans, mut skip) = plan_renditions(&source.id, &format, &opts.ladder);
        skipped.append(&mut skip);
        let loudness = validation
            .loudness_of(&source.id)
            .map(|(track, album)| LoudnessInfo {
                track: track.clone(),
                album: album.cloned(),
            });
        planned.push(PlannedTrack {
            source: source.clone(),
            format,
            plans,
            loudness,
        });
    }
    let programmes = &release.programmes;

    fs::create_dir_all(&opts.out).map_err(|source| Error::Output {
        path: opts.out.clone(),
        source,
    })?;
    let staging = opts.out.join(STAGING_DIR);
    let _ = fs::remove_dir_all(&staging);
    let result = (|| -> Result<Vec<TrackReport>, Error> {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(opts.jobs.unwrap_or(0))
            .build()
            .map_err(|e| Error::Internal(format!("cannot start worker threads: {e}")))?;
        let encoded: Vec<Vec<EncodedTrack>> = pool.install(|| {
            programmes
                .par_iter()
                .map(|p| run_programme(&planned, p, &opts.ladder, &staging, progress, &clock))
                .collect::<Result<_, Error>>()
        })?;
        let mut tracks: Vec<EncodedTrack> = encoded.into_iter().flatten().collect();
        tracks.sort_by_key(|t| t.index);
        let reports = tracks
            .iter()
            .map(|t| {
                let track = &planned[t.index];
                let album = release.albums[track.source.album].as_ref();
                write_manifests(track, t, &staging, album)
            })
            .collect::<Result<Vec<_>, Error>>()?;
        publish_staged(&staging, &opts.out, &reports)?;
        Ok(reports)
    })();
    let _ = fs::remove_dir_all(&staging);
    let tracks = result?;
    let wall_seconds = started.elapsed().as_secs_f64();
    let audio_seconds: f64 = tracks.iter().map(|t| t.duration_seconds).sum();
    let stats = RunStats {
        wall_seconds,
        audio_seconds,
        realtime_factor: audio_seconds / wall_seconds,
        threads: opts.jobs.unwrap_or_else(rayon::current_num_threads),
        cpu_seconds: clock.report(),
    };
    Ok(RunReport {
        stats,
        warnings: validation.findings,
        ladder: opts.ladder.path.display().to_string(),
        gapless: release.is_gapless(),
        segment_seconds: opts.ladder.segment_seconds,
        tracks,
        skipped,
    })
}

/// A rendition being encoded: which track and signal it takes, and its encoder and packager.
struct RenditionRun {
    track: usize,
    plan: RenditionPlan,
    input: InputKind,
    encoder: Box<dyn Encoder>,
    packager: RenditionPackager,
}

impl RenditionRun {
    fn feed(&mut self, pcm: Pcm<'_>, clock: &StageClock) -> Result<(), Error> {
        clock.time(Stage::Encode(self.plan.rung.codec), || {
            self.encoder.send(pcm)
        })?;
        self.drain(clock)
    }

    fn drain(&mut self, clock: &StageClock) -> Result<(), Error> {
        clock.time(Stage::Package, || {
            while let Some(p) = self.encoder.receive() {
                self.packager.push(p)?;
            }
            Ok(())
        })
    }
}

/// The signal chain to one output rate: a resampler and a quantizer per integer depth.
struct RateStage {
    rate: u32,
    resampler: StreamResampler,
    quantizers: Vec<Quantizer>,
    /// Output frames emitted so far.
    position: u64,
}

/// One chunk of the programme at one output rate, ready for the encoders.
struct RateChunk {
    rate: u32,
    /// Output frame of the programme where this chunk starts.
    position: u64,
    float: Vec<f32>,
    /// (bits, samples) per integer depth.
    ints: Vec<(u8, Vec<i32>)>,
}

/// A chunk for every output rate, and the track boundaries known when it was made.
struct Prepared {
    rates: Vec<RateChunk>,
    ends: Vec<u64>,
    channels: usize,
}

/// Decodes the programme's masters in order and runs the signal chain, a chunk at a time.
struct Producer<'a> {
    planned: &'a [PlannedTrack],
    programme: &'a [usize],
    channels: usize,
    reader: MasterReader,
    slot: usize,
    frames_before: u64,
    /// Track boundaries in master frames, known as each master ends.
    ends: Vec<u64>,
    stages: Vec<RateStage>,
    done: bool,
}

impl Producer<'_> {
    fn next(
        &mut self,
        progress: &dyn ProgressSink,
        clock: &StageClock,
    ) -> Result<Option<Prepared>, Error> {
        if self.done {
            return Ok(None);
        }
        let frames = CHUNK_SECONDS * self.reader.format().sample_rate as usize;
        let mut chunk: Vec<f32> = Vec::with_capacity((frames + 8192) * self.channels);
        let decoding = cpu_time::ThreadTime::try_now().ok();
        while chunk.len() < frames * self.channels {
            match self.reader.next_chunk()? {
                Some(samples) => chunk.extend_from_slice(samples),
                None => {
                    self.frames_before += self.reader.frames_read();
                    self.ends.push(self.frames_before);
                    progress.track_finished(&self.planned[self.programme[self.slot]].source.id);
                    self.slot += 1;
                    if self.slot == self.programme.len() {
                        self.done = true;
                        break;
                    }
                    let next = &self.planned[self.programme[self.slot]];
                    self.reader = MasterReader::open(&next.source.path, false)?;
                    progress.track_started(&next.source.id, self.reader.format().declared_frames);
                }
            }
        }
        if let Some(t) = decoding {
            clock.add(Stage::Decode, t.elapsed());
        }
        if !self.done {
            let id = &self.planned[self.programme[self.slot]].source.id;
            progress.track_advanced(id, self.reader.frames_read());
        }
        let (channels, done) = (self.channels, self.done);
        let rates = self
            .stages
            .par_iter_mut()
            .map(|st| -> Result<RateChunk, Error> {
                let mut float = Vec::new();
                clock.time(Stage::Resample, || -> Result<(), Error> {
                    st.resampler.process(&chunk, &mut float)?;
                    if done {
                        st.resampler.finish(&mut float)?;
                    }
                    Ok(())
                })?;
                let ints = clock.time(Stage::Quantize, || {
                    st.quantizers
                        .iter_mut()
                        .map(|q| {
                            let mut out = Vec::with_capacity(float.len());
                            q.process(&float, &mut out);
                            (q.bits(), out)
                        })
                        .collect()
                });
                let position = st.position;
                st.position += (float.len() / channels) as u64;
                Ok(RateChunk {
                    rate: st.rate,
                    position,
                    float,
                    ints,
                })
            })
            .collect::<Result<Vec<_>, Error>>()?;
        Ok(Some(Prepared {
            rates,
            ends: self.ends.clone(),
            channels,
        }))
    }
}

/// Feed a rendition its track's part of a prepared chunk.
fn route(
    run: &mut RenditionRun,
    chunk: &Prepared,
    master_rate: u32,
    clock: &StageClock,
) -> Result<(), Error> {
    let rc = chunk
        .rates
        .iter()
        .find(|r| r.rate == run.plan.sample_rate)
        .expect("a stage exists for every rendition rate");
    let ch = chunk.channels;
    let scale = |f: u64| transcode::scale_frames(f, master_rate, rc.rate);
    let start = match run.track {
        0 => 0,
        // The previous track has not ended yet, so none of this output is ours.
        t => match chunk.ends.get(t - 1) {
            Some(&e) => scale(e),
            None => return Ok(()),
        },
    };
    let end = chunk.ends.get(run.track).map_or(u64::MAX, |&e| scale(e));
    let len = (rc.float.len() / ch) as u64;
    let from = start.max(rc.position).min(rc.position + len);
    let to = end.min(rc.position + len).max(from);
    if from == to {
        return Ok(());
    }
    let (a, b) = (
        (from - rc.position) as usize * ch,
        (to - rc.position) as usize * ch,
    );
    match run.input {
        InputKind::Float => run.feed(Pcm::F32(&rc.float[a..b]), clock),
        InputKind::Int { bits } => {
            let (_, samples) = rc
                .ints
                .iter()
                .find(|(b, _)| *b == bits)
                .expect("a quantizer exists for every integer depth");
            run.feed(Pcm::I32(&samples[a..b]), clock)
        }
    }
}

fn run_programme(
    planned: &[PlannedTrack],
    programme: &[usize],
    ladder: &Ladder,
    staging: &Path,
    progress: &dyn ProgressSink,
    clock: &StageClock,
) -> Result<Vec<EncodedTrack>, Error> {
    let first = &planned[programme[0]].format;
    let master_rate = first.sample_rate;
    let channels = first.channels;
    let master_bits = programme
        .iter()
        .map(|&i| match planned[i].format.kind {
            SampleKind::Float => 32,
            SampleKind::Int => planned[i].format.bits_per_sample,
        })
        .max()
        .unwrap_or(16);

    // Open every encoder first: a rung the encoder refuses fails the run before any work.
    let mut runs = Vec::new();
    for (slot, &ti) in programme.iter().enumerate() {
        let track = &planned[ti];
        for plan in &track.plans {
            let encoder = transcode::open_encoder(plan)?;
            let stream = encoder.stream_config();
            let segment_len = (ladder.segment_seconds * f64::from(plan.sample_rate)).round() as u64;
            let dir = staging.join(&track.source.id).join(&plan.rung.id);
            let packager =
                RenditionPackager::new(&plan.rung.id, &dir, stream.priming, segment_len)?;
            runs.push(RenditionRun {
                track: slot,
                plan: plan.clone(),
                input: encoder.input_kind(),
                encoder,
                packager,
            });
        }
    }

    // One stage per output rate, with one quantizer per integer depth asked for at that rate.
    let mut rates: BTreeMap<u32, Vec<u8>> = BTreeMap::new();
    for r in &runs {
        let depths = rates.entry(r.plan.sample_rate).or_default();
        if let InputKind::Int { bits } = r.input {
            if !depths.contains(&bits) {
                depths.push(bits);
            }
        }
    }
    let mut stages = Vec::new();
    for (&rate, depths) in &rates {
        let resampled = rate != master_rate;
        stages.push(RateStage {
            rate,
            resampler: StreamResampler::new(master_rate, rate, channels)?,
            quantizers: depths
                .iter()
                .map(|&bits| Quantizer::new(bits, resampled || master_bits > bits))
                .collect(),
            position: 0,
        });
    }
    let mut producer = Producer {
        planned,
        programme,
        channels: channels as usize,
        reader: MasterReader::open(&planned[programme[0]].source.path, false)?,
        slot: 0,
        frames_before: 0,
        ends: Vec::with_capacity(programme.len()),
        stages,
        done: false,
    };
    progress.track_started(
        &planned[programme[0]].source.id,
        producer.reader.format().declared_frames,
    );

    // Every rendition is an independent consumer on its own thread, fed through a bounded
    // queue: no rung waits for the slowest at each chunk, the producer runs ahead by at most
    // QUEUE_CHUNKS chunks (bounded memory), and the operating system spreads the encoders over
    // the cores. Programmes still run in parallel on the rayon pool.
    let master_frames_of = |ends: &[u64], track: usize| {
        let start = if track == 0 { 0 } else { ends[track - 1] };
        (start, ends[track])
    };
    let results: Vec<Result<(usize, RenditionPlan, PackagedRendition), Error>> =
        std::thread::scope(|scope| {
            let mut senders = Vec::with_capacity(runs.len());
            let mut handles = Vec::with_capacity(runs.len());
            for mut run in runs {
                let (tx, rx) = std::sync::mpsc::sync_channel::<Arc<Prepared>>(QUEUE_CHUNKS);
                senders.push(tx);
                handles.push(scope.spawn(move || {
                    let mut last: Option<Arc<Prepared>> = None;
                    for chunk in rx {
                        route(&mut run, &chunk, master_rate, clock)?;
                        last = Some(chunk);
                    }
                    // The queue closed: the producer finished (or failed, and its error wins).
                    let ends = last.map(|c| c.ends.clone()).unwrap_or_default();
                    if ends.len() <= run.track {
                        return Err(Error::Internal("the programme ended early".into()));
                    }
                    clock.time(Stage::Encode(run.plan.rung.codec), || run.encoder.finish())?;
                    run.drain(clock)?;
                    let rate = run.plan.sample_rate;
                    let scale = |f: u64| transcode::scale_frames(f, master_rate, rate);
                    let (start, end) = master_frames_of(&ends, run.track);
                    let presented = scale(end) - scale(start);
                    let max_segments =
                        package::segment_count(end - start, master_rate, ladder.segment_seconds);
                    let stream = run.encoder.stream_config();
                    let loudness = planned[programme[run.track]].loudness.as_ref();
                    let packaged = clock.time(Stage::Package, || {
                        run.packager
                            .finish(stream, presented, max_segments, loudness)
                    })?;
                    Ok((run.track, run.plan, packaged))
                }));
            }
            let produced = (|| -> Result<(), Error> {
                while let Some(chunk) = producer.next(progress, clock)? {
                    let chunk = Arc::new(chunk);
                    for tx in &senders {
                        // A consumer that stopped has an error; its join reports it.
                        let _ = tx.send(Arc::clone(&chunk));
                    }
                }
                Ok(())
            })();
            drop(senders);
            let mut results: Vec<_> = handles
                .into_iter()
                .map(|h| {
                    h.join().unwrap_or_else(|_| {
                        Err(Error::Internal("an encoder thread panicked".into()))
                    })
                })
                .collect();
            if let Err(e) = produced {
                results.insert(0, Err(e));
            }
            results
        });
    let finished = results.into_iter().collect::<Result<Vec<_>, Error>>()?;
    let ends = producer.ends;
    let starts: Vec<u64> = std::iter::once(0).chain(ends.iter().copied()).collect();

    let mut tracks: Vec<EncodedTrack> = programme
        .iter()
        .enumerate()
        .map(|(slot, &index)| EncodedTrack {
            index,
            frames: starts[slot + 1] - starts[slot],
            renditions: Vec::new(),
        })
        .collect();
    for (slot, plan, packaged) in finished {
        tracks[slot].renditions.push((plan, packaged));
    }
    for t in &mut tracks {
        // Ladder order, whatever order the parallel flush finished in.
        let order = |id: &str| ladder.rungs.iter().position(|r| r.id == id);
        t.renditions.sort_by_key(|(p, _)| order(&p.rung.id));
    }
    Ok(tracks)
}

/// Media playlists, per-(tier, family) multivariant playlists and per-tier MPDs for a track,
/// and its catalog record.
fn write_manifests(
    planned: &PlannedTrack,
    track: &EncodedTrack,
    staging: &Path,
    album: Option<&ReleaseMetadata>,
) -> Result<TrackReport, Error> {
    let id = &planned.source.id;
    let dir = staging.join(id);
    let write = |name: &str, text: &str| -> Result<(), Error> {
        let path = dir.join(name);
        fs::write(&path, text).map_err(|source| Error::Output { path, source })
    };
    let mut renditions = Vec::new();
    for (plan, r) in &track.renditions {
        let playlist = manifest::media_playlist_path(&r.id);
        write(&playlist, &manifest::create_media_playlist(r))?;
        renditions.push(RenditionReport {
            id: r.id.clone(),
            codec: plan.rung.codec,
            codecs: r.codecs.clone(),
            tier: plan.rung.tier,
            family: plan.rung.codec.family(),
            sample_rate: r.stream.sample_rate,
            channels: r.stream.channels,
            bits_per_sample: r.stream.bits_per_sample,
            target_bitrate: plan.bitrate,
            bandwidth: r.bandwidth,
            average_bandwidth: r.average_bandwidth,
            init: format!("{id}/{}/{}", r.id, r.init_file),
            playlist: format!("{id}/{playlist}"),
            segments: r.segments.len(),
            priming_samples: r.stream.priming,
            duration_samples: r.presented_samples,
        });
    }
    let duration_seconds = track.frames as f64 / f64::from(planned.format.sample_rate);
    let mut playlists = Vec::new();
    let mut mpds = Vec::new();
    for tier in Tier::ALL {
        let mut sets: BTreeMap<Family, Vec<&PackagedRendition>> = BTreeMap::new();
        for (plan, r) in &track.renditions {
            if plan.rung.tier <= tier {
                sets.entry(plan.rung.codec.family()).or_default().push(r);
            }
        }
        if sets.is_empty() {
            continue;
        }
        for (family, members) in &sets {
            let name = format!("{tier}-{}.m3u8", family.as_str());
            write(&name, &manifest::create_multivariant_playlist(members))?;
            playlists.push(PlaylistRef {
                tier,
                family: *family,
                path: format!("{id}/{name}"),
            });
        }
        let name = format!("{tier}.mpd");
        let sets: Vec<_> = sets.into_iter().collect();
        write(&name, &manifest::create_mpd(duration_seconds, &sets))?;
        mpds.push(MpdRef {
            tier,
            path: format!("{id}/{name}"),
        });
    }
    // The main playlist: the lowest tier's AAC set (plays on every device), else the first.
    let hls = playlists
        .iter()
        .find(|p| p.family == Family::Aac)
        .or(playlists.first())
        .map(|p| p.path.clone());
    let dash = mpds.first().map(|m| m.path.clone());
    let report = TrackReport {
        id: id.clone(),
        source: planned.source.path.display().to_string(),
        isrc: planned.source.isrc.clone(),
        sample_rate: planned.format.sample_rate,
        channels: planned.format.channels,
        bits_per_sample: planned.format.bits_per_sample,
        duration_samples: track.frames,
        duration_seconds,
        loudness: planned.loudness.as_ref().map(|l| l.track.clone()),
        album_loudness: planned.loudness.as_ref().and_then(|l| l.album.clone()),
        hls,
        dash,
        playlists,
        mpds,
        catalog: format!("{id}/{}", catalog::RECORD_FILE),
        renditions,
    };
    let record = CatalogRecord::new(&report, planned.source.metadata.as_ref(), album);
    write(catalog::RECORD_FILE, &record.to_json())?;
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
