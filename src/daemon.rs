//! Daemon life cycle pieces: the pid file and the switch to an unprivileged user.

use std::fmt;
use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use hdfsftpd_ffi::{accounts, process};

/// The pid file of the running daemon; removed when dropped (if it still names this process).
pub struct PidFile {
    path: PathBuf,
    pid: u32,
}

/// Why the pid file stops the start.
#[derive(Debug)]
pub enum PidFileError {
    /// A live process holds it.
    Running { path: PathBuf, pid: i32 },
    /// It cannot be written.
    Write { path: PathBuf, cause: io::Error },
}

impl fmt::Display for PidFileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PidFileError::Running { path, pid } => {
                write!(f, "already running: {} holds pid {pid}; stop it first or remove the pid file", path.display())
            }
            PidFileError::Write { path, cause } => write!(f, "pid file {}: {cause}", path.display()),
        }
    }
}

impl std::error::Error for PidFileError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            PidFileError::Running { .. } => None,
            PidFileError::Write { cause, .. } => Some(cause),
        }
    }
}

impl PidFile {
    /// Refuses when a live process holds `path`; a stale file (its process gone) is replaced.
    pub fn check_free(path: &Path) -> Result<(), PidFileError> {
        match read_pid(path) {
            Some(pid) if process::process_exists(pid) => Err(PidFileError::Running { path: path.to_path_buf(), pid }),
            _ => Ok(()),
        }
    }

    pub fn create(path: &Path) -> Result<PidFile, PidFileError> {
        Self::check_free(path)?;
        let _ = fs::remove_file(path);
        let pid = std::process::id();
        let written = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o644)
            .open(path)
            .and_then(|mut file| writeln!(file, "{pid}"));
        written.map_err(|cause| PidFileError::Write { path: path.to_path_buf(), cause })?;
        Ok(PidFile { path: path.to_path_buf(), pid })
    }
}

impl Drop for PidFile {
    fn drop(&mut self) {
        if read_pid(&self.path) == Some(self.pid as i32) {
            if let Err(e) = fs::remove_file(&self.path) {
                log::warn!("cannot remove pid file {}: {e}", self.path.display());
            }
        }
    }
}

fn read_pid(path: &Path) -> Option<i32> {
    fs::read_to_string(path).ok()?.trim().parse().ok().filter(|pid| *pid > 0)
}

/// Switches to `user` (and `group`, else the user's primary group) for good. Files the daemon must
/// keep writing (logs, pid file) are handed to that user first so reopening and removal still work.
pub fn drop_privileges(user: &str, group: Option<&str>, owned_files: &[&Path]) -> io::Result<()> {
    let account = accounts::lookup_user(user)?;
    let gid = match group {
        Some(group) => accounts::lookup_group(group)?,
        None => account.gid,
    };
    for file in owned_files {
        std::os::unix::fs::chown(file, Some(account.uid), Some(gid))
            .map_err(|e| io::Error::new(e.kind(), format!("chown {}: {e}", file.display())))?;
    }
    // SECURITY: root is dropped for good before storage and authentication are built.
    process::drop_privileges(user, account.uid, gid)
}
