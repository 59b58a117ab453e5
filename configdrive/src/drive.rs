//! What a build is made of: which files ([`Target`]), which filesystem ([`Format`])
//! and which wrapping ([`Encoding`]), and the one pure function that turns a tree
//! into image bytes with them.

use crate::fat::{FatError, FatImage};
use crate::image::DiskImage;
use crate::iso::{IsoError, IsoWriter};
use crate::nocloud::nocloud_tree;
use crate::options::DriveOptions;
use base64::Engine;
use compute::metadata::DriveTree;
use compute::{render_drive, Instance, Settings};

/// Ironic's limit on a config drive before it is encoded.
pub const IRONIC_MAX_BYTES: u64 = 64 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum DriveError {
    #[error(transparent)]
    Iso(#[from] IsoError),
    #[error(transparent)]
    Fat(#[from] FatError),
    #[error("Ironic accepts config drives of at most {IRONIC_MAX_BYTES} bytes before encoding; this one is {bytes}")]
    TooLargeForIronic { bytes: u64 },
    #[error("cannot compress the image")]
    Compress(#[source] std::io::Error),
}

/// The filesystem of the image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// ISO9660 with Rock Ridge and Joliet (Nova's default).
    #[default]
    Iso9660,
    /// FAT16 with long names (Nova's `config_drive_format=vfat`).
    Vfat,
}

/// Which guest-side reader the drive is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum, serde::Serialize)]
pub enum Target {
    /// OpenStack's config drive: label `config-2`, EC2 and OpenStack trees.
    #[default]
    #[value(name = "config-2")]
    #[serde(rename = "config-2")]
    Config2,
    /// cloud-init's NoCloud seed: label `cidata`, meta-data, user-data, network-config.
    #[value(name = "nocloud")]
    #[serde(rename = "nocloud")]
    Nocloud,
}

impl Target {
    pub fn label(self) -> &'static str {
        match self {
            Target::Config2 => "config-2",
            Target::Nocloud => "cidata",
        }
    }

    /// The files this target puts on the drive.
    pub fn tree(self, instance: &Instance, settings: &Settings) -> DriveTree {
        match self {
            Target::Config2 => render_drive(instance, settings),
            Target::Nocloud => nocloud_tree(instance),
        }
    }
}

/// How the image is handed over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Encoding {
    /// The image itself.
    #[default]
    Raw,
    /// Gzip, then base64: what Ironic's `configdrive` field takes.
    Ironic,
}

/// The image of `tree` in `format`. `vfat_size` overrides the 64 MiB default.
pub fn build_image(
    tree: &DriveTree,
    format: Format,
    options: DriveOptions,
    publisher: Option<&str>,
    vfat_size: Option<u64>,
) -> Result<DiskImage, DriveError> {
    match format {
        Format::Iso9660 => {
            let mut w = IsoWriter::new(options);
            if let Some(p) = publisher {
                w = w.publisher(p);
            }
            Ok(DiskImage::from_vec(w.write(tree)?))
        }
        Format::Vfat => {
            let mut f = FatImage::new(options);
            if let Some(size) = vfat_size {
                f = f.size(size)?;
            }
            Ok(f.write(tree)?)
        }
    }
}

/// Ironic's form: gzip (no name, no time: reproducible), then base64.
pub fn ironic_encode(image: &DiskImage) -> Result<Vec<u8>, DriveError> {
    if image.len() > IRONIC_MAX_BYTES {
        return Err(DriveError::TooLargeForIronic { bytes: image.len() });
    }
    let mut gz = flate2::GzBuilder::new().write(Vec::new(), flate2::Compression::best());
    image.write_stream(&mut gz).map_err(DriveError::Compress)?;
    let compressed = gz.finish().map_err(DriveError::Compress)?;
    Ok(base64::engine::general_purpose::STANDARD
        .encode(compressed)
        .into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ironic_round_trips() {
        let img = DiskImage::from_vec(vec![7u8; 5000]);
        let enc = ironic_encode(&img).unwrap();
        assert_eq!(enc, ironic_encode(&img).unwrap());
        let gz = base64::engine::general_purpose::STANDARD
            .decode(&enc)
            .unwrap();
        let back = compute_io::gunzip::gunzip(&gz, 5000).unwrap();
        assert_eq!(back, img.to_vec());
    }
}
