//! The core daemon's settings ([`CORE_FLAGS`], [`DAEMON_FLAGS`]) and [`Config`], their validated form.
//! The machinery that reads settings is in settings.rs.

use std::fmt;
use std::net::{AddrParseError, IpAddr};
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use crate::name_rules::NamePatterns;
use crate::rate_limit::RateLimits;
use crate::settings::{
    from_str, optional, read_one, repeated, switch, value, Flag, Parse, Result, Setting, Settings, Value,
};

pub const BIND: Setting<Vec<IpAddr>> =
    repeated("bind", "ADDR", "address to listen on, IPv4 or IPv6; repeatable").default("0.0.0.0");
pub const FTP_PORT: Setting<u16> = value("ftp-port", "N", "21", "plain FTP port; 0 disables plain FTP");
pub const STORAGE: Setting<String> = value("storage", "KIND", "local", "storage backend: local or hdfs");
pub const LOCAL_ROOT: Setting<Option<PathBuf>> =
    optional("local-root", "DIR", "root directory of the local storage; user homes are below it");
pub const AUTH: Setting<String> = value("auth", "KIND", "users", "authenticator: users or krb5");
pub const USERS_FILE: Setting<Option<PathBuf>> =
    optional("users-file", "FILE", "users file: name:crypt-hash:home:perms lines");
pub const ANONYMOUS: Setting<bool> =
    switch("anonymous", "allow anonymous read-only login through the users file's 'anonymous' entry");
/// The storage sizes its buffers for it too.
pub const MAX_CLIENTS: Setting<usize> =
    value("max-clients", "N", "16", "most sessions at once; also the worker pool size");
pub const MAX_PER_IP: Setting<Option<usize>> =
    optional("max-per-ip", "N", "most sessions from one address; 0 = no limit").shown_as("half of --max-clients");
pub const MAX_PER_USER: Setting<usize> =
    value("max-per-user", "N", "0", "most sessions one user may have logged in; 0 = no limit");
pub const HIDE_NAME: Setting<Vec<String>> =
    repeated("hide-name", "PATTERN", "leave names matching this shell pattern out of listings; repeatable");
pub const DENY_NAME: Setting<Vec<String>> = repeated(
    "deny-name",
    "PATTERN",
    "hide names matching this shell pattern and refuse them (550) in every command; repeatable",
);
pub const PASV_PORTS: Setting<Option<String>> =
    optional("pasv-ports", "LO-HI", "port range for passive data connections").shown_as("the kernel's ephemeral range");
pub const PASV_ADDRESS: Setting<Option<IpAddr>> =
    optional("pasv-address", "ADDR", "address advertised in PASV replies").shown_as("the control connection's");
pub const PROXY_PROTOCOL_FROM: Setting<Vec<Network>> = repeated(
    "proxy-protocol-from",
    "ADDR/PREFIX",
    "balancers whose PROXY v1/v2 header names the client: required from them, refused from others; repeatable",
);
pub const IDLE_TIMEOUT: Setting<Duration> = value("idle-timeout", "SECS", "300", "end sessions idle this long");
pub const LOGIN_TIMEOUT: Setting<Duration> =
    value("login-timeout", "SECS", "60", "end sessions not logged in within this time");
pub const FIRST_COMMAND_TIMEOUT: Setting<Duration> =
    value("first-command-timeout", "SECS", "5", "end connections silent this long, or this slow in a TLS handshake");
pub const DATA_TIMEOUT: Setting<Duration> =
    value("data-timeout", "SECS", "60", "data connection set-up and stall limit");
pub const ALLOW_FOREIGN_PORT: Setting<bool> =
    switch("allow-foreign-port", "allow PORT/EPRT to other hosts and privileged ports (FXP)");
pub const LOGIN_FAIL_DELAY: Setting<Duration> =
    value("login-fail-delay", "SECS", "1", "delay before every failed-login reply");
pub const MAX_LOGIN_FAILS: Setting<u32> =
    value("max-login-fails", "N", "3", "failed logins before the connection is closed");
pub const LOG_LEVEL: Setting<log::LevelFilter> =
    value("log-level", "LEVEL", "info", "error, warn, info, debug (protocol dialogue) or trace");

pub const CORE_FLAGS: &[Flag] = &[
    BIND.flag(),
    FTP_PORT.flag(),
    STORAGE.flag(),
    LOCAL_ROOT.flag(),
    AUTH.flag(),
    USERS_FILE.flag(),
    ANONYMOUS.flag(),
    MAX_CLIENTS.flag(),
    MAX_PER_IP.flag(),
    MAX_PER_USER.flag(),
    HIDE_NAME.flag(),
    DENY_NAME.flag(),
    PASV_PORTS.flag(),
    PASV_ADDRESS.flag(),
    PROXY_PROTOCOL_FROM.flag(),
    IDLE_TIMEOUT.flag(),
    LOGIN_TIMEOUT.flag(),
    FIRST_COMMAND_TIMEOUT.flag(),
    DATA_TIMEOUT.flag(),
    ALLOW_FOREIGN_PORT.flag(),
    LOGIN_FAIL_DELAY.flag(),
    MAX_LOGIN_FAILS.flag(),
    LOG_LEVEL.flag(),
];

pub const ENABLE: Setting<bool> =
    value("enable", "yes|no", "yes", "run the service at all; the shipped config says no until an operator says yes");
pub const DAEMON: Setting<bool> =
    switch("daemon", "detach from the terminal; the starting process exits 0 once the daemon serves");
pub const PID_FILE: Setting<Option<PathBuf>> =
    optional("pid-file", "FILE", "write the daemon's pid here; refuse to start while a live process holds it");
pub const LOG_FILE: Setting<Option<PathBuf>> = optional(
    "log-file",
    "FILE",
    "log here instead of stderr, or 'syslog'; a file is reopened on SIGHUP (log rotation)",
);
pub const XFERLOG: Setting<Option<PathBuf>> = optional(
    "xferlog",
    "FILE",
    "transfer log in the wu-ftpd/vsftpd xferlog format, or 'syslog'; a file is reopened on SIGHUP",
);
pub const SYSLOG_FACILITY: Setting<String> =
    value("syslog-facility", "NAME", "ftp", "facility of what goes to syslog: ftp, daemon, local0 ... local7, ...");
pub const SYSLOG_SOCKET: Setting<PathBuf> = value("syslog-socket", "PATH", "/dev/log", "the local syslog socket");
pub const USER: Setting<Option<String>> =
    optional("user", "NAME", "after binding the ports, run as this user (when started as root)");
pub const GROUP: Setting<Option<String>> =
    optional("group", "NAME", "with --user: run with this group").shown_as("the user's primary group");
pub const SHUTDOWN_GRACE: Setting<Duration> =
    value("shutdown-grace", "SECS", "10", "on SIGTERM, let running transfers finish this long");
pub const STATUS_SOCKET: Setting<Option<PathBuf>> =
    optional("status-socket", "PATH", "UNIX socket (mode 0600) that --who reads; 'none' disables")
        .shown_as("--pid-file's path + .sock");

pub const DAEMON_FLAGS: &[Flag] = &[
    ENABLE.flag(),
    DAEMON.flag(),
    PID_FILE.flag(),
    LOG_FILE.flag(),
    XFERLOG.flag(),
    SYSLOG_FACILITY.flag(),
    SYSLOG_SOCKET.flag(),
    USER.flag(),
    GROUP.flag(),
    SHUTDOWN_GRACE.flag(),
    STATUS_SOCKET.flag(),
];

/// The core daemon's settings, validated.
#[derive(Debug, Clone)]
pub struct Config {
    pub binds: Vec<IpAddr>,
    pub ftp_port: u16,
    pub max_clients: usize,
    pub max_per_ip: usize,
    pub max_per_user: usize,
    /// Names left out of listings (`--hide-name`).
    pub hide_names: NamePatterns,
    /// Names left out of listings and refused (`--deny-name`).
    pub deny_names: NamePatterns,
    pub pasv_ports: Option<(u16, u16)>,
    pub pasv_address: Option<IpAddr>,
    /// `--proxy-protocol-from`: the balancers whose PROXY header names the client.
    pub proxy_protocol_from: Vec<Network>,
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
    pub syslog_facility: u8,
    pub syslog_socket: PathBuf,
    pub run_as_user: Option<String>,
    pub run_as_group: Option<String>,
    pub shutdown_grace: Duration,
    /// Where `--who` asks the daemon.
    pub status_socket: Option<PathBuf>,
    pub rates: RateLimits,
}

impl Config {
    pub fn from_settings(s: &Settings) -> Result<Config> {
        let max_clients = s.get(&MAX_CLIENTS)?;
        if max_clients == 0 {
            return Err(MAX_CLIENTS.error("must be at least 1"));
        }
        let pid_file = s.get(&PID_FILE)?;
        let config = Config {
            binds: s.get(&BIND)?,
            ftp_port: s.get(&FTP_PORT)?,
            max_clients,
            // One address can never take every worker.
            max_per_ip: s.get(&MAX_PER_IP)?.unwrap_or(max_clients.div_ceil(2)),
            max_per_user: s.get(&MAX_PER_USER)?,
            hide_names: NamePatterns::parse(&HIDE_NAME, &s.get(&HIDE_NAME)?)?,
            deny_names: NamePatterns::parse(&DENY_NAME, &s.get(&DENY_NAME)?)?,
            pasv_ports: s.get(&PASV_PORTS)?.map(|text| parse_port_range(&text)).transpose()?,
            pasv_address: s.get(&PASV_ADDRESS)?.filter(|a| !a.is_unspecified()),
            proxy_protocol_from: s.get(&PROXY_PROTOCOL_FROM)?,
            idle_timeout: s.get(&IDLE_TIMEOUT)?,
            login_timeout: s.get(&LOGIN_TIMEOUT)?,
            first_command_timeout: s.get(&FIRST_COMMAND_TIMEOUT)?,
            data_timeout: s.get(&DATA_TIMEOUT)?,
            allow_foreign_port: s.get(&ALLOW_FOREIGN_PORT)?,
            login_fail_delay: s.get(&LOGIN_FAIL_DELAY)?,
            max_login_fails: s.get(&MAX_LOGIN_FAILS)?,
            anonymous: s.get(&ANONYMOUS)?,
            log_level: s.get(&LOG_LEVEL)?,
            enable: s.get(&ENABLE)?,
            daemon: s.get(&DAEMON)?,
            log_file: s.get(&LOG_FILE)?,
            xferlog: s.get(&XFERLOG)?,
            syslog_facility: crate::syslog::facility(&s.get(&SYSLOG_FACILITY)?)
                .map_err(|message| SYSLOG_FACILITY.error(message))?,
            syslog_socket: s.get(&SYSLOG_SOCKET)?,
            run_as_user: s.get(&USER)?,
            run_as_group: s.get(&GROUP)?,
            shutdown_grace: s.get(&SHUTDOWN_GRACE)?,
            rates: RateLimits::from_settings(s)?,
            status_socket: match s.get(&STATUS_SOCKET)? {
                Some(path) if path.as_os_str() == "none" => None,
                Some(path) => Some(path),
                None => pid_file.as_ref().map(|pid| PathBuf::from(format!("{}.sock", pid.display()))),
            },
            pid_file,
        };
        if config.run_as_group.is_some() && config.run_as_user.is_none() {
            return Err(GROUP.error("needs --user"));
        }
        for (setting, value) in [
            (IDLE_TIMEOUT, config.idle_timeout),
            (LOGIN_TIMEOUT, config.login_timeout),
            (FIRST_COMMAND_TIMEOUT, config.first_command_timeout),
            (DATA_TIMEOUT, config.data_timeout),
        ] {
            if value.is_zero() {
                return Err(setting.error("must be more than 0"));
            }
        }
        Ok(config)
    }

    /// True when `peer` is a balancer that must start with a PROXY header.
    pub fn is_proxy(&self, peer: IpAddr) -> bool {
        self.proxy_protocol_from.iter().any(|network| network.contains(peer))
    }
}

/// An address range, `ADDR/PREFIX` (a bare address is the range of that one address).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Network {
    address: IpAddr,
    prefix: u8,
}

impl Network {
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.address, ip.to_canonical()) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX.checked_shl(32 - u32::from(self.prefix)).unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX.checked_shl(128 - u32::from(self.prefix)).unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

/// Why a text is not an `ADDRESS[/PREFIX]` network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NetworkError {
    Address(AddrParseError),
    /// The prefix is not a number up to the address's length in bits (`longest`).
    Prefix {
        longest: u8,
    },
}

impl fmt::Display for NetworkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NetworkError::Address(e) => write!(f, "{e}"),
            NetworkError::Prefix { longest } => write!(f, "prefix is not 0-{longest}"),
        }
    }
}

impl std::error::Error for NetworkError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            NetworkError::Address(e) => Some(e),
            NetworkError::Prefix { .. } => None,
        }
    }
}

impl FromStr for Network {
    type Err = NetworkError;

    fn from_str(text: &str) -> std::result::Result<Network, NetworkError> {
        let (address, prefix) = text.split_once('/').map_or((text, None), |(a, p)| (a, Some(p)));
        let address: IpAddr = address.parse().map_err(NetworkError::Address)?;
        let address = address.to_canonical();
        let longest = if address.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => longest,
            Some(p) => p.parse().ok().filter(|p| *p <= longest).ok_or(NetworkError::Prefix { longest })?,
        };
        Ok(Network { address, prefix })
    }
}

impl Parse for Network {
    fn parse(text: &str) -> std::result::Result<Self, String> {
        from_str(text)
    }
}

impl Parse for log::LevelFilter {
    fn parse(text: &str) -> std::result::Result<Self, String> {
        from_str(text)
    }
}

impl Value for log::LevelFilter {
    fn read(flag: &Flag, given: &[String]) -> Result<Self> {
        read_one(flag, given)
    }
}

fn parse_port_range(text: &str) -> Result<(u16, u16)> {
    let bad = || PASV_PORTS.error(format!("'{text}' is not a range LO-HI of ports 1024-65535"));
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
    use crate::settings::{parse_command_line, FlagGroup, Invocation};

    const GROUPS: &[FlagGroup] = &[("Core", CORE_FLAGS), ("Daemon", DAEMON_FLAGS)];

    fn run(args: &[&str]) -> Result<Settings> {
        let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        match parse_command_line(&args, GROUPS)? {
            Invocation::Run { settings, .. } => Ok(settings),
            _ => panic!("expected a run"),
        }
    }

    #[test]
    fn file_keys_and_flags_merge_with_flags_winning() {
        let dir = std::env::temp_dir().join(format!("hdfsftpd-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("test.conf");
        std::fs::write(&file, "# c\nmax-clients=4\n bind = ::1 \nbind=127.0.0.1\n").unwrap();
        let config = Config::from_settings(&run(&["--config", file.to_str().unwrap(), "--max-clients", "9"]).unwrap());
        std::fs::remove_dir_all(&dir).unwrap();
        let config = config.unwrap();
        assert_eq!(config.max_clients, 9);
        assert_eq!(config.binds.len(), 2);
    }

    #[test]
    fn errors_name_the_offending_key() {
        let err = Config::from_settings(&run(&["--max-clients", "abc"]).unwrap()).unwrap_err();
        assert_eq!(err.key, "max-clients");
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
    fn networks_contain_their_addresses() {
        let net: Network = "10.1.0.0/16".parse().unwrap();
        assert!(net.contains("10.1.255.3".parse().unwrap()));
        assert!(net.contains("::ffff:10.1.0.1".parse().unwrap()));
        assert!(!net.contains("10.2.0.1".parse().unwrap()));
        assert!(!net.contains("::1".parse().unwrap()));
        let one: Network = "127.0.0.10".parse().unwrap();
        assert!(one.contains("127.0.0.10".parse().unwrap()) && !one.contains("127.0.0.11".parse().unwrap()));
        let all: Network = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains("192.0.2.1".parse().unwrap()));
        let v6: Network = "2001:db8::/32".parse().unwrap();
        assert!(v6.contains("2001:db8:1::5".parse().unwrap()) && !v6.contains("2001:db9::5".parse().unwrap()));
        assert_eq!("10.0.0.0/33".parse::<Network>(), Err(NetworkError::Prefix { longest: 32 }));
        assert!(matches!("10.0.0/8".parse::<Network>(), Err(NetworkError::Address(_))));
        for bad in ["10.0.0.0/33", "::/129", "10.0.0/8", "10.0.0.0/x"] {
            let err = Config::from_settings(&run(&["--proxy-protocol-from", bad]).unwrap()).unwrap_err();
            assert_eq!(err.key, "proxy-protocol-from", "{bad}");
        }
    }
}
