#![no_main]
//! Arbitrary hosts-file text and names: never a panic, lookups consistent.
libfuzzer_sys::fuzz_target!(|data: &[u8]| netkit_tests::fuzz::hosts(data));
