//! Password hash verification through the system's libcrypt (libxcrypt on Debian): `$6$` SHA-512,
//! `$5$`, `$y$` yescrypt, `$2b$` bcrypt — whatever the host's crypt(3) supports.

use std::ffi::{CStr, CString};
use std::io;
use std::os::raw::{c_char, c_int, c_void};

#[link(name = "crypt")]
extern "C" {
    // libxcrypt: reentrant, the caller supplies the scratch area and its size.
    fn crypt_rn(phrase: *const c_char, setting: *const c_char, data: *mut c_void, size: c_int) -> *mut c_char;
}

/// Size of libxcrypt's `struct crypt_data`.
const CRYPT_DATA_SIZE: usize = 32768;

/// Hashes `password` with the algorithm and salt named by `setting` (a full hash works as a setting).
pub fn crypt(password: &str, setting: &str) -> io::Result<String> {
    let phrase = CString::new(password).map_err(|_| invalid("password contains NUL"))?;
    let setting = CString::new(setting).map_err(|_| invalid("hash contains NUL"))?;
    let mut scratch = vec![0u8; CRYPT_DATA_SIZE];
    // SAFETY: both strings are NUL-terminated and live across the call; `scratch` is a writable area
    // of the size we pass; the result points into `scratch` and is copied before `scratch` drops.
    let result =
        unsafe { crypt_rn(phrase.as_ptr(), setting.as_ptr(), scratch.as_mut_ptr().cast(), CRYPT_DATA_SIZE as c_int) };
    if result.is_null() {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: non-null results of crypt_rn are NUL-terminated strings inside `scratch`.
    let hashed = unsafe { CStr::from_ptr(result) }.to_string_lossy().into_owned();
    // libxcrypt signals an unusable setting with a string starting with '*'.
    if hashed.starts_with('*') {
        return Err(invalid("unsupported or malformed password hash"));
    }
    Ok(hashed)
}

/// True when `password` hashes to `stored_hash`. Compared in constant time.
pub fn verify(password: &str, stored_hash: &str) -> io::Result<bool> {
    let hashed = crypt(password, stored_hash)?;
    Ok(constant_time_eq(hashed.as_bytes(), stored_hash.as_bytes()))
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn invalid(message: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    // Made with `openssl passwd -6 -salt saltsalt secret`.
    const SECRET_SHA512: &str =
        "$6$saltsalt$TVLlQcbpFVof5W3Yz4DTP6gRstiNuHwwTt6GLc1E5n0U0aDehy0S5knV8wiOQSpT0Y77vwPZN.Pq.H91p5hVO1";

    #[test]
    fn verifies_sha512_crypt() {
        assert!(verify("secret", SECRET_SHA512).unwrap());
        assert!(!verify("Secret", SECRET_SHA512).unwrap());
    }

    #[test]
    fn rejects_malformed_hash() {
        assert!(verify("secret", "$99$unknown$method").is_err());
        // Not a modern hash: libxcrypt may read it as a DES salt, but it can never match.
        assert!(!verify("secret", "not-a-hash").unwrap_or(false));
    }
}
