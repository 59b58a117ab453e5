//! `configdrive inspect`: what an image is (format, labels, tree, sizes) and how it
//! measures up against the spec. Exit status 1 when any check fails with an error.

use super::output::print_stdout;
use anyhow::Context;
use configdrive::read::{check, target_of, Finding, Limits, Severity};
use configdrive::ReadDrive;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Largest image inspect and extract will read.
pub const MAX_IMAGE_BYTES: u64 = 1 << 30;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum OutputFormat {
    /// A report for people.
    #[default]
    Text,
    /// JSON for scripts.
    Json,
}

/// Show an image's format, labels, tree and sizes, and check it against the spec.
#[derive(Debug, clap::Args)]
pub struct InspectArgs {
    /// The image file (ISO9660 or VFAT).
    pub image: PathBuf,
    /// Output format: text for people, json for scripts.
    #[arg(long, value_enum, default_value_t)]
    pub format: OutputFormat,
}

/// Reads and parses an image file, bounded in size.
pub fn read_image(path: &Path) -> anyhow::Result<ReadDrive> {
    let len = std::fs::metadata(path)
        .with_context(|| format!("cannot read {}", path.display()))?
        .len();
    if len > MAX_IMAGE_BYTES {
        anyhow::bail!(
            "{} is {len} bytes, more than the {MAX_IMAGE_BYTES}-byte limit",
            path.display()
        );
    }
    let file =
        std::fs::File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
    ReadDrive::from_reader(std::io::BufReader::new(file), len, &Limits::default())
        .with_context(|| format!("cannot read {}", path.display()))
}

#[derive(serde::Serialize)]
struct Report<'a> {
    #[serde(flatten)]
    drive: &'a ReadDrive,
    target: configdrive::Target,
    files: Vec<FileInfo<'a>>,
    findings: &'a [Finding],
    ok: bool,
}

#[derive(serde::Serialize)]
struct FileInfo<'a> {
    path: &'a str,
    size: usize,
}

pub fn run(args: InspectArgs) -> anyhow::Result<ExitCode> {
    let drive = read_image(&args.image)?;
    let findings = check(&drive);
    let ok = !findings.iter().any(|f| f.severity == Severity::Error);
    match args.format {
        OutputFormat::Json => {
            let files = drive
                .files
                .iter()
                .map(|(p, b)| FileInfo {
                    path: p,
                    size: b.len(),
                })
                .collect();
            let report = Report {
                drive: &drive,
                target: target_of(&drive),
                files,
                findings: &findings,
                ok,
            };
            print_stdout(&(serde_json::to_string_pretty(&report)? + "\n"))?;
        }
        OutputFormat::Text => print_stdout(&text_report(&drive, &findings))?,
    }
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn text_report(drive: &ReadDrive, findings: &[Finding]) -> String {
    let mut out = String::new();
    let format = match drive.format {
        configdrive::Format::Iso9660 => "iso9660",
        configdrive::Format::Vfat => "vfat",
    };
    out += &format!("format:     {format}\n");
    out += &format!("label:      {}\n", drive.label);
    if let Some(l) = &drive.root_label {
        out += &format!("root label: {l}\n");
    }
    if let Some(p) = &drive.publisher {
        out += &format!("publisher:  {p}\n");
    }
    if drive.format == configdrive::Format::Iso9660 {
        out += &format!(
            "rock ridge: {}\n",
            if drive.rock_ridge { "yes" } else { "no" }
        );
        out += &format!("joliet:     {}\n", if drive.joliet { "yes" } else { "no" });
    }
    let total: usize = drive.files.values().map(Vec::len).sum();
    out += &format!(
        "size:       {} bytes, {} files ({total} bytes), {} directories\n",
        drive.size,
        drive.files.len(),
        drive.directories.len()
    );
    for (path, bytes) in &drive.files {
        out += &format!("{:>10}  {path}\n", bytes.len());
    }
    if findings.is_empty() {
        out += "check:      ok\n";
    }
    for f in findings {
        let sev = match f.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        out += &format!("{sev}: {}\n", f.message);
    }
    out
}
