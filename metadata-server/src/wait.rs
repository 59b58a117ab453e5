//! Waiting for a change (GCE-style): `?wait_for_change=true`, with an optional
//! `last_etag=E` and `timeout_sec=N` (default 60, at most 600), holds the request
//! until its answer differs from `E` (or, without `E`, from the answer at the time
//! of asking), or the timeout passes, or the server shuts down; then the current
//! answer goes out. Other query parameters are ignored, as on every path.
//!
//! A waiter is a future parked on its instance's change signal
//! ([`crate::store::Subscription`]): no thread, no polling. It re-evaluates its
//! answer (cheap: the tree is cached) only when its instance changed.

use crate::etag::Etag;
use crate::reply::Reply;
use crate::store::Subscription;
use http::StatusCode;
use std::future::Future;
use std::time::Duration;
use tokio::sync::watch;
use tokio::time::Instant;

pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);
pub const MAX_TIMEOUT_SECS: u64 = 600;
/// Longest `last_etag` looked at (ours are 18 characters).
const MAX_ETAG_LEN: usize = 256;

/// What a request asks to wait for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WaitFor {
    /// The tag the client has; `None`: the answer as it is when asked.
    pub last_etag: Option<String>,
    pub timeout: Duration,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WaitQueryError {
    #[error("wait_for_change must be true or false, not `{0}`")]
    Flag(String),
    #[error(
        "timeout_sec must be a whole number of seconds from 1 to {MAX_TIMEOUT_SECS}, not `{0}`"
    )]
    Timeout(String),
    #[error("last_etag is longer than {MAX_ETAG_LEN} characters or not text")]
    Etag,
}

fn hex(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

/// A query value with its `%XX` escapes decoded (`None` when they do not make text).
fn decode(raw: &str) -> Option<String> {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hi = hex(*bytes.get(i + 1)?)?;
            let lo = hex(*bytes.get(i + 2)?)?;
            out.push(hi << 4 | lo);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// Reads the wait parameters of a query string; `None` when the request does not
/// ask to wait.
pub fn parse(query: Option<&str>) -> Result<Option<WaitFor>, WaitQueryError> {
    let Some(query) = query else { return Ok(None) };
    let (mut wait, mut last_etag, mut timeout) = (None, None, None);
    for pair in query.split('&') {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        match key {
            "wait_for_change" => wait = Some(value),
            "last_etag" => last_etag = Some(value),
            "timeout_sec" => timeout = Some(value),
            _ => {}
        }
    }
    let shown = |v: &str| v.chars().take(64).collect::<String>();
    match wait.map(str::to_ascii_lowercase).as_deref() {
        None | Some("false") => return Ok(None),
        Some("true") => {}
        Some(other) => return Err(WaitQueryError::Flag(shown(other))),
    }
    let timeout = match timeout {
        None => DEFAULT_TIMEOUT,
        Some(t) => match t.parse::<u64>() {
            Ok(secs @ 1..=MAX_TIMEOUT_SECS) => Duration::from_secs(secs),
            _ => return Err(WaitQueryError::Timeout(shown(t))),
        },
    };
    let last_etag = match last_etag {
        None => None,
        Some(e) if e.len() > MAX_ETAG_LEN * 3 => return Err(WaitQueryError::Etag),
        Some(e) => {
            let e = decode(e).ok_or(WaitQueryError::Etag)?;
            if e.len() > MAX_ETAG_LEN {
                return Err(WaitQueryError::Etag);
            }
            Some(e)
        }
    };
    Ok(Some(WaitFor { last_etag, timeout }))
}

/// What the answer is compared with.
enum Baseline {
    /// The client's tag: any answer without it differs.
    Etag(String),
    /// The answer when asked (status and tag).
    Answer(StatusCode, Option<Etag>),
}

impl Baseline {
    fn differs(&self, r: &Reply) -> bool {
        match self {
            Baseline::Etag(e) => !r.etag.is_some_and(|t| t.named_by(e)),
            Baseline::Answer(status, etag) => r.status != *status || r.etag != *etag,
        }
    }
}

impl WaitFor {
    fn baseline(&self, first: &Reply) -> Baseline {
        match &self.last_etag {
            Some(e) => Baseline::Etag(e.clone()),
            None => Baseline::Answer(first.status, first.etag),
        }
    }

    /// Whether `first`, the answer when asked, already differs from the client's
    /// tag: then there is nothing to wait for.
    pub fn satisfied_by(&self, first: &Reply) -> bool {
        self.last_etag.is_some() && self.baseline(first).differs(first)
    }
}

/// Holds a waiting request: `first` is its answer when it asked (tagged), and
/// `evaluate` makes the current one. Returns the answer to send.
pub async fn hold<F, Fut>(
    subscription: Subscription<'_>,
    wait: &WaitFor,
    first: Reply,
    mut shutdown: watch::Receiver<bool>,
    mut evaluate: F,
) -> Reply
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Reply>,
{
    let deadline = Instant::now() + wait.timeout;
    let baseline = wait.baseline(&first);
    loop {
        // Listen first, then look: a change in between still wakes us.
        let changed = subscription.changed();
        tokio::pin!(changed);
        changed.as_mut().enable();
        let current = evaluate().await;
        if baseline.differs(&current) {
            return current;
        }
        let timed_out = tokio::select! {
            _ = &mut changed => false,
            _ = tokio::time::sleep_until(deadline) => true,
            _ = shutdown.wait_for(|s| *s) => return current,
        };
        if timed_out {
            return evaluate().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_query_says_whether_and_how_long_to_wait() {
        assert_eq!(parse(None), Ok(None));
        assert_eq!(parse(Some("recursive=true&alt=json")), Ok(None));
        assert_eq!(parse(Some("wait_for_change=false&timeout_sec=x")), Ok(None));
        assert_eq!(
            parse(Some("wait_for_change=true")),
            Ok(Some(WaitFor {
                last_etag: None,
                timeout: DEFAULT_TIMEOUT
            }))
        );
        assert_eq!(
            parse(Some(
                "x=1&wait_for_change=True&last_etag=%22ab%22&timeout_sec=600"
            )),
            Ok(Some(WaitFor {
                last_etag: Some("\"ab\"".into()),
                timeout: Duration::from_secs(600)
            }))
        );
        for bad in ["0", "601", "-1", "1.5", ""] {
            assert!(
                matches!(
                    parse(Some(&format!("wait_for_change=true&timeout_sec={bad}"))),
                    Err(WaitQueryError::Timeout(_))
                ),
                "{bad}"
            );
        }
        assert!(matches!(
            parse(Some("wait_for_change=yes")),
            Err(WaitQueryError::Flag(_))
        ));
        assert_eq!(
            parse(Some("wait_for_change=true&last_etag=%ff")),
            Err(WaitQueryError::Etag)
        );
        let long = format!("wait_for_change=true&last_etag={}", "a".repeat(300));
        assert_eq!(parse(Some(&long)), Err(WaitQueryError::Etag));
    }

    #[test]
    fn an_answer_differs_from_a_tag_it_does_not_carry() {
        let tagged = |bytes: &'static [u8]| Reply {
            etag: Some(Etag::of_bytes(bytes)),
            ..Reply::ok(crate::reply::TEXT, bytes::Bytes::from_static(bytes))
        };
        let a = Etag::of_bytes(b"a");
        let by_tag = Baseline::Etag(a.header_value().to_str().expect("text").to_owned());
        assert!(!by_tag.differs(&tagged(b"a")));
        assert!(by_tag.differs(&tagged(b"b")));
        assert!(by_tag.differs(&Reply::not_found()));
        let asked = Baseline::Answer(StatusCode::NOT_FOUND, None);
        assert!(!asked.differs(&Reply::not_found()));
        assert!(asked.differs(&tagged(b"a")));
    }
}
