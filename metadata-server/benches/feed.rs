//! The metadata server over PostgreSQL, measured (run by `scripts/bench-feed`, or
//! `cargo bench -p metadata-server --bench feed`). Prints numbers; asserts nothing.
//!
//! On a throwaway cluster (pgtest's: Unix socket, `fsync=off`, as the tests run it)
//! with INSTANCES instances (default 100,000) on host h1 and a few on h2:
//! - cold start: a server for h1 started until it answers (snapshot loaded), and
//!   its resident memory;
//! - propagation: CHANGES (default 200) `meta` changes committed through the store
//!   (what `compute meta-set` does), each timed from just before the commit to the
//!   moment the new bytes reach a client long-polling `meta_data.json`
//!   (`?wait_for_change=true`) on h1's server;
//! - the request rate of `/openstack/latest/meta_data.json` (wrk, 32 connections,
//!   one instance through a bound listener) idle, while RATE (default 1,000)
//!   updates/s are committed to other instances of h1 (the server applies each), and
//!   while the same rate goes to h2's instances (a control: the database and the
//!   writers load the machine the same way, the server only ignores notifications).
//!   Each round runs the three back to back; medians of ROUNDS (default 5) rounds.
//!   The machine's cores are shared by wrk, the server, PostgreSQL and the writers:
//!   the control separates what following the feed costs from what the writers'
//!   load costs.

use compute_store::{HostSpec, PgStore, Store};
use std::io::{Read, Write};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn uuid(i: u64) -> String {
    format!("{i:08x}-0000-4000-8000-{i:012x}")
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// Instances `from..=to` on `host`, in one transaction that takes one revision for
/// all (the store's per-row trigger, which also notifies, is off meanwhile: a bulk
/// load, not compute's way of booting), with documents like compute's: a NIC, an
/// address, `meta`.
fn bulk_insert(db: &pgtest::Database, host: &str, from: u64, to: u64) {
    db.psql(&format!(
        r#"ALTER TABLE instances DISABLE TRIGGER instances_changed;
        UPDATE revision SET rev = rev + 1;
        INSERT INTO instances (uuid, name, flavor, image_id, vm_state, power_state, fixed_ip, mac,
            document, created_at, updated_at, host, vcpus, ram_mb, disk_gb, rev)
        SELECT u, 'vm-' || i, '{{"name": "m1.tiny", "vcpus": 1, "ram_mb": 512, "disk_gb": 1, "ephemeral_gb": 0, "swap_mb": 0}}', 'img', 'active', 'running', ip, mac,
            json_build_object('uuid', u, 'name', 'vm-' || i, 'meta', json_build_object('role', 'web'),
              'network', json_build_object(
                'links', json_build_array(json_build_object('id', 'tap0', 'vif_id', 'v', 'type', 'ovs',
                    'mtu', 1500, 'ethernet_mac_address', mac)),
                'networks', json_build_array(json_build_object('id', 'network0', 'type', 'ipv4',
                    'link', 'tap0', 'network_id', 'n', 'ip_address', ip, 'netmask', '255.0.0.0',
                    'routes', json_build_array(), 'services', json_build_array())),
                'services', json_build_array()))::text,
            '2024-01-01T00:00:00Z', '2024-01-01T00:00:00Z', '{host}', 1, 512, 1,
            (SELECT rev FROM revision)
        FROM (SELECT i,
                lpad(to_hex(i), 8, '0') || '-0000-4000-8000-' || lpad(to_hex(i), 12, '0') AS u,
                '10.' || (64 + (i >> 16)) || '.' || ((i >> 8) & 255) || '.' || (i & 255) AS ip,
                'fa:16:3e:' || lpad(to_hex((i >> 16) & 255), 2, '0') || ':'
                    || lpad(to_hex((i >> 8) & 255), 2, '0') || ':' || lpad(to_hex(i & 255), 2, '0') AS mac
              FROM generate_series({from}, {to}) AS i) s;
        ALTER TABLE instances ENABLE TRIGGER instances_changed"#
    ));
}

fn set_meta(store: &mut PgStore, i: u64, value: &str) {
    let change = |doc: &str| -> Result<String, compute_store::DocumentProblem> {
        let mut v: serde_json::Value = serde_json::from_str(doc)?;
        v["meta"]["role"] = value.into();
        Ok(v.to_string())
    };
    store
        .update_document(&uuid(i), "2024-01-01T00:00:01Z", &change)
        .expect("meta change");
}

/// One HTTP/1.1 GET; status, ETag and body.
fn get(port: u16, path: &str) -> (u16, Option<String>, String) {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(120)))
        .expect("timeout");
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: 169.254.169.254\r\nConnection: close\r\n\r\n"
    )
    .expect("send");
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).expect("read");
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let etag = head
        .lines()
        .find_map(|l| l.strip_prefix("etag: "))
        .map(|t| t.trim_matches('"').to_owned());
    (status, etag, body.to_owned())
}

fn rss_mib(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .unwrap_or(0.0)
        / 1024.0
}

struct Server {
    child: Child,
    bound: u16,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

const META: &str = "/openstack/latest/meta_data.json";

/// Starts h1's server; returns it once instance 1 is answered, and how long that took.
fn start_server(url: &str, work: &std::path::Path) -> (Server, Duration) {
    let bound = free_port();
    let started = Instant::now();
    let child = Command::new(env!("CARGO_BIN_EXE_metadata-server"))
        .args(["serve", "--database", url, "--host", "h1", "--listen"])
        .arg(format!("127.0.0.1:{}", free_port()))
        .arg("--instance-listener")
        .arg(format!("127.0.0.1:{bound}={}", uuid(1)))
        .arg("--data-dir")
        .arg(work.join("data"))
        .args(["--max-connections", "1024"])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(work.join("server.log")).expect("log"))
        .spawn()
        .expect("metadata-server");
    let mut server = Server { child, bound };
    loop {
        if let Ok(Some(status)) = server.child.try_wait() {
            panic!(
                "metadata-server exited ({status}): {}",
                std::fs::read_to_string(work.join("server.log")).unwrap_or_default()
            );
        }
        if std::net::TcpStream::connect(("127.0.0.1", bound)).is_ok() && get(bound, META).0 == 200 {
            return (server, started.elapsed());
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// Writers committing `rate` meta changes per second to instances `first..=last`
/// until `stop`; counts what they committed.
fn writers(
    url: &str,
    rate: u64,
    first: u64,
    last: u64,
    stop: Arc<AtomicBool>,
    done: Arc<AtomicU64>,
) -> Vec<std::thread::JoinHandle<()>> {
    const THREADS: u64 = 8;
    let per = Duration::from_secs_f64(THREADS as f64 / rate as f64);
    (0..THREADS)
        .map(|t| {
            let (url, stop, done) = (url.to_owned(), stop.clone(), done.clone());
            std::thread::spawn(move || {
                let mut store =
                    PgStore::connect(&url, "10.0.0.0/8".parse().expect("cidr")).expect("store");
                let start = Instant::now();
                let mut n: u64 = 0;
                let mut x = 0x9e37_79b9_7f4a_7c15_u64 ^ t;
                while !stop.load(Ordering::Relaxed) {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    let i = first + x % (last - first + 1);
                    set_meta(&mut store, i, &format!("w{n}"));
                    done.fetch_add(1, Ordering::Relaxed);
                    n += 1;
                    let next = start + per * n as u32;
                    if let Some(wait) = next.checked_duration_since(Instant::now()) {
                        std::thread::sleep(wait);
                    }
                }
            })
        })
        .collect()
}

/// wrk's requests per second.
fn wrk(port: u16, secs: u64) -> f64 {
    let out = Command::new("wrk")
        .args(["-t2", "-c32", &format!("-d{secs}s")])
        .arg(format!("http://127.0.0.1:{port}{META}"))
        .output()
        .expect("wrk (apt-get install wrk)");
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .find_map(|l| l.strip_prefix("Requests/sec:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no rate in wrk's output: {text}"))
}

/// wrk's rate while writers commit `rate`/s to `first..=last`; and the rate they
/// reached.
fn wrk_under_updates(
    url: &str,
    port: u16,
    secs: u64,
    rate: u64,
    first: u64,
    last: u64,
) -> (f64, f64) {
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let threads = writers(url, rate, first, last, stop.clone(), done.clone());
    std::thread::sleep(Duration::from_millis(500));
    let before = done.load(Ordering::Relaxed);
    let t = Instant::now();
    let rps = wrk(port, secs);
    let committed = (done.load(Ordering::Relaxed) - before) as f64 / t.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        let _ = t.join();
    }
    (rps, committed)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let instances = env_or("INSTANCES", 100_000);
    let changes = env_or("CHANGES", 200);
    let rate = env_or("RATE", 1000);
    let rounds = env_or("ROUNDS", 5);
    let secs = env_or("DURATION", 5);
    let work = tempfile::tempdir().expect("work folder");

    let db = pgtest::cluster().database();
    let url = db.url();
    let mut store = PgStore::connect(&url, "10.0.0.0/8".parse().expect("cidr")).expect("store");
    for host in ["h1", "h2"] {
        store
            .register_host(&HostSpec {
                name: host.into(),
                capacity: compute::placement::Resources {
                    vcpus: 1 << 20,
                    ram_mb: 1 << 40,
                    disk_gb: 1 << 30,
                },
                ratios: None,
            })
            .expect("host");
    }
    let t = Instant::now();
    bulk_insert(&db, "h1", 1, instances);
    bulk_insert(&db, "h2", instances + 1, instances + 1000);
    db.psql("VACUUM ANALYZE instances");
    println!(
        "{instances} instances on h1 and 1000 on h2 inserted in {:.1} s",
        t.elapsed().as_secs_f64()
    );

    let (server, cold) = start_server(&url, work.path());
    let pid = server.child.id();
    println!(
        "cold start, {instances} instances from PostgreSQL: {:.2} s to the first answer, RSS {:.0} MiB",
        cold.as_secs_f64(),
        rss_mib(pid)
    );

    let mut took = Vec::with_capacity(changes as usize);
    for n in 0..changes {
        let (_, etag, _) = get(server.bound, META);
        let etag = etag.expect("an ETag");
        let value = format!("p{n}");
        let poll = format!("{META}?wait_for_change=true&timeout_sec=30&last_etag={etag}");
        let port = server.bound;
        let (tx, rx) = std::sync::mpsc::channel();
        let waiter = std::thread::spawn(move || {
            let answer = get(port, &poll);
            let _ = tx.send(Instant::now());
            answer
        });
        // The waiter is held by the server before the commit.
        std::thread::sleep(Duration::from_millis(20));
        let committing = Instant::now();
        set_meta(&mut store, 1, &value);
        let (status, _, body) = waiter.join().expect("waiter");
        let arrived = rx.recv().expect("arrival");
        assert_eq!(status, 200);
        assert!(
            body.contains(&format!("\"role\": \"{value}\"")),
            "the new bytes: {body}"
        );
        took.push(arrived.duration_since(committing).as_secs_f64() * 1000.0);
    }
    took.sort_by(f64::total_cmp);
    println!(
        "propagation over {changes} changes, commit to new bytes served: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        percentile(&took, 0.5),
        percentile(&took, 0.99),
        took[took.len() - 1]
    );

    let (mut idle, mut busy, mut control, mut reached) = (vec![], vec![], vec![], vec![]);
    for _ in 0..rounds {
        idle.push(wrk(server.bound, secs));
        let (r, c) = wrk_under_updates(&url, server.bound, secs, rate, 2, instances);
        busy.push(r);
        reached.push(c);
        let (r, _) = wrk_under_updates(
            &url,
            server.bound,
            secs,
            rate,
            instances + 1,
            instances + 1000,
        );
        control.push(r);
    }
    let (idle, busy, control) = (median(idle), median(busy), median(control));
    println!(
        "{META} req/s (wrk, 32 connections, median of {rounds} rounds): idle {idle:.0}; \
         while {:.0} updates/s are committed to h1's instances {busy:.0} (ratio {:.2} of idle); \
         to h2's instances (control) {control:.0} (ratio {:.2}); following them costs {:.0}%",
        median(reached),
        busy / idle,
        control / idle,
        (1.0 - busy / control) * 100.0
    );
    let alone = {
        let stop = Arc::new(AtomicBool::new(false));
        let done = Arc::new(AtomicU64::new(0));
        let threads = writers(&url, rate, 2, instances, stop.clone(), done.clone());
        std::thread::sleep(Duration::from_secs(secs));
        stop.store(true, Ordering::Relaxed);
        for t in threads {
            let _ = t.join();
        }
        done.load(Ordering::Relaxed) as f64 / secs as f64
    };
    println!("the writers alone (no wrk) commit {alone:.0} updates/s of the {rate} asked");
    println!("RSS after the run: {:.0} MiB", rss_mib(pid));
}
