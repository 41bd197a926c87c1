#![no_main]
libfuzzer_sys::fuzz_target!(|line: &str| hdfsftpd::fuzzing::command_line(line));
