//! An append-only log file that can be reopened in place (SIGHUP after logrotate moved it away), shared
//! by the diagnostic log and the transfer log.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use crate::locks;
use crate::syslog::{self, Syslog};

/// The `--log-file` / `--xferlog` value that means the local syslog instead of a file.
pub const SYSLOG: &str = "syslog";

pub fn is_syslog(path: &Path) -> bool {
    path == Path::new(SYSLOG)
}

/// Where `--syslog-socket` and `--syslog-facility` send syslog records.
pub struct SyslogTarget<'a> {
    pub socket: &'a Path,
    pub facility: u8,
}
#[derive(Clone)]
pub enum LogFile {
    File { path: PathBuf, file: Arc<Mutex<File>> },
    Syslog(Arc<Syslog>),
}

impl LogFile {
    /// The file at `path`, or the syslog when `path` is `syslog`.
    pub fn open(path: &Path, syslog: &SyslogTarget) -> io::Result<LogFile> {
        if is_syslog(path) {
            return Ok(LogFile::Syslog(Arc::new(Syslog::connect(syslog.socket, syslog.facility)?)));
        }
        let file = open_append(path)?;
        Ok(LogFile::File { path: path.to_path_buf(), file: Arc::new(Mutex::new(file)) })
    }

    /// Opens the path afresh; the old file (rotated away) is closed. The syslog needs nothing.
    pub fn reopen(&self) -> io::Result<()> {
        if let LogFile::File { path, file } = self {
            let fresh = open_append(path)?;
            *locks::lock(file) = fresh;
        }
        Ok(())
    }

    /// The open file, to send stderr of a detached daemon to it; none for the syslog.
    pub fn stderr_file(&self) -> io::Result<Option<File>> {
        match self {
            LogFile::File { file, .. } => locks::lock(file).try_clone().map(Some),
            LogFile::Syslog(_) => Ok(None),
        }
    }

    /// Where the records go, for messages.
    pub fn describe(&self) -> String {
        match self {
            LogFile::File { path, .. } => path.display().to_string(),
            LogFile::Syslog(_) => SYSLOG.to_string(),
        }
    }

    /// Writes one whole record at once, so lines from several threads never interleave; on the
    /// syslog, at severity info.
    pub fn write_record(&self, record: &[u8]) -> io::Result<()> {
        match self {
            LogFile::File { file, .. } => locks::lock(file).write_all(record),
            LogFile::Syslog(syslog) => {
                syslog.send(syslog::severity(log::Level::Info), &String::from_utf8_lossy(record))
            }
        }
    }
}

fn open_append(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o640)
        .open(path)
        .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))
}

/// `Write` for env_logger: each formatted record arrives in one write call.
impl Write for LogFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_record(buf)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
