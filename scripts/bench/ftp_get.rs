//! The benchmark's download client: fetches one file over plain FTP or implicit FTPS (PROT P), writes
//! it to LOCAL or discards it, and prints `BYTES SECONDS` (from RETR to the 226 reply). `ftps` is
//! implicit FTPS, `ftpes` explicit (AUTH TLS on the plain port; pure-ftpd has no implicit FTPS).
//!
//! LOCAL is overwritten in place and cut to length at the end, as `hdfs_copy get` does: a file written
//! in an earlier round keeps its pages, so the kernel's page allocation (slow and erratic on a VM with
//! a memory balloon: 0.5 s to 3.5 s per fresh GiB here) stays out of the comparison.
//!
//! curl spends about as much CPU per byte as the server it measures: over TLS it decrypts each record
//! with two receives, and it writes what it gets in 16 KiB pieces. On a 2-core machine that set the
//! pace, not the server. This client receives 1 MiB at a time and writes whole megabytes.
//!
//!   ftp_get ftp|ftps|ftpes HOST PORT USER PASSWORD PATH [LOCAL]
//!
//! With `--clients N`, N clients at once (threads released together), each logging in, listing its
//! directory (NLST) with `--list`, fetching PATH (discarded) and quitting; it prints
//! `clients=N failures=F wall=S p50=S p99=S done_p50=S done_p99=S`: `p50`/`p99` of the times per
//! client from its connect to QUIT's reply, `done_` ones of when each client got that reply, counted
//! from the release, and `wall` when the last one did. On a machine whose cores the clients share with
//! the server, a released thread may first run much later than the release: its own time then leaves
//! out that wait, its `done_` time does not.
//! With `--hold N`, N sessions log in one after the other and stay; it prints `held=N failures=F`,
//! waits for a line (or the end) on standard input, sends NOOP on each and prints `alive=A`.
//!
//!   ftp_get --clients N [--list] ftp|ftps|ftpes HOST PORT USER PASSWORD PATH
//!   ftp_get --hold N ftp HOST PORT USER PASSWORD

use openssl::ssl::{SslConnector, SslMethod, SslVerifyMode};
use std::fs::OpenOptions;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock, RwLock};
use std::time::{Duration, Instant};

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

const CHUNK: usize = 1 << 20;

trait Connection: Read + Write {}
impl<T: Read + Write> Connection for T {}

/// A socket whose reads are served from one large receive buffer.
#[derive(Debug)]
struct ReadAhead {
    tcp: TcpStream,
    inbox: BufReader<TcpStream>,
}

impl ReadAhead {
    fn new(tcp: TcpStream) -> io::Result<ReadAhead> {
        let inbox = BufReader::with_capacity(CHUNK, tcp.try_clone()?);
        Ok(ReadAhead { tcp, inbox })
    }
}

impl Read for ReadAhead {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.inbox.read(buf)
    }
}

impl Write for ReadAhead {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.tcp.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.tcp.flush()
    }
}

/// Plain TCP, or TLS with any certificate (the benchmark's servers use one made for the run).
struct Transport {
    tls: Option<SslConnector>,
    host: String,
}

impl Transport {
    fn open(&self, tcp: TcpStream) -> Result<Box<dyn Connection>> {
        Ok(match &self.tls {
            Some(connector) => {
                Box::new(connector.configure()?.verify_hostname(false).connect(&self.host, ReadAhead::new(tcp)?)?)
            }
            None => Box::new(tcp),
        })
    }
}

struct Control {
    connection: BufReader<Box<dyn Connection>>,
}

impl Control {
    /// Sends `command` (if any) and reads the whole reply; fails unless its code starts with one of
    /// the digits in `expect`.
    fn exchange(&mut self, command: Option<&str>, expect: &str) -> Result<String> {
        if let Some(command) = command {
            self.connection.get_mut().write_all(format!("{command}\r\n").as_bytes())?;
        }
        let mut reply = String::new();
        loop {
            let mut line = String::new();
            if self.connection.read_line(&mut line)? == 0 {
                return Err("control connection closed".into());
            }
            reply += &line;
            // The last line of a reply is "NNN text"; others, and a first line "NNN-text", continue.
            if line.len() >= 4 && line.as_bytes()[3] == b' ' && reply[..3] == line[..3] {
                break;
            }
        }
        if !expect.contains(&reply[..1]) {
            return Err(format!("{} -> {}", command.unwrap_or("(greeting)"), reply.trim_end()).into());
        }
        Ok(reply)
    }
}

/// The data address from a 227 reply: "227 Entering Passive Mode (h1,h2,h3,h4,p1,p2)".
fn passive_address(reply: &str) -> Result<String> {
    let inner = reply.split(['(', ')']).nth(1).ok_or("no address in the 227 reply")?;
    let parts: Vec<u16> = inner.split(',').map(|p| p.trim().parse()).collect::<std::result::Result<_, _>>()?;
    let [a, b, c, d, high, low] = parts[..] else {
        return Err("the 227 reply's address has not six numbers".into());
    };
    Ok(format!("{a}.{b}.{c}.{d}:{}", high * 256 + low))
}

/// Fills `buffer` as far as the connection allows; 0 at its end. A TLS peer that closes without a
/// close_notify ends it too: the 226 reply says whether everything came.
fn fill(data: &mut dyn Connection, buffer: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buffer.len() {
        match data.read(&mut buffer[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => break,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// How long a connect, or a wait for the server, may take before the client gives up: a server that drops
/// a connection or stops answering makes a failure, not a client that never ends. 60 s, or
/// `FTP_GET_PATIENCE` seconds (the quick bench's, so a peer that drops connections does not hold a smoke
/// run for a minute).
fn patience() -> Duration {
    let seconds = std::env::var("FTP_GET_PATIENCE").ok().and_then(|v| v.parse().ok()).unwrap_or(60);
    Duration::from_secs(seconds)
}

fn connect(address: &str) -> io::Result<TcpStream> {
    let target = address.to_socket_addrs()?.next().ok_or_else(|| io::Error::other(format!("{address}: no address")))?;
    let patience = patience();
    let tcp = TcpStream::connect_timeout(&target, patience)?;
    tcp.set_read_timeout(Some(patience))?;
    tcp.set_write_timeout(Some(patience))?;
    Ok(tcp)
}

/// Where and as whom the client connects.
struct Server {
    transport: Transport,
    explicit: bool,
    address: String,
    user: String,
    password: String,
}

impl Server {
    fn new(args: &[String]) -> Result<Server> {
        let [scheme, host, port, user, password] = args else {
            return Err("expected ftp|ftps|ftpes HOST PORT USER PASSWORD".into());
        };
        let connector = || -> Result<SslConnector> {
            let mut builder = SslConnector::builder(SslMethod::tls())?;
            builder.set_verify(SslVerifyMode::NONE);
            Ok(builder.build())
        };
        let (tls, explicit) = match scheme.as_str() {
            "ftp" => (None, false),
            "ftps" => (Some(connector()?), false),
            "ftpes" => (Some(connector()?), true),
            other => return Err(format!("unknown scheme {other} (ftp, ftps or ftpes)").into()),
        };
        Ok(Server {
            transport: Transport { tls, host: host.clone() },
            explicit,
            address: format!("{host}:{port}"),
            user: user.clone(),
            password: password.clone(),
        })
    }

    /// A logged-in session in binary mode, with PROT P over TLS.
    fn login(&self) -> Result<Control> {
        let tcp = connect(&self.address)?;
        let mut control = if self.explicit {
            let plain: Box<dyn Connection> = Box::new(tcp.try_clone()?);
            let mut plain = Control { connection: BufReader::new(plain) };
            plain.exchange(None, "2")?;
            plain.exchange(Some("AUTH TLS"), "2")?;
            Control { connection: BufReader::new(self.transport.open(tcp)?) }
        } else {
            let mut control = Control { connection: BufReader::new(self.transport.open(tcp)?) };
            control.exchange(None, "2")?;
            control
        };
        // A server may log an anonymous user in at USER (230) without asking for a password.
        if control.exchange(Some(&format!("USER {}", self.user)), "23")?.starts_with('3') {
            control.exchange(Some(&format!("PASS {}", self.password)), "2")?;
        }
        control.exchange(Some("TYPE I"), "2")?;
        if self.transport.tls.is_some() {
            control.exchange(Some("PBSZ 0"), "2")?;
            control.exchange(Some("PROT P"), "2")?;
        }
        Ok(control)
    }

    /// Runs `command` (RETR, NLST) on a passive data connection; every byte it brings goes to `sink`.
    fn receive(
        &self,
        control: &mut Control,
        command: &str,
        chunk: usize,
        mut sink: impl FnMut(&[u8]) -> io::Result<()>,
    ) -> Result<u64> {
        let address = passive_address(&control.exchange(Some("PASV"), "2")?)?;
        // Servers accept the data connection before they answer with 150, and start TLS after it.
        let data = connect(&address)?;
        control.exchange(Some(command), "1")?;
        let mut data = self.transport.open(data)?;
        let mut buffer = vec![0; chunk];
        let mut total = 0u64;
        loop {
            let got = fill(&mut *data, &mut buffer)?;
            if got == 0 {
                break;
            }
            sink(&buffer[..got])?;
            total += got as u64;
        }
        drop(data);
        control.exchange(None, "2")?;
        Ok(total)
    }
}

fn fetch(args: &[String]) -> Result<(u64, f64)> {
    let (server, path, local) = match args {
        [server @ .., path] if server.len() == 5 => (server, path, None),
        [server @ .., path, local] if server.len() == 5 => (server, path, Some(local)),
        _ => return Err("usage: ftp_get ftp|ftps|ftpes HOST PORT USER PASSWORD PATH [LOCAL]".into()),
    };
    let server = Server::new(server)?;
    let mut output =
        local.map(|path| OpenOptions::new().write(true).create(true).truncate(false).open(path)).transpose()?;
    let mut control = server.login()?;
    let started = Instant::now();
    let total = server.receive(&mut control, &format!("RETR {path}"), CHUNK, |chunk| match output.as_mut() {
        Some(file) => file.write_all(chunk),
        None => Ok(()),
    })?;
    if let Some(file) = output {
        file.set_len(total)?;
    }
    let seconds = started.elapsed().as_secs_f64();
    control.exchange(Some("QUIT"), "2")?;
    Ok((total, seconds))
}

/// One of `--clients`: log in, list (with `list`), fetch `path`, quit; when it started and ended.
fn one_client(server: &Server, path: &str, list: bool) -> Result<(Instant, Instant)> {
    let started = Instant::now();
    let mut control = server.login()?;
    if list {
        server.receive(&mut control, "NLST", CLIENTS_CHUNK, |_| Ok(()))?;
    }
    server.receive(&mut control, &format!("RETR {path}"), CLIENTS_CHUNK, |_| Ok(()))?;
    control.exchange(Some("QUIT"), "2")?;
    Ok((started, Instant::now()))
}

/// Receive buffer of each of many clients: a thousand 1 MiB buffers would cost the client a GiB.
const CLIENTS_CHUNK: usize = 128 << 10;

/// `count` clients at once: `clients=N failures=F wall=S p50=S p99=S done_p50=S done_p99=S`.
fn clients(count: usize, list: bool, args: &[String]) -> Result<String> {
    let [server @ .., path] = args else { return Err("no PATH".into()) };
    let server = Arc::new(Server::new(server)?);
    // The gate: held for writing until every client waits on it for reading, then opened at once. (A
    // Barrier wakes its waiters through one mutex, one after the other: on 2 cores 1,000 clients took
    // 4.5 s to get going, most of them running alone.)
    let gate = Arc::new(RwLock::new(()));
    let closed = gate.write().map_err(|_| "gate poisoned")?;
    let waiting = Arc::new(AtomicUsize::new(0));
    // The release: when the first client got past the gate.
    let released = Arc::new(OnceLock::new());
    let mut threads = Vec::new();
    for _ in 0..count {
        let (server, path) = (Arc::clone(&server), path.clone());
        let (gate, waiting, released) = (Arc::clone(&gate), Arc::clone(&waiting), Arc::clone(&released));
        let spawned = std::thread::Builder::new().stack_size(256 << 10).spawn(move || {
            waiting.fetch_add(1, Ordering::SeqCst);
            drop(gate.read());
            released.get_or_init(Instant::now);
            one_client(&server, &path, list).map_err(|e| e.to_string())
        })?;
        threads.push(spawned);
    }
    while waiting.load(Ordering::SeqCst) < count {
        std::thread::sleep(Duration::from_millis(1));
    }
    // The last ones to count may not be asleep on the gate yet: they pass it as they get there.
    std::thread::sleep(Duration::from_millis(20));
    drop(closed);
    let release = *released.get_or_init(Instant::now);
    let (mut own, mut done, mut failures) = (Vec::new(), Vec::new(), Vec::new());
    for thread in threads {
        match thread.join().map_err(|_| "a client thread panicked".to_string()).and_then(|r| r) {
            Ok((started, ended)) => {
                own.push((ended - started).as_secs_f64());
                done.push(ended.saturating_duration_since(release).as_secs_f64());
            }
            Err(e) => failures.push(e),
        }
    }
    if let Some(first) = failures.first() {
        eprintln!("ftp_get: {} client(s) failed; the first: {first}", failures.len());
    }
    own.sort_by(f64::total_cmp);
    done.sort_by(f64::total_cmp);
    let (p50, p99) = (percentile(&own, 0.5), percentile(&own, 0.99));
    let (done_p50, done_p99, wall) = (percentile(&done, 0.5), percentile(&done, 0.99), percentile(&done, 1.0));
    Ok(format!(
        "clients={count} failures={} wall={wall:.3} p50={p50:.3} p99={p99:.3} done_p50={done_p50:.3} done_p99={done_p99:.3}",
        failures.len()
    ))
}

/// The `p` quantile of `sorted` (NaN for none).
fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted.get(((sorted.len() as f64 * p).ceil() as usize).saturating_sub(1)).copied().unwrap_or(f64::NAN)
}

/// `count` sessions logged in and held until standard input has a line or ends.
fn hold(count: usize, args: &[String]) -> Result<String> {
    let server = Server::new(args)?;
    let (mut held, mut failures) = (Vec::new(), 0);
    for _ in 0..count {
        match server.login() {
            Ok(control) => held.push(control),
            Err(e) => {
                if failures == 0 {
                    eprintln!("ftp_get: a login failed: {e}");
                }
                failures += 1;
            }
        }
    }
    println!("held={} failures={failures}", held.len());
    io::stdout().flush()?;
    io::stdin().read_line(&mut String::new())?;
    let alive = held.iter_mut().map(|control| control.exchange(Some("NOOP"), "2")).filter(Result::is_ok).count();
    Ok(format!("alive={alive}"))
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let count = |n: &String| n.parse::<usize>().map_err(|e| format!("{n}: {e}"));
    let done: Result<String> = match &args[..] {
        [flag, n, list, rest @ ..] if flag == "--clients" && list == "--list" => {
            count(n).map_err(Into::into).and_then(|n| clients(n, true, rest))
        }
        [flag, n, rest @ ..] if flag == "--clients" => {
            count(n).map_err(Into::into).and_then(|n| clients(n, false, rest))
        }
        [flag, n, rest @ ..] if flag == "--hold" => count(n).map_err(Into::into).and_then(|n| hold(n, rest)),
        _ => fetch(&args).map(|(bytes, seconds)| format!("{bytes} {seconds:.6}")),
    };
    match done {
        Ok(line) => println!("{line}"),
        Err(e) => {
            eprintln!("ftp_get: {e}");
            std::process::exit(1);
        }
    }
}
