//! The settings machinery: every setting has one name, used both as a `--flag` and as a `key = value`
//! line of the `--config` file (flags win). Each concern declares its own settings in a [`Flag`] table and
//! reads them from [`Settings`]; the composition root (lib.rs) hands the tables to
//! [`parse_command_line`]. This module knows no feature.

use std::collections::HashMap;
use std::fmt;
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

/// One setting: its name, how many values it takes, a value hint and a line of help.
pub struct Flag {
    pub name: &'static str,
    pub arity: Arity,
    pub hint: &'static str,
    pub help: &'static str,
}

pub const fn switch(name: &'static str, help: &'static str) -> Flag {
    Flag { name, arity: Arity::Switch, hint: "", help }
}

pub const fn value(name: &'static str, hint: &'static str, help: &'static str) -> Flag {
    Flag { name, arity: Arity::Value, hint, help }
}

pub const fn repeated(name: &'static str, hint: &'static str, help: &'static str) -> Flag {
    Flag { name, arity: Arity::Repeated, hint, help }
}

/// Command-line-only flags: they steer the program, they are not configuration.
const META_FLAGS: &[Flag] = &[
    value("config", "FILE", "read settings from FILE (key = value lines, # comments); flags win"),
    switch("check-config", "check the configuration, print it and exit (0 when valid)"),
    switch("who", "list the running daemon's sessions (through --status-socket) and exit"),
    switch("json", "with --who: one JSON object per session and line"),
    switch("help", "print this help and exit"),
    switch("version", "print the version and exit"),
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
        let arity = |key: &str| {
            all_groups(groups).iter().flat_map(|(_, flags)| flags.iter()).find(|f| f.name == key).map(|f| f.arity)
        };
        let mut settings = Settings::default();
        for (index, raw) in text.lines().enumerate() {
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let at = format!("{origin} line {}", index + 1);
            let (key, value) = line.split_once('=').ok_or_else(|| ConfigError::new(&at, "expected 'key = value'"))?;
            let (key, value) = (key.trim(), value.trim());
            match arity(key) {
                Some(_) if META_FLAGS.iter().any(|f| f.name == key) => {
                    return Err(ConfigError::new(key, format!("only valid on the command line ({at})")));
                }
                Some(Arity::Repeated) => settings.values.entry(key.to_string()).or_default().push(value.to_string()),
                Some(_) => {
                    settings.values.insert(key.to_string(), vec![value.to_string()]);
                }
                None => return Err(ConfigError::new(key, format!("unknown setting ({at})"))),
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

    pub fn string(&self, key: &str) -> Option<&str> {
        self.values.get(key).and_then(|v| v.last()).map(String::as_str)
    }

    pub fn strings(&self, key: &str) -> &[String] {
        self.values.get(key).map(Vec::as_slice).unwrap_or(&[])
    }

    pub fn switch(&self, key: &str) -> Result<bool> {
        self.yes_no(key, false)
    }

    /// A yes/no value, or `default` when the setting is absent.
    pub fn yes_no(&self, key: &str, default: bool) -> Result<bool> {
        match self.string(key) {
            None => Ok(default),
            Some(v) => parse_bool(v).ok_or_else(|| ConfigError::new(key, format!("'{v}' is not yes or no"))),
        }
    }

    /// A parsed value, or `default` when the setting is absent.
    pub fn parsed<T: FromStr>(&self, key: &str, default: T) -> Result<T>
    where
        T::Err: fmt::Display,
    {
        match self.string(key) {
            None => Ok(default),
            Some(v) => v.parse().map_err(|e| ConfigError::new(key, format!("'{v}': {e}"))),
        }
    }

    pub fn seconds(&self, key: &str, default: f64) -> Result<Duration> {
        let secs: f64 = self.parsed(key, default)?;
        Duration::try_from_secs_f64(secs).map_err(|_| ConfigError::new(key, format!("'{secs}' is not a duration")))
    }

    pub fn path(&self, key: &str) -> Option<PathBuf> {
        self.string(key).map(PathBuf::from)
    }

    pub fn required_path(&self, key: &str, why: &str) -> Result<PathBuf> {
        self.path(key).ok_or_else(|| ConfigError::new(key, format!("required {why}")))
    }
}

fn parse_bool(value: &str) -> Option<bool> {
    match value.to_ascii_lowercase().as_str() {
        "yes" | "true" | "on" | "1" => Some(true),
        "no" | "false" | "off" | "0" => Some(false),
        _ => None,
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
            text.push_str(&format!("  {:<28} {}\n", left.trim_end(), flag.help));
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEST_FLAGS: &[Flag] =
        &[value("max-clients", "N", "sessions"), repeated("bind", "ADDR", "addresses"), switch("daemon", "detach")];
    const GROUPS: &[FlagGroup] = &[("Test", TEST_FLAGS)];

    #[test]
    fn file_keys_and_flags_merge_with_flags_winning() {
        let text = "# c\nmax-clients=4\n bind = ::1 \nbind=127.0.0.1\ndaemon = yes\n";
        let mut settings = Settings::from_file_text(text, "f", GROUPS).unwrap();
        assert_eq!(settings.strings("bind"), ["::1", "127.0.0.1"]);
        let matches = options(GROUPS).parse(["--max-clients", "9"]).unwrap();
        settings.overlay(&matches, GROUPS);
        assert_eq!(settings.parsed("max-clients", 0).unwrap(), 9);
        assert!(settings.switch("daemon").unwrap());
    }

    #[test]
    fn errors_name_the_offending_key() {
        assert_eq!(Settings::from_file_text("no-such-key = 1", "f", GROUPS).unwrap_err().key, "no-such-key");
        assert_eq!(Settings::from_file_text("config = x", "f", GROUPS).unwrap_err().key, "config");
        let settings = Settings::from_file_text("max-clients = abc", "f", GROUPS).unwrap();
        assert_eq!(settings.parsed("max-clients", 0usize).unwrap_err().key, "max-clients");
    }

    #[test]
    fn help_lists_every_flag() {
        let help = help_text(GROUPS);
        for flag in all_groups(GROUPS).iter().flat_map(|(_, f)| f.iter()) {
            assert!(help.contains(&format!("--{}", flag.name)), "{} missing from --help", flag.name);
        }
    }
}
