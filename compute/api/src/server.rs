//! The sockets: one listener per service, connections under a cap shared by all,
//! each with hyper's header timeout and an idle timeout (no byte either way for
//! that long closes it), bodies read up to the size limit within the body timeout.
//! A stop request closes the listeners and lets open connections finish (up to the
//! grace period). Everything else is [`Api::respond`].

use crate::{Api, ApiError, Incoming, Reply, Service};
use bytes::Bytes;
use compute_io::idle::Idle;
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::rt::{TokioIo, TokioTimer};
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};

/// Serves every listener until `stop` turns true, then drains connections.
pub async fn serve(
    api: Arc<Api>,
    listeners: Vec<(Service, TcpListener)>,
    stop: watch::Receiver<bool>,
) {
    let permits = Arc::new(Semaphore::new(api.limits.max_connections.max(1)));
    let mut tasks = tokio::task::JoinSet::new();
    tasks.spawn(crate::image::upload::housekeeping(
        api.clone(),
        stop.clone(),
    ));
    for (service, listener) in listeners {
        tasks.spawn(accept_loop(
            api.clone(),
            service,
            listener,
            permits.clone(),
            stop.clone(),
        ));
    }
    while tasks.join_next().await.is_some() {}
}

async fn accept_loop(
    api: Arc<Api>,
    service: Service,
    listener: TcpListener,
    permits: Arc<Semaphore>,
    mut stop: watch::Receiver<bool>,
) {
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    loop {
        let permit = tokio::select! {
            p = permits.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => break },
            _ = stop.wait_for(|s| *s) => break,
        };
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = stop.wait_for(|s| *s) => break,
        };
        let (stream, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                tracing::warn!(service = service.name(), error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let io = TokioIo::new(Idle::new(stream, api.limits.idle_timeout));
        let svc_api = api.clone();
        let svc = hyper::service::service_fn(move |req| handle(svc_api.clone(), service, req));
        let conn = hyper::server::conn::http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(api.limits.header_read_timeout)
            .max_buf_size(64 * 1024)
            .keep_alive(true)
            .serve_connection(io, svc);
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(%peer, error = %e, "connection ended");
            }
            drop(permit);
        });
    }
    if tokio::time::timeout(api.limits.shutdown_grace, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(
            service = service.name(),
            "connections still open after the grace period; closing"
        );
    }
}

/// Reads a body up to the limit, within the body timeout.
async fn read_body(api: &Api, body: hyper::body::Incoming) -> Result<Bytes, ApiError> {
    let limit = api.limits.max_body_bytes;
    let limited = Limited::new(body, limit);
    match tokio::time::timeout(api.limits.body_read_timeout, limited.collect()).await {
        Ok(Ok(c)) => Ok(c.to_bytes()),
        Ok(Err(e)) if e.is::<http_body_util::LengthLimitError>() => {
            Err(ApiError::TooLarge { limit })
        }
        Ok(Err(_)) => Err(ApiError::BadRequest(
            "The request body could not be read.".into(),
        )),
        Err(_) => Err(ApiError::Timeout {
            secs: api.limits.body_read_timeout.as_secs(),
        }),
    }
}

async fn handle(
    api: Arc<Api>,
    service: Service,
    req: http::Request<hyper::body::Incoming>,
) -> Result<Reply, Infallible> {
    let (parts, body) = req.into_parts();
    if crate::image::upload::is_upload(service, &parts.method, parts.uri.path()) {
        return Ok(crate::image::upload::handle(api, parts, body).await);
    }
    // A declared length over the limit is refused before a byte is read.
    let declared = parts
        .headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let body = match declared {
        Some(n) if n > api.limits.max_body_bytes as u64 => Err(ApiError::TooLarge {
            limit: api.limits.max_body_bytes,
        }),
        _ => read_body(&api, body).await,
    };
    let body = match body {
        Ok(b) => b,
        Err(e) => {
            let mut reply = http::Response::new(Full::new(Bytes::from(
                serde_json::to_vec(&e.body(service)).unwrap_or_default(),
            )));
            *reply.status_mut() = e.status();
            reply.headers_mut().insert(
                http::header::CONTENT_TYPE,
                http::HeaderValue::from_static("application/json"),
            );
            reply.headers_mut().insert(
                http::header::CONNECTION,
                http::HeaderValue::from_static("close"),
            );
            return Ok(reply);
        }
    };
    Ok(api
        .respond(Incoming {
            service,
            method: parts.method,
            uri: parts.uri,
            headers: parts.headers,
            body,
        })
        .await)
}
