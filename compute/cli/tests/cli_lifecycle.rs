//! One lifecycle suite through the `compute` binary, on both backends: a state
//! folder (the CLI does the work itself) and a shared PostgreSQL database (a host
//! agent process does it, in its own state folder; the CLI runs from another).
//! A real busybox guest (Debian's kernel, `e2e`'s tick initramfs) walks boot,
//! pause, unpause, soft and hard reboot, stop, start, suspend, resume, image-create,
//! rebuild and delete; each step is checked by `show --format json` and what the
//! guest prints on its console (`console-log`), and one guest serves every step.

use e2e::guest::{self, BOOT_MARKER};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

mod common;

use common::shared::{Agent, Shared};

/// A safeguard against a hung guest, not a speed assertion (TCG on a busy host).
const PATIENCE: Duration = Duration::from_secs(900);

/// Where the CLI's records are, and who carries out the work.
enum Cloud {
    StateFolder { dir: tempfile::TempDir },
    Shared { shared: Shared, agent: Agent },
}

impl Cloud {
    fn dir(&self) -> &Path {
        match self {
            Cloud::StateFolder { dir } => dir.path(),
            Cloud::Shared { shared, .. } => shared.dir.path(),
        }
    }

    fn run(&self, args: &[&str]) -> Output {
        let mut c = match self {
            Cloud::StateFolder { dir } => {
                let mut c = Command::new(env!("CARGO_BIN_EXE_compute"));
                c.arg("--state-dir").arg(dir.path().join("state")).args([
                    "--accel",
                    "tcg",
                    "--network",
                    "plain",
                    "--cidr",
                    "10.98.0.0/24",
                ]);
                c
            }
            Cloud::Shared { shared, .. } => shared.command(&[]),
        };
        c.args(args).output().expect("run compute")
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        let agent_log = match self {
            Cloud::Shared { agent, .. } => agent.log(),
            Cloud::StateFolder { .. } => String::new(),
        };
        assert!(
            out.status.success(),
            "{args:?}: {}\n{agent_log}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn json(&self, args: &[&str]) -> Value {
        let mut args = args.to_vec();
        args.extend(["--format", "json"]);
        serde_json::from_str(&self.ok(&args)).expect("json")
    }

    fn console(&self) -> String {
        e2e::console::whole_lines(&self.ok(&["console-log", "vm"]))
    }

    fn boots(&self) -> usize {
        self.console().matches(BOOT_MARKER).count()
    }

    fn last_tick(&self) -> u64 {
        guest::last_tick(&self.console())
    }

    fn wait_for(&self, what: &str, mut ok: impl FnMut(&Cloud) -> bool) {
        let deadline = Instant::now() + PATIENCE;
        while !ok(self) {
            assert!(
                Instant::now() < deadline,
                "guest never reached: {what}\n{}",
                self.console()
            );
            std::thread::sleep(Duration::from_secs(1));
        }
    }
}

/// Nova's three states and the status they make.
fn states(v: &Value) -> (String, String, Option<String>, String) {
    let s = |k: &str| v[k].as_str().map(str::to_owned);
    (
        s("status").unwrap_or_default(),
        s("vm_state").unwrap_or_default(),
        s("task_state"),
        s("power_state").unwrap_or_default(),
    )
}

fn is(v: &Value, status: &str, vm: &str, power: &str) {
    assert_eq!(
        states(v),
        (status.into(), vm.into(), None, power.into()),
        "{v}"
    );
    assert!(v["fault"].is_null(), "{v}");
}

fn lifecycle(cloud: Cloud) {
    let g = guest::build(cloud.dir()).expect("test guest");
    let path = |p: &PathBuf| p.to_str().expect("utf-8").to_owned();
    cloud.json(&[
        "image-import",
        "--name",
        "busybox",
        "--file",
        &path(&g.disk),
        "--kernel",
        &path(&g.kernel),
        "--ramdisk",
        &path(&g.initramfs),
        "--cmdline",
        guest::CMDLINE,
    ]);
    cloud.ok(&[
        "flavor-create",
        "t1",
        "--vcpus",
        "1",
        "--ram",
        "256",
        "--disk",
        "1",
        "--ephemeral",
        "1",
        "--swap",
        "32",
    ]);

    let vm = cloud.json(&["boot", "--image", "busybox", "--flavor", "t1", "vm"]);
    is(&vm, "ACTIVE", "active", "running");
    let uuid = vm["id"].as_str().expect("id").to_owned();
    cloud.wait_for("first boot", |c| c.boots() >= 1);
    let log = cloud.console();
    assert!(
        log.contains(&format!("GUEST-BOOT serial={uuid} product=OpenStack Nova")),
        "{log}"
    );
    // Plain networking forwards SSH from a host port QEMU itself bound (the
    // kernel's choice, read back over QMP): the port shown takes connections.
    let ssh = cloud.json(&["show", "vm"])["ssh"]
        .as_str()
        .expect("an SSH forward")
        .to_owned();
    assert!(
        std::net::TcpStream::connect(&ssh).is_ok(),
        "nothing listens on the SSH forward {ssh}"
    );

    is(&cloud.json(&["pause", "vm"]), "PAUSED", "paused", "paused");
    is(&cloud.json(&["show", "vm"]), "PAUSED", "paused", "paused");
    is(
        &cloud.json(&["unpause", "vm"]),
        "ACTIVE",
        "active",
        "running",
    );
    let t = cloud.last_tick();
    cloud.wait_for("ticks after unpause", |c| c.last_tick() > t);

    is(
        &cloud.json(&["reboot", "vm"]),
        "ACTIVE",
        "active",
        "running",
    );
    cloud.wait_for("boot after soft reboot", |c| c.boots() >= 2);
    let pid = cloud.json(&["show", "vm"])["pid"].as_i64().expect("pid");
    let hard = cloud.json(&["reboot", "--hard", "vm"]);
    is(&hard, "ACTIVE", "active", "running");
    assert_ne!(
        hard["pid"].as_i64(),
        Some(pid),
        "a hard reboot is a new QEMU"
    );
    cloud.wait_for("boot after hard reboot", |c| c.boots() >= 3);

    let stopped = cloud.json(&["stop", "--timeout", "2", "vm"]);
    is(&stopped, "SHUTOFF", "stopped", "shutdown");
    assert!(stopped["pid"].is_null());
    is(&cloud.json(&["start", "vm"]), "ACTIVE", "active", "running");
    cloud.wait_for("boot after start", |c| c.boots() >= 4);
    cloud.wait_for("a tick before suspend", |c| c.last_tick() >= 2);

    let before = cloud.last_tick();
    let suspended = cloud.json(&["suspend", "vm"]);
    is(&suspended, "SUSPENDED", "suspended", "shutdown");
    assert!(suspended["pid"].is_null());
    is(
        &cloud.json(&["resume", "vm"]),
        "ACTIVE",
        "active",
        "running",
    );
    cloud.wait_for("ticks continuing after resume", |c| {
        c.last_tick() > before + 1
    });
    assert_eq!(
        cloud.boots(),
        4,
        "resume continues the guest, it does not boot it"
    );

    let snap = cloud.json(&["image-create", "vm", "snap"]);
    assert_eq!(
        (
            snap["name"].as_str(),
            snap["has_kernel"].as_bool(),
            snap["format"].as_str()
        ),
        (Some("snap"), Some(true), Some("qcow2")),
        "{snap}"
    );
    let snap_id = snap["id"].as_str().expect("id").to_owned();
    assert_eq!(
        cloud.json(&["image-show", &snap_id])["checksum"],
        snap["checksum"]
    );
    let rebuilt = cloud.json(&["rebuild", "vm", "--image", "snap"]);
    is(&rebuilt, "ACTIVE", "active", "running");
    assert_eq!(rebuilt["image"].as_str(), Some(snap_id.as_str()));
    cloud.wait_for("boot after rebuild", |c| c.boots() >= 5);

    let out = cloud.run(&["image-delete", &snap_id]);
    assert!(!out.status.success(), "an image in use cannot be deleted");
    let pid = cloud.json(&["show", "vm"])["pid"].as_i64().expect("pid");
    cloud.ok(&["delete", "vm"]);
    assert_eq!(cloud.json(&["list"]), serde_json::json!([]));
    assert!(
        !compute_host::qemu::process::is_guest(pid as i32, &uuid),
        "delete leaves no process"
    );
    cloud.ok(&["image-delete", "snap"]);
    cloud.ok(&["image-delete", "busybox"]);
    if let Cloud::Shared { shared, agent } = &cloud {
        assert!(
            !agent.state.join("instances").join(&uuid).exists(),
            "the host's files are gone"
        );
        assert_eq!(shared.db.psql("SELECT COUNT(*) FROM image_chunks"), "0");
    }
}

#[test]
fn the_lifecycle_on_a_state_folder() {
    let dir = tempfile::tempdir().expect("tempdir");
    lifecycle(Cloud::StateFolder { dir });
}

#[test]
fn the_lifecycle_on_a_shared_database_through_a_host_agent() {
    let shared = Shared::new();
    let agent = shared.agent("h1", None);
    let up = Instant::now() + Duration::from_secs(120);
    while !shared.is_up("h1") {
        assert!(Instant::now() < up, "h1 never up:\n{}", agent.log());
        std::thread::sleep(Duration::from_millis(100));
    }
    lifecycle(Cloud::Shared { shared, agent });
}
