//! The per-instance relay of QEMU user networking (run by compute as
//! `metadata-server relay`, one process per instance).
//!
//! libslirp refuses a `guestfwd` to 169.254.169.254 outside the guest's subnet, so
//! compute runs each guest's QEMU in its own network namespace where 169.254.169.254
//! sits on `lo`: slirp's outbound NAT then reaches the relay's listener there, and the
//! relay splices each connection to the metadata server's unix socket bound to this
//! instance (the connection itself says who is asking). The relay also carries the
//! host's SSH forward (127.0.0.1:PORT in the host namespace) to QEMU's `hostfwd`
//! inside the namespace.
//!
//! Order matters and is the caller's job: bind the host-side listener, move the
//! thread into the namespace (before any other thread exists), bind the namespace
//! listener, then start the runtime and call [`serve`]. This module only splices.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream, UnixStream};
use tokio::sync::{watch, Semaphore};

/// Bound on connections open at once through one relay.
pub const MAX_CONNECTIONS: usize = 256;
/// Bound on connecting to the far side.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    #[error("cannot listen on {addr}")]
    Bind {
        addr: String,
        source: std::io::Error,
    },
    #[error("cannot enter the network namespace {path}")]
    Namespace {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Where a relayed connection goes.
#[derive(Debug, Clone)]
pub enum Target {
    Tcp(SocketAddr),
    Unix(PathBuf),
}

/// One listener and where its connections go.
pub struct Route {
    pub listener: TcpListener,
    pub target: Target,
}

/// Moves the calling thread into the network namespace at `path` (`/run/netns/NAME`).
/// Sockets made before keep their namespace; threads made after inherit the new one.
pub fn enter_namespace(path: &std::path::Path) -> Result<(), RelayError> {
    let err = |source| RelayError::Namespace {
        path: path.to_owned(),
        source,
    };
    let file = std::fs::File::open(path).map_err(err)?;
    rustix::thread::move_into_link_name_space(
        std::os::fd::AsFd::as_fd(&file),
        Some(rustix::thread::LinkNameSpaceType::Network),
    )
    .map_err(|e| err(e.into()))
}

/// Binds a listener in the calling thread's current namespace (non-blocking, ready
/// for tokio).
pub fn bind(addr: SocketAddr) -> Result<std::net::TcpListener, RelayError> {
    let err = |source| RelayError::Bind {
        addr: addr.to_string(),
        source,
    };
    let l = std::net::TcpListener::bind(addr).map_err(err)?;
    l.set_nonblocking(true).map_err(err)?;
    Ok(l)
}

async fn splice<A>(mut inbound: A, target: &Target)
where
    A: AsyncRead + AsyncWrite + Unpin,
{
    let copied = match target {
        Target::Tcp(addr) => {
            match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(addr)).await {
                Ok(Ok(mut out)) => {
                    let _ = out.set_nodelay(true);
                    tokio::io::copy_bidirectional(&mut inbound, &mut out).await
                }
                Ok(Err(e)) => Err(e),
                Err(_) => Err(std::io::ErrorKind::TimedOut.into()),
            }
        }
        Target::Unix(path) => {
            match tokio::time::timeout(CONNECT_TIMEOUT, UnixStream::connect(path)).await {
                Ok(Ok(mut out)) => tokio::io::copy_bidirectional(&mut inbound, &mut out).await,
                Ok(Err(e)) => Err(e),
                Err(_) => Err(std::io::ErrorKind::TimedOut.into()),
            }
        }
    };
    if let Err(e) = copied {
        tracing::debug!(target = ?target, error = %e, "relayed connection ended");
    }
}

/// Accepts on every route until `shutdown` turns true; at most [`MAX_CONNECTIONS`]
/// are open at once (later callers wait in the backlog).
pub async fn serve(routes: Vec<Route>, shutdown: watch::Receiver<bool>) {
    let permits = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let mut tasks = tokio::task::JoinSet::new();
    for route in routes {
        let permits = permits.clone();
        let mut stop = shutdown.clone();
        tasks.spawn(async move {
            let target = Arc::new(route.target);
            loop {
                let Ok(permit) = permits.clone().acquire_owned().await else {
                    return;
                };
                let accepted = tokio::select! {
                    a = route.listener.accept() => a,
                    _ = stop.wait_for(|s| *s) => return,
                };
                match accepted {
                    Ok((stream, _)) => {
                        let _ = stream.set_nodelay(true);
                        let target = target.clone();
                        tokio::spawn(async move {
                            splice(stream, &target).await;
                            drop(permit);
                        });
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                }
            }
        });
    }
    while tasks.join_next().await.is_some() {}
}
