//! FTP reply codes (RFC 959, 2228, 2428, 3659, 4217) as named constants, and reply formatting.

pub const OPENING_DATA: u16 = 150;
pub const OK: u16 = 200;
pub const NOT_NEEDED: u16 = 202;
pub const SYSTEM_STATUS: u16 = 211;
pub const FILE_STATUS: u16 = 213;
pub const HELP: u16 = 214;
pub const SYSTEM_TYPE: u16 = 215;
pub const READY: u16 = 220;
pub const GOODBYE: u16 = 221;
/// ABOR with no transfer running: the data connection (if any) stays (RFC 959).
pub const DATA_CONNECTION_OPEN: u16 = 225;
pub const TRANSFER_COMPLETE: u16 = 226;
pub const ENTERING_PASSIVE: u16 = 227;
pub const ENTERING_EXTENDED_PASSIVE: u16 = 229;
pub const LOGGED_IN: u16 = 230;
/// AUTH accepted: the TLS handshake follows (RFC 2228's "security data exchange complete").
pub const AUTH_OK: u16 = 234;
pub const FILE_ACTION_OK: u16 = 250;
pub const PATH_CREATED: u16 = 257;
pub const NEED_PASSWORD: u16 = 331;
pub const PENDING_FURTHER_INFO: u16 = 350;
pub const SERVICE_UNAVAILABLE: u16 = 421;
/// AUTH accepted in principle, but TLS cannot be set up now (RFC 2228).
pub const SECURITY_UNAVAILABLE: u16 = 431;
pub const CANT_OPEN_DATA: u16 = 425;
pub const TRANSFER_ABORTED: u16 = 426;
/// The file is in use: another client is writing it.
pub const FILE_BUSY: u16 = 450;
pub const LOCAL_ERROR: u16 = 451;
/// The filesystem is full.
pub const INSUFFICIENT_STORAGE: u16 = 452;
pub const SYNTAX_ERROR: u16 = 500;
pub const SYNTAX_ERROR_ARGS: u16 = 501;
pub const NOT_IMPLEMENTED: u16 = 502;
pub const BAD_SEQUENCE: u16 = 503;
pub const NOT_IMPLEMENTED_FOR_PARAM: u16 = 504;
/// A transfer refused because its data connection would not be protected (RFC 4217).
pub const DATA_PROTECTION_REQUIRED: u16 = 521;
/// EPSV with a network protocol other than 1 (IPv4) or 2 (IPv6) (RFC 2428).
pub const NETWORK_PROTOCOL_NOT_SUPPORTED: u16 = 522;
/// A PROT P data connection that did not resume the control connection's TLS session, under
/// --require-ssl-reuse (the code vsftpd's require_ssl_reuse answers with).
pub const SESSION_REUSE_REQUIRED: u16 = 522;
pub const NOT_LOGGED_IN: u16 = 530;
/// Refused by policy (RFC 2228): CCC, for one.
pub const POLICY_DENIED: u16 = 534;
/// PROT S and PROT E: levels TLS does not provide (RFC 4217).
pub const PROT_LEVEL_UNSUPPORTED: u16 = 536;
pub const FILE_UNAVAILABLE: u16 = 550;
/// A quota (HDFS space or name quota, a disk quota, a file size limit) is exceeded.
pub const EXCEEDED_STORAGE: u16 = 552;
pub const NAME_NOT_ALLOWED: u16 = 553;
pub const INVALID_REST: u16 = 554;

/// One reply: a code and one or more lines of text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub code: u16,
    pub lines: Vec<String>,
    /// The session ends once this reply is sent.
    pub closes: bool,
}

impl Reply {
    pub fn new(code: u16, text: impl Into<String>) -> Reply {
        Reply { code, lines: vec![text.into()], closes: false }
    }

    pub fn multi(code: u16, lines: Vec<String>) -> Reply {
        Reply { code, lines, closes: false }
    }

    /// A reply after which the server closes the control connection: QUIT's 221, or a 421.
    pub fn closing(code: u16, text: impl Into<String>) -> Reply {
        Reply { closes: true, ..Reply::new(code, text) }
    }

    /// Formats the reply for the wire. Multi-line replies follow RFC 959: `code-first`, inner lines
    /// indented by a space (so none can pose as the closing line), `code last`. CR and LF inside the
    /// text are replaced so no reply can smuggle a second one.
    pub fn to_wire(&self, out: &mut Vec<u8>) {
        match self.lines.as_slice() {
            [] => out.extend_from_slice(format!("{} \r\n", self.code).as_bytes()),
            [only] => last_line(self.code, only, out),
            [first, middle @ .., last] => {
                first_line(self.code, first, out);
                for line in middle {
                    inner_line(line, out);
                }
                last_line(self.code, last, out);
            }
        }
    }
}

// The three kinds of line of a multi-line reply, also for one written as its lines come (STAT of a
// directory of any size), each through `clean`.
fn clean(text: &str) -> String {
    // SECURITY: no reply injection: CR/LF in reply text become spaces.
    text.replace(['\r', '\n'], " ")
}

pub fn first_line(code: u16, text: &str, out: &mut Vec<u8>) {
    out.extend_from_slice(format!("{code}-{}\r\n", clean(text)).as_bytes());
}

pub fn inner_line(text: &str, out: &mut Vec<u8>) {
    out.extend_from_slice(format!(" {}\r\n", clean(text)).as_bytes());
}

pub fn last_line(code: u16, text: &str, out: &mut Vec<u8>) {
    out.extend_from_slice(format!("{code} {}\r\n", clean(text)).as_bytes());
}

/// Quotes a path for a 257 reply: embedded quotes are doubled (RFC 959 appendix II).
pub fn quote_path(path: &str) -> String {
    format!("\"{}\"", path.replace('"', "\"\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wire(reply: Reply) -> String {
        let mut out = Vec::new();
        reply.to_wire(&mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn single_and_multi_line_replies() {
        assert_eq!(wire(Reply::new(200, "OK")), "200 OK\r\n");
        let multi = Reply::multi(211, vec!["Features:".into(), "UTF8".into(), "End".into()]);
        assert_eq!(wire(multi), "211-Features:\r\n UTF8\r\n211 End\r\n");
    }

    #[test]
    fn line_breaks_cannot_inject_replies() {
        assert_eq!(wire(Reply::new(550, "a\r\n227 fake")), "550 a  227 fake\r\n");
        assert_eq!(quote_path("/a\"b"), "\"/a\"\"b\"");
    }
}
