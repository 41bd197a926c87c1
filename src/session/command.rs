//! The command table ([`VERBS`]) and parsing one control line into a [`Command`] with it. Pure: no I/O,
//! no session state.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use super::reply::{
    Reply, NETWORK_PROTOCOL_NOT_SUPPORTED, NOT_IMPLEMENTED, NOT_IMPLEMENTED_FOR_PARAM, PROT_LEVEL_UNSUPPORTED,
    SYNTAX_ERROR, SYNTAX_ERROR_ARGS,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransferType {
    Ascii,
    Binary,
}

/// Data channel protection (RFC 2228/4217 PROT): C clear, S safe (integrity, GSSAPI only), P private.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protection {
    Clear,
    Safe,
    Private,
}

/// How a protected command (RFC 2228) came: MIC (integrity), CONF (confidentiality only), ENC (both).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommandProtection {
    Mic,
    Conf,
    Enc,
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
    Hash(String),
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
    Epsv(EpsvRequest),
    Site(String),
    /// `AUTH` with its mechanism, upper-cased.
    Auth(String),
    Pbsz(String),
    Prot(Protection),
    Ccc,
    /// RFC 2228 security data (base64), after AUTH GSSAPI.
    Adat(String),
    /// A protected command: its base64 token.
    Protected(CommandProtection, String),
}

/// What `EPSV` asks for (RFC 2428 section 3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EpsvRequest {
    /// No argument: a data port on the control connection's address.
    AnyFamily,
    /// `EPSV 1` or `EPSV 2`: a data port of that address family.
    Family(IpFamily),
    /// `EPSV ALL`: from now on only EPSV.
    All,
}

/// An address family by its RFC 2428 number: 1 is IPv4, 2 is IPv6.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IpFamily {
    V4,
    V6,
}

impl IpFamily {
    pub fn of(address: IpAddr) -> IpFamily {
        match address.to_canonical() {
            IpAddr::V4(_) => IpFamily::V4,
            IpAddr::V6(_) => IpFamily::V6,
        }
    }

    pub fn number(self) -> u8 {
        match self {
            IpFamily::V4 => 1,
            IpFamily::V6 => 2,
        }
    }
}

/// How a verb takes its argument; checked before the verb's own parsing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Argument {
    /// None allowed: `PWD x` is a 501.
    Forbidden,
    /// Whatever follows is ignored (`QUIT now`).
    Ignored,
    /// Must be there: `RETR` alone is a 501.
    Required,
    /// May be there (`LIST`, `LIST dir`); PASS may be empty too.
    Optional,
    /// The verb's own parser says what is valid (`TYPE`, `PORT`, `REST`, …).
    Parsed,
}

/// Everything the server knows about one verb. [`VERBS`] is the only list of them: the parser, the
/// login gate, the data-connection gate, HELP and FEAT all read it.
pub struct Verb {
    pub name: &'static str,
    /// Other names for the same command (RFC 775's X-verbs).
    pub aliases: &'static [&'static str],
    pub argument: Argument,
    /// Refused with 530 before login.
    pub needs_login: bool,
    /// Uses a data connection (so `--require-data-tls` applies).
    pub opens_data: bool,
    /// Its argument is a secret the protocol log must not show: PASS, and the GSS-API tokens (an ADAT
    /// token is a Kerberos authenticator; a MIC token carries its command, PASS perhaps, in clear).
    pub secret: bool,
    /// Its FEAT lines (RFC 2389).
    pub features: &'static [&'static str],
    /// Its FEAT lines are only there with TLS configured.
    pub needs_tls: bool,
    /// `HELP <verb>`: its usage and what it does.
    pub help: &'static str,
    /// Builds the command from the argument, once the argument rule holds.
    build: fn(&str) -> Result<Command, Reply>,
}

impl Verb {
    const fn new(
        name: &'static str,
        argument: Argument,
        help: &'static str,
        build: fn(&str) -> Result<Command, Reply>,
    ) -> Verb {
        Verb {
            name,
            aliases: &[],
            argument,
            needs_login: true,
            opens_data: false,
            secret: false,
            features: &[],
            needs_tls: false,
            help,
            build,
        }
    }

    const fn aliases(self, aliases: &'static [&'static str]) -> Verb {
        Verb { aliases, ..self }
    }

    const fn before_login(self) -> Verb {
        Verb { needs_login: false, ..self }
    }

    const fn opens_data(self) -> Verb {
        Verb { opens_data: true, ..self }
    }

    const fn secret(self) -> Verb {
        Verb { secret: true, ..self }
    }

    const fn features(self, features: &'static [&'static str]) -> Verb {
        Verb { features, ..self }
    }

    const fn needs_tls(self) -> Verb {
        Verb { needs_tls: true, ..self }
    }

    /// Whether `name` (upper case) is this verb or one of its aliases.
    pub fn is_named(&self, name: &str) -> bool {
        self.name == name || self.aliases.contains(&name)
    }
}

use Argument::{Forbidden, Ignored, Optional, Parsed, Required};

/// Every verb the server implements, in HELP's (alphabetical) order.
#[rustfmt::skip]
pub static VERBS: &[Verb] = &[
    Verb::new("ABOR", Ignored, "ABOR: abort the transfer in progress", |_| Ok(Command::Abor)),
    Verb::new("ADAT", Required, "ADAT <base64>: security data for AUTH GSSAPI", |a| Ok(Command::Adat(a.into())))
        .before_login().secret(),
    Verb::new("ALLO", Ignored, "ALLO: reserve space (not needed here)", |_| Ok(Command::Allo)),
    Verb::new("APPE", Required, "APPE <path>: upload, appending to the file", |a| Ok(Command::Appe(a.into())))
        .opens_data(),
    Verb::new("AUTH", Required, "AUTH TLS | AUTH GSSAPI: TLS, or Kerberos (RFC 2228)",
              |a| Ok(Command::Auth(a.to_ascii_uppercase())))
        .before_login().features(&["AUTH TLS", "AUTH SSL"]).needs_tls(),
    Verb::new("CCC", Forbidden, "CCC: back to clear text (refused)", |_| Ok(Command::Ccc)).before_login(),
    Verb::new("CDUP", Forbidden, "CDUP: go to the parent directory", |_| Ok(Command::Cdup)).aliases(&["XCUP"]),
    Verb::new("CONF", Required, "CONF <base64>: a confidentiality-protected command (refused: GSSAPI has none)",
              |a| Ok(Command::Protected(CommandProtection::Conf, a.into())))
        .before_login().secret(),
    Verb::new("CWD", Required, "CWD <path>: change the working directory", |a| Ok(Command::Cwd(a.into())))
        .aliases(&["XCWD"]),
    Verb::new("DELE", Required, "DELE <path>: delete a file", |a| Ok(Command::Dele(a.into()))),
    Verb::new("ENC", Required, "ENC <base64>: an encrypted command (after AUTH GSSAPI)",
              |a| Ok(Command::Protected(CommandProtection::Enc, a.into())))
        .before_login().secret(),
    Verb::new("EPRT", Parsed, "EPRT |proto|address|port|: connect to the client for the next transfer",
              parse_eprt_command)
        .features(&["EPRT"]),
    Verb::new("EPSV", Parsed, "EPSV [ALL]: listen for the next data connection", parse_epsv).features(&["EPSV"]),
    Verb::new("FEAT", Ignored, "FEAT: list the extensions", |_| Ok(Command::Feat)).before_login(),
    Verb::new("HASH", Required, "HASH <path>: the file's hash, by the algorithm OPTS HASH selects",
              |a| Ok(Command::Hash(a.into())))
        .features(&["HASH"]),
    Verb::new("HELP", Optional, "HELP [verb]: list the commands, or say what one does",
              |a| Ok(Command::Help(optional(a))))
        .before_login(),
    Verb::new("LIST", Optional, "LIST [path]: list a directory, ls -l style", |a| Ok(Command::List(optional(a))))
        .opens_data(),
    Verb::new("MDTM", Required, "MDTM <path>: a file's modification time", |a| Ok(Command::Mdtm(a.into())))
        .features(&["MDTM"]),
    Verb::new("MFMT", Parsed, "MFMT <YYYYMMDDHHMMSS> <path>: set a file's modification time", parse_mfmt)
        .features(&["MFMT"]),
    Verb::new("MIC", Required, "MIC <base64>: an integrity-protected command (after AUTH GSSAPI)",
              |a| Ok(Command::Protected(CommandProtection::Mic, a.into())))
        .before_login().secret(),
    Verb::new("MKD", Required, "MKD <path>: make a directory", |a| Ok(Command::Mkd(a.into()))).aliases(&["XMKD"]),
    Verb::new("MLSD", Optional, "MLSD [path]: list a directory as facts (RFC 3659)",
              |a| Ok(Command::Mlsd(optional(a))))
        .opens_data(),
    Verb::new("MLST", Optional, "MLST [path]: one entry's facts", |a| Ok(Command::Mlst(optional(a))))
        .features(&["MLST"]),
    Verb::new("MODE", Parsed, "MODE S: stream mode (the only one)", parse_mode),
    Verb::new("NLST", Optional, "NLST [path]: list names", |a| Ok(Command::Nlst(optional(a)))).opens_data(),
    Verb::new("NOOP", Ignored, "NOOP: do nothing", |_| Ok(Command::Noop)).before_login(),
    Verb::new("OPTS", Required, "OPTS UTF8 ON | OPTS MLST <facts> | OPTS HASH [name]: set an option", |a| Ok(Command::Opts(a.into())))
        .before_login().features(&["UTF8"]),
    Verb::new("PASS", Optional, "PASS <password>: finish the login", |a| Ok(Command::Pass(a.into())))
        .before_login().secret(),
    Verb::new("PASV", Forbidden, "PASV: listen for the next data connection (IPv4)", |_| Ok(Command::Pasv))
        .features(&["PASV"]),
    Verb::new("PBSZ", Required, "PBSZ 0: protection buffer size (always 0 with TLS)",
              |a| Ok(Command::Pbsz(a.into())))
        .before_login().features(&["PBSZ"]).needs_tls(),
    Verb::new("PORT", Parsed, "PORT h1,h2,h3,h4,p1,p2: connect to the client for the next transfer",
              parse_port_command),
    Verb::new("PROT", Parsed, "PROT C | PROT P: clear or private (TLS) data connections", parse_prot_command)
        .before_login().features(&["PROT"]).needs_tls(),
    Verb::new("PWD", Forbidden, "PWD: print the working directory", |_| Ok(Command::Pwd)).aliases(&["XPWD"]),
    Verb::new("QUIT", Ignored, "QUIT: log out and close", |_| Ok(Command::Quit)).before_login(),
    Verb::new("REST", Parsed, "REST <offset>: the next RETR or STOR starts at this byte", parse_rest)
        .features(&["REST STREAM"]),
    Verb::new("RETR", Required, "RETR <path>: download a file", |a| Ok(Command::Retr(a.into()))).opens_data(),
    Verb::new("RMD", Required, "RMD <path>: remove an empty directory", |a| Ok(Command::Rmd(a.into())))
        .aliases(&["XRMD"]),
    Verb::new("RNFR", Required, "RNFR <path>: rename from (RNTO follows)", |a| Ok(Command::Rnfr(a.into()))),
    Verb::new("RNTO", Required, "RNTO <path>: rename to", |a| Ok(Command::Rnto(a.into()))),
    Verb::new("SITE", Required, "SITE CHMOD | UMASK | IDLE | CHECKSUM | HELP: site commands", |a| Ok(Command::Site(a.into()))),
    Verb::new("SIZE", Required, "SIZE <path>: a file's size", |a| Ok(Command::Size(a.into()))).features(&["SIZE"]),
    Verb::new("STAT", Optional, "STAT [path]: the session's status, or a listing on the control connection",
              |a| Ok(Command::Stat(optional(a)))),
    Verb::new("STOR", Required, "STOR <path>: upload a file", |a| Ok(Command::Stor(a.into()))).opens_data(),
    Verb::new("STOU", Ignored, "STOU: upload to a new, unique name", |_| Ok(Command::Stou)).opens_data(),
    Verb::new("STRU", Parsed, "STRU F: file structure (the only one)", parse_stru),
    Verb::new("SYST", Ignored, "SYST: the system type", |_| Ok(Command::Syst)).before_login(),
    Verb::new("TYPE", Parsed, "TYPE A | TYPE I: ASCII or binary transfers", |a| Ok(Command::Type(parse_type(a)?))),
    Verb::new("USER", Required, "USER <name>: start a login", |a| Ok(Command::User(a.into()))).before_login(),
];

/// The verb of `name` (upper case), aliases included.
pub fn find(name: &str) -> Option<&'static Verb> {
    VERBS.iter().find(|verb| verb.is_named(name))
}

/// Splits a line into its upper-cased verb and its argument (empty when absent).
pub fn split(line: &str) -> (String, &str) {
    let (verb, arg) = line.split_once(' ').unwrap_or((line, ""));
    (verb.to_ascii_uppercase(), arg)
}

/// Parses a line (without its CRLF) into its verb and command. An `Err` is the reply to send instead.
pub fn parse(line: &str) -> Result<(&'static Verb, Command), Reply> {
    let (name, arg) = split(line);
    let Some(verb) = find(&name) else {
        return Err(match name.as_str() {
            "" => Reply::new(SYNTAX_ERROR, "Empty command"),
            known if UNIMPLEMENTED.contains(&known) => Reply::new(NOT_IMPLEMENTED, format!("{known} not implemented")),
            _ => Reply::new(SYNTAX_ERROR, "Unknown command"),
        });
    };
    match verb.argument {
        Forbidden if !arg.is_empty() => Err(Reply::new(SYNTAX_ERROR_ARGS, format!("{name} takes no argument"))),
        Required if arg.is_empty() => Err(Reply::new(SYNTAX_ERROR_ARGS, format!("{name} needs an argument"))),
        _ => Ok((verb, (verb.build)(arg)?)),
    }
}

fn optional(arg: &str) -> Option<String> {
    (!arg.is_empty()).then(|| arg.to_string())
}

fn parse_mfmt(arg: &str) -> Result<Command, Reply> {
    let (time, path) = arg
        .split_once(' ')
        .filter(|(_, path)| !path.is_empty())
        .ok_or_else(|| Reply::new(SYNTAX_ERROR_ARGS, "usage: MFMT YYYYMMDDHHMMSS path"))?;
    Ok(Command::Mfmt { time: time.to_string(), path: path.to_string() })
}

fn parse_rest(arg: &str) -> Result<Command, Reply> {
    let offset = arg.parse().map_err(|_| Reply::new(SYNTAX_ERROR_ARGS, "REST needs a byte offset (0 or more)"))?;
    Ok(Command::Rest(offset))
}

fn parse_mode(arg: &str) -> Result<Command, Reply> {
    match arg.to_ascii_uppercase().as_str() {
        "S" => Ok(Command::Mode),
        _ => Err(Reply::new(NOT_IMPLEMENTED_FOR_PARAM, "Only stream mode (MODE S) is supported")),
    }
}

fn parse_stru(arg: &str) -> Result<Command, Reply> {
    match arg.to_ascii_uppercase().as_str() {
        "F" => Ok(Command::Stru),
        _ => Err(Reply::new(NOT_IMPLEMENTED_FOR_PARAM, "Only file structure (STRU F) is supported")),
    }
}

fn parse_port_command(arg: &str) -> Result<Command, Reply> {
    let target = parse_port(arg).ok_or_else(|| Reply::new(SYNTAX_ERROR_ARGS, "usage: PORT h1,h2,h3,h4,p1,p2"))?;
    Ok(Command::Port(target))
}

fn parse_eprt_command(arg: &str) -> Result<Command, Reply> {
    let target = parse_eprt(arg)
        .ok_or_else(|| Reply::new(SYNTAX_ERROR_ARGS, "usage: EPRT |1|h1.h2.h3.h4|port| or |2|ipv6|port|"))?;
    Ok(Command::Eprt(target))
}

fn parse_epsv(arg: &str) -> Result<Command, Reply> {
    let request = match arg.to_ascii_uppercase().as_str() {
        "" => EpsvRequest::AnyFamily,
        "1" => EpsvRequest::Family(IpFamily::V4),
        "2" => EpsvRequest::Family(IpFamily::V6),
        "ALL" => EpsvRequest::All,
        _ => return Err(Reply::new(NETWORK_PROTOCOL_NOT_SUPPORTED, "Network protocol not supported, use (1,2)")),
    };
    Ok(Command::Epsv(request))
}

fn parse_prot_command(arg: &str) -> Result<Command, Reply> {
    Ok(Command::Prot(parse_prot(arg)?))
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
        "S" => Ok(Protection::Safe),
        "E" => Err(Reply::new(PROT_LEVEL_UNSUPPORTED, "PROT E (confidentiality without integrity) is not offered")),
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

    fn parse(line: &str) -> Result<Command, Reply> {
        super::parse(line).map(|(_, command)| command)
    }

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
        assert_eq!(parse("EPSV").unwrap(), Command::Epsv(EpsvRequest::AnyFamily));
        assert_eq!(parse("EPSV 2").unwrap(), Command::Epsv(EpsvRequest::Family(IpFamily::V6)));
        assert_eq!(parse("epsv all").unwrap(), Command::Epsv(EpsvRequest::All));
        assert_eq!(parse("EPSV 3").unwrap_err().code, NETWORK_PROTOCOL_NOT_SUPPORTED);
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
    fn the_table_names_each_verb_once() {
        let mut names: Vec<&str> =
            VERBS.iter().flat_map(|v| [v.name].into_iter().chain(v.aliases.iter().copied())).collect();
        assert!(names.iter().all(|n| n.chars().all(|c| c.is_ascii_uppercase())), "{names:?}");
        let count = names.len();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), count, "a verb or alias appears twice");
        assert!(VERBS.windows(2).all(|pair| pair[0].name < pair[1].name), "VERBS is in HELP's alphabetical order");
    }

    #[test]
    fn argument_rules_come_from_the_table() {
        assert_eq!(parse("PWD x").unwrap_err().code, SYNTAX_ERROR_ARGS);
        assert_eq!(parse("XPWD x").unwrap_err().lines[0], "XPWD takes no argument");
        assert_eq!(parse("RETR").unwrap_err().lines[0], "RETR needs an argument");
        assert_eq!(parse("QUIT now").unwrap(), Command::Quit);
        assert_eq!(parse("PASS").unwrap(), Command::Pass(String::new()));
        assert_eq!(parse("EPSV 3").unwrap_err().code, NETWORK_PROTOCOL_NOT_SUPPORTED);
        assert_eq!(parse("ACCT x").unwrap_err().code, NOT_IMPLEMENTED);
        let (pass, _) = super::parse("PASS secret").unwrap();
        assert!(pass.secret && !pass.needs_login);
        assert!(find("RETR").unwrap().needs_login && !find("FEAT").unwrap().needs_login);
    }

    #[test]
    fn security_commands() {
        assert_eq!(parse("auth tls").unwrap(), Command::Auth("TLS".into()));
        assert_eq!(parse("PROT p").unwrap(), Command::Prot(Protection::Private));
        assert_eq!(parse("PROT C").unwrap(), Command::Prot(Protection::Clear));
        assert_eq!(parse("PROT S").unwrap(), Command::Prot(Protection::Safe));
        assert_eq!(parse("PROT E").unwrap_err().code, PROT_LEVEL_UNSUPPORTED);
        assert_eq!(parse("mic AbC=").unwrap(), Command::Protected(CommandProtection::Mic, "AbC=".into()));
        assert_eq!(parse("PROT X").unwrap_err().code, NOT_IMPLEMENTED_FOR_PARAM);
        assert_eq!(parse("PBSZ 0").unwrap(), Command::Pbsz("0".into()));
        assert!(parse("CCC x").is_err());
        assert!(find("STOU").unwrap().opens_data && !find("PWD").unwrap().opens_data);
    }
}
