//! Untrusted DDEX ERN messages through the reader, the conversion and every check: must never
//! panic.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use pressing::ingest::ddex::check_ern;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let _ = check_ern(Path::new("ern.xml"), &text, Path::new("/nonexistent"), &[]);
});
