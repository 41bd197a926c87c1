//! Files and directories: CWD CDUP PWD MKD RMD DELE RNFR RNTO SIZE MDTM MFMT SITE.

use super::reply::*;
use super::{storage_reply, Context, Handled};
use crate::listing;
use crate::storage::ErrorKind;

impl Context<'_> {
    pub(super) fn pwd(&mut self) -> Handled {
        let cwd = quote_path(self.logged_in().cwd.as_str());
        self.reply(PATH_CREATED, format!("{cwd} is the current directory"))
    }

    pub(super) fn cdup(&mut self) -> Handled {
        self.cwd("..")
    }

    pub(super) fn cwd(&mut self, name: &str) -> Handled {
        let path = self.resolve(name)?;
        match self.logged_in().storage.metadata(&path) {
            Ok(meta) if meta.is_dir() => {
                self.state.user.as_mut().expect("logged in").cwd = path;
                self.reply(FILE_ACTION_OK, "Directory successfully changed.")
            }
            Ok(_) => self.reply(FILE_UNAVAILABLE, format!("{path}: Not a directory")),
            Err(e) => self.send(&storage_reply(&path, &e)),
        }
    }

    pub(super) fn mkd(&mut self, name: &str) -> Handled {
        self.require_writable()?;
        let path = self.resolve(name)?;
        let mode = 0o777 & !self.state.umask;
        match self.logged_in().storage.make_dir(&path, mode) {
            Ok(()) => {
                log::info!("{}: {} created directory {path}", self.control.peer(), self.logged_in().identity.user);
                self.reply(PATH_CREATED, format!("{} created", quote_path(path.as_str())))
            }
            Err(e) => self.send(&storage_reply(&path, &e)),
        }
    }

    pub(super) fn rmd(&mut self, name: &str) -> Handled {
        self.require_writable()?;
        let path = self.resolve(name)?;
        if path.is_root() {
            return self.reply(FILE_UNAVAILABLE, "Cannot remove your root directory");
        }
        match self.logged_in().storage.remove_dir(&path) {
            Ok(()) => {
                log::info!("{}: {} removed directory {path}", self.control.peer(), self.logged_in().identity.user);
                self.reply(FILE_ACTION_OK, "Remove directory operation successful.")
            }
            Err(e) => self.send(&storage_reply(&path, &e)),
        }
    }

    pub(super) fn dele(&mut self, name: &str) -> Handled {
        self.require_writable()?;
        let path = self.resolve(name)?;
        match self.logged_in().storage.remove_file(&path) {
            Ok(()) => {
                log::info!("{}: {} deleted {path}", self.control.peer(), self.logged_in().identity.user);
                self.reply(FILE_ACTION_OK, "Delete operation successful.")
            }
            Err(e) => self.send(&storage_reply(&path, &e)),
        }
    }

    pub(super) fn rnfr(&mut self, name: &str) -> Handled {
        self.require_writable()?;
        let path = self.resolve(name)?;
        if path.is_root() {
            return self.reply(FILE_UNAVAILABLE, "Cannot rename your root directory");
        }
        match self.logged_in().storage.metadata(&path) {
            Ok(_) => {
                self.state.rename_from = Some(path);
                self.reply(PENDING_FURTHER_INFO, "Ready for RNTO.")
            }
            Err(e) => self.send(&storage_reply(&path, &e)),
        }
    }

    pub(super) fn rnto(&mut self, name: &str) -> Handled {
        let Some(from) = self.state.rename_from.take() else {
            return self.reply(BAD_SEQUENCE, "RNFR required first.");
        };
        let to = self.resolve(name)?;
        if to.is_root() {
            return self.reply(FILE_UNAVAILABLE, "Cannot rename onto your root directory");
        }
        match self.logged_in().storage.rename(&from, &to) {
            Ok(()) => {
                log::info!("{}: {} renamed {from} to {to}", self.control.peer(), self.logged_in().identity.user);
                self.reply(FILE_ACTION_OK, "Rename successful.")
            }
            Err(e) => self.send(&storage_reply(&to, &e)),
        }
    }

    pub(super) fn size(&mut self, name: &str) -> Handled {
        let path = self.resolve(name)?;
        match self.logged_in().storage.metadata(&path) {
            Ok(meta) if meta.is_dir() => self.reply(FILE_UNAVAILABLE, format!("{path}: Not a plain file")),
            Ok(meta) => self.reply(FILE_STATUS, meta.size.to_string()),
            Err(e) => self.send(&storage_reply(&path, &e)),
        }
    }

    pub(super) fn mdtm(&mut self, name: &str) -> Handled {
        let path = self.resolve(name)?;
        match self.logged_in().storage.metadata(&path) {
            Ok(meta) => self.reply(FILE_STATUS, listing::timestamp(meta.modified)),
            Err(e) => self.send(&storage_reply(&path, &e)),
        }
    }

    pub(super) fn mfmt(&mut self, time: &str, name: &str) -> Handled {
        self.require_writable()?;
        let Some(modified) = listing::parse_timestamp(time) else {
            return self.reply(SYNTAX_ERROR_ARGS, format!("'{time}' is not a YYYYMMDDHHMMSS time"));
        };
        let path = self.resolve(name)?;
        match self.logged_in().storage.set_modified(&path, modified) {
            Ok(()) => self.reply(FILE_STATUS, format!("Modify={}; {path}", listing::timestamp(modified))),
            Err(e) => self.send(&storage_reply(&path, &e)),
        }
    }

    pub(super) fn site(&mut self, args: &str) -> Handled {
        let (verb, rest) = super::command::split(args);
        match verb.as_str() {
            "CHMOD" => self.site_chmod(rest),
            "UMASK" => self.site_umask(rest),
            "IDLE" => self.site_idle(rest),
            "CHECKSUM" => self.site_checksum(rest),
            "HELP" => self.reply(HELP, "SITE commands: CHMOD UMASK IDLE CHECKSUM HELP"),
            _ => self.reply(SYNTAX_ERROR_ARGS, format!("Unknown SITE command {verb}; try SITE HELP")),
        }
    }

    fn site_chmod(&mut self, args: &str) -> Handled {
        self.require_writable()?;
        let parsed = args.split_once(' ').and_then(|(mode, name)| Some((parse_mode(mode)?, name)));
        let Some((mode, name)) = parsed else {
            return self.reply(SYNTAX_ERROR_ARGS, "usage: SITE CHMOD <octal mode> <path>");
        };
        if mode & 0o7000 != 0 {
            return self.reply(FILE_UNAVAILABLE, "SITE CHMOD: setuid, setgid and sticky bits cannot be set");
        }
        let path = self.resolve(name)?;
        match self.logged_in().storage.set_mode(&path, mode) {
            Ok(()) => self.reply(OK, format!("SITE CHMOD {mode:o} {path} ok.")),
            Err(e) => self.send(&storage_reply(&path, &e)),
        }
    }

    /// `SITE CHECKSUM path`: the checksum HDFS keeps for the file, as `hdfs dfs -checksum` prints it
    /// (path, algorithm and hex, tab-separated), to compare with a copy elsewhere in the cluster.
    fn site_checksum(&mut self, name: &str) -> Handled {
        if name.is_empty() {
            return self.reply(SYNTAX_ERROR_ARGS, "usage: SITE CHECKSUM <path>");
        }
        let path = self.resolve(name)?;
        match self.logged_in().storage.checksum(&path) {
            Ok((algorithm, hex)) => self.reply(FILE_STATUS, format!("{path}\t{algorithm}\t{hex}")),
            Err(e) if e.kind == ErrorKind::Unsupported => {
                self.reply(NOT_IMPLEMENTED, format!("SITE CHECKSUM: {e} (HASH computes one on any storage)"))
            }
            Err(e) => self.send(&storage_reply(&path, &e)),
        }
    }

    fn site_umask(&mut self, args: &str) -> Handled {
        if args.is_empty() {
            return self.reply(OK, format!("Your current UMASK is {:03o}", self.state.umask));
        }
        match parse_mode(args).filter(|mask| *mask <= 0o777) {
            Some(mask) => {
                self.state.umask = mask;
                self.reply(OK, format!("UMASK set to {mask:03o}"))
            }
            None => self.reply(SYNTAX_ERROR_ARGS, "usage: SITE UMASK <octal mask, 000-777>"),
        }
    }

    fn site_idle(&mut self, args: &str) -> Handled {
        let limit = self.shared.config.idle_timeout;
        if args.is_empty() {
            return self.reply(OK, format!("Current idle time is {} seconds", self.state.idle_timeout.as_secs()));
        }
        match args.parse::<u64>().map(std::time::Duration::from_secs) {
            Ok(idle) if !idle.is_zero() && idle <= limit => {
                self.state.idle_timeout = idle;
                self.reply(OK, format!("Idle time set to {} seconds", idle.as_secs()))
            }
            _ => self.reply(SYNTAX_ERROR_ARGS, format!("SITE IDLE takes 1 to {} seconds", limit.as_secs())),
        }
    }
}

/// An octal permission mode such as `640` or `0755`.
fn parse_mode(text: &str) -> Option<u32> {
    u32::from_str_radix(text, 8).ok().filter(|mode| *mode <= 0o7777)
}
