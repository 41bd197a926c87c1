//! Impersonation (`--hdfs-proxy-user`): sessions without a Kerberos ticket of their own (users-file
//! logins) reach a Kerberos-secured HDFS as their user through the gateway's own keytab login and
//! Hadoop's proxy users (`UserGroupInformation.createProxyUser`), as HttpFS and the NFS gateway do. The
//! NameNode's `hadoop.proxyuser.<gateway>.hosts/users/groups` rules decide which users the gateway may act
//! for; a user they refuse gets 530 at login, the NameNode's reason in the log.
//!
//! SECURITY: the keytab lets whoever reads it act for every user the NameNode's rules allow: it must be
//! readable by its owner only (SECURITY.md, "Impersonation"). Sessions with a ticket of their own
//! (`--auth krb5`) keep using it; impersonation is for those that have none.
//!
//! The gateway's ticket is renewed from the keytab before it expires ([`start_renewal`]), in place: the
//! sessions' connections share the login's credentials and use the new ticket from their next NameNode
//! connection on.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use hdfsftpd_ffi::hdfs::KeytabLogin;

use crate::settings::{optional, ConfigError, Setting, Settings};

pub const HDFS_PROXY_USER: Setting<Option<String>> = optional(
    "hdfs-proxy-user",
    "PRINCIPAL",
    "principal (ftp/host@REALM) acting for users-file sessions on a secure HDFS (hadoop.proxyuser.* rules)",
);
pub const HDFS_KEYTAB: Setting<Option<PathBuf>> =
    optional("hdfs-keytab", "FILE", "keytab of --hdfs-proxy-user's principal, readable by its owner only");

/// How often the ticket's age is checked (a look at the ticket held, no KDC call unless it is renewed).
/// Hadoop renews it once past 80% of its life (and at most once per
/// `hadoop.kerberos.min.seconds.before.relogin`, 60 s by default), so it is renewed between 80% of its life
/// and 5 s later: a ticket that lives 25 s or more never lapses (real ones live hours).
const RENEWAL_CHECK: Duration = Duration::from_secs(5);

/// The gateway principal and its keytab, from `--hdfs-proxy-user` and `--hdfs-keytab`.
pub struct ProxySettings {
    principal: String,
    keytab: PathBuf,
}

/// Refuses the impersonation flags with local storage, where they would do nothing.
pub fn refuse_without_hdfs(settings: &Settings) -> Result<(), ConfigError> {
    if settings.get(&HDFS_PROXY_USER)?.is_some() {
        return Err(HDFS_PROXY_USER.error("only with --storage hdfs"));
    }
    if settings.get(&HDFS_KEYTAB)?.is_some() {
        return Err(HDFS_KEYTAB.error("only with --storage hdfs"));
    }
    Ok(())
}

impl ProxySettings {
    /// `None` without `--hdfs-proxy-user`; `--hdfs-keytab` alone is refused (it would do nothing).
    pub fn from_settings(settings: &Settings) -> Result<Option<ProxySettings>, ConfigError> {
        let Some(principal) = settings.get(&HDFS_PROXY_USER)? else {
            return match settings.get(&HDFS_KEYTAB)? {
                Some(_) => Err(HDFS_KEYTAB.error("only with --hdfs-proxy-user")),
                None => Ok(None),
            };
        };
        let principal = principal.trim();
        if principal.is_empty() || principal.contains(char::is_whitespace) {
            return Err(HDFS_PROXY_USER.error(format!("'{principal}' is not a Kerberos principal")));
        }
        let keytab = settings.require(&HDFS_KEYTAB, "with --hdfs-proxy-user (the key of its principal)")?;
        Ok(Some(ProxySettings { principal: principal.to_string(), keytab: checked_keytab(&keytab)? }))
    }

    /// Logs the gateway in (the JVM must run). Fails when the keytab has no key for the principal, the KDC
    /// refuses, or Hadoop's configuration does not turn Kerberos on.
    pub fn log_in(&self) -> Result<Arc<KeytabLogin>, ConfigError> {
        let login = KeytabLogin::new(&self.principal, &self.keytab)
            .map_err(|e| HDFS_PROXY_USER.error(format!("{}: {}", self.principal, e.reason())))?;
        log::info!(
            "HDFS: logged in as {} ({}); users-file sessions act as proxy users of it",
            self.principal,
            self.keytab.display()
        );
        Ok(Arc::new(login))
    }
}

/// The keytab, made absolute: a regular file this process can read, and no one but its owner.
// SECURITY: a key readable by others lets them act for every user the NameNode lets the gateway act for.
fn checked_keytab(path: &Path) -> Result<PathBuf, ConfigError> {
    let bad = |message: String| HDFS_KEYTAB.error(format!("{}: {message}", path.display()));
    let path = std::fs::canonicalize(path).map_err(|e| bad(e.to_string()))?;
    let meta = std::fs::metadata(&path).map_err(|e| bad(e.to_string()))?;
    if !meta.is_file() {
        return Err(bad("not a regular file".into()));
    }
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(bad(format!(
            "mode {mode:03o}: others than its owner may read or change the gateway's key (chmod 600)"
        )));
    }
    std::fs::File::open(&path).map_err(|e| bad(e.to_string()))?;
    Ok(path)
}

/// Starts the thread that renews the gateway's ticket from the keytab before it expires.
pub fn start_renewal(login: Arc<KeytabLogin>) -> std::io::Result<()> {
    thread::Builder::new().name("hdfs-relogin".into()).spawn(move || loop {
        thread::sleep(RENEWAL_CHECK);
        if let Err(e) = login.relogin() {
            log::warn!("HDFS: renewing the gateway's ticket from its keytab: {e}");
        }
    })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(lines: &[&str]) -> Settings {
        let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
        Settings::from_file_text(&text, "test", &[("HDFS storage", super::super::FLAGS)]).unwrap()
    }

    fn keytab(name: &str, mode: u32) -> PathBuf {
        let path = std::env::temp_dir().join(format!("hdfsftpd-proxy-{}-{name}.keytab", std::process::id()));
        std::fs::write(&path, b"\x05\x02").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        path
    }

    #[test]
    fn a_proxy_user_needs_a_keytab_only_its_owner_can_read() {
        assert!(ProxySettings::from_settings(&settings(&[])).unwrap().is_none());
        let error = ProxySettings::from_settings(&settings(&["hdfs-proxy-user = ftp/gw@R"])).err().unwrap();
        assert_eq!((error.key.as_str(), error.message.contains("required")), ("hdfs-keytab", true), "{error}");
        let open = keytab("open", 0o640);
        let error = ProxySettings::from_settings(&settings(&[
            "hdfs-proxy-user = ftp/gw@R",
            &format!("hdfs-keytab = {}", open.display()),
        ]))
        .err()
        .unwrap();
        assert!(error.message.contains("mode 640") && error.message.contains("chmod 600"), "{error}");
        let private = keytab("private", 0o600);
        let parsed = ProxySettings::from_settings(&settings(&[
            "hdfs-proxy-user = ftp/gw@R",
            &format!("hdfs-keytab = {}", private.display()),
        ]))
        .unwrap()
        .unwrap();
        assert_eq!((parsed.principal.as_str(), parsed.keytab.as_path()), ("ftp/gw@R", private.as_path()));
        let error =
            ProxySettings::from_settings(&settings(&[&format!("hdfs-keytab = {}", private.display())])).err().unwrap();
        assert_eq!(error.key, "hdfs-keytab");
        let error = ProxySettings::from_settings(&settings(&["hdfs-proxy-user = a b", "hdfs-keytab = /x"])).err();
        assert_eq!(error.unwrap().key, "hdfs-proxy-user");
        for path in [open, private] {
            std::fs::remove_file(path).unwrap();
        }
    }
}
