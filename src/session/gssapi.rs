//! Kerberos single sign-on, the FTP protocol half (RFC 2228 with the GSSAPI mechanism): AUTH GSSAPI,
//! the ADAT exchange, USER without a password (232), protected commands (MIC, ENC; CONF is refused)
//! answered with protected replies (631, 632), and PBSZ/PROT with data blocks wrapped under S and P.
//!
//! Who the client is and which user that makes it is auth/gssapi.rs.

use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use hdfsftpd_ffi::gssapi::{AcceptorCred, SecurityContext};

use super::command::{self, Command, CommandProtection, Protection};
use super::context::Context;
use super::control::{Line, ReplySeal, Unseal};
use super::reply::*;
use super::{Flow, Handled, Session};
use crate::auth::AuthError;
use crate::gss_channel::{GssStream, SharedContext};
use crate::locks::lock;
use crate::stream::Stream;

// RFC 2228's reply codes, used by GSSAPI only (the FTPS ones are in reply.rs).
/// Logged in by a security mechanism (RFC 2228: USER after ADAT, no password).
const LOGGED_IN_SECURELY: u16 = 232;
/// The security data exchange is complete (RFC 2228 ADAT).
const ADAT_OK: u16 = 235;
/// AUTH GSSAPI accepted: ADAT must follow (RFC 2228).
const ADAT_NEEDED: u16 = 334;
/// More security data is needed (RFC 2228 ADAT).
const ADAT_CONTINUE: u16 = 335;
/// An unprotected command after AUTH GSSAPI (RFC 2228).
const COMMAND_PROTECTION_DENIED: u16 = 533;
/// A security token that did not check out (RFC 2228).
const SECURITY_CHECK_FAILED: u16 = 535;
/// CONF: a command protection level GSSAPI does not provide (RFC 2228).
const COMMAND_PROTECTION_UNSUPPORTED: u16 = 537;
/// Protected replies (RFC 2228): integrity only (to MIC), encrypted (to ENC).
const PROTECTED_SAFE: u16 = 631;
const PROTECTED_PRIVATE: u16 = 632;

/// The largest protection buffer (PBSZ) granted: a data block's size, held in memory per transfer.
const MAX_PBSZ: u32 = 256 * 1024;

/// A session's GSSAPI state.
#[derive(Default)]
pub struct GssState {
    stage: Stage,
    /// PBSZ as agreed.
    pbsz: Option<u32>,
    protection: Option<Protection>,
    /// A protected command's inner command is being handled.
    inside_protected: bool,
}

#[derive(Default)]
enum Stage {
    #[default]
    Off,
    /// AUTH GSSAPI accepted, ADAT tokens coming.
    Exchanging {
        acceptor: AcceptorCred,
        context: SecurityContext,
    },
    Established(SharedContext),
}

impl GssState {
    fn context(&self) -> Option<&SharedContext> {
        match &self.stage {
            Stage::Established(context) => Some(context),
            _ => None,
        }
    }
}

/// Protects reply lines: each line its own token, as 631 (to MIC) or 632 (to ENC).
struct Seal {
    context: SharedContext,
    confidential: bool,
}

impl ReplySeal for Seal {
    fn seal(&mut self, wire: &[u8]) -> io::Result<Vec<u8>> {
        let code = if self.confidential { PROTECTED_PRIVATE } else { PROTECTED_SAFE };
        let mut out = Vec::new();
        for line in wire.split_inclusive(|&b| b == b'\n') {
            let token = lock(&self.context).wrap(line, self.confidential).map_err(io::Error::other)?;
            // A line `ddd text` ends a reply; others (`ddd-text`, ` text`) continue it.
            let last = line.len() > 3 && line[..3].iter().all(u8::is_ascii_digit) && line[3] == b' ';
            let separator = if last { ' ' } else { '-' };
            out.extend_from_slice(format!("{code}{separator}{}\r\n", base64::encode(&token)).as_bytes());
        }
        Ok(out)
    }
}

/// Unwraps MIC and ENC command lines as the control connection receives them (ABOR among them).
struct Unsealer {
    context: SharedContext,
    peer: SocketAddr,
}

impl Unseal for Unsealer {
    fn unseal(&mut self, line: String) -> Line {
        let (verb, data) = command::split(&line);
        let confidential = match verb.as_str() {
            "MIC" => false,
            "ENC" => true,
            "CONF" => {
                let refusal = Reply::new(COMMAND_PROTECTION_UNSUPPORTED, "CONF is not offered: use MIC or ENC.");
                return Line::Protected { command: Err(refusal), confidential: false };
            }
            _ => return Line::Text(line),
        };
        Line::Protected { command: self.command(data, confidential), confidential }
    }
}

impl Unsealer {
    fn command(&self, data: &str, confidential: bool) -> Result<String, Reply> {
        let token = base64::decode(data)
            .ok_or_else(|| Reply::new(SYNTAX_ERROR_ARGS, "Protected commands take base64 data."))?;
        let (message, encrypted) = lock(&self.context).unwrap(&token).map_err(|e| {
            // SECURITY: a tampered, replayed or reordered command is refused, never run.
            log::warn!("{}: protected command refused: {e}", self.peer);
            Reply::new(SECURITY_CHECK_FAILED, "Protected command failed the security check.")
        })?;
        // SECURITY: ENC must have been encrypted; a MIC may be.
        if confidential && !encrypted {
            return Err(Reply::new(SECURITY_CHECK_FAILED, "ENC command was not encrypted."));
        }
        let line = String::from_utf8(message).map_err(|_| Reply::new(SYNTAX_ERROR, "Command is not valid UTF-8"))?;
        let line = line.trim_end_matches(['\r', '\n']);
        if line.contains(['\r', '\n']) {
            return Err(Reply::new(SYNTAX_ERROR_ARGS, "A protected command holds one line."));
        }
        Ok(line.to_string())
    }
}

impl Session {
    /// Runs an unwrapped command, its replies wrapped at the level it came with.
    pub(super) fn protected_line(&mut self, command: Result<String, Reply>, confidential: bool) -> io::Result<Flow> {
        let (Ok(line), Some(context)) = (command.as_ref(), self.state.gss.context().cloned()) else {
            let refusal = command.err().unwrap_or_else(|| Reply::new(BAD_SEQUENCE, "No security context."));
            return self.write_reply(&refusal);
        };
        self.control.set_seal(Some(Box::new(Seal { context, confidential })));
        self.state.gss.inside_protected = true;
        let flow = self.handle_line(line);
        self.state.gss.inside_protected = false;
        self.control.set_seal(None);
        flow
    }
}

impl Context<'_> {
    pub(super) fn auth_gssapi(&mut self) -> Handled {
        let Some(service) = self.shared.auth.gss_service() else {
            return self.reply(NOT_IMPLEMENTED_FOR_PARAM, "AUTH GSSAPI is not configured on this server.");
        };
        // A second AUTH GSSAPI before the exchange ends starts it again (curl 7.88 sends two).
        if self.control.is_tls() || self.state.user.is_some() || self.state.gss.context().is_some() {
            return self.reply(BAD_SEQUENCE, "AUTH GSSAPI must come first, before login and TLS.");
        }
        let acceptor = match service.acceptor() {
            Ok(acceptor) => acceptor,
            Err(e) => {
                log::error!("{}: AUTH GSSAPI: the service key cannot be read: {e}", self.control.peer());
                return self.reply(SECURITY_UNAVAILABLE, "Kerberos cannot be set up right now; try again later.");
            }
        };
        self.state.gss.stage = Stage::Exchanging { acceptor, context: SecurityContext::default() };
        self.reply(ADAT_NEEDED, "AUTH GSSAPI accepted: send the security data with ADAT.")
    }

    pub(super) fn adat(&mut self, data: &str) -> Handled {
        let Stage::Exchanging { acceptor, context } = &mut self.state.gss.stage else {
            return self.reply(BAD_SEQUENCE, "ADAT needs AUTH GSSAPI first.");
        };
        let Some(token) = base64::decode(data) else {
            return self.reply(SYNTAX_ERROR_ARGS, "ADAT takes base64 data.");
        };
        let step = match context.accept(acceptor, &token) {
            Ok(step) => step,
            Err(e) => {
                // SECURITY: a replayed, expired, forged or wrongly addressed ticket ends here; the reason
                // (GSS-API's text) goes to the log, the client learns only that it failed.
                log::warn!("{}: ADAT refused: {e}", self.control.peer());
                self.state.gss.stage = Stage::Off;
                return self.reply(SECURITY_CHECK_FAILED, "Security data not accepted.");
            }
        };
        let text = match step.token.is_empty() {
            true => "Security data exchange complete.".to_string(),
            false => format!("ADAT={}", base64::encode(&step.token)),
        };
        if !step.complete {
            return self.reply(ADAT_CONTINUE, text);
        }
        let Stage::Exchanging { context, .. } = std::mem::take(&mut self.state.gss.stage) else { unreachable!() };
        log::info!(
            "{}: GSSAPI security context with {} (flags {:#x})",
            self.control.peer(),
            context.client().unwrap_or("?"),
            context.flags()
        );
        let context = Arc::new(Mutex::new(context));
        let unsealer = Unsealer { context: Arc::clone(&context), peer: self.control.peer() };
        self.state.gss.stage = Stage::Established(context);
        let reply = self.reply(ADAT_OK, text);
        // After the 235, which goes in clear: the lines that follow are the protected ones.
        self.control.set_unseal(Box::new(unsealer));
        reply
    }

    /// SECURITY: once the context is established only protected commands are taken, so nobody on the
    /// path can slip a command into the session.
    pub(super) fn check_command_protection(&self, command: &Command) -> Result<(), Reply> {
        let protected = self.state.gss.inside_protected || matches!(command, Command::Protected(..));
        if self.state.gss.context().is_none() || protected {
            return Ok(());
        }
        Err(Reply::new(COMMAND_PROTECTION_DENIED, "Commands must be protected (MIC or ENC) after AUTH GSSAPI."))
    }

    /// MIC, ENC or CONF as a command: only before ADAT (after it, the control connection unwraps them as
    /// they arrive, `Unsealer`) or inside another protected command, so always refused.
    pub(super) fn protected_command(&mut self, _level: CommandProtection, _data: &str) -> Handled {
        match self.state.gss.inside_protected {
            true => self.reply(BAD_SEQUENCE, "A protected command cannot hold another."),
            false => self.reply(BAD_SEQUENCE, "Protected commands need AUTH GSSAPI and ADAT first."),
        }
    }

    /// USER after ADAT: logs in as the context's client, no password. `None`: not a GSSAPI session.
    pub(super) fn gss_user(&mut self, name: &str) -> Option<Handled> {
        let context = match &self.state.gss.stage {
            Stage::Off => return None,
            Stage::Exchanging { .. } => return Some(self.reply(BAD_SEQUENCE, "Finish the ADAT exchange first.")),
            Stage::Established(context) => Arc::clone(context),
        };
        let service = self.shared.auth.gss_service().expect("an established context has its service");
        let peer = self.control.peer();
        let login = service.login(&mut lock(&context), name, self.shared.backend.acts_for_users());
        Some(match login {
            Ok(identity) => self.begin_session(name, identity, LOGGED_IN_SECURELY),
            Err(AuthError::Denied(reason)) => {
                log::warn!("{peer}: GSSAPI login as {name} refused: {reason}");
                self.reply(NOT_LOGGED_IN, format!("Login refused: {reason}."))
            }
            Err(AuthError::Unavailable(reason)) => {
                log::error!("{peer}: GSSAPI login as {name} impossible: {reason}");
                self.send(&Reply::closing(SERVICE_UNAVAILABLE, format!("Login service unavailable: {reason}")))
            }
        })
    }

    pub(super) fn gss_established(&self) -> bool {
        self.state.gss.context().is_some()
    }

    pub(super) fn gss_pbsz(&mut self, size: &str) -> Handled {
        let Ok(asked) = size.parse::<u32>() else {
            return self.reply(SYNTAX_ERROR_ARGS, "PBSZ takes a number of bytes.");
        };
        let granted = asked.min(MAX_PBSZ);
        self.state.gss.pbsz = Some(granted);
        self.reply(OK, format!("PBSZ={granted}"))
    }

    pub(super) fn gss_prot(&mut self, level: Protection) -> Handled {
        if level != Protection::Clear && self.state.gss.pbsz.is_none_or(|size| size == 0) {
            return self.reply(BAD_SEQUENCE, "PROT S and P need PBSZ (more than 0) first.");
        }
        self.state.gss.protection = Some(level);
        let what = match level {
            Protection::Clear => "Clear: data connections are not protected",
            Protection::Safe => "Safe: data blocks are integrity-protected",
            Protection::Private => "Private: data blocks are encrypted",
        };
        self.reply(OK, format!("PROT now {what}."))
    }

    /// Under PROT S or P after AUTH GSSAPI, the data connection as wrapped blocks; `Err(data)`: not so.
    pub(super) fn gss_protect_data(&self, data: Stream) -> Result<Result<Stream, Reply>, Stream> {
        let (Some(context), Some(level)) = (self.state.gss.context(), self.state.gss.protection) else {
            return Err(data);
        };
        let Stream::Plain(tcp) = data else { return Err(data) };
        if level == Protection::Clear {
            return Ok(Ok(Stream::Plain(tcp)));
        }
        let pbsz = self.state.gss.pbsz.unwrap_or(MAX_PBSZ);
        Ok(match GssStream::new(tcp, Arc::clone(context), level == Protection::Private, pbsz) {
            Ok(stream) => Ok(Stream::Wrapped(Box::new(stream))),
            Err(e) => {
                log::error!("{}: data protection cannot start: {e}", self.control.peer());
                Err(Reply::new(CANT_OPEN_DATA, "Data protection cannot be set up."))
            }
        })
    }
}

/// Base64 (RFC 4648, with padding), as ADAT and the protected commands and replies carry tokens.
mod base64 {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

    pub fn encode(bytes: &[u8]) -> String {
        let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
        for chunk in bytes.chunks(3) {
            let n = chunk.iter().enumerate().fold(0u32, |n, (i, &b)| n | u32::from(b) << (16 - 8 * i));
            for i in 0..4 {
                let c = if i <= chunk.len() { ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char } else { '=' };
                out.push(c);
            }
        }
        out
    }

    pub fn decode(text: &str) -> Option<Vec<u8>> {
        let text = text.trim().as_bytes();
        if !text.len().is_multiple_of(4) {
            return None;
        }
        let mut out = Vec::with_capacity(text.len() / 4 * 3);
        for (index, quad) in text.chunks(4).enumerate() {
            let last = index == text.len() / 4 - 1;
            let padding = quad.iter().rev().take_while(|&&c| c == b'=').count();
            if padding > 2 || (padding > 0 && !last) {
                return None;
            }
            let mut n = 0u32;
            for &c in &quad[..4 - padding] {
                n = n << 6 | ALPHABET.iter().position(|&a| a == c)? as u32;
            }
            n <<= 6 * padding;
            out.extend_from_slice(&n.to_be_bytes()[1..4 - padding]);
        }
        Some(out)
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn round_trips_and_refuses_bad_text() {
            for bytes in [&b""[..], b"f", b"fo", b"foo", b"foob", b"fooba", b"foobar", &[0xff, 0, 0x80]] {
                assert_eq!(decode(&encode(bytes)).as_deref(), Some(bytes));
            }
            assert_eq!(encode(b"foobar"), "Zm9vYmFy");
            assert_eq!(encode(b"fo"), "Zm8=");
            for bad in ["Zm9", "Zm=v", "Z===", "Zm8*"] {
                assert_eq!(decode(bad), None, "{bad}");
            }
        }
    }
}
