#![no_main]
//! Arbitrary bytes fed to a TLS server session and a client session.
libfuzzer_sys::fuzz_target!(|data: &[u8]| netkit_tests::fuzz::tls_sessions(data));
