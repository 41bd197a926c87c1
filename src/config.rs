//! The core daemon's settings ([`CORE_FLAGS`], [`DAEMON_FLAGS`]) and [`Config`], their validated form.
//! The machinery that reads settings is in settings.rs.

use std::net::IpAddr;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use crate::settings::{repeated, switch, value, ConfigError, Flag, Result, Settings};

pub const CORE_FLAGS: &[Flag] = &[
    repeated("bind", "ADDR", "address to listen on, IPv4 or IPv6; repeatable [0.0.0.0]"),
    value("ftp-port", "N", "plain FTP port; 0 disables plain FTP [21]"),
    value("storage", "KIND", "storage backend: local or hdfs [local]"),
    value("local-root", "DIR", "root directory of the local storage; user homes are below it"),
    value("auth", "KIND", "authenticator: users or krb5 [users]"),
    value("users-file", "FILE", "users file: name:crypt-hash:home:perms lines"),
    switch("anonymous", "allow anonymous read-only login through the users file's 'anonymous' entry"),
    value("max-clients", "N", "most sessions at once, each on a thread of its own [16]"),
    value("max-per-ip", "N", "most sessions from one address; 0 = no limit [half of --max-clients]"),
    value("pasv-ports", "LO-HI", "port range for passive data connections [the kernel's ephemeral range]"),
    value("pasv-address", "ADDR", "address advertised in PASV replies [the control connection's]"),
    repeated(
        "proxy-protocol-from",
        "ADDR/PREFIX",
        "balancers whose PROXY v1/v2 header names the client: required from them, refused from others; repeatable",
    ),
    value("idle-timeout", "SECS", "end sessions idle this long [300]"),
    value("login-timeout", "SECS", "end sessions not logged in within this time [60]"),
    value("first-command-timeout", "SECS", "end connections silent this long, or this slow in a TLS handshake [5]"),
    value("data-timeout", "SECS", "data connection set-up and stall limit [60]"),
    switch("allow-foreign-port", "allow PORT/EPRT to other hosts and privileged ports (FXP)"),
    value("login-fail-delay", "SECS", "delay before every failed-login reply [1]"),
    value("max-login-fails", "N", "failed logins before the connection is closed [3]"),
    value("log-level", "LEVEL", "error, warn, info, debug (protocol dialogue) or trace [info]"),
];

pub const DAEMON_FLAGS: &[Flag] = &[
    value("enable", "yes|no", "run the service at all; the shipped config says no until an operator says yes [yes]"),
    switch("daemon", "detach from the terminal; the starting process exits 0 once the daemon serves"),
    value("pid-file", "FILE", "write the daemon's pid here; refuse to start while a live process holds it"),
    value("log-file", "FILE", "log here instead of stderr; reopened on SIGHUP (log rotation)"),
    value("xferlog", "FILE", "transfer log in the wu-ftpd/vsftpd xferlog format; reopened on SIGHUP"),
    value("user", "NAME", "after binding the ports, run as this user (when started as root)"),
    value("group", "NAME", "with --user: run with this group [the user's primary group]"),
    value("shutdown-grace", "SECS", "on SIGTERM, let running transfers finish this long [10]"),
];

/// The core daemon's settings, validated.
#[derive(Debug, Clone)]
pub struct Config {
    pub binds: Vec<IpAddr>,
    pub ftp_port: u16,
    pub max_clients: usize,
    pub max_per_ip: usize,
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
            proxy_protocol_from: s
                .strings("proxy-protocol-from")
                .iter()
                .map(|n| n.parse().map_err(|e| ConfigError::new("proxy-protocol-from", format!("'{n}': {e}"))))
                .collect::<Result<_>>()?,
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

impl FromStr for Network {
    type Err = String;

    fn from_str(text: &str) -> std::result::Result<Network, String> {
        let (address, prefix) = text.split_once('/').map_or((text, None), |(a, p)| (a, Some(p)));
        let address: IpAddr = address.parse().map_err(|e| format!("{e}"))?;
        let address = address.to_canonical();
        let longest = if address.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => longest,
            Some(p) => p.parse().ok().filter(|p| *p <= longest).ok_or(format!("prefix is not 0-{longest}"))?,
        };
        Ok(Network { address, prefix })
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
        for bad in ["10.0.0.0/33", "::/129", "10.0.0/8", "10.0.0.0/x"] {
            let err = Config::from_settings(&run(&["--proxy-protocol-from", bad]).unwrap()).unwrap_err();
            assert_eq!(err.key, "proxy-protocol-from", "{bad}");
        }
    }
}
