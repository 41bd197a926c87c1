//! MIT krb5's GSS-API (libgssapi_krb5), acceptor side: what an RFC 2228 `AUTH GSSAPI` server needs.
//!
//! [`AcceptorCred`] is the service key from a keytab; [`SecurityContext`] takes the client's tokens
//! (`ADAT`) until established, then names the client, hands over a delegated credential, and wraps and
//! unwraps messages (protected commands, replies and data blocks). Every handle is owned (`Drop` releases
//! it); every failed call becomes a [`GssError`] carrying the major and minor status text of
//! `gss_display_status`.
//!
//! The declarations are hand-written from MIT krb5 1.20's gssapi.h and gssapi_ext.h (no -sys crate
//! covers them); the sizes of the structs are checked against the headers by the `layout` test.

use std::ffi::{c_int, CString};
use std::fmt;
use std::path::Path;
use std::ptr;

#[allow(non_camel_case_types)]
mod sys {
    use std::ffi::{c_char, c_int, c_void};

    pub type OM_uint32 = u32;
    pub type gss_name_t = *mut c_void;
    pub type gss_cred_id_t = *mut c_void;
    pub type gss_ctx_id_t = *mut c_void;
    pub type gss_OID = *mut gss_OID_desc;

    #[repr(C)]
    pub struct gss_OID_desc {
        pub length: OM_uint32,
        pub elements: *mut c_void,
    }

    #[repr(C)]
    pub struct gss_buffer_desc {
        pub length: usize,
        pub value: *mut c_void,
    }

    #[repr(C)]
    pub struct gss_key_value_element_desc {
        pub key: *const c_char,
        pub value: *const c_char,
    }

    #[repr(C)]
    pub struct gss_key_value_set_desc {
        pub count: OM_uint32,
        pub elements: *mut gss_key_value_element_desc,
    }

    pub const GSS_C_INITIATE: c_int = 1;
    pub const GSS_C_ACCEPT: c_int = 2;
    pub const GSS_C_GSS_CODE: c_int = 1;
    pub const GSS_C_MECH_CODE: c_int = 2;
    pub const GSS_C_INDEFINITE: OM_uint32 = 0xffff_ffff;
    pub const GSS_C_QOP_DEFAULT: OM_uint32 = 0;

    #[link(name = "gssapi_krb5")]
    extern "C" {
        pub static GSS_KRB5_NT_PRINCIPAL_NAME: gss_OID;

        pub fn gss_display_status(
            minor: *mut OM_uint32,
            status: OM_uint32,
            status_type: c_int,
            mech: gss_OID,
            message_context: *mut OM_uint32,
            text: *mut gss_buffer_desc,
        ) -> OM_uint32;
        pub fn gss_release_buffer(minor: *mut OM_uint32, buffer: *mut gss_buffer_desc) -> OM_uint32;
        pub fn gss_import_name(
            minor: *mut OM_uint32,
            name: *const gss_buffer_desc,
            name_type: gss_OID,
            out: *mut gss_name_t,
        ) -> OM_uint32;
        pub fn gss_display_name(
            minor: *mut OM_uint32,
            name: gss_name_t,
            text: *mut gss_buffer_desc,
            name_type: *mut gss_OID,
        ) -> OM_uint32;
        pub fn gss_release_name(minor: *mut OM_uint32, name: *mut gss_name_t) -> OM_uint32;
        pub fn gss_acquire_cred_from(
            minor: *mut OM_uint32,
            name: gss_name_t,
            time_req: OM_uint32,
            mechs: *mut c_void,
            usage: c_int,
            store: *const gss_key_value_set_desc,
            cred: *mut gss_cred_id_t,
            actual_mechs: *mut c_void,
            time_rec: *mut OM_uint32,
        ) -> OM_uint32;
        pub fn gss_store_cred_into(
            minor: *mut OM_uint32,
            cred: gss_cred_id_t,
            usage: c_int,
            mech: gss_OID,
            overwrite: OM_uint32,
            default_cred: OM_uint32,
            store: *const gss_key_value_set_desc,
            elements_stored: *mut c_void,
            usage_stored: *mut c_int,
        ) -> OM_uint32;
        pub fn gss_inquire_cred(
            minor: *mut OM_uint32,
            cred: gss_cred_id_t,
            name: *mut gss_name_t,
            lifetime: *mut OM_uint32,
            usage: *mut c_int,
            mechs: *mut c_void,
        ) -> OM_uint32;
        pub fn gss_release_cred(minor: *mut OM_uint32, cred: *mut gss_cred_id_t) -> OM_uint32;
        pub fn gss_accept_sec_context(
            minor: *mut OM_uint32,
            context: *mut gss_ctx_id_t,
            acceptor: gss_cred_id_t,
            input: *const gss_buffer_desc,
            bindings: *mut c_void,
            source: *mut gss_name_t,
            mech: *mut gss_OID,
            output: *mut gss_buffer_desc,
            flags: *mut OM_uint32,
            time_rec: *mut OM_uint32,
            delegated: *mut gss_cred_id_t,
        ) -> OM_uint32;
        pub fn gss_delete_sec_context(
            minor: *mut OM_uint32,
            context: *mut gss_ctx_id_t,
            output: *mut gss_buffer_desc,
        ) -> OM_uint32;
        pub fn gss_wrap(
            minor: *mut OM_uint32,
            context: gss_ctx_id_t,
            conf_req: c_int,
            qop: OM_uint32,
            input: *const gss_buffer_desc,
            conf_state: *mut c_int,
            output: *mut gss_buffer_desc,
        ) -> OM_uint32;
        pub fn gss_unwrap(
            minor: *mut OM_uint32,
            context: gss_ctx_id_t,
            input: *const gss_buffer_desc,
            output: *mut gss_buffer_desc,
            conf_state: *mut c_int,
            qop: *mut OM_uint32,
        ) -> OM_uint32;
        pub fn gss_wrap_size_limit(
            minor: *mut OM_uint32,
            context: gss_ctx_id_t,
            conf_req: c_int,
            qop: OM_uint32,
            output_size: OM_uint32,
            max_input: *mut OM_uint32,
        ) -> OM_uint32;
    }
}

use sys::OM_uint32;

/// Major status bits (RFC 2744 section 3.9.1).
const CONTINUE_NEEDED: OM_uint32 = 1;
/// Calling and routine errors: the call failed.
const ERROR_MASK: OM_uint32 = 0xffff_0000;
/// Supplementary bits saying a token came twice, too late, out of order or after a gap.
const OUT_OF_SEQUENCE: OM_uint32 = (1 << 1) | (1 << 2) | (1 << 3) | (1 << 4);

/// The context flag (RFC 2744) saying the client delegated its credential.
pub const DELEG_FLAG: u32 = 1;

/// A failed GSS-API call: which call, its status codes and their text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GssError {
    pub call: &'static str,
    pub major: u32,
    pub minor: u32,
    /// `gss_display_status` of the major status, then of the minor (mechanism) status.
    pub message: String,
}

impl fmt::Display for GssError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {} (GSS major {:#x}, minor {})", self.call, self.message, self.major, self.minor)
    }
}

impl std::error::Error for GssError {}

/// The error of `call` for a failed status.
fn error(call: &'static str, major: OM_uint32, minor: OM_uint32) -> GssError {
    let mut parts = status_text(major, sys::GSS_C_GSS_CODE);
    if minor != 0 {
        parts.extend(status_text(minor, sys::GSS_C_MECH_CODE));
    }
    GssError { call, major, minor, message: parts.join(": ") }
}

/// Every message `gss_display_status` has for one status value.
fn status_text(status: OM_uint32, kind: c_int) -> Vec<String> {
    let mut texts = Vec::new();
    let mut more: OM_uint32 = 0;
    loop {
        let (mut minor, mut text) = (0, empty_buffer());
        // SAFETY: valid out-pointers; a NULL mechanism means the default (krb5 here).
        let major = unsafe { sys::gss_display_status(&mut minor, status, kind, ptr::null_mut(), &mut more, &mut text) };
        if major & ERROR_MASK != 0 {
            texts.push(format!("status {status:#x}"));
            return texts;
        }
        texts.push(take_buffer(&mut text).map_or_else(String::new, |b| String::from_utf8_lossy(&b).into()));
        if more == 0 || texts.len() > 8 {
            return texts;
        }
    }
}

fn empty_buffer() -> sys::gss_buffer_desc {
    sys::gss_buffer_desc { length: 0, value: ptr::null_mut() }
}

/// A borrowed byte slice as an input buffer (GSS-API never writes to input buffers).
fn input(bytes: &[u8]) -> sys::gss_buffer_desc {
    sys::gss_buffer_desc { length: bytes.len(), value: bytes.as_ptr().cast_mut().cast() }
}

/// Copies a buffer the library filled, and releases it.
fn take_buffer(buffer: &mut sys::gss_buffer_desc) -> Option<Vec<u8>> {
    if buffer.value.is_null() {
        return None;
    }
    // SAFETY: the library filled `length` bytes at `value`; they are copied before the release.
    let bytes = unsafe { std::slice::from_raw_parts(buffer.value.cast::<u8>(), buffer.length) }.to_vec();
    let mut minor = 0;
    // SAFETY: the buffer came from the library and is released once.
    unsafe { sys::gss_release_buffer(&mut minor, buffer) };
    Some(bytes)
}

fn c_string(call: &'static str, text: &str) -> Result<CString, GssError> {
    CString::new(text).map_err(|_| GssError { call, major: 0, minor: 0, message: "text contains a NUL byte".into() })
}

/// A key-value credential store (`keytab` or `ccache` name) for the `*_from`/`*_into` calls.
struct Store {
    _key: CString,
    _value: CString,
    element: sys::gss_key_value_element_desc,
}

impl Store {
    fn new(call: &'static str, key: &str, value: &str) -> Result<Box<Store>, GssError> {
        let (key, value) = (c_string(call, key)?, c_string(call, value)?);
        let element = sys::gss_key_value_element_desc { key: key.as_ptr(), value: value.as_ptr() };
        Ok(Box::new(Store { _key: key, _value: value, element }))
    }

    /// The set naming this one element; valid while `self` lives (boxed: the element does not move).
    fn set(&mut self) -> sys::gss_key_value_set_desc {
        sys::gss_key_value_set_desc { count: 1, elements: &mut self.element }
    }
}

/// An imported name.
struct Name(sys::gss_name_t);

impl Name {
    /// A Kerberos principal name (`ftp/host@REALM`).
    fn principal(name: &str) -> Result<Name, GssError> {
        let (mut minor, mut raw) = (0, ptr::null_mut());
        // SAFETY: valid buffer and out-pointers; the OID is a static of the library.
        let major = unsafe {
            sys::gss_import_name(&mut minor, &input(name.as_bytes()), sys::GSS_KRB5_NT_PRINCIPAL_NAME, &mut raw)
        };
        check("gss_import_name", major, minor)?;
        Ok(Name(raw))
    }

    fn display(&self) -> Result<String, GssError> {
        let (mut minor, mut text) = (0, empty_buffer());
        // SAFETY: a live name; NULL for the name type we do not need.
        let major = unsafe { sys::gss_display_name(&mut minor, self.0, &mut text, ptr::null_mut()) };
        check("gss_display_name", major, minor)?;
        Ok(String::from_utf8_lossy(&take_buffer(&mut text).unwrap_or_default()).into_owned())
    }
}

impl Drop for Name {
    fn drop(&mut self) {
        let mut minor = 0;
        // SAFETY: a name from the library, released once.
        unsafe { sys::gss_release_name(&mut minor, &mut self.0) };
    }
}

fn check(call: &'static str, major: OM_uint32, minor: OM_uint32) -> Result<(), GssError> {
    if major & ERROR_MASK != 0 {
        return Err(error(call, major, minor));
    }
    Ok(())
}

/// A credential handle (the acceptor's key, or a client's delegated TGT).
struct Cred(sys::gss_cred_id_t);

// SAFETY: MIT credential handles lock their own state; each is used by one thread at a time here.
unsafe impl Send for Cred {}

impl Drop for Cred {
    fn drop(&mut self) {
        if !self.0.is_null() {
            let mut minor = 0;
            // SAFETY: a credential from the library, released once.
            unsafe { sys::gss_release_cred(&mut minor, &mut self.0) };
        }
    }
}

/// The service's key, read from a keytab file: what accepts the clients' security contexts.
pub struct AcceptorCred(Cred);

impl AcceptorCred {
    /// The acceptor credential of `principal` (any key of the keytab when `None`) in `keytab`.
    pub fn from_keytab(keytab: &Path, principal: Option<&str>) -> Result<AcceptorCred, GssError> {
        const CALL: &str = "gss_acquire_cred_from";
        let mut store = Store::new(CALL, "keytab", &format!("FILE:{}", keytab.display()))?;
        let name = principal.map(Name::principal).transpose()?;
        let (mut minor, mut raw) = (0, ptr::null_mut());
        // SAFETY: valid name (or NULL: any), store and out-pointers; default mechanisms.
        let major = unsafe {
            sys::gss_acquire_cred_from(
                &mut minor,
                name.as_ref().map_or(ptr::null_mut(), |n| n.0),
                sys::GSS_C_INDEFINITE,
                ptr::null_mut(),
                sys::GSS_C_ACCEPT,
                &store.set(),
                &mut raw,
                ptr::null_mut(),
                ptr::null_mut(),
            )
        };
        check(CALL, major, minor)?;
        Ok(AcceptorCred(Cred(raw)))
    }
}

/// A client's credential forwarded through the security context (its TGT, when it delegated).
pub struct DelegatedCred(Cred);

impl DelegatedCred {
    /// Writes the credential into a new credential cache file at `path` (mode 0600, replacing any).
    pub fn store_in_file(&self, path: &Path) -> Result<(), GssError> {
        const CALL: &str = "gss_store_cred_into";
        let mut store = Store::new(CALL, "ccache", &format!("FILE:{}", path.display()))?;
        let mut minor = 0;
        // SAFETY: a live credential and store; overwrite, not as the default credential.
        let major = unsafe {
            sys::gss_store_cred_into(
                &mut minor,
                (self.0).0,
                sys::GSS_C_INITIATE,
                ptr::null_mut(),
                1,
                0,
                &store.set(),
                ptr::null_mut(),
                ptr::null_mut(),
            )
        };
        check(CALL, major, minor)
    }

    /// Seconds the credential stays valid.
    pub fn lifetime(&self) -> Result<u32, GssError> {
        let (mut minor, mut lifetime) = (0, 0);
        // SAFETY: a live credential; NULL for what is not wanted.
        let major = unsafe {
            sys::gss_inquire_cred(
                &mut minor,
                (self.0).0,
                ptr::null_mut(),
                &mut lifetime,
                ptr::null_mut(),
                ptr::null_mut(),
            )
        };
        check("gss_inquire_cred", major, minor)?;
        Ok(lifetime)
    }
}

/// What one `accept` step gave: a token for the client, and whether the context is established.
#[derive(Debug)]
pub struct Step {
    pub token: Vec<u8>,
    pub complete: bool,
}

/// An acceptor's security context with one client.
pub struct SecurityContext {
    raw: sys::gss_ctx_id_t,
    complete: bool,
    client: Option<String>,
    flags: u32,
    delegated: Option<DelegatedCred>,
}

// SAFETY: a context is used by one thread at a time (`!Sync`); MIT contexts have no thread affinity.
unsafe impl Send for SecurityContext {}

impl Default for SecurityContext {
    fn default() -> Self {
        SecurityContext { raw: ptr::null_mut(), complete: false, client: None, flags: 0, delegated: None }
    }
}

impl SecurityContext {
    /// Takes the client's next token. Once complete, the client is known (`client`).
    pub fn accept(&mut self, cred: &AcceptorCred, token: &[u8]) -> Result<Step, GssError> {
        assert!(!self.complete, "accept after the context is established");
        let (mut minor, mut source, mut output, mut flags) = (0, ptr::null_mut(), empty_buffer(), 0);
        let mut delegated = ptr::null_mut();
        // SAFETY: valid handles and out-pointers; no channel bindings (clients put addresses there that
        // NAT and proxies change), no mechanism or time wanted back.
        let major = unsafe {
            sys::gss_accept_sec_context(
                &mut minor,
                &mut self.raw,
                (cred.0).0,
                &input(token),
                ptr::null_mut(),
                &mut source,
                ptr::null_mut(),
                &mut output,
                &mut flags,
                ptr::null_mut(),
                &mut delegated,
            )
        };
        let (source, delegated) = (Name(source), Cred(delegated));
        let token = take_buffer(&mut output).unwrap_or_default();
        check("gss_accept_sec_context", major, minor)?;
        if major & CONTINUE_NEEDED != 0 {
            return Ok(Step { token, complete: false });
        }
        self.client = Some(source.display()?);
        self.flags = flags;
        self.delegated = (flags & DELEG_FLAG != 0 && !delegated.0.is_null()).then_some(DelegatedCred(delegated));
        self.complete = true;
        Ok(Step { token, complete: true })
    }

    pub fn is_complete(&self) -> bool {
        self.complete
    }

    /// The client's principal name (`alice@REALM`), once established.
    pub fn client(&self) -> Option<&str> {
        self.client.as_deref()
    }

    /// The context flags (RFC 2744: `DELEG_FLAG`, …), for the log.
    pub fn flags(&self) -> u32 {
        self.flags
    }

    /// The client's delegated credential, once (when it delegated).
    pub fn take_delegated(&mut self) -> Option<DelegatedCred> {
        self.delegated.take()
    }

    /// Wraps `message`: integrity-protected, and encrypted when `confidential`.
    pub fn wrap(&self, message: &[u8], confidential: bool) -> Result<Vec<u8>, GssError> {
        self.assert_complete();
        let (mut minor, mut conf_state, mut output) = (0, 0, empty_buffer());
        // SAFETY: an established context, valid buffers and out-pointers.
        let major = unsafe {
            sys::gss_wrap(
                &mut minor,
                self.raw,
                c_int::from(confidential),
                sys::GSS_C_QOP_DEFAULT,
                &input(message),
                &mut conf_state,
                &mut output,
            )
        };
        let token = take_buffer(&mut output).unwrap_or_default();
        check("gss_wrap", major, minor)?;
        if confidential && conf_state == 0 {
            return Err(GssError { call: "gss_wrap", major, minor, message: "confidentiality not available".into() });
        }
        Ok(token)
    }

    /// Unwraps a token: the message, and whether it was encrypted. A token seen before, or out of
    /// order, is an error (replay protection).
    pub fn unwrap(&self, token: &[u8]) -> Result<(Vec<u8>, bool), GssError> {
        self.assert_complete();
        let (mut minor, mut conf_state, mut output) = (0, 0, empty_buffer());
        // SAFETY: an established context, valid buffers and out-pointers.
        let major = unsafe {
            sys::gss_unwrap(&mut minor, self.raw, &input(token), &mut output, &mut conf_state, ptr::null_mut())
        };
        let message = take_buffer(&mut output).unwrap_or_default();
        check("gss_unwrap", major, minor)?;
        // SECURITY: replay: a token seen before, too old or out of order is an error, not a message.
        if major & OUT_OF_SEQUENCE != 0 {
            return Err(error("gss_unwrap", major, minor));
        }
        Ok((message, conf_state != 0))
    }

    /// The largest message whose wrap token fits in `max_token` bytes.
    pub fn max_message(&self, confidential: bool, max_token: u32) -> Result<u32, GssError> {
        self.assert_complete();
        let (mut minor, mut max_input) = (0, 0);
        // SAFETY: an established context and a valid out-pointer.
        let major = unsafe {
            sys::gss_wrap_size_limit(
                &mut minor,
                self.raw,
                c_int::from(confidential),
                sys::GSS_C_QOP_DEFAULT,
                max_token,
                &mut max_input,
            )
        };
        check("gss_wrap_size_limit", major, minor)?;
        Ok(max_input)
    }

    fn assert_complete(&self) {
        assert!(self.complete, "message protection before the context is established");
    }
}

impl Drop for SecurityContext {
    fn drop(&mut self) {
        if !self.raw.is_null() {
            let mut minor = 0;
            // SAFETY: a context from gss_accept_sec_context, deleted once; no token for the peer.
            unsafe { sys::gss_delete_sec_context(&mut minor, &mut self.raw, ptr::null_mut()) };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_carry_the_status_text() {
        let missing = Path::new("/nonexistent/hdfsftpd.keytab");
        let err = AcceptorCred::from_keytab(missing, Some("ftp/localhost@NOWHERE.TEST")).err().expect("no keytab");
        assert_eq!(err.call, "gss_acquire_cred_from");
        assert!(err.major & ERROR_MASK != 0, "{err}");
        assert!(!err.message.is_empty() && !err.message.starts_with("status"), "{err}");
    }

    #[test]
    fn a_token_without_credentials_is_refused_with_both_status_texts() {
        // No keytab is needed to fail on a token that is no token: GSS_C_NO_CREDENTIAL.
        let cred = AcceptorCred(Cred(ptr::null_mut()));
        let mut context = SecurityContext::default();
        let err = context.accept(&cred, b"not a GSS-API token").expect_err("refused");
        assert_eq!(err.call, "gss_accept_sec_context");
        assert!(err.major & ERROR_MASK != 0 && err.minor != 0, "{err}");
        assert!(err.message.contains("credentials") && err.message.contains(": "), "{err}");
        assert!(!context.is_complete());
    }
}

/// Checks the hand-written structs against gssapi.h, as krb5.rs's `layout` test does for krb5.h.
#[cfg(test)]
mod layout {
    use std::mem::size_of;
    use std::process::Command;

    #[test]
    fn structs_match_the_c_headers() {
        let dir = std::env::temp_dir().join(format!("hdfsftpd-gss-layout-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let source = "#include <stdio.h>\n#include <gssapi/gssapi.h>\n#include <gssapi/gssapi_ext.h>\n\
                      int main(void) { printf(\"%zu %zu %zu %zu\\n\", sizeof(gss_buffer_desc), \
                      sizeof(gss_OID_desc), sizeof(gss_key_value_element_desc), sizeof(gss_key_value_set_desc)); \
                      return 0; }\n";
        std::fs::write(dir.join("layout.c"), source).unwrap();
        let built = Command::new("cc").arg("-o").arg(dir.join("layout")).arg(dir.join("layout.c")).status();
        assert!(built.expect("cc runs (install gcc and libkrb5-dev)").success(), "layout.c did not compile");
        let output = Command::new(dir.join("layout")).output().unwrap();
        let _ = std::fs::remove_dir_all(&dir);
        let rust = [
            size_of::<super::sys::gss_buffer_desc>(),
            size_of::<super::sys::gss_OID_desc>(),
            size_of::<super::sys::gss_key_value_element_desc>(),
            size_of::<super::sys::gss_key_value_set_desc>(),
        ]
        .map(|s| s.to_string())
        .join(" ");
        assert_eq!(String::from_utf8(output.stdout).unwrap().trim(), rust);
    }
}
