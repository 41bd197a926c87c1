//! Process life cycle for a classic Unix daemon: detaching from the terminal with a readiness report to
//! the starting process, and dropping root privileges to a named user and group.

use std::ffi::CString;
use std::fs::File;
use std::io::{self, Read, Write};
use std::mem::MaybeUninit;
use std::os::fd::AsRawFd;
use std::os::raw::c_char;

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
/// Must be called before any thread is started.
pub fn daemonize(stderr_to: Option<&File>) -> io::Result<Readiness> {
    let (read_end, write_end) = crate::sys::pipe()?;
    // SAFETY: called while the process is single-threaded (documented requirement), so the child
    // inherits a consistent address space.
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

/// Numeric ids of a user (and its primary group).
pub struct Account {
    pub uid: u32,
    pub gid: u32,
}

/// Looks up a user by name.
pub fn lookup_user(name: &str) -> io::Result<Account> {
    let c_name = CString::new(name).map_err(|_| invalid("user name contains NUL"))?;
    let mut buffer = vec![0 as c_char; 16384];
    let mut entry = MaybeUninit::<libc::passwd>::uninit();
    let mut result: *mut libc::passwd = std::ptr::null_mut();
    // SAFETY: all pointers are valid for the call; `result` points at `entry` on success.
    let rc = unsafe {
        libc::getpwnam_r(c_name.as_ptr(), entry.as_mut_ptr(), buffer.as_mut_ptr(), buffer.len(), &mut result)
    };
    if rc != 0 {
        return Err(io::Error::from_raw_os_error(rc));
    }
    if result.is_null() {
        return Err(invalid(&format!("no such user: {name}")));
    }
    // SAFETY: getpwnam_r succeeded and filled `entry`.
    let entry = unsafe { entry.assume_init() };
    Ok(Account { uid: entry.pw_uid, gid: entry.pw_gid })
}

/// Looks up a group's id by name.
pub fn lookup_group(name: &str) -> io::Result<u32> {
    let c_name = CString::new(name).map_err(|_| invalid("group name contains NUL"))?;
    let mut buffer = vec![0 as c_char; 16384];
    let mut entry = MaybeUninit::<libc::group>::uninit();
    let mut result: *mut libc::group = std::ptr::null_mut();
    // SAFETY: as in lookup_user.
    let rc = unsafe {
        libc::getgrnam_r(c_name.as_ptr(), entry.as_mut_ptr(), buffer.as_mut_ptr(), buffer.len(), &mut result)
    };
    if rc != 0 {
        return Err(io::Error::from_raw_os_error(rc));
    }
    if result.is_null() {
        return Err(invalid(&format!("no such group: {name}")));
    }
    // SAFETY: getgrnam_r succeeded and filled `entry`.
    Ok(unsafe { entry.assume_init() }.gr_gid)
}

/// Becomes `user` (with its supplementary groups) and `gid`, for good: root cannot be regained.
pub fn drop_privileges(user: &str, uid: u32, gid: u32) -> io::Result<()> {
    let c_user = CString::new(user).map_err(|_| invalid("user name contains NUL"))?;
    // SAFETY: plain system calls; `c_user` is a valid C string for the duration of initgroups.
    unsafe {
        if libc::initgroups(c_user.as_ptr(), gid) == -1 || libc::setgid(gid) == -1 || libc::setuid(uid) == -1 {
            return Err(io::Error::last_os_error());
        }
        // Verify the drop stuck: setuid(0) must now fail.
        if uid != 0 && libc::setuid(0) == 0 {
            return Err(io::Error::other("privileges could be regained after dropping them"));
        }
    }
    Ok(())
}

/// The effective user id (0 for root).
pub fn effective_uid() -> u32 {
    // SAFETY: geteuid cannot fail.
    unsafe { libc::geteuid() }
}

fn invalid(message: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn looks_up_root_and_our_own_process() {
        let root = lookup_user("root").unwrap();
        assert_eq!((root.uid, root.gid), (0, 0));
        assert_eq!(lookup_group("root").unwrap(), 0);
        assert!(lookup_user("no-such-user-hdfsftpd").is_err());
        assert!(process_exists(std::process::id() as i32));
    }
}
