//! Serving compute's state database (`--state-dir`) through its change feed:
//! documents written by compute's store are served without a restart, a bad
//! document keeps the instance's last good one, a deleted instance is gone; and the
//! same through the binary, over a unix socket bound to one instance.

mod common;
mod feedkit;

use common::*;
use compute_store::Location;
use compute_store::{SqliteStore, Store};
use metadata_server::feed::{self, FeedConfig};
use metadata_server::store::InstanceStore;
use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

fn fixture_doc(index: usize) -> serde_json::Value {
    let docs: serde_json::Value =
        serde_json::from_slice(&std::fs::read(fixture()).expect("read")).expect("json");
    docs[index].clone()
}

fn open_store(dir: &Path) -> SqliteStore {
    let store = SqliteStore::open(dir, "10.0.0.0/24".parse().expect("cidr")).expect("store");
    store
        .register_host(&compute_store::HostSpec {
            name: "here".into(),
            capacity: compute::placement::Resources {
                vcpus: 4,
                ram_mb: 4096,
                disk_gb: 100,
            },
            ratios: None,
        })
        .expect("host");
    store
}

fn insert(store: &mut SqliteStore, doc: &serde_json::Value, tail: u8) {
    let up = compute::placement::DEFAULT_UP_TIMEOUT;
    feedkit::insert_document(store, &doc.to_string(), None, up, tail);
}

#[test]
fn the_feed_follows_the_state_folders_database() {
    let dir = tempfile::tempdir().expect("tempdir");
    let served = Arc::new(InstanceStore::default());
    let config = FeedConfig::new(Location::StateDir(dir.path().to_owned()), None);
    assert!(
        feed::start(config.clone(), served.clone()).is_err(),
        "no database yet: an error, not an empty set"
    );
    let mut store = open_store(dir.path());
    let follower = feed::start(config, served.clone()).expect("start");
    assert!(served.snapshot().is_empty());
    let name_of = |uuid: &str| {
        served
            .snapshot()
            .get(&uuid.parse().expect("uuid"))
            .map(|e| e.instance().expect("parses").name().to_owned())
    };

    let mut a = fixture_doc(0);
    let uuid = a["uuid"].as_str().expect("uuid").to_owned();
    insert(&mut store, &a, 1);
    assert!(wait_until(|| name_of(&uuid).as_deref() == Some("test")));
    let rev = follower.status.rev();
    assert!(rev > 0 && follower.status.connected());

    a["name"] = "renamed".into();
    store
        .set_document(&uuid, "img", &a.to_string())
        .expect("update");
    assert!(wait_until(|| name_of(&uuid).as_deref() == Some("renamed")));
    store
        .set_document(&uuid, "img", "{\"uuid\": 1}")
        .expect("bad");
    assert!(wait_until(|| follower.status.rev() > rev + 1));
    assert_eq!(name_of(&uuid).as_deref(), Some("renamed"), "last good one");
    store.delete_instance(&uuid).expect("delete");
    assert!(wait_until(|| name_of(&uuid).is_none()));
    follower.status.stop();
}

fn get_unix(sock: &Path, path: &str) -> (u16, String) {
    let mut s = std::os::unix::net::UnixStream::connect(sock).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: 169.254.169.254\r\nConnection: close\r\n\r\n"
    )
    .expect("write");
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).expect("read");
    let r = parse_response(&raw, false);
    (r.status, r.text())
}

fn wait_until(mut f: impl FnMut() -> bool) -> bool {
    for _ in 0..200 {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

#[test]
fn the_binary_serves_the_database_and_picks_up_changes_without_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut store = open_store(dir.path());
    let mut a = fixture_doc(0);
    insert(&mut store, &a, 1);
    let uuid = a["uuid"].as_str().expect("uuid").to_owned();
    let sock = dir.path().join("a.sock");
    let log_path = dir.path().join("server.log");
    let pid_file = dir.path().join("server.pid");
    let mut child = Command::new(bin())
        .arg("serve")
        .arg("--state-dir")
        .arg(dir.path())
        .arg("--instance-listener")
        .arg(format!("{}={uuid}", sock.display()))
        .arg("--password-dir")
        .arg(dir.path().join("passwords"))
        .arg("--pid-file")
        .arg(&pid_file)
        .args(["--watch-interval", "1"])
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log_path).expect("log"))
        .spawn()
        .expect("spawn");
    let log = || std::fs::read_to_string(&log_path).unwrap_or_default();
    assert!(wait_until(|| pid_file.exists()), "{}", log());
    assert_eq!(
        std::fs::read_to_string(&pid_file).expect("pid").trim(),
        child.id().to_string()
    );
    let name = || get_unix(&sock, "/openstack/latest/meta_data.json").1;
    assert!(name().contains("\"name\": \"test\""), "{}", name());

    a["name"] = "renamed".into();
    store
        .set_document(&uuid, "img", &a.to_string())
        .expect("update");
    assert!(
        wait_until(|| name().contains("\"name\": \"renamed\"")),
        "{}",
        log()
    );

    store
        .set_document(&uuid, "img", "{\"uuid\": \"nope\"}")
        .expect("bad");
    assert!(
        wait_until(|| log().contains("new document refused")),
        "{}",
        log()
    );
    assert!(name().contains("\"name\": \"renamed\""), "last good set");

    store.delete_instance(&uuid).expect("delete");
    assert!(
        wait_until(|| get_unix(&sock, "/openstack/latest/meta_data.json").0 == 404),
        "{}",
        log()
    );
    let _ = Command::new("kill").arg(child.id().to_string()).status();
    let status = child.wait().expect("wait");
    assert!(status.success(), "{status}: {}", log());
    assert!(!pid_file.exists(), "the pid file goes with the server");
}

#[test]
fn a_client_that_half_closes_after_its_request_still_gets_the_answer() {
    // `printf 'PUT /latest/api/token ...' | nc 169.254.169.254 80` in a busybox guest
    // sends FIN right after the request; the relay passes it on.
    let server = Server::start(&[]);
    let mut s = connect(A_IP, server.port);
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    s.write_all(
        b"PUT /latest/api/token HTTP/1.0\r\nX-aws-ec2-metadata-token-ttl-seconds: 60\r\n\r\n",
    )
    .expect("write");
    s.shutdown(std::net::Shutdown::Write).expect("half-close");
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).expect("read");
    let r = parse_response(&raw, false);
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&raw));
    assert!(!r.body.is_empty(), "a token");
}

#[test]
fn etags_and_waiters_follow_the_state_folders_feed() {
    let mut db = feedkit::Db::sqlite();
    db.insert(9, feedkit::H1, &[]);
    let args = db.source_args(None);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let server = Server::start_source(&args, &[]);
    feedkit::etag_and_wait_follow_commits(&mut db, &server, 9);
}
