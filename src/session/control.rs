//! The control connection: reading command lines (bounded, Telnet-clean), writing replies, and peeking
//! for ABOR while a transfer runs.

use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::time::Duration;

use super::reply::Reply;
use crate::stream::Stream;

/// Longest accepted command line; longer ones are discarded whole and answered with 500.
pub const MAX_LINE: usize = 4096;

/// What reading the next command line gave.
#[derive(Debug, PartialEq, Eq)]
pub enum Line {
    Text(String),
    TooLong,
    NotUtf8,
    Closed,
    TimedOut,
}

pub struct Control {
    stream: Stream,
    pub peer: SocketAddr,
    pub local: SocketAddr,
    buffer: Vec<u8>,
    /// Inside an over-long line: drop bytes until its end.
    discarding: bool,
    out: Vec<u8>,
}

const TELNET_IAC: u8 = 255;
const TELNET_WILL: u8 = 251;
const TELNET_DONT: u8 = 254;

impl Control {
    pub fn new(stream: Stream) -> io::Result<Control> {
        let tcp = stream.tcp();
        let (peer, local) = (tcp.peer_addr()?, tcp.local_addr()?);
        Ok(Control { stream, peer, local, buffer: Vec::with_capacity(MAX_LINE), discarding: false, out: Vec::new() })
    }

    pub fn is_tls(&self) -> bool {
        self.stream.is_tls()
    }

    /// Turns the connection into TLS (after the 234 reply to AUTH TLS), the handshake finished
    /// within `limit`. Whatever the client sent after AUTH in clear text is dropped, so it cannot pass
    /// for a protected command.
    pub fn start_tls(&mut self, acceptor: &native_tls::TlsAcceptor, limit: Duration) -> io::Result<()> {
        self.buffer.clear();
        self.discarding = false;
        // A second handle on the socket: the plain one is dropped when the TLS stream takes its place.
        let tcp = self.stream.tcp().try_clone()?;
        self.stream = Stream::Tls(Box::new(crate::tls::accept(acceptor, tcp, limit)?));
        Ok(())
    }

    pub fn reply(&mut self, reply: &Reply) -> io::Result<()> {
        self.out.clear();
        reply.to_wire(&mut self.out);
        log::debug!("{} <- {}", self.peer, String::from_utf8_lossy(&self.out).trim_end());
        self.stream.write_all(&self.out)?;
        self.stream.flush()
    }

    /// Reads the next command line, waiting at most `timeout`.
    pub fn read_line(&mut self, timeout: Duration) -> io::Result<Line> {
        self.stream.tcp().set_read_timeout(Some(timeout))?;
        loop {
            if let Some(line) = self.take_line() {
                return Ok(line);
            }
            match self.fill() {
                Ok(0) => return Ok(Line::Closed),
                Ok(_) => {}
                Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => {
                    return Ok(Line::TimedOut)
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// Reads whatever is available into the buffer; drops the content of over-long lines on the way.
    fn fill(&mut self) -> io::Result<usize> {
        let start = self.buffer.len();
        self.buffer.resize(MAX_LINE + 2, 0);
        let result = self.stream.read(&mut self.buffer[start..]);
        let read = *result.as_ref().unwrap_or(&0);
        self.buffer.truncate(start + read);
        result
    }

    /// Takes one complete line out of the buffer, if there is one.
    fn take_line(&mut self) -> Option<Line> {
        let Some(end) = self.buffer.iter().position(|&b| b == b'\n') else {
            // SECURITY: a control line is bounded: longer ones are discarded, not buffered.
            if self.buffer.len() > MAX_LINE {
                self.discarding = true;
                self.buffer.clear();
            }
            return None;
        };
        let raw: Vec<u8> = self.buffer.drain(..=end).collect();
        if std::mem::take(&mut self.discarding) {
            return Some(Line::TooLong);
        }
        let cleaned = strip_telnet(&raw[..raw.len() - 1]);
        let cleaned = cleaned.strip_suffix(b"\r").unwrap_or(&cleaned);
        match std::str::from_utf8(cleaned) {
            Ok(text) => Some(Line::Text(text.to_string())),
            Err(_) => Some(Line::NotUtf8),
        }
    }

    /// During a transfer: has the client sent ABOR (or gone away)? Reads only what is already there;
    /// other commands stay buffered for after the transfer.
    pub fn poll_abort(&mut self) -> io::Result<Interrupt> {
        let tcp = self.stream.tcp();
        tcp.set_nonblocking(true)?;
        let read = self.fill();
        self.stream.tcp().set_nonblocking(false)?;
        self.interrupt_after(read)
    }

    /// Like [`Control::poll_abort`], but waits up to `wait` for something to arrive.
    pub fn poll_abort_within(&mut self, wait: Duration) -> io::Result<Interrupt> {
        self.stream.tcp().set_read_timeout(Some(wait))?;
        let read = self.fill();
        self.interrupt_after(read)
    }

    fn interrupt_after(&mut self, read: io::Result<usize>) -> io::Result<Interrupt> {
        match read {
            Ok(0) => return Ok(Interrupt::Closed),
            Ok(_) => {}
            Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
        Ok(if self.take_abort() { Interrupt::Abort } else { Interrupt::None })
    }

    /// Removes the first complete ABOR line from the buffer; true if there was one.
    fn take_abort(&mut self) -> bool {
        let mut start = 0;
        while let Some(len) = self.buffer[start..].iter().position(|&b| b == b'\n') {
            let end = start + len + 1;
            let line = strip_telnet(&self.buffer[start..end]);
            if line.trim_ascii().eq_ignore_ascii_case(b"ABOR") {
                self.buffer.drain(start..end);
                return true;
            }
            start = end;
        }
        false
    }
}

#[derive(Debug, PartialEq, Eq)]
pub enum Interrupt {
    None,
    Abort,
    Closed,
}

/// Removes Telnet commands (RFC 854) clients put before ABOR (IAC IP, IAC DM) or anywhere else;
/// IAC IAC is a literal 0xFF.
fn strip_telnet(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        match (raw[i], raw.get(i + 1)) {
            (TELNET_IAC, Some(&TELNET_IAC)) => {
                out.push(TELNET_IAC);
                i += 2;
            }
            (TELNET_IAC, Some(&option)) if (TELNET_WILL..=TELNET_DONT).contains(&option) => i += 3,
            (TELNET_IAC, _) => i += 2,
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn telnet_sequences_are_removed() {
        assert_eq!(strip_telnet(b"\xff\xf4\xff\xf2ABOR"), b"ABOR");
        assert_eq!(strip_telnet(b"a\xff\xffb"), b"a\xffb");
        assert_eq!(strip_telnet(b"\xff\xfb\x01NOOP"), b"NOOP");
    }
}
