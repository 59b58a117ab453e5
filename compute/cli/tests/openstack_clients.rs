//! The OpenStack API driven by real, unmodified clients: Debian's `openstack`
//! (python3-openstackclient) and the newest python-openstackclient and openstacksdk
//! from PyPI (a venv under `target/openstack-venv/`, built once per content of
//! `tests/openstack/requirements.txt`). `compute api` runs as a process on free
//! loopback ports over a state folder (SQLite), and once over PostgreSQL (pgtest's
//! cluster); users, projects and roles are made with the `compute` verbs, the
//! clients read a clouds.yaml in password mode and one in noauth mode.

mod common;

use common::openstack::*;
use std::time::Duration;

/// The whole password-mode walk for one client on one deployment.
fn password_mode(d: &Deployment, client: &Client) {
    eprintln!("client {}: {}", client.name, client.version());
    let api = d.api(&[]);
    let clouds = api.clouds(
        d.dir.path(),
        &[
            ("alice", "alice", "alice-pw", "alpha"),
            ("bob", "bob", "bob-pw", "beta"),
            ("carol", "carol", "carol-pw", "alpha"),
        ],
    );
    // Tokens.
    let token = client.json(&clouds, "alice", &["token", "issue"]);
    let alice_token = token["id"].as_str().expect("token id").to_owned();
    let alpha = d.ok(&["project-list", "--format", "json"]);
    let alpha: serde_json::Value = serde_json::from_str(&alpha).expect("json");
    let alpha_id = alpha
        .as_array()
        .and_then(|a| a.iter().find(|p| p["name"] == "alpha"))
        .map(|p| p["id"].clone())
        .expect("alpha");
    assert_eq!(token["project_id"], alpha_id);

    // Flavors: list, create with properties, show, set, private ones, delete.
    let flavors = client.json(&clouds, "alice", &["flavor", "list"]);
    let names: Vec<&str> = flavors
        .as_array()
        .expect("list")
        .iter()
        .filter_map(|f| f["Name"].as_str())
        .collect();
    assert!(names.contains(&"m1.tiny"), "{flavors}");
    let made = client.json(
        &clouds,
        "alice",
        &[
            "flavor",
            "create",
            "--ram",
            "256",
            "--disk",
            "1",
            "--vcpus",
            "1",
            "--property",
            "hw:cpu_policy=shared",
            "t1",
        ],
    );
    assert_eq!(made["name"], "t1");
    assert_eq!(made["ram"], 256);
    client.ok(
        &clouds,
        "alice",
        &[
            "flavor",
            "set",
            "--property",
            "quota:disk_read_bytes_sec=1000",
            "t1",
        ],
    );
    let shown = client.json(&clouds, "alice", &["flavor", "show", "t1"]);
    let props = shown["properties"].to_string();
    assert!(
        props.contains("hw:cpu_policy") && props.contains("quota:disk_read_bytes_sec"),
        "{shown}"
    );
    client.json(
        &clouds,
        "alice",
        &[
            "flavor",
            "create",
            "--ram",
            "128",
            "--disk",
            "0",
            "--vcpus",
            "1",
            "--private",
            "p1",
        ],
    );
    let all = client.json(&clouds, "alice", &["flavor", "list", "--all"]);
    assert!(all.to_string().contains("\"p1\""), "{all}");
    let public_only = client.json(&clouds, "alice", &["flavor", "list"]);
    assert!(!public_only.to_string().contains("\"p1\""), "{public_only}");
    // Bob (a member of another project) sees neither private flavors nor may manage.
    client.fails(&clouds, "bob", &["flavor", "show", "p1"]);
    let denied = client.fails(
        &clouds,
        "bob",
        &[
            "flavor", "create", "--ram", "128", "--disk", "0", "--vcpus", "1", "b1",
        ],
    );
    assert!(
        denied.contains("403") || denied.contains("Policy"),
        "{denied}"
    );
    let dup = client.fails(
        &clouds,
        "alice",
        &[
            "flavor", "create", "--ram", "128", "--disk", "0", "--vcpus", "1", "t1",
        ],
    );
    assert!(
        dup.contains("409") || dup.contains("already exists"),
        "{dup}"
    );
    client.ok(&clouds, "alice", &["flavor", "delete", "t1"]);
    client.ok(&clouds, "alice", &["flavor", "delete", "p1"]);
    client.fails(&clouds, "alice", &["flavor", "show", "t1"]);

    // Keypairs: imported, Nova's fingerprint, per user.
    let public = ssh_public_key(d.dir.path(), &format!("k-{}", client.name));
    let public_s = public.to_str().expect("utf-8");
    let kp = client.json(
        &clouds,
        "alice",
        &["keypair", "create", "--public-key", public_s, "k1"],
    );
    assert_eq!(kp["name"], "k1");
    assert_eq!(kp["fingerprint"], md5_fingerprint(&public));
    let listed = client.json(&clouds, "alice", &["keypair", "list"]);
    assert!(listed.to_string().contains("\"k1\""), "{listed}");
    let shown = client.json(&clouds, "alice", &["keypair", "show", "k1"]);
    assert_eq!(shown["fingerprint"], md5_fingerprint(&public));
    // Carol, in the same project, has keypairs of her own: not alice's.
    client.fails(&clouds, "carol", &["keypair", "show", "k1"]);
    client.fails(&clouds, "bob", &["keypair", "show", "k1"]);
    client.json(
        &clouds,
        "bob",
        &["keypair", "create", "--public-key", public_s, "k1"],
    );
    let dup = client.fails(
        &clouds,
        "alice",
        &["keypair", "create", "--public-key", public_s, "k1"],
    );
    assert!(
        dup.contains("409") || dup.contains("already exists"),
        "{dup}"
    );
    client.ok(&clouds, "alice", &["keypair", "delete", "k1"]);
    client.fails(&clouds, "alice", &["keypair", "show", "k1"]);
    client.json(&clouds, "bob", &["keypair", "show", "k1"]);
    client.ok(&clouds, "bob", &["keypair", "delete", "k1"]);

    // Limits.
    let limits = client.json(&clouds, "alice", &["limits", "show", "--absolute"]);
    let text = limits.to_string();
    // Older clients print Nova's keys, newer ones openstacksdk's names for them.
    let has = |nova: &str, sdk: &str| text.contains(nova) || text.contains(sdk);
    assert!(has("maxTotalKeypairs", "max_total_keypairs"), "{text}");
    assert!(has("totalInstancesUsed", "total_instances_used"), "{text}");
    assert!(text.contains("100"), "{text}");

    // Versions, as the client discovers them.
    let versions = client.run(&clouds, "alice", &["versions", "show", "-f", "json"]);
    eprintln!(
        "[{}] versions show: exit {:?}: {}{}",
        client.name,
        versions.status.code(),
        String::from_utf8_lossy(&versions.stdout),
        String::from_utf8_lossy(&versions.stderr)
    );
    if client.name == "pypi" {
        assert!(versions.status.success(), "versions show");
        let v: serde_json::Value = serde_json::from_slice(&versions.stdout).expect("json");
        let t = v.to_string();
        assert!(t.contains("2.96") && t.contains("compute"), "{t}");
    }

    // Without a token: 401 and where to get one; with alice's: 200.
    let flavors_url = format!("{}/flavors", api.compute);
    let (status, www, body) = raw("GET", &flavors_url, None);
    assert_eq!(status, 401, "{body}");
    assert_eq!(
        www.as_deref(),
        Some(format!("Keystone uri=\"{}\"", api.identity).as_str())
    );
    assert!(body.contains("unauthorized"), "{body}");
    assert_eq!(raw("GET", &flavors_url, Some(&alice_token)).0, 200);
    assert_eq!(raw("GET", &flavors_url, Some("notused")).0, 401);

    // A disabled user's token stops working at its next use; enabled again, it works.
    let carol = client.json(&clouds, "carol", &["token", "issue"]);
    let carol_token = carol["id"].as_str().expect("token").to_owned();
    assert_eq!(raw("GET", &flavors_url, Some(&carol_token)).0, 200);
    d.ok(&["user-set", "carol", "--disable"]);
    assert_eq!(raw("GET", &flavors_url, Some(&carol_token)).0, 401);
    client.fails(&clouds, "carol", &["flavor", "list"]);
    d.ok(&["user-set", "carol", "--enable"]);
    assert_eq!(raw("GET", &flavors_url, Some(&carol_token)).0, 200);

    // A wrong password.
    let wrong = api.clouds(d.dir.path(), &[("alice", "alice", "nope", "alpha")]);
    client.fails(&wrong, "alice", &["flavor", "list"]);
}

fn noauth_mode(d: &Deployment, client: &Client) {
    let api = d.api(&["--auth", "noauth"]);
    let clouds = api.clouds(d.dir.path(), &[]);
    let flavors = client.json(&clouds, "noauth", &["flavor", "list"]);
    assert!(flavors.to_string().contains("m1.tiny"), "{flavors}");
    let public = ssh_public_key(d.dir.path(), &format!("n-{}", client.name));
    let kp = client.json(
        &clouds,
        "noauth",
        &[
            "keypair",
            "create",
            "--public-key",
            public.to_str().expect("utf-8"),
            "nk",
        ],
    );
    assert_eq!(kp["fingerprint"], md5_fingerprint(&public));
    // The operator's, as the command line sees it.
    assert!(d.ok(&["keypair-list"]).contains("nk"));
    client.ok(&clouds, "noauth", &["keypair", "delete", "nk"]);
    let limits = client.json(&clouds, "noauth", &["limits", "show", "--absolute"]);
    let text = limits.to_string();
    assert!(
        text.contains("maxServerMeta") || text.contains("max_server_meta"),
        "{text}"
    );
}

fn setup(d: &Deployment) {
    d.ok(&["project-create", "alpha"]);
    d.ok(&["project-create", "beta"]);
    d.user("alice", "alice-pw", "alpha", "admin");
    d.user("bob", "bob-pw", "beta", "member");
    d.user("carol", "carol-pw", "alpha", "member");
}

#[test]
fn debian_and_pypi_clients_on_a_state_folder() {
    let d = Deployment::new(Db::Folder);
    setup(&d);
    for client in [Client::debian(), Client::pypi()] {
        password_mode(&d, &client);
        noauth_mode(&d, &client);
    }
}

#[test]
fn the_newest_client_on_postgresql() {
    let db = pgtest::cluster().database();
    let d = Deployment::new(Db::Postgres(db.url()));
    setup(&d);
    let client = Client::pypi();
    password_mode(&d, &client);
    noauth_mode(&d, &client);
}

#[test]
fn an_expired_token_is_refused() {
    let d = Deployment::new(Db::Folder);
    setup(&d);
    let api = d.api(&["--token-expiry", "2"]);
    let clouds = api.clouds(d.dir.path(), &[("alice", "alice", "alice-pw", "alpha")]);
    let client = Client::pypi();
    let token = client.json(&clouds, "alice", &["token", "issue"]);
    let token = token["id"].as_str().expect("token").to_owned();
    let url = format!("{}/flavors", api.compute);
    std::thread::sleep(Duration::from_secs(3));
    let (status, www, _) = raw("GET", &url, Some(&token));
    assert_eq!(status, 401);
    assert!(www.is_some());
}

#[test]
fn noauth_is_refused_off_loopback() {
    let d = Deployment::new(Db::Folder);
    let out = d
        .command(&["api", "--auth", "noauth", "--compute-listen", "0.0.0.0:0"])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("not a loopback address") && err.contains("--insecure-noauth"),
        "{err}"
    );
}
