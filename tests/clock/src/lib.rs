//! The origin of the fake clock in the tests of the sans-IO crates.
//!
//! The crates under `crates/` never read a clock: time comes in as an `Instant`
//! argument. Their tests still need one `Instant` to start from, and std offers
//! no way to make one without reading the clock. This crate, outside `crates/`
//! like a driver, reads it once; every other instant in those tests is this
//! origin plus a duration the test chooses, so nothing depends on real time
//! passing.

use std::sync::OnceLock;
use std::time::Instant;

/// The same `Instant` on every call in a process: the tests' time zero.
pub fn origin() -> Instant {
    static ORIGIN: OnceLock<Instant> = OnceLock::new();
    *ORIGIN.get_or_init(Instant::now)
}
