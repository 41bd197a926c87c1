//! Information and session commands: QUIT NOOP SYST FEAT OPTS HELP STAT MLST.

use std::time::SystemTime;

use super::command::{self, TransferType, VERBS};
use super::reply::*;
use super::{storage_reply, Context, Flow, Handled};
use crate::checksum::Algorithm;
use crate::listing::{self, FactSet};
use crate::storage::{DirEntry, Listing};
use crate::vpath::VPath;

/// How much of a STAT listing is sent at once.
const STATUS_BATCH: usize = 64 * 1024;

impl Context<'_> {
    pub(super) fn quit(&mut self) -> Handled {
        self.send(&Reply::closing(GOODBYE, "Goodbye."))
    }

    pub(super) fn noop(&mut self) -> Handled {
        self.reply(OK, "NOOP ok.")
    }

    pub(super) fn syst(&mut self) -> Handled {
        self.reply(SYSTEM_TYPE, "UNIX Type: L8")
    }

    /// The FEAT lines of the command table (the TLS ones only with a certificate), and TVFS, which is
    /// the path syntax rather than a verb.
    pub(super) fn feat(&mut self) -> Handled {
        let tls = self.shared.tls.is_some();
        let mut lines = vec!["Features:".to_string()];
        for verb in VERBS.iter().filter(|verb| tls || !verb.needs_tls) {
            for &feature in verb.features {
                lines.push(match feature {
                    "MLST" => {
                        let offered = FactSet::offered(self.shared.backend.has_replication());
                        format!("MLST {}", offered.feature_line(&self.state.mlst_facts))
                    }
                    "HASH" => format!("HASH {}", Algorithm::feature_list(self.state.hash_algorithm)),
                    other => other.to_string(),
                });
            }
        }
        lines.push("TVFS".to_string());
        lines.push("End".to_string());
        self.send(&Reply::multi(SYSTEM_STATUS, lines))
    }

    pub(super) fn opts(&mut self, option: &str) -> Handled {
        let (name, value) = super::command::split(option);
        match name.as_str() {
            "UTF8" if value.is_empty() || value.eq_ignore_ascii_case("ON") => self.reply(OK, "Always in UTF8 mode."),
            "UTF8" => self.reply(NOT_IMPLEMENTED_FOR_PARAM, "UTF8 cannot be turned off."),
            "MLST" => {
                self.state.mlst_facts = FactSet::offered(self.shared.backend.has_replication()).chosen(value);
                self.reply(OK, format!("MLST OPTS {}", self.state.mlst_facts.describe()))
            }
            "HASH" => self.opts_hash(value),
            _ => self.reply(SYNTAX_ERROR_ARGS, format!("Option {name} not understood.")),
        }
    }

    /// HELP: every verb and alias of the command table; `HELP verb`: that verb's help text.
    pub(super) fn help(&mut self, topic: Option<&str>) -> Handled {
        if let Some(topic) = topic {
            let text = match command::find(&topic.to_ascii_uppercase()) {
                Some(verb) => verb.help.to_string(),
                None => format!("{topic} is not known."),
            };
            return self.reply(HELP, text);
        }
        let mut lines = vec!["The following commands are recognized:".to_string()];
        let mut words: Vec<&str> =
            VERBS.iter().flat_map(|verb| [verb.name].into_iter().chain(verb.aliases.iter().copied())).collect();
        words.sort_unstable();
        lines.extend(words.chunks(10).map(|chunk| chunk.join(" ")));
        lines.push("Help OK.".to_string());
        self.send(&Reply::multi(HELP, lines))
    }

    pub(super) fn stat(&mut self, path: Option<&str>) -> Handled {
        match path {
            Some(path) => self.stat_path(path),
            None => self.stat_server(),
        }
    }

    fn stat_server(&mut self) -> Handled {
        let user = self.logged_in();
        let kind = if self.state.transfer_type == TransferType::Ascii { "ASCII" } else { "BINARY" };
        let lines = vec![
            "FTP server status:".to_string(),
            format!("Connected to {}", self.control.peer().ip()),
            format!("Logged in as {}", user.identity.user),
            format!("TYPE: {kind}"),
            format!("Session timeout in seconds is {}", self.state.idle_timeout.as_secs()),
            format!("Storage: {}", self.shared.backend.name()),
            format!("hdfsftpd {}", env!("CARGO_PKG_VERSION")),
            "End of status".to_string(),
        ];
        self.send(&Reply::multi(SYSTEM_STATUS, lines))
    }

    /// `STAT path`: the listing over the control connection, its lines sent in batches as the storage
    /// produces them, so a directory of any size is listed in the same memory. A listing that fails
    /// midway cannot change the reply's code any more: its last line says it is incomplete, and why.
    // SECURITY: this listing travels on the control connection: --require-data-tls does not
    // apply, --require-tls-login protects it.
    fn stat_path(&mut self, args: &str) -> Handled {
        let path = self.resolve(super::transfer::strip_list_options(args))?;
        let entries = match self.status_entries(&path) {
            Ok(entries) => entries,
            Err(reply) => return self.send(&reply),
        };
        let now = SystemTime::now();
        let (mut wire, mut line) = (Vec::with_capacity(STATUS_BATCH + 1024), String::new());
        first_line(FILE_STATUS, &format!("Status of {path}:"), &mut wire);
        let mut end = "End of status".to_string();
        for entry in entries {
            match entry {
                Ok(entry) => {
                    line.clear();
                    listing::ls_line(&mut line, &entry.name, &entry.metadata, now);
                    inner_line(&line, &mut wire);
                }
                Err(e) => {
                    log::warn!("{}: STAT {path}: {e}", self.control.peer());
                    end = format!("End of status (incomplete: {e})");
                    break;
                }
            }
            if wire.len() >= STATUS_BATCH {
                self.control.reply_part(&wire)?;
                wire.clear();
            }
        }
        last_line(FILE_STATUS, &end, &mut wire);
        self.control.reply_part(&wire)?;
        Ok(Flow::Continue)
    }

    /// The entries STAT lists: a directory's, opened before the first line so a refusal is a 550, or
    /// the one file.
    fn status_entries(&self, path: &VPath) -> Result<Listing, Reply> {
        let storage = &self.logged_in().storage;
        let meta = storage.metadata(path).map_err(|e| storage_reply(path, &e))?;
        if meta.is_dir() {
            return self.visible_entries(path).map_err(|e| storage_reply(path, &e));
        }
        let name = path.file_name().unwrap_or("/").to_string();
        Ok(Box::new(std::iter::once(Ok(DirEntry { name, metadata: meta }))))
    }

    pub(super) fn mlst(&mut self, name: Option<&str>) -> Handled {
        let path = self.resolve(name.unwrap_or("."))?;
        let user = self.logged_in();
        match user.storage.metadata(&path) {
            Ok(meta) => {
                let mut facts = String::new();
                listing::mlst_line(&mut facts, path.as_str(), &meta, user.identity.writable, &self.state.mlst_facts);
                let lines = vec![format!("Listing {path}"), facts, "End".to_string()];
                self.send(&Reply::multi(FILE_ACTION_OK, lines))
            }
            Err(e) => self.send(&storage_reply(&path, &e)),
        }
    }
}
