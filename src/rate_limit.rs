//! Transfer rate limits (vsftpd's local_max_rate, ProFTPD's TransferRate, Pure-FTPd's -t/-T): a default
//! for every user and a value per user, each for downloads and uploads, in bytes per second.

use std::collections::HashMap;

use crate::settings::{repeated, value, ConfigError, Flag, Setting, Settings};

pub const MAX_DOWNLOAD_RATE: Setting<String> = value(
    "max-download-rate",
    "RATE",
    "0",
    "most bytes/s one download may move; K, M, G suffixes (1024-based); 0 = no limit",
);
pub const MAX_UPLOAD_RATE: Setting<String> =
    value("max-upload-rate", "RATE", "0", "most bytes/s one upload may move; K, M, G suffixes; 0 = no limit");
pub const USER_RATE: Setting<Vec<String>> = repeated(
    "user-rate",
    "USER:DOWN:UP",
    "this user's download and upload limits instead of the defaults above (0 = no limit); repeatable",
);
pub const FLAGS: &[Flag] = &[MAX_DOWNLOAD_RATE.flag(), MAX_UPLOAD_RATE.flag(), USER_RATE.flag()];

/// Which way a transfer goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Download,
    Upload,
}

/// A limit per direction; `None` is no limit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Pair {
    download: Option<u64>,
    upload: Option<u64>,
}

impl Pair {
    fn get(self, direction: Direction) -> Option<u64> {
        match direction {
            Direction::Download => self.download,
            Direction::Upload => self.upload,
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct RateLimits {
    default: Pair,
    per_user: HashMap<String, Pair>,
}

impl RateLimits {
    pub fn from_settings(s: &Settings) -> Result<RateLimits, ConfigError> {
        let rate = |setting: &Setting<String>| parse_rate(setting.flag(), &s.get(setting)?);
        let default = Pair { download: rate(&MAX_DOWNLOAD_RATE)?, upload: rate(&MAX_UPLOAD_RATE)? };
        let mut per_user = HashMap::new();
        for entry in s.get(&USER_RATE)? {
            let [user, down, up] = entry.splitn(3, ':').collect::<Vec<_>>()[..] else {
                return Err(USER_RATE.error(format!("'{entry}': not USER:DOWN:UP")));
            };
            if user.is_empty() {
                return Err(USER_RATE.error(format!("'{entry}': no user name")));
            }
            let pair =
                Pair { download: parse_rate(USER_RATE.flag(), down)?, upload: parse_rate(USER_RATE.flag(), up)? };
            per_user.insert(user.to_string(), pair);
        }
        Ok(RateLimits { default, per_user })
    }

    /// The limit of `user`'s transfers in `direction`: theirs when `--user-rate` names them.
    pub fn of(&self, user: &str, direction: Direction) -> Option<u64> {
        self.per_user.get(user).copied().unwrap_or(self.default).get(direction)
    }
}

/// `512`, `64K`, `10M`, `1G` (1024-based) bytes per second; `0` is no limit.
fn parse_rate(setting: Flag, text: &str) -> Result<Option<u64>, ConfigError> {
    let refuse = || setting.error(format!("'{text}': a rate is bytes per second, e.g. 500K or 10M"));
    let (digits, scale) = match text.trim().to_ascii_uppercase().chars().last() {
        Some('K') => (&text.trim()[..text.trim().len() - 1], 1u64 << 10),
        Some('M') => (&text.trim()[..text.trim().len() - 1], 1 << 20),
        Some('G') => (&text.trim()[..text.trim().len() - 1], 1 << 30),
        _ => (text.trim(), 1),
    };
    let number: u64 = digits.parse().map_err(|_| refuse())?;
    let bytes = number.checked_mul(scale).ok_or_else(refuse)?;
    Ok((bytes > 0).then_some(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_with_suffixes() {
        assert_eq!(parse_rate(MAX_UPLOAD_RATE.flag(), "512").unwrap(), Some(512));
        assert_eq!(parse_rate(MAX_UPLOAD_RATE.flag(), "64k").unwrap(), Some(64 << 10));
        assert_eq!(parse_rate(MAX_UPLOAD_RATE.flag(), "10M").unwrap(), Some(10 << 20));
        assert_eq!(parse_rate(MAX_UPLOAD_RATE.flag(), "2G").unwrap(), Some(2 << 30));
        assert_eq!(parse_rate(MAX_UPLOAD_RATE.flag(), "0").unwrap(), None);
        for bad in ["", "M", "1.5M", "-1", "10MB", "99999999999G"] {
            assert_eq!(parse_rate(MAX_UPLOAD_RATE.flag(), bad).unwrap_err().key, "max-upload-rate", "{bad}");
        }
    }

    #[test]
    fn a_user_rate_replaces_both_defaults() {
        let limits = RateLimits {
            default: Pair { download: Some(100), upload: None },
            per_user: [("alice".to_string(), Pair { download: None, upload: Some(5) })].into(),
        };
        assert_eq!(limits.of("bob", Direction::Download), Some(100));
        assert_eq!(limits.of("bob", Direction::Upload), None);
        assert_eq!(limits.of("alice", Direction::Download), None);
        assert_eq!(limits.of("alice", Direction::Upload), Some(5));
    }
}
