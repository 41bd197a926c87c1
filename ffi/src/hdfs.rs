//! libhdfs (vendored by hdfs-sys): Hadoop's `FileSystem` API through JNI, for `hdfs://` and every other
//! scheme Hadoop knows (`file:///` in tests).
//!
//! Owned handles: [`FileSystem`] disconnects on drop, [`File`] closes on drop (but [`File::close`]
//! reports the close error, which is where HDFS write errors surface), [`Listing`] streams a directory
//! (listing.rs: libhdfs has no call for it; jvm.rs reads the JVM's heap limit); [`KeytabLogin`] and
//! [`Builder::connect_as_proxy`] act for users through the gateway's own Kerberos login (proxy.rs).
//! Every failure is an [`Error`] with errno and the Java root cause, read at once: libhdfs keeps it in
//! thread-local state that its next call on the same thread clears.
//!
//! The JVM starts on the first connect, with `CLASSPATH` and `LIBHDFS_OPTS` from the environment as it
//! is then. A failed start or attach leaves the calling thread unusable for libhdfs: check the class path
//! before the first connect and do not retry on that thread.

use std::ffi::{CStr, CString};
use std::fmt;
use std::io;
use std::os::raw::{c_char, c_int, c_long, c_short, c_void};
use std::path::Path;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hdfs_sys as sys;

mod checksum;
mod jvm;
mod listing;
mod proxy;
pub use checksum::FileChecksum;
pub use jvm::{initialize_classes, jvm_max_heap};
pub use listing::Listing;
pub use proxy::KeytabLogin;

/// libhdfs's errno for a Java exception it has no errno for, and for a thread without a JVM.
const EINTERNAL: i32 = 255;

/// Whether the JVM started and loaded Hadoop's classes ([`start_jvm`]); set once, never retried.
static JVM: OnceLock<Result<()>> = OnceLock::new();

/// hdfsUtime's "leave this time as it is".
const NO_CHANGE: c_long = -1;

/// A failed libhdfs call: what was attempted, on which path, errno, and Java's root cause if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    pub operation: &'static str,
    pub path: String,
    pub errno: i32,
    /// `ExceptionUtils.getRootCauseMessage` of the Java exception, e.g.
    /// `AccessControlException: Permission denied: user=bob, access=WRITE, inode="/x":alice:alice:drwxr-xr-x`.
    pub root_cause: Option<String>,
}

impl Error {
    /// The failure the last libhdfs call on this thread reported. Call it right after that call.
    fn last(operation: &'static str, path: &str) -> Error {
        let errno = match io::Error::last_os_error().raw_os_error() {
            // A failure that set no errno (a Java method answered `false`) is still a failure.
            Some(0) | None => libc::EIO,
            Some(errno) => errno,
        };
        // Before the JVM runs, libhdfs may have no thread state to read the cause from (it would crash).
        let exception = if matches!(JVM.get(), Some(Ok(()))) { last_exception() } else { None };
        let Some(exception) = exception else {
            return Error { operation, path: path.to_string(), errno, root_cause: None };
        };
        let errno = match errno {
            EINTERNAL => exception.errno().unwrap_or(EINTERNAL),
            errno => errno,
        };
        Error { operation, path: path.to_string(), errno, root_cause: Some(exception.reason()) }
    }

    /// True when the connection the call went over broke (a NameNode that restarted while the
    /// connection sat idle): the call can be made again on a fresh one.
    fn connection_lost(&self) -> bool {
        self.errno == libc::ECONNRESET
    }

    fn new(operation: &'static str, path: &str, errno: i32, reason: &str) -> Error {
        Error { operation, path: path.to_string(), errno, root_cause: Some(reason.to_string()) }
    }

    /// The std error kind of errno, for mapping to the caller's own error kinds.
    pub fn kind(&self) -> io::ErrorKind {
        io::Error::from_raw_os_error(self.errno).kind()
    }

    /// Why it failed: Java's root cause when Java gave one, errno's text otherwise.
    pub fn reason(&self) -> String {
        match (&self.root_cause, self.errno) {
            (Some(cause), _) => cause.clone(),
            (None, EINTERNAL) => "libhdfs internal error (its messages on stderr tell more)".to_string(),
            // A full heap can leave Java unable to describe its own OutOfMemoryError.
            (None, libc::ENOMEM) => "OutOfMemoryError: the JVM's heap is exhausted".to_string(),
            (None, errno) => {
                let text = io::Error::from_raw_os_error(errno).to_string();
                text.split(" (os error").next().unwrap_or(&text).to_string()
            }
        }
    }
}

/// The last Java exception of this thread, as libhdfs keeps it: `ExceptionUtils.getStackTrace` (which
/// starts `pkg.Class: message` and names the classes of remote exceptions, `RemoteException(pkg.Class)`)
/// and `getRootCauseMessage` (`Class: message`).
#[derive(Debug)]
struct JavaException {
    stack_trace: String,
    root_cause: String,
}

impl JavaException {
    /// The exception's class, then the classes of the NameNode's exceptions it wraps, then the root
    /// cause's: a quota refusal is `DSQuotaExceededException` caused by a `RemoteException`.
    fn classes(&self) -> impl Iterator<Item = &str> {
        let thrown = self.stack_trace.lines().next().map(class_of);
        thrown
            .into_iter()
            .chain(self.remote_classes())
            .chain(std::iter::once(class_of(&self.root_cause)))
            .map(simple_name)
    }

    /// The classes in `org.apache.hadoop.ipc.RemoteException(pkg.Class)`, outermost first.
    fn remote_classes(&self) -> impl Iterator<Item = &str> {
        self.stack_trace.split("ipc.RemoteException(").skip(1).filter_map(|rest| rest.split(')').next())
    }

    /// The errno of the first class that has one.
    fn errno(&self) -> Option<i32> {
        self.classes().find_map(errno_of_exception)
    }

    /// The root cause's first line (a NameNode's message carries its stack trace on the next ones), the
    /// class of a `RemoteException` named; a cause without a message is told by the exception thrown.
    fn reason(&self) -> String {
        let first_line = |text: &str| text.lines().next().unwrap_or("").trim().to_string();
        let cause = first_line(&self.root_cause);
        let cause = match (cause.strip_prefix("RemoteException:"), self.remote_classes().next()) {
            (Some(message), Some(class)) => format!("{}:{message}", simple_name(class)),
            _ => cause,
        };
        if cause.trim_end().ends_with(':') || cause.is_empty() {
            let thrown = first_line(&self.stack_trace);
            let message = thrown.split_once(':').map(|(_, message)| message).unwrap_or("");
            return format!("{}:{message}", simple_name(class_of(&thrown)));
        }
        cause
    }
}

/// `pkg.Class` of a `pkg.Class: message` line.
fn class_of(line: &str) -> &str {
    line.split(':').next().unwrap_or("").trim()
}

fn simple_name(class: &str) -> &str {
    class.rsplit('.').next().unwrap_or(class)
}

/// The errno of a Java exception class libhdfs has none for (it reports EINTERNAL).
fn errno_of_exception(class: &str) -> Option<i32> {
    Some(match class {
        "DSQuotaExceededException" | "NSQuotaExceededException" | "QuotaExceededException" => libc::EDQUOT,
        "PathIsNotEmptyDirectoryException" => libc::ENOTEMPTY,
        "AccessControlException" | "PathAccessDeniedException" | "PathPermissionException" => libc::EACCES,
        // The NameNode refuses the connection: a proxy user its hadoop.proxyuser rules do not allow.
        "AuthorizationException" => libc::EACCES,
        "FileAlreadyExistsException" | "PathExistsException" => libc::EEXIST,
        "ParentNotDirectoryException" | "PathIsNotDirectoryException" => libc::ENOTDIR,
        "PathIsDirectoryException" => libc::EISDIR,
        "SafeModeException" => libc::EROFS,
        // An RPC connection that the other side closed (Hadoop's IPC client reports EOF).
        "EOFException" => libc::ECONNRESET,
        "ConnectException" => libc::ECONNREFUSED,
        // Another client holds the file's lease: it is being written (or its last writer is recovered).
        "AlreadyBeingCreatedException" | "RecoveryInProgressException" => libc::EBUSY,
        _ => return None,
    })
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}: {} (errno {})", self.operation, self.path, self.reason(), self.errno)
    }
}

impl std::error::Error for Error {}

impl From<Error> for io::Error {
    fn from(error: Error) -> io::Error {
        io::Error::new(error.kind(), error)
    }
}

pub type Result<T> = std::result::Result<T, Error>;

/// Sets the environment libhdfs starts the JVM with (`CLASSPATH`, `LIBHDFS_OPTS`), then [`start_jvm`].
/// Changing the environment is only sound while no other thread can read it, so this fails, changing
/// nothing, when the process has more than one thread.
pub fn start_jvm_with(class_path: &str, jvm_options: &str) -> Result<()> {
    crate::sys::ensure_single_threaded("setting the JVM's environment")
        .map_err(|e| Error::new("start JVM", "", libc::EBUSY, &e.to_string()))?;
    std::env::set_var("CLASSPATH", class_path);
    std::env::set_var("LIBHDFS_OPTS", jvm_options);
    start_jvm()
}

/// Starts the JVM (with `CLASSPATH` and `LIBHDFS_OPTS` as they are now) and checks that it loads Hadoop's
/// classes. Only the first call tries; later ones return its result, because a failed start leaves the
/// calling thread unusable for libhdfs. [`Builder::connect`] calls it.
pub fn start_jvm() -> Result<()> {
    JVM.get_or_init(|| {
        let key = c_string("start JVM", "ipc.client.connect.max.retries")?;
        let mut value: i32 = 0;
        // SAFETY: NUL-terminated key and a writable int. Returns 0, or an errno value on failure.
        let rc = unsafe { sys::hdfsConfGetInt(key.as_ptr(), &mut value) };
        if rc == 0 {
            return Ok(());
        }
        let reason = "the JVM did not start or could not load Hadoop's classes (see the messages above; \
                      check the class path and the JVM options)";
        Err(Error::new("start JVM", "", rc, reason))
    })
    .clone()
}

/// A value of the Hadoop configuration the class path gives (`core-default.xml`, `core-site.xml`, …), as a
/// new `Configuration` reads it, deprecated keys included; `None` when it is unset. Starts the JVM.
pub fn conf_value(key: &str) -> Result<Option<String>> {
    const OP: &str = "read configuration";
    start_jvm()?;
    let c_key = c_string(OP, key)?;
    let mut value: *mut c_char = std::ptr::null_mut();
    // SAFETY: NUL-terminated key and a writable pointer, which libhdfs sets to NULL (unset) or to a
    // string of its own that is copied and then freed with hdfsConfStrFree.
    unsafe {
        if sys::hdfsConfGetStr(c_key.as_ptr(), &mut value) != 0 {
            return Err(Error::last(OP, key));
        }
        let copied = owned(value);
        if !value.is_null() {
            sys::hdfsConfStrFree(value);
        }
        Ok(copied)
    }
}

/// Copies libhdfs's thread-local record of the last exception, if there is one.
fn last_exception() -> Option<JavaException> {
    // SAFETY: called on a thread libhdfs has state for (the JVM runs); each result is NULL or a
    // NUL-terminated string owned by that state, valid until the next libhdfs call on this thread, and
    // copied before it.
    let (root_cause, stack_trace) =
        unsafe { (owned(sys::hdfsGetLastExceptionRootCause()), owned(sys::hdfsGetLastExceptionStackTrace())) };
    let root_cause = root_cause.filter(|text| !text.is_empty())?;
    Some(JavaException { stack_trace: stack_trace.unwrap_or_default(), root_cause })
}

/// A copy of a C string, trimmed.
///
/// # Safety
/// `raw` is NULL or a valid NUL-terminated string.
unsafe fn owned(raw: *const c_char) -> Option<String> {
    // SAFETY: the caller's promise.
    (!raw.is_null()).then(|| unsafe { CStr::from_ptr(raw) }.to_string_lossy().trim().to_string())
}

fn c_string(operation: &'static str, text: &str) -> Result<CString> {
    CString::new(text).map_err(|_| Error::new(operation, text, libc::EINVAL, "contains a NUL byte"))
}

/// How to connect: libhdfs's `hdfsBuilder`, kept as owned Rust values until [`Builder::connect`], because
/// libhdfs's builder keeps the caller's pointers rather than copies.
#[derive(Debug, Clone)]
pub struct Builder {
    namenode: String,
    user_name: Option<String>,
    ticket_cache: Option<String>,
    new_instance: bool,
    conf: Vec<(String, String)>,
}

impl Builder {
    /// `namenode`: a URI (`hdfs://nn:8020`, `file:///`), a nameservice or host (`hdfs://` is added), or
    /// `default` for `fs.defaultFS` of the configuration on the class path.
    pub fn new(namenode: &str) -> Builder {
        Builder {
            namenode: namenode.to_string(),
            user_name: None,
            ticket_cache: None,
            new_instance: false,
            conf: vec![],
        }
    }

    /// Acts as this user (simple authentication).
    pub fn user_name(mut self, user: &str) -> Builder {
        self.user_name = Some(user.to_string());
        self
    }

    /// Authenticates with the Kerberos tickets of this credential cache.
    pub fn ticket_cache(mut self, path: &Path) -> Builder {
        self.ticket_cache = Some(path.to_string_lossy().into_owned());
        self
    }

    /// A filesystem of its own rather than Hadoop's cached one for the same URI and user, so that
    /// disconnecting it closes nothing another handle uses.
    pub fn force_new_instance(mut self) -> Builder {
        self.new_instance = true;
        self
    }

    /// A Hadoop configuration value for this connection only.
    pub fn conf(mut self, key: &str, value: &str) -> Builder {
        self.conf.push((key.to_string(), value.to_string()));
        self
    }

    /// Connects; the first connect of the process starts the JVM.
    pub fn connect(&self) -> Result<FileSystem> {
        const OP: &str = "connect";
        start_jvm()?;
        let namenode = c_string(OP, &self.namenode)?;
        let user_name = self.user_name.as_deref().map(|u| c_string(OP, u)).transpose()?;
        let ticket_cache = self.ticket_cache.as_deref().map(|t| c_string(OP, t)).transpose()?;
        let conf = self
            .conf
            .iter()
            .map(|(k, v)| Ok((c_string(OP, k)?, c_string(OP, v)?)))
            .collect::<Result<Vec<(CString, CString)>>>()?;
        // SAFETY: a fresh builder; NULL when out of memory.
        let builder = unsafe { sys::hdfsNewBuilder() };
        if builder.is_null() {
            return Err(Error::new(OP, &self.namenode, libc::ENOMEM, "hdfsNewBuilder failed"));
        }
        // SAFETY (this block): `builder` is valid until hdfsBuilderConnect, which frees it whether or not
        // it connects (hdfsFreeBuilder on the only early return); every string it is given is a CString
        // of this function, alive until after the connect.
        unsafe {
            sys::hdfsBuilderSetNameNode(builder, namenode.as_ptr());
            if let Some(user_name) = &user_name {
                sys::hdfsBuilderSetUserName(builder, user_name.as_ptr());
            }
            if let Some(ticket_cache) = &ticket_cache {
                sys::hdfsBuilderSetKerbTicketCachePath(builder, ticket_cache.as_ptr());
            }
            if self.new_instance {
                sys::hdfsBuilderSetForceNewInstance(builder);
            }
            for (key, value) in &conf {
                if sys::hdfsBuilderConfSetStr(builder, key.as_ptr(), value.as_ptr()) != 0 {
                    sys::hdfsFreeBuilder(builder);
                    return Err(Error::new(OP, &self.namenode, libc::ENOMEM, "hdfsBuilderConfSetStr failed"));
                }
            }
            let raw = sys::hdfsBuilderConnect(builder);
            if raw.is_null() {
                return Err(Error::last(OP, &self.namenode));
            }
            Ok(FileSystem { raw, uri: self.namenode.clone() })
        }
    }
}

/// A connected filesystem (`hdfsFS`). Java's `FileSystem` is thread-safe, and libhdfs attaches every
/// calling thread to the JVM, so a handle may be used from any thread.
pub struct FileSystem {
    raw: sys::hdfsFS,
    uri: String,
}

// SAFETY: the handle is a JNI global reference to a thread-safe Java object; libhdfs attaches whichever
// thread calls it.
unsafe impl Send for FileSystem {}
// SAFETY: as above; libhdfs calls on one handle from several threads at once are supported.
unsafe impl Sync for FileSystem {}

impl fmt::Debug for FileSystem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FileSystem").field("uri", &self.uri).finish()
    }
}

impl Drop for FileSystem {
    fn drop(&mut self) {
        // SAFETY: `raw` came from hdfsBuilderConnect and is disconnected exactly once. Open files hold an
        // Arc of this handle, so none outlives it. A failed disconnect leaves nothing to do.
        unsafe { sys::hdfsDisconnect(self.raw) };
    }
}

/// Makes a NameNode call that is safe to repeat (Hadoop marks its RPC `@Idempotent`) once more when the
/// connection it went over had broken: the first call after a NameNode restart goes over the connection
/// that sat idle across it and fails at once, and outside HA Hadoop's client does not repeat it itself.
/// The next call connects afresh.
fn idempotent<T>(call: impl Fn() -> Result<T>) -> Result<T> {
    match call() {
        Err(e) if e.connection_lost() => {
            log::info!("HDFS: {e}; trying again on a new connection");
            call()
        }
        result => result,
    }
}

/// Runs a libhdfs call that returns 0 on success and -1 on failure.
fn check(operation: &'static str, path: &str, rc: c_int) -> Result<()> {
    if rc == 0 {
        Ok(())
    } else {
        Err(Error::last(operation, path))
    }
}

impl FileSystem {
    pub fn stat(&self, path: &str) -> Result<FileInfo> {
        let c_path = c_string("stat", path)?;
        idempotent(|| {
            // SAFETY: valid handle and NUL-terminated path; the result is NULL or one hdfsFileInfo we free.
            let info = unsafe { sys::hdfsGetPathInfo(self.raw, c_path.as_ptr()) };
            if info.is_null() {
                return Err(Error::last("stat", path));
            }
            // SAFETY: `info` points at one valid entry, converted (copied) before it is freed.
            let converted = unsafe { FileInfo::from_raw(&*info) };
            // SAFETY: frees the single entry hdfsGetPathInfo allocated.
            unsafe { sys::hdfsFreeFileInfo(info, 1) };
            Ok(converted)
        })
    }

    /// The filesystem's URI scheme (`hdfs`, `file`, …), read from its working directory, which Hadoop
    /// keeps fully qualified; no NameNode call.
    pub fn scheme(&self) -> Result<String> {
        let mut buffer = vec![0 as c_char; 4096];
        // SAFETY: valid handle; libhdfs writes at most `buffer.len()` bytes, NUL-terminated, and returns
        // the buffer, or NULL on failure.
        let written = unsafe { sys::hdfsGetWorkingDirectory(self.raw, buffer.as_mut_ptr(), buffer.len() as _) };
        if written.is_null() {
            return Err(Error::last("working directory", &self.uri));
        }
        // SAFETY: libhdfs NUL-terminated what it wrote into `buffer`, which is alive.
        let directory = unsafe { owned(buffer.as_ptr()) }.unwrap_or_default();
        match directory.split_once(':') {
            Some((scheme, _)) if !scheme.is_empty() && !scheme.contains('/') => Ok(scheme.to_ascii_lowercase()),
            _ => Err(Error::new("working directory", &self.uri, libc::EINVAL, &format!("'{directory}' has no scheme"))),
        }
    }

    pub fn exists(&self, path: &str) -> Result<bool> {
        let c_path = c_string("exists", path)?;
        // SAFETY: valid handle and NUL-terminated path.
        match idempotent(|| check("exists", path, unsafe { sys::hdfsExists(self.raw, c_path.as_ptr()) })) {
            Ok(()) => Ok(true),
            Err(error) if error.errno == libc::ENOENT => Ok(false),
            Err(error) => Err(error),
        }
    }

    /// Creates a directory and any missing parents (Hadoop's `mkdirs`); succeeds if it exists.
    pub fn mkdirs(&self, path: &str) -> Result<()> {
        let c_path = c_string("mkdir", path)?;
        // SAFETY: valid handle and NUL-terminated path.
        idempotent(|| check("mkdir", path, unsafe { sys::hdfsCreateDirectory(self.raw, c_path.as_ptr()) }))
    }

    /// Deletes a file, or a directory (non-empty ones only when `recursive`).
    pub fn delete(&self, path: &str, recursive: bool) -> Result<()> {
        let c_path = c_string("delete", path)?;
        // SAFETY: valid handle and NUL-terminated path.
        check("delete", path, unsafe { sys::hdfsDelete(self.raw, c_path.as_ptr(), c_int::from(recursive)) })
    }

    /// Hadoop's `rename`: fails if `to` is an existing file on HDFS; moves into `to` if it is a directory.
    pub fn rename(&self, from: &str, to: &str) -> Result<()> {
        let (c_from, c_to) = (c_string("rename", from)?, c_string("rename", to)?);
        // SAFETY: valid handle and NUL-terminated paths.
        let rc = unsafe { sys::hdfsRename(self.raw, c_from.as_ptr(), c_to.as_ptr()) };
        if rc == 0 {
            return Ok(());
        }
        // errno is read before anything else runs (formatting the paths allocates, which may change it).
        let error = Error::last("rename", from);
        Err(Error { path: format!("{from} -> {to}"), ..error })
    }

    /// Sets the permission bits (0o7777).
    pub fn chmod(&self, path: &str, mode: u16) -> Result<()> {
        let c_path = c_string("chmod", path)?;
        // SAFETY: valid handle and NUL-terminated path.
        idempotent(|| check("chmod", path, unsafe { sys::hdfsChmod(self.raw, c_path.as_ptr(), mode as c_short) }))
    }

    /// Gives the file to `owner` (Hadoop's `setOwner`, group unchanged). HDFS lets a user "give" a file
    /// to themselves and only a superuser to others; the local filesystem runs `chown`.
    pub fn chown(&self, path: &str, owner: &str) -> Result<()> {
        let (c_path, c_owner) = (c_string("chown", path)?, c_string("chown", owner)?);
        // SAFETY: valid handle and NUL-terminated strings; a NULL group means "unchanged".
        idempotent(|| {
            check("chown", path, unsafe {
                sys::hdfsChown(self.raw, c_path.as_ptr(), c_owner.as_ptr(), std::ptr::null())
            })
        })
    }

    /// Sets the modification time (whole seconds), leaving the access time.
    pub fn set_modified(&self, path: &str, modified: SystemTime) -> Result<()> {
        let c_path = c_string("utime", path)?;
        let seconds = match modified.duration_since(UNIX_EPOCH) {
            Ok(since) => since.as_secs() as c_long,
            Err(_) => return Err(Error::new("utime", path, libc::EINVAL, "time before 1970")),
        };
        // SAFETY: valid handle and NUL-terminated path.
        idempotent(|| check("utime", path, unsafe { sys::hdfsUtime(self.raw, c_path.as_ptr(), seconds, NO_CHANGE) }))
    }

    /// Opens a file for reading.
    pub fn open_read(self: &Arc<Self>, path: &str) -> Result<File> {
        idempotent(|| self.open("open", path, libc::O_RDONLY))
    }

    /// Creates a file for writing, replacing an existing one (Hadoop's `create` with overwrite).
    pub fn create(self: &Arc<Self>, path: &str) -> Result<File> {
        self.open("create", path, libc::O_WRONLY)
    }

    /// Cuts a file to `length` bytes. Returns false when HDFS must first recover the last block (the
    /// file is then shorter only once that is done).
    pub fn truncate(&self, path: &str, length: u64) -> Result<bool> {
        let c_path = c_string("truncate", path)?;
        let length =
            i64::try_from(length).map_err(|_| Error::new("truncate", path, libc::EINVAL, "length too large"))?;
        // SAFETY: valid handle and NUL-terminated path.
        match unsafe { sys::hdfsTruncateFile(self.raw, c_path.as_ptr(), length) } {
            -1 => Err(Error::last("truncate", path)),
            done => Ok(done == 1),
        }
    }

    /// Opens an existing file for writing at its end.
    pub fn append(self: &Arc<Self>, path: &str) -> Result<File> {
        self.open("append", path, libc::O_WRONLY | libc::O_APPEND)
    }

    fn open(self: &Arc<Self>, operation: &'static str, path: &str, flags: c_int) -> Result<File> {
        let c_path = c_string(operation, path)?;
        // SAFETY: valid handle and NUL-terminated path; 0 for buffer size, replication and block size
        // means the configured defaults.
        let raw = unsafe { sys::hdfsOpenFile(self.raw, c_path.as_ptr(), flags, 0, 0, 0) };
        if raw.is_null() {
            return Err(Error::last(operation, path));
        }
        Ok(File { fs: Arc::clone(self), raw, path: path.to_string(), write_array: std::ptr::null_mut() })
    }
}

fn set_errno(value: c_int) {
    // SAFETY: __errno_location returns this thread's errno slot, always valid.
    unsafe { *libc::__errno_location() = value };
}

/// What a file or directory is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    File,
    Dir,
}

/// One `hdfsFileInfo`, copied into owned values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileInfo {
    pub kind: Kind,
    /// From `stat`, the full path as Hadoop gives it (`hdfs://nn/user/a/x`, `file:/tmp/x`); in a
    /// [`Listing`], the entry's name.
    pub name: String,
    pub size: u64,
    pub modified: SystemTime,
    pub replication: u16,
    pub owner: String,
    pub group: String,
    /// Permission bits (0o7777).
    pub permissions: u16,
}

impl FileInfo {
    /// # Safety
    /// `raw` must be a valid entry filled in by libhdfs (its strings NUL-terminated or NULL).
    unsafe fn from_raw(raw: &sys::hdfsFileInfo) -> FileInfo {
        let text = |p: *mut c_char| {
            if p.is_null() {
                String::new()
            } else {
                // SAFETY: non-NULL strings of a libhdfs entry are NUL-terminated (the caller's promise).
                unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
            }
        };
        let seconds = |t: c_long| UNIX_EPOCH + Duration::from_secs(t.max(0) as u64);
        FileInfo {
            kind: if raw.mKind == sys::tObjectKind_kObjectKindDirectory { Kind::Dir } else { Kind::File },
            name: text(raw.mName),
            size: raw.mSize.max(0) as u64,
            modified: seconds(raw.mLastMod),
            replication: raw.mReplication.max(0) as u16,
            owner: text(raw.mOwner),
            group: text(raw.mGroup),
            permissions: raw.mPermissions as u16 & 0o7777,
        }
    }

    /// The last component of [`FileInfo::name`]: the entry's name in its directory.
    pub fn file_name(&self) -> &str {
        self.name.trim_end_matches('/').rsplit('/').next().unwrap_or("")
    }
}

/// An open file (`hdfsFile`), for reading or for writing. Dropping it closes it and ignores the result;
/// [`File::close`] reports it.
pub struct File {
    fs: Arc<FileSystem>,
    raw: sys::hdfsFile,
    path: String,
    /// The Java array writes go through (jni.c's `hdfsftpd_write`): a JNI global reference, NULL until
    /// the first write.
    write_array: *mut c_void,
}

/// The Java array a write is copied into, per output stream: one HDFS packet
/// (`dfs.client-write-packet-size`), so that it costs the heap little per upload.
const WRITE_CHUNK: i32 = 64 << 10;

extern "C" {
    fn hdfsftpd_write(
        file: sys::hdfsFile,
        array: *mut *mut c_void,
        chunk: i32,
        data: *const c_void,
        length: i32,
        path: *const c_char,
    ) -> c_int;
    fn hdfsftpd_write_release(array: *mut c_void);
}

// SAFETY: the stream is a JNI global reference usable from any attached thread; `&mut self` methods keep
// one thread at a time on it.
unsafe impl Send for File {}

impl fmt::Debug for File {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("File").field("path", &self.path).finish()
    }
}

/// libhdfs takes lengths as i32.
fn clamp_length(len: usize) -> i32 {
    len.min(i32::MAX as usize) as i32
}

impl File {
    /// Reads what one libhdfs read gives (possibly less than asked); 0 at the end of the file.
    pub fn read(&mut self, buffer: &mut [u8]) -> Result<usize> {
        let length = clamp_length(buffer.len());
        // SAFETY: open handles; `buffer` is writable for `length` bytes.
        let read = unsafe { sys::hdfsRead(self.fs.raw, self.raw, buffer.as_mut_ptr().cast::<c_void>(), length) };
        if read < 0 {
            return Err(Error::last("read", &self.path));
        }
        Ok(read as usize)
    }

    /// Moves the read position (files open for reading only).
    pub fn seek(&mut self, position: u64) -> Result<()> {
        // SAFETY: open handles.
        check("seek", &self.path, unsafe { sys::hdfsSeek(self.fs.raw, self.raw, position as i64) })
    }

    /// Writes some of `data`; returns how much. Files open for writing only.
    pub fn write(&mut self, data: &[u8]) -> Result<usize> {
        let length = clamp_length(data.len());
        let path = c_string("write", &self.path)?;
        // SAFETY: `raw` is an open libhdfs output stream (only `create` and `append` handles are written
        // to); `write_array` is NULL or the global reference an earlier call made for this stream;
        // `data` is readable for `length` bytes; `path` is NUL-terminated.
        let rc = unsafe {
            hdfsftpd_write(self.raw, &mut self.write_array, WRITE_CHUNK, data.as_ptr().cast(), length, path.as_ptr())
        };
        if rc != 0 {
            return Err(Error::last("write", &self.path));
        }
        Ok(length as usize)
    }

    /// Pushes buffered data out of the client (files open for writing).
    pub fn flush(&mut self) -> Result<()> {
        // SAFETY: open handles.
        check("flush", &self.path, unsafe { sys::hdfsFlush(self.fs.raw, self.raw) })
    }

    /// Closes the file, reporting what HDFS says at close (pending writes failing, lease lost…).
    pub fn close(mut self) -> Result<()> {
        let raw = std::mem::replace(&mut self.raw, std::ptr::null_mut());
        // SAFETY: `raw` is open and closed exactly once: Drop sees NULL. libhdfs frees it even on failure.
        // The close's errno and Java cause are read before Drop releases the write array.
        check("close", &self.path, unsafe { sys::hdfsCloseFile(self.fs.raw, raw) })
    }
}

impl Drop for File {
    fn drop(&mut self) {
        if !self.raw.is_null() {
            // SAFETY: open handles, closed exactly once.
            unsafe { sys::hdfsCloseFile(self.fs.raw, self.raw) };
        }
        if !self.write_array.is_null() {
            // SAFETY: the global reference hdfsftpd_write made for this stream, released exactly once.
            unsafe { hdfsftpd_write_release(self.write_array) };
        }
    }
}

impl io::Read for File {
    fn read(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
        Ok(File::read(self, buffer)?)
    }
}

impl io::Write for File {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        Ok(File::write(self, data)?)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(File::flush(self)?)
    }
}

#[cfg(test)]
mod tests;
