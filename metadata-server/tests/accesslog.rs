//! The access log never holds a request: with its destination a FIFO that nobody
//! reads (the writer blocks opening it), a flood is answered, `/healthz` answers
//! meanwhile, the lines that did not fit the queue are counted in `/metrics`, and
//! SIGTERM still stops the server.

mod common;

use common::*;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// `n` requests on one keep-alive connection; the number answered 200.
fn flood(port: u16, n: usize) -> usize {
    let stream = connect(A_IP, port);
    let mut reader = BufReader::new(stream.try_clone().expect("clone"));
    let mut writer: TcpStream = stream;
    let mut ok = 0;
    for _ in 0..n {
        writer
            .write_all(b"GET /openstack/latest/meta_data.json HTTP/1.1\r\nHost: x\r\n\r\n")
            .expect("send");
        let mut status = String::new();
        reader.read_line(&mut status).expect("status line");
        let mut length = 0usize;
        loop {
            let mut h = String::new();
            reader.read_line(&mut h).expect("header");
            if h == "\r\n" {
                break;
            }
            if let Some(v) = h.to_ascii_lowercase().strip_prefix("content-length:") {
                length = v.trim().parse().expect("length");
            }
        }
        let mut body = vec![0; length];
        reader.read_exact(&mut body).expect("body");
        if status.starts_with("HTTP/1.1 200") {
            ok += 1;
        }
    }
    ok
}

fn counter(metrics: &str, name: &str) -> u64 {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("{name} in\n{metrics}"))
}

#[test]
fn a_stalled_destination_drops_and_counts_lines_and_holds_no_request() {
    let dir = tempfile::tempdir().expect("tempdir");
    let fifo = dir.path().join("access.fifo");
    rustix::fs::mknodat(
        rustix::fs::CWD,
        &fifo,
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::from_raw_mode(0o600),
        0,
    )
    .expect("mkfifo");
    let fifo = fifo.display().to_string();
    let mut server = Server::start(&["--access-log", &fifo, "--access-log-queue", "64"]);

    let (threads, per) = (4, 500);
    let port = server.port;
    let done = Arc::new(AtomicBool::new(false));
    let workers: Vec<_> = (0..threads)
        .map(|_| std::thread::spawn(move || flood(port, per)))
        .collect();
    let health = {
        let (done, metrics_port) = (done.clone(), server.metrics_port);
        std::thread::spawn(move || {
            let mut answered = 0;
            while !done.load(Ordering::Relaxed) {
                let h = request(NOBODY_IP, metrics_port, "GET", "/healthz", &[], b"");
                assert_eq!((h.status, h.text().as_str()), (200, "ok\n"));
                answered += 1;
            }
            answered
        })
    };
    let answered: usize = workers.into_iter().map(|w| w.join().expect("flood")).sum();
    done.store(true, Ordering::Relaxed);
    assert!(health.join().expect("healthz") > 0);
    assert_eq!(answered, threads * per, "every request answered");

    let m = server.metrics();
    let (written, dropped) = (
        counter(&m, "metadata_access_log_lines_total"),
        counter(&m, "metadata_access_log_dropped_total"),
    );
    assert_eq!(written, 0, "nobody reads the FIFO");
    // Everything beyond what the queue holds (and the record the writer took).
    assert!(
        dropped >= (threads * per - 65) as u64,
        "{dropped} dropped of {}",
        threads * per
    );
    assert!(server.stop().success(), "{}", server.log());
}

#[test]
fn off_writes_nothing() {
    let server = Server::start(&["--access-log", "off"]);
    assert_eq!(
        server.get(A_IP, "/openstack/latest/meta_data.json").status,
        200
    );
    assert!(!server.log().contains(" access: "), "{}", server.log());
    let m = server.metrics();
    assert_eq!(counter(&m, "metadata_access_log_dropped_total"), 0);
}
