//! Operating the server: reload on file change and SIGHUP (a bad file keeps the last
//! good set), request limits, rate limiting, metrics, graceful SIGTERM, and dynamic
//! vendor data against a loopback target.

mod common;

use common::*;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::time::{Duration, Instant};

fn wait_until(mut f: impl FnMut() -> bool) -> bool {
    for _ in 0..100 {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    false
}

fn rename_instance(server: &Server, name: &str) {
    let mut docs: serde_json::Value =
        serde_json::from_slice(&std::fs::read(fixture()).expect("read")).expect("json");
    docs[0]["name"] = name.into();
    let tmp = server.dir.path().join("new.json");
    std::fs::write(&tmp, serde_json::to_vec(&docs).expect("json")).expect("write");
    std::fs::rename(&tmp, &server.instances).expect("rename");
}

#[test]
fn reloads_on_change_and_sighup_and_keeps_last_good_set() {
    let server = Server::start(&[]);
    let name = || server.get(A_IP, "/openstack/latest/meta_data.json").text();
    assert!(name().contains("\"name\": \"test\""));
    rename_instance(&server, "renamed");
    assert!(
        wait_until(|| name().contains("\"name\": \"renamed\"")),
        "file change noticed: {}",
        server.log()
    );
    // A bad file: reported, and the last good set keeps serving.
    std::fs::write(
        &server.instances,
        b"[{\"uuid\": \"not-a-uuid\", \"name\": \"x\"}]",
    )
    .expect("write");
    server.signal("HUP");
    assert!(
        wait_until(|| server.log().contains("reload failed")),
        "{}",
        server.log()
    );
    assert!(name().contains("\"name\": \"renamed\""));
    assert_eq!(
        server.get(B_IP, "/latest/meta-data/local-ipv4").text(),
        B_IP
    );
    rename_instance(&server, "again");
    server.signal("HUP");
    assert!(wait_until(|| name().contains("\"name\": \"again\"")));
}

#[test]
fn oversized_and_slow_requests_are_cut_off() {
    let server = Server::start(&[
        "--max-body-bytes",
        "2048",
        "--header-read-timeout",
        "1",
        "--max-header-bytes",
        "8192",
    ]);
    let r = server.req(
        A_IP,
        "POST",
        "/openstack/latest/password",
        &[],
        &[b'x'; 4096],
    );
    assert_eq!(r.status, 413);
    // Headers far over the cap: the connection is refused with an error status or closed.
    let mut s = connect(A_IP, server.port);
    let big = format!(
        "GET / HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
        "a".repeat(64 * 1024)
    );
    let _ = s.write_all(big.as_bytes());
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    assert!(
        out.is_empty() || out.starts_with(b"HTTP/1.1 431"),
        "{}",
        String::from_utf8_lossy(&out)
    );
    // A client that never finishes its headers is dropped.
    let mut s = connect(A_IP, server.port);
    s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n")
        .expect("write");
    let mut out = Vec::new();
    let n = s
        .read_to_end(&mut out)
        .expect("server closes the connection");
    assert!(
        n == 0 || out.starts_with(b"HTTP/1.1 408"),
        "{}",
        String::from_utf8_lossy(&out)
    );
    // Keep-alive works: two requests on one connection.
    let mut s = connect(A_IP, server.port);
    s.write_all(b"GET /latest/meta-data/instance-id HTTP/1.1\r\nHost: x\r\n\r\nGET /latest/meta-data/instance-id HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .expect("write");
    let mut out = Vec::new();
    s.read_to_end(&mut out).expect("read");
    assert_eq!(
        String::from_utf8_lossy(&out).matches("i-d8e02d56").count(),
        2
    );
}

#[test]
fn silent_connections_are_closed_after_the_idle_timeout_and_busy_ones_kept() {
    let server = Server::start(&["--idle-timeout", "1", "--header-read-timeout", "30"]);
    let closed_after = |s: &mut std::net::TcpStream| {
        let quiet = Instant::now();
        let mut out = Vec::new();
        s.read_to_end(&mut out)
            .expect("the server closes the connection");
        assert!(out.is_empty(), "{}", String::from_utf8_lossy(&out));
        quiet.elapsed()
    };
    // Never a byte: closed once the timeout has passed, not before.
    let mut silent = connect(A_IP, server.port);
    let took = closed_after(&mut silent);
    assert!(took >= Duration::from_millis(900), "closed after {took:?}");
    assert!(took < Duration::from_secs(10), "closed after {took:?}");
    // A request every 300 ms for three times the timeout keeps it open; then quiet, it
    // is closed like the other.
    let mut busy = connect(A_IP, server.port);
    // Ten requests 300 ms apart span three times the timeout.
    for _ in 0..10 {
        busy.write_all(b"GET /latest/meta-data/instance-id HTTP/1.1\r\nHost: x\r\n\r\n")
            .expect("the connection is still open");
        let mut buf = [0u8; 4096];
        let n = busy.read(&mut buf).expect("an answer");
        assert!(
            String::from_utf8_lossy(&buf[..n]).contains("i-d8e02d56"),
            "{}",
            String::from_utf8_lossy(&buf[..n])
        );
        std::thread::sleep(Duration::from_millis(300));
    }
    let took = closed_after(&mut busy);
    assert!(took >= Duration::from_millis(600), "closed after {took:?}");
    assert!(took < Duration::from_secs(10), "closed after {took:?}");
}

#[test]
fn rate_limit_answers_429_with_retry_after_per_instance() {
    let server = Server::start(&["--rate-limit", "0.5", "--rate-burst", "3"]);
    let p = "/latest/meta-data/instance-id";
    for _ in 0..3 {
        assert_eq!(server.get(A_IP, p).status, 200);
    }
    let r = server.get(A_IP, p);
    assert_eq!(r.status, 429);
    assert_eq!(r.header("retry-after"), Some("2"));
    assert_eq!(server.get(B_IP, p).status, 200, "B has its own bucket");
    let metrics = request(NOBODY_IP, server.metrics_port, "GET", "/metrics", &[], b"").text();
    assert!(
        metrics.contains("metadata_throttled_requests_total 1"),
        "{metrics}"
    );
}

#[test]
fn metrics_and_healthz() {
    let server = Server::start(&[]);
    server.get(A_IP, "/openstack/latest/meta_data.json");
    server.get(A_IP, "/nope");
    server.get(NOBODY_IP, "/latest/meta-data/");
    let h = request(NOBODY_IP, server.metrics_port, "GET", "/healthz", &[], b"");
    assert_eq!((h.status, h.text().as_str()), (200, "ok\n"));
    let m = request(NOBODY_IP, server.metrics_port, "GET", "/metrics", &[], b"").text();
    for needle in [
        "metadata_requests_total{route=\"openstack_meta_data\",status=\"200\"} 1",
        "metadata_requests_total{route=\"ec2_other\",status=\"404\"} 1",
        "metadata_request_duration_seconds_count 3",
        "metadata_identification_failures_total 1",
        "metadata_instances 3",
    ] {
        assert!(m.contains(needle), "{needle} in\n{m}");
    }
    // The access log is written by a thread of its own, a moment later.
    assert!(
        eventually(Duration::from_secs(5), || server
            .log()
            .contains("path=/ec2/nope status=404")),
        "access log: {}",
        server.log()
    );
}

#[test]
fn sigterm_finishes_in_flight_requests_and_exits_cleanly() {
    let mut server = Server::start(&[]);
    // A request whose headers are in but whose body is still coming when SIGTERM lands.
    let mut s = connect(A_IP, server.port);
    s.write_all(b"POST /openstack/latest/password HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nConnection: close\r\n\r\nab")
        .expect("write");
    // Time for the server to accept it and read the headers (no metric shows a
    // request in progress); a busy host can take longer than a few milliseconds.
    std::thread::sleep(Duration::from_secs(1));
    server.signal("TERM");
    std::thread::sleep(Duration::from_millis(200));
    s.write_all(b"cd").expect("the connection is still open");
    let mut out = Vec::new();
    s.read_to_end(&mut out).expect("read");
    assert!(
        out.starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&out)
    );
    let status = server.stop_after_signal();
    assert!(status.success(), "{status}");
    assert!(
        TcpListener::bind(("127.0.0.1", server.port)).is_ok(),
        "the port is released"
    );
}

/// A loopback vendor data target: answers `answer` and hands back what it was sent.
fn target(answer: &'static str) -> (u16, std::sync::mpsc::Receiver<String>) {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = l.local_addr().expect("addr").port();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { return };
            let mut buf = vec![0u8; 65536];
            let mut got = Vec::new();
            loop {
                let n = s.read(&mut buf).unwrap_or(0);
                got.extend_from_slice(&buf[..n]);
                let text = String::from_utf8_lossy(&got).into_owned();
                if let Some(i) = text.find("\r\n\r\n") {
                    let len: usize = text
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase()
                                .strip_prefix("content-length:")
                                .map(|v| v.trim().parse().unwrap_or(0))
                        })
                        .unwrap_or(0);
                    if got.len() >= i + 4 + len || n == 0 {
                        let _ = tx.send(text);
                        break;
                    }
                }
                if n == 0 {
                    break;
                }
            }
            let _ = write!(s, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{answer}", answer.len());
        }
    });
    (port, rx)
}

#[test]
fn dynamic_vendor_data_posts_novas_body_and_falls_back_to_empty() {
    let (port, rx) = target("{\"hello\": \"world\"}");
    let closed = closed_port();
    let good = format!("good@http://127.0.0.1:{port}/vd");
    let bad = format!("bad@http://127.0.0.1:{closed}/vd");
    let vendor = tempfile::NamedTempFile::new().expect("tmp");
    std::fs::write(vendor.path(), b"{\"site\": \"x\"}").expect("write");
    let server = Server::start(&[
        "--vendordata-dynamic",
        &good,
        "--vendordata-dynamic",
        &bad,
        "--vendor-data",
        vendor.path().to_str().expect("utf8"),
    ]);
    let r = server.get(A_IP, "/openstack/latest/vendor_data2.json");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(
        r.text(),
        "{\"static\": {\"site\": \"x\"}, \"good\": {\"hello\": \"world\"}, \"bad\": {}}"
    );
    let sent = rx
        .recv_timeout(Duration::from_secs(10))
        .expect("target was called");
    assert!(sent.starts_with("POST /vd HTTP/1.1"), "{sent}");
    let body = &sent[sent.find("\r\n\r\n").expect("body") + 4..];
    let v: serde_json::Value = serde_json::from_str(body).expect("json body");
    assert_eq!(v["instance-id"], A);
    assert_eq!(v["project-id"], "6a5a0c0c0b1e4d1b9a0f1c2d3e4f5a6b");
    assert_eq!(v["hostname"], "test");
    assert_eq!(v["metadata"]["role"], "webserver");
    assert!(v["user-data"].is_string() && v.get("image-id").is_some());
    assert!(
        server.log().contains("dynamic vendor data failed"),
        "{}",
        server.log()
    );
    assert_eq!(
        server
            .get(A_IP, "/openstack/latest/vendor_data.json")
            .text(),
        "{\"site\": \"x\"}"
    );
}

#[test]
fn bound_listeners_follow_the_listeners_file() {
    let dir = tempfile::tempdir().expect("tmp");
    let file = dir.path().join("listeners");
    let sock = dir.path().join("b.sock");
    // Port 0: the kernel chooses, the server logs what it bound.
    std::fs::write(&file, format!("# opened at start\n127.0.0.1:0={A}\n")).expect("write");
    let server = Server::start(&["--instance-listeners-file", file.to_str().expect("utf8")]);
    assert!(
        wait_until(|| server.log().contains("bound listener opened")),
        "{}",
        server.log()
    );
    let port = server.bound_port(A);
    let reachable = |p: u16| std::net::TcpStream::connect(("127.0.0.1", p)).is_ok();
    assert!(reachable(port), "{}", server.log());
    assert_eq!(
        request(B_IP, port, "GET", "/latest/meta-data/instance-id", &[], b"").text(),
        "i-d8e02d56"
    );
    // compute rewrites the file: A's listener goes, B gets a unix socket.
    std::fs::write(&file, format!("{}={B}\n", sock.display())).expect("write");
    server.signal("HUP");
    assert!(
        wait_until(|| !reachable(port) && sock.exists()),
        "{}",
        server.log()
    );
    let out = std::process::Command::new("curl")
        .args([
            "-sS",
            "--unix-socket",
            sock.to_str().expect("utf8"),
            "http://x/latest/meta-data/instance-id",
        ])
        .output()
        .expect("curl");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "i-2f1d4c3b");
    // A bad file changes nothing.
    std::fs::write(&file, "garbage\n").expect("write");
    server.signal("HUP");
    assert!(wait_until(|| server
        .log()
        .contains("listeners file not applied")));
    assert!(sock.exists());
}
