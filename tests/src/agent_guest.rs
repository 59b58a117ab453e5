//! The guest-agent guest: Debian's kernel and a busybox-static initramfs carrying the
//! static `guest-agent`, the modules that let it read a config drive on a QEMU IDE
//! CD-ROM (ata_piix, sr_mod) and drive the virtio NIC, and an `/init` that runs the
//! agent against the real root (the initramfs itself), then prints what the guest
//! learned between [`BEGIN`] and [`END`] on the serial console. With
//! [`POWEROFF_FLAG`] on the kernel command line the guest then powers off (tests);
//! without it the guest stays up, with an SSH server when the image has one (demo).
//! Used by the e2e tests and by `examples/guest-image.rs` (the demo's image).

use crate::console;
use crate::guest::{self, GuestError, Kernel};
use crate::initramfs::{Initramfs, InitramfsError};
use base64::Engine;
use compute_io::tool::{Tool, ToolError, LDD};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

#[derive(Debug, thiserror::Error)]
pub enum AgentGuestError {
    #[error("cannot read the guest-agent {path}")]
    Agent {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "{path} is dynamically linked; build it with RUSTFLAGS='-C target-feature=+crt-static'"
    )]
    NotStatic { path: PathBuf },
    #[error(transparent)]
    Tool(#[from] ToolError),
    #[error("ldd {path}: {stderr}")]
    Ldd { path: PathBuf, stderr: String },
    #[error("cannot read {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Guest(#[from] GuestError),
    #[error(transparent)]
    Initramfs(#[from] InitramfsError),
    #[error("the guest printed no exit code for the agent")]
    NoExitCode,
    #[error("the guest's {what} is not JSON")]
    Json {
        what: &'static str,
        #[source]
        source: serde_json::Error,
    },
    #[error("the guest's {path} is not base64")]
    Base64 {
        path: String,
        #[source]
        source: base64::DecodeError,
    },
}

/// The SSH server the demo image carries.
pub const DROPBEAR: Tool = Tool::new("dropbear", "dropbear-bin");

pub const BEGIN: &str = "===GUEST-AGENT-BEGIN===";
pub const END: &str = "===GUEST-AGENT-END===";
/// Printed once the SSH server listens (images with one, without [`POWEROFF_FLAG`]).
pub const SSH_READY: &str = "GUEST-SSH-READY";
/// On the kernel command line: power off after printing.
pub const POWEROFF_FLAG: &str = "guest.poweroff";
/// The command line for tests; the demo drops [`POWEROFF_FLAG`].
pub const TEST_CMDLINE: &str = "console=ttyS0 quiet loglevel=3 panic=-1 guest.poweroff";
pub const DEMO_CMDLINE: &str = "console=ttyS0 quiet loglevel=3 panic=-1";

/// ata_piix + sr_mod: compute attaches the drive as an IDE CD-ROM on the `pc`
/// machine; the agent reads the block device without mounting it, so no isofs.
/// virtio_pci + virtio_net: the NIC the agent configures by MAC.
pub const MODULES: &[&str] = &["ata_piix", "sr_mod", "virtio_pci", "virtio_net"];

const BODY: &str = r#"ip link set lo up
/bin/guest-agent run --source config-drive --device-wait 120 --format json >/run/report.json 2>/run/agent.log
code=$?
/bin/guest-agent show --source config-drive --device-wait 120 --format json >/run/show.json 2>>/run/agent.log
echo "===GUEST-AGENT-BEGIN==="
echo "=== exit"; echo "$code"
echo "=== report"; cat /run/report.json
echo "=== show"; cat /run/show.json
echo "=== stderr"; cat /run/agent.log
echo "=== hostname"; hostname
echo "=== link"; ip -o link
echo "=== addr"; ip -o addr
echo "=== route"; ip route
# The metadata service, as an unmodified client sees it (compute's user networking
# relays 169.254.169.254 to the server; without it these simply fail and print nothing).
# Raw HTTP through nc -w: bounded where nothing answers (busybox wget -T crashes here).
for p in /openstack /openstack/latest/meta_data.json /latest/meta-data/ /latest/meta-data/instance-id; do
    printf 'GET %s HTTP/1.0\r\nHost: 169.254.169.254\r\n\r\n' "$p" | nc -w 5 169.254.169.254 80 > /run/raw 2>/dev/null
    if grep -q '^HTTP/1.[01] 200' /run/raw; then
        sed '1,/^\r$/d' /run/raw > /run/md; echo "=== metadata $p"; base64 < /run/md
    fi
done
for f in $( (echo /etc/hostname; echo /root/.ssh/authorized_keys; grep -o 'wrote /[^ ]*' /run/report.json | cut -c7-) | sort -u); do
    [ -f "$f" ] && [ "$f" != /etc/shadow ] || continue
    echo "=== file $f"; base64 < "$f"
done
echo "===GUEST-AGENT-END==="
grep -qw guest.poweroff /proc/cmdline && poweroff -f
if [ -x /bin/dropbear ]; then
    mkdir -p /dev/pts /etc/dropbear && mount -t devpts devpts /dev/pts
    dropbear -R -E -p 22 && echo "GUEST-SSH-READY"
fi
while true; do sleep 3600; done
"#;

/// The files of the agent guest, ready for `compute image-import`.
pub struct AgentImage {
    pub kernel: PathBuf,
    pub initramfs: PathBuf,
    pub disk: PathBuf,
}

/// Builds the image in `dir` around the static `agent` binary; `ssh_server` (e.g.
/// dropbear) is copied in with the shared libraries `ldd` lists for it.
pub fn build(
    dir: &Path,
    agent: &Path,
    ssh_server: Option<&Path>,
) -> Result<AgentImage, AgentGuestError> {
    let k: Kernel = guest::kernel()?;
    let agent_bytes = std::fs::read(agent).map_err(|source| AgentGuestError::Agent {
        path: agent.to_owned(),
        source,
    })?;
    if !is_static(&agent_bytes) {
        return Err(AgentGuestError::NotStatic {
            path: agent.to_owned(),
        });
    }
    let mut img = Initramfs::new(BODY)?;
    img.file("bin/guest-agent", 0o755, agent_bytes)
        .file(
            "etc/passwd",
            0o644,
            b"root:x:0:0:root:/root:/bin/sh\n".to_vec(),
        )
        .file("etc/group", 0o644, b"root:x:0:\n".to_vec())
        .file("etc/shells", 0o644, b"/bin/sh\n".to_vec())
        .modules(&k.version, MODULES)?;
    if let Some(server) = ssh_server {
        let server = DROPBEAR.locate_at(server)?;
        add_dynamic_binary(&mut img, &server, "bin/dropbear")?;
    }
    let initramfs = dir.join("initramfs.cpio");
    img.write(&initramfs)?;
    let disk = dir.join("root.qcow2");
    guest::blank_disk(&disk, "64M")?;
    Ok(AgentImage {
        kernel: k.image,
        initramfs,
        disk,
    })
}

/// A statically linked ELF has no program interpreter (`PT_INTERP`, type 3).
fn is_static(elf: &[u8]) -> bool {
    let u16_at = |o: usize| elf.get(o..o + 2).map(|b| u16::from_le_bytes([b[0], b[1]]));
    let u64_at = |o: usize| {
        elf.get(o..o + 8)
            .and_then(|b| b.try_into().ok())
            .map(u64::from_le_bytes)
    };
    if elf.get(..5) != Some(b"\x7fELF\x02") {
        return false;
    }
    let (Some(phoff), Some(phentsize), Some(phnum)) = (u64_at(0x20), u16_at(0x36), u16_at(0x38))
    else {
        return false;
    };
    (0..usize::from(phnum)).all(|i| {
        let at = phoff as usize + i * usize::from(phentsize);
        elf.get(at..at + 4) != Some(&3u32.to_le_bytes()[..])
    })
}

/// Copies a dynamically linked binary to `dest` and its libraries (from `ldd`) to
/// the same absolute paths inside the image.
fn add_dynamic_binary(img: &mut Initramfs, bin: &Path, dest: &str) -> Result<(), AgentGuestError> {
    let out = LDD.command().arg(bin).output().map_err(|e| LDD.error(e))?;
    if !out.status.success() {
        return Err(AgentGuestError::Ldd {
            path: bin.to_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        });
    }
    let read = |path: &Path| {
        std::fs::read(path).map_err(|source| AgentGuestError::Read {
            path: path.to_owned(),
            source,
        })
    };
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        // "libz.so.1 => /lib/x86_64-linux-gnu/libz.so.1 (0x...)" or "/lib64/ld-linux... (0x...)"
        let lib = line
            .split("=>")
            .last()
            .and_then(|p| p.split_whitespace().next())
            .filter(|p| p.starts_with('/'));
        if let Some(lib) = lib {
            img.file(lib, 0o755, read(Path::new(lib))?);
        }
    }
    img.file(dest, 0o755, read(bin)?);
    Ok(())
}

/// The static guest-agent, built with `cargo build --profile guest -p guest-agent`
/// (small: the workspace's `guest` profile) and `crt-static` (the guest has no libc). `GUEST_AGENT_STATIC` names a prebuilt one.
/// Otherwise it is built into its own target folder, `target/guest-static` (under
/// `CARGO_TARGET_DIR` when set; the demo uses the same folder): other
/// RUSTFLAGS in the main target folder would rebuild every crate there for each
/// switch, and the `cargo test` that runs us may hold that folder's lock.
pub fn static_agent() -> PathBuf {
    // Once per test binary: its tests run in parallel.
    static AGENT: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    AGENT.get_or_init(build_static_agent).clone()
}

fn build_static_agent() -> PathBuf {
    if let Some(p) = std::env::var_os("GUEST_AGENT_STATIC") {
        return PathBuf::from(p);
    }
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_owned();
    let target_dir = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace.join("target"))
        .join("guest-static");
    let triple = "x86_64-unknown-linux-gnu";
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = Command::new(cargo)
        .current_dir(&workspace)
        .args([
            "build",
            "--profile",
            "guest",
            "--locked",
            "-p",
            "guest-agent",
        ])
        .args(["--target", triple, "--target-dir"])
        .arg(&target_dir)
        .env("RUSTFLAGS", "-C target-feature=+crt-static")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("CARGO_BUILD_RUSTFLAGS")
        .status()
        .expect("cargo build of the static guest-agent");
    assert!(
        status.success(),
        "cargo build of the static guest-agent failed"
    );
    target_dir.join(triple).join("guest/guest-agent")
}

/// What the guest printed between the markers.
#[derive(Debug)]
pub struct AgentOutput {
    /// The agent's exit code.
    pub exit: i32,
    /// `guest-agent run --format json`.
    pub report: serde_json::Value,
    /// `guest-agent show --format json`: what it found on the drive.
    pub show: serde_json::Value,
    pub stderr: Vec<String>,
    pub hostname: String,
    /// `ip -o link`, `ip -o addr`, `ip route`, one entry a line.
    pub links: Vec<String>,
    pub addrs: Vec<String>,
    pub routes: Vec<String>,
    /// Files the agent wrote (and the hostname and root's authorized_keys), by path.
    pub files: BTreeMap<String, Vec<u8>>,
    /// What `wget http://169.254.169.254<path>` answered, by path (only paths that did).
    pub metadata: BTreeMap<String, Vec<u8>>,
}

/// Parses the console log; None until the end marker is there, an error when what
/// the guest printed between the markers is malformed.
pub fn parse(console: &str) -> Result<Option<AgentOutput>, AgentGuestError> {
    let Some(mut s) = console::sections(console, BEGIN, END) else {
        return Ok(None);
    };
    let mut take = |name: &str| s.remove(name).unwrap_or_default();
    let json = |lines: Vec<String>, what| -> Result<serde_json::Value, AgentGuestError> {
        serde_json::from_str(&lines.join("\n"))
            .map_err(|source| AgentGuestError::Json { what, source })
    };
    let exit = take("exit")
        .first()
        .and_then(|c| c.trim().parse().ok())
        .ok_or(AgentGuestError::NoExitCode)?;
    let report = json(take("report"), "report")?;
    let show = json(take("show"), "show output")?;
    let out = AgentOutput {
        exit,
        report,
        show,
        stderr: take("stderr"),
        hostname: take("hostname").join(""),
        links: take("link"),
        addrs: take("addr"),
        routes: take("route"),
        files: BTreeMap::new(),
        metadata: BTreeMap::new(),
    };
    let decoded = |prefix: &str| -> Result<BTreeMap<String, Vec<u8>>, AgentGuestError> {
        s.iter()
            .filter_map(|(name, lines)| {
                let path = name.strip_prefix(prefix)?.to_owned();
                Some(
                    base64::engine::general_purpose::STANDARD
                        .decode(lines.concat())
                        .map(|bytes| (path.clone(), bytes))
                        .map_err(|source| AgentGuestError::Base64 { path, source }),
                )
            })
            .collect()
    };
    Ok(Some(AgentOutput {
        files: decoded("file ")?,
        metadata: decoded("metadata ")?,
        ..out
    }))
}

impl AgentOutput {
    /// The outcome (`ok`, `unchanged`, `skipped`, `failed`) of one step of the report.
    pub fn outcome(&self, step: &str) -> Option<&str> {
        self.report["steps"]
            .as_array()?
            .iter()
            .find(|s| s["step"] == step)?["outcome"]
            .as_str()
    }
}

/// A readable account of the output: what came from where, each step, the network,
/// and the files (text shown as is, binary as a size).
pub fn summary(out: &AgentOutput) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "source:      {}",
        out.report["source"].as_str().unwrap_or("?")
    );
    let _ = writeln!(
        s,
        "instance id: {}",
        out.report["instance_id"].as_str().unwrap_or("?")
    );
    let _ = writeln!(s, "agent exit:  {}", out.exit);
    let _ = writeln!(s, "hostname:    {}", out.hostname);
    if let Some(meta) = out.show["meta_data"]["meta"].as_object() {
        for (k, v) in meta {
            let _ = writeln!(s, "meta:        {k}={}", v.as_str().unwrap_or_default());
        }
    }
    let _ = writeln!(s, "\nsteps:");
    for step in out.report["steps"].as_array().into_iter().flatten() {
        let _ = writeln!(
            s,
            "  {:<12} {}",
            step["step"].as_str().unwrap_or("?"),
            step["outcome"].as_str().unwrap_or("?")
        );
        for d in step["details"].as_array().into_iter().flatten() {
            let _ = writeln!(s, "               {}", d.as_str().unwrap_or_default());
        }
    }
    let _ = writeln!(s, "\nip -o addr:");
    out.addrs.iter().for_each(|l| {
        let _ = writeln!(s, "  {l}");
    });
    let _ = writeln!(s, "ip route:");
    out.routes.iter().for_each(|l| {
        let _ = writeln!(s, "  {l}");
    });
    if !out.metadata.is_empty() {
        let _ = writeln!(s, "\nmetadata service, as the guest reached it:");
        for (path, bytes) in &out.metadata {
            let text = String::from_utf8_lossy(bytes);
            let shown: String = text.chars().take(160).collect();
            let more = if text.chars().count() > 160 {
                " ..."
            } else {
                ""
            };
            let _ = writeln!(
                s,
                "  GET http://169.254.169.254{path}\n    {}{more}",
                shown.replace('\n', "\n    ")
            );
        }
    }
    for (path, bytes) in &out.files {
        let _ = writeln!(s, "\n{path}:");
        match std::str::from_utf8(bytes) {
            Ok(text) => text.lines().for_each(|l| {
                let _ = writeln!(s, "  {l}");
            }),
            Err(_) => {
                let _ = writeln!(s, "  ({} bytes, not text)", bytes.len());
            }
        }
    }
    s
}
