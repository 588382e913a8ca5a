#![no_main]
//! Random inputs against the invariants of netkit-socket's `accept_gate` machine (see netkit_tests::fuzz::accept_gate).
libfuzzer_sys::fuzz_target!(|data: &[u8]| netkit_tests::fuzz::accept_gate(data));
