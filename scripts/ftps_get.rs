//! The benchmark's FTPS download client: fetches one file over implicit FTPS with PROT P, discards
//! it, and prints `BYTES SECONDS` (from RETR to the 226 reply).
//!
//! curl spends about as much CPU per byte decrypting as hdfsftpd spends reading and encrypting, so on
//! a 2-core machine curl, not the server, set the pace. This client reads each socket in 1 MiB gulps
//! (OpenSSL alone asks for every record's header and body separately) and writes nothing to disk.
//!
//!   ftps_get HOST PORT USER PASSWORD PATH

use native_tls::{TlsConnector, TlsStream};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::Instant;

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

/// A socket whose reads are served from one large receive buffer.
#[derive(Debug)]
struct ReadAhead {
    tcp: TcpStream,
    inbox: BufReader<TcpStream>,
}

impl ReadAhead {
    fn new(tcp: TcpStream) -> io::Result<ReadAhead> {
        let inbox = BufReader::with_capacity(1 << 20, tcp.try_clone()?);
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

struct Control {
    tls: BufReader<TlsStream<ReadAhead>>,
}

impl Control {
    /// Sends `command` (if any) and reads the whole reply; fails unless its code starts with one of
    /// the digits in `expect`.
    fn exchange(&mut self, command: Option<&str>, expect: &str) -> Result<String> {
        if let Some(command) = command {
            self.tls.get_mut().write_all(format!("{command}\r\n").as_bytes())?;
        }
        let mut reply = String::new();
        loop {
            let mut line = String::new();
            if self.tls.read_line(&mut line)? == 0 {
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

fn fetch(host: &str, port: &str, user: &str, password: &str, path: &str) -> Result<(u64, f64)> {
    // The benchmark's servers use a self-signed certificate made for the run.
    let connector =
        TlsConnector::builder().danger_accept_invalid_certs(true).danger_accept_invalid_hostnames(true).build()?;
    let tcp = TcpStream::connect(format!("{host}:{port}"))?;
    let mut control = Control { tls: BufReader::new(connector.connect(host, ReadAhead::new(tcp)?)?) };
    control.exchange(None, "2")?;
    // A server may log an anonymous user in at USER (230) without asking for a password.
    if control.exchange(Some(&format!("USER {user}")), "23")?.starts_with('3') {
        control.exchange(Some(&format!("PASS {password}")), "2")?;
    }
    for command in ["TYPE I", "PBSZ 0", "PROT P"] {
        control.exchange(Some(command), "2")?;
    }
    let address = passive_address(&control.exchange(Some("PASV"), "2")?)?;
    // Servers accept the data connection before they answer RETR with 150, and start TLS after it.
    let data = TcpStream::connect(address)?;
    let started = Instant::now();
    control.exchange(Some(&format!("RETR {path}")), "1")?;
    let mut data = connector.connect(host, ReadAhead::new(data)?)?;
    let mut buffer = vec![0; 1 << 20];
    let mut total = 0u64;
    loop {
        match data.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => total += n as u64,
            // A server that closes without a TLS close_notify: the 226 below says whether all came.
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => break,
            Err(e) => return Err(e.into()),
        }
    }
    drop(data);
    control.exchange(None, "2")?;
    let seconds = started.elapsed().as_secs_f64();
    control.exchange(Some("QUIT"), "2")?;
    Ok((total, seconds))
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [host, port, user, password, path] = &args[..] else {
        eprintln!("usage: ftps_get HOST PORT USER PASSWORD PATH");
        std::process::exit(2);
    };
    match fetch(host, port, user, password, path) {
        Ok((bytes, seconds)) => println!("{bytes} {seconds:.6}"),
        Err(e) => {
            eprintln!("ftps_get: {e}");
            std::process::exit(1);
        }
    }
}
