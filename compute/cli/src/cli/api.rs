//! `compute api`: the OpenStack API (`compute_api`) on three listeners, Compute
//! (`/v2.1`), Image (`/v2`) and Identity (`/v3`), over this deployment's store.
//! Here: its flags, the token key, the runtime and the signals (SIGTERM or SIGINT
//! stop accepting and let open requests finish). On a state folder it also runs
//! the host's agent on a thread (`compute_host::agent::run_local`): guests start,
//! stop and go where the API queued it, as host agents do on a shared database.

use super::host::HostArgs;
use anyhow::{bail, Context};
use compute_api::auth::token::TokenSigner;
use compute_api::auth::{AuthMode, Authenticator};
use compute_api::{Api, Limits, PublicUrls, Service};
use compute_host::agent::{self, Wake};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// How often the state folder's agent looks at its queue when nothing rang.
const LOCAL_POLL: Duration = Duration::from_secs(2);

/// How requests are authenticated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum AuthArg {
    /// Tokens from the Identity listener (users, projects and roles from
    /// `compute user-create`, `project-create`, `role-add`).
    #[default]
    Keystone,
    /// No authentication: every request acts as the operator, admin of the default
    /// project (clients use `auth_type: none`). Loopback listeners only, unless
    /// --insecure-noauth.
    Noauth,
}

#[derive(Debug, clap::Args)]
pub struct ApiArgs {
    /// Where the Compute API listens (`http://ADDR/v2.1`; port 0 picks a free one).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8774")]
    pub compute_listen: SocketAddr,
    /// Where the Image API listens (`http://ADDR/v2`).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:9292")]
    pub image_listen: SocketAddr,
    /// Where the Identity API listens (`http://ADDR/v3`).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:5000")]
    pub identity_listen: SocketAddr,
    /// How requests are authenticated.
    #[arg(long, value_enum, default_value_t)]
    pub auth: AuthArg,
    /// Allow --auth noauth on listeners that are not loopback addresses (anyone who
    /// reaches them is the cloud's admin).
    #[arg(long)]
    pub insecure_noauth: bool,
    /// How long a token lives, in seconds (keystoneauth gets a new one when less
    /// than 120 s are left).
    #[arg(long, value_name = "SECS", default_value_t = 3600,
          value_parser = clap::value_parser!(u64).range(1..=7 * 24 * 3600))]
    pub token_expiry: u64,
    /// The key tokens are signed with (32 bytes, mode 0600, made when missing;
    /// replacing it ends every token). Default: STATE/api/token.key.
    #[arg(long, value_name = "FILE")]
    pub token_key: Option<PathBuf>,
    /// The Compute URL clients reach, for the catalog and links (default: the
    /// listener's, with the host the client asked for).
    #[arg(long, value_name = "URL")]
    pub compute_url: Option<String>,
    /// The Image URL clients reach.
    #[arg(long, value_name = "URL")]
    pub image_url: Option<String>,
    /// The Identity URL clients reach (ending in /v3).
    #[arg(long, value_name = "URL")]
    pub identity_url: Option<String>,
    /// The largest request body, in bytes.
    #[arg(long, value_name = "BYTES", default_value_t = 112 * 1024)]
    pub max_body_bytes: usize,
    /// How deep a JSON request body may nest.
    #[arg(long, value_name = "LEVELS", default_value_t = 32)]
    pub max_json_depth: usize,
    /// Seconds a client has to send a request's headers.
    #[arg(long, value_name = "SECS", default_value_t = 10)]
    pub header_read_timeout: u64,
    /// Seconds a client has to send a request's body.
    #[arg(long, value_name = "SECS", default_value_t = 30)]
    pub body_read_timeout: u64,
    /// Seconds without a byte either way before a connection is closed.
    #[arg(long, value_name = "SECS", default_value_t = 60)]
    pub idle_timeout: u64,
    /// Connections open at once, over the three listeners.
    #[arg(long, value_name = "N", default_value_t = 1024)]
    pub max_connections: usize,
    /// The largest image upload (PUT /v2/images/{id}/file), in bytes; it is
    /// streamed to the state folder, never held in memory.
    #[arg(long, value_name = "BYTES", default_value_t = 16 << 30)]
    pub max_image_bytes: u64,
    /// Seconds an image upload's claim holds unless its process renews it (every
    /// sixth of it): an upload whose process died is ended (killed) this long
    /// after, by any API process on the database.
    #[arg(long, value_name = "SECS", default_value_t = 60)]
    pub upload_lease: u64,
    /// Seconds `os-stop` gives a guest's ACPI shutdown before a hard stop (Nova's
    /// shutdown_timeout).
    #[arg(long, value_name = "SECS", default_value_t = 60,
          value_parser = clap::value_parser!(u64).range(0..=3600))]
    pub shutdown_timeout: u64,
    /// Database connections (requests being handled) at once.
    #[arg(long, value_name = "N", default_value_t = 8)]
    pub max_db_connections: usize,
}

fn url(v: &Option<String>) -> Option<String> {
    v.as_ref().map(|u| u.trim_end_matches('/').to_owned())
}

pub fn run(host: &HostArgs, a: ApiArgs) -> anyhow::Result<ExitCode> {
    let listens = [
        (Service::Compute, a.compute_listen),
        (Service::Image, a.image_listen),
        (Service::Identity, a.identity_listen),
    ];
    if a.auth == AuthArg::Noauth && !a.insecure_noauth {
        if let Some((s, addr)) = listens.iter().find(|(_, addr)| !addr.ip().is_loopback()) {
            bail!(
                "--auth noauth on the {} listener {addr}, which is not a loopback address: \
                 anyone reaching it would be the cloud's admin (add --insecure-noauth if that \
                 is meant)",
                s.name()
            );
        }
    }
    let location = host.location()?;
    let key_path = a
        .token_key
        .clone()
        .unwrap_or_else(|| host.state_dir.join("api").join("token.key"));
    let key = compute_api::auth::key::load_or_create(&key_path)?;
    let pool = Arc::new(compute_api::pool::StorePool::new(
        location,
        host.cidr,
        a.max_db_connections,
    ));
    pool.check().context("cannot open the store")?;
    // On a state folder this process is also the host's agent: it carries out the
    // work the API queues, as `compute host-agent` does for a shared database.
    let agent_stop = Arc::new(AtomicBool::new(false));
    let local = match &host.database {
        Some(_) => None,
        None => {
            let wake = Arc::new(Wake::default());
            let (w, stop, args) = (wake.clone(), agent_stop.clone(), host.clone());
            // The host is opened (and reconciled) on its own thread: it is not `Send`.
            let (opened_tx, opened_rx) = std::sync::mpsc::channel();
            let thread = std::thread::Builder::new()
                .name("local-agent".into())
                .spawn(
                    move || match args.open().and_then(|h| Ok((h, args.store_only()?))) {
                        Ok((h, beat)) => {
                            let _ = opened_tx.send(Ok(()));
                            agent::run_local(h, beat, &w, LOCAL_POLL, &stop);
                        }
                        Err(e) => {
                            let _ = opened_tx.send(Err(e));
                        }
                    },
                )
                .context("cannot start the local agent")?;
            match opened_rx.recv() {
                Ok(Ok(())) => {}
                Ok(Err(e)) => return Err(e),
                Err(_) => bail!("the local agent ended before opening the state folder"),
            }
            Some((wake, thread))
        }
    };
    let wake = local.as_ref().map(|(w, _)| w.clone());
    // The last handle on the pool is dropped here, after the runtime: a PostgreSQL
    // connection closes by blocking on its own runtime, which may not happen inside
    // another one.
    let keep = pool.clone();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .max_blocking_threads(a.max_db_connections.max(1) + 4)
        .enable_all()
        .build()
        .context("cannot start the runtime")?;
    runtime.block_on(async move {
        let mut listeners = Vec::new();
        let mut bound = Vec::new();
        for (service, addr) in listens {
            let l = tokio::net::TcpListener::bind(addr)
                .await
                .with_context(|| format!("cannot listen on {addr} ({})", service.name()))?;
            let local = l.local_addr().context("listener address")?;
            bound.push((service, local));
            listeners.push((service, l));
        }
        let api = Arc::new(Api {
            pool,
            auth: Authenticator {
                mode: match a.auth {
                    AuthArg::Keystone => AuthMode::Keystone,
                    AuthArg::Noauth => AuthMode::NoAuth,
                },
                signer: TokenSigner::new(key),
            },
            token_lifetime: Duration::from_secs(a.token_expiry),
            public: PublicUrls {
                compute: url(&a.compute_url),
                image: url(&a.image_url),
                identity: url(&a.identity_url),
            },
            limits: Limits {
                max_body_bytes: a.max_body_bytes,
                max_json_depth: a.max_json_depth,
                header_read_timeout: Duration::from_secs(a.header_read_timeout.max(1)),
                body_read_timeout: Duration::from_secs(a.body_read_timeout.max(1)),
                idle_timeout: Duration::from_secs(a.idle_timeout.max(1)),
                max_connections: a.max_connections,
                max_store_connections: a.max_db_connections,
                max_image_bytes: a.max_image_bytes,
                upload_lease: Duration::from_secs(a.upload_lease.max(1)),
                ..Limits::default()
            },
            bound,
            agent: wake.clone(),
            shutdown_timeout: Duration::from_secs(a.shutdown_timeout),
            state_dir: host.state_dir.clone(),
            posted_passwords: wake
                .is_some()
                .then(|| compute_host::driver::layout::Layout::new(&host.state_dir)),
        });
        let urls = api.urls(None);
        // One line per service on standard output: what scripts (and tests) read.
        println!("compute {}", urls.compute);
        println!("image {}", urls.image);
        println!("identity {}", urls.identity);
        {
            use std::io::Write;
            let _ = std::io::stdout().flush();
        }
        tracing::info!(
            compute = urls.compute,
            image = urls.image,
            identity = urls.identity,
            auth = ?a.auth,
            "OpenStack API listening"
        );
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        tokio::spawn(async move {
            let mut term =
                match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                    Ok(s) => s,
                    Err(e) => {
                        tracing::error!(error = %e, "cannot handle SIGTERM");
                        return;
                    }
                };
            tokio::select! {
                _ = term.recv() => {},
                _ = tokio::signal::ctrl_c() => {},
            }
            tracing::info!("stopping: no new connections, open requests finish");
            let _ = stop_tx.send(true);
        });
        compute_api::server::serve(api, listeners, stop_rx).await;
        Ok::<_, anyhow::Error>(())
    })?;
    drop(runtime);
    if let Some((wake, thread)) = local {
        agent_stop.store(true, Ordering::SeqCst);
        wake.ring();
        let _ = thread.join();
    }
    drop(keep);
    Ok(ExitCode::SUCCESS)
}
