//! The steps themselves, one function each, in the spec's order.

use super::guest::{self, PasswdEntry};
use super::password::{self, PasswordError};
use super::{netlink, Ctx, StepLog};
use crate::guestfs::Attrs;
use crate::netplan;
use crate::plan::{DataPlan, FileWrite, PasswordPlan, Plan, PlanError};
use crate::report::{error_chain, Step};
use crate::source::{PasswordPost, SourceError};
use compute_io::atomic::Staged;
use std::io::Write;
use std::time::{Duration, Instant};

const PUBLIC: Attrs = Attrs {
    mode: 0o644,
    owner: None,
};
const SCRIPT: Attrs = Attrs {
    mode: 0o700,
    owner: None,
};
/// A user script may run this long before it is killed.
const SCRIPT_DEADLINE: Duration = Duration::from_secs(600);

/// A live change or a script that failed; the report shows the whole chain.
#[derive(Debug, thiserror::Error)]
enum StepError {
    #[error("cannot set the kernel hostname")]
    KernelHostname(#[source] std::io::Error),
    #[error("cannot write the seed to /dev/urandom")]
    Urandom(#[source] std::io::Error),
    #[error("script {name} cannot be run")]
    Script {
        name: String,
        #[source]
        source: std::io::Error,
    },
    #[error("script {name} was killed after {SCRIPT_DEADLINE:?}")]
    ScriptDeadline { name: String },
    #[error(transparent)]
    Password(#[from] PasswordError),
    #[error("no metadata service to post the password to")]
    NoPasswordEndpoint,
    #[error("cannot post the password")]
    PostPassword(#[source] SourceError),
}

pub(super) fn run(step: Step, plan: &Plan, ctx: &mut Ctx<'_>, log: &mut StepLog) {
    match step {
        Step::Network => network(plan, ctx, log),
        Step::Hostname => hostname(plan, ctx, log),
        Step::SshKeys => ssh_keys(plan, ctx, log),
        Step::Files => files(plan, ctx, log),
        Step::Password => set_password(plan, ctx, log),
        Step::RandomSeed => random_seed(plan, ctx, log),
        Step::VendorData => data(&plan.vendor_data, "vendor data", ctx, log),
        Step::UserData => data(&plan.user_data, "user data", ctx, log),
    }
}

/// One line saying what a step would do, for `--dry-run` (no secrets).
pub(super) fn describe(plan: &Plan, step: Step) -> String {
    match step {
        Step::Network => match &plan.network {
            Ok(Some(n)) => format!("{} link(s), {} DNS server(s)", n.links.len(), n.dns.len()),
            Ok(None) => "no network_data.json".into(),
            Err(e) => format!("would fail: {}", error_chain(e)),
        },
        Step::Hostname => match &plan.hostname {
            Ok(Some(h)) => format!("hostname {} ({})", h.short, h.fqdn),
            Ok(None) => "no hostname".into(),
            Err(e) => format!("would fail: {}", error_chain(e)),
        },
        Step::SshKeys => format!("{} key(s) for {}", plan.ssh_keys.len(), plan.user),
        Step::Files => format!("{} injected file(s)", plan.files.len()),
        Step::Password => match &plan.password {
            PasswordPlan::None => "nothing to set".into(),
            PasswordPlan::Set(_) => "set the root password from admin_pass".into(),
            PasswordPlan::GenerateAndPost { .. } => {
                "generate a root password and post it encrypted".into()
            }
        },
        Step::RandomSeed => format!(
            "{} byte(s) of seed",
            plan.random_seed
                .as_ref()
                .map(|s| s.as_ref().map_or(0, Vec::len))
                .unwrap_or(0)
        ),
        Step::VendorData | Step::UserData => {
            let d = if step == Step::VendorData {
                &plan.vendor_data
            } else {
                &plan.user_data
            };
            match d {
                Ok(Some(d)) => format!(
                    "{} file(s), {} script(s)",
                    d.write_files.len(),
                    d.scripts.len()
                ),
                Ok(None) => "none".into(),
                Err(e) => format!("would fail: {}", error_chain(e)),
            }
        }
    }
}

fn network(plan: &Plan, ctx: &mut Ctx<'_>, log: &mut StepLog) {
    let net = match &plan.network {
        Ok(Some(n)) => n,
        Ok(None) => return log.skipped("the source has no network_data.json"),
        Err(e) => return log.failed(error_chain(e)),
    };
    for u in &net.unsupported {
        log.skipped(u.clone());
    }
    if ctx.live {
        match netlink::apply(net) {
            Ok(out) => {
                out.done.into_iter().for_each(|d| log.ok(d));
                out.missing.into_iter().for_each(|d| log.skipped(d));
            }
            Err(e) => log.failed(error_chain(&e)),
        }
    } else {
        log.skipped(format!(
            "--root: {} link(s) not configured live (netlink)",
            net.links.len()
        ));
    }
    match netplan::resolv_conf(net) {
        Some(text) => write(ctx, log, "/etc/resolv.conf", text.as_bytes(), PUBLIC),
        None => log.skipped("no DNS servers; /etc/resolv.conf left alone"),
    }
    if ctx.networkd {
        for (name, text) in netplan::networkd_files(net) {
            write(
                ctx,
                log,
                &format!("/etc/systemd/network/{name}"),
                text.as_bytes(),
                PUBLIC,
            );
        }
    }
}

fn hostname(plan: &Plan, ctx: &mut Ctx<'_>, log: &mut StepLog) {
    let h = match &plan.hostname {
        Ok(Some(h)) => h,
        Ok(None) => return log.skipped("no hostname in the metadata"),
        Err(e) => return log.failed(error_chain(e)),
    };
    write(
        ctx,
        log,
        "/etc/hostname",
        format!("{}\n", h.short).as_bytes(),
        PUBLIC,
    );
    match ctx.files.read("/etc/hosts") {
        Ok(existing) => {
            let existing = existing.map(|b| String::from_utf8_lossy(&b).into_owned());
            let attrs = ctx.files.attrs_of("/etc/hosts").unwrap_or(PUBLIC);
            let text = guest::hosts_with(existing.as_deref(), &h.fqdn, &h.short);
            write(ctx, log, "/etc/hosts", text.as_bytes(), attrs);
        }
        Err(e) => log.failed(format!("/etc/hosts: {}", error_chain(&e))),
    }
    if ctx.live {
        const KERNEL_HOSTNAME: &str = "/proc/sys/kernel/hostname";
        let now = std::fs::read_to_string(KERNEL_HOSTNAME).unwrap_or_default();
        if now.trim_end() == h.short {
            log.unchanged(format!("kernel hostname {}", h.short));
        } else {
            match std::fs::write(KERNEL_HOSTNAME, &h.short) {
                Ok(()) => log.ok(format!("kernel hostname {}", h.short)),
                Err(e) => log.failed(error_chain(&StepError::KernelHostname(e))),
            }
        }
    } else {
        log.skipped("--root: kernel hostname not changed");
    }
}

fn user_entry(ctx: &Ctx<'_>, name: &str, log: &mut StepLog) -> PasswdEntry {
    let passwd = ctx
        .files
        .read("/etc/passwd")
        .ok()
        .flatten()
        .map(|b| String::from_utf8_lossy(&b).into_owned());
    match passwd.as_deref().and_then(|p| guest::lookup_user(p, name)) {
        Some(u) => u,
        None => {
            if name != "root" {
                log.skipped(format!("user {name} does not exist; keys go to root"));
            }
            guest::lookup_user(passwd.as_deref().unwrap_or(""), "root")
                .unwrap_or_else(guest::root_user)
        }
    }
}

fn ssh_keys(plan: &Plan, ctx: &mut Ctx<'_>, log: &mut StepLog) {
    if plan.ssh_keys.is_empty() {
        return log.skipped("no SSH keys in the metadata");
    }
    let user = user_entry(ctx, &plan.user, log);
    let owner = Some((user.uid, user.gid));
    let ssh_dir = format!("{}/.ssh", user.home.trim_end_matches('/'));
    if let Err(e) = ctx
        .files
        .create_dirs(&ssh_dir, Attrs { mode: 0o700, owner })
    {
        return log.failed(format!("{ssh_dir}: {}", error_chain(&e)));
    }
    // An existing folder may have the wrong mode or owner: fix it too.
    if let Err(e) = ctx
        .files
        .write_attrs(&ssh_dir, Attrs { mode: 0o700, owner })
    {
        return log.failed(format!("{ssh_dir}: {}", error_chain(&e)));
    }
    let path = format!("{ssh_dir}/authorized_keys");
    let existing = match ctx.files.read(&path) {
        Ok(b) => b
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default(),
        Err(e) => return log.failed(format!("{path}: {}", error_chain(&e))),
    };
    let (text, added) = guest::merge_keys(&existing, &plan.ssh_keys);
    let attrs = Attrs { mode: 0o600, owner };
    let who = format!("{} (uid {})", user.name, user.uid);
    match ctx.files.stage(&path, text.as_bytes(), attrs) {
        Ok(Staged::Unchanged) => log.unchanged(format!(
            "{path}: all {} key(s) already there for {who}",
            plan.ssh_keys.len()
        )),
        Ok(Staged::Pending(t)) => {
            log.pending(t, &path, format!("{path}: {added} key(s) added for {who}"))
        }
        Err(e) => log.failed(error_chain(&e)),
    }
}

fn files(plan: &Plan, ctx: &mut Ctx<'_>, log: &mut StepLog) {
    if plan.files.is_empty() {
        return log.skipped("no injected files");
    }
    for f in &plan.files {
        match f {
            Ok(f) => write_file(ctx, log, f),
            Err(e) => log.failed(error_chain(e)),
        }
    }
}

fn set_password(plan: &Plan, ctx: &mut Ctx<'_>, log: &mut StepLog) {
    let password = match &plan.password {
        PasswordPlan::None => {
            return log.skipped("no admin_pass, and --generate-password not given")
        }
        PasswordPlan::Set(p) => p.clone(),
        PasswordPlan::GenerateAndPost { rsa_key } => {
            match generate_and_post(rsa_key.as_deref(), ctx) {
                Ok(Some(p)) => {
                    log.ok("generated a password and posted it encrypted to the password endpoint");
                    p
                }
                Ok(None) => {
                    return log.skipped(
                        "the endpoint already holds a password (409); root password unchanged",
                    )
                }
                Err(e) => return log.failed(error_chain(&e)),
            }
        }
    };
    let hash = match password::hash(&password) {
        Ok(h) => h,
        Err(e) => return log.failed(error_chain(&e)),
    };
    let existing = match ctx.files.read("/etc/shadow") {
        Ok(b) => b.unwrap_or_default(),
        Err(e) => return log.failed(format!("/etc/shadow: {}", error_chain(&e))),
    };
    let days = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() / 86400)
        .unwrap_or(0);
    match password::with_root_hash(&existing, &hash, days) {
        Ok(text) => {
            let attrs = ctx.files.attrs_of("/etc/shadow").unwrap_or(Attrs {
                mode: 0o600,
                owner: Some((0, 0)),
            });
            let ok = "root password set (SHA-512 crypt in /etc/shadow)".into();
            stage(ctx, log, "/etc/shadow", text.as_bytes(), attrs, Some(ok));
        }
        Err(e) => log.failed(error_chain(&e)),
    }
}

/// `Ok(None)` when the endpoint already has a password.
fn generate_and_post(
    rsa_key: Option<&str>,
    ctx: &mut Ctx<'_>,
) -> Result<Option<String>, StepError> {
    let key = rsa_key.ok_or(PasswordError::NoRsaKey)?;
    let password = password::generate()?;
    let blob = password::encrypt_for(key, &password)?;
    let provider = ctx
        .provider
        .as_deref_mut()
        .ok_or(StepError::NoPasswordEndpoint)?;
    match provider.post_password(&blob) {
        Ok(PasswordPost::Stored) => Ok(Some(password)),
        Ok(PasswordPost::AlreadySet) => Ok(None),
        Err(e) => Err(StepError::PostPassword(e)),
    }
}

fn random_seed(plan: &Plan, ctx: &mut Ctx<'_>, log: &mut StepLog) {
    let seed = match &plan.random_seed {
        Ok(Some(s)) => s,
        Ok(None) => return log.skipped("no random_seed in the metadata"),
        Err(e) => return log.failed(error_chain(e)),
    };
    if !ctx.live {
        return log.deferred(format!(
            "--root: {} byte(s) not written to /dev/urandom",
            seed.len()
        ));
    }
    match std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/urandom")
        .and_then(|mut f| f.write_all(seed))
    {
        Ok(()) => log.ok(format!("{} byte(s) written to /dev/urandom", seed.len())),
        Err(e) => log.failed(error_chain(&StepError::Urandom(e))),
    }
}

fn data(d: &Result<Option<DataPlan>, PlanError>, what: &str, ctx: &mut Ctx<'_>, log: &mut StepLog) {
    let d = match d {
        Ok(Some(d)) => d,
        Ok(None) => return log.skipped(format!("no {what}")),
        Err(e) => return log.failed(error_chain(e)),
    };
    for f in &d.write_files {
        write_file(ctx, log, f);
    }
    if !d.scripts.is_empty() {
        if let Err(e) = ctx.state.create_dir(&mut ctx.files) {
            return log.failed(format!("{}: {}", ctx.state.dir(), error_chain(&e)));
        }
    }
    for (name, body) in &d.scripts {
        let path = format!("{}/scripts/{name}", ctx.state.dir());
        let Some(staged) = stage(ctx, log, &path, body, SCRIPT, None) else {
            continue;
        };
        if !ctx.run_scripts {
            log.deferred(format!("script {name} saved to {path}, not run (scripts run only on the live system, --root /)"));
            continue;
        }
        // The script may read what this run wrote, and needs its own file.
        ctx.files.commit();
        if matches!(staged, Staged::Pending(t) if ctx.files.failed(t)) {
            log.failed(format!("script {name} not run: its file was not written"));
            continue;
        }
        let host = match ctx.files.root().resolve(&path) {
            Ok(h) => h,
            Err(e) => {
                log.failed(format!("script {name}: {}", error_chain(&e)));
                continue;
            }
        };
        match run_script(name, &host) {
            Ok(status) if status.success() => log.ok(format!("script {name} ran ({status})")),
            Ok(status) => log.failed(format!("script {name} {status}")),
            Err(e) => log.failed(error_chain(&e)),
        }
    }
    for n in &d.not_applied {
        log.skipped(format!("not applied: {n}"));
    }
    if d.write_files.is_empty() && d.scripts.is_empty() && d.not_applied.is_empty() {
        log.skipped(format!("{what} has nothing the agent applies"));
    }
}

fn run_script(name: &str, path: &std::path::Path) -> Result<std::process::ExitStatus, StepError> {
    let failed = |source| StepError::Script {
        name: name.to_owned(),
        source,
    };
    let mut child = std::process::Command::new(path)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .map_err(failed)?;
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().map_err(failed)? {
            return Ok(status);
        }
        if start.elapsed() > SCRIPT_DEADLINE {
            let _ = child.kill();
            let _ = child.wait();
            return Err(StepError::ScriptDeadline {
                name: name.to_owned(),
            });
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn write_file(ctx: &mut Ctx<'_>, log: &mut StepLog, f: &FileWrite) {
    let mut contents = f.contents.clone();
    if f.append {
        match ctx.files.read(&f.path) {
            Ok(Some(mut old)) => {
                old.extend_from_slice(&contents);
                contents = old;
            }
            Ok(None) => {}
            Err(e) => return log.failed(format!("{}: {}", f.path, error_chain(&e))),
        }
    }
    write(
        ctx,
        log,
        &f.path,
        &contents,
        Attrs {
            mode: f.mode,
            owner: None,
        },
    );
}

/// Stages a file and logs it: `wrote PATH (N bytes, mode M)` once committed, or
/// unchanged.
fn write(ctx: &mut Ctx<'_>, log: &mut StepLog, path: &str, contents: &[u8], attrs: Attrs) {
    stage(ctx, log, path, contents, attrs, None);
}

/// [`write`] with the line to log once committed (`ok`, else `wrote ...`), returning
/// what was staged; `None` when it could not be (logged as failed).
fn stage(
    ctx: &mut Ctx<'_>,
    log: &mut StepLog,
    path: &str,
    contents: &[u8],
    attrs: Attrs,
    ok: Option<String>,
) -> Option<Staged> {
    let what = format!("{path} ({} bytes, mode {:o})", contents.len(), attrs.mode);
    match ctx.files.stage(path, contents, attrs) {
        Ok(staged) => {
            match staged {
                Staged::Unchanged => log.unchanged(what),
                Staged::Pending(t) => {
                    log.pending(t, path, ok.unwrap_or_else(|| format!("wrote {what}")))
                }
            }
            Some(staged)
        }
        Err(e) => {
            log.failed(error_chain(&e));
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn scripts_run_with_their_interpreter_and_report_status() {
        let dir = tempfile::tempdir().expect("tempdir");
        let marker = dir.path().join("ran");
        let script = dir.path().join("s");
        let body = format!("#!/bin/sh\necho ok > {}\nexit 3\n", marker.display());
        std::fs::write(&script, body).expect("write");
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o700)).expect("chmod");
        let status = run_script("s", &script).expect("runs");
        assert_eq!(status.code(), Some(3));
        assert_eq!(std::fs::read_to_string(marker).expect("ran"), "ok\n");
    }
}
