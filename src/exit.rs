//! Process exit statuses (sysexits.h), documented in the README: what every command and the
//! worker's dead letter report.

pub const OK: u8 = 0;
/// Command-line usage error.
pub const USAGE: u8 = 64;
/// Bad input: a master, the ladder or the release metadata.
pub const BAD_INPUT: u8 = 65;
/// A store or the catalog receiver cannot be reached, or failed after the retries; or
/// the bucket does not exist.
pub const UNAVAILABLE: u8 = 69;
/// Internal failure: an encoder or the pipeline itself.
pub const INTERNAL: u8 = 70;
/// Stopped before the end; running it again will finish.
pub const TEMPFAIL: u8 = 75;
/// Cannot write the output, read a package, or the store refused a checksum.
pub const OUTPUT: u8 = 74;
/// The catalog receiver rejected the notification (a 4xx other than 429); the package
/// is published.
pub const REJECTED: u8 = 76;
/// The store refused the credentials or the permission.
pub const PERMISSION: u8 = 77;
