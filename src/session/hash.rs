//! File hashes: HASH and OPTS HASH (draft-bryan-ftpext-hash). The file is streamed through the storage
//! on the server, so a client can check an upload without downloading it again.

use std::io;
use std::time::Instant;

use super::reply::*;
use super::{storage_reply, Context, Flow, Handled};
use crate::checksum::{Algorithm, Digest};
use crate::data::{self, Outcome};
use crate::storage::OpenedFile;

/// The read size while hashing: large enough that HDFS reads are efficient, small next to a session's
/// transfer buffer, and freed when the command ends.
const HASH_CHUNK: usize = 256 << 10;

impl Context<'_> {
    /// `OPTS HASH`: the selected algorithm; `OPTS HASH name`: select another.
    pub(super) fn opts_hash(&mut self, name: &str) -> Handled {
        if name.is_empty() {
            return self.reply(OK, self.state.hash_algorithm.name());
        }
        match Algorithm::named(name) {
            Some(algorithm) => {
                self.state.hash_algorithm = algorithm;
                self.reply(OK, algorithm.name())
            }
            None => self.reply(NOT_IMPLEMENTED_FOR_PARAM, "Unknown algorithm, current selection not changed"),
        }
    }

    /// `HASH path`: `213 <algorithm> 0-<size> <hex> <path>`, the whole file hashed. ABOR, a vanished
    /// client and shutdown end it as they end a download.
    pub(super) fn hash(&mut self, name: &str) -> Handled {
        let path = self.resolve(name)?;
        let OpenedFile { mut file, .. } = match self.logged_in().storage.open_read(&path, 0) {
            Ok(opened) => opened,
            Err(e) => return self.send(&storage_reply(&path, &e)),
        };
        let algorithm = self.state.hash_algorithm;
        let mut digest = Digest::new(algorithm).map_err(|e| {
            log::error!("{}: cannot start {}: {e}", self.control.peer(), algorithm.name());
            Reply::new(LOCAL_ERROR, format!("{} is not available", algorithm.name()))
        })?;
        let mut buffer = vec![0; HASH_CHUNK];
        let started = Instant::now();
        let mut watch = super::transfer_watch(&mut *self.control, self.shared, &self.state.online, None);
        let outcome = data::read_watched(file.as_mut(), &mut buffer, &mut watch, |chunk| {
            digest.update(chunk).map_err(io::Error::other)
        });
        let bytes = watch.bytes;
        let user = &self.logged_in().identity.user;
        log::info!(
            "{}: {user} HASH {} {path} {bytes} bytes in {:.3}s: {outcome:?}",
            self.control.peer(),
            algorithm.name(),
            started.elapsed().as_secs_f64()
        );
        let replies = match outcome {
            Outcome::Complete => match digest.finish_hex() {
                Ok(hex) => vec![Reply::new(FILE_STATUS, format!("{} 0-{bytes} {hex} {name}", algorithm.name()))],
                Err(e) => vec![Reply::new(LOCAL_ERROR, format!("{path}: hashing failed: {e}"))],
            },
            Outcome::Aborted => {
                vec![Reply::new(TRANSFER_ABORTED, "HASH aborted."), Reply::new(TRANSFER_COMPLETE, "ABOR successful.")]
            }
            Outcome::ControlClosed => return Ok(Flow::Close),
            Outcome::ShutDown => vec![Reply::new(TRANSFER_ABORTED, "HASH aborted: the server is shutting down.")],
            Outcome::DataFailed(e) | Outcome::StorageFailed(e) => {
                vec![Reply::new(LOCAL_ERROR, format!("{path}: reading failed: {e}"))]
            }
        };
        for reply in &replies {
            self.send(reply)?;
        }
        Ok(Flow::Continue)
    }
}
