//! Initramfs images for test guests: an uncompressed newc cpio holding busybox-static,
//! an `/init` made of a common prelude (busybox applets, /proc, /sys, /dev, kernel
//! modules in dependency order) and the caller's body, and any extra files (the static
//! guest-agent, /etc/passwd, ...). Modules come from `/lib/modules/<version>` of the
//! kernel the guest boots, never from the host's running kernel, which may differ.
//! A missing tool or file is an error naming the package that brings it.

use compute_io::tool::{Tool, ToolError, MODPROBE};
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum InitramfsError {
    #[error(transparent)]
    Tool(#[from] ToolError),
    #[error("modprobe --show-depends {module} for kernel {version}: {stderr}")]
    Modprobe {
        module: String,
        version: String,
        stderr: String,
    },
    #[error("compressed module {path}: teach the initramfs builder to decompress it")]
    Compressed { path: String },
    #[error("cannot read {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write {path}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// What every `/init` starts with. `INSMOD-FAILED <module>` on the console means a
/// module did not load.
pub const PRELUDE: &str = r#"#!/bin/busybox sh
/bin/busybox mkdir -p /proc /sys /dev /tmp /mnt /run /root /var/lib
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev 2>/dev/null
if [ -f /modules.order ]; then
    for m in $(cat /modules.order); do insmod "/modules/$m" || echo "INSMOD-FAILED $m"; done
fi
"#;

/// The busybox binary every image carries (package busybox-static).
pub const BUSYBOX: &str = "/bin/busybox";
const BUSYBOX_TOOL: Tool = Tool::new(BUSYBOX, "busybox-static");

struct Entry {
    name: String,
    mode: u32,
    rdev: (u32, u32),
    data: Vec<u8>,
}

/// An initramfs being put together; [`Initramfs::to_cpio`] gives its bytes.
pub struct Initramfs {
    entries: Vec<Entry>,
    dirs: std::collections::BTreeSet<String>,
    modules: Vec<String>,
}

impl Initramfs {
    /// Busybox, the base folders, `/dev/console`, and `/init` = [`PRELUDE`] + `body`.
    pub fn new(body: &str) -> Result<Initramfs, InitramfsError> {
        let busybox = std::fs::read(BUSYBOX).map_err(|source| match source.kind() {
            std::io::ErrorKind::NotFound => BUSYBOX_TOOL.not_found_at(Path::new(BUSYBOX)).into(),
            _ => InitramfsError::Read {
                path: BUSYBOX.into(),
                source,
            },
        })?;
        let mut me = Initramfs {
            entries: Vec::new(),
            dirs: Default::default(),
            modules: Vec::new(),
        };
        for d in ["bin", "dev", "proc", "sys", "etc", "modules"] {
            me.dir(d);
        }
        me.entries.push(Entry {
            name: "dev/console".into(),
            mode: 0o020600,
            rdev: (5, 1),
            data: Vec::new(),
        });
        me.file("bin/busybox", 0o755, busybox);
        me.file("init", 0o755, format!("{PRELUDE}{body}").into_bytes());
        Ok(me)
    }

    /// A folder (mode 755) and its missing parents; an existing one is kept.
    pub fn dir(&mut self, path: &str) -> &mut Self {
        let name = path.trim_matches('/');
        if name.is_empty() || self.dirs.contains(name) {
            return self;
        }
        if let Some((parent, _)) = name.rsplit_once('/') {
            self.dir(parent);
        }
        self.dirs.insert(name.to_owned());
        self.entries.push(Entry {
            name: name.to_owned(),
            mode: 0o040755,
            rdev: (0, 0),
            data: Vec::new(),
        });
        self
    }

    /// A regular file, with its missing parent folders.
    pub fn file(&mut self, path: &str, mode: u32, data: Vec<u8>) -> &mut Self {
        if let Some((parent, _)) = path.trim_start_matches('/').rsplit_once('/') {
            self.dir(parent);
        }
        self.entries.push(Entry {
            name: path.trim_start_matches('/').to_owned(),
            mode: 0o100000 | mode,
            rdev: (0, 0),
            data,
        });
        self
    }

    /// The modules `names` and everything they depend on, for kernel `version`, in
    /// load order (`modprobe --show-depends`); the prelude insmods them at boot.
    pub fn modules(&mut self, version: &str, names: &[&str]) -> Result<&mut Self, InitramfsError> {
        for m in names {
            let out = MODPROBE
                .command()
                .args(["-S", version, "--show-depends", m])
                .output()
                .map_err(|e| MODPROBE.error(e))?;
            if !out.status.success() {
                return Err(InitramfsError::Modprobe {
                    module: (*m).to_owned(),
                    version: version.to_owned(),
                    stderr: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
                });
            }
            for line in String::from_utf8_lossy(&out.stdout).lines() {
                // `builtin X` lines need nothing; `insmod PATH [params]` lines do.
                let Some(path) = line
                    .strip_prefix("insmod ")
                    .and_then(|l| l.split_whitespace().next())
                else {
                    continue;
                };
                let name = Path::new(path)
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                if !name.ends_with(".ko") {
                    return Err(InitramfsError::Compressed {
                        path: path.to_owned(),
                    });
                }
                if !self.modules.contains(&name) {
                    let data = std::fs::read(path).map_err(|source| InitramfsError::Read {
                        path: path.into(),
                        source,
                    })?;
                    self.file(&format!("modules/{name}"), 0o644, data);
                    self.modules.push(name);
                }
            }
        }
        Ok(self)
    }

    /// The image: an uncompressed newc ("070701") cpio archive.
    pub fn to_cpio(&self) -> Vec<u8> {
        let size: usize = self.entries.iter().map(|e| e.data.len() + 512).sum();
        let mut out = Vec::with_capacity(size + 4096);
        newc(&mut out, 1, ".", 0o040755, (0, 0), &[]);
        let order = self.modules.join("\n") + "\n";
        let mut ino = 2;
        for e in &self.entries {
            newc(&mut out, ino, &e.name, e.mode, e.rdev, &e.data);
            ino += 1;
        }
        if !self.modules.is_empty() {
            newc(
                &mut out,
                ino,
                "modules.order",
                0o100644,
                (0, 0),
                order.as_bytes(),
            );
        }
        newc(&mut out, 0, "TRAILER!!!", 0, (0, 0), &[]);
        out
    }

    /// Writes the image to `path`.
    pub fn write(&self, path: &Path) -> Result<(), InitramfsError> {
        std::fs::write(path, self.to_cpio()).map_err(|source| InitramfsError::Write {
            path: path.to_owned(),
            source,
        })
    }
}

/// One newc ("070701") cpio entry.
fn newc(out: &mut Vec<u8>, ino: u32, name: &str, mode: u32, rdev: (u32, u32), data: &[u8]) {
    let fields = [
        ino,
        mode,
        0,
        0,
        1,
        0,
        data.len() as u32,
        0,
        0,
        rdev.0,
        rdev.1,
        name.len() as u32 + 1,
        0,
    ];
    out.extend_from_slice(b"070701");
    for f in fields {
        out.extend_from_slice(format!("{f:08X}").as_bytes());
    }
    out.extend_from_slice(name.as_bytes());
    out.push(0);
    while out.len() % 4 != 0 {
        out.push(0);
    }
    out.extend_from_slice(data);
    while out.len() % 4 != 0 {
        out.push(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (name, mode, size) of every entry of a newc archive.
    fn entries(cpio: &[u8]) -> Vec<(String, u32, usize)> {
        let field = |at: usize, i: usize| {
            let hex = std::str::from_utf8(&cpio[at + 6 + i * 8..at + 14 + i * 8]).expect("hex");
            u32::from_str_radix(hex, 16).expect("field") as usize
        };
        let align = |n: usize| n.div_ceil(4) * 4;
        let mut out = Vec::new();
        let mut at = 0;
        while at < cpio.len() {
            assert_eq!(&cpio[at..at + 6], b"070701");
            let (mode, size, namesize) = (field(at, 1), field(at, 6), field(at, 11));
            let name = String::from_utf8_lossy(&cpio[at + 110..at + 110 + namesize - 1]);
            out.push((name.into_owned(), mode as u32, size));
            at = align(align(at + 110 + namesize) + size);
        }
        out
    }

    #[test]
    fn files_get_their_parent_folders_once_and_the_archive_ends_with_the_trailer() {
        let mut img = Initramfs::new("echo hi\n").expect("busybox");
        img.file("/lib/x86_64-linux-gnu/libz.so.1", 0o755, vec![1, 2, 3])
            .file("lib/x86_64-linux-gnu/libc.so.6", 0o755, vec![4]);
        let all = entries(&img.to_cpio());
        let names: Vec<&str> = all.iter().map(|e| e.0.as_str()).collect();
        assert_eq!(names.iter().filter(|n| **n == "lib").count(), 1);
        assert_eq!(names.iter().filter(|n| **n == "bin").count(), 1);
        let lib = names
            .iter()
            .position(|n| *n == "lib/x86_64-linux-gnu")
            .expect("dir");
        let libz = names
            .iter()
            .position(|n| *n == "lib/x86_64-linux-gnu/libz.so.1")
            .expect("file");
        assert!(lib < libz, "a folder comes before its files");
        assert!(all.contains(&("lib/x86_64-linux-gnu/libz.so.1".into(), 0o100755, 3)));
        assert!(all.contains(&("dev/console".into(), 0o020600, 0)));
        let init = all.iter().find(|e| e.0 == "init").expect("init");
        assert_eq!(init.2, PRELUDE.len() + "echo hi\n".len());
        assert_eq!(names.last(), Some(&"TRAILER!!!"));
    }
}
