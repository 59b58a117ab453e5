//! Faults through the real `compute` binary: each leaves a consistent database and a
//! clear message. A fake QEMU (a shell script) stands in where the fault is QEMU's.

use std::process::Command;
use std::time::{Duration, Instant};

mod common;

use common::{stderr, Env};

#[test]
fn unknown_flavor_and_missing_image_are_refused_before_anything_is_recorded() {
    let env = Env::new();
    let out = env.run_with(
        &["boot", "--image", "blank", "--flavor", "m9.huge", "vm"],
        None,
    );
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("no flavor named or with id `m9.huge`"),
        "{}",
        stderr(&out)
    );
    let out = env.run_with(
        &["boot", "--image", "nope", "--flavor", "m1.tiny", "vm"],
        None,
    );
    assert!(
        stderr(&out).contains("no image named or with id `nope`"),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        env.json(&["list", "--format", "json"]),
        serde_json::json!([])
    );
    assert_eq!(env.instance_dirs(), 0);
}

#[test]
fn a_qemu_that_fails_to_start_leaves_an_error_with_its_message() {
    let env = Env::new();
    let qemu =
        env.fake_qemu("echo 'qemu-system-x86_64: -drive: could not open disk: boom' >&2; exit 1");
    let out = env.run_with(
        &["boot", "--image", "blank", "--flavor", "m1.tiny", "vm"],
        Some(&qemu),
    );
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("QEMU failed to start"),
        "{}",
        stderr(&out)
    );
    let show = env.json(&["show", "vm", "--format", "json"]);
    assert_eq!(show["status"], "ERROR");
    let fault = show["fault"]["message"].as_str().expect("fault message");
    assert!(fault.contains("boom"), "{fault}");
    assert_eq!(show["fault"]["code"], 500);
    assert_eq!(env.instance_dirs(), 0, "no stray files");
    let out = env.run(&["delete", "vm"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        env.json(&["list", "--format", "json"]),
        serde_json::json!([])
    );
}

#[test]
fn a_sigkilled_qemu_shows_as_shutdown() {
    let env = Env::new();
    let boot = env.json(&[
        "boot", "--image", "blank", "--flavor", "m1.tiny", "--format", "json", "vm",
    ]);
    assert_eq!(boot["status"], "ACTIVE");
    let pid = boot["pid"].as_i64().expect("pid") as i32;
    let killed = Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status()
        .expect("kill");
    assert!(killed.success());
    let uuid = boot["id"].as_str().expect("id").to_owned();
    let deadline = Instant::now() + Duration::from_secs(30);
    while compute_host::qemu::process::is_guest(pid, &uuid) {
        assert!(Instant::now() < deadline, "QEMU survived SIGKILL");
        std::thread::sleep(Duration::from_millis(20));
    }
    let show = env.json(&["show", "vm", "--format", "json"]);
    assert_eq!(
        (show["status"].as_str(), show["power_state"].as_str()),
        (Some("SHUTOFF"), Some("shutdown"))
    );
    assert!(show["pid"].is_null());
    let start = env.json(&["start", "vm", "--format", "json"]);
    assert_eq!(start["status"], "ACTIVE");
    let out = env.run(&["delete", "vm"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(env.instance_dirs(), 0);
}

#[test]
fn compute_killed_mid_boot_is_cleaned_up_by_the_next_run() {
    let env = Env::new();
    // A QEMU that writes its pid file and then never finishes starting; its
    // /proc cmdline keeps the uuid, as QEMU's does, so reconcile recognises it.
    let qemu = env.fake_qemu(
        "while [ $# -gt 0 ]; do [ \"$1\" = -pidfile ] && echo $$ > \"$2\"; shift; done\nwhile :; do sleep 1; done",
    );
    let mut child = env
        .command(
            &["boot", "--image", "blank", "--flavor", "m1.tiny", "vm"],
            Some(&qemu),
        )
        .spawn()
        .expect("spawn compute");
    let instances = env.state().join("instances");
    let deadline = Instant::now() + Duration::from_secs(60);
    let pidfile = loop {
        let found = std::fs::read_dir(&instances)
            .ok()
            .and_then(|mut d| d.next())
            .and_then(|e| e.ok())
            .map(|e| e.path().join("qemu.pid"))
            .filter(|p| std::fs::read_to_string(p).is_ok_and(|s| s.trim().parse::<i32>().is_ok()));
        if let Some(p) = found {
            break p;
        }
        assert!(Instant::now() < deadline, "fake QEMU never started");
        std::thread::sleep(Duration::from_millis(20));
    };
    let fake_pid: i32 = std::fs::read_to_string(&pidfile)
        .expect("pid")
        .trim()
        .parse()
        .expect("pid");
    child.kill().expect("kill -9 compute");
    child.wait().expect("reap compute");

    let list = env.json(&["list", "--format", "json"]);
    assert_eq!(list[0]["status"], "ERROR", "{list}");
    let show = env.json(&["show", "vm", "--format", "json"]);
    let fault = show["fault"]["message"].as_str().expect("fault");
    assert!(fault.contains("aborted"), "{fault}");
    let uuid = show["id"].as_str().expect("id");
    assert!(
        !compute_host::qemu::process::is_guest(fake_pid, uuid),
        "the stray QEMU is gone"
    );
    assert_eq!(env.instance_dirs(), 0, "its files are gone");
    assert!(env.run(&["delete", "vm"]).status.success());
}
