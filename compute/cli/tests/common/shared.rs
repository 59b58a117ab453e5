//! A shared PostgreSQL database (this test binary's `pgtest` cluster) with host
//! agents as real processes (`compute host-agent`), each with its own state folder,
//! and the `compute` CLI run from yet another one: nothing reaches a host but through
//! the database.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub struct Shared {
    pub db: pgtest::Database,
    pub dir: tempfile::TempDir,
}

/// A running `compute host-agent`.
pub struct Agent {
    pub name: String,
    pub state: PathBuf,
    pub log: PathBuf,
    pub child: Child,
}

impl Shared {
    pub fn new() -> Shared {
        Shared {
            db: pgtest::cluster().database(),
            dir: tempfile::tempdir().expect("tempdir"),
        }
    }

    pub fn url(&self) -> String {
        self.db.url()
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// The control machine's state folder (the CLI's): never a host's.
    pub fn control(&self) -> PathBuf {
        self.path("control")
    }

    /// `compute` against the database, from the control machine.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_compute"));
        c.arg("--state-dir")
            .arg(self.control())
            .args(["--database", &self.url()])
            .args(args);
        c
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("run compute")
    }

    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    pub fn json(&self, args: &[&str]) -> serde_json::Value {
        serde_json::from_str(&self.ok(args)).expect("json")
    }

    /// Imports `blank` (a 16 MiB qcow2: QEMU runs it, nothing boots) into the
    /// database; its id.
    pub fn blank_image(&self) -> String {
        let disk = self.path("root.qcow2");
        let ok = Command::new("qemu-img")
            .args(["create", "-q", "-f", "qcow2"])
            .arg(&disk)
            .arg("16M")
            .status()
            .expect("qemu-img: install qemu-utils (scripts/test does)");
        assert!(ok.success());
        let image = self.json(&[
            "image-import",
            "--name",
            "blank",
            "--file",
            disk.to_str().expect("utf-8"),
            "--format",
            "json",
        ]);
        image["id"].as_str().expect("id").to_owned()
    }

    /// Starts the agent of host `name` in its own state folder `state-<name>`,
    /// quick to heartbeat and poll; `qemu` replaces QEMU (a fake one).
    pub fn agent(&self, name: &str, qemu: Option<&Path>) -> Agent {
        self.agent_with(name, qemu, &[])
    }

    pub fn agent_with(&self, name: &str, qemu: Option<&Path>, extra: &[&str]) -> Agent {
        self.agent_networked(name, qemu, &self.url(), &["--network", "plain"], extra)
    }

    /// [`Shared::agent_with`] with this database URL (the cluster trusts every
    /// connection: a password in it is carried, not checked) and these networking
    /// flags (`--network user --metadata-server BIN`, ...).
    pub fn agent_networked(
        &self,
        name: &str,
        qemu: Option<&Path>,
        url: &str,
        networking: &[&str],
        extra: &[&str],
    ) -> Agent {
        let state = self.path(&format!("state-{name}"));
        let log = self.path(&format!("agent-{name}.log"));
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .expect("log");
        let mut c = Command::new(env!("CARGO_BIN_EXE_compute"));
        c.arg("--state-dir")
            .arg(&state)
            .args(["--database", url])
            .args(["--accel", "tcg"])
            .args(networking)
            .args([
                "host-agent",
                "--host",
                name,
                "--heartbeat",
                "1",
                "--poll",
                "2",
            ])
            .args(extra)
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(out);
        if let Some(q) = qemu {
            c.arg("--qemu").arg(q);
        }
        let child = c.spawn().expect("spawn host-agent");
        Agent {
            name: name.to_owned(),
            state,
            log,
            child,
        }
    }

    /// Waits until `pred` holds, checking every 100 ms for `patience`.
    pub fn wait_until(&self, what: &str, patience: Duration, mut pred: impl FnMut() -> bool) {
        let deadline = Instant::now() + patience;
        while !pred() {
            assert!(Instant::now() < deadline, "never happened: {what}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Whether host `name` shows as up.
    pub fn is_up(&self, name: &str) -> bool {
        let out = self.run(&["host-show", name, "--format", "json"]);
        out.status.success()
            && serde_json::from_slice::<serde_json::Value>(&out.stdout)
                .is_ok_and(|v| v["state"] == "up")
    }

    /// The instance as `show --format json` prints it.
    pub fn show(&self, name: &str) -> serde_json::Value {
        self.json(&["show", name, "--format", "json"])
    }
}

/// The `metadata-server` built beside `compute` (`cargo test --workspace` builds
/// both; `cargo build -p metadata-server` does it alone).
pub fn metadata_server() -> PathBuf {
    let beside = Path::new(env!("CARGO_BIN_EXE_compute")).with_file_name("metadata-server");
    assert!(
        beside.is_file(),
        "{} is missing: build it first (`cargo build -p metadata-server`; `cargo test --workspace` does)",
        beside.display()
    );
    beside
}

impl Agent {
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits for the agent's log to say `what`.
    pub fn wait_log(&self, what: &str, patience: Duration) {
        let deadline = Instant::now() + patience;
        while !self.log().contains(what) {
            assert!(
                Instant::now() < deadline,
                "agent {} never logged `{what}`:\n{}",
                self.name,
                self.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Waits for the process to end by itself; its exit code.
    pub fn wait_exit(&mut self, patience: Duration) -> Option<i32> {
        let deadline = Instant::now() + patience;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status.code();
            }
            assert!(
                Instant::now() < deadline,
                "agent {} still running:\n{}",
                self.name,
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn signal(&self, signal: &str) {
        let ok = Command::new("kill")
            .args([&format!("-{signal}"), &self.child.id().to_string()])
            .status()
            .expect("kill");
        assert!(ok.success());
    }

    /// SIGKILL, and reaps it.
    pub fn kill9(&mut self) {
        self.child.kill().expect("kill -9");
        self.child.wait().expect("reap");
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Kills the QEMU and `metadata-server` processes (guests, relays, servers) whose
/// command line names a folder under `dir`, and deletes the network namespaces of
/// the instances in its state folders: what a test leaves behind when it fails.
pub fn kill_guests_under(dir: &Path) {
    kill_processes_under(dir);
    let Ok(folders) = std::fs::read_dir(dir) else {
        return;
    };
    for state in folders.flatten() {
        let Ok(instances) = std::fs::read_dir(state.path().join("instances")) else {
            continue;
        };
        for i in instances.flatten() {
            let netns = compute_host::driver::usernet::netns_name(&i.file_name().to_string_lossy());
            if Path::new("/run/netns").join(&netns).exists() {
                let _ = Command::new("ip")
                    .args(["netns", "delete", &netns])
                    .status();
            }
        }
    }
}

fn kill_processes_under(dir: &Path) {
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return;
    };
    let needle = dir.to_string_lossy().into_owned();
    for p in procs.flatten() {
        let Some(pid) = p.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        let cmdline = std::fs::read(p.path().join("cmdline")).unwrap_or_default();
        let cmdline = String::from_utf8_lossy(&cmdline);
        let ours = cmdline.contains("qemu") || cmdline.contains("metadata-server");
        if ours && cmdline.contains(&needle) {
            let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
        }
    }
}

impl Drop for Shared {
    fn drop(&mut self) {
        kill_guests_under(self.dir.path());
    }
}
