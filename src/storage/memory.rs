//! An in-memory storage for tests and fuzzing: one tree of files and directories in a map, shared by
//! every session of the backend, each session confined to its home (`/<user>` unless the identity names
//! another). It keeps the contract the session relies on (errors by kind, REST offsets, STOU's
//! create-new) and nothing of a real file system's timing or limits.

use std::collections::BTreeMap;
use std::io::{self, Cursor, Write};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use super::{
    check_restart_offset, Backend, DirEntry, Error, ErrorKind, FileType, Listing, Metadata, OpenedFile, ReadFile,
    Result, Storage, WriteFile, WriteMode,
};
use crate::auth::Identity;
use crate::locks;
use crate::vpath::VPath;

#[derive(Clone)]
enum Content {
    File(Vec<u8>),
    Dir,
}

#[derive(Clone)]
struct Node {
    content: Content,
    mode: u32,
    modified: SystemTime,
}

/// Full paths (`/alice/a/b`) to nodes; `/` is always there.
type Tree = Arc<Mutex<BTreeMap<String, Node>>>;

/// A backend whose files live in memory.
pub struct MemoryBackend {
    tree: Tree,
}

impl MemoryBackend {
    /// An empty tree with a home directory for each of `users`.
    pub fn with_homes(users: &[&str]) -> MemoryBackend {
        let backend = MemoryBackend { tree: Tree::default() };
        let mut tree = locks::lock(&backend.tree);
        tree.insert("/".into(), Node::dir(0o755));
        for user in users {
            tree.insert(format!("/{user}"), Node::dir(0o755));
        }
        drop(tree);
        backend
    }
}

impl Node {
    fn dir(mode: u32) -> Node {
        Node { content: Content::Dir, mode, modified: SystemTime::now() }
    }

    fn metadata(&self) -> Metadata {
        let (file_type, size) = match &self.content {
            Content::File(bytes) => (FileType::File, bytes.len() as u64),
            Content::Dir => (FileType::Dir, 0),
        };
        let (owner, group) = ("memory".to_string(), "memory".to_string());
        Metadata {
            file_type,
            size,
            modified: self.modified,
            mode: self.mode,
            owner,
            group,
            links: 1,
            replication: None,
        }
    }
}

impl Backend for MemoryBackend {
    fn name(&self) -> &'static str {
        "memory"
    }

    fn open_session(&self, identity: &Identity) -> Result<Box<dyn Storage>> {
        let home = identity.home.clone().unwrap_or_else(|| format!("/{}", identity.user));
        let home = VPath::root().resolve(&home).map_err(|e| Error::new(ErrorKind::NotFound, e.0))?;
        match locks::lock(&self.tree).get(home.as_str()) {
            Some(Node { content: Content::Dir, .. }) => {}
            _ => return Err(Error::new(ErrorKind::NotFound, "home directory does not exist")),
        }
        Ok(Box::new(MemoryStorage { tree: Arc::clone(&self.tree), home }))
    }
}

/// One session's view: its home's subtree.
struct MemoryStorage {
    tree: Tree,
    home: VPath,
}

fn not_found() -> Error {
    Error::new(ErrorKind::NotFound, "No such file or directory")
}

fn wrong_type(what: &str) -> Error {
    Error::new(ErrorKind::WrongType, what)
}

impl MemoryStorage {
    /// The tree's key of a path under the home.
    fn key(&self, path: &VPath) -> String {
        match (self.home.is_root(), path.is_root()) {
            (_, true) => self.home.to_string(),
            (true, false) => path.to_string(),
            (false, false) => format!("{}{}", self.home, path),
        }
    }

    /// The key of `path`'s parent, which must be an existing directory.
    fn parent_dir(&self, tree: &BTreeMap<String, Node>, key: &str) -> Result<()> {
        let parent = match key.rfind('/') {
            Some(0) => "/",
            Some(at) => &key[..at],
            None => return Err(not_found()),
        };
        match tree.get(parent) {
            Some(Node { content: Content::Dir, .. }) => Ok(()),
            Some(_) => Err(wrong_type("Not a directory")),
            None => Err(not_found()),
        }
    }

    fn with_node<T>(&self, path: &VPath, f: impl FnOnce(&mut Node) -> Result<T>) -> Result<T> {
        let key = self.key(path);
        f(locks::lock(&self.tree).get_mut(&key).ok_or_else(not_found)?)
    }
}

/// The keys strictly below `dir`.
fn children<'a>(tree: &'a BTreeMap<String, Node>, dir: &'a str) -> impl Iterator<Item = (&'a String, &'a Node)> {
    let prefix = if dir == "/" { String::from("/") } else { format!("{dir}/") };
    tree.range(prefix.clone()..)
        .take_while(move |(key, _)| key.starts_with(&prefix))
        .filter(move |(key, _)| key.as_str() != dir)
}

impl Storage for MemoryStorage {
    fn metadata(&self, path: &VPath) -> Result<Metadata> {
        self.with_node(path, |node| Ok(node.metadata()))
    }

    fn list(&self, path: &VPath) -> Result<Listing> {
        let key = self.key(path);
        let tree = locks::lock(&self.tree);
        match tree.get(&key) {
            Some(Node { content: Content::Dir, .. }) => {}
            Some(_) => return Err(wrong_type("Not a directory")),
            None => return Err(not_found()),
        }
        let depth = if key == "/" { 1 } else { key.matches('/').count() + 1 };
        let entries: Vec<Result<DirEntry>> = children(&tree, &key)
            .filter(|(child, _)| child.matches('/').count() == depth)
            .map(|(child, node)| {
                let name = child.rsplit('/').next().unwrap_or_default().to_string();
                Ok(DirEntry { name, metadata: node.metadata() })
            })
            .collect();
        Ok(Box::new(entries.into_iter()))
    }

    fn open_read(&self, path: &VPath, offset: u64) -> Result<OpenedFile> {
        let bytes = self.with_node(path, |node| match &node.content {
            Content::File(bytes) => Ok(bytes.clone()),
            Content::Dir => Err(wrong_type("Is a directory")),
        })?;
        let size = bytes.len() as u64;
        check_restart_offset(offset, size)?;
        let mut file = Cursor::new(bytes);
        file.set_position(offset);
        Ok(OpenedFile { file: Box::new(MemoryReader(file)), size })
    }

    fn open_write(&self, path: &VPath, how: WriteMode, mode: u32) -> Result<Box<dyn WriteFile>> {
        let key = self.key(path);
        let mut tree = locks::lock(&self.tree);
        self.parent_dir(&tree, &key)?;
        let existing = match tree.get(&key) {
            Some(Node { content: Content::Dir, .. }) => return Err(wrong_type("Is a directory")),
            Some(Node { content: Content::File(bytes), .. }) => Some(bytes.clone()),
            None => None,
        };
        let start = match (how, existing) {
            (WriteMode::CreateNew, Some(_)) => return Err(Error::new(ErrorKind::AlreadyExists, "File exists")),
            (WriteMode::Truncate | WriteMode::CreateNew, _) | (WriteMode::Append, None) => Vec::new(),
            (WriteMode::Append, Some(bytes)) => bytes,
            (WriteMode::At(offset), bytes) => {
                let mut bytes = bytes.unwrap_or_default();
                check_restart_offset(offset, bytes.len() as u64)?;
                bytes.truncate(offset as usize);
                bytes
            }
        };
        let node = Node { content: Content::File(start.clone()), mode, modified: SystemTime::now() };
        tree.insert(key.clone(), node);
        Ok(Box::new(MemoryWriter { tree: Arc::clone(&self.tree), key, bytes: start }))
    }

    fn make_dir(&self, path: &VPath, mode: u32) -> Result<()> {
        let key = self.key(path);
        let mut tree = locks::lock(&self.tree);
        self.parent_dir(&tree, &key)?;
        if tree.contains_key(&key) {
            return Err(Error::new(ErrorKind::AlreadyExists, "File exists"));
        }
        tree.insert(key, Node::dir(mode));
        Ok(())
    }

    fn remove_dir(&self, path: &VPath) -> Result<()> {
        let key = self.key(path);
        let mut tree = locks::lock(&self.tree);
        match tree.get(&key) {
            Some(Node { content: Content::Dir, .. }) => {}
            Some(_) => return Err(wrong_type("Not a directory")),
            None => return Err(not_found()),
        }
        if path.is_root() {
            return Err(Error::new(ErrorKind::PermissionDenied, "cannot remove the home directory"));
        }
        if children(&tree, &key).next().is_some() {
            return Err(Error::new(ErrorKind::NotEmpty, "Directory not empty"));
        }
        tree.remove(&key);
        Ok(())
    }

    fn remove_file(&self, path: &VPath) -> Result<()> {
        let key = self.key(path);
        let mut tree = locks::lock(&self.tree);
        match tree.get(&key) {
            Some(Node { content: Content::File(_), .. }) => {
                tree.remove(&key);
                Ok(())
            }
            Some(_) => Err(wrong_type("Is a directory")),
            None => Err(not_found()),
        }
    }

    fn rename(&self, from: &VPath, to: &VPath) -> Result<()> {
        let (from, to) = (self.key(from), self.key(to));
        let mut tree = locks::lock(&self.tree);
        if !tree.contains_key(&from) || from == self.home.as_str() {
            return Err(not_found());
        }
        self.parent_dir(&tree, &to)?;
        if tree.contains_key(&to) {
            return Err(Error::new(ErrorKind::AlreadyExists, "File exists"));
        }
        if to.starts_with(&format!("{from}/")) {
            return Err(Error::new(ErrorKind::InvalidName, "cannot move a directory into itself"));
        }
        let moved: Vec<String> = children(&tree, &from).map(|(key, _)| key.clone()).chain([from.clone()]).collect();
        for old in moved {
            let node = tree.remove(&old).expect("listed above");
            tree.insert(format!("{to}{}", &old[from.len()..]), node);
        }
        Ok(())
    }

    fn set_mode(&self, path: &VPath, mode: u32) -> Result<()> {
        self.with_node(path, |node| {
            node.mode = mode & 0o7777;
            Ok(())
        })
    }

    fn set_modified(&self, path: &VPath, modified: SystemTime) -> Result<()> {
        self.with_node(path, |node| {
            node.modified = modified;
            Ok(())
        })
    }
}

struct MemoryReader(Cursor<Vec<u8>>);

impl io::Read for MemoryReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.read(buf)
    }
}

impl ReadFile for MemoryReader {}

/// Writes into its own buffer, stored into the tree as it grows (a partial upload stays, as on disk).
struct MemoryWriter {
    tree: Tree,
    key: String,
    bytes: Vec<u8>,
}

impl Write for MemoryWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.bytes.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        if let Some(node) = locks::lock(&self.tree).get_mut(&self.key) {
            node.content = Content::File(self.bytes.clone());
            node.modified = SystemTime::now();
        }
        Ok(())
    }
}

impl Drop for MemoryWriter {
    fn drop(&mut self) {
        let _ = self.flush();
    }
}

impl WriteFile for MemoryWriter {
    fn finish(mut self: Box<Self>) -> Result<()> {
        Ok(self.flush()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn session(backend: &MemoryBackend, user: &str) -> Box<dyn Storage> {
        let identity = Identity { user: user.into(), home: None, writable: true, anonymous: false, credentials: None };
        backend.open_session(&identity).unwrap()
    }

    fn at(path: &str) -> VPath {
        VPath::root().resolve(path).unwrap()
    }

    fn names(storage: &dyn Storage, path: &str) -> Vec<String> {
        storage.list(&at(path)).unwrap().map(|entry| entry.unwrap().name).collect()
    }

    #[test]
    fn files_round_trip_and_sessions_are_confined_to_their_homes() {
        let backend = MemoryBackend::with_homes(&["alice", "bob"]);
        let (alice, bob) = (session(&backend, "alice"), session(&backend, "bob"));
        alice.make_dir(&at("/d"), 0o755).unwrap();
        let mut file = alice.open_write(&at("/d/f"), WriteMode::Truncate, 0o644).unwrap();
        file.write_all(b"hello world").unwrap();
        file.finish().unwrap();
        let mut text = String::new();
        alice.open_read(&at("/d/f"), 6).unwrap().file.read_to_string(&mut text).unwrap();
        assert_eq!(text, "world");
        assert_eq!(names(&*alice, "/"), ["d"]);
        assert_eq!(names(&*alice, "/d"), ["f"]);
        assert!(names(&*bob, "/").is_empty());
        assert_eq!(bob.metadata(&at("/d")).unwrap_err().kind, ErrorKind::NotFound);
    }

    #[test]
    fn errors_come_by_kind() {
        let backend = MemoryBackend::with_homes(&["alice"]);
        let alice = session(&backend, "alice");
        alice.make_dir(&at("/d"), 0o755).unwrap();
        alice.open_write(&at("/d/f"), WriteMode::CreateNew, 0o644).unwrap().finish().unwrap();
        let kind = |result: Result<()>| result.unwrap_err().kind;
        assert_eq!(kind(alice.remove_dir(&at("/d"))), ErrorKind::NotEmpty);
        assert_eq!(kind(alice.make_dir(&at("/d"), 0o755)), ErrorKind::AlreadyExists);
        assert_eq!(kind(alice.make_dir(&at("/x/y"), 0o755)), ErrorKind::NotFound);
        assert_eq!(kind(alice.remove_file(&at("/d"))), ErrorKind::WrongType);
        assert_eq!(kind(alice.open_read(&at("/d/f"), 1).map(drop)), ErrorKind::InvalidOffset);
        assert_eq!(
            kind(alice.open_write(&at("/d/f"), WriteMode::CreateNew, 0o644).map(drop)),
            ErrorKind::AlreadyExists
        );
        alice.rename(&at("/d"), &at("/e")).unwrap();
        assert_eq!(names(&*alice, "/e"), ["f"]);
        alice.remove_file(&at("/e/f")).unwrap();
        alice.remove_dir(&at("/e")).unwrap();
        assert!(names(&*alice, "/").is_empty());
    }
}
