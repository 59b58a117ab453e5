//! The test cluster itself: reachable on its socket only, a fresh database per call,
//! and gone with a test process that is killed.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[test]
fn databases_are_fresh_and_the_server_listens_on_its_socket_only() {
    let cluster = pgtest::cluster();
    let a = cluster.database();
    let b = cluster.database();
    assert_ne!(a.name, b.name);
    a.psql("CREATE TABLE t (x INT); INSERT INTO t VALUES (1)");
    assert_eq!(a.psql("SELECT x FROM t"), "1");
    assert!(
        b.try_psql("SELECT x FROM t").is_err(),
        "b is another database"
    );
    assert_eq!(a.psql("SHOW listen_addresses"), "");
    assert!(
        a.url().starts_with("postgresql://postgres@%2F"),
        "{}",
        a.url()
    );
}

/// Run by the test below in a child process: starts the cluster, prints the
/// server's pid, and waits to be killed.
#[test]
fn holder() {
    if std::env::var_os("PGTEST_HOLDER").is_none() {
        return;
    }
    let cluster = pgtest::cluster();
    println!("server-pid {}", cluster.server_pid().expect("pid"));
    std::thread::sleep(Duration::from_secs(600));
}

#[test]
fn the_server_dies_with_a_killed_test_process() {
    let mut child = Command::new(std::env::current_exe().expect("exe"))
        .args(["--exact", "holder", "--nocapture", "--test-threads", "1"])
        .env("PGTEST_HOLDER", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let out = BufReader::new(child.stdout.take().expect("stdout"));
    let pid: u32 = out
        .lines()
        .map_while(Result::ok)
        .find_map(|l| {
            // The harness prints "test holder ... " before it on the same line.
            let at = l.find("server-pid ")?;
            l[at + "server-pid ".len()..].trim().parse().ok()
        })
        .expect("the child printed its server's pid");
    let proc_dir = format!("/proc/{pid}");
    assert!(std::path::Path::new(&proc_dir).exists());
    child.kill().expect("kill -9");
    child.wait().expect("wait");
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::path::Path::new(&proc_dir).exists() {
        assert!(
            Instant::now() < deadline,
            "postgres {pid} outlived its test process"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}
