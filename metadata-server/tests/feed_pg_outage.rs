//! Static stability, with the database stopped hard (SIGQUIT: PostgreSQL's
//! immediate shutdown) while the server serves: every read keeps its answer, a
//! password POST gets 503 with `Retry-After` and stores nothing, `/healthz` and
//! `/metrics` say the feed is away; after the restart the server catches up by
//! itself and a change made then arrives. A test binary of its own: it stops the
//! cluster every test of the binary shares.

mod common;
mod feedkit;

use common::*;
use feedkit::*;
use std::time::Duration;

const META: &str = "/openstack/latest/meta_data.json";

#[test]
fn the_database_stopped_hard_while_serving() {
    let cluster = pgtest::cluster();
    let mut db = Db::postgres();
    db.insert(1, H1, &[("role", "web")]);
    db.insert(2, H1, &[]);
    let args = db.source_args(Some(H1));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let server = Server::start_source(&args, &[]);
    let before = server.get(&ip(1), META);
    assert_eq!(before.status, 200, "{}", server.log());
    let network = server.get(&ip(1), "/openstack/latest/network_data.json");
    assert_eq!(network.status, 200);

    cluster.kill();
    assert!(
        eventually(Duration::from_secs(15), || server
            .health()
            .contains("feed: disconnected")),
        "{}\n{}",
        server.health(),
        server.log()
    );
    let metrics = server.metrics();
    assert!(metrics.contains("metadata_feed_connected 0"), "{metrics}");

    // Reads: every one answered, with the bytes served before (meta_data.json
    // carries a fresh random_seed per request: compare without it).
    let without_seed = |b: &str| -> String {
        let mut v: serde_json::Value = serde_json::from_str(b).expect("json");
        v.as_object_mut().expect("object").remove("random_seed");
        v.to_string()
    };
    let expected = without_seed(&before.text());
    for i in 0..1000 {
        let r = if i % 2 == 0 {
            server.get(&ip(1), META)
        } else {
            server.get(&ip(1), "/openstack/latest/network_data.json")
        };
        assert_eq!(r.status, 200, "read {i} during the outage");
        if i % 2 == 0 {
            assert_eq!(without_seed(&r.text()), expected, "read {i}");
        } else {
            assert_eq!(r.body, network.body, "read {i}");
        }
    }

    let post = server.req(&ip(2), "POST", "/openstack/latest/password", &[], b"pw");
    assert_eq!(post.status, 503, "{}", post.text());
    assert_eq!(post.header("retry-after"), Some("5"));
    assert_eq!(
        server.get(&ip(2), "/openstack/latest/password").text(),
        "",
        "nothing stored"
    );
    assert!(server.health().contains("feed: disconnected"));

    cluster.start();
    assert!(
        eventually(Duration::from_secs(30), || server
            .health()
            .contains("feed: connected")),
        "{}\n{}",
        server.health(),
        server.log()
    );
    // The test's own connection died with the server: its first request fails,
    // the next one reconnects.
    let _ = db.store.hosts();
    assert_eq!(
        db.store.password(&uuid(2)).expect("read"),
        None,
        "nothing half-stored"
    );
    db.set_meta(1, "role", "after");
    assert!(
        eventually(Duration::from_secs(10), || server
            .get(&ip(1), META)
            .text()
            .contains(r#""role": "after""#)),
        "{}",
        server.log()
    );
    let post = server.req(&ip(2), "POST", "/openstack/latest/password", &[], b"pw");
    assert_eq!(post.status, 200, "{}", post.text());
    assert_eq!(
        db.store.password(&uuid(2)).expect("read").as_deref(),
        Some("pw")
    );
    assert!(
        server.log().contains("the database is back"),
        "{}",
        server.log()
    );
}
