//! The PROXY protocol header (HAProxy's, versions 1 and 2) that a TCP load balancer puts before the
//! client's first byte to tell the server who the client is. Pure: it reads from any `Read` and never
//! past the header's last byte, so what follows (FTP, a TLS ClientHello) is left for the session.
//! Spec: <https://www.haproxy.org/download/2.6/doc/proxy-protocol.txt>.

use std::fmt;
use std::io::{self, Read};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// Version 1 starts with these bytes.
const V1_PREFIX: &[u8] = b"PROXY ";
/// Version 1's longest line, CRLF included (spec 2.1).
pub const V1_MAX_LINE: usize = 107;
/// Version 2 starts with these 12 bytes, chosen so no text protocol starts that way.
const V2_SIGNATURE: &[u8; 12] = b"\r\n\r\n\0\r\nQUIT\n";
/// Version 2's fixed part: signature, version and command, family, length.
const V2_FIXED: usize = 16;
/// The most address and TLV bytes accepted after the fixed part: ample for the addresses and the TLVs
/// balancers send (TLS details, a unique id, cloud endpoint ids); more is refused, not buffered.
pub const V2_MAX_PAYLOAD: usize = 1024;

/// What a valid header says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Header {
    /// The connection carries this client's TCP connection.
    Relayed(SocketAddr),
    /// The balancer speaks for itself (its health check: v2 LOCAL, v1 UNKNOWN, v2 AF_UNSPEC): the
    /// connection's own addresses stand.
    Local,
}

#[derive(Debug)]
pub enum HeaderError {
    /// The connection closed before the first byte.
    Closed,
    /// The first bytes are neither a version 1 nor a version 2 header.
    Missing,
    /// The connection closed inside the header.
    Truncated,
    /// A version 1 line longer than the spec allows, or a version 2 length over [`V2_MAX_PAYLOAD`].
    TooLong,
    /// A header that breaks the spec; the text says how.
    Malformed(&'static str),
    Io(io::Error),
}

impl fmt::Display for HeaderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HeaderError::Closed => f.write_str("closed before sending a PROXY header"),
            HeaderError::Missing => f.write_str("no PROXY header: the connection starts with something else"),
            HeaderError::Truncated => f.write_str("PROXY header cut short by the connection's end"),
            HeaderError::TooLong => write!(
                f,
                "PROXY header too long (v1 line over {V1_MAX_LINE} bytes or v2 over {V2_MAX_PAYLOAD} bytes \
                 of addresses and TLVs)"
            ),
            HeaderError::Malformed(why) => write!(f, "malformed PROXY header: {why}"),
            HeaderError::Io(e) => write!(f, "reading the PROXY header: {e}"),
        }
    }
}

impl From<io::Error> for HeaderError {
    fn from(e: io::Error) -> Self {
        if e.kind() == io::ErrorKind::UnexpectedEof {
            HeaderError::Truncated
        } else {
            HeaderError::Io(e)
        }
    }
}

/// True when `bytes` (at least one) could be the start of a header of either version: for spotting a
/// header from a peer that is not trusted to send one.
pub fn is_header_start(bytes: &[u8]) -> bool {
    let agrees = |prefix: &[u8]| !bytes.is_empty() && bytes.iter().zip(prefix).all(|(a, b)| a == b);
    agrees(V1_PREFIX) || agrees(V2_SIGNATURE)
}

/// Reads one header of either version, consuming exactly its bytes.
pub fn read_header(reader: &mut impl Read) -> Result<Header, HeaderError> {
    let mut first = [0u8; 1];
    if reader.read(&mut first)? == 0 {
        return Err(HeaderError::Closed);
    }
    match first[0] {
        b'P' => read_v1(reader),
        b'\r' => read_v2(reader),
        _ => Err(HeaderError::Missing),
    }
}

/// Reads the rest of a version 1 line one byte at a time (it ends at an LF the spec puts nowhere
/// else), giving up as soon as the bytes stop agreeing with the prefix or the line is too long.
fn read_v1(reader: &mut impl Read) -> Result<Header, HeaderError> {
    let mut line = vec![b'P'];
    while line.last() != Some(&b'\n') {
        if line.len() >= V1_MAX_LINE {
            return Err(HeaderError::TooLong);
        }
        let mut byte = [0u8; 1];
        reader.read_exact(&mut byte)?;
        line.push(byte[0]);
        if !is_header_start(&line) {
            return Err(HeaderError::Missing);
        }
    }
    parse_v1(&line)
}

/// Parses a whole version 1 line, CRLF included.
pub fn parse_v1(line: &[u8]) -> Result<Header, HeaderError> {
    let text = line
        .strip_suffix(b"\r\n")
        .ok_or(HeaderError::Malformed("v1 line does not end in CRLF"))?
        .strip_prefix(V1_PREFIX)
        .ok_or(HeaderError::Missing)?;
    let text = std::str::from_utf8(text).map_err(|_| HeaderError::Malformed("v1 line is not ASCII"))?;
    let fields: Vec<&str> = text.split(' ').collect();
    match fields[..] {
        // Whatever follows UNKNOWN is to be ignored (spec 2.1).
        ["UNKNOWN", ..] => Ok(Header::Local),
        ["TCP4", source, _destination, source_port, _destination_port] => {
            let ip: Ipv4Addr = source.parse().map_err(|_| HeaderError::Malformed("v1 TCP4 source is not IPv4"))?;
            Ok(Header::Relayed(SocketAddr::new(ip.into(), v1_port(source_port)?)))
        }
        ["TCP6", source, _destination, source_port, _destination_port] => {
            let ip: Ipv6Addr = source.parse().map_err(|_| HeaderError::Malformed("v1 TCP6 source is not IPv6"))?;
            Ok(Header::Relayed(SocketAddr::new(ip.into(), v1_port(source_port)?)))
        }
        ["TCP4" | "TCP6", ..] => Err(HeaderError::Malformed("v1 line needs 4 fields after the protocol")),
        _ => Err(HeaderError::Malformed("v1 protocol is not TCP4, TCP6 or UNKNOWN")),
    }
}

fn v1_port(text: &str) -> Result<u16, HeaderError> {
    let bad = HeaderError::Malformed("v1 port is not a number 0-65535");
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad);
    }
    text.parse().map_err(|_| bad)
}

fn read_v2(reader: &mut impl Read) -> Result<Header, HeaderError> {
    let mut fixed = [0u8; V2_FIXED];
    fixed[0] = b'\r';
    reader.read_exact(&mut fixed[1..])?;
    if fixed[..12] != V2_SIGNATURE[..] {
        return Err(HeaderError::Missing);
    }
    let length = usize::from(u16::from_be_bytes([fixed[14], fixed[15]]));
    if length > V2_MAX_PAYLOAD {
        return Err(HeaderError::TooLong);
    }
    let mut payload = vec![0u8; length];
    reader.read_exact(&mut payload)?;
    parse_v2(&fixed, &payload)
}

/// Parses a version 2 header: its fixed 16 bytes and the `length` bytes after them.
pub fn parse_v2(fixed: &[u8; V2_FIXED], payload: &[u8]) -> Result<Header, HeaderError> {
    const LOCAL: u8 = 0x20;
    const PROXY: u8 = 0x21;
    const UNSPEC: u8 = 0x00;
    const TCP4: u8 = 0x11;
    const TCP6: u8 = 0x21;
    match fixed[12] {
        // The balancer's own connection: addresses and TLVs, if any, are skipped.
        LOCAL => return Ok(Header::Local),
        PROXY => {}
        byte if byte >> 4 != 2 => return Err(HeaderError::Malformed("v2 version is not 2")),
        _ => return Err(HeaderError::Malformed("v2 command is neither LOCAL nor PROXY")),
    }
    // What follows the addresses is TLVs, which this server has no use for.
    match fixed[13] {
        // "The receiver must use the real connection endpoints" (spec 2.2).
        UNSPEC => Ok(Header::Local),
        TCP4 => {
            let block: &[u8; 12] = address_block(payload)?;
            let ip = Ipv4Addr::from([block[0], block[1], block[2], block[3]]);
            Ok(Header::Relayed(SocketAddr::new(IpAddr::V4(ip), u16::from_be_bytes([block[8], block[9]]))))
        }
        TCP6 => {
            let block: &[u8; 36] = address_block(payload)?;
            let mut octets = [0u8; 16];
            octets.copy_from_slice(&block[..16]);
            let port = u16::from_be_bytes([block[32], block[33]]);
            Ok(Header::Relayed(SocketAddr::new(IpAddr::V6(Ipv6Addr::from(octets)), port)))
        }
        0x31 | 0x32 => Err(HeaderError::Malformed("v2 carries a UNIX socket, not a TCP client")),
        0x12 | 0x22 => Err(HeaderError::Malformed("v2 carries a UDP client, not a TCP one")),
        _ => Err(HeaderError::Malformed("v2 address family or transport is unknown")),
    }
}

fn address_block<const N: usize>(payload: &[u8]) -> Result<&[u8; N], HeaderError> {
    payload
        .get(..N)
        .and_then(|block| block.try_into().ok())
        .ok_or(HeaderError::Malformed("v2 length is shorter than its addresses"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    /// Reads a header from `bytes`; also returns what is left unread.
    fn read(bytes: &[u8]) -> (Result<Header, HeaderError>, Vec<u8>) {
        let mut cursor = Cursor::new(bytes.to_vec());
        let result = read_header(&mut cursor);
        let at = cursor.position() as usize;
        (result, bytes[at..].to_vec())
    }

    fn relayed(text: &str) -> Header {
        Header::Relayed(text.parse().unwrap())
    }

    fn v2(command: u8, family: u8, payload: &[u8]) -> Vec<u8> {
        let mut bytes = V2_SIGNATURE.to_vec();
        bytes.extend([command, family]);
        bytes.extend((payload.len() as u16).to_be_bytes());
        bytes.extend(payload);
        bytes
    }

    fn v2_tcp4() -> Vec<u8> {
        // 192.0.2.7:51000 -> 198.51.100.1:21
        let mut payload = vec![192, 0, 2, 7, 198, 51, 100, 1];
        payload.extend(51000u16.to_be_bytes());
        payload.extend(21u16.to_be_bytes());
        payload
    }

    #[test]
    fn v1_tcp4_tcp6_and_unknown() {
        let (header, rest) = read(b"PROXY TCP4 192.0.2.7 198.51.100.1 51000 21\r\nUSER x\r\n");
        assert_eq!(header.unwrap(), relayed("192.0.2.7:51000"));
        assert_eq!(rest, b"USER x\r\n", "the bytes after the header stay unread");
        let (header, _) = read(b"PROXY TCP6 2001:db8::7 2001:db8::1 51000 21\r\n");
        assert_eq!(header.unwrap(), relayed("[2001:db8::7]:51000"));
        assert_eq!(read(b"PROXY UNKNOWN\r\n").0.unwrap(), Header::Local);
        assert_eq!(read(b"PROXY UNKNOWN ffff::1 ffff::2 1 2\r\n").0.unwrap(), Header::Local);
    }

    #[test]
    fn v1_malformed_lines_are_refused() {
        for line in [
            &b"PROXY TCP4 192.0.2.7 198.51.100.1 51000\r\n"[..],
            b"PROXY TCP4 2001:db8::7 198.51.100.1 51000 21\r\n",
            b"PROXY TCP6 192.0.2.7 198.51.100.1 51000 21\r\n",
            b"PROXY TCP4 192.0.2.7 198.51.100.1 +5100 21\r\n",
            b"PROXY TCP4 192.0.2.7 198.51.100.1 65536 21\r\n",
            b"PROXY TCP4  192.0.2.7 198.51.100.1 51000 21\r\n",
            b"PROXY UDP4 192.0.2.7 198.51.100.1 51000 21\r\n",
            b"PROXY TCP4 192.0.2.7 198.51.100.1 51000 21\n",
        ] {
            let (header, _) = read(line);
            assert!(
                matches!(header, Err(HeaderError::Malformed(_))),
                "{:?}: {header:?}",
                String::from_utf8_lossy(line)
            );
        }
    }

    #[test]
    fn v1_size_limit_and_truncation() {
        let mut long = b"PROXY UNKNOWN ".to_vec();
        long.resize(V1_MAX_LINE - 2, b'x');
        long.extend(b"\r\n");
        assert_eq!(read(&long).0.unwrap(), Header::Local, "107 bytes is the longest allowed line");
        let mut longer = long[..long.len() - 2].to_vec();
        longer.extend(b"x\r\n");
        assert!(matches!(read(&longer).0, Err(HeaderError::TooLong)));
        assert!(matches!(read(b"PROXY TCP4 192.0.2.7").0, Err(HeaderError::Truncated)));
    }

    #[test]
    fn anything_else_is_no_header() {
        assert!(matches!(read(b"").0, Err(HeaderError::Closed)));
        assert!(matches!(read(b"USER alice\r\n").0, Err(HeaderError::Missing)));
        let (header, rest) = read(b"PASV\r\n");
        assert!(matches!(header, Err(HeaderError::Missing)));
        assert_eq!(rest, b"SV\r\n", "refused at the first byte that disagrees");
        assert!(matches!(read(&[0x16, 3, 1, 0, 0xa5]).0, Err(HeaderError::Missing)), "a TLS ClientHello");
        let mut wrong = v2(0x21, 0x11, &v2_tcp4());
        wrong[9] = b'X';
        assert!(matches!(read(&wrong).0, Err(HeaderError::Missing)));
    }

    #[test]
    fn v2_proxy_tcp4_and_tcp6() {
        let mut bytes = v2(0x21, 0x11, &v2_tcp4());
        bytes.extend(b"\x16\x03\x01");
        let (header, rest) = read(&bytes);
        assert_eq!(header.unwrap(), relayed("192.0.2.7:51000"));
        assert_eq!(rest, b"\x16\x03\x01", "a TLS handshake after the header stays unread");
        let mut payload = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 7).octets().to_vec();
        payload.extend(Ipv6Addr::LOCALHOST.octets());
        payload.extend([0xc7, 0x38, 0, 21]);
        assert_eq!(read(&v2(0x21, 0x21, &payload)).0.unwrap(), relayed("[2001:db8::7]:51000"));
    }

    #[test]
    fn v2_local_and_unspec_keep_the_connection_addresses() {
        assert_eq!(read(&v2(0x20, 0x00, &[])).0.unwrap(), Header::Local);
        assert_eq!(read(&v2(0x20, 0x11, &v2_tcp4())).0.unwrap(), Header::Local);
        assert_eq!(read(&v2(0x21, 0x00, &[1, 2, 3])).0.unwrap(), Header::Local);
    }

    #[test]
    fn v2_tlvs_are_skipped() {
        let mut payload = v2_tcp4();
        payload.extend([0x04, 0x00, 0x04, 0xde, 0xad, 0xbe, 0xef]); // PP2_TYPE_NOOP
        payload.extend([0x05, 0x00, 0x02, 0x01, 0x02]); // PP2_TYPE_UNIQUE_ID
        let mut bytes = v2(0x21, 0x11, &payload);
        bytes.extend(b"after");
        let (header, rest) = read(&bytes);
        assert_eq!(header.unwrap(), relayed("192.0.2.7:51000"));
        assert_eq!(rest, b"after");
    }

    #[test]
    fn v2_families_commands_and_versions() {
        let refused = |command: u8, family: u8, payload: &[u8]| {
            matches!(read(&v2(command, family, payload)).0, Err(HeaderError::Malformed(_)))
        };
        assert!(refused(0x21, 0x41, &v2_tcp4()), "unknown family 4");
        assert!(refused(0x21, 0xf1, &v2_tcp4()), "unknown family 15");
        assert!(refused(0x21, 0x13, &v2_tcp4()), "unknown transport 3");
        assert!(refused(0x21, 0x12, &v2_tcp4()), "UDP");
        assert!(refused(0x21, 0x31, &[0; 216]), "UNIX");
        assert!(refused(0x22, 0x11, &v2_tcp4()), "command 2");
        assert!(refused(0x11, 0x11, &v2_tcp4()), "version 1 in a v2 header");
        assert!(refused(0x21, 0x11, &v2_tcp4()[..11]), "length shorter than the addresses");
        assert!(refused(0x21, 0x21, &v2_tcp4()), "IPv6 with an IPv4-sized block");
    }

    #[test]
    fn v2_size_limit_and_truncation() {
        let mut payload = v2_tcp4();
        payload.resize(V2_MAX_PAYLOAD, 0);
        assert_eq!(read(&v2(0x21, 0x11, &payload)).0.unwrap(), relayed("192.0.2.7:51000"));
        payload.push(0);
        let (header, rest) = read(&v2(0x21, 0x11, &payload));
        assert!(matches!(header, Err(HeaderError::TooLong)));
        assert_eq!(rest.len(), payload.len(), "an oversized payload is not read");
        let whole = v2(0x21, 0x11, &v2_tcp4());
        for cut in [1, 5, 15, 16, whole.len() - 1] {
            assert!(matches!(read(&whole[..cut]).0, Err(HeaderError::Truncated)), "cut at {cut}");
        }
    }

    #[test]
    fn header_starts_are_spotted() {
        assert!(is_header_start(b"PROXY TCP4 1.2.3.4"));
        assert!(is_header_start(b"PRO"));
        assert!(is_header_start(b"\r\n"));
        assert!(is_header_start(&v2(0x21, 0x11, &v2_tcp4())));
        assert!(!is_header_start(b"PROT P\r\n"));
        assert!(!is_header_start(b"USER alice"));
        assert!(!is_header_start(b""));
    }
}
