//! The state database: flavors, images, keypairs and instances in one SQLite file
//! (`compute.db` in the state folder), WAL mode so the metadata server reads while
//! compute writes, every change in a transaction so `kill -9` never leaves half of one.
//!
//! This module owns SQL and nothing else: no processes, no files besides the database.
//! Readers outside compute use [`read::DocumentReader`].

mod instances;
pub mod read;
mod schema;

use crate::flavor::Flavor;
use crate::keypair::Keypair;
use crate::lifecycle::{PowerState, State, TaskState, VmState};
use crate::mac::MacAddr;
use crate::netalloc::{self, NetAllocError, Subnet};
use rusqlite::{params, Connection, OptionalExtension, Row, TransactionBehavior};
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use read::{DocumentReader, StoredDocument};

/// The database file's name inside the state folder.
pub const DB_FILE: &str = "compute.db";

/// How long a writer waits for another's transaction before giving up.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database {path}: {source}")]
    Open {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error("database: {0}")]
    Sql(#[from] rusqlite::Error),
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

/// A disk image as recorded; its files are `images/<id>/{disk,kernel,ramdisk}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Image {
    pub id: String,
    pub name: String,
    pub format: String,
    pub size: u64,
    pub virtual_size: u64,
    pub checksum: String,
    pub has_kernel: bool,
    pub has_ramdisk: bool,
    pub cmdline: Option<String>,
    pub created_at: String,
}

/// Nova's `fault` as `nova show` prints it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fault {
    pub code: u16,
    pub message: String,
}

/// One instance row.
#[derive(Debug, Clone, PartialEq)]
pub struct InstanceRecord {
    pub uuid: String,
    pub name: String,
    pub flavor: Flavor,
    pub image_id: String,
    pub key_name: Option<String>,
    pub state: State,
    pub fixed_ip: Ipv4Addr,
    pub mac: MacAddr,
    pub ssh_port: Option<u16>,
    pub pid: Option<i32>,
    pub fault: Option<Fault>,
    /// The instance document (instance.md), JSON.
    pub document: String,
    pub created_at: String,
    pub updated_at: String,
}

/// What `list` shows: no documents, so that listing stays fast.
#[derive(Debug, Clone, PartialEq)]
pub struct InstanceSummary {
    pub uuid: String,
    pub name: String,
    pub state: State,
    pub fixed_ip: String,
    pub pid: Option<i32>,
}

/// An instance about to be recorded; IP and MAC are allocated on insert.
pub struct NewInstance<'a> {
    pub uuid: &'a str,
    pub name: &'a str,
    pub flavor: &'a Flavor,
    pub image_id: &'a str,
    pub key_name: Option<&'a str>,
    pub now: &'a str,
    pub mac_candidates: Vec<[u8; 3]>,
    /// Builds the document once IP and MAC are known.
    pub document: &'a dyn Fn(Ipv4Addr, MacAddr) -> Result<String, String>,
}

pub struct Store {
    conn: Connection,
    subnet: Subnet,
}

fn parse_state(vm: &str, task: Option<&str>, power: &str, key: &str) -> Result<State, StoreError> {
    let corrupt = |problem: String| StoreError::Corrupt {
        what: "state",
        key: key.to_owned(),
        problem,
    };
    Ok(State {
        vm: VmState::parse(vm).ok_or_else(|| corrupt(format!("vm_state {vm}")))?,
        task: match task {
            None => None,
            Some(t) => Some(TaskState::parse(t).ok_or_else(|| corrupt(format!("task_state {t}")))?),
        },
        power: PowerState::parse(power).ok_or_else(|| corrupt(format!("power_state {power}")))?,
    })
}

fn image_from_row(row: &Row<'_>) -> rusqlite::Result<Image> {
    Ok(Image {
        id: row.get(0)?,
        name: row.get(1)?,
        format: row.get(2)?,
        size: row.get::<_, i64>(3)? as u64,
        virtual_size: row.get::<_, i64>(4)? as u64,
        checksum: row.get(5)?,
        has_kernel: row.get(6)?,
        has_ramdisk: row.get(7)?,
        cmdline: row.get(8)?,
        created_at: row.get(9)?,
    })
}

const IMAGE_COLUMNS: &str =
    "id, name, format, size, virtual_size, checksum, has_kernel, has_ramdisk, cmdline, created_at";

impl Store {
    /// Opens (creating when needed) the database in `state_dir`, with WAL and the
    /// default flavors; the network is recorded on first use and kept after.
    pub fn open(
        state_dir: &Path,
        default_cidr: ipnetwork::Ipv4Network,
    ) -> Result<Store, StoreError> {
        let path = state_dir.join(DB_FILE);
        let open_err = |source| StoreError::Open {
            path: path.clone(),
            source,
        };
        let conn = Connection::open(&path).map_err(open_err)?;
        conn.busy_timeout(BUSY_TIMEOUT).map_err(open_err)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(open_err)?;
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(open_err)?;
        conn.pragma_update(None, "foreign_keys", "ON")
            .map_err(open_err)?;
        let version: i64 = conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .map_err(open_err)?;
        if version < schema::SCHEMA_VERSION {
            let mut conn = conn;
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(open_err)?;
            tx.execute_batch(schema::SCHEMA).map_err(open_err)?;
            for f in Flavor::defaults() {
                insert_flavor(&tx, &f, true)?;
            }
            tx.execute(
                "INSERT OR IGNORE INTO meta (key, value) VALUES ('network_cidr', ?1)",
                [default_cidr.to_string()],
            )?;
            tx.pragma_update(None, "user_version", schema::SCHEMA_VERSION)?;
            tx.commit()?;
            return Self::with_conn(conn);
        }
        Self::with_conn(conn)
    }

    fn with_conn(conn: Connection) -> Result<Store, StoreError> {
        let cidr: String = conn.query_row(
            "SELECT value FROM meta WHERE key = 'network_cidr'",
            [],
            |r| r.get(0),
        )?;
        let corrupt = |problem: String| StoreError::Corrupt {
            what: "network",
            key: cidr.clone(),
            problem,
        };
        let net = cidr
            .parse()
            .map_err(|e: ipnetwork::IpNetworkError| corrupt(e.to_string()))?;
        let subnet = Subnet::new(net)?;
        Ok(Store { conn, subnet })
    }

    pub fn subnet(&self) -> Subnet {
        self.subnet
    }

    // ---- flavors

    pub fn flavors(&self) -> Result<Vec<Flavor>, StoreError> {
        let mut st = self.conn.prepare(
            "SELECT name, vcpus, ram_mb, disk_gb, ephemeral_gb, swap_mb FROM flavors ORDER BY ram_mb, vcpus, name",
        )?;
        let rows = st.query_map([], flavor_from_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    pub fn flavor(&self, name: &str) -> Result<Flavor, StoreError> {
        self.conn
            .query_row(
                "SELECT name, vcpus, ram_mb, disk_gb, ephemeral_gb, swap_mb FROM flavors WHERE name = ?1",
                [name],
                flavor_from_row,
            )
            .optional()?
            .ok_or_else(|| StoreError::NotFound { kind: "flavor", key: name.to_owned() })
    }

    pub fn add_flavor(&self, f: &Flavor) -> Result<(), StoreError> {
        insert_flavor(&self.conn, f, false)
    }

    pub fn delete_flavor(&self, name: &str) -> Result<(), StoreError> {
        match self
            .conn
            .execute("DELETE FROM flavors WHERE name = ?1", [name])?
        {
            0 => Err(StoreError::NotFound {
                kind: "flavor",
                key: name.to_owned(),
            }),
            _ => Ok(()),
        }
    }

    // ---- images

    pub fn add_image(&self, image: &Image) -> Result<(), StoreError> {
        self.conn.execute(
            &format!("INSERT INTO images ({IMAGE_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)"),
            params![
                image.id,
                image.name,
                image.format,
                image.size as i64,
                image.virtual_size as i64,
                image.checksum,
                image.has_kernel,
                image.has_ramdisk,
                image.cmdline,
                image.created_at
            ],
        )?;
        Ok(())
    }

    pub fn images(&self) -> Result<Vec<Image>, StoreError> {
        let mut st = self.conn.prepare(&format!(
            "SELECT {IMAGE_COLUMNS} FROM images ORDER BY created_at, id"
        ))?;
        let rows = st.query_map([], image_from_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// An image by id, or by name when exactly one has it.
    pub fn image(&self, key: &str) -> Result<Image, StoreError> {
        let mut st = self.conn.prepare(&format!(
            "SELECT {IMAGE_COLUMNS} FROM images WHERE id = ?1 OR name = ?1 ORDER BY id"
        ))?;
        let found: Vec<Image> = st
            .query_map([key], image_from_row)?
            .collect::<Result<_, _>>()?;
        if let Some(exact) = found.iter().find(|i| i.id == key) {
            return Ok(exact.clone());
        }
        one_of("image", key, found, |i| i.id.clone())
    }

    /// Deletes an image's row, refusing while any instance uses it.
    pub fn delete_image(&mut self, id: &str) -> Result<(), StoreError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let count: i64 = tx.query_row(
            "SELECT COUNT(*) FROM instances WHERE image_id = ?1",
            [id],
            |r| r.get(0),
        )?;
        if count > 0 {
            return Err(StoreError::ImageInUse {
                id: id.to_owned(),
                count,
            });
        }
        tx.execute("DELETE FROM images WHERE id = ?1", [id])?;
        tx.commit()?;
        Ok(())
    }

    // ---- keypairs

    pub fn add_keypair(&self, k: &Keypair) -> Result<(), StoreError> {
        let n = self.conn.execute(
            "INSERT OR IGNORE INTO keypairs (name, public_key, fingerprint) VALUES (?1, ?2, ?3)",
            params![k.name, k.public_key, k.fingerprint],
        )?;
        if n == 0 {
            return Err(StoreError::Exists {
                kind: "keypair",
                key: k.name.clone(),
            });
        }
        Ok(())
    }

    pub fn keypairs(&self) -> Result<Vec<Keypair>, StoreError> {
        let mut st = self
            .conn
            .prepare("SELECT name, public_key, fingerprint FROM keypairs ORDER BY name")?;
        let rows = st.query_map([], |r| {
            Ok(Keypair {
                name: r.get(0)?,
                public_key: r.get(1)?,
                fingerprint: r.get(2)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    pub fn keypair(&self, name: &str) -> Result<Keypair, StoreError> {
        self.conn
            .query_row(
                "SELECT name, public_key, fingerprint FROM keypairs WHERE name = ?1",
                [name],
                |r| {
                    Ok(Keypair {
                        name: r.get(0)?,
                        public_key: r.get(1)?,
                        fingerprint: r.get(2)?,
                    })
                },
            )
            .optional()?
            .ok_or_else(|| StoreError::NotFound {
                kind: "keypair",
                key: name.to_owned(),
            })
    }

    pub fn delete_keypair(&self, name: &str) -> Result<(), StoreError> {
        match self
            .conn
            .execute("DELETE FROM keypairs WHERE name = ?1", [name])?
        {
            0 => Err(StoreError::NotFound {
                kind: "keypair",
                key: name.to_owned(),
            }),
            _ => Ok(()),
        }
    }

    /// For benchmarks and bulk tools: runs `f` inside one transaction.
    pub fn in_transaction<T>(
        &mut self,
        f: impl FnOnce(&Store) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        self.conn.execute_batch("BEGIN IMMEDIATE")?;
        match f(self) {
            Ok(v) => {
                self.conn.execute_batch("COMMIT")?;
                Ok(v)
            }
            Err(e) => {
                let _ = self.conn.execute_batch("ROLLBACK");
                Err(e)
            }
        }
    }
}

fn flavor_from_row(r: &Row<'_>) -> rusqlite::Result<Flavor> {
    Ok(Flavor {
        name: r.get(0)?,
        vcpus: r.get(1)?,
        ram_mb: r.get(2)?,
        disk_gb: r.get(3)?,
        ephemeral_gb: r.get(4)?,
        swap_mb: r.get(5)?,
    })
}

fn insert_flavor(conn: &Connection, f: &Flavor, or_ignore: bool) -> Result<(), StoreError> {
    let verb = if or_ignore {
        "INSERT OR IGNORE"
    } else {
        "INSERT OR ABORT"
    };
    let res = conn.execute(
        &format!("{verb} INTO flavors (name, vcpus, ram_mb, disk_gb, ephemeral_gb, swap_mb) VALUES (?1, ?2, ?3, ?4, ?5, ?6)"),
        params![f.name, f.vcpus, f.ram_mb, f.disk_gb, f.ephemeral_gb, f.swap_mb],
    );
    match res {
        Ok(_) => Ok(()),
        Err(rusqlite::Error::SqliteFailure(e, _))
            if e.code == rusqlite::ErrorCode::ConstraintViolation =>
        {
            Err(StoreError::Exists {
                kind: "flavor",
                key: f.name.clone(),
            })
        }
        Err(e) => Err(e.into()),
    }
}

fn one_of<T>(
    kind: &'static str,
    key: &str,
    mut found: Vec<T>,
    id: impl Fn(&T) -> String,
) -> Result<T, StoreError> {
    match found.len() {
        0 => Err(StoreError::NotFound {
            kind,
            key: key.to_owned(),
        }),
        1 => Ok(found.remove(0)),
        _ => Err(StoreError::Ambiguous {
            kind,
            key: key.to_owned(),
            ids: found.iter().map(id).collect::<Vec<_>>().join(", "),
        }),
    }
}

#[cfg(test)]
mod tests;
