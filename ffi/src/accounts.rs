//! User and group names of numeric ids, through the system's NSS (getpwuid_r / getgrgid_r), so
//! listings show the names `ls -l` shows, LDAP and sssd accounts included.

use std::ffi::CStr;
use std::mem::MaybeUninit;
use std::os::raw::c_char;

/// The effective user id of this process.
pub fn effective_uid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

/// The name of user `uid`, or `None` when the system knows no such user.
pub fn user_name(uid: u32) -> Option<String> {
    let mut buffer = vec![0 as c_char; 4096];
    let mut entry = MaybeUninit::<libc::passwd>::uninit();
    let mut result: *mut libc::passwd = std::ptr::null_mut();
    // SAFETY: every pointer is valid for the call; on success `result` points at `entry`, whose string
    // fields point into `buffer`, and both outlive the copy made below.
    let rc = unsafe { libc::getpwuid_r(uid, entry.as_mut_ptr(), buffer.as_mut_ptr(), buffer.len(), &mut result) };
    if rc != 0 || result.is_null() {
        return None;
    }
    // SAFETY: see above; pw_name is a NUL-terminated string in `buffer`.
    Some(unsafe { CStr::from_ptr((*result).pw_name) }.to_string_lossy().into_owned())
}

/// The name of group `gid`, or `None` when the system knows no such group.
pub fn group_name(gid: u32) -> Option<String> {
    let mut buffer = vec![0 as c_char; 4096];
    let mut entry = MaybeUninit::<libc::group>::uninit();
    let mut result: *mut libc::group = std::ptr::null_mut();
    // SAFETY: as in `user_name`.
    let rc = unsafe { libc::getgrgid_r(gid, entry.as_mut_ptr(), buffer.as_mut_ptr(), buffer.len(), &mut result) };
    if rc != 0 || result.is_null() {
        return None;
    }
    // SAFETY: gr_name is a NUL-terminated string in `buffer`.
    Some(unsafe { CStr::from_ptr((*result).gr_name) }.to_string_lossy().into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_has_a_name() {
        assert_eq!(user_name(0).as_deref(), Some("root"));
        assert_eq!(group_name(0).as_deref(), Some("root"));
        assert_eq!(user_name(4_000_000_000), None);
    }
}
