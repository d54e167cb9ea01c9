//! Limits against hostile or broken input, in one place. Each has its own error where it is
//! enforced, naming the file, the value found and the limit.

/// Largest master file accepted (a 60-minute 32-bit/192 kHz 7.1 master is ~5.3 GB).
pub const MAX_MASTER_BYTES: u64 = 8 * 1024 * 1024 * 1024;

/// Longest master accepted, in seconds (a continuous DJ mix or classical work fits).
pub const MAX_DURATION_SECONDS: u64 = 4 * 60 * 60;

/// Most channels a master may have (7.1).
pub const MAX_CHANNELS: u16 = 8;

/// Sample rates a master may have.
pub const MIN_SAMPLE_RATE: u32 = 8_000;
pub const MAX_SAMPLE_RATE: u32 = 192_000;

/// Names of the limits in messages; each has its own finding code (`master.limit-*`).
pub const WHAT_SIZE: &str = "file size (bytes)";
pub const WHAT_DURATION: &str = "duration (frames)";
pub const WHAT_CHANNELS: &str = "channel count";

/// A DDEX message: most bytes, deepest nesting and most elements read (an album's ERN is tens
/// of kilobytes, a few thousand elements, about 12 deep).
pub const MAX_XML_BYTES: u64 = 16 * 1024 * 1024;
pub const MAX_XML_DEPTH: usize = 64;
pub const MAX_XML_ELEMENTS: usize = 200_000;

/// A front cover: most bytes, most pixels and longest side (a 3000 x 3000 JPEG is a few MB;
/// a PNG bomb declares billions of pixels in a few KB, refused before it is decoded).
pub const MAX_COVER_BYTES: u64 = 64 * 1024 * 1024;
pub const MAX_COVER_PIXELS: u64 = 10_000 * 10_000;
pub const MAX_COVER_SIDE: u32 = 20_000;
