//! File hashes for the HASH command (draft-bryan-ftpext-hash): SHA-256, SHA-1 and MD5 through OpenSSL,
//! CRC-32 (IEEE 802.3, as zlib, `crc32` and Python's `zlib.crc32` compute it) here.

use std::fmt::Write as _;

use openssl::hash::{Hasher, MessageDigest};

/// A hash a client may select with `OPTS HASH`, in FEAT's order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    Sha256,
    Sha1,
    Md5,
    Crc32,
}

impl Algorithm {
    pub const ALL: [Algorithm; 4] = [Algorithm::Sha256, Algorithm::Sha1, Algorithm::Md5, Algorithm::Crc32];

    /// The draft's name for it (the IANA hash function textual name).
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Sha256 => "SHA-256",
            Algorithm::Sha1 => "SHA-1",
            Algorithm::Md5 => "MD5",
            Algorithm::Crc32 => "CRC32",
        }
    }

    /// The algorithm a client names, in any case.
    pub fn named(name: &str) -> Option<Algorithm> {
        Algorithm::ALL.into_iter().find(|algorithm| algorithm.name().eq_ignore_ascii_case(name))
    }

    /// FEAT's list: every algorithm, the selected one marked with `*`.
    pub fn feature_list(selected: Algorithm) -> String {
        let names: Vec<String> = Algorithm::ALL
            .iter()
            .map(|&algorithm| format!("{}{}", algorithm.name(), if algorithm == selected { "*" } else { "" }))
            .collect();
        names.join(";")
    }
}

/// A hash being computed over a stream of chunks.
pub enum Digest {
    OpenSsl(Hasher),
    Crc32(u32),
}

impl Digest {
    pub fn new(algorithm: Algorithm) -> Result<Digest, openssl::error::ErrorStack> {
        let kind = match algorithm {
            Algorithm::Sha256 => MessageDigest::sha256(),
            Algorithm::Sha1 => MessageDigest::sha1(),
            Algorithm::Md5 => MessageDigest::md5(),
            Algorithm::Crc32 => return Ok(Digest::Crc32(!0)),
        };
        Ok(Digest::OpenSsl(Hasher::new(kind)?))
    }

    pub fn update(&mut self, bytes: &[u8]) -> Result<(), openssl::error::ErrorStack> {
        match self {
            Digest::OpenSsl(hasher) => hasher.update(bytes),
            Digest::Crc32(crc) => {
                *crc = crc32_update(*crc, bytes);
                Ok(())
            }
        }
    }

    /// The hash in lower-case hexadecimal, as the draft's 213 reply carries it.
    pub fn finish_hex(self) -> Result<String, openssl::error::ErrorStack> {
        let bytes = match self {
            Digest::OpenSsl(mut hasher) => hasher.finish()?.to_vec(),
            Digest::Crc32(crc) => (!crc).to_be_bytes().to_vec(),
        };
        Ok(bytes.iter().fold(String::with_capacity(bytes.len() * 2), |mut hex, byte| {
            let _ = write!(hex, "{byte:02x}");
            hex
        }))
    }
}

/// The reflected CRC-32 polynomial of IEEE 802.3.
const CRC32_POLYNOMIAL: u32 = 0xEDB8_8320;

/// One byte's step of the table-driven CRC-32, computed once at compile time.
const CRC32_TABLE: [u32; 256] = {
    let mut table = [0u32; 256];
    let mut index = 0;
    while index < 256 {
        let mut crc = index as u32;
        let mut bit = 0;
        while bit < 8 {
            crc = if crc & 1 == 1 { (crc >> 1) ^ CRC32_POLYNOMIAL } else { crc >> 1 };
            bit += 1;
        }
        table[index] = crc;
        index += 1;
    }
    table
};

fn crc32_update(mut crc: u32, bytes: &[u8]) -> u32 {
    for &byte in bytes {
        crc = CRC32_TABLE[((crc ^ byte as u32) & 0xff) as usize] ^ (crc >> 8);
    }
    crc
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(algorithm: Algorithm, chunks: &[&[u8]]) -> String {
        let mut digest = Digest::new(algorithm).unwrap();
        for chunk in chunks {
            digest.update(chunk).unwrap();
        }
        digest.finish_hex().unwrap()
    }

    #[test]
    fn known_answers() {
        let text: &[&[u8]] = &[b"The quick brown fox ", b"jumps over the lazy dog"];
        assert_eq!(hex(Algorithm::Sha256, text), "d7a8fbb307d7809469ca9abcb0082e4f8d5651e46d3cdb762d02d0bf37c9e592");
        assert_eq!(hex(Algorithm::Sha1, text), "2fd4e1c67a2d28fced849ee1bb76e7391b93eb12");
        assert_eq!(hex(Algorithm::Md5, text), "9e107d9d372bb6826bd81d3542a419d6");
        assert_eq!(hex(Algorithm::Crc32, text), "414fa339");
        assert_eq!(hex(Algorithm::Crc32, &[]), "00000000");
    }

    #[test]
    fn names_and_feature_list() {
        assert_eq!(Algorithm::named("sha-1"), Some(Algorithm::Sha1));
        assert_eq!(Algorithm::named("SHA-512"), None);
        assert_eq!(Algorithm::feature_list(Algorithm::Md5), "SHA-256;SHA-1;MD5*;CRC32");
    }
}
