//! `cargo xtask interop`: only the tests that talk to real peers and the `netkit`
//! binary.

use crate::{Result, step};

/// Runs the interop tests.
pub(crate) fn run() -> Result {
    step(
        "interop tests (the netkit binary against real peers over loopback)",
        &["test", "-p", "netkit-tests", "--test", "cli"],
    )
}
