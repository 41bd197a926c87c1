//! Who is online (`hdfsftpd --who`, pure-ftpwho, ProFTPD's ftpwho): every session publishes what it is
//! doing to a shared [`Online`] table, and the daemon answers on a UNIX socket (`--status-socket`) that
//! only the daemon's user (and root) may open. `hdfsftpd --who` reads that socket.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::locks;

/// Every session's [`Activity`], by session number.
#[derive(Default)]
pub struct Online {
    sessions: Mutex<BTreeMap<u64, Arc<Activity>>>,
    next_id: AtomicU64,
}

/// What one session is doing. The transfer loop updates `bytes` (one atomic store per chunk); the rest
/// changes once per command.
pub struct Activity {
    pub id: u64,
    client: SocketAddr,
    connected_at: SystemTime,
    state: Mutex<State>,
    /// Bytes moved by the current (or last) transfer.
    pub bytes: Arc<AtomicU64>,
}

#[derive(Default)]
struct State {
    user: Option<String>,
    login_at: Option<SystemTime>,
    command: String,
    path: String,
    last_command_at: Option<Instant>,
    transfer_started: Option<Instant>,
}

/// A session's entry in the table; dropping it takes the session off.
pub struct Registration {
    online: Arc<Online>,
    pub activity: Arc<Activity>,
}

impl Online {
    pub fn register(self: &Arc<Self>, client: SocketAddr) -> Registration {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed) + 1;
        let activity = Arc::new(Activity {
            id,
            client,
            connected_at: SystemTime::now(),
            state: Mutex::default(),
            bytes: Arc::default(),
        });
        self.table().insert(id, Arc::clone(&activity));
        Registration { online: Arc::clone(self), activity }
    }

    fn table(&self) -> std::sync::MutexGuard<'_, BTreeMap<u64, Arc<Activity>>> {
        locks::lock(&self.sessions)
    }

    fn snapshot(&self) -> Vec<Arc<Activity>> {
        self.table().values().cloned().collect()
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.online.table().remove(&self.activity.id);
    }
}

impl Activity {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        locks::lock(&self.state)
    }

    /// A command arrived: its verb and its argument (none for a secret one: PASS).
    pub fn command(&self, verb: &str, argument: &str) {
        let mut state = self.state();
        state.command = verb.to_string();
        state.path = argument.to_string();
        state.last_command_at = Some(Instant::now());
        state.transfer_started = None;
    }

    pub fn logged_in(&self, user: &str) {
        let mut state = self.state();
        state.user = Some(user.to_string());
        state.login_at = Some(SystemTime::now());
    }

    pub fn logged_out(&self) {
        let mut state = self.state();
        state.user = None;
        state.login_at = None;
    }

    /// A transfer (or HASH) starts: bytes count from 0 and the rate from now.
    pub fn transfer_starts(&self) {
        self.bytes.store(0, Ordering::Relaxed);
        self.state().transfer_started = Some(Instant::now());
    }

    fn line(&self, now: SystemTime) -> Line {
        let state = self.state();
        let bytes = self.bytes.load(Ordering::Relaxed);
        let rate = state
            .transfer_started
            .map_or(0, |started| (bytes as f64 / started.elapsed().as_secs_f64().max(1e-3)) as u64);
        Line {
            id: self.id,
            client: self.client.to_string(),
            user: state.user.clone().unwrap_or_default(),
            since: unix_seconds(state.login_at.unwrap_or(self.connected_at)),
            idle: state.last_command_at.map_or_else(
                || now.duration_since(self.connected_at).unwrap_or_default().as_secs(),
                |at| at.elapsed().as_secs(),
            ),
            command: state.command.clone(),
            path: state.path.clone(),
            bytes,
            rate,
        }
    }
}

fn unix_seconds(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs()
}

/// One session as `--who` shows it.
struct Line {
    id: u64,
    client: String,
    user: String,
    /// Login time, or connection time before login (Unix seconds).
    since: u64,
    idle: u64,
    command: String,
    path: String,
    bytes: u64,
    /// Bytes per second of the transfer running now; 0 between transfers.
    rate: u64,
}

impl Line {
    fn json(&self) -> String {
        format!(
            "{{\"id\":{},\"client\":{},\"user\":{},\"since\":{},\"idle_seconds\":{},\"command\":{},\"path\":{},\"bytes\":{},\"rate\":{}}}",
            self.id,
            json_string(&self.client),
            json_string(&self.user),
            self.since,
            self.idle,
            json_string(&self.command),
            json_string(&self.path),
            self.bytes,
            self.rate
        )
    }

    fn text(&self) -> String {
        let user = if self.user.is_empty() { "-" } else { &self.user };
        let command = format!("{} {}", self.command, self.path);
        format!(
            "{:>5} {:<22} {:<12} {:<20} {:>6} {:<32} {:>14} {:>12}",
            self.id,
            self.client,
            user,
            readable(UNIX_EPOCH + Duration::from_secs(self.since)),
            self.idle,
            command.trim_end(),
            self.bytes,
            self.rate
        )
    }
}

const TEXT_HEADER: &str = "   ID CLIENT                 USER         SINCE (UTC)            IDLE COMMAND                                   BYTES       BYTES/S";

/// `2026-12-07 19:05:01`, from MLSD's timestamp.
fn readable(time: SystemTime) -> String {
    let t = crate::listing::timestamp(time);
    format!("{}-{}-{} {}:{}:{}", &t[0..4], &t[4..6], &t[6..8], &t[8..10], &t[10..12], &t[12..14])
}

fn json_string(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The daemon's end: the socket file, mode 0600, removed when this is dropped (the server stopped).
pub struct StatusSocket {
    path: PathBuf,
    listener: UnixListener,
}

impl StatusSocket {
    /// Binds `path`, replacing a stale socket file (the pid file already proved no other daemon runs).
    pub fn bind(path: &Path) -> io::Result<StatusSocket> {
        let named = |e: io::Error| io::Error::new(e.kind(), format!("status socket {}: {e}", path.display()));
        if path.exists() && UnixStream::connect(path).is_err() {
            std::fs::remove_file(path).map_err(named)?;
        }
        let listener = UnixListener::bind(path).map_err(named)?;
        // SECURITY: the status socket names every user and client address: the daemon's user only.
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(named)?;
        Ok(StatusSocket { path: path.to_path_buf(), listener })
    }

    /// Answers each connection on a thread of its own: the request line `json` or `text`, then the
    /// table, then the connection is closed.
    pub fn serve(&self, online: Arc<Online>) -> io::Result<()> {
        let listener = self.listener.try_clone()?;
        thread::Builder::new().name("status".into()).spawn(move || {
            for connection in listener.incoming().flatten() {
                if let Err(e) = answer(connection, &online) {
                    log::warn!("status socket: {e}");
                }
            }
        })?;
        Ok(())
    }
}

impl Drop for StatusSocket {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

fn answer(connection: UnixStream, online: &Online) -> io::Result<()> {
    connection.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut request = String::new();
    BufReader::new(&connection).take(64).read_line(&mut request)?;
    let json = request.trim() == "json";
    let now = SystemTime::now();
    let mut out = String::new();
    if !json {
        out.push_str(TEXT_HEADER);
        out.push('\n');
    }
    for activity in online.snapshot() {
        let line = activity.line(now);
        out.push_str(&if json { line.json() } else { line.text() });
        out.push('\n');
    }
    (&connection).write_all(out.as_bytes())
}

/// `hdfsftpd --who`: asks the daemon at `path` and prints what it answers.
pub fn who(path: &Path, json: bool) -> io::Result<String> {
    let named = |e: io::Error| io::Error::new(e.kind(), format!("status socket {}: {e}", path.display()));
    let mut connection = UnixStream::connect(path).map_err(named)?;
    connection.set_read_timeout(Some(Duration::from_secs(10)))?;
    connection.write_all(if json { b"json\n" } else { b"text\n" })?;
    let mut answer = String::new();
    io::Read::read_to_string(&mut connection, &mut answer)?;
    Ok(answer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_are_listed_while_registered() {
        let online = Arc::new(Online::default());
        let first = online.register("127.0.0.1:4000".parse().unwrap());
        let second = online.register("[::1]:4001".parse().unwrap());
        first.activity.logged_in("alice");
        first.activity.command("RETR", "/big \"file\".bin");
        first.activity.transfer_starts();
        first.activity.bytes.store(4096, Ordering::Relaxed);
        let lines: Vec<String> = online.snapshot().iter().map(|a| a.line(SystemTime::now()).json()).collect();
        assert_eq!(lines.len(), 2);
        assert!(lines[0].starts_with("{\"id\":1,\"client\":\"127.0.0.1:4000\",\"user\":\"alice\""), "{}", lines[0]);
        assert!(
            lines[0].contains("\"command\":\"RETR\",\"path\":\"/big \\\"file\\\".bin\",\"bytes\":4096"),
            "{}",
            lines[0]
        );
        assert!(lines[1].contains("\"user\":\"\""), "{}", lines[1]);
        drop(second);
        assert_eq!(online.snapshot().len(), 1);
    }
}
