//! The sockets the service accepts on, and what accepting one gives: a TCP peer
//! (identified per request) or a connection that is one instance by construction (a
//! listener bound to it). Shared by the server's accept loops and the listeners file
//! that opens and closes bound listeners at run time; it knows neither.

use std::net::SocketAddr;
use std::path::PathBuf;
use tokio::net::{TcpListener, TcpStream, UnixListener, UnixStream};
use uuid::Uuid;

/// A socket to accept on.
pub enum Listener {
    /// `--listen`: callers identified per request.
    Tcp(TcpListener),
    /// `--instance-listener ADDR=UUID` on a TCP address.
    BoundTcp(TcpListener, Uuid),
    /// `--instance-listener PATH=UUID` on a unix socket (QEMU `guestfwd`).
    BoundUnix(UnixListener, Uuid, PathBuf),
}

impl Listener {
    pub fn describe(&self) -> String {
        match self {
            Listener::Tcp(l) => l.local_addr().map(|a| a.to_string()).unwrap_or_default(),
            Listener::BoundTcp(l, u) => {
                format!(
                    "{} (instance {u})",
                    l.local_addr().map(|a| a.to_string()).unwrap_or_default()
                )
            }
            Listener::BoundUnix(_, u, p) => format!("{} (instance {u})", p.display()),
        }
    }

    /// The next connection.
    pub async fn accept(&self) -> std::io::Result<Accepted> {
        Ok(match self {
            Listener::Tcp(l) => {
                let (s, a) = l.accept().await?;
                Accepted::Tcp(s, a, None)
            }
            Listener::BoundTcp(l, u) => {
                let (s, a) = l.accept().await?;
                Accepted::Tcp(s, a, Some(*u))
            }
            Listener::BoundUnix(l, u, p) => {
                let (s, _) = l.accept().await?;
                Accepted::Unix(s, *u, p.display().to_string())
            }
        })
    }
}

/// An accepted connection.
pub enum Accepted {
    /// A TCP peer; the instance when the listener is bound to one.
    Tcp(TcpStream, SocketAddr, Option<Uuid>),
    /// A unix-socket connection of a bound listener, with the socket's path.
    Unix(UnixStream, Uuid, String),
}
