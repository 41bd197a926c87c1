//! Entry points for the fuzz targets (fuzz/, cargo feature `fuzzing`): each takes untrusted input the
//! way the daemon would meet it and panics when a property the daemon relies on does not hold. The
//! modules stay private; only these functions are exported. Like the composition root it sits beside,
//! it reads every feature's settings table (`super::FLAG_GROUPS`).

use std::io::{Cursor, Write};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::auth::memory::{MemoryAuthenticator, MemoryUser};
use crate::auth::{users_file, Identity};
use crate::config::Config;
use crate::listing::{self, FactSet};
use crate::proxy_protocol::{self, Header};
use crate::session::command::{self, Command};
use crate::session::doubles::MemorySession;
use crate::session::{Flow, Shared};
use crate::settings::Settings;
use crate::storage::local::confine::{self, Resolution};
use crate::storage::memory::MemoryBackend;
use crate::storage::{Backend, FileType, Metadata, WriteMode};
use crate::vpath::VPath;

/// A control line through the command parser: a parsed command's verb is the line's own.
pub fn command_line(line: &str) {
    if let Ok((verb, parsed)) = command::parse(line) {
        assert!(verb.is_named(&command::split(line).0), "{line:?} parsed as {}", verb.name);
        if let Command::Rest(offset) = parsed {
            assert_eq!(command::split(line).1.parse::<u64>().ok(), Some(offset));
        }
    }
}

/// Bytes a load balancer might send first: a header read consumes exactly its own bytes, and a relayed
/// client's address survives being written back as a v1 line.
pub fn proxy_header(bytes: &[u8]) {
    let mut reader = Cursor::new(bytes);
    let Ok(header) = proxy_protocol::read_header(&mut reader) else { return };
    let consumed = reader.position() as usize;
    let expected = match bytes[0] {
        b'P' => bytes.iter().position(|&b| b == b'\n').map(|at| at + 1),
        _ => Some(16 + usize::from(u16::from_be_bytes([bytes[14], bytes[15]]))),
    };
    assert_eq!(Some(consumed), expected, "a header must consume exactly its bytes");
    if let Header::Relayed(client) = header {
        let family = if client.is_ipv4() { "TCP4" } else { "TCP6" };
        let destination = if client.is_ipv4() { "0.0.0.0" } else { "::" };
        let line = format!("PROXY {family} {} {destination} {} 21\r\n", client.ip(), client.port());
        assert_eq!(proxy_protocol::parse_v1(line.as_bytes()).ok(), Some(Header::Relayed(client)), "{line:?}");
    }
}

/// A users file: every entry parsed has a name and `:`-free fields.
pub fn users_file(text: &str) {
    if let Ok(users) = users_file::parse(text) {
        for user in users {
            assert!(!user.name.is_empty() && !user.name.contains(':') && !user.hash.contains(':'));
        }
    }
}

/// A settings file, then the configuration built from it.
pub fn settings(text: &str) {
    if let Ok(settings) = Settings::from_file_text(text, "fuzz", super::FLAG_GROUPS) {
        let _ = Config::from_settings(&settings);
    }
}

/// A client's path against a working directory (itself a resolved client path): the result is
/// normalised, so it cannot climb out of the root.
pub fn vpath(cwd: &str, name: &str) {
    let Ok(cwd) = VPath::root().resolve(cwd) else { return };
    let Ok(path) = cwd.resolve(name) else { return };
    let text = path.as_str();
    assert!(text.starts_with('/'), "{text:?}");
    assert!(!text.contains(['\0', '\r', '\n']), "{text:?}");
    assert!(path.components().all(|c| !c.is_empty() && c != "." && c != ".."), "{text:?}");
    assert!(path.is_root() || !text.ends_with('/'), "{text:?}");
    assert_eq!(VPath::root().resolve(text).as_ref(), Ok(&path), "resolving is idempotent");
    assert_eq!(path.relative(), &text[1..]);
}

/// A temporary tree for [`confine`]: `home/` (canonical, with `a/b/`) and `outside/` beside it, made once
/// per process and removed by no one (it lives under the system's temporary directory).
fn confine_tree() -> &'static (PathBuf, PathBuf) {
    static TREE: OnceLock<(PathBuf, PathBuf)> = OnceLock::new();
    TREE.get_or_init(|| {
        let base = std::fs::canonicalize(std::env::temp_dir())
            .expect("temporary directory")
            .join(format!("hdfsftpd-fuzz-confine-{}", std::process::id()));
        let home = base.join("home");
        std::fs::create_dir_all(home.join("a/b")).expect("fuzz tree");
        std::fs::create_dir_all(base.join("outside/d")).expect("fuzz tree");
        (base, home)
    })
}

/// The local confinement walk over symlinks the input makes: lines before the last are link targets
/// (`link0` in the home, `link1` in `a/`, `link2` in `a/b/`, ...), the last line is the client's path.
/// Property: whatever `Inside` names lies under the home once the real file system resolves it.
pub fn confine(input: &str) {
    let (_, home) = confine_tree();
    let mut lines: Vec<&str> = input.split('\n').collect();
    let name = lines.pop().unwrap_or_default();
    let Ok(path) = VPath::root().resolve(name) else { return };
    let link_dirs = [home.clone(), home.join("a"), home.join("a/b")];
    for (index, dir) in link_dirs.iter().cycle().take(lines.len().min(6)).enumerate() {
        let link = dir.join(format!("link{index}"));
        let _ = std::fs::remove_file(&link);
        // An empty, NUL-bearing or over-long target is refused by the kernel: that link is left out.
        let _ = std::os::unix::fs::symlink(lines[index], &link);
    }
    if let Ok(Resolution::Inside(real)) = confine::resolve(home, Path::new(path.relative())) {
        assert!(real.starts_with(home), "{path} resolved to {} outside the home", real.display());
        // What the kernel makes of it (of its parent, for a name that does not exist yet) agrees.
        let existing = std::fs::canonicalize(&real).or_else(|_| std::fs::canonicalize(real.parent().unwrap_or(home)));
        if let Ok(kernel) = existing {
            assert!(kernel.starts_with(home), "{path}: {} is really {}", real.display(), kernel.display());
        }
    }
    for (index, dir) in link_dirs.iter().cycle().take(6).enumerate() {
        let _ = std::fs::remove_file(dir.join(format!("link{index}")));
    }
}

/// What one listed file is, as a fuzz target describes it.
pub struct ListedFile<'a> {
    pub name: &'a str,
    pub directory: bool,
    pub size: u64,
    pub modified_secs: u64,
    pub mode: u32,
    pub owner: &'a str,
    pub group: &'a str,
    pub links: u64,
    pub replication: Option<u16>,
    pub writable: bool,
    /// As `OPTS MLST` gives them; empty for all.
    pub facts: &'a str,
}

/// The listing formatters: an `ls -l` line and an MLSD line are one line each, and the MLSD line's
/// facts parse back to what was listed.
pub fn listing(file: &ListedFile) {
    let Some(modified) = UNIX_EPOCH.checked_add(Duration::from_secs(file.modified_secs)) else { return };
    let meta = Metadata {
        file_type: if file.directory { FileType::Dir } else { FileType::File },
        size: file.size,
        modified,
        mode: file.mode & 0o7777,
        owner: file.owner.to_string(),
        group: file.group.to_string(),
        links: file.links,
        replication: file.replication,
    };
    let mut ls = String::new();
    listing::ls_line(&mut ls, file.name, &meta, SystemTime::now());
    assert!(!ls.contains(['\r', '\n', '\0']), "{ls:?}");
    // No list: all facts, as a session starts with.
    let offered = FactSet::offered(true);
    let facts = if file.facts.is_empty() { offered } else { offered.chosen(file.facts) };
    let mut line = String::new();
    listing::mlst_line(&mut line, file.name, &meta, file.writable, &facts);
    assert!(!line.contains(['\r', '\n', '\0']), "{line:?}");
    let (fact_text, name) = line.split_once(' ').expect("facts, a space, the name");
    assert_eq!(name, listing::safe_name(file.name), "{line:?}");
    let mut seen = Vec::new();
    for fact in fact_text.split_terminator(';') {
        let (key, value) = fact.split_once('=').unwrap_or_else(|| panic!("fact without '=' in {line:?}"));
        assert!(facts.contains(key), "{key} listed but not asked for in {line:?}");
        let expected = match key {
            "type" => (if file.directory { "dir" } else { "file" }).to_string(),
            "size" => file.size.to_string(),
            "modify" => {
                let parsed = listing::parse_timestamp(value).unwrap_or_else(|| panic!("modify={value:?}"));
                // Times after 9999 show as its last second.
                assert_eq!(parsed, meta.modified.min(parsed), "{line:?}");
                assert!(parsed == meta.modified || value == "99991231235959", "{line:?}");
                value.to_string()
            }
            "unix.mode" => format!("{:04o}", meta.mode),
            "unix.owner" => file.owner.replace([';', ' ', '\r', '\n', '\0'], "?"),
            "unix.group" => file.group.replace([';', ' ', '\r', '\n', '\0'], "?"),
            "x.hdfs.replication" => file.replication.map(|r| r.to_string()).unwrap_or_default(),
            _ => value.to_string(),
        };
        assert_eq!(value, expected, "{key} in {line:?}");
        seen.push(key);
    }
    for fact in listing::MLST_FACTS {
        let absent = *fact == "x.hdfs.replication" && file.replication.is_none();
        assert_eq!(seen.contains(fact), facts.contains(fact) && !absent, "{fact} in {line:?}");
    }
}

/// Most lines of one dispatch input.
const MAX_SCRIPT_LINES: usize = 32;

/// The configuration of the dispatch target: no delays to wait out.
const DISPATCH_SETTINGS: &str = "login-fail-delay = 0\nmax-login-fails = 1000\n\
                                 hide-name = hidden*\ndeny-name = *.denied\n";

/// What every upload of the dispatch target sends: two lines, so ASCII mode has line ends to convert.
const DISPATCH_UPLOAD: &[u8] = b"uploaded by the fuzz data channel\r\nsecond line\n";

/// A fresh server over memory storage: users `alice` (password `secret`, read-write) and `reader`
/// (`look`, read-only), alice's home holding `file.txt`, `dir/inner.txt` and `hidden.txt`.
fn dispatch_server() -> Shared {
    static CONFIG: OnceLock<Config> = OnceLock::new();
    let config = CONFIG.get_or_init(|| {
        let settings = Settings::from_file_text(DISPATCH_SETTINGS, "fuzz", super::FLAG_GROUPS).expect("settings");
        Config::from_settings(&settings).expect("config")
    });
    let backend = MemoryBackend::with_homes(&["alice", "reader"]);
    let auth = MemoryAuthenticator::new(vec![
        MemoryUser { name: "alice", password: "secret", writable: true },
        MemoryUser { name: "reader", password: "look", writable: false },
    ]);
    let alice = Identity { user: "alice".into(), home: None, writable: true, anonymous: false, credentials: None };
    let storage = backend.open_session(&alice).expect("alice's home");
    storage.make_dir(&VPath::root().resolve("/dir").expect("path"), 0o755).expect("mkdir");
    for (name, text) in [("/file.txt", "hello\r\nworld\n"), ("/dir/inner.txt", "inner"), ("/hidden.txt", "h")] {
        let path = VPath::root().resolve(name).expect("path");
        let mut file = storage.open_write(&path, WriteMode::Truncate, 0o644).expect("open");
        file.write_all(text.as_bytes()).expect("write");
        file.finish().expect("finish");
    }
    Shared::new(config.clone(), Box::new(backend), Box::new(auth), None, None)
}

/// Command lines (one per line of the input) through a session's handlers over memory storage, a
/// recorded control connection and data connections in memory (`session::doubles`): every verb, PORT,
/// EPRT, PASV and EPSV included, runs as it would, without a socket or a wait. Property: each command
/// gets well-formed replies.
pub fn dispatch(script: &[u8]) {
    let mut session = MemorySession::new(dispatch_server(), DISPATCH_UPLOAD);
    let text = String::from_utf8_lossy(script);
    for line in text.split('\n').take(MAX_SCRIPT_LINES) {
        let line = line.strip_suffix('\r').unwrap_or(line);
        let (flow, wire) = session.handle_line(line);
        check_replies(line, &wire);
        if flow == Flow::Close {
            return;
        }
    }
}

/// What one command got back: at least one reply, every line `DDD text` or `DDD-text` (`DDD` a code
/// 100 to 599) or, inside a multi-line reply, ` text`, each ended by CRLF with no CR or LF inside; a
/// multi-line reply ends with a line of its own code.
fn check_replies(line: &str, wire: &[u8]) {
    let text = std::str::from_utf8(wire).unwrap_or_else(|e| panic!("{line:?}: a reply is not UTF-8: {e}"));
    let lines = text.strip_suffix("\r\n").unwrap_or_else(|| panic!("{line:?}: no complete reply in {text:?}"));
    let mut open: Option<&str> = None;
    for reply in lines.split("\r\n") {
        assert!(!reply.contains(['\r', '\n']), "{line:?}: CR or LF inside {reply:?}");
        if open.is_some() && reply.starts_with(' ') {
            continue;
        }
        let code =
            reply.get(..3).filter(|code| code.bytes().all(|b| b.is_ascii_digit()) && ("100".."600").contains(code));
        let code = code.unwrap_or_else(|| panic!("{line:?}: no reply code in {reply:?}"));
        match (reply.as_bytes().get(3), open) {
            (Some(b'-'), None) => open = Some(code),
            (Some(b' '), None) => {}
            (Some(b' '), Some(first)) if first == code => open = None,
            _ => panic!("{line:?}: {reply:?} out of place (open multi-line reply: {open:?}) in {text:?}"),
        }
    }
    assert_eq!(open, None, "{line:?}: a multi-line reply never ended in {text:?}");
}
