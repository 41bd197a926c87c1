//! System-call helpers shared by the wrappers in this crate.

use std::io;
use std::os::fd::{FromRawFd, OwnedFd};

/// A close-on-exec pipe: (read end, write end).
pub(crate) fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for the two descriptors pipe2 writes.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } == -1 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: both descriptors were just created and are owned by nobody else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// Runs a system call that returns a byte count or -1, again when a signal interrupted it.
pub(crate) fn retry(mut call: impl FnMut() -> isize) -> io::Result<usize> {
    loop {
        let result = call();
        if result >= 0 {
            return Ok(result as usize);
        }
        let error = io::Error::last_os_error();
        if error.kind() != io::ErrorKind::Interrupted {
            return Err(error);
        }
    }
}

/// Fails unless this is the process's only thread: fork and setenv are only sound then. `what` names the
/// step that needs it, for the error message.
// SECURITY: fork and setenv are only sound with one thread: checked, not assumed.
pub(crate) fn ensure_single_threaded(what: &str) -> io::Result<()> {
    // Linux: one entry per thread.
    match std::fs::read_dir("/proc/self/task")?.count() {
        1 => Ok(()),
        threads => {
            Err(io::Error::other(format!("{threads} threads are running; {what} needs a single-threaded process")))
        }
    }
}
