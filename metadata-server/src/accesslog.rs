//! The access log: one line per answered request, written off the request path.
//!
//! A request hands a fixed-size [`Record`] to a bounded queue and never waits: when
//! the queue is full (the destination stalls, or cannot keep up), the line is
//! dropped and counted, and `/metrics` shows the count. One writer thread formats
//! records in batches into a buffer and writes it when the queue runs dry, then
//! sleeps a moment while records keep coming: a flood costs a few large writes a
//! second rather than one per request, and a request never has to wake the writer.
//! The writer opens the destination itself: opening a FIFO nobody reads blocks it,
//! not a request.
//!
//! A line: `TIME access: peer=ADDR instance=UUID|- method=M path=/normalised
//! status=N bytes=N micros=N` (the path as the service read it, `-` when it names
//! nothing). No headers, no bodies, no tokens.

use compute::metadata::MetadataPath;
use http::Method;
use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use uuid::Uuid;

/// Where the lines go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Destination {
    /// No access log.
    Off,
    /// Standard error, with the server's own log.
    Stderr,
    /// Appended to a file (created when missing).
    File(PathBuf),
}

impl FromStr for Destination {
    type Err = std::convert::Infallible;

    /// `off`, `stderr` (or `-`), or the path of a file.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "off" => Destination::Off,
            "stderr" | "-" => Destination::Stderr,
            path => Destination::File(PathBuf::from(path)),
        })
    }
}

/// Who the connection is, as the log names it.
#[derive(Debug, Clone)]
pub enum LogPeer {
    Tcp(SocketAddr),
    /// A bound unix-socket listener: its path.
    Unix(Arc<str>),
}

impl std::fmt::Display for LogPeer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LogPeer::Tcp(a) => a.fmt(f),
            LogPeer::Unix(p) => f.write_str(p),
        }
    }
}

/// One answered request.
pub struct Record {
    at: SystemTime,
    peer: LogPeer,
    instance: Option<Uuid>,
    method: Method,
    /// The path as the service read it (`None`: it names nothing). Held inline
    /// for the usual few short segments, so a record costs no allocation.
    path: Option<MetadataPath>,
    status: u16,
    bytes: u64,
    micros: u64,
}

impl Record {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        at: SystemTime,
        peer: &LogPeer,
        instance: Option<Uuid>,
        method: &Method,
        path: Option<MetadataPath>,
        status: u16,
        bytes: u64,
        micros: u64,
    ) -> Self {
        Record {
            at,
            peer: peer.clone(),
            instance,
            method: method.clone(),
            path,
            status,
            bytes,
            micros,
        }
    }

    fn write_to(&self, out: &mut impl Write, stamp: &mut Stamp) -> std::io::Result<()> {
        stamp.write(out, self.at)?;
        out.write_all(b" access: peer=")?;
        match &self.peer {
            LogPeer::Tcp(std::net::SocketAddr::V4(a)) => {
                let mut n = itoa::Buffer::new();
                for (i, octet) in a.ip().octets().into_iter().enumerate() {
                    if i > 0 {
                        out.write_all(b".")?;
                    }
                    out.write_all(n.format(octet).as_bytes())?;
                }
                out.write_all(b":")?;
                out.write_all(n.format(a.port()).as_bytes())?;
            }
            LogPeer::Tcp(a) => write!(out, "{a}")?,
            LogPeer::Unix(p) => out.write_all(p.as_bytes())?,
        }
        out.write_all(b" instance=")?;
        match self.instance {
            Some(u) => out.write_all(
                u.hyphenated()
                    .encode_lower(&mut Uuid::encode_buffer())
                    .as_bytes(),
            )?,
            None => out.write_all(b"-")?,
        }
        out.write_all(b" method=")?;
        out.write_all(self.method.as_str().as_bytes())?;
        out.write_all(b" path=")?;
        match &self.path {
            Some(p) => {
                for s in p.segments() {
                    out.write_all(b"/")?;
                    write_escaped(out, s)?;
                }
            }
            None => out.write_all(b"-")?,
        }
        let mut n = itoa::Buffer::new();
        out.write_all(b" status=")?;
        out.write_all(n.format(self.status).as_bytes())?;
        out.write_all(b" bytes=")?;
        out.write_all(n.format(self.bytes).as_bytes())?;
        out.write_all(b" micros=")?;
        out.write_all(n.format(self.micros).as_bytes())?;
        out.write_all(b"\n")
    }
}

/// The writer's clock text: a line's time down to the second is formatted once a
/// second, not once a line.
#[derive(Default)]
struct Stamp {
    /// The second `text` holds, and `YYYY-MM-DDTHH:MM:SS.` for it.
    second: Option<u64>,
    text: Vec<u8>,
}

impl Stamp {
    /// `YYYY-MM-DDTHH:MM:SS.ffffffZ` (UTC) for `at`.
    fn write(&mut self, out: &mut impl Write, at: SystemTime) -> std::io::Result<()> {
        let since = at
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default();
        if self.second != Some(since.as_secs()) {
            self.text.clear();
            time::OffsetDateTime::from(
                SystemTime::UNIX_EPOCH + Duration::from_secs(since.as_secs()),
            )
            .format_into(&mut self.text, TIME_FORMAT)
            .map_err(std::io::Error::other)?;
            self.second = Some(since.as_secs());
        }
        out.write_all(&self.text)?;
        let micros = since.subsec_micros();
        let mut digits = *b"000000Z";
        let mut n = itoa::Buffer::new();
        let text = n.format(micros).as_bytes();
        digits[6 - text.len()..6].copy_from_slice(text);
        out.write_all(&digits)
    }
}

/// A decoded segment may hold anything: spaces, quotes and controls are written as
/// `%XX`, so a line stays one line of space-separated fields.
fn write_escaped(out: &mut impl Write, s: &str) -> std::io::Result<()> {
    for b in s.bytes() {
        if b.is_ascii_graphic() && b != b'%' && b != b'"' {
            out.write_all(&[b])?;
        } else {
            write!(out, "%{b:02X}")?;
        }
    }
    Ok(())
}

const TIME_FORMAT: &[time::format_description::BorrowedFormatItem<'static>] =
    time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].");

/// Lines written and dropped so far.
#[derive(Debug, Default)]
pub struct LogCounters {
    written: AtomicU64,
    dropped: AtomicU64,
}

impl LogCounters {
    pub fn written(&self) -> u64 {
        self.written.load(Ordering::Relaxed)
    }

    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

/// The request side of the log: hands records to the writer, never waits.
pub struct AccessLog {
    queue: Option<SyncSender<Record>>,
    counters: Arc<LogCounters>,
}

/// The writer thread; it ends once every [`AccessLog`] feeding it is dropped and the
/// queue is written.
pub struct LogWriter(std::thread::JoinHandle<()>);

impl LogWriter {
    /// Gives the writer up to `grace` to write what is queued (a stalled destination
    /// is left behind).
    pub fn finish(self, grace: Duration) {
        let until = std::time::Instant::now() + grace;
        while !self.0.is_finished() && std::time::Instant::now() < until {
            std::thread::sleep(Duration::from_millis(5));
        }
        if self.0.is_finished() {
            let _ = self.0.join();
        }
    }
}

/// Records queued at most by default: a few MiB, many batches' worth.
pub const DEFAULT_QUEUE: usize = 8192;

/// Bytes gathered before a write, when the queue does not run dry first.
const BATCH_BYTES: usize = 64 * 1024;

/// How long the writer sleeps between batches while records keep coming: lines
/// reach the destination this late at most, and the queue must hold what arrives
/// meanwhile (at 200,000 requests a second, 200 records).
const BATCH_INTERVAL: Duration = Duration::from_millis(1);

impl AccessLog {
    /// No log: records are neither queued nor counted.
    pub fn off() -> Self {
        AccessLog {
            queue: None,
            counters: Arc::default(),
        }
    }

    /// A log to `destination` with room for `queue` records in flight; the writer
    /// thread starts now (and opens the destination itself).
    pub fn start(
        destination: Destination,
        queue: usize,
    ) -> std::io::Result<(Self, Option<LogWriter>)> {
        let open: Box<dyn FnOnce() -> std::io::Result<Box<dyn Write>> + Send> = match destination {
            Destination::Off => return Ok((AccessLog::off(), None)),
            Destination::Stderr => Box::new(|| Ok(Box::new(std::io::stderr()) as Box<dyn Write>)),
            Destination::File(path) => Box::new(move || {
                let f = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&path)
                    .map_err(|e| {
                        std::io::Error::new(e.kind(), format!("{}: {e}", path.display()))
                    })?;
                Ok(Box::new(f) as Box<dyn Write>)
            }),
        };
        let (tx, rx) = sync_channel(queue.max(1));
        let counters = Arc::new(LogCounters::default());
        let c = counters.clone();
        let writer = std::thread::Builder::new()
            .name("access-log".into())
            .spawn(move || write_loop(open, rx, &c))?;
        Ok((
            AccessLog {
                queue: Some(tx),
                counters,
            },
            Some(LogWriter(writer)),
        ))
    }

    pub fn is_on(&self) -> bool {
        self.queue.is_some()
    }

    /// Queues a line; when the queue is full it is dropped and counted.
    pub fn record(&self, record: Record) {
        let Some(q) = &self.queue else { return };
        match q.try_send(record) {
            Ok(()) => {}
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                self.counters.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    pub fn counters(&self) -> &LogCounters {
        &self.counters
    }
}

type Opener = Box<dyn FnOnce() -> std::io::Result<Box<dyn Write>> + Send>;

fn write_loop(open: Opener, rx: Receiver<Record>, counters: &LogCounters) {
    let out = match open() {
        Ok(o) => o,
        Err(e) => {
            tracing::error!(error = %e, "cannot open the access log; its lines are dropped");
            for _ in rx.iter() {
                counters.dropped.fetch_add(1, Ordering::Relaxed);
            }
            return;
        }
    };
    let mut out = std::io::BufWriter::with_capacity(BATCH_BYTES * 2, out);
    let mut failing = false;
    let mut stamp = Stamp::default();
    // Idle, the writer blocks for the next record (whose request then wakes it).
    // Under load it sleeps between batches instead, so that requests find it
    // awake or asleep on a timer, never waiting in the queue: a send then wakes
    // nobody (no system call on the request path).
    while let Ok(first) = rx.recv() {
        let mut next = Some(first);
        loop {
            let mut batch = 0u64;
            while let Some(r) = next {
                if r.write_to(&mut out, &mut stamp).is_ok() {
                    batch += 1;
                } else {
                    counters.dropped.fetch_add(1, Ordering::Relaxed);
                }
                next = rx.try_recv().ok();
            }
            if batch == 0 {
                break;
            }
            match out.flush() {
                Ok(()) => {
                    counters.written.fetch_add(batch, Ordering::Relaxed);
                    failing = false;
                }
                Err(e) => {
                    counters.dropped.fetch_add(batch, Ordering::Relaxed);
                    if !failing {
                        tracing::warn!(error = %e, "writing the access log failed; lines dropped");
                    }
                    failing = true;
                }
            }
            std::thread::sleep(BATCH_INTERVAL);
            next = rx.try_recv().ok();
        }
    }
    let _ = out.flush();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(r: &Record) -> String {
        let mut v = Vec::new();
        r.write_to(&mut v, &mut Stamp::default()).expect("write");
        String::from_utf8(v).expect("utf-8")
    }

    #[test]
    fn a_line_has_every_field_and_the_normalised_path() {
        let at = SystemTime::UNIX_EPOCH + Duration::from_micros(1_700_000_000_123_456);
        let peer = LogPeer::Tcp("10.0.0.1:4242".parse().expect("addr"));
        let r = Record::new(
            at,
            &peer,
            Some(Uuid::from_u128(1)),
            &Method::GET,
            MetadataPath::parse("/latest//meta-data/?x=1"),
            200,
            12,
            34,
        );
        assert_eq!(
            line(&r),
            "2023-11-14T22:13:20.123456Z access: peer=10.0.0.1:4242 \
             instance=00000000-0000-0000-0000-000000000001 method=GET \
             path=/ec2/latest/meta-data status=200 bytes=12 micros=34\n"
        );
        let not_found = |method: &Method, path: &str| {
            line(&Record::new(
                at,
                &peer,
                None,
                method,
                MetadataPath::parse(path),
                404,
                0,
                1,
            ))
        };
        let long = format!("/openstack/{}", "a".repeat(200));
        assert!(not_found(&Method::HEAD, &long)
            .contains(&format!(" instance=- method=HEAD path={long} ")));
        let odd = not_found(&Method::GET, "/a%20b%22/%ff");
        assert!(odd.contains(" path=- "), "{odd}");
        let odd = not_found(&Method::GET, "/a%20b%22");
        assert!(odd.contains(" path=/ec2/a%20b%22 "), "{odd}");
    }

    #[test]
    fn one_stamp_follows_the_seconds_and_pads_the_micros() {
        let mut stamp = Stamp::default();
        let mut text = |micros: u64| {
            let mut v = Vec::new();
            let at = SystemTime::UNIX_EPOCH + Duration::from_micros(micros);
            stamp.write(&mut v, at).expect("write");
            String::from_utf8(v).expect("utf-8")
        };
        assert_eq!(text(1_700_000_000_000_042), "2023-11-14T22:13:20.000042Z");
        assert_eq!(text(1_700_000_000_999_999), "2023-11-14T22:13:20.999999Z");
        assert_eq!(text(1_700_000_001_000_000), "2023-11-14T22:13:21.000000Z");
        assert_eq!(text(1_700_000_000_500_000), "2023-11-14T22:13:20.500000Z");
    }

    #[test]
    fn destinations_parse() {
        assert_eq!("off".parse::<Destination>(), Ok(Destination::Off));
        assert_eq!("-".parse::<Destination>(), Ok(Destination::Stderr));
        assert_eq!(
            "/var/log/m.log".parse::<Destination>(),
            Ok(Destination::File("/var/log/m.log".into()))
        );
    }

    #[test]
    fn a_full_queue_drops_and_counts_and_a_file_gets_every_line() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("access.log");
        let (log, writer) = AccessLog::start(Destination::File(path.clone()), 4).expect("start");
        let peer = LogPeer::Unix("/run/x.sock".into());
        for _ in 0..1000 {
            log.record(Record::new(
                SystemTime::now(),
                &peer,
                None,
                &Method::GET,
                MetadataPath::parse("/"),
                200,
                1,
                1,
            ));
        }
        let counters = log.counters.clone();
        drop(log);
        writer.expect("a writer").finish(Duration::from_secs(10));
        let text = std::fs::read_to_string(&path).expect("read");
        let (written, dropped) = (counters.written(), counters.dropped());
        assert_eq!(written + dropped, 1000);
        assert_eq!(text.lines().count() as u64, written);
        assert!(text.lines().all(|l| l.contains(" peer=/run/x.sock ")));
    }
}
