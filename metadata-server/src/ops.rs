//! The operator's endpoints on `--metrics-listen`: `/healthz` and Prometheus
//! `/metrics`. No identification, nothing of any instance.

use crate::state::State;
use bytes::Bytes;
use http::{header, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::watch;

/// `/healthz`: `ok` (every read is answered from memory, whatever the database
/// does), then, when following a database, how current the served set is.
fn health(state: &State) -> String {
    let mut out = String::from("ok\n");
    if let Some(feed) = &state.feed {
        use std::fmt::Write;
        let _ = write!(
            out,
            "database: {}\nhost: {}\nfeed: {}\nrev: {}\nstale_seconds: {:.3}\n",
            feed.location(),
            feed.host().unwrap_or("(all)"),
            if feed.connected() {
                "connected"
            } else {
                "disconnected"
            },
            feed.rev(),
            feed.stale().as_secs_f64()
        );
    }
    out
}

/// `--metrics-listen`: `/healthz` and `/metrics`, nothing else, no identification.
pub async fn serve_metrics(
    state: Arc<State>,
    listener: TcpListener,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = shutdown.wait_for(|s| *s) => return,
        };
        let Ok((stream, _)) = accepted else { continue };
        let state = state.clone();
        let svc = hyper::service::service_fn(move |req: Request<Incoming>| {
            let state = state.clone();
            async move {
                let (status, ct, body) = match (req.method(), req.uri().path()) {
                    (&Method::GET, "/healthz") => {
                        (StatusCode::OK, "text/plain; charset=UTF-8", health(&state))
                    }
                    (&Method::GET, "/metrics") => {
                        let gauges = crate::metrics::Gauges {
                            instances: state.store.snapshot().len(),
                            cached_trees: state.responder.cache.len(),
                            cached_tree_bytes: state.responder.cache.bytes(),
                            waiters: state.store.waiting(),
                            feed: state.feed.as_deref(),
                            access_log: state.access_log.counters(),
                        };
                        (
                            StatusCode::OK,
                            "text/plain; version=0.0.4; charset=utf-8",
                            state.metrics.render(&gauges),
                        )
                    }
                    _ => (
                        StatusCode::NOT_FOUND,
                        "text/plain; charset=UTF-8",
                        "not found\n".to_owned(),
                    ),
                };
                let mut resp = Response::new(Full::new(Bytes::from(body)));
                *resp.status_mut() = status;
                resp.headers_mut()
                    .insert(header::CONTENT_TYPE, HeaderValue::from_static(ct));
                Ok::<_, Infallible>(resp)
            }
        });
        tokio::spawn(async move {
            let io = TokioIo::new(stream);
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(Duration::from_secs(10))
                .serve_connection(io, svc);
            let _ = tokio::time::timeout(Duration::from_secs(30), conn).await;
        });
    }
}
