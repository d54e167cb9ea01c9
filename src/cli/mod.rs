//! The command line's own pieces: its arguments, the commands over the library, terminal
//! progress, and the wiring of stores, queues and the catalog from flags and the environment.
//! Only here and in the worker are concrete stores named.

pub mod args;
pub mod fleet;
pub mod press;
pub mod print;
pub mod progress;
pub mod stores;

use std::process::ExitCode;

/// Pretty JSON on standard output.
pub fn json_out(v: &impl serde::Serialize) {
    progress::data(pressing::report::to_pretty_json(v));
}

/// Data on standard output as the whole of a command's work: its exit code.
pub fn data_exit(bytes: impl AsRef<[u8]>) -> ExitCode {
    if progress::data(bytes) {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(pressing::exit::OUTPUT)
    }
}

/// Print an error; its exit code.
pub fn fail(e: &pressing::Error) -> ExitCode {
    progress::error(e.to_string());
    ExitCode::from(e.exit_code())
}
