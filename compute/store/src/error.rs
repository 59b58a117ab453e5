//! What can go wrong with a store, the same for every backend: the typed cases a
//! caller acts on, and the backend's own error kept as the cause.
//!
//! Locations in messages never carry a password: a PostgreSQL URL is shown as its
//! user, host, port and database only.

use compute::netalloc::NetAllocError;
use compute::placement::PlacementError;

/// What a backend's driver reported (rusqlite's or postgres' error).
pub type BackendError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Why the caller's rule refused a document: the error of the callbacks that build
/// or change one ([`crate::NewInstance::document`], [`crate::Store::update_document`]).
pub type DocumentProblem = Box<dyn std::error::Error + Send + Sync>;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot open the database {location}")]
    Open {
        location: String,
        #[source]
        source: BackendError,
    },
    /// The server went away (stopped, restarted, network): the next call reconnects.
    #[error("lost the connection to the database {location}; nothing was changed by the failed request, retry once the database is back")]
    Unavailable {
        location: String,
        #[source]
        source: BackendError,
    },
    #[error("the database {location} has schema version {found}, newer than this binary knows ({known}): upgrade this binary")]
    SchemaTooNew {
        location: String,
        found: i64,
        known: i64,
    },
    #[error("the database {location} has schema version {found}, older than this binary needs ({known}): run any `compute` command against it once to migrate it")]
    SchemaTooOld {
        location: String,
        found: i64,
        known: i64,
    },
    #[error("cannot migrate the database {location} from schema version {from} to {to}; it is left at version {from}")]
    Migration {
        location: String,
        from: i64,
        to: i64,
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
    #[error("the new document of instance {uuid} is refused")]
    DocumentRefused {
        uuid: String,
        #[source]
        problem: DocumentProblem,
    },
    #[error("the change to the record of image {id} is refused")]
    ImageRecordRefused {
        id: String,
        #[source]
        problem: crate::RecordProblem,
    },
    #[error("invalid host: {0}")]
    InvalidHost(String),
    #[error("invalid host")]
    InvalidRatio(#[from] compute::placement::RatioError),
    #[error("this state folder's database has one host, {existing}; it cannot take {requested} (several hosts share a PostgreSQL database: --database)")]
    OneHost { existing: String, requested: String },
    #[error("work item {id} is {state}, not running: only running work can be finished")]
    WorkNotRunning { id: u64, state: String },
    #[error("another host agent named {host} is running: it holds the advisory lock `{lock}` on the database {location} ({holder})")]
    HostAgentRunning {
        host: String,
        lock: String,
        location: String,
        holder: String,
    },
    #[error("the database {location} keeps no image files: a state folder keeps them beside it")]
    NoImageFiles { location: String },
    #[error("cannot move the {part} of image {id}")]
    ImageIo {
        id: String,
        part: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Placement(#[from] PlacementError),
    #[error(transparent)]
    Network(#[from] NetAllocError),
}
