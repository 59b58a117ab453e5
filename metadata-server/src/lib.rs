//! The 169.254.169.254 metadata service.
//!
//! The answer is a plain function ([`answer::Responder::answer`]) from a parsed
//! request and the caller's identity to a reply, over in-memory instances whose trees
//! come from `compute`'s one renderer (cached, bounded). Sockets, the password store,
//! dynamic vendor data and reloading sit at the edges and only adapt it.

pub mod accept;
pub mod accesslog;
pub mod answer;
pub mod cache;
pub mod conn;
pub mod ec2_args;
pub mod etag;
pub mod events;
pub mod execute;
pub mod feed;
pub mod identity;
pub mod instance_identity;
pub mod listeners;
pub mod metrics;
pub mod ops;
pub mod password;
pub mod ratelimit;
pub mod relay;
pub mod reload;
pub mod reply;
pub mod server;
pub mod signature;
pub mod source;
pub mod state;
pub mod store;
pub mod token;
pub mod token_headers;
pub mod vendordata;
pub mod wait;
pub mod workers;

pub use compute::error_chain;
