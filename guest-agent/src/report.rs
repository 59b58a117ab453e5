//! What the agent did: one entry per step, its outcome and why, as text or JSON.
//! Details never carry secrets (passwords, user data, tokens).
//!
//! Each detail line starts with `ok:` (changed), `unchanged:` (already as wanted,
//! not written), `skipped:` or `failed:`. A step failed when one of its lines did,
//! else is ok when one changed something, else unchanged when one found its part
//! already as wanted, else skipped.

use serde::Serialize;

/// The steps, in the order they run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Step {
    Network,
    Hostname,
    SshKeys,
    Files,
    Password,
    RandomSeed,
    VendorData,
    UserData,
}

impl Step {
    pub const ALL: [Step; 8] = [
        Step::Network,
        Step::Hostname,
        Step::SshKeys,
        Step::Files,
        Step::Password,
        Step::RandomSeed,
        Step::VendorData,
        Step::UserData,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Step::Network => "network",
            Step::Hostname => "hostname",
            Step::SshKeys => "ssh-keys",
            Step::Files => "files",
            Step::Password => "password",
            Step::RandomSeed => "random-seed",
            Step::VendorData => "vendor-data",
            Step::UserData => "user-data",
        }
    }

    /// Network and hostname follow the data at every boot; the rest happen once per
    /// instance id.
    pub fn every_boot(self) -> bool {
        matches!(self, Step::Network | Step::Hostname)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// Something was changed.
    Ok,
    /// Everything the step looked after was already as wanted; nothing written.
    Unchanged,
    Skipped,
    Failed,
}

#[derive(Debug, Clone, Serialize)]
pub struct StepReport {
    pub step: Step,
    pub outcome: Outcome,
    /// Why, and what was done: one line each.
    pub details: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub source: String,
    pub instance_id: String,
    pub root: String,
    pub dry_run: bool,
    pub steps: Vec<StepReport>,
}

impl Report {
    pub fn failed(&self) -> bool {
        self.steps.iter().any(|s| s.outcome == Outcome::Failed)
    }

    pub fn to_text(&self) -> String {
        let mut s = format!("instance {} from {}\n", self.instance_id, self.source);
        for step in &self.steps {
            let outcome = match step.outcome {
                Outcome::Ok => "ok",
                Outcome::Unchanged => "unchanged",
                Outcome::Skipped => "skipped",
                Outcome::Failed => "FAILED",
            };
            s.push_str(&format!("{:<12} {outcome}\n", step.step.as_str()));
            for d in &step.details {
                s.push_str(&format!("    {d}\n"));
            }
        }
        s
    }
}

pub use compute::error_chain;

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("cannot write /etc/motd")]
    struct Outer(#[source] Quoting);

    /// Like some errors of other crates: quotes its source.
    #[derive(Debug, thiserror::Error)]
    #[error("io: {0}")]
    struct Quoting(#[source] std::io::Error);

    #[test]
    fn every_layer_once() {
        let e = Outer(Quoting(std::io::Error::other("disk full")));
        assert_eq!(error_chain(&e), "cannot write /etc/motd: io: disk full");
    }
}
