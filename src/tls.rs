//! FTPS plumbing: the TLS settings, certificate loading (checked at start and on SIGHUP), a TLS
//! context per session, and server-side handshakes with a deadline.
//!
//! Every FTP session gets a TLS context of its own, built from certificates held in memory, as
//! vsftpd's process per session has. Its session cache and ticket keys are that session's alone, so
//! its data connections can resume the control connection's TLS session and no other session can be
//! resumed there: that is what `--require-ssl-reuse` relies on. A SIGHUP reload changes what new
//! sessions get; running ones keep their context.
//!
//! The `openssl` crate, not native-tls (which wraps the same library): native-tls builds its server
//! from Mozilla's pre-1.3 profile, which turns TLS 1.3 off, and offers no cipher or client
//! certificate settings.

use std::io::{self, Read, Write};
use std::net::{IpAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use openssl::error::ErrorStack;
use openssl::pkcs12::Pkcs12;
use openssl::pkey::{PKey, Private};
use openssl::ssl::{
    HandshakeError, MidHandshakeSslStream, Ssl, SslAcceptor, SslMethod, SslOptions, SslStream, SslVerifyMode,
    SslVersion,
};
use openssl::x509::{X509VerifyResult, X509};

use crate::settings::{optional, switch, value, ConfigError, Flag, Setting, Settings};

/// Mozilla's "intermediate" server profile (Server Side TLS 6.0), the default cipher choice.
macro_rules! intermediate_ciphers {
    () => {
        "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:\
         ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"
    };
}
macro_rules! intermediate_ciphersuites {
    () => {
        "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256"
    };
}

pub const FTPS_PORT: Setting<u16> = value("ftps-port", "N", "990", "implicit FTPS port; 0 disables")
    .shown_as("990 when a certificate is configured, else 0");
pub const TLS_CERT: Setting<Option<PathBuf>> =
    optional("tls-cert", "FILE", "certificate chain, PEM (server certificate first); with --tls-key");
pub const TLS_KEY: Setting<Option<PathBuf>> =
    optional("tls-key", "FILE", "private key of --tls-cert, PEM (PKCS#8, RSA or EC), not encrypted");
pub const TLS_PKCS12: Setting<Option<PathBuf>> =
    optional("tls-pkcs12", "FILE", "certificate chain and key as PKCS#12, instead of --tls-cert/--tls-key");
pub const TLS_PKCS12_PASSWORD_FILE: Setting<Option<PathBuf>> =
    optional("tls-pkcs12-password-file", "FILE", "file whose first line is the --tls-pkcs12 password")
        .shown_as("empty");
pub const REQUIRE_TLS_LOGIN: Setting<bool> = switch("require-tls-login", "refuse USER before TLS from every peer")
    .shown_as("with a certificate: all but loopback");
pub const ALLOW_PLAIN_LOGIN: Setting<bool> =
    switch("allow-plain-login", "allow USER before TLS from every peer (see --require-tls-login)");
pub const REQUIRE_DATA_TLS: Setting<bool> =
    switch("require-data-tls", "refuse transfers on clear data connections (PROT P required)");
pub const TLS_MIN_VERSION: Setting<String> =
    value("tls-min-version", "V", "1.2", "lowest TLS version accepted: 1.2 or 1.3")
        .shown_as("1.2; 1.3 is always offered");
pub const TLS_CIPHERS: Setting<String> =
    value("tls-ciphers", "LIST", intermediate_ciphers!(), "TLS 1.2 ciphers, OpenSSL syntax")
        .shown_as(concat!("Mozilla intermediate: ", intermediate_ciphers!()));
pub const TLS_CIPHERSUITES: Setting<String> =
    value("tls-ciphersuites", "LIST", intermediate_ciphersuites!(), "TLS 1.3 cipher suites")
        .shown_as(concat!("Mozilla intermediate: ", intermediate_ciphersuites!()));
pub const TLS_CLIENT_CA: Setting<Option<PathBuf>> =
    optional("tls-client-ca", "FILE", "CA certificates (PEM) that sign client certificates; clients are asked for one");
pub const TLS_CLIENT_CERT: Setting<Option<String>> =
    optional("tls-client-cert", "MODE", "with --tls-client-ca: optional (one sent must be valid) or require")
        .shown_as("optional");
pub const REQUIRE_SSL_REUSE: Setting<bool> = switch(
    "require-ssl-reuse",
    "refuse (522) a PROT P data connection that does not resume the control connection's TLS session",
);

pub const FLAGS: &[Flag] = &[
    FTPS_PORT.flag(),
    TLS_CERT.flag(),
    TLS_KEY.flag(),
    TLS_PKCS12.flag(),
    TLS_PKCS12_PASSWORD_FILE.flag(),
    REQUIRE_TLS_LOGIN.flag(),
    ALLOW_PLAIN_LOGIN.flag(),
    REQUIRE_DATA_TLS.flag(),
    TLS_MIN_VERSION.flag(),
    TLS_CIPHERS.flag(),
    TLS_CIPHERSUITES.flag(),
    TLS_CLIENT_CA.flag(),
    TLS_CLIENT_CERT.flag(),
    REQUIRE_SSL_REUSE.flag(),
];

/// Settings that only make sense with a certificate.
const NEEDS_CERTIFICATE: &[Flag] = &[
    FTPS_PORT.flag(),
    REQUIRE_TLS_LOGIN.flag(),
    REQUIRE_DATA_TLS.flag(),
    TLS_MIN_VERSION.flag(),
    TLS_CIPHERS.flag(),
    TLS_CIPHERSUITES.flag(),
    TLS_CLIENT_CA.flag(),
    TLS_CLIENT_CERT.flag(),
    REQUIRE_SSL_REUSE.flag(),
];

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

/// Whether clients must show a certificate signed by `--tls-client-ca`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ClientCert {
    Optional,
    Required,
}

/// Where the certificates and keys come from; kept to re-read them on SIGHUP.
#[derive(Debug, Clone)]
struct Sources {
    identity: Source,
    client_ca: Option<PathBuf>,
}

#[derive(Debug, Clone)]
enum Source {
    Pem { cert: PathBuf, key: PathBuf },
    Pkcs12 { bundle: PathBuf, password_file: Option<PathBuf> },
}

/// The protocol choices, fixed at start.
#[derive(Debug, Clone)]
struct Protocol {
    min_version: SslVersion,
    ciphers: String,
    ciphersuites: String,
    client_cert: ClientCert,
}

/// What the files gave: the server's chain and key, and the CAs client certificates must chain to.
struct Material {
    chain: Vec<X509>,
    key: PKey<Private>,
    /// The settings that name the chain and the key, for errors about them.
    chain_setting: Flag,
    key_setting: Flag,
    client_cas: Vec<X509>,
}

/// The TLS configuration and the current certificates.
pub struct Tls {
    pub ftps_port: u16,
    pub login_policy: LoginPolicy,
    pub require_data_tls: bool,
    pub require_session_reuse: bool,
    sources: Sources,
    protocol: Protocol,
    material: RwLock<Arc<Material>>,
}

impl Tls {
    /// The TLS settings, with the certificates loaded and checked; `None` when no certificate is
    /// configured (then no TLS setting may be given).
    pub fn from_settings(s: &Settings) -> Result<Option<Tls>, ConfigError> {
        let Some(identity) = source(s)? else {
            for flag in NEEDS_CERTIFICATE {
                if s.given(flag).is_some_and(|v| !matches!(v, "0" | "no" | "off" | "false")) {
                    return Err(flag.error("needs a certificate: --tls-cert/--tls-key or --tls-pkcs12"));
                }
            }
            return Ok(None);
        };
        let login_policy = match (s.get(&REQUIRE_TLS_LOGIN)?, s.get(&ALLOW_PLAIN_LOGIN)?) {
            (true, true) => return Err(ALLOW_PLAIN_LOGIN.error("contradicts --require-tls-login")),
            (true, false) => LoginPolicy::Always,
            (false, true) => LoginPolicy::Never,
            (false, false) => LoginPolicy::RemoteOnly,
        };
        let sources = Sources { identity, client_ca: s.get(&TLS_CLIENT_CA)? };
        let protocol = protocol(s, sources.client_ca.is_some())?;
        let material = load(&sources)?;
        check(&protocol, &material)?;
        Ok(Some(Tls {
            ftps_port: s.get(&FTPS_PORT)?,
            login_policy,
            require_data_tls: s.get(&REQUIRE_DATA_TLS)?,
            require_session_reuse: s.get(&REQUIRE_SSL_REUSE)?,
            sources,
            protocol,
            material: RwLock::new(Arc::new(material)),
        }))
    }

    /// A TLS context for a new session (its control connection and all its data connections).
    /// Building one costs about 0.4 ms, mostly OpenSSL 3's `SSL_CTX_new`: a third of what a full
    /// handshake costs the server. A context must never serve two sessions (the second could resume
    /// the first's tickets); sharing one safely would take `SSL_set_session_id_context` per
    /// connection, which the openssl crate does not offer.
    // SECURITY: a context (session cache, ticket keys) per FTP session: a data connection can resume
    // only its own session's TLS session.
    pub fn acceptor(&self) -> io::Result<Arc<SslAcceptor>> {
        let material = Arc::clone(&crate::locks::read(&self.material));
        build_acceptor(&self.protocol, &material).map(Arc::new).map_err(io::Error::other)
    }

    /// Re-reads the certificates and keys (SIGHUP). New sessions get them; running sessions keep
    /// theirs. On error the previous ones stay.
    pub fn reload(&self) -> Result<(), ConfigError> {
        let material = load(&self.sources)?;
        check(&self.protocol, &material)?;
        *crate::locks::write(&self.material) = Arc::new(material);
        Ok(())
    }

    /// What `--check-config` and the start-up log say about TLS.
    pub fn describe(&self) -> String {
        let from = match &self.sources.identity {
            Source::Pem { cert, .. } => cert.display().to_string(),
            Source::Pkcs12 { bundle, .. } => bundle.display().to_string(),
        };
        let lowest = if self.protocol.min_version == SslVersion::TLS1_3 { "1.3" } else { "1.2" };
        let clients = match (&self.sources.client_ca, self.protocol.client_cert) {
            (None, _) => "not asked for".to_string(),
            (Some(ca), ClientCert::Optional) => format!("optional, verified against {}", ca.display()),
            (Some(ca), ClientCert::Required) => format!("required, verified against {}", ca.display()),
        };
        format!(
            "TLS {lowest} and up from {from}, client certificates {clients}, login policy {:?}, \
             data TLS required: {}, session reuse required: {}",
            self.login_policy, self.require_data_tls, self.require_session_reuse
        )
    }
}

fn source(s: &Settings) -> Result<Option<Source>, ConfigError> {
    match (s.get(&TLS_CERT)?, s.get(&TLS_KEY)?, s.get(&TLS_PKCS12)?) {
        (None, None, None) => Ok(None),
        (Some(cert), Some(key), None) => Ok(Some(Source::Pem { cert, key })),
        (None, None, Some(bundle)) => {
            Ok(Some(Source::Pkcs12 { bundle, password_file: s.get(&TLS_PKCS12_PASSWORD_FILE)? }))
        }
        (Some(_), None, None) => Err(TLS_KEY.error("required with --tls-cert")),
        (None, Some(_), None) => Err(TLS_CERT.error("required with --tls-key")),
        (_, _, Some(_)) => Err(TLS_PKCS12.error("give either --tls-pkcs12 or --tls-cert/--tls-key")),
    }
}

fn protocol(s: &Settings, client_ca: bool) -> Result<Protocol, ConfigError> {
    let min_version = match s.get(&TLS_MIN_VERSION)?.as_str() {
        "1.2" => SslVersion::TLS1_2,
        "1.3" => SslVersion::TLS1_3,
        // SECURITY: TLS 1.0 and 1.1 are deprecated (RFC 8996) and never offered.
        other => return Err(TLS_MIN_VERSION.error(format!("'{other}' is not 1.2 or 1.3"))),
    };
    let given = s.get(&TLS_CLIENT_CERT)?;
    let client_cert = match given.as_deref() {
        None | Some("optional") => ClientCert::Optional,
        Some("require") => ClientCert::Required,
        Some(other) => return Err(TLS_CLIENT_CERT.error(format!("'{other}' is not optional or require"))),
    };
    if given.is_some() && !client_ca {
        return Err(TLS_CLIENT_CERT.error("needs --tls-client-ca"));
    }
    Ok(Protocol { min_version, ciphers: s.get(&TLS_CIPHERS)?, ciphersuites: s.get(&TLS_CIPHERSUITES)?, client_cert })
}

fn read(setting: Flag, path: &Path) -> Result<Vec<u8>, ConfigError> {
    std::fs::read(path).map_err(|e| setting.error(format!("{}: {e}", path.display())))
}

fn load(sources: &Sources) -> Result<Material, ConfigError> {
    let (chain, key, chain_setting, key_setting) = match &sources.identity {
        Source::Pem { cert, key } => {
            (load_chain(TLS_CERT.flag(), cert)?, load_key(key)?, TLS_CERT.flag(), TLS_KEY.flag())
        }
        Source::Pkcs12 { bundle, password_file } => {
            let (chain, key) = load_pkcs12(bundle, password_file.as_deref())?;
            (chain, key, TLS_PKCS12.flag(), TLS_PKCS12.flag())
        }
    };
    let client_cas = match &sources.client_ca {
        Some(file) => load_chain(TLS_CLIENT_CA.flag(), file)?,
        None => Vec::new(),
    };
    Ok(Material { chain, key, chain_setting, key_setting, client_cas })
}

fn load_chain(setting: Flag, file: &Path) -> Result<Vec<X509>, ConfigError> {
    match X509::stack_from_pem(&read(setting, file)?) {
        Ok(certs) if !certs.is_empty() => Ok(certs),
        Ok(_) => Err(setting.error(format!("{}: no PEM certificate in it", file.display()))),
        Err(e) => Err(setting.error(format!("{}: not PEM certificates ({e})", file.display()))),
    }
}

fn load_key(file: &Path) -> Result<PKey<Private>, ConfigError> {
    // An empty passphrase, not OpenSSL's default of asking on the terminal for an encrypted key.
    PKey::private_key_from_pem_passphrase(&read(TLS_KEY.flag(), file)?, b"").map_err(|e| {
        let why = format!("{}: not an unencrypted PEM private key ({e})", file.display());
        TLS_KEY.error(why)
    })
}

fn load_pkcs12(bundle: &Path, password_file: Option<&Path>) -> Result<(Vec<X509>, PKey<Private>), ConfigError> {
    let der = read(TLS_PKCS12.flag(), bundle)?;
    let password = match password_file {
        Some(file) => {
            let text = read(TLS_PKCS12_PASSWORD_FILE.flag(), file)?;
            String::from_utf8_lossy(&text).lines().next().unwrap_or_default().to_string()
        }
        None => String::new(),
    };
    let wrong = |e: ErrorStack| {
        let why = format!("{}: wrong password or not a PKCS#12 file ({e})", bundle.display());
        TLS_PKCS12.error(why)
    };
    let parsed = Pkcs12::from_der(&der).and_then(|p| p.parse2(&password)).map_err(wrong)?;
    let (Some(cert), Some(key)) = (parsed.cert, parsed.pkey) else {
        let why = format!("{}: holds no certificate with its private key", bundle.display());
        return Err(TLS_PKCS12.error(why));
    };
    let mut chain = vec![cert];
    chain.extend(parsed.ca.into_iter().flatten());
    Ok((chain, key))
}

/// Builds one context from what was loaded, so a mistake is a start-up (or reload) error and not
/// a failed handshake later.
fn check(protocol: &Protocol, material: &Material) -> Result<(), ConfigError> {
    build_acceptor(protocol, material).map(drop)
}

/// A TLS context with `material`'s certificates; on failure, the setting at fault and why.
fn build_acceptor(protocol: &Protocol, material: &Material) -> Result<SslAcceptor, ConfigError> {
    let failed = |setting: Flag, what: String| move |e: ErrorStack| setting.error(format!("{what} ({e})"));
    // Mozilla's intermediate profile (version 5) for the curves and options; ciphers and versions
    // are set below.
    let mut builder = SslAcceptor::mozilla_intermediate_v5(SslMethod::tls())
        .map_err(failed(TLS_CERT.flag(), "cannot set up TLS".into()))?;
    // The server's order of ciphers and TLS 1.3 suites wins, not the client's: OpenSSL clients (curl,
    // lftp, Python) list AES-256-GCM first, which costs more CPU per byte than the AES-128-GCM our
    // lists start with. OpenSSL applies the option to TLS 1.3 suites too, in set_ciphersuites' order.
    builder.set_options(SslOptions::CIPHER_SERVER_PREFERENCE);
    builder
        .set_min_proto_version(Some(protocol.min_version))
        .map_err(failed(TLS_MIN_VERSION.flag(), "cannot set the lowest TLS version".into()))?;
    builder
        .set_cipher_list(&protocol.ciphers)
        .map_err(failed(TLS_CIPHERS.flag(), format!("'{}' names no cipher OpenSSL knows", protocol.ciphers)))?;
    builder
        .set_ciphersuites(&protocol.ciphersuites)
        .map_err(failed(TLS_CIPHERSUITES.flag(), format!("'{}' names no TLS 1.3 suite", protocol.ciphersuites)))?;
    let (leaf, intermediates) = material.chain.split_first().expect("loading checks the chain is not empty");
    builder.set_certificate(leaf).map_err(failed(material.chain_setting, "cannot use the certificate".into()))?;
    for cert in intermediates {
        builder
            .add_extra_chain_cert(cert.clone())
            .map_err(failed(material.chain_setting, "cannot use the certificate chain".into()))?;
    }
    // Checked against the certificate set above.
    builder
        .set_private_key(&material.key)
        .map_err(failed(material.key_setting, "the private key does not match the certificate".into()))?;
    if !material.client_cas.is_empty() {
        for ca in &material.client_cas {
            builder
                .cert_store_mut()
                .add_cert(ca.clone())
                .map_err(failed(TLS_CLIENT_CA.flag(), "cannot use a CA".into()))?;
            builder.add_client_ca(ca).map_err(failed(TLS_CLIENT_CA.flag(), "cannot name a CA".into()))?;
        }
        let mode = match protocol.client_cert {
            ClientCert::Optional => SslVerifyMode::PEER,
            ClientCert::Required => SslVerifyMode::PEER | SslVerifyMode::FAIL_IF_NO_PEER_CERT,
        };
        builder.set_verify(mode);
    }
    // OpenSSL refuses to resume a session whose certificate it checked unless the context has an id.
    builder.set_session_id_context(b"hdfsftpd").map_err(failed(TLS_CERT.flag(), "cannot set up TLS".into()))?;
    Ok(builder.build())
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

    /// Whether bytes were received that OpenSSL has not taken yet.
    fn has_unread(&self) -> bool {
        self.start < self.end
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

/// A TLS connection as the session uses it.
pub type TlsStream = SslStream<Wire>;

/// Which connection a handshake is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Channel {
    Control,
    Data,
}

/// The server side of a handshake on `tcp`, finished within `limit`. The socket's own timeouts are
/// restored afterwards.
pub fn accept(acceptor: &SslAcceptor, tcp: TcpStream, limit: Duration, channel: Channel) -> io::Result<TlsStream> {
    let timeouts = (tcp.read_timeout()?, tcp.write_timeout()?);
    let mut ssl = Ssl::new(acceptor.context()).map_err(io::Error::other)?;
    if channel == Channel::Data {
        // Clients resume the control connection's session, so TLS 1.3 tickets sent here would go
        // unused; and a client that closes a data socket with them unread resets the connection.
        ssl.set_num_tickets(0).map_err(io::Error::other)?;
    }
    let wire = Wire::new(tcp, Instant::now() + limit);
    let mut tls = match ssl.accept(wire) {
        Ok(tls) => tls,
        Err(HandshakeError::SetupFailure(e)) => return Err(io::Error::other(e)),
        Err(HandshakeError::Failure(mid)) => return Err(handshake_failure(&mid)),
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

/// Why a handshake failed, in words for the log: a rejected client certificate, the socket's
/// error, or OpenSSL's.
fn handshake_failure(mid: &MidHandshakeSslStream<Wire>) -> io::Error {
    let verified = mid.ssl().verify_result();
    if verified != X509VerifyResult::OK {
        let why = format!("client certificate rejected: {}", verified.error_string());
        return io::Error::new(io::ErrorKind::PermissionDenied, why);
    }
    match mid.error().io_error() {
        Some(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => {
            io::Error::new(io::ErrorKind::TimedOut, "TLS handshake took too long")
        }
        Some(e) => io::Error::new(e.kind(), e.to_string()),
        None => io::Error::new(io::ErrorKind::InvalidData, mid.error().to_string()),
    }
}

/// Whether the client has ended a TLS connection the server is still sending on (its close_notify, a
/// close or a reset), looking without waiting: why, if it has. A client of a download sends nothing
/// else; a TLS 1.3 KeyUpdate is taken and the connection goes on.
pub fn ended_by_peer(tls: &mut TlsStream) -> Option<io::Error> {
    if !tls.get_ref().has_unread() {
        match arrived(tls.get_ref().tcp()) {
            Ok(false) => return None,
            Ok(true) => {}
            Err(e) => return Some(e),
        }
    }
    // A record arrived: OpenSSL reads it (and, after a KeyUpdate, waits up to the socket's poll timeout
    // for another).
    match tls.read(&mut [0u8; 1]) {
        Ok(0) => Some(io::Error::new(
            io::ErrorKind::ConnectionAborted,
            "the client closed the connection (TLS close_notify) before the end of the file",
        )),
        Ok(_) => None,
        Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => None,
        Err(e) => Some(e),
    }
}

/// Whether anything (bytes, the peer's close) waits to be received on `tcp`, without waiting.
fn arrived(tcp: &TcpStream) -> io::Result<bool> {
    tcp.set_nonblocking(true)?;
    let peeked = tcp.peek(&mut [0u8; 1]);
    tcp.set_nonblocking(false)?;
    match peeked {
        Ok(_) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(false),
        Err(e) => Err(e),
    }
}

/// Whether a connection's error came from TLS itself (a record that does not verify, an alert) rather
/// than from the socket under it: its text is OpenSSL's, with library internals and source file names.
pub fn is_protocol_error(error: &io::Error) -> bool {
    error.get_ref().is_some_and(|inner| inner.is::<openssl::ssl::Error>())
}

/// The protocol, cipher and client certificate of a connection, for the log.
pub fn summary(tls: &TlsStream) -> String {
    let ssl = tls.ssl();
    let cipher = ssl.current_cipher().map_or("no cipher", |c| c.name());
    let resumed = if ssl.session_reused() { ", resumed" } else { "" };
    let client = match ssl.peer_certificate() {
        Some(cert) => {
            let names = cert.subject_name().entries().filter_map(|entry| {
                let value = entry.data().to_string().ok()?;
                Some(format!("{}={value}", entry.object().nid().short_name().unwrap_or("?")))
            });
            format!(", client certificate {}", names.collect::<Vec<_>>().join(","))
        }
        None => String::new(),
    };
    format!("{} {cipher}{resumed}{client}", ssl.version_str())
}

/// Whether a data connection resumed its session's TLS session (the context is the session's own,
/// so no other session can have been resumed).
pub fn resumed(tls: &TlsStream) -> bool {
    tls.ssl().session_reused()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(text: &str) -> Settings {
        Settings::from_file_text(text, "test", &[("TLS", FLAGS)]).unwrap()
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
        let needing = ["ftps-port = 990", "require-data-tls = yes", "tls-min-version = 1.2", "require-ssl-reuse = yes"];
        for text in needing.into_iter().chain(["tls-ciphers = HIGH", "tls-client-ca = ca.pem"]) {
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
