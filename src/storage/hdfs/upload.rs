//! Uploads to HDFS: the open output stream, publishing it (atomic uploads rename a hidden temporary file
//! onto the target), abandoning it, and the registry that closes every stream still open at shutdown —
//! HDFS output streams are not closed for us when the process exits.

use std::collections::HashMap;
use std::io::{self, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use hdfsftpd_ffi::hdfs::{self, FileSystem};

use super::{storage_error, transfer_error};
use crate::random::random_u64;
use crate::storage::{Result, WriteFile};

/// Marks temporary upload names: `.<name>.hdfsftpd-<random>.part`.
const TEMP_MARK: &str = ".hdfsftpd-";
const TEMP_SUFFIX: &str = ".part";

/// The hidden temporary name an atomic upload of `name` writes to, in the same directory.
pub fn temp_name(name: &str) -> String {
    format!(".{name}{TEMP_MARK}{:016x}{TEMP_SUFFIX}", random_u64())
}

/// True for names [`temp_name`] makes: uploads in progress, which listings leave out.
pub fn is_temp_name(name: &str) -> bool {
    name.starts_with('.') && name.ends_with(TEMP_SUFFIX) && name.contains(TEMP_MARK)
}

/// An output stream and what to do with it when the upload ends.
pub struct Upload {
    pub file: hdfs::File,
    pub fs: Arc<FileSystem>,
    /// The file the client names.
    pub target: String,
    /// Where the data goes until published, for atomic uploads.
    pub temp: Option<String>,
}

impl Upload {
    /// The upload is complete: close (where HDFS reports write errors) and, if atomic, rename into place.
    fn publish(self) -> Result<()> {
        let Upload { file, fs, target, temp } = self;
        if let Err(e) = file.close() {
            if let Some(temp) = &temp {
                discard(&fs, temp);
            }
            return Err(storage_error(e));
        }
        let Some(temp) = temp else {
            return Ok(());
        };
        replace(&fs, &temp, &target).inspect_err(|_| discard(&fs, &temp))
    }

    /// The upload failed or the server stops: close what was written, and drop it if the upload is atomic.
    fn abandon(self) {
        let Upload { file, fs, target, temp } = self;
        if let Err(e) = file.close() {
            log::warn!("closing the unfinished upload of {target}: {e}");
        }
        if let Some(temp) = temp {
            discard(&fs, &temp);
        }
    }
}

/// Puts `from` in the place of `to`. HDFS renames do not replace files, so an existing `to` is moved
/// aside (to a hidden name) and deleted only once `from` is in place; if that rename fails, the old file
/// is moved back: a failed replace never loses the file it was to replace.
pub fn replace(fs: &FileSystem, from: &str, to: &str) -> Result<()> {
    if !fs.exists(to).map_err(storage_error)? {
        return fs.rename(from, to).map_err(storage_error);
    }
    let (dir, name) = to.rsplit_once('/').unwrap_or(("", to));
    let aside = format!("{dir}/{}", temp_name(name));
    fs.rename(to, &aside).map_err(storage_error)?;
    if let Err(e) = fs.rename(from, to) {
        if let Err(back) = fs.rename(&aside, to) {
            log::error!("HDFS: replacing {to} failed and the old file could not be put back; it is at {aside}: {back}");
        }
        return Err(storage_error(e));
    }
    discard(fs, &aside);
    Ok(())
}

fn discard(fs: &FileSystem, temp: &str) {
    if let Err(e) = fs.delete(temp, false) {
        log::warn!("removing the temporary upload file {temp}: {e}");
    }
}

type Slot = Arc<Mutex<Option<Upload>>>;

fn lock(slot: &Slot) -> MutexGuard<'_, Option<Upload>> {
    crate::locks::lock(slot)
}

/// Every upload in progress, so that shutdown can close them.
#[derive(Default)]
pub struct OpenUploads {
    next_id: AtomicU64,
    slots: Mutex<HashMap<u64, Slot>>,
}

impl OpenUploads {
    fn slots(&self) -> MutexGuard<'_, HashMap<u64, Slot>> {
        crate::locks::lock(&self.slots)
    }

    /// Registers an upload; the returned writer unregisters it when dropped.
    pub fn register(self: &Arc<Self>, upload: Upload) -> HdfsWriter {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let atomic = upload.temp.is_some();
        let slot = Arc::new(Mutex::new(Some(upload)));
        self.slots().insert(id, Arc::clone(&slot));
        HdfsWriter { slot, id, uploads: Arc::clone(self), atomic }
    }

    /// Abandons every upload still open; their sessions' next write fails.
    pub fn close_all(&self) {
        let slots: Vec<Slot> = self.slots().drain().map(|(_, slot)| slot).collect();
        let open: Vec<Upload> = slots.iter().filter_map(|slot| lock(slot).take()).collect();
        if !open.is_empty() {
            log::warn!("shutdown: closing {} unfinished upload(s)", open.len());
        }
        for upload in open {
            log::info!("shutdown: closing the unfinished upload of {}", upload.target);
            upload.abandon();
        }
    }
}

/// The session's side of an upload.
pub struct HdfsWriter {
    slot: Slot,
    id: u64,
    uploads: Arc<OpenUploads>,
    /// Written to a temporary name and renamed into place by `finish`.
    atomic: bool,
}

fn closed_at_shutdown() -> io::Error {
    io::Error::other("the upload was closed because the server is shutting down")
}

impl Write for HdfsWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        match lock(&self.slot).as_mut() {
            Some(upload) => upload.file.write(data).map_err(transfer_error),
            None => Err(closed_at_shutdown()),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match lock(&self.slot).as_mut() {
            Some(upload) => upload.file.flush().map_err(transfer_error),
            None => Err(closed_at_shutdown()),
        }
    }
}

impl WriteFile for HdfsWriter {
    fn publishes_on_finish(&self) -> bool {
        self.atomic
    }

    fn finish(self: Box<Self>) -> Result<()> {
        let upload = lock(&self.slot).take();
        match upload {
            Some(upload) => upload.publish(),
            None => Err(closed_at_shutdown().into()),
        }
    }
}

impl Drop for HdfsWriter {
    fn drop(&mut self) {
        let upload = lock(&self.slot).take();
        if let Some(upload) = upload {
            upload.abandon();
        }
        self.uploads.slots().remove(&self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temporary_names_are_hidden_and_recognised() {
        let name = temp_name("report.csv");
        assert!(name.starts_with(".report.csv.hdfsftpd-"), "{name}");
        assert!(is_temp_name(&name));
        assert_ne!(temp_name("a"), temp_name("a"));
        assert!(!is_temp_name("report.csv"));
        assert!(!is_temp_name(".profile"));
    }
}
