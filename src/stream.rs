//! A connection as the session sees it: plain TCP, or TLS once FTPS is in play.

use std::io::{self, Read, Write};
use std::net::TcpStream;

use crate::tls::TlsStream;

pub enum Stream {
    Plain(TcpStream),
    /// Boxed: a TLS stream is much larger than a socket.
    Tls(Box<TlsStream>),
}

impl Stream {
    /// The TCP socket underneath, for timeouts, addresses and shutdown.
    pub fn tcp(&self) -> &TcpStream {
        match self {
            Stream::Plain(tcp) => tcp,
            Stream::Tls(tls) => tls.get_ref().tcp(),
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
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(tcp) => tcp.write(buf),
            Stream::Tls(tls) => tls.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Stream::Plain(tcp) => tcp.flush(),
            Stream::Tls(tls) => tls.flush(),
        }
    }
}
