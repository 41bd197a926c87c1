//! Handler-level unit tests: each verb through its handler over a [`Context`] of in-memory parts: a
//! control connection that records the replies (doubles.rs), the memory storage and authenticator,
//! and data connections over loopback whose client end the test holds. No server and no client program: each
//! test takes milliseconds. They come in addition to the real-client suites in tests/, not instead.

use std::io::{self, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Shutdown as SocketShutdown, TcpListener, TcpStream};
use std::time::Duration;

use super::command::VERBS;
use super::context::{Context, DataChannels, DataStream, Network};
use super::doubles::{Recorder, CLIENT};
use super::{DataPlan, Flow, Shared, State};
use crate::auth::memory::{MemoryAuthenticator, MemoryUser};
use crate::config::Config;
use crate::data::{ControlWatch, Interrupt, SetupError};
use crate::settings::Settings;
use crate::shutdown::Shutdown;
use crate::storage::memory::MemoryBackend;
use crate::storage::{Storage, WriteMode};
use crate::stream::Stream;
use crate::vpath::VPath;

/// Data connections over loopback: the server's end of a pair the test made, whatever the plan.
#[derive(Default)]
struct Loopback {
    server_end: std::cell::Cell<Option<TcpStream>>,
}

impl DataChannels for Loopback {
    fn listen(&self, local: IpAddr, range: Option<(u16, u16)>) -> io::Result<(DataPlan, u16)> {
        Network.listen(local, range)
    }

    fn connect(
        &self,
        _plan: DataPlan,
        _peer: IpAddr,
        _timeout: Duration,
        _control: &mut dyn ControlWatch,
        _shutdown: &Shutdown,
    ) -> Result<DataStream, SetupError> {
        let server_end = self.server_end.take().ok_or(SetupError::Failed(io::ErrorKind::ConnectionRefused.into()))?;
        Ok(DataStream::Socket(Stream::Plain(server_end)))
    }
}

/// One session's handlers over memory parts. Users: `alice` (password `secret`, read-write) and
/// `reader` (`look`, read-only).
struct Harness {
    shared: Shared,
    control: Recorder,
    data: Loopback,
    state: State,
}

impl Harness {
    fn new() -> Harness {
        Harness::with_config(|_| {})
    }

    /// A server with a certificate, `tls_settings` (settings-file lines) beside it.
    fn with_tls(tls_settings: &str) -> Harness {
        let mut harness = Harness::new();
        harness.shared.tls = Some(test_tls(tls_settings));
        harness
    }

    fn with_config(edit: impl FnOnce(&mut Config)) -> Harness {
        let mut config = Config::from_settings(&Settings::default()).expect("default configuration");
        config.login_fail_delay = Duration::ZERO;
        config.data_timeout = Duration::from_secs(2);
        edit(&mut config);
        let backend = MemoryBackend::with_homes(&["alice", "reader"]);
        let auth = MemoryAuthenticator::new(vec![
            MemoryUser { name: "alice", password: "secret", writable: true },
            MemoryUser { name: "reader", password: "look", writable: false },
        ]);
        let shared = Shared::new(config, Box::new(backend), Box::new(auth), None, None);
        let state = State::new(&shared, CLIENT);
        Harness { shared, control: Recorder::default(), data: Loopback::default(), state }
    }

    /// Logged in as `user` (whose password is known here).
    fn logged_in(user: &str) -> Harness {
        let mut harness = Harness::new();
        harness.login(user);
        harness
    }

    fn login(&mut self, user: &str) {
        let password = if user == "alice" { "secret" } else { "look" };
        assert_eq!(self.send(&format!("USER {user}")), "331 Please specify the password.\r\n");
        assert_eq!(self.send(&format!("PASS {password}")), "230 Login successful.\r\n");
    }

    /// The handler's flow after `line`, and what it sent.
    fn flow(&mut self, line: &str) -> (Flow, String) {
        let mut cx =
            Context { shared: &self.shared, control: &mut self.control, data: &self.data, state: &mut self.state };
        let flow = cx.handle_line(line).expect("the recorder never fails");
        (flow, String::from_utf8(std::mem::take(&mut self.control.wire)).expect("UTF-8 replies"))
    }

    /// What the server replied to `line`; the session goes on.
    fn send(&mut self, line: &str) -> String {
        let (flow, replies) = self.flow(line);
        assert_eq!(flow, Flow::Continue, "{line} -> {replies}");
        replies
    }

    fn storage(&self) -> &dyn Storage {
        self.state.user.as_ref().expect("logged in").storage.as_ref()
    }

    fn put(&self, name: &str, content: &[u8]) {
        let mut file = self.storage().open_write(&path(name), WriteMode::Truncate, 0o644).unwrap();
        file.write_all(content).unwrap();
        file.finish().unwrap();
    }

    fn content(&self, name: &str) -> Vec<u8> {
        let mut bytes = Vec::new();
        self.storage().open_read(&path(name), 0).unwrap().file.read_to_end(&mut bytes).unwrap();
        bytes
    }

    fn exists(&self, name: &str) -> bool {
        self.storage().metadata(&path(name)).is_ok()
    }

    /// A data connection for the next transfer (after `PASV`): its client end.
    fn data_connection(&mut self) -> TcpStream {
        assert!(self.send("PASV").starts_with("227 Entering Passive Mode (127,0,0,1,"));
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, _) = listener.accept().unwrap();
        // As data::accept_passive prepares it: the loops wake up to look at the control connection.
        server.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
        server.set_write_timeout(Some(Duration::from_millis(50))).unwrap();
        self.data.server_end.set(Some(server));
        client
    }

    /// A download: the replies to `line` and the bytes that came on the data connection, read as
    /// they come.
    fn download(&mut self, line: &str) -> (String, Vec<u8>) {
        let mut client = self.data_connection();
        let reader = std::thread::spawn(move || {
            let mut bytes = Vec::new();
            client.read_to_end(&mut bytes).map(|_| bytes)
        });
        let replies = self.send(line);
        (replies, reader.join().unwrap().unwrap_or_default())
    }

    /// An upload of `content` with `line`: the replies.
    fn upload(&mut self, line: &str, content: &[u8]) -> String {
        let mut client = self.data_connection();
        client.write_all(content).unwrap();
        client.shutdown(SocketShutdown::Write).unwrap();
        self.send(line)
    }
}

/// Bytes no two kilobytes of which are alike, so a lost or repeated chunk shows.
fn payload(size: usize) -> Vec<u8> {
    (0..size).map(|i| (i % 251) as u8 ^ (i >> 10) as u8).collect()
}

/// TLS settings over a fresh self-signed certificate (P-256, made here, in a directory of its own).
fn test_tls(tls_settings: &str) -> crate::tls::Tls {
    use openssl::{asn1::Asn1Time, ec, hash::MessageDigest, nid::Nid, pkey::PKey, x509};
    static COUNT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let group = ec::EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).unwrap();
    let key = PKey::from_ec_key(ec::EcKey::generate(&group).unwrap()).unwrap();
    let mut name = x509::X509NameBuilder::new().unwrap();
    name.append_entry_by_nid(Nid::COMMONNAME, "localhost").unwrap();
    let name = name.build();
    let mut cert = x509::X509Builder::new().unwrap();
    cert.set_version(2).unwrap();
    cert.set_subject_name(&name).unwrap();
    cert.set_issuer_name(&name).unwrap();
    cert.set_pubkey(&key).unwrap();
    cert.set_not_before(&Asn1Time::days_from_now(0).unwrap()).unwrap();
    cert.set_not_after(&Asn1Time::days_from_now(1).unwrap()).unwrap();
    cert.sign(&key, MessageDigest::sha256()).unwrap();
    let count = COUNT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("hdfsftpd-handler-tests-{}-{count}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (cert_file, key_file) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert_file, cert.build().to_pem().unwrap()).unwrap();
    std::fs::write(&key_file, key.private_key_to_pem_pkcs8().unwrap()).unwrap();
    let text = format!("tls-cert = {}\ntls-key = {}\n{tls_settings}", cert_file.display(), key_file.display());
    let settings = Settings::from_file_text(&text, "test", &[("TLS", crate::tls::FLAGS)]).unwrap();
    let tls = crate::tls::Tls::from_settings(&settings).unwrap().expect("a certificate is configured");
    std::fs::remove_dir_all(&dir).unwrap();
    tls
}

fn patterns(list: &[&str]) -> crate::name_rules::NamePatterns {
    let list: Vec<String> = list.iter().map(|pattern| pattern.to_string()).collect();
    crate::name_rules::NamePatterns::parse(&crate::config::DENY_NAME, &list).unwrap()
}

fn path(name: &str) -> VPath {
    VPath::root().resolve(name).unwrap()
}

mod login {
    use super::*;

    #[test]
    fn user_then_pass_logs_in_with_the_accounts_access() {
        let mut session = Harness::logged_in("alice");
        assert!(session.state.user.as_ref().unwrap().identity.writable);
        assert_eq!(session.send("USER bob"), "503 Already logged in.\r\n");
        assert_eq!(session.send("PASS x"), "503 Already logged in.\r\n");
        assert!(!Harness::logged_in("reader").state.user.unwrap().identity.writable);
    }

    #[test]
    fn wrong_passwords_unknown_users_and_pass_alone_are_refused() {
        let mut session = Harness::new();
        assert_eq!(session.send("PASS secret"), "503 Login with USER first.\r\n");
        session.send("USER alice");
        assert_eq!(session.send("PASS Secret"), "530 Login incorrect.\r\n");
        session.send("USER mallory");
        assert_eq!(session.send("PASS secret"), "530 Login incorrect.\r\n");
        assert!(session.state.user.is_none());
        assert_eq!(session.send("PWD"), "530 Please login with USER and PASS\r\n");
    }

    #[test]
    fn too_many_failures_close_the_connection() {
        let mut session = Harness::with_config(|config| config.max_login_fails = 2);
        session.send("USER alice");
        session.send("PASS a");
        session.send("USER alice");
        let (flow, replies) = session.flow("PASS b");
        assert_eq!(flow, Flow::Close);
        assert_eq!(replies, "530 Login incorrect.\r\n421 Too many failed login attempts, closing connection.\r\n");
    }

    #[test]
    fn max_per_user_refuses_one_session_too_many() {
        let mut session = Harness::with_config(|config| config.max_per_user = 1);
        let _other_session = session.shared.user_sessions.take("alice", 1).unwrap();
        session.send("USER alice");
        let (flow, replies) = session.flow("PASS secret");
        assert_eq!(flow, Flow::Close);
        assert_eq!(replies, "421 Too many sessions for alice (at most 1); try again later.\r\n");
    }

    /// Credentials that ended a second ago, as a Kerberos ticket past its end time.
    struct Expired;

    impl crate::auth::SessionCredentials for Expired {
        fn ticket_cache(&self) -> Option<&std::path::Path> {
            None
        }

        fn expires(&self) -> Option<std::time::SystemTime> {
            Some(std::time::SystemTime::now() - Duration::from_secs(1))
        }
    }

    #[test]
    fn expired_credentials_end_the_login_before_the_next_command() {
        let mut session = Harness::logged_in("alice");
        session.state.user.as_mut().unwrap().identity.credentials = Some(Box::new(Expired));
        assert_eq!(session.send("LIST"), "530 Your Kerberos ticket has expired: log in again with USER and PASS.\r\n");
        assert!(session.state.user.is_none());
        assert_eq!(session.send("NOOP"), "200 NOOP ok.\r\n");
        session.login("alice");
    }

    #[test]
    fn a_user_without_a_home_is_refused_with_530() {
        let mut session = Harness::new();
        session.shared.backend = Box::new(MemoryBackend::with_homes(&[]));
        session.send("USER alice");
        assert_eq!(
            session.send("PASS secret"),
            "530 Cannot open your home directory: home directory does not exist\r\n"
        );
    }
}

mod navigation {
    use super::*;

    #[test]
    fn pwd_cwd_and_cdup() {
        let mut session = Harness::logged_in("alice");
        assert_eq!(session.send("PWD"), "257 \"/\" is the current directory\r\n");
        session.send("MKD a b");
        assert_eq!(session.send("CWD a b"), "250 Directory successfully changed.\r\n");
        assert_eq!(session.send("XPWD"), "257 \"/a b\" is the current directory\r\n");
        assert_eq!(session.send("CDUP"), "250 Directory successfully changed.\r\n");
        assert_eq!(session.send("PWD"), "257 \"/\" is the current directory\r\n");
        assert_eq!(session.send("CDUP"), "250 Directory successfully changed.\r\n", "the root is its own parent");
    }

    #[test]
    fn cwd_refuses_files_and_missing_directories() {
        let mut session = Harness::logged_in("alice");
        session.put("/f", b"x");
        assert_eq!(session.send("CWD f"), "550 /f: Not a directory\r\n");
        assert_eq!(session.send("CWD nowhere"), "550 /nowhere: No such file or directory\r\n");
        assert_eq!(session.send("PWD"), "257 \"/\" is the current directory\r\n");
    }

    #[test]
    fn denied_names_are_refused() {
        let mut session = Harness::with_config(|config| config.deny_names = patterns(&["*.secret"]));
        session.login("alice");
        assert_eq!(
            session.send("CWD x.secret"),
            "550 /x.secret: Permission denied: the name x.secret is not allowed\r\n"
        );
    }
}

mod files {
    use super::*;

    #[test]
    fn mkd_and_rmd() {
        let mut session = Harness::logged_in("alice");
        assert_eq!(session.send("MKD d"), "257 \"/d\" created\r\n");
        assert_eq!(session.send("XMKD d"), "550 /d: File exists\r\n");
        session.put("/d/f", b"x");
        assert_eq!(session.send("RMD d"), "550 /d: Directory not empty\r\n");
        session.send("DELE d/f");
        assert_eq!(session.send("XRMD d"), "250 Remove directory operation successful.\r\n");
        assert!(!session.exists("/d"));
        assert_eq!(session.send("RMD /"), "550 Cannot remove your root directory\r\n");
    }

    #[test]
    fn mkd_applies_the_umask() {
        let mut session = Harness::logged_in("alice");
        assert_eq!(session.send("SITE UMASK 077"), "200 UMASK set to 077\r\n");
        session.send("MKD d");
        assert_eq!(session.storage().metadata(&path("/d")).unwrap().mode, 0o700);
    }

    #[test]
    fn dele() {
        let mut session = Harness::logged_in("alice");
        session.put("/f", b"x");
        assert_eq!(session.send("DELE f"), "250 Delete operation successful.\r\n");
        assert!(!session.exists("/f"));
        assert_eq!(session.send("DELE f"), "550 /f: No such file or directory\r\n");
    }

    #[test]
    fn rnfr_then_rnto_renames() {
        let mut session = Harness::logged_in("alice");
        session.put("/old", b"x");
        assert_eq!(session.send("RNFR old"), "350 Ready for RNTO.\r\n");
        assert_eq!(session.send("RNTO new"), "250 Rename successful.\r\n");
        assert_eq!(session.content("/new"), b"x");
        assert!(!session.exists("/old"));
    }

    #[test]
    fn rnto_needs_rnfr_right_before() {
        let mut session = Harness::logged_in("alice");
        session.put("/old", b"x");
        assert_eq!(session.send("RNTO new"), "503 RNFR required first.\r\n");
        session.send("RNFR old");
        session.send("NOOP");
        assert_eq!(session.send("RNTO new"), "503 RNFR required first.\r\n");
        assert_eq!(session.send("RNFR missing"), "550 /missing: No such file or directory\r\n");
        assert_eq!(session.send("RNFR /"), "550 Cannot rename your root directory\r\n");
        session.send("RNFR old");
        assert_eq!(session.send("RNTO /"), "550 Cannot rename onto your root directory\r\n");
    }

    #[test]
    fn a_read_only_account_changes_nothing() {
        let mut session = Harness::logged_in("reader");
        let refusal = "550 Permission denied: this account is read-only\r\n";
        for line in
            ["MKD d", "RMD d", "DELE f", "RNFR f", "MFMT 20200101000000 f", "SITE CHMOD 644 f", "STOR f", "APPE f"]
        {
            assert_eq!(session.send(line), refusal, "{line}");
        }
        assert_eq!(session.send("STOU"), refusal);
    }

    #[test]
    fn size_mdtm_and_mfmt() {
        let mut session = Harness::logged_in("alice");
        session.put("/f", b"12345");
        session.send("MKD d");
        assert_eq!(session.send("SIZE f"), "213 5\r\n");
        assert_eq!(session.send("SIZE d"), "550 /d: Not a plain file\r\n");
        assert_eq!(session.send("SIZE nope"), "550 /nope: No such file or directory\r\n");
        assert_eq!(session.send("MFMT 20200102030405 f"), "213 Modify=20200102030405; /f\r\n");
        assert_eq!(session.send("MDTM f"), "213 20200102030405\r\n");
        assert_eq!(session.send("MDTM nope"), "550 /nope: No such file or directory\r\n");
        assert_eq!(session.send("MFMT 2020 f"), "501 '2020' is not a YYYYMMDDHHMMSS time\r\n");
    }

    #[test]
    fn site_chmod_umask_idle_checksum_and_help() {
        let mut session = Harness::logged_in("alice");
        session.put("/f", b"x");
        assert_eq!(session.send("SITE CHMOD 600 f"), "200 SITE CHMOD 600 /f ok.\r\n");
        assert_eq!(session.storage().metadata(&path("/f")).unwrap().mode, 0o600);
        assert_eq!(
            session.send("SITE CHMOD 4755 f"),
            "550 SITE CHMOD: setuid, setgid and sticky bits cannot be set\r\n"
        );
        assert_eq!(session.send("SITE CHMOD x f"), "501 usage: SITE CHMOD <octal mode> <path>\r\n");
        assert_eq!(session.send("SITE UMASK"), "200 Your current UMASK is 022\r\n");
        assert_eq!(session.send("SITE UMASK 1777"), "501 usage: SITE UMASK <octal mask, 000-777>\r\n");
        assert_eq!(session.send("SITE IDLE"), "200 Current idle time is 300 seconds\r\n");
        assert_eq!(session.send("SITE IDLE 60"), "200 Idle time set to 60 seconds\r\n");
        assert_eq!(session.state.idle_timeout, Duration::from_secs(60));
        assert_eq!(session.send("SITE IDLE 301"), "501 SITE IDLE takes 1 to 300 seconds\r\n");
        assert_eq!(
            session.send("SITE CHECKSUM f"),
            "502 SITE CHECKSUM: /f: this storage keeps no file checksums (HASH computes one on any storage)\r\n"
        );
        assert_eq!(session.send("SITE CHECKSUM"), "501 usage: SITE CHECKSUM <path>\r\n");
        assert_eq!(session.send("SITE HELP"), "214 SITE commands: CHMOD UMASK IDLE CHECKSUM HELP\r\n");
        assert_eq!(session.send("SITE EXEC ls"), "501 Unknown SITE command EXEC; try SITE HELP\r\n");
    }
}

mod info {
    use super::*;

    #[test]
    fn quit_closes_after_its_reply() {
        let mut session = Harness::new();
        assert_eq!(session.flow("QUIT"), (Flow::Close, "221 Goodbye.\r\n".to_string()));
    }

    #[test]
    fn noop_and_syst_before_login() {
        let mut session = Harness::new();
        assert_eq!(session.send("NOOP"), "200 NOOP ok.\r\n");
        assert_eq!(session.send("SYST"), "215 UNIX Type: L8\r\n");
    }

    #[test]
    fn feat_lists_the_tables_features_without_tls_ones_when_tls_is_off() {
        let mut session = Harness::new();
        let feat = session.send("FEAT");
        assert!(feat.starts_with("211-Features:\r\n") && feat.ends_with("211 End\r\n"), "{feat}");
        for line in [" EPSV\r\n", " MDTM\r\n", " REST STREAM\r\n", " SIZE\r\n", " UTF8\r\n", " TVFS\r\n"] {
            assert!(feat.contains(line), "{line} in {feat}");
        }
        assert!(feat.contains(" HASH SHA-256*;"), "{feat}");
        assert!(feat.contains(" MLST type*;size*;"), "{feat}");
        assert!(!feat.contains("AUTH") && !feat.contains("PROT"), "{feat}");
    }

    #[test]
    fn opts_utf8_mlst_and_hash() {
        let mut session = Harness::new();
        assert_eq!(session.send("OPTS UTF8 ON"), "200 Always in UTF8 mode.\r\n");
        assert_eq!(session.send("OPTS UTF8 OFF"), "504 UTF8 cannot be turned off.\r\n");
        assert_eq!(session.send("OPTS MLST type;size;"), "200 MLST OPTS type;size;\r\n");
        assert!(session.send("FEAT").contains(" MLST type*;size*;modify;"));
        assert_eq!(session.send("OPTS HASH"), "200 SHA-256\r\n");
        assert_eq!(session.send("OPTS HASH MD5"), "200 MD5\r\n");
        assert_eq!(session.send("OPTS HASH NOPE"), "504 Unknown algorithm, current selection not changed\r\n");
        assert_eq!(session.send("OPTS HASH"), "200 MD5\r\n");
        assert_eq!(session.send("OPTS MODE Z"), "501 Option MODE not understood.\r\n");
    }

    #[test]
    fn help_lists_every_verb_and_explains_one() {
        let mut session = Harness::new();
        let help = session.send("HELP");
        assert!(help.starts_with("214-The following commands are recognized:\r\n"), "{help}");
        assert!(help.ends_with("214 Help OK.\r\n"), "{help}");
        for verb in VERBS {
            assert!(help.contains(verb.name), "{} in {help}", verb.name);
        }
        assert_eq!(session.send("HELP retr"), "214 RETR <path>: download a file\r\n");
        assert_eq!(session.send("HELP FROB"), "214 FROB is not known.\r\n");
    }

    #[test]
    fn stat_of_the_session() {
        let mut session = Harness::logged_in("alice");
        session.send("TYPE I");
        let stat = session.send("STAT");
        let expected = [
            "211-FTP server status:",
            " Connected to 127.0.0.1",
            " Logged in as alice",
            " TYPE: BINARY",
            " Session timeout in seconds is 300",
            " Storage: memory",
        ];
        assert!(stat.starts_with(&(expected.join("\r\n") + "\r\n")), "{stat}");
        assert!(stat.ends_with("211 End of status\r\n"), "{stat}");
    }

    #[test]
    fn stat_of_a_path_lists_on_the_control_connection() {
        let mut session = Harness::logged_in("alice");
        session.send("MKD dir");
        session.put("/dir/one", b"1");
        let stat = session.send("STAT -l dir");
        let lines: Vec<&str> = stat.lines().collect();
        assert_eq!(lines[0], "213-Status of /dir:");
        assert!(lines[1].starts_with(" -rw-r--r-- ") && lines[1].ends_with(" one"), "{stat}");
        assert_eq!(lines[2], "213 End of status");
        assert_eq!(session.send("STAT nope"), "550 /nope: No such file or directory\r\n");
    }

    #[test]
    fn mlst_gives_one_entrys_facts() {
        let mut session = Harness::logged_in("alice");
        session.put("/f", b"abc");
        let mlst = session.send("MLST f");
        let lines: Vec<&str> = mlst.lines().collect();
        assert_eq!(lines[0], "250-Listing /f");
        assert!(lines[1].starts_with(" type=file;size=3;modify="), "{mlst}");
        assert!(lines[1].ends_with(" /f"), "{mlst}");
        assert_eq!(lines[2], "250 End");
        assert_eq!(session.send("MLST nope"), "550 /nope: No such file or directory\r\n");
    }
}

mod transfers {
    use super::*;

    #[test]
    fn retr_in_binary_and_ascii() {
        let mut session = Harness::logged_in("alice");
        session.put("/f", b"a\nb\n");
        session.send("TYPE I");
        let (replies, bytes) = session.download("RETR f");
        assert_eq!(replies, "150 Opening BINARY mode data connection for /f (4 bytes).\r\n226 Transfer complete.\r\n");
        assert_eq!(bytes, b"a\nb\n");
        assert_eq!(session.send("TYPE A"), "200 Switching to ASCII mode.\r\n");
        let (replies, bytes) = session.download("RETR f");
        assert!(replies.starts_with("150 Opening ASCII mode data connection for /f (4 bytes).\r\n"), "{replies}");
        assert_eq!(bytes, b"a\r\nb\r\n");
    }

    #[test]
    fn retr_of_several_chunks_arrives_whole() {
        let mut session = Harness::logged_in("alice");
        let content = payload(3 << 20);
        session.put("/big", &content);
        session.send("TYPE I");
        let (replies, bytes) = session.download("RETR big");
        assert!(replies.ends_with("226 Transfer complete.\r\n"), "{replies}");
        assert!(bytes == content, "{} bytes of {}", bytes.len(), content.len());
    }

    #[test]
    fn retr_refusals() {
        let mut session = Harness::logged_in("alice");
        session.put("/f", b"x");
        assert_eq!(session.send("RETR f"), "425 Use PORT, EPRT, PASV or EPSV first.\r\n");
        assert_eq!(session.send("RETR nope"), "550 /nope: No such file or directory\r\n");
        session.send("MKD d");
        session.send("PASV");
        assert_eq!(session.send("RETR d"), "550 /d: Is a directory\r\n");
    }

    #[test]
    fn rest_then_retr_sends_the_rest() {
        let mut session = Harness::logged_in("alice");
        session.put("/f", b"0123456789");
        session.send("TYPE I");
        assert_eq!(session.send("REST 4"), "350 Restart position accepted (4).\r\n");
        let (replies, bytes) = session.download("RETR f");
        assert!(replies.ends_with("226 Transfer complete.\r\n"), "{replies}");
        assert_eq!(bytes, b"456789");
        assert_eq!(session.state.restart_offset, 0, "REST holds for one transfer");
        session.send("REST 11");
        session.send("PASV");
        assert_eq!(session.send("RETR f"), "554 /f: restart offset 11 is beyond the end of the file (10 bytes)\r\n");
    }

    #[test]
    fn stor_in_binary_and_ascii() {
        let mut session = Harness::logged_in("alice");
        session.send("TYPE I");
        let content = payload(300 << 10);
        let replies = session.upload("STOR up", &content);
        assert_eq!(replies, "150 Opening BINARY mode data connection for /up.\r\n226 Transfer complete.\r\n");
        assert!(session.content("/up") == content);
        session.send("TYPE A");
        session.upload("STOR text", b"a\r\nb\r\n");
        assert_eq!(session.content("/text"), b"a\nb\n");
    }

    #[test]
    fn appe_appends_and_rest_stor_writes_at_the_offset() {
        let mut session = Harness::logged_in("alice");
        session.send("TYPE I");
        session.put("/f", b"0123");
        assert!(session.upload("APPE f", b"45").ends_with("226 Transfer complete.\r\n"));
        assert_eq!(session.content("/f"), b"012345");
        session.send("REST 2");
        assert!(session.upload("STOR f", b"ab").ends_with("226 Transfer complete.\r\n"));
        // What follows the written bytes is the storage's business (local keeps it, memory drops it).
        assert!(session.content("/f").starts_with(b"01ab"));
    }

    #[test]
    fn stou_names_a_new_file() {
        let mut session = Harness::logged_in("alice");
        session.send("TYPE I");
        let replies = session.upload("STOU", b"unique");
        let name = replies.strip_prefix("150 FILE: ").and_then(|r| r.split("\r\n").next()).unwrap().to_string();
        assert!(name.starts_with("stou-"), "{replies}");
        assert!(replies.ends_with("226 Transfer complete.\r\n"), "{replies}");
        assert_eq!(session.content(&format!("/{name}")), b"unique");
    }

    #[test]
    fn an_upload_refused_by_the_storage_leaves_nothing() {
        let mut session = Harness::logged_in("alice");
        let replies = session.upload("STOR nowhere/f", b"x");
        assert_eq!(replies, "550 /nowhere/f: No such file or directory\r\n");
    }

    #[test]
    fn list_nlst_and_mlsd() {
        let mut session = Harness::with_config(|config| config.hide_names = patterns(&[".hidden"]));
        session.login("alice");
        session.put("/one", b"1");
        session.put("/.hidden", b"h");
        session.send("MKD sub");
        let (replies, listing) = session.download("LIST -la");
        assert_eq!(replies, "150 Here comes the directory listing.\r\n226 Directory send OK.\r\n");
        let listing = String::from_utf8(listing).unwrap();
        let lines: Vec<&str> = listing.split_terminator("\r\n").collect();
        assert_eq!(lines.len(), 2, "{listing}");
        assert!(lines.iter().any(|l| l.starts_with("-rw-r--r--") && l.ends_with(" one")), "{listing}");
        assert!(lines.iter().any(|l| l.starts_with('d') && l.ends_with(" sub")), "{listing}");
        let (_, names) = session.download("NLST");
        let mut names: Vec<String> = String::from_utf8(names).unwrap().lines().map(str::to_string).collect();
        names.sort();
        assert_eq!(names, ["one", "sub"]);
        let (replies, facts) = session.download("MLSD");
        assert!(replies.ends_with("226 Directory send OK.\r\n"), "{replies}");
        let facts = String::from_utf8(facts).unwrap();
        assert!(facts.lines().any(|l| l.starts_with("type=file;size=1;") && l.ends_with(" one")), "{facts}");
        assert!(facts.lines().any(|l| l.starts_with("type=dir;") && l.ends_with(" sub")), "{facts}");
        assert_eq!(session.send("MLSD one"), "550 /one: Not a directory (use MLST for files)\r\n");
        assert_eq!(session.send("LIST nope"), "550 /nope: No such file or directory\r\n");
    }

    #[test]
    fn abor_between_transfers() {
        let mut session = Harness::logged_in("alice");
        assert_eq!(session.send("ABOR"), "225 No transfer to ABOR.\r\n");
    }

    #[test]
    fn abor_during_a_download_ends_it_with_426_then_226() {
        let mut session = Harness::logged_in("alice");
        session.put("/big", &payload(4 << 20));
        session.send("TYPE I");
        session.control.interrupts.push_back(Interrupt::Abort);
        let (replies, bytes) = session.download("RETR big");
        assert!(replies.ends_with("426 Connection closed; transfer aborted.\r\n226 ABOR successful.\r\n"), "{replies}");
        assert!(bytes.len() < 4 << 20, "{} bytes", bytes.len());
    }

    #[test]
    fn abor_during_an_upload_drops_it() {
        let mut session = Harness::logged_in("alice");
        session.send("TYPE I");
        let _silent_client = session.data_connection();
        session.control.interrupts.push_back(Interrupt::Abort);
        let replies = session.send("STOR up");
        assert!(replies.ends_with("426 Connection closed; transfer aborted.\r\n226 ABOR successful.\r\n"));
    }

    #[test]
    fn a_control_connection_lost_during_a_transfer_ends_the_session() {
        let mut session = Harness::logged_in("alice");
        session.put("/big", &payload(4 << 20));
        session.send("TYPE I");
        session.control.interrupts.push_back(Interrupt::Closed);
        let _client = session.data_connection();
        let (flow, replies) = session.flow("RETR big");
        assert_eq!(flow, Flow::Close);
        assert!(replies.starts_with("150 "), "{replies}");
    }

    #[test]
    fn a_client_that_drops_the_data_connection_gets_426() {
        let mut session = Harness::logged_in("alice");
        session.put("/big", &payload(4 << 20));
        session.send("TYPE I");
        drop(session.data_connection());
        let replies = session.send("RETR big");
        assert!(replies.starts_with("150 "), "{replies}");
        assert!(replies.contains("\r\n426 Transfer aborted: data connection: "), "{replies}");
    }

    #[test]
    fn a_shutdown_ends_a_transfer_with_426() {
        let mut session = Harness::logged_in("alice");
        session.put("/f", b"x");
        session.shared.shutdown.begin();
        session.shared.shutdown.abort_transfers();
        let (replies, _) = session.download("RETR f");
        assert!(replies.ends_with("\r\n426 Transfer aborted: the server is shutting down.\r\n"), "{replies}");
        assert!(session.send("HASH f").starts_with("426 HASH aborted: the server is shutting down."));
    }

    #[test]
    fn hash_of_a_file() {
        let mut session = Harness::logged_in("alice");
        session.put("/f", b"abc");
        assert_eq!(
            session.send("HASH f"),
            "213 SHA-256 0-3 ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad f\r\n"
        );
        session.send("OPTS HASH MD5");
        assert_eq!(session.send("HASH f"), "213 MD5 0-3 900150983cd24fb0d6963f7d28e17f72 f\r\n");
        assert_eq!(session.send("HASH nope"), "550 /nope: No such file or directory\r\n");
    }

    #[test]
    fn abor_during_hash() {
        let mut session = Harness::logged_in("alice");
        session.put("/big", &payload(3 << 20));
        session.control.interrupts.push_back(Interrupt::Abort);
        assert_eq!(session.send("HASH big"), "426 HASH aborted.\r\n226 ABOR successful.\r\n");
    }
}

mod security {
    use super::*;

    #[test]
    fn without_a_certificate_there_is_no_tls() {
        let mut session = Harness::new();
        assert_eq!(session.send("AUTH TLS"), "502 TLS is not configured on this server.\r\n");
        assert_eq!(session.send("PBSZ 0"), "503 PBSZ needs a TLS control connection: AUTH TLS first.\r\n");
        assert_eq!(session.send("PROT P"), "503 PROT needs a TLS control connection: AUTH TLS first.\r\n");
    }

    #[test]
    fn auth_tls_answers_234_then_the_handshake_decides() {
        let mut session = Harness::with_tls("");
        assert_eq!(session.send("AUTH KERBEROS"), "504 AUTH KERBEROS unknown: use AUTH TLS.\r\n");
        // The recorder refuses the handshake: a failed handshake ends the session.
        assert_eq!(
            session.flow("AUTH TLS"),
            (Flow::Close, "234 AUTH TLS OK: proceed with the TLS handshake.\r\n".to_string())
        );
        let mut session = Harness::with_tls("");
        session.control.tls = true;
        assert_eq!(session.send("AUTH SSL"), "503 Already using TLS.\r\n");
        let mut session = Harness::with_tls("");
        session.login("alice");
        assert_eq!(session.send("AUTH TLS"), "503 AUTH must come before login.\r\n");
    }

    #[test]
    fn pbsz_and_prot_on_a_tls_control_connection() {
        let mut session = Harness::with_tls("");
        session.control.tls = true;
        assert_eq!(session.send("PBSZ 0"), "200 PBSZ=0\r\n");
        assert_eq!(session.send("PBSZ x"), "501 PBSZ takes a number (0 with TLS).\r\n");
        assert_eq!(session.send("PROT P"), "200 PROT now Private: data connections use TLS.\r\n");
        assert_eq!(session.send("PROT C"), "200 PROT now Clear: data connections are not encrypted.\r\n");
        assert_eq!(session.send("PROT S"), "536 PROT S is not offered with TLS; use C or P.\r\n");
    }

    /// Without a keytab (the memory authenticator has none) AUTH GSSAPI is not offered, and the RFC 2228
    /// commands that need its context are refused. The exchange itself is tests/test_gssapi.py's.
    #[test]
    fn gssapi_commands_without_a_security_context_are_refused() {
        let mut session = Harness::new();
        assert!(session.send("AUTH GSSAPI").starts_with("504 AUTH GSSAPI"));
        let refusal = "503 Protected commands need AUTH GSSAPI and ADAT first.\r\n";
        assert_eq!(session.send("ADAT YWJj"), "503 ADAT needs AUTH GSSAPI first.\r\n");
        assert_eq!(session.send("MIC YWJj"), refusal);
        assert_eq!(session.send("ENC YWJj"), refusal);
        assert_eq!(session.send("CONF YWJj"), refusal);
    }

    #[test]
    fn ccc_is_refused() {
        let mut session = Harness::with_tls("");
        assert_eq!(session.send("CCC"), "534 CCC refused: the control connection stays encrypted.\r\n");
    }

    #[test]
    fn feat_offers_tls_with_a_certificate() {
        let feat = Harness::with_tls("").send("FEAT");
        for line in [" AUTH TLS\r\n", " AUTH SSL\r\n", " PBSZ\r\n", " PROT\r\n"] {
            assert!(feat.contains(line), "{line} in {feat}");
        }
    }

    #[test]
    fn clear_text_login_refused_when_tls_logins_are_required() {
        let mut session = Harness::with_tls("require-tls-login = yes");
        assert_eq!(
            session.send("USER alice"),
            "530 Login refused: this server requires TLS. Send AUTH TLS before USER, or connect to the FTPS port.\r\n"
        );
        // Loopback is exempt by default.
        let mut session = Harness::with_tls("");
        assert_eq!(session.send("USER alice"), "331 Please specify the password.\r\n");
    }

    #[test]
    fn clear_data_connections_refused_when_data_tls_is_required() {
        let mut session = Harness::with_tls("require-data-tls = yes");
        session.login("alice");
        session.put("/f", b"x");
        let refusal =
            "521 Data connections must be encrypted on this server: send PBSZ 0 and PROT P (after AUTH TLS) first.\r\n";
        for line in ["RETR f", "STOR f", "APPE f", "STOU", "LIST", "NLST", "MLSD"] {
            assert_eq!(session.send(line), refusal, "{line}");
        }
        assert!(session.send("STAT f").starts_with("213-"), "STAT answers on the control connection");
    }
}

mod parameters {
    use super::*;

    #[test]
    fn type_mode_stru_allo() {
        let mut session = Harness::logged_in("alice");
        assert_eq!(session.send("TYPE I"), "200 Switching to Binary mode.\r\n");
        assert_eq!(session.send("TYPE A"), "200 Switching to ASCII mode.\r\n");
        assert_eq!(session.send("TYPE E"), "504 Only TYPE A and TYPE I are supported\r\n");
        assert_eq!(session.send("MODE S"), "200 Mode set to S.\r\n");
        assert_eq!(session.send("MODE B"), "504 Only stream mode (MODE S) is supported\r\n");
        assert_eq!(session.send("STRU F"), "200 Structure set to F.\r\n");
        assert_eq!(session.send("STRU R"), "504 Only file structure (STRU F) is supported\r\n");
        assert_eq!(session.send("ALLO 1000"), "202 ALLO command ignored.\r\n");
        assert_eq!(session.send("REST x"), "501 REST needs a byte offset (0 or more)\r\n");
    }

    #[test]
    fn port_and_eprt_to_the_clients_own_address_only() {
        let mut session = Harness::logged_in("alice");
        assert_eq!(session.send("PORT 127,0,0,1,200,10"), "200 PORT command successful. Consider using PASV.\r\n");
        assert!(matches!(session.state.data_plan, DataPlan::Active(target) if target.port() == 200 * 256 + 10));
        assert_eq!(session.send("EPRT |1|127.0.0.1|5000|"), "200 PORT command successful. Consider using PASV.\r\n");
        assert_eq!(
            session.send("PORT 10,0,0,1,200,10"),
            "504 PORT refused: data connections go to your own address (127.0.0.1) only, not 10.0.0.1\r\n"
        );
        assert_eq!(
            session.send("EPRT |1|127.0.0.1|80|"),
            "504 PORT refused: data connections to privileged ports (80) are refused\r\n"
        );
        assert_eq!(session.send("PORT 1,2,3"), "501 usage: PORT h1,h2,h3,h4,p1,p2\r\n");
        assert_eq!(session.send("EPRT |3|x|1|"), "501 usage: EPRT |1|h1.h2.h3.h4|port| or |2|ipv6|port|\r\n");
    }

    #[test]
    fn pasv_and_epsv_listen_on_the_control_connections_address() {
        let mut session = Harness::logged_in("alice");
        let pasv = session.send("PASV");
        assert!(pasv.starts_with("227 Entering Passive Mode (127,0,0,1,"), "{pasv}");
        let DataPlan::Passive(listener) = &session.state.data_plan else { panic!("no listener after PASV") };
        let port = listener.local_addr().unwrap().port();
        assert!(pasv.ends_with(&format!(",{},{}).\r\n", port >> 8, port & 0xff)), "{pasv}");
        let epsv = session.send("EPSV");
        assert!(epsv.starts_with("229 Entering Extended Passive Mode (|||") && epsv.ends_with("|)\r\n"), "{epsv}");
        assert_eq!(session.send("EPSV 1").get(..4), Some("229 "));
        assert_eq!(session.send("EPSV 2"), "522 Network protocol not supported, use (1)\r\n");
        assert_eq!(session.send("EPSV 3"), "522 Network protocol not supported, use (1,2)\r\n");
    }

    #[test]
    fn epsv_all_refuses_the_others() {
        let mut session = Harness::logged_in("alice");
        assert_eq!(session.send("EPSV ALL"), "200 EPSV ALL ok: PORT, EPRT and PASV are now refused.\r\n");
        for line in ["PASV", "PORT 127,0,0,1,200,10", "EPRT |1|127.0.0.1|5000|"] {
            assert_eq!(session.send(line), "503 EPSV ALL is in effect: use EPSV.\r\n", "{line}");
        }
        assert_eq!(session.send("EPSV").get(..4), Some("229 "));
    }

    #[test]
    fn epsv_through_a_load_balancer_is_refused() {
        let mut session = Harness::logged_in("alice");
        session.control.relayed = true;
        assert_eq!(session.send("EPSV"), "502 EPSV cannot name this node through the load balancer: use PASV.\r\n");
    }

    #[test]
    fn pasv_names_the_configured_address() {
        let mut session = Harness::with_config(|config| config.pasv_address = Some([192, 0, 2, 7].into()));
        session.login("alice");
        assert!(session.send("PASV").starts_with("227 Entering Passive Mode (192,0,2,7,"));
    }

    #[test]
    fn every_verb_after_login_needs_a_login() {
        let mut session = Harness::new();
        for verb in VERBS.iter().filter(|verb| verb.needs_login) {
            let line = match verb.name {
                "PASV" | "PWD" | "CDUP" | "EPSV" => verb.name.to_string(),
                "TYPE" => "TYPE I".into(),
                "MODE" => "MODE S".into(),
                "STRU" => "STRU F".into(),
                "REST" => "REST 0".into(),
                "PORT" => "PORT 127,0,0,1,200,10".into(),
                "EPRT" => "EPRT |1|127.0.0.1|5000|".into(),
                "MFMT" => "MFMT 20200101000000 x".into(),
                name => format!("{name} x"),
            };
            assert_eq!(session.send(&line), "530 Please login with USER and PASS\r\n", "{line}");
        }
    }
}

/// Every verb of the command table has a handler test here: a command line the tests above send
/// (a string literal that starts with the verb).
#[test]
fn every_verb_is_tested_here() {
    let source = include_str!("tests.rs");
    for verb in VERBS {
        let sent = [format!("\"{} ", verb.name), format!("\"{}\"", verb.name)];
        assert!(sent.iter().any(|line| source.contains(line.as_str())), "no handler test sends {}", verb.name);
    }
}
