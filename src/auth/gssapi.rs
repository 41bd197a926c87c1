//! Kerberos single sign-on (RFC 2228 `AUTH GSSAPI`), the authentication half: the service key the
//! clients' security contexts are accepted with, and who an established context's client is.
//!
//! Offered with `--auth krb5` when tickets are verified with a keytab (`--krb5-keytab`, the key of
//! `--krb5-service` or any key in it). The client principal is mapped to a user by the rules of password
//! logins (auth/krb5.rs): an accepted realm, the first component as the user name. The FTP protocol half
//! (ADAT, protected commands and data) is session/gssapi.rs.
//!
//! The session acts as the user with the ticket the client delegated (forwarded) through the context,
//! stored in a ticket cache of its own like a password login's; a client that delegated none is refused.

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use hdfsftpd_ffi::gssapi::{AcceptorCred, GssError, SecurityContext};
use hdfsftpd_ffi::krb5::TicketCache;

use super::krb5::{is_plain_name, random_hex, unavailable, Checker, Krb5Credentials};
use super::{AuthError, Identity};
use crate::settings::ConfigError;

pub struct GssService {
    keytab: PathBuf,
    /// The service principal clients must have a ticket for; `None`: any key in the keytab.
    service: Option<String>,
    realms: Vec<String>,
    ccache_dir: PathBuf,
}

impl GssService {
    /// The service of `keytab` (`FILE:/path`), checked now: a keytab GSS-API cannot use is a
    /// configuration error, not a refusal at every login.
    pub(super) fn new(keytab: &str, service: Option<String>, checker: &Checker) -> Result<GssService, ConfigError> {
        let path = PathBuf::from(keytab.strip_prefix("FILE:").unwrap_or(keytab));
        let gss = GssService {
            keytab: path,
            service,
            realms: checker.realms.clone(),
            ccache_dir: checker.ccache_dir.clone(),
        };
        gss.acceptor().map_err(|e| super::krb5::KRB5_KEYTAB.error(format!("not usable for AUTH GSSAPI: {e}")))?;
        Ok(gss)
    }

    /// The service key, for one session's security context.
    pub fn acceptor(&self) -> Result<AcceptorCred, GssError> {
        AcceptorCred::from_keytab(&self.keytab, self.service.as_deref())
    }

    /// The identity of `context`'s client for `USER name`: `name` must be the user its principal maps
    /// to (or the principal itself), and the client must have delegated a ticket, unless the storage
    /// `acts_for_users` without one (the gateway's impersonation).
    pub fn login(
        &self,
        context: &mut SecurityContext,
        name: &str,
        acts_for_users: bool,
    ) -> Result<Identity, AuthError> {
        let principal = context.client().unwrap_or_default().to_string();
        let user = self.user_of(&principal)?;
        if name != user && name != principal {
            return Err(AuthError::Denied(format!("{principal} may log in as {user} only, not as {name}")));
        }
        let Some(delegated) = context.take_delegated() else {
            // SECURITY: without a ticket of its own the session reaches storage only through the
            // gateway's impersonation, which the NameNode's proxy-user rules still judge (SECURITY.md).
            if acts_for_users {
                log::info!("{principal}: no delegated ticket; HDFS is reached through the gateway's impersonation");
                return Ok(Identity { user, home: None, writable: true, anonymous: false, credentials: None });
            }
            return Err(AuthError::Denied(format!(
                "{principal} delegated no ticket (get a forwardable one, kinit -f, and have the client delegate it)"
            )));
        };
        let lifetime = delegated.lifetime().map_err(|e| unavailable("the delegated ticket cannot be read", e))?;
        let path = self.ccache_dir.join(format!("{user}-{}", random_hex()?));
        // SECURITY: the delegated TGT lets this session act as the user (HDFS) until it expires; it is
        // kept in the private cache directory and destroyed with the session (SECURITY.md, Kerberos).
        let expires = SystemTime::now() + Duration::from_secs(lifetime.into());
        let cache = TicketCache::adopt(path.clone(), expires);
        delegated.store_in_file(&path).map_err(|e| unavailable("the server cannot store the ticket", e))?;
        log::debug!("{principal}: delegated ticket in {}, valid for {lifetime}s", path.display());
        let credentials = Some(Box::new(Krb5Credentials(cache)) as Box<dyn super::SessionCredentials>);
        Ok(Identity { user, home: None, writable: true, anonymous: false, credentials })
    }

    /// The name rule of password logins: an accepted realm, and the first component as a plain name.
    fn user_of(&self, principal: &str) -> Result<String, AuthError> {
        let (name, realm) = principal.rsplit_once('@').unwrap_or((principal, ""));
        // SECURITY: only the listed realms, as for password logins.
        if !self.realms.iter().any(|r| r == realm) {
            return Err(AuthError::Denied(format!(
                "realm of {principal} is not accepted (only {})",
                self.realms.join(", ")
            )));
        }
        let user = name.split('/').next().unwrap_or_default();
        if !is_plain_name(user) {
            return Err(AuthError::Denied(format!("principal {principal}: '{user}' is not usable as a user name")));
        }
        Ok(user.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn service(realms: &[&str]) -> GssService {
        GssService {
            keytab: PathBuf::from("/nonexistent"),
            service: None,
            realms: realms.iter().map(|r| r.to_string()).collect(),
            ccache_dir: PathBuf::from("/nonexistent"),
        }
    }

    #[test]
    fn principals_map_to_users_by_the_password_rules() {
        let gss = service(&["EXAMPLE.ORG"]);
        assert_eq!(gss.user_of("alice@EXAMPLE.ORG").unwrap(), "alice");
        assert_eq!(gss.user_of("bob/admin@EXAMPLE.ORG").unwrap(), "bob");
        for refused in ["alice@OTHER.ORG", "alice", ".x@EXAMPLE.ORG", "@EXAMPLE.ORG", "a b@EXAMPLE.ORG"] {
            assert!(matches!(gss.user_of(refused), Err(AuthError::Denied(_))), "{refused} accepted");
        }
    }
}
