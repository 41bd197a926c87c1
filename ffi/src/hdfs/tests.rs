//! Runs the real libhdfs, JVM and Hadoop client classes against Hadoop's local filesystem (`file:///`),
//! with the jars of `HDFSFTPD_HADOOP_JARS` (scripts/cluster/provision-hadoop.sh prints that directory).

use std::path::PathBuf;
use std::sync::Arc;

use super::*;

/// libhdfs starts the JVM with CLASSPATH and LIBHDFS_OPTS, and the krb5 tests read the environment on
/// other threads, so it is set here: from `.init_array`, before main and before any test thread exists.
#[used]
#[link_section = ".init_array"]
static SET_JVM_ENVIRONMENT: extern "C" fn() = set_jvm_environment;

extern "C" fn set_jvm_environment() {
    if let Ok(jars) = std::env::var("HDFSFTPD_HADOOP_JARS") {
        // libhdfs expands `dir/*` itself.
        std::env::set_var("CLASSPATH", format!("{jars}/*"));
        std::env::set_var("LIBHDFS_OPTS", "-Xrs -Xmx256m");
    }
}

fn start_jvm_environment() {
    let jars = std::env::var("HDFSFTPD_HADOOP_JARS")
        .expect("HDFSFTPD_HADOOP_JARS must name the Hadoop client jar directory (scripts/cluster/provision-hadoop.sh)");
    let has_client_api = std::fs::read_dir(&jars)
        .map(|dir| dir.flatten().any(|e| e.file_name().to_string_lossy().starts_with("hadoop-client-api-")))
        .unwrap_or(false);
    assert!(has_client_api, "no hadoop-client-api jar in {jars}");
    assert_eq!(std::env::var("CLASSPATH").ok(), Some(format!("{jars}/*")), "set before main");
}

#[test]
fn the_jvm_environment_is_not_set_while_other_threads_run() {
    let (stop, stopped) = std::sync::mpsc::channel::<()>();
    let other = std::thread::spawn(move || stopped.recv());
    let before = std::env::var("CLASSPATH").ok();
    let refused = start_jvm_with("/elsewhere/*", "-Xrs").expect_err("two threads are running");
    assert!(refused.reason().contains("threads are running"), "{refused}");
    assert_eq!(std::env::var("CLASSPATH").ok(), before, "the environment must be left alone");
    stop.send(()).unwrap();
    other.join().unwrap().unwrap();
}

fn local_fs() -> Arc<FileSystem> {
    start_jvm_environment();
    let fs = Builder::new("file:///")
        .force_new_instance()
        .conf("fs.file.impl", "org.apache.hadoop.fs.RawLocalFileSystem")
        .connect()
        .expect("connect to file:///");
    Arc::new(fs)
}

/// A fresh directory, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!("hdfsftpd-ffi-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    fn path(&self, name: &str) -> String {
        self.0.join(name).to_string_lossy().into_owned()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 + i / 4096) as u8).collect()
}

fn write_file(fs: &Arc<FileSystem>, path: &str, data: &[u8]) {
    let mut file = fs.create(path).unwrap();
    let mut rest = data;
    while !rest.is_empty() {
        let written = file.write(rest).unwrap();
        rest = &rest[written..];
    }
    file.close().unwrap();
}

fn read_all(fs: &Arc<FileSystem>, path: &str) -> Vec<u8> {
    let mut file = fs.open_read(path).unwrap();
    let mut out = Vec::new();
    let mut buffer = vec![0u8; 1 << 20];
    loop {
        match file.read(&mut buffer).unwrap() {
            0 => return out,
            n => out.extend_from_slice(&buffer[..n]),
        }
    }
}

#[test]
fn writes_reads_and_stats_a_file() {
    let fs = local_fs();
    let dir = TempDir::new("rw");
    let path = dir.path("data.bin");
    // Not a whole number of the Java array's pieces (WRITE_CHUNK): the last piece of the write is short.
    let data = pattern((3 << 20) + 12_345);
    write_file(&fs, &path, &data);
    let info = fs.stat(&path).unwrap();
    assert_eq!((info.kind, info.size), (Kind::File, data.len() as u64));
    assert_eq!(info.file_name(), "data.bin");
    assert_eq!(read_all(&fs, &path), data);

    let mut file = fs.open_read(&path).unwrap();
    file.seek(1_000_000).unwrap();
    let mut chunk = [0u8; 100];
    let read = file.read(&mut chunk).unwrap();
    assert_eq!(&chunk[..read], &data[1_000_000..1_000_000 + read]);
}

#[test]
fn appends_to_the_end() {
    let fs = local_fs();
    let dir = TempDir::new("append");
    let path = dir.path("log");
    write_file(&fs, &path, b"hello ");
    let mut file = fs.append(&path).unwrap();
    assert_eq!(file.write(b"world").unwrap(), 5);
    file.close().unwrap();
    assert_eq!(read_all(&fs, &path), b"hello world");
}

#[test]
fn lists_directories_including_empty_ones() {
    let fs = local_fs();
    let dir = TempDir::new("list");
    let empty = dir.path("empty");
    fs.mkdirs(&empty).unwrap();
    let listing = fs.list(&empty).unwrap();
    assert_eq!(listing.count(), 0);

    for name in ["a", "b c", "d"] {
        write_file(&fs, &dir.path(name), name.as_bytes());
    }
    let listing = fs.list(&dir.0.to_string_lossy()).unwrap();
    let mut names: Vec<(String, Kind)> = listing.map(|e| e.map(|e| (e.name, e.kind))).collect::<Result<_>>().unwrap();
    names.sort();
    let expected = [("a", Kind::File), ("b c", Kind::File), ("d", Kind::File), ("empty", Kind::Dir)];
    assert_eq!(names, expected.map(|(n, k)| (n.to_string(), k)));
}

#[test]
fn listed_entries_carry_their_metadata_and_a_missing_directory_fails_with_java_s_cause() {
    let fs = local_fs();
    let dir = TempDir::new("list-meta");
    let path = dir.path(" spaced name ");
    write_file(&fs, &path, b"12345");
    fs.chmod(&path, 0o640).unwrap();
    let entries: Vec<FileInfo> = fs.list(&dir.0.to_string_lossy()).unwrap().collect::<Result<_>>().unwrap();
    assert_eq!(entries.len(), 1);
    let (entry, stat) = (&entries[0], fs.stat(&path).unwrap());
    assert_eq!(entry.name, " spaced name ");
    assert_eq!((entry.kind, entry.size, entry.permissions), (Kind::File, 5, 0o640));
    assert_eq!((&entry.owner, &entry.group, entry.modified), (&stat.owner, &stat.group, stat.modified));

    let missing = dir.path("missing");
    let error = fs.list(&missing).err().expect("listing a missing directory fails");
    assert_eq!(error.errno, libc::ENOENT, "{error}");
    assert!(error.reason().starts_with("FileNotFoundException: "), "{error}");
}

#[test]
fn the_jvm_s_heap_limit_is_its_xmx() {
    let _fs = local_fs();
    // LIBHDFS_OPTS has -Xmx256m; the JVM reports a little less (a survivor space is not counted).
    let bytes = jvm_max_heap().unwrap();
    assert!((200 << 20..=256 << 20).contains(&bytes), "{bytes}");
}

#[test]
fn classes_are_initialized_with_the_classes_nested_in_them_and_a_missing_one_is_named() {
    let _fs = local_fs();
    let count = initialize_classes("org.apache.hadoop.hdfs.protocol.proto.DataTransferProtos").unwrap();
    assert!(count > 50, "{count}");
    let error = initialize_classes("org.apache.hadoop.NoSuchClass").unwrap_err();
    assert_eq!(error.reason(), "ClassNotFoundException: org.apache.hadoop.NoSuchClass");
}

#[test]
fn changes_mode_times_and_names() {
    let fs = local_fs();
    let dir = TempDir::new("meta");
    let path = dir.path("f");
    write_file(&fs, &path, b"x");
    fs.chmod(&path, 0o640).unwrap();
    let modified = UNIX_EPOCH + Duration::from_secs(1_500_000_000);
    fs.set_modified(&path, modified).unwrap();
    let info = fs.stat(&path).unwrap();
    assert_eq!((info.permissions, info.modified), (0o640, modified));

    fs.chown(&path, "daemon").unwrap();
    assert_eq!(fs.stat(&path).unwrap().owner, "daemon");

    let moved = dir.path("g");
    fs.rename(&path, &moved).unwrap();
    assert!(!fs.exists(&path).unwrap());
    assert!(fs.exists(&moved).unwrap());
    fs.delete(&moved, false).unwrap();
    assert!(!fs.exists(&moved).unwrap());
}

#[test]
fn failures_carry_errno_and_the_java_root_cause() {
    let fs = local_fs();
    let dir = TempDir::new("errors");
    let missing = dir.path("missing");
    let error = fs.stat(&missing).unwrap_err();
    assert_eq!((error.errno, error.kind()), (libc::ENOENT, io::ErrorKind::NotFound));
    assert!(error.to_string().contains(&missing), "{error}");

    let error = fs.open_read(&missing).unwrap_err();
    assert_eq!(error.errno, libc::ENOENT);
    let cause = error.root_cause.expect("a Java root cause");
    assert!(cause.contains("FileNotFoundException"), "{cause}");

    let full = dir.path("full");
    fs.mkdirs(&full).unwrap();
    write_file(&fs, &dir.path("full/x"), b"x");
    let error = fs.delete(&full, false).unwrap_err();
    assert!(error.reason().contains("not empty"), "{error}");

    let error = fs.stat("bad\0path").unwrap_err();
    assert_eq!(error.errno, libc::EINVAL);
}

#[test]
fn a_new_instance_survives_another_ones_disconnect() {
    let dir = TempDir::new("instances");
    let first = local_fs();
    let second = local_fs();
    drop(first);
    write_file(&second, &dir.path("still-open"), b"ok");
    assert_eq!(second.stat(&dir.path("still-open")).unwrap().size, 2);
}

#[test]
fn acts_as_the_given_user_name() {
    start_jvm_environment();
    let dir = TempDir::new("user");
    let fs = Builder::new("file:///").force_new_instance().user_name("alice").connect().unwrap();
    // The local filesystem writes as the process's OS user whatever the Hadoop user; the handle works.
    assert_eq!(fs.stat(&dir.0.to_string_lossy()).unwrap().kind, Kind::Dir);
}

fn exception(stack_trace: &str, root_cause: &str) -> JavaException {
    JavaException { stack_trace: stack_trace.to_string(), root_cause: root_cause.to_string() }
}

#[test]
fn exceptions_libhdfs_has_no_errno_for_get_one_from_their_class() {
    // A quota refusal as libhdfs records it (hdfsCloseFile on a directory over its space quota): the
    // class is in the stack trace, the root cause is the RemoteException it was unwrapped from.
    let quota = exception(
        "org.apache.hadoop.hdfs.protocol.DSQuotaExceededException: The DiskSpace quota of /user/bob is exceeded: \
         quota = 1024 B\n\tat org.apache.hadoop.ipc.RemoteException.unwrapRemoteException(RemoteException.java:88)\n\
         Caused by: org.apache.hadoop.ipc.RemoteException(org.apache.hadoop.hdfs.protocol.DSQuotaExceededException): \
         The DiskSpace quota of /user/bob is exceeded: quota = 1024 B\n\tat org.apache.hadoop.ipc.Client.call(X.java:1)",
        "RemoteException: The DiskSpace quota of /user/bob is exceeded: quota = 1024 B\n\tat org.apache.hadoop.Y(Y.java:2)",
    );
    assert_eq!(quota.errno(), Some(libc::EDQUOT));
    assert_eq!(
        quota.reason(),
        "DSQuotaExceededException: The DiskSpace quota of /user/bob is exceeded: quota = 1024 B"
    );

    // Safe mode, thrown by the NameNode and left wrapped: the remote class counts.
    let safe_mode = exception(
        "org.apache.hadoop.ipc.RemoteException(org.apache.hadoop.hdfs.server.namenode.SafeModeException): Cannot \
         create file/x. Name node is in safe mode.\n\tat org.apache.hadoop.ipc.Client.call(X.java:1)",
        "RemoteException: Cannot create file/x. Name node is in safe mode.\n\tat org.apache.hadoop.Z(Z.java:3)",
    );
    assert_eq!(safe_mode.errno(), Some(libc::EROFS));
    assert_eq!(safe_mode.reason(), "SafeModeException: Cannot create file/x. Name node is in safe mode.");

    // A NameNode connection that broke: the root cause has no message, the exception thrown has one.
    let lost = exception(
        "java.io.EOFException: End of File Exception between local host is: \"a/127.0.0.1\"; destination host is: \
         \"localhost\":8020; : java.io.EOFException\n\tat org.apache.hadoop.ipc.Client.call(X.java:1)",
        "EOFException:",
    );
    assert_eq!(lost.errno(), Some(libc::ECONNRESET));
    assert!(lost.reason().starts_with("EOFException: End of File Exception between"), "{}", lost.reason());
    let lost = Error { operation: "stat", path: "/x".into(), errno: lost.errno().unwrap(), root_cause: None };
    assert!(lost.connection_lost());

    let not_empty = exception("", "org.apache.hadoop.fs.PathIsNotEmptyDirectoryException: `/x is non empty'");
    assert_eq!(not_empty.errno(), Some(libc::ENOTEMPTY));
    assert_eq!(exception("java.io.IOException: Directory /x is not empty", "IOException: x").errno(), None);
    assert_eq!(exception("", "").errno(), None);
    // A lease refusal stays wrapped (DFSClient does not unwrap it): the remote class tells it, not the words.
    let lease = exception(
        "org.apache.hadoop.ipc.RemoteException(org.apache.hadoop.hdfs.protocol.AlreadyBeingCreatedException): \
         Failed to TRUNCATE_FILE /f for DFSClient_2 on 127.0.0.1 because this file lease is currently owned by \
         DFSClient_1 on 127.0.0.1\n\tat org.apache.hadoop.hdfs.server.namenode.FSNamesystem.recoverLeaseInternal(F.java:1)",
        "RemoteException: Failed to TRUNCATE_FILE /f for DFSClient_2 on 127.0.0.1 because this file lease is \
         currently owned by DFSClient_1 on 127.0.0.1",
    );
    assert_eq!(lease.errno(), Some(libc::EBUSY));
    let standby = exception("", "RemoteException: Operation category READ is not supported in state standby");
    assert_eq!(standby.errno(), None);
    let quota_error = Error { operation: "write", path: "/x".into(), errno: libc::EDQUOT, root_cause: None };
    assert_eq!(quota_error.kind(), io::ErrorKind::QuotaExceeded);
}

#[test]
fn tells_its_scheme_and_reads_the_class_path_configuration() {
    let fs = local_fs();
    assert_eq!(fs.scheme().unwrap(), "file");
    // core-default.xml's value, from the client jars.
    assert_eq!(conf_value("fs.permissions.umask-mode").unwrap().as_deref(), Some("022"));
    assert_eq!(conf_value("hdfsftpd.no.such.key").unwrap(), None);
}

#[test]
fn a_keytab_login_is_refused_with_javas_reason_when_hadoop_has_kerberos_off() {
    start_jvm_environment();
    let refused = KeytabLogin::new("ftp/localhost@NO.REALM", Path::new("/nonexistent.keytab")).err().unwrap();
    assert!(
        refused.reason().contains("IllegalStateException: hadoop.security.authentication is not kerberos"),
        "{refused}"
    );
    assert_eq!(refused.operation, "keytab login");
}

#[test]
fn a_proxy_connection_goes_where_libhdfs_would() {
    assert_eq!(Builder::new("default").effective_uri(), None);
    assert_eq!(Builder::new("hdfs://nn:8020").effective_uri().as_deref(), Some("hdfs://nn:8020"));
    assert_eq!(Builder::new("file:///").effective_uri().as_deref(), Some("file:///"));
    assert_eq!(Builder::new("prod-ns").effective_uri().as_deref(), Some("hdfs://prod-ns"));
}
