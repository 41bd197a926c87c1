//! The local syslog (`--log-file syslog`, `--xferlog syslog`; vsftpd's syslog_enable, ProFTPD's
//! SyslogFacility): one datagram per record on the syslog socket, in the form glibc's syslog(3) sends
//! and rsyslog's imuxsock and journald read, `<PRI>hdfsftpd[PID]: message`. The daemon supplies the time.

use std::io;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::locks;

/// syslog(3)'s facilities by name (`man 3 syslog`), with their numbers.
const FACILITIES: &[(&str, u8)] = &[
    ("kern", 0),
    ("user", 1),
    ("mail", 2),
    ("daemon", 3),
    ("auth", 4),
    ("syslog", 5),
    ("lpr", 6),
    ("news", 7),
    ("uucp", 8),
    ("cron", 9),
    ("authpriv", 10),
    ("ftp", 11),
    ("local0", 16),
    ("local1", 17),
    ("local2", 18),
    ("local3", 19),
    ("local4", 20),
    ("local5", 21),
    ("local6", 22),
    ("local7", 23),
];

/// The facility named `name`, for `--syslog-facility`.
pub fn facility(name: &str) -> Result<u8, String> {
    FACILITIES.iter().find(|(known, _)| known.eq_ignore_ascii_case(name)).map(|&(_, number)| number).ok_or_else(|| {
        let names: Vec<&str> = FACILITIES.iter().map(|(known, _)| *known).collect();
        format!("'{name}' is not one of {}", names.join(", "))
    })
}

/// A record's severity (RFC 5424 numbers) from the log level.
pub fn severity(level: log::Level) -> u8 {
    match level {
        log::Level::Error => 3,
        log::Level::Warn => 4,
        log::Level::Info => 6,
        log::Level::Debug | log::Level::Trace => 7,
    }
}

pub struct Syslog {
    path: PathBuf,
    facility: u8,
    tag: String,
    /// Connected to `path`; connected again when the syslog daemon restarted under it.
    socket: Mutex<UnixDatagram>,
}

impl Syslog {
    pub fn connect(path: &Path, facility: u8) -> io::Result<Syslog> {
        let socket = connect(path)?;
        let tag = format!("hdfsftpd[{}]", std::process::id());
        Ok(Syslog { path: path.to_path_buf(), facility, tag, socket: Mutex::new(socket) })
    }

    /// Sends one record; a trailing newline is dropped (syslog records are lines).
    pub fn send(&self, severity: u8, message: &str) -> io::Result<()> {
        let datagram = format!("<{}>{}: {}", self.facility * 8 + severity, self.tag, message.trim_end_matches('\n'));
        let mut socket = locks::lock(&self.socket);
        match socket.send(datagram.as_bytes()) {
            Ok(_) => Ok(()),
            Err(_) => {
                *socket = connect(&self.path)?;
                socket.send(datagram.as_bytes()).map(drop)
            }
        }
    }
}

fn connect(path: &Path) -> io::Result<UnixDatagram> {
    let socket = UnixDatagram::unbound()?;
    socket.connect(path).map_err(|e| io::Error::new(e.kind(), format!("syslog socket {}: {e}", path.display())))?;
    Ok(socket)
}

/// The diagnostic log on syslog: env_logger decides what is logged (`--log-level`, `RUST_LOG`), this
/// sends it with the record's severity.
pub struct Logger {
    pub filter: env_logger::Logger,
    pub syslog: std::sync::Arc<Syslog>,
}

impl log::Log for Logger {
    fn enabled(&self, metadata: &log::Metadata) -> bool {
        self.filter.enabled(metadata)
    }

    fn log(&self, record: &log::Record) {
        if self.filter.matches(record) {
            // Nowhere left to report a failure to: the log is the report.
            let _ = self.syslog.send(severity(record.level()), &record.args().to_string());
        }
    }

    fn flush(&self) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_reach_the_socket_with_priority_and_tag() {
        let dir = std::env::temp_dir().join(format!("hdfsftpd-syslog-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("log");
        let listener = UnixDatagram::bind(&path).unwrap();
        let syslog = Syslog::connect(&path, facility("ftp").unwrap()).unwrap();
        syslog.send(severity(log::Level::Warn), "disk nearly full\n").unwrap();
        let mut buffer = [0; 256];
        let n = listener.recv(&mut buffer).unwrap();
        let expected = format!("<92>hdfsftpd[{}]: disk nearly full", std::process::id());
        assert_eq!(std::str::from_utf8(&buffer[..n]).unwrap(), expected);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn facility_names() {
        assert_eq!(facility("LOCAL3").unwrap(), 19);
        assert!(facility("ftpd").unwrap_err().starts_with("'ftpd' is not one of kern, "), "{:?}", facility("ftpd"));
    }
}
