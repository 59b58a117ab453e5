//! What can go wrong with a store, the same for every backend: the typed cases a
//! caller acts on, and the backend's own error kept as the cause.

use compute::netalloc::NetAllocError;

/// What a backend's driver reported (rusqlite's error for SQLite).
pub type BackendError = Box<dyn std::error::Error + Send + Sync + 'static>;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot open the database {location}")]
    Open {
        location: String,
        #[source]
        source: BackendError,
    },
    #[error("database request failed")]
    Backend(#[source] BackendError),
    #[error("database holds a corrupt {what} for {key}: {problem}")]
    Corrupt {
        what: &'static str,
        key: String,
        problem: String,
    },
    #[error("no {kind} named or with id `{key}`")]
    NotFound { kind: &'static str, key: String },
    #[error("more than one {kind} is named `{key}`; use its id ({ids})")]
    Ambiguous {
        kind: &'static str,
        key: String,
        ids: String,
    },
    #[error("a {kind} named `{key}` already exists")]
    Exists { kind: &'static str, key: String },
    #[error("image {id} is used by {count} instance(s); delete them first")]
    ImageInUse { id: String, count: i64 },
    #[error(transparent)]
    Network(#[from] NetAllocError),
}
