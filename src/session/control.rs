//! The control connection: reading command lines (bounded, Telnet-clean), writing replies, and, while a
//! transfer runs, looking for ABOR and keeping the other commands for after it.

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::time::Duration;

use openssl::ssl::SslAcceptor;

use super::reply::Reply;
use crate::data::{ControlWatch, Interrupt};
use crate::stream::Stream;
use crate::tls::Channel;

/// Longest accepted command line (CRLF not counted); longer ones are discarded whole and answered with 500.
pub const MAX_LINE: usize = 4096;

/// Most bytes of command lines kept for after a transfer. Beyond it the connection is not read until
/// the transfer ends: the client's further commands wait in TCP flow control, nothing is dropped, and a
/// session's memory stays bounded. (vsftpd answers 1,001 pipelined NOOPs, about 6 KB.)
pub const MAX_QUEUED: usize = 64 * 1024;

/// Most command lines kept for after a transfer, whatever their size: each costs a queue entry (and
/// most an allocation), so 64 KiB of bare LFs alone would be 65,536 entries, about 4 MiB.
const MAX_QUEUED_LINES: usize = 4096;

/// Bytes asked for per read: there is always room for them, so a read returning 0 means end of file.
const READ_CHUNK: usize = 4096;

/// What reading the next command line gave.
#[derive(Debug, PartialEq, Eq)]
pub enum Line {
    Text(String),
    /// A protected command (RFC 2228 MIC/ENC) as unwrapped, or the refusal of one that failed its check.
    #[cfg_attr(not(feature = "krb5"), allow(dead_code))]
    Protected {
        command: Result<String, Reply>,
        confidential: bool,
    },
    TooLong,
    NotUtf8,
    Closed,
    TimedOut,
}

pub struct Control {
    stream: Stream,
    pub peer: SocketAddr,
    pub local: SocketAddr,
    /// The peer came through a load balancer whose PROXY header named it.
    pub relayed: bool,
    /// Bytes of the line being received.
    buffer: Vec<u8>,
    /// Inside an over-long line: drop bytes until its end.
    discarding: bool,
    /// Complete lines not handled yet (pipelined commands, or commands sent during a transfer), each
    /// with its size on the wire.
    queued: VecDeque<(Line, usize)>,
    queued_bytes: usize,
    out: Vec<u8>,
    /// The socket's receive timeout as last set here: the control loop asks for the same one before
    /// every command, and setting it again would be a system call per command.
    read_timeout: Option<Duration>,
    /// While a protected command (RFC 2228) is answered: what protects the reply lines.
    seal: Option<Box<dyn ReplySeal>>,
    /// After AUTH GSSAPI: what unwraps protected command lines as they arrive, so ABOR is seen in them.
    unseal: Option<Box<dyn Unseal>>,
}

/// Unwraps a protected command line (`MIC`/`ENC`, RFC 2228) into [`Line::Protected`]; other lines stay.
pub trait Unseal: Send {
    fn unseal(&mut self, line: String) -> Line;
}

/// Turns reply lines into protected ones (RFC 2228: 631/632 and a base64 token per line).
pub trait ReplySeal: Send {
    fn seal(&mut self, wire: &[u8]) -> io::Result<Vec<u8>>;
}

const TELNET_IAC: u8 = 255;
const TELNET_WILL: u8 = 251;
const TELNET_DONT: u8 = 254;

impl Control {
    /// `peer` is the client: the socket's peer, or the one a balancer's PROXY header named.
    pub fn new(stream: Stream, peer: SocketAddr) -> io::Result<Control> {
        let (local, relayed) = (stream.tcp().local_addr()?, stream.tcp().peer_addr()? != peer);
        Ok(Control {
            stream,
            peer,
            local,
            relayed,
            buffer: Vec::with_capacity(READ_CHUNK),
            discarding: false,
            queued: VecDeque::new(),
            queued_bytes: 0,
            out: Vec::new(),
            read_timeout: None,
            seal: None,
            unseal: None,
        })
    }

    pub fn is_tls(&self) -> bool {
        self.stream.is_tls()
    }

    /// Turns the connection into TLS (after the 234 reply to AUTH TLS), the handshake finished
    /// within `limit`. Whatever the client sent after AUTH in clear text is dropped, so it cannot pass
    /// for a protected command.
    pub fn start_tls(&mut self, acceptor: &SslAcceptor, limit: Duration) -> io::Result<()> {
        self.buffer.clear();
        self.discarding = false;
        self.queued.clear();
        self.queued_bytes = 0;
        self.read_timeout = None;
        // A second handle on the socket: the plain one is dropped when the TLS stream takes its place.
        let tcp = self.stream.tcp().try_clone()?;
        let tls = crate::tls::accept(acceptor, tcp, limit, Channel::Control)?;
        log::info!("{}: control connection now {}", self.peer, crate::tls::summary(&tls));
        self.stream = Stream::Tls(Box::new(tls));
        Ok(())
    }

    /// Ends the session's connection in order: over TLS a close_notify, so the client can tell the
    /// end of the session from a cut connection (OpenSSL 3 reports the latter as an error).
    pub fn close(&mut self) {
        if let Err(e) = self.stream.finish() {
            log::debug!("{}: no close_notify on the control connection: {e}", self.peer);
        }
    }

    /// Sends part of a reply that is written as it is made (a multi-line reply's lines).
    pub fn reply_part(&mut self, wire: &[u8]) -> io::Result<()> {
        match self.seal.as_mut() {
            Some(seal) => self.stream.write_all(&seal.seal(wire)?)?,
            None => self.stream.write_all(wire)?,
        }
        self.stream.flush()
    }

    pub fn reply(&mut self, reply: &Reply) -> io::Result<()> {
        let mut out = std::mem::take(&mut self.out);
        out.clear();
        reply.to_wire(&mut out);
        log::debug!("{} <- {}", self.peer, String::from_utf8_lossy(&out).trim_end());
        let sent = self.reply_part(&out);
        self.out = out;
        sent
    }

    /// Command lines from now on unwrapped by `unseal`.
    #[cfg_attr(not(feature = "krb5"), allow(dead_code))]
    pub fn set_unseal(&mut self, unseal: Box<dyn Unseal>) {
        self.unseal = Some(unseal);
    }

    /// Replies from now on protected by `seal` (`None`: in clear again).
    #[cfg_attr(not(feature = "krb5"), allow(dead_code))]
    pub fn set_seal(&mut self, seal: Option<Box<dyn ReplySeal>>) {
        self.seal = seal;
    }

    /// Reads the next command line, waiting at most `timeout`. Lines that came in during a transfer
    /// come first, in the order they were sent.
    pub fn read_line(&mut self, timeout: Duration) -> io::Result<Line> {
        loop {
            if let Some((line, size)) = self.queued.pop_front() {
                self.queued_bytes -= size;
                return Ok(line);
            }
            self.set_read_timeout(timeout)?;
            match self.fill() {
                Ok(0) => return Ok(Line::Closed),
                Ok(_) => {
                    self.take_lines(false);
                }
                Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => {
                    return Ok(Line::TimedOut)
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }

    fn set_read_timeout(&mut self, timeout: Duration) -> io::Result<()> {
        if self.read_timeout != Some(timeout) {
            self.stream.tcp().set_read_timeout(Some(timeout))?;
            self.read_timeout = Some(timeout);
        }
        Ok(())
    }

    /// Reads what the socket has into the buffer, up to a chunk; 0 only at end of file.
    fn fill(&mut self) -> io::Result<usize> {
        let start = self.buffer.len();
        self.buffer.resize(start + READ_CHUNK, 0);
        let result = self.stream.read(&mut self.buffer[start..]);
        let read = *result.as_ref().unwrap_or(&0);
        self.buffer.truncate(start + read);
        result
    }

    /// Moves every complete line from the buffer to the queue; drops the content of an over-long line
    /// as it comes. During a transfer an ABOR line is not queued: true when there was one.
    fn take_lines(&mut self, during_transfer: bool) -> bool {
        let mut abort = false;
        while let Some(end) = self.buffer.iter().position(|&b| b == b'\n') {
            let raw: Vec<u8> = self.buffer.drain(..=end).collect();
            let line = match (std::mem::take(&mut self.discarding), self.unseal.as_mut()) {
                (true, _) => Line::TooLong,
                (false, Some(unseal)) => match parse_line(&raw) {
                    Line::Text(text) => unseal.unseal(text),
                    other => other,
                },
                (false, None) => parse_line(&raw),
            };
            if during_transfer && self.is_abort(&line) {
                abort = true;
                continue;
            }
            self.queued_bytes += raw.len();
            self.queued.push_back((line, raw.len()));
        }
        // SECURITY: a control line is bounded: longer ones are discarded, not buffered.
        // Longer than a line with its CRLF can be, and no end in sight.
        if self.buffer.len() > MAX_LINE + 1 {
            self.discarding = true;
            self.buffer.clear();
        }
        abort
    }

    /// ABOR, protected once the commands must be (a clear one then is not taken as ABOR).
    fn is_abort(&self, line: &Line) -> bool {
        let command = match (line, &self.unseal) {
            (Line::Text(text), None) => text,
            (Line::Protected { command: Ok(command), .. }, Some(_)) => command,
            _ => return false,
        };
        command.trim().eq_ignore_ascii_case("ABOR")
    }

    fn queue_full(&self) -> bool {
        self.queued_bytes >= MAX_QUEUED || self.queued.len() >= MAX_QUEUED_LINES
    }

    fn interrupt_after(&mut self, read: io::Result<usize>) -> io::Result<Interrupt> {
        match read {
            Ok(0) => return Ok(Interrupt::Closed),
            Ok(_) => {}
            Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
        Ok(if self.take_lines(true) { Interrupt::Abort } else { Interrupt::None })
    }
}

impl ControlWatch for Control {
    /// During a transfer: has the client sent ABOR (or gone away)? Reads only what is already there;
    /// other commands are kept for after the transfer.
    fn poll_abort(&mut self) -> io::Result<Interrupt> {
        if self.queue_full() {
            return Ok(Interrupt::None);
        }
        let tcp = self.stream.tcp();
        tcp.set_nonblocking(true)?;
        let read = self.fill();
        self.stream.tcp().set_nonblocking(false)?;
        self.interrupt_after(read)
    }

    /// Like `poll_abort`, but waits up to `wait` for something to arrive.
    fn poll_abort_within(&mut self, wait: Duration) -> io::Result<Interrupt> {
        if self.queue_full() {
            return Ok(Interrupt::None);
        }
        self.set_read_timeout(wait)?;
        let read = self.fill();
        self.interrupt_after(read)
    }
}

/// One received line (its LF included) as a command line.
fn parse_line(raw: &[u8]) -> Line {
    let cleaned = strip_telnet(&raw[..raw.len() - 1]);
    let cleaned = cleaned.strip_suffix(b"\r").unwrap_or(&cleaned);
    if cleaned.len() > MAX_LINE {
        return Line::TooLong;
    }
    match std::str::from_utf8(cleaned) {
        Ok(text) => Line::Text(text.to_string()),
        Err(_) => Line::NotUtf8,
    }
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

    /// A control connection on a real loopback socket, and the client's end of it.
    fn connected() -> (Control, std::net::TcpStream) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, peer) = listener.accept().unwrap();
        (Control::new(Stream::Plain(server), peer).unwrap(), client)
    }

    /// Polls as a transfer does until `done` holds; every poll must find the client still there.
    fn poll_until(control: &mut Control, done: impl Fn(&Control) -> bool) -> bool {
        let mut aborted = false;
        for _ in 0..200 {
            match control.poll_abort_within(Duration::from_millis(20)).unwrap() {
                Interrupt::Closed => panic!("a client still connected was taken as gone"),
                Interrupt::Abort => aborted = true,
                Interrupt::None => {}
            }
            if done(control) {
                return aborted;
            }
        }
        panic!("the sent lines never all arrived");
    }

    fn text(line: &str) -> Line {
        Line::Text(line.into())
    }

    #[test]
    fn commands_sent_during_a_transfer_are_kept_in_order_whatever_their_amount() {
        let (mut control, mut client) = connected();
        let noops = "NOOP\r\n".repeat(2000);
        let long = "X".repeat(MAX_LINE + 1000);
        client.write_all(format!("{noops}{long}\r\nPWD\r\n").as_bytes()).unwrap();
        poll_until(&mut control, |c| c.queued.len() == 2002);
        for _ in 0..2000 {
            assert_eq!(control.read_line(Duration::from_secs(1)).unwrap(), text("NOOP"));
        }
        assert_eq!(control.read_line(Duration::from_secs(1)).unwrap(), Line::TooLong);
        assert_eq!(control.read_line(Duration::from_secs(1)).unwrap(), text("PWD"));
        assert_eq!(control.queued_bytes, 0);
    }

    #[test]
    fn lines_at_the_length_limit_pass_and_longer_ones_do_not() {
        let (mut control, mut client) = connected();
        let at_limit = "A".repeat(MAX_LINE);
        client.write_all(format!("{at_limit}\r\n{at_limit}B\r\nNOOP\r\n").as_bytes()).unwrap();
        assert_eq!(control.read_line(Duration::from_secs(5)).unwrap(), Line::Text(at_limit));
        assert_eq!(control.read_line(Duration::from_secs(5)).unwrap(), Line::TooLong);
        assert_eq!(control.read_line(Duration::from_secs(5)).unwrap(), text("NOOP"));
    }

    #[test]
    fn abor_is_taken_out_and_the_other_lines_stay() {
        let (mut control, mut client) = connected();
        client.write_all(b"NOOP\r\n\xff\xf4\xff\xf2ABOR\r\nPWD\r\n").unwrap();
        assert!(poll_until(&mut control, |c| c.queued.len() == 2));
        assert_eq!(control.read_line(Duration::from_secs(1)).unwrap(), text("NOOP"));
        assert_eq!(control.read_line(Duration::from_secs(1)).unwrap(), text("PWD"));
    }

    #[test]
    fn the_queue_is_bounded_and_the_rest_waits_in_the_socket() {
        let (mut control, mut client) = connected();
        let count = 3 * MAX_QUEUED / 6;
        let sender = std::thread::spawn(move || {
            client.write_all("NOOP\r\n".repeat(count).as_bytes()).unwrap();
            client
        });
        poll_until(&mut control, Control::queue_full);
        for _ in 0..20 {
            control.poll_abort_within(Duration::from_millis(5)).unwrap();
        }
        assert!(control.queued_bytes < MAX_QUEUED + READ_CHUNK, "{} bytes queued", control.queued_bytes);
        for _ in 0..count {
            assert_eq!(control.read_line(Duration::from_secs(5)).unwrap(), text("NOOP"));
        }
        drop(sender.join().unwrap());
        assert_eq!(control.read_line(Duration::from_secs(5)).unwrap(), Line::Closed);
    }

    #[test]
    fn the_queue_is_bounded_in_lines_too() {
        let (mut control, mut client) = connected();
        // Within the byte bound, but each line an entry of the queue.
        let count = 4 * MAX_QUEUED_LINES;
        client.write_all("\n".repeat(count).as_bytes()).unwrap();
        poll_until(&mut control, Control::queue_full);
        for _ in 0..20 {
            control.poll_abort_within(Duration::from_millis(5)).unwrap();
        }
        assert!(control.queued.len() < MAX_QUEUED_LINES + READ_CHUNK, "{} lines queued", control.queued.len());
        for _ in 0..count {
            assert_eq!(control.read_line(Duration::from_secs(5)).unwrap(), text(""));
        }
        drop(client);
        assert_eq!(control.read_line(Duration::from_secs(5)).unwrap(), Line::Closed);
    }

    #[test]
    fn a_closed_connection_is_reported_during_a_transfer() {
        let (mut control, client) = connected();
        drop(client);
        assert_eq!(control.poll_abort_within(Duration::from_secs(5)).unwrap(), Interrupt::Closed);
    }
}
