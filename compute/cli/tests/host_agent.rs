//! Host agents as real processes on one shared PostgreSQL database, each with its
//! own state folder, driven by the `compute` CLI from a third folder: two hosts
//! with placement and `--host`, images reaching a host only through the database,
//! one agent per host name, SIGTERM leaving guests running, and an agent killed with
//! SIGKILL in the middle of a boot. Guests are QEMU on a blank disk (nothing boots;
//! the lifecycle with a real guest is `cli_lifecycle`).

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

mod common;

use common::shared::Shared;
use common::stderr;

const PATIENCE: Duration = Duration::from_secs(120);

fn fake_qemu(s: &Shared, body: &str) -> PathBuf {
    let path = s.path("fake-qemu");
    std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).expect("write script");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    path
}

/// Whether the QEMU of instance `uuid` runs as `pid` (a zombie does not).
fn alive(pid: i64, uuid: &str) -> bool {
    compute_host::qemu::process::is_guest(pid as i32, uuid)
}

#[test]
fn two_hosts_share_one_database_and_images_reach_them_through_it() {
    let s = Shared::new();
    let image = s.blank_image();
    assert!(
        !s.control().join("images").join(&image).exists(),
        "the importing machine keeps no copy"
    );
    assert_ne!(
        s.db.psql("SELECT COUNT(*) FROM image_chunks"),
        "0",
        "the bytes are in the database"
    );
    let mut h1 = s.agent("h1", None);
    let h2 = s.agent("h2", None);
    s.wait_until("both hosts up", PATIENCE, || s.is_up("h1") && s.is_up("h2"));

    // One agent per name: a second h1 is refused, naming the lock and its holder.
    let mut again = s.agent_with("h1", None, &[]);
    assert_eq!(again.wait_exit(PATIENCE), Some(1), "{}", again.log());
    let log = again.log();
    assert!(
        log.contains("error: host agent h1 cannot start: another host agent named h1 is running: it holds the advisory lock `compute-host-agent:h1`"),
        "{log}"
    );
    assert!(log.contains("`compute host-agent h1`"), "{log}");
    assert!(
        h1.child.try_wait().expect("wait").is_none(),
        "the first runs on"
    );

    let vm1 = s.json(&[
        "boot", "--image", "blank", "--flavor", "m1.tiny", "--host", "h2", "--format", "json",
        "vm1",
    ]);
    assert_eq!(
        (vm1["status"].as_str(), vm1["OS-EXT-SRV-ATTR:host"].as_str()),
        (Some("ACTIVE"), Some("h2")),
        "{vm1}\n{}",
        h2.log()
    );
    let uuid1 = vm1["id"].as_str().expect("id").to_owned();
    assert!(h2
        .state
        .join("instances")
        .join(&uuid1)
        .join("disk")
        .exists());
    assert!(
        h2.state.join("images").join(&image).join("disk").exists(),
        "h2 fetched the image from the database"
    );
    assert!(
        !h1.state.join("images").join(&image).exists(),
        "h1 has no use for it yet"
    );
    assert!(
        h2.log().contains("image file fetched from the database"),
        "{}",
        h2.log()
    );

    // Placement chooses; the instance runs where the database says.
    let vm2 = s.json(&[
        "boot", "--image", "blank", "--flavor", "m1.tiny", "--format", "json", "vm2",
    ]);
    assert_eq!(vm2["status"], "ACTIVE", "{vm2}");
    let on = vm2["OS-EXT-SRV-ATTR:host"]
        .as_str()
        .expect("host")
        .to_owned();
    let uuid2 = vm2["id"].as_str().expect("id").to_owned();
    assert!(s
        .path(&format!("state-{on}"))
        .join("instances")
        .join(&uuid2)
        .exists());
    let hosts = s.json(&["host-list", "--format", "json"]);
    assert_eq!(hosts.as_array().map(Vec::len), Some(2));

    // The console is on the host: its agent reads it for the CLI.
    let out = s.run(&["console-log", "vm1", "--length", "5"]);
    assert!(out.status.success(), "{}", stderr(&out));

    let stopped = s.json(&["stop", "vm1", "--timeout", "1", "--format", "json"]);
    assert_eq!(
        (stopped["status"].as_str(), stopped["pid"].as_i64()),
        (Some("SHUTOFF"), None)
    );
    let queued = s.ok(&["start", "vm1", "--no-wait"]);
    assert!(
        queued.starts_with("work ")
            && queued.contains(&format!("queued: start of vm1 ({uuid1}) on host h2")),
        "{queued}"
    );
    s.wait_until("vm1 active again", PATIENCE, || {
        s.show("vm1")["status"] == "ACTIVE"
    });
    let e = stderr(&s.run(&["start", "vm1"]));
    assert!(e.contains("error: "), "{e}");
    assert!(
        e.to_lowercase().contains("start"),
        "refused before queueing: {e}"
    );

    // SIGTERM: the agent stops, its guest keeps running, its name is free again.
    let pid = s.show("vm1")["pid"].as_i64().expect("pid");
    let mut h2 = h2;
    h2.signal("TERM");
    assert_eq!(h2.wait_exit(PATIENCE), Some(0), "{}", h2.log());
    assert!(h2
        .log()
        .contains("host agent stopped; its guests keep running"));
    assert!(alive(pid, &uuid1), "the guest outlives its agent");
    // Work for a host whose agent is away waits for it (and says so).
    let out = s.run(&["pause", "vm1", "--wait-timeout", "1"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let e = stderr(&out);
    assert!(e.contains("is still queued after 1 s"), "{e}");
    let h2 = s.agent("h2", None);
    s.wait_until("vm1 paused by the new agent", PATIENCE, || {
        s.show("vm1")["status"] == "PAUSED"
    });
    assert_eq!(s.show("vm1")["pid"].as_i64(), Some(pid), "the same QEMU");

    for vm in ["vm1", "vm2"] {
        let out = s.run(&["delete", vm]);
        assert!(out.status.success(), "{}", stderr(&out));
    }
    assert_eq!(s.json(&["list", "--format", "json"]), serde_json::json!([]));
    assert!(!h2.state.join("instances").join(&uuid1).exists());
    assert!(!alive(pid, &uuid1));
    h1.signal("TERM");
    assert_eq!(h1.wait_exit(PATIENCE), Some(0), "{}", h1.log());
}

#[test]
fn an_agent_killed_mid_boot_builds_it_after_its_restart() {
    let s = Shared::new();
    s.blank_image();
    // A QEMU that writes its pid file and never finishes starting: the agent is
    // killed while it waits for it.
    let hang = fake_qemu(
        &s,
        "while [ $# -gt 0 ]; do [ \"$1\" = -pidfile ] && echo $$ > \"$2\"; shift; done\nwhile :; do sleep 1; done",
    );
    let mut agent = s.agent("h1", Some(&hang));
    s.wait_until("h1 up", PATIENCE, || s.is_up("h1"));
    let queued = s.json(&[
        "boot",
        "--image",
        "blank",
        "--flavor",
        "m1.tiny",
        "--no-wait",
        "--format",
        "json",
        "vm",
    ]);
    let work = queued["work"].as_u64().expect("work id");
    let uuid = queued["instance"].as_str().expect("uuid").to_owned();
    let pidfile = agent.state.join("instances").join(&uuid).join("qemu.pid");
    s.wait_until("the fake QEMU started", PATIENCE, || {
        std::fs::read_to_string(&pidfile).is_ok_and(|p| p.trim().parse::<i32>().is_ok())
    });
    let fake: i64 = std::fs::read_to_string(&pidfile)
        .expect("pid")
        .trim()
        .parse()
        .expect("pid");
    agent.kill9();
    assert_eq!(s.show("vm")["status"], "BUILD");
    assert_eq!(
        s.db.psql(&format!("SELECT state FROM work WHERE id = {work}")),
        "running"
    );

    // The next agent queues the boot again, cleans up after the killed one, builds.
    let agent = s.agent("h1", None);
    s.wait_until("vm active", PATIENCE, || s.show("vm")["status"] != "BUILD");
    let vm = s.show("vm");
    assert_eq!(vm["status"], "ACTIVE", "{vm}\n{}", agent.log());
    assert!(vm["fault"].is_null(), "{vm}");
    assert!(!alive(fake, &uuid), "the stray QEMU is gone");
    assert_eq!(
        s.db.psql(&format!("SELECT state FROM work WHERE id = {work}")),
        "done"
    );
    let log = agent.log();
    assert!(
        log.contains("work a previous agent of this host had taken is queued again"),
        "{log}"
    );
    assert!(log.contains("its queued boot builds it again"), "{log}");
    let out = s.run(&["delete", "vm"]);
    assert!(out.status.success(), "{}", stderr(&out));
}

#[test]
fn an_agent_needs_a_database_and_a_name() {
    let s = Shared::new();
    let run = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_compute"))
            .arg("--state-dir")
            .arg(s.path("state"))
            .args(args)
            .env_remove("COMPUTE_DATABASE")
            .env_remove("COMPUTE_HOST")
            .output()
            .expect("run");
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        stderr(&out)
    };
    let e = run(&["host-agent", "--host", "h1"]);
    assert!(
        e.contains("host-agent serves a shared PostgreSQL database: give it --database URL"),
        "{e}"
    );
    let url = s.url();
    let e = run(&["--database", &url, "host-agent", "--host", "a b"]);
    assert!(e.contains("invalid host: `a b`"), "{e}");
    assert_eq!(
        s.db.psql("SELECT COUNT(*) FROM pg_tables WHERE tablename = 'hosts'"),
        "0",
        "nothing written"
    );
}

#[test]
fn sigterm_mid_action_finishes_it_before_the_agent_stops() {
    let s = Shared::new();
    s.blank_image();
    // A QEMU that takes three seconds to fail: the action is in progress meanwhile.
    let marker = s.path("qemu-started");
    let slow = fake_qemu(
        &s,
        &format!(
            "touch '{}'; sleep 3; echo 'qemu-system-x86_64: boom' >&2; exit 1",
            marker.display()
        ),
    );
    let mut agent = s.agent("h1", Some(&slow));
    s.wait_until("h1 up", PATIENCE, || s.is_up("h1"));
    let queued = s.json(&[
        "boot",
        "--image",
        "blank",
        "--flavor",
        "m1.tiny",
        "--no-wait",
        "--format",
        "json",
        "vm",
    ]);
    let work = queued["work"].as_u64().expect("work id");
    s.wait_until("the slow QEMU started", PATIENCE, || marker.exists());
    agent.signal("TERM");
    assert_eq!(agent.wait_exit(PATIENCE), Some(0), "{}", agent.log());
    let log = agent.log();
    let failed = log.find("work failed").expect("the action was finished");
    let stopped = log.find("host agent stopped").expect("then it stopped");
    assert!(failed < stopped, "{log}");
    assert_eq!(
        s.db.psql(&format!("SELECT state FROM work WHERE id = {work}")),
        "failed"
    );
    let vm = s.show("vm");
    assert_eq!(vm["status"], "ERROR", "{vm}");
    let fault = vm["fault"]["message"].as_str().expect("fault");
    assert!(fault.contains("boom"), "{fault}");
}
