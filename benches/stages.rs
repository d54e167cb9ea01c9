//! Per-stage benchmarks: decoding, resampling per rate pair, each encoder per rung of the
//! default ladder, box writing and manifest writing. Ids carry their parameters:
//! `encode/aac-lc/256k/44100/2ch`.
//! Run with `cargo bench --bench stages`; `cargo test --all-targets` runs each once.

use std::hint::black_box;
use std::path::Path;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use pressing::ingest::MasterReader;
use pressing::ladder::{Codec, Ladder};
use pressing::manifest;
use pressing::package::{create_media_segment, Fragment, PackagedRendition, SegmentInfo};
use pressing::transcode::{
    self, open_encoder, DecoderConfig, Pcm, Quantizer, RenditionPlan, StreamConfig, StreamResampler,
};

/// One second of a stereo two-tone signal at `rate`, interleaved.
fn signal(rate: u32) -> Vec<f32> {
    (0..rate as usize)
        .flat_map(|i| {
            let t = i as f32 / rate as f32;
            let v = 0.3 * (2.0 * std::f32::consts::PI * 440.0 * t).sin()
                + 0.1 * (2.0 * std::f32::consts::PI * 3520.0 * t).sin();
            [v, v * 0.9]
        })
        .collect()
}

fn decode(c: &mut Criterion) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut g = c.benchmark_group("decode");
    for (name, file, rate) in [
        (
            "flac/24bit/96000/2ch",
            "fixtures/album/02-hires.flac",
            96000u64,
        ),
        (
            "wav/16bit/44100/2ch",
            "fixtures/album/01-cd-stereo.wav",
            44100,
        ),
    ] {
        let bytes = std::fs::read(root.join(file)).unwrap();
        let probe = MasterReader::from_bytes(Path::new(file), bytes.clone(), false).unwrap();
        let frames = probe.format().declared_frames.unwrap_or(rate);
        g.throughput(Throughput::Elements(frames));
        g.bench_function(name, |b| {
            b.iter(|| {
                let mut r =
                    MasterReader::from_bytes(Path::new(file), bytes.clone(), false).unwrap();
                let mut n = 0;
                while let Some(chunk) = r.next_chunk().unwrap() {
                    n += chunk.len();
                }
                n
            })
        });
    }
    g.finish();
}

fn resample(c: &mut Criterion) {
    let mut g = c.benchmark_group("resample");
    for (from, to) in [
        (96000, 44100),
        (96000, 48000),
        (44100, 48000),
        (48000, 44100),
    ] {
        let input = signal(from);
        g.throughput(Throughput::Elements(from as u64));
        g.bench_function(format!("{from}/{to}/2ch"), |b| {
            b.iter(|| {
                let mut rs = StreamResampler::new(from, to, 2).unwrap();
                let mut out = Vec::new();
                rs.process(black_box(&input), &mut out).unwrap();
                rs.finish(&mut out).unwrap();
                out
            })
        });
    }
    g.finish();
}

fn encode(c: &mut Criterion) {
    transcode::init();
    let ladder =
        Ladder::from_path(&Path::new(env!("CARGO_MANIFEST_DIR")).join("ladders/music.toml"))
            .unwrap();
    let mut g = c.benchmark_group("encode");
    g.sample_size(10);
    // Both AAC-LC encoders, to keep the choice of the default measured.
    let mut rungs = ladder.rungs.clone();
    for r in &ladder.rungs {
        if r.codec == Codec::AacLc {
            let mut ff = r.clone();
            ff.aac_encoder = pressing::ladder::AacEncoder::Ffmpeg;
            rungs.push(ff);
        }
    }
    for rung in &rungs {
        let rate = match rung.sample_rate {
            pressing::ladder::RateSpec::Fixed(hz) => hz,
            pressing::ladder::RateSpec::Master => 96000,
        };
        let bits = rung.bits;
        let plan = RenditionPlan {
            rung: rung.clone(),
            sample_rate: rate,
            channels: 2,
            bits,
            bitrate: rung.bitrate,
        };
        let input = signal(rate);
        let mut ints = Vec::new();
        Quantizer::new(bits.unwrap_or(16), true).process(&input, &mut ints);
        let kbps = rung.bitrate.map_or_else(
            || format!("{}bit", bits.unwrap_or(16)),
            |b| format!("{}k", b / 1000),
        );
        let codec = match (rung.codec, rung.aac_encoder) {
            (Codec::AacLc, pressing::ladder::AacEncoder::Ffmpeg) => "aac-lc-ffmpeg".to_string(),
            (c, _) => c.to_string(),
        };
        g.throughput(Throughput::Elements(rate as u64));
        g.bench_function(format!("{codec}/{kbps}/{rate}/2ch"), |b| {
            b.iter(|| {
                let mut enc = open_encoder(&plan).unwrap();
                match enc.input_kind() {
                    transcode::InputKind::Float => enc.send(Pcm::F32(&input)).unwrap(),
                    transcode::InputKind::Int { .. } => enc.send(Pcm::I32(&ints)).unwrap(),
                }
                enc.finish().unwrap();
                let mut bytes = 0;
                while let Some(p) = enc.receive() {
                    bytes += p.data.len();
                }
                bytes
            })
        });
    }
    g.finish();
}

fn boxes(c: &mut Criterion) {
    // A 6 s AAC segment: 259 access units of ~740 bytes.
    let samples: Vec<(u32, u32)> = (0..259).map(|i| (1024, 700 + (i % 80))).collect();
    let data = vec![0u8; samples.iter().map(|s| s.1 as usize).sum()];
    c.bench_function("package/media_segment/259au", |b| {
        b.iter(|| {
            create_media_segment(black_box(&Fragment {
                sequence_number: 1,
                base_media_decode_time: 0,
                samples: &samples,
                data: &data,
                roll_group: false,
                sample_ivs: None,
            }))
        })
    });
}

fn manifests(c: &mut Criterion) {
    // A 4-minute track: 40 segments of 6 s per rendition, 9 renditions.
    let stream = StreamConfig {
        codec: Codec::AacLc,
        sample_rate: 44100,
        channels: 2,
        bits_per_sample: None,
        priming: 2048,
        config: DecoderConfig::Aac {
            audio_specific_config: vec![0x12, 0x10],
        },
    };
    let renditions: Vec<PackagedRendition> = (0..9)
        .map(|i| PackagedRendition {
            id: format!("r{i}"),
            version: format!("{i:016x}"),
            stream: stream.clone(),
            codecs: "mp4a.40.2".into(),
            init_file: "init.mp4".into(),
            track_file: None,
            segments: (0..40)
                .map(|n| SegmentInfo {
                    number: n + 1,
                    file: format!("seg-{:05}.m4s", n + 1),
                    start: u64::from(n) * 264_192,
                    duration: 264_192,
                    bytes: 190_000,
                    offset: None,
                })
                .collect(),
            presented_samples: 40 * 264_192 - 4096,
            media_duration: 40 * 264_192,
            bandwidth: 256_000,
            average_bandwidth: 250_000,
            protection: None,
        })
        .collect();
    let refs: Vec<&PackagedRendition> = renditions.iter().collect();
    c.bench_function("manifest/hls/media/40seg", |b| {
        b.iter(|| manifest::create_media_playlist(black_box(&renditions[0])))
    });
    c.bench_function("manifest/hls/multivariant/9var", |b| {
        b.iter(|| manifest::create_multivariant_playlist(black_box(&refs)))
    });
    c.bench_function("manifest/dash/9rep/40seg", |b| {
        b.iter(|| manifest::create_mpd(black_box(&[("aac".to_string(), refs.clone())])))
    });
}

criterion_group!(benches, decode, resample, encode, boxes, manifests);
criterion_main!(benches);
