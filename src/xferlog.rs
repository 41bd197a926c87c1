//! The transfer log in the xferlog format wu-ftpd and vsftpd write, so existing analysers read it:
//!
//! `current-time transfer-time remote-host file-size filename transfer-type special-action-flag
//!  direction access-mode username service-name authentication-method authenticated-user-id
//!  completion-status`
//!
//! e.g. `Sat Nov 21 05:34:58 2026 1 127.0.0.1 100000 /f.bin b _ o r alice ftp 0 * c`.
//! Times are UTC; blanks in file names become `_` so the fields stay separable.

use std::net::IpAddr;
use std::time::{Duration, SystemTime};

use crate::listing;
use crate::logfile::LogFile;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Incoming,
    Outgoing,
}

pub struct Transfer<'a> {
    pub finished: SystemTime,
    pub duration: Duration,
    pub peer: IpAddr,
    pub bytes: u64,
    pub path: &'a str,
    pub ascii: bool,
    pub direction: Direction,
    pub anonymous: bool,
    pub user: &'a str,
    pub complete: bool,
}

pub fn format(t: &Transfer) -> String {
    let filename: String = t.path.chars().map(|c| if c.is_whitespace() { '_' } else { c }).collect();
    format!(
        "{} {} {} {} {} {} _ {} {} {} ftp 0 * {}\n",
        listing::ctime(t.finished),
        t.duration.as_secs_f64().round().max(1.0) as u64,
        t.peer,
        t.bytes,
        filename,
        if t.ascii { 'a' } else { 'b' },
        if t.direction == Direction::Incoming { 'i' } else { 'o' },
        if t.anonymous { 'a' } else { 'r' },
        t.user,
        if t.complete { 'c' } else { 'i' },
    )
}

pub fn write(log: &LogFile, transfer: &Transfer) {
    if let Err(e) = log.write_record(format(transfer).as_bytes()) {
        log::error!("cannot write the transfer log {}: {e}", log.describe());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn standard_field_layout() {
        let line = format(&Transfer {
            finished: listing::parse_timestamp("20261121053458").unwrap(),
            duration: Duration::from_millis(200),
            peer: "127.0.0.1".parse().unwrap(),
            bytes: 100000,
            path: "/dir/a file.bin",
            ascii: false,
            direction: Direction::Outgoing,
            anonymous: false,
            user: "alice",
            complete: true,
        });
        assert_eq!(line, "Sat Nov 21 05:34:58 2026 1 127.0.0.1 100000 /dir/a_file.bin b _ o r alice ftp 0 * c\n");
        assert_eq!(line.split_whitespace().count(), 18);
    }
}
