//! Directory listings that stream (`jni.c`: Hadoop's `FileSystem.listStatusIterator` through JNI):
//! libhdfs's `hdfsListDirectory` holds a whole directory in the JVM's heap and then in a C array, and a
//! 1,000,000-entry HDFS directory exhausts a 512 MiB heap. Here an entry is converted when it is taken,
//! and HDFS sends `dfs.ls.limit` (default 1000) entries per NameNode call, so a listing holds about one
//! batch whatever the directory's size.

use std::ffi::{CStr, CString};
use std::os::raw::{c_char, c_int, c_void};
use std::time::{Duration, UNIX_EPOCH};

use super::{c_string, idempotent, set_errno, Error, FileInfo, FileSystem, Kind, Result};

/// `struct hdfsftpd_entry` of jni.c.
#[repr(C)]
struct RawEntry {
    is_dir: i32,
    replication: i16,
    permissions: i16,
    size: i64,
    modified_ms: i64,
    name: *mut c_char,
    owner: *mut c_char,
    group: *mut c_char,
}

extern "C" {
    fn hdfsftpd_list_open(fs: *mut c_void, path: *const c_char) -> *mut c_void;
    fn hdfsftpd_list_next(listing: *mut c_void, path: *const c_char, entry: *mut RawEntry) -> c_int;
    fn hdfsftpd_entry_free(entry: *mut RawEntry);
    fn hdfsftpd_list_close(listing: *mut c_void);
}

/// The entries of a directory, unsorted, fetched from the filesystem as they are taken. An entry that
/// fails to come (the NameNode went away, the JVM's heap is exhausted) is an `Err`, after which the
/// listing ends.
pub struct Listing {
    raw: *mut c_void,
    path: CString,
    ended: bool,
}

// SAFETY: the C listing holds a JNI global reference, usable from any thread (jni.c attaches the
// calling one); `&mut self` keeps one thread at a time on it.
unsafe impl Send for Listing {}

impl FileSystem {
    /// Starts listing a directory; its first batch is fetched now, so a missing or forbidden directory
    /// fails here.
    pub fn list(&self, path: &str) -> Result<Listing> {
        let c_path = c_string("list", path)?;
        idempotent(|| {
            // SAFETY: `self.raw` is libhdfs's hdfsFS, a JNI global reference to the Java FileSystem, alive
            // while `self` is; NUL-terminated path. NULL with errno and the Java cause set on failure.
            let raw = unsafe { hdfsftpd_list_open(self.raw.cast::<c_void>(), c_path.as_ptr()) };
            if raw.is_null() {
                return Err(Error::last("list", path));
            }
            Ok(Listing { raw, path: c_path.clone(), ended: false })
        })
    }
}

impl Listing {
    fn path(&self) -> String {
        self.path.to_string_lossy().into_owned()
    }
}

impl Iterator for Listing {
    type Item = Result<FileInfo>;

    fn next(&mut self) -> Option<Result<FileInfo>> {
        if self.ended {
            return None;
        }
        let mut raw = RawEntry {
            is_dir: 0,
            replication: 0,
            permissions: 0,
            size: 0,
            modified_ms: 0,
            name: std::ptr::null_mut(),
            owner: std::ptr::null_mut(),
            group: std::ptr::null_mut(),
        };
        set_errno(0);
        // SAFETY: an open listing, its NUL-terminated path and a writable entry that C fills (its strings
        // malloc'd) only when it returns 1.
        match unsafe { hdfsftpd_list_next(self.raw, self.path.as_ptr(), &mut raw) } {
            1 => {
                // SAFETY: C filled the entry: NUL-terminated strings, copied before they are freed once.
                let info = unsafe { entry_info(&raw) };
                // SAFETY: frees what hdfsftpd_list_next allocated for this entry.
                unsafe { hdfsftpd_entry_free(&mut raw) };
                Some(Ok(info))
            }
            0 => {
                self.ended = true;
                None
            }
            _ => {
                self.ended = true;
                Some(Err(Error::last("list", &self.path())))
            }
        }
    }
}

impl Drop for Listing {
    fn drop(&mut self) {
        // SAFETY: the listing hdfsftpd_list_open returned, closed exactly once.
        unsafe { hdfsftpd_list_close(self.raw) };
    }
}

/// # Safety
/// `raw` was filled by `hdfsftpd_list_next`: its strings are NUL-terminated.
unsafe fn entry_info(raw: &RawEntry) -> FileInfo {
    // SAFETY: the caller's promise; C gives "" rather than NULL for a missing string.
    let text = |p: *mut c_char| unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned();
    FileInfo {
        kind: if raw.is_dir != 0 { Kind::Dir } else { Kind::File },
        name: text(raw.name),
        size: raw.size.max(0) as u64,
        modified: UNIX_EPOCH + Duration::from_secs((raw.modified_ms / 1000).max(0) as u64),
        replication: raw.replication.max(0) as u16,
        owner: text(raw.owner),
        group: text(raw.group),
        permissions: raw.permissions as u16 & 0o7777,
    }
}
