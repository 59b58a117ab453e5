//! `qemu-img`: probe a disk image's format, make overlays and blank disks, convert.
//! Every call is bounded (QEMU's own tool; output parsed as JSON, never as text).

use super::command::DiskFormat;
use compute_io::tool::{ToolError, QEMU_IMG};
use serde::Deserialize;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum ImgError {
    #[error(transparent)]
    Tool(#[from] ToolError),
    #[error("qemu-img {verb} {path}: {stderr}")]
    Failed {
        verb: &'static str,
        path: PathBuf,
        stderr: String,
    },
    #[error("{path} is a {format} image; only qcow2 and raw are supported")]
    Unsupported { path: PathBuf, format: String },
    #[error("qemu-img info {path} printed unexpected JSON: {problem}")]
    Json { path: PathBuf, problem: String },
    #[error("{path} has a backing file; import a flattened image (qemu-img convert)")]
    Backed { path: PathBuf },
}

/// What `qemu-img info` says about an image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageInfo {
    pub format: DiskFormat,
    pub virtual_size: u64,
}

#[derive(Deserialize)]
struct RawInfo {
    format: String,
    #[serde(rename = "virtual-size")]
    virtual_size: u64,
    #[serde(rename = "backing-filename")]
    backing: Option<String>,
}

fn run(verb: &'static str, path: &Path, args: &[&std::ffi::OsStr]) -> Result<Vec<u8>, ImgError> {
    let out = QEMU_IMG
        .command()
        .args(args)
        .output()
        .map_err(|e| QEMU_IMG.error(e))?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr)
            .trim()
            .chars()
            .take(2000)
            .collect();
        return Err(ImgError::Failed {
            verb,
            path: path.to_owned(),
            stderr,
        });
    }
    Ok(out.stdout)
}

/// Probes the format (never trusting the file name). Shared lock: `-U`.
pub fn info(path: &Path) -> Result<ImageInfo, ImgError> {
    let out = run(
        "info",
        path,
        &[
            "info".as_ref(),
            "-U".as_ref(),
            "--output=json".as_ref(),
            path.as_os_str(),
        ],
    )?;
    let raw: RawInfo = serde_json::from_slice(&out).map_err(|e| ImgError::Json {
        path: path.to_owned(),
        problem: e.to_string(),
    })?;
    if raw.backing.is_some() {
        return Err(ImgError::Backed {
            path: path.to_owned(),
        });
    }
    let format = match raw.format.as_str() {
        "qcow2" => DiskFormat::Qcow2,
        "raw" => DiskFormat::Raw,
        other => {
            return Err(ImgError::Unsupported {
                path: path.to_owned(),
                format: other.to_owned(),
            })
        }
    };
    Ok(ImageInfo {
        format,
        virtual_size: raw.virtual_size,
    })
}

/// Checks a qcow2 image's metadata (`qemu-img check`): a cut-short or corrupt
/// file, which `info` may still describe, is refused. Leaked clusters alone
/// (status 3) are harmless and pass.
pub fn check_qcow2(path: &Path) -> Result<(), ImgError> {
    let out = QEMU_IMG
        .command()
        .args(["check", "-U", "-f", "qcow2"])
        .arg(path)
        .output()
        .map_err(|e| QEMU_IMG.error(e))?;
    match out.status.code() {
        Some(0) | Some(3) => Ok(()),
        _ => Err(ImgError::Failed {
            verb: "check",
            path: path.to_owned(),
            stderr: String::from_utf8_lossy(&out.stderr)
                .lines()
                .chain(String::from_utf8_lossy(&out.stdout).lines())
                .find(|l| !l.trim().is_empty())
                .unwrap_or("the image is corrupt")
                .chars()
                .take(500)
                .collect(),
        }),
    }
}

/// A qcow2 overlay on `base`, grown to `size` bytes when that is larger.
pub fn create_overlay(
    base: &Path,
    base_format: DiskFormat,
    overlay: &Path,
    size: Option<u64>,
) -> Result<(), ImgError> {
    let size = size.map(|s| s.to_string());
    let mut args: Vec<&std::ffi::OsStr> = vec![
        "create".as_ref(),
        "-q".as_ref(),
        "-f".as_ref(),
        "qcow2".as_ref(),
        "-F".as_ref(),
        base_format.as_str().as_ref(),
        "-b".as_ref(),
        base.as_os_str(),
        overlay.as_os_str(),
    ];
    if let Some(s) = &size {
        args.push(s.as_ref());
    }
    run("create", overlay, &args).map(drop)
}

/// A blank qcow2 disk of `size` bytes (ephemeral and swap disks).
pub fn create_blank(path: &Path, size: u64) -> Result<(), ImgError> {
    let size = size.to_string();
    let args: [&std::ffi::OsStr; 6] = [
        "create".as_ref(),
        "-q".as_ref(),
        "-f".as_ref(),
        "qcow2".as_ref(),
        path.as_os_str(),
        size.as_ref(),
    ];
    run("create", path, &args).map(drop)
}

/// Flattens `src` (an overlay) into a standalone qcow2 at `dst`.
pub fn convert(src: &Path, dst: &Path) -> Result<(), ImgError> {
    let args: [&std::ffi::OsStr; 7] = [
        "convert".as_ref(),
        "-U".as_ref(),
        "-q".as_ref(),
        "-O".as_ref(),
        "qcow2".as_ref(),
        src.as_os_str(),
        dst.as_os_str(),
    ];
    run("convert", src, &args).map(drop)
}
