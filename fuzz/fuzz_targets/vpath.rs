#![no_main]
// The first line is the working directory, the rest the name the client sent.
libfuzzer_sys::fuzz_target!(|text: &str| {
    let (cwd, name) = text.split_once('\n').unwrap_or(("/", text));
    hdfsftpd::fuzzing::vpath(cwd, name)
});
