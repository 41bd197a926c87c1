//! Virtual paths: what a client names, resolved against its working directory and confined to its root.
//!
//! A [`VPath`] is always absolute and normalised (`/`, `/a/b`): no `.`, `..`, empty components, NUL, CR
//! or LF. `..` at the root stays at the root, so no name a client sends can leave its home; backends
//! join a `VPath` under the user's home and add their own checks (symlinks on local disk).

use std::fmt;

/// Longest name of one path component: Linux's NAME_MAX and HDFS's default
/// `dfs.namenode.fs-limits.max-component-length`, so every backend refuses alike.
const MAX_NAME_BYTES: usize = 255;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct VPath(String);

/// Why a client's path was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadPath(pub &'static str);

impl VPath {
    pub fn root() -> VPath {
        VPath("/".to_string())
    }

    /// Resolves `name` (absolute, or relative to `self`) to a normalised path.
    pub fn resolve(&self, name: &str) -> Result<VPath, BadPath> {
        // SECURITY: confinement: NUL/CR/LF refused and `..` stops at the root, so no name leaves
        // the home (SECURITY.md, Confinement).
        if name.contains(['\0', '\r', '\n']) {
            return Err(BadPath("file names may not contain NUL, CR or LF"));
        }
        if name.split('/').any(|part| part.len() > MAX_NAME_BYTES) {
            return Err(BadPath("file names are limited to 255 bytes"));
        }
        let mut parts: Vec<&str> = if name.starts_with('/') { Vec::new() } else { self.components().collect() };
        for part in name.split('/') {
            match part {
                "" | "." => {}
                ".." => {
                    parts.pop();
                }
                other => parts.push(other),
            }
        }
        Ok(VPath(format!("/{}", parts.join("/"))))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn is_root(&self) -> bool {
        self.0 == "/"
    }

    /// The path's names, outermost first; none for the root.
    pub fn components(&self) -> impl Iterator<Item = &str> {
        self.0.split('/').filter(|c| !c.is_empty())
    }

    /// The last name; `None` for the root.
    pub fn file_name(&self) -> Option<&str> {
        self.components().last()
    }

    pub fn join(&self, name: &str) -> Result<VPath, BadPath> {
        if name.contains('/') || name == ".." || name == "." || name.is_empty() {
            return Err(BadPath("not a plain file name"));
        }
        self.resolve(name)
    }

    /// The path relative to the root (no leading slash): what a backend appends to the home.
    pub fn relative(&self) -> &str {
        &self.0[1..]
    }
}

impl fmt::Display for VPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(path: &str) -> VPath {
        VPath::root().resolve(path).unwrap()
    }

    #[test]
    fn resolves_relative_and_absolute_names() {
        assert_eq!(at("/a/b").resolve("c").unwrap().as_str(), "/a/b/c");
        assert_eq!(at("/a/b").resolve("/c//d/./").unwrap().as_str(), "/c/d");
        assert_eq!(at("/a/b").resolve("../c").unwrap().as_str(), "/a/c");
    }

    #[test]
    fn dot_dot_never_leaves_the_root() {
        assert!(at("/../../etc/passwd").as_str() == "/etc/passwd");
        assert!(at("/a").resolve("../../../..").unwrap().is_root());
        assert_eq!(at("/").resolve("..").unwrap(), VPath::root());
    }

    #[test]
    fn control_characters_are_refused() {
        assert!(VPath::root().resolve("a\rb").is_err());
        assert!(VPath::root().resolve("a\nb").is_err());
        assert!(VPath::root().resolve("a\0b").is_err());
        assert!(VPath::root().resolve(&"n".repeat(256)).is_err());
        assert!(VPath::root().resolve(&"n".repeat(255)).is_ok());
    }

    #[test]
    fn join_takes_plain_names_only() {
        assert!(VPath::root().join("..").is_err());
        assert!(VPath::root().join("a/b").is_err());
        assert_eq!(VPath::root().join("x").unwrap().as_str(), "/x");
        assert_eq!(at("/a/b").file_name(), Some("b"));
        assert_eq!(at("/a/b").relative(), "a/b");
    }
}
