//! The rendering settings as command-line flags, shared by every CLI of the
//! workspace (`compute`, `configdrive`, `metadata-server`) so they spell them alike.

use crate::metadata::{AnyVersion, Ec2Version, OpenStackVersion, Settings};
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("cannot read vendor data file {path}: {source}")]
    VendorDataRead {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("vendor data file {path} is not a JSON object: {message}")]
    VendorDataJson { path: PathBuf, message: String },
    #[error("unknown metadata version `{0}` in --disable-version or --skip-versions; known: {1}")]
    UnknownVersion(String, String),
}

#[derive(Debug, Clone, Default, clap::Args)]
pub struct SettingsArgs {
    /// Domain appended to hostnames (Nova's `dhcp_domain`); pass '' for none.
    #[arg(long, default_value = "novalocal")]
    pub dhcp_domain: String,
    /// The deployment's static vendor data: a JSON object file.
    #[arg(long, value_name = "FILE")]
    pub vendor_data: Option<PathBuf>,
    /// Versions not to offer at all, of either tree (repeatable or comma-separated).
    #[arg(long, value_name = "VERSION", value_delimiter = ',')]
    pub disable_version: Vec<String>,
    /// Versions left off config drives (default: EC2 versions older than 2009-04-04,
    /// as Nova's `config_drive_skip_versions`); pass '' to skip none.
    #[arg(long, value_name = "VERSION", value_delimiter = ',')]
    pub skip_versions: Option<Vec<String>>,
    /// Serve injected files over HTTP at /openstack/content/NNNN (Nova never does).
    #[arg(long)]
    pub serve_files: bool,
}

fn known_versions() -> String {
    let os = OpenStackVersion::ALL.iter().map(|v| v.as_str());
    let ec2 = Ec2Version::ALL.iter().map(|v| v.as_str());
    ec2.chain(os).collect::<Vec<_>>().join(", ")
}

fn parse_versions(names: &[String]) -> Result<Vec<AnyVersion>, SettingsError> {
    names
        .iter()
        .map(|n| n.trim())
        .filter(|n| !n.is_empty())
        .map(|n| {
            n.parse()
                .map_err(|_| SettingsError::UnknownVersion(n.to_owned(), known_versions()))
        })
        .collect()
}

impl SettingsArgs {
    /// Builds settings, reading the vendor data file when one is named.
    pub fn to_settings(&self) -> Result<Settings, SettingsError> {
        let mut s = Settings {
            dhcp_domain: Some(self.dhcp_domain.clone()).filter(|d| !d.is_empty()),
            serve_files: self.serve_files,
            ..Settings::default()
        };
        let disabled = parse_versions(&self.disable_version)?;
        s.openstack_versions
            .retain(|v| !disabled.contains(&AnyVersion::OpenStack(*v)));
        s.ec2_versions
            .retain(|v| !disabled.contains(&AnyVersion::Ec2(*v)));
        if let Some(skip) = &self.skip_versions {
            s.drive_skip_versions = parse_versions(skip)?;
        }
        if let Some(path) = &self.vendor_data {
            let bytes = std::fs::read(path).map_err(|source| SettingsError::VendorDataRead {
                path: path.clone(),
                source,
            })?;
            s.vendor_data =
                serde_json::from_slice(&bytes).map_err(|e| SettingsError::VendorDataJson {
                    path: path.clone(),
                    message: e.to_string(),
                })?;
        }
        Ok(s)
    }
}
