//! A file's checksum as HDFS keeps it (`jni.c`: `FileSystem.getFileChecksum`, which libhdfs lacks), in
//! the form `hdfs dfs -checksum` prints, so a copy elsewhere in the cluster can be compared with it.

use std::ffi::CStr;
use std::os::raw::{c_char, c_int, c_void};

use super::{c_string, idempotent, Error, FileSystem, Result};

extern "C" {
    fn hdfsftpd_file_checksum(
        fs: *mut c_void,
        path: *const c_char,
        algorithm: *mut *mut c_char,
        hex: *mut *mut c_char,
    ) -> c_int;
}

/// What `hdfs dfs -checksum` prints after the path: e.g. `MD5-of-0MD5-of-512CRC32C` and the bytes in hex.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileChecksum {
    pub algorithm: String,
    pub hex: String,
}

impl FileSystem {
    /// The file's checksum, or `None` where the filesystem keeps none (`file:///`). One NameNode call
    /// and one per block to its DataNodes, which compute the block checksums from the stored CRCs.
    pub fn checksum(&self, path: &str) -> Result<Option<FileChecksum>> {
        let c_path = c_string("checksum", path)?;
        idempotent(|| {
            let (mut algorithm, mut hex): (*mut c_char, *mut c_char) = (std::ptr::null_mut(), std::ptr::null_mut());
            // SAFETY: `self.raw` is libhdfs's hdfsFS, a JNI global reference to the Java FileSystem, alive
            // while `self` is; NUL-terminated path; the out-pointers are valid and receive malloc'd strings
            // or stay NULL. -1 with errno and the Java cause set on failure.
            let rc =
                unsafe { hdfsftpd_file_checksum(self.raw.cast::<c_void>(), c_path.as_ptr(), &mut algorithm, &mut hex) };
            if rc != 0 {
                return Err(Error::last("checksum", path));
            }
            // SAFETY: both are NULL or NUL-terminated strings malloc'd by jni.c, copied then freed once.
            let take = |text: *mut c_char| unsafe {
                let owned = (!text.is_null()).then(|| CStr::from_ptr(text).to_string_lossy().into_owned());
                libc::free(text.cast());
                owned
            };
            Ok(match (take(algorithm), take(hex)) {
                (Some(algorithm), Some(hex)) => Some(FileChecksum { algorithm, hex }),
                _ => None,
            })
        })
    }
}
