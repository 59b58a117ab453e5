//! The database stopped hard under a running host agent (its own test binary: the
//! cluster goes away for every test of the binary). The agent logs, retries with
//! backoff, keeps its guest running, and carries on when the database is back:
//! heartbeats resume and queued work is done.

use std::process::Command;
use std::time::Duration;

mod common;

use common::shared::Shared;
use common::stderr;

const PATIENCE: Duration = Duration::from_secs(120);

#[test]
fn an_agent_rides_out_a_database_stopped_hard() {
    let s = Shared::new();
    let disk = s.path("root.qcow2");
    let ok = Command::new("qemu-img")
        .args(["create", "-q", "-f", "qcow2"])
        .arg(&disk)
        .arg("16M")
        .status()
        .expect("qemu-img");
    assert!(ok.success());
    s.ok(&[
        "image-import",
        "--name",
        "blank",
        "--file",
        disk.to_str().expect("utf-8"),
    ]);
    let agent = s.agent("h1", None);
    s.wait_until("h1 up", PATIENCE, || s.is_up("h1"));
    let vm = s.json(&[
        "boot", "--image", "blank", "--flavor", "m1.tiny", "--format", "json", "vm",
    ]);
    assert_eq!(vm["status"], "ACTIVE", "{vm}\n{}", agent.log());
    let pid = vm["pid"].as_i64().expect("pid");

    let cluster = pgtest::cluster();
    cluster.kill();
    agent.wait_log("heartbeat failed", PATIENCE);
    agent.wait_log("cannot listen for work", PATIENCE);
    // It retries, backing off, while the database is away.
    s.wait_until("a second heartbeat failure", PATIENCE, || {
        agent.log().matches("heartbeat failed").count() >= 2
    });
    let mut agent = agent;
    assert!(
        agent.child.try_wait().expect("wait").is_none(),
        "the agent runs on:\n{}",
        agent.log()
    );
    let log = agent.log();
    assert!(log.contains("retry_in="), "{log}");
    assert!(
        std::path::Path::new(&format!("/proc/{pid}")).exists(),
        "the guest does not need the database"
    );
    let out = s.run(&["list"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("cannot open the database"),
        "{}",
        stderr(&out)
    );

    cluster.start();
    agent.wait_log("heartbeats again: the database is back", PATIENCE);
    s.wait_until("h1 up again", PATIENCE, || s.is_up("h1"));
    let stopped = s.json(&["stop", "vm", "--timeout", "1", "--format", "json"]);
    assert_eq!(stopped["status"], "SHUTOFF", "{stopped}\n{}", agent.log());
    let out = s.run(&["delete", "vm"]);
    assert!(out.status.success(), "{}", stderr(&out));
    agent.signal("TERM");
    assert_eq!(agent.wait_exit(PATIENCE), Some(0), "{}", agent.log());
}
