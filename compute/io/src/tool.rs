//! The host programs the workspace runs (qemu-img, QEMU, ip, nft, ssh-keygen, ...)
//! and the Debian package that brings each. A program that is not there becomes
//! [`ToolError::NotFound`], whose one line names the program and the command that
//! installs it: the single way every binary and the test images say so. It owns no
//! process handling beyond finding a program and naming a failed spawn.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A program and the Debian package that installs it (as in `scripts/packages.txt`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tool {
    pub program: &'static str,
    pub package: &'static str,
}

pub const QEMU_IMG: Tool = Tool::new("qemu-img", "qemu-utils");
pub const QEMU_SYSTEM: Tool = Tool::new("qemu-system-x86_64", "qemu-system-x86");
pub const IP: Tool = Tool::new("ip", "iproute2");
pub const NFT: Tool = Tool::new("nft", "nftables");
pub const NSENTER: Tool = Tool::new("nsenter", "util-linux");
pub const SETSID: Tool = Tool::new("setsid", "util-linux");
pub const SSH_KEYGEN: Tool = Tool::new("ssh-keygen", "openssh-client");
pub const MODPROBE: Tool = Tool::new("modprobe", "kmod");
pub const LDD: Tool = Tool::new("ldd", "libc-bin");

#[derive(Debug, thiserror::Error)]
pub enum ToolError {
    #[error("{program} not found: install it with 'apt-get install {package}'")]
    NotFound {
        program: String,
        package: &'static str,
    },
    #[error("cannot run {program}")]
    Run {
        program: String,
        #[source]
        source: std::io::Error,
    },
}

impl Tool {
    pub const fn new(program: &'static str, package: &'static str) -> Tool {
        Tool { program, package }
    }

    /// `Command::new(program)`, to be spawned with [`Tool::error`] on failure.
    pub fn command(self) -> Command {
        Command::new(self.program)
    }

    /// What a failed spawn of this tool means: NotFound names the package.
    pub fn error(self, source: std::io::Error) -> ToolError {
        self.error_at(Path::new(self.program), source)
    }

    /// The same for `program`, a path the user gave for this tool (`--qemu BIN`).
    pub fn error_at(self, program: &Path, source: std::io::Error) -> ToolError {
        if source.kind() == std::io::ErrorKind::NotFound {
            return self.not_found_at(program);
        }
        ToolError::Run {
            program: program.display().to_string(),
            source,
        }
    }

    /// The error for `program` (this tool, or a path given for it) being absent.
    pub fn not_found_at(self, program: &Path) -> ToolError {
        ToolError::NotFound {
            program: program.display().to_string(),
            package: self.package,
        }
    }

    /// The tool's path on PATH.
    pub fn locate(self) -> Result<PathBuf, ToolError> {
        self.locate_at(Path::new(self.program))
    }

    /// Where `program` (a path given for this tool, or a bare name looked up on
    /// PATH) is. For tools run through a wrapper (`nsenter -- qemu`, `setsid
    /// metadata-server`), whose own failure would be only an exit status.
    pub fn locate_at(self, program: &Path) -> Result<PathBuf, ToolError> {
        find_program(program.as_os_str()).ok_or_else(|| self.not_found_at(program))
    }
}

/// The file `execvp` would run for `program`: itself when it names a path (has a
/// `/`), else the first executable file of that name in a PATH folder.
pub fn find_program(program: &OsStr) -> Option<PathBuf> {
    let path = Path::new(program);
    if program.as_encoded_bytes().contains(&b'/') {
        return is_executable(path).then(|| path.to_owned());
    }
    if program.is_empty() {
        return None;
    }
    // glibc's execvp uses this when PATH is unset.
    let dirs = std::env::var_os("PATH").unwrap_or_else(|| "/bin:/usr/bin".into());
    std::env::split_paths(&dirs)
        .map(|d| d.join(path))
        .find(|p| is_executable(p))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_program_names_itself_and_the_install_command() {
        let tool = Tool::new("no-such-program-xyz", "some-package");
        let err = tool
            .command()
            .output()
            .map_err(|e| tool.error(e))
            .expect_err("the program does not exist");
        assert!(matches!(err, ToolError::NotFound { .. }), "{err:?}");
        assert_eq!(
            err.to_string(),
            "no-such-program-xyz not found: install it with 'apt-get install some-package'"
        );
        assert!(std::error::Error::source(&err).is_none());
    }

    #[test]
    fn other_spawn_failures_keep_their_cause() {
        let dir = tempfile::tempdir().expect("tempdir");
        let err = QEMU_IMG.error_at(
            dir.path(),
            std::io::Error::from(std::io::ErrorKind::PermissionDenied),
        );
        assert_eq!(
            err.to_string(),
            format!("cannot run {}", dir.path().display())
        );
        assert!(std::error::Error::source(&err).is_some());
    }

    #[test]
    fn programs_are_found_as_execvp_finds_them() {
        let dir = tempfile::tempdir().expect("tempdir");
        let exe = dir.path().join("tool");
        std::fs::write(&exe, "#!/bin/sh\n").expect("write");
        let plain = dir.path().join("plain");
        std::fs::write(&plain, "").expect("write");
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        assert_eq!(find_program(exe.as_os_str()), Some(exe.clone()));
        assert_eq!(find_program(plain.as_os_str()), None, "not executable");
        assert_eq!(find_program(dir.path().as_os_str()), None, "a folder");
        assert_eq!(find_program(OsStr::new("")), None);
        // A bare name goes through PATH: `sh` is on every PATH this runs with.
        assert!(find_program(OsStr::new("sh")).is_some());
        assert!(find_program(OsStr::new("no-such-program-xyz")).is_none());
        let err = NFT
            .locate_at(&dir.path().join("missing"))
            .expect_err("missing");
        assert_eq!(
            err.to_string(),
            format!(
                "{} not found: install it with 'apt-get install nftables'",
                dir.path().join("missing").display()
            )
        );
    }
}
