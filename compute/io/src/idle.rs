//! A stream that fails once no byte has moved either way for a set time: the idle
//! timeout of a server's connections (the metadata server's and the compute API's).
//!
//! It owns only that clock; what the stream is and what a server does when it fails
//! (close the connection) are its callers'.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

/// `inner`, failing a read or write that would wait once `idle` has passed without
/// traffic (an `io::ErrorKind::TimedOut` error).
pub struct Idle<S> {
    inner: S,
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
    armed: Option<Waker>,
}

impl<S> Idle<S> {
    /// Must be called inside a tokio runtime with its timer enabled.
    pub fn new(inner: S, idle: Duration) -> Self {
        Idle {
            inner,
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

    /// A read or write as it came back: traffic moves the clock; a wait past the
    /// timeout fails.
    fn moved<T>(&mut self, r: Poll<io::Result<T>>, cx: &mut Context<'_>) -> Poll<io::Result<T>> {
        match r {
            Poll::Ready(r) => {
                self.touch();
                Poll::Ready(r)
            }
            Poll::Pending if self.expired(cx) => Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "connection idle too long",
            ))),
            Poll::Pending => Poll::Pending,
        }
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

impl<S: AsyncRead + Unpin> AsyncRead for Idle<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        self.moved(r, cx)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Idle<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.moved(r, cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.moved(r, cx)
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

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test(flavor = "current_thread")]
    async fn a_silent_stream_fails_after_the_timeout_and_a_busy_one_does_not() {
        let (near, mut far) = tokio::io::duplex(64);
        let mut s = Idle::new(near, Duration::from_millis(300));
        // Traffic every 100 ms for 600 ms: twice the timeout, never idle for it.
        let talk = async {
            for _ in 0..6 {
                tokio::time::sleep(Duration::from_millis(100)).await;
                far.write_all(b"x").await.expect("the far end writes");
            }
            far
        };
        let read = async {
            let mut b = [0u8; 1];
            for _ in 0..6 {
                s.read_exact(&mut b).await.expect("a busy stream reads");
            }
        };
        let (mut far, ()) = tokio::join!(talk, read);
        // Then silence: the next read fails with TimedOut, within a tick of 300 ms.
        let started = std::time::Instant::now();
        let mut b = [0u8; 1];
        let e = s.read(&mut b).await.expect_err("a silent stream times out");
        assert_eq!(e.kind(), io::ErrorKind::TimedOut);
        assert!(
            started.elapsed() >= Duration::from_millis(250),
            "{:?}",
            started.elapsed()
        );
        // The far end's writes were not what timed out: it can still write.
        far.write_all(b"y").await.expect("the far end still writes");
    }
}
