//! One control connection: the command loop and the session's state. Handlers live beside this file,
//! grouped by concern: login, files and directories, transfers, and information commands.

/// Lets handlers use `?` on `Result<_, Reply>`: the error is sent and the session goes on.
macro_rules! or_reply {
    ($session:expr, $result:expr) => {
        match $result {
            Ok(value) => value,
            Err(reply) => return $session.send(&reply),
        }
    };
}

pub mod command;
pub mod control;
mod files;
mod info;
mod login;
pub mod reply;
mod security;
mod transfer;

use std::io;
use std::net::TcpListener;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use command::{Command, TransferType};
use control::{Control, Line};
use reply::*;

use crate::auth::{Authenticator, Identity};
use crate::config::Config;
use crate::logfile::LogFile;
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
    /// Set on SIGTERM: no new sessions; idle sessions close, running transfers go on.
    pub shutting_down: AtomicBool,
    /// Set when the shutdown grace period is over: running transfers stop.
    pub abort_transfers: AtomicBool,
}

impl Shared {
    pub fn new(
        config: Config,
        backend: Box<dyn Backend>,
        auth: Box<dyn Authenticator>,
        xferlog: Option<LogFile>,
        tls: Option<Tls>,
    ) -> Shared {
        let (shutting_down, abort_transfers) = (AtomicBool::new(false), AtomicBool::new(false));
        Shared { config, backend, auth, xferlog, tls, shutting_down, abort_transfers }
    }
}

/// After a handler: go on, or end the session.
#[derive(Debug, PartialEq, Eq)]
pub enum Flow {
    Continue,
    Close,
}

type Handled = io::Result<Flow>;

/// Where the next data connection comes from.
enum DataPlan {
    None,
    Passive(TcpListener),
    Active(std::net::SocketAddr),
}

/// A logged-in user's state.
struct User {
    identity: Identity,
    storage: Box<dyn Storage>,
    cwd: VPath,
}

pub struct Session {
    shared: Arc<Shared>,
    control: Control,
    connected_at: Instant,
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
    /// The transfer buffer, allocated at the first transfer and reused.
    buffer: Vec<u8>,
    security: security::Security,
}

impl Session {
    pub fn new(shared: Arc<Shared>, stream: Stream) -> io::Result<Session> {
        let idle_timeout = shared.config.idle_timeout;
        Ok(Session {
            shared,
            control: Control::new(stream)?,
            connected_at: Instant::now(),
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
            idle_timeout,
            mlst_facts: crate::listing::FactSet::all(),
            buffer: Vec::new(),
            security: security::Security::new(None),
        })
    }

    /// Serves the connection until QUIT, a timeout, or the client leaves.
    pub fn run(mut self) {
        let peer = self.control.peer;
        if let Err(e) = self.serve() {
            log::info!("{peer}: connection error: {e}");
        }
        if let Some(user) = &self.user {
            log::info!("{peer}: logout {} after {:.0?}", user.identity.user, self.connected_at.elapsed());
        }
    }

    fn serve(&mut self) -> io::Result<()> {
        self.reply(READY, "hdfsftpd ready")?;
        loop {
            let Some(line) = self.next_line()? else {
                self.reply(SERVICE_UNAVAILABLE, "Server shutting down, closing control connection.")?;
                return Ok(());
            };
            let flow = match line {
                Line::Text(text) => self.handle_line(&text)?,
                Line::TooLong => {
                    self.reply(SYNTAX_ERROR, format!("Command line too long (limit {})", control::MAX_LINE))?
                }
                Line::NotUtf8 => self.reply(SYNTAX_ERROR, "Command is not valid UTF-8")?,
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

    /// The next line, or `None` when the server is shutting down.
    fn next_line(&mut self) -> io::Result<Option<Line>> {
        let deadline = Instant::now() + self.read_timeout();
        loop {
            if self.shared.shutting_down.load(Ordering::SeqCst) {
                return Ok(None);
            }
            let wait = deadline.saturating_duration_since(Instant::now()).min(crate::server::SHUTDOWN_POLL);
            match self.control.read_line(wait.max(Duration::from_millis(1)))? {
                Line::TimedOut if Instant::now() < deadline => continue,
                line => return Ok(Some(line)),
            }
        }
    }

    /// Idle limit, shortened to what is left of the login limit before login.
    fn read_timeout(&self) -> Duration {
        if self.user.is_some() {
            return self.idle_timeout;
        }
        let left = self.shared.config.login_timeout.saturating_sub(self.connected_at.elapsed());
        left.min(self.idle_timeout).max(Duration::from_millis(1))
    }

    fn timed_out(&mut self) -> Handled {
        let what = if self.user.is_some() { "idle" } else { "login" };
        log::info!("{}: {what} timeout, closing", self.control.peer);
        self.reply(SERVICE_UNAVAILABLE, format!("Timeout ({what} time limit reached): closing control connection"))?;
        Ok(Flow::Close)
    }

    fn handle_line(&mut self, line: &str) -> Handled {
        let peer = self.control.peer;
        match command::parse(line) {
            Ok(command) => {
                if command.is_password() {
                    log::debug!("{peer} -> PASS ****");
                } else {
                    log::debug!("{peer} -> {line}");
                }
                self.dispatch(command)
            }
            Err(reply) => {
                log::debug!("{peer} -> {} (refused: {})", line.chars().take(80).collect::<String>(), reply.lines[0]);
                self.send(&reply)
            }
        }
    }

    fn dispatch(&mut self, command: Command) -> Handled {
        // RNFR must be followed directly by RNTO. (REST holds until the next transfer: clients send
        // PASV or TYPE between REST and RETR.)
        if !matches!(command, Command::Rnfr(_) | Command::Rnto(_)) {
            self.rename_from = None;
        }
        let needs_login = !matches!(
            command,
            Command::User(_)
                | Command::Pass(_)
                | Command::Quit
                | Command::Noop
                | Command::Syst
                | Command::Feat
                | Command::Help(_)
                | Command::Opts(_)
                | Command::Auth(_)
                | Command::Pbsz(_)
                | Command::Prot(_)
                | Command::Ccc
        );
        if needs_login && self.user.is_none() {
            return self.reply(NOT_LOGGED_IN, "Please login with USER and PASS");
        }
        if needs_login && self.credentials_expired() {
            return self.end_expired_login();
        }
        if command.opens_data() {
            or_reply!(self, self.check_data_protection());
        }
        match command {
            Command::User(name) => self.user_command(name),
            Command::Pass(password) => self.pass_command(&password),
            Command::Quit => {
                self.reply(GOODBYE, "Goodbye.")?;
                Ok(Flow::Close)
            }
            Command::Noop => self.reply(OK, "NOOP ok."),
            Command::Syst => self.reply(SYSTEM_TYPE, "UNIX Type: L8"),
            Command::Feat => self.feat(),
            Command::Opts(option) => self.opts(&option),
            Command::Help(topic) => self.help(topic.as_deref()),
            Command::Stat(path) => self.stat(path.as_deref()),
            Command::Pwd => self.pwd(),
            Command::Cwd(path) => self.cwd(&path),
            Command::Cdup => self.cwd(".."),
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
            Command::Retr(path) => self.retr(&path),
            Command::Stor(path) => self.store(&path, transfer::StoreKind::Stor),
            Command::Appe(path) => self.store(&path, transfer::StoreKind::Appe),
            Command::Stou => self.store("", transfer::StoreKind::Stou),
            Command::Rest(offset) => {
                self.restart_offset = offset;
                self.reply(PENDING_FURTHER_INFO, format!("Restart position accepted ({offset})."))
            }
            Command::Abor => self.reply(225, "No transfer to ABOR."),
            Command::Type(kind) => {
                self.transfer_type = kind;
                let name = if kind == TransferType::Ascii { "ASCII" } else { "Binary" };
                self.reply(OK, format!("Switching to {name} mode."))
            }
            Command::Mode => self.reply(OK, "Mode set to S."),
            Command::Stru => self.reply(OK, "Structure set to F."),
            Command::Allo => self.reply(NOT_NEEDED, "ALLO command ignored."),
            Command::Port(target) | Command::Eprt(target) => self.port(target),
            Command::Pasv => self.pasv(),
            Command::Epsv { all } => self.epsv(all),
            Command::Site(args) => self.site(&args),
            Command::Auth(mechanism) => self.auth(&mechanism),
            Command::Pbsz(size) => self.pbsz(&size),
            Command::Prot(level) => self.prot(level),
            Command::Ccc => self.ccc(),
        }
    }

    fn reply(&mut self, code: u16, text: impl Into<String>) -> Handled {
        self.send(&Reply::new(code, text))
    }

    fn send(&mut self, reply: &Reply) -> Handled {
        self.control.reply(reply)?;
        Ok(if reply.code == SERVICE_UNAVAILABLE { Flow::Close } else { Flow::Continue })
    }

    /// The logged-in user; handlers run only after the login gate in `dispatch`.
    fn logged_in(&self) -> &User {
        self.user.as_ref().expect("handlers after login have a user")
    }

    /// Resolves a client's path against the working directory.
    fn resolve(&self, name: &str) -> Result<VPath, Reply> {
        self.logged_in().cwd.resolve(name).map_err(|BadPath(why)| Reply::new(NAME_NOT_ALLOWED, why))
    }

    /// Refuses changes for read-only users.
    fn require_writable(&self) -> Result<(), Reply> {
        if self.logged_in().identity.writable {
            Ok(())
        } else {
            Err(Reply::new(FILE_UNAVAILABLE, "Permission denied: this account is read-only"))
        }
    }
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
