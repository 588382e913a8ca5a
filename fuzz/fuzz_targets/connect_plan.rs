#![no_main]
//! Random inputs against the invariants of netkit-socket's `connect_plan` machine (see netkit_tests::fuzz::connect_plan).
libfuzzer_sys::fuzz_target!(|data: &[u8]| netkit_tests::fuzz::connect_plan(data));
