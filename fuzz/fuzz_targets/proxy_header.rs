#![no_main]
libfuzzer_sys::fuzz_target!(|bytes: &[u8]| hdfsftpd::fuzzing::proxy_header(bytes));
