//! Acting for users (`jni.c`): the gateway's own Kerberos login from a keytab, and filesystems made as
//! proxy users of it (`UserGroupInformation.createProxyUser`), which libhdfs has no call for. The NameNode
//! decides which users the gateway may act for (`hadoop.proxyuser.<gateway>.hosts/users/groups`).

use std::ffi::CString;
use std::os::raw::{c_char, c_int, c_void};
use std::path::Path;
use std::ptr;

use super::{c_string, start_jvm, Builder, Error, FileSystem, Result};

/// A JNI global reference (`jobject`).
type JObject = *mut c_void;

extern "C" {
    fn hdfsftpd_keytab_login(principal: *const c_char, keytab: *const c_char) -> JObject;
    fn hdfsftpd_relogin(login: JObject, principal: *const c_char) -> c_int;
    fn hdfsftpd_proxy_connect(
        gateway: JObject,
        user: *const c_char,
        uri: *const c_char,
        keys: *const *const c_char,
        values: *const *const c_char,
        count: c_int,
    ) -> JObject;
    fn hdfsftpd_release(global: JObject);
}

/// The gateway's Kerberos login (a `UserGroupInformation` of its own, not the JVM's login user).
pub struct KeytabLogin {
    raw: JObject,
    principal: CString,
}

// SAFETY: a JNI global reference to a thread-safe Java object (UserGroupInformation synchronizes its
// relogin on its Subject); jni.c attaches whichever thread calls it.
unsafe impl Send for KeytabLogin {}
// SAFETY: as above.
unsafe impl Sync for KeytabLogin {}

impl KeytabLogin {
    /// Logs `principal` in with the key in `keytab`. Fails when Hadoop's configuration on the class path
    /// does not turn Kerberos on. Starts the JVM.
    pub fn new(principal: &str, keytab: &Path) -> Result<KeytabLogin> {
        const OP: &str = "keytab login";
        start_jvm()?;
        let c_principal = c_string(OP, principal)?;
        let c_keytab = c_string(OP, &keytab.to_string_lossy())?;
        // SAFETY: NUL-terminated strings; the JVM runs. A global reference, or NULL with errno and the Java
        // cause set.
        let raw = unsafe { hdfsftpd_keytab_login(c_principal.as_ptr(), c_keytab.as_ptr()) };
        if raw.is_null() {
            return Err(Error::last(OP, principal));
        }
        Ok(KeytabLogin { raw, principal: c_principal })
    }

    /// Renews the ticket from the keytab if it is past 80% of its life (Hadoop's rule); cheap otherwise.
    pub fn relogin(&self) -> Result<()> {
        // SAFETY: a live global reference and a NUL-terminated name. 0, or -1 with errno and the cause set.
        match unsafe { hdfsftpd_relogin(self.raw, self.principal.as_ptr()) } {
            0 => Ok(()),
            _ => Err(Error::last("keytab relogin", &self.principal.to_string_lossy())),
        }
    }
}

impl Drop for KeytabLogin {
    fn drop(&mut self) {
        // SAFETY: the global reference made by hdfsftpd_keytab_login, released exactly once.
        unsafe { hdfsftpd_release(self.raw) };
    }
}

impl Builder {
    /// The URI libhdfs's builder would connect to (`None`: `fs.defaultFS`).
    pub(super) fn effective_uri(&self) -> Option<String> {
        match self.namenode.as_str() {
            "default" => None,
            uri if uri.contains("://") => Some(uri.to_string()),
            host => Some(format!("hdfs://{host}")),
        }
    }

    /// Connects as `user` through `gateway` (a proxy user): always a new instance, with this builder's
    /// URI and configuration; its user name and ticket cache are not used. The NameNode judges the
    /// impersonation at the first call the filesystem makes, not here.
    pub fn connect_as_proxy(&self, gateway: &KeytabLogin, user: &str) -> Result<FileSystem> {
        self.connect_through(gateway, Some(user))
    }

    /// Connects as the gateway itself (to check at start that the NameNode accepts it), as
    /// [`Builder::connect_as_proxy`] does otherwise.
    pub fn connect_as_gateway(&self, gateway: &KeytabLogin) -> Result<FileSystem> {
        self.connect_through(gateway, None)
    }

    fn connect_through(&self, gateway: &KeytabLogin, user: Option<&str>) -> Result<FileSystem> {
        const OP: &str = "connect through the gateway's login";
        start_jvm()?;
        let who = user.unwrap_or("(the gateway)");
        let c_user = user.map(|u| c_string(OP, u)).transpose()?;
        let uri = self.effective_uri().map(|uri| c_string(OP, &uri)).transpose()?;
        let keys = self.conf.iter().map(|(k, _)| c_string(OP, k)).collect::<Result<Vec<_>>>()?;
        let values = self.conf.iter().map(|(_, v)| c_string(OP, v)).collect::<Result<Vec<_>>>()?;
        let key_ptrs: Vec<*const c_char> = keys.iter().map(|k| k.as_ptr()).collect();
        let value_ptrs: Vec<*const c_char> = values.iter().map(|v| v.as_ptr()).collect();
        let count = c_int::try_from(keys.len()).map_err(|_| Error::new(OP, who, libc::EINVAL, "too many settings"))?;
        // SAFETY: a live global reference; NUL-terminated strings (the user NULL for the gateway itself, the
        // URI NULL for fs.defaultFS) and two arrays of `count` of them, all alive until after the call. A
        // global reference to a FileSystem (what libhdfs calls an hdfsFS), or NULL with errno and the Java
        // cause set.
        let raw = unsafe {
            hdfsftpd_proxy_connect(
                gateway.raw,
                c_user.as_ref().map_or(ptr::null(), |u| u.as_ptr()),
                uri.as_ref().map_or(ptr::null(), |u| u.as_ptr()),
                key_ptrs.as_ptr(),
                value_ptrs.as_ptr(),
                count,
            )
        };
        if raw.is_null() {
            return Err(Error::last(OP, who));
        }
        Ok(FileSystem { raw: raw.cast(), uri: self.namenode.clone() })
    }
}
