//! `configdrive build`: an instance (JSON document or `nova boot`-style flags) to
//! a drive image file, written atomically.

use super::instance_flags::InstanceFlags;
use super::output::{print_stdout, refuse_existing, write_atomically};
use anyhow::{bail, Context};
use compute::Instance;
use compute_flags::SettingsArgs;
use configdrive::options::choose_timestamp;
use configdrive::{build_image, ironic_encode, DriveOptions, Encoding, Format, Target};
use sha2::{Digest, Sha256};
use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;

/// Bound on the instance document read from a file or standard input.
const MAX_DOCUMENT_BYTES: u64 = 16 * 1024 * 1024;

/// Build a drive image.
///
/// The instance comes from --instance FILE (JSON, `-` for standard input) or from
/// nova-boot-style flags (--uuid, --name, --key, --user-data, --file, --meta,
/// --network-data, --admin-pass). Timestamps come from SOURCE_DATE_EPOCH when set,
/// else the document's created_at, else 2020-01-01: the same input always gives
/// the same bytes.
#[derive(Debug, clap::Args)]
#[command(verbatim_doc_comment, about = "Build a drive image")]
pub struct BuildArgs {
    /// The instance document (JSON); `-` reads standard input.
    #[arg(long, value_name = "FILE")]
    pub instance: Option<PathBuf>,
    #[command(flatten)]
    pub flags: InstanceFlags,
    /// The image's filesystem.
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
    /// The guest-side reader the drive is for: Nova's config drive or a NoCloud seed.
    #[arg(long, value_enum, default_value_t)]
    pub target: Target,
    /// `ironic`: gzip then base64, as Ironic's configdrive field takes it.
    #[arg(long, value_enum, default_value_t)]
    pub encoding: Encoding,
    /// VFAT volume size in bytes (default 67108864, Nova's 64 MiB).
    #[arg(long, value_name = "BYTES")]
    pub size: Option<u64>,
    /// ISO publisher identifier (default: this tool and its version).
    #[arg(long)]
    pub publisher: Option<String>,
    /// Where to write the image.
    #[arg(short, long, value_name = "FILE")]
    pub output: PathBuf,
    /// Replace an existing output file.
    #[arg(long)]
    pub force: bool,
    /// Print the SHA-256 of the written file on standard output.
    #[arg(long)]
    pub sha256: bool,
    #[command(flatten)]
    pub settings: SettingsArgs,
}

fn read_document(path: &PathBuf) -> anyhow::Result<Vec<u8>> {
    let mut buf = Vec::new();
    let what = || format!("cannot read instance document {}", path.display());
    if path.as_os_str() == "-" {
        std::io::stdin()
            .take(MAX_DOCUMENT_BYTES + 1)
            .read_to_end(&mut buf)
            .with_context(what)?;
    } else {
        std::fs::File::open(path)
            .with_context(what)?
            .take(MAX_DOCUMENT_BYTES + 1)
            .read_to_end(&mut buf)
            .with_context(what)?;
    }
    if buf.len() as u64 > MAX_DOCUMENT_BYTES {
        bail!(
            "instance document {} is larger than {MAX_DOCUMENT_BYTES} bytes",
            path.display()
        );
    }
    Ok(buf)
}

fn source_date_epoch() -> anyhow::Result<Option<i64>> {
    match std::env::var("SOURCE_DATE_EPOCH") {
        Ok(v) if v.trim().is_empty() => Ok(None),
        Ok(v) => v
            .trim()
            .parse()
            .map(Some)
            .with_context(|| format!("SOURCE_DATE_EPOCH `{v}` is not a number of seconds")),
        Err(_) => Ok(None),
    }
}

pub fn run(args: BuildArgs) -> anyhow::Result<ExitCode> {
    refuse_existing(&args.output, args.force)?;
    if args.size.is_some() && args.format != Format::Vfat {
        bail!("--size applies to --format vfat only");
    }
    let instance = match &args.instance {
        Some(path) => Instance::from_json(&read_document(path)?)?,
        None => Instance::new(args.flags.to_document()?)?,
    };
    let settings = args.settings.to_settings()?;
    let tree = args.target.tree(&instance, &settings);
    let timestamp = choose_timestamp(source_date_epoch()?, instance.created_at());
    let options = DriveOptions::new(args.target.label(), timestamp, instance.uuid())?;
    let image = build_image(
        &tree,
        args.format,
        options,
        args.publisher.as_deref(),
        args.size,
    )?;

    let digest = match args.encoding {
        Encoding::Raw => {
            write_atomically(&args.output, args.force, |f| image.write_sparse(f))?;
            args.sha256.then(|| image.sha256())
        }
        Encoding::Ironic => {
            let encoded = ironic_encode(&image)?;
            write_atomically(&args.output, args.force, |f| f.write_all(&encoded))?;
            args.sha256.then(|| Sha256::digest(&encoded).into())
        }
    };
    if let Some(d) = digest {
        print_stdout(&format!("{}  {}\n", hex::encode(d), args.output.display()))?;
    }
    Ok(ExitCode::SUCCESS)
}
