//! The driver's lifecycle events, as an operator sees them with `RUST_LOG=info`:
//! each names its instance (the entry point's span carries the uuid) and what
//! happened. The default filter (warn) shows none of them.

use std::process::Output;

mod common;

use common::{stderr, Env};

fn logged(env: &Env, args: &[&str], qemu: Option<&std::path::Path>) -> Output {
    env.command(args, qemu)
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .output()
        .expect("run compute")
}

#[test]
fn boot_and_delete_say_what_happened_to_which_instance() {
    let env = Env::new();
    let qemu = env.fake_qemu("echo 'qemu-system-x86_64: boom' >&2; exit 1");
    let boot = ["boot", "--image", "blank", "--flavor", "m1.tiny", "vm"];
    let out = logged(&env, &boot, Some(&qemu));
    assert!(!out.status.success());
    let log = stderr(&out);
    let uuid = env.json(&["show", "vm", "--format", "json"])["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let lines: Vec<&str> = log.lines().collect();
    let line = |what: &str| {
        lines
            .iter()
            .find(|l| l.contains(what))
            .unwrap_or_else(|| panic!("no `{what}` in:\n{log}"))
            .to_string()
    };
    let started = line("boot started");
    assert!(
        started.contains(&format!("boot{{uuid={uuid}}}: ")),
        "{started}"
    );
    assert!(started.contains("flavor=\"m1.tiny\""), "{started}");
    let failed = line("boot failed");
    assert!(failed.contains("vm_state=error"), "{failed}");
    assert!(failed.contains("boom"), "{failed}");

    let out = logged(&env, &["delete", "vm"], None);
    assert!(out.status.success(), "{}", stderr(&out));
    let log = stderr(&out);
    let task = log
        .lines()
        .find(|l| l.contains("task started"))
        .unwrap_or_else(|| panic!("no task in:\n{log}"));
    assert!(task.contains(&format!("delete{{uuid={uuid}}}: ")), "{task}");
    assert!(task.contains("action=Delete"), "{task}");
    assert!(task.contains("task_state=\"deleting\""), "{task}");
    assert!(log.contains("deleted"), "{log}");

    let quiet = env.run(&["list"]);
    assert_eq!(stderr(&quiet), "", "nothing at the default level");
}
