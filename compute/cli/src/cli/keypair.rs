//! Keypair verbs: `keypair-add` (generate, or import with `--pub-key`),
//! `keypair-list`, `keypair-show`, `keypair-delete`. Keypairs are per user, as in
//! Nova: these are the operator's, the user the command line acts as.

use super::host::HostArgs;
use super::Format;
use anyhow::Context;
use compute::keypair::Keypair;
use compute_host::driver::now;
use compute_store::OPERATOR_USER_ID;
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

pub fn run_add(host: &HostArgs, a: KeypairAddArgs) -> anyhow::Result<ExitCode> {
    let host = host.records()?;
    match &a.pub_key {
        Some(p) => {
            let public = std::fs::read_to_string(p)
                .with_context(|| format!("cannot read {}", p.display()))?;
            let kp = Keypair::new(&a.name, &public)?;
            host.store().add_keypair(OPERATOR_USER_ID, &kp, &now())?;
            eprintln!("imported keypair {} ({})", kp.name, kp.fingerprint);
        }
        None => {
            // The private key is shown once and kept nowhere.
            let key = compute_host::keygen::generate(&a.name)?;
            host.store().add_keypair(
                OPERATOR_USER_ID,
                &Keypair::new(&a.name, &key.public)?,
                &now(),
            )?;
            print!("{}", key.private);
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub fn run_list(host: &HostArgs, a: KeypairListArgs) -> anyhow::Result<ExitCode> {
    let host = host.records()?;
    let keys: Vec<Keypair> = host
        .store()
        .keypairs(OPERATOR_USER_ID)?
        .into_iter()
        .map(|k| k.keypair)
        .collect();
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
    let host = host.records()?;
    let k = host.store().keypair(OPERATOR_USER_ID, &a.name)?.keypair;
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
    let host = host.records()?;
    host.store().delete_keypair(OPERATOR_USER_ID, &a.name)?;
    Ok(ExitCode::SUCCESS)
}
