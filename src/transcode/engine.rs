//! The streaming engine: decodes a programme's masters once, runs the signal chain and feeds
//! every rendition's encoder, a chunk at a time.
//!
//! A producer decodes, resamples (once per output rate, rates in parallel) and dithers one
//! second of audio at a time, and every rendition is an independent consumer on its own thread,
//! fed through a bounded queue: no rung waits for the slowest at each chunk, and the cores stay
//! busy to the end of an album. Memory stays bounded: the producer runs at most a few chunks
//! ahead. What happens to the encoded packets is the caller's [`RenditionSink`] (the packager):
//! this module writes nothing.
//!
//! Tracks of one gapless programme share one continuous signal chain (resampler and dither
//! state carry across track boundaries).

use std::collections::BTreeMap;
use std::sync::Arc;

use rayon::prelude::*;

use crate::error::Error;
use crate::ingest::{MasterFormat, MasterReader, SampleKind, TrackSource};
use crate::stats::{Stage, StageClock};
use crate::transcode::timeline::{self, Member, Padded, SetTiming};
use crate::transcode::{
    self, EncodedPacket, Encoder, InputKind, Pcm, Quantizer, RenditionPlan, StreamConfig,
    StreamResampler,
};

/// Chunks the producer may run ahead of the slowest rendition.
const QUEUE_CHUNKS: usize = 3;

/// Seconds of master audio processed per step: long enough that the per-step join costs
/// little, short enough that memory stays small (about 1.5 MB per output rate at 192 kHz).
const CHUNK_SECONDS: usize = 1;

/// Progress events, for a terminal bar or log lines. Must be cheap: called once per chunk.
pub trait ProgressSink: Sync {
    /// The run will press `tracks` tracks.
    fn run_started(&self, _tracks: usize) {}
    /// A track's master starts decoding: `total_frames` as its header declares them, at `rate`.
    fn track_started(&self, _track: &str, _total_frames: Option<u64>, _rate: u32) {}
    /// Master frames of the track decoded (and handed to every encoder) so far.
    fn track_advanced(&self, _track: &str, _frames: u64) {}
    fn track_finished(&self, _track: &str) {}
    /// Whether the run should stop now: asked once per second of audio decoded; `true`
    /// ends the run with [`Error::Stopped`].
    fn cancelled(&self) -> bool {
        false
    }
}

/// A sink that reports nothing.
pub struct NoProgress;
impl ProgressSink for NoProgress {}

/// Where one rendition's packets go (the packager), and what it hands back when the track ends.
pub trait RenditionSink: Send {
    type Output: Send;
    /// The sink's own error (the packager's), which the run reports as the crate's.
    type Error: Into<Error>;
    fn push(&mut self, packet: EncodedPacket) -> Result<(), Self::Error>;
    fn finish(self, stream: StreamConfig, span: TrackSpan) -> Result<Self::Output, Self::Error>;
}

/// The extent of a finished track.
#[derive(Clone, Copy, Debug)]
pub struct TrackSpan {
    /// Frames of the master.
    pub master_frames: u64,
    pub master_rate: u32,
    /// Frames a gapless decoder must return at the rendition's rate.
    pub presented: u64,
}

/// A track of a programme: its master, format and the renditions that apply.
pub struct ProgrammeTrack<'a> {
    pub source: &'a TrackSource,
    pub format: &'a MasterFormat,
    pub plans: &'a [RenditionPlan],
}

/// What a finished track hands back: its length and every rendition's sink output.
pub struct EncodedTrack<O> {
    /// Frames of the master.
    pub frames: u64,
    pub renditions: Vec<(RenditionPlan, O)>,
}

/// A rendition being encoded: which track and signal it takes, and its encoder and packager.
struct RenditionRun<S> {
    track: usize,
    plan: RenditionPlan,
    input: InputKind,
    encoder: Box<dyn Encoder>,
    sink: S,
}

impl<S: RenditionSink> RenditionRun<S> {
    fn feed(&mut self, pcm: Pcm<'_>, clock: &StageClock) -> Result<(), Error> {
        clock.time(Stage::Encode(self.plan.rung.codec), || {
            self.encoder.send(pcm)
        })?;
        self.drain(clock)
    }

    fn drain(&mut self, clock: &StageClock) -> Result<(), Error> {
        clock.time(Stage::Package, || {
            while let Some(p) = self.encoder.receive() {
                self.sink.push(p).map_err(Into::into)?;
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
    tracks: &'a [ProgrammeTrack<'a>],
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
        if progress.cancelled() {
            return Err(Error::Stopped);
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
                    progress.track_finished(&self.tracks[self.slot].source.id);
                    self.slot += 1;
                    if self.slot == self.tracks.len() {
                        self.done = true;
                        break;
                    }
                    let next = &self.tracks[self.slot];
                    self.reader = MasterReader::open(&next.source.path, false)?;
                    let f = self.reader.format();
                    progress.track_started(&next.source.id, f.declared_frames, f.sample_rate);
                }
            }
        }
        if let Some(t) = decoding {
            clock.add(Stage::Decode, t.elapsed());
        }
        if !self.done {
            let id = &self.tracks[self.slot].source.id;
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
fn route<S: RenditionSink>(
    run: &mut RenditionRun<S>,
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

/// A rendition's slot in the programme, its plan and what its sink handed back.
type Finished<O> = (usize, RenditionPlan, O);

/// Encode one programme: every track's renditions, from one decode of its masters. `open_sink`
/// gets the track's slot in the programme, the rendition's plan, its encoder's stream (with
/// the set's priming) and the set's timeline.
pub fn run_programme<S, F>(
    tracks: &[ProgrammeTrack<'_>],
    segment_seconds: f64,
    open_sink: &F,
    progress: &dyn ProgressSink,
    clock: &StageClock,
) -> Result<Vec<EncodedTrack<S::Output>>, Error>
where
    S: RenditionSink,
    F: Fn(usize, &RenditionPlan, &StreamConfig, &SetTiming) -> Result<S, Error> + Sync,
{
    let first = tracks[0].format;
    let master_rate = first.sample_rate;
    let channels = first.channels;
    let master_bits = tracks
        .iter()
        .map(|t| match t.format.kind {
            SampleKind::Float => 32,
            SampleKind::Int => t.format.bits_per_sample,
        })
        .max()
        .unwrap_or(16);

    // Open every encoder first: a rung the encoder refuses fails the run before any work.
    // Then each switching set of a track gets one timeline (`timeline`): the encoders that
    // prime less are padded to the set's priming, and the packager cuts on the set's grid.
    let mut runs = Vec::new();
    for (slot, track) in tracks.iter().enumerate() {
        let encoders = track
            .plans
            .iter()
            .map(transcode::open_encoder)
            .collect::<Result<Vec<_>, _>>()?;
        let members: Vec<Member> = track
            .plans
            .iter()
            .zip(&encoders)
            .map(|(plan, e)| Member {
                family: plan.rung.codec.family(),
                codec: plan.rung.codec,
                rate: plan.sample_rate,
                frame: e.frame_size(),
                priming: e.stream_config().priming,
            })
            .collect();
        let timings = timeline::align(&members, segment_seconds);
        for ((plan, encoder), timing) in track.plans.iter().zip(encoders).zip(timings) {
            let encoder: Box<dyn Encoder> = if timing.lead > 0 || timing.tail > 0 {
                Box::new(Padded::new(encoder, &timing))
            } else {
                encoder
            };
            let sink = open_sink(slot, plan, &encoder.stream_config(), &timing)?;
            runs.push(RenditionRun {
                track: slot,
                plan: plan.clone(),
                input: encoder.input_kind(),
                encoder,
                sink,
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
        tracks,
        channels: channels as usize,
        reader: MasterReader::open(&tracks[0].source.path, false)?,
        slot: 0,
        frames_before: 0,
        ends: Vec::with_capacity(tracks.len()),
        stages,
        done: false,
    };
    progress.track_started(
        &tracks[0].source.id,
        producer.reader.format().declared_frames,
        master_rate,
    );

    // Every rendition is an independent consumer on its own thread, fed through a bounded
    // queue: no rung waits for the slowest at each chunk, the producer runs ahead by at most
    // QUEUE_CHUNKS chunks (bounded memory), and the operating system spreads the encoders over
    // the cores. Programmes still run in parallel on the rayon pool.
    let master_frames_of = |ends: &[u64], track: usize| {
        let start = if track == 0 { 0 } else { ends[track - 1] };
        (start, ends[track])
    };
    let results: Vec<Result<Finished<S::Output>, Error>> = std::thread::scope(|scope| {
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
                let span = TrackSpan {
                    master_frames: end - start,
                    master_rate,
                    presented: scale(end) - scale(start),
                };
                let stream = run.encoder.stream_config();
                let sink = run.sink;
                let out = clock
                    .time(Stage::Package, || sink.finish(stream, span))
                    .map_err(Into::into)?;
                Ok((run.track, run.plan, out))
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
                h.join()
                    .unwrap_or_else(|_| Err(Error::Internal("an encoder thread panicked".into())))
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

    let mut encoded: Vec<EncodedTrack<S::Output>> = (0..tracks.len())
        .map(|slot| EncodedTrack {
            frames: starts[slot + 1] - starts[slot],
            renditions: Vec::new(),
        })
        .collect();
    for (slot, plan, out) in finished {
        encoded[slot].renditions.push((plan, out));
    }
    for (e, t) in encoded.iter_mut().zip(tracks) {
        // Plan (ladder) order, whatever order the parallel flush finished in.
        let order = |id: &str| t.plans.iter().position(|p| p.rung.id == id);
        e.renditions.sort_by_key(|(p, _)| order(&p.rung.id));
    }
    Ok(encoded)
}
