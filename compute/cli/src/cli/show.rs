//! `compute show`: one instance, as `nova show` prints it, or JSON for scripts.

use super::host::HostArgs;
use super::Format;
use compute_store::InstanceRecord;
use serde_json::{json, Value};
use std::process::ExitCode;

/// Show one instance (by name or uuid).
#[derive(Debug, clap::Args)]
pub struct ShowArgs {
    /// Name or ID of server.
    pub instance: String,
    /// Output format: text for people, json for scripts.
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
}

/// The instance as Nova's API shows it.
pub fn to_json(rec: &InstanceRecord) -> Value {
    json!({
        "id": rec.uuid,
        "name": rec.name,
        "status": rec.state.status(),
        "OS-EXT-SRV-ATTR:host": rec.host,
        "vm_state": rec.state.vm.as_str(),
        "task_state": rec.state.task.map(|t| t.as_str()),
        "power_state": rec.state.power.as_str(),
        "power_state_code": rec.state.power.code(),
        "addresses": {
            "private": [{
                "addr": rec.fixed_ip.to_string(),
                "version": 4,
                "OS-EXT-IPS:type": "fixed",
                "OS-EXT-IPS-MAC:mac_addr": rec.mac.to_string(),
            }]
        },
        "flavor": rec.flavor,
        "image": rec.image_id,
        "key_name": rec.key_name,
        "fault": rec.fault,
        "ssh": rec.ssh_port.map(|p| format!("127.0.0.1:{p}")),
        "pid": rec.pid,
        "created": rec.created_at,
        "updated": rec.updated_at,
    })
}

/// Prints an instance for people (a property table) or scripts.
pub fn print(rec: &InstanceRecord, format: Format) -> anyhow::Result<()> {
    let v = to_json(rec);
    match format {
        Format::Json => println!("{}", serde_json::to_string_pretty(&v)?),
        Format::Text => {
            let rows: Vec<(String, String)> = v
                .as_object()
                .into_iter()
                .flatten()
                .map(|(k, v)| {
                    let text = match v {
                        Value::String(s) => s.clone(),
                        Value::Null => "-".into(),
                        other => other.to_string(),
                    };
                    (k.clone(), text)
                })
                .collect();
            super::table::print(
                &["Property", "Value"],
                rows.iter().map(|(k, v)| vec![k.clone(), v.clone()]),
            );
        }
    }
    Ok(())
}

pub fn run(host: &HostArgs, args: ShowArgs) -> anyhow::Result<ExitCode> {
    let host = host.records()?;
    print(&host.store().find_instance(&args.instance)?, args.format)?;
    Ok(ExitCode::SUCCESS)
}
