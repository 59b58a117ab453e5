//! One accepted connection as hyper sees it: the socket, plus an idle timeout (no
//! byte either way for that long closes it) and the IP TTL the next reply should go
//! out with (the IMDSv2 token reply leaves with the hop limit, so it cannot travel
//! past the host's first router; every other reply with the socket's default).

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

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

pub struct Conn<S> {
    inner: S,
    ttl: Arc<TtlControl>,
    applied: u32,
    idle: Duration,
    /// When a byte last moved either way, on the coarse monotonic clock (a few
    /// milliseconds fine, and read without the timestamp counter: this is read
    /// several times a request). The timer is not moved on every read and write
    /// (that would touch the runtime's timer wheel twice a request): it fires at the
    /// earliest possible expiry, and is pushed back then if there was traffic.
    last_active: Duration,
    deadline: Pin<Box<Sleep>>,
    /// The waker the deadline last registered: while it is this task's and the
    /// deadline has not passed, a read that would block need not poll the timer
    /// again (which costs a trip through the runtime's timer every request).
    armed: Option<std::task::Waker>,
}

impl<S> Conn<S> {
    pub fn new(inner: S, ttl: Arc<TtlControl>, idle: Duration) -> Self {
        let applied = ttl.default;
        Conn {
            inner,
            ttl,
            applied,
            idle,
            last_active: coarse_now(),
            deadline: Box::pin(tokio::time::sleep(idle)),
            armed: None,
        }
    }

    fn touch(&mut self) {
        self.last_active = coarse_now();
    }

    fn expired(&mut self, cx: &mut Context<'_>) -> bool {
        if let Some(w) = &self.armed {
            if w.will_wake(cx.waker()) && !self.deadline.is_elapsed() {
                return false;
            }
        }
        self.armed = Some(cx.waker().clone());
        while self.deadline.as_mut().poll(cx).is_ready() {
            let due = self.last_active + self.idle;
            let now = coarse_now();
            if due <= now {
                return true;
            }
            self.deadline.as_mut().reset(Instant::now() + (due - now));
        }
        false
    }
}

/// The coarse monotonic clock (`CLOCK_MONOTONIC_COARSE`): the time of the last tick.
fn coarse_now() -> Duration {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::MonotonicCoarse);
    Duration::new(
        u64::try_from(t.tv_sec).unwrap_or(0),
        u32::try_from(t.tv_nsec).unwrap_or(0),
    )
}

fn idle_error() -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, "connection idle too long")
}

impl<S: AsyncRead + Unpin> AsyncRead for Conn<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match Pin::new(&mut self.inner).poll_read(cx, buf) {
            Poll::Ready(r) => {
                self.touch();
                Poll::Ready(r)
            }
            Poll::Pending if self.expired(cx) => Poll::Ready(Err(idle_error())),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<S: AsyncWrite + SetTtl + Unpin> AsyncWrite for Conn<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let wanted = self.ttl.wanted.load(Ordering::Relaxed);
        if wanted != self.applied {
            self.inner.set_ip_ttl(wanted)?;
            self.applied = wanted;
        }
        match Pin::new(&mut self.inner).poll_write(cx, buf) {
            Poll::Ready(r) => {
                self.touch();
                Poll::Ready(r)
            }
            Poll::Pending if self.expired(cx) => Poll::Ready(Err(idle_error())),
            Poll::Pending => Poll::Pending,
        }
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let wanted = self.ttl.wanted.load(Ordering::Relaxed);
        if wanted != self.applied {
            self.inner.set_ip_ttl(wanted)?;
            self.applied = wanted;
        }
        match Pin::new(&mut self.inner).poll_write_vectored(cx, bufs) {
            Poll::Ready(r) => {
                self.touch();
                Poll::Ready(r)
            }
            Poll::Pending if self.expired(cx) => Poll::Ready(Err(idle_error())),
            Poll::Pending => Poll::Pending,
        }
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
