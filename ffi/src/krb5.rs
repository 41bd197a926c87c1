//! MIT Kerberos (libkrb5) through `krb5-sys`: a password check that gets a TGT, verifies it against the
//! server's own keytab and stores it in a credential cache file.
//!
//! The one step callers take is [`check_password`]; the krb5 calls it is made of stay private.
//!
//! Every handle is owned (`Drop` calls the matching `krb5_free_*`/close) and borrows the [`Context`] it was
//! made with. A context may move to another thread but is never shared: krb5 contexts are not thread-safe,
//! so each thread makes its own. Errors carry krb5's own text (`krb5_get_error_message`) and code.
//!
//! krb5-sys's declarations are hand-written: the structs used here are checked against krb5.h by the
//! `layout` test below; the functions used were compared with MIT krb5 1.20's krb5.h by hand (its
//! `krb5_init_context_profile` and `krb5_copy_context` are wrong, and are not used).

use std::ffi::{CStr, CString};
use std::fmt;
use std::os::raw::c_char;
use std::path::{Path, PathBuf};
use std::ptr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use krb5_sys as sys;

/// A failed krb5 call: its error code (`com_err` table or errno) and krb5's message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Krb5Error {
    pub code: i32,
    pub message: String,
}

impl fmt::Display for Krb5Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (krb5 error {})", self.message, self.code)
    }
}

impl std::error::Error for Krb5Error {}

/// The error codes callers tell apart (values from krb5.h, MIT krb5 1.20).
pub mod codes {
    /// Cannot contact any KDC for the realm.
    pub const KDC_UNREACH: i32 = -1765328228;
    /// Cannot find a KDC for the realm.
    pub const REALM_UNKNOWN: i32 = -1765328230;
    /// Cannot resolve the network address of the realm's KDC.
    pub const REALM_CANT_RESOLVE: i32 = -1765328164;
    /// Clock skew too great in the KDC reply.
    pub const KDCREP_SKEW: i32 = -1765328236;
}

/// Whether a name being parsed may, must or must not name its realm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RealmPart {
    /// Optional; krb5.conf's `default_realm` applies when absent.
    Default,
    Forbidden,
    Required,
}

/// A krb5 library context.
pub struct Context {
    raw: sys::krb5_context,
}

// SAFETY: a krb5 context may be used from any thread as long as only one thread uses it at a time, which
// `!Sync` (from the raw pointer) ensures; the handles borrowing it cannot outlive it or cross threads alone.
unsafe impl Send for Context {}

impl Context {
    /// A context reading the krb5.conf that `KRB5_CONFIG` names (or the system's).
    pub fn new() -> Result<Context, Krb5Error> {
        let mut raw = ptr::null_mut();
        // SAFETY: `raw` is a valid out-pointer.
        let code = unsafe { sys::krb5_init_context(&mut raw) };
        if code != 0 {
            return Err(error(ptr::null_mut(), code));
        }
        Ok(Context { raw })
    }

    fn check(&self, code: sys::krb5_error_code) -> Result<(), Krb5Error> {
        if code == 0 {
            Ok(())
        } else {
            Err(error(self.raw, code))
        }
    }

    /// The `default_realm` of krb5.conf.
    pub fn default_realm(&self) -> Result<String, Krb5Error> {
        let mut realm: *mut c_char = ptr::null_mut();
        // SAFETY: valid context and out-pointer.
        self.check(unsafe { sys::krb5_get_default_realm(self.raw, &mut realm) })?;
        // SAFETY: on success `realm` is a NUL-terminated string we own until freed just below.
        let text = unsafe { CStr::from_ptr(realm) }.to_string_lossy().into_owned();
        // SAFETY: `realm` came from krb5_get_default_realm and is freed once.
        unsafe { sys::krb5_free_default_realm(self.raw, realm) };
        Ok(text)
    }

    /// Parses a principal name (`name/instance@REALM`, krb5 quoting rules).
    pub fn parse_principal(&self, name: &str, realm: RealmPart) -> Result<Principal<'_>, Krb5Error> {
        let name = c_string(name)?;
        let flags = match realm {
            RealmPart::Default => 0,
            RealmPart::Forbidden => sys::KRB5_PRINCIPAL_PARSE_NO_REALM,
            RealmPart::Required => sys::KRB5_PRINCIPAL_PARSE_REQUIRE_REALM,
        };
        let mut raw = ptr::null_mut();
        // SAFETY: valid context, NUL-terminated name, valid out-pointer.
        self.check(unsafe { sys::krb5_parse_name_flags(self.raw, name.as_ptr(), flags, &mut raw) })?;
        Ok(Principal { ctx: self, raw })
    }

    /// Opens a key table by name (`FILE:/path`).
    pub fn keytab(&self, name: &str) -> Result<Keytab<'_>, Krb5Error> {
        let name = c_string(name)?;
        let mut raw = ptr::null_mut();
        // SAFETY: valid context, NUL-terminated name, valid out-pointer.
        self.check(unsafe { sys::krb5_kt_resolve(self.raw, name.as_ptr(), &mut raw) })?;
        Ok(Keytab { ctx: self, raw })
    }

    /// Gets a TGT for `client` with `password` from the realm's KDC (blocks while the KDC is asked).
    fn get_init_creds_password(&self, client: &Principal<'_>, password: &str) -> Result<Creds<'_>, Krb5Error> {
        self.assert_owns(client.ctx);
        let password = c_string(password)?;
        // SAFETY: krb5_creds is plain C data (integers and pointers) for which all-zero is the empty value.
        let mut raw: sys::krb5_creds = unsafe { std::mem::zeroed() };
        // SAFETY: valid context, principal and NUL-terminated password; no prompter (the password is
        // given), start time 0, default service (the TGS) and default options.
        let code = unsafe {
            sys::krb5_get_init_creds_password(
                self.raw,
                &mut raw,
                client.raw,
                password.as_ptr(),
                None,
                ptr::null_mut(),
                0,
                ptr::null(),
                ptr::null(),
            )
        };
        self.check(code)?;
        Ok(Creds { ctx: self, raw })
    }

    /// Proves `creds` came from a KDC knowing a key in `keytab` (of `service`, or of any `host/`
    /// principal when `None`). A keytab without a usable key fails rather than skipping the check.
    fn verify_init_creds(
        &self,
        creds: &mut Creds<'_>,
        keytab: &Keytab<'_>,
        service: Option<&Principal<'_>>,
    ) -> Result<(), Krb5Error> {
        self.assert_owns(creds.ctx);
        self.assert_owns(keytab.ctx);
        let server = service.map_or(ptr::null_mut(), |s| {
            self.assert_owns(s.ctx);
            s.raw
        });
        // SAFETY: all-zero is a valid value of this two-integer struct; krb5 initialises it next.
        let mut options: sys::krb5_verify_init_creds_opt = unsafe { std::mem::zeroed() };
        // SAFETY: valid pointers to live objects of this context; a NULL ccache discards fetched tickets.
        let code = unsafe {
            sys::krb5_verify_init_creds_opt_init(&mut options);
            sys::krb5_verify_init_creds_opt_set_ap_req_nofail(&mut options, 1);
            sys::krb5_verify_init_creds(self.raw, &mut creds.raw, server, keytab.raw, ptr::null_mut(), &mut options)
        };
        self.check(code)
    }

    /// Opens a credential cache by name (`FILE:/path`); nothing is written yet.
    fn credential_cache(&self, name: &str) -> Result<CredentialCache<'_>, Krb5Error> {
        let name = c_string(name)?;
        let mut raw = ptr::null_mut();
        // SAFETY: valid context, NUL-terminated name, valid out-pointer.
        self.check(unsafe { sys::krb5_cc_resolve(self.raw, name.as_ptr(), &mut raw) })?;
        Ok(CredentialCache { ctx: self, raw })
    }

    /// Handles of one context must not be passed to calls on another.
    fn assert_owns(&self, other: &Context) {
        assert!(ptr::eq(self, other), "krb5 handle used with a context other than its own");
    }
}

impl Drop for Context {
    fn drop(&mut self) {
        // SAFETY: the context is live and every handle borrowing it has been dropped.
        unsafe { sys::krb5_free_context(self.raw) };
    }
}

/// The error for `code`, with krb5's extended message when the context has one.
fn error(ctx: sys::krb5_context, code: sys::krb5_error_code) -> Krb5Error {
    // SAFETY: krb5_get_error_message accepts a NULL context and never returns NULL; the message is
    // copied before it is freed with the matching function.
    let message = unsafe {
        let text = sys::krb5_get_error_message(ctx, code);
        let message = CStr::from_ptr(text).to_string_lossy().into_owned();
        sys::krb5_free_error_message(ctx, text);
        message
    };
    Krb5Error { code, message }
}

fn c_string(text: &str) -> Result<CString, Krb5Error> {
    CString::new(text).map_err(|_| Krb5Error { code: libc::EINVAL, message: "text contains a NUL byte".into() })
}

/// Copies a counted krb5 string.
///
/// SAFETY: `data` must describe `length` readable bytes (or be empty).
unsafe fn data_text(data: &sys::krb5_data) -> String {
    if data.length == 0 || data.data.is_null() {
        return String::new();
    }
    let bytes = std::slice::from_raw_parts(data.data.cast::<u8>(), data.length as usize);
    String::from_utf8_lossy(bytes).into_owned()
}

/// A parsed principal name.
pub struct Principal<'c> {
    ctx: &'c Context,
    raw: sys::krb5_principal,
}

impl Principal<'_> {
    pub fn realm(&self) -> String {
        // SAFETY: `raw` is a live principal whose realm is a counted string.
        unsafe { data_text(&(*self.raw).realm) }
    }

    /// The name components: `["alice"]` for `alice@R`, `["ftp", "host"]` for `ftp/host@R`.
    pub fn components(&self) -> Vec<String> {
        // SAFETY: a live principal holds `length` counted strings at `data`.
        unsafe {
            let principal = &*self.raw;
            if principal.data.is_null() {
                return Vec::new();
            }
            let parts = std::slice::from_raw_parts(principal.data, principal.length.max(0) as usize);
            parts.iter().map(|part| data_text(part)).collect()
        }
    }
}

impl fmt::Display for Principal<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut name: *mut c_char = ptr::null_mut();
        // SAFETY: valid context, principal and out-pointer.
        let code = unsafe { sys::krb5_unparse_name(self.ctx.raw, self.raw, &mut name) };
        if code != 0 {
            return write!(f, "{}@{}", self.components().join("/"), self.realm());
        }
        // SAFETY: on success `name` is a NUL-terminated string we own; it is freed once, after the copy.
        let text = unsafe { CStr::from_ptr(name) }.to_string_lossy().into_owned();
        // SAFETY: see above.
        unsafe { sys::krb5_free_unparsed_name(self.ctx.raw, name) };
        f.write_str(&text)
    }
}

impl Drop for Principal<'_> {
    fn drop(&mut self) {
        // SAFETY: `raw` came from krb5_parse_name_flags on this context and is freed once.
        unsafe { sys::krb5_free_principal(self.ctx.raw, self.raw) };
    }
}

/// An open key table.
pub struct Keytab<'c> {
    ctx: &'c Context,
    raw: sys::krb5_keytab,
}

impl Drop for Keytab<'_> {
    fn drop(&mut self) {
        // SAFETY: `raw` came from krb5_kt_resolve on this context and is closed once.
        unsafe { sys::krb5_kt_close(self.ctx.raw, self.raw) };
    }
}

/// Credentials (a ticket and its session key) held in memory.
struct Creds<'c> {
    ctx: &'c Context,
    raw: sys::krb5_creds,
}

impl Creds<'_> {
    /// When the ticket expires.
    fn end_time(&self) -> SystemTime {
        // MIT krb5 reads timestamps as unsigned 32-bit seconds (valid until 2106).
        UNIX_EPOCH + Duration::from_secs(u64::from(self.raw.times.endtime as u32))
    }
}

impl Drop for Creds<'_> {
    fn drop(&mut self) {
        // SAFETY: `raw` was filled by krb5 on this context; its contents are freed once (the struct
        // itself is ours).
        unsafe { sys::krb5_free_cred_contents(self.ctx.raw, &mut self.raw) };
    }
}

/// An open credential cache handle.
struct CredentialCache<'c> {
    ctx: &'c Context,
    raw: sys::krb5_ccache,
}

impl CredentialCache<'_> {
    /// Empties the cache (creating its file, mode 0600) and stores `creds` for their client.
    fn store(&self, creds: &mut Creds<'_>) -> Result<(), Krb5Error> {
        self.ctx.assert_owns(creds.ctx);
        // SAFETY: live cache and creds of this context; krb5 copies what it stores.
        self.ctx.check(unsafe { sys::krb5_cc_initialize(self.ctx.raw, self.raw, creds.raw.client) })?;
        // SAFETY: as above.
        self.ctx.check(unsafe { sys::krb5_cc_store_cred(self.ctx.raw, self.raw, &mut creds.raw) })
    }

    /// Removes the cache (its file) and closes the handle.
    fn destroy(self) -> Result<(), Krb5Error> {
        let (ctx, raw) = (self.ctx, self.raw);
        std::mem::forget(self);
        // SAFETY: krb5_cc_destroy also closes the handle, so Drop must not run (forgotten above).
        ctx.check(unsafe { sys::krb5_cc_destroy(ctx.raw, raw) })
    }
}

impl Drop for CredentialCache<'_> {
    fn drop(&mut self) {
        // SAFETY: `raw` came from krb5_cc_resolve on this context and is closed once.
        unsafe { sys::krb5_cc_close(self.ctx.raw, self.raw) };
    }
}

/// Which step of a password check failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Asking the KDC for a TGT: wrong password, unknown principal, KDC unreachable…
    GetCredentials,
    /// Checking the TGT against the server's keytab: a spoofed KDC or a wrong keytab.
    Verify,
    /// Writing the credential cache.
    Store,
}

/// A failed password check: the step and krb5's error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckError {
    pub step: Step,
    pub error: Krb5Error,
}

/// What a TGT is verified with: the server's keytab and its service principal (`None`: any `host/` key).
pub struct Verifier<'a, 'c> {
    pub keytab: &'a Keytab<'c>,
    pub service: Option<&'a Principal<'c>>,
}

/// A credential cache file holding a session's TGT. Dropping it destroys the cache.
#[derive(Debug)]
pub struct TicketCache {
    path: PathBuf,
    expires: SystemTime,
}

impl TicketCache {
    /// Takes charge of a credential cache file written by other means (GSS-API delegation): dropping
    /// the result destroys it.
    pub fn adopt(path: PathBuf, expires: SystemTime) -> TicketCache {
        TicketCache { path, expires }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// When the TGT in it expires.
    pub fn expires(&self) -> SystemTime {
        self.expires
    }
}

impl Drop for TicketCache {
    fn drop(&mut self) {
        // Destroyed through krb5 with a context of its own (the check's context stays on its thread);
        // a plain unlink is the fallback when krb5 cannot even start.
        let destroyed = Context::new().and_then(|ctx| ctx.credential_cache(&file_cache_name(&self.path))?.destroy());
        if destroyed.is_err() {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

fn file_cache_name(path: &Path) -> String {
    format!("FILE:{}", path.display())
}

/// Checks `password` for `client`: gets a TGT, verifies it when `verify` is given, and stores it in a new
/// credential cache file at `cache_path`. The error names the step that failed.
pub fn check_password(
    ctx: &Context,
    client: &Principal<'_>,
    password: &str,
    verify: Option<&Verifier<'_, '_>>,
    cache_path: &Path,
) -> Result<TicketCache, CheckError> {
    let fail = |step| move |error| CheckError { step, error };
    let mut creds = ctx.get_init_creds_password(client, password).map_err(fail(Step::GetCredentials))?;
    if let Some(verifier) = verify {
        ctx.verify_init_creds(&mut creds, verifier.keytab, verifier.service).map_err(fail(Step::Verify))?;
    }
    let cache = ctx.credential_cache(&file_cache_name(cache_path)).map_err(fail(Step::Store))?;
    if let Err(error) = cache.store(&mut creds) {
        let _ = cache.destroy(); // A half-written cache must not stay behind.
        return Err(CheckError { step: Step::Store, error });
    }
    Ok(TicketCache { path: cache_path.to_path_buf(), expires: creds.end_time() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_principals_and_splits_realm_and_components() {
        let ctx = Context::new().unwrap();
        let p = ctx.parse_principal("ftp/host.example@EXAMPLE.ORG", RealmPart::Required).unwrap();
        assert_eq!(p.realm(), "EXAMPLE.ORG");
        assert_eq!(p.components(), ["ftp", "host.example"]);
        assert_eq!(p.to_string(), "ftp/host.example@EXAMPLE.ORG");
        assert!(ctx.parse_principal("alice@EXAMPLE.ORG", RealmPart::Forbidden).is_err());
        let err = ctx.parse_principal("alice", RealmPart::Required).err().unwrap();
        assert!(!err.message.is_empty() && err.code != 0, "{err:?}");
    }

    #[test]
    fn errors_carry_krb5_messages() {
        // A context registers krb5's message table (process-wide); without one made first, by this test or
        // another that happened to run before it, the text is "Unknown code krb5 156".
        let ctx = Context::new().unwrap();
        let text = error(ptr::null_mut(), codes::KDC_UNREACH).message;
        assert!(text.contains("Cannot contact any KDC"), "{text}");
        assert!(ctx.parse_principal("a\0b", RealmPart::Required).is_err());
    }

    #[test]
    fn dropping_a_ticket_cache_removes_its_file() {
        let path = std::env::temp_dir().join(format!("hdfsftpd-ffi-test-{}", std::process::id()));
        std::fs::write(&path, b"not a real cache").unwrap();
        drop(TicketCache { path: path.clone(), expires: UNIX_EPOCH });
        assert!(!path.exists());
    }
}

/// Checks krb5-sys's hand-written struct declarations against the C headers: a C program compiled
/// from the same list prints `sizeof`/`offsetof`/`_Alignof` as the installed krb5.h defines them.
#[cfg(test)]
mod layout {
    use std::mem::{align_of, offset_of, size_of};
    use std::process::Command;

    use super::sys;

    /// (expression for C, value Rust sees); C field names are Rust's without the trailing `_`.
    macro_rules! layout {
        ($($ty:ident { $($field:ident),* })*) => {{
            let mut items: Vec<(String, usize)> = Vec::new();
            $(
                items.push((format!("sizeof({})", stringify!($ty)), size_of::<sys::$ty>()));
                items.push((format!("_Alignof({})", stringify!($ty)), align_of::<sys::$ty>()));
                $(items.push((
                    format!("offsetof({}, {})", stringify!($ty), stringify!($field).trim_end_matches('_')),
                    offset_of!(sys::$ty, $field),
                ));)*
            )*
            items
        }};
    }

    fn rust_layout() -> Vec<(String, usize)> {
        layout! {
            krb5_data { magic, length, data }
            krb5_principal_data { magic, realm, data, length, type_ }
            krb5_keyblock { magic, enctype, length, contents }
            krb5_ticket_times { authtime, starttime, endtime, renew_till }
            krb5_creds {
                magic, client, server, keyblock, times, is_skey, ticket_flags, addresses, ticket, second_ticket,
                authdata
            }
            krb5_verify_init_creds_opt { flags, ap_req_nofail }
            krb5_timestamp {}
            krb5_flags {}
            krb5_boolean {}
            krb5_error_code {}
        }
    }

    /// Compiles and runs a C program printing each expression's value, one per line.
    fn c_layout(expressions: &[String]) -> Vec<usize> {
        let dir = std::env::temp_dir().join(format!("hdfsftpd-krb5-layout-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let prints: String = expressions.iter().map(|e| format!("    printf(\"%zu\\n\", (size_t)({e}));\n")).collect();
        let source = format!(
            "#include <stddef.h>\n#include <stdio.h>\n#include <krb5/krb5.h>\n\
             int main(void) {{\n{prints}    return 0;\n}}\n"
        );
        std::fs::write(dir.join("layout.c"), source).unwrap();
        let built = Command::new("cc").arg("-o").arg(dir.join("layout")).arg(dir.join("layout.c")).status();
        assert!(built.expect("cc runs (install gcc and libkrb5-dev)").success(), "layout.c did not compile");
        let output = Command::new(dir.join("layout")).output().unwrap();
        let _ = std::fs::remove_dir_all(&dir);
        String::from_utf8(output.stdout).unwrap().lines().map(|l| l.parse().unwrap()).collect()
    }

    #[test]
    fn structs_match_the_c_headers() {
        let rust = rust_layout();
        let expressions: Vec<String> = rust.iter().map(|(e, _)| e.clone()).collect();
        let c = c_layout(&expressions);
        assert_eq!(c.len(), rust.len());
        let wrong: Vec<String> = rust
            .iter()
            .zip(&c)
            .filter(|((_, r), c)| r != *c)
            .map(|((e, r), c)| format!("{e}: Rust {r}, C {c}"))
            .collect();
        assert!(wrong.is_empty(), "krb5-sys layout differs from krb5.h:\n{}", wrong.join("\n"));
    }
}
