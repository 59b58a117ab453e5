//! `compute validate`: check an instance document and print every problem in it.

use super::Format;
use anyhow::Context;
use compute::{Instance, InstanceError};
use std::path::PathBuf;
use std::process::ExitCode;

/// Check an instance document; exit 0 when valid, 1 when not.
#[derive(Debug, clap::Args)]
pub struct ValidateArgs {
    /// The instance document (JSON); `-` reads standard input.
    #[arg(long, value_name = "FILE")]
    pub instance: PathBuf,
    /// Output format: text for people, json for scripts.
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
}

pub fn run(args: ValidateArgs) -> anyhow::Result<ExitCode> {
    let bytes = super::render::read_input(&args.instance)?;
    let result = Instance::from_json(&bytes);
    let errors: Vec<serde_json::Value> = match &result {
        Ok(_) => Vec::new(),
        Err(InstanceError::Parse { path, message }) => {
            vec![serde_json::json!({"field": path, "problem": message})]
        }
        Err(InstanceError::Invalid(list)) => list
            .iter()
            .map(|e| serde_json::json!({"field": e.field, "value": e.value, "problem": e.problem}))
            .collect(),
    };
    match args.format {
        Format::Json => {
            let out = serde_json::json!({"valid": errors.is_empty(), "errors": errors});
            println!(
                "{}",
                serde_json::to_string_pretty(&out).context("printing the report")?
            );
        }
        Format::Text => match &result {
            Ok(i) => println!(
                "{}: valid instance document for {} ({})",
                args.instance.display(),
                i.name(),
                i.uuid_str()
            ),
            Err(e) => eprintln!("{}: {e}", args.instance.display()),
        },
    }
    Ok(if errors.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
