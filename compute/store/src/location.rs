//! Where the state is: a state folder's SQLite file, or a PostgreSQL database that
//! many hosts share. The one place that turns the choice into a store or a feed.

use crate::{DocumentFeed, PgFeed, PgStore, SqliteFeed, SqliteStore, Store, StoreError};
use std::path::PathBuf;

/// The database of a deployment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// `compute.db` in this state folder (one host).
    StateDir(PathBuf),
    /// A PostgreSQL connection URL (`postgresql://user@host/db`, or a socket folder
    /// as the host: `postgresql://user@%2Frun%2Fpostgresql/db`).
    Postgres(String),
}

impl Location {
    /// For messages: the folder's database file, or the URL without its password.
    pub fn describe(&self) -> String {
        match self {
            Location::StateDir(dir) => dir.join(crate::DB_FILE).display().to_string(),
            Location::Postgres(url) => crate::postgres::describe_url(url),
        }
    }
}

/// Opens (creating or migrating when needed) the store at `location`;
/// `default_cidr` is the fixed-IP network recorded when it is made.
pub fn open_store(
    location: &Location,
    default_cidr: ipnetwork::Ipv4Network,
) -> Result<Box<dyn Store>, StoreError> {
    Ok(match location {
        Location::StateDir(dir) => Box::new(SqliteStore::open(dir, default_cidr)?),
        Location::Postgres(url) => Box::new(PgStore::connect(url, default_cidr)?),
    })
}

/// Opens the change feed at `location` (the database must exist at this binary's
/// schema version: a store makes and migrates it, a feed never writes the schema).
pub fn open_feed(location: &Location) -> Result<Box<dyn DocumentFeed>, StoreError> {
    Ok(match location {
        Location::StateDir(dir) => Box::new(SqliteFeed::open(dir)?),
        Location::Postgres(url) => Box::new(PgFeed::connect(url)?),
    })
}
