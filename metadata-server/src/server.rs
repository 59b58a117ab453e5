//! The HTTP edge: listeners, connections and limits around
//! [`crate::answer::Responder::answer`].
//!
//! Everything here is plumbing: read a bounded request, find out who is asking,
//! apply the rate limit, ask the pure core, have [`crate::execute`] do the I/O an
//! outcome names, write the reply, count and log it. SIGTERM stops the
//! accept loops and lets open connections finish their request.

use crate::accept::{Accepted, Listener};
use crate::accesslog::{LogPeer, Record};
use crate::answer::{Outcome, RequestParts};
use crate::conn::{Conn, SetTtl, TtlControl};
use crate::execute::execute;
use crate::identity::{identify, Identity, Peer, Rejection};
use crate::metrics::{route_label, Event};
use crate::ratelimit::RateKey;
use crate::reply::Reply;
use crate::state::State;
use crate::store::InstanceSet;
use crate::workers::Workers;
use base64::Engine;
use bytes::Bytes;
use compute::metadata::MetadataPath;
use compute_io::idle::Idle;
use http::{header, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use std::convert::Infallible;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{watch, Semaphore};

struct ConnCtx {
    peer: Peer,
    /// The connection's last tree; requests on one connection never overlap.
    memo: std::sync::Mutex<crate::cache::TreeMemo>,
    /// The peer as the access log names it.
    log_peer: LogPeer,
    ttl: Arc<TtlControl>,
}

/// Unix seconds (for token lifetimes), from the coarse wall clock: exact to a few
/// milliseconds and read without the timestamp counter.
fn now_secs() -> u64 {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::RealtimeCoarse);
    u64::try_from(t.tv_sec).unwrap_or(0)
}

fn fresh_seed() -> String {
    let mut seed = [0u8; 512];
    if let Err(e) = getrandom::getrandom(&mut seed) {
        tracing::error!(error = %e, "no randomness for random_seed");
    }
    base64::engine::general_purpose::STANDARD.encode(seed)
}

/// Serves every listener until `shutdown` turns true, then drains connections. With
/// `listeners_file`, bound listeners named there come and go at run time.
pub async fn serve(
    state: Arc<State>,
    listeners: Vec<Listener>,
    listeners_file: Option<PathBuf>,
    watch_interval: Duration,
    workers: Arc<Workers>,
    shutdown: watch::Receiver<bool>,
) {
    let permits = Arc::new(Semaphore::new(state.limits.max_connections));
    let mut tasks = tokio::task::JoinSet::new();
    for l in listeners {
        tasks.spawn(accept_loop(
            state.clone(),
            l,
            permits.clone(),
            workers.clone(),
            shutdown.clone(),
        ));
    }
    if let Some(file) = listeners_file {
        let spawn = {
            let (state, permits, workers) = (state.clone(), permits.clone(), workers.clone());
            move |l: Listener, stop: watch::Receiver<bool>| {
                tokio::spawn(accept_loop(
                    state.clone(),
                    l,
                    permits.clone(),
                    workers.clone(),
                    stop,
                ))
            }
        };
        tasks.spawn(crate::listeners::manage(
            file,
            watch_interval,
            spawn,
            shutdown.clone(),
        ));
    }
    while tasks.join_next().await.is_some() {}
}

async fn accept_loop(
    state: Arc<State>,
    listener: Listener,
    permits: Arc<Semaphore>,
    workers: Arc<Workers>,
    mut shutdown: watch::Receiver<bool>,
) {
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    loop {
        let permit = tokio::select! {
            p = permits.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => break },
            _ = shutdown.wait_for(|s| *s) => break,
        };
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = shutdown.wait_for(|s| *s) => break,
        };
        match accepted {
            Ok(Accepted::Tcp(stream, addr, bound)) => {
                let _ = stream.set_nodelay(true);
                let default_ttl = crate::conn::default_ttl(&stream);
                let peer = bound.map_or(Peer::Addr(addr.ip()), Peer::Bound);
                let ctx = ConnCtx {
                    peer,
                    memo: Default::default(),
                    log_peer: LogPeer::Tcp(addr),
                    ttl: TtlControl::new(default_ttl),
                };
                // The CPU its packets arrive on: a worker there serves it.
                let cpu = rustix::net::sockopt::socket_incoming_cpu(&stream).ok();
                // The stream leaves this runtime's reactor for its worker's.
                match stream.into_std() {
                    Ok(std) => {
                        let (state, watcher) = (state.clone(), graceful.watcher());
                        workers.run(
                            cpu,
                            Box::new(move || match tokio::net::TcpStream::from_std(std) {
                                Ok(s) => spawn_conn(&state, watcher, s, ctx, permit),
                                Err(e) => {
                                    tracing::warn!(error = %e, "a connection could not be served")
                                }
                            }),
                        );
                    }
                    Err(e) => tracing::warn!(error = %e, "a connection could not be served"),
                }
            }
            Ok(Accepted::Unix(stream, uuid, path)) => {
                let ctx = ConnCtx {
                    peer: Peer::Bound(uuid),
                    memo: Default::default(),
                    log_peer: LogPeer::Unix(path.into()),
                    ttl: TtlControl::new(64),
                };
                match stream.into_std() {
                    Ok(std) => {
                        let (state, watcher) = (state.clone(), graceful.watcher());
                        workers.run(
                            None,
                            Box::new(move || match tokio::net::UnixStream::from_std(std) {
                                Ok(s) => spawn_conn(&state, watcher, s, ctx, permit),
                                Err(e) => {
                                    tracing::warn!(error = %e, "a connection could not be served")
                                }
                            }),
                        );
                    }
                    Err(e) => tracing::warn!(error = %e, "a connection could not be served"),
                }
            }
            Err(e) => {
                tracing::warn!(listener = %listener.describe(), error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
    if tokio::time::timeout(state.limits.shutdown_grace, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(listener = %listener.describe(), "connections still open after the grace period; closing");
    }
}

fn spawn_conn<S>(
    state: &Arc<State>,
    graceful: hyper_util::server::graceful::Watcher,
    stream: S,
    ctx: ConnCtx,
    permit: tokio::sync::OwnedSemaphorePermit,
) where
    S: AsyncRead + AsyncWrite + SetTtl + Unpin + Send + 'static,
{
    let ctx = Arc::new(ctx);
    let io = TokioIo::new(Idle::new(
        Conn::new(stream, ctx.ttl.clone()),
        state.limits.idle_timeout,
    ));
    let svc_state = state.clone();
    let svc_ctx = ctx.clone();
    let svc =
        hyper::service::service_fn(move |req| handle(svc_state.clone(), svc_ctx.clone(), req));
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(state.limits.header_read_timeout)
        .max_buf_size(state.limits.max_header_bytes.max(8192))
        .keep_alive(true)
        // One write of head and body copied together: our answers are small, and a
        // two-part writev costs the kernel more than the copy (measured ~3% req/s).
        .writev(false)
        // `printf 'GET ...' | nc` and relays that pass a half-close on send FIN right
        // after the request: they still get their answer.
        .half_close(true)
        .serve_connection(io, svc);
    let conn = graceful.watch(conn);
    tokio::spawn(async move {
        if let Err(e) = conn.await {
            tracing::debug!(peer = %ctx.log_peer, error = %e, "connection ended");
        }
        drop(permit);
    });
}

async fn read_body(state: &State, body: Incoming) -> Result<Bytes, Reply> {
    // Most requests (every GET) have none: no timer, no collecting.
    if hyper::body::Body::is_end_stream(&body) {
        return Ok(Bytes::new());
    }
    let limited = Limited::new(body, state.limits.max_body_bytes);
    match tokio::time::timeout(state.limits.body_read_timeout, limited.collect()).await {
        Ok(Ok(c)) => Ok(c.to_bytes()),
        Ok(Err(e)) if e.is::<http_body_util::LengthLimitError>() => {
            Err(Reply::error(StatusCode::PAYLOAD_TOO_LARGE))
        }
        Ok(Err(_)) => Err(Reply::error(StatusCode::BAD_REQUEST)),
        Err(_) => Err(Reply::error(StatusCode::REQUEST_TIMEOUT)),
    }
}

async fn handle(
    state: Arc<State>,
    ctx: Arc<ConnCtx>,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let started = Instant::now();
    ctx.ttl.want(ctx.ttl.default);
    let (parts, body) = req.into_parts();
    let raw_path = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/");
    let parsed = MetadataPath::parse(raw_path);
    let route = route_label(parsed.as_ref());
    let mut instance = None;
    let mut token_ttl = None;
    let wait = crate::wait::parse(parts.uri.query());
    let reply = match (read_body(&state, body).await, wait) {
        (Err(reply), _) => reply,
        (Ok(_), Err(e)) => {
            tracing::debug!(peer = %ctx.log_peer, error = %e, "bad wait parameters");
            Reply::error(StatusCode::BAD_REQUEST)
        }
        (Ok(body), Ok(wait)) => {
            let ask = Ask {
                state: &state,
                ctx: &ctx,
                parts: &parts,
                path: parsed.as_ref(),
                body: &body,
            };
            // Who is asking, the rate limit and the answer, in one look at the set;
            // only the answer's I/O (if it names any) runs after it.
            let (found, decided) = state.store.with_snapshot(|set| {
                let who = ask.identify(set);
                let decided = match throttled(&state, &ctx, &who, &parts.headers, started) {
                    Some(reply) => Err(reply),
                    None => Ok((
                        state.responder.token_ttl(&parts.headers, &who, now_secs()),
                        ask.outcome(&who),
                    )),
                };
                (who.instance().map(|e| e.uuid()), decided)
            });
            instance = found;
            match decided {
                Err(reply) => reply,
                Ok((ttl, outcome)) => {
                    token_ttl = ttl;
                    let first = ask.execute(outcome).await;
                    match (wait, instance) {
                        (Some(w), Some(uuid))
                            if is_read(&parts.method) && !w.satisfied_by(&first) =>
                        {
                            match state.store.subscribe(uuid) {
                                Ok(sub) => {
                                    let again = || ask.answer();
                                    crate::wait::hold(sub, &w, first, state.shutdown.clone(), again)
                                        .await
                                }
                                Err(refused) => {
                                    tracing::info!(instance = %uuid, %refused, "a waiter turned away");
                                    state.metrics.event(Event::Throttled);
                                    Reply::too_many_requests(WAIT_RETRY_AFTER)
                                }
                            }
                        }
                        _ => first,
                    }
                }
            }
        }
    };
    if reply.hop_limited {
        ctx.ttl.want(state.token_hop_limit);
    }
    let head = parts.method == Method::HEAD;
    let ec2 = parsed
        .as_ref()
        .is_some_and(|p| p.segments().first().is_some_and(|s| s == "ec2"));
    let reply = Reply {
        token_ttl: reply.token_ttl.or(token_ttl),
        ..reply
    };
    let unchanged = reply
        .etag
        .as_ref()
        .is_some_and(|t| t.if_none_match(&parts.headers));
    let response = if unchanged {
        not_modified(reply, ec2)
    } else {
        to_response(reply, head, ec2)
    };
    let status = response.status().as_u16();
    let took = started.elapsed();
    state.metrics.request(route, status, took);
    if state.access_log.is_on() {
        let bytes = hyper::body::Body::size_hint(response.body())
            .exact()
            .unwrap_or(0);
        state.access_log.record(Record::new(
            SystemTime::now(),
            &ctx.log_peer,
            instance,
            &parts.method,
            parsed,
            status,
            bytes,
            took.as_micros() as u64,
        ));
    }
    Ok(response)
}

/// Seconds a waiter turned away (too many wait already) is told to wait.
const WAIT_RETRY_AFTER: u64 = 5;

fn is_read(m: &Method) -> bool {
    m == Method::GET || m == Method::HEAD
}

/// The rate limit's refusal, if the caller is over it (and the identification
/// events counted on the way).
fn throttled(
    state: &State,
    ctx: &ConnCtx,
    who: &Identity,
    headers: &http::HeaderMap,
    now: Instant,
) -> Option<Reply> {
    match who {
        Identity::Unknown | Identity::Rejected(Rejection::NoSuchInstance) => {
            state.metrics.event(Event::IdentificationFailure)
        }
        Identity::Rejected(Rejection::BadSignature) => {
            state.metrics.event(Event::SignatureMismatch)
        }
        Identity::Instance(_)
            if !crate::token_headers::any(headers, &crate::token_headers::TOKEN) =>
        {
            state.metrics.event(Event::Tokenless)
        }
        _ => {}
    }
    let key = match (who, ctx.peer) {
        (Identity::Instance(e), _) => RateKey::Instance(e.uuid()),
        (_, Peer::Addr(ip)) => RateKey::Peer(ip),
        (_, Peer::Bound(u)) => RateKey::Instance(u),
    };
    let wait = state.limiter.as_ref()?.check(key, now).err()?;
    state.metrics.event(Event::Throttled);
    Some(Reply::too_many_requests(wait))
}

/// One request, answered as often as a waiter needs: who is asking (against the
/// set served now), the answer, and the I/O it names.
struct Ask<'a> {
    state: &'a State,
    ctx: &'a ConnCtx,
    parts: &'a http::request::Parts,
    path: Option<&'a MetadataPath>,
    body: &'a Bytes,
}

impl Ask<'_> {
    fn identify<'s>(&self, set: &'s InstanceSet) -> Identity<'s> {
        identify(
            &self.state.identity,
            set,
            self.ctx.peer,
            &self.parts.headers,
        )
    }

    /// What to answer `who`, decided while the set is in hand.
    fn outcome(&self, who: &Identity<'_>) -> Outcome {
        let req = RequestParts {
            method: &self.parts.method,
            path: self.path,
            headers: &self.parts.headers,
            body: self.body,
        };
        let mut memo = self.ctx.memo.lock().unwrap_or_else(|p| p.into_inner());
        self.state.responder.answer(req, who, now_secs(), &mut memo)
    }

    /// The outcome's I/O done and the reply tagged.
    async fn execute(&self, outcome: Outcome) -> Reply {
        execute(self.state, outcome)
            .await
            .tagged(&self.parts.method)
    }

    /// Identified and answered again against the set served now (a waiter's turn).
    async fn answer(&self) -> Reply {
        let outcome = self
            .state
            .store
            .with_snapshot(|set| self.outcome(&self.identify(set)));
        self.execute(outcome).await
    }
}

/// 304: the client's copy (named by `If-None-Match`) is current.
fn not_modified(reply: Reply, ec2: bool) -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(Bytes::new()));
    *resp.status_mut() = StatusCode::NOT_MODIFIED;
    let h = resp.headers_mut();
    if let Some(t) = reply.etag {
        h.insert(header::ETAG, t.header_value());
    }
    if let Some(ttl) = reply.token_ttl {
        h.insert(
            crate::token_headers::TOKEN_TTL[0].clone(),
            HeaderValue::from(ttl),
        );
    }
    if ec2 {
        h.insert(header::SERVER, HeaderValue::from_static(EC2_SERVER));
    }
    resp
}

/// Length of a fresh seed in base64: 512 bytes.
const SEED_B64_LEN: usize = 684;

/// `Server` on EC2 answers, as AWS's service names itself.
const EC2_SERVER: &str = "EC2ws";

fn to_response(reply: Reply, head: bool, ec2: bool) -> Response<Full<Bytes>> {
    let (body, len) = match (&reply.body, head) {
        (compute::metadata::Body::Static(b), _) => (b.clone(), b.len()),
        (seeded, false) => {
            let b = seeded.with_seed(&fresh_seed());
            let len = b.len();
            (b, len)
        }
        // HEAD: the length a GET would have; no randomness drawn.
        (seeded, true) => (Bytes::new(), seeded.len_with_seed(SEED_B64_LEN)),
    };
    let mut resp = Response::new(Full::new(if head { Bytes::new() } else { body }));
    *resp.status_mut() = reply.status;
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(reply.content_type),
    );
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    if let Some(allow) = reply.allow {
        h.insert(
            header::ALLOW,
            HeaderValue::from_static(allow.header_value()),
        );
    }
    if let Some(secs) = reply.retry_after {
        h.insert(header::RETRY_AFTER, HeaderValue::from(secs));
    }
    if let Some(ttl) = reply.token_ttl {
        h.insert(
            crate::token_headers::TOKEN_TTL[0].clone(),
            HeaderValue::from(ttl),
        );
    }
    if let Some(t) = reply.etag {
        h.insert(header::ETAG, t.header_value());
    }
    if ec2 {
        h.insert(header::SERVER, HeaderValue::from_static(EC2_SERVER));
    }
    resp
}
