//! Listeners bound to one instance (`ADDR=UUID`): a TCP address or a unix socket path
//! whose every connection is that instance (QEMU user networking's `guestfwd`).
//!
//! Given on the command line they live as long as the server. Named in a listeners
//! file (one `ADDR=UUID` a line, `#` comments), they follow the file: compute rewrites
//! it (or sends SIGHUP) and listeners are bound or closed to match, the ones that did
//! not change keep their connections.

use crate::accept::Listener;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use uuid::Uuid;

/// Bound on the listeners file.
const MAX_FILE_BYTES: u64 = 4 << 20;

#[derive(Debug, thiserror::Error)]
pub enum ListenersError {
    #[error("`{0}` is not ADDR=UUID (a TCP address or a unix socket path, then an instance uuid)")]
    BadSpec(String),
    #[error("cannot listen on {addr}")]
    Bind {
        addr: String,
        source: std::io::Error,
    },
    #[error("cannot read {path}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is larger than {MAX_FILE_BYTES} bytes")]
    TooLarge { path: PathBuf },
}

/// Where a bound listener listens.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum BindAddr {
    Tcp(SocketAddr),
    Unix(PathBuf),
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ListenerSpec {
    pub addr: BindAddr,
    pub instance: Uuid,
}

impl std::str::FromStr for ListenerSpec {
    type Err = ListenersError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || ListenersError::BadSpec(s.chars().take(200).collect());
        let (addr, uuid) = s.trim().rsplit_once('=').ok_or_else(bad)?;
        let instance = Uuid::try_parse(uuid.trim()).map_err(|_| bad())?;
        let addr = match addr.parse::<SocketAddr>() {
            Ok(a) => BindAddr::Tcp(a),
            Err(_) if addr.starts_with('/') => BindAddr::Unix(PathBuf::from(addr)),
            Err(_) => return Err(bad()),
        };
        Ok(ListenerSpec { addr, instance })
    }
}

/// Parses a listeners file's text.
pub fn parse_file(text: &str) -> Result<Vec<ListenerSpec>, ListenersError> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::parse)
        .collect()
}

/// Binds one listener (a stale unix socket file is replaced).
pub async fn bind(spec: &ListenerSpec) -> Result<Listener, ListenersError> {
    match &spec.addr {
        BindAddr::Tcp(a) => tokio::net::TcpListener::bind(a)
            .await
            .map(|l| Listener::BoundTcp(l, spec.instance))
            .map_err(|source| ListenersError::Bind {
                addr: a.to_string(),
                source,
            }),
        BindAddr::Unix(p) => {
            let bind_err = |source| ListenersError::Bind {
                addr: p.display().to_string(),
                source,
            };
            if p.exists() {
                std::fs::remove_file(p).map_err(bind_err)?;
            }
            tokio::net::UnixListener::bind(p)
                .map(|l| Listener::BoundUnix(l, spec.instance, p.clone()))
                .map_err(bind_err)
        }
    }
}

fn read_file(path: &Path) -> Result<Vec<ListenerSpec>, ListenersError> {
    use std::io::Read;
    let read_err = |source| ListenersError::Read {
        path: path.to_owned(),
        source,
    };
    let mut text = String::new();
    std::fs::File::open(path)
        .map_err(read_err)?
        .take(MAX_FILE_BYTES + 1)
        .read_to_string(&mut text)
        .map_err(read_err)?;
    if text.len() as u64 > MAX_FILE_BYTES {
        return Err(ListenersError::TooLarge {
            path: path.to_owned(),
        });
    }
    parse_file(&text)
}

struct Running {
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

/// Keeps the bound listeners in step with `file` until `shutdown` turns true.
pub async fn manage<F>(
    file: PathBuf,
    interval: Duration,
    spawn: F,
    mut shutdown: watch::Receiver<bool>,
) where
    F: Fn(Listener, watch::Receiver<bool>) -> JoinHandle<()>,
{
    let mut running: HashMap<ListenerSpec, Running> = HashMap::new();
    let mut hup = signal(SignalKind::hangup()).ok();
    loop {
        let path = file.clone();
        match tokio::task::spawn_blocking(move || read_file(&path)).await {
            Ok(Ok(wanted)) => {
                let stale: Vec<ListenerSpec> = running
                    .keys()
                    .filter(|k| !wanted.contains(k))
                    .cloned()
                    .collect();
                for spec in stale {
                    if let Some(r) = running.remove(&spec) {
                        let _ = r.stop.send(true);
                        let _ = r.task.await;
                        if let BindAddr::Unix(p) = &spec.addr {
                            let _ = std::fs::remove_file(p);
                        }
                        tracing::info!(addr = ?spec.addr, instance = %spec.instance, "bound listener closed");
                    }
                }
                for spec in wanted {
                    if running.contains_key(&spec) {
                        continue;
                    }
                    match bind(&spec).await {
                        Ok(l) => {
                            let (stop, rx) = watch::channel(false);
                            tracing::info!(listener = %l.describe(), "bound listener opened");
                            running.insert(
                                spec,
                                Running {
                                    stop,
                                    task: spawn(l, rx),
                                },
                            );
                        }
                        Err(e) => {
                            tracing::error!(error = %crate::error_chain(&e), "bound listener not opened")
                        }
                    }
                }
            }
            Ok(Err(e)) => {
                tracing::error!(error = %crate::error_chain(&e), "listeners file not applied; keeping the current listeners")
            }
            Err(e) => tracing::error!(error = %e, "listeners file task failed"),
        }
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            Some(()) = async { match hup.as_mut() { Some(h) => h.recv().await, None => std::future::pending().await } } => {}
            _ = shutdown.wait_for(|s| *s) => break,
        }
    }
    for (spec, r) in running {
        let _ = r.stop.send(true);
        let _ = r.task.await;
        if let BindAddr::Unix(p) = &spec.addr {
            let _ = std::fs::remove_file(p);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_specs() {
        let u = "3c3c3c3c-0000-4000-8000-000000000003";
        let specs = parse_file(&format!(
            "# comment\n127.0.0.1:80={u}\n\n/run/vm.sock={u}\n[::1]:81={u}\n"
        ))
        .expect("ok");
        assert_eq!(specs.len(), 3);
        assert_eq!(specs[1].addr, BindAddr::Unix("/run/vm.sock".into()));
        assert!(parse_file("nonsense").is_err());
        assert!(parse_file("127.0.0.1:80=notauuid").is_err());
        assert!(parse_file(&format!("relative.sock={u}")).is_err());
    }
}
