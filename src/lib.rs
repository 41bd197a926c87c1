//! hdfsftpd: an FTP/FTPS gateway to HDFS with Kerberos login.
//!
//! The whole daemon is this library; the binary (main.rs) only calls [`run`]. Its modules stay private,
//! so an item nothing reaches is still reported as dead code; whatever another harness (a fuzz target)
//! needs is exported when it needs it.
#![forbid(unsafe_code)]

mod auth;
mod checksum;
mod config;
mod daemon;
mod data;
#[cfg(feature = "fuzzing")]
pub mod fuzzing;
#[cfg(feature = "krb5")]
mod gss_channel;
mod listing;
mod locks;
mod logfile;
mod name_rules;
mod online;
mod proxy_protocol;
mod random;
mod rate_limit;
mod server;
mod session;
mod settings;
mod shutdown;
mod storage;
mod stream;
mod syslog;
mod tls;
mod vpath;
mod xferlog;

use std::io;
use std::process::ExitCode;
use std::sync::Arc;

use config::Config;
use hdfsftpd_ffi::process::{self, Readiness};
use logfile::{LogFile, SyslogTarget};
use settings::{Action, FlagGroup, Invocation, Settings};

/// Every feature's settings table, in `--help` order. The composition root assembles them, so the
/// settings machinery knows no feature.
const FLAG_GROUPS: &[FlagGroup] = &[
    ("Core", config::CORE_FLAGS),
    #[cfg(feature = "hdfs")]
    ("HDFS storage", storage::hdfs::FLAGS),
    ("TLS", tls::FLAGS),
    #[cfg(feature = "krb5")]
    ("Kerberos", auth::krb5::FLAGS),
    ("Login lockout", auth::lockout::FLAGS),
    ("Transfer rates", rate_limit::FLAGS),
    ("Daemon", config::DAEMON_FLAGS),
];

/// Exit code for a configuration the server cannot run with.
const EXIT_CONFIG: u8 = 2;
/// Exit code for a failure while starting or running.
const EXIT_RUNTIME: u8 = 1;

/// Runs the daemon with its command-line arguments (without the program name) and says how it ended.
pub fn run(args: &[String]) -> ExitCode {
    server::tune_allocator();
    let (settings, action) = match settings::parse_command_line(args, FLAG_GROUPS) {
        Ok(Invocation::Help(text)) => {
            print!("{text}");
            return ExitCode::SUCCESS;
        }
        Ok(Invocation::Version) => {
            println!("hdfsftpd {}", env!("CARGO_PKG_VERSION"));
            return ExitCode::SUCCESS;
        }
        Ok(Invocation::Run { settings, action }) => (settings, action),
        Err(e) => return fail(EXIT_CONFIG, &format!("{e} (see --help)")),
    };
    let config = match Config::from_settings(&settings) {
        Ok(config) => config,
        Err(e) => return fail(EXIT_CONFIG, &e.to_string()),
    };
    match action {
        Action::CheckConfig => return check_config(&settings, &config),
        Action::Who { json } => return who(&config, json),
        Action::Serve => {}
    }
    if !config.enable {
        return fail(EXIT_CONFIG, "the service is disabled by configuration (enable = no); set enable = yes to run it");
    }
    // Before any thread starts: the worker pool's threads never exit, so glibc's per-thread caches would
    // keep what each one's last session freed.
    let allocator = hdfsftpd_ffi::memory::restart_without_thread_caches();
    match start(settings, config, allocator) {
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

/// What glibc's allocator runs with, as run()'s restart without per-thread caches left it: glibc
/// rewrites the copy /proc/PID/environ shows, so the log is where an operator sees it.
fn log_allocator(allocator: &io::Result<String>) {
    match allocator {
        Ok(tunables) => log::info!("allocator: GLIBC_TUNABLES={tunables}"),
        Err(e) => log::warn!(
            "allocator: cannot restart without glibc's per-thread caches ({e}): memory freed by sessions stays \
             with the workers"
        ),
    }
}

/// Start-up in the order a daemon needs: files and ports while still root and attached to the
/// terminal, then detach (before any thread or the JVM exists), then drop privileges, then the
/// storage and authentication backends, then serve.
fn start(settings: Settings, config: Config, allocator: io::Result<String>) -> Result<(), Failure> {
    let syslog = SyslogTarget { socket: &config.syslog_socket, facility: config.syslog_facility };
    let open = |path: &std::path::Path| LogFile::open(path, &syslog);
    let log_file = config.log_file.as_deref().map(open).transpose().map_err(Failure::runtime)?;
    let xferlog = config.xferlog.as_deref().map(open).transpose().map_err(Failure::runtime)?;
    init_logging(&config, log_file.as_ref());
    log_allocator(&allocator);
    if let Some(pid_file) = &config.pid_file {
        daemon::PidFile::check_free(pid_file).map_err(Failure::runtime)?;
    }
    let status_socket =
        config.status_socket.as_deref().map(online::StatusSocket::bind).transpose().map_err(Failure::runtime)?;
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
            if let Some(socket) = &status_socket {
                socket.serve(server.online()).map_err(Failure::runtime)?;
            }
            if let Some(readiness) = readiness {
                readiness.ready();
            }
            let result = server.run(listeners).map_err(Failure::runtime);
            drop((status_socket, pid_file));
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
    let stderr = log_file.map(LogFile::stderr_file).transpose().map_err(Failure::runtime)?.flatten();
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
    let owned: Vec<&std::path::Path> = [&config.log_file, &config.xferlog, &config.pid_file, &config.status_socket]
        .into_iter()
        .flatten()
        .map(|p| p.as_path())
        .filter(|p| !logfile::is_syslog(p))
        .collect();
    daemon::drop_privileges(user, config.run_as_group.as_deref(), &owned)
        .map_err(|e| Failure::runtime(format!("cannot switch to user {user}: {e}")))?;
    log::info!("running as user {user}");
    Ok(())
}

/// `--who`: the running daemon's sessions, as its status socket lists them.
fn who(config: &Config, json: bool) -> ExitCode {
    let Some(path) = &config.status_socket else {
        return fail(EXIT_CONFIG, "--who needs --status-socket, or the daemon's --pid-file");
    };
    match online::who(path, json) {
        Ok(table) => {
            print!("{table}");
            ExitCode::SUCCESS
        }
        Err(e) => fail(EXIT_RUNTIME, &format!("cannot ask the daemon: {e} (is it running?)")),
    }
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
    match log_file {
        Some(LogFile::Syslog(syslog)) => {
            let filter = builder.build();
            log::set_max_level(filter.filter());
            let logger = syslog::Logger { filter, syslog: Arc::clone(syslog) };
            log::set_boxed_logger(Box::new(logger)).expect("the logger is set once");
        }
        Some(file) => {
            builder.target(env_logger::Target::Pipe(Box::new(file.clone())));
            builder.init();
        }
        None => builder.init(),
    }
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
        for flag in every_flag() {
            assert!(help.contains(&format!("--{}", flag.name())), "{} missing from --help", flag.name());
        }
    }

    fn every_flag() -> impl Iterator<Item = &'static settings::Flag> {
        FLAG_GROUPS.iter().flat_map(|(_, flags)| flags.iter())
    }

    #[test]
    fn every_default_is_a_value_of_its_setting() {
        for flag in every_flag() {
            if let Some(default) = flag.default() {
                assert!(flag.check(default).is_ok(), "{}: default '{default}' does not parse", flag.name());
            }
        }
    }

    /// Every `key = value` line of the shipped config, commented out or not, names a setting and gives
    /// a value of it; a commented-out line of a setting with a default shows that default.
    #[cfg(all(feature = "hdfs", feature = "krb5"))]
    #[test]
    fn the_shipped_config_names_settings_and_their_defaults() {
        let mut seen = 0;
        for line in include_str!("../scripts/install/hdfsftpd.conf").lines() {
            let (commented, line) = match line.strip_prefix('#') {
                Some(rest) => (true, rest.trim()),
                None => (false, line.trim()),
            };
            let Some((key, value)) = line.split_once('=').map(|(k, v)| (k.trim(), v.trim())) else { continue };
            if key.is_empty() || !key.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-') {
                continue;
            }
            let flag = every_flag().find(|f| f.name() == key).unwrap_or_else(|| panic!("{key}: not a setting"));
            flag.check(&value.replace("@SYSCONFDIR@", "/etc")).unwrap();
            if let (true, Some(default)) = (commented, flag.default()) {
                assert_eq!(value, default, "{key}: the shipped config's commented-out value is not the default");
            }
            seen += 1;
        }
        assert!(seen > 30, "only {seen} settings found in the shipped config");
    }

    #[cfg(not(all(feature = "hdfs", feature = "krb5")))]
    fn settings_of(args: &[&str]) -> Settings {
        let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        match settings::parse_command_line(&args, FLAG_GROUPS) {
            Ok(Invocation::Run { settings, .. }) => settings,
            _ => panic!("{args:?} is not a run"),
        }
    }

    #[cfg(not(feature = "hdfs"))]
    #[test]
    fn without_the_hdfs_feature_hdfs_storage_is_refused_saying_why() {
        let refused = storage::build(&settings_of(&["--storage", "hdfs"])).err().expect("refused");
        assert_eq!(
            refused.to_string(),
            "storage: hdfs: this hdfsftpd is built without HDFS storage (cargo feature hdfs, on by default)"
        );
        assert!(settings::parse_command_line(&["--hdfs-uri".into(), "default".into()], FLAG_GROUPS).is_err());
    }

    #[cfg(not(feature = "krb5"))]
    #[test]
    fn without_the_krb5_feature_kerberos_login_is_refused_saying_why() {
        let refused = auth::build(&settings_of(&["--auth", "krb5"]), false).err().expect("refused");
        assert_eq!(
            refused.to_string(),
            "auth: krb5: this hdfsftpd is built without Kerberos login (cargo feature krb5, on by default)"
        );
    }
}
