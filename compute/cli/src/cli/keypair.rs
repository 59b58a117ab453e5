//! Keypair verbs: `keypair-add` (generate, or import with `--pub-key`),
//! `keypair-list`, `keypair-show`, `keypair-delete`.

use super::host::HostArgs;
use super::Format;
use anyhow::{bail, Context};
use compute::keypair::Keypair;
use compute_io::tool::SSH_KEYGEN;
use std::path::PathBuf;
use std::process::ExitCode;

/// Add a keypair: import a public key, or generate one (private key printed once).
#[derive(Debug, clap::Args)]
pub struct KeypairAddArgs {
    /// Path to a public ssh key (without it, a key pair is generated).
    #[arg(long, value_name = "FILE")]
    pub pub_key: Option<PathBuf>,
    /// Name of key.
    pub name: String,
}

// No `///`: it would become the about line of keypair-show and keypair-delete alike.
#[derive(Debug, clap::Args)]
pub struct KeypairNameArgs {
    /// Keypair name.
    pub name: String,
    /// Output format: text for people, json for scripts.
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
}

#[derive(Debug, clap::Args)]
pub struct KeypairListArgs {
    /// Output format: text for people, json for scripts.
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
}

/// Generates an ed25519 key with `ssh-keygen` in a private temporary folder.
fn generate(name: &str) -> anyhow::Result<(String, String)> {
    let dir = tempfile::tempdir().context("temporary folder for key generation")?;
    let path = dir.path().join("key");
    let out = SSH_KEYGEN
        .command()
        .args(["-q", "-t", "ed25519", "-N", "", "-C", name, "-f"])
        .arg(&path)
        .output()
        .map_err(|e| SSH_KEYGEN.error(e))?;
    if !out.status.success() {
        bail!(
            "ssh-keygen failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let private = std::fs::read_to_string(&path).context("reading the generated key")?;
    let public =
        std::fs::read_to_string(path.with_extension("pub")).context("reading the generated key")?;
    Ok((private, public))
}

pub fn run_add(host: &HostArgs, a: KeypairAddArgs) -> anyhow::Result<ExitCode> {
    let host = host.open()?;
    let (private, public) = match &a.pub_key {
        Some(p) => (
            None,
            std::fs::read_to_string(p).with_context(|| format!("cannot read {}", p.display()))?,
        ),
        None => {
            let (private, public) = generate(&a.name)?;
            (Some(private), public)
        }
    };
    let kp = Keypair::new(&a.name, &public)?;
    host.store().add_keypair(&kp)?;
    match private {
        Some(p) => print!("{p}"),
        None => eprintln!("imported keypair {} ({})", kp.name, kp.fingerprint),
    }
    Ok(ExitCode::SUCCESS)
}

pub fn run_list(host: &HostArgs, a: KeypairListArgs) -> anyhow::Result<ExitCode> {
    let host = host.open()?;
    let keys = host.store().keypairs()?;
    match a.format {
        Format::Json => println!("{}", serde_json::to_string_pretty(&keys)?),
        Format::Text => super::table::print(
            &["Name", "Fingerprint"],
            keys.iter()
                .map(|k| vec![k.name.clone(), k.fingerprint.clone()]),
        ),
    }
    Ok(ExitCode::SUCCESS)
}

pub fn run_show(host: &HostArgs, a: KeypairNameArgs) -> anyhow::Result<ExitCode> {
    let host = host.open()?;
    let k = host.store().keypair(&a.name)?;
    match a.format {
        Format::Json => println!("{}", serde_json::to_string_pretty(&k)?),
        Format::Text => super::table::print(
            &["Property", "Value"],
            [
                vec!["name".into(), k.name.clone()],
                vec!["fingerprint".into(), k.fingerprint.clone()],
                vec!["public_key".into(), k.public_key.trim().to_owned()],
            ],
        ),
    }
    Ok(ExitCode::SUCCESS)
}

pub fn run_delete(host: &HostArgs, a: KeypairNameArgs) -> anyhow::Result<ExitCode> {
    let host = host.open()?;
    host.store().delete_keypair(&a.name)?;
    Ok(ExitCode::SUCCESS)
}
