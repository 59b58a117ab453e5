//! `guest-agent watch` against a real `metadata-server`: the real agent binary
//! long-polls `meta_data.json` with its ETag, applies at start, applies again when
//! the instance's `meta` changes (a run that writes nothing: the agent is
//! idempotent) and when its hostname changes (a run that rewrites
//! `/etc/hostname`), keeps going when the server restarts, and stops on SIGTERM.
//!
//! Needs the `metadata-server` and `guest-agent` binaries beside this test
//! (`cargo test --workspace` builds them). No root: the agent applies under a
//! folder (`--root`) and reaches the server on a loopback port bound to the
//! instance.

use e2e::hostguest::metadata_server;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const UUID: &str = "0a9e7d6c-5b4a-4321-8fed-cba987654321";

fn guest_agent() -> PathBuf {
    let beside = metadata_server().with_file_name("guest-agent");
    assert!(
        beside.is_file(),
        "{} is missing: build it first (`cargo build -p guest-agent`; `cargo test --workspace` does)",
        beside.display()
    );
    beside
}

fn document(hostname: &str, role: &str) -> String {
    serde_json::json!({
        "uuid": UUID,
        "name": "watched",
        "hostname": hostname,
        "meta": {"role": role},
    })
    .to_string()
}

/// Writes the instance file atomically, as the server's operator must.
fn write_instance(path: &Path, text: &str) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).expect("write");
    std::fs::rename(&tmp, path).expect("rename");
}

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts the server with a listener bound to the instance on `port`, 0 for one
/// the kernel chooses (a port chosen here could be taken before the server binds
/// it); returns it with the port it bound, read from its log.
fn start_server(dir: &Path, instances: &Path, port: u16) -> (Killed, u16) {
    let log = dir.join("server.log");
    let child = Command::new(metadata_server())
        .arg("serve")
        .arg("--instances")
        .arg(instances)
        .arg("--instance-listener")
        .arg(format!("127.0.0.1:{port}={UUID}"))
        .arg("--password-dir")
        .arg(dir.join("passwords"))
        .arg("--data-dir")
        .arg(dir.join("data"))
        .args(["--watch-interval", "1"])
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).expect("server log"))
        .spawn()
        .expect("metadata-server");
    let mut child = Killed(child);
    let tail = format!(" (instance {UUID})");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        let bound = text
            .lines()
            .filter(|l| l.contains(" listening listener=") && l.ends_with(&tail))
            .find_map(httptest::listener_port);
        if let Some(bound) = bound {
            return (child, bound);
        }
        if let Some(status) = child.0.try_wait().expect("wait") {
            panic!("the server exited ({status}):\n{text}");
        }
        assert!(
            Instant::now() < deadline,
            "the server did not listen:\n{text}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn signal(child: &Child, sig: &str) {
    let ok = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(child.id().to_string())
        .status()
        .expect("kill");
    assert!(ok.success());
}

/// The next report the agent printed (one JSON line per run).
fn next_report(reports: &mpsc::Receiver<String>, what: &str) -> serde_json::Value {
    let line = reports
        .recv_timeout(Duration::from_secs(60))
        .unwrap_or_else(|_| panic!("no run after {what}"));
    serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}"))
}

fn step<'a>(report: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    report["steps"]
        .as_array()
        .and_then(|s| s.iter().find(|s| s["step"] == name))
        .unwrap_or_else(|| panic!("no step {name} in {report}"))
}

#[test]
fn the_agent_reapplies_when_the_metadata_changes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("root");
    std::fs::create_dir_all(root.join("etc")).expect("root");
    let instances = dir.path().join("instance.json");
    write_instance(&instances, &document("first", "web"));
    let (server, port) = start_server(dir.path(), &instances, 0);

    let mut agent = Killed(
        Command::new(guest_agent())
            .args(["watch", "--source", "metadata", "--metadata-url"])
            .arg(format!("http://127.0.0.1:{port}"))
            .arg("--root")
            .arg(&root)
            .args(["--format", "json", "--wait", "30", "--steps", "hostname"])
            .env("GUEST_AGENT_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(dir.path().join("agent.log")).expect("log"))
            .spawn()
            .expect("guest-agent"),
    );
    let stdout = agent.0.stdout.take().expect("stdout");
    let (tx, reports) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    let log = || std::fs::read_to_string(dir.path().join("agent.log")).unwrap_or_default();
    let hostname = || std::fs::read_to_string(root.join("etc/hostname")).unwrap_or_default();

    let first = next_report(&reports, "start");
    assert_eq!(step(&first, "hostname")["outcome"], "ok", "{first}");
    assert_eq!(hostname().trim(), "first");

    // `meta` changes: meta_data.json's tag changes, the agent runs, and writes
    // nothing (nothing it configures changed).
    write_instance(&instances, &document("first", "db"));
    let second = next_report(&reports, "the meta change");
    assert_eq!(
        step(&second, "hostname")["outcome"],
        "unchanged",
        "{second}"
    );

    write_instance(&instances, &document("second", "db"));
    let third = next_report(&reports, "the hostname change");
    assert_eq!(step(&third, "hostname")["outcome"], "ok", "{third}");
    assert_eq!(hostname().trim(), "second");

    // The server goes away and comes back with new data: the agent retries and
    // catches the change.
    drop(server);
    write_instance(&instances, &document("third", "db"));
    // The same port again: the agent's URL does not change.
    let (_server, again) = start_server(dir.path(), &instances, port);
    assert_eq!(again, port);
    let fourth = next_report(&reports, "the server's restart");
    assert_eq!(
        step(&fourth, "hostname")["outcome"],
        "ok",
        "{fourth}\n{}",
        log()
    );
    assert_eq!(hostname().trim(), "third");
    assert!(log().contains("retrying"), "{}", log());

    // Waiting, it stops at once on SIGTERM, successfully.
    signal(&agent.0, "TERM");
    let stopping = Instant::now();
    let status = agent.0.wait().expect("wait");
    assert!(status.success(), "{status}: {}", log());
    assert!(
        stopping.elapsed() < Duration::from_secs(10),
        "stopped while waiting, not at the end of its 30 s poll"
    );
    assert!(reports.try_recv().is_err(), "no run after the last change");
}
