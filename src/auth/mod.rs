//! The authenticator seam: checks a user name and password and says who the session acts as.

#[cfg(feature = "krb5")]
pub mod gssapi;
#[cfg(feature = "krb5")]
pub mod krb5;
pub mod lockout;
#[cfg(any(test, feature = "fuzzing"))]
pub mod memory;
pub mod users_file;

use std::fmt;
use std::net::IpAddr;
use std::path::Path;
use std::time::SystemTime;

use crate::config::{ANONYMOUS, AUTH, USERS_FILE};
use crate::settings::{ConfigError, Settings};

/// Credentials a session holds while it lives, for the storage to act as its user (a Kerberos ticket
/// cache, say). Dropping them ends them (the ticket cache is destroyed).
pub trait SessionCredentials: Send {
    /// The file credential cache the storage should use, if these are Kerberos credentials.
    fn ticket_cache(&self) -> Option<&Path>;
    /// When these credentials stop working (a Kerberos TGT's end time); `None`: they do not expire.
    fn expires(&self) -> Option<SystemTime> {
        None
    }
}

/// Who a logged-in session is.
pub struct Identity {
    /// The FTP user name, also the storage user the session acts as.
    pub user: String,
    /// The user's home in storage terms (e.g. `/alice` under the local root, `/user/alice` in HDFS);
    /// the session is confined to it. `None`: the backend's default home for `user` (`/<user>` on local
    /// disk, `--hdfs-home` in HDFS).
    pub home: Option<String>,
    pub writable: bool,
    /// An anonymous login (the xferlog says so), not an account.
    pub anonymous: bool,
    pub credentials: Option<Box<dyn SessionCredentials>>,
}

impl fmt::Debug for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Identity")
            .field("user", &self.user)
            .field("home", &self.home)
            .field("writable", &self.writable)
            .field("anonymous", &self.anonymous)
            .field("credentials", &self.credentials.as_ref().map(|c| c.ticket_cache().map(Path::to_path_buf)))
            .finish()
    }
}

/// Why a login did not succeed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthError {
    /// Wrong user or password, or the account may not log in: the client gets 530.
    Denied(String),
    /// The authentication service could not answer (KDC down, users file unreadable): 421.
    // Only Kerberos reports it today; the session's 421 stays part of the seam without it.
    #[cfg_attr(not(feature = "krb5"), allow(dead_code))]
    Unavailable(String),
}

impl fmt::Display for AuthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AuthError::Denied(reason) => write!(f, "denied: {reason}"),
            AuthError::Unavailable(reason) => write!(f, "unavailable: {reason}"),
        }
    }
}

/// Why an authenticator could not re-read its configuration (it keeps the previous one): the
/// implementation's own error, whose `source` chain keeps the cause.
pub type ReloadError = Box<dyn std::error::Error + Send + Sync>;

pub trait Authenticator: Send + Sync {
    /// Checks `password` for `user` connecting from `peer`.
    fn authenticate(&self, user: &str, password: &str, peer: IpAddr) -> Result<Identity, AuthError>;
    /// Re-reads configuration that may change while running (the users file on SIGHUP).
    fn reload(&self) -> Result<(), ReloadError> {
        Ok(())
    }
    /// The one name under which failed logins of `user` are counted (`alice@REALM` is `alice`).
    fn canonical_user(&self, user: &str) -> String {
        user.to_string()
    }
    /// Kerberos single sign-on (RFC 2228 `AUTH GSSAPI`): the service that accepts it, when configured.
    #[cfg(feature = "krb5")]
    fn gss_service(&self) -> Option<&gssapi::GssService> {
        None
    }
}

/// Builds the authenticator `--auth` names, behind the login lockout.
pub fn build(settings: &Settings, anonymous: bool) -> Result<Box<dyn Authenticator>, ConfigError> {
    let inner: Box<dyn Authenticator> = match settings.get(&AUTH)?.as_str() {
        "users" => {
            let file = settings.require(&USERS_FILE, "with --auth users")?;
            let users = users_file::UsersFile::load(&file, anonymous).map_err(|e| USERS_FILE.error(e.to_string()))?;
            Box::new(users)
        }
        // Anonymous login comes from the users file; with Kerberos it would silently do nothing.
        "krb5" if anonymous => return Err(ANONYMOUS.error("needs --auth users (its anonymous entry)")),
        #[cfg(feature = "krb5")]
        "krb5" => Box::new(krb5::Krb5Authenticator::from_settings(settings)?),
        #[cfg(not(feature = "krb5"))]
        "krb5" => {
            return Err(
                AUTH.error("krb5: this hdfsftpd is built without Kerberos login (cargo feature krb5, on by default)")
            )
        }
        other => return Err(AUTH.error(format!("unknown authenticator '{other}' (users, krb5)"))),
    };
    lockout::wrap(settings, inner)
}
