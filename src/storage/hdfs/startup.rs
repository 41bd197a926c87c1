//! Start-up of the HDFS backend: the class path and JVM options libhdfs reads from the environment, and
//! one connect on the main thread, so that a wrong class path, a JVM that will not start or an unreachable
//! filesystem is one clear error before any client is accepted.
//!
//! The class path is checked before the JVM starts because some mistakes cannot be reported afterwards:
//! without commons-lang3 libhdfs crashes the process, and a failed JVM start cannot be retried.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use hdfsftpd_ffi::hdfs::{self, KeytabLogin};

use super::proxy::ProxySettings;
use super::{heap, HdfsSettings, HADOOP_CLASSPATH, HADOOP_CONF_DIR, HDFS_URI};
use crate::settings::ConfigError;

/// Jars libhdfs cannot work without; each group is satisfied by a jar whose name starts with one of its
/// prefixes (`hadoop-client-api-3.3.4.jar`, `hadoop-common-3.3.6.jar`, …).
const REQUIRED_JARS: &[(&[&str], &str)] = &[
    (&["hadoop-client-api-", "hadoop-common-"], "Hadoop's FileSystem classes"),
    (&["commons-lang3-"], "used by libhdfs to report Java errors (without it the process crashes)"),
    (&["commons-logging-"], "Hadoop's logging"),
    (&["slf4j-api-"], "Hadoop's logging"),
];

/// The class path libhdfs gets: `--hadoop-classpath`, else `hadoop classpath --glob`.
pub fn configured_class_path(given: Option<String>) -> Result<String, ConfigError> {
    if let Some(given) = given {
        return Ok(given);
    }
    let output = Command::new("hadoop")
        .args(["classpath", "--glob"])
        .output()
        .map_err(|e| HADOOP_CLASSPATH.error(format!("not set, and running 'hadoop classpath --glob' failed: {e}")))?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        return Err(HADOOP_CLASSPATH.error(format!("'hadoop classpath --glob' failed: {}", stderr.trim())));
    }
    Ok(String::from_utf8_lossy(&output.stdout).trim().to_string())
}

/// Checks every entry and the required jars; returns the class path for libhdfs, with the Hadoop
/// configuration directory first and plain jar directories written as `dir/*` (which libhdfs expands).
pub fn checked_class_path(class_path: &str, conf_dir: Option<&Path>) -> Result<String, ConfigError> {
    let error = |message: String| HADOOP_CLASSPATH.error(message);
    let mut entries = Vec::new();
    let mut jars = Vec::new();
    if let Some(conf_dir) = conf_dir {
        if !conf_dir.is_dir() {
            return Err(HADOOP_CONF_DIR.error(format!("{} is not a directory", conf_dir.display())));
        }
        entries.push(conf_dir.display().to_string());
    }
    for entry in class_path.split(':').filter(|e| !e.is_empty()) {
        let (entry, found) = expand_entry(entry).map_err(error)?;
        entries.push(entry);
        jars.extend(found);
    }
    for (prefixes, why) in REQUIRED_JARS {
        if !jars.iter().any(|jar| prefixes.iter().any(|prefix| jar.starts_with(prefix))) {
            return Err(error(format!(
                "no {}*.jar in the class path '{class_path}' ({why}); scripts/cluster/provision-hadoop.sh provides the jars",
                prefixes.join("*.jar or ")
            )));
        }
    }
    Ok(entries.join(":"))
}

/// One class path entry as libhdfs should see it, and the names of the jars it provides.
fn expand_entry(entry: &str) -> Result<(String, Vec<String>), String> {
    if let Some(dir) = entry.strip_suffix("/*") {
        let jars = jars_in(Path::new(dir)).map_err(|e| format!("class path entry {entry}: {e}"))?;
        return Ok((entry.to_string(), jars));
    }
    let path = PathBuf::from(entry);
    if path.is_file() {
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        return Ok((entry.to_string(), vec![name]));
    }
    if !path.is_dir() {
        return Err(format!("class path entry {entry} does not exist"));
    }
    let jars = jars_in(&path).map_err(|e| format!("class path entry {entry}: {e}"))?;
    if jars.is_empty() {
        // A directory of classes or configuration files.
        return Ok((entry.to_string(), jars));
    }
    // A directory of jars: the JVM would only look for classes in it.
    Ok((format!("{}/*", entry.trim_end_matches('/')), jars))
}

fn jars_in(dir: &Path) -> std::io::Result<Vec<String>> {
    let mut jars = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let name = entry?.file_name().to_string_lossy().into_owned();
        if name.ends_with(".jar") {
            jars.push(name);
        }
    }
    Ok(jars)
}

/// JVM options for libhdfs. `-Xrs` is always there: without it the JVM takes SIGTERM and SIGINT and the
/// process dies without closing its HDFS files. Without a heap limit of the user's, the heap is sized
/// for `max_clients` uploads at once ([`heap::default_heap_option`]).
pub fn jvm_options(given: Option<&str>, max_clients: usize) -> String {
    let mut options: Vec<String> = given.unwrap_or("").split_whitespace().map(str::to_string).collect();
    if !options.iter().any(|o| o == "-Xrs") {
        options.insert(0, "-Xrs".to_string());
    }
    if !options.iter().any(|o| o.starts_with("-Xmx") || o.starts_with("-XX:MaxHeapSize=")) {
        options.push(heap::default_heap_option(max_clients));
    }
    options.join(" ")
}

/// Sets the environment the JVM starts with, starts it, and connects and looks at `/` as the server's
/// own user. Refused permission is only a warning: sessions connect with their own identities, and a
/// Kerberos server may have no tickets of its own. With `--hdfs-proxy-user` the gateway logs in first and
/// the look is its own: a NameNode that does not accept the gateway is fatal, since no session could
/// work. Returns the filesystem's scheme (`None`: unknown) and the gateway's login.
pub fn start(
    settings: &HdfsSettings,
    class_path: &str,
    jvm_opts: &str,
    proxy: Option<&ProxySettings>,
) -> Result<(Option<String>, Option<Arc<KeytabLogin>>), ConfigError> {
    hdfs::start_jvm_with(class_path, jvm_opts).map_err(|e| HADOOP_CLASSPATH.error(e.reason()))?;
    let gateway = proxy.map(ProxySettings::log_in).transpose()?;
    let builder = settings.builder();
    let fs = match &gateway {
        Some(login) => builder.connect_as_gateway(login),
        None => builder.connect(),
    };
    let fs = fs.map_err(|e| HDFS_URI.error(e.to_string()))?;
    match fs.stat("/") {
        Ok(_) => {}
        Err(e) if gateway.is_some() && is_refusal(&e) && !e.reason().contains("Permission denied") => {
            return Err(super::proxy::HDFS_PROXY_USER.error(format!("the NameNode does not accept the gateway: {e}")));
        }
        Err(e) if is_refusal(&e) => log::warn!("HDFS start-up check: {e}; sessions connect as their own users"),
        Err(e) => return Err(HDFS_URI.error(e.to_string())),
    }
    Ok((fs.scheme().map_err(|e| log::info!("HDFS: {e}")).ok(), gateway))
}

fn is_refusal(error: &hdfs::Error) -> bool {
    let cause = error.root_cause.as_deref().unwrap_or("");
    error.kind() == std::io::ErrorKind::PermissionDenied
        || cause.contains("AccessControlException")
        || cause.contains("authenticate")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jar_dir(name: &str, jars: &[&str]) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("hdfsftpd-cp-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        for jar in jars {
            std::fs::write(dir.join(jar), b"").unwrap();
        }
        dir
    }

    const ALL: &[&str] = &[
        "hadoop-client-api-3.3.4.jar",
        "commons-lang3-3.12.0.jar",
        "commons-logging-1.1.3.jar",
        "slf4j-api-2.0.7.jar",
    ];

    #[test]
    fn a_jar_directory_becomes_a_wildcard_after_the_conf_dir() {
        let jars = jar_dir("ok", ALL);
        let conf = jar_dir("conf", &[]);
        let class_path = checked_class_path(&jars.display().to_string(), Some(&conf)).unwrap();
        assert_eq!(class_path, format!("{}:{}/*", conf.display(), jars.display()));
        let wildcard = format!("{}/*", jars.display());
        assert_eq!(checked_class_path(&wildcard, None).unwrap(), wildcard);
    }

    #[test]
    fn missing_jars_and_entries_are_named() {
        let jars = jar_dir("no-lang3", &[ALL[0], ALL[2], ALL[3]]);
        let error = checked_class_path(&jars.display().to_string(), None).unwrap_err();
        assert_eq!(error.key, "hadoop-classpath");
        assert!(error.message.contains("commons-lang3-*.jar"), "{error}");
        let error = checked_class_path("/no/such/dir/*", None).unwrap_err();
        assert!(error.message.contains("/no/such/dir"), "{error}");
        let error = checked_class_path("/no/such.jar", None).unwrap_err();
        assert!(error.message.contains("does not exist"), "{error}");
    }

    #[test]
    fn xrs_is_always_among_the_jvm_options_and_a_heap_limit_is_added_when_none_is_given() {
        assert_eq!(jvm_options(None, 16), "-Xrs -Xmx1024m");
        assert_eq!(jvm_options(Some("-Xmx2g"), 16), "-Xrs -Xmx2g");
        assert_eq!(jvm_options(Some("-Xmx2g -Xrs"), 16), "-Xmx2g -Xrs");
        assert_eq!(jvm_options(Some(" -XX:MaxHeapSize=3g "), 16), "-Xrs -XX:MaxHeapSize=3g");
        assert_eq!(jvm_options(Some("-Dx=y"), 400), format!("-Xrs -Dx=y {}", heap::default_heap_option(400)));
    }
}
