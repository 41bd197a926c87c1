//! Kerberos login (`--auth krb5`): USER/PASS is checked by getting a TGT from the realm's KDC
//! (MIT krb5), verifying it against the server's keytab, and storing it in a per-session credential
//! cache file that the storage uses to act as the user and that is destroyed when the session ends.
//!
//! # Names
//! The FTP user name is a Kerberos principal name, mapped to the session's user by this rule:
//! - `alice` means `alice@R`, where R is the first `--krb5-realm` (default: krb5.conf's `default_realm`);
//! - `alice@R` is accepted only when R is one of the `--krb5-realm`s (realms are case-sensitive); any other
//!   realm is refused without asking a KDC;
//! - the session's user (the HDFS user; home `/<user>` on local storage, the HDFS backend's home otherwise)
//!   is the principal's first component without the realm: `alice/admin@R` acts as `alice`, like Hadoop's
//!   DEFAULT `auth_to_local` rule;
//! - that component becomes a path, so it must be a plain name (ASCII letters, digits, `.`, `_`, `-`, not
//!   starting with `.` or `-`); other principals are refused.
//!
//! # Deadlines
//! MIT krb5 waits about 27 s for a hung KDC and has no usable timeout setting, so each check runs on a
//! helper thread with its own krb5 context and the session stops waiting after `--auth-timeout`. An
//! abandoned check finishes on its own; its result, ticket cache included, is dropped (destroyed) then.
//! At most [`MAX_CHECKS`] checks run at once, abandoned ones included.
//!
//! # What a client is told
//! A login the server cannot check gets 421 with the cause in words ("the KDC cannot be reached"), never
//! a host name, address or path: the client is not logged in yet. The log line names the KDC and the
//! file.
//!
//! # Ticket expiry
//! Tickets are not renewed (that would need the password kept in memory or renewable tickets). Once the
//! TGT has expired the session refuses every further command with 530 and logs the user out, so no new
//! transfer starts on an expired ticket; the user logs in again on the same connection.

use std::collections::HashMap;
use std::fmt::{self, Write as _};
use std::io::Read;
use std::net::IpAddr;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, SystemTime};

use crossbeam_channel::RecvTimeoutError;
use hdfsftpd_ffi::krb5::{self, codes, Context, Krb5Error, RealmPart, Step, TicketCache, Verifier};

use super::gssapi::GssService;
use super::{AuthError, Authenticator, Identity, SessionCredentials};
use crate::config::AUTH;
use crate::settings::{optional, repeated, switch, value, ConfigError, Flag, Setting, Settings};

pub const KRB5_KEYTAB: Setting<Option<PathBuf>> =
    optional("krb5-keytab", "FILE", "keytab verifying tickets (required unless --krb5-no-verify)");
pub const KRB5_SERVICE: Setting<Option<String>> =
    optional("krb5-service", "PRINCIPAL", "keytab principal verifying tickets, e.g. ftp/host")
        .shown_as("any host/ key");
pub const KRB5_REALM: Setting<Vec<String>> =
    repeated("krb5-realm", "REALM", "realm users may log in from; repeatable").shown_as("krb5.conf default_realm");
pub const KRB5_NO_VERIFY: Setting<bool> =
    switch("krb5-no-verify", "do not verify tickets against the keytab (a spoofed KDC could log anyone in)");
pub const KRB5_CCACHE_DIR: Setting<Option<PathBuf>> =
    optional("krb5-ccache-dir", "DIR", "private directory (0700) of session ticket caches")
        .shown_as("$TMPDIR/hdfsftpd-krb5-UID");
pub const AUTH_TIMEOUT: Setting<Duration> =
    value("auth-timeout", "SECS", "10", "give up on a KDC that has not answered a login within this time");

pub const FLAGS: &[Flag] = &[
    KRB5_KEYTAB.flag(),
    KRB5_SERVICE.flag(),
    KRB5_REALM.flag(),
    KRB5_NO_VERIFY.flag(),
    KRB5_CCACHE_DIR.flag(),
    AUTH_TIMEOUT.flag(),
];

/// Most password checks in flight at once (abandoned ones included), so a hung KDC cannot pile up threads.
pub const MAX_CHECKS: usize = 64;

pub struct Krb5Authenticator {
    checker: Arc<Checker>,
    /// `AUTH GSSAPI`: offered when tickets are verified with a keytab.
    gss: Option<GssService>,
    timeout: Duration,
    in_flight: Arc<AtomicUsize>,
}

/// What a check needs; shared with the helper threads.
pub(super) struct Checker {
    /// Accepted realms; the first is the one of names without a realm.
    pub(super) realms: Vec<String>,
    verify: Option<VerifyWith>,
    pub(super) ccache_dir: PathBuf,
    /// Each realm's KDC addresses, as log and reply text.
    kdcs: HashMap<String, String>,
}

struct VerifyWith {
    /// `FILE:/absolute/path`.
    keytab: String,
    /// Full principal name, or `None` for any `host/` key.
    service: Option<String>,
}

impl VerifyWith {
    /// The keytab and service principal as handles of `ctx`.
    fn open<'c>(&self, ctx: &'c Context) -> Result<(krb5::Keytab<'c>, Option<krb5::Principal<'c>>), AuthError> {
        let keytab = ctx.keytab(&self.keytab).map_err(|e| unavailable("the server's keytab cannot be read", e))?;
        let service = match &self.service {
            Some(name) => Some(
                ctx.parse_principal(name, RealmPart::Required)
                    .map_err(|e| unavailable("the server's service principal is unusable", format!("{name}: {e}")))?,
            ),
            None => None,
        };
        Ok((keytab, service))
    }
}

impl Krb5Authenticator {
    pub fn from_settings(settings: &Settings) -> Result<Krb5Authenticator, ConfigError> {
        let ctx = Context::new().map_err(|e| AUTH.error(format!("krb5 does not start: {e}")))?;
        let mut realms = settings.get(&KRB5_REALM)?;
        if realms.is_empty() {
            realms.push(
                ctx.default_realm()
                    .map_err(|e| KRB5_REALM.error(format!("not given, and krb5.conf names no default_realm: {e}")))?,
            );
        }
        let timeout = settings.get(&AUTH_TIMEOUT)?;
        if timeout.is_zero() {
            return Err(AUTH_TIMEOUT.error("must be more than 0"));
        }
        let kdcs = realms.iter().map(|r| (r.clone(), kdc_text(r))).collect();
        let checker = Checker { verify: verify_with(settings, &ctx)?, ccache_dir: ccache_dir(settings)?, realms, kdcs };
        let gss =
            checker.verify.as_ref().map(|v| GssService::new(&v.keytab, v.service.clone(), &checker)).transpose()?;
        log::info!(
            "Kerberos login: realm(s) {}, ticket caches in {}",
            checker.realms.join(", "),
            checker.ccache_dir.display()
        );
        Ok(Krb5Authenticator { checker: Arc::new(checker), gss, timeout, in_flight: Arc::new(AtomicUsize::new(0)) })
    }

    /// Claims one of the [`MAX_CHECKS`] slots; it is released when the returned guard drops.
    fn claim_slot(&self) -> Result<Slot, AuthError> {
        let taken = self.in_flight.fetch_add(1, Ordering::SeqCst);
        let slot = Slot(Arc::clone(&self.in_flight));
        if taken >= MAX_CHECKS {
            return Err(AuthError::Unavailable(format!("{MAX_CHECKS} Kerberos checks already in progress")));
        }
        Ok(slot)
    }
}

struct Slot(Arc<AtomicUsize>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Authenticator for Krb5Authenticator {
    fn authenticate(&self, user: &str, password: &str, _peer: IpAddr) -> Result<Identity, AuthError> {
        let slot = self.claim_slot()?;
        let (sender, receiver) = crossbeam_channel::bounded(1);
        let checker = Arc::clone(&self.checker);
        let (name, password) = (user.to_string(), password.to_string());
        thread::Builder::new()
            .name("krb5-check".into())
            .spawn(move || {
                let _slot = slot;
                if let Err(unsent) = sender.send(checker.check(&name, &password)) {
                    // Nobody waits any more: dropping the result destroys its ticket cache.
                    let outcome = unsent.0.as_ref().map_or_else(ToString::to_string, |_| "succeeded".into());
                    log::info!("Kerberos check of {name} ended after its deadline ({outcome}); result discarded");
                }
            })
            .map_err(|e| unavailable("the server cannot start a Kerberos check", e))?;
        match receiver.recv_timeout(self.timeout) {
            Ok(result) => result,
            Err(RecvTimeoutError::Timeout) => {
                let kdc = self.checker.kdc_of(self.checker.realm_named_by(user));
                let reason = format!("the KDC did not answer within {}s", self.timeout.as_secs_f64());
                Err(unavailable(&reason, format!("KDC {kdc}, login {user}")))
            }
            // The check thread ended without an answer: it panicked (a bug), which is not the KDC's doing.
            Err(RecvTimeoutError::Disconnected) => {
                log::error!("Kerberos check of {user} failed internally (see the panic above)");
                Err(AuthError::Unavailable("the Kerberos check failed internally".into()))
            }
        }
    }

    fn gss_service(&self) -> Option<&GssService> {
        self.gss.as_ref()
    }

    /// `alice` and `alice@R` count as one user for R among the accepted realms.
    fn canonical_user(&self, user: &str) -> String {
        match user.rsplit_once('@') {
            Some((name, realm)) if self.checker.realms.iter().any(|r| r == realm) => name.to_string(),
            _ => user.to_string(),
        }
    }
}

impl Checker {
    /// The whole check, on a helper thread with its own krb5 context.
    fn check(&self, name: &str, password: &str) -> Result<Identity, AuthError> {
        let ctx = Context::new().map_err(|e| unavailable("Kerberos does not start on the server", e))?;
        let (client, user) = self.principal(&ctx, name)?;
        let realm = client.realm();
        let cache_path = self.ccache_dir.join(format!("{user}-{}", random_hex()?));
        // SECURITY: KDC spoofing: the TGT is verified against the server's keytab, which only
        // the real KDC holds the key of (SECURITY.md, Kerberos).
        let verify_with = self.verify.as_ref().map(|v| v.open(&ctx)).transpose()?;
        let verifier = verify_with.as_ref().map(|(keytab, service)| Verifier { keytab, service: service.as_ref() });
        let cache = krb5::check_password(&ctx, &client, password, verifier.as_ref(), &cache_path)
            .map_err(|e| self.failure(&client.to_string(), &realm, e))?;
        let lifetime = cache.expires().duration_since(SystemTime::now()).unwrap_or_default();
        log::debug!("{client}: ticket cache {}, valid for {}s", cache.path().display(), lifetime.as_secs());
        let credentials = Box::new(Krb5Credentials(cache));
        Ok(Identity { user, home: None, writable: true, anonymous: false, credentials: Some(credentials) })
    }

    /// Applies the name rule of the module doc: the principal and the session's user name.
    fn principal<'c>(&self, ctx: &'c Context, name: &str) -> Result<(krb5::Principal<'c>, String), AuthError> {
        let denied = |e: Krb5Error| AuthError::Denied(format!("bad principal name '{name}': {}", e.message));
        let principal = match ctx.parse_principal(name, RealmPart::Forbidden) {
            Ok(_) => ctx.parse_principal(&format!("{name}@{}", self.realms[0]), RealmPart::Required),
            Err(_) => ctx.parse_principal(name, RealmPart::Required),
        }
        .map_err(denied)?;
        let realm = principal.realm();
        // SECURITY: only the listed realms; no KDC is asked about any other.
        if !self.realms.contains(&realm) {
            return Err(AuthError::Denied(format!("realm {realm} is not accepted (only {})", self.realms.join(", "))));
        }
        let user = principal.components().into_iter().next().unwrap_or_default();
        if !is_plain_name(&user) {
            return Err(AuthError::Denied(format!("principal {principal}: '{user}' is not usable as a user name")));
        }
        Ok((principal, user))
    }

    /// The realm a login name is in, by the name rule (for messages only).
    fn realm_named_by<'a>(&'a self, name: &'a str) -> &'a str {
        name.rsplit_once('@').map_or(&self.realms[0], |(_, realm)| realm)
    }

    fn kdc_of(&self, realm: &str) -> String {
        self.kdcs.get(realm).cloned().unwrap_or_else(|| format!("of realm {realm}"))
    }

    /// The login error for a failed check: the KDC's fault (421) or the user's (530).
    fn failure(&self, principal: &str, realm: &str, failure: krb5::CheckError) -> AuthError {
        let e = failure.error;
        match failure.step {
            // Verifying asks the KDC for a service ticket, so it can find the KDC gone too.
            Step::GetCredentials | Step::Verify if is_kdc_unavailable(e.code) => {
                unavailable("the KDC cannot be reached", format!("KDC {}: {}", self.kdc_of(realm), e.message))
            }
            Step::GetCredentials => AuthError::Denied(e.to_string()),
            Step::Verify => {
                log::error!(
                    "{principal}: ticket verification failed, the KDC that answered does not hold the keytab's key \
                     (spoofed KDC or wrong keytab): {e}"
                );
                AuthError::Denied(format!("ticket verification failed: {e}"))
            }
            Step::Store => unavailable("the server cannot store the ticket", e),
        }
    }
}

// SECURITY: a client not logged in is told the cause in words; hosts and paths go to the log only.
/// A 421 that tells the client `reason` and logs `detail` (which may name hosts and paths).
pub(super) fn unavailable(reason: &str, detail: impl fmt::Display) -> AuthError {
    log::error!("Kerberos: {reason}: {detail}");
    AuthError::Unavailable(reason.to_string())
}

fn is_kdc_unavailable(code: i32) -> bool {
    [codes::KDC_UNREACH, codes::REALM_UNKNOWN, codes::REALM_CANT_RESOLVE, codes::KDCREP_SKEW].contains(&code)
}

/// A name safe as a path component and a ticket cache file name prefix.
pub(super) fn is_plain_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with(['.', '-'])
        && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

/// 16 random hex digits, so ticket cache names cannot be guessed.
pub(super) fn random_hex() -> Result<String, AuthError> {
    let mut bytes = [0u8; 8];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .map_err(|e| unavailable("the server has no randomness", format!("/dev/urandom: {e}")))?;
    Ok(bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    }))
}

/// A session's Kerberos credentials: its ticket cache file, destroyed when they drop.
pub(super) struct Krb5Credentials(pub(super) TicketCache);

impl SessionCredentials for Krb5Credentials {
    fn ticket_cache(&self) -> Option<&Path> {
        Some(self.0.path())
    }

    fn expires(&self) -> Option<SystemTime> {
        Some(self.0.expires())
    }
}

/// The keytab and service tickets are verified with, checked now rather than at the first login.
fn verify_with(settings: &Settings, ctx: &Context) -> Result<Option<VerifyWith>, ConfigError> {
    if settings.get(&KRB5_NO_VERIFY)? {
        // SECURITY: without verification a spoofed KDC could log anyone in: said at start.
        log::warn!("--krb5-no-verify: Kerberos tickets are not verified, a spoofed KDC could log anyone in");
        return Ok(None);
    }
    let keytab = settings.require(&KRB5_KEYTAB, "with --auth krb5 (or --krb5-no-verify)")?;
    let keytab = std::fs::canonicalize(&keytab)
        .and_then(|path| std::fs::File::open(&path).map(|_| path))
        .map_err(|e| KRB5_KEYTAB.error(format!("{}: {e}", keytab.display())))?;
    let service = match settings.get(&KRB5_SERVICE)? {
        Some(name) => Some(
            ctx.parse_principal(&name, RealmPart::Default)
                .map_err(|e| KRB5_SERVICE.error(format!("'{name}': {e}")))?
                .to_string(),
        ),
        None => None,
    };
    Ok(Some(VerifyWith { keytab: format!("FILE:{}", keytab.display()), service }))
}

/// The ticket cache directory: created 0700, or an existing one only this user can enter.
fn ccache_dir(settings: &Settings) -> Result<PathBuf, ConfigError> {
    let uid = hdfsftpd_ffi::accounts::effective_uid();
    let dir =
        settings.get(&KRB5_CCACHE_DIR)?.unwrap_or_else(|| std::env::temp_dir().join(format!("hdfsftpd-krb5-{uid}")));
    let bad = |message: String| KRB5_CCACHE_DIR.error(format!("{}: {message}", dir.display()));
    match std::fs::DirBuilder::new().mode(0o700).create(&dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(bad(e.to_string())),
    }
    // Not followed: a symlink planted in a shared directory must not redirect the caches.
    let meta = std::fs::symlink_metadata(&dir).map_err(|e| bad(e.to_string()))?;
    // SECURITY: every session's ticket cache is in here: ours alone, not a symlink.
    if !meta.is_dir() || meta.uid() != uid || meta.permissions().mode() & 0o077 != 0 {
        return Err(bad(format!("must be a directory owned by uid {uid} with no group or other access (mode 700)")));
    }
    std::fs::canonicalize(&dir).map_err(|e| bad(e.to_string()))
}

/// "127.0.0.1:88 of realm R": the realm's `kdc` entries in the krb5.conf files `KRB5_CONFIG` names.
fn kdc_text(realm: &str) -> String {
    let files = std::env::var("KRB5_CONFIG").unwrap_or_else(|_| "/etc/krb5.conf".into());
    let kdcs: Vec<String> = files
        .split(':')
        .filter_map(|file| std::fs::read_to_string(file).ok())
        .flat_map(|text| configured_kdcs(&text, realm))
        .collect();
    if kdcs.is_empty() {
        format!("of realm {realm}")
    } else {
        format!("{} of realm {realm}", kdcs.join(", "))
    }
}

/// The `kdc = ...` values in `realm`'s block of a krb5.conf's `[realms]` section.
fn configured_kdcs(text: &str, realm: &str) -> Vec<String> {
    let (mut in_realms, mut depth, mut in_realm) = (false, 0, false);
    let mut kdcs = Vec::new();
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with(['#', ';'])) {
        if line.starts_with('[') {
            (in_realms, depth) = (line == "[realms]", 0);
            continue;
        }
        let (key, rest) = line.split_once('=').map_or((line, ""), |(k, v)| (k.trim(), v.trim()));
        if rest == "{" {
            if depth == 0 {
                in_realm = key == realm;
            }
            depth += 1;
        } else if line == "}" {
            depth -= 1;
        } else if in_realms && in_realm && depth == 1 && key == "kdc" {
            kdcs.push(rest.to_string());
        }
    }
    kdcs
}

#[cfg(test)]
mod tests {
    use super::*;

    fn checker(realms: &[&str]) -> Checker {
        Checker {
            realms: realms.iter().map(|r| r.to_string()).collect(),
            verify: None,
            ccache_dir: PathBuf::from("/nonexistent"),
            kdcs: HashMap::new(),
        }
    }

    #[test]
    fn names_map_to_principals_of_accepted_realms() {
        let ctx = Context::new().unwrap();
        let checker = checker(&["EXAMPLE.ORG", "OTHER.ORG"]);
        let (p, user) = checker.principal(&ctx, "alice").unwrap();
        assert_eq!((p.to_string().as_str(), user.as_str()), ("alice@EXAMPLE.ORG", "alice"));
        let (p, user) = checker.principal(&ctx, "bob/admin@OTHER.ORG").unwrap();
        assert_eq!((p.realm().as_str(), user.as_str()), ("OTHER.ORG", "bob"));
        for refused in ["alice@FOREIGN.ORG", "alice@example.org", "../x", ".hidden", "a@b@c", ""] {
            assert!(matches!(checker.principal(&ctx, refused), Err(AuthError::Denied(_))), "{refused} accepted");
        }
    }

    #[test]
    fn realm_suffix_of_accepted_realms_is_ignored_for_lockout() {
        let auth = Krb5Authenticator {
            checker: Arc::new(checker(&["EXAMPLE.ORG"])),
            gss: None,
            timeout: Duration::from_secs(1),
            in_flight: Arc::new(AtomicUsize::new(0)),
        };
        assert_eq!(auth.canonical_user("alice@EXAMPLE.ORG"), "alice");
        assert_eq!(auth.canonical_user("alice"), "alice");
        assert_eq!(auth.canonical_user("alice@FOREIGN.ORG"), "alice@FOREIGN.ORG");
    }

    #[test]
    fn kdc_entries_are_read_from_the_realm_block() {
        let conf = "[libdefaults]\n default_realm = A\n[realms]\n A = {\n  kdc = 127.0.0.1:88\n  kdc = h:750\n \
                    auth_to_local_names = {\n  x = y\n  }\n  kdc = h2\n }\n B = {\n  kdc = 10.0.0.1\n }\n\
                    [domain_realm]\n kdc = no\n";
        assert_eq!(configured_kdcs(conf, "A"), ["127.0.0.1:88", "h:750", "h2"]);
        assert_eq!(configured_kdcs(conf, "B"), ["10.0.0.1"]);
        assert!(configured_kdcs(conf, "C").is_empty());
    }

    #[test]
    fn slots_are_capped_and_released() {
        let auth = Krb5Authenticator {
            checker: Arc::new(checker(&["EXAMPLE.ORG"])),
            gss: None,
            timeout: Duration::from_secs(1),
            in_flight: Arc::new(AtomicUsize::new(0)),
        };
        let slots: Vec<Slot> = (0..MAX_CHECKS).map(|_| auth.claim_slot().unwrap()).collect();
        assert!(auth.claim_slot().is_err());
        drop(slots);
        assert_eq!(auth.in_flight.load(Ordering::SeqCst), 0);
        assert!(auth.claim_slot().is_ok());
    }
}
