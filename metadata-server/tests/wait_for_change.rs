//! ETags and waiting for a change (GCE-style) over real sockets, with instances from
//! a file: every answer carries an ETag that changes exactly when its bytes do
//! (`meta_data.json`'s fresh `random_seed` aside), `If-None-Match` gets 304,
//! `?wait_for_change=true` wakes on a change of that answer and on its timeout, is
//! bounded per instance and in all (429 beyond), and SIGTERM releases waiters.
//! The database backends run the same waits in `feed_pg` and `dbsource`.

mod common;

use common::*;
use std::time::{Duration, Instant};

const META: &str = "/openstack/latest/meta_data.json";
const NET: &str = "/openstack/latest/network_data.json";

fn etag(r: &Resp) -> String {
    r.header("etag")
        .unwrap_or_else(|| panic!("no ETag: {:?}", r.headers))
        .to_owned()
}

/// Rewrites instance A's `meta` in the server's file and has it reloaded at once.
fn set_meta_a(server: &Server, value: &str) {
    let mut docs: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&server.instances).expect("read")).expect("json");
    docs[0]["meta"]["role"] = value.into();
    let tmp = server.instances.with_extension("tmp");
    std::fs::write(&tmp, serde_json::to_vec(&docs).expect("json")).expect("write");
    std::fs::rename(&tmp, &server.instances).expect("rename");
    server.signal("HUP");
}

fn waiters(server: &Server) -> String {
    server
        .metrics()
        .lines()
        .find(|l| l.starts_with("metadata_waiters "))
        .unwrap_or("")
        .to_owned()
}

#[test]
fn etags_change_exactly_when_the_bytes_do() {
    let server = Server::start(&[]);
    let meta = server.get(A_IP, META);
    let net = server.get(A_IP, NET);
    assert_eq!((meta.status, net.status), (200, 200));
    let (meta_tag, net_tag) = (etag(&meta), etag(&net));
    assert!(
        meta_tag.starts_with('"') && meta_tag.len() == 18,
        "{meta_tag}"
    );
    assert_ne!(
        meta.body,
        server.get(A_IP, META).body,
        "a fresh random_seed"
    );
    assert_eq!(
        etag(&server.get(A_IP, META)),
        meta_tag,
        "the seed is not the document"
    );
    for path in [
        "/openstack/latest",
        "/latest/meta-data/",
        "/latest/meta-data/instance-id",
        "/openstack/latest/password",
    ] {
        let r = server.get(A_IP, path);
        assert_eq!(r.status, 200, "{path}");
        etag(&r);
    }
    etag(&server.get(NOBODY_IP, "/"));
    assert_eq!(
        server.get(A_IP, "/nope").header("etag"),
        None,
        "not on a 404"
    );

    let inm = |tag: &str, method: &str, path: &str| {
        server.req(A_IP, method, path, &[("If-None-Match", tag)], b"")
    };
    let not_modified = inm(&meta_tag, "GET", META);
    assert_eq!(not_modified.status, 304);
    assert_eq!(etag(&not_modified), meta_tag);
    assert!(not_modified.body.is_empty());
    assert_eq!(
        inm(&format!("\"x\", W/{meta_tag}"), "HEAD", META).status,
        304
    );
    assert_eq!(inm("*", "GET", NET).status, 304);
    assert_eq!(
        inm(&net_tag, "GET", META).status,
        200,
        "another answer's tag"
    );

    set_meta_a(&server, "cache");
    assert!(eventually(Duration::from_secs(10), || etag(
        &server.get(A_IP, META)
    ) != meta_tag));
    let changed = server.get(A_IP, META);
    assert!(changed.text().contains(r#""role": "cache""#));
    assert_eq!(
        etag(&server.get(A_IP, NET)),
        net_tag,
        "network_data.json did not change"
    );
    assert_eq!(
        inm(&meta_tag, "GET", META).status,
        200,
        "the old tag is stale"
    );
    assert_eq!(inm(&net_tag, "GET", NET).status, 304);
}

#[test]
fn a_waiter_wakes_when_its_answer_changes_and_only_then() {
    let server = Server::start(&[]);
    let tag = etag(&server.get(A_IP, META));
    let net_tag = etag(&server.get(A_IP, NET));
    let port = server.port;

    // Waiting on meta_data.json (from the answer as it is) and on
    // network_data.json (from its tag): a change of meta wakes the first only.
    let meta_waiter = std::thread::spawn(move || {
        request(
            A_IP,
            port,
            "GET",
            &format!("{META}?wait_for_change=true&timeout_sec=15"),
            &[],
            b"",
        )
    });
    let net_path = format!(
        "{NET}?timeout_sec=3&wait_for_change=true&last_etag={}",
        net_tag.trim_matches('"')
    );
    let net_waiter = std::thread::spawn(move || {
        let started = Instant::now();
        (
            request(A_IP, port, "GET", &net_path, &[], b""),
            started.elapsed(),
        )
    });
    assert!(
        eventually(Duration::from_secs(10), || waiters(&server)
            == "metadata_waiters 2"),
        "{}",
        server.metrics()
    );
    set_meta_a(&server, "woken");
    let woke = meta_waiter.join().expect("meta waiter");
    assert_eq!(woke.status, 200);
    assert!(
        woke.text().contains(r#""role": "woken""#),
        "{}",
        woke.text()
    );
    assert_ne!(etag(&woke), tag);
    let (net, waited) = net_waiter.join().expect("net waiter");
    assert_eq!((net.status, etag(&net)), (200, net_tag.clone()));
    assert!(
        waited >= Duration::from_secs(3),
        "held until its timeout: {waited:?}"
    );
    assert_eq!(waiters(&server), "metadata_waiters 0");

    // A stale last_etag answers at once (with a long timeout, the client's own
    // 20 s read timeout would fail the test otherwise).
    let stale = format!(
        "{META}?wait_for_change=true&timeout_sec=600&last_etag={}",
        tag.trim_matches('"')
    );
    let r = server.get(A_IP, &stale);
    assert!(r.text().contains(r#""role": "woken""#));
    // Quoted and percent-encoded, as some clients send it.
    let quoted = format!(
        "{META}?wait_for_change=true&timeout_sec=600&last_etag=%22{}%22",
        &tag[1..17]
    );
    assert_eq!(server.get(A_IP, &quoted).status, 200);
}

#[test]
fn bad_wait_parameters_are_refused_and_others_ignored() {
    let server = Server::start(&[]);
    for q in [
        "wait_for_change=maybe",
        "wait_for_change=true&timeout_sec=0",
        "wait_for_change=true&timeout_sec=601",
        "wait_for_change=true&timeout_sec=x",
    ] {
        let r = server.get(A_IP, &format!("{META}?{q}"));
        assert_eq!(r.status, 400, "{q}");
    }
    for q in [
        "recursive=true",
        "wait_for_change=false&timeout_sec=x",
        "alt=text",
    ] {
        assert_eq!(server.get(A_IP, &format!("{META}?{q}")).status, 200, "{q}");
    }
    // Nobody to wait for: an unknown caller is answered at once.
    let r = server.get(NOBODY_IP, "/openstack?wait_for_change=true&timeout_sec=600");
    assert_eq!(r.status, 200);
}

#[test]
fn waiters_are_bounded_and_released_on_sigterm() {
    let mut server = Server::start(&["--max-waiters-per-instance", "2", "--max-waiters", "3"]);
    let port = server.port;
    let wait = |from: &'static str| {
        std::thread::spawn(move || {
            let started = Instant::now();
            (
                request(
                    from,
                    port,
                    "GET",
                    &format!("{META}?wait_for_change=true&timeout_sec=600"),
                    &[],
                    b"",
                ),
                started.elapsed(),
            )
        })
    };
    let held = vec![wait(A_IP), wait(A_IP)];
    assert!(eventually(Duration::from_secs(10), || waiters(&server)
        == "metadata_waiters 2"));
    let third = server.get(A_IP, &format!("{META}?wait_for_change=true"));
    assert_eq!(third.status, 429, "per instance");
    assert_eq!(third.header("retry-after"), Some("5"));
    let b = wait(B_IP);
    assert!(eventually(Duration::from_secs(10), || waiters(&server)
        == "metadata_waiters 3"));
    let over = server.get(
        B_IP,
        "/openstack/latest/network_data.json?wait_for_change=true",
    );
    assert_eq!(over.status, 429, "in all");
    assert_eq!(server.get(B_IP, META).status, 200, "plain reads still work");

    let stopping = Instant::now();
    let status = {
        server.signal("TERM");
        server.stop_after_signal()
    };
    assert!(status.success(), "{status}: {}", server.log());
    for h in held.into_iter().chain([b]) {
        let (r, _) = h.join().expect("waiter");
        assert_eq!(r.status, 200, "released with the current answer");
        etag(&r);
    }
    assert!(
        stopping.elapsed() < Duration::from_secs(10),
        "released, not held to the shutdown grace: {:?}",
        stopping.elapsed()
    );
}

#[test]
fn a_wait_outlasts_the_idle_timeout() {
    // A silent connection is closed after --idle-timeout, but not while the server
    // holds its request on purpose.
    let server = Server::start(&["--idle-timeout", "1"]);
    let started = Instant::now();
    let r = server.get(A_IP, &format!("{META}?wait_for_change=true&timeout_sec=3"));
    assert_eq!(r.status, 200);
    assert!(
        started.elapsed() >= Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    etag(&r);
}
