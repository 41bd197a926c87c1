//! Data transfers: their parameters (TYPE MODE STRU REST ALLO), PASV EPSV PORT EPRT, RETR STOR APPE STOU,
//! LIST NLST MLSD, and ABOR between transfers.

use std::net::{IpAddr, SocketAddr};
use std::time::{Instant, SystemTime};

use super::command::{EpsvRequest, IpFamily, TransferType};
use super::context::DataStream;
use super::reply::*;
use super::{storage_reply, transfer_failure_code, Context, DataPlan, Flow, Handled};
use crate::data::{self, DataConnection, Outcome, SetupError, Watch};
use crate::listing;
use crate::rate_limit::Direction;
use crate::storage::{OpenedFile, WriteMode};
use crate::vpath::VPath;
use crate::xferlog;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListFormat {
    /// LIST: `ls -l` lines.
    Long,
    /// NLST: names only.
    Names,
    /// MLSD: RFC 3659 facts.
    Facts,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreKind {
    Stor,
    Appe,
    Stou,
}

/// A transfer, as its log lines name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Transfer {
    Download,
    Upload(StoreKind),
    Listing(ListFormat),
}

impl Transfer {
    fn verb(self) -> &'static str {
        match self {
            Transfer::Download => "RETR",
            Transfer::Upload(StoreKind::Stor) => "STOR",
            Transfer::Upload(StoreKind::Appe) => "APPE",
            Transfer::Upload(StoreKind::Stou) => "STOU",
            Transfer::Listing(ListFormat::Long) => "LIST",
            Transfer::Listing(ListFormat::Names) => "NLST",
            Transfer::Listing(ListFormat::Facts) => "MLSD",
        }
    }

    /// The xferlog direction; listings are not file transfers and have none.
    fn direction(self) -> Option<xferlog::Direction> {
        match self {
            Transfer::Download => Some(xferlog::Direction::Outgoing),
            Transfer::Upload(_) => Some(xferlog::Direction::Incoming),
            Transfer::Listing(_) => None,
        }
    }
}

/// LIST and NLST arguments may start with `ls` options (`-la`), which clients send and we ignore.
pub fn strip_list_options(args: &str) -> &str {
    let mut rest = args.trim_start();
    while rest.starts_with('-') {
        rest = rest.split_once(' ').map(|(_, after)| after.trim_start()).unwrap_or("");
    }
    if rest.is_empty() {
        "."
    } else {
        rest
    }
}

/// What the client is told of a data connection that failed mid-transfer.
// SECURITY: OpenSSL's error text (library internals, source file names) goes to the log, not to the client.
fn data_failure(error: &std::io::Error) -> String {
    match crate::tls::is_protocol_error(error) {
        true => "TLS error (a record did not verify or the client sent an alert).".into(),
        false => error.to_string(),
    }
}

/// The largest transfer buffer for a local file (TLS, ASCII): above 64 KiB, PROT P transfers gained
/// neither speed nor CPU (measured 64 KiB to 1 MiB, 2026-12-07).
const LOCAL_CHUNK: usize = 64 << 10;

/// The largest transfer buffer for other storage (HDFS): each chunk is a JNI call and a Java array, and
/// 64 KiB chunks cost 10-13% more CPU per GiB than 1 MiB ones on HDFS downloads and uploads.
const REMOTE_CHUNK: usize = 1 << 20;

/// A transfer's buffer, for this transfer only: its storage's chunk size, or less for a smaller
/// download (`expected` bytes). A buffer of `server::LARGE_BLOCK` or more is a mapping of its own,
/// allocated zeroed: only the pages the transfer writes become resident (none under sendfile or
/// splice), and all of it goes back when the transfer ends, so an idle session holds none.
fn transfer_buffer(local: bool, expected: Option<u64>) -> Vec<u8> {
    let chunk = if local { LOCAL_CHUNK } else { REMOTE_CHUNK };
    // Never empty: a file that grew since it was looked at is still read to its end.
    let size = expected.map_or(chunk, |bytes| usize::try_from(bytes).unwrap_or(chunk).clamp(4096, chunk));
    vec![0; size]
}

/// Lines of a listing are sent in batches of about this size.
const LISTING_BATCH: usize = 64 * 1024;

impl Context<'_> {
    pub(super) fn set_type(&mut self, kind: TransferType) -> Handled {
        self.state.transfer_type = kind;
        let name = if kind == TransferType::Ascii { "ASCII" } else { "Binary" };
        self.reply(OK, format!("Switching to {name} mode."))
    }

    pub(super) fn mode(&mut self) -> Handled {
        self.reply(OK, "Mode set to S.")
    }

    pub(super) fn stru(&mut self) -> Handled {
        self.reply(OK, "Structure set to F.")
    }

    pub(super) fn allo(&mut self) -> Handled {
        self.reply(NOT_NEEDED, "ALLO command ignored.")
    }

    /// REST: the offset of the next RETR or STOR; it holds until then (clients send PASV or TYPE
    /// between REST and RETR).
    pub(super) fn rest(&mut self, offset: u64) -> Handled {
        self.state.restart_offset = offset;
        self.reply(PENDING_FURTHER_INFO, format!("Restart position accepted ({offset})."))
    }

    /// ABOR between transfers (during one, the transfer loop answers it).
    pub(super) fn abor(&mut self) -> Handled {
        self.reply(DATA_CONNECTION_OPEN, "No transfer to ABOR.")
    }

    pub(super) fn pasv(&mut self) -> Handled {
        if self.state.epsv_all {
            return self.reply(BAD_SEQUENCE, "EPSV ALL is in effect: use EPSV.");
        }
        let advertised = match (self.shared.config.pasv_address, self.control.local().ip().to_canonical()) {
            (Some(IpAddr::V4(address)), _) | (None, IpAddr::V4(address)) => address,
            _ => return self.reply(SYNTAX_ERROR_ARGS, "PASV needs IPv4; use EPSV on IPv6."),
        };
        let port = self.open_passive()?;
        let [a, b, c, d] = advertised.octets();
        let [hi, lo] = port.to_be_bytes();
        self.reply(ENTERING_PASSIVE, format!("Entering Passive Mode ({a},{b},{c},{d},{hi},{lo})."))
    }

    pub(super) fn epsv(&mut self, request: EpsvRequest) -> Handled {
        if self.control.relayed() {
            // The client would connect to the address it reached: the balancer's, where no data port
            // is. PASV names this node; clients (curl) fall back to it on this refusal.
            return self.reply(NOT_IMPLEMENTED, "EPSV cannot name this node through the load balancer: use PASV.");
        }
        // Data connections come to the control connection's address, so that is the one family served.
        let served = IpFamily::of(self.control.local().ip());
        match request {
            EpsvRequest::All => {
                self.state.epsv_all = true;
                return self.reply(OK, "EPSV ALL ok: PORT, EPRT and PASV are now refused.");
            }
            EpsvRequest::Family(asked) if asked != served => {
                let use_family = format!("use ({})", served.number());
                return self
                    .reply(NETWORK_PROTOCOL_NOT_SUPPORTED, format!("Network protocol not supported, {use_family}"));
            }
            EpsvRequest::Family(_) | EpsvRequest::AnyFamily => {}
        }
        let port = self.open_passive()?;
        self.reply(ENTERING_EXTENDED_PASSIVE, format!("Entering Extended Passive Mode (|||{port}|)"))
    }

    fn open_passive(&mut self) -> Result<u16, Reply> {
        let opened = self.data.listen(self.control.local().ip(), self.shared.config.pasv_ports);
        let (plan, port) = opened.map_err(|e| {
            log::error!("{}: cannot open a passive port: {e}", self.control.peer());
            Reply::new(CANT_OPEN_DATA, format!("Cannot open a passive port: {e}"))
        })?;
        self.state.data_plan = plan;
        Ok(port)
    }

    pub(super) fn port(&mut self, mut target: SocketAddr) -> Handled {
        if self.state.epsv_all {
            return self.reply(BAD_SEQUENCE, "EPSV ALL is in effect: use EPSV.");
        }
        let peer = self.control.peer().ip();
        // Some clients (lftp over IPv6) send the unspecified address, meaning "my address".
        if target.ip().is_unspecified() {
            target.set_ip(peer);
        }
        if let Err(why) = data::check_active_target(target, peer, self.shared.config.allow_foreign_port) {
            log::warn!("{}: refused active data connection to {target}: {why}", self.control.peer());
            return self.reply(NOT_IMPLEMENTED_FOR_PARAM, format!("PORT refused: {why}"));
        }
        self.state.data_plan = DataPlan::Active(target);
        self.reply(OK, "PORT command successful. Consider using PASV.")
    }

    /// Opens the data connection the last PASV/EPSV/PORT/EPRT prepared.
    fn open_data(&mut self) -> Result<DataStream, Reply> {
        let timeout = self.shared.config.data_timeout;
        let peer = self.control.peer();
        // A wait for a data connection gets the shutdown grace period, as a running transfer does.
        let shutdown = &self.shared.shutdown;
        let plan = match std::mem::replace(&mut self.state.data_plan, DataPlan::None) {
            DataPlan::None => return Err(Reply::new(CANT_OPEN_DATA, "Use PORT, EPRT, PASV or EPSV first.")),
            plan => plan,
        };
        let connected = self.data.connect(plan, peer.ip(), timeout, &mut *self.control, shutdown);
        match connected {
            Ok(stream) => Ok(stream),
            Err(SetupError::Aborted) => {
                // The pending command gets its failure reply; the caller sends ABOR's own reply.
                self.control
                    .reply(&Reply::new(CANT_OPEN_DATA, "No data connection: aborted by client."))
                    .map_err(|_| Reply::closing(SERVICE_UNAVAILABLE, "Control connection lost."))?;
                Err(Reply::new(TRANSFER_COMPLETE, "ABOR successful."))
            }
            Err(SetupError::ControlClosed) => Err(Reply::closing(SERVICE_UNAVAILABLE, "Control connection lost.")),
            Err(SetupError::ShutDown) => {
                log::info!("{peer}: server shutting down: no longer waiting for the data connection");
                Err(Reply::closing(SERVICE_UNAVAILABLE, "Server shutting down: no data connection, closing."))
            }
            Err(SetupError::Failed(e)) => {
                log::warn!("{peer}: data connection failed: {e}");
                Err(Reply::new(CANT_OPEN_DATA, format!("Failed to establish data connection: {e}")))
            }
        }
    }

    pub(super) fn retr(&mut self, name: &str) -> Handled {
        let path = self.resolve(name)?;
        let offset = std::mem::take(&mut self.state.restart_offset);
        let OpenedFile { mut file, size } = match self.logged_in().storage.open_read(&path, offset) {
            Ok(download) => download,
            Err(e) => return self.send(&self.storage_refused(Transfer::Download, &path, &e)),
        };
        let data = self.open_data()?;
        self.reply(
            OPENING_DATA,
            format!("Opening {} mode data connection for {path} ({size} bytes).", self.mode_name()),
        )?;
        let mut data = self.protect_data(data)?;
        let ascii = self.state.transfer_type == TransferType::Ascii;
        let mut buffer = transfer_buffer(file.as_local_file().is_some(), Some(size.saturating_sub(offset)));
        let started = Instant::now();
        let rate = self.rate_limit(Direction::Download);
        let mut watch = super::transfer_watch(&mut *self.control, self.shared, &self.state.online, rate);
        let outcome = data::send(file.as_mut(), &mut data, ascii, &mut buffer, &mut watch);
        let bytes = watch.bytes;
        self.close_data(data, &outcome);
        self.finish_transfer(Transfer::Download, &path, bytes, started, outcome, Ok(()))
    }

    pub(super) fn store(&mut self, name: &str, kind: StoreKind) -> Handled {
        self.require_writable()?;
        let offset = std::mem::take(&mut self.state.restart_offset);
        let mode = 0o666 & !self.state.umask;
        let path = match kind {
            StoreKind::Stou => self.unique_path()?,
            StoreKind::Stor | StoreKind::Appe => self.resolve(name)?,
        };
        // The data connection before the file: STOR truncates at open, so a client whose data
        // connection never arrives (NAT, ABOR) must not have emptied the file it meant to replace.
        let data = self.open_data()?;
        // Under PROT P the connection is only usable after its TLS handshake, which follows the 150
        // reply; the file waits for that too, so a failed handshake leaves no file behind.
        let (mut file, mut data) = if self.data_is_private() {
            self.reply(OPENING_DATA, self.upload_opening(kind, &path))?;
            let data = self.protect_data(data)?;
            match self.open_upload(&path, kind, offset, mode) {
                Ok(file) => (file, data),
                Err(reply) => {
                    self.refuse_data(data);
                    return self.send(&reply);
                }
            }
        } else {
            let file = self.open_upload(&path, kind, offset, mode)?;
            self.reply(OPENING_DATA, self.upload_opening(kind, &path))?;
            (file, self.protect_data(data)?)
        };
        let ascii = self.state.transfer_type == TransferType::Ascii;
        let mut buffer = transfer_buffer(file.as_local_file().is_some(), None);
        let started = Instant::now();
        let rate = self.rate_limit(Direction::Upload);
        let mut watch = super::transfer_watch(&mut *self.control, self.shared, &self.state.online, rate);
        let outcome = data::receive(&mut data, file.as_mut(), ascii, &mut buffer, &mut watch);
        let bytes = watch.bytes;
        self.close_data(data, &outcome);
        // Only a complete upload is finished (closed and, where uploads are atomic, published); any
        // other end drops the file, which the backend treats as a failed upload.
        let closed = match outcome {
            Outcome::Complete => file.finish(),
            _ => {
                drop(file);
                Ok(())
            }
        };
        self.finish_transfer(Transfer::Upload(kind), &path, bytes, started, outcome, closed)
    }

    /// The text of an upload's 150 reply: STOU's names the file it chose (RFC 1123).
    fn upload_opening(&self, kind: StoreKind, path: &VPath) -> String {
        match kind {
            StoreKind::Stou => format!("FILE: {}", path.file_name().unwrap_or_default()),
            _ => format!("Opening {} mode data connection for {path}.", self.mode_name()),
        }
    }

    /// The file an upload writes to, opened as the command and a REST offset ask.
    fn open_upload(
        &self,
        path: &VPath,
        kind: StoreKind,
        offset: u64,
        mode: u32,
    ) -> Result<Box<dyn crate::storage::WriteFile>, Reply> {
        let how = match (kind, offset) {
            (StoreKind::Stou, _) => WriteMode::CreateNew,
            (StoreKind::Appe, _) => WriteMode::Append,
            (_, 0) => WriteMode::Truncate,
            (_, offset) => WriteMode::At(offset),
        };
        let refused = |e| self.storage_refused(Transfer::Upload(kind), path, &e);
        self.logged_in().storage.open_write(path, how, mode).map_err(refused)
    }

    /// A transfer the storage refused before any data moved: its reply, and, as for every transfer that
    /// did not complete, a log line and an xferlog line.
    fn storage_refused(&self, transfer: Transfer, path: &VPath, error: &crate::storage::Error) -> Reply {
        let user = &self.logged_in().identity.user;
        log::info!("{}: {user} {} {path} refused: {error}", self.control.peer(), transfer.verb());
        self.log_transfer(transfer, path, 0, std::time::Duration::ZERO, false);
        storage_reply(path, error)
    }

    /// STOU: a name no file has yet. The file is created (never replacing one) only when the upload starts.
    fn unique_path(&self) -> Result<VPath, Reply> {
        let cwd = &self.logged_in().cwd;
        let stamp = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default().as_nanos();
        for attempt in 0..100 {
            let path = cwd.join(&format!("stou-{stamp}-{attempt}")).map_err(|e| Reply::new(NAME_NOT_ALLOWED, e.0))?;
            match self.logged_in().storage.metadata(&path) {
                Err(e) if e.kind == crate::storage::ErrorKind::NotFound => return Ok(path),
                Err(e) => return Err(self.storage_refused(Transfer::Upload(StoreKind::Stou), &path, &e)),
                Ok(_) => continue,
            }
        }
        Err(Reply::new(FILE_UNAVAILABLE, "Could not find a unique file name"))
    }

    fn mode_name(&self) -> &'static str {
        if self.state.transfer_type == TransferType::Ascii {
            "ASCII"
        } else {
            "BINARY"
        }
    }

    /// Sends the closing replies of a transfer and logs it.
    fn finish_transfer(
        &mut self,
        transfer: Transfer,
        path: &VPath,
        bytes: u64,
        started: Instant,
        outcome: Outcome,
        closed: crate::storage::Result<()>,
    ) -> Handled {
        let elapsed = started.elapsed();
        let user = self.logged_in().identity.user.clone();
        let rate = bytes as f64 / elapsed.as_secs_f64().max(1e-6) / 1e6;
        let peer = self.control.peer();
        let complete = matches!(outcome, Outcome::Complete) && closed.is_ok();
        let (status, replies): (String, Vec<Reply>) = match (&outcome, closed) {
            (Outcome::Complete, Ok(())) => {
                ("complete".into(), vec![Reply::new(TRANSFER_COMPLETE, "Transfer complete.")])
            }
            (Outcome::Complete, Err(e)) => (
                format!("failed at close: {e}"),
                vec![Reply::new(transfer_failure_code(e.kind), format!("Transfer failed: closing {path} failed: {e}"))],
            ),
            (Outcome::Aborted, _) => (
                "aborted by client".into(),
                vec![
                    Reply::new(TRANSFER_ABORTED, "Connection closed; transfer aborted."),
                    Reply::new(TRANSFER_COMPLETE, "ABOR successful."),
                ],
            ),
            (Outcome::ControlClosed, _) => ("control connection lost".into(), vec![]),
            (Outcome::ShutDown, _) => (
                "server shutting down".into(),
                vec![Reply::new(TRANSFER_ABORTED, "Transfer aborted: the server is shutting down.")],
            ),
            (Outcome::DataFailed(e), _) => (
                format!("data connection failed: {e}"),
                vec![Reply::new(TRANSFER_ABORTED, format!("Transfer aborted: data connection: {}", data_failure(e)))],
            ),
            (Outcome::StorageFailed(e), _) => (
                format!("storage failed: {e}"),
                vec![Reply::new(
                    transfer_failure_code(crate::storage::ErrorKind::of_io(e.kind())),
                    format!("Transfer failed: storage error: {e}"),
                )],
            ),
        };
        log::info!(
            "{peer}: {user} {} {path} {bytes} bytes in {:.3}s ({rate:.1} MB/s): {status}",
            transfer.verb(),
            elapsed.as_secs_f64()
        );
        self.log_transfer(transfer, path, bytes, elapsed, complete);
        if replies.is_empty() {
            return Ok(Flow::Close);
        }
        for reply in &replies {
            self.send(reply)?;
        }
        Ok(Flow::Continue)
    }

    /// One xferlog line per file transfer, complete or not.
    fn log_transfer(
        &self,
        transfer: Transfer,
        path: &VPath,
        bytes: u64,
        duration: std::time::Duration,
        complete: bool,
    ) {
        let (Some(log), Some(direction)) = (&self.shared.xferlog, transfer.direction()) else { return };
        let identity = &self.logged_in().identity;
        let record = xferlog::Transfer {
            finished: SystemTime::now(),
            duration,
            peer: self.control.peer().ip(),
            bytes,
            path: path.as_str(),
            ascii: self.state.transfer_type == TransferType::Ascii,
            direction,
            anonymous: identity.anonymous,
            user: &identity.user,
            complete,
        };
        xferlog::write(log, &record);
    }

    pub(super) fn list(&mut self, args: Option<&str>, format: ListFormat) -> Handled {
        let target = match format {
            ListFormat::Facts => args.unwrap_or("."),
            _ => strip_list_options(args.unwrap_or("")),
        };
        let path = self.resolve(target)?;
        let meta = match self.logged_in().storage.metadata(&path) {
            Ok(meta) => meta,
            Err(e) => return self.send(&storage_reply(&path, &e)),
        };
        if format == ListFormat::Facts && !meta.is_dir() {
            return self.reply(FILE_UNAVAILABLE, format!("{path}: Not a directory (use MLST for files)"));
        }
        // Opened before the 150 reply, so a directory the user may not read gets 550, not a failed transfer.
        let entries: crate::storage::Listing = if meta.is_dir() {
            match self.visible_entries(&path) {
                Ok(entries) => entries,
                Err(e) => return self.send(&storage_reply(&path, &e)),
            }
        } else {
            let name = path.file_name().unwrap_or("/").to_string();
            Box::new(std::iter::once(Ok(crate::storage::DirEntry { name, metadata: meta })))
        };
        let data = self.open_data()?;
        self.reply(OPENING_DATA, "Here comes the directory listing.")?;
        let mut data = self.protect_data(data)?;
        let started = Instant::now();
        let mut watch = super::transfer_watch(&mut *self.control, self.shared, &self.state.online, None);
        let user = self.state.user.as_ref().expect("logged in");
        let writer = ListingWriter {
            format,
            writable: user.identity.writable,
            facts: &self.state.mlst_facts,
            now: SystemTime::now(),
        };
        let outcome = writer.write(entries, &mut data, &mut watch);
        let bytes = watch.bytes;
        self.close_data(data, &outcome);
        log::debug!("{}: listing of {path}: {bytes} bytes in {:.3?}", self.control.peer(), started.elapsed());
        match outcome {
            Outcome::Complete => self.reply(TRANSFER_COMPLETE, "Directory send OK."),
            other => self.finish_transfer(Transfer::Listing(format), &path, bytes, started, other, Ok(())),
        }
    }
}

/// Formats listing lines and sends them in batches as the storage produces them.
struct ListingWriter<'a> {
    format: ListFormat,
    writable: bool,
    facts: &'a listing::FactSet,
    now: SystemTime,
}

impl ListingWriter<'_> {
    fn write(&self, entries: crate::storage::Listing, data: &mut dyn DataConnection, watch: &mut Watch) -> Outcome {
        let mut batch = String::with_capacity(LISTING_BATCH + 1024);
        for entry in entries {
            let entry = match entry {
                Ok(entry) => entry,
                Err(e) => return Outcome::StorageFailed(std::io::Error::other(e.to_string())),
            };
            match self.format {
                ListFormat::Long => listing::ls_line(&mut batch, &entry.name, &entry.metadata, self.now),
                ListFormat::Names => batch.push_str(&listing::safe_name(&entry.name)),
                ListFormat::Facts => {
                    listing::mlst_line(&mut batch, &entry.name, &entry.metadata, self.writable, self.facts)
                }
            }
            batch.push_str("\r\n");
            if batch.len() >= LISTING_BATCH {
                if let Some(end) = data::write_all_watched(data, batch.as_bytes(), watch) {
                    return end;
                }
                batch.clear();
            }
        }
        data::write_all_watched(data, batch.as_bytes(), watch).unwrap_or(Outcome::Complete)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_options_are_skipped() {
        assert_eq!(strip_list_options("-la"), ".");
        assert_eq!(strip_list_options("-l -a dir"), "dir");
        assert_eq!(strip_list_options("dir name"), "dir name");
        assert_eq!(strip_list_options(""), ".");
    }
}
