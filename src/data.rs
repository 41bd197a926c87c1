//! Data connections: passive listeners and active connects with their address checks, and the copy
//! loops between storage and socket that watch the control connection for ABOR. The loops see the data
//! connection as a [`DataConnection`] and the control connection as a [`ControlWatch`], so they know
//! nothing of the session and run in unit tests without sockets.

use std::fmt;
use std::io::{self, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use socket2::{Domain, Socket, Type};

use crate::random::random_u64;
use crate::shutdown::Shutdown;
use crate::storage::{ReadFile, WriteFile};
use crate::stream::Stream;

/// Size of the transfer buffer a session allocates once and reuses for every transfer.
pub const BUFFER_SIZE: usize = 1 << 20;

/// How long one blocking socket operation may wait before the loop looks at the control connection.
const POLL_INTERVAL: Duration = Duration::from_millis(200);

/// How often a slow active connect is looked at.
const CONNECT_POLL: Duration = Duration::from_millis(20);

/// How long the end of an upload waits for a killed client's control connection to close.
const CONTROL_CLOSE_GRACE: Duration = Duration::from_millis(25);

/// How much one sendfile call may move before the loop looks at the control connection.
const SENDFILE_CHUNK: usize = 16 << 20;

/// The smallest step of a rate-limited copy loop: below it, system calls would cost more than the pace
/// gains in evenness.
const MIN_LIMITED_CHUNK: usize = 16 << 10;

/// What the control connection says while a transfer runs.
#[derive(Debug, PartialEq, Eq)]
pub enum Interrupt {
    None,
    Abort,
    Closed,
}

/// The control connection as a transfer watches it: has the client sent ABOR, or gone away?
pub trait ControlWatch {
    /// Looks at what has already arrived, without waiting.
    fn poll_abort(&mut self) -> io::Result<Interrupt>;
    /// Like `poll_abort`, but waits up to `wait` for something to arrive.
    fn poll_abort_within(&mut self, wait: Duration) -> io::Result<Interrupt>;
}

/// A data connection as the copy loops see it: bytes both ways, and the plain TCP socket behind it
/// when there is one, for the kernel's zero-copy paths.
pub trait DataConnection: Read + Write {
    fn plain_tcp(&mut self) -> Option<&mut TcpStream>;
    /// Looks, without waiting, whether the client has ended the connection from its side while the
    /// server still sends: why, if it has.
    fn ended_by_client(&mut self) -> Option<io::Error>;
}

impl DataConnection for Stream {
    fn plain_tcp(&mut self) -> Option<&mut TcpStream> {
        match self {
            Stream::Plain(tcp) => Some(tcp),
            Stream::Tls(_) | Stream::Wrapped(_) => None,
        }
    }

    /// Only TLS needs looking at: a plain client that closes early resets the connection and the next
    /// send fails.
    fn ended_by_client(&mut self) -> Option<io::Error> {
        match self {
            Stream::Plain(_) | Stream::Wrapped(_) => None,
            Stream::Tls(tls) => crate::tls::ended_by_peer(tls),
        }
    }
}

/// Opens a passive listener on `local` (the control connection's local address), on a port from
/// `range` when one is configured, from the kernel's ephemeral range otherwise.
pub fn listen_passive(local: IpAddr, range: Option<(u16, u16)>) -> io::Result<TcpListener> {
    let bind = |port: u16| -> io::Result<TcpListener> {
        let socket = Socket::new(Domain::for_address(SocketAddr::new(local, port)), Type::STREAM, None)?;
        // A closed data connection leaves its port in TIME_WAIT for a minute; without this a range of N
        // ports would serve N transfers a minute. A port another session listens on stays refused.
        socket.set_reuse_address(true)?;
        // Accept wakes up this often to look for ABOR (SO_RCVTIMEO applies to accept on Linux).
        socket.set_read_timeout(Some(POLL_INTERVAL))?;
        socket.bind(&SocketAddr::new(local, port).into())?;
        socket.listen(8)?;
        Ok(socket.into())
    };
    // The port is chosen here, never by bind(0): with SO_REUSEADDR and thousands of earlier data
    // connections in TIME_WAIT (a batch of small files), the kernel's own search took 3 ms a PASV, a
    // chosen port 14 microseconds.
    let (lo, hi) = range.unwrap_or_else(ephemeral_ports);
    let span = u64::from(hi - lo) + 1;
    // A start point different per call, so sessions spread out over the range.
    let start = random_u64() % span;
    let mut last_error = io::Error::new(io::ErrorKind::AddrInUse, "no free port in the passive range");
    for step in 0..span {
        let port = lo + ((start + step) % span) as u16;
        match bind(port) {
            Ok(listener) => return Ok(listener),
            Err(e) => last_error = e,
        }
    }
    Err(last_error)
}

/// The kernel's range for ports it picks itself (net.ipv4.ip_local_port_range), read once; Linux's
/// default where it cannot be read.
fn ephemeral_ports() -> (u16, u16) {
    static RANGE: OnceLock<(u16, u16)> = OnceLock::new();
    *RANGE.get_or_init(|| {
        let text = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").unwrap_or_default();
        match text.split_whitespace().map(str::parse::<u16>).collect::<Vec<_>>()[..] {
            [Ok(lo), Ok(hi)] if 0 < lo && lo <= hi => (lo, hi),
            _ => (32768, 60999),
        }
    })
}

/// Why a data connection was not set up.
#[derive(Debug)]
pub enum SetupError {
    /// The client sent ABOR while the server waited.
    Aborted,
    /// The control connection closed while the server waited.
    ControlClosed,
    /// The server is shutting down and the grace period is over.
    ShutDown,
    Failed(io::Error),
}

/// Accepts the data connection, from the control connection's peer only: connections from any
/// other address (a hijack attempt) are dropped and logged. Watches the control connection for ABOR,
/// and `shutdown`, while it waits.
pub fn accept_passive(
    listener: &TcpListener,
    peer: IpAddr,
    timeout: Duration,
    control: &mut dyn ControlWatch,
    shutdown: &Shutdown,
) -> Result<TcpStream, SetupError> {
    let deadline = Instant::now() + timeout;
    loop {
        match listener.accept() {
            // SECURITY: passive data connections only from the control connection's peer (RFC 2577).
            Ok((stream, from)) if same_host(from.ip(), peer) => {
                prepare(&stream).map_err(SetupError::Failed)?;
                return Ok(stream);
            }
            Ok((_, from)) => {
                log::warn!("passive data connection from {from} refused: the control connection is from {peer}")
            }
            Err(e) if is_timeout(&e) => {}
            Err(e) => return Err(SetupError::Failed(e)),
        }
        still_wanted(control, shutdown)?;
        if Instant::now() >= deadline {
            let late = io::Error::new(io::ErrorKind::TimedOut, "no data connection arrived in time");
            return Err(SetupError::Failed(late));
        }
    }
}

/// Connects to the client's PORT/EPRT address, giving up after `timeout`, or at ABOR, the control
/// connection's close or `shutdown`, as `accept_passive` does.
pub fn connect_active(
    target: SocketAddr,
    timeout: Duration,
    control: &mut dyn ControlWatch,
    shutdown: &Shutdown,
) -> Result<TcpStream, SetupError> {
    let deadline = Instant::now() + timeout;
    let socket = Socket::new(Domain::for_address(target), Type::STREAM, None).map_err(SetupError::Failed)?;
    // Nearly every connection is up within the first poll interval; a slower one (a client behind a
    // firewall that drops the SYN) is looked at until the deadline, so ABOR and a shutdown do not wait.
    match socket.connect_timeout(&target.into(), POLL_INTERVAL.min(timeout)) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::TimedOut => wait_connected(&socket, deadline, control, shutdown)?,
        Err(e) => return Err(SetupError::Failed(e)),
    }
    let stream = TcpStream::from(socket);
    prepare(&stream).map_err(SetupError::Failed)?;
    Ok(stream)
}

/// Waits for a connect still in progress to succeed or fail, until `deadline`, ABOR or `shutdown`.
fn wait_connected(
    socket: &Socket,
    deadline: Instant,
    control: &mut dyn ControlWatch,
    shutdown: &Shutdown,
) -> Result<(), SetupError> {
    loop {
        if let Some(refused) = socket.take_error().map_err(SetupError::Failed)? {
            return Err(SetupError::Failed(refused));
        }
        if socket.peer_addr().is_ok() {
            return Ok(());
        }
        still_wanted(control, shutdown)?;
        if Instant::now() >= deadline {
            return Err(SetupError::Failed(io::ErrorKind::TimedOut.into()));
        }
        std::thread::sleep(CONNECT_POLL);
    }
}

/// While a data connection is set up: has the client sent ABOR or gone away, or are transfers being
/// stopped? Looks only at what has already arrived.
fn still_wanted(control: &mut dyn ControlWatch, shutdown: &Shutdown) -> Result<(), SetupError> {
    match control.poll_abort() {
        Ok(Interrupt::None) => {}
        Ok(Interrupt::Abort) => return Err(SetupError::Aborted),
        Ok(Interrupt::Closed) | Err(_) => return Err(SetupError::ControlClosed),
    }
    match shutdown.transfers_aborted() {
        true => Err(SetupError::ShutDown),
        false => Ok(()),
    }
}

/// Why an active-mode target is refused (RFC 2577 bounce protection).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ForeignTarget {
    /// Not the client's own address.
    OtherHost { peer: IpAddr, target: IpAddr },
    /// A port below 1024.
    PrivilegedPort(u16),
}

impl fmt::Display for ForeignTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ForeignTarget::OtherHost { peer, target } => {
                write!(f, "data connections go to your own address ({peer}) only, not {target}")
            }
            ForeignTarget::PrivilegedPort(port) => {
                write!(f, "data connections to privileged ports ({port}) are refused")
            }
        }
    }
}

impl std::error::Error for ForeignTarget {}

/// Refuses an active-mode target other than the client's own unprivileged ports.
pub fn check_active_target(target: SocketAddr, peer: IpAddr, allow_foreign: bool) -> Result<(), ForeignTarget> {
    if allow_foreign {
        return Ok(());
    }
    // SECURITY: no bounce (RFC 2577): PORT/EPRT only to the client's own address, unprivileged
    // ports, unless --allow-foreign-port.
    if !same_host(target.ip(), peer) {
        return Err(ForeignTarget::OtherHost { peer, target: target.ip() });
    }
    if target.port() < 1024 {
        return Err(ForeignTarget::PrivilegedPort(target.port()));
    }
    Ok(())
}

/// Compares addresses, treating an IPv4-mapped IPv6 address as the IPv4 one.
fn same_host(a: IpAddr, b: IpAddr) -> bool {
    a.to_canonical() == b.to_canonical()
}

fn prepare(stream: &TcpStream) -> io::Result<()> {
    stream.set_read_timeout(Some(POLL_INTERVAL))?;
    stream.set_write_timeout(Some(POLL_INTERVAL))
}

/// How a transfer ended.
#[derive(Debug)]
pub enum Outcome {
    Complete,
    /// The client sent ABOR.
    Aborted,
    /// The control connection closed under the transfer.
    ControlClosed,
    /// The server is shutting down and the grace period is over.
    ShutDown,
    /// The data connection failed or stalled (the client side).
    DataFailed(io::Error),
    /// Reading or writing storage failed (the server side).
    StorageFailed(io::Error),
}

/// Watches the transfer: ABOR and a vanished client end it; so does no progress for `stall_limit`.
pub struct Watch<'a> {
    control: &'a mut dyn ControlWatch,
    stall_limit: Duration,
    shutdown: &'a Shutdown,
    pub bytes: u64,
    last_progress: Instant,
    /// When, and after how many bytes, the control connection was last looked at.
    polled_at: Instant,
    polled_bytes: u64,
    /// Where `bytes` is published for `--who`.
    published: Option<Arc<AtomicU64>>,
    /// The rate limit (bytes per second) and when the transfer started, which sets its pace.
    rate: Option<u64>,
    started: Instant,
}

impl<'a> Watch<'a> {
    pub fn new(control: &'a mut dyn ControlWatch, stall_limit: Duration, shutdown: &'a Shutdown) -> Self {
        let now = Instant::now();
        Watch {
            control,
            stall_limit,
            shutdown,
            bytes: 0,
            last_progress: now,
            polled_at: now,
            polled_bytes: 0,
            published: None,
            rate: None,
            started: now,
        }
    }

    /// Holds the transfer to `rate` bytes per second (`None`: as fast as it goes).
    pub fn limited_to(self, rate: Option<u64>) -> Self {
        Watch { rate, ..self }
    }

    /// The most one step of a copy loop may move: `default`, or under a rate limit a tenth of a second's
    /// worth, so the pace is even and ABOR is seen within one step.
    pub fn chunk_size(&self, default: usize) -> usize {
        match self.rate {
            None => default,
            Some(rate) => default.min(usize::try_from(rate / 10).unwrap_or(usize::MAX).max(MIN_LIMITED_CHUNK)),
        }
    }

    /// Under a rate limit, waits until the bytes moved so far are due, looking at the control
    /// connection at least every poll interval meanwhile.
    fn keep_pace(&mut self) -> Option<Outcome> {
        let rate = self.rate?;
        loop {
            let due = Duration::from_secs_f64(self.bytes as f64 / rate as f64);
            let ahead = due.checked_sub(self.started.elapsed())?;
            std::thread::sleep(ahead.min(POLL_INTERVAL));
            // Waiting on purpose is not a stalled client.
            self.last_progress = Instant::now();
            if let Some(end) = self.interrupted() {
                return Some(end);
            }
        }
    }

    /// Has the server stopped transfers, or the client sent ABOR or left?
    fn interrupted(&mut self) -> Option<Outcome> {
        if self.shutdown.transfers_aborted() {
            return Some(Outcome::ShutDown);
        }
        let interrupt = self.control.poll_abort();
        self.end_by(interrupt)
    }

    /// Publishes the byte count to `counter` as the transfer goes (one relaxed store per chunk).
    pub fn publishing(self, counter: Arc<AtomicU64>) -> Self {
        Watch { published: Some(counter), ..self }
    }

    fn progress(&mut self, bytes: u64) {
        if bytes > 0 {
            self.bytes += bytes;
            self.last_progress = Instant::now();
            if let Some(published) = &self.published {
                published.store(self.bytes, Ordering::Relaxed);
            }
        }
    }

    /// Called between chunks and after socket timeouts: `Some` ends the transfer. The control
    /// connection (three system calls) is looked at once a buffer's worth of data or once a poll
    /// interval, whichever comes first, however small the chunks the kernel hands over.
    fn check(&mut self) -> Option<Outcome> {
        if self.shutdown.transfers_aborted() {
            return Some(Outcome::ShutDown);
        }
        if let Some(end) = self.keep_pace() {
            return Some(end);
        }
        let due = self.bytes - self.polled_bytes >= BUFFER_SIZE as u64 || self.polled_at.elapsed() >= POLL_INTERVAL;
        if !due {
            return None;
        }
        (self.polled_at, self.polled_bytes) = (Instant::now(), self.bytes);
        self.interrupted()
    }

    /// Called when an upload's data connection ends. A client killed mid-upload closes its data
    /// connection just as one that finished does, and its control connection microseconds later (the
    /// kernel closes a dying process's sockets one after the other). Where finishing publishes the
    /// upload (atomic uploads), wait that long for the control connection before calling the upload
    /// complete, so a killed upload is never published as whole; elsewhere only look.
    fn check_client_alive(&mut self, publishes: bool) -> Option<Outcome> {
        let interrupt = match publishes {
            true => self.control.poll_abort_within(CONTROL_CLOSE_GRACE),
            false => self.control.poll_abort(),
        };
        self.end_by(interrupt)
    }

    fn end_by(&mut self, interrupt: io::Result<Interrupt>) -> Option<Outcome> {
        match interrupt {
            Ok(Interrupt::Abort) => return Some(Outcome::Aborted),
            Ok(Interrupt::Closed) => return Some(Outcome::ControlClosed),
            Err(e) => {
                log::debug!("control connection error during transfer: {e}");
                return Some(Outcome::ControlClosed);
            }
            Ok(Interrupt::None) => {}
        }
        if self.last_progress.elapsed() > self.stall_limit {
            let stalled = io::Error::new(io::ErrorKind::TimedOut, "data connection stalled");
            return Some(Outcome::DataFailed(stalled));
        }
        None
    }
}

fn is_timeout(e: &io::Error) -> bool {
    matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut | io::ErrorKind::Interrupted)
}

/// Download: storage → client. Local files in binary mode over plain TCP go through sendfile.
pub fn send(
    file: &mut dyn ReadFile,
    data: &mut dyn DataConnection,
    ascii: bool,
    buffer: &mut [u8],
    watch: &mut Watch,
) -> Outcome {
    if !ascii {
        if let (Some(local), Some(tcp)) = (file.as_local_file(), data.plain_tcp()) {
            return send_zero_copy(local, tcp, watch);
        }
    }
    let mut converter = ascii.then(AsciiOut::default);
    loop {
        if let Some(end) = watch.check() {
            return end;
        }
        let step = watch.chunk_size(buffer.len());
        // From the reader's own buffer when it lends one, into ours otherwise.
        let read = if file.lends() { file.lend(step) } else { file.read(&mut buffer[..step]).map(|n| &buffer[..n]) };
        let read = match read {
            Ok([]) => return Outcome::Complete,
            Ok(bytes) => bytes,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Outcome::StorageFailed(e),
        };
        // Looked at while bytes remain to be sent, so a client that ended the connection then cannot have
        // taken the file whole (a Java client closing a TLS download early reads on after its
        // close_notify, dropping what comes, so sends do not fail).
        if let Some(why) = data.ended_by_client() {
            return Outcome::DataFailed(why);
        }
        let chunk = match converter.as_mut() {
            Some(converter) => converter.convert(read),
            None => read,
        };
        if let Some(end) = write_all_watched(data, chunk, watch) {
            return end;
        }
    }
}

/// Reads a file to its end into `consume` (HASH), looking at the control connection between chunks as a
/// download does, so ABOR, a vanished client and shutdown end it.
pub fn read_watched(
    file: &mut dyn Read,
    buffer: &mut [u8],
    watch: &mut Watch,
    mut consume: impl FnMut(&[u8]) -> io::Result<()>,
) -> Outcome {
    loop {
        if let Some(end) = watch.check() {
            return end;
        }
        let read = match file.read(buffer) {
            Ok(0) => return Outcome::Complete,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Outcome::StorageFailed(e),
        };
        if let Err(e) = consume(&buffer[..read]) {
            return Outcome::StorageFailed(e);
        }
        watch.progress(read as u64);
    }
}

/// Writes a chunk and flushes it, waking every poll interval to look at the control connection.
pub fn write_all_watched(data: &mut dyn DataConnection, mut chunk: &[u8], watch: &mut Watch) -> Option<Outcome> {
    while !chunk.is_empty() {
        match data.write(chunk) {
            Ok(0) => return Some(Outcome::DataFailed(io::ErrorKind::WriteZero.into())),
            Ok(n) => {
                watch.progress(n as u64);
                chunk = &chunk[n..];
            }
            Err(e) if is_timeout(&e) => {
                if let Some(end) = watch.check() {
                    return Some(end);
                }
            }
            Err(e) => return Some(Outcome::DataFailed(e)),
        }
    }
    // TLS gathers records before sending them: the chunk is out only once flushed.
    loop {
        match data.flush() {
            Ok(()) => return None,
            Err(e) if is_timeout(&e) => {
                if let Some(end) = watch.check() {
                    return Some(end);
                }
            }
            Err(e) => return Some(Outcome::DataFailed(e)),
        }
    }
}

fn send_zero_copy(file: &mut std::fs::File, tcp: &mut TcpStream, watch: &mut Watch) -> Outcome {
    loop {
        if let Some(end) = watch.check() {
            return end;
        }
        match hdfsftpd_ffi::zero_copy::sendfile(tcp, file, watch.chunk_size(SENDFILE_CHUNK)) {
            Ok(0) => return Outcome::Complete,
            Ok(sent) => watch.progress(sent as u64),
            Err(e) if is_timeout(&e) => {}
            Err(e) => return Outcome::DataFailed(e),
        }
    }
}

/// Upload: client → storage.
pub fn receive(
    data: &mut dyn DataConnection,
    file: &mut dyn WriteFile,
    ascii: bool,
    buffer: &mut [u8],
    watch: &mut Watch,
) -> Outcome {
    if !ascii {
        if let (Some(tcp), Some(local)) = (data.plain_tcp(), file.as_local_file()) {
            return receive_zero_copy(tcp, local, watch);
        }
    }
    let mut converter = ascii.then(AsciiIn::default);
    loop {
        let step = watch.chunk_size(buffer.len());
        let (read, stop) = fill(data, &mut buffer[..step]);
        watch.progress(read as u64);
        let chunk = match converter.as_mut() {
            Some(converter) => converter.convert(&buffer[..read]),
            None => &buffer[..read],
        };
        if let Err(e) = file.write_all(chunk) {
            return Outcome::StorageFailed(e);
        }
        match stop {
            Ok(true) => match watch.check_client_alive(file.publishes_on_finish()) {
                Some(end) => return end,
                None => break,
            },
            Err(e) if !is_timeout(&e) => return Outcome::DataFailed(e),
            Ok(false) | Err(_) => {}
        }
        if let Some(end) = watch.check() {
            return end;
        }
    }
    if let Some(trailing) = converter.and_then(|c| c.finish()) {
        if let Err(e) = file.write_all(&[trailing]) {
            return Outcome::StorageFailed(e);
        }
    }
    Outcome::Complete
}

/// Reads into `buffer` until it is full (`Ok(false)`), the stream ends (`Ok(true)`), a read fails or
/// times out, or a poll interval has passed; returns the bytes read with why it stopped. TLS hands
/// over one 16 KiB record per read: filling the buffer keeps storage writes and control-connection
/// checks per buffer rather than per record.
fn fill(data: &mut dyn DataConnection, buffer: &mut [u8]) -> (usize, io::Result<bool>) {
    let started = Instant::now();
    let mut filled = 0;
    while filled < buffer.len() && started.elapsed() < POLL_INTERVAL {
        match data.read(&mut buffer[filled..]) {
            Ok(0) => return (filled, Ok(true)),
            Ok(n) => filled += n,
            Err(e) => return (filled, Err(e)),
        }
    }
    (filled, Ok(false))
}

/// Binary upload of a local file over plain TCP: spliced from the socket through a pipe into the file.
fn receive_zero_copy(tcp: &TcpStream, file: &mut std::fs::File, watch: &mut Watch) -> Outcome {
    let pipe = match hdfsftpd_ffi::zero_copy::SplicePipe::new(BUFFER_SIZE) {
        Ok(pipe) => pipe,
        Err(e) => return Outcome::StorageFailed(e),
    };
    loop {
        match pipe.fill_from(tcp, watch.chunk_size(BUFFER_SIZE)) {
            Ok(0) => return watch.check_client_alive(false).unwrap_or(Outcome::Complete),
            Ok(moved) => {
                watch.progress(moved as u64);
                if let Err(e) = pipe.drain_to(file, moved) {
                    return Outcome::StorageFailed(e);
                }
            }
            Err(e) if is_timeout(&e) => {}
            Err(e) => return Outcome::DataFailed(e),
        }
        if let Some(end) = watch.check() {
            return end;
        }
    }
}

/// TYPE A download: bare LF becomes CRLF; CRLF already in the file stays as it is.
#[derive(Default)]
struct AsciiOut {
    out: Vec<u8>,
    last: u8,
}

impl AsciiOut {
    fn convert(&mut self, input: &[u8]) -> &[u8] {
        self.out.clear();
        for &byte in input {
            if byte == b'\n' && self.last != b'\r' {
                self.out.push(b'\r');
            }
            self.out.push(byte);
            self.last = byte;
        }
        &self.out
    }
}

/// TYPE A upload: CRLF becomes LF; a lone CR is kept. A CR at the end of a chunk waits for the next.
#[derive(Default)]
struct AsciiIn {
    out: Vec<u8>,
    pending_cr: bool,
}

impl AsciiIn {
    fn convert(&mut self, input: &[u8]) -> &[u8] {
        self.out.clear();
        for &byte in input {
            if std::mem::take(&mut self.pending_cr) && byte != b'\n' {
                self.out.push(b'\r');
            }
            if byte == b'\r' {
                self.pending_cr = true;
            } else {
                self.out.push(byte);
            }
        }
        &self.out
    }

    /// A CR that ended the upload.
    fn finish(self) -> Option<u8> {
        self.pending_cr.then_some(b'\r')
    }
}

/// Data connections in memory, for unit tests and the dispatch fuzz target (`session::doubles`).
#[cfg(any(test, feature = "fuzzing"))]
mod memory {
    use super::*;

    /// Reads come from `incoming`, writes go to `sent`. A stalled one times out on every write, as a
    /// socket whose reader stopped reading does.
    #[derive(Default)]
    pub struct MemoryConnection {
        pub incoming: io::Cursor<Vec<u8>>,
        pub sent: Vec<u8>,
        pub stalled: bool,
        /// The client ends the connection once this much has been sent.
        pub client_ends_after: Option<usize>,
    }

    impl Read for MemoryConnection {
        fn read(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
            self.incoming.read(buffer)
        }
    }

    impl Write for MemoryConnection {
        fn write(&mut self, chunk: &[u8]) -> io::Result<usize> {
            if self.stalled {
                std::thread::sleep(Duration::from_millis(5));
                return Err(io::ErrorKind::WouldBlock.into());
            }
            self.sent.extend_from_slice(chunk);
            Ok(chunk.len())
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl DataConnection for MemoryConnection {
        fn plain_tcp(&mut self) -> Option<&mut TcpStream> {
            None
        }

        fn ended_by_client(&mut self) -> Option<io::Error> {
            let ended = self.client_ends_after.is_some_and(|after| self.sent.len() >= after);
            ended.then(|| io::ErrorKind::ConnectionAborted.into())
        }
    }
}

#[cfg(any(test, feature = "fuzzing"))]
pub use memory::MemoryConnection;

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::VecDeque;

    /// A control connection that answers polls from a script, then with `None`.
    #[derive(Default)]
    struct ScriptedControl {
        answers: VecDeque<Interrupt>,
        polls: usize,
    }

    impl ScriptedControl {
        fn answering(answer: Interrupt) -> ScriptedControl {
            ScriptedControl { answers: VecDeque::from([answer]), polls: 0 }
        }
    }

    impl ControlWatch for ScriptedControl {
        fn poll_abort(&mut self) -> io::Result<Interrupt> {
            self.polls += 1;
            Ok(self.answers.pop_front().unwrap_or(Interrupt::None))
        }

        fn poll_abort_within(&mut self, _wait: Duration) -> io::Result<Interrupt> {
            self.poll_abort()
        }
    }

    struct MemoryFile(io::Cursor<Vec<u8>>);

    impl Read for MemoryFile {
        fn read(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
            self.0.read(buffer)
        }
    }

    impl ReadFile for MemoryFile {}

    /// A reader that lends its bytes (as the HDFS reader does once its thread runs), never reading
    /// into the caller's buffer.
    struct LendingFile {
        data: Vec<u8>,
        position: usize,
    }

    impl Read for LendingFile {
        fn read(&mut self, _buffer: &mut [u8]) -> io::Result<usize> {
            panic!("a lending reader is not read into a buffer")
        }
    }

    impl ReadFile for LendingFile {
        fn lends(&self) -> bool {
            true
        }

        fn lend(&mut self, max: usize) -> io::Result<&[u8]> {
            let n = max.min(self.data.len() - self.position);
            self.position += n;
            Ok(&self.data[self.position - n..self.position])
        }
    }

    #[derive(Default)]
    struct MemoryUpload(Vec<u8>);

    impl Write for MemoryUpload {
        fn write(&mut self, chunk: &[u8]) -> io::Result<usize> {
            self.0.extend_from_slice(chunk);
            Ok(chunk.len())
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl WriteFile for MemoryUpload {
        fn finish(self: Box<Self>) -> crate::storage::Result<()> {
            Ok(())
        }
    }

    /// Bytes no two megabytes of which are alike, so a lost or repeated chunk shows.
    fn payload(size: usize) -> Vec<u8> {
        (0..size).map(|i| (i % 251) as u8 ^ (i >> 20) as u8).collect()
    }

    const STALL_LIMIT: Duration = Duration::from_secs(60);

    #[test]
    fn send_copies_every_byte_and_counts_them() {
        let data = payload(3 * BUFFER_SIZE + 17);
        let (mut file, mut connection) = (MemoryFile(io::Cursor::new(data.clone())), MemoryConnection::default());
        let (mut control, shutdown, mut buffer) = (ScriptedControl::default(), Shutdown::default(), vec![0; 64 << 10]);
        let mut watch = Watch::new(&mut control, STALL_LIMIT, &shutdown);
        let outcome = send(&mut file, &mut connection, false, &mut buffer, &mut watch);
        assert!(matches!(outcome, Outcome::Complete), "{outcome:?}");
        assert_eq!(watch.bytes, data.len() as u64);
        assert!(connection.sent == data, "the bytes sent differ from the file");
        assert!(control.polls >= 3, "the control connection is looked at once a buffer's worth at least");
    }

    #[test]
    fn send_takes_a_lending_reader_s_bytes_in_buffer_sized_steps() {
        let data = payload(3 * BUFFER_SIZE + 17);
        let mut file = LendingFile { data: data.clone(), position: 0 };
        let mut connection = MemoryConnection::default();
        let (mut control, shutdown, mut buffer) = (ScriptedControl::default(), Shutdown::default(), vec![0; 64 << 10]);
        let mut watch = Watch::new(&mut control, STALL_LIMIT, &shutdown);
        let outcome = send(&mut file, &mut connection, false, &mut buffer, &mut watch);
        assert!(matches!(outcome, Outcome::Complete), "{outcome:?}");
        assert_eq!(watch.bytes, data.len() as u64);
        assert!(connection.sent == data, "the bytes sent differ from the file");
        assert!(control.polls >= 3, "the control connection is looked at once a buffer's worth at least");
    }

    #[test]
    fn receive_writes_every_byte_and_ascii_converts_line_ends() {
        let data = payload(2 * BUFFER_SIZE + 3);
        let mut connection = MemoryConnection { incoming: io::Cursor::new(data.clone()), ..Default::default() };
        let (mut control, shutdown, mut buffer) =
            (ScriptedControl::default(), Shutdown::default(), vec![0; BUFFER_SIZE]);
        let mut upload = MemoryUpload::default();
        let mut watch = Watch::new(&mut control, STALL_LIMIT, &shutdown);
        let outcome = receive(&mut connection, &mut upload, false, &mut buffer, &mut watch);
        assert!(matches!(outcome, Outcome::Complete), "{outcome:?}");
        assert!(upload.0 == data, "the file differs from the bytes received");

        let mut connection =
            MemoryConnection { incoming: io::Cursor::new(b"a\r\nb\rc\r\n".to_vec()), ..Default::default() };
        let mut upload = MemoryUpload::default();
        let mut watch = Watch::new(&mut control, STALL_LIMIT, &shutdown);
        assert!(matches!(receive(&mut connection, &mut upload, true, &mut buffer, &mut watch), Outcome::Complete));
        assert_eq!(upload.0, b"a\nb\rc\n");
    }

    #[test]
    fn abor_ends_a_download_and_a_vanished_client_an_upload() {
        let data = payload(3 * BUFFER_SIZE);
        let mut file = MemoryFile(io::Cursor::new(data.clone()));
        let mut connection = MemoryConnection::default();
        let (mut control, shutdown, mut buffer) =
            (ScriptedControl::answering(Interrupt::Abort), Shutdown::default(), vec![0; 64 << 10]);
        let mut watch = Watch::new(&mut control, STALL_LIMIT, &shutdown);
        assert!(matches!(send(&mut file, &mut connection, false, &mut buffer, &mut watch), Outcome::Aborted));
        assert!(connection.sent.len() < data.len(), "ABOR must end the transfer early");

        let mut connection = MemoryConnection { incoming: io::Cursor::new(data), ..Default::default() };
        let mut control = ScriptedControl::answering(Interrupt::Closed);
        let mut watch = Watch::new(&mut control, STALL_LIMIT, &shutdown);
        let outcome = receive(&mut connection, &mut MemoryUpload::default(), false, &mut buffer, &mut watch);
        assert!(matches!(outcome, Outcome::ControlClosed), "{outcome:?}");
    }

    #[test]
    fn a_download_the_client_ended_early_fails_and_one_ended_after_the_last_byte_completes() {
        let data = payload(3 * BUFFER_SIZE);
        let (mut control, shutdown, mut buffer) = (ScriptedControl::default(), Shutdown::default(), vec![0; 64 << 10]);
        let mut file = MemoryFile(io::Cursor::new(data.clone()));
        let mut connection = MemoryConnection { client_ends_after: Some(100_000), ..Default::default() };
        let mut watch = Watch::new(&mut control, STALL_LIMIT, &shutdown);
        let outcome = send(&mut file, &mut connection, false, &mut buffer, &mut watch);
        assert!(matches!(outcome, Outcome::DataFailed(_)), "{outcome:?}");
        assert!(connection.sent.len() < 100_000 + buffer.len(), "the end is seen within one chunk");

        let mut file = MemoryFile(io::Cursor::new(data.clone()));
        let mut connection = MemoryConnection { client_ends_after: Some(data.len()), ..Default::default() };
        let mut watch = Watch::new(&mut control, STALL_LIMIT, &shutdown);
        let outcome = send(&mut file, &mut connection, false, &mut buffer, &mut watch);
        assert!(matches!(outcome, Outcome::Complete), "{outcome:?}");
    }

    #[test]
    fn shutdown_after_the_grace_period_stops_a_transfer() {
        let mut file = MemoryFile(io::Cursor::new(payload(BUFFER_SIZE)));
        let (mut control, shutdown, mut buffer) = (ScriptedControl::default(), Shutdown::default(), vec![0; 64 << 10]);
        shutdown.begin();
        let mut connection = MemoryConnection::default();
        let mut watch = Watch::new(&mut control, STALL_LIMIT, &shutdown);
        assert!(matches!(send(&mut file, &mut connection, false, &mut buffer, &mut watch), Outcome::Complete));
        shutdown.abort_transfers();
        let mut file = MemoryFile(io::Cursor::new(payload(BUFFER_SIZE)));
        let mut watch = Watch::new(&mut control, STALL_LIMIT, &shutdown);
        assert!(matches!(send(&mut file, &mut connection, false, &mut buffer, &mut watch), Outcome::ShutDown));
    }

    #[test]
    fn a_stalled_data_connection_fails_after_the_stall_limit() {
        let mut file = MemoryFile(io::Cursor::new(payload(BUFFER_SIZE)));
        let mut connection = MemoryConnection { stalled: true, ..Default::default() };
        let (mut control, shutdown, mut buffer) = (ScriptedControl::default(), Shutdown::default(), vec![0; 64 << 10]);
        let mut watch = Watch::new(&mut control, Duration::from_millis(50), &shutdown);
        match send(&mut file, &mut connection, false, &mut buffer, &mut watch) {
            Outcome::DataFailed(e) => assert_eq!(e.kind(), io::ErrorKind::TimedOut, "{e}"),
            other => panic!("a stalled connection must fail, not {other:?}"),
        }
    }

    #[test]
    fn ascii_conversion_survives_chunk_boundaries() {
        let mut down = AsciiOut::default();
        assert_eq!(down.convert(b"a\nb\r"), b"a\r\nb\r");
        assert_eq!(down.convert(b"\nc\n"), b"\nc\r\n");
        let mut up = AsciiIn::default();
        assert_eq!(up.convert(b"a\r\nb\r"), b"a\nb");
        assert_eq!(up.convert(b"\nc\rd"), b"\nc\rd");
        assert_eq!(up.convert(b"e\r"), b"e");
        assert_eq!(up.finish(), Some(b'\r'));
    }

    #[test]
    fn active_targets_are_checked() {
        let peer: IpAddr = "127.0.0.1".parse().unwrap();
        assert!(check_active_target("127.0.0.1:5000".parse().unwrap(), peer, false).is_ok());
        let foreign = "127.0.0.2".parse().unwrap();
        assert_eq!(
            check_active_target("127.0.0.2:5000".parse().unwrap(), peer, false),
            Err(ForeignTarget::OtherHost { peer, target: foreign })
        );
        assert_eq!(
            check_active_target("127.0.0.1:21".parse().unwrap(), peer, false),
            Err(ForeignTarget::PrivilegedPort(21))
        );
        assert!(check_active_target("127.0.0.2:5000".parse().unwrap(), peer, true).is_ok());
        assert!(check_active_target("[::ffff:127.0.0.1]:5000".parse().unwrap(), peer, false).is_ok());
    }
}
