//! A connection as the session sees it: plain TCP, or TLS once FTPS is in play.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use crate::tls::TlsStream;

pub enum Stream {
    Plain(TcpStream),
    /// Boxed: a TLS stream is much larger than a socket.
    Tls(Box<TlsStream>),
    /// Wrapped in blocks by a security layer other than TLS (RFC 2228 GSSAPI, gss_channel.rs).
    #[cfg_attr(not(feature = "krb5"), allow(dead_code))]
    Wrapped(Box<dyn Wrapped>),
}

/// A connection whose bytes a security layer wraps; `flush` sends what is buffered.
pub trait Wrapped: Read + Write + Send {
    fn tcp(&self) -> &TcpStream;
}

impl Stream {
    /// The TCP socket underneath, for timeouts, addresses and shutdown.
    pub fn tcp(&self) -> &TcpStream {
        match self {
            Stream::Plain(tcp) => tcp,
            Stream::Tls(tls) => tls.get_ref().tcp(),
            Stream::Wrapped(wrapped) => wrapped.tcp(),
        }
    }

    pub fn is_tls(&self) -> bool {
        matches!(self, Stream::Tls(_))
    }

    /// Ends the stream cleanly after the last byte: a TLS close_notify, so the client can tell a
    /// complete transfer from a truncated one. Plain TCP needs nothing (closing it is the end).
    pub fn finish(&mut self) -> io::Result<()> {
        match self {
            Stream::Plain(_) => Ok(()),
            Stream::Wrapped(wrapped) => wrapped.flush(),
            Stream::Tls(tls) => {
                tls.shutdown().map_err(|e| e.into_io_error().unwrap_or_else(io::Error::other))?;
                tls.flush()
            }
        }
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(tcp) => tcp.read(buf),
            Stream::Tls(tls) => tls.read(buf),
            Stream::Wrapped(wrapped) => wrapped.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(tcp) => tcp.write(buf),
            Stream::Tls(tls) => tls.write(buf),
            Stream::Wrapped(wrapped) => wrapped.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Stream::Plain(tcp) => tcp.flush(),
            Stream::Tls(tls) => tls.flush(),
            Stream::Wrapped(wrapped) => wrapped.flush(),
        }
    }
}

/// Reads and drops what the peer sent, until it closes, `limit` bytes have come or `within` has passed:
/// closing a socket over unread bytes resets the connection, and the peer would see the reset instead of
/// the refusal it was just sent.
pub fn drain_unread(mut tcp: &TcpStream, within: Duration, limit: usize) {
    let deadline = Instant::now() + within;
    let mut sink = [0u8; 16 << 10];
    let mut drained = 0;
    while drained < limit {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() || tcp.set_read_timeout(Some(left)).is_err() {
            return;
        }
        match tcp.read(&mut sink) {
            Ok(read @ 1..) => drained += read,
            _ => return,
        }
    }
}
