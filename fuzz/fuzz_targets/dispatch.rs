#![no_main]
libfuzzer_sys::fuzz_target!(|script: &[u8]| hdfsftpd::fuzzing::dispatch(script));
