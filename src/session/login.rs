//! USER and PASS: the only way in. Failed attempts are slowed down and counted per connection.

use std::thread;
use std::time::SystemTime;

use super::reply::*;
use super::{Context, Flow, Handled, User};
use crate::auth::{AuthError, Identity};
use crate::storage;
use crate::vpath::VPath;

impl Context<'_> {
    pub(super) fn user_command(&mut self, name: String) -> Handled {
        if self.state.user.is_some() {
            return self.reply(BAD_SEQUENCE, "Already logged in.");
        }
        if let Some(handled) = self.gss_user(&name) {
            return handled;
        }
        // SECURITY: clear-text USER refused per the TLS login policy.
        self.check_login_protection()?;
        self.state.pending_user = Some(name);
        self.reply(NEED_PASSWORD, "Please specify the password.")
    }

    pub(super) fn pass_command(&mut self, password: &str) -> Handled {
        if self.state.user.is_some() {
            return self.reply(BAD_SEQUENCE, "Already logged in.");
        }
        let Some(name) = self.state.pending_user.take() else {
            return self.reply(BAD_SEQUENCE, "Login with USER first.");
        };
        let peer = self.control.peer();
        let identity = match self.shared.auth.authenticate(&name, password, peer.ip()) {
            Ok(identity) => identity,
            Err(AuthError::Denied(reason)) => return self.login_failed(&name, &reason),
            Err(AuthError::Unavailable(reason)) => {
                log::error!("{peer}: login {name} impossible: {reason}");
                return self.send(&Reply::closing(SERVICE_UNAVAILABLE, format!("Login service unavailable: {reason}")));
            }
        };
        self.begin_session(&name, identity, LOGGED_IN)
    }

    /// After the identity is known (password or GSSAPI): the per-user limit, the storage, the reply `code`.
    pub(super) fn begin_session(&mut self, name: &str, identity: Identity, code: u16) -> Handled {
        let peer = self.control.peer();
        // SECURITY: --max-per-user: one user cannot take every worker.
        let limit = self.shared.config.max_per_user;
        let Some(slot) = self.shared.user_sessions.take(&identity.user, limit) else {
            log::warn!("{peer}: login {}: refused, {limit} sessions already (--max-per-user)", identity.user);
            let text = format!("Too many sessions for {} (at most {limit}); try again later.", identity.user);
            return self.send(&Reply::closing(SERVICE_UNAVAILABLE, text));
        };
        let storage = match self.shared.backend.open_session(&identity) {
            Ok(storage) => storage,
            Err(e) => {
                log::error!("{peer}: login {name}: cannot open storage as {}: {e}", identity.user);
                // A missing or forbidden home will not fix itself: 530, so clients do not retry as
                // they do after 421; only a storage outage is temporary.
                // SECURITY: the reason only; the storage logged where the home is (storage::unusable_home).
                let text = format!("Cannot open your home directory: {e}");
                return self.send(&match e.kind {
                    storage::ErrorKind::Io => Reply::closing(SERVICE_UNAVAILABLE, text),
                    _ => Reply::new(NOT_LOGGED_IN, text),
                });
            }
        };
        let home = identity.home.as_deref().unwrap_or("default");
        log::info!("{peer}: login {} (home {home}, {})", identity.user, access(identity.writable));
        self.state.online.activity.logged_in(&identity.user);
        self.state.user = Some(User { identity, storage, cwd: VPath::root(), _slot: slot });
        self.reply(code, "Login successful.")
    }

    /// True when the user's credentials (a Kerberos ticket) have expired: the storage would refuse them.
    pub(super) fn credentials_expired(&self) -> bool {
        let credentials = self.state.user.as_ref().and_then(|u| u.identity.credentials.as_ref());
        credentials.and_then(|c| c.expires()).is_some_and(|end| end <= SystemTime::now())
    }

    /// Logs the user out (destroying the expired credentials) so no transfer starts without them.
    pub(super) fn end_expired_login(&mut self) -> Handled {
        if let Some(user) = self.state.user.take() {
            log::info!("{}: logout {}: credentials expired", self.control.peer(), user.identity.user);
            self.state.online.activity.logged_out();
        }
        self.reply(NOT_LOGGED_IN, "Your Kerberos ticket has expired: log in again with USER and PASS.")
    }

    /// Answers a failed login after the configured delay; past the limit the connection is closed.
    fn login_failed(&mut self, name: &str, reason: &str) -> Handled {
        let config = &self.shared.config;
        let (delay, limit) = (config.login_fail_delay, config.max_login_fails);
        self.state.failed_logins += 1;
        log::warn!("{}: failed login for {name}: {reason} (attempt {})", self.control.peer(), self.state.failed_logins);
        // SECURITY: guessing: a delay before every 530, and the connection closed after
        // --max-login-fails; the reply never says why (the log does).
        thread::sleep(delay);
        self.reply(NOT_LOGGED_IN, "Login incorrect.")?;
        if limit > 0 && self.state.failed_logins >= limit {
            log::warn!("{}: too many failed logins, closing", self.control.peer());
            return self
                .send(&Reply::closing(SERVICE_UNAVAILABLE, "Too many failed login attempts, closing connection."));
        }
        Ok(Flow::Continue)
    }
}

fn access(writable: bool) -> &'static str {
    if writable {
        "read-write"
    } else {
        "read-only"
    }
}
