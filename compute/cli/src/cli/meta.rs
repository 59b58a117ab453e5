//! `meta-set` and `meta-delete`: change an instance's metadata after boot (`nova meta
//! NAME set|delete`). The stored document changes in one locked update, so the
//! metadata service shows it (its revision moves); config drives already built keep
//! what they had, as in Nova.

use super::host::HostArgs;
use super::Format;
use anyhow::bail;
use compute::meta_edit::{edit_metadata, MetaEdit};
use std::process::ExitCode;

/// Set or update metadata on a server.
#[derive(Debug, clap::Args)]
pub struct MetaSetArgs {
    /// Name or ID of server.
    pub instance: String,
    /// Metadata to set: KEY=VALUE, one or more.
    #[arg(value_name = "KEY=VALUE", required = true)]
    pub items: Vec<String>,
    /// Output format of the server afterwards: text for people, json for scripts.
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
}

/// Delete metadata from a server.
#[derive(Debug, clap::Args)]
pub struct MetaDeleteArgs {
    /// Name or ID of server.
    pub instance: String,
    /// Metadata keys to delete, one or more.
    #[arg(value_name = "KEY", required = true)]
    pub keys: Vec<String>,
    /// Output format of the server afterwards: text for people, json for scripts.
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
}

pub fn run_set(host: &HostArgs, a: MetaSetArgs) -> anyhow::Result<ExitCode> {
    let mut items = Vec::new();
    for kv in &a.items {
        let Some((k, v)) = kv.split_once('=') else {
            bail!("{kv}: want KEY=VALUE")
        };
        items.push((k.to_owned(), v.to_owned()));
    }
    let mut records = host.records()?;
    let rec = records.store_mut().update_document(
        &a.instance,
        &compute_host::driver::now(),
        &|document| Ok(edit_metadata(document, MetaEdit::Set(&items))?),
    )?;
    super::show::print(&rec, a.format)?;
    Ok(ExitCode::SUCCESS)
}

pub fn run_delete(host: &HostArgs, a: MetaDeleteArgs) -> anyhow::Result<ExitCode> {
    let mut records = host.records()?;
    let rec = records.store_mut().update_document(
        &a.instance,
        &compute_host::driver::now(),
        &|document| Ok(edit_metadata(document, MetaEdit::Delete(&a.keys))?),
    )?;
    super::show::print(&rec, a.format)?;
    Ok(ExitCode::SUCCESS)
}
