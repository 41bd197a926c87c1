//! What a real HDFS gives a file or directory a session creates, known ahead so that the create need not be
//! followed by a stat (one NameNode round trip per upload and per MKD).
//!
//! On `hdfs://` the owner is the caller, which is the session's user (its own connection), and the mode is
//! Hadoop's default (0666 for files, 0777 for directories) less the client's `fs.permissions.umask-mode`:
//! `FileSystem.create` and `DFSClient.mkdirs` apply it before the NameNode call. Other schemes (the local
//! filesystem writes as the server's OS user) and a umask given symbolically are not predicted: there the
//! created entry is looked at. One exception HDFS has and this does not see: under a directory with a
//! default ACL the NameNode derives the mode from the ACL; a session whose mode equals the predicted one
//! then keeps the ACL's (the stat would have put the session's mode over it).

use hdfsftpd_ffi::hdfs;

/// Hadoop's modes of a new file and a new directory, before the umask (`FsPermission.getFileDefault`,
/// `getDirDefault`).
pub const FILE_DEFAULT: u32 = 0o666;
pub const DIR_DEFAULT: u32 = 0o777;

/// Hadoop's umask key; `dfs.umaskmode` is its deprecated name, which older Hadoop read as a decimal
/// number: a umask given under that name is not predicted.
const UMASK_KEY: &str = "fs.permissions.umask-mode";
const DEPRECATED_UMASK_KEY: &str = "dfs.umaskmode";
/// `FsPermission.DEFAULT_UMASK`, for a configuration that has none.
const DEFAULT_UMASK: u32 = 0o022;

/// Decided once per backend: every session connects to the same filesystem with the same configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Creation {
    /// The umask the sessions' connections apply, when it is known and the owner is the session's user.
    umask: Option<u32>,
}

impl Creation {
    /// For a filesystem of `scheme` (`None`: unknown) whose connections add `conf` to the class path's
    /// configuration.
    pub fn of(scheme: Option<&str>, conf: &[(String, String)]) -> Creation {
        if scheme != Some("hdfs") || conf.iter().any(|(key, _)| key == DEPRECATED_UMASK_KEY) {
            return Creation { umask: None };
        }
        let umask = match conf.iter().rev().find(|(key, _)| key == UMASK_KEY) {
            Some((_, value)) => octal_umask(value),
            None => match hdfs::conf_value(UMASK_KEY) {
                Ok(None) => Some(DEFAULT_UMASK),
                Ok(Some(value)) => octal_umask(&value),
                Err(e) => {
                    log::info!("HDFS: {e}; new files and directories are looked at after their create");
                    None
                }
            },
        };
        Creation { umask }
    }

    /// The mode HDFS gives a new entry Hadoop creates with `default`, when it is known.
    pub fn applied_mode(&self, default: u32) -> Option<u32> {
        self.umask.map(|umask| default & !umask)
    }
}

/// For the start-up log, in an operator's words: `umask 022`.
impl std::fmt::Display for Creation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.umask {
            Some(umask) => write!(f, "umask {umask:03o}"),
            None => f.write_str("umask not known ahead: new files and directories are looked at after their create"),
        }
    }
}

/// An octal umask as Hadoop's `UmaskParser` reads one: three digits (`022`); `None` for the symbolic form
/// (`u=rwx,g=rx,o=`) and anything else, which is then not predicted.
fn octal_umask(text: &str) -> Option<u32> {
    let text = text.trim();
    if text.len() != 3 || !text.bytes().all(|b| (b'0'..=b'7').contains(&b)) {
        return None;
    }
    u32::from_str_radix(text, 8).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conf(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn only_hdfs_with_an_octal_umask_is_predicted() {
        let given = conf(&[(UMASK_KEY, "027")]);
        assert_eq!(Creation::of(Some("hdfs"), &given).applied_mode(FILE_DEFAULT), Some(0o640));
        assert_eq!(Creation::of(Some("hdfs"), &given).applied_mode(DIR_DEFAULT), Some(0o750));
        assert_eq!(Creation::of(Some("file"), &given).applied_mode(FILE_DEFAULT), None);
        assert_eq!(Creation::of(None, &given).applied_mode(FILE_DEFAULT), None);
        let symbolic = conf(&[(UMASK_KEY, "u=rwx,g=rx,o=")]);
        assert_eq!(Creation::of(Some("hdfs"), &symbolic).applied_mode(FILE_DEFAULT), None);
    }

    #[test]
    fn the_last_umask_given_counts_and_one_under_the_deprecated_name_is_not_predicted() {
        let given = conf(&[(UMASK_KEY, "077"), (UMASK_KEY, "002")]);
        assert_eq!(Creation::of(Some("hdfs"), &given).applied_mode(FILE_DEFAULT), Some(0o664));
        let given = conf(&[(DEPRECATED_UMASK_KEY, "002"), (UMASK_KEY, "002")]);
        assert_eq!(Creation::of(Some("hdfs"), &given).applied_mode(FILE_DEFAULT), None);
    }

    #[test]
    fn umasks_are_octal_digits_only() {
        assert_eq!(octal_umask(" 022 "), Some(0o022));
        assert_eq!(octal_umask("027"), Some(0o027));
        for bad in ["22", "0022", "0o22", "088", "1022", "", "a=r"] {
            assert_eq!(octal_umask(bad), None, "{bad}");
        }
    }

    #[test]
    fn the_log_names_the_umask_in_octal() {
        assert_eq!(Creation { umask: Some(0o022) }.to_string(), "umask 022");
        assert_eq!(Creation { umask: Some(0o007) }.to_string(), "umask 007");
        assert!(Creation { umask: None }.to_string().starts_with("umask not known ahead"));
    }
}
