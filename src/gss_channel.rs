//! A data connection under RFC 2228 protection (PROT S or P after AUTH GSSAPI): the bytes travel as
//! blocks, each a 4-byte big-endian length and a GSS-API wrap token of at most the negotiated PBSZ.
//!
//! Reads and writes keep their place inside a block, so a timed-out socket call (the copy loops
//! use short timeouts to watch the control connection) is retried without breaking the framing.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::sync::{Arc, Mutex};

use hdfsftpd_ffi::gssapi::SecurityContext;

use crate::locks::lock;

/// The session's security context, shared by the control connection and its data connections.
pub type SharedContext = Arc<Mutex<SecurityContext>>;

/// More than a krb5 wrap token adds to its message (header, checksum, padding).
const TOKEN_OVERHEAD: usize = 1024;

pub struct GssStream {
    tcp: TcpStream,
    context: SharedContext,
    /// PROT P: encrypted; PROT S: integrity only.
    confidential: bool,
    /// The largest token either side may send (PBSZ).
    max_token: usize,
    /// The largest message whose token fits in `max_token`.
    max_message: usize,
    /// Bytes written and not yet wrapped into a block.
    plain_out: Vec<u8>,
    /// Wire bytes of wrapped blocks, sent up to `wire_sent`.
    wire_out: Vec<u8>,
    wire_sent: usize,
    /// A block being received: its length prefix, then its token.
    wire_in: Vec<u8>,
    /// Unwrapped bytes not yet read, from `plain_in_at`.
    plain_in: Vec<u8>,
    plain_in_at: usize,
}

impl GssStream {
    pub fn new(tcp: TcpStream, context: SharedContext, confidential: bool, pbsz: u32) -> io::Result<GssStream> {
        let max_message = lock(&context).max_message(confidential, pbsz).map_err(io::Error::other)? as usize;
        if max_message == 0 {
            return Err(io::Error::other(format!("PBSZ {pbsz} leaves no room for data")));
        }
        Ok(GssStream {
            tcp,
            context,
            confidential,
            max_token: pbsz as usize,
            max_message,
            plain_out: Vec::new(),
            wire_out: Vec::new(),
            wire_sent: 0,
            wire_in: Vec::new(),
            plain_in: Vec::new(),
            plain_in_at: 0,
        })
    }

    /// Wraps what was written into one block.
    fn seal(&mut self) -> io::Result<()> {
        if self.plain_out.is_empty() {
            return Ok(());
        }
        let token = lock(&self.context).wrap(&self.plain_out, self.confidential).map_err(io::Error::other)?;
        self.plain_out.clear();
        self.wire_out.extend_from_slice(&(token.len() as u32).to_be_bytes());
        self.wire_out.extend_from_slice(&token);
        Ok(())
    }

    /// Sends the wrapped blocks; a timeout leaves the rest for the next call.
    fn drain(&mut self) -> io::Result<()> {
        while self.wire_sent < self.wire_out.len() {
            let sent = self.tcp.write(&self.wire_out[self.wire_sent..])?;
            if sent == 0 {
                return Err(io::ErrorKind::WriteZero.into());
            }
            self.wire_sent += sent;
        }
        self.wire_out.clear();
        self.wire_sent = 0;
        Ok(())
    }

    /// Receives one whole block and unwraps it; `false` at a clean end of the connection.
    fn next_block(&mut self) -> io::Result<bool> {
        loop {
            let wanted = match self.wire_in.len() {
                n if n < 4 => 4,
                _ => 4 + self.token_length()?,
            };
            if self.wire_in.len() == wanted && wanted > 4 {
                break;
            }
            let start = self.wire_in.len();
            self.wire_in.resize(wanted, 0);
            let read = self.tcp.read(&mut self.wire_in[start..]);
            self.wire_in.truncate(start + *read.as_ref().unwrap_or(&0));
            match read? {
                0 if start == 0 => return Ok(false),
                0 => return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "data ended inside a protected block")),
                _ => {}
            }
        }
        let (message, encrypted) = lock(&self.context).unwrap(&self.wire_in[4..]).map_err(io::Error::other)?;
        self.wire_in.clear();
        // SECURITY: under PROT P an integrity-only block is refused: the client agreed to encrypt.
        if self.confidential && !encrypted {
            return Err(io::Error::other("a PROT P data block was not encrypted"));
        }
        (self.plain_in, self.plain_in_at) = (message, 0);
        Ok(true)
    }

    fn token_length(&self) -> io::Result<usize> {
        let length = u32::from_be_bytes(self.wire_in[..4].try_into().expect("4 bytes")) as usize;
        // SECURITY: a block is at most PBSZ bytes: a client cannot make the server buffer more.
        // curl wraps PBSZ bytes of data, not PBSZ bytes of token: a token's overhead is allowed for.
        if length == 0 || length > self.max_token + TOKEN_OVERHEAD {
            return Err(io::Error::other(format!("protected block of {length} bytes (PBSZ is {})", self.max_token)));
        }
        Ok(length)
    }
}

impl Read for GssStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.plain_in_at == self.plain_in.len() {
            if !self.next_block()? {
                return Ok(0);
            }
        }
        let n = buf.len().min(self.plain_in.len() - self.plain_in_at);
        buf[..n].copy_from_slice(&self.plain_in[self.plain_in_at..self.plain_in_at + n]);
        self.plain_in_at += n;
        Ok(n)
    }
}

impl Write for GssStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.drain()?;
        let n = buf.len().min(self.max_message - self.plain_out.len());
        self.plain_out.extend_from_slice(&buf[..n]);
        if self.plain_out.len() == self.max_message {
            self.seal()?;
        }
        Ok(n)
    }

    /// Sends what was written as a block now (the copy loops flush after every chunk).
    fn flush(&mut self) -> io::Result<()> {
        self.seal()?;
        self.drain()
    }
}

impl crate::stream::Wrapped for GssStream {
    fn tcp(&self) -> &TcpStream {
        &self.tcp
    }
}
