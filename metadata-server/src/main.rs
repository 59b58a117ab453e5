//! `metadata-server`: serve the metadata of instances, and let an operator read or
//! clear the passwords guests posted. Flags and exit codes live here; everything else
//! in the library.

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use compute_flags::metadata_server::{RelayArgs, ServeArgs, DEFAULT_PASSWORD_DIR};
use compute_store::Location;
use metadata_server::accept::Listener;
use metadata_server::accesslog::{self, AccessLog, Destination as AccessLogDestination};
use metadata_server::answer::{Responder, TokenMode};
use metadata_server::cache::RenderCache;
use metadata_server::ec2_args::{self, DataArgs, Ec2Args, EventsAction};
use metadata_server::events::EventStore;
use metadata_server::feed::{self, FeedConfig};
use metadata_server::identity::IdentityConfig;
use metadata_server::listeners::{self, ListenerSpec};
use metadata_server::metrics::Metrics;
use metadata_server::password::{DatabasePasswords, DirPasswordStore, PasswordStore};
use metadata_server::ratelimit::RateLimiter;
use metadata_server::reload::{reload, watch_source};
use metadata_server::server::serve;
use metadata_server::signature::SharedSecret;
use metadata_server::source::{FileSource, InstanceSource};
use metadata_server::state::{Limits, State};
use metadata_server::store::{InstanceSet, InstanceStore, WaitLimits};
use metadata_server::token::TokenAuthority;
use metadata_server::vendordata::{DynamicTarget, DynamicVendorData};
use metadata_server::workers::Workers;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use uuid::Uuid;

#[derive(Parser)]
#[command(
    version,
    about = "The 169.254.169.254 metadata service (OpenStack and EC2 APIs)"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the metadata of instances (OpenStack and EC2 trees) over HTTP.
    Serve(Box<ServeCommand>),
    /// Relay one instance's connections into its network namespace (compute runs it).
    #[command(hide = true)]
    Relay(RelayArgs),
    /// Read or clear the password an instance posted.
    Password {
        #[command(subcommand)]
        action: PasswordAction,
    },
    /// Print the certificate (PEM) that verifies instance identity documents, as the
    /// server made it in its data folder.
    IdentityCert(DataArgs),
    /// Schedule, clear or list an instance's EC2 maintenance events.
    Events {
        #[command(subcommand)]
        action: EventsAction,
    },
}

#[derive(Subcommand)]
enum PasswordAction {
    /// Print the stored password (exit 3 when none is stored).
    Get(PasswordArgs),
    /// Remove the stored password, so the guest may post a new one.
    Clear(PasswordArgs),
}

#[derive(clap::Args)]
struct PasswordArgs {
    /// The instance whose password it is.
    #[arg(long, value_name = "UUID")]
    instance: Uuid,
    /// Folder of the password store (`serve --password-dir`).
    #[arg(long, value_name = "DIR", default_value = DEFAULT_PASSWORD_DIR)]
    password_dir: PathBuf,
    /// The PostgreSQL database the server keeps passwords in (`serve --database`).
    #[arg(long, value_name = "URL", conflicts_with = "password_dir")]
    database: Option<String>,
}

// `serve`'s flags: compute's part (compute-host starts the server with the same
// struct), then the rest. No `///`: it would override the verb's about line.
#[derive(clap::Args)]
struct ServeCommand {
    #[command(flatten)]
    launch: ServeArgs,
    /// A socket belonging to one instance: TCP `ADDR=UUID` or unix `/PATH=UUID` (repeatable).
    #[arg(long, value_name = "ADDR=UUID")]
    instance_listener: Vec<ListenerSpec>,
    /// Instance documents: a JSON file (array or one document) or a folder of them.
    #[arg(
        long,
        value_name = "FILE|DIR",
        required_unless_present_any = ["state_dir", "database"],
        conflicts_with_all = ["state_dir", "database", "host"]
    )]
    instances: Option<PathBuf>,
    /// Requests waiting for a change (`?wait_for_change=true`) at once, in all; 429 beyond.
    #[arg(long, value_name = "N", default_value_t = WaitLimits::default().total)]
    max_waiters: usize,
    /// Requests waiting for a change of one instance at once; 429 beyond.
    #[arg(long, value_name = "N", default_value_t = WaitLimits::default().per_instance)]
    max_waiters_per_instance: usize,
    /// How often to look for changes to the instances (SIGHUP reloads at once).
    #[arg(long, value_name = "SECONDS", default_value_t = 2)]
    watch_interval: u64,
    /// Proxy whose X-Forwarded-For is believed (repeatable).
    #[arg(long, value_name = "CIDR")]
    trusted_proxy: Vec<ipnetwork::IpNetwork>,
    /// Secret shared with a Neutron-style metadata proxy (signed X-Instance-ID headers).
    #[arg(long, value_name = "FILE")]
    proxy_shared_secret_file: Option<PathBuf>,
    /// Whether IMDSv2 tokens are needed, for every instance.
    #[arg(long, value_enum, default_value_t = TokenMode::Optional)]
    tokens: TokenMode,
    /// Per-instance override: `UUID=optional|required` (repeatable).
    #[arg(long, value_name = "UUID=MODE")]
    instance_tokens: Vec<String>,
    /// IP TTL of the token reply (AWS's hop limit).
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=255))]
    token_hop_limit: u32,
    /// Dynamic vendor data target `name@http://host:port/path` (repeatable).
    #[arg(long, value_name = "NAME@URL")]
    vendordata_dynamic: Vec<DynamicTarget>,
    /// Serve /healthz and Prometheus /metrics here.
    #[arg(long, value_name = "ADDR")]
    metrics_listen: Option<SocketAddr>,
    /// Time a client gets to send a request's headers, or its body (408 after).
    #[arg(long, value_name = "SECONDS", default_value_t = 10)]
    header_read_timeout: u64,
    /// A connection silent this long either way is closed.
    #[arg(long, value_name = "SECONDS", default_value_t = 30)]
    idle_timeout: u64,
    /// Largest request body (a posted password); 413 beyond.
    #[arg(long, value_name = "BYTES", default_value_t = 16384)]
    max_body_bytes: usize,
    /// Largest request head (request line and headers).
    #[arg(long, value_name = "BYTES", default_value_t = 16384)]
    max_header_bytes: usize,
    /// Connections served at once, over all listeners; more wait.
    #[arg(long, value_name = "N", default_value_t = 4096)]
    max_connections: usize,
    /// Requests per second per instance (0: no limit).
    #[arg(long, value_name = "N", default_value_t = 0.0)]
    rate_limit: f64,
    /// Requests an instance may make at once before the rate applies.
    #[arg(long, value_name = "N", default_value_t = 100)]
    rate_burst: u32,
    /// Memory for rendered trees, in MiB (least recently used go first); with every
    /// version read a tree costs about 70 KiB, a guest's usual reads far less.
    #[arg(long, value_name = "MIB", default_value_t = 64)]
    cache_memory: usize,
    /// Signed instance identity documents kept (least recently used go first).
    #[arg(long, value_name = "N", default_value_t = 2048)]
    cache_capacity: usize,
    /// Where the access log goes: `stderr`, a file (appended to), or `off`. Lines are
    /// written in batches by a thread of their own; requests never wait for it.
    #[arg(long, value_name = "stderr|FILE|off", default_value = "stderr")]
    access_log: AccessLogDestination,
    /// Access-log lines queued for the writer at most; beyond, lines are dropped
    /// (and counted in /metrics) rather than slow a request.
    #[arg(long, value_name = "N", default_value_t = accesslog::DEFAULT_QUEUE)]
    access_log_queue: usize,
    /// Threads serving connections, each with its own event loop; a connection stays
    /// on one (default: one per CPU).
    #[arg(long, value_name = "N")]
    workers: Option<usize>,
    /// `cpu`: each worker pinned to one of the CPUs the server may run on, and a
    /// connection served by a worker of the CPU its packets arrive on; `off`: workers
    /// left to the scheduler, taking connections in turn.
    #[arg(long, value_enum, default_value = "cpu")]
    worker_affinity: WorkerAffinity,
    /// Seconds open connections get to finish after SIGTERM.
    #[arg(long, value_name = "SECONDS", default_value_t = 10)]
    shutdown_grace: u64,
    #[command(flatten)]
    ec2: Ec2Args,
}

/// Where the connection workers run (`--worker-affinity`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum WorkerAffinity {
    /// Pinned, one to each CPU; connections go to the worker of their CPU.
    Cpu,
    /// Left to the scheduler; connections handed out in turn.
    Off,
}

const DEFAULT_LISTEN: &str = "127.0.0.1:8775";

async fn bind(args: &ServeCommand) -> Result<Vec<Listener>> {
    let mut out = Vec::new();
    let nothing_else =
        args.instance_listener.is_empty() && args.launch.instance_listeners_file.is_none();
    let default: Vec<SocketAddr> = match (args.launch.listen.is_empty(), nothing_else) {
        (true, true) => vec![DEFAULT_LISTEN.parse()?],
        _ => Vec::new(),
    };
    for addr in args.launch.listen.iter().chain(&default) {
        let l = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("cannot listen on {addr}"))?;
        out.push(Listener::Tcp(l));
    }
    for spec in &args.instance_listener {
        out.push(listeners::bind(spec).await?);
    }
    Ok(out)
}

async fn run_serve(args: ServeCommand) -> Result<()> {
    let mut settings = args.launch.settings.to_settings()?;
    args.ec2.apply(&mut settings);
    let settings = Arc::new(settings);
    let data = ec2_args::data_dir(
        args.launch.data_dir.as_deref(),
        args.launch.state_dir.as_deref(),
    );
    let signer = args
        .ec2
        .signer(&data, args.cache_capacity)
        .context("setting up the identity document signer")?
        .map(Arc::new);
    if let Some(h) = &args.launch.host {
        compute_store::validate_host_name(h)?;
    }
    let store = Arc::new(InstanceStore::new(
        InstanceSet::default(),
        WaitLimits {
            per_instance: args.max_waiters_per_instance,
            total: args.max_waiters,
        },
    ));
    let location = match (
        &args.instances,
        &args.launch.state_dir,
        &args.launch.database,
    ) {
        (Some(_), _, _) => None,
        (None, _, Some(url)) => Some(Location::Postgres(url.clone())),
        (None, Some(dir), None) => Some(Location::StateDir(dir.clone())),
        (None, None, None) => bail!("give --instances, --state-dir or --database"),
    };
    let source: Option<Arc<dyn InstanceSource>> = match &args.instances {
        Some(path) => {
            let source: Arc<dyn InstanceSource> = Arc::new(FileSource::new(path.clone()));
            let n = reload(&source, &store)
                .await
                .with_context(|| format!("loading {}", source.describe()))?;
            tracing::info!(instances = n, source = %source.describe(), "instances loaded");
            Some(source)
        }
        None => None,
    };
    let follower = match &location {
        Some(location) => {
            let config = FeedConfig::new(location.clone(), args.launch.host.clone());
            let store = store.clone();
            Some(
                tokio::task::spawn_blocking(move || feed::start(config, store).map_err(Box::new))
                    .await
                    .context("the feed's start failed")??,
            )
        }
        None => None,
    };
    let feed_status = follower.as_ref().map(|f| f.status.clone());

    let shared_secret = match &args.proxy_shared_secret_file {
        Some(p) => Some(SharedSecret::from_file_bytes(
            &std::fs::read(p).with_context(|| format!("reading {}", p.display()))?,
        )),
        None => None,
    };
    let mut token_mode_for = HashMap::new();
    for spec in &args.instance_tokens {
        let (uuid, mode) = spec
            .split_once('=')
            .with_context(|| format!("`{spec}` is not UUID=MODE"))?;
        let uuid = Uuid::try_parse(uuid).with_context(|| format!("`{uuid}` is not a UUID"))?;
        let mode = <TokenMode as clap::ValueEnum>::from_str(mode, true)
            .map_err(|_| anyhow::anyhow!("`{mode}` is not optional or required"))?;
        token_mode_for.insert(uuid, mode);
    }
    let mut key = [0u8; 32];
    getrandom::getrandom(&mut key)
        .map_err(|e| anyhow::anyhow!("no randomness for the token key: {e}"))?;
    let passwords: Arc<dyn PasswordStore> = match (&location, &feed_status) {
        (Some(l @ Location::Postgres(_)), Some(status)) => Arc::new(DatabasePasswords::new(
            l.clone(),
            store.clone(),
            status.clone(),
        )),
        _ => Arc::new(DirPasswordStore::open(&args.launch.password_dir)?),
    };
    let (access_log, log_writer) = AccessLog::start(args.access_log.clone(), args.access_log_queue)
        .context("starting the access log")?;
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let vendor = DynamicVendorData::new(args.vendordata_dynamic.clone());
    let state = Arc::new(State {
        responder: Responder {
            cache: RenderCache::new(settings, args.cache_memory << 20),
            tokens: TokenAuthority::new(key),
            token_mode: args.tokens,
            token_mode_for,
            dynamic_vendor_data: !vendor.is_empty(),
        },
        store: store.clone(),
        identity: IdentityConfig {
            trusted_proxies: args.trusted_proxy.clone(),
            shared_secret,
        },
        passwords,
        vendor,
        limiter: (args.rate_limit > 0.0)
            .then(|| RateLimiter::new(args.rate_limit, args.rate_burst, 1_000_000)),
        metrics: Metrics::default(),
        access_log,
        limits: Limits {
            header_read_timeout: Duration::from_secs(args.header_read_timeout),
            idle_timeout: Duration::from_secs(args.idle_timeout),
            body_read_timeout: Duration::from_secs(args.header_read_timeout),
            max_body_bytes: args.max_body_bytes,
            max_header_bytes: args.max_header_bytes,
            max_connections: args.max_connections,
            shutdown_grace: Duration::from_secs(args.shutdown_grace),
        },
        token_hop_limit: args.token_hop_limit,
        signer,
        events: EventStore::new(ec2_args::events_dir(&data)),
        feed: feed_status.clone(),
        shutdown: stop_rx.clone(),
    });

    let listeners = bind(&args).await?;
    if listeners.is_empty() && args.launch.instance_listeners_file.is_none() {
        bail!("nothing to listen on");
    }
    for l in &listeners {
        tracing::info!(listener = %l.describe(), "listening");
    }
    if let Some(p) = &args.launch.pid_file {
        write_pid_file(p)?;
    }
    let mut tasks = tokio::task::JoinSet::new();
    if let Some(addr) = args.metrics_listen {
        let l = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("cannot listen on {addr}"))?;
        let bound = l.local_addr().map(|a| a.to_string()).unwrap_or_default();
        tracing::info!(listener = %bound, "metrics listening");
        tasks.spawn(metadata_server::ops::serve_metrics(
            state.clone(),
            l,
            stop_rx.clone(),
        ));
    }
    let interval = Duration::from_secs(args.watch_interval.max(1));
    match (source, &feed_status) {
        (Some(source), _) => {
            tasks.spawn(watch_source(source, store, interval, stop_rx.clone()));
        }
        (None, Some(status)) => {
            tasks.spawn(feed::resnapshot_on_hangup(status.clone(), stop_rx.clone()));
        }
        (None, None) => {}
    }
    let workers = Workers::start(
        args.workers.unwrap_or_else(Workers::default_count),
        args.worker_affinity == WorkerAffinity::Cpu,
    )
    .context("starting the connection workers")?;
    tasks.spawn(serve(
        state,
        listeners,
        args.launch.instance_listeners_file.clone(),
        interval,
        Arc::new(workers),
        stop_rx,
    ));

    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = term.recv() => {},
        _ = tokio::signal::ctrl_c() => {},
    }
    tracing::info!("shutting down: no new connections, finishing open ones");
    let _ = stop_tx.send(true);
    while tasks.join_next().await.is_some() {}
    if let Some(f) = follower {
        f.status.stop();
    }
    if let Some(w) = log_writer {
        w.finish(Duration::from_secs(1));
    }
    if let Some(p) = &args.launch.pid_file {
        let _ = std::fs::remove_file(p);
    }
    tracing::info!("stopped");
    Ok(())
}

/// The relay: binds in the host namespace, enters the instance's, binds there, and
/// only then starts a runtime (a thread made before `setns` would stay outside).
fn run_relay(args: RelayArgs) -> Result<()> {
    use metadata_server::relay::{self, Route, Target};
    // Our own session: a terminal closing behind compute does not reach us.
    let _ = rustix::process::setsid();
    let ssh = match args.ssh_listen {
        Some(addr) => Some(relay::bind(addr)?),
        None => None,
    };
    if let (Some(l), Some(file)) = (&ssh, &args.ssh_port_file) {
        let port = l
            .local_addr()
            .context("reading the SSH listener's address")?
            .port();
        compute_io::atomic::replace(file, format!("{port}\n").as_bytes(), 0o644)?;
    }
    relay::enter_namespace(&args.netns)?;
    let metadata = relay::bind(args.metadata_listen)?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?;
    rt.block_on(async move {
        let mut routes = vec![Route {
            listener: tokio::net::TcpListener::from_std(metadata)?,
            target: Target::Unix(args.metadata_socket.clone()),
        }];
        if let (Some(l), Some(target)) = (ssh, args.ssh_target) {
            routes.push(Route {
                listener: tokio::net::TcpListener::from_std(l)?,
                target: Target::Tcp(target),
            });
        }
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        write_pid_file(&args.pid_file)?;
        tracing::info!(instance = %args.instance, netns = %args.netns.display(), "relay up");
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let served = tokio::spawn(relay::serve(routes, stop_rx));
        tokio::select! {
            _ = term.recv() => {},
            _ = tokio::signal::ctrl_c() => {},
        }
        let _ = stop_tx.send(true);
        let _ = served.await;
        let _ = std::fs::remove_file(&args.pid_file);
        Ok(())
    })
}

/// Writes our pid atomically, so a reader never sees half of it.
fn write_pid_file(path: &std::path::Path) -> Result<()> {
    let pid = format!("{}\n", std::process::id());
    compute_io::atomic::replace(path, pid.as_bytes(), 0o600)?;
    Ok(())
}

fn run_password(action: PasswordAction) -> Result<i32> {
    let (PasswordAction::Get(a) | PasswordAction::Clear(a)) = &action;
    if let Some(url) = &a.database {
        return run_database_password(&action, url);
    }
    match action {
        PasswordAction::Get(a) => {
            let store = DirPasswordStore::open(&a.password_dir)?;
            match store.get(a.instance)? {
                Some(p) => {
                    use std::io::Write;
                    std::io::stdout().write_all(&p)?;
                    Ok(0)
                }
                None => {
                    eprintln!("no password stored for {}", a.instance);
                    Ok(3)
                }
            }
        }
        PasswordAction::Clear(a) => {
            let store = DirPasswordStore::open(&a.password_dir)?;
            if !store.clear(a.instance)? {
                eprintln!("no password was stored for {}", a.instance);
            }
            Ok(0)
        }
    }
}

/// `password get|clear --database URL`: the row the server keeps it in.
fn run_database_password(action: &PasswordAction, url: &str) -> Result<i32> {
    let mut feed = compute_store::open_feed(&Location::Postgres(url.to_owned()))?;
    match action {
        PasswordAction::Get(a) => match feed.password(&a.instance.hyphenated().to_string())? {
            Some(p) => {
                print!("{p}");
                Ok(0)
            }
            None => {
                eprintln!("no password stored for {}", a.instance);
                Ok(3)
            }
        },
        PasswordAction::Clear(a) => {
            if !feed.clear_password(&a.instance.hyphenated().to_string())? {
                eprintln!("no password was stored for {}", a.instance);
            }
            Ok(0)
        }
    }
}

fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(args) => tokio::runtime::Runtime::new()
            .context("starting the runtime")
            .and_then(|rt| rt.block_on(run_serve(*args)))
            .map(|()| 0),
        Command::Relay(args) => run_relay(args).map(|()| 0),
        Command::Password { action } => run_password(action),
        Command::IdentityCert(args) => ec2_args::identity_cert(&args)
            .map(|pem| {
                print!("{pem}");
                0
            })
            .map_err(Into::into),
        Command::Events { action } => ec2_args::run_events(action)
            .map(|(out, code)| {
                print!("{out}");
                code
            })
            .map_err(Into::into),
    };
    match result {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!("metadata-server: {e:#}");
            std::process::exit(1);
        }
    }
}

#[cfg(test)]
compute_flags::cli_help_tests!(Cli);

#[cfg(test)]
mod tests {
    use super::{Cli, Command};
    use clap::Parser;
    use compute_flags::metadata_server::{RelayArgs, ServeArgs, DEFAULT_METADATA_LISTEN};
    use compute_flags::SettingsArgs;
    use std::ffi::OsString;

    fn parse(args: Vec<OsString>) -> Command {
        let mut argv: Vec<OsString> = vec!["metadata-server".into()];
        argv.extend(args);
        Cli::try_parse_from(argv)
            .expect("compute's argv parses")
            .command
    }

    /// What compute-host starts: this command line reads it back unchanged.
    #[test]
    fn the_serve_and_relay_argv_compute_builds_parse_here() {
        let serve = ServeArgs {
            listen: vec!["169.254.169.254:80".parse().expect("addr")],
            instance_listeners_file: Some("/state/metadata/listeners".into()),
            state_dir: Some("/state".into()),
            database: None,
            host: None,
            data_dir: None,
            pid_file: Some("/state/metadata/server.pid".into()),
            password_dir: "/state/metadata/passwords".into(),
            settings: SettingsArgs {
                dhcp_domain: "novalocal".into(),
                vendor_data: Some("/state/metadata/vendor_data.json".into()),
                disable_version: vec!["2009-04-04".into()],
                skip_versions: None,
                serve_files: true,
            },
        };
        // A host agent's server: this host's instances of the shared database.
        let shared = ServeArgs {
            state_dir: None,
            database: Some("postgresql://nova@%2Frun%2Fpostgresql/compute".into()),
            host: Some("compute-a".into()),
            data_dir: Some("/state/metadata".into()),
            ..serve.clone()
        };
        for serve in [serve, shared] {
            match parse(serve.to_args()) {
                Command::Serve(cmd) => {
                    assert_eq!(cmd.launch, serve);
                    assert!(cmd.instances.is_none() && cmd.instance_listener.is_empty());
                }
                _ => panic!("not serve"),
            }
        }
        let relay = RelayArgs {
            instance: uuid::Uuid::from_u128(7),
            netns: "/run/netns/cmpt-x".into(),
            ssh_listen: Some("127.0.0.1:2222".parse().expect("addr")),
            ssh_target: Some("127.0.0.1:2222".parse().expect("addr")),
            ssh_port_file: None,
            metadata_listen: DEFAULT_METADATA_LISTEN,
            metadata_socket: "/state/metadata/x.sock".into(),
            pid_file: "/state/instances/x/relay.pid".into(),
        };
        match parse(relay.to_args()) {
            Command::Relay(args) => assert_eq!(args, relay),
            _ => panic!("not relay"),
        }
    }
}
