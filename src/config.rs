//! Configuration: every setting has one name, used both as a `--flag` and as a `key = value` line of the
//! `--config` file (flags win). Each concern declares its own settings in a [`Flag`] table and reads
//! them from [`Settings`]; this file holds the machinery and the core daemon's settings.

use std::collections::HashMap;
use std::fmt;
use std::net::IpAddr;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arity {
    /// A switch: `--name` on the command line, `name = yes|no` in the file.
    Switch,
    /// One value; the last one given wins.
    Value,
    /// Repeatable; flags replace the file's values.
    Repeated,
}

/// One setting: its name, how many values it takes, a value hint and a line of help.
pub struct Flag {
    pub name: &'static str,
    pub arity: Arity,
    pub hint: &'static str,
    pub help: &'static str,
}

pub const fn switch(name: &'static str, help: &'static str) -> Flag {
    Flag { name, arity: Arity::Switch, hint: "", help }
}

pub const fn value(name: &'static str, hint: &'static str, help: &'static str) -> Flag {
    Flag { name, arity: Arity::Value, hint, help }
}

pub const fn repeated(name: &'static str, hint: &'static str, help: &'static str) -> Flag {
    Flag { name, arity: Arity::Repeated, hint, help }
}

/// Command-line-only flags: they steer the program, they are not configuration.
const META_FLAGS: &[Flag] = &[
    value("config", "FILE", "read settings from FILE (key = value lines, # comments); flags win"),
    switch("check-config", "check the configuration, print it and exit (0 when valid)"),
    switch("help", "print this help and exit"),
    switch("version", "print the version and exit"),
];

const CORE_FLAGS: &[Flag] = &[
    repeated("bind", "ADDR", "address to listen on, IPv4 or IPv6; repeatable [0.0.0.0]"),
    value("ftp-port", "N", "plain FTP port; 0 disables plain FTP [21]"),
    value("storage", "KIND", "storage backend: local or hdfs [local]"),
    value("local-root", "DIR", "root directory of the local storage; user homes are below it"),
    value("auth", "KIND", "authenticator: users or krb5 [users]"),
    value("users-file", "FILE", "users file: name:crypt-hash:home:perms lines"),
    switch("anonymous", "allow anonymous read-only login through the users file's 'anonymous' entry"),
    value("max-clients", "N", "most sessions at once; also the worker pool size [16]"),
    value("max-per-ip", "N", "most sessions from one address; 0 = no limit [half of --max-clients]"),
    value("pasv-ports", "LO-HI", "port range for passive data connections [any free port]"),
    value("pasv-address", "ADDR", "address advertised in PASV replies [the control connection's]"),
    value("idle-timeout", "SECS", "end sessions idle this long [300]"),
    value("login-timeout", "SECS", "end sessions not logged in within this time [60]"),
    value("first-command-timeout", "SECS", "end connections silent this long, or this slow in a TLS handshake [5]"),
    value("data-timeout", "SECS", "data connection set-up and stall limit [60]"),
    switch("allow-foreign-port", "allow PORT/EPRT to other hosts and privileged ports (FXP)"),
    value("login-fail-delay", "SECS", "delay before every failed-login reply [1]"),
    value("max-login-fails", "N", "failed logins before the connection is closed [3]"),
    value("log-level", "LEVEL", "error, warn, info, debug (protocol dialogue) or trace [info]"),
];

const DAEMON_FLAGS: &[Flag] = &[
    value("enable", "yes|no", "run the service at all; the shipped config says no until an operator says yes [yes]"),
    switch("daemon", "detach from the terminal; the starting process exits 0 once the daemon serves"),
    value("pid-file", "FILE", "write the daemon's pid here; refuse to start while a live process holds it"),
    value("log-file", "FILE", "log here instead of stderr; reopened on SIGHUP (log rotation)"),
    value("xferlog", "FILE", "transfer log in the wu-ftpd/vsftpd xferlog format; reopened on SIGHUP"),
    value("user", "NAME", "after binding the ports, run as this user (when started as root)"),
    value("group", "NAME", "with --user: run with this group [the user's primary group]"),
    value("shutdown-grace", "SECS", "on SIGTERM, let running transfers finish this long [10]"),
];

/// Every settings table, in `--help` order, with its heading.
fn flag_groups() -> Vec<(&'static str, &'static [Flag])> {
    vec![
        ("General", META_FLAGS),
        ("Core", CORE_FLAGS),
        ("HDFS storage", crate::storage::hdfs::FLAGS),
        ("TLS", crate::tls::FLAGS),
        ("Kerberos", crate::auth::krb5::FLAGS),
        ("Login lockout", crate::auth::lockout::FLAGS),
        ("Daemon", DAEMON_FLAGS),
    ]
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub key: String,
    pub message: String,
}

impl ConfigError {
    pub fn new(key: &str, message: impl Into<String>) -> Self {
        ConfigError { key: key.to_string(), message: message.into() }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.key.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.key, self.message)
        }
    }
}

impl std::error::Error for ConfigError {}

pub type Result<T> = std::result::Result<T, ConfigError>;

/// Raw settings merged from the config file and the command line, read by typed getters that name the
/// offending key in their errors.
#[derive(Debug, Default)]
pub struct Settings {
    values: HashMap<String, Vec<String>>,
}

impl Settings {
    fn arity(key: &str) -> Option<Arity> {
        flag_groups().iter().flat_map(|(_, flags)| flags.iter()).find(|f| f.name == key).map(|f| f.arity)
    }

    /// Parses `key = value` lines; unknown keys and command-line-only keys are errors.
    pub fn from_file_text(text: &str, origin: &str) -> Result<Settings> {
        let mut settings = Settings::default();
        for (index, raw) in text.lines().enumerate() {
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let at = format!("{origin} line {}", index + 1);
            let (key, value) = line.split_once('=').ok_or_else(|| ConfigError::new(&at, "expected 'key = value'"))?;
            let (key, value) = (key.trim(), value.trim());
            match Self::arity(key) {
                Some(_) if META_FLAGS.iter().any(|f| f.name == key) => {
                    return Err(ConfigError::new(key, format!("only valid on the command line ({at})")));
                }
                Some(Arity::Repeated) => settings.values.entry(key.to_string()).or_default().push(value.to_string()),
                Some(_) => {
                    settings.values.insert(key.to_string(), vec![value.to_string()]);
                }
                None => return Err(ConfigError::new(key, format!("unknown setting ({at})"))),
            }
        }
        Ok(settings)
    }

    /// Lays command-line values over these: a given flag replaces the file's value(s).
    fn overlay(&mut self, matches: &getopts::Matches) {
        for flag in flag_groups().iter().flat_map(|(_, flags)| flags.iter()) {
            let given = match flag.arity {
                Arity::Switch if matches.opt_present(flag.name) => vec!["yes".to_string()],
                Arity::Switch => continue,
                Arity::Value => matches.opt_str(flag.name).into_iter().collect(),
                Arity::Repeated => matches.opt_strs(flag.name),
            };
            if !given.is_empty() {
                self.values.insert(flag.name.to_string(), given);
            }
        }
    }

    pub fn string(&self, key: &str) -> Option<&str> {
        self.values.get(key).and_then(|v| v.last()).map(String::as_str)
    }

    pub fn strings(&self, key: &str) -> &[String] {
        self.values.get(key).map(Vec::as_slice).unwrap_or(&[])
    }

    pub fn switch(&self, key: &str) -> Result<bool> {
        self.yes_no(key, false)
    }

    /// A yes/no value, or `default` when the setting is absent.
    pub fn yes_no(&self, key: &str, default: bool) -> Result<bool> {
        match self.string(key) {
            None => Ok(default),
            Some(v) => parse_bool(v).ok_or_else(|| ConfigError::new(key, format!("'{v}' is not yes or no"))),
        }
    }

    /// A parsed value, or `default` when the setting is absent.
    pub fn parsed<T: FromStr>(&self, key: &str, default: T) -> Result<T>
    where
        T::Err: fmt::Display,
    {
        match self.string(key) {
            None => Ok(default),
            Some(v) => v.parse().map_err(|e| ConfigError::new(key, format!("'{v}': {e}"))),
        }
    }

    pub fn seconds(&self, key: &str, default: f64) -> Result<Duration> {
        let secs: f64 = self.parsed(key, default)?;
        Duration::try_from_secs_f64(secs).map_err(|_| ConfigError::new(key, format!("'{secs}' is not a duration")))
    }

    pub fn path(&self, key: &str) -> Option<PathBuf> {
        self.string(key).map(PathBuf::from)
    }

    pub fn required_path(&self, key: &str, why: &str) -> Result<PathBuf> {
        self.path(key).ok_or_else(|| ConfigError::new(key, format!("required {why}")))
    }
}

fn parse_bool(value: &str) -> Option<bool> {
    match value.to_ascii_lowercase().as_str() {
        "yes" | "true" | "on" | "1" => Some(true),
        "no" | "false" | "off" | "0" => Some(false),
        _ => None,
    }
}

/// What the command line asks the program to do.
pub enum Invocation {
    Help(String),
    Version,
    Run { settings: Settings, check_only: bool },
}

/// Parses the command line (and the `--config` file it names).
pub fn parse_command_line(args: &[String]) -> Result<Invocation> {
    let options = options();
    let matches = options.parse(args).map_err(|e| ConfigError::new("", e.to_string()))?;
    if let Some(stray) = matches.free.first() {
        return Err(ConfigError::new("", format!("unexpected argument '{stray}'")));
    }
    if matches.opt_present("help") {
        return Ok(Invocation::Help(help_text(&options)));
    }
    if matches.opt_present("version") {
        return Ok(Invocation::Version);
    }
    let mut settings = match matches.opt_str("config") {
        Some(file) => {
            let text =
                std::fs::read_to_string(&file).map_err(|e| ConfigError::new("config", format!("{file}: {e}")))?;
            Settings::from_file_text(&text, &file)?
        }
        None => Settings::default(),
    };
    settings.overlay(&matches);
    Ok(Invocation::Run { settings, check_only: matches.opt_present("check-config") })
}

fn options() -> getopts::Options {
    let mut options = getopts::Options::new();
    for flag in flag_groups().iter().flat_map(|(_, flags)| flags.iter()) {
        match flag.arity {
            Arity::Switch => options.optflag("", flag.name, flag.help),
            Arity::Value => options.optopt("", flag.name, flag.help, flag.hint),
            Arity::Repeated => options.optmulti("", flag.name, flag.help, flag.hint),
        };
    }
    options
}

fn help_text(_options: &getopts::Options) -> String {
    let mut text = format!(
        "hdfsftpd {} - FTP/FTPS gateway to HDFS with Kerberos login\n\n\
         Usage: hdfsftpd [FLAGS]\n\n\
         Every setting can also be a 'name = value' line in the --config file; flags win.\n\
         Switches take yes/no in the file. Defaults are in brackets.\n",
        env!("CARGO_PKG_VERSION")
    );
    for (heading, flags) in flag_groups() {
        text.push_str(&format!("\n{heading}:\n"));
        for flag in flags {
            let left = format!("--{} {}", flag.name, flag.hint);
            text.push_str(&format!("  {:<28} {}\n", left.trim_end(), flag.help));
        }
    }
    text
}

/// The core daemon's settings, validated.
#[derive(Debug, Clone)]
pub struct Config {
    pub binds: Vec<IpAddr>,
    pub ftp_port: u16,
    pub max_clients: usize,
    pub max_per_ip: usize,
    pub pasv_ports: Option<(u16, u16)>,
    pub pasv_address: Option<IpAddr>,
    pub idle_timeout: Duration,
    pub login_timeout: Duration,
    /// How long a new connection may stay silent, and a TLS handshake before login may take.
    pub first_command_timeout: Duration,
    pub data_timeout: Duration,
    pub allow_foreign_port: bool,
    pub login_fail_delay: Duration,
    pub max_login_fails: u32,
    pub anonymous: bool,
    pub log_level: log::LevelFilter,
    pub enable: bool,
    pub daemon: bool,
    pub pid_file: Option<PathBuf>,
    pub log_file: Option<PathBuf>,
    pub xferlog: Option<PathBuf>,
    pub run_as_user: Option<String>,
    pub run_as_group: Option<String>,
    pub shutdown_grace: Duration,
}

impl Config {
    pub fn from_settings(s: &Settings) -> Result<Config> {
        let binds = match s.strings("bind") {
            [] => vec![IpAddr::from([0, 0, 0, 0])],
            given => given
                .iter()
                .map(|b| b.parse().map_err(|e| ConfigError::new("bind", format!("'{b}': {e}"))))
                .collect::<Result<_>>()?,
        };
        let max_clients: usize = s.parsed("max-clients", 16)?;
        if max_clients == 0 {
            return Err(ConfigError::new("max-clients", "must be at least 1"));
        }
        let config = Config {
            binds,
            ftp_port: s.parsed("ftp-port", 21)?,
            max_clients,
            // One address can never take every worker.
            max_per_ip: s.parsed("max-per-ip", max_clients.div_ceil(2))?,
            pasv_ports: s.string("pasv-ports").map(parse_port_range).transpose()?,
            pasv_address: s.parsed::<IpAddr>("pasv-address", IpAddr::from([0, 0, 0, 0])).map(|a| {
                if a.is_unspecified() {
                    None
                } else {
                    Some(a)
                }
            })?,
            idle_timeout: s.seconds("idle-timeout", 300.0)?,
            login_timeout: s.seconds("login-timeout", 60.0)?,
            first_command_timeout: s.seconds("first-command-timeout", 5.0)?,
            data_timeout: s.seconds("data-timeout", 60.0)?,
            allow_foreign_port: s.switch("allow-foreign-port")?,
            login_fail_delay: s.seconds("login-fail-delay", 1.0)?,
            max_login_fails: s.parsed("max-login-fails", 3)?,
            anonymous: s.switch("anonymous")?,
            log_level: s.parsed("log-level", log::LevelFilter::Info)?,
            enable: s.yes_no("enable", true)?,
            daemon: s.switch("daemon")?,
            pid_file: s.path("pid-file"),
            log_file: s.path("log-file"),
            xferlog: s.path("xferlog"),
            run_as_user: s.string("user").map(String::from),
            run_as_group: s.string("group").map(String::from),
            shutdown_grace: s.seconds("shutdown-grace", 10.0)?,
        };
        if config.run_as_group.is_some() && config.run_as_user.is_none() {
            return Err(ConfigError::new("group", "needs --user"));
        }
        for (key, value) in [
            ("idle-timeout", config.idle_timeout),
            ("login-timeout", config.login_timeout),
            ("first-command-timeout", config.first_command_timeout),
            ("data-timeout", config.data_timeout),
        ] {
            if value.is_zero() {
                return Err(ConfigError::new(key, "must be more than 0"));
            }
        }
        Ok(config)
    }
}

fn parse_port_range(text: &str) -> Result<(u16, u16)> {
    let bad = || ConfigError::new("pasv-ports", format!("'{text}' is not a range LO-HI of ports 1024-65535"));
    let (lo, hi) = text.split_once('-').ok_or_else(bad)?;
    let (lo, hi): (u16, u16) = (lo.trim().parse().map_err(|_| bad())?, hi.trim().parse().map_err(|_| bad())?);
    if lo < 1024 || lo > hi {
        return Err(bad());
    }
    Ok((lo, hi))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(args: &[&str]) -> Result<Settings> {
        let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        match parse_command_line(&args)? {
            Invocation::Run { settings, .. } => Ok(settings),
            _ => panic!("expected a run"),
        }
    }

    #[test]
    fn file_keys_and_flags_merge_with_flags_winning() {
        let mut settings = Settings::from_file_text("# c\nmax-clients=4\n bind = ::1 \nbind=127.0.0.1\n", "f").unwrap();
        assert_eq!(settings.strings("bind"), ["::1", "127.0.0.1"]);
        let options = options();
        let matches = options.parse(["--max-clients", "9"]).unwrap();
        settings.overlay(&matches);
        let config = Config::from_settings(&settings).unwrap();
        assert_eq!(config.max_clients, 9);
        assert_eq!(config.binds.len(), 2);
    }

    #[test]
    fn errors_name_the_offending_key() {
        let err = Config::from_settings(&run(&["--max-clients", "abc"]).unwrap()).unwrap_err();
        assert_eq!(err.key, "max-clients");
        let err = Settings::from_file_text("no-such-key = 1", "f").unwrap_err();
        assert_eq!(err.key, "no-such-key");
        let err = Config::from_settings(&run(&["--pasv-ports", "50-10"]).unwrap()).unwrap_err();
        assert_eq!(err.key, "pasv-ports");
    }

    #[test]
    fn defaults_are_the_documented_ones() {
        let config = Config::from_settings(&Settings::default()).unwrap();
        assert_eq!(config.max_clients, 16);
        assert_eq!(config.max_per_ip, 8);
        assert_eq!(config.first_command_timeout, Duration::from_secs(5));
        assert_eq!(config.ftp_port, 21);
        assert_eq!(config.idle_timeout, Duration::from_secs(300));
        assert_eq!(config.pasv_address, None);
    }

    #[test]
    fn help_lists_every_flag() {
        let help = help_text(&options());
        for flag in flag_groups().iter().flat_map(|(_, f)| f.iter()) {
            assert!(help.contains(&format!("--{}", flag.name)), "{} missing from --help", flag.name);
        }
    }
}
