//! Network namespaces a test creates and deletes, and `metadata-server serve` inside
//! one. A guest whose QEMU runs in such a namespace reaches, through slirp's outbound
//! NAT, whatever listens there, e.g. a metadata server on 169.254.169.254:80 bound to
//! that guest's instance, and the SSH forward QEMU opens there is on no host port.
//! Processes started here die with the test process (`setpriv --pdeathsig KILL`).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().unwrap_or_else(|e| {
        panic!("ip not found: install it with 'apt-get install iproute2': {e}")
    });
    assert!(
        out.status.success(),
        "ip {} failed (the Debian guest tests need root): {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A network namespace for one guest (`e2d-<tag>-<pid>`), with `lo` up; deleted on
/// drop.
pub struct Netns {
    name: String,
}

impl Netns {
    pub fn create(tag: &str) -> Netns {
        let name = format!("e2d-{tag}-{}", std::process::id());
        let _ = Command::new("ip").args(["netns", "delete", &name]).output();
        ip(&["netns", "add", &name]);
        let ns = Netns { name };
        ip(&["-n", &ns.name, "link", "set", "lo", "up"]);
        ns
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// An address on the namespace's `lo`, e.g. `169.254.169.254/32`.
    pub fn add_loopback_address(&self, cidr: &str) {
        ip(&["-n", &self.name, "addr", "add", cidr, "dev", "lo"]);
    }

    /// `program` run inside the namespace, killed should the test process die.
    pub fn command(&self, program: &str) -> Command {
        in_netns(&self.name, program)
    }
}

/// `program` run inside the namespace named `netns`, killed should the test process
/// die.
pub fn in_netns(netns: &str, program: &str) -> Command {
    let mut c = Command::new("setpriv");
    c.args(["--pdeathsig", "KILL", "ip", "netns", "exec", netns, program]);
    c
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "delete", &self.name])
            .output();
    }
}

/// `metadata-server serve` inside a namespace; killed on drop.
pub struct MetadataServer {
    child: Child,
    log: PathBuf,
}

impl MetadataServer {
    /// Starts `bin serve ARGS --pid-file ...` in `netns` with its log in `dir` and
    /// waits until it listens (it writes its pid file then).
    pub fn serve(netns: &Netns, bin: &Path, dir: &Path, args: &[String]) -> MetadataServer {
        let log = dir.join("metadata-server.log");
        let pid_file = dir.join("metadata-server.pid");
        let out = std::fs::File::create(&log).expect("server log");
        let child = netns
            .command(bin.to_str().expect("UTF-8 path"))
            .arg("serve")
            .args(args)
            .arg("--pid-file")
            .arg(&pid_file)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(out.try_clone().expect("server log"))
            .stderr(out)
            .spawn()
            .unwrap_or_else(|e| panic!("{}: {e}", bin.display()));
        let mut server = MetadataServer { child, log };
        let start = Instant::now();
        while !pid_file.exists() {
            if let Ok(Some(status)) = server.child.try_wait() {
                panic!("metadata-server exited ({status}):\n{}", server.log());
            }
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "metadata-server did not listen within a minute:\n{}",
                server.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        server
    }

    /// Everything it logged so far (its access log among it).
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for MetadataServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
