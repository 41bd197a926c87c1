//! An append-only log file that can be reopened in place (SIGHUP after logrotate moved it away), shared
//! by the diagnostic log and the transfer log.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use crate::locks;

#[derive(Clone)]
pub struct LogFile {
    path: PathBuf,
    file: Arc<Mutex<File>>,
}

impl LogFile {
    pub fn open(path: &Path) -> io::Result<LogFile> {
        let file = open_append(path)?;
        Ok(LogFile { path: path.to_path_buf(), file: Arc::new(Mutex::new(file)) })
    }

    /// Opens the path afresh; the old file (rotated away) is closed.
    pub fn reopen(&self) -> io::Result<()> {
        let fresh = open_append(&self.path)?;
        *locks::lock(&self.file) = fresh;
        Ok(())
    }

    /// The open file, e.g. to send stderr of a detached daemon to it.
    pub fn try_clone_file(&self) -> io::Result<File> {
        locks::lock(&self.file).try_clone()
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes one whole record at once, so lines from several threads never interleave.
    pub fn write_record(&self, record: &[u8]) -> io::Result<()> {
        locks::lock(&self.file).write_all(record)
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
