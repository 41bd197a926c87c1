//! The hdfsftpd binary. The daemon is the library (lib.rs), which unit tests and other harnesses link
//! on their own.
#![forbid(unsafe_code)]

fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    hdfsftpd::run(&args)
}
