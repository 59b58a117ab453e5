//! Carrying out a [`Plan`]: each step in the spec's order, each reported.
//!
//! Files go through [`FsRoot`], so with `--root` everything lands under that folder.
//! Live changes (netlink, the kernel hostname, `/dev/urandom`, running scripts) are
//! made only when `live` is set, and are reported as skipped otherwise. A step's
//! failure never stops the others. Steps other than network and hostname run once
//! per instance id (see [`crate::state`]).

mod guest;
mod netlink;
pub mod password;
pub mod root;
mod steps;

use crate::plan::Plan;
use crate::report::{Outcome, Report, Step, StepReport};
use crate::source::Provider;
use crate::state::InstanceState;
use root::FsRoot;
use std::path::PathBuf;

#[derive(Debug, Clone)]
pub struct ApplyOptions {
    /// The guest's `/`; the running system when it is `/`.
    pub root: PathBuf,
    /// Make live changes (netlink, kernel hostname, urandom, scripts).
    pub live: bool,
    /// Plan and report only.
    pub dry_run: bool,
    /// Also write systemd-networkd `.network` files.
    pub networkd: bool,
    /// The steps to consider; others are reported as skipped.
    pub steps: Vec<Step>,
}

/// Lines of one step's report, each `ok:`, `skipped:` or `failed:`.
#[derive(Debug, Default)]
pub(crate) struct StepLog {
    lines: Vec<String>,
    ok: bool,
    failed: bool,
    /// A live change was left for a run on the live system, so the step is not
    /// recorded as done for the instance.
    deferred: bool,
}

impl StepLog {
    pub(crate) fn ok(&mut self, s: impl Into<String>) {
        self.ok = true;
        self.lines.push(format!("ok: {}", s.into()));
    }
    pub(crate) fn skipped(&mut self, s: impl Into<String>) {
        self.lines.push(format!("skipped: {}", s.into()));
    }
    /// Skipped because it is a live change and this run is not live.
    pub(crate) fn deferred(&mut self, s: impl Into<String>) {
        self.deferred = true;
        self.skipped(s);
    }
    pub(crate) fn failed(&mut self, s: impl Into<String>) {
        self.failed = true;
        self.lines.push(format!("failed: {}", s.into()));
    }
    fn outcome(&self) -> Outcome {
        if self.failed {
            Outcome::Failed
        } else if self.ok {
            Outcome::Ok
        } else {
            Outcome::Skipped
        }
    }
}

/// What every step may use.
pub(crate) struct Ctx<'a> {
    pub root: FsRoot,
    pub live: bool,
    pub run_scripts: bool,
    pub networkd: bool,
    pub state: InstanceState,
    pub provider: Option<&'a mut dyn Provider>,
}

/// Applies the plan; `provider` is needed only to post a generated password.
pub fn apply(plan: &Plan, opts: &ApplyOptions, provider: Option<&mut dyn Provider>) -> Report {
    let mut report = Report {
        source: plan.source.clone(),
        instance_id: plan.instance_id.clone(),
        root: opts.root.display().to_string(),
        dry_run: opts.dry_run,
        steps: Vec::new(),
    };
    let root = match FsRoot::new(&opts.root) {
        Ok(r) => r,
        Err(e) => {
            for step in Step::ALL {
                let details = vec![format!("failed: root folder: {e}")];
                report.steps.push(StepReport {
                    step,
                    outcome: Outcome::Failed,
                    details,
                });
            }
            return report;
        }
    };
    let is_real_root = root.path() == std::path::Path::new("/");
    let mut ctx = Ctx {
        root,
        live: opts.live,
        run_scripts: opts.live && is_real_root,
        networkd: opts.networkd,
        state: InstanceState::new(&plan.instance_id),
        provider,
    };
    for step in Step::ALL {
        let mut log = StepLog::default();
        if !opts.steps.contains(&step) {
            log.skipped("not selected (--steps)");
        } else if !step.every_boot() && ctx.state.is_done(&ctx.root, step) {
            log.skipped(format!(
                "already applied for instance {} ({})",
                plan.instance_id,
                ctx.state.dir()
            ));
        } else if opts.dry_run {
            log.skipped(format!("dry run: {}", steps::describe(plan, step)));
        } else {
            steps::run(step, plan, &mut ctx, &mut log);
            // A live change left undone (scripts, the seed under --root) is still
            // owed to this instance: the step is not recorded as done.
            if !step.every_boot() && !log.failed && !log.deferred {
                if let Err(e) = ctx.state.mark_done(&ctx.root, step) {
                    log.failed(format!("cannot record the step as done: {e}"));
                }
            }
        }
        let outcome = log.outcome();
        tracing::info!(step = step.as_str(), ?outcome, "step finished");
        report.steps.push(StepReport {
            step,
            outcome,
            details: log.lines,
        });
    }
    report
}
