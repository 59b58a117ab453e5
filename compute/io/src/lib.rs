//! Small I/O helpers that every binary of the workspace needs, one home each:
//! [`tool`] finds and names host programs (a missing one with its package);
//! [`atomic`] writes a file, a folder or a compare-first batch of files whole, with
//! one durability rule; [`gunzip`]
//! unpacks gzip data within a limit, failing beyond it; `idle` (feature `idle`)
//! fails a server's connection once no byte has moved for a set time; `netlink`
//! (feature `netlink`) makes rtnetlink link, bridge, address and route requests.
//!
//! It sits below every other crate of the workspace and imports none of them: it
//! knows nothing of instances, metadata or state, and holds no policy (what to run,
//! what to write, when) — its callers do.

pub mod atomic;
pub mod gunzip;
#[cfg(feature = "idle")]
pub mod idle;
#[cfg(feature = "netlink")]
pub mod netlink;
pub mod tool;
