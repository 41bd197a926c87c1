//! Names an operator keeps out of listings (`--hide-name`, vsftpd's hide_file) or out of reach
//! altogether (`--deny-name`, vsftpd's deny_file, ProFTPD's PathDenyFilter): shell patterns (`*`, `?`,
//! `[a-z]`, `[!x]`) matched against each component of a path, so `.Trash` or `_temporary` is caught at
//! any depth and `*.tmp` in any directory.

use crate::settings::{ConfigError, Setting};
use crate::vpath::VPath;

#[derive(Debug, Clone, Default)]
/// Each pattern as characters, so matching a name decodes no pattern again.
pub struct NamePatterns(Vec<Vec<char>>);

impl NamePatterns {
    /// Checks each pattern of `setting`: a pattern names one path component, so it holds no `/`.
    pub fn parse(setting: &Setting<Vec<String>>, patterns: &[String]) -> Result<NamePatterns, ConfigError> {
        for pattern in patterns {
            if pattern.is_empty() || pattern.contains('/') {
                return Err(setting.error(format!("'{pattern}': a pattern is one name, without '/'")));
            }
            if !brackets_balanced(pattern) {
                return Err(setting.error(format!("'{pattern}': '[' without its ']'")));
            }
        }
        Ok(NamePatterns(patterns.iter().map(|pattern| pattern.chars().collect()).collect()))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn matches(&self, name: &str) -> bool {
        let name: Vec<char> = name.chars().collect();
        self.0.iter().any(|pattern| glob(pattern, &name))
    }

    /// The first component of `path` a pattern matches.
    pub fn first_match<'p>(&self, path: &'p VPath) -> Option<&'p str> {
        path.components().find(|component| self.matches(component))
    }
}

fn brackets_balanced(pattern: &str) -> bool {
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        if c == '[' && !chars.by_ref().skip(1).any(|c| c == ']') {
            return false;
        }
    }
    true
}

/// fnmatch(3) without flags: `*` any run, `?` one character, `[...]` a class (`!` or `^` negates, `a-z`
/// ranges). A `*` backtracks to the latest star only, which is enough for these patterns.
fn glob(pattern: &[char], name: &[char]) -> bool {
    let (mut p, mut n) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while n < name.len() {
        match pattern.get(p) {
            Some('*') => {
                star = Some((p, n));
                p += 1;
                continue;
            }
            Some('?') => {
                (p, n) = (p + 1, n + 1);
                continue;
            }
            Some('[') => {
                if let Some((matched, next)) = class(pattern, p, name[n]) {
                    if matched {
                        (p, n) = (next, n + 1);
                        continue;
                    }
                }
            }
            Some(&c) if c == name[n] => {
                (p, n) = (p + 1, n + 1);
                continue;
            }
            _ => {}
        }
        match star {
            Some((star_p, star_n)) => {
                star = Some((star_p, star_n + 1));
                (p, n) = (star_p + 1, star_n + 1);
            }
            None => return false,
        }
    }
    pattern[p..].iter().all(|&c| c == '*')
}

/// Whether `c` is in the class that opens at `pattern[open]`, and where the class ends.
fn class(pattern: &[char], open: usize, c: char) -> Option<(bool, usize)> {
    let mut i = open + 1;
    let negated = matches!(pattern.get(i), Some('!') | Some('^'));
    if negated {
        i += 1;
    }
    let mut found = false;
    let mut first = true;
    while let Some(&start) = pattern.get(i) {
        if start == ']' && !first {
            return Some((found != negated, i + 1));
        }
        first = false;
        if pattern.get(i + 1) == Some(&'-') && pattern.get(i + 2).is_some_and(|&end| end != ']') {
            found |= (start..=pattern[i + 2]).contains(&c);
            i += 3;
        } else {
            found |= start == c;
            i += 1;
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::repeated;

    const PATTERNS: Setting<Vec<String>> = repeated("name", "PATTERN", "patterns");

    fn patterns(list: &[&str]) -> NamePatterns {
        NamePatterns::parse(&PATTERNS, &list.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap()
    }

    #[test]
    fn shell_patterns() {
        let p = patterns(&["*.tmp", ".Trash", "_temp?rary", "[._]hidden*", "[!a-z]x"]);
        for name in ["a.tmp", ".tmp", "x.y.tmp", ".Trash", "_temporary", "_tempXrary", ".hidden", "_hidden.d", "1x"] {
            assert!(p.matches(name), "{name} should match");
        }
        for name in ["a.tmpx", "Trash", ".Trash2", "_temprary", "hidden", "ax", "x", ""] {
            assert!(!p.matches(name), "{name} should not match");
        }
        assert!(patterns(&["a*b*c"]).matches("aXbYbZc"));
        assert!(!patterns(&["a*b*c"]).matches("aXbYbZ"));
    }

    #[test]
    fn a_path_matches_through_any_component() {
        let p = patterns(&["_temporary"]);
        let path = VPath::root().resolve("/out/_temporary/0/part-0").unwrap();
        assert_eq!(p.first_match(&path), Some("_temporary"));
        assert_eq!(p.first_match(&VPath::root().resolve("/out/part-0").unwrap()), None);
    }

    #[test]
    fn bad_patterns_are_refused_with_the_key() {
        for bad in ["", "a/b", "[abc"] {
            let error = NamePatterns::parse(&PATTERNS, &[bad.to_string()]).unwrap_err();
            assert_eq!(error.key, PATTERNS.flag().name(), "{bad}");
        }
    }
}
