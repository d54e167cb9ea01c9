//! Untrusted cover bytes (a label's JPEG or PNG) through the cover's checks (the format
//! sniffing, the frame-header reader that finds CMYK, the bomb limits, the decode): must
//! never panic.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use pressing::ingest::cover;

fuzz_target!(|data: &[u8]| {
    // A low floor, so small inputs reach the decode.
    let _ = cover::check_bytes(Path::new("cover.jpg"), data, 1);
});
