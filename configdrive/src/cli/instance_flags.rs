//! The instance described by `nova boot`-shaped flags instead of a JSON document:
//! they fill an `InstanceDocument`, which `compute` then validates like any other.

use anyhow::{bail, Context};
use base64::Engine;
use compute::instance::{FileSpec, Key, KeyType, NetworkData};
use compute::InstanceDocument;
use std::path::PathBuf;

/// Bound on any file a flag names (user data has its own, smaller, limit in compute).
const MAX_INPUT_BYTES: u64 = 16 * 1024 * 1024;

#[derive(Debug, Clone, Default, clap::Args)]
pub struct InstanceFlags {
    /// Instance uuid (required without --instance).
    #[arg(
        long,
        conflicts_with = "instance",
        required_unless_present = "instance"
    )]
    pub uuid: Option<String>,
    /// Display name (required without --instance).
    #[arg(
        long,
        conflicts_with = "instance",
        required_unless_present = "instance"
    )]
    pub name: Option<String>,
    /// Short hostname (default: derived from the name, as Nova does).
    #[arg(long, conflicts_with = "instance")]
    pub hostname: Option<String>,
    /// A public key: NAME=FILE (repeatable); PEM certificates become x509 keys.
    #[arg(
        long = "key",
        value_name = "NAME=PUBKEY_FILE",
        conflicts_with = "instance"
    )]
    pub keys: Vec<String>,
    /// User data file.
    #[arg(long, value_name = "FILE", conflicts_with = "instance")]
    pub user_data: Option<PathBuf>,
    /// Injected file: DST=SRC, DST absolute in the guest (repeatable, in order).
    #[arg(long = "file", value_name = "DST=SRC", conflicts_with = "instance")]
    pub files: Vec<String>,
    /// Metadata item K=V (repeatable).
    #[arg(long = "meta", value_name = "K=V", conflicts_with = "instance")]
    pub meta: Vec<String>,
    /// network_data.json-shaped file (links, networks, services). Without it the
    /// drive has no network_data.json at all (not Nova's `{}`), so cloud-init falls
    /// back to DHCP on the first NIC.
    #[arg(long, value_name = "FILE", conflicts_with = "instance")]
    pub network_data: Option<PathBuf>,
    /// Administrator password, written to the drive's meta_data.json.
    #[arg(long, conflicts_with = "instance")]
    pub admin_pass: Option<String>,
    /// Creation time (RFC 3339), used for the drive's timestamps.
    #[arg(long, value_name = "RFC3339", conflicts_with = "instance")]
    pub created_at: Option<String>,
}

fn read_bounded(path: &PathBuf, what: &str) -> anyhow::Result<Vec<u8>> {
    let len = std::fs::metadata(path)
        .with_context(|| format!("cannot read {what} {}", path.display()))?
        .len();
    if len > MAX_INPUT_BYTES {
        bail!(
            "{what} {} is {len} bytes, more than the {MAX_INPUT_BYTES}-byte limit",
            path.display()
        );
    }
    std::fs::read(path).with_context(|| format!("cannot read {what} {}", path.display()))
}

fn split_pair<'a>(flag: &str, value: &'a str) -> anyhow::Result<(&'a str, &'a str)> {
    match value.split_once('=') {
        Some((k, v)) if !k.is_empty() && !v.is_empty() => Ok((k, v)),
        _ => bail!("--{flag} `{value}` is not of the form A=B"),
    }
}

impl InstanceFlags {
    /// The document these flags describe (validated later by `Instance::new`).
    pub fn to_document(&self) -> anyhow::Result<InstanceDocument> {
        let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
        let mut doc = InstanceDocument {
            uuid: self.uuid.clone().unwrap_or_default(),
            name: self.name.clone().unwrap_or_default(),
            hostname: self.hostname.clone(),
            admin_pass: self.admin_pass.clone(),
            created_at: self.created_at.clone(),
            ..InstanceDocument::default()
        };
        for k in &self.keys {
            let (name, file) = split_pair("key", k)?;
            let text = String::from_utf8(read_bounded(&PathBuf::from(file), "key file")?)
                .with_context(|| format!("key file {file} is not UTF-8 text"))?;
            let kind = if text.contains("-----BEGIN CERTIFICATE-----") {
                KeyType::X509
            } else {
                KeyType::Ssh
            };
            let data = if kind == KeyType::Ssh {
                text.trim_end().to_owned()
            } else {
                text
            };
            doc.keys.push(Key {
                name: name.to_owned(),
                kind,
                data,
            });
        }
        if let Some(p) = &self.user_data {
            doc.user_data = Some(b64(&read_bounded(p, "user data file")?));
        }
        for f in &self.files {
            let (dst, src) = split_pair("file", f)?;
            let contents = b64(&read_bounded(&PathBuf::from(src), "injected file")?);
            doc.files.push(FileSpec {
                path: dst.to_owned(),
                contents,
            });
        }
        for m in &self.meta {
            let (k, v) = m
                .split_once('=')
                .with_context(|| format!("--meta `{m}` is not of the form K=V"))?;
            doc.meta.insert(k.to_owned(), v.to_owned());
        }
        if let Some(p) = &self.network_data {
            let bytes = read_bounded(p, "network data file")?;
            let net: NetworkData = serde_json::from_slice(&bytes).with_context(|| {
                format!(
                    "network data file {} is not network_data.json-shaped",
                    p.display()
                )
            })?;
            doc.network = Some(net);
        }
        Ok(doc)
    }
}
