//! The plan: the desired state of the guest, built from the typed view without
//! touching anything. [`crate::apply`] then carries it out step by step.
//!
//! Each step's part of the plan is its own `Result`: a problem in one document fails
//! that step only. `#cloud-config` directives feed the steps they belong to (its
//! `hostname`/`fqdn` the hostname step, its keys the SSH step), in the spec's order:
//! metadata first, then vendor data, then user data, later ones winning.

use crate::cloudconfig::WriteFile;
use crate::netplan::{self, NetPlanError, NetworkPlan};
use crate::userdata::{self, Part, UserDataError};
use crate::view::{InstanceData, ViewError};
use serde_json::Value;

/// Why one step's part of the plan could not be made.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error(transparent)]
    View(#[from] ViewError),
    #[error("network_data.json")]
    Network(#[from] NetPlanError),
    #[error("`{0}` is not a valid hostname")]
    Hostname(String),
    #[error("random_seed is not base64")]
    RandomSeed(#[source] base64::DecodeError),
    /// `what` is `user data` or `vendor data`.
    #[error("{what}")]
    Data {
        what: &'static str,
        #[source]
        source: UserDataError,
    },
    #[error("vendor data: `cloud-init` is not a string")]
    VendorDataNotText,
}

/// How the agent was asked to behave, where it matters for planning.
#[derive(Debug, Clone)]
pub struct PlanOptions {
    /// Whose `authorized_keys` get the keys (root when the user does not exist).
    pub user: String,
    /// Generate a password and post it encrypted when the drive carries none.
    pub generate_password: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostnamePlan {
    pub short: String,
    pub fqdn: String,
}

/// A file to write, with where it came from for the report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileWrite {
    pub path: String,
    pub contents: Vec<u8>,
    pub mode: u32,
    pub append: bool,
}

/// The root password: given by the drive, or made up here and posted encrypted.
#[derive(Clone, PartialEq, Eq)]
pub enum PasswordPlan {
    None,
    Set(String),
    /// Generate, set, encrypt with this OpenSSH RSA key and post.
    GenerateAndPost {
        rsa_key: Option<String>,
    },
}

impl std::fmt::Debug for PasswordPlan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PasswordPlan::None => f.write_str("None"),
            PasswordPlan::Set(_) => f.write_str("Set(<redacted>)"),
            PasswordPlan::GenerateAndPost { rsa_key } => {
                write!(f, "GenerateAndPost {{ rsa_key: {} }}", rsa_key.is_some())
            }
        }
    }
}

/// What vendor or user data asks for beyond the other steps.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DataPlan {
    pub write_files: Vec<FileWrite>,
    /// Scripts in order: `#!` parts and `runcmd`, by name.
    pub scripts: Vec<(String, Vec<u8>)>,
    pub not_applied: Vec<String>,
}

#[derive(Debug)]
pub struct Plan {
    pub instance_id: String,
    pub source: String,
    pub network: Result<Option<NetworkPlan>, PlanError>,
    pub hostname: Result<Option<HostnamePlan>, PlanError>,
    pub user: String,
    pub ssh_keys: Vec<String>,
    pub files: Vec<Result<FileWrite, PlanError>>,
    pub password: PasswordPlan,
    pub random_seed: Result<Option<Vec<u8>>, PlanError>,
    pub vendor_data: Result<Option<DataPlan>, PlanError>,
    pub user_data: Result<Option<DataPlan>, PlanError>,
}

/// The plan for what was found; a document's problems end up in its steps' parts.
pub fn build(data: InstanceData, opts: &PlanOptions) -> Plan {
    let meta = &data.meta;
    let network = match data.network {
        Ok(Some(n)) => netplan::plan(&n).map(Some).map_err(PlanError::from),
        Ok(None) => Ok(None),
        Err(e) => Err(e.into()),
    };

    let vendor_parts = vendor_parts(data.vendor_data);
    let user_parts = match data.user_data {
        Ok(Some(b)) => userdata::parse(&b, "user-data")
            .map(Some)
            .map_err(|source| PlanError::Data {
                what: "user data",
                source,
            }),
        Ok(None) => Ok(None),
        Err(e) => Err(e.into()),
    };
    let cloud_configs = || {
        [&vendor_parts, &user_parts]
            .into_iter()
            .filter_map(|r| r.as_ref().ok().and_then(|p| p.as_ref()))
            .flatten()
            .filter_map(|p| match p {
                Part::CloudConfig(c) => Some(c),
                _ => None,
            })
    };

    let mut hostname = meta.hostname.as_deref().map(split_hostname);
    for c in cloud_configs() {
        if let Some(fqdn) = &c.fqdn {
            hostname = Some(split_hostname(fqdn));
        }
        if let Some(h) = &c.hostname {
            let mut hp = split_hostname(h);
            if c.fqdn.is_none() && !h.contains('.') {
                hp.fqdn = hostname
                    .as_ref()
                    .map(|old| replace_short(&old.fqdn, h))
                    .unwrap_or_else(|| h.clone());
            }
            hostname = Some(hp);
        }
    }
    let hostname = match hostname {
        Some(h) if !compute::instance::is_valid_hostname(&h.short) => {
            Err(PlanError::Hostname(h.short))
        }
        other => Ok(other),
    };

    let mut ssh_keys: Vec<String> = Vec::new();
    let mut add_key = |k: &str| {
        let k = k.trim();
        if is_openssh_key(k) && !ssh_keys.iter().any(|x| x == k) {
            ssh_keys.push(k.to_owned());
        }
    };
    meta.public_keys.values().for_each(|k| add_key(k));
    meta.keys
        .iter()
        .filter(|k| k.kind == compute::instance::KeyType::Ssh)
        .for_each(|k| add_key(&k.data));
    for c in cloud_configs() {
        c.ssh_authorized_keys.iter().for_each(|k| add_key(k));
    }

    let files = data
        .files
        .into_iter()
        .map(|f| match f.contents {
            Ok(contents) => Ok(FileWrite {
                path: f.path,
                contents,
                mode: 0o644,
                append: false,
            }),
            Err(e) => Err(e.into()),
        })
        .collect();

    let password = match (&meta.admin_pass, opts.generate_password) {
        (Some(p), _) => PasswordPlan::Set(p.clone()),
        (None, true) => PasswordPlan::GenerateAndPost {
            rsa_key: ssh_keys.iter().find(|k| k.starts_with("ssh-rsa ")).cloned(),
        },
        (None, false) => PasswordPlan::None,
    };

    // Read as the instance document's seed was validated.
    let random_seed = meta
        .random_seed
        .as_deref()
        .map(compute::instance::decode_base64)
        .transpose()
        .map_err(PlanError::RandomSeed);

    Plan {
        instance_id: meta.uuid.clone(),
        source: data.source,
        network,
        hostname,
        user: opts.user.clone(),
        ssh_keys,
        files,
        password,
        random_seed,
        vendor_data: vendor_parts.map(|p| p.map(data_plan)),
        user_data: user_parts.map(|p| p.map(data_plan)),
    }
}

fn vendor_parts(vendor: Result<Option<Value>, ViewError>) -> Result<Option<Vec<Part>>, PlanError> {
    let Some(v) = vendor? else {
        return Ok(None);
    };
    // Nova's vendor data carries cloud-init's part under `cloud-init`, a string.
    match v.get("cloud-init") {
        Some(Value::String(s)) => userdata::parse(s.as_bytes(), "vendor-data")
            .map(Some)
            .map_err(|source| PlanError::Data {
                what: "vendor data",
                source,
            }),
        Some(_) => Err(PlanError::VendorDataNotText),
        None => Ok(None),
    }
}

fn data_plan(parts: Vec<Part>) -> DataPlan {
    let mut plan = DataPlan::default();
    for part in parts {
        match part {
            Part::Script { name, body } => plan.scripts.push((name, body)),
            Part::CloudConfig(c) => {
                plan.write_files
                    .extend(c.write_files.into_iter().map(|w: WriteFile| FileWrite {
                        path: w.path,
                        contents: w.content,
                        mode: w.mode,
                        append: w.append,
                    }));
                if let Some(cmd) = c.runcmd {
                    let name = format!("runcmd-{:03}", plan.scripts.len());
                    plan.scripts.push((name, cmd.into_bytes()));
                }
                plan.not_applied.extend(
                    c.not_applied
                        .into_iter()
                        .map(|k| format!("#cloud-config `{k}`")),
                );
            }
            Part::Ignored(what) => plan.not_applied.push(what),
        }
    }
    plan
}

fn split_hostname(h: &str) -> HostnamePlan {
    let h = h.trim().trim_end_matches('.');
    HostnamePlan {
        short: h.split('.').next().unwrap_or(h).to_owned(),
        fqdn: h.to_owned(),
    }
}

fn replace_short(fqdn: &str, short: &str) -> String {
    match fqdn.split_once('.') {
        Some((_, domain)) => format!("{short}.{domain}"),
        None => short.to_owned(),
    }
}

/// One line, starting with an OpenSSH key type (`compute`'s list, the one keypairs
/// are checked against): x509 certificates and junk are left out.
fn is_openssh_key(k: &str) -> bool {
    !k.contains('\n')
        && k.split_whitespace()
            .next()
            .is_some_and(compute::keypair::is_openssh_key_type)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::error_chain;
    use compute::metadata::MetaDataDocument;

    fn data(meta: MetaDataDocument) -> InstanceData {
        InstanceData {
            source: "test".into(),
            meta: MetaDataDocument {
                uuid: "i-1".into(),
                ..meta
            },
            network: Ok(None),
            vendor_data: Ok(None),
            user_data: Ok(None),
            files: Vec::new(),
        }
    }

    fn opts() -> PlanOptions {
        PlanOptions {
            user: "root".into(),
            generate_password: false,
        }
    }

    #[test]
    fn a_documents_problem_fails_its_step_with_the_whole_chain() {
        let mut data = data(MetaDataDocument {
            hostname: Some("web_01".into()),
            random_seed: Some("not base64!".into()),
            ..Default::default()
        });
        data.vendor_data = Ok(Some(serde_json::json!({ "cloud-init": 5 })));
        data.user_data = Ok(Some(
            b"#cloud-config\nwrite_files: [{path: /a, content: '!!', encoding: b64}]\n".to_vec(),
        ));
        let plan = build(data, &opts());
        let why = |e: Option<&PlanError>| error_chain(e.expect("this part fails"));
        assert_eq!(
            why(plan.user_data.as_ref().err()),
            "user data: #cloud-config: write_files `/a`: `content` is not base64: \
             Invalid symbol 33, offset 0."
        );
        assert_eq!(
            why(plan.vendor_data.as_ref().err()),
            "vendor data: `cloud-init` is not a string"
        );
        assert!(why(plan.random_seed.as_ref().err()).starts_with("random_seed is not base64: "));
        assert_eq!(
            why(plan.hostname.as_ref().err()),
            "`web_01` is not a valid hostname"
        );
    }

    #[test]
    fn the_seed_is_read_as_the_document_was_validated() {
        // Nova's decoder, and so the instance document's validation, skips line breaks.
        let seed = "aGVs\nbG8=";
        assert!(compute::instance::decode_base64(seed).is_ok());
        let plan = build(
            data(MetaDataDocument {
                random_seed: Some(seed.into()),
                ..Default::default()
            }),
            &opts(),
        );
        assert_eq!(plan.random_seed.ok(), Some(Some(b"hello".to_vec())));
    }

    #[test]
    fn hostnames_split_and_keys_filter() {
        assert_eq!(
            split_hostname("web-02.novalocal."),
            HostnamePlan {
                short: "web-02".into(),
                fqdn: "web-02.novalocal".into()
            }
        );
        assert_eq!(replace_short("a.novalocal", "b"), "b.novalocal");
        assert!(is_openssh_key("ssh-ed25519 AAAA x"));
        assert!(is_openssh_key("sk-ecdsa-sha2-nistp256@openssh.com AAAA x"));
        assert!(!is_openssh_key("-----BEGIN CERTIFICATE-----\nMII"));
        assert!(!is_openssh_key("ssh-unknown AAAA x"));
    }
}
