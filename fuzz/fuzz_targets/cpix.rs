//! Untrusted CPIX documents (a key file, a key server's answer) through the reader and its
//! checks: must never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pressing::protect::cpix;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Ok(keys) = cpix::parse(&text) {
        let _ = keys.check_complete();
        for tier in pressing::ladder::Tier::ALL {
            if let Some(k) = keys.key_for("qzes62600001", tier) {
                let _ = keys.systems_for(&k.kid);
            }
        }
    }
});
