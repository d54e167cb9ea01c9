//! Untrusted release.json text through the metadata checker: must never panic.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use pressing::ingest::metadata::check_release;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let _ = check_release(
        Path::new("release.json"),
        &text,
        Path::new("/nonexistent"),
        &[],
    );
});
