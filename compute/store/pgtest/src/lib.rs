//! A real PostgreSQL for tests: one throwaway cluster per test binary, started on
//! first use by [`cluster`], and a fresh database per test from
//! [`Cluster::database`].
//!
//! The cluster is Debian's PostgreSQL (`initdb` and `postgres` from
//! `/usr/lib/postgresql/<version>/bin`, package postgresql), run as the unprivileged
//! user [`USER`] when the tests run as root (PostgreSQL refuses root; the user comes
//! from `scripts/install-deps`), as the current user otherwise. Its data and its
//! socket live in `<target>/pgtest/<pid>/`; it listens on that Unix socket only (no
//! TCP), and trusts whoever can open the folder (its owner and root).
//!
//! It dies with the test process, also when a test fails or the process is killed:
//! `postgres` is started through `setpriv --pdeathsig QUIT` (an immediate shutdown
//! when its parent goes) from a thread that lives as long as the process, because the
//! signal follows the thread that started it, not the process. The folders of test
//! processes that are gone are removed when the next cluster starts.
//!
//! Fault tests stop the server hard ([`Cluster::kill`], SIGQUIT: PostgreSQL's
//! immediate shutdown, with crash recovery at the next start) and start it again
//! ([`Cluster::start`]); they should have a test binary of their own, since every
//! test of a binary shares its cluster.
//!
//! A test helper: failures panic with what went wrong and the server's log.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// The unprivileged user the server runs as when the tests run as root.
pub const USER: &str = "nova-rs-pg";
/// The cluster's superuser, whom the tests connect as.
pub const SUPERUSER: &str = "postgres";
/// How long the server gets to accept connections after it starts.
const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// One running cluster.
pub struct Cluster {
    dir: PathBuf,
    bin: PathBuf,
    user: Option<String>,
    keeper: Mutex<mpsc::Sender<Request>>,
    databases: AtomicUsize,
}

/// One database of the cluster, made empty for one test.
#[derive(Debug, Clone)]
pub struct Database {
    pub name: String,
    socket_dir: PathBuf,
    bin: PathBuf,
}

enum Request {
    Start(mpsc::Sender<Result<(), String>>),
    Kill(mpsc::Sender<Result<(), String>>),
}

static CLUSTER: OnceLock<Cluster> = OnceLock::new();

/// The cluster of this test binary, started on first use.
pub fn cluster() -> &'static Cluster {
    CLUSTER.get_or_init(|| Cluster::init().unwrap_or_else(|e| panic!("pgtest: {e}")))
}

fn run(cmd: &mut Command) -> Result<String, String> {
    let shown = format!("{cmd:?}");
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run {shown}: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "{shown} failed ({}): {}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The newest `/usr/lib/postgresql/<version>/bin` holding `initdb` and `postgres`.
fn find_bin() -> Result<PathBuf, String> {
    let root = Path::new("/usr/lib/postgresql");
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir(root)
        .map_err(|e| {
            format!("{}: {e}: install PostgreSQL with 'apt-get install postgresql' (or run scripts/install-deps)", root.display())
        })?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let v = e.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = e.path().join("bin");
            (bin.join("initdb").is_file() && bin.join("postgres").is_file()).then_some((v, bin))
        })
        .collect();
    versions.sort();
    versions.pop().map(|(_, b)| b).ok_or_else(|| {
        format!("no initdb and postgres under {}: install them with 'apt-get install postgresql' (or run scripts/install-deps)", root.display())
    })
}

/// `<target>/pgtest`: the test executable is `<target>/<profile>/deps/<name>`.
fn base_dir() -> Result<PathBuf, String> {
    let exe = std::env::current_exe().map_err(|e| format!("where is this test binary: {e}"))?;
    let target = exe
        .ancestors()
        .find(|a| a.file_name().is_some_and(|n| n == "deps"))
        .and_then(|deps| deps.parent())
        .and_then(|profile| profile.parent())
        .ok_or_else(|| format!("{} is not under a cargo target folder", exe.display()))?;
    Ok(target.join("pgtest"))
}

/// Removes the folders of test processes that are gone (their servers died with them).
fn remove_stale(base: &Path) {
    let Ok(entries) = std::fs::read_dir(base) else {
        return;
    };
    for e in entries.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else {
            continue;
        };
        if !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
}

impl Cluster {
    fn init() -> Result<Cluster, String> {
        let bin = find_bin()?;
        let base = base_dir()?;
        std::fs::create_dir_all(&base).map_err(|e| format!("{}: {e}", base.display()))?;
        remove_stale(&base);
        let dir = base.join(std::process::id().to_string());
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        // A Unix socket path has room for 107 bytes.
        let socket = dir.join(".s.PGSQL.5432");
        if socket.as_os_str().len() > 100 {
            return Err(format!(
                "the socket path {} is too long for a Unix socket: use a shorter target folder",
                socket.display()
            ));
        }
        let user = rustix::process::geteuid()
            .is_root()
            .then(|| USER.to_owned());
        if let Some(u) = &user {
            run(Command::new("id").arg(u)).map_err(|_| {
                format!("user {u} does not exist: PostgreSQL refuses to run as root; create it with scripts/install-deps")
            })?;
            run(Command::new("chown").arg(format!("{u}:")).arg(&dir))?;
        }
        run(Command::new("chmod").arg("0700").arg(&dir))?;
        let cluster = Cluster {
            keeper: Mutex::new(keeper(bin.clone(), dir.clone(), user.clone())),
            dir,
            bin,
            user,
            databases: AtomicUsize::new(0),
        };
        let data = cluster.data_dir();
        run(cluster
            .as_user(&cluster.bin.join("initdb"))
            .arg("-D")
            .arg(&data)
            .args([
                "-U",
                SUPERUSER,
                "--auth=trust",
                "-E",
                "UTF8",
                "--locale=C",
                "--no-sync",
            ]))?;
        cluster.start();
        Ok(cluster)
    }

    /// `setpriv` running `program` as the cluster's user (root: [`USER`]).
    fn as_user(&self, program: &Path) -> Command {
        as_user(self.user.as_deref(), program)
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.join("data")
    }

    /// The folder of the server's socket (the `host` of a connection).
    pub fn socket_dir(&self) -> &Path {
        &self.dir
    }

    /// The postmaster's pid, from its `postmaster.pid` (`None` when it is not running).
    pub fn server_pid(&self) -> Option<u32> {
        std::fs::read_to_string(self.data_dir().join("postmaster.pid"))
            .ok()?
            .lines()
            .next()?
            .trim()
            .parse()
            .ok()
    }

    /// The server's log (its stderr), for failure messages.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("postgres.log")).unwrap_or_default()
    }

    fn ask(&self, req: impl FnOnce(mpsc::Sender<Result<(), String>>) -> Request) {
        let (tx, rx) = mpsc::channel();
        let keeper = self.keeper.lock().unwrap_or_else(|p| p.into_inner());
        keeper
            .send(req(tx))
            .unwrap_or_else(|_| panic!("pgtest: the keeper thread is gone"));
        match rx.recv() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => panic!("pgtest: {e}\nserver log:\n{}", self.log()),
            Err(_) => panic!("pgtest: the keeper thread is gone"),
        }
    }

    /// Starts the server (again) and waits until it accepts connections.
    pub fn start(&self) {
        self.ask(Request::Start);
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            let probe = run(Command::new(self.bin.join("psql"))
                .args(["-X", "-q", "-A", "-t", "-U", SUPERUSER, "-h"])
                .arg(&self.dir)
                .args(["-d", "postgres", "-c", "SELECT 1"]));
            match probe {
                Ok(_) => return,
                Err(e) if Instant::now() > deadline => {
                    panic!("pgtest: the server did not come up: {e}\n{}", self.log())
                }
                Err(_) => std::thread::sleep(Duration::from_millis(50)),
            }
        }
    }

    /// Stops the server hard (SIGQUIT, PostgreSQL's immediate shutdown: no
    /// checkpoint, crash recovery at the next start) and waits until it is gone.
    pub fn kill(&self) {
        self.ask(Request::Kill);
    }

    /// A new empty database for one test.
    pub fn database(&self) -> Database {
        let n = self.databases.fetch_add(1, Ordering::SeqCst);
        let db = Database {
            name: format!("t{n}"),
            socket_dir: self.dir.clone(),
            bin: self.bin.clone(),
        };
        Database {
            name: "postgres".into(),
            ..db.clone()
        }
        .psql(&format!("CREATE DATABASE {}", db.name));
        db
    }
}

impl Database {
    /// The connection URL (the socket folder percent-encoded as the host).
    pub fn url(&self) -> String {
        let host: String = self
            .socket_dir
            .to_string_lossy()
            .bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                    (b as char).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect();
        format!("postgresql://{SUPERUSER}@{host}/{}", self.name)
    }

    /// Runs SQL with `psql` (unaligned, tuples only) and returns what it printed;
    /// panics with psql's message when it fails.
    pub fn psql(&self, sql: &str) -> String {
        self.try_psql(sql)
            .unwrap_or_else(|e| panic!("pgtest: psql: {e}"))
    }

    /// [`Database::psql`] that returns psql's failure instead.
    pub fn try_psql(&self, sql: &str) -> Result<String, String> {
        run(Command::new(self.bin.join("psql"))
            .args([
                "-X",
                "-q",
                "-A",
                "-t",
                "-v",
                "ON_ERROR_STOP=1",
                "-U",
                SUPERUSER,
                "-h",
            ])
            .arg(&self.socket_dir)
            .args(["-d", &self.name, "-c", sql]))
        .map(|s| s.trim_end().to_owned())
    }
}

fn as_user(user: Option<&str>, program: &Path) -> Command {
    let mut c = Command::new("setpriv");
    if let Some(u) = user {
        c.args(["--reuid", u, "--regid", u, "--clear-groups"]);
    }
    // setpriv sets the death signal after it changes the credentials (a change of
    // credentials clears it), right before it runs the program.
    c.args(["--pdeathsig", "QUIT", "--"]).arg(program);
    c
}

/// The thread that starts and stops `postgres`, living as long as the process so
/// that the server's death signal fires only when the process ends.
fn keeper(bin: PathBuf, dir: PathBuf, user: Option<String>) -> mpsc::Sender<Request> {
    let (tx, rx) = mpsc::channel::<Request>();
    std::thread::Builder::new()
        .name("pgtest-keeper".into())
        .spawn(move || {
            let mut server: Option<Child> = None;
            for req in rx {
                match req {
                    Request::Start(reply) => {
                        let started = start_server(&bin, &dir, user.as_deref(), &mut server);
                        let _ = reply.send(started);
                    }
                    Request::Kill(reply) => {
                        let _ = reply.send(kill_server(&mut server));
                    }
                }
            }
        })
        .unwrap_or_else(|e| panic!("pgtest: cannot start the keeper thread: {e}"));
    tx
}

fn start_server(
    bin: &Path,
    dir: &Path,
    user: Option<&str>,
    server: &mut Option<Child>,
) -> Result<(), String> {
    if let Some(child) = server {
        if child.try_wait().map_err(|e| e.to_string())?.is_none() {
            return Ok(());
        }
    }
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("postgres.log"))
        .map_err(|e| format!("{}/postgres.log: {e}", dir.display()))?;
    let child = as_user(user, &bin.join("postgres"))
        .arg("-D")
        .arg(dir.join("data"))
        .arg("-k")
        .arg(dir)
        // No TCP at all; the socket folder only; durability against a crashed
        // server (what the fault tests do), not against a crashed machine.
        .args(["-c", "listen_addresses=", "-c", "fsync=off"])
        .args(["-c", "max_connections=200", "-c", "shared_buffers=16MB"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .map_err(|e| format!("cannot run setpriv for {}/postgres: {e}", bin.display()))?;
    *server = Some(child);
    Ok(())
}

fn kill_server(server: &mut Option<Child>) -> Result<(), String> {
    let Some(mut child) = server.take() else {
        return Err("the server is not running".into());
    };
    let pid = rustix::process::Pid::from_raw(child.id() as i32)
        .ok_or_else(|| "the server has no pid".to_string())?;
    rustix::process::kill_process(pid, rustix::process::Signal::QUIT)
        .map_err(|e| format!("cannot signal the server: {e}"))?;
    child.wait().map_err(|e| e.to_string())?;
    Ok(())
}
