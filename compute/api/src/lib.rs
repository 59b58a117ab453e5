//! The OpenStack API of compute: Compute v2.1, Image v2 and Identity v3, the subset
//! that unmodified `openstack` (python-openstackclient) and openstacksdk need, over
//! the same [`compute_store::Store`] the `compute` command line uses. `compute api`
//! runs it: three listeners in one process (8774, 9292, 5000), each with its own
//! version discovery.
//!
//! # Shape
//!
//! Like the metadata server (and Firecracker's mmds): sockets only adapt a plain
//! answer function.
//!
//! - [`server`]: listeners, connections and their bounds (connection cap, header,
//!   body and idle timeouts, body size); it hands [`Api::respond`] a bounded request.
//! - [`Api::respond`]: parses the path, negotiates the microversion
//!   ([`microversion`]), finds the route of the service ([`compute::route`],
//!   [`image::route`], [`identity::route`]), then on a blocking thread with a store
//!   from the [`pool`]: authenticates the caller ([`auth`]) unless the route is
//!   public, and runs the handler. It writes every answer: JSON bodies, errors in
//!   the service's shape ([`error`], Nova's faults on Compute), the microversion
//!   echo headers and `Vary`, `WWW-Authenticate` on 401, a request id.
//! - Handlers are plain functions `fn(&mut Call) -> Result<ApiResponse, ApiError>`
//!   over the store: no sockets, no async, no headers to remember.
//!
//! # Adding a resource
//!
//! 1. A module beside the others under its service (`compute/servers.rs`,
//!    `image/images.rs`) with its handlers, each a [`Handler`]: read the path with
//!    [`Call::segment`], the query with `call.req.query(..)`, the body with
//!    `call.req.json::<T>()` (a `#[serde(deny_unknown_fields)]` struct where Nova's
//!    schema is strict), the caller with [`Call::caller`] (its project scopes every
//!    lookup: another project's resource is a 404, as in Nova; an admin sees all),
//!    and the store with `call.store`.
//! 2. Its shape per microversion with [`shape::Shape`] and a named delta in
//!    [`microversion::deltas`] (`.since(deltas::X, "key", value)`), never a bare
//!    number comparison.
//! 3. A line per path in the service's route table (`compute/mod.rs`'s `resource`):
//!    the path pattern and its methods. Unknown paths are 404 and known paths with
//!    another method 405, by the table.
//! 4. Errors as [`ApiError`] variants with Nova's message; store errors convert
//!    (`?`): not found 404, exists 409, database away 503.
//!
//! Actions on guests (`servers`) must not bypass the store's rules: they go through
//! the same layer as the command line: on a shared PostgreSQL database, check the
//! lifecycle, queue the work (`Store::enqueue`, or
//! `compute_host::driver::queue_boot` for a boot, which validates, places and queues
//! in one transaction) and answer 202; on a state folder, the work is carried out
//! by the state folder's agent that `compute api` runs on a thread
//! (`compute_host::agent::run_local`, rung through [`Api::wake_agent`]). The CLI's
//! verbs keep that logic in `compute-host`; a front door adds none of its own.
//! Image uploads (Glance's `PUT /v2/images/{id}/file`) take the body as a stream
//! rather than the bounded buffer: [`server`] hands them to [`image::upload`]
//! before reading it.

pub mod auth;
pub mod compute;
pub mod error;
pub mod identity;
pub mod image;
pub mod jsonlimit;
pub mod microversion;
pub mod pool;
pub mod request;
pub mod response;
pub mod server;
pub mod shape;

pub use error::ApiError;
pub use request::{ApiRequest, Urls};
pub use response::ApiResponse;

use auth::{AuthContext, Authenticator};
use bytes::Bytes;
use compute_store::Store;
use http::{HeaderValue, Method, StatusCode};
use microversion::ApiVersion;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// One of the three APIs, each on its own listener.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Service {
    Compute,
    Image,
    Identity,
}

impl Service {
    pub fn name(self) -> &'static str {
        match self {
            Service::Compute => "compute",
            Service::Image => "image",
            Service::Identity => "identity",
        }
    }
}

/// Bounds on what one client may cost.
#[derive(Debug, Clone)]
pub struct Limits {
    /// The largest request body (Nova's `max_request_body_size` is 112 KiB).
    pub max_body_bytes: usize,
    /// How deep a JSON body may nest.
    pub max_json_depth: usize,
    /// Time to send a request's headers.
    pub header_read_timeout: Duration,
    /// Time to send a request's body.
    pub body_read_timeout: Duration,
    /// No byte either way for this long closes a connection.
    pub idle_timeout: Duration,
    /// Connections open at once, over all listeners.
    pub max_connections: usize,
    /// Store connections (requests being handled) at once.
    pub max_store_connections: usize,
    /// Time open connections get to finish at shutdown.
    pub shutdown_grace: Duration,
    /// The largest image upload (`PUT /v2/images/{id}/file`), streamed to disk.
    pub max_image_bytes: u64,
    /// How long an upload's claim on its image holds unless renewed: an upload
    /// whose process died is ended this long after (by any API process).
    pub upload_lease: Duration,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_body_bytes: 112 * 1024,
            max_json_depth: 32,
            header_read_timeout: Duration::from_secs(10),
            body_read_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(60),
            max_connections: 1024,
            max_store_connections: 8,
            shutdown_grace: Duration::from_secs(10),
            max_image_bytes: 16 << 30,
            upload_lease: Duration::from_secs(60),
        }
    }
}

/// The public URLs to announce (catalog, links) when the listeners' own are not
/// what clients reach (a proxy, a name); each without a trailing slash.
#[derive(Debug, Clone, Default)]
pub struct PublicUrls {
    /// e.g. `https://cloud.example/compute/v2.1`.
    pub compute: Option<String>,
    /// e.g. `https://cloud.example/image`.
    pub image: Option<String>,
    /// e.g. `https://cloud.example/identity/v3`.
    pub identity: Option<String>,
}

/// Everything requests share.
pub struct Api {
    pub pool: Arc<pool::StorePool>,
    pub auth: Authenticator,
    /// How long a token lives.
    pub token_lifetime: Duration,
    pub public: PublicUrls,
    pub limits: Limits,
    /// Where each service listens (for URLs when none is configured).
    pub bound: Vec<(Service, SocketAddr)>,
    /// The state folder's agent in this process, rung when work is queued (a shared
    /// database's agents are woken by the database).
    pub agent: Option<Arc<compute_host::agent::Wake>>,
    /// How long `os-stop` gives a guest's ACPI shutdown before a hard stop (Nova's
    /// `shutdown_timeout`).
    pub shutdown_timeout: Duration,
    /// The state folder: image files (a shared database's are fetched into it).
    pub state_dir: std::path::PathBuf,
    /// Where the guests' posted passwords are when this process is a state
    /// folder's host (the managed metadata server keeps them beside the
    /// database); `None`: in the store (a shared database).
    pub posted_passwords: Option<compute_host::driver::layout::Layout>,
}

/// A handler: a plain function over the call.
pub type Handler = fn(&mut Call<'_>) -> Result<ApiResponse, ApiError>;

/// A path's handlers by method, and whether they need a caller.
#[derive(Clone, Copy)]
pub struct Route {
    pub methods: &'static [(Method, Handler)],
    /// Served without a token (version documents, `POST /v3/auth/tokens`).
    pub public: bool,
}

/// What a handler works with.
pub struct Call<'a> {
    pub req: &'a ApiRequest,
    caller: Option<AuthContext>,
    pub store: &'a mut dyn Store,
    pub api: &'a Api,
}

impl Call<'_> {
    /// The authenticated caller (public routes have none: 401).
    pub fn caller(&self) -> Result<&AuthContext, ApiError> {
        self.caller.as_ref().ok_or(ApiError::Unauthorized)
    }

    /// Path segment `i` below the version prefix.
    pub fn segment(&self, i: usize) -> &str {
        self.req.segments.get(i).map(String::as_str).unwrap_or("")
    }

    pub fn version(&self) -> ApiVersion {
        self.req.version
    }
}

/// A request as the server read it (the body already bounded).
pub struct Incoming {
    pub service: Service,
    pub method: Method,
    pub uri: http::Uri,
    pub headers: http::HeaderMap,
    pub body: Bytes,
}

/// A complete answer.
pub type Reply = http::Response<http_body_util::Full<Bytes>>;

/// What routing decided before any handler runs.
pub(crate) enum Target {
    /// An answer already (a version document, an error).
    Answer(Result<ApiResponse, ApiError>),
    Handler(Handler, bool),
}

impl Api {
    /// Tells this process's agent (if any) that work is queued.
    pub fn wake_agent(&self) {
        if let Some(w) = &self.agent {
            w.ring();
        }
    }

    /// The URLs of the three services for a request that named `host` (its `Host`
    /// header, without the port): the configured ones, else each listener's address,
    /// or `host` for one bound to every address.
    pub fn urls(&self, host: Option<&str>) -> Urls {
        let base = |service: Service| -> String {
            let Some((_, addr)) = self.bound.iter().find(|(s, _)| *s == service) else {
                return String::new();
            };
            let ip = addr.ip();
            let name = match host {
                Some(h) if ip.is_unspecified() || ip.is_loopback() => h.to_owned(),
                _ => match ip {
                    std::net::IpAddr::V6(v6) => format!("[{v6}]"),
                    v4 => v4.to_string(),
                },
            };
            format!("http://{name}:{}", addr.port())
        };
        let compute = self
            .public
            .compute
            .clone()
            .unwrap_or_else(|| format!("{}/v2.1", base(Service::Compute)));
        Urls {
            compute_root: compute.strip_suffix("/v2.1").unwrap_or(&compute).to_owned(),
            compute,
            image: self
                .public
                .image
                .clone()
                .unwrap_or_else(|| base(Service::Image)),
            identity: self
                .public
                .identity
                .clone()
                .unwrap_or_else(|| format!("{}/v3", base(Service::Identity))),
        }
    }

    /// Answers one request.
    pub async fn respond(self: &Arc<Self>, incoming: Incoming) -> Reply {
        let started = std::time::Instant::now();
        let request_id = format!("req-{}", uuid::Uuid::new_v4().hyphenated());
        let service = incoming.service;
        let method = incoming.method.clone();
        let path = incoming.uri.path().to_owned();
        let host = request_host(&incoming.headers);
        let (versioned, outcome) = self.answer(incoming).await;
        let status = match &outcome {
            Ok(r) => r.status,
            Err(e) => e.status(),
        };
        if let Err(ApiError::Internal(cause)) = &outcome {
            tracing::error!(%request_id, error = %::compute::error_chain(cause.as_ref()), "request failed");
        }
        tracing::info!(
            target: "access",
            service = service.name(),
            %method,
            path = %path.chars().take(256).collect::<String>(),
            status = status.as_u16(),
            micros = started.elapsed().as_micros() as u64,
            %request_id,
        );
        self.reply(service, versioned, outcome, &request_id, host.as_deref())
    }

    /// Routes and runs a request; also says which microversion it was served at
    /// (versioned compute paths only).
    async fn answer(
        self: &Arc<Self>,
        incoming: Incoming,
    ) -> (Option<ApiVersion>, Result<ApiResponse, ApiError>) {
        let Some(segments) = request::segments(incoming.uri.path()) else {
            return (
                None,
                Err(ApiError::BadRequest("The path is not UTF-8.".into())),
            );
        };
        let urls = self.urls(request_host(&incoming.headers).as_deref());
        let mut req = ApiRequest {
            method: incoming.method,
            segments,
            query: request::parse_query(incoming.uri.query()),
            headers: incoming.headers,
            body: incoming.body,
            version: microversion::MIN,
            urls,
            max_json_depth: self.limits.max_json_depth,
        };
        let (versioned, target) = match incoming.service {
            Service::Compute => compute::prepare(&mut req),
            Service::Image => (None, image::prepare(&mut req)),
            Service::Identity => (None, identity::prepare(&mut req)),
        };
        let target = match target {
            Ok(t) => t,
            Err(e) => return (versioned, Err(e)),
        };
        let (handler, public) = match target {
            Target::Answer(a) => return (versioned, a),
            Target::Handler(h, public) => (h, public),
        };
        // A request without a genuine, unexpired token is refused here, before it
        // takes a database connection (the store then checks the user and project).
        if !public && matches!(self.auth.mode, auth::AuthMode::Keystone) {
            let token = req
                .headers
                .get("x-auth-token")
                .and_then(|t| t.to_str().ok());
            let genuine =
                token.is_some_and(|t| self.auth.signer.verify(t, auth::now_secs()).is_ok());
            if !genuine {
                return (versioned, Err(ApiError::Unauthorized));
            }
        }
        let api = self.clone();
        let outcome = self
            .pool
            .run(move |store| {
                let caller = if public {
                    None
                } else {
                    let token = req
                        .headers
                        .get("x-auth-token")
                        .and_then(|t| t.to_str().ok());
                    Some(api.auth.authenticate(store, token)?)
                };
                let mut call = Call {
                    req: &req,
                    caller,
                    store,
                    api: &api,
                };
                handler(&mut call)
            })
            .await;
        (versioned, outcome)
    }

    pub(crate) fn reply(
        &self,
        service: Service,
        versioned: Option<ApiVersion>,
        outcome: Result<ApiResponse, ApiError>,
        request_id: &str,
        host: Option<&str>,
    ) -> Reply {
        let mut extra = Vec::new();
        let (status, body) = match outcome {
            Ok(r) => {
                extra = r.headers;
                (r.status, r.body)
            }
            Err(e) => {
                if matches!(e, ApiError::Unauthorized) {
                    let uri = self.urls(host).identity;
                    extra.push(("www-authenticate", format!("Keystone uri=\"{uri}\"")));
                }
                (e.status(), Some(e.body(service)))
            }
        };
        let bytes = match &body {
            Some(v) => Bytes::from(serde_json::to_vec(v).unwrap_or_default()),
            None => Bytes::new(),
        };
        let mut builder = http::Response::builder().status(status);
        if body.is_some() {
            builder = builder.header(http::header::CONTENT_TYPE, "application/json");
        }
        builder = builder.header("x-openstack-request-id", request_id);
        if service == Service::Compute {
            builder = builder.header("x-compute-request-id", request_id);
        }
        if let Some(v) = versioned {
            builder = builder
                .header(microversion::HEADER, format!("compute {v}"))
                .header(microversion::LEGACY_HEADER, v.to_string())
                .header(
                    http::header::VARY,
                    "OpenStack-API-Version, X-OpenStack-Nova-API-Version",
                );
        }
        for (name, value) in extra {
            if let Ok(v) = HeaderValue::from_str(&value) {
                builder = builder.header(name, v);
            }
        }
        builder
            .body(http_body_util::Full::new(bytes))
            .unwrap_or_else(|_| {
                let mut r = http::Response::new(http_body_util::Full::new(Bytes::new()));
                *r.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
                r
            })
    }
}

/// The host a request named (its `Host` header, without the port).
pub(crate) fn request_host(headers: &http::HeaderMap) -> Option<String> {
    headers
        .get(http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(host_name)
}

/// The host of a `Host` header value (its port dropped; an IPv6 literal keeps its
/// brackets); only characters a host name or address may hold.
fn host_name(value: &str) -> String {
    let host = if value.starts_with('[') {
        match value.find(']') {
            Some(end) => &value[..=end],
            None => value,
        }
    } else {
        value.rsplit_once(':').map_or(value, |(h, _)| h)
    };
    host.chars()
        .filter(|c| c.is_ascii_alphanumeric() || "-._:[]".contains(*c))
        .take(253)
        .collect()
}

/// Picks the handler of `method` in `route`, or 405.
pub(crate) fn pick(route: Route, method: &Method, path: &[String]) -> Result<Target, ApiError> {
    let method = if *method == Method::HEAD {
        &Method::GET
    } else {
        method
    };
    route
        .methods
        .iter()
        .find(|(m, _)| m == method)
        .map(|(_, h)| Target::Handler(*h, route.public))
        .ok_or_else(|| ApiError::BadMethod {
            method: method.to_string(),
            path: format!("/{}", path.join("/")),
        })
}

#[cfg(test)]
mod tests {
    use super::host_name;

    #[test]
    fn host_headers_lose_their_port_and_junk() {
        assert_eq!(host_name("127.0.0.1:8774"), "127.0.0.1");
        assert_eq!(host_name("[::1]:5000"), "[::1]");
        assert_eq!(host_name("cloud.example"), "cloud.example");
        assert_eq!(host_name("evil\"/x:1"), "evilx");
    }
}
