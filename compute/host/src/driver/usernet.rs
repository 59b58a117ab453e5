//! User-mode networking with the metadata service: one network namespace per
//! instance (`cmpt-<uuid>`) holding its QEMU, with 169.254.169.254 on the
//! namespace's `lo`, and one relay process (`metadata-server relay`) that serves
//! that address by splicing each connection to the metadata server's unix socket
//! bound to the instance, and carries the host's SSH forward into the namespace.
//!
//! Why a namespace: libslirp refuses a `guestfwd` to an address outside the guest's
//! subnet, but its outbound NAT connects wherever the guest asks, in QEMU's own
//! namespace, where only this instance's relay listens. The host's network is never
//! touched: the namespace has no link to it.
//!
//! This module owns the namespace and the relay process; it never touches QEMU.

use crate::qemu::process;
use compute_flags::metadata_server::{RelayArgs, DEFAULT_METADATA_LISTEN};
use compute_io::tool::{ToolError, IP};
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

/// Prefix of compute's per-instance namespaces (`ip netns list` shows them).
pub const NETNS_PREFIX: &str = "cmpt-";
/// The metadata address guests use.
pub const METADATA_ADDR: &str = "169.254.169.254";
/// How long a new relay gets to bind both listeners.
pub const RELAY_START_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a relay gets to exit on SIGTERM before SIGKILL.
pub const RELAY_STOP_TIMEOUT: Duration = Duration::from_secs(5);
/// The port QEMU forwards to the guest's SSH, on the namespace's 127.0.0.1: the
/// namespace is the instance's alone, so the port is fixed; the relay's host side
/// takes whatever port the kernel gives it.
pub const SSH_FORWARD_PORT: u16 = 2222;
/// A unix socket path must fit `sockaddr_un`.
pub const MAX_SOCKET_PATH: usize = 107;

#[derive(Debug, thiserror::Error)]
pub enum UserNetError {
    #[error("`ip {args}` failed: {stderr} (user networking with metadata needs root for network namespaces; `--network plain` needs none)")]
    Ip { args: String, stderr: String },
    #[error(transparent)]
    Tool(#[from] ToolError),
    #[error("cannot run {program}")]
    Spawn {
        program: String,
        source: std::io::Error,
    },
    #[error("instance id {0:?} is not a uuid")]
    NotAUuid(String),
    #[error("the relay of {uuid} did not start: {log}")]
    RelayFailed { uuid: String, log: String },
    #[error("socket path {0} is longer than {MAX_SOCKET_PATH} bytes; use a shorter --state-dir")]
    SocketPathTooLong(PathBuf),
    #[error(transparent)]
    Process(#[from] process::ProcessError),
}

/// The namespace of an instance.
pub fn netns_name(uuid: &str) -> String {
    format!("{NETNS_PREFIX}{uuid}")
}

/// Where `ip netns` keeps it (what `setns` and `nsenter` open).
pub fn netns_path(uuid: &str) -> PathBuf {
    Path::new("/run/netns").join(netns_name(uuid))
}

fn ip(args: &[&str]) -> Result<(), UserNetError> {
    let out = IP
        .command()
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| IP.error(e))?;
    if out.status.success() {
        return Ok(());
    }
    Err(UserNetError::Ip {
        args: args.join(" "),
        stderr: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
    })
}

/// Makes the instance's namespace afresh: `lo` up with 169.254.169.254/32.
pub fn create_netns(uuid: &str) -> Result<(), UserNetError> {
    let name = netns_name(uuid);
    if netns_path(uuid).exists() {
        delete_netns(uuid)?;
    }
    ip(&["netns", "add", &name])?;
    let configured = ip(&["-n", &name, "link", "set", "lo", "up"]).and_then(|()| {
        ip(&[
            "-n",
            &name,
            "addr",
            "add",
            &format!("{METADATA_ADDR}/32"),
            "dev",
            "lo",
        ])
    });
    if configured.is_err() {
        let _ = delete_netns(uuid);
    }
    configured
}

/// Removes the namespace (nothing to do when it is gone already).
pub fn delete_netns(uuid: &str) -> Result<(), UserNetError> {
    if !netns_path(uuid).exists() {
        return Ok(());
    }
    ip(&["netns", "delete", &netns_name(uuid)])
}

/// The argv prefix that runs a program inside the instance's namespace.
pub fn enter_prefix(uuid: &str) -> Vec<String> {
    vec![
        "nsenter".into(),
        format!("--net={}", netns_path(uuid).display()),
        "--".into(),
    ]
}

/// What one relay does.
pub struct RelaySpec<'a> {
    pub binary: &'a Path,
    pub uuid: &'a str,
    /// Forward a host port (the kernel's choice) to QEMU's [`SSH_FORWARD_PORT`].
    pub ssh: bool,
    pub metadata_socket: &'a Path,
    pub pid_file: &'a Path,
    /// Where the relay writes the host port it bound for SSH.
    pub ssh_port_file: &'a Path,
    pub log: &'a Path,
}

/// A relay that is up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Relay {
    pub pid: i32,
    /// The host port on 127.0.0.1 that reaches the guest's SSH.
    pub ssh_port: Option<u16>,
}

/// Checks that a unix socket path fits.
pub fn check_socket_path(path: &Path) -> Result<(), UserNetError> {
    if path.as_os_str().len() > MAX_SOCKET_PATH {
        return Err(UserNetError::SocketPathTooLong(path.to_owned()));
    }
    Ok(())
}

/// Starts the relay and waits until it listens (its pid file appears); the SSH
/// port is the one the relay bound, so no other process can have taken it between
/// a choice and a bind.
pub fn start_relay(spec: &RelaySpec<'_>) -> Result<Relay, UserNetError> {
    check_socket_path(spec.metadata_socket)?;
    let _ = std::fs::remove_file(spec.pid_file);
    let _ = std::fs::remove_file(spec.ssh_port_file);
    let log = std::fs::File::create(spec.log).map_err(|source| UserNetError::Spawn {
        program: spec.log.display().to_string(),
        source,
    })?;
    let instance = uuid::Uuid::try_parse(spec.uuid)
        .map_err(|_| UserNetError::NotAUuid(spec.uuid.to_owned()))?;
    let args = RelayArgs {
        instance,
        netns: netns_path(spec.uuid),
        ssh_listen: spec
            .ssh
            .then_some(SocketAddr::from((Ipv4Addr::LOCALHOST, 0))),
        ssh_target: spec
            .ssh
            .then_some(SocketAddr::from((Ipv4Addr::LOCALHOST, SSH_FORWARD_PORT))),
        ssh_port_file: spec.ssh.then(|| spec.ssh_port_file.to_owned()),
        metadata_listen: DEFAULT_METADATA_LISTEN,
        metadata_socket: spec.metadata_socket.to_owned(),
        pid_file: spec.pid_file.to_owned(),
    };
    // `setsid --fork`: the relay is init's child, not ours, so that a long-lived
    // caller (`compute api`) is left no zombie when it is stopped.
    let mut child = compute_io::tool::SETSID
        .command()
        .arg("--fork")
        .arg(spec.binary)
        .args(args.to_args())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .map_err(|source| UserNetError::Spawn {
            program: spec.binary.display().to_string(),
            source,
        })?;
    let deadline = Instant::now() + RELAY_START_TIMEOUT;
    loop {
        if let Ok(pid) = process::read_pidfile(spec.pid_file) {
            // setsid itself exits as soon as it has forked.
            let _ = child.wait();
            let ssh_port = match spec.ssh {
                false => None,
                // Written before the pid file.
                true => Some(read_port(spec.ssh_port_file).ok_or_else(|| {
                    UserNetError::RelayFailed {
                        uuid: spec.uuid.to_owned(),
                        log: format!("no SSH port in {}", spec.ssh_port_file.display()),
                    }
                })?),
            };
            return Ok(Relay { pid, ssh_port });
        }
        let failed = matches!(child.try_wait(), Ok(Some(s)) if !s.success());
        if failed || Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            let log = std::fs::read_to_string(spec.log).unwrap_or_default();
            return Err(UserNetError::RelayFailed {
                uuid: spec.uuid.to_owned(),
                log: log
                    .chars()
                    .rev()
                    .take(2000)
                    .collect::<Vec<_>>()
                    .into_iter()
                    .rev()
                    .collect(),
            });
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn read_port(path: &Path) -> Option<u16> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// Ends the instance's relay (SIGTERM, then SIGKILL) and removes its pid file.
pub fn stop_relay(uuid: &str, pid_file: &Path) -> Result<(), UserNetError> {
    if let Ok(pid) = process::read_pidfile(pid_file) {
        process::terminate(pid, uuid, RELAY_STOP_TIMEOUT)?;
    }
    let _ = std::fs::remove_file(pid_file);
    Ok(())
}

/// True when the instance's relay is running.
pub fn relay_alive(uuid: &str, pid_file: &Path) -> bool {
    process::read_pidfile(pid_file).is_ok_and(|pid| process::is_guest(pid, uuid))
}
