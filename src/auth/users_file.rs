//! The users file: `name:crypt-hash:home:perms` lines, `#` comments.
//!
//! Hashes are crypt(3) strings (`openssl passwd -6` makes `$6$` SHA-512 ones) checked by the system's
//! libcrypt. `home` is a storage path the user is confined to, or empty for the backend's default home
//! (`/<name>` on local disk, `--hdfs-home` in HDFS); `perms` is `r` (read-only) or `rw`.
//! The entry named `anonymous`, with an empty hash, admits `anonymous`/`ftp` read-only with any
//! password, but only when the server runs with `--anonymous`. `ftp` is the anonymous login's other
//! name (as in vsftpd and RFC 1635), so an entry named `ftp` could never log in: it is refused.
//! A file without entries is refused, at start and on SIGHUP, unless it has a `# no users` line.

use std::fmt;
use std::io;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::RwLock;

use super::{AuthError, Authenticator, Identity, ReloadError};
use crate::locks;

const ANONYMOUS: &str = "anonymous";
/// The anonymous login's other name.
const ANONYMOUS_ALIAS: &str = "ftp";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserEntry {
    pub name: String,
    pub hash: String,
    /// `None`: the storage backend's default home for the user.
    pub home: Option<String>,
    pub writable: bool,
}

/// What is wrong with one line of a users file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LineFault {
    Fields,
    Perms(String),
    EmptyName,
    /// An account named `ftp`, the anonymous login's other name.
    FtpAccount,
    /// An empty hash on an entry other than `anonymous`.
    EmptyHash,
}

/// Why a users file's text is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Invalid {
    /// Line `number` (from 1) is not an entry.
    Line { number: usize, fault: LineFault },
    /// Not one entry, and no [`NO_USERS_LINE`].
    NoUsers,
}

impl fmt::Display for Invalid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Invalid::Line { number, fault } = self else {
            return write!(
                f,
                "no users in it; refused, as it would lock everyone out (a line '{NO_USERS_LINE}' makes it deliberate)"
            );
        };
        write!(f, "line {number}: ")?;
        match fault {
            LineFault::Fields => write!(f, "expected name:crypt-hash:home:perms"),
            LineFault::Perms(perms) => write!(f, "perms must be r or rw, not '{perms}'"),
            LineFault::EmptyName => write!(f, "the name may not be empty"),
            LineFault::FtpAccount => write!(
                f,
                "'{ANONYMOUS_ALIAS}' is the anonymous login's other name and cannot be an account; \
                 rename it (anonymous access is the '{ANONYMOUS}' entry)"
            ),
            LineFault::EmptyHash => write!(f, "only the anonymous entry may have an empty hash"),
        }
    }
}

impl std::error::Error for Invalid {}

/// A users file the server cannot use: at start it stops the server, on SIGHUP the previous one stays.
#[derive(Debug)]
pub enum UsersFileError {
    Unreadable { path: PathBuf, cause: io::Error },
    Invalid { path: PathBuf, cause: Invalid },
}

impl fmt::Display for UsersFileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UsersFileError::Unreadable { path, cause } => write!(f, "users file {}: {cause}", path.display()),
            UsersFileError::Invalid { path, cause } => write!(f, "users file {}: {cause}", path.display()),
        }
    }
}

impl std::error::Error for UsersFileError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            UsersFileError::Unreadable { cause, .. } => Some(cause),
            UsersFileError::Invalid { cause, .. } => Some(cause),
        }
    }
}

/// Parses a users file; errors name the line.
pub fn parse(text: &str) -> Result<Vec<UserEntry>, Invalid> {
    let mut users = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let entry = parse_entry(line).map_err(|fault| Invalid::Line { number: index + 1, fault })?;
        users.push(entry);
    }
    Ok(users)
}

fn parse_entry(line: &str) -> Result<UserEntry, LineFault> {
    let fields: Vec<&str> = line.split(':').collect();
    let [name, hash, home, perms] = fields[..] else {
        return Err(LineFault::Fields);
    };
    let writable = match perms {
        "r" => false,
        "rw" => true,
        other => return Err(LineFault::Perms(other.to_string())),
    };
    if name.is_empty() {
        return Err(LineFault::EmptyName);
    }
    if name == ANONYMOUS_ALIAS {
        return Err(LineFault::FtpAccount);
    }
    if hash.is_empty() && name != ANONYMOUS {
        return Err(LineFault::EmptyHash);
    }
    let home = (!home.is_empty()).then(|| home.to_string());
    Ok(UserEntry { name: name.into(), hash: hash.into(), home, writable })
}

pub struct UsersFile {
    path: PathBuf,
    users: RwLock<Vec<UserEntry>>,
    anonymous_enabled: bool,
}

impl UsersFile {
    pub fn load(path: &Path, anonymous_enabled: bool) -> Result<UsersFile, UsersFileError> {
        let users = read(path)?;
        Ok(UsersFile { path: path.to_path_buf(), users: RwLock::new(users), anonymous_enabled })
    }

    fn find(&self, name: &str) -> Option<UserEntry> {
        let users = locks::read(&self.users);
        users.iter().find(|u| u.name == name).cloned()
    }
}

/// The line that makes a users file without entries deliberate.
pub const NO_USERS_LINE: &str = "# no users";

fn read(path: &Path) -> Result<Vec<UserEntry>, UsersFileError> {
    let text = std::fs::read_to_string(path)
        .map_err(|cause| UsersFileError::Unreadable { path: path.to_path_buf(), cause })?;
    let checked = parse(&text).and_then(|users| check_not_empty(&users, &text).map(|()| users));
    checked.map_err(|cause| UsersFileError::Invalid { path: path.to_path_buf(), cause })
}

/// A file without a single entry is what a failed deploy (`> users`) or a half-written file leaves, and
/// it would lock everyone out: it is refused unless a line says that no users is meant.
fn check_not_empty(users: &[UserEntry], text: &str) -> Result<(), Invalid> {
    if !users.is_empty() || text.lines().any(|line| line.trim().eq_ignore_ascii_case(NO_USERS_LINE)) {
        return Ok(());
    }
    Err(Invalid::NoUsers)
}

/// Hash checked for unknown users, so they cost what known ones do.
const DUMMY_HASH: &str =
    "$6$saltsalt$TVLlQcbpFVof5W3Yz4DTP6gRstiNuHwwTt6GLc1E5n0U0aDehy0S5knV8wiOQSpT0Y77vwPZN.Pq.H91p5hVO1";

impl Authenticator for UsersFile {
    fn authenticate(&self, user: &str, password: &str, _peer: IpAddr) -> Result<Identity, AuthError> {
        // SECURITY: anonymous only with --anonymous and an `anonymous` entry, always read-only.
        let is_anonymous = user == ANONYMOUS || user == ANONYMOUS_ALIAS;
        if is_anonymous {
            let entry = self
                .find(ANONYMOUS)
                .filter(|_| self.anonymous_enabled)
                .ok_or_else(|| AuthError::Denied("anonymous login is disabled".into()))?;
            let user = ANONYMOUS.into();
            return Ok(Identity { user, home: entry.home, writable: false, anonymous: true, credentials: None });
        }
        let Some(entry) = self.find(user) else {
            // SECURITY: unknown users cost what known ones do.
            let _ = hdfsftpd_ffi::crypt::verify(password, DUMMY_HASH);
            return Err(AuthError::Denied("unknown user".into()));
        };
        match hdfsftpd_ffi::crypt::verify(password, &entry.hash) {
            Ok(true) => {
                let (user, home, writable) = (entry.name, entry.home, entry.writable);
                Ok(Identity { user, home, writable, anonymous: false, credentials: None })
            }
            Ok(false) => Err(AuthError::Denied("wrong password".into())),
            Err(e) => Err(AuthError::Denied(format!("unusable password hash in users file: {e}"))),
        }
    }

    fn reload(&self) -> Result<(), ReloadError> {
        let users = read(&self.path)?;
        *locks::write(&self.users) = users;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_entries_and_reports_bad_lines() {
        let users = parse("# users\nalice:$6$x$y:/alice:rw\nanonymous::/pub:r\nhdfs:$6$x$y::rw\n").unwrap();
        assert_eq!(users.len(), 3);
        assert_eq!(users[0].home.as_deref(), Some("/alice"));
        assert_eq!(users[2].home, None);
        assert!(users[0].writable && !users[1].writable);
        let at_line_1 = |fault| Err(Invalid::Line { number: 1, fault });
        assert_eq!(parse("bob:$6$x$y:/bob:rwx"), at_line_1(LineFault::Perms("rwx".into())));
        assert_eq!(parse("bob::/bob:r"), at_line_1(LineFault::EmptyHash));
        assert_eq!(parse("bob:/bob:r"), at_line_1(LineFault::Fields));
        assert_eq!(parse(":$6$x$y:/bob:r"), at_line_1(LineFault::EmptyName));
        assert_eq!(parse("bob:/bob:r").unwrap_err().to_string(), "line 1: expected name:crypt-hash:home:perms");
    }

    #[test]
    fn a_file_without_users_is_refused_unless_it_says_so() {
        for text in ["", "\n\n", "# hdfsftpd users\n", "# no users yet\n"] {
            assert_eq!(check_not_empty(&parse(text).unwrap(), text), Err(Invalid::NoUsers), "{text:?}");
        }
        for text in ["# no users\n", "# maintenance\n  # No Users  \n"] {
            assert_eq!(check_not_empty(&parse(text).unwrap(), text), Ok(()), "{text:?}");
        }
        let one = "alice:$6$x$y:/alice:rw\n";
        assert_eq!(check_not_empty(&parse(one).unwrap(), one), Ok(()));
    }

    #[test]
    fn anonymous_logins_are_marked_and_read_only() {
        let path = std::env::temp_dir().join(format!("hdfsftpd-users-{}", std::process::id()));
        std::fs::write(&path, "anonymous::/pub:rw\n").unwrap();
        let users = UsersFile::load(&path, true);
        std::fs::remove_file(&path).unwrap();
        let identity = users.unwrap().authenticate("ftp", "guest@", IpAddr::from([127, 0, 0, 1])).unwrap();
        assert!(identity.anonymous && !identity.writable && identity.user == ANONYMOUS);
    }

    #[test]
    fn an_entry_named_ftp_is_refused_because_ftp_means_anonymous() {
        let refused = parse("alice:$6$x$y:/alice:rw\nftp:$6$x$y:/ftp:rw\n").unwrap_err();
        assert_eq!(refused, Invalid::Line { number: 2, fault: LineFault::FtpAccount });
        assert!(refused.to_string().contains("line 2: 'ftp' is the anonymous login's other name"), "{refused}");
    }
}
