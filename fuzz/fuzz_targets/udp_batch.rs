#![no_main]
//! Arbitrary sendMany lists, plans and GRO buffers: never a panic, every
//! packet planned once in order, errors naming a place in the list.
libfuzzer_sys::fuzz_target!(|data: &[u8]| netkit_tests::fuzz::udp_batch(data));
