//! Parsing one control line into a [`Command`]. Pure: no I/O, no session state.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use super::reply::{
    Reply, NOT_IMPLEMENTED, NOT_IMPLEMENTED_FOR_PARAM, PROT_LEVEL_UNSUPPORTED, SYNTAX_ERROR, SYNTAX_ERROR_ARGS,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransferType {
    Ascii,
    Binary,
}

/// Data channel protection (RFC 4217 PROT): C clear, P private (TLS).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protection {
    Clear,
    Private,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    User(String),
    Pass(String),
    Quit,
    Noop,
    Syst,
    Feat,
    Opts(String),
    Help(Option<String>),
    Stat(Option<String>),
    Pwd,
    Cwd(String),
    Cdup,
    Mkd(String),
    Rmd(String),
    Dele(String),
    Rnfr(String),
    Rnto(String),
    List(Option<String>),
    Nlst(Option<String>),
    Mlsd(Option<String>),
    Mlst(Option<String>),
    Size(String),
    Mdtm(String),
    Mfmt {
        time: String,
        path: String,
    },
    Retr(String),
    Stor(String),
    Appe(String),
    Stou,
    Rest(u64),
    Abor,
    Type(TransferType),
    Mode,
    Stru,
    Allo,
    Port(SocketAddr),
    Pasv,
    Eprt(SocketAddr),
    /// `EPSV`, or `EPSV ALL` when true.
    Epsv {
        all: bool,
    },
    Site(String),
    /// `AUTH` with its mechanism, upper-cased.
    Auth(String),
    Pbsz(String),
    Prot(Protection),
    Ccc,
}

impl Command {
    /// Whether the command carries a password (PASS), which the protocol log must not show.
    pub fn is_password(&self) -> bool {
        matches!(self, Command::Pass(_))
    }

    /// Transfers and listings: the commands that use a data connection.
    pub fn opens_data(&self) -> bool {
        matches!(
            self,
            Command::List(_)
                | Command::Nlst(_)
                | Command::Mlsd(_)
                | Command::Retr(_)
                | Command::Stor(_)
                | Command::Appe(_)
                | Command::Stou
        )
    }
}

/// Splits a line into its upper-cased verb and its argument (empty when absent).
pub fn split(line: &str) -> (String, &str) {
    let (verb, arg) = line.split_once(' ').unwrap_or((line, ""));
    (verb.to_ascii_uppercase(), arg)
}

/// Parses a line (without its CRLF). An `Err` is the reply to send instead.
pub fn parse(line: &str) -> Result<Command, Reply> {
    let (verb, arg) = split(line);
    let required = |arg: &str| {
        if arg.is_empty() {
            Err(Reply::new(SYNTAX_ERROR_ARGS, format!("{verb} needs an argument")))
        } else {
            Ok(arg.to_string())
        }
    };
    let optional = |arg: &str| {
        if arg.is_empty() {
            None
        } else {
            Some(arg.to_string())
        }
    };
    let no_arg = |command: Command| {
        if arg.is_empty() {
            Ok(command)
        } else {
            Err(Reply::new(SYNTAX_ERROR_ARGS, format!("{verb} takes no argument")))
        }
    };
    Ok(match verb.as_str() {
        "USER" => Command::User(required(arg)?),
        "PASS" => Command::Pass(arg.to_string()),
        "QUIT" => Command::Quit,
        "NOOP" => Command::Noop,
        "SYST" => Command::Syst,
        "FEAT" => Command::Feat,
        "OPTS" => Command::Opts(required(arg)?),
        "HELP" => Command::Help(optional(arg)),
        "STAT" => Command::Stat(optional(arg)),
        "PWD" | "XPWD" => no_arg(Command::Pwd)?,
        "CWD" | "XCWD" => Command::Cwd(required(arg)?),
        "CDUP" | "XCUP" => no_arg(Command::Cdup)?,
        "MKD" | "XMKD" => Command::Mkd(required(arg)?),
        "RMD" | "XRMD" => Command::Rmd(required(arg)?),
        "DELE" => Command::Dele(required(arg)?),
        "RNFR" => Command::Rnfr(required(arg)?),
        "RNTO" => Command::Rnto(required(arg)?),
        "LIST" => Command::List(optional(arg)),
        "NLST" => Command::Nlst(optional(arg)),
        "MLSD" => Command::Mlsd(optional(arg)),
        "MLST" => Command::Mlst(optional(arg)),
        "SIZE" => Command::Size(required(arg)?),
        "MDTM" => Command::Mdtm(required(arg)?),
        "MFMT" => {
            let (time, path) = arg
                .split_once(' ')
                .filter(|(_, path)| !path.is_empty())
                .ok_or_else(|| Reply::new(SYNTAX_ERROR_ARGS, "usage: MFMT YYYYMMDDHHMMSS path"))?;
            Command::Mfmt { time: time.to_string(), path: path.to_string() }
        }
        "RETR" => Command::Retr(required(arg)?),
        "STOR" => Command::Stor(required(arg)?),
        "APPE" => Command::Appe(required(arg)?),
        "STOU" => Command::Stou,
        "REST" => Command::Rest(
            arg.parse().map_err(|_| Reply::new(SYNTAX_ERROR_ARGS, "REST needs a byte offset (0 or more)"))?,
        ),
        "ABOR" => Command::Abor,
        "TYPE" => Command::Type(parse_type(arg)?),
        "MODE" => match arg.to_ascii_uppercase().as_str() {
            "S" => Command::Mode,
            _ => return Err(Reply::new(NOT_IMPLEMENTED_FOR_PARAM, "Only stream mode (MODE S) is supported")),
        },
        "STRU" => match arg.to_ascii_uppercase().as_str() {
            "F" => Command::Stru,
            _ => return Err(Reply::new(NOT_IMPLEMENTED_FOR_PARAM, "Only file structure (STRU F) is supported")),
        },
        "ALLO" => Command::Allo,
        "PORT" => Command::Port(
            parse_port(arg).ok_or_else(|| Reply::new(SYNTAX_ERROR_ARGS, "usage: PORT h1,h2,h3,h4,p1,p2"))?,
        ),
        "PASV" => no_arg(Command::Pasv)?,
        "EPRT" => Command::Eprt(
            parse_eprt(arg)
                .ok_or_else(|| Reply::new(SYNTAX_ERROR_ARGS, "usage: EPRT |1|h1.h2.h3.h4|port| or |2|ipv6|port|"))?,
        ),
        "EPSV" => match arg.to_ascii_uppercase().as_str() {
            "" | "1" | "2" => Command::Epsv { all: false },
            "ALL" => Command::Epsv { all: true },
            _ => return Err(Reply::new(522, "Network protocol not supported, use (1,2)")),
        },
        "SITE" => Command::Site(required(arg)?),
        "AUTH" => Command::Auth(required(arg)?.to_ascii_uppercase()),
        "PBSZ" => Command::Pbsz(required(arg)?),
        "PROT" => Command::Prot(parse_prot(arg)?),
        "CCC" => no_arg(Command::Ccc)?,
        "" => return Err(Reply::new(SYNTAX_ERROR, "Empty command")),
        known if UNIMPLEMENTED.contains(&known) => {
            return Err(Reply::new(NOT_IMPLEMENTED, format!("{known} not implemented")));
        }
        _ => return Err(Reply::new(SYNTAX_ERROR, "Unknown command")),
    })
}

/// RFC 959 commands this server knowingly leaves out.
const UNIMPLEMENTED: &[&str] = &["ACCT", "SMNT", "REIN"];

fn parse_type(arg: &str) -> Result<TransferType, Reply> {
    let mut parts = arg.split(' ').filter(|p| !p.is_empty()).map(|p| p.to_ascii_uppercase());
    match (parts.next().as_deref(), parts.next().as_deref(), parts.next()) {
        (Some("A"), None | Some("N"), None) => Ok(TransferType::Ascii),
        (Some("I"), None, None) | (Some("L"), Some("8"), None) => Ok(TransferType::Binary),
        (Some(_), _, _) => Err(Reply::new(NOT_IMPLEMENTED_FOR_PARAM, "Only TYPE A and TYPE I are supported")),
        (None, _, _) => Err(Reply::new(SYNTAX_ERROR_ARGS, "TYPE needs an argument")),
    }
}

fn parse_prot(arg: &str) -> Result<Protection, Reply> {
    match arg.to_ascii_uppercase().as_str() {
        "C" => Ok(Protection::Clear),
        "P" => Ok(Protection::Private),
        "S" | "E" => Err(Reply::new(PROT_LEVEL_UNSUPPORTED, "PROT S and E are not supported by TLS; use C or P")),
        "" => Err(Reply::new(SYNTAX_ERROR_ARGS, "PROT needs an argument: C or P")),
        _ => Err(Reply::new(NOT_IMPLEMENTED_FOR_PARAM, "PROT takes C or P")),
    }
}

/// `h1,h2,h3,h4,p1,p2` (RFC 959).
fn parse_port(arg: &str) -> Option<SocketAddr> {
    let numbers: Vec<u8> = arg.trim().split(',').map(|n| n.trim().parse().ok()).collect::<Option<_>>()?;
    let [a, b, c, d, hi, lo] = numbers[..] else {
        return None;
    };
    Some(SocketAddr::new(IpAddr::V4(Ipv4Addr::new(a, b, c, d)), u16::from_be_bytes([hi, lo])))
}

/// `<d>proto<d>address<d>port<d>` (RFC 2428), any delimiter.
fn parse_eprt(arg: &str) -> Option<SocketAddr> {
    let delimiter = arg.chars().next()?;
    let fields: Vec<&str> = arg.split(delimiter).collect();
    let ["", proto, address, port, ""] = fields[..] else {
        return None;
    };
    let ip: IpAddr = address.parse().ok()?;
    match (proto, ip) {
        ("1", IpAddr::V4(_)) | ("2", IpAddr::V6(_)) => Some(SocketAddr::new(ip, port.parse().ok()?)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verbs_are_case_insensitive_and_keep_arguments_verbatim() {
        assert_eq!(parse("retr a  b.txt").unwrap(), Command::Retr("a  b.txt".into()));
        assert_eq!(parse("XPWD").unwrap(), Command::Pwd);
        assert_eq!(parse("LIST").unwrap(), Command::List(None));
    }

    #[test]
    fn port_and_eprt() {
        assert_eq!(parse("PORT 127,0,0,1,4,1").unwrap(), Command::Port("127.0.0.1:1025".parse().unwrap()));
        assert_eq!(parse("EPRT |2|::1|5000|").unwrap(), Command::Eprt("[::1]:5000".parse().unwrap()));
        assert_eq!(parse("EPRT |1|127.0.0.1|21|").unwrap(), Command::Eprt("127.0.0.1:21".parse().unwrap()));
        assert!(parse("PORT 300,0,0,1,4,1").is_err());
        assert!(parse("EPRT |2|127.0.0.1|5|").is_err());
    }

    #[test]
    fn bad_lines_get_5xx() {
        for line in ["", "FOO BAR", "RETR", "REST -1", "TYPE X", "MODE B", "STRU R", "MFMT 2020"] {
            let reply = parse(line).unwrap_err();
            assert!((500..600).contains(&reply.code), "{line}: {reply:?}");
        }
        assert_eq!(parse("TYPE A N").unwrap(), Command::Type(TransferType::Ascii));
        assert_eq!(parse("TYPE L 8").unwrap(), Command::Type(TransferType::Binary));
    }

    #[test]
    fn security_commands() {
        assert_eq!(parse("auth tls").unwrap(), Command::Auth("TLS".into()));
        assert_eq!(parse("PROT p").unwrap(), Command::Prot(Protection::Private));
        assert_eq!(parse("PROT C").unwrap(), Command::Prot(Protection::Clear));
        assert_eq!(parse("PROT S").unwrap_err().code, PROT_LEVEL_UNSUPPORTED);
        assert_eq!(parse("PROT X").unwrap_err().code, NOT_IMPLEMENTED_FOR_PARAM);
        assert_eq!(parse("PBSZ 0").unwrap(), Command::Pbsz("0".into()));
        assert!(parse("CCC x").is_err());
        assert!(parse("STOU").unwrap().opens_data() && !parse("PWD").unwrap().opens_data());
    }
}
