//! The command line's own pieces: terminal progress and the wiring of stores and the catalog
//! from flags and the environment. Only here and in the worker are concrete stores named.

pub mod fleet;
pub mod print;
pub mod progress;
pub mod stores;
