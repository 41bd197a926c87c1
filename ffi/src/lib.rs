//! The only crate of hdfsftpd with `unsafe` code: thin, safe wrappers over the C libraries the daemon
//! needs. Every wrapper owns its C resources (RAII, `Drop` frees) and turns each failed call into a Rust
//! error that carries the C library's own explanation. No raw pointer leaves this crate.
//!
//! `hdfs` (libhdfs, built against a JDK) and `krb5` (MIT krb5) are features, on by default; the rest
//! needs only libc and libcrypt.

pub mod accounts;
pub mod crypt;
#[cfg(feature = "krb5")]
pub mod gssapi;
#[cfg(feature = "hdfs")]
pub mod hdfs;
#[cfg(feature = "krb5")]
pub mod krb5;
pub mod memory;
pub mod process;
mod sys;
pub mod zero_copy;
