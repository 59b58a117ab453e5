//! The PostgreSQL backend: the state many hosts share, through the `postgres` crate
//! (the blocking client of tokio-postgres: the [`Store`] trait is synchronous; an
//! async consumer can use tokio-postgres itself on the same schema).
//!
//! What PostgreSQL does, it does here: every method is one transaction; the revision
//! counter is one row that a trigger bumps in each writing transaction, whose row
//! lock makes revisions commit in order (a SEQUENCE would not: a transaction that
//! took a smaller number could commit after a reader saw a bigger one, and that
//! reader would skip it); the same trigger turns deletions into tombstones and sends
//! `NOTIFY compute_changes` ([`crate::CHANGES_CHANNEL`]) in the transaction; inserts
//! serialize on the network row (`FOR UPDATE`) so that placement and address
//! allocation see every earlier boot; workers take queued work with
//! `FOR UPDATE SKIP LOCKED`; migrations hold an advisory lock.
//!
//! A lost connection (the server restarted, the network) fails the request in flight
//! with [`StoreError::Unavailable`] (the transaction did not commit: nothing of it
//! stays) and the next request reconnects. No TLS: reach the server over its Unix
//! socket, or a network you trust.

mod agent;
mod conn;
mod feed;
mod hosts;
mod identity;
mod image_records;
mod images;
mod instances;
mod resources;
mod schema;

pub use agent::{lease_name, PgHostLease, PgWorkWatch, WorkNotice};
pub use conn::{describe_url, split_password, PASSWORD_ENV};
pub use feed::PgFeed;

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
use conn::{col, Conn};
use postgres::error::SqlState;
use postgres::{GenericClient, Row};
use std::cell::RefCell;
use std::time::Duration;

impl From<postgres::Error> for StoreError {
    fn from(e: postgres::Error) -> StoreError {
        StoreError::Backend(Box::new(e))
    }
}

/// A PostgreSQL database as a [`Store`].
pub struct PgStore {
    conn: RefCell<Conn>,
    subnet: Subnet,
}

const IMAGE_COLUMNS: &str = "id, name, format, size, virtual_size, checksum, has_kernel, \
     has_ramdisk, cmdline, created_at, owner, visibility";

fn image_from_row(r: &Row) -> Result<Image, StoreError> {
    let n = |i| -> Result<u64, StoreError> { Ok(col::<i64>(r, i)?.max(0) as u64) };
    Ok(Image {
        id: col(r, 0)?,
        name: col(r, 1)?,
        format: col(r, 2)?,
        size: n(3)?,
        virtual_size: n(4)?,
        checksum: col(r, 5)?,
        has_kernel: col(r, 6)?,
        has_ramdisk: col(r, 7)?,
        cmdline: col(r, 8)?,
        created_at: col(r, 9)?,
        owner: col(r, 10)?,
        visibility: {
            let v: String = col(r, 11)?;
            Visibility::parse(&v).ok_or_else(|| StoreError::Corrupt {
                what: "image visibility",
                key: r.try_get::<_, String>(0).unwrap_or_default(),
                problem: v,
            })?
        },
    })
}

fn flavor_from_row(r: &Row) -> Result<Flavor, StoreError> {
    let n = |i| -> Result<u32, StoreError> {
        let v: i64 = col(r, i)?;
        u32::try_from(v).map_err(|_| StoreError::Corrupt {
            what: "flavor",
            key: r.try_get::<_, String>(0).unwrap_or_default(),
            problem: format!("column {i} is {v}"),
        })
    };
    Ok(Flavor {
        name: col(r, 0)?,
        vcpus: n(1)?,
        ram_mb: n(2)?,
        disk_gb: n(3)?,
        ephemeral_gb: n(4)?,
        swap_mb: n(5)?,
    })
}

fn insert_image(c: &mut impl GenericClient, image: &Image) -> Result<(), StoreError> {
    let res = c.execute(
        &format!(
            "INSERT INTO images ({IMAGE_COLUMNS}) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
        ),
        &[
            &image.id,
            &image.name,
            &image.format,
            &(image.size as i64),
            &(image.virtual_size as i64),
            &image.checksum,
            &image.has_kernel,
            &image.has_ramdisk,
            &image.cmdline,
            &image.created_at,
            &image.owner,
            &image.visibility.as_str(),
        ],
    );
    match res {
        Ok(_) => Ok(()),
        Err(e) if e.code() == Some(&SqlState::UNIQUE_VIOLATION) => Err(StoreError::Exists {
            kind: "image",
            key: image.id.clone(),
        }),
        Err(e) => Err(e.into()),
    }
}

impl PgStore {
    /// Connects to the database at `url`, making or migrating its schema when needed
    /// (in one transaction, under an advisory lock); `default_cidr` is the fixed-IP
    /// network recorded when it is made.
    pub fn connect(url: &str, default_cidr: ipnetwork::Ipv4Network) -> Result<PgStore, StoreError> {
        let mut conn = Conn::connect(url)?;
        let location = conn.location().to_owned();
        let cidr = conn.run(|c| {
            schema::migrate(c, &location, |tx| {
                for f in FlavorRecord::defaults() {
                    resources::insert_flavor(tx, &f, true)?;
                }
                tx.execute(
                    "INSERT INTO meta (key, value) VALUES ('network_cidr', $1) \
                     ON CONFLICT (key) DO NOTHING",
                    &[&default_cidr.to_string()],
                )?;
                Ok(())
            })?;
            let row = c.query_one("SELECT value FROM meta WHERE key = 'network_cidr'", &[])?;
            col::<String>(&row, 0)
        })?;
        let net = cidr
            .parse()
            .map_err(|e: ipnetwork::IpNetworkError| StoreError::Corrupt {
                what: "network",
                key: cidr.clone(),
                problem: e.to_string(),
            })?;
        Ok(PgStore {
            conn: RefCell::new(conn),
            subnet: Subnet::new(net)?,
        })
    }

    /// Runs `f` on the connection (reconnecting first when it was lost).
    fn run<T>(
        &self,
        f: impl FnOnce(&mut postgres::Client) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        self.conn.borrow_mut().run(f)
    }
}

fn not_found(n: u64, kind: &'static str, key: &str) -> Result<(), StoreError> {
    match n {
        0 => Err(StoreError::NotFound {
            kind,
            key: key.to_owned(),
        }),
        _ => Ok(()),
    }
}

impl Store for PgStore {
    fn location(&self) -> String {
        self.conn.borrow().location().to_owned()
    }

    fn subnet(&self) -> Subnet {
        self.subnet
    }

    // ---- flavors

    fn flavors(&self) -> Result<Vec<Flavor>, StoreError> {
        self.run(|c| {
            c.query(
                "SELECT name, vcpus, ram_mb, disk_gb, ephemeral_gb, swap_mb FROM flavors \
                 ORDER BY ram_mb, vcpus, name",
                &[],
            )?
            .iter()
            .map(flavor_from_row)
            .collect()
        })
    }

    fn delete_flavor(&self, name: &str) -> Result<(), StoreError> {
        self.run(|c| resources::delete_flavor(c, "name", name))
    }

    fn flavor_records(&self) -> Result<Vec<FlavorRecord>, StoreError> {
        self.run(resources::flavor_records)
    }

    fn flavor_record(&self, key: &str) -> Result<FlavorRecord, StoreError> {
        self.run(|c| resources::flavor_record(c, key))
    }

    fn create_flavor(&self, flavor: &FlavorRecord) -> Result<(), StoreError> {
        self.run(|c| resources::create_flavor(c, flavor))
    }

    fn delete_flavor_by_id(&self, id: &str) -> Result<(), StoreError> {
        self.run(|c| resources::delete_flavor(c, "flavorid", id))
    }

    fn set_flavor_extra_specs(
        &mut self,
        id: &str,
        specs: &ExtraSpecs,
    ) -> Result<ExtraSpecs, StoreError> {
        self.run(|c| resources::set_extra_specs(c, id, specs))
    }

    fn delete_flavor_extra_spec(&self, id: &str, key: &str) -> Result<(), StoreError> {
        self.run(|c| resources::delete_extra_spec(c, id, key))
    }

    // ---- images

    fn add_image(&self, image: &Image) -> Result<(), StoreError> {
        self.run(|c| insert_image(c, image))
    }

    fn keeps_image_files(&self) -> bool {
        true
    }

    fn add_image_with_files(
        &mut self,
        image: &Image,
        files: &mut [(crate::ImagePart, &mut dyn std::io::Read)],
    ) -> Result<Image, StoreError> {
        self.run(|c| images::add_with_files(c, image, files))
    }

    fn read_image_file(
        &self,
        id: &str,
        part: crate::ImagePart,
        out: &mut dyn std::io::Write,
    ) -> Result<crate::ImageFile, StoreError> {
        self.run(|c| images::read_file(c, id, part, out))
    }

    fn images(&self) -> Result<Vec<Image>, StoreError> {
        self.run(|c| {
            c.query(
                &format!("SELECT {IMAGE_COLUMNS} FROM images ORDER BY created_at, id"),
                &[],
            )?
            .iter()
            .map(image_from_row)
            .collect()
        })
    }

    fn image(&self, key: &str) -> Result<Image, StoreError> {
        let found: Vec<Image> = self.run(|c| {
            c.query(
                &format!(
                    "SELECT {IMAGE_COLUMNS} FROM images WHERE id = $1 OR name = $1 ORDER BY id"
                ),
                &[&key],
            )?
            .iter()
            .map(image_from_row)
            .collect()
        })?;
        if let Some(exact) = found.iter().find(|i| i.id == key) {
            return Ok(exact.clone());
        }
        one_of("image", key, found, |i| i.id.clone())
    }

    fn delete_image(&mut self, id: &str) -> Result<(), StoreError> {
        self.run(|c| {
            let mut tx = c.transaction()?;
            // Boots lock the image row too (FOR SHARE), so none can start using it
            // between the count and the deletion.
            tx.query_opt("SELECT 1 FROM images WHERE id = $1 FOR UPDATE", &[&id])?;
            let count: i64 = col(
                &tx.query_one("SELECT COUNT(*) FROM instances WHERE image_id = $1", &[&id])?,
                0,
            )?;
            if count > 0 {
                return Err(StoreError::ImageInUse {
                    id: id.to_owned(),
                    count,
                });
            }
            tx.execute("DELETE FROM images WHERE id = $1", &[&id])?;
            tx.execute("DELETE FROM image_records WHERE id = $1", &[&id])?;
            tx.commit()?;
            Ok(())
        })
    }

    fn add_image_record(&self, record: &ImageRecord) -> Result<(), StoreError> {
        self.run(|c| image_records::add(c, record))
    }

    fn image_record(&self, id: &str) -> Result<ImageRecord, StoreError> {
        self.run(|c| image_records::get(c, id))
    }

    fn image_records(&self) -> Result<Vec<ImageRecord>, StoreError> {
        self.run(image_records::all)
    }

    fn update_image_record(
        &mut self,
        id: &str,
        change: &mut RecordChange<'_>,
    ) -> Result<ImageRecord, StoreError> {
        self.run(|c| image_records::update(c, id, change))
    }

    fn delete_image_record(&self, id: &str) -> Result<bool, StoreError> {
        self.run(|c| image_records::delete(c, id))
    }

    fn end_abandoned_uploads(&self, now: &str) -> Result<Vec<ImageRecord>, StoreError> {
        self.run(|c| image_records::end_abandoned(c, now))
    }

    // ---- keypairs

    fn add_keypair(
        &self,
        user_id: &str,
        keypair: &Keypair,
        created_at: &str,
    ) -> Result<KeypairRecord, StoreError> {
        self.run(|c| resources::add_keypair(c, user_id, keypair, created_at))
    }

    fn keypairs(&self, user_id: &str) -> Result<Vec<KeypairRecord>, StoreError> {
        self.run(|c| resources::keypairs(c, user_id))
    }

    fn keypair(&self, user_id: &str, name: &str) -> Result<KeypairRecord, StoreError> {
        self.run(|c| resources::keypair(c, user_id, name))
    }

    fn delete_keypair(&self, user_id: &str, name: &str) -> Result<(), StoreError> {
        self.run(|c| resources::delete_keypair(c, user_id, name))
    }

    // ---- identity

    fn add_project(&self, project: &ProjectRecord) -> Result<(), StoreError> {
        self.run(|c| identity::add_project(c, project))
    }

    fn projects(&self) -> Result<Vec<ProjectRecord>, StoreError> {
        self.run(identity::projects)
    }

    fn project(&self, key: &str) -> Result<ProjectRecord, StoreError> {
        self.run(|c| identity::project(c, key))
    }

    fn add_user(&self, user: &UserRecord) -> Result<(), StoreError> {
        self.run(|c| identity::add_user(c, user))
    }

    fn users(&self) -> Result<Vec<UserRecord>, StoreError> {
        self.run(identity::users)
    }

    fn user(&self, key: &str) -> Result<UserRecord, StoreError> {
        self.run(|c| identity::user(c, key))
    }

    fn set_user_enabled(&self, id: &str, enabled: bool) -> Result<(), StoreError> {
        self.run(|c| identity::set_user_enabled(c, id, enabled))
    }

    fn set_user_password(&self, id: &str, password_hash: Option<&str>) -> Result<(), StoreError> {
        self.run(|c| identity::set_user_password(c, id, password_hash))
    }

    fn add_role(&self, assignment: &RoleAssignment) -> Result<(), StoreError> {
        self.run(|c| identity::add_role(c, assignment))
    }

    fn remove_role(&self, assignment: &RoleAssignment) -> Result<(), StoreError> {
        self.run(|c| identity::remove_role(c, assignment))
    }

    fn role_assignments(&self) -> Result<Vec<RoleAssignment>, StoreError> {
        self.run(identity::role_assignments)
    }

    fn roles_of(&self, user_id: &str, project_id: &str) -> Result<Vec<Role>, StoreError> {
        self.run(|c| identity::roles_of(c, user_id, project_id))
    }

    fn project_usage(&self, project_id: &str) -> Result<ProjectUsage, StoreError> {
        self.run(|c| identity::project_usage(c, project_id))
    }

    // ---- instances

    fn insert_instance(&mut self, new: &NewInstance<'_>) -> Result<InstanceRecord, StoreError> {
        let subnet = self.subnet;
        self.run(|c| instances::insert(c, subnet, new, None))
            .map(|(rec, _)| rec)
    }

    fn insert_instance_with_work(
        &mut self,
        new: &NewInstance<'_>,
        action: &WorkAction,
    ) -> Result<(InstanceRecord, u64), StoreError> {
        let subnet = self.subnet;
        let (rec, id) = self.run(|c| instances::insert(c, subnet, new, Some(action)))?;
        Ok((rec, id.unwrap_or_default()))
    }

    fn instance_by_uuid(&self, uuid: &str) -> Result<InstanceRecord, StoreError> {
        self.run(|c| instances::by_uuid(c, uuid))
    }

    fn find_instance(&self, key: &str) -> Result<InstanceRecord, StoreError> {
        self.run(|c| instances::find(c, key))
    }

    fn list_instances(&self) -> Result<Vec<InstanceSummary>, StoreError> {
        self.run(instances::list)
    }

    fn instance_records(&self, project: Option<&str>) -> Result<Vec<InstanceRecord>, StoreError> {
        self.run(|c| instances::records(c, project))
    }

    fn instance_page(
        &self,
        query: &crate::InstanceQuery<'_>,
    ) -> Result<Vec<InstanceRecord>, StoreError> {
        self.run(|c| instances::page(c, query))
    }

    fn instances_claiming_processes(&self, host: &str) -> Result<Vec<InstanceSummary>, StoreError> {
        self.run(|c| instances::claiming_processes(c, host))
    }

    fn set_state(
        &self,
        uuid: &str,
        state: State,
        fault: FaultChange<'_>,
        now: &str,
    ) -> Result<(), StoreError> {
        self.run(|c| instances::set_state(c, uuid, state, fault, now))
    }

    fn set_runtime(
        &self,
        uuid: &str,
        pid: Option<i32>,
        ssh_port: Option<u16>,
    ) -> Result<(), StoreError> {
        self.run(|c| {
            c.execute(
                "UPDATE instances SET pid = $2, ssh_port = $3 WHERE uuid = $1",
                &[&uuid, &pid.map(i64::from), &ssh_port.map(i64::from)],
            )?;
            Ok(())
        })
    }

    fn set_document(&self, uuid: &str, image_id: &str, document: &str) -> Result<(), StoreError> {
        self.run(|c| {
            c.execute(
                "UPDATE instances SET image_id = $2, document = $3 WHERE uuid = $1",
                &[&uuid, &image_id, &document],
            )?;
            Ok(())
        })
    }

    fn update_document(
        &mut self,
        key: &str,
        now: &str,
        change: &dyn Fn(&str) -> Result<String, crate::DocumentProblem>,
    ) -> Result<InstanceRecord, StoreError> {
        self.run(|c| instances::update_document(c, key, now, change))
    }

    fn delete_instance(&self, uuid: &str) -> Result<(), StoreError> {
        self.run(|c| {
            c.execute("DELETE FROM instances WHERE uuid = $1", &[&uuid])?;
            Ok(())
        })?;
        self.purge_tombstones(crate::TOMBSTONE_GRACE)?;
        Ok(())
    }

    fn purge_tombstones(&self, grace: Duration) -> Result<u64, StoreError> {
        self.run(|c| instances::purge_tombstones(c, grace))
    }

    fn password(&self, uuid: &str) -> Result<Option<String>, StoreError> {
        self.run(|c| instances::password(c, uuid))
    }

    fn set_password(&self, uuid: &str, password: &str) -> Result<PasswordSet, StoreError> {
        self.run(|c| instances::set_password(c, uuid, password))
    }

    fn clear_password(&self, uuid: &str) -> Result<bool, StoreError> {
        self.run(|c| instances::clear_password(c, uuid))
    }

    // ---- hosts and work

    fn register_host(&self, spec: &HostSpec) -> Result<HostRecord, StoreError> {
        self.run(|c| hosts::register(c, spec))
    }

    fn heartbeat(&self, name: &str) -> Result<(), StoreError> {
        self.run(|c| hosts::heartbeat(c, name))
    }

    fn hosts(&self) -> Result<Vec<HostRecord>, StoreError> {
        self.run(hosts::all)
    }

    fn host(&self, name: &str) -> Result<HostRecord, StoreError> {
        self.run(|c| hosts::one(c, name))
    }

    fn set_host_enabled(
        &self,
        name: &str,
        enabled: bool,
        reason: Option<&str>,
    ) -> Result<(), StoreError> {
        self.run(|c| hosts::set_enabled(c, name, enabled, reason))
    }

    fn enqueue(&self, host: &str, uuid: &str, action: &WorkAction) -> Result<u64, StoreError> {
        self.run(|c| hosts::enqueue(c, host, uuid, action))
    }

    fn take_work(&self, host: &str) -> Result<Option<Work>, StoreError> {
        self.run(|c| hosts::take_work(c, host))
    }

    fn finish_work(&self, id: u64, outcome: &WorkOutcome) -> Result<(), StoreError> {
        self.run(|c| hosts::finish_work(c, id, outcome))
    }

    fn work(&self, id: u64) -> Result<Work, StoreError> {
        self.run(|c| hosts::work(c, id))
    }

    fn queued_work(&self, host: &str) -> Result<Vec<Work>, StoreError> {
        self.run(|c| hosts::queued_work(c, host))
    }

    fn requeue_running(&self, host: &str) -> Result<u64, StoreError> {
        self.run(|c| hosts::requeue_running(c, host))
    }
}
