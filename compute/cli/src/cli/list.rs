//! `compute list`: every instance, one line each (`nova list`).

use super::host::HostArgs;
use super::Format;
use serde_json::json;
use std::process::ExitCode;

/// List instances.
#[derive(Debug, clap::Args)]
pub struct ListArgs {
    /// Output format: text for people, json for scripts.
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
}

pub fn run(host: &HostArgs, args: ListArgs) -> anyhow::Result<ExitCode> {
    let host = host.records()?;
    let list = host.store().list_instances()?;
    match args.format {
        Format::Json => {
            let v: Vec<_> = list
                .iter()
                .map(|s| {
                    json!({
                        "id": s.uuid, "name": s.name, "status": s.state.status(),
                        "task_state": s.state.task.map(|t| t.as_str()),
                        "power_state": s.state.power.as_str(),
                        "networks": format!("private={}", s.fixed_ip),
                    })
                })
                .collect();
            println!("{}", serde_json::to_string(&v)?);
        }
        Format::Text => super::table::print(
            &[
                "ID",
                "Name",
                "Status",
                "Task State",
                "Power State",
                "Networks",
            ],
            list.iter().map(|s| {
                vec![
                    s.uuid.clone(),
                    s.name.clone(),
                    s.state.status().to_owned(),
                    s.state.task.map_or("-", |t| t.as_str()).to_owned(),
                    s.state.power.as_str().to_owned(),
                    format!("private={}", s.fixed_ip),
                ]
            }),
        ),
    }
    Ok(ExitCode::SUCCESS)
}
