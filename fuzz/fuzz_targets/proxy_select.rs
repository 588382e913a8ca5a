#![no_main]
//! Arbitrary proxy settings and URLs (see netkit_tests::fuzz::proxy_select).
libfuzzer_sys::fuzz_target!(|data: &[u8]| netkit_tests::fuzz::proxy_select(data));
