//! Keypairs, flavors, quotas, name resolution and per-instance locking through the
//! real `compute` binary (guests here are a blank disk: QEMU runs, nothing boots).

use std::time::{Duration, Instant};

mod common;

use common::Env;

#[test]
fn keypairs_are_generated_imported_fingerprinted_and_injected() {
    let env = Env::new();
    let private = env.ok(&["keypair-add", "gen"]);
    assert!(
        private.starts_with("-----BEGIN OPENSSH PRIVATE KEY-----"),
        "{private}"
    );
    let pubkey = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAAAgQDx8nkQv/zgGgB4rMYmIf+6A4l6Rr+o/6lHBQdW5aYd44bd8JttDCE/F/pNRr0lRE+PiqSPO8nDPHw0010JeMH9gYgnnFlyY3/OcJ02RhIPyyxYpv9FhY+2YiUkpwFOcLImyrxEsYXpD/0d3ac30bNH6Sw9JD9UZHYcpSxsIbECHw== Generated-by-Nova\n";
    std::fs::write(env.path("k.pub"), pubkey).expect("write key");
    env.ok(&[
        "keypair-add",
        "--pub-key",
        env.path("k.pub").to_str().expect("utf-8"),
        "mine",
    ]);
    assert!(env
        .err(&[
            "keypair-add",
            "--pub-key",
            env.path("k.pub").to_str().expect("utf-8"),
            "mine"
        ])
        .contains("already exists"));
    let list = env.json(&["keypair-list", "--format", "json"]);
    assert_eq!(list.as_array().map(Vec::len), Some(2));
    let mine = env.json(&["keypair-show", "mine", "--format", "json"]);
    assert_eq!(
        mine["fingerprint"],
        "1e:2c:9b:56:79:4b:45:77:f9:ca:7a:98:2c:b0:d5:3c"
    );

    let vm = env.json(&[
        "boot",
        "--image",
        "blank",
        "--flavor",
        "m1.tiny",
        "--key-name",
        "mine",
        "--meta",
        "role=web",
        "--format",
        "json",
        "vm",
    ]);
    let mut feed = compute_store::SqliteFeed::open(&env.state()).expect("feed");
    let docs = compute_store::DocumentFeed::snapshot(&mut feed, None)
        .expect("snapshot")
        .documents;
    let doc = compute::Instance::from_json(&docs[0].document).expect("valid");
    assert_eq!(doc.keys()[0].data, pubkey);
    assert_eq!(doc.meta().get("role").map(String::as_str), Some("web"));
    assert_eq!(doc.uuid_str(), vm["id"].as_str().expect("id"));
    env.ok(&["delete", "vm"]);
    env.ok(&["keypair-delete", "mine"]);
    assert!(env
        .err(&["keypair-show", "mine"])
        .contains("no keypair named"));
}

#[test]
fn flavors_quotas_and_ambiguous_names() {
    let env = Env::new();
    let flavors = env.json(&["flavor-list", "--format", "json"]);
    assert_eq!(flavors.as_array().map(Vec::len), Some(5));
    env.ok(&[
        "flavor-create",
        "tiny.eph",
        "--vcpus",
        "1",
        "--ram",
        "128",
        "--disk",
        "1",
        "--ephemeral",
        "1",
        "--swap",
        "16",
    ]);
    assert!(env
        .err(&[
            "flavor-create",
            "bad name",
            "--vcpus",
            "1",
            "--ram",
            "128",
            "--disk",
            "1"
        ])
        .contains("invalid"));
    env.ok(&[
        "flavor-create",
        "huge",
        "--vcpus",
        "64",
        "--ram",
        "1048576",
        "--disk",
        "1",
    ]);
    let nvh = env.err(&["boot", "--image", "blank", "--flavor", "huge", "vm"]);
    assert!(nvh.contains("No valid host was found"), "{nvh}");

    let files: Vec<String> = (0..6)
        .map(|i| {
            let p = env.path(&format!("f{i}"));
            std::fs::write(&p, b"x").expect("write");
            format!("/etc/f{i}={}", p.display())
        })
        .collect();
    let mut args = vec!["boot", "--image", "blank", "--flavor", "tiny.eph"];
    for f in &files {
        args.extend(["--file", f.as_str()]);
    }
    args.push("vm");
    assert!(env
        .err(&args)
        .contains("too many injected files: 6, the quota is 5"));

    let a = env.json(&[
        "boot", "--image", "blank", "--flavor", "tiny.eph", "--format", "json", "twin",
    ]);
    let b = env.json(&[
        "boot", "--image", "blank", "--flavor", "tiny.eph", "--format", "json", "twin",
    ]);
    assert_ne!(
        a["addresses"]["private"][0]["addr"],
        b["addresses"]["private"][0]["addr"]
    );
    assert!(env
        .err(&["show", "twin"])
        .contains("more than one instance is named `twin`"));
    assert!(env
        .err(&["image-delete", "blank"])
        .contains("is used by 2 instance(s)"));
    for v in [&a, &b] {
        env.ok(&["delete", v["id"].as_str().expect("id")]);
    }
    env.ok(&["image-delete", "blank"]);
}

#[test]
fn two_commands_on_one_instance_never_interleave() {
    let env = Env::new();
    env.ok(&["boot", "--image", "blank", "--flavor", "m1.tiny", "vm"]);
    // The blank guest ignores the ACPI power button, so stop holds the lock for its timeout.
    let mut stop = env
        .command(&["stop", "--timeout", "3", "vm"], None)
        .spawn()
        .expect("spawn stop");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let show = env.json(&["show", "vm", "--format", "json"]);
        if show["task_state"] == "powering-off" {
            break;
        }
        assert!(Instant::now() < deadline, "stop never started: {show}");
        std::thread::sleep(Duration::from_millis(10));
    }
    // Waits for the stop to finish, then sees its result rather than a half-done task.
    let pause = env.err(&["pause", "vm"]);
    assert!(
        pause.contains("cannot pause instance while it is SHUTOFF"),
        "{pause}"
    );
    assert!(stop.wait().expect("stop").success());
    env.ok(&["delete", "vm"]);
}
