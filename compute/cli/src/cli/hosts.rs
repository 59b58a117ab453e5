//! Host verbs, shaped like `openstack compute service list` and `openstack
//! hypervisor show`: `host-list`, `host-show`, `host-disable`, `host-enable`.

use super::host::HostArgs;
use super::Format;
use compute::placement::DEFAULT_UP_TIMEOUT;
use compute_store::HostRecord;
use serde_json::{json, Value};
use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct HostListArgs {
    /// Output format: text for people, json for scripts.
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
}

#[derive(Debug, clap::Args)]
pub struct HostNameArgs {
    /// Name of the host (see `compute host-list`).
    pub host: String,
    /// Output format: text for people, json for scripts.
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
}

#[derive(Debug, clap::Args)]
pub struct HostEnableArgs {
    /// Name of the host (see `compute host-list`).
    pub host: String,
}

#[derive(Debug, clap::Args)]
pub struct HostDisableArgs {
    /// Name of the host (see `compute host-list`).
    pub host: String,
    /// Why it is disabled (shown by host-list and in refused boots).
    #[arg(long)]
    pub reason: Option<String>,
}

fn status(h: &HostRecord) -> &'static str {
    if h.enabled {
        "enabled"
    } else {
        "disabled"
    }
}

fn state(h: &HostRecord) -> &'static str {
    if h.placement_state().is_up(DEFAULT_UP_TIMEOUT) {
        "up"
    } else {
        "down"
    }
}

fn summary(h: &HostRecord) -> Value {
    json!({
        "host": h.name,
        "status": status(h),
        "state": state(h),
        "updated_at": h.heartbeat_at,
        "disabled_reason": h.disabled_reason,
    })
}

/// The host with its capacity and use, in `openstack hypervisor show`'s words.
fn detail(h: &HostRecord) -> Value {
    let limit = h.placement_state().limit();
    json!({
        "host": h.name,
        "status": status(h),
        "state": state(h),
        "updated_at": h.heartbeat_at,
        "disabled_reason": h.disabled_reason,
        "vcpus": h.capacity.vcpus,
        "vcpus_used": h.used.vcpus,
        "vcpus_limit": limit.vcpus,
        "memory_mb": h.capacity.ram_mb,
        "memory_mb_used": h.used.ram_mb,
        "memory_mb_limit": limit.ram_mb,
        "local_gb": h.capacity.disk_gb,
        "local_gb_used": h.used.disk_gb,
        "local_gb_limit": limit.disk_gb,
        "cpu_allocation_ratio": h.ratios.cpu,
        "ram_allocation_ratio": h.ratios.ram,
        "disk_allocation_ratio": h.ratios.disk,
        "running_vms": h.instances,
    })
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "-".into(),
        other => other.to_string(),
    }
}

pub fn run_list(host: &HostArgs, a: HostListArgs) -> anyhow::Result<ExitCode> {
    let records = host.records()?;
    let hosts: Vec<Value> = records.store().hosts()?.iter().map(summary).collect();
    match a.format {
        Format::Json => println!("{}", serde_json::to_string_pretty(&hosts)?),
        Format::Text => super::table::print(
            &["Host", "Status", "State", "Updated At", "Disabled Reason"],
            hosts.iter().map(|h| {
                ["host", "status", "state", "updated_at", "disabled_reason"]
                    .iter()
                    .map(|k| text(&h[k]))
                    .collect()
            }),
        ),
    }
    Ok(ExitCode::SUCCESS)
}

pub fn run_show(host: &HostArgs, a: HostNameArgs) -> anyhow::Result<ExitCode> {
    let records = host.records()?;
    let v = detail(&records.store().host(&a.host)?);
    match a.format {
        Format::Json => println!("{}", serde_json::to_string_pretty(&v)?),
        Format::Text => super::table::print(
            &["Property", "Value"],
            v.as_object()
                .into_iter()
                .flatten()
                .map(|(k, v)| vec![k.clone(), text(v)]),
        ),
    }
    Ok(ExitCode::SUCCESS)
}

pub fn run_disable(host: &HostArgs, a: HostDisableArgs) -> anyhow::Result<ExitCode> {
    let records = host.records()?;
    records
        .store()
        .set_host_enabled(&a.host, false, a.reason.as_deref())?;
    eprintln!("host {} disabled: no new instance is placed on it", a.host);
    Ok(ExitCode::SUCCESS)
}

pub fn run_enable(host: &HostArgs, a: HostEnableArgs) -> anyhow::Result<ExitCode> {
    let records = host.records()?;
    records.store().set_host_enabled(&a.host, true, None)?;
    eprintln!("host {} enabled", a.host);
    Ok(ExitCode::SUCCESS)
}
