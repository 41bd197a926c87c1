//! Confinement of local paths: where a path under the home leads once its symlinks are followed.
//!
//! realpath(3) would give the same answer, but it readlinks every component from `/`, the home's own
//! (already canonical) prefix included, on every call; this walks only what lies below the home.

use std::ffi::OsString;
use std::fs;
use std::io;
use std::path::{Component, Path, PathBuf};

/// Symlinks followed in one resolution before giving up, as the kernel does (its MAXSYMLINKS).
const MAX_LINKS: usize = 40;

/// Where a path under the home leads.
#[derive(Debug, PartialEq, Eq)]
pub enum Resolution {
    /// The real path (or, for a name that does not exist yet, its real parent joined with the name) lies
    /// under the home.
    Inside(PathBuf),
    /// The path, or the parent of a new name, leads outside the home.
    Outside,
    /// A directory on the way (still under the home) does not exist: the operation itself will report
    /// not-found.
    MissingParent,
}

/// Resolves `relative` (components below `home`; `home` is canonical) like realpath(3): a symlink's
/// relative target continues from the link's directory, an absolute one from `/`, and `..` pops the
/// previously resolved component. A last component that does not exist (a new name, or a dangling link's
/// target) is judged by its parent. One `read_link` per component: EINVAL says it is not a link.
// SECURITY: confinement: only a path whose real location lies under the home is Inside; a symlink out
// (absolute, via `..`, or through a chain) is Outside, never followed.
pub fn resolve(home: &Path, relative: &Path) -> io::Result<Resolution> {
    let mut resolved = home.to_path_buf();
    let mut pending = Vec::new();
    push_front(&mut pending, relative);
    let mut links = 0;
    while let Some(step) = pending.pop() {
        let name = match step {
            Step::Name(name) => name,
            Step::Parent => {
                resolved.pop();
                continue;
            }
            Step::Root => {
                resolved = PathBuf::from("/");
                continue;
            }
        };
        resolved.push(&name);
        match fs::read_link(&resolved) {
            Err(e) if e.kind() == io::ErrorKind::InvalidInput => {} // not a link
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                resolved.pop();
                return Ok(if !resolved.starts_with(home) {
                    Resolution::Outside
                } else if pending.is_empty() {
                    Resolution::Inside(resolved.join(name))
                } else {
                    Resolution::MissingParent
                });
            }
            Err(e) => return Err(e),
            Ok(target) => {
                links += 1;
                if links > MAX_LINKS {
                    return Err(io::Error::other("Too many levels of symbolic links"));
                }
                resolved.pop();
                match target.strip_prefix(home) {
                    // The home is canonical: an absolute target under it need not be walked from `/`.
                    Ok(below) => {
                        resolved = home.to_path_buf();
                        push_front(&mut pending, below);
                    }
                    Err(_) => push_front(&mut pending, &target),
                }
            }
        }
    }
    Ok(if resolved.starts_with(home) { Resolution::Inside(resolved) } else { Resolution::Outside })
}

/// One step of the walk, owned: link targets splice their own steps in ahead of the rest.
enum Step {
    Name(OsString),
    Parent,
    Root,
}

/// Queues `path`'s steps to be walked before those already pending (`pending` is a stack).
fn push_front(pending: &mut Vec<Step>, path: &Path) {
    pending.extend(path.components().rev().filter_map(|component| match component {
        Component::Normal(name) => Some(Step::Name(name.to_os_string())),
        Component::ParentDir => Some(Step::Parent),
        Component::RootDir => Some(Step::Root),
        Component::CurDir | Component::Prefix(_) => None,
    }));
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A fresh directory holding `home/` (canonical) and `outside/`, removed when dropped.
    struct Tree {
        base: PathBuf,
        home: PathBuf,
    }

    impl Tree {
        fn new() -> Tree {
            static COUNT: AtomicUsize = AtomicUsize::new(0);
            let name = format!("hdfsftpd-confine-{}-{}", std::process::id(), COUNT.fetch_add(1, Ordering::Relaxed));
            let base = fs::canonicalize(std::env::temp_dir()).unwrap().join(name);
            fs::create_dir_all(base.join("home/a/b")).unwrap();
            fs::create_dir_all(base.join("outside")).unwrap();
            fs::write(base.join("home/f.bin"), b"in").unwrap();
            fs::write(base.join("home/a/b/deep.txt"), b"deep").unwrap();
            fs::write(base.join("outside/secret"), b"out").unwrap();
            Tree { home: base.join("home"), base }
        }

        fn link(&self, target: impl AsRef<Path>, at: &str) {
            symlink(target, self.home.join(at)).unwrap();
        }

        fn resolve(&self, relative: &str) -> io::Result<Resolution> {
            resolve(&self.home, Path::new(relative))
        }

        fn inside(&self, real: &str) -> Resolution {
            Resolution::Inside(self.home.join(real))
        }
    }

    impl Drop for Tree {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.base);
        }
    }

    #[test]
    fn plain_files_and_nested_directories_are_themselves() {
        let tree = Tree::new();
        assert_eq!(tree.resolve("").unwrap(), Resolution::Inside(tree.home.clone()));
        assert_eq!(tree.resolve("f.bin").unwrap(), tree.inside("f.bin"));
        assert_eq!(tree.resolve("a/b/deep.txt").unwrap(), tree.inside("a/b/deep.txt"));
    }

    #[test]
    fn a_relative_link_inside_is_followed() {
        let tree = Tree::new();
        tree.link("b/deep.txt", "a/rel");
        tree.link("a/b", "dir");
        assert_eq!(tree.resolve("a/rel").unwrap(), tree.inside("a/b/deep.txt"));
        assert_eq!(tree.resolve("dir/deep.txt").unwrap(), tree.inside("a/b/deep.txt"));
    }

    #[test]
    fn an_absolute_link_inside_is_followed() {
        let tree = Tree::new();
        tree.link(tree.home.join("a/b/deep.txt"), "abs");
        assert_eq!(tree.resolve("abs").unwrap(), tree.inside("a/b/deep.txt"));
    }

    #[test]
    fn an_absolute_link_through_a_symlinked_prefix_back_into_the_home_is_followed() {
        let tree = Tree::new();
        symlink(&tree.home, tree.base.join("outside/to-home")).unwrap();
        tree.link(tree.base.join("outside/to-home/f.bin"), "roundabout");
        assert_eq!(tree.resolve("roundabout").unwrap(), tree.inside("f.bin"));
    }

    #[test]
    fn links_out_of_the_home_are_outside() {
        let tree = Tree::new();
        tree.link(tree.base.join("outside/secret"), "abs-out");
        tree.link("../outside/secret", "rel-out");
        tree.link("../../outside", "a/dir-out");
        tree.link(tree.home.join("../outside"), "abs-dotdot-out");
        tree.link("/", "root");
        assert_eq!(tree.resolve("abs-out").unwrap(), Resolution::Outside);
        assert_eq!(tree.resolve("rel-out").unwrap(), Resolution::Outside);
        assert_eq!(tree.resolve("a/dir-out/secret").unwrap(), Resolution::Outside);
        assert_eq!(tree.resolve("a/dir-out/new-name").unwrap(), Resolution::Outside);
        assert_eq!(tree.resolve("abs-dotdot-out/secret").unwrap(), Resolution::Outside);
        assert_eq!(tree.resolve("root").unwrap(), Resolution::Outside);
    }

    #[test]
    fn a_chain_of_links_is_followed_to_its_end() {
        let tree = Tree::new();
        tree.link("f.bin", "one");
        tree.link("one", "a/two"); // relative to a/: a/one does not exist
        tree.link("../one", "a/three");
        tree.link(tree.home.join("a/three"), "four");
        tree.link("../outside/secret", "out");
        tree.link("out", "via-out");
        assert_eq!(tree.resolve("four").unwrap(), tree.inside("f.bin"));
        assert_eq!(tree.resolve("a/two").unwrap(), tree.inside("a/one"));
        assert_eq!(tree.resolve("via-out").unwrap(), Resolution::Outside);
    }

    #[test]
    fn a_loop_ends_in_an_error() {
        let tree = Tree::new();
        tree.link("ping", "pong");
        tree.link("pong", "ping");
        tree.link("self", "self");
        for looping in ["ping", "self", "ping/below"] {
            let err = tree.resolve(looping).unwrap_err();
            assert!(err.to_string().contains("Too many levels of symbolic links"), "{looping}: {err}");
        }
    }

    #[test]
    fn a_dangling_link_is_judged_by_its_targets_parent() {
        let tree = Tree::new();
        tree.link("a/not-yet", "dangling");
        tree.link(tree.base.join("outside/not-yet"), "dangling-out");
        tree.link("missing-dir/x", "dangling-deep");
        tree.link(tree.base.join("outside/missing-dir/x"), "dangling-deep-out");
        assert_eq!(tree.resolve("dangling").unwrap(), tree.inside("a/not-yet"));
        assert_eq!(tree.resolve("dangling-out").unwrap(), Resolution::Outside);
        assert_eq!(tree.resolve("dangling-deep").unwrap(), Resolution::MissingParent);
        assert_eq!(tree.resolve("dangling-deep-out").unwrap(), Resolution::Outside);
    }

    #[test]
    fn a_new_name_is_judged_by_its_parent() {
        let tree = Tree::new();
        assert_eq!(tree.resolve("new.bin").unwrap(), tree.inside("new.bin"));
        assert_eq!(tree.resolve("a/b/new.bin").unwrap(), tree.inside("a/b/new.bin"));
        assert_eq!(tree.resolve("missing/new.bin").unwrap(), Resolution::MissingParent);
        assert_eq!(tree.resolve("missing/deeper/new.bin").unwrap(), Resolution::MissingParent);
    }

    #[test]
    fn dotdot_in_a_target_pops_the_resolved_component() {
        let tree = Tree::new();
        // a/up -> b/.. : `..` pops b, leaving a.
        tree.link("b/..", "a/up");
        // bdir -> a/b; bdir/../f.bin is a/f.bin after resolving (realpath), not f.bin (lexically).
        tree.link("a/b", "bdir");
        tree.link("../bdir/../b/deep.txt", "a/twisty");
        assert_eq!(tree.resolve("a/up/b/deep.txt").unwrap(), tree.inside("a/b/deep.txt"));
        assert_eq!(tree.resolve("a/twisty").unwrap(), tree.inside("a/b/deep.txt"));
        assert_eq!(tree.resolve("bdir/../f.bin").unwrap(), tree.inside("a/f.bin"));
    }

    #[test]
    fn a_file_used_as_a_directory_is_an_error() {
        let tree = Tree::new();
        let err = tree.resolve("f.bin/x").unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotADirectory);
    }

    #[test]
    fn every_existing_inside_answer_is_realpaths() {
        let tree = Tree::new();
        tree.link("b/deep.txt", "a/rel");
        tree.link(tree.home.join("a"), "abs-dir");
        tree.link("../../a/./b/..", "a/b/back");
        for relative in ["f.bin", "a/rel", "abs-dir/rel", "abs-dir/b/back/b/deep.txt", "a/b/back/rel"] {
            let expected = Resolution::Inside(fs::canonicalize(tree.home.join(relative)).unwrap());
            assert_eq!(tree.resolve(relative).unwrap(), expected, "{relative}");
        }
    }
}
