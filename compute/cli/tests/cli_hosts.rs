//! Hosts and metadata through the `compute` binary on a state folder: its one host
//! (this machine, up while compute runs), `--host` on boot, disabling, and
//! `meta-set`/`meta-delete` reaching the metadata service's feed.

mod common;

use common::Env;
use compute_store::{DocumentFeed, SqliteFeed};

#[test]
fn a_state_folder_is_one_host_that_boots_honour_and_refuse() {
    let env = Env::new();
    let hosts = env.json(&["host-list", "--format", "json"]);
    let hosts = hosts.as_array().expect("array");
    assert_eq!(hosts.len(), 1, "{hosts:?}");
    let name = hosts[0]["host"].as_str().expect("name").to_owned();
    assert_eq!(hosts[0]["status"], "enabled");
    assert_eq!(
        hosts[0]["state"], "up",
        "compute itself is the host while it runs"
    );
    let show = env.json(&["host-show", &name, "--format", "json"]);
    assert!(show["vcpus"].as_u64().expect("vcpus") >= 1, "{show}");
    assert!(show["memory_mb"].as_u64().expect("ram") >= 64, "{show}");
    assert_eq!(show["cpu_allocation_ratio"], 16.0);
    assert_eq!(show["running_vms"], 0);
    let text = env.ok(&["host-list"]);
    assert!(text.contains("| Host ") && text.contains(&name), "{text}");

    let err = env.err(&[
        "boot", "--image", "blank", "--flavor", "m1.tiny", "--host", "nope", "vm",
    ]);
    assert!(
        err.contains("No valid host was found. There is no host named nope"),
        "{err}"
    );
    env.ok(&["host-disable", &name, "--reason", "maintenance"]);
    let listed = env.json(&["host-list", "--format", "json"]);
    assert_eq!(listed[0]["status"], "disabled");
    assert_eq!(listed[0]["disabled_reason"], "maintenance");
    let err = env.err(&["boot", "--image", "blank", "--flavor", "m1.tiny", "vm"]);
    assert!(
        err.contains(&format!("{name} is disabled (maintenance)")),
        "{err}"
    );
    assert_eq!(env.instance_dirs(), 0, "a refused boot leaves nothing");
    env.ok(&["host-enable", &name]);

    let vm = env.json(&[
        "boot", "--image", "blank", "--flavor", "m1.tiny", "--host", &name, "--meta", "role=web",
        "--format", "json", "vm",
    ]);
    assert_eq!(vm["OS-EXT-SRV-ATTR:host"], name.as_str());
    assert_eq!(
        env.json(&["host-show", &name, "--format", "json"])["running_vms"],
        1
    );

    let mut feed = SqliteFeed::open(&env.state()).expect("feed");
    let before = feed.rev().expect("rev");
    env.ok(&["meta-set", "vm", "role=db", "tier=1"]);
    let meta = |feed: &mut SqliteFeed| {
        let doc = &feed.snapshot(None).expect("snapshot").documents[0];
        let v: serde_json::Value = serde_json::from_slice(&doc.document).expect("json");
        v["meta"].clone()
    };
    assert_eq!(
        meta(&mut feed),
        serde_json::json!({"role": "db", "tier": "1"})
    );
    assert!(feed.rev().expect("rev") > before);
    env.ok(&["meta-delete", "vm", "tier"]);
    assert_eq!(meta(&mut feed), serde_json::json!({"role": "db"}));
    let err = env.err(&["meta-delete", "vm", "nope"]);
    assert!(
        err.contains("is refused: no metadata key \"nope\""),
        "{err}"
    );
    let long = format!("k={}", "v".repeat(256));
    let err = env.err(&["meta-set", "vm", &long]);
    assert!(
        err.contains("metadata value of \"k\" is 256 characters, the limit is 255"),
        "{err}"
    );
    assert_eq!(
        meta(&mut feed),
        serde_json::json!({"role": "db"}),
        "refusals change nothing"
    );
    env.ok(&["delete", "vm"]);
}
