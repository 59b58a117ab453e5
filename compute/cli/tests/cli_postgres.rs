//! The `compute` binary against a shared PostgreSQL database (`--database`, or
//! `COMPUTE_DATABASE`): the record verbs work there without opening a host; the
//! verbs that act on guests check the request, then queue it for the instance's
//! host agent (none runs here: see `host_agent`); a wrong database is named and
//! nothing is written.

use compute::placement::{Resources, DEFAULT_UP_TIMEOUT};
use compute_store::{Catchup, DocumentFeed, HostSpec, NewInstance, PgFeed, PgStore, Store};
use std::path::Path;
use std::process::{Command, Output};

fn compute(state: &Path, url: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_compute"))
        .arg("--state-dir")
        .arg(state)
        .args(["--database", url])
        .args(args)
        .output()
        .expect("run compute")
}

fn ok(state: &Path, url: &str, args: &[&str]) -> String {
    let out = compute(state, url, args);
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn json(state: &Path, url: &str, args: &[&str]) -> serde_json::Value {
    serde_json::from_str(&ok(state, url, args)).expect("json")
}

fn err(state: &Path, url: &str, args: &[&str]) -> String {
    let out = compute(state, url, args);
    assert_eq!(out.status.code(), Some(1), "{args:?} should fail");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn record_verbs_work_against_postgres() {
    let db = pgtest::cluster().database();
    let url = db.url();
    let dir = tempfile::tempdir().expect("tempdir");
    let state = dir.path().join("state");
    assert_eq!(
        json(&state, &url, &["flavor-list", "--format", "json"])
            .as_array()
            .map(Vec::len),
        Some(5)
    );
    ok(
        &state,
        &url,
        &[
            "flavor-create",
            "c1",
            "--vcpus",
            "1",
            "--ram",
            "128",
            "--disk",
            "1",
        ],
    );
    assert_eq!(
        db.psql("SELECT ram_mb FROM flavors WHERE name = 'c1'"),
        "128"
    );
    let pubkey = dir.path().join("id.pub");
    std::fs::write(
        &pubkey,
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl ops\n",
    )
    .expect("key");
    ok(
        &state,
        &url,
        &[
            "keypair-add",
            "--pub-key",
            pubkey.to_str().expect("utf-8"),
            "ops",
        ],
    );
    assert_eq!(db.psql("SELECT name FROM keypairs"), "ops");
    assert_eq!(
        json(&state, &url, &["host-list", "--format", "json"]),
        serde_json::json!([])
    );

    // Two hosts and an instance, as host agents would record them.
    let mut store = PgStore::connect(&url, "10.0.0.0/24".parse().expect("cidr")).expect("store");
    for name in ["h1", "h2"] {
        store
            .register_host(&HostSpec {
                name: name.into(),
                capacity: Resources {
                    vcpus: 4,
                    ram_mb: 8192,
                    disk_gb: 100,
                },
                ratios: None,
            })
            .expect("host");
    }
    let flavor = store.flavor("m1.tiny").expect("flavor");
    let uuid = "8a4d1b52-6f7e-4a3c-9d2b-1c0e5f6a7b8c";
    let doc = serde_json::json!({"uuid": uuid, "name": "vm", "meta": {"role": "web"}}).to_string();
    store
        .insert_instance(&NewInstance {
            uuid,
            name: "vm",
            flavor: &flavor,
            image_id: "img",
            key_name: Some("ops"),
            project_id: compute_store::DEFAULT_PROJECT_ID,
            user_id: compute_store::OPERATOR_USER_ID,
            now: "2024-01-01T00:00:00Z",
            host: Some("h2"),
            up_timeout: DEFAULT_UP_TIMEOUT,
            mac_candidates: vec![[0, 0, 1]],
            document: &|_, _| Ok(doc.clone()),
        })
        .expect("insert");

    let hosts = json(&state, &url, &["host-list", "--format", "json"]);
    assert_eq!(hosts[0]["host"], "h1");
    assert_eq!(hosts[1]["state"], "up");
    let h2 = json(&state, &url, &["host-show", "h2", "--format", "json"]);
    assert_eq!(
        (h2["running_vms"].as_u64(), h2["memory_mb_used"].as_u64()),
        (Some(1), Some(512))
    );
    let list = json(&state, &url, &["list", "--format", "json"]);
    assert_eq!(list[0]["name"], "vm");
    let show = json(&state, &url, &["show", "vm", "--format", "json"]);
    assert_eq!(show["OS-EXT-SRV-ATTR:host"], "h2");

    let mut feed = PgFeed::connect(&url).expect("feed");
    let rev = feed.rev().expect("rev");
    ok(&state, &url, &["meta-set", "vm", "role=db"]);
    match feed.changes_since(rev, Some("h2")).expect("changes") {
        Catchup::Changes { changes, .. } => {
            assert_eq!(changes.len(), 1);
            let compute_store::Change::Upsert(d) = &changes[0] else {
                panic!("{changes:?}")
            };
            let v: serde_json::Value = serde_json::from_slice(&d.document).expect("json");
            assert_eq!(v["meta"]["role"], "db");
        }
        other => panic!("{other:?}"),
    }

    ok(
        &state,
        &url,
        &["host-disable", "h2", "--reason", "disk swap"],
    );
    let h2 = json(&state, &url, &["host-show", "h2", "--format", "json"]);
    assert_eq!(
        (h2["status"].as_str(), h2["disabled_reason"].as_str()),
        (Some("disabled"), Some("disk swap"))
    );
    ok(&state, &url, &["host-enable", "h2"]);

    let e = err(
        &state,
        &url,
        &["boot", "--image", "img", "--flavor", "m1.tiny", "vm2"],
    );
    assert!(e.contains("no image named or with id `img`"), "{e}");
    assert_eq!(
        db.psql("SELECT COUNT(*) FROM instances"),
        "1",
        "nothing recorded"
    );
    // The lifecycle is checked before anything is queued: vm is still building.
    let e = err(&state, &url, &["stop", "vm"]);
    assert!(e.starts_with("error: "), "{e}");
    assert_eq!(db.psql("SELECT COUNT(*) FROM work"), "0", "nothing queued");
    let e = err(&state, &url, &["reboot", "vm", "--no-wait"]);
    assert!(e.starts_with("error: "), "{e}");
    assert_eq!(db.psql("SELECT COUNT(*) FROM work"), "0", "nothing queued");

    // A deletion is queued for h2's agent; without one it waits, then says so.
    let queued = json(
        &state,
        &url,
        &["delete", "vm", "--no-wait", "--format", "json"],
    );
    assert_eq!(
        (
            queued["action"].as_str(),
            queued["host"].as_str(),
            queued["instance"].as_str(),
            queued["state"].as_str()
        ),
        (Some("delete"), Some("h2"), Some(uuid), Some("queued"))
    );
    assert_eq!(
        db.psql("SELECT host, uuid, action, state FROM work"),
        format!("h2|{uuid}|delete|queued")
    );
    // The deletion shows as the instance's task at once: another is refused.
    let e = err(&state, &url, &["delete", "vm"]);
    assert!(e.contains("task_state deleting"), "{e}");
    let out = compute(&state, &url, &["console-log", "vm", "--wait-timeout", "1"]);
    assert_eq!(out.status.code(), Some(2));
    let e = String::from_utf8_lossy(&out.stderr);
    assert!(
        e.contains(&format!(
            "error: console-log of vm ({uuid}) on host h2 is still queued after 1 s"
        )),
        "{e}"
    );
    assert_eq!(store.list_instances().expect("list").len(), 1);
    assert!(!state.join("instances").exists(), "nothing of guests here");

    // --no-wait means nothing where the command does the work itself.
    let local = dir.path().join("local");
    let out = Command::new(env!("CARGO_BIN_EXE_compute"))
        .arg("--state-dir")
        .arg(&local)
        .args(["start", "vm", "--no-wait"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--no-wait needs a shared database"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_wrong_database_is_named_and_nothing_is_written() {
    let dir = tempfile::tempdir().expect("tempdir");
    let state = dir.path().join("state");
    let e = err(
        &state,
        "postgresql://nova:s3cret@127.0.0.1:1/compute",
        &["flavor-list"],
    );
    assert!(
        e.starts_with("error: cannot open the database postgresql://nova@127.0.0.1:1/compute: "),
        "{e}"
    );
    assert!(!e.contains("s3cret"), "{e}");
    assert!(!state.exists(), "nothing written");
    // The same from the environment.
    let out = Command::new(env!("CARGO_BIN_EXE_compute"))
        .arg("--state-dir")
        .arg(&state)
        .arg("host-list")
        .env(
            "COMPUTE_DATABASE",
            "postgresql://nova@%2Fnonexistent/compute",
        )
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1));
    let e = String::from_utf8_lossy(&out.stderr);
    assert!(
        e.contains("cannot open the database postgresql://nova@/compute?host=/nonexistent"),
        "{e}"
    );
    assert!(!state.exists(), "nothing written");
}
