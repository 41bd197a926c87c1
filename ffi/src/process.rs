//! Process life cycle for a classic Unix daemon: detaching from the terminal with a readiness report to
//! the starting process, and dropping root privileges to a named user and group.

use std::ffi::CString;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::AsRawFd;

/// The detached child's line back to the process that started it.
pub struct Readiness {
    pipe: File,
}

impl Readiness {
    /// Tells the starting process that the daemon is serving; it exits 0.
    pub fn ready(mut self) {
        let _ = self.pipe.write_all(b"ok\n");
    }

    /// Tells the starting process why start-up failed; it prints that and exits 1.
    pub fn failed(mut self, message: &str) {
        let _ = self.pipe.write_all(format!("error: {message}\n").as_bytes());
    }
}

/// Detaches: forks, and the parent waits until the child reports ready or failed (or dies), then exits
/// with 0 or 1, so an init script learns the real outcome of start-up. The child starts a new session
/// and points stdin and stdout at /dev/null and stderr at `stderr_to` (the log file) or /dev/null.
/// Fails, without forking, when the process has more than one thread: the child would inherit only
/// this one, with other threads' locks (malloc's, the logger's) held forever.
pub fn daemonize(stderr_to: Option<&File>) -> io::Result<Readiness> {
    crate::sys::ensure_single_threaded("detaching (fork)")?;
    let (read_end, write_end) = crate::sys::pipe()?;
    // SAFETY: the process has a single thread (checked above), so the child inherits a consistent
    // address space.
    match unsafe { libc::fork() } {
        -1 => Err(io::Error::last_os_error()),
        0 => {
            drop(read_end);
            // SAFETY: plain system call without pointers.
            if unsafe { libc::setsid() } == -1 {
                return Err(io::Error::last_os_error());
            }
            redirect_standard_streams(stderr_to)?;
            Ok(Readiness { pipe: File::from(write_end) })
        }
        _child => {
            drop(write_end);
            let mut report = String::new();
            let _ = File::from(read_end).read_to_string(&mut report);
            match report.trim_end().strip_prefix("error: ") {
                None if report.starts_with("ok") => std::process::exit(0),
                Some(message) => eprintln!("hdfsftpd: {message}"),
                None => eprintln!("hdfsftpd: the daemon exited during start-up (see its log)"),
            }
            std::process::exit(1);
        }
    }
}

fn redirect_standard_streams(stderr_to: Option<&File>) -> io::Result<()> {
    let null = File::options().read(true).write(true).open("/dev/null")?;
    let stderr_source = stderr_to.map_or(null.as_raw_fd(), AsRawFd::as_raw_fd);
    for (source, target) in [(null.as_raw_fd(), 0), (null.as_raw_fd(), 1), (stderr_source, 2)] {
        // SAFETY: both are open descriptors; dup2 replaces the standard stream atomically.
        if unsafe { libc::dup2(source, target) } == -1 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// Whether a process with this pid exists (signal 0 probes without sending anything).
pub fn process_exists(pid: i32) -> bool {
    // SAFETY: kill with signal 0 only checks for existence and permission.
    let result = unsafe { libc::kill(pid, 0) };
    result == 0 || io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

/// Becomes `user` (with its supplementary groups) and `gid`, for good: root cannot be regained.
pub fn drop_privileges(user: &str, uid: u32, gid: u32) -> io::Result<()> {
    let c_user = CString::new(user).map_err(|_| invalid("user name contains NUL"))?;
    // SAFETY: plain system calls; `c_user` is a valid C string for the duration of initgroups.
    unsafe {
        if libc::initgroups(c_user.as_ptr(), gid) == -1 || libc::setgid(gid) == -1 || libc::setuid(uid) == -1 {
            return Err(io::Error::last_os_error());
        }
        // SECURITY: privileges are dropped for good, and that is checked.
        // Verify the drop stuck: setuid(0) must now fail.
        if uid != 0 && libc::setuid(0) == 0 {
            return Err(io::Error::other("privileges could be regained after dropping them"));
        }
    }
    Ok(())
}

fn invalid(message: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_our_own_process() {
        assert!(process_exists(std::process::id() as i32));
    }

    #[test]
    fn refuses_to_detach_while_other_threads_run() {
        let (stop, stopped) = std::sync::mpsc::channel::<()>();
        let other = std::thread::spawn(move || stopped.recv());
        let refused = daemonize(None).err().expect("daemonize must refuse a process with two threads");
        assert!(refused.to_string().contains("threads are running"), "{refused}");
        stop.send(()).unwrap();
        other.join().unwrap().unwrap();
    }
}
