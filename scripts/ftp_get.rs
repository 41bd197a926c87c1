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

use openssl::ssl::{SslConnector, SslMethod, SslVerifyMode};
use std::fs::OpenOptions;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::Instant;

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

fn fetch(args: &[String]) -> Result<(u64, f64)> {
    let [scheme, host, port, user, password, path, local @ ..] = args else {
        return Err("usage: ftp_get ftp|ftps|ftpes HOST PORT USER PASSWORD PATH [LOCAL]".into());
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
    let transport = Transport { tls, host: host.clone() };
    let mut output =
        local.first().map(|path| OpenOptions::new().write(true).create(true).truncate(false).open(path)).transpose()?;
    let tcp = TcpStream::connect(format!("{host}:{port}"))?;
    let mut control = if explicit {
        let plain: Box<dyn Connection> = Box::new(tcp.try_clone()?);
        let mut plain = Control { connection: BufReader::new(plain) };
        plain.exchange(None, "2")?;
        plain.exchange(Some("AUTH TLS"), "2")?;
        Control { connection: BufReader::new(transport.open(tcp)?) }
    } else {
        let mut control = Control { connection: BufReader::new(transport.open(tcp)?) };
        control.exchange(None, "2")?;
        control
    };
    // A server may log an anonymous user in at USER (230) without asking for a password.
    if control.exchange(Some(&format!("USER {user}")), "23")?.starts_with('3') {
        control.exchange(Some(&format!("PASS {password}")), "2")?;
    }
    control.exchange(Some("TYPE I"), "2")?;
    if transport.tls.is_some() {
        control.exchange(Some("PBSZ 0"), "2")?;
        control.exchange(Some("PROT P"), "2")?;
    }
    let address = passive_address(&control.exchange(Some("PASV"), "2")?)?;
    // Servers accept the data connection before they answer RETR with 150, and start TLS after it.
    let data = TcpStream::connect(address)?;
    let started = Instant::now();
    control.exchange(Some(&format!("RETR {path}")), "1")?;
    let mut data = transport.open(data)?;
    let mut buffer = vec![0; CHUNK];
    let mut total = 0u64;
    loop {
        let got = fill(&mut *data, &mut buffer)?;
        if got == 0 {
            break;
        }
        if let Some(file) = output.as_mut() {
            file.write_all(&buffer[..got])?;
        }
        total += got as u64;
    }
    drop(data);
    if let Some(file) = output {
        file.set_len(total)?;
    }
    control.exchange(None, "2")?;
    let seconds = started.elapsed().as_secs_f64();
    control.exchange(Some("QUIT"), "2")?;
    Ok((total, seconds))
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match fetch(&args) {
        Ok((bytes, seconds)) => println!("{bytes} {seconds:.6}"),
        Err(e) => {
            eprintln!("ftp_get: {e}");
            std::process::exit(1);
        }
    }
}
