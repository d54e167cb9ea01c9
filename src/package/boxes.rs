//! Pure ISO BMFF box writers for CMAF audio: `create_init_segment`, `create_media_segment` and
//! the single-file form's segment index, `create_sidx`.
//!
//! No I/O and no clocks: the same inputs give the same bytes (creation and modification times
//! are zero). Field names follow ISO/IEC 14496-12 verbatim.

use crate::ladder::Codec;
use crate::protect::RenditionProtection;
use crate::transcode::{DecoderConfig, StreamConfig};

/// The init segment's `ludt` box: the track's loudness and, for an album, the album's.
#[derive(Clone, Debug, PartialEq)]
pub struct Ludt {
    pub track: LoudnessBase,
    pub album: Option<LoudnessBase>,
}

/// What a LoudnessBaseBox (ISO/IEC 23003-4) holds of a measurement.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LoudnessBase {
    /// Integrated loudness (LUFS); `None` for digital silence.
    pub integrated_lufs: Option<f64>,
    pub loudness_range_lu: f64,
    /// dBFS; not finite for digital silence (then not written).
    pub sample_peak_dbfs: f64,
    pub true_peak_dbtp: f64,
}

/// What the init segment describes.
#[derive(Clone, Debug)]
pub struct TrackConfig<'a> {
    pub stream: &'a StreamConfig,
    /// Samples a gapless decoder must output: the edit list's segment_duration, and the
    /// movie's duration after the edit (`mehd`).
    pub presented_samples: u64,
    /// Largest access unit, for the esds bufferSizeDB.
    pub max_sample_size: u32,
    /// Bit rates for the esds (bit/s).
    pub max_bitrate: u32,
    pub avg_bitrate: u32,
    pub loudness: Option<&'a Ludt>,
    /// The `roll` sample group's roll_distance (in samples, i.e. access units; negative for
    /// pre-roll), written as the init segment's `sgpd` when the codec needs one (Opus).
    pub roll_distance: Option<i16>,
    /// Common Encryption: the sample entry becomes `enca` with a `sinf`, and the `moov` holds a
    /// `pssh` per DRM system.
    pub protection: Option<&'a RenditionProtection>,
}

/// One fragment: a moof + mdat pair.
#[derive(Clone, Debug)]
pub struct Fragment<'a> {
    pub sequence_number: u32,
    pub base_media_decode_time: u64,
    /// (sample_duration, sample_size) for each sample, in order.
    pub samples: &'a [(u32, u32)],
    pub data: &'a [u8],
    /// Every sample belongs to the init segment's `roll` group (an `sbgp` in the `traf`).
    pub roll_group: bool,
    /// `cenc`'s per-sample IVs (one per sample), written as the fragment's sample auxiliary
    /// information: `saiz`, `saio` and `senc`. `None` when clear, or when the IV is constant
    /// (`cbcs`: a sample's auxiliary information is then empty).
    pub sample_ivs: Option<&'a [[u8; 16]]>,
}

/// The `roll` distance Opus needs: 80 ms of pre-roll (Encapsulation of Opus in ISO Base Media
/// File Format, 4.3.6.2: 3840 samples at 48 kHz), in access units of `frame` samples.
pub fn opus_roll_distance(frame: u32) -> i16 {
    -(3840u32.div_ceil(frame.max(1)).min(i16::MAX as u32) as i16)
}

pub const TRACK_ID: u32 = 1;

/// Appends a box, patching its size once the body is written.
fn write_box(buf: &mut Vec<u8>, fourcc: &[u8; 4], body: impl FnOnce(&mut Vec<u8>)) {
    let start = buf.len();
    buf.extend_from_slice(&[0, 0, 0, 0]);
    buf.extend_from_slice(fourcc);
    body(buf);
    let size = (buf.len() - start) as u32;
    buf[start..start + 4].copy_from_slice(&size.to_be_bytes());
}

fn write_full_box(
    buf: &mut Vec<u8>,
    fourcc: &[u8; 4],
    version: u8,
    flags: u32,
    body: impl FnOnce(&mut Vec<u8>),
) {
    write_box(buf, fourcc, |b| {
        b.extend_from_slice(&((u32::from(version) << 24) | (flags & 0xff_ffff)).to_be_bytes());
        body(b)
    });
}

fn u16be(b: &mut Vec<u8>, v: u16) {
    b.extend_from_slice(&v.to_be_bytes());
}
fn u32be(b: &mut Vec<u8>, v: u32) {
    b.extend_from_slice(&v.to_be_bytes());
}
fn u64be(b: &mut Vec<u8>, v: u64) {
    b.extend_from_slice(&v.to_be_bytes());
}

const UNITY_MATRIX: [u32; 9] = [0x0001_0000, 0, 0, 0, 0x0001_0000, 0, 0, 0, 0x4000_0000];

fn write_matrix(b: &mut Vec<u8>) {
    for v in UNITY_MATRIX {
        u32be(b, v);
    }
}

/// The CMAF header: ftyp + moov for a single audio track.
pub fn create_init_segment(track: &TrackConfig<'_>) -> Vec<u8> {
    let mut buf = Vec::with_capacity(1024);
    let timescale = track.stream.sample_rate;
    // ISO/IEC 14496-12 4.3 ftyp; ISO/IEC 23000-19 7.2 CMAF brands.
    write_box(&mut buf, b"ftyp", |b| {
        b.extend_from_slice(b"iso6");
        u32be(b, 0);
        for brand in [b"iso6", b"cmfc", b"mp41", b"dash"] {
            b.extend_from_slice(brand);
        }
    });
    write_box(&mut buf, b"moov", |b| {
        // 8.2.2 mvhd: durations are 0 in a fragmented movie; mehd carries the total.
        write_full_box(b, b"mvhd", 0, 0, |b| {
            u32be(b, 0); // creation_time
            u32be(b, 0); // modification_time
            u32be(b, timescale);
            u32be(b, 0); // duration
            u32be(b, 0x0001_0000); // rate
            u16be(b, 0x0100); // volume
            b.extend_from_slice(&[0; 10]);
            write_matrix(b);
            b.extend_from_slice(&[0; 24]); // pre_defined
            u32be(b, TRACK_ID + 1); // next_track_ID
        });
        write_box(b, b"trak", |b| {
            // 8.3.2 tkhd: track_enabled | track_in_movie
            write_full_box(b, b"tkhd", 0, 0x3, |b| {
                u32be(b, 0);
                u32be(b, 0);
                u32be(b, TRACK_ID);
                u32be(b, 0); // reserved
                u32be(b, 0); // duration
                b.extend_from_slice(&[0; 8]);
                u16be(b, 0); // layer
                u16be(b, 0); // alternate_group
                u16be(b, 0x0100); // volume
                u16be(b, 0);
                write_matrix(b);
                u32be(b, 0); // width
                u32be(b, 0); // height
            });
            write_edts(b, track);
            write_box(b, b"mdia", |b| {
                write_full_box(b, b"mdhd", 0, 0, |b| {
                    u32be(b, 0);
                    u32be(b, 0);
                    u32be(b, timescale);
                    u32be(b, 0);
                    u16be(b, 0x55c4); // language "und", ISO 639-2/T packed
                    u16be(b, 0);
                });
                write_full_box(b, b"hdlr", 0, 0, |b| {
                    u32be(b, 0);
                    b.extend_from_slice(b"soun");
                    b.extend_from_slice(&[0; 12]);
                    b.extend_from_slice(b"SoundHandler\0");
                });
                write_box(b, b"minf", |b| {
                    write_full_box(b, b"smhd", 0, 0, |b| u32be(b, 0));
                    write_box(b, b"dinf", |b| {
                        write_full_box(b, b"dref", 0, 0, |b| {
                            u32be(b, 1);
                            write_full_box(b, b"url ", 0, 1, |_| {});
                        });
                    });
                    write_box(b, b"stbl", |b| {
                        write_full_box(b, b"stsd", 0, 0, |b| {
                            u32be(b, 1);
                            let entry = b.len();
                            write_sample_entry(b, track);
                            if let Some(p) = track.protection {
                                protect_sample_entry(b, entry, p);
                            }
                        });
                        write_full_box(b, b"stts", 0, 0, |b| u32be(b, 0));
                        write_full_box(b, b"stsc", 0, 0, |b| u32be(b, 0));
                        write_full_box(b, b"stsz", 0, 0, |b| {
                            u32be(b, 0);
                            u32be(b, 0);
                        });
                        write_full_box(b, b"stco", 0, 0, |b| u32be(b, 0));
                        if let Some(distance) = track.roll_distance {
                            // 8.9.3 sgpd, version 1 with a default length: one
                            // AudioRollRecoveryEntry (8.9.2.2 roll_distance, int(16)).
                            write_full_box(b, b"sgpd", 1, 0, |b| {
                                b.extend_from_slice(b"roll");
                                u32be(b, 2); // default_length
                                u32be(b, 1); // entry_count
                                b.extend_from_slice(&distance.to_be_bytes());
                            });
                        }
                    });
                });
            });
            if let Some(info) = track.loudness {
                write_box(b, b"udta", |b| write_ludt(b, info));
            }
        });
        write_box(b, b"mvex", |b| {
            // 8.8.2 mehd: the duration of the whole presentation, after the edit list (the
            // same value as the edit's segment_duration, in the same timescale).
            write_full_box(b, b"mehd", 1, 0, |b| u64be(b, track.presented_samples));
            // 8.8.3 trex
            write_full_box(b, b"trex", 0, 0, |b| {
                u32be(b, TRACK_ID);
                u32be(b, 1); // default_sample_description_index
                u32be(b, 0); // default_sample_duration
                u32be(b, 0); // default_sample_size
                u32be(b, 0); // default_sample_flags: every audio sample is a sync sample
            });
        });
        // ISO/IEC 23001-7 8.1: one `pssh` per DRM system, as the key source gave it.
        for system in track.protection.iter().flat_map(|p| &p.systems) {
            if let Some(pssh) = &system.pssh {
                b.extend_from_slice(pssh);
            }
        }
    });
    buf
}

/// ISO/IEC 23001-7 4 and ISO/IEC 14496-12 8.12: the sample entry written at `entry` (the last
/// box of `b`) becomes `enca`, its original format kept in `sinf/frma`, with the scheme
/// (`schm`) and its defaults (`schi/tenc`) appended to its children.
fn protect_sample_entry(b: &mut Vec<u8>, entry: usize, p: &RenditionProtection) {
    let mut original = [0u8; 4];
    original.copy_from_slice(&b[entry + 4..entry + 8]);
    b[entry + 4..entry + 8].copy_from_slice(b"enca");
    let mut sinf = Vec::with_capacity(96);
    write_box(&mut sinf, b"sinf", |b| {
        write_box(b, b"frma", |b| b.extend_from_slice(&original));
        write_full_box(b, b"schm", 0, 0, |b| {
            b.extend_from_slice(&p.scheme.fourcc());
            u32be(b, 0x0001_0000); // scheme_version 1.0
        });
        write_box(b, b"schi", |b| {
            // 23001-7 8.2 tenc: version 1 carries the pattern (cbcs); audio is encrypted
            // whole, crypt_byte_block = skip_byte_block = 0.
            let constant_iv = p.constant_iv();
            let version = u8::from(constant_iv.is_some());
            write_full_box(b, b"tenc", version, 0, |b| {
                b.push(0); // reserved
                b.push(0); // reserved, or default_crypt_byte_block(4) default_skip_byte_block(4)
                b.push(1); // default_isProtected
                b.push(p.per_sample_iv_size());
                b.extend_from_slice(&p.key.kid.0);
                if let Some(iv) = constant_iv {
                    b.push(16); // default_constant_IV_size
                    b.extend_from_slice(&iv);
                }
            });
        });
    });
    if &original == b"alac" {
        // Before the codec configuration: FFmpeg reads ALAC's magic cookie only once `frma`
        // has said the entry is ALAC (an `alac` child met first is skipped, and the stream
        // does not open). Children of a sample entry are found by type, in any order.
        let at = entry + AUDIO_SAMPLE_ENTRY_HEADER;
        b.splice(at..at, sinf);
    } else {
        b.extend_from_slice(&sinf);
    }
    let size = (b.len() - entry) as u32;
    b[entry..entry + 4].copy_from_slice(&size.to_be_bytes());
}

/// The bytes of an AudioSampleEntry before its child boxes: the box header and 12.2.3's 28
/// bytes of fields.
const AUDIO_SAMPLE_ENTRY_HEADER: usize = 8 + 28;

/// 8.6.6 elst: one edit that skips the priming and ends before the padding, so a decoder that
/// honours it outputs exactly the presented samples.
fn write_edts(b: &mut Vec<u8>, track: &TrackConfig<'_>) {
    let priming = u64::from(track.stream.priming);
    let wide = track.presented_samples > u64::from(u32::MAX);
    write_box(b, b"edts", |b| {
        write_full_box(b, b"elst", u8::from(wide), 0, |b| {
            u32be(b, 1);
            if wide {
                u64be(b, track.presented_samples);
                u64be(b, priming);
            } else {
                u32be(b, track.presented_samples as u32);
                u32be(b, priming as u32);
            }
            u16be(b, 1); // media_rate_integer
            u16be(b, 0); // media_rate_fraction
        });
    });
}

/// ISO/IEC 14496-12 12.2.7 `ludt` with a TrackLoudnessInfo (`tlou`) and, for an album, an
/// AlbumLoudnessInfo (`alou`); value encodings from ISO/IEC 23003-4 (as Apple's HLS authoring
/// specification asks for audio).
fn write_ludt(b: &mut Vec<u8>, info: &Ludt) {
    write_box(b, b"ludt", |b| {
        write_loudness_base(b, b"tlou", &info.track);
        if let Some(album) = &info.album {
            write_loudness_base(b, b"alou", album);
        }
    });
}

/// Measurement systems (ISO/IEC 23003-4): 1 = EBU R 128, 2 = ITU-R BS.1770-4.
const EBU_R128: u8 = 1;
const BS_1770_4: u8 = 2;
/// Reliability 3: accurate (measured, not estimated).
const ACCURATE: u8 = 3;

fn write_loudness_base(b: &mut Vec<u8>, fourcc: &[u8; 4], l: &LoudnessBase) {
    // Peak levels: 20 - value / 32 dB, value 1..=4095 (0: not present).
    let peak = |db: f64| -> u32 {
        if db.is_finite() {
            ((20.0 - db) * 32.0).round().clamp(1.0, 4095.0) as u32
        } else {
            0
        }
    };
    let mut measurements: Vec<[u8; 3]> = Vec::new();
    if let Some(lufs) = l.integrated_lufs {
        // Method 1, program loudness: -57.75 + value / 4 LUFS.
        let v = ((lufs + 57.75) * 4.0).round().clamp(0.0, 255.0) as u8;
        measurements.push([1, v, (BS_1770_4 << 4) | ACCURATE]);
    }
    // Method 6, loudness range (EBU Tech 3342): value / 4 LU up to 32 LU, then 32 + (value -
    // 128) / 2 LU.
    let lra = l.loudness_range_lu.max(0.0);
    let v = if lra <= 32.0 {
        (lra * 4.0).round() as u8
    } else {
        (128.0 + ((lra - 32.0) * 2.0).round()).min(204.0) as u8
    };
    measurements.push([6, v, (EBU_R128 << 4) | ACCURATE]);
    write_full_box(b, fourcc, 0, 0, |b| {
        u16be(b, 0); // reserved(3) downmix_ID(7) DRC_set_ID(6): the default mix, no DRC
        let tp_fields = (u32::from(BS_1770_4) << 4) | u32::from(ACCURATE);
        u32be(
            b,
            (peak(l.sample_peak_dbfs) << 20) | (peak(l.true_peak_dbtp) << 8) | tp_fields,
        );
        b.push(measurements.len() as u8);
        for m in &measurements {
            b.extend_from_slice(m);
        }
    });
}

/// 12.2.3 AudioSampleEntry fields shared by mp4a, Opus and fLaC.
fn write_audio_sample_entry_fields(b: &mut Vec<u8>, channels: u16, sample_size: u16, rate: u32) {
    b.extend_from_slice(&[0; 6]);
    u16be(b, 1); // data_reference_index
    b.extend_from_slice(&[0; 8]);
    u16be(b, channels);
    u16be(b, sample_size);
    u16be(b, 0); // pre_defined
    u16be(b, 0);
    // 16.16 fixed point. A rate above 65535 Hz does not fit: the field holds its greatest
    // expressible regular (power-of-two) division, 48000 for 96 and 192 kHz, 44100 for 88.2 and
    // 176.4 kHz (FLAC in ISO BMFF 3.3.1); the real rate is in the codec configuration (dfLa's
    // STREAMINFO, the ALAC magic cookie).
    u32be(b, sample_entry_rate(rate) << 16);
}

/// The AudioSampleEntry samplerate for `rate`: itself, or halved until it fits 16 bits.
pub fn sample_entry_rate(rate: u32) -> u32 {
    let mut r = rate;
    while r > 0xffff {
        r /= 2;
    }
    r
}

fn write_sample_entry(b: &mut Vec<u8>, track: &TrackConfig<'_>) {
    let s = track.stream;
    match &s.config {
        DecoderConfig::Aac {
            audio_specific_config,
        } => write_box(b, b"mp4a", |b| {
            write_audio_sample_entry_fields(b, s.channels, 16, s.sample_rate);
            write_esds(b, track, audio_specific_config);
        }),
        DecoderConfig::Opus {
            pre_skip,
            input_sample_rate,
            output_gain,
            channel_mapping_family,
            mapping,
        } => write_box(b, b"Opus", |b| {
            write_audio_sample_entry_fields(b, s.channels, 16, 48000);
            // Encapsulation of Opus in ISO BMFF, 4.3.2 dOps (big-endian, unlike OpusHead).
            write_box(b, b"dOps", |b| {
                b.push(0); // Version
                b.push(s.channels as u8);
                u16be(b, *pre_skip);
                u32be(b, *input_sample_rate);
                b.extend_from_slice(&output_gain.to_be_bytes());
                b.push(*channel_mapping_family);
                if *channel_mapping_family != 0 {
                    b.extend_from_slice(mapping);
                }
            });
        }),
        DecoderConfig::Flac { streaminfo } => write_box(b, b"fLaC", |b| {
            let bits = u16::from(s.bits_per_sample.unwrap_or(16));
            write_audio_sample_entry_fields(b, s.channels, bits, s.sample_rate);
            // FLAC in ISO BMFF 3.3.2 dfLa: metadata blocks; here the final STREAMINFO alone.
            write_full_box(b, b"dfLa", 0, 0, |b| {
                b.push(0x80); // last-metadata-block flag | type 0 (STREAMINFO)
                let len = streaminfo.len() as u32;
                b.extend_from_slice(&len.to_be_bytes()[1..]);
                b.extend_from_slice(streaminfo);
            });
        }),
        DecoderConfig::Alac { magic_cookie } => write_box(b, b"alac", |b| {
            let bits = u16::from(s.bits_per_sample.unwrap_or(16));
            write_audio_sample_entry_fields(b, s.channels, bits, s.sample_rate);
            // Apple Lossless in ISO BMFF: an `alac` full box holding the 24-byte
            // ALACSpecificConfig (which carries the rate as 32 bits), as libavcodec wrote it.
            b.extend_from_slice(magic_cookie);
        }),
    }
}

/// ISO/IEC 14496-1 7.2.6.5 ES_Descriptor inside an esds box (ISO/IEC 14496-14 5.6).
fn write_esds(b: &mut Vec<u8>, track: &TrackConfig<'_>, asc: &[u8]) {
    fn descriptor(b: &mut Vec<u8>, tag: u8, body: &[u8]) {
        b.push(tag);
        // Expandable size, 4 bytes, as most muxers write it.
        let len = body.len() as u32;
        b.extend_from_slice(&[
            0x80 | ((len >> 21) & 0x7f) as u8,
            0x80 | ((len >> 14) & 0x7f) as u8,
            0x80 | ((len >> 7) & 0x7f) as u8,
            (len & 0x7f) as u8,
        ]);
        b.extend_from_slice(body);
    }
    let mut dsi = Vec::new();
    descriptor(&mut dsi, 0x05, asc);
    let mut dcd = vec![0x40, 0x15]; // objectTypeIndication: Audio ISO/IEC 14496-3; streamType audio
    dcd.extend_from_slice(&track.max_sample_size.to_be_bytes()[1..]); // bufferSizeDB
    dcd.extend_from_slice(&track.max_bitrate.to_be_bytes());
    dcd.extend_from_slice(&track.avg_bitrate.to_be_bytes());
    dcd.extend_from_slice(&dsi);
    let mut es = Vec::new();
    es.extend_from_slice(&(TRACK_ID as u16).to_be_bytes()); // ES_ID
    es.push(0); // flags
    descriptor(&mut es, 0x04, &dcd);
    descriptor(&mut es, 0x06, &[0x02]); // SLConfigDescriptor: predefined MP4
    write_full_box(b, b"esds", 0, 0, |b| descriptor(b, 0x03, &es));
}

/// One CMAF fragment: moof (mfhd, traf(tfhd, tfdt, trun)) + mdat.
pub fn create_media_segment(f: &Fragment<'_>) -> Vec<u8> {
    let mut buf = Vec::with_capacity(f.data.len() + 64 + f.samples.len() * 8);
    let mut data_offset_at = 0;
    let (mut saio_offset_at, mut senc_ivs_at) = (0, 0);
    write_box(&mut buf, b"moof", |b| {
        write_full_box(b, b"mfhd", 0, 0, |b| u32be(b, f.sequence_number));
        write_box(b, b"traf", |b| {
            // 8.8.7 tfhd: default-base-is-moof
            write_full_box(b, b"tfhd", 0, 0x02_0000, |b| u32be(b, TRACK_ID));
            // 8.8.12 tfdt
            write_full_box(b, b"tfdt", 1, 0, |b| u64be(b, f.base_media_decode_time));
            // 8.8.8 trun: data-offset, sample-duration and sample-size present
            write_full_box(b, b"trun", 0, 0x0301, |b| {
                u32be(b, f.samples.len() as u32);
                data_offset_at = b.len();
                u32be(b, 0);
                for &(duration, size) in f.samples {
                    u32be(b, duration);
                    u32be(b, size);
                }
            });
            if f.roll_group {
                // 8.9.2 sbgp: every sample of the fragment maps to the init segment's `roll`
                // entry (indices up to 0xFFFF name the SampleTableBox's sgpd entries).
                write_full_box(b, b"sbgp", 0, 0, |b| {
                    b.extend_from_slice(b"roll");
                    u32be(b, 1); // entry_count
                    u32be(b, f.samples.len() as u32);
                    u32be(b, 1); // group_description_index
                });
            }
            if let Some(ivs) = f.sample_ivs {
                // 8.7.8 saiz: every sample's auxiliary information is its 16-byte IV.
                write_full_box(b, b"saiz", 0, 0, |b| {
                    b.push(16); // default_sample_info_size
                    u32be(b, ivs.len() as u32);
                });
                // 8.7.9 saio: one offset, from the moof (default-base-is-moof) to the first IV
                // in the senc that follows; patched once the senc is placed.
                write_full_box(b, b"saio", 0, 0, |b| {
                    u32be(b, 1);
                    saio_offset_at = b.len();
                    u32be(b, 0);
                });
                // 23001-7 7.2.1 senc: the IVs, no subsamples (each sample is encrypted whole).
                write_full_box(b, b"senc", 0, 0, |b| {
                    u32be(b, ivs.len() as u32);
                    senc_ivs_at = b.len();
                    for iv in ivs {
                        b.extend_from_slice(iv);
                    }
                });
            }
        });
    });
    if f.sample_ivs.is_some() {
        buf[saio_offset_at..saio_offset_at + 4]
            .copy_from_slice(&(senc_ivs_at as u32).to_be_bytes());
    }
    // data_offset counts from the start of the moof to the first byte of mdat's payload.
    let data_offset = (buf.len() + 8) as u32;
    buf[data_offset_at..data_offset_at + 4].copy_from_slice(&data_offset.to_be_bytes());
    write_box(&mut buf, b"mdat", |b| b.extend_from_slice(f.data));
    buf
}

/// One `sidx` reference: a CMAF fragment (moof + mdat) and the span it presents.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SidxReference {
    /// Bytes from the fragment's first byte to the next fragment's.
    pub referenced_size: u32,
    /// Presentation duration, in the track's timescale.
    pub subsegment_duration: u32,
}

/// ISO/IEC 14496-12 8.16.3 `sidx`: one reference per fragment (`reference_type` 0, media),
/// each starting with a SAP of type 1 (every audio sample is a sync sample). `first_offset` is
/// the distance from the end of this box to the first fragment. Version 0 while the 32-bit
/// fields hold the values, else version 1.
pub fn create_sidx(
    timescale: u32,
    earliest_presentation_time: u64,
    first_offset: u64,
    references: &[SidxReference],
) -> Vec<u8> {
    let mut buf = Vec::with_capacity(32 + references.len() * 12);
    let narrow =
        earliest_presentation_time <= u64::from(u32::MAX) && first_offset <= u64::from(u32::MAX);
    write_full_box(&mut buf, b"sidx", u8::from(!narrow), 0, |b| {
        u32be(b, TRACK_ID); // reference_ID
        u32be(b, timescale);
        if narrow {
            u32be(b, earliest_presentation_time as u32);
            u32be(b, first_offset as u32);
        } else {
            u64be(b, earliest_presentation_time);
            u64be(b, first_offset);
        }
        u16be(b, 0); // reserved
        u16be(b, references.len() as u16);
        for r in references {
            u32be(b, r.referenced_size & 0x7fff_ffff); // reference_type 0
            u32be(b, r.subsegment_duration);
            u32be(b, 0x9000_0000); // starts_with_SAP 1, SAP_type 1, SAP_delta_time 0
        }
    });
    buf
}

/// RFC 6381 codecs parameter for a stream, derived from its bitstream configuration.
pub fn codecs_string(stream: &StreamConfig) -> String {
    match &stream.config {
        DecoderConfig::Aac {
            audio_specific_config: asc,
        } => {
            // ISO/IEC 14496-3 1.6.2.1: audioObjectType is the first 5 bits; 31 escapes to 6 more.
            let aot = match asc.first() {
                Some(b) if b >> 3 != 31 => u16::from(b >> 3),
                Some(_) => {
                    let v = u16::from_be_bytes([asc[0], asc.get(1).copied().unwrap_or(0)]);
                    32 + ((v >> 5) & 0x3f)
                }
                None => match stream.codec {
                    Codec::HeAac => 5,
                    Codec::HeAacV2 => 29,
                    _ => 2,
                },
            };
            // Backward-compatible SBR signalling (1.6.5.2) starts with the core's AOT 2 and names
            // SBR in a sync extension: the codecs parameter names what a player must decode.
            let aot = match (aot, stream.codec) {
                (2, Codec::HeAac) => 5,
                (2, Codec::HeAacV2) => 29,
                (aot, _) => aot,
            };
            format!("mp4a.40.{aot}")
        }
        DecoderConfig::Opus { .. } => "Opus".into(),
        DecoderConfig::Flac { .. } => "fLaC".into(),
        DecoderConfig::Alac { .. } => "alac".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ludt_encodes_loudness_and_peaks() {
        let l = LoudnessBase {
            integrated_lufs: Some(-14.0),
            loudness_range_lu: 5.5,
            sample_peak_dbfs: -1.0,
            true_peak_dbtp: -0.5,
        };
        let mut b = Vec::new();
        write_ludt(
            &mut b,
            &Ludt {
                track: l,
                album: Some(l),
            },
        );
        assert_eq!(&b[4..8], b"ludt");
        assert_eq!(&b[12..16], b"tlou");
        let body = &b[20..];
        let word = u32::from_be_bytes(body[2..6].try_into().unwrap());
        assert_eq!(word >> 20, 672); // (20 - -1.0) * 32
        assert_eq!((word >> 8) & 0xfff, 656); // (20 - -0.5) * 32
        assert_eq!(body[6], 2); // two measurements
        assert_eq!(&body[7..10], &[1, 175, 0x23]); // (-14 + 57.75) * 4, BS.1770-4, accurate
        assert_eq!(&body[10..13], &[6, 22, 0x13]); // 5.5 LU * 4, EBU R128
        assert!(b.windows(4).any(|w| w == b"alou"));
    }

    fn stream(config: DecoderConfig, codec: Codec) -> StreamConfig {
        StreamConfig {
            codec,
            sample_rate: 44100,
            channels: 2,
            bits_per_sample: None,
            priming: 2048,
            config,
        }
    }

    #[test]
    fn codecs_follow_the_audio_object_type() {
        let lc = stream(
            DecoderConfig::Aac {
                audio_specific_config: vec![0x12, 0x10],
            },
            Codec::AacLc,
        );
        assert_eq!(codecs_string(&lc), "mp4a.40.2");
        let he = stream(
            DecoderConfig::Aac {
                audio_specific_config: vec![0x2b, 0x92, 0x08, 0x00],
            },
            Codec::HeAac,
        );
        assert_eq!(codecs_string(&he), "mp4a.40.5");
        let ps = stream(
            DecoderConfig::Aac {
                audio_specific_config: vec![0xeb, 0x8a, 0x08, 0x00],
            },
            Codec::HeAacV2,
        );
        assert_eq!(codecs_string(&ps), "mp4a.40.29");
        // Backward-compatible signalling: AOT 2 first, SBR in the sync extension.
        let compatible = stream(
            DecoderConfig::Aac {
                audio_specific_config: vec![0x13, 0x88, 0x56, 0xe5, 0xa5, 0x48, 0x00],
            },
            Codec::HeAac,
        );
        assert_eq!(codecs_string(&compatible), "mp4a.40.5");
    }

    #[test]
    fn trun_data_offset_points_at_mdat_payload() {
        let samples = [(1024, 3), (1024, 2)];
        let data = [1, 2, 3, 4, 5];
        let seg = create_media_segment(&Fragment {
            sequence_number: 7,
            base_media_decode_time: 2048,
            samples: &samples,
            data: &data,
            roll_group: true,
            sample_ivs: None,
        });
        let moof_size = u32::from_be_bytes(seg[0..4].try_into().unwrap()) as usize;
        assert_eq!(&seg[moof_size + 4..moof_size + 8], b"mdat");
        let trun = seg.windows(4).position(|w| w == b"trun").unwrap();
        let offset = u32::from_be_bytes(seg[trun + 12..trun + 16].try_into().unwrap()) as usize;
        assert_eq!(&seg[offset..], &data);
    }

    #[test]
    fn init_segment_is_deterministic_and_carries_the_edit() {
        let s = stream(
            DecoderConfig::Aac {
                audio_specific_config: vec![0x12, 0x10],
            },
            Codec::AacLc,
        );
        let t = TrackConfig {
            stream: &s,
            presented_samples: 123_456,
            max_sample_size: 700,
            max_bitrate: 300_000,
            avg_bitrate: 256_000,
            loudness: None,
            roll_distance: None,
            protection: None,
        };
        let a = create_init_segment(&t);
        assert_eq!(a, create_init_segment(&t));
        let elst = a.windows(4).position(|w| w == b"elst").unwrap();
        let body = &a[elst + 4..];
        assert_eq!(u32::from_be_bytes(body[4..8].try_into().unwrap()), 1);
        assert_eq!(u32::from_be_bytes(body[8..12].try_into().unwrap()), 123_456);
        assert_eq!(u32::from_be_bytes(body[12..16].try_into().unwrap()), 2048);
        // mehd: the presentation after the edit, not the media with priming and padding.
        let mehd = a.windows(4).position(|w| w == b"mehd").unwrap();
        assert_eq!(
            u64::from_be_bytes(a[mehd + 8..mehd + 16].try_into().unwrap()),
            123_456
        );
        assert!(!a.windows(4).any(|w| w == b"sgpd"));
    }

    #[test]
    fn rates_above_16_bits_are_halved_in_the_sample_entry() {
        assert_eq!(sample_entry_rate(44100), 44100);
        assert_eq!(sample_entry_rate(96000), 48000);
        assert_eq!(sample_entry_rate(192000), 48000);
        assert_eq!(sample_entry_rate(176400), 44100);
        assert_eq!(sample_entry_rate(384000), 48000);
    }

    #[test]
    fn opus_fragments_carry_the_roll_group() {
        assert_eq!(opus_roll_distance(960), -4);
        assert_eq!(opus_roll_distance(1920), -2);
        assert_eq!(opus_roll_distance(480), -8);
        let samples = [(960, 3), (960, 2), (960, 1)];
        let seg = create_media_segment(&Fragment {
            sequence_number: 1,
            base_media_decode_time: 0,
            samples: &samples,
            data: &[0; 6],
            roll_group: true,
            sample_ivs: None,
        });
        let sbgp = seg.windows(4).position(|w| w == b"sbgp").unwrap();
        let body = &seg[sbgp + 8..sbgp + 24];
        assert_eq!(&body[0..4], b"roll");
        assert_eq!(u32::from_be_bytes(body[4..8].try_into().unwrap()), 1);
        assert_eq!(u32::from_be_bytes(body[8..12].try_into().unwrap()), 3);
        assert_eq!(u32::from_be_bytes(body[12..16].try_into().unwrap()), 1);
        // trun's data offset still points at mdat's payload with the sbgp in the traf.
        let trun = seg.windows(4).position(|w| w == b"trun").unwrap();
        let offset = u32::from_be_bytes(seg[trun + 12..trun + 16].try_into().unwrap()) as usize;
        assert_eq!(&seg[offset - 4..offset], b"mdat");
    }
}
