//! The store test suite: every test runs against both backends, SQLite in a
//! temporary state folder and PostgreSQL in a fresh database of this binary's
//! throwaway cluster (`pgtest`). Raw SQL checks go through `psql` and rusqlite, so
//! that what is asserted is what the database holds.

mod agent;
mod feed;
mod hosts;
mod identity;
mod image_records;
mod instances;
mod resources;
mod schema;
mod work;

use compute::mac::MacAddr;
use compute::placement::{Resources, DEFAULT_UP_TIMEOUT};
use compute_store::{
    open_feed, open_store, DocumentFeed, HostSpec, InstanceRecord, Location, NewInstance, Store,
};
use std::net::Ipv4Addr;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

pub struct Fixture {
    pub backend: Backend,
    pub location: Location,
    pub dir: tempfile::TempDir,
    pub db: Option<pgtest::Database>,
}

pub const CIDR: &str = "10.0.0.0/24";
/// The host every test registers first (a SQLite state folder has only one).
pub const HOST: &str = "h1";

impl Fixture {
    pub fn new(backend: Backend) -> Fixture {
        let dir = tempfile::tempdir().expect("tempdir");
        let (location, db) = match backend {
            Backend::Sqlite => (Location::StateDir(dir.path().to_owned()), None),
            Backend::Postgres => {
                let db = pgtest::cluster().database();
                (Location::Postgres(db.url()), Some(db))
            }
        };
        Fixture {
            backend,
            location,
            dir,
            db,
        }
    }

    /// A new connection to the store (made or migrated on first use).
    pub fn store(&self) -> Box<dyn Store> {
        open_store(&self.location, CIDR.parse().expect("cidr")).expect("open store")
    }

    /// A store with [`HOST`] registered, up, with room for many instances.
    pub fn store_with_host(&self) -> Box<dyn Store> {
        let store = self.store();
        register(store.as_ref(), HOST, 64, 65536, 1000);
        store
    }

    pub fn feed(&self) -> Box<dyn DocumentFeed> {
        open_feed(&self.location).expect("open feed")
    }

    /// Runs SQL straight on the database; rows as `psql -A -t` prints them
    /// (columns joined by `|`, NULL empty).
    pub fn sql(&self, sql: &str) -> String {
        match &self.db {
            Some(db) => db.psql(sql),
            None => {
                let conn = rusqlite::Connection::open(self.dir.path().join(compute_store::DB_FILE))
                    .expect("sqlite");
                let mut st = conn.prepare(sql).expect("prepare");
                let n = st.column_count();
                let mut rows = st.query([]).expect("query");
                let mut out = Vec::new();
                while let Some(r) = rows.next().expect("row") {
                    let cells: Vec<String> = (0..n)
                        .map(|i| match r.get_ref(i).expect("cell") {
                            rusqlite::types::ValueRef::Null => String::new(),
                            rusqlite::types::ValueRef::Integer(v) => v.to_string(),
                            rusqlite::types::ValueRef::Real(v) => v.to_string(),
                            rusqlite::types::ValueRef::Text(t) => {
                                String::from_utf8_lossy(t).into_owned()
                            }
                            rusqlite::types::ValueRef::Blob(_) => "<blob>".into(),
                        })
                        .collect();
                    out.push(cells.join("|"));
                }
                out.join("\n")
            }
        }
    }

    /// Runs statements that return nothing.
    pub fn exec(&self, sql: &str) {
        match &self.db {
            Some(db) => {
                db.psql(sql);
            }
            None => {
                rusqlite::Connection::open(self.dir.path().join(compute_store::DB_FILE))
                    .expect("sqlite")
                    .execute_batch(sql)
                    .expect("exec");
            }
        }
    }
}

pub fn register(store: &dyn Store, name: &str, vcpus: u64, ram_mb: u64, disk_gb: u64) {
    store
        .register_host(&HostSpec {
            name: name.into(),
            capacity: Resources {
                vcpus,
                ram_mb,
                disk_gb,
            },
            ratios: None,
        })
        .expect("register host");
}

pub fn uuid(n: u32) -> String {
    format!("00000000-0000-0000-0000-{n:012}")
}

/// Boots (records) an instance of `flavor` on `host` (or wherever placement puts it).
pub fn try_add(
    store: &mut dyn Store,
    uuid: &str,
    name: &str,
    flavor: &str,
    host: Option<&str>,
) -> Result<InstanceRecord, compute_store::StoreError> {
    let flavor = store.flavor(flavor).expect("flavor");
    let doc = |ip: Ipv4Addr, mac: MacAddr| {
        Ok(serde_json::json!({"uuid": uuid, "name": name, "ip": ip.to_string(), "mac": mac.to_string(), "meta": {}}).to_string())
    };
    let tail = uuid.as_bytes()[uuid.len() - 2..].to_vec();
    store.insert_instance(&NewInstance {
        uuid,
        name,
        flavor: &flavor,
        image_id: "img",
        key_name: None,
        project_id: compute_store::DEFAULT_PROJECT_ID,
        user_id: compute_store::OPERATOR_USER_ID,
        now: "2024-01-01T00:00:00Z",
        host,
        up_timeout: DEFAULT_UP_TIMEOUT,
        mac_candidates: vec![
            [0, tail[0], tail[1]],
            [1, tail[0], tail[1]],
            [2, tail[0], tail[1]],
        ],
        document: &doc,
    })
}

pub fn add(store: &mut dyn Store, n: u32, name: &str) -> InstanceRecord {
    try_add(store, &uuid(n), name, "m1.tiny", None).expect("insert")
}

/// Declares each test function once per backend: `sqlite::name` and `postgres::name`.
#[macro_export]
macro_rules! both {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $( #[test] fn $name() { super::$name($crate::Fixture::new($crate::Backend::Sqlite)) } )*
        }
        mod postgres {
            $( #[test] fn $name() { super::$name($crate::Fixture::new($crate::Backend::Postgres)) } )*
        }
    };
}

/// Declares tests of what only PostgreSQL has (several hosts in one database).
#[macro_export]
macro_rules! postgres_only {
    ($($name:ident),* $(,)?) => {
        mod postgres_only {
            $( #[test] fn $name() { super::$name($crate::Fixture::new($crate::Backend::Postgres)) } )*
        }
    };
}
