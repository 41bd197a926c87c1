//! The storage seam: what the FTP session needs from a file system, and nothing of FTP.
//!
//! A [`Backend`] is shared by the whole server; it opens one [`Storage`] per logged-in session, acting
//! as that session's user and confined to that user's home. Paths handed to a `Storage` are virtual
//! paths ([`VPath`]): absolute, normalised, relative to the user's home.

#[cfg(feature = "hdfs")]
pub mod hdfs;
pub mod local;
#[cfg(any(test, feature = "fuzzing"))]
pub mod memory;

use std::fmt;
use std::fs::File;
use std::io::{self, Read, Write};
use std::time::SystemTime;

use crate::auth::Identity;
use crate::config::{LOCAL_ROOT, STORAGE};
use crate::settings::{ConfigError, Settings};
use crate::vpath::VPath;

/// What kind of failure a storage operation met; the session maps each to an FTP reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    NotFound,
    AlreadyExists,
    PermissionDenied,
    NotEmpty,
    /// The operation or this form of it is not available on the backend.
    Unsupported,
    /// The target is a directory where a file was expected, or the reverse.
    WrongType,
    /// The name is not acceptable to the backend (too long, forbidden characters).
    InvalidName,
    /// A restart offset the backend cannot write at (beyond the end; HDFS: anywhere but the end).
    InvalidOffset,
    /// The filesystem is full.
    NoSpace,
    /// A quota or size limit is exceeded.
    QuotaExceeded,
    /// Someone else is writing the file (HDFS: another client holds its lease).
    Busy,
    Io,
}

/// A storage failure: its kind and the backend's own explanation (errno text, Java root cause…).
#[derive(Debug, Clone)]
pub struct Error {
    pub kind: ErrorKind,
    pub message: String,
}

impl Error {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Error { kind, message: message.into() }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}

/// A home that cannot be opened at login. Its path (the server's own layout) goes to the log; the error,
/// which the client is told, keeps only the reason.
pub fn unusable_home(home: impl fmt::Display, reason: Error) -> Error {
    // SECURITY: the client learns why its home cannot be opened, never where it is.
    log::warn!("home {home}: {reason}");
    reason
}

impl ErrorKind {
    /// The kind of an operating-system (or libhdfs errno) failure.
    pub fn of_io(kind: std::io::ErrorKind) -> ErrorKind {
        use std::io::ErrorKind as Io;
        match kind {
            Io::NotFound => ErrorKind::NotFound,
            Io::AlreadyExists => ErrorKind::AlreadyExists,
            Io::PermissionDenied => ErrorKind::PermissionDenied,
            Io::DirectoryNotEmpty => ErrorKind::NotEmpty,
            Io::Unsupported => ErrorKind::Unsupported,
            Io::IsADirectory | Io::NotADirectory => ErrorKind::WrongType,
            Io::InvalidFilename => ErrorKind::InvalidName,
            Io::StorageFull => ErrorKind::NoSpace,
            Io::QuotaExceeded | Io::FileTooLarge => ErrorKind::QuotaExceeded,
            Io::ResourceBusy => ErrorKind::Busy,
            _ => ErrorKind::Io,
        }
    }
}

impl From<std::io::Error> for Error {
    fn from(err: std::io::Error) -> Self {
        Error::new(ErrorKind::of_io(err.kind()), strip_os_error_suffix(&err.to_string()))
    }
}

/// `io::Error`'s text ends in " (os error N)"; the reply reads better without it.
fn strip_os_error_suffix(text: &str) -> String {
    match text.rfind(" (os error ") {
        Some(at) => text[..at].to_string(),
        None => text.to_string(),
    }
}

pub type Result<T> = std::result::Result<T, Error>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileType {
    File,
    Dir,
    Symlink,
}

/// What a listing shows of one file.
#[derive(Debug, Clone)]
pub struct Metadata {
    pub file_type: FileType,
    pub size: u64,
    pub modified: SystemTime,
    /// Permission bits (0o7777), as `ls -l` and `unix.mode` show them.
    pub mode: u32,
    pub owner: String,
    pub group: String,
    pub links: u64,
    /// HDFS block replication; `None` where the backend has no such notion.
    pub replication: Option<u16>,
}

impl Metadata {
    pub fn is_dir(&self) -> bool {
        self.file_type == FileType::Dir
    }
}

/// One directory entry: its name (no slashes) and metadata.
#[derive(Debug, Clone)]
pub struct DirEntry {
    pub name: String,
    pub metadata: Metadata,
}

/// A directory listing, produced while the client reads it rather than collected first. It owns what
/// it needs, so a session can open it (and report a refusal) before the data connection's 150 reply.
pub type Listing = Box<dyn Iterator<Item = Result<DirEntry>> + Send>;

/// How an upload opens its target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteMode {
    /// Create, or truncate an existing file (STOR).
    Truncate,
    /// Create, or add to the end of an existing file (APPE).
    Append,
    /// Write from this offset of an existing file (REST + STOR), keeping what precedes it.
    At(u64),
    /// Create; fail with `AlreadyExists` if the name is taken (STOU).
    CreateNew,
}

/// A file opened for download.
pub trait ReadFile: Read + Send {
    /// The local file behind this reader, when there is one, so a plain-socket download can hand the
    /// copy to the kernel (sendfile). Backends without a local file keep the default.
    fn as_local_file(&mut self) -> Option<&mut File> {
        None
    }

    /// True when [`ReadFile::lend`] may be called now: the reader holds the next bytes in a buffer of
    /// its own, and the download can send them from there rather than have them copied into its own.
    fn lends(&self) -> bool {
        false
    }

    /// The next bytes of the file, at most `max`, from the reader's own buffer; empty at the end of the
    /// file. Called only when [`ReadFile::lends`] says so.
    fn lend(&mut self, _max: usize) -> io::Result<&[u8]> {
        Err(io::Error::other("this reader lends no buffer"))
    }
}

/// A file opened for download, with its size when opened (RETR announces it).
pub struct OpenedFile {
    pub file: Box<dyn ReadFile>,
    pub size: u64,
}

/// A restart offset must not lie beyond the end of the file it restarts (REST then RETR or STOR).
pub fn check_restart_offset(offset: u64, size: u64) -> Result<()> {
    if offset > size {
        return Err(Error::new(
            ErrorKind::InvalidOffset,
            format!("restart offset {offset} is beyond the end of the file ({size} bytes)"),
        ));
    }
    Ok(())
}

/// A file opened for upload. Dropping it without [`WriteFile::finish`] means the upload failed: the
/// backend keeps what was written as a partial file, or discards it where uploads are atomic.
pub trait WriteFile: Write + Send {
    /// The local file behind this writer, when there is one, so a plain-socket upload can be spliced
    /// into it by the kernel. Backends without a local file keep the default.
    fn as_local_file(&mut self) -> Option<&mut File> {
        None
    }

    /// Flushes and closes the file, reporting the errors that only surface at close (HDFS does).
    fn finish(self: Box<Self>) -> Result<()>;
    /// True when `finish` is what makes the upload visible (atomic uploads): the transfer loop then
    /// takes extra care to tell a killed client from a finished one.
    fn publishes_on_finish(&self) -> bool {
        false
    }
}

/// One session's view of the storage, acting as that session's user.
pub trait Storage: Send {
    fn metadata(&self, path: &VPath) -> Result<Metadata>;
    /// Entries of a directory, streamed; `.` and `..` are not included.
    fn list(&self, path: &VPath) -> Result<Listing>;
    /// Opens a file for reading, positioned at `offset` (`InvalidOffset` beyond its end; `WrongType` for a
    /// directory). One call, not `metadata` then open, so a download looks its path up once.
    fn open_read(&self, path: &VPath, offset: u64) -> Result<OpenedFile>;
    /// Opens a file for writing; `mode` (permission bits, umask applied) is used when it is created.
    fn open_write(&self, path: &VPath, how: WriteMode, mode: u32) -> Result<Box<dyn WriteFile>>;
    fn make_dir(&self, path: &VPath, mode: u32) -> Result<()>;
    /// Removes an empty directory; `NotEmpty` otherwise.
    fn remove_dir(&self, path: &VPath) -> Result<()>;
    fn remove_file(&self, path: &VPath) -> Result<()>;
    /// Renames; fails with `AlreadyExists` if the target exists and the backend will not replace it.
    fn rename(&self, from: &VPath, to: &VPath) -> Result<()>;
    fn set_mode(&self, path: &VPath, mode: u32) -> Result<()>;
    fn set_modified(&self, path: &VPath, modified: SystemTime) -> Result<()>;
    /// The file's checksum as the storage itself keeps it, as (algorithm, hex): on HDFS what
    /// `hdfs dfs -checksum` prints. `Unsupported` where the storage keeps none.
    fn checksum(&self, path: &VPath) -> Result<(String, String)> {
        Err(Error::new(ErrorKind::Unsupported, format!("{path}: this storage keeps no file checksums")))
    }
}

/// A storage system shared by the server; opens a [`Storage`] for each logged-in session.
pub trait Backend: Send + Sync {
    /// A short name for logs and `STAT` ("local", "hdfs").
    fn name(&self) -> &'static str;
    /// Whether files have a block replication (`Metadata::replication`), which listings then show.
    fn has_replication(&self) -> bool {
        false
    }
    /// Whether a session without credentials of its own still reaches storage as its user (HDFS
    /// impersonation, `--hdfs-proxy-user`), so a Kerberos single sign-on without a delegated ticket can
    /// be served.
    #[cfg_attr(not(feature = "krb5"), allow(dead_code))]
    fn acts_for_users(&self) -> bool {
        false
    }
    /// Opens storage for one session, acting as `identity` and confined to its home.
    fn open_session(&self, identity: &Identity) -> Result<Box<dyn Storage>>;
    /// Called once when the server stops, after the grace period: closes whatever sessions still hold
    /// open (HDFS output streams are not closed for us at exit).
    fn shutdown(&self) {}
}

/// Builds the backend `--storage` names.
pub fn build(settings: &Settings) -> std::result::Result<Box<dyn Backend>, ConfigError> {
    match settings.get(&STORAGE)?.as_str() {
        "local" => {
            // SECURITY: an impersonation that silently did nothing would hide a misconfiguration.
            #[cfg(feature = "hdfs")]
            hdfs::refuse_without_hdfs(settings)?;
            let root = settings.require(&LOCAL_ROOT, "with --storage local")?;
            let backend = local::LocalBackend::new(&root).map_err(|e| LOCAL_ROOT.error(e.to_string()))?;
            Ok(Box::new(backend))
        }
        #[cfg(feature = "hdfs")]
        "hdfs" => Ok(Box::new(hdfs::HdfsBackend::new(settings)?)),
        #[cfg(not(feature = "hdfs"))]
        "hdfs" => {
            Err(STORAGE.error("hdfs: this hdfsftpd is built without HDFS storage (cargo feature hdfs, on by default)"))
        }
        other => Err(STORAGE.error(format!("unknown storage '{other}' (local, hdfs)"))),
    }
}
