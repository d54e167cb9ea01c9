//! Untrusted master bytes through the reader and the analyzer: must never panic or hang.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use pressing::ingest::analysis::Analyzer;
use pressing::ingest::MasterReader;

fuzz_target!(|data: &[u8]| {
    let Ok(mut reader) = MasterReader::from_bytes(Path::new("fuzz.wav"), data.to_vec(), true)
    else {
        return;
    };
    let format = reader.format().clone();
    let Ok(mut analyzer) = Analyzer::new(format.channels, format.sample_rate) else {
        return;
    };
    while let Ok(Some(chunk)) = reader.next_chunk() {
        analyzer.push(chunk);
    }
    let _ = reader.verification();
    let _ = analyzer.finish(Path::new("fuzz.wav"));
});
