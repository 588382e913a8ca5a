#![no_main]
//! Arbitrary bytes against netkit-dns (see netkit_tests::fuzz::dns_message).
libfuzzer_sys::fuzz_target!(|data: &[u8]| netkit_tests::fuzz::dns_message(data));
