//! hdfsftpd: an FTP/FTPS gateway to HDFS with Kerberos login.
#![forbid(unsafe_code)]

mod auth;
mod config;
mod data;
mod listing;
mod server;
mod session;
mod storage;
mod stream;
mod tls;
mod vpath;

use std::process::ExitCode;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use config::{Config, Invocation};

/// Exit code for a configuration the server cannot run with.
const EXIT_CONFIG: u8 = 2;
/// Exit code for a failure while starting or running.
const EXIT_RUNTIME: u8 = 1;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (settings, check_only) = match config::parse_command_line(&args) {
        Ok(Invocation::Help(text)) => {
            print!("{text}");
            return ExitCode::SUCCESS;
        }
        Ok(Invocation::Version) => {
            println!("hdfsftpd {}", env!("CARGO_PKG_VERSION"));
            return ExitCode::SUCCESS;
        }
        Ok(Invocation::Run { settings, check_only }) => (settings, check_only),
        Err(e) => return fail(EXIT_CONFIG, &format!("{e} (see --help)")),
    };
    let config = match Config::from_settings(&settings) {
        Ok(config) => config,
        Err(e) => return fail(EXIT_CONFIG, &e.to_string()),
    };
    env_logger::Builder::new().filter_level(config.log_level).format_target(false).parse_default_env().init();
    let backend = match storage::build(&settings) {
        Ok(backend) => backend,
        Err(e) => return fail(EXIT_CONFIG, &e.to_string()),
    };
    let auth = match auth::build(&settings, config.anonymous) {
        Ok(auth) => auth,
        Err(e) => return fail(EXIT_CONFIG, &e.to_string()),
    };
    let tls = match tls::Tls::from_settings(&settings) {
        Ok(tls) => tls,
        Err(e) => return fail(EXIT_CONFIG, &e.to_string()),
    };
    if check_only {
        println!("configuration OK: storage {}, {} worker(s)", backend.name(), config.max_clients);
        if let Some(tls) = &tls {
            println!("{}", tls.describe());
        }
        return ExitCode::SUCCESS;
    }
    let ports =
        [(config.ftp_port, server::Kind::Ftp), (tls.as_ref().map_or(0, |t| t.ftps_port), server::Kind::ImplicitFtps)];
    let listeners = match server::bind_listeners(&config.binds, &ports) {
        Ok(listeners) => listeners,
        Err(e) => return fail(EXIT_RUNTIME, &e.to_string()),
    };
    let shared = Arc::new(session::Shared { config, backend, auth, tls, shutting_down: AtomicBool::new(false) });
    match server::Server::new(shared).run(listeners) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(EXIT_RUNTIME, &e.to_string()),
    }
}

fn fail(code: u8, message: &str) -> ExitCode {
    eprintln!("hdfsftpd: {message}");
    ExitCode::from(code)
}
