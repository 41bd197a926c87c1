//! FTPS (RFC 4217): AUTH PBSZ PROT CCC, the policy gates for clear-text logins and clear data
//! connections, and TLS on data connections.

use std::sync::Arc;
use std::time::Duration;

use openssl::ssl::SslAcceptor;

use super::command::Protection;
use super::context::DataStream;
use super::reply::*;
use super::{Context, Flow, Handled, Session};
use crate::data::Outcome;
use crate::stream::Stream;
use crate::tls::Channel;

/// How long a refused upload's data is read and dropped before its connection is closed.
const REFUSAL_DRAIN: Duration = Duration::from_secs(2);

/// A session's TLS state.
pub struct Security {
    /// The acceptor of the control connection's TLS session; data connections use the same one so
    /// they can resume that session (its cache and ticket keys are per acceptor).
    acceptor: Option<Arc<SslAcceptor>>,
    protection: Protection,
}

impl Security {
    pub fn new(acceptor: Option<Arc<SslAcceptor>>) -> Security {
        Security { acceptor, protection: Protection::Clear }
    }
}

impl Session {
    /// A session whose connection was TLS from its first byte (implicit FTPS).
    pub fn implicit_tls(mut self, acceptor: Arc<SslAcceptor>) -> Session {
        self.state.security = Security::new(Some(acceptor));
        self
    }
}

impl Context<'_> {
    /// What FEAT advertises when TLS is configured.
    pub(super) fn auth(&mut self, mechanism: &str) -> Handled {
        if mechanism == "GSSAPI" {
            return self.auth_gssapi();
        }
        let Some(tls) = &self.shared.tls else {
            return self.reply(NOT_IMPLEMENTED, "TLS is not configured on this server.");
        };
        // SSL and the TLS-C/TLS-P spellings are what older clients send for the same thing.
        if !matches!(mechanism, "TLS" | "SSL" | "TLS-C" | "TLS-P") {
            return self.reply(NOT_IMPLEMENTED_FOR_PARAM, format!("AUTH {mechanism} unknown: use AUTH TLS."));
        }
        if self.control.is_tls() {
            return self.reply(BAD_SEQUENCE, "Already using TLS.");
        }
        if self.state.user.is_some() {
            return self.reply(BAD_SEQUENCE, "AUTH must come before login.");
        }
        let acceptor = match tls.acceptor() {
            Ok(acceptor) => acceptor,
            Err(e) => {
                log::error!("{}: cannot set up TLS for AUTH: {e}", self.control.peer());
                return self.reply(SECURITY_UNAVAILABLE, "TLS cannot be set up right now; try again later.");
            }
        };
        self.reply(AUTH_OK, format!("AUTH {mechanism} OK: proceed with the TLS handshake."))?;
        let peer = self.control.peer();
        // SECURITY: the handshake gets what is left of the login limit, never a fresh one, and no more
        // than a silent connection would: a stalled handshake holds its worker only briefly.
        let limit = self.state.login_time_left(&self.shared.config).min(self.shared.config.first_command_timeout);
        if let Err(e) = self.control.start_tls(&acceptor, limit) {
            log::info!("{peer}: TLS handshake after AUTH failed: {e}");
            return Ok(Flow::Close);
        }
        self.state.pending_user = None;
        self.state.security = Security::new(Some(acceptor));
        Ok(Flow::Continue)
    }

    pub(super) fn pbsz(&mut self, size: &str) -> Handled {
        if self.gss_established() {
            return self.gss_pbsz(size);
        }
        if !self.control.is_tls() {
            return self.reply(BAD_SEQUENCE, "PBSZ needs a TLS control connection: AUTH TLS first.");
        }
        if size.parse::<u32>().is_err() {
            return self.reply(SYNTAX_ERROR_ARGS, "PBSZ takes a number (0 with TLS).");
        }
        // TLS is a stream protocol: the protection buffer size is always 0 (RFC 4217 section 8).
        self.reply(OK, "PBSZ=0")
    }

    pub(super) fn prot(&mut self, level: Protection) -> Handled {
        if self.gss_established() {
            return self.gss_prot(level);
        }
        if !self.control.is_tls() {
            return self.reply(BAD_SEQUENCE, "PROT needs a TLS control connection: AUTH TLS first.");
        }
        // RFC 4217 wants PBSZ first, but ftplib's prot_c() and others skip it; it carries nothing.
        let text = match level {
            Protection::Clear => "PROT now Clear: data connections are not encrypted.",
            Protection::Private => "PROT now Private: data connections use TLS.",
            // The level in force stays.
            Protection::Safe => {
                return self.reply(PROT_LEVEL_UNSUPPORTED, "PROT S is not offered with TLS; use C or P.")
            }
        };
        self.state.security.protection = level;
        self.reply(OK, text)
    }

    // SECURITY: an encrypted control connection stays encrypted.
    pub(super) fn ccc(&mut self) -> Handled {
        self.reply(POLICY_DENIED, "CCC refused: the control connection stays encrypted.")
    }

    /// USER on a clear control connection, when policy wants TLS first.
    pub(super) fn check_login_protection(&self) -> Result<(), Reply> {
        let Some(tls) = &self.shared.tls else {
            return Ok(());
        };
        if self.control.is_tls() || !tls.login_policy.requires_tls(self.control.peer().ip()) {
            return Ok(());
        }
        log::info!("{}: clear-text login refused: TLS required", self.control.peer());
        Err(Reply::new(
            NOT_LOGGED_IN,
            "Login refused: this server requires TLS. Send AUTH TLS before USER, or connect to the FTPS port.",
        ))
    }

    /// A transfer on a clear data connection, when policy wants PROT P.
    pub(super) fn check_data_protection(&self) -> Result<(), Reply> {
        let required = self.shared.tls.as_ref().is_some_and(|tls| tls.require_data_tls);
        if !required || self.state.security.protection == Protection::Private {
            return Ok(());
        }
        Err(Reply::new(
            DATA_PROTECTION_REQUIRED,
            "Data connections must be encrypted on this server: send PBSZ 0 and PROT P (after AUTH TLS) first.",
        ))
    }

    /// Whether the next data connection gets a TLS handshake (PROT P).
    pub(super) fn data_is_private(&self) -> bool {
        self.state.security.acceptor.is_some() && self.state.security.protection == Protection::Private
    }

    /// After the 150 reply (clients start the handshake only then): under PROT P the data connection
    /// becomes TLS, this server being the TLS server in both passive and active mode.
    pub(super) fn protect_data(&self, data: DataStream) -> Result<DataStream, Reply> {
        let data = match data {
            DataStream::Socket(Stream::Plain(tcp)) => match self.gss_protect_data(Stream::Plain(tcp)) {
                Ok(protected) => return protected.map(DataStream::Socket),
                Err(stream) => DataStream::Socket(stream),
            },
            other => other,
        };
        let Some(acceptor) =
            self.state.security.acceptor.as_ref().filter(|_| self.state.security.protection == Protection::Private)
        else {
            return Ok(data);
        };
        let tcp = match data {
            DataStream::Socket(Stream::Plain(tcp)) => tcp,
            other => return Ok(other),
        };
        let tls = match crate::tls::accept(acceptor, tcp, self.shared.config.data_timeout, Channel::Data) {
            Ok(tls) => tls,
            // SECURITY: OpenSSL's error text (library internals) goes to the log, not to the client.
            Err(e) => {
                log::warn!("{}: TLS handshake on the data connection failed: {e}", self.control.peer());
                let what = match e.kind() {
                    std::io::ErrorKind::TimedOut => "took too long",
                    _ => "failed",
                };
                return Err(Reply::new(CANT_OPEN_DATA, format!("TLS handshake on the data connection {what}.")));
            }
        };
        log::debug!("{}: data connection {}", self.control.peer(), crate::tls::summary(&tls));
        let require_reuse = self.shared.tls.as_ref().is_some_and(|tls| tls.require_session_reuse);
        // SECURITY: a resumed session proves the data connection comes from the client that holds
        // the control connection's TLS session, not from whoever reached the data port first.
        if require_reuse && !crate::tls::resumed(&tls) {
            log::warn!("{}: data connection refused: it did not resume the control TLS session", self.control.peer());
            self.refuse_data(DataStream::Socket(Stream::Tls(Box::new(tls))));
            return Err(Reply::new(
                SESSION_REUSE_REQUIRED,
                "Data connection refused: it must resume the control connection's TLS session.",
            ));
        }
        Ok(DataStream::Socket(Stream::Tls(Box::new(tls))))
    }

    /// Ends a TLS data connection refused after the handshake (an upload the storage refused, a
    /// session not resumed): close_notify, then what the client sent meanwhile is dropped for a short
    /// while (`stream::drain_unread`). A connection in memory is simply dropped.
    pub(super) fn refuse_data(&self, data: DataStream) {
        if let Some(mut stream) = data.into_socket() {
            self.send_close_notify(&mut stream);
            crate::stream::drain_unread(stream.tcp(), REFUSAL_DRAIN, usize::MAX);
        }
    }

    /// Ends a data connection. After a complete transfer a TLS one sends close_notify first, so the
    /// client can tell the end of the data from a cut connection.
    pub(super) fn close_data(&self, data: DataStream, outcome: &Outcome) {
        if let (Outcome::Complete, Some(mut stream @ Stream::Tls(_))) = (outcome, data.into_socket()) {
            self.send_close_notify(&mut stream);
        }
    }

    /// Sends close_notify on a TLS data connection; a failure only means the client left first.
    fn send_close_notify(&self, data: &mut Stream) {
        // The copy loop's short poll timeout is no limit for this last write.
        let finished = data.tcp().set_write_timeout(Some(self.shared.config.data_timeout)).and_then(|()| data.finish());
        if let Err(e) = finished {
            log::debug!("{}: no close_notify on the data connection: {e}", self.control.peer());
        }
    }
}
