//! HDFS storage through libhdfs (the `ffi` crate's safe wrapper).
//!
//! Each session reaches HDFS as its user: under simple authentication through a connection shared by the
//! user's sessions ([`connections`]), with Kerberos through one of its own, made with its ticket cache;
//! with `--hdfs-proxy-user`, sessions without a ticket act as proxy users of the gateway's own Kerberos
//! login ([`proxy`]), through a connection shared by the user's sessions.
//! Connections are new instances, closed only by their owners, never by another handle's disconnect.
//! HDFS enforces permissions itself; its refusals reach the client with
//! HDFS's reason. The same code serves `hdfs://` and every other scheme Hadoop knows (`file:///` in tests).
//!
//! HDFS semantics are mapped honestly: files are created or appended to, never written in the middle
//! (REST + STOR is accepted only at the end of the file); a rename does not replace an existing file
//! unless `--hdfs-rename-overwrite`; with `--atomic-uploads` an upload goes to a hidden temporary name
//! and is renamed onto its target only when complete.

mod connections;
mod creation;
mod download;
mod heap;
mod proxy;
mod startup;
mod upload;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use hdfsftpd_ffi::hdfs::{self, FileInfo, FileSystem, KeytabLogin, Kind};

use super::{
    check_restart_offset, unusable_home, Backend, DirEntry, Error, ErrorKind, FileType, Listing, Metadata, OpenedFile,
    Result, Storage, WriteFile, WriteMode,
};
use crate::auth::Identity;
use crate::settings::{optional, repeated, switch, value, ConfigError, Flag, Setting, Settings};
use crate::vpath::VPath;
use connections::{Connection, Connections};
use creation::{Creation, DIR_DEFAULT, FILE_DEFAULT};
use download::HdfsReader;
pub use proxy::refuse_without_hdfs;
use upload::{OpenUploads, Upload};

pub const HDFS_URI: Setting<String> =
    value("hdfs-uri", "URI", "default", "filesystem: hdfs://nn:8020, a nameservice, or default (fs.defaultFS)");
pub const HADOOP_CONF_DIR: Setting<Option<PathBuf>> =
    optional("hadoop-conf-dir", "DIR", "Hadoop configuration (core-site.xml, hdfs-site.xml)")
        .shown_as("$HADOOP_CONF_DIR");
pub const HADOOP_CLASSPATH: Setting<Option<String>> =
    optional("hadoop-classpath", "PATH", "Hadoop client jars: a:b.jar:dir/* (a jar directory is dir/*)")
        .shown_as("hadoop classpath");
pub const JVM_OPTS: Setting<Option<String>> =
    optional("jvm-opts", "OPTS", "options of the JVM libhdfs starts; -Xrs is always added")
        .shown_as("-Xrs, -Xmx for --max-clients uploads, >= 1g");
pub const HDFS_HOME: Setting<String> =
    value("hdfs-home", "PATTERN", "/user/%u", "home of users the users file gives none; %u is the user name");
pub const HDFS_CONF: Setting<Vec<String>> =
    repeated("hdfs-conf", "KEY=VALUE", "Hadoop configuration value for every connection; repeatable");
pub const ATOMIC_UPLOADS: Setting<bool> =
    switch("atomic-uploads", "upload to a hidden temporary name, renamed onto the target when complete");
pub const HDFS_RENAME_OVERWRITE: Setting<bool> =
    switch("hdfs-rename-overwrite", "let RNTO replace an existing file (HDFS refuses by default)");
/// As long as HttpFS keeps its per-user FileSystem cache (`httpfs.filesystem.cache.purge.timeout`).
pub const HDFS_IDLE_CLOSE: Setting<Duration> = value(
    "hdfs-idle-close",
    "SECONDS",
    "60",
    "close a user's HDFS connection shared by its sessions after this long unused",
);

pub const FLAGS: &[Flag] = &[
    HDFS_URI.flag(),
    HADOOP_CONF_DIR.flag(),
    HADOOP_CLASSPATH.flag(),
    JVM_OPTS.flag(),
    HDFS_HOME.flag(),
    HDFS_CONF.flag(),
    ATOMIC_UPLOADS.flag(),
    HDFS_RENAME_OVERWRITE.flag(),
    HDFS_IDLE_CLOSE.flag(),
    proxy::HDFS_PROXY_USER.flag(),
    proxy::HDFS_KEYTAB.flag(),
];

/// Hadoop client settings of every connection unless `--hdfs-conf` gives the key. A file's close ends
/// with the NameNode's complete(), which answers "not yet" while no DataNode has reported the last block
/// stored (on the loopback cluster, for 10-50% of 4 KiB uploads); the client then sleeps the initial
/// delay, doubling it on each retry. Hadoop's 400 ms made such an upload take 0.4 s; 10 ms costs the same
/// complete() calls per file (1.1-1.4 on average, 3 at most, counted in the NameNode's log). More
/// retries keep Hadoop's patience: 10 ms doubled 11 times waits up to 20 s before close fails, Hadoop's
/// default (400 ms, 5 retries) 12.4 s. The same schedule paces addBlock's NotReplicatedYet retries.
const CLIENT_DEFAULTS: &[(&str, &str)] = &[
    ("dfs.client.block.write.locateFollowingBlock.initial.delay.ms", "10"),
    ("dfs.client.block.write.locateFollowingBlock.retries", "11"),
];

/// The backend's settings, read from `--hdfs-*` and friends.
pub struct HdfsSettings {
    uri: String,
    conf: Vec<(String, String)>,
    home_pattern: String,
    atomic_uploads: bool,
    rename_overwrite: bool,
    idle_close: Duration,
}

impl HdfsSettings {
    fn from_settings(settings: &Settings) -> std::result::Result<HdfsSettings, ConfigError> {
        let conf = settings
            .get(&HDFS_CONF)?
            .iter()
            .map(|pair| match pair.split_once('=') {
                Some((key, value)) if !key.trim().is_empty() => Ok((key.trim().to_string(), value.trim().to_string())),
                _ => Err(HDFS_CONF.error(format!("'{pair}' is not KEY=VALUE"))),
            })
            .collect::<std::result::Result<_, _>>()?;
        let home_pattern = settings.get(&HDFS_HOME)?;
        if !home_pattern.starts_with('/') {
            return Err(HDFS_HOME.error(format!("'{home_pattern}' is not an absolute path")));
        }
        Ok(HdfsSettings {
            uri: settings.get(&HDFS_URI)?,
            conf,
            home_pattern,
            atomic_uploads: settings.get(&ATOMIC_UPLOADS)?,
            rename_overwrite: settings.get(&HDFS_RENAME_OVERWRITE)?,
            idle_close: settings.get(&HDFS_IDLE_CLOSE)?,
        })
    }

    /// A configured value: `--hdfs-conf`'s, else the Hadoop configuration's.
    fn conf_value(&self, key: &str) -> Option<String> {
        match self.conf.iter().rev().find(|(k, _)| k == key) {
            Some((_, value)) => Some(value.clone()),
            None => hdfs::conf_value(key).ok().flatten(),
        }
    }

    /// Checks that `max_clients` uploads at once fit in the JVM's heap, with Hadoop's queue of packets
    /// per upload shortened for every connection when the heap needs it; refuses what cannot hold.
    fn fit_uploads_in_heap(&mut self, max_clients: usize) -> std::result::Result<(), ConfigError> {
        let number = |key: &str, default: u64| -> std::result::Result<u64, ConfigError> {
            match self.conf_value(key) {
                None => Ok(default),
                Some(text) => text.trim().parse().map_err(|_| HDFS_CONF.error(format!("{key}={text}: not a number"))),
            }
        };
        let packet_size = number(heap::PACKET_SIZE_KEY, heap::DEFAULT_PACKET_SIZE)?;
        // Hadoop's default queue may be shortened; a queue the administrator chose is only checked.
        let configured = number(heap::PACKETS_KEY, heap::DEFAULT_PACKETS)?;
        let given = configured != heap::DEFAULT_PACKETS || self.conf.iter().any(|(k, _)| k == heap::PACKETS_KEY);
        let packets = given.then_some(configured);
        let max_heap = hdfs::jvm_max_heap().map_err(|e| JVM_OPTS.error(e.to_string()))?;
        let fitted = heap::packets_in_flight(max_heap, max_clients, packet_size, packets)?;
        if packets.is_none() {
            self.conf.push((heap::PACKETS_KEY.to_string(), fitted.to_string()));
        }
        log::info!(
            "HDFS: JVM heap {} MiB for --max-clients {max_clients}: {fitted} packets of {} KiB in flight per upload",
            max_heap >> 20,
            packet_size >> 10
        );
        Ok(())
    }

    /// How every connection is made; the session adds its identity.
    fn builder(&self) -> hdfs::Builder {
        let builder = hdfs::Builder::new(&self.uri).force_new_instance();
        self.client_conf().fold(builder, |builder, (key, value)| builder.conf(key, value))
    }

    /// [`CLIENT_DEFAULTS`] that `--hdfs-conf` does not set, then `--hdfs-conf`.
    fn client_conf(&self) -> impl Iterator<Item = (&str, &str)> {
        let defaults =
            CLIENT_DEFAULTS.iter().copied().filter(|(key, _)| !self.conf.iter().any(|(given, _)| given == key));
        defaults.chain(self.conf.iter().map(|(key, value)| (key.as_str(), value.as_str())))
    }
}

pub struct HdfsBackend {
    settings: Arc<HdfsSettings>,
    creation: Creation,
    uploads: Arc<OpenUploads>,
    connections: Arc<Connections>,
    /// `--hdfs-proxy-user`'s login, which sessions without a ticket of their own act through.
    gateway: Option<Arc<KeytabLogin>>,
}

impl HdfsBackend {
    /// Checks the class path, starts the JVM and checks the filesystem answers, on the calling (main)
    /// thread: any failure is fatal, before a client is accepted.
    pub fn new(settings: &Settings) -> std::result::Result<HdfsBackend, ConfigError> {
        let hdfs_settings = HdfsSettings::from_settings(settings)?;
        let proxy = proxy::ProxySettings::from_settings(settings)?;
        let conf_dir = settings.get(&HADOOP_CONF_DIR)?.or_else(|| std::env::var_os("HADOOP_CONF_DIR").map(Into::into));
        let class_path = startup::configured_class_path(settings.get(&HADOOP_CLASSPATH)?)?;
        let class_path = startup::checked_class_path(&class_path, conf_dir.as_deref())?;
        let max_clients = settings.get(&crate::config::MAX_CLIENTS)?;
        let jvm_opts = startup::jvm_options(settings.get(&JVM_OPTS)?.as_deref(), max_clients);
        let (scheme, gateway) = startup::start(&hdfs_settings, &class_path, &jvm_opts, proxy.as_ref())?;
        if let Some(login) = &gateway {
            proxy::start_renewal(Arc::clone(login))
                .map_err(|e| proxy::HDFS_PROXY_USER.error(format!("cannot start its renewal thread: {e}")))?;
        }
        let mut hdfs_settings = hdfs_settings;
        hdfs_settings.fit_uploads_in_heap(max_clients)?;
        heap::initialize_transfer_classes();
        let creation = Creation::of(scheme.as_deref(), &hdfs_settings.conf);
        log::info!("HDFS storage: {} (JVM options: {jvm_opts}; {creation})", hdfs_settings.uri);
        let connections = Connections::start(hdfs_settings.idle_close)
            .map_err(|e| HDFS_IDLE_CLOSE.error(format!("cannot start its thread: {e}")))?;
        Ok(HdfsBackend { settings: Arc::new(hdfs_settings), creation, uploads: Arc::default(), connections, gateway })
    }

    /// The session's connection: its own, made with its Kerberos ticket cache, or its user's shared one
    /// (as a proxy user of the gateway with `--hdfs-proxy-user`).
    fn connect(&self, identity: &Identity) -> hdfs::Result<Connection> {
        let builder = self.settings.builder();
        let user = identity.user.as_str();
        // SECURITY: the session acts in HDFS as its user (its own TGT, the gateway's acting for its name,
        // or its name under simple authentication), so HDFS permissions and quotas apply to it. A
        // connection made with a session's ticket is never shared; one made for a user name only by
        // sessions of that user name.
        match (identity.credentials.as_ref().and_then(|c| c.ticket_cache()), &self.gateway) {
            (Some(cache), _) => Ok(Connection::own(builder.ticket_cache(cache).connect()?)),
            (None, Some(gateway)) => self.connections.shared(user, || builder.connect_as_proxy(gateway, user)),
            (None, None) => self.connections.shared(user, || builder.user_name(user).connect()),
        }
    }
}

/// Whether `home` is a directory, as the session's connection sees it.
fn check_home(fs: &FileSystem, home: &str) -> hdfs::Result<Result<()>> {
    match fs.stat(home) {
        Ok(info) if info.kind == Kind::Dir => Ok(Ok(())),
        Ok(_) => Ok(Err(unusable_home(home, Error::new(ErrorKind::NotFound, "not a directory")))),
        Err(e) => Err(e),
    }
}

/// An answer about the path itself, which any connection would have had.
fn is_about_the_path(error: &hdfs::Error) -> bool {
    matches!(error.kind(), std::io::ErrorKind::NotFound | std::io::ErrorKind::PermissionDenied)
}

/// The user's own home, or the `--hdfs-home` pattern's; normalised like every client path, so it has no
/// `..` and no doubled slashes.
fn home_of(identity: &Identity, pattern: &str) -> Result<String> {
    let home = identity.home.clone().unwrap_or_else(|| pattern.replace("%u", &identity.user));
    let home = VPath::root().resolve(&home).map_err(|e| unusable_home(&home, Error::new(ErrorKind::NotFound, e.0)))?;
    Ok(home.as_str().to_string())
}

impl Backend for HdfsBackend {
    fn name(&self) -> &'static str {
        "hdfs"
    }

    fn has_replication(&self) -> bool {
        true
    }

    fn acts_for_users(&self) -> bool {
        self.gateway.is_some()
    }

    /// Looks at the home through the session's connection; a shared one that fails for a reason other
    /// than the path is withdrawn, and the session tries once more on a new connection.
    fn open_session(&self, identity: &Identity) -> Result<Box<dyn Storage>> {
        let home = home_of(identity, &self.settings.home_pattern)?;
        let mut fs = self.connect(identity).map_err(storage_error)?;
        match check_home(&fs, &home) {
            Ok(checked) => checked?,
            Err(e) if fs.is_shared() && !is_about_the_path(&e) => {
                log::warn!("HDFS: {e}: the shared connection of {} goes to no new session", identity.user);
                fs.withdraw();
                fs = self.connect(identity).map_err(storage_error)?;
                check_home(&fs, &home).map_err(|e| unusable_home(&home, storage_error(e)))??;
            }
            Err(e) => return Err(unusable_home(&home, storage_error(e))),
        }
        let user = identity.user.clone();
        Ok(Box::new(HdfsStorage {
            fs,
            home,
            user,
            settings: Arc::clone(&self.settings),
            creation: self.creation,
            uploads: Arc::clone(&self.uploads),
        }))
    }

    fn shutdown(&self) {
        self.uploads.close_all();
        self.connections.close_all();
    }
}

/// Maps a libhdfs failure to a storage error; the message is HDFS's own reason.
fn storage_error(error: hdfs::Error) -> Error {
    let kind = ErrorKind::of_io(error.kind());
    if kind == ErrorKind::Io {
        log::warn!("HDFS: {error}");
    } else {
        log::debug!("HDFS: {error}");
    }
    Error::new(kind, error.reason())
}

fn metadata_of(info: &FileInfo) -> Metadata {
    let is_dir = info.kind == Kind::Dir;
    Metadata {
        file_type: if is_dir { FileType::Dir } else { FileType::File },
        size: info.size,
        modified: info.modified,
        mode: u32::from(info.permissions),
        owner: info.owner.clone(),
        group: info.group.clone(),
        links: 1,
        // Directories have no replication in HDFS (it reports 0).
        replication: (!is_dir).then_some(info.replication),
    }
}

fn parent(path: &VPath) -> Result<VPath> {
    path.resolve("..").map_err(|e| Error::new(ErrorKind::NotFound, e.0))
}

/// `name` in the directory of `path`.
fn sibling(path: &VPath, name: &str) -> Result<VPath> {
    parent(path)?.join(name).map_err(|e| Error::new(ErrorKind::NotFound, e.0))
}

struct HdfsStorage {
    fs: Connection,
    /// Absolute and normalised: `/user/alice`, or `/`.
    home: String,
    user: String,
    settings: Arc<HdfsSettings>,
    creation: Creation,
    uploads: Arc<OpenUploads>,
}

impl HdfsStorage {
    /// The HDFS path of a client path: under the home, which a `VPath` cannot leave.
    fn real(&self, path: &VPath) -> String {
        match (self.home.as_str(), path.relative()) {
            (home, "") => home.to_string(),
            ("/", relative) => format!("/{relative}"),
            (home, relative) => format!("{home}/{relative}"),
        }
    }

    /// Gives what the session just created (Hadoop's `created_with` mode less its umask) its user as
    /// owner and `mode` (the session's umask applied, which HDFS's own, fs.permissions.umask-mode, does
    /// not know). Where HDFS's result is known ahead ([`Creation`]: the owner is the user), only a mode
    /// that differs is changed, without a look. Elsewhere (the local filesystem writes as the server's
    /// OS user) the entry is looked at first, because a change of owner or mode is a logged, synced write
    /// on the NameNode: only what differs is changed. A refused change of owner is only logged.
    fn settle(&self, real: &str, created_with: u32, mode: u32) -> hdfs::Result<()> {
        if let Some(applied) = self.creation.applied_mode(created_with) {
            return if applied == mode { Ok(()) } else { self.fs.chmod(real, mode as u16) };
        }
        let created = self.fs.stat(real);
        if !matches!(&created, Ok(info) if info.owner == self.user) {
            if let Err(e) = self.fs.chown(real, &self.user) {
                log::debug!("HDFS: giving {real} to {}: {e}", self.user);
            }
        }
        match created {
            Ok(info) if u32::from(info.permissions) == mode => Ok(()),
            _ => self.fs.chmod(real, mode as u16),
        }
    }

    fn stat(&self, path: &VPath) -> Result<FileInfo> {
        self.fs.stat(&self.real(path)).map_err(storage_error)
    }

    /// The entry at `path`, or `None` if there is none.
    fn lookup(&self, path: &VPath) -> Result<Option<FileInfo>> {
        match self.fs.stat(&self.real(path)) {
            Ok(info) => Ok(Some(info)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(storage_error(e)),
        }
    }

    /// Hadoop creates missing parent directories when it creates a file or directory; FTP clients expect
    /// a missing directory to be an error.
    fn require_parent_dir(&self, path: &VPath) -> Result<()> {
        let parent = parent(path)?;
        match self.stat(&parent)?.kind {
            Kind::Dir => Ok(()),
            Kind::File => Err(Error::new(ErrorKind::WrongType, format!("{parent} is not a directory"))),
        }
    }

    /// Creates (or replaces) the file, directly or under a temporary name for atomic uploads.
    fn create(&self, path: &VPath, mode: u32, existing: Option<&FileInfo>) -> Result<Upload> {
        let target = self.real(path);
        if let Some(existing) = existing {
            self.require_not_being_written(&target, existing)?;
        }
        let temp = match (self.settings.atomic_uploads, path.file_name()) {
            (true, Some(name)) => Some(self.real(&sibling(path, &upload::temp_name(name))?)),
            _ => None,
        };
        let written = temp.as_deref().unwrap_or(&target);
        let file = self.fs.create(written).map_err(storage_error)?;
        if let Err(e) = self.settle(written, FILE_DEFAULT, mode) {
            log::warn!("HDFS: setting the mode of new file {written}: {e}");
        }
        Ok(Upload { file, fs: Arc::clone(&self.fs), target, temp })
    }

    /// HDFS's create overwrites a file another client is still writing (deleting it under that client),
    /// and libhdfs cannot ask it not to. HDFS's lease check is had by truncating the file to its own
    /// length, which changes nothing on a closed file and fails while another client holds the lease.
    /// Other failures of this probe are left to the create that follows. Two races remain, each one RPC
    /// wide: a writer that starts between the probe and the create loses its file (libhdfs has no create
    /// that keeps an existing one), and a file appended to since it was looked up is cut back to the
    /// size seen (the create replaces it next). A probe past the end would cut nothing, but libhdfs
    /// prints the stack trace of its refusal to stderr on every overwrite.
    fn require_not_being_written(&self, target: &str, existing: &FileInfo) -> Result<()> {
        match self.fs.truncate(target, existing.size) {
            Err(e) if e.kind() == std::io::ErrorKind::ResourceBusy => {
                Err(Error::new(ErrorKind::Busy, format!("another client is writing it (HDFS lease): {}", e.reason())))
            }
            Err(e) => {
                log::debug!("HDFS: lease probe: {e}");
                Ok(())
            }
            Ok(_) => Ok(()),
        }
    }

    fn append(&self, path: &VPath) -> Result<Upload> {
        let target = self.real(path);
        let file = self.fs.append(&target).map_err(storage_error)?;
        Ok(Upload { file, fs: Arc::clone(&self.fs), target, temp: None })
    }

    /// REST + STOR: HDFS can only add to the end of a file, so the offset must be the file's size.
    fn write_at(&self, path: &VPath, offset: u64, existing: Option<FileInfo>) -> Result<Upload> {
        let Some(existing) = existing else {
            return Err(Error::new(ErrorKind::NotFound, format!("cannot restart at {offset}: no such file")));
        };
        if offset != existing.size {
            let size = existing.size;
            return Err(Error::new(
                ErrorKind::InvalidOffset,
                format!(
                    "HDFS files can only be appended to: restart offset {offset} is not the end of the file \
                     ({size} bytes); use REST {size} or APPE"
                ),
            ));
        }
        self.append(path)
    }
}

impl Storage for HdfsStorage {
    fn metadata(&self, path: &VPath) -> Result<Metadata> {
        Ok(metadata_of(&self.stat(path)?))
    }

    /// Streamed: HDFS sends the entries in batches of `dfs.ls.limit` as the client reads them, so a
    /// listing's memory does not grow with the directory.
    fn list(&self, path: &VPath) -> Result<Listing> {
        let entries = self.fs.list(&self.real(path)).map_err(storage_error)?;
        Ok(Box::new(entries.filter_map(|entry| match entry {
            Ok(info) if upload::is_temp_name(info.file_name()) => None,
            Ok(info) => Some(Ok(DirEntry { name: info.file_name().to_string(), metadata: metadata_of(&info) })),
            Err(e) => Some(Err(storage_error(e))),
        })))
    }

    /// A stat (the size, and whether it is a directory), then the open: the same NameNode calls as when
    /// RETR asked for `metadata` first.
    fn open_read(&self, path: &VPath, offset: u64) -> Result<OpenedFile> {
        let info = self.stat(path)?;
        if info.kind == Kind::Dir {
            return Err(Error::new(ErrorKind::WrongType, "is a directory"));
        }
        check_restart_offset(offset, info.size)?;
        let mut file = self.fs.open_read(&self.real(path)).map_err(storage_error)?;
        if offset > 0 {
            file.seek(offset).map_err(storage_error)?;
        }
        Ok(OpenedFile { file: Box::new(HdfsReader::new(file)), size: info.size })
    }

    /// The target is looked up first: an existing one has a directory as parent, so only a new one costs
    /// the parent's stat.
    fn open_write(&self, path: &VPath, how: WriteMode, mode: u32) -> Result<Box<dyn WriteFile>> {
        let existing = self.lookup(path)?;
        if existing.is_none() {
            self.require_parent_dir(path)?;
        }
        if existing.as_ref().is_some_and(|info| info.kind == Kind::Dir) {
            return Err(Error::new(ErrorKind::WrongType, "is a directory"));
        }
        let upload = match (how, existing) {
            (WriteMode::CreateNew, Some(_)) => return Err(Error::new(ErrorKind::AlreadyExists, "file exists")),
            (WriteMode::Truncate | WriteMode::CreateNew, existing) | (WriteMode::Append, existing @ None) => {
                self.create(path, mode, existing.as_ref())?
            }
            (WriteMode::Append, Some(_)) => self.append(path)?,
            (WriteMode::At(offset), existing) => self.write_at(path, offset, existing)?,
        };
        Ok(Box::new(self.uploads.register(upload)))
    }

    fn make_dir(&self, path: &VPath, mode: u32) -> Result<()> {
        self.require_parent_dir(path)?;
        if self.lookup(path)?.is_some() {
            return Err(Error::new(ErrorKind::AlreadyExists, "file exists"));
        }
        let real = self.real(path);
        self.fs.mkdirs(&real).map_err(storage_error)?;
        self.settle(&real, DIR_DEFAULT, mode).map_err(storage_error)
    }

    fn remove_dir(&self, path: &VPath) -> Result<()> {
        if self.stat(path)?.kind != Kind::Dir {
            return Err(Error::new(ErrorKind::WrongType, "Not a directory"));
        }
        self.fs.delete(&self.real(path), false).map_err(|e| {
            // HDFS says PathIsNotEmptyDirectoryException ("… is non empty': Directory is not empty"), the
            // local filesystem an IOException ("Directory … is not empty"); neither has an errno.
            if e.reason().contains("is not empty") {
                Error::new(ErrorKind::NotEmpty, e.reason())
            } else {
                storage_error(e)
            }
        })
    }

    fn remove_file(&self, path: &VPath) -> Result<()> {
        if self.stat(path)?.kind == Kind::Dir {
            return Err(Error::new(ErrorKind::WrongType, "is a directory"));
        }
        self.fs.delete(&self.real(path), false).map_err(storage_error)
    }

    fn rename(&self, from: &VPath, to: &VPath) -> Result<()> {
        let source = self.stat(from)?;
        self.require_parent_dir(to)?;
        match self.lookup(to)? {
            None => {}
            // Hadoop would move `from` into the directory: not what RNTO means.
            Some(target) if target.kind == Kind::Dir => {
                return Err(Error::new(ErrorKind::AlreadyExists, "the target is an existing directory"));
            }
            Some(_) if self.settings.rename_overwrite && source.kind == Kind::File => {
                return upload::replace(&self.fs, &self.real(from), &self.real(to));
            }
            Some(_) => return Err(Error::new(ErrorKind::AlreadyExists, "the target exists; HDFS does not replace it")),
        }
        self.fs.rename(&self.real(from), &self.real(to)).map_err(storage_error)
    }

    fn set_mode(&self, path: &VPath, mode: u32) -> Result<()> {
        self.fs.chmod(&self.real(path), mode as u16).map_err(storage_error)
    }

    fn set_modified(&self, path: &VPath, modified: SystemTime) -> Result<()> {
        self.fs.set_modified(&self.real(path), modified).map_err(storage_error)
    }

    fn checksum(&self, path: &VPath) -> Result<(String, String)> {
        match self.fs.checksum(&self.real(path)).map_err(storage_error)? {
            Some(checksum) => Ok((checksum.algorithm, checksum.hex)),
            None => Err(Error::new(ErrorKind::Unsupported, format!("{path}: this filesystem keeps no checksum"))),
        }
    }
}

/// A read or write failure during a transfer, as the transfer loop reports it to the client: HDFS's
/// reason only; the operation and the real path (outside the user's virtual root) go to the log.
pub(crate) fn transfer_error(error: hdfs::Error) -> std::io::Error {
    log::warn!("HDFS: {error}");
    std::io::Error::new(error.kind(), error.reason())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(args: &[&str]) -> Settings {
        let text: String = args.iter().map(|a| format!("{a}\n")).collect();
        Settings::from_file_text(&text, "test", &[("HDFS storage", FLAGS)]).unwrap()
    }

    fn identity(user: &str, home: Option<&str>) -> Identity {
        Identity { user: user.into(), home: home.map(Into::into), writable: true, anonymous: false, credentials: None }
    }

    #[test]
    fn homes_come_from_the_user_or_the_pattern() {
        assert_eq!(home_of(&identity("alice", None), "/user/%u").unwrap(), "/user/alice");
        assert_eq!(home_of(&identity("bob", None), "/data//%u/../shared/%u/").unwrap(), "/data/shared/bob");
        assert_eq!(home_of(&identity("root", Some("/")), "/user/%u").unwrap(), "/");
    }

    #[test]
    fn conf_pairs_and_home_pattern_are_checked() {
        let parsed = HdfsSettings::from_settings(&settings(&["hdfs-conf = a.b=c=d", "hdfs-conf = x = y"])).unwrap();
        assert_eq!(parsed.conf, [("a.b".into(), "c=d".into()), ("x".into(), "y".into())]);
        assert_eq!((parsed.uri.as_str(), parsed.home_pattern.as_str()), ("default", "/user/%u"));
        let conf: Vec<_> = parsed.client_conf().collect();
        assert_eq!(conf[..2], *CLIENT_DEFAULTS);
        assert_eq!(conf[2..], [("a.b", "c=d"), ("x", "y")]);
        let delay = CLIENT_DEFAULTS[0].0;
        let given = HdfsSettings::from_settings(&settings(&[&format!("hdfs-conf = {delay}=400")])).unwrap();
        assert_eq!(given.client_conf().collect::<Vec<_>>(), [CLIENT_DEFAULTS[1], (delay, "400")]);
        let error = HdfsSettings::from_settings(&settings(&["hdfs-conf = novalue"])).err().unwrap();
        assert_eq!(error.key, "hdfs-conf");
        let error = HdfsSettings::from_settings(&settings(&["hdfs-home = home/%u"])).err().unwrap();
        assert_eq!(error.key, "hdfs-home");
    }
}
