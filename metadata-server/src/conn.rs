//! One accepted connection as hyper writes to it: the socket and the IP TTL the next
//! reply should go out with (the IMDSv2 token reply leaves with the hop limit, so it
//! cannot travel past the host's first router; every other reply with the socket's
//! default). The idle timeout around it is `compute_io::idle`.

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Sockets whose IP TTL can be set (a unix socket has none: a no-op).
pub trait SetTtl {
    fn set_ip_ttl(&self, ttl: u32) -> io::Result<()>;
}

impl SetTtl for tokio::net::TcpStream {
    /// IPv4 (and IPv4-mapped) peers: the IP TTL; IPv6 peers: the unicast hop limit,
    /// which is what bounds their packets.
    fn set_ip_ttl(&self, ttl: u32) -> io::Result<()> {
        match self.local_addr()? {
            std::net::SocketAddr::V6(a) if a.ip().to_ipv4_mapped().is_none() => {
                let hops = u8::try_from(ttl).unwrap_or(u8::MAX);
                rustix::net::sockopt::set_ipv6_unicast_hops(self, Some(hops))
                    .map_err(io::Error::from)
            }
            _ => self.set_ttl(ttl),
        }
    }
}

impl SetTtl for tokio::net::UnixStream {
    fn set_ip_ttl(&self, _ttl: u32) -> io::Result<()> {
        Ok(())
    }
}

/// What a connection's replies normally leave with: the IP TTL, or for an IPv6
/// peer the unicast hop limit.
pub fn default_ttl(stream: &tokio::net::TcpStream) -> u32 {
    match stream.local_addr() {
        Ok(std::net::SocketAddr::V6(a)) if a.ip().to_ipv4_mapped().is_none() => {
            rustix::net::sockopt::ipv6_unicast_hops(stream)
                .map(u32::from)
                .unwrap_or(64)
        }
        _ => stream.ttl().unwrap_or(64),
    }
}

/// The TTL the service wants for what it writes next; shared with the service.
#[derive(Debug)]
pub struct TtlControl {
    pub default: u32,
    wanted: AtomicU32,
}

impl TtlControl {
    pub fn new(default: u32) -> Arc<Self> {
        Arc::new(TtlControl {
            default,
            wanted: AtomicU32::new(default),
        })
    }

    pub fn want(&self, ttl: u32) {
        self.wanted.store(ttl, Ordering::Relaxed);
    }
}

/// An accepted socket as hyper writes to it: each write first sets the TTL the
/// service last asked for, when it differs from the one applied. The idle timeout
/// is `compute_io::idle::Idle`, around this.
pub struct Conn<S> {
    inner: S,
    ttl: Arc<TtlControl>,
    applied: u32,
}

impl<S> Conn<S> {
    pub fn new(inner: S, ttl: Arc<TtlControl>) -> Self {
        let applied = ttl.default;
        Conn {
            inner,
            ttl,
            applied,
        }
    }
}

impl<S: SetTtl> Conn<S> {
    fn apply_ttl(&mut self) -> io::Result<()> {
        let wanted = self.ttl.wanted.load(Ordering::Relaxed);
        if wanted != self.applied {
            self.inner.set_ip_ttl(wanted)?;
            self.applied = wanted;
        }
        Ok(())
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Conn<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + SetTtl + Unpin> AsyncWrite for Conn<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.apply_ttl()?;
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.apply_ttl()?;
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
