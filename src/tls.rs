//! FTPS plumbing: the TLS settings, certificate loading (checked at start and on SIGHUP), the shared
//! acceptor, and server-side handshakes with a deadline.
//!
//! One acceptor serves every connection, so its server-side session cache and ticket keys let data
//! connections resume the control connection's TLS session instead of paying a full handshake. A
//! session keeps the acceptor its control connection came from, so a SIGHUP reload does not break
//! resumption for sessions already running.

use std::io::{self, Read, Write};
use std::net::{IpAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use native_tls::{HandshakeError, Identity, Protocol, TlsAcceptor, TlsStream};

use crate::config::{switch, value, ConfigError, Flag, Settings};

pub const FLAGS: &[Flag] = &[
    value("ftps-port", "N", "implicit FTPS port; 0 disables [990 when a certificate is configured, else 0]"),
    value("tls-cert", "FILE", "certificate chain, PEM (server certificate first); with --tls-key"),
    value("tls-key", "FILE", "private key of --tls-cert, PEM PKCS#8 ('BEGIN PRIVATE KEY')"),
    value("tls-pkcs12", "FILE", "certificate chain and key as PKCS#12, instead of --tls-cert/--tls-key"),
    value("tls-pkcs12-password-file", "FILE", "file whose first line is the --tls-pkcs12 password [empty]"),
    switch("require-tls-login", "refuse USER before TLS from every peer [with a certificate: all but loopback]"),
    switch("allow-plain-login", "allow USER before TLS from every peer (see --require-tls-login)"),
    switch("require-data-tls", "refuse transfers on clear data connections (PROT P required)"),
    value("tls-min-version", "V", "lowest TLS version accepted: 1.2 [1.2]"),
];

/// The implicit FTPS port when a certificate is configured and `--ftps-port` is not given.
const DEFAULT_FTPS_PORT: u16 = 990;

/// When USER/PASS must wait for AUTH TLS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginPolicy {
    /// `--require-tls-login`: always.
    Always,
    /// The default with a certificate: for peers that are not loopback.
    RemoteOnly,
    /// `--allow-plain-login`: never.
    Never,
}

impl LoginPolicy {
    // SECURITY: with a certificate, clear-text logins are refused except from loopback (by
    // default), or from everywhere (--require-tls-login).
    pub fn requires_tls(self, peer: IpAddr) -> bool {
        match self {
            LoginPolicy::Always => true,
            LoginPolicy::RemoteOnly => !peer.to_canonical().is_loopback(),
            LoginPolicy::Never => false,
        }
    }
}

/// Where the certificate and key come from; kept to re-read them on SIGHUP.
#[derive(Debug, Clone)]
enum Source {
    Pem { cert: PathBuf, key: PathBuf },
    Pkcs12 { bundle: PathBuf, password_file: Option<PathBuf> },
}

/// The TLS configuration and the current acceptor.
pub struct Tls {
    pub ftps_port: u16,
    pub login_policy: LoginPolicy,
    pub require_data_tls: bool,
    source: Source,
    min_version: Protocol,
    acceptor: RwLock<Arc<TlsAcceptor>>,
}

impl Tls {
    /// The TLS settings, with the certificate loaded and checked; `None` when no certificate is
    /// configured (then no TLS setting may be given).
    pub fn from_settings(s: &Settings) -> Result<Option<Tls>, ConfigError> {
        let Some(source) = source(s)? else {
            for key in ["ftps-port", "require-tls-login", "require-data-tls", "tls-min-version"] {
                if s.string(key).is_some_and(|v| !matches!(v, "0" | "no" | "off" | "false")) {
                    return Err(ConfigError::new(key, "needs a certificate: --tls-cert/--tls-key or --tls-pkcs12"));
                }
            }
            return Ok(None);
        };
        let login_policy = match (s.switch("require-tls-login")?, s.switch("allow-plain-login")?) {
            (true, true) => return Err(ConfigError::new("allow-plain-login", "contradicts --require-tls-login")),
            (true, false) => LoginPolicy::Always,
            (false, true) => LoginPolicy::Never,
            (false, false) => LoginPolicy::RemoteOnly,
        };
        let min_version = match s.string("tls-min-version").unwrap_or("1.2") {
            "1.2" => Protocol::Tlsv12,
            // native-tls's OpenSSL acceptor is built from Mozilla's intermediate profile, which turns
            // TLS 1.3 off; a 1.3 minimum would leave no protocol at all.
            "1.3" => {
                return Err(ConfigError::new("tls-min-version", "1.3 is not available: the server speaks TLS 1.2"))
            }
            other => return Err(ConfigError::new("tls-min-version", format!("'{other}' is not 1.2"))),
        };
        let acceptor = build_acceptor(&source, min_version)?;
        Ok(Some(Tls {
            ftps_port: s.parsed("ftps-port", DEFAULT_FTPS_PORT)?,
            login_policy,
            require_data_tls: s.switch("require-data-tls")?,
            source,
            min_version,
            acceptor: RwLock::new(Arc::new(acceptor)),
        }))
    }

    /// The acceptor for a new connection.
    pub fn acceptor(&self) -> Arc<TlsAcceptor> {
        Arc::clone(&self.acceptor.read().unwrap_or_else(|p| p.into_inner()))
    }

    /// Re-reads the certificate and key (SIGHUP). New connections get them; running sessions keep
    /// theirs. On error the previous ones stay.
    pub fn reload(&self) -> Result<(), ConfigError> {
        let acceptor = Arc::new(build_acceptor(&self.source, self.min_version)?);
        *self.acceptor.write().unwrap_or_else(|p| p.into_inner()) = acceptor;
        Ok(())
    }

    /// What `--check-config` and the start-up log say about TLS.
    pub fn describe(&self) -> String {
        let from = match &self.source {
            Source::Pem { cert, .. } => cert.display().to_string(),
            Source::Pkcs12 { bundle, .. } => bundle.display().to_string(),
        };
        format!("TLS from {from}, login policy {:?}, data TLS required: {}", self.login_policy, self.require_data_tls)
    }
}

fn source(s: &Settings) -> Result<Option<Source>, ConfigError> {
    match (s.path("tls-cert"), s.path("tls-key"), s.path("tls-pkcs12")) {
        (None, None, None) => Ok(None),
        (Some(cert), Some(key), None) => Ok(Some(Source::Pem { cert, key })),
        (None, None, Some(bundle)) => {
            Ok(Some(Source::Pkcs12 { bundle, password_file: s.path("tls-pkcs12-password-file") }))
        }
        (Some(_), None, None) => Err(ConfigError::new("tls-key", "required with --tls-cert")),
        (None, Some(_), None) => Err(ConfigError::new("tls-cert", "required with --tls-key")),
        (_, _, Some(_)) => Err(ConfigError::new("tls-pkcs12", "give either --tls-pkcs12 or --tls-cert/--tls-key")),
    }
}

fn read(key: &str, path: &Path) -> Result<Vec<u8>, ConfigError> {
    std::fs::read(path).map_err(|e| ConfigError::new(key, format!("{}: {e}", path.display())))
}

fn load_identity(source: &Source) -> Result<Identity, ConfigError> {
    match source {
        Source::Pem { cert, key } => {
            let (cert_pem, key_pem) = (read("tls-cert", cert)?, read("tls-key", key)?);
            Identity::from_pkcs8(&cert_pem, &key_pem).map_err(|e| {
                let what = format!("{} with {}", cert.display(), key.display());
                ConfigError::new("tls-key", format!("{what}: {e} (the key must be PEM PKCS#8, the chain PEM)"))
            })
        }
        Source::Pkcs12 { bundle, password_file } => {
            let der = read("tls-pkcs12", bundle)?;
            let password = match password_file {
                Some(file) => {
                    let text = read("tls-pkcs12-password-file", file)?;
                    String::from_utf8_lossy(&text).lines().next().unwrap_or_default().to_string()
                }
                None => String::new(),
            };
            Identity::from_pkcs12(&der, &password).map_err(|e| {
                let why = format!("{}: wrong password or not a PKCS#12 file ({e})", bundle.display());
                ConfigError::new("tls-pkcs12", why)
            })
        }
    }
}

fn build_acceptor(source: &Source, min_version: Protocol) -> Result<TlsAcceptor, ConfigError> {
    let identity = load_identity(source)?;
    let acceptor = TlsAcceptor::builder(identity)
        .min_protocol_version(Some(min_version))
        .build()
        .map_err(|e| ConfigError::new("tls-cert", format!("cannot use the certificate: {e}")))?;
    self_test(&acceptor).map_err(|e| {
        let key = if matches!(source, Source::Pem { .. }) { "tls-key" } else { "tls-pkcs12" };
        ConfigError::new(key, format!("the private key does not match the certificate (test handshake: {e})"))
    })?;
    Ok(acceptor)
}

/// Completes one handshake against the acceptor over a socket pair. OpenSSL silently drops a
/// private key that does not match the certificate, and native-tls has no check: without this the
/// mistake would surface only as failed client handshakes.
fn self_test(acceptor: &TlsAcceptor) -> io::Result<()> {
    let (server, client) = std::os::unix::net::UnixStream::pair()?;
    for end in [&server, &client] {
        end.set_read_timeout(Some(Duration::from_secs(10)))?;
    }
    let client = std::thread::spawn(move || {
        let connector = native_tls::TlsConnector::builder()
            .danger_accept_invalid_certs(true)
            .danger_accept_invalid_hostnames(true)
            .build()
            .map_err(io::Error::other)?;
        connector.connect("self-test", client).map(drop).map_err(|e| io::Error::other(e.to_string()))
    });
    let served = acceptor.accept(server).map(drop).map_err(|e| io::Error::other(e.to_string()));
    let connected = client.join().unwrap_or_else(|_| Err(io::Error::other("self-test client panicked")));
    served.and(connected)
}

/// How much one receive on a TLS connection may take from the socket.
const INBOX_SIZE: usize = 128 << 10;

/// How many encrypted bytes are gathered before one send: OpenSSL writes each 16 KiB record on its
/// own, and a send per record costs more CPU than the encryption on fast links.
const OUTBOX_SIZE: usize = 256 << 10;

/// The TCP socket under a TLS stream.
pub struct Wire {
    tcp: TcpStream,
    /// During the handshake, an overall deadline: socket timeouts alone would let a client that drips
    /// one byte at a time hold a worker indefinitely.
    deadline: Option<Instant>,
    /// Received bytes OpenSSL has not taken yet. It reads each record's 5-byte header and its body
    /// separately; one large receive instead of two per 16 KiB record cuts the syscalls, and the ACKs
    /// each receive sends, several-fold on uploads.
    inbox: Box<[u8]>,
    start: usize,
    end: usize,
    /// Encrypted bytes not sent yet; `flush` sends them (the transfer loop flushes after each chunk).
    outbox: Vec<u8>,
    /// How much of `outbox` went out already (a send may time out halfway).
    sent: usize,
}

impl Wire {
    fn new(tcp: TcpStream, deadline: Instant) -> Wire {
        let inbox = vec![0; INBOX_SIZE].into_boxed_slice();
        Wire {
            tcp,
            deadline: Some(deadline),
            inbox,
            start: 0,
            end: 0,
            outbox: Vec::with_capacity(OUTBOX_SIZE),
            sent: 0,
        }
    }

    pub fn tcp(&self) -> &TcpStream {
        &self.tcp
    }

    /// Gives each blocking call at most what is left before the deadline.
    fn arm(&self, set: impl Fn(&TcpStream, Option<Duration>) -> io::Result<()>) -> io::Result<()> {
        let Some(deadline) = self.deadline else {
            return Ok(());
        };
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::Error::new(io::ErrorKind::TimedOut, "TLS handshake took too long"));
        }
        set(&self.tcp, Some(left))
    }
}

impl Read for Wire {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.start == self.end {
            self.arm(TcpStream::set_read_timeout)?;
            self.end = self.tcp.read(&mut self.inbox)?;
            self.start = 0;
        }
        let n = buf.len().min(self.end - self.start);
        buf[..n].copy_from_slice(&self.inbox[self.start..self.start + n]);
        self.start += n;
        Ok(n)
    }
}

impl Wire {
    /// Sends what the outbox holds. On a timeout the rest stays for the next call, so no byte is lost
    /// and none is sent twice.
    fn send_outbox(&mut self) -> io::Result<()> {
        while self.sent < self.outbox.len() {
            self.arm(TcpStream::set_write_timeout)?;
            match self.tcp.write(&self.outbox[self.sent..])? {
                0 => return Err(io::ErrorKind::WriteZero.into()),
                n => self.sent += n,
            }
        }
        self.outbox.clear();
        self.sent = 0;
        Ok(())
    }
}

impl Write for Wire {
    /// Gathers records; a write either takes all of `buf` or, on a send error, none of it.
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.outbox.len() + buf.len() > OUTBOX_SIZE {
            self.send_outbox()?;
        }
        self.outbox.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.send_outbox()?;
        self.tcp.flush()
    }
}

/// The server side of a handshake on `tcp`, finished within `limit`. The socket's own timeouts are
/// restored afterwards.
pub fn accept(acceptor: &TlsAcceptor, tcp: TcpStream, limit: Duration) -> io::Result<TlsStream<Wire>> {
    let timeouts = (tcp.read_timeout()?, tcp.write_timeout()?);
    let wire = Wire::new(tcp, Instant::now() + limit);
    let mut tls = match acceptor.accept(wire) {
        Ok(tls) => tls,
        Err(HandshakeError::Failure(e)) => return Err(io::Error::new(io::ErrorKind::InvalidData, e)),
        // The deadline passed (the socket timed out inside OpenSSL).
        Err(HandshakeError::WouldBlock(_)) => {
            return Err(io::Error::new(io::ErrorKind::TimedOut, "TLS handshake took too long"))
        }
    };
    let wire = tls.get_mut();
    wire.deadline = None;
    wire.tcp.set_read_timeout(timeouts.0)?;
    wire.tcp.set_write_timeout(timeouts.1)?;
    Ok(tls)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(text: &str) -> Settings {
        Settings::from_file_text(text, "test").unwrap()
    }

    #[test]
    fn loopback_is_exempt_only_by_default() {
        let (local, remote): (IpAddr, IpAddr) = ("::ffff:127.0.0.1".parse().unwrap(), "10.1.2.3".parse().unwrap());
        assert!(!LoginPolicy::RemoteOnly.requires_tls(local));
        assert!(LoginPolicy::RemoteOnly.requires_tls(remote));
        assert!(LoginPolicy::Always.requires_tls(local));
        assert!(!LoginPolicy::Never.requires_tls(remote));
    }

    #[test]
    fn no_certificate_means_no_tls_and_no_tls_settings() {
        assert!(Tls::from_settings(&settings("ftps-port = 0")).unwrap().is_none());
        for text in ["ftps-port = 990", "require-data-tls = yes", "tls-min-version = 1.2"] {
            let err = Tls::from_settings(&settings(text)).err().expect(text);
            assert!(err.message.contains("needs a certificate"), "{text}: {err}");
        }
    }

    #[test]
    fn certificate_settings_come_in_pairs() {
        assert_eq!(source(&settings("tls-cert = c")).unwrap_err().key, "tls-key");
        assert_eq!(source(&settings("tls-key = k")).unwrap_err().key, "tls-cert");
        assert_eq!(source(&settings("tls-cert = c\ntls-key = k\ntls-pkcs12 = p")).unwrap_err().key, "tls-pkcs12");
        assert!(matches!(source(&settings("tls-pkcs12 = p")), Ok(Some(Source::Pkcs12 { password_file: None, .. }))));
    }

    #[test]
    fn missing_files_are_named() {
        let err =
            Tls::from_settings(&settings("tls-cert = /nonexistent/c.pem\ntls-key = /nonexistent/k.pem")).err().unwrap();
        assert_eq!(err.key, "tls-cert");
        assert!(err.message.contains("/nonexistent/c.pem"), "{err}");
    }
}
