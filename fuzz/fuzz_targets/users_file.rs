#![no_main]
libfuzzer_sys::fuzz_target!(|text: &str| hdfsftpd::fuzzing::users_file(text));
