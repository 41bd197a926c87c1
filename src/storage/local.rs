//! Local disk storage: the embedded default, and the reference every other backend is tested against.
//!
//! Confinement: every path is joined under the user's canonical home, and the real path it names (after
//! symlinks) must still be under that home; a symlink that points outside is refused, not followed.

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions, Permissions};
use std::io::{self, Seek, SeekFrom, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::{
    check_restart_offset, unusable_home, Backend, DirEntry, Error, ErrorKind, FileType, Listing, Metadata, OpenedFile,
    ReadFile, Result, Storage, WriteFile, WriteMode,
};
use crate::auth::Identity;
use crate::locks;
use crate::vpath::VPath;
use confine::Resolution;

pub mod confine;

pub struct LocalBackend {
    root: PathBuf,
    names: Arc<NameCache>,
}

impl LocalBackend {
    pub fn new(root: &Path) -> io::Result<LocalBackend> {
        let root = fs::canonicalize(root)
            .map_err(|e| io::Error::new(e.kind(), format!("local root {}: {e}", root.display())))?;
        if !root.is_dir() {
            return Err(io::Error::other(format!("local root {} is not a directory", root.display())));
        }
        Ok(LocalBackend { root, names: Arc::default() })
    }
}

impl Backend for LocalBackend {
    fn name(&self) -> &'static str {
        "local"
    }

    fn open_session(&self, identity: &Identity) -> Result<Box<dyn Storage>> {
        let home = identity.home.clone().unwrap_or_else(|| format!("/{}", identity.user));
        let home =
            VPath::root().resolve(&home).map_err(|e| unusable_home(&home, Error::new(ErrorKind::NotFound, e.0)))?;
        let home = self.root.join(home.relative());
        let home = fs::canonicalize(&home)
            .map_err(|e| unusable_home(home.display(), Error::new(ErrorKind::NotFound, Error::from(e).message)))?;
        // SECURITY: confinement: the home, after symlinks, lies under --local-root.
        if !home.starts_with(&self.root) || !home.is_dir() {
            return Err(unusable_home(home.display(), Error::new(ErrorKind::NotFound, "not a directory")));
        }
        Ok(Box::new(LocalStorage { home, names: Arc::clone(&self.names) }))
    }
}

/// uid/gid → name, looked up once per id: listings ask for the same few ids over and over.
#[derive(Default)]
struct NameCache {
    users: Mutex<HashMap<u32, String>>,
    groups: Mutex<HashMap<u32, String>>,
}

impl NameCache {
    fn user(&self, uid: u32) -> String {
        let mut users = locks::lock(&self.users);
        users.entry(uid).or_insert_with(|| hdfsftpd_ffi::accounts::user_name(uid).unwrap_or(uid.to_string())).clone()
    }

    fn group(&self, gid: u32) -> String {
        let mut groups = locks::lock(&self.groups);
        groups.entry(gid).or_insert_with(|| hdfsftpd_ffi::accounts::group_name(gid).unwrap_or(gid.to_string())).clone()
    }
}

struct LocalStorage {
    home: PathBuf,
    names: Arc<NameCache>,
}

fn outside_root() -> Error {
    Error::new(ErrorKind::PermissionDenied, "path leads outside your root directory")
}

impl LocalStorage {
    /// The path to operate on for `path`, checked to stay under the home once symlinks are followed. A
    /// path that does not exist yet is checked through its parent.
    fn real(&self, path: &VPath) -> Result<PathBuf> {
        // SECURITY: confinement: the real path, after symlinks, lies under the home; a symlink out
        // is refused, never followed.
        match confine::resolve(&self.home, Path::new(path.relative()))? {
            // A missing parent: the operation itself will report not-found.
            Resolution::Inside(_) | Resolution::MissingParent => Ok(self.home.join(path.relative())),
            Resolution::Outside => Err(outside_root()),
        }
    }

    fn metadata_of(&self, meta: &fs::Metadata) -> Metadata {
        let file_type = if meta.is_dir() {
            FileType::Dir
        } else if meta.file_type().is_symlink() {
            FileType::Symlink
        } else {
            FileType::File
        };
        Metadata {
            file_type,
            size: meta.len(),
            modified: UNIX_EPOCH + Duration::from_secs(meta.mtime().max(0) as u64),
            mode: meta.mode() & 0o7777,
            owner: self.names.user(meta.uid()),
            group: self.names.group(meta.gid()),
            links: meta.nlink(),
            replication: None,
        }
    }

    /// Metadata of one listed entry: followed when it is a symlink that stays inside the home, shown as
    /// the link itself otherwise.
    fn entry_metadata(&self, entry: &fs::DirEntry) -> io::Result<fs::Metadata> {
        let link_meta = entry.metadata()?;
        if !link_meta.file_type().is_symlink() {
            return Ok(link_meta);
        }
        let path = entry.path();
        let Ok(relative) = path.strip_prefix(&self.home) else { return Ok(link_meta) };
        match confine::resolve(&self.home, relative) {
            // SECURITY: confinement: listings do not follow symlinks out of the home either.
            Ok(Resolution::Inside(target)) => fs::metadata(target).or(Ok(link_meta)),
            _ => Ok(link_meta),
        }
    }
}

impl Storage for LocalStorage {
    fn metadata(&self, path: &VPath) -> Result<Metadata> {
        Ok(self.metadata_of(&fs::metadata(self.real(path)?)?))
    }

    fn list(&self, path: &VPath) -> Result<Listing> {
        let entries = fs::read_dir(self.real(path)?)?;
        let this = LocalStorage { home: self.home.clone(), names: Arc::clone(&self.names) };
        Ok(Box::new(entries.map(move |entry| {
            let entry = entry?;
            let metadata = this.metadata_of(&this.entry_metadata(&entry)?);
            Ok(DirEntry { name: entry.file_name().to_string_lossy().into_owned(), metadata })
        })))
    }

    fn open_read(&self, path: &VPath, offset: u64) -> Result<OpenedFile> {
        let mut file = File::open(self.real(path)?)?;
        let meta = file.metadata()?;
        if meta.is_dir() {
            return Err(Error::new(ErrorKind::WrongType, "is a directory"));
        }
        check_restart_offset(offset, meta.len())?;
        if offset > 0 {
            file.seek(SeekFrom::Start(offset))?;
        }
        Ok(OpenedFile { file: Box::new(LocalFile(file)), size: meta.len() })
    }

    fn open_write(&self, path: &VPath, how: WriteMode, mode: u32) -> Result<Box<dyn WriteFile>> {
        let real = self.real(path)?;
        let created = OpenOptions::new().write(true).create_new(true).mode(mode).open(&real);
        let file = match (created, how) {
            (Ok(file), _) => {
                // The process umask may have cut bits the session's own umask allows.
                file.set_permissions(Permissions::from_mode(mode))?;
                file
            }
            (Err(e), WriteMode::CreateNew) => return Err(e.into()),
            (Err(e), _) if e.kind() != io::ErrorKind::AlreadyExists => return Err(e.into()),
            (Err(_), WriteMode::Truncate) => OpenOptions::new().write(true).truncate(true).open(&real)?,
            (Err(_), WriteMode::Append) => {
                // Positioned at the end rather than O_APPEND: splice(2), which uploads use, refuses
                // files opened for appending.
                let mut file = OpenOptions::new().write(true).open(&real)?;
                file.seek(SeekFrom::End(0))?;
                file
            }
            (Err(_), WriteMode::At(offset)) => {
                let mut file = OpenOptions::new().write(true).open(&real)?;
                check_restart_offset(offset, file.metadata()?.len())?;
                file.seek(SeekFrom::Start(offset))?;
                file
            }
        };
        Ok(Box::new(LocalFile(file)))
    }

    fn make_dir(&self, path: &VPath, mode: u32) -> Result<()> {
        let real = self.real(path)?;
        fs::create_dir(&real)?;
        fs::set_permissions(&real, Permissions::from_mode(mode))?;
        Ok(())
    }

    fn remove_dir(&self, path: &VPath) -> Result<()> {
        Ok(fs::remove_dir(self.real(path)?)?)
    }

    fn remove_file(&self, path: &VPath) -> Result<()> {
        let real = self.real(path)?;
        if fs::symlink_metadata(&real)?.is_dir() {
            return Err(Error::new(ErrorKind::WrongType, "is a directory"));
        }
        Ok(fs::remove_file(real)?)
    }

    fn rename(&self, from: &VPath, to: &VPath) -> Result<()> {
        Ok(fs::rename(self.real(from)?, self.real(to)?)?)
    }

    fn set_mode(&self, path: &VPath, mode: u32) -> Result<()> {
        Ok(fs::set_permissions(self.real(path)?, Permissions::from_mode(mode))?)
    }

    fn set_modified(&self, path: &VPath, modified: SystemTime) -> Result<()> {
        Ok(File::open(self.real(path)?)?.set_modified(modified)?)
    }
}

/// An open local file, for either direction.
struct LocalFile(File);

impl io::Read for LocalFile {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.read(buf)
    }
}

impl Write for LocalFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

impl ReadFile for LocalFile {
    fn as_local_file(&mut self) -> Option<&mut File> {
        Some(&mut self.0)
    }
}

impl WriteFile for LocalFile {
    fn as_local_file(&mut self) -> Option<&mut File> {
        Some(&mut self.0)
    }

    fn finish(self: Box<Self>) -> Result<()> {
        Ok(())
    }
}
