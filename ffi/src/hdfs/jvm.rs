//! What the gateway needs of the JVM itself (`jni.c`): its heap limit, and classes initialized ahead of
//! their first use.

use std::os::raw::{c_char, c_int};

use super::{c_string, start_jvm, Error, Result};

extern "C" {
    fn hdfsftpd_jvm_max_heap() -> i64;
    fn hdfsftpd_initialize_classes(name: *const c_char) -> c_int;
}

/// The most heap the JVM will use (`Runtime.maxMemory`: `-Xmx` less what the collector keeps), in bytes.
/// Starts the JVM.
pub fn jvm_max_heap() -> Result<u64> {
    start_jvm()?;
    // SAFETY: no arguments; the JVM runs. -1 with errno and the Java cause set on failure.
    match unsafe { hdfsftpd_jvm_max_heap() } {
        bytes if bytes >= 0 => Ok(bytes as u64),
        _ => Err(Error::last("read the JVM's heap limit", "")),
    }
}

/// Initializes a Java class (`org.apache.hadoop.Foo`) and every class nested in it, now: a static
/// initializer that fails later (an OutOfMemoryError while the heap is full) leaves the class unusable
/// for the JVM's life, and so the Hadoop client broken for every session. Returns how many classes.
/// Starts the JVM.
pub fn initialize_classes(name: &str) -> Result<usize> {
    start_jvm()?;
    let c_name = c_string("initialize class", &name.replace('.', "/"))?;
    // SAFETY: NUL-terminated class name; the JVM runs. -1 with errno and the Java cause set on failure.
    match unsafe { hdfsftpd_initialize_classes(c_name.as_ptr()) } {
        count if count >= 0 => Ok(count as usize),
        _ => Err(Error::last("initialize class", name)),
    }
}
