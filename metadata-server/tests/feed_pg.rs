//! The server over a PostgreSQL database shared by hosts (`--database URL --host
//! NAME`), on a real PostgreSQL (pgtest's cluster): it serves its host's instances
//! from a snapshot, follows the change feed (an instance added, changed, deleted
//! after start is served, changed, gone), never serves another host's instance, and
//! keeps guests' passwords in the database, set once.

mod common;
mod feedkit;

use common::*;
use feedkit::*;
use std::time::Duration;

const PATIENCE: Duration = Duration::from_secs(10);
const META: &str = "/openstack/latest/meta_data.json";

fn serve(db: &Db, host: Option<&str>) -> Server {
    let args = db.source_args(host);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    Server::start_source(&args, &[])
}

fn meta_of(server: &Server, n: u8) -> (u16, String) {
    let r = server.get(&ip(n), META);
    (r.status, r.text())
}

#[test]
fn a_host_serves_its_instances_and_follows_their_changes() {
    let mut db = Db::postgres();
    db.insert(1, H1, &[("role", "web")]);
    db.insert(2, H2, &[("role", "db")]);
    let server = serve(&db, Some(H1));

    let (status, body) = meta_of(&server, 1);
    assert_eq!(status, 200, "{}", server.log());
    assert!(body.contains(r#""role": "web""#), "{body}");
    assert_eq!(meta_of(&server, 2).0, 404, "another host's instance");

    db.set_meta(1, "role", "cache");
    assert!(
        eventually(PATIENCE, || meta_of(&server, 1)
            .1
            .contains(r#""role": "cache""#)),
        "{}",
        server.log()
    );

    db.insert(3, H1, &[]);
    db.insert(4, H2, &[]);
    assert!(eventually(PATIENCE, || meta_of(&server, 3).0 == 200));
    db.set_meta(4, "role", "x");
    db.set_meta(2, "role", "y");
    db.delete(1);
    assert!(eventually(PATIENCE, || meta_of(&server, 1).0 == 404));
    // Everything up to the deletion is applied: the other host's changes too had
    // their turn, and were not served.
    assert_eq!(meta_of(&server, 4).0, 404);
    assert_eq!(meta_of(&server, 2).0, 404);
    assert_eq!(meta_of(&server, 3).0, 200);

    let health = server.health();
    assert!(health.starts_with("ok\n"), "{health}");
    assert!(health.contains("feed: connected"), "{health}");
    assert!(health.contains("host: h1"), "{health}");
    let metrics = server.metrics();
    for needle in [
        "metadata_feed_connected 1",
        "metadata_instances 1",
        "metadata_feed_lag_seconds ",
    ] {
        assert!(metrics.contains(needle), "{needle} in {metrics}");
    }
}

#[test]
fn without_a_host_every_instance_is_served() {
    let mut db = Db::postgres();
    db.insert(5, H1, &[]);
    db.insert(6, H2, &[]);
    let server = serve(&db, None);
    assert_eq!(meta_of(&server, 5).0, 200);
    assert_eq!(meta_of(&server, 6).0, 200);
    assert!(server.health().contains("host: (all)"));
}

fn password_cli(db: &Db, verb: &str, n: u8) -> std::process::Output {
    std::process::Command::new(bin())
        .args(["password", verb, "--database", &db.url(), "--instance"])
        .arg(uuid(n))
        .output()
        .expect("password command")
}

#[test]
fn passwords_are_set_once_in_the_database() {
    let mut db = Db::postgres();
    db.insert(7, H1, &[]);
    let server = serve(&db, Some(H1));
    let path = "/openstack/latest/password";
    let get = || server.get(&ip(7), path);
    assert_eq!((get().status, get().text()), (200, String::new()));

    let post = |body: &[u8]| server.req(&ip(7), "POST", path, &[], body).status;
    assert_eq!(post(b"first"), 200);
    assert_eq!(get().text(), "first", "read back at once");
    assert_eq!(post(b"second"), 409);
    let stored = password_cli(&db, "get", 7);
    assert_eq!(String::from_utf8_lossy(&stored.stdout), "first");
    assert!(
        !server.password_dir().join(uuid(7)).exists(),
        "not in --password-dir"
    );
    assert_eq!(
        post(&[0xff, 0xfe]),
        409,
        "already set: refused before looking"
    );

    assert!(password_cli(&db, "clear", 7).status.success());
    assert!(eventually(PATIENCE, || get().text().is_empty()));
    assert_eq!(post(&[0xff, 0xfe]), 400, "the database keeps text");
    assert_eq!(post(b"third"), 200);
    let none = password_cli(&db, "get", 8);
    assert_eq!(
        none.status.code(),
        Some(1),
        "no such instance row: an error"
    );
}

#[test]
fn etags_and_waiters_follow_the_feed() {
    let mut db = Db::postgres();
    db.insert(9, H1, &[]);
    let server = serve(&db, Some(H1));
    etag_and_wait_follow_commits(&mut db, &server, 9);
}
