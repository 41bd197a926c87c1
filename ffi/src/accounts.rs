//! Accounts through the system's NSS (getpwnam_r, getpwuid_r, getgrnam_r, getgrgid_r), so names are the
//! ones `ls -l` shows, LDAP and sssd accounts included; and the process's effective user id.

use std::ffi::{CStr, CString};
use std::io;
use std::mem::MaybeUninit;
use std::os::raw::{c_char, c_int};

/// Where a lookup's buffer stops growing: far beyond any real entry (glibc suggests 1 KiB).
const MAX_BUFFER: usize = 1 << 20;

/// Numeric ids of a user (and its primary group).
pub struct Account {
    pub uid: u32,
    pub gid: u32,
}

/// The effective user id of this process (0 for root).
pub fn effective_uid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

/// Looks up a user by name.
pub fn lookup_user(name: &str) -> io::Result<Account> {
    let c_name = CString::new(name).map_err(|_| invalid("user name contains NUL"))?;
    // SAFETY: `c_name` is a C string and the other pointers come from `lookup`, valid for the call.
    let call = |entry, buffer, size, result| unsafe { libc::getpwnam_r(c_name.as_ptr(), entry, buffer, size, result) };
    lookup(call, |entry: &libc::passwd| Account { uid: entry.pw_uid, gid: entry.pw_gid })?
        .ok_or_else(|| invalid(&format!("no such user: {name}")))
}

/// Looks up a group's id by name.
pub fn lookup_group(name: &str) -> io::Result<u32> {
    let c_name = CString::new(name).map_err(|_| invalid("group name contains NUL"))?;
    // SAFETY: as in lookup_user.
    let call = |entry, buffer, size, result| unsafe { libc::getgrnam_r(c_name.as_ptr(), entry, buffer, size, result) };
    lookup(call, |entry: &libc::group| entry.gr_gid)?.ok_or_else(|| invalid(&format!("no such group: {name}")))
}

/// The name of user `uid`, or `None` when the system knows no such user (or cannot say).
pub fn user_name(uid: u32) -> Option<String> {
    // SAFETY: the pointers come from `lookup`, valid for the call.
    let call = |entry, buffer, size, result| unsafe { libc::getpwuid_r(uid, entry, buffer, size, result) };
    // SAFETY: pw_name is a NUL-terminated string in the lookup's buffer, alive while `read` runs.
    lookup(call, |entry: &libc::passwd| unsafe { owned_string(entry.pw_name) }).ok().flatten()
}

/// The name of group `gid`, or `None` when the system knows no such group (or cannot say).
pub fn group_name(gid: u32) -> Option<String> {
    // SAFETY: the pointers come from `lookup`, valid for the call.
    let call = |entry, buffer, size, result| unsafe { libc::getgrgid_r(gid, entry, buffer, size, result) };
    // SAFETY: gr_name is a NUL-terminated string in the lookup's buffer, alive while `read` runs.
    lookup(call, |entry: &libc::group| unsafe { owned_string(entry.gr_name) }).ok().flatten()
}

/// One reentrant NSS lookup: `call` is the `get*_r` function with its key bound. The buffer grows while
/// the call answers ERANGE. `read` copies what is needed out of the entry while its strings (which
/// point into the buffer) are valid. `Ok(None)`: no such entry.
fn lookup<E, R>(
    call: impl Fn(*mut E, *mut c_char, usize, *mut *mut E) -> c_int,
    read: impl FnOnce(&E) -> R,
) -> io::Result<Option<R>> {
    let mut size = 1024;
    loop {
        let mut buffer = vec![0 as c_char; size];
        let mut entry = MaybeUninit::<E>::uninit();
        let mut result: *mut E = std::ptr::null_mut();
        match call(entry.as_mut_ptr(), buffer.as_mut_ptr(), buffer.len(), &mut result) {
            0 if result.is_null() => return Ok(None),
            // SAFETY: on success `result` points at `entry`, filled by the call; `buffer` is still alive.
            0 => return Ok(Some(read(unsafe { &*result }))),
            libc::ERANGE if size < MAX_BUFFER => size *= 2,
            rc => return Err(io::Error::from_raw_os_error(rc)),
        }
    }
}

/// # Safety
/// `text` is a valid NUL-terminated string.
unsafe fn owned_string(text: *const c_char) -> String {
    // SAFETY: guaranteed by the caller.
    unsafe { CStr::from_ptr(text) }.to_string_lossy().into_owned()
}

fn invalid(message: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_has_a_name_and_ids() {
        assert_eq!(user_name(0).as_deref(), Some("root"));
        assert_eq!(group_name(0).as_deref(), Some("root"));
        assert_eq!(user_name(4_000_000_000), None);
        let root = lookup_user("root").unwrap();
        assert_eq!((root.uid, root.gid), (0, 0));
        assert_eq!(lookup_group("root").unwrap(), 0);
        assert!(lookup_user("no-such-user-hdfsftpd").is_err());
        assert!(lookup_group("no-such-group-hdfsftpd").is_err());
    }
}
