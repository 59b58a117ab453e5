//! The drive's file tree as nested directories, checked once for every format.
//!
//! Both writers take a flat [`DriveTree`] (path to bytes); this module turns it into
//! a hierarchy with entries sorted by name, and rejects what no format can hold: an
//! empty, absolute or `..` component, a name longer than Joliet and VFAT allow, a path
//! that is both a file and a directory, too deep a tree. It does no I/O.

use bytes::Bytes;
use compute::metadata::DriveTree;
use std::collections::BTreeMap;

/// The longest name of one entry, in UTF-16 units: Joliet's limit (VFAT allows 255).
pub const MAX_NAME_UTF16: usize = 64;
/// The deepest directory nesting: ISO9660 allows 8 levels, the root included.
pub const MAX_DEPTH: usize = 8;
/// The longest path, in bytes (ISO9660's limit on a path, separators included).
pub const MAX_PATH_LEN: usize = 255;
/// The most entries a drive may hold (a bound, not a format limit).
pub const MAX_ENTRIES: usize = 65_536;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TreeError {
    #[error("drive path `{path}` is not relative to the drive root or has an empty component")]
    NotRelative { path: String },
    #[error("drive path `{path}` contains `.` or `..`")]
    DotComponent { path: String },
    #[error("name `{name}` in drive path `{path}` is longer than {MAX_NAME_UTF16} characters")]
    NameTooLong { path: String, name: String },
    #[error("drive path `{path}` is longer than {MAX_PATH_LEN} bytes")]
    PathTooLong { path: String },
    #[error("drive path `{path}` is nested deeper than {MAX_DEPTH} levels")]
    TooDeep { path: String },
    #[error("drive path `{path}` is both a file and a directory")]
    FileAndDirectory { path: String },
    #[error("name `{name}` contains a character no drive format can store (NUL, `/`, `\\` or a control character)")]
    BadCharacter { name: String },
    #[error("the drive holds more than {MAX_ENTRIES} entries")]
    TooManyEntries,
}

/// One directory: sub-directories and files, each sorted by name.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DirNode {
    pub dirs: BTreeMap<String, DirNode>,
    pub files: BTreeMap<String, Bytes>,
}

impl DirNode {
    /// Builds the hierarchy from a flat tree, checking every path.
    pub fn from_tree(tree: &DriveTree) -> Result<DirNode, TreeError> {
        let mut root = DirNode::default();
        let mut entries = 0usize;
        for (path, bytes) in tree {
            let parts = split(path)?;
            let (name, dirs) = parts
                .split_last()
                .ok_or_else(|| TreeError::NotRelative { path: path.clone() })?;
            let mut dir = &mut root;
            for (i, part) in dirs.iter().enumerate() {
                if dir.files.contains_key(*part) {
                    return Err(TreeError::FileAndDirectory {
                        path: dirs[..=i].join("/"),
                    });
                }
                if !dir.dirs.contains_key(*part) {
                    entries += 1;
                }
                dir = dir.dirs.entry((*part).to_owned()).or_default();
            }
            if dir.dirs.contains_key(*name) {
                return Err(TreeError::FileAndDirectory { path: path.clone() });
            }
            dir.files.insert((*name).to_owned(), bytes.clone());
            entries += 1;
            if entries > MAX_ENTRIES {
                return Err(TreeError::TooManyEntries);
            }
        }
        Ok(root)
    }

    /// Sub-directories below this one, itself excluded.
    pub fn count_dirs(&self) -> usize {
        self.dirs.values().map(|d| 1 + d.count_dirs()).sum()
    }
}

fn split(path: &str) -> Result<Vec<&str>, TreeError> {
    if path.len() > MAX_PATH_LEN {
        return Err(TreeError::PathTooLong {
            path: path.to_owned(),
        });
    }
    let parts: Vec<&str> = path.split('/').collect();
    if parts.iter().any(|p| p.is_empty()) {
        return Err(TreeError::NotRelative {
            path: path.to_owned(),
        });
    }
    if parts.iter().any(|p| *p == "." || *p == "..") {
        return Err(TreeError::DotComponent {
            path: path.to_owned(),
        });
    }
    if parts.len() > MAX_DEPTH {
        return Err(TreeError::TooDeep {
            path: path.to_owned(),
        });
    }
    for p in &parts {
        if p.encode_utf16().count() > MAX_NAME_UTF16 {
            return Err(TreeError::NameTooLong {
                path: path.to_owned(),
                name: (*p).to_owned(),
            });
        }
        if p.chars().any(|c| c.is_control() || c == '\\') {
            return Err(TreeError::BadCharacter {
                name: (*p).to_owned(),
            });
        }
    }
    Ok(parts)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(paths: &[&str]) -> DriveTree {
        paths
            .iter()
            .map(|p| (p.to_string(), Bytes::from_static(b"x")))
            .collect()
    }

    #[test]
    fn builds_nested_dirs() {
        let root = DirNode::from_tree(&tree(&["a/b/c", "a/d", "e"])).unwrap();
        assert_eq!(root.count_dirs(), 2);
        assert!(root.files.contains_key("e"));
        assert!(root.dirs["a"].dirs["b"].files.contains_key("c"));
    }

    #[test]
    fn rejects_bad_paths() {
        let bad = |p: &str| DirNode::from_tree(&tree(&[p])).unwrap_err();
        assert!(matches!(bad("/etc/passwd"), TreeError::NotRelative { .. }));
        assert!(matches!(bad("a//b"), TreeError::NotRelative { .. }));
        assert!(matches!(bad("a/../b"), TreeError::DotComponent { .. }));
        assert!(matches!(
            bad(&"n".repeat(65)),
            TreeError::NameTooLong { .. }
        ));
        assert!(matches!(
            bad("a/b/c/d/e/f/g/h/i"),
            TreeError::TooDeep { .. }
        ));
        assert!(matches!(bad("a\nb"), TreeError::BadCharacter { .. }));
    }

    #[test]
    fn rejects_file_and_dir_at_one_path() {
        let err = DirNode::from_tree(&tree(&["a", "a/b"])).unwrap_err();
        assert_eq!(err, TreeError::FileAndDirectory { path: "a".into() });
    }
}
