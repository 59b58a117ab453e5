//! [`FsRoot`]: every file the agent writes or reads for the guest goes through here.
//!
//! Paths from metadata are absolute guest paths. They are resolved under the root the
//! way a chroot would: `..` in a metadata path is refused outright, and a symlink met
//! on the way (absolute, or relative with `..`) is followed *inside* the root, never
//! out of it. Files are written through [`super::files::GuestFiles`], which resolves
//! here and replaces them with `compute_io`'s [`FileBatch`](compute_io::atomic::FileBatch).

use std::fs;
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};

const MAX_SYMLINK_HOPS: usize = 40;
const MAX_PATH_BYTES: usize = 4096;
/// Guest files the agent reads back (passwd, shadow, hosts, authorized_keys).
pub const MAX_READ_BYTES: u64 = 4 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum RootError {
    #[error("`{0}` is not an absolute path")]
    NotAbsolute(String),
    #[error("`{0}` contains `..`; refused")]
    DotDot(String),
    #[error("`{0}` is too long or contains a NUL byte")]
    BadPath(String),
    #[error("`{0}`: more than {MAX_SYMLINK_HOPS} symlinks")]
    SymlinkLoop(String),
    #[error("cannot {action} {path}")]
    Io {
        action: &'static str,
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} exists and is not a folder")]
    NotAFolder { path: String },
    #[error("{path} resolves outside the root")]
    Outside { path: String },
    #[error("{0} is larger than {MAX_READ_BYTES} bytes")]
    TooLarge(String),
}

/// Ownership and mode of something written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attrs {
    pub mode: u32,
    /// `(uid, gid)`; `None` keeps whoever creates it.
    pub owner: Option<(u32, u32)>,
}

#[derive(Debug, Clone)]
pub struct FsRoot {
    root: PathBuf,
}

fn io<'a>(action: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> RootError + 'a {
    move |source| RootError::Io {
        action,
        path: path.display().to_string(),
        source,
    }
}

impl FsRoot {
    pub fn new(root: &Path) -> Result<Self, RootError> {
        let root = fs::canonicalize(root).map_err(io("find the root folder", root))?;
        Ok(FsRoot { root })
    }

    pub fn path(&self) -> &Path {
        &self.root
    }

    /// The host path for a guest path, resolved inside the root.
    pub fn resolve(&self, guest: &str) -> Result<PathBuf, RootError> {
        if guest.len() > MAX_PATH_BYTES || guest.contains('\0') {
            return Err(RootError::BadPath(guest.chars().take(100).collect()));
        }
        let p = Path::new(guest);
        if !p.is_absolute() {
            return Err(RootError::NotAbsolute(guest.into()));
        }
        if p.components().any(|c| c == Component::ParentDir) {
            return Err(RootError::DotDot(guest.into()));
        }
        // Components still to walk, last first; `resolved` stays inside the root.
        let mut todo: Vec<std::ffi::OsString> = normal_parts(p).into_iter().rev().collect();
        let mut resolved: Vec<std::ffi::OsString> = Vec::new();
        let mut hops = 0;
        while let Some(part) = todo.pop() {
            let candidate = self.join(&resolved).join(&part);
            match fs::symlink_metadata(&candidate) {
                Ok(m) if m.file_type().is_symlink() => {
                    hops += 1;
                    if hops > MAX_SYMLINK_HOPS {
                        return Err(RootError::SymlinkLoop(guest.into()));
                    }
                    let target =
                        fs::read_link(&candidate).map_err(io("read the symlink", &candidate))?;
                    if target.is_absolute() {
                        resolved.clear();
                    }
                    for c in target.components().rev() {
                        match c {
                            Component::Normal(n) => todo.push(n.to_owned()),
                            Component::ParentDir => todo.push("..".into()),
                            _ => {}
                        }
                    }
                }
                _ if part == ".." => {
                    // Only from symlink targets: clamp at the root, like a chroot.
                    resolved.pop();
                }
                _ => resolved.push(part),
            }
        }
        Ok(self.join(&resolved))
    }

    fn join(&self, parts: &[std::ffi::OsString]) -> PathBuf {
        let mut p = self.root.clone();
        p.extend(parts);
        p
    }

    /// Creates the folders of a guest path (resolved in the root), new ones with
    /// `attrs`. Returns the host folders it created, parents first.
    pub fn create_dirs(&self, guest_dir: &str, attrs: Attrs) -> Result<Vec<PathBuf>, RootError> {
        let mut created = Vec::new();
        let mut current = String::new();
        for part in guest_dir.split('/').filter(|p| !p.is_empty()) {
            current.push('/');
            current.push_str(part);
            let host = self.resolve(&current)?;
            match fs::symlink_metadata(&host) {
                Ok(m) if m.is_dir() => continue,
                Ok(_) => {
                    return Err(RootError::NotAFolder {
                        path: host.display().to_string(),
                    })
                }
                Err(_) => {
                    // `host` is resolved, so every folder between the root and it is
                    // real (no symlink) or missing; missing ones are made here, one
                    // at a time so that each can be reported.
                    if !host.starts_with(&self.root) {
                        return Err(RootError::Outside {
                            path: host.display().to_string(),
                        });
                    }
                    let missing: Vec<&Path> = host
                        .ancestors()
                        .take_while(|a| *a != self.root && fs::symlink_metadata(a).is_err())
                        .collect();
                    for dir in missing.into_iter().rev() {
                        fs::create_dir(dir).map_err(io("create the folder", dir))?;
                        set_attrs(dir, attrs)?;
                        created.push(dir.to_path_buf());
                    }
                }
            }
        }
        Ok(created)
    }

    /// Reads a guest file; `None` when it does not exist.
    pub fn read(&self, guest: &str) -> Result<Option<Vec<u8>>, RootError> {
        let host = self.resolve(guest)?;
        let file = match fs::File::open(&host) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io("open", &host)(e)),
        };
        let mut buf = Vec::new();
        file.take(MAX_READ_BYTES + 1)
            .read_to_end(&mut buf)
            .map_err(io("read", &host))?;
        if buf.len() as u64 > MAX_READ_BYTES {
            return Err(RootError::TooLarge(guest.into()));
        }
        Ok(Some(buf))
    }

    /// Sets mode and owner of an existing guest file or folder when they differ.
    /// Returns the host path when it changed something.
    pub fn write_attrs(&self, guest: &str, attrs: Attrs) -> Result<Option<PathBuf>, RootError> {
        let host = self.resolve(guest)?;
        if self
            .attrs_of(guest)
            .is_some_and(|now| same_attrs(now, attrs))
        {
            return Ok(None);
        }
        set_attrs(&host, attrs)?;
        Ok(Some(host))
    }

    /// Mode and owner of an existing guest file, to keep them when rewriting it.
    pub fn attrs_of(&self, guest: &str) -> Option<Attrs> {
        use std::os::unix::fs::MetadataExt;
        let m = fs::metadata(self.resolve(guest).ok()?).ok()?;
        Some(Attrs {
            mode: m.mode() & 0o7777,
            owner: Some((m.uid(), m.gid())),
        })
    }
}

fn normal_parts(p: &Path) -> Vec<std::ffi::OsString> {
    p.components()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n.to_owned()),
            _ => None,
        })
        .collect()
}

fn same_attrs(now: Attrs, wanted: Attrs) -> bool {
    now.mode == wanted.mode & 0o7777 && wanted.owner.is_none_or(|o| now.owner == Some(o))
}

fn set_attrs(host: &Path, attrs: Attrs) -> Result<(), RootError> {
    if let Some((uid, gid)) = attrs.owner {
        std::os::unix::fs::lchown(host, Some(uid), Some(gid))
            .map_err(io("change the owner of", host))?;
    }
    fs::set_permissions(host, fs::Permissions::from_mode(attrs.mode))
        .map_err(io("change the mode of", host))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{symlink, MetadataExt};

    fn mode(p: &Path) -> u32 {
        fs::metadata(p).expect("stat").mode() & 0o7777
    }

    #[test]
    fn symlinks_stay_inside_and_dotdot_is_refused() {
        let outer = tempfile::tempdir().expect("tempdir");
        let root_dir = outer.path().join("root");
        fs::create_dir(&root_dir).expect("mkdir");
        let root = FsRoot::new(&root_dir).expect("root");
        assert!(matches!(
            root.resolve("/etc/../x"),
            Err(RootError::DotDot(_))
        ));
        assert!(matches!(
            root.resolve("etc/x"),
            Err(RootError::NotAbsolute(_))
        ));

        symlink(outer.path(), root_dir.join("abs")).expect("symlink");
        symlink("../../..", root_dir.join("rel")).expect("symlink");
        symlink("loop", root_dir.join("loop")).expect("symlink");
        let canon = root.path().to_path_buf();
        assert_eq!(
            root.resolve("/abs/f").expect("resolves"),
            canon
                .join(outer.path().strip_prefix("/").expect("abs"))
                .join("f")
        );
        assert_eq!(root.resolve("/rel/f").expect("resolves"), canon.join("f"));
        assert!(matches!(
            root.resolve("/loop/x"),
            Err(RootError::SymlinkLoop(_))
        ));

        let attrs = Attrs {
            mode: 0o750,
            owner: None,
        };
        let created = root.create_dirs("/rel/etc/app", attrs).expect("creates");
        assert_eq!(created, [canon.join("etc"), canon.join("etc/app")]);
        assert_eq!(mode(&root_dir.join("etc/app")), 0o750);
        assert!(!outer.path().join("etc").exists());
        assert!(root
            .create_dirs("/rel/etc/app", attrs)
            .expect("exists")
            .is_empty());
        symlink("/deep/er", root_dir.join("etc/link")).expect("symlink");
        let created = root.create_dirs("/etc/link/x", attrs).expect("creates");
        assert_eq!(
            created,
            [
                canon.join("deep"),
                canon.join("deep/er"),
                canon.join("deep/er/x")
            ]
        );
        assert_eq!(mode(&root_dir.join("deep")), 0o750);

        // Attributes are changed only when they differ.
        assert_eq!(root.write_attrs("/etc/app", attrs).expect("same"), None);
        let wider = Attrs {
            mode: 0o755,
            ..attrs
        };
        assert_eq!(
            root.write_attrs("/etc/app", wider).expect("changes"),
            Some(canon.join("etc/app"))
        );
        assert_eq!(mode(&root_dir.join("etc/app")), 0o755);
    }
}
