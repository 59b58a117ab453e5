//! The SQLite backend: everything in one file (`compute.db` in the state folder),
//! WAL mode so the metadata server reads while compute writes, every change in a
//! transaction so `kill -9` never leaves half of one. SQLite serializes writers, so
//! the revision counter is a row that the triggers bump (see [`schema`]).
//!
//! A state folder is one host: [`Store::register_host`] records the first name it is
//! given and refuses others.
//!
//! This module owns SQL and nothing else: no processes, no files besides the database.
//! Readers outside compute use [`SqliteFeed`].

mod feed;
mod hosts;
mod identity;
mod image_records;
mod instances;
mod resources;
mod schema;
#[cfg(test)]
mod tests;
use crate::records::{
    one_of, ExtraSpecs, FlavorRecord, HostRecord, HostSpec, KeypairRecord, PasswordSet,
    ProjectRecord, ProjectUsage, Role, RoleAssignment, UserRecord, Visibility, Work, WorkAction,
    WorkOutcome,
};
use crate::{
    FaultChange, Image, ImageRecord, InstanceRecord, InstanceSummary, NewInstance, RecordChange,
    Store, StoreError,
};
use compute::flavor::Flavor;
use compute::keypair::Keypair;
use compute::lifecycle::State;
use compute::netalloc::Subnet;
use rusqlite::{params, Connection, Row, TransactionBehavior};
use std::path::Path;
use std::time::Duration;

pub use feed::SqliteFeed;

/// The database file's name inside the state folder.
pub const DB_FILE: &str = "compute.db";

/// How long a writer waits for another's transaction before giving up.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> StoreError {
        StoreError::Backend(Box::new(e))
    }
}

/// The open database: a [`Store`].
pub struct SqliteStore {
    conn: Connection,
    subnet: Subnet,
    location: String,
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
        owner: row.get(10)?,
        visibility: {
            let v: String = row.get(11)?;
            Visibility::parse(&v).ok_or_else(|| {
                rusqlite::Error::FromSqlConversionFailure(
                    11,
                    rusqlite::types::Type::Text,
                    format!("image visibility {v}").into(),
                )
            })?
        },
    })
}

const IMAGE_COLUMNS: &str = "id, name, format, size, virtual_size, checksum, has_kernel, \
     has_ramdisk, cmdline, created_at, owner, visibility";

impl SqliteStore {
    /// Opens (creating when needed) the database in `state_dir`, with WAL and the
    /// default flavors; the network is recorded on first use and kept after.
    pub fn open(
        state_dir: &Path,
        default_cidr: ipnetwork::Ipv4Network,
    ) -> Result<SqliteStore, StoreError> {
        let path = state_dir.join(DB_FILE);
        let open_err = |source: rusqlite::Error| StoreError::Open {
            location: path.display().to_string(),
            source: Box::new(source),
        };
        let conn = Connection::open(&path).map_err(open_err)?;
        conn.busy_timeout(BUSY_TIMEOUT).map_err(open_err)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(open_err)?;
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(open_err)?;
        conn.pragma_update(None, "foreign_keys", "ON")
            .map_err(open_err)?;
        let location = path.display().to_string();
        let mut conn = conn;
        schema::migrate(&mut conn, &location, |tx| {
            for f in FlavorRecord::defaults() {
                resources::insert_flavor(tx, &f, true)?;
            }
            tx.execute(
                "INSERT OR IGNORE INTO meta (key, value) VALUES ('network_cidr', ?1)",
                [default_cidr.to_string()],
            )?;
            Ok(())
        })?;
        Self::with_conn(conn, location)
    }

    fn with_conn(conn: Connection, location: String) -> Result<SqliteStore, StoreError> {
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
        Ok(SqliteStore {
            conn,
            subnet,
            location,
        })
    }

    /// For benchmarks and bulk tools: runs `f` inside one transaction.
    pub fn in_transaction<T>(
        &mut self,
        f: impl FnOnce(&SqliteStore) -> Result<T, StoreError>,
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

impl Store for SqliteStore {
    fn location(&self) -> String {
        self.location.clone()
    }

    fn subnet(&self) -> Subnet {
        self.subnet
    }

    // ---- flavors

    fn flavors(&self) -> Result<Vec<Flavor>, StoreError> {
        let mut st = self.conn.prepare(
            "SELECT name, vcpus, ram_mb, disk_gb, ephemeral_gb, swap_mb FROM flavors ORDER BY ram_mb, vcpus, name",
        )?;
        let rows = st.query_map([], flavor_from_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn delete_flavor(&self, name: &str) -> Result<(), StoreError> {
        resources::delete_flavor(&self.conn, "name", name)
    }

    fn flavor_records(&self) -> Result<Vec<FlavorRecord>, StoreError> {
        resources::flavor_records(&self.conn)
    }

    fn flavor_record(&self, key: &str) -> Result<FlavorRecord, StoreError> {
        resources::flavor_record(&self.conn, key)
    }

    fn create_flavor(&self, flavor: &FlavorRecord) -> Result<(), StoreError> {
        resources::create_flavor(&self.conn, flavor)
    }

    fn delete_flavor_by_id(&self, id: &str) -> Result<(), StoreError> {
        resources::delete_flavor(&self.conn, "flavorid", id)
    }

    fn set_flavor_extra_specs(
        &mut self,
        id: &str,
        specs: &ExtraSpecs,
    ) -> Result<ExtraSpecs, StoreError> {
        resources::set_extra_specs(&self.conn, id, specs)
    }

    fn delete_flavor_extra_spec(&self, id: &str, key: &str) -> Result<(), StoreError> {
        resources::delete_extra_spec(&self.conn, id, key)
    }

    // ---- images

    fn add_image(&self, image: &Image) -> Result<(), StoreError> {
        self.conn.execute(
            &format!("INSERT INTO images ({IMAGE_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)"),
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
                image.created_at,
                image.owner,
                image.visibility.as_str()
            ],
        )?;
        Ok(())
    }

    fn images(&self) -> Result<Vec<Image>, StoreError> {
        let mut st = self.conn.prepare(&format!(
            "SELECT {IMAGE_COLUMNS} FROM images ORDER BY created_at, id"
        ))?;
        let rows = st.query_map([], image_from_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// An image by id, or by name when exactly one has it.
    fn image(&self, key: &str) -> Result<Image, StoreError> {
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
    fn delete_image(&mut self, id: &str) -> Result<(), StoreError> {
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
        tx.execute("DELETE FROM image_records WHERE id = ?1", [id])?;
        tx.commit()?;
        Ok(())
    }

    fn add_image_record(&self, record: &ImageRecord) -> Result<(), StoreError> {
        image_records::add(&self.conn, record)
    }

    fn image_record(&self, id: &str) -> Result<ImageRecord, StoreError> {
        image_records::get(&self.conn, id)
    }

    fn image_records(&self) -> Result<Vec<ImageRecord>, StoreError> {
        image_records::all(&self.conn)
    }

    fn update_image_record(
        &mut self,
        id: &str,
        change: &mut RecordChange<'_>,
    ) -> Result<ImageRecord, StoreError> {
        image_records::update(&self.conn, id, change)
    }

    fn delete_image_record(&self, id: &str) -> Result<bool, StoreError> {
        image_records::delete(&self.conn, id)
    }

    fn end_abandoned_uploads(&self, now: &str) -> Result<Vec<ImageRecord>, StoreError> {
        image_records::end_abandoned(&self.conn, now)
    }

    // ---- keypairs

    fn add_keypair(
        &self,
        user_id: &str,
        keypair: &Keypair,
        created_at: &str,
    ) -> Result<KeypairRecord, StoreError> {
        resources::add_keypair(&self.conn, user_id, keypair, created_at)
    }

    fn keypairs(&self, user_id: &str) -> Result<Vec<KeypairRecord>, StoreError> {
        resources::keypairs(&self.conn, user_id)
    }

    fn keypair(&self, user_id: &str, name: &str) -> Result<KeypairRecord, StoreError> {
        resources::keypair(&self.conn, user_id, name)
    }

    fn delete_keypair(&self, user_id: &str, name: &str) -> Result<(), StoreError> {
        resources::delete_keypair(&self.conn, user_id, name)
    }

    // ---- identity

    fn add_project(&self, project: &ProjectRecord) -> Result<(), StoreError> {
        identity::add_project(&self.conn, project)
    }

    fn projects(&self) -> Result<Vec<ProjectRecord>, StoreError> {
        identity::projects(&self.conn)
    }

    fn project(&self, key: &str) -> Result<ProjectRecord, StoreError> {
        identity::project(&self.conn, key)
    }

    fn add_user(&self, user: &UserRecord) -> Result<(), StoreError> {
        identity::add_user(&self.conn, user)
    }

    fn users(&self) -> Result<Vec<UserRecord>, StoreError> {
        identity::users(&self.conn)
    }

    fn user(&self, key: &str) -> Result<UserRecord, StoreError> {
        identity::user(&self.conn, key)
    }

    fn set_user_enabled(&self, id: &str, enabled: bool) -> Result<(), StoreError> {
        identity::set_user_enabled(&self.conn, id, enabled)
    }

    fn set_user_password(&self, id: &str, password_hash: Option<&str>) -> Result<(), StoreError> {
        identity::set_user_password(&self.conn, id, password_hash)
    }

    fn add_role(&self, assignment: &RoleAssignment) -> Result<(), StoreError> {
        identity::add_role(&self.conn, assignment)
    }

    fn remove_role(&self, assignment: &RoleAssignment) -> Result<(), StoreError> {
        identity::remove_role(&self.conn, assignment)
    }

    fn role_assignments(&self) -> Result<Vec<RoleAssignment>, StoreError> {
        identity::role_assignments(&self.conn)
    }

    fn roles_of(&self, user_id: &str, project_id: &str) -> Result<Vec<Role>, StoreError> {
        identity::roles_of(&self.conn, user_id, project_id)
    }

    fn project_usage(&self, project_id: &str) -> Result<ProjectUsage, StoreError> {
        identity::project_usage(&self.conn, project_id)
    }

    // ---- instances

    fn insert_instance(&mut self, new: &NewInstance<'_>) -> Result<InstanceRecord, StoreError> {
        instances::insert(&mut self.conn, self.subnet, new, None).map(|(rec, _)| rec)
    }

    fn insert_instance_with_work(
        &mut self,
        new: &NewInstance<'_>,
        action: &WorkAction,
    ) -> Result<(InstanceRecord, u64), StoreError> {
        let (rec, id) = instances::insert(&mut self.conn, self.subnet, new, Some(action))?;
        Ok((rec, id.unwrap_or_default()))
    }

    fn instance_by_uuid(&self, uuid: &str) -> Result<InstanceRecord, StoreError> {
        instances::by_uuid(&self.conn, uuid)
    }

    fn find_instance(&self, key: &str) -> Result<InstanceRecord, StoreError> {
        instances::find(&self.conn, key)
    }

    fn list_instances(&self) -> Result<Vec<InstanceSummary>, StoreError> {
        instances::list(&self.conn)
    }

    fn instance_records(&self, project: Option<&str>) -> Result<Vec<InstanceRecord>, StoreError> {
        instances::records(&self.conn, project)
    }

    fn instance_page(
        &self,
        query: &crate::InstanceQuery<'_>,
    ) -> Result<Vec<InstanceRecord>, StoreError> {
        instances::page(&self.conn, query)
    }

    fn instances_claiming_processes(&self, host: &str) -> Result<Vec<InstanceSummary>, StoreError> {
        instances::claiming_processes(&self.conn, host)
    }

    fn set_state(
        &self,
        uuid: &str,
        state: State,
        fault: FaultChange<'_>,
        now: &str,
    ) -> Result<(), StoreError> {
        instances::set_state(&self.conn, uuid, state, fault, now)
    }

    fn set_runtime(
        &self,
        uuid: &str,
        pid: Option<i32>,
        ssh_port: Option<u16>,
    ) -> Result<(), StoreError> {
        instances::set_runtime(&self.conn, uuid, pid, ssh_port)
    }

    fn set_document(&self, uuid: &str, image_id: &str, document: &str) -> Result<(), StoreError> {
        instances::set_document(&self.conn, uuid, image_id, document)
    }

    fn update_document(
        &mut self,
        key: &str,
        now: &str,
        change: &dyn Fn(&str) -> Result<String, crate::DocumentProblem>,
    ) -> Result<InstanceRecord, StoreError> {
        instances::update_document(&mut self.conn, key, now, change)
    }

    fn delete_instance(&self, uuid: &str) -> Result<(), StoreError> {
        instances::delete(&self.conn, uuid)?;
        self.purge_tombstones(crate::TOMBSTONE_GRACE)?;
        Ok(())
    }

    fn purge_tombstones(&self, grace: Duration) -> Result<u64, StoreError> {
        instances::purge_tombstones(&self.conn, grace)
    }

    fn password(&self, uuid: &str) -> Result<Option<String>, StoreError> {
        instances::password(&self.conn, uuid)
    }

    fn set_password(&self, uuid: &str, password: &str) -> Result<PasswordSet, StoreError> {
        instances::set_password(&self.conn, uuid, password)
    }

    fn clear_password(&self, uuid: &str) -> Result<bool, StoreError> {
        instances::clear_password(&self.conn, uuid)
    }

    fn register_host(&self, spec: &HostSpec) -> Result<HostRecord, StoreError> {
        hosts::register(&self.conn, spec)
    }

    fn heartbeat(&self, name: &str) -> Result<(), StoreError> {
        hosts::heartbeat(&self.conn, name)
    }

    fn hosts(&self) -> Result<Vec<HostRecord>, StoreError> {
        hosts::all(&self.conn)
    }

    fn host(&self, name: &str) -> Result<HostRecord, StoreError> {
        hosts::one(&self.conn, name)
    }

    fn set_host_enabled(
        &self,
        name: &str,
        enabled: bool,
        reason: Option<&str>,
    ) -> Result<(), StoreError> {
        hosts::set_enabled(&self.conn, name, enabled, reason)
    }

    fn enqueue(&self, host: &str, uuid: &str, action: &WorkAction) -> Result<u64, StoreError> {
        hosts::enqueue(&self.conn, host, uuid, action)
    }

    fn take_work(&self, host: &str) -> Result<Option<Work>, StoreError> {
        hosts::take_work(&self.conn, host)
    }

    fn finish_work(&self, id: u64, outcome: &WorkOutcome) -> Result<(), StoreError> {
        hosts::finish_work(&self.conn, id, outcome)
    }

    fn work(&self, id: u64) -> Result<Work, StoreError> {
        hosts::work(&self.conn, id)
    }

    fn queued_work(&self, host: &str) -> Result<Vec<Work>, StoreError> {
        hosts::queued_work(&self.conn, host)
    }

    fn requeue_running(&self, host: &str) -> Result<u64, StoreError> {
        hosts::requeue_running(&self.conn, host)
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
