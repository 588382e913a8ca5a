#![no_main]
//! Arbitrary bytes against netkit-http1's decoder (see netkit_tests::fuzz::http_response).
libfuzzer_sys::fuzz_target!(|data: &[u8]| netkit_tests::fuzz::http_response(data));
