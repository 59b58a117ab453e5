//! The rendering settings as command-line flags, shared by every CLI of the
//! workspace (`compute`, `configdrive`, `metadata-server`) so they spell them alike,
//! and the way back from settings to flags, for a process that starts another.

use compute::metadata::{AnyVersion, Ec2Version, OpenStackVersion, Settings};
use std::ffi::OsString;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("cannot read vendor data file {path}")]
    VendorDataRead {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("vendor data file {path} is not a JSON object: {message}")]
    VendorDataJson { path: PathBuf, message: String },
    #[error("unknown metadata version `{0}` in --disable-version or --skip-versions; known: {1}")]
    UnknownVersion(String, String),
}

#[derive(Debug, Clone, Default, PartialEq, Eq, clap::Args)]
pub struct SettingsArgs {
    /// Domain appended to hostnames (Nova's `dhcp_domain`); pass '' for none.
    #[arg(long, global = true, default_value = "novalocal")]
    pub dhcp_domain: String,
    /// The deployment's static vendor data: a JSON object file.
    #[arg(long, global = true, value_name = "FILE")]
    pub vendor_data: Option<PathBuf>,
    /// Versions not to offer at all, of either tree (repeatable or comma-separated).
    #[arg(long, global = true, value_name = "VERSION", value_delimiter = ',')]
    pub disable_version: Vec<String>,
    /// Versions left off config drives (default: EC2 versions older than 2009-04-04,
    /// as Nova's `config_drive_skip_versions`); pass '' to skip none.
    #[arg(long, global = true, value_name = "VERSION", value_delimiter = ',')]
    pub skip_versions: Option<Vec<String>>,
    /// Serve injected files over HTTP at /openstack/content/NNNN (Nova never does).
    #[arg(long, global = true)]
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

    /// The flags that give a metadata server `settings`: the inverse of
    /// [`SettingsArgs::to_settings`] for everything the service uses (drive skip lists
    /// are for drives only). Vendor data travels as a file: `vendor_data_file` must
    /// hold `settings.vendor_data` when it is not empty.
    pub fn for_service(settings: &Settings, vendor_data_file: Option<&Path>) -> SettingsArgs {
        let disabled = OpenStackVersion::ALL
            .iter()
            .filter(|v| !settings.openstack_versions.contains(v))
            .map(|v| v.as_str())
            .chain(
                Ec2Version::ALL
                    .iter()
                    .filter(|v| !settings.ec2_versions.contains(v))
                    .map(|v| v.as_str()),
            )
            .map(str::to_owned)
            .collect();
        SettingsArgs {
            dhcp_domain: settings.dhcp_domain.clone().unwrap_or_default(),
            vendor_data: vendor_data_file
                .filter(|_| !settings.vendor_data.is_empty())
                .map(Path::to_owned),
            disable_version: disabled,
            skip_versions: None,
            serve_files: settings.serve_files,
        }
    }

    /// These flags as arguments that parse back into them. Values go in the
    /// `--flag=VALUE` form, so that one starting with `-` is not taken for a flag.
    pub fn to_args(&self) -> Vec<OsString> {
        let flag = |name: &str, value: &dyn AsRef<std::ffi::OsStr>| {
            let mut arg = OsString::from(format!("--{name}="));
            arg.push(value);
            arg
        };
        let mut args = vec![flag("dhcp-domain", &self.dhcp_domain)];
        if let Some(path) = &self.vendor_data {
            args.push(flag("vendor-data", path));
        }
        if !self.disable_version.is_empty() {
            args.push(flag("disable-version", &self.disable_version.join(",")));
        }
        if let Some(skip) = &self.skip_versions {
            args.push(flag("skip-versions", &skip.join(",")));
        }
        if self.serve_files {
            args.push("--serve-files".into());
        }
        args
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        settings: SettingsArgs,
    }

    fn parse(args: &[OsString]) -> SettingsArgs {
        let mut argv: Vec<OsString> = vec!["x".into()];
        argv.extend(args.iter().cloned());
        Cli::try_parse_from(argv).expect("flags parse").settings
    }

    #[test]
    fn to_args_parse_back_into_the_same_flags() {
        let all = SettingsArgs {
            dhcp_domain: "-odd.example".into(),
            vendor_data: Some("/etc/vendor data.json".into()),
            disable_version: vec!["2025-04-04".into(), "1.0".into()],
            skip_versions: Some(vec!["1.0".into(), "2007-01-19".into()]),
            serve_files: true,
        };
        let none = SettingsArgs {
            dhcp_domain: String::new(),
            ..SettingsArgs::default()
        };
        for args in [all, none, parse(&[])] {
            assert_eq!(parse(&args.to_args()), args);
        }
    }

    #[test]
    fn service_flags_give_back_the_same_service_settings() {
        let dir = tempfile::tempdir().expect("tempdir");
        let vendor = dir.path().join("vendor.json");
        let settings = |args: SettingsArgs| parse(&args.to_args()).to_settings().expect("settings");
        let mut s = Settings::default();
        assert_eq!(settings(SettingsArgs::for_service(&s, None)), s);
        s.dhcp_domain = None;
        s.serve_files = true;
        s.openstack_versions
            .retain(|v| *v != OpenStackVersion::V2025_04_04);
        s.ec2_versions.retain(|v| *v != Ec2Version::V1_0);
        s.vendor_data
            .insert("cloud-init".into(), "#cloud-config\n".into());
        std::fs::write(&vendor, serde_json::to_vec(&s.vendor_data).expect("json")).expect("write");
        assert_eq!(settings(SettingsArgs::for_service(&s, Some(&vendor))), s);
    }
}
