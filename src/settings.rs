//! The settings machinery: every setting has one name, used both as a `--flag` and as a `key = value`
//! line of the `--config` file (flags win). Each concern declares its settings once, as typed constants
//! ([`Setting`]) holding the name, the value hint, the help and the default, lists their [`Flag`]s in a
//! table, and reads them with [`Settings::get`]: a misspelt name does not compile, and `--help` shows the
//! default the value is read with. The composition root (lib.rs) hands the tables to
//! [`parse_command_line`]. This module knows no feature.

use std::collections::HashMap;
use std::fmt;
use std::marker::PhantomData;
use std::net::IpAddr;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arity {
    /// A switch: `--name` on the command line, `name = yes|no` in the file.
    Switch,
    /// One value; the last one given wins.
    Value,
    /// Repeatable; flags replace the file's values.
    Repeated,
}

/// What a table lists of a setting: its name, how many values it takes, a value hint, a line of help
/// and its default.
#[derive(Debug, Clone, Copy)]
pub struct Flag {
    name: &'static str,
    arity: Arity,
    hint: &'static str,
    help: &'static str,
    /// The text read when the setting is not given, parsed as a given value is.
    default: Option<&'static str>,
    /// What `--help` shows in brackets: the default, or how the concern computes it.
    shown: Option<&'static str>,
    /// Whether a text is a value of the setting's type.
    check: fn(&str) -> std::result::Result<(), String>,
}

impl Flag {
    #[cfg(test)]
    pub const fn name(&self) -> &'static str {
        self.name
    }

    /// The default value as a config file would write it (`None`: absent, or computed by the concern).
    #[cfg(test)]
    pub const fn default(&self) -> Option<&'static str> {
        self.default
    }

    /// Checks that `text` is a value of this setting, as a config file line would give it.
    pub fn check(&self, text: &str) -> Result<()> {
        (self.check)(text).map_err(|message| self.error(message))
    }

    /// An error about this setting's value.
    pub fn error(&self, message: impl Into<String>) -> ConfigError {
        ConfigError::new(self.name, message)
    }

    const fn new<T: Parse>(name: &'static str, arity: Arity, hint: &'static str, help: &'static str) -> Flag {
        Flag { name, arity, hint, help, default: None, shown: None, check: check::<T> }
    }
}

fn check<T: Parse>(text: &str) -> std::result::Result<(), String> {
    T::parse(text).map(drop)
}

/// A type a setting's text is read as; the error message quotes the text.
pub trait Parse: Sized {
    fn parse(text: &str) -> std::result::Result<Self, String>;
}

/// [`Parse`] through `FromStr`, for the types that have it.
pub fn from_str<T: FromStr>(text: &str) -> std::result::Result<T, String>
where
    T::Err: fmt::Display,
{
    text.parse().map_err(|e| format!("'{text}': {e}"))
}

macro_rules! parse_from_str {
    ($($t:ty),*) => {$(
        impl Parse for $t {
            fn parse(text: &str) -> std::result::Result<Self, String> {
                from_str(text)
            }
        }
    )*};
}
parse_from_str!(u16, u32, usize, String, PathBuf, IpAddr);

/// yes/no (true/false, on/off, 1/0).
impl Parse for bool {
    fn parse(text: &str) -> std::result::Result<Self, String> {
        match text.to_ascii_lowercase().as_str() {
            "yes" | "true" | "on" | "1" => Ok(true),
            "no" | "false" | "off" | "0" => Ok(false),
            _ => Err(format!("'{text}' is not yes or no")),
        }
    }
}

/// Seconds, fractions allowed.
impl Parse for Duration {
    fn parse(text: &str) -> std::result::Result<Self, String> {
        let secs: f64 = from_str(text)?;
        Duration::try_from_secs_f64(secs).map_err(|_| format!("'{text}' is not a duration"))
    }
}

/// One setting, read by [`Settings::get`] as a `T`: a plain type for a value with a default (a switch
/// is a `bool`), `Option<_>` for a value without one, `Vec<_>` for a repeatable setting.
pub struct Setting<T> {
    flag: Flag,
    read_as: PhantomData<fn() -> T>,
}

/// A switch: `--name`, or `name = yes|no` in the file; no by default.
pub const fn switch(name: &'static str, help: &'static str) -> Setting<bool> {
    let flag = Flag { default: Some("no"), ..Flag::new::<bool>(name, Arity::Switch, "", help) };
    Setting { flag, read_as: PhantomData }
}

/// One value, `default` when not given; `--help` shows the default in brackets.
pub const fn value<T: Parse>(
    name: &'static str,
    hint: &'static str,
    default: &'static str,
    help: &'static str,
) -> Setting<T> {
    let flag = Flag { default: Some(default), shown: Some(default), ..Flag::new::<T>(name, Arity::Value, hint, help) };
    Setting { flag, read_as: PhantomData }
}

/// One value, or none.
pub const fn optional<T: Parse>(name: &'static str, hint: &'static str, help: &'static str) -> Setting<Option<T>> {
    Setting { flag: Flag::new::<T>(name, Arity::Value, hint, help), read_as: PhantomData }
}

/// Any number of values.
pub const fn repeated<T: Parse>(name: &'static str, hint: &'static str, help: &'static str) -> Setting<Vec<T>> {
    Setting { flag: Flag::new::<T>(name, Arity::Repeated, hint, help), read_as: PhantomData }
}

impl<T> Setting<T> {
    /// What the setting's table lists.
    pub const fn flag(&self) -> Flag {
        self.flag
    }

    /// Shows `text` in brackets in `--help`: how a default the concern computes is found, or a default
    /// said in words.
    pub const fn shown_as(mut self, text: &'static str) -> Self {
        self.flag.shown = Some(text);
        self
    }

    /// An error about this setting's value.
    pub fn error(&self, message: impl Into<String>) -> ConfigError {
        self.flag.error(message)
    }
}

impl<T> Setting<Vec<T>> {
    /// The one value read when none is given; `--help` shows it in brackets.
    pub const fn default(mut self, text: &'static str) -> Self {
        self.flag.default = Some(text);
        self.flag.shown = Some(text);
        self
    }
}

/// A type [`Settings::get`] reads a setting as, from the texts given (or the default).
pub trait Value: Sized {
    fn read(flag: &Flag, given: &[String]) -> Result<Self>;
}

/// The last text given, else the default, as a `T` (only [`value`] and [`switch`] make a setting read so,
/// and both give a default).
pub fn read_one<T: Parse>(flag: &Flag, given: &[String]) -> Result<T> {
    let text = given.last().map(String::as_str).or(flag.default).unwrap_or_default();
    T::parse(text).map_err(|message| flag.error(message))
}

macro_rules! single_values {
    ($($t:ty),*) => {$(
        impl Value for $t {
            fn read(flag: &Flag, given: &[String]) -> Result<Self> {
                read_one(flag, given)
            }
        }
    )*};
}
single_values!(bool, u16, u32, usize, String, PathBuf, Duration);

impl<T: Parse> Value for Option<T> {
    fn read(flag: &Flag, given: &[String]) -> Result<Self> {
        given.last().map(|text| T::parse(text).map_err(|message| flag.error(message))).transpose()
    }
}

impl<T: Parse> Value for Vec<T> {
    fn read(flag: &Flag, given: &[String]) -> Result<Self> {
        let texts: Vec<&str> = match given {
            [] => flag.default.into_iter().collect(),
            given => given.iter().map(String::as_str).collect(),
        };
        texts.into_iter().map(|text| T::parse(text).map_err(|message| flag.error(message))).collect()
    }
}

/// Command-line-only flags: they steer the program, they are not configuration.
const META_FLAGS: &[Flag] = &[
    optional::<PathBuf>("config", "FILE", "read settings from FILE (key = value lines, # comments); flags win").flag(),
    switch("check-config", "check the configuration, print it and exit (0 when valid)").flag(),
    switch("who", "list the running daemon's sessions (through --status-socket) and exit").flag(),
    switch("json", "with --who: one JSON object per session and line").flag(),
    switch("help", "print this help and exit").flag(),
    switch("version", "print the version and exit").flag(),
];

/// A settings table and its `--help` heading.
pub type FlagGroup = (&'static str, &'static [Flag]);

/// The command-line-only flags, then the program's tables.
fn all_groups(groups: &[FlagGroup]) -> Vec<FlagGroup> {
    std::iter::once(("General", META_FLAGS)).chain(groups.iter().copied()).collect()
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub key: String,
    pub message: String,
}

impl ConfigError {
    pub fn new(key: &str, message: impl Into<String>) -> Self {
        ConfigError { key: key.to_string(), message: message.into() }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.key.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.key, self.message)
        }
    }
}

impl std::error::Error for ConfigError {}

pub type Result<T> = std::result::Result<T, ConfigError>;

/// Raw settings merged from the config file and the command line, read by typed getters that name the
/// offending key in their errors.
#[derive(Debug, Default)]
pub struct Settings {
    values: HashMap<String, Vec<String>>,
}

impl Settings {
    /// Parses `key = value` lines of the settings in `groups`; unknown keys and command-line-only keys
    /// are errors.
    pub fn from_file_text(text: &str, origin: &str, groups: &[FlagGroup]) -> Result<Settings> {
        let all = all_groups(groups);
        let flag = |key: &str| all.iter().flat_map(|(_, flags)| flags.iter()).find(|f| f.name == key);
        let mut settings = Settings::default();
        for (index, raw) in text.lines().enumerate() {
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let at = format!("{origin} line {}", index + 1);
            let (key, value) = line.split_once('=').ok_or_else(|| ConfigError::new(&at, "expected 'key = value'"))?;
            let (key, value) = (key.trim(), value.trim());
            let Some(flag) = flag(key) else {
                return Err(ConfigError::new(key, format!("unknown setting ({at})")));
            };
            if META_FLAGS.iter().any(|f| f.name == key) {
                return Err(flag.error(format!("only valid on the command line ({at})")));
            }
            // Checked here too, so a bad value is reported with its line.
            flag.check(value).map_err(|e| flag.error(format!("{} ({at})", e.message)))?;
            match flag.arity {
                Arity::Repeated => settings.values.entry(key.to_string()).or_default().push(value.to_string()),
                _ => {
                    settings.values.insert(key.to_string(), vec![value.to_string()]);
                }
            }
        }
        Ok(settings)
    }

    /// Lays command-line values over these: a given flag replaces the file's value(s).
    fn overlay(&mut self, matches: &getopts::Matches, groups: &[FlagGroup]) {
        for flag in all_groups(groups).iter().flat_map(|(_, flags)| flags.iter()) {
            let given = match flag.arity {
                Arity::Switch if matches.opt_present(flag.name) => vec!["yes".to_string()],
                Arity::Switch => continue,
                Arity::Value => matches.opt_str(flag.name).into_iter().collect(),
                Arity::Repeated => matches.opt_strs(flag.name),
            };
            if !given.is_empty() {
                self.values.insert(flag.name.to_string(), given);
            }
        }
    }

    /// Reads `setting`: its value, or its default, as its type; an error names the setting.
    pub fn get<T: Value>(&self, setting: &Setting<T>) -> Result<T> {
        T::read(&setting.flag, self.values.get(setting.flag.name).map(Vec::as_slice).unwrap_or_default())
    }

    /// Reads a setting that this use cannot do without.
    pub fn require<T: Parse>(&self, setting: &Setting<Option<T>>, why: &str) -> Result<T> {
        self.get(setting)?.ok_or_else(|| setting.error(format!("required {why}")))
    }

    /// The text given for `flag` (the last one), if any.
    pub fn given(&self, flag: &Flag) -> Option<&str> {
        self.values.get(flag.name).and_then(|v| v.last()).map(String::as_str)
    }
}

/// What the command line asks the program to do.
pub enum Invocation {
    Help(String),
    Version,
    Run { settings: Settings, action: Action },
}

/// What to do with the settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Serve,
    CheckConfig,
    Who { json: bool },
}

/// Parses the command line (and the `--config` file it names) for the settings in `groups`.
pub fn parse_command_line(args: &[String], groups: &[FlagGroup]) -> Result<Invocation> {
    let options = options(groups);
    let matches = options.parse(args).map_err(|e| ConfigError::new("", e.to_string()))?;
    if let Some(stray) = matches.free.first() {
        return Err(ConfigError::new("", format!("unexpected argument '{stray}'")));
    }
    if matches.opt_present("help") {
        return Ok(Invocation::Help(help_text(groups)));
    }
    if matches.opt_present("version") {
        return Ok(Invocation::Version);
    }
    let mut settings = match matches.opt_str("config") {
        Some(file) => {
            let text =
                std::fs::read_to_string(&file).map_err(|e| ConfigError::new("config", format!("{file}: {e}")))?;
            Settings::from_file_text(&text, &file, groups)?
        }
        None => Settings::default(),
    };
    settings.overlay(&matches, groups);
    let action = match (matches.opt_present("check-config"), matches.opt_present("who")) {
        (true, true) => return Err(ConfigError::new("who", "--who and --check-config exclude each other")),
        (true, false) => Action::CheckConfig,
        (false, true) => Action::Who { json: matches.opt_present("json") },
        (false, false) if matches.opt_present("json") => return Err(ConfigError::new("json", "is for --who")),
        (false, false) => Action::Serve,
    };
    Ok(Invocation::Run { settings, action })
}

fn options(groups: &[FlagGroup]) -> getopts::Options {
    let mut options = getopts::Options::new();
    for flag in all_groups(groups).iter().flat_map(|(_, flags)| flags.iter()) {
        match flag.arity {
            Arity::Switch => options.optflag("", flag.name, flag.help),
            Arity::Value => options.optopt("", flag.name, flag.help, flag.hint),
            Arity::Repeated => options.optmulti("", flag.name, flag.help, flag.hint),
        };
    }
    options
}

/// `--help`: every flag of every table, under its heading.
pub fn help_text(groups: &[FlagGroup]) -> String {
    let mut text = format!(
        "hdfsftpd {} - FTP/FTPS gateway to HDFS with Kerberos login\n\n\
         Usage: hdfsftpd [FLAGS]\n\n\
         Every setting can also be a 'name = value' line in the --config file; flags win.\n\
         Switches take yes/no in the file. Defaults are in brackets.\n",
        env!("CARGO_PKG_VERSION")
    );
    for (heading, flags) in all_groups(groups) {
        text.push_str(&format!("\n{heading}:\n"));
        for flag in flags {
            let left = format!("--{} {}", flag.name, flag.hint);
            let shown = flag.shown.map(|text| format!(" [{text}]")).unwrap_or_default();
            text.push_str(&format!("  {:<28} {}{shown}\n", left.trim_end(), flag.help));
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAX_CLIENTS: Setting<usize> = value("max-clients", "N", "16", "sessions");
    const MAX_PER_IP: Setting<Option<usize>> =
        optional("max-per-ip", "N", "per address").shown_as("half of --max-clients");
    const BIND: Setting<Vec<IpAddr>> = repeated("bind", "ADDR", "addresses").default("0.0.0.0");
    const NAME: Setting<Vec<String>> = repeated("name", "NAME", "names");
    const DAEMON: Setting<bool> = switch("daemon", "detach");
    const ENABLE: Setting<bool> = value("enable", "yes|no", "yes", "run at all");
    const TIMEOUT: Setting<Duration> = value("timeout", "SECS", "2.5", "limit");
    const TEST_FLAGS: &[Flag] = &[
        MAX_CLIENTS.flag(),
        MAX_PER_IP.flag(),
        BIND.flag(),
        NAME.flag(),
        DAEMON.flag(),
        ENABLE.flag(),
        TIMEOUT.flag(),
    ];
    const GROUPS: &[FlagGroup] = &[("Test", TEST_FLAGS)];

    fn file(text: &str) -> Settings {
        Settings::from_file_text(text, "f", GROUPS).unwrap()
    }

    #[test]
    fn file_keys_and_flags_merge_with_flags_winning() {
        let text = "# c\nmax-clients=4\n bind = ::1 \nbind=127.0.0.1\ndaemon = yes\nname = a\n";
        let mut settings = file(text);
        assert_eq!(settings.get(&BIND).unwrap(), ["::1".parse::<IpAddr>().unwrap(), [127, 0, 0, 1].into()]);
        let matches = options(GROUPS).parse(["--max-clients", "9", "--name", "b", "--name", "c"]).unwrap();
        settings.overlay(&matches, GROUPS);
        assert_eq!(settings.get(&MAX_CLIENTS).unwrap(), 9);
        assert_eq!(settings.get(&NAME).unwrap(), ["b", "c"]);
        assert!(settings.get(&DAEMON).unwrap());
    }

    #[test]
    fn absent_settings_read_as_their_defaults() {
        let settings = Settings::default();
        assert_eq!(settings.get(&MAX_CLIENTS).unwrap(), 16);
        assert_eq!(settings.get(&MAX_PER_IP).unwrap(), None);
        assert_eq!(settings.get(&BIND).unwrap(), [IpAddr::from([0, 0, 0, 0])]);
        assert!(settings.get(&NAME).unwrap().is_empty());
        assert!(!settings.get(&DAEMON).unwrap());
        assert!(settings.get(&ENABLE).unwrap());
        assert_eq!(settings.get(&TIMEOUT).unwrap(), Duration::from_millis(2500));
        assert_eq!(settings.require(&MAX_PER_IP, "here").unwrap_err().to_string(), "max-per-ip: required here");
    }

    #[test]
    fn given_values_are_read_as_their_types() {
        let settings = file("max-per-ip = 3\nenable = off\ntimeout = 0.25\ndaemon = no");
        assert_eq!(settings.get(&MAX_PER_IP).unwrap(), Some(3));
        assert_eq!(settings.require(&MAX_PER_IP, "here").unwrap(), 3);
        assert!(!settings.get(&ENABLE).unwrap());
        assert!(!settings.get(&DAEMON).unwrap());
        assert_eq!(settings.get(&TIMEOUT).unwrap(), Duration::from_millis(250));
        assert_eq!(settings.given(&TIMEOUT.flag()), Some("0.25"));
        assert_eq!(settings.given(&MAX_CLIENTS.flag()), None);
    }

    fn command_line(args: &[&str]) -> Result<Settings> {
        let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        match parse_command_line(&args, GROUPS)? {
            Invocation::Run { settings, .. } => Ok(settings),
            _ => panic!("not a run"),
        }
    }

    #[test]
    fn errors_name_the_offending_key() {
        let from_file = |text| Settings::from_file_text(text, "f", GROUPS).unwrap_err().to_string();
        assert_eq!(from_file("no-such-key = 1"), "no-such-key: unknown setting (f line 1)");
        assert_eq!(from_file("config = x"), "config: only valid on the command line (f line 1)");
        assert_eq!(from_file("\nbind"), "f line 2: expected 'key = value'");
        assert_eq!(from_file("max-clients = abc"), "max-clients: 'abc': invalid digit found in string (f line 1)");
        assert_eq!(from_file("bind = ::1\nbind = x"), "bind: 'x': invalid IP address syntax (f line 2)");
        assert_eq!(from_file("daemon = maybe"), "daemon: 'maybe' is not yes or no (f line 1)");
        let read = |args: &[&str], get: fn(&Settings) -> Result<()>| get(&command_line(args).unwrap()).unwrap_err();
        assert_eq!(read(&["--max-clients", "x"], |s| s.get(&MAX_CLIENTS).map(drop)).key, "max-clients");
        assert_eq!(read(&["--max-per-ip", "-1"], |s| s.get(&MAX_PER_IP).map(drop)).key, "max-per-ip");
        assert_eq!(
            read(&["--bind", "::1", "--bind", "x"], |s| s.get(&BIND).map(drop)).to_string(),
            "bind: 'x': invalid IP address syntax"
        );
        assert_eq!(
            read(&["--enable", "maybe"], |s| s.get(&ENABLE).map(drop)).to_string(),
            "enable: 'maybe' is not yes or no"
        );
        assert_eq!(
            read(&["--timeout", "-1"], |s| s.get(&TIMEOUT).map(drop)).to_string(),
            "timeout: '-1' is not a duration"
        );
    }

    #[test]
    fn arity_is_kept_on_the_command_line() {
        let args = |args: &[&str]| args.iter().map(|a| a.to_string()).collect::<Vec<_>>();
        assert!(parse_command_line(&args(&["--daemon", "yes"]), GROUPS).is_err(), "a switch takes no value");
        assert!(parse_command_line(&args(&["--max-clients"]), GROUPS).is_err(), "a value is needed");
        assert!(parse_command_line(&args(&["--max-clients", "1", "--max-clients", "2"]), GROUPS).is_err());
        let Invocation::Run { settings, .. } =
            parse_command_line(&args(&["--bind", "::1", "--bind", "::2"]), GROUPS).unwrap()
        else {
            panic!("not a run")
        };
        assert_eq!(settings.get(&BIND).unwrap().len(), 2);
    }

    #[test]
    fn help_shows_each_flag_with_its_default() {
        let help = help_text(GROUPS);
        for flag in all_groups(GROUPS).iter().flat_map(|(_, f)| f.iter()) {
            assert!(help.contains(&format!("--{}", flag.name)), "{} missing from --help", flag.name);
        }
        assert!(help.contains("  --max-clients N              sessions [16]\n"), "{help}");
        assert!(help.contains("  --max-per-ip N               per address [half of --max-clients]\n"), "{help}");
        assert!(help.contains("  --bind ADDR                  addresses [0.0.0.0]\n"), "{help}");
        assert!(help.contains("  --daemon                     detach\n"), "{help}");
    }
}
