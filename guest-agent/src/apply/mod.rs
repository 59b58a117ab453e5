//! Carrying out a [`Plan`]: each step in the spec's order, each reported.
//!
//! Files go through [`GuestFiles`] ([`FsRoot`] and one
//! [`compute_io::atomic::FileBatch`], see [`crate::guestfs`]), so with `--root`
//! everything lands under that folder, a file already as wanted is not rewritten
//! (the step says `unchanged`), and changed files are replaced and made durable
//! together.
//! Live changes (netlink, the kernel hostname, `/dev/urandom`, running scripts) are
//! made only when `live` is set, and are reported as skipped otherwise. A step's
//! failure never stops the others. Steps other than network and hostname run once
//! per instance id (see [`crate::state`]).

mod guest;
mod netlink;
pub mod password;
mod steps;

use crate::guestfs::{FsRoot, GuestFiles};
use crate::plan::Plan;
use crate::report::{error_chain, Outcome, Report, Step, StepReport};
use crate::source::Provider;
use crate::state::InstanceState;
use compute_io::atomic::{FileBatchError, Staged, Ticket, Written};
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

/// One line of a step's report.
#[derive(Debug)]
enum Line {
    Ok(String),
    Unchanged(String),
    Skipped(String),
    Failed(String),
    /// A staged file, reported as `ok` with this text once its commit succeeds.
    Pending {
        ticket: Ticket,
        path: String,
        ok: String,
    },
}

/// Lines of one step's report.
#[derive(Debug, Default)]
pub(crate) struct StepLog {
    lines: Vec<Line>,
    /// A live change was left for a run on the live system, so the step is not
    /// recorded as done for the instance.
    deferred: bool,
}

impl StepLog {
    pub(crate) fn ok(&mut self, s: impl Into<String>) {
        self.lines.push(Line::Ok(s.into()));
    }
    pub(crate) fn unchanged(&mut self, s: impl Into<String>) {
        self.lines.push(Line::Unchanged(s.into()));
    }
    pub(crate) fn skipped(&mut self, s: impl Into<String>) {
        self.lines.push(Line::Skipped(s.into()));
    }
    /// Skipped because it is a live change and this run is not live.
    pub(crate) fn deferred(&mut self, s: impl Into<String>) {
        self.deferred = true;
        self.skipped(s);
    }
    pub(crate) fn failed(&mut self, s: impl Into<String>) {
        self.lines.push(Line::Failed(s.into()));
    }
    /// A file staged for the run's commit; `ok` is the line once it is written.
    pub(crate) fn pending(&mut self, ticket: Ticket, path: &str, ok: impl Into<String>) {
        self.lines.push(Line::Pending {
            ticket,
            path: path.into(),
            ok: ok.into(),
        });
    }

    /// Turns pending lines into what their commit did.
    fn resolve(&mut self, files: &mut GuestFiles) {
        for line in &mut self.lines {
            if let Line::Pending { ticket, path, ok } = line {
                *line = match files.take_result(*ticket) {
                    Some(Ok(Written::Replaced)) => Line::Ok(std::mem::take(ok)),
                    Some(Ok(Written::Superseded)) => Line::Skipped(format!(
                        "{path}: superseded by a later write of the same file in this run"
                    )),
                    Some(Err(e)) => Line::Failed(error_chain(&e)),
                    None => Line::Failed(format!("{path}: never committed")),
                };
            }
        }
    }

    /// Files this step staged whose commit is still to come or not yet reported.
    fn pending_tickets(&self) -> Vec<Ticket> {
        self.lines
            .iter()
            .filter_map(|l| match l {
                Line::Pending { ticket, .. } => Some(*ticket),
                _ => None,
            })
            .collect()
    }

    fn has_failed(&self) -> bool {
        self.lines.iter().any(|l| matches!(l, Line::Failed(_)))
    }

    fn outcome(&self) -> Outcome {
        let any = |f: fn(&Line) -> bool| self.lines.iter().any(f);
        if self.has_failed() {
            Outcome::Failed
        } else if any(|l| matches!(l, Line::Ok(_) | Line::Pending { .. })) {
            Outcome::Ok
        } else if any(|l| matches!(l, Line::Unchanged(_))) {
            Outcome::Unchanged
        } else {
            Outcome::Skipped
        }
    }

    fn details(self) -> Vec<String> {
        self.lines
            .into_iter()
            .map(|l| match l {
                Line::Ok(s) | Line::Pending { ok: s, .. } => format!("ok: {s}"),
                Line::Unchanged(s) => format!("unchanged: {s}"),
                Line::Skipped(s) => format!("skipped: {s}"),
                Line::Failed(s) => format!("failed: {s}"),
            })
            .collect()
    }
}

/// What every step may use.
pub(crate) struct Ctx<'a> {
    pub files: GuestFiles,
    pub live: bool,
    pub run_scripts: bool,
    pub networkd: bool,
    pub state: InstanceState,
    pub provider: Option<&'a mut dyn Provider>,
}

/// Applies the plan; `provider` is needed only to post a generated password.
///
/// Files of all steps are committed together after the last step (earlier when a
/// script is about to run). A step's "done" marker is staged to follow the step's
/// files, so it is never durable before them and not written if one fails.
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
                let details = vec![format!("failed: {}", error_chain(&e))];
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
        files: GuestFiles::new(root),
        live: opts.live,
        run_scripts: opts.live && is_real_root,
        networkd: opts.networkd,
        state: InstanceState::new(&plan.instance_id),
        provider,
    };
    let mut logs: Vec<(Step, StepLog)> = Vec::new();
    // The steps' "done" markers: (index in `logs`, marker ticket).
    let mut markers = Vec::new();
    for step in Step::ALL {
        let mut log = StepLog::default();
        if !opts.steps.contains(&step) {
            log.skipped("not selected (--steps)");
        } else if !step.every_boot() && ctx.state.is_done(ctx.files.root(), step) {
            log.skipped(format!(
                "already applied for instance {} ({})",
                plan.instance_id,
                ctx.state.dir()
            ));
        } else if opts.dry_run {
            log.skipped(format!("dry run: {}", steps::describe(plan, step)));
        } else {
            steps::run(step, plan, &mut ctx, &mut log);
            if !step.every_boot() {
                if let Some(ticket) = mark_done(&mut ctx, step, &mut log) {
                    markers.push((logs.len(), ticket));
                }
            }
        }
        logs.push((step, log));
    }
    ctx.files.commit();
    for (_, log) in &mut logs {
        log.resolve(&mut ctx.files);
    }
    for (i, ticket) in markers {
        match ctx.files.take_result(ticket) {
            // The step's own failed line says why.
            Some(Err(FileBatchError::Prerequisite { .. })) | Some(Ok(_)) | None => {}
            Some(Err(e)) => logs[i].1.failed(format!(
                "cannot record the step as done: {}",
                error_chain(&e)
            )),
        }
    }

    for (step, log) in logs {
        let outcome = log.outcome();
        tracing::info!(step = step.as_str(), ?outcome, "step finished");
        report.steps.push(StepReport {
            step,
            outcome,
            details: log.details(),
        });
    }
    report
}

/// Stages the marker of a once-per-instance step that ran, to follow its files.
/// A live change left undone (scripts, the seed under --root) is still owed to this
/// instance: such a step is not recorded as done, nor is one that failed.
fn mark_done(ctx: &mut Ctx<'_>, step: Step, log: &mut StepLog) -> Option<Ticket> {
    let files = log.pending_tickets();
    // Files committed early (before a script ran) have their result already.
    if log.has_failed() || log.deferred || files.iter().any(|t| ctx.files.failed(*t)) {
        return None;
    }
    match ctx.state.mark_done(&mut ctx.files, step, &files) {
        Ok(Staged::Pending(ticket)) => Some(ticket),
        Ok(Staged::Unchanged) => None,
        Err(e) => {
            log.failed(format!(
                "cannot record the step as done: {}",
                error_chain(&e)
            ));
            None
        }
    }
}
