//! Listeners, the accept loops, admission (the session cap and the per-address cap), the fixed worker
//! pool, what ended sessions freed handed back to the kernel, signals and shutdown.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use signal_hook::iterator::Signals;
use socket2::{Domain, Socket, Type};

use crate::config::Config;
use crate::locks;
use crate::logfile::LogFile;
use crate::proxy_protocol::{self, Header};
use crate::session::{Session, Shared};
use crate::shutdown::Shutdown;
use crate::stream::Stream;
use crate::tls;

/// Connections waiting in the kernel before accept: deep, so a burst of clients is not dropped.
const LISTEN_BACKLOG: i32 = 4096;

/// Worker stack size. Java code runs on it under libhdfs: the Kerberos suite on HDFS overflowed the JVM's
/// stack at 128 KiB and passed at 256 KiB; this leaves a margin, and is what the JVM gives its own threads.
/// Only the pages a session touches are resident.
const WORKER_STACK: usize = 1 << 20;

/// Allocations this large or larger are mappings of their own, unmapped when freed: transfer buffers,
/// TLS buffers, listing batches. Only the pages a session writes are resident, and only while it holds
/// them.
pub const LARGE_BLOCK: usize = 64 << 10;

/// Sets up the allocator for sessions that come and go: large blocks mapped on their own, and one heap
/// for every thread. glibc's malloc_trim hands back the free pages inside every heap but the free end
/// of the main heap only: with 4 heaps (2 per core) RSS 10 s after a burst of 200 PROT P sessions on
/// 2 cores came back to 0.84-1.24x the idle server's from round to round, with 1 heap to 1.00-1.02x,
/// burst times alike (measured beside two fuzzers; the idle bench in BENCHMARKS.md: 1.00). Called
/// first thing, before any thread (the JVM's included) takes a heap; the per-thread caches go with the
/// restart in lib.rs.
pub fn tune_allocator() {
    hdfsftpd_ffi::memory::map_large_blocks(LARGE_BLOCK);
    hdfsftpd_ffi::memory::limit_heaps(1);
}

/// How often the memory sessions freed is handed back to the kernel, when sessions have ended.
const RELEASE_INTERVAL: Duration = Duration::from_secs(1);

/// A connection on its way from an accept loop to a worker.
type Accepted = (TcpStream, Admission, Kind);

/// After the grace period, how long sessions get to report their stopped transfers.
const ABORT_WAIT: Duration = Duration::from_secs(5);

/// What a listener serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// FTP, with AUTH TLS (explicit FTPS) when TLS is configured.
    Ftp,
    /// Implicit FTPS: TLS from the first byte.
    ImplicitFtps,
}

/// Opens every listening socket: each bind address on each enabled port.
pub fn bind_listeners(binds: &[IpAddr], ports: &[(u16, Kind)]) -> io::Result<Vec<(TcpListener, Kind)>> {
    let mut listeners = Vec::new();
    for &(port, kind) in ports.iter().filter(|(p, _)| *p != 0) {
        for &ip in binds {
            let address = SocketAddr::new(ip, port);
            let listener =
                listen(address).map_err(|e| io::Error::new(e.kind(), format!("listen on {address}: {e}")))?;
            listeners.push((listener, kind));
        }
    }
    if listeners.is_empty() {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "no listener enabled: every port is 0"));
    }
    Ok(listeners)
}

fn listen(address: SocketAddr) -> io::Result<TcpListener> {
    let socket = Socket::new(Domain::for_address(address), Type::STREAM, None)?;
    socket.set_reuse_address(true)?;
    if address.is_ipv6() {
        // Lets `::` and `0.0.0.0` be bound side by side on one port.
        socket.set_only_v6(true)?;
    }
    // Accept wakes up this often to notice shutdown.
    socket.set_read_timeout(Some(Shutdown::POLL))?;
    socket.bind(&address.into())?;
    socket.listen(LISTEN_BACKLOG)?;
    Ok(socket.into())
}

/// Counts sessions, in all and per client address.
#[derive(Default)]
struct Occupancy {
    total: usize,
    per_ip: HashMap<IpAddr, usize>,
}

/// A place in the session cap, given back when dropped.
struct Admission {
    occupancy: Arc<Mutex<Occupancy>>,
    ip: IpAddr,
}

impl Occupancy {
    fn is_full_for(&self, ip: IpAddr, max_per_ip: usize) -> bool {
        max_per_ip > 0 && self.per_ip.get(&ip).copied().unwrap_or(0) >= max_per_ip
    }

    fn leave(&mut self, ip: IpAddr) {
        if let Some(count) = self.per_ip.get_mut(&ip) {
            *count -= 1;
            if *count == 0 {
                self.per_ip.remove(&ip);
            }
        }
    }
}

impl Admission {
    /// Moves this place to `ip`, within the per-address cap: a balancer's client takes its place.
    fn move_to(&mut self, ip: IpAddr, max_per_ip: usize) -> Result<(), &'static str> {
        let mut occupancy = locks::lock(&self.occupancy);
        if ip == self.ip {
            return Ok(());
        }
        if occupancy.is_full_for(ip, max_per_ip) {
            return Err(TOO_MANY_FROM_ADDRESS);
        }
        occupancy.leave(self.ip);
        *occupancy.per_ip.entry(ip).or_default() += 1;
        self.ip = ip;
        Ok(())
    }
}

impl Drop for Admission {
    fn drop(&mut self) {
        let mut occupancy = locks::lock(&self.occupancy);
        occupancy.total -= 1;
        occupancy.leave(self.ip);
    }
}

const TOO_MANY_FROM_ADDRESS: &str = "Too many connections from your address.";

pub struct Server {
    shared: Arc<Shared>,
    occupancy: Arc<Mutex<Occupancy>>,
    /// Sessions ended so far: the memory releaser looks for new ones.
    ended: Arc<AtomicU64>,
    /// Log files reopened on SIGHUP.
    log_files: Vec<LogFile>,
}

impl Server {
    pub fn new(shared: Arc<Shared>, log_files: Vec<LogFile>) -> Server {
        Server { shared, occupancy: Arc::default(), ended: Arc::default(), log_files }
    }

    /// What the sessions are doing, for the status socket.
    pub fn online(&self) -> Arc<crate::online::Online> {
        Arc::clone(&self.shared.online)
    }

    /// Serves until SIGTERM or SIGINT, then drains running sessions.
    pub fn run(self, listeners: Vec<(TcpListener, Kind)>) -> io::Result<()> {
        // Registered before the ready line, so a SIGTERM that follows it is a clean shutdown.
        let signals = Signals::new([SIGTERM, SIGINT, SIGHUP])?;
        let max_clients = self.shared.config.max_clients;
        let (sender, receiver) = crossbeam_channel::bounded::<Accepted>(max_clients);
        for index in 0..max_clients {
            let (shared, receiver, ended) = (Arc::clone(&self.shared), receiver.clone(), Arc::clone(&self.ended));
            thread::Builder::new()
                .name(format!("worker-{index}"))
                .stack_size(WORKER_STACK)
                .spawn(move || work(shared, receiver, &ended))?;
        }
        drop(receiver);
        let (shared, ended) = (Arc::clone(&self.shared), Arc::clone(&self.ended));
        thread::Builder::new().name("memory".into()).spawn(move || release_memory(&shared, &ended))?;
        let mut acceptors = Vec::new();
        for (listener, kind) in listeners {
            let what = if kind == Kind::Ftp { "FTP" } else { "implicit FTPS" };
            log::info!("listening on {} ({what})", listener.local_addr()?);
            let (sender, occupancy, shared) = (sender.clone(), Arc::clone(&self.occupancy), Arc::clone(&self.shared));
            acceptors.push(
                thread::Builder::new()
                    .name("accept".into())
                    .spawn(move || accept_loop(&listener, kind, &sender, &occupancy, &shared))?,
            );
        }
        drop(sender);
        log::info!("hdfsftpd {} ready: {} workers", env!("CARGO_PKG_VERSION"), max_clients);
        self.wait_for_signals(signals);
        self.shared.shutdown.begin();
        for acceptor in acceptors {
            let _ = acceptor.join();
        }
        self.drain();
        Ok(())
    }

    fn wait_for_signals(&self, mut signals: Signals) {
        for signal in signals.forever() {
            if signal != SIGHUP {
                log::info!("signal {signal}: shutting down");
                break;
            }
            self.reload();
        }
    }

    /// SIGHUP: reopen log files (after rotation) and re-read what may change while running.
    fn reload(&self) {
        for file in &self.log_files {
            if let Err(e) = file.reopen() {
                log::error!("SIGHUP: cannot reopen log file: {e}");
            }
        }
        match self.shared.auth.reload() {
            Ok(()) => log::info!("SIGHUP: log files reopened, authentication configuration reloaded"),
            Err(e) => log::error!("SIGHUP: reload failed, keeping the previous configuration: {e}"),
        }
        self.reload_tls();
    }

    /// Re-reads the certificate; sessions already running keep the one they started with.
    fn reload_tls(&self) {
        match self.shared.tls.as_ref().map(tls::Tls::reload) {
            None => {}
            Some(Ok(())) => log::info!("SIGHUP: TLS certificate reloaded"),
            Some(Err(e)) => log::error!("SIGHUP: TLS reload failed, keeping the previous certificate: {e}"),
        }
    }

    /// Lets running transfers finish within the grace period, then stops them and releases storage.
    fn drain(&self) {
        let grace = self.shared.config.shutdown_grace;
        if !self.wait_for_sessions(grace) {
            log::warn!("grace period of {grace:?} over: stopping the remaining transfers");
            self.shared.shutdown.abort_transfers();
            self.wait_for_sessions(ABORT_WAIT);
        }
        self.shared.backend.shutdown();
        log::info!("stopped");
    }

    /// True when every session ended within `limit`.
    fn wait_for_sessions(&self, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        loop {
            let running = locks::lock(&self.occupancy).total;
            if running == 0 {
                return true;
            }
            if Instant::now() >= deadline {
                log::warn!("{running} session(s) still running");
                return false;
            }
            thread::sleep(Duration::from_millis(50));
        }
    }
}

fn accept_loop(
    listener: &TcpListener,
    kind: Kind,
    sender: &Sender<Accepted>,
    occupancy: &Arc<Mutex<Occupancy>>,
    shared: &Shared,
) {
    let (max_clients, max_per_ip) = (shared.config.max_clients, shared.config.max_per_ip);
    while !shared.shutdown.is_stopping() {
        let (stream, peer) = match listener.accept() {
            Ok(accepted) => accepted,
            Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => continue,
            Err(e) => {
                log::error!("accept failed: {e}");
                thread::sleep(Duration::from_millis(100));
                continue;
            }
        };
        // SECURITY: a balancer's connections count against the per-address cap under the client its
        // header names (Admission::move_to), not all under the balancer's address.
        let per_ip_cap = if shared.config.is_proxy(peer.ip()) { 0 } else { max_per_ip };
        let admitted = admit(occupancy, peer.ip(), max_clients, per_ip_cap);
        match admitted {
            Ok(admission) => {
                if let Err(e) = prepare_control(&stream) {
                    log::warn!("{peer}: cannot set up the control connection: {e}");
                    continue;
                }
                if sender.send((stream, admission, kind)).is_err() {
                    return;
                }
            }
            Err(why) => refuse(stream, peer, why),
        }
    }
}

fn admit(
    occupancy: &Arc<Mutex<Occupancy>>,
    ip: IpAddr,
    max_clients: usize,
    max_per_ip: usize,
) -> Result<Admission, &'static str> {
    let mut counts = locks::lock(occupancy);
    // SECURITY: sessions are bounded in total and per address.
    if counts.total >= max_clients {
        return Err("Too many users, please try again later.");
    }
    if counts.is_full_for(ip, max_per_ip) {
        return Err(TOO_MANY_FROM_ADDRESS);
    }
    counts.total += 1;
    *counts.per_ip.entry(ip).or_default() += 1;
    Ok(Admission { occupancy: Arc::clone(occupancy), ip })
}

/// Over a cap: a 421 and the connection closed at once, from the accept thread.
fn refuse(stream: TcpStream, peer: SocketAddr, why: &str) {
    log::warn!("{peer}: connection refused: {why}");
    say_421(&stream, why);
}

/// A 421 to a connection about to be closed, if it still listens.
fn say_421(mut stream: &TcpStream, why: &str) {
    let _ = stream.set_write_timeout(Some(Duration::from_millis(200)));
    let _ = stream.write_all(format!("421 {why}\r\n").as_bytes());
}

fn prepare_control(stream: &TcpStream) -> io::Result<()> {
    // Replies go out at once instead of waiting for a delayed ACK.
    stream.set_nodelay(true)?;
    // ftplib and others send ABOR's last byte as TCP urgent data; keep it in the stream.
    socket2::SockRef::from(stream).set_out_of_band_inline(true)?;
    stream.set_write_timeout(Some(Duration::from_secs(60)))
}

/// Hands what ended sessions freed back to the kernel, once a `RELEASE_INTERVAL` at most, until shutdown.
fn release_memory(shared: &Shared, ended: &AtomicU64) {
    let mut released = 0;
    while !shared.shutdown.is_stopping() {
        thread::sleep(RELEASE_INTERVAL);
        let now = ended.load(Ordering::Relaxed);
        if now != released {
            released = now;
            let took = hdfsftpd_ffi::memory::release_free_memory();
            log::debug!("freed memory handed back to the kernel in {took:.1?}");
        }
    }
}

/// A worker: serves one session after another, handing back what its thread held for each (OpenSSL's
/// thread state, the stack the session deepened); each ended one counts for the memory releaser.
fn work(shared: Arc<Shared>, receiver: Receiver<Accepted>, ended: &AtomicU64) {
    for (stream, admission, kind) in receiver {
        run_session(Arc::clone(&shared), stream, kind, admission);
        hdfsftpd_ffi::memory::release_thread_memory();
        ended.fetch_add(1, Ordering::Relaxed);
    }
}

fn run_session(shared: Arc<Shared>, stream: TcpStream, kind: Kind, mut admission: Admission) {
    // The socket closes only when this second handle goes, after the slot is free: a client that
    // sees the close and reconnects at once must find its place in the cap again.
    let last_handle = stream.try_clone();
    let outcome = panic::catch_unwind(AssertUnwindSafe(|| serve(shared, stream, kind, &mut admission)));
    if outcome.is_err() {
        log::error!("session crashed (a bug); the worker carries on");
    }
    drop(admission);
    drop(last_handle);
}

/// One connection, from its implicit TLS handshake (on this worker, not the accept thread) to the end of
/// its session. Its log lines name the client, which a balancer's PROXY header may have named.
fn serve(shared: Arc<Shared>, tcp: TcpStream, kind: Kind, admission: &mut Admission) {
    let Some(client) = session_client(&shared, &tcp, admission) else { return };
    let session = match (kind, &shared.tls) {
        (Kind::ImplicitFtps, Some(tls)) => {
            let config = &shared.config;
            // SECURITY: the look for a stray PROXY header and the handshake share the first-command limit:
            // a silent or stalled connection holds its worker only briefly.
            let deadline = Instant::now() + config.first_command_timeout.min(config.login_timeout);
            if starts_with_stray_header(config, &tcp, deadline) {
                log::warn!("{client}: PROXY header refused: not from a --proxy-protocol-from address");
                refuse_unread(&tcp, "PROXY protocol header not accepted from your address.");
                return;
            }
            let handshake = tls.acceptor().and_then(|acceptor| {
                let left = deadline.saturating_duration_since(Instant::now());
                let stream = tls::accept(&acceptor, tcp, left, tls::Channel::Control)?;
                Ok((acceptor, stream))
            });
            match handshake {
                Ok((acceptor, stream)) => {
                    log::info!("{client}: implicit FTPS, {}", tls::summary(&stream));
                    Session::new(Arc::clone(&shared), Stream::Tls(Box::new(stream)), client)
                        .map(|s| s.implicit_tls(acceptor))
                }
                Err(e) => {
                    log::info!("{client}: implicit FTPS handshake failed: {e}");
                    return;
                }
            }
        }
        // Implicit FTPS listeners exist only when TLS is configured.
        _ => Session::new(shared, Stream::Plain(tcp), client),
    };
    match session {
        Ok(session) => session.run(),
        Err(e) => log::warn!("{client}: cannot start session: {e}"),
    }
}

/// The session's client: the peer itself or, from a `--proxy-protocol-from` balancer, the client its
/// PROXY header names (read within the login timeout, before any TLS), which then takes the peer's
/// place in the per-address cap. `None` when the connection is refused (logged).
fn session_client(shared: &Shared, tcp: &TcpStream, admission: &mut Admission) -> Option<SocketAddr> {
    let config = &shared.config;
    let peer = tcp.peer_addr().ok()?;
    // SECURITY: only a listed balancer names the client; a header from anyone else is refused (before
    // the implicit TLS handshake in `serve`, at the first command line in the session).
    if !config.is_proxy(peer.ip()) {
        return Some(peer);
    }
    let mut reader = Deadlined { tcp, deadline: Instant::now() + config.login_timeout };
    let client = match proxy_protocol::read_header(&mut reader) {
        Ok(Header::Relayed(client)) => client,
        Ok(Header::Local) => peer,
        Err(proxy_protocol::HeaderError::Closed) => {
            log::debug!("{peer}: balancer closed without a PROXY header");
            return None;
        }
        Err(e) => {
            log::warn!("{peer}: connection from balancer refused: {e}");
            refuse_unread(tcp, "Bad or missing PROXY protocol header.");
            return None;
        }
    };
    if let Err(why) = admission.move_to(client.ip(), config.max_per_ip) {
        log::warn!("{client} (through {peer}): connection refused: {why}");
        refuse_unread(tcp, why);
        return None;
    }
    log::debug!("{client}: connected through balancer {peer}");
    Some(client)
}

/// A 421, then the close, after the bytes the peer sent that were not read: closing over unread bytes
/// would reset the connection, and the peer could lose the 421.
fn refuse_unread(tcp: &TcpStream, why: &str) {
    say_421(tcp, why);
    let _ = tcp.shutdown(std::net::Shutdown::Write);
    crate::stream::drain_unread(tcp, Duration::from_millis(500), 64 << 10);
}

/// True when PROXY protocol is on and a peer that may not send a header starts with one (plain FTP
/// clients speak only after the greeting: the session looks at their first line instead). Waits for the
/// first bytes until `deadline`.
fn starts_with_stray_header(config: &Config, tcp: &TcpStream, deadline: Instant) -> bool {
    let from_balancer = tcp.peer_addr().is_ok_and(|peer| config.is_proxy(peer.ip()));
    if config.proxy_protocol_from.is_empty() || from_balancer {
        return false;
    }
    let mut first = [0u8; 16];
    let left = deadline.saturating_duration_since(Instant::now());
    // A zero timeout is refused: then nothing came in time, and the handshake fails for it.
    tcp.set_read_timeout(Some(left)).is_ok()
        && tcp.peek(&mut first).is_ok_and(|n| proxy_protocol::is_header_start(&first[..n]))
}

/// Reads that end at `deadline` however slowly the bytes come.
struct Deadlined<'a> {
    tcp: &'a TcpStream,
    deadline: Instant,
}

impl Read for Deadlined<'_> {
    fn read(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
        let late = || io::Error::new(io::ErrorKind::TimedOut, "not complete within the login timeout");
        let left = self.deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(late());
        }
        self.tcp.set_read_timeout(Some(left))?;
        let mut tcp = self.tcp;
        tcp.read(buffer).map_err(|e| if e.kind() == io::ErrorKind::WouldBlock { late() } else { e })
    }
}
