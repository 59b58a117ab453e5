//! The driver: carries out lifecycle actions on one host, combining the store, the
//! lifecycle state machine and the QEMU pieces. Every action takes the instance's
//! lock, checks the state machine, records the task, does the work, and records the
//! outcome (a fault on failure). The CLI is a thin layer over [`Host`].

pub mod antispoof;
mod boot;
pub mod bridge;
pub mod capacity;
mod catalog;
pub mod control;
pub mod images;
pub mod layout;
pub mod lock;
pub mod metaserver;
mod power;
mod reconcile;
pub mod usernet;

pub use boot::{queue_boot, BootRequest};

use crate::drive_builder::{DriveBuildError, DriveBuilder};
use crate::qemu::accel::{self, AccelChoice};
use crate::qemu::command::{ConfigDrive, Disk, DiskFormat, KernelBoot, Nic, TapNet, UserNet};
use crate::qemu::img::ImgError;
use crate::qemu::process::{self, ProcessError};
use crate::qemu::qmp::{Qmp, QmpError};
use crate::qemu::{Accel, QemuCommand};
use compute::error_chain;
use compute::lifecycle::{Action, LifecycleError, State};
use compute::Settings;
use compute_io::tool;
use compute_store::{
    Fault, FaultChange, HostSpec, InstanceRecord, Location, SqliteStore, Store, StoreError,
};
use layout::Layout;
use lock::LockError;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tracing::instrument;

/// How long QEMU gets to bring up its QMP socket and answer.
pub const QMP_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a killed QEMU gets to disappear.
pub const KILL_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum DriverError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Lifecycle(#[from] LifecycleError),
    #[error(transparent)]
    Lock(#[from] LockError),
    #[error(transparent)]
    Layout(#[from] layout::LayoutError),
    #[error(transparent)]
    Qmp(#[from] QmpError),
    #[error(transparent)]
    Process(#[from] ProcessError),
    #[error(transparent)]
    Img(#[from] ImgError),
    #[error(transparent)]
    Drive(#[from] DriveBuildError),
    #[error(transparent)]
    KeyGen(#[from] crate::keygen::KeyGenError),
    #[error(transparent)]
    Keypair(#[from] compute::keypair::KeypairError),
    #[error(transparent)]
    Flavor(#[from] compute::flavor::FlavorError),
    #[error(transparent)]
    UserNet(#[from] usernet::UserNetError),
    #[error(transparent)]
    Bridge(#[from] bridge::BridgeError),
    #[error(transparent)]
    AntiSpoof(#[from] antispoof::AntiSpoofError),
    #[error(transparent)]
    MetaServer(#[from] metaserver::MetaServerError),
    #[error(transparent)]
    Tool(#[from] tool::ToolError),
    #[error(transparent)]
    Atomic(#[from] compute_io::atomic::AtomicError),
    #[error("{path}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0}")]
    Invalid(String),
    #[error("several hosts share this database ({0}): say which one this is")]
    WhichHost(String),
    #[error("image {id}: the {part} fetched from the database has SHA-256 {got}, not the recorded {expected}; it was not kept")]
    ImageChecksum {
        id: String,
        part: &'static str,
        expected: String,
        got: String,
    },
    #[error("QEMU reports the guest {status}, expected {expected}")]
    UnexpectedStatus {
        status: String,
        expected: &'static str,
    },
}

pub(crate) fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> DriverError + '_ {
    move |source| DriverError::Io {
        path: path.to_owned(),
        source,
    }
}

/// Host-wide settings of the driver.
pub struct HostConfig {
    pub state_dir: PathBuf,
    pub qemu: PathBuf,
    pub accel: AccelChoice,
    pub cidr: ipnetwork::Ipv4Network,
    pub settings: Settings,
    pub drive_builder: Box<dyn DriveBuilder>,
    /// The compute host this process acts as, by name: its guests run here. `None`:
    /// the store's only host, else this machine's name (a state folder's first use).
    pub host_name: Option<String>,
}

/// How guests are networked (and reach 169.254.169.254).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum NetworkMode {
    /// QEMU user networking inside a per-instance network namespace, with the
    /// metadata service at 169.254.169.254 through a relay (needs root).
    #[default]
    User,
    /// QEMU user networking alone: no metadata service, no privileges.
    Plain,
    /// A Linux bridge with one tap per instance, 169.254.169.254 on the bridge, the
    /// metadata server knowing guests by their fixed IP (needs root).
    Bridge,
}

/// Networking of a host: the mode, and the `metadata-server` binary that serves
/// metadata and relays connections in `user` mode.
#[derive(Debug, Clone)]
pub struct Networking {
    pub mode: NetworkMode,
    pub metadata_server: PathBuf,
    /// The bridge of `bridge` mode ([`bridge::DEFAULT_BRIDGE`] unless told).
    pub bridge: String,
}

impl Networking {
    /// No metadata service (what [`Host::open`] uses).
    pub fn plain() -> Networking {
        Networking {
            mode: NetworkMode::Plain,
            metadata_server: PathBuf::new(),
            bridge: bridge::DEFAULT_BRIDGE.into(),
        }
    }
}

pub struct Host {
    /// The compute host this is (its name in the store).
    pub(crate) name: String,
    pub(crate) layout: Layout,
    pub(crate) networking: Networking,
    pub(crate) store: Box<dyn Store>,
    /// Where `store` is: the managed metadata server reads the same records.
    pub(crate) location: Location,
    pub(crate) qemu: PathBuf,
    accel_choice: AccelChoice,
    accel: Option<Accel>,
    pub(crate) settings: Settings,
    pub(crate) drive_builder: Box<dyn DriveBuilder>,
}

/// The current time, RFC 3339 (the clock is read only here).
pub fn now() -> String {
    time::OffsetDateTime::now_utc()
        .replace_nanosecond(0)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

pub(crate) fn random_bytes<const N: usize>() -> Result<[u8; N], DriverError> {
    use std::io::Read;
    let mut buf = [0u8; N];
    let path = Path::new("/dev/urandom");
    std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut buf))
        .map_err(io_err(path))?;
    Ok(buf)
}

impl Host {
    /// Opens the state folder (creating it), then reconciles the database with the
    /// QEMU processes actually running. Guests get plain user networking (no
    /// metadata service); see [`Host::open_networked`].
    pub fn open(config: HostConfig) -> Result<Host, DriverError> {
        Host::open_networked(config, Networking::plain())
    }

    /// [`Host::open`] with the given networking (the CLI's `--network`), over the
    /// SQLite store of the state folder.
    pub fn open_networked(config: HostConfig, networking: Networking) -> Result<Host, DriverError> {
        let layout = Layout::new(&config.state_dir);
        layout.create()?;
        let store = SqliteStore::open(layout.root(), config.cidr)?;
        let location = Location::StateDir(layout.root().to_owned());
        Host::with_store(config, networking, Box::new(store), location)
    }

    /// [`Host::open_networked`] over the given store (another backend than the state
    /// folder's SQLite file), found at `location` (the metadata server this host
    /// runs follows it there); `config.cidr` is then the store's business.
    #[instrument(skip_all, fields(state_dir = %config.state_dir.display()))]
    pub fn with_store(
        config: HostConfig,
        networking: Networking,
        store: Box<dyn Store>,
        location: Location,
    ) -> Result<Host, DriverError> {
        let layout = Layout::new(&config.state_dir);
        layout.create()?;
        let name = match config.host_name {
            Some(n) => n,
            None => {
                let hosts = store.hosts()?;
                match &hosts[..] {
                    [] => capacity::machine_name().unwrap_or_else(|| "localhost".into()),
                    [only] => only.name.clone(),
                    many => {
                        let names: Vec<&str> = many.iter().map(|h| h.name.as_str()).collect();
                        return Err(DriverError::WhichHost(names.join(", ")));
                    }
                }
            }
        };
        // Opening is a heartbeat: this process is the host's agent while it runs.
        store.register_host(&HostSpec {
            name: name.clone(),
            capacity: capacity::detect(layout.root()),
            ratios: None,
        })?;
        let mut host = Host {
            name,
            layout,
            networking,
            store,
            location,
            qemu: config.qemu,
            accel_choice: config.accel,
            accel: None,
            settings: config.settings,
            drive_builder: config.drive_builder,
        };
        host.reconcile()?;
        Ok(host)
    }

    pub fn store(&self) -> &dyn Store {
        self.store.as_ref()
    }

    /// The compute host this is.
    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn store_mut(&mut self) -> &mut dyn Store {
        self.store.as_mut()
    }

    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// The accelerator, probed at most once per command (and cached per host boot).
    pub(crate) fn accel(&mut self) -> Accel {
        if let Some(a) = self.accel {
            return a;
        }
        let a = accel::resolve(self.accel_choice, &self.qemu, &self.layout.accel_cache());
        self.accel = Some(a);
        a
    }

    /// The QEMU description of an instance from its record.
    pub(crate) fn command_for(
        &mut self,
        rec: &InstanceRecord,
        incoming: bool,
    ) -> Result<QemuCommand, DriverError> {
        let p = self.layout.instance(&rec.uuid);
        let image = self.store.image(&rec.image_id)?;
        self.local_image(&image)?;
        let kernel = image.has_kernel.then(|| KernelBoot {
            kernel: self.layout.image_kernel(&image.id),
            ramdisk: image
                .has_ramdisk
                .then(|| self.layout.image_ramdisk(&image.id)),
            cmdline: image.cmdline.clone(),
        });
        let mut disks = vec![Disk {
            path: p.root_disk(),
            format: DiskFormat::Qcow2,
        }];
        for extra in [p.ephemeral(), p.swap()] {
            if extra.exists() {
                disks.push(Disk {
                    path: extra,
                    format: DiskFormat::Qcow2,
                });
            }
        }
        let config_drive = p.config_drive().exists().then(|| ConfigDrive {
            path: p.config_drive(),
            medium: crate::qemu::command::DriveMedium::Cdrom,
        });
        let subnet = self.store.subnet();
        let uuid =
            uuid::Uuid::parse_str(&rec.uuid).map_err(|e| DriverError::Invalid(e.to_string()))?;
        let hostname = compute::Instance::from_json(rec.document.as_bytes())
            .map_err(|e| DriverError::Invalid(format!("stored document of {}: {e}", rec.uuid)))?
            .hostname()
            .to_owned();
        Ok(QemuCommand {
            binary: self.qemu.clone(),
            name: rec.name.clone(),
            uuid,
            accel: self.accel(),
            vcpus: rec.flavor.vcpus,
            memory_mb: rec.flavor.ram_mb,
            kernel,
            disks,
            config_drive,
            net: Some(match self.networking.mode {
                NetworkMode::Bridge => Nic::Tap(TapNet {
                    ifname: bridge::tap_name(&rec.uuid),
                    mac: rec.mac,
                }),
                NetworkMode::User | NetworkMode::Plain => Nic::User(UserNet {
                    cidr: subnet.cidr,
                    gateway: subnet.gateway(),
                    dns: subnet.dns(),
                    fixed_ip: rec.fixed_ip,
                    mac: rec.mac,
                    hostname,
                    ssh_port: Some(match self.networking.mode {
                        // The relay carries a host port to this one in the namespace.
                        NetworkMode::User => usernet::SSH_FORWARD_PORT,
                        // On the host itself: the kernel chooses, QMP tells.
                        _ => 0,
                    }),
                }),
            }),
            console_log: p.console_log(),
            qmp_socket: p.qmp(),
            pidfile: p.pidfile(),
            incoming: incoming.then(|| p.saved_state()),
        })
    }

    /// Checks that the programs starting a guest needs are there, before anything
    /// is made: QEMU (run through `nsenter` in user mode, which would report a missing
    /// QEMU only by its exit status; and probed for KVM, which would take a missing
    /// one for a broken KVM), and what this networking mode runs.
    pub(crate) fn check_tools(&self) -> Result<(), DriverError> {
        tool::QEMU_SYSTEM.locate_at(&self.qemu)?;
        match self.networking.mode {
            NetworkMode::Plain => {}
            NetworkMode::User => {
                tool::IP.locate()?;
                tool::NSENTER.locate()?;
                tool::SETSID.locate()?;
                metaserver::locate(&self.networking.metadata_server)?;
            }
            NetworkMode::Bridge => {
                tool::NFT.locate()?;
                tool::SETSID.locate()?;
                metaserver::locate(&self.networking.metadata_server)?;
            }
        }
        Ok(())
    }

    /// Starts QEMU for the instance and waits until QMP answers; records the pid.
    pub(crate) fn start_qemu(
        &mut self,
        rec: &InstanceRecord,
        incoming: bool,
    ) -> Result<i32, DriverError> {
        self.check_tools()?;
        let cmd = self.command_for(rec, incoming)?;
        let p = self.layout.instance(&rec.uuid);
        let _ = std::fs::remove_file(p.pidfile());
        let _ = std::fs::remove_file(p.qmp());
        let mut argv = cmd
            .argv()
            .map_err(|e| DriverError::Invalid(e.to_string()))?;
        let ssh = cmd.net.as_ref().and_then(Nic::ssh_port).is_some();
        // The host port reaching the guest's SSH: the relay's in user mode (known
        // before QEMU starts), QEMU's own in plain mode (known once QMP answers).
        let mut ssh_port = None;
        match self.networking.mode {
            NetworkMode::User => {
                ssh_port = self.wire_user_net(rec, ssh)?;
                let mut prefixed = usernet::enter_prefix(&rec.uuid);
                prefixed.append(&mut argv);
                argv = prefixed;
            }
            NetworkMode::Bridge => self.wire_bridge()?,
            NetworkMode::Plain => {}
        }
        let pid = process::spawn_daemon(&argv, &p.pidfile())?;
        tracing::info!(uuid = rec.uuid, pid, accel = ?cmd.accel, "QEMU started");
        self.store.set_runtime(&rec.uuid, Some(pid), ssh_port)?;
        if self.networking.mode == NetworkMode::Bridge {
            // QEMU made the tap before it daemonized; it may send only as itself before
            // it joins the bridge.
            let ports = self.bridge_ports(None)?;
            antispoof::apply(&antispoof::ruleset(&self.networking.bridge, &ports))?;
            bridge::attach(&bridge::tap_name(&rec.uuid), &self.networking.bridge)?;
        }
        let mut qmp = Qmp::connect(&p.qmp(), QMP_TIMEOUT)?;
        if ssh && self.networking.mode == NetworkMode::Plain {
            let port = qmp.host_forward_port()?;
            self.store.set_runtime(&rec.uuid, Some(pid), Some(port))?;
        }
        let status = qmp.query_status()?;
        // A guest saved while paused comes back paused; resume continues it.
        let ok = status.running
            || (incoming && matches!(status.status.as_str(), "inmigrate" | "paused"));
        if !ok {
            return Err(DriverError::UnexpectedStatus {
                status: status.status,
                expected: "running",
            });
        }
        Ok(pid)
    }

    /// Kills the instance's QEMU, if any, and forgets its pid.
    pub(crate) fn kill_qemu(&self, rec: &InstanceRecord) -> Result<(), DriverError> {
        let pidfile = self.layout.instance(&rec.uuid).pidfile();
        let pid = rec.pid.or_else(|| process::read_pidfile(&pidfile).ok());
        if let Some(pid) = pid {
            process::kill(pid, &rec.uuid, KILL_TIMEOUT)?;
            tracing::info!(uuid = rec.uuid, pid, "QEMU ended");
        }
        self.store.set_runtime(&rec.uuid, None, None)?;
        self.unwire_net(&rec.uuid)
    }

    /// The managed server, listening on no address of its own: bridge mode's
    /// addresses depend on the bridge, and `wire_bridge` adds them.
    fn meta_server(&self) -> metaserver::MetaServer<'_> {
        metaserver::MetaServer {
            layout: &self.layout,
            binary: &self.networking.metadata_server,
            settings: &self.settings,
            source: &self.location,
            host: &self.name,
            listen: Vec::new(),
        }
    }

    /// Bridge mode, before QEMU starts: the bridge with its addresses, and the
    /// metadata server listening on them (169.254.169.254:80, `[fd00:ec2::254]:80`
    /// and `[fe80::a9fe:a9fe%<bridge>]:80`; restarted when they changed, and told to
    /// reload, so it knows the new instance's address at once).
    fn wire_bridge(&self) -> Result<(), DriverError> {
        let subnet = self.store.subnet();
        let gateway = ipnetwork::Ipv4Network::new(subnet.gateway(), subnet.cidr.prefix())
            .map_err(|e| DriverError::Invalid(e.to_string()))?;
        let link = bridge::ensure_bridge(&self.networking.bridge, gateway)?;
        let server = metaserver::MetaServer {
            listen: link.metadata_listen(),
            ..self.meta_server()
        };
        let pid = server.ensure_running()?;
        server.reload();
        tracing::info!(bridge = self.networking.bridge, %gateway, metadata_server = pid, "bridge up");
        Ok(())
    }

    /// Bridge mode, after QEMU is gone: its tap (QEMU's own goes with it; a leftover
    /// is deleted); with no guest left running, the metadata server and the bridge.
    fn unwire_bridge(&self, uuid: &str) -> Result<(), DriverError> {
        bridge::delete_link(&bridge::tap_name(uuid))?;
        tracing::debug!(uuid, tap = bridge::tap_name(uuid), "tap gone");
        let others_alive = self
            .store
            .instances_claiming_processes(&self.name)?
            .into_iter()
            .filter(|s| s.uuid != uuid)
            .any(|s| s.pid.is_some_and(|pid| process::is_guest(pid, &s.uuid)));
        if others_alive {
            let ports = self.bridge_ports(Some(uuid))?;
            antispoof::apply(&antispoof::ruleset(&self.networking.bridge, &ports))?;
        } else {
            self.meta_server().stop()?;
            antispoof::apply(&antispoof::removal(&self.networking.bridge))?;
            bridge::delete_link(&self.networking.bridge)?;
            tracing::info!(
                bridge = self.networking.bridge,
                "last guest gone: bridge and metadata server removed"
            );
        }
        Ok(())
    }

    /// The bridge ports of every guest whose QEMU runs (but `leaving`), with the only
    /// MAC and addresses each may send from.
    fn bridge_ports(&self, leaving: Option<&str>) -> Result<Vec<antispoof::Port>, DriverError> {
        let mut ports = Vec::new();
        for s in self.store.instances_claiming_processes(&self.name)? {
            let alive = s.pid.is_some_and(|pid| process::is_guest(pid, &s.uuid));
            if !alive || Some(s.uuid.as_str()) == leaving {
                continue;
            }
            let rec = self.store.instance_by_uuid(&s.uuid)?;
            ports.push(antispoof::Port::of(&rec)?);
        }
        Ok(ports)
    }

    /// User mode: the namespace, the metadata server (started when needed), the relay,
    /// and the server's socket for this instance, before QEMU starts.
    fn wire_user_net(&self, rec: &InstanceRecord, ssh: bool) -> Result<Option<u16>, DriverError> {
        let p = self.layout.instance(&rec.uuid);
        let socket = self.layout.metadata_socket(&rec.uuid);
        usernet::check_socket_path(&socket)?;
        usernet::stop_relay(&rec.uuid, &p.relay_pidfile())?;
        usernet::create_netns(&rec.uuid)?;
        let wired = (|| -> Result<Option<u16>, DriverError> {
            let server = self.meta_server();
            server.ensure_running()?;
            let relay = usernet::start_relay(&usernet::RelaySpec {
                binary: &self.networking.metadata_server,
                uuid: &rec.uuid,
                ssh,
                metadata_socket: &socket,
                pid_file: &p.relay_pidfile(),
                ssh_port_file: &p.relay_ssh_port(),
                log: &p.relay_log(),
            })?;
            server.sync()?;
            server.wait_bound(&rec.uuid)?;
            Ok(relay.ssh_port)
        })();
        match &wired {
            Ok(ssh_port) => tracing::info!(
                ssh_port,
                uuid = rec.uuid,
                netns = usernet::netns_name(&rec.uuid),
                "user networking up: namespace, relay, metadata socket"
            ),
            Err(_) => {
                let _ = self.unwire_net(&rec.uuid);
            }
        }
        wired
    }

    /// Undoes [`Host::wire_user_net`] (whatever part of it exists); stops the metadata
    /// server once no instance is wired.
    pub(crate) fn unwire_net(&self, uuid: &str) -> Result<(), DriverError> {
        if self.networking.mode == NetworkMode::Bridge {
            return self.unwire_bridge(uuid);
        }
        let p = self.layout.instance(uuid);
        let had_relay = p.relay_pidfile().exists();
        usernet::stop_relay(uuid, &p.relay_pidfile())?;
        usernet::delete_netns(uuid)?;
        if had_relay {
            tracing::info!(uuid, "user networking down: relay and namespace removed");
        }
        if had_relay || self.meta_server().running().is_some() {
            self.meta_server().sync()?;
        }
        Ok(())
    }

    pub(crate) fn qmp(&self, uuid: &str) -> Result<Qmp, DriverError> {
        Ok(Qmp::connect(
            &self.layout.instance(uuid).qmp(),
            QMP_TIMEOUT,
        )?)
    }

    /// Records `state` after a failure, with Nova's fault shape.
    pub(crate) fn record_fault(
        &self,
        uuid: &str,
        state: State,
        err: &DriverError,
    ) -> Result<(), DriverError> {
        let fault = Fault {
            code: 500,
            message: error_chain(err),
        };
        self.store
            .set_state(uuid, state, FaultChange::Set(&fault), &now())?;
        Ok(())
    }

    /// Runs one lifecycle action under the lock: begin, work, finish or fail.
    pub(crate) fn act(
        &mut self,
        key: &str,
        action: Action,
        work: impl FnOnce(&mut Host, &InstanceRecord) -> Result<(), DriverError>,
    ) -> Result<InstanceRecord, DriverError> {
        let uuid = self.store.find_instance(key)?.uuid;
        tracing::Span::current().record("uuid", tracing::field::display(&uuid));
        let _lock = lock::lock(&self.layout.lock(&uuid))?;
        let rec = self.store.instance_by_uuid(&uuid)?;
        // A control plane that queued the action began it already (Nova's task
        // state from the API on); otherwise it begins here.
        let running = if rec.state.task == Some(action.task()) {
            rec.state
        } else {
            let running = rec.state.begin(action)?;
            self.store
                .set_state(&uuid, running, FaultChange::Keep, &now())?;
            running
        };
        log_state(action, running, "task started");
        match work(self, &rec) {
            Ok(()) => {
                if action != Action::Delete {
                    let done = running.finish(action);
                    self.store
                        .set_state(&uuid, done, FaultChange::Clear, &now())?;
                    log_state(action, done, "task done");
                } else {
                    tracing::info!("deleted");
                }
                match action {
                    Action::Delete => Ok(rec),
                    _ => Ok(self.store.instance_by_uuid(&uuid)?),
                }
            }
            Err(err) => {
                let failed = running.fail(action);
                self.record_fault(&uuid, failed, &err)?;
                log_state(action, failed, "task failed");
                Err(err)
            }
        }
    }

    #[instrument(skip_all, fields(uuid))]
    pub fn console_log(&self, key: &str, lines: Option<usize>) -> Result<String, DriverError> {
        let rec = self.store.find_instance(key)?;
        tracing::Span::current().record("uuid", tracing::field::display(&rec.uuid));
        let path = self.layout.instance(&rec.uuid).console_log();
        let text = match std::fs::read(&path) {
            Ok(b) => String::from_utf8_lossy(&b).into_owned(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => return Err(io_err(&path)(e)),
        };
        Ok(match lines {
            None => text,
            Some(n) => {
                let all: Vec<&str> = text.lines().collect();
                let start = all.len().saturating_sub(n);
                all[start..].iter().map(|l| format!("{l}\n")).collect()
            }
        })
    }
}

/// A state the store now holds, as an event in the action's span, which names the
/// instance (the fault, if any, is in the store).
fn log_state(action: Action, state: State, what: &'static str) {
    tracing::info!(
        ?action,
        vm_state = %state.vm,
        task_state = state.task.map(|t| t.as_str()),
        power_state = %state.power,
        "{what}"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fault_says_the_error_and_each_cause_once() {
        let err = DriverError::from(lock::LockError::Lock {
            path: "/state/locks/x.lock".into(),
            source: std::io::Error::from(std::io::ErrorKind::PermissionDenied),
        });
        assert_eq!(
            error_chain(&err),
            "cannot lock /state/locks/x.lock: permission denied"
        );
        let err = DriverError::from(bridge::BridgeError::from(
            compute_io::netlink::NetlinkError::NoSuchLink("cbr0".into()),
        ));
        assert_eq!(
            error_chain(&err),
            "bridge networking failed (it needs root): interface cbr0 does not exist"
        );
    }
}
