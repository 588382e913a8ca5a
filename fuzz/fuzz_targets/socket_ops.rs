#![no_main]
//! Random operation sequences against netkit-socket's invariants.
libfuzzer_sys::fuzz_target!(|data: &[u8]| netkit_tests::fuzz::socket_ops(data));
