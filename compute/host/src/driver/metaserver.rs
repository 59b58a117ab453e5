//! The metadata server compute runs for its instances: one `metadata-server serve`
//! process per state folder, reading the same records as compute (`--state-dir`: the
//! folder's SQLite; a host agent's: `--database URL --host NAME`, this host's
//! instances of the shared database, followed through its change feed; the URL's
//! password, if any, in its environment, not on its command line), started on
//! demand when an instance starts and stopped when no instance runs any more.
//!
//! compute tells it which unix socket belongs to which instance through a listeners
//! file (`metadata/listeners`, `PATH=UUID` lines) that it rewrites atomically under a
//! lock whenever a relay comes or goes, then sends SIGHUP so the change (and the
//! database's) applies at once. The file lists exactly the instances whose relay is
//! alive, so it is derived from what runs, never remembered.

use super::layout::Layout;
use super::lock::{self, LockError};
use super::usernet;
use crate::qemu::process;
use compute::metadata::Settings;
use compute_flags::metadata_server::ServeArgs;
use compute_flags::SettingsArgs;
use compute_io::atomic::{self, AtomicError};
use compute_io::tool::{self, ToolError, SETSID};
use compute_store::postgres::{split_password, PASSWORD_ENV};
use compute_store::Location;
use std::os::unix::ffi::OsStringExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

/// How long a new server gets to start listening.
pub const START_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a bound socket may take to appear after SIGHUP.
pub const APPLY_TIMEOUT: Duration = Duration::from_secs(10);
/// How long the server gets to finish on SIGTERM.
pub const STOP_TIMEOUT: Duration = Duration::from_secs(15);

#[derive(Debug, thiserror::Error)]
pub enum MetaServerError {
    #[error(
        "{program} not found: build it with 'cargo build -p metadata-server' (compute looks \
         beside itself, then on PATH) or name it with --metadata-server"
    )]
    NotFound { program: PathBuf },
    #[error(transparent)]
    Tool(#[from] ToolError),
    #[error("the metadata server did not start: {log}")]
    Failed { log: String },
    #[error("the metadata server did not open {path} for instance {uuid}")]
    NotApplied { path: PathBuf, uuid: String },
    #[error("{path}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Atomic(#[from] AtomicError),
    #[error(transparent)]
    Lock(#[from] LockError),
    #[error(transparent)]
    Process(#[from] process::ProcessError),
}

/// The managed server of one state folder.
pub struct MetaServer<'a> {
    pub layout: &'a Layout,
    pub binary: &'a Path,
    /// The rendering settings the server must use: the ones compute builds drives
    /// with, so that a guest reads the same bytes from both.
    pub settings: &'a Settings,
    /// Where compute's records are: the server reads them there.
    pub source: &'a Location,
    /// The compute host this is: over a shared database, the server serves its
    /// instances alone.
    pub host: &'a str,
    /// Addresses served to every caller, who is known by source IP (bridge mode).
    pub listen: Vec<std::net::SocketAddr>,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> MetaServerError + '_ {
    move |source| MetaServerError::Io {
        path: path.to_owned(),
        source,
    }
}

fn tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let start = text.len().saturating_sub(2000);
    text.get(start..).unwrap_or_default().trim().to_owned()
}

/// Where the `metadata-server` binary `program` is (a path, or a name on PATH).
pub fn locate(program: &Path) -> Result<PathBuf, MetaServerError> {
    tool::find_program(program.as_os_str()).ok_or_else(|| MetaServerError::NotFound {
        program: program.to_owned(),
    })
}

impl MetaServer<'_> {
    /// The argv element that marks the process as this folder's server.
    fn marker(&self) -> String {
        self.layout.metadata_listeners().display().to_string()
    }

    /// The server's pid when it is running.
    pub fn running(&self) -> Option<i32> {
        process::read_pidfile(&self.layout.metadata_pidfile())
            .ok()
            .filter(|pid| process::is_guest(*pid, &self.marker()))
    }

    /// The server's arguments, writing the vendor data file they name, and the
    /// database's password, which goes in its environment, not its command line.
    fn serve_args(&self) -> Result<(ServeArgs, Option<Vec<u8>>), MetaServerError> {
        let vendor = self.layout.metadata_dir().join("vendor_data.json");
        if !self.settings.vendor_data.is_empty() {
            let bytes = compute::pyjson::to_vec(&self.settings.vendor_data);
            write_atomically(&vendor, &bytes)?;
        }
        let (state_dir, database, host, data_dir, password) = match self.source {
            Location::StateDir(dir) => (Some(dir.clone()), None, None, None, None),
            // Its own files stay in the state folder, as they do with --state-dir.
            Location::Postgres(url) => {
                let (url, password) = split_password(url);
                (
                    None,
                    Some(url),
                    Some(self.host.to_owned()),
                    Some(self.layout.metadata_dir()),
                    password,
                )
            }
        };
        let args = ServeArgs {
            listen: self.listen.clone(),
            instance_listeners_file: Some(self.layout.metadata_listeners()),
            state_dir,
            database,
            host,
            data_dir,
            pid_file: Some(self.layout.metadata_pidfile()),
            password_dir: self.layout.metadata_passwords(),
            settings: SettingsArgs::for_service(self.settings, Some(&vendor)),
        };
        Ok((args, password))
    }

    /// Starts the server unless it runs with these arguments (settings and listeners;
    /// a server started with other ones is restarted); returns its pid.
    pub fn ensure_running(&self) -> Result<i32, MetaServerError> {
        let dir = self.layout.metadata_dir();
        std::fs::create_dir_all(&dir).map_err(io(&dir))?;
        let (args, password) = self.serve_args()?;
        let args = args.to_args();
        let recorded = dir.join("settings.args");
        let wanted: Vec<u8> = args
            .iter()
            .flat_map(|a| a.as_encoded_bytes().iter().copied().chain([0]))
            .collect();
        if let Some(pid) = self.running() {
            if std::fs::read(&recorded).ok().as_deref() == Some(&wanted[..]) {
                return Ok(pid);
            }
            tracing::info!(
                "its arguments changed (settings or addresses): restarting the metadata server"
            );
            self.stop()?;
        }
        write_atomically(&recorded, &wanted)?;
        let listeners = self.layout.metadata_listeners();
        if !listeners.exists() {
            std::fs::write(&listeners, b"").map_err(io(&listeners))?;
        }
        let pidfile = self.layout.metadata_pidfile();
        let _ = std::fs::remove_file(&pidfile);
        let log_path = self.layout.metadata_log();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .map_err(io(&log_path))?;
        // setsid would report a missing server only by its exit status.
        let binary = locate(self.binary)?;
        // `setsid --fork`: the server outlives this command and its terminal, and is
        // init's child, not ours: a long-lived caller (`compute api`) is left no
        // zombie when it stops.
        let mut command = SETSID.command();
        command.arg("--fork");
        if let Some(p) = password {
            command.env(PASSWORD_ENV, std::ffi::OsString::from_vec(p));
        }
        let mut child = command
            .arg(binary)
            .args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .map_err(|e| SETSID.error(e))?;
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Some(pid) = self.running() {
                // setsid itself exits as soon as it has forked.
                let _ = child.wait();
                tracing::info!(pid, state_dir = %self.layout.root().display(), "metadata server started");
                return Ok(pid);
            }
            let failed = matches!(child.try_wait(), Ok(Some(s)) if !s.success());
            if failed || Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                return Err(MetaServerError::Failed {
                    log: tail(&log_path),
                });
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Rewrites the listeners file from the relays alive now and tells the server.
    /// Returns how many instances are wired; with none, the server is stopped.
    pub fn sync(&self) -> Result<usize, MetaServerError> {
        let dir = self.layout.metadata_dir();
        std::fs::create_dir_all(&dir).map_err(io(&dir))?;
        let _guard = lock::lock(&self.layout.metadata_lock())?;
        let mut lines = Vec::new();
        let instances = self.layout.instances();
        if let Ok(entries) = std::fs::read_dir(&instances) {
            for e in entries.flatten() {
                let uuid = e.file_name().to_string_lossy().into_owned();
                let paths = self.layout.instance(&uuid);
                if usernet::relay_alive(&uuid, &paths.relay_pidfile()) {
                    lines.push(format!(
                        "{}={uuid}",
                        self.layout.metadata_socket(&uuid).display()
                    ));
                }
            }
        }
        lines.sort();
        let mut text = String::from("# written by compute: PATH=UUID of every relay alive\n");
        for l in &lines {
            text.push_str(l);
            text.push('\n');
        }
        write_atomically(&self.layout.metadata_listeners(), text.as_bytes())?;
        if lines.is_empty() {
            self.stop()?;
        } else if let Some(pid) = self.running() {
            process::hangup(pid, &self.marker());
        }
        Ok(lines.len())
    }

    /// Waits until the server listens on the instance's socket.
    pub fn wait_bound(&self, uuid: &str) -> Result<(), MetaServerError> {
        let path = self.layout.metadata_socket(uuid);
        let deadline = Instant::now() + APPLY_TIMEOUT;
        while std::os::unix::net::UnixStream::connect(&path).is_err() {
            if Instant::now() >= deadline {
                return Err(MetaServerError::NotApplied {
                    path,
                    uuid: uuid.to_owned(),
                });
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(())
    }

    /// Tells a running server to reload the instances now (SIGHUP).
    pub fn reload(&self) {
        if let Some(pid) = self.running() {
            process::hangup(pid, &self.marker());
        }
    }

    /// Stops the server (SIGTERM: open connections finish).
    pub fn stop(&self) -> Result<(), MetaServerError> {
        if let Some(pid) = self.running() {
            process::terminate(pid, &self.marker(), STOP_TIMEOUT)?;
            tracing::info!(pid, "metadata server stopped");
        }
        let _ = std::fs::remove_file(self.layout.metadata_pidfile());
        Ok(())
    }
}

/// Files of the server's folder are private to compute and the server.
fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), MetaServerError> {
    Ok(atomic::replace(path, bytes, 0o600)?)
}

/// The passwords guests posted to the managed metadata server of a state folder:
/// one file per instance in `Layout::metadata_passwords` (the server's
/// `DirPasswordStore`; a shared database keeps them in the store instead).
pub mod posted {
    use super::MetaServerError;
    use crate::driver::layout::Layout;
    use std::path::PathBuf;

    fn path(layout: &Layout, uuid: &str) -> Option<PathBuf> {
        let uuid = uuid::Uuid::parse_str(uuid).ok()?;
        Some(
            layout
                .metadata_passwords()
                .join(uuid.hyphenated().to_string()),
        )
    }

    /// What the guest of `uuid` posted, if anything.
    pub fn get(layout: &Layout, uuid: &str) -> Result<Option<String>, MetaServerError> {
        let Some(p) = path(layout, uuid) else {
            return Ok(None);
        };
        match std::fs::read(&p) {
            Ok(b) => Ok(Some(String::from_utf8_lossy(&b).into_owned())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(super::io(&p)(e)),
        }
    }

    /// Forgets it (the guest may post again); `false` when there was none.
    pub fn clear(layout: &Layout, uuid: &str) -> Result<bool, MetaServerError> {
        let Some(p) = path(layout, uuid) else {
            return Ok(false);
        };
        match std::fs::remove_file(&p) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(super::io(&p)(e)),
        }
    }
}
