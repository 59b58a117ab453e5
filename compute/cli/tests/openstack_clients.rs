//! The OpenStack API driven by real, unmodified clients: Debian's `openstack`
//! (python3-openstackclient) and the newest python-openstackclient and openstacksdk
//! from PyPI (a venv under `target/openstack-venv/`, built once per content of
//! `tests/openstack/requirements.txt`). `compute api` runs as a process on free
//! loopback ports over a state folder (SQLite), and once over PostgreSQL (pgtest's
//! cluster); users, projects and roles are made with the `compute` verbs, the
//! clients read a clouds.yaml in password mode and one in noauth mode.

mod common;

use common::openstack::*;
use serde_json::Value;
use std::path::Path;
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

    images(d, client, &clouds);

    // A wrong password.
    let wrong = api.clouds(d.dir.path(), &[("alice", "alice", "nope", "alpha")]);
    client.fails(&wrong, "alice", &["flavor", "list"]);
}

/// The image walk: create with a file, show (hashes), set and unset (name,
/// properties, tags, protection), a protected image's delete refused, delete.
fn images(d: &Deployment, client: &Client, clouds: &Path) {
    let file = d.path(&format!("{}.raw", client.name));
    let bytes: Vec<u8> = (0..65536u32).map(|i| (i * 7 % 251) as u8).collect();
    std::fs::write(&file, &bytes).expect("image file");
    let name = format!("img-{}", client.name);
    let made = client.json(
        clouds,
        "alice",
        &[
            "image",
            "create",
            "--disk-format",
            "raw",
            "--file",
            file.to_str().expect("utf-8"),
            "--property",
            "a=b",
            "--tag",
            "t0",
            &name,
        ],
    );
    // openstacksdk 0.101 (Debian's) prints the image as it was made, before the
    // upload: `queued`, as against Glance.
    assert!(
        made["status"] == "active" || (client.name == "debian" && made["status"] == "queued"),
        "{made}"
    );
    let id = made["id"].as_str().expect("id").to_owned();
    let shown = client.json(clouds, "alice", &["image", "show", &name]);
    assert_holds_file(&shown, &file);
    assert_eq!(
        prop(&shown, "a").and_then(Value::as_str),
        Some("b"),
        "{shown}"
    );
    assert!(
        client
            .json(clouds, "alice", &["image", "list"])
            .to_string()
            .contains(&id),
        "listed"
    );

    let renamed = format!("{name}-2");
    client.ok(
        clouds,
        "alice",
        &[
            "image",
            "set",
            "--name",
            &renamed,
            "--property",
            "k=v",
            "--property",
            "a=c",
            "--protected",
            "--tag",
            "t1",
            "--min-ram",
            "64",
            &id,
        ],
    );
    let shown = client.json(clouds, "alice", &["image", "show", &id]);
    assert_eq!(shown["name"], renamed.as_str(), "{shown}");
    assert_eq!(
        prop(&shown, "k").and_then(Value::as_str),
        Some("v"),
        "{shown}"
    );
    assert_eq!(
        prop(&shown, "a").and_then(Value::as_str),
        Some("c"),
        "{shown}"
    );
    assert_eq!(shown["protected"], true, "{shown}");
    assert_eq!(shown["min_ram"], 64, "{shown}");
    let tags = shown["tags"].to_string();
    assert!(tags.contains("t0") && tags.contains("t1"), "{shown}");
    // The command line sees the new name (the store's image follows).
    assert!(d.ok(&["image-list"]).contains(&renamed));

    // Protected: a delete is refused (403) and the image stays.
    let err = client.fails(clouds, "alice", &["image", "delete", &id]);
    assert!(err.contains("403") || err.contains("protected"), "{err}");
    // Another project's member cannot change it.
    let err = client.fails(clouds, "bob", &["image", "set", "--name", "x", &id]);
    assert!(!err.is_empty());

    client.ok(
        clouds,
        "alice",
        &["image", "unset", "--property", "k", "--tag", "t1", &id],
    );
    client.ok(clouds, "alice", &["image", "set", "--unprotected", &id]);
    let shown = client.json(clouds, "alice", &["image", "show", &id]);
    assert!(prop(&shown, "k").is_none(), "{shown}");
    assert_eq!(
        prop(&shown, "a").and_then(Value::as_str),
        Some("c"),
        "{shown}"
    );
    assert_eq!(shown["protected"], false, "{shown}");
    let tags = shown["tags"].to_string();
    assert!(tags.contains("t0") && !tags.contains("t1"), "{shown}");
    client.ok(clouds, "alice", &["image", "delete", &id]);
    client.fails(clouds, "alice", &["image", "show", &id]);
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

/// How an upload is framed.
enum Framing {
    Length(usize),
    Chunked,
}

/// Opens `PUT /v2/images/{id}/file` and sends `body`; the open socket.
fn put_file(
    image_url: &str,
    token: &str,
    id: &str,
    body: &[u8],
    framing: Framing,
) -> std::net::TcpStream {
    use std::io::Write;
    let hostport = image_url
        .trim_start_matches("http://")
        .trim_end_matches('/');
    let mut sock = std::net::TcpStream::connect(hostport).expect("connect");
    let frame = match framing {
        Framing::Length(n) => format!("Content-Length: {n}"),
        Framing::Chunked => "Transfer-Encoding: chunked".into(),
    };
    write!(
        sock,
        "PUT /v2/images/{id}/file HTTP/1.1\r\nHost: {hostport}\r\nX-Auth-Token: {token}\r\n\
         Content-Type: application/octet-stream\r\n{frame}\r\nConnection: close\r\n\r\n"
    )
    .expect("headers");
    match framing {
        Framing::Length(_) => sock.write_all(body).expect("body"),
        Framing::Chunked => {
            write!(sock, "{:x}\r\n", body.len()).expect("chunk");
            sock.write_all(body).expect("chunk");
            // The server may answer and close before the end: that is its right.
            let _ = sock.write_all(b"\r\n0\r\n\r\n");
        }
    }
    sock
}

/// The status code of the answer on `sock`.
fn answer(mut sock: std::net::TcpStream) -> u16 {
    use std::io::Read;
    sock.set_read_timeout(Some(Duration::from_secs(60)))
        .expect("timeout");
    let mut text = Vec::new();
    let _ = sock.read_to_end(&mut text);
    let text = String::from_utf8_lossy(&text);
    text.split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("an HTTP answer: {text}"))
}

fn image_status(image_url: &str, token: &str, id: &str) -> Value {
    let (status, _, body) = raw("GET", &format!("{image_url}/v2/images/{id}"), Some(token));
    assert_eq!(status, 200, "{body}");
    serde_json::from_str(&body).expect("json")
}

#[test]
fn an_upload_over_the_cap_is_413_and_the_image_queued_again() {
    let d = Deployment::new(Db::Folder);
    setup(&d);
    let api = d.api(&["--max-image-bytes", "2048"]);
    let clouds = api.clouds(d.dir.path(), &[("alice", "alice", "alice-pw", "alpha")]);
    let client = Client::pypi();
    let token = client.json(&clouds, "alice", &["token", "issue"])["id"]
        .as_str()
        .expect("token")
        .to_owned();
    let big = vec![7u8; 4096];
    for framing in [Framing::Length(big.len()), Framing::Chunked] {
        let id = new_image(&api.image, &token, "raw");
        let code = answer(put_file(&api.image, &token, &id, &big, framing));
        assert_eq!(code, 413);
        let shown = image_status(&api.image, &token, &id);
        // Glance v2 restores the image for another try (image_data.py `_restore`).
        assert_eq!(shown["status"], "queued", "{shown}");
        assert_eq!(shown["checksum"], Value::Null, "{shown}");
        assert!(!d.state().join(format!("api/uploads/{id}.part")).exists());
        assert!(!d.state().join(format!("images/{id}")).exists());
        // A body within the cap then makes it.
        let small = vec![9u8; 1024];
        let code = answer(put_file(
            &api.image,
            &token,
            &id,
            &small,
            Framing::Length(small.len()),
        ));
        assert_eq!(code, 204);
        let shown = image_status(&api.image, &token, &id);
        assert_eq!(shown["status"], "active", "{shown}");
        assert_eq!(shown["size"], 1024, "{shown}");
    }
    let left: Vec<_> = std::fs::read_dir(d.state().join("api/uploads"))
        .map(|e| e.filter_map(Result::ok).map(|e| e.path()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "nothing half-written: {left:?}");
}

#[test]
fn two_api_processes_on_one_postgresql_share_image_records() {
    let db = pgtest::cluster().database();
    let d = Deployment::new(Db::Postgres(db.url()));
    setup(&d);
    let mut one = d.api(&["--upload-lease", "3"]);
    let two = d.api(&["--upload-lease", "3"]);
    let dir = |n: &str| {
        let p = d.path(n);
        std::fs::create_dir_all(&p).expect("dir");
        p
    };
    let users = [("alice", "alice", "alice-pw", "alpha")];
    let (c1, c2) = (
        one.clouds(&dir("one"), &users),
        two.clouds(&dir("two"), &users),
    );
    let client = Client::pypi();
    let file = d.path("disk.raw");
    let bytes: Vec<u8> = (0..100_000u32).map(|i| (i % 253) as u8).collect();
    std::fs::write(&file, &bytes).expect("file");
    let made = client.json(
        &c1,
        "alice",
        &[
            "image",
            "create",
            "--disk-format",
            "raw",
            "--file",
            file.to_str().expect("utf-8"),
            "--property",
            "p=1",
            "shared-img",
        ],
    );
    let id = made["id"].as_str().expect("id").to_owned();
    // Through the other process: the same status, hashes and properties.
    let seen = client.json(&c2, "alice", &["image", "show", &id]);
    assert_holds_file(&seen, &file);
    assert_eq!(
        prop(&seen, "p").and_then(Value::as_str),
        Some("1"),
        "{seen}"
    );
    client.ok(&c2, "alice", &["image", "set", "--property", "q=2", &id]);
    let back = client.json(&c1, "alice", &["image", "show", &id]);
    assert_eq!(
        prop(&back, "q").and_then(Value::as_str),
        Some("2"),
        "{back}"
    );
    // A queued image made through one is queued through the other (raw: `image
    // create` without --file reads standard input, here empty).
    let token = client.json(&c1, "alice", &["token", "issue"])["id"]
        .as_str()
        .expect("token")
        .to_owned();
    let qid = new_image(&two.image, &token, "raw");
    assert_eq!(
        client.json(&c1, "alice", &["image", "show", &qid])["status"],
        "queued"
    );

    // An upload whose process dies midway: the other process ends it (killed)
    // once its lease runs out.
    let sock = put_file(
        &one.image,
        &token,
        &qid,
        &[1u8; 1000],
        Framing::Length(1 << 20),
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while image_status(&two.image, &token, &qid)["status"] != "saving" {
        assert!(std::time::Instant::now() < deadline, "the upload started");
        std::thread::sleep(Duration::from_millis(100));
    }
    one.child.kill().expect("SIGKILL");
    let _ = one.child.wait();
    drop(sock);
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let shown = image_status(&two.image, &token, &qid);
        if shown["status"] == "killed" {
            break;
        }
        assert_eq!(shown["status"], "saving", "{shown}");
        assert!(
            std::time::Instant::now() < deadline,
            "the abandoned upload is ended: {shown}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}
