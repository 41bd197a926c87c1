//! hdfsftpd: an FTP/FTPS gateway to HDFS with Kerberos login.
#![forbid(unsafe_code)]

mod auth;
mod config;
mod daemon;
mod data;
mod listing;
mod logfile;
mod proxy_protocol;
mod random;
mod server;
mod session;
mod settings;
mod shutdown;
mod storage;
mod stream;
mod tls;
mod vpath;
mod xferlog;

use std::process::ExitCode;
use std::sync::Arc;

use config::Config;
use hdfsftpd_ffi::process::{self, Readiness};
use logfile::LogFile;
use settings::{FlagGroup, Invocation, Settings};

/// Every feature's settings table, in `--help` order. The composition root assembles them, so the
/// settings machinery knows no feature.
const FLAG_GROUPS: &[FlagGroup] = &[
    ("Core", config::CORE_FLAGS),
    ("HDFS storage", storage::hdfs::FLAGS),
    ("TLS", tls::FLAGS),
    ("Kerberos", auth::krb5::FLAGS),
    ("Login lockout", auth::lockout::FLAGS),
    ("Daemon", config::DAEMON_FLAGS),
];

/// Exit code for a configuration the server cannot run with.
const EXIT_CONFIG: u8 = 2;
/// Exit code for a failure while starting or running.
const EXIT_RUNTIME: u8 = 1;

fn main() -> ExitCode {
    server::tune_allocator();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (settings, check_only) = match settings::parse_command_line(&args, FLAG_GROUPS) {
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
    if check_only {
        return check_config(&settings, &config);
    }
    if !config.enable {
        return fail(EXIT_CONFIG, "the service is disabled by configuration (enable = no); set enable = yes to run it");
    }
    match start(settings, config) {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => fail(failure.code, &failure.message),
    }
}

/// Why start-up failed, and the exit code that says so.
struct Failure {
    code: u8,
    message: String,
}

impl Failure {
    fn runtime(message: impl ToString) -> Failure {
        Failure { code: EXIT_RUNTIME, message: message.to_string() }
    }

    fn config(message: impl ToString) -> Failure {
        Failure { code: EXIT_CONFIG, message: message.to_string() }
    }
}

/// Start-up in the order a daemon needs: files and ports while still root and attached to the
/// terminal, then detach (before any thread or the JVM exists), then drop privileges, then the
/// storage and authentication backends, then serve.
fn start(settings: Settings, config: Config) -> Result<(), Failure> {
    let log_file = config.log_file.as_deref().map(LogFile::open).transpose().map_err(Failure::runtime)?;
    let xferlog = config.xferlog.as_deref().map(LogFile::open).transpose().map_err(Failure::runtime)?;
    init_logging(&config, log_file.as_ref());
    if let Some(pid_file) = &config.pid_file {
        daemon::PidFile::check_free(pid_file).map_err(Failure::runtime)?;
    }
    // Certificates are read while still root and attached, so their errors reach the terminal.
    let tls = tls::Tls::from_settings(&settings).map_err(Failure::config)?;
    let ports =
        [(config.ftp_port, server::Kind::Ftp), (tls.as_ref().map_or(0, |t| t.ftps_port), server::Kind::ImplicitFtps)];
    let listeners = server::bind_listeners(&config.binds, &ports).map_err(Failure::runtime)?;
    let readiness = match config.daemon {
        true => Some(detach(log_file.as_ref())?),
        false => None,
    };
    match prepare(&settings, config, log_file, xferlog, tls) {
        Ok((server, pid_file)) => {
            if let Some(readiness) = readiness {
                readiness.ready();
            }
            let result = server.run(listeners).map_err(Failure::runtime);
            drop(pid_file);
            result
        }
        Err(failure) => {
            log::error!("start-up failed: {}", failure.message);
            if let Some(readiness) = readiness {
                readiness.failed(&failure.message);
            }
            Err(failure)
        }
    }
}

fn detach(log_file: Option<&LogFile>) -> Result<Readiness, Failure> {
    let stderr = log_file.map(LogFile::try_clone_file).transpose().map_err(Failure::runtime)?;
    process::daemonize(stderr.as_ref()).map_err(|e| Failure::runtime(format!("cannot detach: {e}")))
}

/// Everything after detaching and before serving.
fn prepare(
    settings: &Settings,
    config: Config,
    log_file: Option<LogFile>,
    xferlog: Option<LogFile>,
    tls: Option<tls::Tls>,
) -> Result<(server::Server, Option<daemon::PidFile>), Failure> {
    let pid_file = config.pid_file.as_deref().map(daemon::PidFile::create).transpose().map_err(Failure::runtime)?;
    if let Some(user) = &config.run_as_user {
        switch_user(&config, user)?;
    }
    let backend = storage::build(settings).map_err(Failure::config)?;
    let auth = auth::build(settings, config.anonymous).map_err(Failure::config)?;
    let reopen_on_hup = [log_file, xferlog.clone()].into_iter().flatten().collect();
    let shared = Arc::new(session::Shared::new(config, backend, auth, xferlog, tls));
    Ok((server::Server::new(shared, reopen_on_hup), pid_file))
}

fn switch_user(config: &Config, user: &str) -> Result<(), Failure> {
    if hdfsftpd_ffi::accounts::effective_uid() != 0 {
        log::warn!("--user {user} ignored: not started as root");
        return Ok(());
    }
    let owned: Vec<&std::path::Path> =
        [&config.log_file, &config.xferlog, &config.pid_file].into_iter().flatten().map(|p| p.as_path()).collect();
    daemon::drop_privileges(user, config.run_as_group.as_deref(), &owned)
        .map_err(|e| Failure::runtime(format!("cannot switch to user {user}: {e}")))?;
    log::info!("running as user {user}");
    Ok(())
}

fn check_config(settings: &Settings, config: &Config) -> ExitCode {
    if !config.enable {
        // Said first, so an init script learns it even when the rest is not filled in yet.
        println!("service disabled (enable = no)");
    }
    let backend = match storage::build(settings) {
        Ok(backend) => backend,
        Err(e) => return fail(EXIT_CONFIG, &e.to_string()),
    };
    if let Err(e) = auth::build(settings, config.anonymous) {
        return fail(EXIT_CONFIG, &e.to_string());
    }
    let tls = match tls::Tls::from_settings(settings) {
        Ok(tls) => tls,
        Err(e) => return fail(EXIT_CONFIG, &e.to_string()),
    };
    println!("configuration OK: storage {}, {} worker(s)", backend.name(), config.max_clients);
    if let Some(tls) = &tls {
        println!("{}", tls.describe());
    }
    ExitCode::SUCCESS
}

fn init_logging(config: &Config, log_file: Option<&LogFile>) {
    let mut builder = env_logger::Builder::new();
    builder.filter_level(config.log_level).format_target(false).parse_default_env();
    if let Some(file) = log_file {
        builder.target(env_logger::Target::Pipe(Box::new(file.clone())));
    }
    builder.init();
}

fn fail(code: u8, message: &str) -> ExitCode {
    eprintln!("hdfsftpd: {message}");
    ExitCode::from(code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn help_lists_every_flag_of_every_feature() {
        let help = settings::help_text(FLAG_GROUPS);
        for flag in FLAG_GROUPS.iter().flat_map(|(_, flags)| flags.iter()) {
            assert!(help.contains(&format!("--{}", flag.name)), "{} missing from --help", flag.name);
        }
    }
}
