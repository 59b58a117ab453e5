//! A running `metadata-server` binary for tests, and connections to it that bind
//! their source address (loopback 127.0.0.0/8: 127.0.0.2 is instance A, 127.0.0.3
//! is B), for `httptest`'s raw HTTP/1.1 client, which shows the exact bytes the
//! server sent.

#![allow(dead_code)]

use std::net::{IpAddr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub const A: &str = "d8e02d56-2648-49a3-bf97-6be8f1204f38";
pub const B: &str = "2f1d4c3b-8a7e-4b6d-9c5f-0e1a2b3c4d5e";
pub const C: &str = "3c3c3c3c-0000-4000-8000-000000000003";
pub const A_IP: &str = "127.0.0.2";
pub const B_IP: &str = "127.0.0.3";
pub const NOBODY_IP: &str = "127.0.0.1";
pub const NOT_FOUND_BODY: &[u8] = b"404 Not Found\n\nThe resource could not be found.\n\n   ";

pub fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/instances.json")
}

pub fn instances() -> Vec<compute::Instance> {
    let bytes = std::fs::read(fixture()).expect("fixture");
    metadata_server::source::parse_documents(&fixture(), &bytes).expect("fixture parses")
}

/// A loopback port nothing listens on now: for a target that must refuse
/// connections (a server's own listeners bind port 0 instead).
pub fn closed_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

pub struct Server {
    pub port: u16,
    pub metrics_port: u16,
    pub dir: tempfile::TempDir,
    pub instances: PathBuf,
    child: Option<Child>,
    /// Where this run's lines start in `server.log` (a restart appends).
    run_log_start: usize,
    extra: Vec<String>,
    /// Where the instances come from instead of the `instances` file
    /// (`--database URL --host NAME`, `--state-dir DIR`).
    source: Option<Vec<String>>,
}

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_metadata-server")
}

impl Server {
    /// Starts the server on a fresh loopback port with a copy of the fixture.
    pub fn start(extra: &[&str]) -> Server {
        let docs: serde_json::Value =
            serde_json::from_slice(&std::fs::read(fixture()).expect("fixture")).expect("json");
        Server::start_with(&docs, extra)
    }

    /// Starts the server with these instance documents.
    pub fn start_with(docs: &serde_json::Value, extra: &[&str]) -> Server {
        let dir = tempfile::tempdir().expect("tempdir");
        let instances = dir.path().join("instances.json");
        std::fs::write(&instances, serde_json::to_vec(docs).expect("json")).expect("write");
        let mut s = Server {
            port: 0,
            metrics_port: 0,
            dir,
            instances,
            child: None,
            run_log_start: 0,
            extra: extra.iter().map(|s| s.to_string()).collect(),
            source: None,
        };
        s.spawn();
        s
    }

    /// Starts the server on the instances of `source` (`--database URL ...`).
    pub fn start_source(source: &[&str], extra: &[&str]) -> Server {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut s = Server {
            port: 0,
            metrics_port: 0,
            instances: dir.path().join("unused.json"),
            dir,
            child: None,
            run_log_start: 0,
            extra: extra.iter().map(|s| s.to_string()).collect(),
            source: Some(source.iter().map(|s| s.to_string()).collect()),
        };
        s.spawn();
        s
    }

    /// `/healthz` and `/metrics` as text.
    pub fn health(&self) -> String {
        request(NOBODY_IP, self.metrics_port, "GET", "/healthz", &[], b"").text()
    }

    pub fn metrics(&self) -> String {
        request(NOBODY_IP, self.metrics_port, "GET", "/metrics", &[], b"").text()
    }

    pub fn password_dir(&self) -> PathBuf {
        self.dir.path().join("passwords")
    }

    /// The server's data folder (identity key and certificate, maintenance events).
    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("server.log"))
            .expect("log");
        // The log of an earlier run (a restart) stays; only what follows is this run's.
        self.run_log_start = log.metadata().expect("log size").len() as usize;
        let source: Vec<String> = match &self.source {
            Some(s) => s.clone(),
            None => vec!["--instances".into(), self.instances.display().to_string()],
        };
        let child = Command::new(bin())
            .arg("serve")
            // Port 0: the kernel picks a free port and the server logs it, so no other
            // test can take it between choosing and binding.
            .args(["--listen", "127.0.0.1:0"])
            .args(["--metrics-listen", "127.0.0.1:0"])
            .args(&source)
            .arg("--password-dir")
            .arg(self.password_dir())
            .arg("--data-dir")
            .arg(self.data_dir())
            .arg("--watch-interval")
            .arg("1")
            .args(&self.extra)
            .env("RUST_LOG", "info")
            .stderr(log)
            .stdout(Stdio::null())
            .spawn()
            .expect("spawn metadata-server");
        self.child = Some(child);
        self.wait_listening();
    }

    /// This run's log (after a restart, without the earlier runs' lines).
    fn run_log(&self) -> String {
        let log = self.log();
        log.get(self.run_log_start..)
            .unwrap_or_default()
            .to_string()
    }

    /// The port the kernel gave the `--instance-listener 127.0.0.1:0=<uuid>` of
    /// this instance (the server logs it once bound, before the harness sees it
    /// ready): choosing a free port first could lose it to another test.
    pub fn bound_port(&self, uuid: &str) -> u16 {
        let tail = format!(" (instance {uuid})");
        self.run_log()
            .lines()
            // "listening" (--instance-listener) or "bound listener opened" (the file).
            .filter(|l| l.contains(" listener=") && l.ends_with(&tail))
            .find_map(httptest::listener_port)
            .unwrap_or_else(|| panic!("no TCP listener bound to {uuid}: {}", self.log()))
    }

    /// Waits until this run's log names the ports the kernel gave the
    /// `--listen` and `--metrics-listen` sockets, and takes them.
    fn wait_listening(&mut self) {
        for _ in 0..400 {
            let run = self.run_log();
            // The harness's `--listen` comes first, so its line is the first plain one.
            let main = run
                .lines()
                .find(|l| l.contains(" listening listener=") && !l.contains("metrics listening"))
                .and_then(httptest::listener_port);
            let metrics = run
                .lines()
                .find(|l| l.contains("metrics listening listener="))
                .and_then(httptest::listener_port);
            if let (Some(port), Some(metrics)) = (main, metrics) {
                self.port = port;
                self.metrics_port = metrics;
                return;
            }
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                panic!("server exited with {status}: {run}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("server did not report its ports: {}", self.log());
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    pub fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(self.pid().to_string())
            .status()
            .expect("kill");
        assert!(ok.success());
    }

    /// SIGTERM, then the exit status.
    pub fn stop(&mut self) -> std::process::ExitStatus {
        self.signal("TERM");
        let status = self.child.as_mut().expect("running").wait().expect("wait");
        self.child = None;
        status
    }

    /// Waits for the exit after a signal was sent.
    pub fn stop_after_signal(&mut self) -> std::process::ExitStatus {
        let status = self.child.as_mut().expect("running").wait().expect("wait");
        self.child = None;
        status
    }

    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }

    pub fn get(&self, from: &str, path: &str) -> Resp {
        request(from, self.port, "GET", path, &[], b"")
    }

    pub fn req(
        &self,
        from: &str,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Resp {
        request(from, self.port, method, path, headers, body)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

pub use httptest::Resp;

/// A whole response split and checked (see `httptest::parse`).
pub fn parse_response(raw: &[u8], head: bool) -> Resp {
    httptest::parse(raw, head)
}

/// Connects from `from` (a loopback address) to the server.
pub fn connect(from: &str, port: u16) -> TcpStream {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("rt");
    let from: IpAddr = from.parse().expect("ip");
    // Binding a source port first can collide with a connection still in TIME_WAIT
    // when many tests hammer the same addresses; a fresh socket gets another port.
    let mut last_err = None;
    let mut stream = None;
    for _ in 0..20 {
        let attempt = rt.block_on(async {
            let sock = tokio::net::TcpSocket::new_v4()?;
            sock.set_reuseaddr(true)?;
            sock.bind(SocketAddr::new(from, 0))?;
            sock.connect(SocketAddr::from(([127, 0, 0, 1], port))).await
        });
        match attempt {
            Ok(s) => {
                stream = Some(s);
                break;
            }
            Err(e) => last_err = Some(e),
        }
    }
    let stream =
        stream.unwrap_or_else(|| panic!("connect from {from} to port {port}: {last_err:?}"));
    let std = stream.into_std().expect("std");
    std.set_nonblocking(false).expect("blocking");
    std.set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    std
}

pub fn request(
    from: &str,
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Resp {
    httptest::exchange(connect(from, port), method, path, headers, body)
}

/// Polls `f` every 20 ms until it holds or `patience` passes.
pub fn eventually(patience: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = std::time::Instant::now() + patience;
    loop {
        if f() {
            return true;
        }
        if std::time::Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}
