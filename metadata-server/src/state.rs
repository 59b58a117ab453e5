//! What every request shares: the responder, the served instances, identification
//! settings, the stores the edges read and write, counters and limits. Built once
//! by `main`, read by the HTTP edge ([`crate::server`]), the I/O an answer names
//! ([`crate::execute`]) and the operator endpoints ([`crate::ops`]).

use crate::accesslog::AccessLog;
use crate::answer::Responder;
use crate::events::EventStore;
use crate::identity::IdentityConfig;
use crate::instance_identity::IdentitySigner;
use crate::metrics::Metrics;
use crate::password::PasswordStore;
use crate::ratelimit::RateLimiter;
use crate::store::InstanceStore;
use crate::vendordata::DynamicVendorData;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// Bounds on what one client may cost.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Time to send a request's headers (also the keep-alive wait for the next one).
    pub header_read_timeout: Duration,
    /// No byte either way for this long closes the connection.
    pub idle_timeout: Duration,
    /// Time to send a request body.
    pub body_read_timeout: Duration,
    pub max_body_bytes: usize,
    pub max_header_bytes: usize,
    pub max_connections: usize,
    /// Time open connections get to finish after SIGTERM.
    pub shutdown_grace: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(30),
            body_read_timeout: Duration::from_secs(10),
            max_body_bytes: 16 * 1024,
            max_header_bytes: 16 * 1024,
            max_connections: 4096,
            shutdown_grace: Duration::from_secs(10),
        }
    }
}

/// Everything a request needs, shared by all connections.
pub struct State {
    pub responder: Responder,
    pub store: Arc<InstanceStore>,
    pub identity: IdentityConfig,
    pub passwords: Arc<dyn PasswordStore>,
    pub vendor: DynamicVendorData,
    pub limiter: Option<RateLimiter>,
    pub metrics: Metrics,
    /// One line per answered request, written off the request path.
    pub access_log: AccessLog,
    pub limits: Limits,
    /// IP TTL of the token reply.
    pub token_hop_limit: u32,
    /// Signs instance identity documents (`None`: Nova's EC2 tree, which has none).
    pub signer: Option<Arc<IdentitySigner>>,
    /// Operator-scheduled maintenance events.
    pub events: EventStore,
    /// The database's change feed, when the instances come from one.
    pub feed: Option<Arc<crate::feed::FeedStatus>>,
    /// Turns true on SIGTERM: waiting requests answer at once.
    pub shutdown: watch::Receiver<bool>,
}
