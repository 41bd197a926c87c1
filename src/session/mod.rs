//! One control connection: the command loop, its I/O and timeouts, and the session's state. Handlers
//! live beside this file, grouped by concern: login, files and directories, transfers, hashes,
//! security and information commands. Each is a method of a [`Context`] (context.rs), built per
//! command, that holds what a handler may touch; unit tests (tests.rs) and the dispatch fuzz target
//! build one over the stand-ins in doubles.rs.
//! The command table (`command::VERBS`) says which verbs exist and how they are gated; `dispatch` sends
//! each to its handler.

pub mod command;
mod context;
pub mod control;
#[cfg(any(test, feature = "fuzzing"))]
pub mod doubles;
mod files;
// Without the krb5 feature: AUTH GSSAPI is not offered and its commands are refused.
#[cfg_attr(not(feature = "krb5"), path = "gssapi_off.rs")]
mod gssapi;
mod hash;
mod info;
mod login;
pub mod reply;
mod security;
mod transfer;
mod user_limit;

#[cfg(test)]
mod tests;

use std::io;
use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::time::{Duration, Instant};

use command::{Command, TransferType, Verb};
use context::{Context, Network};
use control::{Control, Line};
use reply::*;

use crate::auth::{Authenticator, Identity};
use crate::config::Config;
use crate::data::{ControlWatch, Watch};
use crate::logfile::LogFile;
use crate::online::Registration;
use crate::shutdown::Shutdown;
use crate::storage::{self, Backend, Storage};
use crate::stream::Stream;
use crate::tls::Tls;
use crate::vpath::{BadPath, VPath};

/// What every session shares: configuration, the two seams, the transfer log and shutdown state.
pub struct Shared {
    pub config: Config,
    pub backend: Box<dyn Backend>,
    pub auth: Box<dyn Authenticator>,
    pub xferlog: Option<LogFile>,
    /// Present when a certificate is configured.
    pub tls: Option<Tls>,
    pub shutdown: Shutdown,
    /// Logged-in sessions per user, for `--max-per-user`.
    user_sessions: user_limit::UserSessions,
    /// What each session is doing, for `--who`.
    pub online: Arc<crate::online::Online>,
}

impl Shared {
    pub fn new(
        config: Config,
        backend: Box<dyn Backend>,
        auth: Box<dyn Authenticator>,
        xferlog: Option<LogFile>,
        tls: Option<Tls>,
    ) -> Shared {
        Shared {
            config,
            backend,
            auth,
            xferlog,
            tls,
            shutdown: Shutdown::default(),
            user_sessions: Default::default(),
            online: Arc::default(),
        }
    }
}

/// After a handler: go on, or end the session.
#[derive(Debug, PartialEq, Eq)]
pub enum Flow {
    Continue,
    Close,
}

/// Why a handler stopped early: a refusal, whose reply `dispatch` sends (it may close the session), or a
/// broken control connection.
enum Stop {
    Refused(Reply),
    Io(io::Error),
}

impl From<Reply> for Stop {
    fn from(reply: Reply) -> Stop {
        Stop::Refused(reply)
    }
}

impl From<io::Error> for Stop {
    fn from(error: io::Error) -> Stop {
        Stop::Io(error)
    }
}

/// What a handler returns: `?` on a `Result<_, Reply>` refuses the command with that reply.
type Handled = Result<Flow, Stop>;

/// Where the next data connection comes from.
enum DataPlan {
    None,
    Passive(TcpListener),
    Active(std::net::SocketAddr),
    /// A passive port of the memory data connections (doubles.rs): no socket behind it.
    #[cfg(any(test, feature = "fuzzing"))]
    MemoryPassive,
}

/// A logged-in user's state.
struct User {
    identity: Identity,
    storage: Box<dyn Storage>,
    cwd: VPath,
    /// Held while logged in (`--max-per-user`).
    _slot: user_limit::UserSlot,
}

/// One control connection: the connection, and the state its handlers change.
pub struct Session {
    shared: Arc<Shared>,
    control: Control,
    state: State,
}

/// What a session remembers between commands; handlers see it through their [`Context`].
struct State {
    connected_at: Instant,
    /// The client has sent a command line: until it does, the first-command limit applies.
    client_spoke: bool,
    /// USER given, waiting for PASS.
    pending_user: Option<String>,
    failed_logins: u32,
    user: Option<User>,
    transfer_type: TransferType,
    restart_offset: u64,
    rename_from: Option<VPath>,
    data_plan: DataPlan,
    epsv_all: bool,
    umask: u32,
    idle_timeout: Duration,
    mlst_facts: crate::listing::FactSet,
    /// What HASH computes (OPTS HASH).
    hash_algorithm: crate::checksum::Algorithm,
    security: security::Security,
    gss: gssapi::GssState,
    /// This session's line of `--who`.
    online: crate::online::Registration,
}

impl State {
    /// A new session's state, registered in `--who` as `client`.
    fn new(shared: &Shared, client: SocketAddr) -> State {
        State {
            connected_at: Instant::now(),
            client_spoke: false,
            pending_user: None,
            failed_logins: 0,
            user: None,
            // RFC 959 3.1.1.1: ASCII is the default type (lftp relies on it for `put -a`).
            transfer_type: TransferType::Ascii,
            restart_offset: 0,
            rename_from: None,
            data_plan: DataPlan::None,
            epsv_all: false,
            umask: 0o022,
            idle_timeout: shared.config.idle_timeout,
            mlst_facts: crate::listing::FactSet::offered(shared.backend.has_replication()),
            hash_algorithm: crate::checksum::Algorithm::Sha256,
            security: security::Security::new(None),
            gss: Default::default(),
            online: shared.online.register(client),
        }
    }

    /// What is left of the login limit, or before the first command of the (shorter) first-command
    /// limit: a silent connection holds its worker only briefly.
    fn login_time_left(&self, config: &Config) -> Duration {
        let limit = match self.client_spoke {
            true => config.login_timeout,
            false => config.login_timeout.min(config.first_command_timeout),
        };
        limit.saturating_sub(self.connected_at.elapsed())
    }
}

impl Session {
    /// A session for `client`: the connection's peer, or the client a balancer's PROXY header named.
    pub fn new(shared: Arc<Shared>, stream: Stream, client: SocketAddr) -> io::Result<Session> {
        let state = State::new(&shared, client);
        Ok(Session { control: Control::new(stream, client)?, shared, state })
    }

    /// Serves the connection until QUIT, a timeout, or the client leaves.
    pub fn run(mut self) {
        let peer = self.control.peer;
        match self.serve() {
            Ok(()) => self.control.close(),
            Err(e) => log::info!("{peer}: connection error: {e}"),
        }
        if let Some(user) = &self.state.user {
            log::info!("{peer}: logout {} after {:.0?}", user.identity.user, self.state.connected_at.elapsed());
        }
    }

    fn serve(&mut self) -> io::Result<()> {
        self.write_reply(&Reply::new(READY, "hdfsftpd ready"))?;
        loop {
            let Some(line) = self.next_line()? else {
                self.write_reply(&Reply::closing(
                    SERVICE_UNAVAILABLE,
                    "Server shutting down, closing control connection.",
                ))?;
                return Ok(());
            };
            let first_line = !self.state.client_spoke;
            self.state.client_spoke |=
                matches!(line, Line::Text(_) | Line::Protected { .. } | Line::TooLong | Line::NotUtf8);
            if first_line && self.is_stray_proxy_header(&line) {
                log::warn!("{}: PROXY header refused: not from a --proxy-protocol-from address", self.control.peer);
                let refusal =
                    Reply::closing(SERVICE_UNAVAILABLE, "PROXY protocol header not accepted from your address.");
                self.write_reply(&refusal)?;
                return Ok(());
            }
            let flow = match line {
                Line::Text(text) => self.handle_line(&text)?,
                Line::Protected { command, confidential } => self.protected_line(command, confidential)?,
                Line::TooLong => self.write_reply(&Reply::new(
                    SYNTAX_ERROR,
                    format!("Command line too long (limit {})", control::MAX_LINE),
                ))?,
                Line::NotUtf8 => self.write_reply(&Reply::new(SYNTAX_ERROR, "Command is not valid UTF-8"))?,
                Line::Closed => {
                    log::debug!("{}: client closed the control connection", self.control.peer);
                    Flow::Close
                }
                Line::TimedOut => self.timed_out()?,
            };
            if flow == Flow::Close {
                return Ok(());
            }
        }
    }

    /// SECURITY: a balancer not in `--proxy-protocol-from` cannot name the client; its header (a v2
    /// header reads as an empty line here) ends the session instead of passing for commands.
    fn is_stray_proxy_header(&self, line: &Line) -> bool {
        let Line::Text(text) = line else { return false };
        !self.shared.config.proxy_protocol_from.is_empty()
            && crate::proxy_protocol::is_header_start(format!("{text}\r\n").as_bytes())
    }

    /// The next line, or `None` when the server is shutting down.
    fn next_line(&mut self) -> io::Result<Option<Line>> {
        let deadline = Instant::now() + self.read_timeout();
        loop {
            if self.shared.shutdown.is_stopping() {
                return Ok(None);
            }
            let wait = deadline.saturating_duration_since(Instant::now()).min(Shutdown::POLL);
            match self.control.read_line(wait.max(Duration::from_millis(1)))? {
                Line::TimedOut if Instant::now() < deadline => continue,
                line => return Ok(Some(line)),
            }
        }
    }

    /// Idle limit, shortened before login to what is left of the login limit.
    fn read_timeout(&self) -> Duration {
        if self.state.user.is_some() {
            return self.state.idle_timeout;
        }
        self.state.login_time_left(&self.shared.config).min(self.state.idle_timeout).max(Duration::from_millis(1))
    }

    fn timed_out(&mut self) -> io::Result<Flow> {
        let what = match (&self.state.user, self.state.client_spoke) {
            (Some(_), _) => "idle",
            (None, true) => "login",
            (None, false) => "first command",
        };
        log::info!("{}: {what} timeout, closing", self.control.peer);
        let text = format!("Timeout ({what} time limit reached): closing control connection");
        self.write_reply(&Reply::closing(SERVICE_UNAVAILABLE, text))
    }

    /// Handles one command line: its handler runs over a context of this session's parts.
    pub(crate) fn handle_line(&mut self, line: &str) -> io::Result<Flow> {
        self.context().handle_line(line)
    }

    /// Sends a reply; the session ends after one that closes it.
    fn write_reply(&mut self, reply: &Reply) -> io::Result<Flow> {
        self.context().write_reply(reply)
    }

    /// What one command's handler may touch: this session's connection, state and shared parts, and
    /// real data connections.
    fn context(&mut self) -> Context<'_> {
        Context { shared: &self.shared, control: &mut self.control, data: &Network, state: &mut self.state }
    }
}

impl Context<'_> {
    fn handle_line(&mut self, line: &str) -> io::Result<Flow> {
        let peer = self.control.peer();
        let handled = match command::parse(line) {
            Ok((verb, command)) => {
                // SECURITY: passwords are never logged, at any level, nor shown by --who.
                if verb.secret {
                    log::debug!("{peer} -> {} ****", verb.name);
                    self.state.online.activity.command(verb.name, "");
                } else {
                    log::debug!("{peer} -> {line}");
                    self.state.online.activity.command(verb.name, command::split(line).1);
                }
                self.dispatch(verb, command)
            }
            Err(reply) => {
                log::debug!("{peer} -> {} (refused: {})", line.chars().take(80).collect::<String>(), reply.lines[0]);
                Err(Stop::Refused(reply))
            }
        };
        match handled {
            Ok(flow) => Ok(flow),
            Err(Stop::Refused(reply)) => self.write_reply(&reply),
            Err(Stop::Io(e)) => Err(e),
        }
    }

    /// The gates every verb passes as the command table says, then its handler.
    fn dispatch(&mut self, verb: &Verb, command: Command) -> Handled {
        // RNFR must be followed directly by RNTO. (REST holds until the next transfer: clients send
        // PASV or TYPE between REST and RETR.)
        if !matches!(command, Command::Rnfr(_) | Command::Rnto(_)) {
            self.state.rename_from = None;
        }
        self.check_command_protection(&command)?;
        if verb.needs_login && self.state.user.is_none() {
            return self.reply(NOT_LOGGED_IN, "Please login with USER and PASS");
        }
        if verb.needs_login && self.credentials_expired() {
            return self.end_expired_login();
        }
        // SECURITY: --require-data-tls covers data connections only; STAT <path> answers on the
        // control connection (SECURITY.md, TLS policies).
        if verb.opens_data {
            self.check_data_protection()?;
        }
        match command {
            Command::User(name) => self.user_command(name),
            Command::Pass(password) => self.pass_command(&password),
            Command::Quit => self.quit(),
            Command::Noop => self.noop(),
            Command::Syst => self.syst(),
            Command::Feat => self.feat(),
            Command::Opts(option) => self.opts(&option),
            Command::Help(topic) => self.help(topic.as_deref()),
            Command::Stat(path) => self.stat(path.as_deref()),
            Command::Pwd => self.pwd(),
            Command::Cwd(path) => self.cwd(&path),
            Command::Cdup => self.cdup(),
            Command::Mkd(path) => self.mkd(&path),
            Command::Rmd(path) => self.rmd(&path),
            Command::Dele(path) => self.dele(&path),
            Command::Rnfr(path) => self.rnfr(&path),
            Command::Rnto(path) => self.rnto(&path),
            Command::List(args) => self.list(args.as_deref(), transfer::ListFormat::Long),
            Command::Nlst(args) => self.list(args.as_deref(), transfer::ListFormat::Names),
            Command::Mlsd(path) => self.list(path.as_deref(), transfer::ListFormat::Facts),
            Command::Mlst(path) => self.mlst(path.as_deref()),
            Command::Size(path) => self.size(&path),
            Command::Mdtm(path) => self.mdtm(&path),
            Command::Mfmt { time, path } => self.mfmt(&time, &path),
            Command::Hash(path) => self.hash(&path),
            Command::Retr(path) => self.retr(&path),
            Command::Stor(path) => self.store(&path, transfer::StoreKind::Stor),
            Command::Appe(path) => self.store(&path, transfer::StoreKind::Appe),
            Command::Stou => self.store("", transfer::StoreKind::Stou),
            Command::Rest(offset) => self.rest(offset),
            Command::Abor => self.abor(),
            Command::Type(kind) => self.set_type(kind),
            Command::Mode => self.mode(),
            Command::Stru => self.stru(),
            Command::Allo => self.allo(),
            Command::Port(target) | Command::Eprt(target) => self.port(target),
            Command::Pasv => self.pasv(),
            Command::Epsv(request) => self.epsv(request),
            Command::Site(args) => self.site(&args),
            Command::Auth(mechanism) => self.auth(&mechanism),
            Command::Pbsz(size) => self.pbsz(&size),
            Command::Prot(level) => self.prot(level),
            Command::Ccc => self.ccc(),
            Command::Adat(data) => self.adat(&data),
            Command::Protected(level, data) => self.protected_command(level, &data),
        }
    }

    fn reply(&mut self, code: u16, text: impl Into<String>) -> Handled {
        self.send(&Reply::new(code, text))
    }

    fn send(&mut self, reply: &Reply) -> Handled {
        Ok(self.write_reply(reply)?)
    }

    /// Sends a reply; the session ends after one that closes it.
    fn write_reply(&mut self, reply: &Reply) -> io::Result<Flow> {
        self.control.reply(reply)?;
        Ok(if reply.closes { Flow::Close } else { Flow::Continue })
    }

    /// The logged-in user; handlers run only after the login gate in `dispatch`.
    fn logged_in(&self) -> &User {
        self.state.user.as_ref().expect("handlers after login have a user")
    }

    /// Resolves a client's path against the working directory; a name `--deny-name` matches is refused.
    fn resolve(&self, name: &str) -> Result<VPath, Reply> {
        let path = self.logged_in().cwd.resolve(name).map_err(|BadPath(why)| Reply::new(NAME_NOT_ALLOWED, why))?;
        if let Some(denied) = self.shared.config.deny_names.first_match(&path) {
            log::info!("{}: {} refused by --deny-name ({denied})", self.control.peer(), path);
            return Err(Reply::new(
                FILE_UNAVAILABLE,
                format!("{path}: Permission denied: the name {denied} is not allowed"),
            ));
        }
        Ok(path)
    }

    /// A directory's entries without the names `--hide-name` and `--deny-name` keep out of listings.
    fn visible_entries(&self, path: &VPath) -> storage::Result<storage::Listing> {
        let entries = self.logged_in().storage.list(path)?;
        let config = &self.shared.config;
        if config.hide_names.is_empty() && config.deny_names.is_empty() {
            return Ok(entries);
        }
        let (hide, deny) = (config.hide_names.clone(), config.deny_names.clone());
        Ok(Box::new(entries.filter(move |entry| {
            entry.as_ref().map_or(true, |entry| !hide.matches(&entry.name) && !deny.matches(&entry.name))
        })))
    }

    /// The logged-in user's rate limit for a transfer in `direction` (`--max-download-rate`, `--user-rate`).
    fn rate_limit(&self, direction: crate::rate_limit::Direction) -> Option<u64> {
        self.shared.config.rates.of(&self.logged_in().identity.user, direction)
    }

    /// Refuses changes for read-only users.
    fn require_writable(&self) -> Result<(), Reply> {
        // SECURITY: read-only accounts (and anonymous) change nothing.
        if self.logged_in().identity.writable {
            Ok(())
        } else {
            Err(Reply::new(FILE_UNAVAILABLE, "Permission denied: this account is read-only"))
        }
    }
}

/// A transfer's (or HASH's) watch: the data timeout, shutdown, the byte count `--who` shows, and the
/// rate limit, if any.
fn transfer_watch<'a>(
    control: &'a mut dyn ControlWatch,
    shared: &'a Shared,
    online: &Registration,
    rate: Option<u64>,
) -> Watch<'a> {
    online.activity.transfer_starts();
    Watch::new(control, shared.config.data_timeout, &shared.shutdown)
        .publishing(Arc::clone(&online.activity.bytes))
        .limited_to(rate)
}

/// The reply code of a storage failure in the middle of a transfer or when its file is closed (where
/// HDFS reports most write failures): a full disk or an exceeded quota as `storage_reply` names them,
/// anything else a local error (451).
fn transfer_failure_code(kind: storage::ErrorKind) -> u16 {
    match kind {
        storage::ErrorKind::NoSpace => INSUFFICIENT_STORAGE,
        storage::ErrorKind::QuotaExceeded => EXCEEDED_STORAGE,
        _ => LOCAL_ERROR,
    }
}

/// The reply for a storage failure on `path`.
fn storage_reply(path: &VPath, error: &storage::Error) -> Reply {
    use storage::ErrorKind::*;
    match error.kind {
        NotFound => Reply::new(FILE_UNAVAILABLE, format!("{path}: No such file or directory")),
        PermissionDenied => Reply::new(FILE_UNAVAILABLE, format!("{path}: Permission denied: {error}")),
        AlreadyExists => Reply::new(FILE_UNAVAILABLE, format!("{path}: File exists")),
        NotEmpty => Reply::new(FILE_UNAVAILABLE, format!("{path}: Directory not empty")),
        WrongType => Reply::new(FILE_UNAVAILABLE, format!("{path}: {error}")),
        InvalidName => Reply::new(NAME_NOT_ALLOWED, format!("File name not allowed: {error}")),
        InvalidOffset => Reply::new(INVALID_REST, format!("{path}: {error}")),
        Unsupported => Reply::new(NOT_IMPLEMENTED_FOR_PARAM, format!("{path}: {error}")),
        NoSpace => Reply::new(INSUFFICIENT_STORAGE, format!("{path}: Insufficient storage space: {error}")),
        QuotaExceeded => Reply::new(EXCEEDED_STORAGE, format!("{path}: Exceeded storage allocation: {error}")),
        Busy => Reply::new(FILE_BUSY, format!("{path}: File busy: {error}")),
        Io => Reply::new(LOCAL_ERROR, format!("{path}: {error}")),
    }
}
